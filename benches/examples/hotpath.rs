//! The hot paths, alone, for profilers: `perf record` and `valgrind --tool=callgrind` see
//! only the calls under study (criterion's own work would dilute them).
//!
//! ```text
//! cargo build --release -p flexsc-benches --example hotpath
//! target/release/examples/hotpath WHAT ITERATIONS [OP]
//! ```
//!
//! WHAT: `single` (one getppid round trip), `batch64-direct`, `batch64-uring`,
//! `batch64-auto` (64 preads of 4 KiB through that backend), `direct-pread` (the
//! same 64 preads, direct) or `raw-uring` (the same 64 preads through an io_uring of the
//! calling thread's own, the baseline of `vs_io_uring_batch64_pread4k`), or
//! `pipelined-uring` (the io_uring backend with two batches of 64 in flight, from two
//! pages: set `FLEXSC_WAIT_SPINS=1000000`, or the caller sleeps on a batch still running
//! and the service thread then waits for its next post). OP, for the
//! batch modes: `pread4k` (the default), `getppid`, `write64_devnull` or `pwrite64`. The
//! `FLEXSC_*` variables configure the runtime (`FLEXSC_CALLER_HELPS=off`: the batch's
//! caller only waits). See docs/PROFILE.md.

use flexsc_benches::{pin_off, run_direct, run_raw_uring, Fixture, Op};
use flexsc_kernel_side::{Backend, Mode};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: hotpath single|single-alternating|batch64-direct|batch64-uring|batch64-auto|direct-pread|raw-uring|pipelined-uring ITERATIONS [OP]";
    let (Some(what), Some(iters)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Ok(iters) = iters.parse::<usize>() else {
        eprintln!("invalid ITERATIONS {iters:?}: expected a whole number\n{usage}");
        std::process::exit(2);
    };
    let backend = match what.as_str() {
        "batch64-uring" | "pipelined-uring" => Backend::Uring,
        "batch64-auto" => Backend::Auto,
        _ => Backend::Direct,
    };
    // The FLEXSC_* variables apply (FLEXSC_CALLER_HELPS=off: the caller only waits).
    let builder = match flexsc_kernel_side::Builder::from_env() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = match builder.backend(backend).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Mode::Service { cpus } = rt.mode() {
        pin_off(cpus);
    }
    let mut fixture = match Fixture::new() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot create the bench files: {e}");
            std::process::exit(1);
        }
    };
    let Ok(mut me) = rt.submitter() else {
        eprintln!("no syscall page");
        std::process::exit(1);
    };
    // The batch's operation: OP, the optional third argument (pread4k unless given).
    let op = match args.get(3).map(String::as_str) {
        None | Some("pread4k") => Op::Pread4k,
        Some("getppid") => Op::Getppid,
        Some("write64_devnull") => Op::WriteDevNull,
        Some("pwrite64") => Op::Pwrite64,
        Some(other) => {
            eprintln!(
                "unknown OP {other:?}: expected getppid, write64_devnull, pread4k or pwrite64\n{usage}"
            );
            std::process::exit(2);
        }
    };
    let preads = fixture.calls(op, 64);
    let mut results = [0i64; 64];
    let start = std::time::Instant::now();
    let calls = match what.as_str() {
        "single" => {
            for _ in 0..iters {
                // SAFETY: getppid has no arguments.
                std::hint::black_box(unsafe { me.call(libc::SYS_getppid as u64, [0; 6]) });
            }
            iters
        }
        "single-alternating" => {
            // As `flexsc bench` samples it: direct calls, then delegated ones, in turn.
            for _ in 0..iters {
                for _ in 0..32768 {
                    // SAFETY: getppid has no arguments.
                    std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
                }
                let t = std::time::Instant::now();
                for _ in 0..32768 {
                    // SAFETY: getppid has no arguments.
                    std::hint::black_box(unsafe { me.call(libc::SYS_getppid as u64, [0; 6]) });
                }
                eprint!("{} ", t.elapsed().as_nanos() / 32768);
            }
            eprintln!();
            iters * 32768
        }
        "raw-uring" => {
            // The baseline of `vs_io_uring_batch64_pread4k`: the same 64 preads through
            // one io_uring of this thread's own.
            let mut ring = match io_uring::IoUring::new(64) {
                Ok(ring) => ring,
                Err(e) => {
                    eprintln!("cannot make an io_uring: {e}");
                    std::process::exit(1);
                }
            };
            for _ in 0..iters {
                // SAFETY: each pread writes into its own fixture buffer.
                if let Err(e) = unsafe { run_raw_uring(&mut ring, &preads) } {
                    eprintln!("io_uring failed: {e}");
                    std::process::exit(1);
                }
            }
            iters * 64
        }
        "direct-pread" => {
            for _ in 0..iters {
                // SAFETY: each pread writes into its own fixture buffer.
                unsafe { run_direct(&preads) };
            }
            iters * 64
        }
        "pipelined-uring" => {
            // Two batches of 64 in flight, on two pages of this thread's: the caller posts
            // one while the service thread runs the other, then reaps the first (what an
            // API that keeps batches in flight could do at best; docs/PROFILE.md,
            // session 14). Each batch reads into its own fixture's buffers.
            let Ok(mut other) = rt.submitter() else {
                eprintln!("no second syscall page");
                std::process::exit(1);
            };
            let mut fixture2 = match Fixture::new() {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("cannot create the bench files: {e}");
                    std::process::exit(1);
                }
            };
            let preads2 = fixture2.calls(op, 64);
            let post = |s: &mut flexsc_shim::Submitter, calls: &[flexsc_shim::Call]| {
                let mut tickets = Vec::with_capacity(calls.len());
                for c in calls {
                    // SAFETY: each call writes into its own fixture buffer, which outlives
                    // the ticket (reaped below, before the fixtures drop).
                    match unsafe { s.push(c.nr, c.args) } {
                        flexsc_shim::Push::Posted(ticket) => tickets.push(ticket),
                        // A fresh page of 64 takes a batch of 64, and every call of the
                        // fixture may be delegated.
                        other => {
                            eprintln!("a call of the batch was not posted: {other:?}");
                            std::process::exit(1);
                        }
                    }
                }
                s.submit();
                tickets
            };
            let mut a = post(&mut me, &preads);
            for _ in 0..iters {
                let b = post(&mut other, &preads2);
                for t in a {
                    std::hint::black_box(me.wait(t));
                }
                a = post(&mut me, &preads);
                for t in b {
                    std::hint::black_box(other.wait(t));
                }
            }
            for t in a {
                std::hint::black_box(me.wait(t));
            }
            (iters * 2 + 1) * 64
        }
        "batch64-direct" | "batch64-uring" | "batch64-auto" => {
            for _ in 0..iters {
                // SAFETY: as above.
                unsafe { me.call_batch(&preads, &mut results) };
            }
            iters * 64
        }
        other => {
            eprintln!("unknown WHAT {other:?}\n{usage}");
            std::process::exit(2);
        }
    };
    let ns = start.elapsed().as_nanos() as f64 / calls as f64;
    drop(me);
    let stats = rt.shutdown();
    eprintln!(
        "{what}: {calls} calls, {ns:.0} ns/call; {} batches (mean {:.1}), io_uring: {} calls",
        stats.batches,
        stats.mean_batch(),
        stats.uring_calls
    );
}
