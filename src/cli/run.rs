//! `flexsc run [OPTIONS] [--] CMD [ARGS...]`: runs CMD with `libflexsc_preload.so`.
//!
//! CMD's stdin, stdout, stderr and files are its own; `flexsc run` exits with CMD's
//! status (128 + N when a signal N ended it, as a shell reports), 127 when CMD is not
//! found, 126 when it cannot be executed, and 2 on a bad option.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use flexsc_kernel_side::config::{parse_cpus, parse_number, CPUS_FORM, WORKERS_FORM};

use super::summary::Summary;

/// The usage line.
pub use super::help::RUN_USAGE as USAGE;

/// What went wrong before CMD ran.
#[derive(Debug)]
pub enum RunError {
    /// A bad option: exit 2.
    Usage(String),
    /// CMD was not found: exit 127.
    NotFound(String),
    /// CMD could not be executed: exit 126.
    NotExecutable(String),
    /// Anything else: exit 1.
    Other(String),
}

impl RunError {
    /// The exit status a shell would give.
    pub fn status(&self) -> u8 {
        match self {
            RunError::Usage(_) => 2,
            RunError::NotFound(_) => 127,
            RunError::NotExecutable(_) => 126,
            RunError::Other(_) => 1,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Usage(m) => write!(f, "{m}\n{USAGE}"),
            RunError::NotFound(m) | RunError::NotExecutable(m) | RunError::Other(m) => f.write_str(m),
        }
    }
}

/// Parsed options.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Print the table to stderr at the end.
    pub stats: bool,
    /// Write the JSON summary here.
    pub json: Option<PathBuf>,
    /// `FLEXSC_CPUS`.
    pub cpus: Option<String>,
    /// `FLEXSC_WORKERS`.
    pub workers: Option<String>,
    /// `FLEXSC_POLICY`.
    pub policy: Option<String>,
    /// `FLEXSC_THREADS`: `1:1` (default) or `m-on-n`.
    pub threads: Option<String>,
    /// CMD and its arguments.
    pub command: Vec<OsString>,
    /// `-h` or `--help` before CMD: print the help instead of running.
    pub help: bool,
}

/// Parses `run`'s arguments (after the word `run`).
pub fn parse(args: &[OsString]) -> Result<Options, RunError> {
    let mut o = Options::default();
    let mut i = 0;
    let usage = |m: String| RunError::Usage(m);
    while i < args.len() {
        let arg = args[i].to_string_lossy().into_owned();
        let mut value = |name: &str| -> Result<String, RunError> {
            i += 1;
            args.get(i)
                .map(|v| v.to_string_lossy().into_owned())
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--" => {
                o.command = args[i + 1..].to_vec();
                break;
            }
            "-h" | "--help" => {
                o.help = true;
                return Ok(o);
            }
            "--stats" => o.stats = true,
            "--json" => o.json = Some(PathBuf::from(value("--json")?)),
            "--cpus" => {
                let v = value("--cpus")?;
                parse_cpus("--cpus", &v)
                    .map_err(|_| usage(format!("invalid --cpus {v:?}: expected {CPUS_FORM}")))?;
                o.cpus = Some(v);
            }
            "--workers" => {
                let v = value("--workers")?;
                parse_number("--workers", &v, 1, 4096, WORKERS_FORM)
                    .map_err(|_| usage(format!("invalid --workers {v:?}: expected {WORKERS_FORM}")))?;
                o.workers = Some(v);
            }
            "--policy" => {
                let v = value("--policy")?;
                if !matches!(v.as_str(), "adaptive" | "always" | "never") {
                    return Err(usage(format!(
                        "invalid --policy {v:?}: expected one of adaptive, always, never"
                    )));
                }
                o.policy = Some(v);
            }
            "--threads" => {
                let v = value("--threads")?;
                if !matches!(v.as_str(), "1:1" | "m-on-n") {
                    return Err(usage(format!("invalid --threads {v:?}: expected 1:1 or m-on-n")));
                }
                o.threads = Some(v);
            }
            a if a.starts_with('-') => return Err(usage(format!("unknown option {a:?}"))),
            _ => {
                o.command = args[i..].to_vec();
                break;
            }
        }
        i += 1;
    }
    if o.command.is_empty() {
        return Err(usage("no command given".into()));
    }
    Ok(o)
}

