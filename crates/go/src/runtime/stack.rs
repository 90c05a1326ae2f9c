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
//! - Names come from the executable's own DWARF (DW_TAG_variable and DW_TAG_formal_parameter
//!   under each DW_TAG_subprogram on a stack, inlined ones included, with their location at the
//!   frame's pc), loaded only when stacks are walked; with no DWARF in the executable (a
//!   separate debug file), names are `None`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use gimli::{AttributeValue, EndianArcSlice, LittleEndian, Reader};
use object::{Object, ObjectSection};

use super::pclntab::{
    Func, Pclntab, ARGS_SIZE_UNKNOWN, FLAG_SP_WRITE, FLAG_TOP_FRAME, FUNCDATA_ARGS_POINTER_MAPS,
    FUNCDATA_LOCALS_POINTER_MAPS, FUNCDATA_STACK_OBJECTS, PCDATA_STACK_MAP_INDEX,
};
use super::{Goroutine, GoroutineStatus, Runtime, RuntimeError};
use crate::core::Arch;
use crate::dwarf::TypeRef;
use crate::memory::{Addr, Memory};

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
    fn contains(&self, a: u64) -> bool {
        a >= self.lo && a < self.hi
    }

    fn word(&self, a: u64) -> Option<u64> {
        if let Some(b) = &self.bytes {
            if a >= self.lo && a.checked_add(PTR).is_some_and(|e| e <= self.hi) {
                let o = (a - self.lo) as usize;
                return Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
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

/// What the walk shares across goroutines.
struct Walker<'a, 'p> {
    rt: &'a Runtime<'p>,
    tab: Pclntab<'p>,
    arm64: bool,
    names: Option<VarIndex>,
    names_tried: bool,
    /// Per frame in `out.frames`: function entry and the pc to look variables up at.
    frame_meta: Vec<(u64, u64)>,
    out: StackRoots,
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
                    .filter(|v| v.2 == var)
                    .map(|v| (v.0, v.1.saturating_sub(v.0)))
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

impl<'a, 'p> Walker<'a, 'p> {
    fn new(rt: &'a Runtime<'p>) -> Result<Walker<'a, 'p>, RuntimeError> {
        Ok(Walker {
            rt,
            tab: Pclntab::new(rt)?,
            arm64: rt.p.core.arch == Arch::Arm64,
            names: None,
            names_tried: false,
            frame_meta: Vec::new(),
            out: StackRoots::default(),
        })
    }
}

impl<'p> Walker<'_, 'p> {
    fn goroutine(&mut self, g: &Goroutine, l: &Layout, regs: Option<Regs>) {
        let mem = self.rt.mem();
        let rd = |off: u64| mem.u64(g.g.offset(off)).ok();
        let (Some(lo), Some(hi)) = (rd(l.stack_lo), rd(l.stack_hi)) else {
            self.skip_goroutine();
            return;
        };
        if lo >= hi || hi - lo > 1 << 30 {
            self.skip_goroutine();
            return;
        }
        let stack = StackMem {
            lo,
            hi,
            bytes: mem.read(Addr(lo), (hi - lo) as usize).ok(),
            mem,
        };
        let sched_sp = rd(l.sched_sp).unwrap_or(0);
        let sched_pc = rd(l.sched_pc).unwrap_or(0);
        let sched_lr = l.sched_lr.and_then(rd).unwrap_or(0);
        let syscallsp = rd(l.syscallsp).unwrap_or(0);
        let syscallpc = rd(l.syscallpc).unwrap_or(0);

        // Where to start: for a running goroutine, its thread's registers when the thread is
        // on the goroutine's stack, or the registers a signal interrupted there when the thread
        // is in a signal handler (a crash raises SIGABRT from the goroutine's stack). Otherwise
        // what the runtime itself uses: syscallsp/pc, then sched (for a running goroutine,
        // gogo clears sched.sp and only systemstack/mcall set it again, so it is current when
        // set). Goroutines in a syscall start at syscallsp as the GC's scan does: the words
        // below it are not scanned.
        let mut st = ScanState::default();
        let interrupted = match regs {
            Some(r) if g.status == GoroutineStatus::Running => {
                if stack.contains(r.sp) {
                    Some(r)
                } else {
                    self.signal_context(r, &stack)
                }
            }
            _ => None,
        };
        let start = match interrupted {
            Some(r) => {
                // Not necessarily at a safe point: scan the innermost frame conservatively.
                st.conservative = true;
                Some((r.pc, r.sp, r.lr))
            }
            _ if syscallsp != 0 => Some((syscallpc, syscallsp, 0)),
            _ if sched_sp != 0 => Some((sched_pc, sched_sp, sched_lr)),
            _ => None,
        };
        let Some((mut pc, mut sp, mut lr)) = start else {
            self.skip_goroutine();
            return;
        };
        if !stack.contains(sp) && sp != hi {
            self.skip_goroutine();
            return;
        }
        if pc == 0 {
            // A nil function call: start in the caller's frame.
            let Some(ret) = stack.word(sp) else {
                self.skip_goroutine();
                return;
            };
            pc = ret;
            if self.arm64 {
                lr = 0;
            } else {
                sp = sp.saturating_add(PTR);
            }
        }
        let Some(mut f) = self.tab.find(pc) else {
            self.skip_goroutine();
            return;
        };

        let first = self.out.frames.len();
        let mut innermost = true;
        let mut callee_sigpanic = false;
        loop {
            if self.out.frames.len() - first >= MAX_FRAMES {
                self.out.skipped_frames += 1;
                break;
            }
            if f.pcsp == 0 {
                // No frame information (external code): the runtime stops here too.
                break;
            }
            let name = self.tab.name(&f);
            let mut flag = f.flag;
            if name == names::CGOCALLBACK {
                flag &= !FLAG_SP_WRITE;
            }
            let Some(delta) = self.tab.spdelta(&f, pc) else {
                self.out.skipped_frames += 1;
                break;
            };
            let Some(mut fp) = sp.checked_add_signed(i64::from(delta)) else {
                self.out.skipped_frames += 1;
                break;
            };
            if !self.arm64 {
                // The CALL pushed the return address: it belongs to this frame.
                fp = fp.saturating_add(PTR);
            }
            if fp < sp || fp > hi {
                self.out.skipped_frames += 1;
                break;
            }
            let mut next_lr_ok = true;
            if flag & FLAG_TOP_FRAME != 0 {
                lr = 0;
            } else if flag & FLAG_SP_WRITE != 0 && !innermost {
                // The GC would throw here: SP was written in a way the table does not describe.
                lr = 0;
                self.out.skipped_frames += 1;
            } else if self.arm64 {
                if innermost && sp < fp || lr == 0 {
                    match stack.word(sp) {
                        Some(v) => lr = v,
                        None => next_lr_ok = false,
                    }
                }
            } else if lr == 0 {
                match stack.word(fp.wrapping_sub(PTR)) {
                    Some(v) => lr = v,
                    None => next_lr_ok = false,
                }
            }
            let mut varp = fp;
            if !self.arm64 {
                varp = varp.wrapping_sub(PTR);
            }
            // The saved frame pointer sits just below varp when the frame has room for it.
            if varp > sp {
                varp -= PTR;
            }
            let argp = fp.saturating_add(if self.arm64 { PTR } else { 0 });
            let continpc = if callee_sigpanic {
                if f.deferreturn != 0 {
                    f.entry.wrapping_add(u64::from(f.deferreturn) + 1)
                } else {
                    0
                }
            } else {
                pc
            };
            let lookup_pc = if pc == f.entry || (innermost && st.conservative) {
                pc
            } else {
                pc - 1
            };
            let frame = Frame {
                f,
                name,
                sp,
                varp,
                argp,
                continpc,
                lookup_pc,
            };
            let idx = self.out.frames.len() as u32;
            self.frame_meta.push((frame.f.entry, frame.lookup_pc));
            self.out.frames.push(StackFrame {
                goid: g.id,
                func: frame.name.clone(),
                pc,
                sp,
                fp,
            });
            self.scan_frame(&frame, idx, &stack, &mut st);

            // Unwind to the caller (`unwinder.next`).
            if !next_lr_ok {
                self.out.skipped_frames += 1;
                break;
            }
            if lr == 0 {
                break;
            }
            let Some(caller) = self.tab.find(lr) else {
                self.out.skipped_frames += 1;
                break;
            };
            if pc == lr && sp == fp {
                self.out.skipped_frames += 1;
                break;
            }
            let injected = matches!(
                frame.name.as_str(),
                names::SIGPANIC | names::ASYNC_PREEMPT | names::DEBUG_CALL
            );
            callee_sigpanic = frame.name == names::SIGPANIC;
            f = caller;
            pc = lr;
            lr = 0;
            sp = fp;
            if self.arm64 && injected {
                // sighandler saved LR on the stack before faking the call.
                let Some(x) = stack.word(sp) else {
                    self.out.skipped_frames += 1;
                    break;
                };
                sp = sp.saturating_add(16);
                if self.tab.spdelta(&f, pc) == Some(0) {
                    lr = x;
                }
            }
            innermost = false;
        }
        if self.out.frames.len() == first {
            self.skip_goroutine();
            return;
        }
        self.defers_and_panics(g, l, &stack, first, &mut st);
        self.scan_objects(&stack, &mut st);
        self.finish_goroutine(st);
    }

    /// The registers a signal interrupted on this goroutine's stack, when the thread `t` is in
    /// a signal handler: the kernel's signal frame lies on the M's signal stack between the
    /// thread's SP and the stack's top, its `ucontext` recognised by `uc_stack`, which describes
    /// the signal stack itself (`sigaltstack` as the runtime set it up). Frames below the
    /// thread's SP are stale and not looked at.
    fn signal_context(&self, t: Regs, stack: &StackMem) -> Option<Regs> {
        let rt = self.rt;
        let mem = rt.mem();
        let gsignal = rt.field_ptr(t.m, "runtime.m", "gsignal").ok()?;
        let lo = rt.field_uint(gsignal, "runtime.g", "stack.lo").ok()?;
        let hi = rt.field_uint(gsignal, "runtime.g", "stack.hi").ok()?;
        if lo >= hi || hi - lo > 1 << 24 || t.sp < lo || t.sp >= hi {
            return None;
        }
        let live = (t.sp - lo) as usize & !7;
        let bytes = mem.read(Addr(lo), (hi - lo) as usize).ok()?;
        let word = |o: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?))
        };
        // Offsets in the ucontext of uc_stack and of the saved pc, sp and lr.
        let (stack_off, pc_off, sp_off, lr_off) = if self.arm64 {
            (16, 440, 432, Some(424))
        } else {
            (16, 168, 160, None)
        };
        // The outermost signal frame sits nearest the top of the signal stack.
        let n = bytes.len() / 8;
        for k in (live / 8 + stack_off / 8..n.saturating_sub(2)).rev() {
            if word(k * 8)? != lo || word((k + 2) * 8)? != hi - lo {
                continue;
            }
            let Some(uc) = (k * 8).checked_sub(stack_off) else {
                continue;
            };
            let (Some(pc), Some(sp)) = (word(uc + pc_off), word(uc + sp_off)) else {
                continue;
            };
            let lr = lr_off.and_then(|o| word(uc + o)).unwrap_or(0);
            if stack.contains(sp) && self.tab.find(pc).is_some() {
                return Some(Regs { pc, sp, lr, m: t.m });
            }
        }
        None
    }

    fn skip_goroutine(&mut self) {
        self.out.skipped_goroutines += 1;
        self.out.skipped_frames += 1;
    }

    /// Adds a pointer word found precisely or conservatively.
    fn add_slot(
        &self,
        stack: &StackMem,
        st: &mut ScanState,
        addr: u64,
        frame: u32,
        conservative: bool,
    ) {
        let v = stack.word(addr);
        if conservative && v.unwrap_or(0) == 0 {
            return;
        }
        st.slots.push(FoundSlot {
            addr,
            frame,
            conservative,
        });
        if let Some(v) = v.filter(|&v| stack.contains(v)) {
            if conservative {
                st.cons.push(v);
            } else {
                st.precise.push(v);
            }
        }
    }

    /// `scanframeworker`: the frame's pointer words and its stack objects.
    fn scan_frame(&mut self, fr: &Frame, idx: u32, stack: &StackMem, st: &mut ScanState) {
        let is_async = fr.name == names::ASYNC_PREEMPT;
        let is_debug = fr.name == names::DEBUG_CALL;
        if st.conservative || is_async || is_debug {
            if fr.varp != 0 && fr.varp > fr.sp {
                let mut size = fr.varp - fr.sp;
                if self.arm64 && (is_async || is_debug || fr.name == names::SIGPANIC) {
                    // The small frame injected by pushCall.
                    size += 16;
                }
                let end = fr.sp.saturating_add(size).min(stack.hi);
                for a in (fr.sp..end).step_by(PTR as usize) {
                    self.add_slot(stack, st, a, idx, true);
                }
            }
            if fr.f.args != ARGS_SIZE_UNKNOWN && fr.f.args > 0 {
                let end = fr.argp.saturating_add(fr.f.args as u64).min(stack.hi);
                for a in (fr.argp..end).step_by(PTR as usize) {
                    self.add_slot(stack, st, a, idx, true);
                }
            }
            st.conservative = is_async || is_debug;
            return;
        }

        // `getStackMap`.
        let mut targetpc = fr.continpc;
        if targetpc == 0 {
            // A dead frame (stopped by a trap with no deferreturn): nothing is live.
            return;
        }
        let f = &fr.f;
        let mut pcdata = -1;
        if targetpc != f.entry {
            targetpc -= 1;
            pcdata = self.tab.pcdata(f, PCDATA_STACK_MAP_INDEX, targetpc);
        }
        if pcdata == -1 {
            pcdata = 0;
        }
        let mut damaged = false;

        let size = fr.varp.saturating_sub(fr.sp);
        let minsize = if self.arm64 { 16 } else { 0 };
        if size > minsize {
            match self.stackmap(f, FUNCDATA_LOCALS_POINTER_MAPS, pcdata) {
                StackMap::Bits(nbit, bits) => {
                    let bytes = u64::from(nbit) * PTR;
                    if bytes > fr.varp.saturating_sub(stack.lo) {
                        // The bitmap would reach below the stack.
                        damaged = true;
                    } else {
                        let base = fr.varp - bytes;
                        for i in 0..u64::from(nbit) {
                            if bit(&bits, i) {
                                self.add_slot(stack, st, base + i * PTR, idx, false);
                            }
                        }
                    }
                }
                StackMap::Empty => {}
                StackMap::Unusable => damaged = true,
            }
        }

        if f.args == ARGS_SIZE_UNKNOWN {
            // reflect.makeFuncStub / methodValueCall: the argument map lives in reflect's data.
            damaged = true;
        } else if f.args >= PTR as i32 {
            match self.stackmap(f, FUNCDATA_ARGS_POINTER_MAPS, pcdata) {
                StackMap::Bits(nbit, bits) => {
                    if u64::from(nbit) * PTR > stack.hi.saturating_sub(fr.argp) {
                        // The bitmap would reach above the stack.
                        damaged = true;
                    } else {
                        for i in 0..u64::from(nbit) {
                            if bit(&bits, i) {
                                self.add_slot(stack, st, fr.argp + i * PTR, idx, false);
                            }
                        }
                    }
                }
                StackMap::Empty => {}
                StackMap::Unusable => damaged = true,
            }
        }

        if fr.varp != 0 && f.args != ARGS_SIZE_UNKNOWN {
            if let Some(p) = self.tab.funcdata(f, FUNCDATA_STACK_OBJECTS) {
                let mem = self.rt.mem();
                let n = mem.u64(p).unwrap_or(0).min(1 << 16);
                for i in 0..n {
                    // stackObjectRecord: off, size, ptrBytes (negative: GC program), gcdataoff.
                    let rec = mem.read(p.offset(PTR + 16 * i), 16);
                    let w = |k: usize| -> Option<u32> {
                        let b = rec.as_ref().ok()?.get(k..k + 4)?;
                        Some(u32::from_le_bytes(b.try_into().ok()?))
                    };
                    let (Some(off), Some(size), Some(ptr_bytes), Some(gcdataoff)) =
                        (w(0), w(4), w(8), w(12))
                    else {
                        damaged = true;
                        break;
                    };
                    let (off, size, ptr_bytes) = (off as i32, size as i32, ptr_bytes as i32);
                    let base = if off >= 0 { fr.argp } else { fr.varp };
                    let addr = base.wrapping_add_signed(i64::from(off));
                    if addr < fr.sp || size <= 0 || addr >= stack.hi {
                        // Not allocated in the frame yet.
                        continue;
                    }
                    st.objects.push(StackObject {
                        addr,
                        size: size as u64,
                        ptr_bytes: i64::from(ptr_bytes),
                        gcdata: self.tab.rodata.wrapping_add(u64::from(gcdataoff)),
                        frame: idx,
                        scanned: false,
                    });
                }
            }
        }
        if damaged {
            self.out.skipped_frames += 1;
        }
    }

    /// The bitmap at `index` of a FUNCDATA stack map (`stackmapdata`).
    fn stackmap(&self, f: &Func, which: u8, index: i32) -> StackMap {
        let Some(p) = self.tab.funcdata(f, which) else {
            return StackMap::Unusable;
        };
        let mem = self.rt.mem();
        let (Ok(n), Ok(nbit)) = (mem.u32(p), mem.u32(p.offset(4))) else {
            return StackMap::Unusable;
        };
        let (n, nbit) = (n as i32, nbit as i32);
        if n <= 0 || nbit < 0 {
            return StackMap::Unusable;
        }
        if nbit == 0 {
            return StackMap::Empty;
        }
        if index < 0 || index >= n {
            return StackMap::Unusable;
        }
        let row = (nbit as u64).div_ceil(8);
        match mem.read(p.offset(8 + row * index as u64), row as usize) {
            Ok(bits) => StackMap::Bits(nbit as u32, bits.into_owned()),
            Err(_) => StackMap::Unusable,
        }
    }

    /// Pointers into the stack from the goroutine's defer and panic records (as `scanstack`).
    fn defers_and_panics(
        &self,
        g: &Goroutine,
        l: &Layout,
        stack: &StackMem,
        first: usize,
        st: &mut ScanState,
    ) {
        let mem = self.rt.mem();
        let frame_of = |a: u64| -> Option<u32> {
            self.out.frames[first..]
                .iter()
                .position(|f| a >= f.sp && a < f.fp)
                .map(|i| (first + i) as u32)
        };
        let mut d = mem.u64(g.g.offset(l.defer)).unwrap_or(0);
        for _ in 0..100_000 {
            if d == 0 {
                break;
            }
            for off in [l.defer_fn, l.defer_link].into_iter().flatten() {
                let a = d.wrapping_add(off);
                if stack.contains(a) {
                    if let Some(frame) = frame_of(a) {
                        if stack.word(a).unwrap_or(0) != 0 {
                            self.add_slot(stack, st, a, frame, false);
                        }
                    }
                } else if let Ok(v) = mem.u64(Addr(a)) {
                    if stack.contains(v) {
                        st.precise.push(v);
                    }
                }
            }
            d = match l.defer_link.map(|o| mem.u64(Addr(d.wrapping_add(o)))) {
                Some(Ok(next)) => next,
                _ => break,
            };
        }
        if let Ok(p) = mem.u64(g.g.offset(l.panic)) {
            if stack.contains(p) {
                st.precise.push(p);
            }
        }
    }

    /// Scans the stack objects reached from pointers into the stack, precise ones first.
    fn scan_objects(&mut self, stack: &StackMem, st: &mut ScanState) {
        if st.objects.is_empty() {
            return;
        }
        st.objects.sort_by_key(|o| o.addr);
        let mem = self.rt.mem();
        let mut unreadable = 0;
        loop {
            let (p, conservative) = if let Some(p) = st.precise.pop() {
                (p, false)
            } else if let Some(p) = st.cons.pop() {
                (p, true)
            } else {
                break;
            };
            let i = st.objects.partition_point(|o| o.addr <= p);
            let Some(i) = i.checked_sub(1) else {
                continue;
            };
            let o = &mut st.objects[i];
            if p >= o.addr.saturating_add(o.size) || o.scanned {
                continue;
            }
            o.scanned = true;
            if o.ptr_bytes < 0 {
                unreadable += 1;
                continue;
            }
            let (addr, frame, gcdata) = (o.addr, o.frame, o.gcdata);
            let words = (o.ptr_bytes as u64)
                .min(o.size)
                .min(stack.hi.saturating_sub(addr))
                / PTR;
            let Ok(mask) = mem.read(Addr(gcdata), words.div_ceil(8) as usize) else {
                unreadable += 1;
                continue;
            };
            let mask = mask.into_owned();
            for w in 0..words {
                if bit(&mask, w) {
                    self.add_slot(stack, st, addr + w * PTR, frame, conservative);
                }
            }
        }
        self.out.skipped_frames += unreadable;
    }

    /// Orders and de-duplicates a goroutine's slots, names them, and adds them to the output.
    fn finish_goroutine(&mut self, mut st: ScanState) {
        // Precise before conservative at the same address.
        st.slots.sort_by_key(|s| (s.addr, s.conservative));
        st.slots.dedup_by_key(|s| s.addr);
        let mut vars: HashMap<u32, Vec<FrameVar>> = HashMap::new();
        let mut typed_seen = std::collections::HashSet::new();
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
                        .filter(|(a, e, _, _)| s.addr >= *a && s.addr < *e)
                        .min_by_key(|(a, e, _, _)| e - a)?;
                    if let (Some(ty), true) = (var.3, typed_seen.insert(var.0)) {
                        self.out.vars.push(StackVar {
                            frame: s.frame,
                            name: var.2.clone(),
                            addr: Addr(var.0),
                            size: var.1 - var.0,
                            ty,
                        });
                    }
                    Some(var.2.clone())
                })
            };
            self.out.slots.push(StackSlot {
                addr: Addr(s.addr),
                frame: s.frame,
                name,
            });
        }
    }

    /// The stack ranges of a frame's variables, from DWARF.
    fn frame_vars(&mut self, frame: usize) -> Vec<FrameVar> {
        if !self.names_tried {
            self.names_tried = true;
            self.names = VarIndex::load(self.rt.p.exe.file.bytes());
        }
        let Some(names) = self.names.as_mut() else {
            return Vec::new();
        };
        let (Some(fr), Some(&(entry, lookup))) =
            (self.out.frames.get(frame), self.frame_meta.get(frame))
        else {
            return Vec::new();
        };
        let bias = self.rt.p.bias;
        names.frame_vars(entry.wrapping_sub(bias), lookup.wrapping_sub(bias), fr.fp)
    }
}

