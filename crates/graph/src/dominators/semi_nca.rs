//! Phases 1 to 4 on the nodes that do not hang: the semi-NCA algorithm over preorder numbers
//! (depth-first numbering, semidominators, immediate dominators) and the retained sizes.

use super::{Bits, ByPre, Graph, NodeId, Numbers, Pre, Retained, Ticks};

/// The depth-first spanning tree over the reached nodes that do not hang.
pub(super) struct SpanningTree {
    /// Each number's node.
    pub(super) order: ByPre<NodeId>,
    /// Each number's parent in the tree; the root's is itself.
    pub(super) parent: ByPre<Pre>,
    /// How many of each number's successors the search looked at (its cursor); spare
    /// afterwards.
    pub(super) scanned: ByPre<u32>,
}

/// Phase 1: numbers the nodes that do not hang in `numbers`, in preorder of a depth-first
/// search from `root` (expecting about `rest` of them). The search's stack is the parent
/// chain, each number's cursor kept in `scanned`.
pub(super) fn number_depth_first(
    g: &Graph,
    root: NodeId,
    hanging: &Bits,
    numbers: &mut Numbers,
    rest: usize,
    ticks: &mut Ticks,
) -> SpanningTree {
    let mut order = ByPre::with_capacity(rest);
    let mut parent = ByPre::with_capacity(rest);
    let mut scanned = ByPre::with_capacity(rest);
    numbers.set_pre(root, Pre::ROOT);
    order.push(root);
    parent.push(Pre::ROOT);
    scanned.push(0);
    let mut cur = Pre::ROOT;
    loop {
        let std::ops::Range { start, end } = g.offsets.range(order[cur].0 as usize);
        let mut p = start + scanned[cur] as usize;
        let mut next = None;
        while p < end {
            let w = NodeId(g.targets[p]);
            p += 1;
            if !hanging.get(w.0) && numbers.pre(w) == Pre::NONE {
                next = Some(w);
                break;
            }
        }
        // Out-degrees fit in u32 (the builder checks), so the cursor does too.
        scanned[cur] = (p - start) as u32;
        match next {
            Some(w) => {
                let k = Pre(order.len() as u32);
                numbers.set_pre(w, k);
                order.push(w);
                parent.push(cur);
                scanned.push(0);
                cur = k;
                ticks.tick();
            }
            None if cur == Pre::ROOT => break,
            None => cur = parent[cur],
        }
    }
    SpanningTree {
        order,
        parent,
        scanned,
    }
}

/// The reverse graph over the reached joins (a node with one predecessor has its parent as
/// semidominator), in preorder numbers. Every successor of a reached node that does not hang
/// is reached; predecessors that are not reached are left out.
pub(super) struct JoinPreds {
    /// Number `k`'s predecessors are `sources[offsets[k]..offsets[k + 1]]`.
    offsets: Vec<u64>,
    /// Preorder numbers (plain `u32`, allocated zeroed).
    sources: Vec<u32>,
}

impl JoinPreds {
    /// The predecessors of the `join`s among the numbered nodes.
    pub(super) fn new(g: &Graph, order: &ByPre<NodeId>, numbers: &Numbers, join: &Bits) -> Self {
        let r = order.len();
        let mut offsets = vec![0u64; r + 1];
        for &v in &order.0 {
            for &w in g.successors(v.0) {
                if join.get(w) {
                    offsets[numbers.pre(NodeId(w)).0 as usize] += 1;
                }
            }
        }
        let mut total = 0u64;
        for slot in &mut offsets[..r] {
            total += *slot;
            *slot = total;
        }
        offsets[r] = total;
        let mut sources = vec![0u32; total as usize];
        for (k, v) in Pre::range(0, r).zip(&order.0) {
            for &w in g.successors(v.0) {
                if join.get(w) {
                    let j = numbers.pre(NodeId(w)).0 as usize;
                    offsets[j] -= 1;
                    sources[offsets[j] as usize] = k.0;
                }
            }
        }
        JoinPreds { offsets, sources }
    }

