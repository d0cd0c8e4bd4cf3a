//! The few OS calls the shim makes itself: the raw `syscall` instruction, anonymous
//! mappings for the pages, the futex, and another thread's scheduling state, read from a
//! descriptor kept on a high number (as every long-lived descriptor of the runtime's).
//! Nothing here goes through libc's wrappers, so the shim never recurses into an
//! interposed libc.

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

/// A thread's `/proc/self/task/TID/stat`, kept open on a high descriptor ([`dup_high`])
/// from [`ThreadStat::open`] until it is dropped, so that each look at the thread's state
/// ([`ThreadStat::state`]) reads it again without opening anything. Opening the file for
/// each look (owners before taking a call back, the relief thread now and then) held the
/// lowest free descriptor for a moment: a program's `open` running meanwhile, its own or
/// one it posted, then got the next number up, where natively it gets the lowest free one
/// (a daemon's `close(0); open("/dev/null")` expects 0). Raw system calls, no allocation.
///
/// The program may close the descriptor (`close_range` at start-up, say) and reuse the
/// number: each look and the drop first check that it still names the file opened, and
/// once it does not, it is never read or closed again.
#[derive(Debug)]
pub struct ThreadStat {
    fd: i32,
    /// The file's device and inode.
    id: (u64, u64),
    /// Set once `fd` was found naming another file.
    lost: std::sync::atomic::AtomicBool,
}

