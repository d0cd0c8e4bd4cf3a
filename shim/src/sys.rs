//! The few OS calls the shim makes itself: the raw `syscall` instruction, anonymous
//! mappings for the pages, and the futex. Nothing here goes through libc's wrappers, so
//! the shim never recurses into an interposed libc.

use core::arch::asm;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

/// Executes system call `nr` with six arguments on the calling thread.
///
/// Returns the kernel's raw answer: the result, or a negated errno in `-4095..=-1`.
///
/// # Safety
/// The call may do anything the kernel allows to this process: unmap memory the caller
/// still uses, close descriptors others own, exit the thread. The caller vouches that the
/// number and arguments are what the program asked for.
#[inline(always)]
pub unsafe fn syscall6(nr: u64, args: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the x86-64 Linux syscall ABI: number in rax, arguments in rdi, rsi, rdx,
    // r10, r8, r9; the kernel clobbers rcx and r11 and returns in rax. It does not touch
    // the user stack. Whatever the call itself does is the caller's contract above.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack, preserves_flags)
        );
    }
    ret
}

/// The most one read or write moves (`MAX_RW_COUNT`: `INT_MAX` rounded down to a page).
pub const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// Turns a raw kernel answer into an `io::Result`.
pub fn check(ret: i64) -> io::Result<i64> {
    if (-4095..0).contains(&ret) {
        Err(io::Error::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret)
    }
}

/// Maps `len` bytes of private, anonymous, zeroed memory: memory no other process can open.
pub fn map_anonymous(len: usize) -> io::Result<NonNull<u8>> {
    let args = [
        0,
        len as u64,
        (libc::PROT_READ | libc::PROT_WRITE) as u64,
        (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
        u64::MAX, // fd -1
        0,
    ];
    // SAFETY: a fresh anonymous mapping at an address the kernel chooses touches no
    // existing memory.
    let addr = check(unsafe { syscall6(libc::SYS_mmap as u64, args) })?;
    NonNull::new(addr as *mut u8).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// Unmaps memory from [`map_anonymous`].
///
/// # Safety
/// `ptr..ptr+len` came from `map_anonymous(len)` and nothing refers to it any more.
pub unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: the caller's contract: the range is ours and unused.
    let _ = unsafe {
        syscall6(
            libc::SYS_munmap as u64,
            [ptr.as_ptr() as u64, len as u64, 0, 0, 0, 0],
        )
    };
}

const FUTEX_WAIT_PRIVATE: u64 = (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as u64;
const FUTEX_WAKE_PRIVATE: u64 = (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as u64;

/// Sleeps while `word` holds `expected` (spurious returns possible, as with any futex).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    let addr = word as *const AtomicU32 as u64;
    // SAFETY: FUTEX_WAIT only reads the word, which lives as long as the borrow.
    let _ = unsafe {
        syscall6(
            libc::SYS_futex as u64,
            [addr, FUTEX_WAIT_PRIVATE, expected as u64, 0, 0, 0],
        )
    };
}

/// As [`futex_wait`], for at most `timeout`.
pub fn futex_wait_for(word: &AtomicU32, expected: u32, timeout: std::time::Duration) {
    let addr = word as *const AtomicU32 as u64;
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT only reads the word, which lives as long as the borrow, and the
    // relative timeout, which lives on this stack until the call returns.
    let _ = unsafe {
        syscall6(
            libc::SYS_futex as u64,
            [
                addr,
                FUTEX_WAIT_PRIVATE,
                expected as u64,
                &ts as *const libc::timespec as u64,
                0,
                0,
            ],
        )
    };
}

/// Wakes up to `count` threads sleeping on `word`.
pub fn futex_wake(word: &AtomicU32, count: u32) {
    let addr = word as *const AtomicU32 as u64;
    // SAFETY: FUTEX_WAKE does not access the word's memory.
    let _ = unsafe {
        syscall6(
            libc::SYS_futex as u64,
            [addr, FUTEX_WAKE_PRIVATE, count as u64, 0, 0, 0],
        )
    };
}

/// The scheduling state of thread `tid` of this process, as `/proc/self/task/TID/stat`
/// gives it (`R` running or runnable, `S` sleeping, `D` waiting for I/O, ...), read with
/// raw system calls and no allocation (an interposing library may call this). None if it
/// cannot be read.
pub fn thread_state(tid: i32) -> Option<u8> {
    let mut path = [0u8; 48];
    let prefix = b"/proc/self/task/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut at = prefix.len();
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (tid.unsigned_abs(), 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in digits[..len].iter().rev() {
        path[at] = d;
        at += 1;
    }
    path[at..at + 5].copy_from_slice(b"/stat");
    // path[at + 5] stays 0: the terminating NUL.
    // SAFETY: openat reads the NUL-terminated path on this stack.
    let fd = unsafe {
        syscall6(
            libc::SYS_openat as u64,
            [
                libc::AT_FDCWD as u64,
                path.as_ptr() as u64,
                (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
                0,
                0,
                0,
            ],
        )
    };
    if fd < 0 {
        return None;
    }
    let mut buf = [0u8; 256];
    // SAFETY: read writes at most `buf.len()` bytes into `buf`; then the descriptor we
    // opened is closed.
    let n = unsafe {
        let n = syscall6(
            libc::SYS_read as u64,
            [fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0],
        );
        syscall6(libc::SYS_close as u64, [fd as u64, 0, 0, 0, 0, 0]);
        n
    };
    let text = buf.get(..usize::try_from(n).ok()?)?;
    // "TID (COMM) STATE ...": COMM may hold spaces and parentheses, so look after the last ')'.
    let close = text.iter().rposition(|&b| b == b')')?;
    text.get(close + 2).copied()
}

/// The calling thread's kernel thread id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and no side effects.
    unsafe { syscall6(libc::SYS_gettid as u64, [0; 6]) as i32 }
}

/// Yields the calling thread's core.
pub fn sched_yield() {
    // SAFETY: sched_yield has no arguments and no effect but scheduling.
    let _ = unsafe { syscall6(libc::SYS_sched_yield as u64, [0; 6]) };
}
