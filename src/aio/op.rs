//! One system call as a future: posted to the syscall pages on first poll, woken by the
//! thread that completes it, and safe to drop at any time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use flexsc_shim::{sys, AsyncPush, AsyncSubmitter, InFlight};

enum State {
    /// Not posted yet (also while waiting for a free entry).
    Unposted,
    /// Posted; the entry is ours until reaped or abandoned.
    InFlight(Arc<AsyncSubmitter>, InFlight),
    /// Result handed out.
    Done,
}

/// A system call in flight, owning `T`: whatever its pointer arguments point into (buffers,
/// a path, a result struct) and the descriptor it works on. Output: the raw result and `T`
/// back. Dropped while the call runs, it hands `T` to the runtime, which keeps it until
/// the call completes and then runs `on_abandon` (which, say, closes the descriptor an
/// abandoned `open` returned).
pub(crate) struct Op<T: Send + Unpin + 'static> {
    nr: u64,
    args: [u64; 6],
    state: State,
    resources: Option<T>,
    on_abandon: fn(i64, T),
}

impl<T: Send + Unpin + 'static> Op<T> {
    /// # Safety
    /// Every pointer in `args` must point into `resources` (at an address that moving
    /// `resources` does not change: a heap block) or into memory that outlives the call,
    /// and be valid for what call `nr` does with it; descriptors in `args` must be kept
    /// open by `resources` or outlive the call.
    pub(crate) unsafe fn new(nr: i64, args: [u64; 6], resources: T) -> Self {
        Op {
            nr: nr as u64,
            args,
            state: State::Unposted,
            resources: Some(resources),
            on_abandon: |_, resources| drop(resources),
        }
    }

    /// What to do with the result of a call whose future was dropped (default: nothing;
    /// the resources are dropped after it).
    pub(crate) fn on_abandon(mut self, f: fn(i64, T)) -> Self {
        self.on_abandon = f;
        self
    }

    fn ready(&mut self, ret: i64) -> Poll<(i64, T)> {
        self.state = State::Done;
        let resources = self.resources.take().expect("resources are handed out once");
        Poll::Ready((ret, resources))
    }
}

impl<T: Send + Unpin + 'static> Future for Op<T> {
    type Output = (i64, T);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &this.state {
                State::Unposted => {
                    let Some(submitter) = crate::global::async_submitter() else {
                        // No runtime (bad configuration, said once on stderr): run it here.
                        // SAFETY: `new`'s contract.
                        let ret = unsafe { sys::syscall6(this.nr, this.args) };
                        return this.ready(ret);
                    };
                    // SAFETY: `new`'s contract: the pointers stay valid until the call is
                    // reaped (below) or its orphan cleans up (Drop).
                    match unsafe { submitter.push(this.nr, this.args) } {
                        AsyncPush::Ran(ret) => return this.ready(ret),
                        AsyncPush::Posted(call) => this.state = State::InFlight(Arc::clone(submitter), call),
                        AsyncPush::Full => {
                            submitter.wait_for_entry(cx.waker());
                            // SAFETY: as above.
                            match unsafe { submitter.push(this.nr, this.args) } {
                                AsyncPush::Ran(ret) => return this.ready(ret),
                                AsyncPush::Posted(call) => {
                                    this.state = State::InFlight(Arc::clone(submitter), call)
                                }
                                AsyncPush::Full => return Poll::Pending,
                            }
                        }
                    }
                }
                State::InFlight(submitter, call) => {
                    return match submitter.poll(call, cx.waker()) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(ret) => this.ready(ret),
                    };
                }
                State::Done => panic!("an Op was polled after it completed"),
            }
        }
    }
}

impl<T: Send + Unpin + 'static> Drop for Op<T> {
    fn drop(&mut self) {
        if let State::InFlight(submitter, call) = std::mem::replace(&mut self.state, State::Done) {
            let resources = self
                .resources
                .take()
                .expect("an op in flight holds its resources");
            let on_abandon = self.on_abandon;
            submitter.abandon(call, Box::new(move |ret| on_abandon(ret, resources)));
        }
    }
}

/// A raw system call as a future: resolves to the value or a negated errno, as the
/// `syscall` instruction would return on this thread.
///
/// The call is posted to the syscall pages on first poll and run by a service thread;
/// the thread that completes it wakes the task, so it works under any executor.
pub struct Syscall(Op<()>);

impl Future for Syscall {
    type Output = i64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<i64> {
        Pin::new(&mut self.0).poll(cx).map(|(ret, ())| ret)
    }
}

/// System call `nr` with `args`, as a future (see [`Syscall`]).
///
/// # Safety
/// As for the `syscall` instruction; and since a dropped future's call still runs to
/// completion, memory its pointers refer to must stay valid until the call has completed,
/// even if the future is dropped first. [`syscall_owning`] keeps such memory alive for you.
pub unsafe fn syscall(nr: i64, args: [u64; 6]) -> Syscall {
    // SAFETY: forwarded from this function's contract.
    Syscall(unsafe { Op::new(nr, args, ()) })
}

/// A future of system call `nr` that owns `owner` (the buffers its pointers point into)
/// until the call completes, even if the future is dropped. Output: the raw result and
/// `owner` back.
pub struct SyscallOwning<T: Send + Unpin + 'static>(Op<T>);

impl<T: Send + Unpin + 'static> Future for SyscallOwning<T> {
    type Output = (i64, T);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(i64, T)> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// System call `nr` with `args`, keeping `owner` alive until the call completes.
///
/// # Safety
/// As for the `syscall` instruction; every pointer in `args` must point into `owner` at an
/// address moving `owner` does not change (a heap block: `Vec`, `Box`) or into memory that
/// outlives the call.
pub unsafe fn syscall_owning<T: Send + Unpin + 'static>(
    nr: i64,
    args: [u64; 6],
    owner: T,
) -> SyscallOwning<T> {
    // SAFETY: forwarded from this function's contract.
    SyscallOwning(unsafe { Op::new(nr, args, owner) })
}
