//! Spawning a user thread and joining it.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::kernel_thread;
use crate::park::Waiter;
use crate::primitive::lock_std as lock;

/// An owned permission to join a user thread: wait for it to end and take its result.
/// Dropping it detaches the thread, which runs on.
#[must_use = "dropping a JoinHandle detaches the user thread; join it to wait for its result"]
pub struct JoinHandle<T> {
    state: Arc<JoinState<T>>,
}

/// Where a user thread leaves its result and finds who waits for it.
struct JoinState<T> {
    slot: Mutex<JoinSlot<T>>,
}

struct JoinSlot<T> {
    result: Option<std::thread::Result<T>>,
    /// Set by a joiner that found no result, taken by the finishing thread.
    joiner: Option<Arc<Waiter>>,
}

impl<T> JoinHandle<T> {
    /// Waits for the user thread to end and returns what its closure returned, or `Err`
    /// with the panic's payload if it panicked. Inside a user thread this parks the user
    /// thread, so others keep running on its kernel thread; elsewhere it blocks the
    /// calling thread.
    pub fn join(self) -> std::thread::Result<T> {
        loop {
            let waiter = {
                let mut slot = lock(&self.state.slot);
                if let Some(result) = slot.result.take() {
                    return result;
                }
                let waiter = Waiter::new();
                slot.joiner = Some(Arc::clone(&waiter));
                waiter
            };
            waiter.wait();
        }
    }

    /// Whether the user thread has ended (its result is waiting for `join`).
    pub fn is_finished(&self) -> bool {
        lock(&self.state.slot).result.is_some()
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Wraps `f` as a user thread's body: it runs `f`, catches a panic, and hands the result
/// to the returned handle.
pub(crate) fn package<F, T>(f: F) -> (JoinHandle<T>, Box<dyn FnOnce() + Send>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let state = Arc::new(JoinState {
        slot: Mutex::new(JoinSlot {
            result: None,
            joiner: None,
        }),
    });
    let finished = Arc::clone(&state);
    let body = Box::new(move || {
        // The panic stays on the user thread's stack; the loop never sees it.
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        let joiner = {
            let mut slot = lock(&finished.slot);
            slot.result = Some(result);
            slot.joiner.take()
        };
        if let Some(joiner) = joiner {
            joiner.notify();
        }
    });
    (JoinHandle { state }, body)
}

/// Spawns a user thread on the scheduler of the calling user thread, on the next kernel
/// thread in turn, and returns its handle.
///
/// # Panics
/// Outside a user thread (use [`Scheduler::spawn`](crate::Scheduler::spawn) there), and
/// when its stack cannot be mapped (as `std::thread::spawn` panics when it cannot start a
/// thread).
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let scheduler = crate::user_thread::in_user_thread()
        .then(|| kernel_thread::with_local(|local| Arc::clone(&local.scheduler)))
        .flatten();
    match scheduler {
        Some(scheduler) => scheduler
            .spawn(f)
            .unwrap_or_else(|e| panic!("flexsc_scheduler::spawn: cannot map a user thread's stack: {e}")),
        None => panic!("flexsc_scheduler::spawn called outside a user thread (use Scheduler::spawn)"),
    }
}
