//! The async path with a disk wait beside it: `asyncpath`'s reads (256 tasks on
//! `flexsc::executor`, 4 KiB blocks of a cached file) while one more task writes 64 bytes
//! and `fsync`s, in a loop. Where the `fsync` runs (on the executor's thread, inline on the
//! service thread, on a blocking worker) decides how long the reads wait behind it.
//!
//! ```text
//! cargo build --release -p flexsc-benches --example fsyncmix
//! target/release/examples/fsyncmix SAMPLES
//! ```
//!
//! Prints the median, 90th percentile and worst sample (ns per read; a sample is 4,096
//! reads) and the `fsync`s done meanwhile. The files go in `$TMPDIR` (or `/tmp`), which
//! must be on a disk: on tmpfs an `fsync` waits for nothing. See docs/PROFILE.md.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use flexsc::cli::bench_async::{flexsc_reads, make_file, TASKS};

/// Reads per task per sample, as in `flexsc bench`.
const READS: usize = 16;

fn main() {
    let usage = "usage: fsyncmix SAMPLES";
    let Some(Ok(samples)) = std::env::args().nth(1).map(|s| s.parse::<usize>()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    if let Err(e) = run(samples.max(1)) {
        eprintln!("fsyncmix: {e}");
        std::process::exit(1);
    }
}

fn run(samples: usize) -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("async");
    make_file(&path, READS)?;
    let rt = flexsc::executor::Runtime::new()?;
    let file = rt.block_on(flexsc::fs::File::open(&path))?;
    let log = rt.block_on(flexsc::fs::File::create(dir.path().join("log")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let syncs = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, syncs) = (Arc::clone(&stop), Arc::clone(&syncs));
        rt.spawn(async move {
            let mut buf = vec![1u8; 64];
            while !stop.load(Ordering::Relaxed) {
                let (written, back) = log.write_at(buf, 0).await;
                written?;
                buf = back;
                log.sync_all().await?;
                syncs.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), std::io::Error>(())
        })
    };
    let mut per_read = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let reads = flexsc_reads(&rt, &file, READS);
        if reads != TASKS * READS {
            return Err(std::io::Error::other(format!(
                "read {reads} blocks of {}",
                TASKS * READS
            )));
        }
        per_read.push(start.elapsed().as_nanos() as f64 / reads as f64);
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(writer)
        .map_err(|_| std::io::Error::other("the writer task panicked"))??;
    per_read.sort_by(f64::total_cmp);
    let at = |q: f64| per_read[((per_read.len() - 1) as f64 * q) as usize];
    println!(
        "ns per read: median {:.0}, p90 {:.0}, worst {:.0}; {} fsyncs",
        at(0.5),
        at(0.9),
        at(1.0),
        syncs.load(Ordering::Relaxed)
    );
    Ok(())
}
