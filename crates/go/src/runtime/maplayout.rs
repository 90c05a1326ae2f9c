//! Where maps keep their entries, as the DWARF of their header and bucket types describes it.

use crate::dwarf::{Dwarf, Field, TypeKind, TypeRef};

/// The Swiss map header's field that points at its storage (a directory or a group).
pub const SWISS_STORAGE: &str = "dirPtr";

/// The classic map header's field that points at its bucket array.
pub const CLASSIC_STORAGE: &str = "buckets";

/// The path from a Swiss map header (`map<K,V>`) to its groups: `dirPtr` (a `**table<K,V>`)
/// points at a directory of tables, or at the one group of a small map (`dirLen` 0); a table's
/// `groups.data` points at its array of groups.
#[derive(Debug, Clone)]
pub struct SwissPath {
    /// The header's `dirPtr`.
    pub dir_ptr: Field,
    /// The header's `dirLen`: the directory's length, 0 for a small map.
    pub dir_len: Field,
    /// The table type, `table<K,V>`.
    pub table: TypeRef,
    /// The table's `groups` (a `groupsReference`).
    pub groups: Field,
    /// `groups.data`, the pointer to the array of groups.
    pub data: Field,
    /// `groups.lengthMask`, the number of groups less one.
    pub length_mask: Option<Field>,
    /// The group type, `group<K,V>`.
    pub group: TypeRef,
}

impl SwissPath {
    /// The path for the Swiss map header type `header`, if its DWARF describes every step.
    pub fn of(dwarf: &Dwarf, header: TypeRef) -> Option<SwissPath> {
        let dir_ptr = field(dwarf, header, SWISS_STORAGE)?;
        let dir_len = field(dwarf, header, "dirLen")?;
        let table = pointee(dwarf, pointee(dwarf, dir_ptr.ty?)?)?;
        let groups = field(dwarf, table, "groups")?;
        let data = field(dwarf, groups.ty?, "data")?;
        let length_mask = field(dwarf, groups.ty?, "lengthMask");
        let group = pointee(dwarf, data.ty?)?;
        Some(SwissPath {
            dir_ptr,
            dir_len,
            table,
            groups,
            data,
            length_mask,
            group,
        })
    }

    /// Offset in a table of the pointer to its groups (`groups.data`).
    pub fn groups_data(&self) -> u64 {
        self.groups.offset + self.data.offset
    }
}

/// A classic bucket's (`bucket<K,V>`) array of values among its fields: `values` as the
/// linker names it, or `elems` as the runtime's `bmap` does.
pub fn bucket_values(fields: &[Field]) -> Option<&Field> {
    ["values", "elems"]
        .into_iter()
        .find_map(|name| fields.iter().find(|f| f.name == name))
}

/// The field `name` of the struct `t` (through typedefs).
fn field(dwarf: &Dwarf, t: TypeRef, name: &str) -> Option<Field> {
    let (_, info) = dwarf.resolve(t).ok()?;
    match &info.kind {
        TypeKind::Struct(fields) => fields.iter().find(|f| f.name == name).cloned(),
        _ => None,
    }
}

/// The pointee of a pointer type (through typedefs).
fn pointee(dwarf: &Dwarf, t: TypeRef) -> Option<TypeRef> {
    match dwarf.info(t).ok()?.kind {
        TypeKind::Pointer(p) => p,
        TypeKind::Typedef(Some(n)) => pointee(dwarf, n),
        _ => None,
    }
}
