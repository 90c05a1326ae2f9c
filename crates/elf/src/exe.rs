//! The Go executable: its segments, build ids, build info and symbols.

use std::borrow::Cow;
use std::path::PathBuf;

use object::elf;
use object::read::elf::{FileHeader, NoteIterator, ProgramHeader, SectionHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol};
use thiserror::Error;

use crate::core::{check_elf_magic, elf_type_name, Arch, CoreError};
use crate::input::{Head, InputError, Mapped};
use crate::reader::Bytes;

/// Errors about the executable.
#[derive(Debug, Error)]
pub enum ExeError {
    /// Its bytes are not a usable ELF file.
    #[error(transparent)]
    Format(#[from] CoreError),
    /// It is an ELF file of the wrong kind.
    #[error("{path} is an ELF {kind}, not a program: pass the Go executable with --exe")]
    NotExecutable {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// The file is empty.
    #[error("{0} is empty: give the program that crashed with --exe")]
    Empty(PathBuf),
    /// The file is not ELF and not a known compression format.
    #[error("{0} is not an ELF executable (nor a zstd, xz, gzip or lz4 compressed one): give the program that crashed with --exe")]
    NotElf(PathBuf),
    /// It is not a Go program.
    #[error("{0} is not a Go program (it has no .go.buildinfo section): coreheap reads cores of Go programs; give the Go program that crashed with --exe")]
    NotGo(PathBuf),
    /// Headers cannot be parsed.
    #[error(
        "{path} has a damaged ELF header: {what}; give an intact copy of the program with --exe"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// A PT_LOAD segment of the executable, at its link-time address.
#[derive(Debug, Clone, Copy)]
pub struct ExeSegment {
    /// Link-time virtual address.
    pub vaddr: u64,
    /// Size in memory.
    pub memsz: u64,
    /// Offset in the file.
    pub offset: u64,
    /// Bytes present in the file.
    pub filesz: u64,
    /// PF_* flags.
    pub flags: u32,
}

/// What `.go.buildinfo` says about how the program was built.
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    /// The toolchain version string, e.g. `go1.24.11 X:noswissmap`.
    pub version: String,
    /// `build` settings from the module info, in order (GOOS, GOARCH, GOEXPERIMENT, -buildmode, …).
    pub settings: Vec<(String, String)>,
    /// The main module path, if recorded.
    pub main_path: Option<String>,
}

impl BuildInfo {
    /// The value of a build setting.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The release part of the version, e.g. `go1.24.11`.
    pub fn release(&self) -> &str {
        self.version.split_whitespace().next().unwrap_or("")
    }

    /// (major, minor) of the release, e.g. (1, 24).
    pub fn major_minor(&self) -> Option<(u32, u32)> {
        let v = self.release().strip_prefix("go")?;
        let mut it = v.split(|c: char| !c.is_ascii_digit());
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    }

    /// GOEXPERIMENT settings, from the version suffix and the build settings.
    pub fn experiments(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let from_version = self
            .version
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("X:"))
            .flat_map(|x| x.split(','));
        let from_settings = self
            .setting("GOEXPERIMENT")
            .into_iter()
            .flat_map(|x| x.split(','));
        for e in from_version.chain(from_settings) {
            if !e.is_empty() && !out.iter().any(|o| o == e) {
                out.push(e.to_string());
            }
        }
        out
    }
}

/// The Go executable, mapped.
pub struct ExeFile {
    /// The mapped bytes.
    pub file: std::sync::Arc<Mapped>,
    /// Architecture.
    pub arch: Arch,
    /// Position-independent (ET_DYN).
    pub pie: bool,
    /// Link-time entry point.
    pub entry: u64,
    /// PT_LOAD segments.
    pub segments: Vec<ExeSegment>,
    /// Go build id from `.note.go.buildid`.
    pub go_build_id: Option<String>,
    /// GNU build id, hex.
    pub gnu_build_id: Option<String>,
    /// Parsed `.go.buildinfo`.
    pub buildinfo: BuildInfo,
}

impl std::fmt::Debug for ExeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExeFile")
            .field("path", &self.file.path)
            .field("version", &self.buildinfo.version)
            .finish()
    }
}

