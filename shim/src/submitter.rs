//! The submit side: a thread's handle on its own syscall page.
//!
//! [`Submitter::call`] is the synchronous path (post, wait, reap: the raw syscall's
//! convention); [`Submitter::call_batch`] runs many calls, the service thread and the
//! caller sharing them, and waits for all;
//! [`Submitter::push`], [`Submitter::submit`] and [`Submitter::poll`] are the pieces they
//! are made of, for runtimes that overlap calls with other work.
//!
//! Every call is first classified (see [`crate::table`]): calls whose meaning depends on
//! the calling thread run right here, on the caller; calls that change the thread's
//! identity or confinement (setuid, seccomp, ...) run here and stop this thread's
//! delegation for good, so a service thread never acts with privileges the thread gave up.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use crate::entry::{Outcome, Waited};
use crate::page::{SyscallPage, ENTRIES_PER_PAGE};
use crate::shared::{RegisterError, Shared};
use crate::sys;
use crate::table::{classify, Class};

/// One system call: its number and six arguments (unused ones are ignored by the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// Syscall number (`libc::SYS_*`).
    pub nr: u64,
    /// Arguments, in the kernel's order.
    pub args: [u64; 6],
}

impl Call {
    /// A call with the given number and arguments.
    pub fn new(nr: impl Into<i64>, args: [u64; 6]) -> Self {
        Call {
            nr: nr.into() as u64,
            args,
        }
    }
}

/// A posted call's place in the page. Redeem it with [`Submitter::poll`] or
/// [`Submitter::wait`]; until then its entry stays in use.
#[must_use = "a posted call's entry stays in use until it is reaped"]
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    slot: u8,
    nr: u32,
    args: [u64; 6],
}

/// What [`Submitter::push`] did with a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// Posted to the page: redeem the ticket after [`Submitter::submit`].
    Posted(Ticket),
    /// Ran on the caller already, with this raw result.
    Ran(i64),
    /// Every entry of the page is in flight: reap one and push again (back-pressure).
    Full,
}

/// A thread's handle on its own syscall page. Not `Send`: a page has one owner thread.
pub struct Submitter {
    shared: Arc<Shared>,
    index: usize,
    page: NonNull<SyscallPage>,
    /// Entries this owner may post into (bit set = FREE). Owner-local: never shared.
    free: u64,
    /// Entries posted since the last `submit`.
    unsubmitted: u64,
    /// Of those, the entries whose pending bits are not set yet (`submit` sets them).
    unpublished: u64,
    /// Entries this owner took back at shutdown and ran itself: counted as direct.
    reclaimed: u64,
    /// The part of a batch a helping caller posts, in 256ths; the rest it runs itself
    /// (see [`Split`]). Learned from batch to batch.
    share: u32,
    /// Inside [`Submitter::call_unless_handed_back`]: a call handed back whole is
    /// returned as [`HANDED_BACK`] instead of run here.
    hand_back: bool,
    _not_send: PhantomData<*mut ()>,
}

/// How long an owner sleeps on a posted call that no service thread has claimed before it
/// looks whether the service side is stuck, and if so takes the call back and runs it
/// itself ([`Submitter::wait`]). Long against any batch a service thread runs (tens of
/// microseconds), short against a stall a program would notice.
pub const TAKE_BACK_AFTER: Duration = Duration::from_millis(10);

/// What `finish` returns for a call handed back whole under `hand_back` (never a raw
/// result: `owed`'s encodings are above it).
const HANDED_BACK: i64 = i64::MIN;

const ALL_FREE: u64 = if ENTRIES_PER_PAGE == 64 {
    u64::MAX
} else {
    (1 << ENTRIES_PER_PAGE) - 1
};

impl Submitter {
    /// Gives the calling thread a syscall page of `shared`'s runtime.
    pub fn new(shared: Arc<Shared>) -> Result<Self, RegisterError> {
        let (index, page) = shared.acquire_page()?;
        let page = NonNull::from(page);
        Ok(Submitter {
            shared,
            index,
            page,
            free: ALL_FREE,
            hand_back: false,
            unsubmitted: 0,
            unpublished: 0,
            reclaimed: 0,
            share: Split::START,
            _not_send: PhantomData,
        })
    }

