//! The io_uring backend: a service thread puts the io_uring-capable calls of a batch into
//! one `io_uring_enter`, instead of one `syscall` instruction each, and parks the calls
//! that would wait for an event (a socket or pipe with nothing to read, no room to write)
//! in its ring instead of on a blocking worker.
//!
//! **Batch calls**: file I/O at an offset (`pread64`, `pwrite64`, `preadv`, `pwritev`),
//! `openat`, `close`, `statx`, `fallocate`, `ftruncate`, `unlinkat`, `mkdirat`,
//! `renameat2`: each maps to an opcode with exactly the syscall's meaning. A
//! call whose arguments io_uring would read differently runs directly instead: an
//! `openat` that io_uring would try with `O_NONBLOCK` added (a FIFO would not wait for its
//! other end; see `open_means_the_same`), a negative
//! offset (io_uring reads -1 as "the current position"), a length past `MAX_RW_COUNT`
//! (io_uring clamps it, the syscall answers EFAULT), a negative `ftruncate` length (the
//! syscall checks it before the descriptor), a NULL path, a positional transfer on
//! a pipe or socket (the syscall answers ESPIPE). Every SQE of a batch is waited for in the
//! same pass (`submit_and_wait`): these calls wait for the disk at most, as they would
//! inline on the direct backend.
//!
//! **Parked calls**: `read`, `write`, `readv`, `writev`, `recvfrom`, `sendto`, `recvmsg`,
//! `sendmsg` on a socket or pipe whose non-blocking attempt answered EAGAIN, `accept`,
//! `accept4` and `connect` on a socket, a `poll` of one descriptor with nothing ready
//! (a POLL_ADD, linked to a LINK_TIMEOUT unless it waits for ever; [`poll_result`] turns
//! the CQE into poll's answer, `revents` filtered as poll filters them), and `fsync` and
//! `fdatasync`, which are made to wait for the device (a batch's pass would wait for them
//! with every other SQE; [`device_wait_sqe`]). The service
//! thread pushes the SQE, submits it with the pass's other SQEs and goes on; io_uring
//! waits for readiness itself (its internal poll), and a later pass reaps the CQE and
//! completes the entry. When the service thread
//! has nothing else to do it sleeps in `io_uring_enter`, with an io_uring `FUTEX_WAIT` on
//! the doorbell's word in the same ring, so either a completion or a post wakes it. A call
//! stays on a blocking worker where io_uring's answer could differ from the blocking
//! call's: a socket with a receive or send timeout (`SO_RCVTIMEO`, `SO_SNDTIMEO`: io_uring
//! ignores them), a receive low-water mark above 1 (a Unix socket's poll ignores it),
//! `MSG_WAITALL`, `recvfrom` with a source address, a length past `MAX_RW_COUNT`. A write
//! or send that io_uring finishes short goes on on a blocking worker (a blocking write
//! moves everything), as after a short non-blocking attempt. On a descriptor with
//! `O_NONBLOCK` the call cannot wait, so it runs inline.

use std::io;

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types, IoUring};

use crate::execute::{file_kind, Kind, MAX_RW_COUNT, TASK_SIZE_MAX};
use flexsc_shim::sys::syscall6;

/// Entries in each service thread's submission queue: the most SQEs one `io_uring_enter`
/// submits.
pub const RING_ENTRIES: u32 = 256;
/// Entries in its completion queue: room for many parked calls completing at once (more
/// still overflow into the kernel's list, and are flushed by the next enter).
pub const CQ_ENTRIES: u32 = 4096;

/// Which backend runs a service thread's batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// One `syscall` instruction per call; calls that would wait go to blocking workers.
    Direct,
    /// io_uring for every call it can run, whatever the batch; calls that would wait on a
    /// socket or pipe are parked in the ring.
    Uring,
    /// Per batch, per kind of call, whichever of the two the service thread has measured
    /// to be faster (see [`crate::choice`]); calls that would wait are parked in the ring.
    /// The default.
    #[default]
    Auto,
}

impl Backend {
    /// Parses `FLEXSC_BACKEND`'s value.
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "direct" => Some(Backend::Direct),
            "uring" | "io_uring" => Some(Backend::Uring),
            "auto" => Some(Backend::Auto),
            _ => None,
        }
    }
}

/// Why io_uring cannot be used, if it cannot (checked once, at start).
pub fn probe() -> Result<(), String> {
    match IoUring::new(2) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("io_uring unavailable: {e}")),
    }
}

/// Why calls that would wait cannot be parked in io_uring on this kernel, if they cannot
/// (they then go to blocking workers).
pub fn probe_parking() -> Result<(), String> {
    let ring = IoUring::new(2).map_err(|e| format!("io_uring unavailable: {e}"))?;
    if parking_supported(&ring) {
        Ok(())
    } else {
        Err("io_uring lacks FUTEX_WAIT or a socket opcode (Linux 6.7 or later has them)".into())
    }
}

/// A call parked in the ring: whose entry it is, and the call (to finish a short write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parked {
    /// The owner's page.
    pub page: usize,
    /// The entry in that page.
    pub slot: usize,
    /// Syscall number.
    pub nr: u32,
    /// Arguments.
    pub args: [u64; 6],
}

