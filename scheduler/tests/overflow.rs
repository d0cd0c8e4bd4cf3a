//! A user thread that runs off its stack hits the guard page, and the process aborts with
//! a clear message; any other segfault still ends the process as a segfault. Each case
//! runs in a child process.

mod common;

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;

use flexsc_scheduler::{Scheduler, MIN_STACK_SIZE, STACK_OVERFLOW_MESSAGE};

use common::{child_role, run_child, show};

/// Recurses until the stack runs out (the bound is never reached); `black_box` keeps the
/// compiler from turning it into a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == black_box(u64::MAX) {
        return 0;
    }
    let frame = black_box([depth; 32]);
    recurse(depth + 1).wrapping_add(frame[depth as usize % 32])
}

#[test]
fn stack_overflow_aborts_with_a_message() {
    if child_role().as_deref() == Some("overflow") {
        let scheduler = Scheduler::builder()
            .user_cores([0])
            .stack_size(MIN_STACK_SIZE)
            .build()
            .expect("start a scheduler");
        let result = scheduler.spawn(|| recurse(0)).join();
        unreachable!(
            "the overflow ends the process, yet join returned {:?}",
            result.is_ok()
        );
    }
    let output = run_child("stack_overflow_aborts_with_a_message", "overflow", None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.signal() != Some(libc::SIGABRT) || !stderr.contains(STACK_OVERFLOW_MESSAGE) {
        show(&output);
        panic!(
            "expected SIGABRT with the overflow message, got {}",
            output.status
        );
    }
}

#[test]
fn other_segfaults_still_crash_as_segfaults() {
    if child_role().as_deref() == Some("null") {
        let scheduler = Scheduler::builder()
            .user_cores([0])
            .build()
            .expect("start a scheduler");
        let result = scheduler
            .spawn(|| {
                let null: *mut u64 = black_box(std::ptr::null_mut());
                // SAFETY: none: this write faults on purpose, to test the fault path.
                unsafe { null.write_volatile(1) };
            })
            .join();
        unreachable!(
            "the segfault ends the process, yet join returned {:?}",
            result.is_ok()
        );
    }
    let output = run_child("other_segfaults_still_crash_as_segfaults", "null", None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.signal() != Some(libc::SIGSEGV) || stderr.contains(STACK_OVERFLOW_MESSAGE) {
        show(&output);
        panic!("expected a plain SIGSEGV, got {}", output.status);
    }
}

/// The main thread's own overflow is still Rust's to report (our handler chains to it).
#[test]
fn main_thread_overflow_is_still_reported_by_rust() {
    if child_role().as_deref() == Some("main-overflow") {
        let _scheduler = Scheduler::builder()
            .user_cores([0])
            .build()
            .expect("start a scheduler");
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| recurse(0))
            .expect("start a thread");
        unreachable!(
            "the overflow ends the process, yet join returned {:?}",
            handle.join().is_ok()
        );
    }
    let output = run_child(
        "main_thread_overflow_is_still_reported_by_rust",
        "main-overflow",
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.contains("has overflowed its stack") || stderr.contains(STACK_OVERFLOW_MESSAGE) {
        show(&output);
        panic!("expected Rust's own overflow report, got {}", output.status);
    }
}
