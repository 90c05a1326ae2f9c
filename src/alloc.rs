//! The process allocator: the system's for small blocks; for large ones (the per-object tables)
//! whole pages from the kernel, with huge pages advised, freed blocks kept for reuse, and
//! optionally file-backed scratch space.
//!
//! coreheap's per-object tables are a few large arrays read in random order, allocated and freed
//! phase after phase. With 4 KiB pages nearly every random access also misses the TLB, and
//! every fresh page costs a fault and the kernel's zeroing; transparent huge pages (`madvise`
//! mode) and reusing freed blocks cut both. When the tables would not fit in memory, large
//! blocks can instead be mappings of unnamed files in a scratch directory, which the kernel
//! writes out under memory pressure instead of failing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

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

/// The kernel's page size assumed for rounding (huge pages are multiples of it).
const PAGE: usize = 4096;

/// Freed large blocks kept for reuse.
const CACHED: usize = 8;

/// The system allocator for small blocks; kernel pages, reused and maybe file-backed, for
/// large ones.
#[derive(Debug, Default)]
pub struct HugePages;

/// Freed large blocks: (address, length), length 0 for an empty slot.
static CACHE: Mutex<[(usize, usize); CACHED]> = Mutex::new([(0, 0); CACHED]);

/// The scratch directory, once scratch files are in use.
static SCRATCH_DIR: OnceLock<CString> = OnceLock::new();
/// Whether new large blocks go to scratch files.
static SCRATCH_ON: AtomicBool = AtomicBool::new(false);
/// Bytes in scratch files now, and at most.
static SCRATCH_NOW: AtomicU64 = AtomicU64::new(0);
static SCRATCH_PEAK: AtomicU64 = AtomicU64::new(0);
/// Bytes of fresh pages mapped for large blocks (each costs the kernel a fault and zeroing).
static FRESH: AtomicU64 = AtomicU64::new(0);
/// Bytes of large blocks served from freed ones.
static REUSED: AtomicU64 = AtomicU64::new(0);

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
    unsafe { libc::close(fd) };
    match SCRATCH_DIR.get() {
        Some(d) if *d != c => return Err(ScratchError::AlreadySet),
        Some(_) => {}
        None => {
            let _ = SCRATCH_DIR.set(c);
        }
    }
    SCRATCH_ON.store(true, Ordering::SeqCst);
    release_cache();
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

/// Bytes of fresh pages mapped for large blocks, and bytes served again from freed blocks.
pub fn large_block_bytes() -> (u64, u64) {
    (
        FRESH.load(Ordering::Relaxed),
        REUSED.load(Ordering::Relaxed),
    )
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
        libc::close(fd);
        if p == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        let now = SCRATCH_NOW.fetch_add(len as u64, Ordering::Relaxed) + len as u64;
        SCRATCH_PEAK.fetch_max(now, Ordering::Relaxed);
        p.cast()
    }
}

/// `len` bytes of fresh zeroed pages: a scratch file when in use and the block is big enough,
/// anonymous memory (huge pages advised) otherwise; null if the kernel refuses.
fn map_fresh(len: usize) -> *mut u8 {
    FRESH.fetch_add(len as u64, Ordering::Relaxed);
    if SCRATCH_ON.load(Ordering::Relaxed) {
        let p = map_scratch(len);
        if !p.is_null() {
            return p;
        }
    }
    // SAFETY: an anonymous private mapping; no existing memory is touched.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        libc::madvise(p, len, libc::MADV_HUGEPAGE);
        p.cast()
    }
}

/// Unmaps a block (the bytes of a scratch file are freed with its last mapping).
fn unmap(ptr: usize, len: usize) {
    // SAFETY: `ptr..ptr + len` is a whole mapping (or the tail of one) this module made and
    // nothing refers to any more.
    unsafe { libc::munmap(ptr as *mut libc::c_void, len) };
}

/// Gives every freed large block kept for reuse back to the kernel (the memory then serves the
/// page cache, e.g. the core's pages that reports read).
pub fn release_free_blocks() {
    release_cache();
    // The system allocator keeps freed small blocks (per-thread arenas of a parallel phase)
    // resident; hand back what it can.
    // SAFETY: malloc_trim only returns free memory of the system allocator to the kernel.
    unsafe { libc::malloc_trim(0) };
}

