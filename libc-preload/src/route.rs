//! The interposed path: every wrapper hands its call here, with the syscall it maps to and
//! a closure that calls the real libc function.
//!
//! ```text
//!   wrapper(args) ──> route(nr, args, real)
//!                       ├─ disabled, re-entered, runtime thread, isolated ──> real()
//!                       ├─ classify + policy say delegate ──> Submitter::call ──> errno
//!                       └─ otherwise ──> real(), counted as run on the caller
//! ```
//!
//! The direct path calls the real libc function, not the bare syscall, so cancellation
//! points, glibc's own argument handling and errno behave exactly as without us.

use std::cell::{Cell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

use flexsc_kernel_side::{Blocking, Builder, Config, Runtime};
use flexsc_shim::table::{classify, Class};
use flexsc_shim::Submitter;

use crate::inside::QUIET;
use crate::policy::{ticks, Decision, Policy, Window};

/// The process's runtime (replaced in a forked child). Null when disabled.
static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
/// Set once at start: false means every call passes straight through.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// The policy (a `Policy` as u32).
static POLICY: AtomicU32 = AtomicU32::new(0);
/// Bumped in a forked child: submitters of an older generation belong to the parent.
static GENERATION: AtomicU32 = AtomicU32::new(0);
/// Set when a thread changed its identity or confinement (seccomp, Landlock, a per-thread
/// setuid, unshare, ...): from then on the process delegates nothing. Conservative: the
/// confinement is inherited by threads the confined thread creates, which we cannot see.
static ISOLATED: AtomicBool = AtomicBool::new(false);
/// The pthread key whose destructor releases a thread's submitter at thread exit.
static KEY: AtomicU32 = AtomicU32::new(u32::MAX);

struct Local {
    /// This thread's submitter, in the thread's own static TLS: no allocation. Only the
    /// owning thread touches it, never re-entrantly (`busy`), and the pthread key's
    /// destructor drops it at thread exit (`ManuallyDrop`: no TLS destructor registration,
    /// which could allocate).
    submitter: UnsafeCell<ManuallyDrop<Option<Submitter>>>,
    generation: Cell<u32>,
    /// Inside the preload (re-entry from a signal handler, or our own calls): run
    /// directly. 0 when outside; else the mark of the frame that entered
    /// ([`crate::inside`]: a handler may `siglongjmp` out and leave it standing), or
    /// [`QUIET`].
    busy: Cell<usize>,
    /// One of the runtime's own threads, or a thread that cannot get a page: always direct.
    direct: Cell<bool>,
    tid: Cell<u32>,
    window: Cell<Window>,
    /// The signal a delegated call owes this thread (`flexsc_shim::owed`), raised once
    /// the call has left the preload (`raise_owed`): a handler it runs may `siglongjmp`
    /// out.
    owed: Cell<i32>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            submitter: UnsafeCell::new(ManuallyDrop::new(None)),
            generation: Cell::new(0),
            busy: Cell::new(0),
            direct: Cell::new(false),
            tid: Cell::new(0),
            window: Cell::new(Window::new()),
            owed: Cell::new(0),
        }
    };
}

fn policy() -> Policy {
    match POLICY.load(Ordering::Relaxed) {
        1 => Policy::Always,
        2 => Policy::Never,
        _ => Policy::Adaptive,
    }
}

