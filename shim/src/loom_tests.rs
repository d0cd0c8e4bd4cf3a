//! Model checks of the page protocol with loom: every interleaving (within loom's bounds)
//! of a submitter, a service thread and a reaper.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p flexsc-shim --release loom`.

use loom::sync::Arc;
use loom::thread;

use crate::doorbell::Doorbell;
use crate::entry::{Claim, Outcome};
use crate::page::SyscallPage;

/// The service thread's side of a pass over one page: take the doorbell, take the page's
/// bits, claim and complete each entry with `nr + 100`. Returns entries served.
fn serve(bell: &Doorbell, page: &SyscallPage) -> usize {
    let mut served = 0;
    bell.take(|index| {
        assert_eq!(index, 0);
        served += serve_page(page);
    });
    served
}

/// Claims and completes (with `nr + 100`) every entry posted in the page.
fn serve_page(page: &SyscallPage) -> usize {
    let mut served = 0;
    let mut bits = page.take_pending();
    while bits != 0 {
        let slot = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        if let Claim::Call { nr, .. } = page.entry(slot).claim() {
            page.entry(slot).complete(nr as i64 + 100);
            served += 1;
        }
    }
    served
}

/// A service thread's loop without watching: passes, sleeping on the doorbell after an
/// empty one, until it has served `calls` calls. Returns the calls served.
fn serve_sleeping(bell: &Doorbell, page: &SyscallPage, calls: usize) -> usize {
    let mut served = 0;
    while served < calls {
        let n = serve(bell, page);
        served += n;
        if n == 0 {
            bell.sleep();
        }
    }
    served
}

/// Explores interleavings with at most `PREEMPTIONS` preemptions per execution: bounded
/// preemption finds almost every real-world race (Musuvathi and Qadeer, PLDI 2007) while
/// keeping the models seconds long. `LOOM_MAX_PREEMPTIONS` overrides it for longer runs.
fn model(f: impl Fn() + Sync + Send + 'static) {
    const PREEMPTIONS: usize = 2;
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    builder.check(f);
}

fn post(bell: &Doorbell, page: &SyscallPage, slot: usize, nr: u32) -> bool {
    page.entry(slot).post(nr, [nr as u64; 6]);
    if page.mark_pending(1 << slot) {
        bell.mark_page(0);
    }
    bell.after_post()
}

/// Submitter posts, service thread runs, owner reaps (and may park): the result arrives
/// exactly once, with the arguments the owner wrote, and the entry ends FREE.
#[test]
fn loom_entry_cycle_with_parking() {
    model(|| {
        let bell = Arc::new(Doorbell::new());
        let page = Arc::new(SyscallPage::new().unwrap());
        let (b, p) = (Arc::clone(&bell), Arc::clone(&page));
        let service = thread::spawn(move || serve_sleeping(&b, &p, 1));
        assert!(!post(&bell, &page, 0, 7));
        assert_eq!(page.entry(0).wait(0), Outcome::Done(107));
        assert_eq!(page.entry(0).status(), crate::entry::FREE);
        service.join().unwrap();
    });
}

/// Two posts into two entries, while the service thread passes and sleeps: no lost
/// wake-up (a lost one would leave the model deadlocked), no call run twice.
#[test]
fn loom_doorbell_never_loses_a_wakeup() {
    model(|| {
        let bell = Arc::new(Doorbell::new());
        let page = Arc::new(SyscallPage::new().unwrap());
        let (b, p) = (Arc::clone(&bell), Arc::clone(&page));
        let service = thread::spawn(move || serve_sleeping(&b, &p, 2));
        post(&bell, &page, 0, 1);
        post(&bell, &page, 1, 2);
        assert_eq!(page.entry(0).wait(0), Outcome::Done(101));
        assert_eq!(page.entry(1).wait(0), Outcome::Done(102));
        assert_eq!(service.join().unwrap(), 2);
    });
}

