//! Go maps in the heap: finding their headers and decoding their entries, for both
//! implementations (classic buckets up to 1.23, Swiss tables from 1.24).

mod classic;
mod discover;
pub use discover::RuntimeTypes;
pub mod keys;
pub mod pool;
mod swiss;
pub mod syncmap;

use crate::dwarf::{Dwarf, Field, TypeInfo, TypeKind, TypeRef};
use crate::heap::{Heap, HeapIndex, ObjId, Objects};
use crate::memory::{Addr, Memory};
use crate::types::ObjectTypes;

/// Largest key or value stored inline; bigger ones are stored behind a pointer.
const MAX_INLINE: u64 = 128;

/// Pieces of a map's buckets or tables decoded at once on every core; each holds its own
/// findings until they are added in order.
const DECODE_WAVE: u64 = 256;

/// Which implementation a map uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapImpl {
    /// `hmap` with buckets of 8 (Go ≤ 1.23, and 1.24–1.25 with noswissmap).
    Classic,
    /// Swiss tables (Go ≥ 1.24).
    Swiss,
    /// A `sync.Map`: its read-only and dirty maps (Go ≤ 1.23) or its hash trie, as one map.
    #[serde(rename = "sync.Map")]
    SyncMap,
}

impl MapImpl {
    /// The name reports give it, as JSON writes it: `classic`, `swiss`, `sync.Map`.
    pub fn name(self) -> &'static str {
        match self {
            MapImpl::Classic => "classic",
            MapImpl::Swiss => "swiss",
            MapImpl::SyncMap => "sync.Map",
        }
    }

    /// The implementation whose header struct the linker names `name` (`hash<K,V>` for
    /// classic maps, `map<K,V>` for Swiss ones).
    pub fn of_header(name: &str) -> Option<MapImpl> {
        if name.starts_with("hash<") {
            Some(MapImpl::Classic)
        } else if name.starts_with("map<") {
            Some(MapImpl::Swiss)
        } else {
            None
        }
    }
}

/// One key/value pair: where its key and value are stored.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The bucket or group holding the entry (8-aligned), with the slot index in the low bits.
    slot: u64,
}

/// Slots per bucket or group: the slot index fits in an entry's low three bits.
pub(crate) const SLOT_BITS: u64 = 7;

impl Entry {
    /// The entry in slot `i` of the bucket or group at `bucket`, if that is 8-aligned.
    pub(crate) fn new(bucket: Addr, i: u64) -> Option<Entry> {
        (bucket.0 & SLOT_BITS == 0 && i <= SLOT_BITS).then_some(Entry { slot: bucket.0 | i })
    }

    /// The bucket or group holding the entry.
    pub fn bucket(&self) -> Addr {
        Addr(self.slot & !SLOT_BITS)
    }

    /// Orders entries by address: the bucket or group, then the slot in it.
    pub fn position(&self) -> u64 {
        self.slot
    }

    /// The entry's key or value slot, for one side's `(first, stride)` of a [`SlotLayout`].
    fn slot_in(&self, (first, stride): (u64, u64)) -> Addr {
        self.bucket()
            .offset(first + (self.slot & SLOT_BITS) * stride)
    }
}

/// Where slot `i`'s key and value lie in a bucket or group: `(first, stride)` from its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotLayout {
    /// First key's offset and the distance between keys.
    pub key: (u64, u64),
    /// First value's offset and the distance between values.
    pub value: (u64, u64),
}

/// How one side (key or value) of a map's slots is laid out.
#[derive(Debug, Clone, Copy)]
pub struct SlotType {
    /// The Go type of the key or value.
    pub ty: TypeRef,
    /// Bytes the slot takes (8 when stored indirectly).
    pub slot_size: u64,
    /// Whether the slot holds a pointer to the value instead of the value.
    pub indirect: bool,
}

/// Where a map's header lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapHome {
    /// A heap object.
    Heap(ObjId),
    /// A goroutine's stack frame: the root (index into the analysis' roots) standing for it.
    Stack(u32),
}

