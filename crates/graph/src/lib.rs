//! A compact directed graph over integer ids, its dominator tree and retained sizes.
//!
//! This crate knows nothing of Go or of cores: nodes are plain ids that the layers above give
//! meaning to, and petgraph's visit traits let its algorithms walk the graph as it is.
//!
//! Nodes are the integers `0..n` (`u32`); edges live in one compressed sparse row (CSR)
//! array pair, built in two passes so no node owns an allocation of its own. The budget the
//! design aims for is 40 bytes per node and 8 per edge at the peak of the dominator
//! computation, graph included.

#![deny(missing_docs)]

mod dominators;
mod visit;

#[cfg(any(test, feature = "testing"))]
pub use dominators::dominators;
pub use dominators::{
    dominators_and_retained, dominators_and_retained_reporting, Dominators, Retained,
};

/// Marks "no node" in `u32` node arrays; never a valid node id.
pub const NONE: u32 = u32::MAX;

/// A node of a [`Graph`], for callers that want a distinct type for node ids.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeId(pub u32);

impl From<u32> for NodeId {
    fn from(v: u32) -> Self {
        NodeId(v)
    }
}

impl From<NodeId> for u32 {
    fn from(v: NodeId) -> Self {
        v.0
    }
}

/// Asks the CPU to bring the cache line holding `x` closer; a hint with no other effect.
#[inline]
pub fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching reads nothing architecturally and cannot fault; SSE, which it needs,
    // is part of every x86_64 CPU.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// A `u8` slice seen as atomics, to be written from every core.
pub fn atomic_bytes(slice: &mut [u8]) -> &[std::sync::atomic::AtomicU8] {
    // SAFETY: AtomicU8 has the size, alignment and bit validity of u8, and `slice` stays
    // borrowed exclusively for as long as the view lives.
    unsafe {
        std::slice::from_raw_parts(
            slice.as_mut_ptr().cast::<std::sync::atomic::AtomicU8>(),
            slice.len(),
        )
    }
}

/// `range` cut into consecutive pieces of `size` (the last one shorter), for work on every
/// core with a tight loop inside each piece.
pub fn pieces(range: std::ops::Range<usize>, size: usize) -> Vec<std::ops::Range<usize>> {
    let size = size.max(1);
    range
        .clone()
        .step_by(size)
        .map(|a| a..(a + size).min(range.end))
        .collect()
}

/// A `u32` slice seen as atomics, to be written from every core.
pub fn atomic(slice: &mut [u32]) -> &[std::sync::atomic::AtomicU32] {
    // SAFETY: AtomicU32 has the size, alignment and bit validity of u32, and `slice` stays
    // borrowed exclusively for as long as the view lives.
    unsafe {
        std::slice::from_raw_parts(
            slice.as_mut_ptr().cast::<std::sync::atomic::AtomicU32>(),
            slice.len(),
        )
    }
}

/// `slice` cut into consecutive parts of the given lengths (a part is cut short at the end of
/// the slice; what is left over is dropped).
pub fn cut_mut<T>(slice: &mut [T], lengths: impl IntoIterator<Item = usize>) -> Vec<&mut [T]> {
    let mut parts = Vec::new();
    let mut rest = slice;
    for len in lengths {
        let len = len.min(rest.len());
        let (head, tail) = rest.split_at_mut(len);
        parts.push(head);
        rest = tail;
    }
    parts
}

/// A set of node (or object) ids, one bit each (petgraph's visit map for [`Graph`]).
pub struct Bits(Vec<u64>);

impl Bits {
    /// An empty set of ids below `n`.
    pub fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    /// Whether `v` is in the set.
    #[inline]
    pub fn get(&self, v: u32) -> bool {
        self.0[(v >> 6) as usize] >> (v & 63) & 1 != 0
    }

    /// Asks for `v`'s word ahead of its use.
    #[inline]
    pub fn prefetch(&self, v: u32) {
        if let Some(w) = self.0.get((v >> 6) as usize) {
            prefetch(w);
        }
    }

    /// Adds `v`.
    #[inline]
    pub fn set(&mut self, v: u32) {
        self.0[(v >> 6) as usize] |= 1 << (v & 63);
    }

