//! System calls from user threads: many threads, every result checked; and a user thread
//! blocked in a call does not stop the others of its kernel thread.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flexsc_scheduler::{spawn, syscall, yield_now, Mode, Scheduler};

use common::sevens::file_of_sevens;
use common::{scenarios, serial, within_limit};

fn scheduler_on(cores: &[usize]) -> Arc<Scheduler> {
    // Every call through the pages: a user thread alone on its kernel thread, or one whose
    // service thread is behind, would otherwise make its calls directly
    // (`direct_when_alone`, tested on its own below; `help_when_behind`).
    let scheduler = Scheduler::builder()
        .user_cores(cores.iter().copied())
        .direct_when_alone(false)
        .help_when_behind(false)
        .build()
        .expect("start a scheduler");
    eprintln!("{}", scheduler.layout());
    Arc::new(scheduler)
}

/// The cores for `n` kernel threads: the first `n` usable ones (fewer if fewer exist).
/// A scheduler on the first core whose calls go to a service thread, or None (saying the
/// test skips what it needs one for: `needs`) where there is none (one usable core).
fn one_core_with_a_service_thread(needs: &str) -> Option<Arc<Scheduler>> {
    let scheduler = scheduler_on(&first_cores(1));
    if let Mode::Direct { reason } = &scheduler.layout().mode {
        eprintln!(
            "SKIPPED {}: needs a service thread to {needs}, but {reason}",
            std::thread::current().name().unwrap_or("?")
        );
        return None;
    }
    Some(scheduler)
}

fn first_cores(n: usize) -> Vec<usize> {
    flexsc_kernel_side::runtime::allowed_cpus()
        .into_iter()
        .take(n)
        .collect()
}

#[test]
fn ten_thousand_user_threads_on_one_kernel_thread() {
    let _turn = serial();
    let scheduler = scheduler_on(&first_cores(1));
    let s = Arc::clone(&scheduler);
    within_limit("10,000 threads, 1 kernel thread", move || {
        scenarios::syscalls(&s, 10_000)
    });
    let stats = Arc::into_inner(scheduler).expect("the only handle").shutdown();
    let totals = stats.totals();
    assert_eq!(totals.calls, 40_000, "{}", stats.table());
    if matches!(stats.mode, Mode::Service { .. }) {
        assert_eq!(
            totals.delegated,
            40_000,
            "every call went through the pages\n{}",
            stats.table()
        );
    }
}

/// A scheduler with one kernel thread whose only rule for making calls itself is the lone
/// thread's (`direct_when_alone`, the default; no helping while the service thread is
/// behind).
fn lone_rule_scheduler() -> Scheduler {
    Scheduler::builder()
        .user_cores(first_cores(1))
        .help_when_behind(false)
        .build()
        .expect("start a scheduler")
}

/// A scheduler with one kernel thread that posts every call it can (not even a lone user
/// thread makes its calls itself), helping while the service thread is behind if `help`;
/// None, saying why, without a service thread.
fn posting_scheduler(help: bool) -> Option<Scheduler> {
    let scheduler = Scheduler::builder()
        .user_cores(first_cores(1))
        .direct_when_alone(false)
        .help_when_behind(help)
        .build()
        .expect("start a scheduler");
    if let Mode::Direct { reason } = &scheduler.layout().mode {
        eprintln!(
            "SKIPPED {}: no service thread ({reason}), so no calls to help with",
            std::thread::current().name().unwrap_or("?")
        );
        return None;
    }
    Some(scheduler)
}

/// From a user thread: spawns one that reads `len` bytes of `/dev/zero` (milliseconds for
/// a service thread, a long call to be behind), and returns its handle: the read's result,
/// and whether every byte came back zero. The file is opened and the buffer allocated
/// (faulted in) here, so that the read is the new thread's first call.
fn spawn_long_read(len: usize) -> flexsc_scheduler::JoinHandle<(i64, bool)> {
    let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
    let mut buf = vec![1u8; len];
    spawn(move || {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&zero) as u64;
        // SAFETY: reads into `buf`, which outlives the call (the thread waits).
        let n = unsafe {
            syscall(
                libc::SYS_pread64,
                [fd, buf.as_mut_ptr() as u64, len as u64, 0, 0, 0],
            )
        };
        (n, buf.iter().all(|&b| b == 0))
    })
}

