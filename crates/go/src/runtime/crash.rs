//! Why the process died: the signal it died of (the core's notes), the signal that started the
//! crash and the panic value or fatal error message (the crashing goroutine's fields), and the
//! crashing goroutine's stack.
//!
//! The crashing goroutine is, in order: the goroutine running on the M whose thread took the
//! fatal signal (the kernel writes that thread's NT_PRSTATUS first), the goroutine an M's
//! signal handler caught the fatal signal on (`m.caughtsig`), a goroutine with a panic under
//! way (`g._panic`), a goroutine that took a signal (`g.sig`).

use serde::Serialize;

use super::{Goroutine, GoroutineStatus, Runtime, RuntimeError, RuntimeTypes, TracebackFrame};
use crate::dwarf::{go_kind, TypeKind, TypeRef};
use crate::memory::Addr;

/// Functions whose string argument `s` is a fatal error's message.
const THROW_FUNCTIONS: [(&str, &str); 2] = [("runtime.throw", "s"), ("runtime.fatal", "s")];
/// Functions on a goroutine's stack that mean the runtime is dying of a fatal error.
const FATAL_FUNCTIONS: [&str; 3] = ["runtime.throw", "runtime.fatal", "runtime.fatalthrow"];
/// The most bytes of a panic message read.
const MAX_MESSAGE: usize = 4096;

/// A signal with its name and `si_code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signal {
    /// Signal number (Linux; amd64 and arm64 share them).
    pub number: u32,
    /// `SIGSEGV`, …; null for numbers coreheap does not know.
    pub name: Option<&'static str>,
    /// `si_code`, when known.
    pub code: Option<i64>,
    /// `SEGV_MAPERR`, `SI_TKILL`, …; null when not known.
    pub code_name: Option<&'static str>,
    /// The faulting address, for SIGSEGV, SIGBUS, SIGILL and SIGFPE.
    #[serde(serialize_with = "super::hex::opt_addr")]
    pub fault_address: Option<u64>,
}

impl Signal {
    /// A signal from its number, code and address (the address kept for fault signals only).
    pub fn new(number: u32, code: i64, addr: u64) -> Signal {
        let fault = matches!(number, SIGILL | SIGBUS | SIGFPE | SIGSEGV);
        Signal {
            number,
            name: signal_name(number),
            code: Some(code),
            code_name: code_name(number, code),
            fault_address: fault.then_some(addr),
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name {
            Some(n) => write!(f, "{n}")?,
            None => write!(f, "signal {}", self.number)?,
        }
        match (self.code_name, self.code) {
            (Some(c), _) => write!(f, " ({c})")?,
            (None, Some(c)) => write!(f, " (code {c})")?,
            (None, None) => {}
        }
        if let Some(a) = self.fault_address {
            write!(f, " at {a:#x}")?;
        }
        Ok(())
    }
}

const SIGILL: u32 = 4;
const SIGBUS: u32 = 7;
const SIGFPE: u32 = 8;
const SIGSEGV: u32 = 11;
const SIGSTOP: u32 = 19;

/// The Linux name of a signal number (the generic numbering amd64 and arm64 share).
pub fn signal_name(n: u32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get((n as usize).checked_sub(1)?).copied()
}

/// The name of a `si_code`: the generic ones, and SIGSEGV's and SIGBUS's own.
pub fn code_name(signal: u32, code: i64) -> Option<&'static str> {
    Some(match (signal, code) {
        (_, 0) => "SI_USER",
        (_, 0x80) => "SI_KERNEL",
        (_, -1) => "SI_QUEUE",
        (_, -6) => "SI_TKILL",
        (SIGSEGV, 1) => "SEGV_MAPERR",
        (SIGSEGV, 2) => "SEGV_ACCERR",
        (SIGSEGV, 3) => "SEGV_BNDERR",
        (SIGSEGV, 4) => "SEGV_PKUERR",
        (SIGBUS, 1) => "BUS_ADRALN",
        (SIGBUS, 2) => "BUS_ADRERR",
        (SIGBUS, 3) => "BUS_OBJERR",
        _ => return None,
    })
}

