//! The Go heap in the core: in-use spans and which of their object slots are allocated and live.

mod objects;
mod pointers;

pub use objects::{Located, ObjId, Objects, LOCATE_BATCH};
pub use pointers::{HeapIndex, PointerBits, Slot};

use serde::Serialize;

use rayon::prelude::*;

use crate::memory::Addr;
use crate::runtime::{Runtime, RuntimeError};

/// `mSpanInUse`: a span of heap objects (as opposed to stacks or free pages).
const SPAN_IN_USE: u64 = 1;
/// The runtime's page size (`pageSize`, 8 KiB on every platform): spans are whole pages.
pub const PAGE_SIZE: u64 = 8192;
/// Objects of small size classes larger than this carry a malloc header; smaller ones keep
/// their pointer bits at the end of their span (`minSizeForMallocHeader`, Go 1.22+).
pub const MIN_SIZE_FOR_MALLOC_HEADER: u64 = 512;
/// Bytes of a malloc header: a pointer to the object's type (`mallocHeaderSize`).
pub const MALLOC_HEADER_SIZE: u64 = 8;
/// The runtime constants the heap model is written for, by their names in the runtime's
/// DWARF: [`Heap::read`] refuses a program whose DWARF says otherwise.
const RUNTIME_CONSTANTS: [(&str, u64); 3] = [
    ("runtime.pageSize", PAGE_SIZE),
    ("runtime.minSizeForMallocHeader", MIN_SIZE_FOR_MALLOC_HEADER),
    ("runtime.mallocHeaderSize", MALLOC_HEADER_SIZE),
];