/// While the service thread is behind (here: in a long read, with calls posted and rung
/// behind it), a user thread makes its calls that cannot wait for an event itself, even
/// with other user threads ready; with `help_when_behind(false)` every one is posted.
#[test]
fn user_threads_make_their_calls_themselves_while_the_service_thread_is_behind() {
    let _turn = serial();
    // The backlog: calls posted once the service thread is inside the long read, and rung
    // (a round rings once, at its end: a round's own posts are no backlog).
    const QUEUED: usize = 16;
    // Then threads that each make several calls, in later rounds.
    const THREADS: usize = 16;
    const EACH: usize = 10;
    const SHORT: usize = QUEUED + THREADS * EACH;
    const LONG: usize = 256 << 20;
    for help in [true, false] {
        let Some(scheduler) = posting_scheduler(help) else {
            return;
        };
        let ppid = i64::from(std::os::unix::process::parent_id());
        let (long, short) = scheduler.block_on(|| {
            // Each waits (yielding) for its flag, so that the calls come in the order the
            // test needs however long spawning takes.
            let waiting_for = |flag: &Arc<AtomicBool>, calls: usize| {
                let flag = Arc::clone(flag);
                spawn(move || {
                    while !flag.load(Ordering::Acquire) {
                        yield_now();
                    }
                    (0..calls)
                        // SAFETY: getppid takes no arguments.
                        .map(|_| unsafe { syscall(libc::SYS_getppid, [0; 6]) })
                        .collect::<Vec<i64>>()
                })
            };
            let (queue, go) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
            let queued: Vec<_> = (0..QUEUED).map(|_| waiting_for(&queue, 1)).collect();
            let short: Vec<_> = (0..THREADS).map(|_| waiting_for(&go, EACH)).collect();
            // The service thread's long call: 256 MiB from /dev/zero.
            let long = spawn_long_read(LONG);
            // A round for the long thread to post, then time for a sleeping service thread
            // to wake and take the read (a posted sleep: the others run meanwhile).
            yield_now();
            flexsc_scheduler::sleep(Duration::from_millis(3));
            // The backlog: posted in one round, rung at its end.
            queue.store(true, Ordering::Release);
            yield_now();
            yield_now();
            go.store(true, Ordering::Release);
            let short: Vec<i64> = queued
                .into_iter()
                .chain(short)
                .flat_map(|t| t.join().expect("no panic"))
                .collect();
            (long.join().expect("no panic"), short)
        });
        assert_eq!(long, (LONG as i64, true), "the long read, whole");
        assert!(short.iter().all(|&r| r == ppid), "{short:?}");
        let stats = scheduler.shutdown();
        let getppid = stats.syscalls[libc::SYS_getppid as usize];
        assert_eq!(getppid.calls, SHORT as u64, "{}", stats.table());
        if help {
            assert!(
                getppid.direct > 0,
                "some made here while the service thread was behind\n{}",
                stats.table()
            );
        } else {
            assert_eq!(
                getppid.delegated,
                SHORT as u64,
                "every one posted\n{}",
                stats.table()
            );
        }
    }
}

/// A user thread alone on its kernel thread tries a call that may wait (recvmsg, poll)
/// itself first: with data ready it finishes there, counted as direct, with the answer a
/// direct call gives; with nothing ready nothing happens to it there, and it is posted
/// and answered when the data comes (from another OS thread, while the user thread is
/// switched out).
#[test]
fn a_lone_user_thread_tries_a_waiting_call_before_it_posts_it() {
    let _turn = serial();
    let scheduler = Scheduler::builder()
        .user_cores(first_cores(1))
        .build()
        .expect("start a scheduler");
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into `fds`.
    assert_eq!(
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, fds.as_mut_ptr()) },
        0
    );
    let (a, b) = (fds[0], fds[1]);
    let send = move |bytes: &[u8]| {
        // SAFETY: writes a live buffer to our own socket.
        assert_eq!(
            unsafe { libc::send(b, bytes.as_ptr().cast(), bytes.len(), 0) },
            bytes.len() as isize
        );
    };
    let recvmsg = move |buf: &mut [u8]| -> i64 {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid; it points at `iov`, alive across the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        let args = [a as u64, &mut msg as *mut libc::msghdr as u64, 0, 0, 0, 0];
        // SAFETY: recvmsg into the live buffer.
        unsafe { syscall(libc::SYS_recvmsg, args) }
    };
    send(b"ready");
    let (ready, revents, later) = scheduler.block_on(move || {
        let mut buf = [0u8; 16];
        let ready = recvmsg(&mut buf);
        assert_eq!(&buf[..5], b"ready");
        send(b"x");
        let mut pfd = libc::pollfd {
            fd: a,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll of a live pollfd.
        let polled = unsafe {
            syscall(
                libc::SYS_poll,
                [&mut pfd as *mut libc::pollfd as u64, 1, 5000, 0, 0, 0],
            )
        };
        assert_eq!(polled, 1);
        let _ = recvmsg(&mut buf);
        // Nothing ready now: posted, and answered once another OS thread sends.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            send(b"later");
        });
        let later = recvmsg(&mut buf);
        sender.join().expect("sender");
        assert_eq!(&buf[..5], b"later");
        (ready, pfd.revents, later)
    });
    assert_eq!((ready, revents, later), (5, libc::POLLIN, 5));
    let stats = scheduler.shutdown();
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(a);
        libc::close(b);
    }
    if !matches!(stats.mode, Mode::Service { .. }) {
        eprintln!(
            "SKIPPED a_lone_user_thread_tries_a_waiting_call_before_it_posts_it: no service thread ({})",
            stats.mode
        );
        return;
    }
    let recv = &stats.syscalls[libc::SYS_recvmsg as usize];
    let poll = &stats.syscalls[libc::SYS_poll as usize];
    assert_eq!((recv.direct, recv.delegated), (2, 1), "{}", stats.table());
    assert_eq!((poll.direct, poll.delegated), (1, 0), "{}", stats.table());
}

