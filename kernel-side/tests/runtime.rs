//! Behaviour of a whole runtime: service threads, blocking workers, back-pressure,
//! statistics, corrupted pages, shutdown, direct mode, process exit and idling.
//!
//! No test asserts how long something takes. Every wait is bounded by [`TIMEOUT`] and
//! fails the test when exceeded, so a lost wake-up or a deadlock shows up as a failure
//! rather than a hung test run.
//!
//! The tests of this file take one lock ([`serial`]): they count calls, batches and
//! threads of their own runtime, and some of them need a core that is not shared with
//! 32 threads of another test.
#![deny(unsafe_op_in_unsafe_fn)]

#[path = "support/child.rs"]
mod child;
#[path = "support/hand.rs"]
mod hand;
#[path = "support/sevens.rs"]
mod sevens;
#[path = "support/wait.rs"]
mod wait;
use hand::HandDriven;

use child::is_child;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::mem::ManuallyDrop;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flexsc_kernel_side::runtime::allowed_cpus;
use flexsc_kernel_side::{Backend, Blocking, Builder, Mode, Runtime, Stats};
use flexsc_shim::entry::{DONE, FREE, STATE_MASK, SUBMITTED};
use flexsc_shim::page::ENTRIES_PER_PAGE;
use flexsc_shim::{Call, Push, Shared, Submitter, Ticket};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The bound of every wait in this file.
const TIMEOUT: Duration = Duration::from_secs(30);

const ENOSYS: i64 = -(libc::ENOSYS as i64);
const EINVAL: i64 = -(libc::EINVAL as i64);
const EBADF: i64 = -(libc::EBADF as i64);

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the tests of this file one at a time (a failed test must not stop the others).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until `done()` holds; fails the test after [`TIMEOUT`].
fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait::wait_until_within(TIMEOUT, what, done)
}

/// Joins a thread, failing the test (instead of hanging) if it does not finish in time.
fn join<T>(handle: JoinHandle<T>, what: &str) -> T {
    wait::join_within(TIMEOUT, handle, what)
}

/// Spawns a thread that gets a syscall page of its own in `shared`'s runtime.
fn spawn_submitter<T: Send + 'static>(
    shared: &Arc<Shared>,
    name: &str,
    f: impl FnOnce(&mut Submitter) -> T + Send + 'static,
) -> JoinHandle<T> {
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut sub = Submitter::new(shared).expect("a syscall page");
            f(&mut sub)
        })
        .expect("spawn a thread")
}

/// A runtime with service threads, or `None` (and a message) on a one-core machine.
fn service_runtime(builder: Builder) -> Option<Runtime> {
    if allowed_cpus().len() < 2 {
        eprintln!(
            "SKIPPED {}: this test needs two usable cores to run service threads",
            std::thread::current().name().unwrap_or("?")
        );
        return None;
    }
    let rt = builder.build().expect("build a runtime");
    assert!(
        matches!(rt.mode(), Mode::Service { .. }),
        "expected service threads: {}",
        rt.mode()
    );
    Some(rt)
}

/// Pins the calling thread to a usable core that runs no service thread of `rt`, for its
/// life; restores the thread's affinity when dropped.
struct PinnedOff(libc::cpu_set_t);

impl PinnedOff {
    fn new(rt: &Runtime) -> PinnedOff {
        let Mode::Service { cpus } = rt.mode() else {
            panic!("PinnedOff needs service threads: {}", rt.mode());
        };
        let core = allowed_cpus()
            .into_iter()
            .find(|c| !cpus.contains(c))
            .expect("a core without a service thread");
        // SAFETY: cpu_set_t is plain data; sched_getaffinity and sched_setaffinity read
        // and write inside it, and change only this thread's affinity.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            let got = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old);
            assert_eq!(got, 0, "sched_getaffinity: {}", std::io::Error::last_os_error());
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(core, &mut one);
            let set = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
            assert_eq!(set, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
            PinnedOff(old)
        }
    }
}

impl Drop for PinnedOff {
    fn drop(&mut self) {
        // SAFETY: as in `new`, with the affinity saved there.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
    }
}

/// Runs its closure once: when asked, or when dropped. Releases blocked calls when a
/// test fails half-way, so the runtime's drop (which waits for its workers) cannot hang.
struct Release(Option<Box<dyn FnOnce()>>);

impl Release {
    fn new(f: impl FnOnce() + 'static) -> Self {
        Release(Some(Box::new(f)))
    }

    fn now(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        self.now();
    }
}

fn ppid() -> i64 {
    i64::from(std::os::unix::process::parent_id())
}

/// An 8-byte record that differs for every `i`.
fn record(i: u64) -> [u8; 8] {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x0123_4567_89ab_cdef).to_le_bytes()
}

/// `size` bytes that differ for every `i`: record `i` repeated.
fn block(i: u64, size: usize) -> Vec<u8> {
    record(i).iter().copied().cycle().take(size).collect()
}

/// An unlinked temporary file holding `n` records, record `i` at offset `8 * i`.
fn records_file(n: u64) -> File {
    let mut file = tempfile::tempfile().expect("a temporary file");
    let bytes: Vec<u8> = (0..n).flat_map(record).collect();
    file.write_all(&bytes).expect("write the records");
    file
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(ret, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A connected pair of Unix sockets of type `kind`; the caller closes them.
fn socketpair(kind: libc::c_int) -> [RawFd; 2] {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two descriptors into `fds`.
    let ret = unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) };
    assert_eq!(ret, 0, "socketpair: {}", std::io::Error::last_os_error());
    fds
}

fn nr(n: libc::c_long) -> u64 {
    n as u64
}

fn getppid(sub: &mut Submitter) -> i64 {
    // SAFETY: getppid takes no arguments and changes nothing.
    unsafe { sub.call(nr(libc::SYS_getppid), [0; 6]) }
}

fn pread(sub: &mut Submitter, fd: RawFd, buf: &mut [u8], offset: u64) -> i64 {
    let args = [fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, offset, 0, 0];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which is borrowed
    // mutably for the whole (synchronous) call.
    unsafe { sub.call(nr(libc::SYS_pread64), args) }
}

fn read(sub: &mut Submitter, fd: RawFd, buf: &mut [u8]) -> i64 {
    let args = [fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0];
    // SAFETY: as in `pread`.
    unsafe { sub.call(nr(libc::SYS_read), args) }
}

fn pwrite_call(fd: RawFd, buf: &[u8], offset: u64) -> Call {
    Call::new(
        libc::SYS_pwrite64,
        [fd as u64, buf.as_ptr() as u64, buf.len() as u64, offset, 0, 0],
    )
}

/// Pushes a call whose buffers the caller keeps alive until the ticket is reaped.
fn push_posted(sub: &mut Submitter, call: Call) -> Ticket {
    // SAFETY: every caller keeps the call's buffers alive (and unaliased) until it reaps
    // the ticket or the process ends.
    match unsafe { sub.push(call.nr, call.args) } {
        Push::Posted(ticket) => ticket,
        other => panic!("expected the call to be posted, got {other:?}"),
    }
}

/// `2 * pairs` calls through `sub`: getppid, and pread64 of record `k % records` of
/// `file`, each checked. Stops early when `stop` returns true; returns the calls made.
fn busy_calls(
    sub: &mut Submitter,
    file: &File,
    records: u64,
    pairs: u64,
    mut stop: impl FnMut() -> bool,
) -> u64 {
    let expected_ppid = ppid();
    let mut made = 0;
    for k in 0..pairs {
        if stop() {
            break;
        }
        assert_eq!(getppid(sub), expected_ppid, "getppid #{k}");
        let mut buf = [0u8; 8];
        let r = k % records;
        assert_eq!(pread(sub, file.as_raw_fd(), &mut buf, 8 * r), 8, "pread64 #{k}");
        assert_eq!(buf, record(r), "pread64 #{k}: record {r}");
        made += 2;
    }
    made
}

/// Sum of the counters of every page of `shared` for syscall `nr`: (delegated, direct).
fn page_counts(shared: &Shared, nr: libc::c_long) -> (u64, u64) {
    shared.pages().fold((0, 0), |(d, r), page| {
        let c = page.counters(nr as u64);
        (d + c.delegated.load(SeqCst), r + c.direct.load(SeqCst))
    })
}

/// Runs `test` alone in a child process (see `support/child.rs`), with `env` added.
fn run_child(test: &str, env: &[(&str, &OsStr)]) -> (ExitStatus, String) {
    child::run_child(test, env, TIMEOUT)
}

// ---------------------------------------------------------------------------------------
// 1. A call that blocks never holds up other threads
// ---------------------------------------------------------------------------------------

/// Calls that left a service thread because they would wait: handed to a blocking worker,
/// or handed back to their caller.
fn sent_away(rt: &Runtime) -> u64 {
    let s = rt.stats();
    s.handoffs + s.declined + s.uring_parked
}

/// Starts `block` on a thread of its own, waits until the service thread sent it away (to
/// a blocking worker, back to its caller, or parked in its io_uring), makes 10,000 checked calls on another
/// thread, checks that `block` has not returned, then releases it and returns its result.
fn while_blocked<T: Send + 'static>(
    rt: &Runtime,
    block: impl FnOnce(&mut Submitter) -> T + Send + 'static,
    release: Release,
) -> T {
    let mut release = release;
    let shared = rt.shared();
    let before = sent_away(rt);
    let returned = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&returned);
    let blocker = spawn_submitter(shared, "blocker", move |sub| {
        let result = block(sub);
        flag.store(true, SeqCst);
        result
    });
    wait_until("the service thread to send the blocking call away", || {
        sent_away(rt) > before
    });

    let file = records_file(64);
    let busy = spawn_submitter(shared, "busy", move |sub| {
        busy_calls(sub, &file, 64, 5_000, || false)
    });
    assert_eq!(join(busy, "10,000 calls of another thread"), 10_000);
    assert!(
        !returned.load(SeqCst),
        "the blocking call returned before it was released"
    );
    release.now();
    join(blocker, "the blocking call to return once released")
}

#[test]
fn blocked_pipe_read_does_not_hold_up_other_threads() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    let (r, w) = pipe();
    let release = Release::new(move || {
        File::from(w).write_all(b"released").expect("write the pipe");
    });
    let (n, buf) = while_blocked(
        &rt,
        move |sub| {
            let mut buf = [0u8; 32];
            let n = read(sub, r.as_raw_fd(), &mut buf);
            (n, buf)
        },
        release,
    );
    assert_eq!(n, 8);
    assert_eq!(&buf[..8], b"released");
    let read_stats = rt.stats().syscalls[libc::SYS_read as usize];
    assert_eq!((read_stats.delegated, read_stats.direct), (1, 0));
}

/// With `Blocking::Caller` a call that would wait goes back to its own thread (after the
/// non-blocking attempt), and blocks there.
#[test]
fn blocked_pipe_read_on_its_caller_does_not_hold_up_other_threads() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder().blocking(Blocking::Caller)) else {
        return;
    };
    let (r, w) = pipe();
    let release = Release::new(move || {
        File::from(w).write_all(b"released").expect("write the pipe");
    });
    let (n, buf) = while_blocked(
        &rt,
        move |sub| {
            let mut buf = [0u8; 32];
            let n = read(sub, r.as_raw_fd(), &mut buf);
            (n, buf)
        },
        release,
    );
    assert_eq!(n, 8);
    assert_eq!(&buf[..8], b"released");
    let s = rt.stats();
    assert_eq!((s.handoffs, s.declined), (0, 1), "no worker: back to the caller");
    let read_stats = s.syscalls[libc::SYS_read as usize];
    assert_eq!((read_stats.delegated, read_stats.direct), (0, 1));
}

