//! A spawned task: its future, and the state that makes a wake schedule it exactly once.
//!
//! ```text
//!   IDLE --wake--> SCHEDULED --worker--> RUNNING --Pending--> IDLE
//!                     ^                    |  \--Ready/panic--> DONE
//!                     +---- wake while running: RUNNING -> NOTIFIED, re-queued after
//! ```
//!
//! # Memory ordering
//!
//! The state word is changed by CAS only. A wake that moves IDLE to SCHEDULED pushes the
//! task to the queue (whose lock orders the hand-over); the worker's `Acquire` CAS to
//! RUNNING pairs with the `Release` CAS that ended the previous poll, so one poll's writes
//! to the future happen before the next poll. The future itself sits behind a mutex that
//! only a RUNNING task's worker takes, so it is never contended.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};

use super::Shared;

const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) struct Task {
    state: AtomicU8,
    future: Mutex<Option<BoxFuture>>,
    runtime: Weak<Shared>,
}

impl Task {
    /// A task, already SCHEDULED: the caller queues it.
    pub(crate) fn new(future: BoxFuture, runtime: &Arc<Shared>) -> Arc<Task> {
        Arc::new(Task {
            state: AtomicU8::new(SCHEDULED),
            future: Mutex::new(Some(future)),
            runtime: Arc::downgrade(runtime),
        })
    }

    /// Worker: polls a SCHEDULED task once. A panic ends the task (the future reports
    /// it to its join handle itself: see `spawn`).
    pub(crate) fn run(self: Arc<Self>) {
        if self
            .state
            .compare_exchange(SCHEDULED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let waker = Waker::from(Arc::clone(&self));
        let mut cx = Context::from_waker(&waker);
        let done = {
            let mut slot = self.future.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_mut() {
                Some(future) => {
                    let ready = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
                    if !matches!(ready, Ok(Poll::Pending)) {
                        // Drop the future now: it may hold buffers and descriptors.
                        *slot = None;
                        true
                    } else {
                        false
                    }
                }
                None => true,
            }
        };
        if done {
            self.state.store(DONE, Ordering::Release);
            return;
        }
        if self
            .state
            .compare_exchange(RUNNING, IDLE, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // Woken while it ran: run it again, after the tasks already queued.
            self.state.store(SCHEDULED, Ordering::Release);
            self.queue();
        }
    }

    fn queue(self: Arc<Self>) {
        // If the runtime is gone, the task never runs again; dropping the last waker
        // drops its future.
        if let Some(runtime) = self.runtime.upgrade() {
            runtime.push(self);
        }
    }

    fn schedule(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let next = match s {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if s == IDLE {
            Arc::clone(self).queue();
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.schedule();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.schedule();
    }
}