/// Unmaps every cached block.
fn release_cache() {
    let taken = {
        let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *c, [(0, 0); CACHED])
    };
    for (p, len) in taken {
        if len > 0 {
            unmap(p, len);
        }
    }
}

/// A large block of at least `size` bytes: the smallest cached block that fits (trimmed to
/// size); else the largest cached block grown in place or moved (only the growth is fresh
/// pages), the others given back; else fresh pages.
fn large_alloc(size: usize, zeroed: bool) -> *mut u8 {
    let len = size.next_multiple_of(PAGE);
    if SCRATCH_ON.load(Ordering::Relaxed) {
        release_cache();
        return map_fresh(len);
    }
    let (fit, grow) = {
        let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let fit = c
            .iter()
            .enumerate()
            .filter(|(_, &(_, l))| l >= len)
            .min_by_key(|(_, &(_, l))| l)
            .map(|(i, _)| i);
        match fit {
            Some(i) => (Some(std::mem::take(&mut c[i])), None),
            None => {
                let largest = c
                    .iter()
                    .enumerate()
                    .filter(|(_, &(_, l))| l > 0)
                    .max_by_key(|(_, &(_, l))| l)
                    .map(|(i, _)| i);
                (None, largest.map(|i| std::mem::take(&mut c[i])))
            }
        }
    };
    if let Some((p, l)) = fit {
        REUSED.fetch_add(len as u64, Ordering::Relaxed);
        if l > len {
            unmap(p + len, l - len);
        }
        if zeroed {
            // SAFETY: the block is `len` writable bytes owned by the caller from now on.
            unsafe { std::ptr::write_bytes(p as *mut u8, 0, len) };
        }
        return p as *mut u8;
    }
    release_cache();
    if let Some((p, l)) = grow {
        // SAFETY: `p..p + l` is a whole anonymous mapping made here and owned by no one.
        let q = unsafe { libc::mremap(p as *mut libc::c_void, l, len, libc::MREMAP_MAYMOVE) };
        if q != libc::MAP_FAILED {
            REUSED.fetch_add(l as u64, Ordering::Relaxed);
            FRESH.fetch_add((len - l) as u64, Ordering::Relaxed);
            // SAFETY: the grown mapping is `len` bytes; its first `l` were used before.
            unsafe {
                libc::madvise(q, len, libc::MADV_HUGEPAGE);
                if zeroed {
                    std::ptr::write_bytes(q.cast::<u8>(), 0, l);
                }
            }
            return q.cast();
        }
        unmap(p, l);
    }
    map_fresh(len)
}

/// Frees a large block: into the cache (the smallest cached block makes room), or unmapped.
fn large_free(ptr: *mut u8, size: usize) {
    let len = size.next_multiple_of(PAGE);
    if SCRATCH_ON.load(Ordering::Relaxed) {
        unmap(ptr as usize, len);
        let _ = SCRATCH_NOW.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(len as u64))
        });
        return;
    }
    let evicted = {
        let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        match c.iter().position(|&(_, l)| l == 0) {
            Some(i) => {
                c[i] = (ptr as usize, len);
                None
            }
            None => {
                let (i, _) = c
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, &(_, l))| l)
                    .unwrap_or((0, &(0, 0)));
                Some(std::mem::replace(&mut c[i], (ptr as usize, len)))
            }
        }
    };
    if let Some((p, l)) = evicted {
        unmap(p, l);
    }
}

// SAFETY: small blocks are the system allocator's. Large blocks are whole page mappings made
// here: each is handed out to one owner, freed once with its size, and never overlaps another.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            large_alloc(layout.size(), false)
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            large_alloc(layout.size(), true)
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
            // Anonymous pages move without copying.
            let (old_len, new_len) = (
                layout.size().next_multiple_of(PAGE),
                new_size.next_multiple_of(PAGE),
            );
            FRESH.fetch_add(new_len.saturating_sub(old_len) as u64, Ordering::Relaxed);
            let p = libc::mremap(ptr.cast(), old_len, new_len, libc::MREMAP_MAYMOVE);
            if p == libc::MAP_FAILED {
                return std::ptr::null_mut();
            }
            libc::madvise(p, new_size, libc::MADV_HUGEPAGE);
            return p.cast();
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
