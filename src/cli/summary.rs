//! Merging the per-process statistics files that `libflexsc_preload.so` writes (one per
//! process image: forked children and exec'd programs are counted, and merged here), and
//! printing them.
//!
//! # The JSON written by `flexsc run --json FILE`
//!
//! ```text
//! {
//!   "version": 1,
//!   "command": ["tar", "cf", "-", "/usr/share/doc"],
//!   "exit_status": 0,
//!   "processes": 3,                 // process images that reported (fork children, execs)
//!   "policy": {"name": "adaptive", "shared_phases": 0, "alone_phases": 812, "slower_phases": 0},
//!                                   // policy checks: delegated (shared phase), direct (no
//!                                   // other hot thread), direct (delegation measured slower)
//!   "modes": ["service threads on cores [1]"],
//!   "isolated": false,              // a thread confined itself, so delegation stopped
//!   "totals": {"calls": 0, "delegated": 0, "direct": 0, "errors": 0, "batches": 0},
//!   "batch_sizes": {"1": 0, "2-3": 0, "4-7": 0, "8-15": 0, "16-31": 0, "32-63": 0, "64+": 0},
//!   "declined": 0,                  // delegated calls that would have waited: run on their caller
//!   "taken_back": 0,                // posted calls no service thread claimed in 10 ms (one
//!                                   // stuck in a call that waits): run on their caller
//!   "backends": ["auto"],           // how service threads ran batches (and why not io_uring)
//!   "uring": {"batches": 0, "calls": 0, "parked": 0},  // batches and calls run through io_uring;
//!                                   // calls that waited in the ring instead of on a worker
//!   "auto_learned": ["read 438 ns direct / 932 ns in the ring (cheaper: direct); ..."],
//!                                   // the auto backend's per-call costs, per service thread
//!   "syscalls": {"read": {"nr": 0, "calls": 0, "delegated": 0, "direct": 0, "errors": 0,
//!                         "mean_batch": 0.0}}
//! }
//! ```
//!
//! `calls = delegated + direct`; `mean_batch` is the mean size of the batches that a
//! syscall's calls ran in (delegated ones, and ones a service thread handed back because
//! they would have waited).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use flexsc_kernel_side::runtime::{batch_sizes_text, write_syscall_table};
use flexsc_kernel_side::SyscallStats;
use serde_json::{json, Value};

/// One syscall's merged counters: its number, and the runtime's counters summed over
/// every process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Syscall number.
    pub nr: u64,
    /// The counters.
    pub stats: SyscallStats,
}

/// Every process's statistics, merged.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Process images that reported.
    pub processes: u64,
    /// The policy's name.
    pub policy: String,
    /// Policy checks that chose: to delegate / direct, alone / direct, measured slower.
    pub phases: (u64, u64, u64),
    /// Distinct runtime modes seen.
    pub modes: Vec<String>,
    /// Whether any process stopped delegating because a thread isolated itself.
    pub isolated: bool,
    /// Batches run by service threads.
    pub batches: u64,
    /// Batches by size.
    pub batch_sizes: [u64; 7],
    /// Calls handed back to their callers.
    pub declined: u64,
    /// Calls their callers took back: no service thread claimed them in time.
    pub taken_back: u64,
    /// Distinct backends reported (with why io_uring is not used, if it is not).
    pub backends: Vec<String>,
    /// Batches, calls and parked waits through io_uring.
    pub uring: (u64, u64, u64),
    /// What the auto backend learned, as each process's service threads last said it
    /// (distinct lines, at most 8).
    pub auto_learned: Vec<String>,
    /// By syscall name.
    pub syscalls: BTreeMap<String, Row>,
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

