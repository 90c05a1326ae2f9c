//! `coreheap maps`: maps ranked by the bytes they retain, who owns them, and which key groups
//! hold the bytes.

use std::collections::HashMap;

use serde::Serialize;

use super::heapview::{HeapView, Namer, Parents};
use super::keygroups::{
    Group, Grouper, Grouping, Keys, Sizes, StringKeys, KEY_CHUNK, PREFETCH_AHEAD,
};
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
    /// Delimiter count for prefixes; `None`: the prefix tree, opened where the bytes are.
    pub depth: Option<usize>,
    /// Delimiter characters.
    pub delimiters: String,
    /// Characters of a key shown.
    pub key_width: usize,
    /// Replace keys by their fields' classes and keyed hashes.
    pub redact: bool,
    /// With `redact`: fields at the start of each key kept verbatim.
    pub redact_keep: usize,
    /// List the maps inside other maps' entries one by one under their roll-up row.
    pub nested: bool,
    /// Entries that retain the most, listed per map and per key group.
    pub entries: usize,
    /// Show every map in the table (else maps under 0.1% of the heap are folded into one line).
    pub all: bool,
}

impl Default for MapsOptions {
    fn default() -> Self {
        MapsOptions {
            top: 20,
            min_bytes: 0,
            groups: 5,
            group_by: GroupBy::Prefix,
            depth: None,
            delimiters: keys::DEFAULT_DELIMITERS.to_string(),
            key_width: 40,
            redact: false,
            redact_keep: 0,
            nested: false,
            entries: 0,
            all: false,
        }
    }
}

/// A group of keys.
#[derive(Debug, Clone, Serialize)]
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
    /// The group opened: its children, largest first (empty when it was not opened).
    pub children: Vec<KeyGroup>,
    /// The group's entries that retain the most (`--entries`), largest first.
    pub top_entries: Vec<TopEntry>,
}

/// One entry of a map, among those that retain the most.
#[derive(Debug, Clone, Serialize)]
pub struct TopEntry {
    /// Its key, as Go prints it (redacted when asked).
    pub key: String,
    /// Bytes the entry keeps alive: its key's and value's objects that nothing else holds.
    pub retained_bytes: u64,
    /// The value's type: the object it points to, or the map's value type.
    pub value_type: String,
    /// The object the value points to, or the entry's slot: give it to `coreheap path`.
    pub address: String,
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
    /// Share of the reachable heap the map retains, percent.
    pub percent_of_heap: f64,
    /// Sum of what each entry alone keeps alive.
    pub entries_retained_bytes: u64,
    /// Key groups, largest first.
    pub groups: Vec<KeyGroup>,
    /// The entries that retain the most (`--entries`), largest first.
    pub top_entries: Vec<TopEntry>,
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
    /// The table lists every map (`--all`).
    #[serde(skip)]
    pub all: bool,
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
    /// The executable's symbols and load bias (to name closures), when at hand.
    pub code: Option<(&'a crate::exe::Symbols, u64)>,
}

impl MapsInput<'_> {
    /// A namer for paths in this heap, keys redacted when a redactor is given.
    pub fn namer<'r>(&'r self, redactor: Option<&'r Redactor>) -> Namer<'r> {
        let mut namer = Namer::new(self.view, self.dwarf, self.mem).with_redactor(redactor);
        if let Some((symbols, bias)) = self.code {
            namer = namer.with_code(symbols, bias);
        }
        namer
    }
}

