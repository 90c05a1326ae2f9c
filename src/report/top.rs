//! `coreheap top`: the objects that retain the most, with the path from a root to each.

use rayon::prelude::*;
use serde::Serialize;

use super::heapview::{HeapView, Hop, Namer};
use super::{human_bytes, Envelope};
use crate::analysis::Reachability;
use crate::heap::ObjId;

/// One large retainer.
#[derive(Debug, Serialize)]
pub struct Retainer {
    /// Object address.
    pub address: String,
    /// Type name.
    pub type_name: String,
    /// What holds it, as Go code reaches it from a root (`main.shards`,
    /// `goroutine 11 main.worker: m`).
    pub owner: String,
    /// Its own bytes.
    pub shallow_bytes: u64,
    /// Bytes it keeps alive (its dominator subtree).
    pub retained_bytes: u64,
    /// Objects it keeps alive, itself included.
    pub retained_objects: u64,
    /// Share of the reachable heap, percent.
    pub percent_of_reachable: f64,
    /// Shortest path from a root, root first.
    pub path: Vec<Hop>,
}

/// The `top` report.
#[derive(Debug, Serialize)]
pub struct TopReport {
    /// Go release.
    pub go_version: String,
    /// Heap totals.
    pub heap: Reachability,
    /// Threshold used, percent of reachable bytes.
    pub threshold_percent: f64,
    /// Retainers at or above the threshold, largest first.
    pub retainers: Vec<Retainer>,
    /// Problems that did not stop the analysis.
    pub warnings: Vec<String>,
}

/// The objects `top` lists and the shortest paths from the roots to them.
pub struct Chosen {
    top: Vec<u32>,
    paths: Vec<Vec<u32>>,
}

impl Chosen {
    /// The path from a root to each object listed (graph nodes, root first).
    pub fn paths(&self) -> &[Vec<u32>] {
        &self.paths
    }
}

impl TopReport {
    /// The objects at the top of the dominator tree (directly under a root or the super-root)
    /// that retain at least `threshold` percent of the reachable heap, and their paths.
    pub fn choose(v: &HeapView, threshold: f64) -> Chosen {
        let a = v.a;
        let heap = a.reachability();
        let min = (heap.reachable_bytes as f64 * threshold / 100.0).ceil() as u64;
        // In pieces of ids on every core, in id order.
        let top: Vec<u32> = crate::graph::pieces(0..a.graph.objects as usize, 1 << 16)
            .into_par_iter()
            .flat_map_iter(|ids| {
                (ids.start as u32..ids.end as u32)
                    .filter(|&o| a.doms.is_reachable(o) && a.retained.get(o) >= min.max(1))
                    .filter(|&o| {
                        a.doms.idom(o).is_some_and(|d| {
                            a.graph.as_root(d).is_some() || d == a.graph.super_root()
                        })
                    })
            })
            .collect();
        let parents = v.bfs_parents(&top);
        let paths = top.iter().map(|&o| v.path_to(&parents, o)).collect();
        Chosen { top, paths }
    }

    /// Lists the objects [`TopReport::choose`] chose (with `threshold`), typed along their
    /// paths.
    pub fn gather(namer: &Namer, go_version: &str, threshold: f64, chosen: Chosen) -> TopReport {
        let v = namer.view;
        let a = v.a;
        let heap = a.reachability();
        let Chosen { top, paths } = chosen;
        let counts = v.retained_counts(&top);
        let mut retainers: Vec<Retainer> = top
            .into_iter()
            .zip(counts)
            .zip(paths)
            .map(|((o, count), path)| Retainer {
                address: a.objects.addr(ObjId(o)).to_string(),
                type_name: v.type_name(ObjId(o)),
                owner: namer.expression(&path),
                shallow_bytes: a.shallow(o),
                retained_bytes: a.retained.get(o),
                retained_objects: count,
                percent_of_reachable: percent(a.retained.get(o), heap.reachable_bytes),
                path: path.into_iter().map(|n| v.hop(n)).collect(),
            })
            .collect();
        retainers.sort_by_key(|r| std::cmp::Reverse(r.retained_bytes));
        TopReport {
            go_version: go_version.to_string(),
            heap,
            threshold_percent: threshold,
            retainers,
            warnings: v.a.warnings.clone(),
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&Envelope::new("coreheap/top/v1", self))
    }

    /// The sentence above the table.
    fn summary(&self) -> String {
        format!(
            "{} reachable in {} objects; {} unreachable. Retainers of at least {}% of the reachable heap:",
            human_bytes(self.heap.reachable_bytes),
            self.heap.reachable_objects,
            human_bytes(self.heap.unreachable_bytes),
            self.threshold_percent
        )
    }

    /// A table for people, `width` columns wide; addresses are never wrapped.
    pub fn to_table(&self, width: u16) -> String {
        let mut out = format!("{}\n", self.summary());
        let mut t = super::new_table(width);
        t.set_header(vec![
            "retained", "%", "objects", "shallow", "type", "address", "held by",
        ]);
        for r in &self.retainers {
            t.add_row(vec![
                human_bytes(r.retained_bytes),
                format!("{:.1}", r.percent_of_reachable),
                r.retained_objects.to_string(),
                human_bytes(r.shallow_bytes),
                r.type_name.clone(),
                r.address.clone(),
                r.owner.clone(),
            ]);
        }
        super::keep_whole(&mut t, 5);
        if self.retainers.is_empty() {
            out.push_str("(none)\n");
        } else {
            out.push_str(&t.to_string());
            out.push('\n');
        }
        out.push_str(&super::warning_lines(&self.warnings));
        out
    }

    /// Markdown for a ticket.
    pub fn to_markdown(&self, command: &str) -> String {
        use super::{md_code, md_text};
        let mut s = format!("## Largest retainers\n\n{}\n\n", md_text(&self.summary()));
        s.push_str("| retained | % | objects | shallow | type | address | held by |\n");
        s.push_str("|---:|---:|---:|---:|---|---|---|\n");
        for r in &self.retainers {
            s.push_str(&format!(
                "| {} | {:.1} | {} | {} | {} | {} | {} |\n",
                human_bytes(r.retained_bytes),
                r.percent_of_reachable,
                r.retained_objects,
                human_bytes(r.shallow_bytes),
                md_code(&r.type_name),
                md_code(&r.address),
                md_code(&r.owner)
            ));
        }
        s.push_str(&super::markdown_notes(&[], &self.warnings));
        s.push_str(&super::markdown_footer(command, &self.go_version, false));
        s
    }
}

/// `part` as a percentage of `whole`, one decimal.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}
