//! The asynchronous submit side: calls posted from any thread, reaped by whichever task
//! polls them, and woken by the thread that completes them.
//!
//! A [`Submitter`](crate::Submitter) belongs to one thread, which waits for its own calls.
//! An [`AsyncSubmitter`] is shared: futures on any executor thread post calls into its
//! pages, and the service thread that completes a call wakes the task through the
//! entry's waker slot ([`crate::notify`]), so no thread has to sweep for completions.
//!
//! ```text
//!   task: push ──> entry SUBMITTED|NOTIFY ──doorbell──> service thread runs it
//!   task: poll: Pending, register waker          ...    DONE; slot.wake() ──> executor
//!   task: poll: Done(result), entry FREE, slot back in the free mask
//! ```
//!
//! A poster that helps (the default, [`SubmitOptions::caller_helps`]) runs a call that
//! will not wait ([`crate::help`]: no event, no other thread, no disk) itself while
//! [`HELP_BACKLOG`](crate::HELP_BACKLOG) calls wait on its page for a service thread: the
//! service threads stay busy, and the poster's core runs calls too.
//!
//! [`SubmitOptions::caller_helps`]: crate::SubmitOptions::caller_helps
//!
//! A future dropped while its call is in flight [`abandon`s](AsyncSubmitter::abandon) it:
//! its buffers go to an orphan that stands in the waker slot and, when the call
//! completes, frees the entry and runs a clean-up (drop the buffers, close a descriptor
//! the call opened). Nothing is freed while the kernel may still write into it.
//!
//! # Memory ordering
//!
//! - A page's free mask (bit set = FREE) is taken with an `Acquire` CAS and given back
//!   with a `Release` `fetch_or` after the entry was reaped, so the next poster's writes
//!   to the entry come after the previous reaper's reads.
//! - Back-pressure: a poster that found every entry busy counts itself in `waiting`
//!   (`SeqCst`) and tries again; a reaper gives its entry back (`SeqCst`), then reads
//!   `waiting` (`SeqCst`). One of the two sees the other, so a waiting task is not forgotten.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Wake, Waker};

use crossbeam_utils::CachePadded;

use crate::entry::{Outcome, DECLINED, DONE, STATE_MASK};
use crate::help;
use crate::page::{SyscallPage, ENTRIES_PER_PAGE};
use crate::resume::{resume, Resume};
use crate::shared::{RegisterError, Shared};
use crate::sys;
use crate::table::{classify, Class};

/// The most pages one asynchronous submitter uses: 64 × 64 = 4,096 calls in flight.
pub const MAX_ASYNC_PAGES: usize = 64;

const ALL_FREE: u64 = if ENTRIES_PER_PAGE == 64 {
    u64::MAX
} else {
    (1 << ENTRIES_PER_PAGE) - 1
};

/// What runs when an abandoned call completes: it gets the call's raw result (or
/// `-ECANCELED` if the call never ran) and owns the call's buffers.
pub type Cleanup = Box<dyn FnOnce(i64) + Send>;

/// A posted asynchronous call. Redeem it with [`AsyncSubmitter::poll`] until it is ready,
/// or hand it to [`AsyncSubmitter::abandon`]; until then its entry stays in use.
#[must_use = "a posted call's entry stays in use until it is reaped or abandoned"]
#[derive(Debug, PartialEq, Eq)]
pub struct InFlight {
    page: u16,
    slot: u8,
    nr: u32,
    args: [u64; 6],
}

/// What [`AsyncSubmitter::push`] did with a call.
#[derive(Debug, PartialEq, Eq)]
pub enum AsyncPush {
    /// Posted: poll it.
    Posted(InFlight),
    /// Ran on the caller already (a call that must, or no service thread), with this
    /// raw result.
    Ran(i64),
    /// Every entry is in flight: call [`AsyncSubmitter::wait_for_entry`] and push again.
    Full,
}