impl ThreadStat {
    /// Opens thread `tid`'s stat file, or None if it cannot (no such thread, no /proc).
    /// Takes the lowest free descriptor for a moment, as any open does: call it where the
    /// program's own opens cannot run at the same time (a runtime's start, which the
    /// preload library makes before the program's first `pthread_create`).
    pub fn open(tid: i32) -> Option<ThreadStat> {
        let mut path = [0u8; 48];
        let at = if tid == gettid() {
            // The calling thread's own: right even in a PID namespace whose /proc is the
            // parent's (where `tid` is not the number /proc knows it by).
            let own = b"/proc/thread-self/stat";
            path[..own.len()].copy_from_slice(own);
            own.len()
        } else {
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
            at + 5
        };
        debug_assert!(at < path.len(), "the path ends in a NUL");
        // SAFETY: openat reads the NUL-terminated path on this stack.
        let low = unsafe {
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
        if low < 0 {
            return None;
        }
        let low = low as i32;
        let high = dup_high(low);
        let fd = if high >= 0 {
            close(low);
            high
        } else {
            // No room up there (a tiny RLIMIT_NOFILE): keep it where it is.
            low
        };
        let Some(id) = file_id(fd) else {
            close(fd);
            return None;
        };
        own(fd, id);
        Some(ThreadStat {
            fd,
            id,
            lost: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The thread's scheduling state now (`R` running or runnable, `S` sleeping, `D`
    /// waiting for I/O, ...), or None if it cannot be read (the thread ended, or the
    /// descriptor was taken from us).
    pub fn state(&self) -> Option<u8> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.lost.load(Relaxed) {
            return None;
        }
        if file_id(self.fd) != Some(self.id) {
            self.lost.store(true, Relaxed);
            return None;
        }
        let mut buf = [0u8; 256];
        // SAFETY: pread64 writes at most `buf.len()` bytes into `buf`. Reading a procfs
        // file again at offset 0 makes it anew.
        let n = unsafe {
            syscall6(
                libc::SYS_pread64 as u64,
                [self.fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0],
            )
        };
        let text = buf.get(..usize::try_from(n).ok()?)?;
        // "TID (COMM) STATE ...": COMM may hold spaces and parentheses, so look after the
        // last ')'.
        let close = text.iter().rposition(|&b| b == b')')?;
        text.get(close + 2).copied()
    }
}

impl Drop for ThreadStat {
    fn drop(&mut self) {
        disown(self.fd);
        // Only if the number still names the file opened: else it is the program's now.
        if !self.lost.load(std::sync::atomic::Ordering::Relaxed) && file_id(self.fd) == Some(self.id) {
            close(self.fd);
        }
    }
}

/// How many of the runtime's own descriptors [`own`] records (more are not recorded: a
/// forked child then keeps them, as before there was a record).
pub const OWN_MAX: usize = 64;

/// One recorded descriptor: `fd` is -1 when the slot is free, -2 while it is being filled.
struct Own {
    fd: std::sync::atomic::AtomicI32,
    dev: std::sync::atomic::AtomicU64,
    ino: std::sync::atomic::AtomicU64,
}

/// The runtime's own long-lived descriptors (io_uring instances, stat files), each with the
/// identity of the file it names, so that a forked child can close those it inherited
/// ([`close_inherited`]). Lock-free: a fork may copy it half-written (a lock held by
/// another thread at the fork would stay held in the child). A slot's `fd` is published
/// last, with Release, after its identity; [`close_inherited`] reads it with Acquire.
static OWN: [Own; OWN_MAX] = [const {
    Own {
        fd: std::sync::atomic::AtomicI32::new(-1),
        dev: std::sync::atomic::AtomicU64::new(0),
        ino: std::sync::atomic::AtomicU64::new(0),
    }
}; OWN_MAX];

/// The lowest descriptor [`own`] recorded since the last [`close_inherited`]
/// (`i32::MAX` if none): below it [`is_own`] answers with one load. Only lowered while
/// recorded; a descriptor forgotten leaves it where it is (a few needless looks).
static OWN_LOW: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(i32::MAX);

/// How many of [`OWN`]'s first slots were ever filled since the last [`close_inherited`]
/// (they are taken lowest first): the looks scan no further.
static OWN_USED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The slots of [`OWN`] that may hold a descriptor.
fn own_slots() -> &'static [Own] {
    let used = OWN_USED.load(std::sync::atomic::Ordering::Relaxed);
    &OWN[..used.min(OWN_MAX)]
}

/// Records `fd`, naming the file `id` (device, inode), as one of the runtime's own.
pub fn own(fd: i32, id: (u64, u64)) {
    use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    for (i, slot) in OWN.iter().enumerate() {
        if slot.fd.compare_exchange(-1, -2, Acquire, Relaxed).is_ok() {
            slot.dev.store(id.0, Relaxed);
            slot.ino.store(id.1, Relaxed);
            OWN_LOW.fetch_min(fd, Relaxed);
            OWN_USED.fetch_max(i + 1, Relaxed);
            slot.fd.store(fd, Release);
            return;
        }
    }
}

/// Whether `fd` is one of the runtime's own descriptors: recorded by [`own`], not yet
/// forgotten, and still naming the file recorded (a `dup2` onto the number makes it the
/// program's). One load for any descriptor below the runtime's lowest, the program's
/// usual ones; an `fstat` for one of the runtime's numbers.
#[inline]
pub fn is_own(fd: i32) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    fd >= OWN_LOW.load(Relaxed) && own_slots().iter().any(|slot| still_own(slot, fd))
}

/// Whether `slot` records `fd`, and `fd` still names the file it recorded.
fn still_own(slot: &Own, fd: i32) -> bool {
    use std::sync::atomic::Ordering::{Acquire, Relaxed};
    // Acquire: the identity was stored before the number was published (`own`).
    slot.fd.load(Acquire) == fd && file_id(fd) == Some((slot.dev.load(Relaxed), slot.ino.load(Relaxed)))
}

/// The runtime's own descriptors (as [`is_own`] says) from `first` to `last` (inclusive),
/// in ascending order, into `out`; returns how many.
pub fn own_between(first: u32, last: u32, out: &mut [i32; OWN_MAX]) -> usize {
    use std::sync::atomic::Ordering::Relaxed;
    if i64::from(last) < i64::from(OWN_LOW.load(Relaxed)) {
        return 0;
    }
    let mut n = 0;
    for slot in own_slots() {
        let fd = slot.fd.load(Relaxed);
        if fd >= 0 && (first..=last).contains(&(fd as u32)) && still_own(slot, fd) {
            out[n] = fd;
            n += 1;
        }
    }
    out[..n].sort_unstable();
    n
}

/// Forgets `fd` as one of the runtime's own (before it is closed).
pub fn disown(fd: i32) {
    use std::sync::atomic::Ordering::Relaxed;
    for slot in &OWN {
        if slot.fd.compare_exchange(fd, -1, Relaxed, Relaxed).is_ok() {
            return;
        }
    }
}

/// In a child just forked (one thread): closes every descriptor the runtime recorded
/// ([`own`]) that still names the file it recorded, and forgets them all. The parent's
/// io_uring instances and stat files are of no use here, and each generation of children
/// would otherwise hold more of them.
pub fn close_inherited() {
    use std::sync::atomic::Ordering::{Acquire, Relaxed};
    for slot in &OWN {
        let fd = slot.fd.load(Acquire);
        if fd >= 0 && file_id(fd) == Some((slot.dev.load(Relaxed), slot.ino.load(Relaxed))) {
            close(fd);
        }
        slot.fd.store(-1, Relaxed);
    }
    OWN_LOW.store(i32::MAX, Relaxed);
    OWN_USED.store(0, Relaxed);
}

/// `fd`'s `stat`, or None if it is not open.
///
/// Asked as glibc's own `fstat` asks (`newfstatat` with an empty path), never with
/// `SYS_fstat`, which glibc 2.33 and later never make: a seccomp allowlist written
/// against them may kill a process that does, and the guard makes this call inside the
/// program's own `close` (found by a review: SIGSYS under a filter that allowed
/// everything glibc's `closefrom` needs).
pub fn stat_fd(fd: i32) -> Option<libc::stat> {
    if fd < 0 {
        // With an empty path a negative number could name the working directory.
        return None;
    }
    // SAFETY: `stat` is plain data, written whole by a successful newfstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: newfstatat with AT_EMPTY_PATH reads the empty NUL-terminated path and
    // writes one `struct stat` into `st`.
    let ret = unsafe {
        syscall6(
            libc::SYS_newfstatat as u64,
            [
                fd as u64,
                c"".as_ptr() as u64,
                &mut st as *mut libc::stat as u64,
                libc::AT_EMPTY_PATH as u64,
                0,
                0,
            ],
        )
    };
    (ret == 0).then_some(st)
}

/// `fd`'s device and inode, or None if it is not open ([`stat_fd`]).
pub fn file_id(fd: i32) -> Option<(u64, u64)> {
    stat_fd(fd).map(|st| (st.st_dev, st.st_ino))
}

/// Closes a descriptor of the runtime's own.
fn close(fd: i32) {
    // SAFETY: the caller's own descriptor, used no more.
    let _ = unsafe { syscall6(libc::SYS_close as u64, [fd as u64, 0, 0, 0, 0, 0]) };
}

/// The lowest number the runtime's own long-lived descriptors take: half the soft
/// `RLIMIT_NOFILE`, at least 256 (a program's fill from 0 up).
pub fn high_fd_floor() -> i32 {
    (nofile_limit() / 2).max(256)
}

/// The soft `RLIMIT_NOFILE`, at most 2^20; 1024 if it cannot be read.
fn nofile_limit() -> i32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit64 of this process writes one rlimit and reads no new limit (NULL).
    let ret = unsafe {
        syscall6(
            libc::SYS_prlimit64 as u64,
            [
                0,
                libc::RLIMIT_NOFILE as u64,
                0,
                &mut lim as *mut libc::rlimit as u64,
                0,
                0,
            ],
        )
    };
    if ret == 0 {
        lim.rlim_cur.min(1 << 20) as i32
    } else {
        1024
    }
}

