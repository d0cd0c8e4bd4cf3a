//! M-on-N threads (`flexsc run --threads m-on-n`): unmodified pthread programs run their
//! threads as user threads, with the same output as natively.
//!
//! Each test compares a native run with a run under flexsc, and checks that M-on-N really
//! was in effect (or really fell back) by the number of OS threads the program saw while
//! its threads were alive.

mod common;

use std::path::Path;
use std::process::Command;

use common::{compile_c, flexsc, flexsc_run, need, run_bounded, Ran, RUN_TIMEOUT};

const MN: [&str; 2] = ["--threads", "m-on-n"];

fn native(exe: &Path, args: &[&str], dir: &Path) -> Ran {
    let mut cmd = Command::new(exe);
    cmd.args(args).current_dir(dir);
    run_bounded(&mut cmd, RUN_TIMEOUT, &format!("native {}", exe.display()))
}

fn m_on_n(exe: &Path, args: &[&str], dir: &Path) -> Ran {
    let exe = exe.to_string_lossy();
    let mut all: Vec<&str> = MN.to_vec();
    all.push("--");
    all.push(&exe);
    all.extend_from_slice(args);
    flexsc_run(&all, Some(dir))
}

/// A run under M-on-N with `--json`: what it printed, and its statistics.
fn m_on_n_with_stats(exe: &Path, dir: &Path) -> (Ran, serde_json::Value) {
    let json = dir.join("stats.json");
    let json_arg = json.to_string_lossy().into_owned();
    let exe_arg = exe.to_string_lossy().into_owned();
    let ran = flexsc_run(
        &["--json", &json_arg, "--threads", "m-on-n", "--", &exe_arg],
        Some(dir),
    );
    // Read only if written: a run that failed is reported by the caller's assertions.
    let stats = if json.exists() {
        common::read_json(&json)
    } else {
        serde_json::Value::Null
    };
    (ran, stats)
}

/// The number in "os_threads N" in `text`.
fn os_threads(text: &str) -> usize {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("os_threads ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no os_threads line in {text:?}"))
}

fn assert_same(native: &Ran, mn: &Ran, what: &str) {
    assert!(
        native.success(),
        "{what} natively: {}\n{}",
        native.status_text(),
        native.err()
    );
    assert!(
        mn.success(),
        "{what} under M-on-N: {}\n{}",
        mn.status_text(),
        mn.err()
    );
    assert_eq!(
        native.out(),
        mn.out(),
        "{what}: output differs (stderr under M-on-N: {})",
        mn.err()
    );
}

fn assert_no_fallback(mn: &Ran, what: &str) {
    if flexsc_kernel_side::runtime::allowed_cpus().len() < 2 {
        // No core for a service thread: M-on-N runs threads 1:1 there, by design.
        eprintln!("SKIPPED the M-on-N check of {what}: this process may use only one core");
        return;
    }
    assert!(
        !mn.err().contains("running threads 1:1"),
        "{what}: M-on-N fell back: {}",
        mn.err()
    );
}

