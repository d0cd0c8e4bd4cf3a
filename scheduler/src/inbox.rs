//! A kernel thread's inbox: how other threads hand it work (new user threads, wakes of its
//! parked user threads, the request to stop) and wake it when it sleeps.
//!
//! The loop of the owning kernel thread looks at the inbox once per round (one load of
//! `pending`) and takes every message at once. When it has nothing to run and nothing in
//! flight finishes, it sleeps on `state`, a futex word.
//!
//! # Sleeping and waking
//!
//! A store-buffer handshake like the doorbell's (`flexsc_shim::doorbell`): each side writes
//! one location, then reads the other's, with a SeqCst fence between.
//!
//! ```text
//!   owner (kernel thread)                   sender (any thread)
//!   swap(state, SLEEPING)                   lock; push message; pending = true; unlock
//!   fence(SeqCst)                           fence(SeqCst)
//!   if pending or stopping: don't sleep     if swap(state, AWAKE) == SLEEPING:
//!   else futex_wait(state, SLEEPING)            futex_wake(state)
//!   swap(state, AWAKE)
//! ```
//!
//! The fences are totally ordered. If the owner's comes first, the sender's swap after
//! its own fence comes after the owner's store in the word's modification order, so it
//! takes SLEEPING (or a later value) and wakes the owner; if the sender's comes first, the
//! owner's read sees `pending` and does not sleep. Without them both sides could read the
//! old values and the message would wait for an unrelated wake: a lost wake-up. The
//! futex wait re-checks the word in the kernel, so a swap to AWAKE between the owner's
//! check and its wait makes the wait return at once. Only the sender whose swap took
//! SLEEPING makes the futex call, so a burst of messages to a sleeping thread costs one
//! wake.
//!
//! Every write of `state` is a swap, never a plain store or a load-then-swap: the word's
//! modification order is then one chain, each swap reading the latest value. That is what
//! the C++ model gives plain stores too, but loom orders concurrent plain stores only
//! partially and, with them, reports a lost wake-up that the real model forbids; with
//! swaps it checks the handshake exactly. The cost is nil where it matters: the owner
//! swaps only around a sleep, and a send already writes the mutex's line.
//!
//! The messages themselves are ordered by the mutex: the owner reads them under the lock
//! the sender pushed them under, so `pending` needs no ordering of its own.
//!
//! A loom model of this handshake is in `loom_tests.rs`.

use std::time::Duration;

use crate::primitive::{fence, futex_wait, futex_wake, lock, AtomicBool, AtomicU32, Mutex, Ordering};
use crate::user_thread::Task;

/// The owner is running (or about to look at the inbox again).
const AWAKE: u32 = 0;
/// The owner announced it will sleep on `state`.
const SLEEPING: u32 = 1;

/// What another thread asks of a kernel thread.
pub(crate) enum Message {
    /// Start a new user thread.
    Spawn(Task),
    /// Make the parked user thread with this key ready.
    Wake(u32),
}

/// See the module docs.
pub(crate) struct Inbox {
    messages: Mutex<Vec<Message>>,
    /// Whether `messages` may hold something. Set under the lock by senders, cleared under
    /// the lock by the owner; read without it by the owner, once per round.
    pending: AtomicBool,
    /// The scheduler is shutting down: every user thread has finished.
    stopping: AtomicBool,
    /// AWAKE or SLEEPING: the owner's futex word.
    state: AtomicU32,
}

impl Inbox {
    /// An empty inbox whose owner is awake.
    pub(crate) fn new() -> Self {
        Inbox {
            messages: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            state: AtomicU32::new(AWAKE),
        }
    }

    /// Any thread: hands `message` to the owner and wakes it if it sleeps.
    pub(crate) fn send(&self, message: Message) {
        {
            let mut messages = lock(&self.messages);
            messages.push(message);
            self.pending.store(true, Ordering::Relaxed);
        }
        self.wake_owner();
    }

    /// Any thread: asks the owner to exit once it has no user thread left.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.wake_owner();
    }

    /// The sender's half of the handshake (see the module docs).
    fn wake_owner(&self) {
        fence(Ordering::SeqCst);
        if self.state.swap(AWAKE, Ordering::Relaxed) == SLEEPING {
            futex_wake(&self.state, 1);
        }
    }

    /// Owner: whether a message may be waiting. One load; cheap enough for every round.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Owner: whether the scheduler asked it to stop.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Owner: moves every waiting message into `into` (oldest first).
    pub(crate) fn take(&self, into: &mut Vec<Message>) {
        let mut messages = lock(&self.messages);
        self.pending.store(false, Ordering::Relaxed);
        into.append(&mut messages);
    }

    /// Owner: sleeps until a message or a stop arrives, for at most `timeout` if given.
    /// Returns at once if one is already there; may return spuriously.
    pub(crate) fn sleep(&self, timeout: Option<Duration>) {
        self.state.swap(SLEEPING, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !self.pending.load(Ordering::Relaxed) && !self.stopping.load(Ordering::Relaxed) {
            futex_wait(&self.state, SLEEPING, timeout);
        }
        self.state.swap(AWAKE, Ordering::Relaxed);
    }
}
