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
//! numbers: a depth-first search, semidominators by link-eval with path compression
//! (compressing the spanning-tree parent array in place), and immediate dominators as nearest
//! common ancestors of parent and semidominator; their retained sizes follow in decreasing
//! preorder. Only nodes with several predecessors need the reverse graph. Nothing recurses.
//!
//! Peak memory, graph included: the graph (4 bytes per node + 4 per edge), each node's only
//! predecessor (4 bytes per node; it holds preorder numbers during the search and becomes the
//! immediate dominators), the retained sizes (5 bytes per node), three bit sets, and for the
//! nodes that do not hang five `u32` arrays (20 bytes per node) and the reverse graph over nodes
//! with several predecessors (8 + 4 per edge). What is kept afterwards is 9 bytes per node.

use std::collections::HashMap;

use super::{Bits, Graph, NONE};

/// Marks, in the only-predecessor array, a node with several predecessors.
const SHARED: u32 = NONE - 1;

/// The dominator tree of a [`Graph`] from one root.
#[derive(Clone, Debug)]
pub struct Dominators {
    /// The node every path starts at.
    root: u32,
    /// Per node: its immediate dominator, itself for the root, `NONE` if unreachable.
    idom: Vec<u32>,
}

/// Each node's only predecessor: `NONE` for none, `SHARED` for several (and for the root).
/// Parallel edges from one predecessor count once. Runs on every core.
fn only_predecessors(g: &Graph, root: u32) -> Vec<u32> {
    use rayon::prelude::*;
    use std::sync::atomic::Ordering::Relaxed;
    let n = g.node_count();
    let mut pred = vec![NONE; n];
    {
        let view = super::atomic(&mut pred);
        super::pieces(0..n, 1 << 14)
            .into_par_iter()
            .for_each(|piece| {
                for v in piece.start as u32..piece.end as u32 {
                    for &w in g.successors(v) {
                        let p = &view[w as usize];
                        match p.load(Relaxed) {
                            NONE => {
                                if let Err(other) = p.compare_exchange(NONE, v, Relaxed, Relaxed) {
                                    if other != v {
                                        p.store(SHARED, Relaxed);
                                    }
                                }
                            }
                            SHARED => {}
                            u if u != v => p.store(SHARED, Relaxed),
                            _ => {}
                        }
                    }
                }
            });
    }
    pred[root as usize] = SHARED;
    pred
}

/// Out-degree from which a node's scan position is remembered between checks.
const WIDE: usize = 64;

/// Sweeps over all nodes in id order before the remaining hanging nodes are found from a
/// worklist: sweeps read the graph sequentially, the worklist chases predecessors.
const SWEEPS: usize = 3;

/// How many nodes ahead a sweep asks for the marks and sizes of successors.
const SWEEP_AHEAD: u32 = 12;

/// Nodes per block of a sweep: checked in parallel, then settled in order.
const SWEEP_BLOCK: usize = 1 << 20;

/// Fewest nodes one core checks at a time in a sweep.
const SWEEP_PIECE: usize = 1 << 14;

/// Stands for the sum of a hanging node with over [`FEW`] successors, summed when settled.
const WIDE_SUM: u64 = u64::MAX;

/// Out-degree up to which a hanging node's repeated successors are found by looking back.
const FEW: usize = 16;

/// Sums retained sizes up hanging trees as their nodes are found, children first.
struct Settler<'a, F: Fn(u32) -> u64> {
    g: &'a Graph,
    shallow: F,
    retained: Retained,
    /// The hanging nodes found so far.
    hanging: Bits,
    /// How many.
    count: usize,
    /// Successors of nodes with over [`FEW`] successors whose size went to their parent
    /// already (parallel edges count once).
    summed: Bits,
}