/// A user thread alone on its kernel thread makes its calls that cannot wait for an event
/// directly (posting would switch to nobody); calls that may wait are still posted, and
/// so are the calls of threads that have company.
#[test]
fn a_user_thread_alone_makes_its_calls_directly() {
    let _turn = serial();
    // The rule for a lone thread alone: with company, a thread whose service thread is
    // behind (asleep, say, while a round's posts pile up) makes its calls itself too
    // (`help_when_behind`, tested on its own above).
    let scheduler = lone_rule_scheduler();
    let (alone, with_company) = scheduler.block_on(|| {
        // SAFETY: getppid has no arguments.
        let alone: Vec<i64> = (0..100)
            .map(|_| unsafe { syscall(libc::SYS_getppid, [0; 6]) })
            .collect();
        // A nanosleep may wait (for time): posted even when alone.
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1000,
        };
        let args = [&ts as *const libc::timespec as u64, 0, 0, 0, 0, 0];
        // SAFETY: nanosleep reads `ts`, on this stack, which outlives the call.
        let slept = unsafe { syscall(libc::SYS_nanosleep, args) };
        assert_eq!(slept, 0);
        // Many threads at once: while others are ready, calls are posted.
        let handles: Vec<_> = (0..64)
            .map(|_| {
                spawn(|| {
                    (0..10)
                        .map(|_| {
                            yield_now();
                            // SAFETY: as above.
                            unsafe { syscall(libc::SYS_getppid, [0; 6]) }
                        })
                        .collect::<Vec<i64>>()
                })
            })
            .collect();
        let with_company: Vec<i64> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("no panic"))
            .collect();
        (alone, with_company)
    });
    let ppid = std::os::unix::process::parent_id() as i64;
    assert!(alone.iter().chain(&with_company).all(|&p| p == ppid));
    let stats = scheduler.shutdown();
    if !matches!(stats.mode, Mode::Service { .. }) {
        eprintln!(
            "SKIPPED a_user_thread_alone_makes_its_calls_directly: no service thread ({})",
            stats.mode
        );
        return;
    }
    let getppid = &stats.syscalls[libc::SYS_getppid as usize];
    let nanosleep = &stats.syscalls[libc::SYS_nanosleep as usize];
    assert_eq!(getppid.calls, 740, "{}", stats.table());
    assert!(
        getppid.direct >= 100,
        "the lone thread's 100 calls ran directly\n{}",
        stats.table()
    );
    assert!(
        getppid.delegated >= 320,
        "most calls of 64 busy threads were posted\n{}",
        stats.table()
    );
    assert_eq!(
        nanosleep.delegated,
        1,
        "a call that may wait is posted even alone\n{}",
        stats.table()
    );
}

/// A lone user thread runs its calls itself, but not one made to wait for the device: a
/// user thread that wakes meanwhile could not run. An `fsync` is posted; a `pread64` runs
/// here.
#[test]
fn a_lone_user_thread_posts_what_waits_for_the_device() {
    use std::os::fd::AsRawFd;
    let _turn = serial();
    let file = file_of_sevens(8192);
    let scheduler = lone_rule_scheduler();
    let fd = file.as_file().as_raw_fd() as u64;
    let results = scheduler.block_on(move || {
        let mut buf = vec![0u8; 4096];
        let args = [fd, buf.as_mut_ptr() as u64, 4096, 4096, 0, 0];
        // SAFETY: a read into `buf`, which outlives the call (the thread waits for it).
        let n = unsafe { syscall(libc::SYS_pread64, args) };
        // SAFETY: our own descriptor.
        let synced = unsafe { syscall(libc::SYS_fsync, [fd, 0, 0, 0, 0, 0]) };
        ((n, buf.iter().all(|&b| b == 7)), synced)
    });
    assert_eq!(results, ((4096, true), 0));
    let stats = scheduler.shutdown();
    if !matches!(stats.mode, Mode::Service { .. }) {
        eprintln!(
            "SKIPPED a_lone_user_thread_posts_what_waits_for_the_device: no service thread ({})",
            stats.mode
        );
        return;
    }
    let fsync = &stats.syscalls[libc::SYS_fsync as usize];
    let pread = &stats.syscalls[libc::SYS_pread64 as usize];
    assert_eq!(
        (fsync.direct, fsync.delegated),
        (0, 1),
        "fsync posted\n{}",
        stats.table()
    );
    assert_eq!(
        (pread.direct, pread.delegated),
        (1, 0),
        "pread here\n{}",
        stats.table()
    );
}

#[test]
fn ten_thousand_user_threads_on_two_kernel_threads() {
    let _turn = serial();
    let scheduler = scheduler_on(&first_cores(2));
    let s = Arc::clone(&scheduler);
    within_limit("10,000 threads, 2 kernel threads", move || {
        scenarios::syscalls(&s, 10_000)
    });
}