/// Checks the program's runtime constants (those its DWARF records; the malloc header ones
/// exist from Go 1.22) against the values the heap model uses.
fn check_runtime_constants(rt: &Runtime) -> Result<(), RuntimeError> {
    for (name, expected) in RUNTIME_CONSTANTS {
        match rt.dwarf().constant(name) {
            Some(found) if u64::try_from(found) != Ok(expected) => {
                return Err(RuntimeError::UnsupportedConstant {
                    name,
                    found,
                    expected,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Bytes of the malloc header in front of a small object's value on this runtime: none
/// before allocation headers (Go 1.22).
pub fn malloc_header_bytes(rt: &Runtime) -> u8 {
    if rt.features.allocation_headers {
        MALLOC_HEADER_SIZE as u8
    } else {
        0
    }
}

/// Largest span believed (1 TiB); anything larger is damage.
const MAX_SPAN_PAGES: u64 = 1 << 27;

/// Entries of `mheap_.allspans` one core reads at a time.
const SPAN_PIECE: usize = 4096;

/// One in-use heap span.
#[derive(Debug, Clone)]
pub struct Span {
    /// Address of the runtime's `mspan`.
    pub mspan: Addr,
    /// First byte.
    pub base: Addr,
    /// Pages it covers.
    pub npages: u64,
    /// Bytes per object slot (the size class size; the whole span for large objects).
    pub elemsize: u64,
    /// Object slots.
    pub nelems: u64,
    /// Size class << 1 | noscan.
    pub spanclass: u8,
    /// Slots below this index were handed out since the last sweep.
    pub freeindex: u64,
    /// Whether the span still holds the previous cycle's garbage (not yet swept).
    pub unswept: bool,
    /// One bit per slot: allocated (including slots below `freeindex`).
    pub allocated: Vec<u8>,
    /// One bit per slot: allocated and, for unswept spans, marked by the last GC.
    pub live: Vec<u8>,
}

impl Span {
    /// The size class (0 for large objects).
    pub fn size_class(&self) -> u8 {
        self.spanclass >> 1
    }

    /// Whether its objects hold no pointers.
    pub fn noscan(&self) -> bool {
        self.spanclass & 1 == 1
    }

    /// Whether its objects start with a malloc header naming their type (Go 1.22+: small
    /// objects of pointerful types over [`MIN_SIZE_FOR_MALLOC_HEADER`]).
    pub fn has_malloc_headers(&self) -> bool {
        !self.noscan() && self.size_class() != 0 && self.elemsize > MIN_SIZE_FOR_MALLOC_HEADER
    }

    /// Whether it holds one large object of a pointerful type, whose type the span names in
    /// `largeType` (Go 1.22+).
    pub fn has_large_type(&self) -> bool {
        !self.noscan() && self.size_class() == 0
    }

    /// Whether the allocator wrote down the type of its objects (Go 1.22+): in their malloc
    /// headers or in the span's `largeType`.
    pub fn records_types(&self) -> bool {
        self.has_malloc_headers() || self.has_large_type()
    }

    /// Whether slot `i` holds a live object.
    pub fn is_live(&self, i: u64) -> bool {
        bit(&self.live, i)
    }

    /// Address of slot `i`.
    pub fn slot(&self, i: u64) -> Addr {
        self.base.offset(i * self.elemsize)
    }

    /// Its bytes: (base, length).
    pub fn extent(&self) -> (Addr, u64) {
        (self.base, self.npages * PAGE_SIZE)
    }
}

fn bit(bits: &[u8], i: u64) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b >> (i % 8) & 1 == 1)
}

/// Live objects of one size class.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClassCount {
    /// Slot size in bytes (for large objects: 0, and `bytes` holds their sizes).
    pub size: u64,
    /// Live objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The heap's spans and totals.
#[derive(Debug, Clone)]
pub struct Heap {
    /// In-use spans, in address order.
    pub spans: Vec<Span>,
    /// Spans whose state could not be read and were skipped.
    pub skipped_spans: u64,
}

/// Totals over the heap.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HeapTotals {
    /// Live objects (what `MemStats.HeapObjects` counts, tiny blocks as one).
    pub objects: u64,
    /// Their bytes, size-class rounded (what `MemStats.HeapAlloc` counts).
    pub bytes: u64,
    /// Allocated objects in unswept spans that the last GC did not mark.
    pub garbage_objects: u64,
    /// Their bytes.
    pub garbage_bytes: u64,
    /// Spans that could not be read.
    pub skipped_spans: u64,
}

impl Heap {
    /// Reads every in-use span from `mheap_.allspans`.
    pub fn read(rt: &Runtime) -> Result<Heap, RuntimeError> {
        check_runtime_constants(rt)?;
        let mem = rt.mem();
        let mem_err = |what: &'static str| {
            move |source| RuntimeError::Memory {
                what: what.to_string(),
                source,
            }
        };
        let mheap = rt.global("runtime.mheap_")?;
        let h = "runtime.mheap";
        let sweepgen = rt.field_uint(mheap, h, "sweepgen")? as u32;
        let allspans_off = rt.dwarf().offset(h, "allspans")?;
        let arr = mem
            .ptr(mheap.offset(allspans_off))
            .map_err(mem_err("mheap_.allspans"))?;
        let len = mem
            .u64(mheap.offset(allspans_off + 8))
            .map_err(mem_err("mheap_.allspans"))?
            .min(1 << 32);
        let gc_running = rt.gc_in_progress()?;
        let layout = SpanLayout::new(rt)?;
        // Span records lie all over the runtime's memory: read them on every core.
        let read: Vec<(Vec<Span>, u64)> = crate::graph::pieces(0..len as usize, SPAN_PIECE)
            .into_par_iter()
            .map(|piece| {
                let (mut spans, mut skipped) = (Vec::new(), 0u64);
                for i in piece {
                    let Ok(sp) = mem.ptr(arr.offset(8 * i as u64)) else {
                        skipped += 1;
                        continue;
                    };
                    if sp.0 == 0 {
                        continue;
                    }
                    match layout.read(mem, sp, sweepgen, gc_running) {
                        Ok(Some(s)) => spans.push(s),
                        Ok(None) => {}
                        Err(_) => skipped += 1,
                    }
                }
                (spans, skipped)
            })
            .collect();
        let skipped = read.iter().map(|(_, n)| n).sum();
        if skipped > 0 && read.iter().all(|(s, _)| s.is_empty()) {
            // Not one span could be read (the records lie in the missing end of a truncated
            // core): name the first that is missing rather than report an empty heap.
            let first = (0..len)
                .map(|i| mem.ptr(arr.offset(8 * i)))
                .find(|sp| !matches!(sp, Ok(Addr(0))))
                .unwrap_or(Ok(Addr(0)))
                .map_err(mem_err("mheap_.allspans, the list of the heap's spans,"))?;
            layout
                .read(mem, first, sweepgen, gc_running)
                .map_err(mem_err(
                    "the record of the heap's first span (runtime.mspan)",
                ))?;
        }
        let mut spans = Vec::with_capacity(read.iter().map(|(s, _)| s.len()).sum());
        for (mut s, _) in read {
            spans.append(&mut s);
        }
        // A Go program always has heap spans in use (its own goroutines' structures at
        // least): none means the list or the records are damaged, not an empty heap.
        if spans.is_empty() {
            return Err(RuntimeError::NoHeap {
                listed: len,
                unreadable: skipped,
            });
        }
        spans.par_sort_by_key(|s| s.base);
        Ok(Heap {
            spans,
            skipped_spans: skipped,
        })
    }

    /// The addresses from the first span's start to the last one's end.
    pub fn extent(&self) -> (Addr, u64) {
        match (self.spans.first(), self.spans.last()) {
            (Some(a), Some(b)) => (a.base, b.base.0 + b.extent().1 - a.base.0),
            _ => (Addr(0), 0),
        }
    }

    /// Live objects and bytes, and unswept garbage.
    pub fn totals(&self) -> HeapTotals {
        let mut t = HeapTotals {
            objects: 0,
            bytes: 0,
            garbage_objects: 0,
            garbage_bytes: 0,
            skipped_spans: self.skipped_spans,
        };
        for s in &self.spans {
            let live = popcount(&s.live, s.nelems);
            let alloc = popcount(&s.allocated, s.nelems);
            t.objects += live;
            t.bytes += live * s.elemsize;
            t.garbage_objects += alloc - live;
            t.garbage_bytes += (alloc - live) * s.elemsize;
        }
        t
    }

    /// Reads every byte of every in-use span once, the floor under any heap analysis; returns
    /// the bytes read and a checksum so the reads cannot be optimised away.
    pub fn scan_bytes(&self, mem: &crate::memory::Memory) -> (u64, u64) {
        let (mut bytes, mut sum) = (0u64, 0u64);
        for s in &self.spans {
            let (base, len) = s.extent();
            if let Ok(b) = mem.read(base, len as usize) {
                bytes += len;
                sum = crate::reader::Bytes(&b).u64s().fold(sum, u64::wrapping_add);
            }
        }
        (bytes, sum)
    }

    /// Live objects per size class (index = size class; class 0 holds large objects).
    pub fn by_class(&self) -> Vec<ClassCount> {
        let mut v: Vec<ClassCount> = Vec::new();
        for s in &self.spans {
            let c = s.size_class() as usize;
            if v.len() <= c {
                v.resize(
                    c + 1,
                    ClassCount {
                        size: 0,
                        objects: 0,
                        bytes: 0,
                    },
                );
            }
            let live = popcount(&s.live, s.nelems);
            if c != 0 {
                v[c].size = s.elemsize;
            }
            v[c].objects += live;
            v[c].bytes += live * s.elemsize;
        }
        v
    }
}

fn popcount(bits: &[u8], n: u64) -> u64 {
    let full = (n / 8) as usize;
    let mut c: u64 = bits
        .iter()
        .take(full)
        .map(|b| u64::from(b.count_ones()))
        .sum();
    if n % 8 != 0 {
        if let Some(b) = bits.get(full) {
            c += u64::from((b & ((1u8 << (n % 8)) - 1)).count_ones());
        }
    }
    c
}

/// Offsets of the mspan fields the walk needs, read once from DWARF.
struct SpanLayout {
    start_addr: u64,
    npages: u64,
    state: u64,
    spanclass: u64,
    elemsize: u64,
    sweepgen: u64,
    alloc_bits: u64,
    gcmark_bits: u64,
    freeindex: (u64, u64),
    nelems: (u64, u64),
    /// Green Tea: where the `marks` array sits inside the inline block at the span's end.
    inline_marks: Option<(u64, u64)>,
}

impl SpanLayout {
    fn new(rt: &Runtime) -> Result<SpanLayout, RuntimeError> {
        let d = rt.dwarf();
        let m = "runtime.mspan";
        let sized = |f: &str| -> Result<(u64, u64), RuntimeError> {
            Ok((d.offset(m, f)?, d.field_size(m, f).unwrap_or(8)))
        };
        let inline_marks = if rt.features.green_tea {
            let b = "runtime.spanInlineMarkBits";
            let size = d.size_of(b)?;
            Some((PAGE_SIZE - size + d.offset(b, "marks")?, size))
        } else {
            None
        };
        Ok(SpanLayout {
            start_addr: d.offset(m, "startAddr")?,
            npages: d.offset(m, "npages")?,
            state: d.offset(m, "state")?,
            spanclass: d.offset(m, "spanclass")?,
            elemsize: d.offset(m, "elemsize")?,
            sweepgen: d.offset(m, "sweepgen")?,
            alloc_bits: d.offset(m, "allocBits")?,
            gcmark_bits: d.offset(m, "gcmarkBits")?,
            freeindex: sized("freeindex")?,
            nelems: sized("nelems")?,
            inline_marks,
        })
    }

    /// Reads one span; `None` when it is not an in-use heap span.
    fn read(
        &self,
        mem: &crate::memory::Memory,
        sp: Addr,
        heap_sweepgen: u32,
        gc_running: bool,
    ) -> Result<Option<Span>, crate::memory::MemError> {
        if u64::from(mem.u8(sp.offset(self.state))?) != SPAN_IN_USE {
            return Ok(None);
        }
        let base = mem.ptr(sp.offset(self.start_addr))?;
        let npages = mem.u64(sp.offset(self.npages))?;
        let elemsize = mem.u64(sp.offset(self.elemsize))?;
        let spanclass = mem.u8(sp.offset(self.spanclass))?;
        let nelems = mem.uint(sp.offset(self.nelems.0), self.nelems.1)?;
        let freeindex = mem.uint(sp.offset(self.freeindex.0), self.freeindex.1)?;
        let sweepgen = mem.u32(sp.offset(self.sweepgen))?;
        // A damaged span record must not send the walk over absurd ranges.
        let plausible = npages > 0
            && npages <= MAX_SPAN_PAGES
            && elemsize > 0
            && nelems <= npages * PAGE_SIZE / 8 + 1
            && nelems.saturating_mul(elemsize) <= npages * PAGE_SIZE
            && base.0.checked_add(npages * PAGE_SIZE).is_some()
            && mem.in_core(base)
            && mem.mapped_from(base) >= npages * PAGE_SIZE;
        if !plausible {
            return Err(crate::memory::MemError::NotDumped(sp));
        }
        let nbytes = nelems.div_ceil(8) as usize;
        let alloc_ptr = mem.ptr(sp.offset(self.alloc_bits))?;
        let mut allocated = mem.read(alloc_ptr, nbytes)?.into_owned();
        for i in 0..freeindex.min(nelems) {
            allocated[(i / 8) as usize] |= 1 << (i % 8);
        }
        // A span not yet swept since the last GC still lists last cycle's garbage as allocated:
        // only the objects that GC marked are live. Marks are unreliable while a GC runs.
        let unswept =
            sweepgen == heap_sweepgen.wrapping_sub(2) || sweepgen == heap_sweepgen.wrapping_add(1);
        let live = if unswept && !gc_running {
            let marks_addr = match self.inline_marks {
                Some((off, _)) if (16..=512).contains(&elemsize) => base.offset(off),
                _ => mem.ptr(sp.offset(self.gcmark_bits))?,
            };
            let marks = mem.read(marks_addr, nbytes)?;
            allocated
                .iter()
                .zip(marks.iter())
                .map(|(a, m)| a & m)
                .collect()
        } else {
            allocated.clone()
        };
        Ok(Some(Span {
            mspan: sp,
            base,
            npages,
            elemsize,
            nelems,
            spanclass,
            freeindex,
            unswept,
            allocated,
            live,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popcount_ignores_bits_past_the_last_slot() {
        assert_eq!(popcount(&[0xff, 0xff], 12), 12);
        assert_eq!(popcount(&[0xff], 3), 3);
        assert_eq!(popcount(&[], 5), 0);
    }
}
