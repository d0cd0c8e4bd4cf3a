//! The io_uring backend: a service thread puts the io_uring-capable calls of a batch into
//! one `io_uring_enter`, instead of one `syscall` instruction each.
//!
//! Which calls: file I/O at an offset (`pread64`, `pwrite64`, `preadv`, `pwritev`), `fsync`,
//! `fdatasync`, `openat`, `close`, `statx`, `fallocate`, `ftruncate`, `unlinkat`, `mkdirat`,
//! `renameat2`: each maps to an opcode with exactly the syscall's meaning. A call whose
//! arguments io_uring would read differently runs directly instead: a negative offset
//! (io_uring reads -1 as "the current position"), a length past `MAX_RW_COUNT` (io_uring
//! clamps it, the syscall answers EFAULT), a NULL path.
//!
//! Every SQE of a batch is waited for in the same pass (`submit_and_wait`): these calls
//! wait for the disk at most, as they would inline on the direct backend. Calls that may
//! wait for an event (reads and writes on pipes and sockets, accept, poll) stay on the
//! direct path, with its non-blocking attempt and blocking workers.

use std::io;

use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types, IoUring};

use crate::execute::{MAX_RW_COUNT, TASK_SIZE_MAX};

/// Entries in each service thread's ring: the most SQEs one `io_uring_enter` submits.
pub const RING_ENTRIES: u32 = 256;

/// Which backend runs a service thread's batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// One `syscall` instruction per call.
    Direct,
    /// io_uring for the calls it can run, whatever the batch.
    Uring,
    /// Per batch: io_uring for the batch's reads and metadata calls when there are at
    /// least [`AUTO_MIN_URING`] of them, direct for everything else, writes included.
    /// The default. Measured here (`flexsc bench`, 64 calls a batch): 64-byte pwrites to
    /// an ext4 file cost 2.2 µs each through io_uring (buffered writes go to io_uring's
    /// worker threads) against 0.67 µs direct; 4 KiB cached preads cost the same either
    /// way (0.63 against 0.61 µs).
    #[default]
    Auto,
}

/// Below this many io_uring-capable calls in a batch, `Auto` runs them directly: one
/// `io_uring_enter` costs more than a few direct calls (see `benches/benches/pages.rs`).
pub const AUTO_MIN_URING: usize = 4;

impl Backend {
    /// Parses `FLEXSC_BACKEND`'s value.
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "direct" => Some(Backend::Direct),
            "uring" | "io_uring" => Some(Backend::Uring),
            "auto" => Some(Backend::Auto),
            _ => None,
        }
    }
}

/// One service thread's ring.
pub struct Uring {
    ring: IoUring,
}

/// Why io_uring cannot be used, if it cannot (checked once, at start).
pub fn probe() -> Result<(), String> {
    match IoUring::new(2) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("io_uring unavailable: {e}")),
    }
}

impl Uring {
    /// A ring of [`RING_ENTRIES`] entries, on a high descriptor: the runtime's own
    /// descriptors never take the low numbers a program expects `open` to return (a
    /// program that closes fd 0 and opens a file expects fd 0).
    pub fn new() -> io::Result<Self> {
        let ring = IoUring::new(RING_ENTRIES)?;
        let high = high_fd_floor();
        // SAFETY: F_DUPFD_CLOEXEC on the ring's own open descriptor.
        let mut moved = unsafe { libc::fcntl(ring.as_raw_fd(), libc::F_DUPFD_CLOEXEC, high) };
        if moved < 0 {
            // The floor is past a small RLIMIT_NOFILE (EINVAL): take the highest free
            // descriptor below the limit instead. Left where it is, the ring would hold
            // one of the low numbers the program's next `open` must return.
            moved = highest_free_dup(ring.as_raw_fd());
        }
        if moved < 0 {
            // No room up there (a tiny RLIMIT_NOFILE): keep the ring where it is.
            return Ok(Uring { ring });
        }
        // SAFETY: `moved` is a fresh duplicate of a ring set up with exactly these
        // parameters; the original ring (and its low descriptor) is dropped after.
        let relocated = unsafe { IoUring::from_fd(moved, ring.params().clone()) }?;
        drop(ring);
        Ok(Uring { ring: relocated })
    }

