//! User threads for `pthread_create`: the scheduler they run on, their records (join
//! state, by `pthread_t`), and the switch hook that installs each one's TCB.
//!
//! # A user thread's life
//!
//! ```text
//!   pthread_create (any thread)          kernel thread's loop            the user thread
//!   TCB = _dl_allocate_tls; record  ->   enter: %fs = TCB  --------->   __ctype_init
//!   *thread = TCB (pthread_t)                                           root unwind buffer
//!                                                                       start(arg)
//!                                                                       TLS + key destructors
//!                                                                       result; done = 1; wake
//!                                        leave: %fs = kernel's  <----   (returns)
//!                                        finished: finished = true
//!   pthread_join: wait done; released = true
//!   the TCB is freed by whichever of `finished` and join/detach comes second
//! ```
//!
//! The record is shared (`Arc`) by the table of threads, the scheduler's context word and
//! the user thread's body.
//!
//! # pthread_exit and cancellation: glibc's own unwinding
//!
//! glibc's `start_thread` calls the start routine below a `sigsetjmp` buffer that it puts
//! at the root of the TCB's `cleanup_jmp_buf` list; `pthread_exit` (and acting on a
//! cancellation, which is `pthread_exit(PTHREAD_CANCELED)`) runs `_Unwind_ForcedUnwind`
//! with a stop function that, frame by frame, runs the old-style handlers, `longjmp`s
//! into each `pthread_cleanup_push` buffer it reaches (whose code runs the handler and
//! calls `__pthread_unwind_next`), lets `-fexceptions`/C++ landing pads run, and finally
//! `longjmp`s to the root. A user thread does the same: its body calls the start routine
//! through `flexsc_mn_call_start` (below), which `sigsetjmp`s into a root buffer installed
//! in the user TCB, and `pthread_exit` in a user thread is glibc's own, after the value
//! was stored in the record. So cleanup handlers run innermost first, in both styles,
//! then the TLS and key destructors, as natively.
//!
//! Cancellation (`cancel`) and signals aimed at one user thread (`signal`) are acted on
//! by the user thread itself, at cancellation points and interposed calls; a wait that
//! POSIX lets them interrupt is woken through the record's [`WaitSlot`].

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use flexsc_scheduler::{Scheduler, SwitchHook};
use flexsc_shim::sys::syscall6;

use super::lot::{self, SpinLock, WaitSlot, Waited};
use super::tcb::{self, current_tp, UnwindBuf};

/// The default usable stack of a user thread (glibc's default is RLIMIT_STACK, usually
/// 8 MiB). Mapped with MAP_NORESERVE: only the pages a thread touches cost memory.
const DEFAULT_STACK: usize = 8 << 20;

extern "C" {
    fn pthread_attr_getdetachstate(attr: *const libc::pthread_attr_t, state: *mut libc::c_int)
        -> libc::c_int;
}

/// A start routine, called so that a `pthread_exit` below may unwind through it.
pub(crate) type StartRoutine = unsafe extern "C-unwind" fn(*mut c_void) -> *mut c_void;

extern "C" {
    fn __sigsetjmp(env: *mut UnwindBuf, savemask: libc::c_int) -> libc::c_int;
}

extern "C-unwind" {
    /// Calls `start(arg)` below a `__sigsetjmp(buf, 0)`: 0 when it returned (its result
    /// in `*out`), 1 when glibc's unwinder `longjmp`ed to `buf` (`pthread_exit`).
    fn flexsc_mn_call_start(
        start: StartRoutine,
        arg: *mut c_void,
        buf: *mut UnwindBuf,
        out: *mut usize,
    ) -> u32;
}

