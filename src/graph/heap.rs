//! The object graph of a heap: one node per live object, one per map entry, one per root, and a
//! super-root.

use super::RawEdges;
use super::{Graph, SequentialBuilder};
use crate::heap::{Heap, HeapIndex, ObjId, Objects};
use crate::maps::{Maps, SlotArea};
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

/// Key and value slot ranges of the entries held by each container object.
struct EntrySlots {
    /// (container object, slot start, slot end, entry index), sorted.
    ranges: Vec<(u32, u64, u64, u32)>,
}

impl EntrySlots {
    fn new(maps: &Maps) -> EntrySlots {
        let mut ranges = Vec::with_capacity(maps.entries.len() * 2);
        for (i, e) in maps.entries.iter().enumerate() {
            let m = &maps.maps[e.map as usize];
            ranges.push((e.container.0, e.key.0, e.key.0 + m.key.slot_size, i as u32));
            ranges.push((
                e.container.0,
                e.value.0,
                e.value.0 + m.value.slot_size,
                i as u32,
            ));
        }
        ranges.sort_unstable();
        EntrySlots { ranges }
    }

    /// The ranges inside one container object, for objects asked about in increasing order:
    /// `cursor` carries the position from one call to the next.
    fn of_next(&self, obj: u32, cursor: &mut usize) -> &[(u32, u64, u64, u32)] {
        while *cursor < self.ranges.len() && self.ranges[*cursor].0 < obj {
            *cursor += 1;
        }
        let s = *cursor;
        while *cursor < self.ranges.len() && self.ranges[*cursor].0 == obj {
            *cursor += 1;
        }
        &self.ranges[s..*cursor]
    }
}

impl HeapGraph {
    /// Builds the graph from the objects' edges, map entries and roots' slots.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        mem: &Memory,
        heap: &Heap,
        index: &HeapIndex,
        objects: &Objects,
        raw: &RawEdges,
        maps: &Maps,
        roots: &[Root],
    ) -> HeapGraph {
        let n = objects.len() as u32;
        let n_entries = maps.entries.len() as u32;
        let slots = EntrySlots::new(maps);
        let mut b = SequentialBuilder::new();
        let mut succ: Vec<u32> = Vec::new();
        // (entry, target) for pointers stored in entries' key and value slots.
        let mut entry_edges: Vec<(u32, u32)> = Vec::new();
        let mut unreadable = raw.unreadable;
        let target = |v: u64| objects.find(heap, index, Addr(v)).map(|o| o.0);
        let mut areas: Vec<(u32, SlotArea)> = maps.areas.iter().map(|(&o, &a)| (o, a)).collect();
        areas.sort_unstable_by_key(|&(o, _)| o);
        let (mut held_at, mut area_at) = (0usize, 0usize);
        let ids = (0..heap.spans.len()).flat_map(|si| objects.span_ids(si).map(move |id| (id, si)));
        for (id, span) in ids {
            succ.clear();
            let (targets, offs) = raw.of(id);
            let held = slots.of_next(id, &mut held_at);
            while area_at < areas.len() && areas[area_at].0 < id {
                area_at += 1;
            }
            let area = areas
                .get(area_at)
                .filter(|&&(o, _)| o == id)
                .map(|(_, a)| a);
            if held.is_empty() && area.is_none() {
                b.push(targets);
                continue;
            }
            let obj_start = objects.addr_in(span, ObjId(id));
            let mut last_entry = u32::MAX;
            for r in held {
                if r.3 != last_entry {
                    succ.push(n + r.3);
                    last_entry = r.3;
                }
            }
            for (&t, &off) in targets.iter().zip(offs) {
                let w = obj_start.0 + off.offset();
                let i = held.partition_point(|r| r.2 <= w);
                match held.get(i) {
                    Some(r) if r.1 <= w => entry_edges.push((r.3, t)),
                    // A word in a bucket's or group's slots that no entry owns is stale.
                    _ if area.is_some_and(|a| a.contains(obj_start, Addr(w))) => {}
                    _ => succ.push(t),
                }
            }
            b.push(&succ);
        }
        entry_edges.sort_unstable();
        let mut k = 0;
        for e in 0..n_entries {
            succ.clear();
            while k < entry_edges.len() && entry_edges[k].0 == e {
                succ.push(entry_edges[k].1);
                k += 1;
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
        let first_root = n + n_entries;
        let root_ids: Vec<u32> = (first_root..first_root + roots.len() as u32).collect();
        b.push(&root_ids);
        HeapGraph {
            graph: b.build(),
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