/// Reads the configuration and builds the runtime (no thread starts until a call is
/// delegated). On a bad value: one line on stderr, and every call passes through.
pub fn init() {
    let config = match (Config::from_env(), Policy::from_env()) {
        (Ok(c), Ok(p)) => {
            POLICY.store(
                match p {
                    Policy::Adaptive => 0,
                    Policy::Always => 1,
                    Policy::Never => 2,
                },
                Ordering::Relaxed,
            );
            c
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("flexsc: {e}; running system calls directly");
            return;
        }
    };
    if let Err(e) = build_runtime(config) {
        eprintln!("flexsc: cannot start the runtime ({e}); running system calls directly");
        return;
    }
    // Under `always` the service threads start now, so the interposed path never has to
    // spawn one (spawning allocates). Under `adaptive` they start before the program's
    // first `pthread_create` (`before_thread_create`: what they open then runs beside
    // nothing of the program's), or, for threads made otherwise, at the first shared
    // phase: the one allocation an interposed call can make, once per process.
    if policy() == Policy::Always {
        if let Some(rt) = runtime() {
            if let Err(e) = rt.start_and_wait_until_running() {
                eprintln!("flexsc: cannot start service threads ({e}); running system calls directly");
            }
        }
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: creates a key with a destructor that only runs for non-null values.
    if unsafe { libc::pthread_key_create(&mut key, Some(release_submitter)) } == 0 {
        KEY.store(key, Ordering::Relaxed);
    }
    ENABLED.store(true, Ordering::Release);
}

fn build_runtime(config: Config) -> std::io::Result<()> {
    let runtime = Builder::from_config(config)
        .blocking(Blocking::Caller)
        .lazy()
        .build()?;
    RUNTIME.store(Box::into_raw(Box::new(runtime)), Ordering::Release);
    Ok(())
}

/// The runtime, if enabled.
pub fn runtime() -> Option<&'static Runtime> {
    // SAFETY: a non-null pointer came from `Box::into_raw` and is never freed (a forked
    // child replaces it and leaks the parent's).
    unsafe { RUNTIME.load(Ordering::Acquire).as_ref() }
}

/// Whether the policy is `never`: nothing is delegated, not even by user threads.
pub(crate) fn delegates_nothing() -> bool {
    policy() == Policy::Never
}

/// The policy's name, for statistics.
pub fn policy_name() -> &'static str {
    policy().name()
}

/// Whether delegation stopped because a thread isolated itself.
pub fn isolated() -> bool {
    ISOLATED.load(Ordering::Relaxed)
}

/// In a forked child: the parent's service threads do not exist here. Start over with a
/// fresh runtime; the parent's pages and submitters are left behind, never touched.
pub fn after_fork_child() {
    if !ENABLED.load(Ordering::Acquire) {
        return;
    }
    GENERATION.fetch_add(1, Ordering::AcqRel);
    let config = runtime().map(|r| r.config().clone()).unwrap_or_default();
    if build_runtime(config).is_err() {
        ENABLED.store(false, Ordering::Release);
    }
    // The forking thread's submitter belongs to the parent's runtime: forget it (its page
    // and locks are the parent's business).
    LOCAL.with(|l| {
        // SAFETY: this thread's own slot; nothing else runs on this thread now.
        std::mem::forget(unsafe { (*l.submitter.get()).take() });
    });
}

/// In the child of `_Fork`, which runs no atfork handler and after which only
/// async-signal-safe functions may run (so nothing here allocates or locks): every call
/// of this image runs directly, and the parent's runtime is forgotten (no statistics, no
/// wait for its calls at exec). Its calls used to be posted to service threads the child
/// does not have: the child hung at its first delegated call.
pub fn disable_in_raw_child() {
    ENABLED.store(false, Ordering::Release);
    RUNTIME.store(std::ptr::null_mut(), Ordering::Release);
}

unsafe extern "C" fn release_submitter(slot: *mut libc::c_void) {
    let slot = slot as *mut ManuallyDrop<Option<Submitter>>;
    let current = LOCAL.with(|l| {
        l.busy.set(QUIET);
        l.generation.get() == GENERATION.load(Ordering::Acquire)
    });
    // SAFETY: the key's value is this thread's own TLS slot (set in `submitter()`), and
    // the thread is exiting: nothing else uses the slot.
    let sub = unsafe { (*slot).take() };
    if current {
        drop(sub);
    } else {
        // A submitter of an older generation belongs to the parent's runtime: leave it.
        std::mem::forget(sub);
    }
}

