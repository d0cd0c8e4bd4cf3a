//! User-thread stacks: anonymous mappings with a PROT_NONE guard page below, and a small
//! per-kernel-thread cache so that spawning does not map and unmap every time.
//!
//! ```text
//!   limit()                                                        base()
//!     |  guard (PROT_NONE)  |  usable stack (RW), grows downwards <-- |
//!     +---------------------+-----------------------------------------+
//!     ^ a write here faults: the SIGSEGV handler (`overflow`) reports
//!       "user thread stack overflow" and aborts
//! ```
//!
//! corosensei's `DefaultStack` has the same shape (one guard page); this type exists so
//! the guard's range is ours to name for the overflow handler, and stacks are reserved
//! with `MAP_NORESERVE` (ten thousand 256 KiB stacks reserve 2.5 GiB of address space but
//! touch a few pages each). Rust emits stack probes for frames larger than a page, so a
//! big frame cannot step over the guard.

use std::io;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::ptr::NonNull;

use corosensei::stack::{Stack, StackPointer};

use crate::sys;

/// The smallest usable stack the scheduler hands out (smaller requests are raised to it):
/// the coroutine's own frames, a panic's unwinding and a formatted panic message fit.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// How many finished stacks one kernel thread keeps for reuse.
const CACHED_STACKS: usize = 64;

/// A user thread's stack: `guard` bytes of PROT_NONE, then the usable part.
pub(crate) struct GuardedStack {
    start: NonNull<u8>,
    guard: usize,
    len: usize,
}

// SAFETY: the stack is plain memory owned by this value; nothing in it refers to the
// thread that mapped it.
unsafe impl Send for GuardedStack {}

impl GuardedStack {
    /// Maps a stack of at least `size` usable bytes (rounded up to pages, at least
    /// [`MIN_STACK_SIZE`]) with one guard page below.
    pub(crate) fn new(size: usize) -> io::Result<Self> {
        let page = sys::page_size();
        let usable = size
            .max(MIN_STACK_SIZE)
            .checked_next_multiple_of(page)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let start = sys::map_guarded(page, usable)?;
        Ok(GuardedStack {
            start,
            guard: page,
            len: page + usable,
        })
    }

    /// The guard page's addresses: a fault in here is this stack's overflow.
    pub(crate) fn guard(&self) -> Range<usize> {
        let start = self.start.as_ptr() as usize;
        start..start + self.guard
    }

    /// Usable bytes.
    pub(crate) fn usable(&self) -> usize {
        self.len - self.guard
    }
}

impl Drop for GuardedStack {
    fn drop(&mut self) {
        // SAFETY: the whole mapping is ours; a stack is dropped only when no coroutine
        // runs on it (corosensei gives it back only once the coroutine is done).
        unsafe { sys::unmap(self.start, self.len) };
    }
}

// SAFETY: the guard page at the bottom (inside `limit()..`) is PROT_NONE for the whole
// life of the stack, so an overflow faults instead of writing past the mapping; the usable
// part is at least MIN_STACK_SIZE (more than corosensei's minimum) and `base` and `limit`
// are page-aligned, so aligned to STACK_ALIGNMENT.
unsafe impl Stack for GuardedStack {
    fn base(&self) -> StackPointer {
        let top = self.start.as_ptr() as usize + self.len;
        NonZeroUsize::new(top).expect("a mapping does not end at address 0")
    }

    fn limit(&self) -> StackPointer {
        NonZeroUsize::new(self.start.as_ptr() as usize).expect("a mapping does not start at address 0")
    }
}

/// Finished stacks of one kernel thread, reused by the next spawns made there.
pub(crate) struct StackCache {
    size: usize,
    free: Vec<GuardedStack>,
}

impl StackCache {
    /// A cache of stacks of `size` usable bytes.
    pub(crate) fn new(size: usize) -> Self {
        StackCache {
            size,
            free: Vec::new(),
        }
    }

    /// A cached stack, or a new one.
    pub(crate) fn take(&mut self) -> io::Result<GuardedStack> {
        match self.free.pop() {
            Some(stack) => Ok(stack),
            None => GuardedStack::new(self.size),
        }
    }

    /// Keeps a finished stack for reuse, or unmaps it when the cache is full.
    pub(crate) fn put(&mut self, stack: GuardedStack) {
        if self.free.len() < CACHED_STACKS && stack.usable() >= self.size {
            self.free.push(stack);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn guard_is_below_the_usable_part_and_sizes_round_up() {
        let page = sys::page_size();
        let stack = GuardedStack::new(MIN_STACK_SIZE + 1).unwrap();
        assert_eq!(stack.usable(), MIN_STACK_SIZE + page);
        assert_eq!(stack.guard().start, stack.limit().get());
        assert_eq!(stack.guard().len(), page);
        assert_eq!(stack.base().get() - stack.limit().get(), page + stack.usable());
        // The usable part is writable up to its last byte below base.
        let top = (stack.base().get() - 1) as *mut u8;
        let bottom = stack.guard().end as *mut u8;
        // SAFETY: both addresses are inside the read-write part of the mapping.
        unsafe {
            top.write_volatile(1);
            bottom.write_volatile(2);
        }
    }

    #[test]
    fn tiny_requests_get_the_minimum() {
        assert!(GuardedStack::new(0).unwrap().usable() >= MIN_STACK_SIZE);
    }

    #[test]
    fn cache_reuses_then_maps() {
        let mut cache = StackCache::new(MIN_STACK_SIZE);
        let a = cache.take().unwrap();
        let a_guard = a.guard();
        cache.put(a);
        assert_eq!(cache.take().unwrap().guard(), a_guard);
    }
}
