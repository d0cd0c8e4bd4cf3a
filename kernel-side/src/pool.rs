//! Blocking workers: threads that run the calls which may wait for an event, so a
//! service thread never waits and the rest of its batch never waits behind one call.
//!
//! FlexSC hands the remaining entries to another syscall thread when one blocks; we hand
//! the blocking call itself to a worker instead, which comes to the same thing without a
//! kernel hook. The pool grows on demand up to its bound and shrinks when idle. When every
//! worker is busy and the bound is reached, the call is *declined*: its owner runs it on
//! its own thread, which cannot deadlock, and the pool says so once on stderr.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use flexsc_shim::Shared;

use crate::signals;
use flexsc_shim::owed;
use flexsc_shim::resume::{resume, Resume};

/// One handed-off call: where its entry is, what to run.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    /// The owner's page.
    pub page: usize,
    /// The entry in that page.
    pub slot: usize,
    /// Syscall number.
    pub nr: u32,
    /// Arguments.
    pub args: [u64; 6],
    /// What to run.
    pub resume: Resume,
}

/// The blocking workers of one runtime.
pub struct Pool {
    shared: Arc<Shared>,
    max: usize,
    state: Mutex<State>,
    work: Condvar,
    /// Signalled when the pool has no queued or running job.
    empty: Condvar,
    warned: AtomicBool,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Workers alive.
    workers: usize,
    /// Workers waiting for a job.
    idle: usize,
    /// Jobs being run.
    running: usize,
    stopping: bool,
}

const IDLE_EXIT: Duration = Duration::from_secs(10);

impl Pool {
    /// A pool of at most `max` workers (none started yet).
    pub fn new(shared: Arc<Shared>, max: usize) -> Arc<Self> {
        crate::diag::remember_stderr();
        Arc::new(Pool {
            shared,
            max: max.max(1),
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            empty: Condvar::new(),
            warned: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives `job` to a worker. `Err(job)` when every worker is busy and the bound is
    /// reached (or a worker thread cannot be started): the caller declines the entry.
    pub fn hand_off(self: &Arc<Self>, job: Job) -> Result<(), Job> {
        let mut state = self.lock();
        if state.stopping {
            return Err(job);
        }
        if state.idle > state.queue.len() {
            state.queue.push_back(job);
            self.work.notify_one();
            return Ok(());
        }
        if state.workers >= self.max {
            drop(state);
            if !self.warned.swap(true, Ordering::Relaxed) {
                crate::diag::note(format_args!(
                    "flexsc: all {} blocking workers are busy; further blocking calls run on their callers (raise FLEXSC_WORKERS)",
                    self.max
                ));
            }
            return Err(job);
        }
        state.workers += 1;
        state.queue.push_back(job);
        drop(state);
        let pool = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("flexsc-worker".into())
            .stack_size(64 * 1024)
            .spawn(move || pool.work_loop());
        if spawned.is_err() {
            let mut state = self.lock();
            state.workers -= 1;
            // Take the job back if no other worker took it.
            if let Some(i) = state
                .queue
                .iter()
                .position(|j| j.page == job.page && j.slot == job.slot)
            {
                state.queue.remove(i);
                return Err(job);
            }
        }
        Ok(())
    }

    fn work_loop(self: Arc<Self>) {
        let _uncounted = crate::census::Uncounted::begin();
        signals::block_async_signals();
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                state.running += 1;
                drop(state);
                self.run(job);
                state = self.lock();
                state.running -= 1;
                if state.queue.is_empty() && state.running == 0 {
                    self.empty.notify_all();
                }
                continue;
            }
            if state.stopping {
                break;
            }
            state.idle += 1;
            let (next, timeout) = self
                .work
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                break;
            }
        }
        state.workers -= 1;
    }

    fn run(&self, job: Job) {
        // SAFETY: the job's call was posted by its owner through the submit API and
        // claimed by a service thread, which handed it here instead of running it.
        let ret = unsafe { resume(job.nr, job.args, job.resume) };
        // A write that stopped short may have found its reader gone (SIGPIPE): a worker's
        // calls wait anyway, so it looks after every write that moved anything.
        let nr = u64::from(job.nr);
        let ret = owed::with_pending(nr, &job.args, ret, owed::writes_to_a_reader(nr));
        if let Some(page) = self.shared.page(job.page) {
            page.entry(job.slot).complete(ret);
        }
        if job.resume == Resume::Disk {
            self.shared.finishing_end();
        }
    }

    /// Waits until no job is queued or running, then lets the workers exit.
    pub fn stop(&self) {
        let mut state = self.lock();
        while !state.queue.is_empty() || state.running > 0 {
            state = self.empty.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.stopping = true;
        self.work.notify_all();
    }
}
