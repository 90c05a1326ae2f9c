//! Immediate dominators by the semi-NCA algorithm, and the retained sizes they imply.
//!
//! Most of a heap hangs off the rest in trees: a string's bytes, a `big.Int`'s words, a map
//! entry and what only it points to. A node with a single predecessor is immediately
//! dominated by it, so trees of such nodes that lead nowhere else are settled first, in
//! linear passes with independent memory accesses, on every core: each node's only
//! predecessor, then the hanging trees bottom-up in sweeps over blocks of ids (checked in
//! parallel against what hung before the block, then settled), their retained sizes summed as
//! they are found, and a worklist for what the sweeps leave. The semi-NCA
//! algorithm (Georgiadis, "Linear-Time Algorithms for Dominators and Related Problems", 2005;
//! the variant LLVM uses) then runs on what is left, in three iterative passes over preorder
//! numbers: a depth-first search, semidominators by link-eval with path compression, and
//! immediate dominators as nearest common ancestors of parent and semidominator; their
//! retained sizes follow in decreasing preorder. Only nodes with several predecessors need
//! the reverse graph. Nothing recurses.
//!
//! The phases, in [`dominators_and_retained_reporting`]:
//!
//! 0. hanging trees ([`hanging`]): only predecessors, the trees settled with their sizes, the
//!    trees' tops giving their sizes to their parents;
//! 1. depth-first numbering of the rest ([`semi_nca::number_depth_first`]), then the reverse
//!    graph over joins, nodes with several predecessors ([`semi_nca::JoinPreds`]);
//! 2. semidominators ([`semi_nca::semidominators`]);
//! 3. immediate dominators ([`semi_nca::immediate_dominators`]);
//! 4. retained sizes ([`semi_nca::add_retained`]), back to node ids, and nothing retained by
//!    what is not reached ([`retain_nothing_unreached`]).
//!
//! Node ids are [`NodeId`]s (`u32` where they come straight from the graph's arrays);
//! preorder numbers of the search are [`Pre`]s, and arrays over them are [`ByPre`]s, indexed
//! only by a `Pre`.
//!
//! # Which buffer holds what
//!
//! `n` nodes, `r` of them reached and not hanging. The one `u32` per node is a single buffer
//! seen through a view per phase, and it ends as the result; two arrays over `r` are reused
//! too, each under a new name when its meaning changes. Everything else keeps one meaning.
//!
//! | phase | the `u32` per node | arrays over `r` (by [`Pre`]) |
//! |---|---|---|
//! | 0 | [`OnlyPreds`]: the only predecessor, [`NONE`] or [`SHARED`] | – |
//! | 1 | [`Numbers`]: a hanging node's immediate dominator (its only predecessor), any other's preorder number ([`Pre::NONE`] until reached) | `order` (number → node), `parent` (in the spanning tree), `scanned` (successors looked at) |
//! | 2 | [`Numbers`] | `order`, `parent`, `semi` (`scanned`'s buffer), `ancestor` and `best` (path compression) |
//! | 3 | [`Numbers`] | `order`, `semi`, `idom` (`parent`'s buffer, overwritten in increasing preorder) |
//! | 4 | [`Numbers::into_idoms`]: every node's immediate dominator, the result | `order`, `idom`, until back to node ids |
//!
//! Beside these: the retained sizes (all phases, the result); bit sets over all nodes,
//! `hanging` (phases 0 to 4), `summed` (phase 0) and `join` (end of phase 0 to the reverse
//! graph); the reverse graph over joins, [`semi_nca::JoinPreds`] (end of phase 1 to the end
//! of phase 2).
//!
//! Peak memory, graph included: the graph (4 bytes per node + 4 per edge), the `u32` per node
//! (4 bytes), the retained sizes (5 bytes per node), three bit sets, and in phase 2 five `u32`
//! arrays over `r` (20 bytes per node) and the reverse graph over joins (8 + 4 per edge). What
//! is kept afterwards is 9 bytes per node.

mod hanging;
mod semi_nca;
#[cfg(test)]
mod tests;

use super::{atomic, pieces, Bits, Graph, NodeId, NONE};

/// Marks, in [`OnlyPreds`], a node with several predecessors (and the root).
const SHARED: u32 = NONE - 1;

/// A preorder number of the depth-first search over the nodes that do not hang.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Pre(u32);

