//! What submitters and service threads of one runtime share: the pages, the doorbell, and
//! the counters that say whether anything is still in flight.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64};
use std::sync::{Arc, Mutex};

use crossbeam_utils::CachePadded;

use crate::doorbell::{Doorbell, MAX_PAGES};
use crate::page::SyscallPage;
use crate::page_table::PageTable;
use crate::primitive::{AtomicU32, Ordering};

/// Why a thread could not get a syscall page.
#[derive(Debug)]
pub enum RegisterError {
    /// Every one of the runtime's pages is owned by a live thread.
    TooManyThreads,
    /// Mapping a new page failed.
    Map(io::Error),
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::TooManyThreads => {
                write!(f, "all {MAX_PAGES} syscall pages are owned by live threads")
            }
            RegisterError::Map(e) => write!(f, "cannot map a syscall page: {e}"),
        }
    }
}

impl std::error::Error for RegisterError {}

/// Tunables the submit side reads.
#[derive(Clone, Copy, Debug)]
pub struct SubmitOptions {
    /// Run every call on its caller: no service thread is running (one core, or the
    /// configured cores are unusable).
    pub direct_only: bool,
    /// How many times an owner polls its entry before sleeping on it.
    pub wait_spins: u32,
    /// Whether [`crate::Submitter::call_batch`]'s caller shares its batch with the service
    /// thread: it posts the first part (the service thread starts on it at once), runs the
    /// rest itself from the back without posting it, then takes back the posted calls no
    /// service thread has started. Two cores on one batch instead of one working and one
    /// waiting; the calls it runs count as direct. How much it posts is learned from batch
    /// to batch (`Split` in `submitter.rs`). A batch whose caller does not help is handed
    /// over whole, at its submit (one pass, one `io_uring_enter`).
    ///
    /// Posters of single calls help too, where another thread's work is waiting anyway
    /// (an asynchronous poster, a user thread of the M-on-N scheduler): when the service
    /// threads are behind ([`HELP_BACKLOG`] posted calls rung for and not taken yet), such a
    /// poster runs a call that will not wait itself instead of posting it
    /// ([`Shared::should_help`], [`crate::help`]).
    pub caller_helps: bool,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions {
            direct_only: false,
            wait_spins: 256,
            caller_helps: true,
        }
    }
}

/// Posted calls that the service threads were rung for and have not taken yet, on the page
/// a poster posts to, from which a poster that helps ([`SubmitOptions::caller_helps`]) runs
/// its next call that will not wait (a `Delegate`-class call, as far as
/// [`crate::help::run_unless_it_waits`] can tell) itself instead of posting it
/// ([`Shared::should_help`]): an asynchronous poster ([`crate::AsyncSubmitter::push`]), or
/// a user thread of the M-on-N scheduler. The service threads have that much work queued
/// already, so the poster's core adds a second pair of hands without taking work from
/// them; below it, every call is posted. `asyncpath` (docs/PROFILE.md, session 8) ran as
/// fast with 4, 8, 16 or 32 here, and twice as slow without the rule.
pub const HELP_BACKLOG: u32 = 8;

/// One service thread as owners and the relief thread see it, on slow paths only: its
/// kernel thread id, and whether it is inside a pass and how many it has begun.
///
/// The pass word (passes begun × 2, plus 1 while inside one) is written only by its
/// service thread, with plain Relaxed stores on a line of its own (two per pass), and
/// read Relaxed by others: they only use it to tell one long pass from many short ones.
#[derive(Debug)]
pub struct ServiceProgress {
    tid: i32,
    /// Its `/proc/self/task/TID/stat`, open from its start: a look at its state takes no
    /// descriptor (see [`crate::sys::ThreadStat`]). None if it could not be opened.
    stat: Option<crate::sys::ThreadStat>,
    word: CachePadded<StdAtomicU64>,
}

