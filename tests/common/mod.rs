//! Helpers shared by the integration tests: the committed sample cores and their ground truth.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One committed sample: a core, its executable beside it, and what the program measured.
#[derive(Debug)]
pub struct Sample {
    /// `go1.26.6-pie/ledger`.
    pub name: String,
    /// Directory holding the files.
    pub dir: PathBuf,
    /// The compressed core.
    pub core: PathBuf,
    /// truth.json, as written by the program.
    pub truth: Value,
    /// memstats.json, as written by the program after its last GC.
    pub memstats: Value,
}

impl Sample {
    /// The program name (`ledger`, `zoo`, `tiny`).
    pub fn program(&self) -> &str {
        self.truth["program"].as_str().unwrap_or("")
    }

    /// The compressed executable beside the core.
    pub fn exe(&self) -> PathBuf {
        self.dir.join(format!("{}.zst", self.program()))
    }

    /// The Go release the program reported (`go1.24.11`), without experiments.
    pub fn go_release(&self) -> String {
        let v = self.truth["go_version"].as_str().unwrap_or("");
        v.split_whitespace().next().unwrap_or("").to_string()
    }

    /// (major, minor) of the release.
    pub fn minor(&self) -> u32 {
        let r = self.go_release();
        r.trim_start_matches("go1.")
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }

    /// Whether the sample was built with an experiment named in its directory.
    pub fn variant(&self) -> &str {
        let dir = self.name.split('/').next().unwrap_or("");
        dir.split_once('-').map(|(_, v)| v).unwrap_or("")
    }
}

/// The samples directory of the repository.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/cores")
}

/// Every committed sample with a core and truth, sorted by name.
pub fn samples() -> Vec<Sample> {
    let mut out = Vec::new();
    let Ok(versions) = std::fs::read_dir(samples_dir()) else {
        return out;
    };
    for v in versions.flatten() {
        let Ok(progs) = std::fs::read_dir(v.path()) else {
            continue;
        };
        for p in progs.flatten() {
            let dir = p.path();
            let core = dir.join("core.zst");
            let truth = dir.join("truth.json");
            if !core.is_file() || !truth.is_file() {
                continue;
            }
            let read = |f: &Path| -> Value {
                std::fs::read_to_string(f)
                    .ok()
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or(Value::Null)
            };
            out.push(Sample {
                name: format!(
                    "{}/{}",
                    v.file_name().to_string_lossy(),
                    p.file_name().to_string_lossy()
                ),
                truth: read(&truth),
                memstats: read(&dir.join("memstats.json")),
                core,
                dir,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The sample with this name; panics with a clear message when it is missing.
pub fn sample(name: &str) -> Sample {
    samples()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("sample {name} is not in samples/cores (run make samples)"))
}

/// Decompresses a zstd file into memory.
pub fn unzstd(path: &Path) -> Vec<u8> {
    let f = std::fs::File::open(path).expect("open");
    zstd::stream::decode_all(f).expect("decompress")
}

/// Runs the `coreheap` binary with these arguments, requires success, and returns its stdout.
pub fn coreheap_stdout<I, A>(args: I) -> String
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let out = assert_cmd::Command::cargo_bin("coreheap")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The maps report as `coreheap maps` makes it (types inferred only toward maps).
pub fn maps_report(
    s: &Sample,
    opts: &coreheap::report::maps::MapsOptions,
) -> coreheap::report::maps::MapsReport {
    maps_report_scoped(s, opts, coreheap::types::TypeScope::TowardMaps)
}

/// The maps report with types inferred in `scope`.
pub fn maps_report_scoped(
    s: &Sample,
    opts: &coreheap::report::maps::MapsOptions,
    scope: coreheap::types::TypeScope,
) -> coreheap::report::maps::MapsReport {
    use coreheap::process::{OpenOptions, Process};
    let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
    let a = coreheap::analysis::Analysis::run_scoped(&p, &coreheap::analysis::NoProgress, scope)
        .unwrap();
    let view = coreheap::report::heapview::HeapView::new(&a);
    let input = coreheap::report::maps::MapsInput {
        view: &view,
        dwarf: &p.dwarf,
        mem: &p.mem,
        go_version: p.exe.buildinfo.release(),
        code: Some((&p.symbols, p.bias, p.exe.file.bytes())),
    };
    coreheap::report::maps::MapsReport::gather(&input, opts)
}
