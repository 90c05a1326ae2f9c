//! Reports as one self-contained HTML page: styles, script and the report's JSON inline, no
//! network access (a Content-Security-Policy forbids it), readable offline and attachable to
//! a ticket. The page draws the overview, a sortable maps table, each map's key groups as an
//! icicle with click-to-zoom, its largest entries, and for `diff` the growth.

use serde::Serialize;

use super::diff::DiffReport;
use super::maps::MapsReport;
use super::Envelope;

/// The page, with `@@TITLE@@` and `@@DATA@@` to fill.
const PAGE: &str = include_str!("html/page.html");

/// The `maps` report as a page titled `title`.
pub fn maps(r: &MapsReport, title: &str) -> serde_json::Result<String> {
    page(title, &Envelope::new("coreheap/maps/v1", r))
}

/// The `diff` report as a page titled `title`.
pub fn diff(r: &DiffReport, title: &str) -> serde_json::Result<String> {
    page(title, &Envelope::new("coreheap/diff/v1", r))
}

/// The key groups' fields a page keeps, in the order of its arrays (see [`compact`]).
const GROUP_FIELDS: [&str; 8] = [
    "prefix",
    "entries",
    "retained_bytes",
    "percent_of_map",
    "entries_before",
    "entries_after",
    "retained_bytes_before",
    "retained_bytes_after",
];

/// Key groups as arrays of the fields in [`GROUP_FIELDS`] (absent ones null) and their
/// children last: a page of tens of thousands of groups stays a few MB. Sample keys and
/// per-group entries, which the page does not show, are left out.
fn compact(groups: &mut serde_json::Value) {
    let Some(list) = groups.as_array_mut() else {
        return;
    };
    for g in list.iter_mut() {
        let mut children = g["children"].take();
        compact(&mut children);
        let mut row: Vec<serde_json::Value> = (GROUP_FIELDS.iter()).map(|f| g[*f].take()).collect();
        row.push(children);
        *g = serde_json::Value::Array(row);
    }
}

/// The page with `doc` as its data: a `coreheap/maps/v1` or `coreheap/diff/v1` document.
pub fn page<T: Serialize>(title: &str, doc: &T) -> serde_json::Result<String> {
    let mut doc = serde_json::to_value(doc)?;
    if let Some(maps) = doc.get_mut("maps").and_then(|m| m.as_array_mut()) {
        for m in maps {
            if let Some(groups) = m.get_mut("groups") {
                compact(groups);
            }
        }
    }
    // Inside <script>, "</" could end the element and "<!--" open a comment: escaped the
    // JSON way (both can only be in strings).
    let data = serde_json::to_string(&doc)?
        .replace("</", "<\\/")
        .replace("<!--", "<\\u0021--");
    let title = escape(title);
    // Filled in one pass over the page, so that text in the data is never taken for a marker.
    let (head, tail) = PAGE.split_once("@@DATA@@").unwrap_or((PAGE, ""));
    Ok(format!(
        "{}{data}{}",
        head.replace("@@TITLE@@", &title),
        tail.replace("@@TITLE@@", &title)
    ))
}

/// Text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_cannot_close_the_script_and_markers_in_it_stay() {
        #[derive(Serialize)]
        struct Doc {
            key: &'static str,
        }
        let p = page(
            "a <b> & \"c\"",
            &Doc {
                key: "</script><!-- @@TITLE@@",
            },
        )
        .unwrap();
        assert!(p.contains("<title>a &lt;b&gt; &amp; &quot;c&quot;</title>"));
        assert!(
            p.contains(r#"{"key":"<\/script><\u0021-- @@TITLE@@"}"#),
            "{p}"
        );
        assert_eq!(p.matches("</script>").count(), 2);
        assert!(!p.contains("@@DATA@@"));
    }
}
