//! The heap walk against what each sample program measured with `runtime.ReadMemStats` after
//! its final GC: live objects per size class, in total, and their bytes must agree exactly.

mod common;

use coreheap::heap::Heap;
use coreheap::process::{OpenOptions, Process};
use coreheap::runtime::Runtime;

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
