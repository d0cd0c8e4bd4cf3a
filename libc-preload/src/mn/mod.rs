//! M-on-N threads for unmodified pthread programs (`FLEXSC_THREADS=m-on-n`): the
//! application's `pthread_create` makes a user thread of `flexsc-scheduler`, which runs on
//! the scheduler's pinned kernel threads with a thread control block of its own (`tcb`),
//! and whose system calls (through the preload's wrappers) post an entry and switch.
//!
//! - `tcb`: the per-user-thread TCB from `_dl_allocate_tls`, its layout check, the %fs
//!   switch;
//! - `thread`: create, join, detach, exit of user threads (exit through glibc's own
//!   unwinding, so cleanup handlers run);
//! - `cancel`: deferred `pthread_cancel` of user threads;
//! - `signal`: signals aimed at one user thread (`pthread_kill`);
//! - `sync`: mutex, cond, once, sem, spin, rwlock, barrier that park user threads;
//! - `lot`: the user-thread futex those are built on, and the timer thread;
//! - `futex`: raw futex calls through `syscall()` (Rust's std, libstdc++): user threads
//!   wait on the lot, wakes reach lot and kernel waiters;
//! - `libc_locks`: glibc's internal locks (stdio, malloc, the loader): a user thread that
//!   meets a taken one yields instead of stopping its kernel thread;
//! - `libc_io`: stdio's reads and writes, which glibc makes inside its functions, are
//!   routed like the interposed ones (`patch` replaces a glibc function's entry);
//! - `system`: `system()` and `pclose()` in a user thread, whose waits for the command
//!   are posted;
//! - `affinity`: the program's CPU affinity, which children of user threads get (not
//!   their kernel thread's one core);
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
//!             are ignored (noted once), a signal for a user thread waits for that user
//!             thread to run (`signal`). setuid and friends abort with a message
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

pub(crate) mod affinity;
pub mod api;
pub(crate) mod cancel;
pub(crate) mod futex;
pub(crate) mod libc_io;
pub(crate) mod libc_locks;
pub(crate) mod lot;
pub(crate) mod patch;
pub(crate) mod signal;
pub(crate) mod sync;
pub(crate) mod system;
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

/// Set once something may interrupt a user thread's blocking call: the program links
/// `pthread_cancel`, `pthread_kill` or `pthread_sigqueue` (checked at activation), or a
/// user thread was cancelled or sent a signal. From then on, a user thread's call that may wait for a descriptor first waits
/// for it in `poll` slices (see `route_user_thread`). Relaxed: a thread that reads a stale
/// `false` makes its call the old way, and is cancelled (or signalled) when it returns.
static INTERRUPTS: AtomicBool = AtomicBool::new(false);

/// Set as [`INTERRUPTS`], and also when a user thread is about to wait for a signal
/// (`pause`, `sigsuspend`): from then on, a user thread's interruptible waits (condvar, join,
/// semaphore, sleep) say where a cancellation or a signal finds them (`lot::WaitSlot`).
/// Before, they skip that (two lock round trips per wait). Relaxed, as above: a wait that
/// began before is acted on when it ends.
static WAKEABLE: AtomicBool = AtomicBool::new(false);

/// From now on, user threads' blocking calls and waits can be interrupted (see
/// [`INTERRUPTS`]).
pub(crate) fn interrupts_in_use() {
    WAKEABLE.store(true, Ordering::Relaxed);
    INTERRUPTS.store(true, Ordering::Relaxed);
}

/// From now on, user threads' interruptible waits register where a signal finds them
/// ([`WAKEABLE`]): a user thread is about to wait for one (`pause`, `sigsuspend`).
pub(crate) fn waits_wake_from_now() {
    WAKEABLE.store(true, Ordering::Relaxed);
}

