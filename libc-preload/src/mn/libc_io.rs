//! glibc's own reads and writes under M-on-N: stdio's.
//!
//! `fgets`, `fread`, `getline`, `scanf` and the rest read through glibc's internal
//! `__read`, and `printf`, `fwrite` and `fflush` write through `__write`: direct calls to
//! the code of `read` and `write`, which never pass through the symbols the preload
//! interposes. So a user thread whose `fgets` waited on a pipe, a socket or a terminal
//! stopped its whole kernel thread, and with it every user thread there: one that was to
//! write what the `fgets` waited for never ran, and the process hung
//! (`tests/fixtures/mn_inside_libc.c`).
//!
//! So the constructor replaces the entry of both functions with a jump to a hook here
//! (`patch`), which treats a user thread's call as the interposed `read` or `write` would
//! (`route::route`: posted, and the user thread switches), and runs everyone else's as
//! glibc would:
//!
//! ```text
//!   read:  cmpb $0,__libc_single_threaded(%rip); je multi     <- replaced by a jump to
//!          xor %eax,%eax; syscall; ...; ret                      `read_hook`
//!   multi: sub $0x28,%rsp; ...; call __pthread_enable_asynccancel; syscall; ...; ret
//! ```
//!
//! glibc's own body is the path from `multi` on, which stands alone as a function (it
//! saves the arguments, enables asynchronous cancellation around the call, sets errno, and
//! returns): the hook calls it there. A single-threaded process takes it too, at the cost
//! of the cancellation switch (a few loads and stores). `write` is the same with
//! `mov $1,%eax`.
//!
//! Calls glibc makes with `__read_nocancel` (the loader, NSS files, `/proc` lookups) are
//! other functions and stay as they are: those never wait for an event.

use libc::{c_int, c_void, size_t, ssize_t};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::patch::{b, jump, matches, only_thread, Pattern, ANY, JUMP_LEN};

/// `read` (glibc 2.36 on x86-64) up to its single-threaded return:
/// `cmpb $0,disp32(%rip); je +0x17; xor %eax,%eax; syscall; cmp $-4096,%rax; ja; ret`.
const READ_HEAD: [Option<u8>; 22] = [
    b(0x80),
    b(0x3d),
    ANY,
    ANY,
    ANY,
    ANY,
    b(0x00),
    b(0x74),
    b(0x17),
    b(0x31),
    b(0xc0),
    b(0x0f),
    b(0x05),
    b(0x48),
    b(0x3d),
    b(0x00),
    b(0xf0),
    b(0xff),
    b(0xff),
    b(0x77),
    ANY,
    b(0xc3),
];

/// `write`'s: the same with `mov $1,%eax` for the number.
const WRITE_HEAD: [Option<u8>; 25] = [
    b(0x80),
    b(0x3d),
    ANY,
    ANY,
    ANY,
    ANY,
    b(0x00),
    b(0x74),
    b(0x17),
    b(0xb8),
    b(0x01),
    b(0x00),
    b(0x00),
    b(0x00),
    b(0x0f),
    b(0x05),
    b(0x48),
    b(0x3d),
    b(0x00),
    b(0xf0),
    b(0xff),
    b(0xff),
    b(0x77),
    ANY,
    b(0xc3),
];

/// Where the `je` of both heads goes: the multi-threaded body.
const BODY_AT: usize = 9 + 0x17;

/// The body's start, in both: `sub $0x28,%rsp; mov %rdx,0x18(%rsp); mov %rsi,0x10(%rsp);
/// mov %edi,0x8(%rsp); call __pthread_enable_asynccancel`.
const BODY: [Option<u8>; 23] = [
    b(0x48),
    b(0x83),
    b(0xec),
    b(0x28),
    b(0x48),
    b(0x89),
    b(0x54),
    b(0x24),
    b(0x18),
    b(0x48),
    b(0x89),
    b(0x74),
    b(0x24),
    b(0x10),
    b(0x89),
    b(0x7c),
    b(0x24),
    b(0x08),
    b(0xe8),
    ANY,
    ANY,
    ANY,
    ANY,
];

/// glibc's bodies of `read` and `write` (0 until patched).
static READ_BODY: AtomicUsize = AtomicUsize::new(0);
static WRITE_BODY: AtomicUsize = AtomicUsize::new(0);

/// glibc's `read` and `write` bodies, both as `read`'s type: the same registers, and a
/// `*const` buffer passes as a `*mut` one.
type Body = unsafe extern "C" fn(c_int, *mut c_void, size_t) -> ssize_t;

