//! `coreheap diff` on the growth pair: stage 1 crashed (a kernel core), stage 2 dumped alive
//! by gcore; what grew, per map and key prefix, against what the program measured in each
//! stage, and the exit status `--fail-over` sets.

mod common;

use std::process::Output;

use assert_cmd::Command;
use common::{sample, Sample};

/// The two stages of the growth program.
fn pair() -> (Sample, Sample) {
    (sample("go1.26.6/growth-1"), sample("go1.26.6/growth-2"))
}

/// Runs `coreheap diff` on the pair with `args` after the cores.
fn diff(args: &[&str]) -> Output {
    let (before, after) = pair();
    Command::cargo_bin("coreheap")
        .unwrap()
        .arg("diff")
        .arg(&before.core)
        .arg(&after.core)
        .arg("--exe")
        .arg(before.exe())
        .args(args)
        .output()
        .unwrap()
}

/// The JSON document of a diff that must succeed.
fn diff_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let out = diff(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A map of a truth file by name (`null` when the stage has no such map).
fn truth_map<'a>(s: &'a Sample, name: &str) -> &'a serde_json::Value {
    (s.truth["maps"].as_array().unwrap().iter())
        .find(|m| m["name"] == name)
        .unwrap_or(&serde_json::Value::Null)
}

/// A prefix of a truth map (`null` when the map has none such).
fn truth_prefix<'a>(m: &'a serde_json::Value, prefix: &str) -> &'a serde_json::Value {
    (m["prefixes"].as_array().into_iter().flatten())
        .find(|p| p["prefix"] == prefix)
        .unwrap_or(&serde_json::Value::Null)
}

/// `a` within 1% of `b`.
fn near(a: u64, b: u64) -> bool {
    a.abs_diff(b) * 100 <= b.max(1)
}

/// Each map's and each prefix's entries before and after are the program's counts, and the
/// bytes they retain its measured bytes (within 1%, as the issue asks; they are exact today).
#[test]
fn growth_per_map_and_prefix_is_what_the_program_measured() {
    let (before, after) = pair();
    let doc = diff_json(&[
        "--depth",
        "2",
        "--delimiters",
        ":",
        "--groups",
        "100",
        "--top",
        "0",
    ]);
    let maps = doc["maps"].as_array().unwrap();
    let mut checked = 0;
    for name in ["main.cache", "main.audit", "main.retired"] {
        let (b, a) = (truth_map(&before, name), truth_map(&after, name));
        let m = (maps.iter())
            .find(|m| m["owner"] == name)
            .unwrap_or_else(|| panic!("{name} not in the diff"));
        let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
        assert_eq!(n(m, "entries_before"), n(b, "entries"), "{name}");
        assert_eq!(n(m, "entries_after"), n(a, "entries"), "{name}");
        for (got, want) in [
            (n(m, "retained_bytes_before"), n(b, "total_bytes")),
            (n(m, "retained_bytes_after"), n(a, "total_bytes")),
            (n(m, "entries_retained_bytes_before"), n(b, "entries_bytes")),
            (n(m, "entries_retained_bytes_after"), n(a, "entries_bytes")),
        ] {
            assert!(near(got, want), "{name}: {got} vs {want}");
        }
        let want_growth = n(a, "total_bytes") as i64 - n(b, "total_bytes") as i64;
        let growth = m["growth_bytes"].as_i64().unwrap();
        assert!(
            growth.abs_diff(want_growth) * 100 <= want_growth.unsigned_abs(),
            "{name}: growth {growth} vs {want_growth}"
        );
        let change = match (b.is_null(), a.is_null()) {
            (true, _) => "appeared",
            (_, true) => "disappeared",
            _ => "grown",
        };
        assert_eq!(m["change"], change, "{name}");
        // Every prefix either stage has, with zeros where it has none.
        let mut prefixes: Vec<&str> = [b, a]
            .iter()
            .flat_map(|t| t["prefixes"].as_array().into_iter().flatten())
            .map(|p| p["prefix"].as_str().unwrap())
            .collect();
        prefixes.sort();
        prefixes.dedup();
        for p in prefixes {
            let g = (m["groups"].as_array().unwrap().iter())
                .find(|g| g["prefix"] == p)
                .unwrap_or_else(|| panic!("{name}: no group {p}"));
            let (tb, ta) = (truth_prefix(b, p), truth_prefix(a, p));
            assert_eq!(n(g, "entries_before"), n(tb, "entries"), "{name} {p}");
            assert_eq!(n(g, "entries_after"), n(ta, "entries"), "{name} {p}");
            assert!(
                near(n(g, "retained_bytes_before"), n(tb, "bytes")),
                "{name} {p}: {g}"
            );
            assert!(
                near(n(g, "retained_bytes_after"), n(ta, "bytes")),
                "{name} {p}: {g}"
            );
            checked += 1;
        }
    }
    // cache: user:eu, user:us, sess:web, job:batch; audit: evt:login; retired: old.
    assert_eq!(checked, 6);
    // Largest growth first: main.cache, then the new main.audit.
    assert_eq!(maps[0]["owner"], "main.cache");
    assert_eq!(maps[1]["owner"], "main.audit");
    // The heap before and after as each stage's runtime counted it.
    for (side, s) in [("before", &before), ("after", &after)] {
        assert_eq!(
            doc[side]["heap"]["allocated_bytes"], s.memstats["heap_alloc"],
            "{side}"
        );
    }
}

