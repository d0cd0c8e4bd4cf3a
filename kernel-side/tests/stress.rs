//! Stress: many kernel threads posting at once, more calls in flight than a page has
//! entries, and a hundred threads blocked in `read` while others keep calling. Every
//! completion is checked: none lost, none duplicated, none delivered to the wrong call.
//!
//! Scale (the defaults are CI-sized; see docs/RELIABILITY.md):
//! - `FLEXSC_STRESS_THREADS` (default 1000): kernel threads of the first test;
//! - `FLEXSC_STRESS_CALLS` (default 24): calls each of them makes (10000 for the full run).
//!
//! No test asserts a duration. Every wait is bounded by [`TIMEOUT`] and fails the test
//! when exceeded, so a lost completion shows up as a failure, not as a hung run. The
//! latency of the other threads while readers are blocked is measured by
//! `cargo run --release -p flexsc-benches --bin blocked_latency`, not here.
#![deny(unsafe_op_in_unsafe_fn)]

#[path = "support/wait.rs"]
mod wait;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use flexsc_kernel_side::{Mode, Runtime};
use flexsc_shim::page::ENTRIES_PER_PAGE;
use flexsc_shim::{Call, Push, Submitter, Ticket};

/// The bound of every wait in this file.
const TIMEOUT: Duration = Duration::from_secs(120);

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time: each of them wants the machine's two cores to itself.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A positive number from the environment, or `default`. A value that is not one fails
/// the test with the variable's name and the valid form.
fn env_count(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name}={v:?}: expected a whole number above 0"),
        },
    }
}

fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait::wait_until_within(TIMEOUT, what, done)
}

fn join<T>(handle: JoinHandle<T>, what: &str) -> T {
    wait::join_within(TIMEOUT, handle, what)
}

fn runtime() -> Runtime {
    let rt = Runtime::builder().build().expect("build a runtime");
    if let Mode::Direct { reason } = rt.mode() {
        eprintln!(
            "SKIPPED (in part) {}: no service thread ({reason}): every call runs on its caller",
            std::thread::current().name().unwrap_or("?")
        );
    }
    rt
}

fn ppid() -> i64 {
    i64::from(std::os::unix::process::parent_id())
}

/// An 8-byte record that differs for every `i`.
fn record(i: u64) -> [u8; 8] {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x0123_4567_89ab_cdef).to_le_bytes()
}

/// An unlinked temporary file holding `n` records, record `i` at offset `8 * i`.
fn records_file(n: u64) -> File {
    let mut file = tempfile::tempfile().expect("a temporary file");
    let bytes: Vec<u8> = (0..n).flat_map(record).collect();
    file.write_all(&bytes).expect("write the records");
    file
}

/// A 16-byte log record naming its writer and sequence number, with a check word, so a
/// torn or foreign record is recognised.
fn log_record(thread: u32, seq: u32) -> [u8; 16] {
    let check =
        u64::from(thread).wrapping_mul(0x9e37_79b9) ^ u64::from(seq).wrapping_mul(0x85eb_ca6b) ^ 0x5eed;
    let mut r = [0u8; 16];
    r[0..4].copy_from_slice(&thread.to_le_bytes());
    r[4..8].copy_from_slice(&seq.to_le_bytes());
    r[8..16].copy_from_slice(&check.to_le_bytes());
    r
}

