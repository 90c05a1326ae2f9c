//! One line per map: its owner as Go code names it, its key groups and top entries, and the
//! roll-up of maps held by another map's entries.

use super::*;

pub(super) fn map_line(
    input: &MapsInput,
    opts: &MapsOptions,
    (owner, also_held_by): (String, Vec<String>),
    redactor: &Redactor,
    m: &DecodedMap,
) -> MapLine {
    let a = input.view.a;
    let n = a.maps.entries_of(m).len() as u64;
    let table_bytes: u64 = m.storage.iter().map(|o| a.shallow(o.0)).sum();
    let guide = opts.guide_for(&owner);
    let (groups, top_entries, (entries_retained, entries_objects)) =
        group_maps(input, opts, redactor, guide, &[m]);
    MapLine {
        owner,
        owner_shared: !also_held_by.is_empty(),
        also_held_by,
        address: m.addr.to_string(),
        implementation: m.imp,
        key_type: type_name(input, m.key.ty),
        value_type: type_name(input, m.value.ty),
        entries: n,
        header_count: m.count,
        table_bytes,
        slots: m.slots,
        load: load(n, m.slots),
        tombstones: m.tombstones,
        retained_bytes: a.retained.get(a.map_node(m)),
        retained_objects: (input.objects)
            .and_then(|o| o.get(a.map_node(m) as usize))
            .map_or(0, |&n| n.into()),
        root: String::new(),
        inside: false,
        percent_of_heap: 0.0,
        entries_retained_bytes: entries_retained,
        entries_retained_objects: entries_objects,
        groups,
        top_entries,
        inner_maps: 0,
        nested: Vec::new(),
    }
}

/// A DWARF type's name as `%T` prints it.
pub(super) fn type_name(input: &MapsInput, t: crate::dwarf::TypeRef) -> String {
    (input.dwarf.info(t))
        .map(|i| keys::short_type_name(&i.name))
        .unwrap_or_default()
}

/// The key groups and largest entries of the entries of `maps` together (one map, or the
/// maps a roll-up row stands for, which share their key and value types), and what the
/// entries retain in all (bytes, and objects when counted); in the groups of `guide` when
/// given (see [`Grouper::follow`]).
pub(super) fn group_maps(
    input: &MapsInput,
    opts: &MapsOptions,
    redactor: &Redactor,
    guide: Option<&[Group]>,
    maps: &[&DecodedMap],
) -> (Vec<KeyGroup>, Vec<TopEntry>, (u64, u64)) {
    let a = input.view.a;
    let mem = input.mem;
    let Some(first) = maps.first() else {
        return (Vec::new(), Vec::new(), (0, 0));
    };
    // The maps' entries numbered one after another: map k's from starts[k].
    let lists: Vec<&[crate::maps::Entry]> = maps.iter().map(|m| a.maps.entries_of(m)).collect();
    let mut starts = Vec::with_capacity(maps.len() + 1);
    let mut n = 0u32;
    for l in &lists {
        starts.push(n);
        n = n.saturating_add(l.len() as u32);
    }
    starts.push(n);
    let at = |i: u32| {
        let k = starts.partition_point(|&s| s <= i).saturating_sub(1);
        (maps[k], lists[k][(i - starts[k]) as usize])
    };
    let (listed, listed_objects): (Vec<u64>, Vec<u64>);
    let sizes = match maps {
        [m] => Sizes::Graph {
            retained: &a.retained,
            objects: input.objects,
            first_node: a.graph.entry_node(m.first_entry as usize),
        },
        _ => {
            let nodes: Vec<u32> = (0..maps.len())
                .flat_map(|k| {
                    let first = maps[k].first_entry as usize;
                    (0..lists[k].len()).map(move |j| a.graph.entry_node(first + j))
                })
                .collect();
            listed = nodes.iter().map(|&node| a.retained.get(node)).collect();
            listed_objects = (input.objects.into_iter())
                .flat_map(|o| {
                    nodes
                        .iter()
                        .map(|&n| o.get(n as usize).map_or(0, |&c| c.into()))
                })
                .collect();
            Sizes::Listed(&listed, &listed_objects)
        }
    };
    let (entries_retained, entries_objects) = (0..n)
        .map(|i| sizes.entry(i))
        .fold((0, 0), |(b, o), (eb, eo)| (b + eb, o + eo));
    let totals = (entries_retained, entries_objects);
    if opts.groups == 0 && opts.entries == 0 {
        return (Vec::new(), Vec::new(), totals);
    }
    let value_type = type_name(input, first.value.ty);
    let key_slot = |i: u32| {
        let (m, e) = at(i);
        keys::deref(mem, m.key_of(e), m.key.indirect)
    };
    let pointer = input.dwarf.is_pointer_shaped(first.value.ty);
    // An entry's value: the object it points to, else its slot.
    let entry = |i: u32| {
        let (m, e) = at(i);
        let slot = keys::deref(mem, m.value_of(e), m.value.indirect);
        let target = (pointer.then(|| mem.u64(slot).ok()).flatten())
            .and_then(|p| a.objects.find(&a.index, Addr(p)))
            .map(|o| a.objects.addr(o));
        (value_type.clone(), target.unwrap_or(slot).to_string())
    };
    let render = |i: u32| keys::render(input.dwarf, mem, first.key.ty, key_slot(i), 0);
    let (groups, top) = if keys::is_string(input.dwarf, first.key.ty) {
        let keys = Keys::Strings(StringKeys::new(mem, n, &key_slot));
        grouped(
            opts,
            (redactor, guide),
            keys,
            sizes,
            true,
            entries_retained,
            &entry,
        )
    } else {
        let keys = Keys::Rendered {
            text: &render,
            count: n,
        };
        grouped(
            opts,
            (redactor, guide),
            keys,
            sizes,
            false,
            entries_retained,
            &entry,
        )
    };
    (groups, top, totals)
}