/// A decoded map.
#[derive(Debug, Clone)]
pub struct DecodedMap {
    /// Address of the map header.
    pub addr: Addr,
    /// Bytes of the header.
    pub header_size: u64,
    /// The map's Go type, as `%T` prints it: `map[string]*big.Int`.
    pub type_name: String,
    /// Where the header lives.
    pub home: MapHome,
    /// Buckets or groups held in a stack frame with the header: (address, bytes).
    pub stack_containers: Vec<(Addr, u64)>,
    /// Implementation.
    pub imp: MapImpl,
    /// Key layout.
    pub key: SlotType,
    /// Value layout.
    pub value: SlotType,
    /// The entry count the header records (`count` or `used`).
    pub count: u64,
    /// First entry in `Maps::entries`.
    pub first_entry: u32,
    /// Number of entries decoded.
    pub entries: u32,
    /// Objects that make up the map's own memory: header, directory, tables, groups, buckets.
    pub storage: Vec<ObjId>,
    /// Slots in all its groups or buckets.
    pub slots: u64,
    /// Deleted slots (Swiss tombstones; classic emptyOne marks).
    pub tombstones: u64,
    /// The map was being written when the core was taken.
    pub writing: bool,
    /// Where keys and values lie in its buckets or groups.
    pub layout: SlotLayout,
}

impl DecodedMap {
    /// Address of an entry's key slot.
    pub fn key_of(&self, e: Entry) -> Addr {
        e.slot_in(self.layout.key)
    }

    /// Address of an entry's value slot.
    pub fn value_of(&self, e: Entry) -> Addr {
        e.slot_in(self.layout.value)
    }

    /// The [`Entry::position`] an entry in the slot whose key or value holds the byte `rel`
    /// bytes into the bucket or group at `bucket` would have.
    pub fn position_at(&self, bucket: Addr, rel: u64) -> Option<u64> {
        let slot = |(first, stride): (u64, u64), size: u64| {
            let d = rel.checked_sub(first)?;
            let i = d.checked_div(stride).unwrap_or(0);
            (i <= SLOT_BITS && d - i * stride < size).then_some(i)
        };
        let i = slot(self.layout.key, self.key.slot_size)
            .or_else(|| slot(self.layout.value, self.value.slot_size))?;
        Entry::new(bucket, i).map(|e| e.slot)
    }
}

/// Every map found in the heap, and all their entries.
#[derive(Debug, Default)]
pub struct Maps {
    /// Maps, in header address order.
    pub maps: Vec<DecodedMap>,
    /// Entries of all maps: each map's together, maps in no particular order.
    pub entries: Vec<Entry>,
    /// Problems met while decoding.
    pub warnings: Vec<String>,
    /// Slot areas of the objects that hold buckets or groups, by object.
    pub areas: std::collections::HashMap<u32, SlotArea>,
    /// (first entry, map) of the maps with entries, by first entry.
    starts: Vec<(u32, u32)>,
    /// `sync.Map` values, each read as one map.
    pub sync_maps: Vec<syncmap::SyncMap>,
    /// `sync.Pool` values and what their caches hold.
    pub pools: Vec<pool::Pool>,
    /// The stack frames holding the headers of maps that live on a stack.
    pub stack_headers: Vec<crate::roots::StackHeader>,
}

/// The standard library's keyed holders other than maps, and where typed values lie outside
/// the heap (globals, stack variables) to look for them.
#[derive(Debug, Default)]
pub struct Holders<'a> {
    /// How `sync.Map` is laid out, if the executable has one.
    pub sync: Option<syncmap::SyncLayout>,
    /// How `sync.Pool` is laid out, if the executable has one.
    pub pool: Option<pool::PoolLayout>,
    /// Typed values outside the heap: (start, type).
    pub places: &'a [(Addr, TypeRef)],
}

/// What the decoders read from.
pub struct Ctx<'a> {
    /// DWARF.
    pub dwarf: &'a Dwarf,
    /// Memory.
    pub mem: &'a Memory,
    /// Spans.
    pub heap: &'a Heap,
    /// Address lookup.
    pub index: &'a HeapIndex,
    /// Object ids.
    pub objects: &'a Objects,
}

/// The part of [`Ctx`] without DWARF: the core's memory and the heap's objects, shareable
/// across threads.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    mem: &'a Memory,
    heap: &'a Heap,
    index: &'a HeapIndex,
    objects: &'a Objects,
}

impl Reader<'_> {
    /// The live object at `a`.
    fn object(&self, a: Addr) -> Option<ObjId> {
        self.objects.find(self.index, a)
    }

    /// Bytes from `a` to the end of the live object holding it, or of `stack` when `a` lies
    /// there: how much a structure starting at `a` can span. A count read from a header that
    /// would reach past it is damage (or no header at all).
    pub(crate) fn room(&self, a: Addr, stack: Option<(u64, u64)>) -> u64 {
        if let Some((_, hi)) = stack.filter(|&(lo, hi)| a.0 >= lo && a.0 < hi) {
            return hi - a.0;
        }
        self.object(a).map_or(0, |o| {
            let start = self.objects.addr(o).0;
            (start + self.objects.size(o)).saturating_sub(a.0)
        })
    }
}

