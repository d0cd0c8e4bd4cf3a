//! Seeded randomized differential test: sequences of file-system calls with valid and
//! invalid arguments, run directly and through the pages on identical fixtures, on several
//! threads at once (each in its own directory, so the interleaving cannot change any
//! answer). Every return value, errno and the resulting tree must match.
//!
//! `FLEXSC_FUZZ_SEED=N` picks the seed (default: fixed), `FLEXSC_FUZZ_CALLS=N` the total
//! calls per side (default 100,000, the CI-sized run; raise it for a long run).

#![deny(unsafe_op_in_unsafe_fn)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flexsc_kernel_side::{Mode, Runtime};
use flexsc_shim::{sys, Submitter};

const THREADS: u64 = 4;
const NAMES: [&str; 6] = ["a", "b", "c", "d/e", "d", "link"];

/// xorshift64*: small, seeded, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// How one side makes a call.
trait Caller {
    fn call(&mut self, nr: i64, args: [u64; 6]) -> i64;
}

struct Direct;
impl Caller for Direct {
    fn call(&mut self, nr: i64, args: [u64; 6]) -> i64 {
        // SAFETY: every pointer argument points at a live buffer of the length passed, or is
        // deliberately NULL/unmapped (the kernel answers EFAULT without touching memory).
        unsafe { sys::syscall6(nr as u64, args) }
    }
}

struct Pages(Submitter);
impl Caller for Pages {
    fn call(&mut self, nr: i64, args: [u64; 6]) -> i64 {
        // SAFETY: as for `Direct`.
        unsafe { self.0.call(nr as u64, args) }
    }
}