/// A send or receive with MSG_DONTWAIT never waits, so the service thread finishes it
/// itself, EAGAIN included: nothing is handed to a worker or back to the caller.
#[test]
fn msg_dontwait_calls_finish_on_the_service_thread() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder().blocking(Blocking::Caller)) else {
        return;
    };
    let fds = socketpair(libc::SOCK_STREAM);
    let before = sent_away(&rt);
    let mut sub = rt.submitter().expect("a page");
    let mut buf = [0u8; 16];
    let dontwait = libc::MSG_DONTWAIT as u64;
    // SAFETY: recvfrom/sendto into and from the local buffer on our sockets.
    let (empty, sent, got) = unsafe {
        let empty = sub.call(
            nr(libc::SYS_recvfrom),
            [fds[1] as u64, buf.as_mut_ptr() as u64, 16, dontwait, 0, 0],
        );
        let sent = sub.call(
            nr(libc::SYS_sendto),
            [fds[0] as u64, b"hi".as_ptr() as u64, 2, dontwait, 0, 0],
        );
        let got = sub.call(
            nr(libc::SYS_recvfrom),
            [fds[1] as u64, buf.as_mut_ptr() as u64, 16, dontwait, 0, 0],
        );
        (empty, sent, got)
    };
    assert_eq!(empty, -(libc::EAGAIN as i64), "nothing to read yet");
    assert_eq!((sent, got), (2, 2));
    assert_eq!(&buf[..2], b"hi");
    assert_eq!(
        sent_away(&rt),
        before,
        "no MSG_DONTWAIT call left the service thread"
    );
    let s = rt.stats();
    assert_eq!(s.syscalls[libc::SYS_recvfrom as usize].delegated, 2);
    drop(sub);
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}

/// recvmmsg and sendmmsg on an O_NONBLOCK socket (an event loop's, as BIND's libuv
/// makes them), and recvmmsg with MSG_WAITFORONE on a blocking one, finish on the service
/// thread with the answers a direct call gives: nothing goes to a worker or back to the
/// caller (before, every one did: a round trip and then the call again on its caller).
/// poll and epoll_wait are tried with a zero timeout first: ready descriptors and
/// failures finish on the service thread with what a direct call returns (zero timeouts
/// never wait: they run there as they are); a call that would wait leaves it (here for its
/// caller, who runs it). An epoll_pwait with a signal mask never reaches it.
#[test]
fn readiness_waits_that_need_not_wait_finish_on_the_service_thread() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder().blocking(Blocking::Caller)) else {
        return;
    };
    let fds = socketpair(libc::SOCK_STREAM);
    let (a, b) = (fds[0], fds[1]);
    // SAFETY: epoll_create1 and epoll_ctl on our own descriptors and event.
    let ep = unsafe { libc::epoll_create1(0) };
    assert!(ep >= 0);
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 7,
    };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, a, &mut ev) }, 0);
    let mut sub = rt.submitter().expect("a page");
    let mut pfd = libc::pollfd {
        fd: a,
        events: libc::POLLIN,
        revents: -1,
    };
    let pfd_ptr = &mut pfd as *mut libc::pollfd as u64;
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
    let ev_ptr = events.as_mut_ptr() as u64;
    let before = sent_away(&rt);
    // SAFETY: the pollfd and the event array are alive across the calls.
    let (idle_poll, idle_epoll, bad_poll, bad_epoll) = unsafe {
        (
            sub.call(nr(libc::SYS_poll), [pfd_ptr, 1, 0, 0, 0, 0]),
            sub.call(nr(libc::SYS_epoll_wait), [ep as u64, ev_ptr, 4, 0, 0, 0]),
            sub.call(nr(libc::SYS_poll), [8, 1, 1000, 0, 0, 0]),
            sub.call(nr(libc::SYS_epoll_wait), [ep as u64, ev_ptr, 0, 1000, 0, 0]),
        )
    };
    assert_eq!((idle_poll, idle_epoll), (0, 0), "nothing ready, zero timeouts");
    assert_eq!(pfd.revents, 0);
    assert_eq!(
        bad_poll,
        -(libc::EFAULT as i64),
        "a pollfd array in the first page"
    );
    assert_eq!(bad_epoll, -(libc::EINVAL as i64), "maxevents 0");
    // SAFETY: writes our own bytes to our own socket.
    assert_eq!(unsafe { libc::write(b, b"x".as_ptr().cast(), 1) }, 1);
    // SAFETY: as above.
    let (ready_poll, ready_epoll, ready_pwait) = unsafe {
        (
            sub.call(nr(libc::SYS_poll), [pfd_ptr, 1, -1i64 as u64, 0, 0, 0]),
            sub.call(
                nr(libc::SYS_epoll_wait),
                [ep as u64, ev_ptr, 4, -1i64 as u64, 0, 0],
            ),
            sub.call(nr(libc::SYS_epoll_pwait), [ep as u64, ev_ptr, 4, 5000, 0, 8]),
        )
    };
    assert_eq!((ready_poll, ready_epoll, ready_pwait), (1, 1, 1));
    assert_eq!(pfd.revents, libc::POLLIN);
    assert_eq!((events[0].events, events[0].u64), (libc::EPOLLIN as u32, 7));
    assert_eq!(
        sent_away(&rt),
        before,
        "every call above finished on the service thread"
    );
    // Drained: a timed poll and an epoll_pwait with a mask leave the service thread.
    let mut byte = [0u8; 1];
    // SAFETY: reads into our own buffer.
    assert_eq!(unsafe { libc::read(a, byte.as_mut_ptr().cast(), 1) }, 1);
    // SAFETY: an empty signal set of our own.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigemptyset(&mut mask) };
    let mask_ptr = &mask as *const libc::sigset_t as u64;
    // SAFETY: as above; the mask is alive across the call.
    let (timed_poll, masked) = unsafe {
        (
            sub.call(nr(libc::SYS_poll), [pfd_ptr, 1, 20, 0, 0, 0]),
            sub.call(nr(libc::SYS_epoll_pwait), [ep as u64, ev_ptr, 4, 20, mask_ptr, 8]),
        )
    };
    assert_eq!((timed_poll, masked), (0, 0), "both time out");
    assert_eq!(
        sent_away(&rt),
        before + 1,
        "the timed poll left the service thread; the masked wait ran on its caller"
    );
    let s = rt.stats();
    assert_eq!(
        s.syscalls[libc::SYS_epoll_pwait as usize].delegated,
        1,
        "the one without a mask"
    );
    drop(sub);
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(a);
        libc::close(b);
        libc::close(ep);
    }
    rt.shutdown();
}

#[test]
fn mmsg_calls_that_cannot_wait_finish_on_the_service_thread() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder().blocking(Blocking::Caller)) else {
        return;
    };
    let fds = socketpair(libc::SOCK_DGRAM);
    // `nb` is O_NONBLOCK, `bl` blocking.
    let (nb, bl) = (fds[0], fds[1]);
    // SAFETY: sets a flag on our own descriptor.
    assert_eq!(unsafe { libc::fcntl(nb, libc::F_SETFL, libc::O_NONBLOCK) }, 0);
    let before = sent_away(&rt);
    let mut sub = rt.submitter().expect("a page");

    let mut out: Vec<[u8; 4]> = vec![*b"one.", *b"two.", *b"3..."];
    let mut inb = [[0u8; 8]; 4];
    let mut iov_out: Vec<libc::iovec> = out
        .iter_mut()
        .map(|m| libc::iovec {
            iov_base: m.as_mut_ptr().cast(),
            iov_len: m.len(),
        })
        .collect();
    let mut iov_in: Vec<libc::iovec> = inb
        .iter_mut()
        .map(|m| libc::iovec {
            iov_base: m.as_mut_ptr().cast(),
            iov_len: m.len(),
        })
        .collect();
    let mmsg = |iov: &mut [libc::iovec]| -> Vec<libc::mmsghdr> {
        iov.iter_mut()
            .map(|v| {
                // SAFETY: an all-zero mmsghdr is a valid empty one.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect()
    };
    let mut send = mmsg(&mut iov_out);
    let mut recv = mmsg(&mut iov_in);
    let (sendv, recvv) = (send.as_mut_ptr() as u64, recv.as_mut_ptr() as u64);
    let waitforone = libc::MSG_WAITFORONE as u64;
    // SAFETY: the message vectors point at the local buffers, alive across the calls.
    let (empty, sent, got) = unsafe {
        let empty = sub.call(nr(libc::SYS_recvmmsg), [nb as u64, recvv, 4, 0, 0, 0]);
        let sent = sub.call(nr(libc::SYS_sendmmsg), [nb as u64, sendv, 2, 0, 0, 0]);
        // The blocking end, with MSG_WAITFORONE: messages are waiting, so it never waits.
        let got = sub.call(nr(libc::SYS_recvmmsg), [bl as u64, recvv, 4, waitforone, 0, 0]);
        (empty, sent, got)
    };
    assert_eq!(
        empty,
        -(libc::EAGAIN as i64),
        "nothing to receive yet: EAGAIN, as directly"
    );
    assert_eq!((sent, got), (2, 2));
    assert_eq!((recv[0].msg_len, recv[1].msg_len), (4, 4));
    assert_eq!((&inb[0][..4], &inb[1][..4]), (&b"one."[..], &b"two."[..]));
    assert_eq!(
        sent_away(&rt),
        before,
        "every mmsg call finished on the service thread"
    );
    // A blocking receive without MSG_WAITFORONE may wait after its first message: it is
    // not tried without waiting (here it goes back to its caller, who runs it).
    // SAFETY: as above.
    let (sent_again, got_one) = unsafe {
        let sent_again = sub.call(
            nr(libc::SYS_sendmmsg),
            [
                nb as u64,
                sendv + 2 * std::mem::size_of::<libc::mmsghdr>() as u64,
                1,
                0,
                0,
                0,
            ],
        );
        let got_one = sub.call(nr(libc::SYS_recvmmsg), [bl as u64, recvv, 1, 0, 0, 0]);
        (sent_again, got_one)
    };
    assert_eq!((sent_again, got_one), (1, 1));
    assert_eq!(&inb[0][..4], b"3...");
    assert_eq!(
        sent_away(&rt),
        before + 1,
        "the blocking receive left the service thread"
    );
    let s = rt.stats();
    assert_eq!(s.syscalls[libc::SYS_recvmmsg as usize].delegated, 2);
    drop(sub);
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(nb);
        libc::close(bl);
    }
}

/// A read from an empty O_NONBLOCK pipe answers EAGAIN from the service thread: the call
/// never waits, so its caller need not repeat it.
#[test]
fn nonblocking_descriptor_eagain_finishes_on_the_service_thread() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder().blocking(Blocking::Caller)) else {
        return;
    };
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    assert_eq!(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
        0
    );
    let before = sent_away(&rt);
    let mut sub = rt.submitter().expect("a page");
    let mut buf = [0u8; 8];
    let ret = read(&mut sub, fds[0], &mut buf);
    assert_eq!(ret, -(libc::EAGAIN as i64));
    assert_eq!(
        sent_away(&rt),
        before,
        "the EAGAIN was the service thread's answer"
    );
    drop(sub);
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}

/// A pipe write larger than the pipe: the service thread's non-blocking attempt moves
/// what fits, and whoever finishes the call (a worker, or the caller itself) writes only
/// the rest. The reader must get every byte exactly once, in order, and the writer the
/// whole count, as from one blocking write.
fn large_pipe_write(blocking: Blocking) {
    let Some(rt) = service_runtime(Runtime::builder().blocking(blocking)) else {
        return;
    };
    const LEN: usize = 1 << 20;
    let data: Arc<Vec<u8>> = Arc::new((0..LEN as u64 / 8).flat_map(record).collect());
    let (r, w) = pipe();
    let before = sent_away(&rt);
    let sent = Arc::clone(&data);
    let writer = spawn_submitter(rt.shared(), "writer", move |sub| {
        let args = [w.as_raw_fd() as u64, sent.as_ptr() as u64, LEN as u64, 0, 0, 0];
        // SAFETY: write reads LEN bytes of `sent`, which outlives the call.
        let n = unsafe { sub.call(nr(libc::SYS_write), args) };
        drop(w);
        n
    });
    // Read only once the attempt filled the pipe and the rest was sent away.
    wait_until("the rest of the write to be sent away", || {
        sent_away(&rt) > before
    });
    let mut got = Vec::with_capacity(LEN);
    let mut reader = File::from(r);
    std::io::Read::read_to_end(&mut reader, &mut got).expect("read the pipe");
    assert_eq!(join(writer, "the write to return"), LEN as i64);
    assert_eq!(got.len(), LEN, "bytes through the pipe");
    assert!(got == *data, "the bytes arrive once each, in order");
}

#[test]
fn pipe_write_larger_than_the_pipe_arrives_whole_via_a_worker() {
    let _serial = serial();
    large_pipe_write(Blocking::Workers);
}

#[test]
fn pipe_write_larger_than_the_pipe_arrives_whole_via_its_caller() {
    let _serial = serial();
    large_pipe_write(Blocking::Caller);
}