/// A variable's stack range: (start, end, name, type when it lives whole in memory).
type FrameVar = (u64, u64, String, Option<TypeRef>);

/// One bitmap of a FUNCDATA stack map.
enum StackMap {
    /// Missing, damaged, or indexed out of range (the runtime throws "bad symbol table").
    Unusable,
    /// The map has no bits: nothing to scan.
    Empty,
    /// The bit count and the bitmap at the index.
    Bits(u32, Vec<u8>),
}

/// Whether bit `i` is set in a little-endian bitmap.
fn bit(bits: &[u8], i: u64) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b >> (i % 8) & 1 == 1)
}

type R = EndianArcSlice<LittleEndian>;

/// Where a variable lives, as DWARF says.
#[derive(Clone)]
enum VarLoc {
    /// One expression for the whole function.
    Expr(gimli::Expression<R>),
    /// A location list.
    List(gimli::LocationListsOffset<usize>),
}

/// A local variable or parameter of a function.
#[derive(Clone)]
struct VarDesc {
    name: String,
    size: u64,
    loc: VarLoc,
    /// The variable's type as a global .debug_info offset.
    ty: Option<TypeRef>,
}

/// The variables (name and type) DWARF lists for functions, from the executable's bytes,
/// indexed on first use.
pub struct FunctionVars<'a> {
    exe: &'a [u8],
    index: std::cell::RefCell<Option<Option<VarIndex>>>,
}

