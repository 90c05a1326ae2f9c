//! Every live object's pointers to other live objects, found once and shared by type inference
//! and the final graph, with the byte offset of each pointer word inside its object.

use crate::heap::{Heap, HeapIndex, Objects, PointerBits, LOCATE_BATCH};
use crate::memory::{Addr, Memory};

/// Spans per block asked for ahead while pointers are read.
const FETCH_SPANS: usize = 512;

/// Where a pointer word sits in its object (word index from the slot's start) and whether it
/// points at the start of its target's value (past any malloc header), in one `u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word(u32);

impl Word {
    const AT_START: u32 = 1 << 31;

    /// A word `offset` bytes into its object; `None` past what the packing holds (16 GiB).
    fn new(offset: u64, at_start: bool) -> Option<Word> {
        let index = u32::try_from(offset / 8)
            .ok()
            .filter(|&i| i < Word::AT_START)?;
        Some(Word(index | if at_start { Word::AT_START } else { 0 }))
    }

    /// Byte offset of the pointer word from the start of the source object's slot.
    pub fn offset(self) -> u64 {
        u64::from(self.0 & !Word::AT_START) * 8
    }

    /// Whether the pointer holds the exact start of the target's value.
    pub fn at_start(self) -> bool {
        self.0 & Word::AT_START != 0
    }
}

/// Words of one object from which it is read in pieces of this many words on every core (the
/// Go 1.23 ledger sample's bucket array, about 110 K words, takes this path).
const SPLIT_WORDS: u64 = 1 << 15;

/// Pieces of a large object read at once, before their edges are added.
const SPLIT_WAVE: usize = 64;

/// What the pointer scan reads from: the core, the spans and objects, and the pointer bits.
#[derive(Clone, Copy)]
struct Scan<'a> {
    mem: &'a Memory,
    heap: &'a Heap,
    index: &'a HeapIndex,
    objects: &'a Objects,
    bits: &'a PointerBits,
}

impl<'a> Scan<'a> {
    fn new(
        mem: &'a Memory,
        heap: &'a Heap,
        index: &'a HeapIndex,
        objects: &'a Objects,
        bits: &'a PointerBits,
    ) -> Scan<'a> {
        Scan {
            mem,
            heap,
            index,
            objects,
            bits,
        }
    }
}

/// Pointers read but not yet resolved: they are looked up in batches, so that the memory
/// misses of a batch overlap.
struct Pending {
    /// (value, object within the part, offset of the word in its object).
    batch: Vec<(u64, u32, u64)>,
    values: Vec<u64>,
    found: Vec<Option<crate::heap::Located>>,
    /// The pointer words of the object being read.
    words: Vec<Addr>,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            batch: Vec::with_capacity(LOCATE_BATCH),
            values: Vec::with_capacity(LOCATE_BATCH),
            found: Vec::with_capacity(LOCATE_BATCH),
            words: Vec::new(),
        }
    }

    /// Reads the pointer words of slot `slot` of span `si` whose word index lies in `range`,
    /// as object `k` of the part; false if its pointer bits could not all be read.
    fn object(
        &mut self,
        scan: &Scan,
        si: usize,
        slot: u64,
        range: std::ops::Range<u64>,
        k: u32,
        e: &mut Part,
    ) -> bool {
        let start = scan.heap.spans[si].slot(slot);
        let mut words = std::mem::take(&mut self.words);
        words.clear();
        let read = (scan.bits)
            .pointer_words_in(scan.mem, scan.heap, si, slot, range, &mut words)
            .is_ok();
        for &w in &words {
            self.word(scan, w, k, w.0 - start.0, e);
        }
        self.words = words;
        read
    }

    /// Reads the pointer word at `w`, `offset` bytes into object `k` of the part.
    fn word(&mut self, scan: &Scan, w: Addr, k: u32, offset: u64, e: &mut Part) {
        match scan.mem.u64(w) {
            Ok(0) => {}
            Ok(v) => {
                self.batch.push((v, k, offset));
                if self.batch.len() == LOCATE_BATCH {
                    self.flush(scan, e);
                }
            }
            Err(_) => e.unreadable += 1,
        }
    }

    /// Resolves the pointers waiting and adds those to live objects as edges of the part.
    fn flush(&mut self, scan: &Scan, e: &mut Part) {
        self.values.clear();
        self.values.extend(self.batch.iter().map(|b| b.0));
        (scan.objects).locate_batch(scan.index, &self.values, &mut self.found);
        for (&(v, k, off), t) in self.batch.iter().zip(self.found.iter()) {
            let Some(t) = t else {
                if dangling(scan, v) && e.dangling.last() != Some(&k) {
                    e.dangling.push(k);
                }
                continue;
            };
            if let Some(word) = Word::new(off, t.at_start) {
                e.targets.push(t.id.0);
                e.words.push(word);
                e.counts[k as usize] += 1;
            }
        }
        self.batch.clear();
    }
}

