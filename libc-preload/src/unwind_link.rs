//! The unwinder the preload's own frames use is the program's `libgcc_s`, reached through
//! forwarders in `unwind_link.c` and loaded when first needed (`build.rs` says why).

extern "C" {
    /// Loads `libgcc_s.so.1` (or finds it loaded) and fills the forwarders' table;
    /// idempotent, and two loads after the first.
    fn flexsc_unwind_link_load();
}

/// Makes sure the unwinder is loaded before an unwind that may run inside a signal
/// handler starts (a cancellation's, which walks the preload's frames of a thread blocked
/// in a call), where loading a library would not be safe. glibc loads `libgcc_s` there
/// for itself the same way, before it sends the signal.
#[inline]
pub fn before_unwinding() {
    // SAFETY: a C function without arguments; it aborts with a message if libgcc_s cannot
    // be loaded, as glibc's own cancellation does.
    unsafe { flexsc_unwind_link_load() };
}
