//! Waker slots: how a service thread wakes the task waiting for an asynchronous call.
//!
//! Each entry of a [`SyscallPage`](crate::SyscallPage) has a slot beside it in the page's
//! mapping. A task that polls its call and finds it still running registers its waker in
//! the slot, then looks at the entry again; whoever completes an entry posted with
//! [`NOTIFY`](crate::entry::NOTIFY) takes the waker out of the slot and wakes it.
//!
//! ```text
//!   task (any thread)                      completer (service thread or worker)
//!   register(waker): lock, store, unlock   status := DONE            (Release swap)
//!   status == DONE?  (Acquire)             take(): lock, take, unlock; waker.wake()
//! ```
//!
//! # Memory ordering
//!
//! The slot's word is a tiny lock (`LOCKED`) plus a `HAS_WAKER` bit. Locking is an
//! `Acquire` CAS and unlocking a `Release` store, so the two critical sections are ordered
//! one after the other:
//! - the task's comes first: the completer takes the task's waker and wakes it;
//! - the completer's comes first: its swap to DONE happened before its unlock, which the
//!   task's lock acquires, so the task's next look at the status finds DONE.
//!
//! Either way no wake is lost. The lock is held for a pointer move only (the waker is
//! dropped or woken after unlocking), so the other side spins for nanoseconds at most.
//!
//! A wake may be stale: the completer of an entry's previous call swaps it to DONE, its
//! owner reaps it and posts a new call there, and only then the completer takes the slot's
//! waker, which is now the new call's. That wake is spurious, never lost: whoever is woken
//! looks at the status, finds the call still running, and registers again.
//!
//! All-zero bytes are an empty slot, so the slots live in the page's zeroed mapping.

use std::mem::MaybeUninit;
use std::task::Waker;

use crate::primitive::{spin_hint, yield_now, AtomicU32, Ordering, UnsafeCell};

const LOCKED: u32 = 1;
const HAS_WAKER: u32 = 2;

/// Where the waker of one entry's task waits. See the module docs.
#[repr(C, align(64))]
pub struct WakerSlot {
    word: AtomicU32,
    waker: UnsafeCell<MaybeUninit<Waker>>,
}

// SAFETY: the waker is only reached under the slot's lock, and `Waker` is `Send + Sync`.
unsafe impl Sync for WakerSlot {}
// SAFETY: as above.
unsafe impl Send for WakerSlot {}

impl Default for WakerSlot {
    fn default() -> Self {
        WakerSlot {
            word: AtomicU32::new(0),
            waker: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl WakerSlot {
    /// Locks the slot and returns the word's bits as they were.
    fn lock(&self) -> u32 {
        let mut spins = 0u32;
        loop {
            let word = self.word.load(Ordering::Relaxed);
            if word & LOCKED == 0
                && self
                    .word
                    .compare_exchange_weak(word, word | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return word;
            }
            // The holder moves one pointer; if it was preempted, give it the core.
            spins += 1;
            if spins < 64 {
                spin_hint();
            } else {
                yield_now();
            }
        }
    }

    fn unlock(&self, has_waker: bool) {
        let word = if has_waker { HAS_WAKER } else { 0 };
        self.word.store(word, Ordering::Release);
    }

    /// Task: stores `waker` (a clone of it), replacing any earlier one. The caller must
    /// look at the entry's status again afterwards.
    pub fn register(&self, waker: &Waker) {
        let word = self.lock();
        let old = self.waker.with_mut(|cell| {
            // SAFETY: the lock is held; HAS_WAKER says whether the cell holds a waker.
            let cell = unsafe { &mut *cell };
            if word & HAS_WAKER != 0 {
                // SAFETY: HAS_WAKER: initialised.
                let current = unsafe { cell.assume_init_ref() };
                if current.will_wake(waker) {
                    return None;
                }
                // SAFETY: HAS_WAKER: initialised; it is replaced below.
                let old = unsafe { cell.assume_init_read() };
                cell.write(waker.clone());
                Some(old)
            } else {
                cell.write(waker.clone());
                None
            }
        });
        self.unlock(true);
        drop(old);
    }

    /// Whether a waker is registered (or being registered or taken). Only meaningful to
    /// the slot's owner, the only one who puts wakers in.
    pub fn is_occupied(&self) -> bool {
        self.word.load(Ordering::Relaxed) != 0
    }

    /// Takes the waker out, if one is registered.
    pub fn take(&self) -> Option<Waker> {
        let word = self.lock();
        let waker = if word & HAS_WAKER != 0 {
            // SAFETY: the lock is held and HAS_WAKER says the cell holds a waker, which
            // we move out (the bit is cleared by the unlock below).
            Some(self.waker.with_mut(|cell| unsafe { (*cell).assume_init_read() }))
        } else {
            None
        };
        self.unlock(false);
        waker
    }

    /// Completer: wakes the registered waker, if any.
    pub fn wake(&self) {
        if let Some(waker) = self.take() {
            waker.wake();
        }
    }
}

impl Drop for WakerSlot {
    fn drop(&mut self) {
        drop(self.take());
    }
}
