//! The heap graph, dominators and types on every sample core, checked against independent
//! computations and against what each program measured about itself.

mod common;

use coreheap::analysis::{Analysis, NoProgress, PlainMemory};
use coreheap::report::heapview::{HeapView, Namer};
use coreheap::report::top::TopReport;
use coreheap_elf::memory::Addr;
use coreheap_go::heap::ObjId;
use coreheap_go::process::{OpenOptions, Process};
use coreheap_go::types::TypeScope;

use common::{sample, samples, Sample};

fn analyse(s: &Sample) -> (Process, Analysis) {
    let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
    let a = Analysis::run(&p, &NoProgress).unwrap_or_else(|e| panic!("{}: {e}", s.name));
    (p, a)
}

/// The analysis `top` and `path` run: types inferred only toward maps.
fn analyse_toward_maps(s: &Sample) -> (Process, Analysis) {
    let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
    let a = Analysis::run_scoped(&p, &NoProgress, &PlainMemory, TypeScope::TowardMaps)
        .unwrap_or_else(|e| panic!("{}: {e}", s.name));
    (p, a)
}

/// `top`'s report as the command makes it: the heap typed toward maps, then along the paths to
/// the retainers it lists.
fn top_report(s: &Sample, threshold: f64) -> TopReport {
    let (p, mut a) = analyse_toward_maps(s);
    let chosen = TopReport::choose(&HeapView::new(&a), threshold);
    a.type_paths(&p, chosen.paths()).unwrap();
    let view = HeapView::new(&a);
    let namer = Namer::new(&view, &p.dwarf, &p.mem);
    TopReport::gather(&namer, "", threshold, chosen)
}

/// `top`'s report with every object typed first (what `top` did before it typed only along its
/// paths).
fn top_report_typing_all(s: &Sample, threshold: f64) -> TopReport {
    let (p, a) = analyse(s);
    let view = HeapView::new(&a);
    let chosen = TopReport::choose(&view, threshold);
    let namer = Namer::new(&view, &p.dwarf, &p.mem);
    TopReport::gather(&namer, "", threshold, chosen)
}

fn map_addr(m: &serde_json::Value) -> Addr {
    let s = m["addr"].as_str().unwrap().trim_start_matches("0x");
    Addr(u64::from_str_radix(s, 16).unwrap())
}

#[test]
fn reachable_bytes_are_what_a_plain_traversal_finds_and_what_the_super_root_retains() {
    for s in samples() {
        let (_, a) = analyse(&s);
        let r = a.reachability();
        assert!(r.reachable_bytes <= r.allocated_bytes, "{}", s.name);
        assert_eq!(
            r.allocated_bytes,
            s.memstats["heap_alloc"].as_u64().unwrap(),
            "{}",
            s.name
        );
        // Independent: depth-first search from the super-root over the graph's edges.
        let g = &a.graph.graph;
        let mut seen = vec![false; g.node_count()];
        let mut stack = vec![a.graph.super_root()];
        seen[a.graph.super_root() as usize] = true;
        let mut bytes = 0u64;
        while let Some(v) = stack.pop() {
            if a.graph.is_object(v) {
                bytes += a.objects.size(ObjId(v));
            }
            for &w in g.successors(v) {
                if !seen[w as usize] {
                    seen[w as usize] = true;
                    stack.push(w);
                }
            }
        }
        assert_eq!(bytes, r.reachable_bytes, "{}", s.name);
        assert_eq!(a.retained.get(a.graph.super_root()), bytes, "{}", s.name);
    }
}

#[test]
fn dominators_of_every_sample_graph_agree_with_petgraph() {
    for s in samples() {
        let (_, a) = analyse(&s);
        // petgraph's algorithm runs on the production graph itself (graph::visit).
        let g = &a.graph.graph;
        let oracle = petgraph::algo::dominators::simple_fast(g, a.graph.super_root());
        for v in 0..g.node_count() as u32 {
            assert_eq!(
                a.doms.idom(v),
                oracle.immediate_dominator(v),
                "{}: node {v}",
                s.name
            );
        }
    }
}