/// Whether a pointer value that is not a live object's address cannot be one in a sound heap:
/// it lies in an in-use span but on no live slot, or in no memory the process had mapped.
fn dangling(scan: &Scan, v: u64) -> bool {
    scan.index.span_at(Addr(v)).is_some() || scan.mem.mapped_from(Addr(v)) == 0
}

/// The edges of a run of spans' objects, before the runs are joined.
#[derive(Debug, Default)]
struct Part {
    counts: Vec<u32>,
    targets: Vec<u32>,
    words: Vec<Word>,
    unreadable: u64,
    /// Objects (of the part) holding a [`dangling`] pointer, each once, in order.
    dangling: Vec<u32>,
}

/// The edges of a run of objects with consecutive ids.
#[derive(Debug, Default)]
struct Segment {
    /// Id of the run's first object.
    first: u32,
    /// `offsets.range(o - first)` are object `o`'s edges.
    offsets: super::Offsets,
    /// Target object of each edge.
    targets: Vec<u32>,
    /// Per edge, a [`Word`]: where the pointer sits in its object and what it points at.
    words: Vec<Word>,
}

/// Object-to-object edges in compact arrays, by object id: one segment per run of objects
/// resolved together, kept as built (joining them would copy every edge).
#[derive(Debug, Default)]
pub struct RawEdges {
    /// Segments in id order.
    segments: Vec<Segment>,
    /// Number of objects.
    objects: u32,
    /// Pointer words that could not be read (damage in the core).
    pub unreadable: u64,
    /// Objects holding a pointer that no sound heap holds (to a free slot or to unmapped
    /// memory), in id order: damage in the core.
    pub dangling: Vec<u32>,
}

impl RawEdges {
    /// Reads every live object's pointer words and resolves them to live objects, on every core:
    /// runs of spans are resolved in parallel; `done` hears how many objects each run held.
    pub fn build(
        mem: &Memory,
        heap: &Heap,
        index: &HeapIndex,
        objects: &Objects,
        bits: &PointerBits,
        done: &(dyn Fn(u64) + Sync),
    ) -> RawEdges {
        use rayon::prelude::*;
        // Runs of spans holding about the same number of objects, several per thread.
        let per_run = (objects.len() / (rayon::current_num_threads() * 8)).max(1 << 14);
        let mut runs = Vec::new();
        let (mut start, mut count) = (0usize, 0usize);
        for si in 0..heap.spans.len() {
            count += objects.span_ids(si).len();
            if count >= per_run {
                runs.push((start..si + 1, count));
                (start, count) = (si + 1, 0);
            }
        }
        runs.push((start..heap.spans.len(), count));
        let scan = Scan::new(mem, heap, index, objects, bits);
        let parts: Vec<Part> = runs
            .into_par_iter()
            .map(|(r, objects_in_run)| {
                let part = RawEdges::build_spans(scan, r);
                done(objects_in_run as u64);
                part
            })
            .collect();
        let mut e = RawEdges {
            objects: objects.len() as u32,
            ..Default::default()
        };
        let mut next = 0u32;
        for mut p in parts {
            e.unreadable += p.unreadable;
            e.dangling.extend(p.dangling.iter().map(|k| next + k));
            if p.counts.is_empty() {
                continue;
            }
            let n = p.counts.len() as u32;
            p.targets.shrink_to_fit();
            p.words.shrink_to_fit();
            e.segments.push(Segment {
                first: next,
                offsets: super::Offsets::from_counts(p.counts),
                targets: p.targets,
                words: p.words,
            });
            next += n;
        }
        e
    }

    /// One object's edges read afresh from the core, as [`RawEdges::of`] would give them:
    /// (targets, words), in word order. For the few objects a report asks about after the
    /// edges are gone.
    pub fn read_one(
        mem: &Memory,
        heap: &Heap,
        index: &HeapIndex,
        objects: &Objects,
        bits: &PointerBits,
        o: crate::heap::ObjId,
    ) -> (Vec<u32>, Vec<Word>) {
        let scan = Scan::new(mem, heap, index, objects, bits);
        let mut part = Part {
            counts: vec![0],
            ..Part::default()
        };
        let mut pending = Pending::new();
        let si = objects.span(o);
        pending.object(&scan, si, objects.slot_in(si, o), 0..u64::MAX, 0, &mut part);
        pending.flush(&scan, &mut part);
        (part.targets, part.words)
    }

    /// The segment holding object `o`, and `o`'s index in it.
    fn segment(&self, o: u32) -> (&Segment, usize) {
        let i = self.segments.partition_point(|s| s.first <= o) - 1;
        let s = &self.segments[i];
        (s, (o - s.first) as usize)
    }

