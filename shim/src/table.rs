//! Where each x86-64 Linux system call may run.
//!
//! flexsc lets application threads post system calls into shared syscall pages that pinned
//! service threads of the same process execute. That is only sound when the call means the same
//! thing on a service thread as on the thread that made it. This module classifies every
//! x86-64 system call number that Linux defines (up to Linux 6.18, number [`MAX_NR`]) into a
//! [`Class`]:
//!
//! * [`Class::Delegate`]: process-wide state (fd table, address space, cwd, signal handlers,
//!   timers...) and never waits for an event: a service thread runs it inline in its batch,
//!   except the calls made to wait for the storage device ([`waits_for_the_device`]).
//! * [`Class::Block`]: process-wide state but may wait indefinitely for an event (pipe, socket,
//!   futex, child, sleep...): it goes to the blocking pool.
//! * [`Class::Caller`]: depends on or changes the calling thread (thread id, signal mask,
//!   per-thread state, credentials, process/thread structure): it runs on the caller.
//! * [`Class::Isolate`]: runs on the caller and changes the thread's identity or confinement,
//!   after which that thread stops delegating.
//!
//! Running on the caller is always correct; delegation is an optimisation. Where the table is
//! unsure it says [`Class::Caller`] and its `why` says why.
//!
//! [`classify`] refines the table's class with argument rules that only look at the raw
//! register values (it never reads user memory): futex ops, prctl options, `pid == 0` meaning
//! "the calling thread", zero timeouts, signal-mask arguments, `__WNOTHREAD`/`WNOHANG`,
//! `F_SETLKW`, `LOCK_NB`, `IPC_NOWAIT`, `CLOSE_RANGE_UNSHARE`, personality queries, per-thread
//! CPU clocks and execute-only mappings (which touch the calling thread's PKRU). Each rule is
//! documented where it is applied.
//!
//! Limits a classification from numbers and registers alone cannot see, for whoever delegates:
//! * path-based calls through `/proc/thread-self` resolve to the thread that runs them;
//! * `read` on a signalfd dequeues the *reading* thread's thread-directed signals;
//! * a delegated call that touches user memory can fault on a userfaultfd or FUSE-backed page
//!   and wait there, and calls on FUSE or hard-mounted network filesystems can wait
//!   indefinitely, however they are classified; so can the opens of a FIFO or a tty. The
//!   runtime copes rather than predicts: calls posted behind one that waits like that are
//!   taken back by their owners or handed on by the relief thread (see
//!   [`crate::Entry::wait_or_take_back`] and `kernel-side/src/relief.rs`);
//! * `connect` on a blocking socket cannot be turned into a non-blocking attempt plus a blocking
//!   retry without changing its meaning (the retry answers `EALREADY`).
//!
//! Lookups are O(1): a compile-time index maps each number to its row.

/// Delegate calls that wait for no event of their own but may wait until another thread
/// acts: the opens (a FIFO's open waits for its other end; a tty's may wait for a
/// carrier), and the closes (a socket's last close with `SO_LINGER` waits until the peer
/// has taken the data sent, up to the linger time; `dup2`/`dup3` close their target). A
/// thread that runs one itself must not be the only one that could end the wait (an
/// M-on-N kernel thread with other user threads on it, an executor thread).
pub fn may_wait_for_another_thread(nr: u64) -> bool {
    matches!(
        nr as i64,
        libc::SYS_open
            | libc::SYS_openat
            | libc::SYS_openat2
            | libc::SYS_creat
            | libc::SYS_open_by_handle_at
            | libc::SYS_close
            | libc::SYS_close_range
            | libc::SYS_dup2
            | libc::SYS_dup3
    )
}

/// Delegate calls made to wait for the storage device, or to fill memory from it: they
/// take as long as the device does (`fsync` ~150 µs on this guest's virtual disk,
/// milliseconds on a real one; a 64 MiB `copy_file_range` or `MADV_POPULATE_READ` of a
/// cold file ~40 ms). A thread with other work (an M-on-N kernel thread, an executor
/// thread) posts them rather than run them itself, and a service thread hands them to a
/// blocking worker ([`crate::help`]). Looks at registers only, so that the cheap forms
/// stay where they are (each measured at 0.2–2 µs natively, against ~50 µs through a
/// worker woken across the cores):
/// * `msync` with `MS_SYNC` (without it no I/O is done);
/// * `sync_file_range` with `SYNC_FILE_RANGE_WAIT_BEFORE` or `_WAIT_AFTER` (the others
///   only start writeback);
/// * `mlock`, `mlock2` without `MLOCK_ONFAULT`, `mlockall` with `MCL_CURRENT` and without
///   `MCL_ONFAULT` (they fault the pages in);
/// * `madvise` with `MADV_POPULATE_READ` or `_WRITE`; `mmap` of a file with
///   `MAP_POPULATE` (an anonymous mapping reads no device);
/// * `fsync`, `fdatasync`, `sync`, `syncfs`, `copy_file_range`.
///
/// Not here: `readahead`, and `WILLNEED` advice, which start reading and return
/// (64 MiB: ~1.6 ms); `fallocate`, which allocates blocks without writing them on
/// ext4 (256 MiB: ~0.4 ms).
#[inline]
pub fn waits_for_the_device(nr: u64, args: &[u64; 6]) -> bool {
    let flags = |at: usize| args[at] as i32;
    match nr as i64 {
        libc::SYS_fsync
        | libc::SYS_fdatasync
        | libc::SYS_sync
        | libc::SYS_syncfs
        | libc::SYS_copy_file_range
        | libc::SYS_mlock => true,
        libc::SYS_msync => flags(2) & libc::MS_SYNC != 0,
        libc::SYS_sync_file_range => {
            flags(3) as u32 & (libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WAIT_AFTER) != 0
        }
        libc::SYS_mlock2 => args[2] & u64::from(libc::MLOCK_ONFAULT) == 0,
        libc::SYS_mlockall => flags(0) & libc::MCL_CURRENT != 0 && flags(0) & libc::MCL_ONFAULT == 0,
        libc::SYS_madvise => matches!(flags(2), MADV_POPULATE_READ | MADV_POPULATE_WRITE),
        libc::SYS_mmap => flags(3) & libc::MAP_POPULATE != 0 && flags(3) & libc::MAP_ANONYMOUS == 0,
        _ => false,
    }
}

/// `madvise` advice that faults the range in, reading a file's pages from the device
/// (Linux 5.14, `include/uapi/asm-generic/mman-common.h`; not in the `libc` crate).
const MADV_POPULATE_READ: i32 = 22;
/// The same, for writing (it may also allocate blocks).
const MADV_POPULATE_WRITE: i32 = 23;

/// Where a system call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Process-wide meaning and never waits for an event: a service thread runs it inline in its
    /// batch (a call made to wait for the device, [`waits_for_the_device`], leaves a batch it
    /// shares with other calls).
    Delegate,
    /// Process-wide meaning but may wait indefinitely for an event (empty pipe, accept, futex
    /// wait, sleep, poll...): a service thread must not run it inline; it goes to the blocking
    /// pool (after a non-blocking attempt where one exists).
    Block,
    /// Its meaning depends on the calling thread (thread id, signal mask, per-thread state,
    /// credentials are read...), or it changes the process/thread structure: it always runs on
    /// the caller.
    Caller,
    /// Runs on the caller AND changes the calling thread's identity or confinement so that a
    /// service thread can no longer act for it (setuid family, capset, seccomp,
    /// landlock_restrict_self, unshare, setns, security prctl options...): after it succeeds,
    /// that thread stops delegating.
    Isolate,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// The x86-64 system call number (`__NR_*`).
    pub nr: u32,
    /// The kernel's name for it, as in `arch/x86/entry/syscalls/syscall_64.tbl`.
    pub name: &'static str,
    /// Where it runs when no argument rule of [`classify`] applies.
    pub class: Class,
    /// One short line saying why.
    pub why: &'static str,
}

/// The highest syscall number in the table.
pub const MAX_NR: u32 = 469;

/// Every x86-64 syscall number Linux defines, sorted by number, no gaps in the sense that every
/// defined number appears exactly once.
///
/// That is 0..=336 and 424..=469 (383 rows) as of Linux 6.18: 335 (`uretprobe`, 6.11) and 336
/// (`uprobe`, 6.18) follow `rseq`; 337..=423 are unused on x86-64 and the x32 range (512..) is not
/// included. Numbers the kernel lists but no longer implements (`_sysctl`, `create_module`,
/// `tuxcall`...) are included: they are defined numbers, and they run on the caller, which
/// receives `ENOSYS`.
pub static TABLE: &[Row] = ROWS;

/// The row for `nr`, if Linux defines it.
///
/// O(1): one bounds-checked load from a compile-time index and one from [`TABLE`].
#[inline]
pub fn row(nr: u64) -> Option<&'static Row> {
    let slot = *INDEX.get(usize::try_from(nr).ok()?)?;
    // `NO_ROW` is larger than the table (checked at compile time), so it yields `None` here.
    TABLE.get(usize::from(slot))
}

/// The name of `nr` (`"read"`), if defined.
#[inline]
pub fn name(nr: u64) -> Option<&'static str> {
    row(nr).map(|r| r.name)
}

/// The class of a call with these arguments: the table's class refined by argument rules.
///
/// Unknown numbers (not in the table, including anything above [`MAX_NR`] or with high bits
/// set) return [`Class::Caller`]: running on the caller is always correct, and the kernel will
/// answer `ENOSYS` itself.
///
/// Arguments are the raw register values. Where the kernel declares a parameter `int` (options,
/// commands, pids, timeouts, clock ids) only the low 32 bits are looked at, as the kernel does.
pub fn classify(nr: u64, args: &[u64; 6]) -> Class {
    let Some(row) = row(nr) else {
        return Class::Caller;
    };
    match row.nr {
        // futex(uaddr, op, ...): by command, see `futex_class`.
        NR_FUTEX => futex_class(args[1]),

        // prctl(option, ...): the security options change the thread's identity or confinement
        // (seccomp, no_new_privs, bounding set, securebits, ambient caps): Isolate. Every
        // other option is per-thread or rare: Caller. PR_SET_KEEPCAPS is one of those: it
        // changes no credential, only what a later setuid does, and that setuid isolates
        // anyway (named sets it at start; isolating there stopped all of BIND's delegation).
        // PR_CAP_AMBIENT_IS_SET only asks.
        NR_PRCTL => match int(args[0]) {
            PR_CAP_AMBIENT if int(args[1]) == PR_CAP_AMBIENT_IS_SET => Class::Caller,
            PR_SET_SECCOMP | PR_CAPBSET_DROP | PR_SET_SECUREBITS | PR_SET_NO_NEW_PRIVS | PR_CAP_AMBIENT => {
                Class::Isolate
            }
            _ => Class::Caller,
        },

        // sched_*(pid, ...): pid 0 means the calling thread; any other pid names its target
        // explicitly, so any thread of the process can act for the caller.
        NR_SCHED_SETPARAM
        | NR_SCHED_GETPARAM
        | NR_SCHED_SETSCHEDULER
        | NR_SCHED_GETSCHEDULER
        | NR_SCHED_RR_GET_INTERVAL
        | NR_SCHED_SETAFFINITY
        | NR_SCHED_GETAFFINITY
        | NR_SCHED_SETATTR
        | NR_SCHED_GETATTR => {
            if int(args[0]) == 0 {
                Class::Caller
            } else {
                Class::Delegate
            }
        }

        // getrusage(who, usage): RUSAGE_THREAD measures the calling thread; RUSAGE_SELF and
        // RUSAGE_CHILDREN are process-wide.
        NR_GETRUSAGE => {
            if int(args[0]) == RUSAGE_THREAD {
                Class::Caller
            } else {
                Class::Delegate
            }
        }

        // wait4(pid, status, options, rusage) / waitid(idtype, id, info, options, rusage):
        // __WNOTHREAD restricts the wait to the calling thread's own children: Caller.
        // WNOHANG never waits: Delegate. Otherwise it may wait for a child: Block.
        NR_WAIT4 => wait_class(args[2]),
        NR_WAITID => wait_class(args[3]),

        // poll(fds, nfds, timeout_ms) / epoll_wait(epfd, events, max, timeout_ms): a zero
        // timeout never waits: Delegate; otherwise Block.
        NR_POLL => timeout_class(args[2]),
        NR_EPOLL_WAIT => timeout_class(args[3]),

        // Calls with a signal-mask argument install that mask on the thread that runs them for
        // the duration of the wait, so a non-null mask only means something on the caller:
        // Caller. A null mask: Block (epoll_pwait: then as epoll_wait). The timeouts of ppoll,
        // pselect6, epoll_pwait2 and io_pgetevents are behind pointers that are not read here.
        // pselect6's sixth argument points to a {mask, size} pair; it is treated as a mask.
        NR_EPOLL_PWAIT => match args[4] {
            0 => timeout_class(args[3]),
            _ => Class::Caller,
        },
        NR_PPOLL => sigmask_class(args[3]),
        NR_PSELECT6 => sigmask_class(args[5]),
        NR_EPOLL_PWAIT2 => sigmask_class(args[4]),
        NR_IO_PGETEVENTS => sigmask_class(args[5]),

        // fcntl(fd, cmd, arg): F_SETLKW and F_OFD_SETLKW wait for a lock: Block. Every other
        // command acts on process-wide fd state and never waits (F_SETOWN_EX with F_OWNER_TID
        // names its thread explicitly): Delegate.
        NR_FCNTL => match int(args[1]) {
            F_SETLKW | F_OFD_SETLKW => Class::Block,
            _ => Class::Delegate,
        },

        // flock(fd, op): LOCK_NB never waits and LOCK_UN only releases: Delegate; otherwise it
        // may wait for the lock: Block. (The lock belongs to the open file, not the thread.)
        NR_FLOCK => {
            let op = int(args[1]);
            if op & LOCK_NB != 0 || op == LOCK_UN {
                Class::Delegate
            } else {
                Class::Block
            }
        }

        // msgsnd(id, msg, size, flags) / msgrcv(id, msg, size, type, flags): IPC_NOWAIT never
        // waits: Delegate; otherwise Block.
        NR_MSGSND => nowait_class(args[3]),
        NR_MSGRCV => nowait_class(args[4]),

        // personality(persona): 0xffffffff only queries the calling thread's persona: Caller.
        // Any other value sets per-task flags that later calls read (READ_IMPLIES_EXEC in
        // mmap, STICKY_TIMEOUTS in select, UNAME26 in uname...), so service threads could no
        // longer act for the thread: Isolate.
        NR_PERSONALITY => {
            if int(args[0]) == PERSONALITY_QUERY {
                Class::Caller
            } else {
                Class::Isolate
            }
        }

        // close_range(first, last, flags): CLOSE_RANGE_UNSHARE gives the running thread a
        // private fd table, after which a service thread can no longer act for it: Isolate.
        NR_CLOSE_RANGE => {
            if int(args[2]) & CLOSE_RANGE_UNSHARE != 0 {
                Class::Isolate
            } else {
                Class::Delegate
            }
        }

        // mmap(addr, len, prot, ...) / mprotect(addr, len, prot) / pkey_mprotect(.., prot, pkey):
        // an execute-only protection may allocate the execute-only protection key and write it
        // into the running thread's PKRU register: Caller. (PROT_GROWSDOWN/UP are ignored as the
        // kernel does.)
        NR_MMAP | NR_MPROTECT | NR_PKEY_MPROTECT => {
            if args[2] & !(PROT_GROWSDOWN | PROT_GROWSUP) == PROT_EXEC {
                Class::Caller
            } else {
                row.class
            }
        }

        // clock_*(clockid, ...) / timer_create(clockid, ...): a per-thread CPU clock of the
        // calling thread (CLOCK_THREAD_CPUTIME_ID, or a dynamic clock id for thread 0) measures
        // whichever thread runs the call. Dynamic ids naming another thread are sent to the
        // caller too (rare, and clock_nanosleep treats the caller's own id specially).
        NR_TIMER_CREATE | NR_CLOCK_SETTIME | NR_CLOCK_GETTIME | NR_CLOCK_GETRES | NR_CLOCK_NANOSLEEP
        | NR_CLOCK_ADJTIME => {
            if is_thread_clock(args[0]) {
                Class::Caller
            } else {
                row.class
            }
        }

        _ => row.class,
    }
}

