//! Raw futex calls made through libc's `syscall()` (Rust's std, libstdc++'s atomic waits
//! and semaphores, C libraries with their own locks), while M-on-N is on.
//!
//! A user thread's private `FUTEX_WAIT` / `FUTEX_WAIT_BITSET` parks the user thread on
//! the lot (`lot::wait_futex`), keyed by the word's address, instead of holding a
//! blocking worker in the kernel. Native OS threads (the main thread) keep waiting in the
//! kernel. A wake must reach both kinds of waiter, so every `FUTEX_WAKE` /
//! `FUTEX_WAKE_BITSET` made through `syscall()` first wakes lot waiters, then, for what
//! is left of its count, the kernel's: the result counts both.
//!
//! ```text
//!   syscall(SYS_futex, ...)
//!     user thread, WAIT[_BITSET]_PRIVATE ──> lot (EAGAIN / ETIMEDOUT / EINTR / 0)
//!     OS thread, WAIT*                    ──> kernel, counted in KERNEL_WAITERS
//!     anyone, WAKE[_BITSET]               ──> lot, then the kernel (a user thread's
//!                                             private wake only if KERNEL_WAITERS > 0)
//!     everything else                     ──> as before (user threads: posted)
//! ```
//!
//! Not handled here, and so correct but slower from user threads (posted to a blocking
//! worker): waits without `FUTEX_PRIVATE_FLAG` (the word may be in memory shared with
//! another process, whose wakes never see our lot), the PI operations, `futex_waitv` and
//! the new `futex_wait` / `futex_wake` system calls. `FUTEX_REQUEUE`, `CMP_REQUEUE` and
//! `FUTEX_WAKE_OP` go to the kernel too, and then wake every lot waiter of both words
//! (the lot cannot requeue; a spurious wake-up is safe, a missed one is not). A user thread's lot wait is woken only by wakes made through
//! the interposed `syscall()` (or by our own primitives): one made with inline assembly
//! does not find it. A user thread's wait reads the word itself: an address in the first
//! page gives EFAULT as the kernel would, a wild one elsewhere faults in the program
//! instead of failing with EFAULT.
//!
//! # Memory ordering
//!
//! [`KERNEL_WAITERS`] lets a user thread's private wake skip the kernel when no OS thread
//! waits there. An OS thread increments it (SeqCst, a locked instruction: a full fence)
//! before the kernel compares the word; a waker stores the word (the program's store,
//! of any ordering), then fences SeqCst and loads the counter. Either the waker sees the
//! count (and makes the kernel wake), or the waiter's kernel compare sees the new word
//! (and returns EAGAIN): the store-buffer pattern that needs the fence on both sides.
//! The lot's own waiters are covered by its bucket locks (see `lot`).

use std::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};

use super::lot::{self, Waited};
use super::signal::{self, Delivered};

const FUTEX_WAIT: i32 = libc::FUTEX_WAIT;
const FUTEX_WAKE: i32 = libc::FUTEX_WAKE;
const FUTEX_WAIT_BITSET: i32 = libc::FUTEX_WAIT_BITSET;
const FUTEX_WAKE_BITSET: i32 = libc::FUTEX_WAKE_BITSET;
/// The command without the private and clock flags.
const CMD_MASK: i32 = !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);

/// OS threads inside a futex wait made through `syscall()` (see the module docs).
static KERNEL_WAITERS: AtomicUsize = AtomicUsize::new(0);

