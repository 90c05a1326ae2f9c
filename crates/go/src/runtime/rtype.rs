//! Runtime type descriptors (`internal/abi.Type`): where they live and their names.

use super::Runtime;
use crate::memory::{Addr, Memory};

/// Where runtime type descriptors live and how to read their names.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeTypes {
    /// `moduledata.types`: the base of name offsets.
    pub base: u64,
    /// Offset of `Str` (a name offset) in `internal/abi.Type`.
    pub str_off: u64,
    /// Offset of `TFlag`.
    pub tflag_off: u64,
    /// Offset of `mspan.largeType`: a large object's type.
    pub large_type_off: Option<u64>,
}

/// `abi.TFlagExtraStar`: the stored name has a '*' the type does not.
const TFLAG_EXTRA_STAR: u8 = 2;

impl RuntimeTypes {
    /// Reads the layout from DWARF and the types base from `runtime.firstmoduledata`.
    pub fn new(rt: &Runtime) -> Option<RuntimeTypes> {
        let d = rt.dwarf();
        let md = rt.global("runtime.firstmoduledata").ok()?;
        Some(RuntimeTypes {
            base: rt.field_uint(md, "runtime.moduledata", "types").ok()?,
            str_off: d.offset("internal/abi.Type", "Str").ok()?,
            tflag_off: d.offset("internal/abi.Type", "TFlag").ok()?,
            large_type_off: d.offset("runtime.mspan", "largeType").ok(),
        })
    }

    /// The name of the type whose descriptor is at `typ` (`abi.Type.String`).
    pub fn name(&self, mem: &Memory, typ: Addr) -> Option<String> {
        if typ.0 == 0 {
            return None;
        }
        let off = mem.u32(typ.offset(self.str_off)).ok()? as i32;
        let tflag = mem.u8(typ.offset(self.tflag_off)).ok()?;
        let name = Addr(self.base.wrapping_add_signed(i64::from(off)));
        // A name: one flag byte, a varint length, the bytes.
        let head = mem.read(name, 11).ok()?;
        let (mut len, mut i) = (0usize, 1usize);
        while i < head.len() {
            len |= usize::from(head[i] & 0x7f) << (7 * (i - 1));
            if head[i] < 0x80 {
                break;
            }
            i += 1;
        }
        let bytes = mem.read(name.offset(i as u64 + 1), len.min(4096)).ok()?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Some(if tflag & TFLAG_EXTRA_STAR != 0 {
            text.trim_start_matches('*').to_string()
        } else {
            text
        })
    }
}