/// This thread's submitter, created on first use. None when the thread must run directly.
#[allow(clippy::mut_from_ref)] // the slot is this thread's own, and `busy` rules out re-entry
fn submitter(l: &Local) -> Option<&mut Submitter> {
    let generation = GENERATION.load(Ordering::Acquire);
    // SAFETY: this thread's own slot; `route` holds `busy` (or found the section that
    // held it left for good: `jumped_out`), so no other borrow exists.
    let slot = unsafe { &mut *l.submitter.get() };
    if slot.is_some() && l.generation.get() == generation {
        return slot.as_mut();
    }
    if l.direct.get() {
        return None;
    }
    if flexsc_kernel_side::is_runtime_thread() {
        l.direct.set(true);
        return None;
    }
    let rt = runtime()?;
    match rt.submitter() {
        Ok(s) => {
            // A stale submitter (forked child) was forgotten in `after_fork_child`.
            **slot = Some(s);
            l.generation.set(generation);
            l.tid.set(flexsc_shim::sys::gettid() as u32);
            let key = KEY.load(Ordering::Relaxed);
            if key != u32::MAX {
                // SAFETY: a valid key; the value is this thread's slot, which lives as long
                // as the thread.
                unsafe { libc::pthread_setspecific(key, l.submitter.get() as *const libc::c_void) };
            }
            slot.as_mut()
        }
        Err(e) => {
            l.direct.set(true);
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                // Mid-run: the program may have put a data file on fd 2 by now.
                flexsc_kernel_side::diag::note(format_args!(
                    "flexsc: {e}; further threads run their system calls directly"
                ));
            }
            None
        }
    }
}

/// Calls a Block-class call may be tried for inline on a service thread: a non-blocking
/// form exists. Every other Block-class call runs on its caller.
fn attemptable(nr: i64) -> bool {
    matches!(
        nr,
        libc::SYS_read
            | libc::SYS_write
            | libc::SYS_readv
            | libc::SYS_writev
            | libc::SYS_pread64
            | libc::SYS_pwrite64
            | libc::SYS_preadv
            | libc::SYS_pwritev
            | libc::SYS_recvfrom
            | libc::SYS_sendto
            | libc::SYS_recvmsg
            | libc::SYS_sendmsg
            | libc::SYS_recvmmsg
            | libc::SYS_sendmmsg
    )
}

pub(crate) fn errno() -> i32 {
    // SAFETY: errno is thread-local and always readable.
    unsafe { *libc::__errno_location() }
}

pub(crate) fn set_errno(e: i32) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e };
}

/// Runs a wrapper's call: delegated through the calling thread's page when the table and
/// the policy allow, else through `real` (the real libc function). Returns what libc
/// would: the value, or -1 with errno set.
///
/// # Safety
/// `nr` and `args` are exactly the system call that `real` would make.
#[inline]
pub unsafe fn route(nr: i64, args: [u64; 6], real: impl FnOnce() -> i64) -> i64 {
    // Inside `dlopen` (a library's constructor), the loader lock is held, which a new
    // thread of the runtime (a blocking worker for this very call) needs before it runs:
    // the call runs here (`crate::loader`). Two loads while nobody holds the lock.
    if crate::loader::held_here() {
        return real();
    }
    if crate::mn::routes_user_thread() {
        // SAFETY: forwarded.
        return unsafe { route_user_thread(nr, args, real) };
    }
    if !ENABLED.load(Ordering::Relaxed) {
        return real();
    }
    let ret = LOCAL.with(|l| {
        let mut slot = 0usize;
        let was = l.busy.get();
        if was != 0 && !jumped_out(l, was, &slot as *const usize as usize) {
            return real();
        }
        l.busy.set(crate::inside::mark(&mut slot));
        // SAFETY: forwarded.
        let ret = unsafe { route_in(l, nr, args, real) };
        l.busy.set(0);
        std::hint::black_box(&slot);
        ret
    });
    raise_owed();
    ret
}