impl<'a> Ctx<'a> {
    /// The memory and objects, to read on every core.
    fn reader(&self) -> Reader<'a> {
        Reader {
            mem: self.mem,
            heap: self.heap,
            index: self.index,
            objects: self.objects,
        }
    }
}

impl Ctx<'_> {
    /// The live object at `a`.
    fn object(&self, a: Addr) -> Option<ObjId> {
        self.reader().object(a)
    }

    /// The struct fields of a type, through typedefs.
    fn fields(&self, t: TypeRef) -> Option<(std::sync::Arc<TypeInfo>, Vec<Field>)> {
        let (_, info) = self.dwarf.resolve(t).ok()?;
        match &info.kind {
            TypeKind::Struct(f) => {
                let f = f.clone();
                Some((info, f))
            }
            _ => None,
        }
    }

    /// The pointee of a pointer type.
    fn pointee(&self, t: TypeRef) -> Option<TypeRef> {
        match self.dwarf.info(t).ok()?.kind {
            TypeKind::Pointer(p) => p,
            TypeKind::Typedef(Some(n)) => self.pointee(n),
            _ => None,
        }
    }

    /// The element type and count of an array field.
    fn array_elem(&self, t: TypeRef) -> Option<(TypeRef, u64)> {
        let (_, info) = self.dwarf.resolve(t).ok()?;
        match info.kind {
            TypeKind::Array {
                elem: Some(e),
                count,
            } => Some((e, count)),
            _ => None,
        }
    }

    /// Describes a key or value slot of type `t` (the stored type: `*K` when indirect).
    fn slot_type(&self, stored: TypeRef) -> SlotType {
        if let Some(p) = self.pointee(stored) {
            // The linker stores keys and values over 128 bytes behind a pointer. (A declared
            // pointer to such a type looks the same; only key rendering would differ.)
            if self.dwarf.byte_size(p) > MAX_INLINE {
                return SlotType {
                    ty: p,
                    slot_size: 8,
                    indirect: true,
                };
            }
        }
        SlotType {
            ty: stored,
            slot_size: self.dwarf.byte_size(stored),
            indirect: false,
        }
    }

    fn field<'f>(fields: &'f [Field], name: &str) -> Option<&'f Field> {
        fields.iter().find(|f| f.name == name)
    }
}

/// Where the key and value slots lie inside an array of buckets or groups: words there that are
/// not part of a decoded entry are stale (deleted or evacuated slots) and hold nothing alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotArea {
    /// Offset of the first bucket or group from the object's start, modulo `size`.
    pub phase: u64,
    /// Bytes per bucket or group.
    pub size: u64,
    /// The slot area within each bucket or group: [lo, hi).
    pub lo: u64,
    /// End of the slot area.
    pub hi: u64,
}

impl SlotArea {
    /// Whether the word at `w` of an object starting at `obj` lies in a slot area.
    pub fn contains(&self, obj: Addr, w: Addr) -> bool {
        let rel = self.offset(obj, w);
        rel >= self.lo && rel < self.hi
    }

    /// How far the word at `w` of an object starting at `obj` lies into its bucket or group.
    pub fn offset(&self, obj: Addr, w: Addr) -> u64 {
        (w.0 - obj.0 + self.size - self.phase % self.size) % self.size
    }
}

/// Decoding state for one map.
pub(crate) struct Decoding {
    /// Entries whose bucket or group lies in a live object.
    pub entries: Vec<Entry>,
    /// Entries decoded, including those outside any live object (damage).
    pub decoded: u64,
    /// The last two containers found: (start, end, id), to skip lookups for their buckets or
    /// groups (a classic map alternates between its bucket array and overflow buckets).
    last: [Option<(u64, u64, ObjId)>; 2],
    /// Objects of the map's own structures, possibly repeated (`storage_set` sorts them out).
    pub storage: Vec<ObjId>,
    pub slots: u64,
    pub tombstones: u64,
    /// Bucket chains that led back to a bucket they had passed (damage), read once each.
    pub looped_chains: u64,
    /// Swiss tables whose groups overlap another table's (damage), left out.
    pub overlapping_tables: u64,
    /// Why the map was left out: its header claims more storage than its memory holds.
    pub damaged: Option<String>,
    pub areas: Vec<(ObjId, SlotArea)>,
    /// Where keys and values lie in the map's buckets or groups.
    pub layout: SlotLayout,
    /// For a map whose header is on a stack: that stack's extent, where buckets or groups
    /// may lie too.
    pub stack: Option<(u64, u64)>,
    /// Buckets or groups found in `stack`: (address, bytes).
    pub stack_containers: Vec<(Addr, u64)>,
}

