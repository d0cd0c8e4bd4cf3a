//! Calls that would wait on a socket or pipe are parked in the service thread's io_uring
//! (see `kernel-side/src/uring.rs`) instead of occupying a blocking worker: they complete
//! when their data comes, other calls keep completing meanwhile, many of them need no
//! worker at all, shutdown finishes them, and where io_uring's answer could differ from
//! the blocking call's (a receive timeout, `O_NONBLOCK`, a short write) the answer is
//! still the blocking call's.
//!
//! Each test skips, saying why, where the kernel cannot park (no io_uring, or no
//! `FUTEX_WAIT` in it) or the runtime has no service thread (one usable core).

use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "support/uring.rs"]
mod uring;

use flexsc_kernel_side::{Runtime, Stats};
use flexsc_shim::{Call, Push, Submitter};

fn runtime(workers: usize) -> Option<Runtime> {
    uring::uring_runtime(
        Runtime::builder().workers(workers),
        flexsc_kernel_side::uring::probe_parking,
    )
}

fn socketpair() -> [i32; 2] {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into `fds`.
    assert_eq!(
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) },
        0
    );
    fds
}

fn close(fd: i32) {
    // SAFETY: the test's own descriptor.
    unsafe { libc::close(fd) };
}

fn send_direct(fd: i32, bytes: &[u8]) {
    // SAFETY: writes from a live buffer.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n, bytes.len() as isize);
}

