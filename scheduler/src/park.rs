//! Parking: how a user thread (or an ordinary OS thread) waits for another to wake it.
//!
//! Every blocking operation of this crate (join, [`Mutex`](crate::sync::Mutex),
//! [`Condvar`](crate::sync::Condvar), the channel) waits the same way: it puts a
//! [`Waiter`] where the waker will find it, and calls [`Waiter::wait`]. Inside a user thread
//! that switches the user thread out ([`UserParker`]); anywhere else it parks the OS thread
//! (`std::thread::park`). So the primitives work between user threads of any kernel
//! thread, and between user threads and ordinary threads.
//!
//! # The user-thread parker
//!
//! A token, as in `std::thread::park`, in one word with three states:
//!
//! ```text
//!               park: no token, announce              resumed by the waker's delivery
//!   EMPTY ----------------------------------> PARKED ------------------------------> EMPTY
//!     ^  \ unpark: leave a token                 | unpark: take PARKED, deliver
//!     |   v                                      v
//!     +--- NOTIFIED <----------------------------+
//!      park: take the token, return at once
//! ```
//!
//! The unparker that swaps PARKED for NOTIFIED, and only that one, delivers the thread: it
//! pushes its key on the home kernel thread's ready queue (when the unparker runs on that
//! kernel thread) or sends it to that kernel thread's inbox. The thread is PARKED only
//! between its own switch-out and that delivery, so it is delivered at most once per park,
//! and its key names it until then (a parked thread cannot finish, so its slot is not
//! reused).
//!
//! A user thread sets PARKED before it has switched out. A waker on another kernel thread
//! may deliver it in between: harmless, because only the home kernel thread resumes it, and
//! that kernel thread is busy running this very user thread until the switch-out is done.
//!
//! # Memory ordering
//!
//! The unparker's swap is `Release` and the parker's exchanges of NOTIFIED are `Acquire`,
//! so whatever the waker wrote before waking is visible to the woken thread. Delivery
//! itself goes through the ready queue (same thread) or the inbox's mutex.

use std::sync::Arc;

use crate::inbox::{Inbox, Message};
use crate::primitive::{AtomicU32, Ordering};
use crate::user_thread;

const EMPTY: u32 = 0;
const NOTIFIED: u32 = 1;
const PARKED: u32 = 2;

/// A user thread's parking state, shared with whoever may wake it.
pub(crate) struct UserParker {
    state: AtomicU32,
    /// The inbox of the kernel thread the user thread lives on (user threads never move).
    home: Arc<Inbox>,
    /// Its key in that kernel thread's table of user threads.
    key: u32,
}

impl UserParker {
    /// The parker of user thread `key` of the kernel thread whose inbox is `home`.
    pub(crate) fn new(home: Arc<Inbox>, key: u32) -> Self {
        UserParker {
            state: AtomicU32::new(EMPTY),
            home,
            key,
        }
    }

    /// The user thread itself: returns at once if a token is waiting (taking it);
    /// otherwise announces PARKED and calls `switch_out`, which returns after a delivery.
    pub(crate) fn park(&self, switch_out: impl FnOnce()) {
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        if self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            // An unpark came in between: it left NOTIFIED, and did not deliver.
            self.state.swap(EMPTY, Ordering::Acquire);
            return;
        }
        switch_out();
        // Only the unparker that took PARKED resumes us, and it left NOTIFIED.
        self.state.swap(EMPTY, Ordering::Acquire);
    }

    /// Leaves a token. Returns true if the thread was parked: the caller must then deliver
    /// it (see [`UserParker::deliver`]), exactly once.
    pub(crate) fn unpark(&self) -> bool {
        self.state.swap(NOTIFIED, Ordering::Release) == PARKED
    }

    /// Makes the user thread ready on its home kernel thread.
    fn deliver(&self) {
        if !user_thread::make_ready_here(&self.home, self.key) {
            self.home.send(Message::Wake(self.key));
        }
    }
}

/// Whatever wakes a waiting thread: a user thread's parker, or an OS thread.
#[derive(Clone)]
pub(crate) enum Unparker {
    /// A user thread of some kernel thread.
    User(Arc<UserParker>),
    /// An ordinary thread (or a kernel thread's own loop, which never waits here).
    Os(std::thread::Thread),
}

impl Unparker {
    /// The calling user thread's, or the calling OS thread's.
    pub(crate) fn current() -> Unparker {
        match user_thread::current_parker() {
            Some(parker) => Unparker::User(parker),
            None => Unparker::Os(std::thread::current()),
        }
    }

    /// Leaves a token for the thread and makes it run again if it waits.
    pub(crate) fn unpark(&self) {
        match self {
            Unparker::User(parker) => {
                if parker.unpark() {
                    parker.deliver();
                }
            }
            Unparker::Os(thread) => thread.unpark(),
        }
    }
}

/// Parks the calling user thread, or the calling OS thread, until a token is there. May
/// return spuriously; callers re-check their condition.
fn park_current() {
    if !user_thread::park_current() {
        std::thread::park();
    }
}

/// One wait: created by the thread that will wait, found and notified by the waker.
///
/// A fresh waiter per wait (rather than re-queueing the thread's parker) means a waker
/// never spends its wake on a stale queue entry of a thread that already went on.
///
/// Public so that other crates can build blocking primitives that park user threads (the
/// preload library's pthread primitives do): put a `Waiter` where the waker finds it, then
/// `wait`; the waker calls `notify`, at most once per waiter.
pub struct Waiter {
    /// Set (Release) by the waker before it unparks; read (Acquire) by the waiter.
    notified: std::sync::atomic::AtomicBool,
    unparker: Unparker,
}

impl Waiter {
    /// A waiter for the calling thread (a user thread, or an OS thread).
    pub fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            notified: std::sync::atomic::AtomicBool::new(false),
            unparker: Unparker::current(),
        })
    }

    /// Waits until [`Waiter::notify`] was called (returns at once if it was): parks the
    /// calling user thread, or the calling OS thread.
    pub fn wait(&self) {
        while !self.notified.load(std::sync::atomic::Ordering::Acquire) {
            park_current();
        }
    }

    /// Wakes the waiter. The caller holds its own `Arc`, so the waiter may return and drop
    /// its own at any point after the store.
    pub fn notify(&self) {
        self.notified.store(true, std::sync::atomic::Ordering::Release);
        self.unparker.unpark();
    }
}
