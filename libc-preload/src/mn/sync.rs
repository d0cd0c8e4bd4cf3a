//! pthread mutexes, condition variables, once, semaphores, spin locks, rwlocks and
//! barriers that park a user thread instead of its kernel thread.
//!
//! The state stays in the application's objects, in glibc 2.36's own encoding wherever a
//! word means the same to both (a normal mutex's lock word is 0/1/2, its owner and count
//! fields; a once's 2 is "done"; a semaphore's value and waiter count), so an object
//! locked by glibc before M-on-N began is unlocked correctly by us. Where glibc would
//! sleep on the kernel futex, these sleep on the user-thread futex (`lot`).
//!
//! Objects we do not implement (process-shared or robust or priority mutexes, shared
//! condvars and semaphores) go to glibc's functions. A user thread must not block its
//! kernel thread in them (the holder may be a user thread of the same kernel thread), so
//! it polls glibc's try-variant and yields in between: correct, but it spins.
//!
//! Every function here is only called while M-on-N is active (see `mn::active`).
//!
//! # Memory ordering
//!
//! - Mutex lock word: taking it (the CAS from 0, or a swap that returns 0) is Acquire,
//!   releasing it (the swap to 0) Release, so one holder's writes are seen by the next.
//!   The owner, count and nusers fields are only written by the holder and read by the
//!   holder (a non-holder reading them, as in `owner == me`, can only ever see a value
//!   that is not its own id): Relaxed.
//! - Condvar: a waiter counts itself in `waiters` and then reads `seq`; a signaller bumps
//!   `seq` and then reads `waiters`, all SeqCst. Either the signaller sees the waiter (and
//!   wakes the lot), or the waiter reads the new `seq` and its lot wait returns at once.
//! - Semaphore: the same pair, with `value` and `waiters`; a successful decrement is
//!   Acquire, the post's increment SeqCst (so also Release).
//! - Once: the routine's effects are published by the Release store of DONE, read by the
//!   Acquire of the CAS or load that sees it.
//! - Barrier: `arrived` and `round` are SeqCst; the last arrival resets `arrived` before
//!   it bumps `round`, and nobody arrives for the next round before seeing the bump.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Instant;

use libc::{c_int, clockid_t, timespec};

use super::lot::{self, Waited};
use super::real;
use super::tcb::current_tid;

const NORMAL: i32 = 0;
const RECURSIVE: i32 = 1;
const ERRORCHECK: i32 = 2;
/// Robust, priority-inherit, priority-protect and process-shared bits of `__kind`.
const SPECIAL_KIND: i32 = 16 | 32 | 64 | 128;
/// How many times a locker re-reads a held lock before it parks.
const SPINS: u32 = 32;

fn in_user_thread() -> bool {
    flexsc_scheduler::in_user_thread()
}

/// `pthread_mutex_t`'s fields (glibc 2.36, x86-64), as atomics.
struct MutexWords {
    lock: &'static AtomicU32,
    count: &'static AtomicU32,
    owner: &'static AtomicI32,
    nusers: &'static AtomicU32,
    kind: i32,
}

/// # Safety
/// `m` points at a live `pthread_mutex_t` (40 bytes, 8-aligned).
unsafe fn words(m: *mut libc::pthread_mutex_t) -> MutexWords {
    let p = m as usize;
    // SAFETY: the fields of the caller's mutex; glibc accesses them atomically too.
    unsafe {
        MutexWords {
            lock: &*(p as *const AtomicU32),
            count: &*((p + 4) as *const AtomicU32),
            owner: &*((p + 8) as *const AtomicI32),
            nusers: &*((p + 12) as *const AtomicU32),
            kind: (*((p + 16) as *const AtomicI32)).load(Ordering::Relaxed),
        }
    }
}

/// Whether the mutex is of a kind we leave to glibc.
pub(crate) fn mutex_is_special(m: *mut libc::pthread_mutex_t) -> bool {
    // SAFETY: the caller passed its mutex.
    unsafe { words(m).kind & SPECIAL_KIND != 0 }
}

