//! A service thread: FlexSC's syscall thread, pinned to its own core.
//!
//! Each pass takes every posted entry the doorbell names and runs them as one batch.
//! Between passes it spins while work keeps coming, backs off, and after
//! `idle_spin` without work it sleeps on the doorbell (a futex wake across cores costs
//! ~70 µs in this kind of guest, so sleeping early would cost more than it saves;
//! sleeping late keeps an idle application from burning the core). With calls parked in
//! its io_uring (see [`crate::uring`]) it sleeps in `io_uring_enter` instead, woken by a
//! completion or by the doorbell, whichever comes first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use flexsc_shim::entry::{Claim, Entry};
use flexsc_shim::owed;
use flexsc_shim::page::COUNTED_NRS;
use flexsc_shim::{ServiceProgress, Shared};

use flexsc_shim::resume::Resume;

use crate::choice::{self, Choice, KINDS};
use crate::execute::{self, Step};
use crate::pool::{Job, Pool};
use crate::signals;
use crate::uring::{self, Backend, Completion, Park, Parked, Uring, PARK_FAILED};
use flexsc_shim::sys::syscall6;
use flexsc_shim::table::waits_for_the_device;
use io_uring::squeue;

/// One service thread's state.
pub struct ServiceThread {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    idle_spin: Duration,
    blocking: Blocking,
    counters: Arc<ServiceCounters>,
    /// How long work has lately taken to arrive after a pass found none (moving average).
    gap_ns: u64,
    /// The entries whose bits the current pass took (page, slot); reused, so a pass never
    /// allocates.
    taken: Vec<(usize, usize)>,
    /// The calls of the current batch that this thread claimed; reused likewise.
    batch: Vec<(usize, usize, u32, [u64; 6])>,
    uring: UringLane,
    /// Which of `batch` already finished through io_uring.
    handled: Vec<bool>,
    /// This thread's id for watching pages (non-zero, unique in the process).
    id: u32,
    /// The page this thread polls itself, so that its owner's posts need not ring the
    /// doorbell (see [`flexsc_shim::page`]'s `Pending`): the page that last brought work
    /// when the watched one brought none. None while the thread sleeps.
    watching: Option<usize>,
    /// Where it reports its passes while it serves (see `Shared::service_is_blocked`).
    progress: Option<Arc<ServiceProgress>>,
    /// Whether the current pass runs one call only (see `device_wait`).
    alone_in_pass: bool,
    /// Whether calls of the pass claimed for the ring wait to run after the one running
    /// now (see `holds_others`).
    claimed_behind: bool,
}

/// How many times `idle` looks for work before it reads the clock (~1 µs of looks).
const QUICK_LOOKS: u32 = 256;

/// Service thread ids, for [`flexsc_shim::SyscallPage::watch`]; 0 means "nobody".
static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// How many taken entries ahead of the one it runs a pass prefetches (for writing).
const PREFETCH_AHEAD: usize = 8;

