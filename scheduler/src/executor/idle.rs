//! How idle executor workers sleep and how a new task wakes one.
//!
//! ```text
//!   worker, out of tasks                     waker
//!   sleeping[i] := true                      lock queue; push task; unlock
//!   lock queue; empty?; unlock               some sleeping[i]? then unpark(i)
//!   if it was empty: park()
//!   sleeping[i] := false
//! ```
//!
//! # Memory ordering
//!
//! The queue's lock orders the two sides, so the flag needs no stronger ordering than
//! `Relaxed`. If the worker's look at the queue comes first, its flag store happens
//! before its unlock, which the waker's lock acquires, so the waker's later load sees the
//! flag and unparks it (a park token survives an unpark that comes before the park). If
//! the waker's push comes first, the worker's look finds the task. This holds only while
//! `has_work` takes the queue's lock; the loom model (`loom_executor_idle_never_loses_a_task`)
//! checks the handshake as written.
//!
//! Each flag sits on a cache line of its own: wakers only read it, and it is written
//! twice per sleep, so a busy worker's flag never bounces between cores.

use crossbeam_utils::CachePadded;

use crate::primitive::{AtomicBool, Ordering};

/// The sleep flags of a runtime's workers.
pub(crate) struct Idle {
    sleeping: Box<[CachePadded<AtomicBool>]>,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Self {
        Idle {
            sleeping: (0..workers)
                .map(|_| CachePadded::new(AtomicBool::new(false)))
                .collect(),
        }
    }

    /// Worker `i`, with no task in hand: parks unless `has_work` (which must look at the
    /// queue under its lock) says a task came.
    pub(crate) fn sleep(&self, i: usize, has_work: impl Fn() -> bool, park: impl FnOnce()) {
        self.sleeping[i].store(true, Ordering::Relaxed);
        if !has_work() {
            park();
        }
        self.sleeping[i].store(false, Ordering::Relaxed);
    }

    /// After queueing a task (under the queue's lock, released since): unparks one
    /// sleeping worker, if one sleeps.
    pub(crate) fn wake_one(&self, unpark: impl FnOnce(usize)) {
        if let Some(i) = self.sleeping.iter().position(|s| s.load(Ordering::Relaxed)) {
            unpark(i);
        }
    }
}