#[test]
fn a_thousand_threads_ping_pong_and_do_file_io_as_natively() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_pingpong.c", dir.path(), &[], false, "mn ping-pong") else {
        return;
    };
    let args = ["1000", "100", "20"];
    let n = native(&exe, &args, dir.path());
    let json = dir.path().join("stats.json");
    let json_arg = json.to_string_lossy().into_owned();
    let exe_arg = exe.to_string_lossy().into_owned();
    // A worker per thread: on a loaded machine ext4 answers many of the service thread's
    // non-blocking writes with EAGAIN, and with the default 64 workers all busy the rest
    // are declined (their owners run them, counted as direct: 4,697 of 20,000 in one CI
    // run, 1 run in 10 of this binary). This test is about M-on-N posting every call, not
    // about the pool's bound.
    let mut all = vec![
        "--json",
        json_arg.as_str(),
        "--threads",
        "m-on-n",
        "--workers",
        "1024",
        "--",
        exe_arg.as_str(),
    ];
    all.extend_from_slice(&args);
    let m = flexsc_run(&all, Some(dir.path()));
    assert_same(&n, &m, "mn_pingpong 1000 threads");
    // Every user thread's wrapped call goes through the pages, whatever the policy
    // (1,000 threads x 20 writes).
    let v = common::read_json(&json);
    common::check_consistent(&v, "mn_pingpong --json");
    assert!(
        common::num(&v, "/syscalls/write/delegated") >= 20_000,
        "user threads' writes were not posted:\n{v:#}"
    );
    assert!(m.out().contains("total passes 100000\n"), "{}", m.out());
    assert!(
        m.out().contains("pair 499: 200 passes, files 20 20\n"),
        "{}",
        m.out()
    );
    assert_no_fallback(&m, "mn_pingpong");
}

/// A program whose own allocator locks a pthread mutex (jemalloc, tcmalloc): user threads
/// parked on that lock while it is contended must not allocate through the program's
/// malloc (re-entering the allocator from inside it crashed named in one start in ten).
#[test]
fn a_program_with_its_own_locking_allocator_runs_as_natively() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_own_malloc.c", dir.path(), &["-O1"], false, "mn own malloc") else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    for run in 0..3 {
        let m = m_on_n(&exe, &[], dir.path());
        assert_same(&n, &m, &format!("mn_own_malloc, run {run}"));
        assert_no_fallback(&m, "mn_own_malloc");
    }
}

#[test]
fn per_thread_state_and_pthread_semantics_hold_in_user_threads() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c(
        "mn_tls.c",
        dir.path(),
        &["-fstack-protector-all"],
        false,
        "mn tls",
    ) else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let m = m_on_n(&exe, &[], dir.path());
    assert_same(&n, &m, "mn_tls");
    assert!(m.out().ends_with("all checks passed\n"), "{}", m.out());
    assert_no_fallback(&m, "mn_tls");
    // 64 threads alive: natively 65 OS threads; as user threads only the main thread, the
    // scheduler's kernel thread(s), the service thread(s) and the timer.
    assert_eq!(os_threads(&n.err()), 65, "{}", n.err());
    let mn_threads = os_threads(&m.err());
    assert!(
        mn_threads < 10,
        "M-on-N used {mn_threads} OS threads for 64 threads"
    );
}

#[test]
fn unsupported_requests_before_the_first_thread_fall_back_to_one_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_fallback.c", dir.path(), &[], false, "mn fallback") else {
        return;
    };
    for mode in ["none", "forked"] {
        let m = m_on_n(&exe, &[mode], dir.path());
        assert!(m.success(), "{mode}: {}", m.err());
        assert!(
            os_threads(&m.out()) < 9,
            "{mode}: no fallback expected: {}",
            m.out()
        );
        assert_no_fallback(&m, mode);
    }
    for (mode, why) in [
        ("pshared", "process-shared, robust or priority mutex"),
        ("robust", "process-shared, robust or priority mutex"),
        ("affinity", "pthread_setaffinity_np"),
        ("kill", "pthread_kill"),
    ] {
        let m = m_on_n(&exe, &[mode], dir.path());
        assert!(m.success(), "{mode}: {}", m.err());
        assert_eq!(os_threads(&m.out()), 9, "{mode}: 8 threads plus main, 1:1");
        let err = m.err();
        let notes: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("running threads 1:1"))
            .collect();
        assert_eq!(notes.len(), 1, "{mode}: one note expected: {}", m.err());
        assert!(notes[0].contains(why), "{mode}: {}", notes[0]);
    }
}

