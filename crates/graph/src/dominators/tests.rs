//! Unit tests of the dominators and retained sizes on small hand-made graphs.

use super::*;

/// Retained sizes from the root with these shallow sizes.
fn retained(g: &Graph, root: u32, shallow: &[u64]) -> Vec<u64> {
    dominators_and_retained(g, root, |v| shallow[v as usize])
        .1
        .to_vec()
}

/// The reachable nodes, in id order.
fn reachable(d: &Dominators) -> Vec<u32> {
    (0..d.node_count() as u32)
        .filter(|&v| d.is_reachable(v))
        .collect()
}

/// Immediate dominators of every node, `None` for root and unreachable nodes.
fn idoms(g: &Graph, root: u32) -> Vec<Option<u32>> {
    let d = dominators(g, root);
    (0..g.node_count() as u32).map(|v| d.idom(v)).collect()
}

/// Progress adds up to five passes of the node count, reported in pieces of at most
/// [`REPORT_EVERY`], and reporting changes nothing in the result.
#[test]
fn progress_adds_up_to_five_passes_of_the_nodes() {
    use std::sync::atomic::{AtomicU64, Ordering};
    // A long chain with a side branch and an unreachable tail: every pass has work.
    let n = 3 * REPORT_EVERY as usize + 17;
    let mut edges: Vec<(u32, u32)> = (1..n as u32 - 5).map(|v| (v - 1, v)).collect();
    edges.push((0, n as u32 - 6));
    edges.extend((n as u32 - 5..n as u32 - 1).map(|v| (v, v + 1)));
    let g = Graph::from_edges(n, &edges);
    let sum = AtomicU64::new(0);
    let largest = AtomicU64::new(0);
    let shallow = |v: u32| u64::from(v % 7);
    let (d, r) = dominators_and_retained_reporting(&g, 0, shallow, &|k| {
        sum.fetch_add(k, Ordering::Relaxed);
        largest.fetch_max(k, Ordering::Relaxed);
    });
    assert_eq!(sum.load(Ordering::Relaxed), 5 * n as u64);
    assert!(largest.load(Ordering::Relaxed) <= n as u64);
    let (d2, r2) = dominators_and_retained(&g, 0, shallow);
    assert_eq!(r.to_vec(), r2.to_vec());
    assert!((0..n as u32).all(|v| d.idom(v) == d2.idom(v)));
}

#[test]
fn diamond() {
    let g = Graph::from_edges(4, &[(0, 1), (0, 2), (1, 3), (2, 3)]);
    let d = dominators(&g, 0);
    assert_eq!(idoms(&g, 0), [None, Some(0), Some(0), Some(0)]);
    assert_eq!(retained(&g, d.root(), &[1, 2, 4, 8]), [15, 2, 4, 8]);
    assert_eq!(reachable(&d), [0, 1, 2, 3]);
    let (off, ch) = d.dominator_tree_children();
    assert_eq!(off, [0, 3, 3, 3, 3]);
    assert_eq!(ch, [1, 2, 3]);
}