    /// Whether `Auto` sends this call to io_uring: not writes (see [`Backend::Auto`]).
    pub fn auto_wants(nr: u32) -> bool {
        !matches!(
            nr as i64,
            libc::SYS_pwrite64 | libc::SYS_pwritev | libc::SYS_fallocate | libc::SYS_ftruncate
        )
    }

    /// Whether io_uring can run this call with exactly the syscall's meaning, given the
    /// kinds of descriptors already looked up in this batch (`seekable`, extended here).
    ///
    /// Positional reads and writes need a seekable file: on a pipe or socket the syscall
    /// answers ESPIPE, where io_uring would read or write at the stream's head. One fstat
    /// per descriptor per batch tells.
    pub fn can_run(nr: u32, a: &[u64; 6], seekable: &mut Vec<(u64, bool)>) -> bool {
        if sqe(nr, a, 0).is_none() {
            return false;
        }
        let positional = matches!(
            nr as i64,
            libc::SYS_pread64 | libc::SYS_pwrite64 | libc::SYS_preadv | libc::SYS_pwritev
        );
        if !positional {
            return true;
        }
        // The descriptor must also be open for the direction of the transfer: on one that
        // is not, the syscall answers EBADF before it looks at the buffers, while io_uring
        // reads a vectored call's iovecs first (EFAULT for a bad one). Keyed by the number
        // the kernel sees (the low 32 bits) and the direction.
        let writes = matches!(nr as i64, libc::SYS_pwrite64 | libc::SYS_pwritev);
        let fd = a[0] & 0xffff_ffff;
        let key = fd | (u64::from(writes) << 32);
        if let Some(&(_, ok)) = seekable.iter().find(|(f, _)| *f == key) {
            return ok;
        }
        let ok = crate::execute::file_kind(fd) == crate::execute::Kind::Disk && open_for(fd, writes);
        seekable.push((key, ok));
        ok
    }

    /// Runs `calls` (each: number, arguments, and where to put its result) with as few
    /// `io_uring_enter`s as the ring allows, and calls `done(index, result)` for each.
    /// Every call must satisfy [`Uring::can_run`].
    ///
    /// # Safety
    /// The calls are the owners' posted calls: their pointer arguments are the owners'
    /// promise, as for the `syscall` instruction.
    pub unsafe fn run(
        &mut self,
        calls: &[(u32, [u64; 6])],
        mut done: impl FnMut(usize, i64),
    ) -> io::Result<()> {
        let mut next = 0;
        while next < calls.len() {
            let chunk = (calls.len() - next).min(RING_ENTRIES as usize);
            {
                let mut sq = self.ring.submission();
                for (i, (nr, args)) in calls[next..next + chunk].iter().enumerate() {
                    let entry = sqe(*nr, args, (next + i) as u64).expect("checked by can_run");
                    // SAFETY: the SQE's pointers are the owner's (its promise); the ring has
                    // room for `chunk <= RING_ENTRIES` entries, as it is empty here.
                    unsafe { sq.push(&entry).expect("room for a chunk") };
                }
            }
            let mut reaped = 0;
            while reaped < chunk {
                match self.ring.submit_and_wait(chunk - reaped) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                    Err(e) => return Err(e),
                }
                for cqe in self.ring.completion() {
                    done(cqe.user_data() as usize, cqe.result() as i64);
                    reaped += 1;
                }
            }
            next += chunk;
        }
        Ok(())
    }
}

/// Whether `fd` is open for writing (`writes`) or reading, and not an O_PATH descriptor.
fn open_for(fd: u64, writes: bool) -> bool {
    // SAFETY: F_GETFL reads a descriptor's flags; no memory is passed.
    let flags = unsafe { libc::fcntl(fd as i32, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_PATH != 0 {
        return false;
    }
    match flags & libc::O_ACCMODE {
        libc::O_RDWR => true,
        libc::O_WRONLY => writes,
        _ => !writes,
    }
}

/// A duplicate of `fd` on the highest free descriptor below the soft RLIMIT_NOFILE and
/// above `fd`, or -1 if there is none (a few tries from the top; each failed try means
/// every descriptor from there up is taken).
fn highest_free_dup(fd: i32) -> i32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return -1;
    }
    let limit = lim.rlim_cur.min(1 << 20) as i32;
    for want in ((fd + 1)..limit).rev().take(64) {
        // SAFETY: F_DUPFD_CLOEXEC on an open descriptor of ours.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, want) };
        if moved >= 0 {
            return moved;
        }
    }
    -1
}

