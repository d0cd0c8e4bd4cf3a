//! Helpers shared by the integration tests: finding `flexsc` and its preload library,
//! running commands with bounded waits, and comparing a native run of a command with runs
//! under `flexsc run`.
//!
//! Each test binary uses only some of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// How long one command of a comparison may run before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// The `flexsc` binary under test, with `libflexsc_preload.so` built beside it.
pub fn flexsc() -> PathBuf {
    static PRELOAD: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_flexsc"));
    if let Err(e) = PRELOAD.get_or_init(|| ensure_preload(&exe)) {
        panic!("{e}");
    }
    exe
}

/// The source folders whose changes make a built preload library stale.
const PRELOAD_SOURCES: [&str; 4] = ["libc-preload/src", "shim/src", "kernel-side/src", "scheduler/src"];

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry.metadata().ok().and_then(|m| m.modified().ok())
        };
        newest = newest.max(t);
    }
    newest
}

/// `flexsc run` looks for the library beside its own executable. `cargo test --workspace`
/// builds it there; `cargo test -p flexsc` does not (the root package does not depend on
/// the cdylib), so build it here when it is missing or older than its sources.
fn ensure_preload(exe: &Path) -> Result<PathBuf, String> {
    let dir = exe
        .parent()
        .ok_or_else(|| format!("{} has no parent folder", exe.display()))?;
    let lib = dir.join("libflexsc_preload.so");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = std::fs::metadata(&lib).and_then(|m| m.modified()).ok();
    let sources = PRELOAD_SOURCES
        .iter()
        .filter_map(|d| newest_mtime(&root.join(d)))
        .max();
    let fresh = match (built, sources) {
        (Some(b), Some(s)) => b >= s,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if fresh {
        return Ok(lib);
    }
    let release = exe.to_string_lossy().contains("/release/");
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("-p")
        .arg("flexsc-preload")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"));
    if release {
        cmd.arg("--release");
    }
    if let Some(target_dir) = dir.parent() {
        cmd.arg("--target-dir").arg(target_dir);
    }
    eprintln!("{} is missing or stale: running {cmd:?}", lib.display());
    let out = run_bounded(
        &mut cmd,
        Duration::from_secs(900),
        "cargo build -p flexsc-preload",
    );
    if !out.success() || !lib.is_file() {
        return Err(format!(
            "cannot build {} with {cmd:?} (status {}):\n{}",
            lib.display(),
            out.status_text(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(lib)
}

/// A finished command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ran {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
}

impl Ran {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// "exit 3" or "signal 9".
    pub fn status_text(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => "unknown".into(),
        }
    }

    /// Standard output as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Kills a process group this test started (the group of a child spawned with
/// `process_group(0)`).
pub fn kill_group(pgid: u32) {
    // SAFETY: kill has no memory effects; the group is one of our own children's.
    unsafe { libc::kill(-(pgid as i32), libc::SIGKILL) };
}

fn reader(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = from.read_to_end(&mut v);
        v
    })
}

/// Waits for `child` up to `timeout`; on timeout kills its process group and panics.
pub fn wait_bounded(child: &mut Child, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) => {}
            Err(e) => panic!("{what}: cannot wait: {e}"),
        }
        if Instant::now() >= deadline {
            kill_group(child.id());
            let _ = child.wait();
            panic!("{what}: still running after {timeout:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `cmd` in a process group of its own, stdin from /dev/null, capturing its output;
/// panics (after killing the group) if it takes longer than `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration, what: &str) -> Ran {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let out = reader(child.stdout.take().expect("piped stdout"));
    let err = reader(child.stderr.take().expect("piped stderr"));
    let started = Instant::now();
    let status = wait_bounded(&mut child, timeout, what);
    // A leftover grandchild may still hold the pipes: bounded as well.
    let left = timeout.saturating_sub(started.elapsed()) + Duration::from_secs(5);
    let deadline = Instant::now() + left;
    while !(out.is_finished() && err.is_finished()) {
        if Instant::now() >= deadline {
            kill_group(child.id());
            panic!("{what}: exited, but something it started still holds its output open after {left:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ran {
        code: status.code(),
        signal: status.signal(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// `flexsc run ARGS...` (ARGS include the options, `--` and the command), bounded.
pub fn flexsc_run(args: &[&str], cwd: Option<&Path>) -> Ran {
    let mut cmd = Command::new(flexsc());
    cmd.arg("run").args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    run_bounded(&mut cmd, RUN_TIMEOUT, &format!("flexsc run {}", args.join(" ")))
}

/// The path of `name` in PATH, as a shell would find it.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// `which`, or a message saying the test is skipped for lack of `name`.
pub fn need(name: &str, test: &str) -> Option<PathBuf> {
    let found = which(name);
    if found.is_none() {
        eprintln!("SKIPPED {test}: `{name}` is not installed (not found in PATH)");
    }
    found
}

/// Reads and parses a `--json` file.
pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("--json file {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("--json file {} is not JSON: {e}\n{text}", path.display()))
}

/// A number in the JSON document, failing the test when it is absent.
pub fn num(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("JSON has no number at {pointer}:\n{v:#}"))
}

/// The invariants of every `--json` document: `calls = delegated + direct` in the totals
/// and in each syscall's row, and at least one process reported.
pub fn check_consistent(v: &Value, what: &str) {
    let (calls, delegated, direct) = (
        num(v, "/totals/calls"),
        num(v, "/totals/delegated"),
        num(v, "/totals/direct"),
    );
    assert_eq!(
        calls,
        delegated + direct,
        "{what}: totals.calls != delegated + direct:\n{v:#}"
    );
    assert!(
        num(v, "/processes") >= 1,
        "{what}: no process reported statistics:\n{v:#}"
    );
    let syscalls = v
        .get("syscalls")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{what}: no syscalls object:\n{v:#}"));
    for (name, row) in syscalls {
        let (c, d, r) = (num(row, "/calls"), num(row, "/delegated"), num(row, "/direct"));
        assert_eq!(
            c,
            d + r,
            "{what}: syscalls.{name}: calls != delegated + direct: {row}"
        );
    }
}

/// `check_consistent`, and proof that the shim was in the path: `totals.delegated > 0`.
pub fn check_delegated(v: &Value, what: &str) {
    check_consistent(v, what);
    assert!(
        num(v, "/totals/delegated") > 0,
        "{what}: nothing was delegated under --policy always:\n{v:#}"
    );
}

/// One entry of a directory tree, as compared between runs (no times).
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// A folder and its permission bits.
    Dir(u32),
    /// A file, its permission bits and contents.
    File(u32, Vec<u8>),
    /// A symbolic link and its target.
    Link(PathBuf),
    /// A socket, fifo or device.
    Other(u32),
}

/// Every entry under `root`, by path relative to it.
pub fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("below root")
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
            let mode = meta.permissions().mode() & 0o7777;
            let ft = meta.file_type();
            let e = if ft.is_symlink() {
                Entry::Link(std::fs::read_link(&path).expect("readlink"))
            } else if ft.is_dir() {
                walk(root, &path, out);
                Entry::Dir(mode)
            } else if ft.is_file() {
                Entry::File(
                    mode,
                    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
                )
            } else {
                Entry::Other(meta.permissions().mode())
            };
            out.insert(rel, e);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts the trees under `a` and `b` hold the same names, kinds, permissions and contents,
/// except the relative paths in `ignore`.
pub fn assert_same_tree(a: &Path, b: &Path, ignore: &[&str], what: &str) {
    let mut ta = snapshot(a);
    let mut tb = snapshot(b);
    for i in ignore {
        ta.remove(*i);
        tb.remove(*i);
    }
    let names_a: Vec<&String> = ta.keys().collect();
    let names_b: Vec<&String> = tb.keys().collect();
    assert_eq!(names_a, names_b, "{what}: the two runs left different file names");
    for (name, ea) in &ta {
        let eb = &tb[name];
        if ea == eb {
            continue;
        }
        match (ea, eb) {
            (Entry::File(ma, ca), Entry::File(mb, cb)) => {
                assert_eq!(ma, mb, "{what}: {name}: permissions differ ({ma:o} vs {mb:o})");
                let first = ca
                    .iter()
                    .zip(cb)
                    .position(|(x, y)| x != y)
                    .unwrap_or(ca.len().min(cb.len()));
                panic!(
                    "{what}: {name}: contents differ: {} vs {} bytes, first difference at byte {first}",
                    ca.len(),
                    cb.len()
                );
            }
            _ => panic!("{what}: {name} differs: {ea:?} vs {eb:?}"),
        }
    }
}

/// Sets the modification time of everything under `root`, symlinks included, to one fixed
/// instant, so that programs that record times (tar, gzip, ls -l) see the same files in
/// every run's folder.
pub fn fix_mtimes(root: &Path) {
    use std::os::unix::ffi::OsStrExt;
    fn set(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("path without NUL");
        let t = libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        };
        let times = [t, t];
        // SAFETY: a NUL-terminated path and two timespecs, read during the call only.
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        assert_eq!(
            rc,
            0,
            "cannot set the times of {}: {}",
            p.display(),
            std::io::Error::last_os_error()
        );
    }
    fn walk(p: &Path) {
        let meta = std::fs::symlink_metadata(p).expect("stat");
        if meta.is_dir() {
            for e in std::fs::read_dir(p).expect("read_dir").flatten() {
                walk(&e.path());
            }
        }
        set(p);
    }
    walk(root);
}

/// Replaces every occurrence of `from` in `bytes` with `to`.
pub fn replace_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The placeholder for a run's folder in its output.
pub const DIR_PLACEHOLDER: &str = "<DIR>";

fn mask_dir(bytes: &[u8], dir: &Path) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut forms = vec![dir.to_path_buf()];
    if let Ok(c) = dir.canonicalize() {
        forms.push(c);
    }
    // Longest first, so a canonical path that extends the other is replaced whole.
    forms.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for f in forms {
        out = replace_bytes(&out, f.as_os_str().as_encoded_bytes(), DIR_PLACEHOLDER.as_bytes());
    }
    out
}

/// Lossy text of bytes, shortened for a failure message.
pub fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 4000 {
        let mut end = 4000;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes in all)", &s[..end], b.len())
    } else {
        s.into_owned()
    }
}

fn assert_same_output(native: &Ran, other: &Ran, what: &str) {
    assert_eq!(
        (native.code, native.signal),
        (other.code, other.signal),
        "{what}: exit status differs: native {} vs {}\nnative stderr:\n{}\nstderr:\n{}",
        native.status_text(),
        other.status_text(),
        excerpt(&native.stderr),
        excerpt(&other.stderr)
    );
    if native.stdout != other.stdout {
        let first = native
            .stdout
            .iter()
            .zip(&other.stdout)
            .position(|(x, y)| x != y)
            .unwrap_or(native.stdout.len().min(other.stdout.len()));
        panic!(
            "{what}: stdout differs ({} vs {} bytes, first difference at byte {first})\nnative:\n{}\nunder flexsc:\n{}",
            native.stdout.len(),
            other.stdout.len(),
            excerpt(&native.stdout),
            excerpt(&other.stdout)
        );
    }
    assert!(
        native.stderr == other.stderr,
        "{what}: stderr differs\nnative:\n{}\nunder flexsc:\n{}",
        excerpt(&native.stderr),
        excerpt(&other.stderr)
    );
}

/// The result of a comparison: the native run, and the JSON documents of the runs under
/// `--policy always` and under the default policy.
pub struct Compared {
    /// The native run (the folder path masked in its output).
    pub native: Ran,
    /// `--json` of the run under `--policy always`.
    pub always: Value,
    /// `--json` of the run under the default (adaptive) policy.
    pub adaptive: Value,
}

/// A command to run natively and under `flexsc run`, each time in a fresh folder prepared
/// by the same setup, and compare.
pub struct Case<'a> {
    name: String,
    cmd: Vec<OsString>,
    env: Vec<(String, String)>,
    setup: Box<dyn Fn(&Path) + 'a>,
    ignore: Vec<&'a str>,
    cwd: PathBuf,
    timeout: Duration,
}

impl<'a> Case<'a> {
    /// `cmd` run with the folder as its working directory.
    pub fn new(name: &str, cmd: &[&str]) -> Case<'a> {
        Case {
            name: name.to_string(),
            cmd: cmd.iter().map(OsString::from).collect(),
            env: vec![("LC_ALL".into(), "C".into()), ("TZ".into(), "UTC".into())],
            setup: Box::new(|_| {}),
            ignore: Vec::new(),
            cwd: PathBuf::from("."),
            timeout: RUN_TIMEOUT,
        }
    }

    /// `cmd` given as OS strings (paths).
    pub fn new_os(name: &str, cmd: &[&OsStr]) -> Case<'a> {
        let mut c = Case::new(name, &[]);
        c.cmd = cmd.iter().map(|s| s.to_os_string()).collect();
        c
    }

    /// Sets an environment variable for every run; `{DIR}` in `value` is that run's folder.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Fills each run's folder before the command runs.
    pub fn setup(mut self, f: impl Fn(&Path) + 'a) -> Self {
        self.setup = Box::new(f);
        self
    }

    /// The working directory, relative to each run's folder (default: the folder).
    pub fn cwd(mut self, rel: &Path) -> Self {
        self.cwd = rel.to_path_buf();
        self
    }

    /// A relative path left out of the tree comparison (say why at the call).
    pub fn ignore(mut self, rel: &'a str) -> Self {
        self.ignore.push(rel);
        self
    }

    fn prepare(&self) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("flexsc-test-")
            .tempdir()
            .expect("temporary folder");
        (self.setup)(dir.path());
        fix_mtimes(dir.path());
        dir
    }

    fn command(&self, dir: &Path, under: Option<(&[&str], &Path)>) -> Command {
        let mut cmd = match under {
            None => {
                let mut c = Command::new(&self.cmd[0]);
                c.args(&self.cmd[1..]);
                c
            }
            Some((opts, json)) => {
                let mut c = Command::new(flexsc());
                c.arg("run")
                    .args(opts)
                    .arg("--json")
                    .arg(json)
                    .arg("--")
                    .args(&self.cmd);
                c
            }
        };
        cmd.current_dir(dir.join(&self.cwd));
        let d = dir.to_string_lossy();
        for (k, v) in &self.env {
            cmd.env(k, v.replace("{DIR}", &d));
        }
        cmd
    }

    fn run_in(&self, dir: &Path, under: Option<(&[&str], &Path)>, label: &str) -> Ran {
        let mut cmd = self.command(dir, under);
        let mut r = run_bounded(&mut cmd, self.timeout, &format!("{} ({label})", self.name));
        r.stdout = mask_dir(&r.stdout, dir);
        r.stderr = mask_dir(&r.stderr, dir);
        r
    }

    /// Runs natively, under `flexsc run --policy always --json`, and under `flexsc run
    /// --json` (adaptive); asserts identical stdout, stderr, exit status and resulting
    /// files, `totals.delegated > 0` under `always`, and the JSON invariants of both.
    pub fn run(self) -> Compared {
        let json_dir = tempfile::tempdir().expect("temporary folder");
        let native_dir = self.prepare();
        let native = self.run_in(native_dir.path(), None, "native");

        let always_dir = self.prepare();
        let always_json = json_dir.path().join("always.json");
        let always = self.run_in(
            always_dir.path(),
            Some((&["--policy", "always"], &always_json)),
            "--policy always",
        );
        let what = format!("{}: native vs flexsc run --policy always", self.name);
        assert_same_output(&native, &always, &what);
        assert_same_tree(native_dir.path(), always_dir.path(), &self.ignore, &what);
        let always = read_json(&always_json);
        check_delegated(&always, &what);
        drop(always_dir);

        let adaptive_dir = self.prepare();
        let adaptive_json = json_dir.path().join("adaptive.json");
        let adaptive = self.run_in(adaptive_dir.path(), Some((&[], &adaptive_json)), "adaptive");
        let what = format!("{}: native vs flexsc run (adaptive)", self.name);
        assert_same_output(&native, &adaptive, &what);
        assert_same_tree(native_dir.path(), adaptive_dir.path(), &self.ignore, &what);
        let adaptive = read_json(&adaptive_json);
        check_consistent(&adaptive, &what);
        assert_eq!(
            adaptive.pointer("/policy/name").and_then(Value::as_str),
            Some("adaptive"),
            "{what}: the default policy is not adaptive:\n{adaptive:#}"
        );
        eprintln!(
            "{}: always delegated {}/{} calls in {} process(es); adaptive delegated {}/{} ({} shared, {} alone phases)",
            self.name,
            num(&always, "/totals/delegated"),
            num(&always, "/totals/calls"),
            num(&always, "/processes"),
            num(&adaptive, "/totals/delegated"),
            num(&adaptive, "/totals/calls"),
            num(&adaptive, "/policy/shared_phases"),
            num(&adaptive, "/policy/alone_phases"),
        );
        Compared {
            native,
            always,
            adaptive,
        }
    }
}

