//! A service thread: FlexSC's syscall thread, pinned to its own core.
//!
//! Each pass takes every posted entry the doorbell names and runs them as one batch.
//! Between passes it spins while work keeps coming, backs off, and after
//! `idle_spin` without work it sleeps on the doorbell (a futex wake across cores costs
//! ~70 µs in this kind of guest, so sleeping early would cost more than it saves;
//! sleeping late keeps an idle application from burning the core).

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use flexsc_shim::entry::Claim;
use flexsc_shim::page::COUNTED_NRS;
use flexsc_shim::Shared;

use flexsc_shim::resume::Resume;

use crate::execute::{self, Step};
use crate::pool::{Job, Pool};
use crate::signals;
use crate::uring::{Backend, Uring, AUTO_MIN_URING};

/// One service thread's state.
pub struct ServiceThread {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    idle_spin: Duration,
    blocking: Blocking,
    counters: Arc<ServiceCounters>,
    /// How long work has lately taken to arrive after a pass found none (moving average).
    gap_ns: u64,
    /// The entries of the current batch; reused, so a pass never allocates.
    batch: Vec<(usize, usize, u32, [u64; 6])>,
    uring: UringLane,
    /// Which of `batch` already finished through io_uring.
    handled: Vec<bool>,
}

impl ServiceThread {
    /// A service thread for `shared`'s pages, handing blocking calls to `pool`.
    pub fn new(
        shared: Arc<Shared>,
        pool: Arc<Pool>,
        idle_spin: Duration,
        blocking: Blocking,
        counters: Arc<ServiceCounters>,
    ) -> Self {
        crate::diag::remember_stderr();
        ServiceThread {
            shared,
            pool,
            idle_spin,
            blocking,
            counters,
            gap_ns: 0,
            batch: Vec::with_capacity(256),
            uring: UringLane::default(),
            handled: Vec::with_capacity(256),
        }
    }

    /// Runs batches with `backend`. Returns why io_uring cannot be used, if it was asked
    /// for and cannot (the thread then runs every batch directly).
    pub fn with_backend(mut self, backend: Backend) -> (Self, Option<String>) {
        if backend == Backend::Direct {
            return (self, None);
        }
        match Uring::new() {
            Ok(ring) => {
                self.uring.ring = Some(ring);
                self.uring.backend = backend;
                (self, None)
            }
            Err(e) => (
                self,
                Some(format!("io_uring unavailable ({e}); running batches directly")),
            ),
        }
    }

    /// Serves until the runtime stops and nothing posted is left.
    pub fn run(mut self) {
        signals::block_async_signals();
        loop {
            if self.pass() > 0 {
                continue;
            }
            if self.shared.doorbell.is_stopping() {
                // Every submitter that did not see `stopping` posted before this fence
                // in the SeqCst order, so this last look finds its entries.
                self.shared.doorbell.fence_before_last_look();
                if self.pass() == 0 {
                    return;
                }
                continue;
            }
            self.idle();
        }
    }

    /// Waits for work: spins for up to `idle_spin`, then sleeps on the doorbell.
    ///
    /// It skips the spin when work has lately been arriving further apart than the spin
    /// would last: spinning would only fail, and on a machine where threads outnumber
    /// cores it takes a core from the threads that would post the next call (measured:
    /// 8 threads on 2 cores ran 1.3x slower with a 50 µs spin than without).
    fn idle(&mut self) {
        let start = Instant::now();
        let spin = if self.gap_ns > self.idle_spin.as_nanos() as u64 {
            Duration::ZERO
        } else {
            self.idle_spin
        };
        let mut found = false;
        'spin: while start.elapsed() < spin {
            for _ in 0..128 {
                if self.shared.doorbell.has_work() || self.shared.doorbell.is_stopping() {
                    found = true;
                    break 'spin;
                }
                std::hint::spin_loop();
            }
        }
        // What this wait says about how far apart work arrives: the time it took when a
        // spin found it; "longer than a spin" when a spin failed; nothing when the spin
        // was skipped (a wake from sleep means a submitter is active now, so the average
        // decays and spinning is tried again; measuring the sleep itself would count the
        // wake-up latency and never spin again).
        let gap = if found {
            start.elapsed().as_nanos() as u64
        } else {
            self.shared.doorbell.sleep();
            if spin.is_zero() {
                0
            } else {
                2 * spin.as_nanos() as u64
            }
        };
        self.gap_ns = (self.gap_ns * 3 + gap) / 4;
    }

    /// One pass: takes every posted entry and runs them as one batch. Returns the batch
    /// size.
    pub fn pass(&mut self) -> usize {
        let shared = &*self.shared;
        shared.pass_begin();
        let batch = &mut self.batch;
        batch.clear();
        shared.doorbell.take(|index| {
            let Some(page) = shared.page(index) else {
                return;
            };
            let mut bits = page.take_pending();
            while bits != 0 {
                let slot = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                match page.entry(slot).claim() {
                    Claim::Call { nr, args } => batch.push((index, slot, nr, args)),
                    Claim::Empty | Claim::Corrupt => {}
                }
            }
        });
        let n = batch.len();
        self.handled.clear();
        self.handled.resize(n, false);
        if n > 0 {
            self.uring.run(shared, &self.batch, &mut self.handled);
        }
        for (i, &(index, slot, nr, args)) in self.batch.iter().enumerate() {
            if self.handled[i] {
                continue;
            }
            let Some(page) = shared.page(index) else {
                continue;
            };
            let entry = page.entry(slot);
            // SAFETY: the entry was posted through the submit API by its owner, whose
            // thread it belongs to; `execute::run` refuses numbers that must run on it.
            match unsafe { execute::run(nr, args) } {
                Step::Done(ret) => entry.complete(ret),
                Step::HandOff(resume) => self.hand_off(index, slot, nr, args, resume),
            }
        }
        shared.pass_end();
        if n > 0 {
            shared.batches().record(n);
            let c = &*self.counters;
            for &(_, _, nr, _) in self.batch.iter() {
                let row = (nr as usize).min(COUNTED_NRS - 1);
                c.batch_sum[row].store(c.batch_sum[row].load(Relaxed) + n as u64, Relaxed);
                c.batched[row].store(c.batched[row].load(Relaxed) + 1, Relaxed);
            }
        }
        n
    }

    /// A call that would wait: to a blocking worker, or back to its caller.
    fn hand_off(&self, index: usize, slot: usize, nr: u32, args: [u64; 6], resume: Resume) {
        let shared = &*self.shared;
        let Some(page) = shared.page(index) else { return };
        let entry = page.entry(slot);
        let counters = shared.batches();
        let done = match resume {
            Resume::Rest { done } | Resume::DiskRest { done } => done,
            Resume::Whole | Resume::Disk => 0,
        };
        if self.blocking == Blocking::Caller {
            counters.declined.fetch_add(1, Relaxed);
            entry.decline(done);
            return;
        }
        let disk = resume == Resume::Disk;
        if disk {
            shared.finishing_begin();
        }
        if self
            .pool
            .hand_off(Job {
                page: index,
                slot,
                nr,
                args,
                resume,
            })
            .is_ok()
        {
            counters.handoffs.fetch_add(1, Relaxed);
            return;
        }
        if disk {
            shared.finishing_end();
        }
        counters.declined.fetch_add(1, Relaxed);
        entry.decline(done);
    }
}

