//! A user thread: a closure running on its own stack as a corosensei coroutine, and the
//! one way it leaves the CPU: [`CurrentThread::switch_out`], which suspends it back into
//! its kernel thread's loop with the reason ([`Switch`]).
//!
//! ```text
//!   kernel thread's stack                    user thread's stack (GuardedStack)
//!   loop: coroutine.resume(value) ---------> body: Running { yielder, parker, guard }
//!                                                   CURRENT = &running
//!                                                   ... user code ...
//!         CoroutineResult::Yield(switch) <-------- yielder.suspend(switch)
//!   CURRENT = null; act on `switch`                 (returns `value` when resumed)
//! ```
//!
//! `CURRENT` is a per-kernel-thread pointer to the [`Running`] record of the user thread
//! that runs now, or null while the loop runs. The record lives in the body's frame at the
//! base of the user thread's own stack, so it stays put for the thread's whole life. The
//! body sets `CURRENT` when it starts and after every switch back in; the loop clears it
//! after every switch out. Nothing else is shared between the two sides: the loop keeps the
//! coroutine, the user thread keeps its record, and values cross only through the switch.

use std::cell::Cell;
use std::ops::Range;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use corosensei::{Coroutine, Yielder};

use crate::inbox::Inbox;
use crate::kernel_thread::Local;
use crate::pages::PageTicket;
use crate::park::UserParker;
use crate::stack::GuardedStack;

/// A user thread's coroutine: resumed with a value (a system call's result, else 0), it
/// suspends with a [`Switch`] and returns nothing (its closure's result goes to its join
/// handle).
pub(crate) type UserCoroutine = Coroutine<i64, Switch, (), GuardedStack>;

/// Why a user thread switched out, and what the loop must do with it.
pub(crate) enum Switch {
    /// It yields: ready again at once, behind the others.
    Yield,
    /// It posted a call: resume it with the call's result when the call is reaped.
    Syscall(PageTicket),
    /// Every entry of every page it may use is in flight: resume it when one is free, so
    /// it can post again.
    PageFull,
    /// It parked: resume it when an unparker delivers it.
    Park,
}

/// A new user thread, on its way to the kernel thread that will run it.
pub(crate) struct Task {
    /// The closure, wrapped so that it never unwinds and hands its result to the join
    /// handle.
    pub(crate) body: Box<dyn FnOnce() + Send>,
    /// Its stack, mapped by the spawner so that mapping failures reach the spawner.
    pub(crate) stack: GuardedStack,
    /// The spawner's word for the [`SwitchHook`](crate::SwitchHook) (0: none, the hook is
    /// not called for this thread).
    pub(crate) context: usize,
}

/// What a running user thread knows about itself. Lives in its body's frame.
pub(crate) struct Running {
    yielder: *const Yielder<i64, Switch>,
    parker: Arc<UserParker>,
    /// The guard page below its stack, for the overflow handler.
    guard: Range<usize>,
    /// The end of its stack mapping (the stack grows down from here).
    top: usize,
    /// Its kernel thread's `Local`, for code that runs with the user thread's own TLS
    /// installed (a `SwitchHook` that switches %fs): the kernel thread's `LOCAL` slot is
    /// then out of reach (see `kernel_thread::with_local`).
    pub(crate) local: *const Local,
}

thread_local! {
    /// The user thread running on this kernel thread, or null. Const-initialised and
    /// without a destructor: a plain TLS slot, which the SIGSEGV handler may read.
    static CURRENT: Cell<*const Running> = const { Cell::new(ptr::null()) };
}

/// Makes the coroutine for `task`, which will be user thread `key` of the kernel thread
/// whose inbox is `home`.
pub(crate) fn new_coroutine(task: Task, home: Arc<Inbox>, key: u32, local: *const Local) -> UserCoroutine {
    let Task { body, stack, .. } = task;
    let guard = stack.guard();
    let top = corosensei::stack::Stack::base(&stack).get();
    let parker = Arc::new(UserParker::new(home, key));
    Coroutine::with_stack(stack, move |yielder: &Yielder<i64, Switch>, _first: i64| {
        let running = Running {
            yielder,
            parker,
            guard,
            top,
            local,
        };
        CURRENT.with(|c| c.set(&running));
        body();
    })
}

/// The loop, after every switch out of a user thread: no user thread runs now.
#[inline]
pub(crate) fn clear_current() {
    CURRENT.with(|c| c.set(ptr::null()));
}

