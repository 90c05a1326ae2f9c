//! The object graph of a heap: one node per live object, one per root, and a super-root.

use super::{Graph, SequentialBuilder};
use crate::heap::{Heap, HeapIndex, ObjId, Objects, PointerBits};
use crate::memory::Memory;
use crate::roots::Root;

/// The heap as a graph: objects are nodes `0..objects`, then one node per root, then the super-root.
#[derive(Debug)]
pub struct HeapGraph {
    /// The edges.
    pub graph: Graph,
    /// Number of object nodes.
    pub objects: u32,
    /// Number of root nodes (after the objects).
    pub roots: u32,
    /// Pointer words that could not be read (damage in the core).
    pub unreadable_words: u64,
}

impl HeapGraph {
    /// Builds the graph from the live objects' pointer words and the roots' slots.
    pub fn build(
        mem: &Memory,
        heap: &Heap,
        index: &HeapIndex,
        objects: &Objects,
        bits: &PointerBits,
        roots: &[Root],
    ) -> HeapGraph {
        let mut b = SequentialBuilder::new();
        let mut words = Vec::new();
        let mut succ: Vec<u32> = Vec::new();
        let mut unreadable = 0u64;
        let target = |v: u64| {
            objects
                .find(heap, index, crate::memory::Addr(v))
                .map(|o| o.0)
        };
        for id in 0..objects.len() as u32 {
            let span = objects.span(ObjId(id));
            let s = &heap.spans[span];
            let slot = (objects.addr(ObjId(id)).0 - s.base.0) / s.elemsize;
            words.clear();
            succ.clear();
            if bits
                .pointer_words(mem, heap, span, slot, &mut words)
                .is_err()
            {
                unreadable += 1;
            }
            for w in &words {
                match mem.u64(*w) {
                    Ok(v) if v != 0 => succ.extend(target(v)),
                    Ok(_) => {}
                    Err(_) => unreadable += 1,
                }
            }
            b.push(&succ);
        }
        for r in roots {
            succ.clear();
            for (slot, _) in &r.slots {
                match mem.u64(*slot) {
                    Ok(v) if v != 0 => succ.extend(target(v)),
                    Ok(_) => {}
                    Err(_) => unreadable += 1,
                }
            }
            b.push(&succ);
        }
        let n = objects.len() as u32;
        let root_ids: Vec<u32> = (n..n + roots.len() as u32).collect();
        b.push(&root_ids);
        HeapGraph {
            graph: b.build(),
            objects: n,
            roots: roots.len() as u32,
            unreadable_words: unreadable,
        }
    }

    /// The super-root's node id.
    pub fn super_root(&self) -> u32 {
        self.objects + self.roots
    }

    /// Node id of root `i`.
    pub fn root_node(&self, i: usize) -> u32 {
        self.objects + i as u32
    }

    /// Whether a node is an object.
    pub fn is_object(&self, v: u32) -> bool {
        v < self.objects
    }
}
