//! Functions' local variables and parameters, and where they live in a frame: the
//! DW_TAG_variable and DW_TAG_formal_parameter entries under each top-level DW_TAG_subprogram
//! (inlined ones included), with their location expressions.
//!
//! Indexed lazily and once: compile unit pc ranges on first use, a unit's subprograms by entry
//! pc the first time a function of that unit is asked for, and each function's locals the first
//! time it is asked for.

use std::collections::HashMap;
use std::sync::Arc;

use gimli::{AttributeValue, Reader};

use super::{type_ref, Dwarf, TypeRef, R};

/// A local variable or parameter of a function that DWARF gives a location.
#[derive(Debug, Clone)]
pub struct Local {
    /// Its name (`&x` for a variable moved to the heap).
    pub name: String,
    /// Its type.
    pub ty: Option<TypeRef>,
    /// Its size in bytes, 0 when unknown.
    pub size: u64,
    loc: Loc,
}

/// Where a local lives, as DWARF says.
#[derive(Debug, Clone)]
enum Loc {
    /// One expression for the whole function.
    Expr(gimli::Expression<R>),
    /// A location list.
    List(gimli::LocationListsOffset<usize>),
}

/// The locals and parameters of one function.
#[derive(Debug, Default)]
pub struct FunctionLocals {
    /// Index of the compile unit the function is in.
    unit: usize,
    /// The locals and parameters, in DWARF order.
    pub locals: Vec<Local>,
}

/// A stretch of a frame holding a local, or a piece of one, at some pc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramePiece {
    /// Name of the local.
    pub name: String,
    /// Offset of the piece from the frame's canonical frame address.
    pub cfa_offset: i64,
    /// Size of the piece in bytes (not 0).
    pub size: u64,
    /// The local's type, when the piece is the whole local.
    pub whole: Option<TypeRef>,
}

/// The lazily built index behind [`Dwarf::function_locals`].
#[derive(Default)]
pub(super) struct LocalsIndex {
    /// Compile unit pc ranges (link-time): (begin, end, unit), sorted; built on first use.
    cu_ranges: Option<Vec<(u64, u64, usize)>>,
    /// Per unit: top-level subprogram low_pc → DIE offset.
    subprograms: HashMap<usize, HashMap<u64, gimli::UnitOffset<usize>>>,
    /// Function entry (link-time) → its locals.
    by_entry: HashMap<u64, Arc<FunctionLocals>>,
}

impl Dwarf {
    /// The locals and parameters of the function entered at `entry` (link-time); empty when
    /// DWARF does not describe the function.
    pub fn function_locals(&self, entry: u64) -> Arc<FunctionLocals> {
        if let Some(f) = self.locals.borrow().by_entry.get(&entry) {
            return f.clone();
        }
        let f = Arc::new(self.collect_locals(entry).unwrap_or_default());
        self.locals.borrow_mut().by_entry.insert(entry, f.clone());
        f
    }

    /// Where the locals of the function entered at `entry` live in its frame at `pc` (both
    /// link-time): the pieces in memory, in DWARF order; register pieces are left out.
    pub fn frame_pieces(&self, entry: u64, pc: u64) -> Vec<FramePiece> {
        let f = self.function_locals(entry);
        let Some(unit) = self.units.get(f.unit) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for l in &f.locals {
            let Some(expr) = self.expression_at(unit, &l.loc, pc) else {
                continue;
            };
            let pieces = memory_pieces(unit, expr, l.size);
            let whole = pieces.len() == 1 && pieces[0].1 == l.size;
            for (cfa_offset, size) in pieces.into_iter().filter(|p| p.1 > 0) {
                out.push(FramePiece {
                    name: l.name.clone(),
                    cfa_offset,
                    size,
                    whole: l.ty.filter(|_| whole),
                });
            }
        }
        out
    }

    /// The location expression of a local in force at `pc`.
    fn expression_at(
        &self,
        unit: &gimli::Unit<R>,
        loc: &Loc,
        pc: u64,
    ) -> Option<gimli::Expression<R>> {
        match loc {
            Loc::Expr(e) => Some(e.clone()),
            Loc::List(off) => {
                let mut it = self.dwarf.locations(unit, *off).ok()?;
                while let Ok(Some(e)) = it.next() {
                    if pc >= e.range.begin && pc < e.range.end {
                        return Some(e.data);
                    }
                }
                None
            }
        }
    }

    /// The compile unit whose pc ranges hold `pc` (link-time).
    fn unit_at(&self, pc: u64) -> Option<usize> {
        let mut ix = self.locals.borrow_mut();
        let ranges = ix.cu_ranges.get_or_insert_with(|| self.cu_ranges());
        let i = ranges.partition_point(|r| r.0 <= pc);
        ranges[..i].iter().rev().find(|r| pc < r.1).map(|r| r.2)
    }

