//! `sync.Map` read as one map of its live entries: the read-only and dirty Go maps of `*entry`
//! (Go ≤ 1.23), or the hash trie of `internal/sync.HashTrieMap` (Go ≥ 1.24).

use std::collections::HashMap;

use super::{Ctx, MapHome, Maps};
use crate::dwarf::{Dwarf, TypeKind, TypeRef};
use crate::heap::ObjId;
use crate::memory::Addr;
use crate::types::{ObjType, ObjectTypes};

/// Most trie levels: a 64-bit hash, 4 bits a level.
const MAX_DEPTH: u32 = 16;

/// The DWARF names of the hash trie's node types for `sync.Map` (Go ≥ 1.24): the instance for
/// `any`, or (when the linker kept only that) the shape instance, laid out alike.
const TRIE_INDIRECT: [&str; 2] = [
    "internal/sync.indirect[interface {},interface {}]",
    "internal/sync.indirect[go.shape.interface {},go.shape.interface {}]",
];
const TRIE_ENTRY: [&str; 2] = [
    "internal/sync.entry[interface {},interface {}]",
    "internal/sync.entry[go.shape.interface {},go.shape.interface {}]",
];

/// How this executable's `sync.Map` keeps its entries, with the offsets to read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncLayout {
    /// Go ≤ 1.23: `read` (an atomic pointer to a `readOnly` holding map `m`) and `dirty`,
    /// both `map[any]*entry`; an entry's `p` points at the boxed value, or is nil (deleted) or
    /// `expunged`.
    ReadDirty {
        /// `Map.read.v`.
        read: u64,
        /// `Map.dirty`.
        dirty: u64,
        /// The header struct of `map[any]*entry`.
        header: TypeRef,
        /// `readOnly.m`.
        readonly_m: u64,
        /// `entry.p.v`.
        entry_p: u64,
        /// The value of `sync.expunged`: the marker of an expunged entry.
        expunged: u64,
        /// The `readOnly` and `entry` types, given to the objects found.
        types: (TypeRef, TypeRef),
    },
    /// Go ≥ 1.24: `m.root` points at a trie of `indirect` nodes (16 children each) whose leaves
    /// are `entry` nodes (key, value, and an overflow chain for equal hashes).
    HashTrie {
        /// `Map.m.root.v`.
        root: u64,
        /// `node.isEntry`, at the start of both node kinds.
        is_entry: u64,
        /// `indirect.children`.
        children: u64,
        /// `entry.overflow.v`.
        overflow: u64,
        /// `entry.key`.
        key: u64,
        /// `entry.value`.
        value: u64,
        /// The `indirect` and `entry` types, given to the objects found.
        types: (TypeRef, TypeRef),
    },
}

impl SyncLayout {
    /// The layout of `sync.Map` in this executable, given the value of the `sync.expunged`
    /// global (Go ≤ 1.23); None when it has no `sync.Map`.
    pub fn detect(
        dwarf: &Dwarf,
        features: &crate::runtime::Features,
        expunged: Option<u64>,
    ) -> Option<SyncLayout> {
        const MAP: &str = "sync.Map";
        if !features.sync_map_trie {
            let (dirty, dirty_ty) = dwarf.field_path(MAP, "dirty").ok()?;
            return Some(SyncLayout::ReadDirty {
                read: dwarf.offset(MAP, "read.v").ok()?,
                dirty,
                header: dwarf.map_header_type(dirty_ty?)?,
                readonly_m: dwarf.offset("sync.readOnly", "m").ok()?,
                entry_p: dwarf.offset("sync.entry", "p.v").ok()?,
                expunged: expunged?,
                types: (
                    dwarf.type_named("sync.readOnly")?,
                    dwarf.type_named("sync.entry")?,
                ),
            });
        }
        let indirect = TRIE_INDIRECT.into_iter().find(|t| dwarf.has_type(t))?;
        let entry = TRIE_ENTRY.into_iter().find(|t| dwarf.has_type(t))?;
        Some(SyncLayout::HashTrie {
            root: dwarf.offset(MAP, "m.root.v").ok()?,
            is_entry: dwarf.offset(indirect, "node.isEntry").ok()?,
            children: dwarf.offset(indirect, "children").ok()?,
            overflow: dwarf.offset(entry, "overflow.v").ok()?,
            key: dwarf.offset(entry, "key").ok()?,
            value: dwarf.offset(entry, "value").ok()?,
            types: (dwarf.type_named(indirect)?, dwarf.type_named(entry)?),
        })
    }

    /// The implementation, as reports name it.
    pub fn imp(&self) -> SyncImpl {
        match self {
            SyncLayout::ReadDirty { .. } => SyncImpl::ReadDirty,
            SyncLayout::HashTrie { .. } => SyncImpl::HashTrie,
        }
    }
}