#[test]
fn unsupported_requests_after_the_first_thread_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_fallback.c", dir.path(), &[], false, "mn late") else {
        return;
    };
    let m = m_on_n(&exe, &["late"], dir.path());
    assert!(m.success(), "{}", m.err());
    assert!(m.out().contains("late ok\n"), "{}", m.out());
    assert!(os_threads(&m.out()) < 9, "{}", m.out());
    assert_no_fallback(&m, "mn_fallback late");
}

#[test]
fn a_thread_that_forks_leaves_a_child_that_ends_like_a_native_one() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_fork.c", dir.path(), &[], false, "mn fork") else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let m = m_on_n(&exe, &[], dir.path());
    assert_same(&n, &m, "mn_fork");
    assert!(m.out().contains("parent: child exited 0\n"), "{}", m.out());
}

/// Processes started by a user thread (fork, posix_spawn, system, popen) may use the
/// program's cores, as natively: they inherited the one core the user thread's kernel
/// thread is pinned to (and so did every program they executed: `nproc` said 1).
#[test]
fn children_of_user_threads_get_the_programs_cores() {
    let test = "children_of_user_threads_get_the_programs_cores";
    if need("nproc", test).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_affinity.c", dir.path(), &[], false, "mn affinity") else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let cores = flexsc_kernel_side::runtime::allowed_cpus().len();
    assert!(
        n.out()
            .contains(&format!("fork: the child may use {cores} cores\n")),
        "native: {}",
        n.out()
    );
    for policy in ["always", "adaptive"] {
        let exe = exe.to_string_lossy();
        let m = flexsc_run(
            &["--policy", policy, "--threads", "m-on-n", "--", &exe],
            Some(dir.path()),
        );
        assert_same(&n, &m, &format!("mn_affinity, {policy}"));
        assert_no_fallback(&m, "mn_affinity");
    }
}

/// A process limited to one core runs its threads 1:1, with a note: M-on-N without a
/// service thread ran every call on the kernel thread, and a user thread's `poll` of an
/// empty pipe kept the thread that would fill it from ever running (the process hung).
#[test]
fn a_process_limited_to_one_core_runs_its_threads_one_to_one() {
    let test = "a_process_limited_to_one_core_runs_its_threads_one_to_one";
    if need("taskset", test).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_one_core.c", dir.path(), &[], false, "mn one core") else {
        return;
    };
    let core = flexsc_kernel_side::runtime::allowed_cpus()[0].to_string();
    let n = native(&exe, &[], dir.path());
    assert_eq!(n.out(), "done\n", "native: {}", n.err());
    for policy in ["always", "adaptive"] {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", &core])
            .arg(flexsc())
            .args(["run", "--policy", policy, "--threads", "m-on-n", "--"])
            .arg(&exe)
            .current_dir(dir.path());
        let m = run_bounded(&mut cmd, RUN_TIMEOUT, &format!("{test}, {policy}"));
        assert!(m.success(), "{policy}: {}\n{}", m.status_text(), m.err());
        assert_eq!(m.out(), "done\n", "{policy}");
        assert!(
            m.err().contains("no service thread can run") && m.err().contains("running threads 1:1"),
            "{policy}: no note of the fallback: {}",
            m.err()
        );
    }
}

