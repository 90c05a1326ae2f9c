//! A map's keys in groups: the prefix tree that opens where the bytes are, fixed-depth
//! prefixes, shapes, and the entries that retain the most.

use std::borrow::Cow;
use std::collections::HashMap;

use rayon::prelude::*;

use crate::maps::keys::{self, AsciiDelimiters};
use crate::memory::{Addr, Memory};

/// How a map's keys are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Prefixes as a tree, opened while one child holds most of a group's bytes.
    Tree,
    /// Prefixes cut before the N-th delimiter.
    Depth(usize),
    /// Patterns: numbers, hex runs and UUIDs as placeholders.
    Shape,
    /// One group of every key.
    Whole,
}

/// Deepest level the prefix tree opens to.
const MAX_TREE_DEPTH: usize = 8;

/// How many keys ahead a pass asks for an entry's retained size.
pub const PREFETCH_AHEAD: usize = 16;

/// Keys per chunk when keys are grouped on every core.
pub const KEY_CHUNK: usize = 1 << 15;

/// Most labels a pass keeps one delimiter deeper than asked (in a chunk, and in all): past
/// them it counts at the depth asked only.
const DEEPER_LABELS: usize = 1 << 10;

/// Retained bytes (and objects, when counted) of one map's entries, by entry index within the
/// map.
#[derive(Clone, Copy)]
pub enum Sizes<'a> {
    /// Entries that are nodes of the graph, numbered from `first_node`.
    Graph {
        /// Retained bytes per node.
        retained: &'a crate::graph::Retained,
        /// Objects each node retains (see `HeapView::subtree_counts`), when counted.
        objects: Option<&'a [u32]>,
        /// Graph node of the map's first entry (its entries' nodes follow it).
        first_node: u32,
    },
    /// Bytes and objects worked out one by one (a `sync.Map`'s entries, a roll-up's); objects
    /// may be empty (not counted).
    Listed(&'a [u64], &'a [u64]),
}

impl Sizes<'_> {
    /// Retained bytes of entry `i`.
    pub fn get(&self, i: u32) -> u64 {
        match self {
            Sizes::Graph {
                retained,
                first_node,
                ..
            } => retained.get(first_node + i),
            Sizes::Listed(s, _) => s.get(i as usize).copied().unwrap_or(0),
        }
    }

    /// Retained bytes and objects (0 when not counted) of entry `i`.
    pub fn entry(&self, i: u32) -> (u64, u64) {
        let objects = match self {
            Sizes::Graph {
                objects: Some(o),
                first_node,
                ..
            } => o
                .get((first_node + i) as usize)
                .map_or(0, |&n| u64::from(n)),
            Sizes::Graph { objects: None, .. } => 0,
            Sizes::Listed(_, o) => o.get(i as usize).copied().unwrap_or(0),
        };
        (self.get(i), objects)
    }

    /// Asks for entry `i`'s size ahead of its use.
    fn prefetch(&self, i: u32) {
        if let Sizes::Graph {
            retained,
            first_node,
            ..
        } = self
        {
            retained.prefetch(first_node + i);
        }
    }
}

/// Where a map's keys are read from.
pub enum Keys<'a> {
    /// String keys, read in the order of their bytes in memory.
    Strings(StringKeys<'a>),
    /// Keys rendered to text one by one (`None`: unreadable).
    Rendered {
        /// Entry index → its key's text.
        text: &'a dyn Fn(u32) -> Option<String>,
        /// Entries.
        count: u32,
    },
}

/// The key lengths [`StringKeys`] keeps are below this; a longer key's header gives its length.
const LONG_KEY: u8 = u8::MAX;

/// String keys in the order of their bytes in memory, each entry once.
pub struct StringKeys<'a> {
    mem: &'a Memory,
    /// Per entry, sorted: the key data's address above the lowest (high bits, cut short if it
    /// and the index need over 64 bits) and the entry index (low bits). Unreadable keys first.
    order: Vec<u64>,
    /// Per item of `order`: its key's length, `long` for one that long or longer (its header
    /// gives the length).
    lens: Vec<u8>,
    long: u8,
    lowest: u64,
    shift: u32,
    index_bits: u32,
    /// Entry index → the address of its key's string header.
    slot: &'a (dyn Fn(u32) -> Addr + Sync),
}

impl<'a> StringKeys<'a> {
    /// Reads every entry's string header once and sorts the entries by their keys' addresses.
    pub fn new(mem: &'a Memory, count: u32, slot: &'a (dyn Fn(u32) -> Addr + Sync)) -> Self {
        StringKeys::keeping_below(mem, count, slot, LONG_KEY)
    }

    /// [`StringKeys::new`], keeping the lengths below `long`.
    fn keeping_below(
        mem: &'a Memory,
        count: u32,
        slot: &'a (dyn Fn(u32) -> Addr + Sync),
        long: u8,
    ) -> Self {
        let header = |i: u32| keys::string_header(mem, slot(i)).unwrap_or((Addr(0), 0));
        let mut order = vec![0u64; count as usize];
        let mut lens = vec![0u8; count as usize];
        order
            .par_iter_mut()
            .zip(lens.par_iter_mut())
            .enumerate()
            .for_each(|(i, (o, l))| {
                let (p, n) = header(i as u32);
                (*o, *l) = (p.0, n.min(usize::from(long)) as u8);
            });
        let lowest = (order.par_iter().copied())
            .filter(|&p| p != 0)
            .min()
            .unwrap_or(0);
        let highest = order.par_iter().copied().max().unwrap_or(0);
        let index_bits = u64::BITS - u64::from(count).leading_zeros();
        let address_bits = u64::BITS - (highest.saturating_sub(lowest) + 1).leading_zeros();
        let shift = (address_bits + index_bits).saturating_sub(u64::BITS);
        order.par_iter_mut().enumerate().for_each(|(i, p)| {
            let above = if *p == 0 { 0 } else { *p - lowest + 1 };
            *p = (above >> shift).checked_shl(index_bits).unwrap_or(0) | i as u64;
        });
        order.par_sort_unstable();
        // The lengths in key order too, so that a pass reads them in order.
        let mask = (1u64 << index_bits) - 1;
        let lens = (order.par_iter())
            .map(|&k| lens.get((k & mask) as usize).copied().unwrap_or(0))
            .collect();
        StringKeys {
            mem,
            order,
            lens,
            long,
            lowest,
            shift,
            index_bits,
            slot,
        }
    }

