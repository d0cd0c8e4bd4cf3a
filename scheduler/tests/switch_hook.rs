//! The switch hook: called around every run of a user thread spawned with a context, in
//! order, never for threads without one, and `finished` once after the last run.

mod common;

use std::sync::Mutex;

use flexsc_scheduler::{yield_now, Scheduler, SwitchHook};

use common::serial;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Enter(usize),
    Leave(usize, usize),
    Finished(usize),
}

static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());

fn record(e: Event) {
    EVENTS.lock().unwrap().push(e);
}

fn enter(context: usize) -> usize {
    record(Event::Enter(context));
    context * 10
}

fn leave(context: usize, token: usize) {
    record(Event::Leave(context, token));
}

fn finished(context: usize) {
    record(Event::Finished(context));
}

#[test]
fn the_hook_brackets_every_run_of_threads_with_a_context() {
    let _turn = serial();
    let core = flexsc_kernel_side::runtime::allowed_cpus()[0];
    let scheduler = Scheduler::builder()
        .user_cores([core])
        .switch_hook(SwitchHook {
            enter,
            leave,
            finished,
            sleeps: || {},
        })
        .build()
        .expect("start a scheduler");
    EVENTS.lock().unwrap().clear();
    for context in [0usize, 1, 2, 3] {
        scheduler
            .spawn_with_context(
                context,
                0,
                Box::new(move || {
                    for _ in 0..context + 1 {
                        yield_now();
                    }
                    // SAFETY: getppid takes no arguments.
                    let ppid = unsafe { flexsc_scheduler::syscall(libc::SYS_getppid, [0; 6]) };
                    assert!(ppid > 0);
                }),
            )
            .expect("spawn");
    }
    scheduler.wait();
    let events = EVENTS.lock().unwrap().clone();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Enter(0) | Event::Leave(0, _) | Event::Finished(0))),
        "no hook calls for context 0: {events:?}"
    );
    // One kernel thread: runs never overlap, so enters and leaves alternate, each leave
    // gets its enter's token, and `finished` follows the thread's last leave.
    let mut running: Option<usize> = None;
    let mut runs = [0usize; 4];
    let mut done = [false; 4];
    for e in &events {
        match *e {
            Event::Enter(c) => {
                assert_eq!(running, None, "{events:?}");
                assert!(!done[c], "run after finished: {events:?}");
                running = Some(c);
                runs[c] += 1;
            }
            Event::Leave(c, token) => {
                assert_eq!(running, Some(c), "{events:?}");
                assert_eq!(token, c * 10);
                running = None;
            }
            Event::Finished(c) => {
                assert_eq!(running, None, "{events:?}");
                assert!(!done[c], "finished twice: {events:?}");
                done[c] = true;
            }
        }
    }
    assert_eq!(done, [false, true, true, true]);
    // Each thread runs once to start, once after each yield, and at least once more after
    // its system call (posted, or run on the caller when there is no service thread).
    for (c, &n) in runs.iter().enumerate().skip(1) {
        assert!(n >= c + 2, "thread {c} ran {n} times: {events:?}");
    }
}
