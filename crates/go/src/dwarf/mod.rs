//! DWARF of the Go executable: struct layouts, Go type attributes and global variables.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use gimli::{AttributeValue, EndianArcSlice, LittleEndian, Reader};
use object::{Object, ObjectSection};
use thiserror::Error;

mod locals;

pub use locals::{FramePiece, FunctionLocals, Local};

type R = EndianArcSlice<LittleEndian>;

/// Go's DWARF extension attributes.
mod go_attr {
    pub const KIND: u16 = 0x2900;
    pub const KEY: u16 = 0x2901;
    pub const ELEM: u16 = 0x2902;
    pub const RUNTIME_TYPE: u16 = 0x2904;
}

/// Errors reading DWARF.
#[derive(Debug, Error)]
pub enum DwarfError {
    /// The file has no DWARF.
    #[error("{0} has no DWARF debug information: coreheap reads type layouts from it. Rebuild without `-ldflags=-w` or `-s` (and without `strip`), or give the separate debug file with --debug-file")]
    Missing(PathBuf),
    /// DWARF is present but cannot be parsed.
    #[error("{path}: damaged DWARF: {what}; give an intact copy of the program with --exe, or its debug file with --debug-file")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What failed.
        what: String,
    },
    /// A type the runtime model needs is absent.
    #[error(
        "the executable's DWARF has no type {0}: is this a Go program of release 1.21 or later?"
    )]
    NoType(String),
    /// A field the runtime model needs is absent.
    #[error("the executable's DWARF type {ty} has no field {field}: this Go release lays out its runtime differently from the releases coreheap knows (Go 1.21 to 1.27)")]
    NoField {
        /// The struct.
        ty: String,
        /// The field path.
        field: String,
    },
    /// A global variable the runtime model needs is absent.
    #[error("the executable's DWARF has no global variable {0}: coreheap reads Go 1.21 to 1.27 programs built with their DWARF")]
    NoVariable(String),
}

pub mod go_kind;

/// Most bytes a compressed DWARF section may claim per compressed byte: zlib's limit
/// (deflate cannot do better than about 1032 to 1), far above what debug information reaches.
const MAX_COMPRESSION_RATIO: u64 = 1032;

/// A type in the DWARF, by its global .debug_info offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeRef(pub usize);

/// A struct member.
#[derive(Debug, Clone)]
pub struct Field {
    /// Member name.
    pub name: String,
    /// Byte offset in the struct.
    pub offset: u64,
    /// Member type.
    pub ty: Option<TypeRef>,
}

/// What kind of type a DIE describes.
#[derive(Debug, Clone)]
pub enum TypeKind {
    /// A struct with members.
    Struct(Vec<Field>),
    /// A pointer.
    Pointer(Option<TypeRef>),
    /// A fixed array.
    Array {
        /// Element type.
        elem: Option<TypeRef>,
        /// Element count.
        count: u64,
    },
    /// A named alias of another type (Go's named non-struct types, maps, channels).
    Typedef(Option<TypeRef>),
    /// A base type (integers, floats, bool).
    Base,
    /// A function type.
    Func,
    /// Anything else.
    Other,
}

/// One DWARF type with Go's attributes.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    /// Type name as Go's linker wrote it (`runtime.g`, `map[string]*math/big.Int`).
    pub name: String,
    /// Byte size, when given.
    pub size: u64,
    /// The shape.
    pub kind: TypeKind,
    /// DW_AT_go_kind.
    pub go_kind: Option<u8>,
    /// DW_AT_go_key (maps).
    pub go_key: Option<TypeRef>,
    /// DW_AT_go_elem (maps, channels, slices).
    pub go_elem: Option<TypeRef>,
    /// DW_AT_go_runtime_type: offset of the type descriptor from `runtime.types`.
    pub runtime_type: Option<u64>,
}