/// A CQE, as the service thread sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Call `i` of the batch given to [`Uring::run`] finished with this result.
    Batch(usize, i64),
    /// A parked call finished with this result.
    Parked(Parked, i64),
}

/// What to do with a call whose non-blocking attempt would have waited.
pub enum Park {
    /// Park it in the ring with this SQE, linked to a timeout of this long if there is one
    /// (a `poll` with a timeout).
    Ring(squeue::Entry, Option<std::time::Duration>),
    /// It cannot wait (`O_NONBLOCK`): run it inline.
    Inline,
    /// Only a blocking worker gives exactly the blocking call's answer.
    Worker,
}

/// user_data of a parked call's SQE: this bit, and its index in `parked`.
const PARKED_TAG: u64 = 1 << 63;
/// user_data of the doorbell's FUTEX_WAIT.
const FUTEX_TAG: u64 = 1 << 62;
/// user_data of the NOPs that time an enter.
const NOP_TAG: u64 = 1 << 61;
/// user_data of a parked call's linked timeout (its CQE says nothing the call's does not).
const TIMEOUT_TAG: u64 = 1 << 60;
/// `io_uring_enter`'s flag: wait for (and flush) completions.
const IORING_ENTER_GETEVENTS: u32 = 1;
/// futex2 flags: a 32-bit word, private to the process (as the shim's futex calls).
const FUTEX2_SIZE_U32: u32 = 0x02;
const FUTEX2_PRIVATE: u32 = 128;

/// One service thread's ring, and the calls parked in it.
pub struct Uring {
    /// Dropped by hand: not at all once the ring failed (see `Drop`).
    ring: std::mem::ManuallyDrop<IoUring>,
    /// Parked calls by index; `None` slots are free (listed in `free`).
    parked: Vec<Option<Parked>>,
    /// The timespec of a parked call's linked timeout, by the same index: the kernel reads
    /// it when it submits the SQE, so it lives until the call's CQE.
    timeouts: Vec<Option<Box<types::Timespec>>>,
    free: Vec<usize>,
    /// Parked calls whose SQEs are pushed but not yet submitted.
    unsubmitted: Vec<usize>,
    /// Whether a FUTEX_WAIT on the doorbell is in the ring and has not completed.
    futex_armed: bool,
    /// Whether the kernel has FUTEX_WAIT and the other opcodes parking needs.
    can_park: bool,
    /// The ring failed as a whole (its descriptor closed or reused by the program): no new
    /// SQE goes in; parked calls are still reaped from the mapped completion queue.
    broken: bool,
    /// The ring's file (device, inode), to tell at drop whether its descriptor still names
    /// it. (Each io_uring instance has an inode of its own on this kernel; where they share
    /// one, as on kernels whose rings are plain anonymous inodes, this cannot tell.)
    id: Option<(u64, u64)>,
    /// Enters in a row that took none of a non-empty submission queue and completed
    /// nothing (see [`Uring::stalled`]).
    stalls: u32,
}

/// How many enters in a row may take nothing from a non-empty submission queue before the
/// ring counts as failed, where its descriptor still seems to name it.
const STALLS_BEFORE_FAILING: u32 = 10_000;

impl Uring {
    /// A ring of [`RING_ENTRIES`] SQEs and [`CQ_ENTRIES`] CQEs, on a high descriptor: the
    /// runtime's own descriptors never take the low numbers a program expects `open` to
    /// return (a program that closes fd 0 and opens a file expects fd 0).
    pub fn new() -> io::Result<Self> {
        let ring = IoUring::builder().setup_cqsize(CQ_ENTRIES).build(RING_ENTRIES)?;
        // Left where it is, the ring would hold one of the low numbers the program's next
        // `open` must return.
        let moved = flexsc_shim::sys::dup_high(ring.as_raw_fd());
        let ring = if moved < 0 {
            // No room up there (a tiny RLIMIT_NOFILE): keep the ring where it is.
            ring
        } else {
            // SAFETY: `moved` is a fresh duplicate of a ring set up with exactly these
            // parameters; the original ring (and its low descriptor) is dropped after.
            let relocated = unsafe { IoUring::from_fd(moved, ring.params().clone()) }?;
            drop(ring);
            relocated
        };
        // Recorded, so that a forked child closes it (`flexsc_shim::sys::close_inherited`).
        let id = flexsc_shim::sys::file_id(ring.as_raw_fd());
        if let Some(id) = id {
            flexsc_shim::sys::own(ring.as_raw_fd(), id);
        }
        let can_park = parking_supported(&ring);
        Ok(Uring {
            ring: std::mem::ManuallyDrop::new(ring),
            id,
            parked: Vec::new(),
            timeouts: Vec::new(),
            free: Vec::new(),
            unsubmitted: Vec::new(),
            futex_armed: false,
            can_park,
            broken: false,
            stalls: 0,
        })
    }