impl<F: Fn(u32) -> u64> Settler<'_, F> {
    /// `v`'s retained size if it hangs, when it has at most [`FEW`] successors (repeats are
    /// found by looking back); `None` for wider nodes, which [`Settler::hang`] sums.
    fn sum_of_few(&self, v: u32) -> Option<u64> {
        let succ = self.g.successors(v);
        if succ.len() > FEW {
            return None;
        }
        let mut sum = (self.shallow)(v);
        for (k, &w) in succ.iter().enumerate() {
            if !succ[..k].contains(&w) {
                sum = sum.saturating_add(self.retained.get(w));
            }
        }
        Some(sum)
    }

    /// `v` hangs, retaining `sum` bytes.
    fn settle(&mut self, v: u32, sum: u64) {
        self.hanging.set(v);
        self.count += 1;
        self.retained.set(v as usize, sum);
    }

    /// `v` hangs and its successors are settled: its retained size is its own plus theirs.
    fn hang(&mut self, v: u32) {
        if let Some(sum) = self.sum_of_few(v) {
            return self.settle(v, sum);
        }
        let mut sum = (self.shallow)(v);
        for &w in self.g.successors(v) {
            if !self.summed.get(w) {
                self.summed.set(w);
                sum = sum.saturating_add(self.retained.get(w));
            }
        }
        self.settle(v, sum);
    }

    /// Whether `v`, with only predecessor `p`, may hang and is not settled yet.
    fn open(&self, v: u32, p: u32) -> bool {
        p < SHARED && !self.hanging.get(v)
    }

    /// Whether `v`, not settled yet and not a leaf, hangs: its only predecessor is `p` and
    /// all its successors hang.
    fn hangs(&self, v: u32, p: u32) -> bool {
        if !self.open(v, p) {
            return false;
        }
        let succ = self.g.successors(v);
        !succ.is_empty() && succ.iter().all(|&w| self.hanging.get(w))
    }
}

/// Marks nodes of `nodes` (which starts on a multiple of 64) as hanging with their retained
/// sizes, on every core: the piece of [`SWEEP_PIECE`] nodes from `first` settles the (node,
/// size) pairs `sums(first)` gives, all inside it (pieces are 64-aligned, so their marks share
/// no word). Returns how many were settled.
fn settle_pieces<I: Iterator<Item = (u32, u64)>>(
    hanging: &mut Bits,
    retained: &mut Retained,
    nodes: std::ops::Range<usize>,
    sums: impl Fn(usize) -> I + Sync,
) -> usize {
    use rayon::prelude::*;
    let words = &mut hanging.0[nodes.start / 64..nodes.end.div_ceil(64)];
    let low = &mut retained.low[nodes.clone()];
    let high = &mut retained.high[nodes.clone()];
    (words.par_chunks_mut(SWEEP_PIECE / 64))
        .zip(low.par_chunks_mut(SWEEP_PIECE))
        .zip(high.par_chunks_mut(SWEEP_PIECE))
        .enumerate()
        .map(|(k, ((words, low), high))| {
            let first = nodes.start + k * SWEEP_PIECE;
            let mut settled = 0;
            for (v, sum) in sums(first) {
                let i = v as usize - first;
                words[i / 64] |= 1 << (i % 64);
                (low[i], high[i]) = Retained::split(sum);
                settled += 1;
            }
            settled
        })
        .sum()
}

