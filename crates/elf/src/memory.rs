//! The crashed process's address space: core segments, overlaid on the executable's read-only bytes.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use thiserror::Error;

use crate::core::CoreFile;
use crate::exe::ExeFile;
use crate::input::Mapped;
use crate::reader::Bytes;

/// A virtual address in the crashed process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Addr(pub u64);

impl Addr {
    /// The address `n` bytes further on.
    pub fn offset(self, n: u64) -> Addr {
        Addr(self.0.wrapping_add(n))
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Why a read of process memory failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// Nothing was mapped there.
    #[error("address {0} is not mapped in the core")]
    Unmapped(Addr),
    /// Mapped, but the kernel did not write those bytes into the core.
    #[error("address {0} was mapped but not dumped into the core: take the core with coredump_filter 0x33 (docs/taking-cores.md)")]
    NotDumped(Addr),
    /// The core was cut short before those bytes.
    #[error("address {0} lies in the missing end of a truncated core")]
    Truncated(Addr),
}

/// Where a range of addresses gets its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    /// From the core file at this offset (for the region start).
    Core(u64),
    /// From the executable file at this offset.
    Exe(u64),
    /// Mapped but not dumped.
    NotDumped,
    /// Beyond the end of a truncated core.
    Truncated,
}

#[derive(Debug, Clone, Copy)]
struct Region {
    start: u64,
    end: u64,
    backing: Backing,
}

impl Region {
    /// The same backing restricted to [start, end).
    fn slice(&self, start: u64, end: u64) -> Region {
        let shift = start - self.start;
        let backing = match self.backing {
            Backing::Core(o) => Backing::Core(o.saturating_add(shift)),
            Backing::Exe(o) => Backing::Exe(o.saturating_add(shift)),
            b => b,
        };
        Region {
            start,
            end,
            backing,
        }
    }
}

/// The page size the core's mapping is advised in.
pub const PAGE: u64 = 4096;

/// Whole pages of the core file: [start, end) offsets.
type PageRange = (u64, u64);

/// How a part of the core will be read, for the kernel's read-ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAhead {
    /// At scattered places: read only the pages touched, nothing around them.
    Random,
    /// Soon, all of it: start reading it now.
    WillNeed,
    /// Not again soon: the first pages to give back when memory is short.
    Cold,
}

impl ReadAhead {
    fn flag(self) -> libc::c_int {
        match self {
            ReadAhead::Random => libc::MADV_RANDOM,
            ReadAhead::WillNeed => libc::MADV_WILLNEED,
            ReadAhead::Cold => libc::MADV_COLD,
        }
    }
}

/// The most bytes one request to read ahead asks for (the kernel caps each at its read-ahead
/// window).
const WILLNEED_MAX: u64 = 2 << 20;

/// Gaps up to this many bytes between pages a pass needs are read along with them when the
/// pages are not cached: a disk reads one run faster than scattered pages.
const BRIDGE: u64 = 256 << 10;

/// Pages of the core asked for ahead of a pass; pages read only to bridge gaps are marked
/// cold when it drops, so that they are the first the kernel reclaims.
#[derive(Debug)]
pub struct Fetch<'a> {
    mem: &'a Memory,
    /// Core file ranges read only to bridge gaps.
    bridged: Vec<PageRange>,
}

impl Drop for Fetch<'_> {
    fn drop(&mut self) {
        self.mem.advise_pages(&self.bridged, ReadAhead::Cold);
    }
}

/// Reads of the crashed process's memory.
pub struct Memory {
    core: Arc<Mapped>,
    exe: Option<Arc<Mapped>>,
    regions: Vec<Region>,
    damaged_reads: AtomicU64,
    /// Index of the region the last read hit.
    last_region: std::sync::atomic::AtomicUsize,
    /// Largest gap [`Memory::fetch`] reads to join pages into one run (0: none).
    bridge: AtomicU64,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("regions", &self.regions.len())
            .finish()
    }
}