fn parse_log_record(r: &[u8]) -> Option<(u32, u32)> {
    let thread = u32::from_le_bytes(r[0..4].try_into().ok()?);
    let seq = u32::from_le_bytes(r[4..8].try_into().ok()?);
    (log_record(thread, seq) == r).then_some((thread, seq))
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(ret, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn getppid(sub: &mut Submitter) -> i64 {
    // SAFETY: getppid takes no arguments and changes nothing.
    unsafe { sub.call(libc::SYS_getppid as u64, [0; 6]) }
}

fn pread(sub: &mut Submitter, fd: RawFd, buf: &mut [u8], offset: u64) -> i64 {
    let args = [fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, offset, 0, 0];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, borrowed mutably
    // for the whole (synchronous) call.
    unsafe { sub.call(libc::SYS_pread64 as u64, args) }
}

fn write(sub: &mut Submitter, fd: RawFd, buf: &[u8]) -> i64 {
    let args = [fd as u64, buf.as_ptr() as u64, buf.len() as u64, 0, 0, 0];
    // SAFETY: the kernel reads `buf.len()` bytes of `buf` during the synchronous call.
    unsafe { sub.call(libc::SYS_write as u64, args) }
}

/// Reads the whole log and counts each (thread, seq) record; fails on a torn record.
fn count_log(log: &File) -> HashMap<(u32, u32), u32> {
    // From offset 0: the shared offset of an O_APPEND file is at its end.
    let len = log.metadata().expect("stat the log").len() as usize;
    let mut bytes = vec![0u8; len];
    log.read_exact_at(&mut bytes, 0).expect("read the log back");
    assert_eq!(bytes.len() % 16, 0, "the log holds whole records only");
    let mut seen = HashMap::new();
    for (i, r) in bytes.chunks_exact(16).enumerate() {
        let key = parse_log_record(r).unwrap_or_else(|| panic!("record #{i} is torn or foreign: {r:02x?}"));
        *seen.entry(key).or_insert(0) += 1;
    }
    seen
}

/// Every (thread, seq) below the bounds exactly once, and nothing else.
fn assert_each_once(seen: &HashMap<(u32, u32), u32>, threads: u32, per_thread: u32, what: &str) {
    let mut missing = Vec::new();
    for t in 0..threads {
        for s in 0..per_thread {
            match seen.get(&(t, s)) {
                Some(1) => {}
                Some(n) => panic!("{what}: record (thread {t}, seq {s}) is in the log {n} times"),
                None => missing.push((t, s)),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{what}: {} records lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(
        seen.len() as u64,
        u64::from(threads) * u64::from(per_thread),
        "{what}: records nobody wrote"
    );
}

// ---------------------------------------------------------------------------------------
// 1. A thousand kernel threads
// ---------------------------------------------------------------------------------------

/// `FLEXSC_STRESS_THREADS` threads (1000) each make `FLEXSC_STRESS_CALLS` checked calls
/// through a page of their own, all starting at once: an O_APPEND write of a record
/// naming (thread, seq), a getppid, a pread64 of a record only this thread reads. Every
/// fourth thread posts all its writes as one batch first. Afterwards the log holds every record exactly once, whole.
#[test]
fn thousand_threads_every_completion_exactly_once() {
    let _serial = serial();
    let threads = env_count("FLEXSC_STRESS_THREADS", 1000) as u32;
    let calls = env_count("FLEXSC_STRESS_CALLS", 24);
    // One write, one getppid, one pread per round: rounds of three calls.
    let rounds = calls.div_ceil(3) as u32;
    let rt = Arc::new(runtime());
    let log = Arc::new(
        tempfile::tempfile()
            .and_then(|f| {
                // Re-open the unlinked file O_APPEND through /proc, so every write appends.
                std::fs::OpenOptions::new()
                    .append(true)
                    .read(true)
                    .open(format!("/proc/self/fd/{}", f.as_raw_fd()))
            })
            .expect("an O_APPEND log file"),
    );
    let records = Arc::new(records_file(u64::from(threads)));
    let start = Arc::new(Barrier::new(threads as usize));
    let failures = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (rt, log, records, start) = (
                Arc::clone(&rt),
                Arc::clone(&log),
                Arc::clone(&records),
                Arc::clone(&start),
            );
            std::thread::Builder::new()
                .name(format!("stress-{t}"))
                .stack_size(128 * 1024)
                .spawn(move || {
                    let mut sub = rt.submitter().expect("a syscall page");
                    start.wait();
                    let want_ppid = ppid();
                    let batched = t % 4 == 3;
                    if batched {
                        // All writes in one batch (more calls than a page holds once
                        // FLEXSC_STRESS_CALLS > 192).
                        let recs: Vec<[u8; 16]> = (0..rounds).map(|s| log_record(t, s)).collect();
                        let batch: Vec<Call> = recs
                            .iter()
                            .map(|r| {
                                Call::new(
                                    libc::SYS_write,
                                    [log.as_raw_fd() as u64, r.as_ptr() as u64, 16, 0, 0, 0],
                                )
                            })
                            .collect();
                        let mut results = vec![i64::MIN; batch.len()];
                        // SAFETY: each call reads its own 16-byte record of `recs`, which
                        // outlives the batch.
                        unsafe { sub.call_batch(&batch, &mut results) };
                        for (s, r) in results.iter().enumerate() {
                            assert_eq!(*r, 16, "thread {t}: batched write #{s}");
                        }
                    }
                    for s in 0..rounds {
                        if !batched {
                            let r = log_record(t, s);
                            assert_eq!(write(&mut sub, log.as_raw_fd(), &r), 16, "thread {t}: write #{s}");
                        }
                        assert_eq!(getppid(&mut sub), want_ppid, "thread {t}: getppid #{s}");
                        let mut buf = [0u8; 8];
                        let n = pread(&mut sub, records.as_raw_fd(), &mut buf, 8 * u64::from(t));
                        assert_eq!(n, 8, "thread {t}: pread64 #{s}");
                        assert_eq!(
                            buf,
                            record(u64::from(t)),
                            "thread {t}: pread64 #{s}: another's record"
                        );
                    }
                })
                .expect("spawn a stress thread")
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| join(h, "a stress thread")));
        if r.is_err() {
            failures.fetch_add(1, SeqCst);
            eprintln!("stress thread {t} failed");
        }
    }
    assert_eq!(failures.load(SeqCst), 0, "threads saw a wrong result");
    let seen = count_log(&log);
    assert_each_once(&seen, threads, rounds, "O_APPEND log");
    let rt = Arc::into_inner(rt).expect("every thread is gone");
    let stats = rt.shutdown();
    let totals = stats.totals();
    let made = 3 * u64::from(threads) * u64::from(rounds);
    assert_eq!(totals.calls, made, "every call counted once");
    assert_eq!(totals.delegated + totals.direct, made);
    assert_eq!(totals.errors, 0);
    eprintln!(
        "{threads} threads x {} calls: {made} completions checked, {} delegated, {} batches, {} handed to workers, {} declined",
        3 * rounds,
        totals.delegated,
        stats.batches,
        stats.handoffs,
        stats.declined
    );
}

// ---------------------------------------------------------------------------------------
// 2. Back-pressure: more calls in flight than entries
// ---------------------------------------------------------------------------------------

/// Sixteen threads each keep a full page of calls in flight and push more: `push`
/// answers `Full`, the thread reaps its oldest call, and pushes again. Every result is
/// checked against the record its call asked for; `Full` is met; nothing runs twice.
#[test]
fn more_calls_in_flight_than_entries_is_back_pressure_not_loss() {
    let _serial = serial();
    const THREADS: u64 = 16;
    const CALLS: u64 = 3_000;
    let rt = Arc::new(runtime());
    let file = Arc::new(records_file(CALLS));
    let log = Arc::new(
        tempfile::tempfile()
            .and_then(|f| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .read(true)
                    .open(format!("/proc/self/fd/{}", f.as_raw_fd()))
            })
            .expect("an O_APPEND log file"),
    );
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (rt, file, log) = (Arc::clone(&rt), Arc::clone(&file), Arc::clone(&log));
            std::thread::spawn(move || {
                // Buffers stay put (boxed) while their calls are in flight, and are
                // declared before `sub`, so they outlive it even when a check fails
                // (dropping a submitter waits for its calls in flight). One more buffer
                // than entries, so the thread pushes into a full page.
                let mut bufs: Vec<Box<[u8; 8]>> =
                    (0..=ENTRIES_PER_PAGE).map(|_| Box::new([0u8; 8])).collect();
                let recs: Vec<[u8; 16]> = (0..CALLS as u32).map(|s| log_record(t as u32, s)).collect();
                let mut sub = rt.submitter().expect("a syscall page");
                // In flight, oldest first: (ticket, call index, buffer slot).
                let mut ring: std::collections::VecDeque<(Ticket, u64, usize)> = Default::default();
                let mut free_bufs: Vec<usize> = (0..=ENTRIES_PER_PAGE).collect();
                let mut fulls = 0u64;
                let check = |i: u64, ret: i64, buf: &[u8; 8]| {
                    if i % 2 == 0 {
                        assert_eq!(ret, 8, "thread {t}: pread64 #{i}");
                        assert_eq!(*buf, record(i), "thread {t}: pread64 #{i}: wrong record");
                    } else {
                        assert_eq!(ret, 16, "thread {t}: write #{i}");
                    }
                };
                let mut i = 0;
                while i < CALLS {
                    let slot = *free_bufs.last().expect("a page has as many buffers as entries");
                    let call = if i % 2 == 0 {
                        let p = bufs[slot].as_mut_ptr() as u64;
                        Call::new(libc::SYS_pread64, [file.as_raw_fd() as u64, p, 8, 8 * i, 0, 0])
                    } else {
                        let r = recs[i as usize].as_ptr() as u64;
                        Call::new(libc::SYS_write, [log.as_raw_fd() as u64, r, 16, 0, 0, 0])
                    };
                    // SAFETY: the call's buffer (`bufs[slot]` or `recs[i]`) is neither
                    // moved nor reused until its ticket is reaped below.
                    match unsafe { sub.push(call.nr, call.args) } {
                        Push::Posted(ticket) => {
                            free_bufs.pop();
                            ring.push_back((ticket, i, slot));
                            i += 1;
                        }
                        Push::Ran(ret) => {
                            check(i, ret, &bufs[slot]);
                            i += 1;
                        }
                        Push::Full => {
                            fulls += 1;
                            sub.submit();
                            let (ticket, j, s) = ring.pop_front().expect("Full with nothing in flight");
                            let ret = sub.wait(ticket);
                            check(j, ret, &bufs[s]);
                            free_bufs.push(s);
                        }
                    }
                }
                sub.submit();
                while let Some((ticket, j, s)) = ring.pop_front() {
                    let ret = sub.wait(ticket);
                    check(j, ret, &bufs[s]);
                }
                fulls
            })
        })
        .collect();
    let mut fulls = 0;
    for h in handles {
        fulls += join(h, "a back-pressure thread");
    }
    let seen = count_log(&log);
    // Thread t wrote the odd-numbered calls' records: seq i for odd i.
    let mut want = HashMap::new();
    for t in 0..THREADS as u32 {
        for i in (1..CALLS as u32).step_by(2) {
            want.insert((t, i), 1);
        }
    }
    assert_eq!(seen, want, "the log holds each write exactly once");
    let rt = Arc::into_inner(rt).expect("every thread is gone");
    let delegating = matches!(rt.mode(), Mode::Service { .. });
    let totals = rt.shutdown().totals();
    assert_eq!(totals.calls, THREADS * CALLS);
    if delegating {
        assert!(
            fulls > 0,
            "no push met a full page: back-pressure was not exercised"
        );
    }
    eprintln!(
        "back-pressure: {} calls, push answered Full {fulls} times",
        THREADS * CALLS
    );
}