/// Finds the trees hanging off the rest of the graph (each node has one predecessor and every
/// successor is such a node too) and sums their retained sizes bottom-up, into `s`.
fn hanging_trees<F: Fn(u32) -> u64 + Sync>(pred: &[u32], s: &mut Settler<'_, F>) {
    let g = s.g;
    let n = g.node_count();
    // Sweeps: the first takes the leaves, each next one the nodes whose successors all hang
    // (including those found in earlier blocks of the same sweep). Within a block, nodes are
    // checked and summed on every core against what hung before the block, then settled.
    use rayon::prelude::*;
    // The first sweep's nodes, leaves, depend on no other node: all are settled at once, in
    // 64-aligned pieces on every core.
    let shallow = &s.shallow;
    let leaves = settle_pieces(&mut s.hanging, &mut s.retained, 0..n, |first| {
        let piece = first as u32..(first + SWEEP_PIECE).min(n) as u32;
        piece
            .filter(|&v| pred[v as usize] < SHARED && g.offsets.range(v as usize).is_empty())
            .map(|v| (v, shallow(v)))
    });
    s.count += leaves;
    if leaves == 0 {
        return;
    }
    let mut found: Vec<u32> = Vec::new();
    for sweep in 1..SWEEPS {
        let before = s.count;
        for block in (0..n).step_by(SWEEP_BLOCK) {
            let end = (block + SWEEP_BLOCK).min(n);
            let view = &*s;
            let sums: Vec<Vec<(u32, u64)>> = super::pieces(block..end, SWEEP_PIECE)
                .into_par_iter()
                .map(|piece| {
                    let mut out = Vec::new();
                    for v in piece.start as u32..piece.end as u32 {
                        // Successors' marks and sizes are read at random: ask ahead.
                        let a = v.wrapping_add(SWEEP_AHEAD);
                        if (a as usize) < end && view.open(a, pred[a as usize]) {
                            for &w in g.successors(a) {
                                view.hanging.prefetch(w);
                                view.retained.prefetch(w);
                            }
                        }
                        if view.hangs(v, pred[v as usize]) {
                            out.push((v, view.sum_of_few(v).unwrap_or(WIDE_SUM)));
                        }
                    }
                    out
                })
                .collect();
            // Each piece settles its own nodes on every core; wide nodes, which mark
            // successors, after it, one by one.
            s.count += settle_pieces(&mut s.hanging, &mut s.retained, block..end, |first| {
                let out = &sums[(first - block) / SWEEP_PIECE];
                out.iter().copied().filter(|x| x.1 != WIDE_SUM)
            });
            for &(v, sum) in sums.iter().flatten() {
                if sum == WIDE_SUM {
                    s.hang(v);
                }
                // Only the last sweep's finds seed the worklist.
                if sweep == SWEEPS - 1 {
                    found.push(pred[v as usize]);
                }
            }
        }
        if s.count == before {
            return;
        }
    }
    // The rest, up from the parents of the nodes the last sweep found. A wide node may be
    // checked once per child; it resumes where its last check stopped.
    let mut candidates = found;
    let mut resume: HashMap<u32, usize> = HashMap::new();
    while let Some(c) = candidates.pop() {
        let p = pred[c as usize];
        if !s.open(c, p) {
            continue;
        }
        let succ = g.successors(c);
        let from = if succ.len() >= WIDE {
            resume.get(&c).copied().unwrap_or(0)
        } else {
            0
        };
        match succ[from..].iter().position(|&w| !s.hanging.get(w)) {
            Some(i) if succ.len() >= WIDE => {
                resume.insert(c, from + i);
            }
            Some(_) => {}
            None => {
                s.hang(c);
                candidates.push(p);
            }
        }
    }
}

