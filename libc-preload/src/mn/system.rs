//! `system()` under M-on-N, and `pclose()` in a user thread.
//!
//! glibc's `system` starts the shell with `posix_spawn` and waits for it with its own
//! `waitpid`, inside the function, where no wrapper of the preload sees the wait: the
//! kernel thread stopped until the shell ended, and a command that needed another user
//! thread of that kernel thread (a server the command talks to) hung the process
//! (`tests/fixtures/mn_inside_libc.c system`). So while M-on-N is on, every thread's
//! `system` is made here, as glibc makes it, and a user thread's wait is posted:
//!
//! - SIGINT and SIGQUIT are ignored while any `system` runs (counted, as glibc counts
//!   them, so that concurrent calls restore them once: the count must be one for every
//!   thread, which is why native threads come here too), and SIGCHLD is blocked in the
//!   calling thread;
//! - the shell, `/bin/sh -c COMMAND`, starts with the caller's signal mask and with SIGINT
//!   and SIGQUIT at their default unless they were ignored before;
//! - the result is the shell's wait status, `127 << 8` if it could not start, -1 if
//!   someone else reaped it; `system(NULL)` says whether `exit 0` runs;
//! - it is a cancellation point, as glibc's: a cancellation during the wait kills the
//!   shell and waits for it, restores the signals, then acts. The wait runs with
//!   cancellation disabled, in 20 ms slices of a `poll` on the shell's pidfd (posted in a
//!   user thread), between which it looks for a request; nothing in this frame needs
//!   dropping when the cancellation unwinds. Without a pidfd (kernels before 5.3, a
//!   seccomp filter) the wait is one `wait4`, which a cancellation does not interrupt.
//!
//! `pclose` closes the stream and then waits for its command inside glibc, the same way.
//! For a user thread, the wait comes first and is posted: the stream is flushed, its
//! descriptor is replaced by one on `/dev/null` (which closes the pipe: the command sees
//! its end of file, or SIGPIPE, as when glibc closes it), and a posted
//! `waitid(WNOWAIT)` waits for the command to end without reaping it. glibc's `pclose`
//! then closes that descriptor and reaps the command at once. The command's process id is
//! the `pid` field of glibc's `_IO_proc_file`, read when `popen` returns (recorded only if
//! it names a child of ours).

use std::ffi::c_char;
use std::mem::MaybeUninit;

use libc::c_int;

use flexsc_shim::sys::syscall6;

use super::lot::SpinLock;

extern "C" {
    static environ: *const *const c_char;
}

/// How many `system` calls run, and the dispositions of SIGINT and SIGQUIT before the
/// first of them.
struct Ignoring {
    running: usize,
    intr: MaybeUninit<libc::sigaction>,
    quit: MaybeUninit<libc::sigaction>,
}

static IGNORING: SpinLock<Ignoring> = SpinLock::new(Ignoring {
    running: 0,
    intr: MaybeUninit::uninit(),
    quit: MaybeUninit::uninit(),
});

/// Counts one more `system` running; the first ignores SIGINT and SIGQUIT. Returns
/// whether each was ignored before the first.
fn start_ignoring() -> (bool, bool) {
    // SAFETY: sigaction structs are plain data; zeroed is SIG_DFL with no flags.
    let mut ignore: libc::sigaction = unsafe { std::mem::zeroed() };
    ignore.sa_sigaction = libc::SIG_IGN;
    IGNORING.with(|ig| {
        if ig.running == 0 {
            // SAFETY: sigaction writes the old dispositions into the saved slots.
            unsafe {
                libc::sigaction(libc::SIGINT, &ignore, ig.intr.as_mut_ptr());
                libc::sigaction(libc::SIGQUIT, &ignore, ig.quit.as_mut_ptr());
            }
        }
        ig.running += 1;
        // SAFETY: written above, by this call or by the first of those still running.
        let (intr, quit) = unsafe { (ig.intr.assume_init_ref(), ig.quit.assume_init_ref()) };
        (
            intr.sa_sigaction == libc::SIG_IGN,
            quit.sa_sigaction == libc::SIG_IGN,
        )
    })
}

