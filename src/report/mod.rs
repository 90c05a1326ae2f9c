//! Reports: one module per command, each rendered as a table for people and as JSON.

pub mod diff;
pub mod heapview;
pub mod histogram;
pub mod html;
pub mod info;
pub mod keygroups;
pub mod maps;
pub mod names;
pub mod path;
pub mod pprof;
pub mod top;

use serde::Serialize;

/// The envelope every JSON document shares: a schema name, the tool version, then the body.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, T: Serialize> {
    /// `coreheap/<command>/v<N>`; a new N means a field changed meaning or was removed.
    pub schema: &'static str,
    /// The coreheap release that wrote the document.
    pub coreheap_version: &'static str,
    /// The command's own fields, inlined.
    #[serde(flatten)]
    pub body: &'a T,
}

impl<'a, T: Serialize> Envelope<'a, T> {
    /// Wraps a report body.
    pub fn new(schema: &'static str, body: &'a T) -> Self {
        Envelope {
            schema,
            coreheap_version: env!("CARGO_PKG_VERSION"),
            body,
        }
    }
}

/// A size as people write it: bytes, or a number with a unit (`1M` and `512KiB` in powers of
/// 1024, `2GB` in powers of 1000).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => u64::MAX,
    };
    let bad = || {
        format!(
            "{s:?} is not a size: give bytes (1048576) or a number with a unit: K, M, G, T or KiB, MiB, GiB, TiB (powers of 1024), KB, MB, GB, TB (powers of 1000)"
        )
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    if scale == u64::MAX || !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let bytes = value * scale as f64;
    if bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

/// Bytes in binary units with three significant digits: `512 B`, `1.50 KiB`, `40.0 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {}", UNITS[u])
}

/// A table in the project's style, at most `width` columns wide.
pub fn new_table(width: u16) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_width(width);
    t
}

/// A report's sentence, then its table with no padding left of any column but the first.
pub fn led_table(summary: String, t: &mut comfy_table::Table) -> String {
    for c in t.column_iter_mut().skip(1) {
        c.set_padding((0, 1));
    }
    format!("{summary}\n{t}")
}

/// Keeps column `column` of a table on one line (addresses are never wrapped).
pub fn keep_whole(t: &mut comfy_table::Table, column: usize) {
    if let Some(c) = t.column_mut(column) {
        c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
    }
}

/// Warnings under a table, one per line.
pub fn warning_lines(warnings: &[String]) -> String {
    warnings.iter().map(|w| format!("⚠ {w}\n")).collect()
}

/// Findings and warnings as Markdown lists.
pub fn markdown_notes(findings: &[String], warnings: &[String]) -> String {
    let mut s = String::new();
    for (title, items) in [("Findings", findings), ("Warnings", warnings)] {
        if !items.is_empty() {
            s.push_str(&format!("\n### {title}\n\n"));
            for f in items {
                s.push_str(&format!("- {}\n", md_text(f)));
            }
        }
    }
    s
}

/// The line saying how a Markdown report was made.
pub fn markdown_footer(command: &str, go_version: &str, redacted: bool) -> String {
    format!(
        "\n<sub>{} · coreheap {} · {}{}</sub>\n",
        md_code(command),
        env!("CARGO_PKG_VERSION"),
        md_text(go_version),
        if redacted { " · keys redacted" } else { "" }
    )
}

/// Text for a Markdown paragraph or table cell: characters Markdown would read as markup
/// escaped, line breaks as spaces.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '|' | '<' | '>' | '[' | ']' | '#' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text as a Markdown code span that survives a table cell: fenced by more backticks than it
/// holds in a row, its pipes escaped, line breaks as spaces.
pub fn md_code(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let body = s.replace('|', "\\|").replace(['\n', '\r'], " ");
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("10b"), Ok(10));
        for bad in ["", "M", "1Q", "-1", "1..2K", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn markdown_escapes_pipes_backticks_and_markup() {
        assert_eq!(md_text("a|b*c_d"), "a\\|b\\*c\\_d");
        assert_eq!(md_code("x|y"), "`x\\|y`");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`a"), "`` `a ``");
        assert_eq!(md_text("two\nlines"), "two lines");
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(40 << 30), "40.0 GiB");
        assert_eq!(human_bytes(200 << 20), "200 MiB");
    }
}