#[test]
fn blocked_accept_does_not_hold_up_other_threads() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    let addr = listener.local_addr().expect("the bound address");
    let release = Release::new(move || {
        let mut peer = TcpStream::connect(addr).expect("connect");
        peer.write_all(b"ping").expect("send");
    });
    let (fd, n, buf) = while_blocked(
        &rt,
        move |sub| {
            // SAFETY: accept with null address pointers writes no user memory.
            let fd = unsafe { sub.call(nr(libc::SYS_accept), [listener.as_raw_fd() as u64, 0, 0, 0, 0, 0]) };
            let mut buf = [0u8; 4];
            let n = if fd >= 0 {
                read(sub, fd as RawFd, &mut buf)
            } else {
                0
            };
            (fd, n, buf)
        },
        release,
    );
    assert!(fd >= 0, "accept: {fd}");
    assert_eq!((n, &buf), (4, b"ping"));
    // The accepted socket belongs to this test now.
    // SAFETY: `fd` was just returned by accept and nothing else owns it.
    drop(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
}

#[test]
fn blocked_futex_wait_does_not_hold_up_other_threads() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    let word = Arc::new(AtomicU32::new(0));
    let waker_word = Arc::clone(&word);
    let shared = Arc::clone(rt.shared());
    let release = Release::new(move || {
        // Wake through a submitter of this thread (FUTEX_WAKE is delegated), until the
        // wake finds the waiter: that proves it was asleep on the word.
        let mut sub = Submitter::new(shared).expect("a syscall page");
        let addr = Arc::as_ptr(&waker_word) as u64;
        let wake = (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as u64;
        wait_until("FUTEX_WAKE to find the waiter", || {
            // SAFETY: FUTEX_WAKE does not access the word's memory.
            let woken = unsafe { sub.call(nr(libc::SYS_futex), [addr, wake, 1, 0, 0, 0]) };
            assert!(woken >= 0, "FUTEX_WAKE: {woken}");
            woken == 1
        });
    });
    let ret = while_blocked(
        &rt,
        move |sub| {
            let addr = Arc::as_ptr(&word) as u64;
            let wait = (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as u64;
            // SAFETY: FUTEX_WAIT reads the word, which `word` keeps alive; no timeout.
            unsafe { sub.call(nr(libc::SYS_futex), [addr, wait, 0, 0, 0, 0]) }
        },
        release,
    );
    assert_eq!(ret, 0, "FUTEX_WAIT returns 0 when woken");
}

#[test]
fn nanosleep_does_not_hold_up_other_threads() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    let shared = rt.shared();
    let before = sent_away(&rt);
    let returned = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&returned);
    let sleeper = spawn_submitter(shared, "sleeper", move |sub| {
        let ts = libc::timespec {
            tv_sec: 2,
            tv_nsec: 0,
        };
        // SAFETY: nanosleep reads `ts`, which outlives the call; no remainder pointer.
        let ret = unsafe {
            sub.call(
                nr(libc::SYS_nanosleep),
                [&ts as *const libc::timespec as u64, 0, 0, 0, 0, 0],
            )
        };
        flag.store(true, SeqCst);
        ret
    });
    wait_until("nanosleep to be handed to a worker", || sent_away(&rt) > before);
    let file = records_file(64);
    let asleep = Arc::clone(&returned);
    let busy = spawn_submitter(shared, "busy", move |sub| {
        busy_calls(sub, &file, 64, 5_000, || asleep.load(SeqCst))
    });
    let made = join(busy, "calls of another thread during the sleep");
    // If the sleep held up the service thread, hardly any call would complete while it
    // sleeps; a thousand in two seconds is far below what an unblocked runtime does.
    assert!(
        made >= 1_000,
        "only {made} calls completed during a 2 s delegated nanosleep"
    );
    assert_eq!(join(sleeper, "nanosleep to return"), 0);
}

fn openat_args(path: &std::ffi::CStr, flags: libc::c_int) -> [u64; 6] {
    let flags = (flags | libc::O_CLOEXEC) as u64;
    [libc::AT_FDCWD as u64, path.as_ptr() as u64, flags, 0, 0, 0]
}

/// A FIFO's read end opened through the runtime waits on the service thread for a writer;
/// then `open_writer` opens the write end through its own submitter, on another thread,
/// posted behind the read end's open. Checks that both ends open and that `counted` (a
/// statistic) grew: the writer's call was taken from behind the stuck one.
fn open_both_ends_of_a_fifo(
    builder: Builder,
    open_writer: fn(&mut Submitter, &std::ffi::CStr) -> i64,
    counted: fn(&Stats) -> u64,
) {
    let _serial = serial();
    let Some(rt) = service_runtime(builder) else {
        return;
    };
    let shared = rt.shared();
    let dir = tempfile::tempdir().expect("a directory");
    let fifo = std::ffi::CString::new(dir.path().join("fifo").to_str().expect("utf-8")).expect("no NUL");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // If the test fails half-way, a writer lets the service thread out of the open, so
    // that the runtime's drop does not wait for ever.
    let path = fifo.clone();
    let _release = Release::new(move || {
        // SAFETY: open and close of a descriptor of our own.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::close(fd);
            }
        }
    });
    let (index_tx, index_rx) = mpsc::channel();
    let path = fifo.clone();
    let reader = spawn_submitter(shared, "reader", move |sub| {
        index_tx.send(sub.page_index()).expect("the test waits");
        // SAFETY: openat reads a path that outlives the call.
        unsafe { sub.call(nr(libc::SYS_openat), openat_args(&path, libc::O_RDONLY)) }
    });
    let page = index_rx.recv_timeout(TIMEOUT).expect("the reader's page");
    // The open is claimed: the service thread runs it and waits in it for a writer.
    wait_until("the reader's open to be claimed", || {
        shared
            .page(page)
            .is_some_and(|p| p.entry(0).status() & STATE_MASK == flexsc_shim::entry::BUSY)
    });
    let before = counted(&rt.stats());
    let path = fifo.clone();
    let writer = spawn_submitter(shared, "writer", move |sub| open_writer(sub, &path));
    let w = join(writer, "the writer's open (posted behind the reader's)");
    assert!(w >= 0, "the write end opened: {w}");
    let r = join(reader, "the reader's open");
    assert!(r >= 0, "the read end opened: {r}");
    assert!(
        counted(&rt.stats()) > before,
        "the writer's open was taken from behind the reader's\n{}",
        rt.stats().table()
    );
    // SAFETY: the two descriptors this test opened.
    unsafe {
        libc::close(w as i32);
        libc::close(r as i32);
    }
}

/// A call that waits on the service thread where nobody predicted it (a FIFO's open waits
/// for the other end) does not hold up the calls posted behind it: their owners take
/// them back after `TAKE_BACK_AFTER` and run them. Here the call behind it is the open of
/// the FIFO's other end, so without that the process deadlocks, where natively it does
/// not. The relief thread waits 20 s here instead of 50 ms: on a loaded machine the
/// writer's post can come after the stuck pass is 50 ms old, and the relief thread would
/// hand it on first (the next test), so the take-back would go untested.
#[test]
fn a_service_thread_stuck_in_an_open_does_not_hold_up_the_calls_behind_it() {
    open_both_ends_of_a_fifo(
        Runtime::builder().relief_after(Duration::from_secs(20)),
        |sub, path| {
            // SAFETY: openat reads a path that outlives the call.
            unsafe { sub.call(nr(libc::SYS_openat), openat_args(path, libc::O_WRONLY)) }
        },
        |s| s.taken_back,
    );
}

/// A call posted behind a stuck pass whose owner does not sleep on it (an asynchronous
/// task polls, an M-on-N kernel thread looks at its inbox): the relief thread hands it to
/// a blocking worker once the pass has lasted `relief::RELIEVE_AFTER`.
#[test]
fn the_relief_thread_hands_on_calls_behind_a_stuck_pass() {
    open_both_ends_of_a_fifo(
        Runtime::builder(),
        |sub, path| {
            let args = openat_args(path, libc::O_WRONLY);
            // SAFETY: openat reads a path that outlives the call (polled to the end here).
            let Push::Posted(ticket) = (unsafe { sub.push(nr(libc::SYS_openat), args) }) else {
                panic!("openat is posted while the runtime serves");
            };
            sub.submit();
            // Polls, never sleeps on the entry: nothing here takes the call back.
            loop {
                if let Some(ret) = sub.poll(&ticket) {
                    return ret;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        },
        |s| s.relieved,
    );
}

// ---------------------------------------------------------------------------------------
// 2. The worker bound: a blocking call beyond it runs on its caller
// ---------------------------------------------------------------------------------------

#[test]
fn blocking_calls_beyond_the_worker_bound_run_on_their_callers() {
    let _serial = serial();
    // The direct backend: on the others, pipe reads are parked in io_uring, not on workers.
    let Some(rt) = service_runtime(Runtime::builder().backend(Backend::Direct).workers(2)) else {
        return;
    };
    let shared = rt.shared();
    let returned = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for i in 0..3 {
        let (r, w) = pipe();
        writers.push(File::from(w));
        let returned = Arc::clone(&returned);
        readers.push(spawn_submitter(shared, &format!("reader-{i}"), move |sub| {
            let mut buf = [0u8; 32];
            let n = read(sub, r.as_raw_fd(), &mut buf);
            returned.fetch_add(1, SeqCst);
            (n, buf)
        }));
    }
    let mut release = Release::new(move || {
        for (i, mut w) in writers.into_iter().enumerate() {
            w.write_all(format!("pipe {i}").as_bytes()).expect("write a pipe");
        }
    });
    // Two reads occupy both workers; the third is declined and blocks on its caller.
    wait_until("two hand-offs and one decline", || {
        let s = rt.stats();
        s.handoffs >= 2 && s.declined >= 1
    });
    let s = rt.stats();
    assert_eq!(
        s.handoffs + s.declined,
        3,
        "each read is handed off or declined once"
    );
    assert_eq!(returned.load(SeqCst), 0, "a read returned before any write");
    release.now();
    for (i, reader) in readers.into_iter().enumerate() {
        let (n, buf) = join(reader, "every read to return after the writes");
        let want = format!("pipe {i}");
        assert_eq!(n, want.len() as i64, "read {i}");
        assert_eq!(&buf[..want.len()], want.as_bytes(), "read {i}");
    }
    let s = rt.stats();
    assert!(s.declined >= 1);
    let read_stats = s.syscalls[libc::SYS_read as usize];
    assert_eq!(read_stats.calls, 3);
    assert_eq!(
        read_stats.direct, s.declined,
        "a declined read runs on its caller"
    );
    assert_eq!(read_stats.delegated, s.handoffs);
}

// ---------------------------------------------------------------------------------------
// 3. Back-pressure
// ---------------------------------------------------------------------------------------

#[test]
fn call_batch_larger_than_a_page() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    let mut sub = rt.submitter().expect("a syscall page");
    let file = tempfile::tempfile().expect("a temporary file");
    let fd = file.as_raw_fd();
    const N: usize = 1_000;
    // A permutation of 0..N (7919 is prime, so coprime with N): distinct offsets, not in
    // the order of the calls.
    let place = |i: usize| ((i * 7919) % N) as u64;
    let records: Vec<[u8; 8]> = (0..N as u64).map(record).collect();

    let writes: Vec<Call> = (0..N)
        .map(|i| pwrite_call(fd, &records[i], 8 * place(i)))
        .collect();
    let mut results = vec![i64::MIN; N];
    // SAFETY: every call reads 8 bytes of `records`, which outlives the batch.
    unsafe { sub.call_batch(&writes, &mut results) };
    for (i, &r) in results.iter().enumerate() {
        assert_eq!(r, 8, "pwrite64 #{i}");
    }
    let mut content = vec![0u8; 8 * N];
    file.read_exact_at(&mut content, 0).expect("read the file");
    assert_eq!(file.metadata().unwrap().len(), 8 * N as u64);
    for (i, rec) in records.iter().enumerate() {
        let at = 8 * place(i) as usize;
        assert_eq!(&content[at..at + 8], rec, "record {i} at offset {at}");
    }

    let mut bufs = vec![[0u8; 8]; N];
    let base = bufs.as_mut_ptr() as u64;
    let reads: Vec<Call> = (0..N)
        .map(|i| {
            Call::new(
                libc::SYS_pread64,
                [fd as u64, base + 8 * i as u64, 8, 8 * place(i), 0, 0],
            )
        })
        .collect();
    let mut results = vec![i64::MIN; N];
    // SAFETY: call i writes 8 bytes into `bufs[i]`; the buffers are disjoint and `bufs`
    // is neither moved nor read until the batch returns.
    unsafe { sub.call_batch(&reads, &mut results) };
    for i in 0..N {
        assert_eq!(results[i], 8, "pread64 #{i}");
        assert_eq!(bufs[i], records[i], "pread64 #{i}");
    }

    // Results land at the index of their call: a mix whose results tell the calls apart.
    let mut one = [0u8; 8];
    let one_ptr = one.as_mut_ptr() as u64;
    let mixed: Vec<Call> = (0..N)
        .map(|i| match i % 3 {
            0 => Call::new(libc::SYS_getppid, [0; 6]),
            1 => Call::new(
                libc::SYS_pread64,
                [fd as u64, one_ptr, 8 - (i % 8) as u64, 0, 0, 0],
            ),
            _ => Call::new(libc::SYS_pread64, [u64::MAX, one_ptr, 8, 0, 0, 0]),
        })
        .collect();
    let mut results = vec![i64::MIN; N];
    // SAFETY: the reads write at most 8 bytes into `one`, which outlives the batch and is
    // not read until it returns (concurrent writes into it are fine for the test).
    unsafe { sub.call_batch(&mixed, &mut results) };
    for (i, &r) in results.iter().enumerate() {
        let want = match i % 3 {
            0 => ppid(),
            1 => 8 - (i % 8) as i64,
            _ => EBADF,
        };
        assert_eq!(r, want, "mixed call #{i}");
    }
}

/// A batch's caller waits on its highest entry first and reaps the rest after: whichever
/// call finishes last, with or without the caller's help, every result lands at its index.
#[test]
fn a_batch_whose_first_or_last_call_waits_returns_every_result() {
    let _serial = serial();
    for helps in [false, true] {
        let Some(rt) = service_runtime(Runtime::builder().caller_helps(helps)) else {
            return;
        };
        let mut sub = rt.submitter().expect("a syscall page");
        for read_at in [0, 15] {
            let (r, w) = pipe();
            let mut byte = [0u8; 1];
            let calls: Vec<Call> = (0..16)
                .map(|i| {
                    if i == read_at {
                        Call::new(
                            libc::SYS_read,
                            [r.as_raw_fd() as u64, byte.as_mut_ptr() as u64, 1, 0, 0, 0],
                        )
                    } else {
                        Call::new(libc::SYS_getppid, [0; 6])
                    }
                })
                .collect();
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                let mut w = File::from(w);
                w.write_all(b"!").expect("write the pipe");
            });
            let mut results = vec![i64::MIN; calls.len()];
            // SAFETY: the read writes one byte into `byte`, which outlives the batch.
            unsafe { sub.call_batch(&calls, &mut results) };
            writer.join().expect("the writer");
            for (i, &got) in results.iter().enumerate() {
                let want = if i == read_at { 1 } else { ppid() };
                assert_eq!(got, want, "call #{i} (read at #{read_at}, caller helps: {helps})");
            }
            assert_eq!(&byte, b"!");
        }
    }
}

