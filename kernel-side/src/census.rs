//! The runtime's threads do not count as the program's.
//!
//! glibc ends the process when the last of its threads ends: a `main` that called
//! `pthread_exit` leaves the process running until its other threads have ended, and
//! the last one calls `exit(0)` (atexit handlers run). It counts them in
//! `__nptl_nthreads`, every thread `pthread_create` made, the runtime's too: with them
//! counted, such a process never ended, and nothing could take a SIGTERM (the runtime's
//! threads block it). So each runtime thread takes itself out of the count while it runs
//! ([`Uncounted`]) and puts itself back just before it ends, where glibc takes it out
//! again. Where the count is not found (a glibc older than 2.34 keeps it private), nothing
//! changes.
//!
//! Memory ordering: the count is glibc's, which changes it with atomic read-modify-writes;
//! ours are SeqCst read-modify-writes of the same word.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// glibc's count of the process's threads, if it exports it (GLIBC_PRIVATE, 2.34 on).
/// Threads that glibc does not make (M-on-N user threads) may count themselves in it, so
/// that the last of them ends the process as glibc's last thread would.
pub fn count() -> Option<&'static AtomicU32> {
    static COUNT: OnceLock<usize> = OnceLock::new();
    let addr = *COUNT.get_or_init(|| {
        // SAFETY: dlvsym with NUL-terminated names; RTLD_DEFAULT searches every object.
        unsafe {
            libc::dlvsym(
                libc::RTLD_DEFAULT,
                c"__nptl_nthreads".as_ptr(),
                c"GLIBC_PRIVATE".as_ptr(),
            ) as usize
        }
    });
    // SAFETY: the symbol is glibc's `unsigned int __nptl_nthreads`, aligned and alive for
    // the whole process; glibc changes it only atomically.
    (addr != 0).then(|| unsafe { AtomicU32::from_ptr(addr as *mut u32) })
}

/// Held by a runtime thread (a service thread, a worker, an M-on-N kernel thread) for as
/// long as it runs: it is not counted as one of the program's threads meanwhile.
pub struct Uncounted(Option<&'static AtomicU32>);

impl Uncounted {
    /// Takes the calling thread out of glibc's count. If every thread of the program has
    /// ended meanwhile (the last one saw this one still counted, and only ended itself),
    /// the process ends here, as glibc would have ended it there.
    pub fn begin() -> Uncounted {
        let count = count();
        if let Some(c) = count {
            if c.fetch_sub(1, Ordering::SeqCst) == 1 {
                // SAFETY: exit runs the atexit handlers and ends the process, as glibc's
                // last thread does.
                unsafe { libc::exit(0) };
            }
        }
        Uncounted(count)
    }
}

impl Drop for Uncounted {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            c.fetch_add(1, Ordering::SeqCst);
        }
    }
}
