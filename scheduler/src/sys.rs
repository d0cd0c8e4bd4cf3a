//! The OS calls the scheduler makes itself: the futex (with a timeout, which the shim's has
//! not), the mappings for stacks, signal dispositions and alternate signal stacks, and a
//! raw write to stderr that is safe inside a signal handler.
//!
//! The futex goes through the raw `syscall` instruction (`flexsc_shim::sys::syscall6`);
//! the rest through libc, whose wrappers for these calls are async-signal-safe where the
//! signal handler needs them to be (write, sigaction, abort).

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use flexsc_shim::sys::syscall6;

// Under loom the futex is modelled (see `primitive`) and these go unused.
#[cfg_attr(loom, allow(dead_code))]
const FUTEX_WAIT_PRIVATE: u64 = (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as u64;
#[cfg_attr(loom, allow(dead_code))]
const FUTEX_WAKE_PRIVATE: u64 = (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as u64;

/// Sleeps while `word` holds `expected`, for at most `timeout` if given (spurious returns
/// possible, as with any futex).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let addr = word as *const AtomicU32 as u64;
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(0, |ts| ts as *const libc::timespec as u64);
    // SAFETY: FUTEX_WAIT only reads the word, which lives as long as the borrow; the
    // timespec (FUTEX_WAIT takes a relative one) lives until the call returns.
    let _ = unsafe {
        syscall6(
            libc::SYS_futex as u64,
            [addr, FUTEX_WAIT_PRIVATE, expected as u64, ts_ptr, 0, 0],
        )
    };
}

/// Wakes up to `count` threads sleeping on `word`.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) {
    let addr = word as *const AtomicU32 as u64;
    // SAFETY: FUTEX_WAKE does not access the word's memory.
    let _ = unsafe {
        syscall6(
            libc::SYS_futex as u64,
            [addr, FUTEX_WAKE_PRIVATE, count as u64, 0, 0, 0],
        )
    };
}

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// Maps `guard + usable` bytes of private anonymous memory whose lowest `guard` bytes are
/// PROT_NONE and the rest read-write, and returns the start of the mapping (the guard).
/// Both lengths must be multiples of the page size.
pub(crate) fn map_guarded(guard: usize, usable: usize) -> io::Result<NonNull<u8>> {
    let len = guard
        .checked_add(usable)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
    // NORESERVE: a stack is mostly untouched; only the pages it uses should count.
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
    // SAFETY: a fresh mapping at an address the kernel chooses touches no existing memory.
    let addr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_NONE, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let start = addr.cast::<u8>();
    // SAFETY: `start + guard .. start + len` lies inside the mapping just made.
    let rw = unsafe {
        libc::mprotect(
            start.add(guard).cast(),
            usable,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
    if rw != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: the mapping is ours and nothing refers to it yet.
        unsafe { libc::munmap(addr, len) };
        return Err(err);
    }
    NonNull::new(start).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// Unmaps a mapping made by [`map_guarded`].
///
/// # Safety
/// `start..start+len` is a whole mapping from `map_guarded` and nothing uses it any more.
pub(crate) unsafe fn unmap(start: NonNull<u8>, len: usize) {
    // SAFETY: the caller's contract.
    let ret = unsafe { libc::munmap(start.as_ptr().cast(), len) };
    debug_assert_eq!(ret, 0, "munmap of a stack failed");
}

/// Writes all of `msg` to stderr with raw write(2) calls: no allocation, no lock, so it
/// may run in a signal handler.
pub(crate) fn write_stderr(mut msg: &[u8]) {
    while !msg.is_empty() {
        // SAFETY: `msg` is valid for reads of its length.
        let n = unsafe { libc::write(libc::STDERR_FILENO, msg.as_ptr().cast(), msg.len()) };
        if n > 0 {
            msg = &msg[n as usize..];
        } else if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            return;
        }
    }
}

/// Installs `handler` for `signal` (with `SA_SIGINFO | SA_ONSTACK`: it runs on the
/// thread's alternate signal stack) and returns the disposition it replaced.
pub(crate) fn set_signal_handler(
    signal: libc::c_int,
    handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
) -> io::Result<libc::sigaction> {
    // SAFETY: sigaction structs are plain data, initialised here before use; sigaction(2)
    // reads `new` and writes `old`.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = handler as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut new.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, &new, &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(old)
    }
}

/// Restores the default disposition of `signal` (async-signal-safe).
pub(crate) fn set_default_action(signal: libc::c_int) {
    // SAFETY: as in `set_signal_handler`.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        libc::sigaction(signal, &dfl, std::ptr::null_mut());
    }
}

/// Makes `start..start+len` the calling thread's alternate signal stack and returns the one
/// it replaced (possibly a disabled one).
pub(crate) fn set_alt_stack(start: NonNull<u8>, len: usize) -> io::Result<libc::stack_t> {
    let new = libc::stack_t {
        ss_sp: start.as_ptr().cast(),
        ss_flags: 0,
        ss_size: len,
    };
    // SAFETY: stack_t is plain data; sigaltstack(2) reads `new` and writes `old`, and the
    // caller keeps the memory mapped while it is installed.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(&new, &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(old)
    }
}

/// Puts back an alternate signal stack returned by [`set_alt_stack`].
pub(crate) fn restore_alt_stack(previous: &libc::stack_t) {
    let mut previous = *previous;
    // "Currently on it" is a report, not a request.
    previous.ss_flags &= !libc::SS_ONSTACK;
    if previous.ss_flags & libc::SS_DISABLE != 0 {
        previous.ss_size = 0;
        previous.ss_sp = std::ptr::null_mut();
    }
    // SAFETY: the stack being restored was installed before ours and is still owned by
    // whoever installed it (std keeps its own until the thread exits).
    unsafe { libc::sigaltstack(&previous, std::ptr::null_mut()) };
}

/// Ends the process with SIGABRT (async-signal-safe).
pub(crate) fn abort() -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}
