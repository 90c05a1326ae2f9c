//! Unwinding a goroutine's stack frame by frame, as the runtime's `unwinder` does
//! (`runtime/traceback.go`): from where the goroutine stopped (its thread's registers, the
//! registers a signal frame saved, `syscallsp` or `sched`), each frame's size from the pc-SP
//! table, up to the outermost frame.

use super::super::pclntab::{Func, Pclntab, FLAG_SP_WRITE, FLAG_TOP_FRAME};
use super::super::{Goroutine, GoroutineStatus, Runtime, RuntimeError};
use super::{
    names, Frame, Layout, Regs, ScanState, StackFrame, StackMem, StackRoots, Walker, MAX_FRAMES,
    PTR,
};
use crate::core::Arch;
use crate::dwarf::Dwarf;
use crate::memory::Addr;
use crate::reader::Bytes;

/// Where the unwinder stands: the frame being resolved and what is known of its caller.
struct Unwinder {
    f: Func,
    pc: u64,
    sp: u64,
    /// The return address when known (from a link register), else 0.
    lr: u64,
    innermost: bool,
    /// Whether the frame unwound just before (the callee) was `runtime.sigpanic`.
    callee_sigpanic: bool,
}

/// A frame's top and whether its return address could be read.
#[derive(Clone, Copy)]
struct Extent {
    /// The caller's SP.
    fp: u64,
    lr_ok: bool,
}

/// What came of stepping to the caller.
enum Step {
    /// The unwinder stands at the caller.
    Caller,
    /// The outermost frame was reached.
    Done,
    /// The caller cannot be found: a skipped frame.
    Broken,
}

impl<'a, 'p> Walker<'a, 'p> {
    /// A walker over the runtime's goroutines, with nothing found yet.
    pub(super) fn new(rt: &'a Runtime<'p>) -> Result<Walker<'a, 'p>, RuntimeError> {
        let arm64 = rt.p.core.arch == Arch::Arm64;
        Ok(Walker {
            rt,
            tab: Pclntab::new(rt)?,
            arm64,
            signal: SignalLayout::new(rt.dwarf(), arm64),
            frame_meta: Vec::new(),
            out: StackRoots::default(),
        })
    }

    /// Unwinds one goroutine and adds its frames and their pointer words to the output.
    pub(super) fn goroutine(&mut self, g: &Goroutine, l: &Layout, regs: Option<Regs>) {
        let Some(stack) = self.stack_of(g, l) else {
            self.skip_goroutine();
            return;
        };
        let mut st = ScanState::default();
        let Some(mut u) = self.start(g, l, regs, &stack, &mut st) else {
            self.skip_goroutine();
            return;
        };
        let first = self.out.frames.len();
        self.unwind(g.id, &mut u, &stack, &mut st);
        if self.out.frames.len() == first {
            self.skip_goroutine();
            return;
        }
        self.defers_and_panics(g, l, &stack, first, &mut st);
        self.scan_objects(&stack, &mut st);
        self.finish_goroutine(st);
    }

