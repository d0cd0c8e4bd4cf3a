//! Direct calls against the syscall pages, and the doorbell against a sweep of every page.
//! (Every call kind on every backend against raw io_uring: `compare.rs`.)
//!
//! `cargo bench -p flexsc-benches` (HTML reports under target/criterion).

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use flexsc_kernel_side::Runtime;
use flexsc_shim::{sys, Call, Shared, SubmitOptions, Submitter};

fn getppid(c: &mut Criterion) {
    let rt = Runtime::builder().build().expect("runtime");
    if let flexsc_kernel_side::Mode::Direct { reason } = rt.mode() {
        eprintln!("note: no service thread ({reason}); the flexsc rows measure direct calls");
    }
    let mut me = rt.submitter().expect("submitter");
    let mut g = c.benchmark_group("getppid");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("direct", |b| {
        // SAFETY: getppid has no arguments and no side effects.
        b.iter(|| black_box(unsafe { sys::syscall6(libc::SYS_getppid as u64, [0; 6]) }))
    });
    g.bench_function("flexsc_single", |b| {
        // SAFETY: as above.
        b.iter(|| black_box(unsafe { me.call(libc::SYS_getppid as u64, [0; 6]) }))
    });
    for n in [8usize, 64] {
        let calls = vec![Call::new(libc::SYS_getppid, [0; 6]); n];
        let mut results = vec![0i64; n];
        g.throughput(criterion::Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("flexsc_batch", n), &n, |b, _| {
            // SAFETY: as above.
            b.iter(|| unsafe { me.call_batch(&calls, &mut results) })
        });
    }
    g.finish();
}

/// What finding work costs when `n` threads own pages and one of them posted: the
/// three-level doorbell against reading every page's pending word.
fn find_work(c: &mut Criterion) {
    let mut g = c.benchmark_group("find_work");
    for n in [1usize, 64, 1024] {
        let shared = std::sync::Arc::new(Shared::new(SubmitOptions::default()).expect("map the page table"));
        let mut subs: Vec<Submitter> = (0..n)
            .map(|_| Submitter::new(shared.clone()).expect("page"))
            .collect();
        let last = subs.last_mut().expect("n >= 1");
        // Post one call on the last page, and never serve it: both finders see it each time.
        // SAFETY: getppid; nothing runs it (no service thread), and the entry is only read.
        let _ticket = unsafe { last.push(libc::SYS_getppid as u64, [0; 6]) };
        g.bench_with_input(BenchmarkId::new("sweep", n), &n, |b, _| {
            b.iter(|| black_box(flexsc_benches::sweep(&shared)))
        });
        g.bench_with_input(BenchmarkId::new("doorbell", n), &n, |b, _| {
            b.iter(|| {
                let mut found = 0;
                shared.doorbell.take(|page| found += page);
                // Put the bits back, as the next post would.
                shared.doorbell.mark_page(n - 1);
                black_box(found)
            })
        });
        std::mem::forget(subs); // their posted entry will never complete
    }
    g.finish();
}

criterion_group!(benches, getppid, find_work);
criterion_main!(benches);