/// The low 32 bits of a register, as the kernel reads an `int` parameter.
#[inline]
fn int(reg: u64) -> i32 {
    reg as u32 as i32
}

/// futex(uaddr, op, val, timeout, uaddr2, val3). The command is `op` without
/// FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME (the kernel's FUTEX_CMD_MASK).
/// * WAIT, WAIT_BITSET: wait on the word; the key is the same from any thread of the
///   process (private futexes are keyed by address space): Block.
/// * WAKE, FD, REQUEUE, CMP_REQUEUE, WAKE_OP, WAKE_BITSET: never wait: Delegate.
/// * LOCK_PI, UNLOCK_PI, TRYLOCK_PI, WAIT_REQUEUE_PI, CMP_REQUEUE_PI, LOCK_PI2: record or
///   check the calling thread's tid in the futex word: Caller.
/// * Anything else: Caller (the kernel answers ENOSYS).
#[inline]
fn futex_class(op: u64) -> Class {
    match int(op) & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME) {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => Class::Block,
        FUTEX_WAKE | FUTEX_FD | FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP | FUTEX_WAKE_BITSET => {
            Class::Delegate
        }
        _ => Class::Caller,
    }
}

/// wait4/waitid options: `__WNOTHREAD` -> Caller, `WNOHANG` -> Delegate, else Block.
#[inline]
fn wait_class(options: u64) -> Class {
    let options = int(options);
    if options & WNOTHREAD != 0 {
        Class::Caller
    } else if options & WNOHANG != 0 {
        Class::Delegate
    } else {
        Class::Block
    }
}

/// A millisecond timeout of 0 never waits: Delegate; anything else: Block.
#[inline]
fn timeout_class(timeout_ms: u64) -> Class {
    if int(timeout_ms) == 0 {
        Class::Delegate
    } else {
        Class::Block
    }
}

/// A non-null signal-mask pointer: Caller; null: Block.
#[inline]
fn sigmask_class(mask: u64) -> Class {
    if mask == 0 {
        Class::Block
    } else {
        Class::Caller
    }
}

/// IPC_NOWAIT in System V message flags: Delegate; otherwise Block.
#[inline]
fn nowait_class(flags: u64) -> Class {
    if int(flags) & IPC_NOWAIT != 0 {
        Class::Delegate
    } else {
        Class::Block
    }
}

/// Whether a clock id is a per-thread CPU clock: CLOCK_THREAD_CPUTIME_ID, or a dynamic CPU
/// clock id (negative, `~tid << 3 | type`) with the per-thread bit set.
#[inline]
fn is_thread_clock(clockid: u64) -> bool {
    let id = int(clockid);
    id == CLOCK_THREAD_CPUTIME_ID || (id < 0 && id & CPUCLOCK_PERTHREAD != 0)
}

// Syscall numbers with argument rules (checked against the table's names in the tests).
const NR_POLL: u32 = 7;
const NR_MMAP: u32 = 9;
const NR_MPROTECT: u32 = 10;
const NR_WAIT4: u32 = 61;
const NR_MSGSND: u32 = 69;
const NR_MSGRCV: u32 = 70;
const NR_FCNTL: u32 = 72;
const NR_FLOCK: u32 = 73;
const NR_GETRUSAGE: u32 = 98;
const NR_PERSONALITY: u32 = 135;
const NR_SCHED_SETPARAM: u32 = 142;
const NR_SCHED_GETPARAM: u32 = 143;
const NR_SCHED_SETSCHEDULER: u32 = 144;
const NR_SCHED_GETSCHEDULER: u32 = 145;
const NR_SCHED_RR_GET_INTERVAL: u32 = 148;
const NR_PRCTL: u32 = 157;
const NR_FUTEX: u32 = 202;
const NR_SCHED_SETAFFINITY: u32 = 203;
const NR_SCHED_GETAFFINITY: u32 = 204;
const NR_TIMER_CREATE: u32 = 222;
const NR_CLOCK_SETTIME: u32 = 227;
const NR_CLOCK_GETTIME: u32 = 228;
const NR_CLOCK_GETRES: u32 = 229;
const NR_CLOCK_NANOSLEEP: u32 = 230;
const NR_EPOLL_WAIT: u32 = 232;
const NR_WAITID: u32 = 247;
const NR_PSELECT6: u32 = 270;
const NR_PPOLL: u32 = 271;
const NR_EPOLL_PWAIT: u32 = 281;
const NR_CLOCK_ADJTIME: u32 = 305;
const NR_SCHED_SETATTR: u32 = 314;
const NR_SCHED_GETATTR: u32 = 315;
const NR_PKEY_MPROTECT: u32 = 329;
const NR_IO_PGETEVENTS: u32 = 333;
const NR_CLOSE_RANGE: u32 = 436;
const NR_EPOLL_PWAIT2: u32 = 441;

// Kernel ABI constants used by the argument rules (checked against `libc` in the tests).
const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_FD: i32 = 2;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const PR_SET_SECCOMP: i32 = 22;
const PR_CAPBSET_DROP: i32 = 24;
const PR_SET_SECUREBITS: i32 = 28;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
const PR_CAP_AMBIENT: i32 = 47;
const PR_CAP_AMBIENT_IS_SET: i32 = 1;
const RUSAGE_THREAD: i32 = 1;
const WNOHANG: i32 = 1;
const WNOTHREAD: i32 = 0x2000_0000;
const F_SETLKW: i32 = 7;
const F_OFD_SETLKW: i32 = 38;
const LOCK_NB: i32 = 4;
const LOCK_UN: i32 = 8;
const IPC_NOWAIT: i32 = 0o4000;
const CLOSE_RANGE_UNSHARE: i32 = 1 << 1;
const PROT_EXEC: u64 = 0x4;
const PROT_GROWSDOWN: u64 = 0x0100_0000;
const PROT_GROWSUP: u64 = 0x0200_0000;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
const CPUCLOCK_PERTHREAD: i32 = 4;
const PERSONALITY_QUERY: i32 = -1;

/// Index slots: one per number 0..=MAX_NR.
const SLOTS: usize = MAX_NR as usize + 1;
/// The index value of a number Linux does not define.
const NO_ROW: u16 = u16::MAX;

/// `INDEX[nr]` is the position of `nr` in [`TABLE`], or [`NO_ROW`].
static INDEX: [u16; SLOTS] = build_index(ROWS);

/// Builds [`INDEX`] and, at compile time, checks that the rows are strictly sorted, within
/// `0..=MAX_NR`, named and explained.
const fn build_index(rows: &[Row]) -> [u16; SLOTS] {
    assert!(rows.len() < NO_ROW as usize, "too many rows for a u16 index");
    let mut index = [NO_ROW; SLOTS];
    let mut i = 0;
    while i < rows.len() {
        let nr = rows[i].nr;
        assert!(nr <= MAX_NR, "syscall number above MAX_NR");
        assert!(
            i == 0 || rows[i - 1].nr < nr,
            "rows must be strictly sorted by number"
        );
        assert!(!rows[i].name.is_empty(), "empty syscall name");
        assert!(!rows[i].why.is_empty(), "empty why");
        index[nr as usize] = i as u16;
        i += 1;
    }
    index
}

/// A table row.
const fn r(nr: u32, name: &'static str, class: Class, why: &'static str) -> Row {
    Row { nr, name, class, why }
}

// Short names for the classes, for the table only.
use Class::{Block as B, Caller as C, Delegate as D, Isolate as I};