/// Whether user threads' waits register where an interruption finds them ([`WAKEABLE`]).
#[inline]
pub(crate) fn waits_wakeable() -> bool {
    WAKEABLE.load(Ordering::Relaxed)
}

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
    // The functions M-on-N interposes are interposed in every mode (glibc's own runs
    // unless M-on-N is active): resolved now, whatever the mode. Resolved lazily, the
    // first call of one (`gettid`, `nanosleep`) would take the loader lock in `dlsym`,
    // and wait forever in a thread made by a library's constructor that `dlopen`'s
    // thread joins while it holds that lock.
    api::resolve_reals();
    thread::resolve_reals();
    let Some(value) = std::env::var_os(THREADS_VAR) else {
        return;
    };
    match value.to_str().and_then(Threads::parse) {
        Some(Threads::OneToOne) => {}
        Some(Threads::MOnN) if is_go_program() => note(
            "a Go program's runtime threads wait in system calls made without libc (its sysmon \
             loops on a raw nanosleep), which a user thread cannot switch on: M-on-N would hang it",
        ),
        Some(Threads::MOnN) => match tcb::Glibc::load() {
            Ok(glibc) => {
                let _ = GLIBC.set(glibc);
                MODE.store(PENDING, Ordering::Relaxed);
                // stdio's calls may switch only where a user thread that meets the FILE
                // lock a switched-out one holds yields too (`libc_locks`): otherwise it
                // would wait in the kernel for a holder that cannot run.
                let io = match libc_locks::install() {
                    Ok(()) => libc_io::install(),
                    Err(why) => {
                        eprintln!(
                            "flexsc: M-on-N threads: glibc's internal lock waits stay in the kernel ({why})"
                        );
                        Err("glibc's lock waits could not be replaced".into())
                    }
                };
                if let Err(why) = io {
                    eprintln!(
                        "flexsc: M-on-N threads: stdio's reads and writes stop their kernel thread while they wait ({why})"
                    );
                }
            }
            Err(why) => note(&format!("M-on-N threads need glibc 2.36's thread layout ({why})")),
        },
        None => eprintln!(
            "flexsc: {THREADS_VAR}={} is not valid (valid: {THREADS_FORM}); running threads 1:1",
            value.to_string_lossy()
        ),
    }
}

/// Whether the program (or a library loaded with it) is Go with cgo: the only Go programs
/// that call `pthread_create`, which exports cgo's thread start for its runtime. Its
/// threads never return to libc while they wait (raw `futex`, `nanosleep`, `epoll_wait`),
/// so as user threads they would keep their kernel thread to themselves; the sysmon
/// thread, which never stops, hung every such program (a helper's sweep: 8 of 8 runs).
fn is_go_program() -> bool {
    // SAFETY: dlsym with a NUL-terminated name; called from the constructor, where
    // dlsym may allocate.
    !unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"x_cgo_thread_start".as_ptr()) }.is_null()
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
            // A program that can signal a thread may mean to interrupt a blocking call
            // with it (Ruby's `Thread#kill`, Java's asynchronous close): such a call
            // posted whole before the first signal could never be interrupted, and the
            // process hung.
            if links::imports(c"pthread_cancel")
                || links::imports(c"pthread_kill")
                || links::imports(c"pthread_sigqueue")
            {
                interrupts_in_use();
            }
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
        // Forked by a user thread (its record is in the TLS this thread still has): the
        // child's thread is a copy of a kernel thread pinned to one core.
        if thread::with_current(|_| ()).is_some() {
            affinity::restore_in_child();
        }
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
/// Once interruptions are in use ([`INTERRUPTS`]), a call that may wait for a descriptor
/// first waits for it to be ready, in `poll` slices of [`SLICE_MS`] between which it
/// looks for a cancellation or a signal: a call in flight on the service side cannot be
/// interrupted, a slice ends on its own. `Err(Interrupted)` when one came.
///
/// # Safety
/// `nr` and `args` are exactly the call `real` would make.
pub(crate) unsafe fn route_user_thread(
    nr: i64,
    args: [u64; 6],
    real: impl FnOnce() -> i64,
) -> Result<i64, Interrupted> {
    if nr == libc::SYS_gettid {
        // The user thread's own id (the one in its TCB), as `gettid()` gives it.
        return Ok(tcb::current_tid() as i64);
    }
    if nr == libc::SYS_set_tid_address {
        // The kernel's would repoint the kernel thread's own address (which glibc keeps
        // for that thread's join) and answer its tid: the user thread keeps the address
        // for its own end (`thread::finished`) and gets its own id, as `gettid()` gives it.
        thread::with_current(|record| record.clear_tid.store(args[0] as usize, Ordering::Relaxed));
        return Ok(tcb::current_tid() as i64);
    }
    match classify(nr as u64, &args) {
        // Under `never`, calls that cannot wait for an event run here; calls that may
        // are still posted, since waiting here would stop every user thread of this
        // kernel thread (two of them talking through a pipe would deadlock).
        Class::Delegate if crate::route::delegates_nothing() => Ok(real()),
        class @ (Class::Delegate | Class::Block) => {
            let sliced = if class == Class::Block && INTERRUPTS.load(Ordering::Relaxed) {
                wait_interruptibly(nr, &args)?
            } else {
                None
            };
            // Raw: a signal the call owes this thread is raised by `route` once the call has
            // left the preload (`route::keep_owed`).
            // SAFETY: forwarded; the user thread's stack (where pointer arguments live)
            // stays put until the call is reaped.
            let raw = sliced.unwrap_or_else(|| unsafe { flexsc_scheduler::syscall_raw(nr, args) });
            let raw = crate::route::keep_owed(raw);
            if (-4095..0).contains(&raw) {
                // SAFETY: errno is this (user) thread's.
                unsafe { *libc::__errno_location() = -raw as i32 };
                Ok(-1)
            } else {
                Ok(raw)
            }
        }
        Class::Caller | Class::Isolate => Ok(real()),
    }
}