/// A Go program with cgo runs its threads 1:1, with a note, and as natively: its
/// runtime's threads wait in system calls made without libc, which a user thread cannot
/// switch on, and its sysmon thread never stops (every such program hung under M-on-N,
/// 8 of 8 runs in a helper's sweep).
#[test]
fn a_go_program_runs_its_threads_one_to_one() {
    let test = "a_go_program_runs_its_threads_one_to_one";
    let Some(go) = need("go", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("mn_go");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mn_go.go");
    let mut build = Command::new(go);
    build
        .args(["build", "-o"])
        .arg(&exe)
        .arg(&source)
        .current_dir(dir.path())
        .env("GOCACHE", dir.path().join("cache"))
        .env("GOPATH", dir.path().join("gopath"))
        .env("GO111MODULE", "off")
        .env("CGO_ENABLED", "1");
    let built = run_bounded(&mut build, RUN_TIMEOUT, "go build mn_go.go");
    assert!(
        built.success(),
        "go build: {}\n{}",
        built.status_text(),
        built.err()
    );
    let n = native(&exe, &[], dir.path());
    assert!(
        n.out().starts_with("pid known: true sums: "),
        "native: {}{}",
        n.out(),
        n.err()
    );
    for policy in ["always", "adaptive"] {
        let exe = exe.to_string_lossy();
        let m = flexsc_run(
            &["--policy", policy, "--threads", "m-on-n", "--", &exe],
            Some(dir.path()),
        );
        assert!(m.success(), "{policy}: {}\n{}", m.status_text(), m.err());
        assert_eq!(m.out(), n.out(), "{policy}");
        assert!(
            m.err().contains("a Go program's runtime threads") && m.err().contains("running threads 1:1"),
            "{policy}: no note of the fallback: {}",
            m.err()
        );
    }
}

#[test]
fn a_bad_threads_value_is_named_and_the_program_runs_one_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_fallback.c", dir.path(), &[], false, "mn bad value") else {
        return;
    };
    let mut cmd = Command::new(flexsc());
    cmd.env("FLEXSC_THREADS", "many")
        .args(["run", "--"])
        .arg(&exe)
        .arg("none")
        .current_dir(dir.path());
    let r = run_bounded(&mut cmd, RUN_TIMEOUT, "FLEXSC_THREADS=many");
    assert!(r.success(), "{}", r.err());
    assert!(
        r.err()
            .contains("FLEXSC_THREADS=many is not valid (valid: m-on-n or 1:1)"),
        "{}",
        r.err()
    );
    assert_eq!(os_threads(&r.out()), 9);
}

#[test]
fn python_threads_give_the_same_results_as_natively() {
    let Some(python) = need("python3", "python threads under M-on-N") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = common::fixture("mn_threads.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).current_dir(dir.path());
    let n = run_bounded(&mut cmd, RUN_TIMEOUT, "python3 natively");
    let python = python.to_string_lossy();
    let script = script.to_string_lossy();
    let m = flexsc_run(&["--threads", "m-on-n", "--", &python, &script], Some(dir.path()));
    assert_same(&n, &m, "mn_threads.py");
    assert!(m.out().contains("counter 64000\n"), "{}", m.out());
    assert_no_fallback(&m, "mn_threads.py");
    let mn_threads = os_threads(&m.err());
    assert!(
        mn_threads < 10,
        "M-on-N used {mn_threads} OS threads for 32 Python threads"
    );
}

#[test]
fn a_signal_thread_in_sigwait_does_not_stop_the_other_threads() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_signals.c", dir.path(), &[], false, "mn signals") else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let m = m_on_n(&exe, &[], dir.path());
    assert_same(&n, &m, "mn_signals");
    assert!(m.out().contains("workers done: 4000 passes\n"), "{}", m.out());
    for line in [
        "signal thread saw SIGUSR1: yes\n",
        "signal masks are per thread: yes\n",
        "sem_wait interrupted by a handler: EINTR\n",
    ] {
        assert!(m.out().contains(line), "{}", m.out());
    }
    assert_no_fallback(&m, "mn_signals");
}

#[test]
fn a_blocking_read_never_stops_the_kernel_thread_whatever_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_pipe.c", dir.path(), &[], false, "mn pipe") else {
        return;
    };
    let exe = exe.to_string_lossy().into_owned();
    for policy in ["always", "adaptive", "never"] {
        let m = flexsc_run(
            &["--policy", policy, "--threads", "m-on-n", "--", &exe],
            Some(dir.path()),
        );
        assert!(m.success(), "{policy}: {}", m.err());
        assert_eq!(m.out(), "read 5 hello\n", "{policy}");
    }
}

