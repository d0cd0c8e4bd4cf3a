//! Positional transfers on a memory device through the io_uring backend give what a
//! direct call gives. io_uring completes a short transfer only on a regular file or a
//! block device: a 256 MiB read of `/dev/zero` in the ring stopped at 0.7–24 MiB whenever
//! the kernel wanted the service core for something else, where `pread64` reads it all.

#[path = "support/uring.rs"]
mod uring;

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use flexsc_kernel_side::{Mode, Runtime};
use flexsc_shim::Call;

const LONG: usize = 256 << 20;

#[test]
fn a_long_read_of_dev_zero_in_a_batch_is_whole_on_the_io_uring_backend() {
    let Some(rt) = uring::uring_runtime(Runtime::builder(), flexsc_kernel_side::uring::probe) else {
        return;
    };
    let Mode::Service { cpus } = rt.mode() else {
        unreachable!("uring_runtime returns a runtime with service threads")
    };
    // A thread that wants the service core, so that the kernel wants to reschedule while
    // the read runs (a read of /dev/zero in the ring stops there).
    let stop = Arc::new(AtomicBool::new(false));
    let core = cpus[0];
    let spinner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: core });
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
    let mut buf = vec![1u8; LONG];
    let mut me = rt.submitter().expect("a page");
    let call = Call::new(
        libc::SYS_pread64,
        [
            zero.as_raw_fd() as u64,
            buf.as_mut_ptr() as u64,
            LONG as u64,
            0,
            0,
            0,
        ],
    );
    let mut lengths = Vec::new();
    for _ in 0..4 {
        let mut result = [0i64; 1];
        // SAFETY: the read writes into `buf`, which outlives the batch.
        unsafe { me.call_batch(std::slice::from_ref(&call), &mut result) };
        lengths.push(result[0]);
    }
    stop.store(true, Ordering::Relaxed);
    spinner.join().expect("the spinner");
    assert_eq!(lengths, [LONG as i64; 4], "each read whole, as pread64 reads it");
    assert!(buf.iter().all(|&b| b == 0));
}