/// A read on an empty pipe goes to a blocking worker; meanwhile the other user threads of
/// the same (only) kernel thread run to completion; then one of them writes the pipe and
/// the reader gets the bytes.
#[test]
fn user_thread_blocked_in_a_read_does_not_stop_the_others() {
    let _turn = serial();
    let Some(scheduler) = one_core_with_a_service_thread("serve the blocking read") else {
        return;
    };
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read_end, write_end) = (fds[0] as u64, fds[1] as u64);

    let s = Arc::clone(&scheduler);
    within_limit("blocked reader", move || {
        s.block_on(move || {
            let reading = Arc::new(AtomicBool::new(false));
            let reader = {
                let reading = Arc::clone(&reading);
                spawn(move || {
                    let mut buf = [0u8; 16];
                    reading.store(true, Ordering::SeqCst);
                    // SAFETY: read writes at most 16 bytes into `buf`, on this stack.
                    let n =
                        unsafe { syscall(libc::SYS_read, [read_end, buf.as_mut_ptr() as u64, 16, 0, 0, 0]) };
                    (n, buf)
                })
            };
            while !reading.load(Ordering::SeqCst) {
                yield_now();
            }
            let others: Vec<_> = (0..100)
                .map(|i| {
                    spawn(move || {
                        (0..10)
                            // SAFETY: getppid has no arguments.
                            .map(|_| unsafe { syscall(libc::SYS_getppid, [0; 6]) })
                            .all(|ppid| ppid == std::os::unix::process::parent_id() as i64)
                            .then_some(i)
                    })
                })
                .collect();
            for (i, other) in others.into_iter().enumerate() {
                assert_eq!(other.join().expect("no panic"), Some(i));
            }
            assert!(
                !reader.is_finished(),
                "the pipe is still empty: the reader must still wait"
            );
            let msg = b"hello";
            // SAFETY: write reads 5 bytes from a static.
            let written = unsafe { syscall(libc::SYS_write, [write_end, msg.as_ptr() as u64, 5, 0, 0, 0]) };
            assert_eq!(written, 5);
            let (n, buf) = reader.join().expect("the reader panicked");
            assert_eq!(n, 5);
            assert_eq!(&buf[..5], msg);
        })
    });
    // SAFETY: closing the two descriptors pipe2 gave us.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    let stats = Arc::into_inner(scheduler).expect("the only handle").shutdown();
    // It waited off the user threads' kernel thread: on a blocking worker, or (io_uring
    // and auto backends) parked in the service thread's ring.
    assert!(
        stats.handoffs + stats.uring_parked >= 1,
        "the read went to a blocking worker or was parked in io_uring\n{}",
        stats.table()
    );
}

/// Two user threads of one kernel thread open the two ends of a FIFO. The first open
/// waits in the kernel for the other end, on the service thread that runs it; the second
/// is posted behind it. The kernel thread must not run the second itself (it could wait
/// for a user thread of its own); the relief thread hands it to a worker, which lets the
/// first finish too (it hung before: the kernel thread slept on the first call, and
/// nobody ever claimed the second).
#[test]
fn a_fifo_opened_at_both_ends_by_user_threads_of_one_kernel_thread() {
    let _turn = serial();
    let Some(scheduler) = one_core_with_a_service_thread("run the first open") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a directory");
    let fifo = std::ffi::CString::new(dir.path().join("fifo").to_str().expect("utf-8")).expect("no NUL");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let open = |path: &std::ffi::CString, flags: i32| {
        let args = [
            libc::AT_FDCWD as u64,
            path.as_ptr() as u64,
            (flags | libc::O_CLOEXEC) as u64,
            0,
            0,
            0,
        ];
        // SAFETY: openat reads a path that outlives the call.
        unsafe { syscall(libc::SYS_openat, args) }
    };
    let s = Arc::clone(&scheduler);
    let path = fifo.clone();
    let (r, w) = within_limit("both ends of a FIFO", move || {
        s.block_on(move || {
            let reader_path = path.clone();
            let reader = spawn(move || open(&reader_path, libc::O_RDONLY));
            // Give the service thread time to claim the reader's open and wait in it.
            // (A direct sleep: it holds up this kernel thread, not the service thread.)
            yield_now();
            std::thread::sleep(Duration::from_millis(100));
            let w = open(&path, libc::O_WRONLY);
            (reader.join().expect("no panic"), w)
        })
    });
    assert!(r >= 0 && w >= 0, "both ends opened: read end {r}, write end {w}");
    // SAFETY: the two descriptors this test opened.
    unsafe {
        libc::close(r as i32);
        libc::close(w as i32);
    }
    let stats = Arc::into_inner(scheduler).expect("the only handle").shutdown();
    assert!(
        stats.relieved >= 1,
        "the write end's open was handed to a worker by the relief thread\n{}",
        stats.table()
    );
}

/// Makes a FIFO in `dir` and returns its path.
fn fifo_in(dir: &tempfile::TempDir) -> std::ffi::CString {
    let fifo = std::ffi::CString::new(dir.path().join("fifo").to_str().expect("utf-8")).expect("no NUL");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    fifo
}

/// `openat` of `path` with `flags`, from a user thread.
fn open_at(path: &std::ffi::CStr, flags: i32) -> i64 {
    let args = [
        libc::AT_FDCWD as u64,
        path.as_ptr() as u64,
        (flags | libc::O_CLOEXEC) as u64,
        0,
        0,
        0,
    ];
    // SAFETY: openat reads a path that outlives the call.
    unsafe { syscall(libc::SYS_openat, args) }
}

/// How the `fsync` of [`fifo_and_fsync`] reaches the service thread.
#[derive(Clone, Copy, PartialEq)]
enum FsyncPass {
    /// In a pass of its own, after the service thread already waits in the FIFO's open (a
    /// posted sleep lets the kernel thread hand the open over first).
    After,
    /// In the same pass as the FIFO's open (a direct sleep holds the kernel thread, so the
    /// open is not handed over before the `fsync` is posted).
    Same,
}

