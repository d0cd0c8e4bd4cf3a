//! Credentials and confinement: a service thread must never act for a thread with
//! privileges that thread gave up.
//!
//! Every test changes its process's credentials or installs filters, so each runs in a
//! child process: the test binary re-executed for that one test, with `child::CHILD_ENV` set.
//! They need root (to create a file only root may read, and to drop to another user);
//! without it every test says why and returns.
#![deny(unsafe_op_in_unsafe_fn)]

#[path = "support/child.rs"]
mod child;
#[path = "support/wait.rs"]
mod wait;
use child::is_child;

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use flexsc_kernel_side::runtime::allowed_cpus;
use flexsc_kernel_side::{Mode, Runtime};
use flexsc_shim::{Shared, Submitter};

/// The bound of every wait in this file.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Where the child finds the file only root may read.
const SECRET_ENV: &str = "FLEXSC_SECURITY_TEST_SECRET";
/// The user and group the tests drop to.
const NOBODY: u64 = 65534;

const EACCES: i64 = -(libc::EACCES as i64);
const EPERM: i64 = -(libc::EPERM as i64);

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const LANDLOCK_CREATE_RULESET_VERSION: u64 = 1 << 0;
const LANDLOCK_ACCESS_FS_READ_FILE: u64 = 1 << 2;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Whether the parent side of a test can run here; says why not when it cannot.
fn can_run(test: &str) -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("{test}: skipped: needs root (to make a root-only file and drop to uid {NOBODY})");
        return false;
    }
    if allowed_cpus().len() < 2 {
        eprintln!("{test}: skipped: needs two usable cores to run service threads");
        return false;
    }
    true
}

/// A directory others may traverse holding a file only root may read. Keep the returned
/// directory alive while the file is used.
fn root_only_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod 0755 the directory");
    let path = dir.path().join("secret");
    let mut file = File::create(&path).expect("create the file");
    file.write_all(b"root only").expect("write the file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 0600 the file");
    (dir, path)
}

/// Runs `test` in a child process with the root-only file's path; fails the test if the
/// child fails or does not finish in time.
fn run_in_child(test: &str) {
    let (_dir, secret) = root_only_file();
    let (status, output) = run_child(test, &[(SECRET_ENV, secret.as_os_str())]);
    assert!(status.success(), "child failed ({status}):\n{output}");
}

/// Runs `test` alone in a child process (see `support/child.rs`), with `env` added.
fn run_child(test: &str, env: &[(&str, &OsStr)]) -> (ExitStatus, String) {
    child::run_child(test, env, TIMEOUT)
}

/// Child side: the root-only file's path.
fn secret() -> CString {
    let path = std::env::var_os(SECRET_ENV).expect("the secret file's path");
    CString::new(path.as_bytes()).expect("a path without NUL")
}

/// Child side: a runtime with a service thread.
fn runtime() -> Runtime {
    let rt = Runtime::builder().build().expect("build a runtime");
    assert!(
        matches!(rt.mode(), Mode::Service { .. }),
        "expected service threads: {}",
        rt.mode()
    );
    rt
}

fn nr(n: libc::c_long) -> u64 {
    n as u64
}

/// openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC) through `sub`; closes what it opened.
fn open_ro(sub: &mut Submitter, path: &CStr) -> i64 {
    let args = [
        libc::AT_FDCWD as u64,
        path.as_ptr() as u64,
        (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
        0,
        0,
        0,
    ];
    // SAFETY: openat reads the NUL-terminated path, which outlives the call.
    let ret = unsafe { sub.call(nr(libc::SYS_openat), args) };
    if ret >= 0 {
        // SAFETY: a descriptor openat just returned, owned by nobody else.
        drop(unsafe { OwnedFd::from_raw_fd(ret as i32) });
    }
    ret
}

fn getppid(sub: &mut Submitter) -> i64 {
    // SAFETY: getppid takes no arguments and changes nothing.
    unsafe { sub.call(nr(libc::SYS_getppid), [0; 6]) }
}

/// A credential call through `sub` with three identical ids (setresuid, setresgid).
fn set_ids(sub: &mut Submitter, call: libc::c_long, id: u64) -> i64 {
    // SAFETY: changes this thread's credentials only; no pointers.
    unsafe { sub.call(nr(call), [id, id, id, 0, 0, 0]) }
}

/// (delegated, direct) openat calls counted on `sub`'s page.
fn openat_counts(shared: &Shared, sub: &Submitter) -> (u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = shared
        .page(sub.page_index())
        .expect("the page")
        .counters(nr(libc::SYS_openat));
    (c.delegated.load(Relaxed), c.direct.load(Relaxed))
}

/// The real, effective, saved and fs uids of this thread, from the kernel.
fn thread_uid() -> u64 {
    // SAFETY: getuid has no arguments; the raw instruction asks about this thread.
    unsafe { flexsc_shim::sys::syscall6(nr(libc::SYS_getuid), [0; 6]) as u64 }
}

/// The `Uid:` line of every `flexsc-svc-*` thread of this process.
fn service_thread_uids() -> Vec<String> {
    let mut uids = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = entry.expect("a task").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("flexsc-svc-") {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).expect("task status");
        let line = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .expect("a Uid line");
        uids.push(line.split_whitespace().skip(1).collect::<Vec<_>>().join(" "));
    }
    assert!(!uids.is_empty(), "no service thread found");
    uids
}

