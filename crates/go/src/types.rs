//! What type each heap object holds: DWARF types carried from typed roots through the heap the
//! way the runtime lays values out, seeded by the types in malloc headers and `largeType`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::dwarf::{go_kind as kind, Dwarf, TypeInfo, TypeKind, TypeRef};
use crate::heap::{Heap, HeapIndex, ObjId, Objects};
use crate::memory::{Addr, Memory};
use crate::runtime::maplayout::SwissPath;
use crate::runtime::{Runtime, RuntimeError};

/// A reference a value holds, as found at an offset inside a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    /// A pointer to a value of the given type (None: unknown, e.g. unsafe.Pointer).
    Ptr(Option<TypeRef>),
    /// A slice's data pointer to elements of the given type.
    Slice(Option<TypeRef>),
    /// A string's data pointer.
    Str,
    /// `interface{}`: type word, then data word.
    Eface,
    /// A non-empty interface: itab word, then data word.
    Iface,
}

/// A type interned for objects: a DWARF type, or string bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjType {
    /// Values of a DWARF type, tiled over the object.
    Dwarf(TypeRef),
    /// The bytes of one or more strings.
    StringData,
}

/// Which objects type inference follows the references of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeScope {
    /// Every typed object: all objects whose type can be found get it.
    All,
    /// Only objects whose type can lead to a map (through pointers, slices, interfaces or
    /// untyped pointers): enough to find every map and name its owner, and much less work
    /// when most of the heap is map values. Objects reached from those keep their type only
    /// if it can lead to a map too; types from allocation headers are always kept.
    TowardMaps,
}

/// `ObjectTypes::of` for an object without a type.
const UNTYPED: u32 = 0;

/// The type of each live object, where it could be found.
#[derive(Debug)]
pub struct ObjectTypes {
    /// Per object: index into `types` plus one, 0 for no type (so a page of untyped objects
    /// in a table on fresh pages is never touched).
    of: Vec<u32>,
    /// Interned types.
    types: Vec<ObjType>,
    /// Names of interned types.
    names: Vec<String>,
    /// Byte sizes of interned types (0 for string data).
    sizes: Vec<u64>,
    /// Types given by [`ObjectTypes::set`], in order: (object, its `of` before, after).
    given: Vec<(u32, u32, u32)>,
}

impl ObjectTypes {
    /// The type of an object.
    pub fn get(&self, id: ObjId) -> Option<ObjType> {
        let t = self.index(id)?;
        self.types.get(t).copied()
    }

    /// The name of an object's type, or `None` when unknown.
    pub fn name(&self, id: ObjId) -> Option<&str> {
        let t = self.index(id)?;
        self.names.get(t).map(String::as_str)
    }

    /// Byte size of one value of an object's type (less than the object for arrays).
    pub fn value_size(&self, id: ObjId) -> Option<u64> {
        let t = self.index(id)?;
        self.sizes.get(t).copied().filter(|&s| s > 0)
    }

    /// The interned type of an object: a number below [`ObjectTypes::interned_count`], the
    /// same for objects of one type.
    pub fn interned(&self, id: ObjId) -> Option<usize> {
        self.index(id)
    }

    /// How many types are interned.
    pub fn interned_count(&self) -> usize {
        self.types.len()
    }

    /// Index into `types` of an object's type.
    fn index(&self, id: ObjId) -> Option<usize> {
        (*self.of.get(id.0 as usize)? as usize).checked_sub(1)
    }

    /// Gives an object a DWARF type found by other means (e.g. a map header found from its
    /// buckets).
    pub fn set(&mut self, id: ObjId, t: TypeRef, name: String, size: u64) {
        let ty = ObjType::Dwarf(t);
        let i = match self.types.iter().position(|x| *x == ty) {
            Some(i) => i,
            None => {
                self.types.push(ty);
                self.names.push(name);
                self.sizes.push(size);
                self.types.len() - 1
            }
        };
        if let Some(slot) = self.of.get_mut(id.0 as usize) {
            self.given.push((id.0, *slot, i as u32 + 1));
            *slot = i as u32 + 1;
        }
    }

    /// The objects whose type (and its name) `wanted` accepts, in id order.
    pub fn objects_where(&self, wanted: impl FnMut(&ObjType, &str) -> bool) -> Vec<ObjId> {
        let keep = self.per_type(wanted);
        if !keep.contains(&true) {
            return Vec::new();
        }
        (self.of.iter().enumerate())
            .filter(|(_, &t)| t != UNTYPED && keep[t as usize - 1])
            .map(|(i, _)| ObjId(i as u32))
            .collect()
    }

    /// `f` of every interned type and its name, by interned index (see
    /// [`ObjectTypes::interned`]).
    pub fn per_type<T>(&self, mut f: impl FnMut(&ObjType, &str) -> T) -> Vec<T> {
        (self.types.iter())
            .zip(&self.names)
            .map(|(t, n)| f(t, n))
            .collect()
    }

