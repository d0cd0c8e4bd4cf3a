//! A mutex that parks user threads.
//!
//! # The state word
//!
//! The three-state futex mutex (Drepper, "Futexes Are Tricky", mutex 3), with a queue of
//! waiters in place of the futex:
//!
//! - UNLOCKED -> LOCKED by a CAS: the uncontended lock, no queue touched.
//! - A thread that finds it locked takes the queue's lock, swaps in CONTENDED (getting the
//!   lock if the old state was UNLOCKED), otherwise queues a fresh `Waiter` and parks.
//! - Unlock swaps in UNLOCKED; if the old state was CONTENDED it pops one waiter and wakes
//!   it. The woken thread competes again, swapping in CONTENDED, so the state says
//!   CONTENDED for as long as the queue may hold someone.
//!
//! A waiter's swap and queue push happen under the queue's lock, and an unlocker pops
//! under it, so an unlock that saw CONTENDED finds the waiter that caused it. An unlock
//! that saw LOCKED raced with no waiter: any waiter's swap came later and took the lock
//! itself (UNLOCKED) or left CONTENDED for the next unlock.
//!
//! # Memory ordering
//!
//! Taking the lock (the CAS or the swap that returns UNLOCKED) is `Acquire`; releasing it
//! (the unlock swap) is `Release`: the data written under the lock by one holder is
//! visible to the next.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::park::Waiter;
use crate::primitive::lock_std as lock;

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

/// How many times a locker re-reads a held lock before it queues: the holder may be a
/// user thread of another kernel thread about to release it.
const SPINS: u32 = 64;

/// A mutual exclusion lock for user threads. Unlike `std::sync::Mutex` it has no
/// poisoning: a panic while it is held unlocks it.
pub struct Mutex<T: ?Sized> {
    state: AtomicU32,
    waiters: std::sync::Mutex<VecDeque<Arc<Waiter>>>,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `T` to one thread at a time, so it may be shared
// and sent whenever `T` may be sent (as std's).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Access to the data of a locked [`Mutex`]; unlocks when dropped.
#[must_use = "the mutex unlocks at once if the guard is not kept"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Not `Send`, as std's guard: it is released where it was taken.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex {
            state: AtomicU32::new(UNLOCKED),
            waiters: std::sync::Mutex::new(VecDeque::new()),
            data: UnsafeCell::new(value),
        }
    }

    /// The data, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks it, parking the calling user thread (or blocking the calling thread) until
    /// it is free.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        self.guard()
    }

    /// Locks it if it is free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| self.guard())
    }

    /// The data, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        }
    }

    #[cold]
    fn lock_contended(&self) {
        for _ in 0..SPINS {
            if self.state.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .state
                    .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            std::hint::spin_loop();
        }
        loop {
            let waiter = {
                let mut waiters = lock(&self.waiters);
                if self.state.swap(CONTENDED, Ordering::Acquire) == UNLOCKED {
                    return;
                }
                let waiter = Waiter::new();
                waiters.push_back(Arc::clone(&waiter));
                waiter
            };
            waiter.wait();
        }
    }

    fn unlock(&self) {
        if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            let next = lock(&self.waiters).pop_front();
            if let Some(waiter) = next {
                waiter.notify();
            }
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for `Condvar`).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no one else accesses the data.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes this borrow unique.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