/// `cmd` in fresh folders filled by `setup`, compared natively and under `flexsc run` (see
/// [`Case::run`]). `dir` is the working directory relative to each run's folder (`.` for
/// the folder itself; it must exist after `setup`).
pub fn compare(cmd: &[&str], dir: &Path, setup: impl Fn(&Path)) -> Compared {
    Case::new(&cmd.join(" "), cmd).cwd(dir).setup(setup).run()
}

/// A deterministic pseudo-random generator (xorshift64*), for test data.
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// A fixture file's path.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Compiles `tests/fixtures/<source>` with the C compiler (`$CC` or `cc`), or for a `.cc`
/// source the C++ compiler (`$CXX` or `c++`), into `out_dir`. None, with a message naming
/// what is missing, when there is no compiler, or when the compilation fails and
/// `optional` (say, `-static` without a static libc); a failure otherwise fails the test.
pub fn compile_c(
    source: &str,
    out_dir: &Path,
    extra: &[&str],
    optional: bool,
    test: &str,
) -> Option<PathBuf> {
    let (var, default, kind) = match source.ends_with(".cc") {
        true => ("CXX", "c++", "C++"),
        false => ("CC", "cc", "C"),
    };
    let cc = std::env::var(var).unwrap_or_else(|_| default.into());
    if which(&cc).is_none() && !Path::new(&cc).is_file() {
        eprintln!("SKIPPED {test}: no {kind} compiler (`{cc}` not found)");
        return None;
    }
    let exe = out_dir.join(source.trim_end_matches(".cc").trim_end_matches(".c"));
    let mut cmd = Command::new(&cc);
    cmd.args(["-O2", "-Wall", "-pthread", "-o"])
        .arg(&exe)
        .arg(fixture(source))
        .args(extra);
    let r = run_bounded(&mut cmd, Duration::from_secs(120), &format!("{cc} {source}"));
    if !r.success() {
        let msg = format!(
            "`{cc} {} {source}` failed ({}):\n{}",
            extra.join(" "),
            r.status_text(),
            r.err()
        );
        assert!(optional, "{test}: {msg}");
        eprintln!("SKIPPED {test}: {msg}");
        return None;
    }
    Some(exe)
}