// The frame `buf` is taken in stays live while `start` runs, as `setjmp` requires; after
// a `longjmp` back, only callee-saved registers (restored by it) and the frame are used.
// `sigsetjmp` and `start` are called at the same stack pointer, as in glibc's
// `start_thread`, so glibc's stop function treats the frames below exactly as it does
// there, and `longjmp`s to `buf` where unwinding would leave `start`. The CFI describes
// the frame for the unwinder.
std::arch::global_asm!(
    ".pushsection .text.flexsc_mn_call_start,\"ax\",@progbits",
    ".globl flexsc_mn_call_start",
    ".hidden flexsc_mn_call_start",
    ".type flexsc_mn_call_start,@function",
    ".p2align 4",
    "flexsc_mn_call_start:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset 6, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register 6",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    ".cfi_offset 3, -24",
    ".cfi_offset 12, -32",
    ".cfi_offset 13, -40",
    ".cfi_offset 14, -48",
    "mov rbx, rdi", // start
    "mov r12, rsi", // arg
    "mov r13, rdx", // buf
    "mov r14, rcx", // out
    "mov rdi, rdx",
    "xor esi, esi",
    "call {sigsetjmp}@PLT",
    "test eax, eax",
    "jnz 2f",
    "mov rdi, r12",
    "call rbx",
    "mov qword ptr [r14], rax",
    "xor eax, eax",
    "jmp 3f",
    "2:",
    "mov eax, 1",
    "3:",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    ".cfi_def_cfa 7, 8",
    "ret",
    ".cfi_endproc",
    ".size flexsc_mn_call_start, .-flexsc_mn_call_start",
    ".popsection",
    sigsetjmp = sym __sigsetjmp,
);

/// glibc's `pthread_exit`, called through a pointer that may unwind.
static REAL_PTHREAD_EXIT: crate::real::Real = crate::real::Real::new(c"pthread_exit");

/// Resolves glibc's `pthread_exit` (constructor).
pub(crate) fn resolve_reals() {
    REAL_PTHREAD_EXIT.resolve();
}

/// What the table keeps per user thread.
///
/// Memory ordering: the thread stores `result` (Relaxed), then `done = 1` (SeqCst, so
/// Release); a joiner that reads `done == 1` (SeqCst, so Acquire) then reads `result`.
/// `life` is under its spin lock; `kernel_tid` is a hint (Relaxed). A cancellation
/// request (a bit of the TCB's `cancelhandling`) and `pending_signals` are set (SeqCst)
/// before the sender looks at `wait_slot`, and read (SeqCst) by the thread after it
/// registered its wait there (see `lot::WaitSlot`).
pub(crate) struct Record {
    /// Its TCB, which is also its `pthread_t`.
    pub(crate) tcb: usize,
    /// 0 while it runs; 1 once `result` holds its result (a lot word: joiners wait on it).
    done: AtomicU32,
    result: AtomicUsize,
    life: SpinLock<Life>,
    /// The kernel thread that runs it (its tid), once it started.
    pub(crate) kernel_tid: AtomicI32,
    /// Signals sent to it (`pthread_kill`, `pthread_sigqueue`) and not delivered yet: bit
    /// `sig - 1`.
    pub(crate) pending_signals: std::sync::atomic::AtomicU64,
    /// The values of those sent by `pthread_sigqueue`, oldest first.
    pub(crate) queued_values: SpinLock<Vec<(libc::c_int, usize)>>,
    /// Its current interruptible wait, for `pthread_cancel` and `pthread_kill`.
    pub(crate) wait_slot: WaitSlot,
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
    /// The address its `set_tid_address` gave (0: none): cleared, and its waiters woken,
    /// when it ends, as the kernel does for a thread (the kernel's own is the kernel
    /// thread's, which glibc keeps for that thread's join). Written and read by the thread
    /// itself, then by its kernel thread after it ended: Relaxed.
    pub(crate) clear_tid: AtomicUsize,
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

impl Record {
    /// Whether something should end its current interruptible wait: a cancellation it
    /// acts on now, or a signal it does not block.
    pub(crate) fn interrupt_due(&self) -> bool {
        super::cancel::due(tcb::cancelhandling(self.tcb).load(Ordering::SeqCst))
            || self.pending_signals.load(Ordering::SeqCst) & !self.sigmask.load(Ordering::Relaxed) != 0
    }

