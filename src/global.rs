//! The process-wide runtime, built on first use from the `FLEXSC_*` variables, and each
//! thread's submitter on it. Inside a user thread of [`crate::thread`], calls go to that
//! thread's scheduler instead.
//!
//! Bad configuration never panics: [`global`] returns the error, and [`syscall`] runs
//! calls on their caller after saying once on stderr what was wrong.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flexsc_kernel_side::{Builder, Runtime};
use flexsc_shim::{sys, AsyncSubmitter, Call, Submitter};

static GLOBAL: OnceLock<Result<Runtime, String>> = OnceLock::new();

thread_local! {
    static SUBMITTER: RefCell<Option<Submitter>> = const { RefCell::new(None) };
}

/// The process-wide runtime, started on first use. Its configuration comes from the
/// `FLEXSC_*` environment variables; an invalid one is returned as an error, every time.
pub fn global() -> Result<&'static Runtime, &'static str> {
    GLOBAL
        .get_or_init(|| {
            let runtime = Builder::from_env()
                .map_err(|e| e.to_string())?
                .build()
                .map_err(|e| format!("cannot start the flexsc runtime: {e}"))?;
            // Process exit must not lose a posted call.
            // SAFETY: `drain_at_exit` is an `extern "C" fn()` that never unwinds.
            unsafe { libc::atexit(drain_at_exit) };
            // A forked child has no service thread: its calls run directly.
            // SAFETY: `forked_child` is an `extern "C" fn()` that only stores a flag.
            unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
            Ok(runtime)
        })
        .as_ref()
        .map_err(String::as_str)
}

/// Set in a child forked after the runtime started: the service threads stayed in the
/// parent, so the child's calls (sync and async) run directly.
static IN_FORKED_CHILD: AtomicBool = AtomicBool::new(false);

extern "C" fn forked_child() {
    IN_FORKED_CHILD.store(true, Ordering::Relaxed);
}

/// Whether this process is a child forked after the runtime started.
fn in_forked_child() -> bool {
    IN_FORKED_CHILD.load(Ordering::Relaxed)
}

extern "C" fn drain_at_exit() {
    if let (Some(Ok(runtime)), false) = (GLOBAL.get(), in_forked_child()) {
        runtime.quiesce(Duration::from_secs(10));
    }
}

/// The process-wide asynchronous submitter (the futures of [`crate::aio`] post to it), or
/// `None` when the runtime cannot start (said once on stderr; the futures then run their
/// calls on the thread that polls them).
pub fn async_submitter() -> Option<&'static Arc<AsyncSubmitter>> {
    static ASYNC: OnceLock<Option<Arc<AsyncSubmitter>>> = OnceLock::new();
    if in_forked_child() {
        return None;
    }
    ASYNC
        .get_or_init(|| {
            let runtime = global().map_err(warn_once).ok()?;
            match AsyncSubmitter::new(Arc::clone(runtime.shared())) {
                Ok(s) => Some(Arc::new(s)),
                Err(e) => {
                    warn_once(&e.to_string());
                    None
                }
            }
        })
        .as_ref()
}

fn warn_once(msg: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| eprintln!("flexsc: {msg}; running system calls directly"));
}

/// Runs `f` with this thread's submitter on the global runtime, or returns `None` when
/// there is none (bad configuration, too many threads, or a re-entrant call from a
/// signal handler while this thread is inside `f`).
fn with_submitter<R>(f: impl FnOnce(&mut Submitter) -> R) -> Option<R> {
    if in_forked_child() {
        return None;
    }
    let runtime = match global() {
        Ok(rt) => rt,
        Err(msg) => {
            warn_once(msg);
            return None;
        }
    };
    SUBMITTER
        .try_with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            if slot.is_none() {
                match runtime.submitter() {
                    Ok(s) => *slot = Some(s),
                    Err(e) => {
                        warn_once(&e.to_string());
                        return None;
                    }
                }
            }
            slot.as_mut().map(f)
        })
        .ok()
        .flatten()
}

/// Runs system call `nr` through the calling thread's syscall page and returns the raw
/// result: the value or a negated errno, as the `syscall` instruction would.
///
/// # Safety
/// As for the `syscall` instruction: see [`Submitter::call`].
pub unsafe fn syscall(nr: impl Into<i64>, args: [u64; 6]) -> i64 {
    let nr = nr.into() as u64;
    if flexsc_scheduler::in_user_thread() {
        // A user thread posts to its own kernel thread's pages and switches out.
        // SAFETY: forwarded from this function's contract.
        return unsafe { flexsc_scheduler::syscall(nr as libc::c_long, args) };
    }
    // SAFETY: forwarded from this function's contract.
    with_submitter(|s| unsafe { s.call(nr, args) }).unwrap_or_else(|| unsafe { sys::syscall6(nr, args) })
}

/// Runs a batch of calls through the calling thread's page: see [`Submitter::call_batch`].
///
/// # Safety
/// As for [`syscall`], for every call.
pub unsafe fn syscall_batch(calls: &[Call], results: &mut [i64]) {
    // SAFETY: forwarded from this function's contract.
    let done = with_submitter(|s| unsafe { s.call_batch(calls, results) });
    if done.is_none() {
        for (call, result) in calls.iter().zip(results.iter_mut()) {
            // SAFETY: forwarded.
            *result = unsafe { sys::syscall6(call.nr, call.args) };
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn syscall_in_a_user_thread_goes_through_its_scheduler() {
        // Posting only: a lone user thread, or one whose service thread is behind, would
        // make its calls directly.
        let scheduler = crate::thread::Scheduler::builder()
            .direct_when_alone(false)
            .help_when_behind(false)
            .build()
            .expect("a scheduler");
        let ppid = i64::from(std::os::unix::process::parent_id());
        let results = scheduler.block_on(|| {
            let threads: Vec<_> = (0..100)
                .map(|_| {
                    crate::thread::spawn(|| {
                        assert!(crate::thread::in_user_thread());
                        // SAFETY: getppid takes no arguments.
                        unsafe { crate::syscall(libc::SYS_getppid, [0; 6]) }
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("no panic"))
                .collect::<Vec<_>>()
        });
        assert!(results.iter().all(|&r| r == ppid), "{results:?}");
        let stats = scheduler.stats();
        match &stats.mode {
            crate::Mode::Service { .. } => {
                let getppid = stats.syscalls[libc::SYS_getppid as usize];
                assert!(
                    getppid.delegated >= 100,
                    "posted to the scheduler's pages: {getppid:?}"
                );
            }
            crate::Mode::Direct { reason } => eprintln!("SKIPPED the delegation check: {reason}"),
        }
    }
}