/// This thread found itself marked inside the preload, from a frame whose slot is at
/// `here`: whether a signal handler jumped out of the marked call (`siglongjmp`) rather
/// than this being a call the handler makes while that call runs (see
/// [`crate::inside`]). If it jumped, the call it left is settled first
/// ([`Submitter::settle_abandoned`]): taken back if no service thread took it, else
/// waited for, its result dropped, as the kernel drops an interrupted call's.
#[cold]
#[inline(never)]
fn jumped_out(l: &Local, mark: usize, here: usize) -> bool {
    if !crate::inside::is_stale(mark, here) {
        return false;
    }
    if l.generation.get() == GENERATION.load(Ordering::Acquire) {
        // SAFETY: this thread's own slot; the section that borrowed it was left for good.
        if let Some(sub) = unsafe { (*l.submitter.get()).as_mut() } {
            sub.settle_abandoned();
        }
    }
    true
}

/// A delegated call's raw result, without the signal it owes this thread, which is kept
/// for [`raise_owed`].
pub(crate) fn keep_owed(raw: i64) -> i64 {
    let (ret, sig) = flexsc_shim::owed::split(raw);
    if let Some(sig) = sig {
        let _ = LOCAL.try_with(|l| l.owed.set(sig));
    }
    ret
}

/// Raises the signal the call that just returned owes this thread, if any: after the
/// preload's own state is settled, as the kernel delivers it on the way out of the call;
/// errno stays the call's.
#[inline]
fn raise_owed() {
    let sig = LOCAL.try_with(|l| l.owed.replace(0)).unwrap_or(0);
    if sig != 0 {
        let err = errno();
        flexsc_shim::owed::raise_here(sig);
        set_errno(err);
    }
}

/// A user thread's call: at a cancellation point, a pending cancellation is acted on
/// before the call is posted and after it returns (outside the busy section, since acting
/// unwinds); signals sent to the thread are delivered after it returns, and one that
/// interrupted its wait for a descriptor makes the call fail with EINTR or start again
/// (SA_RESTART), as a signal does natively.
///
/// # Safety
/// As [`route`].
#[inline]
unsafe fn route_user_thread(nr: i64, args: [u64; 6], real: impl FnOnce() -> i64) -> i64 {
    let inside = LOCAL
        .try_with(|l| {
            let here = 0usize;
            let was = l.busy.get();
            was != 0 && !crate::inside::is_stale(was, &here as *const usize as usize)
        })
        .unwrap_or(true);
    if inside {
        return real();
    }
    let cancellation_point = crate::mn::is_cancellation_point(nr, &args);
    let mut real = Some(real);
    loop {
        if cancellation_point {
            crate::mn::cancel::test();
        }
        let out = LOCAL.with(|l| {
            let mut slot = 0usize;
            l.busy.set(crate::inside::mark(&mut slot));
            let direct = || real.take().map_or(-1, |f| f());
            // SAFETY: forwarded.
            let out = unsafe { crate::mn::route_user_thread(nr, args, direct) };
            l.busy.set(0);
            std::hint::black_box(&slot);
            out
        });
        raise_owed();
        if cancellation_point {
            crate::mn::cancel::test();
        }
        let delivered = crate::mn::signal::deliver_due();
        match out {
            Ok(ret) => return ret,
            Err(crate::mn::Interrupted) if delivered == crate::mn::signal::Delivered::Interrupt => {
                set_errno(libc::EINTR);
                return -1;
            }
            // Handlers with SA_RESTART, or none (ignored): the call starts again.
            Err(crate::mn::Interrupted) => {}
        }
    }
}

