//! Relief for a service thread stuck in a call.
//!
//! A service thread runs `Delegate` calls inline, because they finish in the time they
//! take to run. A few do not: a FIFO's `open` waits for the other end, a file system may
//! stall. Everything posted behind such a call waits with it, and if one of those calls is
//! what would end the wait (the open of the FIFO's other end, by another thread of the
//! process), the process deadlocks where natively it does not.
//!
//! An owner that sleeps on its entry takes its call back after
//! [`flexsc_shim::TAKE_BACK_AFTER`] (`Submitter::wait`). An asynchronous task, or an
//! M-on-N user thread's call that may wait for an event or for another thread, has no
//! such owner. The relief thread is for them, as FlexSC wakes another syscall thread when
//! one blocks: it looks at each service thread's pass word now and then
//! (`flexsc_shim::ServiceProgress`), and once one service thread has been inside the same
//! pass for [`RELIEVE_AFTER`], blocked in the kernel there (not merely off its core), it
//! claims every call still posted and hands each to a blocking worker, exactly as the
//! service thread hands on a call that would wait (or declines it to its owner where the
//! service thread would: `Blocking::Caller`, or every worker busy). Counted in the
//! statistics as `relieved` (and as handed to workers, or declined).
//!
//! ```text
//!   relief: sleep CHECK_EVERY ─> a service thread in the same pass for RELIEVE_AFTER,
//!           blocked in the kernel? ─> claim each SUBMITTED entry ─> pool (or decline)
//! ```
//!
//! Claims are the entries' own CAS from SUBMITTED (see `flexsc_shim::entry`), so a call is
//! run once whoever claims it: the relief, the service thread when it comes back and
//! reaches the entry (it then finds it taken), or its owner taking it back. While no pass
//! is running the relief sleeps longer and longer, up to [`IDLE_CHECK_MAX`]: an idle
//! process wakes it a few times a second at most.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use flexsc_shim::entry::{Claim, STATE_MASK, SUBMITTED};
use flexsc_shim::page::ENTRIES_PER_PAGE;
use flexsc_shim::resume::Resume;
use flexsc_shim::sys::{futex_wait_for, futex_wake};
use flexsc_shim::table::{classify, Class};
use flexsc_shim::{Shared, StuckWatch};

use crate::pool::{Job, Pool};
use crate::service::Blocking;
use crate::signals;

/// How often the relief looks while a pass is running.
pub const CHECK_EVERY: Duration = Duration::from_millis(20);
/// How long one pass may last before the calls behind it are handed on. Long against any
/// batch (a pass of 4,096 cached reads takes a few milliseconds), short against a stall a
/// program would notice.
pub const RELIEVE_AFTER: Duration = flexsc_shim::STUCK_AFTER;
/// The longest sleep while no pass is running.
pub const IDLE_CHECK_MAX: Duration = Duration::from_millis(500);

/// The handle the runtime keeps: stops and joins the relief thread.
pub(crate) struct Relief {
    /// 0 while running; 1 once asked to stop. The thread sleeps on it (a futex word).
    stop: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl Relief {
    /// Starts the relief thread of a runtime whose service threads run now (named before
    /// this returns: see `crate::spawn`). The thread calls `running` once it has run past
    /// its start.
    pub(crate) fn start(
        shared: Arc<Shared>,
        pool: Arc<Pool>,
        blocking: Blocking,
        after: Duration,
        running: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Relief> {
        let stop = Arc::new(AtomicU32::new(0));
        let word = Arc::clone(&stop);
        let spawned = crate::spawn::spawn("flexsc-relief", Some(64 * 1024), move || {
            // A runtime thread first (see the service threads' start in `runtime`).
            signals::block_async_signals();
            let _uncounted = crate::census::Uncounted::begin();
            running();
            watch(&word, &shared, &pool, blocking, after);
        })?;
        Ok(Relief {
            stop,
            thread: Some(spawned.handle),
        })
    }

    /// Stops the thread and waits for it (after the service threads ended, before the
    /// pool stops: see `Runtime::stop`).
    pub(crate) fn stop(&mut self) {
        self.stop.store(1, Ordering::Release);
        futex_wake(&self.stop, 1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Relief {
    fn drop(&mut self) {
        self.stop();
    }
}

fn watch(stop: &AtomicU32, shared: &Shared, pool: &Arc<Pool>, blocking: Blocking, after: Duration) {
    let mut sleep = CHECK_EVERY;
    let mut stuck = StuckWatch::default();
    loop {
        futex_wait_for(stop, 0, sleep);
        if stop.load(Ordering::Acquire) != 0 {
            return;
        }
        // A service thread in the same pass for `after` (RELIEVE_AFTER unless the
        // runtime's builder said otherwise), blocked in the kernel there (not only off its
        // core: then it comes back to these calls itself).
        let blocked = shared.stuck_service_threads(&mut stuck, after);
        sleep = if stuck.any_inside() {
            CHECK_EVERY
        } else {
            (sleep * 2).min(IDLE_CHECK_MAX)
        };
        if blocked > 0 {
            relieve(shared, pool, blocking);
        }
    }
}

/// Claims every call still posted in the runtime's pages and hands each on. Returns how
/// many it claimed.
pub(crate) fn relieve(shared: &Shared, pool: &Arc<Pool>, blocking: Blocking) -> u64 {
    let mut claimed = 0;
    for (index, page) in shared.pages().enumerate() {
        for slot in 0..ENTRIES_PER_PAGE {
            let entry = page.entry(slot);
            if entry.status() & STATE_MASK != SUBMITTED {
                continue;
            }
            let Claim::Call { nr, args } = entry.claim() else {
                continue;
            };
            claimed += 1;
            // As `execute::run`: a number that must run on its caller never runs here (an
            // entry scribbled by its owner), whatever the entry says.
            if !matches!(classify(u64::from(nr), &args), Class::Delegate | Class::Block) {
                entry.complete(-(libc::ENOSYS as i64));
                continue;
            }
            let job = Job {
                page: index,
                slot,
                nr,
                args,
                resume: Resume::Whole,
            };
            let counters = shared.batches();
            if blocking == Blocking::Workers && pool.hand_off(job).is_ok() {
                counters
                    .handoffs
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else {
                counters
                    .declined
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                entry.decline(0);
            }
        }
    }
    if claimed > 0 {
        shared
            .batches()
            .relieved
            .fetch_add(claimed, std::sync::atomic::Ordering::Relaxed);
    }
    claimed
}