/// A user thread that keeps making calls that never wait (`poll` with a zero timeout, run
/// directly while nothing else is ready) until another user thread's posted call has
/// finished: that finished call must still be reaped, and its thread resumed. It never
/// was: the poller counted as alone (no user thread ready) and never switched out, so the
/// loop that reaps never ran; the process hung, as Python's `multiprocessing.Pool` did
/// under M-on-N. With B's call finishing at once (`post`) and after a wait (`block`).
#[test]
fn a_thread_polling_in_a_loop_lets_a_finished_call_resume_its_thread() {
    m_on_n_matches_native("mn_spin_poll.c", &["post", "block"], |mode| {
        format!("{mode}: done (ok)\n")
    });
}

/// A user thread waits inside one of glibc's own functions, for another user thread:
/// stdio's `fgets` on a pipe the other writes, `fwrite` into a pipe the other drains, a
/// `popen`ed command read with `fgets`, `pclose` of a command that goes on after its
/// input ends, and `system`; the commands talk to the other thread through FIFOs. glibc
/// makes those reads, writes and waits for the shell without passing through an
/// interposed symbol: each stopped the kernel thread, the other thread never ran, and
/// every mode hung (`mn::libc_io`, `mn::system`).
#[test]
fn stdio_and_system_in_a_user_thread_do_not_stop_its_kernel_thread() {
    let shell = |first: &str| format!("{first}answer: got ping\nshell: got pong\nshell available: yes\n");
    let modes = ["fgets", "fwrite", "popen", "pclose", "system"];
    m_on_n_matches_native("mn_inside_libc.c", &modes, |mode| match mode {
        "fgets" => "fgets: hello\n".to_string(),
        "fwrite" => "fwrite: wrote 1048576 bytes\npartner: read 1048576 bytes\n".to_string(),
        "popen" => shell("popen: read done\npclose: exited 3\n"),
        "pclose" => shell("done\npclose: exited 3\n") + "the command read: some input\n",
        _ => shell("done\nsystem: exited 3\n"),
    });
}

