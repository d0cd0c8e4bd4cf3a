//! The runtime's own descriptors, kept out of the program's reach.
//!
//! The runtime holds a few long-lived descriptors (each service thread's io_uring and
//! its stat file: `flexsc_shim::sys::own`) on high numbers, where the program's `open`
//! never lands. Natively those numbers are not open. A program that closes every
//! descriptor it does not know of (a daemon's loop up to the limit, `close_range(3, ~0U,
//! 0)`, `closefrom(3)`, a walk of `/proc/self/fd`) would close them as well: the service
//! threads then ran their batches directly, and said so on stderr.
//!
//! So the program sees those numbers as natively: its `close` of one fails with EBADF and
//! closes nothing, and its `close_range` and `closefrom` close everything else in their
//! range (as one call per gap between the runtime's descriptors; the result is the
//! first failure, or 0). A `close_range` with flags passes unchanged: with
//! `CLOSE_RANGE_CLOEXEC` it only marks descriptors (the runtime's are close-on-exec
//! already), with `CLOSE_RANGE_UNSHARE` it closes in a table of the calling thread's own
//! (the runtime's threads keep the shared one), and with other bits it is refused.
//!
//! Not covered: `dup2`/`dup3` onto one of the numbers replaces the runtime's descriptor,
//! as the program asked (natively the call succeeds); the service thread notices the
//! ring gone and runs its batches directly (README, "Descriptors"). The number is the
//! program's from then on: a descriptor counts as the runtime's only while it names the
//! file the runtime recorded (one `fstat`, paid only by a close of one of its numbers).

use flexsc_shim::sys::{is_own, own_between, OWN_MAX};

/// Whether a `close(fd)` must fail with EBADF and close nothing: `fd` is the runtime's.
#[inline]
pub fn refuses_close(fd: i64) -> bool {
    // The kernel reads an `unsigned int`; a negative or huge value is no descriptor of ours.
    i32::try_from(fd).is_ok_and(is_own)
}

/// Runs `close_range(first, last, flags)` as calls of `run` over the parts of the range
/// that hold none of the runtime's descriptors. `run` makes the real call and returns its
/// result as libc does (0, or -1 with errno set); so does this.
pub fn close_range_around(
    first: u32,
    last: u32,
    flags: u32,
    mut run: impl FnMut(u32, u32, u32) -> i64,
) -> i64 {
    if flags != 0 || first > last {
        return run(first, last, flags);
    }
    let mut own = [0; OWN_MAX];
    let n = own_between(first, last, &mut own);
    if n == 0 {
        return run(first, last, flags);
    }
    // u64: the gap after a descriptor at u32::MAX would start past the last number.
    let mut from = u64::from(first);
    for &fd in &own[..n] {
        let fd = fd as u64;
        if from < fd {
            let ret = run(from as u32, (fd - 1) as u32, 0);
            if ret != 0 {
                return ret;
            }
        }
        from = fd + 1;
    }
    if from <= u64::from(last) {
        return run(from as u32, last, 0);
    }
    0
}

