//! A thread control block per user thread, made by the loader's own `_dl_allocate_tls`,
//! and the %fs switch that installs it (`wrfsbase`).
//!
//! glibc keeps everything per-thread behind the thread pointer: errno, `__thread`
//! variables (the application's, libc's, ours), malloc's tcache, the stack-protector
//! canary, `pthread_self`, the pthread keys. So a user thread with a TCB of its own, put in
//! %fs while it runs, gets all of them without any of them being interposed.
//!
//! ```text
//!   _dl_allocate_tls(NULL) -> tp
//!   [ static TLS blocks (from the init images) ][ struct pthread (zeroed) ] + DTV
//!                                                ^ tp = %fs while the user thread runs
//!   fields we fill (glibc 2.36, x86-64):
//!     0x00 tcb = tp, 0x10 self = tp        0x18 multiple_threads = 1
//!     0x20 sysinfo, 0x28 stack guard, 0x30 pointer guard, 0x48 CET feature_1: copied
//!     list (self-linked), tid (unique, > pid_max), robust list (empty),
//!     specific[0] = specific_1stblock, user_stack = 1, rseq cpu_id = -1
//! ```
//!
//! The layout is checked at start-up against libc's own `_thread_db_*` descriptors (what
//! libthread_db reads); on any difference M-on-N is refused (see [`Glibc::load`]).
//!
//! # Reuse
//!
//! glibc frees a thread's malloc tcache (and the chunks cached in it) in a per-thread
//! routine it does not export; freeing a user thread's TCB would leak them (~8 KiB per
//! thread, measured). So finished TCBs go to a pool ([`POOL_MAX`]) and the next user
//! thread gets one back with every module's TLS reset to its initial image, except libc's
//! own block, which keeps the tcache and the malloc arena (errno, the locale and ctype
//! are reset by [`Glibc::thread_started`]). Dynamically allocated TLS blocks (modules
//! loaded with `dlopen`) are freed and marked unallocated, so they start afresh too.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicI32, Ordering};

use super::lot::SpinLock;

/// Offsets in `struct pthread` of glibc 2.36 on x86-64, checked against `_thread_db_*`.
const OFF_TCB: usize = 0x00;
const OFF_DTV: usize = 0x08;
const OFF_SELF: usize = 0x10;
const OFF_MULTIPLE_THREADS: usize = 0x18;
const OFF_SYSINFO: usize = 0x20;
const OFF_STACK_GUARD: usize = 0x28;
const OFF_POINTER_GUARD: usize = 0x30;
const OFF_FEATURE_1: usize = 0x48;
const OFF_LIST: usize = 0x2c0;
const OFF_TID: usize = 0x2d0;
const OFF_ROBUST_PREV: usize = 0x2d8;
const OFF_ROBUST_HEAD: usize = 0x2e0;
/// `cleanup` (the old-style `_pthread_cleanup_push` list) and `cleanup_jmp_buf` (the
/// innermost `__pthread_register_cancel` buffer): not described by `_thread_db_*`,
/// checked at load by registering a buffer on the calling thread.
const OFF_CLEANUP: usize = 0x2f8;
const OFF_CLEANUP_JMP_BUF: usize = 0x300;
const OFF_CANCELHANDLING: usize = 0x308;
const OFF_SPECIFIC_1STBLOCK: usize = 0x310;
const OFF_SPECIFIC: usize = 0x510;
const OFF_SPECIFIC_USED: usize = 0x610;
const OFF_REPORT_EVENTS: usize = 0x611;
const OFF_USER_STACK: usize = 0x612;
/// `nextevent`, checked; after it come `exc` (32 bytes, 16-aligned) and then the stack
/// fields, whose offsets follow (found on this glibc by probing a thread with a stack of
/// its own, and cross-checked with `pthread_getattr_np` by the tests).
const OFF_NEXTEVENT: usize = 0x660;
const OFF_STACKBLOCK: usize = 0x690;
const OFF_STACKBLOCK_SIZE: usize = 0x698;
const OFF_GUARDSIZE: usize = 0x6a0;
const OFF_REPORTED_GUARDSIZE: usize = 0x6a8;
const SIZEOF_PTHREAD: u32 = 2368;
/// `PTHREAD_KEYS_MAX` and `PTHREAD_KEY_2NDLEVEL_SIZE` of glibc.
const KEYS_MAX: usize = 1024;
const KEY_2NDLEVEL: usize = 32;
/// `PTHREAD_DESTRUCTOR_ITERATIONS`.
const DESTRUCTOR_ROUNDS: usize = 4;
/// How many finished TCBs are kept for reuse.
pub(crate) const POOL_MAX: usize = 1024;
/// glibc's `TLS_DTV_UNALLOCATED`.
const DTV_UNALLOCATED: usize = usize::MAX;