/// Shutdown: a post racing with `stop`. Either the service thread's last look runs it, or
/// the submitter sees `stopping` and takes it back: never neither, never both.
#[test]
fn loom_shutdown_never_loses_a_post() {
    model(|| {
        let bell = Arc::new(Doorbell::new());
        let page = Arc::new(SyscallPage::new().unwrap());
        let (b, p) = (Arc::clone(&bell), Arc::clone(&page));
        let service = thread::spawn(move || {
            let mut served = 0;
            loop {
                let n = serve(&b, &p);
                served += n;
                if n > 0 {
                    continue;
                }
                if b.is_stopping() {
                    b.fence_before_last_look();
                    let last = serve(&b, &p);
                    served += last;
                    if last == 0 {
                        return served;
                    }
                    continue;
                }
                b.sleep();
            }
        });
        let b = Arc::clone(&bell);
        let stopper = thread::spawn(move || b.stop());
        let stopping = post(&bell, &page, 0, 5);
        let reclaimed = stopping && page.entry(0).reclaim();
        if reclaimed {
            page.entry(0).complete_by_owner(-1);
        }
        let outcome = page.entry(0).wait(0);
        stopper.join().unwrap();
        let served = service.join().unwrap();
        match outcome {
            Outcome::Done(105) => assert!(!reclaimed && served == 1),
            Outcome::Done(-1) => assert!(reclaimed && served == 0),
            other => panic!("unexpected outcome {other:?}"),
        }
    });
}

/// The service thread's loop with watching, as `kernel-side`'s `ServiceThread` runs it:
/// a pass takes the doorbell's pages and the watched page; a page that rang is watched
/// from then on; before sleeping the thread stops watching, ringing the doorbell for any
/// bits posters left to it. Serves `calls` calls, then stops watching and returns.
fn serve_watching(bell: &Doorbell, page: &SyscallPage, calls: usize) {
    let mut watching = false;
    let mut served = 0;
    while served < calls {
        let mut rang = false;
        bell.take(|_| {
            let n = serve_page(page);
            served += n;
            rang |= n > 0;
        });
        if watching {
            let n = serve_page(page);
            served += n;
            rang |= n > 0;
        } else if rang {
            watching = page.watch(1);
        }
        if rang || served == calls {
            continue;
        }
        if watching {
            watching = false;
            if page.unwatch() {
                bell.mark_page(0);
            }
        }
        bell.sleep();
    }
    if watching && page.unwatch() {
        bell.mark_page(0);
    }
}

/// Watching: the owner posts one call, reaps it, posts two more; the service thread
/// watches the page after the first and stops watching whenever it would sleep. No post
/// is stranded between "the poster saw a watcher and did not ring" and "the watcher went
/// to sleep" (a stranded one deadlocks the model), and every call runs exactly once.
#[test]
fn loom_watched_page_never_strands_a_post() {
    model(|| {
        let bell = Arc::new(Doorbell::new());
        let page = Arc::new(SyscallPage::new().unwrap());
        let (b, p) = (Arc::clone(&bell), Arc::clone(&page));
        let service = thread::spawn(move || serve_watching(&b, &p, 3));
        post(&bell, &page, 0, 1);
        assert_eq!(page.entry(0).wait(0), Outcome::Done(101));
        post(&bell, &page, 0, 2);
        post(&bell, &page, 1, 3);
        assert_eq!(page.entry(0).wait(0), Outcome::Done(102));
        assert_eq!(page.entry(1).wait(0), Outcome::Done(103));
        service.join().unwrap();
        assert_eq!(page.pending_bits(), 0);
    });
}

