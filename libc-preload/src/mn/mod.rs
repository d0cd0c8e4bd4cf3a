//! M-on-N threads for unmodified pthread programs (`FLEXSC_THREADS=m-on-n`): the
//! application's `pthread_create` makes a user thread of `flexsc-scheduler`, which runs on
//! the scheduler's pinned kernel threads with a thread control block of its own (`tcb`),
//! and whose system calls (through the preload's wrappers) post an entry and switch.
//!
//! - `tcb`: the per-user-thread TCB from `_dl_allocate_tls`, its layout check, the %fs
//!   switch;
//! - `thread`: create, join, detach, exit, kill, cancel of user threads;
//! - `sync`: mutex, cond, once, sem, spin, rwlock, barrier that park user threads;
//! - `lot`: the user-thread futex those are built on, and the timer thread;
//! - `api`: the exported libc functions (pthread, semaphores, C11 threads, sleeps,
//!   `sigaltstack`, `gettid`, the setuid family).
//!
//! # When it is on, and when it falls back to 1:1
//!
//! ```text
//!   constructor: FLEXSC_THREADS=m-on-n and the TCB layout checks out -> PENDING
//!                otherwise (unset, 1:1, bad value, layout differs)    -> OFF (a note if asked)
//!   PENDING:  every pthread function is glibc's; the first unsupported request
//!             (process-shared/robust/priority mutex attributes, pthread_setaffinity_np,
//!             pthread_kill with a signal) -> OFF, with a one-line note
//!             the first pthread_create starts the scheduler -> ACTIVE (or OFF, with a
//!             note, if it cannot start)
//!   ACTIVE:   every pthread_create makes a user thread; there is no way back. Requests
//!             that would have made us fall back are made to work: unsupported objects
//!             go to glibc (polled from user threads), affinity requests for user threads
//!             are ignored (noted once), a signal for a user thread goes to the kernel
//!             thread that runs it (noted once). setuid and friends abort with a message
//!             (glibc's SIGSETXID handshake cannot complete with user TCBs installed).
//!   fork child: of an ACTIVE process, OFF (single-threaded; glibc's functions work on our
//!             objects' encoding); of a PENDING one, PENDING (it may start its own).
//! ```
//!
//! A user thread's `gettid()` is the unique id in its TCB (above `pid_max`): kernel calls
//! given it (tgkill, sched_setaffinity, /proc/self/task/ID) fail with ESRCH rather than
//! act on the kernel thread that happens to run it.
//!
//! The main thread stays a kernel thread (1:1); so do threads created before the
//! constructor ran and threads created by glibc internally (C11 `thrd_create`). They
//! share every object with user threads: the primitives park OS threads too.

pub mod api;
pub(crate) mod lot;
pub(crate) mod sync;
pub(crate) mod tcb;
pub(crate) mod thread;

pub(crate) use api::real;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;

use flexsc_shim::table::{classify, Class};

/// Environment variable that chooses the thread model.
pub const THREADS_VAR: &str = "FLEXSC_THREADS";
/// Its valid values.
pub const THREADS_FORM: &str = "m-on-n or 1:1";

const OFF: u8 = 0;
const PENDING: u8 = 1;
const ACTIVE: u8 = 2;

/// OFF, PENDING or ACTIVE (see the module docs). Relaxed is enough: it moves forward once
/// per process, PENDING -> ACTIVE on the thread that then spawns the first user thread
/// (the spawn itself orders it before anything a user thread does), and the other
/// transitions only change whether glibc's functions are used for objects that no user
/// thread ever touched.
static MODE: AtomicU8 = AtomicU8::new(OFF);

/// glibc's private entry points, once the layout check passed.
static GLIBC: OnceLock<tcb::Glibc> = OnceLock::new();

/// The thread model asked for by `FLEXSC_THREADS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// One kernel thread per application thread (the default).
    OneToOne,
    /// Application threads as user threads of the scheduler.
    MOnN,
}

impl Threads {
    /// Parses a value of `FLEXSC_THREADS`.
    pub fn parse(value: &str) -> Option<Threads> {
        match value {
            "m-on-n" => Some(Threads::MOnN),
            "1:1" => Some(Threads::OneToOne),
            _ => None,
        }
    }
}

/// Whether M-on-N is active (user threads may exist).
#[inline]
pub(crate) fn active() -> bool {
    MODE.load(Ordering::Relaxed) == ACTIVE
}

/// Whether the interposed pthread functions have anything to decide (PENDING or ACTIVE).
#[inline]
pub(crate) fn enabled() -> bool {
    MODE.load(Ordering::Relaxed) != OFF
}

pub(crate) fn glibc() -> &'static tcb::Glibc {
    GLIBC
        .get()
        .expect("M-on-N is only enabled once glibc's layout was checked")
}

/// From the constructor: reads `FLEXSC_THREADS` and checks glibc's layout.
pub fn init() {
    let Some(value) = std::env::var_os(THREADS_VAR) else {
        return;
    };
    match value.to_str().and_then(Threads::parse) {
        Some(Threads::OneToOne) => {}
        Some(Threads::MOnN) => match tcb::Glibc::load() {
            Ok(glibc) => {
                let _ = GLIBC.set(glibc);
                api::resolve_reals();
                MODE.store(PENDING, Ordering::Relaxed);
            }
            Err(why) => note(&format!("M-on-N threads need glibc 2.36's thread layout ({why})")),
        },
        None => eprintln!(
            "flexsc: {THREADS_VAR}={} is not valid (valid: {THREADS_FORM}); running threads 1:1",
            value.to_string_lossy()
        ),
    }
}