    /// The goroutine's stack bounds and bytes, when the bounds are sane.
    fn stack_of(&self, g: &Goroutine, l: &Layout) -> Option<StackMem<'a>> {
        let mem = self.rt.mem();
        let lo = mem.u64(g.g.offset(l.stack_lo)).ok()?;
        let hi = mem.u64(g.g.offset(l.stack_hi)).ok()?;
        if lo >= hi || hi - lo > 1 << 30 {
            return None;
        }
        Some(StackMem {
            lo,
            hi,
            bytes: mem.read(Addr(lo), (hi - lo) as usize).ok(),
            mem,
        })
    }

    /// Where unwinding starts: for a running goroutine, its thread's registers when the thread
    /// is on the goroutine's stack, or the registers a signal interrupted there when the thread
    /// is in a signal handler (a crash raises SIGABRT from the goroutine's stack); those mark
    /// the innermost frame for conservative scanning. Otherwise what the runtime itself uses:
    /// syscallsp/pc, then sched (for a running goroutine, gogo clears sched.sp and only
    /// systemstack/mcall set it again, so it is current when set). Goroutines in a syscall
    /// start at syscallsp as the GC's scan does: the words below it are not scanned.
    fn start(
        &self,
        g: &Goroutine,
        l: &Layout,
        regs: Option<Regs>,
        stack: &StackMem,
        st: &mut ScanState,
    ) -> Option<Unwinder> {
        let rd = |off: u64| self.rt.mem().u64(g.g.offset(off)).ok();
        let interrupted = match regs {
            Some(r) if g.status == GoroutineStatus::Running => {
                if stack.contains(r.sp) {
                    Some(r)
                } else {
                    self.signal_context(r, stack)
                }
            }
            _ => None,
        };
        let syscallsp = rd(l.syscallsp).unwrap_or(0);
        let sched_sp = rd(l.sched_sp).unwrap_or(0);
        let (mut pc, mut sp, mut lr) = match interrupted {
            Some(r) => {
                // Not necessarily at a safe point: scan the innermost frame conservatively.
                st.conservative = true;
                (r.pc, r.sp, r.lr)
            }
            None if syscallsp != 0 => (rd(l.syscallpc).unwrap_or(0), syscallsp, 0),
            None if sched_sp != 0 => {
                let sched_lr = l.sched_lr.and_then(rd).unwrap_or(0);
                (rd(l.sched_pc).unwrap_or(0), sched_sp, sched_lr)
            }
            None => return None,
        };
        if !stack.contains(sp) && sp != stack.hi {
            return None;
        }
        if pc == 0 {
            // A nil function call: start in the caller's frame.
            pc = stack.word(sp)?;
            if self.arm64 {
                lr = 0;
            } else {
                sp = sp.saturating_add(PTR);
            }
        }
        Some(Unwinder {
            f: self.tab.find(pc)?,
            pc,
            sp,
            lr,
            innermost: true,
            callee_sigpanic: false,
        })
    }

    /// Records and scans frames from `u` outwards until the outermost one, or until the walk
    /// cannot go on (counted as a skipped frame).
    fn unwind(&mut self, goid: u64, u: &mut Unwinder, stack: &StackMem, st: &mut ScanState) {
        let first = self.out.frames.len();
        loop {
            if self.out.frames.len() - first >= MAX_FRAMES {
                self.out.skipped_frames += 1;
                return;
            }
            if u.f.pcsp == 0 {
                // No frame information (external code): the runtime stops here too.
                return;
            }
            let name = self.tab.name(&u.f);
            let Some(ext) = self.extent(u, &name, stack) else {
                self.out.skipped_frames += 1;
                return;
            };
            let frame = self.frame(u, name, ext.fp, st);
            self.record(goid, &frame, u.pc, ext.fp, stack, st);
            match self.next(u, &frame, ext, stack) {
                Step::Caller => {}
                Step::Done => return,
                Step::Broken => {
                    self.out.skipped_frames += 1;
                    return;
                }
            }
        }
    }

    /// The frame's top (the caller's SP) from the pc-SP table, with the return address put in
    /// `u.lr` where the frame keeps it; `None` when the frame cannot lie on this stack.
    fn extent(&mut self, u: &mut Unwinder, name: &str, stack: &StackMem) -> Option<Extent> {
        let mut flag = u.f.flag;
        if name == names::CGOCALLBACK {
            flag &= !FLAG_SP_WRITE;
        }
        let delta = self.tab.spdelta(&u.f, u.pc)?;
        let mut fp = u.sp.checked_add_signed(i64::from(delta))?;
        if !self.arm64 {
            // The CALL pushed the return address: it belongs to this frame.
            fp = fp.saturating_add(PTR);
        }
        if fp < u.sp || fp > stack.hi {
            return None;
        }
        let mut lr_ok = true;
        if flag & FLAG_TOP_FRAME != 0 {
            u.lr = 0;
        } else if flag & FLAG_SP_WRITE != 0 && !u.innermost {
            // The GC would throw here: SP was written in a way the table does not describe.
            u.lr = 0;
            self.out.skipped_frames += 1;
        } else if self.arm64 {
            if u.innermost && u.sp < fp || u.lr == 0 {
                match stack.word(u.sp) {
                    Some(v) => u.lr = v,
                    None => lr_ok = false,
                }
            }
        } else if u.lr == 0 {
            match stack.word(fp.wrapping_sub(PTR)) {
                Some(v) => u.lr = v,
                None => lr_ok = false,
            }
        }
        Some(Extent { fp, lr_ok })
    }

    /// The frame `u` stands at, with the pointers its stack maps are relative to.
    fn frame(&self, u: &Unwinder, name: String, fp: u64, st: &ScanState) -> Frame {
        let f = u.f;
        let mut varp = fp;
        if !self.arm64 {
            varp = varp.wrapping_sub(PTR);
        }
        // The saved frame pointer sits just below varp when the frame has room for it.
        if varp > u.sp {
            varp -= PTR;
        }
        let argp = fp.saturating_add(if self.arm64 { PTR } else { 0 });
        // Below sigpanic the frame resumes at its deferreturn call, if it has one.
        let continpc = match (u.callee_sigpanic, f.deferreturn) {
            (false, _) => u.pc,
            (true, 0) => 0,
            (true, d) => f.entry.wrapping_add(u64::from(d) + 1),
        };
        // A return address points after the call: look it up one byte back.
        let lookup_pc = if u.pc == f.entry || (u.innermost && st.conservative) {
            u.pc
        } else {
            u.pc.wrapping_sub(1)
        };
        Frame {
            f,
            name,
            sp: u.sp,
            varp,
            argp,
            continpc,
            lookup_pc,
        }
    }

    /// Adds the frame to the output and scans it.
    fn record(
        &mut self,
        goid: u64,
        frame: &Frame,
        pc: u64,
        fp: u64,
        stack: &StackMem,
        st: &mut ScanState,
    ) {
        let idx = self.out.frames.len() as u32;
        self.frame_meta.push((frame.f.entry, frame.lookup_pc));
        self.out.frames.push(StackFrame {
            goid,
            func: frame.name.clone(),
            pc,
            sp: frame.sp,
            fp,
        });
        self.scan_frame(frame, idx, stack, st);
    }

    /// Moves `u` to the caller of `frame` (`unwinder.next`).
    fn next(&self, u: &mut Unwinder, frame: &Frame, ext: Extent, stack: &StackMem) -> Step {
        if !ext.lr_ok {
            return Step::Broken;
        }
        if u.lr == 0 {
            return Step::Done;
        }
        let Some(caller) = self.tab.find(u.lr) else {
            return Step::Broken;
        };
        if u.pc == u.lr && u.sp == ext.fp {
            return Step::Broken;
        }
        let injected = matches!(
            frame.name.as_str(),
            names::SIGPANIC | names::ASYNC_PREEMPT | names::DEBUG_CALL
        );
        *u = Unwinder {
            f: caller,
            pc: u.lr,
            sp: ext.fp,
            lr: 0,
            innermost: false,
            callee_sigpanic: frame.name == names::SIGPANIC,
        };
        if self.arm64 && injected {
            // sighandler saved LR on the stack before faking the call.
            let Some(x) = stack.word(u.sp) else {
                return Step::Broken;
            };
            u.sp = u.sp.saturating_add(16);
            if self.tab.spdelta(&u.f, u.pc) == Some(0) {
                u.lr = x;
            }
        }
        Step::Caller
    }

    /// The registers a signal interrupted on this goroutine's stack, when the thread `t` is in
    /// a signal handler: the kernel's signal frame lies on the M's signal stack between the
    /// thread's SP and the stack's top, its `ucontext` recognised by `uc_stack`, which describes
    /// the signal stack itself (`sigaltstack` as the runtime set it up). Frames below the
    /// thread's SP are stale and not looked at.
    fn signal_context(&self, t: Regs, stack: &StackMem) -> Option<Regs> {
        let rt = self.rt;
        let gsignal = rt.field_ptr(t.m, "runtime.m", "gsignal").ok()?;
        let lo = rt.field_uint(gsignal, "runtime.g", "stack.lo").ok()?;
        let hi = rt.field_uint(gsignal, "runtime.g", "stack.hi").ok()?;
        if lo >= hi || hi - lo > 1 << 24 || t.sp < lo || t.sp >= hi {
            return None;
        }
        let live = (t.sp - lo) & !7;
        let bytes = rt.mem().read(Addr(lo), (hi - lo) as usize).ok()?;
        let word = |o: u64| Bytes(&bytes).u64(usize::try_from(o).ok()?);
        let l = &self.signal;
        // Offsets in the ucontext of uc_stack.ss_sp, and from it to uc_stack.ss_size.
        let ss_sp = l.uc_stack + l.ss_sp;
        let to_size = l.ss_size.saturating_sub(l.ss_sp);
        // The outermost signal frame sits nearest the top of the signal stack.
        let n = bytes.len() as u64 / PTR;
        for k in (live / PTR + ss_sp / PTR..n.saturating_sub(to_size / PTR)).rev() {
            let at = k * PTR;
            if word(at) != Some(lo) || word(at + to_size) != Some(hi - lo) {
                continue;
            }
            let Some(uc) = at.checked_sub(ss_sp) else {
                continue;
            };
            let (Some(pc), Some(sp)) = (word(uc + l.pc), word(uc + l.sp)) else {
                continue;
            };
            let lr = l.lr.and_then(|o| word(uc + o)).unwrap_or(0);
            if stack.contains(sp) && self.tab.find(pc).is_some() {
                return Some(Regs { pc, sp, lr, m: t.m });
            }
        }
        None
    }

    /// Counts a goroutine whose frames could not be walked.
    fn skip_goroutine(&mut self) {
        self.out.skipped_goroutines += 1;
        self.out.skipped_frames += 1;
    }
}

