//! What the heap reports share: the analysis, object types, names of nodes and paths from roots.

use std::collections::VecDeque;

use crate::analysis::Analysis;
use crate::heap::ObjId;
use crate::memory::Addr;
use crate::types::ObjectTypes;

/// An analysed heap with types, ready to be reported on.
pub struct HeapView<'a> {
    /// The analysis.
    pub a: &'a Analysis,
    /// Object types.
    pub types: &'a ObjectTypes,
}

impl<'a> HeapView<'a> {
    /// A view of an analysis with the types it inferred.
    pub fn new(a: &'a Analysis) -> HeapView<'a> {
        HeapView { a, types: &a.types }
    }
}

/// One step of a path from a root.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hop {
    /// Node label: a root's name, or an object's type.
    pub label: String,
    /// Object address (null for roots).
    pub address: Option<String>,
    /// Shallow bytes.
    pub shallow_bytes: u64,
    /// Retained bytes.
    pub retained_bytes: u64,
}

impl<'a> HeapView<'a> {
    /// The type name of an object, `[]T` when it holds several values, or its size class when unknown.
    pub fn type_name(&self, id: ObjId) -> String {
        let size = self.a.objects.size(&self.a.heap, id);
        match self.types.name(id) {
            Some(n) => {
                let one = self.types.value_size(id).unwrap_or(size);
                if one > 0 && one * 2 <= size && !n.starts_with('[') && n != "string data" {
                    format!("[]{n}")
                } else {
                    n.to_string()
                }
            }
            None => format!("<unknown, {size} B>"),
        }
    }

    /// A node's label: root name or object type.
    pub fn label(&self, v: u32) -> String {
        let g = &self.a.graph;
        if g.is_object(v) {
            self.type_name(ObjId(v))
        } else if let Some(e) = g.as_entry(v) {
            let e = &self.a.maps.entries[e];
            format!("map entry @ {}", e.key)
        } else if let Some(r) = g.as_root(v) {
            let r = &self.a.roots[r];
            format!("{} ({})", r.name, kind_name(r.kind))
        } else {
            "<all roots>".to_string()
        }
    }

    /// A hop describing a node.
    pub fn hop(&self, v: u32) -> Hop {
        Hop {
            label: self.label(v),
            address: self
                .a
                .graph
                .is_object(v)
                .then(|| self.a.objects.addr(ObjId(v)).to_string()),
            shallow_bytes: self.a.shallow(v),
            retained_bytes: self.a.retained[v as usize],
        }
    }

    /// Breadth-first parents from the super-root: the shortest path to every reachable node.
    pub fn bfs_parents(&self) -> Vec<u32> {
        let g = &self.a.graph.graph;
        let root = self.a.graph.super_root();
        let mut parent = vec![u32::MAX; g.node_count()];
        parent[root as usize] = root;
        let mut q = VecDeque::from([root]);
        while let Some(v) = q.pop_front() {
            for &w in g.successors(v) {
                if parent[w as usize] == u32::MAX {
                    parent[w as usize] = v;
                    q.push_back(w);
                }
            }
        }
        parent
    }

    /// The shortest path from a root to `v`, root first, using precomputed parents.
    pub fn path_to(&self, parents: &[u32], v: u32) -> Vec<u32> {
        let root = self.a.graph.super_root();
        let mut path = vec![v];
        let mut cur = v;
        while parents[cur as usize] != root && parents[cur as usize] != u32::MAX {
            cur = parents[cur as usize];
            path.push(cur);
            if path.len() > parents.len() {
                break;
            }
        }
        path.reverse();
        path
    }

    /// The dominator chain of `v`, outermost first (super-root excluded).
    pub fn dominator_chain(&self, v: u32) -> Vec<u32> {
        let mut chain = vec![v];
        let mut cur = v;
        while let Some(d) = self.a.doms.idom(cur) {
            if d == self.a.graph.super_root() {
                break;
            }
            chain.push(d);
            cur = d;
        }
        chain.reverse();
        chain
    }

    /// The object holding an address.
    pub fn object_at(&self, addr: Addr) -> Option<ObjId> {
        self.a.objects.find(&self.a.heap, &self.a.index, addr)
    }

    /// Objects retained by each node (the size of its dominator subtree, objects only).
    pub fn retained_counts(&self) -> Vec<u64> {
        let ones: Vec<u64> = (0..self.a.graph.graph.node_count() as u32)
            .map(|v| u64::from(self.a.graph.is_object(v)))
            .collect();
        self.a.doms.retained_sizes(&ones)
    }
}

/// Lowercase name of a root kind.
pub fn kind_name(k: crate::roots::RootKind) -> &'static str {
    match k {
        crate::roots::RootKind::Global => "global",
        crate::roots::RootKind::Stack => "stack",
        crate::roots::RootKind::Runtime => "runtime",
    }
}
