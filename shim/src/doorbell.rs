//! The doorbell: how a service thread finds posted work without sweeping every entry of
//! every page, and how a submitter wakes a service thread that went to sleep.
//!
//! # Finding work
//!
//! Three levels of bits, each set only on an edge from "nothing" to "something":
//!
//! ```text
//!   top:      bit w set      => summary[w] may be non-zero
//!   summary:  bit p of word w => page 64*w + p may have pending entries
//!   pending:  bit e of page   => entry e was posted      (lives in the page, see `page`)
//! ```
//!
//! A submitter sets its entry's bit in `pending`; only if `pending` was empty does it set
//! the page's bit in `summary`, and only if that word was empty the word's bit in `top`.
//! A service thread swaps `top` to zero, then each named summary word, then each named
//! page's `pending`, and so takes every posted entry in three short walks. The invariant
//! that makes this lossless: a bit is set at a level only while the level below holds a
//! bit that nobody has taken, or is being walked by a service thread that will take it
//! (it swapped the upper level before the lower one).
//!
//! Setting a bit uses `Release` and taking it `Acquire`, so a service thread that takes an
//! entry's bit also sees that entry's SUBMITTED status.
//!
//! # Sleeping and waking
//!
//! The need-wakeup handshake of io_uring's SQPOLL, with two SeqCst fences (a store-buffer
//! pattern: each side writes one location and then reads the other's):
//!
//! ```text
//!   submitter                          service thread
//!   set pending/summary/top bits       sleepers += 1             (SeqCst RMW)
//!   fence(SeqCst)                      fence(SeqCst)
//!   if sleepers != 0: wake             if top != 0 or stopping: sleepers -= 1, go on
//!                                      else futex_wait(epoch, e) (e read before += 1)
//! ```
//!
//! Without both fences each side may read the other's location before its own write is
//! visible, and a post lands while the service thread sleeps: a lost wake-up. With them, at
//! least one side sees the other: the submitter sees the sleeper and wakes it, or the
//! service thread sees the bits and does not sleep. The wake bumps `epoch` before the futex
//! wake, so a service thread between its check and its futex wait returns at once.
//!
//! The same two fences order shutdown: a submitter that rang after a service thread's last
//! look sees `stopping` and takes its entry back (see `Submitter`).

use crossbeam_utils::CachePadded;

use crate::primitive::{fence, futex_wait, futex_wake, AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Summary words: the runtime holds at most `64 * SUMMARY_WORDS` pages.
pub const SUMMARY_WORDS: usize = if cfg!(loom) { 2 } else { 64 };
/// The most syscall pages (so submitting threads) one runtime serves at once.
pub const MAX_PAGES: usize = 64 * SUMMARY_WORDS;

/// See the module docs.
pub struct Doorbell {
    top: CachePadded<AtomicU64>,
    summary: CachePadded<[AtomicU64; SUMMARY_WORDS]>,
    /// Read by every submitter after every post: written only when a service thread goes
    /// to sleep or wakes, and at shutdown.
    sleepers: CachePadded<AtomicU32>,
    stopping: AtomicBool,
    /// The futex word sleeping service threads wait on.
    epoch: CachePadded<AtomicU32>,
}

impl Default for Doorbell {
    fn default() -> Self {
        Self::new()
    }
}

impl Doorbell {
    /// A doorbell with nothing posted.
    pub fn new() -> Self {
        Doorbell {
            top: CachePadded::new(AtomicU64::new(0)),
            summary: CachePadded::new([(); SUMMARY_WORDS].map(|_| AtomicU64::new(0))),
            sleepers: CachePadded::new(AtomicU32::new(0)),
            stopping: AtomicBool::new(false),
            epoch: CachePadded::new(AtomicU32::new(0)),
        }
    }

    /// Submitter: page `page` went from nothing pending to something pending.
    #[inline]
    pub fn mark_page(&self, page: usize) {
        let (word, bit) = (page / 64, 1u64 << (page % 64));
        if self.summary[word].fetch_or(bit, Ordering::Release) == 0 {
            self.top.fetch_or(1 << word, Ordering::Release);
        }
    }

    /// Submitter, after any post: the fence of the handshake, then a wake if a service
    /// thread sleeps. Returns whether the runtime is stopping (the caller must then try to
    /// take its entries back).
    #[inline]
    pub fn after_post(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake(1);
        }
        self.stopping.load(Ordering::Relaxed)
    }

    fn wake(&self, count: u32) {
        self.epoch.fetch_add(1, Ordering::Release);
        futex_wake(&self.epoch, count);
    }

    /// Service thread: whether anything may be posted. Cheap: one load.
    #[inline]
    pub fn has_work(&self) -> bool {
        self.top.load(Ordering::Relaxed) != 0
    }

    /// Service thread: takes every page that may have pending entries, calling `f` with
    /// each page index.
    #[inline]
    pub fn take(&self, mut f: impl FnMut(usize)) {
        if self.top.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut words = self.top.swap(0, Ordering::Acquire);
        while words != 0 {
            let w = words.trailing_zeros() as usize;
            words &= words - 1;
            let mut pages = self.summary[w].swap(0, Ordering::Acquire);
            while pages != 0 {
                let p = pages.trailing_zeros() as usize;
                pages &= pages - 1;
                f(w * 64 + p);
            }
        }
    }

    /// Service thread: sleeps unless work is posted or the runtime is stopping. Returns
    /// after a wake (or spuriously); the caller looks for work again either way.
    pub fn sleep(&self) {
        let epoch = self.epoch.load(Ordering::Acquire);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.has_work() && !self.stopping.load(Ordering::Relaxed) {
            futex_wait(&self.epoch, epoch);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Service thread: as [`Doorbell::sleep`], but the wait is `wait(word, expected)`, which
    /// must return once a futex wake reaches `word` or `word` no longer holds `expected`
    /// (it may return earlier). For a service thread that must also wake for other events:
    /// an io_uring `FUTEX_WAIT` on the word ends its `io_uring_enter` together with the
    /// ring's other completions. Same handshake, same fences as `sleep`.
    #[cfg(not(loom))]
    pub fn sleep_with(&self, wait: impl FnOnce(*const u32, u32)) {
        let epoch = self.epoch.load(Ordering::Acquire);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.has_work() && !self.stopping.load(Ordering::Relaxed) {
            wait(self.epoch.as_ptr(), epoch);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Under loom there is no io_uring to wait in: the model's own futex sleep.
    #[cfg(loom)]
    pub fn sleep_with(&self, _wait: impl FnOnce(*const u32, u32)) {
        self.sleep();
    }

    /// Asks the service threads to stop: they drain what is posted, then exit.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // The kernel reads the count as an int: i32::MAX is "everyone" (u32::MAX would be -1).
        self.wake(i32::MAX as u32);
    }

    /// Service thread: whether `stop` was called. `Acquire`, so that the stop store is
    /// ordered before the service thread's following fence (see the module docs).
    #[inline]
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Service thread, having seen `is_stopping`: the fence that orders its last look for
    /// work after every submitter that did not see `stopping`.
    pub fn fence_before_last_look(&self) {
        fence(Ordering::SeqCst);
    }
}