#[inline]
unsafe fn route_in(l: &Local, nr: i64, args: [u64; 6], real: impl FnOnce() -> i64) -> i64 {
    let Some(sub) = submitter(l) else { return real() };
    let class = classify(nr as u64, &args);
    let delegable = match class {
        Class::Delegate => true,
        Class::Block => attemptable(nr),
        Class::Caller | Class::Isolate => false,
    };
    let decision = match policy() {
        _ if !delegable || ISOLATED.load(Ordering::Relaxed) => Decision {
            delegate: false,
            sample: false,
        },
        Policy::Always => Decision {
            delegate: true,
            sample: false,
        },
        Policy::Never => Decision {
            delegate: false,
            sample: false,
        },
        Policy::Adaptive => {
            let mut w = l.window.get();
            let d = w.tick(l.tid.get());
            l.window.set(w);
            d
        }
    };
    let start = if decision.sample { ticks() } else { 0 };
    let delegate = decision.delegate && serving();
    // A call handed back whole (one that would wait, declined under `Blocking::Caller`)
    // runs below through glibc's own function, as it would have without us: a
    // cancellation point acts on `pthread_cancel` there, where a raw call would not.
    // SAFETY: forwarded: the call `real` would have made.
    let delegated = delegate
        .then(|| unsafe { sub.call_unless_handed_back(nr as u64, args) })
        .flatten();
    let ret = if let Some(raw) = delegated.map(keep_owed) {
        if (-4095..0).contains(&raw) {
            set_errno(-raw as i32);
            -1
        } else {
            raw
        }
    } else {
        let mut ret = real();
        if class == Class::Isolate && ret == -1 && errno() == libc::EINVAL && wants_one_thread(nr, &args) {
            // SAFETY: forwarded: the same call, made again.
            ret = unsafe { again_alone(nr, args) }.unwrap_or(ret);
        }
        let raw = if ret == -1 { -(errno() as i64) } else { ret };
        sub.count_direct(nr as u64, raw);
        if class == Class::Isolate && ret != -1 {
            ISOLATED.store(true, Ordering::Relaxed);
        }
        ret
    };
    if decision.sample {
        let mut w = l.window.get();
        w.record(delegate, ticks().wrapping_sub(start));
        l.window.set(w);
    }
    ret
}

/// Whether the kernel refuses call `nr` (EINVAL) in a process with more than one
/// thread: `unshare` of a user namespace (or of the thread group, signal handlers or
/// memory, which it implies), `setns` into a user namespace or a mount namespace (the
/// threads share the file system context). Other kinds of `setns` need no single thread:
/// their EINVAL (a descriptor of another kind than asked, say) is the call's own.
fn wants_one_thread(nr: i64, args: &[u64; 6]) -> bool {
    let alone = (libc::CLONE_NEWUSER | libc::CLONE_THREAD | libc::CLONE_SIGHAND | libc::CLONE_VM) as u64;
    let one_thread_kinds = (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64;
    match nr {
        libc::SYS_unshare => args[0] & alone != 0,
        libc::SYS_setns => {
            // With no kind given, the descriptor's own (`NS_GET_NSTYPE`); a pidfd names
            // its kinds in the flags.
            let kinds = if args[1] as i32 == 0 {
                // SAFETY: NS_GET_NSTYPE takes no pointer; on another kind of descriptor
                // it fails and touches nothing.
                let kind = unsafe {
                    flexsc_shim::sys::syscall6(libc::SYS_ioctl as u64, [args[0], NS_GET_NSTYPE, 0, 0, 0, 0])
                };
                kind.max(0) as u64
            } else {
                args[1]
            };
            kinds & one_thread_kinds != 0
        }
        _ => false,
    }
}

/// `ioctl(fd, NS_GET_NSTYPE)`: the `CLONE_NEW*` kind of a namespace descriptor.
const NS_GET_NSTYPE: u64 = 0xb703;

/// After `nr` failed with EINVAL, and it is one the kernel refuses in a process with
/// more than one thread (`wants_one_thread`): if the runtime's threads are the only
/// others, they stop for good (the process delegates nothing from then on, as after any
/// such call), and the call is made again once they have ended. `None` when the program
/// has threads of its own (natively the call fails too) or no runtime threads run.
///
/// # Safety
/// As the call itself.
#[cold]
unsafe fn again_alone(nr: i64, args: [u64; 6]) -> Option<i64> {
    let rt = runtime().filter(|rt| rt.is_serving())?;
    let err = errno();
    let (ours, theirs) = threads();
    if theirs > 1 || ours == 0 {
        // Looking at the threads (std's readdir) set errno: the call's own goes back.
        set_errno(err);
        return None;
    }
    ISOLATED.store(true, Ordering::Relaxed);
    rt.retire();
    // Idle blocking workers and io_uring's workers end a moment after they are told.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while threads().0 > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // SAFETY: forwarded: the program's own call, made again (glibc's wrapper is the
    // plain system call).
    let raw = unsafe { flexsc_shim::sys::syscall6(nr as u64, args) };
    Some(if (-4095..0).contains(&raw) {
        set_errno(-raw as i32);
        -1
    } else {
        raw
    })
}

/// The process's threads: (the runtime's and io_uring's, the program's). The runtime's
/// are named `flexsc-svc-N`, `flexsc-relief` and `flexsc-worker`; io_uring's workers
/// `iou-*`. An M-on-N scheduler's kernel threads (`flexsc-user-N`) run the program's user
/// threads and stay: they count as the program's (so under M-on-N, a program that
/// created threads gets EINVAL here, as a program with live threads does natively).
fn threads() -> (usize, usize) {
    let (mut ours, mut theirs) = (0, 0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, usize::MAX);
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let runtime = ["flexsc-svc-", "flexsc-relief", "flexsc-worker", "iou-"];
        if runtime.iter().any(|name| comm.starts_with(name)) {
            ours += 1;
        } else if !comm.is_empty() {
            theirs += 1;
        }
    }
    (ours, theirs)
}