impl Decoding {
    pub(crate) fn new() -> Decoding {
        Decoding {
            entries: Vec::new(),
            decoded: 0,
            last: [None, None],
            storage: Vec::new(),
            slots: 0,
            tombstones: 0,
            looped_chains: 0,
            overlapping_tables: 0,
            damaged: None,
            areas: Vec::new(),
            layout: SlotLayout::default(),
            stack: None,
            stack_containers: Vec::new(),
        }
    }

    /// Makes room for the entries a header counts (a damaged count only fails to reserve).
    pub(crate) fn expect(&mut self, count: u64) {
        let _ = self.entries.try_reserve(count.min(1 << 32) as usize);
    }

    /// Records the entry in slot `i` of the bucket or group at `bucket`, if it is held (by a
    /// live object or the map's stack frame; not held: damage).
    pub(crate) fn entry(&mut self, bucket: Addr, i: u64, held: bool) {
        self.decoded += 1;
        if let (true, Some(e)) = (held, Entry::new(bucket, i)) {
            self.entries.push(e);
        }
    }

    /// Whether the bucket or group at `b` is held: by a live object (`holder`), or by the
    /// stack frame the map's header lives in (noted once as a stack container of `size`).
    pub(crate) fn held(&mut self, holder: Option<ObjId>, b: Addr, size: u64) -> bool {
        if holder.is_some() {
            return true;
        }
        let on_stack = self
            .stack
            .is_some_and(|(lo, hi)| b.0 >= lo && b.0.saturating_add(size) <= hi);
        if on_stack && !self.stack_containers.iter().any(|(a, _)| *a == b) {
            self.stack_containers.push((b, size));
        }
        on_stack
    }

    /// Notes that the bucket or group at `b` belongs to the map, with its slot area.
    /// Returns the object holding the bucket or group.
    pub(crate) fn container(
        &mut self,
        ctx: &Reader,
        b: Addr,
        size: u64,
        lo: u64,
        hi: u64,
    ) -> Option<ObjId> {
        for (start, end, o) in self.last.iter().flatten() {
            if b.0 >= *start && b.0 < *end {
                return Some(*o);
            }
        }
        let o = ctx.object(b)?;
        let start = ctx.objects.addr(o);
        let end = start.0 + ctx.objects.size(o);
        // Keep the larger of the two cached containers (the bucket array), replace the other.
        let keep_first = match self.last {
            [Some(a), Some(b)] => a.1 - a.0 >= b.1 - b.0,
            [Some(_), None] => true,
            _ => false,
        };
        self.last[usize::from(keep_first)] = Some((start.0, end, o));
        self.storage.push(o);
        self.areas.push((
            o,
            SlotArea {
                phase: (b.0 - start.0) % size,
                size,
                lo,
                hi,
            },
        ));
        Some(o)
    }

    /// Decodes `units` (bucket or table indices) on every core in pieces of `piece`, `read`
    /// filling a state of its own per piece, and adds the pieces' findings in unit order.
    pub(crate) fn read_parallel(
        &mut self,
        units: std::ops::Range<u64>,
        piece: u64,
        read: impl Fn(u64, &mut Decoding) + Sync,
    ) {
        use rayon::prelude::*;
        let piece = piece.max(1);
        let mut start = units.start;
        // A wave at a time: a damaged count cannot make pieces without end.
        while start < units.end {
            let end = units.end.min(start.saturating_add(piece * DECODE_WAVE));
            let starts: Vec<u64> = (start..end).step_by(piece as usize).collect();
            let found: Vec<Decoding> = starts
                .into_par_iter()
                .map(|a| {
                    let mut d = Decoding::new();
                    d.stack = self.stack;
                    for u in a..end.min(a + piece) {
                        read(u, &mut d);
                    }
                    d
                })
                .collect();
            for d in found {
                self.add(d);
            }
            start = end;
        }
    }