/// How the crashing goroutine was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// It was running on the thread that took the fatal signal.
    SignalledThread,
    /// Its M's signal handler caught the fatal signal while it ran (`m.caughtsig`): with
    /// GOTRACEBACK=crash the runtime relays the signal to every thread, and the last one to
    /// handle it, not necessarily the first, dies (Go 1.21).
    CaughtSignal,
    /// It had a panic under way.
    Panicking,
    /// It had taken a signal.
    Signalled,
}

/// The goroutine that crashed and its stack.
#[derive(Debug, Clone, Serialize)]
pub struct CrashGoroutine {
    /// Goroutine id.
    pub id: u64,
    /// Status.
    pub status: GoroutineStatus,
    /// Why it waits, when it does (`chan receive`, …).
    pub wait_reason: Option<String>,
    /// How it was recognised.
    pub found_by: FoundBy,
    /// Its frames, innermost first, inlined calls included.
    pub frames: Vec<TracebackFrame>,
}

/// How the program ended, as far as the core tells.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Crash {
    /// Number of the signal the process died of (NT_SIGINFO, else the first thread's
    /// NT_PRSTATUS).
    pub signal: Option<u32>,
    /// Its name (`SIGABRT`).
    pub signal_name: Option<&'static str>,
    /// Its `si_code` (NT_SIGINFO only).
    pub signal_code: Option<i64>,
    /// The code's name (`SI_TKILL`).
    pub signal_code_name: Option<&'static str>,
    /// Number of the signal that started the crash, from the crashing goroutine's `g.sig` (a
    /// fault the runtime turned into a panic); null when the goroutine took none.
    pub origin_signal: Option<u32>,
    /// Its name (`SIGSEGV`).
    pub origin_signal_name: Option<&'static str>,
    /// Its code (`g.sigcode0`).
    pub origin_signal_code: Option<i64>,
    /// The code's name (`SEGV_MAPERR`).
    pub origin_signal_code_name: Option<&'static str>,
    /// The faulting address of a SIGSEGV, SIGBUS, SIGILL or SIGFPE: the origin signal's
    /// (`g.sigcode1`), else the fatal signal's (`si_addr`).
    #[serde(serialize_with = "super::hex::opt_addr")]
    pub fault_address: Option<u64>,
    /// The panic message as the program printed it after `panic: `.
    pub panic_message: Option<String>,
    /// The dynamic type of the panic value.
    pub panic_type: Option<String>,
    /// Whether the runtime died of a fatal error (`runtime.throw` or `runtime.fatal`).
    pub fatal_error: bool,
    /// The fatal error's message, when it could be recovered.
    pub fatal_message: Option<String>,
    /// The crashing goroutine.
    pub goroutine: Option<CrashGoroutine>,
    /// The core was taken from a running process (by `gcore` or another debugger, which
    /// stops it with SIGSTOP): nothing crashed.
    pub dumped_alive: bool,
    /// What could not be worked out.
    pub warnings: Vec<String>,
    /// The signal the process died of.
    #[serde(skip)]
    pub death: Option<Signal>,
    /// The signal that started the crash.
    #[serde(skip)]
    pub origin: Option<Signal>,
}

impl Crash {
    /// Sets the signals and their flat JSON fields.
    fn set_signals(&mut self, death: Option<Signal>, origin: Option<Signal>) {
        self.signal = death.as_ref().map(|s| s.number);
        self.signal_name = death.as_ref().and_then(|s| s.name);
        self.signal_code = death.as_ref().and_then(|s| s.code);
        self.signal_code_name = death.as_ref().and_then(|s| s.code_name);
        self.origin_signal = origin.as_ref().map(|s| s.number);
        self.origin_signal_name = origin.as_ref().and_then(|s| s.name);
        self.origin_signal_code = origin.as_ref().and_then(|s| s.code);
        self.origin_signal_code_name = origin.as_ref().and_then(|s| s.code_name);
        self.fault_address = match &origin {
            Some(o) => o.fault_address,
            None => death.as_ref().and_then(|s| s.fault_address),
        };
        self.death = death;
        self.origin = origin;
    }
}