/// Counts one `system` fewer; the last restores SIGINT and SIGQUIT.
fn stop_ignoring() {
    IGNORING.with(|ig| {
        ig.running -= 1;
        if ig.running == 0 {
            // SAFETY: the dispositions saved when `running` went from 0 to 1.
            unsafe {
                libc::sigaction(libc::SIGINT, ig.intr.as_ptr(), std::ptr::null_mut());
                libc::sigaction(libc::SIGQUIT, ig.quit.as_ptr(), std::ptr::null_mut());
            }
        }
    });
}

/// glibc's `PTHREAD_CANCEL_ENABLE` and `PTHREAD_CANCEL_DISABLE` (not in the libc crate).
const CANCEL_ENABLE: c_int = 0;
const CANCEL_DISABLE: c_int = 1;

/// How a wait for the shell ended.
enum Waited {
    /// Reaped, with this status.
    Status(c_int),
    /// Reaped by someone else, or never ours: -1 with this errno (ECHILD), as glibc.
    Gone(c_int),
    /// `pthread_cancel` came for the caller, whose cancellation was enabled.
    Cancelled,
}

/// `system(command)` while M-on-N is on (see the module docs).
///
/// # Safety
/// `command` is null or a NUL-terminated string.
pub(crate) unsafe fn system(command: *const c_char) -> c_int {
    if command.is_null() {
        // SAFETY: a literal command.
        return (unsafe { system(c"exit 0".as_ptr()) } == 0) as c_int;
    }
    let mut was = CANCEL_ENABLE;
    // SAFETY: glibc's own function (ours keeps its bits), writing the old state here.
    unsafe { super::api::pthread_setcancelstate(CANCEL_DISABLE, &mut was) };
    let (intr_ignored, quit_ignored) = start_ignoring();
    // SAFETY: sigset_t is plain data, filled by sigemptyset / pthread_sigmask.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigset operations on sets on this stack; the calling thread's own mask.
    unsafe {
        let mut chld: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut chld);
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        super::api::pthread_sigmask(libc::SIG_BLOCK, &chld, &mut mask);
    }
    // SAFETY: the caller's command; the signal sets above.
    let spawned = unsafe { spawn_shell(command, &mask, intr_ignored, quit_ignored) };
    let waited = match spawned {
        Ok(pid) => wait_for(pid, was == CANCEL_ENABLE),
        Err(e) => Err(e),
    };
    stop_ignoring();
    // SAFETY: the caller's mask, saved by the SIG_BLOCK above; then its cancellation
    // state, which acts on a pending request if the wait saw one (below).
    unsafe {
        super::api::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
        super::api::pthread_setcancelstate(was, std::ptr::null_mut());
    }
    match waited {
        Ok(Waited::Status(status)) => status,
        Ok(Waited::Gone(e)) => {
            crate::route::set_errno(e);
            -1
        }
        Ok(Waited::Cancelled) => {
            // Nothing in this frame needs dropping: the unwind may pass.
            // SAFETY: a cancellation point of the calling thread.
            unsafe { super::api::pthread_testcancel() };
            -1
        }
        Err(e) => {
            crate::route::set_errno(e);
            127 << 8
        }
    }
}