/// A caller that helps with its batch: the service thread takes both bits and claims
/// each entry only as it comes to it, from the oldest; the owner takes back from the
/// newest whatever is still posted and runs it itself. Every call runs exactly once,
/// on one side or the other, and the owner reaps every result.
#[test]
fn loom_helping_caller_and_service_thread_run_each_call_once() {
    model(|| {
        let bell = Arc::new(Doorbell::new());
        let page = Arc::new(SyscallPage::new().unwrap());
        let (b, p) = (Arc::clone(&bell), Arc::clone(&page));
        let service = thread::spawn(move || {
            let mut taken = 0u64;
            b.take(|_| taken |= p.take_pending());
            let mut ran = 0;
            while taken != 0 {
                let slot = taken.trailing_zeros() as usize;
                taken &= taken - 1;
                if let Claim::Call { nr, .. } = p.entry(slot).claim() {
                    p.entry(slot).complete(nr as i64 + 100);
                    ran += 1;
                }
            }
            ran
        });
        post(&bell, &page, 0, 1);
        post(&bell, &page, 1, 2);
        let mut reclaimed = [false; 2];
        for slot in [1, 0] {
            if !page.entry(slot).reclaim() {
                break;
            }
            reclaimed[slot] = true;
        }
        // Where the owner stopped, the service thread had claimed: it claims from the
        // oldest, so everything older is its too.
        for (slot, &mine) in reclaimed.iter().enumerate() {
            if !mine {
                assert_eq!(page.entry(slot).wait(0), Outcome::Done(slot as i64 + 101));
            }
        }
        let ran = service.join().unwrap();
        let helped = reclaimed.iter().filter(|&&r| r).count();
        assert_eq!(ran + helped, 2, "every call ran exactly once");
    });
}

/// A batch handed over whole (`Submitter::call_batch` when its caller does not help):
/// both entries are posted first and their bits set with one `mark_pending` at submit;
/// the owner then spins on the newest entry without reaping (`spin_until_settled`) and
/// reaps both. A service thread that went to sleep before the bits appeared is woken
/// (else the model deadlocks), each call runs once, and both entries end FREE.
#[test]
fn loom_a_batch_published_at_submit_runs_each_call_once() {
    model(|| {
        let bell = Arc::new(Doorbell::new());
        let page = Arc::new(SyscallPage::new().unwrap());
        let (b, p) = (Arc::clone(&bell), Arc::clone(&page));
        let service = thread::spawn(move || serve_sleeping(&b, &p, 2));
        page.entry(0).post(1, [1; 6]);
        page.entry(1).post(2, [2; 6]);
        if page.mark_pending(0b11) {
            bell.mark_page(0);
        }
        assert!(!bell.after_post());
        page.entry(1).spin_until_settled(1);
        assert_eq!(page.entry(0).wait(0), Outcome::Done(101));
        assert_eq!(page.entry(1).wait(0), Outcome::Done(102));
        assert_eq!(service.join().unwrap(), 2, "each call ran once");
        for slot in 0..2 {
            assert_eq!(page.entry(slot).status(), crate::entry::FREE);
        }
    });
}

/// An owner that loses patience (`Entry::wait_or_take_back`): it parks with a timeout
/// (in the model, one that may fire at once), then takes the call back unless a service
/// thread claimed it meanwhile, and then waits for that one to finish it. The call runs
/// exactly once, on one side or the other; a claimed call's completion wakes the parked
/// owner (no lost wake: the model would deadlock); the entry ends FREE.
#[test]
fn loom_an_owner_that_takes_back_and_a_service_thread_run_the_call_once() {
    use crate::entry::{Waited, FREE};
    model(|| {
        let bell = Arc::new(Doorbell::new());
        let page = Arc::new(SyscallPage::new().unwrap());
        let (b, p) = (Arc::clone(&bell), Arc::clone(&page));
        let service = thread::spawn(move || serve(&b, &p));
        post(&bell, &page, 0, 7);
        let entry = page.entry(0);
        let mine = match entry.wait_or_take_back(0, std::time::Duration::from_millis(10), || true) {
            Waited::TakenBack => true,
            Waited::Finished(outcome) => {
                assert_eq!(outcome, Outcome::Done(107));
                false
            }
            Waited::InFlight => {
                assert_eq!(entry.wait(0), Outcome::Done(107));
                false
            }
        };
        let served = service.join().unwrap();
        assert_eq!(served + usize::from(mine), 1, "the call ran exactly once");
        assert_eq!(entry.status(), FREE);
    });
}

