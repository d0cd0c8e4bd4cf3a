//! An `openat` through the io_uring backend answers as the syscall does where the open
//! itself may wait: a FIFO's read end waits for a writer and its write end for a reader.
//! io_uring's inline try adds `O_NONBLOCK`, which answered at once instead (the read end
//! opened with no writer, the write end failed with ENXIO): such opens must run directly.

use std::ffi::CString;
use std::sync::mpsc;
use std::time::Duration;

#[path = "support/uring.rs"]
mod uring;

use flexsc_kernel_side::Runtime;

fn uring_runtime() -> Option<Runtime> {
    uring::uring_runtime(Runtime::builder(), flexsc_kernel_side::uring::probe)
}

fn fifo(dir: &tempfile::TempDir) -> CString {
    let path = CString::new(dir.path().join("fifo").to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    path
}

fn open_direct(path: &CString, flags: i32) -> i32 {
    // SAFETY: open with a valid path.
    unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) }
}

fn close(fd: i32) {
    // SAFETY: the test's own descriptor.
    unsafe { libc::close(fd) };
}

/// Opens `path` with `flags` through the runtime on a thread of its own; the result comes
/// back on the channel.
fn open_posted<'scope>(
    rt: &'scope Runtime,
    s: &'scope std::thread::Scope<'scope, '_>,
    path: &CString,
    flags: i32,
) -> mpsc::Receiver<i64> {
    let (tx, rx) = mpsc::channel();
    let path = path.clone();
    s.spawn(move || {
        let mut me = rt.submitter().expect("a page");
        let args = [
            libc::AT_FDCWD as u64,
            path.as_ptr() as u64,
            (flags | libc::O_CLOEXEC) as u64,
            0,
            0,
            0,
        ];
        // SAFETY: openat with a path that lives until the call returns.
        let ret = unsafe { me.call(libc::SYS_openat as u64, args) };
        tx.send(ret).expect("the test waits for the result");
    });
    rx
}

/// The result, or a failure naming `what` after 30 s (a hang would be the bug).
fn result(rx: &mpsc::Receiver<i64>, what: &str) -> i64 {
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what} never finished"))
}

#[test]
fn a_fifo_read_end_opened_through_the_ring_waits_for_a_writer() {
    let Some(rt) = uring_runtime() else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let path = fifo(&dir);
    std::thread::scope(|s| {
        let opened = open_posted(&rt, s, &path, libc::O_RDONLY);
        // No writer yet: a blocking open of the read end must still be waiting. (A bound on
        // how long it waits, not on how fast anything runs.)
        assert_eq!(
            opened.recv_timeout(Duration::from_millis(300)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "the read end opened without a writer"
        );
        // The waiting reader counts as one: a non-blocking writer gets in and lets it go.
        let writer = open_direct(&path, libc::O_WRONLY | libc::O_NONBLOCK);
        assert!(writer >= 0, "a reader is waiting in open");
        let reader = result(&opened, "the read end's open");
        assert!(reader >= 0, "the read end opened: {reader}");
        // SAFETY: fcntl F_GETFL on our descriptor.
        let flags = unsafe { libc::fcntl(reader as i32, libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "opened without O_NONBLOCK");
        close(reader as i32);
        close(writer);
    });
}

#[test]
fn a_fifo_write_end_opened_through_the_ring_waits_for_a_reader() {
    let Some(rt) = uring_runtime() else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let path = fifo(&dir);
    std::thread::scope(|s| {
        let opened = open_posted(&rt, s, &path, libc::O_WRONLY);
        assert_eq!(
            opened.recv_timeout(Duration::from_millis(300)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "the write end's open answered without a reader (io_uring's ENXIO)"
        );
        let reader = open_direct(&path, libc::O_RDONLY | libc::O_NONBLOCK);
        assert!(reader >= 0, "a non-blocking read end always opens");
        let writer = result(&opened, "the write end's open");
        assert!(writer >= 0, "the write end opened: {writer}");
        close(writer as i32);
        close(reader);
    });
}

#[test]
fn nonblocking_fifo_opens_through_the_ring_answer_at_once_as_directly() {
    let Some(rt) = uring_runtime() else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let path = fifo(&dir);
    let mut me = rt.submitter().expect("a page");
    let mut open = |flags: i32| {
        let args = [
            libc::AT_FDCWD as u64,
            path.as_ptr() as u64,
            (flags | libc::O_CLOEXEC | libc::O_NONBLOCK) as u64,
            0,
            0,
            0,
        ];
        // SAFETY: openat with a live path.
        unsafe { me.call(libc::SYS_openat as u64, args) }
    };
    assert_eq!(
        open(libc::O_WRONLY),
        -(libc::ENXIO as i64),
        "no reader: ENXIO, as directly"
    );
    let reader = open(libc::O_RDONLY);
    assert!(reader >= 0, "a non-blocking read end opens: {reader}");
    // SAFETY: fcntl F_GETFL on our descriptor.
    let flags = unsafe { libc::fcntl(reader as i32, libc::F_GETFL) };
    assert_ne!(flags & libc::O_NONBLOCK, 0, "the caller's O_NONBLOCK is kept");
    let writer = open(libc::O_WRONLY);
    assert!(writer >= 0, "with a reader, the write end opens: {writer}");
    close(writer as i32);
    close(reader as i32);
}
