//! Goroutine stacks as GC roots: every live goroutine is unwound as the runtime's unwinder does
//! (`runtime/traceback.go`), and each frame's pointer words are found as `scanframeworker` and
//! `getStackMap` find them: the locals and arguments bitmaps at the frame's stack map index,
//! the stack objects reached from those pointers, and conservative scans of frames interrupted
//! asynchronously.
//!
//! Where unwinding starts: a goroutine in a syscall at `syscallsp/pc` and any other stopped
//! goroutine at `sched`, as the GC does. A running goroutine starts at its thread's registers
//! (NT_PRSTATUS of the thread whose id is the `procid` of the M whose `curg` it is) when the
//! thread is on the goroutine's stack; when the thread is in a signal handler on the M's signal
//! stack (a crashing Go program dies in the handler of the SIGABRT it raised), at the registers
//! saved in the kernel's signal frame; otherwise at `sched`, which is current only while the
//! goroutine is in `systemstack`/`mcall` (gogo clears `sched.sp`), else the goroutine is
//! skipped.
//!
//! Choices where a core analyzer cannot do exactly what the GC does:
//! - Stack objects (address-taken locals) are treated as the GC treats them: an object's
//!   pointer words are roots only when a pointer from a scanned word reaches the object
//!   (transitively, and from `g._panic` and defer records), so dead objects holding stale
//!   pointers are not reported. Objects reached only from conservative words are reported with
//!   the name `conservative`. Objects whose pointer mask is a GC program (Go 1.21–1.23, very
//!   large objects) are not scanned and count as a skipped frame.
//! - Frames the runtime scans conservatively (the frame of `runtime.asyncPreempt` or
//!   `runtime.debugCallV2` and the frame it interrupted) and the innermost frame of a goroutine
//!   whose registers came from its thread or a signal frame (not necessarily at a safe point)
//!   contribute every non-zero word, named `conservative`. Their values need not point at live
//!   objects: the GC checks each against the heap, and so must the consumer.
//! - Names come from the program's DWARF (DW_TAG_variable and DW_TAG_formal_parameter under
//!   each DW_TAG_subprogram on a stack, inlined ones included, with their location at the
//!   frame's pc), through the one DWARF reader ([`crate::dwarf::Dwarf::frame_pieces`]).
//!
//! The parts: `unwind` walks a goroutine's frames (signal frames included), `stackmap`
//! finds each frame's pointer words from the pclntab's stack maps and stack objects, and
//! `vars` names those words by the frame's variables.

mod stackmap;
mod unwind;
mod vars;

use std::borrow::Cow;
use std::collections::HashMap;

use super::pclntab::{Func, Pclntab};
use super::{Goroutine, Runtime, RuntimeError};
use crate::dwarf::TypeRef;
use crate::memory::{Addr, Memory};
use crate::reader::Bytes;

pub use super::pclntab::decode_pcvalue;

/// The most frames unwound on one goroutine's stack.
const MAX_FRAMES: usize = 10_000;
/// Pointer size on the supported architectures.
const PTR: u64 = 8;
/// The name given to words found by conservative scanning.
pub const CONSERVATIVE: &str = "conservative";

/// One frame of a goroutine's stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFrame {
    /// Id of the goroutine the frame belongs to.
    pub goid: u64,
    /// Function name from the pclntab.
    pub func: String,
    /// Program counter in the frame (a return address except for the innermost frame).
    pub pc: u64,
    /// The frame's stack pointer.
    pub sp: u64,
    /// The caller's stack pointer: the top of this frame.
    pub fp: u64,
}

/// A stack word that holds a pointer according to the runtime's stack maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSlot {
    /// Address of the stack word.
    pub addr: Addr,
    /// Index into `StackRoots::frames` of the frame holding the word.
    pub frame: u32,
    /// Variable name from DWARF, or `conservative` for a word of a conservatively scanned frame.
    pub name: Option<String>,
}

