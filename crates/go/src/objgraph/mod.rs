//! The object graph of a heap: one node per live object, one per map entry, one per root, and a
//! super-root.

mod raw;

pub use raw::{RawEdges, Word};

use crate::graph::{Graph, Offsets, NONE};
use crate::heap::{HeapIndex, ObjId, Objects};
use crate::maps::{Entry, Maps, SlotArea, SLOT_BITS};
use crate::memory::{Addr, Memory};
use crate::roots::Root;

/// The heap as a graph. Node ids: objects `0..objects`, then map entries, then roots, then the
/// super-root. A map entry sits between the bucket or group holding it and what its key and
/// value point to, so that the dominator tree says what each entry alone keeps alive.
#[derive(Debug)]
pub struct HeapGraph {
    /// The edges.
    pub graph: Graph,
    /// Number of object nodes.
    pub objects: u32,
    /// Number of map entry nodes (after the objects).
    pub entries: u32,
    /// Number of root nodes (after the entries).
    pub roots: u32,
    /// Pointer words that could not be read (damage in the core).
    pub unreadable_words: u64,
}

/// A run of consecutive entries in one container: (container object, first entry, end entry).
type Run = (u32, u32, u32);

/// Which entries each container object holds: runs of consecutive entries in one container,
/// sorted by container (entries are decoded bucket by bucket, so a container's entries come in
/// a few runs, not one by one).
struct EntryRuns {
    /// Sorted.
    runs: Vec<Run>,
}

impl EntryRuns {
    /// Finds the object holding each entry's slots: one lookup per container met, as entries
    /// come bucket by bucket.
    fn new(maps: &Maps, objects: &Objects, index: &HeapIndex) -> EntryRuns {
        let mut runs: Vec<Run> = Vec::new();
        // The last container found: (start, end, id).
        let mut last = (0u64, 0u64, 0u32);
        for (i, e) in maps.entries.iter().enumerate() {
            let i = i as u32;
            let bucket = e.bucket();
            if !(last.0..last.1).contains(&bucket.0) {
                // Decoding kept only entries inside a live object.
                let Some(o) = objects.find(index, bucket) else {
                    continue;
                };
                let start = objects.addr(o).0;
                last = (start, start + objects.size(o), o.0);
            }
            match runs.last_mut() {
                Some(r) if r.0 == last.2 && r.2 == i => r.2 = i + 1,
                _ => runs.push((last.2, i, i + 1)),
            }
        }
        runs.sort_unstable();
        EntryRuns { runs }
    }

    /// Each container object with its runs, in object order.
    fn by_container(&self) -> impl Iterator<Item = (u32, &[Run])> {
        self.runs.chunk_by(|a, b| a.0 == b.0).map(|c| (c[0].0, c))
    }

    /// Whether an object holds entries.
    fn holds(&self, id: u32) -> bool {
        self.runs.binary_search_by_key(&id, |r| r.0).is_ok()
    }
}

/// Entries stepped over before a lookup searches instead.
const FIND_STEPS: usize = 16;

/// A place among a container's entries in position order: a run and an entry in it, or an
/// index into the sorted list (`run`).
#[derive(Debug, Clone, Copy)]
struct Place {
    run: usize,
    entry: u32,
}

/// The entries a container holds, found by their [`Entry::position`].
enum Held<'a> {
    /// Runs of entries whose positions increase throughout (the usual case: decoding walks
    /// buckets and groups in address order).
    Runs(&'a [Run], &'a [Entry]),
    /// (position, entry), sorted.
    Sorted(Vec<(u64, u32)>),
    /// Per slot of the container's buckets or groups, its entry or `NONE`: for a container
    /// whose entries do not come in address order (a classic bucket array holds its first
    /// overflow buckets after its buckets, so chains jump ahead and back).
    Slots {
        /// Address of the first bucket or group.
        first: u64,
        /// Bytes per bucket or group.
        size: u64,
        entries: Vec<u32>,
    },
}

/// Where the buckets or groups of a container lie: (first one's address, size, object end).
type Grid = (u64, u64, u64);

/// The index of the slot at `position` in a grid of buckets starting at `first`, if it is the
/// start of one of them plus a slot.
fn slot_index(position: u64, first: u64, size: u64) -> Option<usize> {
    let d = (position & !SLOT_BITS).checked_sub(first)?;
    (d % size == 0)
        .then(|| usize::try_from(d / size * (SLOT_BITS + 1) + (position & SLOT_BITS)).ok())
        .flatten()
}

