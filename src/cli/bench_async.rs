//! The async comparison: many concurrent tasks each reading 4 KiB blocks of a cached
//! file, through flexsc's async API, through `tokio::fs`, and through raw io_uring.
//!
//! Every side moves the same bytes: [`TASKS`] tasks, each reading `reads` consecutive
//! 4 KiB blocks from its own offset of a file in the page cache.
//! - **flexsc**: tasks on [`flexsc::executor`](crate::executor) calling
//!   [`File::read_at`](crate::fs::File::read_at): each read is an entry posted to the
//!   syscall pages, run by the service thread on the other core, whose completion wakes
//!   the task.
//! - **tokio::fs**: tasks on a tokio multi-thread runtime, each with its own
//!   `tokio::fs::File`, calling `read_exact` on a 4 KiB buffer; tokio runs each read on
//!   its blocking-thread pool (`spawn_blocking`), which is how `tokio::fs` works.
//! - **raw io_uring**: one thread, one ring of [`TASKS`] entries: each step submits one
//!   `IORING_OP_READ` per task and waits for all of them (batched, as the `io-uring` crate
//!   is meant to be used), so it needs no executor at all.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Concurrent tasks.
pub const TASKS: usize = 256;
/// Bytes per read.
pub const BLOCK: usize = 4096;

/// Creates `path` with enough blocks for every task's `reads` and reads it once, so it
/// sits in the page cache.
pub fn make_file(path: &Path, reads: usize) -> io::Result<()> {
    let len = TASKS * reads * BLOCK;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(path, &data)?;
    std::fs::read(path).map(drop)
}

/// Where task `t`'s block `k` starts.
fn offset(t: usize, k: usize, reads: usize) -> u64 {
    ((t * reads + k) * BLOCK) as u64
}

/// flexsc: [`TASKS`] tasks × `reads` reads; returns the reads done.
pub fn flexsc_reads(rt: &crate::executor::Runtime, file: &crate::fs::File, reads: usize) -> usize {
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let file = file.clone();
            rt.spawn(async move {
                let mut buf = Vec::with_capacity(BLOCK);
                let mut done = 0;
                for k in 0..reads {
                    let (n, back) = file.read_at(buf, offset(t, k, reads)).await;
                    buf = back;
                    if n.is_ok_and(|n| n == BLOCK) {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    rt.block_on(async {
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap_or(0);
        }
        total
    })
}

/// tokio::fs: one `File` per task, kept across samples (each sample seeks back first).
pub struct TokioSide {
    rt: tokio::runtime::Runtime,
    files: Vec<Option<tokio::fs::File>>,
}

impl TokioSide {
    /// A tokio multi-thread runtime (its default worker count) and [`TASKS`] open files.
    pub fn new(path: &Path) -> io::Result<TokioSide> {
        let rt = tokio::runtime::Builder::new_multi_thread().build()?;
        let files = rt.block_on(async {
            let mut files = Vec::with_capacity(TASKS);
            for _ in 0..TASKS {
                files.push(Some(tokio::fs::File::open(path).await?));
            }
            Ok::<_, io::Error>(files)
        })?;
        Ok(TokioSide { rt, files })
    }

    /// [`TASKS`] tasks × `reads` reads; returns the reads done.
    pub fn reads(&mut self, reads: usize) -> usize {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let handles: Vec<_> = self
            .files
            .iter_mut()
            .enumerate()
            .filter_map(|(t, f)| f.take().map(|f| (t, f)))
            .map(|(t, mut file)| {
                self.rt.spawn(async move {
                    let mut buf = vec![0u8; BLOCK];
                    let mut done = 0;
                    if file.seek(io::SeekFrom::Start(offset(t, 0, reads))).await.is_ok() {
                        for _ in 0..reads {
                            if file.read_exact(&mut buf).await.is_ok() {
                                done += 1;
                            }
                        }
                    }
                    (t, file, done)
                })
            })
            .collect();
        let files = &mut self.files;
        self.rt.block_on(async {
            let mut total = 0;
            for h in handles {
                if let Ok((t, file, done)) = h.await {
                    files[t] = Some(file);
                    total += done;
                }
            }
            total
        })
    }
}

/// Raw io_uring: one ring of [`TASKS`] entries, one batch of [`TASKS`] reads per step.
pub struct UringSide {
    ring: io_uring::IoUring,
    bufs: Vec<Vec<u8>>,
    file: std::fs::File,
}

impl UringSide {
    /// A ring and [`TASKS`] buffers on `path`.
    pub fn new(path: &Path) -> io::Result<UringSide> {
        Ok(UringSide {
            ring: io_uring::IoUring::new(TASKS as u32)?,
            bufs: vec![vec![0u8; BLOCK]; TASKS],
            file: std::fs::File::open(path)?,
        })
    }

    /// `reads` steps of [`TASKS`] reads; returns the reads done.
    pub fn reads(&mut self, reads: usize) -> usize {
        let fd = io_uring::types::Fd(self.file.as_raw_fd());
        let mut done = 0;
        for k in 0..reads {
            for (t, buf) in self.bufs.iter_mut().enumerate() {
                let sqe = io_uring::opcode::Read::new(fd, buf.as_mut_ptr(), BLOCK as u32)
                    .offset(offset(t, k, reads))
                    .build()
                    .user_data(t as u64);
                // SAFETY: the buffer outlives the wait below, and the ring has an entry
                // per task.
                if unsafe { self.ring.submission().push(&sqe) }.is_err() {
                    return done;
                }
            }
            if self.ring.submit_and_wait(TASKS).is_err() {
                return done;
            }
            done += self
                .ring
                .completion()
                .filter(|c| c.result() == BLOCK as i32)
                .count();
        }
        done
    }
}