/// The lowest `n` set bits of `bits`.
#[inline]
fn lowest_bits(mut bits: u64, n: usize) -> u64 {
    let mut out = 0;
    for _ in 0..n {
        if bits == 0 {
            break;
        }
        let low = bits & bits.wrapping_neg();
        out |= low;
        bits &= bits - 1;
    }
    out
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
            taken: Vec::new(),
            batch: Vec::new(),
            uring: UringLane::default(),
            handled: Vec::new(),
            id: NEXT_ID.fetch_add(1, Relaxed).max(1),
            watching: None,
            progress: None,
            alone_in_pass: false,
            claimed_behind: false,
        }
    }

    /// Runs batches with `backend`. Returns why io_uring cannot be used, if it was asked
    /// for and cannot (the thread then runs every batch directly).
    pub fn with_backend(mut self, backend: Backend) -> (Self, Option<String>) {
        if backend == Backend::Direct {
            return (self, None);
        }
        match Uring::new() {
            Ok(mut ring) => {
                // One enter's cost, for the auto backend's choice (~10 µs, once).
                let enter_ns = ring.time_enter().unwrap_or(f64::MAX);
                self.uring.choice = Choice::new(enter_ns);
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

    /// Serves until the runtime stops and nothing posted is left, reporting its passes on
    /// the record `registered` gives (see [`Shared::register_service_thread`]: owners and
    /// the relief thread look at it, and at the thread's state, to tell a thread blocked
    /// in a call from one only off its core).
    pub fn run(mut self, registered: impl FnOnce() -> Arc<ServiceProgress>) {
        // First: from here on an interposing library runs this thread's calls directly
        // (a call it routed could start the runtime again, or post to it).
        signals::block_async_signals();
        let progress = registered();
        self.progress = Some(Arc::clone(&progress));
        self.serve();
        self.shared.service_thread_ends(&progress);
    }

    fn serve(&mut self) {
        // The per-pass lists are written on every pass: allocated here, by this thread,
        // they come from its own malloc arena, not from lines next to data the
        // submitting threads allocated (style: no hot line shared across threads).
        self.taken = Vec::with_capacity(256);
        self.batch = Vec::with_capacity(256);
        self.handled = Vec::with_capacity(256);
        self.uring.reserve();
        loop {
            // After a pass with work, `idle` looks again at once (its quick looks), which
            // costs less than an empty pass.
            if self.pass() > 0 {
                self.idle();
                continue;
            }
            if self.shared.doorbell.is_stopping() {
                // Every submitter that did not see `stopping` posted before this fence
                // in the SeqCst order, so this last look finds its entries.
                self.shared.doorbell.fence_before_last_look();
                if self.pass() == 0 {
                    // Calls parked in the ring are finished before the thread ends, as
                    // the blocking workers finish theirs: nothing posted is lost.
                    match self.uring.ring.as_mut() {
                        Some(ring) if ring.parked() > 0 => ring.wait(),
                        _ => {
                            self.unwatch();
                            return;
                        }
                    }
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
        // Work often comes back within a microsecond (a thread posting call after call):
        // look for it before reading the clock, which costs as much as ~10 looks here
        // (a clock read was 10% of the service thread's samples in a single-call profile,
        // and a post that lands during one waits for it).
        for _ in 0..QUICK_LOOKS {
            if self.shared.doorbell.has_work() || self.watched_has_work() {
                self.gap_ns = self.gap_ns * 3 / 4;
                return;
            }
            std::hint::spin_loop();
        }
        let start = Instant::now();
        let spin = if self.gap_ns > self.idle_spin.as_nanos() as u64 {
            Duration::ZERO
        } else {
            self.idle_spin
        };
        let mut found = false;
        'spin: while start.elapsed() < spin {
            for _ in 0..128 {
                if self.shared.doorbell.has_work()
                    || self.watched_has_work()
                    || self.shared.doorbell.is_stopping()
                    || self.uring.has_completions()
                {
                    found = true;
                    break 'spin;
                }
                std::hint::spin_loop();
            }
            // A thread that needs this core gets it now, not when the spin ends: the
            // program's own thread, woken here from an `fdatasync` it ran after the
            // service thread declined it, waited out the whole spin (measured: each
            // microsecond of spin added about two to a lock, pwrite, unlock, fdatasync
            // loop under `always`). A system call per round of 128 looks without work.
            flexsc_shim::sys::sched_yield();
        }
        // What this wait says about how far apart work arrives: the time it took when a
        // spin found it; "longer than a spin" when a spin failed; nothing when the spin
        // was skipped (a wake from sleep means a submitter is active now, so the average
        // decays and spinning is tried again; measuring the sleep itself would count the
        // wake-up latency and never spin again).
        let gap = if found {
            start.elapsed().as_nanos() as u64
        } else {
            // A sleeping thread polls nothing: posters must ring again.
            self.unwatch();
            match self.uring.ring.as_mut() {
                Some(ring) if ring.parked() > 0 || ring.sleeps_here() => ring.sleep(&self.shared.doorbell),
                _ => self.shared.doorbell.sleep(),
            }
            if spin.is_zero() {
                0
            } else {
                2 * spin.as_nanos() as u64
            }
        };
        self.gap_ns = (self.gap_ns * 3 + gap) / 4;
    }

    /// Whether the watched page has posted entries.
    #[inline]
    fn watched_has_work(&self) -> bool {
        self.watching
            .and_then(|p| self.shared.page(p))
            .is_some_and(|p| p.pending_bits() != 0)
    }

    /// Stops watching (before sleeping or exiting).
    fn unwatch(&mut self) {
        if let Some(p) = self.watching.take() {
            self.shared.unwatch(p);
        }
    }

    /// Takes every bit posted in page `index` into `taken`. True if it found any.
    #[inline]
    fn take_page(shared: &Shared, index: usize, taken: &mut Vec<(usize, usize)>) -> bool {
        let Some(page) = shared.page(index) else {
            return false;
        };
        let mut bits = page.take_pending();
        if bits == 0 {
            return false;
        }
        // The first few only: the rest are fetched as the pass reaches them, so that an
        // owner taking back its newest entries does not find their lines gone.
        page.prefetch(lowest_bits(bits, PREFETCH_AHEAD));
        while bits != 0 {
            let slot = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            taken.push((index, slot));
        }
        true
    }

    /// Claims a taken entry: its call, if it is still posted (its owner may have taken it
    /// back to run it itself, see `Submitter::call_batch`).
    #[inline]
    fn claim(shared: &Shared, (index, slot): (usize, usize)) -> Option<(usize, usize, u32, [u64; 6])> {
        match shared.page(index)?.entry(slot).claim() {
            Claim::Call { nr, args } => Some((index, slot, nr, args)),
            Claim::Empty | Claim::Corrupt => None,
        }
    }

    /// A taken entry's number as posted and its kind (`choice::kind`), if its call goes
    /// to the ring in this pass, from its number and flags as posted: hints, read again
    /// when it is claimed.
    #[inline]
    fn ring_kind(entry: &Entry, mask: u32) -> Option<(u32, usize)> {
        let nr = entry.number_hint();
        let k = choice::kind(nr)?;
        (mask & (1 << k) != 0 && uring::batch_hint(nr, || entry.arg_hint(2))).then_some((nr, k))
    }

    /// Runs a claimed call on this thread (or hands it on) and completes it.
    #[inline]
    fn run_direct(&mut self, (index, slot, nr, args): (usize, usize, u32, [u64; 6]), timed: bool) {
        let kind = if timed { choice::kind(nr) } else { None };
        let start = kind.map(|_| Instant::now());
        // An open that may wait until another thread acts (a FIFO's, for its other end)
        // leaves this thread while it holds other calls that nobody else can run (see
        // `holds_others`): they would wait with it, and if that other thread waits for one
        // of them the process deadlocks where natively it does not (an M-on-N user
        // thread's `fsync`, parked, then its open of a FIFO's write end, while the open of
        // the read end waits here). It goes to a worker, or back to its owner.
        // Under `Blocking::Caller` it always goes back to its owner, as every call that
        // waits for an event does there: a signal must interrupt it on the caller's
        // thread. Left here, an open timed out by a handler that `siglongjmp`s (`alarm`)
        // went on waiting after the jump, and later took the FIFO's writer (and leaked
        // its descriptor). The look (a `statx`) costs each open 300-800 ns here.
        let opens = matches!(
            nr as i64,
            libc::SYS_open
                | libc::SYS_openat
                | libc::SYS_creat
                | libc::SYS_openat2
                | libc::SYS_open_by_handle_at
        );
        let step = if opens
            && (self.blocking == Blocking::Caller || self.holds_others())
            && execute::open_may_wait(nr, &args)
        {
            Step::HandOff(Resume::Whole)
        } else {
            // SAFETY: the entry was posted through the submit API by its owner, whose
            // thread it belongs to; `execute::run` refuses numbers that must run on it.
            unsafe { execute::run(nr, args) }
        };
        // Only a call that ran here: a hand-off's time is the decision's, not the call's.
        if let (Some(k), Some(start), Step::Done(_)) = (kind, start, step) {
            self.uring
                .choice
                .record_direct(k, start.elapsed().as_nanos() as f64);
            self.uring.publish_every_so_often(&self.counters);
        }
        match step {
            Step::Done(ret) => {
                // A call that failed with EPIPE or EFBIG may have signalled this thread
                // for its caller (see `flexsc_shim::owed`).
                let ret = owed::with_pending(u64::from(nr), &args, ret, false);
                if let Some(page) = self.shared.page(index) {
                    page.entry(slot).complete(ret);
                }
            }
            Step::HandOff(Resume::Whole) if self.blocking == Blocking::Workers => {
                self.park_or_hand_off(Parked {
                    page: index,
                    slot,
                    nr,
                    args,
                })
            }
            Step::HandOff(Resume::Disk) if self.blocking == Blocking::Workers => self.device_wait(Parked {
                page: index,
                slot,
                nr,
                args,
            }),
            // A write that stopped short may have found its reader gone and signalled this
            // thread: the rest, run by its owner or a worker, fails and signals again, for
            // the owner. The signal left pending here is nobody's, and harmless: only a
            // later call that signals itself looks for one (`owed::take_pending`).
            Step::HandOff(resume) => self.hand_off(index, slot, nr, args, resume),
        }
    }

    /// Whether this thread holds calls that only it can finish, so that none of them
    /// may wait behind a call of its pass that waits for another thread: calls parked in
    /// its ring (it alone reaps the ring), parked calls reaped at the pass's start and not
    /// yet completed, and calls of the pass claimed for the ring and not yet run. (The
    /// calls of the pass not yet claimed are not held: their owners take them back, the
    /// relief thread hands them on.)
    #[inline]
    fn holds_others(&self) -> bool {
        self.claimed_behind
            || !self.uring.reaped.is_empty()
            || self.uring.ring.as_ref().is_some_and(|r| r.parked() > 0)
    }

    /// A call that waits for the device and for nothing else (`Resume::Disk`): one made
    /// to wait for it (`table::waits_for_the_device`), or a transfer of a regular file
    /// whose data is not cached. Run here when it sleeps while it waits and is alone
    /// (`runs_inline_alone`), else parked in the ring where io_uring runs it with the same
    /// meaning (an `fsync` or `fdatasync`: the ring's own workers wait), else to a
    /// blocking worker.
    ///
    /// Alone, it waits behind nobody's call, and a hand-off would only add a wake across
    /// the cores to its own wait: a loop of a 64 B write and an `fsync` through the async
    /// API took 170–200 µs per round with every `fsync` parked, 100–140 µs inline (80 µs
    /// direct). Calls posted while it runs wait for it, as before such calls were handed
    /// on, and their owners take them back after 10 ms (`Submitter::wait`: this thread is
    /// then asleep in the kernel). With other calls around, it leaves the service thread.
    fn device_wait(&mut self, call: Parked) {
        let Parked { page, slot, nr, args } = call;
        if self.runs_inline_alone(nr, &args) {
            // SAFETY: the owner's posted call, which this thread claimed.
            let ret = owed::with_pending(
                u64::from(nr),
                &args,
                unsafe { syscall6(u64::from(nr), args) },
                false,
            );
            if let Some(p) = self.shared.page(page) {
                p.entry(slot).complete(ret);
            }
            return;
        }
        let ring = self.uring.ring.as_mut().filter(|r| r.can_park());
        if let (Some(ring), Some(sqe)) = (ring, uring::device_wait_sqe(nr, &args)) {
            // SAFETY: the owner's posted call, whose owner waits for its entry; an fsync
            // reads no memory of the caller's.
            if unsafe { ring.park(call, sqe, None) }.is_ok() {
                let c = &self.counters.parked;
                c.store(c.load(Relaxed) + 1, Relaxed);
                return;
            }
        }
        self.hand_off(page, slot, nr, args, Resume::Disk);
    }

    /// Whether a device wait runs here: it is the pass's only call, nothing else is
    /// waiting (the doorbell, the watched page, which posts do not ring, the ring's
    /// completions), and it sleeps while it waits, as an `fsync` or a read from the disk
    /// do, so that calls posted meanwhile are taken back by their owners. Not the calls
    /// that may keep this thread busy instead (`copy_file_range` of cached data,
    /// populating memory: `mlock`, `MAP_POPULATE`, `MADV_POPULATE_*`; `sync`, `syncfs`):
    /// a 1 GiB `copy_file_range` inline held a `getppid` posted behind it for 240–897 ms.
    fn runs_inline_alone(&mut self, nr: u32, args: &[u64; 6]) -> bool {
        let sleeps = !waits_for_the_device(u64::from(nr), args)
            || matches!(
                nr as i64,
                libc::SYS_fsync | libc::SYS_fdatasync | libc::SYS_msync | libc::SYS_sync_file_range
            );
        let shared = &*self.shared;
        let watched_waits = self
            .watching
            .and_then(|w| shared.page(w))
            .is_some_and(|p| p.pending_bits() != 0);
        let completions = self.uring.ring.as_mut().is_some_and(|r| r.has_completions());
        sleeps && self.alone_in_pass && !shared.doorbell.has_work() && !watched_waits && !completions
    }

    /// One pass: reaps the parked calls that finished, takes every posted entry and runs
    /// them as one batch. Returns the batch size plus the parked calls finished.
    pub fn pass(&mut self) -> usize {
        let shared = &*self.shared;
        shared.pass_begin();
        if let Some(p) = &self.progress {
            p.begin();
        }
        self.uring.reap();
        let taken = &mut self.taken;
        taken.clear();
        let mut rang = None;
        shared.doorbell.take(|index| {
            if Self::take_page(shared, index, taken) {
                rang = Some(index);
            }
        });
        let watched = self.watching.is_some_and(|w| Self::take_page(shared, w, taken));
        // Watch the page that rang, unless the watched one brought work too: one thread
        // posting alone then never rings, and several take turns without churn.
        if let Some(p) = rang.filter(|&p| !watched && self.watching != Some(p)) {
            if let Some(old) = self.watching.take() {
                shared.unwatch(old);
            }
            if shared.watch(p, self.id) {
                self.watching = Some(p);
            }
        }
        // Whether some of the calls go to the ring, from each entry's number as posted (a
        // hint: a call's number and arguments are read only once it is claimed).
        let (mask, timed) = if self.taken.is_empty() {
            (0, false)
        } else {
            // Not the opens that run directly whatever the plan (`uring::batch_hint`): they
            // would only blur the learned costs of the opens that can go to the ring.
            let numbers = self.taken.iter().filter_map(|&(index, slot)| {
                let entry = shared.page(index)?.entry(slot);
                let nr = entry.number_hint();
                uring::batch_hint(nr, || entry.arg_hint(2)).then_some(nr)
            });
            self.uring.plan(numbers)
        };
        // Calls that go to the ring are claimed together, before it runs them. The others
        // are claimed one by one just before each runs, so that an owner can take back a
        // call nobody has started and run it itself: an owner waiting for its whole batch
        // (`Submitter::call_batch`), or one whose call waits behind a direct call that
        // waits for longer than anyone predicted (a FIFO's open: `Submitter::wait`).
        self.batch.clear();
        self.handled.clear();
        if mask != 0 {
            for &(index, slot) in self.taken.iter().skip(PREFETCH_AHEAD) {
                if let Some(page) = shared.page(index) {
                    page.prefetch(1 << slot);
                }
            }
            // One walk: each ring-bound entry is claimed and its SQE built as it comes; the
            // others stay taken, for the direct loop below.
            self.uring.begin();
            let mut lazy = 0;
            for i in 0..self.taken.len() {
                let (index, slot) = self.taken[i];
                let Some(entry) = shared.page(index).map(|p| p.entry(slot)) else {
                    continue;
                };
                let Some(hinted) = Self::ring_kind(entry, mask) else {
                    self.taken[lazy] = (index, slot);
                    lazy += 1;
                    continue;
                };
                let Claim::Call { nr, args } = entry.claim() else {
                    continue;
                };
                self.uring.stage(self.batch.len(), nr, &args, hinted, mask);
                self.batch.push((index, slot, nr, args));
            }
            self.taken.truncate(lazy);
            self.handled.resize(self.batch.len(), false);
            self.uring.run(shared, &self.batch, &mut self.handled, timed);
        }
        // The claimed calls the ring did not run (it refused their arguments), then the
        // rest, each claimed as it comes.
        // (Parked calls reaped at the pass's start are told only after the direct loops.)
        self.alone_in_pass = self.batch.len() + self.taken.len() == 1 && self.uring.reaped.is_empty();
        // Claimed calls behind the one running: nobody else can run them (see `holds_others`).
        let mut unrun = self.handled.iter().filter(|&&h| !h).count();
        for i in 0..self.batch.len() {
            if !self.handled[i] {
                unrun -= 1;
                self.claimed_behind = unrun > 0;
                self.run_direct(self.batch[i], timed);
            }
        }
        self.claimed_behind = false;
        for i in 0..self.taken.len() {
            if let Some(&(index, slot)) = self.taken.get(i + PREFETCH_AHEAD) {
                if let Some(page) = self.shared.page(index) {
                    page.prefetch(1 << slot);
                }
            }
            let Some(call) = Self::claim(&self.shared, self.taken[i]) else {
                continue;
            };
            self.batch.push(call);
            self.run_direct(call, timed);
        }
        if let Some(ring) = self.uring.ring.as_mut().filter(|r| r.has_unsubmitted()) {
            let reaped = &mut self.uring.reaped;
            ring.flush(|call| reaped.push((call, PARK_FAILED)));
        }
        let finished = self.finish_parked();
        let shared = &*self.shared;
        shared.pass_end();
        if let Some(p) = &self.progress {
            p.end();
        }
        let n = self.batch.len();
        if n > 0 {
            shared.batches().record(n);
            let c = &*self.counters;
            for &(_, _, nr, _) in self.batch.iter() {
                let row = (nr as usize).min(COUNTED_NRS - 1);
                c.batch_sum[row].store(c.batch_sum[row].load(Relaxed) + n as u64, Relaxed);
                c.batched[row].store(c.batched[row].load(Relaxed) + 1, Relaxed);
            }
        }
        n + finished
    }

    /// A call that would wait for an event: parked in the ring if io_uring waits for it
    /// with the same meaning, run inline if it cannot wait after all, else to a worker.
    fn park_or_hand_off(&mut self, call: Parked) {
        let Parked { page, slot, nr, args } = call;
        let Some(ring) = self.uring.ring.as_mut().filter(|r| r.can_park()) else {
            return self.hand_off(page, slot, nr, args, Resume::Whole);
        };
        match uring::park_plan(nr, &args) {
            Park::Ring(sqe, timeout) => {
                // SAFETY: the owner's posted call, whose owner waits for its entry.
                match unsafe { ring.park(call, sqe, timeout) } {
                    Ok(()) => {
                        let c = &self.counters.parked;
                        c.store(c.load(Relaxed) + 1, Relaxed);
                    }
                    Err(call) => self.hand_off(call.page, call.slot, nr, args, Resume::Whole),
                }
            }
            Park::Inline => {
                // SAFETY: the owner's call, on a descriptor where it cannot wait.
                let ret = owed::with_pending(
                    u64::from(nr),
                    &args,
                    unsafe { syscall6(u64::from(nr), args) },
                    false,
                );
                if let Some(p) = self.shared.page(page) {
                    p.entry(slot).complete(ret);
                }
            }
            Park::Worker => self.hand_off(page, slot, nr, args, Resume::Whole),
        }
    }

    /// Completes the parked calls reaped this pass. Returns how many.
    #[inline]
    fn finish_parked(&mut self) -> usize {
        if self.uring.reaped.is_empty() {
            return 0;
        }
        self.finish_reaped()
    }

    /// The slow part of `finish_parked`, out of line so the common pass stays small.
    #[inline(never)]
    fn finish_reaped(&mut self) -> usize {
        let reaped = std::mem::take(&mut self.uring.reaped);
        for &(call, ret) in &reaped {
            let Parked { page, slot, nr, args } = call;
            if ret == PARK_FAILED {
                self.hand_off(page, slot, nr, args, Resume::Whole);
            } else if call.nr as i64 == libc::SYS_poll {
                // SAFETY: a parked poll (`uring::poll_plan`), whose owner waits.
                match unsafe { uring::poll_result(&call, ret) } {
                    Some(r) => {
                        if let Some(p) = self.shared.page(page) {
                            p.entry(slot).complete(r);
                        }
                    }
                    None => self.hand_off(page, slot, nr, args, Resume::Whole),
                }
            } else if uring::short_write(&call, ret) {
                // A blocking write goes on until everything is written (a signal the ring
                // sent here for it is nobody's: the rest signals again, for its owner).
                self.hand_off(page, slot, nr, args, Resume::Rest { done: ret });
            } else if owed::ring_may_owe(ret) {
                // The ring's run sent the signal it owes the caller to this thread, or to
                // one of io_uring's workers, where nobody can tell whose it is (io_uring's
                // sends add MSG_NOSIGNAL): run again by a worker or the owner, the call
                // fails the same way and signals exactly as it would for the caller. It
                // moved nothing the first time. (A signal the ring left pending here is
                // taken with the new one, or by the next call that signals itself.)
                self.hand_off(page, slot, nr, args, Resume::Whole);
            } else if let Some(p) = self.shared.page(page) {
                p.entry(slot).complete(ret);
            }
        }
        let n = reaped.len();
        self.uring.reaped = reaped;
        self.uring.reaped.clear();
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
            // Every worker is busy. A call that waits for the device at most (it was
            // inline before it was handed on) runs here rather than go back to an owner
            // whose thread has other work (an executor's, an M-on-N kernel thread's).
            // SAFETY: the owner's posted call, which this thread claimed.
            let ret = unsafe { flexsc_shim::resume::resume(nr, args, Resume::Disk) };
            // A `copy_file_range` past RLIMIT_FSIZE signals (see `flexsc_shim::owed`).
            entry.complete(owed::with_pending(u64::from(nr), &args, ret, false));
            return;
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
    /// Calls that would have waited and were parked in the io_uring instead of going to a
    /// blocking worker.
    pub parked: AtomicU64,
    /// What the auto backend learned (published now and then by the service thread, which
    /// only ever `try_lock`s it, so a reader never holds up a pass).
    pub learned: std::sync::Mutex<Learned>,
}

/// The auto backend's learned costs, as last published by its service thread.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Learned {
    /// One `io_uring_enter` round trip, ns (measured with NOPs at start).
    pub enter_ns: Option<f64>,
    /// Per kind of call with both paths measured: (kind, direct ns per call, ring ns per
    /// call).
    pub costs: Vec<(&'static str, f64, f64)>,
}

impl Learned {
    /// One line: each kind's direct and ring cost per call, and the enter; None when
    /// nothing was learned.
    pub fn describe(&self) -> Option<String> {
        if self.costs.is_empty() {
            return None;
        }
        let kinds: Vec<String> = self
            .costs
            .iter()
            .map(|(kind, direct, ring)| {
                let choice = if ring < direct { "ring" } else { "direct" };
                format!("{kind} {direct:.0} ns direct / {ring:.0} ns in the ring (cheaper: {choice})")
            })
            .collect();
        let enter = self
            .enter_ns
            .map_or(String::new(), |e| format!("; one enter {e:.0} ns"));
        Some(format!("{}{enter}", kinds.join(", ")))
    }
}

impl Default for ServiceCounters {
    fn default() -> Self {
        let row = || (0..COUNTED_NRS).map(|_| AtomicU64::new(0)).collect();
        ServiceCounters {
            batch_sum: row(),
            batched: row(),
            parked: AtomicU64::new(0),
            learned: std::sync::Mutex::new(Learned::default()),
        }
    }
}

/// A service thread's io_uring state: the ring, when to use it, and the per-batch lists
/// it reuses (so a pass never allocates).
#[derive(Default)]
struct UringLane {
    ring: Option<Uring>,
    backend: Backend,
    /// The auto backend's learned costs.
    choice: Choice,
    /// This pass's SQEs, each with its call's index in the batch as user_data.
    sqes: Vec<squeue::Entry>,
    /// How many calls of each kind `sqes` holds (the auto backend times them together).
    ring_counts: [u32; KINDS],
    /// Descriptors of this batch looked up for positional I/O, and whether they seek.
    seekable: Vec<(u64, bool)>,
    /// Parked calls reaped in this pass, with their results, to finish after the batch.
    reaped: Vec<(Parked, i64)>,
    /// Timed calls since start, for `publish_every_so_often`.
    published: u32,
}

impl Default for Choice {
    fn default() -> Self {
        Choice::new(f64::MAX)
    }
}

impl UringLane {
    /// Publishes the auto backend's costs for the statistics, one timed call in 256 (the
    /// costs move slowly; the lock is only tried, never waited for).
    fn publish_every_so_often(&mut self, counters: &ServiceCounters) {
        self.published = self.published.wrapping_add(1);
        if self.backend != Backend::Auto || self.published % 256 != 1 {
            return;
        }
        if let Ok(mut learned) = counters.learned.try_lock() {
            let enter = self.choice.enter_ns();
            learned.enter_ns = (enter.is_finite() && enter < f64::MAX).then_some(enter);
            learned.costs.clear();
            learned.costs.extend(self.choice.costs());
        }
    }

    /// Allocates the per-pass lists (on the service thread; see `run`).
    fn reserve(&mut self) {
        if self.ring.is_some() {
            self.sqes = Vec::with_capacity(256);
            self.seekable = Vec::with_capacity(16);
            self.reaped = Vec::with_capacity(256);
        }
    }

    /// Whether a parked call's CQE waits to be reaped.
    fn has_completions(&mut self) -> bool {
        self.ring
            .as_mut()
            .is_some_and(|r| r.parked() > 0 && r.has_completions())
    }

    /// Reaps the parked calls that finished; `finish_parked` completes them.
    #[inline]
    fn reap(&mut self) {
        if self
            .ring
            .as_ref()
            .is_some_and(|r| r.parked() > 0 || r.sleeps_here())
        {
            self.reap_ring();
        }
    }

    #[inline(never)]
    fn reap_ring(&mut self) {
        let Some(ring) = self.ring.as_mut().filter(|r| r.parked() > 0 || r.sleeps_here()) else {
            return;
        };
        let reaped = &mut self.reaped;
        ring.reap(|c| {
            if let Completion::Parked(call, ret) = c {
                reaped.push((call, ret));
            }
        });
    }

    /// Which kinds of call of a batch with these numbers go to the ring (a mask of
    /// `choice` kinds), and whether this pass is timed for the auto backend's costs (the
    /// direct calls then time themselves).
    fn plan(&mut self, numbers: impl Iterator<Item = u32>) -> (u32, bool) {
        if !self.ring.as_ref().is_some_and(|r| r.is_usable()) {
            return (0, false);
        }
        match self.backend {
            // Every call that maps goes to the ring: nothing to count, so the taken entries
            // are not walked (a pass with none to send makes no enter, see `run`).
            Backend::Uring => return (u32::MAX, false),
            Backend::Direct => return (0, false),
            Backend::Auto => {}
        }
        let mut counts = [0u32; KINDS];
        for nr in numbers {
            if let Some(k) = choice::kind(nr) {
                counts[k] += 1;
            }
        }
        if counts.iter().all(|&c| c == 0) {
            return (0, false);
        }
        let sampled = self.choice.sample_this_pass();
        let (mask, explored) = self.choice.decide(&counts);
        (mask, sampled || explored)
    }

    /// Starts a pass's list of SQEs (see `stage`).
    #[inline]
    fn begin(&mut self) {
        self.sqes.clear();
        self.seekable.clear();
        self.ring_counts = [0; KINDS];
    }

    /// Adds the SQE of the batch's call `i`, if its kind is in `mask` and io_uring runs it
    /// with the same meaning. `hinted` is the number the call was posted with and its
    /// kind; the claim read the number again.
    #[inline]
    fn stage(&mut self, i: usize, nr: u32, args: &[u64; 6], hinted: (u32, usize), mask: u32) {
        let kind = if nr == hinted.0 {
            Some(hinted.1)
        } else {
            choice::kind(nr).filter(|&k| mask & (1 << k) != 0)
        };
        let Some(k) = kind else { return };
        // Not a call made to wait for the device: the pass waits for every SQE of its
        // batch. It runs from the direct loop, which parks it (`device_wait`). Nor an open
        // that may wait for another thread (an `O_CREAT` or `O_TRUNC` open of a FIFO, which
        // io_uring hands to its own worker): the direct loop hands it to one of ours.
        if waits_for_the_device(u64::from(nr), args)
            || (nr as i64 == libc::SYS_openat && crate::execute::open_may_wait(nr, args))
        {
            return;
        }
        if let Some(sqe) = uring::batch_sqe(nr, args, &mut self.seekable) {
            self.sqes.push(sqe.user_data(i as u64));
            self.ring_counts[k] += 1;
        }
    }

    /// Runs the SQEs `stage` added through one `io_uring_enter` (more if the ring is
    /// smaller than the batch), completes their calls and marks them in `handled`.
    fn run(
        &mut self,
        shared: &Shared,
        batch: &[(usize, usize, u32, [u64; 6])],
        handled: &mut [bool],
        timed: bool,
    ) {
        let Some(ring) = self.ring.as_mut().filter(|r| r.is_usable()) else {
            return;
        };
        let k = self.sqes.len();
        if k == 0 {
            return;
        }
        let reaped = &mut self.reaped;
        let start = Instant::now();
        // SAFETY: the calls were posted by their owners through the submit API; io_uring
        // runs them with the same meaning (see `uring`).
        let result = unsafe {
            ring.run(&self.sqes, |c| match c {
                Completion::Batch(i, ret) => {
                    let (index, slot, nr, args) = batch[i];
                    let refused = nr as i64 == libc::SYS_close
                        && ret == -(libc::EBADF as i64)
                        && crate::uring::is_io_uring_instance(args[0]);
                    if owed::ring_may_owe(ret) {
                        // Run again directly in this pass, as in `finish_reaped`.
                        return;
                    }
                    let ret = if refused {
                        // IORING_OP_CLOSE refuses an io_uring instance's descriptor
                        // (EBADF), which close(2) closes: the syscall's own answer. The
                        // ring closed nothing. (Any other EBADF stands: the descriptor was
                        // not open, or the ring closed it and the file's flush answered
                        // EBADF, as close(2) would have; closing again could close a file
                        // another thread just opened.)
                        // (Inside the block's `unsafe`: the posted close, run as its owner
                        // asked.)
                        flexsc_shim::sys::syscall6(nr as u64, args)
                    } else {
                        ret
                    };
                    if let Some(page) = shared.page(index) {
                        page.entry(slot).complete(ret);
                    }
                    handled[i] = true;
                }
                Completion::Parked(call, ret) => reaped.push((call, ret)),
            })
        };
        if timed && result.is_ok() {
            self.choice
                .record_ring(&self.ring_counts, start.elapsed().as_nanos() as f64);
        }
        let c = shared.batches();
        c.uring_batches.fetch_add(1, Relaxed);
        c.uring_calls.fetch_add(k as u64, Relaxed);
        // If the ring failed as a whole (not one call), it is marked unusable: the calls
        // it did not answer run directly in this pass, and every batch after.
    }
}