/// Finds `libflexsc_preload.so`: `FLEXSC_PRELOAD_LIB`, else beside this executable (or
/// one folder up, for test binaries in `target/*/deps`).
pub fn find_library() -> Result<PathBuf, RunError> {
    if let Some(p) = std::env::var_os("FLEXSC_PRELOAD_LIB") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(RunError::Other(format!(
                "FLEXSC_PRELOAD_LIB={}: no such file",
                p.display()
            )))
        };
    }
    let exe =
        std::env::current_exe().map_err(|e| RunError::Other(format!("cannot locate flexsc itself: {e}")))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    for candidate in [
        dir.join("libflexsc_preload.so"),
        dir.join("../libflexsc_preload.so"),
    ] {
        if candidate.is_file() {
            return Ok(candidate.canonicalize().unwrap_or(candidate));
        }
    }
    Err(RunError::Other(format!(
        "cannot find libflexsc_preload.so beside {} (build it with `cargo build --release`, or set FLEXSC_PRELOAD_LIB)",
        exe.display()
    )))
}

/// Resolves CMD as a shell would: a name with a slash is a path, else searched in PATH.
pub fn resolve(cmd: &OsStr) -> Result<PathBuf, RunError> {
    let name = cmd.to_string_lossy();
    let check = |p: PathBuf| -> Result<PathBuf, RunError> {
        let meta = std::fs::metadata(&p)
            .map_err(|_| RunError::NotFound(format!("{name}: No such file or directory")))?;
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            return Err(RunError::NotExecutable(format!("{name}: Permission denied")));
        }
        Ok(p)
    };
    if name.contains('/') {
        return check(PathBuf::from(cmd));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let p = dir.join(cmd);
        if p.is_file() {
            return check(p);
        }
    }
    Err(RunError::NotFound(format!("{name}: command not found")))
}

/// Why the preload library cannot apply to this executable, if it cannot.
pub fn cannot_preload(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let euid = rustix_like_geteuid();
    if meta.mode() & 0o4000 != 0 && meta.uid() != euid
        || meta.mode() & 0o2000 != 0 && meta.gid() != rustix_like_getegid()
    {
        return Some(format!(
            "{} is setuid/setgid: the dynamic loader ignores LD_PRELOAD for it; running it without flexsc",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes.starts_with(b"#!") {
        return None; // the interpreter is what gets loaded
    }
    if is_static_elf(&bytes) {
        return Some(format!(
            "{} is statically linked: the preload library cannot apply; running it without flexsc",
            path.display()
        ));
    }
    None
}

fn rustix_like_geteuid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

fn rustix_like_getegid() -> u32 {
    // SAFETY: getegid has no arguments and cannot fail.
    unsafe { libc::getegid() }
}

/// An ELF64 executable with no PT_INTERP program header is static (the kernel runs it
/// without the dynamic loader, so nothing reads LD_PRELOAD).
pub fn is_static_elf(b: &[u8]) -> bool {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8])) as usize;
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    let mut has_interp = false;
    let mut has_dynamic = false;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            return false;
        }
        match u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) {
            3 => has_interp = true,  // PT_INTERP
            2 => has_dynamic = true, // PT_DYNAMIC
            _ => {}
        }
    }
    // A static-pie has PT_DYNAMIC but no PT_INTERP; a shared library run directly has
    // neither requirement met either way, so only "no interpreter" counts.
    let _ = has_dynamic;
    !has_interp
}

/// The sanitizer runtime an ELF64 executable links (`libasan.so.8`, say), if any.
/// AddressSanitizer, ThreadSanitizer and HWASan insist on coming first among the loaded
/// libraries (the program exits 1 otherwise: "ASan runtime does not come first"), so it
/// goes in LD_PRELOAD before ours, where it interposes first and calls on to ours.
pub fn sanitizer_runtime(b: &[u8]) -> Option<String> {
    needed_libraries(b)?.into_iter().find(|name| {
        ["libasan.so", "libtsan.so", "libhwasan.so"]
            .iter()
            .any(|s| name.starts_with(s))
    })
}

