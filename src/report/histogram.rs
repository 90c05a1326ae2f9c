//! `coreheap histogram`: objects per type with their shallow and retained bytes.

use std::collections::HashMap;

use serde::Serialize;

use super::heapview::{HeapView, TypeKey};
use super::{human_bytes, Envelope};
use crate::analysis::Reachability;
use crate::heap::ObjId;

/// One type's line.
#[derive(Debug, Serialize)]
pub struct TypeLine {
    /// Type name (or `<unknown, N B>` for untyped objects of size class N).
    pub type_name: String,
    /// Reachable objects.
    pub count: u64,
    /// Their bytes.
    pub shallow_bytes: u64,
    /// Bytes the type's objects keep alive together (nested objects of the type counted once).
    pub retained_bytes: u64,
}

/// How to sort the histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Object count.
    Count,
    /// Shallow bytes.
    Shallow,
    /// Retained bytes.
    Retained,
}

/// The `histogram` report.
#[derive(Debug, Serialize)]
pub struct HistogramReport {
    /// Go release.
    pub go_version: String,
    /// Heap totals.
    pub heap: Reachability,
    /// Lines, sorted.
    pub types: Vec<TypeLine>,
    /// Problems that did not stop the analysis.
    pub warnings: Vec<String>,
}

impl HistogramReport {
    /// Counts reachable objects per type.
    pub fn gather(v: &HeapView, go_version: &str, sort: SortBy) -> HistogramReport {
        let a = v.a;
        let n = a.graph.objects;
        // Lines by name, in the order their first objects come. A name is made once per
        // type key (types are interned), not once per object.
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut by_key: HashMap<TypeKey, u32, foldhash::fast::RandomState> = HashMap::default();
        let mut lines: Vec<TypeLine> = Vec::new();
        let mut line_of = vec![u32::MAX; n as usize];
        for o in 0..n {
            if !a.doms.is_reachable(o) {
                continue;
            }
            let size = a.objects.size(ObjId(o));
            let key = v.type_key_sized(ObjId(o), size);
            let i = *by_key.entry(key).or_insert_with(|| {
                let name = v.type_name(ObjId(o));
                *index.entry(name.clone()).or_insert_with(|| {
                    lines.push(TypeLine {
                        type_name: name,
                        count: 0,
                        shallow_bytes: 0,
                        retained_bytes: 0,
                    });
                    lines.len() - 1
                }) as u32
            }) as usize;
            line_of[o as usize] = i as u32;
            lines[i].count += 1;
            lines[i].shallow_bytes += size;
        }
        // Retained per type: an object counts unless a dominator-tree ancestor has its type.
        let (offsets, children) = a.doms.dominator_tree_children();
        let mut active = vec![0u32; lines.len()];
        let root = a.graph.super_root();
        let line = |node: u32| match node < n {
            true => line_of[node as usize],
            false => u32::MAX,
        };
        let kids = |node: u32| {
            let (s, e) = (offsets[node as usize], offsets[node as usize + 1]);
            &children[s as usize..e as usize]
        };
        // Depth first, each node with children entered and left (`true`); a node without
        // children is counted where its parent lists it, and never goes on the stack.
        let mut stack: Vec<(u32, bool)> = vec![(root, false)];
        while let Some((node, leaving)) = stack.pop() {
            let l = line(node);
            if leaving {
                if l != u32::MAX {
                    active[l as usize] -= 1;
                }
                continue;
            }
            if l != u32::MAX {
                if active[l as usize] == 0 {
                    lines[l as usize].retained_bytes += a.retained.get(node);
                }
                active[l as usize] += 1;
            }
            stack.push((node, true));
            for &c in kids(node) {
                if !kids(c).is_empty() {
                    stack.push((c, false));
                    continue;
                }
                let lc = line(c);
                if lc != u32::MAX && active[lc as usize] == 0 {
                    lines[lc as usize].retained_bytes += a.retained.get(c);
                }
            }
        }
        match sort {
            SortBy::Count => lines.sort_by_key(|l| std::cmp::Reverse(l.count)),
            SortBy::Shallow => lines.sort_by_key(|l| std::cmp::Reverse(l.shallow_bytes)),
            SortBy::Retained => lines.sort_by_key(|l| std::cmp::Reverse(l.retained_bytes)),
        }
        HistogramReport {
            go_version: go_version.to_string(),
            heap: a.reachability(),
            types: lines,
            warnings: a.warnings.clone(),
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&Envelope::new("coreheap/histogram/v1", self))
    }

    /// A table for people, `width` columns wide, at most `limit` lines (0: all).
    pub fn to_table(&self, limit: usize, width: u16) -> String {
        let mut t = super::new_table(width);
        t.set_header(vec!["count", "shallow", "retained", "type"]);
        let take = self.shown(limit);
        for l in &self.types[..take] {
            t.add_row(vec![
                l.count.to_string(),
                human_bytes(l.shallow_bytes),
                human_bytes(l.retained_bytes),
                l.type_name.clone(),
            ]);
        }
        let mut s = t.to_string();
        if take < self.types.len() {
            s.push_str(&format!("\n({} more types)", self.types.len() - take));
        }
        s.push('\n');
        s.push_str(&super::warning_lines(&self.warnings));
        s.trim_end().to_string()
    }

    /// Lines shown for a limit (0: all).
    fn shown(&self, limit: usize) -> usize {
        if limit == 0 {
            self.types.len()
        } else {
            limit.min(self.types.len())
        }
    }

    /// Markdown for a ticket, at most `limit` lines (0: all).
    pub fn to_markdown(&self, limit: usize, command: &str) -> String {
        use super::md_code;
        let mut s = String::from(
            "## Heap by type\n\n| count | shallow | retained | type |\n|---:|---:|---:|---|\n",
        );
        let take = self.shown(limit);
        for l in &self.types[..take] {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                l.count,
                human_bytes(l.shallow_bytes),
                human_bytes(l.retained_bytes),
                md_code(&l.type_name)
            ));
        }
        if take < self.types.len() {
            s.push_str(&format!("\n{} more types.\n", self.types.len() - take));
        }
        s.push_str(&super::markdown_notes(&[], &self.warnings));
        s.push_str(&super::markdown_footer(command, &self.go_version, false));
        s
    }
}