/// Two user threads of one kernel thread: one opens a FIFO's read end (with
/// `reader_flags`); the other makes an `fsync` and then opens the write end, as natively
/// works. Returns the statistics, or None (saying why) without a service thread.
fn fifo_and_fsync(reader_flags: i32, pass: FsyncPass) -> Option<flexsc_scheduler::Stats> {
    let _turn = serial();
    let scheduler = one_core_with_a_service_thread("run the first open")?;
    let dir = tempfile::tempdir().expect("a directory");
    let fifo = fifo_in(&dir);
    let file = std::fs::File::create(dir.path().join("data")).expect("a file");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file) as u64;
    let s = Arc::clone(&scheduler);
    let (synced, r, w) = within_limit("a FIFO's two ends and an fsync", move || {
        s.block_on(move || {
            let reader_path = fifo.clone();
            let reader = spawn(move || open_at(&reader_path, reader_flags));
            yield_now();
            match pass {
                // (The posted sleep goes to a worker.)
                FsyncPass::After => flexsc_scheduler::sleep(Duration::from_millis(100)),
                FsyncPass::Same => std::thread::sleep(Duration::from_millis(20)),
            }
            // SAFETY: fsync of the test's own file.
            let synced = unsafe { syscall(libc::SYS_fsync, [fd, 0, 0, 0, 0, 0]) };
            let w = open_at(&fifo, libc::O_WRONLY);
            (synced, reader.join().expect("no panic"), w)
        })
    });
    assert_eq!(synced, 0, "the fsync succeeded");
    assert!(r >= 0 && w >= 0, "both ends opened: read end {r}, write end {w}");
    // SAFETY: the two descriptors this test opened.
    unsafe {
        libc::close(r as i32);
        libc::close(w as i32);
    }
    drop(file);
    Some(Arc::into_inner(scheduler).expect("the only handle").shutdown())
}

/// A kernel thread with nothing ready sleeps on a call in flight and, if the service
/// thread is blocked in another call, takes it back and runs it itself after a while
/// (`TAKE_BACK_AFTER`). Never a call made to wait for the device (an `fsync`): run on the
/// kernel thread it would hold up every user thread there for as long as the device
/// takes. Here the service thread is stuck in a FIFO's open (a user thread's) when another
/// user thread's `fsync` is posted: the relief thread hands the `fsync` to a worker, and
/// nothing is taken back. (Fixed in session 9, tested since session 10: reverting the fix
/// makes the kernel thread take the `fsync` back.)
#[test]
fn a_kernel_thread_does_not_take_back_a_posted_fsync() {
    let Some(stats) = fifo_and_fsync(libc::O_RDONLY, FsyncPass::After) else {
        return;
    };
    assert_eq!(
        stats.taken_back,
        0,
        "the kernel thread took a call back (the fsync: the open of a FIFO never is)\n{}",
        stats.table()
    );
    assert!(
        stats.relieved >= 2,
        "the fsync and the write end's open were handed to workers by the relief thread\n{}",
        stats.table()
    );
}

/// The same two user threads, with both calls of the first round in one pass. On the
/// io_uring and auto backends the `fsync` is parked in the ring, and the service thread
/// alone reaps the ring: had it then run the FIFO's open inline, waiting for a writer, the
/// `fsync`'s answer would never have come, nor the writer (a deadlock found while writing
/// the previous test). The open goes to a worker instead. The read end's open as it
/// comes, and with `O_CREAT` (io_uring's own worker ran that one, and the pass waited for
/// it).
#[test]
fn an_fsync_parked_beside_a_fifo_open_does_not_deadlock() {
    for reader_flags in [libc::O_RDONLY, libc::O_RDONLY | libc::O_CREAT] {
        let Some(stats) = fifo_and_fsync(reader_flags, FsyncPass::Same) else {
            return;
        };
        if stats.uring_parked == 0 {
            eprintln!(
                "note: {}: the fsync was not parked in a ring (no io_uring here, or the backend is direct): the deadlock's path was not taken\n{}",
                std::thread::current().name().unwrap_or("?"),
                stats.table()
            );
        }
    }
}

/// With no idle spin a kernel thread sleeps as soon as nothing is ready: on the entry of a
/// call that cannot wait for an event, or on its inbox (with a timeout while calls are in
/// flight). Every result and every cross-thread wake must still arrive.
#[test]
fn everything_arrives_when_idle_kernel_threads_sleep_at_once() {
    let _turn = serial();
    for kernel_threads in [1, 2] {
        let scheduler = Scheduler::builder()
            .user_cores(first_cores(kernel_threads))
            .idle_spin(Duration::ZERO)
            .build()
            .expect("start a scheduler");
        let s = Arc::new(scheduler);
        within_limit("no idle spin", move || {
            scenarios::syscalls(&s, 2_000);
            scenarios::condvar_ping_pong(&s, 2_000);
            scenarios::channel_messages(&s, 20_000, 2);
        });
    }
}

/// Outside a user thread, `syscall` is a direct system call.
#[test]
fn syscall_outside_a_user_thread_runs_directly() {
    // SAFETY: getppid has no arguments.
    let ppid = unsafe { syscall(libc::SYS_getppid, [0; 6]) };
    assert_eq!(ppid, std::os::unix::process::parent_id() as i64);
}