/// Takes a 0/1/2 lock word (Drepper's mutex 3) with the user-thread futex. False if the
/// deadline passed first.
fn acquire(lock: &AtomicU32, deadline: Option<Instant>) -> bool {
    if lock
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return true;
    }
    for _ in 0..SPINS {
        if lock.load(Ordering::Relaxed) == 0
            && lock
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return true;
        }
        std::hint::spin_loop();
    }
    loop {
        if lock.swap(2, Ordering::SeqCst) == 0 {
            return true;
        }
        if lot::wait(lock, 2, deadline) == Waited::TimedOut {
            return lock.swap(2, Ordering::SeqCst) == 0;
        }
    }
}

fn release(lock: &AtomicU32) {
    if lock.swap(0, Ordering::SeqCst) == 2 {
        lot::wake(lock, 1);
    }
}

/// pthread_mutex_lock / timedlock.
///
/// # Safety
/// `m` is a live, initialised mutex.
pub(crate) unsafe fn mutex_lock(m: *mut libc::pthread_mutex_t, deadline: Option<Instant>) -> c_int {
    // SAFETY: forwarded.
    let w = unsafe { words(m) };
    if w.kind & SPECIAL_KIND != 0 {
        if !in_user_thread() {
            // SAFETY: forwarded to glibc.
            return unsafe { real_lock_native(m, deadline) };
        }
        loop {
            // SAFETY: forwarded to glibc.
            let r = unsafe { real::pthread_mutex_trylock(m) };
            if r != libc::EBUSY {
                return r;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return libc::ETIMEDOUT;
            }
            flexsc_scheduler::yield_now();
        }
    }
    let me = current_tid();
    let kind = w.kind & 3;
    if kind != NORMAL && w.owner.load(Ordering::Relaxed) == me {
        if kind == RECURSIVE {
            let c = w.count.load(Ordering::Relaxed);
            if c == u32::MAX {
                return libc::EAGAIN;
            }
            w.count.store(c + 1, Ordering::Relaxed);
            return 0;
        }
        if kind == ERRORCHECK {
            return libc::EDEADLK;
        }
    }
    if !acquire(w.lock, deadline) {
        return libc::ETIMEDOUT;
    }
    taken(&w, me);
    0
}

/// A native thread on a special mutex: glibc's own lock (it may block this OS thread).
unsafe fn real_lock_native(m: *mut libc::pthread_mutex_t, deadline: Option<Instant>) -> c_int {
    match deadline {
        // SAFETY: forwarded to glibc.
        None => unsafe { real::pthread_mutex_lock(m) },
        Some(d) => {
            let ts = instant_to_timespec(d, libc::CLOCK_MONOTONIC);
            // SAFETY: forwarded to glibc, with a deadline on the clock we name.
            unsafe { real::pthread_mutex_clocklock(m, libc::CLOCK_MONOTONIC, &ts) }
        }
    }
}

fn taken(w: &MutexWords, me: i32) {
    w.owner.store(me, Ordering::Relaxed);
    w.nusers.fetch_add(1, Ordering::Relaxed);
    if w.kind & 3 == RECURSIVE {
        w.count.store(1, Ordering::Relaxed);
    }
}

/// pthread_mutex_trylock.
///
/// # Safety
/// As [`mutex_lock`].
pub(crate) unsafe fn mutex_trylock(m: *mut libc::pthread_mutex_t) -> c_int {
    // SAFETY: forwarded.
    let w = unsafe { words(m) };
    if w.kind & SPECIAL_KIND != 0 {
        // SAFETY: forwarded to glibc, which never blocks in trylock.
        return unsafe { real::pthread_mutex_trylock(m) };
    }
    let me = current_tid();
    if w.kind & 3 == RECURSIVE && w.owner.load(Ordering::Relaxed) == me {
        let c = w.count.load(Ordering::Relaxed);
        if c == u32::MAX {
            return libc::EAGAIN;
        }
        w.count.store(c + 1, Ordering::Relaxed);
        return 0;
    }
    if w.lock
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return libc::EBUSY;
    }
    taken(&w, me);
    0
}

