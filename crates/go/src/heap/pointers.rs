//! Which words of a heap object hold pointers, per runtime generation, and where an address lands.

use std::collections::HashMap;

use super::{Heap, Span, MALLOC_HEADER_SIZE, MIN_SIZE_FOR_MALLOC_HEADER, PAGE_SIZE};
use crate::dwarf::DwarfError;
use crate::memory::{Addr, MemError, Memory};
use crate::runtime::{Runtime, RuntimeError};

/// Finds the span and slot holding an address in O(1): two array lookups, no hashing.
#[derive(Debug, Default)]
pub struct HeapIndex {
    page_size: u64,
    pages_per_chunk: u64,
    /// First chunk number covered by `chunks`.
    first_chunk: u64,
    /// Per chunk from `first_chunk`: span index + 1 per page (0 = no in-use span).
    chunks: Vec<Option<Box<[u32]>>>,
    /// Chunks too far from the others to fit the flat table (a scattered heap).
    far: HashMap<u64, Box<[u32]>, ChunkHash>,
}

/// Most chunk slots the flat table may have (8 bytes each).
const MAX_FLAT_CHUNKS: u64 = 1 << 22;

impl HeapIndex {
    /// Indexes every page of every in-use span.
    pub fn new(heap: &Heap, page_size: u64) -> HeapIndex {
        let pages_per_chunk = 8192;
        let chunk_of = |a: u64| a / page_size / pages_per_chunk;
        let first_chunk = heap.spans.first().map(|s| chunk_of(s.base.0)).unwrap_or(0);
        let last_chunk = heap
            .spans
            .last()
            .map(|s| chunk_of(s.base.0 + s.npages * page_size))
            .unwrap_or(0);
        let flat = (last_chunk - first_chunk + 1).min(MAX_FLAT_CHUNKS);
        let mut idx = HeapIndex {
            page_size,
            pages_per_chunk,
            first_chunk,
            chunks: (0..flat).map(|_| None).collect(),
            far: HashMap::default(),
        };
        for (i, s) in heap.spans.iter().enumerate() {
            let first = s.base.0 / page_size;
            for page in first..first + s.npages {
                let c = page / pages_per_chunk;
                let fresh = || vec![0u32; pages_per_chunk as usize].into_boxed_slice();
                let table = match c.checked_sub(first_chunk).filter(|&k| k < flat) {
                    Some(k) => idx.chunks[k as usize].get_or_insert_with(fresh),
                    None => idx.far.entry(c).or_insert_with(fresh),
                };
                table[(page % pages_per_chunk) as usize] = i as u32 + 1;
            }
        }
        idx
    }

    /// The index of the in-use span whose pages hold an address.
    pub fn span_at(&self, addr: Addr) -> Option<u32> {
        let page = addr.0 / self.page_size;
        let c = page / self.pages_per_chunk;
        let table = match c.checked_sub(self.first_chunk) {
            Some(k) if (k as usize) < self.chunks.len() => self.chunks[k as usize].as_ref()?,
            _ => self.far.get(&c)?,
        };
        table[(page % self.pages_per_chunk) as usize].checked_sub(1)
    }

    /// The span and slot an address falls in, if it is inside an in-use span's objects.
    pub fn find(&self, heap: &Heap, addr: Addr) -> Option<Slot> {
        let si = self.span_at(addr)?;
        let s = &heap.spans[si as usize];
        let index = (addr.0 - s.base.0) / s.elemsize;
        (index < s.nelems).then_some(Slot { span: si, index })
    }
}

/// Hashes chunk numbers (already well spread) with one multiplication.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChunkHash;

impl std::hash::BuildHasher for ChunkHash {
    type Hasher = ChunkHasher;
    fn build_hasher(&self) -> ChunkHasher {
        ChunkHasher(0)
    }
}

/// The hasher of [`ChunkHash`].
#[derive(Debug, Default)]
pub struct ChunkHasher(u64);

impl std::hash::Hasher for ChunkHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A heap address resolved to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Index into `Heap::spans`.
    pub span: u32,
    /// Object slot within the span.
    pub index: u64,
}

/// How the runtime records pointer words; one variant per runtime generation.
#[derive(Debug)]
pub enum PointerBits {
    /// Go 1.21: one bit per word of the arena in `heapArena.bitmap`, cut short by `noMorePtrs`.
    ArenaBitmap {
        /// Address of the arena L2 array (`mheap_.arenas[0]`).
        l2: Addr,
        /// `arenaBaseOffset` as the runtime adds it.
        base_offset: u64,
        /// Bytes per arena.
        arena_bytes: u64,
        /// Offset of `bitmap` in `heapArena`.
        bitmap_off: u64,
        /// Offset of `noMorePtrs` in `heapArena`.
        no_more_ptrs_off: u64,
    },
    /// Go 1.22+: span-end heap bits for small objects, malloc headers and `largeType` above.
    AllocationHeaders {
        /// Bytes of Green Tea inline mark bits below the heap bits (0 without Green Tea).
        inline_marks: u64,
        /// Offsets in `internal/abi.Type`.
        ty: TypeLayout,
        /// Per span: the `largeType` of a large scan object.
        span_large_types: Vec<Option<Addr>>,
        /// Large objects whose type's mask is built on demand and was never built: pointer word
        /// offsets from DWARF, with the type's size (by span index).
        dwarf_masks: HashMap<usize, (u64, Vec<u64>)>,
    },
}