impl MapsReport {
    /// Ranks every decoded map.
    pub fn gather(input: &MapsInput, opts: &MapsOptions) -> MapsReport {
        let v = input.view;
        let a = v.a;
        let reach = a.reachability();
        let redactor = Redactor::new(&opts.delimiters, opts.redact_keep);
        let namer = input.namer(opts.redact.then_some(&redactor));
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
                // Only listed with --nested; the row groups their keys together.
                let inner = match opts.nested {
                    true => opts.clone(),
                    false => MapsOptions {
                        groups: 0,
                        entries: 0,
                        ..opts.clone()
                    },
                };
                inner_lines.insert(mi, map_line(input, &inner, owner, &redactor, m));
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
            let decoded: Vec<&DecodedMap> = members.iter().map(|&mi| &a.maps.maps[mi]).collect();
            let keys = group_maps(input, opts, &redactor, &decoded);
            lines.push((first_rollup + k, rollup_line(owner, inner, keys, opts)));
        }
        lines.sort_by_key(|(_, l)| std::cmp::Reverse(l.retained_bytes));
        for (_, l) in &mut lines {
            l.percent_of_heap = percent(l.retained_bytes, reach.reachable_bytes);
            for n in &mut l.nested {
                n.percent_of_heap = percent(n.retained_bytes, reach.reachable_bytes);
            }
        }
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
        let (mut findings, shared) = findings(
            input,
            &lines,
            &inner_names,
            reach.reachable_bytes,
            opts.redact.then_some(&redactor),
        );
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
            all: opts.all,
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&Envelope::new("coreheap/maps/v1", self))
    }

    /// A table for people, `width` columns wide: one row per map, its key groups below it
    /// (as a tree), then its largest entries; maps under 0.1% of the heap folded into one line
    /// unless every map was asked for.
    pub fn to_table(&self, width: u16) -> String {
        let mut t = super::new_table(width);
        t.set_header(vec![
            "retained", "share", "entries", "table", "load", "deleted", "map",
        ]);
        let (shown, folded) = self.folded();
        for m in shown {
            t.add_row(vec![
                human_bytes(m.retained_bytes),
                format!("{:.1}%", m.percent_of_heap),
                m.entries.to_string(),
                human_bytes(m.table_bytes),
                format!("{:.0}%", m.load * 100.0),
                m.tombstones.to_string(),
                {
                    // A map in a frame with no variable is named by its type already.
                    let ty = format!("map[{}]{}", m.key_type, m.value_type);
                    let ty = if m.owner.ends_with(&ty) {
                        String::new()
                    } else {
                        ty
                    };
                    format!("{}{}  {ty}", m.owner, shared_note(m))
                        .trim_end()
                        .to_string()
                },
            ]);
            let mut rows = Vec::new();
            group_rows(&m.groups, "", 1, &mut rows);
            entry_rows(&m.top_entries, 1, &mut rows);
            for (bytes, share, entries, text) in rows {
                t.add_row(vec![
                    bytes,
                    share,
                    entries,
                    String::new(),
                    String::new(),
                    String::new(),
                    text,
                ]);
            }
        }
        for c in t.column_iter_mut().skip(1) {
            c.set_padding((0, 1));
        }
        let mut out = self.summary();
        out.push('\n');
        out.push_str(&t.to_string());
        if let Some((n, bytes)) = folded {
            out.push_str(&format!(
                "\n… {n} more maps, each under 0.1% of the reachable heap ({} together; --all lists them)",
                human_bytes(bytes)
            ));
        }
        out.push_str("\nshare: of the reachable heap for a map, of the map's entries for a key group (· per level); deleted: slots of deleted entries (tombstones).");
        for f in &self.findings {
            out.push_str(&format!("\n• {f}"));
        }
        out.push('\n');
        out.push_str(super::warning_lines(&self.warnings).trim_end());
        out.trim_end().to_string()
    }

    /// The maps a table shows, and how many it folds with their bytes.
    fn folded(&self) -> (&[MapLine], Option<(usize, u64)>) {
        let min = self.heap.reachable_bytes / 1000;
        let cut = if self.all {
            self.maps.len()
        } else {
            (self.maps.iter())
                .position(|m| m.retained_bytes < min.max(1))
                .unwrap_or(self.maps.len())
        };
        let rest = &self.maps[cut..];
        let folded =
            (!rest.is_empty()).then(|| (rest.len(), rest.iter().map(|m| m.retained_bytes).sum()));
        (&self.maps[..cut], folded)
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

    /// Markdown for a ticket: summary, table, key groups and largest entries of the largest
    /// maps, findings, warnings, and how it was made.
    pub fn to_markdown(&self, command: &str) -> String {
        use super::{md_code, md_text};
        let mut s = format!(
            "## What holds the memory\n\n{}\n\n",
            md_text(&self.summary())
        );
        s.push_str("| retained | share of heap | entries | table | load | tombstones | map | key → value |\n");
        s.push_str("|---:|---:|---:|---:|---:|---:|---|---|\n");
        let (shown, folded) = self.folded();
        for m in shown {
            s.push_str(&format!(
                "| {} | {:.1}% | {} | {} | {:.0}% | {} | {}{} | {} → {} |\n",
                human_bytes(m.retained_bytes),
                m.percent_of_heap,
                m.entries,
                human_bytes(m.table_bytes),
                m.load * 100.0,
                m.tombstones,
                md_code(&m.owner),
                md_text(&shared_note(m)),
                md_code(&m.key_type),
                md_code(&m.value_type)
            ));
        }
        if let Some((n, bytes)) = folded {
            s.push_str(&format!(
                "\n{n} more maps, each under 0.1% of the reachable heap, hold {} together.\n",
                human_bytes(bytes)
            ));
        }
        for m in shown.iter().filter(|m| !m.groups.is_empty()).take(5) {
            s.push_str(&format!("\n### Keys of {}\n\n", md_code(&m.owner)));
            s.push_str(
                "| group | entries | retained | share of map | sample key |\n|---|---:|---:|---:|---|\n",
            );
            let mut rows = Vec::new();
            group_rows(&m.groups, "", 0, &mut rows);
            for (bytes, share, entries, text) in rows {
                let (label, sample) = text.split_once("  e.g. ").unwrap_or((&text, ""));
                let bare = label.trim_start_matches("· ");
                let depth = (label.len() - bare.len()) / "· ".len();
                s.push_str(&format!(
                    "| {}{} | {entries} | {bytes} | {share} | {} |\n",
                    "&nbsp;&nbsp;".repeat(depth),
                    md_code(bare),
                    md_code(sample)
                ));
            }
            if !m.top_entries.is_empty() {
                s.push_str(
                    "\n| largest entries | retained | value | address |\n|---|---:|---|---|\n",
                );
                for e in &m.top_entries {
                    s.push_str(&format!(
                        "| {} | {} | {} | {} |\n",
                        md_code(&e.key),
                        human_bytes(e.retained_bytes),
                        md_code(&e.value_type),
                        md_code(&e.address)
                    ));
                }
            }
        }
        s.push_str(&super::markdown_notes(&self.findings, &self.warnings));
        s.push_str(&super::markdown_footer(
            command,
            &self.go_version,
            self.redacted,
        ));
        s
    }
}

