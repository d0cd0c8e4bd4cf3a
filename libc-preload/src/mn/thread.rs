//! User threads for `pthread_create`: the scheduler they run on, their records (join
//! state, by `pthread_t`), and the switch hook that installs each one's TCB.
//!
//! # A user thread's life
//!
//! ```text
//!   pthread_create (any thread)          kernel thread's loop            the user thread
//!   TCB = _dl_allocate_tls; record  ->   enter: %fs = TCB  --------->   __ctype_init
//!   *thread = TCB (pthread_t)                                           start(arg)
//!                                                                       TLS + key destructors
//!                                                                       result; done = 1; wake
//!                                        leave: %fs = kernel's  <----   (returns)
//!                                        finished: finished = true
//!   pthread_join: wait done; released = true
//!   the TCB is freed by whichever of `finished` and join/detach comes second
//! ```
//!
//! The record is shared (`Arc`) by the table of threads, the scheduler's context word and
//! the user thread's body. `pthread_exit` in a user thread unwinds to the body with a Rust
//! panic payload ([`ThreadExit`]) through the C frames (their `.eh_frame` describes them;
//! C cleanup handlers registered with `pthread_cleanup_push` do not run).

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use flexsc_scheduler::{Scheduler, SwitchHook};

use super::lot::{self, SpinLock, Waited};
use super::tcb::current_tp;

/// The default usable stack of a user thread (glibc's default is RLIMIT_STACK, usually
/// 8 MiB). Mapped with MAP_NORESERVE: only the pages a thread touches cost memory.
const DEFAULT_STACK: usize = 8 << 20;

extern "C" {
    fn pthread_attr_getdetachstate(attr: *const libc::pthread_attr_t, state: *mut libc::c_int)
        -> libc::c_int;
}

/// A start routine, called so that a `pthread_exit` below may unwind through it.
pub(crate) type StartRoutine = unsafe extern "C-unwind" fn(*mut c_void) -> *mut c_void;

/// The unwinding payload of `pthread_exit` in a user thread.
pub(crate) struct ThreadExit(pub(crate) usize);

/// What the table keeps per user thread.
///
/// Memory ordering: the thread stores `result` (Relaxed), then `done = 1` (SeqCst, so
/// Release); a joiner that reads `done == 1` (SeqCst, so Acquire) then reads `result`.
/// `life` is under its spin lock; `kernel_tid` and `cancel` are hints (Relaxed).
pub(crate) struct Record {
    /// Its TCB, which is also its `pthread_t`.
    pub(crate) tcb: usize,
    /// 0 while it runs; 1 once `result` holds its result (a lot word: joiners wait on it).
    done: AtomicU32,
    result: AtomicUsize,
    life: SpinLock<Life>,
    /// The kernel thread that runs it (its tid), once it started.
    pub(crate) kernel_tid: AtomicI32,
    /// pthread_cancel was called for it.
    pub(crate) cancel: AtomicBool,
    /// Its signal mask (the kernel's 64-bit set), installed on its kernel thread while it
    /// runs: set by the thread itself (`pthread_sigmask`), read by the switch hook on the
    /// same kernel thread. Relaxed: both sides run on that kernel thread, in turn.
    pub(crate) sigmask: std::sync::atomic::AtomicU64,
    /// Its name (`pthread_setname_np`), NUL-padded: the kernel's name is the kernel
    /// thread's.
    pub(crate) name: SpinLock<[u8; 16]>,
    /// Its alternate signal stack as `sigaltstack` reports it (the kernel's is the kernel
    /// thread's, which all its user threads share).
    pub(crate) alt_stack: SpinLock<AltStack>,
}

/// A user thread's `stack_t`, as plain values.
#[derive(Clone, Copy)]
pub(crate) struct AltStack {
    pub(crate) sp: usize,
    pub(crate) flags: libc::c_int,
    pub(crate) size: usize,
}

#[derive(Default)]
struct Life {
    /// Its body returned and it will never run again (set on the kernel thread).
    finished: bool,
    /// Joined or detached: no one will ask for its result.
    released: bool,
    detached: bool,
}

type Table = HashMap<usize, Arc<Record>>;

static THREADS: SpinLock<Option<Table>> = SpinLock::new(None);

/// The record of the user thread whose `pthread_t` is `t`, if it is one.
pub(crate) fn lookup(t: libc::pthread_t) -> Option<Arc<Record>> {
    THREADS.with(|table| table.as_ref().and_then(|m| m.get(&(t as usize)).cloned()))
}

/// The calling user thread's record.
pub(crate) fn current() -> Option<Arc<Record>> {
    if !flexsc_scheduler::in_user_thread() {
        return None;
    }
    lookup(current_tp() as libc::pthread_t)
}