    /// How many objects have a type.
    pub fn typed(&self) -> usize {
        self.of.iter().filter(|&&t| t != UNTYPED).count()
    }
}

/// `runtime.types`: type descriptors' addresses are DW_AT_go_runtime_type offsets from it.
struct TypesBase(u64);

/// Pointer-holding words of a type, flattened: (offset, what it refers to).
type Shape = Arc<Vec<(u64, Ref)>>;

/// The parts of the heap model type inference reads.
#[derive(Clone, Copy)]
pub struct HeapParts<'a> {
    /// Spans.
    pub heap: &'a Heap,
    /// Address lookup.
    pub index: &'a HeapIndex,
    /// Object ids.
    pub objects: &'a Objects,
    /// Typed stack variables.
    pub stack_vars: &'a [crate::runtime::StackVar],
    /// Where each object's pointers to other objects are read.
    pub edges: Edges<'a>,
}

/// Where type inference reads an object's pointers to other objects.
#[derive(Clone, Copy)]
pub enum Edges<'a> {
    /// Every object's edges, resolved once.
    Resolved(&'a crate::objgraph::RawEdges),
    /// Read from the core object by object (a few objects, after the edges are gone).
    Read(&'a crate::heap::PointerBits),
}

/// What the heap walk needs to know about a type, computed once.
#[derive(Clone)]
struct Facts {
    size: u64,
    shape: Shape,
    /// A Swiss map header (`map<K,V>`), whose dirPtr may point at a single group.
    swiss_small: Option<SwissSmall>,
    /// Whether a value of the type can lead to a map.
    reaches_map: bool,
    /// A channel (`hchan<T>`): the offset of `buf`, an untyped pointer to its buffered
    /// values, and their type `T`.
    chan_buffer: Option<(u64, TypeRef)>,
}

/// Where a Swiss map header keeps its directory, to tell a map held in one group.
#[derive(Clone, Copy)]
struct SwissSmall {
    /// Offset of `dirLen`.
    dir_len: u64,
    /// Offset of `dirPtr`.
    dir_ptr: u64,
    /// The group type `dirPtr` points at when `dirLen` is 0.
    group: TypeRef,
}

impl SwissSmall {
    /// For the header at `base`, when it holds a single group: (offset of dirPtr, the group
    /// type it points to).
    fn at(self, mem: &Memory, base: Addr) -> Option<(u64, TypeRef)> {
        (mem.u64(base.offset(self.dir_len)).ok()? == 0).then_some((self.dir_ptr, self.group))
    }
}

/// Flattened pointer layouts of DWARF types, cached.
pub struct Layouts<'a> {
    dwarf: &'a Dwarf,
    shapes: RefCell<HashMap<TypeRef, Shape>>,
    facts: RefCell<HashMap<TypeRef, Arc<Facts>>>,
    reach: RefCell<HashMap<TypeRef, bool>>,
}

impl<'a> Layouts<'a> {
    /// A cache over this DWARF.
    pub fn new(dwarf: &'a Dwarf) -> Layouts<'a> {
        Layouts {
            dwarf,
            shapes: RefCell::new(HashMap::new()),
            facts: RefCell::new(HashMap::new()),
            reach: RefCell::new(HashMap::new()),
        }
    }

    /// Size, shape and kind of a type, cached.
    fn facts(&self, t: TypeRef) -> Arc<Facts> {
        if let Some(f) = self.facts.borrow().get(&t) {
            return f.clone();
        }
        let size = self.dwarf.byte_size(t);
        let swiss_header = self
            .dwarf
            .resolve(t)
            .is_ok_and(|(_, i)| i.name.starts_with("map<"));
        let swiss_small = swiss_header
            .then(|| SwissPath::of(self.dwarf, t))
            .flatten()
            .map(|p| SwissSmall {
                dir_len: p.dir_len.offset,
                dir_ptr: p.dir_ptr.offset,
                group: p.group,
            });
        let f = Arc::new(Facts {
            size,
            shape: self.shape(t),
            swiss_small,
            reaches_map: self.reaches_map(t),
            chan_buffer: self.chan_buffer(t),
        });
        self.facts.borrow_mut().insert(t, f.clone());
        f
    }

    /// For the linker's `hchan<T>`: where `buf` is, and `T` (from `recvq.first.elem`, a `*T`).
    fn chan_buffer(&self, t: TypeRef) -> Option<(u64, TypeRef)> {
        let (_, info) = self.dwarf.resolve(t).ok()?;
        if !info.name.starts_with("hchan<") {
            return None;
        }
        let field = |t: TypeRef, name: &str| -> Option<crate::dwarf::Field> {
            let (_, i) = self.dwarf.resolve(t).ok()?;
            match &i.kind {
                TypeKind::Struct(f) => f.iter().find(|f| f.name == name).cloned(),
                _ => None,
            }
        };
        let pointee = |t: TypeRef| match self.info(t)?.kind {
            TypeKind::Pointer(p) => p,
            _ => None,
        };
        let buf = field(t, "buf")?.offset;
        let first = field(field(t, "recvq")?.ty?, "first")?.ty?;
        let elem = pointee(field(pointee(first)?, "elem")?.ty?)?;
        Some((buf, elem))
    }

    /// Whether a value of type `t` can lead to a map: it is a map header, or a chain of typed
    /// references from it reaches one, or it holds an interface or an untyped pointer.
    fn reaches_map(&self, t: TypeRef) -> bool {
        if let Some(&r) = self.reach.borrow().get(&t) {
            return r;
        }
        let is_map = |x: TypeRef| {
            self.dwarf
                .resolve(x)
                .is_ok_and(|(_, i)| i.name.starts_with("map<") || i.name.starts_with("hash<"))
        };
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![t];
        let mut found = false;
        'search: while let Some(x) = stack.pop() {
            if !seen.insert(x) {
                continue;
            }
            match self.reach.borrow().get(&x) {
                Some(true) => {
                    found = true;
                    break;
                }
                Some(false) => continue,
                None => {}
            }
            if is_map(x) {
                found = true;
                break;
            }
            for &(_, rf) in self.shape(x).iter() {
                match rf {
                    Ref::Ptr(Some(p)) | Ref::Slice(Some(p)) => stack.push(p),
                    Ref::Str => {}
                    Ref::Ptr(None) | Ref::Slice(None) | Ref::Eface | Ref::Iface => {
                        found = true;
                        break 'search;
                    }
                }
            }
        }
        let mut memo = self.reach.borrow_mut();
        if found {
            memo.insert(t, true);
        } else {
            // The search saw everything these types lead to: none of them reaches a map.
            for x in seen {
                memo.insert(x, false);
            }
        }
        found
    }

