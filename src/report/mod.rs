//! Reports: one module per command, each rendered as a table for people and as JSON.

pub mod heapview;
pub mod histogram;
pub mod info;
pub mod maps;
pub mod path;
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

/// A table in the project's style, at most 100 columns wide.
pub fn new_table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_width(100);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(40 << 30), "40.0 GiB");
        assert_eq!(human_bytes(200 << 20), "200 MiB");
    }
}
