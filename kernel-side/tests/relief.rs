//! The relief thread and the "blocked" test behind take-back, with more than one service
//! thread and at shutdown (found by review, each failing before its fix):
//! - the relief fires for a service thread stuck in a pass while another one keeps
//!   serving (a begun count shared by all service threads kept resetting);
//! - an idle service thread, asleep on the doorbell, does not make a runnable one look
//!   blocked (so a slow call keeps the calls behind it delegated);
//! - dropping a runtime whose pass is stuck behind a FIFO open returns (the relief was
//!   stopped before the service threads were joined);
//! - quiescing (what the preload library does at exit) does not wait for a pass stuck in
//!   a FIFO open: natively exit ends the waiting thread (exit took the whole 10 s limit);
//! - looking at whether a service thread is blocked takes no descriptor (each look opened
//!   `/proc/self/task/TID/stat`, so a program's `open` running meanwhile got the next
//!   number up instead of the lowest free one).
//!
//! Each test skips, saying why, on a machine with fewer than two usable cores.

#[path = "support/child.rs"]
mod child;

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use flexsc_kernel_side::runtime::allowed_cpus;
use flexsc_kernel_side::{Backend, Runtime};
use flexsc_shim::entry::{BUSY, STATE_MASK};
use flexsc_shim::{Push, Shared, Submitter, Ticket};

fn two_cores() -> Option<Vec<usize>> {
    let cpus = allowed_cpus();
    if cpus.len() < 2 {
        eprintln!(
            "SKIPPED {}: needs two usable cores, has {}",
            std::thread::current().name().unwrap_or("?"),
            cpus.len()
        );
        return None;
    }
    Some(cpus[..2].to_vec())
}

fn runtime(cpus: &[usize]) -> Runtime {
    Runtime::builder()
        .cpus(cpus.to_vec())
        .backend(Backend::Direct)
        .idle_spin(Duration::ZERO)
        .build()
        .expect("a runtime")
}

fn fifo(dir: &tempfile::TempDir) -> CString {
    let path = CString::new(dir.path().join("fifo").to_str().expect("utf-8")).expect("no NUL");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    path
}

fn openat_args(path: &CString, flags: i32) -> [u64; 6] {
    let flags = (flags | libc::O_CLOEXEC) as u64;
    [libc::AT_FDCWD as u64, path.as_ptr() as u64, flags, 0, 0, 0]
}

/// Posts the opens of both ends of `path` (read end first) and polls both to the end,
/// never sleeping on an entry, as an asynchronous task does: nothing but the relief can
/// move the second from behind the first. Returns how long that took.
fn open_both_ends_polling(shared: Arc<Shared>, path: CString) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let mut sub = Submitter::new(shared).expect("a page");
        let mut post = |flags| {
            // SAFETY: openat reads `path`, which lives until both calls are reaped here.
            match unsafe { sub.push(libc::SYS_openat as u64, openat_args(&path, flags)) } {
                Push::Posted(t) => t,
                _ => panic!("openat is posted while the runtime serves"),
            }
        };
        let tickets: [Ticket; 2] = [post(libc::O_RDONLY), post(libc::O_WRONLY)];
        sub.submit();
        let start = Instant::now();
        let mut results = [None, None];
        while results.iter().any(Option::is_none) {
            for (t, r) in tickets.iter().zip(results.iter_mut()) {
                if r.is_none() {
                    *r = sub.poll(t);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        for fd in results.into_iter().flatten() {
            assert!(fd >= 0, "both ends open: {fd}");
            // SAFETY: a descriptor this thread opened.
            unsafe { libc::close(fd as i32) };
        }
        start.elapsed()
    })
}

/// Waits until a service thread has claimed the read end's open (it then waits in it).
fn wait_until_stuck(shared: &Shared) {
    let start = Instant::now();
    while !shared.pages().any(|p| p.entry(0).status() & STATE_MASK == BUSY) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the open was never claimed"
        );
        std::thread::yield_now();
    }
}

/// Opens `path`'s read end through `rt` from a thread of its own (whose open waits in the
/// service thread until a writer comes); returns the descriptor.
fn open_read_end(rt: &Runtime, path: &CString) -> std::thread::JoinHandle<i64> {
    let shared = Arc::clone(rt.shared());
    let p = path.clone();
    std::thread::spawn(move || {
        let mut sub = Submitter::new(shared).expect("a page");
        // SAFETY: openat reads `p`, which lives until the call returns.
        unsafe { sub.call(libc::SYS_openat as u64, openat_args(&p, libc::O_RDONLY)) }
    })
}

/// For a test that runs in a child process of its own, where no other test opens
/// anything: in the child, true (run the test's body); in the parent, runs the child,
/// asserts that it passed, and returns false.
fn in_own_process(test: &str) -> bool {
    if child::is_child(test) {
        return true;
    }
    let (status, printed) = child::run_child(test, &[], Duration::from_secs(120));
    assert!(status.success(), "the child failed:\n{printed}");
    false
}