/// The libraries an ELF64 little-endian object names in `DT_NEEDED`, in order; None if
/// `b` is not one or its dynamic section cannot be read.
pub fn needed_libraries(b: &[u8]) -> Option<Vec<String>> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return None;
    }
    // Every read is bounds-checked: a truncated or scribbled file gives no answer.
    let bytes = |o: usize, k: usize, n: usize| b.get(o.checked_add(k)?..o.checked_add(k)?.checked_add(n)?);
    let u16_at = |o: usize, k: usize| Some(u16::from_le_bytes(bytes(o, k, 2)?.try_into().ok()?) as usize);
    let u32_at = |o: usize| Some(u32::from_le_bytes(bytes(o, 0, 4)?.try_into().ok()?));
    let u64_at = |o: usize, k: usize| Some(u64::from_le_bytes(bytes(o, k, 8)?.try_into().ok()?) as usize);
    let (phoff, phentsize, phnum) = (u64_at(32, 0)?, u16_at(54, 0)?, u16_at(56, 0)?);
    // PT_LOAD: (file offset, address, size in the file); PT_DYNAMIC: where the table is.
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum {
        let o = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let (offset, vaddr, filesz) = (u64_at(o, 8)?, u64_at(o, 16)?, u64_at(o, 32)?);
        match u32_at(o)? {
            1 => loads.push((offset, vaddr, filesz)),
            2 => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    let (dyn_off, dyn_size) = dynamic?;
    let (mut needed, mut strtab) = (Vec::new(), None);
    for k in 0..dyn_size / 16 {
        let o = dyn_off.checked_add(k.checked_mul(16)?)?;
        match (u64_at(o, 0)?, u64_at(o, 8)?) {
            (0, _) => break,            // DT_NULL
            (1, v) => needed.push(v),   // DT_NEEDED: an offset in the string table
            (5, v) => strtab = Some(v), // DT_STRTAB: its address
            _ => {}
        }
    }
    let strtab = strtab?;
    let (offset, vaddr, _) = loads
        .iter()
        .find(|&&(_, vaddr, filesz)| strtab >= vaddr && strtab - vaddr < filesz)?;
    let table = offset.checked_add(strtab - vaddr)?;
    needed
        .into_iter()
        .map(|v| {
            let start = table.checked_add(v)?;
            let len = b.get(start..)?.iter().position(|&c| c == 0)?;
            std::str::from_utf8(&b[start..start + len])
                .ok()
                .map(str::to_owned)
        })
        .collect()
}

/// The running program's pid, for [`forward_signal`] (0: none).
static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Passes a termination signal on to the running program.
extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = CHILD.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; the pid is our child, not yet reaped
        // (`run` clears CHILD before it reaps it).
        unsafe { libc::kill(pid, sig) };
    }
}

