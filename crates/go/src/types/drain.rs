//! The drain of type inference on every core: typed objects visited in sweeps over the pending
//! ones, cut into pieces that the cores take.
//!
//! The sequential drain gives an object the first type offered to it, so where an object is
//! offered two types the order of visits decides. Where none is, every order types the same
//! objects with the same types: an object is typed in one order exactly when its typed
//! referrer is typed in the other, and both offer it the one type there is. So the cores
//! visit in any order, and every offer to an object typed during the drain is checked against
//! its type; at the first that differs, the drain stops and the sequential one runs from the
//! seeds instead.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use coreheap_graph::{ids_in_word, Bits};
use rayon::prelude::*;

use super::UNTYPED;
use super::{
    holds_references, kept, Facts, Inference, ObjType, Offer, Offers, Reader, Ref, TypeScope, AHEAD,
};
use crate::heap::ObjId;
use crate::objgraph::RawEdges;

/// Pending words (of 64 objects) one core sweeps at a time.
const PIECE_WORDS: usize = 1 << 10;

/// Pending words whose objects a core takes at once, to fetch ahead among them.
const GROUP_WORDS: usize = 4;

/// What the cores know of the interned types while they sweep; the main thread adds to it
/// between sweeps.
#[derive(Default)]
struct Known {
    /// Facts by interned index (none for string data).
    facts: Vec<Option<Arc<Facts>>>,
    /// Interned index by type.
    ids: HashMap<ObjType, u32, foldhash::fast::RandomState>,
    /// By the address of an interface's dynamic type: the type its data word's target is
    /// offered (none: not followed).
    dynamic: HashMap<u64, Option<ObjType>, foldhash::fast::RandomState>,
}

/// What every core reads and writes during the drain.
struct Shared<'s> {
    /// Per object: interned type plus one, [`UNTYPED`].
    of: &'s [AtomicU32],
    /// Objects typed and not visited yet, one bit each.
    pending: &'s [AtomicU64],
    /// Objects typed before the drain: offers to them are not read.
    seeded: &'s Bits,
    scope: TypeScope,
    /// Set when an object is offered a type other than the one it has.
    conflict: AtomicBool,
    reader: Reader<'s>,
    edges: &'s RawEdges,
}

/// One core's part of a sweep (or the main thread's, settling and draining the queue).
struct Worker<'s> {
    shared: &'s Shared<'s>,
    known: &'s Known,
    /// Offers that only the main thread can read: a type not interned yet, an interface's
    /// dynamic type not looked up yet.
    deferred: Vec<(u32, Offer)>,
    /// Objects visited.
    visited: usize,
    /// Where objects typed now go to be visited, when not to the pending bits.
    queue: Option<&'s mut VecDeque<u32>>,
}