impl<'a> FunctionVars<'a> {
    /// Variables of the functions of the executable whose bytes these are.
    pub fn new(exe: &'a [u8]) -> FunctionVars<'a> {
        FunctionVars {
            exe,
            index: std::cell::RefCell::new(None),
        }
    }

    /// The variables and parameters of the function entered at `entry` (link-time), with their
    /// types; empty without DWARF.
    pub fn of(&self, entry: u64) -> Vec<(String, Option<TypeRef>)> {
        let mut index = self.index.borrow_mut();
        let Some(ix) = index.get_or_insert_with(|| VarIndex::load(self.exe)) else {
            return Vec::new();
        };
        ix.function_vars(entry)
            .map(|v| v.1.iter().map(|d| (d.name.clone(), d.ty)).collect())
            .unwrap_or_default()
    }
}

/// Local variables of the functions on stacks, from the executable's DWARF, built lazily.
struct VarIndex {
    dwarf: gimli::Dwarf<R>,
    units: Vec<gimli::Unit<R>>,
    unit_starts: Vec<usize>,
    /// Compile unit pc ranges (link-time): (begin, end, unit).
    cu_ranges: Vec<(u64, u64, usize)>,
    /// Per unit: subprogram low_pc → DIE offset.
    subprograms: HashMap<usize, HashMap<u64, gimli::UnitOffset<usize>>>,
    /// Function entry (link-time) → its variables and its unit.
    vars: HashMap<u64, Arc<(usize, Vec<VarDesc>)>>,
}

impl VarIndex {
    /// Loads the debug sections of the executable; `None` when it has no usable DWARF.
    fn load(data: &[u8]) -> Option<VarIndex> {
        let obj = object::File::parse(data).ok()?;
        obj.section_by_name(".debug_info")?;
        let load = |id: gimli::SectionId| -> Result<R, gimli::Error> {
            let bytes: Arc<[u8]> = match obj.section_by_name(id.name()) {
                Some(s) => match s.uncompressed_data() {
                    Ok(b) => Arc::from(b),
                    Err(_) => Arc::from(Vec::new()),
                },
                None => Arc::from(Vec::new()),
            };
            Ok(EndianArcSlice::new(bytes, LittleEndian))
        };
        let dwarf = gimli::Dwarf::load(load).ok()?;
        let mut units = Vec::new();
        let mut unit_starts = Vec::new();
        let mut cu_ranges = Vec::new();
        let mut headers = dwarf.units();
        while let Ok(Some(h)) = headers.next() {
            let start = h.offset().0;
            let Ok(unit) = dwarf.unit(h) else {
                continue;
            };
            let ui = units.len();
            if let Ok(mut ranges) = dwarf.unit_ranges(&unit) {
                while let Ok(Some(r)) = ranges.next() {
                    if r.end > r.begin {
                        cu_ranges.push((r.begin, r.end, ui));
                    }
                }
            }
            unit_starts.push(start);
            units.push(unit);
        }
        cu_ranges.sort_unstable();
        Some(VarIndex {
            dwarf,
            units,
            unit_starts,
            cu_ranges,
            subprograms: HashMap::new(),
            vars: HashMap::new(),
        })
    }