/// What `system` must also do as natively, now that M-on-N makes it (a review found the
/// first two wrong): a main thread's and a user thread's calls that overlap leave SIGINT
/// and SIGQUIT at their default afterwards (glibc's count and ours were two, and the
/// later one restored "ignored" for good; Ctrl-C stopped working), and a cancelled user
/// thread's call ends at once and kills the shell (it waited for the command, then sent
/// SIGKILL to a process it had reaped). And `exit` while a thread waits in `fgets` on a
/// pipe ends the process, under M-on-N and 1:1 alike (the preload's flush of every
/// stream at exit waited for that stream's lock for ever). And a user thread blocked
/// writing 1 MiB (`write`, `writev`) into a pipe nobody reads is cancelled as natively
/// (its write waited in flight, where the cancellation never reached it:
/// `mn::write_in_pieces`).
#[test]
fn system_cancellation_signals_and_exit_beside_stdio_are_as_native() {
    m_on_n_matches_native(
        "mn_inside_libc.c",
        &["overlap", "cancel", "exit", "cancel-write", "cancel-writev"],
        |mode| {
            match mode {
            "overlap" => {
                "the thread's shell: SIGINT and SIGQUIT ignored: 0\nafter both: SIGINT default, SIGQUIT default\n"
                    .to_string()
            }
            "cancel" => "cancel: cancelled; the command's rest never ran\n".to_string(),
            "cancel-write" | "cancel-writev" => format!("{mode}: cancelled, cleanup ran\n"),
            _ => "exit: main calls exit\nexit: atexit ran\n".to_string(),
        }
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_inside_libc.c", dir.path(), &[], false, "exit beside fgets") else {
        return;
    };
    let n = native(&exe, &["exit"], dir.path());
    let exe = exe.to_string_lossy();
    for policy in ["always", "adaptive"] {
        let m = flexsc_run(&["--policy", policy, "--", &exe, "exit"], Some(dir.path()));
        assert_same(&n, &m, &format!("exit beside fgets, 1:1, {policy}"));
    }
}

/// `set_tid_address` in a user thread answers the id `gettid()` gives, and at the thread's
/// end the address is cleared and its futex waiter woken, as the kernel does (a helper's
/// sweep: stress-ng's pthread stressor failed, since the call answered the kernel
/// thread's id; and the kernel thread's own address was repointed, so this fixture's
/// wait for the clear hung).
#[test]
fn set_tid_address_in_a_user_thread_is_the_user_threads() {
    m_on_n_matches_native("mn_tid_address.c", &["-"], |_| {
        "set_tid_address answers the thread's id: yes\ncleared at the thread's end: yes\n".to_string()
    });
}

/// Runs the fixture `source` natively with each of `modes` as its argument (its output
/// must be `expected(mode)`), then under M-on-N with each policy: it must succeed with the
/// native output.
fn m_on_n_matches_native(source: &str, modes: &[&str], expected: impl Fn(&str) -> String) {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c(source, dir.path(), &[], false, source) else {
        return;
    };
    let exe = exe.to_string_lossy().into_owned();
    for &mode in modes {
        let n = native(Path::new(&exe), &[mode], dir.path());
        assert_eq!(n.out(), expected(mode), "{source} {mode}, native run");
        for policy in ["always", "adaptive"] {
            let m = flexsc_run(
                &["--policy", policy, "--threads", "m-on-n", "--", &exe, mode],
                Some(dir.path()),
            );
            assert_eq!(
                m.out(),
                n.out(),
                "{source} {mode}, {policy}: output differs from the native run ({})\n{}",
                m.status_text(),
                m.err()
            );
            assert!(m.success(), "{source} {mode}, {policy}: {}", m.status_text());
        }
    }
}

/// `pthread_kill` ends a user thread's `read` or `poll` that waits on an empty pipe with
/// EINTR, as natively, in a program that links `pthread_kill` but not `pthread_cancel`.
/// Only `pthread_cancel` used to make such calls wait in slices where a signal finds them:
/// here the call was posted whole, the signal waited for it to return, and the process
/// hung (Ruby's `Thread#kill` of a reading thread, Java's close of a socket another
/// thread reads from).
#[test]
fn pthread_kill_interrupts_a_user_thread_blocked_in_read_or_poll() {
    m_on_n_matches_native("mn_kill_blocked.c", &["read", "poll"], |call| {
        format!("{call}: -1 Interrupted system call\njoined\n")
    });
}

/// Two user threads open the two ends of a FIFO; each open waits for the other. The
/// first waits on the service thread; the kernel thread's sleep on it is bounded, and the
/// second open is taken back and run on the kernel thread, so both finish (the run hung
/// until its alarm before, whatever the policy). Under `--policy always` glibc's lock
/// waits are replaced too (they were not: the service thread started first).
#[test]
fn a_fifo_opened_by_two_user_threads_does_not_stop_the_kernel_thread() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("fifo_pair.c", dir.path(), &[], false, "fifo pair") else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let exe = exe.to_string_lossy().into_owned();
    for policy in ["always", "adaptive"] {
        let m = flexsc_run(
            &["--policy", policy, "--threads", "m-on-n", "--", &exe],
            Some(dir.path()),
        );
        assert!(m.success(), "{policy}: {} {}", m.status_text(), m.err());
        assert_eq!(m.out(), n.out(), "{policy}: output differs from the native run");
        // `always` starts the service threads in the constructor: glibc's lock waits
        // must be replaced before that, while the process has one thread.
        assert!(
            !m.err().contains("stay in the kernel"),
            "{policy}: glibc's lock waits were not replaced:\n{}",
            m.err()
        );
    }
}

