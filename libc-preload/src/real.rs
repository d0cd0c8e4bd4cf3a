//! The real libc functions behind the ones we interpose, resolved with
//! `dlsym(RTLD_NEXT, ...)` in the library's constructor (dlsym may allocate, so never on
//! the interposed path), and lazily if a wrapper runs before the constructor.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};

/// One real symbol.
pub struct Real {
    name: &'static CStr,
    ptr: AtomicPtr<c_void>,
}

impl Real {
    /// A symbol not resolved yet.
    pub const fn new(name: &'static CStr) -> Self {
        Real {
            name,
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Resolves the symbol (idempotent).
    pub fn resolve(&self) -> *mut c_void {
        let mut p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT finds the next
            // definition after this library, which is libc's.
            p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) };
            self.ptr.store(p, Ordering::Release);
        }
        p
    }

    /// The address as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` is a function pointer type matching the symbol's C signature.
    #[inline]
    pub unsafe fn get<F: Copy>(&self) -> F {
        let p = self.resolve();
        if p.is_null() {
            // No next definition: nothing sane to call. Abort loudly instead of jumping to 0.
            let msg = b"flexsc: a libc symbol could not be resolved; aborting\n";
            // SAFETY: writes a static buffer to stderr.
            unsafe { libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len()) };
            std::process::abort();
        }
        debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
        // SAFETY: the caller's contract: `F` is the symbol's function pointer type.
        unsafe { std::mem::transmute_copy(&p) }
    }
}