/// Build ids found in a set of ELF notes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildIds {
    /// Go build id.
    pub go: Option<String>,
    /// GNU build id, hex.
    pub gnu: Option<String>,
}

impl BuildIds {
    /// The id to show: Go's when there is one, else GNU's.
    pub fn primary(&self) -> Option<&str> {
        self.go.as_deref().or(self.gnu.as_deref())
    }

    /// Whether either kind of id is known.
    pub fn any(&self) -> bool {
        self.go.is_some() || self.gnu.is_some()
    }
}

/// Collects build ids from raw note bytes.
pub fn build_ids_in_notes(align: u64, data: &[u8], ids: &mut BuildIds) {
    let Ok(mut it) =
        NoteIterator::<elf::FileHeader64<Endianness>>::new(Endianness::Little, align, data)
    else {
        return;
    };
    while let Ok(Some(n)) = it.next() {
        match (n.name(), n.n_type(Endianness::Little)) {
            (b"Go", 4) => {
                ids.go = Some(String::from_utf8_lossy(n.desc()).into_owned());
            }
            (b"GNU", elf::NT_GNU_BUILD_ID) => {
                ids.gnu = Some(n.desc().iter().map(|b| format!("{b:02x}")).collect());
            }
            _ => {}
        }
    }
}

/// One ELF64 program header, read by hand from little-endian bytes.
#[derive(Debug, Clone, Copy)]
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// The program headers in `bytes` (ELF64, little-endian, 56 bytes each).
fn parse_phdrs(bytes: &[u8]) -> Vec<Phdr> {
    bytes
        .chunks_exact(56)
        .filter_map(|p| {
            let p = Bytes(p);
            Some(Phdr {
                p_type: p.u32(0)?,
                flags: p.u32(4)?,
                offset: p.u64(8)?,
                vaddr: p.u64(16)?,
                filesz: p.u64(32)?,
                memsz: p.u64(40)?,
                align: p.u64(48)?,
            })
        })
        .collect()
}

/// Notes larger than this are not build id notes; they are not read.
const MAX_NOTES: u64 = 1 << 16;

/// Reads build ids from an ELF image laid out in memory (the first page of a mapped file),
/// using `read` to fetch bytes at link-time-relative offsets from the image start.
pub fn build_ids_in_image(read: &dyn Fn(u64, usize) -> Option<Vec<u8>>) -> BuildIds {
    let mut ids = BuildIds::default();
    let Some(hdr) = read(0, 64) else {
        return ids;
    };
    if !hdr.starts_with(b"\x7fELF") || hdr.get(4) != Some(&elf::ELFCLASS64) {
        return ids;
    }
    let (Some(phoff), Some(phnum)) = (Bytes(&hdr).u64(32), Bytes(&hdr).u16(56)) else {
        return ids;
    };
    let Some(ph) = read(phoff, usize::from(phnum) * 56) else {
        return ids;
    };
    let phdrs = parse_phdrs(&ph);
    // The first PT_LOAD turns note vaddrs into image offsets.
    let Some(base) = phdrs
        .iter()
        .find(|p| p.p_type == elf::PT_LOAD && p.offset == 0)
        .map(|p| p.vaddr)
    else {
        return ids;
    };
    for p in phdrs.iter().filter(|p| p.p_type == elf::PT_NOTE) {
        if p.filesz <= MAX_NOTES {
            let Some(off) = p.vaddr.checked_sub(base) else {
                continue;
            };
            if let Some(d) = read(off, p.filesz as usize) {
                build_ids_in_notes(p.align, &d, &mut ids);
            }
        }
    }
    ids
}

/// What an ELF file's headers and notes say, read from its first bytes only.
#[derive(Debug, Clone)]
pub struct ElfProbe {
    /// ELF file type (`ET_EXEC`, `ET_DYN`, `ET_CORE`, …).
    pub e_type: u16,
    /// Its architecture, when coreheap reads it.
    pub arch: Option<Arch>,
    /// Link-time entry point.
    pub entry: u64,
    /// PT_LOAD segments.
    pub segments: Vec<ExeSegment>,
    /// Build ids from the notes (PT_NOTE segments and SHT_NOTE sections) that lie in the head.
    pub build_ids: BuildIds,
}

