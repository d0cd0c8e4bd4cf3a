//! The signal a call owes the thread that made it, carried back with its result.
//!
//! A few calls signal the thread that makes them as they fail: a write to a pipe or
//! socket whose reader is gone sends SIGPIPE (unless `MSG_NOSIGNAL`), a write past
//! `RLIMIT_FSIZE` sends SIGXFSZ. The signal is the caller's: a program that blocks SIGPIPE
//! and takes it back with `sigtimedwait` (libpq does), or whose handler `siglongjmp`s,
//! needs it on the thread that made the call, not on the service thread or worker that ran
//! it. So the runtime's threads block both signals (`flexsc_kernel_side::signals`), look
//! for one pending on themselves after a call whose result says it may have sent one, and
//! if so consume it and complete the entry with the result [`encode`]d; the owner, back on
//! its own thread (after an M-on-N user thread resumes, not in its scheduler's loop),
//! passes the raw result through [`deliver`], which raises the signal there with `tgkill`
//! and returns the plain result. The kernel delivers it before `tgkill` returns, as it
//! would have before the call returned; blocked, it stays pending on that thread.
//!
//! An encoded result is far below any result a call returns (-4095..=-1 for errors,
//! lengths and descriptors at or above 0): `i64::MIN`, plus the signal in bits 48..56,
//! plus the result offset by 4096 in bits 0..48.

/// Bit 63 set, as `i64::MIN`: every encoded result starts from it.
const MARK: i64 = i64::MIN;
/// Where the signal number starts.
const SIG_SHIFT: u32 = 48;
/// The result, offset by [`OFFSET`] so that errors are positive, in the low 48 bits.
const VALUE_MASK: i64 = (1 << SIG_SHIFT) - 1;
const OFFSET: i64 = 4096;

/// `ret` with `sig` owed to the caller. A result that cannot be carried (outside
/// -4096..2^48-4096, which no call that sends these signals returns) keeps its value and
/// loses the signal.
pub const fn encode(ret: i64, sig: i32) -> i64 {
    if ret < -OFFSET || ret + OFFSET > VALUE_MASK || sig <= 0 || sig > 64 {
        return ret;
    }
    MARK + ((sig as i64) << SIG_SHIFT) + (ret + OFFSET)
}

/// The plain result, and the signal owed with it if any.
pub const fn split(raw: i64) -> (i64, Option<i32>) {
    if raw >= MARK / 2 {
        return (raw, None);
    }
    let bits = raw - MARK;
    let sig = (bits >> SIG_SHIFT) as i32;
    if sig == 0 {
        // Not an encoding (`encode` never makes one without a signal).
        return (raw, None);
    }
    ((bits & VALUE_MASK) - OFFSET, Some(sig))
}

/// On the thread that made the call: raises the signal `raw` carries, if any, on this
/// thread, and returns the plain result.
#[inline]
pub fn deliver(raw: i64) -> i64 {
    if raw >= MARK / 2 {
        return raw;
    }
    deliver_slow(raw)
}

#[cold]
fn deliver_slow(raw: i64) -> i64 {
    let (ret, sig) = split(raw);
    if let Some(sig) = sig {
        raise_here(sig);
    }
    ret
}

/// Sends `sig` to the calling kernel thread, as the kernel sends SIGPIPE to the thread
/// whose write found no reader.
pub fn raise_here(sig: i32) {
    // SAFETY: getpid, gettid and tgkill take no pointers; the signal goes to this thread.
    unsafe {
        let pid = crate::sys::syscall6(libc::SYS_getpid as u64, [0; 6]);
        let tid = crate::sys::syscall6(libc::SYS_gettid as u64, [0; 6]);
        crate::sys::syscall6(
            libc::SYS_tgkill as u64,
            [pid as u64, tid as u64, sig as u64, 0, 0, 0],
        );
    }
}

/// On a runtime thread that ran call `nr` with `args`, which returned `ret`: whether the
/// kernel sent this thread SIGPIPE or SIGXFSZ for it (both blocked here, so pending),
/// consumed now. A call sends one only as it fails with EPIPE or EFBIG, or, for SIGPIPE,
/// as a write to a pipe stops short because the reader went away: `wrote_short` says the
/// call was a write that may have (a worker's, which looks after each). Anything else
/// costs nothing.
///
/// `rt_sigtimedwait` takes a signal pending on this thread before one pending for the
/// whole process, and cannot tell them apart. So it looks only where the call sends one
/// whenever it fails so (not for a send with `MSG_NOSIGNAL`): a SIGPIPE sent to the
/// process meanwhile (`kill`), which every thread blocks, is then left where it is.
#[inline]
pub fn take_pending(nr: u64, args: &[u64; 6], ret: i64, wrote_short: bool) -> Option<i32> {
    let sig = match ret {
        r if r == -(libc::EPIPE as i64) => libc::SIGPIPE,
        r if r == -(libc::EFBIG as i64) => libc::SIGXFSZ,
        r if r >= 0 && wrote_short => libc::SIGPIPE,
        _ => return None,
    };
    if sig == libc::SIGPIPE && no_signal_asked(nr, args) {
        return None;
    }
    take_signal(sig).then_some(sig)
}