thread_local! {
    /// The signal mask installed on this kernel thread (read and written by the switch
    /// hook only, with the kernel thread's own TLS installed).
    static KERNEL_SIGMASK: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

fn enter(context: usize) -> usize {
    // SAFETY: the context is an `Arc<Record>` turned into a raw pointer at spawn, released
    // only in `finished`, after the last `leave`.
    let record = unsafe { &*(context as *const Record) };
    let mask = record.sigmask.load(Ordering::Relaxed);
    if KERNEL_SIGMASK.with(|k| k.replace(Some(mask))) != Some(mask) {
        set_kernel_sigmask(mask);
    }
    let kernel_tp = current_tp();
    super::glibc().set_tp(record.tcb);
    kernel_tp
}

fn leave(context: usize, kernel_tp: usize) {
    super::glibc().set_tp(kernel_tp);
    // SAFETY: as in `enter`.
    let record = unsafe { &*(context as *const Record) };
    // The thread may have changed its mask (and installed it) while it ran.
    KERNEL_SIGMASK.with(|k| k.set(Some(record.sigmask.load(Ordering::Relaxed))));
}

/// glibc's own signals (SIGCANCEL 32, SIGSETXID 33) are never blocked, as glibc does.
const GLIBC_SIGNALS: u64 = (1 << 31) | (1 << 32);

/// Installs `mask` on the calling kernel thread (raw: no glibc filtering needed, done here).
pub(crate) fn set_kernel_sigmask(mask: u64) {
    let mask = mask & !GLIBC_SIGNALS;
    // SAFETY: rt_sigprocmask reads 8 bytes of `mask` (the kernel's sigset size).
    unsafe {
        flexsc_shim::sys::syscall6(
            libc::SYS_rt_sigprocmask as u64,
            [libc::SIG_SETMASK as u64, &mask as *const u64 as u64, 0, 8, 0, 0],
        )
    };
}

/// The calling thread's signal mask as the kernel has it.
pub(crate) fn kernel_sigmask() -> u64 {
    let mut old = 0u64;
    // SAFETY: rt_sigprocmask with no new set writes 8 bytes into `old`.
    unsafe {
        flexsc_shim::sys::syscall6(
            libc::SYS_rt_sigprocmask as u64,
            [libc::SIG_BLOCK as u64, 0, &mut old as *mut u64 as u64, 8, 0, 0],
        )
    };
    old
}

fn finished(context: usize) {
    // SAFETY: the spawn's `Arc::into_raw`, given back exactly once.
    let record = unsafe { Arc::from_raw(context as *const Record) };
    let free = record.life.with(|l| {
        l.finished = true;
        l.released
    });
    if free {
        forget(&record);
    }
}

/// Takes a thread out of the table and frees its TCB: it has finished and no one will
/// join it.
fn forget(record: &Record) {
    THREADS.with(|table| table.as_mut().and_then(|m| m.remove(&record.tcb)));
    // SAFETY: the thread finished (no kernel thread runs on its TCB or will install it
    // again) and it is out of the table.
    unsafe { super::glibc().release(record.tcb) };
}

static SCHEDULER: OnceLock<Result<Scheduler, String>> = OnceLock::new();

/// The statistics of the scheduler's runtime, if M-on-N started it.
pub(crate) fn started_scheduler_stats() -> Option<flexsc_scheduler::Stats> {
    match SCHEDULER.get() {
        Some(Ok(scheduler)) => Some(scheduler.stats()),
        _ => None,
    }
}

/// The process's scheduler, started on first use (with the preload marked busy, so that
/// its kernel threads are made by the real pthread_create).
pub(crate) fn scheduler() -> Result<&'static Scheduler, String> {
    SCHEDULER
        .get_or_init(|| {
            crate::route::quietly(|| {
                // A bad value was reported by the constructor ("running system calls
                // directly"): keep that promise, run 1:1.
                let config = flexsc_kernel_side::Config::from_env().map_err(|e| e.to_string())?;
                let mut builder = Scheduler::builder()
                    .stack_size(DEFAULT_STACK)
                    .max_blocking_workers(config.workers)
                    .idle_spin(config.idle_spin)
                    .switch_hook(SwitchHook {
                        enter,
                        leave,
                        finished,
                    });
                if let Some(cpus) = config.cpus {
                    builder = builder.service_cores(cpus);
                }
                let scheduler = builder.build().map_err(|e| e.to_string())?;
                lot::start_timer().map_err(|e| format!("cannot start the timer thread: {e}"))?;
                Ok(scheduler)
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// pthread_create for a user thread: Ok(pthread_t), or an errno.
///
/// # Safety
/// `attr` is null or an initialised attribute object; `start` is callable with `arg`.
pub(crate) unsafe fn create(
    attr: *const libc::pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
) -> Result<libc::pthread_t, libc::c_int> {
    let scheduler = scheduler().map_err(|_| libc::EAGAIN)?;
    let mut detached = false;
    let mut stack = DEFAULT_STACK;
    if !attr.is_null() {
        let mut state = 0;
        let mut size = 0;
        // SAFETY: the caller's attribute object; both calls only read it.
        unsafe {
            if pthread_attr_getdetachstate(attr, &mut state) == 0 {
                detached = state == libc::PTHREAD_CREATE_DETACHED;
            }
            if libc::pthread_attr_getstacksize(attr, &mut size) == 0 && size > 0 {
                stack = size;
            }
        }
    }
    // A new thread starts with its creator's signal mask and name, as a clone would.
    let (sigmask, name) = match current() {
        Some(creator) => (creator.sigmask.load(Ordering::Relaxed), creator.name.with(|n| *n)),
        None => {
            let mut name = [0u8; 16];
            // SAFETY: PR_GET_NAME writes at most 16 bytes into `name`.
            unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
            (kernel_sigmask(), name)
        }
    };
    let glibc = super::glibc();
    let tcb = glibc.allocate().ok_or(libc::EAGAIN)?;
    let record = Arc::new(Record {
        tcb,
        done: AtomicU32::new(0),
        result: AtomicUsize::new(0),
        life: SpinLock::new(Life {
            released: detached,
            detached,
            ..Life::default()
        }),
        kernel_tid: AtomicI32::new(0),
        cancel: AtomicBool::new(false),
        sigmask: std::sync::atomic::AtomicU64::new(sigmask),
        name: SpinLock::new(name),
        alt_stack: SpinLock::new(AltStack {
            sp: 0,
            flags: libc::SS_DISABLE,
            size: 0,
        }),
    });
    THREADS.with(|table| {
        table
            .get_or_insert_with(HashMap::new)
            .insert(tcb, Arc::clone(&record));
    });
    let body_record = Arc::clone(&record);
    let arg = arg as usize;
    let body = Box::new(move || run(body_record, start, arg));
    let context = Arc::into_raw(Arc::clone(&record)) as usize;
    if let Err(_e) = scheduler.spawn_with_context(context, stack, body) {
        // SAFETY: the context was never handed out.
        drop(unsafe { Arc::from_raw(context as *const Record) });
        THREADS.with(|table| table.as_mut().and_then(|m| m.remove(&tcb)));
        // SAFETY: never installed.
        unsafe { glibc.release(tcb) };
        return Err(libc::EAGAIN);
    }
    Ok(tcb as libc::pthread_t)
}

/// A user thread's body, on its own stack and TCB.
fn run(record: Arc<Record>, start: StartRoutine, arg: usize) {
    let glibc = super::glibc();
    glibc.thread_started();
    record
        .kernel_tid
        .store(flexsc_shim::sys::gettid(), Ordering::Relaxed);
    // SAFETY: the application's start routine with its argument; a pthread_exit inside
    // unwinds to here.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe { start(arg as *mut c_void) } as usize));
    let value = match outcome {
        Ok(value) => value,
        Err(payload) => match payload.downcast::<ThreadExit>() {
            Ok(exit) => exit.0,
            Err(_) => {
                crate::route::quietly(|| eprintln!("flexsc: a panic escaped a user thread; aborting"));
                std::process::abort();
            }
        },
    };
    glibc.thread_exiting();
    if super::forked_child() {
        // The copy of a user thread in a forked child: nothing may switch back to the
        // copied loop. End as glibc ends a thread: the last one exits the process.
        glibc.end_thread_in_forked_child();
    }
    record.result.store(value, Ordering::Relaxed);
    record.done.store(1, Ordering::SeqCst);
    lot::wake(&record.done, usize::MAX);
}

/// pthread_join / tryjoin / timedjoin of a user thread: 0, or an errno.
pub(crate) fn join(
    record: &Arc<Record>,
    result: *mut *mut c_void,
    wait: bool,
    deadline: Option<std::time::Instant>,
) -> libc::c_int {
    if record.tcb == current_tp() {
        return libc::EDEADLK;
    }
    if record.life.with(|l| l.released) {
        return if record.life.with(|l| l.detached) {
            libc::EINVAL
        } else {
            libc::ESRCH
        };
    }
    while record.done.load(Ordering::SeqCst) == 0 {
        if !wait {
            return libc::EBUSY;
        }
        if lot::wait(&record.done, 0, deadline) == Waited::TimedOut && record.done.load(Ordering::SeqCst) == 0
        {
            return libc::ETIMEDOUT;
        }
    }
    if !result.is_null() {
        // SAFETY: the caller's out-pointer.
        unsafe { *result = record.result.load(Ordering::Relaxed) as *mut c_void };
    }
    release(record, false);
    0
}

/// Join or detach: no one will ask for the result any more.
pub(crate) fn release(record: &Arc<Record>, detach: bool) -> libc::c_int {
    let (was, finished) = record.life.with(|l| {
        let was = l.released;
        l.released = true;
        l.detached |= detach;
        (was, l.finished)
    });
    if was {
        return libc::EINVAL;
    }
    if finished {
        forget(record);
    }
    0
}

/// pthread_exit in a user thread: unwinds to its body.
pub(crate) fn exit(value: *mut c_void) -> ! {
    panic::resume_unwind(Box::new(ThreadExit(value as usize)))
}

/// Whether the thread was detached.
pub(crate) fn is_detached(record: &Record) -> bool {
    record.life.with(|l| l.detached)
}

/// Whether the thread has ended (for pthread_kill's signal 0).
pub(crate) fn has_ended(record: &Record) -> bool {
    record.done.load(Ordering::SeqCst) != 0
}
