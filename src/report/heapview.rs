//! What the heap reports share: the analysis, object types, names of nodes and paths from roots.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU8};

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

/// What an object's type name is made from (see [`HeapView::type_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeKey {
    /// An interned type, holding one value or several.
    Typed(u32, bool),
    /// No type; the object's size.
    Untyped(u64),
}

/// Each node's parent on a shortest path from the super-root, for the nodes a report asked
/// about and those on the way.
#[derive(Debug, Default)]
pub struct Parents(HashMap<u32, u32>);

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
    /// The type name of an object as Go writes it (see [`super::names::go_type`]), `[]T`
    /// when it holds several values, or its size class when unknown.
    pub fn type_name(&self, id: ObjId) -> String {
        let size = self.a.objects.size(id);
        match self.types.name(id) {
            Some(n) => super::names::go_type(n, self.holds_several(id, n, size)),
            None => format!("<unknown, {size} B>"),
        }
    }

    /// Whether an object of type `name` and `size` bytes holds several values of it.
    fn holds_several(&self, id: ObjId, name: &str, size: u64) -> bool {
        let one = self.types.value_size(id).unwrap_or(size);
        one > 0 && one * 2 <= size && !name.starts_with('[') && name != "string data"
    }

    /// What an object's [`HeapView::type_name`] depends on, without making the name: its
    /// interned type and whether it holds several values, or its size when untyped. Objects
    /// with the same key have the same name.
    pub fn type_key(&self, id: ObjId) -> TypeKey {
        self.type_key_sized(id, self.a.objects.size(id))
    }

    /// [`HeapView::type_key`] of an object of `size` bytes.
    pub fn type_key_sized(&self, id: ObjId, size: u64) -> TypeKey {
        match (self.types.interned(id), self.types.name(id)) {
            (Some(t), Some(n)) => TypeKey::Typed(t as u32, self.holds_several(id, n, size)),
            _ => TypeKey::Untyped(size),
        }
    }

    /// A node's label: root name or object type.
    pub fn label(&self, v: u32) -> String {
        let g = &self.a.graph;
        if g.is_object(v) {
            self.type_name(ObjId(v))
        } else if let Some(e) = g.as_entry(v) {
            let m = self.a.maps.map_of(e);
            format!("map entry @ {}", m.key_of(self.a.maps.entries[e]))
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
            retained_bytes: self.a.retained.get(v),
        }
    }

    /// Breadth-first parents from the super-root, found until every reachable node of
    /// `targets` has one: the shortest paths to those nodes.
    pub fn bfs_parents(&self, targets: &[u32]) -> Parents {
        let g = &self.a.graph.graph;
        let root = self.a.graph.super_root();
        let mut wanted: HashSet<u32> = targets
            .iter()
            .copied()
            .filter(|&t| self.a.doms.is_reachable(t) && t != root)
            .collect();
        let mut seen = crate::graph::Bits::new(g.node_count());
        let mut parent = HashMap::new();
        seen.set(root);
        let mut q = VecDeque::from([root]);
        while let Some(v) = q.pop_front() {
            if wanted.is_empty() {
                break;
            }
            for &w in g.successors(v) {
                if !seen.get(w) {
                    seen.set(w);
                    parent.insert(w, v);
                    wanted.remove(&w);
                    q.push_back(w);
                }
            }
        }
        Parents(parent)
    }

    /// A shortest path from a root to `v` that passes through no map entry (how something
    /// other than a map holds it), root first; empty when every path does.
    pub fn path_avoiding_entries(&self, v: u32) -> Vec<u32> {
        /// Nodes visited before the search gives up (a path is a name, not worth a heap's
        /// worth of memory).
        const MAX_VISITED: usize = 1 << 22;
        let g = &self.a.graph.graph;
        let root = self.a.graph.super_root();
        let mut seen = crate::graph::Bits::new(g.node_count());
        let mut parent = HashMap::new();
        seen.set(root);
        let mut q = VecDeque::from([root]);
        while let Some(u) = q.pop_front() {
            if parent.len() > MAX_VISITED {
                break;
            }
            if u == v {
                let mut path = vec![v];
                while let Some(&p) = parent.get(path.last().unwrap_or(&root)) {
                    if p == root {
                        break;
                    }
                    path.push(p);
                }
                path.reverse();
                return path;
            }
            for &w in g.successors(u) {
                if !seen.get(w) && self.a.graph.as_entry(w).is_none() {
                    seen.set(w);
                    parent.insert(w, u);
                    q.push_back(w);
                }
            }
        }
        Vec::new()
    }

    /// The shortest path from a root to `v`, root first, using precomputed parents.
    pub fn path_to(&self, parents: &Parents, v: u32) -> Vec<u32> {
        let root = self.a.graph.super_root();
        let mut path = vec![v];
        let mut cur = v;
        while let Some(&p) = parents.0.get(&cur) {
            if p == root || path.len() > parents.0.len() {
                break;
            }
            cur = p;
            path.push(cur);
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
        self.a.objects.find(&self.a.index, addr)
    }

    /// Objects in each graph node's dominator subtree, itself included when it is an object
    /// (0 for unreachable nodes): what each node retains, counted. One pass over the dominator
    /// tree, children before parents.
    pub fn subtree_counts(&self) -> Vec<u32> {
        let doms = &self.a.doms;
        let objects = self.a.graph.objects;
        let (offsets, children) = doms.dominator_tree_children();
        let mut counts = vec![0u32; offsets.len().saturating_sub(1)];
        let kids = |v: u32| {
            let (from, to) = (offsets[v as usize], offsets[v as usize + 1]);
            &children[from as usize..to as usize]
        };
        // Depth-first: a node is pushed again (`true`) to be summed after its children.
        let mut stack = vec![(doms.root(), false)];
        while let Some((v, children_done)) = stack.pop() {
            if children_done {
                let below =
                    (kids(v).iter()).fold(0u32, |n, &c| n.saturating_add(counts[c as usize]));
                counts[v as usize] = below.saturating_add(u32::from(v < objects));
            } else {
                stack.push((v, true));
                stack.extend(kids(v).iter().map(|&c| (c, false)));
            }
        }
        counts
    }

    /// Objects retained by each of `nodes` (the objects in its dominator subtree), in order.
    /// No node of `nodes` may dominate another. Small subtrees are searched from their roots;
    /// when they hold much of the heap, one climb from every object is cheaper.
    pub fn retained_counts(&self, nodes: &[u32]) -> Vec<u64> {
        let a = self.a;
        let held: u64 = nodes.iter().map(|&v| a.retained.get(v)).sum();
        if held.saturating_mul(8) < a.reachability().reachable_bytes {
            self.retained_counts_by_search(nodes)
        } else {
            self.retained_counts_by_climbing(nodes)
        }
    }

    /// [`HeapView::retained_counts`] by a search from each node along the graph's edges that
    /// stays inside its dominator subtree: a node reached is inside when its dominator chain
    /// meets the node before the root (the chains climbed are remembered). A path from the
    /// node to anything it dominates never needs to leave what it dominates.
    pub fn retained_counts_by_search(&self, nodes: &[u32]) -> Vec<u64> {
        const NOBODY: u32 = u32::MAX;
        let a = self.a;
        // Node → the index of the node of `nodes` that dominates it, or NOBODY.
        let mut owner: HashMap<u32, u32> = HashMap::new();
        for (i, &v) in nodes.iter().enumerate() {
            owner.insert(v, i as u32);
        }
        let mut counts = vec![0u64; nodes.len()];
        let (mut queue, mut path, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
        for (i, &t) in nodes.iter().enumerate() {
            let i = i as u32;
            counts[i as usize] = u64::from(t < a.graph.objects);
            seen.insert(t);
            queue.push(t);
            while let Some(v) = queue.pop() {
                for &w in a.graph.graph.successors(v) {
                    if seen.contains(&w) {
                        continue;
                    }
                    let mut cur = w;
                    let found = loop {
                        if let Some(&o) = owner.get(&cur) {
                            break o;
                        }
                        path.push(cur);
                        match a.doms.idom(cur) {
                            Some(d) => cur = d,
                            None => break NOBODY,
                        }
                    };
                    for p in path.drain(..) {
                        owner.insert(p, found);
                    }
                    if found == i {
                        seen.insert(w);
                        counts[i as usize] += u64::from(w < a.graph.objects);
                        queue.push(w);
                    }
                }
            }
        }
        counts
    }

    /// [`HeapView::retained_counts`] by climbing the dominator tree from every object.
    pub fn retained_counts_by_climbing(&self, nodes: &[u32]) -> Vec<u64> {
        /// Objects climbed from per piece of work.
        const PIECE: usize = 1 << 20;
        self.retained_counts_by_climbing_in(nodes, PIECE)
    }

    /// [`HeapView::retained_counts_by_climbing`] from the objects in pieces of `piece`, on
    /// every core.
    pub fn retained_counts_by_climbing_in(&self, nodes: &[u32], piece: usize) -> Vec<u64> {
        const NOBODY: u32 = u32::MAX - 1;
        // Each node is labelled with the index of the node of `nodes` that dominates it (NOBODY:
        // none).
        let own: Vec<(u32, u32)> = (nodes.iter().enumerate())
            .map(|(i, &v)| (v, i as u32))
            .collect();
        let counted = self.label_chains(
            &own,
            Labelling {
                unrooted: NOBODY,
                below: u32::try_from(nodes.len()).unwrap_or(u32::MAX),
            },
            piece,
            || vec![0u64; nodes.len()],
            |_, above, _| above,
            |counts, _, found| {
                if let Some(c) = counts.get_mut(found as usize) {
                    *c += 1;
                }
            },
        );
        let mut counts = vec![0u64; nodes.len()];
        for piece in counted {
            counts.iter_mut().zip(piece).for_each(|(c, n)| *c += n);
        }
        counts
    }

    /// Labels every reachable object by its dominator chain, on every core: the objects are
    /// climbed from in pieces of `piece`, each piece with its own state (`start()`), and the
    /// pieces' states are returned in order. The nodes of `preset` have their labels from the
    /// start; climbing from an object stops at the first labelled node (or at a chain's top,
    /// labelled `labelling.unrooted`), each node climbed gets `label(state, its dominator's
    /// label, node)`, and then `each(state, object, its label)` is called. The labels are
    /// shared by the pieces: a label must depend only on the chain, so that two climbs that
    /// meet give a node the same one. (A node labelled `u32::MAX` is climbed through again each
    /// time.) With fewer than 254 labels besides `unrooted`, they take a byte per node.
    pub fn label_chains<S: Send>(
        &self,
        preset: &[(u32, u32)],
        labelling: Labelling,
        piece: usize,
        start: impl Fn() -> S + Sync,
        label: impl Fn(&mut S, u32, u32) -> u32 + Sync,
        each: impl Fn(&mut S, u32, u32) + Sync,
    ) -> Vec<S> {
        // Zeroed, the table is fresh pages that the climbs fault in on every core, where
        // filling it would take one core a pass.
        let nodes = self.a.graph.graph.node_count();
        let climbs = Climbs {
            unrooted: labelling.unrooted,
            piece,
            start,
            label,
            each,
        };
        if labelling.below < u32::from(NARROW_UNROOTED) {
            let mut table = vec![0u8; nodes];
            let labels = NarrowLabels {
                slots: crate::graph::atomic_bytes(&mut table),
                unrooted: labelling.unrooted,
            };
            self.climb(&labels, preset, climbs)
        } else {
            let mut table = vec![0u32; nodes];
            self.climb(crate::graph::atomic(&mut table), preset, climbs)
        }
    }

    /// [`HeapView::label_chains`] with its labels kept in `labels`.
    fn climb<S: Send, T: ChainLabels + ?Sized>(
        &self,
        labels: &T,
        preset: &[(u32, u32)],
        Climbs {
            unrooted,
            piece,
            start,
            label,
            each,
        }: Climbs<
            impl Fn() -> S + Sync,
            impl Fn(&mut S, u32, u32) -> u32 + Sync,
            impl Fn(&mut S, u32, u32) + Sync,
        >,
    ) -> Vec<S> {
        use rayon::prelude::*;
        for &(v, l) in preset {
            labels.give(v, l);
        }
        let doms = &self.a.doms;
        let climb_piece = |objects: std::ops::Range<usize>| {
            let mut state = start();
            let mut path = Vec::new();
            let end = objects.end as u32;
            for x in objects.start as u32..end {
                // What the climb from CLIMB_AHEAD objects on reads first: its dominator's
                // label and that dominator's own dominator.
                let ahead = x.saturating_add(CLIMB_AHEAD);
                if let Some(d) = (ahead < end).then(|| doms.idom(ahead)).flatten() {
                    labels.prefetch(d);
                    doms.prefetch(d);
                }
                if !doms.is_reachable(x) {
                    continue;
                }
                let mut cur = x;
                let mut above = loop {
                    if let Some(l) = labels.label_of(cur) {
                        break l;
                    }
                    path.push(cur);
                    match doms.idom(cur) {
                        Some(d) => cur = d,
                        None => break unrooted,
                    }
                };
                for &p in path.iter().rev() {
                    above = label(&mut state, above, p);
                    labels.give(p, above);
                }
                path.clear();
                each(&mut state, x, above);
            }
            state
        };
        crate::graph::pieces(0..self.a.graph.objects as usize, piece.max(1))
            .into_par_iter()
            .map(climb_piece)
            .collect()
    }
}

/// How many objects ahead of a climb the label and dominator of an object's dominator are
/// fetched.
const CLIMB_AHEAD: u32 = 16;

/// The labels a climb gives (see [`HeapView::label_chains`]).
#[derive(Debug, Clone, Copy)]
pub struct Labelling {
    /// The label of a chain's top that has none.
    pub unrooted: u32,
    /// The other labels are below this (`u32::MAX`: any).
    pub below: u32,
}

/// What the climbs of [`HeapView::label_chains`] do, besides keeping labels.
struct Climbs<F, L, E> {
    unrooted: u32,
    piece: usize,
    start: F,
    label: L,
    each: E,
}

/// Each node's label as the climbs find it, shared by every core.
trait ChainLabels: Sync {
    /// The label of node `v`, once found.
    fn label_of(&self, v: u32) -> Option<u32>;
    /// Gives node `v` the label `l`; a label the table cannot hold is left out (the node is
    /// climbed through again).
    fn give(&self, v: u32, l: u32);
    /// Asks for node `v`'s label ahead of a climb.
    fn prefetch(&self, v: u32);
}

/// A label plus one per node, 0 until found.
impl ChainLabels for [AtomicU32] {
    fn label_of(&self, v: u32) -> Option<u32> {
        match self.get(v as usize)?.load(Relaxed) {
            0 => None,
            l => Some(l - 1),
        }
    }

    fn give(&self, v: u32, l: u32) {
        if let Some(slot) = self.get(v as usize) {
            slot.store(l.wrapping_add(1), Relaxed);
        }
    }

    fn prefetch(&self, v: u32) {
        if let Some(slot) = self.get(v as usize) {
            crate::graph::prefetch(slot);
        }
    }
}

/// The byte of a node labelled `unrooted` in [`NarrowLabels`].
const NARROW_UNROOTED: u8 = u8::MAX;

/// A byte per node: labels below 254 plus one, [`NARROW_UNROOTED`], or 0 until found.
struct NarrowLabels<'t> {
    slots: &'t [AtomicU8],
    unrooted: u32,
}