/// A cancellation or a signal came while a user thread waited for its descriptor.
#[derive(Debug)]
pub(crate) struct Interrupted;

/// How long one `poll` slice of an interruptible wait lasts.
const SLICE_MS: u64 = 20;

/// Whether a cancellation or a signal should end the calling user thread's wait.
fn interrupt_due() -> bool {
    thread::with_current(|r| r.interrupt_due()).unwrap_or(false)
}

/// For a call that may wait for a descriptor (reads, writes, accept, recv*, send*):
/// waits until the descriptor is ready for it, in `poll` slices, unless the descriptor
/// or the call is non-blocking (the call then fails at once, as asked): `Ok(None)`, make
/// the call. `poll` and `epoll_wait` are themselves made in slices, their timeout kept:
/// `Ok(Some(raw result))`.
fn wait_interruptibly(nr: i64, args: &[u64; 6]) -> Result<Option<i64>, Interrupted> {
    let fd = args[0] as i32;
    let dontwait = |flags: u64| flags as i32 & libc::MSG_DONTWAIT != 0;
    let events = match nr {
        libc::SYS_read | libc::SYS_readv | libc::SYS_accept | libc::SYS_accept4 => libc::POLLIN,
        libc::SYS_recvfrom if !dontwait(args[3]) => libc::POLLIN,
        libc::SYS_recvmsg if !dontwait(args[2]) => libc::POLLIN,
        libc::SYS_write | libc::SYS_writev => libc::POLLOUT,
        libc::SYS_sendto if !dontwait(args[3]) => libc::POLLOUT,
        libc::SYS_sendmsg if !dontwait(args[2]) => libc::POLLOUT,
        // poll(fds, n, timeout), epoll_wait(epfd, events, max, timeout), epoll_pwait(...,
        // timeout, mask, size).
        libc::SYS_poll => return in_slices(nr, *args, 2).map(Some),
        libc::SYS_epoll_wait | libc::SYS_epoll_pwait => return in_slices(nr, *args, 3).map(Some),
        _ => return Ok(None),
    };
    // SAFETY: F_GETFL only reads the descriptor's flags and never blocks (raw: run here).
    let flags = unsafe {
        flexsc_shim::sys::syscall6(
            libc::SYS_fcntl as u64,
            [fd as u64, libc::F_GETFL as u64, 0, 0, 0, 0],
        )
    };
    if flags < 0 || flags as i32 & libc::O_NONBLOCK != 0 {
        return Ok(None);
    }
    if matches!(nr, libc::SYS_write | libc::SYS_writev) && waits_for_room(fd) {
        let pieces = if nr == libc::SYS_write {
            vec![libc::iovec {
                iov_base: args[1] as *mut libc::c_void,
                iov_len: args[2] as usize,
            }]
        } else {
            // A count the kernel would refuse: the call itself says so, posted whole.
            let count = args[2] as usize;
            if count > libc::UIO_MAXIOV as usize {
                return Ok(None);
            }
            match copy_iovecs(args[1], count) {
                Some(v) => v,
                None => return Ok(None),
            }
        };
        return write_in_pieces(fd, pieces);
    }
    loop {
        if poll_slice(fd, events) != 0 {
            // Ready, or an error the call itself will report.
            return Ok(None);
        }
        if interrupt_due() {
            return Err(Interrupted);
        }
    }
}