/// The lowest descriptor the runtime's own descriptors use: half the soft RLIMIT_NOFILE,
/// at least 256.
fn high_fd_floor() -> i32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let cur = if ok {
        lim.rlim_cur.min(1 << 20) as i32
    } else {
        1024
    };
    (cur / 2).max(256)
}

/// The SQE for a call, or None if io_uring would not mean exactly the same.
fn sqe(nr: u32, a: &[u64; 6], user_data: u64) -> Option<squeue::Entry> {
    let fd = types::Fd(a[0] as i32);
    let path_ok = |p: u64| p != 0;
    let io_ok = |buf: u64, len: u64, off: u64| {
        (off as i64) >= 0 && len <= MAX_RW_COUNT && buf.checked_add(len).is_some_and(|e| e <= TASK_SIZE_MAX)
    };
    let iov_ok = |cnt: u64, off: u64| (off as i64) >= 0 && cnt <= libc::UIO_MAXIOV as u64;
    let entry = match nr as i64 {
        libc::SYS_pread64 if io_ok(a[1], a[2], a[3]) => opcode::Read::new(fd, a[1] as *mut u8, a[2] as u32)
            .offset(a[3])
            .build(),
        libc::SYS_pwrite64 if io_ok(a[1], a[2], a[3]) => {
            opcode::Write::new(fd, a[1] as *const u8, a[2] as u32)
                .offset(a[3])
                .build()
        }
        libc::SYS_preadv if iov_ok(a[2], a[3]) => {
            opcode::Readv::new(fd, a[1] as *const libc::iovec, a[2] as u32)
                .offset(a[3])
                .build()
        }
        libc::SYS_pwritev if iov_ok(a[2], a[3]) => {
            opcode::Writev::new(fd, a[1] as *const libc::iovec, a[2] as u32)
                .offset(a[3])
                .build()
        }
        libc::SYS_fsync => opcode::Fsync::new(fd).build(),
        libc::SYS_fdatasync => opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC).build(),
        libc::SYS_openat if path_ok(a[1]) => opcode::OpenAt::new(fd, a[1] as *const libc::c_char)
            .flags(a[2] as i32)
            .mode(a[3] as libc::mode_t)
            .build(),
        libc::SYS_close => opcode::Close::new(fd).build(),
        libc::SYS_statx if path_ok(a[1]) => {
            opcode::Statx::new(fd, a[1] as *const libc::c_char, a[4] as *mut types::statx)
                .flags(a[2] as i32)
                .mask(a[3] as u32)
                .build()
        }
        libc::SYS_fallocate => opcode::Fallocate::new(fd, a[3])
            .offset(a[2])
            .mode(a[1] as i32)
            .build(),
        // A negative length is EINVAL before the descriptor is looked at (a bad one gives
        // EBADF in io_uring): leave it to the syscall.
        libc::SYS_ftruncate if (a[1] as i64) >= 0 => opcode::Ftruncate::new(fd, a[1]).build(),
        libc::SYS_unlinkat if path_ok(a[1]) => opcode::UnlinkAt::new(fd, a[1] as *const libc::c_char)
            .flags(a[2] as i32)
            .build(),
        libc::SYS_mkdirat if path_ok(a[1]) => opcode::MkDirAt::new(fd, a[1] as *const libc::c_char)
            .mode(a[2] as libc::mode_t)
            .build(),
        libc::SYS_renameat2 if path_ok(a[1]) && path_ok(a[3]) => opcode::RenameAt::new(
            fd,
            a[1] as *const libc::c_char,
            types::Fd(a[2] as i32),
            a[3] as *const libc::c_char,
        )
        .flags(a[4] as u32)
        .build(),
        _ => return None,
    };
    Some(entry.user_data(user_data))
}
