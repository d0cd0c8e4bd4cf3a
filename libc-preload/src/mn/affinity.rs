//! The program's CPU affinity, as its user threads see it.
//!
//! The scheduler pins each kernel thread to its user core. Natively a thread has its
//! creator's affinity, and what it starts inherits its own; here the affinity of the
//! thread that started the scheduler (the program's main thread, mostly) stands for a
//! user thread's:
//!
//! - a user thread's `sched_getaffinity` and `pthread_getaffinity_np` read it (they read
//!   the one pinned core: Rust's `available_parallelism` in a thread said 1);
//! - a child a user thread forks takes it at once (`restore_in_child`);
//! - around a user thread's `posix_spawn`, `system`, `popen` and exec, whose child or new
//!   image would inherit the pinned core (`nproc` said 1, and a `make -j` started from a
//!   thread ran every compiler on one core), the kernel thread widens its own to it
//!   ([`spawning`]).
//!
//! Not covered: `execl`, `execle` and `execlp`, which glibc runs through its internal
//! `execve` (variadic: not interposed here); and a program that changes its affinity
//! after its first thread started (the remembered one stays).

use std::sync::OnceLock;

/// A kernel CPU mask, as `sched_getaffinity` reads it: 1,024 CPUs (glibc's `cpu_set_t`).
type CpuMask = [u64; 16];

/// The affinity the program's threads had when the scheduler started (see the module
/// docs).
static PROGRAM: OnceLock<CpuMask> = OnceLock::new();

/// Reads the calling kernel thread's affinity; None if the kernel refuses.
fn get() -> Option<CpuMask> {
    let mut mask: CpuMask = [0; 16];
    // SAFETY: sched_getaffinity writes at most `size_of_val(&mask)` bytes into `mask`.
    let r = unsafe {
        flexsc_shim::sys::syscall6(
            libc::SYS_sched_getaffinity as u64,
            [
                0,
                std::mem::size_of_val(&mask) as u64,
                mask.as_mut_ptr() as u64,
                0,
                0,
                0,
            ],
        )
    };
    (r > 0).then_some(mask)
}

/// Sets the calling kernel thread's affinity (raw: the program's wrappers are not ours to
/// count).
fn set(mask: &CpuMask) {
    // SAFETY: sched_setaffinity reads `size_of_val(mask)` bytes of `mask`.
    unsafe {
        flexsc_shim::sys::syscall6(
            libc::SYS_sched_setaffinity as u64,
            [
                0,
                std::mem::size_of_val(mask) as u64,
                mask.as_ptr() as u64,
                0,
                0,
                0,
            ],
        )
    };
}

/// Remembers the calling thread's affinity as the program's: call it on the thread that
/// starts the scheduler, before any kernel thread is pinned.
pub(crate) fn remember_program() {
    if let Some(mask) = get() {
        let _ = PROGRAM.set(mask);
    }
}

/// Writes the program's affinity over the first `size` bytes (at most a mask's) of the
/// set at `set`, which a successful `sched_getaffinity` filled: what a user thread's own
/// affinity reads, as natively its creator's would. False if there is none to give.
///
/// # Safety
/// `set` is valid for writes of `size` bytes.
pub(crate) unsafe fn give_program(set: *mut u8, size: usize) -> bool {
    let Some(program) = PROGRAM.get() else {
        return false;
    };
    let n = size.min(std::mem::size_of_val(program));
    // SAFETY: within the caller's `size` bytes, and within `program`.
    unsafe { std::ptr::copy_nonoverlapping(program.as_ptr() as *const u8, set, n) };
    true
}

/// In a child forked by a user thread: gives its only thread the program's affinity.
pub(crate) fn restore_in_child() {
    if let Some(mask) = PROGRAM.get() {
        set(mask);
    }
}

/// Runs `spawn` (a `posix_spawn`, `system`, `popen`, or an exec, whose new image is this
/// very thread) with the calling kernel thread's affinity widened to the program's, if a
/// user thread calls it, so that the child (or the new image) has that; the kernel thread
/// is pinned again afterwards (an exec that fails returns).
///
/// Another user thread of the same kernel thread may spawn while this one waits inside
/// (`popen` takes a lock of glibc's): it finds the affinity widened already and leaves
/// the pinning to the first, which would otherwise take the widened mask for the pinned
/// one and leave the kernel thread unpinned.
pub(crate) fn spawning<R>(spawn: impl FnOnce() -> R) -> R {
    if !super::routes_user_thread() {
        return spawn();
    }
    let (Some(program), Some(pinned)) = (PROGRAM.get(), get()) else {
        return spawn();
    };
    if pinned == *program {
        return spawn();
    }
    set(program);
    let ret = spawn();
    set(&pinned);
    ret
}