#[test]
fn push_reports_full_after_a_page_of_unreaped_calls() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    let mut sub = rt.submitter().expect("a syscall page");
    let getppid_call = Call::new(libc::SYS_getppid, [0; 6]);
    for round in 0..2 {
        let tickets: Vec<Ticket> = (0..ENTRIES_PER_PAGE)
            .map(|_| push_posted(&mut sub, getppid_call))
            .collect();
        assert_eq!(tickets.len(), 64);
        // SAFETY: getppid has no arguments.
        let full = unsafe { sub.push(getppid_call.nr, getppid_call.args) };
        assert_eq!(full, Push::Full, "round {round}: the 65th push");
        sub.submit();
        for (i, t) in tickets.into_iter().enumerate() {
            assert_eq!(sub.wait(t), ppid(), "round {round}: ticket {i}");
        }
    }
    // After reaping, pushing works again, and polling reaps as well as waiting does.
    let t = push_posted(&mut sub, getppid_call);
    sub.submit();
    let mut got = None;
    wait_until("poll to see the result", || {
        got = sub.poll(&t);
        got.is_some()
    });
    assert_eq!(got, Some(ppid()));
    let s = rt.stats().syscalls[libc::SYS_getppid as usize];
    assert_eq!(s.calls, 129);
    assert_eq!(s.delegated, 129, "no push ran on the caller");
}

// ---------------------------------------------------------------------------------------
// 4. Many threads: nothing lost, nothing duplicated
// ---------------------------------------------------------------------------------------

#[test]
fn many_threads_every_result_counted_once() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    const THREADS: u64 = 32;
    const CALLS: u64 = 5_000;
    const PER_THREAD: u64 = 64;
    let file = Arc::new(records_file(THREADS * PER_THREAD));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let file = Arc::clone(&file);
            spawn_submitter(rt.shared(), &format!("many-{t}"), move |sub| {
                let expected_ppid = ppid();
                for i in 0..CALLS {
                    if i % 2 == 0 {
                        assert_eq!(getppid(sub), expected_ppid, "thread {t} call {i}");
                    } else {
                        let r = t * PER_THREAD + (i / 2) % PER_THREAD;
                        let mut buf = [0u8; 8];
                        let n = pread(sub, file.as_raw_fd(), &mut buf, 8 * r);
                        assert_eq!(n, 8, "thread {t} call {i}");
                        assert_eq!(buf, record(r), "thread {t} call {i}: record {r}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        join(t, "a thread's 5,000 calls");
    }
    // Shutting down joins the service threads, so their batch counters are final.
    let stats: Stats = rt.shutdown();
    let total = THREADS * CALLS;
    let t = stats.totals();
    assert_eq!(t.calls, total, "calls made through submitters");
    assert_eq!(t.delegated + t.direct, total);
    assert_eq!(t.errors, 0);
    assert_eq!(stats.syscalls[libc::SYS_getppid as usize].calls, total / 2);
    assert_eq!(stats.syscalls[libc::SYS_pread64 as usize].calls, total / 2);
    assert!(stats.batches > 0);
    // Every call was posted (none of these runs on its caller). Each was then either
    // claimed by exactly one pass, and completed by the service thread or a worker
    // (counted delegated when reaped) or declined because every worker was busy (run and
    // counted direct by its owner); or taken back by its owner, unclaimed after
    // `TAKE_BACK_AFTER` (32 threads on 2 cores: the service thread can be off its core
    // that long), and run and counted direct. No shutdown ran while these threads posted.
    assert_eq!(
        t.direct,
        stats.declined + stats.taken_back,
        "only declined and taken-back calls ran on their callers"
    );
    assert_eq!(
        stats.batched_entries,
        t.delegated + stats.declined,
        "every claimed call was in exactly one batch"
    );
    assert_eq!(stats.batched_entries + stats.taken_back, total);
    assert_eq!(
        t.batched + stats.taken_back,
        total,
        "the per-syscall batch counters saw every claimed call once"
    );
    assert_eq!(stats.batch_sizes.iter().sum::<u64>(), stats.batches);
}

// ---------------------------------------------------------------------------------------
// 5. Unknown syscall numbers
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_syscall_numbers_answer_enosys() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    let mut sub = rt.submitter().expect("a syscall page");
    for n in [470u64, 1000, u64::MAX, 0xffff_ffff] {
        // SAFETY: no such system call exists; the kernel answers ENOSYS.
        assert_eq!(unsafe { sub.call(n, [1, 2, 3, 4, 5, 6]) }, ENOSYS, "nr {n}");
        // SAFETY: as above.
        assert_eq!(unsafe { sub.push(n, [0; 6]) }, Push::Ran(ENOSYS), "nr {n}");
    }
    // The kernel reads the number as an `int`: high bits are dropped, so (1 << 32) | 39
    // is getppid. Such a number is unknown to the table, so it runs on the caller, which
    // gives exactly what the instruction gives (it is never truncated into a page).
    let aliased = (1u64 << 32) | nr(libc::SYS_getppid);
    // SAFETY: getppid, whatever the high bits.
    let direct = unsafe { flexsc_shim::sys::syscall6(aliased, [0; 6]) };
    // SAFETY: as above.
    assert_eq!(unsafe { sub.call(aliased, [0; 6]) }, direct);
    assert_eq!(direct, ppid());
    let row = rt.stats().syscalls[511];
    assert_eq!(row.delegated, 0, "numbers past the table never reach a page");
    // The same numbers reaching a service thread through a page (only possible by
    // writing the page outside the API) also get ENOSYS.
    let mut hand = HandDriven::new();
    let mut sub = hand.submitter();
    let page = sub.page_index();
    let mut posted = Vec::new();
    for n in [470u32, 1000, u32::MAX] {
        let t = push_posted(&mut sub, Call::new(libc::SYS_getppid, [0; 6]));
        let slot = slot_of(&hand.shared, page, &posted);
        scribble_submitted(&hand.shared, page, slot, n, [0; 6]);
        posted.push((slot, t));
    }
    sub.submit();
    assert_eq!(hand.pass(), 3);
    for (slot, t) in posted {
        assert_eq!(sub.poll(&t), Some(ENOSYS), "slot {slot}");
    }
    ManuallyDrop::into_inner(sub);
    hand.finish();
}

// ---------------------------------------------------------------------------------------
// 6. Corrupted entries
// ---------------------------------------------------------------------------------------

/// The slot `push` used last: the lowest slot not in `taken` whose entry is SUBMITTED.
fn slot_of(shared: &Shared, page: usize, taken: &[(usize, Ticket)]) -> usize {
    let page = shared.page(page).expect("the page");
    (0..ENTRIES_PER_PAGE)
        .find(|s| !taken.iter().any(|(t, _)| t == s) && page.entry(*s).status() == SUBMITTED)
        .expect("a posted entry")
}

/// The raw words of an entry that looks posted: SUBMITTED, number `nr`, `args`.
fn submitted_words(nr: u32, args: [u64; 6]) -> [u64; 8] {
    let head = (u64::from(nr) << 32) | u64::from(SUBMITTED);
    [head, args[0], args[1], args[2], args[3], args[4], args[5], 0]
}

fn scribble_submitted(shared: &Shared, page: usize, slot: usize, nr: u32, args: [u64; 6]) {
    let entry = shared.page(page).expect("the page").entry(slot);
    entry.scribble(submitted_words(nr, args));
}

/// One corruption of a posted entry.
struct Case {
    what: &'static str,
    /// What `Entry::scribble` writes.
    words: [u64; 8],
    /// What the owner must reap.
    want: i64,
}

#[test]
fn corrupted_posted_entries_are_answered_and_never_run() {
    let _serial = serial();
    let mut hand = HandDriven::new();
    let mut sub = hand.submitter();
    let page = sub.page_index();
    let nobody = u64::from(65534u32);
    let state = |what, status: u64| Case {
        what,
        words: [0xdead_beef_0000_0000 | status, 1, 2, 3, 4, 5, 6, 7],
        want: EINVAL,
    };
    let call = |what, n: libc::c_long, args: [u64; 6]| Case {
        what,
        words: submitted_words(n as u32, args),
        want: ENOSYS,
    };
    // What is written over a posted getppid, and the answer its owner must get: a state
    // that is no state is answered with EINVAL (`Entry::claim`); a posted number that
    // must run on its caller or that Linux does not define gets ENOSYS and never runs
    // (`execute::run`). Had they run: exit would end the pass's thread, exit_group the
    // test process; gettid would answer a tid, setuid 0 or EPERM.
    let cases = [
        state("unknown state 0x77", 0x77),
        state("state 0xff", 0xff),
        call("out-of-range nr 9999", 9999, [0; 6]),
        call("SYS_exit", libc::SYS_exit, [0; 6]),
        call("SYS_exit_group", libc::SYS_exit_group, [3, 0, 0, 0, 0, 0]),
        call("SYS_gettid", libc::SYS_gettid, [0; 6]),
        call("SYS_setuid", libc::SYS_setuid, [nobody, 0, 0, 0, 0, 0]),
        call(
            "SYS_rt_sigprocmask",
            libc::SYS_rt_sigprocmask,
            [libc::SIG_BLOCK as u64, 0, 0, 8, 0, 0],
        ),
        call(
            "FUTEX_LOCK_PI",
            libc::SYS_futex,
            [0x1000, libc::FUTEX_LOCK_PI as u64, 0, 0, 0, 0],
        ),
    ];
    let mut posted: Vec<(usize, Ticket)> = Vec::new();
    for case in &cases {
        let t = push_posted(&mut sub, Call::new(libc::SYS_getppid, [0; 6]));
        let slot = slot_of(&hand.shared, page, &posted);
        hand.shared.page(page).unwrap().entry(slot).scribble(case.words);
        eprintln!("slot {slot}: {}", case.what);
        posted.push((slot, t));
    }
    let claimable = cases.iter().filter(|c| c.want == ENOSYS).count();
    // And one untouched call in the same page, which must run normally.
    let good = push_posted(&mut sub, Call::new(libc::SYS_getppid, [0; 6]));
    sub.submit();

    // Corrupt states are answered without being claimed; the rest are claimed once.
    assert_eq!(hand.pass(), claimable + 1);
    for ((slot, t), case) in posted.iter().zip(&cases) {
        assert_eq!(sub.poll(t), Some(case.want), "slot {slot}: {}", case.what);
    }
    assert_eq!(sub.poll(&good), Some(ppid()));

    // The same service thread, now running for real, serves other threads.
    let svc = hand.start();
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let file = records_file(16);
            spawn_submitter(&hand.shared, &format!("after-{i}"), move |sub| {
                busy_calls(sub, &file, 16, 1_000, || false)
            })
        })
        .collect();
    for w in workers {
        assert_eq!(join(w, "calls after the corrupted pass"), 2_000);
    }
    assert_eq!(getppid(&mut sub), ppid(), "the scribbled page still works");
    ManuallyDrop::into_inner(sub);
    hand.shared.doorbell.stop();
    join(svc, "the service thread to stop");
    hand.finish();
}