/// A close-on-exec duplicate of `fd` on a high number, where it never holds one of the
/// low numbers a program expects `open` to return: the lowest free from
/// [`high_fd_floor`] up or, if the floor is past the soft `RLIMIT_NOFILE`, the highest
/// free above `fd` below it (a few tries from the top; each failed try means every
/// descriptor from there up is taken). -1 if there is none.
pub fn dup_high(fd: i32) -> i32 {
    let dup_from = |min: i32| {
        // SAFETY: F_DUPFD_CLOEXEC duplicates an open descriptor of the caller's.
        unsafe {
            syscall6(
                libc::SYS_fcntl as u64,
                [fd as u64, libc::F_DUPFD_CLOEXEC as u64, min as u64, 0, 0, 0],
            )
        }
    };
    let moved = dup_from(high_fd_floor());
    if moved >= 0 {
        return moved as i32;
    }
    for want in ((fd + 1)..nofile_limit()).rev().take(64) {
        let moved = dup_from(want);
        if moved >= 0 {
            return moved as i32;
        }
    }
    -1
}

/// Grows the descriptor table to reach [`high_fd_floor`] now, by taking a number there
/// for a moment (the table never shrinks, so [`dup_high`] later finds room). Call it while
/// the process has one thread: the kernel grows a table that several threads share only
/// after an RCU grace period (`expand_fdtable`), which took 6–14 ms here when a runtime's
/// first high descriptor came after its first thread. Takes the lowest free number for a
/// moment too, as any open does.
pub fn make_room_for_high_fds() {
    // SAFETY: openat reads the NUL-terminated path; O_PATH opens nothing for I/O.
    let fd = unsafe {
        syscall6(
            libc::SYS_openat as u64,
            [
                libc::AT_FDCWD as u64,
                c"/".as_ptr() as u64,
                (libc::O_PATH | libc::O_CLOEXEC) as u64,
                0,
                0,
                0,
            ],
        )
    };
    if fd < 0 {
        return;
    }
    let high = dup_high(fd as i32);
    close(fd as i32);
    if high >= 0 {
        close(high);
    }
}

