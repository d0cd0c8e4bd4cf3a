//! A program that closes or reuses the service thread's io_uring descriptor (close_range
//! at start-up, dup2 onto any number) loses nothing: batches fall back to direct calls,
//! and the program's own file under that number stays open.

#[path = "support/fds.rs"]
mod fds;
use fds::ring_fds;
#[path = "support/uring.rs"]
mod uring;

use std::io::Write;
use std::os::fd::AsRawFd;

use flexsc_kernel_side::Runtime;
use flexsc_shim::Call;

#[test]
fn a_program_reusing_the_ring_descriptor_keeps_its_file() {
    let before = ring_fds();
    let Some(rt) = uring::uring_runtime(Runtime::builder(), flexsc_kernel_side::uring::probe) else {
        return;
    };
    let ours: Vec<i32> = ring_fds().into_iter().filter(|fd| !before.contains(fd)).collect();
    assert_eq!(ours.len(), 1, "one ring for one service thread: {ours:?}");
    let ring = ours[0];
    assert!(ring >= 256, "the ring sits on a high descriptor, not {ring}");

    let mut data = tempfile::tempfile().expect("a file");
    data.write_all(&[9u8; 4 * 4096]).expect("fill");
    // The program puts its own file where the ring was.
    // SAFETY: dup2 onto a number this test owns the meaning of from now on.
    assert_eq!(unsafe { libc::dup2(data.as_raw_fd(), ring) }, ring);

    let mut me = rt.submitter().expect("a page");
    let mut bufs = vec![0u8; 4 * 4096];
    let calls: Vec<Call> = (0..4)
        .map(|i| {
            let buf = bufs[i * 4096..].as_mut_ptr() as u64;
            Call::new(
                libc::SYS_pread64,
                [data.as_raw_fd() as u64, buf, 4096, (i * 4096) as u64, 0, 0],
            )
        })
        .collect();
    let mut results = [0i64; 4];
    // SAFETY: each pread writes 4 KiB into its own part of `bufs`.
    unsafe { me.call_batch(&calls, &mut results) };
    assert_eq!(results, [4096; 4]);
    assert!(bufs.iter().all(|&b| b == 9));
    // SAFETY: F_GETFD only reads the descriptor's flags.
    assert!(
        unsafe { libc::fcntl(ring, libc::F_GETFD) } >= 0,
        "the program's descriptor {ring} is still open"
    );
    // SAFETY: closes the duplicate this test made.
    unsafe { libc::close(ring) };
}