#[test]
fn scribbled_entries_without_a_pending_bit_are_left_alone() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    let mut sub = rt.submitter().expect("a syscall page");
    let page_index = sub.page_index();
    assert_eq!(getppid(&mut sub), ppid());
    let page = rt.shared().page(page_index).expect("the page");
    // Entries 1.. are FREE for the submitter (a synchronous `call` always uses the
    // lowest free entry, 0). Write garbage into some of them, including calls that would
    // end the service thread or the process if they ran.
    let garbage: [(usize, u64); 5] = [
        (1, 0x77),
        (2, (u64::from(libc::SYS_exit as u32) << 32) | u64::from(SUBMITTED)),
        (
            3,
            (u64::from(libc::SYS_exit_group as u32) << 32) | u64::from(SUBMITTED),
        ),
        (4, (9999u64 << 32) | u64::from(SUBMITTED)),
        (
            5,
            (u64::from(libc::SYS_getppid as u32) << 32) | u64::from(SUBMITTED),
        ),
    ];
    for (slot, word) in garbage {
        page.entry(slot).scribble([word, 0, 0, 0, 0, 0, 0, 0x5a5a]);
    }
    // Real calls sweep this page many times; another thread's page too.
    let file = records_file(16);
    let other = spawn_submitter(rt.shared(), "other", move |sub| {
        busy_calls(sub, &file, 16, 1_000, || false)
    });
    let file = records_file(16);
    assert_eq!(busy_calls(&mut sub, &file, 16, 1_000, || false), 2_000);
    assert_eq!(join(other, "the other thread's calls"), 2_000);
    // The scribbled entries were never looked at: no pending bit names them.
    for (slot, word) in garbage {
        assert_eq!(page.entry(slot).status(), word as u32, "entry {slot} was touched");
    }
    // Clean up, so the page can be reused.
    for (slot, _) in garbage {
        page.entry(slot).scribble([0; 8]);
    }
    assert_eq!(page.entry(1).status(), FREE);
}

// ---------------------------------------------------------------------------------------
// 7. Shutdown drains
// ---------------------------------------------------------------------------------------

#[test]
fn shutdown_runs_every_posted_call_and_later_calls_run_directly() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    const THREADS: u64 = 4;
    const POSTED: u64 = 48;
    const AFTER: u64 = 16;
    const PER_THREAD: u64 = POSTED + AFTER;
    // Large enough that the service thread is likely still writing when shutdown starts.
    const SIZE: usize = 64 * 1024;
    let file = Arc::new(tempfile::tempfile().expect("a temporary file"));
    let shared = Arc::clone(rt.shared());
    let (posted_tx, posted_rx) = mpsc::channel::<()>();
    let mut resume = Vec::new();
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        resume.push(go_tx);
        let posted_tx = posted_tx.clone();
        let file = Arc::clone(&file);
        threads.push(spawn_submitter(&shared, &format!("poster-{t}"), move |sub| {
            let fd = file.as_raw_fd();
            let blocks: Vec<Vec<u8>> = (0..PER_THREAD).map(|i| block(t * PER_THREAD + i, SIZE)).collect();
            let at = |i: u64| (t * PER_THREAD + i) * SIZE as u64;
            let tickets: Vec<Ticket> = (0..POSTED)
                .map(|i| push_posted(sub, pwrite_call(fd, &blocks[i as usize], at(i))))
                .collect();
            sub.submit();
            posted_tx.send(()).unwrap();
            go_rx.recv_timeout(TIMEOUT).expect("the runtime to shut down");
            // Shutdown ran every posted call: each result is there at the first look.
            for (i, t) in tickets.iter().enumerate() {
                assert_eq!(
                    sub.poll(t),
                    Some(SIZE as i64),
                    "posted pwrite64 #{i} after shutdown"
                );
            }
            // Calls after shutdown run on their caller.
            for i in POSTED..PER_THREAD {
                let call = pwrite_call(fd, &blocks[i as usize], at(i));
                // SAFETY: the call reads `blocks[i]`, which outlives it.
                let pushed = unsafe { sub.push(call.nr, call.args) };
                assert_eq!(pushed, Push::Ran(SIZE as i64), "pwrite64 #{i} after shutdown");
            }
        }));
    }
    for _ in 0..THREADS {
        posted_rx.recv_timeout(TIMEOUT).expect("every thread to post");
    }
    let stats = rt.shutdown();
    assert_eq!(
        stats.batched_entries,
        THREADS * POSTED,
        "every posted call was taken by a service thread"
    );
    for go in resume {
        go.send(()).unwrap();
    }
    for t in threads {
        join(t, "a poster to reap");
    }
    let mut content = vec![0u8; SIZE * (THREADS * PER_THREAD) as usize];
    file.read_exact_at(&mut content, 0).expect("read the file");
    for i in 0..THREADS * PER_THREAD {
        let at = SIZE * i as usize;
        assert!(content[at..at + SIZE] == block(i, SIZE)[..], "block {i}");
    }
    let (delegated, direct) = page_counts(&shared, libc::SYS_pwrite64);
    assert_eq!(delegated, THREADS * POSTED);
    assert_eq!(direct, THREADS * AFTER);
}

#[test]
fn shutdown_while_threads_post_loses_and_repeats_nothing() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 40;
    const BATCH: u64 = 32;
    const PER_THREAD: u64 = ROUNDS * BATCH;
    // An append-only log: a call that ran twice would write its record twice.
    let log = Arc::new(tempfile::tempfile().expect("a temporary file"));
    let shared = Arc::clone(rt.shared());
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let started_tx = started_tx.clone();
            let log = Arc::clone(&log);
            spawn_submitter(&shared, &format!("racer-{t}"), move |sub| {
                let fd = log.as_raw_fd() as u64;
                let recs: Vec<[u8; 8]> = (0..PER_THREAD).map(|i| record(t * PER_THREAD + i)).collect();
                let mut ran_here = 0;
                for round in 0..ROUNDS {
                    let mut tickets = Vec::new();
                    for i in round * BATCH..(round + 1) * BATCH {
                        let buf = recs[i as usize].as_ptr() as u64;
                        // SAFETY: write reads 8 bytes of `recs`, alive until reaped below.
                        match unsafe { sub.push(nr(libc::SYS_write), [fd, buf, 8, 0, 0, 0]) } {
                            Push::Posted(ticket) => tickets.push(ticket),
                            Push::Ran(ret) => {
                                assert_eq!(ret, 8);
                                ran_here += 1;
                            }
                            Push::Full => panic!("a page holds a whole batch"),
                        }
                    }
                    sub.submit();
                    for ticket in tickets {
                        assert_eq!(sub.wait(ticket), 8);
                    }
                    if round == 0 {
                        started_tx.send(()).unwrap();
                    }
                }
                ran_here
            })
        })
        .collect();
    for _ in 0..THREADS {
        started_rx.recv_timeout(TIMEOUT).expect("every thread to start");
    }
    let stats = rt.shutdown();
    let ran_here: u64 = threads.into_iter().map(|t| join(t, "a racer to finish")).sum();
    let mut content = vec![0u8; log.metadata().expect("stat the log").len() as usize];
    log.read_exact_at(&mut content, 0).expect("read the log");
    let total = THREADS * PER_THREAD;
    assert_eq!(content.len() as u64, 8 * total, "every write ran exactly once");
    let mut seen: Vec<u64> = content
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    seen.sort_unstable();
    let mut want: Vec<u64> = (0..total).map(|i| u64::from_le_bytes(record(i))).collect();
    want.sort_unstable();
    assert!(seen == want, "the log holds each record once");
    let (delegated, direct) = page_counts(&shared, libc::SYS_write);
    assert_eq!(delegated + direct, total);
    // Where each call ran: a call a service thread took is delegated, exactly once (it
    // was in one batch); a call pushed after shutdown (`ran_here`) or taken back by its
    // owner at shutdown ran on its caller and is direct.
    assert_eq!(
        delegated,
        stats.batched_entries - stats.declined,
        "delegated calls are the ones service threads took"
    );
    assert!(
        direct >= ran_here,
        "{direct} direct < {ran_here} calls pushed after shutdown"
    );
}

/// The service loop's drain, driven by hand: calls posted before `stop` all run before
/// the service thread returns.
#[test]
fn service_thread_drains_posted_calls_before_it_stops() {
    let _serial = serial();
    let mut hand = HandDriven::new();
    let mut sub = hand.submitter();
    let file = tempfile::tempfile().expect("a temporary file");
    let recs: Vec<[u8; 8]> = (0..40).map(record).collect();
    let tickets: Vec<Ticket> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| push_posted(&mut sub, pwrite_call(file.as_raw_fd(), r, 8 * i as u64)))
        .collect();
    sub.submit();
    hand.shared.doorbell.stop();
    let svc = hand.start();
    join(svc, "the service thread to drain and stop");
    for (i, t) in tickets.iter().enumerate() {
        assert_eq!(
            sub.poll(t),
            Some(8),
            "call {i} ran before the service thread stopped"
        );
    }
    let mut content = vec![0u8; 8 * 40];
    file.read_exact_at(&mut content, 0).expect("read");
    let want: Vec<u8> = recs.concat();
    assert!(content == want);
    ManuallyDrop::into_inner(sub);
    hand.finish();
}

/// A call posted just before shutdown that no service thread took is taken back by its
/// owner in `submit` and run there, once.
#[test]
fn a_call_taken_back_at_shutdown_runs_once_on_its_caller() {
    let _serial = serial();
    let mut hand = HandDriven::new();
    let mut sub = hand.submitter();
    let log = tempfile::tempfile().expect("a temporary file");
    let rec = record(7);
    let ticket = {
        let buf = rec.as_ptr() as u64;
        let call = Call::new(libc::SYS_write, [log.as_raw_fd() as u64, buf, 8, 0, 0, 0]);
        push_posted(&mut sub, call)
    };
    // The runtime stops between the push and the submit.
    hand.shared.doorbell.stop();
    sub.submit();
    assert_eq!(sub.poll(&ticket), Some(8), "submit ran the taken-back call");
    // The service thread's last look finds the stale pending bit and does nothing.
    let svc = hand.start();
    join(svc, "the service thread to stop");
    assert_eq!(log.metadata().unwrap().len(), 8, "the write ran exactly once");
    assert_eq!(hand.shared.batches().entries.load(SeqCst), 0, "no pass took it");
    ManuallyDrop::into_inner(sub);
    hand.finish();
}

