//! An unbounded multi-producer, single-consumer channel whose receiver parks user threads.
//!
//! One `std::sync::Mutex` guards the queue, the receiver's waiter and the counts; it is
//! held to push or pop one message, never across a switch. A sender that finds a waiting
//! receiver takes its waiter under the lock and notifies it after unlocking, so the
//! receiver (perhaps on another kernel thread) does not wake into a held lock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::mpsc::{RecvError, SendError, TryRecvError};
use std::sync::{Arc, Mutex};

use crate::park::Waiter;
use crate::primitive::lock_std as lock;

/// Makes a channel: any number of [`Sender`]s (clone it), one [`Receiver`].
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Channel {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            receiver_waiting: None,
            senders: 1,
            receiver_alive: true,
        }),
    });
    (
        Sender {
            channel: Arc::clone(&shared),
        },
        Receiver { channel: shared },
    )
}

struct Channel<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    queue: VecDeque<T>,
    /// Set by a receiver that found the queue empty; taken by the next sender.
    receiver_waiting: Option<Arc<Waiter>>,
    senders: usize,
    receiver_alive: bool,
}

/// The sending half of a [`channel`].
pub struct Sender<T> {
    channel: Arc<Channel<T>>,
}

/// The receiving half of a [`channel`].
pub struct Receiver<T> {
    channel: Arc<Channel<T>>,
}

impl<T> Sender<T> {
    /// Queues `value`, waking the receiver if it waits. `Err` gives the value back if the
    /// receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let waiter = {
            let mut state = lock(&self.channel.state);
            if !state.receiver_alive {
                return Err(SendError(value));
            }
            state.queue.push_back(value);
            state.receiver_waiting.take()
        };
        if let Some(waiter) = waiter {
            waiter.notify();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.channel.state).senders += 1;
        Sender {
            channel: Arc::clone(&self.channel),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waiter = {
            let mut state = lock(&self.channel.state);
            state.senders -= 1;
            if state.senders == 0 {
                state.receiver_waiting.take()
            } else {
                None
            }
        };
        // The last sender: a waiting receiver must learn that nothing more will come.
        if let Some(waiter) = waiter {
            waiter.notify();
        }
    }
}

impl<T> Receiver<T> {
    /// Takes the oldest message, parking the calling user thread (or blocking the calling
    /// thread) while there is none. `Err` once the queue is empty and every sender is gone.
    pub fn recv(&self) -> Result<T, RecvError> {
        loop {
            let waiter = {
                let mut state = lock(&self.channel.state);
                if let Some(value) = state.queue.pop_front() {
                    return Ok(value);
                }
                if state.senders == 0 {
                    return Err(RecvError);
                }
                let waiter = Waiter::new();
                state.receiver_waiting = Some(Arc::clone(&waiter));
                waiter
            };
            waiter.wait();
        }
    }

    /// Takes the oldest message if there is one.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = lock(&self.channel.state);
        match state.queue.pop_front() {
            Some(value) => Ok(value),
            None if state.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// An iterator that receives until every sender is gone.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let queued = {
            let mut state = lock(&self.channel.state);
            state.receiver_alive = false;
            std::mem::take(&mut state.queue)
        };
        // Dropped outside the lock: a message's destructor may use the channel.
        drop(queued);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
