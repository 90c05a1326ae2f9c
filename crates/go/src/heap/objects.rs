//! Dense integer ids for the heap's live objects, and the way back from an id to its address.

use crate::graph::prefetch;
use rayon::prelude::*;

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

/// Live objects numbered densely, with O(1) lookups both ways and no per-object table: an id's
/// slot is found from the live bits of its span.
#[derive(Debug, Default)]
pub struct Objects {
    /// Number of live objects.
    count: u32,
    /// Per span, what an address lookup needs, in one record.
    spans: Vec<SpanRecord>,
    /// Per 64 slots of each span: which are live, and how many live ones come before.
    words: Vec<LiveWord>,
    /// For each block of 256 ids, the span holding its first id (to start the span search).
    span_hint: Vec<u32>,
}

/// A span as object lookups see it.
#[derive(Debug, Default, Clone, Copy)]
struct SpanRecord {
    /// First byte.
    base: u64,
    /// Bytes per slot.
    elemsize: u64,
    /// Id of its first live object.
    first_id: u32,
    /// Index of its first word in `Objects::words`.
    first_word: u32,
    /// Object slots.
    nelems: u32,
    /// Malloc header bytes at the start of each slot (0 or 8).
    header: u8,
}

impl SpanRecord {
    /// The slot holding `addr`, if it lies among the span's slots.
    fn slot_of(&self, addr: u64) -> Option<u64> {
        let slot = addr.checked_sub(self.base)? / self.elemsize;
        (slot < u64::from(self.nelems)).then_some(slot)
    }

    /// Index in `Objects::words` of the word holding slot `slot`'s live bit.
    fn word_of(&self, slot: u64) -> usize {
        self.first_word as usize + (slot / 64) as usize
    }
}

/// 64 slots of a span: live bits, and the live slots of the span before them.
#[derive(Debug, Default, Clone, Copy)]
#[repr(align(16))]
struct LiveWord {
    bits: u64,
    rank: u32,
}

/// Most addresses [`Objects::locate_batch`] takes at once.
pub const LOCATE_BATCH: usize = 32;

/// The position of the `n`th set bit of `bits` (counting from 0); 64 if there are fewer.
fn select(bits: u64, n: u32) -> u32 {
    let mut rest = n;
    let mut base = 0;
    // Skip whole bytes, then bits.
    while base < 64 {
        let ones = ((bits >> base) & 0xff).count_ones();
        if rest < ones {
            break;
        }
        rest -= ones;
        base += 8;
    }
    let mut b = bits.checked_shr(base).unwrap_or(0);
    for _ in 0..rest {
        b &= b.wrapping_sub(1);
    }
    if b == 0 {
        64
    } else {
        base + b.trailing_zeros()
    }
}

/// Ids per entry of `span_hint`.
const HINT_SHIFT: u32 = 8;

impl Objects {
    /// Numbers the live objects of the heap.
    /// `malloc_header` is the size of the header that objects of spans with
    /// [`Span::has_malloc_headers`](super::Span::has_malloc_headers) start with (Go 1.22+), 0
    /// when the runtime writes none.
    pub fn new(heap: &Heap, malloc_header: u8) -> Objects {
        let mut o = Objects::default();
        // Live words are filled span by span on every core; ids then follow from the counts.
        let lengths: Vec<usize> = (heap.spans.iter())
            .map(|s| s.nelems.div_ceil(64) as usize)
            .collect();
        o.words = vec![LiveWord::default(); lengths.iter().sum()];
        let live: Vec<u32> = crate::graph::cut_mut(&mut o.words, lengths)
            .into_par_iter()
            .zip(heap.spans.par_iter())
            .map(|(words, s)| {
                let mut seen = 0u32;
                for (block, w) in words.iter_mut().enumerate() {
                    let block = block as u64;
                    let mut bits = 0u64;
                    for i in block * 64..((block + 1) * 64).min(s.nelems) {
                        if s.is_live(i) {
                            bits |= 1 << (i - block * 64);
                        }
                    }
                    *w = LiveWord { bits, rank: seen };
                    seen += bits.count_ones();
                }
                seen
            })
            .collect();
        let _ = o.spans.try_reserve_exact(heap.spans.len());
        let mut first_word = 0u32;
        for (s, seen) in heap.spans.iter().zip(live) {
            o.spans.push(SpanRecord {
                base: s.base.0,
                elemsize: s.elemsize,
                first_id: o.count,
                first_word,
                nelems: s.nelems as u32,
                header: if s.has_malloc_headers() {
                    malloc_header
                } else {
                    0
                },
            });
            first_word += s.nelems.div_ceil(64) as u32;
            o.count += seen;
        }
        let blocks = (o.count as usize >> HINT_SHIFT) + 1;
        let mut si = 0usize;
        o.span_hint = (0..blocks)
            .map(|b| {
                let id = (b << HINT_SHIFT) as u32;
                while si + 1 < o.spans.len() && o.spans[si + 1].first_id <= id {
                    si += 1;
                }
                si as u32
            })
            .collect();
        o
    }

