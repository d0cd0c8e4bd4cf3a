//! One syscall-page entry: a cache line that carries one system call from the thread that
//! posts it to the service thread that runs it, and its result back.
//!
//! ```text
//!  byte 0      4      8                                              56      64
//!       +------+------+-----------------------------------------------+-------+
//!       |status|  nr  | args[0] .. args[5]                             |  ret  |
//!       +------+------+-----------------------------------------------+-------+
//! ```
//!
//! # The state machine
//!
//! ```text
//!            owner posts                service claims             service completes
//!   FREE ------------------> SUBMITTED ----------------> BUSY ----------------------> DONE
//!    ^  \                        |                         |                            |
//!    |   \ owner reclaims (shutdown, a helping caller,     | no blocking worker free    |
//!    |    \ or a call nobody claimed within the owner's    |                            |
//!    |     `- patience): SUBMITTED -> FREE, runs it itself  v                            |
//!    |                                                  DECLINED (owner runs it itself) |
//!    +------------------------------------------- owner reaps <-------------------------+
//! ```
//!
//! Why an owner may lose patience ([`Entry::wait_or_take_back`]): a service thread runs
//! most calls inline, and a few of those can wait in the kernel where nobody predicted it
//! (a FIFO's open waits for the other end, a file system may stall). Every call posted
//! behind it would wait too, and if one of them is the call that would end the wait (the
//! FIFO's other end, opened by another thread), the process deadlocks where it would not
//! natively. A call nobody has claimed can always run on its owner instead; the owner
//! does so when the service thread is blocked in the kernel, not when it is only off its
//! core (`Shared::service_is_blocked`), so that delegation stays what it was asked to be.
//!
//! Besides the state, the status word has two flags:
//! - [`PARKED`]: the owner set it before sleeping on the word with a futex, so whoever
//!   completes the entry must wake it;
//! - [`NOTIFY`]: the entry belongs to an asynchronous call (see [`crate::async_submit`]), so
//!   whoever completes it must also wake the task waiting for it, through the waker slot
//!   the page keeps beside the entry (see [`crate::notify`]). It is set when the call is
//!   posted and kept until the entry is reaped.
//!
//! # Memory ordering
//!
//! - The owner writes `nr` and `args` (Relaxed), then publishes them with the `Release`
//!   store of SUBMITTED; the service thread's `Acquire` CAS SUBMITTED -> BUSY pairs with it,
//!   so it reads the arguments the owner wrote.
//! - The service thread writes `ret` (Relaxed), then publishes it with the `Release` swap to
//!   DONE; the owner's `Acquire` load of DONE pairs with it, so it reads that result.
//! - Claim and reclaim are both CASes from SUBMITTED, so exactly one of them wins.
//! - Parking: the owner's CAS that adds PARKED and the completer's swap to DONE are RMWs
//!   on the same word, so one is ordered first: either the swap sees PARKED and wakes, or
//!   the CAS fails because the word is already DONE. The futex wait itself re-checks the
//!   word in the kernel, so a wake between CAS and wait is never lost.
//! - Notifying: NOTIFY is published with SUBMITTED, so the completer's swap sees it. The
//!   completer wakes the waker slot *after* its swap to DONE; a task registers its waker
//!   *before* it looks at the status again. The slot's lock orders the two (see
//!   [`crate::notify`]), so the task either finds DONE or has its waker taken and woken.
//!
//! Payload fields are atomics accessed with `Relaxed` (plain `mov`s on x86-64) so that an
//! application scribbling over its own page is a logic error, never undefined behaviour in
//! the service thread.

use std::time::Duration;

use crate::primitive::{
    futex_wait, futex_wait_for, futex_wake, spin_hint, yield_now, AtomicI64, AtomicU32, AtomicU64, Ordering,
};

