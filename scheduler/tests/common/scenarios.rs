//! Workloads that check every result, run on a given scheduler: by the ordinary tests, and
//! by a child process confined to one core (where every call runs on its caller).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use flexsc_scheduler::sync::{channel, Condvar, Mutex};
use flexsc_scheduler::{spawn, syscall, yield_now, Scheduler};

/// Size of the shared file the pread scenario reads.
const FILE_LEN: usize = 64 * 1024;
/// Bytes each pread reads.
const CHUNK: usize = 32;

/// The byte at `offset` of the shared file: not periodic within the file, so a read from
/// the wrong offset shows.
fn byte_at(offset: usize) -> u8 {
    ((offset % 251) ^ (offset / 251)) as u8
}

/// `threads` user threads each make a few system calls (getppid, two pread64s of a shared
/// file at offsets of their own, getppid again) and check every result.
pub fn syscalls(scheduler: &Scheduler, threads: usize) {
    let mut file = tempfile::tempfile().expect("a temporary file");
    let contents: Vec<u8> = (0..FILE_LEN).map(byte_at).collect();
    file.write_all(&contents).expect("fill the temporary file");
    let fd = file.as_raw_fd() as u64;
    let ppid = std::os::unix::process::parent_id() as i64;

    let failures: Vec<String> = scheduler.block_on(move || {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                spawn(move || {
                    let mut failures = Vec::new();
                    // SAFETY: getppid has no arguments.
                    let got = unsafe { syscall(libc::SYS_getppid, [0; 6]) };
                    if got != ppid {
                        failures.push(format!("thread {i}: getppid gave {got}, expected {ppid}"));
                    }
                    for k in 0..2 {
                        let offset = (i * 131 + k * 4099) % (FILE_LEN - CHUNK);
                        let mut buf = [0u8; CHUNK];
                        let args = [fd, buf.as_mut_ptr() as u64, CHUNK as u64, offset as u64, 0, 0];
                        // SAFETY: pread64 writes at most CHUNK bytes into `buf`, which
                        // lives on this user thread's stack until the call is reaped.
                        let n = unsafe { syscall(libc::SYS_pread64, args) };
                        let want: Vec<u8> = (offset..offset + CHUNK).map(byte_at).collect();
                        if n != CHUNK as i64 {
                            failures.push(format!("thread {i}: pread64 at {offset} gave {n}"));
                        } else if buf[..] != want[..] {
                            failures.push(format!("thread {i}: pread64 at {offset} read wrong bytes"));
                        }
                    }
                    // SAFETY: as above.
                    let again = unsafe { syscall(libc::SYS_getppid, [0; 6]) };
                    if again != ppid {
                        failures.push(format!("thread {i}: second getppid gave {again}"));
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a syscall thread panicked"))
            .collect()
    });
    drop(file);
    assert!(
        failures.is_empty(),
        "{} wrong results; the first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

/// `threads` user threads each add 1 to a shared counter `increments` times, under the
/// user-thread mutex, sometimes yielding while they hold it (so others queue on it).
pub fn mutex_counter(scheduler: &Scheduler, threads: usize, increments: usize) {
    let counter = Arc::new(Mutex::new(0usize));
    let total = scheduler.block_on(move || {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let counter = Arc::clone(&counter);
                spawn(move || {
                    for j in 0..increments {
                        let mut guard = counter.lock();
                        *guard += 1;
                        if j % 16 == 0 {
                            yield_now();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a counting thread panicked");
        }
        let total = *counter.lock();
        total
    });
    assert_eq!(total, threads * increments);
}

/// Two user threads take turns `rounds` times each through a mutex and a condvar.
pub fn condvar_ping_pong(scheduler: &Scheduler, rounds: usize) {
    struct Court {
        /// Whose turn it is: 0 or 1.
        turn: usize,
        rallies: usize,
    }
    let court = Arc::new((Mutex::new(Court { turn: 0, rallies: 0 }), Condvar::new()));
    let rallies = scheduler.block_on(move || {
        let player = |me: usize| {
            let court = Arc::clone(&court);
            spawn(move || {
                let (table, turn_changed) = &*court;
                for _ in 0..rounds {
                    let mut c = turn_changed.wait_while(table.lock(), |c| c.turn != me);
                    c.turn = 1 - me;
                    c.rallies += 1;
                    drop(c);
                    turn_changed.notify_one();
                }
            })
        };
        let (ping, pong) = (player(0), player(1));
        ping.join().expect("ping panicked");
        pong.join().expect("pong panicked");
        let rallies = court.0.lock().rallies;
        rallies
    });
    assert_eq!(rallies, 2 * rounds);
}

/// `senders` user threads send `messages` in all through one channel to a receiving user
/// thread, which checks that each sender's messages arrive complete and in order.
pub fn channel_messages(scheduler: &Scheduler, messages: usize, senders: usize) {
    let per_sender = messages / senders;
    let received = scheduler.block_on(move || {
        let (tx, rx) = channel::<(usize, usize)>();
        let receiver = spawn(move || {
            let mut next = vec![0usize; senders];
            let mut received = 0;
            for (sender, seq) in rx.iter() {
                assert_eq!(seq, next[sender], "sender {sender}'s messages out of order");
                next[sender] += 1;
                received += 1;
            }
            received
        });
        let producers: Vec<_> = (0..senders)
            .map(|sender| {
                let tx = tx.clone();
                spawn(move || {
                    for seq in 0..per_sender {
                        tx.send((sender, seq)).expect("the receiver is alive");
                        if seq % 64 == 0 {
                            yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        for p in producers {
            p.join().expect("a sender panicked");
        }
        receiver.join().expect("the receiver panicked")
    });
    assert_eq!(received, per_sender * senders);
}
