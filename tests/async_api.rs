//! The async API (`flexsc::fs`, `flexsc::net`, `flexsc::aio::syscall`, the executor):
//! results equal to the direct calls, under our executor and under tokio, and cancellation
//! that neither frees memory the kernel may still write nor leaks a descriptor.

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flexsc::aio::{syscall, syscall_owning};
use flexsc::fs::{File, OpenOptions};
use flexsc::net::{TcpListener, TcpStream};

fn errno_of<T>(r: std::io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// Waits for `cond`, failing after a generous deadline (a correctness bound, not a timing
/// claim: a lost wake-up would hang forever).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn files_round_trip_like_std() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let content: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    flexsc::block_on(async {
        let file = File::create(&path).await.unwrap();
        let (res, back) = file.write_all_at(content.clone(), 0).await;
        res.unwrap();
        assert_eq!(back, content, "the buffer comes back unchanged");
        file.sync_all().await.unwrap();
        file.sync_data().await.unwrap();
        file.close().await.unwrap();

        let file = File::open(&path).await.unwrap();
        let (n, buf) = file.read_at(Vec::with_capacity(4096), 1000).await;
        assert_eq!(n.unwrap(), 4096);
        assert_eq!(buf, content[1000..5096]);
        let (n, buf) = file.read_at(Vec::with_capacity(10), 200_000).await;
        assert_eq!(n.unwrap(), 0, "past the end");
        assert!(buf.is_empty());

        assert_eq!(file.read_to_end().await.unwrap(), content);
        assert_eq!(
            flexsc::fs::read(&path).await.unwrap(),
            std::fs::read(&path).unwrap()
        );

        let meta = file.metadata().await.unwrap();
        let std_meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), std_meta.len());
        assert!(meta.is_file() && !meta.is_dir());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.ino(), std_meta.ino());
        assert_eq!(meta.mode(), std_meta.mode());
        assert_eq!(meta.modified(), std_meta.modified().unwrap());
        let dir_meta = flexsc::fs::metadata(dir.path()).await.unwrap();
        assert!(dir_meta.is_dir());

        flexsc::fs::write(dir.path().join("small"), b"hello".to_vec())
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("small")).unwrap(), b"hello");
    });
}

#[test]
fn errors_are_the_direct_calls_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    flexsc::block_on(async {
        let ours = File::open(&missing).await;
        let theirs = std::fs::File::open(&missing);
        assert_eq!(errno_of(ours), errno_of(theirs));
        assert_eq!(errno_of(File::open(&missing).await), Some(libc::ENOENT));

        let path = dir.path().join("exists");
        std::fs::write(&path, b"x").unwrap();
        let ours = OpenOptions::new().write(true).create_new(true).open(&path).await;
        assert_eq!(errno_of(ours), Some(libc::EEXIST));

        // Reading a write-only file: EBADF, as pread answers directly.
        let wo = OpenOptions::new().write(true).open(&path).await.unwrap();
        let (res, _) = wo.read_at(Vec::with_capacity(8), 0).await;
        let direct = std::os::unix::fs::FileExt::read_at(
            &std::fs::OpenOptions::new().write(true).open(&path).unwrap(),
            &mut [0u8; 8],
            0,
        );
        assert_eq!(errno_of(res), errno_of(direct));
        let err = OpenOptions::new().open(&path).await.unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::InvalidInput,
            "no access mode given"
        );
        assert_eq!(errno_of(flexsc::fs::metadata(&missing).await), Some(libc::ENOENT));
        // A path with a NUL byte never reaches the kernel.
        let err = File::open("a\0b").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
}

#[test]
fn raw_syscall_future_matches_direct_call() {
    // SAFETY: getppid and getpid take no arguments.
    let (ppid, pid) = flexsc::block_on(async {
        (
            unsafe { syscall(libc::SYS_getppid, [0; 6]) }.await,
            unsafe { syscall(libc::SYS_getpid, [0; 6]) }.await,
        )
    });
    // SAFETY: as above.
    assert_eq!(ppid, unsafe { libc::getppid() } as i64);
    assert_eq!(pid, std::process::id() as i64);
    // A bad descriptor: the same negated errno as the instruction.
    // SAFETY: close of an invalid descriptor touches nothing.
    let ret = flexsc::block_on(unsafe { syscall(libc::SYS_close, [u32::MAX as u64 >> 1, 0, 0, 0, 0, 0]) });
    assert_eq!(ret, -(libc::EBADF as i64));
}

