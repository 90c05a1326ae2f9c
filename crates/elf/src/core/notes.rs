//! Core notes: threads and registers, process info, auxiliary vector, mapped files.

use object::elf;
use object::read::elf::NoteIterator;
use object::Endianness;

use super::Arch;
use crate::reader::Bytes;

/// A thread from an NT_PRSTATUS note.
#[derive(Debug, Clone)]
pub struct Thread {
    /// Kernel thread id.
    pub tid: u32,
    /// Signal that stopped it (the crashing thread has the fatal one).
    pub signal: u16,
    /// Program counter.
    pub pc: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Frame pointer (rbp on amd64, x29 on arm64).
    pub fp: u64,
    /// Link register on arm64 (x30); 0 on amd64.
    pub lr: u64,
    /// Thread-local base (fs_base on amd64, 0 on arm64 where it is in another note).
    pub tls: u64,
    /// The general registers in the kernel's order for the architecture.
    pub regs: Vec<u64>,
}

/// The process description from NT_PRPSINFO.
#[derive(Debug, Clone)]
pub struct PsInfo {
    /// Process id.
    pub pid: u32,
    /// Executable name, at most 15 bytes.
    pub fname: String,
    /// Start of the command line, at most 80 bytes.
    pub psargs: String,
}

/// The auxiliary vector entries coreheap uses.
#[derive(Debug, Clone, Default)]
pub struct Auxv {
    /// AT_ENTRY: the program's entry point as loaded.
    pub entry: Option<u64>,
    /// AT_PHDR: the program headers as loaded.
    pub phdr: Option<u64>,
    /// AT_PAGESZ.
    pub pagesz: Option<u64>,
}

/// A file mapping from the NT_FILE note.
#[derive(Debug, Clone)]
pub struct MappedFile {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// Offset in the file, in bytes.
    pub offset: u64,
    /// Path as the kernel recorded it.
    pub path: String,
}

/// The signal the process died of, from NT_SIGINFO (the kernel's `siginfo_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    /// `si_signo`.
    pub signo: u32,
    /// `si_code` (negative: sent by a process, e.g. `SI_TKILL` is -6).
    pub code: i32,
    /// `si_addr`: the faulting address for SIGSEGV, SIGBUS, SIGILL and SIGFPE, else 0.
    pub addr: u64,
}

/// Everything parsed from a core's notes.
#[derive(Debug, Default)]
pub struct Notes {
    /// Threads.
    pub threads: Vec<Thread>,
    /// Process info.
    pub psinfo: Option<PsInfo>,
    /// Auxiliary vector.
    pub auxv: Auxv,
    /// File mappings.
    pub files: Vec<MappedFile>,
    /// The fatal signal's details (kernel cores; qemu's have none).
    pub siginfo: Option<SigInfo>,
}

const NT_FILE: u32 = 0x4649_4c45;
const NT_SIGINFO: u32 = 0x5349_4749;
const PRSTATUS_REGS_OFFSET: usize = 112;
const AMD64_NREGS: usize = 27;
const ARM64_NREGS: usize = 34;

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim_end().to_string()
}

/// Parses every note in the given PT_NOTE segments; damaged notes are skipped.
pub fn parse_all(arch: Arch, endian: Endianness, segments: &[(u64, &[u8])]) -> Notes {
    let mut out = Notes::default();
    for &(align, data) in segments {
        let Ok(mut it) = NoteIterator::<elf::FileHeader64<Endianness>>::new(endian, align, data)
        else {
            continue;
        };
        while let Ok(Some(note)) = it.next() {
            if note.name() != b"CORE" {
                continue;
            }
            let desc = note.desc();
            match note.n_type(endian) {
                elf::NT_PRSTATUS => {
                    if let Some(t) = parse_prstatus(arch, desc) {
                        out.threads.push(t);
                    }
                }
                elf::NT_PRPSINFO => out.psinfo = parse_psinfo(desc),
                elf::NT_AUXV => out.auxv = parse_auxv(desc),
                NT_FILE => out.files = parse_files(desc),
                NT_SIGINFO => out.siginfo = out.siginfo.or_else(|| parse_siginfo(desc)),
                _ => {}
            }
        }
    }
    out
}