    #[inline]
    fn page(&self) -> &SyscallPage {
        // SAFETY: pages live as long as `shared`, which `self` keeps alive.
        unsafe { self.page.as_ref() }
    }

    /// The page's index in the runtime.
    pub fn page_index(&self) -> usize {
        self.index
    }

    /// Whether delegation stopped because a thread of the process changed its
    /// credentials or confinement (see [`Shared::isolate`]).
    pub fn is_isolated(&self) -> bool {
        self.shared.is_isolated()
    }

    /// Runs system call `nr` with `args` and returns the raw result: the value, or a
    /// negated errno, exactly as the `syscall` instruction would on this thread.
    ///
    /// # Safety
    /// As for the `syscall` instruction: the call may unmap memory, close descriptors or
    /// end the thread, and pointer arguments must be valid for what the call does with
    /// them (the kernel answers EFAULT for unmapped ones, as it would directly).
    #[inline]
    pub unsafe fn call(&mut self, nr: u64, args: [u64; 6]) -> i64 {
        // SAFETY: forwarded from this function's contract.
        crate::owed::deliver(unsafe { self.call_raw(nr, args) })
    }

    /// As [`Submitter::call`], with the raw result (see [`Submitter::poll`]); or
    /// [`HANDED_BACK`] under `hand_back`.
    #[inline]
    unsafe fn call_raw(&mut self, nr: u64, args: [u64; 6]) -> i64 {
        // SAFETY: forwarded from this function's contract.
        match unsafe { self.push(nr, args) } {
            Push::Ran(ret) => ret,
            Push::Posted(ticket) => {
                self.submit();
                self.wait_raw(ticket)
            }
            Push::Full => {
                // Only reachable when tickets were pushed and not reaped: run it here
                // rather than wait for calls the caller may never reap.
                // SAFETY: forwarded.
                unsafe { self.run_here(nr, args) }
            }
        }
    }

    /// As [`Submitter::call`], except for a call that comes back to this thread whole
    /// before anything of it ran: one the service side declined (under
    /// `Blocking::Caller`, a call that would wait for an event), or one taken back from a
    /// stuck service thread. `None` then: the caller runs it itself, as it would have
    /// without the runtime (the LD_PRELOAD library calls glibc's own function, which is a
    /// cancellation point where the raw call here is not).
    ///
    /// The result is raw, as [`Submitter::poll`]'s: a signal the call owes this thread is
    /// the caller's to raise ([`crate::owed::deliver`]), once its own state is settled (a
    /// handler may `siglongjmp` out).
    ///
    /// # Safety
    /// As for [`Submitter::call`].
    #[inline]
    pub unsafe fn call_unless_handed_back(&mut self, nr: u64, args: [u64; 6]) -> Option<i64> {
        self.hand_back = true;
        // SAFETY: forwarded from this function's contract.
        let ret = unsafe { self.call_raw(nr, args) };
        self.hand_back = false;
        (ret != HANDED_BACK).then_some(ret)
    }

    /// After the owner left a call of this submitter's for good, without its result: a
    /// signal handler `siglongjmp`ed out of [`Submitter::call_unless_handed_back`]'s wait.
    /// The kernel drops an interrupted call; so does this, for every call still in
    /// flight: one no service thread claimed is taken back unrun; one that runs is waited
    /// for (not later than it takes: under `Blocking::Caller` every call that would wait
    /// for an event comes back to its owner) and its result dropped; one declined is not
    /// run. Nothing completes into the caller's memory after this returns, and every
    /// entry is free again.
    #[cold]
    pub fn settle_abandoned(&mut self) {
        self.hand_back = false;
        let spins = self.shared.options().wait_spins;
        let mut busy = !self.free & ALL_FREE;
        while busy != 0 {
            let slot = busy.trailing_zeros() as usize;
            let bit = 1u64 << slot;
            busy &= !bit;
            let entry = self.page().entry(slot);
            // FREE already: reaped, and the jump came before its bit was set here.
            let reaped = entry.status() & crate::entry::STATE_MASK == crate::entry::FREE;
            if !reaped && !entry.reclaim() {
                let (nr, _) = entry.contents();
                if let Outcome::Done(ret) = entry.wait(spins) {
                    let ran_here = self.reclaimed & bit != 0;
                    self.page()
                        .counters(u64::from(nr))
                        .record(!ran_here, crate::owed::split(ret).0);
                }
            }
            self.free |= bit;
            self.reclaimed &= !bit;
            self.unsubmitted &= !bit;
            self.unpublished &= !bit;
        }
    }

