//! Every way of making the four measured calls, side by side in one process run:
//!
//! - `direct/N`: N `syscall` instructions on this thread;
//! - `flexsc_single/1`: one call through the syscall page (`Submitter::call`);
//! - `flexsc_<backend>/N`: batches of N (`Submitter::call_batch`) served by a runtime on
//!   the direct, io_uring and auto backends (on direct and auto the waiting caller runs
//!   the calls no service thread has started, the default); `flexsc_direct_service_only/N`:
//!   the direct backend with the caller only waiting (`caller_helps(false)`);
//! - `raw_io_uring/N`: the `io-uring` crate, N SQEs and one `submit_and_wait` (getppid has
//!   no opcode: a NOP stands in, the cost of the ring itself);
//!
//! for `getppid`, a 64-byte `write` to /dev/null, a 4 KiB `pread64` of a cached file and a
//! 64-byte `pwrite64`; and a mixed batch (32 preads, 32 pwrites) on each backend, where
//! the auto backend's per-kind choice shows. Throughput is in calls, so criterion's
//! "thrpt" compares per call.
//!
//! `cargo bench -p flexsc-benches --bench compare` (HTML reports under target/criterion;
//! about 4 minutes on 2 cores). A filter picks rows: `-- 'compare/pread4k'`.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flexsc_benches::{run_direct, run_raw_uring, Fixture, Op};
use flexsc_kernel_side::{Backend, Mode, Runtime};

const BATCHES: [usize; 3] = [1, 8, 64];

fn compare(c: &mut Criterion) {
    let mut fixture = Fixture::new().expect("bench files in $TMPDIR");
    // (name, backend, whether a batch's caller runs the calls nobody has started)
    let backends = [
        ("flexsc_direct", Backend::Direct, true),
        ("flexsc_direct_service_only", Backend::Direct, false),
        ("flexsc_io_uring", Backend::Uring, false),
        ("flexsc_auto", Backend::Auto, true),
    ];
    let runtimes: Vec<(&str, Runtime)> = backends
        .iter()
        .map(|&(name, backend, helps)| {
            (
                name,
                Runtime::builder()
                    .backend(backend)
                    .caller_helps(helps)
                    .build()
                    .expect("runtime"),
            )
        })
        .collect();
    match runtimes[0].1.mode() {
        Mode::Direct { reason } => {
            eprintln!("note: no service thread ({reason}); the flexsc rows measure direct calls")
        }
        Mode::Service { cpus } => flexsc_benches::pin_off(cpus),
    }
    for (name, rt) in &runtimes {
        let stats = rt.stats();
        if stats.backend.contains(':') {
            eprintln!("note: {name}: {}", stats.backend);
        }
    }
    let mut ring = match io_uring::IoUring::new(64) {
        Ok(ring) => Some(ring),
        Err(e) => {
            eprintln!("note: io_uring unavailable ({e}): raw_io_uring rows skipped");
            None
        }
    };
    let mut results = vec![0i64; 64];
    for op in Op::ALL {
        let mut g = c.benchmark_group(format!("compare/{}", op.name()));
        g.warm_up_time(Duration::from_millis(700));
        g.measurement_time(Duration::from_secs(2));
        for n in BATCHES {
            let calls = fixture.calls(op, n);
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new("direct", n), &n, |b, _| {
                // SAFETY: every call writes only into the fixture's buffers and files.
                b.iter(|| unsafe { run_direct(&calls) })
            });
            if n == 1 {
                let call = calls[0];
                let rt = &runtimes[0].1;
                let mut me = rt.submitter().expect("a syscall page");
                g.bench_with_input(BenchmarkId::new("flexsc_single", n), &n, |b, _| {
                    // SAFETY: as above.
                    b.iter(|| std::hint::black_box(unsafe { me.call(call.nr, call.args) }))
                });
            }
            for (name, rt) in &runtimes {
                let mut me = rt.submitter().expect("a syscall page");
                let results = &mut results[..n];
                g.bench_with_input(BenchmarkId::new(*name, n), &n, |b, _| {
                    // SAFETY: as above.
                    b.iter(|| unsafe { me.call_batch(&calls, results) })
                });
            }
            if let Some(ring) = ring.as_mut() {
                g.bench_with_input(BenchmarkId::new("raw_io_uring", n), &n, |b, _| {
                    // SAFETY: the buffers outlive each batch, which waits for all its CQEs.
                    b.iter(|| unsafe { run_raw_uring(ring, &calls) }.expect("io_uring_enter"))
                });
            }
        }
        g.finish();
    }
    // The auto backend's choice on a mixed batch: 32 preads (about as fast either way)
    // and 32 pwrites (slower through io_uring on ext4).
    let reads = fixture.calls(Op::Pread4k, 32);
    let writes = fixture.calls(Op::Pwrite64, 32);
    let mixed: Vec<_> = reads.iter().zip(&writes).flat_map(|(r, w)| [*r, *w]).collect();
    let mut g = c.benchmark_group("compare/mixed_pread4k_pwrite64");
    g.warm_up_time(Duration::from_millis(700));
    g.measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(64));
    g.bench_with_input(BenchmarkId::new("direct", 64), &64, |b, _| {
        // SAFETY: as above.
        b.iter(|| unsafe { run_direct(&mixed) })
    });
    for (name, rt) in &runtimes {
        let mut me = rt.submitter().expect("a syscall page");
        g.bench_with_input(BenchmarkId::new(*name, 64), &64, |b, _| {
            // SAFETY: as above.
            b.iter(|| unsafe { me.call_batch(&mixed, &mut results) })
        });
    }
    g.finish();
    for (name, rt) in runtimes {
        let stats = rt.shutdown();
        eprintln!(
            "{name}: {} batches (mean {:.1} calls), io_uring: {} batches, {} calls",
            stats.batches,
            stats.mean_batch(),
            stats.uring_batches,
            stats.uring_calls
        );
    }
}

criterion_group!(benches, compare);
criterion_main!(benches);
