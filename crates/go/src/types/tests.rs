//! Type inference on the ledger sample, checked against what the program measured about its
//! one big map (truth.json): `balances map[string]*big.Int`, where every entry owns three
//! objects, its key's bytes, its `*big.Int` and the `[]big.Word` backing array of the Int's
//! magnitude, and the map's own storage is its header and tables.

use std::collections::BTreeSet;

use super::{Edges, HeapParts, Inference, ObjectTypes, TypeScope, UNTYPED};
use crate::heap::ObjId;
use crate::runtime::Runtime;
use crate::testing::{self, Phases};

/// Total bytes of these objects.
fn bytes(ph: &Phases, ids: impl IntoIterator<Item = ObjId>) -> u64 {
    ids.into_iter().map(|id| ph.objects.size(id)).sum()
}

/// Checks the types of the map's entries and storage: `storage` names the types Go gives the
/// map's header and tables for this implementation (the linker's `hash<K,V>`/`bucket<K,V>`
/// or `map<K,V>`/`table<K,V>`, the compiler's `noalg.map.group[K]V`, the runtime's
/// `mapextra`), `arrays` those among them that hold the entries' keys and values.
fn balances_entries_are_typed(sample: &str, storage: &[&str], arrays: &[&str]) {
    let truth = testing::truth_map(sample, "main.balances");
    let entries = testing::uint(&truth, "entries");
    let p = testing::open(sample);
    let ph = Phases::run(&p);

    // Every value is its own big.Int, one 32-byte object; the program makes no others.
    let ints = ph.typed("math/big.Int");
    assert_eq!(ints.len() as u64, entries, "{sample}: math/big.Int objects");
    assert!(
        ints.iter().all(|&id| ph.objects.size(id) == 32),
        "{sample}: a big.Int fills a 32-byte slot"
    );
    // Each Int's magnitude is one []big.Word array: the value bytes beyond the Ints.
    let words = ph.typed("math/big.Word");
    assert_eq!(
        words.len() as u64,
        entries,
        "{sample}: math/big.Word arrays"
    );
    assert_eq!(
        bytes(&ph, ints.iter().chain(&words).copied()),
        testing::uint(&truth, "value_bytes"),
        "{sample}: value bytes"
    );

    // The map's storage: its bytes are the table bytes the program measured.
    let mut table = Vec::new();
    for name in storage {
        let ids = ph.typed(name);
        assert!(!ids.is_empty(), "{sample}: no object typed {name}");
        table.extend(ids);
    }
    assert_eq!(
        bytes(&ph, table.iter().copied()),
        testing::uint(&truth, "table_bytes"),
        "{sample}: table bytes"
    );

    // What the slot arrays point at: each entry's key bytes (string data) and its Int.
    // Keys are 16 to 22 bytes, not below the tiny allocator's 16-byte limit: one object each.
    let (mut keys, mut values) = (BTreeSet::new(), BTreeSet::new());
    for name in arrays {
        for id in ph.typed(name) {
            for &t in ph.raw.targets_of(id.0) {
                match ph.types.name(ObjId(t)) {
                    Some("string data") => keys.insert(t),
                    Some("math/big.Int") => values.insert(t),
                    // A classic bucket's overflow pointer, into the preallocated overflow
                    // buckets at the end of the same array.
                    Some(n) if arrays.contains(&n) => false,
                    other => panic!("{sample}: {name} points at a {other:?}"),
                };
            }
        }
    }
    assert_eq!(keys.len() as u64, entries, "{sample}: key strings");
    assert_eq!(
        bytes(&ph, keys.iter().map(|&k| ObjId(k))),
        testing::uint(&truth, "key_bytes"),
        "{sample}: key bytes"
    );
    assert_eq!(
        values,
        ints.iter().map(|id| id.0).collect(),
        "{sample}: the map's values are the big.Ints"
    );
    // Three objects per entry: key, Int, magnitude.
    assert_eq!(
        keys.len() + ints.len() + words.len(),
        testing::uint(&truth, "objects") as usize,
        "{sample}: objects of the entries"
    );
}