impl Memory {
    /// Builds the address space from the core and, where given, the executable loaded at `bias`.
    pub fn new(core: &CoreFile, exe: Option<&ExeFile>, bias: u64) -> Memory {
        let mut regions = Vec::with_capacity(core.segments.len().saturating_mul(2));
        for s in &core.segments {
            let mut push = |start: u64, end: u64, backing| {
                if end > start {
                    regions.push(Region {
                        start,
                        end,
                        backing,
                    });
                }
            };
            // A damaged header's sizes may run past the top of the address space: cut there.
            let present_end = s.vaddr.saturating_add(s.present);
            let file_end = s.vaddr.saturating_add(s.filesz.min(s.memsz));
            push(s.vaddr, present_end, Backing::Core(s.offset));
            push(present_end, file_end, Backing::Truncated);
            push(
                file_end.max(present_end),
                s.vaddr.saturating_add(s.memsz),
                Backing::NotDumped,
            );
        }
        regions.sort_by_key(|r| r.start);
        if let Some(exe) = exe {
            const PF_W: u32 = 2;
            for seg in exe.segments.iter().filter(|s| s.flags & PF_W == 0) {
                let start = seg.vaddr.wrapping_add(bias);
                let piece = Region {
                    start,
                    end: start.saturating_add(seg.filesz),
                    backing: Backing::Exe(seg.offset),
                };
                regions = overlay(regions, piece);
            }
        }
        Memory {
            core: core.file.clone(),
            exe: exe.map(|e| e.file.clone()),
            regions,
            damaged_reads: AtomicU64::new(0),
            last_region: std::sync::atomic::AtomicUsize::new(0),
            bridge: AtomicU64::new(BRIDGE),
        }
    }

    fn find(&self, addr: u64) -> Option<&Region> {
        // Reads cluster: try the region of the last hit before searching.
        let last = self.last_region.load(Ordering::Relaxed);
        if let Some(r) = self.regions.get(last) {
            if addr >= r.start && addr < r.end {
                return Some(r);
            }
        }
        let i = self
            .regions
            .partition_point(|r| r.start <= addr)
            .checked_sub(1)?;
        let r = self.regions.get(i)?;
        if addr < r.end {
            self.last_region.store(i, Ordering::Relaxed);
            Some(r)
        } else {
            None
        }
    }

    fn bytes_of(&self, r: &Region, addr: u64, len: u64) -> Result<&[u8], MemError> {
        let (file, off) = match r.backing {
            Backing::Core(o) => (self.core.bytes(), o),
            Backing::Exe(o) => match &self.exe {
                Some(e) => (e.bytes(), o),
                None => return Err(MemError::NotDumped(Addr(addr))),
            },
            Backing::NotDumped => return Err(MemError::NotDumped(Addr(addr))),
            Backing::Truncated => {
                self.damaged_reads.fetch_add(1, Ordering::Relaxed);
                return Err(MemError::Truncated(Addr(addr)));
            }
        };
        let truncated = MemError::Truncated(Addr(addr));
        let start = off
            .checked_add(addr - r.start)
            .and_then(|s| usize::try_from(s).ok())
            .ok_or(truncated)?;
        let len = usize::try_from(len).map_err(|_| truncated)?;
        Bytes(file).slice(start, len).ok_or(truncated)
    }

    /// How many bytes from `addr` on are mapped without a gap (dumped or not): the most that
    /// a structure starting there can occupy.
    pub fn mapped_from(&self, addr: Addr) -> u64 {
        mapped_run(&self.regions, addr.0)
    }