impl<'a> Held<'a> {
    fn new(entries: &'a [Entry], runs: &'a [Run], grid: Option<Grid>) -> Held<'a> {
        let all = || {
            runs.iter()
                .flat_map(|&(_, from, to)| from..to)
                .map(|i| (entries[i as usize].position(), i))
        };
        let mut last = None;
        let increasing = all().all(|(p, _)| {
            let up = last.map_or(true, |l| l < p);
            last = Some(p);
            up
        });
        if increasing {
            return Held::Runs(runs, entries);
        }
        if let Some(h) = grid.and_then(|g| Held::by_slot(all(), g)) {
            return h;
        }
        let mut v: Vec<(u64, u32)> = all().collect();
        v.sort_unstable();
        Held::Sorted(v)
    }

    /// The entries by slot; None if one lies off the grid or two share a slot (damage: the
    /// sorted list keeps both).
    fn by_slot(
        all: impl Iterator<Item = (u64, u32)>,
        (first, size, end): Grid,
    ) -> Option<Held<'a>> {
        if size == 0 {
            return None;
        }
        let buckets = end.checked_sub(first)?.div_ceil(size);
        let len = usize::try_from(buckets.checked_mul(SLOT_BITS + 1)?).ok()?;
        let mut entries = vec![NONE; len];
        for (p, i) in all {
            let slot = entries.get_mut(slot_index(p, first, size)?)?;
            if *slot != NONE {
                return None;
            }
            *slot = i;
        }
        Some(Held::Slots {
            first,
            size,
            entries,
        })
    }

    /// The first place whose position is at least `position`.
    fn seek(&self, position: u64) -> Place {
        match self {
            Held::Runs(runs, entries) => {
                let pos = |e: u32| entries[e as usize].position();
                let k = runs.partition_point(|r| pos(r.2 - 1) < position);
                let entry = runs.get(k).map_or(0, |&(_, from, to)| {
                    let run = &entries[from as usize..to as usize];
                    from + run.partition_point(|e| e.position() < position) as u32
                });
                Place { run: k, entry }
            }
            Held::Sorted(v) => Place {
                run: v.partition_point(|x| x.0 < position),
                entry: 0,
            },
            // Looked up directly.
            Held::Slots { .. } => Place {
                run: usize::MAX,
                entry: 0,
            },
        }
    }

    /// The position and entry at a place; None past the last entry.
    fn at(&self, p: Place) -> Option<(u64, u32)> {
        match self {
            Held::Runs(runs, entries) => {
                runs.get(p.run)?;
                Some((entries[p.entry as usize].position(), p.entry))
            }
            Held::Sorted(v) => v.get(p.run).copied(),
            Held::Slots { .. } => None,
        }
    }

    /// The place after `p`.
    fn step(&self, p: Place) -> Place {
        match self {
            Held::Runs(runs, _) => match runs.get(p.run) {
                Some(&(_, _, to)) if p.entry + 1 < to => Place {
                    run: p.run,
                    entry: p.entry + 1,
                },
                _ => Place {
                    run: p.run + 1,
                    entry: runs.get(p.run + 1).map_or(0, |r| r.1),
                },
            },
            Held::Sorted(_) | Held::Slots { .. } => Place {
                run: p.run.saturating_add(1),
                entry: 0,
            },
        }
    }

    /// The entry at a position (of entries decoded twice at one, the first). `near` remembers
    /// where the last lookup's bucket or group began, so that lookups in address order, as a
    /// container's pointer words come, step forward instead of searching.
    fn find(&self, near: &mut Option<(u64, Place)>, position: u64) -> Option<u32> {
        if let Held::Slots {
            first,
            size,
            entries,
        } = self
        {
            let e = *entries.get(slot_index(position, *first, *size)?)?;
            return (e != NONE).then_some(e);
        }
        let bucket = position & !SLOT_BITS;
        let mut p = match *near {
            Some((b, p)) if b <= bucket => p,
            _ => self.seek(bucket),
        };
        let mut steps = 0;
        while let Some((q, _)) = self.at(p) {
            if q >= bucket {
                break;
            }
            if steps == FIND_STEPS {
                p = self.seek(bucket);
                break;
            }
            p = self.step(p);
            steps += 1;
        }
        *near = Some((bucket, p));
        // The bucket's entries follow.
        while let Some((q, e)) = self.at(p) {
            if q >= position {
                return (q == position).then_some(e);
            }
            p = self.step(p);
        }
        None
    }

    /// The entries in address order.
    fn in_order(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Held::Runs(runs, _) => Box::new(runs.iter().flat_map(|&(_, from, to)| from..to)),
            Held::Sorted(v) => Box::new(v.iter().map(|x| x.1)),
            Held::Slots { entries, .. } => Box::new(entries.iter().copied().filter(|&e| e != NONE)),
        }
    }
}