/// The interposed `syscall(SYS_futex, args...)` while M-on-N is enabled: returns what
/// libc's `syscall()` would (the value, or -1 with errno). `fallback` makes the call the
/// way every other system call is made (posted from a user thread, direct from an OS
/// thread).
///
/// # Safety
/// `args` are the caller's futex arguments, and `fallback` makes exactly that call.
pub(crate) unsafe fn call(args: [u64; 6], fallback: impl FnOnce() -> i64) -> i64 {
    let op = args[1] as i32;
    let cmd = op & CMD_MASK;
    let private = op & libc::FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & libc::FUTEX_CLOCK_REALTIME != 0;
    let addr = args[0] as usize;
    // The kernel answers the odd cases: the realtime clock except with WAIT_BITSET
    // (ENOSYS for a wake; a relative FUTEX_WAIT on it is rare), a misaligned word or a
    // zero bitset (EINVAL).
    let plain = (!realtime || cmd == FUTEX_WAIT_BITSET)
        && addr % 4 == 0
        && (!matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAKE_BITSET) || args[5] as u32 != 0);
    let user = super::routes_user_thread() && !crate::route::is_busy();
    match cmd {
        FUTEX_WAKE | FUTEX_WAKE_BITSET if plain => {
            let bits = if cmd == FUTEX_WAKE {
                u32::MAX
            } else {
                args[5] as u32
            };
            // SAFETY: forwarded.
            unsafe { wake(addr, args, bits, private, user) }
        }
        FUTEX_WAIT | FUTEX_WAIT_BITSET if plain && private && user => {
            // SAFETY: forwarded.
            unsafe { user_wait(addr, args, cmd, realtime) }
        }
        // Every other wait is in the kernel (a user thread's on a blocking worker): counted,
        // so that a user thread's private wake does not skip it.
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            KERNEL_WAITERS.fetch_add(1, Ordering::SeqCst);
            let r = fallback();
            KERNEL_WAITERS.fetch_sub(1, Ordering::SeqCst);
            r
        }
        // The lot cannot requeue: its waiters of either word wake (a spurious wake-up,
        // which futex users handle: they look at the word again), the kernel's are
        // requeued or woken by the kernel.
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE | libc::FUTEX_WAKE_OP => {
            // After the kernel's operation: FUTEX_WAKE_OP changes the second word first.
            let r = fallback();
            let woken = lot::wake_addr(addr, usize::MAX, u32::MAX)
                + lot::wake_addr(args[4] as usize, usize::MAX, u32::MAX);
            if r < 0 {
                r
            } else {
                r + woken as i64
            }
        }
        _ => fallback(),
    }
}

/// -1 with errno `e`, as libc's `syscall()` reports a failure.
fn fail(e: i32) -> i64 {
    // SAFETY: errno is the calling thread's (a user thread's own, in its TCB).
    unsafe { *libc::__errno_location() = e };
    -1
}

/// A wake: lot waiters first, then the kernel's for the rest of the count.
///
/// # Safety
/// As [`call`].
unsafe fn wake(addr: usize, args: [u64; 6], bits: u32, private: bool, user: bool) -> i64 {
    // The kernel wakes one waiter for a count of zero or less.
    let count = (args[2] as i32).max(1) as usize;
    let woken = lot::wake_addr(addr, count, bits);
    if woken == count {
        return woken as i64;
    }
    // An OS thread's wake always reaches the kernel (its native behaviour; a waiter there
    // may not be counted). A user thread's private one only when an OS thread may wait.
    if user && private {
        fence(Ordering::SeqCst);
        if KERNEL_WAITERS.load(Ordering::SeqCst) == 0 {
            return woken as i64;
        }
    }
    let mut kernel_args = args;
    kernel_args[2] = (count - woken) as u64;
    // SAFETY: the caller's wake, with a smaller count: FUTEX_WAKE reads no memory for a
    // private word and only checks the mapping of a shared one; it never blocks, so it
    // runs here, on the kernel thread, rather than being posted.
    let r = unsafe { flexsc_shim::sys::syscall6(libc::SYS_futex as u64, kernel_args) };
    match r {
        0.. => woken as i64 + r,
        // The lot woke someone: the call succeeded for them.
        _ if woken > 0 => woken as i64,
        _ => fail(-r as i32),
    }
}