/// How many times the SIGXFSZ handler of the test below made its call.
static HANDLER_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn on_xfsz(_: libc::c_int) {
    // A handler's own call (a preloaded program's handler writes to a self-pipe, say):
    // from a user thread it goes through `syscall` like any other.
    // SAFETY: getppid takes no arguments.
    let _ = unsafe { syscall(libc::SYS_getppid, [0; 6]) };
    HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// This process: files of at most 4 KiB (a write past that fails with EFBIG and sends
/// SIGXFSZ to the thread that made it), and `handler` for SIGXFSZ.
fn small_files_with_xfsz_handler(handler: extern "C" fn(libc::c_int)) {
    // SAFETY: plain data; our own process's limit and handler.
    unsafe {
        let limit = libc::rlimit {
            rlim_cur: 4096,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        assert_eq!(libc::sigaction(libc::SIGXFSZ, &sa, std::ptr::null_mut()), 0);
    }
}

/// The child of the test below: user threads whose pwrite64 goes past RLIMIT_FSIZE (EFBIG,
/// and SIGXFSZ for the thread that made it) while the service thread is behind.
fn handler_calls_child(help: bool) {
    const LONG: usize = 256 << 20;
    small_files_with_xfsz_handler(on_xfsz);
    let Some(scheduler) = posting_scheduler(help) else {
        return;
    };
    let file = tempfile::tempfile().expect("a temporary file");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file) as u64;
    let results: Vec<i64> = scheduler.block_on(move || {
        // Keep the service thread busy: 256 MiB from /dev/zero.
        let long = spawn_long_read(LONG);
        yield_now();
        // Each makes several calls: a round's own posts are no backlog, the next round
        // finds them rung and not taken.
        let writers: Vec<_> = (0..64)
            .map(|_| {
                spawn(move || {
                    let byte = 7u8;
                    let results: Vec<i64> = (0..20)
                        // SAFETY: a one-byte write from this stack, which outlives the call.
                        .map(|_| unsafe {
                            syscall(libc::SYS_pwrite64, [fd, &byte as *const u8 as u64, 1, 8192, 0, 0])
                        })
                        .collect();
                    results
                })
            })
            .collect();
        let mut r: Vec<i64> = writers
            .into_iter()
            .flat_map(|t| t.join().expect("no panic"))
            .collect();
        r.push(long.join().expect("no panic").0);
        r
    });
    let efbig = -(libc::EFBIG as i64);
    assert!(results[..64 * 20].iter().all(|&r| r == efbig), "{results:?}");
    eprintln!("handler calls: {}", HANDLER_CALLS.load(Ordering::SeqCst));
    drop(scheduler.shutdown());
}

/// A signal handler that makes a call, run on a user thread that makes a call itself
/// because the service thread is behind (the signal arrives as that call returns, as
/// SIGXFSZ does for a pwrite64 past RLIMIT_FSIZE): the handler's call must not find the
/// kernel thread's pages borrowed.
#[test]
fn a_signal_handler_may_make_a_call_while_a_helping_user_thread_runs_one() {
    const NAME: &str = "a_signal_handler_may_make_a_call_while_a_helping_user_thread_runs_one";
    match common::child_role().as_deref() {
        Some("help") => return handler_calls_child(true),
        Some("no-help") => return handler_calls_child(false),
        _ => {}
    }
    let _turn = serial();
    for role in ["no-help", "help"] {
        common::assert_child_passes(NAME, role);
    }
}

/// A service thread that is idle (asleep, say) is not behind: the calls one round of
/// user threads posts before the round's ring (`Pages::submit`) are not a backlog.
#[test]
fn calls_posted_in_one_round_are_not_a_backlog() {
    let _turn = serial();
    const THREADS: usize = 64;
    let Some(scheduler) = posting_scheduler(true) else {
        return;
    };
    // Let the service thread go idle (it sleeps after its spin).
    std::thread::sleep(Duration::from_millis(200));
    scheduler.block_on(|| {
        let threads: Vec<_> = (0..THREADS)
            // SAFETY: getppid takes no arguments.
            .map(|_| spawn(|| unsafe { syscall(libc::SYS_getppid, [0; 6]) }))
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
    });
    let stats = scheduler.shutdown();
    let getppid = stats.syscalls[libc::SYS_getppid as usize];
    assert_eq!(getppid.calls, THREADS as u64);
    assert_eq!(
        getppid.direct,
        0,
        "nothing was behind: every call posted\n{}",
        stats.table()
    );
}

/// The same with one user thread alone on its kernel thread (`direct_when_alone`): the
/// older path that runs a call here has the same borrow.
#[test]
fn a_signal_handler_may_make_a_call_while_a_lone_user_thread_runs_one() {
    const NAME: &str = "a_signal_handler_may_make_a_call_while_a_lone_user_thread_runs_one";
    if common::child_role().as_deref() == Some("alone") {
        return lone_handler_child();
    }
    let _turn = serial();
    common::assert_child_passes(NAME, "alone");
}

/// As `handler_calls_child`, with one user thread alone on its kernel thread
/// (`direct_when_alone`, the default): no service thread behind, no helping.
fn lone_handler_child() {
    small_files_with_xfsz_handler(on_xfsz);
    let scheduler = lone_rule_scheduler();
    let file = tempfile::tempfile().expect("a temporary file");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file) as u64;
    let r = scheduler.block_on(move || {
        let byte = 7u8;
        // SAFETY: a one-byte write from this stack, which outlives the call.
        unsafe { syscall(libc::SYS_pwrite64, [fd, &byte as *const u8 as u64, 1, 8192, 0, 0]) }
    });
    assert_eq!(r, -(libc::EFBIG as i64));
    drop(scheduler.shutdown());
}