    /// One `io_uring_enter` round trip (submit one NOP, wait for its CQE), in ns: the
    /// median of 9, or None if the ring fails.
    pub fn time_enter(&mut self) -> Option<f64> {
        let mut times = Vec::with_capacity(9);
        for _ in 0..9 {
            let nop = opcode::Nop::new().build().user_data(NOP_TAG);
            let start = std::time::Instant::now();
            // SAFETY: a NOP reads no memory.
            unsafe { self.ring.submission().push(&nop) }.ok()?;
            self.ring.submit_and_wait(1).ok()?;
            times.push(start.elapsed().as_nanos() as f64);
            self.reap(|_| {});
        }
        times.sort_by(f64::total_cmp);
        Some(times[times.len() / 2])
    }

    /// Whether an idle service thread must sleep in this ring ([`Uring::sleep`]) rather
    /// than on the doorbell alone: calls are parked, or a FUTEX_WAIT from an earlier sleep
    /// is still armed (a wake it takes must end the sleep).
    #[inline]
    pub fn sleeps_here(&self) -> bool {
        !self.broken && (self.parked() > 0 || self.futex_armed)
    }

    /// Whether parked calls wait for [`Uring::flush`].
    #[inline]
    pub fn has_unsubmitted(&self) -> bool {
        !self.unsubmitted.is_empty()
    }

    /// Calls parked in the ring and not yet reaped.
    #[inline]
    pub fn parked(&self) -> usize {
        self.parked.len() - self.free.len()
    }

    /// Whether the ring still takes SQEs.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// Whether calls that would wait can be parked in this ring.
    pub fn can_park(&self) -> bool {
        self.can_park && !self.broken
    }