impl Runtime<'_> {
    /// Works out how the program ended; parts that cannot be read become warnings.
    pub fn crash(&self, goroutines: &[Goroutine]) -> Crash {
        let mut c = Crash::default();
        let death = self.death_signal();
        let Some((g, found_by)) = self.crashing_goroutine(goroutines) else {
            // SIGSTOP kills no process and writes no core: a debugger stopped it to dump it.
            c.dumped_alive = death.as_ref().is_some_and(|s| s.number == SIGSTOP);
            c.set_signals(death, None);
            if c.dumped_alive {
                return c;
            }
            c.warnings
                .push("no goroutine was found crashing: no thread ran one when the signal came, none was panicking and none took a signal".into());
            return c;
        };
        c.set_signals(death, self.goroutine_signal(g));
        let tb = match self.traceback(g, &THROW_FUNCTIONS) {
            Ok(tb) => tb,
            Err(e) => {
                c.warnings
                    .push(format!("goroutine {}: stack not unwound: {e}", g.id));
                Default::default()
            }
        };
        if tb.frames.is_empty() {
            c.warnings
                .push(format!("goroutine {}: no frame could be unwound", g.id));
        }
        match self.panic_value(g) {
            Ok(Some(v)) => {
                c.panic_message = v.message;
                c.panic_type = Some(v.type_name);
            }
            Ok(None) => {}
            Err(e) => c
                .warnings
                .push(format!("goroutine {}: panic value not read: {e}", g.id)),
        }
        if c.panic_type.is_none()
            && tb
                .frames
                .iter()
                .any(|f| FATAL_FUNCTIONS.contains(&f.function.as_str()))
        {
            c.fatal_error = true;
            c.fatal_message = tb.strings.first().map(|s| s.2.clone());
        }
        c.goroutine = Some(CrashGoroutine {
            id: g.id,
            status: g.status,
            wait_reason: self.wait_reason(g),
            found_by,
            frames: tb.frames,
        });
        c
    }

    /// The signal the process died of: NT_SIGINFO, else the signal of the first thread.
    fn death_signal(&self) -> Option<Signal> {
        let core = &self.p.core;
        if let Some(si) = core.siginfo.filter(|s| s.signo != 0) {
            return Some(Signal::new(si.signo, i64::from(si.code), si.addr));
        }
        let t = core.threads.first().filter(|t| t.signal != 0)?;
        let mut s = Signal::new(u32::from(t.signal), 0, 0);
        (s.code, s.code_name, s.fault_address) = (None, None, None);
        Some(s)
    }

    /// The crashing goroutine and how it was recognised.
    fn crashing_goroutine<'g>(&self, gs: &'g [Goroutine]) -> Option<(&'g Goroutine, FoundBy)> {
        let by_addr = |a: Addr| gs.iter().find(|g| g.g == a && a.0 != 0);
        if let Some(t) = self.p.core.threads.first() {
            let curg = self
                .machines()
                .into_iter()
                .find(|&(_, _, procid)| procid == u64::from(t.tid))
                .map(|(_, curg, _)| curg);
            if let Some(g) = curg.and_then(by_addr) {
                return Some((g, FoundBy::SignalledThread));
            }
        }
        if self.features.caught_signal_goroutine {
            let caught = self.machines().into_iter().find_map(|(m, _, _)| {
                let g = self.field_ptr(m, "runtime.m", "caughtsig").ok()?;
                by_addr(g)
            });
            if let Some(g) = caught {
                return Some((g, FoundBy::CaughtSignal));
            }
        }
        let live = || gs.iter().filter(|g| g.status.is_live());
        let field = |g: &Goroutine, f: &str| self.field_uint(g.g, "runtime.g", f).unwrap_or(0);
        if let Some(g) = live().find(|g| field(g, "_panic") != 0) {
            return Some((g, FoundBy::Panicking));
        }
        live()
            .find(|g| field(g, "sig") != 0)
            .map(|g| (g, FoundBy::Signalled))
    }

    /// The signal a goroutine took (`g.sig`, `sigcode0`, `sigcode1`), when it took one.
    fn goroutine_signal(&self, g: &Goroutine) -> Option<Signal> {
        let sig = self.field_uint(g.g, "runtime.g", "sig").ok()? as u32;
        if sig == 0 {
            return None;
        }
        let code = self.field_uint(g.g, "runtime.g", "sigcode0").unwrap_or(0) as i64;
        let addr = self.field_uint(g.g, "runtime.g", "sigcode1").unwrap_or(0);
        Some(Signal::new(sig, code, addr))
    }

    /// Why a waiting goroutine waits: `runtime.waitReasonStrings[g.waitreason]`.
    fn wait_reason(&self, g: &Goroutine) -> Option<String> {
        if g.status != GoroutineStatus::Waiting {
            return None;
        }
        let reason = self.field_uint(g.g, "runtime.g", "waitreason").ok()?;
        let d = self.dwarf();
        let table = d.variable("runtime.waitReasonStrings")?;
        let (elem, count) = match d.info(table.ty?).ok()?.kind {
            TypeKind::Array {
                elem: Some(e),
                count,
            } => (e, count),
            _ => return None,
        };
        if reason >= count {
            return None;
        }
        let at = Addr(table.addr.wrapping_add(self.p.bias)).offset(d.byte_size(elem) * reason);
        let s = self.mem().go_string(at, 256).ok()?;
        (!s.is_empty()).then_some(s)
    }

    /// The value of the goroutine's innermost panic, rendered as the runtime prints it.
    fn panic_value(&self, g: &Goroutine) -> Result<Option<PanicValue>, RuntimeError> {
        let p = self.field_ptr(g.g, "runtime.g", "_panic")?;
        if p.0 == 0 {
            return Ok(None);
        }
        let d = self.dwarf();
        // `arg` is an `any`: the runtime.eface words `_type` and `data`.
        let type_off = d.offset("runtime._panic", "arg._type")?;
        let data_off = d.offset("runtime._panic", "arg.data")?;
        let read = |a: Addr| {
            self.mem().ptr(a).map_err(|source| RuntimeError::Memory {
                what: "runtime._panic.arg".into(),
                source,
            })
        };
        let typ = read(p.offset(type_off))?;
        let data = read(p.offset(data_off))?;
        if typ.0 == 0 {
            return Ok(Some(PanicValue {
                type_name: "nil".into(),
                message: Some("nil".into()),
            }));
        }
        let rtypes = RuntimeTypes::new(self);
        let dwarf_ty = rtypes
            .as_ref()
            .and_then(|r| d.type_by_runtime_offset(typ.0.checked_sub(r.base)?));
        let type_name = dwarf_ty
            .and_then(|t| d.info(t).ok().map(|i| i.name.clone()))
            .or_else(|| rtypes.and_then(|r| r.name(self.mem(), typ)))
            .unwrap_or_else(|| format!("unknown type at {typ}"));
        let message = dwarf_ty.and_then(|t| self.render_panic(t, &type_name, data));
        Ok(Some(PanicValue { type_name, message }))
    }

    /// The text the runtime prints for a panic value of type `t` whose interface data word is
    /// `data`: strings, errors holding their text in a string (first) field, bounds errors,
    /// integers and booleans.
    fn render_panic(&self, t: TypeRef, name: &str, data: Addr) -> Option<String> {
        let d = self.dwarf();
        let mem = self.mem();
        let runtime_error = |s: String| format!("runtime error: {s}");
        match name {
            "runtime.errorString" => {
                return mem.go_string(data, MAX_MESSAGE).ok().map(runtime_error)
            }
            "runtime.plainError" | "string" => return mem.go_string(data, MAX_MESSAGE).ok(),
            "runtime.boundsError" => return self.bounds_error(data).map(runtime_error),
            "runtime.errorAddressString" => {
                let off = d.offset(name, "msg").ok()?;
                return mem
                    .go_string(data.offset(off), MAX_MESSAGE)
                    .ok()
                    .map(runtime_error);
            }
            _ => {}
        }
        let info = d.info(t).ok()?;
        let (_, under) = d.resolve(t).ok()?;
        // The data word points at the value: at the struct for a pointer to one (the pointer
        // is the data word), at the stored value for anything else.
        let shape = match &under.kind {
            TypeKind::Pointer(Some(elem)) => d.resolve(*elem).ok()?.1,
            _ => under.clone(),
        };
        match (info.go_kind, &shape.kind) {
            // A named string type: the data word points at its header.
            (Some(go_kind::STRING), _) => mem.go_string(data, MAX_MESSAGE).ok(),
            (Some(k), TypeKind::Base) if go_kind::is_integer(k) || k == go_kind::BOOL => {
                let raw = mem.uint(data, under.size).ok()?;
                let text = render_scalar(k, raw, under.size);
                Some(if name.contains('.') {
                    format!("{name}({text})")
                } else {
                    text
                })
            }
            (_, TypeKind::Struct(fields)) => {
                // errors.errorString, fmt.wrapError and the like: the text is the first field.
                let first = fields.first()?;
                let (_, fty) = d.resolve(first.ty?).ok()?;
                (fty.name == "string")
                    .then(|| mem.go_string(data.offset(first.offset), MAX_MESSAGE).ok())
                    .flatten()
            }
            _ => None,
        }
    }

    /// A `runtime.boundsError` as its `Error` method words it (error.go, the same in 1.21–1.27).
    fn bounds_error(&self, data: Addr) -> Option<String> {
        let ty = "runtime.boundsError";
        let x = self.field_uint(data, ty, "x").ok()? as i64;
        let y = self.field_uint(data, ty, "y").ok()? as i64;
        let signed = self.field_uint(data, ty, "signed").ok()? != 0;
        let code = self.field_uint(data, ty, "code").ok()? as usize;
        Some(bounds_message(x, y, signed, code))
    }
}