/// Table rows (retained, share, entries, text) of key groups and their children, indented by
/// level; a child with its parent's prefix holds the keys that go no deeper.
fn group_rows(
    groups: &[KeyGroup],
    parent: &str,
    level: usize,
    rows: &mut Vec<(String, String, String, String)>,
) {
    let pad = "· ".repeat(level);
    for g in groups {
        let label = if !parent.is_empty() && g.prefix == parent {
            format!("{} (no deeper prefix)", display_prefix(&g.prefix))
        } else {
            display_prefix(&g.prefix).to_string()
        };
        // The sample without the prefix shown beside it.
        let sample = match g
            .sample_key
            .strip_prefix('"')
            .map(|k| k.strip_prefix(g.prefix.as_str()))
        {
            Some(Some(rest)) if !g.prefix.is_empty() => format!("\"…{rest}"),
            _ => g.sample_key.clone(),
        };
        rows.push((
            human_bytes(g.retained_bytes),
            format!("{:.1}%", g.percent_of_map),
            g.entries.to_string(),
            format!("{pad}{label}  e.g. {sample}"),
        ));
        group_rows(&g.children, &g.prefix, level + 1, rows);
    }
}

/// Table rows of a map's largest entries.
fn entry_rows(
    entries: &[TopEntry],
    level: usize,
    rows: &mut Vec<(String, String, String, String)>,
) {
    let pad = "→ ".repeat(level);
    for e in entries {
        rows.push((
            human_bytes(e.retained_bytes),
            String::new(),
            String::new(),
            format!("{pad}[{}] {} @ {}", e.key, e.value_type, e.address),
        ));
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
    let a = input.view.a;
    let n = a.maps.entries_of(m).len() as u64;
    let table_bytes: u64 = m.storage.iter().map(|o| a.shallow(o.0)).sum();
    let (groups, top_entries, entries_retained) = group_maps(input, opts, redactor, &[m]);
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
        percent_of_heap: 0.0,
        entries_retained_bytes: entries_retained,
        groups,
        top_entries,
        inner_maps: 0,
        nested: Vec::new(),
    }
}

/// A DWARF type's name as `%T` prints it.
fn type_name(input: &MapsInput, t: crate::dwarf::TypeRef) -> String {
    (input.dwarf.info(t))
        .map(|i| keys::short_type_name(&i.name))
        .unwrap_or_default()
}