    /// Runs many calls and writes each result to the same index of `results`: posts them
    /// (a caller that helps posts only the first part and runs the rest itself, see
    /// [`SubmitOptions::caller_helps`](crate::SubmitOptions::caller_helps)), rings the
    /// service threads, and waits for all.
    ///
    /// The calls of one batch are independent, as in io_uring without links: they may run
    /// in any order and at the same time. A caller that helps runs the last calls of a
    /// batch first, so a batch that writes to a descriptor and then closes it may see the
    /// close first (EBADF for the writes): make such calls in separate batches. Only a
    /// call that must run on the caller (`exit_group`, `setuid`, ...) is ordered: the
    /// calls before it run, or are at least visible to a service thread, before it runs,
    /// and none after it runs first. More calls than a page holds are fine: when the
    /// page is full, the oldest call is reaped before the next is posted.
    ///
    /// # Safety
    /// As for [`Submitter::call`], for every call of the batch.
    pub unsafe fn call_batch(&mut self, calls: &[Call], results: &mut [i64]) {
        assert_eq!(calls.len(), results.len(), "one result slot per call");
        // In-flight tickets, oldest first, with the index of their call.
        let mut ring: [Option<(Ticket, usize)>; ENTRIES_PER_PAGE] = [const { None }; ENTRIES_PER_PAGE];
        let (mut head, mut len) = (0usize, 0usize);
        let helps = self.shared.options().caller_helps;
        // A caller that helps posts the first part of the batch, so that the service thread
        // starts on it at once, and runs the rest itself, from the back, never posting it
        // (see `Split`); then takes back the posted calls nobody started. One that only
        // waits hands the batch over whole, at `submit`, so that a service thread takes it
        // in one pass (one `io_uring_enter` for its ring-bound calls, not one per slice it
        // happened to see): see docs/PROFILE.md, sessions 6 and 7.
        let mut plan = Split::new(self.share, calls.len(), helps);
        let mut back = calls.len();
        let mut i = 0;
        while i < back {
            if plan.run_here_next() && !plan.checked {
                // Nothing may run before a call that must run on this thread and comes
                // before it (`exit_group`, `setuid`: the calls after it would run after
                // the process ended, or with the credentials it gave up): with one in
                // the rest of the batch, the caller does not split.
                plan.checked = true;
                let bound = |c: &Call| matches!(classify(c.nr, &c.args), Class::Caller | Class::Isolate);
                if calls[i..back].iter().any(bound) {
                    plan.stop();
                }
            }
            if plan.run_here_next() {
                let call = &calls[back - 1];
                if classify(call.nr, &call.args) == Class::Delegate {
                    if !plan.woke {
                        // The service thread may sleep: wake it for what is posted.
                        self.publish_posted();
                        plan.woke = true;
                    }
                    back -= 1;
                    // SAFETY: forwarded from this function's contract.
                    results[back] = unsafe { self.run_here_classified(call.nr, call.args, Class::Delegate) };
                    continue;
                }
                // A call that may wait (those that must run on this thread were looked
                // for above): it and the rest go to the service thread in order.
                plan.stop();
            }
            let k = i;
            i += 1;
            let call = &calls[k];
            loop {
                // SAFETY: forwarded from this function's contract.
                match unsafe { self.post(call.nr, call.args, helps) } {
                    Push::Ran(ret) => results[k] = ret,
                    Push::Posted(ticket) => {
                        ring[(head + len) % ENTRIES_PER_PAGE] = Some((ticket, k));
                        len += 1;
                        plan.posted += 1;
                    }
                    Push::Full if len > 0 => {
                        self.submit();
                        let (ticket, j) = ring[head].take().expect("ring slot in use");
                        head = (head + 1) % ENTRIES_PER_PAGE;
                        len -= 1;
                        results[j] = self.wait(ticket);
                        continue;
                    }
                    // SAFETY: forwarded.
                    Push::Full => results[k] = unsafe { self.run_here(call.nr, call.args) },
                }
                break;
            }
        }
        self.submit();
        if helps {
            // Newest first, while the service thread works from the oldest; stop where
            // they meet (the first call it already claimed).
            let mut taken_back = 0;
            while len > 0 {
                let tail = (head + len - 1) % ENTRIES_PER_PAGE;
                let Some((ticket, j)) =
                    ring[tail].take_if(|(t, _)| self.page().entry(t.slot as usize).reclaim())
                else {
                    break;
                };
                len -= 1;
                taken_back += 1;
                // SAFETY: forwarded from this function's contract.
                results[j] = unsafe { self.run_reclaimed(ticket) };
            }
            // Posted too many if some were taken back; too few if the service thread is
            // done already: with the newest call it has and with the one in the highest
            // slot (it runs a page's calls in slot order, and a batch longer than the
            // page puts its newest calls in low slots).
            let newest = (len > 0)
                .then(|| ring[(head + len - 1) % ENTRIES_PER_PAGE].as_ref())
                .flatten();
            let highest = ring.iter().flatten().max_by_key(|(t, _)| t.slot);
            let settled = |t: Option<&(Ticket, usize)>| {
                t.is_some_and(|(t, _)| self.page().entry(t.slot as usize).spin_until_settled(1))
            };
            let idle = plan.splits && taken_back == 0 && settled(newest) && settled(highest);
            self.share = plan.adapt(taken_back, idle);
        }
        if len > 1 {
            // A service thread takes a page's entries in slot order and runs the direct
            // ones in that order: wait (reading only) for the highest slot in flight
            // before reaping, so as not to pull each line back while it works on it (see
            // `Entry::spin_until_settled`). Not for a call that may wait for an event (it
            // may finish long after the rest). A wait's spinning phase at a time, with
            // a yield between (a thread that needs this core gets it), once per 8 calls
            // in flight: ~45 µs for 64, longer than such a batch takes to run. The reaping
            // waits below take over from there, as they would without this spin.
            let tickets = || ring.iter().flatten().map(|(t, _)| t);
            let in_flight = tickets().fold(0u64, |bits, t| bits | 1 << t.slot);
            let last = tickets()
                .max_by_key(|t| t.slot)
                .filter(|t| classify(u64::from(t.nr), &t.args) != Class::Block);
            if let Some(last) = last {
                let entry = self.page().entry(last.slot as usize);
                let spins = self.shared.options().wait_spins;
                let settled = (0..len.div_ceil(8)).any(|round| {
                    if round > 0 {
                        crate::primitive::yield_now();
                    }
                    entry.spin_until_settled(spins)
                });
                if settled {
                    // Then fetch every line back at once, for writing (reaping frees each
                    // entry): one after another, each would be a cache miss of its own.
                    self.page().prefetch(in_flight);
                }
            }
        }
        while len > 0 {
            let (ticket, j) = ring[head].take().expect("ring slot in use");
            head = (head + 1) % ENTRIES_PER_PAGE;
            len -= 1;
            results[j] = self.wait(ticket);
        }
    }

