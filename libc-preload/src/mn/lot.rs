//! A futex for user threads: wait on a word's address until someone wakes that address,
//! parking the user thread (or the OS thread, for threads that are not user threads: on a
//! kernel futex word of its own, so that its deadline is the kernel's and a signal
//! handler can interrupt a semaphore wait, as glibc's `sem_wait` reports EINTR).
//!
//! The pthread objects of `sync` keep their state in place, in the application's
//! `pthread_mutex_t` and friends, like glibc does; where glibc asks the kernel to sleep on
//! a word, they ask this lot. Waiters hang in one of [`BUCKETS`] queues, chosen by
//! address; a queue is guarded by a spin lock held for a few instructions, never across a
//! park. A waiter with a deadline is also known to the timer thread, which takes it out
//! of its queue when the deadline passes. Raw futex calls that programs make through
//! `syscall()` wait and wake here too (`mn::futex`), with `FUTEX_WAIT_BITSET`'s bitsets.
//!
//! # Memory ordering
//!
//! `wait` compares the word under the bucket's lock and queues itself under the same lock;
//! `wake` takes the lock after the waker changed the word. So a waker that changed the word
//! before a waiter compared it makes the waiter return at once, and one that changed it
//! after finds the waiter queued: no lost wake-up (the same argument as for a kernel
//! futex). The spin lock is Acquire/Release; the word's own accesses are SeqCst in the
//! callers. A waiter leaves the queue exactly once, by whoever takes it out under the lock
//! (a waker, or the timer with `timed_out` set); that one notifies it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use flexsc_scheduler::Waiter;
use flexsc_shim::sys::syscall6;

/// Number of wait queues (a power of two).
const BUCKETS: usize = 256;

/// A test-and-test-and-set lock for a few instructions of work. A holder never parks, so
/// spinning is short; past a bound the spinner yields its core (the holder may be an OS
/// thread that was preempted).
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: std::cell::UnsafeCell<T>,
}

// SAFETY: the lock hands out the value to one thread at a time.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: std::cell::UnsafeCell::new(value),
        }
    }

    /// Runs `f` with the value locked. `f` must not park or take another spin lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.locked.load(Ordering::Relaxed) {
                spins += 1;
                if spins > 200 {
                    // SAFETY: sched_yield has no arguments.
                    unsafe { syscall6(libc::SYS_sched_yield as u64, [0; 6]) };
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        // SAFETY: the lock is held, so this is the only reference.
        let r = f(unsafe { &mut *self.value.get() });
        self.locked.store(false, Ordering::Release);
        r
    }
}

/// How a waiting thread sleeps and is woken.
enum Sleeper {
    /// A user thread: parked through the scheduler; deadlines through the timer thread.
    User(Arc<Waiter>),
    /// An OS thread: a futex word of its own, 0 until a waker (or nobody) stores 1. It
    /// sleeps in the kernel with its own timeout, and can be interrupted by a signal.
    Os(AtomicU32),
}

/// One waiting thread.
struct Parked {
    addr: usize,
    /// Which wakes find it: a waker's bitset must share a bit (`FUTEX_WAIT_BITSET`); all
    /// ones for every wait but a raw futex wait with a bitset.
    bits: u32,
    sleeper: Sleeper,
    /// Set by the timer when it took a user thread out on its deadline.
    timed_out: AtomicBool,
    /// Set by [`WaitSlot::interrupt`] when it took a user thread out (a cancellation or a
    /// signal for it).
    interrupted: AtomicBool,
}

/// Where a user thread's interruptible wait is found by `pthread_cancel` and
/// `pthread_kill` (one per user thread: it waits for one thing at a time).
///
/// The waiter stores its wait here and then checks whether an interruption is due; the
/// interrupter makes it due and then takes the wait from here. The slot's lock orders the
/// two: either the interrupter finds the wait, or the waiter sees the interruption.
pub(crate) struct WaitSlot {
    parked: SpinLock<Option<Arc<Parked>>>,
}

impl WaitSlot {
    pub(crate) const fn new() -> Self {
        WaitSlot {
            parked: SpinLock::new(None),
        }
    }

