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
//! A later call that finds a mark ([`is_stale`]) knows the marked frame is gone only on
//! proof: the slot no longer holds its own address (frames of calls made after the jump
//! overwrote it), or the later call's own slot is that very address (two live frames
//! never share one, on any stack). Its frame merely being above the slot proves nothing:
//! a handler may run on an alternate signal stack (one set with `SS_AUTODISARM` is not
//! even reported while the handler runs), on a scheduler's stack between two user
//! threads, or on a coroutine's stack, anywhere in memory. The first version took such a
//! frame for proof, settled the live call it interrupted, and the thread hung
//! (`tests/fixtures/autodisarm.c`). Without proof, or where the slot cannot be read, it
//! says inside: the call runs directly, as every such call did before. So after a jump
//! the thread delegates again from the first call that overwrote the slot (any call
//! reaching that depth of the stack; in the tests, the next one). Only a call that finds
//! a mark pays for the look (one system call): a call from a signal handler, or the
//! first ones after a jump.

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
    // Not overwritten: only a frame whose own slot is that very address proves the marked
    // frame gone (two live frames never share an address, on any stack). A frame merely
    // above the slot proves nothing: a handler on an alternate stack (one
    // `SS_AUTODISARM` hides from `sigaltstack`), a scheduler's or a coroutine's stack, may
    // lie anywhere; such a call taken for stale settled the live call it interrupted.
    here == mark
}

/// The word at `addr` of this process's memory, read by the kernel: None if it is not
/// mapped (a stack a jump left and the program since freed) or the call is refused.
fn read_word(addr: usize) -> Option<usize> {
    let mut word = 0usize;
    let to = &mut word as *mut usize as usize;
    // SAFETY: the copy lands in `word`, a local of this function.
    unsafe { flexsc_shim::sys::copy_checked(addr, to, std::mem::size_of::<usize>()) }.then_some(word)
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
    fn only_a_frame_at_the_slot_itself_proves_the_marked_one_left() {
        let mut slot = 0usize;
        let m = mark(&mut slot);
        // A call whose own slot is the marked address: the marked frame is gone.
        assert!(is_stale(m, m));
        // From any other frame, above or below, an intact slot is a live mark.
        assert!(!is_stale(m, m + 64));
        assert!(!is_stale(m, usize::MAX - 8));
        assert!(!nested(m));
        std::hint::black_box(&slot);
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
