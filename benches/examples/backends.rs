//! The backends side by side, in one process run, alternating samples: for each call kind
//! (and a mix of 32 preads and 32 pwrites), batches of 64 through the direct, io_uring and
//! auto backends against the same calls made directly. Prints medians (ns per call) and
//! ratios (backend ÷ direct syscalls; lower is better).
//!
//! `cargo run --release -p flexsc-benches --example backends [ROUNDS]` (default 15 rounds;
//! about 30 s). See docs/PROFILE.md.

use std::time::Instant;

use flexsc_benches::{pin_off, run_direct, Fixture, Op};
use flexsc_kernel_side::{Backend, Mode, Runtime};
use flexsc_shim::Call;

/// Calls per sample.
const CALLS: usize = 8192;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 15,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            eprintln!("invalid ROUNDS: expected a whole number from 1 to 1000");
            std::process::exit(2);
        }
    };
    let backends = [
        ("direct", Backend::Direct),
        ("uring", Backend::Uring),
        ("auto", Backend::Auto),
    ];
    let runtimes: Vec<Runtime> = match backends
        .iter()
        .map(|&(_, b)| Runtime::builder().backend(b).build())
        .collect()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    match runtimes[0].mode() {
        Mode::Service { cpus } => pin_off(cpus),
        Mode::Direct { reason } => eprintln!("note: no service thread ({reason})"),
    }
    let mut fixture = match Fixture::new() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot create the bench files: {e}");
            std::process::exit(1);
        }
    };
    let mut cases: Vec<(String, Vec<Call>)> = Op::ALL
        .iter()
        .map(|&op| (op.name().to_string(), fixture.calls(op, 64)))
        .collect();
    let reads = fixture.calls(Op::Pread4k, 32);
    let writes = fixture.calls(Op::Pwrite64, 32);
    let mixed = reads.iter().zip(&writes).flat_map(|(r, w)| [*r, *w]).collect();
    cases.push(("mixed_pread4k_pwrite64".into(), mixed));

    let mut subs: Vec<_> = match runtimes.iter().map(|rt| rt.submitter()).collect() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("no syscall page: {e}");
            std::process::exit(1);
        }
    };
    let mut results = vec![0i64; 64];
    println!("| batch of 64 | direct syscalls ns/call | direct backend | io_uring backend | auto backend |");
    println!("|---|---|---|---|---|");
    for (name, calls) in &cases {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); 1 + subs.len()];
        for round in 0..=rounds {
            for (j, sample) in samples.iter_mut().enumerate() {
                let start = Instant::now();
                let mut n = 0;
                while n < CALLS {
                    if j == 0 {
                        // SAFETY: every call writes only into the fixture's buffers and files.
                        unsafe { run_direct(calls) };
                    } else {
                        // SAFETY: as above.
                        unsafe { subs[j - 1].call_batch(calls, &mut results) };
                    }
                    n += calls.len();
                }
                // Round 0 warms up.
                if round > 0 {
                    sample.push(start.elapsed().as_nanos() as f64 / n as f64);
                }
            }
        }
        let m: Vec<f64> = samples.into_iter().map(median).collect();
        println!(
            "| {name} | {:.0} | {:.0} ({:.2}) | {:.0} ({:.2}) | {:.0} ({:.2}) |",
            m[0],
            m[1],
            m[1] / m[0],
            m[2],
            m[2] / m[0],
            m[3],
            m[3] / m[0]
        );
    }
    drop(subs);
    for ((name, _), rt) in backends.iter().zip(runtimes) {
        let s = rt.shutdown();
        println!(
            "{name}: {} batches (mean {:.1} calls); io_uring: {} batches, {} calls",
            s.batches,
            s.mean_batch(),
            s.uring_batches,
            s.uring_calls
        );
    }
}
