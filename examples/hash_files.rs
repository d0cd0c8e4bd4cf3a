//! A file hasher on flexsc's async API: opens and reads every file under the given paths
//! with posted system calls, many files at once, and prints a 64-bit FNV-1a hash of each
//! (like `sha256sum`, with a weaker, dependency-free hash).
//!
//! ```text
//! cargo run --release --example hash_files -- /usr/share/doc
//! ```
//!
//! Options: `--jobs N` files in flight at once (default 64). Directories are walked with
//! `std::fs::read_dir`; the files' opens, metadata, reads and closes are all async.
//! Exits 1 if any file could not be read (each is named on stderr).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;

/// FNV-1a, 64-bit.
fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= b as u64;
        *hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Hashes one file, reading it in 64 KiB blocks.
async fn hash_file(path: PathBuf) -> (PathBuf, std::io::Result<(u64, u64)>) {
    let result = async {
        let file = flexsc::fs::File::open(&path).await?;
        let mut hash = FNV_OFFSET;
        let mut pos = 0u64;
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            let (n, back) = file.read_at(buf, pos).await;
            let n = n?;
            if n == 0 {
                break;
            }
            fnv1a(&mut hash, &back);
            pos += n as u64;
            buf = back;
        }
        file.close().await?;
        Ok((hash, pos))
    }
    .await;
    (path, result)
}

fn walk(roots: Vec<PathBuf>) -> (Vec<PathBuf>, usize) {
    let (mut files, mut errors) = (Vec::new(), 0);
    let mut todo: VecDeque<PathBuf> = roots.into();
    while let Some(p) = todo.pop_front() {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => match std::fs::read_dir(&p) {
                Ok(entries) => {
                    let mut children: Vec<PathBuf> =
                        entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                    children.sort();
                    todo.extend(children);
                }
                Err(e) => {
                    eprintln!("hash_files: {}: {e}", p.display());
                    errors += 1;
                }
            },
            Ok(m) if m.is_file() => files.push(p),
            Ok(_) => {} // symbolic links, devices, sockets: skipped
            Err(e) => {
                eprintln!("hash_files: {}: {e}", p.display());
                errors += 1;
            }
        }
    }
    (files, errors)
}

fn main() -> ExitCode {
    let mut jobs = 64usize;
    let mut roots = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--jobs" {
            match args
                .next()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&j| j > 0)
            {
                Some(j) => jobs = j,
                None => {
                    eprintln!("hash_files: --jobs takes a whole number of at least 1");
                    return ExitCode::from(2);
                }
            }
        } else {
            roots.push(PathBuf::from(a));
        }
    }
    if roots.is_empty() {
        eprintln!("usage: hash_files [--jobs N] PATH...");
        return ExitCode::from(2);
    }
    let (files, mut errors) = walk(roots);
    let started = std::time::Instant::now();
    let (bytes, hashed) = flexsc::block_on(async {
        let mut pending = files.into_iter();
        let mut running = VecDeque::new();
        let (mut bytes, mut hashed) = (0u64, 0usize);
        loop {
            while running.len() < jobs {
                match pending.next() {
                    Some(p) => running.push_back(flexsc::spawn(hash_file(p))),
                    None => break,
                }
            }
            let Some(next) = running.pop_front() else {
                break;
            };
            match next.await {
                Ok((path, Ok((hash, len)))) => {
                    println!("{hash:016x}  {}", path.display());
                    bytes += len;
                    hashed += 1;
                }
                Ok((path, Err(e))) => {
                    eprintln!("hash_files: {}: {e}", path.display());
                    errors += 1;
                }
                Err(_) => errors += 1,
            }
        }
        (bytes, hashed)
    });
    eprintln!(
        "hash_files: {hashed} files, {bytes} bytes in {:.1} ms; {errors} errors",
        started.elapsed().as_secs_f64() * 1e3
    );
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
