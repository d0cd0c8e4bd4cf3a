//! Signals aimed at one user thread (`pthread_kill`, `pthread_sigqueue`).
//!
//! The kernel only knows kernel threads, and a kernel thread runs many user threads in
//! turn; so a signal for a user thread waits in its record (`pending_signals`) until that
//! user thread runs, and is then sent by the user thread to its own kernel thread
//! (`tgkill`, or `rt_tgsigqueueinfo` with the value `pthread_sigqueue` gave), which
//! delivers it before the call returns: on the user thread's stack,
//! with its TCB (`pthread_self()` is the target) and its signal mask installed. The user
//! thread looks for pending signals when it starts, after each interposed call, when a
//! wait of the preload returns, at `sched_yield`, and when it unblocks signals
//! (`pthread_sigmask`); `sigwait` and friends take a pending signal of their set from
//! there. A wait that a signal interrupts natively (the sleeps, `sem_wait`, the condvar
//! and join waits, which go on after the handler, raw futex waits, `pause` and
//! `sigsuspend`) is woken through the record's
//! `lot::WaitSlot`; so is a user thread waiting for a descriptor in `poll` slices (see
//! `route_user_thread`), whose call then fails with EINTR unless the handler has
//! SA_RESTART, as natively.
//!
//! Limits: a user thread that runs without making an interposed call (a busy loop) gets
//! the signal at its next one; a call already in flight on the service side is not
//! interrupted (the signal comes when it returns); a signal blocked by the target stays
//! pending here (`sigpending` does not show it) until the target unblocks or waits for it.
//!
//! Memory ordering: the sender sets the bit and counts it in [`PENDING`] (SeqCst), then
//! wakes the target's wait, whose wake-up is a Release/Acquire pair; a running target
//! that reads a stale zero in `PENDING` finds the signal at its next check.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::thread::{self, Record};

/// Signals pending in some record: the interposed path reads this one word before it
/// looks for the calling thread's record.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// What delivering pending signals did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// No handler ran (nothing due, or only ignored and default dispositions).
    Nothing,
    /// Handlers ran, all with SA_RESTART: an interrupted call starts again.
    Restart,
    /// A handler without SA_RESTART ran: an interrupted call fails with EINTR.
    Interrupt,
}

/// The first real-time signal (glibc's SIGRTMIN is 34: it keeps 32 and 33): from it on,
/// signals queue (each `pthread_sigqueue` is delivered); below, one instance is pending.
const FIRST_RT: libc::c_int = 32;

/// pthread_kill of user thread `record` with `sig` (1..=64), or pthread_sigqueue with a
/// `value`: 0.
pub(crate) fn send(record: &Record, sig: libc::c_int, value: Option<usize>) -> libc::c_int {
    super::interrupts_in_use();
    let bit = 1u64 << (sig - 1);
    let queued = record.unless_finished(|| {
        if record.pending_signals.fetch_or(bit, Ordering::SeqCst) & bit == 0 {
            PENDING.fetch_add(1, Ordering::SeqCst);
        }
    });
    if let (Some(value), Some(())) = (value, queued) {
        record.queued_values.with(|q| {
            if sig >= FIRST_RT || !q.iter().any(|&(s, _)| s == sig) {
                q.push((sig, value));
            }
        });
    }
    if queued.is_none() {
        // A thread that ended takes no more signals (glibc: 0 as well).
        return 0;
    }
    if flexsc_scheduler::in_user_thread() && record.tcb == super::tcb::current_tp() {
        // To itself: delivered before pthread_kill returns, as natively.
        deliver_due();
    } else if record.sigmask.load(Ordering::Relaxed) & bit == 0 {
        record.wait_slot.interrupt();
    }
    0
}

/// A finished thread's pending signals: dropped, as the kernel drops a thread-directed
/// signal pending at exit.
pub(crate) fn discard(record: &Record) {
    let n = record.pending_signals.swap(0, Ordering::SeqCst).count_ones();
    if n != 0 {
        PENDING.fetch_sub(n as usize, Ordering::SeqCst);
    }
}

/// In a user thread: delivers its pending signals that it does not block.
#[inline]
pub(crate) fn deliver_due() -> Delivered {
    if PENDING.load(Ordering::Acquire) == 0 {
        return Delivered::Nothing;
    }
    thread::with_current(deliver).unwrap_or(Delivered::Nothing)
}

