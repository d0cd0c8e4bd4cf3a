//! Replacing the entry of one of glibc's own functions with a jump to ours: for the waits
//! glibc makes inside its functions, which no interposed symbol sees (`libc_locks`: its
//! lock waits; `libc_io`: the reads and writes of stdio).
//!
//! A function is replaced only if its code is the one expected (a byte pattern, with the
//! bytes that depend on the layout left open), and only while the process has one thread
//! (the constructor's), so that no thread runs the bytes being written.

/// A byte of glibc's code, or any byte (a jump offset that depends on the layout).
pub(crate) type Pattern = [Option<u8>];

/// Short-hand for the patterns: `b(x)` is the byte, `ANY` any byte.
pub(crate) const fn b(x: u8) -> Option<u8> {
    Some(x)
}
pub(crate) const ANY: Option<u8> = None;

/// `jmp *0(%rip)` followed by the 8-byte target: an absolute jump over a function's first
/// 14 bytes, which nothing may jump into from elsewhere.
pub(crate) const JUMP_LEN: usize = 14;

/// Whether `code` starts with `pattern`.
pub(crate) fn matches(code: &[u8], pattern: &Pattern) -> bool {
    code.len() >= pattern.len() && pattern.iter().zip(code).all(|(p, c)| p.is_none_or(|p| p == *c))
}

/// Fails unless the process has one thread (the caller: code can be patched safely).
pub(crate) fn only_thread() -> Result<(), String> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(|e| format!("cannot count this process's threads ({e})"))?
        .count();
    if threads != 1 {
        return Err(format!("the process already has {threads} threads"));
    }
    Ok(())
}

/// Writes an absolute jump to `to` over the first [`JUMP_LEN`] bytes at `at`; an error
/// means nothing was written.
///
/// # Safety
/// `at` starts a function at least [`JUMP_LEN`] bytes long that no other thread runs now
/// and that nothing jumps into within those bytes, and `to` has its signature.
pub(crate) unsafe fn jump(at: usize, to: usize) -> Result<(), String> {
    let page = 4096;
    let start = at & !(page - 1);
    let len = (at + JUMP_LEN).next_multiple_of(page) - start;
    let mut jump = [0u8; JUMP_LEN];
    jump[..6].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
    jump[6..].copy_from_slice(&(to as u64).to_le_bytes());
    // SAFETY: the pages hold libc's text (the caller's contract); they are made writable
    // for the copy only, and executable throughout, since this very thread may need code
    // on them meanwhile (the jump is written by a plain copy, not by calling into them).
    unsafe {
        let rwx = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
        if libc::mprotect(start as *mut libc::c_void, len, rwx) != 0 {
            return Err(format!(
                "cannot make glibc's code writable ({})",
                std::io::Error::last_os_error()
            ));
        }
        std::ptr::copy_nonoverlapping(jump.as_ptr(), at as *mut u8, JUMP_LEN);
        // The jump is in place from here on, so this reports success whatever comes of
        // the protection (were it to fail, the pages would only stay writable).
        libc::mprotect(start as *mut libc::c_void, len, libc::PROT_READ | libc::PROT_EXEC);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_byte_left_open_matches_anything_and_the_rest_must_be_equal() {
        assert!(matches(&[1, 2, 3], &[b(1), ANY, b(3)]));
        assert!(matches(&[1, 9, 3, 4], &[b(1), ANY, b(3)]));
        assert!(!matches(&[1, 2, 4], &[b(1), ANY, b(3)]));
        assert!(!matches(&[1, 2], &[b(1), ANY, b(3)]));
    }
}
