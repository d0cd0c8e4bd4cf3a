//! The libc functions M-on-N interposes. Each one is glibc's own unless M-on-N is active
//! (or, for the checks that decide the fallback, pending); see `mn` for the states.

// The functions are libc's, documented by its manual pages and with its contracts.
#![allow(missing_docs, clippy::missing_safety_doc)]

use std::ffi::c_void;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use libc::{c_int, c_uint, clockid_t, pthread_attr_t, pthread_t, timespec};

use super::sync::{self, deadline_from};
use super::thread::{self, StartRoutine};
use super::{active, enabled, fall_back, note_once};

type Mutex = libc::pthread_mutex_t;
type Cond = libc::pthread_cond_t;
type Sem = libc::sem_t;
type RwLock = libc::pthread_rwlock_t;
/// C11's `thrd_start_t`.
type ThrdStart = unsafe extern "C-unwind" fn(*mut c_void) -> c_int;

/// The real functions, resolved in the constructor (`mn::init`).
macro_rules! reals {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        /// glibc's functions behind ours.
        #[allow(non_upper_case_globals)]
        pub(crate) mod real {
            use super::*;
            mod syms {
                $( pub(super) static $name: crate::real::Real = crate::real::Real::new(
                    // SAFETY: a literal with exactly one NUL, at the end.
                    unsafe { std::ffi::CStr::from_bytes_with_nul_unchecked(concat!(stringify!($name), "\0").as_bytes()) }
                ); )*
            }
            $(
                pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
                    // SAFETY: the symbol's C signature is the one declared here; glibc's
                    // cancellation points may unwind (a native thread acting on a cancel).
                    let f: unsafe extern "C-unwind" fn($($ty),*) -> $ret = unsafe { syms::$name.get() };
                    // SAFETY: the caller's arguments, for glibc's function.
                    unsafe { f($($arg),*) }
                }
            )*
            pub(crate) fn resolve() {
                $( syms::$name.resolve(); )*
            }
        }
    };
}