    /// Variable ranges (start, end, name) in the frame of the function entered at `entry`,
    /// at `pc` (both link-time), for a frame whose CFA is `cfa`.
    fn frame_vars(&mut self, entry: u64, pc: u64, cfa: u64) -> Vec<FrameVar> {
        let Some(descs) = self.function_vars(entry) else {
            return Vec::new();
        };
        let (ui, descs) = (&descs.0, &descs.1);
        let mut out = Vec::new();
        for d in descs {
            let Some(expr) = self.expression_at(*ui, &d.loc, pc) else {
                continue;
            };
            let pieces = memory_pieces(&self.units[*ui], expr, d.size);
            let whole = pieces.len() == 1 && pieces[0].1 == d.size;
            for (off, size) in pieces {
                let start = cfa.wrapping_add_signed(off);
                if size > 0 {
                    out.push((
                        start,
                        start.saturating_add(size),
                        d.name.clone(),
                        d.ty.filter(|_| whole),
                    ));
                }
            }
        }
        out
    }

    /// The location expression of a variable in force at `pc`.
    fn expression_at(&self, ui: usize, loc: &VarLoc, pc: u64) -> Option<gimli::Expression<R>> {
        match loc {
            VarLoc::Expr(e) => Some(e.clone()),
            VarLoc::List(off) => {
                let mut it = self.dwarf.locations(&self.units[ui], *off).ok()?;
                while let Ok(Some(e)) = it.next() {
                    if pc >= e.range.begin && pc < e.range.end {
                        return Some(e.data);
                    }
                }
                None
            }
        }
    }