fn deliver(record: &Record) -> Delivered {
    let mut out = Delivered::Nothing;
    loop {
        let mask = record.sigmask.load(Ordering::Relaxed);
        let ready = record.pending_signals.load(Ordering::SeqCst) & !mask;
        if ready == 0 {
            return out;
        }
        let bit = ready & ready.wrapping_neg();
        if record.pending_signals.fetch_and(!bit, Ordering::SeqCst) & bit == 0 {
            continue;
        }
        PENDING.fetch_sub(1, Ordering::SeqCst);
        let sig = bit.trailing_zeros() as libc::c_int + 1;
        let value = take_value(record, sig, bit);
        let effect = disposition(sig as u64);
        let mut info = SigInfo::new(sig, value);
        // SAFETY: sends `sig` to the calling kernel thread, whose mask is this user
        // thread's (installed by the switch hook) and does not block it: the kernel
        // delivers it before the call returns, here, on this user thread's stack.
        // rt_tgsigqueueinfo reads `info` (128 bytes, on this stack).
        unsafe {
            let pid = flexsc_shim::sys::syscall6(libc::SYS_getpid as u64, [0; 6]);
            let tid = flexsc_shim::sys::gettid();
            let (nr, arg) = match value {
                Some(_) => (libc::SYS_rt_tgsigqueueinfo, &mut info as *mut SigInfo as u64),
                None => (libc::SYS_tgkill, 0),
            };
            flexsc_shim::sys::syscall6(nr as u64, [pid as u64, tid as u64, sig as u64, arg, 0, 0]);
        }
        out = match (out, effect) {
            (Delivered::Interrupt, _) | (_, Delivered::Interrupt) => Delivered::Interrupt,
            (Delivered::Restart, _) | (_, Delivered::Restart) => Delivered::Restart,
            _ => Delivered::Nothing,
        };
    }
}

/// What a handled `sig` does to an interrupted call, by its disposition.
fn disposition(sig: u64) -> Delivered {
    // The kernel's struct sigaction: handler, flags, restorer, mask.
    let mut old = [0u64; 4];
    // SAFETY: rt_sigaction with no new action writes the old one (32 bytes) into `old`.
    let r = unsafe {
        flexsc_shim::sys::syscall6(
            libc::SYS_rt_sigaction as u64,
            [sig, 0, old.as_mut_ptr() as u64, 8, 0, 0],
        )
    };
    let (handler, flags) = (old[0], old[1]);
    if r != 0 || handler == libc::SIG_DFL as u64 || handler == libc::SIG_IGN as u64 {
        Delivered::Nothing
    } else if flags & libc::SA_RESTART as u64 != 0 {
        Delivered::Restart
    } else {
        Delivered::Interrupt
    }
}

/// The value queued with `sig` (whose pending `bit` was just taken), if it was sent by
/// `pthread_sigqueue`; when more are queued, the bit is set again for the next one.
fn take_value(record: &Record, sig: libc::c_int, bit: u64) -> Option<usize> {
    let (value, more) = record.queued_values.with(|q| {
        let value = q.iter().position(|&(s, _)| s == sig).map(|i| q.remove(i).1);
        (value, q.iter().any(|&(s, _)| s == sig))
    });
    if more && record.pending_signals.fetch_or(bit, Ordering::SeqCst) & bit == 0 {
        PENDING.fetch_add(1, Ordering::SeqCst);
    }
    value
}

/// A `siginfo_t` as the kernel lays it out for a signal sent by a process: signo,
/// errno, code, then pid, uid and the value; 128 bytes.
#[repr(C)]
pub(crate) struct SigInfo {
    signo: i32,
    errno: i32,
    code: i32,
    pad: i32,
    pid: i32,
    uid: u32,
    value: usize,
    rest: [u64; 12],
}

impl SigInfo {
    /// What a `tgkill` (no value) or a `pthread_sigqueue` (a value) from this process
    /// carries.
    pub(crate) fn new(sig: libc::c_int, value: Option<usize>) -> SigInfo {
        // SAFETY: getpid and getuid have no preconditions.
        let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
        SigInfo {
            signo: sig,
            errno: 0,
            code: if value.is_some() {
                libc::SI_QUEUE
            } else {
                libc::SI_TKILL
            },
            pad: 0,
            pid,
            uid,
            value: value.unwrap_or(0),
            rest: [0; 12],
        }
    }
}

const _: () = assert!(std::mem::size_of::<SigInfo>() == std::mem::size_of::<libc::siginfo_t>());

/// In a user thread: takes a pending signal of `set` (a `sigwait`), if one is there, with
/// the `siginfo_t` it carries.
pub(crate) fn take(set: u64) -> Option<SigInfo> {
    if PENDING.load(Ordering::Acquire) == 0 {
        return None;
    }
    thread::with_current(|record| loop {
        let ready = record.pending_signals.load(Ordering::SeqCst) & set;
        if ready == 0 {
            return None;
        }
        let bit = ready & ready.wrapping_neg();
        if record.pending_signals.fetch_and(!bit, Ordering::SeqCst) & bit != 0 {
            PENDING.fetch_sub(1, Ordering::SeqCst);
            let sig = bit.trailing_zeros() as libc::c_int + 1;
            return Some(SigInfo::new(sig, take_value(record, sig, bit)));
        }
    })
    .flatten()
}

impl SigInfo {
    /// The signal number.
    pub(crate) fn signo(&self) -> libc::c_int {
        self.signo
    }
}