    /// Parks a call in the ring (submitted by the next [`Uring::flush`] or enter), with
    /// a linked `timeout` if given: when that passes first, the call completes with
    /// -ECANCELED. `Err` gives the call back when the ring cannot take it.
    ///
    /// # Safety
    /// The SQE is the owner's posted call (from [`park_plan`]); its buffers stay valid
    /// until its CQE, as the owner waits for its entry.
    pub unsafe fn park(
        &mut self,
        call: Parked,
        sqe: squeue::Entry,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), Parked> {
        if !self.can_park() {
            return Err(call);
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.parked.push(None);
                self.timeouts.push(None);
                self.parked.len() - 1
            }
        };
        let sqe = sqe.user_data(PARKED_TAG | idx as u64);
        let linked = timeout.map(|d| {
            let ts = Box::new(types::Timespec::new().sec(d.as_secs()).nsec(d.subsec_nanos()));
            let link = opcode::LinkTimeout::new(&*ts).build().user_data(TIMEOUT_TAG);
            (ts, link)
        });
        let sqes: &[squeue::Entry] = match &linked {
            Some((_, link)) => &[sqe.flags(squeue::Flags::IO_LINK), link.clone()],
            None => std::slice::from_ref(&sqe),
        };
        // SAFETY: the caller's promise; the timespec lives in `timeouts` until the CQE.
        let mut pushed = unsafe { self.ring.submission().push_multiple(sqes) }.is_ok();
        if !pushed && self.ring.submit().is_ok() {
            self.unsubmitted.clear();
            // SAFETY: as above.
            pushed = unsafe { self.ring.submission().push_multiple(sqes) }.is_ok();
        }
        if !pushed {
            self.free.push(idx);
            return Err(call);
        }
        self.parked[idx] = Some(call);
        self.timeouts[idx] = linked.map(|(ts, _)| ts);
        self.unsubmitted.push(idx);
        Ok(())
    }

    /// Submits the parked calls pushed since the last enter, without waiting. If the ring
    /// fails, each of them is given to `failed` (nothing of it ran).
    pub fn flush(&mut self, failed: impl FnMut(Parked)) {
        if self.unsubmitted.is_empty() || self.broken {
            return;
        }
        loop {
            match self.ring.submit() {
                Ok(_) => {
                    self.unsubmitted.clear();
                    return;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // The kernel is short of room for completions: retried next pass, after
                // this one's reaping made room.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) => return,
                Err(e) => return self.fail(&e, failed),
            }
        }
    }

    /// An enter took nothing from a non-empty submission queue and completed nothing: the
    /// error to fail the ring with, if it must. Found by a review: a program that `dup2`s
    /// an io_uring of its own onto the ring's number gets every later enter, which on that
    /// ring has nothing to take and returns at once; the pass spun on it for ever, and the
    /// program's calls with it. So: failed at once where the descriptor no longer names the
    /// ring, and after [`STALLS_BEFORE_FAILING`] such enters in a row where it cannot tell.
    fn stalled(&mut self) -> Option<io::Error> {
        if self.id.is_some() && flexsc_shim::sys::file_id(self.ring.as_raw_fd()) != self.id {
            return Some(io::Error::other(
                "its descriptor names another file now (the program's dup2 onto its number)",
            ));
        }
        self.stalls += 1;
        (self.stalls >= STALLS_BEFORE_FAILING)
            .then(|| io::Error::other("the kernel took none of its submissions, many times in a row"))
    }

    /// The ring failed as a whole: no more SQEs; the unsubmitted parked calls go back.
    fn fail(&mut self, e: &io::Error, mut failed: impl FnMut(Parked)) {
        if !self.broken {
            crate::diag::note(format_args!(
                "flexsc: io_uring failed ({e}); service thread runs batches directly from now on"
            ));
        }
        self.broken = true;
        for idx in std::mem::take(&mut self.unsubmitted) {
            if let Some(call) = self.parked[idx].take() {
                self.free.push(idx);
                failed(call);
            }
        }
    }

    /// Whether a CQE waits to be reaped (one load of the shared completion queue).
    pub fn has_completions(&mut self) -> bool {
        !self.ring.completion().is_empty()
    }

    /// Reaps the CQEs already posted (no system call unless the completion queue
    /// overflowed into the kernel's list).
    pub fn reap(&mut self, mut done: impl FnMut(Completion)) {
        if !self.broken && self.ring.submission().cq_overflow() {
            // SAFETY: GETEVENTS with nothing to submit and no argument: flushes the
            // kernel's overflow list into the completion queue.
            let _ = unsafe {
                self.ring
                    .submitter()
                    .enter::<libc::sigset_t>(0, 0, IORING_ENTER_GETEVENTS, None)
            };
        }
        let Uring {
            ring,
            parked,
            free,
            futex_armed,
            ..
        } = self;
        for cqe in ring.completion() {
            dispatch(
                cqe.user_data(),
                cqe.result(),
                parked,
                free,
                futex_armed,
                &mut done,
            );
        }
    }

    /// Runs `calls` (SQEs whose user_data is their index in `calls`) with as few
    /// `io_uring_enter`s as the ring allows, and calls `done` for each of their CQEs and
    /// for the parked calls that complete meanwhile. The parked calls pushed so far are
    /// submitted too.
    ///
    /// # Safety
    /// The SQEs are the owners' posted calls: their pointer arguments are the owners'
    /// promise, as for the `syscall` instruction.
    pub unsafe fn run(
        &mut self,
        calls: &[squeue::Entry],
        mut done: impl FnMut(Completion),
    ) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other("the ring failed earlier"));
        }
        let mut next = 0;
        while next < calls.len() {
            if self.ring.submission().is_full() {
                // Parked calls not yet submitted fill the queue (a flush that met EBUSY).
                match self.ring.submit() {
                    Ok(_) => self.unsubmitted.clear(),
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)) => {
                        // No room now: the rest of the batch runs directly.
                        return Err(e);
                    }
                    Err(e) => {
                        self.fail(&e, |call| done(Completion::Parked(call, PARK_FAILED)));
                        return Err(e);
                    }
                }
            }
            let chunk = {
                let mut sq = self.ring.submission();
                let room = sq.capacity() - sq.len();
                let chunk = (calls.len() - next).min(room);
                for entry in &calls[next..next + chunk] {
                    // SAFETY: the SQE's pointers are the owner's (its promise); there is room.
                    let _ = unsafe { sq.push(entry) };
                }
                chunk
            };
            let mut reaped = 0;
            while reaped < chunk {
                match self.ring.submit_and_wait(chunk - reaped) {
                    Ok(0) if !self.ring.submission().is_empty() && !self.has_completions() => {
                        if let Some(e) = self.stalled() {
                            // The batch's SQEs never reached a kernel ring: nothing of it
                            // ran, and it runs directly (as after any failure here).
                            self.fail(&e, |call| done(Completion::Parked(call, PARK_FAILED)));
                            return Err(e);
                        }
                        continue;
                    }
                    Ok(_) => {
                        self.stalls = 0;
                        self.unsubmitted.clear();
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                    Err(e) => {
                        self.fail(&e, |call| done(Completion::Parked(call, PARK_FAILED)));
                        return Err(e);
                    }
                }
                self.reap(|c| {
                    if let Completion::Batch(..) = c {
                        reaped += 1;
                    }
                    done(c)
                });
            }
            next += chunk;
        }
        Ok(())
    }

    /// Sleeps until a parked call completes or the doorbell rings (a service thread with
    /// parked calls and nothing else to do). May return early.
    pub fn sleep(&mut self, doorbell: &flexsc_shim::Doorbell) {
        if self.broken {
            // No enter any more: look at the completion queue now and then.
            std::thread::sleep(std::time::Duration::from_micros(200));
            return;
        }
        let mut failure = None;
        doorbell.sleep_with(|word, expected| {
            if !self.futex_armed {
                let wait = opcode::FutexWait::new(
                    word,
                    u64::from(expected),
                    u64::from(u32::MAX),
                    FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
                )
                .build()
                .user_data(FUTEX_TAG);
                // SAFETY: the doorbell's word lives as long as the runtime, which outlives
                // this ring (the service thread owns both and drops the ring first).
                self.futex_armed = unsafe { self.ring.submission().push(&wait) }.is_ok();
            }
            if !self.futex_armed {
                // No room for the wait: do not sleep, the caller comes back soon.
                return;
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => self.unsubmitted.clear(),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => failure = Some(e),
            }
        });
        if let Some(e) = failure {
            self.fail(&e, |_| {});
        }
    }

    /// Waits for at least one CQE (at shutdown, when only parked calls are left).
    pub fn wait(&mut self) {
        if self.broken || self.has_completions() {
            std::thread::sleep(std::time::Duration::from_micros(200));
            return;
        }
        if let Err(e) = self.ring.submit_and_wait(1) {
            if e.raw_os_error() != Some(libc::EINTR) {
                self.fail(&e, |_| {});
            }
        }
    }
}