/// The successors of a bucket or group array, and which of its edges belong to the entries it
/// holds: each entry becomes one successor, pointers in its key and value slots become the
/// entry's edges, and stale words in slot areas are dropped.
struct Container {
    id: u32,
    successors: Vec<u32>,
    /// Per raw edge of the object: the entry it belongs to, or `NONE`.
    entry_of_edge: Vec<u32>,
}

/// Edges of one container looked at together on one core.
const EDGE_PIECE: usize = 1 << 16;

impl Container {
    fn build(
        objects: &Objects,
        raw: &RawEdges,
        maps: &Maps,
        n: u32,
        id: u32,
        runs: &[Run],
        area: Option<&SlotArea>,
    ) -> Container {
        use rayon::prelude::*;
        let mut c = Container {
            id,
            successors: Vec::new(),
            entry_of_edge: Vec::new(),
        };
        let obj_start = objects.addr(ObjId(id));
        let grid = area.map(|a| {
            let first = obj_start.0 + a.phase % a.size.max(1);
            (first, a.size, obj_start.0 + objects.size(ObjId(id)))
        });
        let held = Held::new(&maps.entries, runs, grid);
        c.successors.extend(held.in_order().map(|e| n + e));
        // A container's entries belong to one map.
        let map = runs.first().map(|r| maps.map_of(r.1 as usize));
        let (targets, words) = raw.of(id);
        // A Go 1.23 map's bucket array is one object holding most of the heap's edges: its
        // edges are looked at in pieces on every core, in place.
        c.entry_of_edge = vec![NONE; targets.len()];
        let piece = |(entries, targets, words): (&mut [u32], &[u32], &[Word])| {
            let mut outside = Vec::new();
            let mut near = None;
            for ((entry, &t), &word) in entries.iter_mut().zip(targets).zip(words) {
                let w = Addr(obj_start.0 + word.offset());
                match area {
                    // In the slots: an entry's key or value, or a stale word no entry owns.
                    Some(a) if a.contains(obj_start, w) => {
                        let rel = a.offset(obj_start, w);
                        if let Some(e) = map
                            .and_then(|m| m.position_at(Addr(w.0 - rel), rel))
                            .and_then(|p| held.find(&mut near, p))
                        {
                            *entry = e;
                        }
                    }
                    _ => outside.push(t),
                }
            }
            outside
        };
        let outside: Vec<Vec<u32>> = if targets.len() <= EDGE_PIECE {
            // Most containers are one bucket or group array of a few edges.
            vec![piece((&mut c.entry_of_edge, targets, words))]
        } else {
            (c.entry_of_edge.par_chunks_mut(EDGE_PIECE))
                .zip(targets.par_chunks(EDGE_PIECE))
                .zip(words.par_chunks(EDGE_PIECE))
                .map(|((e, t), w)| piece((e, t, w)))
                .collect()
        };
        c.successors.extend(outside.into_iter().flatten());
        c
    }
}

/// For a word of a map root: `None` when it is outside the map's stack-held buckets or group
/// (a header word), else the entry whose key or value holds it, `Err` for a stale slot.
fn stack_entry(maps: &Maps, m: &crate::maps::DecodedMap, slot: Addr) -> Option<Result<u32, ()>> {
    let &(b, _) = m
        .stack_containers
        .iter()
        .find(|(b, size)| slot.0 >= b.0 && slot.0 < b.0 + size)?;
    let found = m.position_at(b, slot.0 - b.0).and_then(|pos| {
        let entries = maps.entries_of(m);
        let i = entries.iter().position(|e| e.position() == pos)?;
        Some(m.first_entry + i as u32)
    });
    Some(found.ok_or(()))
}