    fn index_mask(&self) -> u64 {
        (1u64 << self.index_bits) - 1
    }

    /// The entry index and key (its bytes' address and length) of item `j` in key order.
    fn key_at(&self, j: usize) -> (u32, Addr, usize) {
        let k = self.order.get(j).copied().unwrap_or(0);
        let i = (k & self.index_mask()) as u32;
        let above = k.checked_shr(self.index_bits).unwrap_or(0);
        let kept = self.lens.get(j).copied().filter(|&n| n < self.long);
        let (p, n) = match (self.shift, above, kept) {
            (_, 0, _) => (Addr(0), 0),
            (0, a, Some(n)) => (Addr(self.lowest + a - 1), usize::from(n)),
            _ => keys::string_header(self.mem, (self.slot)(i)).unwrap_or((Addr(0), 0)),
        };
        (i, p, n)
    }

    /// The key of entry `i` as text.
    pub fn text(&self, i: u32) -> Option<String> {
        keys::string_bytes(self.mem, (self.slot)(i)).map(|b| String::from_utf8_lossy(&b).into())
    }
}

/// A group while keys are grouped: entries, bytes, the first entry (its key is the group's
/// sample) and the entries that retain the most.
#[derive(Debug, Clone)]
pub struct Acc {
    /// Entries.
    pub entries: u64,
    /// Bytes they retain.
    pub bytes: u64,
    /// Objects they retain (0 when not counted).
    pub objects: u64,
    /// The lowest entry index.
    pub first: u32,
    /// (retained bytes, entry index), largest first, at most the number asked for.
    pub top: Vec<(u64, u32)>,
    /// Whether a key of the group may go on below the group's label (has a delimiter past it):
    /// false only when the pass that counted it knows none does.
    pub more: bool,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc::new()
    }
}

impl Acc {
    fn new() -> Acc {
        Acc {
            entries: 0,
            bytes: 0,
            objects: 0,
            first: u32::MAX,
            top: Vec::new(),
            more: false,
        }
    }

    fn add(&mut self, i: u32, (r, objects): (u64, u64), keep: usize) {
        self.entries += 1;
        self.bytes += r;
        self.objects += objects;
        self.first = self.first.min(i);
        push_top(&mut self.top, (r, i), keep);
    }

    fn merge(&mut self, o: Acc, keep: usize) {
        self.entries += o.entries;
        self.bytes += o.bytes;
        self.objects += o.objects;
        self.first = self.first.min(o.first);
        self.more |= o.more;
        for t in o.top {
            push_top(&mut self.top, t, keep);
        }
    }
}

/// Keeps `top` the `keep` largest (bytes, then lowest index first).
fn push_top(top: &mut Vec<(u64, u32)>, item: (u64, u32), keep: usize) {
    let order = |&(b, i): &(u64, u32)| (std::cmp::Reverse(b), i);
    let at = top.partition_point(|x| order(x) < order(&item));
    if at < keep {
        top.insert(at, item);
        top.truncate(keep);
    }
}

/// Groups of one pass, by label.
type Pass = HashMap<Vec<u8>, Acc, foldhash::fast::RandomState>;

/// A group of keys as found: its label (a prefix, a shape), what it holds, and its children
/// when it was opened.
#[derive(Debug, Clone)]
pub struct Group {
    /// The prefix or shape, as raw key bytes.
    pub label: Vec<u8>,
    /// Delimiters the label spans (its depth in the prefix tree).
    pub depth: usize,
    /// What the group holds.
    pub acc: Acc,
    /// Children when the group was opened, largest first.
    pub children: Vec<Group>,
}

/// Delimiters, as a byte set when they are all ASCII.
struct Delims<'d> {
    text: &'d str,
    ascii: Option<AsciiDelimiters>,
    /// The ASCII ones, to cut keys that are not UTF-8 when some delimiters are not ASCII.
    ascii_only: AsciiDelimiters,
}

impl<'d> Delims<'d> {
    fn new(text: &'d str) -> Self {
        Delims {
            text,
            ascii: AsciiDelimiters::new(text),
            ascii_only: AsciiDelimiters::ascii_of(text),
        }
    }

    /// The key before its `depth`-th delimiter (see [`keys::prefix`]).
    fn prefix<'k>(&self, key: &'k [u8], depth: usize) -> &'k [u8] {
        if let Some(set) = &self.ascii {
            return keys::prefix_bytes(key, depth, set);
        }
        match std::str::from_utf8(key) {
            Ok(s) => keys::prefix(s, depth, self.text).as_bytes(),
            Err(_) => keys::prefix_bytes(key, depth, &self.ascii_only),
        }
    }

    /// The prefix at `depth` of keys whose prefix at `depth + 1` is `label` (see
    /// [`keys::shallower_bytes`]), when every delimiter is ASCII.
    fn shallower<'k>(&self, label: &'k [u8], depth: usize) -> Option<&'k [u8]> {
        Some(keys::shallower_bytes(label, depth, self.ascii.as_ref()?))
    }
}

/// Groups a map's keys and finds the `keep` entries that retain the most in each group.
pub struct Grouper<'a> {
    /// The keys.
    pub keys: Keys<'a>,
    /// What each entry retains.
    pub sizes: Sizes<'a>,
    /// Delimiter characters.
    pub delimiters: &'a str,
    /// Entries to keep per group.
    pub keep: usize,
    /// Groups shown per level: only these are opened.
    pub shown: usize,
}