#[test]
fn many_concurrent_tasks_read_the_right_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks");
    let blocks = 512usize;
    let content: Vec<u8> = (0..blocks * 4096)
        .map(|i| (i / 4096 % 256) as u8 ^ (i % 13) as u8)
        .collect();
    std::fs::write(&path, &content).unwrap();
    let content = Arc::new(content);
    let rt = flexsc::executor::Runtime::builder().workers(2).build().unwrap();
    let file = rt.block_on(File::open(&path)).unwrap();
    let tasks: Vec<_> = (0..blocks)
        .map(|b| {
            let (file, content) = (file.clone(), Arc::clone(&content));
            rt.spawn(async move {
                for round in 0..4 {
                    let block = (b + round * 97) % blocks;
                    let (n, buf) = file
                        .read_at(Vec::with_capacity(4096), (block * 4096) as u64)
                        .await;
                    assert_eq!(n.unwrap(), 4096);
                    assert_eq!(buf[..], content[block * 4096..(block + 1) * 4096]);
                }
            })
        })
        .collect();
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn more_calls_than_entries_wait_for_room() {
    // 5,000 calls in flight at once: more than the 4,096 entries of the async pages.
    let n = 5000;
    let rt = flexsc::executor::Runtime::builder().workers(1).build().unwrap();
    let (r, w) = nix_pipe();
    let r = Arc::new(r);
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let r = Arc::clone(&r);
            rt.spawn(async move {
                // A one-byte read that waits for the writer below: it holds its entry.
                let args = [r.as_raw_fd() as u64, 0, 1, 0, 0, 0];
                let buf = vec![0u8; 1];
                let mut args = args;
                args[1] = buf.as_ptr() as u64;
                // SAFETY: the pointer is into `buf`'s heap block, owned by the op; the
                // op keeps `r` open.
                let (ret, (buf, _r)) = unsafe { syscall_owning(libc::SYS_read, args, (buf, r)) }.await;
                assert_eq!(ret, 1);
                buf[0]
            })
        })
        .collect();
    let mut w = std::fs::File::from(w);
    w.write_all(&vec![b'z'; n]).unwrap();
    let got = rt.block_on(async {
        let mut got = 0;
        for t in tasks {
            assert_eq!(t.await.unwrap(), b'z');
            got += 1;
        }
        got
    });
    assert_eq!(got, n);
}

fn nix_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Drops its flag when dropped: shows when the runtime let go of a buffer.
struct Tracked {
    buf: Vec<u8>,
    freed: Arc<AtomicBool>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.freed.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_dropped_read_keeps_its_buffer_until_the_call_completes() {
    let (r, w) = nix_pipe();
    let freed = Arc::new(AtomicBool::new(false));
    let tracked = Tracked {
        buf: vec![0u8; 64],
        freed: Arc::clone(&freed),
    };
    let args = [r.as_raw_fd() as u64, tracked.buf.as_ptr() as u64, 64, 0, 0, 0];
    // SAFETY: the pointer is into the tracked buffer's heap block, owned by the op; `r`
    // stays open until the end of the test.
    let mut read = Box::pin(unsafe { syscall_owning(libc::SYS_read, args, tracked) });
    // Poll once: the read is posted and waits in a blocking worker for data.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(read.as_mut().poll(&mut cx).is_pending());
    std::thread::sleep(Duration::from_millis(50));
    drop(read);
    assert!(
        !freed.load(Ordering::SeqCst),
        "the buffer must live while the read may write into it"
    );
    let mut w = std::fs::File::from(w);
    w.write_all(b"late data").unwrap();
    eventually("the abandoned read completes and frees its buffer", || {
        freed.load(Ordering::SeqCst)
    });
    // The abandoned read consumed the data: the pipe is empty now.
    // SAFETY: fcntl on our descriptor.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut rest = [0u8; 16];
    let err = std::fs::File::from(r).read(&mut rest).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
}

#[test]
fn a_dropped_accept_closes_the_connection_it_accepts() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    {
        let mut accept = Box::pin(listener.accept());
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(accept.as_mut().poll(&mut cx).is_pending());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The accept still runs: a client connects and is accepted by the orphan, which
    // closes the new descriptor, so the client reads end-of-stream (a leaked descriptor
    // would keep the connection open and the read would time out).
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        client.read(&mut buf).unwrap(),
        0,
        "the accepted connection was closed"
    );
}

