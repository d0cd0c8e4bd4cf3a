//! glibc's own locks under M-on-N: the FILE locks of stdio, malloc's arenas, the loader's
//! lock and the other locks glibc takes inside its functions.
//!
//! glibc takes these with an inline compare-and-swap and, when the lock is taken, calls
//! `__lll_lock_wait_private(word)` (or, for its internal pthread mutexes such as the
//! loader's, `__lll_lock_wait(word, private)`), which sleeps in the kernel with a
//! `FUTEX_WAIT` system call of its own. No interposed function sees that call, so a user
//! thread that meets a taken lock stops its whole kernel thread. When the holder is a user
//! thread that waits for something on that same kernel thread (a sleep under `flockfile`,
//! a `dl_iterate_phdr` callback that reads a file), it never runs again: the program
//! hangs (`tests/fixtures/mn_libc_locks.c` did, before this module).
//!
//! So the constructor replaces the entry of both functions with a jump to ours:
//!
//! ```text
//!   glibc's lll_lock: CAS 0 -> 1 fails ──> __lll_lock_wait_private / __lll_lock_wait
//!                                            └─ jmp ──> lock_wait (here):
//!     loop { exchange the word with 2 (taken, with waiters); 0 before -> ours }
//!     between tries: a user thread that may switch, the holder a user thread
//!                        ──> yield to the other user threads
//!                    a user thread that may switch, no user thread recorded as holder
//!                        ──> FUTEX_WAIT for at most 1 ms, then look again
//!                    anyone else ──> FUTEX_WAIT in the kernel, as glibc
//! ```
//!
//! The holder is read where the lock's kind records it: a FILE lock keeps the holder's
//! thread pointer after the word, a pthread mutex (the loader's lock) its tid. These are
//! the locks a program can hold across a switch (`flockfile`, a `dl_iterate_phdr`
//! callback, a library's constructor under `dlopen`). malloc's locks record no holder and
//! are never held across a switch, so waits for them stay in the kernel: a user thread
//! waiting for one may hold another, and yielding then would let the library's own
//! allocations on the same kernel thread wait in the kernel for a holder that cannot run.
//!
//! The lock word keeps glibc's protocol (0 free, 1 taken, 2 taken with waiters), so
//! glibc's unlock, which wakes the kernel's waiters when the word was 2, is unchanged and
//! still reaches every OS thread waiting in the kernel. A user thread does not sleep on a
//! lock a user thread holds: it polls between runs of the other user threads, as
//! `sync::poll` does for the objects left to glibc. It never parks on the lot, because
//! parking allocates, and allocating takes malloc's locks.
//!
//! A user thread does not yield where switching is unsafe: inside the library's own
//! allocator ([`no_switch`], from `heap`: the caller may hold a spin lock or a borrow of
//! its kernel thread's queues), inside an interposed call (`route::is_busy`), or on a
//! kernel thread's own loop. There it waits in the kernel as before: the locks taken there
//! are malloc's, whose holders never switch while they hold them (they do not yield
//! for one either, see above), so the holder runs and the wait is short.
//!
//! Finding the functions: `__lll_lock_wait_private` is exported (GLIBC_PRIVATE);
//! `__lll_lock_wait` is not, and is found by its code, which glibc's build places right
//! after it (checked on 2.36, the only layout M-on-N accepts). Each is patched only if its code is the one this module replaces (the
//! byte patterns below, with jump offsets left open). The patch is made in the
//! constructor, while the process has one thread, so no thread runs the bytes being
//! written. If anything differs (another glibc build, more threads, no `/proc`), nothing
//! is patched, one line on stderr says so, and those waits stay in the kernel.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use flexsc_shim::sys::syscall6;

use super::patch::{b, jump, matches, only_thread, ANY};