/// Computes the immediate dominator of every node of `g` reachable from `root`.
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
    let mut ticks = Ticks {
        done,
        pending: 0,
        reported: 0,
    };
    assert!(
        (root as usize) < n,
        "dominator root {root} in a graph of {n} nodes"
    );

    // Pass 0: hanging trees, their sizes summed as they are found. `pred` keeps each hanging
    // node's only predecessor, its immediate dominator.
    let mut pred = only_predecessors(g, root);
    let mut settler = Settler {
        g,
        shallow: &shallow,
        retained: Retained::zeroed(n),
        hanging: Bits::new(n),
        count: 0,
        summed: Bits::new(n),
    };
    hanging_trees(&pred, &mut settler);
    let Settler {
        mut retained,
        hanging,
        count: hanging_count,
        summed,
        ..
    } = settler;
    drop(summed);
    // Tops of hanging trees give their sizes to their parents (which do not hang). Nodes
    // with several predecessors are "joins".
    let mut join = Bits::new(n);
    for v in 0..n as u32 {
        let p = pred[v as usize];
        if p == SHARED {
            join.set(v);
        } else if hanging.get(v) && !hanging.get(p) {
            retained.add(p as usize, retained.get(v));
        }
    }
    ticks.pass_done(n as u64);

    // Pass 1: depth-first search from the root over the nodes that do not hang, numbering
    // them in preorder. For those nodes `pred` holds the number now (NONE: not reached).
    // `vertex`: number -> node. `idom` holds each number's spanning-tree parent for now,
    // `semi` the count of the node's successors already looked at (the search's "stack" is
    // the parent chain).
    for (v, p) in pred.iter_mut().enumerate() {
        if !hanging.get(v as u32) {
            *p = NONE;
        }
    }
    let num = &mut pred;
    let rest = n - hanging_count;
    let mut vertex: Vec<u32> = Vec::with_capacity(rest);
    let mut idom: Vec<u32> = Vec::with_capacity(rest);
    let mut semi: Vec<u32> = Vec::with_capacity(rest);
    num[root as usize] = 0;
    vertex.push(root);
    idom.push(0);
    semi.push(0);
    let mut cur = 0usize;
    loop {
        let v = vertex[cur] as usize;
        let std::ops::Range { start, end } = g.offsets.range(v);
        let mut p = start + semi[cur] as usize;
        let mut next = None;
        while p < end {
            let w = g.targets[p];
            p += 1;
            if !hanging.get(w) && num[w as usize] == NONE {
                next = Some(w);
                break;
            }
        }
        // Out-degrees fit in u32 (the builder checks), so the cursor does too.
        semi[cur] = (p - start) as u32;
        match next {
            Some(w) => {
                let k = vertex.len();
                num[w as usize] = k as u32;
                vertex.push(w);
                idom.push(cur as u32);
                semi.push(0);
                cur = k;
                ticks.tick();
            }
            None if cur == 0 => break,
            None => cur = idom[cur] as usize,
        }
    }
    let r = vertex.len();
    ticks.pass_done(n as u64);

    // The reverse graph over reached nodes with several predecessors, in preorder numbers
    // (a node with one predecessor has its parent as semidominator). Every successor of a
    // reached node that does not hang is reached, and predecessors that are not reached are
    // left out.
    let mut rev_off = vec![0u64; r + 1];
    for &v in &vertex {
        for &w in g.successors(v) {
            if join.get(w) {
                rev_off[num[w as usize] as usize] += 1;
            }
        }
    }
    let mut total = 0u64;
    for slot in &mut rev_off[..r] {
        total += *slot;
        *slot = total;
    }
    rev_off[r] = total;
    let mut rev_src = vec![0u32; total as usize];
    for (i, &v) in vertex.iter().enumerate() {
        for &w in g.successors(v) {
            if join.get(w) {
                let j = num[w as usize] as usize;
                rev_off[j] -= 1;
                rev_src[rev_off[j] as usize] = i as u32;
            }
        }
    }
    drop(join);
    ticks.pass_done(n as u64);

    // Pass 2: semidominators, in decreasing preorder. `anc` starts as the parent array and
    // is compressed in place; a number `x` is linked (processed) once `x > w`. `best[x]` is
    // the smallest semidominator on the compressed path from `x` up to, not including,
    // `anc[x]` (a number's own value until processed).
    let mut anc = idom.clone();
    let mut best: Vec<u32> = (0..r as u32).collect();
    let mut stack = Vec::new();
    for w in (1..r).rev() {
        let last_linked = (w + 1) as u32;
        let mut s = idom[w];
        for &v in &rev_src[rev_off[w] as usize..rev_off[w + 1] as usize] {
            let b = eval(v, last_linked, &mut anc, &mut best, &mut stack);
            s = s.min(b);
        }
        semi[w] = s;
        best[w] = s;
        ticks.tick();
    }
    ticks.pass_done(n as u64);
    drop(rev_src);
    drop(rev_off);
    drop(anc);
    drop(best);
    drop(stack);

    // Pass 3: the immediate dominator is the nearest common ancestor, in the dominator
    // tree built so far, of the parent and the semidominator.
    for w in 1..r {
        let mut c = idom[w];
        while c > semi[w] {
            c = idom[c as usize];
        }
        idom[w] = c;
    }
    drop(semi);

    // Retained sizes of the reached nodes that do not hang (hanging children are in
    // already), children before parents: decreasing preorder.
    for &v in &vertex {
        retained.add(v as usize, shallow(v));
    }
    for w in (1..r).rev() {
        let (v, d) = (vertex[w], vertex[idom[w] as usize]);
        retained.add(d as usize, retained.get(v));
    }

    // Back to node ids in `pred`: numbers become immediate dominators.
    for (i, &v) in vertex.iter().enumerate() {
        pred[v as usize] = vertex[idom[i] as usize];
    }
    drop(idom);
    drop(vertex);

    // What is not reached retains nothing: nodes that do not hang and were not numbered,
    // and the hanging trees under them (walked down from their tops).
    let mut below: Vec<u32> = Vec::new();
    for v in 0..n as u32 {
        let p = pred[v as usize];
        if !hanging.get(v) {
            if p == NONE {
                retained.set(v as usize, 0);
            }
        } else if p != NONE && !hanging.get(p) && pred[p as usize] == NONE {
            below.push(v);
            while let Some(u) = below.pop() {
                pred[u as usize] = NONE;
                retained.set(u as usize, 0);
                below.extend_from_slice(g.successors(u));
            }
        }
    }
    ticks.pass_done(n as u64);
    (Dominators { root, idom: pred }, retained)
}