/// A global variable.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Qualified name, e.g. `main.balances`.
    pub name: String,
    /// Link-time address.
    pub addr: u64,
    /// Its type.
    pub ty: Option<TypeRef>,
}

/// The DWARF of an executable with an index of named types and globals.
pub struct Dwarf {
    dwarf: gimli::Dwarf<R>,
    units: Vec<gimli::Unit<R>>,
    unit_starts: Vec<usize>,
    types_by_name: HashMap<String, TypeRef>,
    vars: HashMap<String, (TypeRef, Option<u64>)>,
    consts: HashMap<String, i64>,
    rtypes: HashMap<u64, TypeRef>,
    cache: RefCell<HashMap<TypeRef, Arc<TypeInfo>>>,
    locals: RefCell<locals::LocalsIndex>,
    /// DWARF version of the first unit.
    pub version: u16,
}

impl std::fmt::Debug for Dwarf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dwarf")
            .field("units", &self.units.len())
            .field("types", &self.types_by_name.len())
            .finish()
    }
}

fn is_type_tag(tag: gimli::DwTag) -> bool {
    matches!(
        tag,
        gimli::DW_TAG_structure_type
            | gimli::DW_TAG_typedef
            | gimli::DW_TAG_pointer_type
            | gimli::DW_TAG_base_type
            | gimli::DW_TAG_array_type
            | gimli::DW_TAG_subroutine_type
            | gimli::DW_TAG_unspecified_type
    )
}

impl Dwarf {
    /// Loads the debug sections of an ELF file and indexes its named types and globals.
    pub fn load(data: &[u8], path: &std::path::Path) -> Result<Dwarf, DwarfError> {
        let malformed = |what: String| DwarfError::Malformed {
            path: path.to_path_buf(),
            what,
        };
        let obj = object::File::parse(data).map_err(|e| malformed(e.to_string()))?;
        if obj.section_by_name(".debug_info").is_none() {
            return Err(DwarfError::Missing(path.to_path_buf()));
        }
        let load = |id: gimli::SectionId| -> Result<R, DwarfError> {
            let bytes: Arc<[u8]> = match obj.section_by_name(id.name()) {
                Some(s) => {
                    let c = s.compressed_data().map_err(|e| malformed(e.to_string()))?;
                    // A damaged compression header must not size the buffer: no compressor
                    // gets near this ratio on debug information.
                    let most = (c.data.len() as u64).saturating_mul(MAX_COMPRESSION_RATIO);
                    if c.format != object::CompressionFormat::None && c.uncompressed_size > most {
                        return Err(malformed(format!(
                            "section {} claims {} bytes uncompressed from {} compressed, more than any compressor makes of them",
                            id.name(),
                            c.uncompressed_size,
                            c.data.len()
                        )));
                    }
                    Arc::from(c.decompress().map_err(|e| malformed(e.to_string()))?)
                }
                None => Arc::from(Vec::new()),
            };
            Ok(EndianArcSlice::new(bytes, LittleEndian))
        };
        let dwarf = gimli::Dwarf::load(load)?;
        let mut me = Dwarf {
            dwarf,
            units: Vec::new(),
            unit_starts: Vec::new(),
            types_by_name: HashMap::new(),
            vars: HashMap::new(),
            consts: HashMap::new(),
            rtypes: HashMap::new(),
            cache: RefCell::new(HashMap::new()),
            locals: RefCell::default(),
            version: 0,
        };
        me.index().map_err(|e| malformed(e.to_string()))?;
        Ok(me)
    }

