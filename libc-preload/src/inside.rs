//! Whether the calling thread is inside the preload, in a way a signal handler that jumps
//! out (`siglongjmp`, `longjmp`) cannot leave standing.
//!
//! A thread inside an interposed call is marked, so that a call a signal handler makes
//! meanwhile runs directly (the thread's submitter is in use), as do the preload's own
//! calls. A handler that jumps out of the call skips the code that clears the mark: every
//! later call of the thread ran directly, uncounted. So the mark is the address of a slot
//! in the stack frame that entered, a slot that holds its own address while that frame
//! lives ([`mark`]):
//!
//! ```text
//!   higher addresses
//!   | the program's frames          |
//!   | route(): slot = &slot         | <- the mark (thread-local) = &slot
//!   | the call: Submitter::wait ... |
//!   | signal frame, handler         |
//!   | handler's call: route()       | <- below the mark: a call inside the marked one
//!   lower addresses
//! ```
//!
//! A handler on the same stack always runs below the marked slot. A later call that finds
//! a mark ([`is_stale`]) is outside it when its own frame is at or above the slot (the
//! marked frame was popped: a jump to one of its callers), unless it runs on an alternate
//! signal stack (`sigaltstack`) that does not hold the slot (a handler there interrupted
//! the marked call, wherever that stack lies); or when the slot no longer holds its own
//! address (frames of a deeper call made after the jump overwrote it). Where it cannot
//! tell (the slot cannot be read, the alternate stack not asked), it says inside: the call
//! runs directly, as every such call did before. Only a call that finds a mark pays for
//! the look (two or three system calls): a call from a signal handler, or the first one
//! after a jump.

use flexsc_shim::sys::syscall6;

/// The mark of a section of the preload's own (`route::quietly`, a thread's exit): never
/// stale. Not an address a stack slot can have.
pub(crate) const QUIET: usize = 1;

/// Writes `slot`'s own address into it and returns it, the mark of the caller's frame.
/// The slot must stay untouched, and its frame live, until the mark is cleared (the
/// caller ends with `std::hint::black_box(&slot)` after clearing it).
#[inline(always)]
pub(crate) fn mark(slot: &mut usize) -> usize {
    let addr = slot as *mut usize as usize;
    // SAFETY: `slot` is a live, aligned local of the caller's. Volatile: nothing in Rust
    // reads it back, only `is_stale` (through the kernel).
    unsafe { std::ptr::write_volatile(slot, addr) };
    // A handler that runs on this thread after the mark is set must find the slot
    // written: the store of the mark comes after this one (a signal fence, no instruction).
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    addr
}

/// Whether the section marked by `mark` is no longer on the stack, seen from a frame
/// whose (unwritten) slot is at `here`: a signal handler jumped out of it. False while
/// the marked call is still running (this is a call its signal handler makes), and when
/// it cannot tell.
#[cold]
#[inline(never)]
pub(crate) fn is_stale(mark: usize, here: usize) -> bool {
    if mark == QUIET {
        return false;
    }
    match read_word(mark) {
        // Overwritten: the marked frame is gone.
        Some(word) if word != mark => return true,
        Some(_) => {}
        None => return false,
    }
    if here < mark {
        return false;
    }
    // At or above the marked slot: the marked frame was popped, unless this frame is on
    // an alternate signal stack that does not hold the slot (a handler there interrupted
    // the marked call).
    match alternate_stack() {
        Some(Some((base, size))) => (base..base + size).contains(&mark),
        Some(None) => true,
        None => false,
    }
}