/// The smallest semidominator on the linked part of the spanning-tree path ending at `v`
/// (`v`'s own number if `v` is not linked yet), compressing that path.
#[inline]
fn eval(v: u32, last_linked: u32, anc: &mut [u32], best: &mut [u32], stack: &mut Vec<u32>) -> u32 {
    let vi = v as usize;
    if anc[vi] < last_linked {
        return best[vi];
    }
    // Collect the path up to, not including, the topmost linked number.
    stack.clear();
    let mut x = vi;
    loop {
        stack.push(x as u32);
        x = anc[x] as usize;
        if anc[x] < last_linked {
            break;
        }
    }
    // Walk back down, pointing every node at the top's ancestor.
    let mut p = x;
    while let Some(y) = stack.pop() {
        let y = y as usize;
        anc[y] = anc[p];
        if best[p] < best[y] {
            best[y] = best[p];
        }
        p = y;
    }
    best[vi]
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

/// Retained bytes per node in 5 bytes each (a low `u32` and a high byte): up to 1 TiB, where
/// larger sums stop.
#[derive(Debug, Clone, Default)]
pub struct Retained {
    low: Vec<u32>,
    high: Vec<u8>,
}

impl Retained {
    /// The largest size held (1 TiB less one byte).
    pub const MAX: u64 = (1 << 40) - 1;

    /// `n` nodes retaining nothing.
    fn zeroed(n: usize) -> Retained {
        Retained {
            low: vec![0; n],
            high: vec![0; n],
        }
    }

    /// Node `v`'s retained bytes.
    pub fn get(&self, v: u32) -> u64 {
        u64::from(self.low[v as usize]) | u64::from(self.high[v as usize]) << 32
    }

    /// Adds to node `v`'s retained bytes.
    fn add(&mut self, v: usize, bytes: u64) {
        self.set(v, self.get(v as u32).saturating_add(bytes));
    }

    /// Sets node `v`'s retained bytes (at most [`Retained::MAX`]).
    fn set(&mut self, v: usize, bytes: u64) {
        (self.low[v], self.high[v]) = Retained::split(bytes);
    }

    /// Bytes (at most [`Retained::MAX`]) as the low 32 bits and the high byte stored.
    fn split(bytes: u64) -> (u32, u8) {
        let b = bytes.min(Retained::MAX);
        (b as u32, (b >> 32) as u8)
    }

    /// Asks the CPU to fetch node `v`'s size ahead of its use (a hint).
    pub fn prefetch(&self, v: u32) {
        if let (Some(l), Some(h)) = (self.low.get(v as usize), self.high.get(v as usize)) {
            super::prefetch(l);
            super::prefetch(h);
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.low.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.low.is_empty()
    }

    /// Every node's retained bytes in one vector (for small graphs).
    pub fn to_vec(&self) -> Vec<u64> {
        (0..self.len() as u32).map(|v| self.get(v)).collect()
    }

    /// The bytes of heap memory the sizes take.
    pub fn heap_size_bytes(&self) -> usize {
        self.low.capacity() * 4 + self.high.capacity()
    }
}

#[cfg(test)]
mod tests;
