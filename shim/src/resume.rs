//! Finishing a read or write that stopped part-way: a non-blocking attempt moved `done`
//! bytes, and whoever finishes the call (a blocking worker, or the caller itself when the
//! call is declined) runs only the rest, so the caller sees what one blocking call would
//! have returned.

use crate::sys::syscall6;

/// What a blocking worker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The original call, which may wait for an event.
    Whole,
    /// The rest of a transfer of which `done` bytes already moved; it may wait. A read or
    /// recv on a stream socket that stopped below the socket's low-water mark
    /// (`SO_RCVLOWAT`) waits for the mark, as the blocking call would have.
    Rest {
        /// Bytes already transferred.
        done: i64,
    },
    /// The rest of a regular-file transfer: only the disk can make it wait.
    DiskRest {
        /// Bytes already transferred.
        done: i64,
    },
    /// The original call on a regular file or block device (a disk wait, never an event
    /// wait): exit waits for these.
    Disk,
}

/// The sum of an iovec array's lengths.
///
/// # Safety
/// `iov` points at `count` readable iovecs (true right after the kernel accepted them).
pub unsafe fn iov_total(iov: u64, count: u64) -> i64 {
    let iov = iov as *const libc::iovec;
    (0..count as usize)
        // SAFETY: the caller's contract.
        .map(|i| unsafe { std::ptr::read_volatile(iov.add(i)) }.iov_len as i64)
        .sum()
}

/// Runs a handed-off call on a blocking worker and returns the caller's answer.
///
/// # Safety
/// As for the `syscall` instruction with the original call: the caller vouches for it.
pub unsafe fn resume(nr: u32, args: [u64; 6], how: Resume) -> i64 {
    let nr = nr as u64;
    match how {
        // SAFETY: the original call, forwarded from the contract.
        Resume::Whole | Resume::Disk => unsafe { syscall6(nr, args) },
        Resume::Rest { done } | Resume::DiskRest { done } => {
            let socket_read = matches!(how, Resume::Rest { .. })
                && (nr == libc::SYS_read as u64 || nr == libc::SYS_recvfrom as u64);
            let rest = match socket_read.then(|| rcvlowat(args[0])).flatten() {
                // SAFETY: the rest of the original receive.
                Some(low) if done < low => unsafe { rest_to_low_water(nr, args, done, low) },
                // SAFETY: the rest of the original transfer.
                _ => unsafe { rest(nr, args, done) },
            };
            if rest < 0 {
                // A blocking transfer that moved some bytes reports them, not the error.
                done
            } else {
                done + rest
            }
        }
    }
}

/// A socket's receive low-water mark, or None if `fd` is not a socket.
pub fn rcvlowat(fd: u64) -> Option<i64> {
    let mut low: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let args = [
        fd,
        libc::SOL_SOCKET as u64,
        libc::SO_RCVLOWAT as u64,
        &mut low as *mut libc::c_int as u64,
        &mut len as *mut libc::socklen_t as u64,
        0,
    ];
    // SAFETY: getsockopt writes one int and its length into live locals.
    let ret = unsafe { syscall6(libc::SYS_getsockopt as u64, args) };
    (ret == 0).then_some(low as i64)
}

/// A receive that stopped at `done` bytes, below the low-water mark `low`: wait for the
/// rest of the mark (MSG_WAITALL), then take whatever else is already there, up to the
/// length asked for. That is what the blocking call returns when the mark is reached.
unsafe fn rest_to_low_water(nr: u64, a: [u64; 6], done: i64, low: i64) -> i64 {
    let (flags, addr, alen) = if nr == libc::SYS_recvfrom as u64 {
        (a[3], a[4], a[5])
    } else {
        (0, 0, 0)
    };
    let len = a[2] as i64;
    let need = (low - done).min(len - done) as u64;
    let recv = |off: i64, n: u64, extra: i32| {
        let args = [a[0], a[1] + off as u64, n, flags | extra as u64, addr, alen];
        // SAFETY: the caller's receive buffer, advanced past what arrived already.
        unsafe { syscall6(libc::SYS_recvfrom as u64, args) }
    };
    let first = recv(done, need, libc::MSG_WAITALL);
    if first <= 0 || (first as u64) < need || done + first >= len {
        return first;
    }
    let more = recv(done + first, (len - done - first) as u64, libc::MSG_DONTWAIT);
    first + more.max(0)
}

/// Runs what is left of a transfer after `done` bytes, blocking.
unsafe fn rest(nr: u64, a: [u64; 6], done: i64) -> i64 {
    let d = done as u64;
    let nr_i = nr as i64;
    // SAFETY (all arms): the original call's buffers, advanced past what moved already.
    unsafe {
        match nr_i {
            libc::SYS_read | libc::SYS_write => syscall6(nr, [a[0], a[1] + d, a[2] - d, 0, 0, 0]),
            libc::SYS_sendto | libc::SYS_recvfrom => {
                syscall6(nr, [a[0], a[1] + d, a[2] - d, a[3], a[4], a[5]])
            }
            libc::SYS_readv | libc::SYS_writev => {
                with_rest(a[1], a[2], d, |iov, n| syscall6(nr, [a[0], iov, n, 0, 0, 0]))
            }
            libc::SYS_preadv2 | libc::SYS_pwritev2 => {
                let offset = if a[3] as i64 == -1 { a[3] } else { a[3] + d };
                with_rest(a[1], a[2], d, |iov, n| {
                    syscall6(nr, [a[0], iov, n, offset, 0, a[5]])
                })
            }
            libc::SYS_sendmsg => {
                let msg = std::ptr::read_volatile(a[1] as *const libc::msghdr);
                with_rest(msg.msg_iov as u64, msg.msg_iovlen as u64, d, |iov, n| {
                    // The name and ancillary data went with the first part.
                    let mut rest: libc::msghdr = std::mem::zeroed();
                    rest.msg_iov = iov as *mut libc::iovec;
                    rest.msg_iovlen = n as usize;
                    syscall6(nr, [a[0], &rest as *const libc::msghdr as u64, a[2], 0, 0, 0])
                })
            }
            _ => 0,
        }
    }
}

/// Calls `f` with a copy of the iovec array `iov[..count]` advanced past `skip` bytes.
unsafe fn with_rest(iov: u64, count: u64, skip: u64, f: impl FnOnce(u64, u64) -> i64) -> i64 {
    let src = iov as *const libc::iovec;
    let mut rest: Vec<libc::iovec> = Vec::with_capacity(count as usize);
    let mut skip = skip as usize;
    for i in 0..count as usize {
        // SAFETY: the kernel read this array in the first part of the transfer.
        let mut v = unsafe { std::ptr::read_volatile(src.add(i)) };
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        // SAFETY: stays inside the same buffer.
        v.iov_base = unsafe { (v.iov_base as *mut u8).add(skip) } as *mut libc::c_void;
        v.iov_len -= skip;
        skip = 0;
        rest.push(v);
    }
    f(rest.as_ptr() as u64, rest.len() as u64)
}