/// pthread_mutex_unlock.
///
/// # Safety
/// As [`mutex_lock`].
pub(crate) unsafe fn mutex_unlock(m: *mut libc::pthread_mutex_t) -> c_int {
    // SAFETY: forwarded.
    let w = unsafe { words(m) };
    if w.kind & SPECIAL_KIND != 0 {
        // SAFETY: forwarded to glibc (unlock never blocks).
        return unsafe { real::pthread_mutex_unlock(m) };
    }
    let kind = w.kind & 3;
    if kind != NORMAL {
        let me = current_tid();
        if w.owner.load(Ordering::Relaxed) != me || w.lock.load(Ordering::Relaxed) == 0 {
            return libc::EPERM;
        }
        if kind == RECURSIVE {
            let c = w.count.load(Ordering::Relaxed);
            if c > 1 {
                w.count.store(c - 1, Ordering::Relaxed);
                return 0;
            }
            w.count.store(0, Ordering::Relaxed);
        }
    }
    w.owner.store(0, Ordering::Relaxed);
    w.nusers.fetch_sub(1, Ordering::Relaxed);
    release(w.lock);
    0
}

/// pthread_mutex_destroy: EBUSY while locked.
///
/// # Safety
/// As [`mutex_lock`].
pub(crate) unsafe fn mutex_destroy(m: *mut libc::pthread_mutex_t) -> c_int {
    // SAFETY: forwarded.
    let w = unsafe { words(m) };
    if w.kind & SPECIAL_KIND != 0 {
        // SAFETY: forwarded to glibc.
        return unsafe { real::pthread_mutex_destroy(m) };
    }
    if w.lock.load(Ordering::Relaxed) != 0 {
        return libc::EBUSY;
    }
    0
}

// ---- time ----

/// The absolute time `ts` on `clock`, as an `Instant` (clock jumps after this point are
/// not followed).
pub(crate) fn deadline_from(clock: clockid_t, ts: *const timespec) -> Result<Instant, c_int> {
    if ts.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: the caller's timespec.
    let ts = unsafe { *ts };
    if !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(libc::EINVAL);
    }
    let mut now = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes `now`.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return Err(libc::EINVAL);
    }
    let target = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    let current = now.tv_sec as i128 * 1_000_000_000 + now.tv_nsec as i128;
    let ahead = (target - current).clamp(0, u64::MAX as i128) as u64;
    let base = Instant::now();
    Ok(base
        .checked_add(std::time::Duration::from_nanos(ahead))
        .unwrap_or(base + std::time::Duration::from_secs(86_400 * 365 * 100)))
}

fn instant_to_timespec(d: Instant, clock: clockid_t) -> timespec {
    let left = d.saturating_duration_since(Instant::now());
    let mut now = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes `now`.
    unsafe { libc::clock_gettime(clock, &mut now) };
    let total = now.tv_nsec as u64 + left.subsec_nanos() as u64;
    timespec {
        tv_sec: now
            .tv_sec
            .saturating_add(left.as_secs() as libc::time_t + (total / 1_000_000_000) as libc::time_t),
        tv_nsec: (total % 1_000_000_000) as libc::c_long,
    }
}

// ---- condition variables ----

/// Our words in `pthread_cond_t` (48 bytes): a sequence number bumped by every signal
/// (offset 0) and a count of waiters (offset 8). glibc's `__wrefs` (offset 36) keeps the
/// clock (bit 1) and the process-shared flag (bit 0) that `pthread_cond_init` set.
struct CondWords {
    seq: &'static AtomicU32,
    waiters: &'static AtomicU32,
    wrefs: u32,
}

unsafe fn cond_words(c: *mut libc::pthread_cond_t) -> CondWords {
    let p = c as usize;
    // SAFETY: fields of the caller's condvar.
    unsafe {
        CondWords {
            seq: &*(p as *const AtomicU32),
            waiters: &*((p + 8) as *const AtomicU32),
            wrefs: (*((p + 36) as *const AtomicU32)).load(Ordering::Relaxed),
        }
    }
}

