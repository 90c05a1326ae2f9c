//! The process allocator: the system's for small blocks; for large ones (the per-object tables)
//! whole pages from the kernel, with huge pages advised, and optionally file-backed scratch
//! space.
//!
//! coreheap's per-object tables are a few large arrays read in random order. With 4 KiB pages
//! nearly every random access also misses the TLB; transparent huge pages (`madvise` mode) cut
//! that (at 16 GiB, `maps` took 62.4–63.2 s without the advice against 51.9–52.2 s with it).
//! Blocks start on huge page boundaries and a growing block's pages are moved (`mremap`), not
//! copied. Freed blocks go back to the kernel at once: keeping them for later blocks saved no
//! time measurable at 16 GiB (docs/performance.md). When the tables would not fit in memory,
//! large blocks can instead be mappings of unnamed files in a scratch directory, which the
//! kernel writes out under memory pressure instead of failing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Blocks from this size up are mapped directly, unless `COREHEAP_SCRATCH_MIN_BYTES` (read
/// once, before the first allocation is classified) says otherwise, for tests on small cores.
const LARGE: usize = 4 << 20;

/// The size from which blocks are mapped here; 0 until the first allocation reads it.
static THRESHOLD: AtomicUsize = AtomicUsize::new(0);

/// The size from which blocks are mapped here, fixed on first use.
fn threshold() -> usize {
    let t = THRESHOLD.load(Ordering::Relaxed);
    if t != 0 {
        return t;
    }
    // SAFETY: getenv with a NUL-terminated name; the value is only read before returning.
    // It does not allocate, which matters inside the allocator.
    let from_env = unsafe {
        let v = libc::getenv(c"COREHEAP_SCRATCH_MIN_BYTES".as_ptr());
        if v.is_null() {
            None
        } else {
            std::ffi::CStr::from_ptr(v)
                .to_str()
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
        }
    };
    let t = from_env.map_or(LARGE, |b| b.max(PAGE).next_multiple_of(PAGE));
    // Another thread may have fixed it first; everyone uses the first value.
    match THRESHOLD.compare_exchange(0, t, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => t,
        Err(first) => first,
    }
}

/// The kernel's page size assumed for rounding (huge pages are multiples of it): the one the
/// address space is read in.
const PAGE: usize = coreheap_elf::memory::PAGE as usize;

/// A transparent huge page: large blocks start on a multiple of it and span whole ones, so a
/// grown block's pages, moved into the new one, stay huge pages.
const HUGE: usize = 2 << 20;

/// Bytes mapped for a large block of `size` bytes: whole huge pages from one up (smaller blocks,
/// large only when tests lower the threshold, whole pages).
fn block_len(size: usize) -> usize {
    if size >= HUGE {
        size.next_multiple_of(HUGE)
    } else {
        size.next_multiple_of(PAGE)
    }
}

/// The system allocator for small blocks; kernel pages, maybe file-backed, for large ones.
#[derive(Debug, Default)]
pub struct HugePages;

/// The scratch directory, once scratch files are in use.
static SCRATCH_DIR: OnceLock<CString> = OnceLock::new();
/// Whether new large blocks go to scratch files.
static SCRATCH_ON: AtomicBool = AtomicBool::new(false);
/// Bytes in scratch files now, and at most.
static SCRATCH_NOW: AtomicU64 = AtomicU64::new(0);
static SCRATCH_PEAK: AtomicU64 = AtomicU64::new(0);
/// Bytes of fresh pages mapped for large blocks (each costs the kernel a fault and zeroing).
static FRESH: AtomicU64 = AtomicU64::new(0);

/// Why scratch files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    /// The path cannot be passed to the OS.
    #[error("scratch directory {0}: the path contains a NUL byte")]
    BadPath(String),
    /// The directory does not take unnamed temporary files.
    #[error("scratch directory {path}: cannot create an unnamed file there; give --scratch-dir a writable directory on a local file system")]
    Unusable {
        /// The directory.
        path: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Scratch files are already in use in another directory.
    #[error("scratch files are already in use in another directory")]
    AlreadySet,
}

