//! `coreheap path`: how an object is reached from a root, and what dominates it.

use serde::Serialize;

use super::heapview::{HeapView, Hop, Namer};
use super::{human_bytes, Envelope};
use crate::memory::Addr;

/// The `path` report.
#[derive(Debug, Serialize)]
pub struct PathReport {
    /// The address asked about.
    pub address: String,
    /// The object as Go code would reach it from the root: `main.registry.accounts`, ….
    pub expression: String,
    /// How each hop of `path` is reached from the one before: the root's name with its field,
    /// `.field`, `[i]`, `[key]` (empty through a map's own structures).
    pub fields: Vec<String>,
    /// The object holding it.
    pub object: Hop,
    /// Shortest path from a root, root first, ending at the object.
    pub path: Vec<Hop>,
    /// Dominator chain, outermost first, ending at the object.
    pub dominators: Vec<Hop>,
    /// Problems that did not stop the analysis.
    pub warnings: Vec<String>,
}

/// Why there is no path.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// No live object holds the address.
    #[error("no live heap object holds address {0}: give an address inside an object of the Go heap (see coreheap top)")]
    NotAnObject(Addr),
    /// The object is live but no root reaches it.
    #[error("the object at {0} is allocated but no root reaches it")]
    Unreachable(Addr),
}

/// The object a `path` report is about and the shortest path to it from a root.
pub struct Chosen {
    addr: Addr,
    o: crate::heap::ObjId,
    /// Graph nodes from the root to the object.
    pub nodes: Vec<u32>,
}

impl PathReport {
    /// Finds the object holding `addr` and the shortest path to it.
    pub fn choose(v: &HeapView, addr: Addr) -> Result<Chosen, PathError> {
        let o = v.object_at(addr).ok_or(PathError::NotAnObject(addr))?;
        if !v.a.doms.is_reachable(o.0) {
            return Err(PathError::Unreachable(v.a.objects.addr(o)));
        }
        let parents = v.bfs_parents(&[o.0]);
        let nodes = v.path_to(&parents, o.0);
        Ok(Chosen { addr, o, nodes })
    }

    /// The path to the object [`PathReport::choose`] found, typed along it.
    pub fn gather(namer: &Namer, chosen: Chosen) -> Result<PathReport, PathError> {
        let v = namer.view;
        let Chosen { addr, o, nodes } = chosen;
        let fields = std::iter::once(String::new())
            .chain(nodes.windows(2).map(|p| namer.edge(p[0], p[1])))
            .collect();
        Ok(PathReport {
            address: addr.to_string(),
            expression: namer.expression(&nodes),
            fields,
            object: v.hop(o.0),
            path: nodes.iter().map(|&n| v.hop(n)).collect(),
            dominators: v
                .dominator_chain(o.0)
                .into_iter()
                .map(|n| v.hop(n))
                .collect(),
            warnings: v.a.warnings.clone(),
        })
    }

    /// The JSON document.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&Envelope::new("coreheap/path/v1", self))
    }

    /// Text for people.
    pub fn to_table(&self) -> String {
        let fmt = |h: &Hop| {
            format!(
                "{}{}  (shallow {}, retained {})",
                h.label,
                h.address
                    .as_deref()
                    .map(|a| format!(" @ {a}"))
                    .unwrap_or_default(),
                human_bytes(h.shallow_bytes),
                human_bytes(h.retained_bytes)
            )
        };
        let mut s = format!(
            "{} is inside {}\nreached as {}\n\nshortest path from a root:\n",
            self.address,
            fmt(&self.object),
            self.expression
        );
        for (i, h) in self.path.iter().enumerate() {
            let via = self.fields.get(i).map(String::as_str).unwrap_or("");
            if i == 0 {
                s.push_str(&format!("  {}\n", fmt(h)));
            } else {
                let via = if via.is_empty() { "·" } else { via };
                s.push_str(&format!("  → {via}  {}\n", fmt(h)));
            }
        }
        s.push_str("\ndominator chain (each keeps the next alive):\n");
        for h in &self.dominators {
            s.push_str(&format!("  {}\n", fmt(h)));
        }
        s.push_str(&super::warning_lines(&self.warnings));
        s
    }

    /// Markdown for a ticket.
    pub fn to_markdown(&self, command: &str) -> String {
        use super::md_code;
        let mut s = format!(
            "## How {} is held\n\nReached as {}.\n\n| via | object | address | shallow | retained |\n|---|---|---|---:|---:|\n",
            md_code(&self.address),
            md_code(&self.expression)
        );
        let hop = |h: &Hop| {
            format!(
                "{} | {} | {} | {} |\n",
                md_code(&h.label),
                md_code(h.address.as_deref().unwrap_or("")),
                human_bytes(h.shallow_bytes),
                human_bytes(h.retained_bytes)
            )
        };
        for (i, h) in self.path.iter().enumerate() {
            let via = self.fields.get(i).map_or("", String::as_str);
            s.push_str(&format!("| {} | {}", md_code(via), hop(h)));
        }
        s.push_str("\n### Dominators (each keeps the next alive)\n\n| object | address | shallow | retained |\n|---|---|---:|---:|\n");
        for h in &self.dominators {
            s.push_str(&format!("| {}", hop(h)));
        }
        s.push_str(&super::markdown_notes(&[], &self.warnings));
        s.push_str(&super::markdown_footer(command, "", false));
        s
    }
}
