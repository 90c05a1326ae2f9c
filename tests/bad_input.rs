//! Unusable input: each case gets its own one-line message naming the problem, exit status 2,
//! and never a panic.

mod common;

use std::path::Path;

use assert_cmd::Command;

use common::{sample, unzstd};

/// Runs `coreheap info` and returns (exit status, stderr).
fn info(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = Command::cargo_bin("coreheap")
        .unwrap()
        .arg("info")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

/// Asserts exit status 2 and a single-line error containing every `needle`.
fn assert_input_error(args: &[&std::ffi::OsStr], needles: &[&str]) {
    let (code, stderr) = info(args);
    assert_eq!(code, 2, "stderr: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    for n in needles {
        assert!(errors[0].contains(n), "{n:?} not in {stderr}");
    }
}

fn write(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn empty_file_is_named_as_empty() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "core", b"");
    assert_input_error(&[p.as_os_str()], &["is empty", "ulimit -c"]);
}

#[test]
fn random_bytes_are_not_a_core() {
    let d = tempfile::tempdir().unwrap();
    // A fixed pseudo-random sequence (xorshift), so the test is the same every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let p = write(d.path(), "core", &bytes);
    assert_input_error(&[p.as_os_str()], &["not an ELF core dump"]);
}

#[test]
fn executable_given_as_core_is_named_as_executable() {
    let s = sample("go1.26.6/tiny");
    let exe = s.exe();
    assert_input_error(
        &[exe.as_os_str()],
        &["ELF executable, not a core dump", "--exe"],
    );
}

#[test]
fn core_cut_in_half_is_truncated_with_the_missing_byte_count() {
    let s = sample("go1.26.6/tiny");
    let core = unzstd(&s.core);
    let d = tempfile::tempdir().unwrap();
    let half = core.len() / 2;
    let p = write(d.path(), "core", &core[..half]);
    let missing = (core.len() - half).to_string();
    let exe = s.exe();
    assert_input_error(
        &[p.as_os_str(), "--exe".as_ref(), exe.as_os_str()],
        &["truncated", &missing, "--allow-truncated"],
    );
}