    /// The variables of the function entered at `entry` (link-time), cached.
    fn function_vars(&mut self, entry: u64) -> Option<Arc<(usize, Vec<VarDesc>)>> {
        if let Some(v) = self.vars.get(&entry) {
            return Some(v.clone());
        }
        let v = Arc::new(self.collect_vars(entry).unwrap_or_default());
        self.vars.insert(entry, v.clone());
        Some(v)
    }

    fn collect_vars(&mut self, entry: u64) -> Option<(usize, Vec<VarDesc>)> {
        let i = self.cu_ranges.partition_point(|r| r.0 <= entry);
        let ui = self.cu_ranges[..i]
            .iter()
            .rev()
            .find(|r| entry < r.1)
            .map(|r| r.2)?;
        if !self.subprograms.contains_key(&ui) {
            let map = self.index_subprograms(ui).unwrap_or_default();
            self.subprograms.insert(ui, map);
        }
        let off = *self.subprograms.get(&ui)?.get(&entry)?;
        let unit = &self.units[ui];
        let mut cursor = unit.entries_at_offset(off).ok()?;
        let sub = cursor.next_dfs().ok()??;
        let depth = sub.depth();
        let mut out = Vec::new();
        while let Ok(Some(e)) = cursor.next_dfs() {
            if e.depth() <= depth {
                break;
            }
            if e.tag() != gimli::DW_TAG_variable && e.tag() != gimli::DW_TAG_formal_parameter {
                continue;
            }
            let loc = match e.attr_value(gimli::DW_AT_location) {
                Some(AttributeValue::Exprloc(x)) => VarLoc::Expr(x),
                Some(v) => match self.dwarf.attr_locations_offset(unit, v) {
                    Ok(Some(o)) => VarLoc::List(o),
                    _ => continue,
                },
                None => continue,
            };
            let mut name = e.attr_value(gimli::DW_AT_name);
            let mut ty = e.attr_value(gimli::DW_AT_type);
            if name.is_none() || ty.is_none() {
                if let Some(AttributeValue::UnitRef(o)) = e.attr_value(gimli::DW_AT_abstract_origin)
                {
                    if let Ok(origin) = unit.entry(o) {
                        name = name.or_else(|| origin.attr_value(gimli::DW_AT_name));
                        ty = ty.or_else(|| origin.attr_value(gimli::DW_AT_type));
                    }
                }
            }
            let Some(name) = name
                .and_then(|n| self.dwarf.attr_string(unit, n).ok())
                .and_then(|s| s.to_string_lossy().ok().map(|s| s.into_owned()))
            else {
                continue;
            };
            let size = ty.clone().map(|t| self.type_size(ui, t)).unwrap_or(0);
            let start = self.unit_starts[ui];
            let ty = match ty {
                Some(AttributeValue::UnitRef(o)) => Some(TypeRef(start + o.0)),
                Some(AttributeValue::DebugInfoRef(o)) => Some(TypeRef(o.0)),
                _ => None,
            };
            out.push(VarDesc {
                name,
                size,
                loc,
                ty,
            });
        }
        Some((ui, out))
    }

