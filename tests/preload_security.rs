//! The security tests of the syscall pages (credential drop, seccomp, Landlock), for the
//! LD_PRELOAD path: a C program (`tests/fixtures/confine.c`) whose threads make calls
//! (so the service threads run, as root), then one thread gives a privilege up, and
//! threads old and new try to open a file only root may read. Natively and under
//! `flexsc run` (always and adaptive) every answer must be the same: a service thread
//! never opens the file for a thread that gave the right up.
//!
//! They need root (to make a file only root may read, and to drop to another user);
//! without it each test says why and returns.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{compile_c, Case};

fn is_root() -> bool {
    // SAFETY: geteuid has no memory effects.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `confine MODE SECRET` natively and under `flexsc run`, and returns the native
/// output (the comparison is `Case::run`'s).
fn confine(mode: &str, test: &str) -> Option<String> {
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root (to make a root-only file and drop to uid 65534)");
        return None;
    }
    let bin = tempfile::tempdir().expect("temporary folder");
    let exe = compile_c("confine.c", bin.path(), &[], false, test)?;
    // A folder others may enter, holding a file only root may read.
    let secret_dir = tempfile::tempdir().expect("temporary folder");
    std::fs::set_permissions(secret_dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let secret = secret_dir.path().join("secret");
    std::fs::write(&secret, "root only\n").expect("write the secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let r = Case::new(&format!("confine {mode}"), &[path(&exe), mode, path(&secret)]).run();
    assert!(
        r.native.success(),
        "native run failed: {}{}",
        r.native.out(),
        r.native.err()
    );
    Some(r.native.out())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn credential_drop_under_the_preload() {
    let Some(out) = confine("setuid", "credential_drop_under_the_preload") else {
        return;
    };
    // glibc changes the credentials of every thread of the process.
    assert_eq!(
        out,
        "before the drop: opened and read\n\
         the thread that dropped: EACCES\n\
         a thread it created afterwards: EACCES\n\
         a thread that existed before: EACCES\n\
         main, afterwards: EACCES\n\
         a thread main created afterwards: EACCES\n"
    );
}

#[test]
fn seccomp_filter_under_the_preload() {
    let Some(out) = confine("seccomp", "seccomp_filter_under_the_preload") else {
        return;
    };
    // The filter binds the thread that installed it and the threads it creates.
    assert_eq!(
        out,
        "before the drop: opened and read\n\
         the thread that dropped: EPERM\n\
         a thread it created afterwards: EPERM\n\
         a thread that existed before: opened and read\n\
         main, afterwards: opened and read\n\
         a thread main created afterwards: opened and read\n"
    );
}

#[test]
fn landlock_under_the_preload() {
    let Some(out) = confine("landlock", "landlock_under_the_preload") else {
        return;
    };
    if out.starts_with("landlock unsupported") {
        eprintln!("SKIPPED landlock_under_the_preload: the kernel has no Landlock ({out})");
        return;
    }
    assert_eq!(
        out,
        "before the drop: opened and read\n\
         the thread that dropped: EACCES\n\
         a thread it created afterwards: EACCES\n\
         a thread that existed before: opened and read\n\
         main, afterwards: opened and read\n\
         a thread main created afterwards: opened and read\n"
    );
}