impl ElfProbe {
    /// Link-time address of the segment that holds the ELF header (file offset 0).
    pub fn image_base(&self) -> Option<u64> {
        image_base(&self.segments)
    }
}

/// Why the first bytes of a file are not those of an executable coreheap can read.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// The file could not be read or decompressed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// It does not start with the ELF magic.
    #[error("not an ELF file")]
    NotElf,
    /// 32-bit or big-endian.
    #[error("not a 64-bit little-endian ELF file")]
    Unsupported,
    /// Its headers are cut short or lie beyond the head.
    #[error("its ELF headers are damaged")]
    Malformed,
}

/// Reads an ELF file's header, program headers and build id notes from the start of the file,
/// decompressing no more of it than they need.
pub fn elf_probe(head: &mut Head) -> Result<ElfProbe, ProbeError> {
    let h = head.get(0, 64)?.ok_or(ProbeError::NotElf)?.to_vec();
    if !h.starts_with(b"\x7fELF") {
        return Err(ProbeError::NotElf);
    }
    if h.get(4) != Some(&elf::ELFCLASS64) || h.get(5) != Some(&elf::ELFDATA2LSB) {
        return Err(ProbeError::Unsupported);
    }
    let field = |off: usize, size: usize| Bytes(&h).uint(off, size).ok_or(ProbeError::Malformed);
    let (phoff, phnum) = (field(32, 8)?, field(56, 2)? as usize);
    let (shoff, shnum) = (field(40, 8)?, field(60, 2)? as usize);
    let phdrs = parse_phdrs(head.get(phoff, phnum * 56)?.ok_or(ProbeError::Malformed)?);
    let mut notes: Vec<(u64, u64, u64)> = phdrs
        .iter()
        .filter(|p| p.p_type == elf::PT_NOTE)
        .map(|p| (p.offset, p.filesz, p.align))
        .collect();
    // Go places .note.gnu.build-id in a section that no PT_NOTE covers; section headers
    // beyond the head (at the end of an externally linked binary) are not read.
    if let Some(sh) = head.get(shoff, shnum * 64)? {
        notes.extend(
            sh.chunks_exact(64)
                .map(Bytes)
                .filter(|s| s.u32(4) == Some(elf::SHT_NOTE))
                .filter_map(|s| Some((s.u64(24)?, s.u64(32)?, s.u64(48)?))),
        );
    }
    let mut build_ids = BuildIds::default();
    for (offset, size, align) in notes {
        if size <= MAX_NOTES {
            if let Some(d) = head.get(offset, size as usize)? {
                build_ids_in_notes(align, d, &mut build_ids);
            }
        }
    }
    Ok(ElfProbe {
        e_type: field(16, 2)? as u16,
        arch: Arch::from_machine(field(18, 2)? as u16),
        entry: field(24, 8)?,
        segments: phdrs
            .iter()
            .filter(|p| p.p_type == elf::PT_LOAD)
            .map(|p| ExeSegment {
                vaddr: p.vaddr,
                memsz: p.memsz,
                offset: p.offset,
                filesz: p.filesz,
                flags: p.flags,
            })
            .collect(),
        build_ids,
    })
}

/// Link-time address of the segment that holds the ELF header (file offset 0).
fn image_base(segments: &[ExeSegment]) -> Option<u64> {
    segments.iter().find(|s| s.offset == 0).map(|s| s.vaddr)
}