    /// Posts one call without waking anyone yet, or runs it here if it must run on the
    /// caller. Call [`Submitter::submit`] after pushing.
    ///
    /// # Safety
    /// As for [`Submitter::call`]; pointer arguments must stay valid until the ticket is
    /// reaped.
    #[inline]
    pub unsafe fn push(&mut self, nr: u64, args: [u64; 6]) -> Push {
        // SAFETY: forwarded.
        unsafe { self.post(nr, args, true) }
    }

    /// As [`Submitter::push`]; with `publish` false the call's pending bit is set only at
    /// the next [`Submitter::submit`], so no service thread sees it before.
    #[inline]
    unsafe fn post(&mut self, nr: u64, args: [u64; 6], publish: bool) -> Push {
        let class = classify(nr, &args);
        let delegable = matches!(class, Class::Delegate | Class::Block);
        if !delegable || !self.shared.is_delegating() {
            // A call that runs here may wait for one posted before it (a `wait4` for a
            // child that a posted `close` ends) or end the process (`exit_group`, which
            // lets only visible calls finish): those must be submitted first, visible and
            // with a sleeping service thread woken.
            self.publish_posted();
            // SAFETY: forwarded.
            return Push::Ran(unsafe { self.run_here_classified(nr, args, class) });
        }
        if self.free == 0 {
            return Push::Full;
        }
        if self.shared.doorbell.is_stopping() {
            self.publish_posted();
            // SAFETY: forwarded.
            return Push::Ran(unsafe { self.run_here(nr, args) });
        }
        let slot = self.free.trailing_zeros() as usize;
        let bit = 1u64 << slot;
        self.free &= !bit;
        self.unsubmitted |= bit;
        // `classify` said the number is a delegable one, so it fits in 32 bits.
        let nr32 = nr as u32;
        self.page().entry(slot).post(nr32, args);
        if !publish {
            self.unpublished |= bit;
        } else if self.page().mark_pending(bit) {
            self.shared.doorbell.mark_page(self.index);
        }
        Push::Posted(Ticket {
            slot: slot as u8,
            nr: nr32,
            args,
        })
    }

