//! `coreheap info`: what the core is, gathered into one serialisable report.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{human_bytes, Envelope};
use crate::analysis::{Analysis, Reachability};
use crate::core::CoreFile;
use crate::heap::{Heap, HeapTotals};
use crate::process::{BinaryCheck, Process};
use crate::runtime::{Crash, Features, MemStats, MemoryClasses, Runtime, RuntimeError};

/// Frames of the crashing goroutine shown in table and markdown output (JSON has them all).
const TABLE_FRAMES: usize = 10;

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

/// The core's mappings as the runtime's memory classes account for them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemoryAccount {
    /// Bytes of address space the core's mappings cover.
    pub mapped_bytes: u64,
    /// Of those, mappings with no access (reserved address space, guard pages).
    pub no_access_bytes: u64,
    /// Of those, accessible mappings of files (the executable, shared libraries).
    pub file_bytes: u64,
    /// What the runtime obtained from the OS (MemStats.Sys).
    pub sys_bytes: u64,
    /// The heap arena index (`mheap_.arenas`' second level), which the runtime maps outside
    /// every memory class (mostly untouched pages of a 32 MiB array on amd64 and arm64).
    pub arena_index_bytes: u64,
    /// Sys as a share of the mapped bytes, percent.
    pub sys_percent_of_mapped: f64,
    /// Accessible anonymous memory neither Sys nor the arena index accounts for (the main
    /// thread's stack, the kernel's vdso, C allocations); negative when they count more than
    /// the core maps.
    pub not_in_sys_bytes: i64,
}

/// The runtime's memory classes and how they cover the core's mappings.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryClassesSection {
    /// The classes, as `runtime.ReadMemStats` would report them.
    #[serde(flatten)]
    pub classes: MemoryClasses,
    /// GOMEMLIMIT in bytes; null when there is none.
    pub memory_limit_bytes: Option<u64>,
    /// How much of the core's mappings Sys accounts for.
    pub account: MemoryAccount,
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
    /// The runtime's memory classes (MemStats' Sys and its parts); null when unreadable.
    pub memory_classes: Option<MemoryClassesSection>,
    /// How the program ended: signals, panic or fatal error, the crashing goroutine.
    pub crash: Crash,
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
    /// A panic message of the program's own was redacted.
    #[serde(skip)]
    pub redacted: bool,
}