/// The calling thread's kernel thread id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and no side effects.
    unsafe { syscall6(libc::SYS_gettid as u64, [0; 6]) as i32 }
}

/// Copies `len` bytes of this process's memory from `from` to `to` through the kernel
/// (`process_vm_readv`, which reads and writes as the kernel's own copies do): false, and
/// nothing done, where either range is not mapped as it needs (or the call is refused),
/// where a plain copy would fault. For addresses a program gave, which may be bad.
///
/// # Safety
/// Where `to..to + len` is mapped writable, writing those bytes must be allowed: nothing
/// else of this process relies on them (`from` needs no such promise: it is only read).
pub unsafe fn copy_checked(from: usize, to: usize, len: usize) -> bool {
    let local = libc::iovec {
        iov_base: to as *mut libc::c_void,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: from as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: getpid takes nothing; process_vm_readv copies from `from` into `to` within
    // this process, checking both ranges itself (EFAULT where one is not mapped); the
    // iovecs live on this stack.
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
    n == len as i64
}

/// Yields the calling thread's core.
pub fn sched_yield() {
    // SAFETY: sched_yield has no arguments and no effect but scheduling.
    let _ = unsafe { syscall6(libc::SYS_sched_yield as u64, [0; 6]) };
}

#[cfg(test)]
mod tests {
    use super::{gettid, high_fd_floor, ThreadStat};
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_thread_stat_is_read_again_at_each_look_from_a_high_descriptor() {
        let me = ThreadStat::open(gettid()).expect("this thread's stat file");
        assert!(
            me.fd >= high_fd_floor() || super::nofile_limit() <= high_fd_floor(),
            "kept on a high number: {} (floor {})",
            me.fd,
            high_fd_floor()
        );
        assert_eq!(me.state(), Some(b'R'), "this thread runs");

        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                tx.send(gettid()).expect("the test waits");
                while !stop.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let tid = rx.recv().expect("the sleeper's tid");
        let stat = ThreadStat::open(tid).expect("the sleeper's stat file");
        // The same descriptor, read again: the state it shows changes with the thread.
        let deadline = Instant::now() + Duration::from_secs(10);
        while stat.state() != Some(b'S') {
            assert!(Instant::now() < deadline, "never seen asleep: {:?}", stat.state());
        }
        stop.store(true, SeqCst);
        sleeper.join().expect("the sleeper");
        let deadline = Instant::now() + Duration::from_secs(10);
        while stat.state().is_some() {
            assert!(Instant::now() < deadline, "an ended thread still has a state");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The descriptor table's size, from `/proc/self/status` (`FDSize:`), read with raw
    /// calls into a stack buffer (safe in a forked child of a threaded process).
    fn fd_table_size() -> Option<u64> {
        let mut buf = [0u8; 4096];
        // SAFETY: openat reads the NUL-terminated path; read fills `buf`, ours.
        let n = unsafe {
            let fd = super::syscall6(
                libc::SYS_openat as u64,
                [
                    libc::AT_FDCWD as u64,
                    c"/proc/self/status".as_ptr() as u64,
                    libc::O_RDONLY as u64,
                    0,
                    0,
                    0,
                ],
            );
            if fd < 0 {
                return None;
            }
            let n = super::syscall6(
                libc::SYS_read as u64,
                [fd as u64, buf.as_mut_ptr() as u64, 4096, 0, 0, 0],
            );
            super::close(fd as i32);
            n
        };
        let text = buf.get(..usize::try_from(n).ok()?)?;
        let at = text.windows(7).position(|w| w == b"FDSize:")? + 7;
        let digits = text[at..].iter().skip_while(|c| c.is_ascii_whitespace());
        digits
            .take_while(|c| c.is_ascii_digit())
            .try_fold(0u64, |v, &c| Some(v * 10 + u64::from(c - b'0')))
    }

    /// Room for the runtime's high descriptors is made at once, without keeping one. In a
    /// forked child with only 0-2 open and a table of its own (`unshare(CLONE_FILES)`
    /// copies it at the size those need), the table is small before and reaches past the
    /// high floor after.
    #[test]
    fn room_for_high_descriptors_is_made_without_keeping_one() {
        if super::nofile_limit() <= high_fd_floor() {
            eprintln!("SKIPPED room_for_high_descriptors_is_made_without_keeping_one: RLIMIT_NOFILE is below the high floor");
            return;
        }
        // SAFETY: the child only makes raw system calls and ends with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            // SAFETY: raw calls on this child's own descriptor table, no memory.
            unsafe {
                super::syscall6(libc::SYS_close_range as u64, [3, u32::MAX as u64, 0, 0, 0, 0]);
                super::syscall6(
                    libc::SYS_unshare as u64,
                    [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0],
                );
            }
            let floor = high_fd_floor() as u64;
            let small_before = fd_table_size().is_some_and(|size| size <= floor);
            super::make_room_for_high_fds();
            let grown = fd_table_size().is_some_and(|size| size > floor);
            // F_GETFD on the floor's number: EBADF, nothing kept there.
            // SAFETY: fcntl on a number, no memory.
            let kept =
                unsafe { super::syscall6(libc::SYS_fcntl as u64, [floor, libc::F_GETFD as u64, 0, 0, 0, 0]) }
                    >= 0;
            let code = i32::from(!small_before) | (i32::from(!grown) << 1) | (i32::from(kept) << 2);
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "the child ended: {status:#x}");
        let code = libc::WEXITSTATUS(status);
        assert_eq!(code & 1, 0, "the child's own table starts below the high floor");
        assert_eq!(
            code & 2,
            0,
            "the table reaches past the high floor ({})",
            high_fd_floor()
        );
        assert_eq!(code & 4, 0, "no descriptor kept on the floor's number");
    }

    /// A program may close the runtime's descriptors (`close_range` at start-up) and reuse
    /// the numbers: the stat file then reads as no state, and dropping it leaves the
    /// program's file open.
    #[test]
    fn a_thread_stat_whose_number_was_reused_is_left_alone() {
        let stat = ThreadStat::open(gettid()).expect("this thread's stat file");
        let fd = stat.fd;
        // SAFETY: puts a file of "the program's" on the stat file's number, closing the
        // stat file behind its back in the same step (dup3 replaces atomically, so no
        // other test's open can take the number in between).
        let null = unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            assert!(null >= 0, "open /dev/null");
            let moved = libc::dup3(null, fd, libc::O_CLOEXEC);
            libc::close(null);
            moved
        };
        assert_eq!(null, fd, "/dev/null on the stat file's number");
        assert_eq!(stat.state(), None, "another file's number reads as no state");
        drop(stat);
        // SAFETY: F_GETFD only reads the descriptor's flags.
        assert!(
            unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0,
            "the program's file was closed"
        );
        // SAFETY: the descriptor this test put there.
        unsafe { libc::close(fd) };
    }
}
