//! A crashed Go process: the core, the executable that matches it, its DWARF and its memory.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::core::{CoreError, CoreFile};
use crate::dwarf::{Dwarf, DwarfError};
use crate::exe::{build_ids_in_image, BuildIds, ExeError, ExeFile, Symbols};
use crate::input::{self, InputError, Magic};
use crate::memory::{Addr, Memory};

/// How to open a core.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The executable, overriding discovery.
    pub exe: Option<PathBuf>,
    /// A separate file holding the DWARF.
    pub debug_file: Option<PathBuf>,
    /// Directory that recorded absolute paths are looked up under.
    pub sysroot: Option<PathBuf>,
    /// Where decompressed copies go.
    pub tmpdir: Option<PathBuf>,
    /// Accept a core cut short.
    pub allow_truncated: bool,
    /// Accept an executable whose build id differs from the core's.
    pub force: bool,
}

/// Errors opening a process.
#[derive(Debug, Error)]
pub enum OpenError {
    /// Reading or decompressing a file failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The core is unusable.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The executable is unusable.
    #[error(transparent)]
    Exe(#[from] ExeError),
    /// The DWARF is unusable.
    #[error(transparent)]
    Dwarf(#[from] DwarfError),
    /// No executable could be found.
    #[error("cannot find the executable for {core}: {tried}. Give it with --exe PATH (or --sysroot DIR if the recorded path lives under another root)")]
    ExeNotFound {
        /// The core.
        core: PathBuf,
        /// What was tried.
        tried: String,
    },
    /// The executable is not the one that produced the core.
    #[error("{exe} is not the program that wrote {core}: the core's build id is {core_id}, the executable's is {exe_id}. Give the exact binary that crashed with --exe, or --force to read it anyway (results may be wrong)")]
    Mismatch {
        /// The core.
        core: PathBuf,
        /// The executable.
        exe: PathBuf,
        /// Build id in the core.
        core_id: String,
        /// Build id of the executable.
        exe_id: String,
    },
    /// Architectures differ.
    #[error("{exe} is built for {exe_arch} but the core is from {core_arch}: give the matching binary with --exe")]
    ArchMismatch {
        /// The executable.
        exe: PathBuf,
        /// Its GOARCH.
        exe_arch: &'static str,
        /// The core's.
        core_arch: &'static str,
    },
}

/// How the executable was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    /// Given with --exe.
    Flag,
    /// The path in the core's NT_FILE note.
    FileNote,
    /// The NT_FILE path under --sysroot.
    Sysroot,
    /// A file beside the core with the same build id.
    BesideCore,
}

impl FoundBy {
    /// A short description.
    pub fn describe(self) -> &'static str {
        match self {
            FoundBy::Flag => "--exe",
            FoundBy::FileNote => "path recorded in the core",
            FoundBy::Sysroot => "recorded path under --sysroot",
            FoundBy::BesideCore => "file beside the core with the same build id",
        }
    }
}

/// Whether the executable was checked against the core, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryCheck {
    /// Build ids match.
    BuildId,
    /// Read-only bytes dumped in the core equal the executable's.
    SegmentBytes,
    /// Ids differ; accepted because of --force.
    ForcedMismatch,
    /// Nothing in the core could be compared.
    Unverified,
}

impl BinaryCheck {
    /// Whether the binary is known to match.
    pub fn matches(&self) -> bool {
        matches!(self, BinaryCheck::BuildId | BinaryCheck::SegmentBytes)
    }
}

/// An opened crashed process.
pub struct Process {
    /// The core.
    pub core: CoreFile,
    /// The executable.
    pub exe: ExeFile,
    /// How the executable was found.
    pub found_by: FoundBy,
    /// How it was checked.
    pub check: BinaryCheck,
    /// Build ids as the core holds them.
    pub core_ids: BuildIds,
    /// Load bias: runtime address minus link-time address.
    pub bias: u64,
    /// The executable's DWARF.
    pub dwarf: Dwarf,
    /// Process memory.
    pub mem: Memory,
    /// The executable's symbols.
    pub symbols: Symbols,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("core", &self.core)
            .field("exe", &self.exe)
            .finish()
    }
}