/// Where the kernel's signal frame (`ucontext`) keeps what the walk reads, as byte offsets.
pub(super) struct SignalLayout {
    /// `uc_stack` in the ucontext.
    uc_stack: u64,
    /// `ss_sp` in `uc_stack`.
    ss_sp: u64,
    /// `ss_size` in `uc_stack`.
    ss_size: u64,
    /// The saved pc in the ucontext.
    pc: u64,
    /// The saved sp in the ucontext.
    sp: u64,
    /// The saved link register in the ucontext (arm64).
    lr: Option<u64>,
}

/// Offsets of the Linux signal frame, for where the executable's DWARF lacks them: Go's DWARF
/// describes `runtime.stackt` (the type of `uc_stack`) but, in the Go 1.21 to 1.27 executables
/// of the samples on amd64 and arm64, neither `runtime.ucontext` nor `runtime.sigcontext` (the
/// runtime reaches them only through `sigctxt`'s `unsafe.Pointer`).
mod linux {
    /// `uc_stack` in `struct ucontext`, after `uc_flags` and `uc_link` (amd64 and arm64).
    pub const UC_STACK: u64 = 16;
    /// `ss_sp` in `stack_t`.
    pub const SS_SP: u64 = 0;
    /// `ss_size` in `stack_t`.
    pub const SS_SIZE: u64 = 16;
    /// amd64: rsp in the ucontext (`uc_mcontext` at 40, rsp its 16th register).
    pub const AMD64_SP: u64 = 160;
    /// amd64: rip in the ucontext.
    pub const AMD64_PC: u64 = 168;
    /// arm64: x30 in the ucontext (`uc_mcontext` at 176: fault_address, regs[31], sp, pc).
    pub const ARM64_LR: u64 = 424;
    /// arm64: sp in the ucontext.
    pub const ARM64_SP: u64 = 432;
    /// arm64: pc in the ucontext.
    pub const ARM64_PC: u64 = 440;
}

