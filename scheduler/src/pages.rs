//! A kernel thread's syscall pages: one `Submitter` to start with, more on demand.
//!
//! One page holds 64 calls in flight. With user threads that block in system calls (a read
//! on an empty pipe holds its entry until a worker finishes it) one page could fill with
//! calls that wait for a user thread which cannot post its own: a deadlock. So when every
//! page is full the kernel thread takes another page from the runtime, up to
//! [`MAX_PAGES_PER_KERNEL_THREAD`]; beyond that, user threads that want to post wait for an
//! entry to be reaped (back-pressure, see `Switch::PageFull`).
//!
//! All pages belong to the kernel thread: a user thread posts into them while it runs on
//! that kernel thread, and never keeps a borrow across a switch.

use flexsc_kernel_side::execute::Step;
use flexsc_shim::resume::{resume, Resume};
use std::sync::Arc;

use flexsc_shim::help::Reads;
use flexsc_shim::table::{classify, may_wait_for_another_thread, waits_for_the_device, Class};
use flexsc_shim::{Push, RegisterError, Shared, Submitter, Ticket};

/// The most pages (so 64 calls in flight each) one kernel thread takes from the runtime.
pub const MAX_PAGES_PER_KERNEL_THREAD: usize = 16;

/// A posted call: its page, its ticket, and whether it may wait for an event.
pub(crate) struct PageTicket {
    page: usize,
    ticket: Ticket,
    may_wait: bool,
    /// Whether it may wait until another thread acts (`table::may_wait_for_another_thread`).
    waits_for_others: bool,
}

impl PageTicket {
    /// Whether the call may wait for an event (an empty pipe, a sleep, ...) or for the
    /// device (an `fsync`) rather than finish in the time it takes to run: only calls that
    /// cannot are worth sleeping on (see `kernel_thread`'s idle policy).
    pub(crate) fn may_wait_for_event(&self) -> bool {
        self.may_wait
    }

    /// Whether the call, though it waits for no event of its own, may wait until another
    /// thread acts (a FIFO's open waits for the other end).
    pub(crate) fn may_wait_for_another_thread(&self) -> bool {
        self.waits_for_others
    }
}

/// What [`Pages::push`] did with a call.
pub(crate) enum PagePush {
    /// Posted: switch out and wait for the ticket.
    Posted(PageTicket),
    /// Ran on the caller already (it must run there, or nothing is delegated).
    Ran(i64),
    /// Every page is full and no more may be taken.
    Full,
}

/// See the module docs.
pub(crate) struct Pages {
    runtime: Arc<Shared>,
    submitters: Vec<Submitter>,
    /// The page pushes try first: the one that last took a call.
    current: usize,
}

impl Pages {
    /// One page of `runtime`'s for the calling kernel thread.
    pub(crate) fn new(runtime: Arc<Shared>) -> Result<Self, RegisterError> {
        let first = Submitter::new(Arc::clone(&runtime))?;
        Ok(Pages {
            runtime,
            submitters: vec![first],
            current: 0,
        })
    }

    /// Posts a call (without ringing: see [`Pages::submit`]), or runs it here if it must
    /// run on the caller.
    ///
    /// # Safety
    /// As for `Submitter::push`: the call is what the program asked for, and its pointer
    /// arguments stay valid until the ticket is reaped (the caller's stack does: a user
    /// thread waits for its call while switched out).
    pub(crate) unsafe fn push(&mut self, nr: u64, args: [u64; 6]) -> PagePush {
        let pages = self.submitters.len();
        for step in 0..pages {
            let page = (self.current + step) % pages;
            // SAFETY: forwarded from this function's contract.
            match unsafe { self.submitters[page].push(nr, args) } {
                Push::Posted(ticket) => {
                    self.current = page;
                    return PagePush::Posted(PageTicket {
                        page,
                        ticket,
                        may_wait: classify(nr, &args) != Class::Delegate || waits_for_the_device(nr, &args),
                        waits_for_others: may_wait_for_another_thread(nr),
                    });
                }
                Push::Ran(ret) => return PagePush::Ran(ret),
                Push::Full => {}
            }
        }
        if pages >= MAX_PAGES_PER_KERNEL_THREAD {
            return PagePush::Full;
        }
        // Every page is full: take another (when the runtime has none left, wait for an
        // entry like at the limit).
        match Submitter::new(Arc::clone(&self.runtime)) {
            Ok(submitter) => {
                self.submitters.push(submitter);
                self.current = pages;
                // SAFETY: forwarded; a fresh page has room.
                unsafe { self.push(nr, args) }
            }
            Err(_) => PagePush::Full,
        }
    }

    /// Whether a call posted from these pages has finished (or was declined) and waits
    /// for the loop to reap it (`Submitter::has_outcome_waiting`).
    pub(crate) fn has_outcome_waiting(&self) -> bool {
        self.submitters.iter().any(Submitter::has_outcome_waiting)
    }

