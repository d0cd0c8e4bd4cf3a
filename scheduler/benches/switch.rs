#![allow(missing_docs)]
//! The cost of a user-thread switch.
//!
//! - `yield round trip`: one user thread yields to its kernel thread's loop and is resumed:
//!   two switches (out, in) plus one round of the loop (inbox check, ready queue, submit
//!   and reap with nothing to do).
//! - `two user threads`: A and B yield to each other through the loop; one iteration is A's
//!   yield plus B's, four switches.
//! - `corosensei floor`: a bare coroutine suspended and resumed, two switches and nothing
//!   else, for scale.
//!
//! The time is measured inside the user thread, so spawning and joining are not counted.
//! Divide by the switches per iteration for the cost of one switch.

use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};
use criterion::{criterion_group, criterion_main, Criterion};
use flexsc_scheduler::{spawn, yield_now, Scheduler};

fn switch(c: &mut Criterion) {
    let core = flexsc_kernel_side::runtime::allowed_cpus()
        .first()
        .copied()
        .unwrap_or(0);
    let scheduler = Scheduler::builder()
        .user_cores([core])
        .build()
        .expect("start a scheduler");
    let mut group = c.benchmark_group("switch");

    group.bench_function("yield round trip (2 switches)", |b| {
        b.iter_custom(|iters| {
            scheduler.block_on(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    yield_now();
                }
                start.elapsed()
            })
        })
    });

    group.bench_function("two user threads, one yield each (4 switches)", |b| {
        b.iter_custom(|iters| {
            scheduler.block_on(move || {
                let other = spawn(move || {
                    for _ in 0..iters {
                        yield_now();
                    }
                });
                // Let the other thread start before the clock does.
                yield_now();
                let start = Instant::now();
                for _ in 0..iters {
                    yield_now();
                }
                let elapsed = start.elapsed();
                other.join().expect("the other thread panicked");
                elapsed
            })
        })
    });

    group.bench_function("corosensei floor (2 switches)", |b| {
        b.iter_custom(|iters| {
            let mut coroutine: Coroutine<(), (), (), BenchStack> =
                Coroutine::with_stack(BenchStack::new(64 * 1024), move |yielder, ()| loop {
                    yielder.suspend(());
                });
            let start = Instant::now();
            for _ in 0..iters {
                if let CoroutineResult::Return(()) = coroutine.resume(()) {
                    break;
                }
            }
            let elapsed = start.elapsed();
            // The coroutine never returns: dropping it unwinds its stack.
            drop(coroutine);
            elapsed.max(Duration::from_nanos(1))
        })
    });
    group.finish();
}

/// A stack for the bare coroutine, with the guard page corosensei's `Stack` contract asks
/// for (the scheduler's own stack type is private to it).
struct BenchStack {
    start: usize,
    len: usize,
}

impl BenchStack {
    fn new(usable: usize) -> Self {
        let page = 4096;
        let len = usable + page;
        // SAFETY: a fresh anonymous mapping; the guard page stays PROT_NONE.
        unsafe {
            let addr = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(addr, libc::MAP_FAILED, "map a bench stack");
            let rw = libc::mprotect(
                addr.cast::<u8>().add(page).cast(),
                usable,
                libc::PROT_READ | libc::PROT_WRITE,
            );
            assert_eq!(rw, 0, "make the bench stack writable");
            BenchStack {
                start: addr as usize,
                len,
            }
        }
    }
}

impl Drop for BenchStack {
    fn drop(&mut self) {
        // SAFETY: the whole mapping is ours and no coroutine runs on it any more.
        unsafe { libc::munmap(self.start as *mut libc::c_void, self.len) };
    }
}

// SAFETY: the lowest page is a PROT_NONE guard; the rest (64 KiB) is writable; both ends
// are page-aligned.
unsafe impl corosensei::stack::Stack for BenchStack {
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.start + self.len).expect("non-null")
    }

    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.start).expect("non-null")
    }
}

criterion_group!(benches, switch);
criterion_main!(benches);