/// A thread with a submitter of its own that opens `path` when told to, and answers
/// with the result and its own uid. Its credentials and filters are those of the thread
/// that spawns it, at that moment.
fn opener(shared: &Arc<Shared>, path: CString) -> (mpsc::Sender<()>, JoinHandle<(i64, u64)>) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let shared = Arc::clone(shared);
    let handle = std::thread::spawn(move || {
        let mut sub = Submitter::new(shared).expect("a syscall page");
        go_rx.recv_timeout(TIMEOUT).expect("the signal to open");
        (open_ro(&mut sub, &path), thread_uid())
    });
    (go_tx, handle)
}

fn join<T>(handle: JoinHandle<T>) -> T {
    wait::join_within(TIMEOUT, handle, "a thread")
}

/// What a thread that did not exist when its creator gave something up gets: a fresh
/// submitter on the creator's thread, and a thread the creator spawns afterwards.
fn fresh_submitters_after_isolation(shared: &Arc<Shared>, path: &CStr) -> (i64, i64) {
    let mut same_thread = Submitter::new(Arc::clone(shared)).expect("a syscall page");
    let on_same_thread = open_ro(&mut same_thread, path);
    let path = path.to_owned();
    let shared = Arc::clone(shared);
    let spawned = std::thread::spawn(move || {
        let mut sub = Submitter::new(shared).expect("a syscall page");
        open_ro(&mut sub, &path)
    });
    (on_same_thread, join(spawned))
}

// ---------------------------------------------------------------------------------------
// 1. Credentials
// ---------------------------------------------------------------------------------------

/// Drops this thread to uid/gid 65534 with raw calls through `sub`; checks each isolates.
fn drop_to_nobody_through(sub: &mut Submitter) {
    assert!(!sub.is_isolated());
    // SAFETY: setgroups(0, NULL) reads no memory and changes this thread's groups only.
    let ret = unsafe { sub.call(nr(libc::SYS_setgroups), [0; 6]) };
    assert_eq!(ret, 0, "setgroups");
    assert!(sub.is_isolated(), "setgroups isolates the thread");
    assert_eq!(set_ids(sub, libc::SYS_setresgid, NOBODY), 0, "setresgid");
    assert_eq!(set_ids(sub, libc::SYS_setresuid, NOBODY), 0, "setresuid");
    assert!(sub.is_isolated());
    assert_eq!(thread_uid(), NOBODY, "this thread is nobody now");
}

#[test]
fn credential_drop_through_the_submitter_isolates_the_thread() {
    const TEST: &str = "credential_drop_through_the_submitter_isolates_the_thread";
    if is_child(TEST) {
        let path = secret();
        let rt = runtime();
        let shared = Arc::clone(rt.shared());
        let mut sub = rt.submitter().expect("a syscall page");
        assert!(open_ro(&mut sub, &path) >= 0, "root opens the file");
        assert_eq!(openat_counts(&shared, &sub), (1, 0), "the open was delegated");

        // A thread that never changes its credentials. (Spawned now: a thread spawned
        // after the drop would inherit the dropped credentials.)
        let (go, other) = opener(&shared, path.clone());

        drop_to_nobody_through(&mut sub);
        // Raw calls change this thread only: the service thread is still root...
        assert!(
            service_thread_uids().iter().all(|u| u == "0 0 0 0"),
            "service threads: {:?}",
            service_thread_uids()
        );
        // ...so this thread no longer delegates: its open runs here, as nobody.
        assert_eq!(open_ro(&mut sub, &path), EACCES);
        assert_eq!(openat_counts(&shared, &sub), (1, 1), "the second open ran here");
        assert_eq!(getppid(&mut sub), i64::from(std::os::unix::process::parent_id()));

        // The other thread is still root in the kernel, so its open succeeds, as it would
        // directly. It runs on that thread: isolation is process-wide (threads created
        // after a drop inherit it, and no submitter can tell them apart), so after the
        // drop no thread delegates.
        go.send(()).unwrap();
        let (ret, uid) = join(other);
        assert_eq!(uid, 0, "the other thread is still root");
        assert!(ret >= 0, "the other (root) thread opens the file: {ret}");
        let total = rt.stats().syscalls[libc::SYS_openat as usize];
        assert_eq!((total.delegated, total.direct), (1, 2));
        return;
    }
    if can_run(TEST) {
        run_in_child(TEST);
    }
}