// ---------------------------------------------------------------------------------------
// 3. A hundred blocked readers
// ---------------------------------------------------------------------------------------

/// A hundred threads block in `read` on pipes of their own, through their pages (more
/// than the runtime's blocking workers: the rest are handed back to their callers).
/// Meanwhile four other threads make 4,000 checked calls each. No reader returns
/// early; then each pipe gets its own message and each reader exactly that message.
#[test]
fn hundred_blocked_readers_do_not_stop_other_threads() {
    let _serial = serial();
    const READERS: usize = 100;
    const BUSY: u64 = 4;
    const PAIRS: u64 = 2_000;
    let rt = Arc::new(runtime());
    let returned = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    let readers: Vec<_> = (0..READERS)
        .map(|k| {
            let (r, w) = pipe();
            writers.push(w);
            let (rt, returned) = (Arc::clone(&rt), Arc::clone(&returned));
            std::thread::Builder::new()
                .name(format!("reader-{k}"))
                .stack_size(128 * 1024)
                .spawn(move || {
                    let mut sub = rt.submitter().expect("a syscall page");
                    let mut buf = [0u8; 64];
                    let args = [r.as_raw_fd() as u64, buf.as_mut_ptr() as u64, 64, 0, 0, 0];
                    // SAFETY: the kernel writes at most 64 bytes into `buf`, which lives
                    // across the synchronous call.
                    let n = unsafe { sub.call(libc::SYS_read as u64, args) };
                    returned.fetch_add(1, SeqCst);
                    assert!(n > 0, "reader {k}: read answered {n}");
                    buf[..n as usize].to_vec()
                })
                .expect("spawn a reader")
        })
        .collect();
    // Every read was tried without waiting and sent away (to a worker, back to its
    // caller, or parked in a service thread's io_uring), or runs on its caller in direct
    // mode. Or its owner took it back before a service thread claimed it (after
    // TAKE_BACK_AFTER, 10 ms: a debug build under load can be that slow to reach it) and
    // waits in it itself.
    let delegating = matches!(rt.mode(), Mode::Service { .. });
    if delegating {
        wait_until("every read to be sent away from the service thread", || {
            let s = rt.stats();
            s.handoffs + s.declined + s.uring_parked + s.taken_back >= READERS as u64
        });
    }
    let file = Arc::new(records_file(64));
    let busy: Vec<_> = (0..BUSY)
        .map(|b| {
            let (rt, file) = (Arc::clone(&rt), Arc::clone(&file));
            std::thread::spawn(move || {
                let mut sub = rt.submitter().expect("a syscall page");
                let want = ppid();
                for k in 0..PAIRS {
                    assert_eq!(getppid(&mut sub), want, "busy {b}: getppid #{k}");
                    let mut buf = [0u8; 8];
                    let r = (k + b) % 64;
                    assert_eq!(pread(&mut sub, file.as_raw_fd(), &mut buf, 8 * r), 8);
                    assert_eq!(buf, record(r), "busy {b}: pread64 #{k}");
                }
            })
        })
        .collect();
    for h in busy {
        join(h, "a busy thread's calls while 100 readers are blocked");
    }
    assert_eq!(
        returned.load(SeqCst),
        0,
        "a reader returned before its pipe was written"
    );
    for (k, w) in writers.into_iter().enumerate() {
        File::from(w)
            .write_all(format!("message for reader {k}").as_bytes())
            .expect("write a pipe");
    }
    for (k, h) in readers.into_iter().enumerate() {
        let got = join(h, "a reader to get its message");
        assert_eq!(got, format!("message for reader {k}").as_bytes(), "reader {k}");
    }
    let rt = Arc::into_inner(rt).expect("every thread is gone");
    let stats = rt.shutdown();
    eprintln!(
        "100 blocked readers: {} calls by the busy threads meanwhile; {} reads on workers, {} handed back to their callers",
        BUSY * PAIRS * 2,
        stats.handoffs,
        stats.declined
    );
    assert_eq!(stats.totals().errors, 0);
}