impl InfoReport {
    /// Gathers the report from an opened process.
    // One function: a straight list of the report's fields, each read once from the runtime
    // and filled in; nothing in it loops over the heap.
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
        let memory_classes = match rt.memory_classes() {
            Ok(classes) => Some(MemoryClassesSection {
                classes,
                memory_limit_bytes: u64::try_from(memory.memory_limit_bytes)
                    .ok()
                    .filter(|&l| l != i64::MAX as u64),
                account: account(
                    &p.core,
                    classes.sys_bytes,
                    rt.arena_index_bytes().unwrap_or(0),
                ),
            }),
            Err(e) => {
                warnings.push(format!("memory classes not read: {e}"));
                None
            }
        };
        let crash = rt.crash(&gs);
        warnings.extend(crash.warnings.iter().map(|w| format!("crash: {w}")));
        let heap = Heap::read(&rt)?.totals();
        // The analysis says the same of spans and truncation, in its own words.
        if let Some(a) = analysis {
            warnings.extend(a.warnings.iter().cloned());
        }
        if heap.skipped_spans > 0 && analysis.is_none() {
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
        if p.core.truncated_bytes > 0 && analysis.is_none() {
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
            memory_classes,
            crash,
            heap,
            reachability: analysis.map(Analysis::reachability),
            features: rt.features,
            dwarf_version: p.dwarf.version,
            warnings,
            redacted: false,
        })
    }

    /// The JSON document for this report.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&Envelope::new("coreheap/info/v1", self))
    }

    /// A two-column table for people, then the crashing goroutine's top frames and the
    /// memory classes.
    pub fn to_table(&self, width: u16) -> String {
        let mut t = super::new_table(width);
        for (k, v) in self.rows(true) {
            t.add_row(vec![k, v]);
        }
        let mut out = t.to_string();
        let frames = self.frame_rows();
        if !frames.is_empty() {
            let mut t = super::new_table(width);
            t.set_header(vec!["crashing goroutine's frames", "file:line"]);
            for (f, l) in frames {
                t.add_row(vec![f, l]);
            }
            out.push('\n');
            out.push_str(&t.to_string());
        }
        let classes = self.class_rows();
        if !classes.is_empty() {
            let mut t = super::new_table(width);
            t.set_header(vec!["memory class", "bytes", "of accessible"]);
            for (c, b, p) in classes {
                t.add_row(vec![c, b, p]);
            }
            out.push('\n');
            out.push_str(&t.to_string());
        }
        out.push('\n');
        out.push_str(super::warning_lines(&self.warnings).trim_end());
        out
    }

    /// Markdown for a ticket: the summary table, the crash, the memory classes.
    pub fn to_markdown(&self, command: &str) -> String {
        use super::{md_code, md_text};
        let mut s = String::from("## Core dump\n\n| | |\n|---|---|\n");
        for (k, v) in self.rows(false) {
            s.push_str(&format!("| {} | {} |\n", md_text(&k), md_text(&v)));
        }
        s.push_str("\n### Crash\n\n");
        for (k, v) in self.crash_rows() {
            s.push_str(&format!("- **{}**: {}\n", md_text(&k), md_text(&v)));
        }
        let frames = self.frame_rows();
        if !frames.is_empty() {
            s.push_str("\n| function | file:line |\n|---|---|\n");
            for (f, l) in frames {
                s.push_str(&format!("| {} | {} |\n", md_code(&f), md_text(&l)));
            }
        }
        let classes = self.class_rows();
        if !classes.is_empty() {
            s.push_str(
                "\n### Memory classes\n\n| class | bytes | of accessible |\n|---|---:|---:|\n",
            );
            for (c, b, p) in classes {
                s.push_str(&format!("| {} | {} | {} |\n", md_text(&c), b, p));
            }
        }
        s.push_str(&super::markdown_notes(&[], &self.warnings));
        s.push_str(&super::markdown_footer(
            command,
            &self.go_version,
            self.redacted,
        ));
        s
    }

    /// Redacts what the program wrote itself and a key may be part of: a panic message that is
    /// not one of the runtime's own (`runtime error: …`) has each of its fields replaced by
    /// its class and hash.
    pub fn redact(&mut self, r: &crate::maps::keys::Redactor) {
        if let Some(m) = &mut self.crash.panic_message {
            if !m.starts_with("runtime error: ") {
                *m = r.text(m, crate::maps::keys::RENDER_PUNCTUATION);
            }
        }
        self.redacted = true;
    }

    /// How the program ended, one row a fact.
    fn crash_rows(&self) -> Vec<(String, String)> {
        let c = &self.crash;
        let mut rows = Vec::new();
        match &c.death {
            Some(sig) if c.dumped_alive => rows.push((
                "died of".into(),
                format!("nothing: dumped alive ({sig}: stopped by gcore or a debugger)"),
            )),
            Some(sig) => rows.push(("died of".into(), sig.to_string())),
            None => {}
        }
        if let Some(sig) = &c.origin {
            rows.push(("crash started by".into(), sig.to_string()));
        }
        match (&c.panic_message, &c.panic_type) {
            (Some(m), _) => rows.push(("panic".into(), m.clone())),
            (None, Some(t)) => rows.push(("panic".into(), format!("a value of type {t}"))),
            _ => {}
        }
        if c.fatal_error {
            rows.push((
                "fatal error".into(),
                c.fatal_message
                    .clone()
                    .unwrap_or_else(|| "fatal error (message not recoverable)".into()),
            ));
        }
        if let Some(g) = &c.goroutine {
            let how = match g.found_by {
                crate::runtime::FoundBy::SignalledThread => "on the thread that took the signal",
                crate::runtime::FoundBy::CaughtSignal => "its thread caught the signal",
                crate::runtime::FoundBy::Panicking => "panicking",
                crate::runtime::FoundBy::Signalled => "took a signal",
            };
            let wait = g
                .wait_reason
                .as_ref()
                .map(|w| format!(", {w}"))
                .unwrap_or_default();
            let top = g
                .frames
                .iter()
                .find(|f| {
                    !["runtime.", "syscall.", "internal/"]
                        .iter()
                        .any(|p| f.function.starts_with(p))
                })
                .or(g.frames.first())
                .map(|f| format!(" in {}", f.function))
                .unwrap_or_default();
            rows.push((
                "crashing goroutine".into(),
                format!("{} ({}{wait}, {how}){top}", g.id, g.status.name()),
            ));
        }
        rows
    }

    /// The crashing goroutine's top frames as (function, file:line).
    fn frame_rows(&self) -> Vec<(String, String)> {
        let Some(g) = &self.crash.goroutine else {
            return Vec::new();
        };
        let mut rows: Vec<(String, String)> = g
            .frames
            .iter()
            .take(TABLE_FRAMES)
            .map(|f| {
                let inl = if f.inlined { " (inlined)" } else { "" };
                (
                    format!("{}{inl}", f.function),
                    format!("{}:{}", f.file, f.line),
                )
            })
            .collect();
        if g.frames.len() > TABLE_FRAMES {
            rows.push((
                format!(
                    "… {} more (--format json has them all)",
                    g.frames.len() - TABLE_FRAMES
                ),
                String::new(),
            ));
        }
        rows
    }

    /// The memory classes as (class, bytes, share of the mapped bytes).
    fn class_rows(&self) -> Vec<(String, String, String)> {
        let Some(m) = &self.memory_classes else {
            return Vec::new();
        };
        let c = &m.classes;
        let a = &m.account;
        // Shares of the accessible mappings: reserved address space holds no memory.
        let accessible = a.mapped_bytes.saturating_sub(a.no_access_bytes);
        let pct = |b: u64| {
            if accessible == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", b as f64 * 100.0 / accessible as f64)
            }
        };
        let row = |name: &str, b: u64| (name.to_string(), human_bytes(b), pct(b));
        let plain = |name: &str, b: u64| (name.to_string(), human_bytes(b), "-".to_string());
        let mut rows = vec![
            row("Sys (all the runtime obtained)", c.sys_bytes),
            row("  HeapSys", c.heap_sys_bytes),
            row("    HeapInuse", c.heap_inuse_bytes),
            row("    HeapIdle", c.heap_idle_bytes),
            row("      HeapReleased", c.heap_released_bytes),
            row("  StackSys", c.stack_sys_bytes),
            row("    StackInuse", c.stack_inuse_bytes),
            row("  MSpanSys", c.mspan_sys_bytes),
            row("    MSpanInuse", c.mspan_inuse_bytes),
            row("  MCacheSys", c.mcache_sys_bytes),
            row("    MCacheInuse", c.mcache_inuse_bytes),
            row("  BuckHashSys", c.buck_hash_sys_bytes),
            row("  GCSys", c.gc_sys_bytes),
            row("  OtherSys", c.other_sys_bytes),
            plain("NextGC (heap goal)", c.next_gc_bytes),
        ];
        if let Some(l) = m.memory_limit_bytes {
            let (name, b, _) = plain("GOMEMLIMIT", l);
            rows.push((
                name,
                b,
                format!(
                    "Sys is {:.0}% of it",
                    c.sys_bytes as f64 * 100.0 / l.max(1) as f64
                ),
            ));
        }
        rows.push(plain("mapped in the core", a.mapped_bytes));
        rows.push(plain("  no access (reserved)", a.no_access_bytes));
        rows.push(row("  accessible", accessible));
        rows.push(row("    files (executable, libraries)", a.file_bytes));
        rows.push(row(
            "    heap arena index (in no class)",
            a.arena_index_bytes,
        ));
        let rest = a.not_in_sys_bytes;
        rows.push(if rest >= 0 {
            row("    anonymous, in no class", rest as u64)
        } else {
            row("    Sys beyond the mappings", rest.unsigned_abs())
        });
        rows
    }

    /// The summary rows, with the crash's after the goroutines when asked.
    // One function: the summary table's rows, in the order they print, one statement each.
    fn rows(&self, with_crash: bool) -> Vec<(String, String)> {
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
        if with_crash {
            rows.extend(self.crash_rows());
        }
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
        rows
    }
}