#[test]
fn a_dropped_open_closes_the_file_it_opens() {
    // A FIFO's open waits for a writer: the open is in flight when the future is dropped.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    {
        let mut open = Box::pin(File::open(&fifo));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(open.as_mut().poll(&mut cx).is_pending());
    }
    // A writer lets the open finish; the orphan closes its read end, so the FIFO has no
    // reader left and a write fails with EPIPE (a leaked descriptor would keep it open).
    // The writer's own open waits for that reader: on a thread of its own, so that an
    // open that never waits (io_uring's inline try once answered this one without a
    // writer) fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::OpenOptions::new().write(true).open(&path));
    });
    let mut writer = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the abandoned open waits in the kernel and lets a writer in")
        .unwrap();
    eventually("the abandoned open's descriptor is closed", || {
        writer
            .write(b"x")
            .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
}

/// Two tasks open the two ends of a FIFO: each open waits for the other, so the first
/// waits on the service thread and the second is posted behind it. No thread sleeps on
/// a task's entry to take it back, so the runtime's relief thread hands the second to a
/// blocking worker once the pass has lasted long enough (this hung before).
#[test]
fn two_tasks_open_the_two_ends_of_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = flexsc::executor::Runtime::builder().workers(2).build().unwrap();
        let path = fifo.clone();
        let reader = rt.spawn(async move { File::open(&path).await });
        // Let the reader's open start waiting on the service thread first.
        std::thread::sleep(Duration::from_millis(100));
        let writer = rt.spawn(async move { OpenOptions::new().write(true).open(&fifo).await });
        let (w, r) = rt.block_on(async move { (writer.await.unwrap(), reader.await.unwrap()) });
        let _ = tx.send((w, r));
    });
    let (w, r) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("both ends of the FIFO open, whichever waits on the service thread");
    let (w, r) = (w.unwrap(), r.unwrap());
    // They are the two ends of one FIFO: a byte written into one comes out of the other.
    // SAFETY: one byte from a static into the write end, one byte into `got`.
    let got = unsafe {
        assert_eq!(libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1), 1);
        let mut got = [0u8; 1];
        assert_eq!(libc::read(r.as_raw_fd(), got.as_mut_ptr().cast(), 1), 1);
        got
    };
    assert_eq!(&got, b"x");
}

#[test]
fn a_file_outlives_its_handle_while_a_dropped_call_uses_it() {
    let (r, w) = nix_pipe();
    let file = File::from_std(std::fs::File::from(r));
    let fd = file.as_raw_fd();
    {
        let mut read = Box::pin(file.read_at(Vec::with_capacity(8), 0));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        // pread on a pipe fails at once with ESPIPE; either way the future is done or
        // dropped with the descriptor still held.
        let _ = read.as_mut().poll(&mut cx);
    }
    drop(file);
    drop(w);
    // Once nothing holds it, the descriptor is closed.
    // SAFETY: fcntl F_GETFD on a number: EBADF if closed.
    eventually(
        "the descriptor is closed",
        || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1,
    );
}

async fn echo_once(listener: &TcpListener) -> std::io::Result<()> {
    let (stream, _peer) = listener.accept().await?;
    loop {
        let (n, buf) = stream.read(Vec::with_capacity(1024)).await;
        if n? == 0 {
            return Ok(());
        }
        stream.write_all(buf).await.0?;
    }
}

async fn client(addr: std::net::SocketAddr, msg: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(addr).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addr);
    stream.write_all(msg.to_vec()).await.0.unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    loop {
        let (n, buf) = stream.read(Vec::with_capacity(4096)).await;
        if n.unwrap() == 0 {
            return got;
        }
        got.extend_from_slice(&buf);
    }
}

#[test]
fn tcp_echo_under_our_executor() {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let msg: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let rt = flexsc::executor::Runtime::builder().workers(2).build().unwrap();
    let l = Arc::clone(&listener);
    let server = rt.spawn(async move { echo_once(&l).await });
    let got = rt.block_on(client(addr, &msg));
    assert_eq!(got, msg);
    rt.block_on(server).unwrap().unwrap();
}

