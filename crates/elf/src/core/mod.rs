//! The ELF core file: its segments, threads and notes, read straight out of the mapped file.

mod notes;

use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;
use thiserror::Error;

use crate::input::{Magic, Mapped};
pub use notes::{Auxv, MappedFile, PsInfo, SigInfo, Thread};

/// CPU architectures whose cores coreheap reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64 (Go's amd64).
    Amd64,
    /// AArch64 (Go's arm64).
    Arm64,
}

impl Arch {
    /// Go's name for the architecture.
    pub fn goarch(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Architecture of an ELF `e_machine`, if supported.
    pub fn from_machine(machine: u16) -> Option<Arch> {
        match machine {
            elf::EM_X86_64 => Some(Arch::Amd64),
            elf::EM_AARCH64 => Some(Arch::Arm64),
            _ => None,
        }
    }
}

/// Errors in reading the core file itself.
#[derive(Debug, Error)]
pub enum CoreError {
    /// The file is empty.
    #[error("{0} is empty: the core was not written (check `ulimit -c` and the disk space where cores go)")]
    Empty(PathBuf),
    /// The file is not ELF and not a known compression format.
    #[error("{0} is not an ELF core dump (nor zstd, xz, gzip or lz4 compressed): give the core file that the kernel, gcore or systemd-coredump wrote")]
    NotElf(PathBuf),
    /// The file is compressed in a format coreheap does not read.
    #[error("{path} is compressed with {format}, which coreheap does not read: decompress it first (`{}`) and give the result, or recompress it with zstd, xz, gzip or lz4", unpack_command(format, path))]
    UnsupportedCompression {
        /// The file.
        path: PathBuf,
        /// The format seen.
        format: &'static str,
    },
    /// The ELF file is not a core dump.
    #[error("{path} is an ELF {kind}, not a core dump: pass the core as CORE and the program with --exe")]
    NotCore {
        /// The file.
        path: PathBuf,
        /// What the ELF header says it is.
        kind: &'static str,
    },
    /// A format variant coreheap does not handle.
    #[error("{path}: {what} is not supported (coreheap reads 64-bit little-endian cores of x86-64 and aarch64)")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        what: String,
    },
    /// Headers that cannot be parsed.
    #[error("{path} has a damaged ELF header: {what}; the core is unreadable, take it again")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Segments extend past the end of the file.
    #[error("{path} is truncated: {missing} bytes of memory segments are missing past its end ({have} bytes present, {want} expected); usual causes are a core size limit (ulimit -c, systemd's ProcessSizeMax/ExternalSizeMax), a full disk, or a copy cut short. Use --allow-truncated to read what is there")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes missing.
        missing: u64,
        /// File size present.
        have: u64,
        /// File size the headers call for.
        want: u64,
    },
}

/// The command that unpacks a file in a format coreheap does not read.
fn unpack_command(format: &str, path: &Path) -> String {
    let tool = match format {
        "bzip2" => "bunzip2 -k",
        "zip" => "unzip",
        "7-zip" => "7z x",
        "lzop" => "lzop -d",
        "tar" => "tar -xf",
        f if f.starts_with("lzma") => "unlzma -k",
        _ => "unpack",
    };
    format!("{tool} {}", path.display())
}

/// One PT_LOAD segment of the core.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// Virtual address of the mapping.
    pub vaddr: u64,
    /// Size in the process.
    pub memsz: u64,
    /// Offset of its bytes in the core file.
    pub offset: u64,
    /// Bytes the core was meant to hold (memsz or less, 0 when not dumped).
    pub filesz: u64,
    /// Bytes actually present in the file (less than filesz when truncated).
    pub present: u64,
    /// ELF PF_R/PF_W/PF_X flags.
    pub flags: u32,
}

/// A parsed core file.
pub struct CoreFile {
    /// The mapped bytes.
    pub file: std::sync::Arc<Mapped>,
    /// Its architecture.
    pub arch: Arch,
    /// PT_LOAD segments in address order.
    pub segments: Vec<Segment>,
    /// Threads from NT_PRSTATUS.
    pub threads: Vec<Thread>,
    /// NT_PRPSINFO, when present.
    pub psinfo: Option<PsInfo>,
    /// NT_AUXV, when present.
    pub auxv: Auxv,
    /// NT_FILE mappings (empty for cores without that note, e.g. qemu's).
    pub files: Vec<MappedFile>,
    /// NT_SIGINFO: the signal the process died of, when the core has the note.
    pub siginfo: Option<SigInfo>,
    /// Bytes the headers call for that are missing from the end of the file.
    pub truncated_bytes: u64,
}

