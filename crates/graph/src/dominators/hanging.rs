//! Phase 0: the trees hanging off the rest of the graph, each node with one predecessor and
//! every successor such a node too, settled with their retained sizes before the search.

use std::collections::HashMap;

use super::{atomic, pieces, Bits, Graph, OnlyPreds, Retained, NONE, SHARED};

/// Each node's only predecessor: [`NONE`] for none, [`SHARED`] for several (and for the
/// root). Parallel edges from one predecessor count once. Runs on every core, each fetching
/// the slots of the targets [`PREDS_AHEAD`] edges ahead: a compare-and-swap waits for its
/// slot, and the next ones are then already on their way.
pub(super) fn only_predecessors(g: &Graph, root: u32) -> OnlyPreds {
    use rayon::prelude::*;
    use std::sync::atomic::Ordering::Relaxed;
    let n = g.node_count();
    let mut pred = vec![NONE; n];
    {
        let view = atomic(&mut pred);
        pieces(0..n, 1 << 14).into_par_iter().for_each(|piece| {
            let all = g.successors_of(piece.clone());
            let mut ahead = all.iter().skip(PREDS_AHEAD);
            for v in piece.start as u32..piece.end as u32 {
                for &w in g.successors(v) {
                    if let Some(p) = ahead.next().and_then(|&a| view.get(a as usize)) {
                        crate::prefetch(p);
                    }
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
    OnlyPreds(pred)
}

/// How many edges ahead the only-predecessor pass fetches its targets' slots.
const PREDS_AHEAD: usize = 16;

/// Out-degree from which a node's scan position is remembered between checks.
const WIDE: usize = 64;

/// Sweeps over all nodes in id order before the remaining hanging nodes are found from a
/// worklist: sweeps read the graph sequentially, the worklist chases predecessors.
const SWEEPS: usize = 3;

/// How many nodes ahead (of those not hanging yet) a sweep asks for their successors' sizes.
const SWEEP_AHEAD: usize = 12;

/// Nodes per block of a sweep: checked in parallel, then settled in order.
const SWEEP_BLOCK: usize = 1 << 20;

/// Fewest nodes one core checks at a time in a sweep.
const SWEEP_PIECE: usize = 1 << 14;

/// Stands for the sum of a hanging node with over [`FEW`] successors, summed when settled.
const WIDE_SUM: u64 = u64::MAX;

/// Out-degree up to which a hanging node's repeated successors are found by looking back.
const FEW: usize = 16;

/// The hanging trees found, with their retained sizes.
pub(super) struct Hanging {
    /// The hanging nodes.
    pub(super) nodes: Bits,
    /// How many.
    pub(super) count: usize,
    /// Retained sizes: a hanging node's final one, zero for the others.
    pub(super) retained: Retained,
}

/// Finds the trees hanging off the rest of the graph and sums their retained sizes bottom-up:
/// the leaves at once, then sweeps over all nodes in id order, then a worklist up from the
/// last sweep's finds.
pub(super) fn hanging_trees<F: Fn(u32) -> u64 + Sync>(
    g: &Graph,
    preds: &OnlyPreds,
    shallow: &F,
) -> Hanging {
    let n = g.node_count();
    let mut s = Settler {
        g,
        preds,
        shallow,
        retained: Retained::zeroed(n),
        hanging: Bits::new(n),
        count: 0,
        summed: Bits::new(n),
    };
    if s.settle_leaves() > 0 {
        let found = s.sweep();
        s.climb(found);
    }
    Hanging {
        nodes: s.hanging,
        count: s.count,
        retained: s.retained,
    }
}

/// Tops of hanging trees give their sizes to their parents (which do not hang). Returns the
/// joins, nodes with several predecessors (and the root). A top is found from its parent,
/// among the successors of the nodes that do not hang, which are few where most of the graph
/// hangs: no node's parent is looked up at random.
pub(super) fn give_tops_to_parents(
    g: &Graph,
    preds: &OnlyPreds,
    hanging: &Bits,
    retained: &mut Retained,
) -> Bits {
    use rayon::prelude::*;
    let n = retained.len();
    let join = Bits(
        (preds.0.par_chunks(64))
            .map(|c| (c.iter().enumerate()).fold(0, |w, (i, &p)| w | u64::from(p == SHARED) << i))
            .collect(),
    );
    let mut tops = Vec::new();
    for p in hanging.missing(0..n) {
        tops.clear();
        tops.extend(
            (g.successors(p).iter()).filter(|&&w| hanging.get(w) && preds.single(w) == Some(p)),
        );
        // Parallel edges from one parent count once.
        tops.sort_unstable();
        tops.dedup();
        for &w in &tops {
            retained.add(p as usize, retained.get(w));
        }
    }
    join
}

/// Sums retained sizes up hanging trees as their nodes are found, children first.
struct Settler<'a, F: Fn(u32) -> u64> {
    g: &'a Graph,
    preds: &'a OnlyPreds,
    shallow: &'a F,
    retained: Retained,
    /// The hanging nodes found so far.
    hanging: Bits,
    /// How many.
    count: usize,
    /// Successors of nodes with over [`FEW`] successors whose size went to their parent
    /// already (parallel edges count once).
    summed: Bits,
}

impl<F: Fn(u32) -> u64 + Sync> Settler<'_, F> {
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

    /// Whether `v` has one predecessor and is not settled yet: it may hang.
    #[inline]
    fn open(&self, v: u32) -> bool {
        self.preds.single(v).is_some() && !self.hanging.get(v)
    }

    /// Whether `v`, not settled yet and not a leaf, hangs: it has one predecessor and all its
    /// successors hang. Until the tops give their sizes to their parents, a node has a size
    /// exactly when it hangs: a successor's mark is read on the cache line of its size.
    fn hangs(&self, v: u32) -> bool {
        if !self.open(v) {
            return false;
        }
        let succ = self.g.successors(v);
        !succ.is_empty() && succ.iter().all(|&w| self.retained.has_size(w))
    }

    /// Settles the leaves with one predecessor, which depend on no other node: all at once,
    /// in 64-aligned pieces on every core. Returns how many.
    fn settle_leaves(&mut self) -> usize {
        let (g, preds, shallow) = (self.g, self.preds, self.shallow);
        let n = g.node_count();
        let leaves = settle_pieces(&mut self.hanging, &mut self.retained, 0..n, |first| {
            let piece = first as u32..(first + SWEEP_PIECE).min(n) as u32;
            piece
                .filter(|&v| preds.single(v).is_some() && g.offsets.range(v as usize).is_empty())
                .map(|v| (v, shallow(v)))
        });
        self.count += leaves;
        leaves
    }

    /// Sweeps after the leaves, each settling the nodes whose successors all hang (including
    /// those found in earlier blocks of the same sweep), until one finds nothing or
    /// [`SWEEPS`] have run. Returns the parents of the last sweep's finds.
    fn sweep(&mut self) -> Vec<u32> {
        let n = self.g.node_count();
        let mut found = Vec::new();
        for sweep in 1..SWEEPS {
            let before = self.count;
            for block in (0..n).step_by(SWEEP_BLOCK) {
                let end = (block + SWEEP_BLOCK).min(n);
                let last = sweep == SWEEPS - 1;
                self.sweep_block(block..end, last.then_some(&mut found));
            }
            if self.count == before {
                break;
            }
        }
        found
    }

    /// Settles the nodes of `block` that hang: checked and summed on every core against what
    /// hung before the block, then settled. Pushes their parents to `found` if given.
    fn sweep_block(&mut self, block: std::ops::Range<usize>, mut found: Option<&mut Vec<u32>>) {
        use rayon::prelude::*;
        let view = &*self;
        let sums: Vec<Vec<(u32, u64)>> = pieces(block.clone(), SWEEP_PIECE)
            .into_par_iter()
            .map(|piece| {
                let mut out = Vec::new();
                // Only the nodes that do not hang yet are looked at.
                let left = || view.hanging.missing(piece.clone());
                let mut ahead = left().skip(SWEEP_AHEAD);
                for v in left() {
                    // Successors' sizes are read at random: ask ahead.
                    if let Some(a) = ahead.next().filter(|&a| view.open(a)) {
                        for &w in view.g.successors(a) {
                            view.retained.prefetch(w);
                        }
                    }
                    if view.hangs(v) {
                        out.push((v, view.sum_of_few(v).unwrap_or(WIDE_SUM)));
                    }
                }
                out
            })
            .collect();
        // Each piece settles its own nodes on every core; wide nodes, which mark successors,
        // after it, one by one.
        let first = block.start;
        self.count += settle_pieces(&mut self.hanging, &mut self.retained, block, |start| {
            let out = &sums[(start - first) / SWEEP_PIECE];
            out.iter().copied().filter(|x| x.1 != WIDE_SUM)
        });
        for &(v, sum) in sums.iter().flatten() {
            if sum == WIDE_SUM {
                self.hang(v);
            }
            if let Some(found) = found.as_deref_mut() {
                found.extend(self.preds.single(v));
            }
        }
    }

    /// Settles the rest, up from `candidates` (the parents of the last sweep's finds). A wide
    /// node may be checked once per child; it resumes where its last check stopped.
    fn climb(&mut self, mut candidates: Vec<u32>) {
        let mut resume: HashMap<u32, usize> = HashMap::new();
        while let Some(c) = candidates.pop() {
            let Some(p) = self.preds.single(c) else {
                continue;
            };
            if self.hanging.get(c) {
                continue;
            }
            let succ = self.g.successors(c);
            let from = if succ.len() >= WIDE {
                resume.get(&c).copied().unwrap_or(0)
            } else {
                0
            };
            match succ[from..].iter().position(|&w| !self.hanging.get(w)) {
                Some(i) if succ.len() >= WIDE => {
                    resume.insert(c, from + i);
                }
                Some(_) => {}
                None => {
                    self.hang(c);
                    candidates.push(p);
                }
            }
        }
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
    let sizes = &mut retained.bytes[nodes.clone()];
    (words.par_chunks_mut(SWEEP_PIECE / 64))
        .zip(sizes.par_chunks_mut(SWEEP_PIECE))
        .enumerate()
        .map(|(k, (words, sizes))| {
            let first = nodes.start + k * SWEEP_PIECE;
            let mut settled = 0;
            for (v, sum) in sums(first) {
                let i = v as usize - first;
                words[i / 64] |= 1 << (i % 64);
                sizes[i] = Retained::split(sum);
                settled += 1;
            }
            settled
        })
        .sum()
}