/// The PT_LOAD segments of a raw ELF64 core as (offset, vaddr, filesz, flags), read
/// independently of coreheap's parser.
fn program_headers(core: &[u8]) -> Vec<(u64, u64, u64, u32)> {
    let u = |at: usize, n: usize| {
        core[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    let (phoff, phnum) = (u(32, 8) as usize, u(56, 2) as usize);
    (0..phnum)
        .map(|i| phoff + 56 * i)
        .filter(|&ph| u(ph, 4) == 1)
        .map(|ph| {
            (
                u(ph + 8, 8),
                u(ph + 16, 8),
                u(ph + 32, 8),
                u(ph + 4, 4) as u32,
            )
        })
        .collect()
}

/// The PT_LOAD segments of a raw ELF64 core as (offset, filesz, flags).
fn load_segments(core: &[u8]) -> Vec<(u64, u64, u32)> {
    (program_headers(core).into_iter())
        .map(|(offset, _, filesz, flags)| (offset, filesz, flags))
        .collect()
}

/// The ledger core cut at `at`, its size as its program headers call for, and its executable.
fn cut_ledger(
    at: impl Fn(&[(u64, u64, u32)]) -> u64,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    u64,
    std::path::PathBuf,
) {
    let s = sample("go1.26.6/ledger");
    let core = unzstd(&s.core);
    let segments = load_segments(&core);
    let want = segments.iter().map(|&(o, f, _)| o + f).max().unwrap();
    assert_eq!(want, core.len() as u64);
    let d = tempfile::tempdir().unwrap();
    let cut = at(&segments) as usize;
    let p = write(d.path(), "core", &core[..cut]);
    let exe = write(d.path(), "ledger", &unzstd(&s.exe()));
    (d, p, want, exe)
}

/// Runs a command with --allow-truncated and returns (exit status, stderr).
fn run_truncated(cmd: &str, core: &Path, exe: &Path) -> (i32, String) {
    let out = Command::cargo_bin("coreheap")
        .unwrap()
        .arg(cmd)
        .arg(core)
        .arg("--exe")
        .arg(exe)
        .arg("--allow-truncated")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{cmd}: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

/// Cut inside the runtime's data and bss (the first writable segment, the executable's data):
/// `mheap_` is gone, and every command says so in one line with the figures and the fix.
#[test]
fn truncated_in_the_runtimes_globals_names_what_is_missing() {
    let (_d, core, want, exe) = cut_ledger(|segs| {
        segs.iter()
            .find(|s| s.2 & 2 != 0 && s.1 > 0)
            .map(|s| s.0 + s.1 / 2)
            .unwrap()
    });
    let have = std::fs::metadata(&core).unwrap().len();
    let figures = format!("the file holds {have} of the {want} bytes");
    for cmd in ["info", "maps", "top", "histogram"] {
        let (code, stderr) = run_truncated(cmd, &core, &exe);
        assert_eq!(code, 2, "{cmd}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{cmd}: {stderr}");
        for needle in [
            "runtime.mheap",
            "lies in the cut-off end of the core",
            &figures,
            "size limit",
        ] {
            assert!(stderr.contains(needle), "{cmd}: {needle:?} not in {stderr}");
        }
    }
}

/// Cut inside the heap (the largest segment): the span records, which lie after it, are gone.
#[test]
fn truncated_in_the_heap_names_the_missing_span_list() {
    let (_d, core, want, exe) = cut_ledger(|segs| {
        segs.iter()
            .max_by_key(|s| s.1)
            .map(|s| s.0 + s.1 / 2)
            .unwrap()
    });
    let have = std::fs::metadata(&core).unwrap().len();
    let (code, stderr) = run_truncated("maps", &core, &exe);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("mheap_.allspans"), "{stderr}");
    assert!(
        stderr.contains(&format!("the file holds {have} of the {want} bytes")),
        "{stderr}"
    );
}

/// Cut in the last segments (after the heap, among the runtime's side tables): every command
/// reports, with a warning giving the bytes missing and the spans left out.
#[test]
fn truncated_near_the_end_reports_with_the_missing_figures() {
    let (_d, core, want, exe) = cut_ledger(|segs| {
        let end = segs.iter().map(|s| s.0 + s.1).max().unwrap();
        end - 600_000
    });
    let have = std::fs::metadata(&core).unwrap().len();
    let figures = format!(
        "the core is truncated: {} bytes are missing ({have} of {want} present)",
        want - have
    );
    for cmd in ["info", "maps", "top", "histogram"] {
        let (code, stderr) = run_truncated(cmd, &core, &exe);
        assert_eq!(code, 0, "{cmd}: {stderr}");
        assert!(
            stderr.contains(&figures),
            "{cmd}: {figures:?} not in {stderr}"
        );
        assert!(
            stderr.contains("spans whose records could not be read"),
            "{cmd}: {stderr}"
        );
        assert!(!stderr.contains("error:"), "{cmd}: {stderr}");
    }
}

/// Cut where the pointer masks of the globals begin (the runtime allocates them late, near the
/// end): the masks are rebuilt from the executable's GC programs, as the runtime built them,
/// and every figure is the same as on the whole core.
#[test]
fn truncated_pointer_masks_are_rebuilt_from_the_executable() {
    for name in ["go1.21.13/ledger", "go1.26.6/ledger"] {
        let s = sample(name);
        let core = unzstd(&s.core);
        let exe = unzstd(&s.exe());
        let args = ["maps", "--format", "json", "--all", "--allow-truncated"];
        // Where the mask lies: the warning of a core cut shortly before the end names it.
        let end = core.len() - 600_000;
        let w = answer(&run_bounded(&core[..end], &exe, &args, &[]), name)["warnings"].to_string();
        let at = w
            .split("moduledata.gcdatamask (address 0x")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap_or_else(|| panic!("{name}: {w}"));
        let cut = file_offset(&core, u64::from_str_radix(at, 16).unwrap());
        let whole = answer(&run_bounded(&core, &exe, &args, &[]), name);
        let truncated = answer(&run_bounded(&core[..cut], &exe, &args, &[]), name);
        assert_eq!(answer_numbers(&truncated), answer_numbers(&whole), "{name}");
        assert_eq!(
            whole["maps"][0]["entries"].as_u64(),
            s.truth["maps"][0]["entries"].as_u64()
        );
        let w = truncated["warnings"].to_string();
        assert!(
            w.contains("they were rebuilt from the executable's GC programs"),
            "{name}: {w}"
        );
        assert!(!w.contains("cannot be read"), "{name}: {w}");
    }
}

#[test]
fn another_releases_binary_is_a_mismatch_naming_both_ids() {
    let s = sample("go1.26.6/tiny");
    let other = sample("go1.21.13/tiny");
    let core_id = read_go_build_id(&unzstd(&s.exe()));
    let exe_id = read_go_build_id(&unzstd(&other.exe()));
    let exe = other.exe();
    assert_input_error(
        &[s.core.as_os_str(), "--exe".as_ref(), exe.as_os_str()],
        &[
            "is not the program that wrote",
            &core_id,
            &exe_id,
            "--force",
        ],
    );
}

#[test]
fn binary_without_dwarf_says_how_to_build_with_it() {
    let s = sample("go1.26.6/tiny");
    let mut exe = unzstd(&s.exe());
    // Rename every .debug_* section (keeping lengths), as `-ldflags=-w` would leave none.
    let pat = b".debug_";
    let mut i = 0;
    while i + pat.len() <= exe.len() {
        if &exe[i..i + pat.len()] == pat {
            exe[i + 1] = b'x';
        }
        i += 1;
    }
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "tiny", &exe);
    assert_input_error(
        &[s.core.as_os_str(), "--exe".as_ref(), p.as_os_str()],
        &["no DWARF", "-ldflags=-w"],
    );
}

#[test]
fn unknown_compression_is_named() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "core.bz2", b"BZh91AY&SY\x00\x01\x02\x03\x04");
    assert_input_error(
        &[p.as_os_str()],
        &[
            "bzip2",
            &format!("decompress it first (`bunzip2 -k {}`)", p.display()),
        ],
    );
}

#[test]
fn damaged_zstd_stream_is_named() {
    let s = sample("go1.26.6/tiny");
    let data = std::fs::read(&s.core).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "core.zst", &data[..data.len() / 3]);
    assert_input_error(
        &[p.as_os_str()],
        &[
            "zstd-compressed but does not decompress",
            &format!("zstd -dc {} > core", p.display()),
            "--allow-truncated",
        ],
    );
}

/// A file given with --exe that is empty or not ELF is named as the executable, with --exe as
/// the fix (not as a core dump).
#[test]
fn unusable_exe_is_named_as_the_executable() {
    let s = sample("go1.26.6/tiny");
    let d = tempfile::tempdir().unwrap();
    for (name, bytes, what) in [
        ("empty", &b""[..], "is empty"),
        (
            "text",
            &b"#!/bin/sh\necho hi\n"[..],
            "is not an ELF executable",
        ),
    ] {
        let p = write(d.path(), name, bytes);
        assert_input_error(
            &[s.core.as_os_str(), "--exe".as_ref(), p.as_os_str()],
            &[what, "give the program that crashed with --exe"],
        );
        let (_, stderr) = info(&[s.core.as_os_str(), "--exe".as_ref(), p.as_os_str()]);
        assert!(!stderr.contains("core dump"), "{stderr}");
        assert!(!stderr.contains("core was not written"), "{stderr}");
    }
}