/// From now on, large blocks are mappings of unnamed files in `dir` (removed when the process
/// ends). It takes effect where [`HugePages`] is the global allocator, as in the `coreheap`
/// binary.
pub fn use_scratch(dir: &std::path::Path) -> Result<(), ScratchError> {
    let shown = dir.display().to_string();
    let c = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| ScratchError::BadPath(shown.clone()))?;
    let fd = open_unnamed(&c).map_err(|source| ScratchError::Unusable {
        path: shown.clone(),
        source,
    })?;
    // SAFETY: `fd` was just opened and is closed once.
    checked(unsafe { libc::close(fd) });
    match SCRATCH_DIR.get() {
        Some(d) if *d != c => return Err(ScratchError::AlreadySet),
        Some(_) => {}
        None => {
            let _ = SCRATCH_DIR.set(c);
        }
    }
    SCRATCH_ON.store(true, Ordering::SeqCst);
    Ok(())
}

/// Whether large blocks go to scratch files.
pub fn scratch_in_use() -> bool {
    SCRATCH_ON.load(Ordering::Relaxed)
}

/// The most bytes held in scratch files at once.
pub fn scratch_peak_bytes() -> u64 {
    SCRATCH_PEAK.load(Ordering::Relaxed)
}

/// Bytes of fresh pages mapped for large blocks.
pub fn fresh_block_bytes() -> u64 {
    FRESH.load(Ordering::Relaxed)
}