    /// Submits now if calls were posted since the last submit: visible (see
    /// [`Submitter::post`]) and a sleeping service thread woken.
    #[inline]
    fn publish_posted(&mut self) {
        if self.unsubmitted != 0 {
            self.submit();
        }
    }

    /// Makes every pushed call visible and wakes a sleeping service thread if there is one.
    /// If the runtime is stopping, takes back the pushed calls no service thread took and
    /// runs them here, so none is lost.
    #[inline]
    pub fn submit(&mut self) {
        if self.unsubmitted == 0 {
            return;
        }
        let pushed = std::mem::take(&mut self.unsubmitted);
        let unpublished = std::mem::take(&mut self.unpublished);
        if unpublished != 0 && self.page().mark_pending(unpublished) {
            self.shared.doorbell.mark_page(self.index);
        }
        if !self.shared.doorbell.after_post() {
            return;
        }
        let mut bits = pushed;
        while bits != 0 {
            let slot = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let entry = self.page().entry(slot);
            if entry.reclaim() {
                // The owner holds the entry again; the arguments are still in it.
                let (nr, args) = entry.contents();
                // SAFETY: the caller of `push` vouched for this call.
                let ret = unsafe { sys::syscall6(nr as u64, args) };
                entry.complete_by_owner(ret);
                self.reclaimed |= 1 << slot;
            }
        }
    }

    /// Looks once at a posted call. `Some(result)` when it finished (the ticket is spent).
    ///
    /// The result is raw: it may carry a signal the call owes the thread that made it
    /// (SIGPIPE, SIGXFSZ), which [`crate::owed::deliver`] raises and strips. Pass it
    /// through that on the thread that made the call (an M-on-N user thread once it
    /// resumes, not its scheduler's loop). The same for [`Submitter::wait_a_while`].
    ///
    /// # Panics
    /// If the ticket is not one of this submitter's in-flight tickets.
    #[inline]
    pub fn poll(&mut self, ticket: &Ticket) -> Option<i64> {
        let slot = ticket.slot as usize;
        assert!(
            self.free & (1 << slot) == 0,
            "ticket is not in flight on this page"
        );
        match self.page().entry(slot).poll() {
            Outcome::Pending => None,
            // SAFETY: the caller of `push` vouched for this call.
            outcome => Some(unsafe { self.finish(slot, ticket.nr, ticket.args, outcome) }),
        }
    }

    /// Whether a call in flight on this page has an outcome to reap (finished, or
    /// declined back to its owner). One load of each in-flight entry's status word, on
    /// the owner's thread. For an owner that runs calls directly while it seems to have
    /// nothing else to do (an M-on-N kernel thread's user thread that is alone): a
    /// finished call of another user thread is something to do.
    #[inline]
    pub fn has_outcome_waiting(&self) -> bool {
        let mut in_flight = !self.free & ALL_FREE;
        while in_flight != 0 {
            let slot = in_flight.trailing_zeros() as usize;
            in_flight &= in_flight - 1;
            let state = self.page().entry(slot).status() & crate::entry::STATE_MASK;
            if state == crate::entry::DONE || state == crate::entry::DECLINED {
                return true;
            }
        }
        false
    }

