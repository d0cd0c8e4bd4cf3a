//! The call generator of the randomized differential test, shared by
//! `random_differential.rs` (seeded) and the `cargo fuzz` target `fuzz/fuzz_targets/
//! differential.rs` (driven by the fuzzer's bytes): a sequence of system calls with valid
//! and invalid arguments, run by one side (directly, or through a syscall page) in one
//! directory, and every answer recorded.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flexsc_shim::{sys, Submitter};

/// Operations `run_sequence` picks from (the last one, an unknown number, covers the
/// numbers at and past it).
pub const OPS: u64 = 59;
const NAMES: [&str; 6] = ["a", "b", "c", "d/e", "d", "link"];

/// Where choices come from: xorshift64* from a seed, or the fuzzer's bytes (zeros once
/// they run out).
pub enum Rng {
    /// Seeded.
    Seeded(u64),
    /// The bytes, and how many were used.
    Bytes(Vec<u8>, usize),
}

impl Rng {
    pub fn next(&mut self) -> u64 {
        match self {
            Rng::Seeded(s) => {
                *s ^= *s >> 12;
                *s ^= *s << 25;
                *s ^= *s >> 27;
                s.wrapping_mul(0x2545_F491_4F6C_DD1D)
            }
            Rng::Bytes(b, at) => {
                // Two bytes a choice: enough for every `below` here, and the fuzzer's
                // mutations map to few choices.
                let lo = b.get(*at).copied().unwrap_or(0);
                let hi = b.get(*at + 1).copied().unwrap_or(0);
                *at += 2;
                u64::from(u16::from_le_bytes([lo, hi]))
            }
        }
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// Whether the fuzzer's bytes are used up.
    pub fn exhausted(&self) -> bool {
        matches!(self, Rng::Bytes(b, at) if *at >= b.len())
    }
}

/// How one side makes a call.
pub trait Caller {
    /// Makes one call: the raw result.
    fn call(&mut self, nr: i64, args: [u64; 6]) -> i64;
}

pub struct Direct;
impl Caller for Direct {
    fn call(&mut self, nr: i64, args: [u64; 6]) -> i64 {
        // SAFETY: every pointer argument points at a live buffer of the length passed, or is
        // deliberately NULL/unmapped (the kernel answers EFAULT without touching memory).
        unsafe { sys::syscall6(nr as u64, args) }
    }
}

pub struct Pages(pub Submitter);
impl Caller for Pages {
    fn call(&mut self, nr: i64, args: [u64; 6]) -> i64 {
        // SAFETY: as for `Direct`.
        unsafe { self.0.call(nr as u64, args) }
    }
}

/// One observation: what a call returned, with fds replaced by their slot in the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen(pub &'static str, pub i64, pub Vec<u8>);

/// Runs one thread's sequence in `dir` and records every answer.
pub fn run_sequence(rng: &mut Rng, calls: u64, dir: &Path, thread: u64, side: &mut dyn Caller) -> Vec<Seen> {
    let seed = match rng {
        Rng::Seeded(s) => *s,
        Rng::Bytes(..) => 0,
    };
    let mut fds: Vec<i64> = Vec::new();
    let mut seen = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    let names: Vec<CString> = NAMES
        .iter()
        .map(|n| CString::new(dir.join(n).into_os_string().into_encoded_bytes()).expect("no NUL"))
        .collect();
    let paths: Vec<u64> = names.iter().map(|c| c.as_ptr() as u64).collect();
    let mut buf = vec![0u8; 8192];
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 + seed as u32) as u8).collect();
    let at = libc::AT_FDCWD as u64;
    for _ in 0..calls {
        // At most 32 descriptors open per side and thread (oldest closed first): the
        // numbers `open` hands out stay far below the `dup3` targets of every thread.
        if fds.len() >= 32 {
            let oldest = fds.remove(0);
            let r = side.call(libc::SYS_close, [oldest as u64, 0, 0, 0, 0, 0]);
            seen.push(Seen("close oldest", r, Vec::new()));
        }
        let p = rng.pick(&paths[..]);
        // An fd of ours, or one that is certainly not open.
        let fd = if !fds.is_empty() && rng.below(8) != 0 {
            fds[rng.below(fds.len() as u64) as usize]
        } else {
            rng.pick(&[-1i64, 100_000])
        };
        let len = rng.pick(&[0u64, 1, 17, 512, 4096, 8192]);
        let off = rng.pick(&[0i64, 3, 4096, 100_000, -1]);
        // Another of ours (or a bad one), for calls that take two descriptors.
        let fd2 = if !fds.is_empty() && rng.below(8) != 0 {
            fds[rng.below(fds.len() as u64) as usize]
        } else {
            -1
        };
        // Mostly our buffer; sometimes NULL or a kernel address (EFAULT, or nothing moved).
        let bad_buf = rng.below(16) == 0;
        let bufp = if bad_buf {
            rng.pick(&[0u64, 0xffff_8000_0000_0000])
        } else {
            buf.as_mut_ptr() as u64
        };
        let op = rng.below(OPS);
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
                let r = side.call(libc::SYS_read, [fd as u64, bufp, len, 0, 0, 0]);
                let got = if r > 0 && !bad_buf {
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
                let r = side.call(libc::SYS_pread64, [fd as u64, bufp, len, off as u64, 0, 0]);
                let got = if r > 0 && !bad_buf {
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
                // F_SETFL always keeps O_NONBLOCK: a read of an empty pipe must not wait.
                let nb = libc::O_NONBLOCK as u64;
                let arg = rng.pick(&[nb, libc::O_APPEND as u64 | nb, libc::O_NOATIME as u64 | nb]);
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

            23 | 24 => {
                // readv / preadv: two pieces of the buffer.
                let (a, b) = (len / 2, len - len / 2);
                let iov = [
                    libc::iovec {
                        iov_base: bufp as *mut libc::c_void,
                        iov_len: a as usize,
                    },
                    libc::iovec {
                        iov_base: (bufp.wrapping_add(4096)) as *mut libc::c_void,
                        iov_len: b as usize,
                    },
                ];
                let cnt = rng.pick(&[2u64, 0, 1025]);
                let (name, r) = if op == 23 {
                    (
                        "readv",
                        side.call(libc::SYS_readv, [fd as u64, iov.as_ptr() as u64, cnt, 0, 0, 0]),
                    )
                } else {
                    let args = [fd as u64, iov.as_ptr() as u64, cnt, off as u64, 0, 0];
                    ("preadv", side.call(libc::SYS_preadv, args))
                };
                let got = if r > 0 && !bad_buf {
                    let n = r as usize;
                    let first = n.min(a as usize);
                    let mut v = buf[..first].to_vec();
                    v.extend_from_slice(&buf[4096..4096 + (n - first)]);
                    v
                } else {
                    Vec::new()
                };
                seen.push(Seen("readv bytes", 0, got));
                (name, r)
            }
            25 | 26 => {
                let (a, b) = (len / 2, len - len / 2);
                let iov = [
                    libc::iovec {
                        iov_base: data.as_ptr() as *mut libc::c_void,
                        iov_len: a as usize,
                    },
                    libc::iovec {
                        iov_base: data[100..].as_ptr() as *mut libc::c_void,
                        iov_len: b as usize,
                    },
                ];
                let cnt = rng.pick(&[2u64, 0, 1025]);
                if op == 25 {
                    (
                        "writev",
                        side.call(libc::SYS_writev, [fd as u64, iov.as_ptr() as u64, cnt, 0, 0, 0]),
                    )
                } else {
                    let args = [fd as u64, iov.as_ptr() as u64, cnt, off as u64, 0, 0];
                    ("pwritev", side.call(libc::SYS_pwritev, args))
                }
            }
            27 | 28 => {
                // New descriptors that never make a read wait: non-blocking always.
                let mut pair = [-1i32; 2];
                let pp = pair.as_mut_ptr() as u64;
                let (name, r) = if op == 27 {
                    let flags = rng.pick(&[libc::O_NONBLOCK | libc::O_CLOEXEC, libc::O_NONBLOCK, 0x7777]);
                    (
                        "pipe2",
                        side.call(libc::SYS_pipe2, [pp, flags as u64, 0, 0, 0, 0]),
                    )
                } else {
                    let domain = rng.pick(&[libc::AF_UNIX, 9999]);
                    let ty = rng.pick(&[libc::SOCK_STREAM, libc::SOCK_DGRAM])
                        | libc::SOCK_NONBLOCK
                        | libc::SOCK_CLOEXEC;
                    let args = [domain as u64, ty as u64, 0, pp, 0, 0];
                    ("socketpair", side.call(libc::SYS_socketpair, args))
                };
                if r == 0 {
                    fds.push(i64::from(pair[0]));
                    fds.push(i64::from(pair[1]));
                }
                (name, r)
            }
            29 => {
                let flags = (libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) as u64;
                let args = [fd as u64, data.as_ptr() as u64, len, flags, 0, 0];
                ("sendto", side.call(libc::SYS_sendto, args))
            }
            30 => {
                let args = [fd as u64, bufp, len, libc::MSG_DONTWAIT as u64, 0, 0];
                let r = side.call(libc::SYS_recvfrom, args);
                let got = if r > 0 && !bad_buf {
                    buf[..r as usize].to_vec()
                } else {
                    Vec::new()
                };
                seen.push(Seen("recvfrom bytes", 0, got));
                ("recvfrom", r)
            }
            31 => {
                // Onto a number of this thread's own, far above what `open` hands out and
                // below the runtime's descriptors (RLIMIT_NOFILE / 2 and up).
                let target = 384 + 16 * thread + rng.below(8);
                let flags = rng.pick(&[0u64, libc::O_CLOEXEC as u64, 0x7]);
                let r = side.call(libc::SYS_dup3, [fd as u64, target, flags, 0, 0, 0]);
                if r >= 0 && !fds.contains(&r) {
                    fds.push(r);
                }
                ("dup3", r)
            }
            32 => {
                // Shared locks only: an exclusive one would conflict across threads on
                // inodes they share (not every kind of descriptor has an inode of its own),
                // which no comparison could tell from a difference.
                let how = rng.pick(&[libc::LOCK_SH | libc::LOCK_NB, libc::LOCK_UN, 0x40, libc::LOCK_SH]);
                (
                    "flock",
                    side.call(libc::SYS_flock, [fd as u64, how as u64, 0, 0, 0, 0]),
                )
            }
            33 => (
                "fdatasync",
                side.call(libc::SYS_fdatasync, [fd as u64, 0, 0, 0, 0, 0]),
            ),
            34 => {
                let mode = rng.pick(&[0o600u64, 0o755, 0o7777]);
                ("fchmodat", side.call(libc::SYS_fchmodat, [at, p, mode, 0, 0, 0]))
            }
            35 => {
                // SAFETY: geteuid and getegid have no memory effects.
                let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
                let flags = rng.pick(&[0u64, libc::AT_SYMLINK_NOFOLLOW as u64, 0x7]);
                let args = [at, p, u64::from(uid), u64::from(gid), flags, 0];
                ("fchownat", side.call(libc::SYS_fchownat, args))
            }
            36 => {
                let t = libc::timespec {
                    tv_sec: 1_000_000_000,
                    tv_nsec: rng.pick(&[0i64, 5, 2_000_000_000]),
                };
                let times = [t, t];
                let flags = rng.pick(&[0u64, libc::AT_SYMLINK_NOFOLLOW as u64, 0x7]);
                let args = [at, p, times.as_ptr() as u64, flags, 0, 0];
                ("utimensat", side.call(libc::SYS_utimensat, args))
            }
            37 => (
                "truncate",
                side.call(libc::SYS_truncate, [p, off as u64, 0, 0, 0, 0]),
            ),
            38 => {
                let to = rng.pick(&paths[..]);
                let flags = rng.pick(&[0u64, libc::AT_SYMLINK_FOLLOW as u64, 0x7]);
                ("linkat", side.call(libc::SYS_linkat, [at, p, at, to, flags, 0]))
            }
            39 => {
                // SAFETY: all-zero is a valid statx.
                let mut stx: libc::statx = unsafe { std::mem::zeroed() };
                let flags = rng.pick(&[0u64, libc::AT_SYMLINK_NOFOLLOW as u64, 0x7000_0000]);
                let sp = if bad_buf {
                    bufp
                } else {
                    &mut stx as *mut libc::statx as u64
                };
                let args = [at, p, flags, libc::STATX_BASIC_STATS as u64, sp, 0];
                let r = side.call(libc::SYS_statx, args);
                let mode = (u32::from(stx.stx_mode) & 0o170777).to_le_bytes().to_vec();
                seen.push(Seen("statx size/mode", stx.stx_size as i64, mode));
                ("statx", r)
            }
            40 | 41 => {
                // SAFETY: all-zero is a valid statfs.
                let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
                let sp = if bad_buf {
                    bufp
                } else {
                    &mut sfs as *mut libc::statfs as u64
                };
                let (name, r) = if op == 40 {
                    ("statfs", side.call(libc::SYS_statfs, [p, sp, 0, 0, 0, 0]))
                } else {
                    (
                        "fstatfs",
                        side.call(libc::SYS_fstatfs, [fd as u64, sp, 0, 0, 0, 0]),
                    )
                };
                seen.push(Seen("statfs type", sfs.f_type, Vec::new()));
                (name, r)
            }
            42 => {
                let r = side.call(libc::SYS_getcwd, [bufp, len, 0, 0, 0, 0]);
                let got = if r > 0 && !bad_buf {
                    buf[..r as usize].to_vec()
                } else {
                    Vec::new()
                };
                seen.push(Seen("getcwd", 0, got));
                ("getcwd", r)
            }
            43 => {
                let flags = rng.pick(&[0u64, libc::XATTR_CREATE as u64, libc::XATTR_REPLACE as u64]);
                let name = c"user.flexsc".as_ptr() as u64;
                let args = [fd as u64, name, data.as_ptr() as u64, len.min(64), flags, 0];
                ("fsetxattr", side.call(libc::SYS_fsetxattr, args))
            }
            44 => {
                let name = c"user.flexsc".as_ptr() as u64;
                let r = side.call(libc::SYS_fgetxattr, [fd as u64, name, bufp, len, 0, 0]);
                // With size 0 it answers the value's size and copies nothing.
                let got = if r > 0 && len > 0 && !bad_buf {
                    buf[..r as usize].to_vec()
                } else {
                    Vec::new()
                };
                seen.push(Seen("fgetxattr value", 0, got));
                ("fgetxattr", r)
            }
            45 => {
                let args = [fd as u64, 0, fd2 as u64, 0, len, rng.pick(&[0u64, 1])];
                ("copy_file_range", side.call(libc::SYS_copy_file_range, args))
            }
            46 => (
                "sendfile",
                side.call(libc::SYS_sendfile, [fd2 as u64, fd as u64, 0, len, 0, 0]),
            ),
            47 => {
                let advice = rng.pick(&[0u64, 1, 2, 3, 4, 5, 99]);
                let args = [fd as u64, off as u64, len, advice, 0, 0];
                ("fadvise64", side.call(libc::SYS_fadvise64, args))
            }
            48 => (
                "readahead",
                side.call(libc::SYS_readahead, [fd as u64, off as u64, len, 0, 0, 0]),
            ),
            49 => {
                // A regular file, or a type that is none (EINVAL). Never a FIFO: opening
                // one would wait for a writer.
                let mode = rng.pick(&[libc::S_IFREG as u64 | 0o640, 0, 0o170_644]);
                ("mknodat", side.call(libc::SYS_mknodat, [at, p, mode, 0, 0, 0]))
            }
            50 | 51 => {
                // Not eventfd: all eventfds share one anonymous inode, so a chmod or a
                // lock through one would be seen through every other thread's.
                let (name, r) = if op == 50 {
                    let flags = rng.pick(&[libc::O_TMPFILE | libc::O_RDWR, libc::O_TMPFILE | libc::O_RDONLY]);
                    let args = [at, p, flags as u64, 0o600, 0, 0];
                    ("openat O_TMPFILE", side.call(libc::SYS_openat, args))
                } else {
                    let flags = rng.pick(&[libc::MFD_CLOEXEC, libc::MFD_ALLOW_SEALING, 0x7777]);
                    let name = c"flexsc".as_ptr() as u64;
                    (
                        "memfd_create",
                        side.call(libc::SYS_memfd_create, [name, u64::from(flags), 0, 0, 0, 0]),
                    )
                };
                if r >= 0 {
                    fds.push(r);
                }
                (name, r)
            }
            52 => {
                let flags = rng.pick(&[0u64, 7, 0x80]);
                let args = [fd as u64, off as u64, len, flags, 0, 0];
                ("sync_file_range", side.call(libc::SYS_sync_file_range, args))
            }
            53 => {
                let mut n: libc::c_int = -7;
                let np = if bad_buf {
                    bufp
                } else {
                    &mut n as *mut libc::c_int as u64
                };
                let r = side.call(libc::SYS_ioctl, [fd as u64, libc::FIONREAD, np, 0, 0, 0]);
                seen.push(Seen("FIONREAD", i64::from(n), Vec::new()));
                ("ioctl", r)
            }
            54 => {
                let mut pfd = [libc::pollfd {
                    fd: fd as i32,
                    events: libc::POLLIN | libc::POLLOUT,
                    revents: 0,
                }];
                let r = side.call(libc::SYS_poll, [pfd.as_mut_ptr() as u64, 1, 0, 0, 0, 0]);
                seen.push(Seen("poll revents", i64::from(pfd[0].revents), Vec::new()));
                ("poll", r)
            }
            55 => {
                let mode = rng.pick(&[libc::F_OK, libc::R_OK | libc::W_OK, 0x40]);
                let flags = rng.pick(&[
                    0u64,
                    libc::AT_EACCESS as u64,
                    libc::AT_SYMLINK_NOFOLLOW as u64,
                    0x7,
                ]);
                (
                    "faccessat2",
                    side.call(libc::SYS_faccessat2, [at, p, mode as u64, flags, 0, 0]),
                )
            }
            56 => ("getuid", side.call(libc::SYS_getuid, [0; 6])),
            57 => {
                // This thread's own descriptor only: close_range is process-wide.
                let flags = rng.pick(&[0u64, libc::CLOSE_RANGE_CLOEXEC as u64, 0x7]);
                let r = side.call(libc::SYS_close_range, [fd as u64, fd as u64, flags, 0, 0, 0]);
                if r == 0 && flags == 0 {
                    fds.retain(|&f| f != fd);
                }
                ("close_range", r)
            }
            _ => ("unknown nr", side.call(rng.pick(&[470i64, 511, 9999]), [0; 6])),
        };
        // fds differ in number only if the two runs diverged already; record their slot.
        kinds.insert(name);
        let opens = matches!(
            name,
            "openat" | "openat O_TMPFILE" | "dup" | "dup3" | "memfd_create" | "pipe2" | "socketpair"
        );
        let shown = if opens && ret >= 0 && !matches!(name, "pipe2" | "socketpair") {
            fds.iter().position(|&f| f == ret).map_or(-1, |i| i as i64)
        } else {
            ret
        };
        seen.push(Seen(name, shown, Vec::new()));
    }
    for fd in fds {
        let _ = side.call(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
    }
    seen.push(Seen("kinds of calls", kinds.len() as i64, Vec::new()));
    seen
}

pub fn dirent_names(buf: &[u8], n: i64) -> Vec<u8> {
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
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, (String, u64, Vec<u8>)> {
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
            // The kind with the permission bits (fchmod, fchmodat and mknodat set them).
            let kind = format!("{kind} {:o}", meta.permissions().mode() & 0o7777);
            out.insert(rel, (kind, if meta.is_file() { meta.len() } else { 0 }, contents));
        }
    }
    out
}
