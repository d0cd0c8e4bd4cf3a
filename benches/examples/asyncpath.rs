//! The async path alone, for profilers: `flexsc bench`'s `async_pread4k_*` workload (256
//! tasks on `flexsc::executor`, each reading 4 KiB blocks of a cached file with
//! `File::read_at`), repeated.
//!
//! ```text
//! cargo build --release -p flexsc-benches --example asyncpath
//! target/release/examples/asyncpath SAMPLES
//! ```
//!
//! Prints the mean ns per read. See docs/PROFILE.md.

use std::time::Instant;

use flexsc::cli::bench_async::{flexsc_reads, make_file, TASKS};

/// Reads per task per sample, as in `flexsc bench`.
const READS: usize = 16;

fn main() {
    let usage = "usage: asyncpath SAMPLES";
    let Some(Ok(samples)) = std::env::args().nth(1).map(|s| s.parse::<usize>()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary folder: {e}");
            std::process::exit(1);
        }
    };
    let path = dir.path().join("async");
    let started = make_file(&path, READS).and_then(|()| {
        let rt = flexsc::executor::Runtime::new()?;
        let file = rt.block_on(flexsc::fs::File::open(&path))?;
        Ok((rt, file))
    });
    let (rt, file) = match started {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cannot start: {e}");
            std::process::exit(1);
        }
    };
    let start = Instant::now();
    let mut reads = 0;
    for _ in 0..samples {
        reads += flexsc_reads(&rt, &file, READS);
    }
    if reads != samples * TASKS * READS {
        eprintln!("read {reads} blocks of {}", samples * TASKS * READS);
        std::process::exit(1);
    }
    println!(
        "{:.1} ns per read",
        start.elapsed().as_nanos() as f64 / reads as f64
    );
}
