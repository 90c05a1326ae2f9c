//! `coreheap maps` on every sample core against what each program measured about its maps:
//! entries, bytes per key prefix, bytes of the entries, owners, and findings.

mod common;

use coreheap::report::maps::{KeyGroup, MapLine, MapsOptions, MapsReport};
use coreheap_go::types::TypeScope;

use common::{sample, samples, Sample};

/// The truth's prefix rule: drop the last `:` field, keep at most two.
fn truth_grouping() -> MapsOptions {
    MapsOptions {
        top: 0,
        groups: usize::MAX,
        depth: Some(2),
        delimiters: ":".into(),
        nested: true,
        ..Default::default()
    }
}

/// The maps report as `coreheap maps` makes it: types inferred only toward maps.
fn report(s: &Sample, opts: &MapsOptions) -> MapsReport {
    common::maps_report(s, opts)
}

fn report_scoped(s: &Sample, opts: &MapsOptions, scope: TypeScope) -> MapsReport {
    common::maps_report_scoped(s, opts, scope)
}

/// Bytes of a map's entries that another owner shares, which no single owner retains.
fn shared(m: &serde_json::Value) -> u64 {
    m["shared_bytes"].as_u64().unwrap_or(0)
}

/// The program's record of one of its maps, by name.
fn truth_map<'a>(s: &'a Sample, name: &str) -> &'a serde_json::Value {
    s.truth["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{}: no map {name} in truth.json", s.name))
}

/// Every map, with the default grouping, maps inside other maps listed under their row.
fn all_maps(s: &Sample) -> MapsReport {
    report(
        s,
        &MapsOptions {
            top: 0,
            nested: true,
            ..Default::default()
        },
    )
}

/// The program's map in the report: a row, or a map listed under a roll-up row; by address,
/// or by name for a map whose header is in a frame and whose address the program never took.
fn find<'a>(r: &'a MapsReport, m: &serde_json::Value) -> &'a MapLine {
    let addr = m["addr"].as_str().unwrap();
    let name = expected_owner(m);
    r.maps
        .iter()
        .chain(r.maps.iter().flat_map(|l| &l.nested))
        .find(|l| {
            l.inner_maps == 0
                && if addr.is_empty() {
                    without_goroutine_id(&l.owner) == name
                } else {
                    l.address == addr
                }
        })
        .unwrap_or_else(|| panic!("map {} at {addr} not reported", m["name"]))
}

/// The owner coreheap gives a map the program names in truth.json: the same, with a closure's
/// function named too (`main.handler (closure main.setup.func1: hits)`).
fn expected_owner(m: &serde_json::Value) -> String {
    let name = m["name"].as_str().unwrap();
    match (name.split_once(" (closure: "), m["closure_func"].as_str()) {
        (Some((root, var)), Some(f)) => format!("{root} (closure {f}: {var}"),
        _ => name.to_string(),
    }
}

/// `goroutine 7 main.worker: jobs` → `goroutine main.worker: jobs`.
fn without_goroutine_id(owner: &str) -> String {
    match owner.strip_prefix("goroutine ") {
        Some(rest) => format!("goroutine {}", rest.split_once(' ').map_or(rest, |x| x.1)),
        None => owner.to_string(),
    }
}

/// A key group of a map by its prefix.
fn group<'a>(ctx: &str, l: &'a MapLine, p: &serde_json::Value) -> &'a KeyGroup {
    l.groups
        .iter()
        .find(|g| g.prefix == p["prefix"].as_str().unwrap())
        .unwrap_or_else(|| panic!("{ctx}: no group {}", p["prefix"]))
}