    /// Wakes the wait registered here, if any, with [`Waited::Interrupted`] (unless a
    /// waker or the timer took it out first).
    pub(crate) fn interrupt(&self) {
        let Some(parked) = self.parked.with(Option::take) else {
            return;
        };
        if remove(&parked) {
            parked.interrupted.store(true, Ordering::Release);
            parked.wake();
        }
    }
}

impl Parked {
    /// Wakes the thread; called once, by whoever took it out of its queue.
    fn wake(&self) {
        match &self.sleeper {
            Sleeper::User(waiter) => waiter.notify(),
            Sleeper::Os(word) => {
                word.store(1, Ordering::Release);
                futex(word, libc::FUTEX_WAKE, 1, None);
            }
        }
    }
}

/// A private futex operation on `word` (raw: the interposed `syscall()` must not see it).
fn futex(word: &AtomicU32, op: libc::c_int, val: u32, timeout: Option<Duration>) -> i64 {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(0, |ts| ts as *const libc::timespec as u64);
    let addr = word as *const AtomicU32 as u64;
    // SAFETY: FUTEX_WAIT reads the word (alive for the borrow), FUTEX_WAKE touches no
    // memory; the timespec outlives the call.
    unsafe {
        syscall6(
            libc::SYS_futex as u64,
            [
                addr,
                (op | libc::FUTEX_PRIVATE_FLAG) as u64,
                val as u64,
                ts_ptr,
                0,
                0,
            ],
        )
    }
}

struct Bucket {
    queue: Vec<Arc<Parked>>,
}

static TABLE: [CachePadded<SpinLock<Bucket>>; BUCKETS] =
    [const { CachePadded::new(SpinLock::new(Bucket { queue: Vec::new() })) }; BUCKETS];

fn bucket(addr: usize) -> &'static SpinLock<Bucket> {
    // Fibonacci hashing of the address; words are at least 4-byte aligned.
    let h = (addr as u64 >> 2).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56;
    &TABLE[h as usize % BUCKETS]
}

/// Why a wait returned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// A waker took us out (or the word differed already).
    Woken,
    /// The deadline passed.
    TimedOut,
    /// A signal handler ran in this (OS) thread while it waited (only for interruptible
    /// waits: semaphores, which POSIX lets fail with EINTR); or, in a user thread, a
    /// cancellation or a signal for it came (see [`WaitSlot`]): the caller finds out which.
    Interrupted,
}

/// What may interrupt a user thread's wait: where the interrupter finds it, and whether an
/// interruption is already due.
pub(crate) type UserInterrupt<'a> = (&'a WaitSlot, &'a dyn Fn() -> bool);

/// Waits while `*word == expected`, until woken through `wake` or `deadline` passes.
/// Returns at once if the word differs. May not return spuriously except as `Woken`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Waited {
    wait_on(word, expected, deadline, false, None)
}