/// Where calls that would wait for an event run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Blocking {
    /// On blocking workers, so the caller's thread could do other work meanwhile (the
    /// default; what user-level threads and async callers need).
    #[default]
    Workers,
    /// Back on the caller's own thread, where a signal interrupts it exactly as it would
    /// interrupt a direct call (what the LD_PRELOAD library uses for 1:1 threads).
    Caller,
}

/// A service thread's own counters: one writer, so plain loads and stores.
pub struct ServiceCounters {
    /// For each syscall number, the sum over its delegated calls of the size of the batch
    /// each was in: divided by the delegated count, the mean batch size of that syscall.
    pub batch_sum: Box<[AtomicU64]>,
    /// For each syscall number, how many of its calls ran in a batch (delegated ones, and
    /// ones handed back to their caller).
    pub batched: Box<[AtomicU64]>,
}

impl Default for ServiceCounters {
    fn default() -> Self {
        let row = || (0..COUNTED_NRS).map(|_| AtomicU64::new(0)).collect();
        ServiceCounters {
            batch_sum: row(),
            batched: row(),
        }
    }
}

/// A service thread's io_uring state: the ring, when to use it, and the per-batch lists
/// it reuses (so a pass never allocates).
#[derive(Default)]
struct UringLane {
    ring: Option<Uring>,
    backend: Backend,
    /// The batch's io_uring-capable calls, and where each is in the batch.
    calls: Vec<(u32, [u64; 6])>,
    slots: Vec<usize>,
    /// Descriptors of this batch looked up for positional I/O, and whether they seek.
    seekable: Vec<(u64, bool)>,
}

impl UringLane {
    /// Runs the batch's io_uring-capable calls through one `io_uring_enter` (more if the
    /// ring is smaller than the batch), if the backend says so for this batch, and marks
    /// them in `handled`.
    fn run(&mut self, shared: &Shared, batch: &[(usize, usize, u32, [u64; 6])], handled: &mut [bool]) {
        if self.ring.is_none() {
            return;
        }
        self.calls.clear();
        self.slots.clear();
        self.seekable.clear();
        let auto = self.backend == Backend::Auto;
        for (i, &(_, _, nr, args)) in batch.iter().enumerate() {
            if (!auto || Uring::auto_wants(nr)) && Uring::can_run(nr, &args, &mut self.seekable) {
                self.calls.push((nr, args));
                self.slots.push(i);
            }
        }
        let k = self.calls.len();
        let worth_it = match self.backend {
            Backend::Direct => false,
            Backend::Uring => k > 0,
            Backend::Auto => k >= AUTO_MIN_URING,
        };
        let Some(ring) = self.ring.as_mut().filter(|_| worth_it) else {
            return;
        };
        let slots = &self.slots;
        // SAFETY: the calls were posted by their owners through the submit API; io_uring
        // runs them with the same meaning (see `uring`).
        let result = unsafe {
            ring.run(&self.calls, |j, ret| {
                let i = slots[j];
                let (index, slot, _, _) = batch[i];
                if let Some(page) = shared.page(index) {
                    page.entry(slot).complete(ret);
                }
                handled[i] = true;
            })
        };
        let c = shared.batches();
        c.uring_batches.fetch_add(1, Relaxed);
        c.uring_calls.fetch_add(k as u64, Relaxed);
        if let Err(e) = result {
            // The ring failed as a whole (not one call): stop using it. Calls it did not
            // answer run directly in this pass.
            crate::diag::note(format_args!(
                "flexsc: io_uring failed ({e}); service thread runs batches directly from now on"
            ));
            // Forget the ring rather than drop it: the likeliest failure is that the
            // program closed our descriptor (close_range at start-up, say), and the number
            // may now name one of its own files, which dropping the ring would close.
            std::mem::forget(self.ring.take());
        }
    }
}
