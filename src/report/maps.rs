//! `coreheap maps`: maps ranked by the bytes they retain, who owns them, and which key groups
//! hold the bytes.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

use super::heapview::{HeapView, Namer, Parents};
use super::top::percent;
use super::{human_bytes, Envelope};
use crate::dwarf::Dwarf;
use crate::heap::ObjId;
use crate::maps::keys::{self, Redactor};
use crate::maps::syncmap::{SyncEntry, SyncImpl, SyncMap};
use crate::maps::{DecodedMap, MapImpl};
use crate::memory::{Addr, Memory};

/// How to group a map's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// By the text before the N-th delimiter.
    Prefix,
    /// By the key's pattern (`acct:{n}`).
    Shape,
}

/// Options of the `maps` command.
#[derive(Debug, Clone)]
pub struct MapsOptions {
    /// Maps to list (0: all).
    pub top: usize,
    /// Leave out maps retaining fewer bytes.
    pub min_bytes: u64,
    /// Key groups per map.
    pub groups: usize,
    /// Grouping.
    pub group_by: GroupBy,
    /// Delimiter count for prefixes.
    pub depth: usize,
    /// Delimiter characters.
    pub delimiters: String,
    /// Characters of a key shown.
    pub key_width: usize,
    /// Replace keys by their shape and a keyed hash.
    pub redact: bool,
    /// List the maps inside other maps' entries one by one under their roll-up row.
    pub nested: bool,
}

impl Default for MapsOptions {
    fn default() -> Self {
        MapsOptions {
            top: 20,
            min_bytes: 0,
            groups: 5,
            group_by: GroupBy::Prefix,
            depth: 1,
            delimiters: ":/|.-_ ".to_string(),
            key_width: 40,
            redact: false,
            nested: false,
        }
    }
}

/// A group of keys.
#[derive(Debug, Serialize)]
pub struct KeyGroup {
    /// The prefix or shape.
    pub prefix: String,
    /// Entries in the group.
    pub entries: u64,
    /// Bytes the group's entries retain.
    pub retained_bytes: u64,
    /// Share of the map's entries' retained bytes, percent.
    pub percent_of_map: f64,
    /// One key of the group.
    pub sample_key: String,
}

/// One map.
#[derive(Debug, Serialize)]
pub struct MapLine {
    /// The path from a root naming the map, as Go code would write it.
    pub owner: String,
    /// Several roots hold the map (no single owner dominates it).
    pub owner_shared: bool,
    /// Other roots that hold the map directly, named (when `owner_shared`).
    pub also_held_by: Vec<String>,
    /// Header address.
    pub address: String,
    /// `classic` or `swiss`.
    pub implementation: MapImpl,
    /// Key type, as `%T` prints it.
    pub key_type: String,
    /// Value type, as `%T` prints it.
    pub value_type: String,
    /// Entries decoded.
    pub entries: u64,
    /// Entries the header records.
    pub header_count: u64,
    /// Bytes of the map's own structures: header, directory, tables, groups or buckets.
    pub table_bytes: u64,
    /// Slots in its groups or buckets.
    pub slots: u64,
    /// Entries per slot.
    pub load: f64,
    /// Deleted slots.
    pub tombstones: u64,
    /// Bytes the map keeps alive: its structures, entries and what they share.
    pub retained_bytes: u64,
    /// Sum of what each entry alone keeps alive.
    pub entries_retained_bytes: u64,
    /// Key groups, largest first.
    pub groups: Vec<KeyGroup>,
    /// For a row standing for the maps inside another map's entries: how many (0 otherwise).
    pub inner_maps: u64,
    /// Those maps one by one, when asked (`--nested`); empty otherwise.
    pub nested: Vec<MapLine>,
}

/// The `maps` report.
#[derive(Debug, Serialize)]
pub struct MapsReport {
    /// Go release.
    pub go_version: String,
    /// Heap totals.
    pub heap: HeapBytes,
    /// Maps found in all.
    pub maps_found: usize,
    /// Bytes all maps retain together (a map inside another counted once, through the outer).
    pub maps_retained_bytes: u64,
    /// Maps, largest retainers first.
    pub maps: Vec<MapLine>,
    /// One-line findings for a responder.
    pub findings: Vec<String>,
    /// Values that map entries point to but no single entry retains.
    pub shared: Vec<SharedLine>,
    /// `sync.Pool`s that hold objects.
    pub pools: Vec<PoolLine>,
    /// Problems met.
    pub warnings: Vec<String>,
    /// Keys were redacted.
    pub redacted: bool,
}