#[test]
fn glibc_credential_change_reaches_the_service_threads() {
    const TEST: &str = "glibc_credential_change_reaches_the_service_threads";
    if is_child(TEST) {
        let path = secret();
        let rt = runtime();
        let shared = Arc::clone(rt.shared());
        let mut sub = rt.submitter().expect("a syscall page");
        assert!(open_ro(&mut sub, &path) >= 0, "root opens the file");
        let nobody = NOBODY as libc::uid_t;
        // glibc applies these to every thread of the process, service threads included.
        // SAFETY: plain libc calls with no pointers (setgroups with an empty list).
        let rets = unsafe {
            [
                libc::setgroups(0, std::ptr::null()),
                libc::setresgid(nobody, nobody, nobody),
                libc::setresuid(nobody, nobody, nobody),
            ]
        };
        assert_eq!(rets, [0, 0, 0], "{}", std::io::Error::last_os_error());
        assert!(!sub.is_isolated(), "the submitter did not see these calls");
        let want = format!("{NOBODY} {NOBODY} {NOBODY} {NOBODY}");
        assert!(
            service_thread_uids().iter().all(|u| *u == want),
            "service threads: {:?}",
            service_thread_uids()
        );
        // Still delegated, and refused: the service thread runs it as nobody.
        assert_eq!(open_ro(&mut sub, &path), EACCES);
        assert_eq!(openat_counts(&shared, &sub), (2, 0), "both opens were delegated");
        return;
    }
    if can_run(TEST) {
        run_in_child(TEST);
    }
}

/// Regression (found failing, since fixed): isolation belongs to a `Submitter`, not to the kernel thread. A
/// thread spawned by a thread that dropped its credentials inherits the dropped
/// credentials, but its new submitter starts out not isolated, so its calls are run by a
/// service thread that is still root. The same holds for a second submitter created on
/// the dropping thread itself. Either way a non-root thread opens a root-only file.
#[test]
fn submitters_created_after_a_credential_drop_do_not_regain_root() {
    const TEST: &str = "submitters_created_after_a_credential_drop_do_not_regain_root";
    if is_child(TEST) {
        let path = secret();
        let rt = runtime();
        let shared = Arc::clone(rt.shared());
        let mut sub = rt.submitter().expect("a syscall page");
        drop_to_nobody_through(&mut sub);
        assert_eq!(open_ro(&mut sub, &path), EACCES);
        let (same_thread, spawned) = fresh_submitters_after_isolation(&shared, &path);
        assert_eq!(
            (same_thread, spawned),
            (EACCES, EACCES),
            "(second submitter on the thread that dropped to nobody, submitter of a thread \
             it spawned afterwards): both run as nobody in the kernel and must be refused"
        );
        return;
    }
    if can_run(TEST) {
        run_in_child(TEST);
    }
}

// ---------------------------------------------------------------------------------------
// 2. Seccomp
// ---------------------------------------------------------------------------------------

fn bpf_stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn bpf_jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// A filter that answers openat with EPERM on x86-64 and allows everything else.
/// `seccomp_data`: `nr` at offset 0, `arch` at offset 4.
fn deny_openat() -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    vec![
        bpf_stmt(BPF_LD | BPF_W | BPF_ABS, 4),
        // Another architecture: allow (jump to the last instruction).
        bpf_jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        bpf_stmt(BPF_LD | BPF_W | BPF_ABS, 0),
        bpf_jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_openat as u32, 0, 1),
        bpf_stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        bpf_stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// How a filter is installed through the submitter.
#[derive(Clone, Copy)]
enum Install {
    /// seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog)
    Seccomp,
    /// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)
    Prctl,
}