    /// Offsets of the words of a value of type `t` that hold pointers (interfaces: both words).
    pub fn pointer_offsets(&self, t: TypeRef) -> Vec<u64> {
        let mut out = Vec::new();
        for &(off, rf) in self.shape(t).iter() {
            out.push(off);
            if matches!(rf, Ref::Eface | Ref::Iface) {
                out.push(off + 8);
            }
        }
        out
    }

    fn info(&self, r: TypeRef) -> Option<Arc<TypeInfo>> {
        self.dwarf.info(r).ok()
    }

    /// Classifies a field's type as a reference, or None when it is a value to descend into.
    fn as_ref(&self, r: TypeRef) -> Option<Option<Ref>> {
        let t = self.info(r)?;
        match (&t.kind, t.go_kind) {
            // A plain alias of another type: classify what it names.
            (TypeKind::Typedef(Some(next)), None) => self.as_ref(*next),
            (TypeKind::Pointer(p), _) => Some(Some(Ref::Ptr(*p))),
            (_, Some(kind::SLICE)) => Some(Some(Ref::Slice(t.go_elem))),
            (_, Some(kind::STRING)) => Some(Some(Ref::Str)),
            (TypeKind::Typedef(target), Some(kind::MAP | kind::CHAN | kind::FUNC)) => {
                // A map or channel is a pointer to the runtime structure; a func to a closure.
                let pointee = target.and_then(|p| match self.info(p)?.kind {
                    TypeKind::Pointer(x) => x,
                    _ => None,
                });
                Some(Some(Ref::Ptr(pointee)))
            }
            (TypeKind::Typedef(target), Some(kind::INTERFACE)) => {
                let target = (*target)?;
                let (_, s) = self.dwarf.resolve(target).ok()?;
                Some(Some(if s.name.ends_with("eface") {
                    Ref::Eface
                } else {
                    Ref::Iface
                }))
            }
            _ => None,
        }
    }

    fn shape(&self, r: TypeRef) -> Shape {
        if let Some(s) = self.shapes.borrow().get(&r) {
            return s.clone();
        }
        let mut out = Vec::new();
        self.flatten(r, 0, &mut out, 0);
        let s = Arc::new(out);
        self.shapes.borrow_mut().insert(r, s.clone());
        s
    }

    fn flatten(&self, r: TypeRef, base: u64, out: &mut Vec<(u64, Ref)>, depth: u32) {
        if depth > 32 {
            return;
        }
        if let Some(rf) = self.as_ref(r) {
            if let Some(rf) = rf {
                out.push((base, rf));
            }
            return;
        }
        let Ok((_, t)) = self.dwarf.resolve(r) else {
            return;
        };
        match &t.kind {
            TypeKind::Struct(fields) => {
                for f in fields {
                    if let Some(ft) = f.ty {
                        self.flatten(ft, base + f.offset, out, depth + 1);
                    }
                }
            }
            TypeKind::Array {
                elem: Some(e),
                count,
            } => {
                let size = self.dwarf.byte_size(*e);
                if size == 0 {
                    return;
                }
                let mut inner = Vec::new();
                self.flatten(*e, 0, &mut inner, depth + 1);
                if inner.is_empty() {
                    return;
                }
                for k in 0..(*count).min(MAX_ARRAY_ELEMS) {
                    out.extend(inner.iter().map(|(o, rf)| (base + k * size + o, *rf)));
                }
            }
            _ => {}
        }
    }
}