/// One observation: what a call returned, with fds replaced by their slot in the table.
#[derive(Debug, PartialEq, Eq)]
struct Seen(&'static str, i64, Vec<u8>);

/// Runs one thread's sequence in `dir` and records every answer.
fn run_sequence(seed: u64, calls: u64, dir: &Path, side: &mut dyn Caller) -> Vec<Seen> {
    let mut rng = Rng(seed | 1);
    let mut fds: Vec<i64> = Vec::new();
    let mut seen = Vec::new();
    let names: Vec<CString> = NAMES
        .iter()
        .map(|n| CString::new(dir.join(n).into_os_string().into_encoded_bytes()).expect("no NUL"))
        .collect();
    let paths: Vec<u64> = names.iter().map(|c| c.as_ptr() as u64).collect();
    let mut buf = vec![0u8; 8192];
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 + seed as u32) as u8).collect();
    for _ in 0..calls {
        let p = rng.pick(&paths[..]);
        // An fd of ours, or one that is certainly not open.
        let fd = if !fds.is_empty() && rng.below(8) != 0 {
            fds[rng.below(fds.len() as u64) as usize]
        } else {
            rng.pick(&[-1i64, 100_000])
        };
        let len = rng.pick(&[0u64, 1, 17, 512, 4096, 8192]);
        let off = rng.pick(&[0i64, 3, 4096, 100_000, -1]);
        let op = rng.below(24);
        let (name, ret): (&'static str, i64) = match op {
            0 | 1 => {
                let flags = rng.pick(&[
                    libc::O_RDONLY,
                    libc::O_WRONLY | libc::O_CREAT,
                    libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
                    libc::O_RDWR | libc::O_APPEND | libc::O_CREAT,
                    libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
                    libc::O_RDONLY | libc::O_DIRECTORY,
                    libc::O_WRONLY | libc::O_DIRECTORY,
                ]);
                let r = side.call(
                    libc::SYS_openat,
                    [libc::AT_FDCWD as u64, p, flags as u64, 0o640, 0, 0],
                );
                if r >= 0 {
                    fds.push(r);
                }
                ("openat", r)
            }
            2 => {
                let r = side.call(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
                if r == 0 {
                    fds.retain(|&f| f != fd);
                }
                ("close", r)
            }
            3 => {
                let r = side.call(libc::SYS_read, [fd as u64, buf.as_mut_ptr() as u64, len, 0, 0, 0]);
                let got = if r > 0 {
                    buf[..r as usize].to_vec()
                } else {
                    Vec::new()
                };
                seen.push(Seen("read bytes", 0, got));
                ("read", r)
            }
            4 => (
                "write",
                side.call(libc::SYS_write, [fd as u64, data.as_ptr() as u64, len, 0, 0, 0]),
            ),
            5 => {
                let r = side.call(
                    libc::SYS_pread64,
                    [fd as u64, buf.as_mut_ptr() as u64, len, off as u64, 0, 0],
                );
                let got = if r > 0 {
                    buf[..r as usize].to_vec()
                } else {
                    Vec::new()
                };
                seen.push(Seen("pread bytes", 0, got));
                ("pread64", r)
            }
            6 => (
                "pwrite64",
                side.call(
                    libc::SYS_pwrite64,
                    [fd as u64, data.as_ptr() as u64, len, off as u64, 0, 0],
                ),
            ),
            7 => (
                "lseek",
                side.call(libc::SYS_lseek, [fd as u64, off as u64, rng.below(5), 0, 0, 0]),
            ),
            8 => (
                "ftruncate",
                side.call(libc::SYS_ftruncate, [fd as u64, off as u64, 0, 0, 0, 0]),
            ),
            9 => ("fsync", side.call(libc::SYS_fsync, [fd as u64, 0, 0, 0, 0, 0])),
            10 => {
                // SAFETY: all-zero is a valid stat.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                let r = side.call(
                    libc::SYS_fstat,
                    [fd as u64, &mut st as *mut libc::stat as u64, 0, 0, 0, 0],
                );
                seen.push(Seen(
                    "fstat size/mode",
                    st.st_size,
                    (st.st_mode & 0o170777).to_le_bytes().to_vec(),
                ));
                ("fstat", r)
            }
            11 => {
                // SAFETY: all-zero is a valid stat.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                let flags = rng.pick(&[0u64, libc::AT_SYMLINK_NOFOLLOW as u64, 0x7000_0000]);
                let r = side.call(
                    libc::SYS_newfstatat,
                    [
                        libc::AT_FDCWD as u64,
                        p,
                        &mut st as *mut libc::stat as u64,
                        flags,
                        0,
                        0,
                    ],
                );
                seen.push(Seen(
                    "stat size/mode",
                    st.st_size,
                    (st.st_mode & 0o170777).to_le_bytes().to_vec(),
                ));
                ("newfstatat", r)
            }
            12 => (
                "mkdirat",
                side.call(libc::SYS_mkdirat, [libc::AT_FDCWD as u64, p, 0o750, 0, 0, 0]),
            ),
            13 => {
                let flags = rng.pick(&[0u64, libc::AT_REMOVEDIR as u64, 0x4000]);
                (
                    "unlinkat",
                    side.call(libc::SYS_unlinkat, [libc::AT_FDCWD as u64, p, flags, 0, 0, 0]),
                )
            }
            14 => {
                let to = rng.pick(&paths[..]);
                let flags = rng.pick(&[
                    0u64,
                    libc::RENAME_NOREPLACE as u64,
                    libc::RENAME_EXCHANGE as u64,
                    7,
                ]);
                let at = libc::AT_FDCWD as u64;
                (
                    "renameat2",
                    side.call(libc::SYS_renameat2, [at, p, at, to, flags, 0]),
                )
            }
            15 => {
                let r = side.call(
                    libc::SYS_getdents64,
                    [fd as u64, buf.as_mut_ptr() as u64, len.max(1), 0, 0, 0],
                );
                seen.push(Seen("getdents names", 0, dirent_names(&buf, r)));
                ("getdents64", r)
            }
            16 => (
                "fchmod",
                side.call(
                    libc::SYS_fchmod,
                    [fd as u64, rng.pick(&[0o600u64, 0o755, 0o7777]), 0, 0, 0, 0],
                ),
            ),
            17 => {
                let mode = rng.pick(&[libc::F_OK, libc::R_OK, libc::W_OK | libc::X_OK, 0x40]);
                (
                    "faccessat",
                    side.call(
                        libc::SYS_faccessat,
                        [libc::AT_FDCWD as u64, p, mode as u64, 0, 0, 0],
                    ),
                )
            }
            18 => {
                let r = side.call(libc::SYS_dup, [fd as u64, 0, 0, 0, 0, 0]);
                if r >= 0 {
                    fds.push(r);
                }
                ("dup", r)
            }
            19 => {
                let cmd = rng.pick(&[libc::F_GETFL, libc::F_SETFL, libc::F_GETFD, 0x7777]);
                let arg = rng.pick(&[0u64, libc::O_APPEND as u64, libc::O_NONBLOCK as u64]);
                (
                    "fcntl",
                    side.call(libc::SYS_fcntl, [fd as u64, cmd as u64, arg, 0, 0, 0]),
                )
            }
            20 => {
                // A relative target, the same string on both sides.
                let target = c"d".as_ptr() as u64;
                (
                    "symlinkat",
                    side.call(libc::SYS_symlinkat, [target, libc::AT_FDCWD as u64, p, 0, 0, 0]),
                )
            }
            21 => {
                let r = side.call(
                    libc::SYS_readlinkat,
                    [libc::AT_FDCWD as u64, p, buf.as_mut_ptr() as u64, len, 0, 0],
                );
                let got = if r > 0 {
                    buf[..r as usize].to_vec()
                } else {
                    Vec::new()
                };
                seen.push(Seen("readlink target", 0, got));
                ("readlinkat", r)
            }
            22 => {
                let mode = rng.pick(&[0u64, libc::FALLOC_FL_KEEP_SIZE as u64, 0x7f]);
                (
                    "fallocate",
                    side.call(
                        libc::SYS_fallocate,
                        [fd as u64, mode, off.max(0) as u64, len, 0, 0],
                    ),
                )
            }
            _ => ("unknown nr", side.call(rng.pick(&[470i64, 511, 9999]), [0; 6])),
        };
        // fds differ in number only if the two runs diverged already; record their slot.
        let shown = if matches!(name, "openat" | "dup") && ret >= 0 {
            fds.iter().position(|&f| f == ret).map_or(-1, |i| i as i64)
        } else {
            ret
        };
        seen.push(Seen(name, shown, Vec::new()));
    }
    for fd in fds {
        let _ = side.call(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
    }
    seen
}