    /// The ids of `ids` not in the set, in increasing order (a word at a time, so a set that
    /// holds nearly every id is skipped through quickly).
    pub fn missing(&self, ids: std::ops::Range<usize>) -> impl Iterator<Item = u32> + '_ {
        let words = ids.start / 64..ids.end.div_ceil(64).min(self.0.len());
        (self.0[words.clone()].iter().zip(words)).flat_map(move |(&word, k)| {
            let first = k * 64;
            // The bits of this word inside `ids`.
            let from = ids.start.saturating_sub(first).min(64);
            let to = ids.end.saturating_sub(first).min(64);
            let inside = match to - from.min(to) {
                0 => 0,
                len => (u64::MAX >> (64 - len)) << from,
            };
            ids_in_word(k, !word & inside)
        })
    }
}

/// The ids whose bits are set in `word`, word `k` of a set of ids (one bit per id), in
/// increasing order.
pub fn ids_in_word(k: usize, mut word: u64) -> impl Iterator<Item = u32> {
    let first = (k * 64) as u32;
    std::iter::from_fn(move || {
        let bit = (word != 0).then(|| word.trailing_zeros())?;
        word &= word - 1;
        Some(first + bit)
    })
}

/// Nodes per block of [`Offsets`] sharing one 64-bit base.
const BLOCK_SHIFT: u32 = 10;

/// Compressed-sparse-row offsets in 4 bytes per node: `n + 1` positions, each stored relative
/// to a 64-bit base shared by its block of 1024 nodes.
#[derive(Clone, Debug, Default)]
pub struct Offsets {
    lo: Vec<u32>,
    base: Vec<u64>,
}

impl Offsets {
    /// Offsets from per-node counts (`n` of them), converted in place.
    /// Panics if 1024 consecutive nodes hold 2^32 edges or more (a 32 GiB pointer array).
    pub fn from_counts(mut counts: Vec<u32>) -> Offsets {
        counts.reserve_exact(1);
        counts.push(0);
        let mut base = Vec::with_capacity(counts.len().div_ceil(1 << BLOCK_SHIFT));
        let mut total = 0u64;
        for block in counts.chunks_mut(1 << BLOCK_SHIFT) {
            base.push(total);
            let mut within = 0u64;
            for c in block.iter_mut() {
                let k = u64::from(*c);
                *c = u32::try_from(within).expect("over 2^32 edges in 1024 consecutive nodes");
                within += k;
            }
            total += within;
        }
        Offsets { lo: counts, base }
    }

    /// Position `i` (`0..=n`).
    #[inline]
    pub fn get(&self, i: usize) -> u64 {
        self.base[i >> BLOCK_SHIFT] + u64::from(self.lo[i])
    }

    /// The range of node `v`'s entries.
    #[inline]
    pub fn range(&self, v: usize) -> std::ops::Range<usize> {
        self.get(v) as usize..self.get(v + 1) as usize
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.lo.len().saturating_sub(1)
    }

    /// Total entries (the last position).
    pub fn total(&self) -> u64 {
        self.get(self.nodes())
    }

    /// Bytes held.
    pub fn heap_size_bytes(&self) -> usize {
        self.lo.capacity() * 4 + self.base.capacity() * 8
    }
}

/// A directed graph over nodes `0..n` in compressed sparse row form.
#[derive(Clone, Debug)]
pub struct Graph {
    /// `offsets.range(v)` is the range of `targets` holding `v`'s successors.
    offsets: Offsets,
    /// Successor ids of all nodes, node by node.
    targets: Vec<u32>,
}

impl Graph {
    /// A graph with `n` nodes and the given `(from, to)` edges, successors kept in input order.
    #[cfg(any(test, feature = "testing"))]
    pub fn from_edges(n: usize, edges: &[(u32, u32)]) -> Graph {
        let mut b = GraphBuilder::new(n);
        for &(from, _) in edges {
            b.count(from);
        }
        b.finish_counts();
        // The builder fills each node's slots from the back, so add in reverse.
        for &(from, to) in edges.iter().rev() {
            b.add(from, to);
        }
        b.build()
    }

    /// A graph from finished CSR arrays; panics if they do not fit together (a caller bug).
    pub fn from_csr(offsets: Offsets, targets: Vec<u32>) -> Graph {
        let n = offsets.nodes();
        assert!(
            offsets.total() == targets.len() as u64 && targets.iter().all(|&t| (t as usize) < n),
            "inconsistent CSR arrays"
        );
        Graph { offsets, targets }
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.offsets.nodes()
    }