/// Entries per slot, to three decimals.
pub(super) fn load(entries: u64, slots: u64) -> f64 {
    if slots == 0 {
        0.0
    } else {
        (entries as f64 / slots as f64 * 1000.0).round() / 1000.0
    }
}

/// Entries as shown, from (retained bytes, entry index).
pub(super) type EntriesOf<'x> = dyn Fn(&[(u64, u32)]) -> Vec<TopEntry> + 'x;

/// A map's key groups and its entries that retain the most, as shown: labels and keys
/// quoted and cut, or redacted; the groups of `guide` and then the largest others when a
/// guide is given. `entry` gives an entry's value type and address.
pub(super) fn grouped(
    opts: &MapsOptions,
    (redactor, guide): (&Redactor, Option<&[Group]>),
    keys: Keys,
    sizes: Sizes,
    string: bool,
    entries_retained: u64,
    entry: &dyn Fn(u32) -> (String, String),
) -> (Vec<KeyGroup>, Vec<TopEntry>) {
    let how = match (opts.group_by, string, opts.depth) {
        (GroupBy::Shape, _, _) => Grouping::Shape,
        (GroupBy::Prefix, false, _) => Grouping::Whole,
        (GroupBy::Prefix, true, None) => Grouping::Tree,
        (GroupBy::Prefix, true, Some(d)) => Grouping::Depth(d),
    };
    let grouper = Grouper {
        keys,
        sizes,
        delimiters: &opts.delimiters,
        keep: opts.entries,
        shown: opts.groups,
    };
    let (groups, top) = match guide {
        Some(guide) => grouper.follow(how, guide),
        None => grouper.group(how),
    };
    // A guided grouping keeps every group of the guide (and `follow` bounds the others).
    let width = if guide.is_some() {
        usize::MAX
    } else {
        opts.groups
    };
    // A key as shown: a string quoted (its fields redacted), other keys as rendered.
    let key = |i: u32| -> String {
        match &grouper.keys {
            Keys::Strings(s) => {
                let text = s.text(i).unwrap_or_default();
                if opts.redact {
                    keys::cut(&keys::quote(&redactor.key(&text)), opts.key_width)
                } else {
                    keys::cut(&keys::quote(&text), opts.key_width)
                }
            }
            Keys::Rendered { text, .. } => {
                let text = text(i).unwrap_or_default();
                if opts.redact {
                    keys::cut(
                        &redactor.text(&text, keys::RENDER_PUNCTUATION),
                        opts.key_width,
                    )
                } else {
                    keys::cut(&text, opts.key_width)
                }
            }
        }
    };
    let label = |l: &[u8]| -> String {
        let text = String::from_utf8_lossy(l);
        if opts.redact {
            redactor.key(&text)
        } else {
            text.into_owned()
        }
    };
    let top_entries = |top: &[(u64, u32)]| -> Vec<TopEntry> {
        (top.iter())
            .map(|&(r, i)| {
                let (value_type, address) = entry(i);
                TopEntry {
                    key: key(i),
                    retained_bytes: r,
                    value_type,
                    address,
                }
            })
            .collect()
    };
    fn shown(
        g: &Group,
        total: u64,
        width: usize,
        label: &dyn Fn(&[u8]) -> String,
        key: &dyn Fn(u32) -> String,
        top: &EntriesOf,
    ) -> KeyGroup {
        KeyGroup {
            prefix: label(&g.label),
            entries: g.acc.entries,
            retained_bytes: g.acc.bytes,
            percent_of_map: percent(g.acc.bytes, total),
            // A guide's group may hold nothing here.
            sample_key: if g.acc.entries > 0 {
                key(g.acc.first)
            } else {
                String::new()
            },
            children: (g.children.iter().take(width))
                .map(|c| shown(c, total, width, label, key, top))
                .collect(),
            top_entries: top(&g.acc.top),
            label: g.label.clone(),
            depth: g.depth,
            retained_objects: g.acc.objects,
        }
    }
    let groups = (groups.iter().take(width))
        .map(|g| shown(g, entries_retained, width, &label, &key, &top_entries))
        .collect();
    (groups, top_entries(&top))
}