/// The result of the SIGXFSZ handler's setresuid in `isolate_child`.
static HANDLER_SETRESUID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN);

extern "C" fn drop_privileges_on_xfsz(_: libc::c_int) {
    // SAFETY: setresuid takes no pointers.
    let r = unsafe { syscall(libc::SYS_setresuid, [65534, 65534, 65534, 0, 0, 0]) };
    HANDLER_SETRESUID.store(r, Ordering::SeqCst);
}

/// A lone user thread drops its kernel thread's credentials (setresuid to nobody), from a
/// signal handler (`in_handler`, delivered as its pwrite64 past RLIMIT_FSIZE returns,
/// while the pages are borrowed) or as a plain call; then opens a root-only file. The
/// open must run with the dropped credentials: EACCES, as natively.
fn isolate_child(in_handler: bool) {
    let secret = tempfile::NamedTempFile::new().expect("a temporary file"); // mode 0600, root's
    let path = std::ffi::CString::new(secret.path().as_os_str().as_encoded_bytes()).unwrap();
    small_files_with_xfsz_handler(drop_privileges_on_xfsz);
    let scheduler = lone_rule_scheduler();
    if let Mode::Direct { reason } = &scheduler.layout().mode {
        eprintln!(
            "SKIPPED {}: no service thread ({reason})",
            std::thread::current().name().unwrap_or("?")
        );
        return;
    }
    let file = tempfile::tempfile().expect("a temporary file");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file) as u64;
    let path_addr = path.as_ptr() as u64;
    let (dropped, opened) = scheduler.block_on(move || {
        let dropped = if in_handler {
            let byte = 7u8;
            // SAFETY: a one-byte write from this stack (EFBIG, and SIGXFSZ).
            let r = unsafe { syscall(libc::SYS_pwrite64, [fd, &byte as *const u8 as u64, 1, 8192, 0, 0]) };
            assert_eq!(r, -(libc::EFBIG as i64));
            HANDLER_SETRESUID.load(Ordering::SeqCst)
        } else {
            // SAFETY: setresuid takes no pointers.
            unsafe { syscall(libc::SYS_setresuid, [65534, 65534, 65534, 0, 0, 0]) }
        };
        // SAFETY: the path outlives the call.
        let opened = unsafe {
            syscall(
                libc::SYS_openat,
                [libc::AT_FDCWD as u64, path_addr, libc::O_RDONLY as u64, 0, 0, 0],
            )
        };
        (dropped, opened)
    });
    drop(scheduler.shutdown());
    assert_eq!(dropped, 0, "setresuid to nobody");
    assert_eq!(
        opened,
        -(libc::EACCES as i64),
        "the root-only file opened after the credentials were dropped (in_handler: {in_handler})"
    );
}

/// A call that changes the thread's credentials (Class::Isolate) made by a signal handler
/// while the pages are borrowed must still stop delegation, like the same call made
/// outside a handler.
#[test]
fn a_signal_handler_that_drops_privileges_stops_delegation() {
    const NAME: &str = "a_signal_handler_that_drops_privileges_stops_delegation";
    match common::child_role().as_deref() {
        Some("handler") => return isolate_child(true),
        Some("plain") => return isolate_child(false),
        _ => {}
    }
    // SAFETY: geteuid only reads.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "SKIPPED {}: needs root (setresuid to nobody)",
            std::thread::current().name().unwrap_or("?")
        );
        return;
    }
    let _turn = serial();
    for role in ["plain", "handler"] {
        common::assert_child_passes(NAME, role);
    }
}