impl<'s> Worker<'s> {
    fn new(shared: &'s Shared<'s>, known: &'s Known) -> Worker<'s> {
        Worker {
            shared,
            known,
            deferred: Vec::new(),
            visited: 0,
            queue: None,
        }
    }

    /// Gives object `w` the interned type `ti` if it has none, as the sequential drain's
    /// `give` does, and notes a conflict if it has another.
    fn give(&mut self, w: u32, ti: u32) {
        let facts = self.known.facts.get(ti as usize).and_then(Option::as_deref);
        if !kept(self.shared.scope, facts) {
            return;
        }
        let Some(slot) = self.shared.of.get(w as usize) else {
            return;
        };
        match slot.compare_exchange(UNTYPED, ti + 1, Relaxed, Relaxed) {
            Ok(_) => {
                if holds_references(facts) {
                    match self.queue.as_deref_mut() {
                        Some(q) => q.push_back(w),
                        None => {
                            let bit = 1u64 << (w & 63);
                            self.shared.pending[(w >> 6) as usize].fetch_or(bit, Relaxed);
                        }
                    }
                }
            }
            Err(t) if t != ti + 1 => self.shared.conflict.store(true, Relaxed),
            Err(_) => {}
        }
    }

    /// Visits object `id`, typed.
    fn visit(&mut self, id: u32) {
        self.visited += 1;
        let known = self.known;
        let t = self.shared.of[id as usize].load(Relaxed);
        let Some(Some(facts)) = (t as usize).checked_sub(1).and_then(|i| known.facts.get(i)) else {
            return;
        };
        let o = ObjId(id);
        let shared = self.shared;
        let span = shared.reader.objects.span(o);
        let (targets, words) = shared.edges.of(id);
        shared.reader.offers(o, span, facts, targets, words, self);
    }

    /// Asks the CPU for the type slots and pending bits of object `id`'s first targets.
    fn prefetch_targets(&self, id: u32) {
        self.prefetch_first(self.shared.edges.targets_of(id));
    }

    /// Visits the objects pending in `words`, and those the visits add there, group by group.
    fn sweep(&mut self, words: std::ops::Range<usize>) {
        let mut ids = Vec::with_capacity(GROUP_WORDS * 64);
        for group in words.clone().step_by(GROUP_WORDS) {
            let end = (group + GROUP_WORDS).min(words.end);
            loop {
                ids.clear();
                for wi in group..end {
                    let pending = &self.shared.pending[wi];
                    if pending.load(Relaxed) == 0 {
                        continue;
                    }
                    ids.extend(ids_in_word(wi, pending.swap(0, Relaxed)));
                }
                if ids.is_empty() {
                    break;
                }
                for (k, &id) in ids.iter().enumerate() {
                    if let Some(&later) = ids.get(k + AHEAD as usize) {
                        self.prefetch_targets(later);
                    }
                    self.visit(id);
                }
            }
        }
    }
}

/// In the drain on every core an object offered a type it does not have yet gets it, and a
/// typed object offered another one is a conflict.
impl Offers for Worker<'_> {
    fn wanted(&self, w: u32) -> bool {
        !self.shared.seeded.get(w)
    }

    fn prefetch(&self, w: u32) {
        if let Some(slot) = self.shared.of.get(w as usize) {
            coreheap_graph::prefetch(slot);
        }
        if let Some(bits) = self.shared.pending.get((w >> 6) as usize) {
            coreheap_graph::prefetch(bits);
        }
        self.shared.seeded.prefetch(w);
    }

    fn offer(&mut self, w: u32, offer: Offer) {
        let ty = match offer {
            Offer::Type(t) => t,
            Offer::Dynamic(rtype) => match self.known.dynamic.get(&rtype) {
                Some(Some(t)) => *t,
                Some(None) => return,
                None => return self.deferred.push((w, offer)),
            },
        };
        match self.known.ids.get(&ty) {
            Some(&ti) => self.give(w, ti),
            None => self.deferred.push((w, Offer::Type(ty))),
        }
    }
}

