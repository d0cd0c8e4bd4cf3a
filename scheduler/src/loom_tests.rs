//! Model checks with loom of the two cross-thread handshakes: the inbox's sleep/wake (a
//! lost wake-up would leave a model thread waiting forever, which loom reports as a
//! deadlock) and the user-thread parker with its delivery through the inbox.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p flexsc-scheduler --release loom`.

use loom::sync::Arc;
use loom::thread;

use crate::inbox::{Inbox, Message};
use crate::park::UserParker;

/// Explores interleavings with at most `PREEMPTIONS` preemptions per execution (as in the
/// shim's models); `LOOM_MAX_PREEMPTIONS` overrides it.
fn model(f: impl Fn() + Sync + Send + 'static) {
    const PREEMPTIONS: usize = 3;
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    builder.check(f);
}

/// The owner's side of the loop, reduced to the inbox: take messages, sleep when there
/// are none, until `want` wakes arrived. Returns the keys, in arrival order.
fn owner_receives(inbox: &Inbox, want: usize) -> Vec<u32> {
    let mut keys = Vec::new();
    let mut messages = Vec::new();
    while keys.len() < want {
        if inbox.has_pending() {
            inbox.take(&mut messages);
            for message in messages.drain(..) {
                match message {
                    Message::Wake(key) => keys.push(key),
                    Message::Spawn(_) => unreachable!("the models send only wakes"),
                }
            }
            continue;
        }
        inbox.sleep(None);
    }
    keys
}

/// A message sent while the owner goes to sleep is never left unseen.
#[test]
fn loom_inbox_never_loses_a_wakeup() {
    model(|| {
        let inbox = Arc::new(Inbox::new());
        let sender = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || inbox.send(Message::Wake(7)))
        };
        assert_eq!(owner_receives(&inbox, 1), vec![7]);
        sender.join().unwrap();
    });
}

/// Two senders racing each other and the owner's sleep: both messages arrive, once each.
#[test]
fn loom_inbox_two_senders() {
    model(|| {
        let inbox = Arc::new(Inbox::new());
        let senders: Vec<_> = [1, 2]
            .into_iter()
            .map(|key| {
                let inbox = Arc::clone(&inbox);
                thread::spawn(move || inbox.send(Message::Wake(key)))
            })
            .collect();
        let mut keys = owner_receives(&inbox, 2);
        keys.sort_unstable();
        assert_eq!(keys, vec![1, 2]);
        for sender in senders {
            sender.join().unwrap();
        }
    });
}

/// A stop racing the owner's sleep wakes it.
#[test]
fn loom_inbox_stop_wakes_a_sleeper() {
    model(|| {
        let inbox = Arc::new(Inbox::new());
        let stopper = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || inbox.stop())
        };
        while !inbox.is_stopping() {
            inbox.sleep(None);
        }
        stopper.join().unwrap();
    });
}

/// A user thread parks while another kernel thread unparks it: the parker either takes
/// the token without switching out, or switches out and is delivered exactly once through
/// its home inbox; the waker's write before unpark is visible after park.
#[test]
fn loom_parker_with_remote_delivery() {
    model(|| {
        const KEY: u32 = 3;
        let home = std::sync::Arc::new(Inbox::new());
        let parker = Arc::new(UserParker::new(std::sync::Arc::clone(&home), KEY));
        let flag = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let waker = {
            let (home, parker, flag) = (
                std::sync::Arc::clone(&home),
                Arc::clone(&parker),
                Arc::clone(&flag),
            );
            thread::spawn(move || {
                flag.store(true, loom::sync::atomic::Ordering::Relaxed);
                if parker.unpark() {
                    home.send(Message::Wake(KEY));
                }
            })
        };
        // The user thread: park until the flag is set (parking may return early only by
        // taking the token, which the waker leaves after setting the flag).
        let mut delivered = 0;
        parker.park(|| {
            // Switched out: the home kernel thread's loop runs until the delivery.
            assert_eq!(owner_receives(&home, 1), vec![KEY]);
            delivered += 1;
        });
        assert!(flag.load(loom::sync::atomic::Ordering::Relaxed));
        assert!(delivered <= 1);
        waker.join().unwrap();
        // Nothing else was delivered.
        assert!(!home.has_pending());
    });
}

/// The executor's idle handshake: a worker that finds no task sleeps, a waker queues one
/// and unparks a sleeping worker. The task is always run (a lost wake-up would leave the
/// worker parked forever, which loom reports as a deadlock).
#[test]
fn loom_executor_idle_never_loses_a_task() {
    use crate::executor::idle::Idle;
    model(|| {
        let idle = Arc::new(Idle::new(1));
        let queue = Arc::new(loom::sync::Mutex::new(0usize));
        let (i2, q2) = (Arc::clone(&idle), Arc::clone(&queue));
        let worker = thread::spawn(move || loop {
            {
                let mut q = q2.lock().unwrap();
                if *q > 0 {
                    *q -= 1;
                    return;
                }
            }
            i2.sleep(0, || *q2.lock().unwrap() > 0, thread::park);
        });
        let worker_thread = worker.thread().clone();
        *queue.lock().unwrap() += 1;
        idle.wake_one(|_| worker_thread.unpark());
        worker.join().unwrap();
    });
}