/// A user thread's private wait on the lot.
///
/// # Safety
/// As [`call`]: `addr` is the program's futex word (4-byte aligned, checked).
unsafe fn user_wait(addr: usize, args: [u64; 6], cmd: i32, realtime: bool) -> i64 {
    let expected = args[2] as u32;
    let ts = args[3] as *const libc::timespec;
    let bits = if cmd == FUTEX_WAIT {
        u32::MAX
    } else {
        args[5] as u32
    };
    // The timeout: relative (monotonic) for FUTEX_WAIT, absolute on the monotonic or
    // (FUTEX_CLOCK_REALTIME) the realtime clock for FUTEX_WAIT_BITSET.
    let deadline = if ts.is_null() {
        None
    } else if (ts as usize) < 4096 {
        return fail(libc::EFAULT);
    } else {
        // SAFETY: the caller's timespec (not in the first page).
        let t = unsafe { *ts };
        if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
            return fail(libc::EINVAL);
        }
        if cmd == FUTEX_WAIT {
            Some(lot::deadline_after(std::time::Duration::new(
                t.tv_sec as u64,
                t.tv_nsec as u32,
            )))
        } else {
            let clock = if realtime {
                libc::CLOCK_REALTIME
            } else {
                libc::CLOCK_MONOTONIC
            };
            match super::sync::deadline_from(clock, &t) {
                Ok(d) => Some(d),
                Err(e) => return fail(e),
            }
        }
    };
    if addr < 4096 {
        return fail(libc::EFAULT);
    }
    // SAFETY: 4-byte aligned (checked by `call`), outside the first page; the program
    // gave it to the kernel to read, as the futex word.
    let word = unsafe { &*(addr as *const AtomicU32) };
    let mut interruptible = true;
    let r = loop {
        match lot::wait_futex(word, expected, bits, deadline, interruptible) {
            None => break fail(libc::EAGAIN),
            Some(Waited::Woken) => break 0,
            Some(Waited::TimedOut) => break fail(libc::ETIMEDOUT),
            // A signal for this user thread: its handler runs now; the wait fails with
            // EINTR, or, untimed and under SA_RESTART, starts again (re-reading the
            // word), as the kernel does (a timed wait's ERESTART_RESTARTBLOCK becomes
            // EINTR whatever the flags).
            Some(Waited::Interrupted) => match signal::deliver_due() {
                Delivered::Interrupt => break fail(libc::EINTR),
                Delivered::Restart if deadline.is_some() => break fail(libc::EINTR),
                Delivered::Restart => {}
                // A cancellation (a raw futex wait is no cancellation point) or an
                // ignored signal: wait on, no longer woken for it.
                Delivered::Nothing => interruptible = !super::cancel::is_due(),
            },
        }
    };
    signal::deliver_due();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn raw(args: [u64; 6]) -> i64 {
        // SAFETY: the tests' futex calls, on words they own.
        let r = unsafe { flexsc_shim::sys::syscall6(libc::SYS_futex as u64, args) };
        if r < 0 {
            // SAFETY: errno is this thread's.
            unsafe { *libc::__errno_location() = -r as i32 };
            -1
        } else {
            r
        }
    }

    fn futex_args(w: &AtomicU32, op: i32, val: u32) -> [u64; 6] {
        let op = op | libc::FUTEX_PRIVATE_FLAG;
        [w as *const AtomicU32 as u64, op as u64, val as u64, 0, 0, 0]
    }

    /// An OS thread's wait stays in the kernel, counted while it lasts; a wake through
    /// `call` reaches it and returns the number woken.
    #[test]
    fn an_os_thread_waits_in_the_kernel_and_a_wake_reaches_it() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            let args = futex_args(&w2, FUTEX_WAIT, 0);
            // SAFETY: a private wait on a live word.
            unsafe { call(args, || raw(args)) }
        });
        while KERNEL_WAITERS.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let args = futex_args(&w, FUTEX_WAKE, 1);
        let mut woken = 0;
        while !t.is_finished() {
            // SAFETY: a private wake.
            woken += unsafe { call(args, || raw(args)) };
            std::thread::yield_now();
        }
        assert_eq!(t.join().unwrap(), 0);
        assert_eq!(woken, 1);
        assert_eq!(KERNEL_WAITERS.load(Ordering::SeqCst), 0);
    }
}