#[test]
fn chain() {
    let g = Graph::from_edges(5, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
    let d = dominators(&g, 0);
    assert_eq!(idoms(&g, 0), [None, Some(0), Some(1), Some(2), Some(3)]);
    assert_eq!(
        retained(&g, d.root(), &[1, 2, 4, 8, 16]),
        [31, 30, 28, 24, 16]
    );
    assert_eq!(reachable(&d), [0, 1, 2, 3, 4]);
    let (off, ch) = d.dominator_tree_children();
    assert_eq!(off, [0, 1, 2, 3, 4, 4]);
    assert_eq!(ch, [1, 2, 3, 4]);
}

#[test]
fn natural_loop() {
    // 0 -> 1 -> 2 -> 3 -> 1, 2 -> 4
    let g = Graph::from_edges(5, &[(0, 1), (1, 2), (2, 3), (3, 1), (2, 4)]);
    let d = dominators(&g, 0);
    assert_eq!(idoms(&g, 0), [None, Some(0), Some(1), Some(2), Some(2)]);
    assert_eq!(
        retained(&g, d.root(), &[1, 2, 4, 8, 16]),
        [31, 30, 28, 8, 16]
    );
}

#[test]
fn loop_with_side_entry() {
    // 0 -> 1 -> 2 -> 3 -> 1 and 0 -> 3: the loop 1-2-3 has two entries.
    let g = Graph::from_edges(4, &[(0, 1), (1, 2), (2, 3), (3, 1), (0, 3)]);
    let d = dominators(&g, 0);
    assert_eq!(idoms(&g, 0), [None, Some(0), Some(1), Some(0)]);
    assert_eq!(retained(&g, d.root(), &[1, 2, 4, 8]), [15, 6, 4, 8]);
}

#[test]
fn irreducible_two_entry_loop() {
    let g = Graph::from_edges(3, &[(0, 1), (0, 2), (1, 2), (2, 1)]);
    let d = dominators(&g, 0);
    assert_eq!(idoms(&g, 0), [None, Some(0), Some(0)]);
    assert_eq!(retained(&g, d.root(), &[1, 2, 4]), [7, 2, 4]);
}

#[test]
fn hanging_trees_under_a_wide_node() {
    // 0 -> 1 (wide) -> 2..=k, each i -> i + k - 1 (a leaf); 0 -> 2 makes 2 a join.
    let k = 5000u32;
    let mut edges = vec![(0, 1), (0, 2)];
    edges.extend((2..=k).map(|i| (1, i)));
    edges.extend((2..=k).map(|i| (i, i + k - 1)));
    let g = Graph::from_edges((2 * k) as usize, &edges);
    let d = dominators(&g, 0);
    assert_eq!(d.idom(1), Some(0));
    assert_eq!(d.idom(2), Some(0));
    assert!((3..=k).all(|i| d.idom(i) == Some(1)));
    assert!((2..=k).all(|i| d.idom(i + k - 1) == Some(i)));
    assert_eq!(reachable(&d).len(), (2 * k) as usize);
}

#[test]
fn self_loops() {
    let g = Graph::from_edges(3, &[(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)]);
    let d = dominators(&g, 0);
    assert_eq!(idoms(&g, 0), [None, Some(0), Some(1)]);
    assert_eq!(retained(&g, d.root(), &[1, 2, 4]), [7, 6, 4]);
}

#[test]
fn unreachable_nodes() {
    // 2 and 3 point into the reachable part but nothing reaches them.
    let g = Graph::from_edges(5, &[(0, 1), (2, 1), (3, 2), (1, 4), (3, 4)]);
    let d = dominators(&g, 0);
    assert_eq!(idoms(&g, 0), [None, Some(0), None, None, Some(1)]);
    assert!(d.is_reachable(0) && d.is_reachable(1) && d.is_reachable(4));
    assert!(!d.is_reachable(2) && !d.is_reachable(3));
    assert_eq!(
        retained(&g, d.root(), &[1, 2, 4, 8, 16]),
        [19, 18, 0, 0, 16]
    );
    assert_eq!(reachable(&d), [0, 1, 4]);
    let (off, ch) = d.dominator_tree_children();
    assert_eq!(off, [0, 1, 2, 2, 2, 2]);
    assert_eq!(ch, [1, 4]);
}

#[test]
fn parallel_edges() {
    let g = Graph::from_edges(
        4,
        &[
            (0, 1),
            (0, 1),
            (0, 1),
            (1, 2),
            (1, 2),
            (0, 2),
            (2, 3),
            (2, 3),
        ],
    );
    let d = dominators(&g, 0);
    assert_eq!(idoms(&g, 0), [None, Some(0), Some(0), Some(2)]);
    assert_eq!(retained(&g, d.root(), &[1, 2, 4, 8]), [15, 2, 12, 8]);
}

#[test]
fn root_without_edges() {
    let g = Graph::from_edges(3, &[(0, 1), (2, 1)]);
    let d = dominators(&g, 1);
    assert_eq!(d.root(), 1);
    assert_eq!(idoms(&g, 1), [None, None, None]);
    assert!(d.is_reachable(1) && !d.is_reachable(0) && !d.is_reachable(2));
    assert_eq!(reachable(&d), [1]);
    assert_eq!(retained(&g, d.root(), &[1, 2, 4]), [0, 2, 0]);
    let (off, ch) = d.dominator_tree_children();
    assert_eq!(off, [0, 0, 0, 0]);
    assert!(ch.is_empty());
}

#[test]
fn single_node() {
    let g = Graph::from_edges(1, &[]);
    let d = dominators(&g, 0);
    assert_eq!(d.idom(0), None);
    assert!(d.is_reachable(0));
    assert_eq!(retained(&g, d.root(), &[5]), [5]);
}

#[test]
fn root_in_the_middle() {
    // Edges back into the root; the root is not node 0.
    let g = Graph::from_edges(4, &[(2, 0), (0, 1), (1, 2), (2, 3), (3, 2), (1, 3)]);
    assert_eq!(idoms(&g, 2), [Some(2), Some(0), None, Some(2)]);
}

#[test]
fn lengauer_tarjan_paper_example() {
    // The flow graph of Lengauer & Tarjan (1979), figure 1.
    const R: u32 = 0;
    const A: u32 = 1;
    const B: u32 = 2;
    const C: u32 = 3;
    const D: u32 = 4;
    const E: u32 = 5;
    const F: u32 = 6;
    const G: u32 = 7;
    const H: u32 = 8;
    const I: u32 = 9;
    const J: u32 = 10;
    const K: u32 = 11;
    const L: u32 = 12;
    let edges = [
        (R, A),
        (R, B),
        (R, C),
        (A, D),
        (B, A),
        (B, D),
        (B, E),
        (C, F),
        (C, G),
        (D, L),
        (E, H),
        (F, I),
        (G, I),
        (G, J),
        (H, E),
        (H, K),
        (I, K),
        (J, I),
        (K, I),
        (K, R),
        (L, H),
    ];
    let g = Graph::from_edges(13, &edges);
    let want = [
        None,
        Some(R),
        Some(R),
        Some(R),
        Some(R),
        Some(R),
        Some(C),
        Some(C),
        Some(R),
        Some(R),
        Some(G),
        Some(R),
        Some(D),
    ];
    assert_eq!(idoms(&g, R), want);
    let shallow: Vec<u64> = (0..13).map(|i| 1u64 << i).collect();
    let ret = retained(&g, R, &shallow);
    assert_eq!(ret[R as usize], (1 << 13) - 1);
    assert_eq!(
        ret[C as usize],
        shallow[3] + shallow[6] + shallow[7] + shallow[10]
    );
    assert_eq!(ret[G as usize], shallow[7] + shallow[10]);
    assert_eq!(ret[D as usize], shallow[4] + shallow[12]);
    assert_eq!(ret[I as usize], shallow[9]);
}

#[test]
fn retained_sizes_saturate() {
    let g = Graph::from_edges(3, &[(0, 1), (0, 2)]);
    let d = dominators(&g, 0);
    assert_eq!(
        retained(&g, d.root(), &[1, u64::MAX, 1]),
        [Retained::MAX, Retained::MAX, 1]
    );
}

#[test]
#[should_panic(expected = "dominator root 3 in a graph of 3 nodes")]
fn root_out_of_range() {
    dominators(&Graph::from_edges(3, &[]), 3);
}

/// A reused array over preorder numbers keeps its allocation, so the phases' memory adds up
/// as the table at the top of the module says.
#[test]
fn reuse_keeps_the_allocation() {
    let cursors = ByPre(vec![7u32; 1000]);
    let at = cursors.0.as_ptr() as usize;
    let semi = cursors.reuse(Pre::ROOT);
    assert_eq!(semi.0.as_ptr() as usize, at);
    assert!(semi.0.iter().all(|&k| k == Pre::ROOT));
}
