//! GC roots: the words outside the heap that the runtime treats as pointers, named for people.

use serde::Serialize;

use crate::memory::Addr;
use crate::runtime::{Runtime, RuntimeError};

/// Where a root lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    /// A global variable in the data or bss section.
    Global,
    /// A goroutine's stack frame.
    Stack,
    /// Runtime-internal references (finalizers, specials, …).
    Runtime,
}

/// A named group of pointer words: one global variable, one stack frame, one runtime structure.
#[derive(Debug, Clone)]
pub struct Root {
    /// What kind of root.
    pub kind: RootKind,
    /// A name a person can read: `main.balances`, `goroutine 7 main.worker`.
    pub name: String,
    /// The words that hold pointers, with an optional name for each (a field or local).
    pub slots: Vec<(Addr, Option<String>)>,
}

/// A global variable's extent, for naming the pointer words that fall inside it.
struct GlobalVar {
    start: u64,
    end: u64,
    name: String,
}

impl Runtime<'_> {
    /// Pointer words of the data and bss sections, as the runtime's `gcdatamask`/`gcbssmask` mark
    /// them, grouped by the global variable (from DWARF) or, failing that, the symbol that holds
    /// them.
    pub fn global_roots(&self) -> Result<Vec<Root>, RuntimeError> {
        let md = "runtime.moduledata";
        let mut vars: Vec<GlobalVar> = self
            .dwarf()
            .variables()
            .map(|v| {
                let size =
                    v.ty.and_then(|t| self.dwarf().resolve(t).ok())
                        .map(|(_, t)| t.size)
                        .unwrap_or(0);
                let start = v.addr.wrapping_add(self.p.bias);
                GlobalVar {
                    start,
                    end: start + size.max(1),
                    name: v.name,
                }
            })
            .collect();
        vars.sort_by_key(|v| v.start);
        let mut roots: Vec<Root> = Vec::new();
        let mut module = self.global("runtime.firstmoduledata")?;
        for _ in 0..64 {
            for (start, mask) in [("data", "gcdatamask"), ("bss", "gcbssmask")] {
                let base = self.field_ptr(module, md, start)?;
                let nbits = self.field_uint(module, md, &format!("{mask}.n"))?;
                let bytes = self.field_ptr(module, md, &format!("{mask}.bytedata"))?;
                let bits =
                    self.mem()
                        .read(bytes, nbits.div_ceil(8) as usize)
                        .map_err(|source| RuntimeError::Memory {
                            what: format!("moduledata.{mask}"),
                            source,
                        })?;
                for i in 0..nbits {
                    if bits[(i / 8) as usize] >> (i % 8) & 1 == 0 {
                        continue;
                    }
                    let slot = base.offset(8 * i);
                    let (name, field) = self.name_global_word(&vars, slot);
                    match roots.last_mut() {
                        Some(r) if r.name == name => r.slots.push((slot, field)),
                        _ => roots.push(Root {
                            kind: RootKind::Global,
                            name,
                            slots: vec![(slot, field)],
                        }),
                    }
                }
            }
            module = self.field_ptr(module, md, "next")?;
            if module.0 == 0 {
                break;
            }
        }
        Ok(roots)
    }

    /// The variable (and byte offset inside it) that a data/bss word belongs to.
    fn name_global_word(&self, vars: &[GlobalVar], slot: Addr) -> (String, Option<String>) {
        let i = vars.partition_point(|v| v.start <= slot.0);
        if let Some(v) = i.checked_sub(1).and_then(|i| vars.get(i)) {
            if slot.0 < v.end {
                let off = slot.0 - v.start;
                return (v.name.clone(), (off > 0).then(|| format!("+{off}")));
            }
        }
        let link = slot.0.wrapping_sub(self.p.bias);
        let name = self
            .p
            .symbols
            .lookup(link)
            .map(str::to_string)
            .unwrap_or_else(|| format!("global {slot}"));
        (name, None)
    }
}

impl Runtime<'_> {
    /// Roots other than globals: goroutine stacks and runtime structures found so far.
    pub fn extra_roots(&self) -> Result<Vec<Root>, RuntimeError> {
        Ok(Vec::new())
    }
}