impl Grouper<'_> {
    /// The groups, largest first, and the whole map's largest entries.
    pub fn group(&self, how: Grouping) -> (Vec<Group>, Vec<(u64, u32)>) {
        let d = Delims::new(self.delimiters);
        // The top level's keys one delimiter deeper, when the first pass found them.
        let mut below = None;
        let first = match how {
            Grouping::Whole => self.whole(),
            Grouping::Shape => self.pass(&|k: &[u8], emit: &mut Emit| {
                emit(
                    0,
                    keys::shape(&String::from_utf8_lossy(k), self.delimiters).as_bytes(),
                    true,
                )
            }),
            Grouping::Depth(n) => {
                self.pass(&|k: &[u8], emit: &mut Emit| emit(0, d.prefix(k, n), true))
            }
            Grouping::Tree => {
                let (first, deeper) = self.pass_levels(&d, &|_| Some(0), &|_| 1);
                below = deeper.and_then(|p| p.into_iter().next());
                first
            }
        };
        let first = first.into_iter().next().unwrap_or_default();
        let mut all = Acc::new();
        for a in first.values() {
            all.merge(a.clone(), self.keep);
        }
        let mut groups = sorted(first, 1);
        if how == Grouping::Tree {
            let ready = (groups.iter().take(self.shown))
                .map(|g| below.as_ref().map(|p| under(&d, p, &g.label, 1)))
                .collect();
            self.open(&d, &mut groups, ready);
        }
        (groups, all.top)
    }

    /// This map's entries in the groups of `guide` (the same map's groups in another core,
    /// made `how`), in its order and shape, each with what this map holds in it (zero when
    /// nothing); then, on each level, the groups of keys no guide group takes, largest first, at
    /// most `shown`. Every group holds the keys its label selects, as in [`Grouper::group`],
    /// so that the two cores' groups of one label compare. Also the map's largest entries.
    pub fn follow(&self, how: Grouping, guide: &[Group]) -> (Vec<Group>, Vec<(u64, u32)>) {
        if how != Grouping::Tree {
            let (found, top) = self.group(how);
            let mut found: HashMap<Vec<u8>, Group> =
                found.into_iter().map(|g| (g.label.clone(), g)).collect();
            let mut groups: Vec<Group> = (guide.iter())
                .map(|g| found.remove(&g.label).unwrap_or_else(|| g.emptied()))
                .collect();
            let mut rest: Vec<Group> = found.into_values().collect();
            rest.sort_by(order);
            groups.extend(rest.into_iter().take(self.shown));
            return (groups, top);
        }
        let d = Delims::new(self.delimiters);
        // The top level: a guide group by its label at its depth, else a new group.
        let top_level = by_depth(guide.iter().enumerate());
        // Deeper levels: the children of every guide group that has them, level by level.
        // The levels come from the guide alone, so one pass over the keys counts them all.
        let mut levels: Vec<Vec<(Vec<usize>, &Group)>> = Vec::new();
        let mut frontier: Vec<(Vec<usize>, &Group)> = (guide.iter().enumerate())
            .filter(|(_, g)| !g.children.is_empty())
            .map(|(i, g)| (vec![i], g))
            .collect();
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for (path, g) in &frontier {
                for (c, kid) in g.children.iter().enumerate() {
                    if !kid.children.is_empty() {
                        let mut p = path.clone();
                        p.push(c);
                        next.push((p, kid));
                    }
                }
            }
            levels.push(frontier);
            frontier = next;
        }
        // Per level: its parents by label at their depth, each parent's children by label at
        // their depth, less the one holding the keys that go no deeper (it has the parent's
        // label and depth, and is found by the parent's cut one level down, as new children
        // are), and the number of its first pass (two per parent: matched, new).
        let mut first_pass = 2u32;
        let cuts: Vec<(Levels, Vec<Levels>, u32)> = (levels.iter())
            .map(|level| {
                let parents = by_depth(level.iter().map(|(_, g)| *g).enumerate());
                let kids = (level.iter())
                    .map(|(_, g)| {
                        by_depth((g.children.iter().enumerate()).filter(|(_, c)| !c.no_deeper(g)))
                    })
                    .collect();
                let base = first_pass;
                first_pass += 2 * level.len() as u32;
                (parents, kids, base)
            })
            .collect();
        let mut passes = self.pass(&|k: &[u8], emit: &mut Emit| {
            match find(&d, k, &top_level) {
                Some((label, _)) => emit(0, label, true),
                None => emit(1, d.prefix(k, 1), true),
            }
            for ((parents, kids, base), level) in cuts.iter().zip(&levels) {
                let Some((_, f)) = find(&d, k, parents) else {
                    continue;
                };
                let g = level[f as usize].1;
                let next = d.prefix(k, g.depth + 1);
                let kept =
                    (g.children.iter()).any(|c| c.no_deeper(g)) && next == g.label.as_slice();
                match find(&d, k, &kids[f as usize]) {
                    Some((label, _)) => emit(base + 2 * f, label, true),
                    None if kept => emit(base + 2 * f, next, true),
                    None => emit(base + 2 * f + 1, next, true),
                }
            }
        });
        passes.resize_with(first_pass as usize, Pass::default);
        let mut passes = passes.into_iter();
        let mut matched = passes.next().unwrap_or_default();
        let extra = passes.next().unwrap_or_default();
        let mut all = Acc::new();
        for a in matched.values().chain(extra.values()) {
            all.merge(a.clone(), self.keep);
        }
        let mut groups = placed(guide, &mut matched);
        groups.extend(sorted(extra, 1).into_iter().take(self.shown));
        for level in levels {
            for (path, g) in level {
                let mut matched = passes.next().unwrap_or_default();
                let extra = passes.next().unwrap_or_default();
                let mut children = placed(&g.children, &mut matched);
                let mut rest = sorted(extra, g.depth + 1);
                for r in rest.iter_mut().filter(|r| r.label == g.label) {
                    r.depth = g.depth;
                }
                children.extend(rest.into_iter().take(self.shown));
                at_path(&mut groups, &path).children = children;
            }
        }
        (groups, all.top)
    }

    /// One group of every entry, without reading keys.
    fn whole(&self) -> Vec<Pass> {
        let count = match &self.keys {
            Keys::Strings(s) => s.order.len() as u32,
            Keys::Rendered { count, .. } => *count,
        };
        let mut acc = Acc::new();
        for i in 0..count {
            acc.add(i, self.sizes.entry(i), self.keep);
        }
        let mut p = Pass::default();
        if count > 0 {
            p.insert(Vec::new(), acc);
        }
        vec![p]
    }

    /// Opens the shown groups level by level: a group with one child deeper than itself
    /// becomes that child; a group with several children is opened when one of them holds
    /// more than half its bytes, and that child is tried next. `ready`: the children of each
    /// shown group when already known.
    fn open(&self, d: &Delims, groups: &mut [Group], mut ready: Vec<Option<Pass>>) {
        // Paths (child indices from the top level) of the groups to try, with their depth.
        let mut frontier: Vec<Vec<usize>> =
            (0..groups.len().min(self.shown)).map(|i| vec![i]).collect();
        ready.resize_with(frontier.len(), || None);
        for _ in 0..MAX_TREE_DEPTH {
            // A group none of whose keys goes on below it would only find itself as its one
            // child, which changes nothing: it is not tried (nor are its keys read again).
            (frontier, ready) = (frontier.into_iter().zip(ready))
                .filter(|(p, _)| group_at(groups, p).acc.more)
                .unzip();
            if frontier.is_empty() {
                break;
            }
            // The children of the groups not known yet, and theirs when they are few: which
            // frontier group a key belongs to is by its prefix at that group's depth.
            let (mut kids, deeper) = if ready.iter().any(Option::is_none) {
                let tried: Vec<&Group> = frontier.iter().map(|p| group_at(groups, p)).collect();
                let levels = by_depth(tried.iter().copied().enumerate());
                let which = |k: &[u8]| {
                    let (_, f) = find(d, k, &levels)?;
                    ready[f as usize].is_none().then_some(f)
                };
                self.pass_levels(d, &which, &|f| tried[f as usize].depth + 1)
            } else {
                (Vec::new(), None)
            };
            kids.resize_with(frontier.len(), Pass::default);
            let mut next = Vec::new();
            let mut next_ready = Vec::new();
            for (f, (path, kids)) in frontier.into_iter().zip(kids).enumerate() {
                let g = at_path(groups, &path);
                let kids = ready[f].take().unwrap_or(kids);
                let mut kids = sorted(kids, g.depth + 1);
                // The children of the child tried next, when this pass found them.
                let below = |label: &[u8]| {
                    (deeper.as_ref())
                        .map(|p| under(d, p.get(f).unwrap_or(&Pass::default()), label, g.depth + 1))
                };
                match kids.len() {
                    1 if kids[0].label != g.label => {
                        // One deeper child holds the whole group: the group is that child.
                        let child = kids.remove(0);
                        next_ready.push(below(&child.label));
                        g.depth += 1;
                        g.label = child.label;
                        g.acc.more = child.acc.more;
                        next.push(path);
                    }
                    n if n > 1 && kids[0].acc.bytes.saturating_mul(2) > g.acc.bytes => {
                        let dominant = kids[0].label != g.label;
                        // Keys with no further delimiter stay at the group's depth.
                        for k in kids.iter_mut().filter(|k| k.label == g.label) {
                            k.depth = g.depth;
                        }
                        if dominant {
                            next_ready.push(below(&kids[0].label));
                            let mut p = path;
                            p.push(0);
                            next.push(p);
                        }
                        g.children = kids;
                    }
                    _ => {}
                }
            }
            frontier = next;
            ready = next_ready;
        }
    }

    /// Groups keys by prefix: each key in the pass `which` gives it (`None`: left out), cut
    /// at the depth `depth` gives that pass. While they stay few and the delimiters are all
    /// ASCII, also the same keys cut one delimiter deeper, in the same passes: the groups of
    /// the level below come without reading the keys again.
    fn pass_levels(
        &self,
        d: &Delims,
        which: &(dyn Fn(&[u8]) -> Option<u32> + Sync),
        depth: &(dyn Fn(u32) -> usize + Sync),
    ) -> (Vec<Pass>, Option<Vec<Pass>>) {
        // Cut back only where every delimiter is ASCII (see `Delims::shallower`).
        let Some(set) = &d.ascii else {
            let classify: &Classify = &|k: &[u8], emit: &mut Emit| {
                if let Some(f) = which(k) {
                    emit(f, d.prefix(k, depth(f)), true);
                }
            };
            return (self.pass(classify), None);
        };
        let classify: &Classify = &|k: &[u8], emit: &mut Emit| {
            if let Some(f) = which(k) {
                let (label, more) = keys::prefix_bytes_and_more(k, depth(f) + 1, set);
                emit(f, label, more);
            }
        };
        let back = coarsen(|f, label| d.shallower(label, depth(f)).unwrap_or(label));
        let (passes, deeper) = self.pass_cut(classify, Some(&back));
        if !deeper {
            return (passes, None);
        }
        (regrouped(passes.clone(), &back, self.keep), Some(passes))
    }

    /// Groups every entry under each label `classify` gives its key, in the pass of the number
    /// it gives with the label.
    fn pass(&self, classify: &Classify) -> Vec<Pass> {
        self.pass_cut(classify, None).0
    }

    /// [`Grouper::pass`], whose labels `back` cuts back a level once there are more than
    /// [`DEEPER_LABELS`] of them. Also whether none was cut back.
    fn pass_cut(&self, classify: &Classify, back: Option<&Coarsen>) -> (Vec<Pass>, bool) {
        let keep = self.keep;
        let tally = match &self.keys {
            Keys::Rendered { text, count } => {
                let mut tally = Tally::new(back, keep);
                for i in 0..*count {
                    let t = text(i).unwrap_or_default();
                    let raw = t
                        .strip_prefix('"')
                        .and_then(|t| t.strip_suffix('"'))
                        .unwrap_or(&t);
                    let r = self.sizes.entry(i);
                    classify(raw.as_bytes(), &mut |f, label, more| {
                        tally.add(f, (label, more), i, r)
                    });
                }
                tally
            }
            Keys::Strings(s) => {
                let mask = s.index_mask();
                let sizes = self.sizes;
                let chunk_groups = |items: std::ops::Range<usize>| {
                    // Keys come in address order, many to a page: each page is asked for once.
                    let mut asked = 0u64;
                    let _fetch = s.mem.fetch(items.clone().filter_map(|j| {
                        let (_, p, n) = s.key_at(j);
                        let end = p.0.saturating_add(n as u64);
                        (end > asked).then(|| {
                            asked = end.next_multiple_of(crate::memory::PAGE);
                            (p, n as u64)
                        })
                    }));
                    let mut tally = Tally::new(back, keep);
                    for j in items.clone() {
                        // Entries come in key order, their retained sizes at random: fetch ahead.
                        if let Some(&ahead) = s.order[..items.end].get(j + PREFETCH_AHEAD) {
                            sizes.prefetch((ahead & mask) as u32);
                        }
                        let (i, p, n) = s.key_at(j);
                        let bytes = match n {
                            0 => Cow::Borrowed(&[][..]),
                            _ => s.mem.read(p, n).unwrap_or_default(),
                        };
                        // The size is read only for a key counted somewhere.
                        let mut r = None;
                        classify(&bytes, &mut |f, label, more| {
                            let r = *r.get_or_insert_with(|| sizes.entry(i));
                            tally.add(f, (label, more), i, r);
                        });
                    }
                    tally
                };
                let parts: Vec<Tally> = crate::graph::pieces(0..s.order.len(), KEY_CHUNK)
                    .into_par_iter()
                    .map(chunk_groups)
                    .collect();
                let mut all = Tally::new(back, keep);
                for part in parts {
                    all.merge(part);
                }
                all
            }
        };
        (tally.groups, tally.deeper)
    }
}