struct Inference<'a> {
    dwarf: &'a Dwarf,
    scope: TypeScope,
    mem: &'a Memory,
    a: HeapParts<'a>,
    layouts: Layouts<'a>,
    by_rtype: TypesBase,
    itab_type_off: Option<u64>,
    of: Vec<u32>,
    interned: HashMap<ObjType, u32, foldhash::fast::RandomState>,
    types: Vec<ObjType>,
    /// Objects typed but not visited yet, one bit each (while sweeping).
    pending: Vec<u64>,
    /// Objects typed but not visited yet, in order (once sweeps would cost more than they do).
    queue: Option<VecDeque<u32>>,
    /// Type facts by interned type index.
    facts_by_type: Vec<Option<Arc<Facts>>>,
    /// Static values already visited through typed pointers.
    static_seen: std::collections::HashSet<(u64, TypeRef)>,
    /// Address ranges of the data and bss sections.
    statics: Vec<(u64, u64)>,
}

/// Most elements of one array that a shape lists before it stops (huge arrays repeat anyway).
const MAX_ARRAY_ELEMS: u64 = 4096;

/// How far ahead of the visit the targets' type slots are fetched: objects in the queue, or
/// words of 64 pending bits in a sweep.
const AHEAD: u32 = 8;

/// How many edges ahead of the one being followed the target's type slot is fetched, within
/// an object; an object's first ones are fetched [`AHEAD`] objects before its visit.
const EDGES_AHEAD: usize = 16;

impl<'a> Inference<'a> {
    fn intern(&mut self, t: ObjType) -> u32 {
        if let Some(&i) = self.interned.get(&t) {
            return i;
        }
        let i = self.types.len() as u32;
        self.types.push(t);
        self.interned.insert(t, i);
        let facts = match t {
            ObjType::Dwarf(r) => Some(self.layouts.facts(r)),
            ObjType::StringData => None,
        };
        self.facts_by_type.push(facts);
        i
    }

    /// Gives object `id` the interned type `ti`, and queues it for a visit when values of that
    /// type hold pointers. Typing toward maps, a type reached by following pointers is kept only
    /// if it can lead to a map (`seed`: the type came from the allocator or a variable, kept).
    fn give(&mut self, id: u32, ti: u32, seed: bool) {
        let facts = self.facts_by_type[ti as usize].as_deref();
        let toward_maps = kept(self.scope, facts);
        if !seed && !toward_maps {
            return;
        }
        self.of[id as usize] = ti + 1;
        if toward_maps && holds_references(facts) {
            match &mut self.queue {
                Some(q) => q.push_back(id),
                None => self.pending[(id >> 6) as usize] |= 1 << (id & 63),
            }
        }
    }

    /// Where an object's value starts (after a malloc header) and its length, its span known.
    fn data_start_in(&self, span: usize, id: ObjId) -> (Addr, u64) {
        self.a.objects.value_in(span, id)
    }

    /// Gives the object at `v` the type `t` if `v` is the start of its value and it has none.
    /// A typed pointer into the data or bss sections (a statically allocated value) is followed
    /// there once.
    fn assign(&mut self, v: u64, t: ObjType) {
        let Some((id, span)) = self.a.objects.find_in_span(self.a.index, Addr(v)) else {
            if let ObjType::Dwarf(t) = t {
                if self.in_statics(v) && self.static_seen.insert((v, t)) {
                    let size = self.layouts.dwarf.byte_size(t);
                    self.visit_value(t, Addr(v), size);
                }
            }
            return;
        };
        if self.of[id.0 as usize] != UNTYPED || self.data_start_in(span, id).0 .0 != v {
            return;
        }
        let ti = self.intern(t);
        self.give(id.0, ti, false);
    }

    /// Whether an address lies in the data or bss sections.
    fn in_statics(&self, v: u64) -> bool {
        self.statics.iter().any(|&(a, b)| v >= a && v < b)
    }

    /// The DWARF type for a runtime type descriptor address.
    fn type_of_rtype(&self, rtype: u64) -> Option<TypeRef> {
        self.dwarf
            .type_by_runtime_offset(rtype.checked_sub(self.by_rtype.0)?)
    }

    /// Follows the references stored in a value of type `t` at `base`, `len` bytes long (tiled).
    fn visit_value(&mut self, t: TypeRef, base: Addr, len: u64) {
        let facts = self.layouts.facts(t);
        let (size, shape) = (facts.size, facts.shape.clone());
        if shape.is_empty() || size == 0 {
            return;
        }
        let swiss_small = facts.swiss_small.and_then(|s| s.at(self.mem, base));
        let mut k = 0;
        while k + size <= len.max(size) {
            for &(off, rf) in shape.iter() {
                let slot = base.offset(k + off);
                self.follow(rf, slot, swiss_small.filter(|(o, _)| *o == off));
            }
            k += size;
        }
    }

