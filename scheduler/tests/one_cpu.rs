//! With one usable core there is no service thread: the kernel-side runtime runs every
//! call on its caller (`Mode::Direct`), and the scheduler must still work. The test runs
//! in a child process confined to core 0 with sched_setaffinity.

mod common;

use flexsc_scheduler::{Mode, Scheduler};

use common::{child_role, run_child, scenarios, show, within_limit};

const ROLE: &str = "one-cpu";

#[test]
fn everything_works_on_one_cpu() {
    if child_role().as_deref() == Some(ROLE) {
        return child();
    }
    let output = run_child("everything_works_on_one_cpu", ROLE, Some(&[0]));
    if !output.status.success() {
        show(&output);
        panic!("the one-core child failed: {}", output.status);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("one-cpu child: all scenarios passed"), "{stderr}");
}

fn child() {
    let scheduler = Scheduler::builder()
        .build()
        .expect("start a scheduler on one core");
    let layout = scheduler.layout().clone();
    eprintln!("one-cpu child: {layout}");
    assert!(matches!(layout.mode, Mode::Direct { .. }), "{layout}");
    assert_eq!(layout.user_cores, vec![0]);
    let scheduler = std::sync::Arc::new(scheduler);
    within_limit("scenarios on one core", move || {
        scenarios::syscalls(&scheduler, 10_000);
        scenarios::mutex_counter(&scheduler, 1000, 100);
        scenarios::condvar_ping_pong(&scheduler, 10_000);
        scenarios::channel_messages(&scheduler, 100_000, 4);
        let panicked = scheduler.spawn(|| panic!("deliberate panic on one core")).join();
        assert!(panicked.is_err());
        let stats = scheduler.stats();
        let totals = stats.totals();
        assert_eq!(
            totals.delegated, 0,
            "nothing is delegated without a service thread"
        );
        assert_eq!(totals.calls, 40_000, "{}", stats.table());
    });
    eprintln!("one-cpu child: all scenarios passed");
}
