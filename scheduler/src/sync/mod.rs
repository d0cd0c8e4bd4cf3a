//! Blocking primitives for user threads: a [`Mutex`], a [`Condvar`] and an unbounded
//! [`channel`]. Waiting parks the user thread, not its kernel thread, so the kernel thread
//! runs its other user threads meanwhile; they work across kernel threads, and with
//! ordinary threads too (which block as usual).
//!
//! Each keeps its waiters in a short queue under a `std::sync::Mutex` that guards only a
//! push or a pop and is never held across a switch, so it cannot deadlock user threads of
//! one kernel thread against each other. Waiting goes through `park::Waiter`.
//!
//! Do not hold a `std::sync::Mutex` (or a `RefCell` borrow of a `thread_local!`) across a
//! call that may switch (any system call through [`syscall`](crate::syscall), `join`, or
//! these primitives): another user thread of the same kernel thread may then block the
//! kernel thread on it, or see the borrow.

mod channel;
mod condvar;
mod mutex;

pub use channel::{channel, Receiver, Sender};
pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use std::sync::mpsc::{RecvError, SendError, TryRecvError};
