//! The async API against tokio::fs and raw io_uring: 256 concurrent tasks, each reading
//! 4 KiB blocks of a cached file (the workloads are `flexsc::cli::bench_async`'s, shared
//! with `flexsc bench`). Criterion reports time per sample of 256 × 16 reads; throughput
//! is set so its report also shows reads per second.
//!
//! `cargo bench -p flexsc-benches --bench async_pread`

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flexsc::cli::bench_async::{flexsc_reads, make_file, TokioSide, UringSide, TASKS};

const READS: usize = 16;

fn async_pread(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("blocks");
    make_file(&path, READS).expect("fixture file");
    let rt = flexsc::executor::Runtime::new().expect("executor");
    let file = rt.block_on(flexsc::fs::File::open(&path)).expect("open fixture");
    let mut tokio = TokioSide::new(&path).expect("tokio runtime");
    let uring = UringSide::new(&path);

    let mut g = c.benchmark_group("async_pread4k_256_tasks");
    g.throughput(Throughput::Elements((TASKS * READS) as u64));
    g.bench_function("flexsc_async", |b| b.iter(|| flexsc_reads(&rt, &file, READS)));
    g.bench_function("tokio_fs", |b| b.iter(|| tokio.reads(READS)));
    match uring {
        Ok(mut uring) => {
            g.bench_function("raw_io_uring_batch256", |b| b.iter(|| uring.reads(READS)));
        }
        Err(e) => eprintln!("SKIPPED raw_io_uring_batch256: io_uring unavailable ({e})"),
    }
    g.finish();
}

criterion_group!(benches, async_pread);
criterion_main!(benches);
