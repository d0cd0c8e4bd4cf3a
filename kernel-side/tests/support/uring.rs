//! A runtime on the io_uring backend, for the tests that need one. Shared by the
//! kernel-side test files (`#[path = "support/uring.rs"] mod uring;`).

use flexsc_kernel_side::{Backend, Builder, Mode, Runtime};

/// `builder`'s runtime on the io_uring backend, or None, saying why on stderr, where
/// `probe` finds the kernel cannot serve it (`uring::probe`, or `uring::probe_parking`
/// for parked calls) or the runtime has no service thread (one usable core).
pub fn uring_runtime(builder: Builder, probe: fn() -> Result<(), String>) -> Option<Runtime> {
    if let Err(why) = probe() {
        eprintln!("SKIPPED {}: {why}", std::thread::current().name().unwrap_or("?"));
        return None;
    }
    let rt = builder.backend(Backend::Uring).build().expect("runtime");
    if let Mode::Direct { reason } = rt.mode() {
        eprintln!(
            "SKIPPED {}: no service thread ({reason})",
            std::thread::current().name().unwrap_or("?")
        );
        return None;
    }
    Some(rt)
}