#[test]
fn every_map_matches_its_programs_entries_and_bytes() {
    let all = samples();
    assert!(!all.is_empty());
    for s in &all {
        let r = report(s, &truth_grouping());
        for m in s.truth["maps"].as_array().unwrap().iter() {
            let l = find(&r, m);
            let ctx = format!("{}: {}", s.name, m["name"]);
            assert_eq!(l.entries, m["entries"].as_u64().unwrap(), "{ctx}: entries");
            assert_eq!(l.header_count, l.entries, "{ctx}: header count");
            if m["impl"] == "sync.Map" {
                check_sync_map(&ctx, l, m);
                continue;
            }
            assert_eq!(
                l.entries_retained_bytes,
                m["entries_bytes"].as_u64().unwrap() - shared(m),
                "{ctx}: entries' bytes"
            );
            assert_eq!(
                l.retained_bytes,
                m["total_bytes"].as_u64().unwrap() - shared(m),
                "{ctx}: total"
            );
            // Per key prefix: entries and bytes as the program counted them.
            for p in m["prefixes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|_| shared(m) == 0)
            {
                let g = group(&ctx, l, p);
                assert_eq!(
                    g.entries,
                    p["entries"].as_u64().unwrap(),
                    "{ctx} {}",
                    p["prefix"]
                );
                assert_eq!(
                    g.retained_bytes,
                    p["bytes"].as_u64().unwrap(),
                    "{ctx} {}",
                    p["prefix"]
                );
            }
        }
    }
}

/// A `sync.Map` against its program's count: live entries only, every byte it holds, and
/// per key prefix between what the keys and values alone cost and what storing them cost.
fn check_sync_map(ctx: &str, l: &MapLine, m: &serde_json::Value) {
    assert_eq!(
        serde_json::to_value(l.implementation).unwrap(),
        "sync.Map",
        "{ctx}"
    );
    assert_eq!(
        l.key_type,
        m["key_type"].as_str().unwrap(),
        "{ctx}: key type"
    );
    assert_eq!(
        l.value_type,
        m["value_type"].as_str().unwrap(),
        "{ctx}: value type"
    );
    assert_eq!(
        l.retained_bytes,
        m["total_bytes"].as_u64().unwrap(),
        "{ctx}: total"
    );
    let (lo, hi) = (
        m["entries_bytes"].as_u64().unwrap(),
        m["store_bytes"].as_u64().unwrap(),
    );
    assert!(
        (lo..=hi).contains(&l.entries_retained_bytes),
        "{ctx}: entries retain {} outside [{lo}, {hi}]",
        l.entries_retained_bytes
    );
    for p in m["prefixes"].as_array().unwrap() {
        let g = group(ctx, l, p);
        assert_eq!(
            g.entries,
            p["entries"].as_u64().unwrap(),
            "{ctx} {}",
            p["prefix"]
        );
        let (lo, hi) = (
            p["bytes"].as_u64().unwrap(),
            p["store_bytes"].as_u64().unwrap(),
        );
        assert!(
            (lo..=hi).contains(&g.retained_bytes),
            "{ctx} {}: {} outside [{lo}, {hi}]",
            p["prefix"],
            g.retained_bytes
        );
    }
}

#[test]
fn owners_are_named_as_the_program_names_them() {
    for s in samples().into_iter().filter(|s| s.program() != "tiny") {
        let r = all_maps(&s);
        for m in s.truth["maps"].as_array().unwrap().iter() {
            let l = find(&r, m);
            assert_eq!(
                without_goroutine_id(&l.owner),
                expected_owner(m),
                "{}",
                s.name
            );
            // A map several roots hold says which others do.
            if let Some(others) = m["also_held_by"].as_array() {
                let others: Vec<&str> = others.iter().map(|o| o.as_str().unwrap()).collect();
                assert!(l.owner_shared, "{}", s.name);
                assert_eq!(l.also_held_by, others, "{}", s.name);
            }
        }
    }
}

#[test]
fn ledger_ranks_the_incident_map_and_its_heavy_prefix_first() {
    for s in samples().into_iter().filter(|s| s.program() == "ledger") {
        let r = report(&s, &truth_grouping());
        let truth = &s.truth["maps"][0];
        let first = &r.maps[0];
        assert_eq!(first.owner, "main.balances", "{}", s.name);
        let heavy = truth["prefixes"]
            .as_array()
            .unwrap()
            .iter()
            .max_by_key(|p| p["bytes"].as_u64().unwrap())
            .unwrap();
        let g = &first.groups[0];
        assert_eq!(g.prefix, heavy["prefix"].as_str().unwrap(), "{}", s.name);
        let share =
            heavy["bytes"].as_f64().unwrap() * 100.0 / truth["entries_bytes"].as_f64().unwrap();
        assert!(
            (g.percent_of_map - share).abs() < 0.05,
            "{}: {} vs {share}",
            s.name,
            g.percent_of_map
        );
        assert!(
            r.findings
                .iter()
                .any(|f| f.starts_with("main.balances retains")),
            "{}",
            s.name
        );
    }
}

#[test]
fn nearly_emptied_map_is_flagged_and_mid_growth_map_counts_each_entry_once() {
    for s in samples().into_iter().filter(|s| s.program() == "zoo") {
        let r = all_maps(&s);
        assert!(
            r.findings
                .iter()
                .any(|f| f.starts_with("main.churn: its table takes")),
            "{}: {:?}",
            s.name,
            r.findings
        );
        let growing = truth_map(&s, "main.growing");
        let classic = s.minor() <= 23 || s.variant() == "noswissmap";
        assert_eq!(growing["mid_growth"].as_bool(), Some(classic), "{}", s.name);
        assert_eq!(
            find(&r, growing).entries,
            growing["entries"].as_u64().unwrap()
        );
    }
}

#[test]
fn json_markdown_and_redaction_from_the_command_line() {
    let s = sample("go1.26.6/ledger");
    let run = |args: &[&str]| {
        let mut all = vec!["maps".as_ref(), s.core.as_os_str()];
        all.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
        common::coreheap_stdout(all)
    };
    let json: serde_json::Value = serde_json::from_str(&run(&["--format", "json"])).unwrap();
    assert_eq!(json["schema"], "coreheap/maps/v1");
    assert_eq!(json["go_version"], "go1.26.6");
    for k in ["allocated_bytes", "reachable_bytes", "unreachable_bytes"] {
        assert!(json["heap"][k].is_u64(), "{k}");
    }
    let m = &json["maps"][0];
    for k in ["owner", "address", "key_type", "value_type", "groups"] {
        assert!(!m[k].is_null(), "{k}");
    }
    for k in [
        "entries",
        "table_bytes",
        "retained_bytes",
        "entries_retained_bytes",
        "tombstones",
    ] {
        assert!(m[k].is_u64(), "{k}");
    }
    assert_eq!(m["key_type"], "string");
    assert_eq!(m["value_type"], "*big.Int");
    assert!(m["groups"][0]["sample_key"]
        .as_str()
        .unwrap()
        .contains("acct:"));

    let md = run(&["--format", "markdown"]);
    assert!(md.starts_with("## What holds the memory"));
    assert!(md.contains("| `main.balances` |"));

    let redacted = run(&["--format", "json", "--redact"]);
    let sample_key = m["groups"][0]["sample_key"]
        .as_str()
        .unwrap()
        .trim_matches('"')
        .to_string();
    assert!(
        !redacted.contains(&sample_key),
        "a key leaked: {sample_key}"
    );
    let r: serde_json::Value = serde_json::from_str(&redacted).unwrap();
    assert_eq!(r["redacted"], true);
    assert!(r["maps"][0]["groups"][0]["sample_key"]
        .as_str()
        .unwrap()
        .contains("{n}#"));
}

/// `main.opaque` is reachable only through an `unsafe.Pointer`: from Go 1.22 it is found from
/// its buckets' or groups' malloc headers, on Go 1.21 (no malloc headers) by its header's and
/// bucket array's shape.
#[test]
fn a_map_behind_an_unsafe_pointer_is_found() {
    for s in samples().into_iter().filter(|s| s.program() == "zoo") {
        let r = all_maps(&s);
        let m = truth_map(&s, "main.opaque");
        let l = find(&r, m);
        assert_eq!(l.owner, "main.opaque", "{}", s.name);
        assert_eq!(l.key_type, "string", "{}", s.name);
        assert_eq!(l.value_type, "*big.Int", "{}", s.name);
        assert_eq!(l.entries, m["entries"].as_u64().unwrap(), "{}", s.name);
        assert_eq!(
            l.retained_bytes,
            m["total_bytes"].as_u64().unwrap(),
            "{}",
            s.name
        );
    }
}

#[test]
fn keys_and_values_over_128_bytes_are_followed_through_their_slot_pointers() {
    for s in samples().into_iter().filter(|s| s.program() == "zoo") {
        let r = all_maps(&s);
        let m = truth_map(&s, "main.wide");
        let l = find(&r, m);
        assert_eq!(l.key_type, "main.Digest", "{}", s.name);
        assert_eq!(l.value_type, "main.Record", "{}", s.name);
        // The map allocates each key and value as an object of its own: the entry retains both.
        assert_eq!(
            l.entries_retained_bytes,
            m["entries_bytes"].as_u64().unwrap(),
            "{}",
            s.name
        );
        assert!(l.groups[0].sample_key.starts_with('{') || l.groups[0].sample_key.starts_with('['));
    }
}

#[test]
fn nested_maps_count_once_in_the_total_that_maps_retain() {
    for s in samples().into_iter().filter(|s| s.program() == "zoo") {
        let r = all_maps(&s);
        // The program's maps, inner maps left out (their outer map retains them), plus every
        // map the runtime and libraries keep (not in the truth): at least the program's sum.
        let outer: u64 = s.truth["maps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| !m["name"].as_str().unwrap().starts_with("main.nested["))
            .map(|m| m["total_bytes"].as_u64().unwrap())
            .sum();
        let others: u64 = r
            .maps
            .iter()
            .filter(|l| !l.owner.starts_with("main.") && !l.owner.starts_with("goroutine"))
            .map(|l| l.retained_bytes)
            .sum();
        assert_eq!(r.maps_retained_bytes, outer + others, "{}", s.name);
        assert!(
            r.maps_retained_bytes <= r.heap.reachable_bytes,
            "{}",
            s.name
        );
    }
}

/// Following only the types that can lead to a map finds exactly what typing every object
/// finds, on every sample.
#[test]
fn typing_toward_maps_finds_what_typing_everything_finds() {
    let opts = MapsOptions {
        top: 0,
        ..Default::default()
    };
    for s in samples() {
        let all = report_scoped(&s, &opts, TypeScope::All).to_json().unwrap();
        let toward = report_scoped(&s, &opts, TypeScope::TowardMaps)
            .to_json()
            .unwrap();
        assert_eq!(toward, all, "{}", s.name);
    }
}

/// Every map the zoo and services programs made is one row, named as the program names it, or
/// (maps inside another map's entries) counted in its outer map's roll-up row; nothing else
/// of theirs is listed: no phantom header, no sync.Map internals, no row per inner map.
#[test]
fn every_program_map_is_listed_once() {
    for s in samples()
        .into_iter()
        .filter(|s| matches!(s.program(), "zoo" | "services"))
    {
        let r = all_maps(&s);
        let ours = |o: &str| o.starts_with("main.") || o.starts_with("goroutine ");
        let mut rows: Vec<String> = (r.maps.iter())
            .filter(|l| ours(&l.owner))
            .map(|l| without_goroutine_id(&l.owner))
            .collect();
        rows.sort();
        let maps = s.truth["maps"].as_array().unwrap();
        let is_inner =
            |m: &&serde_json::Value| m["name"].as_str().unwrap().starts_with("main.nested[");
        let mut want: Vec<String> = (maps.iter())
            .filter(|m| !is_inner(m))
            .map(expected_owner)
            .chain(std::iter::once("main.nested[*]".to_string()))
            .collect();
        want.sort();
        assert_eq!(rows, want, "{}", s.name);
        // The roll-up row counts the inner maps and their bytes: services writes their totals,
        // zoo each inner map.
        let rollup = r.maps.iter().find(|l| l.owner == "main.nested[*]").unwrap();
        let inner: Vec<&serde_json::Value> = maps.iter().filter(is_inner).collect();
        let sum = |f: &str| inner.iter().map(|m| m[f].as_u64().unwrap()).sum::<u64>();
        let totals = maps
            .iter()
            .find(|m| m["name"] == "main.nested")
            .and_then(|m| m.get("inner_maps"));
        let (count, entries, table, total) = match totals {
            Some(i) => (
                i["count"].as_u64().unwrap(),
                i["entries"].as_u64().unwrap(),
                i["table_bytes"].as_u64().unwrap(),
                i["total_bytes"].as_u64().unwrap(),
            ),
            None => (
                inner.len() as u64,
                sum("entries"),
                sum("table_bytes"),
                sum("total_bytes"),
            ),
        };
        assert_eq!(rollup.inner_maps, count, "{}", s.name);
        assert_eq!(rollup.entries, entries, "{}", s.name);
        assert_eq!(rollup.table_bytes, table, "{}", s.name);
        assert_eq!(rollup.retained_bytes, total, "{}", s.name);
        assert_eq!(rollup.nested.len() as u64, count, "{}", s.name);
    }
}

/// Values shared between two maps, and between a map and a slice, are named with the bytes
/// no single owner retains, as the services program counted them; its sync.Pool's pooled
/// buffers are counted after the one GC they survived.
#[test]
fn shared_values_and_pooled_objects_match_the_program() {
    for s in samples().into_iter().filter(|s| s.program() == "services") {
        let r = all_maps(&s);
        for want in s.truth["shared"].as_array().unwrap() {
            let owners: Vec<&str> = want["owners"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_str().unwrap())
                .collect();
            let got = r
                .shared
                .iter()
                .find(|x| x.owners == owners)
                .unwrap_or_else(|| panic!("{}: no shared line for {owners:?}", s.name));
            assert_eq!(got.values, want["entries"].as_u64().unwrap(), "{}", s.name);
            assert_eq!(got.objects, want["objects"].as_u64().unwrap(), "{}", s.name);
            assert_eq!(got.bytes, want["bytes"].as_u64().unwrap(), "{}", s.name);
            assert!(
                r.findings.iter().any(|f| f.contains(owners[1])),
                "{}: no finding names {}",
                s.name,
                owners[1]
            );
        }
        for want in s.truth["pools"].as_array().unwrap() {
            let name = want["name"].as_str().unwrap();
            let p = r
                .pools
                .iter()
                .find(|p| p.owner == name)
                .unwrap_or_else(|| panic!("{}: pool {name} not reported", s.name));
            assert_eq!(
                p.primary_objects + p.victim_objects,
                want["count"].as_u64().unwrap(),
                "{}",
                s.name
            );
            assert_eq!(p.held_bytes, want["bytes"].as_u64().unwrap(), "{}", s.name);
            // One GC moved them all to the victim cache, which the next one drops.
            assert_eq!(want["where"], "victim", "{}", s.name);
            assert_eq!(
                p.victim_objects,
                want["count"].as_u64().unwrap(),
                "{}",
                s.name
            );
            assert!(p.retained_bytes >= p.held_bytes, "{}", s.name);
            assert!(
                r.findings
                    .iter()
                    .any(|f| f.starts_with(&format!("{name} (sync.Pool) holds"))),
                "{}",
                s.name
            );
        }
    }
}

/// The maps document carries every field its schema requires, on a sample with every kind of
/// row: a stack map, sync.Maps, a roll-up with its inner maps, shared values and a pool.
#[test]
fn maps_json_has_every_field_its_schema_requires() {
    let schema = common::schema("maps-v1.json");
    let s = sample("go1.26.6/services");
    let doc: serde_json::Value = serde_json::from_str(&common::coreheap_stdout([
        "maps".as_ref(),
        s.core.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--top".as_ref(),
        "0".as_ref(),
        "--nested".as_ref(),
    ]))
    .unwrap();
    let has_all = common::has_required;
    has_all(&doc, &schema, "document");
    let props = &schema["properties"];
    let maps = doc["maps"].as_array().unwrap();
    for m in maps
        .iter()
        .chain(maps.iter().flat_map(|m| m["nested"].as_array().unwrap()))
    {
        has_all(m, &props["maps"]["items"], m["owner"].as_str().unwrap());
    }
    for (list, what) in [("shared", "shared"), ("pools", "pools")] {
        assert!(!doc[list].as_array().unwrap().is_empty(), "{what}");
        for x in doc[list].as_array().unwrap() {
            has_all(x, &props[list]["items"], what);
        }
    }
    let kinds: Vec<&str> = maps
        .iter()
        .map(|m| m["implementation"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"swiss") && kinds.contains(&"sync.Map"),
        "{kinds:?}"
    );
    assert!(maps.iter().any(|m| m["inner_maps"].as_u64().unwrap() > 0));
}