/// The entry is unused; its owner may post into it.
pub const FREE: u32 = 0;
/// The owner has posted a call; no service thread has taken it yet.
pub const SUBMITTED: u32 = 1;
/// A service thread has taken the call and is running it (or has handed it to a worker).
pub const BUSY: u32 = 2;
/// The call has run; `ret` holds its result.
pub const DONE: u32 = 3;
/// The service side gave the call back: the owner must run it itself.
pub const DECLINED: u32 = 4;
/// Flag: the owner sleeps on the status word and must be woken on completion.
pub const PARKED: u32 = 1 << 8;
/// Flag: an asynchronous call; its completer wakes the waker slot of the entry.
pub const NOTIFY: u32 = 1 << 9;
/// The flags a state change keeps.
const FLAGS: u32 = PARKED | NOTIFY;
/// How many times a waiting owner yields its core before it sleeps.
pub const YIELDS: u32 = if cfg!(loom) { 1 } else { 64 };

/// The bits of the status word that hold the state.
pub const STATE_MASK: u32 = 0xff;

/// One 64-byte syscall entry. See the module docs for the protocol.
#[repr(C, align(64))]
pub struct Entry {
    status: AtomicU32,
    nr: AtomicU32,
    args: [AtomicU64; 6],
    ret: AtomicI64,
}

/// What the owner finds when it looks at a posted entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still queued or running.
    Pending,
    /// Finished with this raw result (value or negated errno).
    Done(i64),
    /// Handed back: the owner must run the call itself, or, when `done > 0`, the rest of
    /// a transfer of which `done` bytes already moved (see [`crate::resume`]).
    Declined {
        /// Bytes a non-blocking attempt already moved.
        done: i64,
    },
}

/// How [`Entry::wait_or_take_back`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// The call finished (or was declined): reap it as [`Entry::poll`] says.
    Finished(Outcome),
    /// No service thread had claimed it: the owner holds the entry (FREE) and must run
    /// the call itself.
    TakenBack,
    /// A service thread has it, or has not claimed it but was not found `blocked` (it
    /// is only slow): it stays in flight.
    InFlight,
}

/// What a service thread finds when it tries to claim an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The call is now BUSY and belongs to the claimer.
    Call {
        /// Syscall number.
        nr: u32,
        /// Its six arguments.
        args: [u64; 6],
    },
    /// Nothing to do: the entry was not SUBMITTED (a stale doorbell bit, or the owner
    /// reclaimed it).
    Empty,
    /// The status word held no valid state: the entry has been completed with -EINVAL.
    Corrupt,
}

impl Entry {
    /// A FREE entry.
    #[cfg(loom)]
    pub fn new() -> Self {
        Entry {
            status: AtomicU32::new(FREE),
            nr: AtomicU32::new(0),
            args: [(); 6].map(|_| AtomicU64::new(0)),
            ret: AtomicI64::new(0),
        }
    }