/// How much of the core's mappings Sys accounts for.
fn account(core: &CoreFile, sys: u64, arena_index: u64) -> MemoryAccount {
    let mapped = core.mapped_bytes();
    // Sizes from program headers: a damaged one must not overflow the totals.
    let no_access: u64 = (core.segments.iter())
        .filter(|s| s.flags & 7 == 0)
        .fold(0, |n, s| n.saturating_add(s.memsz));
    let file: u64 = core
        .segments
        .iter()
        .filter(|s| s.flags & 7 != 0)
        .map(|s| {
            let end = s.vaddr.saturating_add(s.memsz);
            (core.files.iter())
                .map(|f| f.end.min(end).saturating_sub(f.start.max(s.vaddr)))
                .fold(0u64, u64::saturating_add)
                .min(s.memsz)
        })
        .fold(0, u64::saturating_add);
    let anonymous = mapped.saturating_sub(no_access).saturating_sub(file);
    MemoryAccount {
        mapped_bytes: mapped,
        no_access_bytes: no_access,
        file_bytes: file,
        sys_bytes: sys,
        arena_index_bytes: arena_index,
        sys_percent_of_mapped: if mapped == 0 {
            0.0
        } else {
            sys as f64 * 100.0 / mapped as f64
        },
        not_in_sys_bytes: i64::try_from(anonymous)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(sys.saturating_add(arena_index)).unwrap_or(i64::MAX)),
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
