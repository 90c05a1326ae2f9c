//! `coreheap info`: what the core is, gathered into one serialisable report.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{human_bytes, Envelope};
use crate::analysis::{Analysis, Reachability};
use crate::heap::{Heap, HeapTotals};
use crate::process::{BinaryCheck, Process};
use crate::runtime::{Features, MemStats, Runtime, RuntimeError};

/// The core file itself.
#[derive(Debug, Serialize)]
pub struct CoreSection {
    /// Path as given.
    pub path: String,
    /// Compression it had (`zstd`, …) or null.
    pub compression: Option<&'static str>,
    /// Size of the (decompressed) core in bytes.
    pub size_bytes: u64,
    /// Bytes missing from the end of a truncated core (0 when whole).
    pub truncated_bytes: u64,
    /// Reads that fell into the missing part of a truncated core.
    pub damaged_reads: u64,
}

/// The executable and whether it matches the core.
#[derive(Debug, Serialize)]
pub struct ExeSection {
    /// Path of the executable used.
    pub path: String,
    /// How it was found.
    pub found_by: &'static str,
    /// Its build id (Go's, else GNU's).
    pub build_id: Option<String>,
    /// The build id the core holds.
    pub core_build_id: Option<String>,
    /// Whether it is known to be the program that crashed.
    pub matches: bool,
    /// How that was decided: `build_id`, `segment_bytes`, `forced_mismatch`, `unverified`.
    pub check: &'static str,
    /// Position-independent executable.
    pub pie: bool,
    /// Load address minus link address (0 unless PIE).
    pub load_bias: u64,
}

/// The core's memory mappings.
#[derive(Debug, Serialize)]
pub struct MappingsSection {
    /// PT_LOAD segments.
    pub count: usize,
    /// Bytes of address space they cover.
    pub mapped_bytes: u64,
    /// Bytes the core holds.
    pub dumped_bytes: u64,
    /// Bytes mapped but not written into the core.
    pub not_dumped_bytes: u64,
}

/// The `info` report.
#[derive(Debug, Serialize)]
pub struct InfoReport {
    /// The core file.
    pub core: CoreSection,
    /// Release, e.g. `go1.24.11`.
    pub go_version: String,
    /// Full version string with experiments, e.g. `go1.24.11 X:noswissmap`.
    pub go_version_full: String,
    /// GOEXPERIMENT settings.
    pub experiments: Vec<String>,
    /// GOOS.
    pub goos: String,
    /// GOARCH.
    pub goarch: String,
    /// Process id.
    pub pid: Option<u32>,
    /// Command line (first 80 bytes, as the kernel keeps it).
    pub command: Option<String>,
    /// The executable.
    pub exe: ExeSection,
    /// Mappings.
    pub mappings: MappingsSection,
    /// OS threads.
    pub threads: usize,
    /// Goroutines as `runtime.NumGoroutine` counts them (live, not system).
    pub goroutines: usize,
    /// All goroutines in `allgs` that are not dead.
    pub goroutines_total: usize,
    /// Live goroutines by status.
    pub goroutine_states: BTreeMap<&'static str, usize>,
    /// Runtime memory statistics.
    pub memory: MemStats,
    /// Objects found by walking the heap's spans.
    pub heap: HeapTotals,
    /// Allocated, reachable and unreachable objects and bytes, from the object graph.
    pub reachability: Option<Reachability>,
    /// Detected runtime features.
    pub features: Features,
    /// DWARF version of the executable.
    pub dwarf_version: u16,
    /// Problems that did not stop the report.
    pub warnings: Vec<String>,
}

impl InfoReport {
    /// Gathers the report from an opened process.
    pub fn gather(p: &Process, analysis: Option<&Analysis>) -> Result<InfoReport, RuntimeError> {
        let rt = Runtime::new(p);
        let bi = &p.exe.buildinfo;
        let mut warnings = Vec::new();
        let gs = rt.goroutines()?;
        let live: Vec<_> = gs.iter().filter(|g| g.status.is_live()).collect();
        let mut states = BTreeMap::new();
        for g in &live {
            *states.entry(g.status.name()).or_insert(0) += 1;
        }
        let memory = rt.mem_stats()?;
        let heap = Heap::read(&rt)?.totals();
        if heap.skipped_spans > 0 {
            warnings.push(format!(
                "{} heap spans could not be read and were skipped",
                heap.skipped_spans
            ));
        }
        if memory.gc_in_progress {
            warnings.push(
                "a garbage collection was in progress: mark bits are not trusted for liveness"
                    .to_string(),
            );
        }
        let check = match p.check {
            BinaryCheck::BuildId => "build_id",
            BinaryCheck::SegmentBytes => "segment_bytes",
            BinaryCheck::ForcedMismatch => {
                warnings.push("the executable does not match the core (--force)".into());
                "forced_mismatch"
            }
            BinaryCheck::Unverified => {
                warnings.push(
                    "the core holds nothing to check the executable against; assuming it matches"
                        .into(),
                );
                "unverified"
            }
        };
        if p.core.truncated_bytes > 0 {
            warnings.push(format!(
                "the core is truncated: {} bytes missing; {} reads fell into the missing part",
                p.core.truncated_bytes,
                p.mem.damaged_reads()
            ));
        }
        let runtime_version = rt.build_version();
        if let Some(v) = &runtime_version {
            if v != &bi.version {
                warnings.push(format!(
                    "runtime.buildVersion in the core is {v:?} but the executable says {:?}",
                    bi.version
                ));
            }
        }
        let mapped = p.core.mapped_bytes();
        let dumped = p.core.dumped_bytes();
        Ok(InfoReport {
            core: CoreSection {
                path: p.core.path().display().to_string(),
                compression: p.core.file.compression.map(|c| c.name()),
                size_bytes: p.core.file.bytes().len() as u64,
                truncated_bytes: p.core.truncated_bytes,
                damaged_reads: p.mem.damaged_reads(),
            },
            go_version: bi.release().to_string(),
            go_version_full: bi.version.clone(),
            experiments: bi.experiments(),
            goos: bi.setting("GOOS").unwrap_or("linux").to_string(),
            goarch: p.core.arch.goarch().to_string(),
            pid: p.core.psinfo.as_ref().map(|s| s.pid),
            command: p.core.psinfo.as_ref().map(|s| s.psargs.clone()),
            exe: ExeSection {
                path: p.exe.file.path.display().to_string(),
                found_by: p.found_by.describe(),
                build_id: p.exe.build_ids().primary().map(str::to_string),
                core_build_id: p.core_ids.primary().map(str::to_string),
                matches: p.check.matches(),
                check,
                pie: p.exe.pie,
                load_bias: p.bias,
            },
            mappings: MappingsSection {
                count: p.core.segments.len(),
                mapped_bytes: mapped,
                dumped_bytes: dumped,
                not_dumped_bytes: mapped.saturating_sub(dumped),
            },
            threads: p.core.threads.len(),
            goroutines: live.iter().filter(|g| !g.system).count(),
            goroutines_total: live.len(),
            goroutine_states: states,
            memory,
            heap,
            reachability: analysis.map(Analysis::reachability),
            features: rt.features,
            dwarf_version: p.dwarf.version,
            warnings,
        })
    }

