//! Hostile input: random bytes written over a thread's own syscall page entries (a buggy
//! application) never crash or hang a service thread, never run a call for another
//! page, and never change another page's results.
//!
//! `runtime.rs` checks chosen corruptions one by one; here they are random, many, and
//! mixed with honest calls of another page in the same passes. `FLEXSC_HOSTILE_ROUNDS`
//! (default 2000) scales the hand-driven test.
//!
//! No test asserts a duration; every wait is bounded by [`TIMEOUT`].
#![deny(unsafe_op_in_unsafe_fn)]

#[path = "support/hand.rs"]
mod hand;
#[path = "support/wait.rs"]
mod wait;
use hand::HandDriven;

use std::fs::File;
use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flexsc_kernel_side::{Mode, Runtime};
use flexsc_shim::entry::{BUSY, DECLINED, DONE, FREE, STATE_MASK, SUBMITTED};
use flexsc_shim::page::ENTRIES_PER_PAGE;
use flexsc_shim::{Call, Push, Submitter, Ticket};

const TIMEOUT: Duration = Duration::from_secs(60);
const EINVAL: i64 = -(libc::EINVAL as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn join<T>(handle: JoinHandle<T>, what: &str) -> T {
    wait::join_within(TIMEOUT, handle, what)
}

fn ppid() -> i64 {
    i64::from(std::os::unix::process::parent_id())
}

fn record(i: u64) -> [u8; 8] {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x0123_4567_89ab_cdef).to_le_bytes()
}

fn records_file(n: u64) -> File {
    let mut file = tempfile::tempfile().expect("a temporary file");
    let bytes: Vec<u8> = (0..n).flat_map(record).collect();
    file.write_all(&bytes).expect("write the records");
    file
}

/// xorshift64*.
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
}

/// What a buggy application writes over one of its entries, and what its owner must
/// then find, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A status that is no state: answered with EINVAL, never run.
    Einval,
    /// SUBMITTED with a number no call may be posted under (unknown, or one that must run
    /// on its caller): answered with ENOSYS, never run.
    Enosys,
    /// SUBMITTED with a harmless delegable call: it runs, for this page, and its answer
    /// is what the same call answers when made directly.
    Runs,
    /// A valid state other than SUBMITTED: no service thread touches the entry.
    LeftAlone,
}

/// Random words for an entry, and what they must lead to. Pointer and descriptor
/// arguments of the calls that run are random too, but kept where the kernel answers
/// EFAULT or EBADF (non-canonical addresses, descriptors above 2^30), so the garbage
/// cannot reach this test's own memory or files.
fn garbage(rng: &mut Rng, busy_ok: bool) -> ([u64; 8], Expect) {
    let mut words = [
        rng.next(),
        rng.next(),
        rng.next(),
        rng.next(),
        rng.next(),
        rng.next(),
        rng.next(),
        rng.next(),
    ];
    let high_status = (rng.next() as u32) & !STATE_MASK;
    let state = match rng.below(4) {
        // Any byte at all.
        0 if busy_ok => (rng.next() as u32) & STATE_MASK,
        // Any byte but BUSY.
        0 => (rng.next() as u32 & STATE_MASK) | 0x10,
        // A valid state other than SUBMITTED.
        1 if busy_ok => [FREE, BUSY, DONE, DECLINED][rng.below(4) as usize],
        1 => [FREE, DONE, DECLINED][rng.below(3) as usize],
        // SUBMITTED, with a random or chosen number.
        _ => SUBMITTED,
    };
    let (nr, expect) = if state != SUBMITTED {
        let e = if state > DECLINED {
            Expect::Einval
        } else {
            Expect::LeftAlone
        };
        (rng.next() as u32, e)
    } else {
        let bad_fd = (1u64 << 30) | (rng.next() & 0xffff);
        let bad_ptr = 0x8000_0000_0000_0000 | rng.next();
        match rng.below(8) {
            0 => (rng.next() as u32 | 0x1000, Expect::Enosys),
            1 => {
                let n = [
                    libc::SYS_exit,
                    libc::SYS_exit_group,
                    libc::SYS_gettid,
                    libc::SYS_setuid,
                    libc::SYS_clone,
                    libc::SYS_rt_sigreturn,
                    libc::SYS_seccomp,
                    libc::SYS_setresuid,
                ][rng.below(8) as usize];
                (n as u32, Expect::Enosys)
            }
            2 => (libc::SYS_getppid as u32, Expect::Runs),
            3 => (libc::SYS_getpid as u32, Expect::Runs),
            4 => {
                words[1] = bad_fd;
                (libc::SYS_pread64 as u32, Expect::Runs)
            }
            5 => {
                words[1] = bad_fd;
                (libc::SYS_read as u32, Expect::Runs)
            }
            6 => {
                // fstat of stderr (if open) into an unmapped address.
                words[1] = 2;
                words[2] = bad_ptr;
                (libc::SYS_fstat as u32, Expect::Runs)
            }
            _ => {
                words[1] = bad_fd;
                (libc::SYS_lseek as u32, Expect::Runs)
            }
        }
    };
    words[0] = (u64::from(nr) << 32) | u64::from(high_status | state);
    // A SUBMITTED word with the PARKED flag set is still SUBMITTED; EINVAL answers a
    // status whose state byte is invalid, whatever the flags.
    (words, expect)
}

