//! How a service thread runs one claimed call.
//!
//! - `Delegate` calls run inline, in the batch, except the calls made to wait for the
//!   storage device (`fsync` and kin, populating memory or the page cache from a file:
//!   `table::waits_for_the_device`). Those go to a blocking worker, so that the rest of
//!   the batch, and every other thread's calls, do not wait behind the device. A `pread64`
//!   of data that is not cached still waits inline: trying each one first with
//!   `RWF_NOWAIT`, as a poster that helps does (`flexsc_shim::help`), made every cached
//!   4 KiB read here ~115 ns slower (`hotpath batch64-direct`: 608 against 725 ns per
//!   call). The io_uring backend sends reads to the ring, whose workers wait instead, and
//!   parks an `fsync` or `fdatasync` there rather than wake a worker of ours.
//! - While the service thread holds calls that only it can finish (parked in its ring,
//!   which it alone reaps, or claimed for the ring's batch: `ServiceThread::holds_others`),
//!   an open of a FIFO or of a device that may wait for another party (`open_may_wait`)
//!   goes to a worker too: inline, it would hold up every one of them while it waits, and
//!   deadlock the process if what it waits for waits for one of them.
//! - `Block` calls may wait for an event. Where a non-blocking form exists
//!   (`RWF_NOWAIT` for the read/write family, `MSG_DONTWAIT` for sockets, a zero timeout
//!   for poll and epoll_wait),
//!   the service thread tries it first: most calls find their data ready and finish
//!   inline. Otherwise the call goes to a blocking worker, which runs the original call,
//!   or, after a partial non-blocking transfer, the rest of it, so the caller sees what one
//!   blocking call would have returned.
//! - Anything else (a number that must run on its caller, or that Linux does not define)
//!   can only be here because the page was written outside the API: it gets -ENOSYS, as
//!   the kernel answers an unknown number, and never runs on the wrong thread.

use flexsc_shim::resume::{iov_total, resume, Resume};
use flexsc_shim::sys::syscall6;
use flexsc_shim::table::{classify, waits_for_the_device, Class};

/// What the service thread does with a call after its inline attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Finished: complete the entry with this result.
    Done(i64),
    /// Hand to a blocking worker, which runs `Resume`.
    HandOff(Resume),
}

const EAGAIN: i64 = -(libc::EAGAIN as i64);
const EOPNOTSUPP: i64 = -(libc::EOPNOTSUPP as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);
const RWF_NOWAIT: u64 = 0x8;

/// Runs or starts one claimed call on the service thread.
///
/// # Safety
/// The call runs with the process's privileges on this thread: the caller vouches that it
/// was posted through the submit API by its owner (see `flexsc_shim::Submitter::push`).
// Inlined into the pass: out of line (as the pass grew), batches of 64 preads on the
// direct backend took ~20% longer per call (`hotpath batch64-direct`, alternating runs:
// 1170 against 930 ns), back to parity inlined.
#[inline]
pub unsafe fn run(nr: u32, args: [u64; 6]) -> Step {
    let nr = nr as u64;
    match classify(nr, &args) {
        // SAFETY: forwarded from this function's contract.
        Class::Delegate => unsafe { delegate(nr, args) },
        // SAFETY: forwarded.
        Class::Block => unsafe { attempt(nr, args) },
        Class::Caller | Class::Isolate => Step::Done(ENOSYS),
    }
}

/// A call that waits for no event: run inline, unless it is made to wait for the storage
/// device (see the module's docs).
#[inline]
unsafe fn delegate(nr: u64, args: [u64; 6]) -> Step {
    if waits_for_the_device(nr, &args) {
        return Step::HandOff(Resume::Disk);
    }
    // SAFETY: forwarded.
    Step::Done(unsafe { syscall6(nr, args) })
}