/// Values that map entries hold but none retains alone, and who shares them.
#[derive(Debug, Serialize)]
pub struct SharedLine {
    /// One map (several of its entries share them), two maps, or a map and what else holds
    /// them (`outside`).
    pub owners: Vec<String>,
    /// The second owner is not a map: a path from a root that avoids map entries.
    pub outside: bool,
    /// Values shared: objects an entry points to directly.
    pub values: u64,
    /// Objects those values retain, themselves included.
    pub objects: u64,
    /// Bytes those values retain: what no single owner retains.
    pub bytes: u64,
}

/// A `sync.Pool` and what its caches hold.
#[derive(Debug, Serialize)]
pub struct PoolLine {
    /// The path from a root naming the pool.
    pub owner: String,
    /// Where the `sync.Pool` value is.
    pub address: String,
    /// Objects pooled in the primary cache (kept through the next GC, as the victim cache).
    pub primary_objects: u64,
    /// Objects pooled in the victim cache (dropped at the next GC).
    pub victim_objects: u64,
    /// Bytes the pooled objects retain.
    pub held_bytes: u64,
    /// Bytes the pool's caches retain: the pooled objects and the caches' own arrays.
    pub retained_bytes: u64,
}

/// The heap's bytes.
#[derive(Debug, Serialize)]
pub struct HeapBytes {
    /// Live objects' bytes.
    pub allocated_bytes: u64,
    /// Reachable from roots.
    pub reachable_bytes: u64,
    /// Allocated but unreachable.
    pub unreachable_bytes: u64,
}

/// Where the report reads from.
pub struct MapsInput<'a> {
    /// The analysed heap.
    pub view: &'a HeapView<'a>,
    /// DWARF.
    pub dwarf: &'a Dwarf,
    /// Memory.
    pub mem: &'a Memory,
    /// Go release.
    pub go_version: &'a str,
    /// The executable's symbols, load bias and bytes (to name closures), when at hand.
    pub code: Option<(&'a crate::exe::Symbols, u64, &'a [u8])>,
}

