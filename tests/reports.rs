//! What the reports show by default, and what they must never show: the prefix tree opened to
//! the heavy prefix the program names, the entries that retain the most, redaction in every
//! command and format, Markdown for every command.

mod common;

use std::collections::HashSet;

use coreheap::report::maps::{KeyGroup, MapLine, MapsOptions, MapsReport};

use common::{sample, samples, Sample};

fn report(s: &Sample, opts: &MapsOptions) -> MapsReport {
    common::maps_report(s, opts)
}

/// Every group of a tree, depth first.
fn flatten(groups: &[KeyGroup]) -> Vec<&KeyGroup> {
    let mut out = Vec::new();
    for g in groups {
        out.push(g);
        out.extend(flatten(&g.children));
    }
    out
}

/// The report's line for a map of truth.json: by address, or by owner for a map whose header
/// is in a frame (goroutine ids left out).
fn line<'r>(r: &'r MapsReport, m: &serde_json::Value) -> Option<&'r MapLine> {
    let addr = m["addr"].as_str().unwrap_or("");
    let name = m["name"].as_str().unwrap_or("");
    let bare = |o: &str| match o.strip_prefix("goroutine ") {
        Some(rest) => format!("goroutine {}", rest.split_once(' ').map_or(rest, |x| x.1)),
        None => o.to_string(),
    };
    (r.maps.iter().chain(r.maps.iter().flat_map(|l| &l.nested))).find(|l| {
        l.inner_maps == 0
            && if addr.is_empty() {
                bare(&l.owner) == name
            } else {
                l.address == addr
            }
    })
}

/// With no grouping flag, the key groups open where the bytes are: a map whose heaviest
/// prefix (as the program names its key families) holds most of its entries' bytes shows that
/// prefix, with the program's entry count and bytes.
#[test]
fn default_groups_open_to_the_heavy_prefix_the_program_names() {
    let mut checked = 0;
    for s in samples() {
        let r = report(
            &s,
            &MapsOptions {
                top: 0,
                nested: true,
                ..Default::default()
            },
        );
        for m in s.truth["maps"].as_array().unwrap() {
            let Some(prefixes) = m["prefixes"].as_array() else {
                continue;
            };
            let total: u64 = prefixes.iter().map(|p| p["bytes"].as_u64().unwrap()).sum();
            let Some(heavy) = prefixes.iter().max_by_key(|p| p["bytes"].as_u64().unwrap()) else {
                continue;
            };
            let bytes = heavy["bytes"].as_u64().unwrap();
            let name = heavy["prefix"].as_str().unwrap();
            // Bytes another owner shares are no group's own (tests/maps.rs checks those).
            let shared = m["shared_bytes"].as_u64().unwrap_or(0);
            if bytes * 2 <= total || name.is_empty() || shared > 0 {
                continue;
            }
            let ctx = format!("{}: {} {name}", s.name, m["name"]);
            let l = line(&r, m).unwrap_or_else(|| panic!("{ctx}: map not reported"));
            let all = flatten(&l.groups);
            let g = all.iter().find(|g| g.prefix == name).unwrap_or_else(|| {
                let shown: Vec<&str> = all.iter().map(|g| g.prefix.as_str()).collect();
                panic!("{ctx}: not among the groups shown: {shown:?}")
            });
            assert_eq!(g.entries, heavy["entries"].as_u64().unwrap(), "{ctx}");
            let hi = heavy["store_bytes"].as_u64().unwrap_or(bytes);
            assert!(
                (bytes..=hi).contains(&g.retained_bytes),
                "{ctx}: {} outside [{bytes}, {hi}]",
                g.retained_bytes
            );
            checked += 1;
        }
        // The incident map: `acct` opens into its regions, `acct:eu-west` first, with the
        // share of the map's entry bytes the program measured.
        if s.program() == "ledger" {
            let m = &s.truth["maps"][0];
            let acct = &r.maps[0].groups[0];
            assert_eq!(acct.prefix, "acct", "{}", s.name);
            let eu = &acct.children[0];
            assert_eq!(eu.prefix, "acct:eu-west", "{}", s.name);
            let share = m["prefixes"][0]["bytes"].as_f64().unwrap() * 100.0
                / m["entries_bytes"].as_f64().unwrap();
            assert!((eu.percent_of_map - share).abs() < 0.05, "{}", s.name);
            // Spread families stay closed: `sess` has no children.
            assert!(r.maps[0]
                .groups
                .iter()
                .all(|g| g.prefix == "acct" || g.children.is_empty()));
        }
    }
    assert!(checked >= 300, "only {checked} heavy prefixes checked");
}