/// Waits (bounded, not timed: a hang would be the bug) until `cond` holds of the stats.
fn wait_for(rt: &Runtime, what: &str, cond: impl Fn(&Stats) -> bool) {
    let start = Instant::now();
    while !cond(&rt.stats()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn recv_args(fd: i32, buf: &mut [u8]) -> [u64; 6] {
    [fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0]
}

#[test]
fn a_blocked_recv_completes_through_the_ring_while_other_calls_complete() {
    let Some(rt) = runtime(64) else { return };
    let [a, b] = socketpair();
    std::thread::scope(|s| {
        let rt = &rt;
        let receiver = s.spawn(move || {
            let mut me = rt.submitter().expect("a page");
            let mut buf = [0u8; 64];
            // SAFETY: recvfrom into a live buffer.
            let n = unsafe { me.call(libc::SYS_recvfrom as u64, recv_args(a, &mut buf)) };
            (n, buf)
        });
        wait_for(rt, "the recv is parked", |s| s.uring_parked == 1);
        // Meanwhile other calls keep completing, on the same service thread.
        let mut me = rt.submitter().expect("a page");
        let file = tempfile::tempfile().expect("a file");
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd() as u64;
        let data = [5u8; 512];
        for i in 0..200u64 {
            // SAFETY: getppid, and a pwrite from a live buffer to the test's file.
            unsafe {
                assert_eq!(me.call(libc::SYS_getppid as u64, [0; 6]), libc::getppid() as i64);
                let args = [fd, data.as_ptr() as u64, 512, i * 512, 0, 0];
                assert_eq!(me.call(libc::SYS_pwrite64 as u64, args), 512);
            }
        }
        assert!(!receiver.is_finished(), "the recv waits for its data");
        send_direct(b, b"hello");
        let (n, buf) = receiver.join().expect("receiver");
        assert_eq!(n, 5);
        assert_eq!(&buf[..5], b"hello");
    });
    let stats = rt.shutdown();
    assert_eq!(stats.handoffs, 0, "no blocking worker was needed");
    assert_eq!(stats.uring_parked, 1);
    close(a);
    close(b);
}

#[test]
fn many_blocked_socket_reads_do_not_grow_the_worker_pool() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50;
    // Two workers: if the reads went to workers, most would be declined.
    let Some(rt) = runtime(2) else { return };
    let pairs: Vec<[i32; 2]> = (0..THREADS * PER_THREAD).map(|_| socketpair()).collect();
    let (posted_tx, posted_rx) = mpsc::channel();
    std::thread::scope(|s| {
        let rt = &rt;
        let mut readers = Vec::new();
        for t in 0..THREADS {
            let mine: Vec<i32> = pairs[t * PER_THREAD..(t + 1) * PER_THREAD]
                .iter()
                .map(|p| p[0])
                .collect();
            let posted_tx = posted_tx.clone();
            readers.push(s.spawn(move || {
                let mut me: Submitter = rt.submitter().expect("a page");
                let mut bufs = vec![[0u8; 16]; PER_THREAD];
                let mut tickets = Vec::new();
                for (fd, buf) in mine.iter().zip(bufs.iter_mut()) {
                    let args = [*fd as u64, buf.as_mut_ptr() as u64, 16, 0, 0, 0];
                    // SAFETY: a read into a buffer that outlives the ticket.
                    match unsafe { me.push(libc::SYS_read as u64, args) } {
                        Push::Posted(t) => tickets.push(t),
                        other => panic!("expected a posted read, got {other:?}"),
                    }
                }
                me.submit();
                posted_tx.send(()).expect("main waits");
                let results: Vec<i64> = tickets.into_iter().map(|t| me.wait(t)).collect();
                (results, bufs)
            }));
        }
        for _ in 0..THREADS {
            posted_rx.recv().expect("a reader posted");
        }
        wait_for(rt, "every read is parked", |s| {
            s.uring_parked == (THREADS * PER_THREAD) as u64
        });
        // Checked after the data is sent: a failed check must not leave the readers
        // waiting forever inside the scope.
        let handed_off = rt.stats().handoffs;
        for (i, pair) in pairs.iter().enumerate() {
            send_direct(pair[1], format!("msg {i:05}").as_bytes());
        }
        for (t, reader) in readers.into_iter().enumerate() {
            let (results, bufs) = reader.join().expect("reader");
            for (j, (n, buf)) in results.iter().zip(&bufs).enumerate() {
                let want = format!("msg {:05}", t * PER_THREAD + j);
                assert_eq!(*n, want.len() as i64);
                assert_eq!(&buf[..want.len()], want.as_bytes());
            }
        }
        assert_eq!(
            handed_off, 0,
            "no read went to a blocking worker while they were parked"
        );
    });
    let stats = rt.shutdown();
    assert_eq!((stats.handoffs, stats.declined), (0, 0));
    for p in pairs {
        close(p[0]);
        close(p[1]);
    }
}

#[test]
fn shutdown_with_calls_parked_in_the_ring_loses_nothing() {
    let Some(rt) = runtime(64) else { return };
    let [a, b] = socketpair();
    let shared = rt.shared().clone();
    let (result_tx, result_rx) = mpsc::channel();
    let receiver = std::thread::spawn(move || {
        let mut me = Submitter::new(shared).expect("a page");
        let mut buf = [0u8; 8];
        // SAFETY: recvfrom into a live buffer.
        let n = unsafe { me.call(libc::SYS_recvfrom as u64, recv_args(a, &mut buf)) };
        result_tx.send((n, buf)).expect("main waits");
    });
    wait_for(&rt, "the recv is parked", |s| s.uring_parked == 1);
    let (stats_tx, stats_rx) = mpsc::channel();
    let stopper = std::thread::spawn(move || stats_tx.send(rt.shutdown()).expect("main waits"));
    // Shutdown waits for the parked call, as it waits for the workers' calls.
    assert!(
        stats_rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "shutdown returned with a call still parked"
    );
    send_direct(b, b"late");
    let (n, buf) = result_rx.recv().expect("the recv finished");
    assert_eq!(n, 4);
    assert_eq!(&buf[..4], b"late");
    let stats = stats_rx.recv().expect("shutdown finished");
    stopper.join().expect("stopper");
    receiver.join().expect("receiver");
    // (The call's own counters are written by its owner after it wakes, so they may
    // miss the snapshot shutdown returns.)
    assert_eq!(stats.uring_parked, 1);
    assert_eq!((stats.handoffs, stats.declined), (0, 0));
    close(a);
    close(b);
}

#[test]
fn a_receive_timeout_is_kept_and_nonblocking_sockets_answer_at_once() {
    let Some(rt) = runtime(64) else { return };
    let mut me = rt.submitter().expect("a page");
    let [a, b] = socketpair();
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    // SAFETY: setsockopt reads one timeval.
    let set = unsafe {
        libc::setsockopt(
            a,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    assert_eq!(set, 0);
    let mut buf = [0u8; 8];
    let direct = loop {
        // SAFETY: recvfrom into a live buffer.
        let r = unsafe { flexsc_shim::sys::syscall6(libc::SYS_recvfrom as u64, recv_args(a, &mut buf)) };
        // A signal to the test process may cut the wait short; the timeout is what we test.
        if r != -(libc::EINTR as i64) {
            break r;
        }
    };
    // SAFETY: as above.
    let ours = unsafe { me.call(libc::SYS_recvfrom as u64, recv_args(a, &mut buf)) };
    assert_eq!(
        direct,
        -(libc::EAGAIN as i64),
        "the timeout ends a direct recv with EAGAIN"
    );
    assert_eq!(ours, direct, "and the delegated one the same way");
    assert_eq!(
        rt.stats().uring_parked,
        0,
        "a socket with a timeout is not parked"
    );

    let [c, d] = socketpair();
    // SAFETY: fcntl on the test's own descriptor.
    unsafe { libc::fcntl(c, libc::F_SETFL, libc::O_NONBLOCK) };
    // SAFETY: as above.
    let ours = unsafe { me.call(libc::SYS_recvfrom as u64, recv_args(c, &mut buf)) };
    assert_eq!(ours, -(libc::EAGAIN as i64));
    assert_eq!(rt.stats().uring_parked, 0);
    assert_eq!(rt.stats().handoffs, 1, "only the timed recv went to a worker");
    drop(me);
    for fd in [a, b, c, d] {
        close(fd);
    }
}

#[test]
fn a_parked_write_to_a_full_pipe_writes_everything() {
    let Some(rt) = runtime(64) else { return };
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [r, w] = fds;
    // SAFETY: fcntl on the test's own pipe.
    let size = unsafe { libc::fcntl(w, libc::F_SETPIPE_SZ, 4096) };
    assert!(size >= 4096);
    // Fill the pipe, so the write's non-blocking attempt finds no room.
    let fill = vec![0u8; size as usize];
    send_direct(w, &fill);
    let data: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    std::thread::scope(|s| {
        let rt = &rt;
        let data = &data;
        let writer = s.spawn(move || {
            let mut me = rt.submitter().expect("a page");
            let args = [w as u64, data.as_ptr() as u64, data.len() as u64, 0, 0, 0];
            // SAFETY: a write from a live buffer.
            unsafe { me.call(libc::SYS_write as u64, args) }
        });
        wait_for(rt, "the write is parked", |s| s.uring_parked == 1);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 8192];
        while got.len() < fill.len() + data.len() {
            // SAFETY: a read into a live buffer.
            let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
            assert!(n > 0, "read {n}");
            got.extend_from_slice(&buf[..n as usize]);
        }
        assert_eq!(
            writer.join().expect("writer"),
            data.len() as i64,
            "a blocking write writes everything"
        );
        assert_eq!(&got[fill.len()..], &data[..]);
    });
    close(r);
    close(w);
}

#[test]
fn a_parked_accept_takes_the_connection() {
    let Some(rt) = runtime(64) else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("address");
    use std::os::fd::AsRawFd;
    let lfd = listener.as_raw_fd();
    std::thread::scope(|s| {
        let rt = &rt;
        let acceptor = s.spawn(move || {
            let mut me = rt.submitter().expect("a page");
            // SAFETY: accept4 with no address buffer.
            unsafe {
                me.call(
                    libc::SYS_accept4 as u64,
                    [lfd as u64, 0, 0, libc::SOCK_CLOEXEC as u64, 0, 0],
                )
            }
        });
        wait_for(rt, "the accept is parked", |s| s.uring_parked == 1);
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let fd = acceptor.join().expect("acceptor");
        assert!(fd >= 0, "accept4 answered {fd}");
        // SAFETY: F_GETFD on the accepted descriptor.
        let flags = unsafe { libc::fcntl(fd as i32, libc::F_GETFD) };
        assert_eq!(
            flags & libc::FD_CLOEXEC,
            libc::FD_CLOEXEC,
            "accept4's flags were kept"
        );
        close(fd as i32);
        drop(client);
    });
}

#[test]
fn a_parked_recvmsg_reports_truncation_and_the_sender_as_a_blocking_one() {
    let Some(rt) = runtime(64) else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let rx = std::os::unix::net::UnixDatagram::bind(&a).expect("bind a");
    let tx = std::os::unix::net::UnixDatagram::bind(&b).expect("bind b");
    use std::os::fd::AsRawFd;
    let fd = rx.as_raw_fd();
    // One receive, made directly or through the pages: a 4-byte buffer for a 10-byte
    // datagram (MSG_TRUNC), and room for the sender's address.
    let receive = |through: Option<&Runtime>, send_after_parking: bool| {
        let mut data = [0u8; 4];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: all-zero is a valid sockaddr_un and msghdr.
        let mut name: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut name as *mut libc::sockaddr_un).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        let args = [fd as u64, &mut msg as *mut libc::msghdr as u64, 0, 0, 0, 0];
        let n = match through {
            None => {
                tx.send_to(b"0123456789", &a).expect("send");
                // SAFETY: recvmsg into live buffers.
                unsafe { flexsc_shim::sys::syscall6(libc::SYS_recvmsg as u64, args) }
            }
            Some(rt) => std::thread::scope(|s| {
                let parked_before = rt.stats().uring_parked;
                let receiver = s.spawn(|| {
                    let mut me = rt.submitter().expect("a page");
                    // SAFETY: as above.
                    unsafe { me.call(libc::SYS_recvmsg as u64, args) }
                });
                if send_after_parking {
                    wait_for(rt, "the recvmsg is parked", |st| {
                        st.uring_parked == parked_before + 1
                    });
                }
                tx.send_to(b"0123456789", &a).expect("send");
                receiver.join().expect("receiver")
            }),
        };
        let path_len = msg.msg_namelen as usize - std::mem::size_of::<libc::sa_family_t>();
        let path: Vec<u8> = name.sun_path[..path_len].iter().map(|&c| c as u8).collect();
        (n, data, msg.msg_flags & libc::MSG_TRUNC, msg.msg_namelen, path)
    };
    let direct = receive(None, false);
    assert_eq!(direct.0, 4);
    assert_eq!(direct.2, libc::MSG_TRUNC, "the direct receive says it truncated");
    let parked = receive(Some(&rt), true);
    assert_eq!(
        parked, direct,
        "(result, data, MSG_TRUNC, address length, address)"
    );
    assert_eq!(rt.stats().uring_parked, 1);
}

#[test]
fn a_receive_low_water_mark_is_kept() {
    let Some(rt) = runtime(64) else { return };
    let [a, b] = socketpair();
    let low: libc::c_int = 8;
    // SAFETY: setsockopt reads one int.
    let set = unsafe {
        libc::setsockopt(
            a,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&low as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    assert_eq!(set, 0);
    std::thread::scope(|s| {
        let rt = &rt;
        let receiver = s.spawn(move || {
            let mut me = rt.submitter().expect("a page");
            let mut buf = [0u8; 16];
            // SAFETY: recvfrom into a live buffer.
            let n = unsafe { me.call(libc::SYS_recvfrom as u64, recv_args(a, &mut buf)) };
            (n, buf)
        });
        // Nothing to read: the non-blocking attempt answers EAGAIN, and a socket with a
        // mark above 1 goes to a worker, not to the ring.
        wait_for(rt, "the recv is sent away", |s| s.handoffs == 1);
        // The blocking recv waits for the mark (8 bytes), not for the first 4.
        send_direct(b, b"1234");
        std::thread::sleep(Duration::from_millis(50));
        send_direct(b, b"5678");
        let (n, buf) = receiver.join().expect("receiver");
        assert_eq!(n, 8);
        assert_eq!(&buf[..8], b"12345678");
    });
    assert_eq!(
        rt.stats().uring_parked,
        0,
        "a mark above 1 keeps the call on a worker"
    );
    close(a);
    close(b);
}

#[test]
fn writes_to_memory_devices_run_inline_without_a_worker() {
    let Some(rt) = runtime(64) else { return };
    use std::os::fd::AsRawFd;
    let mut me = rt.submitter().expect("a page");
    let data = [1u8; 64];
    // /dev/null takes RWF_NOWAIT; /dev/full refuses it (EOPNOTSUPP) but never waits.
    for (dev, want) in [("/dev/null", 64), ("/dev/full", -(libc::ENOSPC as i64))] {
        let file = std::fs::OpenOptions::new().write(true).open(dev).expect(dev);
        for _ in 0..10 {
            let args = [file.as_raw_fd() as u64, data.as_ptr() as u64, 64, 0, 0, 0];
            // SAFETY: a write from a live buffer.
            assert_eq!(unsafe { me.call(libc::SYS_write as u64, args) }, want, "{dev}");
        }
    }
    drop(me);
    let stats = rt.shutdown();
    assert_eq!(
        (stats.handoffs, stats.uring_parked),
        (0, 0),
        "memory devices never wait"
    );
    assert_eq!(stats.syscalls[libc::SYS_write as usize].delegated, 20);
}

/// One `poll` of one descriptor through the runtime, as `[ret, revents]`.
fn poll_one(me: &mut Submitter, fd: i32, events: i16, timeout_ms: i32) -> (i64, i16) {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: -1,
    };
    let args = [
        &mut pfd as *mut libc::pollfd as u64,
        1,
        timeout_ms as i64 as u64,
        0,
        0,
        0,
    ];
    // SAFETY: poll of a live pollfd.
    let ret = unsafe { me.call(libc::SYS_poll as u64, args) };
    (ret, pfd.revents)
}

/// The same poll made directly.
fn poll_direct(fd: i32, events: i16, timeout_ms: i32) -> (i64, i16) {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: -1,
    };
    // SAFETY: poll of a live pollfd.
    let ret = unsafe { libc::poll(&mut pfd, 1, timeout_ms) } as i64;
    (ret, pfd.revents)
}

/// A poll of one descriptor that must wait is parked in the ring (no worker): it returns
/// what a direct poll returns when data comes, when the peer hangs up, and when its
/// timeout passes (not before it).
#[test]
fn a_waiting_poll_is_parked_and_answers_as_a_direct_poll() {
    let Some(rt) = runtime(64) else { return };
    let [a, b] = socketpair();
    let [c, d] = socketpair();
    std::thread::scope(|s| {
        let rt = &rt;
        // Data comes.
        let waiter = s.spawn(move || poll_one(&mut rt.submitter().expect("a page"), a, libc::POLLIN, -1));
        wait_for(rt, "the poll is parked", |s| s.uring_parked == 1);
        assert!(!waiter.is_finished(), "the poll waits for data");
        send_direct(b, b"x");
        assert_eq!(waiter.join().expect("poller"), (1, libc::POLLIN));
        assert_eq!(poll_direct(a, libc::POLLIN, -1), (1, libc::POLLIN));
        // The peer hangs up, on a poll with a long timeout.
        let waiter = s.spawn(move || poll_one(&mut rt.submitter().expect("a page"), c, libc::POLLIN, 60_000));
        wait_for(rt, "the second poll is parked", |s| s.uring_parked == 2);
        close(d);
        let parked = waiter.join().expect("poller");
        assert_eq!(parked, poll_direct(c, libc::POLLIN, 60_000));
        assert_ne!(parked.1 & libc::POLLHUP, 0, "{parked:?}");
    });
    // Nothing comes: the timeout ends it, with no events, after at least the timeout.
    let mut me = rt.submitter().expect("a page");
    let mut byte = [0u8; 1];
    // SAFETY: reads the byte sent above into a live buffer.
    assert_eq!(unsafe { libc::read(a, byte.as_mut_ptr().cast(), 1) }, 1);
    let start = Instant::now();
    assert_eq!(poll_one(&mut me, a, libc::POLLIN, 30), (0, 0));
    assert!(
        start.elapsed() >= Duration::from_millis(30),
        "{:?}",
        start.elapsed()
    );
    drop(me);
    let stats = rt.shutdown();
    assert_eq!(stats.handoffs, 0, "no blocking worker was needed");
    assert_eq!(stats.uring_parked, 3);
    assert_eq!(stats.syscalls[libc::SYS_poll as usize].delegated, 3);
    for fd in [a, b, c] {
        close(fd);
    }
}

/// A call made to wait for the device is no batch call on the io_uring backend (a pass
/// waits for every SQE of its batch): an `fsync` and an `fdatasync` are parked in the
/// ring, whose own workers wait, and complete in a later pass; an `msync` with `MS_SYNC`,
/// which io_uring has no opcode for, goes to a blocking worker. Each goes in a batch with
/// a `getppid` (alone in its pass, a device wait runs inline).
#[test]
fn an_fsync_is_parked_not_waited_for_in_the_batch() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    // A caller that only waits hands its batch over whole (one pass sees both calls).
    let builder = Runtime::builder().workers(4).caller_helps(false);
    let Some(rt) = uring::uring_runtime(builder, flexsc_kernel_side::uring::probe_parking) else {
        return;
    };
    let mut file = tempfile::tempfile().expect("a file");
    file.write_all(&[3u8; 8192]).expect("written");
    let fd = file.as_raw_fd() as u64;
    let mut me = Submitter::new(std::sync::Arc::clone(rt.shared())).expect("a page");
    let parent = std::os::unix::process::parent_id() as i64;
    let mut with_getppid = |nr: libc::c_long, args: [u64; 6]| {
        let calls = [Call::new(libc::SYS_getppid, [0; 6]), Call::new(nr, args)];
        let mut results = [0; 2];
        // SAFETY: getppid, and a call on the test's own descriptor or mapping.
        unsafe { me.call_batch(&calls, &mut results) };
        assert_eq!(results[0], parent);
        results[1]
    };
    assert_eq!(with_getppid(libc::SYS_fsync, [fd, 0, 0, 0, 0, 0]), 0);
    assert_eq!(with_getppid(libc::SYS_fdatasync, [fd, 0, 0, 0, 0, 0]), 0);
    let closed = [u64::MAX >> 33, 0, 0, 0, 0, 0]; // a descriptor that is not open
    assert_eq!(with_getppid(libc::SYS_fsync, closed), -(libc::EBADF as i64));
    // SAFETY: a new shared mapping of the test's file, unmapped below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd as i32,
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    let msync = [map as u64, 8192, libc::MS_SYNC as u64, 0, 0, 0];
    assert_eq!(with_getppid(libc::SYS_msync, msync), 0);
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(map, 8192) };
    drop(me);
    let stats = rt.shutdown();
    assert_eq!(
        (stats.uring_parked, stats.handoffs),
        (3, 1),
        "parked: the fsyncs; to a worker: the msync"
    );
    let fsync = &stats.syscalls[libc::SYS_fsync as usize];
    assert_eq!((fsync.delegated, fsync.errors), (2, 1));
}