impl ChainLabels for NarrowLabels<'_> {
    fn label_of(&self, v: u32) -> Option<u32> {
        match self.slots.get(v as usize)?.load(Relaxed) {
            0 => None,
            NARROW_UNROOTED => Some(self.unrooted),
            l => Some(u32::from(l) - 1),
        }
    }

    fn give(&self, v: u32, l: u32) {
        let byte = match u8::try_from(l) {
            _ if l == self.unrooted => NARROW_UNROOTED,
            Ok(b) if b < NARROW_UNROOTED - 1 => b + 1,
            _ => return,
        };
        if let Some(slot) = self.slots.get(v as usize) {
            slot.store(byte, Relaxed);
        }
    }

    fn prefetch(&self, v: u32) {
        if let Some(slot) = self.slots.get(v as usize) {
            crate::graph::prefetch(slot);
        }
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

/// Names references the way Go code writes them (`main.registry.accounts`, `main.shards[3]`,
/// `main.nested["eu"]`, `goroutine 7 main.worker: m`), from DWARF types and memory.
pub struct Namer<'a> {
    /// The analysed heap.
    pub view: &'a HeapView<'a>,
    dwarf: &'a crate::dwarf::Dwarf,
    mem: &'a crate::memory::Memory,
    /// Objects that are maps' own structures: hops through them add no name.
    storage: std::collections::HashSet<u32>,
    /// The executable's symbols and load bias, to name the function of a closure.
    code: Option<(&'a crate::exe::Symbols, u64)>,
    /// Redacts the keys in names (`main.nested["eu"]`), when the report must not hold keys.
    redactor: Option<&'a crate::maps::keys::Redactor>,
}

impl<'a> Namer<'a> {
    /// A namer over an analysed heap.
    pub fn new(
        view: &'a HeapView<'a>,
        dwarf: &'a crate::dwarf::Dwarf,
        mem: &'a crate::memory::Memory,
    ) -> Namer<'a> {
        let storage = view
            .a
            .maps
            .maps
            .iter()
            .flat_map(|m| m.storage.iter().map(|o| o.0))
            .collect();
        Namer {
            view,
            dwarf,
            mem,
            storage,
            code: None,
            redactor: None,
        }
    }

    /// Names with the keys in them redacted.
    pub fn with_redactor(mut self, redactor: Option<&'a crate::maps::keys::Redactor>) -> Namer<'a> {
        self.redactor = redactor;
        self
    }

    /// Names closures by their function, from the executable's symbols (`bias`: the load bias),
    /// and what they captured by the function's variables in its DWARF.
    pub fn with_code(mut self, symbols: &'a crate::exe::Symbols, bias: u64) -> Namer<'a> {
        self.code = Some((symbols, bias));
        self
    }

    /// When object `u` is a closure (its first word the code of a function literal or method
    /// value) holding the map header `w`: ` (closure main.setup.func1: hits)`, the captured
    /// variable named when it is the function's one variable of the map's type.
    fn closure(&self, u: ObjId, w: u32) -> Option<String> {
        let (symbols, bias) = self.code?;
        let a = self.view.a;
        if a.types.get(u).is_some() {
            return None;
        }
        let (start, _) = a.objects.value_in(a.objects.span(u), u);
        let pc = self.mem.u64(start).ok()?.wrapping_sub(bias);
        let name = symbols.lookup(pc)?;
        let (entry, _) = symbols.extent(pc)?;
        let literal = name
            .rsplit('.')
            .next()
            .is_some_and(|l| l.starts_with("func") && l[4..].chars().all(|c| c.is_ascii_digit()));
        if entry != pc || !(literal || name.ends_with("-fm")) {
            return None;
        }
        let var = match a.types.get(ObjId(w)) {
            Some(crate::types::ObjType::Dwarf(t)) if a.graph.is_object(w) => {
                let of_type: Vec<String> = (self.dwarf.function_locals(entry).locals.iter())
                    .filter(|l| l.ty.and_then(|ty| self.dwarf.map_header_type(ty)) == Some(t))
                    .map(|l| l.name.trim_start_matches('&').to_string())
                    .collect();
                match &of_type[..] {
                    [one] => format!(": {one}"),
                    _ => String::new(),
                }
            }
            _ => String::new(),
        };
        Some(format!(" (closure {name}{var})"))
    }

    /// The Go expression reaching the last node of a path that starts at a root.
    pub fn expression(&self, path: &[u32]) -> String {
        let mut name = String::new();
        let mut pairs = path.windows(2).peekable();
        while let Some(pair) = pairs.next() {
            let part = self.edge(pair[0], pair[1]);
            if self.view.a.graph.as_root(pair[0]).is_some() {
                name = part;
                continue;
            }
            // A value waiting in a channel's buffer: by its place in the queue.
            if let Some(k) = pairs
                .peek()
                .and_then(|next| self.buffered_at(pair[0], &part, next))
            {
                let next = pairs
                    .next()
                    .map(|n| self.edge(n[0], n[1]))
                    .unwrap_or_default();
                name.push_str(&format!(" (buffered {k})"));
                // What follows the element's index: a field of a buffered struct.
                name.push_str(next.split_once(']').map_or("", |(_, rest)| rest));
                continue;
            }
            name.push_str(&part);
        }
        name
    }

    /// When `u` is a channel reached through its `.buf` (`part`) and `next` goes from the
    /// buffer to a buffered value: that value's place in the queue (0: received next).
    fn buffered_at(&self, u: u32, part: &str, next: &[u32]) -> Option<u64> {
        let a = self.view.a;
        let o = ObjId(u);
        if part != ".buf" || !a.types.name(o)?.starts_with("hchan<") {
            return None;
        }
        let index: u64 = self
            .edge(next[0], next[1])
            .strip_prefix('[')?
            .split(']')
            .next()?
            .parse()
            .ok()?;
        let (start, _) = a.objects.value_in(a.objects.span(o), o);
        let field = |f: &str| {
            let off = self.dwarf.offset("runtime.hchan", f).ok()?;
            self.mem.u64(start.offset(off)).ok()
        };
        let size = field("dataqsiz")?;
        let recvx = field("recvx")? & 0xffff_ffff_ffff;
        (size > 0).then(|| (index + size - recvx % size) % size)
    }

    /// How node `u` refers to node `w`: a root's name (with the field holding the pointer),
    /// `.field` or `[i]` inside an object, `[key]` through a map entry, or nothing through a
    /// map's own structures.
    pub fn edge(&self, u: u32, w: u32) -> String {
        let a = self.view.a;
        if let Some(r) = a.graph.as_root(u) {
            let root = &a.roots[r];
            if root.map.is_some() {
                // A map whose header is on a stack: the root is the map.
                return root.name.clone();
            }
            let slot = root.slots.iter().find(|(s, _)| self.points_into(*s, w));
            return match root.kind {
                crate::roots::RootKind::Stack => format!(
                    "{}: {}",
                    root.name,
                    slot.and_then(|(_, n)| n.clone())
                        .unwrap_or_else(|| "?".into())
                ),
                _ => {
                    let field = match (slot, root.var) {
                        (Some((s, _)), Some((base, ty))) => {
                            self.dwarf.field_path_at(ty, s.0 - base.0)
                        }
                        _ => String::new(),
                    };
                    format!("{}{}", root.name, field)
                }
            };
        }
        if let Some(e) = a.graph.as_entry(u) {
            let m = a.maps.map_of(e);
            let key_addr =
                crate::maps::keys::deref(self.mem, m.key_of(a.maps.entries[e]), m.key.indirect);
            let key = crate::maps::keys::render(self.dwarf, self.mem, m.key.ty, key_addr, 0)
                .unwrap_or_else(|| "?".into());
            return match self.redactor {
                Some(r) => format!("[{}]", r.text(&key, crate::maps::keys::RENDER_PUNCTUATION)),
                None => format!("[{}]", crate::maps::keys::cut(&key, 40)),
            };
        }
        if a.graph.is_object(u) && !self.storage.contains(&u) {
            if let Some(c) = self.closure(ObjId(u), w) {
                return c;
            }
            return self.object_field(ObjId(u), w);
        }
        String::new()
    }

    /// Whether the word at `slot` points into node `w`.
    fn points_into(&self, slot: Addr, w: u32) -> bool {
        let a = self.view.a;
        self.mem
            .u64(slot)
            .ok()
            .and_then(|p| a.objects.find(&a.index, Addr(p)))
            .is_some_and(|o| o.0 == w)
    }

    /// The field (or element) of object `u` that points to node `w`.
    fn object_field(&self, u: ObjId, w: u32) -> String {
        let a = self.view.a;
        let si = a.objects.span(u);
        let s = &a.heap.spans[si];
        let mut words = Vec::new();
        let _ = a
            .bits
            .pointer_words(self.mem, &a.heap, si, a.objects.slot_in(si, u), &mut words);
        let Some(word) = words.into_iter().find(|x| self.points_into(*x, w)) else {
            return String::new();
        };
        let Some(crate::types::ObjType::Dwarf(t)) = a.types.get(u) else {
            return String::new();
        };
        let (value, _) = a.objects.value_in(si, u);
        let off = word.0 - value.0;
        let size = a.types.value_size(u).unwrap_or(0);
        if size > 0 && size * 2 <= s.elemsize {
            format!(
                "[{}]{}",
                off / size,
                self.dwarf.field_path_at(t, off % size)
            )
        } else {
            self.dwarf.field_path_at(t, off)
        }
    }
}
