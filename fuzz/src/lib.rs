//! What the fuzz targets share: the sample cores they mutate, the patch format their inputs
//! use, scratch files in memory, and one run of the analysis the way `coreheap maps` and
//! `coreheap info` run it.
//!
//! A patch input is a sample selector byte followed by records `offset: u32 LE, len: u8,
//! bytes`; each record overwrites `len % 32 + 1` bytes of the sample at `offset` taken modulo
//! the target's domain (the whole file, or only some ranges of it). Real cores are tens of
//! MB, so mutating a few places of a valid one reaches far deeper than random files would.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use coreheap::analysis::{Analysis, NoProgress, PlainMemory};
use coreheap::report::heapview::HeapView;
use coreheap::report::info::InfoReport;
use coreheap::report::maps::{MapsInput, MapsOptions, MapsReport};
use coreheap_go::process::{OpenOptions, Process};
use coreheap_go::types::TypeScope;

/// One sample: a decompressed core and its executable.
pub struct Sample {
    /// The core's bytes.
    pub core: Vec<u8>,
    /// The executable's bytes.
    pub exe: Vec<u8>,
}

/// The samples the patch targets mutate: classic maps without allocation headers (Go 1.21),
/// Swiss maps (1.24) and the newest runtime (1.26).
pub const SAMPLES: &[(&str, &str)] = &[
    ("go1.21.13", "zoo"),
    ("go1.24.11", "zoo"),
    ("go1.26.6", "zoo"),
    ("go1.21.13", "ledger"),
    ("go1.26.6", "ledger"),
];

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/cores")
}

fn unzstd(path: &Path) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    zstd::decode_all(f).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The samples, decompressed once per process.
pub fn samples() -> &'static [Sample] {
    static S: OnceLock<Vec<Sample>> = OnceLock::new();
    S.get_or_init(|| {
        // One fuzzer, one core: the analysis' parallel phases run on a single thread.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global();
        SAMPLES
            .iter()
            .map(|(ver, name)| {
                let dir = samples_dir().join(ver).join(name);
                Sample {
                    core: unzstd(&dir.join("core.zst")),
                    exe: unzstd(&dir.join(format!("{name}.zst"))),
                }
            })
            .collect()
    })
}

/// A directory in memory (`/dev/shm` when there is one) private to this process.
pub fn scratch() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        // In fork mode every job is a new process: the directories of ended ones (each
        // holding copies of the samples, in memory) are removed.
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix("coreheap-fuzz-"));
            if pid.is_some_and(|p| !Path::new("/proc").join(p).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let d = base.join(format!("coreheap-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch directory");
        d
    })
}

/// Writes `bytes` to the scratch file `name` and returns its path.
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, bytes).expect("scratch write");
    p
}

/// The sample an input selects, and the rest of the input.
pub fn select(data: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = data.split_first()?;
    Some((first as usize % SAMPLES.len(), rest))
}

/// The places `data`'s patch records write to, each with its bytes: offsets are taken within
/// `domain` (non-empty ranges of a file of `len` bytes, together addressed as one run).
pub fn records<'d>(
    len: usize,
    domain: &[Range<usize>],
    mut data: &'d [u8],
) -> Vec<(usize, &'d [u8])> {
    let total: usize = domain.iter().map(|r| r.len()).sum();
    let mut out = Vec::new();
    while total > 0 && data.len() >= 5 {
        let off = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize % total;
        let n = (data[4] % 32) as usize + 1;
        let bytes = &data[5..data.len().min(5 + n)];
        data = &data[5 + bytes.len()..];
        let (mut r, mut off) = (0, off);
        while off >= domain[r].len() {
            off -= domain[r].len();
            r += 1;
        }
        let at = domain[r].start + off;
        let end = (at + bytes.len()).min(len);
        out.push((at, &bytes[..end - at]));
    }
    out
}

/// A scratch file holding `base` with the patches of `data` applied and, when `keep` is
/// given, cut to that many bytes. The file is written whole once per process; later calls
/// put back what the previous call changed and write only the new patches.
pub fn patched(
    name: &str,
    base: &[u8],
    domain: &[Range<usize>],
    data: &[u8],
    keep: Option<usize>,
) -> PathBuf {
    use std::collections::HashMap;
    use std::os::unix::fs::FileExt;
    use std::sync::Mutex;
    static DIRTY: OnceLock<Mutex<HashMap<String, Vec<Range<usize>>>>> = OnceLock::new();
    let mut dirty = DIRTY
        .get_or_init(Default::default)
        .lock()
        .expect("patch state");
    let path = scratch().join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .open(&path)
        .expect("scratch open");
    let touched = match dirty.get_mut(name) {
        Some(t) => t,
        None => {
            file.write_all_at(base, 0).expect("scratch write");
            dirty.entry(name.to_string()).or_default()
        }
    };
    for r in touched.drain(..) {
        file.write_all_at(&base[r.clone()], r.start as u64)
            .expect("scratch write");
    }
    for (at, bytes) in records(base.len(), domain, data) {
        file.write_all_at(bytes, at as u64).expect("scratch write");
        touched.push(at..at + bytes.len());
    }
    if let Some(keep) = keep.filter(|&k| k < base.len()) {
        file.set_len(keep as u64).expect("scratch cut");
        touched.push(keep..base.len());
    }
    path
}