    /// Every compile unit's pc ranges as (begin, end, unit), sorted.
    fn cu_ranges(&self) -> Vec<(u64, u64, usize)> {
        let mut out = Vec::new();
        for (ui, unit) in self.units.iter().enumerate() {
            if let Ok(mut ranges) = self.dwarf.unit_ranges(unit) {
                while let Ok(Some(r)) = ranges.next() {
                    if r.end > r.begin {
                        out.push((r.begin, r.end, ui));
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The DIE of the top-level subprogram of unit `ui` entered at `entry`.
    fn subprogram(&self, ui: usize, entry: u64) -> Option<gimli::UnitOffset<usize>> {
        let mut ix = self.locals.borrow_mut();
        let map = ix
            .subprograms
            .entry(ui)
            .or_insert_with(|| self.index_subprograms(ui));
        map.get(&entry).copied()
    }

    /// Top-level subprograms of a unit by low_pc.
    fn index_subprograms(&self, ui: usize) -> HashMap<u64, gimli::UnitOffset<usize>> {
        let mut map = HashMap::new();
        let Some(unit) = self.units.get(ui) else {
            return map;
        };
        let mut cursor = unit.entries();
        while let Ok(Some(e)) = cursor.next_dfs() {
            if e.depth() != 1 || e.tag() != gimli::DW_TAG_subprogram {
                continue;
            }
            if let Some(v) = e.attr_value(gimli::DW_AT_low_pc) {
                if let Ok(Some(a)) = self.dwarf.attr_address(unit, v) {
                    map.insert(a, e.offset());
                }
            }
        }
        map
    }

    /// Reads the locals of the function entered at `entry` from its subprogram's DIEs.
    fn collect_locals(&self, entry: u64) -> Option<FunctionLocals> {
        let ui = self.unit_at(entry)?;
        let off = self.subprogram(ui, entry)?;
        let unit = self.units.get(ui)?;
        let mut cursor = unit.entries_at_offset(off).ok()?;
        let depth = cursor.next_dfs().ok()??.depth();
        let mut locals = Vec::new();
        while let Ok(Some(e)) = cursor.next_dfs() {
            if e.depth() <= depth {
                break;
            }
            if e.tag() == gimli::DW_TAG_variable || e.tag() == gimli::DW_TAG_formal_parameter {
                locals.extend(self.local(ui, e));
            }
        }
        Some(FunctionLocals { unit: ui, locals })
    }

    /// One variable or parameter DIE as a local, when it has a location and a name (its own or
    /// its abstract origin's).
    fn local(&self, ui: usize, e: &gimli::DebuggingInformationEntry<R>) -> Option<Local> {
        let unit = self.units.get(ui)?;
        let loc = match e.attr_value(gimli::DW_AT_location)? {
            AttributeValue::Exprloc(x) => Loc::Expr(x),
            v => Loc::List(self.dwarf.attr_locations_offset(unit, v).ok()??),
        };
        let mut name = e.attr_value(gimli::DW_AT_name);
        let mut ty = e.attr_value(gimli::DW_AT_type);
        if name.is_none() || ty.is_none() {
            if let Some(AttributeValue::UnitRef(o)) = e.attr_value(gimli::DW_AT_abstract_origin) {
                if let Ok(origin) = unit.entry(o) {
                    name = name.or_else(|| origin.attr_value(gimli::DW_AT_name));
                    ty = ty.or_else(|| origin.attr_value(gimli::DW_AT_type));
                }
            }
        }
        let name = self.dwarf.attr_string(unit, name?).ok()?;
        let name = name.to_string_lossy().ok()?.into_owned();
        let start = *self.unit_starts.get(ui)?;
        let ty = ty.and_then(|t| type_ref(unit, start, t));
        Some(Local {
            name,
            ty,
            size: ty.map(|t| self.byte_size(t)).unwrap_or(0),
            loc,
        })
    }
}

/// The memory pieces of a location expression as (offset from the CFA, size). Go's frame base
/// is `DW_OP_call_frame_cfa`, so `DW_OP_fbreg` offsets are CFA offsets too. Register pieces
/// and anything not understood are left out.
fn memory_pieces(unit: &gimli::Unit<R>, expr: gimli::Expression<R>, whole: u64) -> Vec<(i64, u64)> {
    #[derive(Clone, Copy)]
    enum V {
        Cfa(i64),
        Const(i64),
        Other,
    }
    let mut out = Vec::new();
    let mut stack: Vec<V> = Vec::new();
    let mut in_register = false;
    let mut pieces = false;
    let mut ops = expr.operations(unit.encoding());
    while let Ok(Some(op)) = ops.next() {
        match op {
            gimli::Operation::FrameOffset { offset } => stack.push(V::Cfa(offset)),
            gimli::Operation::CallFrameCFA => stack.push(V::Cfa(0)),
            gimli::Operation::SignedConstant { value } => stack.push(V::Const(value)),
            gimli::Operation::UnsignedConstant { value } => stack.push(V::Const(value as i64)),
            gimli::Operation::Plus => {
                let b = stack.pop().unwrap_or(V::Other);
                let a = stack.pop().unwrap_or(V::Other);
                stack.push(match (a, b) {
                    (V::Cfa(x), V::Const(y)) | (V::Const(y), V::Cfa(x)) => {
                        V::Cfa(x.wrapping_add(y))
                    }
                    (V::Const(x), V::Const(y)) => V::Const(x.wrapping_add(y)),
                    _ => V::Other,
                });
            }
            gimli::Operation::PlusConstant { value } => {
                let a = stack.pop().unwrap_or(V::Other);
                stack.push(match a {
                    V::Cfa(x) => V::Cfa(x.wrapping_add(value as i64)),
                    V::Const(x) => V::Const(x.wrapping_add(value as i64)),
                    V::Other => V::Other,
                });
            }
            gimli::Operation::Register { .. } => in_register = true,
            gimli::Operation::Piece { size_in_bits, .. } => {
                pieces = true;
                if let (false, Some(V::Cfa(x))) = (in_register, stack.last()) {
                    out.push((*x, size_in_bits / 8));
                }
                stack.clear();
                in_register = false;
            }
            _ => {
                in_register = true;
            }
        }
    }
    if !pieces && !in_register {
        if let Some(V::Cfa(x)) = stack.last() {
            out.push((*x, whole.max(1)));
        }
    }
    out
}