#[test]
fn missing_core_file_is_an_input_error() {
    assert_input_error(
        &["/nonexistent/core".as_ref()],
        &["cannot read /nonexistent/core"],
    );
    // One line, each cause once.
    let (_, stderr) = info(&["/nonexistent/core".as_ref()]);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let (code, stderr) = info(&["--no-such-flag".as_ref()]);
    assert_eq!(code, 2, "{stderr}");
}

/// The Go build id from a raw executable's `.note.go.buildid` (independent of coreheap's parser).
fn read_go_build_id(exe: &[u8]) -> String {
    // Note layout: namesz=4, descsz, type=4, "Go\0\0", desc.
    let key = [4u8, 0, 0, 0];
    for i in 0..exe.len().saturating_sub(16) {
        if exe[i..i + 4] == key
            && exe[i + 8..i + 12] == [4, 0, 0, 0]
            && &exe[i + 12..i + 16] == b"Go\0\0"
        {
            let n = u32::from_le_bytes(exe[i + 4..i + 8].try_into().unwrap()) as usize;
            return String::from_utf8_lossy(&exe[i + 16..i + 16 + n]).into_owned();
        }
    }
    panic!("no Go build id note");
}

/// Damage inside the heap (words overwritten anywhere in the dumped memory) degrades to
/// warnings and skipped counts: coreheap finishes or names what it could not read, never panics.
#[test]
fn corrupted_heap_words_never_panic() {
    let s = sample("go1.26.6/zoo");
    let raw = unzstd(&s.core);
    let d = tempfile::tempdir().unwrap();
    let exe = s.exe();
    let mut degraded = 0;
    for seed in 1..=4u64 {
        let mut core = raw.clone();
        let mut x = 0x2545_f491_4f6c_dd1d ^ seed;
        // Leave the ELF header and notes alone (first 64 KiB); scribble over the rest.
        for _ in 0..4000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (65536 + (x as usize % (core.len() - 65544))) & !7;
            core[at..at + 8].copy_from_slice(&x.rotate_left(17).to_le_bytes());
        }
        let p = write(d.path(), "core", &core);
        for cmd in ["maps", "top"] {
            let out = Command::cargo_bin("coreheap")
                .unwrap()
                .arg(cmd)
                .arg(&p)
                .arg("--exe")
                .arg(&exe)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "seed {seed} {cmd}: {stderr}");
            let code = out.status.code().unwrap_or(-1);
            assert!(
                code == 0 || code == 2,
                "seed {seed} {cmd}: exit {code}: {stderr}"
            );
            if code == 0 && stderr.contains("coreheap: warning:") {
                degraded += 1;
            }
        }
    }
    // The damage was seen and reported, not silently absorbed nor fatal.
    assert!(
        degraded > 0,
        "no run finished with a warning about the damage"
    );
}

/// Size flags take units and refuse what is not a size or depth with the accepted forms.
#[test]
fn size_and_depth_flags_take_units_and_refuse_nonsense() {
    let core = sample("go1.26.6/ledger").core;
    let run = |args: &[&str]| {
        let mut cmd = Command::cargo_bin("coreheap").unwrap();
        cmd.arg("maps")
            .arg(&core)
            .args(args)
            .args(["--format", "json"]);
        cmd.output().unwrap()
    };
    let v = answer(&run(&["--min-bytes", "1M"]), "--min-bytes 1M");
    for m in v["maps"].as_array().unwrap() {
        assert!(m["retained_bytes"].as_u64().unwrap() >= 1 << 20);
    }
    for args in [["--min-bytes", "1Q"], ["--depth", "0"]] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("give"), "{args:?}: {err}");
    }
}

/// `go tool buildid`'s id shortened as coreheap lists it: `746M…/VXmR…`.
fn short_go_id(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    let head = |s: &str| s.chars().take(4).collect::<String>();
    format!("{}…/{}…", head(parts[0]), head(parts[parts.len() - 1]))
}

/// A copy of a sample's core alone in a temporary directory.
fn core_alone(s: &common::Sample) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let core = d.path().join("core.zst");
    std::fs::copy(&s.core, &core).unwrap();
    (d, core)
}