    /// Borrows `len` bytes at `addr` when they lie in one region, else copies them.
    pub fn read(&self, addr: Addr, len: usize) -> Result<Cow<'_, [u8]>, MemError> {
        let r = self.find(addr.0).ok_or(MemError::Unmapped(addr))?;
        let len64 = len as u64;
        if addr.0.checked_add(len64).is_some_and(|e| e <= r.end) {
            return self.bytes_of(r, addr.0, len64).map(Cow::Borrowed);
        }
        // A length read from the core may be wild: reserve no more than the files could give.
        let most = self.core.bytes().len() + self.exe.as_ref().map_or(0, |e| e.bytes().len());
        let mut out = Vec::with_capacity(len.min(most));
        let mut a = addr.0;
        let end = addr.0.checked_add(len64).ok_or(MemError::Unmapped(addr))?;
        while a < end {
            let r = self.find(a).ok_or(MemError::Unmapped(Addr(a)))?;
            let n = r.end.min(end) - a;
            out.extend_from_slice(self.bytes_of(r, a, n)?);
            a += n;
        }
        Ok(Cow::Owned(out))
    }

    /// Reads a little-endian u64.
    pub fn u64(&self, addr: Addr) -> Result<u64, MemError> {
        Bytes(&self.read(addr, 8)?)
            .u64(0)
            .ok_or(MemError::Truncated(addr))
    }

    /// Reads a little-endian u32.
    pub fn u32(&self, addr: Addr) -> Result<u32, MemError> {
        Bytes(&self.read(addr, 4)?)
            .u32(0)
            .ok_or(MemError::Truncated(addr))
    }

    /// Reads a little-endian u16.
    pub fn u16(&self, addr: Addr) -> Result<u16, MemError> {
        Bytes(&self.read(addr, 2)?)
            .u16(0)
            .ok_or(MemError::Truncated(addr))
    }

    /// Reads one byte.
    pub fn u8(&self, addr: Addr) -> Result<u8, MemError> {
        Bytes(&self.read(addr, 1)?)
            .u8(0)
            .ok_or(MemError::Truncated(addr))
    }

    /// Reads a pointer.
    pub fn ptr(&self, addr: Addr) -> Result<Addr, MemError> {
        self.u64(addr).map(Addr)
    }

    /// Reads an unsigned integer of 1, 2, 4 or 8 bytes.
    pub fn uint(&self, addr: Addr, size: u64) -> Result<u64, MemError> {
        match size {
            1 => self.u8(addr).map(u64::from),
            2 => self.u16(addr).map(u64::from),
            4 => self.u32(addr).map(u64::from),
            _ => self.u64(addr),
        }
    }

    /// Reads a Go string header {ptr, len} and its bytes, cut at `max` bytes.
    pub fn go_string(&self, addr: Addr, max: usize) -> Result<String, MemError> {
        let p = self.ptr(addr)?;
        let n = self.u64(addr.offset(8))? as usize;
        if n == 0 {
            return Ok(String::new());
        }
        let b = self.read(p, n.min(max))?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// How many bytes of `[addr, addr + len)` lie in the missing end of a truncated core.
    pub fn truncated_bytes_in(&self, addr: Addr, len: u64) -> u64 {
        let end = addr.0.saturating_add(len);
        let first = self.regions.partition_point(|r| r.end <= addr.0);
        self.regions[first..]
            .iter()
            .take_while(|r| r.start < end)
            .filter(|r| r.backing == Backing::Truncated)
            .map(|r| r.end.min(end) - r.start.max(addr.0))
            .sum()
    }

    /// Whether the core (not the executable) holds the bytes at `addr`.
    pub fn in_core(&self, addr: Addr) -> bool {
        matches!(self.find(addr.0), Some(r) if matches!(r.backing, Backing::Core(_)))
    }

    /// Reads bytes only from the core's own dumped segments.
    pub fn read_core_only(&self, addr: Addr, len: usize) -> Option<&[u8]> {
        let r = self.find(addr.0)?;
        if !matches!(r.backing, Backing::Core(_)) || addr.0.checked_add(len as u64)? > r.end {
            return None;
        }
        self.bytes_of(r, addr.0, len as u64).ok()
    }

    /// Tells the kernel how the core's bytes behind these address ranges (in address order)
    /// will be read; advice the kernel refuses is ignored, as it only changes speed.
    pub fn advise(&self, ranges: impl IntoIterator<Item = (Addr, u64)>, how: ReadAhead) {
        let pages = core_pages(&self.regions, self.core.bytes().len() as u64, ranges);
        self.advise_pages(&pages, how);
    }

    /// From now on [`Memory::fetch`] reads only the pages asked for: for heaps whose pages
    /// will not all stay cached, where pages read to bridge gaps would push out needed ones.
    pub fn fetch_only_needed(&self) {
        self.bridge.store(0, Ordering::Relaxed);
    }

    /// Asks for the core's pages behind these address ranges (in address order) ahead of a
    /// pass over them: nothing when they are all cached, else read in runs bridging gaps of
    /// up to [`BRIDGE`] bytes (unless [`Memory::fetch_only_needed`] was called).
    pub fn fetch(&self, ranges: impl IntoIterator<Item = (Addr, u64)>) -> Fetch<'_> {
        let pages = core_pages(&self.regions, self.core.bytes().len() as u64, ranges);
        let mut fetch = Fetch {
            mem: self,
            bridged: Vec::new(),
        };
        if self.cached(&pages) {
            return fetch;
        }
        let runs;
        (runs, fetch.bridged) = bridge(&pages, self.bridge.load(Ordering::Relaxed));
        self.advise_pages(&runs, ReadAhead::WillNeed);
        fetch
    }

    /// Whether every page of these core file ranges (ascending) is in the page cache; false
    /// when the kernel cannot tell.
    fn cached(&self, pages: &[PageRange]) -> bool {
        let (Some(first), Some(last)) = (pages.first(), pages.last()) else {
            return true;
        };
        let (from, to) = (first.0, last.1.max(first.1));
        let mut resident = vec![0u8; ((to - from) / PAGE) as usize];
        let base = self.core.bytes().as_ptr();
        // SAFETY: [from, to) is page aligned and inside the core's mapping; `resident` holds
        // one byte per page of it.
        let rc = unsafe {
            libc::mincore(
                base.add(from as usize) as *mut libc::c_void,
                (to - from) as usize,
                resident.as_mut_ptr(),
            )
        };
        rc == 0
            && pages.iter().all(|&(a, b)| {
                resident[((a - from) / PAGE) as usize..((b - from) / PAGE) as usize]
                    .iter()
                    .all(|r| r & 1 == 1)
            })
    }

    /// Gives the kernel advice on whole pages of the core file.
    fn advise_pages(&self, pages: &[PageRange], how: ReadAhead) {
        let base = self.core.bytes().as_ptr();
        // The kernel reads at most its read-ahead window per request to read ahead.
        let most = match how {
            ReadAhead::WillNeed => WILLNEED_MAX,
            _ => u64::MAX,
        };
        for (start, end) in requests(pages, most) {
            // SAFETY: [start, end) is page aligned and lies inside the core's read-only
            // mapping; madvise only changes how its pages are cached.
            unsafe {
                libc::madvise(
                    base.add(start as usize) as *mut libc::c_void,
                    (end - start) as usize,
                    how.flag(),
                );
            }
        }
    }

    /// How many reads landed in the missing part of a truncated core.
    pub fn damaged_reads(&self) -> u64 {
        self.damaged_reads.load(Ordering::Relaxed)
    }
}

