//! Call latency of busy threads with and without a hundred threads blocked in `read`
//! on pipes, through the same runtime, in one run: rounds alternate between the two
//! (and plain direct calls as a reference), and the percentiles of each are printed with
//! their ratio to the unblocked rounds.
//!
//! ```text
//! cargo run --release -p flexsc-benches --bin blocked_latency -- [--rounds 10] [--calls 20000] [--blocked 100] [--threads 2]
//! ```
//!
//! Each busy call is a getppid or a 4 KiB pread64 of a cached file, alternately, timed
//! one by one. The runtime is configured by the `FLEXSC_*` variables.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flexsc_benches::latency::{Histogram, Options};
use flexsc_kernel_side::{Builder, Mode, Runtime};
use flexsc_shim::{sys, Submitter};

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Direct,
    Pages,
    PagesBlocked,
}

/// One busy thread's timed calls: through `sub`, or direct when `sub` is `None`.
fn busy(sub: Option<&mut Submitter>, file: &File, calls: u64) -> Result<Histogram, String> {
    let mut hist = Histogram::default();
    let mut buf = vec![0u8; 4096];
    let ppid = i64::from(std::os::unix::process::parent_id());
    let mut sub = sub;
    for i in 0..calls {
        let (nr, args, want) = if i % 2 == 0 {
            (libc::SYS_getppid as u64, [0; 6], ppid)
        } else {
            let args = [file.as_raw_fd() as u64, buf.as_mut_ptr() as u64, 4096, 0, 0, 0];
            (libc::SYS_pread64 as u64, args, 4096)
        };
        let start = Instant::now();
        let ret = match sub.as_deref_mut() {
            // SAFETY: getppid, or pread64 into `buf` (4096 bytes, alive for the call).
            Some(s) => unsafe { s.call(nr, args) },
            // SAFETY: as above.
            None => unsafe { sys::syscall6(nr, args) },
        };
        hist.record(start.elapsed().as_nanos() as u64);
        if ret != want {
            return Err(format!("call {i} (nr {nr}) answered {ret}, expected {want}"));
        }
    }
    Ok(hist)
}

fn round(
    rt: &Arc<Runtime>,
    kind: Kind,
    opts: (u64, u64, u64),
    file: &Arc<File>,
) -> Result<Histogram, String> {
    let (calls, blocked, threads) = opts;
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    if kind == Kind::PagesBlocked {
        let before = {
            let s = rt.stats();
            s.handoffs + s.declined + s.uring_parked
        };
        for _ in 0..blocked {
            let (r, w) = pipe()?;
            writers.push(w);
            let rt = Arc::clone(rt);
            readers.push(
                std::thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        let mut sub = rt.submitter().map_err(|e| e.to_string())?;
                        let mut b = [0u8; 8];
                        // SAFETY: reads at most 8 bytes into `b`, alive for the call.
                        let n = unsafe {
                            sub.call(
                                libc::SYS_read as u64,
                                [r.as_raw_fd() as u64, b.as_mut_ptr() as u64, 8, 0, 0, 0],
                            )
                        };
                        if n == 1 {
                            Ok(())
                        } else {
                            Err(format!("a blocked read answered {n}"))
                        }
                    })
                    .map_err(|e| format!("spawn a reader: {e}"))?,
            );
        }
        // Wait until every read has left the service thread (to a worker or back to its
        // caller) and its thread is asleep.
        let deadline = Instant::now() + Duration::from_secs(60);
        while matches!(rt.mode(), Mode::Service { .. }) {
            let s = rt.stats();
            if s.handoffs + s.declined + s.uring_parked >= before + blocked {
                break;
            }
            if Instant::now() > deadline {
                return Err("the readers did not block within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let busy_threads: Vec<_> = (0..threads)
        .map(|_| {
            let (rt, file) = (Arc::clone(rt), Arc::clone(file));
            std::thread::spawn(move || match kind {
                Kind::Direct => busy(None, &file, calls),
                _ => {
                    let mut sub = rt.submitter().map_err(|e| e.to_string())?;
                    busy(Some(&mut sub), &file, calls)
                }
            })
        })
        .collect();
    let mut hist = Histogram::default();
    for b in busy_threads {
        hist.merge(&b.join().map_err(|_| "a busy thread panicked".to_string())??);
    }
    for w in writers {
        File::from(w)
            .write_all(b"x")
            .map_err(|e| format!("write a pipe: {e}"))?;
    }
    for r in readers {
        r.join().map_err(|_| "a reader panicked".to_string())??;
    }
    Ok(hist)
}

fn run() -> Result<(), String> {
    let opts = Options::parse(
        std::env::args().skip(1),
        &[
            ("rounds", "1..=1000"),
            ("calls", "100..=100000000"),
            ("blocked", "1..=4000"),
            ("threads", "1..=64"),
        ],
    )?;
    let rounds = opts.number("rounds", 10, 1, 1000)?;
    let calls = opts.number("calls", 20_000, 100, 100_000_000)?;
    let blocked = opts.number("blocked", 100, 1, 4000)?;
    let threads = opts.number("threads", 2, 1, 64)?;
    let builder = Builder::from_env().map_err(|e| e.to_string())?;
    let rt = Arc::new(
        builder
            .build()
            .map_err(|e| format!("cannot build the runtime: {e}"))?,
    );
    println!("runtime: {}", rt.mode());
    let file = Arc::new({
        let mut f = tempfile::tempfile().map_err(|e| format!("a temporary file: {e}"))?;
        f.write_all(&[7u8; 4096]).map_err(|e| format!("write it: {e}"))?;
        f
    });
    let kinds = [Kind::Direct, Kind::Pages, Kind::PagesBlocked];
    let mut hists = [Histogram::default(), Histogram::default(), Histogram::default()];
    // Warm up: start the service thread and fault in everything once.
    round(&rt, Kind::Pages, (calls.min(10_000), blocked, threads), &file)?;
    for r in 0..rounds {
        // Alternate the order, so drift in the machine hits every kind alike.
        let order: Vec<usize> = if r % 2 == 0 { vec![0, 1, 2] } else { vec![2, 1, 0] };
        for k in order {
            let h = round(&rt, kinds[k], (calls, blocked, threads), &file)?;
            hists[k].merge(&h);
        }
    }
    let names = [
        "direct calls (reference)".to_string(),
        "through the pages".to_string(),
        format!("through the pages, {blocked} readers blocked"),
    ];
    println!("{threads} busy threads x {calls} calls (getppid / 4 KiB pread64) per round, {rounds} rounds of each, alternating");
    println!("| calls | p50 ns | p99 ns | p99.9 ns | max ns |");
    println!("|---|---|---|---|---|");
    for (n, h) in names.iter().zip(&hists) {
        println!(
            "| {n} | {} | {} | {} | {} |",
            h.quantile(0.5),
            h.quantile(0.99),
            h.quantile(0.999),
            h.max()
        );
    }
    let (p, b) = (&hists[1], &hists[2]);
    println!(
        "blocked / unblocked: p50 {:.2}x, p99 {:.2}x",
        b.quantile(0.5) as f64 / p.quantile(0.5).max(1) as f64,
        b.quantile(0.99) as f64 / p.quantile(0.99).max(1) as f64
    );
    let stats = Arc::into_inner(rt)
        .ok_or("a thread still holds the runtime")?
        .shutdown();
    println!(
        "reads handed to workers {}, handed back to their callers {}, parked in io_uring {}",
        stats.handoffs, stats.declined, stats.uring_parked
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("blocked_latency: {e}");
        std::process::exit(2);
    }
}