/// The result given for a parked call the ring failed to submit: the service thread
/// hands such a call to a blocking worker instead (no real result is this negative).
pub const PARK_FAILED: i64 = i64::MIN;

impl Drop for Uring {
    fn drop(&mut self) {
        flexsc_shim::sys::disown(self.ring.as_raw_fd());
        if self.broken || flexsc_shim::sys::file_id(self.ring.as_raw_fd()) != self.id {
            // The likeliest failure is that the program closed our descriptor (close_range
            // at start-up, say), and the number may now name one of its own files, which
            // dropping the ring would close: forget it instead.
            return;
        }
        // A FUTEX_WAIT still armed on the doorbell word must be gone before the runtime
        // frees that word: the kernel tears a closed ring down asynchronously, and a
        // waiter left queued on a reused address would take a futex wake meant for
        // someone else. Cancel it and wait for its CQE.
        let mut tries = 0;
        while self.futex_armed && tries < 1000 {
            tries += 1;
            let cancel = opcode::AsyncCancel::new(FUTEX_TAG).build().user_data(NOP_TAG);
            // SAFETY: a cancel request reads no memory of ours.
            if unsafe { self.ring.submission().push(&cancel) }.is_err()
                || self.ring.submit_and_wait(1).is_err()
            {
                break;
            }
            self.reap(|_| {});
        }
        // SAFETY: dropped once, here, and never used again.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.ring) };
    }
}

fn dispatch(
    user_data: u64,
    result: i32,
    parked: &mut [Option<Parked>],
    free: &mut Vec<usize>,
    futex_armed: &mut bool,
    done: &mut impl FnMut(Completion),
) {
    if user_data & FUTEX_TAG != 0 {
        *futex_armed = false;
    } else if user_data & (NOP_TAG | TIMEOUT_TAG) != 0 {
        // A timing NOP, or a parked call's linked timeout (the call's own CQE tells).
    } else if user_data & PARKED_TAG != 0 {
        let idx = (user_data & !PARKED_TAG) as usize;
        if let Some(call) = parked.get_mut(idx).and_then(Option::take) {
            free.push(idx);
            done(Completion::Parked(call, i64::from(result)));
        }
    } else {
        done(Completion::Batch(user_data as usize, i64::from(result)));
    }
}

/// Whether the kernel has every opcode parking uses (FUTEX_WAIT came in Linux 6.7).
fn parking_supported(ring: &IoUring) -> bool {
    let mut probe = io_uring::Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return false;
    }
    [
        opcode::FutexWait::CODE,
        opcode::Read::CODE,
        opcode::Write::CODE,
        opcode::Readv::CODE,
        opcode::Writev::CODE,
        opcode::Recv::CODE,
        opcode::Send::CODE,
        opcode::RecvMsg::CODE,
        opcode::SendMsg::CODE,
        opcode::Accept::CODE,
        opcode::Connect::CODE,
        opcode::PollAdd::CODE,
        opcode::LinkTimeout::CODE,
    ]
    .iter()
    .all(|&code| probe.is_supported(code))
}

/// How a call whose non-blocking attempt would have waited can wait without a thread.
///
/// A few system calls on the would-block path only (fcntl, fstat, getsockopt): they cost
/// far less than waking a blocking worker across cores.
pub fn park_plan(nr: u32, a: &[u64; 6]) -> Park {
    let nr_i = nr as i64;
    if nr_i == libc::SYS_poll {
        return poll_plan(a);
    }
    let fd = a[0];
    // (waits to receive, must be a socket, the flags argument if any)
    let (receive, socket_only, flags) = match nr_i {
        libc::SYS_read | libc::SYS_readv => (true, false, 0),
        libc::SYS_write | libc::SYS_writev => (false, false, 0),
        libc::SYS_recvfrom => (true, true, a[3]),
        libc::SYS_recvmsg => (true, true, a[2]),
        libc::SYS_sendto => (false, true, a[3]),
        libc::SYS_sendmsg => (false, true, a[2]),
        libc::SYS_accept | libc::SYS_accept4 => (true, true, 0),
        libc::SYS_connect => (false, true, 0),
        _ => return Park::Worker,
    };
    let flags = flags as i32;
    if flags & libc::MSG_DONTWAIT != 0 {
        return Park::Inline;
    }
    if flags & libc::MSG_WAITALL != 0 {
        return Park::Worker;
    }
    // SAFETY: F_GETFL reads the descriptor's flags.
    let fl = unsafe { syscall6(libc::SYS_fcntl as u64, [fd, libc::F_GETFL as u64, 0, 0, 0, 0]) };
    if fl < 0 {
        return Park::Worker;
    }
    if fl & libc::O_NONBLOCK as i64 != 0 {
        return Park::Inline;
    }
    match file_kind(fd) {
        Kind::Socket => {
            let timeout = if receive {
                libc::SO_RCVTIMEO
            } else {
                libc::SO_SNDTIMEO
            };
            if has_timeout(fd, timeout)
                || (receive && flexsc_shim::resume::rcvlowat(fd).is_none_or(|l| l > 1))
            {
                return Park::Worker;
            }
        }
        Kind::Pipe if !socket_only => {}
        _ => return Park::Worker,
    }
    match sqe_to_park(nr_i, a, flags) {
        Some(sqe) => Park::Ring(sqe, None),
        None => Park::Worker,
    }
}