/// The clock of a condvar's timed waits.
pub(crate) fn cond_clock(c: *mut libc::pthread_cond_t) -> clockid_t {
    // SAFETY: the caller's condvar.
    if unsafe { cond_words(c) }.wrefs & 2 != 0 {
        libc::CLOCK_MONOTONIC
    } else {
        libc::CLOCK_REALTIME
    }
}

/// pthread_cond_wait / timedwait / clockwait.
///
/// # Safety
/// `c` and `m` are live, initialised, and `m` is locked by the caller.
pub(crate) unsafe fn cond_wait(
    c: *mut libc::pthread_cond_t,
    m: *mut libc::pthread_mutex_t,
    deadline: Option<Instant>,
) -> c_int {
    // SAFETY: forwarded.
    let cw = unsafe { cond_words(c) };
    let shared = cw.wrefs & 1 != 0;
    if shared || mutex_is_special(m) {
        if !in_user_thread() {
            // SAFETY: forwarded to glibc.
            return unsafe { real_cond_wait_native(c, m, deadline) };
        }
        // Poll: release, let others run, take again; a spurious wake-up, which POSIX
        // allows. Never blocks the kernel thread.
        // SAFETY: forwarded: the caller holds `m`.
        let r = unsafe { mutex_unlock(m) };
        if r != 0 {
            return r;
        }
        flexsc_scheduler::yield_now();
        // SAFETY: forwarded.
        unsafe { mutex_lock(m, None) };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return libc::ETIMEDOUT;
        }
        return 0;
    }
    // SAFETY: forwarded.
    let w = unsafe { words(m) };
    cw.waiters.fetch_add(1, Ordering::SeqCst);
    let seq = cw.seq.load(Ordering::SeqCst);
    // Release the mutex completely (a recursive one may be held several times).
    let count = w.count.load(Ordering::Relaxed);
    if w.kind & 3 == RECURSIVE {
        w.count.store(1, Ordering::Relaxed);
    }
    // SAFETY: forwarded.
    let r = unsafe { mutex_unlock(m) };
    if r != 0 {
        if w.kind & 3 == RECURSIVE {
            w.count.store(count, Ordering::Relaxed);
        }
        cw.waiters.fetch_sub(1, Ordering::SeqCst);
        return r;
    }
    // A cancellation or a signal for a user thread ends the wait like a spurious wake-up;
    // the caller acts on it once the mutex is taken back.
    let woken = lot::wait_user_interruptible(cw.seq, seq, deadline);
    cw.waiters.fetch_sub(1, Ordering::SeqCst);
    let me = current_tid();
    acquire(w.lock, None);
    taken(&w, me);
    if w.kind & 3 == RECURSIVE {
        w.count.store(count, Ordering::Relaxed);
    }
    match woken {
        Waited::TimedOut => libc::ETIMEDOUT,
        // (A condvar wait is not interruptible; a wake-up is all it can be.)
        Waited::Woken | Waited::Interrupted => 0,
    }
}

unsafe fn real_cond_wait_native(
    c: *mut libc::pthread_cond_t,
    m: *mut libc::pthread_mutex_t,
    deadline: Option<Instant>,
) -> c_int {
    match deadline {
        // SAFETY: forwarded to glibc.
        None => unsafe { real::pthread_cond_wait(c, m) },
        Some(d) => {
            let ts = instant_to_timespec(d, libc::CLOCK_MONOTONIC);
            // SAFETY: forwarded to glibc.
            unsafe { real::pthread_cond_clockwait(c, m, libc::CLOCK_MONOTONIC, &ts) }
        }
    }
}

/// pthread_cond_signal (`all`: broadcast).
///
/// # Safety
/// `c` is live and initialised.
pub(crate) unsafe fn cond_signal(c: *mut libc::pthread_cond_t, all: bool) -> c_int {
    // SAFETY: forwarded.
    let cw = unsafe { cond_words(c) };
    if cw.wrefs & 1 != 0 {
        // SAFETY: forwarded to glibc (signalling never blocks).
        return unsafe {
            if all {
                real::pthread_cond_broadcast(c)
            } else {
                real::pthread_cond_signal(c)
            }
        };
    }
    cw.seq.fetch_add(1, Ordering::SeqCst);
    if cw.waiters.load(Ordering::SeqCst) != 0 {
        lot::wake(cw.seq, if all { usize::MAX } else { 1 });
    }
    0
}