    /// What the reference `rf` stored at `slot` points at: the pointer to follow and the type of
    /// the value there. An interface's dynamic type comes from its type word (or itab), and
    /// pointer-shaped dynamic types are stored in the data word itself. A Swiss map header whose
    /// dirPtr is a single group (`small_group`) points at that group.
    fn referent(
        &self,
        rf: Ref,
        slot: Addr,
        small_group: Option<(u64, TypeRef)>,
    ) -> Option<(u64, ObjType)> {
        let word = self.mem.u64(slot).ok()?;
        if let Some((_, group)) = small_group {
            return Some((word, ObjType::Dwarf(group)));
        }
        match rf {
            Ref::Ptr(Some(t)) | Ref::Slice(Some(t)) => Some((word, ObjType::Dwarf(t))),
            Ref::Str => Some((word, ObjType::StringData)),
            Ref::Eface | Ref::Iface => {
                let rtype = self.reader().dynamic_at(rf, slot)?;
                let data = self.mem.u64(slot.offset(8)).ok()?;
                Some((data, self.dynamic_type(rtype)?))
            }
            _ => None,
        }
    }

    /// The type an interface whose dynamic type is at `rtype` gives the value its data word
    /// points at: the pointee of a pointer-shaped type, else the type itself; `None` when the
    /// type is unknown or another reference.
    fn dynamic_type(&self, rtype: u64) -> Option<ObjType> {
        let t = self.type_of_rtype(rtype)?;
        match self.layouts.as_ref(t) {
            Some(Some(Ref::Ptr(Some(p)))) => Some(ObjType::Dwarf(p)),
            Some(Some(_)) => None,
            _ => Some(ObjType::Dwarf(t)),
        }
    }

