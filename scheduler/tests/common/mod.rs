//! Helpers shared by the integration tests: bounded waits, child processes, and the
//! scenarios that run both here and in a child confined to one core.
#![allow(dead_code)] // each test binary uses a different part

pub mod scenarios;
#[path = "../../../kernel-side/tests/support/sevens.rs"]
pub mod sevens;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Every wait in these tests gives up after this long. It turns a hang into a failure and
/// is no speed check: the kernel threads are pinned, so with another process busy on one
/// of the two cores, a user thread there runs only in that core's turns (a few ms each),
/// and a ping-pong of 10,000 rounds that takes 0.3 s on a quiet machine took 3.5 s beside
/// one busy loop and up to ~30 s beside a full test run.
pub const LIMIT: Duration = Duration::from_secs(120);

/// The environment variable that tells a re-executed test binary which role to play.
pub const CHILD_ROLE: &str = "FLEXSC_SCHEDULER_TEST_CHILD";

/// Tests of one binary take turns: each starts its own pinned kernel threads and service
/// threads, and on a 2-vCPU machine two schedulers spinning at once only slow each other.
pub fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on its own thread and returns its result, failing the test if it takes more
/// than [`LIMIT`] (a hang is a failure, not a stuck test run). A panic in `f` fails the
/// test with its message.
pub fn within_limit<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("test: {what}"))
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .expect("start the test's thread");
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("{what}: did not finish within {LIMIT:?}"),
    }
}

/// The role this process plays, if it is a re-executed child.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ROLE).ok()
}

/// Re-executes this test binary to run test `test` alone with `role` set, on the cores in
/// `cores` if given, and returns its output (killing it after [`LIMIT`]).
pub fn run_child(test: &str, role: &str, cores: Option<&[usize]>) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, role)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cores) = cores {
        // SAFETY: a cpu_set_t is plain data; sched_setaffinity is async-signal-safe (a
        // plain system call), so it may run between fork and exec. It confines the child
        // and every thread it will start.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &core in cores {
            // SAFETY: `set` is a valid cpu_set_t and `core` is below CPU_SETSIZE.
            unsafe { libc::CPU_SET(core, &mut set) };
        }
        // SAFETY: see above.
        unsafe {
            command.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = command.spawn().expect("re-execute the test binary");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(output) => {
            let output = output.expect("collect the child's output");
            // A passing test shows its own output only on request, its child's never:
            // pass on why the child skipped, for `scripts/test.sh`'s list.
            for stream in [&output.stdout, &output.stderr] {
                let text = String::from_utf8_lossy(stream);
                for line in text
                    .lines()
                    .filter(|l| l.to_ascii_lowercase().contains("skipped"))
                {
                    eprintln!("{line}");
                }
            }
            output
        }
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid; at worst it is already gone.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("child {role} did not finish within {LIMIT:?}");
        }
    }
}

/// Runs test `test` in a child process with `role` ([`run_child`]) and asserts that it
/// passed, showing its output if it did not.
pub fn assert_child_passes(test: &str, role: &str) {
    let out = run_child(test, role, None);
    if !out.status.success() {
        show(&out);
    }
    assert!(out.status.success(), "child {role}: {:?}", out.status);
}

/// Prints a child's output (for the failure message of the test that ran it).
pub fn show(output: &Output) {
    let mut err = std::io::stderr();
    let _ = writeln!(err, "--- child stdout ---");
    let _ = err.write_all(&output.stdout);
    let _ = writeln!(err, "--- child stderr ---");
    let _ = err.write_all(&output.stderr);
}