/// One posted `poll` of `fd` for `events`, of at most [`SLICE_MS`]: the raw result (0 when
/// the slice passed with nothing).
fn poll_slice(fd: i32, events: i16) -> i64 {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let pfd_addr = &mut pfd as *mut libc::pollfd as u64;
    // SAFETY: poll reads and writes `pfd`, on this stack, which outlives the call.
    unsafe { flexsc_scheduler::syscall(libc::SYS_poll, [pfd_addr, 1, SLICE_MS, 0, 0, 0]) }
}

/// Whether a write to `fd` may wait for room: a pipe, a FIFO or a socket (a regular file's
/// or a device's is always writable, as far as `poll` goes).
fn waits_for_room(fd: i32) -> bool {
    flexsc_shim::sys::stat_fd(fd).is_some_and(|st| {
        let kind = st.st_mode & libc::S_IFMT;
        kind == libc::S_IFIFO || kind == libc::S_IFSOCK
    })
}

/// The caller's `count` iovecs at `at`, read through the kernel
/// (`flexsc_shim::sys::copy_checked`), so a bad pointer gives None (the call, posted
/// whole, then fails with EFAULT as natively).
fn copy_iovecs(at: u64, count: usize) -> Option<Vec<libc::iovec>> {
    let mut out: Vec<libc::iovec> = Vec::with_capacity(count);
    let bytes = count * std::mem::size_of::<libc::iovec>();
    // SAFETY: the copy lands in `out`'s spare capacity, exactly `bytes` long and ours.
    if !unsafe { flexsc_shim::sys::copy_checked(at as usize, out.as_mut_ptr() as usize, bytes) } {
        return None;
    }
    // SAFETY: `count` iovecs were just copied into the capacity.
    unsafe { out.set_len(count) };
    Some(out)
}

/// A blocking `write` or `writev` to a pipe or a socket (its buffers as `pieces`), in
/// writes that never wait: each waits for room in `poll` slices, then writes what fits
/// (`pwritev2` with `RWF_NOWAIT`, posted). Posted whole, a write larger than the room
/// waited in flight, where no cancellation or signal reached it: cancelling a thread
/// blocked writing 1 MiB into a full pipe hung the process. Interrupted after part of it is
/// written, it returns that part, as natively; before, `Err(Interrupted)`. A descriptor
/// that cannot write without waiting (no `RWF_NOWAIT`) gets the rest as one posted
/// `writev`, as before.
fn write_in_pieces(fd: i32, mut pieces: Vec<libc::iovec>) -> Result<Option<i64>, Interrupted> {
    let total: usize = pieces.iter().map(|p| p.iov_len).sum();
    let mut done = 0usize;
    // The first piece not written in full.
    let mut first = 0usize;
    // What the call returns when it ends after `done` bytes with the error `raw` (a signal
    // it owes, SIGPIPE, is kept for the return already): the bytes written if any, else
    // the error.
    let end = |done: usize, raw: i64| -> i64 {
        if done == 0 {
            raw
        } else {
            done as i64
        }
    };
    if total == 0 {
        return Ok(None);
    }
    loop {
        if poll_slice(fd, libc::POLLOUT) != 0 {
            let rest = &pieces[first..];
            let (at, count) = (rest.as_ptr() as u64, rest.len() as u64);
            let args = [fd as u64, at, count, u64::MAX, u64::MAX, libc::RWF_NOWAIT as u64];
            // SAFETY: the rest of the caller's buffers, through iovecs of this function's;
            // at the descriptor's position (offset -1), without waiting.
            let w =
                crate::route::keep_owed(unsafe { flexsc_scheduler::syscall_raw(libc::SYS_pwritev2, args) });
            match w {
                w if w > 0 => {
                    done += w as usize;
                    if done == total {
                        return Ok(Some(done as i64));
                    }
                    // Past what was written: whole pieces, then into the next one.
                    let mut left = w as usize;
                    while left > 0 {
                        let piece = &mut pieces[first];
                        if left >= piece.iov_len {
                            left -= piece.iov_len;
                            first += 1;
                        } else {
                            piece.iov_base = (piece.iov_base as usize + left) as *mut libc::c_void;
                            piece.iov_len -= left;
                            left = 0;
                        }
                    }
                }
                w if w == -(libc::EAGAIN as i64) => {}
                w if w == -(libc::EOPNOTSUPP as i64) || w == -(libc::EINVAL as i64) => {
                    let rest = &pieces[first..];
                    let args = [fd as u64, rest.as_ptr() as u64, rest.len() as u64, 0, 0, 0];
                    // SAFETY: the rest of the caller's write, as it asked for it, through
                    // iovecs of this function's, which outlive the posted call.
                    let r = crate::route::keep_owed(unsafe {
                        flexsc_scheduler::syscall_raw(libc::SYS_writev, args)
                    });
                    return Ok(Some(if r >= 0 { (done as i64) + r } else { end(done, r) }));
                }
                w => return Ok(Some(end(done, w))),
            }
            continue;
        }
        if interrupt_due() {
            return if done > 0 {
                Ok(Some(done as i64))
            } else {
                Err(Interrupted)
            };
        }
    }
}