/// The groups of one piece of a pass, by label; the labels as classified (one delimiter
/// deeper) until there are more than [`DEEPER_LABELS`] of them, then cut back.
struct Tally<'b> {
    groups: Vec<Pass>,
    /// Whether the labels are still as classified.
    deeper: bool,
    /// Cuts a label back a level (`None`: labels stay as classified).
    back: Option<&'b Coarsen<'b>>,
    keep: usize,
}

impl<'b> Tally<'b> {
    fn new(back: Option<&'b Coarsen<'b>>, keep: usize) -> Self {
        Tally {
            groups: Vec::new(),
            deeper: back.is_some(),
            back,
            keep,
        }
    }

    /// Counts entry `i`, which retains `r`, under `label` in pass `f` (`more`: whether its
    /// key goes on below the label).
    fn add(&mut self, f: u32, (label, more): (&[u8], bool), i: u32, r: (u64, u64)) {
        let (label, more) = match self.back {
            Some(b) if !self.deeper => cut_label(b, f, (label, more)),
            _ => (label, more),
        };
        let f = f as usize;
        if self.groups.len() <= f {
            self.groups.resize_with(f + 1, Pass::default);
        }
        match self.groups[f].get_mut(label) {
            Some(g) => {
                g.add(i, r, self.keep);
                g.more |= more;
            }
            None => {
                let mut g = Acc::new();
                g.add(i, r, self.keep);
                g.more = more;
                self.groups[f].insert(label.to_vec(), g);
                self.cut_back_if_many();
            }
        }
    }