/// The inline, non-blocking attempt of a call that may block.
unsafe fn attempt(nr: u64, a: [u64; 6]) -> Step {
    let nr_i = nr as i64;
    // SAFETY (for every call below): the same call the owner posted, with only a flag
    // added that makes it return instead of waiting; the caller vouched for the call.
    unsafe {
        match nr_i {
            libc::SYS_read | libc::SYS_write | libc::SYS_readv | libc::SYS_writev => {
                let write = nr_i == libc::SYS_write || nr_i == libc::SYS_writev;
                let vectored = nr_i == libc::SYS_readv || nr_i == libc::SYS_writev;
                transfer(
                    nr,
                    a,
                    Rw {
                        fd: a[0],
                        buf: a[1],
                        len: a[2],
                        offset: -1,
                        flags: 0,
                        write,
                        vectored,
                    },
                )
            }
            libc::SYS_preadv2 | libc::SYS_pwritev2 => {
                if a[5] & RWF_NOWAIT != 0 {
                    return Step::Done(syscall6(nr, a));
                }
                let write = nr_i == libc::SYS_pwritev2;
                transfer(
                    nr,
                    a,
                    Rw {
                        fd: a[0],
                        buf: a[1],
                        len: a[2],
                        offset: a[3] as i64,
                        flags: a[5],
                        write,
                        vectored: true,
                    },
                )
            }
            libc::SYS_recvfrom | libc::SYS_sendto => socket(nr, a, 3, nr_i == libc::SYS_sendto),
            libc::SYS_recvmsg | libc::SYS_sendmsg => socket(nr, a, 2, nr_i == libc::SYS_sendmsg),
            libc::SYS_recvmmsg | libc::SYS_sendmmsg => mmsg(nr, a),
            libc::SYS_poll => readiness(nr, a, 2),
            libc::SYS_epoll_wait => readiness(nr, a, 3),
            // Without a signal mask it is epoll_wait (with one, it runs on its caller and
            // never comes here: trying it would run the service thread under that mask).
            libc::SYS_epoll_pwait if a[4] == 0 => readiness(nr, a, 3),
            _ => Step::HandOff(Resume::Whole),
        }
    }
}

/// poll or epoll_wait with a timeout (in milliseconds at `a[timeout]`; a zero one is
/// Delegate-class and runs as it is): first with a zero timeout, which answers exactly
/// what the call would answer at once when something is ready already, or when it fails
/// (EFAULT, EINVAL, EBADF are checked before any wait). Nothing ready: the call itself
/// goes to a worker. (poll's
/// `revents` written as 0 meanwhile are written again by the call; epoll_wait writes
/// events only when it returns some. select is not tried: a zero-timeout select clears
/// the caller's fd sets.)
///
/// # Safety
/// As [`attempt`].
unsafe fn readiness(nr: u64, a: [u64; 6], timeout: usize) -> Step {
    let mut now = a;
    now[timeout] = 0;
    // SAFETY: the owner's call with a zero timeout.
    let ret = unsafe { syscall6(nr, now) };
    if ret != 0 || a[timeout] as i32 == 0 {
        return Step::Done(ret);
    }
    Step::HandOff(Resume::Whole)
}

/// A read or write, as the `preadv2`/`pwritev2` family sees it.
#[derive(Clone, Copy)]
struct Rw {
    fd: u64,
    /// The buffer, or the iovec array when `vectored`.
    buf: u64,
    /// The length, or the iovec count when `vectored`.
    len: u64,
    offset: i64,
    flags: u64,
    write: bool,
    vectored: bool,
}

pub use flexsc_shim::sys::MAX_RW_COUNT;
/// The end of user address space on x86-64 with 4-level paging (`TASK_SIZE_MAX`).
pub const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;