fn push(sub: &mut Submitter, call: Call) -> Ticket {
    // SAFETY: every caller keeps the call's buffers alive until it reaps the ticket.
    match unsafe { sub.push(call.nr, call.args) } {
        Push::Posted(t) => t,
        other => panic!("expected the call to be posted, got {other:?}"),
    }
}

/// Rounds of: page A posts calls and scribbles random words over some of them; page B
/// posts honest pread64s of distinct records; one pass serves both. B's every answer is
/// its own record; A's garbage gets the answer its words call for, or is left alone.
#[test]
fn random_bytes_over_posted_entries_are_contained() {
    let _serial = serial();
    let rounds = std::env::var("FLEXSC_HOSTILE_ROUNDS")
        .ok()
        .map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("FLEXSC_HOSTILE_ROUNDS={v:?}: expected a whole number"))
        })
        .unwrap_or(2000);
    let mut hand = HandDriven::new();
    // Both pages belong to this thread; neither is dropped by unwinding (dropping waits
    // for calls in flight, which no pass would finish after a failure).
    let mut a = ManuallyDrop::new(Submitter::new(Arc::clone(&hand.shared)).expect("page A"));
    let mut b = ManuallyDrop::new(Submitter::new(Arc::clone(&hand.shared)).expect("page B"));
    let (page_a, page_b) = (a.page_index(), b.page_index());
    let file = records_file(4096);
    let mut bufs = vec![[0u8; 8]; ENTRIES_PER_PAGE];
    let mut rng = Rng(0x6a5b_a6e5);
    let mut tally = [0u64; 4];
    for round in 0..rounds {
        // Page B: honest calls.
        let nb = 1 + rng.below(16) as usize;
        let first = rng.below(4096 - 16);
        let b_tickets: Vec<Ticket> = (0..nb)
            .map(|k| {
                let p = bufs[k].as_mut_ptr() as u64;
                push(
                    &mut b,
                    Call::new(
                        libc::SYS_pread64,
                        [file.as_raw_fd() as u64, p, 8, 8 * (first + k as u64), 0, 0],
                    ),
                )
            })
            .collect();
        // Page A: posted getppids, some overwritten with garbage before the pass.
        let na = 1 + rng.below(8) as usize;
        let mut a_posted: Vec<(usize, Ticket, Option<Expect>)> = Vec::new();
        for _ in 0..na {
            let t = push(&mut a, Call::new(libc::SYS_getppid, [0; 6]));
            let page = hand.shared.page(page_a).expect("page A");
            let slot = (0..ENTRIES_PER_PAGE)
                .find(|s| !a_posted.iter().any(|(x, _, _)| x == s) && page.entry(*s).status() == SUBMITTED)
                .expect("the entry just posted");
            let scribbled = if rng.below(3) != 0 {
                let (words, expect) = garbage(&mut rng, true);
                page.entry(slot).scribble(words);
                Some(expect)
            } else {
                None
            };
            a_posted.push((slot, t, scribbled));
        }
        a.submit();
        b.submit();
        let mut served = 0;
        while hand.pass() > 0 {
            served += 1;
            assert!(served < 100, "round {round}: passes never run dry");
        }
        for (k, t) in b_tickets.into_iter().enumerate() {
            let r = b.poll(&t);
            assert_eq!(
                r,
                Some(8),
                "round {round}: page B call {k} (page A was scribbled)"
            );
            assert_eq!(
                bufs[k],
                record(first + k as u64),
                "round {round}: page B call {k} read another record"
            );
        }
        let page = hand.shared.page(page_a).expect("page A");
        for (slot, t, expect) in a_posted {
            let want = match expect {
                None => Some(ppid()),
                Some(Expect::Einval) => Some(EINVAL),
                Some(Expect::Enosys) => Some(ENOSYS),
                Some(Expect::Runs) => {
                    let (nr, args) = page.entry(slot).contents();
                    // SAFETY: `garbage` made this call harmless: a getppid, a getpid, or a
                    // call on a descriptor above 2^30 or into a non-canonical address.
                    Some(unsafe { flexsc_shim::sys::syscall6(u64::from(nr), args) })
                }
                Some(Expect::LeftAlone) => {
                    let st = page.entry(slot).status() & STATE_MASK;
                    assert!(
                        st <= DECLINED,
                        "round {round}: slot {slot} left alone, yet now {st}"
                    );
                    // The application's own mess: complete it so its ticket can be reaped.
                    page.entry(slot).scribble([u64::from(DONE), 0, 0, 0, 0, 0, 0, 0]);
                    let _ = a.poll(&t);
                    tally[3] += 1;
                    continue;
                }
            };
            let got = a.poll(&t);
            assert!(
                got.is_some(),
                "round {round}: slot {slot} ({expect:?}) was never answered"
            );
            if let Some(w) = want {
                assert_eq!(got, Some(w), "round {round}: slot {slot} ({expect:?})");
            }
            tally[match expect {
                Some(Expect::Einval) => 0,
                Some(Expect::Enosys) => 1,
                _ => 2,
            }] += 1;
        }
        assert_eq!(page_b, b.page_index());
    }
    eprintln!(
        "{rounds} rounds: {} invalid states answered EINVAL, {} forbidden or unknown numbers answered ENOSYS, {} calls ran for their own page, {} valid non-posted states left alone",
        tally[0], tally[1], tally[2], tally[3]
    );
    // The pages still work.
    let t = push(&mut a, Call::new(libc::SYS_getppid, [0; 6]));
    a.submit();
    assert_eq!(hand.pass(), 1);
    assert_eq!(a.poll(&t), Some(ppid()));
    ManuallyDrop::into_inner(a);
    ManuallyDrop::into_inner(b);
    hand.finish();
}

