//! `sync.Pool`: what its per-P caches hold. The primary cache (`local`) becomes the victim cache
//! at the next GC, and the victim cache is dropped then, so pooled objects live through at most
//! two collections.

use super::{Ctx, Maps};
use crate::dwarf::Dwarf;
use crate::heap::ObjId;
use crate::memory::Addr;
use crate::types::ObjectTypes;

/// Longest chain of dequeues followed in one per-P cache (damage guard; each dequeue holds
/// twice the one before, so real chains are short).
const MAX_CHAIN: u32 = 64;

/// Field offsets of `sync.Pool` and its caches, from DWARF.
#[derive(Debug, Clone, Copy)]
pub struct PoolLayout {
    local: u64,
    local_size: u64,
    victim: u64,
    victim_size: u64,
    /// `poolLocal`: its size, `private`, `shared.head`.
    per_p: u64,
    private: u64,
    head: u64,
    /// `poolChainElt`: `vals` (a slice of two-word interfaces) and `prev`.
    vals: u64,
    prev: u64,
}

impl PoolLayout {
    /// The layout in this executable; None when it has no `sync.Pool`.
    pub fn detect(d: &Dwarf) -> Option<PoolLayout> {
        const POOL: &str = "sync.Pool";
        const LOCAL: &str = "sync.poolLocal";
        const ELT: &str = "sync.poolChainElt";
        // Atomic pointers became fields of `atomic.Pointer` over the releases.
        let either = |t: &str, a: &str, b: &str| d.offset(t, a).or_else(|_| d.offset(t, b)).ok();
        Some(PoolLayout {
            local: d.offset(POOL, "local").ok()?,
            local_size: d.offset(POOL, "localSize").ok()?,
            victim: d.offset(POOL, "victim").ok()?,
            victim_size: d.offset(POOL, "victimSize").ok()?,
            per_p: d.size_of(LOCAL).ok()?,
            private: d.offset(LOCAL, "poolLocalInternal.private").ok()?,
            head: d.offset(LOCAL, "poolLocalInternal.shared.head").ok()?,
            vals: d.offset(ELT, "poolDequeue.vals").ok()?,
            prev: either(ELT, "prev.v", "prev")?,
        })
    }
}

/// One of a pool's two caches.
#[derive(Debug, Clone, Default)]
pub struct PoolCache {
    /// The array of per-P caches.
    pub array: Option<ObjId>,
    /// The objects it holds (each interface's value), in cache order.
    pub held: Vec<ObjId>,
}

/// A `sync.Pool` and what it holds.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Where the `sync.Pool` value is.
    pub addr: Addr,
    /// The primary cache: kept through the next GC (as the victim cache).
    pub local: PoolCache,
    /// The victim cache: dropped at the next GC.
    pub victim: PoolCache,
}

impl Maps {
    /// Reads the `sync.Pool` at `addr`, typing its caches' arrays and dequeues on the way.
    pub(super) fn read_pool(
        &mut self,
        ctx: &Ctx,
        types: &mut ObjectTypes,
        l: &PoolLayout,
        addr: Addr,
    ) {
        let cache = |types: &mut ObjectTypes, at: u64, size_at: u64| {
            let m = ctx.mem;
            let mut c = PoolCache::default();
            let (Ok(array), Ok(n)) = (m.ptr(addr.offset(at)), m.u64(addr.offset(size_at))) else {
                return c;
            };
            c.array = ctx.object(array).filter(|_| array.0 != 0);
            let Some(o) = c.array else { return c };
            // No more per-P caches than the array holds.
            let n = n.min(ctx.objects.size(o) / l.per_p.max(1));
            set_type(ctx, types, o, "sync.poolLocal");
            let mut held = |eface: Addr| {
                let typ = m.u64(eface).unwrap_or(0);
                let val = m.u64(eface.offset(8)).unwrap_or(0);
                if typ != 0 && val != 0 {
                    c.held.extend(ctx.object(Addr(val)));
                }
            };
            for p in 0..n {
                let local = array.offset(p * l.per_p);
                held(local.offset(l.private));
                let mut elt = m.ptr(local.offset(l.head)).unwrap_or(Addr(0));
                for _ in 0..MAX_CHAIN {
                    if elt.0 == 0 {
                        break;
                    }
                    if let Some(e) = ctx.object(elt) {
                        set_type(ctx, types, e, "sync.poolChainElt");
                    }
                    let vals = m.ptr(elt.offset(l.vals)).unwrap_or(Addr(0));
                    let len = m.u64(elt.offset(l.vals + 8)).unwrap_or(0);
                    // The slots of one dequeue lie in one object.
                    let room = ctx.object(vals).map_or(0, |o| ctx.objects.size(o) / 16);
                    for i in 0..len.min(room) {
                        held(vals.offset(16 * i));
                    }
                    elt = m.ptr(elt.offset(l.prev)).unwrap_or(Addr(0));
                }
            }
            c
        };
        let local = cache(types, l.local, l.local_size);
        let victim = cache(types, l.victim, l.victim_size);
        self.pools.push(Pool {
            addr,
            local,
            victim,
        });
    }
}

/// Gives an untyped object the named DWARF type.
fn set_type(ctx: &Ctx, types: &mut ObjectTypes, o: ObjId, name: &str) {
    if let Some(t) = ctx.dwarf.type_named(name) {
        super::set_type(ctx, types, o, t);
    }
}
