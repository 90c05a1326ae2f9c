//! Dense integer ids for the heap's live objects, and the way back from an id to its address.

use super::{Heap, HeapIndex};
use crate::memory::Addr;

/// A live heap object's id: objects are numbered in address order from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjId(pub u32);

/// What an address lookup found.
#[derive(Debug, Clone, Copy)]
pub struct Located {
    /// The object.
    pub id: ObjId,
    /// Its span index.
    pub span: usize,
    /// Whether the address is the start of the object's value (past any malloc header).
    pub at_start: bool,
}

/// Live objects numbered densely, with O(1) lookups both ways.
#[derive(Debug, Default)]
pub struct Objects {
    /// Slot index of each object within its span.
    slot: Vec<u32>,
    /// Id of each span's first live object.
    span_first: Vec<u32>,
    /// Each span's base address and slot size.
    span_geometry: Vec<(u64, u64)>,
    /// Each span's malloc header size: where values start inside a slot (0 or 8).
    span_header: Vec<u8>,
    /// Per span, where its rank blocks start in `rank`.
    span_rank: Vec<u32>,
    /// Live objects before each 64-slot block of a span, relative to the span's first.
    rank: Vec<u32>,
    /// For each block of 256 ids, the span holding its first id (to start the span search).
    span_hint: Vec<u32>,
}

/// Ids per entry of `span_hint`.
const HINT_SHIFT: u32 = 8;

impl Objects {
    /// Numbers the live objects of the heap.
    /// `malloc_header` is the size of the header objects of scan spans over 512 bytes (not
    /// large ones) start with (Go 1.22+), 0 when the runtime writes none.
    pub fn new(heap: &Heap, malloc_header: u8) -> Objects {
        let mut o = Objects::number(heap);
        o.span_header = heap
            .spans
            .iter()
            .map(|s| {
                let has = !s.noscan() && s.size_class() != 0 && s.elemsize > 512;
                if has {
                    malloc_header
                } else {
                    0
                }
            })
            .collect();
        let blocks = (o.slot.len() >> HINT_SHIFT) + 1;
        let mut si = 0usize;
        o.span_hint = (0..blocks)
            .map(|b| {
                let id = (b << HINT_SHIFT) as u32;
                while si + 1 < o.span_first.len() && o.span_first[si + 1] <= id {
                    si += 1;
                }
                si as u32
            })
            .collect();
        o
    }

    fn number(heap: &Heap) -> Objects {
        let mut o = Objects::default();
        for s in heap.spans.iter() {
            o.span_first.push(o.slot.len() as u32);
            o.span_geometry.push((s.base.0, s.elemsize));
            o.span_rank.push(o.rank.len() as u32);
            let mut seen = 0u32;
            for block in 0..s.nelems.div_ceil(64) {
                o.rank.push(seen);
                for i in block * 64..((block + 1) * 64).min(s.nelems) {
                    if s.is_live(i) {
                        o.slot.push(i as u32);
                        seen += 1;
                    }
                }
            }
        }
        o
    }

    /// Number of live objects.
    pub fn len(&self) -> usize {
        self.slot.len()
    }

    /// Whether the heap has no live objects.
    pub fn is_empty(&self) -> bool {
        self.slot.is_empty()
    }

    /// Start address of an object's slot.
    pub fn addr(&self, id: ObjId) -> Addr {
        let (base, elem) = self.span_geometry[self.span(id)];
        Addr(base + u64::from(self.slot[id.0 as usize]) * elem)
    }

    /// Span index of an object.
    pub fn span(&self, id: ObjId) -> usize {
        // The span lies between the hints of this block and the next: search only there.
        let b = (id.0 >> HINT_SHIFT) as usize;
        let lo = self.span_hint[b] as usize;
        let hi = self
            .span_hint
            .get(b + 1)
            .map_or(self.span_first.len(), |&h| h as usize + 1)
            .min(self.span_first.len());
        lo + self.span_first[lo..hi].partition_point(|&f| f <= id.0) - 1
    }

    /// Slot index of an object within its span.
    pub fn slot(&self, id: ObjId) -> u64 {
        u64::from(self.slot[id.0 as usize])
    }

    /// Slot size of an object (size-class rounded).
    pub fn size(&self, heap: &Heap, id: ObjId) -> u64 {
        heap.spans[self.span(id)].elemsize
    }

    /// The live object holding `addr`, if any.
    pub fn find(&self, heap: &Heap, index: &HeapIndex, addr: Addr) -> Option<ObjId> {
        self.find_in_span(heap, index, addr).map(|(o, _)| o)
    }

    /// The live object holding `addr` and its span index.
    pub fn find_in_span(
        &self,
        heap: &Heap,
        index: &HeapIndex,
        addr: Addr,
    ) -> Option<(ObjId, usize)> {
        self.locate(heap, index, addr).map(|f| (f.id, f.span))
    }

    /// The live object holding `addr`: its id, span, and whether `addr` is its value's start.
    pub fn locate(&self, heap: &Heap, index: &HeapIndex, addr: Addr) -> Option<Located> {
        let slot = index.find(heap, addr)?;
        let s = &heap.spans[slot.span as usize];
        if !s.is_live(slot.index) {
            return None;
        }
        let si = slot.span as usize;
        let block = slot.index / 64;
        let r = self.rank[self.span_rank[si] as usize + block as usize]
            + s.live_between(block * 64, slot.index);
        let (base, elem) = self.span_geometry[si];
        let value = base + slot.index * elem + u64::from(self.span_header[si]);
        Some(Located {
            id: ObjId(self.span_first[si] + r),
            span: si,
            at_start: addr.0 == value,
        })
    }

    /// Start address of an object whose span is known.
    pub fn addr_in(&self, span: usize, id: ObjId) -> Addr {
        let (base, elem) = self.span_geometry[span];
        Addr(base + u64::from(self.slot[id.0 as usize]) * elem)
    }

    /// Where an object's value starts (after any malloc header) and how long it can be.
    pub fn value_in(&self, span: usize, id: ObjId) -> (Addr, u64) {
        let (_, elem) = self.span_geometry[span];
        let h = u64::from(self.span_header[span]);
        (self.addr_in(span, id).offset(h), elem - h)
    }

    /// The ids of a span's live objects.
    pub fn span_ids(&self, span: usize) -> std::ops::Range<u32> {
        let end = self
            .span_first
            .get(span + 1)
            .copied()
            .unwrap_or(self.slot.len() as u32);
        self.span_first[span]..end
    }

    /// Bytes held by these tables.
    pub fn heap_size_bytes(&self) -> usize {
        (self.slot.capacity() + self.span_first.capacity()) * 4
            + self.span_geometry.capacity() * 16
            + self.span_header.capacity()
            + (self.span_rank.capacity() + self.rank.capacity() + self.span_hint.capacity()) * 4
    }
}