impl ServiceProgress {
    /// Its service thread: a pass begins.
    #[inline]
    pub fn begin(&self) {
        let w = self.word.load(std::sync::atomic::Ordering::Relaxed);
        self.word.store((w | 1) + 2, std::sync::atomic::Ordering::Relaxed);
    }

    /// Its service thread: the pass ends.
    #[inline]
    pub fn end(&self) {
        let w = self.word.load(std::sync::atomic::Ordering::Relaxed);
        self.word.store(w & !1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The pass word: odd while inside a pass; the same odd value means the same pass.
    pub fn word(&self) -> u64 {
        self.word.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The service thread's kernel thread id.
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Whether it is inside a pass and blocked in the kernel there (state S or D in
    /// `/proc/self/task/TID/stat`, or that cannot be read): a call it runs waits.
    pub fn is_blocked_in_a_pass(&self) -> bool {
        self.word() & 1 == 1
            && !matches!(
                self.stat.as_ref().and_then(crate::sys::ThreadStat::state),
                Some(b'R')
            )
    }
}

/// How long a service thread must stay blocked in one pass to count as stuck in a call
/// that waits for another party ([`StuckWatch`]): long against any batch, short against
/// a stall a program would notice.
pub const STUCK_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// Tells which service threads are stuck: blocked in the kernel in the same pass (the
/// same odd pass word) for a given time. For slow paths that look now and then (the relief
/// thread, `Shared::quiesce`).
#[derive(Debug, Default)]
pub struct StuckWatch {
    /// Per service thread (tid): the pass word seen inside a pass, and since when.
    seen: Vec<(i32, u64, std::time::Instant)>,
}

impl StuckWatch {
    /// Looks at `threads` now: how many have been blocked in the same pass for `after`.
    pub fn count(&mut self, threads: &[Arc<ServiceProgress>], after: std::time::Duration) -> u32 {
        self.seen.retain(|&(tid, word, _)| {
            threads
                .iter()
                .any(|t| t.tid() == tid && t.word() == word && word & 1 == 1)
        });
        let mut stuck = 0;
        for t in threads {
            let word = t.word();
            if word & 1 == 0 {
                continue;
            }
            match self.seen.iter().find(|s| s.0 == t.tid()) {
                Some(&(_, _, since)) => {
                    if since.elapsed() >= after && t.is_blocked_in_a_pass() {
                        stuck += 1;
                    }
                }
                None => self.seen.push((t.tid(), word, std::time::Instant::now())),
            }
        }
        stuck
    }

    /// Whether a service thread is inside a pass, as last seen.
    pub fn any_inside(&self) -> bool {
        !self.seen.is_empty()
    }
}

/// The state one runtime's submitters and service threads share.
pub struct Shared {
    /// How service threads find work and how submitters wake them.
    pub doorbell: Doorbell,
    /// Every page handed out so far, by index (handing one out never calls the
    /// allocator).
    pages: PageTable,
    free: Mutex<FreeList>,
    options: SubmitOptions,
    /// Service threads inside a pass (between taking bits and finishing their batch).
    /// Incremented with SeqCst before a pass looks at the doorbell, so `quiesce` never sees
    /// both "no bits" and "no pass" while a taken call is unfinished.
    passes: CachePadded<AtomicU32>,
    /// Calls handed to workers that do not wait for an event (the rest of a short
    /// regular-file transfer) and are not finished yet. Blocking calls are not counted:
    /// exit does not wait for them, as it would not wait for a thread blocked in `read`.
    finishing: CachePadded<StdAtomicU32>,
    /// Whether submitters may post: service threads run, and no thread of the process has
    /// changed its identity or confinement. Read (Relaxed) on every post; written when the
    /// runtime starts and when a thread isolates itself. A thread that inherits an
    /// isolation (created after it) is ordered after the store by its creation; other
    /// threads were not confined by it, so a stale `true` is still correct for them.
    delegating: CachePadded<AtomicBool>,
    /// Set once a thread isolated itself; `delegating` stays false from then on.
    isolated: AtomicBool,
    /// The service threads that run now (see `service_is_blocked`).
    service_threads: Mutex<Vec<Arc<ServiceProgress>>>,
    /// Calls a service thread ran or handed on, and how many passes found work.
    batches: CachePadded<BatchCounters>,
}

/// How many batches the service threads ran, and how big they were.
#[derive(Default)]
pub struct BatchCounters {
    /// Passes that found at least one entry.
    pub batches: StdAtomicU64,
    /// Entries taken by those passes.
    pub entries: StdAtomicU64,
    /// Batches by size: bucket i counts sizes in `2^i ..= 2^(i+1)-1` (bucket 6: 64 and up).
    pub by_size: [StdAtomicU64; 7],
    /// Calls handed to the blocking workers.
    pub handoffs: StdAtomicU64,
    /// Calls handed back to their owner: under `Blocking::Caller` every call that would
    /// wait (for an event, or for the device: an `fsync`), otherwise one that would wait
    /// for an event while every blocking worker was busy.
    pub declined: StdAtomicU64,
    /// Calls their owners took back after no service thread claimed them in
    /// [`crate::TAKE_BACK_AFTER`] (a service thread stuck in a call that waits). Written
    /// by owners, rarely.
    pub taken_back: StdAtomicU64,
    /// Calls the relief thread claimed from behind a service thread blocked in a pass
    /// (see `kernel-side/src/relief.rs`); also counted as handed to workers or declined.
    pub relieved: StdAtomicU64,
    /// Batches whose io_uring-capable calls went through one `io_uring_enter`.
    pub uring_batches: StdAtomicU64,
    /// Calls run through io_uring.
    pub uring_calls: StdAtomicU64,
}

impl BatchCounters {
    /// Counts one batch of `n` entries (n > 0).
    pub fn record(&self, n: usize) {
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        self.batches.fetch_add(1, relaxed);
        self.entries.fetch_add(n as u64, relaxed);
        let bucket = (usize::BITS - 1 - n.leading_zeros()).min(6) as usize;
        self.by_size[bucket].fetch_add(1, relaxed);
    }
}

struct FreeList {
    free: Vec<u32>,
    next: u32,
}

impl Shared {
    /// Shared state with no pages yet. Fails only if the page table cannot be mapped.
    pub fn new(options: SubmitOptions) -> io::Result<Self> {
        Ok(Shared {
            doorbell: Doorbell::new(),
            pages: PageTable::new()?,
            free: Mutex::new(FreeList {
                free: Vec::with_capacity(MAX_PAGES),
                next: 0,
            }),
            options,
            passes: CachePadded::new(AtomicU32::new(0)),
            finishing: CachePadded::new(StdAtomicU32::new(0)),
            batches: CachePadded::new(BatchCounters::default()),
            delegating: CachePadded::new(AtomicBool::new(false)),
            isolated: AtomicBool::new(false),
            service_threads: Mutex::new(Vec::new()),
        })
    }

    /// A service thread, kernel thread `tid` (None: not known), serves from now on: it
    /// reports its passes on the returned record, and hands it back to
    /// `service_thread_ends`. Opens the thread's stat file: call it where the program's own
    /// opens cannot run at the same time (the runtime's start, in the thread that spawns
    /// the service thread; see [`crate::sys::ThreadStat::open`]). Without a `tid`, the
    /// thread is taken as blocked whenever it is inside a pass.
    pub fn register_service_thread(&self, tid: Option<i32>) -> Arc<ServiceProgress> {
        let progress = Arc::new(ServiceProgress {
            tid: tid.unwrap_or(-1),
            stat: tid.and_then(crate::sys::ThreadStat::open),
            word: CachePadded::new(StdAtomicU64::new(0)),
        });
        self.service_threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&progress));
        progress
    }

    /// Service thread: it stops serving.
    pub fn service_thread_ends(&self, progress: &Arc<ServiceProgress>) {
        self.service_threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| !Arc::ptr_eq(p, progress));
    }

    /// How many service threads `watch` finds blocked in one pass for `after` (see
    /// [`StuckWatch::count`]).
    pub fn stuck_service_threads(&self, watch: &mut StuckWatch, after: std::time::Duration) -> u32 {
        let threads = self.service_threads.lock().unwrap_or_else(|e| e.into_inner());
        watch.count(&threads, after)
    }

    /// Whether a service thread is blocked in the kernel inside a pass: a call it runs
    /// waits (a FIFO's open). That is when the calls behind it are taken from it
    /// (`Entry::wait_or_take_back`). One that is only off its core (runnable, because
    /// threads outnumber cores) or idle is not: it comes to those calls itself, and they
    /// stay delegated. Reads `/proc/self/task/TID/stat`, so only for a slow path; where
    /// that cannot be read, a thread inside a pass counts as blocked (taking a call back
    /// is always correct, it only costs the delegation). With no service thread running,
    /// says yes: nobody else will run the call.
    pub fn service_is_blocked(&self) -> bool {
        let threads = self.service_threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.is_empty() || threads.iter().any(|t| t.is_blocked_in_a_pass())
    }

    /// The submit-side options.
    pub fn options(&self) -> SubmitOptions {
        self.options
    }

    /// Whether a poster should run its next call itself instead of posting it: it helps
    /// ([`SubmitOptions::caller_helps`]) and the service threads are behind on its page,
    /// where `waiting` are the posted bits they were rung for and have not taken (at least
    /// [`HELP_BACKLOG`]). Only for a call that will not wait: not for an event, not until
    /// another thread acts (an open, a close), not for the device (an `fsync`, a read of
    /// uncached data): [`crate::help::run_unless_it_waits`]. The bits come from a relaxed look:
    /// a stale count only decides whether the call is posted or run here, and both are
    /// correct.
    #[inline]
    pub fn should_help(&self, waiting: u64) -> bool {
        self.options.caller_helps && waiting.count_ones() >= HELP_BACKLOG
    }

    /// Whether a post will be served: see the field's docs.
    #[inline]
    pub fn is_delegating(&self) -> bool {
        self.delegating.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Service threads now run (called by the runtime once they do).
    pub fn set_serving(&self) {
        if !self.options.direct_only && !self.isolated.load(std::sync::atomic::Ordering::SeqCst) {
            self.delegating.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A thread changed its credentials or confinement (setuid family, seccomp, Landlock,
    /// unshare, ...). Threads it creates from now on inherit the change, and no submitter
    /// can tell them apart, so the whole process stops delegating: every call runs on its
    /// caller, with the caller's own credentials and filters.
    pub fn isolate(&self) {
        self.isolated.store(true, std::sync::atomic::Ordering::SeqCst);
        self.delegating.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs a call on the calling thread with what its class asks of the runtime around
    /// it: before `exit_group`, a wake for any service thread that sleeps and a wait
    /// ([`Shared::quiesce`], up to 10 s) for every posted call to finish; after an
    /// `Isolate`-class call that succeeded (new credentials, a seccomp filter), no more
    /// delegation ([`Shared::isolate`]). For a submitter's own calls, and for a call made
    /// where no submitter can be reached (a signal handler's, while its thread's pages
    /// are in use). Counts nothing.
    ///
    /// # Safety
    /// As for the `syscall` instruction with these arguments.
    pub unsafe fn run_on_caller(&self, nr: u64, args: [u64; 6], class: crate::table::Class) -> i64 {
        if nr == libc::SYS_exit_group as u64 {
            // The process is about to end: let every posted call finish first.
            self.doorbell.after_post();
            self.quiesce(std::time::Duration::from_secs(10));
        }
        // SAFETY: forwarded from the caller's contract.
        let ret = unsafe { crate::sys::syscall6(nr, args) };
        if class == crate::table::Class::Isolate && ret >= 0 {
            self.isolate();
        }
        ret
    }

    /// Whether a thread isolated itself.
    pub fn is_isolated(&self) -> bool {
        self.isolated.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Batch statistics, written by the service side.
    pub fn batches(&self) -> &BatchCounters {
        &self.batches
    }

    /// Gives a thread a page of its own: a page another thread released, or a new one.
    pub(crate) fn acquire_page(&self) -> Result<(usize, &SyscallPage), RegisterError> {
        let mut list = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = list.free.pop() {
            let index = index as usize;
            return Ok((index, self.page(index).expect("a released page stays mapped")));
        }
        let index = list.next as usize;
        if index >= MAX_PAGES {
            return Err(RegisterError::TooManyThreads);
        }
        let page = SyscallPage::new().map_err(RegisterError::Map)?;
        // `next` only grows, under the lock: slot `index` is empty.
        let page = self
            .pages
            .insert(index, page)
            .map_err(|_| RegisterError::TooManyThreads)?;
        list.next += 1;
        Ok((index, page))
    }

    /// Returns a page whose owner is gone. Its entries are all FREE.
    pub(crate) fn release_page(&self, index: usize) {
        let mut list = self.free.lock().unwrap_or_else(|e| e.into_inner());
        list.free.push(index as u32);
    }

    /// Page `index`, if it was ever handed out. Pages stay mapped until the runtime's
    /// shared state is dropped, so a service thread may hold the reference while the
    /// owner exits.
    #[inline]
    pub fn page(&self, index: usize) -> Option<&SyscallPage> {
        self.pages.get(index)
    }

    /// Every page handed out so far (for statistics).
    pub fn pages(&self) -> impl Iterator<Item = &SyscallPage> {
        (0..MAX_PAGES).map_while(|i| self.page(i))
    }

    /// Service thread: a pass begins. Call before looking at the doorbell.
    #[inline]
    pub fn pass_begin(&self) {
        self.passes.fetch_add(1, Ordering::SeqCst);
    }

    /// Service thread: the pass's batch is finished or handed on.
    #[inline]
    pub fn pass_end(&self) {
        self.passes.fetch_sub(1, Ordering::SeqCst);
    }

    /// Service thread: a handed-on call that does not wait for events is under way.
    pub fn finishing_begin(&self) {
        self.finishing.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// A call counted by `finishing_begin` is done.
    pub fn finishing_end(&self) {
        self.finishing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Service thread `id`: watches page `index` (see [`SyscallPage::watch`]). False if
    /// there is no such page or another service thread watches it.
    pub fn watch(&self, index: usize, id: u32) -> bool {
        self.page(index).is_some_and(|p| p.watch(id))
    }

    /// Service thread: stops watching page `index`, ringing the doorbell for the bits
    /// posters left to the watcher.
    pub fn unwatch(&self, index: usize) {
        if self.page(index).is_some_and(|p| p.unwatch()) {
            self.doorbell.mark_page(index);
        }
    }

    /// Whether every posted call has been taken and every taken call that does not wait
    /// for an event has finished. Looks at every page's bits too: a watched page's posts
    /// do not ring the doorbell.
    pub fn is_quiet(&self) -> bool {
        crate::primitive::fence(Ordering::SeqCst);
        !self.doorbell.has_work()
            && self.pages().all(|p| p.pending_bits() == 0)
            && self.passes.load(Ordering::SeqCst) == 0
            && self.finishing.load(std::sync::atomic::Ordering::SeqCst) == 0
    }

    /// Waits until `is_quiet` (used before the process exits, so that no posted call is
    /// lost). Gives up after `limit` so that a stuck call can never hang exit forever.
    ///
    /// A service thread blocked in one pass for [`STUCK_AFTER`] runs a call that waits for
    /// another party (a FIFO's open): natively the thread that made it would wait there
    /// too, and exit would end it. So that pass is not waited for, once no call is left
    /// posted behind it (its owners take those back, or the relief thread hands them on).
    /// Yields between looks for a millisecond, then sleeps a millisecond between them.
    pub fn quiesce(&self, limit: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        let mut stuck = StuckWatch::default();
        while !self.is_quiet() {
            let blocked = self.stuck_service_threads(&mut stuck, STUCK_AFTER);
            if blocked > 0 && self.is_quiet_but_for(blocked) {
                return true;
            }
            if start.elapsed() > limit {
                return false;
            }
            if start.elapsed() < std::time::Duration::from_millis(1) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        true
    }

    /// As `is_quiet`, with `stuck` passes left running and no call posted anywhere. Looks
    /// at the entries themselves, not at the doorbell and the pages' bits: the owner of a
    /// call posted behind a stuck pass takes it back, and its bit stays set until a pass
    /// takes it, which the stuck one will not.
    fn is_quiet_but_for(&self, stuck: u32) -> bool {
        crate::primitive::fence(Ordering::SeqCst);
        self.pages().all(|p| {
            (0..crate::page::ENTRIES_PER_PAGE)
                .all(|slot| p.entry(slot).status() & crate::entry::STATE_MASK != crate::entry::SUBMITTED)
        }) && self.passes.load(Ordering::SeqCst) <= stuck
            && self.finishing.load(std::sync::atomic::Ordering::SeqCst) == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicI32, Ordering as StdOrdering};
    use std::sync::Arc;

    /// A thread that reports its tid, then either spins (runnable) or sleeps in the
    /// kernel until `stop`.
    fn helper(spin: bool, stop: Arc<StdAtomicBool>) -> (i32, std::thread::JoinHandle<()>) {
        let tid = Arc::new(AtomicI32::new(0));
        let t = Arc::clone(&tid);
        let handle = std::thread::spawn(move || {
            t.store(crate::sys::gettid(), StdOrdering::SeqCst);
            while !stop.load(StdOrdering::SeqCst) {
                if spin {
                    std::hint::spin_loop();
                } else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        });
        while tid.load(StdOrdering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        (tid.load(StdOrdering::SeqCst), handle)
    }

    #[test]
    fn a_service_thread_is_blocked_when_asleep_in_the_kernel_inside_a_pass() {
        let shared = Shared::new(SubmitOptions::default()).expect("map the page table");
        assert!(
            shared.service_is_blocked(),
            "no service thread: nobody will serve"
        );
        assert_eq!(
            crate::sys::ThreadStat::open(crate::sys::gettid()).and_then(|s| s.state()),
            Some(b'R'),
            "this thread runs"
        );

        let stop = Arc::new(StdAtomicBool::new(false));
        let (spinner, spinning) = helper(true, Arc::clone(&stop));
        let spinning_one = shared.register_service_thread(Some(spinner));
        spinning_one.begin();
        assert!(
            !shared.service_is_blocked(),
            "a runnable service thread in a pass is only slow"
        );

        let (sleeper, sleeping) = helper(false, Arc::clone(&stop));
        let sleeping_one = shared.register_service_thread(Some(sleeper));
        // Asleep outside a pass: an idle service thread, not a blocked one. (It sleeps
        // almost all the time; it is never blocked whatever the look finds.)
        for _ in 0..100 {
            assert!(
                !shared.service_is_blocked(),
                "an idle service thread is not blocked"
            );
        }
        sleeping_one.begin();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !shared.service_is_blocked() {
            assert!(
                std::time::Instant::now() < deadline,
                "never seen asleep in its pass"
            );
        }
        let word = sleeping_one.word();
        sleeping_one.end();
        assert_eq!(sleeping_one.word(), word - 1, "the pass ended, the count stays");
        sleeping_one.begin();
        assert_eq!(sleeping_one.word(), word + 2, "a new pass: a new word");
        shared.service_thread_ends(&sleeping_one);
        assert!(!shared.service_is_blocked(), "only the runnable one is left");
        assert_eq!(shared.service_threads.lock().unwrap().len(), 1);

        stop.store(true, StdOrdering::SeqCst);
        spinning.join().unwrap();
        sleeping.join().unwrap();
        assert_eq!(
            crate::sys::ThreadStat::open(spinner).and_then(|s| s.state()),
            None,
            "an ended thread has no state"
        );
    }
}
