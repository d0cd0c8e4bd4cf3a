//! A condition variable that parks user threads.
//!
//! A waiter queues a fresh `Waiter` while it still holds the mutex, then unlocks and
//! parks. A notifier pops waiters and notifies them. Because the waiter is queued before
//! the mutex is released, a notify made after the waiter checked its condition (under the
//! mutex) finds it: no wake-up is lost. The queue's `std::sync::Mutex` orders the push
//! before the pop; the waiter's `notified` flag (Release/Acquire, see `park`) orders the
//! notifier's writes before the waiter's return.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use crate::park::Waiter;
use crate::primitive::lock_std as lock;
use crate::sync::MutexGuard;

/// A condition variable for user threads, used with [`Mutex`](crate::sync::Mutex).
/// Wake-ups are not spurious in this implementation, but callers should re-check their
/// condition all the same (another thread may have changed it first), or use
/// [`Condvar::wait_while`].
#[derive(Default)]
pub struct Condvar {
    waiters: std::sync::Mutex<VecDeque<Arc<Waiter>>>,
}

impl Condvar {
    /// A condition variable with no waiters.
    pub fn new() -> Self {
        Condvar::default()
    }

    /// Unlocks the guard's mutex, waits for a notification, and locks it again.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.mutex();
        let waiter = Waiter::new();
        lock(&self.waiters).push_back(Arc::clone(&waiter));
        drop(guard);
        waiter.wait();
        mutex.lock()
    }

    /// Waits while `condition` holds (checked under the lock), then returns the guard.
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Wakes one waiter, if any.
    pub fn notify_one(&self) {
        let next = lock(&self.waiters).pop_front();
        if let Some(waiter) = next {
            waiter.notify();
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        let all = std::mem::take(&mut *lock(&self.waiters));
        for waiter in all {
            waiter.notify();
        }
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