reals! {
    fn pthread_create(t: *mut pthread_t, attr: *const pthread_attr_t, start: StartRoutine, arg: *mut c_void) -> c_int;
    fn pthread_join(t: pthread_t, ret: *mut *mut c_void) -> c_int;
    fn thrd_create(t: *mut pthread_t, start: Option<ThrdStart>, arg: *mut c_void) -> c_int;
    fn pthread_tryjoin_np(t: pthread_t, ret: *mut *mut c_void) -> c_int;
    fn pthread_clockjoin_np(t: pthread_t, ret: *mut *mut c_void, clock: clockid_t, abs: *const timespec) -> c_int;
    fn pthread_detach(t: pthread_t) -> c_int;
    fn pthread_kill(t: pthread_t, sig: c_int) -> c_int;
    fn pthread_sigqueue(t: pthread_t, sig: c_int, value: libc::sigval) -> c_int;
    fn pthread_setaffinity_np(t: pthread_t, size: usize, set: *const libc::cpu_set_t) -> c_int;
    fn pthread_getaffinity_np(t: pthread_t, size: usize, set: *mut libc::cpu_set_t) -> c_int;
    fn sched_getaffinity(pid: libc::pid_t, size: usize, set: *mut libc::cpu_set_t) -> c_int;
    fn pthread_getattr_np(t: pthread_t, attr: *mut pthread_attr_t) -> c_int;
    fn pthread_setname_np(t: pthread_t, name: *const libc::c_char) -> c_int;
    fn pthread_getname_np(t: pthread_t, name: *mut libc::c_char, len: usize) -> c_int;
    fn pthread_cancel(t: pthread_t) -> c_int;
    fn pthread_testcancel() -> ();
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
    fn pthread_setcanceltype(ty: c_int, old: *mut c_int) -> c_int;
    fn pthread_mutex_init(m: *mut Mutex, attr: *const libc::pthread_mutexattr_t) -> c_int;
    fn pthread_mutex_lock(m: *mut Mutex) -> c_int;
    fn pthread_mutex_trylock(m: *mut Mutex) -> c_int;
    fn pthread_mutex_clocklock(m: *mut Mutex, clock: clockid_t, abs: *const timespec) -> c_int;
    fn pthread_mutex_unlock(m: *mut Mutex) -> c_int;
    fn pthread_mutex_destroy(m: *mut Mutex) -> c_int;
    fn pthread_cond_init(c: *mut Cond, attr: *const libc::pthread_condattr_t) -> c_int;
    fn pthread_cond_wait(c: *mut Cond, m: *mut Mutex) -> c_int;
    fn pthread_cond_timedwait(c: *mut Cond, m: *mut Mutex, abs: *const timespec) -> c_int;
    fn pthread_cond_clockwait(c: *mut Cond, m: *mut Mutex, clock: clockid_t, abs: *const timespec) -> c_int;
    fn pthread_cond_signal(c: *mut Cond) -> c_int;
    fn pthread_cond_broadcast(c: *mut Cond) -> c_int;
    fn pthread_cond_destroy(c: *mut Cond) -> c_int;
    fn pthread_once(once: *mut libc::pthread_once_t, init: unsafe extern "C-unwind" fn()) -> c_int;
    fn sem_init(s: *mut Sem, pshared: c_int, value: c_uint) -> c_int;
    fn sem_wait(s: *mut Sem) -> c_int;
    fn sem_timedwait(s: *mut Sem, abs: *const timespec) -> c_int;
    fn sem_clockwait(s: *mut Sem, clock: clockid_t, abs: *const timespec) -> c_int;
    fn sem_trywait(s: *mut Sem) -> c_int;
    fn sem_post(s: *mut Sem) -> c_int;
    fn pthread_spin_lock(l: *mut libc::pthread_spinlock_t) -> c_int;
    fn pthread_spin_trylock(l: *mut libc::pthread_spinlock_t) -> c_int;
    fn pthread_rwlock_rdlock(l: *mut RwLock) -> c_int;
    fn pthread_rwlock_wrlock(l: *mut RwLock) -> c_int;
    fn pthread_rwlock_tryrdlock(l: *mut RwLock) -> c_int;
    fn pthread_rwlock_trywrlock(l: *mut RwLock) -> c_int;
    fn pthread_rwlock_timedrdlock(l: *mut RwLock, abs: *const timespec) -> c_int;
    fn pthread_rwlock_timedwrlock(l: *mut RwLock, abs: *const timespec) -> c_int;
    fn pthread_barrier_init(b: *mut libc::pthread_barrier_t, attr: *const libc::pthread_barrierattr_t, count: c_uint) -> c_int;
    fn pthread_barrier_wait(b: *mut libc::pthread_barrier_t) -> c_int;
    fn sleep(secs: c_uint) -> c_uint;
    fn usleep(us: libc::useconds_t) -> c_int;
    fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int;
    fn clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int;
    fn sched_yield() -> c_int;
    fn gettid() -> libc::pid_t;
    fn sigaltstack(ss: *const libc::stack_t, old: *mut libc::stack_t) -> c_int;
    fn wait(status: *mut c_int) -> libc::pid_t;
    fn sigwait(set: *const libc::sigset_t, sig: *mut c_int) -> c_int;
    fn pause() -> c_int;
    fn sigsuspend(mask: *const libc::sigset_t) -> c_int;
    fn pthread_sigmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int;
    fn sigprocmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int;
    fn sigwaitinfo(set: *const libc::sigset_t, info: *mut libc::siginfo_t) -> c_int;
    fn sigtimedwait(set: *const libc::sigset_t, info: *mut libc::siginfo_t, timeout: *const timespec) -> c_int;
    fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t;
    fn wait4(pid: libc::pid_t, status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t;
    fn waitid(idtype: libc::idtype_t, id: libc::id_t, info: *mut libc::siginfo_t, options: c_int) -> c_int;
    fn mtx_lock(m: *mut Mutex) -> c_int;
    fn mtx_trylock(m: *mut Mutex) -> c_int;
    fn mtx_timedlock(m: *mut Mutex, abs: *const timespec) -> c_int;
    fn mtx_unlock(m: *mut Mutex) -> c_int;
    fn cnd_wait(c: *mut Cond, m: *mut Mutex) -> c_int;
    fn cnd_timedwait(c: *mut Cond, m: *mut Mutex, abs: *const timespec) -> c_int;
    fn cnd_signal(c: *mut Cond) -> c_int;
    fn cnd_broadcast(c: *mut Cond) -> c_int;
    fn call_once(once: *mut libc::pthread_once_t, init: unsafe extern "C-unwind" fn()) -> ();
    fn thrd_sleep(d: *const timespec, rem: *mut timespec) -> c_int;
    fn thrd_yield() -> ();
    fn setuid(id: libc::uid_t) -> c_int;
    fn setgid(id: libc::gid_t) -> c_int;
    fn seteuid(id: libc::uid_t) -> c_int;
    fn setegid(id: libc::gid_t) -> c_int;
    fn setreuid(r: libc::uid_t, e: libc::uid_t) -> c_int;
    fn setregid(r: libc::gid_t, e: libc::gid_t) -> c_int;
    fn setresuid(r: libc::uid_t, e: libc::uid_t, s: libc::uid_t) -> c_int;
    fn setresgid(r: libc::gid_t, e: libc::gid_t, s: libc::gid_t) -> c_int;
    fn setgroups(n: usize, list: *const libc::gid_t) -> c_int;
}

/// Resolves every real function (constructor; dlsym may allocate).
pub(crate) fn resolve_reals() {
    real::resolve();
}

/// Whether the caller is one of the runtime's own threads or inside the preload (whose
/// threads must be kernel threads).
fn internal_caller() -> bool {
    crate::route::is_busy() || flexsc_kernel_side::is_runtime_thread()
}

fn user() -> bool {
    active() && flexsc_scheduler::in_user_thread()
}

// ---- threads ----

#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    t: *mut pthread_t,
    attr: *const pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
) -> c_int {
    // A thread made by a library's constructor, inside `dlopen` (`crate::loader`), is
    // glibc's: the first user thread starts the scheduler, whose kernel threads cannot
    // run while the constructor holds the loader lock, so that start hung; and such
    // threads are a library's own pool (OpenBLAS's, at `import numpy`), whose workers
    // spin while they wait and would keep every other user thread of their kernel thread
    // from running. M-on-N starts (or goes on) at the next `pthread_create`.
    let in_loader = enabled() && crate::loader::held_here();
    if in_loader || !enabled() || internal_caller() || !super::activate() {
        if !internal_caller() {
            crate::route::before_thread_create();
        }
        // SAFETY: the caller's arguments, to glibc.
        return unsafe { real::pthread_create(t, attr, start, arg) };
    }
    // SAFETY: the caller's attribute object and routine.
    match unsafe { thread::create(attr, start, arg) } {
        Ok(id) => {
            // SAFETY: the caller's out-pointer.
            unsafe { *t = id };
            0
        }
        Err(e) => e,
    }
}

/// C11's `thrd_create`. glibc makes the thread with its own internal `pthread_create`, not
/// through ours, so this is where the service threads start before a program's first
/// C11 thread, as they do before its first `pthread_create`
/// (`route::before_thread_create`: their opens must not run beside the program's). The
/// thread itself is glibc's, a kernel thread, under M-on-N too.
#[no_mangle]
pub unsafe extern "C" fn thrd_create(t: *mut pthread_t, start: Option<ThrdStart>, arg: *mut c_void) -> c_int {
    if !internal_caller() {
        crate::route::before_thread_create();
    }
    // SAFETY: the caller's arguments, to glibc.
    unsafe { real::thrd_create(t, start, arg) }
}