    /// The JSON document for this report.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&Envelope::new("coreheap/info/v1", self))
    }

    /// A two-column table for people.
    pub fn to_table(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let mut rows: Vec<(String, String)> = vec![
            ("core".into(), self.core.path.clone()),
            ("go version".into(), self.go_version_full.clone()),
            ("platform".into(), format!("{}/{}", self.goos, self.goarch)),
        ];
        if let Some(c) = &self.command {
            let pid = self.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            rows.push(("command".into(), format!("{c}{pid}")));
        }
        rows.push(("executable".into(), self.exe.path.clone()));
        rows.push((
            "build id".into(),
            format!(
                "{} ({}, {})",
                self.exe.build_id.as_deref().unwrap_or("none"),
                if self.exe.matches {
                    "matches the core"
                } else {
                    "NOT verified against the core"
                },
                self.exe.found_by
            ),
        ));
        if self.exe.pie {
            rows.push(("PIE load bias".into(), format!("{:#x}", self.exe.load_bias)));
        }
        rows.push((
            "mappings".into(),
            format!(
                "{} segments, {} in the core, {} not dumped",
                self.mappings.count,
                human_bytes(self.mappings.dumped_bytes),
                human_bytes(self.mappings.not_dumped_bytes)
            ),
        ));
        rows.push(("threads".into(), self.threads.to_string()));
        let states: Vec<String> = self
            .goroutine_states
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        rows.push((
            "goroutines".into(),
            format!(
                "{} user, {} in all ({})",
                self.goroutines,
                self.goroutines_total,
                states.join(", ")
            ),
        ));
        let m = &self.memory;
        rows.push(("heap in use".into(), human_bytes(m.heap_inuse_bytes)));
        rows.push((
            "heap live / marked".into(),
            format!(
                "{} / {}",
                human_bytes(m.heap_live_bytes),
                human_bytes(m.heap_marked_bytes)
            ),
        ));
        let h = &self.heap;
        rows.push((
            "heap objects".into(),
            format!(
                "{} live objects, {}; {} unswept garbage objects, {}",
                h.objects,
                human_bytes(h.bytes),
                h.garbage_objects,
                human_bytes(h.garbage_bytes)
            ),
        ));
        if let Some(r) = &self.reachability {
            rows.push((
                "reachable".into(),
                format!(
                    "{} objects, {}; unreachable {} objects, {}",
                    r.reachable_objects,
                    human_bytes(r.reachable_bytes),
                    r.unreachable_objects,
                    human_bytes(r.unreachable_bytes)
                ),
            ));
        }
        rows.push(("GC cycles".into(), m.gc_cycles.to_string()));
        rows.push((
            "GOGC".into(),
            if m.gogc < 0 {
                "off".into()
            } else {
                m.gogc.to_string()
            },
        ));
        rows.push((
            "memory limit".into(),
            if m.memory_limit_bytes == i64::MAX {
                "none".into()
            } else {
                human_bytes(m.memory_limit_bytes.max(0) as u64)
            },
        ));
        rows.push(("last GC".into(), format_unix_ns(m.last_gc_unix_ns)));
        rows.push(("GC in progress".into(), yes_no(m.gc_in_progress).into()));
        let f = &self.features;
        rows.push((
            "runtime features".into(),
            format!(
                "swiss maps: {}, allocation headers: {}, green tea GC: {}, randomized heap base: {}",
                yes_no(f.swiss_maps),
                yes_no(f.allocation_headers),
                yes_no(f.green_tea),
                yes_no(f.randomized_heap_base)
            ),
        ));
        if !self.experiments.is_empty() {
            rows.push(("GOEXPERIMENT".into(), self.experiments.join(",")));
        }
        let mut t = super::new_table(100);
        for (k, v) in rows {
            t.add_row(vec![k, v]);
        }
        t.to_string()
    }
}

/// Formats Unix nanoseconds as a UTC timestamp.
fn format_unix_ns(ns: u64) -> String {
    if ns == 0 {
        return "never".into();
    }
    let secs = ns / 1_000_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, mo, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_time_formats_as_utc() {
        assert_eq!(format_unix_ns(0), "never");
        assert_eq!(
            format_unix_ns(1_700_000_000 * 1_000_000_000),
            "2023-11-14 22:13:20 UTC"
        );
    }
}