    /// Adds what a piece decoded after what this state holds.
    fn add(&mut self, mut d: Decoding) {
        self.entries.append(&mut d.entries);
        self.decoded += d.decoded;
        self.storage.append(&mut d.storage);
        self.slots += d.slots;
        self.tombstones += d.tombstones;
        self.looped_chains += d.looped_chains;
        self.overlapping_tables += d.overlapping_tables;
        self.areas.append(&mut d.areas);
        self.stack_containers.append(&mut d.stack_containers);
    }

    /// The map's own objects, each once, in address order.
    pub(crate) fn storage_set(&mut self) -> Vec<ObjId> {
        let mut s = std::mem::take(&mut self.storage);
        s.sort_unstable();
        s.dedup();
        s
    }
}

impl Maps {
    /// Finds every map header among the typed objects, and through bucket or group arrays typed
    /// by their allocation headers, and decodes it.
    pub fn decode(
        ctx: &Ctx,
        types: &mut ObjectTypes,
        raw: &crate::objgraph::RawEdges,
        rtypes: Option<&RuntimeTypes>,
        stacks: &crate::roots::StackMaps,
        holders: &Holders,
    ) -> Maps {
        let mut out = Maps::default();
        // The objects typed as map headers, found by type, not by a name per object.
        let typed_headers = types.objects_where(|t, name| {
            matches!(t, crate::types::ObjType::Dwarf(_)) && MapImpl::of_header(name).is_some()
        });
        Maps::decode_headers(ctx, types, typed_headers.into_iter().map(|o| o.0), &mut out);
        for h in &stacks.headers {
            out.decode_stack_header(ctx, h);
        }
        let mut known = crate::graph::Bits::new(ctx.objects.len());
        for o in out.maps.iter().flat_map(|m| &m.storage) {
            known.set(o.0);
        }
        let mut found = discover::orphan_headers(ctx, types, raw, &known, rtypes, stacks);
        if rtypes.is_none() {
            // No malloc headers to climb from: look for headers by their shape.
            found
                .heap
                .extend(discover::untyped_classic_headers(ctx, types, raw, &known));
        }
        let mut headers: Vec<u32> = Vec::with_capacity(found.heap.len());
        for (header, t) in found.heap {
            let name = ctx
                .dwarf
                .info(t)
                .map(|i| i.name.clone())
                .unwrap_or_default();
            let size = ctx.dwarf.info(t).map(|i| i.size).unwrap_or(0);
            types.set(header, t, name, size);
            headers.push(header.0);
        }
        // The newly typed headers' maps follow the others.
        headers.sort_unstable();
        headers.dedup();
        Maps::decode_headers(ctx, types, headers, &mut out);
        for h in &found.stack {
            out.decode_stack_header(ctx, h);
        }
        // Last, headers nothing typed: frame words that could be a header's storage pointer,
        // tried with the map types the frame's function uses.
        for g in &stacks.guesses {
            if out.maps.iter().any(|m| m.addr == g.header) {
                continue;
            }
            for &t in &g.types {
                if let Some(mut h) = stacks.unnamed(g.frame, g.header) {
                    h.ty = Some(t);
                    let before = out.maps.len();
                    out.decode_stack_header(ctx, &h);
                    if out.maps.len() > before {
                        break;
                    }
                }
            }
        }
        if let Some(layout) = &holders.sync {
            for a in syncmap::values_of(ctx, types, holders.places, "sync.Map") {
                out.read_sync_map(ctx, types, layout, a);
            }
        }
        if let Some(layout) = &holders.pool {
            for a in syncmap::values_of(ctx, types, holders.places, "sync.Pool") {
                out.read_pool(ctx, types, layout, a);
            }
        }
        out.index_starts();
        out
    }

    /// Decodes the maps whose headers are among the objects `ids` (in that order) into `out`.
    fn decode_headers(
        ctx: &Ctx,
        types: &ObjectTypes,
        ids: impl IntoIterator<Item = u32>,
        out: &mut Maps,
    ) {
        for id in ids {
            let oid = ObjId(id);
            let Some(crate::types::ObjType::Dwarf(t)) = types.get(oid) else {
                continue;
            };
            let Some(name) = types.name(oid) else {
                continue;
            };
            let Some(imp) = MapImpl::of_header(name) else {
                continue;
            };
            let header = ctx.objects.addr(oid);
            let decoded = decode_at(ctx, imp, t, header, None);
            out.add_decoded(ctx, imp, t, header, MapHome::Heap(oid), decoded);
        }
    }