    /// Whether no service thread has claimed a posted call yet (so a wait for it may take
    /// it back, see [`Submitter::wait`]).
    #[inline]
    pub fn is_unclaimed(&self, ticket: &Ticket) -> bool {
        self.page().entry(ticket.slot as usize).status() & crate::entry::STATE_MASK == crate::entry::SUBMITTED
    }

    /// Waits for a posted call and returns its result: spins, yields, then sleeps. A call
    /// that no service thread has claimed after [`TAKE_BACK_AFTER`] of sleep, while a
    /// service thread is blocked in the kernel ([`Shared::service_is_blocked`]), is taken
    /// back and run here (see [`crate::Entry::wait_or_take_back`]): a service thread stuck
    /// in a call that waits (a FIFO's open) must not hold up the calls posted behind it.
    /// One that is only off its core keeps them.
    ///
    /// A signal the call owes this thread (SIGPIPE, SIGXFSZ: see [`crate::owed`]) is
    /// raised here before it returns, as the kernel would have before the call returned.
    #[inline]
    pub fn wait(&mut self, ticket: Ticket) -> i64 {
        crate::owed::deliver(self.wait_raw(ticket))
    }

    /// As [`Submitter::wait`], with the raw result (see [`Submitter::poll`]).
    #[inline]
    fn wait_raw(&mut self, mut ticket: Ticket) -> i64 {
        loop {
            match self.wait_a_while(ticket, true) {
                Ok(ret) => return ret,
                // Still posted: its service thread is only slow (off its core). Again.
                Err(t) if self.is_unclaimed(&t) => ticket = t,
                Err(t) => {
                    // A service thread runs it: only it can finish it.
                    let slot = t.slot as usize;
                    let outcome = self.page().entry(slot).wait(0);
                    // SAFETY: the caller of `push` vouched for this call.
                    return unsafe { self.finish(slot, t.nr, t.args, outcome) };
                }
            }
        }
    }

    /// As [`Submitter::wait`], but sleeps at most [`TAKE_BACK_AFTER`], and then hands the
    /// ticket back if the call is still in flight. For a waiter that must also look at
    /// other things now and then (an M-on-N kernel thread's inbox). With `take_back`
    /// false it never runs the call itself (an M-on-N kernel thread, for a call that could
    /// wait for another of its user threads).
    pub fn wait_a_while(&mut self, ticket: Ticket, take_back: bool) -> Result<i64, Ticket> {
        if let Some(ret) = self.poll(&ticket) {
            return Ok(ret);
        }
        let slot = ticket.slot as usize;
        let entry = self.page().entry(slot);
        let shared = &self.shared;
        match entry.wait_or_take_back(shared.options().wait_spins, TAKE_BACK_AFTER, || {
            take_back && shared.service_is_blocked()
        }) {
            // SAFETY: the caller of `push` vouched for this call.
            Waited::Finished(outcome) => Ok(unsafe { self.finish(slot, ticket.nr, ticket.args, outcome) }),
            Waited::TakenBack => {
                self.shared
                    .batches()
                    .taken_back
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if self.hand_back {
                    self.free |= 1 << ticket.slot;
                    return Ok(HANDED_BACK);
                }
                // SAFETY: as above; the owner holds the entry again.
                Ok(unsafe { self.run_reclaimed(ticket) })
            }
            Waited::InFlight => Err(ticket),
        }
    }

    /// Frees a finished entry and returns the call's result, counting where it ran: a
    /// declined call (or its rest) runs here.
    unsafe fn finish(&mut self, slot: usize, nr: u32, args: [u64; 6], outcome: Outcome) -> i64 {
        let bit = 1u64 << slot;
        self.free |= bit;
        match outcome {
            Outcome::Done(ret) => {
                let ran_here = self.reclaimed & bit != 0;
                self.reclaimed &= !bit;
                self.page()
                    .counters(nr as u64)
                    .record(!ran_here, crate::owed::split(ret).0);
                ret
            }
            Outcome::Declined { done } if done <= 0 && self.hand_back => HANDED_BACK,
            // SAFETY: forwarded from the caller.
            Outcome::Declined { done } => unsafe { self.finish_declined(nr, args, done) },
            Outcome::Pending => unreachable!("only final outcomes are finished"),
        }
    }

