//! The process life cycle: load, fork, exec, exit.
//!
//! - Load: the constructor resolves the real symbols (dlsym may allocate: never later on
//!   the interposed path), reads the configuration and builds the runtime, whose service
//!   threads start then under `--policy always`, and under `adaptive` before the
//!   program's first `pthread_create` or `thrd_create` (or at the first shared phase).
//! - fork: the child has none of the parent's service threads. A `pthread_atfork` child
//!   handler gives it a fresh runtime and closes the parent's runtime descriptors (its
//!   rings and stat files); the parent's pages are left untouched, so no entry in flight
//!   in the parent is inherited. (vfork is a fork, see `interpose::vfork`.) `_Fork` runs
//!   no atfork handler and leaves its child only async-signal-safe functions: that child
//!   closes the parent's runtime descriptors and runs every call directly.
//! - exec, `_exit`, `exit`: every posted call finishes and the statistics are written
//!   before the image goes away.

use std::time::Duration;

use crate::route::{self, quietly};

/// Runs before `main` (from `.init_array`).
pub extern "C" fn constructor() {
    quietly(|| {
        // What fd 2 is before main: later notes go there only while it still is (a
        // lazily started runtime would otherwise take a program's data file for stderr).
        flexsc_kernel_side::diag::remember_stderr();
        crate::interpose::resolve_all();
        crate::loader::init();
        crate::stats::init();
        // M-on-N first: it patches glibc's lock waits only while the process has one
        // thread, and under `--policy always` `route::init` starts the service threads.
        crate::mn::init();
        route::init();
        // SAFETY: plain C callbacks that never unwind.
        unsafe {
            libc::pthread_atfork(None, None, Some(child_after_fork));
            libc::atexit(at_exit);
        }
    });
}

extern "C" fn child_after_fork() {
    quietly(|| {
        // The parent's runtimes' rings and stat files (the route's and an M-on-N
        // scheduler's): of no use here, where their threads do not exist, and each
        // generation would hold more.
        flexsc_shim::sys::close_inherited();
        crate::stats::new_image();
        crate::mn::after_fork_child();
        route::after_fork_child();
    });
}

/// In the child of `_Fork` (see `interpose::_Fork`): what `child_after_fork` does that is
/// async-signal-safe (raw system calls and atomic stores), and every call of this image
/// runs directly ([`route::disable_in_raw_child`]).
pub fn child_after_raw_fork() {
    flexsc_shim::sys::close_inherited();
    crate::mn::after_fork_child();
    route::disable_in_raw_child();
}

/// Registered first, so it runs last of the program's atexit handlers.
extern "C" fn at_exit() {
    // Flush stdout and stderr now, so their last writes are made (and counted) while we
    // still run; exit flushes the rest after us. Each only if its lock is free: `exit`'s
    // own flush takes no lock, and a thread blocked inside stdio (an `fgets` on a pipe, a
    // `fwrite` into a full one) holds its stream's lock for good. `fflush(NULL)`, which
    // takes every stream's lock, hung `exit` there, in every mode.
    // Only glibc's own two FILEs, which are never freed: a program may have pointed
    // `stdout` at a FILE of its own and closed it since.
    extern "C" {
        static stdout: *mut libc::FILE;
        static stderr: *mut libc::FILE;
        static _IO_2_1_stdout_: u8;
        static _IO_2_1_stderr_: u8;
        fn ftrylockfile(stream: *mut libc::FILE) -> libc::c_int;
        fn fflush_unlocked(stream: *mut libc::FILE) -> libc::c_int;
        fn funlockfile(stream: *mut libc::FILE);
    }
    // SAFETY: glibc's static standard FILEs (they live as long as libc), each flushed
    // only while this thread holds its lock, and only while the program's `stdout` or
    // `stderr` still names it.
    unsafe {
        let own = [
            (stdout, &raw const _IO_2_1_stdout_ as *mut libc::FILE),
            (stderr, &raw const _IO_2_1_stderr_ as *mut libc::FILE),
        ];
        for (named, stream) in own {
            if named == stream && ftrylockfile(stream) == 0 {
                fflush_unlocked(stream);
                funlockfile(stream);
            }
        }
    }
    image_ends();
}

/// The image is about to end (exit, `_exit`, exec): let posted calls finish, then write the
/// statistics.
pub fn image_ends() {
    quietly(|| {
        if let Some(rt) = route::runtime() {
            rt.quiesce(Duration::from_secs(10));
        }
        crate::stats::write();
    });
}