/// Regression (found failing, since fixed): the per-syscall counters promise `delegated` = "ran on a service
/// thread or worker", `direct` = "ran on the calling thread", and `calls` = every call.
/// - A call taken back at shutdown (`Submitter::submit` reclaims it, runs it on the owner
///   and completes it with `complete_by_owner`) is reaped as `Outcome::Done` and counted
///   as *delegated*.
/// - A call reaped by `Submitter::drop` (posted, never waited for) is not counted at all.
#[test]
fn calls_are_counted_where_they_ran() {
    let _serial = serial();
    let counts = |shared: &Shared, page: usize, nr: libc::c_long| {
        let c = shared.page(page).unwrap().counters(nr as u64);
        (
            c.calls.load(SeqCst),
            c.delegated.load(SeqCst),
            c.direct.load(SeqCst),
        )
    };

    // Taken back at shutdown and run on the caller.
    let hand = HandDriven::new();
    let mut sub = hand.submitter();
    let page = sub.page_index();
    let ticket = push_posted(&mut sub, Call::new(libc::SYS_getppid, [0; 6]));
    hand.shared.doorbell.stop();
    sub.submit();
    assert_eq!(sub.wait(ticket), ppid());
    let reclaimed = counts(&hand.shared, page, libc::SYS_getppid);
    ManuallyDrop::into_inner(sub);
    hand.finish();

    // Reaped by the submitter's drop.
    let mut hand = HandDriven::new();
    let mut sub = hand.submitter();
    let page = sub.page_index();
    let ticket = push_posted(&mut sub, Call::new(libc::SYS_getppid, [0; 6]));
    sub.submit();
    assert_eq!(hand.pass(), 1);
    let _unreaped = ticket;
    ManuallyDrop::into_inner(sub);
    let dropped = counts(&hand.shared, page, libc::SYS_getppid);
    hand.finish();

    assert_eq!(
        (reclaimed, dropped),
        ((1, 0, 1), (1, 1, 0)),
        "(calls, delegated, direct) of (a call taken back at shutdown and run on its \
         caller, a delegated call reaped by Submitter::drop)"
    );
}

#[test]
fn dropping_the_runtime_waits_for_a_blocked_worker() {
    let _serial = serial();
    // The direct backend, so the read goes to a worker (`parked.rs` tests the same for a
    // call parked in io_uring).
    let Some(rt) = service_runtime(Runtime::builder().backend(Backend::Direct)) else {
        return;
    };
    let shared = Arc::clone(rt.shared());
    let (r, w) = pipe();
    let (index_tx, index_rx) = mpsc::channel();
    let reader = spawn_submitter(&shared, "reader", move |sub| {
        index_tx.send(sub.page_index()).unwrap();
        let mut buf = [0u8; 16];
        let n = read(sub, r.as_raw_fd(), &mut buf);
        (n, buf)
    });
    let page = index_rx.recv_timeout(TIMEOUT).expect("the reader's page");
    wait_until("the read to be handed to a worker", || rt.stats().handoffs >= 1);
    let written = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&written);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, SeqCst);
        File::from(w).write_all(b"late").expect("write the pipe");
    });
    drop(rt);
    assert!(
        written.load(SeqCst),
        "the runtime's drop returned before the blocked read could finish"
    );
    let state = shared.page(page).unwrap().entry(0).status() & STATE_MASK;
    assert!(
        state == DONE || state == FREE,
        "the read's entry is finished (DONE, or FREE if already reaped), not {state}"
    );
    join(writer, "the writer");
    let (n, buf) = join(reader, "the read to return");
    assert_eq!((n, &buf[..4]), (4, &b"late"[..]));
}

// ---------------------------------------------------------------------------------------
// 8. Direct mode
// ---------------------------------------------------------------------------------------

/// A few checked calls of every kind through `sub`: getppid, pread64, pipe write/read.
fn some_calls(sub: &mut Submitter) -> u64 {
    let file = records_file(8);
    let made = busy_calls(sub, &file, 8, 8, || false);
    let (r, w) = pipe();
    let msg = b"direct";
    let args = [
        w.as_raw_fd() as u64,
        msg.as_ptr() as u64,
        msg.len() as u64,
        0,
        0,
        0,
    ];
    // SAFETY: write reads `msg`, which outlives the call.
    assert_eq!(unsafe { sub.call(nr(libc::SYS_write), args) }, 6);
    let mut buf = [0u8; 6];
    assert_eq!(read(sub, r.as_raw_fd(), &mut buf), 6);
    assert_eq!(&buf, msg);
    made + 2
}

#[test]
fn direct_mode_runs_every_call_on_its_caller() {
    let _serial = serial();
    let rt = Runtime::builder().direct().build().expect("build");
    assert!(
        matches!(rt.mode(), Mode::Direct { .. }),
        "direct() gives direct mode: {}",
        rt.mode()
    );
    let mut sub = rt.submitter().expect("a syscall page");
    let made = some_calls(&mut sub);
    let s = rt.stats();
    let t = s.totals();
    assert_eq!((t.calls, t.direct, t.delegated), (made, made, 0));
    assert_eq!((s.batches, s.batched_entries, s.handoffs), (0, 0, 0));
}

#[test]
fn unusable_service_core_means_direct_mode() {
    let _serial = serial();
    let rt = Runtime::builder().cpus([9999]).build().expect("build");
    match rt.mode() {
        Mode::Direct { reason } => assert!(reason.contains("9999"), "reason: {reason}"),
        other => panic!("expected direct mode, got {other}"),
    }
    let mut sub = rt.submitter().expect("a syscall page");
    let made = some_calls(&mut sub);
    let t = rt.stats().totals();
    assert_eq!((t.calls, t.direct, t.delegated), (made, made, 0));
}

#[test]
fn one_usable_core_means_direct_mode() {
    const TEST: &str = "one_usable_core_means_direct_mode";
    if is_child(TEST) {
        // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it; sched_setaffinity
        // reads it and changes only this thread's affinity.
        let ret = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        assert_eq!(ret, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
        assert_eq!(allowed_cpus(), vec![0]);
        for builder in [Runtime::builder(), Runtime::builder().cpus([0])] {
            let rt = builder.build().expect("build");
            match rt.mode() {
                Mode::Direct { reason } => {
                    assert!(reason.contains("only one core"), "reason: {reason}")
                }
                other => panic!("expected direct mode on one core, got {other}"),
            }
            let mut sub = rt.submitter().expect("a syscall page");
            let made = some_calls(&mut sub);
            let t = rt.stats().totals();
            assert_eq!((t.calls, t.direct, t.delegated), (made, made, 0));
        }
        return;
    }
    let _serial = serial();
    if allowed_cpus().len() < 2 || !allowed_cpus().contains(&0) {
        eprintln!(
            "SKIPPED {}: needs two usable cores, core 0 among them",
            std::thread::current().name().unwrap_or("?")
        );
        return;
    }
    let (status, output) = run_child(TEST, &[]);
    assert!(status.success(), "child failed ({status}):\n{output}");
}

// ---------------------------------------------------------------------------------------
// 9. Process exit never loses a posted call
// ---------------------------------------------------------------------------------------

/// Parent side of a test whose child writes into a file: runs `test` in a child with
/// `FLEXSC_TEST_FILE` naming a new temporary file. None (and a message) without two
/// usable cores.
fn run_child_writing(test: &str) -> Option<(ExitStatus, String, tempfile::NamedTempFile)> {
    if allowed_cpus().len() < 2 {
        eprintln!(
            "SKIPPED {}: needs two usable cores to run a service thread",
            std::thread::current().name().unwrap_or("?")
        );
        return None;
    }
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    let (status, output) = run_child(test, &[("FLEXSC_TEST_FILE", file.path().as_os_str())]);
    Some((status, output, file))
}

/// Child side of [`run_child_writing`]: the file, open for writing.
fn file_to_write() -> File {
    let path = std::env::var_os("FLEXSC_TEST_FILE").expect("the file to write");
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open the file")
}

#[test]
fn exit_group_through_a_submitter_waits_for_posted_calls() {
    const TEST: &str = "exit_group_through_a_submitter_waits_for_posted_calls";
    const WRITES: u64 = 64;
    const SIZE: usize = 64 * 1024;
    const EXIT_CODE: u64 = 42;
    let block = |i: u64| vec![(i as u8).wrapping_mul(37).wrapping_add(1); SIZE];
    if is_child(TEST) {
        let file = file_to_write();
        let rt = Runtime::builder().build().expect("build");
        assert!(matches!(rt.mode(), Mode::Service { .. }), "{}", rt.mode());
        let mut sub = rt.submitter().expect("a syscall page");
        let blocks: Vec<Vec<u8>> = (0..WRITES).map(block).collect();
        let tickets: Vec<Ticket> = (0..WRITES)
            .map(|i| {
                let call = pwrite_call(file.as_raw_fd(), &blocks[i as usize], i * SIZE as u64);
                push_posted(&mut sub, call)
            })
            .collect();
        sub.submit();
        // Nothing is reaped, and nothing is dropped: the process ends here.
        std::mem::forget(tickets);
        std::mem::forget(rt);
        // SAFETY: exit_group ends the process; the buffers of the posted calls stay
        // alive until then.
        unsafe { sub.call(nr(libc::SYS_exit_group), [EXIT_CODE, 0, 0, 0, 0, 0]) };
        unreachable!("exit_group returned");
    }
    let _serial = serial();
    let Some((status, output, file)) = run_child_writing(TEST) else {
        return;
    };
    assert_eq!(
        status.code(),
        Some(EXIT_CODE as i32),
        "the child ends through exit_group ({status:?}, signal {:?}):\n{output}",
        status.signal()
    );
    let content = std::fs::read(file.path()).expect("read the file");
    assert_eq!(content.len(), WRITES as usize * SIZE, "every write landed");
    for i in 0..WRITES {
        let at = i as usize * SIZE;
        assert!(
            content[at..at + SIZE] == block(i)[..],
            "block {i} is not what was posted"
        );
    }
}

/// A batch handed over whole (its caller does not help) is made visible before a call of
/// it runs on the caller: an `exit_group` in the batch lets the calls posted before it
/// finish, as one through `Submitter::call` does (above).
#[test]
fn exit_group_in_a_batch_waits_for_the_calls_posted_before_it() {
    exit_group_ends_a_batch(
        "exit_group_in_a_batch_waits_for_the_calls_posted_before_it",
        false,
        43,
    );
}

/// The same with a caller that helps: it posts the first part of the batch and would run
/// the rest from the back, but the `exit_group` there must not run before the writes in
/// front of it (a review found 3 of 7 lost when it did).
#[test]
fn exit_group_at_the_end_of_a_shared_batch_waits_for_every_call_before_it() {
    exit_group_ends_a_batch(
        "exit_group_at_the_end_of_a_shared_batch_waits_for_every_call_before_it",
        true,
        44,
    );
}

/// A call after an `exit_group` in a shared batch never runs: the helping caller would
/// run the last calls first, but not past a call that must run on it (a review found the
/// pwrite after the exit landed).
#[test]
fn a_call_after_exit_group_in_a_shared_batch_never_runs() {
    const TEST: &str = "a_call_after_exit_group_in_a_shared_batch_never_runs";
    const CODE: u64 = 45;
    let content = batch_ending_the_process(TEST, true, CODE, |fd| {
        let after: &[u8; 8] = Box::leak(Box::new(record(1)));
        let mut calls = vec![Call::new(libc::SYS_getppid, [0; 6]); 8];
        calls.push(Call::new(libc::SYS_exit_group, [CODE, 0, 0, 0, 0, 0]));
        calls.push(pwrite_call(fd, after, 0));
        calls
    });
    if let Some(content) = content {
        assert!(content.is_empty(), "the pwrite after exit_group ran: {content:?}");
    }
}

/// A batch of pwrites of 8-byte records, then `exit_group(code)`: every record lands.
fn exit_group_ends_a_batch(test: &str, helps: bool, code: u64) {
    const WRITES: usize = 16;
    let content = batch_ending_the_process(test, helps, code, |fd| {
        let records: &[[u8; 8]] = Box::leak((0..WRITES as u64).map(record).collect());
        let mut calls: Vec<Call> = (0..WRITES)
            .map(|i| pwrite_call(fd, &records[i], 8 * i as u64))
            .collect();
        calls.push(Call::new(libc::SYS_exit_group, [code, 0, 0, 0, 0, 0]));
        calls
    });
    let Some(content) = content else { return };
    assert_eq!(content.len(), 8 * WRITES, "every write landed");
    for i in 0..WRITES {
        assert_eq!(content[8 * i..8 * i + 8], record(i as u64), "record {i}");
    }
}

/// Runs `test` in a child: the batch `calls(fd)` (with `fd` open on a fresh file), which
/// ends the process with `exit_group(code)`, through a runtime whose caller helps or not.
/// Returns the file's content once the child ended with `code`; None (and a message)
/// without two usable cores. The calls' buffers must live until the process ends.
fn batch_ending_the_process(
    test: &str,
    helps: bool,
    code: u64,
    calls: impl FnOnce(RawFd) -> Vec<Call>,
) -> Option<Vec<u8>> {
    if is_child(test) {
        let file = file_to_write();
        let rt = Runtime::builder().caller_helps(helps).build().expect("build");
        assert!(matches!(rt.mode(), Mode::Service { .. }), "{}", rt.mode());
        let mut sub = rt.submitter().expect("a syscall page");
        let calls = calls(file.as_raw_fd());
        let mut results = vec![0i64; calls.len()];
        std::mem::forget(rt);
        // SAFETY: the calls' buffers live until the process ends (`calls`' contract),
        // which the batch's exit_group does.
        unsafe { sub.call_batch(&calls, &mut results) };
        unreachable!("exit_group returned");
    }
    let _serial = serial();
    let (status, output, file) = run_child_writing(test)?;
    assert_eq!(status.code(), Some(code as i32), "{status:?}:\n{output}");
    Some(std::fs::read(file.path()).expect("read the file"))
}

/// A batch handed over whole is made visible before a call of it that runs on the caller
/// and waits: here `wait4(__WNOTHREAD)` (thread-bound, so it runs on the caller) for a
/// `cat` that ends when the batch's delegated `close` of its input's write end gives it
/// end of file. Hidden, the close would wait for the wait, and the wait for ever.
#[test]
fn a_call_of_a_batch_that_runs_on_its_caller_sees_the_calls_before_it() {
    const TEST: &str = "a_call_of_a_batch_that_runs_on_its_caller_sees_the_calls_before_it";
    if is_child(TEST) {
        for (helps, prefix) in [(false, 0), (true, 0), (false, 5), (true, 5)] {
            let rt = Runtime::builder().caller_helps(helps).build().expect("build");
            assert!(matches!(rt.mode(), Mode::Service { .. }), "{}", rt.mode());
            let mut sub = rt.submitter().expect("a syscall page");
            #[expect(clippy::zombie_processes, reason = "the batch's wait4 reaps it")]
            let mut child = std::process::Command::new("cat")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn cat");
            let input = child.stdin.take().expect("cat's input").into_raw_fd();
            let pid = child.id() as u64;
            let mut status: libc::c_int = 0;
            // With calls in front, a helping caller posts only the first part and would
            // run the rest from the back: the wait4 there must not run before the close.
            let mut calls = vec![Call::new(libc::SYS_getppid, [0; 6]); prefix];
            calls.push(Call::new(libc::SYS_close, [input as u64, 0, 0, 0, 0, 0]));
            calls.push(Call::new(
                libc::SYS_wait4,
                [
                    pid,
                    &mut status as *mut libc::c_int as u64,
                    libc::__WNOTHREAD as u64,
                    0,
                    0,
                    0,
                ],
            ));
            let mut results = vec![i64::MIN; calls.len()];
            // SAFETY: the close is of our own descriptor; wait4 writes the status into
            // `status`, alive past the batch.
            unsafe { sub.call_batch(&calls, &mut results) };
            assert_eq!(
                results[prefix..],
                [0, pid as i64],
                "caller helps: {helps}, {prefix} calls in front"
            );
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "{status:#x}"
            );
        }
        return;
    }
    let _serial = serial();
    if allowed_cpus().len() < 2 {
        eprintln!(
            "SKIPPED {}: needs two usable cores to run a service thread",
            std::thread::current().name().unwrap_or("?")
        );
        return;
    }
    // In a child of its own, bounded: the broken case waits for ever.
    let (status, output) = child::run_child(TEST, &[], Duration::from_secs(60));
    assert!(status.success(), "child failed ({status}):\n{output}");
}