/// A user thread joining a kernel thread (the main thread, one made before M-on-N
/// started, or by C11 `thrd_create`) must not block its kernel thread: the target may be
/// waiting for a user thread of it. It polls glibc's tryjoin, sleeping in between (1 ms,
/// doubling to 50 ms), until the deadline.
fn join_native_polling(t: pthread_t, ret: *mut *mut c_void, deadline: Option<std::time::Instant>) -> c_int {
    let mut nap = Duration::from_millis(1);
    loop {
        // SAFETY: glibc's tryjoin on the caller's thread id; it never blocks.
        let r = unsafe { real::pthread_tryjoin_np(t, ret) };
        if r != libc::EBUSY {
            return r;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return libc::ETIMEDOUT;
        }
        super::cancel::test();
        if super::lot::sleep_until_interruptible(super::lot::deadline_after(nap)) {
            super::cancel::test();
            super::signal::deliver_due();
        }
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_join(t: pthread_t, ret: *mut *mut c_void) -> c_int {
    match active().then(|| thread::lookup(t)).flatten() {
        Some(r) => thread::join(&r, ret, true, None),
        None if user() => join_native_polling(t, ret, None),
        // SAFETY: forwarded to glibc.
        None => unsafe { real::pthread_join(t, ret) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_tryjoin_np(t: pthread_t, ret: *mut *mut c_void) -> c_int {
    match active().then(|| thread::lookup(t)).flatten() {
        Some(r) => thread::join(&r, ret, false, None),
        // SAFETY: forwarded to glibc.
        None => unsafe { real::pthread_tryjoin_np(t, ret) },
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_timedjoin_np(
    t: pthread_t,
    ret: *mut *mut c_void,
    abs: *const timespec,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { pthread_clockjoin_np(t, ret, libc::CLOCK_REALTIME, abs) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_clockjoin_np(
    t: pthread_t,
    ret: *mut *mut c_void,
    clock: clockid_t,
    abs: *const timespec,
) -> c_int {
    match active().then(|| thread::lookup(t)).flatten() {
        Some(r) => {
            let deadline = if abs.is_null() {
                None
            } else {
                match deadline_from(clock, abs) {
                    Ok(d) => Some(d),
                    Err(e) => return e,
                }
            };
            thread::join(&r, ret, true, deadline)
        }
        None if user() && !abs.is_null() => match deadline_from(clock, abs) {
            Ok(d) => join_native_polling(t, ret, Some(d)),
            Err(e) => e,
        },
        // SAFETY: forwarded to glibc.
        None => unsafe { real::pthread_clockjoin_np(t, ret, clock, abs) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_detach(t: pthread_t) -> c_int {
    match active().then(|| thread::lookup(t)).flatten() {
        Some(r) => thread::release(&r, true),
        // SAFETY: forwarded to glibc.
        None => unsafe { real::pthread_detach(t) },
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_exit(value: *mut c_void) -> ! {
    crate::unwind_link::before_unwinding();
    if user() {
        thread::exit(value);
    }
    thread::glibc_pthread_exit(value)
}

static AFFINITY_NOTED: AtomicBool = AtomicBool::new(false);

/// A signal for a user thread is delivered when that user thread runs (see `signal`).
#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_kill(t: pthread_t, sig: c_int) -> c_int {
    if let Some(r) = active().then(|| thread::lookup(t)).flatten() {
        if sig == 0 {
            return if thread::has_ended(&r) { libc::ESRCH } else { 0 };
        }
        if !(1..=64).contains(&sig) {
            return libc::EINVAL;
        }
        return super::signal::send(&r, sig, None);
    }
    if sig != 0 && enabled() && !internal_caller() {
        fall_back("a signal aimed at one thread (pthread_kill)");
    }
    // SAFETY: forwarded to glibc.
    unsafe { real::pthread_kill(t, sig) }
}

/// As [`pthread_kill`], with the value a `SA_SIGINFO` handler (or `sigwaitinfo`) finds
/// in `si_value` (glibc's would name the user thread by a thread id the kernel does not
/// know).
#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_sigqueue(t: pthread_t, sig: c_int, value: libc::sigval) -> c_int {
    if let Some(r) = active().then(|| thread::lookup(t)).flatten() {
        if sig == 0 {
            return if thread::has_ended(&r) { libc::ESRCH } else { 0 };
        }
        if !(1..=64).contains(&sig) {
            return libc::EINVAL;
        }
        return super::signal::send(&r, sig, Some(value.sival_ptr as usize));
    }
    // SAFETY: forwarded to glibc.
    unsafe { real::pthread_sigqueue(t, sig, value) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_setaffinity_np(
    t: pthread_t,
    size: usize,
    set: *const libc::cpu_set_t,
) -> c_int {
    if active() && thread::lookup(t).is_some() {
        note_once(
            &AFFINITY_NOTED,
            "pthread_setaffinity_np on a user thread is ignored (user threads run on the scheduler's cores)",
        );
        return 0;
    }
    if enabled() && !internal_caller() {
        fall_back("pthread_setaffinity_np");
    }
    // SAFETY: forwarded to glibc.
    unsafe { real::pthread_setaffinity_np(t, size, set) }
}

/// A user thread's own affinity, as natively its creator's: the program's (see
/// `super::affinity`), not the one core its kernel thread is pinned to. Glibc's function
/// makes the call (its checks, errno and zeroing stand); the set is then the program's.
#[no_mangle]
pub unsafe extern "C" fn sched_getaffinity(
    pid: libc::pid_t,
    size: usize,
    set: *mut libc::cpu_set_t,
) -> c_int {
    let own = super::routes_user_thread() && (pid == 0 || pid == super::tcb::current_tid());
    // The user thread's id is no kernel thread's: asked by it, the kernel would say ESRCH.
    let pid = if own { 0 } else { pid };
    // SAFETY: forwarded to glibc.
    let r = unsafe { real::sched_getaffinity(pid, size, set) };
    if r == 0 && own {
        // SAFETY: the caller's set of `size` bytes, which glibc just filled.
        unsafe { super::affinity::give_program(set as *mut u8, size) };
    }
    r
}

/// A user thread's affinity is the program's, as for [`sched_getaffinity`] (its kernel
/// thread's, before the scheduler started).
#[no_mangle]
pub unsafe extern "C" fn pthread_getaffinity_np(
    t: pthread_t,
    size: usize,
    set: *mut libc::cpu_set_t,
) -> c_int {
    let Some(r) = active().then(|| thread::lookup(t)).flatten() else {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_getaffinity_np(t, size, set) };
    };
    let tid = r.kernel_tid.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: the caller's buffer of `size` bytes; sched_getaffinity writes at most that.
    let n = unsafe { libc::syscall(libc::SYS_sched_getaffinity, tid, size, set) };
    if n < 0 {
        // SAFETY: errno is this thread's.
        return unsafe { *libc::__errno_location() };
    }
    // As glibc: clear the rest of the caller's set.
    // SAFETY: within the caller's buffer.
    unsafe { std::ptr::write_bytes((set as *mut u8).add(n as usize), 0, size - n as usize) };
    // SAFETY: as above.
    unsafe { super::affinity::give_program(set as *mut u8, size) };
    0
}

/// glibc's `pthread_getattr_np` asks the kernel for the thread's affinity by its tid,
/// which for a user thread fails; so the attributes of a user thread are made here, from
/// the stack its TCB describes (see `tcb::Glibc::thread_started`).
#[no_mangle]
pub unsafe extern "C" fn pthread_getattr_np(t: pthread_t, attr: *mut pthread_attr_t) -> c_int {
    let Some(r) = active().then(|| thread::lookup(t)).flatten() else {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_getattr_np(t, attr) };
    };
    // SAFETY: the caller's attribute object, initialised here as glibc would.
    unsafe {
        let e = libc::pthread_attr_init(attr);
        if e != 0 {
            return e;
        }
        if let Some((low, size, guard)) = super::glibc().stack_of(r.tcb) {
            libc::pthread_attr_setstack(attr, low as *mut c_void, size);
            libc::pthread_attr_setguardsize(attr, guard);
        }
        if thread::is_detached(&r) {
            libc::pthread_attr_setdetachstate(attr, libc::PTHREAD_CREATE_DETACHED);
        }
    }
    0
}

/// A user thread's name is kept in its record (glibc's would rename the kernel thread, or
/// look for the thread in /proc by a tid that is not one).
#[no_mangle]
pub unsafe extern "C" fn pthread_setname_np(t: pthread_t, name: *const libc::c_char) -> c_int {
    let Some(r) = active().then(|| thread::lookup(t)).flatten() else {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_setname_np(t, name) };
    };
    // SAFETY: the caller's C string.
    let bytes = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
    if bytes.len() > 15 {
        return libc::ERANGE;
    }
    r.name.with(|n| {
        *n = [0; 16];
        n[..bytes.len()].copy_from_slice(bytes);
    });
    0
}

#[no_mangle]
pub unsafe extern "C" fn pthread_getname_np(t: pthread_t, name: *mut libc::c_char, len: usize) -> c_int {
    let Some(r) = active().then(|| thread::lookup(t)).flatten() else {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_getname_np(t, name, len) };
    };
    let stored = r.name.with(|n| *n);
    let used = stored.iter().position(|&b| b == 0).unwrap_or(16);
    if len <= used {
        return libc::ERANGE;
    }
    // SAFETY: the caller's buffer of `len` bytes; `used + 1 <= len`.
    unsafe {
        std::ptr::copy_nonoverlapping(stored.as_ptr(), name as *mut u8, used);
        *name.add(used) = 0;
    }
    0
}

/// At a cancellation point of any thread that may be a user thread (other threads never
/// have a request of ours: see `cancel`).
fn test_cancel() {
    if user() {
        super::cancel::test();
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cancel(t: pthread_t) -> c_int {
    crate::unwind_link::before_unwinding();
    if let Some(r) = active().then(|| thread::lookup(t)).flatten() {
        return super::cancel::request(&r);
    }
    // SAFETY: forwarded to glibc.
    unsafe { real::pthread_cancel(t) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_testcancel() {
    if user() {
        super::cancel::test();
        return;
    }
    // SAFETY: forwarded to glibc.
    unsafe { real::pthread_testcancel() }
}

/// glibc's, which keeps our request bit; then, with the asynchronous type, a pending
/// request is acted on at once (as glibc does).
#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int {
    // SAFETY: forwarded to glibc.
    let r = unsafe { real::pthread_setcancelstate(state, old) };
    if r == 0 && user() {
        super::cancel::after_state_change();
    }
    r
}

/// As [`pthread_setcancelstate`]. The asynchronous type is otherwise treated as deferred.
#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_setcanceltype(ty: c_int, old: *mut c_int) -> c_int {
    // SAFETY: forwarded to glibc.
    let r = unsafe { real::pthread_setcanceltype(ty, old) };
    if r == 0 && user() {
        super::cancel::after_state_change();
    }
    r
}

/// An interposed function that glibc's own runs while M-on-N is off (`!active()`) and
/// `sync`'s implementation runs while it is on, on the caller's object.
macro_rules! glibc_or_sync {
    (fn $name:ident($arg:ident: $ty:ty) => $imp:ident($($args:expr),*)) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name($arg: $ty) -> c_int {
            if !active() {
                // SAFETY: forwarded to glibc.
                return unsafe { real::$name($arg) };
            }
            // SAFETY: the caller's object, as glibc's function would take it.
            unsafe { sync::$imp($($args),*) }
        }
    };
}

// ---- mutexes ----

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_init(m: *mut Mutex, attr: *const libc::pthread_mutexattr_t) -> c_int {
    // SAFETY: forwarded to glibc, which encodes the attributes in the mutex's kind.
    let r = unsafe { real::pthread_mutex_init(m, attr) };
    if r == 0 && enabled() && !active() && !internal_caller() && sync::mutex_is_special(m) {
        fall_back("a process-shared, robust or priority mutex");
    }
    r
}

glibc_or_sync!(fn pthread_mutex_lock(m: *mut Mutex) => mutex_lock(m, None));

glibc_or_sync!(fn pthread_mutex_trylock(m: *mut Mutex) => mutex_trylock(m));

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_timedlock(m: *mut Mutex, abs: *const timespec) -> c_int {
    // SAFETY: forwarded.
    unsafe { pthread_mutex_clocklock(m, libc::CLOCK_REALTIME, abs) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_clocklock(
    m: *mut Mutex,
    clock: clockid_t,
    abs: *const timespec,
) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_mutex_clocklock(m, clock, abs) };
    }
    // POSIX: no deadline check when the lock is free.
    // SAFETY: the caller's mutex.
    if unsafe { sync::mutex_trylock(m) } == 0 {
        return 0;
    }
    match deadline_from(clock, abs) {
        // SAFETY: the caller's mutex.
        Ok(d) => unsafe { sync::mutex_lock(m, Some(d)) },
        Err(e) => e,
    }
}

glibc_or_sync!(fn pthread_mutex_unlock(m: *mut Mutex) => mutex_unlock(m));

glibc_or_sync!(fn pthread_mutex_destroy(m: *mut Mutex) => mutex_destroy(m));

// ---- condition variables ----

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_init(c: *mut Cond, attr: *const libc::pthread_condattr_t) -> c_int {
    // SAFETY: forwarded to glibc, which records the clock and sharing in the condvar.
    let r = unsafe { real::pthread_cond_init(c, attr) };
    let mut shared = 0;
    // SAFETY: the caller's attribute object, only read.
    if r == 0
        && !attr.is_null()
        && unsafe { libc::pthread_condattr_getpshared(attr, &mut shared) } == 0
        && shared == libc::PTHREAD_PROCESS_SHARED
        && enabled()
        && !active()
        && !internal_caller()
    {
        fall_back("a process-shared condition variable");
    }
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_wait(c: *mut Cond, m: *mut Mutex) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_cond_wait(c, m) };
    }
    test_cancel();
    // SAFETY: the caller's objects.
    let r = unsafe { sync::cond_wait(c, m, None) };
    after_cond_wait(c);
    r
}

/// A cancellation that ended (or came during) a condvar wait is acted on with the mutex
/// taken back, so the cleanup handlers run with it held (POSIX). The wake-up it may have
/// taken from a `pthread_cond_signal` is passed on, so that another waiter gets it (POSIX:
/// a cancelled waiter consumes no signal; the others may wake spuriously). A signal for
/// the thread that woke it is delivered (the wait returns as a spurious wake-up).
fn after_cond_wait(c: *mut Cond) {
    if user() {
        if super::cancel::is_due() {
            // SAFETY: the caller's condvar, live while its waiter returns.
            unsafe { sync::cond_signal(c, false) };
            super::cancel::act();
        }
        super::signal::deliver_due();
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_timedwait(
    c: *mut Cond,
    m: *mut Mutex,
    abs: *const timespec,
) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_cond_timedwait(c, m, abs) };
    }
    // SAFETY: forwarded.
    unsafe { pthread_cond_clockwait(c, m, sync::cond_clock(c), abs) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_clockwait(
    c: *mut Cond,
    m: *mut Mutex,
    clock: clockid_t,
    abs: *const timespec,
) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_cond_clockwait(c, m, clock, abs) };
    }
    test_cancel();
    match deadline_from(clock, abs) {
        Ok(d) => {
            // SAFETY: the caller's objects.
            let r = unsafe { sync::cond_wait(c, m, Some(d)) };
            after_cond_wait(c);
            r
        }
        Err(e) => e,
    }
}

glibc_or_sync!(fn pthread_cond_signal(c: *mut Cond) => cond_signal(c, false));

glibc_or_sync!(fn pthread_cond_broadcast(c: *mut Cond) => cond_signal(c, true));

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_destroy(c: *mut Cond) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_cond_destroy(c) };
    }
    0
}

// ---- once ----

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_once(
    once: *mut libc::pthread_once_t,
    init: unsafe extern "C-unwind" fn(),
) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_once(once, init) };
    }
    // SAFETY: the caller's once and routine.
    unsafe { sync::once(once, init) }
}