    /// The raw status word (state and flags).
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::Acquire)
    }

    /// The posted number, unclaimed: a hint for planning a batch, never for running it (the
    /// owner may take the entry back and post another call into it at any time; only
    /// [`Entry::claim`] returns a call to run).
    #[inline]
    pub fn number_hint(&self) -> u32 {
        self.nr.load(Ordering::Relaxed)
    }

    /// A posted argument, unclaimed: a hint, as [`Entry::number_hint`].
    #[inline]
    pub fn arg_hint(&self, i: usize) -> u64 {
        self.args[i].load(Ordering::Relaxed)
    }

    /// Owner: fills a FREE entry and marks it SUBMITTED.
    pub fn post(&self, nr: u32, args: [u64; 6]) {
        debug_assert_eq!(self.status.load(Ordering::Relaxed) & STATE_MASK, FREE);
        self.nr.store(nr, Ordering::Relaxed);
        for (slot, value) in self.args.iter().zip(args) {
            slot.store(value, Ordering::Relaxed);
        }
        self.status.store(SUBMITTED, Ordering::Release);
    }

    /// Owner: as [`Entry::post`], for an asynchronous call: the completer will also wake
    /// the entry's waker slot (the entry must be one of a [`crate::SyscallPage`]'s).
    pub(crate) fn post_notify(&self, nr: u32, args: [u64; 6]) {
        debug_assert_eq!(self.status.load(Ordering::Relaxed) & STATE_MASK, FREE);
        self.nr.store(nr, Ordering::Relaxed);
        for (slot, value) in self.args.iter().zip(args) {
            slot.store(value, Ordering::Relaxed);
        }
        self.status.store(SUBMITTED | NOTIFY, Ordering::Release);
    }

    /// Owner: takes back an entry no service thread has claimed (used when the runtime is
    /// stopping). True if the owner now holds it as FREE and must run the call itself.
    pub fn reclaim(&self) -> bool {
        let s = self.status.load(Ordering::Relaxed);
        s & STATE_MASK == SUBMITTED
            && self
                .status
                .compare_exchange(s, FREE, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Owner, after a successful `reclaim` and running the call itself: FREE -> DONE, so
    /// the result is reaped like any other.
    pub fn complete_by_owner(&self, ret: i64) {
        self.ret.store(ret, Ordering::Relaxed);
        self.status.store(DONE, Ordering::Release);
    }

    /// Service thread: SUBMITTED -> BUSY, returning the call.
    pub fn claim(&self) -> Claim {
        let mut s = self.status.load(Ordering::Relaxed);
        loop {
            match s & STATE_MASK {
                SUBMITTED => {}
                FREE | BUSY | DONE | DECLINED => return Claim::Empty,
                _ => {
                    // A corrupted status: answer it, so an owner waiting on it wakes with an
                    // error instead of hanging, and move on.
                    self.ret.store(-(libc::EINVAL as i64), Ordering::Relaxed);
                    return match self
                        .status
                        .compare_exchange(s, DONE, Ordering::AcqRel, Ordering::Relaxed)
                    {
                        Ok(old) => {
                            self.wake_waiters(old);
                            Claim::Corrupt
                        }
                        Err(now) => {
                            s = now;
                            continue;
                        }
                    };
                }
            }
            let busy = BUSY | (s & FLAGS);
            match self
                .status
                .compare_exchange_weak(s, busy, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        let (nr, args) = self.contents();
        Claim::Call { nr, args }
    }

    /// Service side: BUSY -> DONE with `ret`, waking a parked owner.
    pub fn complete(&self, ret: i64) {
        self.ret.store(ret, Ordering::Relaxed);
        self.finish(DONE);
    }

    /// Service side: BUSY -> DECLINED, waking a parked owner, who runs the call itself
    /// (or its rest, after `done` bytes moved).
    pub fn decline(&self, done: i64) {
        self.ret.store(done, Ordering::Relaxed);
        self.finish(DECLINED);
    }

    fn finish(&self, state: u32) {
        let old = self.status.swap(state, Ordering::Release);
        self.wake_waiters(old);
    }

    /// Completer, after the status left SUBMITTED/BUSY: wakes whoever `old` says waits.
    #[inline]
    fn wake_waiters(&self, old: u32) {
        if old & PARKED != 0 {
            futex_wake(&self.status, 1);
        }
        if old & NOTIFY != 0 {
            crate::page::notify(self);
        }
    }

    /// Owner: looks once. On `Done` or `Declined` the entry is FREE again.
    #[inline]
    pub fn poll(&self) -> Outcome {
        let s = self.status.load(Ordering::Acquire);
        match s & STATE_MASK {
            DONE => {
                let ret = self.ret.load(Ordering::Relaxed);
                self.status.store(FREE, Ordering::Relaxed);
                Outcome::Done(ret)
            }
            DECLINED => {
                let done = self.ret.load(Ordering::Relaxed);
                self.status.store(FREE, Ordering::Relaxed);
                Outcome::Declined { done }
            }
            _ => Outcome::Pending,
        }
    }

    /// Owner: waits for the outcome: polls `spins` times, then yields the core up to
    /// [`YIELDS`] times (when threads outnumber cores, the service thread or another
    /// submitter may need this core more than a spinning waiter does), then sleeps on a
    /// futex.
    pub fn wait(&self, spins: u32) -> Outcome {
        if let Some(done) = self.spin_then_yield(spins) {
            return done;
        }
        loop {
            match self.poll() {
                Outcome::Pending => {}
                done => return done,
            }
            self.park(None);
        }
    }

    /// Owner: as [`Entry::wait`], but with one sleep of at most `patience`, after which a
    /// call that no service thread has claimed is taken back (SUBMITTED -> FREE, as
    /// [`Entry::reclaim`]) if `blocked()` says the service side is stuck: the owner then
    /// runs it itself. A sleep that ends early (a signal) may take the call back early,
    /// which only means it runs on its owner.
    pub fn wait_or_take_back(
        &self,
        spins: u32,
        patience: Duration,
        blocked: impl FnOnce() -> bool,
    ) -> Waited {
        if let Some(done) = self.spin_then_yield(spins) {
            return Waited::Finished(done);
        }
        self.park(Some(patience));
        match self.poll() {
            Outcome::Pending => {}
            done => return Waited::Finished(done),
        }
        let unclaimed = self.status.load(Ordering::Relaxed) & STATE_MASK == SUBMITTED;
        if unclaimed && blocked() && self.reclaim() {
            return Waited::TakenBack;
        }
        // A service thread has it (it may have claimed it just now, or finished it), or
        // will: it is only slow.
        match self.poll() {
            Outcome::Pending => Waited::InFlight,
            done => Waited::Finished(done),
        }
    }

    /// Owner: spins, only reading, while the entry is posted or running, at most `spins`
    /// times. True if it finished (or was declined) meanwhile; the entry is not reaped.
    ///
    /// For an owner waiting for a whole batch: it waits on the entry the service thread
    /// will reach last, and reaps the others after. Polling each in turn would read every
    /// entry's line while the service thread is writing it, pulling the line back and forth
    /// between the two cores once or twice per call (a cache-line round trip, ~130 ns here,
    /// per call, more than a `getppid`).
    #[inline]
    pub fn spin_until_settled(&self, spins: u32) -> bool {
        for _ in 0..spins {
            if !matches!(self.status.load(Ordering::Acquire) & STATE_MASK, SUBMITTED | BUSY) {
                return true;
            }
            spin_hint();
        }
        false
    }

    /// The first two phases of a wait: `spins` polls, then up to [`YIELDS`] polls that
    /// yield the core.
    fn spin_then_yield(&self, spins: u32) -> Option<Outcome> {
        for _ in 0..spins {
            match self.poll() {
                Outcome::Pending => spin_hint(),
                done => return Some(done),
            }
        }
        for _ in 0..YIELDS {
            match self.poll() {
                Outcome::Pending => yield_now(),
                done => return Some(done),
            }
        }
        None
    }

    /// Owner: sleeps until the entry leaves SUBMITTED/BUSY, for at most `timeout` (or
    /// spuriously).
    fn park(&self, timeout: Option<Duration>) {
        let s = self.status.load(Ordering::Relaxed);
        if !matches!(s & STATE_MASK, SUBMITTED | BUSY) {
            return;
        }
        let parked = s | PARKED;
        if s == parked
            || self
                .status
                .compare_exchange(s, parked, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            match timeout {
                Some(timeout) => futex_wait_for(&self.status, parked, timeout),
                None => futex_wait(&self.status, parked),
            }
        }
    }

    /// Owner: the number and arguments last posted (valid while the owner holds the entry).
    pub fn contents(&self) -> (u32, [u64; 6]) {
        let nr = self.nr.load(Ordering::Relaxed);
        (
            nr,
            [0, 1, 2, 3, 4, 5].map(|i| self.args[i].load(Ordering::Relaxed)),
        )
    }

    /// Writes arbitrary values into every field: a model of an application that scribbles
    /// over its own syscall page. Only for tests of the service side's robustness.
    #[doc(hidden)]
    pub fn scribble(&self, words: [u64; 8]) {
        self.status.store(words[0] as u32, Ordering::Release);
        self.nr.store((words[0] >> 32) as u32, Ordering::Relaxed);
        for i in 0..6 {
            self.args[i].store(words[1 + i], Ordering::Relaxed);
        }
        self.ret.store(words[7] as i64, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Entry>(), 64);
        assert_eq!(std::mem::align_of::<Entry>(), 64);
        assert_eq!(std::mem::offset_of!(Entry, status), 0);
        assert_eq!(std::mem::offset_of!(Entry, nr), 4);
        assert_eq!(std::mem::offset_of!(Entry, args), 8);
        assert_eq!(std::mem::offset_of!(Entry, ret), 56);
    }

    fn zeroed() -> Box<Entry> {
        // SAFETY: all-zero bytes are a valid Entry (atomics of 0): a FREE entry.
        unsafe { Box::new(std::mem::zeroed()) }
    }

    #[test]
    fn full_cycle() {
        let e = zeroed();
        e.post(39, [1, 2, 3, 4, 5, 6]);
        assert_eq!(e.poll(), Outcome::Pending);
        assert_eq!(
            e.claim(),
            Claim::Call {
                nr: 39,
                args: [1, 2, 3, 4, 5, 6]
            }
        );
        assert_eq!(e.claim(), Claim::Empty, "a BUSY entry is claimed once");
        e.complete(-9);
        assert_eq!(e.poll(), Outcome::Done(-9));
        assert_eq!(e.status(), FREE);
        assert_eq!(e.poll(), Outcome::Pending, "a result is reaped once");
    }

    #[test]
    fn spinning_until_settled_only_reads() {
        let e = zeroed();
        e.post(39, [0; 6]);
        assert!(!e.spin_until_settled(10), "a posted call is not settled");
        assert!(matches!(e.claim(), Claim::Call { .. }));
        assert!(!e.spin_until_settled(10), "a running call is not settled");
        e.complete(7);
        assert!(e.spin_until_settled(1));
        assert_eq!(e.status(), DONE, "the spin does not reap");
        assert_eq!(e.poll(), Outcome::Done(7));
        e.post(39, [0; 6]);
        assert!(matches!(e.claim(), Claim::Call { .. }));
        e.decline(0);
        assert!(e.spin_until_settled(1), "a declined call is settled too");
        assert_eq!(e.poll(), Outcome::Declined { done: 0 });
    }

    #[test]
    fn reclaim_and_claim_exclude_each_other() {
        let e = zeroed();
        e.post(1, [0; 6]);
        assert!(e.reclaim());
        assert_eq!(e.claim(), Claim::Empty);
        e.post(1, [0; 6]);
        assert!(matches!(e.claim(), Claim::Call { .. }));
        assert!(!e.reclaim());
    }

    #[test]
    fn an_owner_takes_back_only_a_call_nobody_claimed() {
        let patience = std::time::Duration::from_millis(1);
        let e = zeroed();
        e.post(1, [0; 6]);
        assert_eq!(
            e.wait_or_take_back(0, patience, || false),
            Waited::InFlight,
            "a service thread that is only slow keeps the call"
        );
        assert_eq!(e.status() & STATE_MASK, SUBMITTED);
        assert_eq!(e.wait_or_take_back(0, patience, || true), Waited::TakenBack);
        assert_eq!(e.status(), FREE, "the owner holds the entry again");
        assert_eq!(e.claim(), Claim::Empty, "a late service thread finds nothing");

        e.post(2, [0; 6]);
        assert!(matches!(e.claim(), Claim::Call { nr: 2, .. }));
        assert_eq!(
            e.wait_or_take_back(0, patience, || true),
            Waited::InFlight,
            "a claimed call stays with its service thread"
        );
        e.complete(5);
        assert_eq!(e.wait(0), Outcome::Done(5));
        assert_eq!(e.status(), FREE);
    }

    #[test]
    fn corrupt_status_is_answered_with_einval() {
        let e = zeroed();
        e.scribble([0xdead_beef_0000_0077, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(e.claim(), Claim::Corrupt);
        assert_eq!(e.poll(), Outcome::Done(-(libc::EINVAL as i64)));
    }

    #[test]
    fn decline_hands_the_call_back() {
        let e = zeroed();
        e.post(0, [0; 6]);
        assert!(matches!(e.claim(), Claim::Call { .. }));
        e.decline(0);
        assert_eq!(e.poll(), Outcome::Declined { done: 0 });
        assert_eq!(e.status(), FREE);
    }

    #[test]
    fn parked_owner_is_woken() {
        let e: &'static Entry = Box::leak(zeroed());
        e.post(0, [0; 6]);
        let waiter = std::thread::spawn(move || e.wait(0));
        // Let the owner park, then complete.
        while e.status() & PARKED == 0 {
            std::thread::yield_now();
        }
        assert!(matches!(e.claim(), Claim::Call { .. }));
        e.complete(42);
        assert_eq!(waiter.join().unwrap(), Outcome::Done(42));
    }
}
