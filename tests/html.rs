//! `--format html`: one self-contained page that a real browser renders without script
//! errors and with no network, showing the report's numbers. Needs Chromium (`make test`
//! installs Debian's when it can: tests/tools.sh); without one the browser checks are skipped.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use common::sample;

/// A headless Chromium, when the machine has one.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|b| dirs.iter().map(move |d| d.join(b)))
        .find(|p| p.is_file())
}

/// Writes the page coreheap makes with `args` (and `--format html -o`) into `dir`.
fn page(dir: &Path, args: &[std::ffi::OsString]) -> PathBuf {
    let file = dir.join("report.html");
    common::coreheap_to_file(args, "html", &file);
    file
}

/// The page's DOM after its script ran, in a headless browser with no network: every
/// request goes to a proxy that is not there.
fn rendered(browser: &Path, file: &Path, profile: &Path) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", file.display()))
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Arguments: a command on a sample's core with its executable.
fn args(command: &str, name: &str, extra: &[&str]) -> Vec<std::ffi::OsString> {
    common::sample_args(command, &sample(name), extra)
}

/// The page stands alone: no address to fetch anything from, its data inline.
#[test]
fn the_page_stands_alone() {
    let dir = tempfile::tempdir().unwrap();
    let html =
        std::fs::read_to_string(page(dir.path(), &args("maps", "go1.26.6/services", &[]))).unwrap();
    for remote in ["http://", "https://", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(remote), "{remote}");
    }
    assert!(html.contains("default-src 'none'"));
    assert!(html.contains(r#""schema":"coreheap/maps/v1""#));
    assert!(html.len() < 3 << 20, "{} bytes", html.len());
}

/// The maps page renders in Chromium without a script error, and shows the top map's owner
/// and retained bytes as `maps` reports them, its key groups and its largest entries.
#[test]
fn the_maps_page_renders_in_a_browser() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: no Chromium (tests/tools.sh installs Debian's chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = args("maps", "go1.26.6/ledger", &[]);
    let file = page(dir.path(), &a);
    let dom = rendered(&browser, &file, &dir.path().join("browser"));
    // The script marks the body when it is done; an error would have added data-error.
    assert!(dom.contains(r#"<body data-rendered="ok">"#), "{dom}");
    let mut j = a.clone();
    j.extend(["--format".into(), "json".into()]);
    let report: serde_json::Value = serde_json::from_str(&common::coreheap_stdout(j)).unwrap();
    let top = &report["maps"][0];
    let owner = top["owner"].as_str().unwrap();
    let retained = top["retained_bytes"].as_u64().unwrap();
    assert!(dom.contains(&format!("<code>{owner}</code>")), "{dom}");
    assert!(
        dom.contains(&format!(r#"title="{retained} B">3.77 MiB<"#)),
        "{dom}"
    );
    // The icicle's first group and the largest entries' table.
    assert!(dom.contains("acct · 2.59 MiB · 15,500 entries"), "{dom}");
    assert!(dom.contains("Largest entries"), "{dom}");
}

/// The diff page renders, with the growth of the map that grew most.
#[test]
fn the_diff_page_renders_in_a_browser() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: no Chromium (tests/tools.sh installs Debian's chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let after = sample("go1.26.6/growth-2");
    let mut a = args("diff", "go1.26.6/growth-1", &["--delimiters", ":"]);
    a.insert(2, after.core.into());
    let file = page(dir.path(), &a);
    let dom = rendered(&browser, &file, &dir.path().join("browser"));
    // The script marks the body when it is done; an error would have added data-error.
    assert!(dom.contains(r#"<body data-rendered="ok">"#), "{dom}");
    assert!(dom.contains("<code>main.cache</code>"), "{dom}");
    assert!(dom.contains("+1.19 MiB (+158.2%)"), "{dom}");
    assert!(dom.contains("job:batch · +449 KiB"), "{dom}");
}

/// A `maps` document of `maps` maps with `groups` key groups each, ten of them opened into
/// ten children, each with ten largest entries: the size of a large service's report.
fn large_document(maps: usize, groups: usize) -> serde_json::Value {
    let group = |m: usize, g: usize, children: Vec<serde_json::Value>| {
        serde_json::json!({
            "prefix": format!("tenant:{m:03}:region-{g:05}"), "entries": 1000 + g,
            "retained_bytes": 1_000_000 - g, "percent_of_map": 0.3,
            "sample_key": format!("\"tenant:{m:03}:region-{g:05}:user-0000000000\""),
            "children": children, "top_entries": [],
        })
    };
    let entry = |i: usize| {
        serde_json::json!({
            "key": format!("\"tenant:000:region-00000:user-{i:010}\""), "retained_bytes": 4096,
            "value_type": "*main.Session", "address": "0xc000123450",
        })
    };
    let list: Vec<serde_json::Value> = (0..maps)
        .map(|m| {
            let groups: Vec<serde_json::Value> = (0..groups)
                .map(|g| {
                    let kids = if g < 10 { (0..10).map(|k| group(m, g * 100 + k, vec![])).collect() } else { vec![] };
                    group(m, g, kids)
                })
                .collect();
            serde_json::json!({
                "owner": format!("main.shards[{m}].sessions"), "owner_shared": false, "also_held_by": [],
                "address": "0xc000010000", "implementation": "swiss", "key_type": "string",
                "value_type": "*main.Session", "entries": 250_000, "header_count": 250_000,
                "table_bytes": 9_000_000, "slots": 327_680, "load": 0.763, "tombstones": 0,
                "retained_bytes": 900_000_000 - m, "percent_of_heap": 0.9,
                "entries_retained_bytes": 890_000_000, "groups": groups,
                "top_entries": (0..10).map(entry).collect::<Vec<_>>(), "inner_maps": 0, "nested": [],
            })
        })
        .collect();
    serde_json::json!({
        "schema": "coreheap/maps/v1", "coreheap_version": "test", "go_version": "go1.26.6",
        "heap": {"allocated_bytes": 100_000_000_000u64, "reachable_bytes": 99_000_000_000u64, "unreachable_bytes": 1_000_000_000u64},
        "maps_found": maps, "maps_retained_bytes": 90_000_000_000u64, "maps": list,
        "findings": [], "shared": [], "pools": [], "warnings": [], "redacted": false,
    })
}

/// A page for a hundred maps with 300 key groups each (30,000 groups, and 100,000 more as
/// children) stays under 4 MB, and a browser draws it.
#[test]
fn a_page_of_a_hundred_maps_stays_small_and_draws() {
    let html = coreheap::report::html::page("large", &large_document(100, 300)).unwrap();
    assert!(html.len() < 4 << 20, "{} bytes", html.len());
    eprintln!(
        "a page of 100 maps and 40,000 key groups: {} bytes",
        html.len()
    );
    if let Some(out) = std::env::var_os("COREHEAP_LARGE_PAGE") {
        std::fs::write(out, &html).unwrap();
    }
    let Some(browser) = chromium() else {
        eprintln!("skipped: no Chromium (tests/tools.sh installs Debian's chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("large.html");
    std::fs::write(&file, &html).unwrap();
    let dom = rendered(&browser, &file, &dir.path().join("browser"));
    assert!(
        dom.contains(r#"<body data-rendered="ok">"#),
        "{}",
        &dom[..2000.min(dom.len())]
    );
    assert!(dom.contains("<code>main.shards[0].sessions</code>"));
}

/// With `--redact`, no field of any key is in the page: not in the groups, the entries, the
/// owners or the title.
#[test]
fn a_redacted_page_holds_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = args("maps", "go1.26.6/ledger", &["--redact", "--entries", "5"]);
    let html = std::fs::read_to_string(page(dir.path(), &a)).unwrap();
    assert!(html.contains(r#""redacted":true"#));
    for word in [
        "acct", "eu-west", "us-east", "ap-south", "sess", "tmp", "01086685",
    ] {
        assert!(!html.contains(word), "{word}");
    }
    // The same page unredacted has them.
    let plain =
        std::fs::read_to_string(page(dir.path(), &args("maps", "go1.26.6/ledger", &[]))).unwrap();
    assert!(plain.contains("acct:eu-west"));
}
