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

/// Runs `coreheap maps --format json --timings` on the ledger sample with `args` and `env`
/// (blocks from 64 KiB count as large, so this small core's tables can go to scratch files) and
/// checks: the same report as a plain run, some bytes in scratch files, nothing left in `dir`.
/// Returns stderr.
fn check_scratch_run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let s = sample("go1.26.6/ledger");
    let (code, plain, _) = maps(&s.core, &["--format", "json"], &[]);
    assert_eq!(code, 0);
    let mut all = vec!["--format", "json", "--timings"];
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    env.push(("COREHEAP_SCRATCH_MIN_BYTES", "65536"));
    let (code, out, err) = maps(&s.core, &all, &env);
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
        std::fs::read_dir(dir).unwrap().count(),
        0,
        "scratch files were left behind"
    );
    err
}

#[test]
fn tables_in_scratch_files_give_the_same_report_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().to_str().unwrap();
    check_scratch_run(dir.path(), &["--scratch-dir", scratch], &[]);
}

#[test]
fn tables_go_to_scratch_files_on_their_own_when_memory_is_short() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().to_str().unwrap();
    // 1000 bytes available: any heap's tables are over the estimate.
    let err = check_scratch_run(
        dir.path(),
        &["--tmpdir", tmp],
        &[("COREHEAP_MEM_AVAILABLE", "1000")],
    );
    assert!(
        err.contains(&format!("large tables go to scratch files in {tmp}")),
        "{err}"
    );

    // With memory to spare, nothing goes there.
    let s = sample("go1.26.6/ledger");
    let (code, _, err) = maps(&s.core, &["--timings", "--tmpdir", tmp], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("scratch"), "{err}");
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