// ---- once ----

const ONCE_RUNNING: u32 = 1;
const ONCE_DONE: u32 = 2;

/// pthread_once.
///
/// # Safety
/// `once` is a live `pthread_once_t`; `init` is callable.
pub(crate) unsafe fn once(once: *mut libc::pthread_once_t, init: unsafe extern "C-unwind" fn()) -> c_int {
    /// If the routine is cancelled (or calls pthread_exit), the once is not done: it goes
    /// back to 0 and its waiters wake, one of them to run it (POSIX, and glibc's cleanup
    /// handler does the same). A guard's drop runs while glibc's unwinder passes.
    struct Reset<'a>(&'a AtomicU32);
    impl Drop for Reset<'_> {
        fn drop(&mut self) {
            self.0.store(0, Ordering::Release);
            lot::wake(self.0, usize::MAX);
        }
    }
    // SAFETY: a pthread_once_t is an int, accessed atomically by glibc too.
    let word = unsafe { &*(once as *const AtomicU32) };
    loop {
        match word.compare_exchange(0, ONCE_RUNNING, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => {
                let reset = Reset(word);
                // SAFETY: the caller's initialiser.
                unsafe { init() };
                std::mem::forget(reset);
                word.store(ONCE_DONE, Ordering::Release);
                lot::wake(word, usize::MAX);
                return 0;
            }
            Err(v) if v == ONCE_DONE => return 0,
            Err(v) => {
                lot::wait(word, v, None);
            }
        }
    }
}

// ---- semaphores ----

/// `sem_t` (32 bytes): the value (offset 0) and the number of waiters (offset 4), as
/// glibc's 64-bit `data`; at offset 8, 0 for a private semaphore, FUTEX_SHARED (128) for a
/// process-shared one.
struct SemWords {
    value: &'static AtomicU32,
    waiters: &'static AtomicU32,
    shared: bool,
}

unsafe fn sem_words(s: *mut libc::sem_t) -> SemWords {
    let p = s as usize;
    // SAFETY: fields of the caller's semaphore.
    unsafe {
        SemWords {
            value: &*(p as *const AtomicU32),
            waiters: &*((p + 4) as *const AtomicU32),
            shared: (*((p + 8) as *const AtomicI32)).load(Ordering::Relaxed) != 0,
        }
    }
}

fn set_errno(e: c_int) -> c_int {
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = e };
    -1
}

fn sem_try(value: &AtomicU32) -> bool {
    let mut v = value.load(Ordering::Relaxed);
    while v > 0 {
        match value.compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => v = now,
        }
    }
    false
}

/// sem_wait / timedwait / clockwait: 0, or -1 with errno.
///
/// # Safety
/// `s` is a live, initialised semaphore.
pub(crate) unsafe fn sem_wait(s: *mut libc::sem_t, deadline: Option<Instant>) -> c_int {
    // SAFETY: forwarded.
    let sw = unsafe { sem_words(s) };
    if sw.shared {
        if !in_user_thread() {
            return match deadline {
                // SAFETY: forwarded to glibc.
                None => unsafe { real::sem_wait(s) },
                Some(d) => {
                    let ts = instant_to_timespec(d, libc::CLOCK_MONOTONIC);
                    // SAFETY: forwarded to glibc.
                    unsafe { real::sem_clockwait(s, libc::CLOCK_MONOTONIC, &ts) }
                }
            };
        }
        loop {
            // SAFETY: forwarded to glibc.
            if unsafe { real::sem_trywait(s) } == 0 {
                return 0;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return set_errno(libc::ETIMEDOUT);
            }
            flexsc_scheduler::yield_now();
        }
    }
    if sem_try(sw.value) {
        return 0;
    }
    loop {
        sw.waiters.fetch_add(1, Ordering::SeqCst);
        let r = loop {
            if sem_try(sw.value) {
                break Some(0);
            }
            match lot::wait_interruptible(sw.value, 0, deadline) {
                Waited::Woken => {}
                Waited::TimedOut => {
                    break Some(if sem_try(sw.value) {
                        0
                    } else {
                        set_errno(libc::ETIMEDOUT)
                    })
                }
                // As glibc's: a handler that ran while waiting makes the wait fail.
                Waited::Interrupted if !in_user_thread() => break Some(set_errno(libc::EINTR)),
                // A user thread's: a cancellation, or a signal for it.
                Waited::Interrupted => break None,
            }
        };
        sw.waiters.fetch_sub(1, Ordering::SeqCst);
        if let Some(r) = r {
            return r;
        }
        super::cancel::test();
        if super::signal::deliver_due() != super::signal::Delivered::Nothing {
            return set_errno(libc::EINTR);
        }
    }
}