    /// Whether the service threads are behind on the page pushes try first, so that a
    /// call that need not wait runs here instead (see `Shared::should_help`).
    #[inline]
    pub(crate) fn should_help(&self) -> bool {
        self.submitters[self.current].should_help()
    }

    /// A `Delegate`-class call run here, on the kernel thread, if it will not wait
    /// (`flexsc_shim::help::run_unless_it_waits`), and counted as direct; None when it
    /// should be posted, with nothing of it done (see `syscall`'s rules for a user thread
    /// that is alone, or whose service threads are behind).
    ///
    /// # Safety
    /// As for `Submitter::push`.
    pub(crate) unsafe fn run_unless_it_waits(
        &mut self,
        nr: u64,
        args: [u64; 6],
        reads: Reads,
    ) -> Option<i64> {
        // SAFETY: forwarded from this function's contract.
        let ret = unsafe { flexsc_shim::help::run_unless_it_waits(nr, args, reads) }?;
        self.submitters[self.current].count_direct(nr, ret);
        Some(ret)
    }

    /// A call that may wait for an event, tried here the way a service thread tries it
    /// (`flexsc_kernel_side::execute::run`: its non-blocking form): Some(result) when
    /// that is the call's own answer (counted as direct), None when it would wait and
    /// nothing of it happened (then it is posted as usual). Only for the calls of
    /// [`tries_alone`], whose attempt never stops half-way.
    ///
    /// # Safety
    /// As for `Submitter::push`.
    pub(crate) unsafe fn attempt_here(&mut self, nr: u64, args: [u64; 6]) -> Option<i64> {
        debug_assert!(tries_alone(nr));
        // SAFETY: forwarded from this function's contract.
        let ret = match unsafe { flexsc_kernel_side::execute::run(nr as u32, args) } {
            Step::Done(ret) => ret,
            Step::HandOff(Resume::Whole) => return None,
            // A file that waits for the disk at most: the call itself, here. Unlike a
            // `pread64` (`help::run_unless_it_waits`), a `readv` tried without waiting
            // could stop part-way, with the file position moved.
            // SAFETY: forwarded.
            Step::HandOff(Resume::Disk) => unsafe { flexsc_shim::sys::syscall6(nr, args) },
            // Not for these calls (see `tries_alone`); were it to happen, the rest runs
            // here, as a blocking call would go on, so nothing moved is lost.
            // SAFETY: forwarded: the rest of the caller's own transfer.
            Step::HandOff(rest) => unsafe { resume(nr as u32, args, rest) },
        };
        self.submitters[self.current].count_direct(nr, ret);
        Some(ret)
    }

    /// Rings for every call pushed since the last time: one fence (and a wake if a
    /// service thread sleeps) for a whole round of posts.
    #[inline]
    pub(crate) fn submit(&mut self) {
        for submitter in &mut self.submitters {
            submitter.submit();
        }
    }

    /// Looks once at a posted call: its result, if it finished (the ticket is then spent).
    #[inline]
    pub(crate) fn poll(&mut self, ticket: &PageTicket) -> Option<i64> {
        self.submitters[ticket.page].poll(&ticket.ticket)
    }

    /// Whether no service thread has claimed a posted call yet.
    #[inline]
    pub(crate) fn is_unclaimed(&self, ticket: &PageTicket) -> bool {
        self.submitters[ticket.page].is_unclaimed(&ticket.ticket)
    }

    /// Waits a while for a posted call (see `Submitter::wait_a_while`): its result, or
    /// the ticket back if it is still in flight after one bounded sleep. A call nobody
    /// claimed in that time, behind a blocked service thread, is taken back and run here
    /// if `take_back`.
    pub(crate) fn wait_a_while(&mut self, ticket: PageTicket, take_back: bool) -> Result<i64, PageTicket> {
        let PageTicket {
            page,
            ticket,
            may_wait,
            waits_for_others,
        } = ticket;
        self.submitters[page]
            .wait_a_while(ticket, take_back)
            .map_err(|ticket| PageTicket {
                page,
                ticket,
                may_wait,
                waits_for_others,
            })
    }
}

/// The calls that may wait for an event which a lone user thread tries itself before it
/// posts them ([`Pages::attempt_here`]): their attempt either finishes the call or moves
/// nothing (readiness waits, message vectors, vectored reads and `recvmsg`, which a
/// service thread's attempt never leaves half-done). Not the plain and vectored writes and
/// sends, nor `read` and `recvfrom`, whose attempt may stop short and leave a rest that
/// only a blocking call (a worker's) can finish.
pub(crate) fn tries_alone(nr: u64) -> bool {
    matches!(
        nr as i64,
        libc::SYS_poll
            | libc::SYS_epoll_wait
            | libc::SYS_epoll_pwait
            | libc::SYS_recvmmsg
            | libc::SYS_sendmmsg
            | libc::SYS_readv
            | libc::SYS_recvmsg
    )
}
