//! # flexsc: exception-less system calls for stock Linux
//!
//! A thread posts its system calls into a syscall page of its own; service threads pinned
//! to other cores run them in batches and post the results back (Soares and Stumm,
//! "FlexSC", OSDI 2010), here without a kernel patch and without privileges.
//!
//! ```no_run
//! // One call, through the process-wide runtime (configured by FLEXSC_* variables).
//! let ppid = unsafe { flexsc::syscall(libc::SYS_getppid, [0; 6]) };
//! assert!(ppid > 0);
//!
//! // A runtime of your own, and a batch.
//! let rt = flexsc::Runtime::builder().workers(8).build().unwrap();
//! let mut me = rt.submitter().unwrap();
//! let calls = [flexsc::Call::new(libc::SYS_getppid, [0; 6]); 16];
//! let mut results = [0i64; 16];
//! unsafe { me.call_batch(&calls, &mut results) };
//! ```
//!
//! Async: futures whose work is a posted call ([`aio::syscall`], [`fs`], [`net`]), run
//! by [`block_on`] and [`spawn`] ([`executor`]) or by any other executor, tokio included.
//!
//! The crates underneath: [`flexsc_shim`] (the pages and the submit side),
//! [`flexsc_kernel_side`] (the service threads) and [`flexsc_scheduler`] (user threads
//! that switch on a system call, re-exported as [`thread`] and [`sync`]).
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

pub mod aio;
pub mod cli;
pub mod global;

pub use aio::{fs, net};
pub use flexsc_scheduler::executor::{self, block_on, spawn};

/// User-level threads that switch on a system call (FlexSC-Threads): see
/// [`flexsc_scheduler`]. Inside one, [`syscall`] posts the call and switches to another
/// user thread.
pub mod thread {
    pub use flexsc_scheduler::{
        in_user_thread, sleep, spawn, yield_now, Builder, JoinHandle, Layout, Scheduler,
    };
}

pub use flexsc_scheduler::sync;

pub use flexsc_kernel_side::{Builder, Config, ConfigError, Mode, Runtime, Stats, SyscallStats};
pub use flexsc_shim::{table, Call, Class, Push, RegisterError, Submitter, Ticket};
pub use global::{global, syscall, syscall_batch};

/// Turns a raw result (value or negated errno) into an `io::Result`.
pub fn check(ret: i64) -> std::io::Result<i64> {
    flexsc_shim::sys::check(ret)
}
