//! # flexsc-scheduler: FlexSC-Threads for Rust programs
//!
//! M-on-N user threads that switch on a system call. One kernel thread per user core,
//! pinned, runs many user threads. When a user thread makes a system call through
//! [`syscall`], the call is posted to its kernel thread's syscall page and the user thread
//! switches out; the kernel thread runs the next ready user thread, while a service thread
//! on another core runs the posted calls in batches. When no user thread is ready, the
//! kernel thread reaps finished calls and resumes their owners; when all of them wait, it
//! spins briefly, then sleeps.
//!
//! ```text
//!   user core 0: kernel thread "flexsc-user-0"            service core 1
//!  +-------------------------------------------------+   +---------------------------+
//!  | user threads, each on its own stack             |   | service thread            |
//!  |  (user_thread.rs; stack.rs: guard page below)   |   |  (flexsc-kernel-side)     |
//!  |   u1 ready   u2 waits on e5   u3 parked   ...   |   |                           |
//!  |       | syscall(): push, switch out             |   | takes posted entries in   |
//!  |       v                                         |   | batches, runs them, marks |
//!  | scheduler loop (kernel_thread.rs)               |   | them DONE; a call that    |
//!  |   run ready -> submit once -> reap -> idle      |   | may wait for an event     |
//!  |       | push / poll                             |   | goes to a blocking worker |
//!  |       v                                         |   |                           |
//!  | syscall pages (pages.rs, over flexsc-shim)      |   |                           |
//!  |   [e0][e1] .. [e5: SUBMITTED] .. [e63]  <-------+---+-- doorbell; DONE + result |
//!  +-------------------------------------------------+   +---------------------------+
//!        ^ inbox (inbox.rs): spawns, and wakes of parked user threads, from other
//!        | kernel threads and ordinary threads; the futex word the loop sleeps on
//! ```
//!
//! ## Where each piece lives
//!
//! - [`scheduler`](Scheduler): the builder, the layout of cores, the handle ([`spawn`] from
//!   outside, [`Scheduler::block_on`], [`Scheduler::wait`]);
//! - `kernel_thread`: the loop of one kernel thread: run, submit, reap, idle;
//! - `user_thread`: a user thread as a coroutine, and how it switches out;
//! - `syscall`: [`syscall`] and [`sleep`];
//! - `pages`: a kernel thread's syscall pages (one `Submitter` each);
//! - `inbox`: cross-thread messages and the sleep/wake handshake (loom-modelled);
//! - `park`: parking user threads and OS threads alike (loom-modelled);
//! - [`sync`]: [`Mutex`](sync::Mutex), [`Condvar`](sync::Condvar), [`channel`](sync::channel);
//! - `join`: [`spawn`] and [`JoinHandle`];
//! - `stack`, `overflow`: guarded stacks, and the SIGSEGV handler that reports an overflow;
//! - [`executor`]: the async executor for the futures of `flexsc::fs` and `flexsc::net`
//!   (`block_on`, `spawn`, a `Runtime` of worker threads); separate from the user threads;
//! - `sys`, `primitive`: the OS calls, and the atomics loom swaps out.
//!
//! ## Using it
//!
//! ```no_run
//! use flexsc_scheduler::{spawn, syscall, Scheduler};
//!
//! let scheduler = Scheduler::builder().build()?;
//! let total = scheduler.block_on(|| {
//!     let workers: Vec<_> = (0..100)
//!         // SAFETY: getppid takes no arguments.
//!         .map(|_| spawn(|| unsafe { syscall(libc::SYS_getppid, [0; 6]) }))
//!         .collect();
//!     workers.into_iter().map(|w| w.join().unwrap()).sum::<i64>()
//! });
//! # let _ = total;
//! # Ok::<(), flexsc_scheduler::BuildError>(())
//! ```
//!
//! ## What a user thread must not assume
//!
//! - User threads are not preempted: one that computes without a system call or a yield
//!   keeps its kernel thread.
//! - `thread_local!` values, `std::thread::current()` and the thread id belong to the
//!   kernel thread, which its user threads share, unless the spawner gives each user
//!   thread TLS of its own through a [`SwitchHook`] (FlexSC-Threads switched the TLS
//!   register per user thread; the preload library's M-on-N mode does, with a glibc TCB
//!   per user thread). A user thread never moves to another kernel thread.
//! - A blocking call made some other way (through libc, `std::fs`, `std::thread::sleep`,
//!   a `std::sync::Mutex`) blocks the kernel thread and all its user threads; so does a
//!   call that may wait for an event when no service thread runs (one usable core), or
//!   when every blocking worker is busy.
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

pub mod executor;
mod inbox;
mod join;
mod kernel_thread;
mod overflow;
mod pages;
mod park;
mod primitive;
mod scheduler;
mod stack;
pub mod sync;
mod sys;
mod syscall;
mod user_thread;

#[cfg(all(test, loom))]
mod loom_tests;

pub use flexsc_kernel_side::{Mode, Stats};
pub use join::{spawn, JoinHandle};
pub use overflow::STACK_OVERFLOW_MESSAGE;
pub use pages::MAX_PAGES_PER_KERNEL_THREAD;
pub use park::Waiter;
pub use scheduler::{
    BuildError, Builder, Layout, Scheduler, SwitchHook, DEFAULT_IDLE_SPIN, DEFAULT_MAX_BLOCKING_WORKERS,
    DEFAULT_STACK_SIZE,
};
pub use stack::MIN_STACK_SIZE;
pub use syscall::{sleep, syscall, syscall_raw};
pub use user_thread::{current_stack, in_user_thread, yield_now};

#[cfg(all(test, not(loom)))]
mod tests {
    /// The handles are meant to be shared and sent like their std counterparts.
    #[test]
    fn handles_are_send_and_sync_like_std() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<crate::Scheduler>();
        send_sync::<crate::JoinHandle<u32>>();
        send_sync::<crate::sync::Mutex<u32>>();
        send_sync::<crate::sync::Condvar>();
        send::<crate::sync::Sender<u32>>();
        send::<crate::sync::Receiver<u32>>();
    }
}
