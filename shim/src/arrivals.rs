//! Arrivals: the threads a runtime starts count themselves, and the thread that starts
//! them waits, for a bounded time, until they all have.
//!
//! `Runtime::start_and_wait_until_running` (kernel-side) uses it for a start inside a
//! library's constructor, so that its threads' own starts (std's, and a sanitizer's
//! interceptors they call) are over before the next library's constructor runs. The wait
//! and the wake are raw futex calls: a
//! channel or a std `Condvar` would wake through libc's `syscall`, which an interposing
//! library routes, and a call routed from inside a start comes back to that start.

use std::time::{Duration, Instant};

use crate::primitive::{futex_wait_for, futex_wake, AtomicU32, Ordering};

/// A count of arrived threads.
///
/// Orderings: [`Arrivals::arrive`] increments with Release and then wakes the waiters;
/// [`Arrivals::wait_for`] reads with Acquire. So whatever a thread did before it arrived
/// happens before the waiter returns having counted it. The wake cannot be lost: the
/// waiter sleeps only while the count still holds the value it read (the futex's check),
/// and an arrival changes the count before it wakes.
#[derive(Debug, Default)]
pub struct Arrivals {
    count: AtomicU32,
}

impl Arrivals {
    /// No thread arrived yet.
    pub fn new() -> Arrivals {
        Arrivals {
            count: AtomicU32::new(0),
        }
    }

    /// The calling thread has arrived.
    pub fn arrive(&self) {
        self.count.fetch_add(1, Ordering::Release);
        futex_wake(&self.count, i32::MAX as u32);
    }

    /// Waits until `n` threads have arrived, or `limit` has passed. Returns how many had.
    pub fn wait_for(&self, n: u32, limit: Duration) -> u32 {
        let deadline = Instant::now() + limit;
        loop {
            let arrived = self.count.load(Ordering::Acquire);
            if arrived >= n {
                return arrived;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return arrived;
            }
            futex_wait_for(&self.count, arrived, left);
        }
    }
}
