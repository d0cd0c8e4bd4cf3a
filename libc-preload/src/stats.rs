//! Writing this process's statistics for `flexsc run`.
//!
//! When `FLEXSC_STATS_DIR` is set, the process writes one JSON file there at exit, at
//! `_exit`, and before `exec` (an exec'd image is a new file). A file holds cumulative
//! counts and is rewritten in place if the process writes again (a failed exec, then exit),
//! so nothing is counted twice. `flexsc run` merges the files of every process of the run.
//!
//! One file: `{"pid", "policy", "mode", "isolated", "phases": {"shared", "alone", "slower"},
//! "batches", "batched_entries", "batch_sizes": [7], "declined", "taken_back", "backend",
//! "uring": {"batches", "calls", "parked"},
//! "syscalls": {name: {"nr", "calls", "delegated", "direct", "errors", "batch_sum", "batched"}}}`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use crate::policy::{ALONE_PHASES, SHARED_PHASES, SLOWER_PHASES};
use crate::route::{isolated, policy_name, quietly, runtime};

/// The file this process image writes, chosen on first write.
static PATH: Mutex<Option<std::path::PathBuf>> = Mutex::new(None);
/// `FLEXSC_STATS_DIR`, read when the library loads: a program may clear its environment
/// (nginx's workers keep only `TZ`) long before it exits.
static DIR: Mutex<Option<std::ffi::OsString>> = Mutex::new(None);

/// Remembers `FLEXSC_STATS_DIR` (from the constructor).
pub fn init() {
    if let Ok(mut dir) = DIR.lock() {
        *dir = std::env::var_os("FLEXSC_STATS_DIR").filter(|d| !d.is_empty());
    }
}

/// Forgets the file name: a forked child or an exec'd image writes its own.
pub fn new_image() {
    if let Ok(mut p) = PATH.try_lock() {
        *p = None;
    }
}

/// Writes the statistics file, if `FLEXSC_STATS_DIR` is set.
pub fn write() {
    quietly(|| {
        let Some(dir) = DIR.lock().ok().and_then(|d| d.clone()) else {
            return;
        };
        let Some(rt) = runtime() else { return };
        let Ok(mut path) = PATH.lock() else { return };
        let path = path.get_or_insert_with(|| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: writes one timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
            std::path::Path::new(&dir).join(format!(
                "{}-{}{:09}.json",
                std::process::id(),
                ts.tv_sec,
                ts.tv_nsec
            ))
        });
        let mut stats = rt.stats();
        if let Some(user_threads) = crate::mn::scheduler_stats() {
            // M-on-N user threads post through the scheduler's own runtime: one total.
            for (total, s) in stats.syscalls.iter_mut().zip(user_threads.syscalls) {
                *total += s;
            }
            stats.batches += user_threads.batches;
            stats.batched_entries += user_threads.batched_entries;
            for (total, n) in stats.batch_sizes.iter_mut().zip(user_threads.batch_sizes) {
                *total += n;
            }
            stats.declined += user_threads.declined;
            stats.taken_back += user_threads.taken_back;
        }
        let mut out = String::with_capacity(8192);
        let _ = write!(
            out,
            "{{\"pid\":{},\"policy\":\"{}\",\"mode\":{},\"isolated\":{},\"phases\":{{\"shared\":{},\"alone\":{},\"slower\":{}}},",
            std::process::id(),
            policy_name(),
            json_string(&stats.mode.to_string()),
            isolated(),
            SHARED_PHASES.load(Ordering::Relaxed),
            ALONE_PHASES.load(Ordering::Relaxed),
            SLOWER_PHASES.load(Ordering::Relaxed),
        );
        let _ = write!(
            out,
            "\"batches\":{},\"batched_entries\":{},\"batch_sizes\":{:?},\"declined\":{},\"taken_back\":{},",
            stats.batches, stats.batched_entries, stats.batch_sizes, stats.declined, stats.taken_back
        );
        let _ = write!(
            out,
            "\"backend\":{},\"uring\":{{\"batches\":{},\"calls\":{},\"parked\":{}}},",
            json_string(&stats.backend),
            stats.uring_batches,
            stats.uring_calls,
            stats.uring_parked
        );
        let learned: Vec<String> = stats
            .learned
            .iter()
            .filter_map(|l| l.describe())
            .map(|l| json_string(&l))
            .collect();
        let _ = write!(out, "\"auto_learned\":[{}],\"syscalls\":{{", learned.join(","));
        let mut first = true;
        for (nr, s) in stats.syscalls.iter().enumerate().filter(|(_, s)| s.calls > 0) {
            let name = flexsc_shim::table::name(nr as u64)
                .map(str::to_string)
                .unwrap_or(format!("syscall_{nr}"));
            let _ = write!(
                out,
                "{}\"{}\":{{\"nr\":{},\"calls\":{},\"delegated\":{},\"direct\":{},\"errors\":{},\"batch_sum\":{},\"batched\":{}}}",
                if first { "" } else { "," },
                name,
                nr,
                s.calls,
                s.delegated,
                s.direct,
                s.errors,
                s.batch_sum,
                s.batched
            );
            first = false;
        }
        out.push_str("}}\n");
        let tmp = path.with_extension("tmp");
        let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(out.as_bytes()));
        if written.is_ok() {
            let _ = std::fs::rename(&tmp, &*path);
        }
    });
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