// ---- semaphores ----

#[no_mangle]
pub unsafe extern "C" fn sem_init(s: *mut Sem, pshared: c_int, value: c_uint) -> c_int {
    if pshared != 0 && enabled() && !active() && !internal_caller() {
        fall_back("a process-shared semaphore");
    }
    // SAFETY: forwarded to glibc.
    unsafe { real::sem_init(s, pshared, value) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sem_wait(s: *mut Sem) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sem_wait(s) };
    }
    test_cancel();
    // SAFETY: the caller's semaphore.
    unsafe { sync::sem_wait(s, None) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sem_timedwait(s: *mut Sem, abs: *const timespec) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sem_timedwait(s, abs) };
    }
    // SAFETY: forwarded.
    unsafe { sem_clockwait(s, libc::CLOCK_REALTIME, abs) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sem_clockwait(s: *mut Sem, clock: clockid_t, abs: *const timespec) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sem_clockwait(s, clock, abs) };
    }
    test_cancel();
    // SAFETY: the caller's semaphore.
    if unsafe { sync::sem_trywait(s) } == 0 {
        return 0;
    }
    match deadline_from(clock, abs) {
        // SAFETY: the caller's semaphore.
        Ok(d) => unsafe { sync::sem_wait(s, Some(d)) },
        Err(e) => {
            // SAFETY: errno is this thread's.
            unsafe { *libc::__errno_location() = e };
            -1
        }
    }
}