/// Offsets of `internal/abi.Type` fields.
#[derive(Debug, Clone, Copy)]
pub struct TypeLayout {
    size: u64,
    ptr_bytes: u64,
    tflag: u64,
    gcdata: u64,
    /// TFlag bit meaning GCData points to a pointer to a lazily built mask (1.24+).
    gc_mask_on_demand: Option<u8>,
}

impl PointerBits {
    /// Reads the layout of pointer bits for this runtime.
    pub fn new(rt: &Runtime, heap: &Heap) -> Result<PointerBits, RuntimeError> {
        let d = rt.dwarf();
        let konst = |n: &str| {
            d.constant(n)
                .ok_or_else(|| RuntimeError::from(DwarfError::NoVariable(n.to_string())))
        };
        if !rt.features.allocation_headers {
            let bitmap = crate::runtime::arena_bitmap_field(d).unwrap_or("bitmap");
            let no_more_ptrs = bitmap.replace("bitmap", "noMorePtrs");
            let mheap = rt.global("runtime.mheap_")?;
            let arenas = rt.dwarf().offset("runtime.mheap", "arenas")?;
            let l2 = rt
                .mem()
                .ptr(mheap.offset(arenas))
                .map_err(|source| RuntimeError::Memory {
                    what: "mheap_.arenas[0]".into(),
                    source,
                })?;
            return Ok(PointerBits::ArenaBitmap {
                l2,
                base_offset: konst("runtime.arenaBaseOffsetUintptr")? as u64,
                arena_bytes: konst("runtime.heapArenaBytes")? as u64,
                bitmap_off: d.offset("runtime.heapArena", bitmap)?,
                no_more_ptrs_off: d.offset("runtime.heapArena", &no_more_ptrs)?,
            });
        }
        let inline_marks = if rt.features.green_tea {
            d.size_of("runtime.spanInlineMarkBits")?
        } else {
            0
        };
        let t = "internal/abi.Type";
        let ty = TypeLayout {
            size: d.offset(t, "Size_")?,
            ptr_bytes: d.offset(t, "PtrBytes")?,
            tflag: d.offset(t, "TFlag")?,
            gcdata: d.offset(t, "GCData")?,
            gc_mask_on_demand: d
                .constant("internal/abi.TFlagGCMaskOnDemand")
                .map(|v| v as u8),
        };
        // Large objects' types hang off their span; find each span's mspan by address.
        let large_off = d.offset("runtime.mspan", "largeType")?;
        let span_large_types: Vec<Option<Addr>> = heap
            .spans
            .iter()
            .map(|s| {
                s.has_large_type()
                    .then(|| rt.mem().ptr(s.mspan.offset(large_off)).ok())
                    .flatten()
            })
            .collect();
        let mut dwarf_masks = HashMap::new();
        if let Some(flag) = ty.gc_mask_on_demand {
            let types_base = rt.field_uint(
                rt.global("runtime.firstmoduledata")?,
                "runtime.moduledata",
                "types",
            )?;
            let layouts = crate::types::Layouts::new(d);
            for (si, t) in span_large_types.iter().enumerate() {
                let Some(t) = *t else { continue };
                let mem = rt.mem();
                let (Ok(tflag), Ok(slot), Ok(size)) = (
                    mem.u8(t.offset(ty.tflag)),
                    mem.ptr(t.offset(ty.gcdata)),
                    mem.u64(t.offset(ty.size)),
                ) else {
                    continue;
                };
                if tflag & flag == 0 || mem.u64(slot).is_ok_and(|m| m != 0) {
                    continue;
                }
                if let Some(dt) =
                    t.0.checked_sub(types_base)
                        .and_then(|off| d.type_by_runtime_offset(off))
                {
                    dwarf_masks.insert(si, (size, layouts.pointer_offsets(dt)));
                }
            }
        }
        Ok(PointerBits::AllocationHeaders {
            dwarf_masks,
            inline_marks,
            ty,
            span_large_types,
        })
    }

    /// Appends the addresses of the pointer words of slot `i` of span `si` to `out`.
    pub fn pointer_words(
        &self,
        mem: &Memory,
        heap: &Heap,
        si: usize,
        i: u64,
        out: &mut Vec<Addr>,
    ) -> Result<(), MemError> {
        self.pointer_words_in(mem, heap, si, i, 0..u64::MAX, out)
    }