#[test]
fn ledger_values_are_typed_as_big_ints_and_keys_as_string_data() {
    for s in samples().into_iter().filter(|s| s.program() == "ledger") {
        let (_p, a) = analyse(&s);
        let types = &a.types;
        let entries = s.truth["maps"][0]["entries"].as_u64().unwrap();
        let big_ints = (0..a.objects.len() as u32)
            .filter(|&o| types.name(ObjId(o)) == Some("math/big.Int"))
            .count() as u64;
        assert_eq!(big_ints, entries, "{}", s.name);
        // The map header is typed with the linker's synthesized map struct.
        let header = a
            .objects
            .find(&a.index, map_addr(&s.truth["maps"][0]))
            .unwrap();
        let name = types.name(header).unwrap_or("");
        assert!(
            name.starts_with("map<") || name.starts_with("hash<"),
            "{}: {name}",
            s.name
        );
    }
}

#[test]
fn top_ranks_the_ledger_map_first_with_the_programs_own_byte_count() {
    for s in samples().into_iter().filter(|s| s.program() == "ledger") {
        let top = top_report(&s, 5.0);
        let first = &top.retainers[0];
        assert!(
            first.path[0].label.starts_with("main.balances"),
            "{}: {:?}",
            s.name,
            first.path[0]
        );
        // Named as `maps` names it: the owner and the map's Go type.
        assert_eq!(first.owner, "main.balances", "{}", s.name);
        assert_eq!(first.type_name, "map[string]*big.Int", "{}", s.name);
        // The program measured the map's own tables and every key and value it created.
        let m = &s.truth["maps"][0];
        assert_eq!(
            first.address,
            map_addr(m).to_string(),
            "{}: the top retainer is the map header",
            s.name
        );
        assert_eq!(
            first.retained_bytes,
            m["total_bytes"].as_u64().unwrap(),
            "{}",
            s.name
        );
    }
}