/// Whether call `nr` asks its socket not to send SIGPIPE (`MSG_NOSIGNAL`).
fn no_signal_asked(nr: u64, args: &[u64; 6]) -> bool {
    let flags = match nr as i64 {
        libc::SYS_sendto | libc::SYS_sendmmsg => args[3],
        libc::SYS_sendmsg => args[2],
        _ => return false,
    };
    flags as i32 & libc::MSG_NOSIGNAL != 0
}

/// Whether call `nr` may move part of its data and then signal: a write into a pipe
/// whose reader went away returns the part and still sends SIGPIPE (a socket's send
/// signals only when it sent nothing, as EPIPE), and so does a `sendmmsg` whose later
/// message failed so.
pub fn writes_to_a_reader(nr: u64) -> bool {
    matches!(
        nr as i64,
        libc::SYS_write
            | libc::SYS_writev
            | libc::SYS_pwritev2
            | libc::SYS_splice
            | libc::SYS_tee
            | libc::SYS_vmsplice
            | libc::SYS_sendfile
            | libc::SYS_sendmmsg
    )
}

/// Whether a call the io_uring ran, which returned `ret`, may owe its caller a signal
/// that the ring could not carry: EPIPE or EFBIG (run again to know).
#[inline]
pub fn ring_may_owe(ret: i64) -> bool {
    ret == -(libc::EPIPE as i64) || ret == -(libc::EFBIG as i64)
}

/// Consumes `sig` if it is pending on this thread (or the process); true if it was.
#[cold]
pub fn take_signal(sig: i32) -> bool {
    // SAFETY: a sigset_t built by sigemptyset/sigaddset; a zero timeout never waits;
    // rt_sigtimedwait writes nothing through the null info pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let got = crate::sys::syscall6(
            libc::SYS_rt_sigtimedwait as u64,
            [
                &set as *const libc::sigset_t as u64,
                0,
                &zero as *const libc::timespec as u64,
                8,
                0,
                0,
            ],
        );
        got == sig as i64
    }
}

/// As [`take_pending`], then the result to complete the entry with.
#[inline]
pub fn with_pending(nr: u64, args: &[u64; 6], ret: i64, wrote_short: bool) -> i64 {
    match take_pending(nr, args, ret, wrote_short) {
        Some(sig) => encode(ret, sig),
        None => ret,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn encoded_results_split_back_and_plain_ones_pass_through() {
        for ret in [-4095, -32, -27, -1, 0, 1, 4096, 1 << 31, (1 << 47) - 1] {
            for sig in [libc::SIGPIPE, libc::SIGXFSZ, 64] {
                let raw = encode(ret, sig);
                assert!(raw < -(1 << 62), "{ret} {sig}: {raw}");
                assert_eq!(split(raw), (ret, Some(sig)), "{ret} {sig}");
            }
            assert_eq!(split(ret), (ret, None));
            assert_eq!(deliver(ret), ret);
        }
        assert_eq!(split(i64::MAX), (i64::MAX, None));
        assert_eq!(split(i64::MIN), (i64::MIN, None));
        assert_eq!(encode(1 << 50, libc::SIGPIPE), 1 << 50, "too big to carry: kept");
        assert_eq!(encode(-5000, libc::SIGPIPE), -5000);
    }

    #[test]
    fn a_delivered_signal_is_pending_on_this_thread() {
        // On a thread of its own, with SIGPIPE blocked there: delivery leaves it pending
        // on that thread, where take_signal finds it (and no other thread sees it).
        std::thread::spawn(|| {
            // SAFETY: this thread's own mask.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGPIPE);
                assert_eq!(
                    libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                    0
                );
            }
            assert!(!take_signal(libc::SIGPIPE));
            assert_eq!(
                deliver(encode(-(libc::EPIPE as i64), libc::SIGPIPE)),
                -(libc::EPIPE as i64)
            );
            assert!(take_signal(libc::SIGPIPE));
            assert!(!take_signal(libc::SIGPIPE));
        })
        .join()
        .expect("the thread passes");
    }
}