/// pthread_cancel wakes a user thread blocked at a cancellation point, cleanup handlers
/// (both compilations of pthread_cleanup_push) run innermost first before the key
/// destructors, and pthread_kill reaches the user thread it names.
fn cancel_and_kill_as_natively(flags: &[&str], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_cancel.c", dir.path(), flags, false, what) else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let m = m_on_n(&exe, &[], dir.path());
    assert_same(&n, &m, what);
    for line in [
        "  cleanup: the mutex is held by the cancelled thread: yes\n",
        "read on an empty pipe:\n  cleanup: read on an empty pipe\n  joined: canceled\n",
        "  its target, joined by main: value 7\n",
        "  nanosleep with cancellation disabled: 0\n",
        "  the routine ran again for the next caller: yes\n",
        "  cleanup: inner frame\n  cleanup: fourth pushed\n  cleanup: first pushed\n  key destructor: after the handlers\n  joined: value 42\n",
        "  thread 1 signalled, handler ran in it: yes\n",
        "  pthread_sigqueue to thread 2: handler ran in it: yes, value 1234\n",
        "  sleep interrupted by the handler: yes\n",
        "  handler ran in the target once unblocked: yes\n",
    ] {
        assert!(m.out().contains(line), "{what}: no {line:?} in\n{}", m.out());
    }
    assert!(m.out().ends_with("all done\n"), "{}", m.out());
    assert_no_fallback(&m, what);
}

#[test]
fn cancellation_cleanup_handlers_and_pthread_kill_work_like_glibc() {
    cancel_and_kill_as_natively(&[], "mn_cancel");
}

#[test]
fn cleanup_handlers_compiled_with_fexceptions_run_too() {
    cancel_and_kill_as_natively(&["-fexceptions"], "mn_cancel -fexceptions");
}

/// Raw futex calls through `syscall()` (Rust's std, libstdc++): a user thread's private
/// wait parks it on the lot rather than holding a blocking worker, wakes reach user and
/// OS threads alike, and the results (EAGAIN, ETIMEDOUT, EINTR) are the kernel's.
#[test]
fn raw_futex_waits_park_user_threads_and_interoperate_with_os_threads() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_futex.c", dir.path(), &[], false, "mn futex") else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let (m, v) = m_on_n_with_stats(&exe, dir.path());
    assert_same(&n, &m, "mn_futex");
    for line in [
        "ping-pong: 8 pairs, 8000 passes\n",
        "semaphore: 3000 tokens taken by 6 consumers\n",
        "relative 20 ms wait: ETIMEDOUT\n",
        "absolute realtime wait: ETIMEDOUT\n",
        "word differs: EAGAIN\n",
        "main woke the gated threads: yes\n",
        "a thread woke main: yes\n",
        "wait interrupted by a handler: EINTR, handler ran: yes\n",
    ] {
        assert!(m.out().contains(line), "no {line:?} in\n{}", m.out());
    }
    assert_no_fallback(&m, "mn_futex");
    // Before, every user thread's futex call was posted (about 10,000 here, most of them
    // waits that held a blocking worker). Now only the one the lot leaves to the kernel
    // is: the zero-bitset wait, which the kernel answers with EINVAL.
    common::check_consistent(&v, "mn_futex --json");
    let posted = v
        .pointer("/syscalls/futex/delegated")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    assert!(posted <= 1, "user threads' futex calls were posted:\n{v:#}");
}