/// sem_trywait.
///
/// # Safety
/// As [`sem_wait`].
pub(crate) unsafe fn sem_trywait(s: *mut libc::sem_t) -> c_int {
    // SAFETY: forwarded.
    let sw = unsafe { sem_words(s) };
    if sw.shared {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sem_trywait(s) };
    }
    if sem_try(sw.value) {
        0
    } else {
        set_errno(libc::EAGAIN)
    }
}

/// sem_post.
///
/// # Safety
/// As [`sem_wait`].
pub(crate) unsafe fn sem_post(s: *mut libc::sem_t) -> c_int {
    // SAFETY: forwarded.
    let sw = unsafe { sem_words(s) };
    if sw.shared {
        // SAFETY: forwarded to glibc.
        return unsafe { real::sem_post(s) };
    }
    let mut v = sw.value.load(Ordering::Relaxed);
    loop {
        if v >= libc::c_int::MAX as u32 {
            return set_errno(libc::EOVERFLOW);
        }
        match sw
            .value
            .compare_exchange_weak(v, v + 1, Ordering::SeqCst, Ordering::Relaxed)
        {
            Ok(_) => break,
            Err(now) => v = now,
        }
    }
    if sw.waiters.load(Ordering::SeqCst) != 0 {
        lot::wake(sw.value, 1);
    }
    0
}

// ---- spin locks, rwlocks (polled), barriers ----

/// Polls `try_once` (0 = taken) in a user thread, yielding in between; EBUSY-like
/// results other than `busy` end the poll.
pub(crate) fn poll(busy: c_int, deadline: Option<Instant>, mut try_once: impl FnMut() -> c_int) -> c_int {
    loop {
        let r = try_once();
        if r != busy {
            return r;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return libc::ETIMEDOUT;
        }
        flexsc_scheduler::yield_now();
    }
}

/// pthread_barrier_wait, over glibc's `in` (offset 0), `current_round` (4), `count` (8)
/// and `shared` (12: 0 private, 128 process-shared) words.
///
/// # Safety
/// `b` is a live, initialised barrier that is not process-shared.
pub(crate) unsafe fn barrier_wait(b: *mut libc::pthread_barrier_t) -> c_int {
    let p = b as usize;
    // SAFETY: fields of the caller's barrier.
    let (arrived, round, count) = unsafe {
        (
            &*(p as *const AtomicU32),
            &*((p + 4) as *const AtomicU32),
            (*((p + 8) as *const AtomicU32)).load(Ordering::Relaxed),
        )
    };
    let gen = round.load(Ordering::SeqCst);
    if arrived.fetch_add(1, Ordering::SeqCst) + 1 >= count {
        arrived.store(0, Ordering::SeqCst);
        round.fetch_add(1, Ordering::SeqCst);
        lot::wake(round, usize::MAX);
        return libc::PTHREAD_BARRIER_SERIAL_THREAD;
    }
    while round.load(Ordering::SeqCst) == gen {
        lot::wait(round, gen, None);
    }
    0
}

/// Whether a barrier is process-shared.
pub(crate) fn barrier_is_shared(b: *mut libc::pthread_barrier_t) -> bool {
    // SAFETY: the `shared` field of the caller's barrier.
    unsafe { (*((b as usize + 12) as *const AtomicI32)).load(Ordering::Relaxed) != 0 }
}
