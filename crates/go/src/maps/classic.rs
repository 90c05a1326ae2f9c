//! Classic maps: `hmap` → 2^B buckets of 8 slots with overflow chains, growing incrementally.

use super::{Ctx, Decoded, Decoding, Reader, SlotLayout};
use crate::dwarf::TypeRef;
use crate::memory::Addr;

/// tophash values below this mark an empty, deleted or evacuated slot.
const MIN_TOP_HASH: u8 = 5;
/// tophash of a slot emptied by a delete.
const EMPTY_ONE: u8 = 1;
/// tophash[0] values marking an evacuated old bucket (evacuatedX, evacuatedY, evacuatedEmpty).
const EVACUATED: std::ops::RangeInclusive<u8> = 2..=4;
/// hmap.flags: a goroutine is writing the map.
const HASH_WRITING: u64 = 4;
/// hmap.flags: the current growth keeps the bucket count.
const SAME_SIZE_GROW: u64 = 8;
/// Longest overflow chain followed (damage guard).
const MAX_CHAIN: u32 = 1 << 16;
/// Buckets (with their overflow chains) decoded per piece on one core.
const BUCKET_PIECE: u64 = 4096;

/// Decodes a classic map whose `hash<K,V>` header (DWARF type `t`) is at `header`.
/// `stack`: the extent of the stack the header lives on, if it does.
pub(super) fn decode(
    ctx: &Ctx,
    t: TypeRef,
    header: Addr,
    stack: Option<(u64, u64)>,
) -> Option<Decoded> {
    let (_, hf) = ctx.fields(t)?;
    let f = |n: &str| Ctx::field(&hf, n);
    let m = ctx.mem;
    let count = m.u64(header.offset(f("count")?.offset)).ok()?;
    let flags = u64::from(m.u8(header.offset(f("flags")?.offset)).ok()?);
    let b = m.u8(header.offset(f("B")?.offset)).ok()?;
    let buckets_f = f("buckets")?;
    let buckets = m.ptr(header.offset(buckets_f.offset)).ok()?;
    let oldbuckets = m.ptr(header.offset(f("oldbuckets")?.offset)).ok()?;
    let extra = f("extra").and_then(|e| m.ptr(header.offset(e.offset)).ok());
    let bucket_t = ctx.pointee(buckets_f.ty?)?;
    let (binfo, bf) = ctx.fields(bucket_t)?;
    let bfield = |n: &str| Ctx::field(&bf, n);
    let tophash = bfield("tophash")?.offset;
    let keys = bfield("keys")?;
    let values = crate::runtime::maplayout::bucket_values(&bf)?;
    let overflow = bfield("overflow")?.offset;
    let (kt, _) = ctx.array_elem(keys.ty?)?;
    let (vt, _) = ctx.array_elem(values.ty?)?;
    let key = ctx.slot_type(kt);
    let value = ctx.slot_type(vt);
    let bsize = binfo.size;
    if bsize == 0 {
        return None;
    }
    let layout = Bucket {
        tophash,
        keys: keys.offset,
        values: values.offset,
        overflow,
        key_size: ctx.dwarf.byte_size(kt),
        value_size: ctx.dwarf.byte_size(vt),
        size: bsize,
    };
    let mut d = Decoding::new();
    d.stack = stack;
    d.layout = SlotLayout {
        key: (layout.keys, layout.key_size),
        value: (layout.values, layout.value_size),
    };
    d.expect(count);
    if let Some(h) = ctx.object(header) {
        d.storage.push(h);
    }
    let nb = 1u64.checked_shl(u32::from(b)).unwrap_or(u64::MAX);
    let reader = ctx.reader();
    // The buckets (and old buckets while growing) must fit where they are.
    let old_n = if flags & SAME_SIZE_GROW != 0 {
        nb
    } else {
        nb / 2
    };
    for (p, n, what) in [(buckets, nb, "buckets"), (oldbuckets, old_n, "old buckets")] {
        let room = reader.room(p, stack);
        if p.0 != 0 && room < n.saturating_mul(bsize) {
            d.damaged = Some(format!(
                "its header claims 2^{b} {what} of {bsize} B at {p}, but the memory there holds {room} B"
            ));
            return Some((key, value, count, flags & HASH_WRITING != 0, d));
        }
    }
    if oldbuckets.0 != 0 {
        // Mid-growth: old buckets not yet evacuated still hold their entries; evacuated
        // ones were copied to the new buckets, which are read below.
        for i in 0..old_n {
            let ob = oldbuckets.offset(i * bsize);
            let Ok(th0) = m.u8(ob.offset(tophash)) else {
                continue;
            };
            if !EVACUATED.contains(&th0) {
                layout.walk(&reader, ob, &mut d);
            } else {
                d.container(&reader, ob, bsize, layout.keys, layout.overflow);
                d.slots += 8;
            }
        }
    }
    if buckets.0 != 0 {
        d.read_parallel(0..nb, BUCKET_PIECE, |i, d| {
            layout.walk(&reader, buckets.offset(i * bsize), d)
        });
    }
    if let Some(e) = extra.filter(|e| e.0 != 0) {
        add_extra(ctx, e, &mut d);
    }
    Some((key, value, count, flags & HASH_WRITING != 0, d))
}