/// The service thread alone reaps the completions of the calls parked in its ring. An
/// open that may wait until another thread acts (a FIFO's: for its other end) therefore
/// leaves the service thread while calls are parked there: run inline, or in the ring's
/// batch (an `O_CREAT` or `O_TRUNC` open goes there on this backend, and a pass waits for
/// its batch), it held every parked call's answer until it returned. Here a `recv` is
/// parked, then a FIFO is opened with no other end: the `recv` still gets its data, before
/// the other end comes. (Before, the `recv` waited as long as the open; had the FIFO's
/// other end been waiting for that `recv`, the process deadlocked, where natively it does
/// not.) For `openat` as it comes, with `O_CREAT | O_TRUNC` (a shell's `>`), and `openat2`.
fn an_open_of_a_fifo_does_not_hold_up_the_parked_calls(nr: libc::c_long, flags: i32) {
    let Some(rt) = runtime(64) else { return };
    let [a, b] = socketpair();
    let dir = tempfile::tempdir().expect("a directory");
    let fifo = std::ffi::CString::new(dir.path().join("fifo").to_str().expect("utf-8")).expect("no NUL");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let flags = flags | libc::O_CLOEXEC;
    // `struct open_how`: flags, mode (only with O_CREAT: openat2 refuses one otherwise),
    // resolve.
    let mode = if flags & libc::O_CREAT != 0 { 0o600 } else { 0 };
    let how: [u64; 3] = [flags as u64, mode, 0];
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let rt = &rt;
        s.spawn(move || {
            let mut me = rt.submitter().expect("a page");
            let mut buf = [0u8; 64];
            // SAFETY: recvfrom into a live buffer.
            let n = unsafe { me.call(libc::SYS_recvfrom as u64, recv_args(a, &mut buf)) };
            let _ = tx.send((n, buf));
        });
        wait_for(rt, "the recv is parked", |s| s.uring_parked == 1);
        let (path, how) = (&fifo, &how);
        let opener = s.spawn(move || {
            let mut me = rt.submitter().expect("a page");
            let args = if nr == libc::SYS_openat2 {
                let size = std::mem::size_of_val(how) as u64;
                [
                    libc::AT_FDCWD as u64,
                    path.as_ptr() as u64,
                    how.as_ptr() as u64,
                    size,
                    0,
                    0,
                ]
            } else {
                [
                    libc::AT_FDCWD as u64,
                    path.as_ptr() as u64,
                    flags as u64,
                    0o600,
                    0,
                    0,
                ]
            };
            // SAFETY: the open reads a path (and an open_how) that outlive the call.
            unsafe { me.call(nr as u64, args) }
        });
        // Bounded, not timed (and no panic before the FIFO is opened below, or the scope
        // would wait for the opener for ever).
        let start = Instant::now();
        while rt.stats().handoffs == 0 && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let handed_off = rt.stats().handoffs == 1;
        send_direct(b, b"hello");
        // Without the rule the recv's answer never comes while the open waits.
        let got = rx.recv_timeout(Duration::from_secs(30));
        let waiting = !opener.is_finished();
        // SAFETY: opens the FIFO at both ends at once (no wait), so the open returns
        // whatever happened; closed below.
        let other = unsafe { libc::open(fifo.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        let r = opener.join().expect("opener");
        close(other);
        close(r as i32);
        assert!(handed_off, "the FIFO's open was handed to a worker");
        let (n, buf) = got.expect("the parked recv got its data while the FIFO's open waited");
        assert_eq!((n, &buf[..5]), (5, &b"hello"[..]));
        assert!(waiting, "the FIFO's open waited for its other end");
        assert!(other >= 0 && r >= 0, "the FIFO opened: {r}");
    });
    let stats = rt.shutdown();
    assert_eq!(
        (stats.uring_parked, stats.handoffs),
        (1, 1),
        "parked: the recv; to a worker: the FIFO's open"
    );
    close(a);
    close(b);
}