impl Inference<'_> {
    /// Drains on every core what the seeds left pending, reading edges from `edges`. Returns
    /// false, with the state the seeds left put back, when an object was offered two types:
    /// then only the sequential drain gives the types it gives.
    pub(super) fn drain_on_every_core(&mut self, edges: &RawEdges) -> bool {
        let mut seeded = Bits::new(self.of.len());
        for (v, &t) in self.of.iter().enumerate() {
            if t != UNTYPED {
                seeded.set(v as u32);
            }
        }
        let seeds_pending = self.pending.clone();
        let mut of = std::mem::take(&mut self.of);
        let pending: Vec<AtomicU64> = (std::mem::take(&mut self.pending).into_iter())
            .map(AtomicU64::new)
            .collect();
        let shared = Shared {
            of: coreheap_graph::atomic(&mut of),
            pending: &pending,
            seeded: &seeded,
            scope: self.scope,
            conflict: AtomicBool::new(false),
            reader: self.reader(),
            edges,
        };
        let mut known = Known::default();
        self.learn(&mut known);
        let agreed = self.sweeps(&shared, &mut known);
        if agreed {
            self.of = of;
            self.pending = Vec::new();
        } else {
            for (v, t) in of.iter_mut().enumerate() {
                if !seeded.get(v as u32) {
                    *t = UNTYPED;
                }
            }
            self.of = of;
            self.pending = seeds_pending;
        }
        agreed
    }

    /// Sweeps on every core while a sweep finds enough to do, then drains a queue here;
    /// false at a conflict.
    fn sweeps(&mut self, shared: &Shared, known: &mut Known) -> bool {
        let words = shared.pending.len();
        loop {
            let swept: Vec<(Vec<(u32, Offer)>, usize)> =
                (coreheap_graph::pieces(0..words, PIECE_WORDS).into_par_iter())
                    .map(|piece| {
                        let mut w = Worker::new(shared, known);
                        w.sweep(piece);
                        (w.deferred, w.visited)
                    })
                    .collect();
            let visited: usize = swept.iter().map(|(_, v)| v).sum();
            let deferred: Vec<(u32, Offer)> = swept.into_iter().flat_map(|(d, _)| d).collect();
            let settled = !deferred.is_empty();
            self.settle(shared, known, deferred, None);
            if shared.conflict.load(Relaxed) {
                return false;
            }
            if visited == 0 && !settled {
                return true;
            }
            if visited < words / 8 {
                break;
            }
        }
        // Few objects per sweep: a queue, seeded with what is pending.
        let mut queue = VecDeque::new();
        for (wi, pending) in shared.pending.iter().enumerate() {
            queue.extend(ids_in_word(wi, pending.swap(0, Relaxed)));
        }
        while let Some(id) = queue.pop_front() {
            let mut w = Worker::new(shared, known);
            if let Some(&later) = queue.get(AHEAD as usize) {
                w.prefetch_targets(later);
            }
            w.queue = Some(&mut queue);
            w.visit(id);
            let deferred = std::mem::take(&mut w.deferred);
            self.settle(shared, known, deferred, Some(&mut queue));
            if shared.conflict.load(Relaxed) {
                return false;
            }
        }
        true
    }

    /// Reads the offers the cores could not (types to intern, interfaces' dynamic types to
    /// look up), telling `known`, and gives their types; objects typed go to `queue` if there
    /// is one, else to the pending bits.
    fn settle(
        &mut self,
        shared: &Shared,
        known: &mut Known,
        deferred: Vec<(u32, Offer)>,
        queue: Option<&mut VecDeque<u32>>,
    ) {
        let mut typed = Vec::with_capacity(deferred.len());
        for (w, offer) in deferred {
            let ty = match offer {
                Offer::Type(t) => Some(t),
                Offer::Dynamic(rtype) => *(known.dynamic)
                    .entry(rtype)
                    .or_insert_with(|| self.dynamic_type(rtype)),
            };
            if let Some(ty) = ty {
                typed.push((w, self.intern(ty)));
            }
        }
        self.learn(known);
        let mut w = Worker::new(shared, known);
        w.queue = queue;
        for (v, ti) in typed {
            w.give(v, ti);
        }
    }

    /// Tells `known` of the types interned since it last learned, having interned first every
    /// type their values' references can offer, so that the cores seldom meet a new one.
    fn learn(&mut self, known: &mut Known) {
        let mut i = known.facts.len();
        while i < self.types.len() {
            let facts = self.facts_by_type[i].clone();
            if let Some(f) = &facts {
                for &(_, rf) in f.shape.iter() {
                    match rf {
                        Ref::Ptr(Some(t)) | Ref::Slice(Some(t)) => {
                            self.intern(ObjType::Dwarf(t));
                        }
                        Ref::Str => {
                            self.intern(ObjType::StringData);
                        }
                        _ => {}
                    }
                }
                let more = (f.chan_buffer.map(|(_, elem)| elem)).into_iter();
                for t in more.chain(f.swiss_small.map(|s| s.group)) {
                    self.intern(ObjType::Dwarf(t));
                }
            }
            known.facts.push(facts);
            known.ids.insert(self.types[i], i as u32);
            i += 1;
        }
    }
}
