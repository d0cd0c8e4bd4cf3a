//! The user-thread Mutex, Condvar and channel, within one kernel thread and across two,
//! and with ordinary threads.

mod common;

use std::sync::Arc;

use flexsc_scheduler::sync::{channel, Mutex};
use flexsc_scheduler::{spawn, Scheduler};

use common::{scenarios, serial, within_limit};

fn scheduler(kernel_threads: usize) -> Arc<Scheduler> {
    let cores: Vec<usize> = flexsc_kernel_side::runtime::allowed_cpus()
        .into_iter()
        .take(kernel_threads)
        .collect();
    Arc::new(
        Scheduler::builder()
            .user_cores(cores)
            .build()
            .expect("start a scheduler"),
    )
}

#[test]
fn mutex_counter_1000_threads_100_increments() {
    let _turn = serial();
    for kernel_threads in [1, 2] {
        let s = scheduler(kernel_threads);
        within_limit("mutex counter", move || scenarios::mutex_counter(&s, 1000, 100));
    }
}

#[test]
fn condvar_ping_pong_10000_rounds() {
    let _turn = serial();
    for kernel_threads in [1, 2] {
        let s = scheduler(kernel_threads);
        within_limit("condvar ping-pong", move || {
            scenarios::condvar_ping_pong(&s, 10_000)
        });
    }
}

#[test]
fn channel_100000_messages_across_kernel_threads() {
    let _turn = serial();
    let s = scheduler(2);
    within_limit("channel, one sender", move || {
        scenarios::channel_messages(&s, 100_000, 1)
    });
    let s = scheduler(2);
    within_limit("channel, four senders", move || {
        scenarios::channel_messages(&s, 100_000, 4)
    });
}

/// An ordinary thread and user threads share a mutex and a channel: the ordinary thread
/// blocks as usual, the user threads park.
#[test]
fn primitives_work_between_user_threads_and_ordinary_threads() {
    let _turn = serial();
    let s = scheduler(1);
    within_limit("mixed", move || {
        let counter = Arc::new(Mutex::new(0u32));
        let (to_user, from_outside) = channel::<u32>();
        let (to_outside, from_user) = channel::<u32>();
        let user = {
            let counter = Arc::clone(&counter);
            s.spawn(move || {
                for value in from_outside.iter() {
                    *counter.lock() += value;
                    to_outside.send(value * 2).expect("the ordinary thread listens");
                }
            })
        };
        let mut doubled = 0;
        for value in 1..=1000 {
            to_user.send(value).expect("the user thread listens");
            *counter.lock() += value;
            doubled += from_user.recv().expect("an answer");
        }
        drop(to_user);
        user.join().expect("the user thread panicked");
        assert_eq!(*counter.lock(), 2 * 500_500);
        assert_eq!(doubled, 2 * 500_500);
    });
}

#[test]
fn try_lock_and_into_inner() {
    let m = Mutex::new(vec![1]);
    {
        let mut g = m.try_lock().expect("free");
        g.push(2);
        assert!(m.try_lock().is_none(), "held");
    }
    assert_eq!(m.into_inner(), vec![1, 2]);
}

/// A receiver learns that every sender is gone; a sender learns that the receiver is.
#[test]
fn channel_disconnection() {
    let _turn = serial();
    let s = scheduler(1);
    within_limit("disconnection", move || {
        s.block_on(|| {
            let (tx, rx) = channel::<u8>();
            let receiver = spawn(move || rx.recv());
            drop(tx);
            assert!(receiver.join().expect("no panic").is_err());
            let (tx, rx) = channel::<u8>();
            drop(rx);
            assert_eq!(tx.send(5).map_err(|e| e.0), Err(5));
        });
    });
}
