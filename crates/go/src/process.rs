//! A crashed Go process: the core, the executable that matches it, its DWARF and its memory.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::core::{CoreError, CoreFile};
use crate::dwarf::{Dwarf, DwarfError};
use crate::exe::{
    build_ids_in_image, elf_probe, BuildIds, ExeError, ExeFile, ExeSegment, ProbeError, Symbols,
};
use crate::input::{self, Head, InputError, Magic, NoReadProgress, ReadProgress};
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
    /// Most bytes a compressed input may decompress to (default: the size its ELF headers
    /// give).
    pub max_decompressed: Option<u64>,
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
    #[error("{}", not_found_message(.core, .core_id.as_deref(), *.recorded_missing, *.force_unused, .rejected))]
    ExeNotFound {
        /// The core.
        core: PathBuf,
        /// The core's build id, when it holds one.
        core_id: Option<String>,
        /// Whether the path the core records for its program does not exist here.
        recorded_missing: bool,
        /// Whether --force was given but found only other builds beside the core, which it
        /// does not take.
        force_unused: bool,
        /// Each candidate tried, with why it was not taken (`name: reason`).
        rejected: Vec<String>,
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

/// Rejected candidates listed in full in the error; the rest are counted.
const REJECTED_SHOWN: usize = 10;

/// The message of [`OpenError::ExeNotFound`]: one line with the fix, then one line per
/// candidate with why it was not taken.
fn not_found_message(
    core: &Path,
    core_id: Option<&str>,
    recorded_missing: bool,
    force_unused: bool,
    rejected: &[String],
) -> String {
    let id = match core_id {
        Some(id) => format!(" (build id {id})"),
        None => String::new(),
    };
    let sysroot = if recorded_missing {
        ", or --sysroot DIR if the path the core records lives under another root"
    } else {
        ""
    };
    let mut msg = format!(
        "no executable matches {}{id}: give the program that crashed with --exe PATH{sysroot}",
        core.display()
    );
    if force_unused {
        msg.push_str(" (--force takes another build only when given with --exe)");
    }
    if rejected.is_empty() {
        msg.push_str(" (the core names no program and no ELF or compressed file lies beside it)");
    }
    for r in rejected.iter().take(REJECTED_SHOWN) {
        msg.push_str("\n  ");
        msg.push_str(r);
    }
    if rejected.len() > REJECTED_SHOWN {
        msg.push_str(&format!("\n  and {} more", rejected.len() - REJECTED_SHOWN));
    }
    msg
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

fn unpack(opts: &OpenOptions) -> input::Unpack {
    input::Unpack {
        tmpdir: opts.tmpdir.clone().unwrap_or_else(std::env::temp_dir),
        max_bytes: opts.max_decompressed,
    }
}

fn open_exe(
    path: &Path,
    opts: &OpenOptions,
    progress: &dyn ReadProgress,
) -> Result<ExeFile, OpenError> {
    let m = input::open_with_progress(path, &unpack(opts), progress)?;
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

/// Runtime address minus link-time address of a (PIE) executable with this entry point and
/// image base.
fn load_bias(
    core: &CoreFile,
    pie: bool,
    entry: u64,
    exe_base: Option<u64>,
    image_base: Option<u64>,
) -> u64 {
    if !pie {
        return 0;
    }
    if let Some(e) = core.auxv.entry {
        return e.wrapping_sub(entry);
    }
    match (image_base, exe_base) {
        (Some(a), Some(b)) => a.wrapping_sub(b),
        _ => 0,
    }
}

/// Compares the core's dumped bytes with the start of each of the executable's read-only
/// segments, fetched by `exe_bytes(file offset, length)`.
fn segment_bytes_match(
    core: &CoreFile,
    segments: &[ExeSegment],
    bias: u64,
    exe_bytes: &mut dyn FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Option<bool> {
    let mem = Memory::new(core, None, 0);
    let mut compared = false;
    for s in segments.iter().filter(|s| s.flags & 2 == 0) {
        let start = s.vaddr.wrapping_add(bias);
        let len = s.filesz.min(4096) as usize;
        let Some(c) = mem.read_core_only(Addr(start), len) else {
            continue;
        };
        if let Some(e) = exe_bytes(s.offset, len) {
            if c != e.as_slice() {
                return Some(false);
            }
            compared = true;
        }
    }
    compared.then_some(true)
}

/// How an executable compares with the core: `None` when it is another build.
fn check_binary(
    core: &CoreFile,
    core_ids: &BuildIds,
    exe_ids: &BuildIds,
    segments: &[ExeSegment],
    bias: u64,
    exe_bytes: &mut dyn FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Option<BinaryCheck> {
    match ids_match(core_ids, exe_ids) {
        Some(true) => Some(BinaryCheck::BuildId),
        Some(false) => None,
        None => match segment_bytes_match(core, segments, bias, exe_bytes) {
            Some(true) => Some(BinaryCheck::SegmentBytes),
            Some(false) => None,
            None => Some(BinaryCheck::Unverified),
        },
    }
}

/// A build id shortened for a list: `746M…/VXmR…` (Go's first and last parts), `1f3a9c0d…` (GNU).
fn short_id(id: &str) -> String {
    let head = |s: &str| s.chars().take(4).collect::<String>();
    match (id.split('/').next(), id.rsplit('/').next()) {
        (Some(first), Some(last)) if id.contains('/') => {
            format!("{}…/{}…", head(first), head(last))
        }
        _ => format!("{}…", id.chars().take(8).collect::<String>()),
    }
}

/// Decompressed bytes of a candidate read to compare it with the core: enough for its headers
/// and notes, and for the first page of its read-only segments when the core has no build id.
const PROBE_LIMIT: usize = 16 << 20;

/// Compares a candidate with the core from the start of its file only; `Err` says why it is not
/// the core's executable, and whether it is another build of a program (which --force may
/// accept) rather than no program at all.
fn probe_candidate(
    path: &Path,
    core: &CoreFile,
    core_ids: &BuildIds,
    image_base: Option<u64>,
) -> Result<BinaryCheck, (String, bool)> {
    let unusable = |why: String| (why, false);
    let mut head = Head::open(path, PROBE_LIMIT).map_err(|e| unusable(probe_reason(e.into())))?;
    let probe = elf_probe(&mut head).map_err(|e| unusable(probe_reason(e)))?;
    match probe.e_type {
        object::elf::ET_CORE => return Err(unusable("a core, not an executable".into())),
        object::elf::ET_EXEC | object::elf::ET_DYN => {}
        t => {
            return Err(unusable(format!(
                "an ELF {}",
                crate::core::elf_type_name(t)
            )))
        }
    }
    match probe.arch {
        Some(a) if a == core.arch => {}
        other => {
            return Err(unusable(format!(
                "built for {}, the core is {}",
                other.map_or("another architecture", |a| a.goarch()),
                core.arch.goarch()
            )))
        }
    }
    let pie = probe.e_type == object::elf::ET_DYN;
    let bias = load_bias(core, pie, probe.entry, probe.image_base(), image_base);
    let mut read = |off: u64, len: usize| head.get(off, len).ok().flatten().map(<[u8]>::to_vec);
    match check_binary(
        core,
        core_ids,
        &probe.build_ids,
        &probe.segments,
        bias,
        &mut read,
    ) {
        Some(check) => Ok(check),
        None => Err((
            match probe.build_ids.primary() {
                Some(id) if ids_match(core_ids, &probe.build_ids).is_some() => {
                    format!("build id {} differs", short_id(id))
                }
                _ => "its read-only bytes differ from the core's".into(),
            },
            true,
        )),
    }
}

/// Why a candidate could not be probed, in a few words.
fn probe_reason(e: ProbeError) -> String {
    match e {
        ProbeError::Input(InputError::Decompress { format, .. }) => {
            format!("looks {format}-compressed but does not decompress")
        }
        ProbeError::Input(InputError::Io { source, .. }) => format!("cannot be read: {source}"),
        other => other.to_string(),
    }
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

/// Finds the executable without --exe: the path the core records (under --sysroot first), then
/// the files beside the core. Each candidate is compared with the core from the start of its
/// file only; none is decompressed whole.
fn discover(
    core_path: &Path,
    core: &CoreFile,
    core_ids: &BuildIds,
    image_base: Option<u64>,
    recorded: Option<&str>,
    opts: &OpenOptions,
) -> Result<(PathBuf, FoundBy, BinaryCheck), OpenError> {
    let mut candidates: Vec<(PathBuf, FoundBy)> = Vec::new();
    if let Some(r) = recorded {
        if let Some(root) = &opts.sysroot {
            candidates.push((root.join(r.trim_start_matches('/')), FoundBy::Sysroot));
        }
        candidates.push((PathBuf::from(r), FoundBy::FileNote));
    }
    let named: Vec<PathBuf> = candidates
        .iter()
        .filter_map(|(p, _)| p.canonicalize().ok())
        .collect();
    candidates.extend(
        beside_core(core_path)
            .into_iter()
            .filter(|p| p.canonicalize().map_or(true, |c| !named.contains(&c)))
            .map(|p| (p, FoundBy::BesideCore)),
    );
    let mut rejected = Vec::new();
    let mut recorded_missing = false;
    let mut forced: Option<(PathBuf, FoundBy)> = None;
    let mut force_unused = false;
    for (path, how) in candidates {
        let label = match how {
            FoundBy::BesideCore => path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
            _ => format!("{} (recorded in the core)", path.display()),
        };
        if how != FoundBy::BesideCore && !path.is_file() {
            recorded_missing = true;
            rejected.push((0, format!("{label}: not found")));
            continue;
        }
        match probe_candidate(&path, core, core_ids, image_base) {
            Ok(BinaryCheck::Unverified) if how == FoundBy::BesideCore => {
                let why = match (&core_ids.go, &core_ids.gnu) {
                    (Some(_), _) => "it has no Go build id to compare with the core's",
                    (None, Some(_)) => "it has no GNU build id to compare with the core's",
                    (None, None) => "nothing to compare: the core holds no build id",
                };
                rejected.push((2, format!("{label}: {why}")));
            }
            Ok(check) => return Ok((path, how, check)),
            Err((why, another_build)) => {
                // --force takes another build only from the path the core records, never a
                // stranger that happens to lie beside the core.
                if another_build && opts.force {
                    if how == FoundBy::BesideCore {
                        force_unused = true;
                    } else if forced.is_none() {
                        forced = Some((path.clone(), how));
                    }
                }
                // Other builds of a program come first: the likeliest near misses.
                let rank = if how != FoundBy::BesideCore {
                    0
                } else if another_build {
                    1
                } else {
                    2
                };
                rejected.push((rank, format!("{label}: {why}")));
            }
        }
    }
    if let Some((path, how)) = forced {
        return Ok((path, how, BinaryCheck::ForcedMismatch));
    }
    rejected.sort_by_key(|(rank, _)| *rank);
    Err(OpenError::ExeNotFound {
        core: core_path.to_path_buf(),
        core_id: core_ids.primary().map(str::to_string),
        recorded_missing,
        force_unused,
        rejected: rejected.into_iter().map(|(_, line)| line).collect(),
    })
}

impl Process {
    /// Opens a core, finds and checks its executable, and loads the DWARF.
    pub fn open(core_path: &Path, opts: &OpenOptions) -> Result<Process, OpenError> {
        Process::open_with_progress(core_path, opts, &NoReadProgress)
    }

    /// [`Process::open`], telling `progress` how far the decompression of a compressed core
    /// or executable has gone.
    pub fn open_with_progress(
        core_path: &Path,
        opts: &OpenOptions,
        progress: &dyn ReadProgress,
    ) -> Result<Process, OpenError> {
        let core_file = input::open_with_progress(core_path, &unpack(opts), progress)?;
        let core = CoreFile::parse(core_file, opts.allow_truncated)?;
        let (image_base, recorded) = main_image(&core);
        let core_ids = core_build_ids(&core, image_base);

        let (exe, found_by, check) = match &opts.exe {
            Some(path) => {
                let exe = open_exe(path, opts, progress)?;
                if exe.arch != core.arch {
                    return Err(OpenError::ArchMismatch {
                        exe: path.clone(),
                        exe_arch: exe.arch.goarch(),
                        core_arch: core.arch.goarch(),
                    });
                }
                let bias = load_bias(&core, exe.pie, exe.entry, exe.image_base(), image_base);
                let bytes = exe.file.bytes();
                let mut read = |off: u64, len: usize| {
                    let off = usize::try_from(off).ok()?;
                    bytes.get(off..off.checked_add(len)?).map(<[u8]>::to_vec)
                };
                let check = check_binary(
                    &core,
                    &core_ids,
                    &exe.build_ids(),
                    &exe.segments,
                    bias,
                    &mut read,
                );
                let check = match check {
                    Some(c) => c,
                    None if opts.force => BinaryCheck::ForcedMismatch,
                    None => {
                        return Err(OpenError::Mismatch {
                            core: core_path.to_path_buf(),
                            exe: path.clone(),
                            core_id: core_ids.primary().unwrap_or("unknown").to_string(),
                            exe_id: exe.build_ids().primary().unwrap_or("unknown").to_string(),
                        })
                    }
                };
                (exe, FoundBy::Flag, check)
            }
            None => {
                let (path, how, check) = discover(
                    core_path,
                    &core,
                    &core_ids,
                    image_base,
                    recorded.as_deref(),
                    opts,
                )?;
                (open_exe(&path, opts, progress)?, how, check)
            }
        };
        let bias = load_bias(&core, exe.pie, exe.entry, exe.image_base(), image_base);
        let dwarf = match &opts.debug_file {
            Some(p) => {
                let m = input::open_with_progress(p, &unpack(opts), progress)?;
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