#[test]
fn ledger_types_go1_21_classic() {
    balances_entries_are_typed(
        "go1.21.13/ledger",
        &[
            "hash<string,*math/big.Int>",
            "bucket<string,*math/big.Int>",
            "runtime.mapextra",
        ],
        &["bucket<string,*math/big.Int>"],
    );
}

#[test]
fn ledger_types_go1_24_noswissmap() {
    balances_entries_are_typed(
        "go1.24.11-noswissmap/ledger",
        &[
            "hash<string,*math/big.Int>",
            "bucket<string,*math/big.Int>",
            "runtime.mapextra",
        ],
        &["bucket<string,*math/big.Int>"],
    );
}

#[test]
fn ledger_types_go1_26_swiss() {
    balances_entries_are_typed(
        "go1.26.6/ledger",
        &[
            "map<string,*math/big.Int>",
            "*table<string,*math/big.Int>",
            "table<string,*math/big.Int>",
            "noalg.map.group[string]*math/big.Int",
        ],
        &["noalg.map.group[string]*math/big.Int"],
    );
}

/// Runs `f` on a sample's runtime, its heap parts as the analysis reads them, and its phases.
fn with_parts<T>(sample: &str, f: impl FnOnce(&Runtime, HeapParts, &Phases) -> T) -> T {
    let p = testing::open(sample);
    let ph = Phases::run(&p);
    let rt = Runtime::new(&p);
    let stack_vars = rt.frame_roots().unwrap().vars;
    let parts = HeapParts {
        heap: &ph.heap,
        index: &ph.index,
        objects: &ph.objects,
        stack_vars: &stack_vars,
        edges: Edges::Resolved(&ph.raw),
    };
    f(&rt, parts, &ph)
}

/// The drain on every core gives every object the type the sequential drain gives it, in both
/// scopes: classic and Swiss maps, the zoo of every kind of value, and the zoo samples of Go
/// 1.21 and 1.22, where one object is offered two types and the drain goes back to one core.
#[test]
fn the_drain_on_every_core_types_as_the_sequential_one() {
    for sample in [
        "go1.21.13/zoo",
        "go1.22.10/zoo",
        "go1.24.11-noswissmap/ledger",
        "go1.26.6/zoo",
        "go1.26.6/services",
        "go1.27.3/ledger",
    ] {
        with_parts(sample, |rt, parts, _| {
            for scope in [TypeScope::All, TypeScope::TowardMaps] {
                let types = |every_core| {
                    let t = ObjectTypes::infer_on(rt, parts, scope, every_core).unwrap();
                    (0..parts.objects.len() as u32)
                        .map(|i| t.get(ObjId(i)))
                        .collect::<Vec<_>>()
                };
                let (every, one) = (types(true), types(false));
                let typed = one.iter().flatten().count();
                assert!(typed > 40, "{sample} {scope:?}: only {typed} objects typed");
                let differ = (every.iter().zip(&one)).filter(|(a, b)| a != b).count();
                assert_eq!(differ, 0, "{sample} {scope:?}: types that differ");
            }
        });
    }
}

/// Where an object is offered two types (the Go 1.21 zoo sample), the drain on every core says
/// so and puts back what the seeds left, types and pending objects; where none is (Go 1.26's
/// zoo), it types objects beyond the seeds.
#[test]
fn an_object_offered_two_types_sends_the_drain_back_to_one_core() {
    for (sample, agrees) in [("go1.21.13/zoo", false), ("go1.26.6/zoo", true)] {
        with_parts(sample, |rt, parts, ph| {
            let n = parts.objects.len();
            let mut inf = Inference::new(rt, parts, TypeScope::All, vec![UNTYPED; n]).unwrap();
            inf.pending = vec![0; n.div_ceil(64)];
            inf.seed(rt);
            let (of, pending) = (inf.of.clone(), inf.pending.clone());
            assert_eq!(inf.drain_on_every_core(&ph.raw), agrees, "{sample}");
            let typed = |of: &[u32]| of.iter().filter(|&&t| t != UNTYPED).count();
            if agrees {
                assert!(typed(&inf.of) > typed(&of), "{sample}: nothing typed");
            } else {
                assert!(inf.of == of, "{sample}: the seeds' types are not back");
                assert!(
                    inf.pending == pending,
                    "{sample}: the pending objects are not back"
                );
            }
        });
    }
}