impl Pre {
    /// The root's number.
    const ROOT: Pre = Pre(0);
    /// Not numbered: not reached (yet).
    const NONE: Pre = Pre(NONE);

    /// The numbers from `first` up to, not including, `end`.
    fn range(first: u32, end: usize) -> impl DoubleEndedIterator<Item = Pre> {
        (first..end as u32).map(Pre)
    }
}

/// An array over preorder numbers.
#[derive(Clone, Debug)]
struct ByPre<T>(Vec<T>);

impl<T> ByPre<T> {
    /// Room for `r` numbers, none yet.
    fn with_capacity(r: usize) -> ByPre<T> {
        ByPre(Vec::with_capacity(r))
    }

    /// How many numbers.
    fn len(&self) -> usize {
        self.0.len()
    }

    /// Holds the next number's entry.
    fn push(&mut self, x: T) {
        self.0.push(x);
    }

    /// The same allocation holding something else from now on, every entry `fill` (`U` has
    /// `T`'s size and alignment, so nothing is allocated).
    fn reuse<U: Copy>(self, fill: U) -> ByPre<U> {
        ByPre(self.0.into_iter().map(|_| fill).collect())
    }
}

impl<T> std::ops::Index<Pre> for ByPre<T> {
    type Output = T;
    #[inline]
    fn index(&self, k: Pre) -> &T {
        &self.0[k.0 as usize]
    }
}

impl<T> std::ops::IndexMut<Pre> for ByPre<T> {
    #[inline]
    fn index_mut(&mut self, k: Pre) -> &mut T {
        &mut self.0[k.0 as usize]
    }
}

/// The `u32` per node in phase 0: each node's only predecessor, [`NONE`] for none, [`SHARED`]
/// for several (and for the root).
struct OnlyPreds(Vec<u32>);

impl OnlyPreds {
    /// `v`'s predecessor if it has exactly one.
    #[inline]
    fn single(&self, v: u32) -> Option<u32> {
        let p = self.0[v as usize];
        (p < SHARED).then_some(p)
    }

    /// The same buffer for phase 1: hanging nodes keep their only predecessor, which is their
    /// immediate dominator; the others are not numbered yet.
    fn into_numbers(mut self, hanging: &Bits) -> Numbers {
        for (v, p) in self.0.iter_mut().enumerate() {
            if !hanging.get(v as u32) {
                *p = NONE;
            }
        }
        Numbers(self.0)
    }
}

/// The `u32` per node in phases 1 to 3: a hanging node's immediate dominator, any other node's
/// preorder number ([`Pre::NONE`] until reached).
struct Numbers(Vec<u32>);

impl Numbers {
    /// The preorder number of `v`, which does not hang.
    #[inline]
    fn pre(&self, v: NodeId) -> Pre {
        Pre(self.0[v.0 as usize])
    }

    /// Numbers `v`, which does not hang.
    #[inline]
    fn set_pre(&mut self, v: NodeId, k: Pre) {
        self.0[v.0 as usize] = k.0;
    }

    /// The same buffer for phase 4: every node's immediate dominator (itself for the root,
    /// [`NONE`] if not numbered), given each number's node and immediate dominator. Hanging
    /// trees under unreached nodes still name their parents.
    fn into_idoms(mut self, order: &ByPre<NodeId>, idom: &ByPre<Pre>) -> Vec<u32> {
        for k in Pre::range(0, order.len()) {
            self.0[order[k].0 as usize] = order[idom[k]].0;
        }
        self.0
    }
}

/// The dominator tree of a [`Graph`] from one root.
#[derive(Clone, Debug)]
pub struct Dominators {
    /// The node every path starts at.
    root: u32,
    /// Per node: its immediate dominator, itself for the root, `NONE` if unreachable.
    idom: Vec<u32>,
}

/// Computes the immediate dominator of every node of `g` reachable from `root`.
#[cfg(any(test, feature = "testing"))]
pub fn dominators(g: &Graph, root: u32) -> Dominators {
    dominators_and_retained(g, root, |_| 0).0
}

/// Computes the immediate dominator of every node of `g` reachable from `root`, and each
/// node's retained size: its shallow size (`shallow`) plus its dominator-tree children's.
pub fn dominators_and_retained(
    g: &Graph,
    root: u32,
    shallow: impl Fn(u32) -> u64 + Sync,
) -> (Dominators, Retained) {
    dominators_and_retained_reporting(g, root, shallow, &|_| {})
}

