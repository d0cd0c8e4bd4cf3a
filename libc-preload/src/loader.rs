//! Whether the calling thread is inside the dynamic loader: a library's constructor,
//! run by `dlopen` while glibc holds its loader lock (`_dl_load_lock`).
//!
//! A thread that Rust's std starts registers its thread-local destructors with
//! `__cxa_thread_atexit_impl`, which takes that lock. So the runtime's threads cannot run
//! while a constructor holds it, and a start that waits for them waits until `dlopen`
//! returns: a program whose library makes a thread in its constructor (OpenBLAS, at
//! `import numpy`) stalled 2 s at the runtime's start under 1:1, and hung forever at
//! the M-on-N scheduler's. There, the runtime starts later and the thread is glibc's.
//!
//! The lock is a recursive mutex at a fixed offset of ld.so's `_rtld_global` (glibc
//! 2.36 on x86-64: after the 16 namespaces of 160 bytes and `_dl_nns`). It is looked at
//! only where the layout checks out at load: the version is 2.36, `_dl_nns` is a
//! namespace count, and both the load lock and the write lock after it are recursive
//! mutexes. Elsewhere [`held_here`] says false and nothing changes.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `offsetof(struct rtld_global, _dl_nns)` in glibc 2.36, x86-64.
const OFF_NNS: usize = 16 * 160;
/// `_dl_load_lock`, right after it; `_dl_load_write_lock` follows (40 bytes each).
const OFF_LOAD_LOCK: usize = OFF_NNS + 8;
const OFF_WRITE_LOCK: usize = OFF_LOAD_LOCK + 40;
/// In a `pthread_mutex_t`: the owner's tid, and the kind.
const OFF_OWNER: usize = 8;
const OFF_KIND: usize = 16;
/// `PTHREAD_MUTEX_RECURSIVE_NP`, what `_RTLD_LOCK_RECURSIVE_INITIALIZER` makes.
const RECURSIVE: i32 = 1;

/// The load lock's address, once checked; 0 where it cannot be looked at.
static LOAD_LOCK: AtomicUsize = AtomicUsize::new(0);

/// From the constructor: finds the loader lock, if this glibc's layout is the one known.
pub fn init() {
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    if version.to_bytes() != b"2.36" {
        return;
    }
    // SAFETY: dlvsym with NUL-terminated names.
    let global = unsafe {
        libc::dlvsym(
            libc::RTLD_DEFAULT,
            c"_rtld_global".as_ptr(),
            c"GLIBC_PRIVATE".as_ptr(),
        )
    } as usize;
    if global == 0 {
        return;
    }
    // SAFETY: `_rtld_global` is ld.so's `struct rtld_global`, larger than these offsets
    // in glibc 2.36 (checked above); plain reads of its fields.
    let plausible = unsafe {
        let nns = ((global + OFF_NNS) as *const usize).read();
        let kind = |lock: usize| ((global + lock + OFF_KIND) as *const i32).read();
        (1..=16).contains(&nns) && kind(OFF_LOAD_LOCK) == RECURSIVE && kind(OFF_WRITE_LOCK) == RECURSIVE
    };
    if plausible {
        LOAD_LOCK.store(global + OFF_LOAD_LOCK, Ordering::Relaxed);
    }
}

/// Whether the calling thread holds the loader lock (it runs inside `dlopen`, `dlclose`
/// or a library's constructor). False where the lock cannot be looked at.
pub fn held_here() -> bool {
    let lock = LOAD_LOCK.load(Ordering::Relaxed);
    if lock == 0 {
        return false;
    }
    // SAFETY: the lock's owner field, an aligned int inside ld.so's `_rtld_global`, alive
    // for the process. glibc writes it with plain stores under the lock; an atomic load
    // of an aligned int is one `mov` on x86-64 and sees either value (only the owner's
    // own writes can make it equal to our tid).
    let owner =
        unsafe { (*((lock + OFF_OWNER) as *const std::sync::atomic::AtomicI32)).load(Ordering::Relaxed) };
    if owner == 0 {
        return false;
    }
    // glibc names the owner by the tid in the caller's TCB: an M-on-N user thread's is a
    // fake one (`mn::tcb`), which is what its `dlopen` recorded.
    if flexsc_scheduler::in_user_thread() {
        return owner == crate::mn::tcb::current_tid();
    }
    owner == flexsc_shim::sys::gettid()
}