    /// Decodes a map whose header lives on a goroutine's stack; its root is set when the
    /// analysis adds one for it. A header found from its storage, not named by a variable, is
    /// kept only when its count and its entries agree (a frame word that only looked like one
    /// decodes to nonsense).
    fn decode_stack_header(&mut self, ctx: &Ctx, h: &crate::roots::StackHeader) {
        let Some(t) = h.ty else { return };
        let Some(imp) = ctx
            .dwarf
            .info(t)
            .ok()
            .and_then(|i| MapImpl::of_header(&i.name))
        else {
            return;
        };
        if self.stack_headers.iter().any(|x| x.header == h.header) {
            return;
        }
        let Some(decoded) = decode_at(ctx, imp, t, h.header, Some(h.stack)) else {
            return;
        };
        let (_, _, count, writing, d) = &decoded;
        // Without a variable, only a header whose count its entries bear out (and that has
        // some) is one.
        if h.var.is_none() && (*count != d.entries.len() as u64 || *count == 0 || *writing) {
            return;
        }
        self.stack_headers.push(h.clone());
        self.add_decoded(
            ctx,
            imp,
            t,
            h.header,
            MapHome::Stack(u32::MAX),
            Some(decoded),
        );
    }

    /// Adds a map decoded from its header at `header` (DWARF type `t`), or a warning when its
    /// layout was not understood (`decoded` is None).
    fn add_decoded(
        &mut self,
        ctx: &Ctx,
        imp: MapImpl,
        t: TypeRef,
        header: Addr,
        home: MapHome,
        decoded: Option<Decoded>,
    ) {
        let name = ctx
            .dwarf
            .info(t)
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let Some((key, value, count, writing, mut d)) = decoded else {
            self.warnings
                .push(format!("map {name} at {header}: layout not understood"));
            return;
        };
        if let Some(why) = &d.damaged {
            self.warnings.push(format!(
                "map {name} at {header}: {why} (the core is damaged there); the map was left out"
            ));
            return;
        }
        if writing {
            self.warnings.push(format!(
                "map {name} at {header} was being written when the core was taken: decoded best-effort"
            ));
        }
        if d.looped_chains > 0 {
            self.warnings.push(format!(
                "map {name} at {header}: {} overflow chains lead back to a bucket they passed (the core is damaged there); each bucket was read once",
                d.looped_chains
            ));
        }
        if d.overlapping_tables > 0 {
            self.warnings.push(format!(
                "map {name} at {header}: {} of its tables point at groups another table holds (the core is damaged there); they were left out",
                d.overlapping_tables
            ));
        }
        if !writing && d.decoded != count {
            self.warnings.push(format!(
                "map {name} at {header}: its header counts {count} entries but {} were decoded; the core may be damaged there",
                d.decoded
            ));
        }
        let entries = d.entries.len() as u32;
        let first = self.add_entries(std::mem::take(&mut d.entries));
        // The first slot area found for an object stands.
        for (o, a) in &d.areas {
            self.areas.entry(o.0).or_insert(*a);
        }
        let mut storage = d.storage_set();
        if let MapHome::Heap(oid) = home {
            if let Err(at) = storage.binary_search(&oid) {
                storage.insert(at, oid);
            }
        }
        self.maps.push(DecodedMap {
            addr: header,
            header_size: ctx.dwarf.byte_size(t),
            type_name: format!(
                "map[{}]{}",
                type_name(ctx, key.ty),
                type_name(ctx, value.ty)
            ),
            home,
            stack_containers: std::mem::take(&mut d.stack_containers),
            imp,
            key,
            value,
            count,
            first_entry: first as u32,
            entries,
            storage,
            slots: d.slots,
            tombstones: d.tombstones,
            writing,
            layout: d.layout,
        });
    }

    /// Adds one map's entries, which stay together, and returns where they start. The larger
    /// list is kept and the smaller moved after it (earlier maps' entries move when theirs is
    /// the smaller), so the largest map's entries are never copied.
    fn add_entries(&mut self, mut new: Vec<Entry>) -> usize {
        if new.len() <= self.entries.len() {
            let first = self.entries.len();
            self.entries.append(&mut new);
            return first;
        }
        let moved = new.len() as u32;
        new.append(&mut self.entries);
        self.entries = new;
        for m in &mut self.maps {
            m.first_entry += moved;
        }
        0
    }