impl StackSlot {
    /// Whether the word was found by conservative scanning (may hold a non-pointer).
    pub fn is_conservative(&self) -> bool {
        self.name.as_deref() == Some(CONSERVATIVE)
    }
}

/// A local variable or argument in a frame, with its DWARF type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackVar {
    /// Index into `StackRoots::frames`.
    pub frame: u32,
    /// Variable name.
    pub name: String,
    /// Where it starts on the stack.
    pub addr: Addr,
    /// Its size in bytes.
    pub size: u64,
    /// Its type.
    pub ty: TypeRef,
}

/// The stack roots of every live goroutine.
#[derive(Debug, Clone, Default)]
pub struct StackRoots {
    /// Typed local variables and arguments that hold at least one pointer slot.
    pub vars: Vec<StackVar>,
    /// Frames, goroutine by goroutine, innermost first.
    pub frames: Vec<StackFrame>,
    /// Pointer words, goroutine by goroutine, in address order.
    pub slots: Vec<StackSlot>,
    /// Live goroutines whose unwinding could not start (no frame was found).
    pub skipped_goroutines: u64,
    /// Frames not unwound or with unreadable pointer maps (one per skipped goroutine included).
    pub skipped_frames: u64,
}

/// A frame of a goroutine's traceback.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TracebackFrame {
    /// Function name.
    pub function: String,
    /// Source file.
    pub file: String,
    /// Line, 0 when unknown.
    pub line: u32,
    /// The physical frame's program counter.
    #[serde(serialize_with = "super::hex::addr")]
    pub pc: u64,
    /// Whether the call was inlined into the frame's function.
    pub inlined: bool,
}

/// A goroutine's traceback.
#[derive(Debug, Clone, Default)]
pub struct Traceback {
    /// Frames, innermost first.
    pub frames: Vec<TracebackFrame>,
    /// String variables asked for: (function, variable, value).
    pub strings: Vec<(String, String, String)>,
}

/// Field offsets the walk reads, from DWARF.
struct Layout {
    stack_lo: u64,
    stack_hi: u64,
    sched_sp: u64,
    sched_pc: u64,
    sched_lr: Option<u64>,
    syscallsp: u64,
    syscallpc: u64,
    defer: u64,
    panic: u64,
    defer_fn: Option<u64>,
    defer_link: Option<u64>,
}

impl Layout {
    fn new(rt: &Runtime) -> Result<Layout, RuntimeError> {
        let d = rt.dwarf();
        let g = "runtime.g";
        Ok(Layout {
            stack_lo: d.offset(g, "stack.lo")?,
            stack_hi: d.offset(g, "stack.hi")?,
            sched_sp: d.offset(g, "sched.sp")?,
            sched_pc: d.offset(g, "sched.pc")?,
            sched_lr: d.offset(g, "sched.lr").ok(),
            syscallsp: d.offset(g, "syscallsp")?,
            syscallpc: d.offset(g, "syscallpc")?,
            defer: d.offset(g, "_defer")?,
            panic: d.offset(g, "_panic")?,
            defer_fn: d.offset("runtime._defer", "fn").ok(),
            defer_link: d.offset("runtime._defer", "link").ok(),
        })
    }
}

/// Registers of the thread running a goroutine, and its M.
#[derive(Debug, Clone, Copy)]
struct Regs {
    pc: u64,
    sp: u64,
    lr: u64,
    m: Addr,
}

/// A goroutine's stack bytes, read once.
struct StackMem<'m> {
    lo: u64,
    hi: u64,
    bytes: Option<Cow<'m, [u8]>>,
    mem: &'m Memory,
}

impl StackMem<'_> {
    /// Whether `a` is on the stack.
    fn contains(&self, a: u64) -> bool {
        a >= self.lo && a < self.hi
    }

    /// The word at `a`, from the stack's bytes when they were readable, else from memory.
    fn word(&self, a: u64) -> Option<u64> {
        if let Some(b) = &self.bytes {
            if a >= self.lo && a.checked_add(PTR).is_some_and(|e| e <= self.hi) {
                return Bytes(b).u64(usize::try_from(a - self.lo).ok()?);
            }
        }
        self.mem.u64(Addr(a)).ok()
    }
}

