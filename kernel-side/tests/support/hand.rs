//! A service thread driven by the test, one pass at a time, over shared state of its own.
//! Shared by the kernel-side test files (`#[path = "support/hand.rs"] mod hand;`); not every
//! file uses every method.
//!
//! API gap: a submitter marks an entry's pending bit in `push` (`SyscallPage::mark_pending`
//! is `pub(crate)`), so a scribbled entry reaches a service thread only if it is scribbled
//! over an entry `push` just posted, before a pass takes it. With a running service
//! thread that is a race; with this one it is not.
#![allow(dead_code)]

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flexsc_kernel_side::pool::Pool;
use flexsc_kernel_side::service::{ServiceCounters, ServiceThread};
use flexsc_kernel_side::Blocking;
use flexsc_shim::{Shared, SubmitOptions, Submitter};

/// How long a hand-driven pass may take before the test fails.
const PASS_TIMEOUT: Duration = Duration::from_secs(60);

/// See the module docs.
pub struct HandDriven {
    /// The runtime state the pass serves.
    pub shared: Arc<Shared>,
    pool: Arc<Pool>,
    service: Option<ServiceThread>,
}

impl HandDriven {
    pub fn new() -> Self {
        let shared = Arc::new(Shared::new(SubmitOptions::default()).expect("map the page table"));
        // This test's own "service thread" (`pass()` driven by hand) serves the pages.
        shared.set_serving();
        let pool = Pool::new(Arc::clone(&shared), 4);
        let service = ServiceThread::new(
            Arc::clone(&shared),
            Arc::clone(&pool),
            Duration::from_micros(50),
            Blocking::Workers,
            Arc::new(ServiceCounters::default()),
        );
        HandDriven {
            shared,
            pool,
            service: Some(service),
        }
    }

    /// A submitter of this thread. It is dropped only when the test drops it explicitly
    /// (`ManuallyDrop::into_inner`): `Submitter::drop` waits for every call in flight,
    /// which never ends if no pass takes them, so a failing test would hang in unwinding.
    pub fn submitter(&self) -> ManuallyDrop<Submitter> {
        ManuallyDrop::new(Submitter::new(Arc::clone(&self.shared)).expect("a syscall page"))
    }

    /// Runs one pass on a thread of its own: a garbage call that ended that thread (exit)
    /// or hung it fails the test here instead of taking the test's thread down.
    pub fn pass(&mut self) -> usize {
        let mut service = self.service.take().expect("service thread state");
        let handle = std::thread::Builder::new()
            .name("hand-pass".into())
            .spawn(move || {
                let n = service.pass();
                // Still alive and still itself after the pass.
                // SAFETY: gettid has no arguments.
                let tid = unsafe { flexsc_shim::sys::syscall6(libc::SYS_gettid as u64, [0; 6]) };
                assert!(tid > 0);
                (service, n)
            })
            .expect("spawn");
        let start = Instant::now();
        while !handle.is_finished() {
            assert!(
                start.elapsed() < PASS_TIMEOUT,
                "a hand-driven pass did not return within {PASS_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let (service, n) = match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        self.service = Some(service);
        n
    }

    /// Runs the service thread for real until `finish`.
    pub fn start(&mut self) -> JoinHandle<()> {
        let service = self.service.take().expect("service thread state");
        let shared = Arc::clone(&self.shared);
        std::thread::Builder::new()
            .name("hand-svc".into())
            .spawn(move || service.run(|| shared.register_service_thread(Some(flexsc_shim::sys::gettid()))))
            .expect("spawn")
    }

    /// Stops the service side (a started service thread then returns).
    pub fn finish(self) {
        self.shared.doorbell.stop();
        self.pool.stop();
    }
}