    /// Appends the addresses of the pointer words of slot `i` of span `si` whose word index
    /// in the slot lies in `range` to `out` (a large object read in pieces).
    // One function: one arm per runtime generation of pointer bits (1.21's arena bitmap,
    // 1.22+'s span bits, malloc headers and large types), each a loop over the same range of
    // words; the arms share the span and range checks made at the top.
    pub fn pointer_words_in(
        &self,
        mem: &Memory,
        heap: &Heap,
        si: usize,
        i: u64,
        range: std::ops::Range<u64>,
        out: &mut Vec<Addr>,
    ) -> Result<(), MemError> {
        let s = &heap.spans[si];
        if s.noscan() {
            return Ok(());
        }
        let obj = s.slot(i);
        let words = (s.elemsize / 8).min(range.end);
        let (lo, hi) = (range.start.saturating_mul(8), range.end.saturating_mul(8));
        let in_range = |a: Addr| (lo..hi).contains(&(a.0 - obj.0));
        match self {
            PointerBits::ArenaBitmap {
                l2,
                base_offset,
                arena_bytes,
                bitmap_off,
                no_more_ptrs_off,
            } => {
                let mut w = range.start;
                while w < words {
                    let a = obj.offset(8 * w);
                    let ai = a.0.wrapping_sub(*base_offset) / arena_bytes;
                    let ha = mem.ptr(l2.offset(8 * ai))?;
                    let word_in_arena = (a.0 % arena_bytes) / 8;
                    let idx = word_in_arena / 64;
                    let bits = mem.u64(ha.offset(bitmap_off + 8 * idx))?;
                    // Walk to the end of this bitmap word or of the object.
                    let first = word_in_arena % 64;
                    let n = (64 - first).min(words - w);
                    for b in 0..n {
                        if bits >> (first + b) & 1 == 1 {
                            out.push(obj.offset(8 * (w + b)));
                        }
                    }
                    w += n;
                    if w < words {
                        let nm = mem.u8(ha.offset(no_more_ptrs_off + idx / 8))?;
                        if nm >> (idx % 8) & 1 == 1 {
                            break;
                        }
                    }
                }
            }
            PointerBits::AllocationHeaders {
                inline_marks,
                ty,
                span_large_types,
                dwarf_masks,
            } => {
                if s.elemsize <= MIN_SIZE_FOR_MALLOC_HEADER {
                    let span_bytes = s.npages * PAGE_SIZE;
                    let bitmap_bytes = span_bytes / 64;
                    let mut hb = s.base.offset(span_bytes - bitmap_bytes);
                    if *inline_marks > 0 && s.elemsize >= 16 {
                        hb = Addr(hb.0 - inline_marks);
                    }
                    let first = (obj.0 - s.base.0) / 8;
                    let bytes = mem.read(
                        hb.offset(first / 8),
                        ((first % 8 + words).div_ceil(8)) as usize,
                    )?;
                    for w in range.start..words {
                        let bit = first % 8 + w;
                        if bytes[(bit / 8) as usize] >> (bit % 8) & 1 == 1 {
                            out.push(obj.offset(8 * w));
                        }
                    }
                    return Ok(());
                }
                let (typ, start, len) = if s.size_class() != 0 {
                    (
                        mem.ptr(obj)?,
                        obj.offset(MALLOC_HEADER_SIZE),
                        s.elemsize - MALLOC_HEADER_SIZE,
                    )
                } else {
                    match span_large_types[si] {
                        Some(t) => (t, obj, s.elemsize),
                        None => return Ok(()),
                    }
                };
                if typ.0 == 0 {
                    return Ok(());
                }
                // The type tiles the object (arrays and slices' backing stores): the elements
                // that overlap the range.
                let elems = |size: u64| {
                    let first = lo.saturating_sub(start.0 - obj.0) / size * size;
                    (first..len.saturating_sub(size - 1))
                        .step_by(size as usize)
                        .take_while(move |&e| start.0 - obj.0 + e < hi)
                };
                if let Some((size, offsets)) = dwarf_masks.get(&si).filter(|m| m.0 > 0) {
                    for elem in elems(*size) {
                        let at = offsets.iter().map(|o| start.offset(elem + o));
                        out.extend(at.filter(|&a| in_range(a)));
                    }
                    return Ok(());
                }
                let size = mem.u64(typ.offset(ty.size))?;
                let ptr_bytes = mem.u64(typ.offset(ty.ptr_bytes))?;
                let tflag = mem.u8(typ.offset(ty.tflag))?;
                let mut mask = mem.ptr(typ.offset(ty.gcdata))?;
                if ty.gc_mask_on_demand.is_some_and(|f| tflag & f != 0) {
                    mask = mem.ptr(mask)?;
                }
                if size == 0 || ptr_bytes == 0 || mask.0 == 0 {
                    return Ok(());
                }
                let mask_bytes = mem.read(mask, (ptr_bytes / 8).div_ceil(8) as usize)?;
                for elem in elems(size) {
                    for w in 0..ptr_bytes / 8 {
                        let a = start.offset(elem + 8 * w);
                        if mask_bytes[(w / 8) as usize] >> (w % 8) & 1 == 1 && in_range(a) {
                            out.push(a);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Span {
    /// Iterates live slot indexes.
    pub fn live_slots(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.nelems).filter(|&i| self.is_live(i))
    }
}

#[cfg(test)]
mod tests;