/// Whether service threads run (starting them on first need).
fn serving() -> bool {
    let Some(rt) = runtime() else { return false };
    if rt.is_serving() {
        return true;
    }
    if let flexsc_kernel_side::Mode::Direct { .. } = rt.mode() {
        return false;
    }
    match rt.start() {
        Ok(()) => true,
        Err(e) => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                // A lazy start happens mid-run: fd 2 may be a data file by now.
                flexsc_kernel_side::diag::note(format_args!(
                    "flexsc: cannot start service threads ({e}); running system calls directly"
                ));
            }
            false
        }
    }
}

/// The program is about to create a thread (`pthread_create`): the service threads start
/// now if they would ever start (under `adaptive` they would otherwise start at the first
/// shared phase, while the program's threads run). Starting opens descriptors: each
/// service thread's io_uring and `/proc/self/task/TID/stat` (`flexsc_shim::sys::ThreadStat`).
/// Each takes the lowest free number for a moment, as any open does, and the program's
/// own `open` expects that number (a daemon's `close(0); open("/dev/null")`). At its first
/// `pthread_create` a program still has one thread, and this one is in here: nothing can
/// run beside those opens. C11's `thrd_create` comes here too (`mn::api::thrd_create`);
/// threads made by a raw `clone` leave the start to the first shared phase.
pub fn before_thread_create() {
    if !ENABLED.load(Ordering::Acquire) || policy() == Policy::Never {
        return;
    }
    // Inside a library's constructor (dlopen holds the loader lock), the service threads
    // could not run until it returns (a thread std starts takes that lock first), so a
    // call posted meanwhile would wait for them: they start at the first shared phase
    // instead (`crate::loader`).
    if crate::loader::held_here() {
        return;
    }
    if runtime().is_none_or(|rt| rt.is_serving()) {
        return;
    }
    // Marked busy meanwhile: the start's own `pthread_create`s come back here.
    quietly(|| {
        let _ = serving();
    });
}

/// Whether the calling thread is inside the preload (`quietly`, or an interposed call).
pub fn is_busy() -> bool {
    LOCAL
        .try_with(|l| {
            let here = 0usize;
            let was = l.busy.get();
            was != 0 && !crate::inside::is_stale(was, &here as *const usize as usize)
        })
        .unwrap_or(true)
}

/// Runs `f` with this thread marked busy, so system calls made inside (writing the
/// statistics, say) pass straight through and are not counted.
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let was = LOCAL.try_with(|l| l.busy.replace(QUIET)).unwrap_or(QUIET);
    let r = f();
    let _ = LOCAL.try_with(|l| l.busy.set(was));
    r
}
