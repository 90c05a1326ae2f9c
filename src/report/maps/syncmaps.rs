//! Lines for `sync.Map` caches and `sync.Pool`s: what each entry alone keeps alive.

use super::*;

/// What each live entry of a `sync.Map` alone keeps alive: its own node (the `*entry` with
/// the boxed value, or the trie's entry) and its key's and value's objects, where nothing
/// else holds them.
pub(super) fn sync_entry_sizes(
    a: &crate::analysis::Analysis,
    mem: &Memory,
    s: &SyncMap,
    entries: &[SyncEntry],
) -> Vec<u64> {
    let pointee = |w: Addr| {
        mem.u64(w.offset(8))
            .ok()
            .and_then(|p| a.objects.find(&a.index, Addr(p)))
    };
    let held = |o: ObjId, by: &dyn Fn(u32) -> bool| {
        if a.doms.idom(o.0).is_some_and(by) {
            a.retained.get(o.0)
        } else {
            0
        }
    };
    match s.imp {
        SyncImpl::ReadDirty => {
            // An entry in both maps is dominated where the two maps' paths meet.
            let chains: Vec<Vec<u32>> = (s.internal.iter())
                .map(|&mi| {
                    let node = a.map_node(&a.maps.maps[mi as usize]);
                    crate::report::heapview::HeapView::new(a).dominator_chain(node)
                })
                .collect();
            let meet = chains.first().and_then(|first| {
                (0..first.len())
                    .take_while(|&i| chains.iter().all(|c| c.get(i) == Some(&first[i])))
                    .last()
                    .map(|i| first[i])
            });
            let own = |d: u32| {
                Some(d) == meet
                    || a.graph
                        .as_entry(d)
                        .is_some_and(|i| s.internal.contains(&a.maps.map_index_of(i)))
            };
            (entries.iter())
                .map(|e| {
                    [e.node, pointee(e.key)]
                        .into_iter()
                        .flatten()
                        .map(|o| held(o, &own))
                        .sum()
                })
                .collect()
        }
        SyncImpl::HashTrie => (entries.iter())
            .map(|e| {
                let Some(n) = e.node else { return 0 };
                let own = |d: u32| d == n.0;
                a.shallow(n.0)
                    + [pointee(e.key), pointee(e.value)]
                        .into_iter()
                        .flatten()
                        .map(|o| held(o, &own))
                        .sum::<u64>()
            })
            .collect(),
    }
}

/// The one dynamic type of a `sync.Map`'s keys (or values), as `%T` prints it, or `interface {}`
/// when they differ.
pub(super) fn common_type<'e>(input: &MapsInput, anys: impl Iterator<Item = &'e Addr>) -> String {
    let a = input.view.a;
    let mut names = anys.map(|&x| {
        a.eface(input.dwarf, input.mem, x)
            .and_then(|(t, _)| input.dwarf.info(t).ok())
            .map(|i| keys::short_type_name(&i.name))
    });
    let first = names.next().flatten();
    match first {
        Some(f) if names.all(|n| n.as_deref() == Some(&f)) => f,
        _ => "interface {}".to_string(),
    }
}