impl MapsReport {
    /// Ranks every decoded map.
    pub fn gather(input: &MapsInput, opts: &MapsOptions) -> MapsReport {
        let v = input.view;
        let a = v.a;
        let reach = a.reachability();
        let redactor = Redactor::default();
        let mut namer = Namer::new(v, input.dwarf, input.mem);
        if let Some((symbols, bias, exe)) = input.code {
            namer = namer.with_code(symbols, bias, exe);
        }
        let node = |mi: usize| a.map_node(&a.maps.maps[mi]);
        // A sync.Map's read-only and dirty maps are shown as the sync.Map.
        let internal: std::collections::HashSet<u32> = (a.maps.sync_maps.iter())
            .flat_map(|s| s.internal.iter().copied())
            .collect();
        let shown: Vec<usize> = (0..a.maps.maps.len())
            .filter(|&mi| {
                let h = node(mi);
                !internal.contains(&(mi as u32))
                    && a.doms.is_reachable(h)
                    && a.retained.get(h) >= opts.min_bytes
            })
            .collect();
        let holders: Vec<Option<u32>> = (a.maps.sync_maps.iter())
            .map(|s| v.object_at(s.addr).map(|o| o.0))
            .collect();
        let pools: Vec<&crate::maps::pool::Pool> = (a.maps.pools.iter())
            .filter(|p| !p.local.held.is_empty() || !p.victim.held.is_empty())
            .collect();
        let pool_holders: Vec<Option<u32>> = (pools.iter())
            .map(|p| v.object_at(p.addr).map(|o| o.0))
            .collect();
        let mut targets: Vec<u32> = shown.iter().map(|&mi| node(mi)).collect();
        targets.extend(holders.iter().chain(&pool_holders).flatten());
        // Owners first: the search's table is freed before keys are grouped.
        let parents = v.bfs_parents(&targets);
        let owners: Vec<(String, Vec<String>)> = shown
            .iter()
            .map(|&mi| owner(&namer, &parents, &a.maps.maps[mi]))
            .collect();
        let sync_owners: Vec<String> = (a.maps.sync_maps.iter().zip(&holders))
            .map(|(s, h)| value_owner(&namer, &parents, input.dwarf, (s.addr, "sync.Map"), *h))
            .collect();
        let pools: Vec<PoolLine> = (pools.iter().zip(&pool_holders))
            .map(|(p, h)| {
                let owner = value_owner(&namer, &parents, input.dwarf, (p.addr, "sync.Pool"), *h);
                pool_line(a, owner, p)
            })
            .collect();
        // Maps inside another map's entries roll up under the outermost one: one row per
        // outer map and path from its entries (`main.nested[*]`, `main.byUser[*].tags`).
        let position: HashMap<usize, usize> =
            shown.iter().enumerate().map(|(k, &mi)| (mi, k)).collect();
        let mut rollups: Vec<((usize, String), Vec<usize>)> = Vec::new();
        let mut nested: std::collections::HashSet<usize> = Default::default();
        for &mi in &shown {
            let path = v.path_to(&parents, node(mi));
            let Some(at) = path.iter().position(|&n| a.graph.as_entry(n).is_some()) else {
                continue;
            };
            let Some(outer) = a
                .graph
                .as_entry(path[at])
                .map(|e| a.maps.map_index_of(e) as usize)
            else {
                continue;
            };
            let Some(&k) = position.get(&outer) else {
                continue;
            };
            let suffix: String = path[at..]
                .windows(2)
                .skip(1)
                .map(|w| namer.edge(w[0], w[1]))
                .collect();
            let key = (outer, format!("{}[*]{suffix}", owners[k].0));
            match rollups.iter().position(|(k, _)| *k == key) {
                Some(r) => rollups[r].1.push(mi),
                None => rollups.push((key, vec![mi])),
            }
            nested.insert(mi);
        }
        drop(parents);
        let inner_names: HashMap<usize, String> = (shown.iter().zip(&owners))
            .filter(|(mi, _)| nested.contains(mi))
            .map(|(&mi, (o, _))| (mi, o.clone()))
            .collect();
        let mut inner_lines: HashMap<usize, MapLine> = HashMap::new();
        let mut lines: Vec<(usize, MapLine)> = Vec::new();
        for (mi, owner) in shown.into_iter().zip(owners) {
            let m = &a.maps.maps[mi];
            if nested.contains(&mi) {
                let all_groups = MapsOptions {
                    groups: usize::MAX,
                    ..opts.clone()
                };
                inner_lines.insert(mi, map_line(input, &all_groups, owner, &redactor, m));
            } else {
                lines.push((mi, map_line(input, opts, owner, &redactor, m)));
            }
        }
        // sync.Maps follow, numbered after the Go maps, then the roll-ups.
        let first_sync = a.maps.maps.len();
        for (k, (s, owner)) in a.maps.sync_maps.iter().zip(sync_owners).enumerate() {
            let line = sync_line(input, opts, owner, &redactor, s);
            if line.retained_bytes >= opts.min_bytes {
                lines.push((first_sync + k, line));
            }
        }
        let first_rollup = first_sync + a.maps.sync_maps.len();
        for (k, ((_, owner), members)) in rollups.into_iter().enumerate() {
            let inner: Vec<MapLine> = (members.iter())
                .filter_map(|mi| inner_lines.remove(mi))
                .collect();
            lines.push((first_rollup + k, rollup_line(owner, inner, opts)));
        }
        lines.sort_by_key(|(_, l)| std::cmp::Reverse(l.retained_bytes));
        let headers: std::collections::HashSet<u32> = (lines.iter())
            .filter(|(mi, _)| *mi < first_sync)
            .map(|(mi, _)| node(*mi))
            .collect();
        // What all maps retain: each row once, less those inside another row's map (roll-ups
        // are inside theirs).
        let maps_retained_bytes = lines
            .iter()
            .filter(|(mi, _)| {
                if *mi >= first_rollup {
                    return false;
                }
                if *mi >= first_sync {
                    return true;
                }
                let h = node(*mi);
                !v.dominator_chain(h)
                    .iter()
                    .any(|n| *n != h && headers.contains(n))
            })
            .map(|(_, l)| l.retained_bytes)
            .sum();
        let (mut findings, shared) = findings(input, &lines, &inner_names, reach.reachable_bytes);
        findings.extend(pools.iter().map(pool_finding));
        let found = lines.len();
        if opts.top > 0 {
            lines.truncate(opts.top);
        }
        MapsReport {
            go_version: input.go_version.to_string(),
            heap: HeapBytes {
                allocated_bytes: reach.allocated_bytes,
                reachable_bytes: reach.reachable_bytes,
                unreachable_bytes: reach.unreachable_bytes,
            },
            maps_found: found,
            maps_retained_bytes,
            maps: lines.into_iter().map(|(_, l)| l).collect(),
            findings,
            shared,
            pools,
            warnings: a.warnings.clone(),
            redacted: opts.redact,
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&Envelope::new("coreheap/maps/v1", self))
    }

    /// A table for people: one row per map, its key groups below it.
    pub fn to_table(&self) -> String {
        let mut t = super::new_table();
        t.set_header(vec!["retained", "entries", "table", "load", "map"]);
        for m in &self.maps {
            t.add_row(vec![
                human_bytes(m.retained_bytes),
                m.entries.to_string(),
                human_bytes(m.table_bytes),
                format!("{:.0}%", m.load * 100.0),
                format!(
                    "{}{}  map[{}]{}",
                    m.owner,
                    shared_note(m),
                    m.key_type,
                    m.value_type
                ),
            ]);
            for g in &m.groups {
                t.add_row(vec![
                    format!("  {}", human_bytes(g.retained_bytes)),
                    g.entries.to_string(),
                    String::new(),
                    format!("{:.0}%", g.percent_of_map),
                    format!("  {} e.g. {}", display_prefix(&g.prefix), g.sample_key),
                ]);
            }
        }
        let mut out = self.summary();
        out.push('\n');
        out.push_str(&t.to_string());
        for f in &self.findings {
            out.push_str(&format!("\n• {f}"));
        }
        out
    }