    /// The numbers of `w`'s predecessors, if `w` is a join (none otherwise).
    #[inline]
    fn of(&self, w: Pre) -> impl Iterator<Item = Pre> + '_ {
        let k = w.0 as usize;
        let range = self.offsets[k] as usize..self.offsets[k + 1] as usize;
        self.sources[range].iter().map(|&v| Pre(v))
    }
}

/// Phase 2: each number's semidominator, in decreasing preorder by link-eval, in the buffer
/// of the search's cursors (`spare`). `ancestor` starts as the parent array and is compressed
/// in place; numbers above the current one are linked (processed). `best[x]` is the smallest
/// semidominator on the compressed path from `x` up to, not including, `ancestor[x]` (`x`
/// itself until processed).
pub(super) fn semidominators(
    parent: &ByPre<Pre>,
    preds: &JoinPreds,
    spare: ByPre<u32>,
    ticks: &mut Ticks,
) -> ByPre<Pre> {
    let r = parent.len();
    let mut semi = spare.reuse(Pre::ROOT);
    let mut ancestor = parent.clone();
    let mut best = ByPre(Pre::range(0, r).collect());
    let mut stack = Vec::new();
    for w in Pre::range(1, r).rev() {
        let lowest_linked = Pre(w.0 + 1);
        let mut s = parent[w];
        for v in preds.of(w) {
            s = s.min(eval(v, lowest_linked, &mut ancestor, &mut best, &mut stack));
        }
        semi[w] = s;
        best[w] = s;
        ticks.tick();
    }
    semi
}

/// The smallest semidominator on the linked part of the spanning-tree path ending at `v`
/// (`v` itself if not linked yet), compressing that path. Numbers from `lowest_linked` up are
/// linked.
#[inline]
fn eval(
    v: Pre,
    lowest_linked: Pre,
    ancestor: &mut ByPre<Pre>,
    best: &mut ByPre<Pre>,
    stack: &mut Vec<Pre>,
) -> Pre {
    if ancestor[v] < lowest_linked {
        return best[v];
    }
    // Collect the path up to, not including, the topmost linked number.
    stack.clear();
    let mut x = v;
    loop {
        stack.push(x);
        x = ancestor[x];
        if ancestor[x] < lowest_linked {
            break;
        }
    }
    // Walk back down, pointing every number at the top's ancestor.
    let mut p = x;
    while let Some(y) = stack.pop() {
        ancestor[y] = ancestor[p];
        if best[p] < best[y] {
            best[y] = best[p];
        }
        p = y;
    }
    best[v]
}

/// Phase 3: each number's immediate dominator, the nearest common ancestor of its parent and
/// its semidominator in the dominator tree built so far, in increasing preorder in the
/// parents' buffer (below the current number it holds immediate dominators, from it on still
/// parents).
pub(super) fn immediate_dominators(parent: ByPre<Pre>, semi: &ByPre<Pre>) -> ByPre<Pre> {
    let mut idom = parent;
    for w in Pre::range(1, idom.len()) {
        let mut c = idom[w];
        while c > semi[w] {
            c = idom[c];
        }
        idom[w] = c;
    }
    idom
}

/// Phase 4: adds to the retained sizes of the numbered nodes (hanging children are in
/// already) their shallow sizes and their dominator-tree children's, children before parents:
/// decreasing preorder.
pub(super) fn add_retained(
    order: &ByPre<NodeId>,
    idom: &ByPre<Pre>,
    shallow: impl Fn(u32) -> u64,
    retained: &mut Retained,
) {
    for &v in &order.0 {
        retained.add(v.0 as usize, shallow(v.0));
    }
    for w in Pre::range(1, order.len()).rev() {
        let (v, d) = (order[w], order[idom[w]]);
        retained.add(d.0 as usize, retained.get(v.0));
    }
}
