//! The library's own heap: glibc's allocator through its internal entry points
//! (`__libc_malloc` and friends), never the program's `malloc`.
//!
//! A program may bring its own allocator (named and MariaDB link jemalloc) whose locks are
//! pthread mutexes, which the M-on-N mode interposes. A contended lock parks the user
//! thread, and parking allocates (the lot's queue entry and waker). Through `malloc` that
//! allocation went back into the program's allocator from inside it: named crashed at
//! start-up in about one run in ten (SIGSEGV in jemalloc's `malloc`, called from
//! `lot::wait_on`, called from jemalloc's own `pthread_mutex_lock`). glibc's allocator
//! takes only its internal locks (never an interposed function), so the library's
//! allocations cannot re-enter the program's allocator or the library itself.
//!
//! glibc's allocator takes its arena locks, and under M-on-N a user thread that meets a
//! taken glibc lock may yield (`mn::libc_locks`). Not from here: the library allocates
//! while it holds spin locks and borrows of its kernel thread's queues, so every call
//! below is a [`no_switch`] section, where such a wait stays in the kernel.
//!
//! Nothing allocated here is freed by the program or the other way round: the library
//! never hands its allocations to C, and frees C memory (the loader's TLS blocks) with
//! `libc::free`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use crate::mn::libc_locks::no_switch;

extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    fn __libc_free(p: *mut c_void);
}

/// glibc's malloc returns memory aligned to 16 bytes on x86-64 (`MALLOC_ALIGNMENT`).
const MALLOC_ALIGN: usize = 16;

/// See the module docs.
pub struct LibcHeap;

// SAFETY: every block comes from glibc's allocator with at least the layout's size and
// alignment (memalign for alignments above malloc's), and goes back to it.
unsafe impl GlobalAlloc for LibcHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain calls into glibc's allocator.
        unsafe {
            if layout.align() <= MALLOC_ALIGN {
                no_switch(|| __libc_malloc(layout.size()).cast())
            } else {
                no_switch(|| __libc_memalign(layout.align(), layout.size()).cast())
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: as above.
            return unsafe { no_switch(|| __libc_calloc(1, layout.size()).cast()) };
        }
        // SAFETY: as above; the block has `layout.size()` bytes.
        unsafe {
            let p = self.alloc(layout);
            if !p.is_null() {
                std::ptr::write_bytes(p, 0, layout.size());
            }
            p
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract).
        unsafe { no_switch(|| __libc_free(ptr.cast())) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: `ptr` came from `__libc_malloc`/`__libc_calloc` (the caller's
            // contract and the alignment test above).
            return unsafe { no_switch(|| __libc_realloc(ptr.cast(), new_size).cast()) };
        }
        // SAFETY: a new block of the same alignment; the old one holds `layout.size()`
        // bytes, and is freed only after the copy.
        unsafe {
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
