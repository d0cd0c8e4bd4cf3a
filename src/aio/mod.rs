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
//! Calls that may wait for an event (a socket read, an accept) wait in the service
//! thread's io_uring with the default `auto` backend (or `uring`): no thread is held.
//! Those that need a blocking call's exact meaning (a receive timeout or low-water mark,
//! `MSG_WAITALL`), or any with the `direct` backend, go to the runtime's blocking workers
//! (`FLEXSC_WORKERS`, default 64); when all are busy, the call runs on the thread that
//! polls it, which blocks that thread.

pub mod fs;
pub mod net;
pub(crate) mod op;

pub use op::{syscall, syscall_owning, Syscall, SyscallOwning};

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use op::Op;

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

/// Call `nr` reading into `buf` from index 0 up to its capacity: `args(pointer, capacity)`
/// makes the arguments. On success the buffer's length is the bytes read.
///
/// # Safety
/// `args` must put in no pointer but the one it is given (with at most the capacity as
/// length), and call `nr` must write at most that many bytes there and return the count.
pub(crate) async unsafe fn read_into(
    fd: &Arc<OwnedFd>,
    nr: i64,
    mut buf: Vec<u8>,
    args: impl FnOnce(u64, u64) -> [u64; 6],
) -> (io::Result<usize>, Vec<u8>) {
    let args = args(buf.as_mut_ptr() as u64, buf.capacity() as u64);
    // SAFETY: the only pointer is into `buf`'s heap block, owned by the op, which also
    // holds the descriptor open.
    let (ret, (mut buf, _fd)) = unsafe { Op::new(nr, args, (buf, Arc::clone(fd))) }.await;
    match check(ret) {
        Ok(n) => {
            // SAFETY: the call initialised the first `n` bytes (n <= capacity).
            unsafe { buf.set_len(n as usize) };
            (Ok(n as usize), buf)
        }
        Err(e) => (Err(e), buf),
    }
}

/// Call `nr` writing `buf[start..]`: `args(pointer, length)` makes the arguments.
///
/// # Safety
/// `args` must put in no pointer but the one it is given, with at most that length.
pub(crate) async unsafe fn write_from(
    fd: &Arc<OwnedFd>,
    nr: i64,
    buf: Vec<u8>,
    start: usize,
    args: impl FnOnce(u64, u64) -> [u64; 6],
) -> (io::Result<usize>, Vec<u8>) {
    let rest = &buf[start.min(buf.len())..];
    let args = args(rest.as_ptr() as u64, rest.len() as u64);
    // SAFETY: the only pointer is into `buf`'s heap block, owned by the op, which also
    // holds the descriptor open; the kernel only reads it.
    let (ret, (buf, _fd)) = unsafe { Op::new(nr, args, (buf, Arc::clone(fd))) }.await;
    (check(ret).map(|n| n as usize), buf)
}

/// Writes all of `buf` with `write(buf, done)`, which writes from index `done` on and
/// gives the buffer back, until every byte is written or a write fails.
pub(crate) async fn write_all<F, Fut>(buf: Vec<u8>, mut write: F) -> (io::Result<()>, Vec<u8>)
where
    F: FnMut(Vec<u8>, usize) -> Fut,
    Fut: std::future::Future<Output = (io::Result<usize>, Vec<u8>)>,
{
    let mut done = 0;
    let mut buf = buf;
    while done < buf.len() {
        let (res, back) = write(buf, done).await;
        buf = back;
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}