/// One row for maps inside another map's entries: their count and totals, the key groups
/// and largest entries of all their entries together (`keys`, from [`group_maps`]), and
/// (when asked) each of them.
pub(super) fn rollup_line(
    owner: String,
    inner: Vec<MapLine>,
    (groups, top_entries, (entries_retained, entries_objects)): (
        Vec<KeyGroup>,
        Vec<TopEntry>,
        (u64, u64),
    ),
    opts: &MapsOptions,
) -> MapLine {
    let sum = |f: fn(&MapLine) -> u64| inner.iter().map(f).sum::<u64>();
    let (entries, slots) = (sum(|l| l.entries), sum(|l| l.slots));
    let first = inner.first();
    let text = |f: fn(&MapLine) -> &String| first.map(f).cloned().unwrap_or_default();
    MapLine {
        owner,
        owner_shared: false,
        also_held_by: Vec::new(),
        address: text(|l| &l.address),
        implementation: first.map_or(MapImpl::Swiss, |l| l.implementation),
        key_type: text(|l| &l.key_type),
        value_type: text(|l| &l.value_type),
        entries,
        header_count: sum(|l| l.header_count),
        table_bytes: sum(|l| l.table_bytes),
        slots,
        load: load(entries, slots),
        tombstones: sum(|l| l.tombstones),
        retained_bytes: sum(|l| l.retained_bytes),
        retained_objects: sum(|l| l.retained_objects),
        root: String::new(),
        inside: false,
        percent_of_heap: 0.0,
        entries_retained_bytes: entries_retained,
        entries_retained_objects: entries_objects,
        groups,
        top_entries,
        inner_maps: inner.len() as u64,
        nested: if opts.nested { inner } else { Vec::new() },
    }
}

/// Names a value of the named type (a `sync.Map`, a `sync.Pool`) at `addr`: a field of the heap
/// object `holder` reached from a root, or a global variable (or one of its fields).
pub(super) fn value_owner(
    namer: &Namer,
    parents: &Parents,
    dwarf: &Dwarf,
    (addr, type_name): (Addr, &str),
    holder: Option<u32>,
) -> String {
    let v = namer.view;
    let a = v.a;
    let within =
        |ty: crate::dwarf::TypeRef, base: Addr| dwarf.field_path_to(ty, addr.0 - base.0, type_name);
    if let Some(h) = holder {
        let o = ObjId(h);
        let path = v.path_to(parents, h);
        let base = namer.expression(&path);
        if !base.is_empty() {
            let field = match a.types.get(o) {
                Some(crate::types::ObjType::Dwarf(t)) => {
                    within(t, a.objects.value_in(a.objects.span(o), o).0)
                }
                _ => String::new(),
            };
            return format!("{base}{field}");
        }
    }
    for r in &a.roots {
        if let Some((base, ty)) = r.var {
            if addr >= base && addr.0 < base.0 + dwarf.byte_size(ty).max(1) {
                return format!("{}{}", r.name, within(ty, base));
            }
        }
    }
    format!("{type_name} @ {addr}")
}

/// The name of the root the map is reached from: a global, a goroutine's frame.
pub(super) fn root_of(v: &HeapView, parents: &Parents, m: &DecodedMap) -> String {
    let a = v.a;
    let r = match m.home {
        crate::maps::MapHome::Stack(r) => Some(r as usize),
        _ => (v.path_to(parents, a.map_node(m)).first()).and_then(|&n| a.graph.as_root(n)),
    };
    r.and_then(|r| a.roots.get(r))
        .map_or_else(String::new, |r| r.name.clone())
}

/// Names the map as Go code would reach it from a root, along the shortest path; and whether
/// several roots hold it.
pub(super) fn owner(namer: &Namer, parents: &Parents, m: &DecodedMap) -> (String, Vec<String>) {
    let v = namer.view;
    if let crate::maps::MapHome::Stack(r) = m.home {
        // The map is its own root, named for its variable.
        return (v.a.roots[r as usize].name.clone(), Vec::new());
    }
    let node = v.a.map_node(m);
    let path = v.path_to(parents, node);
    let mut name = namer.expression(&path);
    let shared = v
        .dominator_chain(node)
        .first()
        .is_some_and(|&first| v.a.graph.as_root(first).is_none());
    if name.is_empty() {
        name = format!("map @ {}", m.addr);
    }
    // The other roots that point at the map itself.
    let mut others = Vec::new();
    if shared {
        let g = &v.a.graph;
        for r in 0..g.roots as usize {
            let rn = g.root_node(r);
            if g.graph.successors(rn).contains(&node) {
                let n = namer.edge(rn, node);
                if n != name && !others.contains(&n) {
                    others.push(n);
                }
            }
        }
        if others.is_empty() {
            others.push("several roots".to_string());
        }
    }
    (name, others)
}