/// Offsets inside a `bucket<K,V>`.
struct Bucket {
    tophash: u64,
    keys: u64,
    values: u64,
    overflow: u64,
    key_size: u64,
    value_size: u64,
    size: u64,
}

impl Bucket {
    /// The bucket after `b` in its overflow chain (0 at the end, or where it cannot be read).
    fn next(&self, ctx: &Reader, b: Addr) -> Addr {
        if b.0 == 0 {
            return b;
        }
        ctx.mem.ptr(b.offset(self.overflow)).unwrap_or(Addr(0))
    }

    /// How many distinct buckets the chain from `first` holds (at most [`MAX_CHAIN`]), and
    /// whether it leads back to one of them (a loop, which only damage makes). Brent's cycle
    /// detection: constant memory, each link read a few times at most.
    fn chain(&self, ctx: &Reader, first: Addr) -> (u32, bool) {
        if first.0 == 0 {
            return (0, false);
        }
        // Find the loop's length, if there is one, or the chain's end.
        let (mut power, mut len) = (1u32, 1u32);
        let (mut tortoise, mut hare) = (first, self.next(ctx, first));
        let mut steps = 1u32;
        while hare.0 != 0 && hare != tortoise {
            if steps >= MAX_CHAIN {
                return (MAX_CHAIN, false);
            }
            if power == len {
                tortoise = hare;
                power *= 2;
                len = 0;
            }
            hare = self.next(ctx, hare);
            len += 1;
            steps += 1;
        }
        if hare.0 == 0 {
            return (steps, false);
        }
        // A loop of `len` buckets: the distinct ones are those before it and the loop itself.
        let (mut tortoise, mut hare) = (first, first);
        for _ in 0..len {
            hare = self.next(ctx, hare);
        }
        let mut before = 0u32;
        while tortoise != hare {
            tortoise = self.next(ctx, tortoise);
            hare = self.next(ctx, hare);
            before += 1;
        }
        (before.saturating_add(len).min(MAX_CHAIN), true)
    }

    /// Reads a bucket and its overflow chain, each bucket once.
    fn walk(&self, ctx: &Reader, first: Addr, d: &mut Decoding) {
        let (buckets, looped) = self.chain(ctx, first);
        d.looped_chains += u64::from(looped);
        let mut b = first;
        let mut n = 0;
        while b.0 != 0 && n < buckets {
            n += 1;
            let Ok(th) = ctx.mem.read(b.offset(self.tophash), 8) else {
                return;
            };
            let holder = d.container(ctx, b, self.size, self.keys, self.overflow);
            let held = d.held(holder, b, self.size);
            d.slots += 8;
            for (i, &h) in th.iter().enumerate() {
                let i = i as u64;
                if h >= MIN_TOP_HASH {
                    d.entry(b, i, held);
                } else if h == EMPTY_ONE {
                    d.tombstones += 1;
                }
            }
            b = ctx.mem.ptr(b.offset(self.overflow)).unwrap_or(Addr(0));
        }
    }
}

/// Adds `mapextra` and the overflow-bucket slices it keeps to the map's storage.
fn add_extra(ctx: &Ctx, extra: Addr, d: &mut Decoding) {
    if let Some(o) = ctx.object(extra) {
        d.storage.push(o);
    }
    // overflow and oldoverflow are *[]*bmap: the slice header and its backing array.
    for off in [0u64, 8] {
        let Ok(slice) = ctx.mem.ptr(extra.offset(off)) else {
            continue;
        };
        if slice.0 == 0 {
            continue;
        }
        if let Some(o) = ctx.object(slice) {
            d.storage.push(o);
        }
        if let Ok(arr) = ctx.mem.ptr(slice) {
            if let Some(o) = ctx.object(arr) {
                d.storage.push(o);
            }
        }
    }
}