/// Finds glibc's `name` and checks its code against `head` and the body.
fn find(name: &std::ffi::CStr, head: &Pattern) -> Result<usize, String> {
    // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT finds the definition after this
    // library's own (the wrapper), which is glibc's.
    let at = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    if at == 0 {
        return Err(format!("glibc has no {name:?}"));
    }
    // SAFETY: the function's code is mapped (dlsym found it), and libc's text goes on
    // well past its first BODY_AT + BODY bytes (the function itself is 156 bytes long).
    let code = unsafe { std::slice::from_raw_parts(at as *const u8, BODY_AT + BODY.len()) };
    if !matches(code, head) || !matches(&code[BODY_AT..], &BODY) {
        return Err(format!("{name:?} is not the code this library replaces"));
    }
    Ok(at)
}

/// Replaces the entries of glibc's `read` and `write` (see the module docs). Called from
/// the constructor when M-on-N is asked for; returns why nothing was patched.
pub(crate) fn install() -> Result<(), String> {
    const { assert!(JUMP_LEN <= 22 && BODY_AT >= JUMP_LEN) };
    let read = find(c"read", &READ_HEAD)?;
    let write = find(c"write", &WRITE_HEAD)?;
    only_thread()?;
    READ_BODY.store(read + BODY_AT, Ordering::Relaxed);
    WRITE_BODY.store(write + BODY_AT, Ordering::Relaxed);
    // SAFETY: both addresses start functions of the patterns above, whose only jump
    // targets past the entry lie at BODY_AT and beyond (after the JUMP_LEN bytes
    // replaced); the process has one thread, which is here, so nobody runs them meanwhile.
    // The hooks have the functions' signatures.
    unsafe {
        jump(read, read_hook as *const () as usize)?;
        jump(write, write_hook as *const () as usize)
            .map_err(|e| format!("{e}; read's entry was replaced, write's was not"))
    }
}

/// Whether the calling thread's glibc-internal call should be routed: a user thread, not
/// already inside the preload (whose own `real` comes back here through glibc's entry).
#[inline]
fn routed() -> bool {
    super::routes_user_thread() && !crate::route::is_busy()
}

/// glibc's `read`, entered from anywhere: glibc's own callers (stdio) and the preload's
/// wrapper, whose `real` is glibc's entry.
///
/// # Safety
/// Called as glibc's `read`, with its arguments.
unsafe extern "C" fn read_hook(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    // SAFETY: forwarded: `read`'s call, and its body.
    unsafe { hooked(libc::SYS_read, &READ_BODY, fd, buf, n) }
}

/// glibc's `write`, as [`read_hook`].
///
/// # Safety
/// Called as glibc's `write`, with its arguments.
unsafe extern "C" fn write_hook(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    // SAFETY: forwarded: `write`'s call, and its body.
    unsafe { hooked(libc::SYS_write, &WRITE_BODY, fd, buf as *mut c_void, n) }
}

/// Call `nr` (`read` or `write`) as the hooked entry received it: routed for a user thread,
/// else glibc's own `body`.
///
/// # Safety
/// `body` holds glibc's body of the function whose call `nr` and the arguments are.
#[inline(always)]
unsafe fn hooked(nr: i64, body: &AtomicUsize, fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    // SAFETY: set before the entry was replaced: glibc's body, with `Body`'s signature.
    let body = unsafe { std::mem::transmute::<usize, Body>(body.load(Ordering::Relaxed)) };
    // SAFETY: the caller's arguments, unchanged, to glibc's own body.
    let real = || unsafe { body(fd, buf, n) } as i64;
    if routed() {
        // SAFETY: the system call glibc's function makes, with its arguments.
        return unsafe { crate::route::route(nr, [fd as u64, buf as u64, n as u64, 0, 0, 0], real) }
            as ssize_t;
    }
    real() as ssize_t
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        fn gnu_get_libc_version() -> *const libc::c_char;
    }

    #[test]
    fn the_patterns_match_this_glibcs_read_and_write_or_the_module_would_say_why() {
        // The test process has many threads, so `install` would refuse; the patterns
        // alone are checked here. The end-to-end test is `tests/mn_threads.rs`,
        // `stdio_and_system_in_a_user_thread_do_not_stop_its_kernel_thread`.
        // SAFETY: gnu_get_libc_version returns a static C string.
        let version = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) };
        if version.to_bytes() != b"2.36" {
            eprintln!(
                "SKIPPED: the patterns are glibc 2.36's (as is M-on-N's layout check); this is {version:?}"
            );
            return;
        }
        // In the unit test there is no preload: RTLD_NEXT after the test binary is glibc.
        find(c"read", &READ_HEAD).unwrap();
        find(c"write", &WRITE_HEAD).unwrap();
        assert_eq!(BODY_AT, 32);
    }
}
