//! The heap walk against what each sample program measured with `runtime.ReadMemStats` after
//! its final GC: live objects per size class, in total, and their bytes must agree exactly.

mod common;

use coreheap_go::heap::Heap;
use coreheap_go::process::{OpenOptions, Process};
use coreheap_go::runtime::Runtime;

use common::samples;

#[test]
fn live_objects_per_size_class_equal_memstats() {
    let all = samples();
    assert!(!all.is_empty());
    for s in &all {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let rt = Runtime::new(&p);
        let heap = Heap::read(&rt).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let totals = heap.totals();
        let ms = &s.memstats;
        assert_eq!(totals.skipped_spans, 0, "{}", s.name);
        // The program ran runtime.GC(), which finishes sweeping: no garbage is left over.
        assert_eq!(totals.garbage_objects, 0, "{}", s.name);
        assert_eq!(
            totals.objects,
            ms["heap_objects"].as_u64().unwrap(),
            "{}: HeapObjects",
            s.name
        );
        assert_eq!(
            totals.bytes,
            ms["heap_alloc"].as_u64().unwrap(),
            "{}: HeapAlloc",
            s.name
        );
        let by_class = heap.by_class();
        for b in ms["by_size"].as_array().unwrap() {
            let size = b["size"].as_u64().unwrap();
            if size == 0 {
                continue;
            }
            let want = b["mallocs"].as_u64().unwrap() - b["frees"].as_u64().unwrap();
            let got: u64 = by_class
                .iter()
                .skip(1)
                .filter(|c| c.size == size)
                .map(|c| c.objects)
                .sum();
            assert_eq!(got, want, "{}: live objects of {size} bytes", s.name);
        }
    }
}

/// After a full GC every object a live object points to was marked, so a pointer word of a live
/// object that lands inside an in-use span must land on a live slot. Wrong pointer bits or wrong
/// liveness show up here as pointers to free slots.
#[test]
fn pointer_words_of_live_objects_point_to_live_objects() {
    use coreheap_go::heap::{HeapIndex, PointerBits};
    for s in samples() {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let rt = Runtime::new(&p);
        let heap = Heap::read(&rt).unwrap();
        let index = HeapIndex::new(&heap, coreheap_go::heap::PAGE_SIZE);
        let bits = PointerBits::new(&rt, &heap).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let (mut to_live, mut to_free) = (0u64, 0u64);
        let mut words = Vec::new();
        for (si, span) in heap.spans.iter().enumerate() {
            for i in span.live_slots() {
                words.clear();
                bits.pointer_words(&p.mem, &heap, si, i, &mut words)
                    .unwrap_or_else(|e| panic!("{}: {e}", s.name));
                for w in &words {
                    let v = p.mem.ptr(*w).unwrap();
                    if let Some(slot) = index.find(&heap, v) {
                        if heap.spans[slot.span as usize].is_live(slot.index) {
                            to_live += 1;
                        } else {
                            to_free += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(to_free, 0, "{}: pointers into free slots", s.name);
        // Every map entry's key or value is reached through at least one pointer.
        let entries: u64 = s.truth["maps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["entries"].as_u64().unwrap())
            .sum();
        assert!(to_live >= entries, "{}: {to_live} < {entries}", s.name);
    }
}

/// A large object read in pieces of its words (as the pointer scan reads a big bucket array on
/// every core) gives the same pointer words, in the same order, as read whole.
#[test]
fn pointer_words_read_in_pieces_equal_the_whole() {
    use coreheap_go::heap::PointerBits;
    let mut large = 0;
    for s in samples() {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let rt = Runtime::new(&p);
        let heap = Heap::read(&rt).unwrap();
        let bits = PointerBits::new(&rt, &heap).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let (mut whole, mut pieces) = (Vec::new(), Vec::new());
        for (si, span) in heap.spans.iter().enumerate() {
            if span.elemsize < 4096 || span.noscan() {
                continue;
            }
            for i in span.live_slots() {
                large += 1;
                whole.clear();
                pieces.clear();
                bits.pointer_words(&p.mem, &heap, si, i, &mut whole)
                    .unwrap_or_else(|e| panic!("{}: {e}", s.name));
                // Pieces of an odd size, so that they cut elements and bitmap words.
                for from in (0..span.elemsize / 8).step_by(77) {
                    bits.pointer_words_in(&p.mem, &heap, si, i, from..from + 77, &mut pieces)
                        .unwrap_or_else(|e| panic!("{}: {e}", s.name));
                }
                assert_eq!(pieces, whole, "{}: span {si} slot {i}", s.name);
            }
        }
    }
    assert!(
        large > 100,
        "only {large} large pointerful objects in the samples"
    );
}