/// Nodes between two reports of progress in the serial passes.
const REPORT_EVERY: u64 = 1 << 16;

/// Counts the work of one pass and reports it every [`REPORT_EVERY`] units.
struct Ticks<'a> {
    done: &'a (dyn Fn(u64) + Sync),
    pending: u64,
    reported: u64,
}

impl Ticks<'_> {
    /// One more unit of the pass.
    #[inline]
    fn tick(&mut self) {
        self.pending += 1;
        if self.pending == REPORT_EVERY {
            (self.done)(REPORT_EVERY);
            self.reported += REPORT_EVERY;
            self.pending = 0;
        }
    }

    /// The pass is over: reports what is left of its `units`.
    fn pass_done(&mut self, units: u64) {
        (self.done)(units.saturating_sub(self.reported));
        self.reported = 0;
        self.pending = 0;
    }
}

/// [`dominators_and_retained`], telling `done` of its progress: five passes of the node count
/// in all (hanging trees, numbering, the reverse graph, semidominators, dominators and sizes).
pub fn dominators_and_retained_reporting(
    g: &Graph,
    root: u32,
    shallow: impl Fn(u32) -> u64 + Sync,
    done: &(dyn Fn(u64) + Sync),
) -> (Dominators, Retained) {
    let n = g.node_count();
    assert!(
        (root as usize) < n,
        "dominator root {root} in a graph of {n} nodes"
    );
    let mut ticks = Ticks {
        done,
        pending: 0,
        reported: 0,
    };

    // Phase 0: hanging trees, settled with their retained sizes.
    let preds = hanging::only_predecessors(g, root);
    let hanging::Hanging {
        nodes: hanging,
        count: hanging_count,
        mut retained,
    } = hanging::hanging_trees(g, &preds, &shallow);
    let join = hanging::give_tops_to_parents(g, &preds, &hanging, &mut retained);
    ticks.pass_done(n as u64);

    // Phase 1: the rest numbered depth-first, then the reverse graph over joins.
    let mut numbers = preds.into_numbers(&hanging);
    let semi_nca::SpanningTree {
        order,
        parent,
        scanned,
    } = semi_nca::number_depth_first(
        g,
        NodeId(root),
        &hanging,
        &mut numbers,
        n - hanging_count,
        &mut ticks,
    );
    ticks.pass_done(n as u64);
    let join_preds = semi_nca::JoinPreds::new(g, &order, &numbers, &join);
    drop(join);
    ticks.pass_done(n as u64);

    // Phase 2: semidominators, in the cursors' buffer.
    let semi = semi_nca::semidominators(&parent, &join_preds, scanned, &mut ticks);
    ticks.pass_done(n as u64);
    drop(join_preds);

    // Phase 3: immediate dominators, in the parents' buffer.
    let idom_pre = semi_nca::immediate_dominators(parent, &semi);
    drop(semi);

    // Phase 4: retained sizes, then back to node ids.
    semi_nca::add_retained(&order, &idom_pre, &shallow, &mut retained);
    let mut idom = numbers.into_idoms(&order, &idom_pre);
    drop(idom_pre);
    drop(order);
    retain_nothing_unreached(g, &hanging, &mut idom, &mut retained);
    ticks.pass_done(n as u64);
    (Dominators { root, idom }, retained)
}

/// What is not reached retains nothing and has no dominator: nodes that do not hang and were
/// not numbered (already [`NONE`] in `idom`), and the hanging trees under them, walked down
/// from their tops (the successors whose immediate dominator, their only predecessor, is such
/// a node).
fn retain_nothing_unreached(g: &Graph, hanging: &Bits, idom: &mut [u32], retained: &mut Retained) {
    let mut below: Vec<u32> = Vec::new();
    for v in hanging.missing(0..g.node_count()) {
        if idom[v as usize] != NONE {
            continue;
        }
        retained.set(v as usize, 0);
        for &w in g.successors(v) {
            if hanging.get(w) && idom[w as usize] == v {
                below.push(w);
            }
        }
        while let Some(u) = below.pop() {
            idom[u as usize] = NONE;
            retained.set(u as usize, 0);
            below.extend_from_slice(g.successors(u));
        }
    }
}

impl Dominators {
    /// The root the dominators were computed from.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// The number of nodes of the graph, reachable or not.
    pub fn node_count(&self) -> usize {
        self.idom.len()
    }

