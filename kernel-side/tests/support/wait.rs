//! Bounded waits for the kernel-side tests: a test that would hang fails instead. Shared by
//! the test files (`#[path = "support/wait.rs"] mod wait;`); each passes its own limit.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Waits until `done()` holds; fails the test after `limit`.
pub fn wait_until_within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Joins a thread, failing the test (instead of hanging) if it does not finish within
/// `limit`; a panic in the thread goes on here.
pub fn join_within<T>(limit: Duration, handle: JoinHandle<T>, what: &str) -> T {
    wait_until_within(limit, what, || handle.is_finished());
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
