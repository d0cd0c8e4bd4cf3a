//! Notes the runtime writes on standard error while the program runs (the io_uring
//! backend failed, every blocking worker is busy).
//!
//! Descriptor 2 belongs to the program: one that closes it (or every descriptor) and opens
//! a file gets that file as 2, and a note written then would land in the program's data.
//! So a note is written only while descriptor 2 is still the file it was when the runtime
//! was set up (same device and inode), and dropped otherwise. (A program that swaps fd 2
//! in the instant between the check and the write can still get the note: the window is
//! one fstat long.)

use std::sync::OnceLock;

/// Descriptor 2's (device, inode) when the runtime was set up; `None` if it was not open.
static STDERR: OnceLock<Option<(u64, u64)>> = OnceLock::new();

fn stderr_identity() -> Option<(u64, u64)> {
    // SAFETY: all-zero is a valid `stat`, which fstat fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one `stat` to a live local.
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return None;
    }
    Some((st.st_dev, st.st_ino))
}

/// Records what descriptor 2 is now. The first call wins; later ones do nothing.
pub fn remember_stderr() {
    STDERR.get_or_init(stderr_identity);
}

/// Writes `args` and a newline to standard error if descriptor 2 is still the file
/// [`remember_stderr`] saw; otherwise drops it.
pub fn note(args: std::fmt::Arguments<'_>) {
    if let Some(Some(then)) = STDERR.get() {
        if stderr_identity() == Some(*then) {
            eprintln!("{args}");
        }
    }
}
