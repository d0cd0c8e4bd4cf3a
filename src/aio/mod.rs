//! The async API: futures whose work is a system call posted to the syscall pages.
//!
//! - [`syscall`], [`syscall_owning`]: any system call as a future;
//! - [`fs`]: files (open, read_at, write_at, read_to_end, metadata, sync, close);
//! - [`net`]: TCP (accept, connect, read, write).
//!
//! Every future here is executor-agnostic: the service thread that completes a call wakes
//! the task that waits for it, so they run under [`block_on`](crate::block_on) and
//! [`executor::Runtime`](crate::executor::Runtime), and under tokio alike.
//!
//! **Cancellation is safe.** A future owns its buffers (the API takes and gives back
//! `Vec<u8>`, as io_uring runtimes do) and a reference to the descriptor it uses. Dropped
//! while its call is in flight, it hands both to the runtime, which keeps them until the
//! call completes; then it closes whatever descriptor the call opened (an `open`'s,
//! an `accept`'s) and frees the buffers. The call itself still runs: a posted system call
//! cannot be taken back.
//!
//! Calls that may wait for an event (a socket read, an accept) are run by the runtime's
//! blocking workers (`FLEXSC_WORKERS`, default 64) after a non-blocking attempt; when all
//! are busy, the call runs on the thread that polls it, which blocks that thread.

pub mod fs;
pub mod net;
pub(crate) mod op;

pub use op::{syscall, syscall_owning, Syscall, SyscallOwning};

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The raw result as an `io::Result`.
pub(crate) fn check(ret: i64) -> io::Result<i64> {
    flexsc_shim::sys::check(ret)
}

/// On abandon: closes the descriptor a call returned.
pub(crate) fn close_returned_fd<T>(ret: i64, _resources: T) {
    if ret >= 0 {
        // SAFETY: the call returned this new descriptor, and nobody took ownership of it.
        drop(unsafe { OwnedFd::from_raw_fd(ret as i32) });
    }
}

pub(crate) fn raw(fd: &OwnedFd) -> u64 {
    fd.as_raw_fd() as u64
}