    /// The immediate dominator of `v`; `None` for the root and for unreachable nodes.
    pub fn idom(&self, v: u32) -> Option<u32> {
        let d = self.idom[v as usize];
        if d == NONE || v == self.root {
            None
        } else {
            Some(d)
        }
    }

    /// Asks for `v`'s immediate dominator ahead of its use.
    pub fn prefetch(&self, v: u32) {
        if let Some(d) = self.idom.get(v as usize) {
            super::prefetch(d);
        }
    }

    /// Whether `v` is reachable from the root.
    pub fn is_reachable(&self, v: u32) -> bool {
        self.idom[v as usize] != NONE
    }

    /// The dominator tree in CSR form: `v`'s children are `children[offsets[v]..offsets[v + 1]]`,
    /// in increasing node id.
    pub fn dominator_tree_children(&self) -> (Vec<u32>, Vec<u32>) {
        let n = self.idom.len();
        let child = |v: usize| {
            let d = self.idom[v];
            (d != NONE && v != self.root as usize).then_some(d as usize)
        };
        let mut offsets = vec![0u32; n + 1];
        for v in 0..n {
            if let Some(d) = child(v) {
                offsets[d] += 1;
            }
        }
        let mut total = 0u32;
        for slot in &mut offsets[..n] {
            total += *slot;
            *slot = total;
        }
        offsets[n] = total;
        let mut children = vec![0u32; total as usize];
        for v in (0..n).rev() {
            if let Some(d) = child(v) {
                offsets[d] -= 1;
                children[offsets[d] as usize] = v as u32;
            }
        }
        (offsets, children)
    }

    /// The bytes of heap memory the dominator arrays hold.
    pub fn heap_size_bytes(&self) -> usize {
        self.idom.capacity() * std::mem::size_of::<u32>()
    }
}

/// Retained bytes per node in 5 bytes each, the size plus one (the low 40 bits,
/// little-endian): up to 1 TiB, where larger sums stop; all zero for a node given no size yet.
/// A node's five bytes lie together, so reading them at random costs one cache line (two for
/// the few that straddle one).
#[derive(Debug, Clone, Default)]
pub struct Retained {
    bytes: Vec<[u8; 5]>,
}

impl Retained {
    /// The largest size held (1 TiB less two bytes).
    pub const MAX: u64 = (1 << 40) - 2;

    /// `n` nodes retaining nothing.
    fn zeroed(n: usize) -> Retained {
        Retained {
            bytes: vec![[0; 5]; n],
        }
    }

    /// Node `v`'s retained bytes.
    pub fn get(&self, v: u32) -> u64 {
        Retained::join(self.bytes[v as usize]).saturating_sub(1)
    }

    /// Whether node `v` was given a size (zero included).
    #[inline]
    fn has_size(&self, v: u32) -> bool {
        self.bytes[v as usize] != [0; 5]
    }

    /// Adds to node `v`'s retained bytes.
    fn add(&mut self, v: usize, bytes: u64) {
        self.set(v, self.get(v as u32).saturating_add(bytes));
    }

    /// Sets node `v`'s retained bytes (at most [`Retained::MAX`]).
    fn set(&mut self, v: usize, bytes: u64) {
        self.bytes[v] = Retained::split(bytes);
    }

    /// Bytes (at most [`Retained::MAX`]) as the five bytes stored.
    fn split(bytes: u64) -> [u8; 5] {
        let b = (bytes.min(Retained::MAX) + 1).to_le_bytes();
        [b[0], b[1], b[2], b[3], b[4]]
    }

    /// The size plus one that five stored bytes hold.
    #[inline]
    fn join(b: [u8; 5]) -> u64 {
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], 0, 0, 0])
    }

    /// Asks the CPU to fetch node `v`'s size ahead of its use (a hint).
    pub fn prefetch(&self, v: u32) {
        if let Some(b) = self.bytes.get(v as usize) {
            super::prefetch(b);
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Every node's retained bytes in one vector (for small graphs).
    pub fn to_vec(&self) -> Vec<u64> {
        (0..self.len() as u32).map(|v| self.get(v)).collect()
    }

    /// The bytes of heap memory the sizes take.
    pub fn heap_size_bytes(&self) -> usize {
        self.bytes.capacity() * 5
    }
}