/// Sets no_new_privs on this thread (directly: it alone does not isolate) and installs
/// [`deny_openat`] through `sub`.
fn install_deny_openat(sub: &mut Submitter, how: Install) {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes no pointers and affects this thread only.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(ret, 0, "no_new_privs: {}", std::io::Error::last_os_error());
    assert!(!sub.is_isolated());
    let mut filter = deny_openat();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    let prog_ptr = &prog as *const libc::sock_fprog as u64;
    let (call, args) = match how {
        Install::Seccomp => (
            libc::SYS_seccomp,
            [libc::SECCOMP_SET_MODE_FILTER as u64, 0, prog_ptr, 0, 0, 0],
        ),
        Install::Prctl => (
            libc::SYS_prctl,
            [
                libc::PR_SET_SECCOMP as u64,
                libc::SECCOMP_MODE_FILTER as u64,
                prog_ptr,
                0,
                0,
                0,
            ],
        ),
    };
    // SAFETY: the kernel copies the program, which `prog` and `filter` keep alive for the
    // call; the filter only refuses openat on this thread.
    let ret = unsafe { sub.call(nr(call), args) };
    assert_eq!(ret, 0, "installing the filter");
    assert!(sub.is_isolated(), "installing a filter isolates the thread");
}

fn seccomp_child(how: Install) {
    let path = secret();
    let rt = runtime();
    let shared = Arc::clone(rt.shared());
    let mut sub = rt.submitter().expect("a syscall page");
    assert!(open_ro(&mut sub, &path) >= 0, "no filter yet");
    // A thread spawned before the filter: it never gets one.
    let (go, other) = opener(&shared, path.clone());

    install_deny_openat(&mut sub, how);
    assert_eq!(open_ro(&mut sub, &path), EPERM, "openat through the submitter");
    assert_eq!(openat_counts(&shared, &sub), (1, 1), "the filtered open ran here");
    // SAFETY: the raw instruction on this thread, to show the filter is in place.
    let raw = unsafe {
        flexsc_shim::sys::syscall6(
            nr(libc::SYS_openat),
            [libc::AT_FDCWD as u64, path.as_ptr() as u64, 0, 0, 0, 0],
        )
    };
    assert_eq!(raw, EPERM);
    assert_eq!(getppid(&mut sub), i64::from(std::os::unix::process::parent_id()));

    // The unfiltered thread still opens files, delegated.
    go.send(()).unwrap();
    let (ret, _) = join(other);
    assert!(ret >= 0, "a thread without the filter opens the file: {ret}");
}

#[test]
fn seccomp_filter_through_the_submitter_confines_the_thread() {
    const TEST: &str = "seccomp_filter_through_the_submitter_confines_the_thread";
    if is_child(TEST) {
        seccomp_child(Install::Seccomp);
        return;
    }
    if can_run(TEST) {
        run_in_child(TEST);
    }
}

#[test]
fn prctl_seccomp_through_the_submitter_confines_the_thread() {
    const TEST: &str = "prctl_seccomp_through_the_submitter_confines_the_thread";
    if is_child(TEST) {
        seccomp_child(Install::Prctl);
        return;
    }
    if can_run(TEST) {
        run_in_child(TEST);
    }
}

/// Regression (found failing, since fixed): as for credentials, a seccomp filter is inherited by threads the
/// filtered thread spawns, but their submitters are not isolated, so their openat runs on
/// an unfiltered service thread and succeeds: the filter is escaped. Likewise a second
/// submitter on the filtered thread itself.
#[test]
fn submitters_created_after_seccomp_stay_filtered() {
    const TEST: &str = "submitters_created_after_seccomp_stay_filtered";
    if is_child(TEST) {
        let path = secret();
        let rt = runtime();
        let shared = Arc::clone(rt.shared());
        let mut sub = rt.submitter().expect("a syscall page");
        install_deny_openat(&mut sub, Install::Seccomp);
        assert_eq!(open_ro(&mut sub, &path), EPERM);
        let (same_thread, spawned) = fresh_submitters_after_isolation(&shared, &path);
        assert_eq!(
            (same_thread, spawned),
            (EPERM, EPERM),
            "(second submitter on the filtered thread, submitter of a thread it spawned \
             afterwards): both threads carry the filter and must get EPERM"
        );
        return;
    }
    if can_run(TEST) {
        run_in_child(TEST);
    }
}

