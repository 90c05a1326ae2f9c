//! The process allocator: the system's, asking the kernel for huge pages behind large blocks.
//!
//! coreheap's per-object tables are a few large arrays read in random order. With 4 KiB pages
//! nearly every random access also misses the TLB, and filling them costs one page fault per
//! 4 KiB. Transparent huge pages (where the kernel offers them on request, `madvise` mode)
//! cut both by 512.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks from this size up are advised to use huge pages.
const LARGE: usize = 4 << 20;

/// The system allocator, with huge pages advised for blocks of 4 MiB and more.
#[derive(Debug, Default)]
pub struct HugePages;

/// Asks for huge pages behind the whole pages of a block (best effort: errors are ignored).
fn advise(ptr: *mut u8, size: usize) {
    if ptr.is_null() || size < LARGE {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = (ptr as usize).next_multiple_of(PAGE);
        let end = (ptr as usize + size) & !(PAGE - 1);
        if end > start {
            // SAFETY: the range lies inside a block this allocator just handed out; the
            // advice changes how the kernel backs it, not its contents or validity.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
}

// SAFETY: every call is forwarded to `System`, which upholds the `GlobalAlloc` contract;
// `advise` only adds a hint about the returned memory.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        advise(p, new_size);
        p
    }
}