/// Finished TCBs, ready for reuse (see the module docs).
static POOL: SpinLock<Vec<usize>> = SpinLock::new(Vec::new());

/// The first fake thread id: above any pid the kernel hands out (`pid_max` is at most
/// 2^22), so no kernel call can ever act on another thread by mistake.
pub(crate) const FIRST_FAKE_TID: i32 = 1 << 29;
static NEXT_FAKE_TID: AtomicI32 = AtomicI32::new(FIRST_FAKE_TID);

type AllocateTls = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type DeallocateTls = unsafe extern "C" fn(*mut c_void, bool);
type VoidFn = unsafe extern "C" fn();

/// glibc's key table entry (`struct pthread_key_struct`).
#[repr(C)]
struct KeyStruct {
    seq: usize,
    destr: Option<unsafe extern "C" fn(*mut c_void)>,
}

/// A thread's key slot (`struct pthread_key_data`).
#[repr(C)]
struct KeyData {
    seq: usize,
    data: *mut c_void,
}

/// The private glibc entry points, resolved and checked once.
pub(crate) struct Glibc {
    allocate_tls: AllocateTls,
    deallocate_tls: DeallocateTls,
    ctype_init: VoidFn,
    call_tls_dtors: VoidFn,
    keys: *const KeyStruct,
    /// `__rseq_offset`: where the thread's rseq area is, from the thread pointer (0: none).
    rseq_offset: isize,
    /// Whether `wrfsbase` may be used (else `arch_prctl`).
    fsgsbase: bool,
}

// SAFETY: function pointers and a pointer to glibc's static key table, which glibc itself
// reads from every thread.
unsafe impl Send for Glibc {}
// SAFETY: as above.
unsafe impl Sync for Glibc {}

fn private_sym(name: &CStr) -> *mut c_void {
    // SAFETY: NUL-terminated names; dlvsym has no other precondition.
    unsafe { libc::dlvsym(libc::RTLD_DEFAULT, name.as_ptr(), c"GLIBC_PRIVATE".as_ptr()) }
}

/// Checks one `_thread_db_*` field descriptor ({bits, count, offset}) against ours.
fn check_field(name: &CStr, offset: usize) -> Result<(), String> {
    let desc = private_sym(name) as *const u32;
    if desc.is_null() {
        return Err(format!("{} is missing", name.to_string_lossy()));
    }
    // SAFETY: glibc's descriptors are arrays of three u32 in its read-only data.
    let found = unsafe { *desc.add(2) } as usize;
    if found != offset {
        return Err(format!(
            "{} says offset {found}, expected {offset}",
            name.to_string_lossy()
        ));
    }
    Ok(())
}

