//! The `flexsc` command.
//!
//! ```text
//! flexsc run [--stats] [--json FILE] [--cpus LIST] [--workers N] [--policy P] [--threads T] [--] CMD [ARGS...]
//! flexsc bench [--json FILE] [--svg DIR] [--rounds N]
//! flexsc demo [--calls N] [--cpus LIST] [--workers N]
//! flexsc help [run|bench|demo]
//! ```
//!
//! `run` runs CMD with `libflexsc_preload.so` (see `flexsc::cli::run`). `bench` compares
//! direct calls, the syscall pages, io_uring and tokio in one run (`flexsc::cli::bench`).
//! `demo` runs a small file and pipe workload through the syscall pages of a fresh
//! runtime, checks every answer, and prints the statistics table. `help` and `--help` say
//! what the options do (`flexsc::cli::help`).

use std::process::ExitCode;

use flexsc::cli::help;
use flexsc::{Builder, Call, Config};

/// Prints `command`'s help (None: the overview) on stdout.
fn print_help(command: Option<&str>) -> ExitCode {
    match help::help(command) {
        Some(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "flexsc: no help for {:?}: it is not a command\n{}",
                command.unwrap_or_default(),
                help::usage()
            );
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if raw.first().is_some_and(|a| a == "run") {
        return match flexsc::cli::run::parse(&raw[1..]) {
            Ok(o) if o.help => print_help(Some("run")),
            Ok(o) => match flexsc::cli::run::run(&o) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("flexsc: {e}");
                    ExitCode::from(e.status())
                }
            },
            Err(e) => {
                eprintln!("flexsc: {e}");
                ExitCode::from(e.status())
            }
        };
    }
    let args: Vec<String> = raw.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if args.first().is_some_and(|a| a == "bench") {
        return match flexsc::cli::bench::parse(&args[1..]) {
            Err(msg) => {
                eprintln!("flexsc: {msg}\n{}", help::BENCH_USAGE);
                ExitCode::from(2)
            }
            Ok(o) if o.help => print_help(Some("bench")),
            Ok(o) => match flexsc::cli::bench::run(&o) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("flexsc bench: {e}");
                    ExitCode::FAILURE
                }
            },
        };
    }
    match args.first().map(String::as_str) {
        Some("demo") if args[1..].iter().any(|a| a == "-h" || a == "--help") => print_help(Some("demo")),
        Some("demo") => match demo(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure::Usage(msg)) => {
                eprintln!("flexsc: {msg}\n{}", help::DEMO_USAGE);
                ExitCode::from(2)
            }
            Err(Failure::Run(msg)) => {
                eprintln!("flexsc: {msg}");
                ExitCode::FAILURE
            }
        },
        Some("-h" | "--help") => print_help(None),
        Some("help") => print_help(args.get(1).map(String::as_str)),
        Some(other) => {
            eprintln!("flexsc: unknown command {other:?}\n{}", help::usage());
            ExitCode::from(2)
        }
        None => {
            eprintln!("{}", help::usage());
            ExitCode::from(2)
        }
    }
}

enum Failure {
    Usage(String),
    Run(String),
}

