//! The process allocator: the system's for small blocks; for large ones (the per-object tables)
//! whole pages from the kernel, with huge pages advised, freed blocks kept for reuse, and
//! optionally file-backed scratch space.
//!
//! coreheap's per-object tables are a few large arrays read in random order, allocated and freed
//! phase after phase. With 4 KiB pages nearly every random access also misses the TLB, and
//! every fresh page costs a fault and the kernel's zeroing (in a VM that hands freed memory
//! back to its host, a host fault too); transparent huge pages (`madvise` mode) and reusing
//! freed blocks cut both. A new block is made of freed ones by moving their pages (`mremap`),
//! several if need be, so a table takes the pages of the ones freed before it whatever their
//! sizes; blocks start on huge page boundaries so moved pages stay huge. Freed blocks are kept
//! only below the memory peak so far ([`keep_under_peak`]). When the tables would not fit in
//! memory, large blocks can instead be mappings of unnamed files in a scratch directory, which
//! the kernel writes out under memory pressure instead of failing.

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

/// The kernel's page size assumed for rounding (huge pages are multiples of it): the one the
/// address space is read in.
const PAGE: usize = coreheap_elf::memory::PAGE as usize;

/// A transparent huge page: large blocks start on a multiple of it and span whole ones, so a
/// freed block moved into a new one keeps its huge pages.
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

/// Freed large blocks (or pieces of them) kept for reuse.
const CACHED: usize = 64;

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
    checked(unsafe { libc::close(fd) });
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

