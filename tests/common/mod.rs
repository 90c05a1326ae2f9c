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

/// Every committed sample directory holding a core, as (`go1.26.6/tiny`, directory), sorted.
fn sample_dirs() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(versions) = std::fs::read_dir(samples_dir()) else {
        return out;
    };
    for v in versions.flatten() {
        let Ok(progs) = std::fs::read_dir(v.path()) else {
            continue;
        };
        for p in progs.flatten() {
            if p.path().join("core.zst").is_file() {
                let name = format!(
                    "{}/{}",
                    v.file_name().to_string_lossy(),
                    p.file_name().to_string_lossy()
                );
                out.push((name, p.path()));
            }
        }
    }
    out.sort();
    out
}

/// A JSON file, or null when it is missing or unreadable.
fn read_json(f: &Path) -> Value {
    std::fs::read_to_string(f)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// Every committed sample with a core and truth, sorted by name.
pub fn samples() -> Vec<Sample> {
    sample_dirs()
        .into_iter()
        .filter(|(_, dir)| dir.join("truth.json").is_file())
        .map(|(name, dir)| Sample {
            name,
            truth: read_json(&dir.join("truth.json")),
            memstats: read_json(&dir.join("memstats.json")),
            core: dir.join("core.zst"),
            dir,
        })
        .collect()
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
    maps_report_scoped(s, opts, coreheap_go::types::TypeScope::TowardMaps)
}

/// The maps report with types inferred in `scope`.
pub fn maps_report_scoped(
    s: &Sample,
    opts: &coreheap::report::maps::MapsOptions,
    scope: coreheap_go::types::TypeScope,
) -> coreheap::report::maps::MapsReport {
    use coreheap_go::process::{OpenOptions, Process};
    let p = Process::open(&s.core, &OpenOptions::default()).unwrap();
    let a = coreheap::analysis::Analysis::run_scoped(
        &p,
        &coreheap::analysis::NoProgress,
        &coreheap::analysis::PlainMemory,
        scope,
    )
    .unwrap();
    let view = coreheap::report::heapview::HeapView::new(&a);
    let input = coreheap::report::maps::MapsInput::of(&p, &view);
    coreheap::report::maps::MapsReport::gather(&input, opts)
}

/// A committed core with the stderr its program printed (every sample, panicky included).
#[derive(Debug)]
pub struct CrashSample {
    /// `go1.26.6/panicky`.
    pub name: String,
    /// Directory holding the files.
    pub dir: PathBuf,
    /// The compressed core.
    pub core: PathBuf,
    /// traceback.txt: what the Go runtime printed as the program died.
    pub traceback: String,
    /// meta.json: how the sample was built and run.
    pub meta: Value,
}

/// Every committed sample with a core and a traceback, sorted by name.
pub fn crash_samples() -> Vec<CrashSample> {
    sample_dirs()
        .into_iter()
        .filter_map(|(name, dir)| {
            let traceback = std::fs::read_to_string(dir.join("traceback.txt")).ok()?;
            Some(CrashSample {
                name,
                core: dir.join("core.zst"),
                meta: read_json(&dir.join("meta.json")),
                traceback,
                dir,
            })
        })
        .collect()
}

/// A frame of a Go traceback: function, file, line.
pub type TraceFrame = (String, String, u32);

/// The first goroutine a Go traceback lists (the crashing one, `[running]`): its id and its
/// frames as (function, file, line), `created by` left out.
pub fn first_goroutine(traceback: &str) -> Option<(u64, Vec<TraceFrame>)> {
    let mut lines = traceback.lines();
    let header = lines.find(|l| l.starts_with("goroutine "))?;
    assert!(header.ends_with("[running]:"), "{header}");
    let id = header.split_whitespace().nth(1)?.parse().ok()?;
    let mut frames = Vec::new();
    let mut func: Option<String> = None;
    for l in lines {
        if l.is_empty() {
            break;
        }
        if let Some(pos) = l.strip_prefix('\t') {
            let Some(f) = func.take() else { continue };
            let loc = pos.split_whitespace().next()?;
            let (file, line) = loc.rsplit_once(':')?;
            frames.push((f, file.to_string(), line.parse().ok()?));
        } else if l.starts_with("created by ") {
            func = None;
        } else {
            // `name(args)`: cut at the argument list's opening parenthesis.
            let name = match l.rfind('(') {
                Some(i) => &l[..i],
                None => l,
            };
            func = Some(name.to_string());
        }
    }
    Some((id, frames))
}

/// A JSON Schema of docs/schema (`maps-v1.json`).
pub fn schema(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/schema")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Asserts that `v` has every field `schema` (an object's schema) requires.
pub fn has_required(v: &Value, schema: &Value, what: &str) {
    for k in schema["required"].as_array().unwrap() {
        let k = k.as_str().unwrap();
        assert!(v.get(k).is_some(), "{what}: no {k}");
    }
}

/// Runs coreheap with `args` and `--format FORMAT -o FILE`, requiring success.
pub fn coreheap_to_file(args: &[std::ffi::OsString], format: &str, file: &Path) {
    let out = assert_cmd::Command::cargo_bin("coreheap")
        .unwrap()
        .args(args)
        .args(["--format", format, "-o"])
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Arguments: `command` on a sample's core with its executable, then `extra`.
pub fn sample_args(command: &str, s: &Sample, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec![command.into(), s.core.clone().into()];
    v.extend(["--exe".into(), s.exe().into()]);
    v.extend(extra.iter().map(Into::into));
    v
}
