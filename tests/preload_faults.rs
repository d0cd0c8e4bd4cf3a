//! Unmodified programs that are rough with descriptors and processes, run natively and
//! under `flexsc run` (C fixtures in `tests/fixtures`, compiled at test time): closing
//! every descriptor, close_range, exhausting RLIMIT_NOFILE, fork while other threads have
//! calls in flight, exec from a thread that is not main, SIGKILL of children, io_uring
//! made unavailable by a seccomp filter, and the whole process confined to one core.
//! Output, exit status and files must be the same as natively.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    check_consistent, check_delegated, compile_c, flexsc, num, read_json, run_bounded, which, Case, Ran,
    RUN_TIMEOUT,
};

fn c_program(source: &str, test: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("flexsc-faults-")
        .tempdir()
        .expect("temporary folder");
    let exe = compile_c(source, dir.path(), &[], false, test)?;
    Some((dir, exe))
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Runs `fdchaos MODE` natively and under `flexsc run` (always and adaptive), compares
/// everything, and returns the native output.
fn fdchaos(mode: &str, test: &str) -> Option<String> {
    fdchaos_with(mode, test, &[])
}

/// [`fdchaos`] with environment variables set for every run.
fn fdchaos_with(mode: &str, test: &str, env: &[(&str, &str)]) -> Option<String> {
    let (_bin, exe) = c_program("fdchaos.c", test)?;
    let mut case = Case::new(&format!("fdchaos {mode}"), &[p(&exe), mode]);
    for (k, v) in env {
        case = case.env(k, v);
    }
    let r = case.run();
    assert!(
        r.native.success(),
        "native run of fdchaos {mode} failed ({}):\n{}{}",
        r.native.status_text(),
        r.native.out(),
        r.native.err()
    );
    Some(r.native.out())
}

#[test]
fn program_that_closes_every_descriptor_still_works() {
    let Some(out) = fdchaos("closeall", "program_that_closes_every_descriptor_still_works") else {
        return;
    };
    // Closed 0 and 2: the program's next opens get 0, 2, 3, as POSIX says, under flexsc
    // too (the runtime's descriptors are out of the way).
    assert_eq!(
        out,
        "closeall: work differed in 0 records; new descriptors 0 2 3\n"
    );
}

/// A program that closes every descriptor from 3 up, in each of the six ways programs do,
/// neither reaches the runtime's own descriptors (`libc-preload/src/guard.rs`) nor finds
/// them open: its closes of them fail with EBADF, as natively, where nothing is open
/// there. With the io_uring backend for every batch, a ring closed under the program
/// would be noticed by the next batch, and said on stderr (which must be the native run's).
/// Before the guard, all four printed that note, and the walk of /proc/self/fd closed two
/// descriptors more than natively (the ring and the service thread's stat file); and
/// before the guard's own walk (found by a review), so did closefrom without close_range;
/// `__close`, glibc's other name for `close`, closed them until it was interposed too.
#[test]
fn closing_every_descriptor_leaves_the_runtimes_own_open() {
    let test = "closing_every_descriptor_leaves_the_runtimes_own_open";
    if let Err(why) = flexsc_kernel_side::uring::probe() {
        eprintln!("{test}: skipped: the io_uring backend is unavailable here ({why})");
        return;
    }
    let Some((_bin, exe)) = c_program("fdchaos.c", test) else {
        return;
    };
    // The sixth: closefrom where close_range fails (a kernel before 5.9, here a seccomp
    // filter): glibc's own walk of /proc/self/fd closed the runtime's too.
    for how in [
        "syscall",
        "libc",
        "closefrom",
        "proc",
        "__close",
        "closefrom, without close_range",
    ] {
        let args: &[&str] = match how {
            "closefrom, without close_range" => &[p(&exe), "no-close-range"],
            _ => &[p(&exe), "closerange", how],
        };
        let r = Case::new(&format!("fdchaos closerange {how}"), args)
            .env("FLEXSC_BACKEND", "uring")
            .run();
        assert!(
            r.native.success(),
            "native run of fdchaos closerange {how} failed ({}):\n{}{}",
            r.native.status_text(),
            r.native.out(),
            r.native.err()
        );
        // How many closes found one open is the same under flexsc as natively (`Case`
        // compares): descriptors the test's own parent left open count, natively too.
        let out = r.native.out();
        assert!(
            out.starts_with("closerange: lowest free descriptor 3 before work, 3 after; ")
                && out.ends_with(" closes found a descriptor open; work differed in 0 records\n"),
            "{how}: {out}"
        );
    }
}

/// A child of `_Fork` (no atfork handlers; only async-signal-safe calls afterwards) makes
/// calls and executes a program. Its calls were posted to service threads the child does
/// not have, and it hung at the first one (found by a review: `close_range`, then
/// already `open` and `close`).
#[test]
fn a_child_of_raw_fork_makes_its_calls_and_executes() {
    let Some(out) = fdchaos_with(
        "rawfork",
        "a_child_of_raw_fork_makes_its_calls_and_executes",
        &[("FLEXSC_BACKEND", "uring")],
    ) else {
        return;
    };
    assert_eq!(
        out,
        "rawfork: the child's calls ran, and it executed echo\nrawfork: the child ended with status 0; work differed in 0 records\n"
    );
}

/// A sandboxed program (a seccomp filter that kills the process on `SYS_fstat`, which
/// glibc 2.33+ never makes) closes every descriptor: the guard's look at the runtime's
/// numbers must ask only what glibc's own `fstat` asks. Found by a review: it used
/// `SYS_fstat`, and the program died of SIGSYS in its `closefrom`.
#[test]
fn closing_every_descriptor_in_a_sandbox_without_fstat() {
    let Some(out) = fdchaos_with(
        "sandbox",
        "closing_every_descriptor_in_a_sandbox_without_fstat",
        &[("FLEXSC_BACKEND", "uring")],
    ) else {
        return;
    };
    assert_eq!(
        out,
        "sandbox: 0 closes found a descriptor open after closefrom; work differed in 0 records\n"
    );
}

#[test]
fn exhausting_rlimit_nofile_still_works() {
    // Regression (found failing, fixed in kernel-side/src/uring.rs): with a soft
    // RLIMIT_NOFILE under 512 the io_uring descriptor could not move to its floor (256 or
    // half the limit) and stayed on a low number (4 or 5 here), so the program's
    // `open` skipped that number (it does not natively).
    let Some(out) = fdchaos("exhaust", "exhausting_rlimit_nofile_still_works") else {
        return;
    };
    assert_eq!(
        out,
        "exhaust: opened from fd 3 until EMFILE, 0 other descriptors among them; afterwards work differed in 0 records\n"
    );
}

#[test]
fn fork_while_other_threads_have_calls_in_flight() {
    let Some(out) = fdchaos("fork", "fork_while_other_threads_have_calls_in_flight") else {
        return;
    };
    assert_eq!(
        out,
        "fork: 20 of 20 children checked their calls; the threads' records differed in 0\n"
    );
}

#[test]
fn exec_from_a_thread_that_is_not_main() {
    let Some(out) = fdchaos("exec-thread", "exec_from_a_thread_that_is_not_main") else {
        return;
    };
    // Every line the thread wrote before exec is in the file that `cat` printed.
    let want: String = (0..1000)
        .map(|i| format!("line {i} written before exec\n"))
        .collect();
    assert_eq!(out, want);
}

#[test]
fn children_killed_with_sigkill_mid_call() {
    let Some(out) = fdchaos("kill", "children_killed_with_sigkill_mid_call") else {
        return;
    };
    assert_eq!(
        out,
        "kill: 5 of 5 children killed with SIGKILL mid-call; afterwards work differed in 0 records\n"
    );
}

/// Regression (found failing, fixed in `kernel-side/src/diag.rs`): a program that closes
/// stderr and opens a data file (which gets descriptor 2), then closes every descriptor
/// from 3 (the io_uring one too, then), found the runtime's note "io_uring failed ..." in
/// its data file. Notes now go out only while descriptor 2 is still the original stderr.
/// Closing no longer reaches the ring (`libc-preload/src/guard.rs`), so the program now
/// puts /dev/null over it with `dup2`, which still does.
#[test]
fn runtime_notes_never_land_in_the_programs_files() {
    let test = "runtime_notes_never_land_in_the_programs_files";
    let Some((_bin, exe)) = c_program("fdchaos.c", test) else {
        return;
    };
    // io_uring for every batch it can take (so the closed ring is noticed), and one
    // blocking worker (so the "all workers busy" note is due as well).
    let r = Case::new("fdchaos stderr-file", &[p(&exe), "stderr-file"])
        .env("FLEXSC_BACKEND", "uring")
        .env("FLEXSC_WORKERS", "1")
        .run();
    assert_eq!(
        r.native.out(),
        "stderr-file: work differed in 0 records; data.txt holds:\nthe program's own line\n"
    );
}

/// Runs `cmd` (a wrapper and then `flexsc run OPTS --json FILE -- PROGRAM ARGS`, or the
/// program alone when `flexsc_opts` is None) in `dir`, with `env`.
fn run_in(
    dir: &Path,
    wrapper: &[&str],
    flexsc_opts: Option<(&[&str], &Path)>,
    program: &[&str],
    env: &[(&str, &str)],
) -> Ran {
    let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
    if let Some((opts, json)) = flexsc_opts {
        argv.push(p(&flexsc()).to_string());
        argv.push("run".into());
        argv.extend(opts.iter().map(|s| s.to_string()));
        argv.push("--json".into());
        argv.push(p(json).to_string());
        argv.push("--".into());
    }
    argv.extend(program.iter().map(|s| s.to_string()));
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(&mut cmd, RUN_TIMEOUT, &argv.join(" "))
}

/// io_uring made unavailable (a seccomp filter answers io_uring_setup with ENOSYS, as a
/// kernel without io_uring does) while FLEXSC_BACKEND=uring asks for it: the service
/// threads fall back to direct calls, the program's output is unchanged, and calls are
/// still delegated.
#[test]
fn io_uring_unavailable_falls_back_to_direct_batches() {
    let test = "io_uring_unavailable_falls_back_to_direct_batches";
    let Some((bin, noring)) = c_program("noring.c", test) else {
        return;
    };
    let Some(chaos) = compile_c("fdchaos.c", bin.path(), &[], false, test) else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary folder");
    let program = [p(&chaos), "closerange"];
    let native = run_in(work.path(), &[], None, &program, &[]);
    assert!(native.success(), "native: {}{}", native.out(), native.err());
    let json = work.path().join("stats.json");
    let confined = run_in(
        work.path(),
        &[p(&noring)],
        Some((&["--policy", "always"], &json)),
        &program,
        &[("FLEXSC_BACKEND", "uring")],
    );
    assert!(
        confined.success(),
        "under noring: {} {}{}",
        confined.status_text(),
        confined.out(),
        confined.err()
    );
    assert_eq!(
        confined.stdout, native.stdout,
        "output under flexsc without io_uring"
    );
    let v = read_json(&json);
    check_delegated(&v, "flexsc run without io_uring");
    eprintln!(
        "without io_uring: {} of {} calls delegated (batches run directly)",
        num(&v, "/totals/delegated"),
        num(&v, "/totals/calls")
    );
}

/// The whole process confined to one core by `taskset`, so the core a service thread
/// would use is not available: every call runs on its caller, and everything still works.
#[test]
fn process_confined_to_one_core_by_taskset() {
    let test = "process_confined_to_one_core_by_taskset";
    let Some(taskset) = which("taskset") else {
        eprintln!("SKIPPED {test}: `taskset` is not installed");
        return;
    };
    let Some((_bin, chaos)) = c_program("fdchaos.c", test) else {
        return;
    };
    let taskset = p(&taskset).to_string();
    for mode in ["fork", "kill"] {
        let work = tempfile::tempdir().expect("temporary folder");
        let program = [p(&chaos), mode];
        let native = run_in(work.path(), &[&taskset, "-c", "0"], None, &program, &[]);
        assert!(
            native.success(),
            "native {mode}: {}{}",
            native.out(),
            native.err()
        );
        let json = work.path().join("stats.json");
        let one = run_in(
            work.path(),
            &[&taskset, "-c", "0"],
            Some((&["--policy", "always"], &json)),
            &program,
            &[],
        );
        assert!(
            one.success(),
            "{mode} on one core: {} {}{}",
            one.status_text(),
            one.out(),
            one.err()
        );
        assert_eq!(one.out(), native.out(), "{mode}: output on one core under flexsc");
        check_consistent(&read_json(&json), &format!("{mode} on one core"));
    }
}

/// A setuid program owned by another user: the dynamic loader ignores LD_PRELOAD for it
/// (secure mode), so `flexsc run` says so in one line and runs it as it is; its output and
/// exit status are its own.
#[test]
fn setuid_target_is_reported_not_broken() {
    let test = "setuid_target_is_reported_not_broken";
    // SAFETY: geteuid has no memory effects.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED {test}: needs root (to give the program to another user)");
        return;
    }
    let Some((bin, exe)) = c_program("static_hello.c", test) else {
        return;
    };
    // Others must reach the program: the temporary folder is private to root.
    std::fs::set_permissions(bin.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let c = std::ffi::CString::new(p(&exe)).expect("no NUL");
    // SAFETY: chown reads a NUL-terminated path.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0, "chown");
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).expect("chmod u+s");
    let r = common::flexsc_run(&["--policy", "always", "--", p(&exe), "5"], None);
    assert_eq!(r.code, Some(5), "{}: {}", r.status_text(), r.err());
    assert_eq!(r.out(), "static hello\n");
    let err = r.err();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr:\n{err}");
    assert!(lines[0].contains("setuid"), "stderr: {err}");
}