    /// Number of live objects.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the heap has no live objects.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Start address of an object's slot.
    pub fn addr(&self, id: ObjId) -> Addr {
        self.addr_in(self.span(id), id)
    }

    /// Span index of an object.
    pub fn span(&self, id: ObjId) -> usize {
        // The span lies between the hints of this block and the next: search only there.
        let b = (id.0 >> HINT_SHIFT) as usize;
        let lo = self.span_hint[b] as usize;
        let hi = self
            .span_hint
            .get(b + 1)
            .map_or(self.spans.len(), |&h| h as usize + 1)
            .min(self.spans.len());
        lo + self.spans[lo..hi].partition_point(|r| r.first_id <= id.0) - 1
    }

    /// Size of an object's slot, for callers going through ids in increasing order: `last`
    /// holds the span of the previous call and is checked first.
    pub fn size_after(&self, id: ObjId, last: &std::cell::Cell<usize>) -> u64 {
        let k = last.get();
        let within = |k: usize| {
            self.spans.get(k).is_some_and(|r| r.first_id <= id.0)
                && self.spans.get(k + 1).map_or(true, |r| id.0 < r.first_id)
        };
        let span = if within(k) {
            k
        } else if within(k + 1) {
            k + 1
        } else {
            self.span(id)
        };
        last.set(span);
        self.spans[span].elemsize
    }

    /// Slot index of an object within its span `span`: the live bit of that rank.
    pub fn slot_in(&self, span: usize, id: ObjId) -> u64 {
        let r = &self.spans[span];
        let k = id.0 - r.first_id;
        let words = self.live_words(r);
        let j = words.partition_point(|w| w.rank <= k) - 1;
        j as u64 * 64 + u64::from(select(words[j].bits, k - words[j].rank))
    }

    /// The live words of a span's slots.
    fn live_words(&self, r: &SpanRecord) -> &[LiveWord] {
        &self.words[r.first_word as usize..][..(r.nelems as usize).div_ceil(64)]
    }

