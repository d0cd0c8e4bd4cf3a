//! The synchronisation primitives the shim is built on, in one place, so that the
//! `loom` model checker can swap in its own (`RUSTFLAGS="--cfg loom"`), as crossbeam does.
//!
//! The futex calls are here too: under loom they are modelled by a mutex and a condition
//! variable with the futex's contract (a wait returns at once unless the word still holds
//! the expected value; a wake after a change of the word is never lost).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// One step of a busy wait. Under loom a spin must yield, or the model never ends.
#[inline(always)]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Gives the core to another runnable thread (a raw `sched_yield`: never through an
/// interposed libc).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    crate::sys::sched_yield();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Sleeps while `word` holds `expected`. May return spuriously; callers re-check.
#[cfg(not(loom))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32) {
    crate::sys::futex_wait(word, expected);
}

/// Sleeps while `word` holds `expected`, for at most `timeout`. May return spuriously.
#[cfg(not(loom))]
pub(crate) fn futex_wait_for(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    crate::sys::futex_wait_for(word, expected, timeout);
}

/// Wakes up to `count` threads sleeping on `word`.
#[cfg(not(loom))]
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) {
    crate::sys::futex_wake(word, count);
}

#[cfg(loom)]
loom::lazy_static! {
    static ref FUTEX: (loom::sync::Mutex<()>, loom::sync::Condvar) =
        (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
}

#[cfg(loom)]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32) {
    let guard = FUTEX.0.lock().unwrap();
    if word.load(Ordering::SeqCst) == expected {
        drop(FUTEX.1.wait(guard).unwrap());
    }
}

/// Loom has no clock: a timed wait is a wait whose timeout may fire at once, so the model
/// returns at once (a spurious return, which the contract allows).
#[cfg(loom)]
pub(crate) fn futex_wait_for(_word: &AtomicU32, _expected: u32, _timeout: std::time::Duration) {
    loom::thread::yield_now();
}

#[cfg(loom)]
pub(crate) fn futex_wake(_word: &AtomicU32, _count: u32) {
    let _guard = FUTEX.0.lock().unwrap();
    FUTEX.1.notify_all();
}

/// A cell whose accesses loom can check: std's `UnsafeCell` with loom's closure API.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a mutable pointer to the contents; the caller ensures exclusivity.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Asks the cache for `target`'s line with intent to write (`prefetchw`): a hint, with no
/// effect on what any thread reads. Nothing under loom, or off x86-64.
#[inline(always)]
pub(crate) fn prefetch_write<T>(target: &T) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    // SAFETY: a prefetch never faults and changes no memory or flags; `target` is a live
    // reference. Written as `asm!` because the intrinsic's write hint becomes a plain read
    // prefetch unless the whole crate is built for `prfchw`; CPUs older than the
    // instruction (before Intel Broadwell) decode it as a NOP.
    unsafe {
        core::arch::asm!("prefetchw [{0}]", in(reg) target as *const T, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = target;
}