/// Lets the service thread out of a stuck read-end open (a writer that comes and goes).
fn unstick(path: &CString) {
    // SAFETY: open and close of a descriptor of our own.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::close(fd);
        }
    }
}

#[test]
fn the_relief_fires_while_another_service_thread_keeps_serving() {
    let Some(cpus) = two_cores() else { return };
    let rt = runtime(&cpus);
    let shared = Arc::clone(rt.shared());
    let dir = tempfile::tempdir().expect("a directory");
    let path = fifo(&dir);
    let opener = open_both_ends_polling(Arc::clone(&shared), path.clone());
    wait_until_stuck(&shared);
    // Another thread's calls keep the other service thread beginning passes.
    let stop = Arc::new(AtomicBool::new(false));
    let (s, flag) = (Arc::clone(&shared), Arc::clone(&stop));
    let traffic = std::thread::spawn(move || {
        let mut sub = Submitter::new(s).expect("a page");
        while !flag.load(SeqCst) {
            // SAFETY: getppid takes no arguments.
            unsafe { sub.call(libc::SYS_getppid as u64, [0; 6]) };
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let start = Instant::now();
    while !opener.is_finished() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let finished = opener.is_finished();
    stop.store(true, SeqCst);
    traffic.join().expect("the traffic thread");
    if !finished {
        unstick(&path);
    }
    let took = opener.join().expect("the opener");
    assert!(
        finished,
        "the relief never moved the write end's open (other traffic)"
    );
    eprintln!("both ends opened after {took:?}");
    assert!(rt.stats().relieved >= 1, "{}", rt.stats().table());
}

/// A call behind a long call that runs (a 256 MiB getrandom: the service thread stays
/// runnable) is not taken back, with one service thread or with a second, idle one.
#[test]
fn an_idle_service_thread_does_not_make_a_runnable_one_look_blocked() {
    let Some(cpus) = two_cores() else { return };
    for cpus in [&cpus[1..], &cpus[..]] {
        let rt = runtime(cpus);
        let mut sub = rt.submitter().expect("a page");
        // Touched, so that the call does not wait for page faults to be served.
        let mut buf = vec![1u8; 256 << 20];
        let args = [buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0, 0];
        // SAFETY: getrandom writes into `buf`, which lives until the call is reaped.
        let Push::Posted(long) = (unsafe { sub.push(libc::SYS_getrandom as u64, args) }) else {
            panic!("getrandom is posted while the runtime serves");
        };
        // SAFETY: getppid takes no arguments.
        let Push::Posted(short) = (unsafe { sub.push(libc::SYS_getppid as u64, [0; 6]) }) else {
            panic!("getppid is posted while the runtime serves");
        };
        sub.submit();
        assert!(sub.wait(short) > 0);
        assert_eq!(sub.wait(long), buf.len() as i64);
        drop(sub);
        let stats = rt.shutdown();
        assert_eq!(
            stats.taken_back,
            0,
            "{} service thread(s): a call behind a runnable one was taken back\n{}",
            cpus.len(),
            stats.table()
        );
    }
}

#[test]
fn dropping_the_runtime_with_a_pass_stuck_behind_a_fifo_open_returns() {
    let Some(cpus) = two_cores() else { return };
    let rt = runtime(&cpus[1..]);
    let shared = Arc::clone(rt.shared());
    let dir = tempfile::tempdir().expect("a directory");
    let path = fifo(&dir);
    let opener = open_both_ends_polling(Arc::clone(&shared), path.clone());
    wait_until_stuck(&shared);
    // Drop at once, before the relief would have moved anything: the last passes wait for
    // it to move the write end's open, so it must still run while they are joined.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = tx.send(());
    });
    let returned = rx.recv_timeout(Duration::from_secs(30)).is_ok();
    if !returned {
        unstick(&path);
    }
    opener.join().expect("the opener");
    assert!(returned, "dropping the runtime hung behind the stuck pass");
}

#[test]
fn quiescing_does_not_wait_for_a_pass_stuck_in_a_fifo_open() {
    let Some(cpus) = two_cores() else { return };
    let rt = runtime(&cpus[1..]);
    let dir = tempfile::tempdir().expect("a directory");
    let path = fifo(&dir);
    let reader = open_read_end(&rt, &path);
    wait_until_stuck(rt.shared());
    // No writer will come: natively the reader would wait, and exit would end it.
    let quiet = rt.quiesce(Duration::from_secs(10));
    unstick(&path);
    let fd = reader.join().expect("the reader");
    assert!(fd >= 0, "the read end opened once a writer came: {fd}");
    // SAFETY: the descriptor the reader opened.
    unsafe { libc::close(fd as i32) };
    assert!(
        quiet,
        "quiesce waited its whole limit for a pass stuck in a FIFO open"
    );
}

/// What an owner does before it takes its call back from a stuck service thread, and
/// what the relief thread does now and then (`Shared::service_is_blocked`, `StuckWatch`),
/// takes no file descriptor, even for a moment: a program that closes a descriptor and
/// opens a file expects that number back (a daemon's `close(0); open("/dev/null")`), and
/// an `open` it posted expects the lowest free one, as natively. Each look used to open
/// `/proc/self/task/TID/stat`: the open here then got the next number up now and then.
/// In a child process of its own, where no other test opens anything.
#[test]
fn looking_at_a_stuck_service_thread_takes_no_descriptor() {
    if !in_own_process("looking_at_a_stuck_service_thread_takes_no_descriptor") {
        return;
    }
    let Some(cpus) = two_cores() else { return };
    let rt = runtime(&cpus[1..]);
    let dir = tempfile::tempdir().expect("a directory");
    let path = fifo(&dir);
    let reader = open_read_end(&rt, &path);
    // The service thread waits in the FIFO's open, inside its pass (the open has taken
    // its descriptor number already).
    wait_until_stuck(rt.shared());
    let stop = Arc::new(AtomicBool::new(false));
    let looker = {
        let (shared, stop) = (Arc::clone(rt.shared()), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut looks, mut blocked) = (0u64, 0u64);
            while !stop.load(SeqCst) {
                looks += 1;
                blocked += u64::from(shared.service_is_blocked());
            }
            (looks, blocked)
        })
    };
    let null = c"/dev/null";
    let open = || {
        // SAFETY: opens /dev/null; the caller closes it.
        unsafe { libc::open(null.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
    };
    let lowest = open();
    assert!(lowest >= 0, "open /dev/null: {}", std::io::Error::last_os_error());
    let mut wrong = Vec::new();
    let start = Instant::now();
    let mut opens = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        // SAFETY: closes the descriptor this loop opened.
        unsafe { libc::close(lowest) };
        let fd = open();
        opens += 1;
        if fd != lowest {
            wrong.push(fd);
            // SAFETY: as above; `lowest` is taken by someone else: wait for it back.
            unsafe { libc::close(fd) };
            while {
                let again = open();
                again != lowest && again >= 0 && {
                    // SAFETY: as above.
                    unsafe { libc::close(again) };
                    true
                }
            } {}
        }
    }
    stop.store(true, SeqCst);
    let (looks, blocked) = looker.join().expect("the looker");
    unstick(&path);
    let fd = reader.join().expect("the reader");
    assert!(fd >= 0, "the read end opened once a writer came: {fd}");
    // SAFETY: the descriptors this test opened.
    unsafe {
        libc::close(fd as i32);
        libc::close(lowest);
    }
    assert!(
        blocked > 0,
        "the service thread was never seen blocked in its pass ({looks} looks): the looks tested nothing"
    );
    assert!(
        wrong.is_empty(),
        "{} of {opens} opens did not get descriptor {lowest}, the lowest free one, while another thread looked at the stuck service thread {looks} times (got {:?}...)",
        wrong.len(),
        &wrong[..wrong.len().min(8)]
    );
}

