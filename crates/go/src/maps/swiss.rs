//! Swiss maps: `maps.Map` → one group (small maps) or a directory of tables → groups of 8 slots.

use super::{Ctx, Decoded, Decoding, Reader, SlotLayout};
use crate::dwarf::TypeRef;
use crate::memory::Addr;
use crate::runtime::maplayout::SwissPath;

/// Control byte of an empty slot.
const CTRL_EMPTY: u8 = 0x80;
/// Control byte of a deleted slot.
const CTRL_DELETED: u8 = 0xfe;
/// Slots per group.
const GROUP_SLOTS: u64 = 8;
/// Most directory entries or groups read (damage guard).
const MAX_GROUPS: u64 = 1 << 28;
/// Tables (of up to 128 groups) decoded per piece on one core.
const TABLE_PIECE: u64 = 64;

/// Whether a control byte marks a full slot.
pub fn is_full(ctrl: u8) -> bool {
    ctrl & CTRL_EMPTY == 0
}

/// Where keys and values sit inside a group.
struct Group {
    ctrl: u64,
    size: u64,
    /// (first key, stride) and (first value, stride) from the group start.
    key: (u64, u64),
    value: (u64, u64),
}

impl Group {
    fn read(&self, ctx: &Reader, g: Addr, d: &mut Decoding) {
        let Ok(ctrl) = ctx.mem.u64(g.offset(self.ctrl)) else {
            return;
        };
        let holder = d.container(ctx, g, self.size, self.ctrl + 8, self.size);
        let held = d.held(holder, g, self.size);
        d.slots += GROUP_SLOTS;
        for i in 0..GROUP_SLOTS {
            let c = (ctrl >> (8 * i)) as u8;
            if is_full(c) {
                d.entry(g, i, held);
            } else if c == CTRL_DELETED {
                d.tombstones += 1;
            }
        }
    }
}