    /// The number of edges, parallel edges and self-loops included.
    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// The successors of `v`, one entry per edge.
    pub fn successors(&self, v: u32) -> &[u32] {
        &self.targets[self.offsets.range(v as usize)]
    }

    /// The successors of the nodes of `nodes`, one node's after another's.
    pub fn successors_of(&self, nodes: std::ops::Range<usize>) -> &[u32] {
        &self.targets[self.offsets.get(nodes.start) as usize..self.offsets.get(nodes.end) as usize]
    }

    /// The bytes of heap memory the graph's arrays hold.
    pub fn heap_size_bytes(&self) -> usize {
        self.offsets.heap_size_bytes() + self.targets.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(any(test, feature = "testing"))]
/// A two-pass [`Graph`] constructor: count each edge's source, `finish_counts`, add each edge.
//
// Counts that do not match the adds are a caller bug and panic.
#[derive(Debug)]
pub struct GraphBuilder {
    /// While counting: out-degrees. After `finish_counts`: one past the last unfilled slot of
    /// each node, moving down to the node's first slot as edges are added.
    offsets: Vec<u64>,
    /// Successor slots; `NONE` until filled.
    targets: Vec<u32>,
    /// Whether `finish_counts` has not run yet.
    counting: bool,
}

#[cfg(any(test, feature = "testing"))]
impl GraphBuilder {
    /// A builder for a graph with `n` nodes; panics if `n` exceeds `u32::MAX`.
    pub fn new(n: usize) -> GraphBuilder {
        assert!(
            n <= NONE as usize,
            "graph of {n} nodes: at most {NONE} are supported"
        );
        GraphBuilder {
            offsets: vec![0; n + 1],
            targets: Vec::new(),
            counting: true,
        }
    }

    /// Records one edge leaving `from` (first pass).
    pub fn count(&mut self, from: u32) {
        self.count_by(from, 1);
    }

    /// Records `k` edges leaving `from` (first pass).
    pub fn count_by(&mut self, from: u32, k: u32) {
        assert!(self.counting, "GraphBuilder::count after finish_counts");
        assert!(
            (from as usize) < self.offsets.len() - 1,
            "edge from node {from} in a graph of {} nodes",
            self.offsets.len() - 1
        );
        self.offsets[from as usize] += u64::from(k);
    }

    /// Ends the counting pass and allocates room for every counted edge.
    pub fn finish_counts(&mut self) {
        assert!(self.counting, "GraphBuilder::finish_counts called twice");
        self.counting = false;
        let n = self.offsets.len() - 1;
        let mut total = 0u64;
        for (v, slot) in self.offsets[..n].iter_mut().enumerate() {
            assert!(
                *slot <= u64::from(u32::MAX),
                "node {v} has {} successors: at most {} are supported",
                *slot,
                u32::MAX
            );
            total += *slot;
            *slot = total;
        }
        self.offsets[n] = total;
        let total = usize::try_from(total).expect("edge count exceeds the address space");
        self.targets = vec![NONE; total];
    }

    /// Adds the edge `from -> to` (second pass).
    pub fn add(&mut self, from: u32, to: u32) {
        assert!(!self.counting, "GraphBuilder::add before finish_counts");
        let n = self.offsets.len() - 1;
        assert!(
            (from as usize) < n && (to as usize) < n,
            "edge {from} -> {to} in a graph of {n} nodes"
        );
        let slot = &mut self.offsets[from as usize];
        *slot = slot
            .checked_sub(1)
            .unwrap_or_else(|| panic!("more edges added from node {from} than counted"));
        let t = &mut self.targets[*slot as usize];
        assert!(*t == NONE, "more edges added from node {from} than counted");
        *t = to;
    }