/// The word at `addr` of this process's memory, read by the kernel: None if it is not
/// mapped (a stack a jump left and the program since freed) or the call is refused.
fn read_word(addr: usize) -> Option<usize> {
    let mut word = 0usize;
    let local = libc::iovec {
        iov_base: &mut word as *mut usize as *mut libc::c_void,
        iov_len: std::mem::size_of::<usize>(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: std::mem::size_of::<usize>(),
    };
    // SAFETY: getpid takes nothing; process_vm_readv writes one word into `word` (a live
    // local) and only reads at `addr`, failing with EFAULT where nothing is mapped.
    let n = unsafe {
        let pid = syscall6(libc::SYS_getpid as u64, [0; 6]);
        syscall6(
            libc::SYS_process_vm_readv as u64,
            [
                pid as u64,
                &local as *const libc::iovec as u64,
                1,
                &remote as *const libc::iovec as u64,
                1,
                0,
            ],
        )
    };
    (n == std::mem::size_of::<usize>() as i64).then_some(word)
}

/// The alternate signal stack this thread runs on now, as (base, size): `Some(None)` when
/// it runs on no such stack, None when the kernel does not say. Asked of the kernel
/// directly: under M-on-N, `sigaltstack` is a user thread's own setting.
fn alternate_stack() -> Option<Option<(usize, usize)>> {
    // SAFETY: all-zero is a valid `stack_t`, which the kernel fills.
    let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: no new stack is set; the kernel writes the current one into `old`.
    let r = unsafe {
        syscall6(
            libc::SYS_sigaltstack as u64,
            [0, &mut old as *mut libc::stack_t as u64, 0, 0, 0, 0],
        )
    };
    if r != 0 {
        return None;
    }
    Some((old.ss_flags & libc::SS_ONSTACK != 0).then_some((old.ss_sp as usize, old.ss_size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn nested(mark: usize) -> bool {
        let probe = 0usize;
        is_stale(mark, std::hint::black_box(&probe) as *const usize as usize)
    }

    #[inline(never)]
    fn marked_then(f: impl FnOnce(usize) -> bool) -> (usize, bool) {
        let mut slot = 0usize;
        let m = mark(&mut slot);
        let r = f(m);
        std::hint::black_box(&slot);
        (m, r)
    }

    #[test]
    fn a_call_below_the_marked_frame_is_inside_it() {
        let (_, stale) = marked_then(nested);
        assert!(!stale);
        assert!(!is_stale(QUIET, 0));
        assert!(!is_stale(QUIET, usize::MAX));
    }

    #[test]
    fn a_mark_whose_frame_was_left_is_stale() {
        let (m, _) = marked_then(|_| false);
        // The marked frame returned (as a jump leaves it): from the frame that called it,
        // which is above the slot, the mark is stale.
        let here = 0usize;
        let here = std::hint::black_box(&here) as *const usize as usize;
        assert!(here > m, "the caller's frame lies above its callee's");
        assert!(is_stale(m, here));
    }

    #[test]
    fn a_slot_that_lost_its_address_is_stale_even_from_below() {
        // A slot another frame overwrote after a jump: whatever its place, stale.
        let slot = std::hint::black_box(5usize);
        let m = &slot as *const usize as usize;
        assert!(nested(m));
        // The same slot holding its own address: a live mark, and this is inside it.
        let mut slot = 0usize;
        let m = mark(&mut slot);
        assert!(!nested(m));
        std::hint::black_box(&slot);
    }

    static MARK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    extern "C" fn on_usr1(_: libc::c_int) {
        use std::sync::atomic::Ordering::SeqCst;
        // Seen from above the mark (wherever the alternate stack lies), on that stack.
        let stale = is_stale(MARK.load(SeqCst), usize::MAX - 8);
        SEEN.store(1 + usize::from(stale), SeqCst);
    }

    #[test]
    fn a_handler_on_an_alternate_stack_is_inside_the_call_it_interrupted() {
        use std::sync::atomic::Ordering::SeqCst;
        std::thread::spawn(|| {
            let mut stack = vec![0u8; 64 * 1024];
            // SAFETY: an alternate stack that outlives its use on this thread (it is
            // disabled before `stack` is dropped), and a handler that only reads atomics
            // and makes system calls.
            unsafe {
                let ss = libc::stack_t {
                    ss_sp: stack.as_mut_ptr() as *mut libc::c_void,
                    ss_flags: 0,
                    ss_size: stack.len(),
                };
                assert_eq!(libc::sigaltstack(&ss, std::ptr::null_mut()), 0);
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_usr1 as extern "C" fn(libc::c_int) as usize;
                sa.sa_flags = libc::SA_ONSTACK;
                assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
            }
            let mut slot = 0usize;
            MARK.store(mark(&mut slot), SeqCst);
            // SAFETY: the signal goes to this thread, whose handler is set above.
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR1) };
            assert_eq!(SEEN.load(SeqCst), 1, "the handler is inside the marked call");
            assert!(
                is_stale(MARK.load(SeqCst), usize::MAX - 8),
                "off that stack, stale"
            );
            std::hint::black_box(&slot);
            // SAFETY: disables the alternate stack before its memory goes.
            unsafe {
                let off = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                libc::sigaltstack(&off, std::ptr::null_mut());
            }
            drop(stack);
        })
        .join()
        .expect("the thread passes");
    }

    #[test]
    fn an_unreadable_slot_says_inside() {
        assert_eq!(read_word(8), None);
        assert!(!is_stale(8, usize::MAX));
    }
}
