//! Seeded randomized differential test: sequences of file-system, descriptor, pipe,
//! socket and metadata calls (58 kinds, and unknown numbers) with valid and invalid
//! arguments (bad descriptors, flags, offsets, NULL and kernel-address buffers), run directly and through the pages on identical fixtures, on several
//! threads at once (each in its own directory, so the interleaving cannot change any
//! answer). Every return value, errno and the resulting tree must match.
//!
//! `FLEXSC_FUZZ_SEED=N` picks the seed (default: fixed), `FLEXSC_FUZZ_CALLS=N` the total
//! calls per side (default 100,000, the CI-sized run; raise it for a long run), and the
//! `FLEXSC_*` variables configure the runtime (`FLEXSC_BACKEND=uring`, say). See
//! docs/RELIABILITY.md for the long run.
//!
//! What keeps the comparison exact with four threads in one process: each thread works in
//! a directory of its own; `dup3` targets a range of numbers of its own, far above the at
//! most 32 descriptors a thread keeps open; `flock` takes shared locks only and no eventfd
//! is made (eventfds share one inode); every pipe, socket and F_SETFL keeps O_NONBLOCK, so
//! no read waits; bytes are recorded only where the kernel wrote them.

#![deny(unsafe_op_in_unsafe_fn)]

use std::sync::Arc;

use flexsc_kernel_side::{Builder, Mode};
use flexsc_shim::sys;

#[path = "support/calls.rs"]
mod calls;

use calls::{run_sequence, tree, Direct, Pages, Rng, Seen};

const THREADS: u64 = 4;

/// A whole number from the environment, or `default`; anything else fails the test with
/// the variable's name and the valid form.
fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: expected a whole number (0 to 2^64-1)")),
    }
}

#[test]
fn random_call_sequences_match_direct_calls() {
    let seed = env_number("FLEXSC_FUZZ_SEED", 0x5eed_f1e5_c0de);
    let total = env_number("FLEXSC_FUZZ_CALLS", 100_000);
    let per_thread = total / THREADS;
    // A write to a pipe or socket whose other end is closed answers EPIPE on both sides,
    // not SIGPIPE (Rust's runtime ignores it already; say so here too).
    // SAFETY: setting a signal's disposition to SIG_IGN has no other effect.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // The FLEXSC_* variables apply (FLEXSC_BACKEND=uring sends every batch it can through
    // io_uring).
    let builder = Builder::from_env().unwrap_or_else(|e| panic!("{e}"));
    let rt = Arc::new(builder.build().expect("runtime"));
    if let Mode::Direct { reason } = rt.mode() {
        eprintln!(
            "SKIPPED (in part) {}: no service thread ({reason}): this run compares direct \
             with direct",
            std::thread::current().name().unwrap_or("?")
        );
    }
    let root = tempfile::tempdir().expect("temp dir");
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let rt = Arc::clone(&rt);
            let direct_dir = root.path().join(format!("direct-{t}"));
            let pages_dir = root.path().join(format!("pages-{t}"));
            std::thread::spawn(move || {
                for d in [&direct_dir, &pages_dir] {
                    std::fs::create_dir_all(d.join("d")).expect("fixture");
                    std::fs::write(d.join("a"), b"fixture a").expect("fixture");
                }
                let s = seed.wrapping_add(t.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let direct = run_sequence(&mut Rng::Seeded(s | 1), per_thread, &direct_dir, t, &mut Direct);
                let mut pages = Pages(rt.submitter().expect("a page"));
                let delegated = run_sequence(&mut Rng::Seeded(s | 1), per_thread, &pages_dir, t, &mut pages);
                (direct, delegated, tree(&direct_dir), tree(&pages_dir))
            })
        })
        .collect();
    let mut mismatches = Vec::new();
    let mut kinds = 0;
    for (t, th) in threads.into_iter().enumerate() {
        let (direct, delegated, tree_d, tree_p) = th.join().expect("a fuzz thread");
        if let Some(Seen("kinds of calls", k, _)) = direct.last() {
            kinds = kinds.max(*k);
        }
        assert_eq!(direct.len(), delegated.len());
        if let Some(i) = (0..direct.len()).find(|&i| direct[i] != delegated[i]) {
            let from = i.saturating_sub(3);
            mismatches.push(format!(
                "thread {t}, call {i}: direct {:?} pages {:?}\n  before: {:?}",
                direct[i],
                delegated[i],
                &direct[from..i]
            ));
        }
        if tree_d != tree_p {
            mismatches.push(format!(
                "thread {t}: trees differ: direct {:?} pages {:?}",
                tree_d.keys(),
                tree_p.keys()
            ));
        }
    }
    let stats = rt.stats();
    eprintln!(
        "random differential: seed {seed:#x}, {} calls a side of {kinds} kinds, {} delegated through the pages",
        per_thread * THREADS,
        stats.totals().delegated
    );
    assert!(
        mismatches.is_empty(),
        "seed {seed:#x}:\n{}",
        mismatches.join("\n")
    );
    if per_thread >= 10_000 {
        assert!(kinds >= 40, "only {kinds} kinds of calls were made");
    }
    if let Mode::Service { .. } = rt.mode() {
        assert!(
            stats.totals().delegated > per_thread,
            "the pages were in the path"
        );
    }
}