glibc_or_sync!(fn sem_trywait(s: *mut Sem) => sem_trywait(s));

glibc_or_sync!(fn sem_post(s: *mut Sem) => sem_post(s));

// ---- spin locks, rwlocks, barriers ----

#[no_mangle]
pub unsafe extern "C" fn pthread_spin_lock(l: *mut libc::pthread_spinlock_t) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_spin_lock(l) };
    }
    // SAFETY: the caller's lock, through glibc's trylock.
    sync::poll(libc::EBUSY, None, || unsafe { real::pthread_spin_trylock(l) })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_rdlock(l: *mut RwLock) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_rwlock_rdlock(l) };
    }
    // SAFETY: the caller's lock, through glibc's trylock.
    sync::poll(libc::EBUSY, None, || unsafe { real::pthread_rwlock_tryrdlock(l) })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_wrlock(l: *mut RwLock) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_rwlock_wrlock(l) };
    }
    // SAFETY: the caller's lock, through glibc's trylock.
    sync::poll(libc::EBUSY, None, || unsafe { real::pthread_rwlock_trywrlock(l) })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_timedrdlock(l: *mut RwLock, abs: *const timespec) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_rwlock_timedrdlock(l, abs) };
    }
    let d = deadline_from(libc::CLOCK_REALTIME, abs).ok();
    // SAFETY: the caller's lock, through glibc's trylock.
    sync::poll(libc::EBUSY, d, || unsafe { real::pthread_rwlock_tryrdlock(l) })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_timedwrlock(l: *mut RwLock, abs: *const timespec) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_rwlock_timedwrlock(l, abs) };
    }
    let d = deadline_from(libc::CLOCK_REALTIME, abs).ok();
    // SAFETY: the caller's lock, through glibc's trylock.
    sync::poll(libc::EBUSY, d, || unsafe { real::pthread_rwlock_trywrlock(l) })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_barrier_init(
    b: *mut libc::pthread_barrier_t,
    attr: *const libc::pthread_barrierattr_t,
    count: c_uint,
) -> c_int {
    // SAFETY: forwarded to glibc.
    let r = unsafe { real::pthread_barrier_init(b, attr, count) };
    if r == 0 && sync::barrier_is_shared(b) && enabled() && !active() && !internal_caller() {
        fall_back("a process-shared barrier");
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn pthread_barrier_wait(b: *mut libc::pthread_barrier_t) -> c_int {
    if !active() || sync::barrier_is_shared(b) {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_barrier_wait(b) };
    }
    // SAFETY: the caller's barrier.
    unsafe { sync::barrier_wait(b) }
}

// ---- sleeping and yielding ----

/// A user thread's sleep until `deadline`: a cancellation point, which a signal handler
/// interrupts (as it does every sleep, whatever SA_RESTART says): None when it slept to
/// the end, or the time left when a handler ran.
fn user_sleep_until(deadline: std::time::Instant) -> Option<Duration> {
    super::cancel::test();
    loop {
        if !super::lot::sleep_until_interruptible(deadline) {
            return None;
        }
        super::cancel::test();
        if super::signal::deliver_due() != super::signal::Delivered::Nothing {
            return Some(deadline.saturating_duration_since(std::time::Instant::now()));
        }
    }
}

fn user_sleep(d: Duration) -> Option<Duration> {
    user_sleep_until(super::lot::deadline_after(d))
}

/// Writes the time left of an interrupted sleep (zero if it was not) to `rem`, if given.
fn write_rem(rem: *mut timespec, left: Option<Duration>) {
    if rem.is_null() {
        return;
    }
    let left = left.unwrap_or_default();
    // SAFETY: the caller's out-pointer.
    unsafe {
        *rem = timespec {
            tv_sec: left.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        }
    };
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sleep(secs: c_uint) -> c_uint {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sleep(secs) };
    }
    match user_sleep(Duration::from_secs(secs.into())) {
        None => 0,
        // Seconds left, rounded to the nearest.
        Some(left) => {
            (left.as_secs() + u64::from(left.subsec_nanos() >= 500_000_000)).min(secs.into()) as c_uint
        }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn usleep(us: libc::useconds_t) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::usleep(us) };
    }
    match user_sleep(Duration::from_micros(us.into())) {
        None => 0,
        Some(_) => set_errno(libc::EINTR),
    }
}