impl Glibc {
    /// Resolves glibc's private entry points and checks that its thread descriptor is laid
    /// out as this module assumes. The error says what differs.
    pub(crate) fn load() -> Result<Glibc, String> {
        check_field(c"_thread_db_pthread_list", OFF_LIST)?;
        check_field(c"_thread_db_pthread_tid", OFF_TID)?;
        check_field(c"_thread_db_pthread_cancelhandling", OFF_CANCELHANDLING)?;
        check_field(c"_thread_db_pthread_specific", OFF_SPECIFIC)?;
        check_field(c"_thread_db_pthread_report_events", OFF_REPORT_EVENTS)?;
        check_field(c"_thread_db_pthread_nextevent", OFF_NEXTEVENT)?;
        check_field(c"_thread_db_pthread_key_data_data", 8)?;
        check_field(c"_thread_db_pthread_key_struct_destr", 8)?;
        let size = private_sym(c"_thread_db_sizeof_pthread") as *const u32;
        // SAFETY: a u32 in glibc's read-only data when present.
        if size.is_null() || unsafe { *size } != SIZEOF_PTHREAD {
            return Err("struct pthread is not the size of glibc 2.36's".into());
        }
        // The TCB header is not described by the descriptors: check it on this thread.
        let tp = current_tp();
        // SAFETY: tp is this thread's TCB; the header's first words are readable.
        let (tcb, me) = unsafe {
            (
                *(tp as *const usize).add(OFF_TCB / 8),
                *(tp as *const usize).add(OFF_SELF / 8),
            )
        };
        if tcb != tp || me != tp {
            return Err("the TCB header is not laid out as glibc 2.36's".into());
        }
        check_cleanup_jmp_buf(tp)?;
        let allocate_tls = private_sym(c"_dl_allocate_tls");
        let deallocate_tls = private_sym(c"_dl_deallocate_tls");
        let ctype_init = private_sym(c"__ctype_init");
        let call_tls_dtors = private_sym(c"__call_tls_dtors");
        let keys = private_sym(c"__pthread_keys");
        if [allocate_tls, deallocate_tls, ctype_init, call_tls_dtors, keys]
            .iter()
            .any(|p| p.is_null())
        {
            return Err("a private glibc symbol (_dl_allocate_tls, __ctype_init, ...) is missing".into());
        }
        // SAFETY: a plain dlsym of a public data symbol.
        let rseq = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr()) } as *const isize;
        // SAFETY: `__rseq_offset` is a `const ptrdiff_t` when present.
        let rseq_offset = if rseq.is_null() { 0 } else { unsafe { *rseq } };
        // SAFETY: getauxval has no preconditions.
        let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
        // SAFETY: the symbols were found, with the C signatures glibc 2.36 gives them.
        unsafe {
            Ok(Glibc {
                allocate_tls: std::mem::transmute::<*mut c_void, AllocateTls>(allocate_tls),
                deallocate_tls: std::mem::transmute::<*mut c_void, DeallocateTls>(deallocate_tls),
                ctype_init: std::mem::transmute::<*mut c_void, VoidFn>(ctype_init),
                call_tls_dtors: std::mem::transmute::<*mut c_void, VoidFn>(call_tls_dtors),
                keys: keys as *const KeyStruct,
                rseq_offset,
                // HWCAP2_FSGSBASE: the kernel allows the instructions in user mode.
                fsgsbase: hwcap2 & 2 != 0,
            })
        }
    }

    /// A new TCB for a user thread, filled in from the calling thread's; None if the
    /// loader cannot allocate one.
    pub(crate) fn allocate(&self) -> Option<usize> {
        let tp = match POOL.with(|pool| pool.pop()) {
            Some(tp) => {
                // SAFETY: a pooled TCB is no thread's (see `release`).
                unsafe { reset_tls(tp) };
                tp
            }
            // SAFETY: `_dl_allocate_tls(NULL)` allocates and initialises a fresh TLS block
            // and TCB (zeroed) and returns the thread pointer.
            None => (unsafe { (self.allocate_tls)(std::ptr::null_mut()) }) as usize,
        };
        if tp == 0 {
            return None;
        }
        let me = current_tp();
        let tid = NEXT_FAKE_TID.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `tp` points at a fresh `struct pthread` of SIZEOF_PTHREAD bytes (checked
        // at load), `me` at the caller's; every offset below lies inside it.
        unsafe {
            let w = |off: usize, v: usize| ((tp + off) as *mut usize).write(v);
            let r = |off: usize| ((me + off) as *const usize).read();
            w(OFF_TCB, tp);
            w(OFF_SELF, tp);
            ((tp + OFF_MULTIPLE_THREADS) as *mut i32).write(1);
            w(OFF_SYSINFO, r(OFF_SYSINFO));
            w(OFF_STACK_GUARD, r(OFF_STACK_GUARD));
            w(OFF_POINTER_GUARD, r(OFF_POINTER_GUARD));
            ((tp + OFF_FEATURE_1) as *mut u32).write(((me + OFF_FEATURE_1) as *const u32).read());
            // A self-linked list entry: fork's stack reclaim unlinks it in the child.
            w(OFF_LIST, tp + OFF_LIST);
            w(OFF_LIST + 8, tp + OFF_LIST);
            ((tp + OFF_TID) as *mut i32).write(tid);
            // An empty robust list (robust mutexes are never taken by user threads).
            w(OFF_ROBUST_PREV, tp + OFF_ROBUST_HEAD);
            w(OFF_ROBUST_HEAD, tp + OFF_ROBUST_HEAD);
            w(OFF_SPECIFIC, tp + OFF_SPECIFIC_1STBLOCK);
            // A pooled TCB keeps its last thread's cancellation state and (stale)
            // cleanup buffers: a new thread starts with none, cancellation enabled.
            ((tp + OFF_CANCELHANDLING) as *mut i32).write(0);
            w(OFF_CLEANUP, 0);
            w(OFF_CLEANUP_JMP_BUF, 0);
            ((tp + OFF_USER_STACK) as *mut u8).write(1);
            if self.rseq_offset != 0 {
                // rseq's cpu_id = RSEQ_CPU_ID_UNINITIALIZED: the kernel only updates the
                // kernel thread's area, so sched_getcpu must not trust this one.
                ((tp as isize + self.rseq_offset + 4) as *mut i32).write(-1);
            }
        }
        Some(tp)
    }

    /// Gives back a TCB made by [`Glibc::allocate`]: to the pool, or freed.
    ///
    /// # Safety
    /// No thread runs on it, and it is never installed again by its thread.
    pub(crate) unsafe fn release(&self, tp: usize) {
        if POOL.with(|pool| {
            pool.len() < POOL_MAX && {
                pool.push(tp);
                true
            }
        }) {
            return;
        }
        // SAFETY: the caller's contract; `dealloc_tcb` frees the TCB block with the TLS.
        unsafe { (self.deallocate_tls)(tp as *mut c_void, true) };
    }

    /// On a user thread's TCB, once, before its start routine: what glibc's thread start
    /// does for locale and ctype, and the stack described as glibc describes its threads'
    /// (for `pthread_getattr_np`, and the alloca limit it derives from the size).
    pub(crate) fn thread_started(&self) {
        if let Some((mapping, guard)) = flexsc_scheduler::current_stack() {
            let tp = current_tp();
            // SAFETY: the stack fields of the current (user) TCB, laid out as checked.
            unsafe {
                ((tp + OFF_STACKBLOCK) as *mut usize).write(mapping.start);
                ((tp + OFF_STACKBLOCK_SIZE) as *mut usize).write(mapping.len());
                ((tp + OFF_GUARDSIZE) as *mut usize).write(guard);
                ((tp + OFF_REPORTED_GUARDSIZE) as *mut usize).write(guard);
            }
        }
        // SAFETY: errno is this thread's; uselocale(LC_GLOBAL_LOCALE) is what a new
        // thread starts with (a reused TCB keeps libc's TLS block); __ctype_init sets this
        // thread's ctype TLS pointers. None has other preconditions.
        unsafe {
            *libc::__errno_location() = 0;
            // LC_GLOBAL_LOCALE is ((locale_t) -1L).
            libc::uselocale(usize::MAX as libc::locale_t);
            (self.ctype_init)();
        }
    }

    /// The stack glibc's descriptor `tp` describes: (lowest usable address, usable size,
    /// guard size); None before the thread started.
    pub(crate) fn stack_of(&self, tp: usize) -> Option<(usize, usize, usize)> {
        // SAFETY: the stack fields of a user thread's TCB (allocated, laid out as checked).
        let (block, size, guard) = unsafe {
            (
                ((tp + OFF_STACKBLOCK) as *const usize).read_volatile(),
                ((tp + OFF_STACKBLOCK_SIZE) as *const usize).read_volatile(),
                ((tp + OFF_GUARDSIZE) as *const usize).read_volatile(),
            )
        };
        (block != 0 && size > guard).then_some((block + guard, size - guard, guard))
    }

    /// On a user thread's TCB, after its start routine: thread-local destructors, then the
    /// pthread key destructors, as glibc's thread exit runs them.
    pub(crate) fn thread_exiting(&self) {
        // SAFETY: runs the destructors registered on this thread (C++ thread_local, Rust
        // thread_local!), as glibc does at thread exit.
        unsafe { (self.call_tls_dtors)() };
        // SAFETY: the current TCB is a user thread's, laid out as checked at load.
        unsafe { self.run_key_destructors(current_tp()) };
    }

    /// glibc's `__nptl_deallocate_tsd`, which is not exported.
    ///
    /// # Safety
    /// `tp` is the calling thread's own TCB.
    unsafe fn run_key_destructors(&self, tp: usize) {
        let used = (tp + OFF_SPECIFIC_USED) as *mut bool;
        let level1 = (tp + OFF_SPECIFIC) as *mut *mut KeyData;
        // SAFETY: every pointer below is into this thread's TCB, into the second-level
        // blocks glibc allocated for it, or into glibc's key table of KEYS_MAX entries.
        unsafe {
            let mut round = 0;
            while used.read_volatile() && round < DESTRUCTOR_ROUNDS {
                used.write_volatile(false);
                for idx in 0..KEYS_MAX / KEY_2NDLEVEL {
                    let block = level1.add(idx).read();
                    if block.is_null() {
                        continue;
                    }
                    for inner in 0..KEY_2NDLEVEL {
                        let slot = block.add(inner);
                        let data = (*slot).data;
                        if data.is_null() {
                            continue;
                        }
                        (*slot).data = std::ptr::null_mut();
                        let key = &*self.keys.add(idx * KEY_2NDLEVEL + inner);
                        if (*slot).seq == key.seq {
                            if let Some(destr) = key.destr {
                                destr(data);
                            }
                        }
                    }
                }
                round += 1;
            }
            // Free the second-level blocks glibc allocated (the first is in the TCB).
            for idx in 1..KEYS_MAX / KEY_2NDLEVEL {
                let block = level1.add(idx).read();
                if !block.is_null() {
                    libc::free(block.cast());
                    level1.add(idx).write(std::ptr::null_mut());
                }
            }
            used.write_volatile(false);
        }
    }

    /// Ends the calling thread as glibc's thread start does after the start routine: the
    /// last thread of the process calls `exit(0)`, any other ends its kernel thread.
    pub(crate) fn end_thread_in_forked_child(&self) -> ! {
        let nthreads = private_sym(c"__nptl_nthreads") as *const std::sync::atomic::AtomicU32;
        // SAFETY: glibc's thread count (an unsigned int it changes atomically), if found.
        let last = nthreads.is_null() || unsafe { (*nthreads).fetch_sub(1, Ordering::AcqRel) } == 1;
        if last {
            // SAFETY: exit has no preconditions; this is what glibc does here.
            unsafe { libc::exit(0) }
        }
        loop {
            // SAFETY: ends this kernel thread only; nothing of ours runs on it after.
            unsafe { flexsc_shim::sys::syscall6(libc::SYS_exit as u64, [0; 6]) };
        }
    }

    /// Installs `tp` as the calling kernel thread's thread pointer.
    #[inline]
    pub(crate) fn set_tp(&self, tp: usize) {
        if self.fsgsbase {
            // SAFETY: the kernel enabled FSGSBASE for user mode (HWCAP2); `tp` is a TCB
            // that stays allocated while installed (see the switch hook).
            unsafe { std::arch::asm!("wrfsbase {}", in(reg) tp, options(nostack, preserves_flags)) };
        } else {
            const ARCH_SET_FS: u64 = 0x1002;
            // SAFETY: as above, through the kernel (raw: this runs between switches, where
            // the interposed syscall() must not be re-entered).
            unsafe {
                flexsc_shim::sys::syscall6(libc::SYS_arch_prctl as u64, [ARCH_SET_FS, tp as u64, 0, 0, 0, 0])
            };
        }
    }
}

