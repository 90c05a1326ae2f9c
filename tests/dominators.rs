//! Dominators and retained sizes checked against petgraph's `simple_fast` on generated graphs,
//! and one large graph that would overflow the stack if anything recursed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use coreheap_graph::{dominators, dominators_and_retained, Dominators, Graph, GraphBuilder};
use petgraph::algo::dominators::simple_fast;

/// Counts this thread's live heap bytes and their peak, so tests running in parallel on
/// other threads do not disturb a measurement.
struct CountingAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: thread-local storage may already be gone while a thread exits.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Live bytes on this thread, and the peak since the last `reset_peak`.
fn live_and_peak() -> (isize, isize) {
    (LIVE.with(Cell::get), PEAK.with(Cell::get))
}

fn reset_peak() {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
}

/// xorshift64*: small, deterministic, good enough for test graphs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n`; `n > 0`.
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }
    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }
    /// A random permutation of `0..n`.
    fn permutation(&mut self, n: u32) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n).collect();
        for i in (1..n as usize).rev() {
            let j = self.below(i as u32 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// A graph with its root and shallow sizes.
struct Case {
    n: u32,
    edges: Vec<(u32, u32)>,
    root: u32,
}

impl Case {
    /// The same graph with node ids scrambled, so structure does not follow id order.
    fn scrambled(self, rng: &mut Rng) -> Case {
        let p = rng.permutation(self.n);
        let mut edges: Vec<(u32, u32)> = self
            .edges
            .iter()
            .map(|&(a, b)| (p[a as usize], p[b as usize]))
            .collect();
        // Shuffle edge order too: successor order decides the depth-first tree.
        for i in (1..edges.len()).rev() {
            let j = rng.below(i as u32 + 1) as usize;
            edges.swap(i, j);
        }
        Case {
            n: self.n,
            root: p[self.root as usize],
            edges,
        }
    }
}

/// Compares every node's immediate dominator with petgraph's, retained sizes with a naive
/// walk up petgraph's dominator chains, and the other accessors with each other.
fn check(case: &Case, rng: &mut Rng, what: &str) {
    let n = case.n as usize;
    let g = Graph::from_edges(n, &case.edges);
    assert_eq!(g.edge_count(), case.edges.len());
    let ours = dominators(&g, case.root);

    // petgraph's algorithm on the same CSR graph (graph::visit), not on a copy.
    let theirs = simple_fast(&g, case.root);
    let their_idom = |v: u32| theirs.immediate_dominator(v);

    let mut reachable = 0usize;
    for v in 0..case.n {
        assert_eq!(ours.idom(v), their_idom(v), "{what}: idom of node {v}");
        let their_reach = v == case.root || their_idom(v).is_some();
        assert_eq!(
            ours.is_reachable(v),
            their_reach,
            "{what}: reachability of {v}"
        );
        reachable += usize::from(their_reach);
    }

    check_tree(&ours, &g, reachable, what);

    let shallow: Vec<u64> = (0..n).map(|_| rng.next() % 1000).collect();
    let mut naive = vec![0u64; n];
    for w in 0..case.n {
        if !ours.is_reachable(w) {
            continue;
        }
        let mut x = Some(w);
        while let Some(v) = x {
            naive[v as usize] += shallow[w as usize];
            x = their_idom(v);
        }
    }
    let (again, retained) = dominators_and_retained(&g, case.root, |v| shallow[v as usize]);
    assert_eq!(retained.to_vec(), naive, "{what}: retained sizes");
    for v in 0..case.n {
        assert_eq!(
            again.idom(v),
            ours.idom(v),
            "{what}: idom of {v} with sizes"
        );
    }
}

/// The tree CSR has exactly the idom edges of the reachable nodes, children in node order.
fn check_tree(d: &Dominators, g: &Graph, reachable: usize, what: &str) {
    let n = g.node_count();
    let (off, ch) = d.dominator_tree_children();
    assert_eq!(off.len(), n + 1);
    assert_eq!(ch.len(), reachable.saturating_sub(1));
    for v in 0..n as u32 {
        let kids = &ch[off[v as usize] as usize..off[v as usize + 1] as usize];
        for &k in kids {
            assert_eq!(d.idom(k), Some(v), "{what}: tree child {k} of {v}");
        }
        assert!(
            kids.windows(2).all(|w| w[0] < w[1]),
            "{what}: children of {v} not in node order"
        );
    }
}

/// Uniformly random edges; reachability from the root is whatever it happens to be.
fn random_graph(rng: &mut Rng, n: u32, m: usize) -> Case {
    let edges = (0..m).map(|_| (rng.below(n), rng.below(n))).collect();
    Case {
        n,
        edges,
        root: rng.below(n),
    }
}

/// A random tree from node 0 (so all is reachable) plus back edges to ancestors-or-earlier
/// nodes and forward cross edges: many loops, most of them with several entries.
fn back_edge_graph(rng: &mut Rng, n: u32, back: usize, cross: usize) -> Case {
    let mut edges = Vec::new();
    for i in 1..n {
        // Mostly close parents, giving deep trees and long compression paths.
        let lo = if rng.chance(70) {
            i.saturating_sub(3)
        } else {
            0
        };
        edges.push((lo + rng.below(i - lo), i));
    }
    if n > 1 {
        for _ in 0..back {
            let a = 1 + rng.below(n - 1);
            edges.push((a, rng.below(a + 1)));
        }
        for _ in 0..cross {
            let a = rng.below(n - 1);
            edges.push((a, a + 1 + rng.below(n - a - 1)));
        }
    }
    Case { n, edges, root: 0 }
}

/// Strongly connected blocks entered at several points, chained and nested: irreducible
/// control flow in the sense of loops with more than one entry.
fn multi_entry_loops(rng: &mut Rng, blocks: u32, size: u32) -> Case {
    let n = 1 + blocks * size;
    let mut edges = Vec::new();
    for b in 0..blocks {
        let base = 1 + b * size;
        // A cycle through the block, plus a chord or two.
        for k in 0..size {
            edges.push((base + k, base + (k + 1) % size));
        }
        for _ in 0..size / 3 {
            edges.push((base + rng.below(size), base + rng.below(size)));
        }
        // Two or more entries from the root or from earlier blocks.
        for _ in 0..2 + rng.below(3) {
            let from = if b == 0 || rng.chance(30) {
                0
            } else {
                1 + rng.below(b * size)
            };
            edges.push((from, base + rng.below(size)));
        }
        // Sometimes an exit back into an earlier block, nesting the loops.
        if b > 0 && rng.chance(50) {
            edges.push((base + rng.below(size), 1 + rng.below(b * size)));
        }
    }
    Case { n, edges, root: 0 }
}

/// A reachable part and an unreachable part; the unreachable part has edges into the
/// reachable part (extra predecessors that must be ignored) but never the reverse.
fn with_unreachable_part(rng: &mut Rng, n: u32, density: u32) -> Case {
    let k = 1 + rng.below(n);
    let m = (n * density) as usize;
    let mut edges = Vec::new();
    for _ in 0..m {
        let a = rng.below(n);
        let b = if a < k { rng.below(k) } else { rng.below(n) };
        edges.push((a, b));
    }
    Case {
        n,
        edges,
        root: rng.below(k),
    }
}

#[test]
fn random_sparse_graphs_match_petgraph() {
    let mut rng = Rng::new(1);
    for seed in 0..300u64 {
        let n = match seed % 4 {
            0 => 1 + rng.below(8),
            1 => 1 + rng.below(60),
            2 => 1 + rng.below(400),
            _ => 1 + rng.below(2000),
        };
        // 1 to 3 edges per node on average: sparse enough for unreachable nodes.
        let m = (n as usize) * (1 + rng.below(3) as usize);
        let case = random_graph(&mut rng, n, m);
        check(&case, &mut rng, &format!("sparse seed {seed} n {n}"));
    }
}

#[test]
fn random_dense_graphs_match_petgraph() {
    let mut rng = Rng::new(2);
    for seed in 0..60u64 {
        let n = 1 + rng.below(if seed % 3 == 0 { 40 } else { 600 });
        let m = (n as usize) * (4 + rng.below(20) as usize);
        let case = random_graph(&mut rng, n, m);
        check(&case, &mut rng, &format!("dense seed {seed} n {n}"));
    }
    // A few complete-ish small graphs.
    for n in 1..12u32 {
        let edges = (0..n).flat_map(|a| (0..n).map(move |b| (a, b))).collect();
        let case = Case { n, edges, root: 0 }.scrambled(&mut rng);
        check(&case, &mut rng, &format!("complete n {n}"));
    }
}

#[test]
fn back_edge_graphs_match_petgraph() {
    let mut rng = Rng::new(3);
    for seed in 0..200u64 {
        let n = 1 + rng.below(if seed % 2 == 0 { 100 } else { 2000 });
        let back = (n as usize) * rng.below(4) as usize / 2;
        let cross = (n as usize) * rng.below(3) as usize / 4;
        let case = back_edge_graph(&mut rng, n, back, cross);
        let case = if seed % 3 == 0 {
            case
        } else {
            case.scrambled(&mut rng)
        };
        check(&case, &mut rng, &format!("back-edge seed {seed} n {n}"));
    }
}

#[test]
fn irreducible_graphs_match_petgraph() {
    let mut rng = Rng::new(4);
    // The smallest irreducible graph, and variants with more entries and nesting.
    let fixed: Vec<(u32, Vec<(u32, u32)>)> = vec![
        (3, vec![(0, 1), (0, 2), (1, 2), (2, 1)]),
        (4, vec![(0, 1), (0, 2), (1, 2), (2, 1), (1, 3), (2, 3)]),
        (4, vec![(0, 1), (1, 2), (1, 3), (2, 3), (3, 2)]),
        (
            5,
            vec![(0, 1), (0, 2), (0, 3), (1, 2), (2, 3), (3, 1), (3, 4)],
        ),
        (
            6,
            vec![
                (0, 1),
                (0, 4),
                (1, 2),
                (2, 3),
                (3, 1),
                (4, 2),
                (4, 5),
                (5, 4),
            ],
        ),
    ];
    for (i, (n, edges)) in fixed.into_iter().enumerate() {
        let case = Case { n, edges, root: 0 };
        check(&case, &mut rng, &format!("fixed irreducible {i}"));
        for s in 0..10 {
            let c = Case {
                n: case.n,
                edges: case.edges.clone(),
                root: 0,
            }
            .scrambled(&mut rng);
            check(&c, &mut rng, &format!("fixed irreducible {i} scramble {s}"));
        }
    }
    for seed in 0..150u64 {
        let blocks = 1 + rng.below(if seed % 2 == 0 { 6 } else { 60 });
        let size = 2 + rng.below(if seed % 3 == 0 { 4 } else { 30 });
        let case = multi_entry_loops(&mut rng, blocks, size).scrambled(&mut rng);
        check(&case, &mut rng, &format!("multi-entry seed {seed}"));
    }
}

#[test]
fn graphs_with_unreachable_parts_match_petgraph() {
    let mut rng = Rng::new(5);
    for seed in 0..200u64 {
        let n = 1 + rng.below(if seed % 2 == 0 { 50 } else { 2000 });
        let density = 1 + rng.below(5);
        let case = with_unreachable_part(&mut rng, n, density).scrambled(&mut rng);
        check(&case, &mut rng, &format!("unreachable seed {seed} n {n}"));
    }
}

#[test]
fn builder_graph_matches_from_edges() {
    let mut rng = Rng::new(6);
    for seed in 0..30u64 {
        let n = 1 + rng.below(500);
        let case = random_graph(&mut rng, n, n as usize * 3);
        let mut b = GraphBuilder::new(n as usize);
        for &(a, _) in &case.edges {
            b.count(a);
        }
        b.finish_counts();
        let mut order = rng.permutation(case.edges.len() as u32);
        order.reverse();
        for &i in &order {
            let (a, t) = case.edges[i as usize];
            b.add(a, t);
        }
        let g = b.build();
        let h = Graph::from_edges(n as usize, &case.edges);
        assert_eq!(g.edge_count(), h.edge_count());
        for v in 0..n {
            let mut x = g.successors(v).to_vec();
            let mut y = h.successors(v).to_vec();
            x.sort_unstable();
            y.sort_unstable();
            assert_eq!(x, y, "seed {seed} node {v}");
        }
        let (dg, dh) = (dominators(&g, case.root), dominators(&h, case.root));
        for v in 0..n {
            assert_eq!(dg.idom(v), dh.idom(v), "seed {seed} node {v}");
        }
    }
}

/// A million-node chain with random back edges and side nodes hanging off it: the
/// depth-first path and the compression paths are as long as the chain. The answer is
/// known without petgraph: chain node `i` is dominated by `i - 1`, and a side node by the
/// chain node it hangs off.
#[test]
fn long_chain_does_not_recurse() {
    const CHAIN: u32 = 1_000_000;
    const SIDES: u32 = 250_000;
    const BACK: u32 = 500_000;
    let n = CHAIN + SIDES;
    let mut rng = Rng::new(7);
    let mut side_parent = Vec::with_capacity(SIDES as usize);
    for _ in 0..SIDES {
        side_parent.push(rng.below(CHAIN));
    }
    let mut back = Vec::with_capacity(BACK as usize);
    for _ in 0..BACK {
        // From any node to a chain node no later than itself (or its chain node): no
        // shortcut forward.
        let from = rng.below(n);
        let limit = if from < CHAIN {
            from + 1
        } else {
            side_parent[(from - CHAIN) as usize] + 1
        };
        back.push((from, rng.below(limit)));
    }

    let t0 = Instant::now();
    let mut b = GraphBuilder::new(n as usize);
    for i in 0..CHAIN - 1 {
        b.count(i);
    }
    for &p in &side_parent {
        b.count(p);
    }
    for &(a, _) in &back {
        b.count(a);
    }
    b.finish_counts();
    // Added last, found first: the search runs down the whole chain before anything else.
    for &(a, t) in &back {
        b.add(a, t);
    }
    for (s, &p) in side_parent.iter().enumerate() {
        b.add(p, CHAIN + s as u32);
    }
    for i in 0..CHAIN - 1 {
        b.add(i, i + 1);
    }
    let g = b.build();
    let built = t0.elapsed();

    let (live_before, _) = live_and_peak();
    reset_peak();
    // Retained size of chain node i: everything from i down the chain, sides included.
    let shallow: Vec<u64> = (0..n as u64).map(|v| v % 7 + 1).collect();
    let t1 = Instant::now();
    let (d, retained) = dominators_and_retained(&g, 0, |v| shallow[v as usize]);
    let computed = t1.elapsed();
    let (_, peak) = live_and_peak();

    for i in 1..CHAIN {
        assert_eq!(d.idom(i), Some(i - 1), "chain node {i}");
    }
    for (s, &p) in side_parent.iter().enumerate() {
        assert_eq!(d.idom(CHAIN + s as u32), Some(p), "side node {s}");
    }
    assert_eq!(d.idom(0), None);
    assert!((0..n).all(|v| d.is_reachable(v)));
    let kept = g.heap_size_bytes() + d.heap_size_bytes() + retained.heap_size_bytes();
    let retained = retained.to_vec();
    let mut hanging = vec![0u64; CHAIN as usize];
    for (s, &p) in side_parent.iter().enumerate() {
        hanging[p as usize] += shallow[(CHAIN + s as u32) as usize];
        assert_eq!(
            retained[(CHAIN as usize) + s],
            shallow[(CHAIN as usize) + s]
        );
    }
    let mut suffix = 0u64;
    for i in (0..CHAIN as usize).rev() {
        suffix += shallow[i] + hanging[i];
        assert_eq!(retained[i], suffix, "retained of chain node {i}");
    }

    let (nodes, edges) = (g.node_count() as f64, g.edge_count() as f64);
    // The graph was live throughout, so the peak is measured on top of it.
    let peak_total = g.heap_size_bytes() as isize + (peak - live_before);
    // Dominators within 40 B/node + 8 B/edge, plus the retained sizes they now compute on the
    // way (5 B/node, kept).
    let budget = 45.0 * nodes + 8.0 * edges;
    println!(
        "nodes {nodes} edges {edges}: build {built:?}, dominators and retained sizes \
         {computed:?}; Graph {} B ({:.2} B/node + 4 B/edge), Dominators {} B \
         ({:.2} B/node); kept {kept} B; peak incl. graph {peak_total} B = {:.1}% of \
         45 B/node + 8 B/edge",
        g.heap_size_bytes(),
        (g.heap_size_bytes() as f64 - 4.0 * edges) / nodes,
        d.heap_size_bytes(),
        d.heap_size_bytes() as f64 / nodes,
        100.0 * peak_total as f64 / budget,
    );
    assert!(
        peak_total as f64 <= budget + 4096.0,
        "peak {peak_total} B over the budget {budget} B"
    );
}

/// A forest of three million nodes under one root, ids scrambled so parents come before and
/// after their children across the blocks the sweeps check in parallel, with long chains for
/// the worklist: each node is dominated by its parent and retains its subtree.
#[test]
fn large_hanging_forest_spans_sweep_blocks() {
    const N: u32 = 3_000_000;
    let mut rng = Rng::new(11);
    // In generation order, node k's parent is an earlier node, often the one just before.
    let parent: Vec<u32> = (0..N)
        .map(|k| match k {
            0 => 0,
            _ if rng.chance(40) => k - 1,
            _ => rng.below(k),
        })
        .collect();
    let id = rng.permutation(N);
    let edges: Vec<(u32, u32)> = (1..N)
        .map(|k| (id[parent[k as usize] as usize], id[k as usize]))
        .collect();
    let g = Graph::from_edges(N as usize, &edges);
    let shallow = |v: u32| u64::from(v % 5) + 1;
    let (d, retained) = dominators_and_retained(&g, id[0], shallow);
    let mut subtree: Vec<u64> = id.iter().map(|&v| shallow(v)).collect();
    for k in (1..N as usize).rev() {
        subtree[parent[k] as usize] += subtree[k];
    }
    assert_eq!(d.idom(id[0]), None);
    for k in 1..N as usize {
        assert_eq!(d.idom(id[k]), Some(id[parent[k] as usize]), "node {k}");
    }
    for k in 0..N as usize {
        assert_eq!(retained.get(id[k]), subtree[k], "retained of node {k}");
    }
}
