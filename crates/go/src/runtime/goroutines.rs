//! Goroutines from `runtime.allgs`.

use serde::Serialize;

use super::{Runtime, RuntimeError};
use crate::memory::Addr;

/// A goroutine's scheduling state (`g.atomicstatus` without the scan bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoroutineStatus {
    /// Just allocated.
    Idle,
    /// On a run queue.
    Runnable,
    /// Executing.
    Running,
    /// In a system call.
    Syscall,
    /// Blocked.
    Waiting,
    /// Exited, kept for reuse.
    Dead,
    /// Copying its stack.
    Copystack,
    /// Stopped for preemption.
    Preempted,
    /// Found leaked by the goroutine leak detector (1.26+).
    Leaked,
    /// Dead, kept for cgo callbacks (1.26+).
    DeadExtra,
    /// A value coreheap does not know.
    Unknown,
}

impl GoroutineStatus {
    /// Decodes the runtime's status number.
    pub fn from_raw(raw: u32) -> GoroutineStatus {
        match raw & !0x1000 {
            0 => GoroutineStatus::Idle,
            1 => GoroutineStatus::Runnable,
            2 => GoroutineStatus::Running,
            3 => GoroutineStatus::Syscall,
            4 => GoroutineStatus::Waiting,
            6 => GoroutineStatus::Dead,
            8 => GoroutineStatus::Copystack,
            9 => GoroutineStatus::Preempted,
            10 => GoroutineStatus::Leaked,
            11 => GoroutineStatus::DeadExtra,
            _ => GoroutineStatus::Unknown,
        }
    }

    /// The lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            GoroutineStatus::Idle => "idle",
            GoroutineStatus::Runnable => "runnable",
            GoroutineStatus::Running => "running",
            GoroutineStatus::Syscall => "syscall",
            GoroutineStatus::Waiting => "waiting",
            GoroutineStatus::Dead => "dead",
            GoroutineStatus::Copystack => "copystack",
            GoroutineStatus::Preempted => "preempted",
            GoroutineStatus::Leaked => "leaked",
            GoroutineStatus::DeadExtra => "dead_extra",
            GoroutineStatus::Unknown => "unknown",
        }
    }

    /// Whether the goroutine exists as far as the program is concerned.
    pub fn is_live(self) -> bool {
        !matches!(
            self,
            GoroutineStatus::Dead | GoroutineStatus::DeadExtra | GoroutineStatus::Idle
        )
    }
}

/// One goroutine.
#[derive(Debug, Clone, Serialize)]
pub struct Goroutine {
    /// Address of its `runtime.g`.
    #[serde(skip)]
    pub g: Addr,
    /// Goroutine id.
    pub id: u64,
    /// Status.
    pub status: GoroutineStatus,
    /// The function it was started with.
    pub start_func: String,
    /// Whether the runtime counts it as a system goroutine (not in `runtime.NumGoroutine`).
    pub system: bool,
}

