//! Map headers that no typed path reaches (behind an `unsafe.Pointer`, say), found backwards from
//! the bucket or group arrays the allocator typed in their malloc headers.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::keys::short_type_name;
use super::{Ctx, Reader};
use crate::dwarf::{TypeKind, TypeRef};
use crate::heap::ObjId;
use crate::memory::Addr;
use crate::objgraph::RawEdges;
use crate::types::{ObjType, ObjectTypes};

/// How to climb from a storage array to its map header, for one map type.
#[derive(Debug, Clone, Copy)]
enum Climb {
    /// Classic: the header's `buckets` (or `oldbuckets`) points at the array.
    Classic {
        header: TypeRef,
        buckets: u64,
        oldbuckets: u64,
    },
    /// Swiss: table.groups.data points at the array; a directory array points at the table;
    /// the header's dirPtr points at the directory.
    Swiss {
        header: TypeRef,
        groups_data: u64,
        dir_ptr: u64,
    },
}

/// For each bucket or group type of the executable's maps, how to reach its header.
fn climbs(ctx: &Ctx) -> HashMap<String, Climb> {
    let mut out = HashMap::new();
    let d = ctx.dwarf;
    let names: Vec<(String, TypeRef)> = d
        .named_types()
        .filter(|(n, _)| n.starts_with("map<") || n.starts_with("hash<"))
        .map(|(n, r)| (n.to_string(), r))
        .collect();
    for (name, h) in names {
        let Some((_, hf)) = ctx.fields(h) else {
            continue;
        };
        let f = |n: &str| hf.iter().find(|x| x.name == n).cloned();
        if name.starts_with("hash<") {
            let (Some(b), Some(ob)) = (f("buckets"), f("oldbuckets")) else {
                continue;
            };
            let climb = Climb::Classic {
                header: h,
                buckets: b.offset,
                oldbuckets: ob.offset,
            };
            if let Some(bucket) =
                b.ty.and_then(|t| ctx.pointee(t))
                    .and_then(|t| type_name(ctx, t))
            {
                out.insert(bucket, climb);
            }
            // The runtime names the bucket type `map.bucket[K]V` with short package names.
            // and its DWARF describes it again as `noalg.map.bucket[K]V` with full names.
            if let Some((k, v)) = super::keys::split_key_value(&name["hash<".len()..name.len() - 1])
            {
                out.insert(
                    format!("map.bucket[{}]{}", short_type_name(k), short_type_name(v)),
                    climb,
                );
                out.insert(format!("noalg.map.bucket[{k}]{v}"), climb);
            }
        } else {
            let Some(path) = crate::runtime::maplayout::SwissPath::of(d, h) else {
                continue;
            };
            let Some(group) = type_name(ctx, path.group) else {
                continue;
            };
            out.insert(
                group,
                Climb::Swiss {
                    header: h,
                    groups_data: path.groups_data(),
                    dir_ptr: path.dir_ptr.offset,
                },
            );
        }
    }
    out
}

pub use crate::runtime::RuntimeTypes;

/// The runtime's name for the type of object `o` of span `si`, from its malloc header or its
/// span's `largeType` (Go 1.22+).
fn header_type_name(
    ctx: &Reader,
    rt: Option<&RuntimeTypes>,
    si: usize,
    o: ObjId,
) -> Option<String> {
    let rt = rt?;
    let span = &ctx.heap.spans[si];
    // Small objects name their type in a malloc header, large ones in their span.
    let typ = if span.has_malloc_headers() {
        ctx.mem.ptr(ctx.objects.addr_in(si, o)).ok()?
    } else if span.has_large_type() {
        ctx.mem.ptr(span.mspan.offset(rt.large_type_off?)).ok()?
    } else {
        return None;
    };
    rt.name(ctx.mem, typ)
}

/// A type's DWARF name.
fn type_name(ctx: &Ctx, t: TypeRef) -> Option<String> {
    ctx.dwarf
        .info(t)
        .ok()
        .map(|i| i.name.clone())
        .filter(|n| !n.is_empty())
}

/// Objects whose pointers one core checks at a time when looking for referrers.
const REFERRER_PIECE: usize = 1 << 16;

