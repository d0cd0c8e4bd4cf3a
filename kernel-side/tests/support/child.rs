//! Running one test of this test binary in a child process of its own: the binary is
//! re-executed for that test alone, with [`CHILD_ENV`] naming it, so a test can change
//! process-wide state (credentials, seccomp, CPU affinity, rlimits) without touching the
//! others. Shared by the kernel-side test files (`#[path = "support/child.rs"] mod child;`).

use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The variable that tells a re-executed test binary which test runs in child role.
pub const CHILD_ENV: &str = "FLEXSC_TEST_CHILD";

/// Whether this process is the child run for `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var_os(CHILD_ENV).is_some_and(|v| v == test)
}

/// Re-executes this test binary to run only `test`, in child role, with `env` added; kills
/// it after `timeout`. Returns its exit status and everything it printed.
pub fn run_child(test: &str, env: &[(&str, &OsStr)], timeout: Duration) -> (ExitStatus, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = tempfile::tempfile().expect("a temporary file");
    let mut command = Command::new(exe);
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out.try_clone().expect("dup"));
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("re-execute the test binary");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child for {test} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Read from the start: the shared file offset is where the child stopped writing.
    let mut bytes = vec![0u8; out.metadata().map(|m| m.len() as usize).unwrap_or(0)];
    let _ = out.read_exact_at(&mut bytes, 0);
    let printed = String::from_utf8_lossy(&bytes).into_owned();
    // A passing test shows its own output only on request, its child's never: pass on
    // why the child skipped, for `scripts/test.sh`'s list.
    // (From the word on: the child's stdout and stderr share the file, so the harness's
    // "test NAME ... " may precede it on the line.)
    for line in printed.lines() {
        if let Some(at) = line.to_ascii_lowercase().find("skipped") {
            eprintln!("{}", &line[at..]);
        }
    }
    (status, printed)
}