fn relative(req: *const timespec) -> Result<Duration, c_int> {
    if req.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller's timespec.
    let ts = unsafe { *req };
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(libc::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[no_mangle]
pub unsafe extern "C-unwind" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::nanosleep(req, rem) };
    }
    match relative(req) {
        Ok(d) => {
            let left = user_sleep(d);
            write_rem(rem, left);
            match left {
                None => 0,
                Some(_) => set_errno(libc::EINTR),
            }
        }
        Err(e) => set_errno(e),
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let wall = matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI
    );
    if !user() || !wall {
        // SAFETY: forwarded to glibc.
        return unsafe { real::clock_nanosleep(clock, flags, req, rem) };
    }
    if flags & libc::TIMER_ABSTIME != 0 {
        return match deadline_from(clock, req) {
            Ok(d) => match user_sleep_until(d) {
                None => 0,
                Some(_) => libc::EINTR,
            },
            Err(e) => e,
        };
    }
    match relative(req) {
        Ok(d) => {
            let left = user_sleep(d);
            write_rem(rem, left);
            match left {
                None => 0,
                Some(_) => libc::EINTR,
            }
        }
        Err(e) => e,
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sched_yield() -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sched_yield() };
    }
    flexsc_scheduler::yield_now();
    super::signal::deliver_due();
    0
}

#[no_mangle]
pub unsafe extern "C" fn gettid() -> libc::pid_t {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::gettid() };
    }
    super::tcb::current_tid()
}

/// A user thread's alternate signal stack is its own setting, never installed: a signal
/// runs on the kernel thread's (the scheduler's, which reports a user thread's stack
/// overflow). Rust's std sets one up and tears it down in every thread it starts; applied
/// to the kernel thread, that would take the scheduler's away.
#[no_mangle]
pub unsafe extern "C" fn sigaltstack(ss: *const libc::stack_t, old: *mut libc::stack_t) -> c_int {
    let record = if user() { thread::current() } else { None };
    let Some(record) = record else {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sigaltstack(ss, old) };
    };
    let new = if ss.is_null() {
        None
    } else {
        // SAFETY: the caller's stack_t.
        let ss = unsafe { *ss };
        if ss.ss_flags & !libc::SS_DISABLE != 0 {
            return set_errno(libc::EINVAL);
        }
        if ss.ss_flags & libc::SS_DISABLE == 0 && ss.ss_size < libc::MINSIGSTKSZ {
            return set_errno(libc::ENOMEM);
        }
        Some(thread::AltStack {
            sp: ss.ss_sp as usize,
            flags: ss.ss_flags,
            size: ss.ss_size,
        })
    };
    let previous = record.alt_stack.with(|a| {
        let previous = *a;
        if let Some(new) = new {
            *a = new;
        }
        previous
    });
    if !old.is_null() {
        // SAFETY: the caller's out-pointer.
        unsafe {
            *old = libc::stack_t {
                ss_sp: previous.sp as *mut c_void,
                ss_flags: previous.flags,
                ss_size: previous.size,
            }
        };
    }
    0
}

fn set_errno(e: c_int) -> c_int {
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = e };
    -1
}

// ---- C11 threads (glibc's mtx_t, cnd_t and once_flag are the pthread objects) ----

/// C11's results: thrd_success, thrd_busy, thrd_error, thrd_nomem, thrd_timedout.
fn thrd_result(r: c_int) -> c_int {
    match r {
        0 => 0,
        libc::EBUSY => 1,
        libc::ENOMEM => 3,
        libc::ETIMEDOUT => 4,
        _ => 2,
    }
}