thread_local! {
    /// Whether zeroed large blocks allocated on this thread now must be fresh pages.
    static SPARSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, in which zeroed large blocks allocated on this thread are fresh pages, not freed
/// blocks cleared: for tables most of whose entries stay zero, so their pages are never touched.
pub fn sparse<T>(f: impl FnOnce() -> T) -> T {
    let before = SPARSE.with(|s| s.replace(true));
    let out = f();
    SPARSE.with(|s| s.set(before));
    out
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

/// Stops the process when the kernel leaves a hole in a block being handed out: no allocator
/// may return it, and nothing can be allocated to say more (this is inside the allocator).
fn abort_with_hole() -> ! {
    let msg = b"coreheap: fatal: the kernel refused to map pages into a table being built (out of memory mappings?)\n";
    // SAFETY: a write of a static buffer to stderr.
    let _ = unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    std::process::abort()
}

/// Moves the pages of `from..from + len` to `to..to + len`, replacing what was mapped there,
/// and returns how many bytes from the start moved. Past those, `to` holds fresh zeroed pages
/// and `from` its old ones.
fn move_pages(from: usize, len: usize, to: usize) -> usize {
    let done = if move_range(from, len, to) {
        len
    } else {
        move_huge_pages(from, len, to)
    };
    if done < len {
        // A failed move may have unmapped the target: map fresh pages over the rest of it.
        // SAFETY: the range lies in the block being assembled.
        let p = unsafe {
            libc::mmap(
                (to + done) as *mut libc::c_void,
                len - done,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            // Part of the block may be unmapped and the pages moved out of the freed blocks
            // cannot be put back.
            abort_with_hole();
        }
    }
    done
}

/// Moves the pages of `from..from + len` to `to..to + len` in one call; false if the kernel
/// refuses (then `from` is unchanged, but `to` may have been unmapped).
fn move_range(from: usize, len: usize, to: usize) -> bool {
    // SAFETY: both ranges are whole pages of mappings this module made; `to` lies in a block
    // being assembled that no one else sees yet.
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

/// [`move_range`] one huge page at a time, for a block assembled from pieces: it is several
/// mappings, which kernels before 6.17 do not move at once, and every piece starts on a huge
/// page boundary. Returns how many bytes from the start moved.
fn move_huge_pages(from: usize, len: usize, to: usize) -> usize {
    (0..len)
        .step_by(HUGE)
        .take_while(|&o| move_range(from + o, HUGE.min(len - o), to + o))
        .map(|o| HUGE.min(len - o))
        .sum()
}

/// Gives back the free memory the system allocator holds for small blocks (its per-thread
/// arenas after a parallel phase).
pub fn trim_system_heap() {
    // SAFETY: malloc_trim only returns free memory of the system allocator to the kernel. Its
    // result says whether any was returned, which nothing here needs.
    let _released = unsafe { libc::malloc_trim(0) };
}

/// The most anonymous memory the process held less the blocks kept for reuse (all counted as
/// resident): at most what the blocks and objects in use have needed so far.
static IN_USE_PEAK: AtomicU64 = AtomicU64::new(0);

/// The most anonymous memory the process held, as [`keep_under_peak`] saw it.
static ANON_PEAK: AtomicU64 = AtomicU64::new(0);

/// How often [`keep_under_peak`] looks.
const GUARD_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Starts a thread that, every 10 ms, notes the process's anonymous memory and gives back
/// blocks kept for reuse whenever, with them, the process would hold more than what it uses has
/// ever needed (blocks in use can leave part of a reused block's pages unwritten, and small
/// blocks grow outside the cache). Once is enough.
pub fn keep_under_peak() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("block-guard".into())
            .spawn(|| loop {
                if let Some(anon) = anonymous_bytes() {
                    ANON_PEAK.fetch_max(anon, Ordering::Relaxed);
                    trim_to_peak(anon);
                }
                std::thread::sleep(GUARD_EVERY);
            });
    });
}

/// The most anonymous memory (`RssAnon`) the process held: now, and every 10 ms since
/// [`keep_under_peak`] started, the peaks inside phases included.
pub fn anonymous_peak_bytes() -> u64 {
    let now = anonymous_bytes().unwrap_or(0);
    ANON_PEAK.fetch_max(now, Ordering::Relaxed).max(now)
}

/// Bytes of anonymous memory the process holds (`RssAnon`), if the OS tells.
fn anonymous_bytes() -> Option<u64> {
    Some(coreheap::analysis::proc_kb("/proc/self/status", "RssAnon:")? * 1024)
}

/// Gives back kept blocks, smallest first, as far as they lift the process's anonymous memory,
/// `anon` bytes, above the most its blocks in use have needed.
fn trim_to_peak(anon: u64) {
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cached: u64 = c.iter().map(|&(_, l)| l as u64).sum();
    let in_use = anon.saturating_sub(cached);
    let peak = IN_USE_PEAK.fetch_max(in_use, Ordering::Relaxed).max(in_use);
    let mut over = anon.saturating_sub(peak);
    while over > 0 {
        let Some(i) = kept(&c, false) else {
            break;
        };
        let (p, l) = std::mem::take(&mut c[i]);
        unmap(p, l);
        over = over.saturating_sub(l as u64);
    }
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

/// The slot of the smallest kept block, or the largest, if any.
fn kept(c: &[(usize, usize); CACHED], largest: bool) -> Option<usize> {
    let held = c.iter().enumerate().filter(|(_, &(_, l))| l > 0);
    let pick = if largest {
        held.max_by_key(|(_, &(_, l))| l)
    } else {
        held.min_by_key(|(_, &(_, l))| l)
    };
    pick.map(|(i, _)| i)
}

/// Keeps a freed block (or piece) for reuse; when every slot is taken, the smallest of the
/// kept blocks and this one is unmapped.
fn cache_block(ptr: usize, len: usize) {
    if len == 0 {
        return;
    }
    let unmapped = {
        let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let empty = c.iter().position(|&(_, l)| l == 0);
        let i = empty.or_else(|| kept(&c, false)).unwrap_or(0);
        if c[i].1 <= len {
            std::mem::replace(&mut c[i], (ptr, len))
        } else {
            (ptr, len)
        }
    };
    if unmapped.1 > 0 {
        unmap(unmapped.0, unmapped.1);
    }
}

/// A large block of `len` bytes whose first pages are `first`'s (moved, contents kept), then
/// pages of freed blocks, then fresh ones; zeroed past `first` if asked. The smallest freed block that holds `len` is used as is when there is no `first`.
/// Fresh pages are mapped only once every freed block is used, so memory held, blocks kept for
/// reuse included, never exceeds the most the blocks in use have needed.
fn assemble(first: Option<(usize, usize)>, len: usize, zeroed: bool) -> *mut u8 {
    let have = first.map_or(0, |f| f.1);
    let mut pieces = [(0usize, 0usize); CACHED];
    let mut n = 0;
    let mut got = have;
    {
        let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let fit = (c.iter().enumerate())
            .filter(|(_, &(_, l))| l >= len)
            .min_by_key(|(_, &(_, l))| l)
            .map(|(i, _)| i);
        if let (None, Some(i)) = (first, fit) {
            let (p, l) = std::mem::take(&mut c[i]);
            if l > len {
                c[i] = (p + len, l - len);
            }
            drop(c);
            REUSED.fetch_add(len as u64, Ordering::Relaxed);
            if zeroed {
                // SAFETY: the block is `len` writable bytes owned by the caller from now on.
                unsafe { std::ptr::write_bytes(p as *mut u8, 0, len) };
            }
            return p as *mut u8;
        }
        // Largest first, so that a few moves make the block.
        while got < len {
            let Some(i) = kept(&c, true) else {
                break;
            };
            let (p, l) = std::mem::take(&mut c[i]);
            let used = l.min(len - got);
            if l > used {
                c[i] = (p + used, l - used);
            }
            pieces[n] = (p, used);
            n += 1;
            got += used;
        }
    }
    let dest = map_fresh(len) as usize;
    if dest == 0 {
        for &(p, l) in &pieces[..n] {
            cache_block(p, l);
        }
        return std::ptr::null_mut();
    }
    FRESH.fetch_sub(got as u64, Ordering::Relaxed);
    REUSED.fetch_add((got - have) as u64, Ordering::Relaxed);
    let mut at = dest;
    if let Some((p, l)) = first {
        let moved = move_pages(p, l, at);
        if moved < l {
            // SAFETY: the rest of the caller's block is copied onto fresh pages of `dest`.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (p + moved) as *const u8,
                    (at + moved) as *mut u8,
                    l - moved,
                )
            };
            unmap(p + moved, l - moved);
        }
        at += l;
    }
    for &(p, l) in &pieces[..n] {
        let moved = move_pages(p, l, at);
        if zeroed {
            // SAFETY: `at..at + moved` lies in `dest`, which the caller will own.
            unsafe { std::ptr::write_bytes(at as *mut u8, 0, moved) };
        }
        if moved < l {
            unmap(p + moved, l - moved);
        }
        at += l;
    }
    dest as *mut u8
}