    fn index(&mut self) -> gimli::Result<()> {
        let mut headers = self.dwarf.units();
        while let Some(h) = headers.next()? {
            let start = h.offset().0;
            if self.version == 0 {
                self.version = h.version();
            }
            let unit = self.dwarf.unit(h)?;
            let mut cursor = unit.entries();
            while let Some(e) = cursor.next_dfs()? {
                if e.depth() != 1 {
                    continue;
                }
                let tag = e.tag();
                let is_var = tag == gimli::DW_TAG_variable;
                let is_const = tag == gimli::DW_TAG_constant;
                if !is_var && !is_const && !is_type_tag(tag) {
                    continue;
                }
                let Some(name) = e.attr_value(gimli::DW_AT_name) else {
                    continue;
                };
                let name = self.dwarf.attr_string(&unit, name)?;
                let name = name.to_string_lossy()?.into_owned();
                let here = TypeRef(start + e.offset().0);
                if is_const {
                    let v = match e.attr_value(gimli::DW_AT_const_value) {
                        Some(AttributeValue::Sdata(v)) => Some(v),
                        Some(AttributeValue::Udata(v)) => Some(v as i64),
                        Some(v) => v.udata_value().map(|u| u as i64),
                        None => None,
                    };
                    if let Some(v) = v {
                        self.consts.insert(name, v);
                    }
                } else if is_var {
                    let addr = match e.attr_value(gimli::DW_AT_location) {
                        Some(AttributeValue::Exprloc(expr)) => {
                            let b = expr.0.to_slice()?;
                            let b = crate::reader::Bytes(&b);
                            (b.0.len() == 9 && b.u8(0) == Some(gimli::DW_OP_addr.0))
                                .then(|| b.u64(1))
                                .flatten()
                        }
                        _ => None,
                    };
                    let ty = e
                        .attr_value(gimli::DW_AT_type)
                        .and_then(|v| type_ref(&unit, start, v));
                    self.vars.insert(name, (ty.unwrap_or(here), addr));
                } else {
                    if let Some(off) = e
                        .attr_value(gimli::DwAt(go_attr::RUNTIME_TYPE))
                        .and_then(udata_or_addr)
                        .filter(|&o| o != 0)
                    {
                        self.rtypes.entry(off).or_insert(here);
                    }
                    self.types_by_name.entry(name).or_insert(here);
                }
            }
            self.unit_starts.push(start);
            self.units.push(unit);
        }
        Ok(())
    }

    /// The type with this exact name.
    pub fn type_named(&self, name: &str) -> Option<TypeRef> {
        self.types_by_name.get(name).copied()
    }

    /// Whether a type of this name exists.
    pub fn has_type(&self, name: &str) -> bool {
        self.types_by_name.contains_key(name)
    }

    /// The type whose runtime descriptor is at this offset from `runtime.types`.
    pub fn type_by_runtime_offset(&self, off: u64) -> Option<TypeRef> {
        self.rtypes.get(&off).copied()
    }

    /// Every named type: (name, DIE).
    pub fn named_types(&self) -> impl Iterator<Item = (&str, TypeRef)> + '_ {
        self.types_by_name.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// A global variable by qualified name.
    pub fn variable(&self, name: &str) -> Option<Variable> {
        let (ty, addr) = self.vars.get(name)?;
        Some(Variable {
            name: name.to_string(),
            addr: (*addr)?,
            ty: Some(*ty),
        })
    }

    /// A Go constant by qualified name (`runtime.pageSize`).
    pub fn constant(&self, name: &str) -> Option<i64> {
        self.consts.get(name).copied()
    }

