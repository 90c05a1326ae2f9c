//! The runtime's own memory statistics, read from `gcController`, `memstats` and `mheap_`.

use serde::Serialize;

use super::{heap_stats_ptr_scalar_field, Runtime, RuntimeError};
use crate::dwarf::TypeKind;

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

/// The runtime's memory classes as `runtime.ReadMemStats` computes them (`readmemstats_m` in
/// mstats.go, the same in Go 1.21–1.27 but for `inPtrScalarBits`, which 1.25 dropped), from
/// `gcController`, `memstats`, its consistent heap statistics and `mheap_`'s fixed allocators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryClasses {
    /// All memory the runtime obtained from the OS (MemStats.Sys).
    pub sys_bytes: u64,
    /// Heap memory mapped (HeapSys = HeapInuse + HeapIdle).
    pub heap_sys_bytes: u64,
    /// Bytes in in-use heap spans (HeapInuse).
    pub heap_inuse_bytes: u64,
    /// Bytes in idle heap spans, released or not (HeapIdle).
    pub heap_idle_bytes: u64,
    /// Idle heap bytes returned to the OS (HeapReleased).
    pub heap_released_bytes: u64,
    /// Bytes in stack spans (StackInuse).
    pub stack_inuse_bytes: u64,
    /// Stack memory: stack spans plus OS thread stacks (StackSys).
    pub stack_sys_bytes: u64,
    /// Bytes of allocated `mspan` records (MSpanInuse).
    pub mspan_inuse_bytes: u64,
    /// Memory obtained for `mspan` records (MSpanSys).
    pub mspan_sys_bytes: u64,
    /// Bytes of allocated `mcache` records (MCacheInuse).
    pub mcache_inuse_bytes: u64,
    /// Memory obtained for `mcache` records (MCacheSys).
    pub mcache_sys_bytes: u64,
    /// Profiling bucket hash tables (BuckHashSys).
    pub buck_hash_sys_bytes: u64,
    /// Garbage collector metadata (GCSys).
    pub gc_sys_bytes: u64,
    /// Other off-heap runtime allocations (OtherSys).
    pub other_sys_bytes: u64,
    /// The heap size the next GC aims for (NextGC).
    pub next_gc_bytes: u64,
}

/// `heapStatsDelta` fields readmemstats_m sums over the ring of `memstats.heapStats`.
struct ConsistentStats {
    in_stacks: u64,
    in_work_bufs: u64,
    in_ptr_scalar_bits: u64,
}