/// Starts `/bin/sh -c command` with `mask` and SIGINT/SIGQUIT at their default unless
/// ignored before: its pid, or posix_spawn's error.
///
/// # Safety
/// `command` is a NUL-terminated string.
unsafe fn spawn_shell(
    command: *const c_char,
    mask: &libc::sigset_t,
    intr_ignored: bool,
    quit_ignored: bool,
) -> Result<libc::pid_t, c_int> {
    let mut pid: libc::pid_t = 0;
    // SAFETY: the attributes live on this stack, initialised before use and destroyed
    // after; argv is NUL-terminated strings ending with a null; environ is the process's.
    let r = unsafe {
        let mut attr = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        libc::posix_spawnattr_init(attr.as_mut_ptr());
        let mut reset: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut reset);
        if !intr_ignored {
            libc::sigaddset(&mut reset, libc::SIGINT);
        }
        if !quit_ignored {
            libc::sigaddset(&mut reset, libc::SIGQUIT);
        }
        libc::posix_spawnattr_setsigdefault(attr.as_mut_ptr(), &reset);
        libc::posix_spawnattr_setsigmask(attr.as_mut_ptr(), mask);
        libc::posix_spawnattr_setflags(
            attr.as_mut_ptr(),
            (libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK) as libc::c_short,
        );
        let argv = [c"sh".as_ptr(), c"-c".as_ptr(), command, std::ptr::null()];
        let r = crate::interpose::posix_spawn(
            &mut pid,
            c"/bin/sh".as_ptr(),
            std::ptr::null(),
            attr.as_ptr(),
            argv.as_ptr(),
            environ,
        );
        libc::posix_spawnattr_destroy(attr.as_mut_ptr());
        r
    };
    if r == 0 {
        Ok(pid)
    } else {
        Err(r)
    }
}

/// How long one slice of the wait for the shell lasts before it looks for a cancellation.
const SLICE_MS: u64 = 20;

/// Waits for the shell `pid` to end and reaps it; with `cancellable`, a cancellation
/// request ends the wait, after killing and reaping the shell.
fn wait_for(pid: libc::pid_t, cancellable: bool) -> Result<Waited, c_int> {
    let user = super::routes_user_thread();
    // SAFETY: pidfd_open of our own child; the descriptor is closed below.
    let pidfd = unsafe { syscall6(libc::SYS_pidfd_open as u64, [pid as u64, 0, 0, 0, 0, 0]) };
    let mut status: c_int = 0;
    let reap = |status: &mut c_int, options: c_int| {
        // SAFETY: wait4 of our child into a status word of the caller's.
        unsafe {
            syscall6(
                libc::SYS_wait4 as u64,
                [pid as u64, status as *mut c_int as u64, options as u64, 0, 0, 0],
            )
        }
    };
    let waited = loop {
        if pidfd < 0 {
            // No pidfd: one wait, posted in a user thread (its kernel thread runs on).
            let r = if user {
                let args = [pid as u64, &mut status as *mut c_int as u64, 0, 0, 0, 0];
                // SAFETY: the wait4 glibc's system makes, into `status`.
                unsafe { crate::route::route(libc::SYS_wait4, args, || reap(&mut status, 0)) }
            } else {
                reap(&mut status, 0)
            };
            // The routed call answers -1 and errno, the raw one -errno.
            let e = if r == -1 {
                crate::route::errno()
            } else {
                -r as c_int
            };
            match r {
                r if r == pid as i64 => break Waited::Status(status),
                _ if e == libc::EINTR => continue,
                _ => break Waited::Gone(e),
            }
        }
        match reap(&mut status, libc::WNOHANG) {
            r if r == pid as i64 => break Waited::Status(status),
            0 => {}
            r if r == -(libc::EINTR as i64) => {}
            r => break Waited::Gone(-r as c_int),
        }
        if cancellable && super::cancel::requested_here() {
            // As glibc's cleanup: the shell goes, and is reaped.
            // SAFETY: kill of our own child, which the loop has not reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            while reap(&mut status, 0) == -(libc::EINTR as i64) {}
            break Waited::Cancelled;
        }
        let mut poll = libc::pollfd {
            fd: pidfd as c_int,
            events: libc::POLLIN,
            revents: 0,
        };
        let args = [&mut poll as *mut libc::pollfd as u64, 1, SLICE_MS, 0, 0, 0];
        // SAFETY: a poll of one pollfd on this stack.
        let raw = || unsafe { syscall6(libc::SYS_poll as u64, args) };
        if user {
            // Posted: this user thread switches out for the slice. Cancellation is
            // disabled, so the call does not act on one; a signal's EINTR only ends it.
            // SAFETY: the poll above.
            unsafe { crate::route::route(libc::SYS_poll, args, raw) };
        } else {
            raw();
        }
    };
    if pidfd >= 0 {
        // SAFETY: the pidfd opened above, ours alone.
        unsafe { syscall6(libc::SYS_close as u64, [pidfd as u64, 0, 0, 0, 0, 0]) };
    }
    Ok(waited)
}