#[test]
fn an_open_that_waits_for_a_fifo_does_not_hold_up_the_parked_calls() {
    an_open_of_a_fifo_does_not_hold_up_the_parked_calls(libc::SYS_openat, libc::O_RDONLY);
}

#[test]
fn an_open_with_o_creat_of_a_fifo_does_not_hold_up_the_parked_calls() {
    an_open_of_a_fifo_does_not_hold_up_the_parked_calls(
        libc::SYS_openat,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
    );
}

#[test]
fn an_openat2_of_a_fifo_does_not_hold_up_the_parked_calls() {
    an_open_of_a_fifo_does_not_hold_up_the_parked_calls(libc::SYS_openat2, libc::O_RDONLY);
}

/// The same rule leaves every other open where it was: with a call parked, a regular
/// file's open and `/dev/null`'s run inline (the look costs a `statx`, not a worker).
#[test]
fn with_calls_parked_other_opens_still_run_inline() {
    let Some(rt) = runtime(64) else { return };
    let [a, b] = socketpair();
    let file = tempfile::NamedTempFile::new().expect("a file");
    let regular = std::ffi::CString::new(file.path().to_str().expect("utf-8")).expect("no NUL");
    std::thread::scope(|s| {
        let rt = &rt;
        let receiver = s.spawn(move || {
            let mut me = rt.submitter().expect("a page");
            let mut buf = [0u8; 64];
            // SAFETY: recvfrom into a live buffer.
            unsafe { me.call(libc::SYS_recvfrom as u64, recv_args(a, &mut buf)) }
        });
        wait_for(rt, "the recv is parked", |s| s.uring_parked == 1);
        let mut me = rt.submitter().expect("a page");
        for path in [regular.as_c_str(), c"/dev/null"] {
            let args = [
                libc::AT_FDCWD as u64,
                path.as_ptr() as u64,
                (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
                0,
                0,
                0,
            ];
            // SAFETY: openat reads a path that outlives the call.
            let fd = unsafe { me.call(libc::SYS_openat as u64, args) };
            assert!(fd >= 0, "{path:?} opened: {fd}");
            close(fd as i32);
        }
        send_direct(b, b"x");
        assert_eq!(receiver.join().expect("receiver"), 1);
    });
    let stats = rt.shutdown();
    assert_eq!(stats.handoffs, 0, "no open went to a worker");
    let opens = &stats.syscalls[libc::SYS_openat as usize];
    assert_eq!(opens.delegated, 2, "both opens ran on the service thread");
    close(a);
    close(b);
}