struct AsyncPage {
    index: usize,
    page: NonNull<SyscallPage>,
    /// Entries free to post into, one bit each (bit set = FREE).
    free: CachePadded<AtomicU64>,
}

/// A set of syscall pages that any thread may post asynchronous calls into.
pub struct AsyncSubmitter {
    shared: Arc<Shared>,
    pages: [OnceLock<AsyncPage>; MAX_ASYNC_PAGES],
    /// Pages in use (a prefix of `pages`).
    count: AtomicUsize,
    grow: Mutex<()>,
    /// Tasks waiting for a free entry.
    waiting: AtomicUsize,
    waiters: Mutex<Vec<Waker>>,
}

// SAFETY: the page pointers point into `shared`'s pages, which live as long as `shared`
// (kept alive here) and are only reached through atomics; everything else is Sync.
unsafe impl Send for AsyncSubmitter {}
// SAFETY: as above.
unsafe impl Sync for AsyncSubmitter {}

thread_local! {
    /// The page this thread tries first, so that threads mostly post to pages of their own.
    static HINT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's page hint (modulo the page count, the page it tries first).
fn hint() -> usize {
    HINT.with(|h| {
        if h.get() == usize::MAX {
            // Spread threads over the pages: a cheap per-thread number.
            h.set(sys::gettid() as usize);
        }
        h.get()
    })
}

impl AsyncSubmitter {
    /// An asynchronous submitter on `shared`'s runtime. Takes its first page now, so a
    /// runtime out of pages is reported here rather than on the first call.
    pub fn new(shared: Arc<Shared>) -> Result<Self, RegisterError> {
        let submitter = AsyncSubmitter {
            shared,
            pages: [const { OnceLock::new() }; MAX_ASYNC_PAGES],
            count: AtomicUsize::new(0),
            grow: Mutex::new(()),
            waiting: AtomicUsize::new(0),
            waiters: Mutex::new(Vec::new()),
        };
        submitter.add_page(0)?;
        Ok(submitter)
    }

    fn add_page(&self, at: usize) -> Result<(), RegisterError> {
        let (index, page) = self.shared.acquire_page()?;
        let page = AsyncPage {
            index,
            page: NonNull::from(page),
            free: CachePadded::new(AtomicU64::new(ALL_FREE)),
        };
        if self.pages[at].set(page).is_err() {
            unreachable!("pages are added in order, under the grow lock");
        }
        self.count.store(at + 1, Ordering::Release);
        Ok(())
    }

    fn async_page(&self, i: usize) -> &AsyncPage {
        self.pages[i].get().expect("a page below `count` is set")
    }

    fn page(&self, i: usize) -> &SyscallPage {
        // SAFETY: pages live as long as `shared`, which `self` keeps alive.
        unsafe { self.async_page(i).page.as_ref() }
    }

    /// The runtime's shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Posts one call and rings the doorbell, or runs it here if it must run on its caller
    /// (or no service thread runs), or, when the poster helps and the service threads are
    /// behind ([`Shared::should_help`]), if it will not wait ([`help::run_unless_it_waits`]).
    ///
    /// # Safety
    /// As for [`Submitter::call`](crate::Submitter::call); pointer arguments must stay valid
    /// until the call is reaped by [`AsyncSubmitter::poll`] or, after
    /// [`AsyncSubmitter::abandon`], until its clean-up runs.
    pub unsafe fn push(&self, nr: u64, args: [u64; 6]) -> AsyncPush {
        let class = classify(nr, &args);
        let delegable = matches!(class, Class::Delegate | Class::Block);
        if !delegable || !self.shared.is_delegating() || self.shared.doorbell.is_stopping() {
            // SAFETY: forwarded.
            return AsyncPush::Ran(unsafe { self.run_here(nr, args, class) });
        }
        // Only a call that will not wait (`help::run_unless_it_waits`): this executor
        // thread's other tasks could not run meanwhile, and one of them may be what an
        // open or a close waits for (a FIFO's other end, a lingering socket's peer).
        if class == Class::Delegate && self.should_help() {
            // SAFETY: forwarded.
            if let Some(ret) = unsafe { help::run_unless_it_waits(nr, args, help::Reads::TryFirst) } {
                self.page(0).counters(nr).record_shared(false, ret);
                return AsyncPush::Ran(ret);
            }
        }
        let Some((p, slot)) = self.take_entry() else {
            return AsyncPush::Full;
        };
        let page = self.page(p);
        let entry = page.entry(slot);
        // `classify` said the number is a delegable one, so it fits in 32 bits.
        let nr32 = nr as u32;
        entry.post_notify(nr32, args);
        if page.mark_pending(1 << slot) {
            self.shared.doorbell.mark_page(self.async_page(p).index);
        }
        if self.shared.doorbell.after_post() && entry.reclaim() {
            // The runtime is stopping and no service thread took the call: run it here;
            // the first poll reaps it like any other.
            // SAFETY: forwarded.
            let ret = unsafe { sys::syscall6(nr, args) };
            entry.complete_by_owner(ret);
        }
        AsyncPush::Posted(InFlight {
            page: p as u16,
            slot: slot as u8,
            nr: nr32,
            args,
        })
    }

    /// Whether this thread should run its next call itself ([`Shared::should_help`]), by
    /// the page it posts to first (every post here rings: all its posted bits count).
    fn should_help(&self) -> bool {
        let count = self.count.load(Ordering::Acquire);
        self.shared.should_help(self.page(hint() % count).pending_bits())
    }

    /// Takes a FREE entry, trying this thread's page first, adding a page when all are
    /// busy.
    fn take_entry(&self) -> Option<(usize, usize)> {
        let count = self.count.load(Ordering::Acquire);
        let hint = hint();
        for i in 0..count {
            let p = (hint + i) % count;
            if let Some(slot) = self.take_from(p) {
                return Some((p, slot));
            }
        }
        let _guard = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.count.load(Ordering::Acquire);
        if now > count {
            // Another thread added a page meanwhile.
            return (count..now).find_map(|p| self.take_from(p).map(|slot| (p, slot)));
        }
        if now == MAX_ASYNC_PAGES || self.add_page(now).is_err() {
            return None;
        }
        self.take_from(now).map(|slot| (now, slot))
    }

    fn take_from(&self, p: usize) -> Option<usize> {
        let free = &self.async_page(p).free;
        let mut bits = free.load(Ordering::Relaxed);
        while bits != 0 {
            let bit = bits & bits.wrapping_neg();
            match free.compare_exchange_weak(bits, bits & !bit, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return Some(bit.trailing_zeros() as usize),
                Err(now) => bits = now,
            }
        }
        None
    }

    fn give_back(&self, p: usize, slot: usize) {
        self.async_page(p).free.fetch_or(1 << slot, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) != 0 {
            let waker = {
                let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
                let waker = waiters.pop();
                if waker.is_some() {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                }
                waker
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// After [`AsyncPush::Full`]: `waker` is woken when an entry is given back. Push again
    /// right after this call (an entry may have come back already).
    pub fn wait_for_entry(&self, waker: &Waker) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        waiters.push(waker.clone());
        self.waiting.fetch_add(1, Ordering::SeqCst);
    }

    /// Looks at a posted call; if it is still running, `waker` is woken when it finishes.
    /// On `Ready` the call is spent. A signal the call owes the thread that made it
    /// (SIGPIPE, SIGXFSZ: see [`crate::owed`]) is raised on the thread that polls.
    pub fn poll(&self, call: &InFlight, waker: &Waker) -> Poll<i64> {
        let (p, slot) = (call.page as usize, call.slot as usize);
        let page = self.page(p);
        let entry = page.entry(slot);
        let mut outcome = entry.poll();
        if outcome == Outcome::Pending {
            page.waker(slot).register(waker);
            outcome = entry.poll();
            if outcome == Outcome::Pending {
                return Poll::Pending;
            }
        }
        Poll::Ready(crate::owed::deliver(self.finish(call, outcome)))
    }

    /// Frees a finished call's entry and returns its result; a declined call (or the rest
    /// of a declined transfer) runs here.
    fn finish(&self, call: &InFlight, outcome: Outcome) -> i64 {
        let (p, slot) = (call.page as usize, call.slot as usize);
        let page = self.page(p);
        // A waker registered after the completer looked is stale now. Only the owner
        // ever puts a waker in the slot, so an empty slot stays empty: skip the lock.
        if page.waker(slot).is_occupied() {
            drop(page.waker(slot).take());
        }
        self.give_back(p, slot);
        let counters = page.counters(call.nr as u64);
        match outcome {
            Outcome::Done(ret) => {
                counters.record_shared(true, crate::owed::split(ret).0);
                ret
            }
            Outcome::Declined { done } => {
                let how = if done > 0 {
                    Resume::Rest { done }
                } else {
                    Resume::Whole
                };
                // SAFETY: the caller of `push` vouched for this call and its buffers.
                let ret = unsafe { resume(call.nr, call.args, how) };
                counters.record_shared(false, ret);
                ret
            }
            Outcome::Pending => unreachable!("only final outcomes are finished"),
        }
    }

    /// Gives up on a posted call whose future was dropped. The call runs to completion
    /// anyway (a system call cannot be taken back once a service thread has it); then its
    /// entry is freed and `cleanup` runs with its raw result, or `-ECANCELED` if it never
    /// ran. `cleanup` owns whatever the call's pointers point into, and closes whatever
    /// descriptor it returned. It runs on the thread that completes the call, or here.
    pub fn abandon(self: &Arc<Self>, call: InFlight, cleanup: Cleanup) {
        let (p, slot) = (call.page as usize, call.slot as usize);
        let orphan = Arc::new(Orphan {
            submitter: Arc::clone(self),
            call,
            reaped: AtomicBool::new(false),
            cleanup: Mutex::new(Some(cleanup)),
        });
        let page = self.page(p);
        page.waker(slot).register(&Waker::from(Arc::clone(&orphan)));
        // Registered first, then looked: if the call finished before the orphan stood in
        // the slot, nobody will wake it, so reap here.
        if matches!(page.entry(slot).status() & STATE_MASK, DONE | DECLINED) {
            orphan.reap();
        }
    }

    /// The raw result of a call run on the calling thread, counted.
    unsafe fn run_here(&self, nr: u64, args: [u64; 6], class: Class) -> i64 {
        // SAFETY: forwarded from the caller's contract.
        let ret = unsafe { sys::syscall6(nr, args) };
        if class == Class::Isolate && ret >= 0 {
            self.shared.isolate();
        }
        self.page(0).counters(nr).record_shared(false, ret);
        ret
    }
}

impl Drop for AsyncSubmitter {
    fn drop(&mut self) {
        // Every call was reaped or its orphan ran (both hold an `Arc` of `self`), so every
        // entry is FREE: the pages go back to the runtime.
        for i in 0..self.count.load(Ordering::Acquire) {
            self.shared.release_page(self.async_page(i).index);
        }
    }
}

/// A dropped future's call: stands in the waker slot until the call completes.
struct Orphan {
    submitter: Arc<AsyncSubmitter>,
    call: InFlight,
    reaped: AtomicBool,
    cleanup: Mutex<Option<Cleanup>>,
}

impl Orphan {
    fn reap(self: &Arc<Self>) {
        if self.reaped.swap(true, Ordering::AcqRel) {
            return;
        }
        let (p, slot) = (self.call.page as usize, self.call.slot as usize);
        let submitter = &self.submitter;
        let page = submitter.page(p);
        let ret = match page.entry(slot).poll() {
            // Nobody waits for this call any more: a signal it owed goes with its future.
            Outcome::Done(ret) => crate::owed::split(ret).0,
            Outcome::Declined { .. } => -(libc::ECANCELED as i64),
            Outcome::Pending => {
                // A stale wake: the completer of the entry's previous call swapped its
                // status to DONE, the owner reaped it and the entry was posted again
                // (ours), and only then did that completer take the slot's waker. Stand
                // in the slot again, then look again, as on abandon.
                self.reaped.store(false, Ordering::Release);
                page.waker(slot).register(&Waker::from(Arc::clone(self)));
                if matches!(page.entry(slot).status() & STATE_MASK, DONE | DECLINED) {
                    self.reap();
                }
                return;
            }
        };
        drop(page.waker(slot).take());
        submitter.give_back(p, slot);
        page.counters(self.call.nr as u64).record_shared(true, ret);
        let cleanup = self.cleanup.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(cleanup) = cleanup {
            cleanup(ret);
        }
    }
}

impl Wake for Orphan {
    fn wake(self: Arc<Self>) {
        self.reap();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.reap();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::entry::Claim;
    use crate::shared::SubmitOptions;
    use std::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A submitter whose calls are served by hand (`serve`), posting every call it can.
    fn serving() -> Arc<AsyncSubmitter> {
        serving_with(false)
    }

    fn serving_with(caller_helps: bool) -> Arc<AsyncSubmitter> {
        let options = SubmitOptions {
            caller_helps,
            ..SubmitOptions::default()
        };
        let shared = Arc::new(Shared::new(options).expect("map the page table"));
        shared.set_serving();
        Arc::new(AsyncSubmitter::new(shared).unwrap())
    }

    /// The service thread's part, by hand: claim every posted entry, complete it with
    /// `f(nr)`.
    fn serve(s: &AsyncSubmitter, f: impl Fn(u32) -> i64) -> usize {
        let mut served = 0;
        for p in 0..s.count.load(Ordering::Acquire) {
            let page = s.page(p);
            let mut bits = page.take_pending();
            while bits != 0 {
                let slot = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Claim::Call { nr, .. } = page.entry(slot).claim() {
                    page.entry(slot).complete(f(nr));
                    served += 1;
                }
            }
        }
        served
    }

    /// Abandons `call` with a clean-up that records the result it gets.
    fn abandon_recording(s: &Arc<AsyncSubmitter>, call: InFlight) -> Arc<Mutex<Option<i64>>> {
        let seen = Arc::new(Mutex::new(None));
        let seen2 = Arc::clone(&seen);
        s.abandon(call, Box::new(move |ret| *seen2.lock().unwrap() = Some(ret)));
        seen
    }

    #[test]
    fn completion_wakes_the_registered_waker_once() {
        let s = serving();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        // SAFETY: getppid takes no arguments.
        let AsyncPush::Posted(call) = (unsafe { s.push(libc::SYS_getppid as u64, [0; 6]) }) else {
            panic!("getppid is delegated while serving");
        };
        assert_eq!(s.poll(&call, &waker), Poll::Pending);
        assert_eq!(s.poll(&call, &waker), Poll::Pending, "a second poll re-registers");
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert_eq!(serve(&s, |nr| nr as i64 + 1000), 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken exactly once");
        assert_eq!(s.poll(&call, &waker), Poll::Ready(libc::SYS_getppid + 1000));
        assert_eq!(s.page(0).entry(call.slot as usize).status(), crate::entry::FREE);
        let counters = s.page(0).counters(libc::SYS_getppid as u64);
        assert_eq!(counters.delegated.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_abandoned_call_runs_its_cleanup_when_it_completes() {
        let s = serving();
        // SAFETY: getppid takes no arguments.
        let AsyncPush::Posted(call) = (unsafe { s.push(libc::SYS_getppid as u64, [0; 6]) }) else {
            panic!("getppid is delegated while serving");
        };
        let slot = call.slot as usize;
        let seen = abandon_recording(&s, call);
        assert_eq!(
            *seen.lock().unwrap(),
            None,
            "nothing runs before the call completes"
        );
        assert_eq!(
            s.async_page(0).free.load(Ordering::SeqCst) & (1 << slot),
            0,
            "entry in use"
        );
        serve(&s, |_| 77);
        assert_eq!(*seen.lock().unwrap(), Some(77));
        assert_ne!(
            s.async_page(0).free.load(Ordering::SeqCst) & (1 << slot),
            0,
            "entry back"
        );
    }

    #[test]
    fn a_stale_wake_of_an_orphan_waits_for_the_real_completion() {
        let s = serving();
        // SAFETY: getppid takes no arguments.
        let AsyncPush::Posted(call) = (unsafe { s.push(libc::SYS_getppid as u64, [0; 6]) }) else {
            panic!("getppid is delegated while serving");
        };
        let slot = call.slot as usize;
        let seen = abandon_recording(&s, call);
        // The previous call's completer, late: takes and wakes the orphan while its own
        // call is still queued.
        s.page(0).waker(slot).wake();
        assert_eq!(*seen.lock().unwrap(), None, "a stale wake reaps nothing");
        assert!(
            s.page(0).waker(slot).is_occupied(),
            "the orphan stands in the slot again"
        );
        serve(&s, |_| 9);
        assert_eq!(*seen.lock().unwrap(), Some(9));
    }

    #[test]
    fn abandoning_a_finished_call_cleans_up_at_once() {
        let s = serving();
        // SAFETY: getppid takes no arguments.
        let AsyncPush::Posted(call) = (unsafe { s.push(libc::SYS_getppid as u64, [0; 6]) }) else {
            panic!("getppid is delegated while serving");
        };
        serve(&s, |_| 5);
        let seen = abandon_recording(&s, call);
        assert_eq!(*seen.lock().unwrap(), Some(5));
    }

    #[test]
    fn full_pages_grow_then_push_back() {
        let s = serving();
        let mut calls = Vec::new();
        loop {
            // SAFETY: getppid takes no arguments.
            match unsafe { s.push(libc::SYS_getppid as u64, [0; 6]) } {
                AsyncPush::Posted(call) => calls.push(call),
                AsyncPush::Full => break,
                AsyncPush::Ran(_) => panic!("getppid is delegated while serving"),
            }
        }
        assert_eq!(calls.len(), MAX_ASYNC_PAGES * ENTRIES_PER_PAGE);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        s.wait_for_entry(&waker);
        serve(&s, |_| 1);
        let first = calls.remove(0);
        assert_eq!(s.poll(&first, &waker), Poll::Ready(1));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the waiting task is woken");
        for call in calls {
            assert_eq!(s.poll(&call, &waker), Poll::Ready(1));
        }
    }

    /// With nobody serving yet: posts `HELP_BACKLOG` getppids, after which the service
    /// thread is behind, and returns them (to be served by hand).
    fn backlog(s: &AsyncSubmitter) -> Vec<InFlight> {
        (0..crate::HELP_BACKLOG)
            // SAFETY: getppid takes no arguments.
            .map(|_| match unsafe { s.push(libc::SYS_getppid as u64, [0; 6]) } {
                AsyncPush::Posted(call) => call,
                other => panic!("posted while the backlog is short, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_poster_that_helps_runs_calls_itself_while_the_service_thread_is_behind() {
        let s = serving_with(true);
        // SAFETY: getppid takes no arguments.
        let getppid = || unsafe { s.push(libc::SYS_getppid as u64, [0; 6]) };
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let mut byte = 0u8;
        let buf = &raw mut byte as u64;
        // SAFETY: a one-byte read into `byte`, which outlives the call (reaped below).
        let read = || unsafe { s.push(libc::SYS_read as u64, [fds[0] as u64, buf, 1, 0, 0, 0]) };
        // Nobody serves yet: the first HELP_BACKLOG calls are posted, then the service
        // thread is behind, and the poster runs its calls itself.
        let mut posted = backlog(&s);
        // SAFETY: getppid takes no arguments.
        let parent = unsafe { libc::getppid() } as i64;
        for _ in 0..5 {
            assert_eq!(getppid(), AsyncPush::Ran(parent), "run here while behind");
        }
        // A call that may wait for an event is posted whatever the backlog.
        match read() {
            AsyncPush::Posted(call) => posted.push(call),
            other => panic!("a read goes to the service thread, got {other:?}"),
        }
        // The calls run here are counted as direct, the posted ones not yet.
        let counters = s.page(0).counters(libc::SYS_getppid as u64);
        let counted = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!((counted(&counters.direct), counted(&counters.delegated)), (5, 0));
        // Once served, the backlog is gone and calls are posted again.
        assert_eq!(serve(&s, |nr| nr as i64), crate::HELP_BACKLOG as usize + 1);
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        for call in &posted {
            assert_eq!(s.poll(call, &waker), Poll::Ready(call.nr as i64));
        }
        match getppid() {
            AsyncPush::Posted(call) => {
                serve(&s, |_| 1);
                assert_eq!(s.poll(&call, &waker), Poll::Ready(1));
            }
            other => panic!("posted again once the backlog is gone, got {other:?}"),
        }
        for fd in fds {
            // SAFETY: our own pipe's descriptors, closed once.
            unsafe { libc::close(fd) };
        }
    }

    /// An open may wait until another thread acts (a FIFO's other end): run on an
    /// executor thread, it would stop the task that would end the wait. So it is posted
    /// whatever the backlog.
    #[test]
    fn a_poster_that_helps_still_posts_an_open() {
        let s = serving_with(true);
        let path = std::env::temp_dir().join(format!("flexsc-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let fifo = std::ffi::CString::new(path.clone().into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a path string that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let mut posted = backlog(&s);
        // Were the open run here, it would wait for a writer: give it one after a while,
        // so that the test fails rather than hangs (read-write: a FIFO's open that never
        // waits, itself).
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(2));
                std::fs::OpenOptions::new().read(true).write(true).open(path)
            })
        };
        let args = [
            libc::AT_FDCWD as u64,
            fifo.as_ptr() as u64,
            libc::O_RDONLY as u64,
            0,
            0,
            0,
        ];
        // SAFETY: the path outlives the call, which is never run (served by hand below).
        match unsafe { s.push(libc::SYS_openat as u64, args) } {
            AsyncPush::Posted(call) => posted.push(call),
            AsyncPush::Ran(fd) => {
                // SAFETY: the descriptor the open just returned.
                unsafe { libc::close(fd as i32) };
                panic!("the open ran on the poster and waited for the writer");
            }
            AsyncPush::Full => panic!("a page with room"),
        }
        let _ = writer.join();
        let _ = std::fs::remove_file(&path);
        assert_eq!(serve(&s, |_| 0), posted.len());
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        for call in &posted {
            assert_eq!(s.poll(call, &waker), Poll::Ready(0));
        }
    }

    /// A close of a TCP socket with SO_LINGER waits until the peer has taken the unsent
    /// data (or the linger time passes): until another thread acts, like a FIFO's open.
    /// Run on an executor thread, it stops the task that would read. So it is posted
    /// whatever the backlog.
    #[test]
    fn a_poster_that_helps_still_posts_a_lingering_close() {
        use std::io::Write;
        use std::os::fd::{AsRawFd, IntoRawFd};
        let s = serving_with(true);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let set_linger = |fd: i32, secs: i32| {
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: secs,
            };
            // SAFETY: setsockopt reads one linger struct.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    &linger as *const libc::linger as *const libc::c_void,
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0);
        };
        set_linger(client.as_raw_fd(), 2);
        // Fill the connection: the server reads nothing (it would, once its task ran).
        client.set_nonblocking(true).unwrap();
        let chunk = vec![0u8; 1 << 16];
        loop {
            match client.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let fd = client.into_raw_fd();
        let mut posted = backlog(&s);
        let start = std::time::Instant::now();
        // SAFETY: our own descriptor, closed once (here or below).
        let pushed = unsafe { s.push(libc::SYS_close as u64, [fd as u64, 0, 0, 0, 0, 0]) };
        let took = start.elapsed();
        match pushed {
            AsyncPush::Posted(call) => {
                posted.push(call);
                // Not run (served by hand): close it without lingering.
                set_linger(fd, 0);
                // SAFETY: still ours.
                unsafe { libc::close(fd) };
            }
            AsyncPush::Ran(ret) => panic!(
                "the lingering close ran on the poster ({ret}) and held it for {took:?}, \
                 while the reader could not run"
            ),
            AsyncPush::Full => panic!("a page with room"),
        }
        drop(server);
        assert_eq!(serve(&s, |_| 0), posted.len());
    }

    /// An executor thread that waits for the disk holds up its other tasks: while the
    /// service thread is behind, a poster that helps still posts an `fsync`, and a
    /// `pread64` whose data is not cached; a cached one it runs.
    #[test]
    fn a_poster_that_helps_still_posts_what_waits_for_the_disk() {
        use crate::help::test_files::{byte_at, cached, uncached};
        use std::os::fd::AsRawFd;
        let s = serving_with(true);
        let mut posted = backlog(&s);
        let warm = cached("async-warm", 8192);
        let fd = warm.file.as_raw_fd() as u64;
        // SAFETY: our own descriptor; served by hand below, never run.
        match unsafe { s.push(libc::SYS_fsync as u64, [fd, 0, 0, 0, 0, 0]) } {
            AsyncPush::Posted(call) => posted.push(call),
            other => panic!("an fsync goes to the service thread, got {other:?}"),
        }
        let mut buf = vec![0u8; 4096];
        let pread = |fd: u64, buf: &mut [u8]| {
            let args = [fd, buf.as_mut_ptr() as u64, buf.len() as u64, 4096, 0, 0];
            // SAFETY: a read into `buf`, which outlives the call (run here, or served by
            // hand below without touching it).
            unsafe { s.push(libc::SYS_pread64 as u64, args) }
        };
        assert_eq!(
            pread(fd, &mut buf),
            AsyncPush::Ran(4096),
            "a cached pread runs here"
        );
        assert!(buf.iter().enumerate().all(|(i, &b)| b == byte_at(4096 + i)));
        if let Some(cold) = uncached(
            "a_poster_that_helps_still_posts_what_waits_for_the_disk",
            64 * 1024,
        ) {
            match pread(cold.file.as_raw_fd() as u64, &mut buf) {
                AsyncPush::Posted(call) => posted.push(call),
                other => panic!("a pread that would read the disk is posted, got {other:?}"),
            }
        }
        let counters = s.page(0).counters(libc::SYS_pread64 as u64);
        assert_eq!(
            counters.direct.load(Ordering::Relaxed),
            1,
            "the cached pread counts as direct"
        );
        assert_eq!(serve(&s, |_| 0), posted.len());
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        for call in &posted {
            assert_eq!(s.poll(call, &waker), Poll::Ready(0));
        }
    }

    #[test]
    fn a_poster_that_does_not_help_posts_whatever_the_backlog() {
        let s = serving_with(false);
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let calls: Vec<_> = (0..3 * crate::HELP_BACKLOG)
            // SAFETY: getppid takes no arguments.
            .map(|_| match unsafe { s.push(libc::SYS_getppid as u64, [0; 6]) } {
                AsyncPush::Posted(call) => call,
                other => panic!("every call is posted, got {other:?}"),
            })
            .collect();
        serve(&s, |_| 2);
        for call in &calls {
            assert_eq!(s.poll(call, &waker), Poll::Ready(2));
        }
    }

    #[test]
    fn calls_that_must_run_here_are_not_posted() {
        let s = serving();
        // SAFETY: gettid takes no arguments.
        let push = unsafe { s.push(libc::SYS_gettid as u64, [0; 6]) };
        assert_eq!(push, AsyncPush::Ran(sys::gettid() as i64));
    }
}