/// [`wait`], which a signal handler running in the waiting OS thread interrupts, and a
/// cancellation or a signal for the waiting user thread too.
pub(crate) fn wait_interruptible(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Waited {
    wait_user_or(word, expected, deadline, !flexsc_scheduler::in_user_thread())
}

/// [`wait`], which a cancellation or a signal for the waiting user thread interrupts (an
/// OS thread's is not interruptible: condvar and join waits, which a handler does not end).
pub(crate) fn wait_user_interruptible(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Waited {
    wait_user_or(word, expected, deadline, false)
}

/// A user thread's wait, interruptible once waits are wakeable (`mn::waits_wakeable`);
/// otherwise a wait that a signal handler interrupts if `os_interruptible`.
fn wait_user_or(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    os_interruptible: bool,
) -> Waited {
    let user = super::waits_wakeable()
        .then(|| {
            super::thread::with_current(|r| {
                let due = || r.interrupt_due();
                wait_on(word, expected, deadline, false, Some((&r.wait_slot, &due)))
            })
        })
        .flatten();
    user.unwrap_or_else(|| wait_on(word, expected, deadline, os_interruptible, None))
}

fn wait_on(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    interruptible: bool,
    user_interrupt: Option<UserInterrupt<'_>>,
) -> Waited {
    wait_bits(word, expected, u32::MAX, deadline, interruptible, user_interrupt).unwrap_or(Waited::Woken)
}

/// A user thread's raw futex wait (`mn::futex`): [`wait_user_interruptible`] (unless
/// `interruptible` is false), found only by wakes whose bitset shares a bit with `bits`.
/// None if the word differed from `expected` (the futex's EAGAIN).
pub(crate) fn wait_futex(
    word: &AtomicU32,
    expected: u32,
    bits: u32,
    deadline: Option<Instant>,
    interruptible: bool,
) -> Option<Waited> {
    if interruptible && super::waits_wakeable() {
        let user = super::thread::with_current(|r| {
            let due = || r.interrupt_due();
            wait_bits(word, expected, bits, deadline, false, Some((&r.wait_slot, &due)))
        });
        if let Some(waited) = user {
            return waited;
        }
    }
    wait_bits(word, expected, bits, deadline, false, None)
}

/// [`wait_on`] with a bitset; None if the word differed.
fn wait_bits(
    word: &AtomicU32,
    expected: u32,
    bits: u32,
    deadline: Option<Instant>,
    interruptible: bool,
    user_interrupt: Option<UserInterrupt<'_>>,
) -> Option<Waited> {
    let addr = word as *const AtomicU32 as usize;
    let sleeper = if flexsc_scheduler::in_user_thread() {
        Sleeper::User(Waiter::new())
    } else {
        Sleeper::Os(AtomicU32::new(0))
    };
    let parked = Arc::new(Parked {
        addr,
        bits,
        sleeper,
        timed_out: AtomicBool::new(false),
        interrupted: AtomicBool::new(false),
    });
    let queued = bucket(addr).with(|b| {
        if word.load(Ordering::SeqCst) != expected {
            return false;
        }
        b.queue.push(Arc::clone(&parked));
        true
    });
    if !queued {
        return None;
    }
    Some(match &parked.sleeper {
        Sleeper::Os(state) => os_sleep(&parked, state, deadline, interruptible),
        Sleeper::User(waiter) => {
            let Some((slot, due)) = user_interrupt else {
                return Some(user_sleep(&parked, waiter, deadline));
            };
            slot.parked.with(|s| *s = Some(Arc::clone(&parked)));
            let waited = if due() && remove(&parked) {
                Waited::Interrupted
            } else {
                user_sleep(&parked, waiter, deadline)
            };
            slot.parked.with(|s| *s = None);
            waited
        }
    })
}

/// An OS thread sleeps on its own word until a waker stores 1; on its deadline or a
/// signal it takes itself out of the queue, unless a waker did first (then it waits for
/// that waker's store, which is on its way).
fn os_sleep(
    parked: &Arc<Parked>,
    state: &AtomicU32,
    deadline: Option<Instant>,
    interruptible: bool,
) -> Waited {
    loop {
        if state.load(Ordering::Acquire) == 1 {
            return Waited::Woken;
        }
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    if remove(parked) {
                        return Waited::TimedOut;
                    }
                    // Taken by a waker: its store comes; wait without a deadline.
                    None
                } else {
                    Some(left)
                }
            }
            None => None,
        };
        let r = futex(state, libc::FUTEX_WAIT, 0, timeout);
        if r == -(libc::EINTR as i64) && interruptible && remove(parked) {
            return Waited::Interrupted;
        }
    }
}

fn user_sleep(parked: &Arc<Parked>, waiter: &Waiter, deadline: Option<Instant>) -> Waited {
    let timer_key = deadline.map(|d| (d, timer::next_id()));
    if let Some(key) = timer_key {
        if key.0 <= Instant::now() {
            // Already past: take ourselves out unless a waker did.
            if remove(parked) {
                return Waited::TimedOut;
            }
        } else {
            timer::arm(key, Arc::clone(parked));
        }
    }
    waiter.wait();
    if let Some(key) = timer_key {
        timer::disarm(key);
    }
    if parked.interrupted.load(Ordering::Acquire) {
        Waited::Interrupted
    } else if parked.timed_out.load(Ordering::Acquire) {
        Waited::TimedOut
    } else {
        Waited::Woken
    }
}