fn dirent_names(buf: &[u8], n: i64) -> Vec<u8> {
    let mut names = Vec::new();
    let mut at = 0usize;
    while n > 0 && at + 19 < n as usize {
        let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
        let name = &buf[at + 19..at + reclen];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        names.push(name[..end].to_vec());
        if reclen == 0 {
            break;
        }
        at += reclen;
    }
    names.sort();
    names.join(&b'/')
}

/// The tree under `dir`: relative path -> (kind, size, contents of regular files).
fn tree(dir: &Path) -> BTreeMap<PathBuf, (String, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(dir).expect("below dir").to_path_buf();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let kind = format!("{:?}", meta.file_type());
            let contents = if meta.is_file() {
                std::fs::read(&path).unwrap_or_default()
            } else {
                Vec::new()
            };
            if meta.is_dir() {
                stack.push(path);
            }
            out.insert(rel, (kind, if meta.is_file() { meta.len() } else { 0 }, contents));
        }
    }
    out
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_call_sequences_match_direct_calls() {
    let seed = env_number("FLEXSC_FUZZ_SEED", 0x5eed_f1e5_c0de);
    let total = env_number("FLEXSC_FUZZ_CALLS", 100_000);
    let per_thread = total / THREADS;
    let rt = Arc::new(Runtime::builder().build().expect("runtime"));
    if let Mode::Direct { reason } = rt.mode() {
        eprintln!("note: no service thread ({reason}): this run compares direct with direct");
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
                let direct = run_sequence(s, per_thread, &direct_dir, &mut Direct);
                let mut pages = Pages(rt.submitter().expect("a page"));
                let delegated = run_sequence(s, per_thread, &pages_dir, &mut pages);
                (direct, delegated, tree(&direct_dir), tree(&pages_dir))
            })
        })
        .collect();
    let mut mismatches = Vec::new();
    for (t, th) in threads.into_iter().enumerate() {
        let (direct, delegated, tree_d, tree_p) = th.join().expect("a fuzz thread");
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
        "random differential: seed {seed:#x}, {} calls a side, {} delegated through the pages",
        per_thread * THREADS,
        stats.totals().delegated
    );
    assert!(
        mismatches.is_empty(),
        "seed {seed:#x}:\n{}",
        mismatches.join("\n")
    );
    if let Mode::Service { .. } = rt.mode() {
        assert!(
            stats.totals().delegated > per_thread,
            "the pages were in the path"
        );
    }
}