    /// Runs a declined call here: the whole call, or the rest after `done` bytes moved.
    unsafe fn finish_declined(&mut self, nr: u32, args: [u64; 6], done: i64) -> i64 {
        if done <= 0 {
            // SAFETY: forwarded.
            return unsafe { self.run_here(nr as u64, args) };
        }
        // SAFETY: forwarded: the rest of the caller's own transfer.
        let ret = unsafe { crate::resume::resume(nr, args, crate::resume::Resume::Rest { done }) };
        self.page().counters(nr as u64).record(false, ret);
        ret
    }

    /// Runs a call whose entry the owner took back (FREE again, see [`crate::Entry::reclaim`])
    /// and counts it as direct.
    unsafe fn run_reclaimed(&mut self, ticket: Ticket) -> i64 {
        self.free |= 1 << ticket.slot;
        // SAFETY: forwarded: the caller of `push` vouched for this call.
        unsafe { self.run_here(u64::from(ticket.nr), ticket.args) }
    }

    /// Whether the service threads are behind on this submitter's page, so that a poster
    /// that helps should run its next call that will not wait itself (see
    /// [`Shared::should_help`]).
    #[inline]
    pub fn should_help(&self) -> bool {
        // Calls pushed since the last submit are no backlog: no service thread was rung
        // for them yet (an M-on-N round rings once, at its end; found by a review).
        self.shared
            .should_help(self.page().pending_bits() & !self.unsubmitted)
    }

    /// Counts a call that the caller ran itself some other way (through libc, say).
    pub fn count_direct(&mut self, nr: u64, ret: i64) {
        self.page().counters(nr).record(false, ret);
    }

    /// Runs a call on this thread and counts it.
    unsafe fn run_here(&mut self, nr: u64, args: [u64; 6]) -> i64 {
        let class = classify(nr, &args);
        // SAFETY: forwarded.
        unsafe { self.run_here_classified(nr, args, class) }
    }

    unsafe fn run_here_classified(&mut self, nr: u64, args: [u64; 6], class: Class) -> i64 {
        // SAFETY: forwarded from the caller's contract.
        let ret = unsafe { self.shared.run_on_caller(nr, args, class) };
        self.page().counters(nr).record(false, ret);
        ret
    }
}

impl Drop for Submitter {
    fn drop(&mut self) {
        self.submit();
        // Wait for every call still in flight: its buffers may be ours, and the page must
        // be all FREE before another thread gets it. Each is counted like any other.
        let spins = self.shared.options().wait_spins;
        let mut busy = !self.free & ALL_FREE;
        while busy != 0 {
            let slot = busy.trailing_zeros() as usize;
            busy &= busy - 1;
            let entry = self.page().entry(slot);
            let (nr, args) = entry.contents();
            let outcome = entry.wait(spins);
            // SAFETY: the call was pushed under `push`'s contract; finishing a declined
            // one here is what a decline asks for.
            let _ = unsafe { self.finish(slot, nr, args, outcome) };
        }
        self.shared.release_page(self.index);
    }
}

/// How a helping caller splits a batch between the service thread and itself.
///
/// Each call the service thread runs saves the caller the call but costs it a post and a
/// reap (and a line transfer each way), so posting a whole batch and taking back what the
/// service thread did not reach spends the caller's time on calls it ends up running
/// anyway. Instead the caller posts the first `share` 256ths of the batch (at least
/// [`Split::HEAD`] calls), then runs the rest itself from the back without posting them,
/// as long as they are calls that never wait ([`Class::Delegate`]): at the first other
/// one it posts the rest in order. It does not split a batch at all if a call that must
/// run on the caller (Caller or Isolate class) is among those not yet posted: nothing
/// after such a call may run before it. After each batch it split to the end, the share
/// moves toward where the two sides finish together: down by half the calls it had to
/// take back (posted, never started), up by one call when the service thread had finished
/// before the caller did.
///
/// Measured (docs/PROFILE.md, session 7), ns per call, before and after: 64 getppids 133
/// -> 112, 64 cached preads 406 -> 382, 64 pwrites to one file 507 -> 503 (the two cores
/// contend for the file, which no count of taken-back calls shows).
struct Split {
    share: u32,
    len: usize,
    /// Whether the caller runs calls from the back: it helps, and has not met a call it
    /// must not run out of order.
    splits: bool,
    posted: usize,
    /// Whether the caller submitted what it posted (waking a sleeping service thread)
    /// before it ran a call itself.
    woke: bool,
    /// Whether the calls not yet posted were looked through for one that must run on
    /// the caller (see `call_batch`).
    checked: bool,
}