/// The relief thread (`kernel-side/src/relief.rs`) against a service thread and an owner
/// that may take its call back: the relief claims a posted entry and declines it to its
/// owner (its path when no worker takes it), the service thread serves, the owner waits
/// with patience. Whoever claims, the call runs exactly once: on the service thread, or
/// on the owner (taken back, or declined to it); and the entry ends FREE.
#[test]
fn loom_relief_service_thread_and_owner_run_the_call_once() {
    use crate::entry::{Waited, FREE, STATE_MASK, SUBMITTED};
    model(|| {
        let bell = Arc::new(Doorbell::new());
        let page = Arc::new(SyscallPage::new().unwrap());
        let (b, p) = (Arc::clone(&bell), Arc::clone(&page));
        let service = thread::spawn(move || serve(&b, &p));
        let p = Arc::clone(&page);
        let relief = thread::spawn(move || {
            let entry = p.entry(0);
            if entry.status() & STATE_MASK == SUBMITTED {
                if let Claim::Call { .. } = entry.claim() {
                    entry.decline(0);
                }
            }
        });
        post(&bell, &page, 0, 7);
        let entry = page.entry(0);
        let outcome = match entry.wait_or_take_back(0, std::time::Duration::from_millis(10), || true) {
            Waited::TakenBack => None,
            Waited::Finished(outcome) => Some(outcome),
            Waited::InFlight => Some(entry.wait(0)),
        };
        let ran_here = match outcome {
            None | Some(Outcome::Declined { done: 0 }) => 1,
            Some(Outcome::Done(107)) => 0,
            other => panic!("unexpected outcome {other:?}"),
        };
        let served = service.join().unwrap();
        relief.join().unwrap();
        assert_eq!(served + ran_here, 1, "the call ran exactly once");
        assert_eq!(entry.status(), FREE);
    });
}

/// A flag raised by a waker: stands for a task being scheduled again.
struct Flag(loom::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, loom::sync::atomic::Ordering::SeqCst);
    }
}

/// An asynchronous call: the task registers its waker and looks at the status while the
/// service thread completes the entry and wakes the slot. The task either sees the result
/// or is woken: a completion is never lost between the task's look and its registration.
#[test]
fn loom_notify_is_never_lost() {
    model(|| {
        let page = Arc::new(SyscallPage::new().unwrap());
        page.entry(0).post_notify(7, [0; 6]);
        let p = Arc::clone(&page);
        let service = thread::spawn(move || {
            if let Claim::Call { nr, .. } = p.entry(0).claim() {
                p.entry(0).complete(nr as i64);
            }
        });
        let flag = std::sync::Arc::new(Flag(loom::sync::atomic::AtomicBool::new(false)));
        let waker = std::task::Waker::from(std::sync::Arc::clone(&flag));
        let mut result = match page.entry(0).poll() {
            Outcome::Pending => None,
            Outcome::Done(r) => Some(r),
            other => panic!("unexpected {other:?}"),
        };
        if result.is_none() {
            page.waker(0).register(&waker);
            result = match page.entry(0).poll() {
                Outcome::Pending => None,
                Outcome::Done(r) => Some(r),
                other => panic!("unexpected {other:?}"),
            };
        }
        service.join().unwrap();
        match result {
            Some(r) => assert_eq!(r, 7),
            None => {
                assert!(
                    flag.0.load(loom::sync::atomic::Ordering::SeqCst),
                    "a completion was lost"
                );
                assert_eq!(page.entry(0).poll(), Outcome::Done(7));
            }
        }
        drop(page.waker(0).take());
    });
}

/// A runtime's start waits for its threads (`Arrivals`): once the wait returns with both
/// counted, what each did before it arrived is seen (the Release increments and the
/// Acquire read, through the increments' release sequence), and no arrival is missed.
#[test]
fn loom_arrivals_are_seen_with_what_came_before_them() {
    use crate::arrivals::Arrivals;
    use loom::sync::atomic::{AtomicU32, Ordering::Relaxed};
    loom::model(|| {
        let arrivals = Arc::new(Arrivals::new());
        let done = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (arrivals, done) = (Arc::clone(&arrivals), Arc::clone(&done));
                thread::spawn(move || {
                    done[i].store(1, Relaxed);
                    arrivals.arrive();
                })
            })
            .collect();
        // (Loom has no clock: the limit is never reached in a model.)
        let arrived = arrivals.wait_for(2, std::time::Duration::from_secs(3600));
        assert_eq!(arrived, 2);
        assert_eq!(
            done[0].load(Relaxed) + done[1].load(Relaxed),
            2,
            "each thread's work is seen"
        );
        for t in threads {
            t.join().unwrap();
        }
    });
}
