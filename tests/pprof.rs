//! `--format pprof`: each profile decodes with the crate that wrote it, its totals are the
//! report's and the programs' own counts, and `go tool pprof -top` (with the samples' Go
//! toolchain, which `make test` fetches) names the same top map with the same bytes.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{sample, Sample};
use coreheap::report::pprof::{decode, proto::Profile};

/// Runs coreheap with `args` and `--format pprof -o FILE` and decodes the profile.
fn profile(args: &[OsString]) -> Profile {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profile.pb.gz");
    common::coreheap_to_file(args, "pprof", &file);
    decode(&std::fs::read(&file).unwrap()).unwrap()
}

/// A command's JSON report.
fn json(args: &[OsString]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--format".into(), "json".into()]);
    serde_json::from_str(&common::coreheap_stdout(all)).unwrap()
}

/// The values summed over the samples whose stack holds a frame named `frame` (every sample
/// when `None`): pprof's cumulative values.
fn cum(p: &Profile, frame: Option<&str>) -> [i64; 3] {
    let named = |loc: &u64| {
        let f = &p.function[(*loc - 1) as usize];
        Some(p.string_table[f.name as usize].as_str()) == frame
    };
    let mut sum = [0i64; 3];
    for s in (p.sample.iter()).filter(|s| frame.is_none() || s.location_id.iter().any(named)) {
        for (t, v) in sum.iter_mut().zip(&s.value) {
            *t += v;
        }
    }
    sum
}

/// `command` on a sample's core with its executable, then `extra`.
fn run_args(command: &str, s: &Sample, extra: &[&str]) -> Vec<OsString> {
    common::sample_args(command, s, extra)
}

/// The truth's grouping: prefixes cut before the second `:`.
const TRUTH_GROUPS: [&str; 6] = ["--depth", "2", "--delimiters", ":", "--groups", "100"];

