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
    /// Reads every live object's pointer words and resolves them to live objects.
    pub fn build(
        mem: &Memory,
        heap: &Heap,
        index: &HeapIndex,
        objects: &Objects,
        bits: &PointerBits,
    ) -> RawEdges {
        let mut e = RawEdges {
            offsets: Vec::with_capacity(objects.len() + 1),
            ..Default::default()
        };
        e.offsets.push(0);
        let mut words = Vec::new();
        for si in 0..heap.spans.len() {
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