/// A runtime's start returns only once its service threads have opened what they keep
/// open (each its stat file, moved to a high number): the program's opens right after
/// the start get the lowest free descriptor, as natively. (`start` used to return while
/// the service threads were still starting, and their opens ran beside the program's.)
#[test]
fn once_a_runtime_has_started_its_threads_take_no_low_descriptor() {
    if !in_own_process("once_a_runtime_has_started_its_threads_take_no_low_descriptor") {
        return;
    }
    let Some(cpus) = two_cores() else { return };
    let null = c"/dev/null";
    let open = || {
        // SAFETY: opens /dev/null; the caller closes it.
        unsafe { libc::open(null.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
    };
    let lowest = open();
    assert!(lowest >= 0, "open /dev/null: {}", std::io::Error::last_os_error());
    // SAFETY: the descriptor just opened.
    unsafe { libc::close(lowest) };
    let mut wrong = Vec::new();
    for round in 0..100 {
        let rt = Runtime::builder()
            .cpus(cpus[1..].to_vec())
            .build()
            .expect("a runtime");
        for _ in 0..100 {
            let fd = open();
            if fd != lowest {
                wrong.push((round, fd));
            }
            // SAFETY: the descriptor just opened.
            unsafe { libc::close(fd) };
        }
        drop(rt);
    }
    assert!(
        wrong.is_empty(),
        "opens right after a runtime's start did not get descriptor {lowest}, the lowest free one: (round, fd) {:?}",
        &wrong[..wrong.len().min(8)]
    );
}