/// Makes a poll-like call whose timeout (ms, negative: none) is argument `at`, in slices
/// of at most [`SLICE_MS`]: the raw result of the slice that found something, or 0 when
/// the whole timeout passed.
fn in_slices(nr: i64, mut args: [u64; 6], at: usize) -> Result<i64, Interrupted> {
    let timeout = args[at] as i32;
    let deadline =
        (timeout >= 0).then(|| lot::deadline_after(std::time::Duration::from_millis(timeout as u64)));
    loop {
        let slice = match deadline {
            None => SLICE_MS,
            Some(d) => {
                (d.saturating_duration_since(std::time::Instant::now()).as_millis() as u64).min(SLICE_MS)
            }
        };
        args[at] = slice;
        // SAFETY: the caller's call, with a shorter timeout; its pointers are the caller's.
        let r = unsafe { flexsc_scheduler::syscall(nr, args) };
        if r != 0 || slice == 0 || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(r);
        }
        if interrupt_due() {
            return Err(Interrupted);
        }
    }
}

/// Whether the wrapped system call `nr` is a cancellation point (glibc 2.36 makes its
/// wrapper one): those the preload wraps.
pub(crate) fn is_cancellation_point(nr: i64, args: &[u64; 6]) -> bool {
    match nr {
        libc::SYS_read
        | libc::SYS_write
        | libc::SYS_readv
        | libc::SYS_writev
        | libc::SYS_pread64
        | libc::SYS_pwrite64
        | libc::SYS_preadv
        | libc::SYS_pwritev
        | libc::SYS_open
        | libc::SYS_openat
        | libc::SYS_creat
        | libc::SYS_close
        | libc::SYS_fsync
        | libc::SYS_fdatasync
        | libc::SYS_msync
        | libc::SYS_accept
        | libc::SYS_accept4
        | libc::SYS_connect
        | libc::SYS_sendto
        | libc::SYS_recvfrom
        | libc::SYS_sendmsg
        | libc::SYS_recvmsg
        | libc::SYS_sendmmsg
        | libc::SYS_recvmmsg
        | libc::SYS_poll
        | libc::SYS_ppoll
        | libc::SYS_select
        | libc::SYS_pselect6
        | libc::SYS_epoll_wait
        | libc::SYS_epoll_pwait
        | libc::SYS_epoll_pwait2
        | libc::SYS_wait4
        | libc::SYS_waitid
        | libc::SYS_nanosleep
        | libc::SYS_clock_nanosleep => true,
        libc::SYS_fcntl => matches!(args[1] as i32, libc::F_SETLKW | libc::F_OFD_SETLKW),
        _ => false,
    }
}

/// Whether a loaded object (other than libc) imports a symbol: its relocations name it.
mod links {
    use std::ffi::{c_void, CStr};

    const DT_NULL: i64 = 0;
    const DT_PLTRELSZ: i64 = 2;
    const DT_STRTAB: i64 = 5;
    const DT_SYMTAB: i64 = 6;
    const DT_RELA: i64 = 7;
    const DT_RELASZ: i64 = 8;
    const DT_JMPREL: i64 = 23;