/// A lone user thread installs a seccomp filter that kills the process on `preadv2` (a
/// program may allow `pread64` and `readv` and not their other forms), then reads a cached
/// file with `pread64` and with `readv`. The filter stops delegation, and from then on
/// every call runs as made: neither read may be tried as a `preadv2` (a lone thread's
/// `readv` is tried without waiting first while calls are delegated).
fn seccomp_child() {
    let scheduler = lone_rule_scheduler();
    if let Mode::Direct { reason } = &scheduler.layout().mode {
        eprintln!("SKIPPED a_read_after_a_seccomp_filter_runs_as_made: no service thread ({reason})");
        return;
    }
    let file = file_of_sevens(8192);
    let fd = std::os::fd::AsRawFd::as_raw_fd(file.as_file()) as u64;
    let (filtered, read, readv) = scheduler.block_on(move || {
        // Load the number; kill on preadv2, allow the rest.
        let program = [
            libc::sock_filter {
                code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                jt: 0,
                jf: 0,
                k: 0,
            },
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 0,
                jf: 1,
                k: libc::SYS_preadv2 as u32,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_KILL_PROCESS,
            },
            libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ALLOW,
            },
        ];
        let filter = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: no pointers.
        let r = unsafe { syscall(libc::SYS_prctl, [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0, 0]) };
        assert_eq!(r, 0, "PR_SET_NO_NEW_PRIVS");
        let args = [
            libc::SECCOMP_SET_MODE_FILTER as u64,
            0,
            &filter as *const libc::sock_fprog as u64,
            0,
            0,
            0,
        ];
        // SAFETY: the program and its header outlive the call.
        let filtered = unsafe { syscall(libc::SYS_seccomp, args) };
        let mut buf = [0u8; 4096];
        // SAFETY: a read into `buf`, which outlives the call.
        let pread = unsafe { syscall(libc::SYS_pread64, [fd, buf.as_mut_ptr() as u64, 4096, 4096, 0, 0]) };
        let pread = (pread, buf.iter().all(|&b| b == 7));
        buf.fill(0);
        // SAFETY: no pointers.
        let at = unsafe { syscall(libc::SYS_lseek, [fd, 4096, libc::SEEK_SET as u64, 0, 0, 0]) };
        let one = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: a read into `buf`, described by `one`; both outlive the call.
        let readv = unsafe {
            syscall(
                libc::SYS_readv,
                [fd, &one as *const libc::iovec as u64, 1, 0, 0, 0],
            )
        };
        (filtered, pread, (at, readv, buf.iter().all(|&b| b == 7)))
    });
    drop(scheduler.shutdown());
    assert_eq!(filtered, 0, "seccomp filter installed");
    assert_eq!(read, (4096, true), "pread64");
    assert_eq!(readv, (4096, 4096, true), "lseek, readv");
}

#[test]
fn a_read_after_a_seccomp_filter_runs_as_made() {
    const NAME: &str = "a_read_after_a_seccomp_filter_runs_as_made";
    if common::child_role().as_deref() == Some("child") {
        return seccomp_child();
    }
    let _turn = serial();
    common::assert_child_passes(NAME, "child");
}

extern "C" fn exit_on_xfsz(_: libc::c_int) {
    let msg: &[u8] = if flexsc_scheduler::in_user_thread() {
        b"handler on a user thread\n"
    } else {
        b"handler elsewhere\n"
    };
    // SAFETY: writes a static message.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    // SAFETY: ends the process.
    unsafe { syscall(libc::SYS_exit_group, [0; 6]) };
}

/// A user thread posts an open that creates a marker file, behind a long read on the
/// service thread; then a lone user thread ends the process with exit_group, from a
/// signal handler (`in_handler`, delivered as its pwrite64 past RLIMIT_FSIZE returns, the
/// pages borrowed) or as a plain call. exit_group lets every posted call finish first
/// (`Shared::quiesce`): the marker must exist afterwards.
fn exit_child(in_handler: bool, marker: &str) {
    let marker = std::ffi::CString::new(marker).unwrap();
    small_files_with_xfsz_handler(exit_on_xfsz);
    let scheduler = lone_rule_scheduler();
    if let Mode::Direct { reason } = &scheduler.layout().mode {
        eprintln!(
            "SKIPPED {}: no service thread ({reason})",
            std::thread::current().name().unwrap_or("?")
        );
        std::fs::write(marker.to_str().unwrap(), b"").unwrap();
        return;
    }
    let file = tempfile::tempfile().expect("a temporary file");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file) as u64;
    let marker_addr = marker.as_ptr() as u64;
    scheduler.block_on(move || {
        let _long = spawn_long_read(512 << 20);
        yield_now(); // the long read is posted and rung
        let _creator = spawn(move || {
            let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC) as u64;
            // SAFETY: the path outlives the process.
            unsafe {
                syscall(
                    libc::SYS_openat,
                    [libc::AT_FDCWD as u64, marker_addr, flags, 0o600, 0, 0],
                )
            }
        });
        yield_now(); // the creator starts
        yield_now(); // the creator posts its open (behind the long read)
        if in_handler {
            let byte = 7u8;
            // SAFETY: a one-byte write from this stack (EFBIG, and SIGXFSZ: the handler
            // ends the process).
            unsafe { syscall(libc::SYS_pwrite64, [fd, &byte as *const u8 as u64, 1, 8192, 0, 0]) };
        } else {
            // SAFETY: ends the process.
            unsafe { syscall(libc::SYS_exit_group, [0; 6]) };
        }
        unreachable!("the process ended");
    });
}

#[test]
fn exit_group_from_a_signal_handler_lets_posted_calls_finish() {
    const NAME: &str = "exit_group_from_a_signal_handler_lets_posted_calls_finish";
    if let (Some(role), Ok(marker)) = (common::child_role(), std::env::var("FLEXSC_TEST_MARKER")) {
        return exit_child(role == "handler", &marker);
    }
    let _turn = serial();
    for role in ["plain", "handler"] {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        std::env::set_var("FLEXSC_TEST_MARKER", &marker);
        let out = common::run_child(NAME, role, None);
        std::env::remove_var("FLEXSC_TEST_MARKER");
        assert!(out.status.success(), "child {role}: {:?}", out.status);
        if !marker.exists() {
            common::show(&out);
        }
        assert!(
            marker.exists(),
            "child {role}: the posted open never ran before the exit"
        );
    }
}