impl HeapGraph {
    /// Builds the graph from the objects' edges (consumed, their word positions freed before
    /// the edge array is made), map entries and roots' slots, on every core: out-degrees
    /// first, then each run of objects fills its own part of the edge array. `done` hears of
    /// the objects and entries whose edges are in place.
    // One function: its steps (containers, degrees, object edges, entry edges, roots) fill
    // disjoint parts of the same offset and target arrays and free `raw` piece by piece as
    // they go; apart, each would take most of the others' locals as arguments. Each step
    // starts with a comment.
    pub fn build(
        mem: &Memory,
        index: &HeapIndex,
        objects: &Objects,
        mut raw: RawEdges,
        maps: &Maps,
        roots: &[Root],
        done: &(dyn Fn(u64) + Sync),
    ) -> HeapGraph {
        use rayon::prelude::*;
        let n = objects.len() as u32;
        let n_entries = maps.entries.len() as u32;

        // Containers: objects holding entries or slot areas, worked out once.
        let entry_runs = EntryRuns::new(maps, objects, index);
        let mut work: Vec<(u32, &[Run], Option<&SlotArea>)> = entry_runs
            .by_container()
            .map(|(id, runs)| (id, runs, maps.areas.get(&id)))
            .collect();
        for (&id, area) in &maps.areas {
            if !entry_runs.holds(id) {
                work.push((id, &[], Some(area)));
            }
        }
        work.sort_unstable_by_key(|w| w.0);
        let containers: Vec<Container> = work
            .par_iter()
            .map(|&(id, runs, area)| Container::build(objects, &raw, maps, n, id, runs, area))
            .collect();
        drop(work);
        drop(entry_runs);
        // Only targets are copied from here on.
        raw.forget_words();

        // Out-degrees of the objects, then of entries, roots and the super-root.
        let mut unreadable = raw.unreadable;
        let target = |v: u64| objects.find(index, Addr(v)).map(|o| o.0);
        // A map root's words in its stack-held buckets or group are its entries' edges:
        // (entry, target), and the root points at the entry.
        let mut root_entry_edges: Vec<(u32, u32)> = Vec::new();
        let root_succ: Vec<Vec<u32>> = roots
            .iter()
            .map(|r| {
                let mut succ = Vec::new();
                let map = r.map.and_then(|mi| maps.maps.get(mi as usize));
                for (slot, _) in &r.slots {
                    let t = match mem.u64(*slot) {
                        Ok(v) if v != 0 => target(v),
                        Ok(_) => None,
                        Err(_) => {
                            unreadable += 1;
                            None
                        }
                    };
                    match map.and_then(|m| stack_entry(maps, m, *slot)) {
                        // A word of a stack-held bucket or group outside every entry: stale.
                        Some(Err(())) => {}
                        Some(Ok(e)) => {
                            if !succ.contains(&(n + e)) {
                                succ.push(n + e);
                            }
                            root_entry_edges.extend(t.map(|t| (e, t)));
                        }
                        None => succ.extend(t),
                    }
                }
                succ
            })
            .collect();
        let total_nodes = n as usize + n_entries as usize + roots.len() + 1;
        let mut counts = Vec::with_capacity(total_nodes + 1);
        counts.resize(total_nodes, 0u32);
        raw.degrees(&mut counts[..n as usize]);
        let degree = |k: usize| u32::try_from(k).expect("a node with over 2^32 successors");
        for c in &containers {
            counts[c.id as usize] = degree(c.successors.len());
            for &e in c.entry_of_edge.iter().filter(|&&e| e != NONE) {
                counts[(n + e) as usize] += 1;
            }
        }
        for &(e, _) in &root_entry_edges {
            counts[(n + e) as usize] += 1;
        }
        let first_root = n as usize + n_entries as usize;
        for (i, succ) in root_succ.iter().enumerate() {
            counts[first_root + i] = degree(succ.len());
        }
        counts[total_nodes - 1] = degree(roots.len());
        let offsets = Offsets::from_counts(counts);
        let mut targets = vec![0u32; offsets.total() as usize];

        // Objects, in runs of about equal edge counts filled in parallel.
        let runs = (rayon::current_num_threads() * 8).max(1);
        let object_edges = offsets.get(n as usize);
        let per_run = (object_edges / runs as u64).max(1 << 16);
        let mut cuts = vec![0u32];
        for o in 0..n {
            if offsets.get(o as usize) - offsets.get(*cuts.last().unwrap_or(&0) as usize) >= per_run
            {
                cuts.push(o);
            }
        }
        cuts.push(n);
        let ids: Vec<std::ops::Range<u32>> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
        let lengths = ids
            .iter()
            .map(|r| (offsets.get(r.end as usize) - offsets.get(r.start as usize)) as usize);
        let parts = crate::graph::cut_mut(&mut targets[..object_edges as usize], lengths);
        ids.into_par_iter().zip(parts).for_each(|(ids, part)| {
            let objects_in_run = u64::from(ids.end - ids.start);
            let base = offsets.get(ids.start as usize) as usize;
            let first = containers.partition_point(|c| c.id < ids.start);
            let mut next = containers[first..]
                .iter()
                .take_while(|c| c.id < ids.end)
                .peekable();
            let mut o = ids.start;
            while o < ids.end {
                // Plain objects up to the next container: their raw edges, copied at once.
                let stop = next.peek().map_or(ids.end, |c| c.id);
                let mut at = offsets.get(o as usize) as usize - base;
                for a in raw.ranges(o, stop) {
                    part[at..at + a.len()].copy_from_slice(a);
                    at += a.len();
                }
                if let Some(c) = next.next() {
                    let at = offsets.get(c.id as usize) as usize - base;
                    part[at..at + c.successors.len()].copy_from_slice(&c.successors);
                    o = c.id + 1;
                } else {
                    o = stop;
                }
            }
            done(objects_in_run);
        });

        // Entries: each container's edges go to their entries' places (an entry's edges all
        // come from its container; their order is settled below), pieces of edges on every
        // core, then each entry's targets are put in id order.
        let mut filled = vec![0u32; n_entries as usize];
        {
            use std::sync::atomic::Ordering::Relaxed;
            let (filled, slots) = (
                crate::graph::atomic(&mut filled),
                crate::graph::atomic(&mut targets),
            );
            let pieces: Vec<(&Container, std::ops::Range<usize>)> = (containers.iter())
                .flat_map(|c| {
                    let edges = 0..c.entry_of_edge.len();
                    crate::graph::pieces(edges, EDGE_PIECE)
                        .into_iter()
                        .map(move |r| (c, r))
                })
                .collect();
            pieces.into_par_iter().for_each(|(c, r)| {
                let targets = &raw.targets_of(c.id)[r.clone()];
                for (&t, &e) in targets.iter().zip(&c.entry_of_edge[r]) {
                    if e != NONE {
                        let k = filled[e as usize].fetch_add(1, Relaxed);
                        let at = offsets.get((n + e) as usize) as usize + k as usize;
                        slots[at].store(t, Relaxed);
                    }
                }
            });
            for &(e, t) in &root_entry_edges {
                let k = filled[e as usize].fetch_add(1, Relaxed);
                let at = offsets.get((n + e) as usize) as usize + k as usize;
                slots[at].store(t, Relaxed);
            }
        }
        drop(filled);
        drop(containers);
        // Each entry's targets in id order, pieces of entries on every core.
        let entry_nodes = crate::graph::pieces(n as usize..(n + n_entries) as usize, 1 << 16);
        let lengths = entry_nodes
            .iter()
            .map(|r| (offsets.get(r.end) - offsets.get(r.start)) as usize);
        let edges =
            offsets.get(n as usize) as usize..offsets.get((n + n_entries) as usize) as usize;
        let parts = crate::graph::cut_mut(&mut targets[edges], lengths);
        entry_nodes
            .into_par_iter()
            .zip(parts)
            .for_each(|(nodes, part)| {
                let base = offsets.get(nodes.start) as usize;
                let count = nodes.len() as u64;
                for v in nodes {
                    let r = offsets.range(v);
                    part[r.start - base..r.end - base].sort_unstable();
                }
                done(count);
            });

        // Roots and the super-root.
        let mut at = offsets.get(first_root) as usize;
        for succ in &root_succ {
            targets[at..at + succ.len()].copy_from_slice(succ);
            at += succ.len();
        }
        for r in 0..roots.len() as u32 {
            targets[at] = first_root as u32 + r;
            at += 1;
        }
        debug_assert_eq!(at, targets.len());
        HeapGraph {
            graph: Graph::from_csr(offsets, targets),
            objects: n,
            entries: n_entries,
            roots: roots.len() as u32,
            unreadable_words: unreadable,
        }
    }

