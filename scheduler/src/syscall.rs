//! The exception-less system call of a user thread: post, switch out, resume with the
//! result.

use std::sync::Arc;
use std::time::Duration;

use flexsc_shim::help::Reads;
use flexsc_shim::sys::syscall6;
use flexsc_shim::table::{classify, Class};

use crate::kernel_thread;
use crate::pages::{self, PagePush};
use crate::user_thread::{CurrentThread, Switch};

/// Makes system call `nr` with `args` and returns the raw result: the value, or a negated
/// errno, as the `syscall` instruction would.
///
/// Inside a user thread the call is posted to its kernel thread's syscall page and the user
/// thread switches out; other user threads run while a service thread runs the call, and
/// this one resumes with the result. Calls that must run on the calling thread (gettid,
/// signal masks, ...) and every call when no service thread runs (one usable core) run
/// here at once. When every entry is in flight, the user thread waits for one to free.
/// Outside a user thread the call runs directly.
///
/// # Safety
/// As for the `syscall` instruction: the call may unmap memory, close descriptors or end
/// the thread, and pointer arguments must be valid for what the call does with them. They
/// must point at memory that outlives the call: the caller's stack does (the user thread
/// waits for its call).
pub unsafe fn syscall(nr: libc::c_long, args: [u64; 6]) -> i64 {
    // SAFETY: forwarded from this function's contract.
    flexsc_shim::owed::deliver(unsafe { syscall_raw(nr, args) })
}

/// As [`syscall`], but a signal the call owes the calling thread (SIGPIPE, SIGXFSZ: see
/// `flexsc_shim::owed`) comes back encoded in the result instead of raised: for a caller
/// that must settle its own state first (the LD_PRELOAD library: a handler may
/// `siglongjmp` out), and then passes it to `flexsc_shim::owed::deliver`.
///
/// # Safety
/// As for [`syscall`].
pub unsafe fn syscall_raw(nr: libc::c_long, args: [u64; 6]) -> i64 {
    let nr = nr as u64;
    let Some(current) = CurrentThread::get() else {
        // SAFETY: forwarded from this function's contract.
        return unsafe { syscall6(nr, args) };
    };
    // A call that will not wait (for an event, another thread or the disk), from a user
    // thread that is alone on its kernel thread: posting it would switch to nobody, and
    // the core would only wait for the call's round trip to the service core. So it runs
    // here, directly (counted as direct). FlexSC's switch pays off only when another user
    // thread can run meanwhile, as it may during a wait for the disk.
    // The same for a call that may wait for an event but has a non-blocking form that
    // gives its own answer when it need not wait (data ready, a non-blocking socket): the
    // attempt a service thread would make, made here; posted only if it would wait.
    // And the same, with other user threads ready, while the service threads are behind
    // (`Shared::should_help`): they have work queued, and this core runs calls too.
    let class = classify(nr, &args);
    // A call made while this kernel thread's pages are borrowed runs here, directly, with
    // what its class asks of the runtime (`exit_group` lets posted calls finish, an
    // `Isolate` call stops delegation): a signal handler's, delivered as a call made here
    // (or a post) returns, interrupting the code that holds the borrow.
    let borrowed = kernel_thread::with_local(|local| {
        local
            .pages
            .try_borrow_mut()
            .is_err()
            .then(|| Arc::clone(&local.runtime))
    });
    if let Some(Some(runtime)) = borrowed {
        // SAFETY: forwarded from this function's contract.
        return unsafe { runtime.run_on_caller(nr, args, class) };
    }
    let alone_may_try = class == Class::Delegate || (class == Class::Block && pages::tries_alone(nr));
    if alone_may_try {
        let ran = kernel_thread::with_local(|local| {
            // Without delegation (one core, or a thread isolated itself) every call runs
            // here as made, on `push`'s path: no try in another form (a filter the program
            // installed may allow `pread64` and not `preadv2`).
            if !local.runtime.is_delegating() {
                return None;
            }
            // A finished call of another user thread counts as something else to run: a
            // thread that ran every call here would never switch out, and the loop that
            // reaps it would never run (a `poll(fd, 1, 0)` loop waiting for that thread
            // hung the process; Python's `multiprocessing.Pool` did). For the same reason
            // such a thread first rings for the calls posted in this round: the loop rings
            // after the round, which it would never end (one fence, only if some were;
            // only here: rung early, a round's posts would count as a backlog for
            // `should_help`).
            let mut outcome_waiting = false;
            let alone = local.scheduler.direct_when_alone && local.nothing_else_ready() && {
                let mut pages = local.pages.borrow_mut();
                pages.submit();
                outcome_waiting = pages.has_outcome_waiting();
                !outcome_waiting
            };
            if !alone && (outcome_waiting || !local.pages.borrow().should_help()) {
                return None;
            }
            let mut pages = local.pages.borrow_mut();
            if class == Class::Delegate {
                // Only a call that will not wait (`help::run_unless_it_waits`): not an
                // open, which may wait for another thread (a FIFO's other end) that could
                // be a user thread of this kernel thread, sleeping now or not even created
                // yet; not an fsync, during which the other user threads, or one that
                // wakes meanwhile, could not run; with others ready, not a read from the
                // disk either.
                let reads = if alone { Reads::AsMade } else { Reads::TryFirst };
                // SAFETY: forwarded from this function's contract.
                unsafe { pages.run_unless_it_waits(nr, args, reads) }
            } else {
                // SAFETY: forwarded.
                unsafe { pages.attempt_here(nr, args) }
            }
        });
        if let Some(Some(ret)) = ran {
            return ret;
        }
    }
    loop {
        // SAFETY: forwarded from this function's contract; the user thread stays switched
        // out (its stack intact) until the ticket is reaped.
        let pushed = kernel_thread::with_local(|local| unsafe { local.pages.borrow_mut().push(nr, args) })
            .expect("a user thread runs on a kernel thread of a scheduler");
        match pushed {
            PagePush::Ran(ret) => return ret,
            // Resumed with the raw result, which may carry a signal the call owes this
            // user thread (`flexsc_shim::owed`).
            PagePush::Posted(ticket) => return current.switch_out(Switch::Syscall(ticket)),
            PagePush::Full => {
                current.switch_out(Switch::PageFull);
            }
        }
    }
}

/// Sleeps for `duration`. In a user thread the sleep is a posted `nanosleep` (run by a
/// blocking worker), so the kernel thread runs other user threads meanwhile; elsewhere it
/// is `std::thread::sleep`.
pub fn sleep(duration: Duration) {
    if CurrentThread::get().is_none() {
        std::thread::sleep(duration);
        return;
    }
    let mut request = libc::timespec {
        tv_sec: duration.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: duration.subsec_nanos() as libc::c_long,
    };
    let mut remaining = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        let args = [
            &request as *const libc::timespec as u64,
            &mut remaining as *mut libc::timespec as u64,
            0,
            0,
            0,
            0,
        ];
        // SAFETY: nanosleep reads `request` and writes `remaining`, both on this stack,
        // which outlives the call.
        let ret = unsafe { syscall(libc::SYS_nanosleep, args) };
        if ret != -(libc::EINTR as i64) {
            return;
        }
        request = remaining;
    }
}