impl SignalLayout {
    /// The layout from the executable's DWARF where it describes the types, else from
    /// [`linux`].
    fn new(d: &Dwarf, arm64: bool) -> SignalLayout {
        let (pc, sp, lr) = Self::registers(d, arm64).unwrap_or(if arm64 {
            (linux::ARM64_PC, linux::ARM64_SP, Some(linux::ARM64_LR))
        } else {
            (linux::AMD64_PC, linux::AMD64_SP, None)
        });
        SignalLayout {
            uc_stack: d
                .offset("runtime.ucontext", "uc_stack")
                .unwrap_or(linux::UC_STACK),
            ss_sp: d.offset("runtime.stackt", "ss_sp").unwrap_or(linux::SS_SP),
            ss_size: d
                .offset("runtime.stackt", "ss_size")
                .unwrap_or(linux::SS_SIZE),
            pc,
            sp,
            lr,
        }
    }

    /// Offsets in the ucontext of the saved pc, sp and lr, from `runtime.ucontext` and
    /// `runtime.sigcontext` (the runtime's view of `uc_mcontext`) when DWARF has both.
    fn registers(d: &Dwarf, arm64: bool) -> Option<(u64, u64, Option<u64>)> {
        let mcontext = d.offset("runtime.ucontext", "uc_mcontext").ok()?;
        let at = |f: &str| Some(mcontext + d.offset("runtime.sigcontext", f).ok()?);
        if arm64 {
            // regs[30] is the link register.
            Some((at("pc")?, at("sp")?, Some(at("regs")? + 30 * PTR)))
        } else {
            Some((at("rip")?, at("rsp")?, None))
        }
    }
}
