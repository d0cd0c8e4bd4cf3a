//! The synchronisation primitives of the cross-thread paths (the inbox's sleep/wake
//! handshake and the user-thread parker), in one place so that the `loom` model checker can
//! swap in its own under `RUSTFLAGS="--cfg loom"`, as in `flexsc-shim`.
//!
//! The futex is here too: under loom it is modelled by a mutex and a condition variable with
//! the futex's contract (a wait returns at once unless the word still holds the expected
//! value; a wake after a change of the word is never lost). The model ignores timeouts: the
//! handshake must be correct without them.

use std::time::Duration;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Locks `mutex`. A panic while it was held (never inside this crate: the critical
/// sections only move values in and out of queues) does not make its data unusable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Locks a `std::sync::Mutex` (never modelled: the queues of the blocking primitives),
/// with the same tolerance of poisoning as [`lock`].
pub(crate) fn lock_std<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sleeps while `word` holds `expected`, for at most `timeout` if given. May return
/// spuriously; callers re-check.
#[cfg(not(loom))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    crate::sys::futex_wait(word, expected, timeout);
}

/// Wakes up to `count` threads sleeping on `word`.
#[cfg(not(loom))]
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) {
    crate::sys::futex_wake(word, count);
}

#[cfg(loom)]
loom::lazy_static! {
    static ref FUTEX: (loom::sync::Mutex<()>, loom::sync::Condvar) =
        (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
}

#[cfg(loom)]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
    let guard = FUTEX.0.lock().unwrap();
    if word.load(Ordering::SeqCst) == expected {
        drop(FUTEX.1.wait(guard).unwrap());
    }
}

#[cfg(loom)]
pub(crate) fn futex_wake(_word: &AtomicU32, _count: u32) {
    let _guard = FUTEX.0.lock().unwrap();
    FUTEX.1.notify_all();
}
