//! The handle on a spawned task's result.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Awaits a task spawned with [`Runtime::spawn`](super::Runtime::spawn) or
/// [`spawn`](super::spawn): its output, or the panic that ended it (as
/// [`std::thread::JoinHandle::join`] does). Dropping the handle detaches the task.
pub struct JoinHandle<T> {
    state: Arc<Mutex<JoinState<T>>>,
}

struct JoinState<T> {
    result: Option<std::thread::Result<T>>,
    waiter: Option<Waker>,
}

/// The task's end of a [`JoinHandle`]. Dropped without completing (the task's future
/// was dropped: its runtime shut down), it completes the handle with an error.
pub(crate) struct Completer<T> {
    state: Option<Arc<Mutex<JoinState<T>>>>,
}

pub(crate) fn pair<T>() -> (Completer<T>, JoinHandle<T>) {
    let state = Arc::new(Mutex::new(JoinState {
        result: None,
        waiter: None,
    }));
    (
        Completer {
            state: Some(Arc::clone(&state)),
        },
        JoinHandle { state },
    )
}

impl<T> Completer<T> {
    pub(crate) fn complete(mut self, result: std::thread::Result<T>) {
        self.finish(result);
    }

    fn finish(&mut self, result: std::thread::Result<T>) {
        let Some(state) = self.state.take() else {
            return;
        };
        let waiter = {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            state.result = Some(result);
            state.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        self.finish(Err(Box::new(
            "flexsc: the task was dropped before it finished: its runtime shut down",
        )));
    }
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .result
            .is_some()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = std::thread::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                match &mut state.waiter {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}