impl ExeFile {
    /// Parses a mapped executable.
    pub fn parse(file: Mapped) -> Result<ExeFile, ExeError> {
        let file = std::sync::Arc::new(file);
        match check_elf_magic(&file) {
            Err(CoreError::Empty(path)) => return Err(ExeError::Empty(path)),
            Err(CoreError::NotElf(path)) => return Err(ExeError::NotElf(path)),
            other => other?,
        }
        let path = file.path.clone();
        let data = file.bytes();
        let malformed = |what: String| ExeError::Malformed {
            path: path.clone(),
            what,
        };
        if data.len() < 5 || data[4] != elf::ELFCLASS64 {
            return Err(CoreError::Unsupported {
                path,
                what: "a 32-bit ELF file".into(),
            }
            .into());
        }
        let header =
            elf::FileHeader64::<Endianness>::parse(data).map_err(|e| malformed(e.to_string()))?;
        let endian = header.endian().map_err(|e| malformed(e.to_string()))?;
        let e_type = header.e_type(endian);
        if e_type == elf::ET_CORE || e_type == elf::ET_REL {
            return Err(ExeError::NotExecutable {
                path,
                kind: elf_type_name(e_type),
            });
        }
        let machine = header.e_machine(endian);
        let arch = Arch::from_machine(machine).ok_or_else(|| CoreError::Unsupported {
            path: path.clone(),
            what: format!("ELF machine {machine}"),
        })?;
        let mut segments = Vec::new();
        let mut ids = BuildIds::default();
        for ph in header
            .program_headers(endian, data)
            .map_err(|e| malformed(e.to_string()))?
        {
            if ph.p_type(endian) == elf::PT_LOAD {
                segments.push(ExeSegment {
                    vaddr: ph.p_vaddr(endian),
                    memsz: ph.p_memsz(endian),
                    offset: ph.p_offset(endian),
                    filesz: ph.p_filesz(endian),
                    flags: ph.p_flags(endian),
                });
            }
        }
        // Notes: Go places .note.go.buildid in a section even when no PT_NOTE covers it.
        let sections = header
            .sections(endian, data)
            .map_err(|e| malformed(e.to_string()))?;
        for s in sections.iter() {
            if s.sh_type(endian) == elf::SHT_NOTE {
                if let Ok(d) = s.data(endian, data) {
                    build_ids_in_notes(s.sh_addralign(endian), d, &mut ids);
                }
            }
        }
        let obj = object::File::parse(data).map_err(|e| malformed(e.to_string()))?;
        let buildinfo = obj
            .section_by_name(".go.buildinfo")
            .and_then(|s| s.data().ok())
            .and_then(|d| parse_buildinfo(d, |addr, len| read_file_addr(&obj, addr, len)))
            .ok_or_else(|| ExeError::NotGo(path.clone()))?;
        Ok(ExeFile {
            arch,
            pie: e_type == elf::ET_DYN,
            entry: header.e_entry(endian),
            segments,
            go_build_id: ids.go,
            gnu_build_id: ids.gnu,
            buildinfo,
            file,
        })
    }

    /// The executable's build ids.
    pub fn build_ids(&self) -> BuildIds {
        BuildIds {
            go: self.go_build_id.clone(),
            gnu: self.gnu_build_id.clone(),
        }
    }

    /// Link-time address of the segment that holds the ELF header (file offset 0).
    pub fn image_base(&self) -> Option<u64> {
        image_base(&self.segments)
    }

    /// Bytes of the file at a link-time address, if that range is file-backed.
    pub fn read_at(&self, vaddr: u64, len: usize) -> Option<&[u8]> {
        let s = self
            .segments
            .iter()
            .find(|s| vaddr >= s.vaddr && vaddr < s.vaddr.saturating_add(s.filesz))?;
        let end = vaddr.checked_add(len as u64)?;
        if end > s.vaddr.saturating_add(s.filesz) {
            return None;
        }
        let off = usize::try_from(s.offset.checked_add(vaddr - s.vaddr)?).ok()?;
        Bytes(self.file.bytes()).slice(off, len)
    }

    /// The object-crate view of the file.
    pub fn object(&self) -> Result<object::File<'_>, ExeError> {
        object::File::parse(self.file.bytes()).map_err(|e| ExeError::Malformed {
            path: self.file.path.clone(),
            what: e.to_string(),
        })
    }

    /// Function and data symbols sorted by address, for naming code addresses.
    pub fn symbols(&self) -> Symbols {
        let mut v: Vec<(u64, u64, String)> = Vec::new();
        if let Ok(obj) = self.object() {
            for s in obj.symbols() {
                if s.address() != 0 {
                    if let Ok(n) = s.name() {
                        v.push((s.address(), s.size(), n.to_string()));
                    }
                }
            }
        }
        v.sort_by_key(|x| x.0);
        Symbols { sorted: v }
    }
}

/// An address-sorted symbol table.
#[derive(Debug, Default)]
pub struct Symbols {
    sorted: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// The symbol covering a link-time address.
    pub fn lookup(&self, addr: u64) -> Option<&str> {
        let i = self.sorted.partition_point(|s| s.0 <= addr);
        let (start, size, name) = self.sorted.get(i.checked_sub(1)?)?;
        (addr < start.saturating_add((*size).max(1))).then_some(name.as_str())
    }

