//! Signal masks of the runtime's own threads.
//!
//! Process-directed signals (SIGINT, SIGCHLD, SIGTERM, ...) belong to the application's
//! threads, so service threads and workers block them. So do they the signals the kernel
//! sends to the thread that made a call, SIGPIPE (a write whose reader is gone) and
//! SIGXFSZ (a write past the file size limit): those belong to the caller, who may block
//! them, take them with `sigtimedwait` or handle them on its own stack. A runtime thread
//! that ran such a call consumes the signal and sends it back with the result
//! (`flexsc_shim::owed`), and the caller raises it on itself. Only the synchronous fault
//! signals stay deliverable.

/// Blocks every signal except the synchronous faults on the calling thread, and leaves
/// those unblocked even if they were blocked (a runtime thread starts with every signal
/// blocked, `crate::spawn`): a fault the kernel forces on a thread that blocks it resets
/// its handler to the default for the whole process, bypassing the program's crash
/// handler or a seccomp filter's SIGSYS handler. (glibc keeps its own internal signals
/// deliverable whatever the mask asks.)
pub fn block_async_signals() {
    mark_runtime_thread();
    // SAFETY: sigset_t is plain data that sigfillset initialises; pthread_sigmask only
    // changes the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for sig in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGSYS,
        ] {
            libc::sigdelset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

thread_local! {
    static RUNTIME_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the calling thread as one of the runtime's own (service thread or worker).
pub(crate) fn mark_runtime_thread() {
    RUNTIME_THREAD.with(|t| t.set(true));
}

/// Whether the calling thread is a service thread or worker of some runtime. An
/// interposing library must run such a thread's calls directly: posting them would make
/// the runtime wait on itself.
pub fn is_runtime_thread() -> bool {
    RUNTIME_THREAD.with(|t| t.get())
}