/// Resets a pooled TCB's TLS: static blocks of every module but libc to their initial
/// images, dynamically allocated blocks freed and marked unallocated.
///
/// # Safety
/// `tp` is a TCB from `_dl_allocate_tls` that no thread runs on.
unsafe fn reset_tls(tp: usize) {
    // SAFETY: the header's DTV pointer; glibc keeps the slot count at dtv[-1].
    let dtv = unsafe { ((tp + OFF_DTV) as *const *mut [usize; 2]).read() };
    // SAFETY: as above.
    let slots = unsafe { (*dtv.sub(1))[0] };
    for i in 1..=slots {
        // SAFETY: entries 1..=slots of the DTV: {val, to_free}.
        unsafe {
            let entry = &mut *dtv.add(i);
            if entry[1] != 0 {
                libc::free(entry[1] as *mut c_void);
                *entry = [DTV_UNALLOCATED, 0];
            }
        }
    }
    struct Walk {
        dtv: *mut [usize; 2],
        slots: usize,
    }
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info and our `Walk`.
        let (info, walk) = unsafe { (&*info, &*(data as *const Walk)) };
        let modid = info.dlpi_tls_modid;
        if modid == 0 || modid > walk.slots {
            return 0;
        }
        let name: &[u8] = if info.dlpi_name.is_null() {
            b""
        } else {
            // SAFETY: a module name is a C string (possibly empty).
            unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        if name.ends_with(b"/libc.so.6") || name == b"libc.so.6" {
            return 0; // keeps the tcache and the arena (see the module docs)
        }
        // SAFETY: the module's program headers.
        let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        let Some(tls) = phdrs.iter().find(|p| p.p_type == libc::PT_TLS) else {
            return 0;
        };
        // SAFETY: the module's DTV entry in the pooled TCB.
        let entry = unsafe { &*walk.dtv.add(modid) };
        if entry[0] == DTV_UNALLOCATED || entry[0] == 0 || entry[1] != 0 {
            return 0;
        }
        let block = entry[0] as *mut u8;
        let image = (info.dlpi_addr + tls.p_vaddr) as *const u8;
        // SAFETY: the block is the module's static TLS block in the pooled TCB, of
        // p_memsz bytes; the image is its initialised part, of p_filesz bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(image, block, tls.p_filesz as usize);
            std::ptr::write_bytes(
                block.add(tls.p_filesz as usize),
                0,
                (tls.p_memsz - tls.p_filesz) as usize,
            );
        }
        0
    }
    let walk = Walk { dtv, slots };
    // SAFETY: the callback only touches the pooled TCB and the modules' images.
    unsafe { libc::dl_iterate_phdr(Some(each), &walk as *const Walk as *mut c_void) };
}