/// Takes `parked` out of its queue; true if it was still there.
fn remove(parked: &Arc<Parked>) -> bool {
    bucket(parked.addr).with(|b| match b.queue.iter().position(|p| Arc::ptr_eq(p, parked)) {
        Some(i) => {
            b.queue.remove(i);
            true
        }
        None => false,
    })
}

/// Wakes up to `count` waiters of `word`'s address, oldest first; returns how many.
pub(crate) fn wake(word: &AtomicU32, count: usize) -> usize {
    wake_addr(word as *const AtomicU32 as usize, count, u32::MAX)
}

/// Wakes up to `count` waiters of `addr` whose bitset shares a bit with `bits`, oldest
/// first; returns how many (a raw `FUTEX_WAKE_BITSET`; the word is never read).
pub(crate) fn wake_addr(addr: usize, count: usize, bits: u32) -> usize {
    let mut taken: Vec<Arc<Parked>> = Vec::new();
    bucket(addr).with(|b| {
        let mut i = 0;
        while i < b.queue.len() && taken.len() < count {
            if b.queue[i].addr == addr && b.queue[i].bits & bits != 0 {
                taken.push(b.queue.remove(i));
            } else {
                i += 1;
            }
        }
    });
    let n = taken.len();
    for parked in taken {
        parked.wake();
    }
    n
}

/// Parks the calling thread until `deadline` (a sleep that lets other user threads run).
pub(crate) fn sleep_until(deadline: Instant) {
    let word = AtomicU32::new(0);
    while Instant::now() < deadline {
        if wait(&word, 0, Some(deadline)) == Waited::TimedOut {
            return;
        }
    }
}

/// Parks the calling thread for `duration`.
pub(crate) fn sleep(duration: Duration) {
    sleep_until(deadline_after(duration));
}

/// `duration` from now (a century when that is past what an `Instant` holds).
pub(crate) fn deadline_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or(now + Duration::from_secs(86_400 * 365 * 100))
}

/// [`sleep_until`], which a cancellation or a signal for the calling user thread
/// interrupts: true if it was interrupted.
pub(crate) fn sleep_until_interruptible(deadline: Instant) -> bool {
    let word = AtomicU32::new(0);
    while Instant::now() < deadline {
        match wait_user_interruptible(&word, 0, Some(deadline)) {
            Waited::TimedOut => return false,
            Waited::Interrupted => return true,
            Waited::Woken => {}
        }
    }
    false
}

/// The timer thread: a native thread that fires deadlines.
mod timer {
    use super::*;

    static NEXT_ID: AtomicU64 = AtomicU64::new(0);

    pub(super) fn next_id() -> u64 {
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    }

    struct Timer {
        armed: SpinLock<BTreeMap<(Instant, u64), Arc<Parked>>>,
        /// Bumped (SeqCst) whenever an earlier deadline is armed; the thread sleeps on it.
        generation: AtomicU32,
    }

    static TIMER: OnceLock<Timer> = OnceLock::new();