#[test]
fn every_map_header_retains_exactly_what_its_program_allocated_for_it() {
    for s in samples() {
        let (_, a) = analyse(&s);
        // A map whose header is on a stack has no header object, and a sync.Map's address is
        // its struct's (tests/maps.rs checks both); values shared with another owner are
        // retained by neither.
        for m in s.truth["maps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["header_on_stack"] != true && m["impl"] != "sync.Map")
        {
            let o = a
                .objects
                .find(&a.index, map_addr(m))
                .unwrap_or_else(|| panic!("{}: no object at {}", s.name, m["addr"]));
            assert_eq!(
                a.retained.get(o.0),
                m["total_bytes"].as_u64().unwrap() - m["shared_bytes"].as_u64().unwrap_or(0),
                "{}: {}",
                s.name,
                m["name"]
            );
        }
    }
}

#[test]
fn path_reaches_a_ledger_value_from_the_global() {
    use coreheap::report::path::PathReport;
    let s = sample("go1.26.6/ledger");
    let inside = {
        let (_, a) = analyse(&s);
        let big = (0..a.objects.len() as u32)
            .find(|&o| a.types.name(ObjId(o)) == Some("math/big.Int"))
            .unwrap();
        // An address in the middle of the object resolves to the object.
        a.objects.addr(ObjId(big)).offset(8)
    };
    // As `coreheap path` runs: typed toward maps, then along the path to the value.
    let (p, mut a) = analyse_toward_maps(&s);
    let chosen = PathReport::choose(&HeapView::new(&a), inside).unwrap();
    let value = *chosen.nodes.last().unwrap();
    assert_eq!(
        a.types.name(ObjId(value)),
        None,
        "no map lies behind a big.Int"
    );
    a.type_paths(&p, std::slice::from_ref(&chosen.nodes))
        .unwrap();
    assert_eq!(a.types.name(ObjId(value)), Some("math/big.Int"));
    let view = HeapView::new(&a);
    let namer = Namer::new(&view, &p.dwarf, &p.mem);
    let r = PathReport::gather(&namer, chosen).unwrap();
    assert!(r.path[0].label.starts_with("main.balances"));
    // main.balances → its table → the entry for one key → the value: `main.balances["…"]`.
    assert!(
        r.expression.starts_with("main.balances[\""),
        "{}",
        r.expression
    );
    assert_eq!(r.fields.len(), r.path.len());
    assert_eq!(r.path.last().unwrap().label, "big.Int");
    assert!(r
        .dominators
        .iter()
        .any(|h| h.label == "map[string]*big.Int"));
}

/// `top` types only what lies along the paths to the retainers it lists, after typing toward
/// maps; on every sample its report is the one typing every object gives, and it types fewer.
#[test]
fn typing_along_the_paths_names_what_typing_every_object_names() {
    for s in samples() {
        let along = top_report(&s, 0.2);
        let all = top_report_typing_all(&s, 0.2);
        assert!(!along.retainers.is_empty(), "{}", s.name);
        assert_eq!(
            serde_json::to_string_pretty(&along).unwrap(),
            serde_json::to_string_pretty(&all).unwrap(),
            "{}",
            s.name
        );
    }
    let s = sample("go1.26.6/ledger");
    let (p, mut toward) = analyse_toward_maps(&s);
    let (_, every) = analyse(&s);
    let chosen = TopReport::choose(&HeapView::new(&toward), 0.2);
    toward.type_paths(&p, chosen.paths()).unwrap();
    assert!(
        toward.types.typed() * 10 < every.types.typed(),
        "{} typed along the paths, {} typing every object",
        toward.types.typed(),
        every.types.typed()
    );
}

/// After the program's final GC every live object was marked, so every one must be reachable
/// from the roots coreheap finds (globals, stacks, finalizers…), except the tiny-allocator block
/// each P was filling at that GC: the GC greys it itself, then the mcache lets it go.
#[test]
fn every_live_object_is_reachable_but_the_last_tiny_blocks() {
    for s in samples() {
        let (p, a) = analyse(&s);
        let rt = coreheap_go::runtime::Runtime::new(&p);
        let allp = rt.global("runtime.allp").unwrap();
        let ps = p.mem.u64(allp.offset(8)).unwrap();
        let mut unreachable = 0;
        for o in 0..a.graph.objects {
            if a.doms.is_reachable(o) {
                continue;
            }
            unreachable += 1;
            let span = &a.heap.spans[a.objects.span(ObjId(o))];
            // Span class 5: size class 2 (16 bytes), noscan: the tiny allocator's.
            assert_eq!(
                span.spanclass,
                5,
                "{}: unreachable {}",
                s.name,
                a.objects.addr(ObjId(o))
            );
        }
        assert!(
            unreachable <= ps,
            "{}: {unreachable} unreachable, {ps} Ps",
            s.name
        );
        assert!(a.warnings.is_empty(), "{}: {:?}", s.name, a.warnings);
    }
}

#[test]
fn sizes_asked_in_id_order_with_a_remembered_span_match_a_plain_lookup() {
    let s = &samples()[0];
    let (_, a) = analyse(s);
    let last = std::cell::Cell::new(0);
    let n = a.objects.len() as u32;
    // In order (the sweeps' pattern), then jumping back and forth.
    let order = (0..n)
        .chain((0..n).rev().step_by(7))
        .chain((0..n).step_by(13));
    for id in order {
        assert_eq!(
            a.objects.size_after(ObjId(id), &last),
            a.objects.size(ObjId(id)),
            "{} object {id}",
            s.name
        );
    }
}

/// `top` names what the standard library's holders keep by their types, held by their owner:
/// a sync.Pool's per-P cache array (not an unknown 256-byte object), a sync.Map's trie.
#[test]
fn top_names_pool_caches_and_sync_map_nodes() {
    for s in samples().into_iter().filter(|s| s.program() == "services") {
        let top = top_report(&s, 1.0);
        let pool = top
            .retainers
            .iter()
            .find(|r| r.path[0].label.starts_with("main.bufPool"))
            .unwrap_or_else(|| panic!("{}: the pool is not among the top retainers", s.name));
        assert_eq!(pool.type_name, "[]sync.poolLocal", "{}", s.name);
        let pooled: u64 = s.truth["pools"][0]["bytes"].as_u64().unwrap();
        assert!(pool.retained_bytes >= pooled, "{}", s.name);
    }
}
