//! Stack overflow in a user thread: a clear abort, never silent corruption.
//!
//! Each user thread's stack has a PROT_NONE guard page below it (`stack`), so running off
//! the end faults. The fault is delivered as SIGSEGV on the thread's stack, which has no
//! room left; so the handler runs on an alternate signal stack, one per kernel thread
//! ([`AltStack`]), installed while the kernel thread's loop runs.
//!
//! The handler (installed once per process) asks whether the fault address lies in the
//! guard page of the user thread running on this kernel thread, the only user thread that
//! can be running off its stack here. If so it writes
//! `flexsc-scheduler: user thread stack overflow` to stderr with a raw write(2) and aborts.
//! A fault anywhere else (a null pointer, another thread's guard page hit through a wild
//! pointer, the main thread's own overflow) is not ours: it goes to the disposition that
//! was installed before ours (Rust's own overflow reporter, typically), or, if that was the
//! default, the default is restored and the handler returns, so the faulting instruction
//! runs again and the process dies of SIGSEGV as it would have without us.

use std::io;
use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::sys;
use crate::user_thread;

/// The message, as the tests look for it.
pub const STACK_OVERFLOW_MESSAGE: &str = "flexsc-scheduler: user thread stack overflow";

/// Size of each kernel thread's alternate signal stack: our handler needs little, but the
/// previous handler it may chain to (Rust's reporter) formats a message.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// The SIGSEGV disposition before ours, once ours is installed.
static PREVIOUS: OnceLock<io::Result<libc::sigaction>> = OnceLock::new();

/// Installs the SIGSEGV handler, once per process.
pub(crate) fn install_handler() -> io::Result<()> {
    match PREVIOUS.get_or_init(|| sys::set_signal_handler(libc::SIGSEGV, on_sigsegv)) {
        Ok(_) => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    }
}

extern "C" fn on_sigsegv(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler; for SIGSEGV
    // `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    if user_thread::is_current_guard(addr) {
        let mut msg = [0u8; STACK_OVERFLOW_MESSAGE.len() + 1];
        msg[..STACK_OVERFLOW_MESSAGE.len()].copy_from_slice(STACK_OVERFLOW_MESSAGE.as_bytes());
        msg[STACK_OVERFLOW_MESSAGE.len()] = b'\n';
        sys::write_stderr(&msg);
        sys::abort();
    }
    match PREVIOUS.get() {
        Some(Ok(previous))
            if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN =>
        {
            if previous.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: with SA_SIGINFO the previous disposition is a three-argument
                // handler, which we call as the kernel would have.
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(previous.sa_sigaction) };
                handler(signal, info, context);
            } else {
                // SAFETY: without SA_SIGINFO it is a one-argument handler.
                let handler: extern "C" fn(libc::c_int) =
                    unsafe { std::mem::transmute(previous.sa_sigaction) };
                handler(signal);
            }
        }
        // Default (or ignored, which for a fault means the same: the fault repeats):
        // let the repeated fault take the default action.
        _ => sys::set_default_action(signal),
    }
}

/// A kernel thread's alternate signal stack, installed for as long as this value lives;
/// the one it replaced (std gives its threads one) is put back on drop.
pub(crate) struct AltStack {
    start: NonNull<u8>,
    len: usize,
    previous: libc::stack_t,
}

impl AltStack {
    /// Maps a stack (with a guard page below) and makes it the calling thread's alternate
    /// signal stack.
    pub(crate) fn install() -> io::Result<AltStack> {
        let page = sys::page_size();
        let start = sys::map_guarded(page, ALT_STACK_SIZE)?;
        // SAFETY: `start + page` is inside the mapping just made.
        let usable = unsafe { NonNull::new_unchecked(start.as_ptr().add(page)) };
        match sys::set_alt_stack(usable, ALT_STACK_SIZE) {
            Ok(previous) => Ok(AltStack {
                start,
                len: page + ALT_STACK_SIZE,
                previous,
            }),
            Err(e) => {
                // SAFETY: the mapping was never installed; nothing refers to it.
                unsafe { sys::unmap(start, page + ALT_STACK_SIZE) };
                Err(e)
            }
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        sys::restore_alt_stack(&self.previous);
        // SAFETY: no longer installed (restored above) and only this value refers to it.
        unsafe { sys::unmap(self.start, self.len) };
    }
}
