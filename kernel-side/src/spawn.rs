//! Starting a runtime thread without waiting for it to run.
//!
//! A runtime's start used to wait until each of its threads had run far enough: a futex
//! wake across the two vCPUs (~70 µs here), and milliseconds when the service core was
//! busy, paid by every process under `--policy always` (in the preload's constructor) and
//! by the first `pthread_create` of every threaded one. What the program could observe
//! of a new runtime thread is now settled by the thread that spawns it, before the spawn
//! returns:
//!
//! - **signals**: it starts with every signal blocked (the spawner blocks them around
//!   `pthread_create`), so none meant for the program lands on it before it sets its
//!   own mask (`signals::block_async_signals`);
//! - **its name**: set from here, so a program that counts its threads by name never
//!   sees it under the program's name;
//! - **its thread id**: read back from its CPU-time clock id, so that what the runtime
//!   keeps open for it (its stat file, `flexsc_shim::sys::ThreadStat`) is opened here,
//!   where the program's own opens cannot run beside it (they expect the lowest free
//!   descriptor).
//!
//! What is left to the thread: its core (`core_affinity`) and glibc's thread count
//! (`census::Uncounted`, which ends the process then if the program's last thread
//! ended meanwhile, as glibc would have).

use std::ffi::CString;
use std::io;
use std::thread::JoinHandle;

/// A runtime thread, started.
pub(crate) struct Spawned<T> {
    pub(crate) handle: JoinHandle<T>,
    /// Its kernel thread id; None where it cannot be read (it then runs without what
    /// needs it: see the callers).
    pub(crate) tid: Option<i32>,
}

/// Starts `f` on a new thread named `name` (at most 15 bytes: the kernel's limit), with
/// every signal blocked, and names it before returning.
pub(crate) fn spawn<T, F>(name: &str, stack_size: Option<usize>, f: F) -> io::Result<Spawned<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    #[cfg(test)]
    if tests::FAIL_AFTER.with(|left| left.replace(left.get().and_then(|n| n.checked_sub(1)))) == Some(0) {
        return Err(io::Error::from_raw_os_error(libc::EAGAIN));
    }
    let mut builder = std::thread::Builder::new().name(name.to_owned());
    if let Some(size) = stack_size {
        builder = builder.stack_size(size);
    }
    let handle = {
        let _blocked = AllSignalsBlocked::new();
        builder.spawn(f)?
    };
    let pthread = std::os::unix::thread::JoinHandleExt::as_pthread_t(&handle);
    if let Ok(name) = CString::new(name) {
        // SAFETY: a live thread of ours (joinable: the handle is not joined) and a
        // NUL-terminated name; glibc writes it to the thread's comm file (ERANGE past 15
        // bytes, left unnamed then: std names it when it runs).
        unsafe { libc::pthread_setname_np(pthread, name.as_ptr()) };
    }
    Ok(Spawned {
        tid: tid_of(pthread),
        handle,
    })
}

/// The kernel thread id of a live thread of this process: glibc's CPU-time clock id for a
/// thread is the kernel's per-thread encoding, `(!tid << 3) | CPUCLOCK_PERTHREAD_MASK |
/// CPUCLOCK_SCHED` (`include/linux/posix-timers.h`), a stable ABI.
fn tid_of(thread: libc::pthread_t) -> Option<i32> {
    const PERTHREAD_SCHED: libc::clockid_t = 4 | 2;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: a live thread of ours; glibc writes the clock id to `clock`.
    if unsafe { libc::pthread_getcpuclockid(thread, &mut clock) } != 0 || clock & 7 != PERTHREAD_SCHED {
        return None;
    }
    let tid = !(clock >> 3);
    (tid > 0).then_some(tid)
}

/// Every signal blocked on the calling thread until dropped, then its mask as it was.
struct AllSignalsBlocked(libc::sigset_t);

impl AllSignalsBlocked {
    fn new() -> Self {
        // SAFETY: sigset_t is plain data, filled by sigfillset; pthread_sigmask changes
        // only the calling thread's mask and writes the old one to `old`.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            AllSignalsBlocked(old)
        }
    }
}

impl Drop for AllSignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask `new` saved, on the same thread.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::mpsc;

    thread_local! {
        /// Spawns this thread may still make before one fails with EAGAIN (as
        /// `pthread_create` does at a thread limit); only that one fails. None: none.
        pub(crate) static FAIL_AFTER: Cell<Option<u32>> = const { Cell::new(None) };
    }

    #[test]
    fn a_spawned_thread_has_its_name_and_tid_before_it_runs_and_starts_with_signals_blocked() {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (tx, rx) = mpsc::channel();
        let spawned = spawn("flexsc-spawntst", None, move || {
            let _ = go_rx.recv();
            let mask = || {
                // SAFETY: reads this thread's mask into plain data.
                unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
                    set
                }
            };
            let has = |set: &libc::sigset_t, sig| {
                // SAFETY: a filled set, read.
                unsafe { libc::sigismember(set, sig) == 1 }
            };
            let at_start = mask();
            let blocked = [libc::SIGTERM, libc::SIGINT, libc::SIGSEGV]
                .iter()
                .all(|&s| has(&at_start, s));
            // What a runtime thread then makes of it: the faults deliverable again.
            crate::signals::block_async_signals();
            let set = mask();
            let faults_open = [
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGFPE,
                libc::SIGILL,
                libc::SIGSYS,
            ]
            .iter()
            .all(|&s| !has(&set, s))
                && has(&set, libc::SIGTERM);
            let _ = tx.send((flexsc_shim::sys::gettid(), blocked && faults_open));
        })
        .expect("spawn");
        // The thread waits on `go`: whatever is settled now was settled by `spawn`.
        let tid = spawned.tid.expect("the tid is read back");
        let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).expect("the thread's comm");
        assert_eq!(comm.trim_end(), "flexsc-spawntst");
        go_tx.send(()).expect("the thread waits");
        let (real_tid, blocked) = rx.recv().expect("the thread reports");
        assert_eq!(real_tid, tid);
        assert!(
            blocked,
            "the thread starts with every signal blocked, and then has only the faults deliverable"
        );
        spawned.handle.join().expect("join");
        // SAFETY: reads this thread's mask into plain data.
        let here_blocked = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
            libc::sigismember(&set, libc::SIGTERM) == 1
        };
        assert!(!here_blocked, "the spawner's own mask is restored");
    }
}