    /// One sentence saying what holds the memory.
    pub fn summary(&self) -> String {
        match self.maps.first() {
            Some(m) => format!(
                "{} maps hold {} of the {} reachable heap; the largest, {}, retains {} ({:.1}%) in {} entries.",
                self.maps_found,
                human_bytes(self.maps_retained_bytes),
                human_bytes(self.heap.reachable_bytes),
                m.owner,
                human_bytes(m.retained_bytes),
                percent(m.retained_bytes, self.heap.reachable_bytes),
                m.entries
            ),
            None => format!(
                "No maps found in the {} reachable heap.",
                human_bytes(self.heap.reachable_bytes)
            ),
        }
    }

    /// Markdown for a ticket: summary, table, findings, and how it was made.
    pub fn to_markdown(&self, command: &str) -> String {
        let mut s = format!("## What holds the memory\n\n{}\n\n", self.summary());
        s.push_str("| retained | entries | table | load | tombstones | map | key → value |\n");
        s.push_str("|---:|---:|---:|---:|---:|---|---|\n");
        for m in &self.maps {
            s.push_str(&format!(
                "| {} | {} | {} | {:.0}% | {} | `{}`{} | `{}` → `{}` |\n",
                human_bytes(m.retained_bytes),
                m.entries,
                human_bytes(m.table_bytes),
                m.load * 100.0,
                m.tombstones,
                m.owner,
                shared_note(m),
                m.key_type,
                m.value_type
            ));
        }
        for m in self.maps.iter().filter(|m| !m.groups.is_empty()).take(5) {
            s.push_str(&format!("\n### Keys of `{}`\n\n", m.owner));
            s.push_str(
                "| group | entries | retained | share | sample key |\n|---|---:|---:|---:|---|\n",
            );
            for g in &m.groups {
                s.push_str(&format!(
                    "| `{}` | {} | {} | {:.1}% | `{}` |\n",
                    display_prefix(&g.prefix),
                    g.entries,
                    human_bytes(g.retained_bytes),
                    g.percent_of_map,
                    g.sample_key.replace('`', "'")
                ));
            }
        }
        if !self.findings.is_empty() {
            s.push_str("\n### Findings\n\n");
            for f in &self.findings {
                s.push_str(&format!("- {f}\n"));
            }
        }
        s.push_str(&format!(
            "\n<sub>`{command}` · coreheap {} · {}{}</sub>\n",
            env!("CARGO_PKG_VERSION"),
            self.go_version,
            if self.redacted {
                " · keys redacted"
            } else {
                ""
            }
        ));
        s
    }
}

/// ` (also held by main.idxB)` after the owner of a map several roots hold.
fn shared_note(m: &MapLine) -> String {
    if m.also_held_by.is_empty() {
        String::new()
    } else {
        format!(" (also held by {})", m.also_held_by.join(", "))
    }
}

fn display_prefix(p: &str) -> &str {
    if p.is_empty() {
        "(no prefix)"
    } else {
        p
    }
}

fn map_line(
    input: &MapsInput,
    opts: &MapsOptions,
    (owner, also_held_by): (String, Vec<String>),
    redactor: &Redactor,
    m: &DecodedMap,
) -> MapLine {
    let v = input.view;
    let a = v.a;
    let entries = a.maps.entries_of(m);
    let entry_retained = EntrySizes {
        retained: &a.retained,
        first_node: a.graph.entry_node(m.first_entry as usize),
    };
    let entries_retained: u64 = (0..entries.len() as u32)
        .map(|i| entry_retained.get(i))
        .sum();
    let table_bytes: u64 = m.storage.iter().map(|o| a.shallow(o.0)).sum();
    // Group the entries by prefix or shape of their keys.
    let groups = if keys::is_string(input.dwarf, m.key.ty) {
        group_string_keys(input.mem, opts, redactor, m, entries, entry_retained)
    } else {
        group_other_keys(input, opts, redactor, m, entries, entry_retained)
    };
    let groups = key_groups(groups, entries_retained, opts);
    let type_name = |t| {
        input
            .dwarf
            .info(t)
            .map(|i| keys::short_type_name(&i.name))
            .unwrap_or_default()
    };
    MapLine {
        owner,
        owner_shared: !also_held_by.is_empty(),
        also_held_by,
        address: m.addr.to_string(),
        implementation: m.imp,
        key_type: type_name(m.key.ty),
        value_type: type_name(m.value.ty),
        entries: entries.len() as u64,
        header_count: m.count,
        table_bytes,
        slots: m.slots,
        load: if m.slots == 0 {
            0.0
        } else {
            (entries.len() as f64 / m.slots as f64 * 1000.0).round() / 1000.0
        },
        tombstones: m.tombstones,
        retained_bytes: a.retained.get(a.map_node(m)),
        entries_retained_bytes: entries_retained,
        groups,
        inner_maps: 0,
        nested: Vec::new(),
    }
}