/// A running runtime: one thread keeps posting calls and scribbling random words over
/// them while the service thread may be taking them, and four others make checked calls
/// all along. The others' answers are all right, the service thread lives on, and the
/// runtime shuts down.
#[test]
fn scribbling_thread_beside_honest_threads_on_a_running_runtime() {
    let _serial = serial();
    let rt = Arc::new(Runtime::builder().build().expect("a runtime"));
    if let Mode::Direct { reason } = rt.mode() {
        eprintln!("SKIPPED scribbling_thread_beside_honest_threads: no service thread ({reason})");
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let scribbler = {
        let (rt, stop) = (Arc::clone(&rt), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut rng = Rng(0xbad_5eed);
            let (mut scribbles, mut self_inflicted) = (0u64, 0u64);
            while !stop.load(SeqCst) {
                // A scribbled entry can race with the service thread's own use of it (an
                // entry forced DONE here, then completed there): the page is broken for
                // its owner, whose next post may trip the entry's own checks. That harms
                // only the scribbling thread; it starts over on a fresh page. The broken
                // page is leaked, never dropped (dropping waits for its calls).
                let mut sub = ManuallyDrop::new(rt.submitter().expect("a page"));
                let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let page = rt.shared().page(sub.page_index()).expect("its page");
                    while !stop.load(SeqCst) {
                        let t = push(&mut sub, Call::new(libc::SYS_getppid, [0; 6]));
                        let slot = (0..ENTRIES_PER_PAGE)
                            .find(|s| page.entry(*s).status() & STATE_MASK == SUBMITTED)
                            .unwrap_or(0);
                        let (words, _) = garbage(&mut rng, false);
                        page.entry(slot).scribble(words);
                        scribbles += 1;
                        sub.submit();
                        // Give the service thread a moment; then whatever the entry holds,
                        // force it finished so the ticket can be reaped.
                        // An entry BUSY is the service thread's (garbage here never
                        // writes BUSY): wait for it, bounded.
                        let start = Instant::now();
                        let mut reaped = false;
                        while !reaped {
                            reaped = sub.poll(&t).is_some();
                            let busy = page.entry(slot).status() & STATE_MASK == BUSY;
                            if !busy && start.elapsed() > Duration::from_millis(2) {
                                break;
                            }
                            assert!(start.elapsed() < TIMEOUT, "the service thread kept an entry BUSY");
                            std::thread::yield_now();
                        }
                        if !reaped {
                            page.entry(slot).scribble([u64::from(DONE), 0, 0, 0, 0, 0, 0, 0]);
                            assert!(sub.poll(&t).is_some(), "a DONE entry is reaped");
                        }
                    }
                }));
                if round.is_err() {
                    self_inflicted += 1;
                }
            }
            (scribbles, self_inflicted)
        })
    };
    let file = Arc::new(records_file(256));
    let honest: Vec<_> = (0..4u64)
        .map(|h| {
            let (rt, file) = (Arc::clone(&rt), Arc::clone(&file));
            std::thread::spawn(move || {
                let mut sub = rt.submitter().expect("a page");
                let mut buf = [0u8; 8];
                for k in 0..3_000u64 {
                    // SAFETY: getppid has no arguments.
                    assert_eq!(unsafe { sub.call(libc::SYS_getppid as u64, [0; 6]) }, ppid());
                    let r = (k * 7 + h) % 256;
                    let args = [file.as_raw_fd() as u64, buf.as_mut_ptr() as u64, 8, 8 * r, 0, 0];
                    // SAFETY: reads 8 bytes into `buf`, alive for the call.
                    assert_eq!(unsafe { sub.call(libc::SYS_pread64 as u64, args) }, 8);
                    assert_eq!(buf, record(r), "honest thread {h}: call {k}");
                }
            })
        })
        .collect();
    for h in honest {
        join(h, "an honest thread's calls beside the scribbler");
    }
    stop.store(true, SeqCst);
    let (scribbles, self_inflicted) = join(scribbler, "the scribbler to stop");
    // The service thread still serves.
    let mut sub = rt.submitter().expect("a page");
    // SAFETY: getppid has no arguments.
    assert_eq!(unsafe { sub.call(libc::SYS_getppid as u64, [0; 6]) }, ppid());
    drop(sub);
    let rt = Arc::into_inner(rt).expect("every thread is gone");
    let stats = join(
        std::thread::spawn(move || rt.shutdown()),
        "the runtime to shut down",
    );
    eprintln!(
        "{scribbles} entries scribbled beside 24,000 honest calls; the scribbler broke its own page {self_inflicted} times; {} batches",
        stats.batches
    );
}
