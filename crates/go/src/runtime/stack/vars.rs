//! Which Go variables a frame's pointer words belong to: the locals and parameters the DWARF
//! reader places in the frame at its pc ([`crate::dwarf::Dwarf::frame_pieces`]).

use std::collections::{HashMap, HashSet};

use super::{ScanState, StackSlot, StackVar, Walker, CONSERVATIVE};
use crate::dwarf::TypeRef;
use crate::memory::Addr;

/// A variable's stretch of a frame, or a piece of it.
pub(super) struct FrameVar {
    /// First byte on the stack.
    pub(super) start: u64,
    /// One past the last byte.
    pub(super) end: u64,
    /// The variable's name.
    pub(super) name: String,
    /// Its type, when the stretch is the whole variable.
    pub(super) ty: Option<TypeRef>,
}

impl Walker<'_, '_> {
    /// Orders and de-duplicates a goroutine's slots, names them, and adds them to the output.
    pub(super) fn finish_goroutine(&mut self, mut st: ScanState) {
        // Precise before conservative at the same address.
        st.slots.sort_by_key(|s| (s.addr, s.conservative));
        st.slots.dedup_by_key(|s| s.addr);
        let mut vars: HashMap<u32, Vec<FrameVar>> = HashMap::new();
        let mut typed_seen = HashSet::new();
        for s in &st.slots {
            if s.conservative || vars.contains_key(&s.frame) {
                continue;
            }
            let v = self.frame_vars(s.frame as usize);
            vars.insert(s.frame, v);
        }
        for s in st.slots {
            let name = if s.conservative {
                Some(CONSERVATIVE.to_string())
            } else {
                // The smallest variable holding the word (inlined variables can share it).
                vars.get(&s.frame).and_then(|v| {
                    let var = v
                        .iter()
                        .filter(|v| s.addr >= v.start && s.addr < v.end)
                        .min_by_key(|v| v.end - v.start)?;
                    if let (Some(ty), true) = (var.ty, typed_seen.insert(var.start)) {
                        self.out.vars.push(StackVar {
                            frame: s.frame,
                            name: var.name.clone(),
                            addr: Addr(var.start),
                            size: var.end - var.start,
                            ty,
                        });
                    }
                    Some(var.name.clone())
                })
            };
            self.out.slots.push(StackSlot {
                addr: Addr(s.addr),
                frame: s.frame,
                name,
            });
        }
    }

    /// The stack stretches of the variables of frame `frame` (an index into `out.frames`).
    pub(super) fn frame_vars(&self, frame: usize) -> Vec<FrameVar> {
        let (Some(fr), Some(&(entry, lookup))) =
            (self.out.frames.get(frame), self.frame_meta.get(frame))
        else {
            return Vec::new();
        };
        let bias = self.rt.p.bias;
        let pieces =
            (self.rt.dwarf()).frame_pieces(entry.wrapping_sub(bias), lookup.wrapping_sub(bias));
        // Go's frame base is the CFA, the caller's SP: the frame's top.
        pieces
            .into_iter()
            .map(|p| {
                let start = fr.fp.wrapping_add_signed(p.cfa_offset);
                FrameVar {
                    start,
                    end: start.saturating_add(p.size),
                    name: p.name,
                    ty: p.whole,
                }
            })
            .collect()
    }
}