/// Calls that wait in the kernel without a descriptor to poll: flock, fcntl(F_SETLKW) and
/// lockf(F_LOCK) on locks a child holds, System V semop and msgrcv go to a blocking
/// worker; pause and sigsuspend park the user thread until a signal for it. More threads
/// wait than there are kernel threads, and only other threads end the waits: before, the
/// program hung.
#[test]
fn lock_ipc_and_signal_waits_do_not_stop_the_kernel_thread() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_block.c", dir.path(), &[], false, "mn block") else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let m = m_on_n(&exe, &[], dir.path());
    assert_same(&n, &m, "mn_block");
    for line in [
        "locks: 6 of 6 waiters got their lock once the child let go (child status 0)\n",
        "workers passed 1000 times while 6 threads waited for signals\n",
        "pause: 3 of 3 returned EINTR after a handler\n",
        "sigsuspend: 3 of 3 returned EINTR, old mask back in 3\n",
        "handlers ran: yes\n",
    ] {
        assert!(m.out().contains(line), "no {line:?} in\n{}", m.out());
    }
    assert!(m.out().ends_with("all done\n"), "{}", m.out());
    assert_no_fallback(&m, "mn_block");
}

/// glibc's own locks (a FILE lock, the loader's lock) held by a user thread that sleeps:
/// more threads contend for them than there are kernel threads, and glibc makes them wait
/// with futex calls of its own. Under M-on-N those waits yield the user thread (see
/// `libc-preload/src/mn/libc_locks.rs`); before, they stopped the kernel threads, the
/// sleeping holder never ran again and the fixture's alarm ended the run.
#[test]
fn glibc_lock_waits_do_not_stop_the_kernel_thread() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c("mn_libc_locks.c", dir.path(), &[], false, "mn libc locks") else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let m = m_on_n(&exe, &[], dir.path());
    assert_same(&n, &m, "mn_libc_locks");
    for line in [
        "FILE lock: 16 of 16 waiters got the lock after its holder let go\n",
        "loader lock: 16 of 16 waiters got the lock after its holder let go\n",
    ] {
        assert!(m.out().contains(line), "no {line:?} in\n{}", m.out());
    }
    assert!(m.out().ends_with("all done\n"), "{}", m.out());
    assert!(
        !m.err().contains("stay in the kernel"),
        "glibc's lock waits were not replaced:\n{}",
        m.err()
    );
    assert_no_fallback(&m, "mn_libc_locks");
}

/// glibc's locks under contention, with holders that switch out inside a flockfile
/// region: the FILE lock still excludes (each "a" line is followed by its "b" line),
/// allocations keep their bytes, no line is lost: the same output as natively.
#[test]
fn glibc_locks_keep_excluding_when_their_waits_yield() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile_c(
        "mn_libc_lock_stress.c",
        dir.path(),
        &[],
        false,
        "mn libc lock stress",
    ) else {
        return;
    };
    let n = native(&exe, &[], dir.path());
    let m = m_on_n(&exe, &[], dir.path());
    assert_same(&n, &m, "mn_libc_lock_stress");
    assert_eq!(m.out(), "lines 1462912 pairs_ok 1\n");
    assert_no_fallback(&m, "mn_libc_lock_stress");
}

/// Rust's std (Mutex, Condvar, park, Once, mpsc) waits with raw futex calls: under M-on-N
/// they park user threads (none is posted), with the same output as natively.
#[test]
fn rust_std_sync_runs_on_user_threads_without_posting_futex_waits() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mn_condvar.rs");
    let exe = dir.path().join("mn_condvar");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let built = Command::new(&rustc)
        .args(["-O", "--edition", "2021", "-o"])
        .arg(&exe)
        .arg(&src)
        .status();
    match built {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("rustc {} failed: {s}", src.display()),
        Err(e) => {
            eprintln!("SKIPPED mn condvar: cannot run `{rustc}` ({e})");
            return;
        }
    }
    let n = native(&exe, &[], dir.path());
    let (m, v) = m_on_n_with_stats(&exe, dir.path());
    assert_same(&n, &m, "mn_condvar");
    assert!(
        m.out()
            .starts_with("condvar ping-pong: 12 threads reported, 3600 passes\n"),
        "{}",
        m.out()
    );
    assert_no_fallback(&m, "mn_condvar");
    let posted = v
        .pointer("/syscalls/futex/delegated")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    assert_eq!(posted, 0, "user threads' futex calls were posted:\n{v:#}");
}