/// Opens an unnamed file in a directory.
fn open_unnamed(dir: &CString) -> std::io::Result<i32> {
    // SAFETY: `dir` is a valid NUL-terminated path; the flags ask for a new unnamed file.
    let fd = unsafe {
        libc::open(
            dir.as_ptr(),
            libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(fd)
    }
}

/// Whether a block of this layout is handled here rather than by the system allocator.
fn is_large(size: usize, align: usize) -> bool {
    size >= threshold() && align <= PAGE
}

/// `len` bytes of a new scratch file, mapped shared; null if that fails.
fn map_scratch(len: usize) -> *mut u8 {
    let Some(dir) = SCRATCH_DIR.get() else {
        return std::ptr::null_mut();
    };
    let Ok(fd) = open_unnamed(dir) else {
        return std::ptr::null_mut();
    };
    // SAFETY: plain system calls on a file descriptor this function owns and closes; the
    // mapping stays valid after the close.
    unsafe {
        // Reserve the disk space now: a full disk is then a failed allocation, not a SIGBUS.
        let p = if libc::posix_fallocate(fd, 0, len as libc::off_t) == 0 {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        } else {
            libc::MAP_FAILED
        };
        checked(libc::close(fd));
        if p == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        let now = SCRATCH_NOW.fetch_add(len as u64, Ordering::Relaxed) + len as u64;
        SCRATCH_PEAK.fetch_max(now, Ordering::Relaxed);
        p.cast()
    }
}

/// `len` bytes of fresh zeroed pages: a scratch file when in use, else anonymous memory (huge
/// pages advised) starting on a huge page boundary if it spans one; null if the kernel refuses.
fn map_fresh(len: usize) -> *mut u8 {
    FRESH.fetch_add(len as u64, Ordering::Relaxed);
    if SCRATCH_ON.load(Ordering::Relaxed) {
        let p = map_scratch(len);
        if !p.is_null() {
            return p;
        }
    }
    // SAFETY: an anonymous private mapping, trimmed to a huge page boundary; no existing
    // memory is touched.
    unsafe {
        let pad = if len >= HUGE { HUGE } else { 0 };
        let p = libc::mmap(
            std::ptr::null_mut(),
            len + pad,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        let start = if pad > 0 {
            (p as usize).next_multiple_of(HUGE)
        } else {
            p as usize
        };
        let head = start - p as usize;
        if head > 0 {
            unmap(p as usize, head);
        }
        if pad > head {
            unmap(start + len, pad - head);
        }
        // Advice only: a kernel without transparent huge pages refuses it, and the block is
        // still good.
        checked(libc::madvise(
            start as *mut libc::c_void,
            len,
            libc::MADV_HUGEPAGE,
        ));
        start as *mut u8
    }
}

/// Unmaps a block (the bytes of a scratch file are freed with its last mapping).
fn unmap(ptr: usize, len: usize) {
    // SAFETY: `ptr..ptr + len` is a whole mapping (or part of one) this module made and
    // nothing refers to any more.
    checked(unsafe { libc::munmap(ptr as *mut libc::c_void, len) });
}

/// System calls here that failed where the block could still be used or given up
/// (`munmap`, `close`, `madvise`): their memory stays mapped, which is all they cost.
static FAILED_CALLS: AtomicU64 = AtomicU64::new(0);

/// Counts a failed system call (a -1 result) in [`FAILED_CALLS`].
fn checked(result: libc::c_int) {
    if result == -1 {
        FAILED_CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many system calls of the allocator failed without harm to the blocks handed out.
pub fn failed_calls() -> u64 {
    FAILED_CALLS.load(Ordering::Relaxed)
}

/// Moves the pages of `from..from + len` to `to..to + len` in one call; false if the kernel
/// refuses (then `from` is unchanged, but `to` may have been unmapped).
fn move_range(from: usize, len: usize, to: usize) -> bool {
    // SAFETY: both ranges are whole pages of mappings this module made; `to` lies in a block
    // being made that no one else sees yet.
    let q = unsafe {
        libc::mremap(
            from as *mut libc::c_void,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            to as *mut libc::c_void,
        )
    };
    q != libc::MAP_FAILED
}

/// Gives back the free memory the system allocator holds for small blocks (its per-thread
/// arenas after a parallel phase).
pub fn trim_system_heap() {
    // SAFETY: malloc_trim only returns free memory of the system allocator to the kernel. Its
    // result says whether any was returned, which nothing here needs.
    let _released = unsafe { libc::malloc_trim(0) };
}

/// The most anonymous memory the process held, as [`watch_peak`] saw it.
static ANON_PEAK: AtomicU64 = AtomicU64::new(0);

/// How often [`watch_peak`] looks.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Starts a thread that notes the process's anonymous memory every 10 ms, for
/// [`anonymous_peak_bytes`]. Once is enough.
pub fn watch_peak() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("peak-watch".into())
            .spawn(|| loop {
                if let Some(anon) = anonymous_bytes() {
                    ANON_PEAK.fetch_max(anon, Ordering::Relaxed);
                }
                std::thread::sleep(WATCH_EVERY);
            });
    });
}

/// The most anonymous memory (`RssAnon`) the process held: now, and every 10 ms since
/// [`watch_peak`] started, the peaks inside phases included.
pub fn anonymous_peak_bytes() -> u64 {
    let now = anonymous_bytes().unwrap_or(0);
    ANON_PEAK.fetch_max(now, Ordering::Relaxed).max(now)
}

/// Bytes of anonymous memory the process holds (`RssAnon`), if the OS tells.
fn anonymous_bytes() -> Option<u64> {
    Some(coreheap::analysis::proc_kb("/proc/self/status", "RssAnon:")? * 1024)
}

/// A large block of at least `size` bytes: fresh pages, zeroed by the kernel.
fn large_alloc(size: usize) -> *mut u8 {
    map_fresh(block_len(size))
}

/// Frees a large block: unmapped, with its scratch file if it has one.
fn large_free(ptr: *mut u8, size: usize) {
    let len = block_len(size);
    unmap(ptr as usize, len);
    if SCRATCH_ON.load(Ordering::Relaxed) {
        let _ = SCRATCH_NOW.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(len as u64))
        });
    }
}