/// Regression (found by this test with FLEXSC_BACKEND=uring, fixed in `uring.rs`): a
/// negative length with a bad descriptor: ftruncate answers EINVAL (it checks the length
/// first), io_uring's FTRUNCATE answered EBADF.
#[test]
fn ftruncate_negative_length_on_a_bad_descriptor_through_io_uring() {
    if let Err(why) = flexsc_kernel_side::uring::probe() {
        eprintln!("SKIPPED {}: {why}", std::thread::current().name().unwrap_or("?"));
        return;
    }
    let rt = Builder::new()
        .backend(flexsc_kernel_side::Backend::Uring)
        .build()
        .expect("runtime");
    if let Mode::Direct { reason } = rt.mode() {
        eprintln!(
            "SKIPPED {}: no service thread ({reason})",
            std::thread::current().name().unwrap_or("?")
        );
        return;
    }
    let file = tempfile::tempfile().expect("a temporary file");
    let good = std::os::fd::AsRawFd::as_raw_fd(&file) as u64;
    let mut sub = rt.submitter().expect("a page");
    let cases: Vec<flexsc_shim::Call> = [
        (u64::MAX, -1i64),
        (100_000, -1),
        (good, -1),
        (good, 10),
        (100_000, 10),
    ]
    .iter()
    .map(|&(fd, len)| flexsc_shim::Call::new(libc::SYS_ftruncate, [fd, len as u64, 0, 0, 0, 0]))
    .collect();
    let mut results = vec![i64::MIN; cases.len()];
    // SAFETY: ftruncate takes no pointers.
    unsafe { sub.call_batch(&cases, &mut results) };
    for (c, r) in cases.iter().zip(&results) {
        // SAFETY: as above.
        let direct = unsafe { sys::syscall6(c.nr, c.args) };
        assert_eq!(
            *r, direct,
            "ftruncate({}, {})",
            c.args[0] as i64, c.args[1] as i64
        );
    }
}

/// Regression (found by this test with FLEXSC_BACKEND=uring, fixed in `uring.rs`): a
/// preadv on a descriptor open only for writing, with an iovec pointing at a kernel
/// address: preadv answers EBADF (it checks the descriptor's mode first), io_uring's READV
/// answered EFAULT (it imports the iovecs first). Likewise pwritev on a read-only one.
#[test]
fn vectored_transfer_against_the_descriptors_mode_through_io_uring() {
    if let Err(why) = flexsc_kernel_side::uring::probe() {
        eprintln!("SKIPPED {}: {why}", std::thread::current().name().unwrap_or("?"));
        return;
    }
    let rt = Builder::new()
        .backend(flexsc_kernel_side::Backend::Uring)
        .build()
        .expect("runtime");
    if let Mode::Direct { reason } = rt.mode() {
        eprintln!(
            "SKIPPED {}: no service thread ({reason})",
            std::thread::current().name().unwrap_or("?")
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("f");
    std::fs::write(&path, [7u8; 4096]).expect("fixture");
    let wo = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("write-only");
    let ro = std::fs::File::open(&path).expect("read-only");
    let mut buf = [0u8; 64];
    let bad = [libc::iovec {
        iov_base: 0xffff_8000_0000_0000usize as *mut libc::c_void,
        iov_len: 16,
    }];
    let good = [libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: 64,
    }];
    let fd = |f: &std::fs::File| std::os::fd::AsRawFd::as_raw_fd(f) as u64;
    let mut sub = rt.submitter().expect("a page");
    let mut calls = Vec::new();
    for iov in [bad.as_ptr() as u64, good.as_ptr() as u64] {
        for (nr, f) in [
            (libc::SYS_preadv, &wo),
            (libc::SYS_pwritev, &ro),
            (libc::SYS_preadv, &ro),
            (libc::SYS_pwritev, &wo),
        ] {
            calls.push(flexsc_shim::Call::new(nr, [fd(f), iov, 1, 0, 0, 0]));
        }
    }
    for c in &calls {
        let mut results = vec![i64::MIN; 4];
        // A batch of four, so io_uring runs them together.
        let four = [*c; 4];
        // SAFETY: the iovecs point at `buf` (64 bytes, alive) or at a kernel address.
        unsafe { sub.call_batch(&four, &mut results) };
        // SAFETY: as above.
        let direct = unsafe { sys::syscall6(c.nr, c.args) };
        for r in results {
            assert_eq!(
                r, direct,
                "nr {} on fd {} with iovec {:#x}",
                c.nr, c.args[0], c.args[1]
            );
        }
    }
}