thread_local! {
    /// Depth of [`no_switch`] sections on this thread (a user thread's own, since the
    /// library's TLS is switched with the thread).
    static NO_SWITCH: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` where a lock wait must stay in the kernel (see the module docs).
#[inline]
pub fn no_switch<R>(f: impl FnOnce() -> R) -> R {
    NO_SWITCH.with(|n| n.set(n.get() + 1));
    let r = f();
    NO_SWITCH.with(|n| n.set(n.get() - 1));
    r
}

/// Who may hold a lock, as far as yielding goes (see [`held_by_user_thread`]).
#[derive(Clone, Copy)]
enum Holder {
    /// A FILE lock (`_IO_lock_t`: the word, a count, then the holder's thread pointer).
    FileLock,
    /// A pthread mutex of glibc's (the loader's lock): the word, a count, then the
    /// holder's tid.
    Mutex,
}

/// glibc's `__lll_lock_wait_private(int *futex)`.
///
/// # Safety
/// Called by glibc with one of its lock words.
unsafe extern "C" fn lock_wait_private(word: *mut i32) {
    // SAFETY: the caller's lock word.
    unsafe { lock_wait(word, libc::FUTEX_PRIVATE_FLAG, Holder::FileLock) }
}

/// glibc's `__lll_lock_wait(int *futex, int private)`: `private` is LLL_PRIVATE (0) or
/// LLL_SHARED (128), and the futex flag is the other one (glibc xors it with 128).
///
/// # Safety
/// Called by glibc with one of its lock words.
unsafe extern "C" fn lock_wait_any(word: *mut i32, private: i32) {
    // SAFETY: the caller's lock word.
    unsafe { lock_wait(word, private ^ libc::FUTEX_PRIVATE_FLAG, Holder::Mutex) }
}

/// Whether the lock at `word` is held by a user thread, read the way its kind records
/// the holder: a FILE lock's thread pointer is a user thread's TCB, a mutex's tid one of
/// the ids user threads get. Other words of the private kind (malloc's arenas and lists,
/// most of glibc's locks) keep no holder there, and read as not held by a user thread;
/// so does a word whose holder field would cross into the next page (never read), and a
/// FILE lock's that is not 8-byte aligned (a FILE lock's is: it is a pointer).
///
/// # Safety
/// `word` is a live lock word of glibc's.
unsafe fn held_by_user_thread(word: *mut i32, kind: Holder) -> bool {
    let at = word as usize + 8;
    if at / 4096 != (at + 7) / 4096 || at / 4096 != word as usize / 4096 {
        return false;
    }
    // The holder field is written by its holder with plain stores while we read: the reads
    // are atomic (Relaxed), a torn or stale value only makes this wait a kernel one.
    match kind {
        Holder::FileLock if at % 8 == 0 => {
            // SAFETY: 8 aligned bytes on the word's own page (checked): a FILE lock's
            // owner, or whatever another lock has there (then no user thread's TCB).
            let owner = unsafe { AtomicUsize::from_ptr(at as *mut usize) }.load(Ordering::Relaxed);
            owner != 0 && super::thread::lookup(owner as libc::pthread_t).is_some()
        }
        Holder::FileLock => false,
        Holder::Mutex => {
            // SAFETY: 4 bytes after the 4-aligned word, on its page: a mutex's `__owner`.
            let tid = unsafe { AtomicI32::from_ptr(at as *mut i32) }.load(Ordering::Relaxed);
            tid >= super::tcb::FIRST_FAKE_TID
        }
    }
}

/// glibc's loop: take the lock by exchanging 2 in, waiting while the old value was not 0.
/// A word that reads 2 already is waited on before the first exchange.
///
/// # Safety
/// `word` is a live, 4-byte aligned lock word of glibc's.
unsafe fn lock_wait(word: *mut i32, futex_flag: i32, kind: Holder) {
    let raw = word;
    // SAFETY: glibc's lock word, only accessed atomically (by glibc too).
    let word = unsafe { AtomicI32::from_ptr(word) };
    if word.load(Ordering::Relaxed) == 2 {
        // SAFETY: the caller's lock word, of its kind.
        unsafe { wait(word, futex_flag, raw, kind) };
    }
    // Acquire: what the holder wrote before its releasing store to the word is ours.
    while word.swap(2, Ordering::Acquire) != 0 {
        // SAFETY: as above.
        unsafe { wait(word, futex_flag, raw, kind) };
    }
}

/// One wait while the word reads 2. Returns on any wake-up; the caller tries again.
/// - A user thread that may switch, for a lock a user thread holds (which may be
///   switched out on this very kernel thread): a yield.
/// - The same, for a lock with no user thread recorded as its holder: a kernel wait of
///   at most [`RECHECK`] (a holder that just took it records itself right after), then
///   another look.
/// - Anyone else: a kernel wait, as glibc's.
///
/// A user thread never yields for malloc's locks (they record no holder): it may hold
/// another of them while it waits, and the library's own allocations on its kernel
/// thread, which wait in the kernel, would then wait for it for ever.
///
/// # Safety
/// `raw` is `word`, a live lock word of glibc's of the `kind` its caller says.
unsafe fn wait(word: &AtomicI32, futex_flag: i32, raw: *mut i32, kind: Holder) {
    let timeout = if may_switch() {
        // SAFETY: forwarded.
        if unsafe { held_by_user_thread(raw, kind) } {
            flexsc_scheduler::yield_now();
            return;
        }
        &RECHECK as *const libc::timespec as u64
    } else {
        0
    };
    let addr = word.as_ptr() as u64;
    // SAFETY: FUTEX_WAIT on the caller's live word; the timeout, if any, is a static.
    let r = unsafe {
        syscall6(
            libc::SYS_futex as u64,
            [addr, (libc::FUTEX_WAIT | futex_flag) as u64, 2, timeout, 0, 0],
        )
    };
    // Woken, the word changed (EAGAIN), a signal (EINTR) or the recheck's time: try again.
    // Anything else is what glibc reports as fatal.
    if r < 0 && ![libc::EAGAIN, libc::EINTR, libc::ETIMEDOUT].contains(&(-r as i32)) {
        fatal(c"The futex facility returned an unexpected error code.\n");
    }
}

/// How long a user thread waits in the kernel for a lock whose holder is not known to be
/// a user thread before it looks again.
static RECHECK: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 1_000_000,
};

fn may_switch() -> bool {
    super::routes_user_thread() && !crate::route::is_busy() && NO_SWITCH.with(Cell::get) == 0
}

/// What glibc's `__libc_fatal` does: the message on stderr, then abort.
fn fatal(msg: &std::ffi::CStr) -> ! {
    let bytes = msg.to_bytes();
    // SAFETY: a write of a static buffer to fd 2.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    std::process::abort()
}

/// `__lll_lock_wait_private` up to its futex call (glibc 2.36 on x86-64):
/// `mov (%rdi),%eax; cmp $2,%eax; je futex; mov $2,%eax; xchg %eax,(%rdi); test %eax,%eax;
/// je out; futex: xor %r10d,%r10d; mov $2,%edx; mov $0x80,%esi; mov $202,%eax; syscall`.
const WAIT_PRIVATE: [Option<u8>; 38] = [
    b(0x8b),
    b(0x07),
    b(0x83),
    b(0xf8),
    b(0x02),
    b(0x74),
    b(0x0b),
    b(0xb8),
    b(0x02),
    b(0x00),
    b(0x00),
    b(0x00),
    b(0x87),
    b(0x07),
    b(0x85),
    b(0xc0),
    b(0x74),
    ANY,
    b(0x45),
    b(0x31),
    b(0xd2),
    b(0xba),
    b(0x02),
    b(0x00),
    b(0x00),
    b(0x00),
    b(0xbe),
    b(0x80),
    b(0x00),
    b(0x00),
    b(0x00),
    b(0xb8),
    b(0xca),
    b(0x00),
    b(0x00),
    b(0x00),
    b(0x0f),
    b(0x05),
];

/// `__lll_lock_wait` up to its futex call: as above, with `private` kept in %r8d and the
/// futex flag computed as `private ^ 0x80` (`xor $0x80,%sil`).
const WAIT_ANY: [Option<u8>; 43] = [
    b(0x8b),
    b(0x07),
    b(0x41),
    b(0x89),
    b(0xf0),
    b(0x83),
    b(0xf8),
    b(0x02),
    b(0x74),
    b(0x0b),
    b(0xb8),
    b(0x02),
    b(0x00),
    b(0x00),
    b(0x00),
    b(0x87),
    b(0x07),
    b(0x85),
    b(0xc0),
    b(0x74),
    ANY,
    b(0x44),
    b(0x89),
    b(0xc6),
    b(0x45),
    b(0x31),
    b(0xd2),
    b(0xba),
    b(0x02),
    b(0x00),
    b(0x00),
    b(0x00),
    b(0xb8),
    b(0xca),
    b(0x00),
    b(0x00),
    b(0x00),
    b(0x40),
    b(0x80),
    b(0xf6),
    b(0x80),
    b(0x0f),
    b(0x05),
];

/// How far after `__lll_lock_wait_private` to look for `__lll_lock_wait`.
const SEARCH: usize = 256;

/// Replaces glibc's two lock-wait functions (see the module docs). Called from the
/// constructor when M-on-N is asked for; returns why nothing was patched.
pub(crate) fn install() -> Result<(), String> {
    // SAFETY: dlsym of a function symbol by name.
    let private = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__lll_lock_wait_private".as_ptr()) } as usize;
    if private == 0 {
        return Err("glibc exports no __lll_lock_wait_private".into());
    }
    // SAFETY: the function's code is mapped (dlsym found it); both patterns and the search
    // window lie within libc's text, which goes on well past these small functions (read
    // only the window's bytes, each after checking the first pattern matched).
    let window = unsafe { std::slice::from_raw_parts(private as *const u8, SEARCH + WAIT_ANY.len()) };
    if !matches(window, &WAIT_PRIVATE) {
        return Err("__lll_lock_wait_private is not the code this library replaces".into());
    }
    let any = (16..SEARCH)
        .step_by(16)
        .find(|&off| matches(&window[off..], &WAIT_ANY))
        .map(|off| private + off)
        .ok_or("__lll_lock_wait is not right after __lll_lock_wait_private")?;
    only_thread()?;
    // SAFETY: both addresses start functions of the patterns above (at least 38 bytes
    // long), the process has one thread, which is here, so nobody runs them meanwhile.
    unsafe {
        jump(private, lock_wait_private as *const () as usize)?;
        jump(any, lock_wait_any as *const () as usize)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        fn gnu_get_libc_version() -> *const libc::c_char;
    }

    #[test]
    fn the_patterns_match_this_glibcs_code_or_the_module_would_say_why() {
        // The test process has many threads (the harness), so `install` would refuse;
        // the patterns alone are checked here. The end-to-end test is
        // `tests/mn_threads.rs`, `glibc_lock_waits_do_not_stop_the_kernel_thread`.
        // SAFETY: gnu_get_libc_version returns a static C string.
        let version = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) };
        if version.to_bytes() != b"2.36" {
            eprintln!(
                "SKIPPED: the patterns are glibc 2.36's (as is M-on-N's layout check); this is {version:?}"
            );
            return;
        }
        // SAFETY: as in `install`.
        let private =
            unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__lll_lock_wait_private".as_ptr()) } as usize;
        assert_ne!(private, 0);
        // SAFETY: as in `install`.
        let window = unsafe { std::slice::from_raw_parts(private as *const u8, SEARCH + WAIT_ANY.len()) };
        assert!(matches(window, &WAIT_PRIVATE));
        assert!((16..SEARCH)
            .step_by(16)
            .any(|off| matches(&window[off..], &WAIT_ANY)));
    }

    #[test]
    fn the_replacement_takes_a_free_lock_and_marks_a_taken_one_contended() {
        // A free word (0): taken at once, left at 2 as glibc's loop leaves it.
        let mut w = 0i32;
        // SAFETY: a live word of ours.
        unsafe { lock_wait_private(&mut w) };
        assert_eq!(w, 2);
        // A word taken by another thread: it waits in the kernel (not a user thread)
        // until the holder's release (a store of 0 and a wake, as glibc's unlock).
        let word = std::sync::Arc::new(AtomicI32::new(1));
        let w2 = std::sync::Arc::clone(&word);
        let t = std::thread::spawn(move || {
            // SAFETY: a live word.
            unsafe { lock_wait_any(w2.as_ptr(), 0) };
            w2.load(Ordering::SeqCst)
        });
        while word.load(Ordering::SeqCst) != 2 {
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!t.is_finished(), "took a lock that was held");
        word.store(0, Ordering::SeqCst);
        // SAFETY: FUTEX_WAKE on a live private word.
        unsafe {
            syscall6(
                libc::SYS_futex as u64,
                [
                    word.as_ptr() as u64,
                    (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as u64,
                    1,
                    0,
                    0,
                    0,
                ],
            )
        };
        assert_eq!(t.join().unwrap(), 2);
    }
}
