//! `pthread_cancel` of user threads, deferred, as glibc does it for its own threads.
//!
//! A request is one bit of the target's TCB word `cancelhandling`, next to glibc's own
//! bits (glibc 2.36 reads and CASes that word only through masks of bits 0-6, and keeps
//! the others): so `pthread_setcancelstate` and `pthread_setcanceltype` stay glibc's, and
//! a user thread checks for a request with one load at its cancellation points:
//!
//! - the waits POSIX names (condvar waits, `pthread_join`, `sem_wait` and friends, the
//!   sleeps, the `sigwait` family, `pthread_testcancel`): at entry, and when woken; a
//!   request wakes a user thread parked in one of them (`lot::WaitSlot`). A cancelled
//!   condvar wait takes the mutex back before the cleanup handlers run;
//! - the preload's wrapped calls that glibc makes cancellation points (read, write,
//!   accept, connect, recv*, send*, poll, select, epoll_wait, open, close, fsync, wait4,
//!   ...): before the call is posted and after it returns (its result is then dropped, as
//!   glibc 2.36 drops it when the cancellation signal comes during the call). While the
//!   call is in flight on the service side it cannot be interrupted; so once cancellation
//!   may be used (see `mn::interrupts_in_use`) a user thread first waits for its
//!   descriptor to be ready in short `poll` slices (`route_user_thread`), checking
//!   between them.
//!
//! Acting on it is glibc's `pthread_exit(PTHREAD_CANCELED)` (see `thread`): cleanup
//! handlers, then TLS and key destructors. The asynchronous type is treated as deferred
//! (acted on at the next cancellation point or interposed call, never in the middle of
//! other code), except that enabling it, or enabling cancellation while it is set, with a
//! request pending acts at once, as glibc does.

use std::sync::atomic::Ordering;

use super::tcb::{cancelhandling, current_tp};
use super::thread::{self, Record};

/// glibc's `cancelhandling` bits: cancellation disabled, asynchronous type, exiting.
const CANCELSTATE: i32 = 1;
const CANCELTYPE: i32 = 1 << 1;
const EXITING: i32 = 1 << 4;
/// Ours: `pthread_cancel` was called for the thread.
const REQUESTED: i32 = 1 << 8;
/// glibc's: `pthread_cancel` was called for one of its own threads (set even while
/// cancellation is disabled).
const GLIBC_CANCELED: i32 = 1 << 3;

/// Whether a thread whose `cancelhandling` is `handling` acts on a cancellation now:
/// requested, enabled, and not already exiting (a cleanup handler's own cancellation
/// points must not cancel again).
pub(crate) fn due(handling: i32) -> bool {
    handling & (REQUESTED | CANCELSTATE | EXITING) == REQUESTED
}

/// Whether `pthread_cancel` was called for the calling thread, user thread (our bit) or
/// not (glibc's), whatever its cancellation state.
pub(crate) fn requested_here() -> bool {
    cancelhandling(current_tp()).load(Ordering::SeqCst) & (REQUESTED | GLIBC_CANCELED) != 0
}

/// Whether the calling user thread acts on a cancellation now (one load).
#[inline]
pub(crate) fn is_due() -> bool {
    due(cancelhandling(current_tp()).load(Ordering::SeqCst))
}

/// A cancellation point of a user thread: acts on a pending cancellation. Only called in
/// user threads (the word is glibc's own in other threads, without our bit).
#[inline]
pub(crate) fn test() {
    if is_due() {
        act();
    }
}

/// Ends the calling user thread as cancelled.
pub(crate) fn act() -> ! {
    thread::exit(PTHREAD_CANCELED)
}

/// glibc's `PTHREAD_CANCELED`, `((void *) -1)`.
const PTHREAD_CANCELED: *mut libc::c_void = usize::MAX as *mut libc::c_void;

/// pthread_cancel of a user thread: 0 (a finished thread has nothing left to cancel).
pub(crate) fn request(record: &Record) -> libc::c_int {
    super::interrupts_in_use();
    let Some(old) =
        record.unless_finished(|| cancelhandling(record.tcb).fetch_or(REQUESTED, Ordering::SeqCst))
    else {
        return 0;
    };
    if due(old | REQUESTED) {
        record.wait_slot.interrupt();
    }
    0
}

/// After glibc's pthread_setcancelstate / pthread_setcanceltype in a user thread: with
/// the asynchronous type, a pending request is acted on at once.
pub(crate) fn after_state_change() {
    let handling = cancelhandling(current_tp()).load(Ordering::SeqCst);
    if handling & CANCELTYPE != 0 && due(handling) {
        act();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_due_only_when_enabled_and_not_exiting() {
        assert!(!due(0));
        assert!(due(REQUESTED));
        assert!(due(REQUESTED | CANCELTYPE));
        assert!(!due(REQUESTED | CANCELSTATE));
        assert!(!due(REQUESTED | EXITING));
        // glibc's own CANCELING/CANCELED bits (2, 3) are not ours.
        assert!(!due(1 << 2 | 1 << 3));
    }
}