unsafe fn transfer(nr: u64, a: [u64; 6], rw: Rw) -> Step {
    if !rw.vectored && rw.len == 0 {
        // A zero-length read or write never waits, and only the call itself gives its
        // answer: read() of a directory says EISDIR where an empty iovec says 0 (found by
        // the randomized differential test).
        // SAFETY: the caller's own call.
        return Step::Done(unsafe { syscall6(nr, a) });
    }
    if !rw.vectored && rw.len > MAX_RW_COUNT {
        // read/write check the whole length against the address space before clamping it;
        // an iovec is clamped first. So a huge length answers EFAULT directly but would be
        // read through an iovec: run the call itself. It fails at once unless the whole
        // range fits in the address space, when it may wait like any read.
        return match rw.buf.checked_add(rw.len) {
            Some(end) if end <= TASK_SIZE_MAX => Step::HandOff(Resume::Whole),
            // SAFETY: the caller's own call, which the kernel refuses before doing anything.
            _ => Step::Done(unsafe { syscall6(nr, a) }),
        };
    }
    let one = libc::iovec {
        iov_base: rw.buf as *mut libc::c_void,
        iov_len: rw.len as usize,
    };
    let (iov, count) = if rw.vectored {
        (rw.buf, rw.len)
    } else {
        (&one as *const libc::iovec as u64, 1)
    };
    let sys = if rw.write {
        libc::SYS_pwritev2
    } else {
        libc::SYS_preadv2
    } as u64;
    // SAFETY: the caller's call with RWF_NOWAIT added; `one` outlives the call.
    let ret = unsafe {
        syscall6(
            sys,
            [rw.fd, iov, count, rw.offset as u64, 0, rw.flags | RWF_NOWAIT],
        )
    };
    if ret == EAGAIN || ret == EOPNOTSUPP {
        // No data ready, or the file cannot say. A regular file or block device only waits
        // for the disk: run the call inline unless it would wait on a cold cache.
        return match (file_kind(rw.fd), ret) {
            // SAFETY: the original call, which cannot wait for an event on this file.
            (Kind::Disk | Kind::Memory, EOPNOTSUPP) => Step::Done(unsafe { syscall6(nr, a) }),
            (Kind::Disk | Kind::Memory, _) => Step::HandOff(Resume::Disk),
            // A non-blocking descriptor's call never waits: its own answer is final.
            // SAFETY: the original call, which returns at once on this descriptor.
            (_, _) if is_nonblocking(rw.fd) => Step::Done(unsafe { syscall6(nr, a) }),
            _ => Step::HandOff(Resume::Whole),
        };
    }
    if ret < 0 {
        return Step::Done(ret);
    }
    let wanted = if rw.vectored { None } else { Some(rw.len as i64) };
    if wanted == Some(ret) || (ret == 0 && !rw.write) {
        return Step::Done(ret);
    }
    // A short transfer. A read from a pipe or socket returns what was there, as a
    // blocking read would; anything else would have kept going.
    match file_kind(rw.fd) {
        // The rest waits for the disk at most (or finds the end of the file at once).
        // SAFETY: the rest of the caller's transfer.
        Kind::Disk | Kind::Memory => {
            Step::Done(unsafe { resume(nr as u32, a, Resume::DiskRest { done: ret }) })
        }
        // A short read from a stream socket below its low-water mark: the blocking read
        // would have waited for the mark.
        Kind::Socket if !rw.write && !rw.vectored && below_low_water(rw.fd, ret) => {
            Step::HandOff(Resume::Rest { done: ret })
        }
        Kind::Other | Kind::Pipe | Kind::Socket if !rw.write => Step::Done(ret),
        Kind::Other | Kind::Pipe | Kind::Socket => {
            // A write that stopped short: a blocking write goes on until everything is
            // written, unless the fd is non-blocking, in which case the rest gets EAGAIN
            // at once and the short count stands, as it would directly.
            // SAFETY: the kernel just accepted this iovec array.
            if rw.vectored && ret == unsafe { iov_total(iov, count) } {
                Step::Done(ret)
            } else {
                Step::HandOff(Resume::Rest { done: ret })
            }
        }
    }
}