    /// What reading objects' references needs, for any core.
    fn reader(&self) -> Reader<'a> {
        Reader {
            mem: self.mem,
            objects: self.a.objects,
            itab_type_off: self.itab_type_off,
        }
    }

    /// Follows a reference found by reading a value's shape (seeds: globals, stacks, statics).
    fn follow(&mut self, rf: Ref, slot: Addr, small_group: Option<(u64, TypeRef)>) {
        if let Some((v, ty)) = self.referent(rf, slot, small_group) {
            if v != 0 {
                self.assign(v, ty);
            }
        }
    }

    /// Seeds, then drains: on every core when `every_core` and the edges are resolved, unless
    /// an object is offered two types there.
    fn run(&mut self, rt: &Runtime, every_core: bool) {
        self.seed(rt);
        let drained = match self.a.edges {
            Edges::Resolved(edges) if every_core => self.drain_on_every_core(edges),
            _ => false,
        };
        if !drained {
            self.drain();
        }
    }

    /// The seeds: types from the allocator, then from variables.
    fn seed(&mut self, rt: &Runtime) {
        self.seed_allocations(rt);
        self.seed_variables(rt);
    }

    /// Seeds 1: the types the allocator wrote (malloc headers, large objects' spans).
    fn seed_allocations(&mut self, rt: &Runtime) {
        let large_off = self.dwarf.offset("runtime.mspan", "largeType").ok();
        for (si, s) in self.a.heap.spans.iter().enumerate() {
            if !rt.features.allocation_headers || !s.records_types() {
                continue;
            }
            for (oid, slot) in self.a.objects.live_in_span(si) {
                let id = oid.0;
                let rtype = if s.size_class() == 0 {
                    large_off.and_then(|o| self.mem.u64(s.mspan.offset(o)).ok())
                } else {
                    self.mem.u64(s.slot(slot)).ok()
                };
                if let Some(t) = rtype.and_then(|r| self.type_of_rtype(r)) {
                    let ti = self.intern(ObjType::Dwarf(t));
                    self.give(id, ti, true);
                }
            }
        }
    }

    /// Seeds 2 and 3: global variables, and local variables and arguments on goroutine
    /// stacks, with their DWARF types.
    fn seed_variables(&mut self, rt: &Runtime) {
        let vars: Vec<_> = self.dwarf.variables().collect();
        for v in vars {
            let Some(t) = v.ty else { continue };
            let Ok((_, info)) = self.dwarf.resolve(t) else {
                continue;
            };
            let addr = Addr(v.addr.wrapping_add(rt.p.bias));
            if rt.mem().in_core(addr) {
                self.visit_value(t, addr, info.size);
            }
        }
        // Seeds 3: local variables and arguments on goroutine stacks.
        for v in self.a.stack_vars {
            self.visit_value(v.ty, v.addr, v.size);
        }
    }

    /// Visits typed objects until no new ones are typed: in sweeps over the objects in id
    /// order (sequential reads of edges and memory) while a sweep finds enough to do, then
    /// from a queue.
    fn drain(&mut self) {
        loop {
            let mut visited = 0usize;
            // Targets' type slots are fetched for the `lead` pending objects up to `ahead`.
            let (mut ahead, mut lead) = (0u32, 0u32);
            for wi in 0..self.pending.len() {
                // Bits set in this word while visiting are taken in this sweep too.
                while self.pending[wi] != 0 {
                    let bit = self.pending[wi].trailing_zeros();
                    self.pending[wi] &= self.pending[wi] - 1;
                    let id = (wi as u32) << 6 | bit;
                    if ahead <= id {
                        (ahead, lead) = (id, 0);
                    } else {
                        lead = lead.saturating_sub(1);
                    }
                    while lead < AHEAD {
                        let Some(next) = self.next_pending(ahead) else {
                            break;
                        };
                        self.prefetch_targets(next);
                        (ahead, lead) = (next, lead + 1);
                    }
                    self.visit_typed(id);
                    visited += 1;
                }
            }
            if visited == 0 {
                return;
            }
            if visited < self.pending.len() / 8 {
                break;
            }
        }
        // Few objects per sweep: a queue, seeded with what is pending.
        let mut q = VecDeque::new();
        for (wi, &word) in self.pending.iter().enumerate() {
            q.extend(crate::graph::ids_in_word(wi, word));
        }
        self.pending = Vec::new();
        self.queue = Some(q);
        while let Some(id) = self.queue.as_mut().and_then(VecDeque::pop_front) {
            if let Some(&later) = self.queue.as_ref().and_then(|q| q.get(AHEAD as usize)) {
                self.prefetch_targets(later);
            }
            self.visit_typed(id);
        }
    }

    /// The next pending object after `from` in a sweep, if one is within [`AHEAD`] words.
    fn next_pending(&self, from: u32) -> Option<u32> {
        let mut id = from.checked_add(1)?;
        let end = (from.saturating_add(AHEAD * 64)).min((self.pending.len() * 64) as u32);
        while id < end {
            let word = self.pending[(id >> 6) as usize] >> (id & 63);
            if word != 0 {
                return Some(id + word.trailing_zeros()).filter(|&n| n < end);
            }
            id = (id | 63) + 1;
        }
        None
    }

    /// Asks the CPU for the type slots and pending bits of object `id`'s edge targets, which
    /// its visit reads and writes.
    fn prefetch_targets(&self, id: u32) {
        let Edges::Resolved(raw) = self.a.edges else {
            return;
        };
        self.prefetch_first(raw.targets_of(id));
    }

    /// Asks the CPU for the type slot and pending bit of object `w`.
    fn prefetch_target(&self, w: u32) {
        if let Some(slot) = self.of.get(w as usize) {
            coreheap_graph::prefetch(slot);
        }
        if let Some(bits) = self.pending.get((w >> 6) as usize) {
            coreheap_graph::prefetch(bits);
        }
    }

    /// Visits an object that has a type.
    fn visit_typed(&mut self, id: u32) {
        let Some(ti) = (self.of[id as usize] as usize).checked_sub(1) else {
            return;
        };
        let Some(facts) = self.facts_by_type.get(ti).cloned().flatten() else {
            return;
        };
        let o = ObjId(id);
        let span = self.a.objects.span(o);
        let read;
        let (targets, words) = match self.a.edges {
            Edges::Resolved(raw) => raw.of(id),
            Edges::Read(bits) => {
                let HeapParts {
                    heap,
                    index,
                    objects,
                    ..
                } = self.a;
                read = crate::objgraph::RawEdges::read_one(self.mem, heap, index, objects, bits, o);
                (&read.0[..], &read.1[..])
            }
        };
        self.reader().offers(o, span, &facts, targets, words, self);
    }
}

/// In the sequential drain an object takes the first type offered to it.
impl Offers for Inference<'_> {
    fn wanted(&self, w: u32) -> bool {
        self.of[w as usize] == UNTYPED
    }

    fn prefetch(&self, w: u32) {
        self.prefetch_target(w);
    }

    fn offer(&mut self, w: u32, offer: Offer) {
        let ty = match offer {
            Offer::Type(t) => Some(t),
            Offer::Dynamic(rtype) => self.dynamic_type(rtype),
        };
        if let Some(ty) = ty {
            let ti = self.intern(ty);
            self.give(w, ti, false);
        }
    }
}

/// What reading typed objects' references needs, shared by every core.
#[derive(Clone, Copy)]
struct Reader<'a> {
    mem: &'a Memory,
    objects: &'a Objects,
    /// Offset of the type descriptor in an itab.
    itab_type_off: Option<u64>,
}

/// What a reference says of the type of the value it points at.
#[derive(Clone, Copy, Debug)]
enum Offer {
    /// This type.
    Type(ObjType),
    /// An interface's dynamic type, by the address of its runtime type descriptor.
    Dynamic(u64),
}