/// Bytes from `addr` to the end of the gapless run of `regions` (sorted) holding it.
fn mapped_run(regions: &[Region], addr: u64) -> u64 {
    let Some(first) = regions.partition_point(|r| r.start <= addr).checked_sub(1) else {
        return 0;
    };
    let mut end = addr;
    for r in &regions[first..] {
        if r.start > end {
            break;
        }
        end = end.max(r.end);
    }
    end - addr
}

/// The whole pages of the core file (offset ranges, merged where they touch) behind address
/// ranges given in address order; parts not backed by the core are left out.
fn core_pages(
    regions: &[Region],
    file_len: u64,
    ranges: impl IntoIterator<Item = (Addr, u64)>,
) -> Vec<PageRange> {
    let mut out: Vec<PageRange> = Vec::new();
    let mut i = 0;
    for (addr, len) in ranges {
        let (mut at, end) = (addr.0, addr.0.saturating_add(len));
        // Ranges come in address order: search from the last region only when they go back.
        if regions.get(i).map_or(true, |r| r.start > at) {
            i = regions.partition_point(|r| r.end <= at);
        }
        while at < end {
            while regions.get(i).is_some_and(|r| r.end <= at) {
                i += 1;
            }
            let Some(r) = regions.get(i).filter(|r| r.start < end) else {
                break;
            };
            let from = at.max(r.start);
            let upto = end.min(r.end);
            if let Backing::Core(o) = r.backing {
                let a = o.saturating_add(from - r.start) & !(PAGE - 1);
                let b = o
                    .saturating_add(upto - r.start)
                    .checked_next_multiple_of(PAGE)
                    .map_or(file_len, |b| b.min(file_len));
                match out.last_mut() {
                    Some(last) if a <= last.1 && a >= last.0 => last.1 = last.1.max(b),
                    _ if a < b => out.push((a, b)),
                    _ => {}
                }
            }
            at = upto;
        }
    }
    out
}

