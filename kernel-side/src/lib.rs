//! # flexsc-kernel-side: the service threads
//!
//! The "kernel side" of exception-less system calls, without a kernel patch: service
//! threads pinned to their own cores find posted entries through the doorbell, run them
//! in batches, and mark them DONE. Calls that may wait for an event go to a bounded,
//! growing pool of blocking workers, so one slow call never holds up a batch.
//!
//! - [`runtime`]: the runtime, its builder and statistics;
//! - [`service`]: one service thread's loop;
//! - [`execute`]: how one claimed call runs (inline, non-blocking attempt, hand-off);
//! - [`pool`]: the blocking workers;
//! - [`uring`]: the io_uring backend (one `io_uring_enter` for a batch's file calls);
//! - [`choice`]: the auto backend's per-batch choice, from measured costs;
//! - [`config`]: `FLEXSC_*` variables and their valid forms;
//! - [`diag`]: notes on standard error, only while fd 2 is still the program's stderr;
//! - [`signals`]: the signal mask of the runtime's own threads;
//! - [`census`]: the runtime's threads do not count as the program's (glibc ends the process
//!   when its last thread ends).
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

pub mod census;
pub mod choice;
pub mod config;
pub mod diag;
pub mod execute;
pub mod pool;
pub mod relief;
pub mod runtime;
pub mod service;
pub mod signals;
mod spawn;
pub mod uring;

pub use config::{Config, ConfigError};
pub use runtime::{Builder, Mode, Runtime, Stats, SyscallStats};
pub use service::Blocking;
pub use signals::is_runtime_thread;
pub use uring::Backend;