unsafe fn socket(nr: u64, mut a: [u64; 6], flags_at: usize, send: bool) -> Step {
    let flags = a[flags_at] as i32;
    if flags & libc::MSG_DONTWAIT != 0 {
        // The caller asked for a call that never waits: run it as it is, here. (Handing
        // it off made the caller repeat it, for the same EAGAIN.)
        // SAFETY: the caller's call, unchanged.
        return Step::Done(unsafe { syscall6(nr, a) });
    }
    if flags & libc::MSG_WAITALL != 0 {
        return Step::HandOff(Resume::Whole);
    }
    a[flags_at] |= libc::MSG_DONTWAIT as u64;
    // SAFETY: the caller's call with MSG_DONTWAIT added.
    let ret = unsafe { syscall6(nr, a) };
    if ret == EAGAIN {
        return Step::HandOff(Resume::Whole);
    }
    if send && ret >= 0 {
        let wanted = if nr == libc::SYS_sendto as u64 {
            a[2] as i64
        } else {
            // SAFETY: sendmsg just read this msghdr without faulting.
            let msg = unsafe { &*(a[1] as *const libc::msghdr) };
            // SAFETY: and its iovec array.
            unsafe { iov_total(msg.msg_iov as u64, msg.msg_iovlen as u64) }
        };
        if ret < wanted {
            return Step::HandOff(Resume::Rest { done: ret });
        }
    } else if nr == libc::SYS_recvfrom as u64 && ret > 0 && ret < a[2] as i64 && below_low_water(a[0], ret) {
        return Step::HandOff(Resume::Rest { done: ret });
    }
    Step::Done(ret)
}

/// `recvmmsg` and `sendmmsg` (DNS servers' calls: 71% of BIND's under `flexsc run`).
///
/// A blocking one may wait after it moved some messages (recvmmsg without
/// MSG_WAITFORONE waits for all `vlen`), and nothing can resume a vector of messages
/// half-way, so a non-blocking attempt is made only where it gives the blocking call's
/// own answer: the caller asked for MSG_DONTWAIT, or for MSG_WAITFORONE (the kernel
/// itself stops waiting after the first message), or the socket is O_NONBLOCK (event
/// loops' sockets, e.g. libuv's). Anything else goes to a blocking worker whole.
unsafe fn mmsg(nr: u64, mut a: [u64; 6]) -> Step {
    let flags = a[3] as i32;
    let receive = nr == libc::SYS_recvmmsg as u64;
    if flags & libc::MSG_DONTWAIT != 0 || is_nonblocking(a[0]) {
        // SAFETY: the caller's call, unchanged: it never waits.
        return Step::Done(unsafe { syscall6(nr, a) });
    }
    if receive && flags & libc::MSG_WAITFORONE != 0 {
        a[3] |= libc::MSG_DONTWAIT as u64;
        // SAFETY: the caller's call with MSG_DONTWAIT added: after its first message it
        // runs exactly as the caller's would; before it, it returns instead of waiting.
        let ret = unsafe { syscall6(nr, a) };
        if ret != EAGAIN {
            return Step::Done(ret);
        }
    }
    Step::HandOff(Resume::Whole)
}

/// Whether `fd` was opened or set O_NONBLOCK (a call on it never waits for an event).
fn is_nonblocking(fd: u64) -> bool {
    // SAFETY: F_GETFL reads the descriptor's flags and touches no memory.
    let flags = unsafe { syscall6(libc::SYS_fcntl as u64, [fd, libc::F_GETFL as u64, 0, 0, 0, 0]) };
    flags >= 0 && flags & libc::O_NONBLOCK as i64 != 0
}

/// What kind of file a descriptor names, as far as waiting goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// A regular file or a block device: transfers wait for the disk at most.
    Disk,
    /// A memory device (`/dev/null`, `/dev/zero`, `/dev/full`, `/dev/urandom`): transfers
    /// never wait, as on a `Disk`. But io_uring completes a short transfer only on a
    /// `Disk` (a read of `/dev/zero` stops where the kernel wants to reschedule: 19 of 256
    /// MiB, measured), so positional transfers on these stay out of the ring.
    Memory,
    /// A socket: transfers may wait for an event, reads for the low-water mark.
    Socket,
    /// A pipe or FIFO: transfers may wait for an event.
    Pipe,
    /// A terminal or other device, a directory, or a descriptor fstat refuses: transfers
    /// may wait for an event.
    Other,
}