/// The maps profile splits the heap: its retained totals are the reachable heap (bytes and
/// objects), in-use the allocated heap; each map's and each prefix's cumulative bytes and
/// objects are what the program measured.
#[test]
fn a_maps_profile_holds_the_heap_split_by_map_and_prefix() {
    for name in ["go1.21.13/ledger", "go1.26.6/ledger", "go1.26.6/zoo"] {
        let s = sample(name);
        let p = profile(&run_args("maps", &s, &TRUTH_GROUPS));
        let heap = json(&run_args("histogram", &s, &[]))["heap"].clone();
        let [retained, objects, inuse] = cum(&p, None);
        assert_eq!(
            retained as u64,
            heap["reachable_bytes"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            objects as u64,
            heap["reachable_objects"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            inuse as u64,
            heap["allocated_bytes"].as_u64().unwrap(),
            "{name}"
        );
        for m in s.truth["maps"].as_array().unwrap() {
            if m["impl"] == "sync.Map" || m["holder"] != "global" {
                continue;
            }
            let owner = m["name"].as_str().unwrap();
            let frame = format!(
                "{owner} map[{}]{}",
                m["key_type"].as_str().unwrap().replace("math/big.", "big."),
                m["value_type"]
                    .as_str()
                    .unwrap()
                    .replace("math/big.", "big.")
            );
            let shared = m["shared_bytes"].as_u64().unwrap_or(0);
            let [bytes, _, _] = cum(&p, Some(&frame));
            assert_eq!(
                bytes as u64,
                m["total_bytes"].as_u64().unwrap() - shared,
                "{name} {frame}"
            );
            if shared > 0 {
                continue;
            }
            for pre in m["prefixes"].as_array().unwrap() {
                let label = pre["prefix"].as_str().unwrap();
                let frame = match label {
                    "" => format!("{owner}[(no prefix)]"),
                    l => format!("{owner}[{l}…]"),
                };
                let [bytes, objects, _] = cum(&p, Some(&frame));
                assert_eq!(
                    bytes as u64,
                    pre["bytes"].as_u64().unwrap(),
                    "{name} {frame}"
                );
                assert_eq!(
                    objects as u64,
                    pre["objects"].as_u64().unwrap(),
                    "{name} {frame}"
                );
            }
        }
    }
}

/// The top and histogram profiles carry each line of their reports.
#[test]
fn top_and_histogram_profiles_carry_their_reports_lines() {
    let s = sample("go1.26.6/zoo");
    let args = run_args("top", &s, &[]);
    let (p, r) = (profile(&args), json(&args));
    let retainers = r["retainers"].as_array().unwrap();
    assert!(!retainers.is_empty());
    assert_eq!(p.sample.len(), retainers.len());
    for (sm, t) in p.sample.iter().zip(retainers) {
        assert_eq!(sm.value[0] as u64, t["retained_bytes"].as_u64().unwrap());
        assert_eq!(sm.value[1] as u64, t["retained_objects"].as_u64().unwrap());
        assert_eq!(sm.value[2] as u64, t["shallow_bytes"].as_u64().unwrap());
    }
    let args = run_args("histogram", &s, &[]);
    let (p, r) = (profile(&args), json(&args));
    let types = r["types"].as_array().unwrap();
    let [_, count, shallow] = cum(&p, None);
    let sum = |k: &str| types.iter().map(|t| t[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(count as u64, sum("count"));
    assert_eq!(shallow as u64, sum("shallow_bytes"));
    assert_eq!(
        shallow as u64,
        r["heap"]["reachable_bytes"].as_u64().unwrap()
    );
}

/// The diff profile holds growth: each map's and prefix's cumulative values are after less
/// before, as the growth program measured them.
#[test]
fn a_diff_profile_holds_the_growth() {
    let (before, after) = (sample("go1.26.6/growth-1"), sample("go1.26.6/growth-2"));
    let mut args = run_args("diff", &before, &TRUTH_GROUPS);
    args.insert(2, after.core.clone().into());
    let p = profile(&args);
    let truth = |s: &Sample, map: &str, prefix: Option<&str>, field: &str| -> i64 {
        let m = (s.truth["maps"].as_array().unwrap().iter()).find(|m| m["name"] == map);
        let v = match (m, prefix) {
            (Some(m), None) => &m[field],
            (Some(m), Some(p)) => (m["prefixes"].as_array().unwrap().iter())
                .find(|x| x["prefix"] == p)
                .map_or(&serde_json::Value::Null, |x| &x[field]),
            (None, _) => &serde_json::Value::Null,
        };
        v.as_i64().unwrap_or(0)
    };
    let growth = |map: &str, prefix: Option<&str>, field: &str| {
        truth(&after, map, prefix, field) - truth(&before, map, prefix, field)
    };
    let [bytes, _, _] = cum(&p, Some("main.cache map[string][]uint8"));
    assert_eq!(bytes, growth("main.cache", None, "total_bytes"));
    for prefix in ["user:eu", "user:us", "sess:web", "job:batch"] {
        let [bytes, objects, _] = cum(&p, Some(&format!("main.cache[{prefix}…]")));
        assert_eq!(
            bytes,
            growth("main.cache", Some(prefix), "bytes"),
            "{prefix}"
        );
        assert_eq!(
            objects,
            growth("main.cache", Some(prefix), "objects"),
            "{prefix}"
        );
    }
    let [bytes, _, _] = cum(&p, Some("main.retired map[string]int"));
    assert_eq!(bytes, -truth(&before, "main.retired", None, "total_bytes"));
    let [retained, _, _] = cum(&p, None);
    let heap = |s: &Sample| -> i64 {
        json(&run_args("histogram", s, &[]))["heap"]["reachable_bytes"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(retained, heap(&after) - heap(&before));
}

/// The Go toolchain the samples use, when `make test` (tests/tools.sh) could fetch it.
fn go_toolchain() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/go-toolchains/go1.26.6/go");
    root.join("bin/go").is_file().then_some(root)
}

/// `go tool pprof -top` on a maps profile: the top map and its bytes as `maps` reports them,
/// and the heap's total.
#[test]
fn go_tool_pprof_reads_the_maps_profile() {
    let Some(goroot) = go_toolchain() else {
        eprintln!("skipped: no Go toolchain in target/go-toolchains (run tests/tools.sh)");
        return;
    };
    let s = sample("go1.26.6/ledger");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maps.pb.gz");
    let args = run_args("maps", &s, &[]);
    let out = Command::cargo_bin("coreheap")
        .unwrap()
        .args(&args)
        .args(["--format", "pprof", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let maps = json(&args);
    let top = &maps["maps"][0];
    let pprof = std::process::Command::new(goroot.join("bin/go"))
        .args(["tool", "pprof", "-top", "-cum", "-unit=byte"])
        .arg(&file)
        .env("GOROOT", &goroot)
        .env("GOCACHE", dir.path().join("gocache"))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&pprof.stdout);
    assert!(
        pprof.status.success(),
        "{}",
        String::from_utf8_lossy(&pprof.stderr)
    );
    // The first line under the header: the top map, its cumulative bytes the map's retained.
    let first = (text.lines())
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let frame = format!(
        "{} map[{}]{}",
        top["owner"].as_str().unwrap(),
        top["key_type"].as_str().unwrap(),
        top["value_type"].as_str().unwrap()
    );
    assert!(first.ends_with(&frame), "{first}\n{text}");
    let retained = top["retained_bytes"].as_u64().unwrap();
    assert!(first.contains(&format!(" {retained}B ")), "{first}");
    let total = maps["heap"]["reachable_bytes"].as_u64().unwrap();
    assert!(text.contains(&format!("of {total}B total")), "{text}");
    assert!(text.contains("main.balances[acct…]"), "{text}");
}

/// A profile or a page from a command that makes none is refused at once, as bad input.
#[test]
fn formats_a_command_has_not_are_refused() {
    let s = sample("go1.26.6/tiny");
    for (command, format, needle) in [
        (
            "info",
            "pprof",
            "--format pprof is for maps, top, histogram and diff",
        ),
        ("top", "html", "--format html is for maps and diff"),
        ("histogram", "html", "--format html is for maps and diff"),
    ] {
        let mut args = run_args(command, &s, &["--format", format]);
        args.extend(["-o".into(), "/dev/null".into()]);
        let out = Command::cargo_bin("coreheap")
            .unwrap()
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains(needle), "{command}: {stderr}");
    }
}