    /// Top-level subprograms of a unit by low_pc.
    fn index_subprograms(&self, ui: usize) -> Option<HashMap<u64, gimli::UnitOffset<usize>>> {
        let unit = &self.units[ui];
        let mut map = HashMap::new();
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
        Some(map)
    }

    /// Byte size of a type, following typedefs; 0 when unknown.
    fn type_size(&self, ui: usize, mut ty: AttributeValue<R>) -> u64 {
        let mut ui = ui;
        for _ in 0..16 {
            let (u, off) = match ty {
                AttributeValue::UnitRef(o) => (ui, o),
                AttributeValue::DebugInfoRef(o) => {
                    let u = self
                        .unit_starts
                        .partition_point(|&s| s <= o.0)
                        .saturating_sub(1);
                    let Some(&start) = self.unit_starts.get(u) else {
                        return 0;
                    };
                    (u, gimli::UnitOffset(o.0 - start))
                }
                _ => return 0,
            };
            let Ok(e) = self.units[u].entry(off) else {
                return 0;
            };
            // Go's pointer types carry no DW_AT_byte_size.
            if matches!(
                e.tag(),
                gimli::DW_TAG_pointer_type | gimli::DW_TAG_subroutine_type
            ) {
                return PTR;
            }
            if let Some(s) = e
                .attr_value(gimli::DW_AT_byte_size)
                .and_then(|v| v.udata_value())
            {
                return s;
            }
            match e.attr_value(gimli::DW_AT_type) {
                Some(next) => {
                    ty = next;
                    ui = u;
                }
                None => return 0,
            }
        }
        0
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