impl Runtime<'_> {
    /// The memory classes as `runtime.ReadMemStats` would have reported them at the crash.
    pub fn memory_classes(&self) -> Result<MemoryClasses, RuntimeError> {
        let gcc = self.global("runtime.gcController")?;
        let ms = self.global("runtime.memstats")?;
        let mheap = self.global("runtime.mheap_")?;
        let (ctl, mst, mh) = (
            "runtime.gcControllerState",
            "runtime.mstats",
            "runtime.mheap",
        );
        let heap_inuse = self.field_uint(gcc, ctl, "heapInUse")?;
        let heap_free = self.field_uint(gcc, ctl, "heapFree")?;
        let heap_released = self.field_uint(gcc, ctl, "heapReleased")?;
        let stacks_sys = self.field_uint(ms, mst, "stacks_sys")?;
        let mspan_sys = self.field_uint(ms, mst, "mspan_sys")?;
        let mcache_sys = self.field_uint(ms, mst, "mcache_sys")?;
        let buck_hash_sys = self.field_uint(ms, mst, "buckhash_sys")?;
        let gc_misc_sys = self.field_uint(ms, mst, "gcMiscSys")?;
        let other_sys = self.field_uint(ms, mst, "other_sys")?;
        let cons = self.consistent_stats(ms)?;
        // Sums wrap as the runtime's do; damaged values then give nonsense, not a crash.
        let sum = |xs: &[u64]| xs.iter().fold(0u64, |a, &x| a.wrapping_add(x));
        let gc_work = sum(&[cons.in_work_bufs, cons.in_ptr_scalar_bits]);
        let heap_sys = sum(&[heap_inuse, heap_free, heap_released]);
        let sys = sum(&[
            heap_sys,
            stacks_sys,
            mspan_sys,
            mcache_sys,
            buck_hash_sys,
            gc_misc_sys,
            other_sys,
            cons.in_stacks,
            gc_work,
        ]);
        Ok(MemoryClasses {
            sys_bytes: sys,
            heap_sys_bytes: heap_sys,
            heap_inuse_bytes: heap_inuse,
            heap_idle_bytes: sum(&[heap_free, heap_released]),
            heap_released_bytes: heap_released,
            stack_inuse_bytes: cons.in_stacks,
            stack_sys_bytes: sum(&[cons.in_stacks, stacks_sys]),
            mspan_inuse_bytes: self.field_uint(mheap, mh, "spanalloc.inuse")?,
            mspan_sys_bytes: mspan_sys,
            mcache_inuse_bytes: self.field_uint(mheap, mh, "cachealloc.inuse")?,
            mcache_sys_bytes: mcache_sys,
            buck_hash_sys_bytes: buck_hash_sys,
            gc_sys_bytes: sum(&[gc_misc_sys, gc_work]),
            other_sys_bytes: other_sys,
            next_gc_bytes: self.heap_goal(gcc)?,
        })
    }

    /// `memstats.heapStats.unsafeRead`: the sum of the ring's deltas (`inPtrScalarBits` only
    /// where this runtime counts it, see `heap_stats_ptr_scalar_field`).
    fn consistent_stats(&self, ms: crate::memory::Addr) -> Result<ConsistentStats, RuntimeError> {
        let d = self.dwarf();
        let ring = d.offset("runtime.mstats", "heapStats.stats")?;
        let delta = "runtime.heapStatsDelta";
        let size = d.size_of(delta)?.max(1);
        // The ring's length from its array type (3 in every release).
        let n = (d
            .field_size("runtime.mstats", "heapStats.stats")
            .unwrap_or(3 * size)
            / size)
            .clamp(1, 16);
        let mut out = ConsistentStats {
            in_stacks: 0,
            in_work_bufs: 0,
            in_ptr_scalar_bits: 0,
        };
        let ptr_scalar = heap_stats_ptr_scalar_field(d);
        for i in 0..n {
            let at = ms.offset(ring + i * size);
            out.in_stacks = out
                .in_stacks
                .wrapping_add(self.field_uint(at, delta, "inStacks")?);
            out.in_work_bufs =
                out.in_work_bufs
                    .wrapping_add(self.field_uint(at, delta, "inWorkBufs")?);
            if let Some(f) = ptr_scalar {
                out.in_ptr_scalar_bits = out
                    .in_ptr_scalar_bits
                    .wrapping_add(self.field_uint(at, delta, f)?);
            }
        }
        Ok(out)
    }

    /// `gcControllerState.heapGoal`: the GOGC goal, or the memory limit's when that is lower,
    /// else pushed out by the sweep distance and the minimum runway (mgcpacer.go, unchanged
    /// from Go 1.21 to 1.27).
    fn heap_goal(&self, gcc: crate::memory::Addr) -> Result<u64, RuntimeError> {
        let ctl = "runtime.gcControllerState";
        let mut goal = self.field_uint(gcc, ctl, "gcPercentHeapGoal")?;
        let limit_goal = self.memory_limit_heap_goal(gcc)?;
        if limit_goal < goal {
            return Ok(limit_goal);
        }
        let sweep_dist = self.field_uint(gcc, ctl, "sweepDistMinTrigger")?;
        goal = goal.max(sweep_dist);
        let triggered = self.field_uint(gcc, ctl, "triggered")?;
        const MIN_RUNWAY: u64 = 64 << 10;
        if triggered != u64::MAX && goal < triggered.wrapping_add(MIN_RUNWAY) {
            goal = triggered.wrapping_add(MIN_RUNWAY);
        }
        Ok(goal)
    }

    /// `gcControllerState.memoryLimitHeapGoal`.
    fn memory_limit_heap_goal(&self, gcc: crate::memory::Addr) -> Result<u64, RuntimeError> {
        let ctl = "runtime.gcControllerState";
        let heap_free = self.field_uint(gcc, ctl, "heapFree")?;
        let heap_alloc = self
            .field_uint(gcc, ctl, "totalAlloc")?
            .wrapping_sub(self.field_uint(gcc, ctl, "totalFree")?);
        let mapped_ready = self.field_uint(gcc, ctl, "mappedReady")?;
        let heap_marked = self.field_uint(gcc, ctl, "heapMarked")?;
        let limit = self.field_uint(gcc, ctl, "memoryLimit")?;
        let non_heap = mapped_ready
            .wrapping_sub(heap_free)
            .wrapping_sub(heap_alloc);
        let overage = mapped_ready.saturating_sub(limit);
        if non_heap.wrapping_add(overage) >= limit {
            return Ok(heap_marked);
        }
        let d = self.dwarf();
        let percent = d
            .constant("runtime.memoryLimitHeapGoalHeadroomPercent")
            .unwrap_or(3) as u64;
        let min_headroom = d
            .constant("runtime.memoryLimitMinHeapGoalHeadroom")
            .unwrap_or(1 << 20) as u64;
        let mut goal = limit - non_heap.wrapping_add(overage);
        let headroom = (goal / 100 * percent).max(min_headroom);
        if goal < headroom || goal - headroom < headroom {
            goal = headroom;
        } else {
            goal -= headroom;
        }
        Ok(goal.max(heap_marked))
    }
}

impl Runtime<'_> {
    /// Bytes of the heap arena index's second-level arrays (`mheap_.arenas[i]`): the runtime
    /// maps them straight from the OS (`sysAllocOS`) and counts them in no memory class.
    pub fn arena_index_bytes(&self) -> Result<u64, RuntimeError> {
        let d = self.dwarf();
        let mheap = self.global("runtime.mheap_")?;
        let (off, ty) = d.field_path("runtime.mheap", "arenas")?;
        let no_field = || crate::dwarf::DwarfError::NoField {
            ty: "runtime.mheap".into(),
            field: "arenas".into(),
        };
        let (elem, count) = match d.info(ty.ok_or_else(no_field)?)?.kind {
            TypeKind::Array {
                elem: Some(e),
                count,
            } => (e, count),
            _ => return Err(no_field().into()),
        };
        let l2 = match d.info(elem)?.kind {
            TypeKind::Pointer(Some(t)) => d.byte_size(t),
            _ => return Err(no_field().into()),
        };
        let mut total = 0u64;
        // arenaL1Bits is 0 on amd64 and arm64 Linux: one entry; never read more than 64 Ki.
        for i in 0..count.min(1 << 16) {
            let p = self
                .mem()
                .ptr(mheap.offset(off + 8 * i))
                .map_err(|source| RuntimeError::Memory {
                    what: "runtime.mheap_.arenas".into(),
                    source,
                })?;
            if p.0 != 0 {
                total = total.saturating_add(l2);
            }
        }
        Ok(total)
    }
}