    /// Adds another piece's groups to these.
    fn merge(&mut self, mut other: Tally) {
        if self.deeper != other.deeper {
            self.cut_back();
            other.cut_back();
        }
        if self.groups.len() < other.groups.len() {
            self.groups.resize_with(other.groups.len(), Pass::default);
        }
        for (f, groups) in other.groups.into_iter().enumerate() {
            for (label, acc) in groups {
                merge_group(&mut self.groups[f], label, acc, self.keep);
            }
        }
        self.cut_back_if_many();
    }

    /// Cuts the labels back once there are too many as classified.
    fn cut_back_if_many(&mut self) {
        if self.deeper && self.groups.iter().map(HashMap::len).sum::<usize>() > DEEPER_LABELS {
            self.cut_back();
        }
    }

    /// Cuts the labels back a level, merging the groups that then share one.
    fn cut_back(&mut self) {
        if let Some(b) = self.back.filter(|_| self.deeper) {
            self.groups = regrouped(std::mem::take(&mut self.groups), b, self.keep);
            self.deeper = false;
        }
    }
}

/// Cuts a pass's label back to its key's label one level up: `(pass, label)` to that label.
type Coarsen<'c> = dyn for<'k> Fn(u32, &'k [u8]) -> &'k [u8] + Sync + 'c;

/// A closure as a [`Coarsen`] (so that it is general over the label's lifetime).
fn coarsen<F: for<'k> Fn(u32, &'k [u8]) -> &'k [u8] + Sync>(f: F) -> F {
    f
}

/// A label of pass `f` cut back a level by `back`, and whether a key under it goes on below the
/// cut label (`more`: whether it went on below the label).
fn cut_label<'k>(back: &Coarsen, f: u32, (label, more): (&'k [u8], bool)) -> (&'k [u8], bool) {
    let cut = back(f, label);
    // A label cut back is a prefix of the deeper one: shorter when the key goes on.
    (cut, more || cut.len() < label.len())
}