/// `--entries N` lists the entries that retain the most, with the bytes the program measured
/// for each (every ledger key family has values of one size), and an address `path` follows
/// back to the map and the entry's key.
#[test]
fn entries_are_the_largest_with_their_true_sizes_and_a_path_back() {
    for s in samples().into_iter().filter(|s| s.program() == "ledger") {
        let r = report(
            &s,
            &MapsOptions {
                entries: 5,
                ..Default::default()
            },
        );
        let m = &s.truth["maps"][0];
        // Per entry, the largest family's bytes over its entries (an exact division).
        let (size, family) = m["prefixes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let (b, n) = (p["bytes"].as_u64().unwrap(), p["entries"].as_u64().unwrap());
                assert_eq!(b % n, 0, "{}: a family of mixed sizes", s.name);
                (b / n, p["prefix"].as_str().unwrap().to_string())
            })
            .max()
            .unwrap();
        let l = &r.maps[0];
        assert_eq!(l.top_entries.len(), 5, "{}", s.name);
        for e in &l.top_entries {
            assert_eq!(e.retained_bytes, size, "{}: {}", s.name, e.key);
            assert!(
                e.key.starts_with(&format!("\"{family}:")),
                "{}: {}",
                s.name,
                e.key
            );
            assert_eq!(e.value_type, "*big.Int");
        }
        // Each group lists its own largest entries.
        let eu = &l.groups[0].children[0];
        assert_eq!(eu.top_entries.len(), 5, "{}", s.name);
        assert!(eu.top_entries.iter().all(|e| e.retained_bytes == size));
        let tmp = l.groups.iter().find(|g| g.prefix == "tmp").unwrap();
        assert!(tmp.top_entries.iter().all(|e| e.key.starts_with("\"tmp:")));
        if s.name == "go1.26.6/ledger" {
            let e = &l.top_entries[0];
            let out = common::coreheap_stdout([
                "path".as_ref(),
                s.core.as_os_str(),
                e.address.as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
            ]);
            let path: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(
                path["expression"].as_str().unwrap(),
                format!("main.balances[{}]", e.key)
            );
        }
    }
}