    /// The finished graph; panics if the added edges do not match the counted ones.
    pub fn build(mut self) -> Graph {
        if self.counting {
            self.finish_counts();
        }
        // Every slot filled exactly once and every node's slots starting where the previous
        // node's end means each node received exactly the edges counted for it.
        assert!(
            !self.targets.contains(&NONE),
            "fewer edges added than counted"
        );
        assert!(
            self.offsets[0] == 0 && self.offsets.windows(2).all(|w| w[0] <= w[1]),
            "edges added do not match the per-node counts"
        );
        let counts = self
            .offsets
            .windows(2)
            .map(|w| (w[1] - w[0]) as u32)
            .collect();
        Graph {
            offsets: Offsets::from_counts(counts),
            targets: self.targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_gives_the_ids_of_a_range_not_in_the_set() {
        let n = 130;
        let mut b = Bits::new(n);
        for v in 0..n as u32 {
            if ![3, 64, 127, 129].contains(&v) {
                b.set(v);
            }
        }
        assert_eq!(b.missing(0..n).collect::<Vec<_>>(), [3, 64, 127, 129]);
        assert_eq!(b.missing(4..128).collect::<Vec<_>>(), [64, 127]);
        assert_eq!(b.missing(64..65).collect::<Vec<_>>(), [64]);
        assert_eq!(b.missing(65..127).count(), 0);
        assert_eq!(Bits::new(3).missing(0..3).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(b.missing(0..0).count(), 0);
    }

    #[test]
    fn from_edges_keeps_order_and_counts() {
        let g = Graph::from_edges(4, &[(0, 1), (2, 3), (0, 2), (0, 1), (3, 3)]);
        assert_eq!(g.node_count(), 4);
        assert_eq!(g.edge_count(), 5);
        assert_eq!(g.successors(0), &[1, 2, 1]);
        assert_eq!(g.successors(1), &[] as &[u32]);
        assert_eq!(g.successors(2), &[3]);
        assert_eq!(g.successors(3), &[3]);
        assert_eq!(g.heap_size_bytes(), 5 * 4 + 8 + 5 * 4);
    }

    #[test]
    fn empty_graphs() {
        let g = Graph::from_edges(0, &[]);
        assert_eq!((g.node_count(), g.edge_count()), (0, 0));
        let g = GraphBuilder::new(3).build();
        assert_eq!((g.node_count(), g.edge_count()), (3, 0));
        assert!(g.successors(2).is_empty());
    }

    #[test]
    fn builder_accepts_adds_in_any_order() {
        let edges = [(3, 0), (1, 2), (3, 1), (0, 3), (1, 1), (3, 3)];
        let mut b = GraphBuilder::new(4);
        b.count_by(3, 3);
        b.count(1);
        b.count(0);
        b.count(1);
        b.finish_counts();
        for &(f, t) in &edges {
            b.add(f, t);
        }
        let g = b.build();
        for v in 0..4u32 {
            let mut got = g.successors(v).to_vec();
            got.sort_unstable();
            let mut want: Vec<u32> = edges.iter().filter(|e| e.0 == v).map(|e| e.1).collect();
            want.sort_unstable();
            assert_eq!(got, want, "node {v}");
        }
    }

    #[test]
    #[should_panic(expected = "fewer edges added")]
    fn builder_rejects_missing_adds() {
        let mut b = GraphBuilder::new(2);
        b.count(0);
        b.count(1);
        b.finish_counts();
        b.add(0, 1);
        b.build();
    }

    #[test]
    #[should_panic(expected = "more edges added from node 1")]
    fn builder_rejects_extra_adds_that_collide() {
        let mut b = GraphBuilder::new(2);
        b.count(0);
        b.count(1);
        b.finish_counts();
        b.add(0, 1);
        b.add(1, 0);
        b.add(1, 0);
    }

    #[test]
    #[should_panic(expected = "do not match the per-node counts")]
    fn builder_rejects_adds_moved_between_nodes() {
        // Node 1 takes node 0's slot; no slot is written twice, but the counts are wrong.
        let mut b = GraphBuilder::new(3);
        b.count(0);
        b.count(1);
        b.finish_counts();
        b.add(1, 2);
        b.add(1, 2);
        b.build();
    }

    #[test]
    #[should_panic(expected = "more edges added from node 0")]
    fn builder_rejects_extra_adds_at_start() {
        let mut b = GraphBuilder::new(2);
        b.count(1);
        b.finish_counts();
        b.add(0, 1);
    }

    #[test]
    #[should_panic(expected = "in a graph of 2 nodes")]
    fn builder_rejects_out_of_range_target() {
        let mut b = GraphBuilder::new(2);
        b.count(0);
        b.finish_counts();
        b.add(0, 2);
    }

    #[test]
    #[should_panic(expected = "before finish_counts")]
    fn builder_rejects_add_while_counting() {
        let mut b = GraphBuilder::new(2);
        b.count(0);
        b.add(0, 1);
    }

    #[test]
    fn node_id_converts() {
        assert_eq!(u32::from(NodeId::from(7)), 7);
        assert!(NodeId(1) < NodeId(2));
    }
}