/// The groups of `passes` with their labels cut back by `back`, merged.
fn regrouped(passes: Vec<Pass>, back: &Coarsen, keep: usize) -> Vec<Pass> {
    (passes.into_iter().enumerate())
        .map(|(f, p)| {
            let mut out = Pass::default();
            for (label, mut acc) in p {
                let (cut, more) = cut_label(back, f as u32, (&label, acc.more));
                acc.more = more;
                merge_group(&mut out, cut.to_vec(), acc, keep);
            }
            out
        })
        .collect()
}

/// Adds `acc` to the group of `label` in `pass`, which it starts when there is none.
fn merge_group(pass: &mut Pass, label: Vec<u8>, acc: Acc, keep: usize) {
    match pass.entry(label) {
        std::collections::hash_map::Entry::Occupied(mut o) => o.get_mut().merge(acc, keep),
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(acc);
        }
    }
}

/// The groups of `deeper` (cut one delimiter deeper than `depth`) whose label at `depth` is
/// `label`: that group's children.
fn under(d: &Delims, deeper: &Pass, label: &[u8], depth: usize) -> Pass {
    (deeper.iter())
        .filter(|(l, _)| d.shallower(l, depth) == Some(label))
        .map(|(l, acc)| (l.clone(), acc.clone()))
        .collect()
}

/// How a pass counts a key: it calls the [`Emit`] with each pass that counts the key and its
/// label there (with none: the key is left out).
type Classify<'c> = dyn Fn(&[u8], &mut Emit) + Sync + 'c;

/// Counts the key being classified in a pass under a label, and says whether the key goes on
/// below the label (has a delimiter past it; true when not known).
type Emit<'e> = dyn FnMut(u32, &[u8], bool) + 'e;

/// Guide groups by depth, shallowest first: each depth's labels, to the groups' indices.
type Levels<'g> = Vec<(usize, Labels<'g>)>;

/// Labels of one depth, to the groups' indices.
type Labels<'g> = HashMap<&'g [u8], u32, foldhash::fast::RandomState>;

/// Guide groups by depth (see [`Levels`]).
fn by_depth<'g>(groups: impl Iterator<Item = (usize, &'g Group)>) -> Levels<'g> {
    let mut levels: Levels = Vec::new();
    for (i, g) in groups {
        let at = match levels.iter().position(|(d, _)| *d == g.depth) {
            Some(at) => at,
            None => {
                levels.push((g.depth, Labels::default()));
                levels.len() - 1
            }
        };
        levels[at].1.insert(&g.label, i as u32);
    }
    levels.sort_by_key(|(d, _)| *d);
    levels
}

/// The guide group (of [`by_depth`]) whose label is the key's prefix at the group's depth:
/// that prefix of the key, and the group's index.
fn find<'k>(d: &Delims, key: &'k [u8], levels: &[(usize, Labels)]) -> Option<(&'k [u8], u32)> {
    (levels.iter()).find_map(|(depth, labels)| {
        let label = d.prefix(key, *depth);
        Some((label, *labels.get(label)?))
    })
}

/// The guide's groups with what `found` holds under their labels (nothing: empty).
fn placed(guide: &[Group], found: &mut Pass) -> Vec<Group> {
    (guide.iter())
        .map(|g| Group {
            label: g.label.clone(),
            depth: g.depth,
            acc: found.remove(&g.label).unwrap_or_default(),
            children: Vec::new(),
        })
        .collect()
}

/// The group at `path` (child indices from the top level).
fn group_at<'g>(groups: &'g [Group], path: &[usize]) -> &'g Group {
    let mut g = &groups[path[0]];
    for &c in &path[1..] {
        g = &g.children[c];
    }
    g
}

/// The group at `path`, to change.
fn at_path<'g>(groups: &'g mut [Group], path: &[usize]) -> &'g mut Group {
    let mut g = &mut groups[path[0]];
    for &c in &path[1..] {
        g = &mut g.children[c];
    }
    g
}

impl Group {
    /// The group with nothing in it, unopened.
    fn emptied(&self) -> Group {
        Group {
            label: self.label.clone(),
            depth: self.depth,
            acc: Acc::new(),
            children: Vec::new(),
        }
    }

    /// Whether this child of `parent` holds the parent's keys that go no deeper.
    fn no_deeper(&self, parent: &Group) -> bool {
        self.label == parent.label && self.depth == parent.depth
    }
}

/// Largest first, then by entries, then by label (the same order from run to run).
fn order(x: &Group, y: &Group) -> std::cmp::Ordering {
    (y.acc.bytes.cmp(&x.acc.bytes))
        .then(y.acc.entries.cmp(&x.acc.entries))
        .then(x.label.cmp(&y.label))
}