    fn timer() -> &'static Timer {
        TIMER.get_or_init(|| Timer {
            armed: SpinLock::new(BTreeMap::new()),
            generation: AtomicU32::new(0),
        })
    }

    /// Starts the timer thread (once, at activation; its spawn must not be a user thread),
    /// and returns once it runs (2 s at most). A thread std starts takes the loader lock
    /// before it runs: had it not run yet when a user thread's `dlopen` takes that lock,
    /// and that user thread then waits for a timed wake (a join of a kernel thread polls
    /// with sleeps), neither would ever go on.
    pub(crate) fn start() -> std::io::Result<()> {
        let t = timer();
        let (running_tx, running) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("flexsc-mn-timer".into())
            .spawn(move || {
                let _ = running_tx.send(());
                let _uncounted = flexsc_kernel_side::census::Uncounted::begin();
                // Signals are for the application's threads: never let one land here.
                // SAFETY: plain signal-mask calls on this new thread's own mask.
                unsafe {
                    let mut all: libc::sigset_t = std::mem::zeroed();
                    libc::sigfillset(&mut all);
                    libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
                }
                crate::route::quietly(|| run(t))
            })?;
        let _ = running.recv_timeout(std::time::Duration::from_secs(2));
        Ok(())
    }

    pub(super) fn arm(key: (Instant, u64), parked: Arc<Parked>) {
        let t = timer();
        let earliest = t.armed.with(|m| {
            m.insert(key, parked);
            m.keys().next() == Some(&key)
        });
        if earliest {
            t.generation.fetch_add(1, Ordering::SeqCst);
            let addr = &t.generation as *const AtomicU32 as u64;
            // SAFETY: FUTEX_WAKE does not touch memory.
            unsafe {
                syscall6(
                    libc::SYS_futex as u64,
                    [
                        addr,
                        (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as u64,
                        1,
                        0,
                        0,
                        0,
                    ],
                )
            };
        }
    }

    pub(super) fn disarm(key: (Instant, u64)) {
        timer().armed.with(|m| m.remove(&key));
    }

    fn run(t: &'static Timer) {
        loop {
            let generation = t.generation.load(Ordering::SeqCst);
            let now = Instant::now();
            let mut due = Vec::new();
            let next = t.armed.with(|m| {
                while let Some((&key, _)) = m.iter().next() {
                    if key.0 > now {
                        return Some(key.0);
                    }
                    if let Some(p) = m.remove(&key) {
                        due.push(p);
                    }
                }
                None
            });
            for parked in due {
                if remove(&parked) {
                    parked.timed_out.store(true, Ordering::Release);
                    parked.wake();
                }
            }
            let timeout = next.map(|d| d.saturating_duration_since(Instant::now()));
            let ts = timeout.map(|d| libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            });
            let ts_ptr = ts.as_ref().map_or(0, |ts| ts as *const libc::timespec as u64);
            let addr = &t.generation as *const AtomicU32 as u64;
            // SAFETY: FUTEX_WAIT reads the word, which is static; the timespec outlives
            // the call.
            unsafe {
                syscall6(
                    libc::SYS_futex as u64,
                    [
                        addr,
                        (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as u64,
                        generation as u64,
                        ts_ptr,
                        0,
                        0,
                    ],
                )
            };
        }
    }
}

pub(crate) use timer::start as start_timer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_at_once_when_the_word_differs() {
        let w = AtomicU32::new(1);
        assert_eq!(wait(&w, 0, None), Waited::Woken);
    }

    #[test]
    fn wake_finds_a_waiting_os_thread() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::SeqCst) == 0 {
                wait(&w2, 0, None);
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        w.store(1, Ordering::SeqCst);
        while !t.is_finished() {
            wake(&w, 1);
            std::thread::yield_now();
        }
        t.join().unwrap();
    }

    #[test]
    fn a_deadline_in_the_past_times_out() {
        let w = AtomicU32::new(0);
        assert_eq!(wait(&w, 0, Some(Instant::now())), Waited::TimedOut);
    }

    /// How many waiters of `addr` are queued.
    fn queued(addr: usize) -> usize {
        bucket(addr).with(|b| b.queue.iter().filter(|p| p.addr == addr).count())
    }

    #[test]
    fn a_raw_futex_wait_tells_a_changed_word_from_a_wake() {
        let w = AtomicU32::new(1);
        assert_eq!(wait_futex(&w, 0, u32::MAX, None, false), None);
        assert_eq!(
            wait_futex(&w, 1, u32::MAX, Some(Instant::now()), false),
            Some(Waited::TimedOut)
        );
    }

    #[test]
    fn a_wake_finds_only_waiters_whose_bitset_it_shares() {
        let w = Arc::new(AtomicU32::new(0));
        let addr = &*w as *const AtomicU32 as usize;
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || wait_futex(&w2, 0, 0b01, None, false));
        while queued(addr) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(wake_addr(addr, 1, 0b10), 0);
        assert_eq!(queued(addr), 1);
        assert_eq!(wake_addr(addr, 1, 0b11), 1);
        assert_eq!(t.join().unwrap(), Some(Waited::Woken));
    }
}