/// A `poll` of one descriptor that must wait (the service thread's zero-timeout attempt
/// found nothing ready): a POLL_ADD for its events, linked to a timeout unless it waits
/// for ever. [`poll_result`] turns the CQE into poll's answer. Several descriptors, or a
/// negative one (which poll ignores), go to a worker.
fn poll_plan(a: &[u64; 6]) -> Park {
    if a[1] != 1 {
        return Park::Worker;
    }
    // SAFETY: the owner's pollfd (the attempt read it without EFAULT), which it does not
    // touch while it waits.
    let pfd = unsafe { std::ptr::read_volatile(a[0] as *const libc::pollfd) };
    if pfd.fd < 0 {
        return Park::Worker;
    }
    let sqe = opcode::PollAdd::new(types::Fd(pfd.fd), u32::from(pfd.events as u16)).build();
    match a[2] as i32 {
        ms if ms < 0 => Park::Ring(sqe, None),
        ms => Park::Ring(sqe, Some(std::time::Duration::from_millis(ms as u64))),
    }
}

/// poll's answer for a CQE of a call parked by `poll_plan`, with its pollfd's `revents`
/// written: the ready events, as poll filters them (the requested ones, POLLERR and
/// POLLHUP: io_uring also reports others, such as POLLRDHUP unasked), none when the
/// timeout cancelled it, POLLNVAL when the descriptor was closed meanwhile. None for any
/// other failure, or ready events poll would not report: a worker then makes the whole
/// call.
///
/// # Safety
/// `call` is a parked poll of one descriptor, whose owner waits for its entry.
pub unsafe fn poll_result(call: &Parked, res: i64) -> Option<i64> {
    let pfd = call.args[0] as *mut libc::pollfd;
    // SAFETY: the owner's pollfd (see `poll_plan`).
    let events = unsafe { std::ptr::addr_of!((*pfd).events).read_volatile() };
    let (revents, ret) = match res {
        1.. => match res as u16 as i16 & (events | libc::POLLERR | libc::POLLHUP) {
            0 => return None,
            ready => (ready, 1),
        },
        r if r == -(libc::ECANCELED as i64) => (0, 0),
        r if r == -(libc::EBADF as i64) => (libc::POLLNVAL, 1),
        _ => return None,
    };
    // SAFETY: the owner's pollfd (see `poll_plan`): the kernel would write `revents` here.
    unsafe { std::ptr::addr_of_mut!((*pfd).revents).write_volatile(revents) };
    Some(ret)
}

fn sqe_to_park(nr: i64, a: &[u64; 6], flags: i32) -> Option<squeue::Entry> {
    let fd = types::Fd(a[0] as i32);
    let len_ok =
        |buf: u64, len: u64| len <= MAX_RW_COUNT && buf.checked_add(len).is_some_and(|e| e <= TASK_SIZE_MAX);
    // The stream's own position: io_uring reads -1 as "no offset".
    const NO_OFFSET: u64 = u64::MAX;
    Some(match nr {
        libc::SYS_read if len_ok(a[1], a[2]) => opcode::Read::new(fd, a[1] as *mut u8, a[2] as u32)
            .offset(NO_OFFSET)
            .build(),
        libc::SYS_write if len_ok(a[1], a[2]) => opcode::Write::new(fd, a[1] as *const u8, a[2] as u32)
            .offset(NO_OFFSET)
            .build(),
        libc::SYS_readv if a[2] <= libc::UIO_MAXIOV as u64 => {
            opcode::Readv::new(fd, a[1] as *const libc::iovec, a[2] as u32)
                .offset(NO_OFFSET)
                .build()
        }
        libc::SYS_writev if a[2] <= libc::UIO_MAXIOV as u64 => {
            opcode::Writev::new(fd, a[1] as *const libc::iovec, a[2] as u32)
                .offset(NO_OFFSET)
                .build()
        }
        libc::SYS_recvfrom if a[4] == 0 && len_ok(a[1], a[2]) => {
            opcode::Recv::new(fd, a[1] as *mut u8, a[2] as u32)
                .flags(flags)
                .build()
        }
        libc::SYS_sendto if len_ok(a[1], a[2]) => opcode::Send::new(fd, a[1] as *const u8, a[2] as u32)
            .flags(flags)
            .dest_addr(a[4] as *const libc::sockaddr)
            .dest_addr_len(a[5] as libc::socklen_t)
            .build(),
        libc::SYS_recvmsg => opcode::RecvMsg::new(fd, a[1] as *mut libc::msghdr)
            .flags(flags as u32)
            .build(),
        libc::SYS_sendmsg => opcode::SendMsg::new(fd, a[1] as *const libc::msghdr)
            .flags(flags as u32)
            .build(),
        libc::SYS_accept => {
            opcode::Accept::new(fd, a[1] as *mut libc::sockaddr, a[2] as *mut libc::socklen_t).build()
        }
        libc::SYS_accept4 => {
            opcode::Accept::new(fd, a[1] as *mut libc::sockaddr, a[2] as *mut libc::socklen_t)
                .flags(a[3] as i32)
                .build()
        }
        libc::SYS_connect => {
            opcode::Connect::new(fd, a[1] as *const libc::sockaddr, a[2] as libc::socklen_t).build()
        }
        _ => return None,
    })
}

