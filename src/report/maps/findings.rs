//! Findings: the sentences under the maps table, and values that several maps hold.

use super::*;

/// One-line findings: dominant maps, oversized tables, tombstones, shared values.
pub(super) fn findings(
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
// One function: one pass over the shared values' holders builds the groups and their names
// together; splitting it would pass the half-built groups between the halves.
pub(super) fn shared_values(
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