/// How a `sync.Map` keeps its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncImpl {
    /// A read-only and a dirty Go map (Go ≤ 1.23).
    ReadDirty,
    /// A concurrent hash trie (Go ≥ 1.24).
    HashTrie,
}

/// One live entry of a `sync.Map`.
#[derive(Debug, Clone, Copy)]
pub struct SyncEntry {
    /// The key: an `any` (type word, data word).
    pub key: Addr,
    /// The value: an `any`.
    pub value: Addr,
    /// The entry's own node: the `*entry` (read/dirty) or the trie's `entry`.
    pub node: Option<ObjId>,
}

/// A `sync.Map` and its live entries.
#[derive(Debug, Clone)]
pub struct SyncMap {
    /// Where the `sync.Map` value is (a global, a field of a heap object, a stack slot).
    pub addr: Addr,
    /// Its implementation.
    pub imp: SyncImpl,
    /// Live entries, each once (an entry in both the read-only and the dirty map counts once).
    pub entries: Vec<SyncEntry>,
    /// Entries deleted or expunged but still in its read-only or dirty map (their value is
    /// gone; their `*entry` and key stay until the maps are rebuilt).
    pub dead: Vec<SyncEntry>,
    /// Objects of its shared structure: the `readOnly` record, the trie's inner nodes.
    pub storage: Vec<ObjId>,
    /// Its read-only and dirty Go maps, as indices into `Maps::maps`.
    pub internal: Vec<u32>,
}