/// Where glibc 2.36 keeps a `popen` stream's child: `struct _IO_proc_file { struct
/// _IO_FILE_plus file; pid_t pid; ... }`, after the 216-byte `FILE` and its vtable pointer.
const PROC_FILE_PID: usize = 224;

/// Streams from `popen` and their commands, recorded while M-on-N is on: (stream, pid),
/// 0 for a free slot. A fixed table (no allocation under the spin lock); a stream that
/// finds it full is not recorded, and its `pclose` waits inside glibc as before.
static POPENED: SpinLock<[(usize, libc::pid_t); 64]> = SpinLock::new([(0, 0); 64]);

/// After glibc's `popen` returned `stream`: records its command, if it is a child of ours.
///
/// # Safety
/// `stream` is null or what glibc's `popen` just returned.
pub(crate) unsafe fn popened(stream: *mut libc::FILE) {
    if stream.is_null() || !super::enabled() {
        return;
    }
    // SAFETY: a popen stream is an `_IO_proc_file`, which holds the pid at this offset.
    let pid = unsafe { std::ptr::read((stream as *const u8).add(PROC_FILE_PID) as *const libc::pid_t) };
    if pid <= 0 || !is_running_child(pid) {
        return;
    }
    let key = stream as usize;
    POPENED.with(|t| {
        // A stream's address may come back after an `fclose` the table did not see.
        if let Some(slot) = t.iter_mut().find(|(s, _)| *s == key || *s == 0) {
            *slot = (key, pid);
        }
    });
}

/// At `pclose(stream)`, from any thread: the command recorded for `stream`, forgotten.
pub(crate) fn take_popened(stream: *mut libc::FILE) -> Option<libc::pid_t> {
    if !super::enabled() {
        return None;
    }
    let key = stream as usize;
    POPENED.with(|t| {
        t.iter_mut().find(|(s, _)| *s == key).map(|slot| {
            let pid = slot.1;
            *slot = (0, 0);
            pid
        })
    })
}

/// Whether `pid` is a child of this process that has not been reaped.
fn is_running_child(pid: libc::pid_t) -> bool {
    // SAFETY: siginfo_t is plain data; waitid writes into it. WNOWAIT leaves the child
    // as it is, WNOHANG returns at once.
    let r = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        flexsc_shim::sys::syscall6(
            libc::SYS_waitid as u64,
            [
                libc::P_PID as u64,
                pid as u64,
                &mut info as *mut libc::siginfo_t as u64,
                (libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) as u64,
                0,
                0,
            ],
        )
    };
    r == 0
}

/// Before glibc's `pclose(stream)` in a user thread, `stream` a `popen` stream whose
/// command is `pid`: closes its pipe and waits, posted, for the command to end (see the
/// module docs).
///
/// # Safety
/// `stream` is a live `popen` stream, the one `pclose` is about to close.
pub(crate) unsafe fn before_pclose(stream: *mut libc::FILE, pid: libc::pid_t) {
    // SAFETY: a live popen stream (recorded at popen, not yet closed): its buffer goes
    // out, then its descriptor is swapped for /dev/null, which glibc's pclose closes.
    unsafe {
        libc::fflush(stream);
        let fd = libc::fileno(stream);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd < 0 || null < 0 || libc::dup3(null, fd, libc::O_CLOEXEC) < 0 {
            if null >= 0 {
                libc::close(null);
            }
            return;
        }
        libc::close(null);
        let mut info: libc::siginfo_t = std::mem::zeroed();
        // Posted: this user thread switches out while the command runs. Reaped (ECHILD)
        // or not ours any more: glibc's pclose says so itself.
        while super::api::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        ) == -1
            && crate::route::errno() == libc::EINTR
        {}
    }
}