/// One resolved frame during the walk.
struct Frame {
    f: Func,
    name: String,
    sp: u64,
    varp: u64,
    argp: u64,
    continpc: u64,
    /// Pc to look variable locations up at.
    lookup_pc: u64,
}

/// What the walk shares across goroutines.
struct Walker<'a, 'p> {
    rt: &'a Runtime<'p>,
    tab: Pclntab<'p>,
    arm64: bool,
    signal: unwind::SignalLayout,
    /// Per frame in `out.frames`: function entry and the pc to look variables up at.
    frame_meta: Vec<(u64, u64)>,
    out: StackRoots,
}

/// A stack object registered by a frame.
struct StackObject {
    addr: u64,
    size: u64,
    /// Bytes covered by the pointer mask; negative for a GC program.
    ptr_bytes: i64,
    gcdata: u64,
    frame: u32,
    scanned: bool,
}

/// A slot found during one goroutine's walk.
struct FoundSlot {
    addr: u64,
    frame: u32,
    conservative: bool,
}

/// Per-goroutine scan state (`stackScanState`).
#[derive(Default)]
struct ScanState {
    conservative: bool,
    objects: Vec<StackObject>,
    precise: Vec<u64>,
    cons: Vec<u64>,
    slots: Vec<FoundSlot>,
}