/// A panic value: its dynamic type and, when it could be rendered, its text.
struct PanicValue {
    type_name: String,
    message: Option<String>,
}

/// A boolean or integer as `print` writes it.
fn render_scalar(kind: u8, raw: u64, size: u64) -> String {
    if kind == go_kind::BOOL {
        return (raw != 0).to_string();
    }
    let signed = go_kind::SIGNED.contains(&kind);
    if signed {
        let shift = 64 - 8 * size.clamp(1, 8);
        (((raw << shift) as i64) >> shift).to_string()
    } else {
        raw.to_string()
    }
}

/// `boundsError.Error` without its `runtime error: ` prefix.
fn bounds_message(x: i64, y: i64, signed: bool, code: usize) -> String {
    const FMT: [&str; 9] = [
        "index out of range [%x] with length %y",
        "slice bounds out of range [:%x] with length %y",
        "slice bounds out of range [:%x] with capacity %y",
        "slice bounds out of range [%x:%y]",
        "slice bounds out of range [::%x] with length %y",
        "slice bounds out of range [::%x] with capacity %y",
        "slice bounds out of range [:%x:%y]",
        "slice bounds out of range [%x:%y:]",
        "cannot convert slice with length %y to array or pointer to array with length %x",
    ];
    const NEG_FMT: [&str; 8] = [
        "index out of range [%x]",
        "slice bounds out of range [:%x]",
        "slice bounds out of range [:%x]",
        "slice bounds out of range [%x:]",
        "slice bounds out of range [::%x]",
        "slice bounds out of range [::%x]",
        "slice bounds out of range [:%x:]",
        "slice bounds out of range [%x::]",
    ];
    let negative = signed && x < 0;
    let fmt = if negative {
        NEG_FMT.get(code)
    } else {
        FMT.get(code)
    };
    let Some(fmt) = fmt else {
        return format!("bounds error (code {code}, {x}, {y})");
    };
    let xs = if signed {
        x.to_string()
    } else {
        (x as u64).to_string()
    };
    fmt.replace("%x", &xs).replace("%y", &y.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_codes_have_linux_names() {
        assert_eq!(signal_name(11), Some("SIGSEGV"));
        assert_eq!(signal_name(6), Some("SIGABRT"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(64), None);
        assert_eq!(code_name(11, 1), Some("SEGV_MAPERR"));
        assert_eq!(code_name(6, -6), Some("SI_TKILL"));
        let s = Signal::new(11, 1, 0);
        assert_eq!(s.to_string(), "SIGSEGV (SEGV_MAPERR) at 0x0");
        assert_eq!(Signal::new(6, -6, 5).fault_address, None);
    }

    #[test]
    fn bounds_errors_read_like_the_runtimes() {
        assert_eq!(
            bounds_message(5, 3, true, 0),
            "index out of range [5] with length 3"
        );
        assert_eq!(bounds_message(-1, 3, true, 0), "index out of range [-1]");
        assert_eq!(
            bounds_message(4, 2, false, 3),
            "slice bounds out of range [4:2]"
        );
    }

    #[test]
    fn scalars_print_as_go_prints_them() {
        assert_eq!(render_scalar(2, u64::MAX, 8), "-1");
        assert_eq!(render_scalar(3, 0xff, 1), "-1");
        assert_eq!(render_scalar(8, 0xff, 1), "255");
        assert_eq!(render_scalar(1, 1, 1), "true");
    }
}