/// Decodes a Swiss map whose `map<K,V>` header (DWARF type `t`) is at `header`.
/// `stack`: the extent of the stack the header lives on, if it does.
// One function: the header, directory, tables and groups are read in one walk down the same
// layout (fields found once at its start), each level checked against the one above before
// the next is read.
pub(super) fn decode(
    ctx: &Ctx,
    t: TypeRef,
    header: Addr,
    stack: Option<(u64, u64)>,
) -> Option<Decoded> {
    let (_, hf) = ctx.fields(t)?;
    let f = |n: &str| Ctx::field(&hf, n);
    let m = ctx.mem;
    let used = m.u64(header.offset(f("used")?.offset)).ok()?;
    let path = SwissPath::of(ctx.dwarf, t)?;
    let dir_ptr = m.ptr(header.offset(path.dir_ptr.offset)).ok()?;
    let dir_len = m.u64(header.offset(path.dir_len.offset)).ok()?;
    let writing = f("writing")
        .and_then(|w| m.u8(header.offset(w.offset)).ok())
        .is_some_and(|w| w != 0);
    let length_mask = path.length_mask.as_ref()?.offset;
    let groups_data = path.groups_data();
    let groups_length_mask = path.groups.offset + length_mask;
    let (ginfo, grf) = ctx.fields(path.group)?;
    let ctrl = Ctx::field(&grf, "ctrl")?.offset;
    let (key, value, layout) = if let Some(slots) = Ctx::field(&grf, "slots") {
        // Default layout: slots [8]struct{key K; elem V}.
        let (slot_t, _) = ctx.array_elem(slots.ty?)?;
        let (sinfo, sf) = ctx.fields(slot_t)?;
        let k = Ctx::field(&sf, "key")?;
        let v = Ctx::field(&sf, "elem")?;
        let stride = sinfo.size;
        (
            ctx.slot_type(k.ty?),
            ctx.slot_type(v.ty?),
            (
                (slots.offset + k.offset, stride),
                (slots.offset + v.offset, stride),
            ),
        )
    } else {
        // Split layout (GOEXPERIMENT=mapsplitgroup): keys [8]K, then elems [8]V.
        let keys = Ctx::field(&grf, "keys")?;
        let elems = Ctx::field(&grf, "elems")?;
        let (kt, _) = ctx.array_elem(keys.ty?)?;
        let (vt, _) = ctx.array_elem(elems.ty?)?;
        (
            ctx.slot_type(kt),
            ctx.slot_type(vt),
            (
                (keys.offset, ctx.dwarf.byte_size(kt)),
                (elems.offset, ctx.dwarf.byte_size(vt)),
            ),
        )
    };
    let group = Group {
        ctrl,
        size: ginfo.size,
        key: layout.0,
        value: layout.1,
    };
    let mut d = Decoding::new();
    d.stack = stack;
    d.layout = SlotLayout {
        key: group.key,
        value: group.value,
    };
    d.expect(used);
    if let Some(h) = ctx.object(header) {
        d.storage.push(h);
    }
    if dir_ptr.0 == 0 {
        return Some((key, value, used, writing, d));
    }
    let reader = ctx.reader();
    if dir_len == 0 {
        // Small map: dirPtr is the one group.
        group.read(&reader, dir_ptr, &mut d);
        return Some((key, value, used, writing, d));
    }
    // The directory must fit where it is.
    let room = reader.room(dir_ptr, stack);
    if room < dir_len.saturating_mul(8) {
        d.damaged = Some(format!(
            "its header claims a directory of {dir_len} tables at {dir_ptr}, but the memory there holds {room} B"
        ));
        return Some((key, value, used, writing, d));
    }
    if let Some(o) = ctx.object(dir_ptr) {
        d.storage.push(o);
    }
    let mut tables: Vec<Addr> = (0..dir_len.min(MAX_GROUPS))
        .filter_map(|i| m.ptr(dir_ptr.offset(8 * i)).ok())
        .filter(|t| t.0 != 0)
        .collect();
    // Several directory entries can share one table.
    tables.sort();
    tables.dedup();
    // Each table's array of groups, checked to fit where it is; arrays that overlap one
    // read before (damage: every table owns its own) are left out, so that the tables
    // together can never cover more than the memory there is.
    let mut arrays: Vec<(Addr, u64)> = Vec::with_capacity(tables.len());
    for &tbl in &tables {
        if let Some(o) = reader.object(tbl) {
            d.storage.push(o);
        }
        let (Ok(groups_ptr), Ok(mask)) = (
            m.ptr(tbl.offset(groups_data)),
            m.u64(tbl.offset(groups_length_mask)),
        ) else {
            continue;
        };
        if groups_ptr.0 == 0
            || mask >= MAX_GROUPS
            || reader.room(groups_ptr, None) < (mask + 1).saturating_mul(group.size)
        {
            continue;
        }
        arrays.push((groups_ptr, mask + 1));
    }
    // Checked in address order; read in the tables' order, as before.
    let mut by_start: Vec<usize> = (0..arrays.len()).collect();
    by_start.sort_by_key(|&i| arrays[i]);
    let mut keep = vec![true; arrays.len()];
    let mut end = 0u64;
    for i in by_start {
        let (start, groups) = arrays[i];
        if start.0 >= end {
            end = start.0.saturating_add(groups.saturating_mul(group.size));
        } else {
            keep[i] = false;
            d.overlapping_tables += 1;
        }
    }
    let arrays: Vec<(Addr, u64)> = (arrays.into_iter().zip(keep))
        .filter_map(|(array, kept)| kept.then_some(array))
        .collect();
    d.read_parallel(0..arrays.len() as u64, TABLE_PIECE, |i, d| {
        let (start, groups) = arrays[i as usize];
        for g in 0..groups {
            group.read(&reader, start.offset(g * group.size), d);
        }
    });
    Some((key, value, used, writing, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_full_empty_deleted() {
        assert!(is_full(0x00));
        assert!(is_full(0x7f));
        assert!(!is_full(CTRL_EMPTY));
        assert!(!is_full(CTRL_DELETED));
    }
}