fn demo(args: &[String]) -> Result<(), Failure> {
    let mut config = Config::from_env().map_err(|e| Failure::Usage(e.to_string()))?;
    let mut calls = 10_000u64;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| Failure::Usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--calls" => {
                calls = flexsc_kernel_side::config::parse_number(
                    "--calls",
                    value()?,
                    1,
                    100_000_000,
                    "a whole number from 1 to 100000000",
                )
                .map_err(|e| Failure::Usage(e.to_string()))?
            }
            "--cpus" => {
                config.cpus = Some(
                    flexsc_kernel_side::config::parse_cpus("--cpus", value()?)
                        .map_err(|e| Failure::Usage(e.to_string()))?,
                )
            }
            "--workers" => {
                config.workers = flexsc_kernel_side::config::parse_number(
                    "--workers",
                    value()?,
                    1,
                    4096,
                    flexsc_kernel_side::config::WORKERS_FORM,
                )
                .map_err(|e| Failure::Usage(e.to_string()))? as usize
            }
            other => return Err(Failure::Usage(format!("unknown option {other:?}"))),
        }
    }
    let runtime = Builder::from_config(config)
        .build()
        .map_err(|e| Failure::Run(format!("cannot start: {e}")))?;
    let mut me = runtime.submitter().map_err(|e| Failure::Run(e.to_string()))?;
    let run = |what: &str, ret: i64| flexsc::check(ret).map_err(|e| Failure::Run(format!("{what}: {e}")));

    // A scratch file in a fresh directory.
    let dir = std::env::temp_dir().join(format!("flexsc-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Failure::Run(format!("{}: {e}", dir.display())))?;
    let path = std::ffi::CString::new(dir.join("data").into_os_string().into_encoded_bytes())
        .expect("no NUL in a temp path");
    // SAFETY (all calls below): arguments point at live locals and buffers of the sizes given.
    let fd = run("openat", unsafe {
        me.call(
            libc::SYS_openat as u64,
            [
                libc::AT_FDCWD as u64,
                path.as_ptr() as u64,
                (libc::O_CREAT | libc::O_RDWR | libc::O_TRUNC) as u64,
                0o600,
                0,
                0,
            ],
        )
    })? as u64;

    // Batches of 64-byte pwrites, then preads of the same records.
    let record = [b'x'; 64];
    let mut buf = vec![0u8; 64 * 64];
    let mut results = [0i64; 64];
    let mut done = 0;
    while done < calls {
        let n = (calls - done).min(64) as usize;
        let writes: Vec<Call> = (0..n)
            .map(|i| {
                Call::new(
                    libc::SYS_pwrite64,
                    [
                        fd,
                        record.as_ptr() as u64,
                        64,
                        ((done as usize + i) % 4096 * 64) as u64,
                        0,
                        0,
                    ],
                )
            })
            .collect();
        unsafe { me.call_batch(&writes, &mut results[..n]) };
        for &r in &results[..n] {
            if r != 64 {
                run("pwrite64", r)?;
                return Err(Failure::Run(format!("pwrite64 wrote {r} bytes, not 64")));
            }
        }
        let reads: Vec<Call> = (0..n)
            .map(|i| {
                Call::new(
                    libc::SYS_pread64,
                    [
                        fd,
                        buf[i * 64..].as_mut_ptr() as u64,
                        64,
                        ((done as usize + i) % 4096 * 64) as u64,
                        0,
                        0,
                    ],
                )
            })
            .collect();
        unsafe { me.call_batch(&reads, &mut results[..n]) };
        if results[..n].iter().any(|&r| r != 64) || buf[..n * 64].iter().any(|&b| b != b'x') {
            return Err(Failure::Run("pread64 did not read back what was written".into()));
        }
        done += n as u64;
    }
    // Single calls: the synchronous path.
    for _ in 0..calls.min(10_000) {
        let ppid = unsafe { me.call(libc::SYS_getppid as u64, [0; 6]) };
        run("getppid", ppid)?;
    }
    run("fsync", unsafe {
        me.call(libc::SYS_fsync as u64, [fd, 0, 0, 0, 0, 0])
    })?;
    run("close", unsafe {
        me.call(libc::SYS_close as u64, [fd, 0, 0, 0, 0, 0])
    })?;
    // A read that has to wait: a blocking worker takes it while the service thread goes on.
    let mut pipe = [0i32; 2];
    run("pipe2", unsafe {
        me.call(
            libc::SYS_pipe2 as u64,
            [pipe.as_mut_ptr() as u64, libc::O_CLOEXEC as u64, 0, 0, 0, 0],
        )
    })?;
    let writer = pipe[1];
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        // SAFETY: writes 5 bytes from a static string to our pipe.
        unsafe {
            flexsc::syscall(
                libc::SYS_write,
                [writer as u64, b"hello".as_ptr() as u64, 5, 0, 0, 0],
            )
        }
    });
    let mut got = [0u8; 5];
    let n = run("read", unsafe {
        me.call(
            libc::SYS_read as u64,
            [pipe[0] as u64, got.as_mut_ptr() as u64, 5, 0, 0, 0],
        )
    })?;
    let _ = feeder.join();
    if &got[..n as usize] != b"hello" {
        return Err(Failure::Run("the pipe read returned the wrong bytes".into()));
    }
    for fd in pipe {
        run("close", unsafe {
            me.call(libc::SYS_close as u64, [fd as u64, 0, 0, 0, 0, 0])
        })?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(me);
    let stats = runtime.shutdown();
    eprint!("{}", stats.table());
    println!(
        "flexsc demo: {} calls checked, {} delegated, mean batch {:.1}",
        stats.totals().calls,
        stats.totals().delegated,
        stats.mean_batch()
    );
    Ok(())
}