/// Where the offers of a typed object's references go.
trait Offers {
    /// Whether the reference to object `w` is to be read.
    fn wanted(&self, w: u32) -> bool;
    /// Asks the CPU for what `wanted` and `offer` will read of object `w`.
    fn prefetch(&self, w: u32);
    /// The reference to the start of object `w` offers it this.
    fn offer(&mut self, w: u32, offer: Offer);

    /// Asks the CPU for what the first reads of a visit along `targets` need.
    fn prefetch_first(&self, targets: &[u32]) {
        for &w in &targets[..targets.len().min(EDGES_AHEAD)] {
            self.prefetch(w);
        }
    }
}

/// Whether inference in `scope` keeps a type (with `facts`) reached by following pointers:
/// every type, or, typing toward maps, one that can lead to a map.
fn kept(scope: TypeScope, facts: Option<&Facts>) -> bool {
    scope == TypeScope::All || facts.is_some_and(|f| f.reaches_map)
}

/// Whether values of a type (with `facts`) hold references to follow.
fn holds_references(facts: Option<&Facts>) -> bool {
    facts.is_some_and(|f| f.size > 0 && !f.shape.is_empty())
}

impl Reader<'_> {
    /// The runtime type descriptor of the interface `rf` at `slot` (its type word, or its
    /// itab's type), when its data word can be read too.
    fn dynamic_at(&self, rf: Ref, slot: Addr) -> Option<u64> {
        let word = self.mem.u64(slot).ok()?;
        let rtype = match rf {
            Ref::Eface => word,
            _ => self.mem.u64(Addr(word).offset(self.itab_type_off?)).ok()?,
        };
        self.mem.u64(slot.offset(8)).ok()?;
        Some(rtype)
    }

    /// Tells `to` what the references of object `o` (in span `span`, holding values with
    /// `facts`, its edges `targets` at `words`) offer the objects they point at the start of,
    /// reading only those `to` wants: whole values tiled over the object, as the shape walk
    /// reads them, no address lookups.
    fn offers(
        &self,
        o: ObjId,
        span: usize,
        facts: &Facts,
        targets: &[u32],
        words: &[crate::objgraph::Word],
        to: &mut impl Offers,
    ) {
        let (size, shape) = (facts.size, &facts.shape);
        if shape.is_empty() || size == 0 {
            return;
        }
        let (start, len) = self.objects.value_in(span, o);
        let header = start.0 - self.objects.addr_in(span, o).0;
        let swiss_small = facts.swiss_small.and_then(|s| s.at(self.mem, start));
        for (i, (&w, &word)) in targets.iter().zip(words).enumerate() {
            if let Some(&later) = targets.get(i + EDGES_AHEAD) {
                to.prefetch(later);
            }
            if !word.at_start() || !to.wanted(w) {
                continue;
            }
            let Some(rel) = word
                .offset()
                .checked_sub(header)
                .filter(|&r| (r / size + 1) * size <= len.max(size))
            else {
                continue;
            };
            let within = rel % size;
            // The reference at this word, or the interface whose data word it is.
            let (rf, field_off) = match shape.binary_search_by_key(&within, |(o, _)| *o) {
                Ok(i) if !matches!(shape[i].1, Ref::Eface | Ref::Iface) => (shape[i].1, within),
                Ok(_) => continue,
                Err(i) => match i.checked_sub(1).map(|j| shape[j]) {
                    Some((o, rf @ (Ref::Eface | Ref::Iface))) if o + 8 == within => (rf, o),
                    _ => continue,
                },
            };
            // A channel's buffer holds values of its element type.
            let buffer = facts.chan_buffer.filter(|(off, _)| *off == field_off);
            let offer = match (swiss_small.filter(|(off, _)| *off == field_off), rf) {
                (Some((_, group)), _) => Offer::Type(ObjType::Dwarf(group)),
                (None, Ref::Ptr(None)) => match buffer {
                    Some((_, elem)) => Offer::Type(ObjType::Dwarf(elem)),
                    None => continue,
                },
                (None, Ref::Ptr(Some(t)) | Ref::Slice(Some(t))) => Offer::Type(ObjType::Dwarf(t)),
                (None, Ref::Str) => Offer::Type(ObjType::StringData),
                (None, Ref::Eface | Ref::Iface) => {
                    let slot = start.offset(rel - (within - field_off));
                    match self.dynamic_at(rf, slot) {
                        Some(rtype) => Offer::Dynamic(rtype),
                        None => continue,
                    }
                }
                _ => continue,
            };
            to.offer(w, offer);
        }
    }
}