impl Runtime<'_> {
    /// Every goroutine in `runtime.allgs`, dead ones included, but those whose `runtime.g` lies
    /// in the missing end of a truncated core.
    pub fn goroutines(&self) -> Result<Vec<Goroutine>, RuntimeError> {
        Ok(self.goroutines_and_missing()?.0)
    }

    /// [`Runtime::goroutines`], and how many goroutines were left out because their
    /// How many entries of `runtime.allgs` (at `allgs`, its array at `array`) to read, and
    /// what damage made it fewer than the slice's length: the length must agree with the
    /// slice's capacity, with `runtime.allglen` (which the runtime keeps equal to it) and
    /// with the memory the array lies in.
    fn allgs_len(
        &self,
        allgs: Addr,
        array: Addr,
    ) -> Result<(u64, Option<String>), crate::memory::MemError> {
        let mem = self.mem();
        let len = mem.u64(allgs.offset(8))?;
        let cap = mem.u64(allgs.offset(16))?;
        let allglen = self
            .global("runtime.allglen")
            .ok()
            .and_then(|a| mem.u64(a).ok());
        let room = mem.mapped_from(array) / 8;
        let trusted = len.min(cap).min(allglen.unwrap_or(len)).min(room);
        let damage = (trusted < len).then(|| {
            format!(
                "runtime.allgs claims {len} goroutines but its capacity is {cap}, runtime.allglen {} and its array has room for {room}: the core is damaged there, and {trusted} were read",
                allglen.map_or("unreadable".to_string(), |n| n.to_string())
            )
        });
        Ok((trusted, damage))
    }

    /// What damage to the list of goroutines left out, in one line; `None` when it is whole.
    pub fn goroutine_list_damage(&self) -> Option<String> {
        let allgs = self.global("runtime.allgs").ok()?;
        let array = self.mem().ptr(allgs).ok()?;
        self.allgs_len(allgs, array).ok()?.1
    }

    /// `runtime.g` lies in the missing end of a truncated core.
    pub fn goroutines_and_missing(&self) -> Result<(Vec<Goroutine>, u64), RuntimeError> {
        let mem_err = |what: &str| {
            let what = what.to_string();
            move |source| RuntimeError::Memory { what, source }
        };
        let allgs = self.global("runtime.allgs")?;
        let ptr = self.mem().ptr(allgs).map_err(mem_err("runtime.allgs"))?;
        let (len, _) = self
            .allgs_len(allgs, ptr)
            .map_err(mem_err("runtime.allgs"))?;
        let fing_running = self
            .global("runtime.fingStatus")
            .ok()
            .and_then(|a| self.mem().u32(a).ok())
            .is_some_and(|s| s & 2 != 0);
        let has_running_cleanups = self.features.running_cleanups;
        let mut out = Vec::with_capacity(len as usize);
        let mut missing = 0;
        for i in 0..len {
            // An entry or a record that cannot be read (cut off, or damage past the list's
            // real end) is a goroutine missing, not the end of the analysis.
            let Ok(g) = self.mem().ptr(ptr.offset(8 * i)) else {
                missing += 1;
                continue;
            };
            if g.0 == 0 {
                continue;
            }
            let fields = (|| {
                Ok::<_, RuntimeError>((
                    self.field_uint(g, "runtime.g", "atomicstatus")? as u32,
                    self.field_uint(g, "runtime.g", "goid")?,
                    self.field_uint(g, "runtime.g", "startpc")?,
                ))
            })();
            let (raw, id, startpc) = match fields {
                Ok(f) => f,
                Err(RuntimeError::Memory { .. }) => {
                    missing += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let start_func = self
                .p
                .symbols
                .lookup(startpc.wrapping_sub(self.p.bias))
                .unwrap_or("?")
                .to_string();
            let running_cleanups = has_running_cleanups
                && self
                    .field_uint(g, "runtime.g", "runningCleanups")
                    .is_ok_and(|v| v != 0);
            let system = is_system(&start_func, fing_running, running_cleanups);
            out.push(Goroutine {
                g,
                id,
                status: GoroutineStatus::from_raw(raw),
                start_func,
                system,
            });
        }
        Ok((out, missing))
    }
}

/// The runtime's `isSystemGoroutine`, decided from the start function's name.
fn is_system(start: &str, fing_running: bool, running_cleanups: bool) -> bool {
    match start {
        "runtime.main" | "runtime.corostart" | "runtime.handleAsyncEvent" => false,
        "runtime.runfinq" | "runtime.runFinalizers" => !fing_running,
        "runtime.runCleanups" => !running_cleanups,
        s => s.starts_with("runtime."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_goroutines_follow_the_runtime_rule() {
        assert!(!is_system("runtime.main", false, false));
        assert!(is_system("runtime.bgsweep", false, false));
        assert!(is_system("runtime.runfinq", false, false));
        assert!(!is_system("runtime.runfinq", true, false));
        assert!(!is_system("main.worker", false, false));
    }
}