#[test]
fn the_futures_run_under_tokio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    std::fs::write(&path, b"under tokio").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let file = File::open(&path).await.unwrap();
        assert_eq!(file.read_to_end().await.unwrap(), b"under tokio");
        assert_eq!(file.metadata().await.unwrap().len(), 11);
        // Spawned on tokio's workers, many at once.
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let file = file.clone();
                tokio::spawn(async move {
                    let (n, buf) = file.read_at(Vec::with_capacity(5), (i % 6) as u64).await;
                    (n.unwrap(), buf)
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let (n, buf) = t.await.unwrap();
            let start = i % 6;
            assert_eq!(&buf[..n], &b"under tokio"[start..start + n]);
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { echo_once(&listener).await });
        assert_eq!(client(addr, b"ping").await, b"ping");
        server.await.unwrap().unwrap();
        // A tokio timeout drops a read that waits forever: cancellation under tokio.
        let (r, _w) = nix_pipe();
        let file = File::from_std(std::fs::File::from(r));
        let res = tokio::time::timeout(Duration::from_millis(20), async {
            let buf = vec![0u8; 8];
            let args = [file.as_raw_fd() as u64, buf.as_ptr() as u64, 8, 0, 0, 0];
            // SAFETY: the pointer is into the owned buffer; the op holds the file open.
            unsafe { syscall_owning(libc::SYS_read, args, (buf, file.clone())) }.await
        })
        .await;
        assert!(res.is_err(), "the read waits for data that never comes");
    });
}

#[test]
fn a_forked_child_runs_its_calls_directly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"child reads this").unwrap();
    // Start the runtime (and its async side) in the parent first.
    // SAFETY: getpid takes no arguments.
    assert_eq!(
        unsafe { flexsc::syscall(libc::SYS_getpid, [0; 6]) },
        std::process::id() as i64
    );
    flexsc::block_on(async { File::open(&path).await.unwrap() });
    let parent = std::process::id() as i64;
    // SAFETY: the child only makes calls and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // The service thread stayed in the parent: these would hang if posted.
        // SAFETY: getppid takes no arguments.
        let ok_sync = unsafe { flexsc::syscall(libc::SYS_getppid, [0; 6]) } == parent;
        let ok_async = flexsc::block_on(async {
            let file = File::open(&path).await.ok()?;
            let (n, buf) = file.read_at(Vec::with_capacity(64), 0).await;
            Some(n.ok()? == 16 && buf == b"child reads this")
        }) == Some(true);
        // SAFETY: _exit ends the child without running the parent's handlers.
        unsafe { libc::_exit(if ok_sync && ok_async { 0 } else { 1 }) };
    }
    let mut status = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    // SAFETY: waiting for our own child, without blocking.
    while unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == 0 {
        if Instant::now() > deadline {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child hung: its calls went to pages no service thread serves");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child's calls gave wrong results"
    );
}

#[test]
fn idle_connections_wait_in_io_uring_not_on_worker_threads() {
    let rt = match flexsc::global() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "SKIPPED {}: no runtime ({e})",
                std::thread::current().name().unwrap_or("?")
            );
            return;
        }
    };
    let stats = rt.stats();
    if !matches!(rt.mode(), flexsc::Mode::Service { .. }) {
        eprintln!(
            "SKIPPED {}: no service thread here ({})",
            std::thread::current().name().unwrap_or("?"),
            stats.backend
        );
        return;
    }
    if !(stats.backend.starts_with("auto") || stats.backend.starts_with("uring"))
        || flexsc_kernel_side::uring::probe_parking().is_err()
    {
        eprintln!(
            "SKIPPED {}: calls cannot wait in io_uring here (backend {})",
            std::thread::current().name().unwrap_or("?"),
            stats.backend
        );
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    const IDLE: usize = 32;
    let clients: Vec<_> = (0..IDLE)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let servers: Vec<_> = (0..IDLE)
        .map(|_| TcpStream::from_std(listener.accept().unwrap().0))
        .collect();
    let before = rt.stats();
    let exec = flexsc::executor::Runtime::builder().workers(1).build().unwrap();
    let reads: Vec<_> = servers
        .into_iter()
        .map(|s| {
            exec.spawn(async move {
                let (n, buf) = s.read(Vec::with_capacity(16)).await;
                (n.unwrap(), buf)
            })
        })
        .collect();
    // (Other tests of this binary share the runtime and may park calls too, so this
    // counts at least ours; the handoff count is not compared for the same reason.)
    eventually("every idle read is parked in io_uring", || {
        rt.stats().uring_parked >= before.uring_parked + IDLE as u64
    });
    for (i, mut c) in clients.into_iter().enumerate() {
        c.write_all(format!("hello {i}").as_bytes()).unwrap();
    }
    exec.block_on(async {
        for (i, r) in reads.into_iter().enumerate() {
            let (n, buf) = r.await.unwrap();
            assert_eq!(&buf[..n], format!("hello {i}").as_bytes());
        }
    });
}
