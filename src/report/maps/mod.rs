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

mod findings;
mod lines;
mod syncmaps;

use findings::*;
use lines::*;
use syncmaps::*;

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
    /// Group the keys of a map whose owner is listed as that guide's groups are (for `diff`).
    pub guides: Option<std::sync::Arc<Guides>>,
}

impl MapsOptions {
    /// The guide for the map that `owner` names, if any.
    pub fn guide_for(&self, owner: &str) -> Option<&[Group]> {
        Some(self.guides.as_ref()?.get(owner)?.as_slice())
    }
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
            guides: None,
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
    /// The label as raw key bytes, unredacted (never written out).
    #[serde(skip)]
    pub label: Vec<u8>,
    /// Delimiters the label spans.
    #[serde(skip)]
    pub depth: usize,
    /// Objects the group's entries retain, when counted (for profiles; not written out).
    #[serde(skip)]
    pub retained_objects: u64,
}

impl KeyGroup {
    /// The groups as a guide for grouping the same map in another core (see
    /// [`Grouper::follow`]).
    pub fn guide(groups: &[KeyGroup]) -> Vec<Group> {
        (groups.iter())
            .map(|g| Group {
                label: g.label.clone(),
                depth: g.depth,
                acc: super::keygroups::Acc::default(),
                children: KeyGroup::guide(&g.children),
            })
            .collect()
    }
}

/// Key groups of maps in another core, by owner: each such map's keys are grouped as its
/// counterpart's were.
pub type Guides = HashMap<String, Vec<Group>>;

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
    /// Objects it keeps alive, when counted (for profiles; not written out).
    #[serde(skip)]
    pub retained_objects: u64,
    /// The root its owner path starts from (a global, a goroutine's frame); empty when not
    /// known (for profiles; not written out).
    #[serde(skip)]
    pub root: String,
    /// The map lies inside another listed map's entries, or stands for maps that do (a
    /// roll-up row): its bytes are in that map's too (not written out).
    #[serde(skip)]
    pub inside: bool,
    /// Share of the reachable heap the map retains, percent.
    pub percent_of_heap: f64,
    /// Sum of what each entry alone keeps alive.
    pub entries_retained_bytes: u64,
    /// The objects in it, when counted (for profiles; not written out).
    #[serde(skip)]
    pub entries_retained_objects: u64,
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
    /// Objects reachable from roots (for profiles; not written out).
    #[serde(skip)]
    pub reachable_objects: u64,
    /// Objects allocated but unreachable (for profiles; not written out).
    #[serde(skip)]
    pub unreachable_objects: u64,
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
    /// Objects each graph node retains (`HeapView::subtree_counts`), to count per map and
    /// key group; `None`: not counted.
    pub objects: Option<&'a [u32]>,
}

impl<'a> MapsInput<'a> {
    /// The input of an opened core and a view of its analysed heap.
    pub fn of(p: &'a crate::process::Process, view: &'a HeapView<'a>) -> MapsInput<'a> {
        MapsInput {
            view,
            dwarf: &p.dwarf,
            mem: &p.mem,
            go_version: p.exe.buildinfo.release(),
            code: Some((&p.symbols, p.bias)),
            objects: None,
        }
    }

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
    // One function: it is the report's outline (reachability, a line per map, roll-ups,
    // sync.Maps, pools, findings, in that order), each part reading what the parts before
    // made; the work of each part is in `lines`, `syncmaps` and `findings`.
    pub fn gather(input: &MapsInput, opts: &MapsOptions) -> MapsReport {
        let redactor = Redactor::new(&opts.delimiters, opts.redact_keep);
        MapsReport::gather_with(input, opts, &redactor)
    }

    /// [`MapsReport::gather`] with keys redacted (when asked) by `redactor`: two reports made
    /// with one redactor name a key alike.
    pub fn gather_with(input: &MapsInput, opts: &MapsOptions, redactor: &Redactor) -> MapsReport {
        let v = input.view;
        let a = v.a;
        let reach = a.reachability();
        let namer = input.namer(opts.redact.then_some(redactor));
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
        let roots: HashMap<usize, String> = (shown.iter())
            .map(|&mi| (mi, root_of(v, &parents, &a.maps.maps[mi])))
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
                inner_lines.insert(mi, map_line(input, &inner, owner, redactor, m));
            } else {
                lines.push((mi, map_line(input, opts, owner, redactor, m)));
            }
        }
        // sync.Maps follow, numbered after the Go maps, then the roll-ups.
        let first_sync = a.maps.maps.len();
        for (k, (s, owner)) in a.maps.sync_maps.iter().zip(sync_owners).enumerate() {
            let line = sync_line(input, opts, owner, redactor, s);
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
            let keys = group_maps(input, opts, redactor, opts.guide_for(&owner), &decoded);
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
        for (mi, l) in &mut lines {
            l.inside = *mi >= first_rollup
                || (*mi < first_sync && {
                    let h = node(*mi);
                    (v.dominator_chain(h).iter()).any(|n| *n != h && headers.contains(n))
                });
            l.root = match *mi {
                k if k < first_sync => roots.get(&k).cloned().unwrap_or_default(),
                _ => String::new(),
            };
        }
        let maps_retained_bytes = (lines.iter())
            .filter(|(_, l)| !l.inside)
            .map(|(_, l)| l.retained_bytes)
            .sum();
        let (mut findings, shared) = findings(
            input,
            &lines,
            &inner_names,
            reach.reachable_bytes,
            opts.redact.then_some(redactor),
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
                reachable_objects: reach.reachable_objects,
                unreachable_objects: reach.unreachable_objects,
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
        let mut out = super::led_table(self.summary(), &mut t);
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