fn parse_prstatus(arch: Arch, d: &[u8]) -> Option<Thread> {
    let d = Bytes(d);
    let signal = d.u16(12)?;
    let tid = d.u32(32)?;
    let n = match arch {
        Arch::Amd64 => AMD64_NREGS,
        Arch::Arm64 => ARM64_NREGS,
    };
    let regs: Vec<u64> = (0..n)
        .map(|i| d.u64(PRSTATUS_REGS_OFFSET + 8 * i))
        .collect::<Option<_>>()?;
    let t = match arch {
        // user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base …
        Arch::Amd64 => Thread {
            tid,
            signal,
            pc: regs[16],
            sp: regs[19],
            fp: regs[4],
            lr: 0,
            tls: regs[21],
            regs,
        },
        // user_pt_regs: x0..x30, sp, pc, pstate
        Arch::Arm64 => Thread {
            tid,
            signal,
            pc: regs[32],
            sp: regs[31],
            fp: regs[29],
            lr: regs[30],
            tls: 0,
            regs,
        },
    };
    Some(t)
}

/// `siginfo_t` on 64-bit Linux: signo, errno, code (3 × i32), padding, then the union, whose
/// first word is `si_addr` for the fault signals.
fn parse_siginfo(d: &[u8]) -> Option<SigInfo> {
    let d = Bytes(d);
    let signo = d.u32(0)?;
    let code = d.u32(8)? as i32;
    let fault = matches!(signo, 4 | 7 | 8 | 11);
    let addr = if fault { d.u64(16)? } else { 0 };
    Some(SigInfo { signo, code, addr })
}

fn parse_psinfo(d: &[u8]) -> Option<PsInfo> {
    let d = Bytes(d);
    Some(PsInfo {
        pid: d.u32(24)?,
        fname: cstr(d.slice(40, 16)?),
        psargs: cstr(d.slice(56, 80)?),
    })
}

fn parse_auxv(d: &[u8]) -> Auxv {
    let mut a = Auxv::default();
    for pair in d.chunks_exact(16) {
        let pair = Bytes(pair);
        let (Some(k), Some(v)) = (pair.u64(0), pair.u64(8)) else {
            break;
        };
        match k {
            0 => break,
            3 => a.phdr = Some(v),
            6 => a.pagesz = Some(v),
            9 => a.entry = Some(v),
            _ => {}
        }
    }
    a
}

fn parse_files(d: &[u8]) -> Vec<MappedFile> {
    let d = Bytes(d);
    let (Some(count), Some(page)) = (d.u64(0), d.u64(8)) else {
        return Vec::new();
    };
    let count = count.min((d.0.len() / 24) as u64) as usize;
    let names_at = 16 + 24 * count;
    let mut names = d.from(names_at).unwrap_or(&[]).split(|&c| c == 0);
    (0..count)
        .filter_map(|i| {
            let base = 16 + 24 * i;
            Some(MappedFile {
                start: d.u64(base)?,
                end: d.u64(base + 8)?,
                offset: d.u64(base + 16)?.saturating_mul(page),
                path: String::from_utf8_lossy(names.next()?).into_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_file_parses_entries_and_names() {
        let mut d = Vec::new();
        for v in [2u64, 4096, 0x400000, 0x401000, 0, 0x500000, 0x502000, 3] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        d.extend_from_slice(b"/bin/a\0/lib/b\0");
        let f = parse_files(&d);
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].path, "/lib/b");
        assert_eq!(f[1].offset, 3 * 4096);
    }

    #[test]
    fn damaged_nt_file_count_does_not_overrun() {
        let mut d = Vec::new();
        for v in [u64::MAX, 4096] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        assert!(parse_files(&d).is_empty());
    }
}