/// A large block grown from `ptr` (`old_len` bytes mapped, all kept) to `new_len` bytes: its
/// pages moved to the front of a fresh block, copied only if the kernel will not move them.
fn large_grow(ptr: *mut u8, old_len: usize, new_len: usize) -> *mut u8 {
    let dest = map_fresh(new_len);
    if dest.is_null() {
        return dest;
    }
    if move_range(ptr as usize, old_len, dest as usize) {
        // The front of `dest` is the old block's pages, not fresh ones.
        FRESH.fetch_sub(old_len as u64, Ordering::Relaxed);
    } else {
        // The failed move may have unmapped the front of `dest`: map it again, then copy.
        // SAFETY: the range is the front of `dest`, which no one else sees yet.
        let p = unsafe {
            libc::mmap(
                dest.cast(),
                old_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            unmap(dest as usize, new_len);
            return std::ptr::null_mut();
        }
        // SAFETY: both blocks are at least `old_len` bytes and do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(ptr, dest, old_len) };
        unmap(ptr as usize, old_len);
    }
    dest
}

// SAFETY: small blocks are the system allocator's. Large blocks are whole page mappings made
// here: each is handed out to one owner, freed once with its size, and never overlaps another.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            large_alloc(layout.size())
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            large_alloc(layout.size())
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size(), layout.align()) {
            large_free(ptr, layout.size())
        } else {
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old_large, new_large) = (
            is_large(layout.size(), layout.align()),
            is_large(new_size, layout.align()),
        );
        if !old_large && !new_large {
            return System.realloc(ptr, layout, new_size);
        }
        if old_large && new_large && !SCRATCH_ON.load(Ordering::Relaxed) {
            // Pages move without copying: a smaller block gives back its tail, a larger one
            // is this block's pages followed by fresh ones.
            let (old_len, new_len) = (block_len(layout.size()), block_len(new_size));
            if new_len <= old_len {
                if new_len < old_len {
                    unmap(ptr as usize + new_len, old_len - new_len);
                }
                return ptr;
            }
            return large_grow(ptr, old_len, new_len);
        }
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let p = self.alloc(new_layout);
        if !p.is_null() {
            std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// `len` bytes at `p`.
    unsafe fn bytes<'a>(p: *mut u8, len: usize) -> &'a mut [u8] {
        std::slice::from_raw_parts_mut(p, len)
    }

    /// Writes each byte's offset (mod 251) into `len` bytes at `p`.
    unsafe fn fill(p: *mut u8, len: usize) {
        for (i, b) in bytes(p, len).iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
    }

    /// Whether `len` bytes at `p` hold what [`fill`] wrote.
    unsafe fn filled(p: *mut u8, len: usize) -> bool {
        bytes(p, len)
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8)
    }

    #[test]
    fn large_blocks_are_aligned_zeroed_and_keep_their_bytes_when_resized() {
        let a = HugePages;
        let layout = |size| Layout::from_size_align(size, 8).unwrap();
        unsafe {
            let p1 = a.alloc_zeroed(layout(5 * MIB));
            assert!(!p1.is_null());
            assert_eq!(p1 as usize % HUGE, 0);
            assert!(bytes(p1, 5 * MIB).iter().all(|&b| b == 0));

            // Growing keeps the contents (the pages move) and adds fresh pages, zeroed by the
            // kernel; the fresh bytes count only the new pages.
            fill(p1, 5 * MIB);
            let fresh = fresh_block_bytes();
            let p2 = a.realloc(p1, layout(5 * MIB), 40 * MIB);
            assert!(!p2.is_null());
            assert_eq!(p2 as usize % HUGE, 0);
            assert!(filled(p2, 5 * MIB));
            assert!(bytes(p2.add(6 * MIB), 34 * MIB).iter().all(|&b| b == 0));
            assert_eq!(fresh_block_bytes(), fresh + 34 * MIB as u64);

            // Shrinking keeps the block where it is, and its front.
            let p3 = a.realloc(p2, layout(40 * MIB), 4 * MIB);
            assert_eq!(p3, p2);
            assert!(filled(p3, 4 * MIB));
            a.dealloc(p3, layout(4 * MIB));

            // A block moved whole, as a grown block is.
            let p4 = a.alloc(layout(6 * MIB));
            fill(p4, 6 * MIB);
            let to = map_fresh(6 * MIB);
            assert!(move_range(p4 as usize, 6 * MIB, to as usize));
            assert!(filled(to, 6 * MIB));
            a.dealloc(to, layout(6 * MIB));
        }
    }
}
