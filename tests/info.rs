//! `coreheap info` on every committed sample core, checked against what each program measured.

mod common;

use coreheap::report::info::InfoReport;
use coreheap_go::process::{BinaryCheck, FoundBy, OpenOptions, Process};

use common::{sample, samples};

/// The releases `make samples` builds; each must have committed cores.
const RELEASES: [&str; 7] = [
    "go1.21.13",
    "go1.22.10",
    "go1.23.9",
    "go1.24.11",
    "go1.25.5",
    "go1.26.6",
    "go1.27.3",
];

#[test]
fn every_supported_release_has_sample_cores() {
    let all = samples();
    for r in RELEASES {
        for prog in ["tiny", "ledger", "zoo"] {
            assert!(
                all.iter().any(|s| s.name == format!("{r}/{prog}")),
                "no sample {r}/{prog}"
            );
        }
    }
}

#[test]
fn info_matches_each_programs_own_measurements() {
    let all = samples();
    assert!(!all.is_empty(), "no samples found");
    for s in &all {
        let p = Process::open(&s.core, &OpenOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let r = InfoReport::gather(&p, None).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let truth = &s.truth;
        assert_eq!(
            r.go_version_full,
            truth["go_version"].as_str().unwrap(),
            "{}",
            s.name
        );
        assert_eq!(r.go_version, s.go_release(), "{}", s.name);
        assert_eq!(r.goarch, truth["goarch"].as_str().unwrap(), "{}", s.name);
        assert_eq!(
            r.goroutines as u64,
            truth["goroutines"].as_u64().unwrap(),
            "{}: user goroutines",
            s.name
        );
        // Kernel cores keep the executable's first page (its build id note); qemu-user cores
        // do not, but they hold its read-only data, which must equal the executable's.
        let expected = if s.variant() == "arm64" {
            BinaryCheck::SegmentBytes
        } else {
            BinaryCheck::BuildId
        };
        assert_eq!(p.check, expected, "{}", s.name);
        assert!(r.exe.matches, "{}", s.name);
        assert!(
            matches!(p.found_by, FoundBy::FileNote | FoundBy::BesideCore),
            "{}: {:?}",
            s.name,
            p.found_by
        );
        // The runtime's own statistics, read from the core, equal what the program read
        // through runtime.ReadMemStats after its last GC.
        let ms = &s.memstats;
        assert_eq!(
            r.memory.heap_inuse_bytes,
            ms["heap_inuse"].as_u64().unwrap(),
            "{}: HeapInuse",
            s.name
        );
        assert_eq!(
            r.memory.gc_cycles,
            ms["num_gc"].as_u64().unwrap(),
            "{}: NumGC",
            s.name
        );
        assert!(!r.memory.gc_in_progress, "{}", s.name);
        assert!(r.threads >= 1, "{}", s.name);
        assert_eq!(r.core.truncated_bytes, 0, "{}", s.name);
        assert!(r.warnings.is_empty(), "{}: {:?}", s.name, r.warnings);
    }
}

#[test]
fn runtime_features_follow_each_release() {
    for s in samples() {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let r = InfoReport::gather(&p, None).unwrap();
        let minor = s.minor();
        let noswiss = s.variant() == "noswissmap";
        assert_eq!(r.features.swiss_maps, minor >= 24 && !noswiss, "{}", s.name);
        assert_eq!(r.features.allocation_headers, minor >= 22, "{}", s.name);
        assert_eq!(r.features.green_tea, minor >= 26, "{}", s.name);
        assert_eq!(r.features.randomized_heap_base, minor >= 26, "{}", s.name);
        assert_eq!(
            r.dwarf_version,
            if minor >= 25 { 5 } else { 4 },
            "{}",
            s.name
        );
        if noswiss {
            assert!(
                r.experiments.iter().any(|e| e == "noswissmap"),
                "{}",
                s.name
            );
        }
    }
}

#[test]
fn pie_core_reports_its_load_bias() {
    let s = sample("go1.26.6-pie/tiny");
    let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
    let r = InfoReport::gather(&p, None).unwrap();
    assert!(r.exe.pie);
    assert_ne!(r.exe.load_bias, 0);
    assert_eq!(r.goroutines as u64, s.truth["goroutines"].as_u64().unwrap());
}

#[test]
fn arm64_qemu_core_without_file_note_finds_its_binary_beside_it() {
    let s = sample("go1.26.6-arm64/tiny");
    let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
    assert!(p.core.files.is_empty(), "qemu cores carry no NT_FILE note");
    assert_eq!(p.found_by, FoundBy::BesideCore);
    let r = InfoReport::gather(&p, None).unwrap();
    assert_eq!(r.goarch, "arm64");
    assert_eq!(r.goroutines as u64, s.truth["goroutines"].as_u64().unwrap());
}

#[test]
fn explicit_exe_wins_and_is_checked() {
    let s = sample("go1.26.6/tiny");
    let opts = OpenOptions {
        exe: Some(s.exe()),
        ..Default::default()
    };
    let p = Process::open(&s.core, &opts).unwrap();
    assert_eq!(p.found_by, FoundBy::Flag);
    assert_eq!(p.check, BinaryCheck::BuildId);
}

#[test]
fn json_output_has_the_documented_envelope_and_fields() {
    let s = sample("go1.26.6/ledger");
    let core = s.core.as_os_str();
    let stdout =
        common::coreheap_stdout(["info".as_ref(), "--format".as_ref(), "json".as_ref(), core]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["schema"], "coreheap/info/v1");
    assert_eq!(v["go_version"], "go1.26.6");
    assert_eq!(v["goarch"], "amd64");
    assert_eq!(v["goroutines"], s.truth["goroutines"]);
    assert!(v["threads"].as_u64().unwrap() >= 1);
    assert_eq!(v["exe"]["matches"], true);
    assert!(v["exe"]["path"].is_string());
    assert!(v["exe"]["build_id"].is_string());
    assert_eq!(v["features"]["swiss_maps"], true);
    assert_eq!(v["features"]["allocation_headers"], true);
    assert_eq!(v["features"]["green_tea"], true);
}

#[test]
fn recorded_path_is_looked_up_under_sysroot() {
    let s = sample("go1.26.6/tiny");
    let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
    let recorded = p
        .core
        .files
        .iter()
        .find(|f| f.path.ends_with("/tiny"))
        .map(|f| f.path.clone())
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join(recorded.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, common::unzstd(&s.exe())).unwrap();
    let opts = OpenOptions {
        sysroot: Some(root.path().to_path_buf()),
        ..Default::default()
    };
    let p = Process::open(&s.core, &opts).unwrap();
    assert_eq!(p.found_by, FoundBy::Sysroot);
    assert_eq!(p.check, BinaryCheck::BuildId);
}

#[test]
fn dwarf_can_come_from_a_separate_debug_file() {
    let s = sample("go1.26.6/tiny");
    let full = common::unzstd(&s.exe());
    // A stripped copy: the same bytes with every .debug_* section renamed away.
    let mut stripped = full.clone();
    let pat = b".debug_";
    for i in 0..stripped.len() - pat.len() {
        if &stripped[i..i + pat.len()] == pat {
            stripped[i + 1] = b'x';
        }
    }
    let d = tempfile::tempdir().unwrap();
    let (exe, debug) = (d.path().join("tiny"), d.path().join("tiny.debug"));
    std::fs::write(&exe, &stripped).unwrap();
    std::fs::write(&debug, &full).unwrap();
    let opts = OpenOptions {
        exe: Some(exe),
        debug_file: Some(debug),
        ..Default::default()
    };
    let p = Process::open(&s.core, &opts).unwrap();
    let r = InfoReport::gather(&p, None).unwrap();
    assert_eq!(r.goroutines as u64, s.truth["goroutines"].as_u64().unwrap());
    assert!(r.features.swiss_maps);
}

#[test]
fn force_accepts_another_build_and_says_so() {
    let s = sample("go1.26.6/tiny");
    let other = sample("go1.25.5/tiny");
    let opts = OpenOptions {
        exe: Some(other.exe()),
        force: true,
        ..Default::default()
    };
    let p = Process::open(&s.core, &opts).unwrap();
    assert_eq!(p.check, BinaryCheck::ForcedMismatch);
    assert!(!p.check.matches());
}

/// `top`, `histogram` and `path` JSON carry `warnings`, as every document does.
#[test]
fn every_heap_report_has_warnings_in_its_json() {
    let s = sample("go1.26.6/ledger");
    let run = |args: &[&str]| -> serde_json::Value {
        let out = assert_cmd::Command::cargo_bin("coreheap")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let core = s.core.to_str().unwrap();
    let maps = run(&["maps", core, "--format", "json"]);
    let addr = maps["maps"][0]["address"].as_str().unwrap();
    for args in [
        vec!["top", core, "--format", "json"],
        vec!["histogram", core, "--format", "json"],
        vec!["path", core, addr, "--format", "json"],
    ] {
        let v = run(&args);
        assert!(v["warnings"].is_array(), "{}: no warnings", args[0]);
    }
}

/// Frames of the program's own code (not the runtime's, whose frames Go's traceback elides
/// or renames, e.g. `panic` for `runtime.gopanic`).
fn own_frames(frames: &[common::TraceFrame]) -> Vec<common::TraceFrame> {
    frames
        .iter()
        .filter(|(f, _, _)| {
            !f.starts_with("runtime.")
                && !f.starts_with("syscall.")
                && !f.starts_with("internal/")
                && !f.starts_with("runtime/")
                && f != "panic"
        })
        .cloned()
        .collect()
}

/// On every sample core, `info` names the goroutine the Go runtime listed first as running
/// when it died, with the same frames at the same file:line, and the signal the process died
/// of is the one its exit status (meta.json) says.
#[test]
fn crash_names_the_goroutine_and_frames_the_runtime_printed() {
    let all = common::crash_samples();
    assert!(
        all.iter().any(|s| s.name.ends_with("/panicky")),
        "no panicky sample"
    );
    for s in &all {
        let p = Process::open(&s.core, &OpenOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let r = InfoReport::gather(&p, None).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let c = &r.crash;
        let (id, frames) = common::first_goroutine(&s.traceback)
            .unwrap_or_else(|| panic!("{}: no goroutine in traceback.txt", s.name));
        let g = c
            .goroutine
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no crashing goroutine: {:?}", s.name, c.warnings));
        assert_eq!(g.id, id, "{}: crashing goroutine", s.name);
        assert_eq!(g.status.name(), "running", "{}", s.name);
        let ours: Vec<_> = g
            .frames
            .iter()
            .map(|f| (f.function.clone(), f.file.clone(), f.line))
            .collect();
        let want = own_frames(&frames);
        assert!(!want.is_empty(), "{}: no frames of its own", s.name);
        assert_eq!(own_frames(&ours), want, "{}: frames", s.name);
        let expected_fn = if s.name.ends_with("/panicky") {
            "main.balanceOf"
        } else {
            "samples/internal/truth.crash"
        };
        assert_eq!(want[0].0, expected_fn, "{}", s.name);
        // Died of the signal the exit status names (128 + n).
        let status = s.meta["exit_status"].as_u64().unwrap();
        assert_eq!(u64::from(c.signal.unwrap()), status - 128, "{}", s.name);
        assert_eq!(c.signal_name, Some("SIGABRT"), "{}", s.name);
        // The kernel's siginfo; qemu writes none. `sigcode=` is the runtime's word for it.
        if let Some(code) = c.signal_code {
            if let Some(sigcode) = s
                .traceback
                .lines()
                .nth(1)
                .and_then(|l| l.split("sigcode=").nth(1))
            {
                assert_eq!(
                    code,
                    sigcode.trim().parse::<u64>().unwrap() as i64,
                    "{}",
                    s.name
                );
            }
        }
        assert!(r.warnings.is_empty(), "{}: {:?}", s.name, r.warnings);
    }
}

/// The panicky samples: the panic message is the `panic: ` line the program printed, and the
/// signal that started it is the `[signal …]` line's, with its code and faulting address.
#[test]
fn panic_message_and_fault_match_what_the_program_printed() {
    let panicky: Vec<_> = common::crash_samples()
        .into_iter()
        .filter(|s| s.name.ends_with("/panicky"))
        .collect();
    for r in RELEASES {
        assert!(
            panicky.iter().any(|s| s.name == format!("{r}/panicky")),
            "no sample {r}/panicky"
        );
    }
    for s in &panicky {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let r = InfoReport::gather(&p, None).unwrap();
        let c = &r.crash;
        let printed = s
            .traceback
            .lines()
            .find_map(|l| l.strip_prefix("panic: "))
            .unwrap();
        assert_eq!(c.panic_message.as_deref(), Some(printed), "{}", s.name);
        assert!(!c.fatal_error, "{}", s.name);
        // [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x47a800]
        let line = s
            .traceback
            .lines()
            .find_map(|l| l.strip_prefix("[signal "))
            .unwrap();
        let name = line.split(':').next().unwrap();
        let field = |k: &str| -> u64 {
            let v = line
                .split(k)
                .nth(1)
                .unwrap()
                .split([' ', ']'])
                .next()
                .unwrap();
            u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
        };
        assert_eq!(c.origin_signal_name, Some(name), "{}", s.name);
        assert_eq!(c.origin_signal, Some(11), "{}", s.name);
        assert_eq!(
            c.origin_signal_code,
            Some(field("code=") as i64),
            "{}",
            s.name
        );
        assert_eq!(c.origin_signal_code_name, Some("SEGV_MAPERR"), "{}", s.name);
        assert_eq!(c.fault_address, Some(field("addr=")), "{}", s.name);
        assert_eq!(c.fault_address, Some(0), "{}", s.name);
    }
    // The other samples raised SIGABRT themselves: no panic, no fault.
    for s in common::samples().iter().filter(|s| s.minor() >= 26) {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let r = InfoReport::gather(&p, None).unwrap();
        assert_eq!(r.crash.panic_message, None, "{}", s.name);
        assert!(!r.crash.fatal_error, "{}", s.name);
    }
}

/// Every memory class equals what runtime.ReadMemStats reported just before the crash.
#[test]
fn memory_classes_equal_read_mem_stats() {
    for s in samples() {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let r = InfoReport::gather(&p, None).unwrap();
        let m = r
            .memory_classes
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no memory classes", s.name));
        let c = &m.classes;
        let ms = &s.memstats;
        let truth = |f: &str| {
            ms[f]
                .as_u64()
                .unwrap_or_else(|| panic!("{}: no {f}", s.name))
        };
        for (field, ours) in [
            ("sys", c.sys_bytes),
            ("heap_inuse", c.heap_inuse_bytes),
            ("heap_released", c.heap_released_bytes),
            ("stack_inuse", c.stack_inuse_bytes),
            ("stack_sys", c.stack_sys_bytes),
            ("mspan_inuse", c.mspan_inuse_bytes),
            ("mcache_inuse", c.mcache_inuse_bytes),
            ("other_sys", c.other_sys_bytes),
        ] {
            assert_eq!(ours, truth(field), "{}: MemStats {field}", s.name);
        }
        // After the snapshot the background sweeper may still free the GC's emptied work
        // buffer spans (freeSomeWbufs, 32 KiB each: mgcwork.go's workbufAlloc), which moves
        // their bytes from GCSys to HeapIdle; the sum cannot change, and the heap goal
        // moves with HeapIdle by the memory limit's 97% (mgcpacer.go).
        const WORKBUF_SPAN: u64 = 32 << 10;
        let freed = c.heap_idle_bytes.wrapping_sub(truth("heap_idle"));
        assert_eq!(
            freed % WORKBUF_SPAN,
            0,
            "{}: HeapIdle {}",
            s.name,
            c.heap_idle_bytes
        );
        assert!(
            freed <= 4 * WORKBUF_SPAN,
            "{}: HeapIdle {}",
            s.name,
            c.heap_idle_bytes
        );
        assert_eq!(c.gc_sys_bytes + freed, truth("gc_sys"), "{}: GCSys", s.name);
        assert_eq!(
            c.heap_sys_bytes - freed,
            truth("heap_sys"),
            "{}: HeapSys",
            s.name
        );
        let goal = truth("next_gc");
        assert!(
            c.next_gc_bytes >= goal && c.next_gc_bytes - goal <= freed,
            "{}: NextGC {} vs {goal}",
            s.name,
            c.next_gc_bytes
        );
        if freed == 0 {
            assert_eq!(c.next_gc_bytes, goal, "{}: NextGC", s.name);
        }
        assert_eq!(m.account.sys_bytes, c.sys_bytes, "{}", s.name);
        assert!(m.account.mapped_bytes >= c.sys_bytes, "{}", s.name);
    }
}

#[test]
fn info_json_and_markdown_carry_the_crash() {
    let s = sample("go1.26.6/ledger");
    let panicky = s.dir.parent().unwrap().join("panicky/core.zst");
    let stdout = common::coreheap_stdout([
        "info".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        panicky.as_os_str(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let c = &v["crash"];
    assert_eq!(c["signal"], 6);
    assert_eq!(c["signal_name"], "SIGABRT");
    assert_eq!(c["origin_signal_name"], "SIGSEGV");
    assert_eq!(c["fault_address"], "0x0");
    let frames = c["goroutine"]["frames"].as_array().unwrap();
    assert!(frames.len() > 10, "JSON has every frame");
    assert!(frames
        .iter()
        .any(|f| f["function"] == "main.balanceOf" && f["file"] == "samples/panicky/main.go"));
    assert!(v["memory_classes"]["sys_bytes"].as_u64().unwrap() > 0);
    assert!(v["memory_classes"]["account"]["mapped_bytes"].is_u64());
    // Existing fields stay.
    assert!(v["memory"]["heap_inuse_bytes"].is_u64());
    // Every field the schema requires is there.
    let schema = common::schema("info-v1.json");
    let has_all = common::has_required;
    let props = &schema["properties"];
    let crash = &props["crash"];
    let g = &crash["properties"]["goroutine"];
    let classes = &props["memory_classes"];
    has_all(&v, &schema, "document");
    has_all(c, crash, "crash");
    has_all(&c["goroutine"], g, "crash.goroutine");
    has_all(&frames[0], &g["properties"]["frames"]["items"], "frame");
    has_all(&v["memory_classes"], classes, "memory_classes");
    has_all(
        &v["memory_classes"]["account"],
        &classes["properties"]["account"],
        "memory_classes.account",
    );

    let md = common::coreheap_stdout([
        "info".as_ref(),
        "--format".as_ref(),
        "markdown".as_ref(),
        panicky.as_os_str(),
    ]);
    assert!(md.starts_with("## Core dump\n"), "{md}");
    assert!(md.contains("### Crash"), "{md}");
    assert!(
        md.contains("| `main.balanceOf` | samples/panicky/main.go:39 |"),
        "{md}"
    );
    assert!(md.contains("### Memory classes"), "{md}");
}
