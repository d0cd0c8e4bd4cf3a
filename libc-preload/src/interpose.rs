//! The interposed libc functions. Each maps to exactly the system call glibc 2.36 makes for
//! it on x86-64, and calls the real function when it runs on the caller. Functions where
//! glibc does more than one plain call (the fortify checks of `__open_2`, `F_GETOWN`,
//! `fchmodat` with flags, `fstat` on a negative fd) take the real function for those cases.
//!
//! Variadic functions (`open`, `fcntl`, `syscall`, ...) are defined with their optional
//! arguments as fixed ones: on x86-64 the caller passes them in the same registers (and
//! the stack slots) either way, and we read them only when the call uses them.

// The wrappers are libc's own functions, documented by its manual pages and with its
// contracts; each says which system call it makes.
#![allow(missing_docs, clippy::missing_safety_doc)]

use libc::{
    c_char, c_int, c_long, c_uint, c_ulong, c_void, mode_t, off_t, size_t, sockaddr, socklen_t, ssize_t,
};

use crate::real::Real;
use crate::route::route;

#[inline(always)]
fn pad(a: &[u64]) -> [u64; 6] {
    let mut out = [0u64; 6];
    out[..a.len()].copy_from_slice(a);
    out
}

/// Interposes functions with fixed signatures: `fn name(args) -> ret => SYS_nr, [syscall args];`
macro_rules! interpose {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty => $nr:expr, [$($a:expr),*]; )*) => {
        /// The real functions behind the fixed-signature wrappers.
        #[allow(non_upper_case_globals)]
        pub mod reals {
            use crate::real::Real;
            $( pub static $name: Real = Real::new(
                // SAFETY: a literal with exactly one NUL, at the end.
                unsafe { std::ffi::CStr::from_bytes_with_nul_unchecked(concat!(stringify!($name), "\0").as_bytes()) }
            ); )*
        }
        $(
            #[no_mangle]
            pub unsafe extern "C-unwind" fn $name($($arg: $ty),*) -> $ret {
                let real = || {
                    // SAFETY: the symbol's C signature is the one declared here.
                    let f: unsafe extern "C-unwind" fn($($ty),*) -> $ret = unsafe { reals::$name.get() };
                    // SAFETY: the caller's arguments, unchanged.
                    unsafe { f($($arg),*) as i64 }
                };
                // SAFETY: the syscall glibc makes for this function, with these arguments.
                unsafe { route($nr, pad(&[$($a as u64),*]), real) as $ret }
            }
        )*
        /// Resolves every real function (from the constructor).
        pub fn resolve_fixed() {
            $( reals::$name.resolve(); )*
        }
    };
}

const AT_FDCWD: i64 = libc::AT_FDCWD as i64;
const EMPTY: &[u8; 1] = b"\0";