/// With the prefix tree, the earlier core's keys are grouped as the later core's are, so
/// that each group compares the same keys: user opens into user:eu and user:us in both.
#[test]
fn the_tree_of_the_later_core_groups_both() {
    let (before, after) = pair();
    let doc = diff_json(&["--delimiters", ":"]);
    let cache = &doc["maps"][0];
    assert_eq!(cache["owner"], "main.cache");
    let user = (cache["groups"].as_array().unwrap().iter())
        .find(|g| g["prefix"] == "user")
        .expect("a user group");
    let eu = (user["children"].as_array().unwrap().iter())
        .find(|g| g["prefix"] == "user:eu")
        .expect("user:eu under user");
    let (b, a) = (
        truth_prefix(truth_map(&before, "main.cache"), "user:eu"),
        truth_prefix(truth_map(&after, "main.cache"), "user:eu"),
    );
    assert_eq!(eu["entries_before"], b["entries"]);
    assert_eq!(eu["entries_after"], a["entries"]);
    assert_eq!(eu["retained_bytes_before"], b["bytes"]);
    assert_eq!(eu["retained_bytes_after"], a["bytes"]);
}

/// `--fail-over`: 3 when the heap or a map grew by more (each named on stderr), 0 otherwise;
/// a map that was not there before counts against a size, not a percentage.
#[test]
fn fail_over_sets_the_exit_status_and_names_what_grew() {
    let (before, after) = pair();
    let grown = |name: &str| {
        let (b, a) = (truth_map(&before, name), truth_map(&after, name));
        a["total_bytes"].as_u64().unwrap_or(0) as f64
            / b["total_bytes"].as_u64().unwrap_or(1) as f64
    };
    // main.cache grew by 158%: over 150%, under 160%.
    assert!(
        (2.5..2.6).contains(&grown("main.cache")),
        "{}",
        grown("main.cache")
    );
    let run = |t: &str| {
        let out = diff(&["--fail-over", t, "--format", "json"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), stderr, doc)
    };
    let (code, stderr, doc) = run("150%");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("growth over --fail-over 150%"), "{stderr}");
    assert!(stderr.contains("main.cache: +"), "{stderr}");
    assert!(!stderr.contains("main.audit"), "{stderr}");
    let exceeded = doc["fail_over"]["exceeded"].as_array().unwrap();
    assert!(exceeded
        .iter()
        .any(|e| e.as_str().unwrap().starts_with("main.cache")));
    let (code, stderr, doc) = run("160%");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(doc["fail_over"]["exceeded"], serde_json::json!([]));
    // main.audit (about 108 KiB, new) is over 100KiB; nothing grew by 2 MiB.
    let (code, stderr, _) = run("100KiB");
    assert_eq!(code, Some(3));
    assert!(stderr.contains("main.audit: +"), "{stderr}");
    assert_eq!(run("2MiB").0, Some(0));
    // Without --fail-over, growth is not a failure.
    assert_eq!(diff(&[]).status.code(), Some(0));
    let bad = diff(&["--fail-over", "lots"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// Redacted, no key's text appears in any format, and the groups still pair up across the
/// two cores (one redactor names a key alike in both).
#[test]
fn a_redacted_diff_holds_no_key_and_still_pairs_groups() {
    let words = [
        "user", "eu", "us", "sess", "web", "job", "batch", "evt", "login", "old",
    ];
    for format in ["json", "table", "markdown"] {
        let out = diff(&["--redact", "--delimiters", ":", "--format", format]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        for w in words {
            let hit = text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|t| t == w);
            assert!(!hit, "{format}: {w:?} in\n{text}");
        }
    }
    let doc = diff_json(&["--redact", "--delimiters", ":", "--depth", "2"]);
    let cache = &doc["maps"][0];
    let both = (cache["groups"].as_array().unwrap().iter())
        .filter(|g| g["entries_before"].as_u64() > Some(0) && g["entries_after"].as_u64() > Some(0))
        .count();
    // user:eu, user:us and sess:web are in both cores.
    assert_eq!(both, 3, "{cache}");
}

/// The JSON document carries every field its schema requires; the table and Markdown say
/// what grew in words.
#[test]
fn diff_formats_carry_the_documented_fields() {
    let schema = common::schema("diff-v1.json");
    let doc = diff_json(&["--fail-over", "1GiB", "--delimiters", ":"]);
    assert_eq!(doc["schema"], "coreheap/diff/v1");
    let has_all = common::has_required;
    has_all(&doc, &schema, "document");
    let props = &schema["properties"];
    has_all(&doc["before"], &props["before"], "before");
    has_all(&doc["fail_over"], &props["fail_over"], "fail_over");
    for m in doc["maps"].as_array().unwrap() {
        has_all(m, &props["maps"]["items"], "map");
        for g in m["groups"].as_array().unwrap() {
            has_all(
                g,
                &props["maps"]["items"]["properties"]["groups"]["items"],
                "group",
            );
        }
    }
    let table = String::from_utf8(diff(&["--width", "120"]).stdout).unwrap();
    assert!(
        table.starts_with("The reachable heap went from "),
        "{table}"
    );
    assert!(table.contains("main.cache"), "{table}");
    assert!(
        table.contains("(new)") && table.contains("(gone)"),
        "{table}"
    );
    let md = String::from_utf8(diff(&["--format", "markdown"]).stdout).unwrap();
    assert!(md.starts_with("## What grew"), "{md}");
    assert!(md.contains("| `main.cache` | grown |"), "{md}");
}

/// The pair reads like any other sample: the crashed stage as a crash, the stage gcore took
/// from the running process as a process dumped alive, with no warning, and its goroutines.
#[test]
fn the_gcore_core_reads_as_a_process_dumped_alive() {
    let (before, after) = pair();
    for (s, alive) in [(&before, false), (&after, true)] {
        let out = Command::cargo_bin("coreheap")
            .unwrap()
            .args(["info", "--format", "json"])
            .arg(&s.core)
            .arg("--exe")
            .arg(s.exe())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", s.name);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["crash"]["dumped_alive"], alive, "{}", s.name);
        assert_eq!(doc["warnings"], serde_json::json!([]), "{}", s.name);
        let signal = if alive { "SIGSTOP" } else { "SIGABRT" };
        assert_eq!(doc["crash"]["signal_name"], signal, "{}", s.name);
    }
}