    /// The live objects of span `span` in address order: (id, slot index).
    pub fn live_in_span(&self, span: usize) -> impl Iterator<Item = (ObjId, u64)> + '_ {
        let r = self.spans[span];
        let words = self.live_words(&r);
        words.iter().enumerate().flat_map(move |(j, w)| {
            let slots =
                crate::graph::ids_in_word(0, w.bits).map(move |b| j as u64 * 64 + u64::from(b));
            slots
                .zip(r.first_id + w.rank..)
                .map(|(slot, id)| (ObjId(id), slot))
        })
    }

    /// Slot size of an object (size-class rounded).
    pub fn size(&self, id: ObjId) -> u64 {
        self.spans[self.span(id)].elemsize
    }

    /// The live object holding `addr`, if any.
    pub fn find(&self, index: &HeapIndex, addr: Addr) -> Option<ObjId> {
        self.find_in_span(index, addr).map(|(o, _)| o)
    }

    /// The live object holding `addr` and its span index.
    pub fn find_in_span(&self, index: &HeapIndex, addr: Addr) -> Option<(ObjId, usize)> {
        self.locate(index, addr).map(|f| (f.id, f.span))
    }

    /// The live object holding `addr`: its id, span, and whether `addr` is its value's start.
    pub fn locate(&self, index: &HeapIndex, addr: Addr) -> Option<Located> {
        let si = index.span_at(addr)?;
        let r = self.spans.get(si as usize)?;
        self.located(si, r, r.slot_of(addr.0)?, addr.0)
    }

    /// [`Objects::locate`] for many addresses at once (at most [`LOCATE_BATCH`]), into `out`.
    /// The lookups go in stages, each asking the CPU to fetch what the next one reads, so the
    /// cache misses of different addresses overlap instead of following one another.
    pub fn locate_batch(&self, index: &HeapIndex, addrs: &[u64], out: &mut Vec<Option<Located>>) {
        out.clear();
        let n = addrs.len().min(LOCATE_BATCH);
        let mut span = [u32::MAX; LOCATE_BATCH];
        for (i, &a) in addrs[..n].iter().enumerate() {
            if let Some(si) = index
                .span_at(Addr(a))
                .filter(|&s| (s as usize) < self.spans.len())
            {
                span[i] = si;
                prefetch(&self.spans[si as usize]);
            }
        }
        let mut slot = [None; LOCATE_BATCH];
        for (i, &a) in addrs[..n].iter().enumerate() {
            let Some(r) = self.spans.get(span[i] as usize) else {
                continue;
            };
            slot[i] = r.slot_of(a);
            if let Some(w) = slot[i].and_then(|s| self.words.get(r.word_of(s))) {
                prefetch(w);
            }
        }
        for (i, &a) in addrs[..n].iter().enumerate() {
            let found = match (self.spans.get(span[i] as usize), slot[i]) {
                (Some(r), Some(s)) => self.located(span[i], r, s, a),
                _ => None,
            };
            out.push(found);
        }
    }

    /// The live object in slot `slot` of span `si` (record `r`), if that slot is live.
    fn located(&self, si: u32, r: &SpanRecord, slot: u64, addr: u64) -> Option<Located> {
        let w = self.words.get(r.word_of(slot))?;
        let bit = 1u64 << (slot % 64);
        if w.bits & bit == 0 {
            return None;
        }
        Some(Located {
            id: ObjId(r.first_id + w.rank + (w.bits & (bit - 1)).count_ones()),
            span: si as usize,
            at_start: addr == r.base + slot * r.elemsize + u64::from(r.header),
        })
    }

    /// Start address of an object whose span is known.
    pub fn addr_in(&self, span: usize, id: ObjId) -> Addr {
        let r = &self.spans[span];
        Addr(r.base + self.slot_in(span, id) * r.elemsize)
    }

    /// Where an object's value starts (after any malloc header) and how long it can be.
    pub fn value_in(&self, span: usize, id: ObjId) -> (Addr, u64) {
        let r = &self.spans[span];
        let h = u64::from(r.header);
        (self.addr_in(span, id).offset(h), r.elemsize - h)
    }

    /// The ids of a span's live objects.
    pub fn span_ids(&self, span: usize) -> std::ops::Range<u32> {
        let end = self.spans.get(span + 1).map_or(self.count, |r| r.first_id);
        self.spans[span].first_id..end
    }

    /// Bytes held by these tables.
    pub fn heap_size_bytes(&self) -> usize {
        self.span_hint.capacity() * 4
            + self.spans.capacity() * std::mem::size_of::<SpanRecord>()
            + self.words.capacity() * std::mem::size_of::<LiveWord>()
    }
}

#[cfg(test)]
mod tests {
    use super::select;

    /// The position of the `n`th set bit, counted one bit at a time.
    fn select_slowly(bits: u64, n: u32) -> u32 {
        (0..64)
            .filter(|&i| bits >> i & 1 == 1)
            .nth(n as usize)
            .unwrap_or(64)
    }

    #[test]
    fn select_finds_the_nth_set_bit() {
        let patterns = [
            0u64,
            1,
            1 << 63,
            u64::MAX,
            0x8000_0000_0000_0001,
            0x0123_4567_89ab_cdef,
            0xff00_ff00_ff00_ff00,
            0x0000_0001_0000_0000,
        ];
        for bits in patterns {
            for n in 0..=64 {
                assert_eq!(select(bits, n), select_slowly(bits, n), "{bits:#x} {n}");
            }
        }
    }
}
