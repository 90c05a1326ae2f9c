//! The object graph of a heap: one node per live object, one per map entry, one per root, and a
//! super-root.

use super::RawEdges;
use super::{Graph, Offsets, NONE};
use crate::heap::{HeapIndex, ObjId, Objects};
use crate::maps::{Entry, Maps, SlotArea};
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

/// The entries a container holds, found by their [`Entry::position`].
enum Held<'a> {
    /// Runs of entries whose positions increase throughout (the usual case: decoding walks
    /// buckets and groups in address order).
    Runs(&'a [Run], &'a [Entry]),
    /// (position, entry), sorted.
    Sorted(Vec<(u64, u32)>),
}

impl<'a> Held<'a> {
    fn new(entries: &'a [Entry], runs: &'a [Run]) -> Held<'a> {
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
            Held::Runs(runs, entries)
        } else {
            let mut v: Vec<(u64, u32)> = all().collect();
            v.sort_unstable();
            Held::Sorted(v)
        }
    }

    /// The entry at a position.
    fn find(&self, position: u64) -> Option<u32> {
        match self {
            Held::Runs(runs, entries) => {
                let k = runs.partition_point(|r| entries[r.1 as usize].position() <= position);
                let &(_, from, to) = runs.get(k.checked_sub(1)?)?;
                let run = &entries[from as usize..to as usize];
                let j = run.binary_search_by_key(&position, Entry::position).ok()?;
                Some(from + j as u32)
            }
            // Of entries at one position (decoded twice), the first.
            Held::Sorted(v) => {
                let j = v.partition_point(|x| x.0 < position);
                v.get(j).filter(|x| x.0 == position).map(|x| x.1)
            }
        }
    }

    /// The entries in address order.
    fn in_order(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Held::Runs(runs, _) => Box::new(runs.iter().flat_map(|&(_, from, to)| from..to)),
            Held::Sorted(v) => Box::new(v.iter().map(|x| x.1)),
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
        let held = Held::new(&maps.entries, runs);
        c.successors.extend(held.in_order().map(|e| n + e));
        // A container's entries belong to one map.
        let map = runs.first().map(|r| maps.map_of(r.1 as usize));
        let obj_start = objects.addr(ObjId(id));
        let (targets, words) = raw.of(id);
        // A Go 1.23 map's bucket array is one object holding most of the heap's edges: its
        // edges are looked at in pieces on every core, in place.
        c.entry_of_edge = vec![NONE; targets.len()];
        let outside: Vec<Vec<u32>> = c
            .entry_of_edge
            .par_chunks_mut(EDGE_PIECE)
            .zip(targets.par_chunks(EDGE_PIECE))
            .zip(words.par_chunks(EDGE_PIECE))
            .map(|((entries, targets), words)| {
                let mut outside = Vec::new();
                for ((entry, &t), &word) in entries.iter_mut().zip(targets).zip(words) {
                    let w = Addr(obj_start.0 + word.offset());
                    match area {
                        // In the slots: an entry's key or value, or a stale word no entry owns.
                        Some(a) if a.contains(obj_start, w) => {
                            let rel = a.offset(obj_start, w);
                            if let Some(e) = map
                                .and_then(|m| m.position_at(Addr(w.0 - rel), rel))
                                .and_then(|p| held.find(p))
                            {
                                *entry = e;
                            }
                        }
                        _ => outside.push(t),
                    }
                }
                outside
            })
            .collect();
        c.successors.extend(outside.into_iter().flatten());
        c
    }
}

impl HeapGraph {
    /// Builds the graph from the objects' edges (consumed, their word positions freed before
    /// the edge array is made), map entries and roots' slots, on every core: out-degrees
    /// first, then each run of objects fills its own part of the edge array.
    pub fn build(
        mem: &Memory,
        index: &HeapIndex,
        objects: &Objects,
        mut raw: RawEdges,
        maps: &Maps,
        roots: &[Root],
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
        let root_succ: Vec<Vec<u32>> = roots
            .iter()
            .map(|r| {
                let mut succ = Vec::new();
                for (slot, _) in &r.slots {
                    match mem.u64(*slot) {
                        Ok(v) if v != 0 => succ.extend(target(v)),
                        Ok(_) => {}
                        Err(_) => unreadable += 1,
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
        let parts = super::cut_mut(&mut targets[..object_edges as usize], lengths);
        ids.into_par_iter().zip(parts).for_each(|(ids, part)| {
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
        });

        // Entries: each container's edges go to their entries' places, then each entry's
        // targets are put in id order.
        let mut filled = vec![0u32; n_entries as usize];
        for c in &containers {
            let edges = raw.targets_of(c.id).iter().zip(&c.entry_of_edge);
            for (&t, &e) in edges.filter(|(_, &e)| e != NONE) {
                let at = offsets.get((n + e) as usize) as usize + filled[e as usize] as usize;
                targets[at] = t;
                filled[e as usize] += 1;
            }
        }
        drop(filled);
        drop(containers);
        // Each entry's targets in id order, pieces of entries on every core.
        let entry_nodes = super::pieces(n as usize..(n + n_entries) as usize, 1 << 16);
        let lengths = entry_nodes
            .iter()
            .map(|r| (offsets.get(r.end) - offsets.get(r.start)) as usize);
        let edges =
            offsets.get(n as usize) as usize..offsets.get((n + n_entries) as usize) as usize;
        let parts = super::cut_mut(&mut targets[edges], lengths);
        entry_nodes
            .into_par_iter()
            .zip(parts)
            .for_each(|(nodes, part)| {
                let base = offsets.get(nodes.start) as usize;
                for v in nodes {
                    let r = offsets.range(v);
                    part[r.start - base..r.end - base].sort_unstable();
                }
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

    /// The root a node stands for, if it is one.
    pub fn as_root(&self, v: u32) -> Option<usize> {
        let first = self.objects + self.entries;
        (v >= first && v < first + self.roots).then(|| (v - first) as usize)
    }
}