/// The `Local` of the kernel thread that runs the calling user thread, read through the
/// user thread's own record: valid even when the user thread runs with TLS of its own.
#[inline]
pub(crate) fn current_local() -> *const Local {
    let running = CURRENT.with(Cell::get);
    if running.is_null() {
        return ptr::null();
    }
    // SAFETY: a non-null `CURRENT` points at the running user thread's record (see
    // `CurrentThread::running`).
    unsafe { (*running).local }
}

/// The calling user thread. Only valid on the user thread it was taken on, for as long as
/// that thread runs code (which includes being switched out and back in): never stored.
#[derive(Clone, Copy)]
pub(crate) struct CurrentThread(NonNull<Running>);

impl CurrentThread {
    /// The calling user thread, or `None` outside user threads.
    #[inline]
    pub(crate) fn get() -> Option<CurrentThread> {
        NonNull::new(CURRENT.with(Cell::get).cast_mut()).map(CurrentThread)
    }

    #[inline]
    fn running(&self) -> &Running {
        // SAFETY: `CURRENT` pointed at this record while its user thread ran, and the
        // record lives until that thread's body returns; a `CurrentThread` is only used
        // by code of that thread, which runs before the body returns.
        unsafe { self.0.as_ref() }
    }

    /// Suspends the calling user thread into its kernel thread's loop; returns the value
    /// the loop resumes it with (a system call's result, else 0).
    #[inline]
    pub(crate) fn switch_out(self, switch: Switch) -> i64 {
        // SAFETY: the yielder lives in the coroutine's start frame, below our record, as
        // long as the body runs (see `running`).
        let yielder = unsafe { &*self.running().yielder };
        let value = yielder.suspend(switch);
        CURRENT.with(|c| c.set(self.0.as_ptr()));
        value
    }

    /// Its parker.
    pub(crate) fn parker(&self) -> &Arc<UserParker> {
        &self.running().parker
    }
}

/// The calling user thread's stack: the whole mapping (lowest to highest address, the
/// guard page included) and the size of the guard page at its bottom. `None` outside a
/// user thread. For code that must describe the stack to others (the preload library
/// fills glibc's thread descriptor with it, for `pthread_getattr_np`).
pub fn current_stack() -> Option<(Range<usize>, usize)> {
    CurrentThread::get().map(|current| {
        let running = current.running();
        (running.guard.start..running.top, running.guard.len())
    })
}

/// Whether the caller runs in a user thread (of any scheduler).
pub fn in_user_thread() -> bool {
    CurrentThread::get().is_some()
}

/// Lets the other ready user threads of this kernel thread run, then goes on. Outside a
/// user thread it yields the OS thread.
pub fn yield_now() {
    match CurrentThread::get() {
        Some(current) => {
            current.switch_out(Switch::Yield);
        }
        None => std::thread::yield_now(),
    }
}

/// The calling user thread's parker, if the caller is a user thread.
pub(crate) fn current_parker() -> Option<Arc<UserParker>> {
    CurrentThread::get().map(|current| Arc::clone(current.parker()))
}

/// Parks the calling user thread (see `park`). False if the caller is not one.
pub(crate) fn park_current() -> bool {
    match CurrentThread::get() {
        Some(current) => {
            current.parker().park(|| {
                current.switch_out(Switch::Park);
            });
            true
        }
        None => false,
    }
}

/// Makes user thread `key` of the kernel thread whose inbox is `home` ready, if the caller
/// runs on that kernel thread. False otherwise: the caller sends it to `home` instead.
pub(crate) fn make_ready_here(home: &Arc<Inbox>, key: u32) -> bool {
    crate::kernel_thread::with_local(|local| {
        if Arc::ptr_eq(&local.inbox, home) {
            local.ready.borrow_mut().push_back(key);
            true
        } else {
            false
        }
    })
    .unwrap_or(false)
}

/// For the SIGSEGV handler: whether `addr` is in the guard page of the user thread running
/// on this kernel thread. Async-signal-safe: one TLS load and two compares.
pub(crate) fn is_current_guard(addr: usize) -> bool {
    let running = CURRENT.with(Cell::get);
    // SAFETY: a non-null `CURRENT` points at the running user thread's record (see
    // `CurrentThread::running`); the fault interrupted that thread's code.
    !running.is_null() && unsafe { (*running).guard.contains(&addr) }
}