    /// The start and size of the symbol covering a link-time address.
    pub fn extent(&self, addr: u64) -> Option<(u64, u64)> {
        let i = self.sorted.partition_point(|s| s.0 <= addr);
        let (start, size, _) = self.sorted.get(i.checked_sub(1)?)?;
        (addr < start.saturating_add(*size)).then_some((*start, *size))
    }

    /// The address of a named symbol.
    pub fn address(&self, name: &str) -> Option<u64> {
        self.sorted.iter().find(|s| s.2 == name).map(|s| s.0)
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

fn read_file_addr<'a>(obj: &object::File<'a>, addr: u64, len: usize) -> Option<Cow<'a, [u8]>> {
    for s in obj.sections() {
        let start = s.address();
        if addr >= start && addr.checked_add(len as u64)? <= start.saturating_add(s.size()) {
            let d = s.data().ok()?;
            let off = usize::try_from(addr - start).ok()?;
            return Bytes(d).slice(off, len).map(Cow::Borrowed);
        }
    }
    None
}

/// Parses `.go.buildinfo`: version and module info, inline (Go 1.18+) or through pointers.
fn parse_buildinfo<'a>(
    d: &[u8],
    read: impl Fn(u64, usize) -> Option<Cow<'a, [u8]>>,
) -> Option<BuildInfo> {
    let b = Bytes(d);
    if d.len() < 32 || b.slice(0, 14)? != b"\xff Go buildinf:" {
        return None;
    }
    let (version, modinfo) = if b.u8(15)? & 2 != 0 {
        let (vlen, n) = b.uvarint(32)?;
        let vlen = usize::try_from(vlen).ok()?;
        let vstart = 32 + n;
        let version = b.slice(vstart, vlen)?;
        let rest = Bytes(b.from(vstart + vlen)?);
        let (mlen, m) = rest.uvarint(0)?;
        let modinfo = usize::try_from(mlen)
            .ok()
            .and_then(|mlen| rest.slice(m, mlen))
            .unwrap_or(&[]);
        (
            String::from_utf8_lossy(version).into_owned(),
            String::from_utf8_lossy(modinfo).into_owned(),
        )
    } else {
        // Pre-1.18 layout: two pointers to Go strings.
        let gostr = |p: u64| -> Option<String> {
            let hdr = read(p, 16)?;
            let hdr = Bytes(&hdr);
            let (data, len) = (hdr.u64(0)?, hdr.u64(8)?);
            Some(String::from_utf8_lossy(&read(data, usize::try_from(len).ok()?)?).into_owned())
        };
        (
            gostr(b.u64(16)?)?,
            b.u64(24).and_then(gostr).unwrap_or_default(),
        )
    };
    let mut info = BuildInfo {
        version,
        ..Default::default()
    };
    for line in modinfo.lines() {
        let mut parts = line.splitn(2, '\t');
        match (parts.next(), parts.next()) {
            (Some("build"), Some(kv)) => {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                info.settings.push((k.to_string(), v.to_string()));
            }
            (Some("path"), Some(p)) => info.main_path = Some(p.to_string()),
            _ => {}
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildinfo_inline_strings_and_experiments() {
        let mut d = b"\xff Go buildinf:\x08\x02".to_vec();
        d.resize(32, 0);
        let v = b"go1.24.11 X:noswissmap";
        d.push(v.len() as u8);
        d.extend_from_slice(v);
        let m = b"path\tledger\nbuild\tGOARCH=amd64\nbuild\tGOEXPERIMENT=noswissmap\n";
        d.push(m.len() as u8);
        d.extend_from_slice(m);
        let bi = parse_buildinfo(&d, |_, _| None).unwrap();
        assert_eq!(bi.release(), "go1.24.11");
        assert_eq!(bi.major_minor(), Some((1, 24)));
        assert_eq!(bi.setting("GOARCH"), Some("amd64"));
        assert_eq!(bi.experiments(), vec!["noswissmap".to_string()]);
        assert_eq!(bi.main_path.as_deref(), Some("ledger"));
    }
}