/// What glibc's `closefrom` does when `close_range` fails (a kernel before 5.9, a seccomp
/// filter without it): closes each number `/proc/self/fd` lists from `low` up, reading
/// the listing again after a round that closed something; here without the runtime's
/// descriptors. Raw calls only, as glibc's. False if the listing cannot be read (glibc's
/// own fallback then has a last resort, and aborts if that fails too).
pub fn close_listed_from(low: i32) -> bool {
    use flexsc_shim::sys::syscall6;
    // SAFETY: openat reads the NUL-terminated path.
    let dir = unsafe {
        syscall6(
            libc::SYS_openat as u64,
            [
                libc::AT_FDCWD as u64,
                c"/proc/self/fd".as_ptr() as u64,
                (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
                0,
                0,
                0,
            ],
        )
    };
    if dir < 0 {
        return false;
    }
    let mut ok = true;
    let mut buf = [0u8; 1024];
    'listing: loop {
        let mut closed = false;
        loop {
            // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`.
            let n = unsafe {
                syscall6(
                    libc::SYS_getdents64 as u64,
                    [dir as u64, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0],
                )
            };
            if n < 0 {
                ok = false;
                break 'listing;
            }
            if n == 0 {
                break;
            }
            // Each record: inode (8), offset (8), length (2), type (1), NUL-terminated name.
            let mut at = 0;
            while at + 19 < n as usize {
                let len = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
                let name = &buf[at + 19..(at + len).min(n as usize)];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                // "." and ".." are no numbers.
                let fd = std::str::from_utf8(name).ok().and_then(|n| n.parse::<i64>().ok());
                if let Some(fd) = fd.filter(|&fd| fd >= i64::from(low) && fd != dir) {
                    if !refuses_close(fd) {
                        // SAFETY: closes a descriptor the program asked to close.
                        unsafe { syscall6(libc::SYS_close as u64, [fd as u64, 0, 0, 0, 0, 0]) };
                        closed = true;
                    }
                }
                if len == 0 {
                    break;
                }
                at += len;
            }
        }
        if !closed {
            break;
        }
        // SAFETY: rewinds our own directory descriptor.
        if unsafe {
            syscall6(
                libc::SYS_lseek as u64,
                [dir as u64, 0, libc::SEEK_SET as u64, 0, 0, 0],
            )
        } != 0
        {
            ok = false;
            break;
        }
    }
    // SAFETY: our own descriptor.
    unsafe { syscall6(libc::SYS_close as u64, [dir as u64, 0, 0, 0, 0, 0]) };
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_without_the_runtimes_descriptors_is_one_call() {
        let mut calls = Vec::new();
        let ret = close_range_around(3, 10, 0, |a, b, f| {
            calls.push((a, b, f));
            0
        });
        assert_eq!((ret, calls), (0, vec![(3, 10, 0)]));
        // Flags and an inverted range pass unchanged (the kernel judges them).
        let mut calls = Vec::new();
        close_range_around(20, 3, 4, |a, b, f| {
            calls.push((a, b, f));
            -1
        });
        assert_eq!(calls, vec![(20, 3, 4)]);
    }

    #[test]
    fn a_range_is_cut_around_the_runtimes_descriptors_and_stops_at_a_failure() {
        // Two descriptors the runtime could hold, on high numbers with a gap between
        // (below the soft limit, above where tests running beside this one put theirs).
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        let top = i32::try_from(lim.rlim_cur.min(1 << 20)).expect("limit");
        // SAFETY: plain descriptor calls on descriptors of this test's own.
        let (a, b) = unsafe {
            let file = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            let a = libc::fcntl(file, libc::F_DUPFD_CLOEXEC, top - 40);
            let b = libc::fcntl(file, libc::F_DUPFD_CLOEXEC, a + 2);
            libc::close(file);
            (a, b)
        };
        assert!(a > 0 && b == a + 2, "descriptors {a} and {b}");
        let id = |fd| flexsc_shim::sys::file_id(fd).expect("open");
        flexsc_shim::sys::own(a, id(a));
        flexsc_shim::sys::own(b, id(b));
        assert!(refuses_close(a.into()) && refuses_close(b.into()));
        assert!(!refuses_close((a + 1).into()) && !refuses_close(-1) && !refuses_close(1 << 40));
        let (a32, b32) = (a as u32, b as u32);
        let mut calls = Vec::new();
        let ret = close_range_around(a32 - 1, b32 + 7, 0, |x, y, f| {
            calls.push((x, y, f));
            0
        });
        assert_eq!(ret, 0);
        assert_eq!(
            calls,
            vec![
                (a32 - 1, a32 - 1, 0),
                (a32 + 1, a32 + 1, 0),
                (b32 + 1, b32 + 7, 0)
            ]
        );
        // Exactly the runtime's numbers: nothing to close.
        let ret = close_range_around(b32, b32, 0, |_, _, _| unreachable!());
        assert_eq!(ret, 0);
        // The first failure ends it, with its result.
        let mut calls = 0;
        let ret = close_range_around(a32 - 1, b32 + 7, 0, |_, _, _| {
            calls += 1;
            -1
        });
        assert_eq!((ret, calls), (-1, 1));
        // A dup2 onto one of the numbers makes it the program's: closed as asked.
        // SAFETY: as above.
        let other = unsafe { libc::open(c"/proc/self/stat".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::dup2(other, a) }, a);
        assert!(!refuses_close(a.into()));
        let mut calls = Vec::new();
        close_range_around(a32, b32, 0, |x, y, f| {
            calls.push((x, y, f));
            0
        });
        assert_eq!(calls, vec![(a32, b32 - 1, 0)]);
        flexsc_shim::sys::disown(a);
        flexsc_shim::sys::disown(b);
        assert!(!refuses_close(b.into()));
        // SAFETY: this test's own descriptors.
        unsafe {
            libc::close(other);
            libc::close(a);
            libc::close(b);
        }
    }
}