/// A `sync.Map` as one map: its live entries, grouped by key, and its shared structure.
pub(super) fn sync_line(
    input: &MapsInput,
    opts: &MapsOptions,
    owner: String,
    redactor: &Redactor,
    s: &SyncMap,
) -> MapLine {
    let a = input.view.a;
    let sizes = sync_entry_sizes(a, input.mem, s, &s.entries);
    let entries_retained: u64 = sizes.iter().sum();
    let internal = || s.internal.iter().map(|&mi| &a.maps.maps[mi as usize]);
    // Its structure: the read-only record or the trie's nodes, its Go maps' tables, and what
    // deleted entries leave in them.
    let dead: u64 = sync_entry_sizes(a, input.mem, s, &s.dead).iter().sum();
    let table_bytes: u64 = (s.storage.iter().chain(internal().flat_map(|m| &m.storage)))
        .map(|o| a.shallow(o.0))
        .sum::<u64>()
        + dead;
    let slots: u64 = internal().map(|m| m.slots).sum();
    let render = |i: u32| {
        let e = s.entries.get(i as usize)?;
        a.eface(input.dwarf, input.mem, e.key)
            .and_then(|(t, at)| keys::render(input.dwarf, input.mem, t, at, 0))
    };
    // An entry's value: its dynamic type, and the object it points to (else where it is).
    let entry = |i: u32| {
        let Some(e) = s.entries.get(i as usize) else {
            return (String::new(), String::new());
        };
        let ty = (a.eface(input.dwarf, input.mem, e.value))
            .and_then(|(t, _)| input.dwarf.info(t).ok())
            .map(|t| keys::short_type_name(&t.name))
            .unwrap_or_default();
        let target = (input.mem.u64(e.value.offset(8)).ok())
            .and_then(|p| a.objects.find(&a.index, Addr(p)))
            .map_or(e.value, |o| a.objects.addr(o));
        (ty, target.to_string())
    };
    let keys = Keys::Rendered {
        text: &render,
        count: s.entries.len() as u32,
    };
    let guide = opts.guide_for(&owner);
    let (groups, top_entries) = grouped(
        opts,
        (redactor, guide),
        keys,
        Sizes::Listed(&sizes, &[]),
        true,
        entries_retained,
        &entry,
    );
    let n = s.entries.len() as u64;
    MapLine {
        owner,
        owner_shared: false,
        also_held_by: Vec::new(),
        address: s.addr.to_string(),
        implementation: MapImpl::SyncMap,
        key_type: common_type(input, s.entries.iter().map(|e| &e.key)),
        value_type: common_type(input, s.entries.iter().map(|e| &e.value)),
        entries: n,
        header_count: n,
        table_bytes,
        slots,
        load: load(n, slots),
        tombstones: s.dead.len() as u64,
        retained_bytes: table_bytes + entries_retained,
        // A sync.Map's entries are sized one by one, not as graph nodes: not counted.
        retained_objects: 0,
        root: String::new(),
        inside: false,
        percent_of_heap: 0.0,
        entries_retained_bytes: entries_retained,
        entries_retained_objects: 0,
        groups,
        top_entries,
        inner_maps: 0,
        nested: Vec::new(),
    }
}

/// What a pool's caches hold.
pub(super) fn pool_line(
    a: &crate::analysis::Analysis,
    owner: String,
    p: &crate::maps::pool::Pool,
) -> PoolLine {
    let mut held: Vec<u32> = (p.local.held.iter().chain(&p.victim.held))
        .map(|o| o.0)
        .collect();
    held.sort_unstable();
    held.dedup();
    let retained = |c: &crate::maps::pool::PoolCache| c.array.map_or(0, |o| a.retained.get(o.0));
    PoolLine {
        owner,
        address: p.addr.to_string(),
        primary_objects: p.local.held.len() as u64,
        victim_objects: p.victim.held.len() as u64,
        held_bytes: held.iter().map(|&o| a.retained.get(o)).sum(),
        retained_bytes: retained(&p.local) + retained(&p.victim),
    }
}

/// A pool's finding: what it holds and when the GC drops it.
pub(super) fn pool_finding(p: &PoolLine) -> String {
    let when = match (p.primary_objects, p.victim_objects) {
        (0, _) => "all in its victim cache, which the next GC drops".to_string(),
        (_, 0) => "all in its primary cache: the next GC moves them to the victim cache and the one after drops them".to_string(),
        (l, v) => format!("{l} in its primary cache (dropped after two GCs) and {v} in its victim cache (dropped at the next GC)"),
    };
    format!(
        "{} (sync.Pool) holds {} in {} pooled objects, {when}.",
        p.owner,
        human_bytes(p.held_bytes),
        p.primary_objects + p.victim_objects
    )
}
