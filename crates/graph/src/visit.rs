//! petgraph's view of the CSR graph: its algorithms (dominators, `Dfs`, `Bfs`) run on the
//! production graph itself, not on a copy.

use petgraph::visit::{GraphBase, IntoNeighbors, NodeCount, NodeIndexable, VisitMap, Visitable};

use super::{Bits, Graph};

/// Node ids are the graph's `u32` ids; an edge is named by its source and target.
impl GraphBase for Graph {
    type NodeId = u32;
    type EdgeId = (u32, u32);
}

/// A node's successors, one per edge, in the order the graph keeps them.
impl<'a> IntoNeighbors for &'a Graph {
    type Neighbors = std::iter::Copied<std::slice::Iter<'a, u32>>;

    fn neighbors(self, v: u32) -> Self::Neighbors {
        self.successors(v).iter().copied()
    }
}

impl NodeCount for Graph {
    fn node_count(&self) -> usize {
        Graph::node_count(self)
    }
}

/// Ids are already dense indices.
impl NodeIndexable for Graph {
    fn node_bound(&self) -> usize {
        Graph::node_count(self)
    }

    fn to_index(&self, v: u32) -> usize {
        v as usize
    }

    fn from_index(&self, i: usize) -> u32 {
        i as u32
    }
}

/// Visited nodes as one bit each.
impl Visitable for Graph {
    type Map = Bits;

    fn visit_map(&self) -> Bits {
        Bits::new(Graph::node_count(self))
    }

    fn reset_map(&self, map: &mut Bits) {
        map.0.iter_mut().for_each(|w| *w = 0);
        map.0.resize(Graph::node_count(self).div_ceil(64), 0);
    }
}

impl VisitMap<u32> for Bits {
    fn visit(&mut self, v: u32) -> bool {
        let first = !self.get(v);
        self.set(v);
        first
    }

    fn is_visited(&self, v: &u32) -> bool {
        self.get(*v)
    }

    fn unvisit(&mut self, v: u32) -> bool {
        let was = self.get(v);
        self.0[(v >> 6) as usize] &= !(1 << (v & 63));
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petgraph::visit::{Bfs, Dfs};

    #[test]
    fn petgraph_walks_the_csr_graph() {
        // 0 → 1 → 3, 0 → 2 → 3, 4 unreachable, 3 → 0 a back edge.
        let g = Graph::from_edges(5, &[(0, 1), (0, 2), (1, 3), (2, 3), (3, 0), (4, 3)]);
        let mut dfs = Dfs::new(&g, 0);
        let mut order = Vec::new();
        while let Some(v) = dfs.next(&g) {
            order.push(v);
        }
        order.sort_unstable();
        assert_eq!(order, [0, 1, 2, 3]);
        let mut bfs = Bfs::new(&g, 0);
        assert_eq!(bfs.next(&g), Some(0));
        let d = petgraph::algo::dominators::simple_fast(&g, 0);
        assert_eq!(d.immediate_dominator(3), Some(0));
        assert_eq!(d.immediate_dominator(4), None);
        let mut map = g.visit_map();
        assert!(map.visit(4) && !map.visit(4) && map.unvisit(4) && !map.is_visited(&4));
    }
}