/// Ascending page ranges joined into runs where the gap between them is at most `gap` bytes:
/// (the runs, the gaps they bridge).
fn bridge(pages: &[PageRange], gap: u64) -> (Vec<PageRange>, Vec<PageRange>) {
    let (mut runs, mut bridged): (Vec<PageRange>, Vec<PageRange>) = (Vec::new(), Vec::new());
    for &(a, b) in pages {
        match runs.last_mut() {
            Some(last) if a >= last.1 && a - last.1 <= gap => {
                if a > last.1 {
                    bridged.push((last.1, a));
                }
                last.1 = b;
            }
            _ => runs.push((a, b)),
        }
    }
    (runs, bridged)
}

/// Ranges cut into read-ahead requests of at most `most` bytes.
fn requests(ranges: &[PageRange], most: u64) -> impl Iterator<Item = PageRange> + '_ {
    let most = most.max(1);
    ranges.iter().flat_map(move |&(a, b)| {
        (a..b)
            .step_by(most.min(u64::from(u32::MAX)) as usize)
            .map(move |x| (x, b.min(x.saturating_add(most))))
    })
}

/// Lays `piece` over `regions`, keeping core-backed bytes where they exist.
fn overlay(regions: Vec<Region>, piece: Region) -> Vec<Region> {
    // The parts of `piece` not covered by core-backed regions.
    let mut holes = vec![(piece.start, piece.end)];
    for r in regions.iter().filter(|r| {
        matches!(r.backing, Backing::Core(_)) && r.start < piece.end && r.end > piece.start
    }) {
        holes = holes
            .into_iter()
            .flat_map(|(a, b)| {
                let mut v = Vec::new();
                if a < r.start {
                    v.push((a, b.min(r.start)));
                }
                if b > r.end {
                    v.push((a.max(r.end), b));
                }
                v
            })
            .filter(|(a, b)| a < b)
            .collect();
    }
    let mut out: Vec<Region> = Vec::with_capacity(regions.len() + holes.len() * 2);
    for r in regions {
        // Cut the holes out of non-core regions.
        let mut parts = vec![r];
        if !matches!(r.backing, Backing::Core(_)) {
            for &(a, b) in &holes {
                parts = parts
                    .into_iter()
                    .flat_map(|p| {
                        let mut v = Vec::new();
                        if p.start < a.min(p.end) {
                            v.push(p.slice(p.start, a.min(p.end)));
                        }
                        if p.end > b.max(p.start) {
                            v.push(p.slice(b.max(p.start), p.end));
                        }
                        v
                    })
                    .collect();
            }
        }
        out.extend(parts);
    }
    out.extend(holes.into_iter().map(|(a, b)| piece.slice(a, b)));
    out.sort_by_key(|r| r.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(start: u64, end: u64, backing: Backing) -> Region {
        Region {
            start,
            end,
            backing,
        }
    }

    #[test]
    fn core_pages_are_whole_merged_and_core_only() {
        let regions = vec![
            reg(0x10000, 0x20000, Backing::Core(0x3000)),
            reg(0x20000, 0x30000, Backing::NotDumped),
            reg(0x30000, 0x40000, Backing::Core(0x15000)),
        ];
        let got = core_pages(
            &regions,
            0x23000,
            [
                (Addr(0x10010), 8),       // one page, rounded out
                (Addr(0x10ff8), 16),      // touches it: merged, spills into the next page
                (Addr(0x14000), 0x100),   // apart: a new range
                (Addr(0x1f000), 0x12000), // through the undumped gap into the next segment
                (Addr(0x50000), 8),       // unmapped: nothing
            ],
        );
        assert_eq!(
            got,
            vec![
                (0x3000, 0x5000),
                (0x7000, 0x8000),
                (0x12000, 0x13000),
                (0x15000, 0x16000),
            ]
        );
    }

    #[test]
    fn gaps_up_to_the_bridge_join_runs() {
        let pages = [
            (0, 4096),
            (8192, 12288),
            (12288, 16384),
            (1 << 20, (1 << 20) + 4096),
        ];
        let (runs, bridged) = bridge(&pages, 4096);
        assert_eq!(runs, vec![(0, 16384), (1 << 20, (1 << 20) + 4096)]);
        assert_eq!(bridged, vec![(4096, 8192)]);
    }

    #[test]
    fn requests_are_cut_to_the_most_asked_at_once() {
        let got: Vec<_> = requests(&[(0, 5 << 20), (8 << 20, 9 << 20)], 2 << 20).collect();
        assert_eq!(
            got,
            vec![
                (0, 2 << 20),
                (2 << 20, 4 << 20),
                (4 << 20, 5 << 20),
                (8 << 20, 9 << 20)
            ]
        );
    }

    #[test]
    fn mapped_runs_end_at_the_first_gap() {
        let regions = vec![
            reg(0x1000, 0x2000, Backing::Core(0)),
            reg(0x2000, 0x5000, Backing::NotDumped),
            reg(0x8000, 0x9000, Backing::Core(0x1000)),
        ];
        assert_eq!(mapped_run(&regions, 0x1800), 0x3800);
        assert_eq!(mapped_run(&regions, 0x4fff), 1);
        assert_eq!(mapped_run(&regions, 0x5000), 0);
        assert_eq!(mapped_run(&regions, 0x8000), 0x1000);
        assert_eq!(mapped_run(&regions, 0x500), 0);
        assert_eq!(mapped_run(&regions, 0x9000), 0);
    }

    #[test]
    fn overlay_fills_undumped_parts_and_keeps_core_bytes() {
        let regions = vec![
            reg(0x1000, 0x2000, Backing::Core(0)),
            reg(0x2000, 0x5000, Backing::NotDumped),
        ];
        let out = overlay(regions, reg(0x1000, 0x4000, Backing::Exe(0)));
        let got: Vec<_> = out.iter().map(|r| (r.start, r.end, r.backing)).collect();
        assert_eq!(
            got,
            vec![
                (0x1000, 0x2000, Backing::Core(0)),
                (0x2000, 0x4000, Backing::Exe(0x1000)),
                (0x4000, 0x5000, Backing::NotDumped),
            ]
        );
    }
}
