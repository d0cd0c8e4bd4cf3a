//! A `close` in the io_uring backend gives what the syscall gives, whatever the file:
//! IORING_OP_CLOSE refuses an io_uring instance's own descriptor (EBADF, and the
//! descriptor stays open), where close(2) closes it.

#[path = "support/uring.rs"]
mod uring;

use flexsc_kernel_side::Runtime;
use flexsc_shim::Call;

/// A fresh io_uring instance of this process (not the runtime's): its descriptor.
fn ring_fd() -> i32 {
    // io_uring_params is 120 bytes; zeroed, it asks for nothing special.
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup writes the parameters it chose into `params`.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    assert!(fd >= 0, "io_uring_setup: {}", std::io::Error::last_os_error());
    fd as i32
}

fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only looks at the descriptor.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

#[test]
fn closing_an_io_uring_descriptor_on_the_io_uring_backend_closes_it() {
    // What the syscall does.
    let direct = ring_fd();
    // SAFETY: our own descriptor, closed once.
    assert_eq!(unsafe { libc::close(direct) }, 0);
    assert!(!is_open(direct));

    let Some(rt) = uring::uring_runtime(Runtime::builder(), flexsc_kernel_side::uring::probe) else {
        return;
    };
    let mut me = rt.submitter().expect("a page");
    let fd = ring_fd();
    let call = Call::new(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
    let mut result = [0i64; 1];
    // SAFETY: close takes no pointers; the descriptor is ours and closed once.
    unsafe { me.call_batch(std::slice::from_ref(&call), &mut result) };
    let still_open = is_open(fd);
    if still_open {
        // SAFETY: still ours.
        unsafe { libc::close(fd) };
    }
    assert_eq!(
        (result[0], still_open),
        (0, false),
        "close(2) closes an io_uring descriptor"
    );
    // A descriptor that is not open: EBADF, as close(2) answers, and nothing else closed.
    let spare = ring_fd();
    // SAFETY: our own descriptor, closed once; its number is free from here on.
    assert_eq!(unsafe { libc::close(spare) }, 0);
    let call = Call::new(libc::SYS_close, [spare as u64, 0, 0, 0, 0, 0]);
    // SAFETY: close takes no pointers; the number is not open.
    unsafe { me.call_batch(std::slice::from_ref(&call), &mut result) };
    assert_eq!(
        result[0],
        -(libc::EBADF as i64),
        "close(2) of a descriptor not open"
    );
}