/// A large block of at least `size` bytes, from freed blocks as far as they go.
fn large_alloc(size: usize, zeroed: bool) -> *mut u8 {
    let len = block_len(size);
    if SCRATCH_ON.load(Ordering::Relaxed) || zeroed && SPARSE.try_with(|s| s.get()).unwrap_or(false)
    {
        return map_fresh(len);
    }
    assemble(None, len, zeroed)
}

/// Frees a large block: kept for reuse, or unmapped with its scratch file.
fn large_free(ptr: *mut u8, size: usize) {
    let len = block_len(size);
    if SCRATCH_ON.load(Ordering::Relaxed) {
        unmap(ptr as usize, len);
        let _ = SCRATCH_NOW.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(len as u64))
        });
        return;
    }
    cache_block(ptr as usize, len);
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
            // Pages move without copying: a smaller block gives its tail for reuse, a larger
            // one is this block's pages followed by freed or fresh ones.
            let (old_len, new_len) = (block_len(layout.size()), block_len(new_size));
            if new_len <= old_len {
                cache_block(ptr as usize + new_len, old_len - new_len);
                return ptr;
            }
            return assemble(Some((ptr as usize, old_len)), new_len, false);
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

    // One test drives the shared cache of freed blocks, so no other test's blocks are in it
    // (the unit tests do not run with this allocator as the global one).
    #[test]
    fn freed_blocks_are_moved_into_new_ones_cleared_and_kept_across_resizes() {
        let a = HugePages;
        let layout = |size| Layout::from_size_align(size, 8).unwrap();
        unsafe {
            let (p1, p2) = (a.alloc(layout(5 * MIB)), a.alloc(layout(9 * MIB)));
            assert!(!p1.is_null() && !p2.is_null());
            assert_eq!((p1 as usize % HUGE, p2 as usize % HUGE), (0, 0));
            bytes(p1, 5 * MIB).fill(0xaa);
            bytes(p2, 9 * MIB).fill(0xbb);
            a.dealloc(p1, layout(5 * MIB));
            a.dealloc(p2, layout(9 * MIB));

            // 16 MiB takes both freed blocks (6 and 10 MiB once rounded to huge pages), cleared,
            // and no fresh pages.
            let (fresh, reused) = large_block_bytes();
            let p3 = a.alloc_zeroed(layout(16 * MIB));
            assert!(!p3.is_null());
            assert_eq!(large_block_bytes(), (fresh, reused + 16 * MIB as u64));
            assert!(bytes(p3, 16 * MIB).iter().all(|&b| b == 0));

            // Growing keeps the contents (the block is two mappings now, moved as one or huge
            // page by huge page) and adds fresh pages, zeroed by the kernel.
            fill(p3, 16 * MIB);
            let p4 = a.realloc(p3, layout(16 * MIB), 40 * MIB);
            assert!(!p4.is_null());
            assert!(filled(p4, 16 * MIB));
            assert!(bytes(p4.add(16 * MIB), 24 * MIB).iter().all(|&b| b == 0));
            assert_eq!(large_block_bytes().0, fresh + 24 * MIB as u64);

            // Shrinking keeps the block where it is and its front; the tail is kept for reuse
            // and serves the next block that fits, as is.
            let p5 = a.realloc(p4, layout(40 * MIB), 12 * MIB);
            assert_eq!(p5, p4);
            assert!(filled(p5, 12 * MIB));
            let p6 = a.alloc(layout(20 * MIB));
            assert_eq!(p6, p5.add(12 * MIB));
            a.dealloc(p6, layout(20 * MIB));

            // Zeroed blocks of sparse tables are fresh pages even when freed ones would fit.
            let (fresh, reused) = large_block_bytes();
            let p7 = sparse(|| a.alloc_zeroed(layout(8 * MIB)));
            assert_eq!(large_block_bytes(), (fresh + 8 * MIB as u64, reused));
            assert!(bytes(p7, 8 * MIB).iter().all(|&b| b == 0));
            a.dealloc(p7, layout(8 * MIB));
            a.dealloc(p5, layout(12 * MIB));

            // A block made of two freed ones is two mappings: moved a huge page at a time (as
            // on kernels that do not move several mappings at once), its bytes follow.
            let (p8, p9) = (a.alloc(layout(2 * MIB)), a.alloc(layout(4 * MIB)));
            bytes(p8, 2 * MIB).fill(1);
            bytes(p9, 4 * MIB).fill(2);
            release_cache();
            a.dealloc(p8, layout(2 * MIB));
            a.dealloc(p9, layout(4 * MIB));
            let p10 = a.alloc(layout(6 * MIB));
            fill(p10, 6 * MIB);
            let to = map_fresh(6 * MIB);
            assert_eq!(move_huge_pages(p10 as usize, 6 * MIB, to as usize), 6 * MIB);
            assert!(filled(to, 6 * MIB));
            a.dealloc(to, layout(6 * MIB));
            release_cache();
        }
    }
}