// ---------------------------------------------------------------------------------------
// 3. Landlock
// ---------------------------------------------------------------------------------------

/// The Landlock ABI version, or `None` if the kernel does not offer Landlock.
fn landlock_abi() -> Option<i64> {
    // SAFETY: with a null attribute, size 0 and the VERSION flag, the call only answers
    // the ABI version; it reads and writes no memory.
    let abi = unsafe {
        flexsc_shim::sys::syscall6(
            nr(libc::SYS_landlock_create_ruleset),
            [0, 0, LANDLOCK_CREATE_RULESET_VERSION, 0, 0, 0],
        )
    };
    (abi >= 1).then_some(abi)
}

/// Restricts this thread, through `sub`, to reading no file at all.
fn restrict_reading(sub: &mut Submitter) {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes no pointers and affects this thread only.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(ret, 0, "no_new_privs: {}", std::io::Error::last_os_error());
    // struct landlock_ruleset_attr { __u64 handled_access_fs; ... }: the first field is
    // enough for ABI 1 and later.
    let attr: u64 = LANDLOCK_ACCESS_FS_READ_FILE;
    let args = [&attr as *const u64 as u64, 8, 0, 0, 0, 0];
    // SAFETY: the kernel reads 8 bytes of `attr`, which outlives the call.
    let ruleset = unsafe { sub.call(nr(libc::SYS_landlock_create_ruleset), args) };
    assert!(ruleset >= 0, "landlock_create_ruleset: {ruleset}");
    assert!(!sub.is_isolated(), "creating a ruleset confines nothing");
    // SAFETY: restricts this thread; no pointers.
    let ret = unsafe {
        sub.call(
            nr(libc::SYS_landlock_restrict_self),
            [ruleset as u64, 0, 0, 0, 0, 0],
        )
    };
    assert_eq!(ret, 0, "landlock_restrict_self");
    assert!(sub.is_isolated(), "landlock_restrict_self isolates the thread");
    // SAFETY: the ruleset descriptor is ours and no longer needed.
    drop(unsafe { OwnedFd::from_raw_fd(ruleset as i32) });
}

fn landlock_supported(test: &str) -> bool {
    match landlock_abi() {
        Some(_) => true,
        None => {
            eprintln!("{test}: skipped: this kernel does not offer Landlock");
            false
        }
    }
}

#[test]
fn landlock_through_the_submitter_confines_the_thread() {
    const TEST: &str = "landlock_through_the_submitter_confines_the_thread";
    if is_child(TEST) {
        let path = secret();
        let rt = runtime();
        let shared = Arc::clone(rt.shared());
        let mut sub = rt.submitter().expect("a syscall page");
        assert!(open_ro(&mut sub, &path) >= 0, "not restricted yet");
        let (go, other) = opener(&shared, path.clone());
        restrict_reading(&mut sub);
        assert_eq!(open_ro(&mut sub, &path), EACCES);
        let exe = std::env::current_exe().expect("the test binary's path");
        let exe = CString::new(exe.as_os_str().as_bytes()).expect("a path without NUL");
        assert_eq!(open_ro(&mut sub, &exe), EACCES, "no file may be read");
        go.send(()).unwrap();
        let (ret, _) = join(other);
        assert!(ret >= 0, "an unrestricted thread opens the file: {ret}");
        return;
    }
    if can_run(TEST) && landlock_supported(TEST) {
        run_in_child(TEST);
    }
}

/// Regression (found failing, since fixed): a Landlock domain is inherited by threads the restricted thread
/// spawns, but their submitters are not isolated, so a service thread outside the domain
/// opens files for them. Likewise a second submitter on the restricted thread itself.
#[test]
fn submitters_created_after_landlock_stay_restricted() {
    const TEST: &str = "submitters_created_after_landlock_stay_restricted";
    if is_child(TEST) {
        let path = secret();
        let rt = runtime();
        let shared = Arc::clone(rt.shared());
        let mut sub = rt.submitter().expect("a syscall page");
        restrict_reading(&mut sub);
        assert_eq!(open_ro(&mut sub, &path), EACCES);
        let (same_thread, spawned) = fresh_submitters_after_isolation(&shared, &path);
        assert_eq!(
            (same_thread, spawned),
            (EACCES, EACCES),
            "(second submitter on the restricted thread, submitter of a thread it spawned \
             afterwards): both are in the Landlock domain and must be refused"
        );
        return;
    }
    if can_run(TEST) && landlock_supported(TEST) {
        run_in_child(TEST);
    }
}
