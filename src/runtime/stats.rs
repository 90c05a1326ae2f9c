//! The runtime's own memory statistics, read from `gcController`, `memstats` and `mheap_`.

use serde::Serialize;

use super::{Runtime, RuntimeError};

/// Memory statistics as the runtime held them at the crash.
#[derive(Debug, Clone, Serialize)]
pub struct MemStats {
    /// Bytes in in-use heap spans (MemStats.HeapInuse).
    pub heap_inuse_bytes: u64,
    /// Bytes the pacer considers live (marked at the last GC plus allocated since).
    pub heap_live_bytes: u64,
    /// Bytes marked live by the last completed GC.
    pub heap_marked_bytes: u64,
    /// Completed GC cycles (MemStats.NumGC).
    pub gc_cycles: u64,
    /// GOGC percent; negative when off.
    pub gogc: i64,
    /// Soft memory limit (GOMEMLIMIT), bytes.
    pub memory_limit_bytes: i64,
    /// Unix time of the last GC in nanoseconds, 0 when none ran.
    pub last_gc_unix_ns: u64,
    /// Whether a GC was in its mark phase when the core was taken.
    pub gc_in_progress: bool,
}

impl Runtime<'_> {
    /// Reads the runtime's memory statistics.
    pub fn mem_stats(&self) -> Result<MemStats, RuntimeError> {
        let gcc = self.global("runtime.gcController")?;
        let ms = self.global("runtime.memstats")?;
        let ctl = "runtime.gcControllerState";
        let mst = "runtime.mstats";
        Ok(MemStats {
            heap_inuse_bytes: self.field_uint(gcc, ctl, "heapInUse")?,
            heap_live_bytes: self.field_uint(gcc, ctl, "heapLive")?,
            heap_marked_bytes: self.field_uint(gcc, ctl, "heapMarked")?,
            gc_cycles: self.field_uint(ms, mst, "numgc")?,
            gogc: self.field_uint(gcc, ctl, "gcPercent")? as u32 as i32 as i64,
            memory_limit_bytes: self.field_uint(gcc, ctl, "memoryLimit")? as i64,
            last_gc_unix_ns: self.field_uint(ms, mst, "last_gc_unix")?,
            gc_in_progress: self.gc_in_progress()?,
        })
    }
}