impl Runtime<'_> {
    /// Unwinds every live goroutine and lists its frames and the stack words holding pointers.
    pub fn stack_roots(&self) -> Result<StackRoots, RuntimeError> {
        let layout = Layout::new(self)?;
        let running = self.thread_registers();
        let (gs, missing) = self.goroutines_and_missing()?;
        let mut w = Walker::new(self)?;
        for g in gs.iter().filter(|g| g.status.is_live()) {
            w.goroutine(g, &layout, running.get(&g.g.0).copied());
        }
        // Goroutines whose record was cut off with the end of a truncated core: skipped.
        w.out.skipped_goroutines += missing;
        w.out.skipped_frames += missing;
        Ok(w.out)
    }

    /// One goroutine's frames with source positions, innermost first, inlined calls as frames
    /// of their own (as the runtime's traceback prints them); and the values of the string
    /// variables `wanted` names as (function, variable) where DWARF places them in memory.
    pub fn traceback(
        &self,
        g: &Goroutine,
        wanted: &[(&str, &str)],
    ) -> Result<Traceback, RuntimeError> {
        let layout = Layout::new(self)?;
        let running = self.thread_registers();
        let mut w = Walker::new(self)?;
        w.goroutine(g, &layout, running.get(&g.g.0).copied());
        let mut out = Traceback {
            frames: Vec::new(),
            strings: Vec::new(),
        };
        for i in 0..w.out.frames.len() {
            let Some((fr, &(_, lookup))) = w.out.frames.get(i).cloned().zip(w.frame_meta.get(i))
            else {
                break;
            };
            // After a fault the caller's pc is the faulting instruction itself, not a return
            // address: look it up as is.
            let after_fault = i > 0
                && w.out
                    .frames
                    .get(i - 1)
                    .is_some_and(|c| c.func == names::SIGPANIC);
            let pc = if after_fault { fr.pc } else { lookup };
            let Some(f) = w.tab.find(pc) else {
                continue;
            };
            for pos in w.tab.source_positions(&f, pc) {
                out.frames.push(TracebackFrame {
                    function: pos.function,
                    file: pos.file,
                    line: pos.line,
                    pc: fr.pc,
                    inlined: pos.inlined,
                });
            }
            let func = fr.func.clone();
            for &(_, var) in wanted.iter().filter(|(f, _)| *f == func) {
                // A string lives whole in memory, or as two word pieces: pointer, length.
                let pieces: Vec<(u64, u64)> = w
                    .frame_vars(i)
                    .into_iter()
                    .filter(|v| v.name == var)
                    .map(|v| (v.start, v.end.saturating_sub(v.start)))
                    .collect();
                let value = match pieces.as_slice() {
                    [(a, 16)] => self.mem().go_string(Addr(*a), 4096).ok(),
                    [(p, 8), (n, 8)] => self.string_at(Addr(*p), Addr(*n)),
                    _ => self.closure_string(&func, &fr),
                };
                if let Some(v) = value {
                    out.strings.push((func.clone(), var.to_string(), v));
                }
            }
        }
        Ok(out)
    }

    /// A string a function's first closure (`<function>.func1`, e.g. the one `runtime.throw`
    /// hands to `systemstack`) captured as its only variable, when the closure was built in
    /// the frame: its code pointer, then the string's pointer and length.
    fn closure_string(&self, func: &str, fr: &StackFrame) -> Option<String> {
        let entry = self
            .p
            .symbols
            .address(&format!("{func}.func1"))?
            .wrapping_add(self.p.bias);
        let words = fr.fp.saturating_sub(fr.sp) / PTR;
        (0..words.min(1024)).find_map(|i| {
            let at = Addr(fr.sp + i * PTR);
            if self.mem().u64(at).ok()? != entry {
                return None;
            }
            self.string_at(at.offset(PTR), at.offset(2 * PTR))
                .filter(|s| !s.is_empty())
        })
    }

    /// The string whose data pointer is stored at `ptr` and length at `len`.
    fn string_at(&self, ptr: Addr, len: Addr) -> Option<String> {
        let p = self.mem().ptr(ptr).ok()?;
        let n = self.mem().u64(len).ok()?.min(4096) as usize;
        let b = self.mem().read(p, n).ok()?;
        Some(String::from_utf8_lossy(&b).into_owned())
    }

    /// Registers of the threads running goroutines, by `g` address: the M list `runtime.allm`
    /// gives each M's `curg` and thread id (`procid`), NT_PRSTATUS the thread's registers.
    fn thread_registers(&self) -> HashMap<u64, Regs> {
        let mut out = HashMap::new();
        for (m, curg, procid) in self.machines() {
            if curg.0 == 0 {
                continue;
            }
            if let Some(t) = self
                .p
                .core
                .threads
                .iter()
                .find(|t| u64::from(t.tid) == procid)
            {
                out.insert(
                    curg.0,
                    Regs {
                        pc: t.pc,
                        sp: t.sp,
                        lr: t.lr,
                        m,
                    },
                );
            }
        }
        out
    }

    /// Every M in `runtime.allm`: its address, its current goroutine (`curg`, 0 when none)
    /// and its thread id (`procid`).
    pub fn machines(&self) -> Vec<(Addr, Addr, u64)> {
        let mut out = Vec::new();
        let Ok(allm) = self.global("runtime.allm") else {
            return out;
        };
        let Ok(mut m) = self.mem().ptr(allm) else {
            return out;
        };
        let m_ty = "runtime.m";
        for _ in 0..100_000 {
            if m.0 == 0 {
                break;
            }
            let curg = self.field_ptr(m, m_ty, "curg").unwrap_or(Addr(0));
            let procid = self.field_uint(m, m_ty, "procid").unwrap_or(0);
            out.push((m, curg, procid));
            m = match self.field_ptr(m, m_ty, "alllink") {
                Ok(next) => next,
                Err(_) => break,
            };
        }
        out
    }
}

/// Names of functions the unwinder treats specially (compared by name: FuncID numbers differ
/// between releases).
mod names {
    pub const SIGPANIC: &str = "runtime.sigpanic";
    pub const ASYNC_PREEMPT: &str = "runtime.asyncPreempt";
    pub const DEBUG_CALL: &str = "runtime.debugCallV2";
    pub const CGOCALLBACK: &str = "runtime.cgocallback";
}

#[cfg(test)]
mod tests;