/// Groups largest first (then by label, so that the order is the same from run to run).
fn sorted(p: Pass, depth: usize) -> Vec<Group> {
    let mut v: Vec<Group> = p
        .into_iter()
        .map(|(label, acc)| Group {
            label,
            depth,
            acc,
            children: Vec::new(),
        })
        .collect();
    v.sort_by(order);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_largest_first_and_the_lowest_index_on_ties() {
        let mut t = Vec::new();
        for (b, i) in [(5, 0), (9, 1), (5, 2), (7, 3), (9, 4), (1, 5)] {
            push_top(&mut t, (b, i), 3);
        }
        assert_eq!(t, vec![(9, 1), (9, 4), (7, 3)]);
        let mut none = Vec::new();
        push_top(&mut none, (1, 1), 0);
        assert!(none.is_empty());
    }

    /// Groups rendered keys (quoted as the renderer quotes strings) with listed sizes.
    fn group(keys: &[&str], sizes: &[u64], how: Grouping) -> (Vec<Group>, Vec<(u64, u32)>) {
        group_cut_by(keys, sizes, how, ":")
    }

    /// [`group`] with keys cut at `delimiters`.
    fn group_cut_by<K: AsRef<str>>(
        keys: &[K],
        sizes: &[u64],
        how: Grouping,
        delimiters: &str,
    ) -> (Vec<Group>, Vec<(u64, u32)>) {
        let text = |i: u32| keys.get(i as usize).map(|k| format!("{:?}", k.as_ref()));
        Grouper {
            keys: Keys::Rendered {
                text: &text,
                count: keys.len() as u32,
            },
            sizes: Sizes::Listed(sizes, &[]),
            delimiters,
            keep: 2,
            shown: 10,
        }
        .group(how)
    }

    #[test]
    fn the_tree_is_the_same_when_a_pass_also_cuts_one_delimiter_deeper() {
        // A dominant branch three levels deep (a → a:b → a:b:c, beside a:b:d and a:x), and,
        // in the second set, a family with a label per key one level down (u:0 … u:1499),
        // more than a pass keeps one delimiter deeper.
        let mut keys: Vec<String> = Vec::new();
        for i in 0..600 {
            keys.push(format!("a:b:c:{i}"));
            keys.push(format!("a:b:d:{i}"));
            keys.push(format!("a:x:{}", i % 7));
        }
        keys.push("lone".into());
        // a:b:c's keys retain the most.
        let size = |(i, k): (usize, &String)| {
            (i % 13) as u64 + if k.starts_with("a:b:c") { 100 } else { 10 }
        };
        let sizes: Vec<u64> = keys.iter().enumerate().map(size).collect();
        let mut wide = keys.clone();
        wide.extend((0..1500).map(|i| format!("u:{i}:x")));
        let wide_sizes: Vec<u64> = wide.iter().enumerate().map(size).collect();
        for (keys, sizes) in [(&keys, &sizes), (&wide, &wide_sizes)] {
            // A delimiter that is not ASCII (in no key) keeps each pass at the depth asked.
            // It does not know which keys go no deeper, and so tries every group it opens.
            let mut deeper = group_cut_by(keys, sizes, Grouping::Tree, ":");
            let mut asked = group_cut_by(keys, sizes, Grouping::Tree, ":\u{b7}");
            let a = (deeper.0.iter())
                .find(|g| g.label == b"a")
                .expect("group a");
            assert_eq!(a.children[0].label, b"a:b");
            assert!(a.acc.more && a.children[0].acc.more);
            assert_eq!(a.children[0].children[0].label, b"a:b:c");
            assert!(!a.children[0].children[0].acc.more);
            forget_more(&mut deeper.0);
            forget_more(&mut asked.0);
            assert_eq!(format!("{deeper:?}"), format!("{asked:?}"));
        }
    }

    #[test]
    fn keys_whose_length_is_not_kept_are_read_from_their_headers() {
        // The largest map of a sample, its keys set up twice: with lengths kept below 255 (all
        // of them here) and with none kept (every key's header read again).
        let core = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/cores/go1.26.6/ledger/core.zst"
        );
        let opts = crate::process::OpenOptions::default();
        let p = crate::process::Process::open(std::path::Path::new(core), &opts).unwrap();
        let a = crate::analysis::Analysis::run(&p, &crate::analysis::NoProgress).unwrap();
        let m = (a.maps.maps.iter()).max_by_key(|m| m.entries).unwrap();
        let entries = a.maps.entries_of(m);
        let slot = |i: u32| keys::deref(&p.mem, m.key_of(entries[i as usize]), m.key.indirect);
        let n = entries.len() as u32;
        let kept = StringKeys::new(&p.mem, n, &slot);
        let read = StringKeys::keeping_below(&p.mem, n, &slot, 0);
        let all = |k: &StringKeys| (0..n as usize).map(|j| k.key_at(j)).collect::<Vec<_>>();
        let (kept, read) = (all(&kept), all(&read));
        assert_eq!(kept, read);
        assert!(n > 1000 && kept.iter().all(|&(_, p, len)| p.0 != 0 && len > 8));
    }

    /// The groups with [`Acc::more`] cleared, to compare trees found with and without it.
    fn forget_more(groups: &mut [Group]) {
        for g in groups {
            g.acc.more = false;
            forget_more(&mut g.children);
        }
    }

    #[test]
    fn a_dominant_group_whose_keys_go_no_deeper_is_not_read_again() {
        // `acct:eu-west` holds most bytes and its keys end there: one pass finds the top level
        // and the level below, and no pass needs to look under `acct:eu-west`.
        let keys: Vec<String> = (0..300)
            .map(|i| match i % 3 {
                0 | 1 => format!("acct:eu-west:{i}"),
                _ => format!("acct:us-east:{i}"),
            })
            .collect();
        let sizes: Vec<u64> = (0..300).map(|i| 10 + i % 7).collect();
        let reads = |delimiters: &str| {
            let count = std::cell::Cell::new(0u32);
            let text = |i: u32| {
                count.set(count.get() + 1);
                keys.get(i as usize).map(|k| format!("{k:?}"))
            };
            let (mut groups, _) = Grouper {
                keys: Keys::Rendered {
                    text: &text,
                    count: keys.len() as u32,
                },
                sizes: Sizes::Listed(&sizes, &[]),
                delimiters,
                keep: 2,
                shown: 10,
            }
            .group(Grouping::Tree);
            forget_more(&mut groups);
            (groups, count.get() / keys.len() as u32)
        };
        let (knows, passes) = reads(":");
        // With a delimiter that is not ASCII, passes cut at the depth asked, one per level.
        let (tries, passes_trying) = reads(":\u{b7}");
        assert_eq!(format!("{knows:?}"), format!("{tries:?}"));
        assert_eq!(knows[0].children[0].label, b"acct:eu-west");
        assert_eq!((passes, passes_trying), (1, 3));
    }

    fn labels(groups: &[Group]) -> Vec<(String, u64, u64)> {
        (groups.iter())
            .map(|g| {
                let label = String::from_utf8_lossy(&g.label).into_owned();
                (label, g.acc.entries, g.acc.bytes)
            })
            .collect()
    }

    #[test]
    fn the_tree_opens_where_most_bytes_are_and_stays_closed_elsewhere() {
        let keys = [
            "acct:eu:1",
            "acct:eu:2",
            "acct:eu:3",
            "acct:us:1",
            "sess:a",
            "sess:b",
        ];
        let sizes = [100, 100, 100, 50, 40, 30];
        let (groups, top) = group(&keys, &sizes, Grouping::Tree);
        assert_eq!(
            labels(&groups),
            [("acct".into(), 4, 350), ("sess".into(), 2, 70)]
        );
        // acct:eu holds 300 of acct's 350 bytes: acct opens, and acct:eu is tried next, whose
        // children (1, 2, 3) hold a third each and stay closed.
        assert_eq!(
            labels(&groups[0].children),
            [("acct:eu".into(), 3, 300), ("acct:us".into(), 1, 50)]
        );
        assert!(groups[0].children[0].children.is_empty());
        // A key's last field is never a group of its own: sess (one field after it) stays
        // closed however its bytes are spread.
        assert!(groups[1].children.is_empty());
        // The two largest entries of the map, lowest index first on ties.
        assert_eq!(top, vec![(100, 0), (100, 1)]);
    }

    #[test]
    fn a_group_with_one_deeper_child_becomes_that_child() {
        let keys = ["a:b:c1", "a:b:c2", "a:b:c3"];
        let (groups, _) = group(&keys, &[1, 1, 1], Grouping::Tree);
        assert_eq!(labels(&groups), [("a:b".into(), 3, 3)]);
        assert_eq!(groups[0].depth, 2);
        assert!(groups[0].children.is_empty());
    }

    #[test]
    fn fixed_depth_cuts_before_the_nth_delimiter() {
        let keys = ["x:1:p", "x:1:q", "x:2:p", "y"];
        let (groups, _) = group(&keys, &[4, 3, 2, 1], Grouping::Depth(2));
        assert_eq!(
            labels(&groups),
            [
                ("x:1".into(), 2, 7),
                ("x:2".into(), 1, 2),
                // No delimiter: no prefix (shown as "(no prefix)").
                (String::new(), 1, 1)
            ]
        );
        assert!(groups.iter().all(|g| g.children.is_empty()));
    }

    #[test]
    fn shapes_put_keys_that_differ_in_numbers_together() {
        let keys = ["user:17", "user:9000", "user:abc"];
        let (groups, _) = group(&keys, &[1, 2, 4], Grouping::Shape);
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].acc.entries, groups[0].acc.bytes), (1, 4));
        assert_eq!((groups[1].acc.entries, groups[1].acc.bytes), (2, 3));
    }

    #[test]
    fn following_a_guide_counts_each_label_as_grouping_would() {
        let old = [
            "acct:eu:1",
            "acct:eu:2",
            "acct:eu:3",
            "acct:us:1",
            "sess:a",
            "x",
        ];
        let (guide, _) = group(&old, &[100, 100, 100, 50, 40, 1], Grouping::Tree);
        // acct opens into acct:eu and acct:us; sess stays closed; "x" has no prefix.
        let new = [
            "acct:eu:1",
            "acct:ap:1",
            "acct:ap:2",
            "job:a",
            "job:b",
            "acct:z",
        ];
        let sizes = [10, 20, 20, 5, 5, 7];
        let text = |i: u32| new.get(i as usize).map(|k| format!("{k:?}"));
        let grouper = Grouper {
            keys: Keys::Rendered {
                text: &text,
                count: new.len() as u32,
            },
            sizes: Sizes::Listed(&sizes, &[]),
            delimiters: ":",
            keep: 0,
            shown: 10,
        };
        let (groups, _) = grouper.follow(Grouping::Tree, &guide);
        // The guide's groups first, in its order, then the new ones, largest first.
        assert_eq!(
            labels(&groups),
            [
                ("acct".into(), 4, 57),
                ("sess".into(), 0, 0),
                (String::new(), 0, 0),
                ("job".into(), 2, 10)
            ]
        );
        // Under acct: the guide's children, then acct:ap, then the key with no deeper field.
        assert_eq!(
            labels(&groups[0].children),
            [
                ("acct:eu".into(), 1, 10),
                ("acct:us".into(), 0, 0),
                ("acct:ap".into(), 2, 40),
                ("acct".into(), 1, 7)
            ]
        );
        assert_eq!(groups[0].children[3].depth, groups[0].depth);
        // A fixed depth: the same labels as grouping finds, in the guide's order.
        let (flat, _) = group(&old, &[1; 6], Grouping::Depth(1));
        let (followed, _) = grouper.follow(Grouping::Depth(1), &flat);
        let (direct, _) = grouper.group(Grouping::Depth(1));
        let count = |gs: &[Group], l: &str| {
            gs.iter()
                .find(|g| g.label == l.as_bytes())
                .map(|g| (g.acc.entries, g.acc.bytes))
        };
        for l in ["acct", "job", "sess", ""] {
            assert_eq!(
                count(&followed, l),
                count(&direct, l).or(Some((0, 0))),
                "{l}"
            );
        }
        assert_eq!(followed[0].label, flat[0].label);
    }

    #[test]
    fn whole_is_one_group_of_every_entry() {
        let (groups, top) = group(&["a", "b:c", "d"], &[5, 7, 6], Grouping::Whole);
        assert_eq!(labels(&groups), [(String::new(), 3, 18)]);
        assert_eq!(top, vec![(7, 1), (6, 2)]);
        let (none, top) = group(&[], &[], Grouping::Whole);
        assert!(none.is_empty() && top.is_empty());
    }
}