/// Without --exe, files beside the core are compared by the start of their stream only: a
/// compressed executable of another build whose stream is cut short (it could not be
/// decompressed whole) is named with its build id, other cores are named as cores, a program
/// with no Go build id is not taken on trust, and the error gives the fix first.
#[test]
fn executables_beside_the_core_are_compared_from_their_first_bytes() {
    let s = sample("go1.26.6/tiny");
    let (d, core) = core_alone(&s);
    let other = sample("go1.25.5/tiny");
    let other_exe = unzstd(&other.exe());
    let stream = zstd::encode_all(&other_exe[..], 3).unwrap();
    write(d.path(), "old-build.zst", &stream[..stream.len() * 2 / 3]);
    std::fs::copy(
        sample("go1.26.6/ledger").core,
        d.path().join("ledger-core.zst"),
    )
    .unwrap();
    let stranger = assert_cmd::cargo::cargo_bin("coreheap");
    std::fs::copy(&stranger, d.path().join("stranger")).unwrap();
    write(d.path(), "notes.txt", b"not a candidate");

    let core_id = read_go_build_id(&unzstd(&s.exe()));
    let (code, stderr) = info(&[core.as_os_str()]);
    assert_eq!(code, 2, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("coreheap: error: no executable matches"),
        "{stderr}"
    );
    assert!(
        lines[0].contains(&core_id) && lines[0].contains("--exe PATH"),
        "{stderr}"
    );
    let old_id = short_go_id(&read_go_build_id(&other_exe));
    let expect = [
        format!("old-build.zst: build id {old_id} differs"),
        "ledger-core.zst: a core, not an executable".to_string(),
        "stranger: it has no Go build id to compare with the core's".to_string(),
    ];
    for e in &expect {
        assert!(lines.iter().any(|l| l.trim() == e), "{e:?} not in {stderr}");
    }
    // The recorded path (absent here), then the three candidates; notes.txt is no candidate.
    assert_eq!(lines.len(), 1 + 1 + expect.len(), "{stderr}");
    // --force does not take another build found beside the core, and says so.
    let (code, forced) = info(&[core.as_os_str(), "--force".as_ref()]);
    assert_eq!(code, 2, "{forced}");
    assert!(
        forced
            .lines()
            .next()
            .unwrap()
            .contains("--force takes another build only when given with --exe"),
        "{forced}"
    );

    // With the right executable beside them, it is chosen, and info says how it was found.
    std::fs::copy(s.exe(), d.path().join("tiny.zst")).unwrap();
    let stdout = common::coreheap_stdout([
        "info".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        core.as_os_str(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["exe"]["found_by"],
        "file beside the core with the same build id"
    );
    assert!(v["exe"]["path"].as_str().unwrap().ends_with("tiny.zst"));
}

/// More than ten rejected candidates: ten lines, then how many more.
#[test]
fn rejected_candidates_are_capped() {
    let s = sample("go1.26.6/tiny");
    let (d, core) = core_alone(&s);
    for i in 0..14 {
        std::fs::copy(&s.core, d.path().join(format!("other-{i:02}.zst"))).unwrap();
    }
    let (code, stderr) = info(&[core.as_os_str()]);
    assert_eq!(code, 2, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    // The error, ten candidates (the recorded path first), and the rest counted.
    assert_eq!(lines.len(), 12, "{stderr}");
    assert_eq!(lines[11].trim(), "and 5 more", "{stderr}");
    assert_eq!(
        stderr.matches("a core, not an executable").count(),
        9,
        "{stderr}"
    );
}

/// A FIFO, a directory or a device given as the core or the executable is refused at once
/// with what it is (a FIFO used to block the open forever), exit status 2.
#[test]
fn only_regular_files_are_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("core.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let core = sample("go1.26.6/tiny").core;
    let cases: [(Vec<&std::ffi::OsStr>, &str); 4] = [
        (
            vec![fifo.as_os_str()],
            "is a FIFO (named pipe), not a regular file",
        ),
        (
            vec![dir.path().as_os_str()],
            "is a directory, not a regular file",
        ),
        (
            vec!["/dev/null".as_ref()],
            "is a device, not a regular file",
        ),
        (
            vec![core.as_os_str(), "--exe".as_ref(), fifo.as_os_str()],
            "is a FIFO (named pipe), not a regular file",
        ),
    ];
    for (args, needle) in cases {
        let out = Command::cargo_bin("coreheap")
            .unwrap()
            .arg("info")
            .args(&args)
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        assert!(errors[0].contains(needle), "{needle:?} not in {stderr}");
    }
}

/// Runs coreheap with `args` on a damaged copy `core` of sample `s`'s core, with the sample's
/// executable, bounded as `run_bounded` is.
fn run_damaged(s: &common::Sample, core: &[u8], args: &[&str]) -> std::process::Output {
    run_bounded(core, &unzstd(&s.exe()), args, &[])
}

/// The JSON answer of a run that must end with exit status 0 and no panic; `what` names the
/// run in a failure.
fn answer(out: &std::process::Output, what: &str) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Where virtual address `addr` of a raw ELF64 core lies in the file.
fn file_offset(core: &[u8], addr: u64) -> usize {
    (program_headers(core).into_iter())
        .find_map(|(offset, vaddr, filesz, _)| {
            (vaddr..vaddr + filesz)
                .contains(&addr)
                .then(|| (offset + addr - vaddr) as usize)
        })
        .unwrap_or_else(|| panic!("{addr:#x} is not in the core"))
}

/// The little-endian u64 at virtual address `addr` of a raw core.
fn core_u64(core: &[u8], addr: u64) -> u64 {
    let o = file_offset(core, addr);
    u64::from_le_bytes(core[o..o + 8].try_into().unwrap())
}

/// Writes `v` as the little-endian u64 at virtual address `addr` of a raw core.
fn set_core_u64(core: &mut [u8], addr: u64, v: u64) {
    let o = file_offset(core, addr);
    core[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// Every bucket of a classic map made its own overflow bucket (each chain a loop): the map is
/// read with each bucket once and warnings say what was damaged, in seconds and little memory
/// (each chain used to be walked 65,536 times, and the process died past 24 GB).
#[test]
fn looping_overflow_chains_are_read_once_with_a_warning() {
    let s = sample("go1.21.13/ledger");
    let mut core = unzstd(&s.core);
    let truth = &s.truth["maps"][0];
    let entries = truth["entries"].as_u64().unwrap();
    let header = truth["addr"].as_str().unwrap().trim_start_matches("0x");
    let header = u64::from_str_radix(header, 16).unwrap();
    // Go 1.21's hmap: B at 9, buckets at 16; a bucket of map[string]*big.Int is 208 bytes
    // (tophash 8, keys 8×16, values 8×8) with its overflow pointer last, at 200.
    let b = core[file_offset(&core, header + 9)];
    let buckets = core_u64(&core, header + 16);
    for i in 0..1u64 << b {
        let bucket = buckets + i * 208;
        set_core_u64(&mut core, bucket + 200, bucket);
    }
    let report = answer(
        &run_damaged(&s, &core, &["maps", "--format", "json"]),
        "maps",
    );
    let warnings: Vec<&str> = (report["warnings"].as_array().unwrap().iter())
        .filter_map(|w| w.as_str())
        .collect();
    let loops = format!(
        "{} overflow chains lead back to a bucket they passed",
        1u64 << b
    );
    assert!(warnings.iter().any(|w| w.contains(&loops)), "{warnings:?}");
    let balances = (report["maps"].as_array().unwrap().iter())
        .find(|m| m["owner"] == "main.balances")
        .unwrap();
    // The entries in first buckets are all there, those in the cut-off overflow buckets not:
    // fewer than the program's, and the count mismatch is a warning too.
    let decoded = balances["entries"].as_u64().unwrap();
    assert!(decoded < entries && decoded > entries / 2, "{decoded}");
    let mismatch = format!("counts {entries} entries but {decoded} were decoded");
    assert!(
        warnings.iter().any(|w| w.contains(&mismatch)),
        "{warnings:?}"
    );
}

/// A map header's size fields set past what memory holds (one byte of a classic map's `B`, a
/// Swiss map's directory length): the command ends at once, and names the map, the claim and
/// the room, instead of visiting 2^40 buckets or tables.
#[test]
fn oversized_map_headers_are_left_out_with_the_claim() {
    // Go 1.21's hmap: B at 9; Go 1.26's Swiss map: dirLen at 24.
    for (name, at, value, claim) in [
        (
            "go1.21.13/ledger",
            9u64,
            40u64,
            "claims 2^40 buckets of 208 B",
        ),
        (
            "go1.26.6/ledger",
            24,
            1 << 40,
            "claims a directory of 1099511627776 tables",
        ),
    ] {
        let s = sample(name);
        let mut core = unzstd(&s.core);
        let header = s.truth["maps"][0]["addr"].as_str().unwrap();
        let header = u64::from_str_radix(header.trim_start_matches("0x"), 16).unwrap();
        if at == 9 {
            let o = file_offset(&core, header + at);
            assert_eq!(core[o], 12, "{name}: B of 20,000 entries");
            core[o] = value as u8;
        } else {
            assert_eq!(core_u64(&core, header + at), 32, "{name}: 32 tables");
            set_core_u64(&mut core, header + at, value);
        }
        let t = std::time::Instant::now();
        let report = answer(&run_damaged(&s, &core, &["maps", "--format", "json"]), name);
        assert!(t.elapsed().as_secs() < 30, "{name}: {:?}", t.elapsed());
        let warnings = report["warnings"].to_string();
        let expected = format!(" at {header:#x}: its header {claim}");
        assert!(warnings.contains(&expected), "{name}: {warnings}");
        assert!(warnings.contains("the map was left out"), "{warnings}");
        assert!(!(report["maps"].as_array().unwrap().iter()).any(|m| m["owner"] == "main.balances"));
    }
}

/// A compressed core whose copy would not fit in `--tmpdir` stops before the disk is full,
/// naming the room and the flag. The small disk is a tmpfs of 66 MiB (64 MiB of it kept free, the core's copy takes 5.6),
/// which needs root to mount: elsewhere the test says so and checks nothing.
#[test]
fn decompression_stops_before_the_tmpdir_fills() {
    let s = sample("go1.26.6/ledger");
    let d = tempfile::tempdir().unwrap();
    let small = d.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=66m", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|st| st.success());
    if !mounted {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    }
    let out = Command::cargo_bin("coreheap")
        .unwrap()
        .arg("info")
        .arg(&s.core)
        .arg("--exe")
        .arg(write(d.path(), "ledger", &unzstd(&s.exe())))
        .arg("--tmpdir")
        .arg(&small)
        .output()
        .unwrap();
    let used = std::fs::read_dir(&small).unwrap().count();
    let _ = std::process::Command::new("umount").arg(&small).status();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("does not fit in") && stderr.contains("choose another place with --tmpdir"),
        "{stderr}"
    );
    assert_eq!(used, 0, "the partial copy is removed");
}

/// Two undumped segments whose sizes (p_memsz) were damaged to 2^63 each: the totals `info`
/// prints saturate instead of overflowing (a fuzz finding: the sum panicked with overflow
/// checks on and wrapped to a small number without).
#[test]
fn damaged_segment_sizes_do_not_overflow_the_totals() {
    let s = sample("go1.26.6/tiny");
    let mut core = unzstd(&s.core);
    let (phoff, phnum) = (
        u64::from_le_bytes(core[32..40].try_into().unwrap()) as usize,
        u16::from_le_bytes(core[56..58].try_into().unwrap()) as usize,
    );
    let mut damaged = 0;
    for ph in (0..phnum).map(|i| phoff + 56 * i) {
        let (kind, filesz) = (
            u32::from_le_bytes(core[ph..ph + 4].try_into().unwrap()),
            u64::from_le_bytes(core[ph + 32..ph + 40].try_into().unwrap()),
        );
        if kind == 1 && filesz == 0 && damaged < 2 {
            core[ph + 40..ph + 48].copy_from_slice(&(1u64 << 63).to_le_bytes());
            damaged += 1;
        }
    }
    assert_eq!(damaged, 2);
    let info = answer(
        &run_damaged(&s, &core, &["info", "--format", "json"]),
        "info",
    );
    let mapped = &info["mappings"]["mapped_bytes"];
    assert_eq!(mapped.as_u64(), Some(u64::MAX), "{}", info["mappings"]);
}

/// A span list emptied by damage (`mheap_.allspans` with length 0) leaves no heap to report:
/// every command stops with exit status 2 and says so, instead of an empty report with exit 0.
#[test]
fn a_heap_with_no_readable_span_is_an_error() {
    use coreheap_go::process::{OpenOptions, Process};
    use coreheap_go::runtime::Runtime;
    let s = sample("go1.26.6/tiny");
    let mut core = unzstd(&s.core);
    // Where the list's length lies, from the program's DWARF and symbols.
    let len_at = {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let rt = Runtime::new(&p);
        let mheap = rt.global("runtime.mheap_").unwrap();
        mheap.0 + p.dwarf.offset("runtime.mheap", "allspans").unwrap() + 8
    };
    set_core_u64(&mut core, len_at, 0);
    for cmd in ["maps", "top", "histogram", "info"] {
        let out = run_damaged(&s, &core, &[cmd]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(
            stderr.contains("no in-use heap span could be read from runtime.mheap_.allspans (0 entries listed, 0 unreadable)"),
            "{cmd}: {stderr}"
        );
    }
}

/// A compressed core that decompresses past the size its ELF headers give (here 64 MiB of
/// zeros after the real core, as a damaged or hostile stream would) stops with the limit and
/// the flag that raises it, exit 2; with the flag raised the same file reads as the core.
#[test]
fn decompression_stops_at_the_size_the_headers_give() {
    let s = sample("go1.26.6/tiny");
    let mut core = unzstd(&s.core);
    let size = program_headers(&core)
        .iter()
        .map(|&(offset, _, filesz, _)| offset + filesz)
        .max()
        .unwrap();
    assert_eq!(size, core.len() as u64);
    core.resize(core.len() + (64 << 20), 0);
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "core.zst",
        &zstd::encode_all(&core[..], 1).unwrap(),
    );
    let exe = write(d.path(), "tiny", &unzstd(&s.exe()));
    let run = |extra: &[&str]| {
        Command::cargo_bin("coreheap")
            .unwrap()
            .arg("info")
            .arg(&p)
            .arg("--exe")
            .arg(&exe)
            .arg("--tmpdir")
            .arg(d.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = format!("decompresses past {size} bytes, the size its ELF headers give");
    assert!(stderr.contains(&line), "{stderr}");
    assert!(stderr.contains("--max-decompressed SIZE"), "{stderr}");
    let out = run(&["--max-decompressed", "1GiB"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Span records that cannot be read (their pointers in `mheap_.allspans` damaged) are not
/// silent: `maps`, `top` and `info` each carry one warning with the count, and the program's
/// biggest map is still reported.
#[test]
fn unreadable_spans_are_a_warning_in_every_command() {
    use coreheap_go::process::{OpenOptions, Process};
    use coreheap_go::runtime::Runtime;
    let s = sample("go1.26.6/ledger");
    let mut core = unzstd(&s.core);
    // The span list (a slice: array, length), from the program's DWARF and symbols.
    let (array, len) = {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let rt = Runtime::new(&p);
        let mheap = rt.global("runtime.mheap_").unwrap();
        let at = mheap.offset(p.dwarf.offset("runtime.mheap", "allspans").unwrap());
        (p.mem.ptr(at).unwrap().0, p.mem.u64(at.offset(8)).unwrap())
    };
    // The last 40 entries point at page 1, never mapped.
    for i in len - 40..len {
        set_core_u64(&mut core, array + 8 * i, 0x1000);
    }
    for cmd in ["maps", "top", "info"] {
        let report = answer(&run_damaged(&s, &core, &[cmd, "--format", "json"]), cmd);
        let warnings = report["warnings"].as_array().unwrap();
        let spans = (warnings.iter())
            .filter(|w| {
                (w.as_str().unwrap_or("")).starts_with(
                    "40 heap spans could not be read (their records in the core are damaged)",
                )
            })
            .count();
        assert_eq!(spans, 1, "{cmd}: {warnings:?}");
    }
}

/// Every table of a Swiss map's directory made to point at the first table's groups: the
/// groups are read once, not once per table, and a warning names the tables left out (each
/// table counted the same entries again before, a plausible wrong answer).
#[test]
fn swiss_tables_sharing_groups_are_read_once_with_a_warning() {
    use coreheap_go::process::{OpenOptions, Process};
    use coreheap_go::runtime::maplayout::SwissPath;
    let s = sample("go1.26.6/ledger");
    let truth = &s.truth["maps"][0];
    let entries = truth["entries"].as_u64().unwrap();
    let header = truth["addr"].as_str().unwrap().trim_start_matches("0x");
    let header = u64::from_str_radix(header, 16).unwrap();
    let mut core = unzstd(&s.core);
    // The layout, from the program's DWARF: header → directory of tables → groups.
    let path = {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        let var = p.dwarf.variable("main.balances").unwrap();
        let h = p.dwarf.map_header_type(var.ty.unwrap()).unwrap();
        SwissPath::of(&p.dwarf, h).unwrap()
    };
    let dir = core_u64(&core, header + path.dir_ptr.offset);
    let dir_len = core_u64(&core, header + path.dir_len.offset);
    let data = path.groups_data();
    let mask = path.groups.offset + path.length_mask.as_ref().unwrap().offset;
    let mut tables: Vec<u64> = (0..dir_len).map(|i| core_u64(&core, dir + 8 * i)).collect();
    tables.sort_unstable();
    tables.dedup();
    assert!(tables.len() > 2, "{} tables", tables.len());
    let (first_data, first_mask) = (
        core_u64(&core, tables[0] + data),
        core_u64(&core, tables[0] + mask),
    );
    for &t in &tables[1..] {
        set_core_u64(&mut core, t + data, first_data);
        set_core_u64(&mut core, t + mask, first_mask);
    }
    let report = answer(
        &run_damaged(&s, &core, &["maps", "--format", "json"]),
        "maps",
    );
    let warnings: Vec<&str> = (report["warnings"].as_array().unwrap().iter())
        .filter_map(|w| w.as_str())
        .collect();
    let shared = format!(
        "{} of its tables point at groups another table holds",
        tables.len() - 1
    );
    assert!(warnings.iter().any(|w| w.contains(&shared)), "{warnings:?}");
    let balances = (report["maps"].as_array().unwrap().iter())
        .find(|m| m["owner"] == "main.balances")
        .unwrap();
    let decoded = balances["entries"].as_u64().unwrap();
    assert!(decoded > 0 && decoded < entries, "{decoded} of {entries}");
}

/// A `.debug_info` compression header claiming 4 GiB (from a few hundred KiB) is refused as
/// damaged DWARF with the claim in the message, exit 2, before anything of that size is
/// allocated.
#[test]
fn a_compression_header_cannot_size_the_dwarf_buffer() {
    use object::{Object, ObjectSection};
    let s = sample("go1.26.6/tiny");
    let mut exe = unzstd(&s.exe());
    let (offset, size) = {
        let obj = object::File::parse(&exe[..]).unwrap();
        let sec = obj.section_by_name(".debug_info").unwrap();
        sec.file_range().unwrap()
    };
    // Elf64_Chdr: ch_type (1 = zlib), ch_reserved, then ch_size at 8.
    let at = offset as usize;
    assert_eq!(u32::from_le_bytes(exe[at..at + 4].try_into().unwrap()), 1);
    exe[at + 8..at + 16].copy_from_slice(&(4u64 << 30).to_le_bytes());
    let d = tempfile::tempdir().unwrap();
    let exe_path = write(d.path(), "tiny", &exe);
    let out = Command::cargo_bin("coreheap")
        .unwrap()
        .arg("info")
        .arg(&s.core)
        .arg("--exe")
        .arg(&exe_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let claim = format!(
        "section .debug_info claims {} bytes uncompressed from {} compressed",
        4u64 << 30,
        size - 24
    );
    assert!(stderr.contains(&claim), "{stderr}");
}

/// `runtime.allgs` with a damaged length (2^40): the goroutines read are the program's own
/// (the count its truth file gives), not whatever memory follows the list, and a warning says
/// what the length claimed against the capacity and `runtime.allglen`.
#[test]
fn a_damaged_goroutine_list_length_is_bounded_and_said() {
    use coreheap_go::process::{OpenOptions, Process};
    use coreheap_go::runtime::Runtime;
    let s = sample("go1.26.6/tiny");
    let mut core = unzstd(&s.core);
    let len_at = {
        let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
        Runtime::new(&p).global("runtime.allgs").unwrap().0 + 8
    };
    set_core_u64(&mut core, len_at, 1 << 40);
    let report = answer(
        &run_damaged(&s, &core, &["info", "--format", "json"]),
        "info",
    );
    assert_eq!(report["goroutines"], s.truth["goroutines"]);
    let claim = format!(
        "runtime.allgs claims {} goroutines but its capacity is",
        1u64 << 40
    );
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap_or("").starts_with(&claim)),
        "{warnings:?}"
    );
}

/// splitmix64: a fixed, well-spread sequence from each seed.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs coreheap (`args`, the core, `after`) on a core and executable given as bytes, within
/// 120 s (a debug build on a busy machine) and 8 GiB of address space: a run that needs more is
/// killed or fails to allocate, and the caller sees no exit status 0 or 2.
fn run_bounded(core: &[u8], exe: &[u8], args: &[&str], after: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "core", core);
    let exe = write(d.path(), "program", exe);
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("coreheap"));
    cmd.args(args).arg(&p).args(after).arg("--exe").arg(&exe);
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 8 << 30,
                rlim_max: 8 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Command::from_std(cmd)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap()
}

/// What a `maps --format json` answer says in numbers: each map (owner and address) with its
/// entries and retained bytes, and the heap's totals.
fn answer_numbers(json: &serde_json::Value) -> String {
    let mut maps: Vec<String> = (json["maps"].as_array().unwrap().iter())
        .map(|m| {
            format!(
                "{}@{} {} {}",
                m["owner"], m["address"], m["entries"], m["retained_bytes"]
            )
        })
        .collect();
    maps.sort();
    format!("{} {}", json["heap"], maps.join("; "))
}

/// Where a seed damages a sample: the core or the executable, and which bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Damage {
    /// The first 64 KiB of the core: ELF and program headers, notes.
    CoreHead,
    /// The 64 bytes from the largest map's header on.
    MapHeader,
    /// Anywhere in the core, heap pages mostly.
    Anywhere,
    /// The executable's DWARF sections.
    Dwarf,
}

/// The file ranges of an executable's DWARF sections.
fn dwarf_ranges(exe: &[u8]) -> Vec<std::ops::Range<usize>> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(exe).unwrap();
    (file.sections())
        .filter(|s| s.name().is_ok_and(|n| n.contains("debug_")))
        .filter_map(|s| s.file_range())
        .map(|(o, n)| o as usize..(o + n) as usize)
        .filter(|r| !r.is_empty())
        .collect()
}

/// A seeded, deterministic mutation run: 16 random bytes of a sample changed in the first
/// 64 KiB of the core (ELF and program headers, notes), around the largest map's header,
/// anywhere in the core (heap pages), or in the executable's DWARF. Every run of `maps`, and of
/// `info`, `top` or `histogram` in turn, must end within 120 s and 8 GiB with exit status 0 or
/// 2 and no panic, and a `maps` answer whose numbers
/// differ from the undamaged core's must carry a warning. The one exception is damage the
/// core cannot reveal: a pointer word in the heap turned into another pointer to a live object
/// is a heap Go could have held. When a run's numbers change silently, each damaged byte is
/// tried alone, and each that changes them silently must be such a pointer (`path` to its new
/// value finds a live object).
#[test]
fn mutated_cores_end_with_an_answer_or_a_message() {
    let args = ["maps", "--format", "json", "--all"];
    let check_ends = |out: &std::process::Output, what: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "{what}: {:?} {stderr}",
            out.status
        );
    };
    for name in ["go1.21.13/ledger", "go1.26.6/ledger"] {
        let s = sample(name);
        let core = unzstd(&s.core);
        let exe = unzstd(&s.exe());
        let truth = answer_numbers(&answer(&run_bounded(&core, &exe, &args, &[]), name));
        let header = s.truth["maps"][0]["addr"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x");
        let header = file_offset(&core, u64::from_str_radix(header, 16).unwrap());
        let dwarf = dwarf_ranges(&exe);
        let dwarf_len: usize = dwarf.iter().map(|r| r.len()).sum();
        for seed in 0..16u64 {
            let damage = [
                Damage::CoreHead,
                Damage::MapHeader,
                Damage::Anywhere,
                Damage::Dwarf,
            ][seed as usize % 4];
            let mut state = seed;
            let (mut c, mut e) = (core.clone(), exe.clone());
            let mut spots = Vec::new();
            for _ in 0..16 {
                let r = next_random(&mut state) as usize;
                let v = next_random(&mut state) as u8;
                match damage {
                    Damage::CoreHead => c[r % 65536] = v,
                    Damage::MapHeader => c[header + r % 64] = v,
                    Damage::Anywhere => {
                        c[r % core.len()] = v;
                        spots.push((r % core.len(), v));
                    }
                    Damage::Dwarf => {
                        let mut at = r % dwarf_len;
                        let range = (dwarf.iter())
                            .find(|d| {
                                let inside = at < d.len();
                                if !inside {
                                    at -= d.len();
                                }
                                inside
                            })
                            .unwrap();
                        e[range.start + at] = v;
                    }
                }
            }
            let what = format!("{name} seed {seed} ({damage:?})");
            // Another command on the same damage, in turn: it must end the same way.
            let other = ["info", "top", "histogram"][seed as usize % 3];
            let out = run_bounded(&c, &e, &[other, "--format", "json"], &[]);
            check_ends(&out, &format!("{what}: {other}"));
            let out = run_bounded(&c, &e, &args, &[]);
            check_ends(&out, &what);
            if out.status.code() != Some(0) {
                continue;
            }
            let got = answer(&out, &what);
            let warned = !got["warnings"].as_array().unwrap().is_empty();
            if warned || answer_numbers(&got) == truth {
                continue;
            }
            assert_eq!(damage, Damage::Anywhere, "{what}: numbers changed silently");
            for (at, v) in spots {
                let mut one = core.clone();
                one[at] = v;
                let out = run_bounded(&one, &exe, &args, &[]);
                let got = answer(&out, &what);
                if !got["warnings"].as_array().unwrap().is_empty() || answer_numbers(&got) == truth
                {
                    continue;
                }
                let w = at & !7;
                let value = u64::from_le_bytes(one[w..w + 8].try_into().unwrap());
                let path = run_bounded(&one, &exe, &["path"], &[&format!("{value:#x}")]);
                assert_eq!(
                    path.status.code(),
                    Some(0),
                    "{what}: byte {at} changed the numbers silently, and its word {value:#x} points at no live object: {}",
                    String::from_utf8_lossy(&path.stderr)
                );
            }
        }
    }
}

/// A pointer in a map's value turned to unmapped memory (one byte changed): the map's retained
/// bytes drop, and the answer says that the heap is damaged there.
#[test]
fn a_pointer_to_nowhere_is_a_warning() {
    let s = sample("go1.26.6/ledger");
    let core = unzstd(&s.core);
    let exe = unzstd(&s.exe());
    // The digit slice (`abs`) of a *big.Int (32 B) of an entry of main.balances: the seeded
    // mutation harness changed its fifth byte.
    let word = 0x2525_ae7d_42e8;
    assert_eq!(core_u64(&core, word), 0x2525_ae7d_3b00);
    let mut damaged = core.clone();
    set_core_u64(&mut damaged, word, 0x25c6_ae7d_3b00);
    let args = ["maps", "--format", "json"];
    let before = answer(&run_bounded(&core, &exe, &args, &[]), "undamaged");
    let after = answer(&run_bounded(&damaged, &exe, &args, &[]), "damaged");
    let retained = |v: &serde_json::Value| v["maps"][0]["retained_bytes"].as_u64().unwrap();
    assert!(retained(&after) < retained(&before));
    assert_eq!(before["warnings"], serde_json::json!([]));
    let w = after["warnings"].to_string();
    assert!(
        w.contains("1 reachable object (32 B) holds a pointer to no live object"),
        "{w}"
    );
}