impl Summary {
    /// Reads and merges every `*.json` in `dir`. Files that do not parse are skipped
    /// (a process killed while writing leaves at most a `.tmp`).
    pub fn read_dir(dir: &Path) -> Summary {
        let mut s = Summary::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return s;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(v) = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                {
                    s.add(&v);
                }
            }
        }
        s
    }

    /// Adds one process's file.
    pub fn add(&mut self, v: &Value) {
        self.processes += 1;
        if let Some(p) = v.get("policy").and_then(Value::as_str) {
            self.policy = p.to_string();
        }
        if let Some(phases) = v.get("phases") {
            self.phases.0 += num(phases, "shared");
            self.phases.1 += num(phases, "alone");
            self.phases.2 += num(phases, "slower");
        }
        if let Some(m) = v.get("mode").and_then(Value::as_str) {
            if !self.modes.iter().any(|x| x == m) {
                self.modes.push(m.to_string());
            }
        }
        self.isolated |= v.get("isolated").and_then(Value::as_bool).unwrap_or(false);
        if let Some(b) = v.get("backend").and_then(Value::as_str).filter(|b| !b.is_empty()) {
            if !self.backends.iter().any(|x| x == b) {
                self.backends.push(b.to_string());
            }
        }
        for line in v
            .get("auto_learned")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(line) = line.as_str() {
                if self.auto_learned.len() < 8 && !self.auto_learned.iter().any(|x| x == line) {
                    self.auto_learned.push(line.to_string());
                }
            }
        }
        if let Some(u) = v.get("uring") {
            self.uring.0 += num(u, "batches");
            self.uring.1 += num(u, "calls");
            self.uring.2 += num(u, "parked");
        }
        self.batches += num(v, "batches");
        self.declined += num(v, "declined");
        self.taken_back += num(v, "taken_back");
        if let Some(sizes) = v.get("batch_sizes").and_then(Value::as_array) {
            for (sum, n) in self.batch_sizes.iter_mut().zip(sizes) {
                *sum += n.as_u64().unwrap_or(0);
            }
        }
        if let Some(calls) = v.get("syscalls").and_then(Value::as_object) {
            for (name, c) in calls {
                let row = self.syscalls.entry(name.clone()).or_default();
                row.nr = num(c, "nr");
                row.stats += SyscallStats {
                    calls: num(c, "calls"),
                    delegated: num(c, "delegated"),
                    direct: num(c, "direct"),
                    errors: num(c, "errors"),
                    batch_sum: num(c, "batch_sum"),
                    batched: num(c, "batched"),
                };
            }
        }
    }

    /// The counters summed over every syscall.
    pub fn totals(&self) -> SyscallStats {
        self.syscalls
            .values()
            .fold(SyscallStats::default(), |mut sum, r| {
                sum += r.stats;
                sum
            })
    }

    /// The `strace -c`-style table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "flexsc: {} process image(s); policy {}; {}",
            self.processes,
            if self.policy.is_empty() { "?" } else { &self.policy },
            if self.modes.is_empty() {
                "no runtime reported".to_string()
            } else {
                self.modes.join(" / ")
            }
        );
        let rows = self
            .syscalls
            .iter()
            .map(|(name, row)| (name.clone(), row.stats))
            .collect();
        write_syscall_table(&mut out, rows);
        let _ = writeln!(
            out,
            "batches: {}; sizes {}; declined: {}; taken back: {}; policy checks: {} delegate, {} alone, {} slower{}",
            self.batches,
            batch_sizes_text(&self.batch_sizes),
            self.declined,
            self.taken_back,
            self.phases.0,
            self.phases.1,
            self.phases.2,
            if self.isolated {
                "; delegation stopped: a thread isolated itself"
            } else {
                ""
            }
        );
        if !self.backends.is_empty() {
            let _ = writeln!(
                out,
                "backend: {}; io_uring: {} batches, {} calls, {} parked waits",
                self.backends.join(" / "),
                self.uring.0,
                self.uring.1,
                self.uring.2
            );
        }
        for line in &self.auto_learned {
            let _ = writeln!(out, "auto backend learned: {line}");
        }
        out
    }

    /// The JSON document (see the module docs).
    pub fn json(&self, command: &[String], exit_status: i32) -> Value {
        let t = self.totals();
        let syscalls: serde_json::Map<String, Value> = self
            .syscalls
            .iter()
            .map(|(name, row)| {
                let r = &row.stats;
                (
                    name.clone(),
                    json!({"nr": row.nr, "calls": r.calls, "delegated": r.delegated, "direct": r.direct,
                           "errors": r.errors, "mean_batch": r.mean_batch()}),
                )
            })
            .collect();
        let b = &self.batch_sizes;
        json!({
            "version": 1,
            "command": command,
            "exit_status": exit_status,
            "processes": self.processes,
            "policy": {"name": self.policy, "shared_phases": self.phases.0, "alone_phases": self.phases.1,
                       "slower_phases": self.phases.2},
            "modes": self.modes,
            "isolated": self.isolated,
            "totals": {"calls": t.calls, "delegated": t.delegated, "direct": t.direct, "errors": t.errors,
                       "batches": self.batches},
            "batch_sizes": {"1": b[0], "2-3": b[1], "4-7": b[2], "8-15": b[3], "16-31": b[4], "32-63": b[5], "64+": b[6]},
            "declined": self.declined,
            "taken_back": self.taken_back,
            "backends": self.backends,
            "uring": {"batches": self.uring.0, "calls": self.uring.1, "parked": self.uring.2},
            "auto_learned": self.auto_learned,
            "syscalls": syscalls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_processes() {
        let mut s = Summary::default();
        let one = json!({"pid": 1, "policy": "always", "mode": "m", "phases": {"shared": 1, "alone": 2},
            "batches": 3, "batch_sizes": [3, 0, 0, 0, 0, 0, 0], "declined": 0,
            "syscalls": {"read": {"nr": 0, "calls": 5, "delegated": 3, "direct": 2, "errors": 1, "batch_sum": 3,
                "batched": 3}}});
        s.add(&one);
        s.add(&one);
        assert_eq!(s.processes, 2);
        let t = s.totals();
        assert_eq!((t.calls, t.delegated, t.direct, t.errors), (10, 6, 4, 2));
        let j = s.json(&["x".into()], 0);
        assert_eq!(j["totals"]["calls"], 10);
        assert_eq!(j["totals"]["batches"], 6);
        assert_eq!(j["syscalls"]["read"]["mean_batch"], 1.0);
        assert!(s.table().contains("read"));
    }

    #[test]
    fn merges_backends_and_io_uring_counts() {
        let mut s = Summary::default();
        s.add(&json!({"backend": "auto", "uring": {"batches": 2, "calls": 9, "parked": 1}}));
        s.add(&json!({"backend": "auto", "uring": {"batches": 1, "calls": 3, "parked": 0}}));
        s.add(&json!({"backend": "direct: io_uring unavailable: denied"}));
        assert_eq!(s.backends, ["auto", "direct: io_uring unavailable: denied"]);
        assert_eq!(s.uring, (3, 12, 1));
        let j = s.json(&["x".into()], 0);
        assert_eq!(j["uring"]["calls"], 12);
        assert_eq!(j["backends"][1], "direct: io_uring unavailable: denied");
        assert!(s
            .table()
            .contains("backend: auto / direct: io_uring unavailable: denied; io_uring: 3 batches"));
    }
}
