//! Direct calls against the syscall pages, and the doorbell against a sweep of every page.
//!
//! `cargo bench -p flexsc-benches` (HTML reports under target/criterion).

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use flexsc_kernel_side::{Backend, Runtime};
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
        let shared = std::sync::Arc::new(Shared::new(SubmitOptions::default()));
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

/// 4 KiB preads of a cached file, 64 per batch: direct calls, the pages on each backend,
/// and raw io_uring (the `io-uring` crate, one `submit_and_wait` for 64 reads).
fn pread4k(c: &mut Criterion) {
    use std::os::fd::AsRawFd;
    let file = tempfile_with(64 * 4096);
    let fd = file.as_raw_fd() as u64;
    let mut bufs = vec![0u8; 64 * 4096];
    let calls: Vec<Call> = (0..64)
        .map(|i| {
            Call::new(
                libc::SYS_pread64,
                [
                    fd,
                    bufs[i * 4096..].as_mut_ptr() as u64,
                    4096,
                    (i * 4096) as u64,
                    0,
                    0,
                ],
            )
        })
        .collect();
    let mut results = vec![0i64; 64];
    let mut g = c.benchmark_group("pread4k_batch64");
    g.throughput(criterion::Throughput::Elements(64));
    g.bench_function("direct", |b| {
        b.iter(|| {
            for call in &calls {
                // SAFETY: each pread writes 4 KiB into its own part of `bufs`.
                black_box(unsafe { sys::syscall6(call.nr, call.args) });
            }
        })
    });
    for (name, backend) in [
        ("flexsc_direct_backend", Backend::Direct),
        ("flexsc_io_uring", Backend::Uring),
    ] {
        let rt = Runtime::builder().backend(backend).build().expect("runtime");
        let mut me = rt.submitter().expect("submitter");
        // SAFETY: as above.
        g.bench_function(name, |b| {
            b.iter(|| unsafe { me.call_batch(&calls, &mut results) })
        });
    }
    if let Ok(mut ring) = io_uring::IoUring::new(64) {
        g.bench_function("raw_io_uring", |b| {
            b.iter(|| {
                for (i, call) in calls.iter().enumerate() {
                    let sqe = io_uring::opcode::Read::new(
                        io_uring::types::Fd(fd as i32),
                        call.args[1] as *mut u8,
                        4096,
                    )
                    .offset(call.args[3])
                    .build()
                    .user_data(i as u64);
                    // SAFETY: the buffer outlives the wait below.
                    unsafe { ring.submission().push(&sqe).expect("room for 64") };
                }
                ring.submit_and_wait(64).expect("io_uring_enter");
                ring.completion().for_each(|cqe| {
                    black_box(cqe.result());
                });
            })
        });
    }
    g.finish();
    drop(bufs);
}

fn tempfile_with(len: usize) -> std::fs::File {
    use std::io::Write;
    let path = std::env::temp_dir().join(format!("flexsc-bench-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("temp file");
    let _ = std::fs::remove_file(&path);
    f.write_all(&vec![7u8; len]).expect("fill");
    f
}

criterion_group!(benches, getppid, find_work, pread4k);
criterion_main!(benches);
