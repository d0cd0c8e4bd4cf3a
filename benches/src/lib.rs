//! Benches for flexsc live in `benches/`; this library holds what they share: the
//! fixtures of the four measured calls, and the raw io_uring baseline.
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use flexsc_shim::Call;

/// Finds posted work the naive way: look at every page's pending bits. The baseline the
/// doorbell is measured against.
pub fn sweep(shared: &flexsc_shim::Shared) -> u64 {
    shared.pages().map(|p| p.pending_bits()).fold(0, |a, b| a | b)
}

pub mod latency;

/// Pins the calling thread to the lowest usable core that is not in `service`, so the
/// measuring thread never shares a core with a service thread (unpinned, the scheduler
/// may put them together, and every call then waits for a time slice).
pub fn pin_off(service: &[usize]) {
    let cores = flexsc_kernel_side::runtime::allowed_cpus();
    match cores.iter().find(|c| !service.contains(c)) {
        Some(&id) => {
            if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                eprintln!("note: cannot pin the measuring thread to core {id}");
            }
        }
        None => {
            eprintln!("note: every usable core runs a service thread; the measuring thread is not pinned")
        }
    }
}

/// The calls the comparisons measure (issue #5's list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `getppid`: the cheapest real call; measures the path itself.
    Getppid,
    /// A 64-byte `write` to `/dev/null`.
    WriteDevNull,
    /// A 4 KiB `pread64` of a cached file.
    Pread4k,
    /// A 64-byte `pwrite64` to a file.
    Pwrite64,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 4] = [Op::Getppid, Op::WriteDevNull, Op::Pread4k, Op::Pwrite64];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Getppid => "getppid",
            Op::WriteDevNull => "write64_devnull",
            Op::Pread4k => "pread4k",
            Op::Pwrite64 => "pwrite64",
        }
    }
}

/// The most calls of one kind a fixture hands out at once.
pub const MAX_BATCH: usize = 64;

/// What the four operations work on: a cached 256 KiB file, `/dev/null`, a scratch file,
/// and the buffers. Files live in a directory of their own, removed on drop.
pub struct Fixture {
    dir: PathBuf,
    data: File,
    devnull: File,
    scratch: File,
    bufs: Vec<u8>,
    record: Box<[u8; 64]>,
}

impl Fixture {
    /// Creates the files (in `$TMPDIR`) and reads the data file once, so it is cached.
    pub fn new() -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "flexsc-bench-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir)?;
        let data_path = dir.join("data");
        std::fs::write(&data_path, vec![7u8; MAX_BATCH * 4096])?;
        let data = File::open(&data_path)?;
        let _ = std::fs::read(&data_path)?;
        let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        let scratch = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("scratch"))?;
        Ok(Fixture {
            dir,
            data,
            devnull,
            scratch,
            bufs: vec![0u8; MAX_BATCH * 4096],
            record: Box::new([b'x'; 64]),
        })
    }

    /// `n` (at most [`MAX_BATCH`]) independent calls of `op`: each pread has its own
    /// buffer and offset, each pwrite its own offset.
    ///
    /// The calls point into the fixture: they are valid while it lives and is not
    /// otherwise used.
    pub fn calls(&mut self, op: Op, n: usize) -> Vec<Call> {
        assert!(n <= MAX_BATCH, "at most {MAX_BATCH} calls");
        let data = self.data.as_raw_fd() as u64;
        let null = self.devnull.as_raw_fd() as u64;
        let out = self.scratch.as_raw_fd() as u64;
        let record = self.record.as_ptr() as u64;
        let base = self.bufs.as_mut_ptr() as u64;
        (0..n)
            .map(|i| {
                let i = i as u64;
                match op {
                    Op::Getppid => Call::new(libc::SYS_getppid, [0; 6]),
                    Op::WriteDevNull => Call::new(libc::SYS_write, [null, record, 64, 0, 0, 0]),
                    Op::Pread4k => {
                        Call::new(libc::SYS_pread64, [data, base + i * 4096, 4096, i * 4096, 0, 0])
                    }
                    Op::Pwrite64 => Call::new(libc::SYS_pwrite64, [out, record, 64, i * 64, 0, 0]),
                }
            })
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs every call directly, one `syscall` instruction each.
///
/// # Safety
/// As for the `syscall` instruction, for every call.
#[inline]
pub unsafe fn run_direct(calls: &[Call]) {
    for c in calls {
        // SAFETY: forwarded from the caller.
        std::hint::black_box(unsafe { flexsc_shim::sys::syscall6(c.nr, c.args) });
    }
}

/// The SQE that does what `call` does, for the four operations: `getppid` has no opcode,
/// so it is a NOP (the cost of the ring itself); a `write` has no offset (-1: the file
/// position, as `write` uses).
pub fn raw_sqe(call: &Call, user_data: u64) -> io_uring::squeue::Entry {
    use io_uring::{opcode, types::Fd};
    let a = call.args;
    let fd = Fd(a[0] as i32);
    let entry = match call.nr as i64 {
        libc::SYS_pread64 => opcode::Read::new(fd, a[1] as *mut u8, a[2] as u32)
            .offset(a[3])
            .build(),
        libc::SYS_pwrite64 => opcode::Write::new(fd, a[1] as *const u8, a[2] as u32)
            .offset(a[3])
            .build(),
        libc::SYS_write => opcode::Write::new(fd, a[1] as *const u8, a[2] as u32)
            .offset(u64::MAX)
            .build(),
        _ => opcode::Nop::new().build(),
    };
    entry.user_data(user_data)
}

/// Runs `calls` through `ring` as one batch: pushes an SQE each, one `submit_and_wait`
/// for all, and reaps every CQE. The ring must have room for the batch.
///
/// # Safety
/// The calls' buffers must be valid until this returns (it waits for every completion).
pub unsafe fn run_raw_uring(ring: &mut io_uring::IoUring, calls: &[Call]) -> io::Result<()> {
    {
        let mut sq = ring.submission();
        for (i, c) in calls.iter().enumerate() {
            // SAFETY: the buffers outlive the wait below (the caller's promise).
            unsafe { sq.push(&raw_sqe(c, i as u64)) }
                .map_err(|_| io::Error::other("the ring has no room for the batch"))?;
        }
    }
    let mut reaped = 0;
    while reaped < calls.len() {
        ring.submit_and_wait(calls.len() - reaped)?;
        for cqe in ring.completion() {
            std::hint::black_box(cqe.result());
            reaped += 1;
        }
    }
    Ok(())
}
