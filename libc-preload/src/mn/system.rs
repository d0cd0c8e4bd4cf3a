//! `system()` and `pclose()` in a user thread.
//!
//! glibc's `system` starts the shell with `posix_spawn` and waits for it with its own
//! `waitpid`, inside the function, where no wrapper of the preload sees the wait: the
//! kernel thread stopped until the shell ended, and a command that needed another user
//! thread of that kernel thread (a server the command talks to) hung the process
//! (`tests/fixtures/mn_inside_libc.c system`). So a user thread's `system` is made here,
//! as glibc makes it, with the wait posted like any other (`api::waitpid`):
//!
//! - SIGINT and SIGQUIT are ignored while any `system` runs (counted, as glibc counts
//!   them, so that concurrent calls restore them once), and SIGCHLD is blocked in the
//!   calling thread;
//! - the shell, `/bin/sh -c COMMAND`, starts with the caller's signal mask and with SIGINT
//!   and SIGQUIT at their default unless they were ignored before;
//! - the result is the shell's wait status, `127 << 8` if it could not start, and
//!   `system(NULL)` says whether `exit 0` runs;
//! - a cancellation during the wait kills the shell and waits for it, as glibc's cleanup
//!   does, then restores the signals.
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

/// What the caller had before `system` changed it, given back on every way out.
struct Restore {
    mask: libc::sigset_t,
    /// The shell while it may still run: killed and waited for on the way out (only a
    /// cancellation leaves it running).
    child: Option<libc::pid_t>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            // SAFETY: kill and wait4 of our own child, with a status word on this stack.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                let mut status = 0;
                while flexsc_shim::sys::syscall6(
                    libc::SYS_wait4 as u64,
                    [pid as u64, &mut status as *mut c_int as u64, 0, 0, 0, 0],
                ) == -(libc::EINTR as i64)
                {}
            }
        }
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
        // SAFETY: the caller's mask, saved by the SIG_BLOCK below.
        unsafe { super::api::pthread_sigmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut()) };
    }
}

/// `system(command)` for a user thread (see the module docs).
///
/// # Safety
/// `command` is null or a NUL-terminated string.
pub(crate) unsafe fn system(command: *const c_char) -> c_int {
    if command.is_null() {
        // SAFETY: a literal command.
        return (unsafe { system(c"exit 0".as_ptr()) } == 0) as c_int;
    }
    // SAFETY: sigaction structs are plain data; zeroed is SIG_DFL with no flags.
    let mut ignore: libc::sigaction = unsafe { std::mem::zeroed() };
    ignore.sa_sigaction = libc::SIG_IGN;
    let (intr_ignored, quit_ignored) = IGNORING.with(|ig| {
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
    });
    // SAFETY: sigset_t is plain data, filled by sigemptyset / pthread_sigmask.
    let mut restore = Restore {
        mask: unsafe { std::mem::zeroed() },
        child: None,
    };
    // SAFETY: sigset operations on sets on this stack; the user thread's own mask.
    unsafe {
        let mut chld: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut chld);
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        super::api::pthread_sigmask(libc::SIG_BLOCK, &chld, &mut restore.mask);
    }
    let mut pid: libc::pid_t = 0;
    // SAFETY: the attributes live on this stack, initialised before use and destroyed
    // after; argv is NUL-terminated strings ending with a null; environ is the process's.
    let spawned = unsafe {
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
        libc::posix_spawnattr_setsigmask(attr.as_mut_ptr(), &restore.mask);
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
    if spawned != 0 {
        drop(restore);
        crate::route::set_errno(spawned);
        return 127 << 8;
    }
    restore.child = Some(pid);
    let mut status: c_int = 0;
    let status = loop {
        // SAFETY: a wait for our child into a status word on this stack; posted, so this
        // user thread switches out while the shell runs.
        let r = unsafe { super::api::waitpid(pid, &mut status, 0) };
        if r == pid {
            break status;
        }
        if r == -1 && crate::route::errno() == libc::EINTR {
            continue;
        }
        // Reaped by someone else (a SIGCHLD handler, or `SIG_IGN` for SIGCHLD): glibc says
        // -1 then too.
        break -1;
    };
    restore.child = None;
    status
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