extern "C" {
    fn __pthread_register_cancel(buf: *mut UnwindBuf);
    fn __pthread_unregister_cancel(buf: *mut UnwindBuf);
}

/// glibc's `__pthread_unwind_buf_t` (x86-64): a `__jmp_buf` (8 words), `mask_was_saved`,
/// then `prev` (word 9), `cleanup` (word 10) and the cancel type; 16-aligned, 112 bytes.
/// `pthread_cleanup_push` (without `-fexceptions`) keeps one on the stack and links it
/// into the TCB's `cleanup_jmp_buf` list; glibc's unwinder (`pthread_exit`, acting on a
/// cancellation) `longjmp`s into the innermost one whose frame it is about to unwind.
#[repr(C, align(16))]
pub(crate) struct UnwindBuf(pub(crate) [usize; 14]);

impl UnwindBuf {
    pub(crate) const fn new() -> Self {
        UnwindBuf([0; 14])
    }
}

/// Checks `OFF_CLEANUP_JMP_BUF` the way `pthread_cleanup_push` uses it: registering a
/// buffer must put it at that offset and remember the previous one in its `prev` word.
fn check_cleanup_jmp_buf(tp: usize) -> Result<(), String> {
    let slot = (tp + OFF_CLEANUP_JMP_BUF) as *const usize;
    let mut buf = UnwindBuf::new();
    // SAFETY: the calling thread's own TCB; register/unregister only link and unlink the
    // buffer (which outlives both calls) in this thread's list, as the macros do.
    let (before, during, prev, after) = unsafe {
        let before = slot.read_volatile();
        __pthread_register_cancel(&mut buf);
        let during = slot.read_volatile();
        let prev = buf.0[9];
        __pthread_unregister_cancel(&mut buf);
        (before, during, prev, slot.read_volatile())
    };
    if during != &buf as *const UnwindBuf as usize || prev != before || after != before {
        return Err("glibc's cleanup buffer list is not where glibc 2.36 keeps it".into());
    }
    Ok(())
}