    /// Runs `f` unless the thread has finished (its TCB may then be another thread's
    /// already): `finished` is set under the same lock before the TCB is given back.
    pub(crate) fn unless_finished<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        self.life.with(|l| if l.finished { None } else { Some(f()) })
    }
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
    /// In a user thread (each has TLS of its own): its record, set by its body while the
    /// body holds the `Arc` (so the record outlives every use on the thread); null in
    /// other threads, and reset with the rest of the TLS when a TCB is reused.
    static CURRENT: std::cell::Cell<*const Record> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Runs `f` with the calling user thread's record (None in other threads). Cheaper than
/// [`current`]: no table lookup.
pub(crate) fn with_current<R>(f: impl FnOnce(&Record) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: set by the body of the user thread running here, which holds an `Arc` to
    // the record for as long as it runs (see `CURRENT`).
    (!p.is_null()).then(|| f(unsafe { &*p }))
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

/// The kernel thread is about to sleep: it blocks every signal meanwhile. Otherwise it
/// keeps the mask of the last user thread it ran (installing one costs a system call, so
/// `enter` installs a mask only when it differs), and a signal sent to the process that
/// every thread of the program blocks was taken here: ignored, handled in the scheduler's
/// context, or, by default, ending the process. Blocked here, it waits for a thread that
/// does not block it, as natively: one that runs (the main thread, or a user thread whose
/// mask `enter` installs, which then takes it on its own stack).
fn sleeps() {
    if KERNEL_SIGMASK.with(|k| k.replace(Some(u64::MAX))) != Some(u64::MAX) {
        set_kernel_sigmask(u64::MAX);
    }
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
    // The finished thread's mask must not stay on its kernel thread, which would take a
    // signal sent to the process that every live thread blocks (it did, in scheduler
    // context, when its idle spin outlasted the next `kill`: seen on a loaded machine).
    // One system call per thread that ends, as its next user thread's mask costs anyway.
    sleeps();
    // SAFETY: the spawn's `Arc::into_raw`, given back exactly once.
    let record = unsafe { Arc::from_raw(context as *const Record) };
    let clear = record.clear_tid.swap(0, Ordering::Relaxed);
    if clear != 0 {
        clear_child_tid(clear);
    }
    let free = record.life.with(|l| {
        l.finished = true;
        // Signals still pending die with the thread (a sender checks `finished` under
        // this lock, so none comes after).
        super::signal::discard(&record);
        l.released
    });
    if free {
        forget(&record);
    }
}

/// What the kernel does at a thread's end for the address its `set_tid_address` gave:
/// writes 0 there (nothing if the address is bad: through the kernel's copy, which
/// fails where the kernel's own write would) and wakes one waiter, a user thread parked on it
/// or a kernel one.
fn clear_child_tid(addr: usize) {
    let zero = 0u32;
    // SAFETY: the address the thread gave `set_tid_address`, which it handed to this very
    // write at its end (as the kernel's: the program expects it cleared).
    if !unsafe { flexsc_shim::sys::copy_checked(&zero as *const u32 as usize, addr, 4) } {
        return;
    }
    if super::lot::wake_addr(addr, 1, u32::MAX) == 0 {
        // SAFETY: FUTEX_WAKE of one waiter at an address of this process (shared, as the
        // kernel's own wake at a thread's end).
        unsafe {
            syscall6(
                libc::SYS_futex as u64,
                [addr as u64, libc::FUTEX_WAKE as u64, 1, 0, 0, 0],
            )
        };
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
                // Without a service thread every call would run on its kernel thread, and a
                // user thread's call that waits (a poll of an empty pipe) would stop every
                // other user thread of it for as long: a process limited to one core
                // (`taskset -c 0`, or a child of a user thread before affinity was
                // restored in children) hung where natively it runs. Run 1:1 instead.
                if let flexsc_kernel_side::Mode::Direct { reason } =
                    flexsc_kernel_side::runtime::choose_cores(config.cpus.as_deref())
                {
                    return Err(format!("no service thread can run ({reason})"));
                }
                let mut builder = Scheduler::builder()
                    .stack_size(DEFAULT_STACK)
                    .max_blocking_workers(config.workers)
                    .idle_spin(config.idle_spin)
                    .switch_hook(SwitchHook {
                        enter,
                        leave,
                        finished,
                        sleeps,
                    });
                if let Some(cpus) = config.cpus {
                    builder = builder.service_cores(cpus);
                }
                super::affinity::remember_program();
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
        pending_signals: std::sync::atomic::AtomicU64::new(0),
        queued_values: SpinLock::new(Vec::new()),
        wait_slot: WaitSlot::new(),
        sigmask: std::sync::atomic::AtomicU64::new(sigmask),
        name: SpinLock::new(name),
        alt_stack: SpinLock::new(AltStack {
            sp: 0,
            flags: libc::SS_DISABLE,
            size: 0,
        }),
        clear_tid: AtomicUsize::new(0),
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
    // Counted as glibc counts its threads (the kernel threads that run user threads are
    // not): a `main` that called `pthread_exit` ends the process when the last one ends.
    let count = flexsc_kernel_side::census::count();
    if let Some(c) = count {
        c.fetch_add(1, Ordering::SeqCst);
    }
    if let Err(_e) = scheduler.spawn_with_context(context, stack, body) {
        if let Some(c) = count {
            c.fetch_sub(1, Ordering::SeqCst);
        }
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
    CURRENT.with(|c| c.set(Arc::as_ptr(&record)));
    // Signals sent before it first ran.
    super::signal::deliver_due();
    let mut root = UnwindBuf::new();
    let mut value = 0usize;
    tcb::set_root_unwind_buf(&mut root);
    // SAFETY: the application's start routine with its argument; `root` (installed above
    // as the TCB's root cleanup buffer) and `value` outlive the call.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
        flexsc_mn_call_start(start, arg as *mut c_void, &mut root, &mut value)
    }));
    let value = match outcome {
        Ok(0) => value,
        // pthread_exit or a cancellation: glibc's unwinder came back to `root`.
        Ok(_) => record.result.load(Ordering::Relaxed),
        Err(_) => {
            crate::route::quietly(|| eprintln!("flexsc: a panic escaped a user thread; aborting"));
            std::process::abort();
        }
    };
    tcb::set_root_unwind_buf(std::ptr::null_mut());
    glibc.thread_exiting();
    if super::forked_child() {
        // The copy of a user thread in a forked child: nothing may switch back to the
        // copied loop. End as glibc ends a thread: the last one exits the process.
        glibc.end_thread_in_forked_child();
    }
    CURRENT.with(|c| c.set(std::ptr::null()));
    record.result.store(value, Ordering::Relaxed);
    record.done.store(1, Ordering::SeqCst);
    lot::wake(&record.done, usize::MAX);
    // The last of the program's threads ends the process, as in glibc's `start_thread`
    // (its `main` called `pthread_exit`).
    if let Some(c) = flexsc_kernel_side::census::count() {
        if c.fetch_sub(1, Ordering::SeqCst) == 1 {
            // SAFETY: exit runs the atexit handlers and ends the process, as glibc does.
            unsafe { libc::exit(0) };
        }
    }
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
    if wait {
        super::cancel::test();
    }
    while record.done.load(Ordering::SeqCst) == 0 {
        if !wait {
            return libc::EBUSY;
        }
        match lot::wait_user_interruptible(&record.done, 0, deadline) {
            Waited::TimedOut if record.done.load(Ordering::SeqCst) == 0 => return libc::ETIMEDOUT,
            // A cancellation acts here (a cancelled joiner joins nothing); a handler runs
            // and the join goes on, as natively.
            Waited::Interrupted => {
                super::cancel::test();
                super::signal::deliver_due();
            }
            _ => {}
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

/// pthread_exit in a user thread: glibc's own, which unwinds (running the cleanup
/// handlers) to the root buffer of its body.
pub(crate) fn exit(value: *mut c_void) -> ! {
    with_current(|r| r.result.store(value as usize, Ordering::Relaxed));
    glibc_pthread_exit(value)
}

/// glibc's pthread_exit.
pub(crate) fn glibc_pthread_exit(value: *mut c_void) -> ! {
    // SAFETY: glibc's pthread_exit, whose C signature this is; it unwinds through frames
    // that all allow it ("C-unwind") up to the root buffer `run` installed.
    let f: unsafe extern "C-unwind" fn(*mut c_void) -> ! = unsafe { REAL_PTHREAD_EXIT.get() };
    // SAFETY: as above.
    unsafe { f(value) }
}

/// Whether the thread was detached.
pub(crate) fn is_detached(record: &Record) -> bool {
    record.life.with(|l| l.detached)
}

/// Whether the thread has ended (for pthread_kill's signal 0).
pub(crate) fn has_ended(record: &Record) -> bool {
    record.done.load(Ordering::SeqCst) != 0
}