/// Runs `coreheap COMMAND CORE ARGS…` on a sample; returns stdout and stderr, requiring success.
fn on(s: &Sample, command: &str, args: &[&str]) -> (String, String) {
    let mut all: Vec<&std::ffi::OsStr> = vec![command.as_ref(), s.core.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    run(&all)
}

/// Runs coreheap; returns stdout and stderr, requiring success.
fn run(args: &[&std::ffi::OsStr]) -> (String, String) {
    let out = assert_cmd::Command::cargo_bin("coreheap")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {err}");
    (String::from_utf8(out.stdout).unwrap(), err)
}

/// Every key of every map of a sample, as the unredacted report prints them.
fn every_key(s: &Sample) -> Vec<String> {
    let args = [
        "--format",
        "json",
        "--top",
        "0",
        "--entries",
        "1000000",
        "--key-width",
        "10000",
        "--nested",
    ];
    let (json, _) = on(s, "maps", &args);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut keys = Vec::new();
    let mut lines: Vec<&serde_json::Value> = v["maps"].as_array().unwrap().iter().collect();
    while let Some(l) = lines.pop() {
        lines.extend(l["nested"].as_array().unwrap());
        for e in l["top_entries"].as_array().unwrap() {
            keys.push(e["key"].as_str().unwrap().trim_matches('"').to_string());
        }
    }
    keys
}

/// Names of the executable's symbols: the program's own identifiers, which a report names
/// (`main.cache`) whatever its keys hold.
fn symbol_text(s: &Sample) -> String {
    use object::{Object, ObjectSymbol};
    let exe = common::unzstd(&s.exe());
    let file = object::File::parse(&*exe).unwrap();
    let mut text = String::new();
    for sym in file.symbols() {
        text.push_str(sym.name().unwrap_or(""));
        text.push('\n');
    }
    text
}

/// With --redact, no command in any format writes any field of any key (stdout or stderr):
/// fields of five characters or more with a letter (shorter fields and numbers turn up in
/// addresses and hashes by chance), other than the program's own identifiers.
#[test]
fn redaction_leaves_no_key_field_in_any_command_or_format() {
    for name in ["go1.26.6/zoo", "go1.26.6/services", "go1.23.9/services"] {
        let s = sample(name);
        let keys = every_key(&s);
        assert!(keys.len() > 1000, "{name}: {} keys", keys.len());
        let symbols = symbol_text(&s);
        let delimiters = coreheap_go::maps::keys::DEFAULT_DELIMITERS;
        let secrets: HashSet<&str> = keys
            .iter()
            .flat_map(|k| k.split(|c| delimiters.contains(c) || "{}[](), \"".contains(c)))
            .filter(|f| f.len() >= 5 && f.chars().any(char::is_alphabetic))
            .filter(|f| !symbols.contains(f))
            .collect();
        // The program's secret-looking keys are among them.
        for f in ["primary-host", "AWS_CA_BUNDLE"] {
            assert!(
                name.contains("services") || secrets.contains(f),
                "{name}: {f} is not a key field"
            );
        }
        // An entry's address, for `path`.
        let (json, _) = on(&s, "maps", &["--format", "json", "--entries", "1"]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let address = v["maps"][0]["top_entries"][0]["address"]
            .as_str()
            .unwrap()
            .to_string();
        let commands: [&[&str]; 5] = [
            &["maps", "--top", "0", "--all", "--entries", "3", "--nested"],
            &["top", "--threshold", "0.5"],
            &["histogram"],
            &["path", &address],
            &["info"],
        ];
        for cmd in commands {
            for format in ["table", "json", "markdown"] {
                let mut args = cmd[1..].to_vec();
                args.extend(["--format", format, "--redact"]);
                let (out, err) = on(&s, cmd[0], &args);
                for f in &secrets {
                    assert!(
                        !out.contains(f) && !err.contains(f),
                        "{name}: {cmd:?} --format {format} --redact shows the key field {f:?}"
                    );
                }
            }
        }
        // Without --redact the same check finds them: it can fail.
        let (plain, _) = on(&s, "maps", &["--top", "0", "--all", "--entries", "3"]);
        assert!(secrets.iter().any(|f| plain.contains(f)), "{name}");
    }
}

/// `--redact-keep N` keeps the first N fields: the heavy prefix stays readable, the ids not.
#[test]
fn redact_keep_shows_the_prefix_and_hides_the_rest() {
    let s = sample("go1.26.6/ledger");
    let (out, _) = on(
        &s,
        "maps",
        &[
            "--redact",
            "--redact-keep",
            "2",
            "--entries",
            "3",
            "--width",
            "160",
        ],
    );
    assert!(out.contains("acct:eu-west  e.g. \"…:{n}#"), "{out}");
    for k in every_key(&s) {
        let fields: Vec<&str> = k.split(':').collect();
        if let [_, _, id] = fields[..] {
            assert!(!out.contains(&format!(":{id}")), "{id}");
        }
    }
}

/// Every command writes Markdown: a heading, a table, and its special characters escaped.
#[test]
fn every_command_writes_markdown() {
    let s = sample("go1.26.6/zoo");
    for (cmd, heading) in [
        ("maps", "## What holds the memory"),
        ("top", "## Largest retainers"),
        ("histogram", "## Heap by type"),
        ("info", "## Core dump"),
    ] {
        let (out, _) = on(&s, cmd, &["--format", "markdown"]);
        assert!(out.starts_with(heading), "{cmd}: {out}");
        assert!(out.contains("\n|"), "{cmd}: no table");
        if cmd == "maps" {
            // Owners and types are code spans.
            assert!(out.contains("| `main.churn` |"), "{out}");
            assert!(out.contains("`string` → `int64`"), "{out}");
        }
    }
}

/// A roll-up row groups the keys of all its maps together: zoo's `main.nested[*]` has one
/// `acct` group holding every inner map's entries, opened at `acct:eu`, the family with most
/// of the bytes, each with the entries and bytes the program counted for its map.
#[test]
fn a_roll_up_groups_the_keys_of_all_its_maps_together() {
    for s in samples().into_iter().filter(|s| s.program() == "zoo") {
        let r = report(
            &s,
            &MapsOptions {
                top: 0,
                ..Default::default()
            },
        );
        let row = r.maps.iter().find(|l| l.owner == "main.nested[*]").unwrap();
        let inner: Vec<&serde_json::Value> = (s.truth["maps"].as_array().unwrap().iter())
            .filter(|m| m["name"].as_str().unwrap().starts_with("main.nested[\""))
            .collect();
        let entries: u64 = inner.iter().map(|m| m["entries"].as_u64().unwrap()).sum();
        assert_eq!(row.inner_maps, inner.len() as u64, "{}", s.name);
        assert_eq!(row.groups.len(), 1, "{}: {:?}", s.name, row.groups);
        let acct = &row.groups[0];
        assert_eq!((acct.prefix.as_str(), acct.entries), ("acct", entries));
        let eu = &acct.children[0];
        let truth_eu = &inner
            .iter()
            .find(|m| m["name"] == "main.nested[\"eu\"]")
            .unwrap()["prefixes"][0];
        assert_eq!(
            eu.prefix,
            truth_eu["prefix"].as_str().unwrap(),
            "{}",
            s.name
        );
        assert_eq!(
            eu.entries,
            truth_eu["entries"].as_u64().unwrap(),
            "{}",
            s.name
        );
        assert_eq!(
            eu.retained_bytes,
            truth_eu["bytes"].as_u64().unwrap(),
            "{}",
            s.name
        );
    }
}

/// The two ways of counting what nodes retain agree: the search from each node (for small
/// subtrees) and the climb from every object (for large ones, in pieces on every core), on
/// every node directly under a root (all of them, and the first 200, whose labels take a byte
/// per node) and on the map entries of each sample's largest map.
#[test]
fn retained_counts_agree_whichever_way_they_are_counted() {
    use coreheap_go::process::{OpenOptions, Process};
    for name in ["go1.21.13/zoo", "go1.26.6/services", "go1.26.6/ledger"] {
        let s = sample(name);
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let a = coreheap::analysis::Analysis::run_scoped(
            &p,
            &coreheap::analysis::NoProgress,
            &coreheap::analysis::PlainMemory,
            coreheap_go::types::TypeScope::TowardMaps,
        )
        .unwrap();
        let view = coreheap::report::heapview::HeapView::new(&a);
        let g = &a.graph;
        // Subtrees that do not nest: those of the nodes right under a root or the super-root.
        let tops: Vec<u32> = (0..g.objects)
            .filter(|&o| {
                a.doms
                    .idom(o)
                    .is_some_and(|d| g.as_root(d).is_some() || d == g.super_root())
            })
            .collect();
        let by_search = view.retained_counts_by_search(&tops);
        assert_eq!(by_search, view.retained_counts_by_climbing(&tops), "{name}");
        // Climbs from pieces on both cores meet on shared chains; the counts stay the same.
        for piece in [1, 97, 4096] {
            let climbed = view.retained_counts_by_climbing_in(&tops, piece);
            assert_eq!(by_search, climbed, "{name}, pieces of {piece}");
        }
        assert!(by_search.iter().sum::<u64>() > 1000, "{name}");
        // Fewer than 254 nodes: the climbs keep their labels in a byte per node.
        let few = &tops[..tops.len().min(200)];
        for piece in [97, 1 << 20] {
            assert_eq!(
                view.retained_counts_by_search(few),
                view.retained_counts_by_climbing_in(few, piece),
                "{name}, {} nodes, pieces of {piece}",
                few.len()
            );
        }
        let biggest = &a.maps.maps[0];
        let entries: Vec<u32> = (0..a.maps.entries_of(biggest).len())
            .map(|i| g.entry_node(biggest.first_entry as usize + i))
            .collect();
        assert_eq!(
            view.retained_counts_by_search(&entries),
            view.retained_counts_by_climbing(&entries),
            "{name}"
        );
    }
}

/// `histogram` on every ledger sample: the `big.Int` line holds one object per entry and
/// retains the values' bytes the program measured, and the map's own type retains the whole
/// map.
#[test]
fn histogram_retains_what_the_ledger_measured() {
    let ledgers: Vec<Sample> = samples()
        .into_iter()
        .filter(|s| s.name.ends_with("/ledger"))
        .collect();
    assert!(ledgers.len() >= 8, "{} ledger samples", ledgers.len());
    for s in &ledgers {
        let (json, _) = on(s, "histogram", &["--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let line = |name: &str| {
            v["types"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["type_name"] == name)
                .unwrap_or_else(|| panic!("{}: no {name} line", s.name))
                .clone()
        };
        let m = &s.truth["maps"][0];
        assert_eq!(m["name"], "main.balances", "{}", s.name);
        let values = line("big.Int");
        assert_eq!(values["count"], m["entries"], "{}", s.name);
        assert_eq!(values["retained_bytes"], m["value_bytes"], "{}", s.name);
        let map = line("map[string]*big.Int");
        assert_eq!(map["retained_bytes"], m["total_bytes"], "{}", s.name);
    }
}

/// `histogram` counts objects by type in pieces on every core; the lines, their order and
/// figures do not depend on where the pieces are cut (the samples fit in one default piece).
#[test]
fn histogram_lines_do_not_depend_on_the_pieces() {
    use coreheap::report::histogram::{HistogramReport, SortBy};
    use coreheap_go::process::{OpenOptions, Process};
    for name in ["go1.21.13/zoo", "go1.26.6/services", "go1.26.6/ledger"] {
        let s = sample(name);
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let a = coreheap::analysis::Analysis::run(&p, &coreheap::analysis::NoProgress).unwrap();
        let view = coreheap::report::heapview::HeapView::new(&a);
        let whole = HistogramReport::gather(&view, "go", SortBy::Count);
        assert!(
            a.graph.objects > 3 * 1000,
            "{name}: {} objects",
            a.graph.objects
        );
        for piece in [1, 1000, 4099] {
            let cut = HistogramReport::gather_in_pieces(&view, "go", SortBy::Count, piece);
            assert_eq!(
                whole.to_json().unwrap(),
                cut.to_json().unwrap(),
                "{name}, {piece}"
            );
        }
    }
}