/// The key groups and largest entries of the entries of `maps` together (one map, or the
/// maps a roll-up row stands for, which share their key and value types), and what the
/// entries retain in all.
fn group_maps(
    input: &MapsInput,
    opts: &MapsOptions,
    redactor: &Redactor,
    maps: &[&DecodedMap],
) -> (Vec<KeyGroup>, Vec<TopEntry>, u64) {
    let a = input.view.a;
    let mem = input.mem;
    let Some(first) = maps.first() else {
        return (Vec::new(), Vec::new(), 0);
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
    let listed: Vec<u64>;
    let sizes = match maps {
        [m] => Sizes::Graph {
            retained: &a.retained,
            first_node: a.graph.entry_node(m.first_entry as usize),
        },
        _ => {
            listed = (0..maps.len())
                .flat_map(|k| {
                    let first = maps[k].first_entry as usize;
                    (0..lists[k].len()).map(move |j| a.graph.entry_node(first + j))
                })
                .map(|node| a.retained.get(node))
                .collect();
            Sizes::Listed(&listed)
        }
    };
    let entries_retained: u64 = (0..n).map(|i| sizes.get(i)).sum();
    if opts.groups == 0 && opts.entries == 0 {
        return (Vec::new(), Vec::new(), entries_retained);
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
        grouped(opts, redactor, keys, sizes, true, entries_retained, &entry)
    } else {
        let keys = Keys::Rendered {
            text: &render,
            count: n,
        };
        grouped(opts, redactor, keys, sizes, false, entries_retained, &entry)
    };
    (groups, top, entries_retained)
}

/// Entries per slot, to three decimals.
fn load(entries: u64, slots: u64) -> f64 {
    if slots == 0 {
        0.0
    } else {
        (entries as f64 / slots as f64 * 1000.0).round() / 1000.0
    }
}

/// Entries as shown, from (retained bytes, entry index).
type EntriesOf<'x> = dyn Fn(&[(u64, u32)]) -> Vec<TopEntry> + 'x;

/// A map's key groups and its entries that retain the most, as shown: labels and keys
/// quoted and cut, or redacted. `entry` gives an entry's value type and address.
fn grouped(
    opts: &MapsOptions,
    redactor: &Redactor,
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
    let (groups, top) = grouper.group(how);
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
        opts: &MapsOptions,
        label: &dyn Fn(&[u8]) -> String,
        key: &dyn Fn(u32) -> String,
        top: &EntriesOf,
    ) -> KeyGroup {
        KeyGroup {
            prefix: label(&g.label),
            entries: g.acc.entries,
            retained_bytes: g.acc.bytes,
            percent_of_map: percent(g.acc.bytes, total),
            sample_key: key(g.acc.first),
            children: (g.children.iter().take(opts.groups))
                .map(|c| shown(c, total, opts, label, key, top))
                .collect(),
            top_entries: top(&g.acc.top),
        }
    }
    let groups = (groups.iter().take(opts.groups))
        .map(|g| shown(g, entries_retained, opts, &label, &key, &top_entries))
        .collect();
    (groups, top_entries(&top))
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

/// One row for maps inside another map's entries: their count and totals, the key groups
/// and largest entries of all their entries together (`keys`, from [`group_maps`]), and
/// (when asked) each of them.
fn rollup_line(
    owner: String,
    inner: Vec<MapLine>,
    (groups, top_entries, entries_retained): (Vec<KeyGroup>, Vec<TopEntry>, u64),
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
        percent_of_heap: 0.0,
        entries_retained_bytes: entries_retained,
        groups,
        top_entries,
        inner_maps: inner.len() as u64,
        nested: if opts.nested { inner } else { Vec::new() },
    }
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
    let (groups, top_entries) = grouped(
        opts,
        redactor,
        keys,
        Sizes::Listed(&sizes),
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
        percent_of_heap: 0.0,
        entries_retained_bytes: entries_retained,
        groups,
        top_entries,
        inner_maps: 0,
        nested: Vec::new(),
    }
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
    redactor: Option<&Redactor>,
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
    let shared = shared_values(input, lines, inner_names, redactor);
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
    redactor: Option<&Redactor>,
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
    let namer = input.namer(redactor);
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