#[no_mangle]
pub unsafe extern "C" fn mtx_lock(m: *mut Mutex) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::mtx_lock(m) };
    }
    // SAFETY: the caller's mutex.
    thrd_result(unsafe { sync::mutex_lock(m, None) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_trylock(m: *mut Mutex) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::mtx_trylock(m) };
    }
    // SAFETY: the caller's mutex.
    thrd_result(unsafe { sync::mutex_trylock(m) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_timedlock(m: *mut Mutex, abs: *const timespec) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::mtx_timedlock(m, abs) };
    }
    // SAFETY: forwarded.
    thrd_result(unsafe { pthread_mutex_clocklock(m, libc::CLOCK_REALTIME, abs) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_unlock(m: *mut Mutex) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::mtx_unlock(m) };
    }
    // SAFETY: the caller's mutex.
    thrd_result(unsafe { sync::mutex_unlock(m) })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn cnd_wait(c: *mut Cond, m: *mut Mutex) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::cnd_wait(c, m) };
    }
    // SAFETY: the caller's objects.
    let r = thrd_result(unsafe { sync::cond_wait(c, m, None) });
    after_cond_wait(c);
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn cnd_timedwait(c: *mut Cond, m: *mut Mutex, abs: *const timespec) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::cnd_timedwait(c, m, abs) };
    }
    match deadline_from(libc::CLOCK_REALTIME, abs) {
        Ok(d) => {
            // SAFETY: the caller's objects.
            let r = thrd_result(unsafe { sync::cond_wait(c, m, Some(d)) });
            after_cond_wait(c);
            r
        }
        Err(e) => thrd_result(e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn cnd_signal(c: *mut Cond) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::cnd_signal(c) };
    }
    // SAFETY: the caller's condvar.
    thrd_result(unsafe { sync::cond_signal(c, false) })
}

#[no_mangle]
pub unsafe extern "C" fn cnd_broadcast(c: *mut Cond) -> c_int {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::cnd_broadcast(c) };
    }
    // SAFETY: the caller's condvar.
    thrd_result(unsafe { sync::cond_signal(c, true) })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn call_once(
    once: *mut libc::pthread_once_t,
    init: unsafe extern "C-unwind" fn(),
) {
    if !active() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::call_once(once, init) };
    }
    // SAFETY: the caller's flag and routine.
    unsafe { sync::once(once, init) };
}

#[no_mangle]
pub unsafe extern "C-unwind" fn thrd_sleep(d: *const timespec, rem: *mut timespec) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::thrd_sleep(d, rem) };
    }
    match relative(d) {
        Ok(d) => {
            let left = user_sleep(d);
            write_rem(rem, left);
            // C11: -1 when interrupted by a signal.
            if left.is_some() {
                -1
            } else {
                0
            }
        }
        // C11: a negative value other than -1 for an error.
        Err(_) => -2,
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn thrd_yield() {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::thrd_yield() };
    }
    flexsc_scheduler::yield_now();
    super::signal::deliver_due();
}

// ---- signal masks ----

/// A user thread's signal mask is its own: kept in its record and installed on the kernel
/// thread whenever it runs (the switch hook makes the system call only when the mask
/// differs from the kernel thread's current one, which for threads that share one mask
/// is never). A signal one user thread blocks and another does not is delivered while the
/// other runs, or to another thread.
fn user_sigmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> Result<(), c_int> {
    let Some(record) = thread::current() else {
        return Err(libc::ESRCH);
    };
    let current = record.sigmask.load(std::sync::atomic::Ordering::Relaxed);
    if !old.is_null() {
        // SAFETY: the caller's sigset_t (128 bytes); the kernel's 64 signals come first.
        unsafe {
            libc::sigemptyset(old);
            *(old as *mut u64) = current;
        }
    }
    if set.is_null() {
        return Ok(());
    }
    // SAFETY: the caller's sigset_t; its first 8 bytes are signals 1-64.
    let bits = unsafe { *(set as *const u64) };
    let new = match how {
        libc::SIG_BLOCK => current | bits,
        libc::SIG_UNBLOCK => current & !bits,
        libc::SIG_SETMASK => bits,
        _ => return Err(libc::EINVAL),
    };
    record.sigmask.store(new, std::sync::atomic::Ordering::Relaxed);
    thread::set_kernel_sigmask(new);
    Ok(())
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_sigmask(
    how: c_int,
    set: *const libc::sigset_t,
    old: *mut libc::sigset_t,
) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_sigmask(how, set, old) };
    }
    match user_sigmask(how, set, old) {
        Ok(()) => {
            // Signals sent to it that it no longer blocks arrive now, as natively.
            super::signal::deliver_due();
            0
        }
        Err(e) => e,
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sigprocmask(
    how: c_int,
    set: *const libc::sigset_t,
    old: *mut libc::sigset_t,
) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sigprocmask(how, set, old) };
    }
    match user_sigmask(how, set, old) {
        Ok(()) => {
            super::signal::deliver_due();
            0
        }
        Err(e) => set_errno(e),
    }
}

// ---- waiting for signals ----