    /// The super-root's node id.
    pub fn super_root(&self) -> u32 {
        self.objects + self.entries + self.roots
    }

    /// Node id of map entry `i`.
    pub fn entry_node(&self, i: usize) -> u32 {
        self.objects + i as u32
    }

    /// Whether a node is an object.
    pub fn is_object(&self, v: u32) -> bool {
        v < self.objects
    }

    /// The map entry a node stands for, if it is one.
    pub fn as_entry(&self, v: u32) -> Option<usize> {
        (v >= self.objects && v < self.objects + self.entries).then(|| (v - self.objects) as usize)
    }

    /// Node id of root `r`.
    pub fn root_node(&self, r: usize) -> u32 {
        self.objects + self.entries + r as u32
    }

    /// The root a node stands for, if it is one.
    pub fn as_root(&self, v: u32) -> Option<usize> {
        let first = self.objects + self.entries;
        (v >= first && v < first + self.roots).then(|| (v - first) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket array at 0x10000 of 110 buckets of 208 bytes: entries as a classic map decodes
    /// them, each bucket followed by its overflow bucket from the array's tail when it has one.
    fn bucket_array() -> (Vec<Entry>, Vec<Run>, Grid) {
        let (first, size, buckets) = (0x10000u64, 208u64, 110u64);
        let bucket = |b: u64| Addr(first + b * size);
        let mut entries = Vec::new();
        let mut next_overflow = 90;
        for b in 0..90 {
            for i in (0..8).filter(|i| (b + i) % 3 != 0) {
                entries.extend(Entry::new(bucket(b), i));
            }
            if b % 7 == 0 {
                entries.extend(Entry::new(bucket(next_overflow), b % 8));
                next_overflow += 1;
            }
        }
        let runs = vec![(1, 0, entries.len() as u32)];
        (entries, runs, (first, size, first + buckets * size))
    }

    /// The entry at a position, by looking at every one.
    fn naive(entries: &[Entry], position: u64) -> Option<u32> {
        entries
            .iter()
            .position(|e| e.position() == position)
            .map(|i| i as u32)
    }

    #[test]
    fn lookups_in_address_order_match_a_plain_search() {
        let (entries, runs, grid) = bucket_array();
        let positions: Vec<u64> = (grid.0..grid.2)
            .step_by(grid.1 as usize)
            .flat_map(|b| (0..8).map(move |i| b | i))
            .collect();
        let slots = Held::new(&entries, &runs, Some(grid));
        let sorted = Held::new(&entries, &runs, None);
        assert!(matches!(slots, Held::Slots { .. }));
        assert!(matches!(sorted, Held::Sorted(_)));
        // Entries in address order only: one run per bucket.
        let ordered: Vec<Entry> = {
            let mut v = entries.clone();
            v.sort_by_key(Entry::position);
            v
        };
        let mut ordered_runs = Vec::new();
        for (i, e) in ordered.iter().enumerate() {
            let fresh = i == 0 || ordered[i - 1].bucket() != e.bucket();
            if fresh {
                ordered_runs.push((1, i as u32, i as u32 + 1));
            } else if let Some(r) = ordered_runs.last_mut() {
                r.2 += 1;
            }
        }
        let runs_held = Held::new(&ordered, &ordered_runs, Some(grid));
        assert!(matches!(runs_held, Held::Runs(..)));
        for held in [&slots, &sorted] {
            let mut near = None;
            for &p in &positions {
                assert_eq!(held.find(&mut near, p), naive(&entries, p), "{p:#x}");
            }
            let in_order: Vec<u64> = (held.in_order())
                .map(|e| entries[e as usize].position())
                .collect();
            assert_eq!(
                in_order,
                ordered.iter().map(Entry::position).collect::<Vec<_>>()
            );
        }
        // Keys before values: slot indices go 0..8 twice per bucket, and some lookups jump
        // back to an earlier bucket.
        let mut near = None;
        for (k, &p) in positions.iter().enumerate() {
            for q in [p, p ^ 3, positions[k / 2]] {
                assert_eq!(runs_held.find(&mut near, q), naive(&ordered, q), "{q:#x}");
            }
        }
    }

    #[test]
    fn off_grid_or_repeated_entries_fall_back_to_the_sorted_list() {
        let (mut entries, _, grid) = bucket_array();
        // An entry decoded twice.
        entries.push(entries[5]);
        let runs = vec![(1, 0, entries.len() as u32)];
        assert!(matches!(
            Held::new(&entries, &runs, Some(grid)),
            Held::Sorted(_)
        ));
        // A bucket off the grid.
        entries.pop();
        entries.extend(Entry::new(Addr(grid.0 + 8), 0));
        let runs = vec![(1, 0, entries.len() as u32)];
        assert!(matches!(
            Held::new(&entries, &runs, Some(grid)),
            Held::Sorted(_)
        ));
    }
}