/// The [start, end) ranges of the data and bss sections of every module.
fn statics(rt: &Runtime) -> Result<Vec<(u64, u64)>, RuntimeError> {
    let md = "runtime.moduledata";
    let m = rt.global("runtime.firstmoduledata")?;
    let mut v = Vec::new();
    for (a, b) in [
        ("data", "edata"),
        ("bss", "ebss"),
        ("noptrdata", "enoptrdata"),
        ("noptrbss", "enoptrbss"),
    ] {
        v.push((rt.field_uint(m, md, a)?, rt.field_uint(m, md, b)?));
    }
    Ok(v)
}

impl ObjectTypes {
    /// Infers object types for an analysed heap, following the references of the objects
    /// `scope` asks for.
    pub fn infer(
        rt: &Runtime,
        a: HeapParts,
        scope: TypeScope,
    ) -> Result<ObjectTypes, RuntimeError> {
        Self::infer_on(rt, a, scope, true)
    }

    /// [`ObjectTypes::infer`], its drain on every core or on this thread only.
    fn infer_on(
        rt: &Runtime,
        a: HeapParts,
        scope: TypeScope,
        every_core: bool,
    ) -> Result<ObjectTypes, RuntimeError> {
        let mut inf = Inference::new(rt, a, scope, vec![UNTYPED; a.objects.len()])?;
        inf.pending = vec![0; a.objects.len().div_ceil(64)];
        inf.run(rt, every_core);
        let mut out = ObjectTypes {
            of: Vec::new(),
            types: Vec::new(),
            names: Vec::new(),
            sizes: Vec::new(),
            given: Vec::new(),
        };
        out.take_back(inf);
        Ok(out)
    }

    /// Types what the objects of `paths` point to, each path in order from its root, as
    /// inference over every object (`TypeScope::All`) would, but visiting only these objects:
    /// enough to name the objects a report shows and the fields between them, without typing
    /// the heap.
    /// Objects that have a type keep it. Types given by [`ObjectTypes::set`] are not followed
    /// (inference ran before them) and are kept where the visits give none.
    pub fn type_along(
        &mut self,
        rt: &Runtime,
        a: HeapParts,
        paths: &[Vec<ObjId>],
    ) -> Result<(), RuntimeError> {
        for &(id, before, _) in self.given.iter().rev() {
            if let Some(slot) = self.of.get_mut(id as usize) {
                *slot = before;
            }
        }
        let mut inf = Inference::new(rt, a, TypeScope::All, std::mem::take(&mut self.of))?;
        for &t in &self.types {
            inf.intern(t);
        }
        // Visits are made here, place by place: what the seeds queue is not drained.
        inf.queue = Some(VecDeque::new());
        inf.seed_variables(rt);
        let mut visited = std::collections::HashSet::new();
        for &o in paths.iter().flatten() {
            if let Some(q) = inf.queue.as_mut() {
                q.clear();
            }
            if visited.insert(o.0) {
                inf.visit_typed(o.0);
            }
        }
        self.take_back(inf);
        for &(id, before, after) in &self.given {
            if let Some(slot) = self.of.get_mut(id as usize).filter(|t| **t == before) {
                *slot = after;
            }
        }
        Ok(())
    }

    /// Takes the types an inference found: its table, and the names and sizes of the types it
    /// interned beyond those already held.
    fn take_back(&mut self, inf: Inference) {
        let dwarf = inf.dwarf;
        for t in &inf.types[self.types.len().min(inf.types.len())..] {
            let (name, size) = match t {
                ObjType::StringData => ("string data".to_string(), 0),
                ObjType::Dwarf(r) => (
                    (dwarf.info(*r))
                        .map(|i| i.name.clone())
                        .unwrap_or_else(|_| "?".into()),
                    dwarf.byte_size(*r),
                ),
            };
            self.names.push(name);
            self.sizes.push(size);
        }
        self.of = inf.of;
        self.types = inf.types;
    }
}

impl<'a> Inference<'a> {
    /// An inference over `a` that starts from the table `of` (every object untyped, or the
    /// types found so far), with no types interned and nothing pending.
    fn new(
        rt: &'a Runtime,
        a: HeapParts<'a>,
        scope: TypeScope,
        of: Vec<u32>,
    ) -> Result<Inference<'a>, RuntimeError> {
        let dwarf = rt.dwarf();
        let types_base = rt.field_uint(
            rt.global("runtime.firstmoduledata")?,
            "runtime.moduledata",
            "types",
        )?;
        let itab_type_off =
            (rt.features.itab_type_field).and_then(|(ty, field)| dwarf.offset(ty, field).ok());
        Ok(Inference {
            dwarf,
            scope,
            mem: rt.mem(),
            a,
            layouts: Layouts::new(dwarf),
            by_rtype: TypesBase(types_base),
            itab_type_off,
            of,
            interned: HashMap::default(),
            types: Vec::new(),
            pending: Vec::new(),
            queue: None,
            static_seen: std::collections::HashSet::new(),
            facts_by_type: Vec::new(),
            statics: statics(rt)?,
        })
    }
}

mod drain;
#[cfg(test)]
mod tests;