/// A user thread waiting for a signal must not block its kernel thread (the threads that
/// would raise or provoke the signal may be its other user threads). It polls for a
/// pending signal of `set` (glibc's sigtimedwait with a zero timeout: the signals are
/// blocked, so they stay pending), sleeping in between (1 ms, doubling to 20 ms): the
/// signal number, or -1 with errno (EAGAIN when `deadline` passed).
fn sigwait_polling(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    deadline: Option<std::time::Instant>,
) -> c_int {
    let zero = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut nap = Duration::from_millis(1);
    // SAFETY: the caller's sigset_t; its first 8 bytes are signals 1-64.
    let wanted = unsafe { *(set as *const u64) };
    loop {
        super::cancel::test();
        // One sent to this user thread (pthread_kill) first: glibc would find it pending.
        if let Some(si) = super::signal::take(wanted) {
            if !info.is_null() {
                // SAFETY: the caller's siginfo_t, which SigInfo's layout matches (size
                // checked at compile time).
                unsafe { std::ptr::write(info as *mut super::signal::SigInfo, si) };
                // SAFETY: as above.
                return unsafe { (*info).si_signo };
            }
            return si.signo();
        }
        // SAFETY: the caller's set and info; a zero timeout never blocks.
        let r = unsafe { real::sigtimedwait(set, info, &zero) };
        if r > 0 {
            return r;
        }
        // SAFETY: errno is this thread's.
        let e = unsafe { *libc::__errno_location() };
        if e != libc::EAGAIN && e != libc::EINTR {
            return -1;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return set_errno(libc::EAGAIN);
        }
        super::lot::sleep(nap);
        super::signal::deliver_due();
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// A user thread's `pause` or `sigsuspend`: parks the user thread (its kernel thread runs
/// the others) until a handler ran for a signal sent to it; with `mask` (sigsuspend's)
/// as its signal mask meanwhile, the old one back afterwards. Always -1 with EINTR.
/// Ignored signals do not end it, as natively; a cancellation acts (both are
/// cancellation points).
fn user_wait_for_handler(mask: Option<u64>) -> c_int {
    super::cancel::test();
    let Some(record) = thread::current() else {
        return set_errno(libc::ESRCH);
    };
    // The signal that ends this wait must find it (see `lot::WaitSlot`).
    super::waits_wake_from_now();
    let old = record.sigmask.load(std::sync::atomic::Ordering::Relaxed);
    let install = |m: u64| {
        record.sigmask.store(m, std::sync::atomic::Ordering::Relaxed);
        thread::set_kernel_sigmask(m);
    };
    if let Some(m) = mask {
        install(m);
    }
    let word = std::sync::atomic::AtomicU32::new(0);
    loop {
        if super::signal::deliver_due() != super::signal::Delivered::Nothing {
            break;
        }
        super::lot::wait_user_interruptible(&word, 0, None);
        if super::cancel::is_due() {
            install(old);
            super::cancel::act();
        }
    }
    if mask.is_some() {
        install(old);
        // Signals it blocks no longer but the old mask does stay pending; ones the old
        // mask lets through arrive now, as natively when sigsuspend returns.
        super::signal::deliver_due();
    }
    set_errno(libc::EINTR)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pause() -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pause() };
    }
    user_wait_for_handler(None)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sigsuspend(mask: *const libc::sigset_t) -> c_int {
    if !user() || mask.is_null() {
        // SAFETY: forwarded to glibc (which reports a null mask).
        return unsafe { real::sigsuspend(mask) };
    }
    // SAFETY: the caller's sigset_t; its first 8 bytes are signals 1-64. SIGKILL and
    // SIGSTOP cannot be blocked.
    let bits = unsafe { *(mask as *const u64) } & !(1 << (libc::SIGKILL - 1) | 1 << (libc::SIGSTOP - 1));
    user_wait_for_handler(Some(bits))
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sigwait(set: *const libc::sigset_t, sig: *mut c_int) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sigwait(set, sig) };
    }
    match sigwait_polling(set, std::ptr::null_mut(), None) {
        // SAFETY: errno is this thread's (sigwait returns the error instead).
        -1 => unsafe { *libc::__errno_location() },
        signo => {
            // SAFETY: the caller's out-pointer.
            unsafe { *sig = signo };
            0
        }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sigwaitinfo(set: *const libc::sigset_t, info: *mut libc::siginfo_t) -> c_int {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sigwaitinfo(set, info) };
    }
    sigwait_polling(set, info, None)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sigtimedwait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    timeout: *const timespec,
) -> c_int {
    if !user() || timeout.is_null() {
        if user() {
            return sigwait_polling(set, info, None);
        }
        // SAFETY: forwarded to glibc.
        return unsafe { real::sigtimedwait(set, info, timeout) };
    }
    match relative(timeout) {
        Ok(d) => sigwait_polling(set, info, std::time::Instant::now().checked_add(d)),
        Err(e) => set_errno(e),
    }
}

// ---- waiting for children ----

// A user thread's wait for a child is posted like any call that may wait (a blocking
// worker waits; Linux lets any thread of the process reap any child). Other threads get
// glibc's function.

#[no_mangle]
pub unsafe extern "C-unwind" fn wait4(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> libc::pid_t {
    // SAFETY: glibc's wait4 makes exactly this call.
    let real = || unsafe { real::wait4(pid, status, options, usage) } as i64;
    if !user() {
        return real() as libc::pid_t;
    }
    let args = [pid as u64, status as u64, options as u64, usage as u64, 0, 0];
    // SAFETY: the call wait4 makes; the pointers are the caller's.
    unsafe { crate::route::route(libc::SYS_wait4, args, real) as libc::pid_t }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::waitpid(pid, status, options) };
    }
    // SAFETY: waitpid is wait4 without usage.
    unsafe { wait4(pid, status, options, std::ptr::null_mut()) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn wait(status: *mut c_int) -> libc::pid_t {
    if !user() {
        // SAFETY: forwarded to glibc.
        return unsafe { real::wait(status) };
    }
    // SAFETY: wait is wait4 for any child.
    unsafe { wait4(-1, status, 0, std::ptr::null_mut()) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    info: *mut libc::siginfo_t,
    options: c_int,
) -> c_int {
    // SAFETY: glibc's waitid makes exactly this call.
    let real = || unsafe { real::waitid(idtype, id, info, options) } as i64;
    if !user() {
        return real() as c_int;
    }
    let args = [idtype as u64, id as u64, info as u64, options as u64, 0, 0];
    // SAFETY: the call waitid makes; the pointers are the caller's.
    unsafe { crate::route::route(libc::SYS_waitid, args, real) as c_int }
}

// ---- identity changes ----

/// glibc's setuid family signals every kernel thread and waits for each to change its
/// credentials in its handler; a kernel thread whose %fs holds a user thread's TCB acks in
/// the wrong TCB and the caller waits forever. Refuse loudly instead of hanging.
fn refuse_setxid(name: &str) {
    if active() {
        crate::route::quietly(|| {
            eprintln!(
                "flexsc: {name} is not supported with M-on-N threads (FLEXSC_THREADS=m-on-n); \
                 aborting. Run this program with FLEXSC_THREADS=1:1."
            )
        });
        std::process::abort();
    }
}

macro_rules! setxid {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* ); )*) => {
        $(
            #[no_mangle]
            pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
                refuse_setxid(stringify!($name));
                // SAFETY: forwarded to glibc.
                unsafe { real::$name($($arg),*) }
            }
        )*
    };
}

setxid! {
    fn setuid(id: libc::uid_t);
    fn setgid(id: libc::gid_t);
    fn seteuid(id: libc::uid_t);
    fn setegid(id: libc::gid_t);
    fn setreuid(r: libc::uid_t, e: libc::uid_t);
    fn setregid(r: libc::gid_t, e: libc::gid_t);
    fn setresuid(r: libc::uid_t, e: libc::uid_t, s: libc::uid_t);
    fn setresgid(r: libc::gid_t, e: libc::gid_t, s: libc::gid_t);
    fn setgroups(n: usize, list: *const libc::gid_t);
}