    /// The map an entry (an index into `entries`) belongs to.
    pub fn map_of(&self, entry: usize) -> &DecodedMap {
        &self.maps[self.map_index_of(entry) as usize]
    }

    /// Index in `maps` of the map an entry belongs to.
    pub fn map_index_of(&self, entry: usize) -> u32 {
        let i = self
            .starts
            .partition_point(|&(first, _)| first as usize <= entry);
        // Every entry belongs to a map with entries, whose start is at or before it.
        self.starts[i.saturating_sub(1)].1
    }

    /// Indexes the maps' entry ranges for [`Maps::map_of`].
    fn index_starts(&mut self) {
        self.starts = (self.maps.iter().enumerate())
            .filter(|(_, m)| m.entries > 0)
            .map(|(mi, m)| (m.first_entry, mi as u32))
            .collect();
        self.starts.sort_unstable();
    }

    /// The entries of a map.
    pub fn entries_of(&self, m: &DecodedMap) -> &[Entry] {
        let s = m.first_entry as usize;
        &self.entries[s..s + m.entries as usize]
    }
}

/// Gives an untyped object a DWARF type found by reading what holds it.
fn set_type(ctx: &Ctx, types: &mut ObjectTypes, o: ObjId, t: TypeRef) {
    if types.get(o).is_some() {
        return;
    }
    if let Ok(info) = ctx.dwarf.info(t) {
        types.set(o, t, info.name.clone(), ctx.dwarf.byte_size(t));
    }
}

/// Decodes the map header at `header` (DWARF type `t`) of implementation `imp`; `stack` is the
/// extent of the stack it lives on, if it does.
fn decode_at(
    ctx: &Ctx,
    imp: MapImpl,
    t: TypeRef,
    header: Addr,
    stack: Option<(u64, u64)>,
) -> Option<Decoded> {
    match imp {
        MapImpl::Classic => classic::decode(ctx, t, header, stack),
        MapImpl::Swiss => swiss::decode(ctx, t, header, stack),
        MapImpl::SyncMap => None,
    }
}

/// A type's name as `%T` prints it (short package names).
fn type_name(ctx: &Ctx, t: TypeRef) -> String {
    ctx.dwarf
        .info(t)
        .map(|i| keys::short_type_name(&i.name))
        .unwrap_or_default()
}

/// Result of decoding one header: key and value layout, recorded count, writing flag, contents.
pub(crate) type Decoded = (SlotType, SlotType, u64, bool, Decoding);

#[cfg(test)]
mod tests {
    use super::*;

    /// What decoding unit `u` finds in these tests: two entries, a tombstone, a holder object.
    fn read_unit(u: u64, d: &mut Decoding) {
        d.entry(Addr(0x1000 + 64 * u), u % 8, true);
        d.entry(Addr(0x1000 + 64 * u), (u + 1) % 8, false);
        d.tombstones += 1;
        d.slots += 8;
        d.storage.push(ObjId((u / 3) as u32));
        let area = SlotArea {
            phase: u,
            size: 64,
            lo: 8,
            hi: 64,
        };
        d.areas.push((ObjId((u / 2) as u32), area));
    }

    #[test]
    fn parallel_pieces_add_up_in_unit_order() {
        let units = 3..20_000u64;
        let mut one = Decoding::new();
        for u in units.clone() {
            read_unit(u, &mut one);
        }
        // Pieces of 7 units, so several waves of pieces, the last one short.
        let mut pieces = Decoding::new();
        pieces.read_parallel(units.clone(), 7, read_unit);
        assert_eq!(pieces.decoded, one.decoded);
        assert_eq!(pieces.decoded, 2 * units.clone().count() as u64);
        assert_eq!(
            (pieces.slots, pieces.tombstones),
            (one.slots, one.tombstones)
        );
        let slots = |d: &Decoding| d.entries.iter().map(|e| e.slot).collect::<Vec<_>>();
        assert_eq!(slots(&pieces), slots(&one));
        assert_eq!(pieces.entries.len(), units.count());
        assert_eq!(pieces.storage, one.storage);
        let areas = |d: &Decoding| {
            d.areas
                .iter()
                .map(|(o, a)| (o.0, a.phase))
                .collect::<Vec<_>>()
        };
        assert_eq!(areas(&pieces), areas(&one));
    }
}
