//! The Go runtime's state in the core: globals, goroutines and memory statistics.

pub mod code;
mod crash;
mod features;
pub mod gcprog;
mod goroutines;
pub mod maplayout;
mod pclntab;
mod rtype;
mod stack;
mod stats;

use thiserror::Error;

pub use crash::{Crash, CrashGoroutine, FoundBy, Signal};
pub use features::{arena_bitmap_field, heap_stats_ptr_scalar_field, Features};
pub use goroutines::{Goroutine, GoroutineStatus};
pub use rtype::RuntimeTypes;
pub use stack::{
    decode_pcvalue, StackFrame, StackRoots, StackSlot, StackVar, Traceback, TracebackFrame,
    CONSERVATIVE,
};
pub use stats::{MemStats, MemoryClasses};

use crate::dwarf::{Dwarf, DwarfError};
use crate::memory::{Addr, MemError, Memory};
use crate::process::Process;

/// Serialises addresses as `0x…` strings, as every JSON document writes them.
pub(crate) mod hex {
    use serde::Serializer;

    /// An address.
    pub fn addr<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:#x}"))
    }

    /// An address or null.
    pub fn opt_addr<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => addr(v, s),
            None => s.serialize_none(),
        }
    }
}

/// Errors reading runtime state.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// A layout was missing from DWARF.
    #[error(transparent)]
    Dwarf(#[from] DwarfError),
    /// Memory the runtime model needs was not in the core.
    #[error("reading {what}: {source}")]
    Memory {
        /// What was being read.
        what: String,
        /// The failed read.
        source: MemError,
    },
    /// Memory the runtime model needs lies in the missing end of a truncated core.
    #[error("{what} lies in the cut-off end of the core (address {addr}; the file holds {have} of the {want} bytes its headers call for), and nothing can be reported without it: take the core again without a size limit (ulimit -c, systemd's ProcessSizeMax and ExternalSizeMax)")]
    Truncated {
        /// What was being read.
        what: String,
        /// The address that is missing.
        addr: Addr,
        /// Bytes the core file holds.
        have: u64,
        /// Bytes its program headers call for.
        want: u64,
    },
    /// Not one in-use heap span could be read: there is nothing to report.
    #[error("no in-use heap span could be read from runtime.mheap_.allspans ({listed} entries listed, {unreadable} unreadable): the core is damaged there, and nothing can be reported without the heap; take the core again, or check that it belongs to this executable")]
    NoHeap {
        /// Entries the span list claims.
        listed: u64,
        /// Entries or records that could not be read.
        unreadable: u64,
    },
    /// The runtime's DWARF gives a constant a value this tool was not written for.
    #[error("the program's runtime has {name} = {found}, but coreheap knows only runtimes with {expected}: this Go build is not supported")]
    UnsupportedConstant {
        /// The runtime constant (`runtime.pageSize`).
        name: &'static str,
        /// Its value in the program's DWARF.
        found: i64,
        /// The value coreheap's heap model uses.
        expected: u64,
    },
}

impl RuntimeError {
    /// The error, with what a truncated core lacks spelled out when that is its cause.
    pub fn in_core(self, core: &crate::core::CoreFile) -> RuntimeError {
        match self {
            RuntimeError::Memory {
                what,
                source: MemError::Truncated(addr),
            } => {
                let have = core.file.bytes().len() as u64;
                RuntimeError::Truncated {
                    what,
                    addr,
                    have,
                    want: have + core.truncated_bytes,
                }
            }
            other => other,
        }
    }
}

/// A typed view of the runtime: layouts from DWARF, values from the core.
pub struct Runtime<'p> {
    /// The process.
    pub p: &'p Process,
    /// Detected features.
    pub features: Features,
}

impl<'p> Runtime<'p> {
    /// Makes the view and detects the runtime's features.
    pub fn new(p: &'p Process) -> Runtime<'p> {
        Runtime {
            p,
            features: Features::detect(&p.dwarf, &p.exe.buildinfo),
        }
    }

    /// The DWARF.
    pub fn dwarf(&self) -> &Dwarf {
        &self.p.dwarf
    }

    /// The memory.
    pub fn mem(&self) -> &Memory {
        &self.p.mem
    }

    /// Runtime address of a global variable, from DWARF or else the symbol table.
    pub fn global(&self, name: &str) -> Result<Addr, RuntimeError> {
        let link = self
            .p
            .dwarf
            .variable(name)
            .map(|v| v.addr)
            .or_else(|| self.p.symbols.address(name))
            .ok_or_else(|| DwarfError::NoVariable(name.to_string()))?;
        Ok(Addr(link.wrapping_add(self.p.bias)))
    }

    /// Reads an unsigned field of a struct at `base`, sized from DWARF.
    pub fn field_uint(&self, base: Addr, ty: &str, path: &str) -> Result<u64, RuntimeError> {
        let (off, _) = self.p.dwarf.field_path(ty, path)?;
        let size = self.p.dwarf.field_size(ty, path).unwrap_or(8);
        // Atomic wrappers are structs whose value sits at offset 0; read the wrapper's size.
        let size = match size {
            1 | 2 | 4 | 8 => size,
            _ => 8,
        };
        self.p
            .mem
            .uint(base.offset(off), size)
            .map_err(|source| RuntimeError::Memory {
                what: format!("{ty}.{path} at {base}"),
                source,
            })
    }

    /// Reads a pointer field of a struct at `base`.
    pub fn field_ptr(&self, base: Addr, ty: &str, path: &str) -> Result<Addr, RuntimeError> {
        let off = self.p.dwarf.offset(ty, path)?;
        self.p
            .mem
            .ptr(base.offset(off))
            .map_err(|source| RuntimeError::Memory {
                what: format!("{ty}.{path} at {base}"),
                source,
            })
    }

    /// The runtime's version string as the process held it (`runtime.buildVersion`).
    pub fn build_version(&self) -> Option<String> {
        let a = self.global("runtime.buildVersion").ok()?;
        self.p.mem.go_string(a, 256).ok()
    }

    /// Whether a garbage collection was under way when the core was taken.
    pub fn gc_in_progress(&self) -> Result<bool, RuntimeError> {
        let a = self.global("runtime.gcphase")?;
        let phase = self.p.mem.u32(a).map_err(|source| RuntimeError::Memory {
            what: "runtime.gcphase".into(),
            source,
        })?;
        Ok(phase != 0)
    }
}