/// For each target object, the objects that point at it (in id order) and the offset of the
/// pointer word.
fn referrers(
    ctx: &Ctx,
    raw: &RawEdges,
    targets: &HashSet<u32>,
) -> HashMap<u32, Vec<(ObjId, u64, bool)>> {
    let mut wanted = crate::graph::Bits::new(ctx.objects.len());
    for &t in targets {
        wanted.set(t);
    }
    let found: Vec<Vec<(u32, ObjId, u64, bool)>> =
        crate::graph::pieces(0..ctx.objects.len(), REFERRER_PIECE)
            .into_par_iter()
            .map(|ids| {
                let mut found = Vec::new();
                for id in ids {
                    let (ts, words) = raw.of(id as u32);
                    for (&t, w) in ts.iter().zip(words) {
                        if wanted.get(t) {
                            found.push((t, ObjId(id as u32), w.offset(), w.at_start()));
                        }
                    }
                }
                found
            })
            .collect();
    let mut out: HashMap<u32, Vec<(ObjId, u64, bool)>> = HashMap::new();
    for (t, r, off, start) in found.into_iter().flatten() {
        out.entry(t).or_default().push((r, off, start));
    }
    out
}

/// Headers found from storage no decoded map owns: on the heap, and on goroutine stacks.
#[derive(Debug, Default)]
pub(super) struct Orphans {
    /// Heap objects that are map headers, with their type.
    pub heap: Vec<(ObjId, TypeRef)>,
    /// Headers in stack frames, typed.
    pub stack: Vec<crate::roots::StackHeader>,
}

