//! Soak: mixed, checked calls through one runtime from many threads for a chosen time,
//! with forks (the child makes checked calls through a runtime of its own) and children
//! killed with SIGKILL while they make calls. Reports the calls made, every mismatch, and
//! the latency percentiles; exits 1 if anything did not match.
//!
//! ```text
//! cargo run --release -p flexsc-benches --bin soak -- [--seconds 60] [--threads 8] [--seed N]
//! ```
//!
//! The runtime is configured by the `FLEXSC_*` variables (FLEXSC_BACKEND=uring, say).
//! Checks: getppid; pread64 of a record only one offset holds; pwrite64 then pread64 of
//! the thread's own slot; an O_APPEND record per call (at the end the log holds each
//! exactly once); a pipe round trip; openat + fstat + close; a bad descriptor answers
//! EBADF; a batch of 100 calls (more than a page holds).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flexsc_benches::latency::{Histogram, Options};
use flexsc_kernel_side::{Builder, Runtime};
use flexsc_shim::{Call, Submitter};

const RECORDS: u64 = 4096;

fn record(i: u64) -> [u8; 8] {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x0123_4567_89ab_cdef).to_le_bytes()
}

fn log_record(thread: u32, seq: u64) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[0..4].copy_from_slice(&thread.to_le_bytes());
    r[4..12].copy_from_slice(&seq.to_le_bytes());
    let check = (thread.wrapping_mul(0x85eb_ca6b) ^ (seq as u32).wrapping_mul(0x9e37_79b9)) ^ 0x5eed;
    r[12..16].copy_from_slice(&check.to_le_bytes());
    r
}

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What all threads share: the fixtures and the counters of the report.
struct Soak {
    records: File,
    records_path: CString,
    log: File,
    scratch: File,
    stop: AtomicBool,
    calls: AtomicU64,
    mismatches: AtomicU64,
    first: Mutex<Vec<String>>,
    latency: Mutex<Histogram>,
}

