//! Unmodified programs, natively and under `libflexsc_preload.so`, alternating runs in one
//! process run, with the median wall time of each and their ratio (flexsc ÷ native: lower
//! is better; the adaptive policy's target is at most 1.10).
//!
//! `cargo build --release && cargo bench -p flexsc-benches --bench programs [-- RUNS [POLICY]]`

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROGRAMS: &[(&str, &str)] = &[
    (
        "dd_64B_x2M",
        "dd if=/dev/zero of=/dev/null bs=64 count=2000000 status=none",
    ),
    ("find_usr", "find /usr -type f > /dev/null"),
    ("tar_doc", "tar cf - /usr/share/doc 2>/dev/null > /dev/null"),
];

fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let release = exe.parent().and_then(|d| d.parent()).expect("target/release");
    let lib = release.join("libflexsc_preload.so");
    if !lib.is_file() {
        eprintln!("{} is missing: run `cargo build --release` first", lib.display());
        std::process::exit(2);
    }
    lib
}

fn time(cmd: &str, preload: Option<(&PathBuf, &str)>) -> Duration {
    let mut c = Command::new("sh");
    c.args(["-c", cmd]).stdout(Stdio::null());
    if let Some((lib, policy)) = preload {
        c.env("LD_PRELOAD", lib).env("FLEXSC_POLICY", policy);
    }
    let start = Instant::now();
    let status = c.status().expect("sh runs");
    assert!(status.success(), "{cmd} failed");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let policy = args.get(1).cloned().unwrap_or_else(|| "adaptive".into());
    let lib = library();
    println!("| program | native median | flexsc ({policy}) median | ratio |");
    println!("|---|---|---|---|");
    for (name, cmd) in PROGRAMS {
        // One warm-up of each, so both find the page cache equally warm.
        time(cmd, None);
        time(cmd, Some((&lib, &policy)));
        let (mut native, mut flexsc) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            native.push(time(cmd, None));
            flexsc.push(time(cmd, Some((&lib, &policy))));
        }
        let (n, f) = (median(native), median(flexsc));
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.3} |",
            ms(n),
            ms(f),
            f.as_secs_f64() / n.as_secs_f64()
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
