//! Scratch files: the per-object tables can live in unnamed files instead of memory, with the
//! same report, and nothing left behind.

mod common;

use common::sample;

/// Runs `coreheap maps` on a sample with extra arguments and environment; returns (exit status,
/// stdout, stderr).
fn maps(core: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = assert_cmd::Command::cargo_bin("coreheap").unwrap();
    cmd.arg("maps").arg(core).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tables_in_scratch_files_give_the_same_report_and_leave_nothing_behind() {
    let s = sample("go1.26.6/ledger");
    let (code, plain, _) = maps(&s.core, &["--format", "json"], &[]);
    assert_eq!(code, 0);
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().to_str().unwrap();
    // Blocks from 64 KiB go to scratch files, so this small core's tables do too.
    let (code, out, err) = maps(
        &s.core,
        &["--format", "json", "--timings", "--scratch-dir", scratch],
        &[("COREHEAP_SCRATCH_MIN_BYTES", "65536")],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, plain, "the report differs with scratch files");
    let line = err
        .lines()
        .find(|l| l.starts_with("scratch "))
        .unwrap_or_else(|| panic!("no scratch line in --timings: {err}"));
    assert!(
        !line.contains(" 0 B "),
        "nothing went to scratch files: {line}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "scratch files were left behind"
    );
}

#[test]
fn an_unusable_scratch_directory_is_one_line_and_exit_2() {
    let s = sample("go1.26.6/tiny");
    let (code, out, err) = maps(
        &s.core,
        &["--scratch-dir", "/nonexistent/coreheap-scratch"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("scratch directory /nonexistent/coreheap-scratch"),
        "{err}"
    );
    assert!(err.contains("--scratch-dir"), "{err}");
}
