//! # flexsc-shim: the syscall pages
//!
//! The application side of exception-less system calls. A thread posts a call into a
//! 64-byte [`Entry`] of its own [`SyscallPage`], rings the [`Doorbell`], and later reaps
//! the result; service threads (in `flexsc-kernel-side`) find posted entries through the
//! doorbell, run them in batches and mark them DONE.
//!
//! ```text
//!   app thread ──post──> SyscallPage (64 × Entry) ──doorbell──> service thread
//!        ^                                                            │
//!        └───────────────────── DONE + result ────────────────────────┘
//! ```
//!
//! - [`entry`]: the entry and its state machine, with the memory orderings;
//! - [`page`]: a thread's page and its counters;
//! - [`doorbell`]: finding work without sweeping, and the sleep/wake handshake;
//! - [`shared`]: what one runtime's threads share;
//! - [`submitter`]: the submit/reap API of one thread;
//! - [`async_submit`]: the submit/reap API of futures, shared by threads;
//! - [`arrivals`]: a runtime's start waiting until its threads run;
//! - [`notify`]: how a completer wakes the task waiting for an asynchronous call;
//! - [`owed`]: the signal a call owes its caller (SIGPIPE, SIGXFSZ), carried with its result;
//! - [`table`]: which calls may be delegated, for every x86-64 syscall number;
//! - [`help`]: which calls a poster whose thread has other work may run itself;
//! - [`resume`]: finishing a transfer that stopped part-way;
//! - [`sys`]: the raw `syscall` instruction, mappings, futex, a thread's state.
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

pub mod arrivals;
pub mod async_submit;
pub mod doorbell;
pub mod entry;
pub mod help;
pub mod notify;
pub mod owed;
pub mod page;
mod page_table;
pub(crate) mod primitive;
pub mod resume;
pub mod shared;
pub mod submitter;
pub mod sys;
pub mod table;

#[cfg(all(test, loom))]
mod loom_tests;

pub use arrivals::Arrivals;
pub use async_submit::{AsyncPush, AsyncSubmitter, Cleanup, InFlight};
pub use doorbell::Doorbell;
pub use entry::{Entry, Waited};
pub use page::SyscallPage;
pub use shared::{
    RegisterError, ServiceProgress, Shared, StuckWatch, SubmitOptions, HELP_BACKLOG, STUCK_AFTER,
};
pub use submitter::{Call, Push, Submitter, Ticket, TAKE_BACK_AFTER};
pub use table::Class;