impl Soak {
    fn mismatch(&self, what: String) {
        if self.mismatches.fetch_add(1, Relaxed) < 20 {
            eprintln!("soak: MISMATCH {what}");
            self.first.lock().unwrap_or_else(|e| e.into_inner()).push(what);
        }
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(ret, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// One call through `sub`, timed into `hist`.
///
/// # Safety
/// As for `Submitter::call`.
unsafe fn timed(sub: &mut Submitter, hist: &mut Histogram, nr: libc::c_long, args: [u64; 6]) -> i64 {
    let start = Instant::now();
    // SAFETY: forwarded.
    let r = unsafe { sub.call(nr as u64, args) };
    hist.record(start.elapsed().as_nanos() as u64);
    r
}

/// One soak thread: returns how many O_APPEND records it wrote.
fn worker(soak: &Soak, rt: &Runtime, t: u32, seed: u64) -> u64 {
    let mut sub = match rt.submitter() {
        Ok(s) => s,
        Err(e) => {
            soak.mismatch(format!("thread {t}: no syscall page: {e}"));
            return 0;
        }
    };
    let mut rng = Rng(seed | 1);
    let mut hist = Histogram::default();
    let (pr, pw) = pipe();
    let ppid = i64::from(std::os::unix::process::parent_id());
    let mut appended = 0u64;
    let mut calls = 0u64;
    let mut buf = [0u8; 64];
    let bp = buf.as_mut_ptr() as u64;
    let mut n = 0u64;
    while !soak.stop.load(Relaxed) {
        n += 1;
        let op = rng.below(9);
        // Every pointer of the calls below is to `buf`, `mine`, `rec`, `recs`,
        // `bufs` or a path, alive across the synchronous call that uses it.
        match op {
            0 => {
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let r = unsafe { timed(&mut sub, &mut hist, libc::SYS_getppid, [0; 6]) };
                calls += 1;
                if r != ppid {
                    soak.mismatch(format!("thread {t}: getppid answered {r}, expected {ppid}"));
                }
            }
            1 => {
                let i = rng.below(RECORDS);
                let fd = soak.records.as_raw_fd() as u64;
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let r = unsafe { timed(&mut sub, &mut hist, libc::SYS_pread64, [fd, bp, 8, 8 * i, 0, 0]) };
                calls += 1;
                if r != 8 || buf[..8] != record(i) {
                    soak.mismatch(format!(
                        "thread {t}: pread64 of record {i} answered {r}, {:02x?}",
                        &buf[..8]
                    ));
                }
            }
            2 => {
                let mine = record(u64::from(t) << 32 | n);
                let fd = soak.scratch.as_raw_fd() as u64;
                let off = 8 * u64::from(t);
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let w = unsafe {
                    timed(
                        &mut sub,
                        &mut hist,
                        libc::SYS_pwrite64,
                        [fd, mine.as_ptr() as u64, 8, off, 0, 0],
                    )
                };
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let r = unsafe { timed(&mut sub, &mut hist, libc::SYS_pread64, [fd, bp, 8, off, 0, 0]) };
                calls += 2;
                if w != 8 || r != 8 || buf[..8] != mine {
                    soak.mismatch(format!(
                        "thread {t}: pwrite64 {w} then pread64 {r} of its own slot differ"
                    ));
                }
            }
            3 => {
                let rec = log_record(t, appended);
                let fd = soak.log.as_raw_fd() as u64;
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let w = unsafe {
                    timed(
                        &mut sub,
                        &mut hist,
                        libc::SYS_write,
                        [fd, rec.as_ptr() as u64, 16, 0, 0, 0],
                    )
                };
                calls += 1;
                if w == 16 {
                    appended += 1;
                } else {
                    soak.mismatch(format!("thread {t}: O_APPEND write answered {w}"));
                }
            }
            4 => {
                let msg = record(n);
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let w = unsafe {
                    timed(
                        &mut sub,
                        &mut hist,
                        libc::SYS_write,
                        [pw.as_raw_fd() as u64, msg.as_ptr() as u64, 8, 0, 0, 0],
                    )
                };
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let r = unsafe {
                    timed(
                        &mut sub,
                        &mut hist,
                        libc::SYS_read,
                        [pr.as_raw_fd() as u64, bp, 64, 0, 0, 0],
                    )
                };
                calls += 2;
                if w != 8 || r != 8 || buf[..8] != msg {
                    soak.mismatch(format!("thread {t}: pipe round trip: write {w}, read {r}"));
                }
            }
            5 => {
                let path = soak.records_path.as_ptr() as u64;
                let flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let fd = unsafe {
                    timed(
                        &mut sub,
                        &mut hist,
                        libc::SYS_openat,
                        [libc::AT_FDCWD as u64, path, flags, 0, 0, 0],
                    )
                };
                calls += 1;
                if fd < 0 {
                    soak.mismatch(format!("thread {t}: openat answered {fd}"));
                    continue;
                }
                // SAFETY: all-zero is a valid stat.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                let sp = &mut st as *mut libc::stat as u64;
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let r = unsafe { timed(&mut sub, &mut hist, libc::SYS_fstat, [fd as u64, sp, 0, 0, 0, 0]) };
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let c = unsafe { timed(&mut sub, &mut hist, libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]) };
                calls += 2;
                if r != 0 || c != 0 || st.st_size as u64 != 8 * RECORDS {
                    soak.mismatch(format!("thread {t}: fstat {r} (size {}), close {c}", st.st_size));
                }
            }
            6 => {
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                let r = unsafe { timed(&mut sub, &mut hist, libc::SYS_pread64, [1 << 30, bp, 8, 0, 0, 0]) };
                calls += 1;
                if r != -(libc::EBADF as i64) {
                    soak.mismatch(format!("thread {t}: pread64 of a bad descriptor answered {r}"));
                }
            }
            _ => {
                let mut bufs = vec![[0u8; 8]; 100];
                let fd = soak.records.as_raw_fd() as u64;
                let base = bufs.as_mut_ptr() as u64;
                let first = rng.below(RECORDS - 100);
                let batch: Vec<Call> = (0..100u64)
                    .map(|k| {
                        if k % 3 == 0 {
                            Call::new(libc::SYS_getppid, [0; 6])
                        } else {
                            Call::new(libc::SYS_pread64, [fd, base + 8 * k, 8, 8 * (first + k), 0, 0])
                        }
                    })
                    .collect();
                let mut results = vec![i64::MIN; 100];
                let start = Instant::now();
                // SAFETY: pointers to live locals or fixtures, see the note at the top of the loop.
                unsafe { sub.call_batch(&batch, &mut results) };
                hist.record(start.elapsed().as_nanos() as u64 / 100);
                calls += 100;
                for k in 0..100usize {
                    let ok = if k % 3 == 0 {
                        results[k] == ppid
                    } else {
                        results[k] == 8 && bufs[k] == record(first + k as u64)
                    };
                    if !ok {
                        soak.mismatch(format!("thread {t}: batch call {k} answered {}", results[k]));
                    }
                }
            }
        }
        if n % 1024 == 0 {
            soak.calls.fetch_add(calls, Relaxed);
            calls = 0;
        }
    }
    soak.calls.fetch_add(calls, Relaxed);
    soak.latency
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .merge(&hist);
    appended
}

/// In a forked child: a runtime of its own, checked calls; exit status 0 if all matched.
fn child(soak: &Soak, calls: u64) -> ! {
    let status = (|| {
        let rt = Runtime::builder().build().ok()?;
        let mut sub = rt.submitter().ok()?;
        // SAFETY: getpid has no arguments.
        let me = unsafe { libc::getpid() };
        let ppid = i64::from(std::os::unix::process::parent_id());
        let mut buf = [0u8; 8];
        for i in 0..calls {
            let r = i % RECORDS;
            // SAFETY: getppid; pread64 into `buf`, alive for the call.
            let (a, b) = unsafe {
                (
                    sub.call(libc::SYS_getppid as u64, [0; 6]),
                    sub.call(
                        libc::SYS_pread64 as u64,
                        [
                            soak.records.as_raw_fd() as u64,
                            buf.as_mut_ptr() as u64,
                            8,
                            8 * r,
                            0,
                            0,
                        ],
                    ),
                )
            };
            if a != ppid || b != 8 || buf != record(r) {
                return None;
            }
        }
        // SAFETY: getpid has no arguments.
        (unsafe { libc::getpid() } == me).then_some(())
    })();
    // SAFETY: _exit ends this child without running the parent's atexit handlers.
    unsafe { libc::_exit(if status.is_some() { 0 } else { 1 }) }
}

fn run() -> Result<bool, String> {
    let opts = Options::parse(
        std::env::args().skip(1),
        &[
            ("seconds", "1..=604800"),
            ("threads", "1..=1000"),
            ("seed", "any u64"),
        ],
    )?;
    let seconds = opts.number("seconds", 60, 1, 604_800)?;
    let threads = opts.number("threads", 8, 1, 1000)? as u32;
    let seed = opts.number("seed", 0x50a6, 0, u64::MAX)?;
    let rt = Arc::new(
        Builder::from_env()
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| format!("cannot build the runtime: {e}"))?,
    );
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary folder: {e}"))?;
    let records_path = dir.path().join("records");
    std::fs::write(&records_path, (0..RECORDS).flat_map(record).collect::<Vec<u8>>())
        .map_err(|e| format!("write the records: {e}"))?;
    let open = |name: &str, append: bool| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .append(append)
            .create(true)
            .truncate(false)
            .open(dir.path().join(name))
            .map_err(|e| format!("open {name}: {e}"))
    };
    let soak = Arc::new(Soak {
        records: File::open(&records_path).map_err(|e| format!("open the records: {e}"))?,
        records_path: CString::new(records_path.into_os_string().into_encoded_bytes())
            .map_err(|_| "temporary path with a NUL".to_string())?,
        log: open("log", true)?,
        scratch: open("scratch", false)?,
        stop: AtomicBool::new(false),
        calls: AtomicU64::new(0),
        mismatches: AtomicU64::new(0),
        first: Mutex::new(Vec::new()),
        latency: Mutex::new(Histogram::default()),
    });
    println!(
        "soak: {seconds} s, {threads} threads, seed {seed:#x}, runtime: {}",
        rt.mode()
    );
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (soak, rt) = (Arc::clone(&soak), Arc::clone(&rt));
            let s = seed.wrapping_add(u64::from(t).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            std::thread::spawn(move || worker(&soak, &rt, t, s))
        })
        .collect();
    // This thread forks while the workers have calls in flight: every other child is
    // killed with SIGKILL while it makes calls, the others must exit 0.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut forks, mut killed, mut last_report) = (0u64, 0u64, Instant::now());
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let kill = forks % 2 == 1;
        // SAFETY: the child only calls `child`, which builds a runtime of its own and
        // ends with _exit; the parent's threads are not in the child.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            child(&soak, if kill { 1_000_000_000 } else { 2_000 });
        }
        forks += 1;
        if kill {
            std::thread::sleep(Duration::from_millis(20));
            // SAFETY: kill of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            soak.mismatch(format!("waitpid({pid}): {}", std::io::Error::last_os_error()));
        } else if kill {
            if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL {
                killed += 1;
            } else {
                soak.mismatch(format!(
                    "child {pid} was to be killed, ended with status {status:#x}"
                ));
            }
        } else if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            soak.mismatch(format!(
                "forked child {pid}: its checked calls failed (status {status:#x})"
            ));
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            println!(
                "soak: {} calls, {} mismatches, {forks} forks so far",
                soak.calls.load(Relaxed),
                soak.mismatches.load(Relaxed)
            );
        }
    }
    soak.stop.store(true, Relaxed);
    let mut appended = Vec::new();
    for w in workers {
        appended.push(w.join().map_err(|_| "a soak thread panicked".to_string())?);
    }
    // The log: each thread's records 0..appended exactly once.
    let len = soak.log.metadata().map_err(|e| e.to_string())?.len() as usize;
    let mut bytes = vec![0u8; len];
    soak.log
        .read_exact_at(&mut bytes, 0)
        .map_err(|e| format!("read the log: {e}"))?;
    let mut seen: HashMap<(u32, u64), u32> = HashMap::new();
    for r in bytes.chunks(16) {
        let t = u32::from_le_bytes(r[0..4].try_into().unwrap_or_default());
        let s = u64::from_le_bytes(r[4..12].try_into().unwrap_or_default());
        if r.len() != 16 || log_record(t, s) != r {
            soak.mismatch(format!("a torn or foreign record in the log: {r:02x?}"));
            continue;
        }
        *seen.entry((t, s)).or_insert(0) += 1;
    }
    for (t, &n) in appended.iter().enumerate() {
        for s in 0..n {
            match seen.remove(&(t as u32, s)) {
                Some(1) => {}
                Some(k) => soak.mismatch(format!("record ({t}, {s}) is in the log {k} times")),
                None => soak.mismatch(format!("record ({t}, {s}) is missing from the log")),
            }
        }
    }
    if !seen.is_empty() {
        soak.mismatch(format!("{} records in the log that nobody wrote", seen.len()));
    }
    let stats = Arc::into_inner(rt)
        .ok_or("a thread still holds the runtime")?
        .shutdown();
    let mismatches = soak.mismatches.load(Relaxed);
    let hist = soak.latency.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!("soak: {seconds} s, {threads} threads");
    println!("calls checked: {}", soak.calls.load(Relaxed));
    println!(
        "O_APPEND records: {} (each found exactly once unless reported)",
        appended.iter().sum::<u64>()
    );
    println!(
        "forks: {forks} ({killed} children killed with SIGKILL mid-call, the others checked their own calls)"
    );
    println!("latency per call: {}", hist.summary());
    println!("mismatches: {mismatches}");
    print!("{}", stats.table());
    Ok(mismatches == 0)
}

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    }
}