// ---------------------------------------------------------------------------------------
// 10. An idle service thread sleeps
// ---------------------------------------------------------------------------------------

/// Thread ids of this process's threads named `flexsc-svc-*`.
fn service_tids() -> HashSet<String> {
    let mut tids = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let entry = entry.expect("a task");
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with("flexsc-svc-") {
            tids.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    tids
}

/// The state letter of thread `tid` (R, S, D, ...).
fn thread_state(tid: &str) -> char {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm ends with ')'") + 1..];
    after.trim_start().chars().next().expect("a state")
}

#[test]
fn idle_service_thread_sleeps_and_wakes_for_work() {
    let _serial = serial();
    let before = service_tids();
    let Some(rt) = service_runtime(Runtime::builder()) else {
        return;
    };
    let mut ours = HashSet::new();
    wait_until("the service thread to be named", || {
        ours = service_tids().difference(&before).cloned().collect();
        !ours.is_empty()
    });
    assert_eq!(ours.len(), 1, "one service thread by default: {ours:?}");
    let tid = ours.into_iter().next().unwrap();
    let mut sub = rt.submitter().expect("a syscall page");
    for round in 0..3 {
        assert_eq!(getppid(&mut sub), ppid(), "round {round}");
        std::thread::sleep(Duration::from_millis(200));
        let mut state = '?';
        wait_until("the idle service thread to sleep", || {
            state = thread_state(&tid);
            state == 'S'
        });
        assert_eq!(state, 'S');
    }
    // A sleeping service thread is woken by the next post.
    let file = records_file(8);
    assert_eq!(busy_calls(&mut sub, &file, 8, 100, || false), 200);
}

/// 64 preads of 4 KiB, each into its own part of `bufs` (64 × 4 KiB), from a temporary
/// file of that size just written (so cached). The file must outlive the calls.
fn cached_preads(bufs: &mut [u8]) -> (File, Vec<Call>) {
    let mut file = tempfile::tempfile().expect("a temporary file");
    file.write_all(&[7u8; 64 * 4096]).expect("fill it");
    let fd = file.as_raw_fd() as u64;
    let calls = (0..64)
        .map(|i| {
            let buf = bufs[i * 4096..].as_mut_ptr() as u64;
            Call::new(libc::SYS_pread64, [fd, buf, 4096, (i * 4096) as u64, 0, 0])
        })
        .collect();
    (file, calls)
}

/// A batch whose caller does not help reaches a service thread whole: one pass, and with
/// the io_uring backend one `io_uring_enter`, per `call_batch` of 64 (its bits are set
/// together at submit). A caller that helps lets the service thread start on the first
/// calls while it posts the rest, so its batches arrive in slices; that is not asserted
/// (see `a_helping_caller_and_the_service_thread_share_each_batch`).
#[test]
fn a_batch_whose_caller_only_waits_reaches_the_service_thread_whole() {
    let _serial = serial();
    let uring = match flexsc_kernel_side::uring::probe() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("the io_uring half of this test is skipped: {why}");
            false
        }
    };
    let mut bufs = vec![0u8; 64 * 4096];
    let (_file, calls) = cached_preads(&mut bufs);
    let backends = [
        Some(flexsc_kernel_side::Backend::Direct),
        uring.then_some(flexsc_kernel_side::Backend::Uring),
    ];
    for backend in backends.into_iter().flatten() {
        let Some(rt) = service_runtime(Runtime::builder().backend(backend).caller_helps(false)) else {
            return;
        };
        let mut sub = rt.submitter().expect("a page");
        let mut results = vec![0i64; 64];
        const BATCHES: u64 = 200;
        for _ in 0..BATCHES {
            // SAFETY: each pread writes 4 KiB into its own part of `bufs`.
            unsafe { sub.call_batch(&calls, &mut results) };
            assert!(results.iter().all(|&r| r == 4096), "{backend:?}: {results:?}");
        }
        drop(sub);
        let stats = rt.stats();
        assert_eq!(
            stats.batched_entries,
            64 * BATCHES,
            "{backend:?}: {}",
            stats.table()
        );
        assert_eq!(
            stats.batches,
            BATCHES,
            "{backend:?}: one pass per batch\n{}",
            stats.table()
        );
        if backend == flexsc_kernel_side::Backend::Uring {
            assert_eq!(stats.uring_calls, 64 * BATCHES, "{}", stats.table());
            assert_eq!(
                stats.uring_batches,
                BATCHES,
                "one enter per batch\n{}",
                stats.table()
            );
        }
    }
}

/// A caller that helps splits its batch: it posts the first part, which the service thread
/// runs, and runs the rest itself without posting it (`Split` in the shim's submitter).
/// Every result is right and counted once, the caller runs some of every batch size, and
/// the service thread some of the batches of 64 and more.
#[test]
fn a_helping_caller_and_the_service_thread_share_each_batch() {
    let _serial = serial();
    let Some(rt) = service_runtime(Runtime::builder().backend(flexsc_kernel_side::Backend::Direct)) else {
        return;
    };
    // On the service thread's core, the caller would run everything before the service
    // thread got the core back: keep them apart, as a program that wants help does.
    let _pinned = PinnedOff::new(&rt);
    let mut sub = rt.submitter().expect("a page");
    // SAFETY: getppid has no preconditions.
    let ppid = i64::from(unsafe { libc::getppid() });
    let mut calls_made = 0u64;
    for n in [8usize, 64, 200] {
        let calls = vec![Call::new(libc::SYS_getppid, [0; 6]); n];
        let mut results = vec![i64::MIN; n];
        let before = rt.stats().syscalls[libc::SYS_getppid as usize];
        // How the two split a batch depends on their speeds (about 40% to the service
        // thread on a quiet machine), and a service thread that shares its core with other
        // tests' may get none of the first batches before the caller takes them back. So
        // batches go on, in rounds of 200, until it has run some, for at most 20 s.
        let started = Instant::now();
        let mut made = 0u64;
        let (delegated, direct) = loop {
            for _ in 0..200 {
                // SAFETY: getppid takes no arguments.
                unsafe { sub.call_batch(&calls, &mut results) };
                assert!(results.iter().all(|&r| r == ppid), "batch of {n}: {results:?}");
            }
            made += 200 * n as u64;
            let after = rt.stats().syscalls[libc::SYS_getppid as usize];
            let (delegated, direct) = (after.delegated - before.delegated, after.direct - before.direct);
            assert_eq!(delegated + direct, made, "batch of {n}: {after:?}");
            // A batch of 8 may be over before a service thread gets to it at all: the
            // caller then takes back all it posted, which is right, so only the longer
            // batches must show the service thread's share.
            if n < 64 || delegated > 0 || started.elapsed() > Duration::from_secs(20) {
                break (delegated, direct);
            }
        };
        calls_made += made;
        assert!(
            n < 64 || delegated > 0,
            "batch of {n}: the service thread ran none of {made} calls in 20 s"
        );
        // The caller runs the back of every batch it splits itself: from the first round.
        assert!(direct > 0, "batch of {n}: the caller ran none itself");
    }
    drop(sub);
    assert_eq!(rt.stats().syscalls[libc::SYS_getppid as usize].calls, calls_made);
}