/// The calling (user) thread's cancellation word (`cancelhandling`): glibc keeps the
/// cancel state and type bits there; M-on-N adds its request bit (see `thread`).
#[inline]
pub(crate) fn cancelhandling(tp: usize) -> &'static std::sync::atomic::AtomicI32 {
    // SAFETY: an int field of an allocated TCB (laid out as checked), accessed atomically
    // by glibc's own pthread_setcancelstate too; callers only pass live TCBs.
    unsafe { &*((tp + OFF_CANCELHANDLING) as *const std::sync::atomic::AtomicI32) }
}

/// Makes `buf` the root of the calling user thread's cleanup buffer list (what glibc's
/// `start_thread` does with its own), or clears the list (null).
pub(crate) fn set_root_unwind_buf(buf: *mut UnwindBuf) {
    let tp = current_tp();
    let addr = buf as usize;
    // SAFETY: the calling user thread's own TCB, laid out as checked.
    unsafe {
        ((tp + OFF_CLEANUP) as *mut usize).write(0);
        ((tp + OFF_CLEANUP_JMP_BUF) as *mut usize).write(addr);
    }
}

/// The calling thread's thread pointer (`%fs:0`, which glibc keeps equal to %fs base).
#[inline]
pub(crate) fn current_tp() -> usize {
    let tp: usize;
    // SAFETY: on x86-64 Linux %fs:0 always holds the TCB's own address (tcbhead_t.tcb).
    unsafe {
        std::arch::asm!("mov {}, qword ptr fs:0", out(reg) tp, options(nostack, readonly, preserves_flags))
    };
    tp
}

/// The thread id glibc keeps in a TCB: the kernel's for kernel threads, a fake one above
/// `pid_max` for user threads. Owners of our mutexes are named by it.
#[inline]
pub(crate) fn current_tid() -> i32 {
    // SAFETY: the current TCB, laid out as checked (only used once the check passed).
    unsafe { ((current_tp() + OFF_TID) as *const i32).read() }
}