/// Whether the socket has a receive or send timeout (`which`) set.
fn has_timeout(fd: u64, which: i32) -> bool {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    let args = [
        fd,
        libc::SOL_SOCKET as u64,
        which as u64,
        &mut tv as *mut libc::timeval as u64,
        &mut len as *mut libc::socklen_t as u64,
        0,
    ];
    // SAFETY: getsockopt writes one timeval and its length into live locals.
    let ret = unsafe { syscall6(libc::SYS_getsockopt as u64, args) };
    ret != 0 || tv.tv_sec != 0 || tv.tv_usec != 0
}

/// For a parked call that finished with `moved` bytes: the bytes the blocking call would
/// still have moved, if it is a write or send that stopped short (a blocking one goes on
/// until everything is written).
pub fn short_write(call: &Parked, moved: i64) -> bool {
    if moved < 0 {
        return false;
    }
    let a = call.args;
    let wanted = match call.nr as i64 {
        libc::SYS_write | libc::SYS_sendto => a[2] as i64,
        // SAFETY: the kernel just read this iovec array; the owner keeps it while it waits.
        libc::SYS_writev => unsafe { flexsc_shim::resume::iov_total(a[1], a[2]) },
        libc::SYS_sendmsg => {
            // SAFETY: the kernel just read this msghdr and its iovecs; the owner keeps them.
            let msg = unsafe { std::ptr::read_volatile(a[1] as *const libc::msghdr) };
            // SAFETY: as above.
            unsafe { flexsc_shim::resume::iov_total(msg.msg_iov as u64, msg.msg_iovlen as u64) }
        }
        _ => return false,
    };
    moved < wanted
}

/// The SQE of a batch call, or None if io_uring cannot run it with exactly the syscall's
/// meaning, given the kinds of descriptors already looked up in this batch (`seekable`,
/// extended here): positional transfers need a seekable file (on a pipe or socket the
/// syscall answers ESPIPE, where io_uring would read or write at the stream's head).
pub fn batch_sqe(nr: u32, a: &[u64; 6], seekable: &mut Vec<(u64, bool)>) -> Option<squeue::Entry> {
    let entry = sqe(nr, a)?;
    let positional = matches!(
        nr as i64,
        libc::SYS_pread64 | libc::SYS_pwrite64 | libc::SYS_preadv | libc::SYS_pwritev
    );
    if !positional {
        return Some(entry);
    }
    // The descriptor must also be open for the direction of the transfer: on one that is
    // not, the syscall answers EBADF before it looks at the buffers, while io_uring reads a
    // vectored call's iovecs first (EFAULT for a bad one; found by the randomized
    // differential test). Keyed by the number the kernel sees (the low 32 bits) and the
    // direction.
    let writes = matches!(nr as i64, libc::SYS_pwrite64 | libc::SYS_pwritev);
    let fd = a[0] & 0xffff_ffff;
    let key = fd | (u64::from(writes) << 32);
    let ok = match seekable.iter().find(|(f, _)| *f == key) {
        Some(&(_, ok)) => ok,
        None => {
            // Not a memory device: io_uring may stop its transfer short (see `Kind::Memory`).
            let ok = file_kind(fd) == Kind::Disk && open_for(fd, writes);
            seekable.push((key, ok));
            ok
        }
    };
    ok.then_some(entry)
}

/// The SQE that parks a call made to wait for the device (`fsync`, `fdatasync`) in the
/// ring, or None for the others (a blocking worker runs those).
pub fn device_wait_sqe(nr: u32, a: &[u64; 6]) -> Option<squeue::Entry> {
    matches!(nr as i64, libc::SYS_fsync | libc::SYS_fdatasync)
        .then(|| sqe(nr, a))
        .flatten()
}

/// Whether a batch call of number `nr` is likely to go to the ring, before it is claimed
/// (`flags` reads its posted flags argument, a hint): an `openat` that would run directly
/// (see `open_means_the_same`) is not, so it is claimed only when it runs.
pub fn batch_hint(nr: u32, flags: impl FnOnce() -> u64) -> bool {
    nr as i64 != libc::SYS_openat || open_means_the_same(flags() as i32)
}