    struct Search<'a> {
        name: &'a CStr,
        found: bool,
    }

    /// Whether the program or a library it loaded (libc excepted, which defines it)
    /// imports `name`.
    pub(super) fn imports(name: &CStr) -> bool {
        let mut search = Search { name, found: false };
        // SAFETY: the callback only reads the loaded objects' dynamic sections and the
        // tables they point at, and our `Search`.
        unsafe { libc::dl_iterate_phdr(Some(each), &mut search as *mut Search as *mut c_void) };
        search.found
    }

    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info and our `Search`.
        let (info, search) = unsafe { (&*info, &mut *(data as *mut Search)) };
        let name: &[u8] = if info.dlpi_name.is_null() {
            b""
        } else {
            // SAFETY: a module name is a C string (possibly empty).
            unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        if name.ends_with(b"libc.so.6") || name.starts_with(b"linux-vdso") {
            return 0;
        }
        // SAFETY: the object's program headers, and (below) its dynamic section and the
        // tables it names, which the loader mapped.
        unsafe {
            if imports_in(info, search.name) {
                search.found = true;
                return 1;
            }
        }
        0
    }

    /// # Safety
    /// `info` describes a loaded object whose dynamic section the loader relocated.
    unsafe fn imports_in(info: &libc::dl_phdr_info, name: &CStr) -> bool {
        let base = info.dlpi_addr as usize;
        // SAFETY: the caller's contract.
        let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        let Some(dynamic) = phdrs.iter().find(|p| p.p_type == libc::PT_DYNAMIC) else {
            return false;
        };
        // ld.so turns the table addresses into absolute ones in place (x86-64); an object
        // it did not relocate keeps offsets, which are below its base.
        let addr = |v: u64| {
            if (v as usize) < base {
                base + v as usize
            } else {
                v as usize
            }
        };
        let mut entry = (base + dynamic.p_vaddr as usize) as *const [i64; 2];
        let (mut strtab, mut symtab, mut rela, mut relasz, mut jmprel, mut pltrelsz) = (0, 0, 0, 0, 0, 0);
        loop {
            // SAFETY: the dynamic section ends with DT_NULL.
            let [tag, value] = unsafe { entry.read() };
            match tag {
                DT_NULL => break,
                DT_STRTAB => strtab = addr(value as u64),
                DT_SYMTAB => symtab = addr(value as u64),
                DT_RELA => rela = addr(value as u64),
                DT_RELASZ => relasz = value as usize,
                DT_JMPREL => jmprel = addr(value as u64),
                DT_PLTRELSZ => pltrelsz = value as usize,
                _ => {}
            }
            // SAFETY: not past DT_NULL.
            entry = unsafe { entry.add(1) };
        }
        if strtab == 0 || symtab == 0 {
            return false;
        }
        let wanted = name.to_bytes();
        // Elf64_Rela: offset, info (symbol index in the high half), addend; Elf64_Sym:
        // name (u32), info, other, shndx (u16, 0: undefined), value, size.
        for (table, size) in [(rela, relasz), (jmprel, pltrelsz)] {
            if table == 0 {
                continue;
            }
            for i in 0..size / 24 {
                // SAFETY: within the relocation table of `size` bytes.
                let info = unsafe { ((table + i * 24 + 8) as *const u64).read() };
                let sym = (info >> 32) as usize;
                if sym == 0 {
                    continue;
                }
                let entry = symtab + sym * 24;
                // SAFETY: the symbol the relocation names, in the object's symbol table.
                let (st_name, shndx) =
                    unsafe { ((entry as *const u32).read(), ((entry + 6) as *const u16).read()) };
                if shndx != 0 {
                    continue;
                }
                // SAFETY: a name in the object's string table.
                let sym_name = unsafe { CStr::from_ptr((strtab + st_name as usize) as *const libc::c_char) };
                if sym_name.to_bytes() == wanted {
                    return true;
                }
            }
        }
        false
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
    fn finds_the_symbols_a_loaded_object_imports_and_only_those() {
        // The test binary calls malloc through libc; nothing imports this name.
        assert!(links::imports(c"malloc"));
        assert!(!links::imports(c"flexsc_no_such_symbol"));
    }

    #[test]
    fn cancellation_points_are_glibc_s() {
        let none = [0u64; 6];
        assert!(is_cancellation_point(libc::SYS_read, &none));
        assert!(is_cancellation_point(libc::SYS_accept4, &none));
        assert!(!is_cancellation_point(libc::SYS_getpid, &none));
        let lock_wait = [3, libc::F_SETLKW as u64, 0, 0, 0, 0];
        let get_flags = [3, libc::F_GETFL as u64, 0, 0, 0, 0];
        assert!(is_cancellation_point(libc::SYS_fcntl, &lock_wait));
        assert!(!is_cancellation_point(libc::SYS_fcntl, &get_flags));
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