interpose! {
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t => libc::SYS_read, [fd, buf, n];
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t => libc::SYS_write, [fd, buf, n];
    fn pread(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t => libc::SYS_pread64, [fd, buf, n, off];
    fn pread64(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t => libc::SYS_pread64, [fd, buf, n, off];
    fn pwrite(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t => libc::SYS_pwrite64, [fd, buf, n, off];
    fn pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t => libc::SYS_pwrite64, [fd, buf, n, off];
    fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t => libc::SYS_readv, [fd, iov, cnt];
    fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t => libc::SYS_writev, [fd, iov, cnt];
    fn preadv(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off_t) -> ssize_t => libc::SYS_preadv, [fd, iov, cnt, off, 0];
    fn preadv64(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off_t) -> ssize_t => libc::SYS_preadv, [fd, iov, cnt, off, 0];
    fn pwritev(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off_t) -> ssize_t => libc::SYS_pwritev, [fd, iov, cnt, off, 0];
    fn pwritev64(fd: c_int, iov: *const libc::iovec, cnt: c_int, off: off_t) -> ssize_t => libc::SYS_pwritev, [fd, iov, cnt, off, 0];
    fn creat(path: *const c_char, mode: mode_t) -> c_int => libc::SYS_openat, [AT_FDCWD, path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode];
    fn creat64(path: *const c_char, mode: mode_t) -> c_int => libc::SYS_openat, [AT_FDCWD, path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, mode];
    fn lseek(fd: c_int, off: off_t, whence: c_int) -> off_t => libc::SYS_lseek, [fd, off, whence];
    fn lseek64(fd: c_int, off: off_t, whence: c_int) -> off_t => libc::SYS_lseek, [fd, off, whence];
    fn dup(fd: c_int) -> c_int => libc::SYS_dup, [fd];
    fn dup2(fd: c_int, fd2: c_int) -> c_int => libc::SYS_dup2, [fd, fd2];
    fn dup3(fd: c_int, fd2: c_int, flags: c_int) -> c_int => libc::SYS_dup3, [fd, fd2, flags];
    fn pipe(fds: *mut c_int) -> c_int => libc::SYS_pipe2, [fds, 0];
    fn pipe2(fds: *mut c_int, flags: c_int) -> c_int => libc::SYS_pipe2, [fds, flags];
    fn stat(path: *const c_char, buf: *mut libc::stat) -> c_int => libc::SYS_newfstatat, [AT_FDCWD, path, buf, 0];
    fn stat64(path: *const c_char, buf: *mut libc::stat) -> c_int => libc::SYS_newfstatat, [AT_FDCWD, path, buf, 0];
    fn lstat(path: *const c_char, buf: *mut libc::stat) -> c_int => libc::SYS_newfstatat, [AT_FDCWD, path, buf, libc::AT_SYMLINK_NOFOLLOW];
    fn lstat64(path: *const c_char, buf: *mut libc::stat) -> c_int => libc::SYS_newfstatat, [AT_FDCWD, path, buf, libc::AT_SYMLINK_NOFOLLOW];
    fn fstatat(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int => libc::SYS_newfstatat, [dirfd, path, buf, flags];
    fn fstatat64(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int => libc::SYS_newfstatat, [dirfd, path, buf, flags];
    fn statx(dirfd: c_int, path: *const c_char, flags: c_int, mask: c_uint, buf: *mut libc::statx) -> c_int => libc::SYS_statx, [dirfd, path, flags, mask, buf];
    fn access(path: *const c_char, mode: c_int) -> c_int => libc::SYS_access, [path, mode];
    fn faccessat(dirfd: c_int, path: *const c_char, mode: c_int, flags: c_int) -> c_int => libc::SYS_faccessat2, [dirfd, path, mode, flags];
    fn getdents64(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t => libc::SYS_getdents64, [fd, buf, n];
    fn readlink(path: *const c_char, buf: *mut c_char, n: size_t) -> ssize_t => libc::SYS_readlink, [path, buf, n];
    fn readlinkat(dirfd: c_int, path: *const c_char, buf: *mut c_char, n: size_t) -> ssize_t => libc::SYS_readlinkat, [dirfd, path, buf, n];
    fn mkdir(path: *const c_char, mode: mode_t) -> c_int => libc::SYS_mkdir, [path, mode];
    fn mkdirat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int => libc::SYS_mkdirat, [dirfd, path, mode];
    fn unlink(path: *const c_char) -> c_int => libc::SYS_unlink, [path];
    fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int => libc::SYS_unlinkat, [dirfd, path, flags];
    fn rmdir(path: *const c_char) -> c_int => libc::SYS_rmdir, [path];
    fn rename(old: *const c_char, new: *const c_char) -> c_int => libc::SYS_rename, [old, new];
    fn renameat(olddir: c_int, old: *const c_char, newdir: c_int, new: *const c_char) -> c_int => libc::SYS_renameat, [olddir, old, newdir, new];
    fn renameat2(olddir: c_int, old: *const c_char, newdir: c_int, new: *const c_char, flags: c_uint) -> c_int => libc::SYS_renameat2, [olddir, old, newdir, new, flags];
    fn chmod(path: *const c_char, mode: mode_t) -> c_int => libc::SYS_chmod, [path, mode];
    fn fchmod(fd: c_int, mode: mode_t) -> c_int => libc::SYS_fchmod, [fd, mode];
    fn chown(path: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int => libc::SYS_chown, [path, uid, gid];
    fn lchown(path: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int => libc::SYS_lchown, [path, uid, gid];
    fn fchown(fd: c_int, uid: libc::uid_t, gid: libc::gid_t) -> c_int => libc::SYS_fchown, [fd, uid, gid];
    fn fchownat(dirfd: c_int, path: *const c_char, uid: libc::uid_t, gid: libc::gid_t, flags: c_int) -> c_int => libc::SYS_fchownat, [dirfd, path, uid, gid, flags];
    fn truncate(path: *const c_char, len: off_t) -> c_int => libc::SYS_truncate, [path, len];
    fn truncate64(path: *const c_char, len: off_t) -> c_int => libc::SYS_truncate, [path, len];
    fn ftruncate(fd: c_int, len: off_t) -> c_int => libc::SYS_ftruncate, [fd, len];
    fn ftruncate64(fd: c_int, len: off_t) -> c_int => libc::SYS_ftruncate, [fd, len];
    fn fallocate(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int => libc::SYS_fallocate, [fd, mode, off, len];
    fn fallocate64(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int => libc::SYS_fallocate, [fd, mode, off, len];
    fn fsync(fd: c_int) -> c_int => libc::SYS_fsync, [fd];
    fn fdatasync(fd: c_int) -> c_int => libc::SYS_fdatasync, [fd];
    fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int => libc::SYS_socket, [domain, ty, proto];
    fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int => libc::SYS_bind, [fd, addr, len];
    fn listen(fd: c_int, backlog: c_int) -> c_int => libc::SYS_listen, [fd, backlog];
    fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int => libc::SYS_accept, [fd, addr, len];
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int => libc::SYS_accept4, [fd, addr, len, flags];
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int => libc::SYS_connect, [fd, addr, len];
    fn shutdown(fd: c_int, how: c_int) -> c_int => libc::SYS_shutdown, [fd, how];
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t => libc::SYS_sendto, [fd, buf, n, flags, 0, 0];
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t => libc::SYS_recvfrom, [fd, buf, n, flags, 0, 0];
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t => libc::SYS_sendto, [fd, buf, n, flags, addr, len];
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t => libc::SYS_recvfrom, [fd, buf, n, flags, addr, len];
    fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t => libc::SYS_sendmsg, [fd, msg, flags];
    fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t => libc::SYS_recvmsg, [fd, msg, flags];
    fn sendmmsg(fd: c_int, msgs: *mut libc::mmsghdr, vlen: c_uint, flags: c_int) -> c_int => libc::SYS_sendmmsg, [fd, msgs, vlen, flags];
    fn recvmmsg(fd: c_int, msgs: *mut libc::mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut libc::timespec) -> c_int => libc::SYS_recvmmsg, [fd, msgs, vlen, flags, timeout];
    fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int => libc::SYS_getsockopt, [fd, level, name, val, len];
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int => libc::SYS_setsockopt, [fd, level, name, val, len];
    fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int => libc::SYS_getsockname, [fd, addr, len];
    fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int => libc::SYS_getpeername, [fd, addr, len];
    fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int => libc::SYS_poll, [fds, n, timeout];
    fn ppoll(fds: *mut libc::pollfd, n: libc::nfds_t, tmo: *const libc::timespec, mask: *const libc::sigset_t) -> c_int => libc::SYS_ppoll, [fds, n, tmo, mask, 8];
    fn select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, tv: *mut libc::timeval) -> c_int => libc::SYS_select, [n, r, w, e, tv];
    fn pselect(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, tmo: *const libc::timespec, mask: *const libc::sigset_t) -> c_int => libc::SYS_pselect6, [n, r, w, e, tmo, mask];
    fn epoll_create1(flags: c_int) -> c_int => libc::SYS_epoll_create1, [flags];
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut libc::epoll_event) -> c_int => libc::SYS_epoll_ctl, [epfd, op, fd, ev];
    fn epoll_wait(epfd: c_int, ev: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int => libc::SYS_epoll_wait, [epfd, ev, max, timeout];
    fn epoll_pwait(epfd: c_int, ev: *mut libc::epoll_event, max: c_int, timeout: c_int, mask: *const libc::sigset_t) -> c_int => libc::SYS_epoll_pwait, [epfd, ev, max, timeout, mask, 8];
    fn flock(fd: c_int, op: c_int) -> c_int => libc::SYS_flock, [fd, op];
    fn munmap(addr: *mut c_void, len: size_t) -> c_int => libc::SYS_munmap, [addr, len];
    fn semop(id: c_int, sops: *mut libc::sembuf, n: size_t) -> c_int => libc::SYS_semtimedop, [id, sops, n, 0];
    fn semtimedop(id: c_int, sops: *mut libc::sembuf, n: size_t, tmo: *const libc::timespec) -> c_int => libc::SYS_semtimedop, [id, sops, n, tmo];
    fn msgsnd(id: c_int, msg: *const c_void, size: size_t, flags: c_int) -> c_int => libc::SYS_msgsnd, [id, msg, size, flags];
    fn msgrcv(id: c_int, msg: *mut c_void, size: size_t, ty: c_long, flags: c_int) -> ssize_t => libc::SYS_msgrcv, [id, msg, size, ty, flags];
    fn unshare(flags: c_int) -> c_int => libc::SYS_unshare, [flags];
    fn setns(fd: c_int, nstype: c_int) -> c_int => libc::SYS_setns, [fd, nstype];
}

/// Real functions of the hand-written wrappers below.
#[allow(non_upper_case_globals)]
mod special {
    use crate::real::Real;
    pub static open: Real = Real::new(c"open");
    pub static open64: Real = Real::new(c"open64");
    pub static openat: Real = Real::new(c"openat");
    pub static openat64: Real = Real::new(c"openat64");
    pub static __open_2: Real = Real::new(c"__open_2");
    pub static __open64_2: Real = Real::new(c"__open64_2");
    pub static __openat_2: Real = Real::new(c"__openat_2");
    pub static __openat64_2: Real = Real::new(c"__openat64_2");
    pub static fcntl: Real = Real::new(c"fcntl");
    pub static fcntl64: Real = Real::new(c"fcntl64");
    pub static lockf: Real = Real::new(c"lockf");
    pub static lockf64: Real = Real::new(c"lockf64");
    pub static ioctl: Real = Real::new(c"ioctl");
    pub static prctl: Real = Real::new(c"prctl");
    pub static syscall: Real = Real::new(c"syscall");
    pub static close: Real = Real::new(c"close");
    pub static close_range: Real = Real::new(c"close_range");
    pub static closefrom: Real = Real::new(c"closefrom");
    pub static fstat: Real = Real::new(c"fstat");
    pub static fstat64: Real = Real::new(c"fstat64");
    pub static fchmodat: Real = Real::new(c"fchmodat");
    pub static fork: Real = Real::new(c"fork");
    pub static _Fork: Real = Real::new(c"_Fork");
    pub static _exit: Real = Real::new(c"_exit");
    pub static _Exit: Real = Real::new(c"_Exit");
    pub static execve: Real = Real::new(c"execve");
    pub static execv: Real = Real::new(c"execv");
    pub static execvp: Real = Real::new(c"execvp");
    pub static execvpe: Real = Real::new(c"execvpe");
    pub static fexecve: Real = Real::new(c"fexecve");
    pub static posix_spawn: Real = Real::new(c"posix_spawn");
    pub static posix_spawnp: Real = Real::new(c"posix_spawnp");
    pub static system: Real = Real::new(c"system");
    pub static popen: Real = Real::new(c"popen");
    pub static pclose: Real = Real::new(c"pclose");

    pub fn resolve() {
        for r in [
            &open,
            &open64,
            &openat,
            &openat64,
            &__open_2,
            &__open64_2,
            &__openat_2,
            &__openat64_2,
            &fcntl,
            &fcntl64,
            &lockf,
            &lockf64,
            &ioctl,
            &prctl,
            &syscall,
            &close,
            &close_range,
            &closefrom,
            &fstat,
            &fstat64,
            &fchmodat,
            &fork,
            &_Fork,
            &_exit,
            &_Exit,
            &execve,
            &execv,
            &execvp,
            &execvpe,
            &fexecve,
            &posix_spawn,
            &posix_spawnp,
            &system,
            &popen,
            &pclose,
        ] {
            r.resolve();
        }
    }
}

/// Resolves every real function (from the constructor).
pub fn resolve_all() {
    resolve_fixed();
    special::resolve();
    fortified_reals::resolve();
}

fn needs_mode(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

type OpenAt = unsafe extern "C-unwind" fn(c_int, *const c_char, c_int, ...) -> c_int;
type Open = unsafe extern "C-unwind" fn(*const c_char, c_int, ...) -> c_int;

unsafe fn open_common(
    real: &Real,
    dirfd: Option<c_int>,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    let mode = if needs_mode(flags) { mode } else { 0 };
    let call = || match dirfd {
        // SAFETY: the real openat's signature; the caller's arguments.
        Some(d) => unsafe { real.get::<OpenAt>()(d, path, flags, mode) as i64 },
        // SAFETY: the real open's signature; the caller's arguments.
        None => unsafe { real.get::<Open>()(path, flags, mode) as i64 },
    };
    let dir = dirfd.map_or(AT_FDCWD, |d| d as i64);
    // SAFETY: glibc's open and openat make exactly this openat call.
    unsafe {
        route(
            libc::SYS_openat,
            [dir as u64, path as u64, flags as u64, mode as u64, 0, 0],
            call,
        ) as c_int
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { open_common(&special::open, None, path, flags, mode) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { open_common(&special::open64, None, path, flags, mode) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { open_common(&special::openat, Some(dirfd), path, flags, mode) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn openat64(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { open_common(&special::openat64, Some(dirfd), path, flags, mode) }
}

/// The fortified opens: without a mode, O_CREAT and O_TMPFILE are a bug that the real
/// function reports and aborts on; everything else is a plain open.
unsafe fn open_2(real: &Real, dirfd: Option<c_int>, path: *const c_char, flags: c_int) -> c_int {
    if needs_mode(flags) {
        return match dirfd {
            // SAFETY: the real fortified function's signature.
            Some(d) => unsafe {
                real.get::<unsafe extern "C-unwind" fn(c_int, *const c_char, c_int) -> c_int>()(
                    d, path, flags,
                )
            },
            // SAFETY: as above.
            None => unsafe {
                real.get::<unsafe extern "C-unwind" fn(*const c_char, c_int) -> c_int>()(path, flags)
            },
        };
    }
    let plain = if dirfd.is_some() {
        &special::openat
    } else {
        &special::open
    };
    // SAFETY: forwarded: a fortified open without a mode is a plain open.
    unsafe { open_common(plain, dirfd, path, flags, 0) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe { open_2(&special::__open_2, None, path, flags) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe { open_2(&special::__open64_2, None, path, flags) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe { open_2(&special::__openat_2, Some(dirfd), path, flags) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe { open_2(&special::__openat64_2, Some(dirfd), path, flags) }
}

type Fcntl = unsafe extern "C-unwind" fn(c_int, c_int, ...) -> c_int;

unsafe fn fcntl_common(real: &Real, fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: the real fcntl's signature; the caller's arguments.
    let call = || unsafe { real.get::<Fcntl>()(fd, cmd, arg) as i64 };
    if cmd == libc::F_GETOWN {
        // glibc answers F_GETOWN through F_GETOWN_EX: let it.
        return call() as c_int;
    }
    // SAFETY: glibc's fcntl makes exactly this call for every other command.
    unsafe { route(libc::SYS_fcntl, [fd as u64, cmd as u64, arg, 0, 0, 0], call) as c_int }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: forwarded.
    unsafe { fcntl_common(&special::fcntl, fd, cmd, arg) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: forwarded.
    unsafe { fcntl_common(&special::fcntl64, fd, cmd, arg) }
}

/// lockf(F_LOCK) waits for a record lock through glibc's internal fcntl(F_SETLKW), which
/// the fcntl wrapper never sees: make that call here. The other commands are glibc's.
unsafe fn lockf_common(real: &Real, fd: c_int, cmd: c_int, len: off_t) -> c_int {
    // SAFETY: the real lockf's signature; the caller's arguments.
    let call = || unsafe {
        real.get::<unsafe extern "C-unwind" fn(c_int, c_int, off_t) -> c_int>()(fd, cmd, len) as i64
    };
    if cmd != libc::F_LOCK {
        return call() as c_int;
    }
    // SAFETY: a plain struct of integers, all zero is valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_CUR as libc::c_short;
    fl.l_start = 0;
    fl.l_len = len;
    let args = [
        fd as u64,
        libc::F_SETLKW as u64,
        &mut fl as *mut libc::flock as u64,
        0,
        0,
        0,
    ];
    // SAFETY: glibc 2.36's lockf(F_LOCK) makes exactly this call; `fl` lives on this
    // stack until the call is reaped.
    unsafe { route(libc::SYS_fcntl, args, call) as c_int }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn lockf(fd: c_int, cmd: c_int, len: off_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { lockf_common(&special::lockf, fd, cmd, len) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn lockf64(fd: c_int, cmd: c_int, len: off_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { lockf_common(&special::lockf64, fd, cmd, len) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn ioctl(fd: c_int, request: c_ulong, arg: c_ulong) -> c_int {
    // SAFETY: the real ioctl's signature; the caller's arguments.
    let call = || unsafe {
        special::ioctl.get::<unsafe extern "C-unwind" fn(c_int, c_ulong, ...) -> c_int>()(fd, request, arg)
            as i64
    };
    // SAFETY: ioctl runs on its caller (the table says so); this only counts it.
    unsafe { route(libc::SYS_ioctl, [fd as u64, request, arg, 0, 0, 0], call) as c_int }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn prctl(
    option: c_int,
    a2: c_ulong,
    a3: c_ulong,
    a4: c_ulong,
    a5: c_ulong,
) -> c_int {
    // SAFETY: the real prctl's signature; the caller's arguments.
    let call = || unsafe {
        special::prctl.get::<unsafe extern "C-unwind" fn(c_int, ...) -> c_int>()(option, a2, a3, a4, a5)
            as i64
    };
    // SAFETY: prctl runs on its caller; security options isolate the process.
    unsafe { route(libc::SYS_prctl, [option as u64, a2, a3, a4, a5, 0], call) as c_int }
}

/// Fails with EBADF, as `close` of a number that is not open does.
fn refuse_close() -> i64 {
    // SAFETY: errno is the calling thread's own.
    unsafe { *libc::__errno_location() = libc::EBADF };
    -1
}

// close, close_range and closefrom leave the runtime's own descriptors open (`guard`).

#[no_mangle]
pub unsafe extern "C-unwind" fn close(fd: c_int) -> c_int {
    if crate::guard::refuses_close(fd.into()) {
        return refuse_close() as c_int;
    }
    // SAFETY: the real close's signature; the caller's argument.
    let real = || unsafe { special::close.get::<unsafe extern "C-unwind" fn(c_int) -> c_int>()(fd) as i64 };
    // SAFETY: close makes exactly this call.
    unsafe { route(libc::SYS_close, pad(&[fd as u64]), real) as c_int }
}

/// glibc's other exported name for `close` (the same function), which some programs call.
#[no_mangle]
pub unsafe extern "C-unwind" fn __close(fd: c_int) -> c_int {
    // SAFETY: forwarded: close's contract is the same.
    unsafe { close(fd) }
}

/// `close_range` on the parts of the range without the runtime's descriptors, each
/// through libc's `close_range`.
unsafe fn close_range_common(first: c_uint, last: c_uint, flags: c_uint) -> c_int {
    let part = |a: c_uint, b: c_uint, f: c_uint| {
        // SAFETY: the real close_range's signature; the caller's range, or part of it.
        let real = || unsafe {
            special::close_range.get::<unsafe extern "C-unwind" fn(c_uint, c_uint, c_int) -> c_int>()(
                a, b, f as c_int,
            ) as i64
        };
        // SAFETY: close_range makes exactly this call.
        unsafe { route(libc::SYS_close_range, pad(&[a.into(), b.into(), f.into()]), real) }
    };
    crate::guard::close_range_around(first, last, flags, part) as c_int
}

#[no_mangle]
pub unsafe extern "C-unwind" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { close_range_common(first, last, flags as c_uint) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn closefrom(low: c_int) {
    // What glibc's closefrom does: close_range from `low` (0 if negative) up, and only if
    // that fails a walk of /proc/self/fd, here one that leaves the runtime's descriptors
    // (glibc's, whose closes we do not see, would not). The real closefrom only if the
    // listing cannot be read: its last resort, and its abort.
    // SAFETY: the range closefrom closes.
    if unsafe { close_range_common(low.max(0) as c_uint, c_uint::MAX, 0) } != 0
        && !crate::guard::close_listed_from(low.max(0))
    {
        // SAFETY: the real closefrom's signature; the caller's argument.
        unsafe { special::closefrom.get::<unsafe extern "C-unwind" fn(c_int)>()(low) }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn syscall(
    nr: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    // SAFETY: the real syscall's signature; the caller's arguments.
    let call = || unsafe {
        special::syscall.get::<unsafe extern "C-unwind" fn(c_long, ...) -> c_long>()(
            nr, a1, a2, a3, a4, a5, a6,
        )
    };
    let args = [a1, a2, a3, a4, a5, a6].map(|a| a as u64);
    // The kernel reads close's and close_range's arguments as `unsigned int`s.
    if nr == libc::SYS_close && crate::guard::refuses_close(i64::from(a1 as c_uint)) {
        return refuse_close() as c_long;
    }
    if nr == libc::SYS_close_range {
        let part = |a: c_uint, b: c_uint, f: c_uint| {
            // SAFETY: the real syscall's signature; the caller's range, or part of it.
            let real = || unsafe {
                special::syscall.get::<unsafe extern "C-unwind" fn(c_long, ...) -> c_long>()(nr, a, b, f)
            };
            // SAFETY: syscall() makes exactly this call.
            unsafe { route(nr, pad(&[a.into(), b.into(), f.into()]), real) }
        };
        return crate::guard::close_range_around(a1 as c_uint, a2 as c_uint, a3 as c_uint, part) as c_long;
    }
    if nr == libc::SYS_futex && crate::mn::enabled() {
        // SAFETY: syscall() makes exactly this futex call, and so does the fallback.
        return unsafe { crate::mn::futex::call(args, || route(nr, args, call)) as c_long };
    }
    // SAFETY: syscall() makes exactly this call.
    unsafe { route(nr, args, call) as c_long }
}

unsafe fn fstat_common(real: &Real, fd: c_int, buf: *mut libc::stat) -> c_int {
    // SAFETY: the real fstat's signature; the caller's arguments.
    let call = || unsafe {
        real.get::<unsafe extern "C-unwind" fn(c_int, *mut libc::stat) -> c_int>()(fd, buf) as i64
    };
    if fd < 0 {
        // glibc answers EBADF itself (a negative fd could be AT_FDCWD to the kernel).
        return call() as c_int;
    }
    let args = [
        fd as u64,
        EMPTY.as_ptr() as u64,
        buf as u64,
        libc::AT_EMPTY_PATH as u64,
        0,
        0,
    ];
    // SAFETY: glibc 2.36's fstat makes exactly this newfstatat call for fd >= 0.
    unsafe { route(libc::SYS_newfstatat, args, call) as c_int }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn fstat(fd: c_int, buf: *mut libc::stat) -> c_int {
    // SAFETY: forwarded.
    unsafe { fstat_common(&special::fstat, fd, buf) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn fstat64(fd: c_int, buf: *mut libc::stat) -> c_int {
    // SAFETY: forwarded.
    unsafe { fstat_common(&special::fstat64, fd, buf) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn fchmodat(
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    flags: c_int,
) -> c_int {
    // SAFETY: the real fchmodat's signature; the caller's arguments.
    let call = || unsafe {
        special::fchmodat.get::<unsafe extern "C-unwind" fn(c_int, *const c_char, mode_t, c_int) -> c_int>()(
            dirfd, path, mode, flags,
        ) as i64
    };
    if flags != 0 {
        // glibc emulates AT_SYMLINK_NOFOLLOW through O_PATH: let it.
        return call() as c_int;
    }
    // SAFETY: with no flags glibc makes exactly this call.
    unsafe {
        route(
            libc::SYS_fchmodat,
            [dirfd as u64, path as u64, mode as u64, 0, 0, 0],
            call,
        ) as c_int
    }
}

/// vfork's child shares the parent's memory and runs on its stack, where our per-thread
/// state belongs to the parent. A fork is a valid vfork (POSIX lets vfork be fork), and the
/// child of a fork gets a runtime of its own.
#[no_mangle]
pub unsafe extern "C-unwind" fn vfork() -> libc::pid_t {
    // SAFETY: the real fork's signature.
    unsafe { special::fork.get::<unsafe extern "C-unwind" fn() -> libc::pid_t>()() }
}

/// `_Fork` (glibc 2.34): a fork without atfork handlers, for a child that may then call
/// only async-signal-safe functions (`_Fork(); closefrom(3); execve(...)`). Its child
/// gets what it can of the handler (`lifecycle::child_after_raw_fork`).
#[no_mangle]
pub unsafe extern "C-unwind" fn _Fork() -> libc::pid_t {
    // SAFETY: the real _Fork's signature.
    let pid = unsafe { special::_Fork.get::<unsafe extern "C-unwind" fn() -> libc::pid_t>()() };
    if pid == 0 {
        crate::lifecycle::child_after_raw_fork();
    }
    pid
}

/// Before the process image ends: let posted calls finish and write the statistics.
fn before_image_ends() {
    crate::lifecycle::image_ends();
}

#[no_mangle]
pub unsafe extern "C-unwind" fn _exit(status: c_int) -> ! {
    before_image_ends();
    // SAFETY: the real _exit's signature.
    unsafe { special::_exit.get::<unsafe extern "C-unwind" fn(c_int) -> !>()(status) }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn _Exit(status: c_int) -> ! {
    before_image_ends();
    // SAFETY: the real _Exit's signature.
    unsafe { special::_Exit.get::<unsafe extern "C-unwind" fn(c_int) -> !>()(status) }
}

type Argv = *const *const c_char;

#[no_mangle]
pub unsafe extern "C-unwind" fn execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    before_image_ends();
    // SAFETY: the real execve's signature; the caller's arguments.
    crate::mn::affinity::spawning(|| unsafe {
        special::execve.get::<unsafe extern "C-unwind" fn(*const c_char, Argv, Argv) -> c_int>()(
            path, argv, envp,
        )
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execv(path: *const c_char, argv: Argv) -> c_int {
    before_image_ends();
    // SAFETY: the real execv's signature.
    crate::mn::affinity::spawning(|| unsafe {
        special::execv.get::<unsafe extern "C-unwind" fn(*const c_char, Argv) -> c_int>()(path, argv)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execvp(file: *const c_char, argv: Argv) -> c_int {
    before_image_ends();
    // SAFETY: the real execvp's signature.
    crate::mn::affinity::spawning(|| unsafe {
        special::execvp.get::<unsafe extern "C-unwind" fn(*const c_char, Argv) -> c_int>()(file, argv)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execvpe(file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    before_image_ends();
    // SAFETY: the real execvpe's signature.
    crate::mn::affinity::spawning(|| unsafe {
        special::execvpe.get::<unsafe extern "C-unwind" fn(*const c_char, Argv, Argv) -> c_int>()(
            file, argv, envp,
        )
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn fexecve(fd: c_int, argv: Argv, envp: Argv) -> c_int {
    before_image_ends();
    // SAFETY: the real fexecve's signature.
    crate::mn::affinity::spawning(|| unsafe {
        special::fexecve.get::<unsafe extern "C-unwind" fn(c_int, Argv, Argv) -> c_int>()(fd, argv, envp)
    })
}

// Processes started by an M-on-N user thread get the program's CPU affinity, not the
// one core its kernel thread is pinned to (`mn::affinity`; a fork's child is seen to in
// `mn::after_fork_child`). Elsewhere these are the real functions, unchanged.

type SpawnFn = unsafe extern "C-unwind" fn(
    *mut libc::pid_t,
    *const c_char,
    *const libc::posix_spawn_file_actions_t,
    *const libc::posix_spawnattr_t,
    Argv,
    Argv,
) -> c_int;

#[no_mangle]
pub unsafe extern "C-unwind" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    // SAFETY: the real posix_spawn's signature; the caller's arguments.
    crate::mn::affinity::spawning(|| unsafe {
        special::posix_spawn.get::<SpawnFn>()(pid, path, actions, attr, argv, envp)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    // SAFETY: the real posix_spawnp's signature; the caller's arguments.
    crate::mn::affinity::spawning(|| unsafe {
        special::posix_spawnp.get::<SpawnFn>()(pid, file, actions, attr, argv, envp)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn system(command: *const c_char) -> c_int {
    if crate::mn::enabled() && !crate::route::is_busy() {
        // glibc's own would wait for the shell inside, stopping a user thread's kernel
        // thread; every thread's comes here while M-on-N is on, so that one count of
        // running calls decides when SIGINT and SIGQUIT are restored (`mn::system`).
        // SAFETY: the caller's argument.
        return unsafe { crate::mn::system::system(command) };
    }
    // SAFETY: the real system's signature; the caller's argument.
    crate::mn::affinity::spawning(|| unsafe {
        special::system.get::<unsafe extern "C-unwind" fn(*const c_char) -> c_int>()(command)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn popen(command: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    // SAFETY: the real popen's signature; the caller's arguments.
    let stream = crate::mn::affinity::spawning(|| unsafe {
        special::popen.get::<unsafe extern "C-unwind" fn(*const c_char, *const c_char) -> *mut libc::FILE>()(
            command, mode,
        )
    });
    // SAFETY: what glibc's popen just returned.
    unsafe { crate::mn::system::popened(stream) };
    stream
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pclose(stream: *mut libc::FILE) -> c_int {
    let command = crate::mn::system::take_popened(stream);
    if let Some(pid) = command.filter(|_| crate::mn::routes_user_thread() && !crate::route::is_busy()) {
        // glibc's own waits for the command inside, stopping the kernel thread: wait
        // first, posted (`mn::system`).
        // SAFETY: the caller's stream, which popen returned with this command.
        unsafe { crate::mn::system::before_pclose(stream, pid) };
    }
    // SAFETY: the real pclose's signature; the caller's argument.
    unsafe { special::pclose.get::<unsafe extern "C-unwind" fn(*mut libc::FILE) -> c_int>()(stream) }
}

/// The `_FORTIFY_SOURCE` variants (`__read_chk` and friends): when the buffer is smaller
/// than the length, the real function reports the overflow and aborts, so it gets the
/// call; otherwise it is the plain call.
macro_rules! fortified {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty, overflow: $over:expr => $nr:expr, [$($a:expr),*]; )*) => {
        #[allow(non_upper_case_globals)]
        mod fortified_reals {
            use crate::real::Real;
            $( pub static $name: Real = Real::new(
                // SAFETY: a literal with exactly one NUL, at the end.
                unsafe { std::ffi::CStr::from_bytes_with_nul_unchecked(concat!(stringify!($name), "\0").as_bytes()) }
            ); )*
            pub fn resolve() {
                $( $name.resolve(); )*
            }
        }
        $(
            #[no_mangle]
            pub unsafe extern "C-unwind" fn $name($($arg: $ty),*) -> $ret {
                let real = || {
                    // SAFETY: the symbol's C signature is the one declared here.
                    let f: unsafe extern "C-unwind" fn($($ty),*) -> $ret = unsafe { fortified_reals::$name.get() };
                    // SAFETY: the caller's arguments, unchanged.
                    unsafe { f($($arg),*) as i64 }
                };
                if $over {
                    return real() as $ret;
                }
                // SAFETY: within bounds, the fortified function makes exactly this call.
                unsafe { route($nr, pad(&[$($a as u64),*]), real) as $ret }
            }
        )*
    };
}

fortified! {
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t, overflow: n > buflen
        => libc::SYS_read, [fd, buf, n];
    fn __pread_chk(fd: c_int, buf: *mut c_void, n: size_t, off: off_t, buflen: size_t) -> ssize_t, overflow: n > buflen
        => libc::SYS_pread64, [fd, buf, n, off];
    fn __pread64_chk(fd: c_int, buf: *mut c_void, n: size_t, off: off_t, buflen: size_t) -> ssize_t, overflow: n > buflen
        => libc::SYS_pread64, [fd, buf, n, off];
    fn __readlink_chk(path: *const c_char, buf: *mut c_char, n: size_t, buflen: size_t) -> ssize_t, overflow: n > buflen
        => libc::SYS_readlink, [path, buf, n];
    fn __readlinkat_chk(dirfd: c_int, path: *const c_char, buf: *mut c_char, n: size_t, buflen: size_t) -> ssize_t, overflow: n > buflen
        => libc::SYS_readlinkat, [dirfd, path, buf, n];
    fn __recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t, overflow: n > buflen
        => libc::SYS_recvfrom, [fd, buf, n, flags, 0, 0];
    fn __recvfrom_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t, overflow: n > buflen
        => libc::SYS_recvfrom, [fd, buf, n, flags, addr, len];
    fn __poll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int, fdslen: size_t) -> c_int,
        overflow: fdslen / std::mem::size_of::<libc::pollfd>() < n as usize
        => libc::SYS_poll, [fds, n, timeout];
}