/// One line on stderr: why threads run 1:1.
fn note(why: &str) {
    eprintln!("flexsc: {why}; running threads 1:1");
}

/// An unsupported request before any user thread exists: fall back to 1:1 for the whole
/// process, with a note. Returns true if it fell back (false: already ACTIVE or OFF).
pub(crate) fn fall_back(why: &str) -> bool {
    if MODE
        .compare_exchange(PENDING, OFF, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        note(why);
        return true;
    }
    false
}

/// Notes something M-on-N does differently, once per `flag`.
pub(crate) fn note_once(flag: &AtomicBool, what: &str) {
    if !flag.swap(true, Ordering::Relaxed) {
        eprintln!("flexsc: M-on-N threads: {what}");
    }
}

/// The first `pthread_create` in PENDING: starts the scheduler. True if ACTIVE now.
pub(crate) fn activate() -> bool {
    match MODE.load(Ordering::Relaxed) {
        ACTIVE => return true,
        OFF => return false,
        _ => {}
    }
    match thread::scheduler() {
        Ok(_) => {
            MODE.store(ACTIVE, Ordering::Relaxed);
            true
        }
        Err(why) => {
            fall_back(&format!("cannot start the M-on-N scheduler ({why})"));
            false
        }
    }
}

/// The statistics of the calls user threads made, if M-on-N ran in this process (not in
/// a forked child: the scheduler's service threads are the parent's).
pub fn scheduler_stats() -> Option<flexsc_scheduler::Stats> {
    if forked_child() {
        return None;
    }
    thread::started_scheduler_stats()
}

/// Set in a child forked from a process where M-on-N was active.
static FORKED: AtomicBool = AtomicBool::new(false);

/// In a child forked after M-on-N started: single-threaded, no scheduler (the parent's
/// scheduler, copied, has no threads here). glibc's functions take over. If the fork was
/// made by a user thread, the child runs on (a copy of) that user thread; its
/// kernel thread's loop and the other user threads are copies that must never run: the
/// user thread never switches out in the child (every interposed function is glibc's
/// now), and when its start routine returns it ends the thread as glibc would (see
/// `thread::run`).
pub fn after_fork_child() {
    // A child of a process that never made a user thread may make its own (servers fork
    // their workers before these start threads): it stays PENDING.
    if MODE
        .compare_exchange(ACTIVE, OFF, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        FORKED.store(true, Ordering::Relaxed);
    }
}

/// Whether this process is a child forked from an M-on-N process.
pub(crate) fn forked_child() -> bool {
    FORKED.load(Ordering::Relaxed)
}

/// Whether the interposed path should hand this call to `route_user_thread`: the caller is
/// a user thread.
#[inline]
pub(crate) fn routes_user_thread() -> bool {
    active() && flexsc_scheduler::in_user_thread()
}

/// A user thread's system call: delegable calls are posted to its kernel thread's page
/// and the user thread switches out until the result is in; calls that must run on the
/// caller run on the kernel thread through `real` (the libc function), and so do calls
/// that cannot wait for an event under `FLEXSC_POLICY=never`. The adaptive policy does
/// not apply: switching on a call is what M-on-N is for.
///
/// # Safety
/// `nr` and `args` are exactly the call `real` would make.
pub(crate) unsafe fn route_user_thread(nr: i64, args: [u64; 6], real: impl FnOnce() -> i64) -> i64 {
    if nr == libc::SYS_gettid {
        // The user thread's own id (the one in its TCB), as `gettid()` gives it.
        return tcb::current_tid() as i64;
    }
    match classify(nr as u64, &args) {
        // Under `never`, calls that cannot wait for an event run here; calls that may
        // are still posted, since waiting here would stop every user thread of this
        // kernel thread (two of them talking through a pipe would deadlock).
        Class::Delegate if crate::route::delegates_nothing() => real(),
        Class::Delegate | Class::Block => {
            // SAFETY: forwarded; the user thread's stack (where pointer arguments live)
            // stays put until the call is reaped.
            let raw = unsafe { flexsc_scheduler::syscall(nr, args) };
            if (-4095..0).contains(&raw) {
                // SAFETY: errno is this (user) thread's own.
                unsafe { *libc::__errno_location() = -raw as i32 };
                -1
            } else {
                raw
            }
        }
        Class::Caller | Class::Isolate => real(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_models_and_nothing_else() {
        assert_eq!(Threads::parse("m-on-n"), Some(Threads::MOnN));
        assert_eq!(Threads::parse("1:1"), Some(Threads::OneToOne));
        assert_eq!(Threads::parse("mn"), None);
        assert_eq!(Threads::parse(""), None);
    }

    #[test]
    fn this_glibc_passes_the_layout_check() {
        // The machine's glibc is the one the offsets were taken from (2.36, x86-64).
        match tcb::Glibc::load() {
            Ok(_) => {}
            Err(why) => {
                // SAFETY: gnu_get_libc_version returns a static C string.
                let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
                assert_ne!(
                    version.to_bytes(),
                    b"2.36",
                    "layout check failed on glibc 2.36: {why}"
                );
                eprintln!("skipped: glibc {version:?} is not 2.36 ({why})");
            }
        }
    }
}