/// Where the main executable sits in the core's address space, and its path if recorded.
fn main_image(core: &CoreFile) -> (Option<u64>, Option<String>) {
    let entry = core.auxv.entry;
    let by_entry = entry.and_then(|e| core.files.iter().find(|f| e >= f.start && e < f.end));
    if let Some(f) = by_entry {
        let base = core
            .files
            .iter()
            .filter(|g| g.path == f.path && g.offset == 0)
            .map(|g| g.start)
            .min();
        return (base, Some(f.path.clone()));
    }
    // No NT_FILE (qemu): the program headers sit in the image's first page.
    let page = core.auxv.pagesz.unwrap_or(4096).max(4096);
    (core.auxv.phdr.map(|p| p & !(page - 1)), None)
}

/// Build ids of the main executable as its first page was dumped into the core.
fn core_build_ids(core: &CoreFile, base: Option<u64>) -> BuildIds {
    let Some(base) = base else {
        return BuildIds::default();
    };
    let mem = Memory::new(core, None, 0);
    build_ids_in_image(&|off, len| {
        mem.read_core_only(Addr(base.wrapping_add(off)), len)
            .map(|b| b.to_vec())
    })
}

fn tmpdir(opts: &OpenOptions) -> PathBuf {
    opts.tmpdir.clone().unwrap_or_else(std::env::temp_dir)
}

fn open_exe(path: &Path, opts: &OpenOptions) -> Result<ExeFile, OpenError> {
    let m = input::open(path, &tmpdir(opts))?;
    Ok(ExeFile::parse(m)?)
}

/// Compares build ids; `None` when either side has none of the same kind.
fn ids_match(core: &BuildIds, exe: &BuildIds) -> Option<bool> {
    if let (Some(a), Some(b)) = (&core.go, &exe.go) {
        return Some(a == b);
    }
    if let (Some(a), Some(b)) = (&core.gnu, &exe.gnu) {
        return Some(a == b);
    }
    None
}

fn load_bias(core: &CoreFile, exe: &ExeFile, image_base: Option<u64>) -> u64 {
    if !exe.pie {
        return 0;
    }
    if let Some(e) = core.auxv.entry {
        return e.wrapping_sub(exe.entry);
    }
    match (image_base, exe.image_base()) {
        (Some(a), Some(b)) => a.wrapping_sub(b),
        _ => 0,
    }
}

/// Compares the core's dumped bytes with the executable's read-only segments.
fn segment_bytes_match(core: &CoreFile, exe: &ExeFile, bias: u64) -> Option<bool> {
    let mem = Memory::new(core, None, 0);
    let mut compared = false;
    for s in exe.segments.iter().filter(|s| s.flags & 2 == 0) {
        let start = s.vaddr.wrapping_add(bias);
        let len = s.filesz.min(4096) as usize;
        if let (Some(c), Some(e)) = (
            mem.read_core_only(Addr(start), len),
            exe.read_at(s.vaddr, len),
        ) {
            if c != e {
                return Some(false);
            }
            compared = true;
        }
    }
    compared.then_some(true)
}

/// Files beside the core that could be its executable.
fn beside_core(core: &Path) -> Vec<PathBuf> {
    let dir = core
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name() != core.file_name())
        .filter(|p| {
            matches!(
                input::read_head(p, 8).map(|h| input::sniff(&h)),
                Ok(Magic::Elf | Magic::Compressed(_))
            )
        })
        .collect();
    v.sort();
    v
}