    /// The edges of the objects of a run of spans (offsets start at 0).
    fn build_spans(scan: Scan, spans: std::ops::Range<usize>) -> Part {
        use rayon::prelude::*;
        let Scan {
            mem, heap, objects, ..
        } = scan;
        let mut e = Part::default();
        let mut pending = Pending::new();
        // The scan spans of the next block are asked for while this block is read; a block's
        // fetch is dropped once it is read.
        let fetch = |from: usize| {
            let to = (from + FETCH_SPANS).min(spans.end);
            mem.fetch(
                heap.spans[from.min(to)..to]
                    .iter()
                    .filter(|s| !s.noscan())
                    .map(|s| s.extent()),
            )
        };
        let mut ahead = fetch(spans.start);
        let mut _current;
        for si in spans.clone() {
            if (si - spans.start) % FETCH_SPANS == 0 {
                _current = std::mem::replace(&mut ahead, fetch(si + FETCH_SPANS));
            }
            let span = &heap.spans[si];
            for (_, slot) in objects.live_in_span(si) {
                let k = e.counts.len() as u32;
                e.counts.push(0);
                let object_words = span.elemsize / 8;
                if object_words < SPLIT_WORDS {
                    if !pending.object(&scan, si, slot, 0..u64::MAX, k, &mut e) {
                        e.unreadable += 1;
                    }
                    continue;
                }
                // One large object (a Go 1.23 map's bucket array can hold half the heap's
                // pointers): pieces of its words are read on every core, a wave at a time, and
                // their edges added in order.
                pending.flush(&scan, &mut e);
                let starts: Vec<u64> = (0..object_words).step_by(SPLIT_WORDS as usize).collect();
                let mut damaged = false;
                for wave in starts.chunks(SPLIT_WAVE) {
                    let pieces: Vec<(Part, bool)> = wave
                        .par_iter()
                        .map(|&from| {
                            let mut part = Part {
                                counts: vec![0],
                                ..Part::default()
                            };
                            let mut pending = Pending::new();
                            let range = from..from + SPLIT_WORDS;
                            let read = pending.object(&scan, si, slot, range, 0, &mut part);
                            pending.flush(&scan, &mut part);
                            (part, !read)
                        })
                        .collect();
                    for (p, d) in pieces {
                        e.counts[k as usize] += p.counts[0];
                        e.targets.extend_from_slice(&p.targets);
                        e.words.extend_from_slice(&p.words);
                        e.unreadable += p.unreadable;
                        if !p.dangling.is_empty() && e.dangling.last() != Some(&k) {
                            e.dangling.push(k);
                        }
                        damaged |= d;
                    }
                }
                e.unreadable += u64::from(damaged);
            }
        }
        pending.flush(&scan, &mut e);
        e
    }

    /// The segment holding object `o`'s edges, and their range in it.
    fn edges(&self, o: u32) -> (&Segment, std::ops::Range<usize>) {
        let (s, k) = self.segment(o);
        (s, s.offsets.range(k))
    }

    /// Object `o`'s edges: (targets, words), in word order.
    pub fn of(&self, o: u32) -> (&[u32], &[Word]) {
        let (s, r) = self.edges(o);
        (&s.targets[r.clone()], &s.words[r])
    }

    /// Object `o`'s edge targets, in word order.
    pub fn targets_of(&self, o: u32) -> &[u32] {
        let (s, r) = self.edges(o);
        &s.targets[r]
    }

    /// Frees where each pointer sits (half the memory), once only targets are read: after
    /// this, [`RawEdges::of`] must not be called.
    pub fn forget_words(&mut self) {
        for s in &mut self.segments {
            s.words = Vec::new();
        }
    }

    /// Every object's number of edges into `out` (one slot per object), on every core.
    pub fn degrees(&self, out: &mut [u32]) {
        use rayon::prelude::*;
        // Segments hold consecutive objects from 0 on: cut `out` the same way.
        let lengths = self.segments.iter().enumerate().map(|(i, s)| {
            let end = self.segments.get(i + 1).map_or(self.objects, |n| n.first);
            (end - s.first) as usize
        });
        let parts = crate::graph::cut_mut(out, lengths);
        self.segments.par_iter().zip(parts).for_each(|(s, out)| {
            for (k, d) in out.iter_mut().enumerate() {
                *d = s.offsets.range(k).len() as u32;
            }
        });
    }

    /// The targets of objects `from..to`, one after another, as slices.
    pub fn ranges(&self, from: u32, to: u32) -> impl Iterator<Item = &[u32]> {
        let first = self
            .segments
            .partition_point(|s| s.first <= from)
            .saturating_sub(1);
        self.segments[first..]
            .iter()
            .enumerate()
            .map_while(move |(i, s)| {
                let end = self
                    .segments
                    .get(first + i + 1)
                    .map_or(self.objects, |n| n.first);
                (s.first < to).then(|| {
                    let (a, b) = (from.max(s.first) - s.first, to.min(end) - s.first);
                    let (a, b) = (s.offsets.get(a as usize), s.offsets.get(b as usize));
                    &s.targets[a as usize..b as usize]
                })
            })
    }

    /// Bytes held.
    pub fn heap_size_bytes(&self) -> usize {
        self.segments
            .iter()
            .map(|s| s.offsets.heap_size_bytes() + (s.targets.capacity() + s.words.capacity()) * 4)
            .sum()
    }
}