/// Runs the command and returns the exit status to exit with.
pub fn run(o: &Options) -> Result<u8, RunError> {
    let lib = find_library()?;
    let program = resolve(&o.command[0])?;
    let mut cmd = Command::new(&program);
    cmd.arg0(&o.command[0]).args(&o.command[1..]);
    let note = cannot_preload(&program);
    if let Some(note) = &note {
        eprintln!("flexsc: {note}");
    } else {
        let mut preload = std::ffi::OsString::new();
        // A sanitizer's runtime must come first (see `sanitizer_runtime`).
        if let Some(runtime) = std::fs::read(&program).ok().and_then(|b| sanitizer_runtime(&b)) {
            preload.push(runtime);
            preload.push(":");
        }
        preload.push(lib);
        if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
            preload.push(":");
            preload.push(old);
        }
        cmd.env("LD_PRELOAD", preload);
    }
    for (var, value) in [
        ("FLEXSC_CPUS", &o.cpus),
        ("FLEXSC_WORKERS", &o.workers),
        ("FLEXSC_POLICY", &o.policy),
        ("FLEXSC_THREADS", &o.threads),
    ] {
        if let Some(v) = value {
            cmd.env(var, v);
        }
    }
    let want_stats = o.stats || o.json.is_some();
    let stats_dir = if want_stats {
        let dir = std::env::temp_dir().join(format!("flexsc-run-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&dir).map_err(|e| RunError::Other(format!("{}: {e}", dir.display())))?;
        // Processes of the run that switch to another user (nginx's workers run as
        // nobody) must still be able to write their file: writable by all, not listable,
        // sticky (as /tmp is), and gone at the end of the run.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1733))
            .map_err(|e| RunError::Other(format!("{}: {e}", dir.display())))?;
        cmd.env("FLEXSC_STATS_DIR", &dir);
        Some(dir)
    } else {
        None
    };
    // While CMD runs, a terminal's ^C and ^\ are for it, not for us, as with a shell.
    // SAFETY: setting signal dispositions of this single-threaded process.
    let old = unsafe {
        (
            libc::signal(libc::SIGINT, libc::SIG_IGN),
            libc::signal(libc::SIGQUIT, libc::SIG_IGN),
        )
    };
    // SIGTERM and SIGHUP sent to us are for CMD too: pass them on, then report how it
    // ended (a killed `flexsc run` must not leave its program running). One we were told
    // to ignore (`nohup flexsc run ...`) stays ignored, for CMD too. Both stay blocked
    // until the child's pid is known: one that came between the child's start and then
    // would reach a handler with no pid to pass it to, and be lost (the program ran on).
    let forwarded = {
        // SAFETY: sigset_t is plain data, filled by sigemptyset and sigaddset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGHUP);
        }
        set
    };
    // SAFETY: sigset_t is plain data; pthread_sigmask fills it.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: blocks two signals in this (the only) thread, saving the old mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &forwarded, &mut mask) };
    // Each signal with the disposition this process started with (the default, or
    // ignored: exec resets any handler).
    let kept = [libc::SIGTERM, libc::SIGHUP].map(|sig| {
        // SAFETY: sigaction is plain data; with a null new action, sigaction only reads
        // the current one into it.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::sigaction(sig, std::ptr::null(), &mut now) };
        (sig, now.sa_sigaction)
    });
    for (sig, was) in kept {
        if was != libc::SIG_IGN {
            // SAFETY: installing an async-signal-safe handler (an atomic load and kill(2)).
            unsafe { libc::signal(sig, forward_signal as *const () as libc::sighandler_t) };
        }
    }
    // SAFETY: after fork, before exec, the child puts back the dispositions and the
    // signal mask it would have had: a forwarding handler would drop a signal sent to the
    // whole group before exec. signal and sigprocmask are async-signal-safe, and the
    // child has one thread.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGINT, old.0);
            libc::signal(libc::SIGQUIT, old.1);
            for (sig, was) in kept {
                libc::signal(sig, was);
            }
            libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            // No program to pass a held signal to: ours again, as if it came before.
            for (sig, was) in kept {
                // SAFETY: restoring a disposition this process had at start.
                unsafe { libc::signal(sig, was) };
            }
            // SAFETY: restores this thread's mask (a held signal now ends us).
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) };
            let name = o.command[0].to_string_lossy();
            return Err(match e.raw_os_error() {
                Some(libc::ENOENT) => RunError::NotFound(format!("{name}: {e}")),
                _ => RunError::NotExecutable(format!("{name}: {e}")),
            });
        }
    };
    let pid = child.id();
    CHILD.store(pid as i32, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: restores this thread's mask: a signal held back meanwhile is passed on now.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) };
    // Wait for the program to end without reaping it, so that its pid stays ours (not
    // reused) for as long as the handler may pass a signal to it; then reap it.
    loop {
        // SAFETY: siginfo_t is plain data that waitid fills.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child; WNOWAIT leaves it to be reaped below.
        let ret = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if ret == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    CHILD.store(0, std::sync::atomic::Ordering::SeqCst);
    let status = child
        .wait()
        .map_err(|e| RunError::Other(format!("waiting for the program: {e}")))?;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    };
    if let Some(dir) = stats_dir {
        let summary = Summary::read_dir(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        if note.is_none() && summary.processes == 0 {
            eprintln!(
                "flexsc: no statistics were reported (the program may have been killed, or bypassed libc)"
            );
        }
        if o.stats {
            eprint!("{}", summary.table());
        }
        if let Some(path) = &o.json {
            let command: Vec<String> = o
                .command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let doc = summary.json(&command, code);
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            std::fs::write(path, text + "\n")
                .map_err(|e| RunError::Other(format!("{}: {e}", path.display())))?;
        }
    }
    Ok(code.clamp(0, 255) as u8)
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn options() {
        let o = parse(&args(&["--stats", "--cpus", "1", "--", "ls", "-l"])).unwrap();
        assert!(o.stats);
        assert_eq!(o.cpus.as_deref(), Some("1"));
        assert_eq!(o.command, args(&["ls", "-l"]));
        let o = parse(&args(&["--threads", "m-on-n", "true"])).unwrap();
        assert_eq!(o.threads.as_deref(), Some("m-on-n"));
        let o = parse(&args(&["echo", "--stats"])).unwrap();
        assert!(!o.stats, "options after CMD belong to CMD");
        assert_eq!(o.command, args(&["echo", "--stats"]));
    }

    #[test]
    fn bad_options_say_what_is_valid() {
        for (bad, needle) in [
            (&["--cpus", "x", "--", "true"][..], "2-3"),
            (&["--workers", "0", "true"][..], "1 to 4096"),
            (&["--policy", "sometimes", "true"][..], "adaptive"),
            (&["--threads", "n:m", "true"][..], "m-on-n"),
            (&["--frobnicate", "true"][..], "unknown option"),
            (&["--json"][..], "needs a value"),
            (&[][..], "no command"),
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert_eq!(e.status(), 2);
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn static_and_dynamic_executables() {
        let sh = std::fs::read("/bin/sh").unwrap();
        assert!(!is_static_elf(&sh));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }

    #[test]
    fn a_program_without_a_sanitizer_names_none() {
        let sh = std::fs::read("/bin/sh").unwrap();
        assert_eq!(sanitizer_runtime(&sh), None);
        assert_eq!(sanitizer_runtime(b"#!/bin/sh\n"), None);
        // Truncated or scribbled headers: no panic, no answer.
        assert_eq!(sanitizer_runtime(&sh[..200.min(sh.len())]), None);
        let mut bad = sh.clone();
        bad[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(sanitizer_runtime(&bad), None);
    }

    #[test]
    fn missing_commands() {
        assert_eq!(
            resolve(OsStr::new("no-such-command-flexsc"))
                .unwrap_err()
                .status(),
            127
        );
        assert_eq!(resolve(OsStr::new("/etc/passwd")).unwrap_err().status(), 126);
    }
}
