//! Every live object's pointers to other live objects, found once and shared by type inference
//! and the final graph, with the byte offset of each pointer word inside its object.

use crate::heap::{Heap, HeapIndex, ObjId, Objects, PointerBits};
use crate::memory::{Addr, Memory};

/// Object-to-object edges in compact arrays, by object id.
#[derive(Debug, Default)]
pub struct RawEdges {
    /// `offsets[o]..offsets[o + 1]` are object `o`'s edges.
    offsets: Vec<u64>,
    /// Target object of each edge.
    targets: Vec<u32>,
    /// Offset of the pointer word from the start of the source object's slot.
    word_offsets: Vec<u32>,
    /// Pointer words that could not be read (damage in the core).
    pub unreadable: u64,
}

impl RawEdges {
    /// Reads every live object's pointer words and resolves them to live objects, on every core:
    /// runs of spans are resolved in parallel and joined in span order.
    pub fn build(
        mem: &Memory,
        heap: &Heap,
        index: &HeapIndex,
        objects: &Objects,
        bits: &PointerBits,
    ) -> RawEdges {
        use rayon::prelude::*;
        // Runs of spans holding about the same number of objects, several per thread.
        let per_run = (objects.len() / (rayon::current_num_threads() * 8)).max(1 << 14);
        let mut runs = Vec::new();
        let (mut start, mut count) = (0usize, 0usize);
        for si in 0..heap.spans.len() {
            count += objects.span_ids(si).len();
            if count >= per_run {
                runs.push(start..si + 1);
                (start, count) = (si + 1, 0);
            }
        }
        runs.push(start..heap.spans.len());
        let parts: Vec<RawEdges> = runs
            .into_par_iter()
            .map(|r| RawEdges::build_spans(mem, heap, index, objects, bits, r))
            .collect();
        let mut e = RawEdges {
            offsets: Vec::with_capacity(objects.len() + 1),
            targets: Vec::with_capacity(parts.iter().map(|p| p.targets.len()).sum()),
            word_offsets: Vec::with_capacity(parts.iter().map(|p| p.targets.len()).sum()),
            unreadable: 0,
        };
        e.offsets.push(0);
        for p in parts {
            let base = e.targets.len() as u64;
            e.offsets.extend(p.offsets.iter().skip(1).map(|o| o + base));
            e.targets.extend_from_slice(&p.targets);
            e.word_offsets.extend_from_slice(&p.word_offsets);
            e.unreadable += p.unreadable;
        }
        e
    }

    /// The edges of the objects of a run of spans (offsets start at 0).
    fn build_spans(
        mem: &Memory,
        heap: &Heap,
        index: &HeapIndex,
        objects: &Objects,
        bits: &PointerBits,
        spans: std::ops::Range<usize>,
    ) -> RawEdges {
        let mut e = RawEdges {
            offsets: vec![0],
            ..Default::default()
        };
        let mut words = Vec::new();
        for si in spans {
            for id in objects.span_ids(si) {
                let o = ObjId(id);
                let start = objects.addr_in(si, o);
                words.clear();
                if bits
                    .pointer_words(mem, heap, si, objects.slot(o), &mut words)
                    .is_err()
                {
                    e.unreadable += 1;
                }
                for w in &words {
                    match mem.u64(*w) {
                        Ok(0) => {}
                        Ok(v) => {
                            if let Some(t) = objects.find(heap, index, Addr(v)) {
                                e.targets.push(t.0);
                                e.word_offsets.push((w.0 - start.0) as u32);
                            }
                        }
                        Err(_) => e.unreadable += 1,
                    }
                }
                e.offsets.push(e.targets.len() as u64);
            }
        }
        e
    }

    /// Object `o`'s edges: (targets, word offsets), in word order.
    pub fn of(&self, o: u32) -> (&[u32], &[u32]) {
        let (s, t) = (
            self.offsets[o as usize] as usize,
            self.offsets[o as usize + 1] as usize,
        );
        (&self.targets[s..t], &self.word_offsets[s..t])
    }

    /// Bytes held.
    pub fn heap_size_bytes(&self) -> usize {
        self.offsets.capacity() * 8 + (self.targets.capacity() + self.word_offsets.capacity()) * 4
    }
}