impl std::fmt::Debug for CoreFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreFile")
            .field("path", &self.file.path)
            .field("arch", &self.arch)
            .field("segments", &self.segments.len())
            .finish()
    }
}

/// Checks the magic of an input that should be ELF, naming the problem otherwise.
pub fn check_elf_magic(m: &Mapped) -> Result<(), CoreError> {
    let path = m.path.clone();
    match m.magic {
        Magic::Elf => Ok(()),
        Magic::Empty => Err(CoreError::Empty(path)),
        Magic::Unsupported(format) => Err(CoreError::UnsupportedCompression { path, format }),
        Magic::Unknown | Magic::Compressed(_) => Err(CoreError::NotElf(path)),
    }
}

/// Name of an ELF file type for messages.
pub fn elf_type_name(e_type: u16) -> &'static str {
    match e_type {
        elf::ET_REL => "relocatable object",
        elf::ET_EXEC => "executable",
        elf::ET_DYN => "shared object or PIE executable",
        elf::ET_CORE => "core dump",
        _ => "file of unknown type",
    }
}

impl CoreFile {
    /// Parses a mapped core; with `allow_truncated`, a core cut short is accepted.
    pub fn parse(file: Mapped, allow_truncated: bool) -> Result<CoreFile, CoreError> {
        let file = std::sync::Arc::new(file);
        check_elf_magic(&file)?;
        let path = file.path.clone();
        let data = file.bytes();
        let malformed = |what: &str| CoreError::Malformed {
            path: path.clone(),
            what: what.to_string(),
        };
        if data.len() < 5 || data[4] != elf::ELFCLASS64 {
            return Err(CoreError::Unsupported {
                path,
                what: "a 32-bit ELF file".into(),
            });
        }
        let header =
            elf::FileHeader64::<Endianness>::parse(data).map_err(|e| malformed(&e.to_string()))?;
        let endian = header.endian().map_err(|e| malformed(&e.to_string()))?;
        if endian != Endianness::Little {
            return Err(CoreError::Unsupported {
                path,
                what: "a big-endian ELF file".into(),
            });
        }
        let e_type = header.e_type(endian);
        if e_type != elf::ET_CORE {
            return Err(CoreError::NotCore {
                path,
                kind: elf_type_name(e_type),
            });
        }
        let machine = header.e_machine(endian);
        let arch = Arch::from_machine(machine).ok_or_else(|| CoreError::Unsupported {
            path: path.clone(),
            what: format!("ELF machine {machine}"),
        })?;
        let phdrs = header
            .program_headers(endian, data)
            .map_err(|e| malformed(&e.to_string()))?;
        let file_len = data.len() as u64;
        let mut segments = Vec::new();
        let mut want = 0u64;
        let mut note_data: Vec<(u64, &[u8])> = Vec::new();
        for ph in phdrs {
            let offset = ph.p_offset(endian);
            let filesz = ph.p_filesz(endian);
            let end = offset.saturating_add(filesz);
            want = want.max(end);
            let present = file_len.saturating_sub(offset).min(filesz);
            match ph.p_type(endian) {
                elf::PT_LOAD => segments.push(Segment {
                    vaddr: ph.p_vaddr(endian),
                    memsz: ph.p_memsz(endian),
                    offset,
                    filesz,
                    present,
                    flags: ph.p_flags(endian),
                }),
                elf::PT_NOTE => {
                    let start = offset.min(file_len) as usize;
                    note_data.push((ph.p_align(endian), &data[start..start + present as usize]));
                }
                _ => {}
            }
        }
        let truncated_bytes = want.saturating_sub(file_len);
        if truncated_bytes > 0 && !allow_truncated {
            return Err(CoreError::Truncated {
                path,
                missing: truncated_bytes,
                have: file_len,
                want,
            });
        }
        segments.sort_by_key(|s| s.vaddr);
        let parsed = notes::parse_all(arch, endian, &note_data);
        Ok(CoreFile {
            arch,
            segments,
            threads: parsed.threads,
            psinfo: parsed.psinfo,
            auxv: parsed.auxv,
            files: parsed.files,
            siginfo: parsed.siginfo,
            truncated_bytes,
            file,
        })
    }

    /// The path of the core as given.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Total bytes of memory the core's segments describe.
    pub fn mapped_bytes(&self) -> u64 {
        (self.segments.iter()).fold(0u64, |n, s| n.saturating_add(s.memsz))
    }

    /// Total bytes of memory the core actually holds.
    pub fn dumped_bytes(&self) -> u64 {
        (self.segments.iter()).fold(0u64, |n, s| n.saturating_add(s.present))
    }
}
