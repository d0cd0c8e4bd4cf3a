//! Shutdown with several service threads asleep: every one of them must wake and drain.
//! (A wake count of u32::MAX is -1 to the kernel, which woke only one sleeper, and the
//! shutdown waited forever for the others.)

use std::sync::mpsc;
use std::time::Duration;

use flexsc_kernel_side::{Mode, Runtime};

#[test]
fn shutdown_wakes_every_sleeping_service_thread() {
    let cpus = flexsc_kernel_side::runtime::allowed_cpus();
    if cpus.len() < 2 {
        eprintln!(
            "SKIPPED {}: needs two usable cores for two service threads, have {cpus:?}",
            std::thread::current().name().unwrap_or("?")
        );
        return;
    }
    let rt = Runtime::builder()
        .cpus(cpus.iter().copied().take(2))
        .idle_spin(Duration::ZERO)
        .build()
        .expect("runtime");
    let Mode::Service { cpus: serving } = rt.mode().clone() else {
        panic!("expected service threads")
    };
    assert_eq!(serving.len(), 2);
    let mut me = rt.submitter().expect("a page");
    // SAFETY: getppid has no arguments.
    assert!(unsafe { me.call(libc::SYS_getppid as u64, [0; 6]) } > 0);
    drop(me);
    // Let both service threads go to sleep.
    std::thread::sleep(Duration::from_millis(200));
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let stats = rt.shutdown();
        let _ = done_tx.send(stats.totals().calls);
    });
    let calls = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("shutdown returned");
    assert_eq!(calls, 1);
}