/// What a pool's caches hold.
fn pool_line(
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
fn pool_finding(p: &PoolLine) -> String {
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

/// One row for maps inside another map's entries: their count and totals, their key groups
/// merged, and (when asked) each of them.
fn rollup_line(owner: String, inner: Vec<MapLine>, opts: &MapsOptions) -> MapLine {
    let sum = |f: fn(&MapLine) -> u64| inner.iter().map(f).sum::<u64>();
    let mut groups = Groups::new();
    for g in inner.iter().flat_map(|l| &l.groups) {
        let e = (groups.entry(g.prefix.clone())).or_insert_with(|| (0, 0, g.sample_key.clone()));
        e.0 += g.entries;
        e.1 += g.retained_bytes;
    }
    let entries_retained = sum(|l| l.entries_retained_bytes);
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
        load: if slots == 0 {
            0.0
        } else {
            (entries as f64 / slots as f64 * 1000.0).round() / 1000.0
        },
        tombstones: sum(|l| l.tombstones),
        retained_bytes: sum(|l| l.retained_bytes),
        entries_retained_bytes: entries_retained,
        groups: key_groups(groups, entries_retained, opts),
        inner_maps: inner.len() as u64,
        nested: if opts.nested {
            inner
                .into_iter()
                .map(|mut l| {
                    l.groups.truncate(opts.groups);
                    l
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Key groups as shown: largest first, at most `opts.groups`.
fn key_groups(groups: Groups, entries_retained: u64, opts: &MapsOptions) -> Vec<KeyGroup> {
    let mut groups: Vec<KeyGroup> = groups
        .into_iter()
        .map(|(prefix, (n, bytes, sample))| KeyGroup {
            prefix,
            entries: n,
            retained_bytes: bytes,
            percent_of_map: percent(bytes, entries_retained),
            sample_key: sample,
        })
        .collect();
    groups.sort_by(|x, y| {
        y.retained_bytes
            .cmp(&x.retained_bytes)
            .then(x.prefix.cmp(&y.prefix))
    });
    groups.truncate(opts.groups);
    groups
}

/// Names a value of the named type (a `sync.Map`, a `sync.Pool`) at `addr`: a field of the heap
/// object `holder` reached from a root, or a global variable (or one of its fields).
fn value_owner(
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

/// What each live entry of a `sync.Map` alone keeps alive: its own node (the `*entry` with
/// the boxed value, or the trie's entry) and its key's and value's objects, where nothing
/// else holds them.
fn sync_entry_sizes(
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
fn common_type<'e>(input: &MapsInput, anys: impl Iterator<Item = &'e Addr>) -> String {
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
fn sync_line(
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
    let mut groups = Groups::new();
    for (e, &r) in s.entries.iter().zip(&sizes) {
        let text = a
            .eface(input.dwarf, input.mem, e.key)
            .and_then(|(t, at)| keys::render(input.dwarf, input.mem, t, at, 0))
            .unwrap_or_default();
        // String keys group on their text, as in any map.
        let raw = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(&text);
        let group = match opts.group_by {
            GroupBy::Prefix => keys::prefix(raw, opts.depth, &opts.delimiters).to_string(),
            GroupBy::Shape => keys::shape(raw, &opts.delimiters),
        };
        let group = if opts.redact {
            keys::shape(&group, &opts.delimiters)
        } else {
            group
        };
        let g = groups.entry(group).or_insert_with(|| {
            let shown = if opts.redact {
                redactor.key(raw, &opts.delimiters)
            } else {
                keys::cut(&text, opts.key_width)
            };
            (0, 0, shown)
        });
        g.0 += 1;
        g.1 += r;
    }
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
        load: if slots == 0 {
            0.0
        } else {
            (n as f64 / slots as f64 * 1000.0).round() / 1000.0
        },
        tombstones: s.dead.len() as u64,
        retained_bytes: table_bytes + entries_retained,
        entries_retained_bytes: entries_retained,
        groups: key_groups(groups, entries_retained, opts),
        inner_maps: 0,
        nested: Vec::new(),
    }
}

/// Retained bytes of one map's entries, by entry index within the map.
#[derive(Clone, Copy)]
struct EntrySizes<'a> {
    retained: &'a crate::graph::Retained,
    /// Graph node of the map's first entry (its entries' nodes follow it).
    first_node: u32,
}

impl EntrySizes<'_> {
    /// Retained bytes of entry `i`.
    fn get(&self, i: u32) -> u64 {
        self.retained.get(self.first_node + i)
    }

    /// Asks for entry `i`'s size ahead of its use.
    fn prefetch(&self, i: u32) {
        self.retained.prefetch(self.first_node + i);
    }
}

/// Entries by key group: group → (entries, retained bytes, the key shown for the group).
type Groups = HashMap<String, (u64, u64, String)>;

/// A group while string keys are being grouped: entries, bytes, and the first entry's index
/// with its key as shown. Looked up once per entry: a fast hash (the groups are sorted before
/// they are shown, so their order in the table does not matter).
type Partial = HashMap<String, (u64, u64, u32, String), foldhash::fast::RandomState>;

/// How many keys ahead grouping asks for an entry's retained size.
const PREFETCH_AHEAD: usize = 16;

/// Keys per chunk when string keys are grouped on every core.
const KEY_CHUNK: usize = 1 << 15;

/// Groups entries whose keys are strings, on every core. Keys are read in address order (the
/// core is read forward, not at random); the first key of a group in entry order is its sample.
fn group_string_keys(
    mem: &Memory,
    opts: &MapsOptions,
    redactor: &Redactor,
    m: &DecodedMap,
    entries: &[crate::maps::Entry],
    retained_of: EntrySizes,
) -> Groups {
    use rayon::prelude::*;
    let key_slot = |i: usize| keys::deref(mem, m.key_of(entries[i]), m.key.indirect);
    let header = |i: usize| keys::string_header(mem, key_slot(i)).unwrap_or((Addr(0), 0));
    // Entries in the order of their keys' bytes in memory, each as one u64: the key data's
    // address above the lowest (high bits, cut short if it and the index need over 64 bits)
    // and the entry index (low bits). Unreadable keys come first. Key lengths (at most
    // MAX_KEY_BYTES) are kept per entry so that the pass in address order reads no slots.
    let mut order = vec![0u64; entries.len()];
    let mut lens = vec![0u16; entries.len()];
    order
        .par_iter_mut()
        .zip(lens.par_iter_mut())
        .enumerate()
        .for_each(|(i, (o, l))| {
            let (p, n) = header(i);
            (*o, *l) = (p.0, n as u16);
        });
    let lowest = order
        .par_iter()
        .copied()
        .filter(|&p| p != 0)
        .min()
        .unwrap_or(0);
    let highest = order.par_iter().copied().max().unwrap_or(0);
    let index_bits = u64::BITS - (entries.len() as u64).leading_zeros();
    let address_bits = u64::BITS - (highest.saturating_sub(lowest) + 1).leading_zeros();
    let shift = (address_bits + index_bits).saturating_sub(u64::BITS);
    order.par_iter_mut().enumerate().for_each(|(i, p)| {
        let above = if *p == 0 { 0 } else { *p - lowest + 1 };
        *p = (above >> shift).checked_shl(index_bits).unwrap_or(0) | i as u64;
    });
    order.par_sort_unstable();
    let index_mask = (1u64 << index_bits) - 1;
    // A sorted item's key: its bytes' address and length.
    let key_at = |k: u64| -> (Addr, usize) {
        let i = (k & index_mask) as usize;
        let above = k.checked_shr(index_bits).unwrap_or(0);
        match (shift, above) {
            (_, 0) => (Addr(0), 0),
            (0, a) => (Addr(lowest + a - 1), usize::from(lens[i])),
            _ => header(i),
        }
    };
    let shown = |text: &str| {
        if opts.redact {
            redactor.key(text, &opts.delimiters)
        } else {
            keys::cut(&keys::quote(text), opts.key_width)
        }
    };
    let ascii = keys::AsciiDelimiters::new(&opts.delimiters);
    let chunk_groups = |chunk: &[u64]| {
        // Keys come in address order, many to a page: each page is asked for once.
        let mut asked = 0u64;
        let _fetch = mem.fetch(chunk.iter().filter_map(|&k| {
            let (p, n) = key_at(k);
            let end = p.0.saturating_add(n as u64);
            (end > asked).then(|| {
                asked = end.next_multiple_of(crate::memory::PAGE);
                (p, n as u64)
            })
        }));
        let mut groups = Partial::default();
        for (j, &k) in chunk.iter().enumerate() {
            // Entries come in key order, their retained sizes at random: fetch ahead.
            if let Some(&ahead) = chunk.get(j + PREFETCH_AHEAD) {
                let ahead = (ahead & index_mask) as u32;
                retained_of.prefetch(ahead);
                crate::heap::prefetch(&lens[ahead as usize]);
            }
            let i = (k & index_mask) as u32;
            let r = retained_of.get(i);
            let (p, n) = key_at(k);
            let bytes = match n {
                0 => Cow::Borrowed(&[][..]),
                _ => mem.read(p, n).unwrap_or_default(),
            };
            let text = || String::from_utf8_lossy(&bytes);
            let group: Cow<str> = match (opts.group_by, &ascii) {
                // Only the prefix is decoded; the whole key only when it is shown.
                (GroupBy::Prefix, Some(set)) => {
                    String::from_utf8_lossy(keys::prefix_bytes(&bytes, opts.depth, set))
                }
                (GroupBy::Prefix, None) => {
                    Cow::Owned(keys::prefix(&text(), opts.depth, &opts.delimiters).to_string())
                }
                (GroupBy::Shape, _) => Cow::Owned(keys::shape(&text(), &opts.delimiters)),
            };
            let group = if opts.redact {
                Cow::Owned(keys::shape(&group, &opts.delimiters))
            } else {
                group
            };
            match groups.get_mut(&*group) {
                Some(g) => {
                    g.0 += 1;
                    g.1 += r;
                    if i < g.2 {
                        (g.2, g.3) = (i, shown(&text()));
                    }
                }
                None => {
                    groups.insert(group.into_owned(), (1, r, i, shown(&text())));
                }
            }
        }
        groups
    };
    let parts: Vec<Partial> = order.par_chunks(KEY_CHUNK).map(chunk_groups).collect();
    let mut all = Partial::default();
    for part in parts {
        for (k, (n, bytes, first, shown)) in part {
            match all.entry(k) {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let g = o.get_mut();
                    g.0 += n;
                    g.1 += bytes;
                    if first < g.2 {
                        (g.2, g.3) = (first, shown);
                    }
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((n, bytes, first, shown));
                }
            }
        }
    }
    all.into_iter()
        .map(|(k, (n, bytes, _, shown))| (k, (n, bytes, shown)))
        .collect()
}

/// Groups entries whose keys are not strings, by the text they render to.
fn group_other_keys(
    input: &MapsInput,
    opts: &MapsOptions,
    redactor: &Redactor,
    m: &DecodedMap,
    entries: &[crate::maps::Entry],
    retained_of: EntrySizes,
) -> Groups {
    let mut groups = Groups::new();
    for (i, e) in entries.iter().enumerate() {
        let r = retained_of.get(i as u32);
        let key_addr = keys::deref(input.mem, m.key_of(*e), m.key.indirect);
        let text = keys::render(input.dwarf, input.mem, m.key.ty, key_addr, 0);
        let group = match (&text, opts.group_by) {
            (Some(t), GroupBy::Shape) => keys::shape(t, &opts.delimiters),
            _ => String::new(),
        };
        let g = groups.entry(group).or_insert_with(|| {
            let shown = text
                .map(|t| {
                    if opts.redact {
                        redactor.key(&t, &opts.delimiters)
                    } else {
                        keys::cut(&t, opts.key_width)
                    }
                })
                .unwrap_or_default();
            (0, 0, shown)
        });
        g.0 += 1;
        g.1 += r;
    }
    groups
}

/// Names the map as Go code would reach it from a root, along the shortest path; and whether
/// several roots hold it.
fn owner(namer: &Namer, parents: &Parents, m: &DecodedMap) -> (String, Vec<String>) {
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

/// One-line findings: dominant maps, oversized tables, tombstones, shared values.
fn findings(
    input: &MapsInput,
    lines: &[(usize, MapLine)],
    inner_names: &HashMap<usize, String>,
    reachable: u64,
) -> (Vec<String>, Vec<SharedLine>) {
    let mut out = Vec::new();
    for (_, m) in lines {
        let share = percent(m.retained_bytes, reachable);
        if share >= 50.0 {
            out.push(format!(
                "{} retains {:.1}% of the reachable heap ({} in {} entries).",
                m.owner,
                share,
                human_bytes(m.retained_bytes),
                m.entries
            ));
        }
        if m.slots >= 64 && m.load < 0.125 && m.table_bytes > 4 * m.entries_retained_bytes.max(1) {
            out.push(format!(
                "{}: its table takes {} for {} entries (load {:.1}%); Go maps never shrink, so re-create the map to free it.",
                m.owner,
                human_bytes(m.table_bytes),
                m.entries,
                m.load * 100.0
            ));
        }
        if m.tombstones >= 64 && m.tombstones > m.entries {
            out.push(format!(
                "{}: {} deleted slots (tombstones) against {} entries slow lookups and keep the table large.",
                m.owner, m.tombstones, m.entries
            ));
        }
    }
    let shared = shared_values(input, lines, inner_names);
    for sh in &shared {
        let what = format!(
            "{} values ({} objects, {})",
            sh.values,
            sh.objects,
            human_bytes(sh.bytes)
        );
        out.push(match &sh.owners[..] {
            [x] => format!(
                "{what} are shared by several entries of {x}: no single entry retains them."
            ),
            [x, y] if sh.outside => format!(
                "{what} held by entries of {x} are also held by {y}: {x} does not retain them alone."
            ),
            [x, y] => format!(
                "{what} are shared between entries of {x} and {y}: neither map alone retains them."
            ),
            _ => continue,
        });
    }
    (out, shared)
}

/// Values that map entries point to but no single entry retains, grouped by who shares them:
/// several entries of one map, entries of two maps, or a map's entries and something outside
/// every map (named by a path that avoids map entries).
fn shared_values(
    input: &MapsInput,
    lines: &[(usize, MapLine)],
    inner_names: &HashMap<usize, String>,
) -> Vec<SharedLine> {
    use rayon::prelude::*;
    let a = input.view.a;
    // A sync.Map's two maps share their *entry values by design.
    let internal: std::collections::HashSet<u32> = (a.maps.sync_maps.iter())
        .flat_map(|s| s.internal.iter().copied())
        .collect();
    // Entries are read on every core, keeping what an entry points to but does not dominate,
    // in entry order.
    let entries = a.maps.entries.len();
    let not_dominated: Vec<Vec<(u32, u32)>> = crate::graph::pieces(0..entries, KEY_CHUNK)
        .into_par_iter()
        .map(|piece| {
            let mut out = Vec::new();
            for i in piece {
                // Successors' dominators are read at random: ask ahead.
                if i + PREFETCH_AHEAD < entries {
                    let ahead = a.graph.entry_node(i + PREFETCH_AHEAD);
                    for &t in a.graph.graph.successors(ahead) {
                        a.doms.prefetch(t);
                    }
                }
                let map = a.maps.map_index_of(i);
                if internal.contains(&map) {
                    continue;
                }
                let node = a.graph.entry_node(i);
                for &t in a.graph.graph.successors(node) {
                    // What the entry alone dominates is not shared.
                    if a.doms.idom(t) != Some(node) {
                        out.push((t, map));
                    }
                }
            }
            out
        })
        .collect();
    const OUTSIDE: u32 = u32::MAX;
    // Per value: the first map holding it, another map holding it, how many entries do.
    let mut holders: HashMap<u32, (u32, u32, u32)> = HashMap::new();
    for &(t, map) in not_dominated.iter().flatten() {
        let h = holders.entry(t).or_insert((map, OUTSIDE, 0));
        h.2 += 1;
        if map != h.0 && h.1 == OUTSIDE {
            h.1 = map;
        }
    }
    let mut groups: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
    for (t, (m1, m2, n)) in holders {
        let key = match (m2, n) {
            (OUTSIDE, 1) => (m1, OUTSIDE),
            (OUTSIDE, _) => (m1, m1),
            _ => (m1.min(m2), m1.max(m2)),
        };
        groups.entry(key).or_default().push(t);
    }
    if groups.is_empty() {
        return Vec::new();
    }
    // In id order, so that the holder named is the same from run to run.
    let mut groups: Vec<((u32, u32), Vec<u32>)> = groups.into_iter().collect();
    for (_, ts) in &mut groups {
        ts.sort_unstable();
    }
    groups.sort();
    let all: Vec<u32> = groups
        .iter()
        .flat_map(|(_, ts)| ts.iter().copied())
        .collect();
    let counts = input.view.retained_counts(&all);
    let name_of = |mi: u32| {
        lines
            .iter()
            .find(|(i, _)| *i == mi as usize)
            .map(|(_, l)| l.owner.clone())
            .or_else(|| inner_names.get(&(mi as usize)).cloned())
            .unwrap_or_else(|| format!("map @ {}", a.maps.maps[mi as usize].addr))
    };
    let mut namer = Namer::new(input.view, input.dwarf, input.mem);
    if let Some((symbols, bias, exe)) = input.code {
        namer = namer.with_code(symbols, bias, exe);
    }
    let mut at = 0;
    let mut out = Vec::new();
    for ((x, y), ts) in groups {
        let objects: u64 = counts[at..at + ts.len()].iter().sum();
        at += ts.len();
        let mut owners = vec![name_of(x)];
        if y == OUTSIDE {
            let path = input.view.path_avoiding_entries(ts[0]);
            // The holder, not the element of it: `main.recent`, not `main.recent[3]`.
            let e = namer.expression(&path);
            let e = match e.rfind('[') {
                Some(i) if e.ends_with(']') && e[i + 1..e.len() - 1].parse::<u64>().is_ok() => {
                    e[..i].to_string()
                }
                _ => e,
            };
            owners.push(if e.is_empty() {
                "another owner".to_string()
            } else {
                e
            });
        } else if y != x {
            owners.push(name_of(y));
        }
        out.push(SharedLine {
            owners,
            outside: y == OUTSIDE,
            values: ts.len() as u64,
            objects,
            bytes: ts.iter().map(|&t| a.retained.get(t)).sum(),
        });
    }
    out
}