/// Batches of random length (1 to 150) and mix, through a caller that helps (and so
/// splits them) and one that only waits: every call runs exactly once and its result
/// lands in its own slot. Each kind shows what happened to it: a pwrite of record `i` at
/// offset `8 * i` (each record once), a 1-byte read from a pipe filled beforehand (Block
/// class: posted, never run out of order), `gettid` (Caller class: it must run on this
/// thread, so it returns this thread's id), `getppid`.
#[test]
fn random_batches_run_every_call_once_in_its_place() {
    let _serial = serial();
    for helps in [true, false] {
        let Some(rt) = service_runtime(Runtime::builder().caller_helps(helps)) else {
            return;
        };
        let _pinned = PinnedOff::new(&rt);
        let mut sub = rt.submitter().expect("a page");
        let file = tempfile::tempfile().expect("a temporary file");
        let (out, into) = pipe();
        // SAFETY: gettid and getppid have no preconditions.
        let (tid, ppid) = unsafe { (libc::gettid() as i64, i64::from(libc::getppid())) };
        // xorshift64: the same batches every run.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(helps);
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut records: Vec<[u8; 8]> = Vec::new();
        let mut made = 0u64;
        for round in 0..300 {
            let n = 1 + (next() % 150) as usize;
            made += n as u64;
            let kinds: Vec<u64> = (0..n).map(|_| next() % 8).collect();
            let first = records.len();
            records.extend(
                (0..kinds.iter().filter(|&&k| k < 4).count() as u64).map(|i| record(first as u64 + i)),
            );
            let reads = kinds.iter().filter(|&&k| k == 6).count();
            let fill = vec![b'r'; reads];
            // SAFETY: writes `reads` bytes from `fill` into our pipe, which holds them.
            let wrote = unsafe { libc::write(into.as_raw_fd(), fill.as_ptr().cast(), reads) };
            assert_eq!(wrote, reads as isize, "fill the pipe");
            let mut got = vec![0u8; n];
            let mut r = first;
            let calls: Vec<Call> = kinds
                .iter()
                .enumerate()
                .map(|(j, &k)| match k {
                    0..=3 => {
                        r += 1;
                        pwrite_call(file.as_raw_fd(), &records[r - 1], 8 * (r as u64 - 1))
                    }
                    4 | 5 => Call::new(libc::SYS_getppid, [0; 6]),
                    6 => Call::new(
                        libc::SYS_read,
                        [out.as_raw_fd() as u64, got[j..].as_mut_ptr() as u64, 1, 0, 0, 0],
                    ),
                    _ => Call::new(libc::SYS_gettid, [0; 6]),
                })
                .collect();
            let mut results = vec![i64::MIN; n];
            // SAFETY: the pwrites read `records`, the reads write one byte each into their
            // own place in `got`; both outlive the batch.
            unsafe { sub.call_batch(&calls, &mut results) };
            for (j, (&k, &ret)) in kinds.iter().zip(&results).enumerate() {
                let want = match k {
                    0..=3 => 8,
                    4 | 5 => ppid,
                    6 => 1,
                    _ => tid,
                };
                assert_eq!(
                    ret, want,
                    "helps {helps}, round {round}, call {j} of {n} (kind {k})"
                );
                if k == 6 {
                    assert_eq!(got[j], b'r', "helps {helps}, round {round}, call {j}");
                }
            }
        }
        drop(sub);
        let mut content = Vec::new();
        (&file).seek(std::io::SeekFrom::Start(0)).expect("rewind");
        (&file).read_to_end(&mut content).expect("read the file");
        assert_eq!(
            content.len(),
            8 * records.len(),
            "helps {helps}: one record per pwrite"
        );
        for (i, rec) in records.iter().enumerate() {
            assert_eq!(&content[8 * i..8 * i + 8], rec, "helps {helps}: record {i}");
        }
        // Every read took its byte and no more: the pipe is empty.
        let mut byte = 0u8;
        // SAFETY: a non-blocking 1-byte read into `byte`.
        let left = unsafe {
            libc::fcntl(out.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
            libc::read(out.as_raw_fd(), (&mut byte as *mut u8).cast(), 1)
        };
        assert_eq!(left, -1, "helps {helps}: the pipe still held a byte");
        // And each call was counted once, as run here or delegated.
        let t = rt.stats().totals();
        assert_eq!(t.calls, made, "helps {helps}");
        assert_eq!(t.direct + t.delegated, made, "helps {helps}");
    }
}

/// The auto backend's learned costs reach the statistics: after enough batches of cached
/// preads, each path of the "read" kind has been timed, and `Stats::table` says which is
/// cheaper here.
#[test]
fn the_auto_backends_learned_costs_are_in_the_statistics() {
    let _serial = serial();
    if let Err(why) = flexsc_kernel_side::uring::probe() {
        eprintln!("SKIPPED the_auto_backends_learned_costs_are_in_the_statistics: {why}");
        return;
    }
    let Some(rt) = service_runtime(Runtime::builder().backend(flexsc_kernel_side::Backend::Auto)) else {
        return;
    };
    let mut bufs = vec![0u8; 64 * 4096];
    let (_file, calls) = cached_preads(&mut bufs);
    let mut results = vec![0i64; 64];
    let mut sub = rt.submitter().expect("a page");
    let mut learned = None;
    for _ in 0..100 {
        for _ in 0..50 {
            // SAFETY: each pread writes 4 KiB into its own part of `bufs`.
            unsafe { sub.call_batch(&calls, &mut results) };
            assert!(results.iter().all(|&r| r == 4096), "{results:?}");
        }
        let stats = rt.stats();
        if let Some(l) = stats
            .learned
            .iter()
            .find(|l| l.costs.iter().any(|c| c.0 == "read"))
        {
            learned = Some((l.clone(), stats.table()));
            break;
        }
    }
    let (learned, table) = learned.expect("after 5,000 batches of preads, both paths of 'read' were timed");
    let (_, direct, ring) = learned
        .costs
        .iter()
        .find(|c| c.0 == "read")
        .copied()
        .expect("read");
    assert!(direct > 0.0 && ring > 0.0, "{learned:?}");
    assert!(table.contains("auto backend, service thread 0: read "), "{table}");
    drop(sub);
}

/// A call made to wait for the storage device does not hold up the service thread's
/// batch: an `fsync`, an `msync` with `MS_SYNC`, a populating `madvise` go to a blocking
/// worker (or back to their caller); their cheap forms (`MS_ASYNC`, `MADV_DONTNEED`) and a
/// `pread64` finish inline. Each is sent in a batch with a `getppid` (alone in its pass, a
/// device wait runs inline: see the next test). On the direct backend.
#[test]
fn device_waits_leave_the_service_thread() {
    let _serial = serial();
    for blocking in [Blocking::Workers, Blocking::Caller] {
        let builder = Runtime::builder()
            .backend(Backend::Direct)
            .caller_helps(false)
            .blocking(blocking);
        let Some(rt) = service_runtime(builder) else {
            return;
        };
        let file = sevens::file_of_sevens(8192);
        let fd = file.as_file().as_raw_fd();
        // SAFETY: a new shared mapping of our own file, unmapped below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        let (map_at, fd) = (map as u64, fd as u64);
        let mut sub = rt.submitter().expect("a page");
        let mut buf = vec![0u8; 4096];
        let mut sent = sent_away(&rt);
        let mut expect = |what: &str, nr: libc::c_long, args: [u64; 6], away: bool| {
            let calls = [Call::new(libc::SYS_getppid, [0; 6]), Call::new(nr, args)];
            let mut results = [0; 2];
            // SAFETY: getppid, and a call on our own descriptor or mapping.
            unsafe { sub.call_batch(&calls, &mut results) };
            assert_eq!(results, [ppid(), 0], "{blocking:?}: {what}");
            sent += u64::from(away);
            assert_eq!(sent_away(&rt), sent, "{blocking:?}: {what} sent away: {away}");
        };
        let empty = [fd, buf.as_mut_ptr() as u64, 0, 4096, 0, 0];
        expect("a zero-length pread", libc::SYS_pread64, empty, false);
        expect("fsync", libc::SYS_fsync, [fd, 0, 0, 0, 0, 0], true);
        let msync = |flags: i32| [map_at, 8192, flags as u64, 0, 0, 0];
        expect("msync MS_ASYNC", libc::SYS_msync, msync(libc::MS_ASYNC), false);
        expect("msync MS_SYNC", libc::SYS_msync, msync(libc::MS_SYNC), true);
        let madvise = |advice: i32| [map_at, 8192, advice as u64, 0, 0, 0];
        expect(
            "madvise DONTNEED",
            libc::SYS_madvise,
            madvise(libc::MADV_DONTNEED),
            false,
        );
        expect("madvise POPULATE_READ", libc::SYS_madvise, madvise(22), true);
        let before = sent_away(&rt);
        assert_eq!(pread(&mut sub, fd as RawFd, &mut buf, 4096), 4096);
        assert!(buf.iter().all(|&b| b == 7));
        assert_eq!(sent_away(&rt), before, "{blocking:?}: a pread finishes inline");
        // Alone in its pass (with nothing else rung), a device wait holds up nobody and
        // runs inline; handed on, it would only add a wake to its own wait. Under
        // Blocking::Caller it goes back to its caller, who is waiting for it anyway.
        // SAFETY: fsync of our own descriptor.
        assert_eq!(unsafe { sub.call(nr(libc::SYS_fsync), [fd, 0, 0, 0, 0, 0]) }, 0);
        let away = u64::from(blocking == Blocking::Caller);
        assert_eq!(sent_away(&rt), before + away, "{blocking:?}: a lone fsync");
        drop(sub);
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(map, 8192) };
        drop(rt);
    }
}

/// When every blocking worker is busy, a call made to wait for the device runs on the
/// service thread, as it did before such calls were handed on, rather than go back to an
/// owner whose thread has other work (an executor's, an M-on-N kernel thread's).
#[test]
fn a_device_wait_runs_inline_when_every_worker_is_busy() {
    let _serial = serial();
    let builder = Runtime::builder()
        .backend(Backend::Direct)
        .caller_helps(false)
        .workers(1);
    let Some(rt) = service_runtime(builder) else {
        return;
    };
    let file = sevens::file_of_sevens(8192);
    let (rx, tx) = pipe();
    let rx_fd = rx.as_raw_fd();
    // The only worker: in a read of an empty pipe.
    let reader = spawn_submitter(rt.shared(), "reader", move |sub| {
        let mut byte = [0u8; 1];
        read(sub, rx_fd, &mut byte)
    });
    let mut release = Release::new(move || {
        // SAFETY: one byte from this stack into our own pipe.
        unsafe { libc::write(tx.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    });
    wait_until("the pipe read to reach the worker", || rt.stats().handoffs == 1);
    let mut sub = rt.submitter().expect("a page");
    let fd = file.as_file().as_raw_fd() as u64;
    // With a companion, so that it is not alone in its pass (then it would run inline
    // anyway).
    let calls = [
        Call::new(libc::SYS_getppid, [0; 6]),
        Call::new(libc::SYS_fsync, [fd, 0, 0, 0, 0, 0]),
    ];
    let mut results = [0; 2];
    // SAFETY: getppid, and fsync of our own descriptor.
    unsafe { sub.call_batch(&calls, &mut results) };
    assert_eq!(results, [ppid(), 0]);
    let stats = rt.stats();
    assert_eq!((stats.handoffs, stats.declined), (1, 0), "the fsync ran inline");
    release.now();
    assert_eq!(join(reader, "the pipe read"), 1);
    drop(rx);
    drop(sub);
}

/// A `read` of a regular file whose data is not cached waits for the disk and nothing
/// else: alone in its pass (and nothing else waiting) it runs on the service thread, where
/// a hand-off would only add a wake to its own wait; beside another call it goes to a
/// blocking worker, so that the other call does not wait behind the disk. On the direct
/// backend (the others may send the read to the ring).
#[test]
fn an_uncached_read_runs_inline_alone_and_is_handed_on_beside_others() {
    const TEST: &str = "an_uncached_read_runs_inline_alone_and_is_handed_on_beside_others";
    let _serial = serial();
    let builder = Runtime::builder().backend(Backend::Direct).caller_helps(false);
    let Some(rt) = service_runtime(builder) else {
        return;
    };
    let (Some(alone), Some(beside)) = (
        sevens::uncached_file_of_sevens(TEST, 1 << 20),
        sevens::uncached_file_of_sevens(TEST, 1 << 20),
    ) else {
        return;
    };
    let mut sub = rt.submitter().expect("a page");
    let mut buf = vec![0u8; 4096];
    let at_start = |f: &tempfile::NamedTempFile| {
        // SAFETY: lseek of our own descriptor.
        assert_eq!(
            unsafe { libc::lseek(f.as_file().as_raw_fd(), 0, libc::SEEK_SET) },
            0
        );
        f.as_file().as_raw_fd()
    };
    let before = sent_away(&rt);
    assert_eq!(read(&mut sub, at_start(&alone), &mut buf), 4096);
    assert!(buf.iter().all(|&b| b == 7));
    assert_eq!(
        sent_away(&rt),
        before,
        "alone: the read ran on the service thread"
    );
    buf.fill(0);
    let fd = at_start(&beside) as u64;
    let calls = [
        Call::new(libc::SYS_getppid, [0; 6]),
        Call::new(libc::SYS_read, [fd, buf.as_mut_ptr() as u64, 4096, 0, 0, 0]),
    ];
    let mut results = [0; 2];
    // SAFETY: getppid, and a read into `buf`, which outlives the batch.
    unsafe { sub.call_batch(&calls, &mut results) };
    assert_eq!(results, [ppid(), 4096]);
    assert!(buf.iter().all(|&b| b == 7));
    assert_eq!(
        sent_away(&rt),
        before + 1,
        "beside a getppid: the read went to a worker"
    );
}