/// Headers of maps whose storage the allocator typed but that no decoded map owns.
// One function: candidates from heap objects and from frame words climb the same paths to a
// header (`climbs`, made at its start) and meet the same final check; the steps are
// commented.
pub(super) fn orphan_headers(
    ctx: &Ctx,
    types: &ObjectTypes,
    raw: &RawEdges,
    known: &crate::graph::Bits,
    rtypes: Option<&RuntimeTypes>,
    stacks: &crate::roots::StackMaps,
) -> Orphans {
    let climbs = climbs(ctx);
    // Per interned type, its climb: the name is looked up once per type, not per object.
    let by_type: Vec<Option<Climb>> = types.per_type(|t, name| match t {
        // The same type can have several DIEs: match by name.
        ObjType::Dwarf(_) => climbs.get(name).copied(),
        ObjType::StringData => None,
    });
    let reader = ctx.reader();
    // Span by span, so that each object's span is known without a search; `known` is asked
    // only about candidates.
    let orphans: HashMap<u32, Climb> = (0..ctx.heap.spans.len())
        .into_par_iter()
        .flat_map_iter(|si| {
            let (climbs, by_type) = (&climbs, &by_type);
            reader.objects.span_ids(si).filter_map(move |id| {
                let climb = match types.interned(ObjId(id)) {
                    Some(t) => by_type.get(t).copied().flatten(),
                    // Untyped: the allocator's own name for the type, from its malloc header.
                    None => header_type_name(&reader, rtypes, si, ObjId(id))
                        .and_then(|n| climbs.get(&n).copied()),
                }?;
                (!known.get(id)).then_some((id, climb))
            })
        })
        .collect();
    if orphans.is_empty() {
        return Orphans::default();
    }
    let untyped = |o: ObjId| types.get(o).is_none();
    // Headers in frames: a frame word holding the start of `o`, `off` bytes into a header.
    let mut on_stack: Vec<crate::roots::StackHeader> = Vec::new();
    let mut from_stack = |o: ObjId, off: u64, header: TypeRef| {
        let start = ctx.objects.value_in(ctx.objects.span(o), o).0;
        for &(_, slot, frame) in stacks.words_to(start.0) {
            let Some(h) = slot.0.checked_sub(off).map(Addr) else {
                continue;
            };
            if let Some(mut h) = stacks.unnamed(frame, h) {
                h.ty = Some(header);
                if !on_stack.iter().any(|x| x.header == h.header) {
                    on_stack.push(h);
                }
            }
        }
    };
    // A header is at least as large as its type: `mapextra.nextOverflow`, which points into a
    // bucket array at the header's `buckets` offset, lives in a smaller object.
    let holds = |o: ObjId, t: TypeRef| ctx.objects.size(o) >= ctx.dwarf.byte_size(t);
    let mut found = Vec::new();
    let refs = referrers(ctx, raw, &orphans.keys().copied().collect());
    // Swiss: orphan groups array ← table ← directory ← header.
    let mut tables: HashMap<u32, Climb> = HashMap::new();
    for (o, climb) in &orphans {
        match *climb {
            Climb::Classic {
                header,
                buckets,
                oldbuckets,
            } => {
                from_stack(ObjId(*o), buckets, header);
                from_stack(ObjId(*o), oldbuckets, header);
            }
            // A small map's one group, which its header points at.
            Climb::Swiss {
                header, dir_ptr, ..
            } => from_stack(ObjId(*o), dir_ptr, header),
        }
        for &(r, off, start) in refs.get(o).into_iter().flatten() {
            match *climb {
                // `buckets` and `oldbuckets` point at the array's first bucket.
                Climb::Classic {
                    header,
                    buckets,
                    oldbuckets,
                } if (off == buckets || off == oldbuckets)
                    && start
                    && untyped(r)
                    && holds(r, header) =>
                {
                    found.push((r, header))
                }
                Climb::Swiss { groups_data, .. } if off == groups_data => {
                    tables.insert(r.0, *climb);
                }
                _ => {}
            }
        }
    }
    if !tables.is_empty() {
        let refs = referrers(ctx, raw, &tables.keys().copied().collect());
        let mut dirs: HashMap<u32, Climb> = HashMap::new();
        for (t, climb) in &tables {
            for &(r, _, _) in refs.get(t).into_iter().flatten() {
                if untyped(r) {
                    dirs.insert(r.0, *climb);
                }
            }
        }
        let refs = referrers(ctx, raw, &dirs.keys().copied().collect());
        for (dir, climb) in &dirs {
            let Climb::Swiss {
                header, dir_ptr, ..
            } = *climb
            else {
                continue;
            };
            from_stack(ObjId(*dir), dir_ptr, header);
            for &(r, off, _) in refs.get(dir).into_iter().flatten() {
                if off == dir_ptr && untyped(r) && holds(r, header) {
                    found.push((r, header));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    // Keep only candidates whose type really is a map header struct.
    let is_struct = |t: TypeRef| {
        matches!(
            ctx.dwarf
                .resolve(t)
                .map(|(_, i)| matches!(i.kind, TypeKind::Struct(_))),
            Ok(true)
        )
    };
    found.retain(|(_, t)| is_struct(*t));
    on_stack.retain(|h| h.ty.is_some_and(is_struct));
    on_stack.sort_by_key(|h| h.header);
    Orphans {
        heap: found,
        stack: on_stack,
    }
}

/// Classic map headers no typed path reaches, on a runtime that writes no malloc headers
/// (Go 1.21): untyped objects of a header's size whose `buckets` is the start of an untyped
/// object that holds exactly `2^B` buckets of some map type. A candidate type is kept when the
/// header's count equals the entries it decodes and every value pointer points at an object
/// of the value type's size, and the bucket array's pointer words (from the heap's bitmap) lie
/// where the type's value pointers are and nowhere for scalar values; a header is typed only
/// when one type (up to names) is left.
// One function: each candidate header is checked against every candidate map type in turn
// (size, bucket count, values, pointer words), and the checks share the per-type sizes made
// at its start; the steps are commented.
pub(super) fn untyped_classic_headers(
    ctx: &Ctx,
    types: &ObjectTypes,
    raw: &RawEdges,
    known: &crate::graph::Bits,
) -> Vec<(ObjId, TypeRef)> {
    let climbs = climbs(ctx);
    let mut headers: Vec<TypeRef> = (climbs.values())
        .filter_map(|c| match c {
            Climb::Classic { header, .. } => Some(*header),
            Climb::Swiss { .. } => None,
        })
        .collect();
    headers.sort_unstable();
    headers.dedup();
    let Some(&first) = headers.first() else {
        return Vec::new();
    };
    let Some((_, fields)) = ctx.fields(first) else {
        return Vec::new();
    };
    let field = |n: &str| fields.iter().find(|f| f.name == n).map(|f| f.offset);
    let (Some(count_off), Some(b_off), Some(buckets_off)) =
        (field("count"), field("B"), field("buckets"))
    else {
        return Vec::new();
    };
    let header_size = ctx.dwarf.byte_size(first);
    // Per header type: bucket size, and for pointer values the pointee's size (`Some`), for
    // scalar values `None` (`Some(None)`), for others no check (`None`).
    let shapes: Vec<(TypeRef, u64, Option<Option<u64>>)> = (headers.iter())
        .filter_map(|&h| {
            let (_, hf) = ctx.fields(h)?;
            let b = hf.iter().find(|f| f.name == "buckets")?;
            let bucket = ctx.pointee(b.ty?)?;
            let (binfo, bf) = ctx.fields(bucket)?;
            let values = crate::runtime::maplayout::bucket_values(&bf)?;
            let (vt, _) = ctx.array_elem(values.ty?)?;
            let check = match (ctx.pointee(vt), ctx.dwarf.resolve(vt).ok()) {
                (Some(p), _) => Some(Some(ctx.dwarf.byte_size(p))),
                (None, Some((_, i))) if matches!(i.kind, TypeKind::Base) => Some(None),
                _ => None,
            };
            Some((h, binfo.size, check))
        })
        .collect();
    let reader = ctx.reader();
    let m = ctx.mem;
    let mut out = Vec::new();
    for si in 0..ctx.heap.spans.len() {
        let span = &ctx.heap.spans[si];
        if span.noscan() || span.elemsize < header_size || span.elemsize > 2 * header_size {
            continue;
        }
        for id in ctx.objects.span_ids(si) {
            let o = ObjId(id);
            let h = ctx.objects.addr_in(si, o);
            if types.get(o).is_some() || known.get(id) {
                continue;
            }
            let (Ok(count), Ok(b), Ok(buckets)) = (
                m.u64(h.offset(count_off)),
                m.u8(h.offset(b_off)),
                m.ptr(h.offset(buckets_off)),
            ) else {
                continue;
            };
            if count == 0 || b > 30 || buckets.0 == 0 {
                continue;
            }
            let Some(arr) = reader.object(buckets) else {
                continue;
            };
            if ctx.objects.addr(arr) != buckets || types.get(arr).is_some() {
                continue;
            }
            let size = ctx.objects.size(arr);
            let mut fits: Vec<TypeRef> = Vec::new();
            for &(t, bs, pointee) in &shapes {
                // The array is the allocator's rounding of 2^B buckets and, from B = 4, the
                // 2^(B-4) overflow buckets made with them.
                let need = (1u64 << b) * bs;
                if need > size || size - need >= need / 4 + crate::heap::PAGE_SIZE {
                    continue;
                }
                let Some((_, _, n, false, d)) =
                    super::decode_at(ctx, super::MapImpl::Classic, t, h, None)
                else {
                    continue;
                };
                if n != count || d.entries.len() as u64 != count {
                    continue;
                }
                // Pointer values point at objects of the value type's size class, and are
                // pointer words of the array; scalar values are not.
                let words: std::collections::HashSet<u64> =
                    raw.of(arr.0).1.iter().map(|w| w.offset()).collect();
                let plausible = pointee.map_or(true, |want| {
                    let layout = d.layout;
                    d.entries.iter().take(64).all(|e| {
                        let slot = e.slot_in(layout.value);
                        // Only slots in the array itself (not in an overflow bucket
                        // elsewhere) are checked against its pointer words.
                        let within = slot.0.checked_sub(buckets.0).filter(|&r| r < size);
                        let is_word = within.map_or(true, |r| words.contains(&r));
                        match (m.u64(slot), want) {
                            (Ok(0), _) => true,
                            (Ok(_), None) => within.is_none() || !is_word,
                            (Ok(p), Some(want)) => {
                                is_word
                                    && reader.object(Addr(p)).is_some_and(|x| {
                                        let have = ctx.objects.size(x);
                                        have >= want && have < want.max(8) * 2
                                    })
                            }
                            (Err(_), _) => false,
                        }
                    })
                });
                if plausible {
                    fits.push(t);
                }
            }
            // Names of the survivors: one, or none is typed.
            let mut names: Vec<String> = fits.iter().filter_map(|&t| type_name(ctx, t)).collect();

            names.sort();
            names.dedup();
            if names.len() == 1 {
                out.push((o, fits[0]));
            }
        }
    }
    out
}