/// The rows, sorted by number (`syscall_64.tbl`, "common" and "64" entries, Linux 6.18).
#[rustfmt::skip]
const ROWS: &[Row] = &[
    r(  0, "read",                    B, "may wait for data on a pipe, socket, FIFO or tty"),
    r(  1, "write",                   B, "may wait for room in a pipe or socket buffer"),
    r(  2, "open",                    D, "fd table and cwd are process-wide (opening a FIFO or tty can block)"),
    r(  3, "close",                   D, "file descriptors are process-wide"),
    r(  4, "stat",                    D, "path lookup; cwd and root are process-wide"),
    r(  5, "fstat",                   D, "file descriptors are process-wide"),
    r(  6, "lstat",                   D, "path lookup; cwd and root are process-wide"),
    r(  7, "poll",                    B, "waits for fd readiness; timeout 0 -> Delegate (arg rule)"),
    r(  8, "lseek",                   D, "the offset lives in the shared open file description"),
    r(  9, "mmap",                    D, "the address space is process-wide; PROT_EXEC-only -> Caller (arg rule)"),
    r( 10, "mprotect",                D, "the address space is process-wide; PROT_EXEC-only -> Caller (arg rule)"),
    r( 11, "munmap",                  D, "the address space is process-wide"),
    r( 12, "brk",                     D, "the heap belongs to the shared address space"),
    r( 13, "rt_sigaction",            D, "signal handlers are process-wide"),
    r( 14, "rt_sigprocmask",          C, "the signal mask is per-thread"),
    r( 15, "rt_sigreturn",            C, "restores the calling thread's registers from its signal frame"),
    r( 16, "ioctl",                   C, "device-specific: may block or act on the calling task; run where it was called"),
    r( 17, "pread64",                 D, "positional: ESPIPE on pipes/sockets, so only disks (or a rare device) wait"),
    r( 18, "pwrite64",                D, "positional: ESPIPE on pipes/sockets, so only disks (or a rare device) wait"),
    r( 19, "readv",                   B, "may wait for data on a pipe, socket, FIFO or tty"),
    r( 20, "writev",                  B, "may wait for room in a pipe or socket buffer"),
    r( 21, "access",                  D, "path lookup; cwd and root are process-wide"),
    r( 22, "pipe",                    D, "file descriptors are process-wide"),
    r( 23, "select",                  B, "waits for fd readiness; the timeout is behind a pointer"),
    r( 24, "sched_yield",             C, "yields the calling thread's CPU"),
    r( 25, "mremap",                  D, "the address space is process-wide"),
    r( 26, "msync",                   D, "the address space is process-wide; disk waits are bounded"),
    r( 27, "mincore",                 D, "the address space is process-wide"),
    r( 28, "madvise",                 D, "the address space is process-wide"),
    r( 29, "shmget",                  D, "System V IPC objects are shared by the process"),
    r( 30, "shmat",                   D, "maps into the shared address space"),
    r( 31, "shmctl",                  D, "System V IPC objects are shared by the process"),
    r( 32, "dup",                     D, "file descriptors are process-wide"),
    r( 33, "dup2",                    D, "file descriptors are process-wide"),
    r( 34, "pause",                   C, "waits for a signal delivered to the calling thread"),
    r( 35, "nanosleep",               B, "sleeps for the requested time"),
    r( 36, "getitimer",               D, "interval timers are process-wide"),
    r( 37, "alarm",                   D, "ITIMER_REAL is process-wide"),
    r( 38, "setitimer",               D, "interval timers are process-wide"),
    r( 39, "getpid",                  D, "the process id is the same on every thread"),
    r( 40, "sendfile",                B, "may wait on a socket or pipe"),
    r( 41, "socket",                  D, "file descriptors are process-wide"),
    r( 42, "connect",                 B, "may wait for the handshake to complete"),
    r( 43, "accept",                  B, "may wait for an incoming connection"),
    r( 44, "sendto",                  B, "may wait for room in a socket buffer"),
    r( 45, "recvfrom",                B, "may wait for data on a socket"),
    r( 46, "sendmsg",                 B, "may wait for room in a socket buffer"),
    r( 47, "recvmsg",                 B, "may wait for data on a socket"),
    r( 48, "shutdown",                D, "acts on a process-wide socket; never waits"),
    r( 49, "bind",                    D, "acts on a process-wide socket; never waits"),
    r( 50, "listen",                  D, "acts on a process-wide socket; never waits"),
    r( 51, "getsockname",             D, "acts on a process-wide socket; never waits"),
    r( 52, "getpeername",             D, "acts on a process-wide socket; never waits"),
    r( 53, "socketpair",              D, "file descriptors are process-wide"),
    r( 54, "setsockopt",              D, "acts on a process-wide socket; never waits"),
    r( 55, "getsockopt",              D, "acts on a process-wide socket; never waits"),
    r( 56, "clone",                   C, "creates a thread or process from the caller's own context"),
    r( 57, "fork",                    C, "copies the calling thread into a new process"),
    r( 58, "vfork",                   C, "suspends the calling thread until the child execs or exits"),
    r( 59, "execve",                  C, "replaces the process image from the calling thread"),
    r( 60, "exit",                    C, "ends the calling thread"),
    r( 61, "wait4",                   B, "may wait for a child; __WNOTHREAD -> Caller, WNOHANG -> Delegate (arg rule)"),
    r( 62, "kill",                    C, "a signal to the caller's own process must arrive before the call returns"),
    r( 63, "uname",                   D, "system-wide information"),
    r( 64, "semget",                  D, "System V IPC objects are shared by the process"),
    r( 65, "semop",                   B, "may wait for a semaphore"),
    r( 66, "semctl",                  D, "System V IPC objects are shared by the process"),
    r( 67, "shmdt",                   D, "unmaps from the shared address space"),
    r( 68, "msgget",                  D, "System V IPC objects are shared by the process"),
    r( 69, "msgsnd",                  B, "may wait for room in the queue; IPC_NOWAIT -> Delegate (arg rule)"),
    r( 70, "msgrcv",                  B, "may wait for a message; IPC_NOWAIT -> Delegate (arg rule)"),
    r( 71, "msgctl",                  D, "System V IPC objects are shared by the process"),
    r( 72, "fcntl",                   D, "fds and record locks are process-wide; F_SETLKW/F_OFD_SETLKW -> Block (arg rule)"),
    r( 73, "flock",                   B, "may wait for the lock; LOCK_NB or LOCK_UN -> Delegate (arg rule)"),
    r( 74, "fsync",                   D, "file state is process-wide; disk waits are bounded"),
    r( 75, "fdatasync",               D, "file state is process-wide; disk waits are bounded"),
    r( 76, "truncate",                D, "path lookup; cwd and root are process-wide"),
    r( 77, "ftruncate",               D, "file descriptors are process-wide"),
    r( 78, "getdents",                D, "file descriptors are process-wide"),
    r( 79, "getcwd",                  D, "the cwd is in the shared fs_struct"),
    r( 80, "chdir",                   D, "changes the cwd in the shared fs_struct"),
    r( 81, "fchdir",                  D, "changes the cwd in the shared fs_struct"),
    r( 82, "rename",                  D, "path lookup; cwd and root are process-wide"),
    r( 83, "mkdir",                   D, "path lookup; cwd and root are process-wide"),
    r( 84, "rmdir",                   D, "path lookup; cwd and root are process-wide"),
    r( 85, "creat",                   D, "fd table and cwd are process-wide (creating over a FIFO can block)"),
    r( 86, "link",                    D, "path lookup; cwd and root are process-wide"),
    r( 87, "unlink",                  D, "path lookup; cwd and root are process-wide"),
    r( 88, "symlink",                 D, "path lookup; cwd and root are process-wide"),
    r( 89, "readlink",                D, "path lookup; cwd and root are process-wide"),
    r( 90, "chmod",                   D, "path lookup; cwd and root are process-wide"),
    r( 91, "fchmod",                  D, "file descriptors are process-wide"),
    r( 92, "chown",                   D, "path lookup; cwd and root are process-wide"),
    r( 93, "fchown",                  D, "file descriptors are process-wide"),
    r( 94, "lchown",                  D, "path lookup; cwd and root are process-wide"),
    r( 95, "umask",                   D, "the umask is in the shared fs_struct"),
    r( 96, "gettimeofday",            D, "system-wide clock"),
    r( 97, "getrlimit",               D, "resource limits are process-wide"),
    r( 98, "getrusage",               D, "process-wide usage; RUSAGE_THREAD -> Caller (arg rule)"),
    r( 99, "sysinfo",                 D, "system-wide information"),
    r(100, "times",                   D, "process-wide CPU times"),
    r(101, "ptrace",                  C, "tracer and tracee links are per-thread"),
    r(102, "getuid",                  C, "credentials are per-thread in the kernel"),
    r(103, "syslog",                  C, "rare; SYSLOG_ACTION_READ waits for kernel messages"),
    r(104, "getgid",                  C, "credentials are per-thread in the kernel"),
    r(105, "setuid",                  I, "changes the calling thread's credentials"),
    r(106, "setgid",                  I, "changes the calling thread's credentials"),
    r(107, "geteuid",                 C, "credentials are per-thread in the kernel"),
    r(108, "getegid",                 C, "credentials are per-thread in the kernel"),
    r(109, "setpgid",                 D, "process groups are process-wide; explicit pid (0 = the process)"),
    r(110, "getppid",                 D, "the parent is the same for every thread"),
    r(111, "getpgrp",                 D, "process groups are process-wide"),
    r(112, "setsid",                  D, "sessions are process-wide"),
    r(113, "setreuid",                I, "changes the calling thread's credentials"),
    r(114, "setregid",                I, "changes the calling thread's credentials"),
    r(115, "getgroups",               C, "credentials are per-thread in the kernel"),
    r(116, "setgroups",               I, "changes the calling thread's credentials"),
    r(117, "setresuid",               I, "changes the calling thread's credentials"),
    r(118, "getresuid",               C, "credentials are per-thread in the kernel"),
    r(119, "setresgid",               I, "changes the calling thread's credentials"),
    r(120, "getresgid",               C, "credentials are per-thread in the kernel"),
    r(121, "getpgid",                 D, "process groups are process-wide"),
    r(122, "setfsuid",                I, "changes the calling thread's credentials"),
    r(123, "setfsgid",                I, "changes the calling thread's credentials"),
    r(124, "getsid",                  D, "sessions are process-wide"),
    r(125, "capget",                  C, "capabilities are per-thread"),
    r(126, "capset",                  I, "changes the calling thread's capabilities"),
    r(127, "rt_sigpending",           C, "includes signals pending on the calling thread only"),
    r(128, "rt_sigtimedwait",         C, "dequeues signals pending on the calling thread"),
    r(129, "rt_sigqueueinfo",         C, "the kernel compares the target with the caller's thread id"),
    r(130, "rt_sigsuspend",           C, "swaps the calling thread's signal mask and waits"),
    r(131, "sigaltstack",             C, "the alternate signal stack is per-thread"),
    r(132, "utime",                   D, "path lookup; cwd and root are process-wide"),
    r(133, "mknod",                   D, "path lookup; cwd and root are process-wide"),
    r(134, "uselib",                  C, "obsolete and not implemented on current kernels"),
    r(135, "personality",             I, "per-task flags later calls read (READ_IMPLIES_EXEC...); query -> Caller (arg rule)"),
    r(136, "ustat",                   D, "filesystem statistics; no per-thread state"),
    r(137, "statfs",                  D, "path lookup; cwd and root are process-wide"),
    r(138, "fstatfs",                 D, "file descriptors are process-wide"),
    r(139, "sysfs",                   D, "filesystem type information; no per-thread state"),
    r(140, "getpriority",             C, "PRIO_PROCESS 0 means the calling thread on Linux"),
    r(141, "setpriority",             C, "PRIO_PROCESS 0 means the calling thread on Linux"),
    r(142, "sched_setparam",          C, "pid 0 means the calling thread; another pid -> Delegate (arg rule)"),
    r(143, "sched_getparam",          C, "pid 0 means the calling thread; another pid -> Delegate (arg rule)"),
    r(144, "sched_setscheduler",      C, "pid 0 means the calling thread; another pid -> Delegate (arg rule)"),
    r(145, "sched_getscheduler",      C, "pid 0 means the calling thread; another pid -> Delegate (arg rule)"),
    r(146, "sched_get_priority_max",  D, "pure query of a policy's range"),
    r(147, "sched_get_priority_min",  D, "pure query of a policy's range"),
    r(148, "sched_rr_get_interval",   C, "pid 0 means the calling thread; another pid -> Delegate (arg rule)"),
    r(149, "mlock",                   D, "the address space is process-wide"),
    r(150, "munlock",                 D, "the address space is process-wide"),
    r(151, "mlockall",                D, "the address space is process-wide"),
    r(152, "munlockall",              D, "the address space is process-wide"),
    r(153, "vhangup",                 C, "rare and privileged; acts on the caller's terminal"),
    r(154, "modify_ldt",              C, "rare; reloads the LDT on the running CPUs"),
    r(155, "pivot_root",              C, "rare and privileged; changes the caller's root and mounts"),
    r(156, "_sysctl",                 C, "removed: the kernel answers ENOSYS"),
    r(157, "prctl",                   C, "mostly per-thread options; security options -> Isolate (arg rule)"),
    r(158, "arch_prctl",              C, "FS/GS bases and other arch state are per-thread"),
    r(159, "adjtimex",                D, "system-wide clock state"),
    r(160, "setrlimit",               D, "resource limits are process-wide"),
    r(161, "chroot",                  D, "the root is in the shared fs_struct"),
    r(162, "sync",                    D, "system-wide; disk waits are bounded"),
    r(163, "acct",                    C, "rare and privileged"),
    r(164, "settimeofday",            D, "system-wide clock"),
    r(165, "mount",                   C, "rare and privileged; may wait on a slow or network filesystem"),
    r(166, "umount2",                 C, "rare and privileged; may wait on a busy or network filesystem"),
    r(167, "swapon",                  C, "rare and privileged; may take long"),
    r(168, "swapoff",                 C, "rare and privileged; may take very long"),
    r(169, "reboot",                  C, "rare and privileged"),
    r(170, "sethostname",             D, "the UTS namespace is shared by the process"),
    r(171, "setdomainname",           D, "the UTS namespace is shared by the process"),
    r(172, "iopl",                    C, "the I/O privilege level is per-thread"),
    r(173, "ioperm",                  C, "the I/O permission bitmap is per-thread"),
    r(174, "create_module",           C, "removed: the kernel answers ENOSYS"),
    r(175, "init_module",             C, "rare and privileged"),
    r(176, "delete_module",           C, "rare and privileged"),
    r(177, "get_kernel_syms",         C, "removed: the kernel answers ENOSYS"),
    r(178, "query_module",            C, "removed: the kernel answers ENOSYS"),
    r(179, "quotactl",                D, "filesystem quotas; no per-thread state"),
    r(180, "nfsservctl",              C, "removed: the kernel answers ENOSYS"),
    r(181, "getpmsg",                 C, "not implemented: the kernel answers ENOSYS"),
    r(182, "putpmsg",                 C, "not implemented: the kernel answers ENOSYS"),
    r(183, "afs_syscall",             C, "not implemented: the kernel answers ENOSYS"),
    r(184, "tuxcall",                 C, "not implemented: the kernel answers ENOSYS"),
    r(185, "security",                C, "not implemented: the kernel answers ENOSYS"),
    r(186, "gettid",                  C, "returns the calling thread's id"),
    r(187, "readahead",               D, "page-cache prefetch; disk waits are bounded"),
    r(188, "setxattr",                D, "path lookup; cwd and root are process-wide"),
    r(189, "lsetxattr",               D, "path lookup; cwd and root are process-wide"),
    r(190, "fsetxattr",               D, "file descriptors are process-wide"),
    r(191, "getxattr",                D, "path lookup; cwd and root are process-wide"),
    r(192, "lgetxattr",               D, "path lookup; cwd and root are process-wide"),
    r(193, "fgetxattr",               D, "file descriptors are process-wide"),
    r(194, "listxattr",               D, "path lookup; cwd and root are process-wide"),
    r(195, "llistxattr",              D, "path lookup; cwd and root are process-wide"),
    r(196, "flistxattr",              D, "file descriptors are process-wide"),
    r(197, "removexattr",             D, "path lookup; cwd and root are process-wide"),
    r(198, "lremovexattr",            D, "path lookup; cwd and root are process-wide"),
    r(199, "fremovexattr",            D, "file descriptors are process-wide"),
    r(200, "tkill",                   C, "a signal to the calling thread must arrive before the call returns"),
    r(201, "time",                    D, "system-wide clock"),
    r(202, "futex",                   C, "depends on the op: WAIT -> Block, WAKE/REQUEUE -> Delegate, PI -> Caller"),
    r(203, "sched_setaffinity",       C, "pid 0 means the calling thread; another pid -> Delegate (arg rule)"),
    r(204, "sched_getaffinity",       C, "pid 0 means the calling thread; another pid -> Delegate (arg rule)"),
    r(205, "set_thread_area",         C, "TLS descriptors are per-thread (not implemented for 64-bit)"),
    r(206, "io_setup",                D, "AIO contexts belong to the shared address space"),
    r(207, "io_destroy",              D, "cancels the context's requests; waits are bounded"),
    r(208, "io_getevents",            B, "may wait for AIO completions"),
    r(209, "io_submit",               B, "may block on a pipe or socket iocb"),
    r(210, "io_cancel",               D, "AIO contexts belong to the shared address space"),
    r(211, "get_thread_area",         C, "TLS descriptors are per-thread (not implemented for 64-bit)"),
    r(212, "lookup_dcookie",          C, "removed: the kernel answers ENOSYS"),
    r(213, "epoll_create",            D, "file descriptors are process-wide"),
    r(214, "epoll_ctl_old",           C, "not implemented: the kernel answers ENOSYS"),
    r(215, "epoll_wait_old",          C, "not implemented: the kernel answers ENOSYS"),
    r(216, "remap_file_pages",        D, "the address space is process-wide"),
    r(217, "getdents64",              D, "file descriptors are process-wide"),
    r(218, "set_tid_address",         C, "the clear-child-tid pointer is per-thread"),
    r(219, "restart_syscall",         C, "restarts the calling thread's interrupted call"),
    r(220, "semtimedop",              B, "may wait for a semaphore"),
    r(221, "fadvise64",               D, "file descriptors are process-wide"),
    r(222, "timer_create",            D, "POSIX timers are process-wide; thread CPU clocks -> Caller (arg rule)"),
    r(223, "timer_settime",           D, "POSIX timers are process-wide"),
    r(224, "timer_gettime",           D, "POSIX timers are process-wide"),
    r(225, "timer_getoverrun",        D, "POSIX timers are process-wide"),
    r(226, "timer_delete",            D, "POSIX timers are process-wide"),
    r(227, "clock_settime",           D, "system-wide clock; thread CPU clocks -> Caller (arg rule)"),
    r(228, "clock_gettime",           D, "process or system clock; thread CPU clocks -> Caller (arg rule)"),
    r(229, "clock_getres",            D, "process or system clock; thread CPU clocks -> Caller (arg rule)"),
    r(230, "clock_nanosleep",         B, "sleeps for the requested time; thread CPU clocks -> Caller (arg rule)"),
    r(231, "exit_group",              C, "ends the process from the calling thread"),
    r(232, "epoll_wait",              B, "waits for events; timeout 0 -> Delegate (arg rule)"),
    r(233, "epoll_ctl",               D, "file descriptors are process-wide"),
    r(234, "tgkill",                  C, "a signal to the calling thread must arrive before the call returns"),
    r(235, "utimes",                  D, "path lookup; cwd and root are process-wide"),
    r(236, "vserver",                 C, "not implemented: the kernel answers ENOSYS"),
    r(237, "mbind",                   D, "sets the policy of a range of the shared address space"),
    r(238, "set_mempolicy",           C, "the task memory policy is per-thread"),
    r(239, "get_mempolicy",           C, "reads the calling thread's memory policy"),
    r(240, "mq_open",                 D, "file descriptors are process-wide"),
    r(241, "mq_unlink",               D, "IPC namespace is shared by the process"),
    r(242, "mq_timedsend",            B, "may wait for room in the queue"),
    r(243, "mq_timedreceive",         B, "may wait for a message"),
    r(244, "mq_notify",               D, "registers the process (not the thread) for notification"),
    r(245, "mq_getsetattr",           D, "file descriptors are process-wide"),
    r(246, "kexec_load",              C, "rare and privileged"),
    r(247, "waitid",                  B, "may wait for a child; __WNOTHREAD -> Caller, WNOHANG -> Delegate (arg rule)"),
    r(248, "add_key",                 C, "keyring ids like KEY_SPEC_THREAD_KEYRING name the caller's keyrings"),
    r(249, "request_key",             C, "keyring ids like KEY_SPEC_THREAD_KEYRING name the caller's keyrings"),
    r(250, "keyctl",                  C, "keyring ids like KEY_SPEC_THREAD_KEYRING name the caller's keyrings"),
    r(251, "ioprio_set",              C, "who 0 means the calling thread"),
    r(252, "ioprio_get",              C, "who 0 means the calling thread"),
    r(253, "inotify_init",            D, "file descriptors are process-wide"),
    r(254, "inotify_add_watch",       D, "file descriptors are process-wide"),
    r(255, "inotify_rm_watch",        D, "file descriptors are process-wide"),
    r(256, "migrate_pages",           D, "explicit pid; 0 is the calling process"),
    r(257, "openat",                  D, "fd table and cwd are process-wide (opening a FIFO or tty can block)"),
    r(258, "mkdirat",                 D, "path lookup; cwd and root are process-wide"),
    r(259, "mknodat",                 D, "path lookup; cwd and root are process-wide"),
    r(260, "fchownat",                D, "path lookup; cwd and root are process-wide"),
    r(261, "futimesat",               D, "path lookup; cwd and root are process-wide"),
    r(262, "newfstatat",              D, "path lookup; cwd and root are process-wide"),
    r(263, "unlinkat",                D, "path lookup; cwd and root are process-wide"),
    r(264, "renameat",                D, "path lookup; cwd and root are process-wide"),
    r(265, "linkat",                  D, "path lookup; cwd and root are process-wide"),
    r(266, "symlinkat",               D, "path lookup; cwd and root are process-wide"),
    r(267, "readlinkat",              D, "path lookup; cwd and root are process-wide"),
    r(268, "fchmodat",                D, "path lookup; cwd and root are process-wide"),
    r(269, "faccessat",               D, "path lookup; cwd and root are process-wide"),
    r(270, "pselect6",                B, "waits for fd readiness; a signal-mask argument -> Caller (arg rule)"),
    r(271, "ppoll",                   B, "waits for fd readiness; a signal mask -> Caller (arg rule)"),
    r(272, "unshare",                 I, "gives the calling thread private namespaces, files or fs state"),
    r(273, "set_robust_list",         C, "the robust futex list is per-thread"),
    r(274, "get_robust_list",         C, "pid 0 means the calling thread"),
    r(275, "splice",                  B, "may wait on a pipe or socket"),
    r(276, "tee",                     B, "may wait on a pipe"),
    r(277, "sync_file_range",         D, "file descriptors are process-wide; disk waits are bounded"),
    r(278, "vmsplice",                B, "may wait for room in the pipe"),
    r(279, "move_pages",              D, "explicit pid; 0 is the calling process"),
    r(280, "utimensat",               D, "path lookup; cwd and root are process-wide"),
    r(281, "epoll_pwait",             B, "waits for events; a signal mask -> Caller, timeout 0 -> Delegate (arg rule)"),
    r(282, "signalfd",                D, "creates an fd (reads dequeue the reading thread's signals)"),
    r(283, "timerfd_create",          D, "file descriptors are process-wide"),
    r(284, "eventfd",                 D, "file descriptors are process-wide"),
    r(285, "fallocate",               D, "file descriptors are process-wide; disk waits are bounded"),
    r(286, "timerfd_settime",         D, "file descriptors are process-wide"),
    r(287, "timerfd_gettime",         D, "file descriptors are process-wide"),
    r(288, "accept4",                 B, "may wait for an incoming connection"),
    r(289, "signalfd4",               D, "creates an fd (reads dequeue the reading thread's signals)"),
    r(290, "eventfd2",                D, "file descriptors are process-wide"),
    r(291, "epoll_create1",           D, "file descriptors are process-wide"),
    r(292, "dup3",                    D, "file descriptors are process-wide"),
    r(293, "pipe2",                   D, "file descriptors are process-wide"),
    r(294, "inotify_init1",           D, "file descriptors are process-wide"),
    r(295, "preadv",                  D, "positional: ESPIPE on pipes/sockets, so only disks (or a rare device) wait"),
    r(296, "pwritev",                 D, "positional: ESPIPE on pipes/sockets, so only disks (or a rare device) wait"),
    r(297, "rt_tgsigqueueinfo",       C, "the kernel compares the target with the caller's thread id"),
    r(298, "perf_event_open",         C, "pid 0 means the calling thread"),
    r(299, "recvmmsg",                B, "may wait for data on a socket"),
    r(300, "fanotify_init",           D, "file descriptors are process-wide"),
    r(301, "fanotify_mark",           D, "file descriptors are process-wide"),
    r(302, "prlimit64",               D, "resource limits are process-wide; explicit pid (0 = the process)"),
    r(303, "name_to_handle_at",       D, "path lookup; cwd and root are process-wide"),
    r(304, "open_by_handle_at",       D, "fd table is process-wide (opening a FIFO or tty can block)"),
    r(305, "clock_adjtime",           D, "system-wide clock; thread CPU clocks -> Caller (arg rule)"),
    r(306, "syncfs",                  D, "file descriptors are process-wide; disk waits are bounded"),
    r(307, "sendmmsg",                B, "may wait for room in a socket buffer"),
    r(308, "setns",                   I, "moves the calling thread into another namespace"),
    r(309, "getcpu",                  C, "returns the CPU the calling thread runs on"),
    r(310, "process_vm_readv",        D, "explicit target pid"),
    r(311, "process_vm_writev",       D, "explicit target pid"),
    r(312, "kcmp",                    D, "explicit target pids"),
    r(313, "finit_module",            C, "rare and privileged"),
    r(314, "sched_setattr",           C, "pid 0 means the calling thread; another pid -> Delegate (arg rule)"),
    r(315, "sched_getattr",           C, "pid 0 means the calling thread; another pid -> Delegate (arg rule)"),
    r(316, "renameat2",               D, "path lookup; cwd and root are process-wide"),
    r(317, "seccomp",                 I, "installs a filter on the calling thread"),
    r(318, "getrandom",               D, "never waits once the entropy pool is initialised (only early at boot)"),
    r(319, "memfd_create",            D, "file descriptors are process-wide"),
    r(320, "kexec_file_load",         C, "rare and privileged"),
    r(321, "bpf",                     C, "many commands, some acting on the calling task; run on the caller"),
    r(322, "execveat",                C, "replaces the process image from the calling thread"),
    r(323, "userfaultfd",             D, "file descriptors are process-wide"),
    r(324, "membarrier",              D, "acts on the whole address space"),
    r(325, "mlock2",                  D, "the address space is process-wide"),
    r(326, "copy_file_range",         D, "regular files only: may wait on the disk, never on an event"),
    r(327, "preadv2",                 B, "may wait on a device or other non-regular fd"),
    r(328, "pwritev2",                B, "may wait on a device or other non-regular fd"),
    r(329, "pkey_mprotect",           D, "the address space is process-wide; PROT_EXEC-only -> Caller (arg rule)"),
    r(330, "pkey_alloc",              C, "writes the new key's rights into the calling thread's PKRU"),
    r(331, "pkey_free",               D, "protection keys are allocated per address space"),
    r(332, "statx",                   D, "path lookup; cwd and root are process-wide"),
    r(333, "io_pgetevents",           B, "may wait for AIO completions; a signal mask -> Caller (arg rule)"),
    r(334, "rseq",                    C, "the rseq area is per-thread"),
    r(335, "uretprobe",               C, "uprobe trampoline: uses the calling thread's registers and stack"),
    r(336, "uprobe",                  C, "uprobe trampoline: uses the calling thread's registers and stack"),
    r(424, "pidfd_send_signal",       C, "the target may be the caller; the kernel checks the caller's thread"),
    r(425, "io_uring_setup",          C, "rings may be tied to their submitter task"),
    r(426, "io_uring_enter",          C, "rings may be tied to their submitter task"),
    r(427, "io_uring_register",       C, "rings may be tied to their submitter task"),
    r(428, "open_tree",               D, "file descriptors and the mount namespace are process-wide"),
    r(429, "move_mount",              D, "the mount namespace is shared by the process"),
    r(430, "fsopen",                  D, "file descriptors are process-wide"),
    r(431, "fsconfig",                C, "creating a superblock may wait on a slow or network filesystem"),
    r(432, "fsmount",                 D, "file descriptors are process-wide"),
    r(433, "fspick",                  D, "file descriptors are process-wide"),
    r(434, "pidfd_open",              D, "explicit target pid"),
    r(435, "clone3",                  C, "creates a thread or process from the caller's own context"),
    r(436, "close_range",             D, "file descriptors are process-wide; CLOSE_RANGE_UNSHARE -> Isolate (arg rule)"),
    r(437, "openat2",                 D, "fd table and cwd are process-wide (opening a FIFO or tty can block)"),
    r(438, "pidfd_getfd",             D, "explicit target pidfd"),
    r(439, "faccessat2",              D, "path lookup; cwd and root are process-wide"),
    r(440, "process_madvise",         D, "explicit target pidfd"),
    r(441, "epoll_pwait2",            B, "waits for events; a signal mask -> Caller (arg rule)"),
    r(442, "mount_setattr",           D, "the mount namespace is shared by the process"),
    r(443, "quotactl_fd",             D, "filesystem quotas; no per-thread state"),
    r(444, "landlock_create_ruleset", D, "only builds a ruleset fd"),
    r(445, "landlock_add_rule",       D, "only builds a ruleset fd"),
    r(446, "landlock_restrict_self",  I, "confines the calling thread"),
    r(447, "memfd_secret",            D, "file descriptors are process-wide"),
    r(448, "process_mrelease",        D, "explicit target pidfd"),
    r(449, "futex_waitv",             B, "waits on futexes"),
    r(450, "set_mempolicy_home_node", D, "sets the policy of a range of the shared address space"),
    r(451, "cachestat",               D, "file descriptors are process-wide"),
    r(452, "fchmodat2",               D, "path lookup; cwd and root are process-wide"),
    r(453, "map_shadow_stack",        C, "shadow stacks are per-thread"),
    r(454, "futex_wake",              D, "wakes waiters; never waits"),
    r(455, "futex_wait",              B, "waits on a futex"),
    r(456, "futex_requeue",           D, "moves waiters; never waits"),
    r(457, "statmount",               D, "the mount namespace is shared by the process"),
    r(458, "listmount",               D, "the mount namespace is shared by the process"),
    r(459, "lsm_get_self_attr",       C, "reads the calling thread's LSM attributes"),
    r(460, "lsm_set_self_attr",       I, "changes the calling thread's LSM attributes (its security identity)"),
    r(461, "lsm_list_modules",        D, "system-wide information"),
    r(462, "mseal",                   D, "the address space is process-wide"),
    r(463, "setxattrat",              D, "path lookup; cwd and root are process-wide"),
    r(464, "getxattrat",              D, "path lookup; cwd and root are process-wide"),
    r(465, "listxattrat",             D, "path lookup; cwd and root are process-wide"),
    r(466, "removexattrat",           D, "path lookup; cwd and root are process-wide"),
    r(467, "open_tree_attr",          D, "file descriptors and the mount namespace are process-wide"),
    r(468, "file_getattr",            D, "path lookup; cwd and root are process-wide"),
    r(469, "file_setattr",            D, "path lookup; cwd and root are process-wide"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    const NO_ARGS: [u64; 6] = [0; 6];

    /// The class of `name` with these arguments.
    fn class_of(name: &str, args: [u64; 6]) -> Class {
        let row = TABLE
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} is not in the table"));
        classify(u64::from(row.nr), &args)
    }

    fn args(a: &[u64]) -> [u64; 6] {
        let mut out = [0; 6];
        out[..a.len()].copy_from_slice(a);
        out
    }

    #[test]
    fn table_is_sorted_unique_and_explained() {
        let mut names = HashSet::new();
        for pair in TABLE.windows(2) {
            assert!(pair[0].nr < pair[1].nr, "{:?} then {:?}", pair[0], pair[1]);
        }
        for row in TABLE {
            assert!(!row.name.is_empty(), "{row:?}");
            assert!(names.insert(row.name), "duplicate name {}", row.name);
            assert!(!row.why.trim().is_empty(), "{row:?}");
            assert!(row.why.len() <= 90, "why too long: {row:?}");
            assert!(!row.why.contains('\n'), "{row:?}");
        }
    }

    #[test]
    fn row_count_is_exact() {
        // x86-64 defines 0..=336 (335 uretprobe since 6.11, 336 uprobe since 6.18) and
        // 424..=469 (469 file_setattr, 6.17); 337..=423 are unused: 337 + 46 = 383 numbers.
        let expected: Vec<u32> = (0..=336).chain(424..=MAX_NR).collect();
        assert_eq!(expected.len(), 337 + 46);
        assert_eq!(TABLE.len(), 383);
        let got: Vec<u32> = TABLE.iter().map(|r| r.nr).collect();
        assert_eq!(got, expected);
        assert_eq!(TABLE.last().map(|r| r.nr), Some(MAX_NR));
    }

    #[test]
    fn index_agrees_with_table() {
        for nr in 0..=u64::from(MAX_NR) + 10 {
            let by_scan = TABLE.iter().find(|r| u64::from(r.nr) == nr);
            let by_index = row(nr);
            assert_eq!(by_scan.map(|r| r.nr), by_index.map(|r| r.nr), "nr {nr}");
            assert_eq!(by_scan.map(|r| r.name), name(nr), "nr {nr}");
        }
        for nr in 337..=423 {
            assert!(row(nr).is_none(), "{nr} is unused on x86-64");
        }
    }

    /// Every `SYS_*` constant the `libc` crate defines for x86-64 (glibc), with its name.
    #[cfg(all(
        target_os = "linux",
        target_arch = "x86_64",
        target_pointer_width = "64",
        target_env = "gnu"
    ))]
    const LIBC: &[(libc::c_long, &str)] = &[
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (libc::SYS_open, "open"),
        (libc::SYS_close, "close"),
        (libc::SYS_stat, "stat"),
        (libc::SYS_fstat, "fstat"),
        (libc::SYS_lstat, "lstat"),
        (libc::SYS_poll, "poll"),
        (libc::SYS_lseek, "lseek"),
        (libc::SYS_mmap, "mmap"),
        (libc::SYS_mprotect, "mprotect"),
        (libc::SYS_munmap, "munmap"),
        (libc::SYS_brk, "brk"),
        (libc::SYS_rt_sigaction, "rt_sigaction"),
        (libc::SYS_rt_sigprocmask, "rt_sigprocmask"),
        (libc::SYS_rt_sigreturn, "rt_sigreturn"),
        (libc::SYS_ioctl, "ioctl"),
        (libc::SYS_pread64, "pread64"),
        (libc::SYS_pwrite64, "pwrite64"),
        (libc::SYS_readv, "readv"),
        (libc::SYS_writev, "writev"),
        (libc::SYS_access, "access"),
        (libc::SYS_pipe, "pipe"),
        (libc::SYS_select, "select"),
        (libc::SYS_sched_yield, "sched_yield"),
        (libc::SYS_mremap, "mremap"),
        (libc::SYS_msync, "msync"),
        (libc::SYS_mincore, "mincore"),
        (libc::SYS_madvise, "madvise"),
        (libc::SYS_shmget, "shmget"),
        (libc::SYS_shmat, "shmat"),
        (libc::SYS_shmctl, "shmctl"),
        (libc::SYS_dup, "dup"),
        (libc::SYS_dup2, "dup2"),
        (libc::SYS_pause, "pause"),
        (libc::SYS_nanosleep, "nanosleep"),
        (libc::SYS_getitimer, "getitimer"),
        (libc::SYS_alarm, "alarm"),
        (libc::SYS_setitimer, "setitimer"),
        (libc::SYS_getpid, "getpid"),
        (libc::SYS_sendfile, "sendfile"),
        (libc::SYS_socket, "socket"),
        (libc::SYS_connect, "connect"),
        (libc::SYS_accept, "accept"),
        (libc::SYS_sendto, "sendto"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_sendmsg, "sendmsg"),
        (libc::SYS_recvmsg, "recvmsg"),
        (libc::SYS_shutdown, "shutdown"),
        (libc::SYS_bind, "bind"),
        (libc::SYS_listen, "listen"),
        (libc::SYS_getsockname, "getsockname"),
        (libc::SYS_getpeername, "getpeername"),
        (libc::SYS_socketpair, "socketpair"),
        (libc::SYS_setsockopt, "setsockopt"),
        (libc::SYS_getsockopt, "getsockopt"),
        (libc::SYS_clone, "clone"),
        (libc::SYS_fork, "fork"),
        (libc::SYS_vfork, "vfork"),
        (libc::SYS_execve, "execve"),
        (libc::SYS_exit, "exit"),
        (libc::SYS_wait4, "wait4"),
        (libc::SYS_kill, "kill"),
        (libc::SYS_uname, "uname"),
        (libc::SYS_semget, "semget"),
        (libc::SYS_semop, "semop"),
        (libc::SYS_semctl, "semctl"),
        (libc::SYS_shmdt, "shmdt"),
        (libc::SYS_msgget, "msgget"),
        (libc::SYS_msgsnd, "msgsnd"),
        (libc::SYS_msgrcv, "msgrcv"),
        (libc::SYS_msgctl, "msgctl"),
        (libc::SYS_fcntl, "fcntl"),
        (libc::SYS_flock, "flock"),
        (libc::SYS_fsync, "fsync"),
        (libc::SYS_fdatasync, "fdatasync"),
        (libc::SYS_truncate, "truncate"),
        (libc::SYS_ftruncate, "ftruncate"),
        (libc::SYS_getdents, "getdents"),
        (libc::SYS_getcwd, "getcwd"),
        (libc::SYS_chdir, "chdir"),
        (libc::SYS_fchdir, "fchdir"),
        (libc::SYS_rename, "rename"),
        (libc::SYS_mkdir, "mkdir"),
        (libc::SYS_rmdir, "rmdir"),
        (libc::SYS_creat, "creat"),
        (libc::SYS_link, "link"),
        (libc::SYS_unlink, "unlink"),
        (libc::SYS_symlink, "symlink"),
        (libc::SYS_readlink, "readlink"),
        (libc::SYS_chmod, "chmod"),
        (libc::SYS_fchmod, "fchmod"),
        (libc::SYS_chown, "chown"),
        (libc::SYS_fchown, "fchown"),
        (libc::SYS_lchown, "lchown"),
        (libc::SYS_umask, "umask"),
        (libc::SYS_gettimeofday, "gettimeofday"),
        (libc::SYS_getrlimit, "getrlimit"),
        (libc::SYS_getrusage, "getrusage"),
        (libc::SYS_sysinfo, "sysinfo"),
        (libc::SYS_times, "times"),
        (libc::SYS_ptrace, "ptrace"),
        (libc::SYS_getuid, "getuid"),
        (libc::SYS_syslog, "syslog"),
        (libc::SYS_getgid, "getgid"),
        (libc::SYS_setuid, "setuid"),
        (libc::SYS_setgid, "setgid"),
        (libc::SYS_geteuid, "geteuid"),
        (libc::SYS_getegid, "getegid"),
        (libc::SYS_setpgid, "setpgid"),
        (libc::SYS_getppid, "getppid"),
        (libc::SYS_getpgrp, "getpgrp"),
        (libc::SYS_setsid, "setsid"),
        (libc::SYS_setreuid, "setreuid"),
        (libc::SYS_setregid, "setregid"),
        (libc::SYS_getgroups, "getgroups"),
        (libc::SYS_setgroups, "setgroups"),
        (libc::SYS_setresuid, "setresuid"),
        (libc::SYS_getresuid, "getresuid"),
        (libc::SYS_setresgid, "setresgid"),
        (libc::SYS_getresgid, "getresgid"),
        (libc::SYS_getpgid, "getpgid"),
        (libc::SYS_setfsuid, "setfsuid"),
        (libc::SYS_setfsgid, "setfsgid"),
        (libc::SYS_getsid, "getsid"),
        (libc::SYS_capget, "capget"),
        (libc::SYS_capset, "capset"),
        (libc::SYS_rt_sigpending, "rt_sigpending"),
        (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait"),
        (libc::SYS_rt_sigqueueinfo, "rt_sigqueueinfo"),
        (libc::SYS_rt_sigsuspend, "rt_sigsuspend"),
        (libc::SYS_sigaltstack, "sigaltstack"),
        (libc::SYS_utime, "utime"),
        (libc::SYS_mknod, "mknod"),
        (libc::SYS_uselib, "uselib"),
        (libc::SYS_personality, "personality"),
        (libc::SYS_ustat, "ustat"),
        (libc::SYS_statfs, "statfs"),
        (libc::SYS_fstatfs, "fstatfs"),
        (libc::SYS_sysfs, "sysfs"),
        (libc::SYS_getpriority, "getpriority"),
        (libc::SYS_setpriority, "setpriority"),
        (libc::SYS_sched_setparam, "sched_setparam"),
        (libc::SYS_sched_getparam, "sched_getparam"),
        (libc::SYS_sched_setscheduler, "sched_setscheduler"),
        (libc::SYS_sched_getscheduler, "sched_getscheduler"),
        (libc::SYS_sched_get_priority_max, "sched_get_priority_max"),
        (libc::SYS_sched_get_priority_min, "sched_get_priority_min"),
        (libc::SYS_sched_rr_get_interval, "sched_rr_get_interval"),
        (libc::SYS_mlock, "mlock"),
        (libc::SYS_munlock, "munlock"),
        (libc::SYS_mlockall, "mlockall"),
        (libc::SYS_munlockall, "munlockall"),
        (libc::SYS_vhangup, "vhangup"),
        (libc::SYS_modify_ldt, "modify_ldt"),
        (libc::SYS_pivot_root, "pivot_root"),
        (libc::SYS__sysctl, "_sysctl"),
        (libc::SYS_prctl, "prctl"),
        (libc::SYS_arch_prctl, "arch_prctl"),
        (libc::SYS_adjtimex, "adjtimex"),
        (libc::SYS_setrlimit, "setrlimit"),
        (libc::SYS_chroot, "chroot"),
        (libc::SYS_sync, "sync"),
        (libc::SYS_acct, "acct"),
        (libc::SYS_settimeofday, "settimeofday"),
        (libc::SYS_mount, "mount"),
        (libc::SYS_umount2, "umount2"),
        (libc::SYS_swapon, "swapon"),
        (libc::SYS_swapoff, "swapoff"),
        (libc::SYS_reboot, "reboot"),
        (libc::SYS_sethostname, "sethostname"),
        (libc::SYS_setdomainname, "setdomainname"),
        (libc::SYS_iopl, "iopl"),
        (libc::SYS_ioperm, "ioperm"),
        (libc::SYS_init_module, "init_module"),
        (libc::SYS_delete_module, "delete_module"),
        (libc::SYS_quotactl, "quotactl"),
        (libc::SYS_nfsservctl, "nfsservctl"),
        (libc::SYS_getpmsg, "getpmsg"),
        (libc::SYS_putpmsg, "putpmsg"),
        (libc::SYS_afs_syscall, "afs_syscall"),
        (libc::SYS_tuxcall, "tuxcall"),
        (libc::SYS_security, "security"),
        (libc::SYS_gettid, "gettid"),
        (libc::SYS_readahead, "readahead"),
        (libc::SYS_setxattr, "setxattr"),
        (libc::SYS_lsetxattr, "lsetxattr"),
        (libc::SYS_fsetxattr, "fsetxattr"),
        (libc::SYS_getxattr, "getxattr"),
        (libc::SYS_lgetxattr, "lgetxattr"),
        (libc::SYS_fgetxattr, "fgetxattr"),
        (libc::SYS_listxattr, "listxattr"),
        (libc::SYS_llistxattr, "llistxattr"),
        (libc::SYS_flistxattr, "flistxattr"),
        (libc::SYS_removexattr, "removexattr"),
        (libc::SYS_lremovexattr, "lremovexattr"),
        (libc::SYS_fremovexattr, "fremovexattr"),
        (libc::SYS_tkill, "tkill"),
        (libc::SYS_time, "time"),
        (libc::SYS_futex, "futex"),
        (libc::SYS_sched_setaffinity, "sched_setaffinity"),
        (libc::SYS_sched_getaffinity, "sched_getaffinity"),
        (libc::SYS_set_thread_area, "set_thread_area"),
        (libc::SYS_io_setup, "io_setup"),
        (libc::SYS_io_destroy, "io_destroy"),
        (libc::SYS_io_getevents, "io_getevents"),
        (libc::SYS_io_submit, "io_submit"),
        (libc::SYS_io_cancel, "io_cancel"),
        (libc::SYS_get_thread_area, "get_thread_area"),
        (libc::SYS_lookup_dcookie, "lookup_dcookie"),
        (libc::SYS_epoll_create, "epoll_create"),
        (libc::SYS_epoll_ctl_old, "epoll_ctl_old"),
        (libc::SYS_epoll_wait_old, "epoll_wait_old"),
        (libc::SYS_remap_file_pages, "remap_file_pages"),
        (libc::SYS_getdents64, "getdents64"),
        (libc::SYS_set_tid_address, "set_tid_address"),
        (libc::SYS_restart_syscall, "restart_syscall"),
        (libc::SYS_semtimedop, "semtimedop"),
        (libc::SYS_fadvise64, "fadvise64"),
        (libc::SYS_timer_create, "timer_create"),
        (libc::SYS_timer_settime, "timer_settime"),
        (libc::SYS_timer_gettime, "timer_gettime"),
        (libc::SYS_timer_getoverrun, "timer_getoverrun"),
        (libc::SYS_timer_delete, "timer_delete"),
        (libc::SYS_clock_settime, "clock_settime"),
        (libc::SYS_clock_gettime, "clock_gettime"),
        (libc::SYS_clock_getres, "clock_getres"),
        (libc::SYS_clock_nanosleep, "clock_nanosleep"),
        (libc::SYS_exit_group, "exit_group"),
        (libc::SYS_epoll_wait, "epoll_wait"),
        (libc::SYS_epoll_ctl, "epoll_ctl"),
        (libc::SYS_tgkill, "tgkill"),
        (libc::SYS_utimes, "utimes"),
        (libc::SYS_vserver, "vserver"),
        (libc::SYS_mbind, "mbind"),
        (libc::SYS_set_mempolicy, "set_mempolicy"),
        (libc::SYS_get_mempolicy, "get_mempolicy"),
        (libc::SYS_mq_open, "mq_open"),
        (libc::SYS_mq_unlink, "mq_unlink"),
        (libc::SYS_mq_timedsend, "mq_timedsend"),
        (libc::SYS_mq_timedreceive, "mq_timedreceive"),
        (libc::SYS_mq_notify, "mq_notify"),
        (libc::SYS_mq_getsetattr, "mq_getsetattr"),
        (libc::SYS_kexec_load, "kexec_load"),
        (libc::SYS_waitid, "waitid"),
        (libc::SYS_add_key, "add_key"),
        (libc::SYS_request_key, "request_key"),
        (libc::SYS_keyctl, "keyctl"),
        (libc::SYS_ioprio_set, "ioprio_set"),
        (libc::SYS_ioprio_get, "ioprio_get"),
        (libc::SYS_inotify_init, "inotify_init"),
        (libc::SYS_inotify_add_watch, "inotify_add_watch"),
        (libc::SYS_inotify_rm_watch, "inotify_rm_watch"),
        (libc::SYS_migrate_pages, "migrate_pages"),
        (libc::SYS_openat, "openat"),
        (libc::SYS_mkdirat, "mkdirat"),
        (libc::SYS_mknodat, "mknodat"),
        (libc::SYS_fchownat, "fchownat"),
        (libc::SYS_futimesat, "futimesat"),
        (libc::SYS_newfstatat, "newfstatat"),
        (libc::SYS_unlinkat, "unlinkat"),
        (libc::SYS_renameat, "renameat"),
        (libc::SYS_linkat, "linkat"),
        (libc::SYS_symlinkat, "symlinkat"),
        (libc::SYS_readlinkat, "readlinkat"),
        (libc::SYS_fchmodat, "fchmodat"),
        (libc::SYS_faccessat, "faccessat"),
        (libc::SYS_pselect6, "pselect6"),
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_unshare, "unshare"),
        (libc::SYS_set_robust_list, "set_robust_list"),
        (libc::SYS_get_robust_list, "get_robust_list"),
        (libc::SYS_splice, "splice"),
        (libc::SYS_tee, "tee"),
        (libc::SYS_sync_file_range, "sync_file_range"),
        (libc::SYS_vmsplice, "vmsplice"),
        (libc::SYS_move_pages, "move_pages"),
        (libc::SYS_utimensat, "utimensat"),
        (libc::SYS_epoll_pwait, "epoll_pwait"),
        (libc::SYS_signalfd, "signalfd"),
        (libc::SYS_timerfd_create, "timerfd_create"),
        (libc::SYS_eventfd, "eventfd"),
        (libc::SYS_fallocate, "fallocate"),
        (libc::SYS_timerfd_settime, "timerfd_settime"),
        (libc::SYS_timerfd_gettime, "timerfd_gettime"),
        (libc::SYS_accept4, "accept4"),
        (libc::SYS_signalfd4, "signalfd4"),
        (libc::SYS_eventfd2, "eventfd2"),
        (libc::SYS_epoll_create1, "epoll_create1"),
        (libc::SYS_dup3, "dup3"),
        (libc::SYS_pipe2, "pipe2"),
        (libc::SYS_inotify_init1, "inotify_init1"),
        (libc::SYS_preadv, "preadv"),
        (libc::SYS_pwritev, "pwritev"),
        (libc::SYS_rt_tgsigqueueinfo, "rt_tgsigqueueinfo"),
        (libc::SYS_perf_event_open, "perf_event_open"),
        (libc::SYS_recvmmsg, "recvmmsg"),
        (libc::SYS_fanotify_init, "fanotify_init"),
        (libc::SYS_fanotify_mark, "fanotify_mark"),
        (libc::SYS_prlimit64, "prlimit64"),
        (libc::SYS_name_to_handle_at, "name_to_handle_at"),
        (libc::SYS_open_by_handle_at, "open_by_handle_at"),
        (libc::SYS_clock_adjtime, "clock_adjtime"),
        (libc::SYS_syncfs, "syncfs"),
        (libc::SYS_sendmmsg, "sendmmsg"),
        (libc::SYS_setns, "setns"),
        (libc::SYS_getcpu, "getcpu"),
        (libc::SYS_process_vm_readv, "process_vm_readv"),
        (libc::SYS_process_vm_writev, "process_vm_writev"),
        (libc::SYS_kcmp, "kcmp"),
        (libc::SYS_finit_module, "finit_module"),
        (libc::SYS_sched_setattr, "sched_setattr"),
        (libc::SYS_sched_getattr, "sched_getattr"),
        (libc::SYS_renameat2, "renameat2"),
        (libc::SYS_seccomp, "seccomp"),
        (libc::SYS_getrandom, "getrandom"),
        (libc::SYS_memfd_create, "memfd_create"),
        (libc::SYS_kexec_file_load, "kexec_file_load"),
        (libc::SYS_bpf, "bpf"),
        (libc::SYS_execveat, "execveat"),
        (libc::SYS_userfaultfd, "userfaultfd"),
        (libc::SYS_membarrier, "membarrier"),
        (libc::SYS_mlock2, "mlock2"),
        (libc::SYS_copy_file_range, "copy_file_range"),
        (libc::SYS_preadv2, "preadv2"),
        (libc::SYS_pwritev2, "pwritev2"),
        (libc::SYS_pkey_mprotect, "pkey_mprotect"),
        (libc::SYS_pkey_alloc, "pkey_alloc"),
        (libc::SYS_pkey_free, "pkey_free"),
        (libc::SYS_statx, "statx"),
        (libc::SYS_rseq, "rseq"),
        (libc::SYS_pidfd_send_signal, "pidfd_send_signal"),
        (libc::SYS_io_uring_setup, "io_uring_setup"),
        (libc::SYS_io_uring_enter, "io_uring_enter"),
        (libc::SYS_io_uring_register, "io_uring_register"),
        (libc::SYS_open_tree, "open_tree"),
        (libc::SYS_move_mount, "move_mount"),
        (libc::SYS_fsopen, "fsopen"),
        (libc::SYS_fsconfig, "fsconfig"),
        (libc::SYS_fsmount, "fsmount"),
        (libc::SYS_fspick, "fspick"),
        (libc::SYS_pidfd_open, "pidfd_open"),
        (libc::SYS_clone3, "clone3"),
        (libc::SYS_close_range, "close_range"),
        (libc::SYS_openat2, "openat2"),
        (libc::SYS_pidfd_getfd, "pidfd_getfd"),
        (libc::SYS_faccessat2, "faccessat2"),
        (libc::SYS_process_madvise, "process_madvise"),
        (libc::SYS_epoll_pwait2, "epoll_pwait2"),
        (libc::SYS_mount_setattr, "mount_setattr"),
        (libc::SYS_quotactl_fd, "quotactl_fd"),
        (libc::SYS_landlock_create_ruleset, "landlock_create_ruleset"),
        (libc::SYS_landlock_add_rule, "landlock_add_rule"),
        (libc::SYS_landlock_restrict_self, "landlock_restrict_self"),
        (libc::SYS_memfd_secret, "memfd_secret"),
        (libc::SYS_process_mrelease, "process_mrelease"),
        (libc::SYS_futex_waitv, "futex_waitv"),
        (libc::SYS_set_mempolicy_home_node, "set_mempolicy_home_node"),
        (libc::SYS_fchmodat2, "fchmodat2"),
        (libc::SYS_mseal, "mseal"),
    ];

    /// The numbers the `libc` crate (0.2.191) has no `SYS_*` constant for.
    const NOT_IN_LIBC: &[(u32, &str)] = &[
        (174, "create_module"),
        (177, "get_kernel_syms"),
        (178, "query_module"),
        (333, "io_pgetevents"),
        (335, "uretprobe"),
        (336, "uprobe"),
        (451, "cachestat"),
        (453, "map_shadow_stack"),
        (454, "futex_wake"),
        (455, "futex_wait"),
        (456, "futex_requeue"),
        (457, "statmount"),
        (458, "listmount"),
        (459, "lsm_get_self_attr"),
        (460, "lsm_set_self_attr"),
        (461, "lsm_list_modules"),
        (463, "setxattrat"),
        (464, "getxattrat"),
        (465, "listxattrat"),
        (466, "removexattrat"),
        (467, "open_tree_attr"),
        (468, "file_getattr"),
        (469, "file_setattr"),
    ];

    #[cfg(all(
        target_os = "linux",
        target_arch = "x86_64",
        target_pointer_width = "64",
        target_env = "gnu"
    ))]
    #[test]
    fn matches_libc_and_nothing_is_missing() {
        let mut expected = BTreeMap::new();
        for &(nr, name) in LIBC {
            let nr = u32::try_from(nr).expect("libc syscall number fits u32");
            assert_eq!(
                row(u64::from(nr)).map(|r| r.name),
                Some(name),
                "libc SYS_{name} = {nr}"
            );
            assert!(expected.insert(nr, name).is_none(), "{nr} twice in LIBC");
        }
        for &(nr, name) in NOT_IN_LIBC {
            assert_eq!(row(u64::from(nr)).map(|r| r.name), Some(name), "{name} = {nr}");
            if let Some(prev) = expected.insert(nr, name) {
                assert_eq!(prev, name, "{nr} named differently in LIBC and NOT_IN_LIBC");
            }
        }
        // Together the two lists are exactly the table: nothing missing, nothing extra.
        let table: BTreeMap<u32, &str> = TABLE.iter().map(|r| (r.nr, r.name)).collect();
        assert_eq!(table, expected);
    }

    #[test]
    fn matches_kernel_header() {
        const PATH: &str = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
        let text = match std::fs::read_to_string(PATH) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("skipping the header check: cannot read {PATH}: {e}");
                return;
            }
        };
        let mut seen = 0;
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some("#define"), Some(sym), Some(value)) = (words.next(), words.next(), words.next()) else {
                continue;
            };
            let Some(sys) = sym.strip_prefix("__NR_") else {
                continue;
            };
            let nr: u64 = value.parse().unwrap_or_else(|_| panic!("bad line {line:?}"));
            assert_eq!(name(nr), Some(sys), "{PATH}: {line}");
            seen += 1;
        }
        assert!(seen >= 300, "only {seen} __NR_ lines in {PATH}");
    }

    #[test]
    fn rule_numbers_and_constants_match() {
        let numbers = [
            (NR_POLL, "poll"),
            (NR_MMAP, "mmap"),
            (NR_MPROTECT, "mprotect"),
            (NR_WAIT4, "wait4"),
            (NR_MSGSND, "msgsnd"),
            (NR_MSGRCV, "msgrcv"),
            (NR_FCNTL, "fcntl"),
            (NR_FLOCK, "flock"),
            (NR_GETRUSAGE, "getrusage"),
            (NR_PERSONALITY, "personality"),
            (NR_SCHED_SETPARAM, "sched_setparam"),
            (NR_SCHED_GETPARAM, "sched_getparam"),
            (NR_SCHED_SETSCHEDULER, "sched_setscheduler"),
            (NR_SCHED_GETSCHEDULER, "sched_getscheduler"),
            (NR_SCHED_RR_GET_INTERVAL, "sched_rr_get_interval"),
            (NR_PRCTL, "prctl"),
            (NR_FUTEX, "futex"),
            (NR_SCHED_SETAFFINITY, "sched_setaffinity"),
            (NR_SCHED_GETAFFINITY, "sched_getaffinity"),
            (NR_TIMER_CREATE, "timer_create"),
            (NR_CLOCK_SETTIME, "clock_settime"),
            (NR_CLOCK_GETTIME, "clock_gettime"),
            (NR_CLOCK_GETRES, "clock_getres"),
            (NR_CLOCK_NANOSLEEP, "clock_nanosleep"),
            (NR_EPOLL_WAIT, "epoll_wait"),
            (NR_WAITID, "waitid"),
            (NR_PSELECT6, "pselect6"),
            (NR_PPOLL, "ppoll"),
            (NR_EPOLL_PWAIT, "epoll_pwait"),
            (NR_CLOCK_ADJTIME, "clock_adjtime"),
            (NR_SCHED_SETATTR, "sched_setattr"),
            (NR_SCHED_GETATTR, "sched_getattr"),
            (NR_PKEY_MPROTECT, "pkey_mprotect"),
            (NR_IO_PGETEVENTS, "io_pgetevents"),
            (NR_CLOSE_RANGE, "close_range"),
            (NR_EPOLL_PWAIT2, "epoll_pwait2"),
        ];
        for (nr, expected) in numbers {
            assert_eq!(name(u64::from(nr)), Some(expected), "NR constant {nr}");
        }

        assert_eq!(FUTEX_WAIT, libc::FUTEX_WAIT);
        assert_eq!(FUTEX_WAKE, libc::FUTEX_WAKE);
        assert_eq!(FUTEX_FD, libc::FUTEX_FD);
        assert_eq!(FUTEX_REQUEUE, libc::FUTEX_REQUEUE);
        assert_eq!(FUTEX_CMP_REQUEUE, libc::FUTEX_CMP_REQUEUE);
        assert_eq!(FUTEX_WAKE_OP, libc::FUTEX_WAKE_OP);
        assert_eq!(FUTEX_WAIT_BITSET, libc::FUTEX_WAIT_BITSET);
        assert_eq!(FUTEX_WAKE_BITSET, libc::FUTEX_WAKE_BITSET);
        assert_eq!(FUTEX_PRIVATE_FLAG, libc::FUTEX_PRIVATE_FLAG);
        assert_eq!(FUTEX_CLOCK_REALTIME, libc::FUTEX_CLOCK_REALTIME);
        assert_eq!(PR_SET_SECCOMP, libc::PR_SET_SECCOMP);
        assert_eq!(PR_CAPBSET_DROP, libc::PR_CAPBSET_DROP);
        assert_eq!(PR_SET_SECUREBITS, libc::PR_SET_SECUREBITS);
        assert_eq!(PR_SET_NO_NEW_PRIVS, libc::PR_SET_NO_NEW_PRIVS);
        assert_eq!(PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT);
        assert_eq!(PR_CAP_AMBIENT_IS_SET, libc::PR_CAP_AMBIENT_IS_SET);
        assert_eq!(RUSAGE_THREAD, libc::RUSAGE_THREAD);
        assert_eq!(WNOHANG, libc::WNOHANG);
        assert_eq!(WNOTHREAD, libc::__WNOTHREAD);
        assert_eq!(F_SETLKW, libc::F_SETLKW);
        assert_eq!(F_OFD_SETLKW, libc::F_OFD_SETLKW);
        assert_eq!(LOCK_NB, libc::LOCK_NB);
        assert_eq!(LOCK_UN, libc::LOCK_UN);
        assert_eq!(IPC_NOWAIT, libc::IPC_NOWAIT);
        assert_eq!(CLOSE_RANGE_UNSHARE as libc::c_uint, libc::CLOSE_RANGE_UNSHARE);
        assert_eq!(PROT_EXEC, libc::PROT_EXEC as u64);
        assert_eq!(PROT_GROWSDOWN, libc::PROT_GROWSDOWN as u64);
        assert_eq!(PROT_GROWSUP, libc::PROT_GROWSUP as u64);
        assert_eq!(CLOCK_THREAD_CPUTIME_ID, libc::CLOCK_THREAD_CPUTIME_ID);
    }

    #[test]
    fn out_of_range_numbers() {
        for nr in [
            470,
            471,
            512,
            1000,
            u64::from(u32::MAX),
            u64::MAX,
            0x4000_0000 | 1,
        ] {
            assert!(row(nr).is_none(), "{nr:#x}");
            assert!(name(nr).is_none(), "{nr:#x}");
            assert_eq!(classify(nr, &NO_ARGS), Class::Caller, "{nr:#x}");
            assert_eq!(classify(nr, &[u64::MAX; 6]), Class::Caller, "{nr:#x}");
        }
        // Unused numbers inside the range.
        for nr in [337, 400, 423] {
            assert!(row(nr).is_none(), "{nr}");
            assert_eq!(classify(nr, &NO_ARGS), Class::Caller, "{nr}");
        }
        assert_eq!(name(0), Some("read"));
        assert_eq!(name(u64::from(MAX_NR)), Some("file_setattr"));
    }

    #[test]
    fn futex_rule() {
        let private = |op: i32| args(&[0x1000, (op | libc::FUTEX_PRIVATE_FLAG) as u64]);
        assert_eq!(class_of("futex", private(libc::FUTEX_WAIT)), Class::Block);
        assert_eq!(class_of("futex", args(&[0, 0])), Class::Block);
        assert_eq!(class_of("futex", private(libc::FUTEX_WAIT_BITSET)), Class::Block);
        let realtime = libc::FUTEX_WAIT_BITSET | libc::FUTEX_CLOCK_REALTIME;
        assert_eq!(class_of("futex", private(realtime)), Class::Block);
        for op in [
            libc::FUTEX_WAKE,
            libc::FUTEX_FD,
            libc::FUTEX_REQUEUE,
            libc::FUTEX_CMP_REQUEUE,
            libc::FUTEX_WAKE_OP,
            libc::FUTEX_WAKE_BITSET,
        ] {
            assert_eq!(class_of("futex", private(op)), Class::Delegate, "op {op}");
        }
        for op in [
            libc::FUTEX_LOCK_PI,
            libc::FUTEX_UNLOCK_PI,
            libc::FUTEX_TRYLOCK_PI,
            libc::FUTEX_WAIT_REQUEUE_PI,
            libc::FUTEX_CMP_REQUEUE_PI,
            libc::FUTEX_LOCK_PI2,
            14,
            99,
            0x200, // an unknown flag: the kernel answers ENOSYS
        ] {
            assert_eq!(class_of("futex", private(op)), Class::Caller, "op {op}");
        }
        // Only the low 32 bits of op are an int.
        assert_eq!(
            class_of("futex", args(&[0, 0xffff_ffff_0000_0001])),
            Class::Delegate
        );
        assert_eq!(class_of("futex_wait", NO_ARGS), Class::Block);
        assert_eq!(class_of("futex_waitv", NO_ARGS), Class::Block);
        assert_eq!(class_of("futex_wake", NO_ARGS), Class::Delegate);
        assert_eq!(class_of("futex_requeue", NO_ARGS), Class::Delegate);
    }

    #[test]
    fn prctl_rule() {
        for option in [
            libc::PR_SET_SECCOMP,
            libc::PR_SET_NO_NEW_PRIVS,
            libc::PR_CAPBSET_DROP,
            libc::PR_SET_SECUREBITS,
            libc::PR_CAP_AMBIENT,
        ] {
            // Second argument 2: PR_CAP_AMBIENT_RAISE for PR_CAP_AMBIENT.
            assert_eq!(
                class_of("prctl", args(&[option as u64, 2])),
                Class::Isolate,
                "{option}"
            );
        }
        assert_eq!(
            class_of(
                "prctl",
                args(&[libc::PR_CAP_AMBIENT as u64, libc::PR_CAP_AMBIENT_IS_SET as u64])
            ),
            Class::Caller,
            "a query changes nothing"
        );
        for option in [
            libc::PR_SET_NAME,
            libc::PR_GET_NAME,
            libc::PR_SET_PDEATHSIG,
            libc::PR_SET_KEEPCAPS,
            libc::PR_GET_KEEPCAPS,
            0,
            9999,
        ] {
            assert_eq!(
                class_of("prctl", args(&[option as u64])),
                Class::Caller,
                "{option}"
            );
        }
    }

    #[test]
    fn sched_pid_rule() {
        for call in [
            "sched_setparam",
            "sched_getparam",
            "sched_setscheduler",
            "sched_getscheduler",
            "sched_rr_get_interval",
            "sched_setaffinity",
            "sched_getaffinity",
            "sched_setattr",
            "sched_getattr",
        ] {
            assert_eq!(
                class_of(call, args(&[0, 128, 0x1000])),
                Class::Caller,
                "{call}(0)"
            );
            assert_eq!(
                class_of(call, args(&[1234, 128])),
                Class::Delegate,
                "{call}(1234)"
            );
            // pid_t is an int: high bits are ignored.
            assert_eq!(class_of(call, args(&[1 << 32])), Class::Caller, "{call}(1 << 32)");
        }
        assert_eq!(class_of("sched_get_priority_max", NO_ARGS), Class::Delegate);
        assert_eq!(class_of("sched_yield", NO_ARGS), Class::Caller);
    }

    #[test]
    fn getrusage_rule() {
        let who = |w: i32| args(&[w as u64, 0x1000]);
        assert_eq!(class_of("getrusage", who(libc::RUSAGE_THREAD)), Class::Caller);
        assert_eq!(class_of("getrusage", who(libc::RUSAGE_SELF)), Class::Delegate);
        assert_eq!(class_of("getrusage", who(libc::RUSAGE_CHILDREN)), Class::Delegate);
    }

    #[test]
    fn wait_rule() {
        let nothread = libc::__WNOTHREAD as u64;
        let nohang = libc::WNOHANG as u64;
        assert_eq!(class_of("wait4", args(&[u64::MAX, 0x1000, 0, 0])), Class::Block);
        assert_eq!(class_of("wait4", args(&[5, 0, nothread])), Class::Caller);
        assert_eq!(class_of("wait4", args(&[5, 0, nohang])), Class::Delegate);
        assert_eq!(class_of("wait4", args(&[5, 0, nohang | nothread])), Class::Caller);
        let exited = libc::WEXITED as u64;
        assert_eq!(class_of("waitid", args(&[0, 0, 0, exited])), Class::Block);
        assert_eq!(
            class_of("waitid", args(&[0, 0, 0, exited | nothread])),
            Class::Caller
        );
        assert_eq!(
            class_of("waitid", args(&[0, 0, 0, exited | nohang])),
            Class::Delegate
        );
    }

    #[test]
    fn timeout_rules() {
        let forever = (-1i32) as u32 as u64;
        assert_eq!(class_of("poll", args(&[0x1000, 1, 0])), Class::Delegate);
        assert_eq!(class_of("poll", args(&[0x1000, 1, forever])), Class::Block);
        assert_eq!(class_of("poll", args(&[0x1000, 1, 10])), Class::Block);
        assert_eq!(class_of("poll", args(&[0x1000, 1, u64::MAX])), Class::Block);
        assert_eq!(class_of("epoll_wait", args(&[3, 0x1000, 8, 0])), Class::Delegate);
        assert_eq!(
            class_of("epoll_wait", args(&[3, 0x1000, 8, forever])),
            Class::Block
        );
        assert_eq!(
            class_of("epoll_pwait", args(&[3, 0x1000, 8, 0, 0, 8])),
            Class::Delegate
        );
        assert_eq!(
            class_of("epoll_pwait", args(&[3, 0x1000, 8, 5, 0, 8])),
            Class::Block
        );
        assert_eq!(class_of("ppoll", args(&[0x1000, 1, 0x2000, 0, 8])), Class::Block);
        assert_eq!(class_of("ppoll", args(&[0x1000, 1, 0, 0, 8])), Class::Block);
        assert_eq!(class_of("select", args(&[1, 0x1000, 0, 0, 0])), Class::Block);
        assert_eq!(class_of("pselect6", args(&[1, 0x1000, 0, 0, 0, 0])), Class::Block);
        assert_eq!(
            class_of("epoll_pwait2", args(&[3, 0x1000, 8, 0x2000, 0, 8])),
            Class::Block
        );
        assert_eq!(
            class_of("io_pgetevents", args(&[1, 1, 1, 0x1000, 0, 0])),
            Class::Block
        );
    }

    #[test]
    fn signal_mask_rule() {
        let mask = 0x7fff_0000_1000;
        assert_eq!(class_of("ppoll", args(&[0x1000, 1, 0, mask, 8])), Class::Caller);
        assert_eq!(
            class_of("pselect6", args(&[1, 0x1000, 0, 0, 0, mask])),
            Class::Caller
        );
        assert_eq!(
            class_of("epoll_pwait", args(&[3, 0x1000, 8, 0, mask, 8])),
            Class::Caller
        );
        assert_eq!(
            class_of("epoll_pwait2", args(&[3, 0x1000, 8, 0, mask, 8])),
            Class::Caller
        );
        assert_eq!(
            class_of("io_pgetevents", args(&[1, 1, 1, 0x1000, 0, mask])),
            Class::Caller
        );
    }

    #[test]
    fn lock_and_ipc_rules() {
        let fcntl = |cmd: i32| args(&[3, cmd as u64, 0x1000]);
        assert_eq!(class_of("fcntl", fcntl(libc::F_SETLKW)), Class::Block);
        assert_eq!(class_of("fcntl", fcntl(libc::F_OFD_SETLKW)), Class::Block);
        for cmd in [
            libc::F_SETLK,
            libc::F_GETLK,
            libc::F_OFD_SETLK,
            libc::F_GETFL,
            libc::F_SETFL,
            libc::F_DUPFD_CLOEXEC,
            libc::F_SETOWN,
        ] {
            assert_eq!(class_of("fcntl", fcntl(cmd)), Class::Delegate, "cmd {cmd}");
        }
        let flock = |op: i32| args(&[3, op as u64]);
        assert_eq!(class_of("flock", flock(libc::LOCK_EX)), Class::Block);
        assert_eq!(class_of("flock", flock(libc::LOCK_SH)), Class::Block);
        assert_eq!(
            class_of("flock", flock(libc::LOCK_EX | libc::LOCK_NB)),
            Class::Delegate
        );
        assert_eq!(class_of("flock", flock(libc::LOCK_UN)), Class::Delegate);

        let nowait = libc::IPC_NOWAIT as u64;
        assert_eq!(class_of("msgsnd", args(&[1, 0x1000, 8, 0])), Class::Block);
        assert_eq!(class_of("msgsnd", args(&[1, 0x1000, 8, nowait])), Class::Delegate);
        assert_eq!(class_of("msgrcv", args(&[1, 0x1000, 8, 0, 0])), Class::Block);
        assert_eq!(
            class_of("msgrcv", args(&[1, 0x1000, 8, 0, nowait])),
            Class::Delegate
        );
        assert_eq!(class_of("semop", NO_ARGS), Class::Block);
    }

    #[test]
    fn close_range_rule() {
        let unshare = u64::from(libc::CLOSE_RANGE_UNSHARE);
        let cloexec = u64::from(libc::CLOSE_RANGE_CLOEXEC);
        assert_eq!(class_of("close_range", args(&[3, u64::MAX, 0])), Class::Delegate);
        assert_eq!(
            class_of("close_range", args(&[3, u64::MAX, cloexec])),
            Class::Delegate
        );
        assert_eq!(
            class_of("close_range", args(&[3, u64::MAX, unshare])),
            Class::Isolate
        );
    }

    #[test]
    fn execute_only_rule() {
        let exec = libc::PROT_EXEC as u64;
        let rx = (libc::PROT_READ | libc::PROT_EXEC) as u64;
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        assert_eq!(
            class_of("mmap", args(&[0, 4096, rw, flags, u64::MAX, 0])),
            Class::Delegate
        );
        assert_eq!(
            class_of("mmap", args(&[0, 4096, rx, flags, u64::MAX, 0])),
            Class::Delegate
        );
        assert_eq!(
            class_of("mmap", args(&[0, 4096, exec, flags, u64::MAX, 0])),
            Class::Caller
        );
        assert_eq!(class_of("mprotect", args(&[0x1000, 4096, rx])), Class::Delegate);
        assert_eq!(class_of("mprotect", args(&[0x1000, 4096, exec])), Class::Caller);
        let down = libc::PROT_GROWSDOWN as u64;
        assert_eq!(
            class_of("mprotect", args(&[0x1000, 4096, exec | down])),
            Class::Caller
        );
        assert_eq!(
            class_of("pkey_mprotect", args(&[0x1000, 4096, rw, 1])),
            Class::Delegate
        );
        assert_eq!(
            class_of("pkey_mprotect", args(&[0x1000, 4096, exec, 1])),
            Class::Caller
        );
        assert_eq!(class_of("pkey_alloc", NO_ARGS), Class::Caller);
    }

    #[test]
    fn thread_clock_rule() {
        let id = |c: libc::clockid_t| args(&[c as u64, 0x1000]);
        // The dynamic CPU clock id of thread `tid` (what pthread_getcpuclockid returns), and
        // of process `pid`: (~id << 3) | type, with bit 2 set for a thread.
        let thread_clock = |tid: i32| id((!tid << 3) | 4 | 2);
        let process_clock = |pid: i32| id((!pid << 3) | 2);
        for call in ["clock_gettime", "clock_getres", "timer_create", "clock_settime"] {
            let base = class_of(call, id(libc::CLOCK_MONOTONIC));
            assert_eq!(base, Class::Delegate, "{call}");
            assert_eq!(class_of(call, id(libc::CLOCK_REALTIME)), base, "{call}");
            assert_eq!(class_of(call, id(libc::CLOCK_PROCESS_CPUTIME_ID)), base, "{call}");
            assert_eq!(class_of(call, process_clock(0)), base, "{call}");
            assert_eq!(class_of(call, process_clock(1234)), base, "{call}");
            assert_eq!(
                class_of(call, id(libc::CLOCK_THREAD_CPUTIME_ID)),
                Class::Caller,
                "{call}"
            );
            assert_eq!(class_of(call, thread_clock(0)), Class::Caller, "{call}");
            assert_eq!(class_of(call, thread_clock(1234)), Class::Caller, "{call}");
        }
        assert_eq!(
            class_of("clock_nanosleep", id(libc::CLOCK_MONOTONIC)),
            Class::Block
        );
        assert_eq!(class_of("clock_nanosleep", thread_clock(0)), Class::Caller);
        assert_eq!(
            class_of("clock_adjtime", id(libc::CLOCK_REALTIME)),
            Class::Delegate
        );
    }

    #[test]
    fn personality_rule() {
        assert_eq!(class_of("personality", args(&[0xffff_ffff])), Class::Caller);
        assert_eq!(class_of("personality", args(&[u64::MAX])), Class::Caller);
        let linux = 0; // PER_LINUX
        let read_implies_exec = libc::READ_IMPLIES_EXEC as u64;
        assert_eq!(class_of("personality", args(&[linux])), Class::Isolate);
        assert_eq!(
            class_of("personality", args(&[linux | read_implies_exec])),
            Class::Isolate
        );
    }

    #[test]
    fn examples() {
        for call in [
            "gettid",
            "exit",
            "exit_group",
            "clone",
            "clone3",
            "fork",
            "vfork",
            "execve",
            "execveat",
            "rt_sigprocmask",
            "rt_sigsuspend",
            "rt_sigtimedwait",
            "rt_sigreturn",
            "sigaltstack",
            "pause",
            "set_tid_address",
            "set_robust_list",
            "arch_prctl",
            "rseq",
            "getuid",
            "geteuid",
            "capget",
            "ioctl",
            "getcpu",
            "io_uring_enter",
            "perf_event_open",
            "set_mempolicy",
            "map_shadow_stack",
            "restart_syscall",
        ] {
            assert_eq!(class_of(call, NO_ARGS), Class::Caller, "{call}");
        }
        for call in [
            "setuid",
            "setgid",
            "setreuid",
            "setregid",
            "setresuid",
            "setresgid",
            "setfsuid",
            "setfsgid",
            "setgroups",
            "capset",
            "seccomp",
            "landlock_restrict_self",
            "unshare",
            "setns",
        ] {
            assert_eq!(class_of(call, NO_ARGS), Class::Isolate, "{call}");
        }
        let forever = (-1i32) as u32 as u64;
        assert_eq!(
            class_of("epoll_wait", args(&[3, 0x1000, 8, forever])),
            Class::Block
        );
        for call in [
            "read",
            "write",
            "accept",
            "accept4",
            "connect",
            "recvfrom",
            "nanosleep",
        ] {
            assert_eq!(class_of(call, NO_ARGS), Class::Block, "{call}");
        }
        for call in [
            "getppid",
            "getpid",
            "openat",
            "close",
            "fstat",
            "mmap",
            "munmap",
            "rt_sigaction",
            "pipe2",
            "socket",
            "epoll_ctl",
            "landlock_create_ruleset",
            "landlock_add_rule",
            "membarrier",
            "mseal",
            "copy_file_range",
            "getrandom",
        ] {
            assert_eq!(class_of(call, NO_ARGS), Class::Delegate, "{call}");
        }
    }

    #[test]
    fn classify_without_a_rule_is_the_table_class() {
        // Calls whose classification can change with arguments.
        let ruled: HashSet<u32> = [
            NR_POLL,
            NR_MMAP,
            NR_MPROTECT,
            NR_WAIT4,
            NR_MSGSND,
            NR_MSGRCV,
            NR_FCNTL,
            NR_FLOCK,
            NR_GETRUSAGE,
            NR_PERSONALITY,
            NR_SCHED_SETPARAM,
            NR_SCHED_GETPARAM,
            NR_SCHED_SETSCHEDULER,
            NR_SCHED_GETSCHEDULER,
            NR_SCHED_RR_GET_INTERVAL,
            NR_PRCTL,
            NR_FUTEX,
            NR_SCHED_SETAFFINITY,
            NR_SCHED_GETAFFINITY,
            NR_TIMER_CREATE,
            NR_CLOCK_SETTIME,
            NR_CLOCK_GETTIME,
            NR_CLOCK_GETRES,
            NR_CLOCK_NANOSLEEP,
            NR_EPOLL_WAIT,
            NR_WAITID,
            NR_PSELECT6,
            NR_PPOLL,
            NR_EPOLL_PWAIT,
            NR_CLOCK_ADJTIME,
            NR_SCHED_SETATTR,
            NR_SCHED_GETATTR,
            NR_PKEY_MPROTECT,
            NR_IO_PGETEVENTS,
            NR_CLOSE_RANGE,
            NR_EPOLL_PWAIT2,
        ]
        .into_iter()
        .collect();
        for row in TABLE.iter().filter(|r| !ruled.contains(&r.nr)) {
            for a in [NO_ARGS, [u64::MAX; 6], [1, 2, 3, 4, 5, 6]] {
                assert_eq!(classify(u64::from(row.nr), &a), row.class, "{row:?}");
            }
        }
        // And a high-bits-set number never aliases a defined one.
        assert_eq!(classify(1 << 32, &NO_ARGS), Class::Caller);
    }
}