/// Whether io_uring opens with exactly `openat`'s meaning, given its `flags`.
///
/// io_uring first tries an open inline with `O_NONBLOCK` added (and takes the flag off the
/// file afterwards). Where the open itself honours the flag, that answers at once where the
/// syscall waits: a FIFO's read end opens with no writer, its write end fails with ENXIO
/// with no reader (measured here on Linux 6.18), and a device's open may do the same. So an
/// open goes to the ring only where the added flag changes nothing: the caller asked for
/// `O_NONBLOCK` itself; `O_PATH` (no file's open runs); `O_DIRECTORY` (anything but a
/// directory fails with ENOTDIR first, and `O_TMPFILE` includes it); or `O_CREAT` or
/// `O_TRUNC`, which io_uring never tries inline and hands to its workers, who open without
/// the flag. A plain open of an existing file runs directly.
fn open_means_the_same(flags: i32) -> bool {
    flags & (libc::O_NONBLOCK | libc::O_PATH | libc::O_DIRECTORY | libc::O_CREAT | libc::O_TRUNC) != 0
}

/// Whether descriptor `fd` is an io_uring instance (`IORING_OP_CLOSE` refuses one with
/// EBADF, where `close(2)` closes it). Looks at `/proc/self/fd`: without `/proc`, no.
pub fn is_io_uring_instance(fd: u64) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{}", fd as i32))
        .is_ok_and(|target| target.as_os_str() == "anon_inode:[io_uring]")
}

/// Whether `fd` is open for writing (`writes`) or reading, and not an O_PATH descriptor.
fn open_for(fd: u64, writes: bool) -> bool {
    // SAFETY: F_GETFL reads a descriptor's flags; no memory is passed.
    let flags = unsafe { libc::fcntl(fd as i32, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_PATH != 0 {
        return false;
    }
    match flags & libc::O_ACCMODE {
        libc::O_RDWR => true,
        libc::O_WRONLY => writes,
        _ => !writes,
    }
}

/// The SQE for a call, or None if io_uring would not mean exactly the same.
fn sqe(nr: u32, a: &[u64; 6]) -> Option<squeue::Entry> {
    let fd = types::Fd(a[0] as i32);
    let path_ok = |p: u64| p != 0;
    let io_ok = |buf: u64, len: u64, off: u64| {
        (off as i64) >= 0 && len <= MAX_RW_COUNT && buf.checked_add(len).is_some_and(|e| e <= TASK_SIZE_MAX)
    };
    let iov_ok = |cnt: u64, off: u64| (off as i64) >= 0 && cnt <= libc::UIO_MAXIOV as u64;
    let entry = match nr as i64 {
        libc::SYS_pread64 if io_ok(a[1], a[2], a[3]) => opcode::Read::new(fd, a[1] as *mut u8, a[2] as u32)
            .offset(a[3])
            .build(),
        libc::SYS_pwrite64 if io_ok(a[1], a[2], a[3]) => {
            opcode::Write::new(fd, a[1] as *const u8, a[2] as u32)
                .offset(a[3])
                .build()
        }
        libc::SYS_preadv if iov_ok(a[2], a[3]) => {
            opcode::Readv::new(fd, a[1] as *const libc::iovec, a[2] as u32)
                .offset(a[3])
                .build()
        }
        libc::SYS_pwritev if iov_ok(a[2], a[3]) => {
            opcode::Writev::new(fd, a[1] as *const libc::iovec, a[2] as u32)
                .offset(a[3])
                .build()
        }
        libc::SYS_fsync => opcode::Fsync::new(fd).build(),
        libc::SYS_fdatasync => opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC).build(),
        libc::SYS_openat if path_ok(a[1]) && open_means_the_same(a[2] as i32) => {
            opcode::OpenAt::new(fd, a[1] as *const libc::c_char)
                .flags(a[2] as i32)
                .mode(a[3] as libc::mode_t)
                .build()
        }
        libc::SYS_close => opcode::Close::new(fd).build(),
        libc::SYS_statx if path_ok(a[1]) => {
            opcode::Statx::new(fd, a[1] as *const libc::c_char, a[4] as *mut types::statx)
                .flags(a[2] as i32)
                .mask(a[3] as u32)
                .build()
        }
        libc::SYS_fallocate => opcode::Fallocate::new(fd, a[3])
            .offset(a[2])
            .mode(a[1] as i32)
            .build(),
        // A negative length: the syscall answers EINVAL before it looks at the descriptor,
        // io_uring looks at the descriptor first (EBADF for a closed one; found by the
        // randomized differential test once `auto` sent ftruncate to the ring).
        libc::SYS_ftruncate if (a[1] as i64) >= 0 => opcode::Ftruncate::new(fd, a[1]).build(),
        libc::SYS_unlinkat if path_ok(a[1]) => opcode::UnlinkAt::new(fd, a[1] as *const libc::c_char)
            .flags(a[2] as i32)
            .build(),
        libc::SYS_mkdirat if path_ok(a[1]) => opcode::MkDirAt::new(fd, a[1] as *const libc::c_char)
            .mode(a[2] as libc::mode_t)
            .build(),
        libc::SYS_renameat2 if path_ok(a[1]) && path_ok(a[3]) => opcode::RenameAt::new(
            fd,
            a[1] as *const libc::c_char,
            types::Fd(a[2] as i32),
            a[3] as *const libc::c_char,
        )
        .flags(a[4] as u32)
        .build(),
        _ => return None,
    };
    Some(entry)
}