    /// Every global variable with a static address.
    pub fn variables(&self) -> impl Iterator<Item = Variable> + '_ {
        self.vars.iter().filter_map(|(n, (ty, addr))| {
            Some(Variable {
                name: n.clone(),
                addr: (*addr)?,
                ty: Some(*ty),
            })
        })
    }

    /// Describes the type at a DIE, cached.
    pub fn info(&self, r: TypeRef) -> Result<Arc<TypeInfo>, DwarfError> {
        if let Some(t) = self.cache.borrow().get(&r) {
            return Ok(t.clone());
        }
        let t = Arc::new(self.parse_type(r).map_err(|e| DwarfError::Malformed {
            path: PathBuf::new(),
            what: format!("type at {:#x}: {e}", r.0),
        })?);
        self.cache.borrow_mut().insert(r, t.clone());
        Ok(t)
    }

    /// A DIE's `DW_AT_name`, empty when it has none.
    fn die_name(
        &self,
        unit: &gimli::Unit<R>,
        e: &gimli::DebuggingInformationEntry<R>,
    ) -> gimli::Result<String> {
        Ok(match e.attr_value(gimli::DW_AT_name) {
            Some(v) => self
                .dwarf
                .attr_string(unit, v)?
                .to_string_lossy()?
                .into_owned(),
            None => String::new(),
        })
    }

    /// Reads the type DIE at `r`. One pass in DIE order: the DIE's own attributes (name, size,
    /// Go's kind, key, element and runtime type, target type), then, by tag, its children: the
    /// members of a struct, or the first subrange (the count) of an array.
    // One function: the DIE's attributes and its children are read in one pass of the same
    // gimli cursor, which the parts would have to pass along.
    fn parse_type(&self, r: TypeRef) -> gimli::Result<TypeInfo> {
        let ui = self
            .unit_starts
            .partition_point(|&s| s <= r.0)
            .saturating_sub(1);
        let unit = &self.units[ui];
        let start = self.unit_starts[ui];
        let off = gimli::UnitOffset(r.0 - start);
        let mut cursor = unit.entries_at_offset(off)?;
        let Some(e) = cursor.next_dfs()? else {
            return Err(gimli::Error::NoEntryAtGivenOffset(r.0 as u64));
        };
        let tag = e.tag();
        let name = self.die_name(unit, e)?;
        let udata = |at: u16| e.attr_value(gimli::DwAt(at)).and_then(|v| v.udata_value());
        let tref = |at: u16| {
            e.attr_value(gimli::DwAt(at))
                .and_then(|v| type_ref(unit, start, v))
        };
        let size = e
            .attr_value(gimli::DW_AT_byte_size)
            .and_then(|v| v.udata_value())
            .unwrap_or(0);
        let go_kind = udata(go_attr::KIND).map(|k| k as u8);
        let go_key = tref(go_attr::KEY);
        let go_elem = tref(go_attr::ELEM);
        let runtime_type = e
            .attr_value(gimli::DwAt(go_attr::RUNTIME_TYPE))
            .and_then(udata_or_addr);
        let target = tref(gimli::DW_AT_type.0);
        let has_children = e.has_children();
        let depth = e.depth();
        let kind = match tag {
            gimli::DW_TAG_structure_type => {
                let mut fields = Vec::new();
                if has_children {
                    while let Some(c) = cursor.next_dfs()? {
                        if c.depth() <= depth {
                            break;
                        }
                        if c.depth() != depth + 1 || c.tag() != gimli::DW_TAG_member {
                            continue;
                        }
                        let fname = self.die_name(unit, c)?;
                        let offset = c
                            .attr_value(gimli::DW_AT_data_member_location)
                            .and_then(|v| v.udata_value())
                            .unwrap_or(0);
                        let ty = c
                            .attr_value(gimli::DW_AT_type)
                            .and_then(|v| type_ref(unit, start, v));
                        fields.push(Field {
                            name: fname,
                            offset,
                            ty,
                        });
                    }
                }
                TypeKind::Struct(fields)
            }
            gimli::DW_TAG_pointer_type => TypeKind::Pointer(target),
            gimli::DW_TAG_typedef => TypeKind::Typedef(target),
            gimli::DW_TAG_base_type => TypeKind::Base,
            gimli::DW_TAG_subroutine_type => TypeKind::Func,
            gimli::DW_TAG_array_type => {
                let mut count = 0;
                if has_children {
                    while let Some(c) = cursor.next_dfs()? {
                        if c.depth() <= depth {
                            break;
                        }
                        if c.tag() == gimli::DW_TAG_subrange_type {
                            count = c
                                .attr_value(gimli::DW_AT_count)
                                .and_then(|v| v.udata_value())
                                .or_else(|| {
                                    c.attr_value(gimli::DW_AT_upper_bound)
                                        .and_then(|v| v.udata_value())
                                        .map(|u| u + 1)
                                })
                                .unwrap_or(0);
                            break;
                        }
                    }
                }
                TypeKind::Array {
                    elem: target,
                    count,
                }
            }
            _ => TypeKind::Other,
        };
        Ok(TypeInfo {
            name,
            size,
            kind,
            go_kind,
            go_key,
            go_elem,
            runtime_type,
        })
    }

    /// Follows typedefs to the underlying type.
    pub fn resolve(&self, mut r: TypeRef) -> Result<(TypeRef, Arc<TypeInfo>), DwarfError> {
        for _ in 0..32 {
            let t = self.info(r)?;
            match t.kind {
                TypeKind::Typedef(Some(next)) if t.go_kind != Some(21) => r = next,
                _ => return Ok((r, t)),
            }
        }
        Err(DwarfError::Malformed {
            path: PathBuf::new(),
            what: "typedef cycle".into(),
        })
    }

    /// The fields of the named struct.
    pub fn struct_named(&self, name: &str) -> Result<Arc<TypeInfo>, DwarfError> {
        let r = self
            .type_named(name)
            .ok_or_else(|| DwarfError::NoType(name.to_string()))?;
        self.resolve(r).map(|(_, t)| t)
    }

    /// Whether the named struct has a member with this name.
    pub fn has_field(&self, ty: &str, field: &str) -> bool {
        self.field_path(ty, field).is_ok()
    }

    /// Offset and type of a dotted field path (`sched.sp`) inside the named struct.
    pub fn field_path(&self, ty: &str, path: &str) -> Result<(u64, Option<TypeRef>), DwarfError> {
        let no_field = || DwarfError::NoField {
            ty: ty.to_string(),
            field: path.to_string(),
        };
        let mut t = self.struct_named(ty)?;
        let mut offset = 0;
        let mut last = None;
        for (i, part) in path.split('.').enumerate() {
            if i > 0 {
                let r = last.ok_or_else(no_field)?;
                t = self.resolve(r)?.1;
            }
            let TypeKind::Struct(fields) = &t.kind else {
                return Err(no_field());
            };
            let f = fields
                .iter()
                .find(|f| f.name == part)
                .ok_or_else(no_field)?;
            offset += f.offset;
            last = f.ty;
        }
        Ok((offset, last))
    }

    /// Offset of a dotted field path inside the named struct.
    pub fn offset(&self, ty: &str, path: &str) -> Result<u64, DwarfError> {
        self.field_path(ty, path).map(|(o, _)| o)
    }

    /// Byte size of the type a field path ends in.
    pub fn field_size(&self, ty: &str, path: &str) -> Result<u64, DwarfError> {
        let (_, r) = self.field_path(ty, path)?;
        let r = r.ok_or_else(|| DwarfError::NoField {
            ty: ty.to_string(),
            field: path.to_string(),
        })?;
        Ok(self.resolve(r)?.1.size)
    }

    /// The Go expression suffix (`.field`, `[i]`) naming the word at `offset` inside a value of
    /// type `ty`; runtime internals (slice, string and interface headers) add nothing.
    pub fn field_path_at(&self, ty: TypeRef, offset: u64) -> String {
        self.field_path_to(ty, offset, "")
    }

    /// Like [`Dwarf::field_path_at`], stopping at a value of the type named `stop` that starts
    /// at the offset (`.cache.items` for a `sync.Map`, not the field inside it).
    pub fn field_path_to(&self, ty: TypeRef, offset: u64, stop: &str) -> String {
        let mut out = String::new();
        let (mut t, mut off) = (ty, offset);
        for _ in 0..32 {
            let Ok(info) = self.info(t) else { break };
            if off == 0 && !stop.is_empty() && info.name == stop {
                break;
            }
            match &info.kind {
                TypeKind::Typedef(Some(next)) if !matches!(info.go_kind, Some(18 | 19 | 21)) => {
                    t = *next;
                }
                TypeKind::Struct(_) if matches!(info.go_kind, Some(23 | 24)) => break,
                TypeKind::Struct(_)
                    if info.name == "runtime.eface" || info.name == "runtime.iface" =>
                {
                    break
                }
                TypeKind::Struct(fields) => {
                    let Some(f) = fields.iter().rfind(|f| f.offset <= off) else {
                        break;
                    };
                    if !f.name.is_empty() {
                        out.push('.');
                        out.push_str(&f.name);
                    }
                    off -= f.offset;
                    match f.ty {
                        Some(n) => t = n,
                        None => break,
                    }
                }
                TypeKind::Array {
                    elem: Some(e),
                    count,
                } => {
                    let es = self.byte_size(*e).max(1);
                    let i = (off / es).min(count.saturating_sub(1));
                    out.push_str(&format!("[{i}]"));
                    off -= i * es;
                    t = *e;
                }
                _ => break,
            }
        }
        out
    }

    /// Byte size of a type, through typedefs of every kind (maps and channels are pointers).
    pub fn byte_size(&self, r: TypeRef) -> u64 {
        let mut cur = r;
        for _ in 0..32 {
            let Ok(i) = self.info(cur) else { return 0 };
            match i.kind {
                _ if i.size > 0 => return i.size,
                TypeKind::Pointer(_) => return 8,
                TypeKind::Typedef(Some(next)) => cur = next,
                _ => return 0,
            }
        }
        0
    }

    /// The header struct (`hash<K,V>` or `map<K,V>`) behind a Go map type.
    pub fn map_header_type(&self, map: TypeRef) -> Option<TypeRef> {
        let info = self.info(map).ok()?;
        let TypeKind::Typedef(Some(ptr)) = info.kind else {
            return None;
        };
        if info.go_kind != Some(go_kind::MAP) {
            return None;
        }
        match self.info(ptr).ok()?.kind {
            TypeKind::Pointer(Some(h)) => Some(h),
            _ => None,
        }
    }

    /// Whether a value of this type is one pointer word (pointers, maps, channels, funcs,
    /// `unsafe.Pointer`): an interface holds such a value in its data word.
    pub fn is_pointer_shaped(&self, t: TypeRef) -> bool {
        let Ok(info) = self.info(t) else {
            return false;
        };
        matches!(info.kind, TypeKind::Pointer(_))
            || matches!(
                info.go_kind,
                Some(
                    go_kind::CHAN
                        | go_kind::FUNC
                        | go_kind::MAP
                        | go_kind::POINTER
                        | go_kind::UNSAFE_POINTER
                )
            )
    }

    /// Byte size of the named type.
    pub fn size_of(&self, ty: &str) -> Result<u64, DwarfError> {
        Ok(self.struct_named(ty)?.size)
    }
}

/// An attribute's value as an integer, whether encoded as a constant or an address.
fn udata_or_addr(v: AttributeValue<R>) -> Option<u64> {
    match v {
        AttributeValue::Addr(a) => Some(a),
        v => v.udata_value(),
    }
}

fn type_ref(unit: &gimli::Unit<R>, start: usize, v: AttributeValue<R>) -> Option<TypeRef> {
    match v {
        AttributeValue::UnitRef(o) => Some(TypeRef(start + o.0)),
        AttributeValue::DebugInfoRef(o) => Some(TypeRef(o.0)),
        _ => {
            let _ = unit;
            None
        }
    }
}

impl From<gimli::Error> for DwarfError {
    fn from(e: gimli::Error) -> Self {
        DwarfError::Malformed {
            path: PathBuf::new(),
            what: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