/// Whether a short receive of `got` bytes stopped below the socket's low-water mark.
pub(crate) fn below_low_water(fd: u64, got: i64) -> bool {
    flexsc_shim::resume::rcvlowat(fd).is_some_and(|low| got < low)
}

/// `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/urandom`: character devices of major 1
/// whose reads and writes never wait (not `/dev/random`, which may wait at boot, nor
/// `/dev/kmsg`, whose reads wait for messages).
fn is_memory_device(rdev: libc::dev_t) -> bool {
    libc::major(rdev) == 1 && matches!(libc::minor(rdev), 3 | 5 | 7 | 9)
}

/// Whether an open may wait until another thread acts, from what its path names now:
/// a FIFO (its open waits for the other end) or a device other than a memory device (a
/// serial line's waits for a carrier). A look with `statx` (type only, no sync), which
/// costs a path walk: for a service thread that holds calls only it can finish, which
/// would wait while an inline call waits (see `ServiceThread::run_direct`). No for the
/// forms that never wait in the open itself (`O_NONBLOCK`, `O_PATH`, `O_DIRECTORY`), and
/// when the path cannot be looked at (the open then fails as quickly, or creates a regular
/// file). Yes for every `openat2` and `open_by_handle_at`, which it cannot look at. The
/// path may change between the look and the open: the look only decides where the open
/// runs.
pub(crate) fn open_may_wait(nr: u32, a: &[u64; 6]) -> bool {
    // (directory descriptor, path, open flags)
    let (dirfd, path, flags) = match nr as i64 {
        libc::SYS_open => (libc::AT_FDCWD as u64, a[0], a[1]),
        libc::SYS_creat => (
            libc::AT_FDCWD as u64,
            a[0],
            (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
        ),
        libc::SYS_openat => (a[0], a[1], a[2]),
        // Their flags (in the caller's `open_how`) or their file (a handle) cannot be
        // looked at from here without reading the caller's memory directly, which a bad
        // pointer would turn into a crash where the call gives EFAULT. Rare: say yes.
        libc::SYS_openat2 | libc::SYS_open_by_handle_at => return true,
        _ => return false,
    };
    let flags = flags as i32;
    if flags & (libc::O_NONBLOCK | libc::O_PATH | libc::O_DIRECTORY) != 0 || path == 0 {
        return false;
    }
    let follow = if flags & libc::O_NOFOLLOW != 0 {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: all-zero is a valid `statx`, which statx fills.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx reads the owner's NUL-terminated path (its promise for the open;
    // a bad pointer gives EFAULT, as the open would) and writes one `statx`.
    let ret = unsafe {
        syscall6(
            libc::SYS_statx as u64,
            [
                dirfd,
                path,
                (libc::AT_STATX_DONT_SYNC | follow) as u64,
                libc::STATX_TYPE as u64,
                &mut stx as *mut libc::statx as u64,
                0,
            ],
        )
    };
    if ret != 0 {
        return false;
    }
    match u32::from(stx.stx_mode) & libc::S_IFMT {
        libc::S_IFIFO => true,
        libc::S_IFCHR => !is_memory_device(libc::makedev(stx.stx_rdev_major, stx.stx_rdev_minor)),
        _ => false,
    }
}

pub(crate) fn file_kind(fd: u64) -> Kind {
    // The kernel reads a descriptor as an `unsigned int`; one above `i32::MAX` is none.
    let Some(st) = i32::try_from(fd as u32).ok().and_then(flexsc_shim::sys::stat_fd) else {
        return Kind::Other;
    };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFBLK => Kind::Disk,
        // A memory device never waits, but may refuse RWF_NOWAIT (EOPNOTSUPP: /dev/full
        // on Linux 6.18, more of them on older kernels): run it inline rather than wake a
        // blocking worker for it.
        libc::S_IFCHR if is_memory_device(st.st_rdev) => Kind::Memory,
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFIFO => Kind::Pipe,
        _ => Kind::Other,
    }
}