impl Process {
    /// Opens a core, finds and checks its executable, and loads the DWARF.
    pub fn open(core_path: &Path, opts: &OpenOptions) -> Result<Process, OpenError> {
        let core_file = input::open(core_path, &tmpdir(opts))?;
        let core = CoreFile::parse(core_file, opts.allow_truncated)?;
        let (image_base, recorded) = main_image(&core);
        let core_ids = core_build_ids(&core, image_base);

        let mut candidates: Vec<(PathBuf, FoundBy)> = Vec::new();
        let mut tried: Vec<String> = Vec::new();
        if let Some(p) = &opts.exe {
            candidates.push((p.clone(), FoundBy::Flag));
        } else {
            if let Some(r) = &recorded {
                if let Some(root) = &opts.sysroot {
                    candidates.push((root.join(r.trim_start_matches('/')), FoundBy::Sysroot));
                }
                candidates.push((PathBuf::from(r), FoundBy::FileNote));
            } else {
                tried.push("the core has no NT_FILE note naming the program".into());
            }
            for p in beside_core(core_path) {
                candidates.push((p, FoundBy::BesideCore));
            }
        }

        let mut first_mismatch: Option<(ExeFile, FoundBy)> = None;
        let mut chosen: Option<(ExeFile, FoundBy, BinaryCheck)> = None;
        for (path, how) in candidates {
            if how != FoundBy::Flag && !path.is_file() {
                tried.push(format!("{} (not found)", path.display()));
                continue;
            }
            let exe = match open_exe(&path, opts) {
                Ok(e) => e,
                Err(e) if how == FoundBy::Flag => return Err(e),
                Err(_) => {
                    tried.push(format!("{} (not a Go executable)", path.display()));
                    continue;
                }
            };
            if exe.arch != core.arch {
                if how == FoundBy::Flag {
                    return Err(OpenError::ArchMismatch {
                        exe: path,
                        exe_arch: exe.arch.goarch(),
                        core_arch: core.arch.goarch(),
                    });
                }
                tried.push(format!("{} (other architecture)", path.display()));
                continue;
            }
            let bias = load_bias(&core, &exe, image_base);
            let verdict = match ids_match(&core_ids, &exe.build_ids()) {
                Some(true) => Some(BinaryCheck::BuildId),
                Some(false) => None,
                None => match segment_bytes_match(&core, &exe, bias) {
                    Some(true) => Some(BinaryCheck::SegmentBytes),
                    Some(false) => None,
                    None => Some(BinaryCheck::Unverified),
                },
            };
            match verdict {
                Some(check) => {
                    chosen = Some((exe, how, check));
                    break;
                }
                None => {
                    tried.push(format!("{} (build id differs)", path.display()));
                    if first_mismatch.is_none() {
                        first_mismatch = Some((exe, how));
                    }
                }
            }
        }
        let (exe, found_by, check) = match (chosen, first_mismatch) {
            (Some(c), _) => c,
            (None, Some((exe, how))) if opts.force => (exe, how, BinaryCheck::ForcedMismatch),
            (None, Some((exe, _))) => {
                return Err(OpenError::Mismatch {
                    core: core_path.to_path_buf(),
                    exe: exe.file.path.clone(),
                    core_id: core_ids.primary().unwrap_or("unknown").to_string(),
                    exe_id: exe.build_ids().primary().unwrap_or("unknown").to_string(),
                });
            }
            (None, None) => {
                if tried.is_empty() {
                    tried.push("no candidate files".into());
                }
                return Err(OpenError::ExeNotFound {
                    core: core_path.to_path_buf(),
                    tried: tried.join("; "),
                });
            }
        };
        let bias = load_bias(&core, &exe, image_base);
        let dwarf = match &opts.debug_file {
            Some(p) => {
                let m = input::open(p, &tmpdir(opts))?;
                Dwarf::load(m.bytes(), p)?
            }
            None => Dwarf::load(exe.file.bytes(), &exe.file.path)?,
        };
        let mem = Memory::new(&core, Some(&exe), bias);
        let symbols = exe.symbols();
        Ok(Process {
            core,
            exe,
            found_by,
            check,
            core_ids,
            bias,
            dwarf,
            mem,
            symbols,
        })
    }
}
