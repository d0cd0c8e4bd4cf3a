//! Spawning and joining user threads: results, panics, joins that park, detached threads,
//! and the builder's checks.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flexsc_scheduler::sync::channel;
use flexsc_scheduler::{in_user_thread, sleep, spawn, yield_now, BuildError, Scheduler};

use common::{serial, within_limit};

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
fn join_returns_what_the_closure_returned() {
    let _turn = serial();
    let s = scheduler(2);
    within_limit("join values", move || {
        // Spawned from outside, joined from outside.
        let outside: Vec<_> = (0..100u64).map(|i| s.spawn(move || i * i)).collect();
        let sum: u64 = outside.into_iter().map(|h| h.join().expect("no panic")).sum();
        assert_eq!(sum, (0..100u64).map(|i| i * i).sum());
        // Spawned and joined inside.
        let inside = s.block_on(|| {
            assert!(in_user_thread());
            let handles: Vec<_> = (0..100u64).map(|i| spawn(move || format!("#{i}"))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect::<Vec<_>>()
        });
        assert_eq!(inside, (0..100).map(|i| format!("#{i}")).collect::<Vec<_>>());
        assert!(!in_user_thread());
    });
}

#[test]
fn a_panic_reaches_join_as_err() {
    let _turn = serial();
    let s = scheduler(1);
    within_limit("panics", move || {
        let outside = s.spawn(|| -> u32 { panic!("deliberate panic, outside join") });
        let payload = outside.join().expect_err("the thread panicked");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"deliberate panic, outside join")
        );

        let inside = s.block_on(|| {
            let n = std::hint::black_box(42);
            let h = spawn(move || -> u32 { panic!("deliberate panic {n}") });
            let payload = h.join().expect_err("the thread panicked");
            payload.downcast_ref::<String>().cloned()
        });
        assert_eq!(inside.as_deref(), Some("deliberate panic 42"));

        // The kernel thread goes on after a panic.
        assert_eq!(s.block_on(|| 7), 7);
    });
}

#[test]
fn block_on_resumes_the_panic_of_its_closure() {
    let _turn = serial();
    let s = scheduler(1);
    within_limit("block_on panic", move || {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.block_on(|| panic!("deliberate panic in block_on"))
        }));
        let payload = caught.expect_err("block_on resumes the panic");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"deliberate panic in block_on")
        );
    });
}

/// On one kernel thread: A joins B, B waits for a message from C. If the join blocked the
/// kernel thread, C could never run.
#[test]
fn join_parks_the_user_thread_not_the_kernel_thread() {
    let _turn = serial();
    let s = scheduler(1);
    within_limit("join parks", move || {
        let got = s.block_on(|| {
            let (tx, rx) = channel();
            let b = spawn(move || rx.recv().expect("a message"));
            let c = spawn(move || {
                yield_now();
                tx.send(99).expect("b is alive");
            });
            let got = b.join().expect("b panicked");
            c.join().expect("c panicked");
            got
        });
        assert_eq!(got, 99);
    });
}

/// `block_on` returns only when every user thread has finished, detached ones included.
#[test]
fn block_on_waits_for_detached_threads() {
    let _turn = serial();
    let s = scheduler(2);
    within_limit("detached", move || {
        let done = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&done);
        s.block_on(move || {
            for _ in 0..100 {
                let counter = Arc::clone(&counter);
                // Detached: the handle is dropped at once.
                drop(spawn(move || {
                    for _ in 0..10 {
                        yield_now();
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                }));
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 100);
    });
}

/// `sleep` in a user thread is a posted nanosleep: the kernel thread runs others.
#[test]
fn sleep_lets_other_user_threads_run() {
    let _turn = serial();
    let s = scheduler(1);
    within_limit("sleep", move || {
        let order = s.block_on(|| {
            let (tx, rx) = channel();
            let sleeper = {
                let tx = tx.clone();
                spawn(move || {
                    sleep(Duration::from_millis(20));
                    tx.send("sleeper").expect("alive");
                })
            };
            let quick = spawn(move || tx.send("quick").expect("alive"));
            sleeper.join().expect("no panic");
            quick.join().expect("no panic");
            rx.iter().collect::<Vec<_>>()
        });
        assert_eq!(order, ["quick", "sleeper"]);
    });
}

#[test]
fn spawn_outside_a_user_thread_panics_with_a_hint() {
    let caught = std::panic::catch_unwind(|| drop(spawn(|| ())));
    let payload = caught.expect_err("spawn outside a user thread panics");
    let msg = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("Scheduler::spawn"), "{msg}");
}

#[test]
fn builder_rejects_unusable_cores() {
    match Scheduler::builder().user_cores([4000]).build() {
        Err(BuildError::CoreNotUsable { core: 4000, .. }) => {}
        other => panic!("expected CoreNotUsable, got {other:?}"),
    }
    match Scheduler::builder().user_cores([]).build() {
        Err(BuildError::NoUserCores) => {}
        other => panic!("expected NoUserCores, got {other:?}"),
    }
}

/// By default the user cores are the usable cores the service threads leave free, or the
/// first usable core, with a note, when they leave none.
#[test]
fn default_layout_keeps_user_threads_off_the_service_cores() {
    let _turn = serial();
    let usable = flexsc_kernel_side::runtime::allowed_cpus();
    let s = Scheduler::builder().build().expect("start a scheduler");
    let layout = s.layout().clone();
    eprintln!("{layout}");
    match &layout.mode {
        flexsc_scheduler::Mode::Service { cpus } => {
            let free: Vec<usize> = usable.iter().copied().filter(|c| !cpus.contains(c)).collect();
            if free.is_empty() {
                assert_eq!(layout.user_cores, vec![usable[0]]);
                assert!(layout.note.is_some());
            } else {
                assert_eq!(layout.user_cores, free);
                assert!(layout.note.is_none());
            }
        }
        flexsc_scheduler::Mode::Direct { .. } => assert_eq!(layout.user_cores, usable),
    }
    // Every usable core a service thread: user threads share the first.
    let all = Scheduler::builder()
        .service_cores(usable.iter().copied())
        .build()
        .expect("start a scheduler");
    if matches!(all.layout().mode, flexsc_scheduler::Mode::Service { .. }) {
        assert_eq!(all.layout().user_cores, vec![usable[0]]);
        assert!(all.layout().note.as_deref().unwrap_or_default().contains("share"));
    }
}