/// A scratch file holding `base` unchanged, written once per process.
pub fn pristine(name: &str, base: &[u8]) -> PathBuf {
    patched(name, base, &[], &[], None)
}

/// How a run opens its core.
#[derive(Clone, Copy)]
pub struct Run {
    /// Accept an executable whose build id does not match.
    pub force: bool,
    /// Accept a core cut short.
    pub allow_truncated: bool,
}

/// Opens a core with its executable and runs what `maps` and `info` run on it, rendering
/// the reports; errors end the run (they are answers, not findings).
pub fn analyse(core: &Path, exe: &Path, run: Run) -> Option<(Process, Analysis)> {
    let opts = OpenOptions {
        exe: Some(exe.to_path_buf()),
        tmpdir: Some(scratch().to_path_buf()),
        allow_truncated: run.allow_truncated,
        force: run.force,
        ..OpenOptions::default()
    };
    let p = Process::open(core, &opts).ok()?;
    let a = Analysis::run_scoped(&p, &NoProgress, &PlainMemory, TypeScope::TowardMaps).ok()?;
    Some((p, a))
}

/// Renders the `maps` and `info` reports of an analysis.
pub fn report(p: &Process, a: &Analysis) {
    let view = HeapView::new(a);
    let input = MapsInput::of(&p, &view);
    let maps = MapsReport::gather(&input, &MapsOptions::default());
    let _ = maps.to_json();
    let _ = maps.to_table(100);
    if let Ok(info) = InfoReport::gather(p, Some(a)) {
        let _ = info.to_json();
        let _ = info.to_table(100);
    }
}

/// The file ranges of a core that hold its maps: headers and the objects holding their
/// buckets, groups and directories, found by analysing the unharmed core once.
pub fn map_ranges(sample: usize) -> &'static [Range<usize>] {
    static R: OnceLock<Vec<Vec<Range<usize>>>> = OnceLock::new();
    &R.get_or_init(|| {
        (0..SAMPLES.len())
            .map(|i| {
                let s = &samples()[i];
                let core = write(&format!("pristine-{i}.core"), &s.core);
                let exe = write(&format!("pristine-{i}.exe"), &s.exe);
                let run = Run {
                    force: false,
                    allow_truncated: false,
                };
                let (p, a) = analyse(&core, &exe, run).expect("the sample analyses");
                let mut areas = Vec::new();
                for m in &a.maps.maps {
                    areas.push((m.addr.0, m.header_size.max(8)));
                    for &o in &m.storage {
                        let size = a.objects.size_after(o, &std::cell::Cell::new(0));
                        areas.push((a.objects.addr(o).0, size));
                    }
                }
                let mut ranges: Vec<Range<usize>> = areas
                    .iter()
                    .filter_map(|&(addr, len)| {
                        let seg = p.core.segments.iter().find(|g| {
                            addr >= g.vaddr && addr - g.vaddr < g.filesz.min(g.present)
                        })?;
                        let start = (seg.offset + (addr - seg.vaddr)) as usize;
                        let room = seg.filesz.min(seg.present) - (addr - seg.vaddr);
                        Some(start..start + len.min(room) as usize)
                    })
                    .collect();
                ranges.sort_by_key(|r| r.start);
                ranges.dedup_by(|b, a| {
                    // Merge overlapping neighbours (b follows a).
                    if b.start <= a.end {
                        a.end = a.end.max(b.end);
                        true
                    } else {
                        false
                    }
                });
                assert!(!ranges.is_empty(), "sample {i} has maps");
                ranges
            })
            .collect()
    })[sample]
}

/// Which file of a sample a patch target's records change, and where in it.
#[derive(Clone, Copy)]
pub enum Patch {
    /// The executable, anywhere; the run takes it with `--force`.
    Exe,
    /// The core, only where its maps are.
    CoreMaps,
    /// The core, anywhere; a selector byte of 0x80 or more also cuts it short, and the run
    /// takes it with `--allow-truncated`.
    Core,
}

/// One input of a patch target: the sample it selects, patched as `patch` says, analysed and
/// reported.
pub fn run_patched(data: &[u8], patch: Patch) {
    let Some((i, patches)) = select(data) else {
        return;
    };
    let s = &samples()[i];
    let (core, exe) = match patch {
        Patch::Exe => (
            pristine(&format!("core-{i}"), &s.core),
            patched(
                &format!("patched-exe-{i}"),
                &s.exe,
                &[0..s.exe.len()],
                patches,
                None,
            ),
        ),
        Patch::CoreMaps => (
            patched(
                &format!("patched-core-{i}"),
                &s.core,
                map_ranges(i),
                patches,
                None,
            ),
            pristine(&format!("exe-{i}"), &s.exe),
        ),
        Patch::Core => {
            // The cut lies where the patches' length picks.
            let len = s.core.len();
            let keep = (data[0] >= 0x80).then(|| len / 256 * (patches.len() % 256));
            (
                patched(
                    &format!("patched-core-{i}"),
                    &s.core,
                    &[0..len],
                    patches,
                    keep,
                ),
                pristine(&format!("exe-{i}"), &s.exe),
            )
        }
    };
    let run = Run {
        force: matches!(patch, Patch::Exe),
        allow_truncated: matches!(patch, Patch::Core),
    };
    if let Some((p, a)) = analyse(&core, &exe, run) {
        report(&p, &a);
    }
}