/// Where values of a named type lie: in globals and stack variables (`places`: start and
/// type), and in heap objects of a type that holds one; sorted, each once.
pub fn values_of(
    ctx: &Ctx,
    types: &ObjectTypes,
    places: &[(Addr, TypeRef)],
    name: &str,
) -> Vec<Addr> {
    let mut within: HashMap<TypeRef, Vec<u64>> = HashMap::new();
    let mut offsets = |t: TypeRef| -> Vec<u64> {
        within
            .entry(t)
            .or_insert_with(|| embedded_offsets(ctx.dwarf, t, name, 0))
            .clone()
    };
    let mut out = Vec::new();
    for &(a, t) in places {
        out.extend(offsets(t).into_iter().map(|o| a.offset(o)));
    }
    let holders = types.objects_where(|t, _| match t {
        ObjType::Dwarf(t) => !offsets(*t).is_empty(),
        _ => false,
    });
    for o in holders {
        let Some(ObjType::Dwarf(t)) = types.get(o) else {
            continue;
        };
        let (start, len) = ctx.objects.value_in(ctx.objects.span(o), o);
        let size = types.value_size(o).unwrap_or(len).max(1);
        for k in 0..(len / size) {
            out.extend(
                offsets(t)
                    .into_iter()
                    .map(|off| start.offset(k * size + off)),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Offsets of the values named `name` inside a value of type `t` (itself, struct fields and
/// array elements; not behind pointers).
fn embedded_offsets(dwarf: &Dwarf, t: TypeRef, name: &str, depth: u32) -> Vec<u64> {
    let Ok((_, info)) = dwarf.resolve(t) else {
        return Vec::new();
    };
    if info.name == name {
        return vec![0];
    }
    if depth > 8 {
        return Vec::new();
    }
    match &info.kind {
        TypeKind::Struct(fields) => fields
            .iter()
            .filter_map(|f| Some((f.offset, f.ty?)))
            .flat_map(|(off, ft)| {
                embedded_offsets(dwarf, ft, name, depth + 1)
                    .into_iter()
                    .map(move |o| off + o)
            })
            .collect(),
        TypeKind::Array {
            elem: Some(e),
            count,
        } => {
            let inner = embedded_offsets(dwarf, *e, name, depth + 1);
            let size = dwarf.byte_size(*e);
            if inner.is_empty() || size == 0 {
                return Vec::new();
            }
            (0..(*count).min(4096))
                .flat_map(|k| inner.iter().map(move |o| k * size + o))
                .collect()
        }
        _ => Vec::new(),
    }
}

impl Maps {
    /// Reads the `sync.Map` at `addr`: for the read/dirty implementation its two Go maps are
    /// decoded first if no typed path led to them (they hang off an untyped atomic pointer).
    pub(super) fn read_sync_map(
        &mut self,
        ctx: &Ctx,
        types: &mut ObjectTypes,
        layout: &SyncLayout,
        addr: Addr,
    ) {
        let m = ctx.mem;
        let mut s = SyncMap {
            addr,
            imp: layout.imp(),
            entries: Vec::new(),
            dead: Vec::new(),
            storage: Vec::new(),
            internal: Vec::new(),
        };
        match *layout {
            SyncLayout::ReadDirty {
                read,
                dirty,
                header,
                readonly_m,
                entry_p,
                expunged,
                ..
            } => {
                let read = m.ptr(addr.offset(read)).unwrap_or(Addr(0));
                let mut headers = Vec::new();
                if read.0 != 0 {
                    s.storage.extend(ctx.object(read));
                    headers.extend(m.ptr(read.offset(readonly_m)).ok());
                }
                headers.extend(m.ptr(addr.offset(dirty)).ok());
                for h in headers.into_iter().filter(|h| h.0 != 0) {
                    if let Some(mi) = self.map_at(ctx, types, h, header) {
                        if !s.internal.contains(&mi) {
                            s.internal.push(mi);
                        }
                    }
                }
                // The same *entry sits in both maps while the dirty map copies the read one.
                let mut seen: HashMap<u64, ()> = HashMap::new();
                for &mi in &s.internal {
                    let gm = &self.maps[mi as usize];
                    for &e in self.entries_of(gm) {
                        let Ok(ent) = m.ptr(gm.value_of(e)) else {
                            continue;
                        };
                        if seen.insert(ent.0, ()).is_some() {
                            continue;
                        }
                        let p = m.u64(ent.offset(entry_p)).unwrap_or(0);
                        let live = p != 0 && p != expunged;
                        let e = SyncEntry {
                            key: gm.key_of(e),
                            value: Addr(if live { p } else { 0 }),
                            node: ctx.object(ent),
                        };
                        if live {
                            s.entries.push(e);
                        } else {
                            s.dead.push(e);
                        }
                    }
                }
            }
            SyncLayout::HashTrie { root, .. } => {
                let root = m.ptr(addr.offset(root)).unwrap_or(Addr(0));
                let mut budget = ctx.objects.len() as u64;
                if root.0 != 0 {
                    trie(ctx, layout, root, 0, &mut budget, &mut s);
                }
            }
        }
        // Its objects get their types (for other reports: `top`, `path`).
        let (SyncLayout::ReadDirty {
            types: (shared, node),
            ..
        }
        | SyncLayout::HashTrie {
            types: (shared, node),
            ..
        }) = *layout;
        for &o in &s.storage {
            super::set_type(ctx, types, o, shared);
        }
        for e in s.entries.iter().chain(&s.dead) {
            if let Some(o) = e.node {
                super::set_type(ctx, types, o, node);
            }
        }
        self.sync_maps.push(s);
    }

    /// The index of the map whose header is at `h`, decoding it (with header type `t`) if it
    /// is a heap object no typed path led to.
    fn map_at(&mut self, ctx: &Ctx, types: &mut ObjectTypes, h: Addr, t: TypeRef) -> Option<u32> {
        if let Some(i) = self.maps.iter().position(|x| x.addr == h) {
            return Some(i as u32);
        }
        let o = ctx.object(h)?;
        if ctx.objects.value_in(ctx.objects.span(o), o).0 != h || types.get(o).is_some() {
            return None;
        }
        let info = ctx.dwarf.info(t).ok()?;
        types.set(o, t, info.name.clone(), info.size);
        let imp = super::MapImpl::of_header(&info.name)?;
        let decoded = super::decode_at(ctx, imp, t, h, None);
        self.add_decoded(ctx, imp, t, h, MapHome::Heap(o), decoded);
        (self.maps.last()?.addr == h).then(|| self.maps.len() as u32 - 1)
    }
}

/// Reads the trie below the `indirect` node at `node`, `depth` levels down.
fn trie(ctx: &Ctx, layout: &SyncLayout, node: Addr, depth: u32, budget: &mut u64, s: &mut SyncMap) {
    let SyncLayout::HashTrie {
        is_entry,
        children,
        overflow,
        key,
        value,
        ..
    } = *layout
    else {
        return;
    };
    let m = ctx.mem;
    if depth > MAX_DEPTH || *budget == 0 {
        return;
    }
    *budget -= 1;
    s.storage.extend(ctx.object(node));
    for c in 0..16u64 {
        let Ok(child) = m.ptr(node.offset(children + 8 * c)) else {
            continue;
        };
        if child.0 == 0 {
            continue;
        }
        if m.u8(child.offset(is_entry)).unwrap_or(0) == 0 {
            trie(ctx, layout, child, depth + 1, budget, s);
            continue;
        }
        // An entry and its overflow chain (keys whose hashes are equal).
        let mut e = child;
        while e.0 != 0 && *budget > 0 {
            *budget -= 1;
            s.entries.push(SyncEntry {
                key: e.offset(key),
                value: e.offset(value),
                node: ctx.object(e),
            });
            e = m.ptr(e.offset(overflow)).unwrap_or(Addr(0));
        }
    }
}