impl Split {
    /// Where a caller starts: half and half.
    const START: u32 = 128;
    /// The fewest calls posted of a batch that the caller splits.
    const HEAD: usize = 2;
    /// The smallest share: the service thread always gets some of a long batch.
    const MIN: u32 = 16;

    fn new(share: u32, len: usize, helps: bool) -> Self {
        Split {
            share,
            len,
            splits: helps,
            posted: 0,
            woke: false,
            checked: false,
        }
    }

    /// Whether the caller runs the next call itself (from the back) rather than post the
    /// next one (from the front).
    #[inline]
    fn run_here_next(&self) -> bool {
        self.splits && self.posted >= Self::HEAD.max(self.share as usize * self.len / 256)
    }

    /// The caller met a call at the back that it must not run before the ones in front
    /// of it: the rest of the batch is posted in order, and says nothing of the share.
    fn stop(&mut self) {
        self.splits = false;
    }

    /// The share for the next batch. Unchanged after a batch that was not split to the
    /// end, a short one, or one whose posted calls were all taken back (the service
    /// thread was asleep, or busy elsewhere: nothing learned of its speed).
    fn adapt(&self, taken_back: usize, service_idle: bool) -> u32 {
        if !self.splits || self.len < 8 || taken_back >= self.posted {
            return self.share;
        }
        let step = (256 / self.len).max(1) as u32;
        let share = if taken_back > 0 {
            self.share.saturating_sub(step * taken_back.div_ceil(2) as u32)
        } else if service_idle {
            self.share + step
        } else {
            self.share
        };
        share.clamp(Self::MIN, 256)
    }
}

#[cfg(test)]
mod tests {
    use super::Split;

    /// How many calls a plan posts before it runs the first one on the caller.
    fn posted_first(share: u32, len: usize, helps: bool) -> usize {
        let mut plan = Split::new(share, len, helps);
        while plan.posted < len && !plan.run_here_next() {
            plan.posted += 1;
        }
        plan.posted
    }

    #[test]
    fn a_helping_caller_posts_its_share_of_the_batch_and_runs_the_rest() {
        assert_eq!(posted_first(128, 64, true), 32);
        assert_eq!(posted_first(64, 64, true), 16);
        assert_eq!(posted_first(256, 64, true), 64);
        // Never fewer than HEAD, so the service thread gets something to start on.
        assert_eq!(posted_first(Split::MIN, 8, true), Split::HEAD);
        // A caller that only waits posts everything.
        assert_eq!(posted_first(128, 64, false), 64);
    }

    #[test]
    fn the_share_follows_what_the_last_batch_showed() {
        let split = |share: u32, len: usize, posted: usize| {
            let mut plan = Split::new(share, len, true);
            plan.posted = posted;
            plan
        };
        let plan = split(128, 64, 32);
        // 6 calls posted and never started: down by half of them, a call (4/256) each.
        assert_eq!(plan.adapt(6, false), 128 - 3 * 4);
        // The service thread finished first: up by one call.
        assert_eq!(plan.adapt(0, true), 132);
        // Both finished together: unchanged.
        assert_eq!(plan.adapt(0, false), 128);
        // Bounded both ways.
        assert_eq!(split(Split::MIN, 64, 8).adapt(7, false), Split::MIN);
        assert_eq!(split(256, 64, 64).adapt(0, true), 256);
        // Nothing learned: a short batch, every posted call taken back (the service thread
        // slept), or a batch that stopped splitting.
        assert_eq!(split(128, 4, 2).adapt(1, false), 128);
        assert_eq!(plan.adapt(32, false), 128);
        let mut stopped = split(128, 64, 40);
        stopped.stop();
        assert_eq!(stopped.adapt(6, false), 128);
        assert!(!stopped.run_here_next());
    }
}
