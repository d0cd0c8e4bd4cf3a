//! When to delegate: the adaptive policy.
//!
//! A delegated call cannot beat a direct one on its own here: it pays at least one
//! cross-core cache-line round trip (~130 ns) on top of the call, and a lone thread waits
//! for it. Delegation pays only when calls from several threads meet in one batch, or when
//! the caller has other work to overlap (user-level threads). So under `adaptive` a thread
//! delegates only in a *shared phase*: while another thread is also making system calls at
//! a high rate.
//!
//! How a thread knows, for the cost of one clock read and one atomic swap every
//! [`WINDOW_CALLS`] calls:
//! - every `WINDOW_CALLS` calls it reads the monotonic clock; if those calls took at most
//!   [`HOT_WINDOW_NS`], the thread is *hot* (over 64k calls/s);
//! - a hot thread swaps its id and the time into [`LAST_HOT`]; if the previous value names
//!   another thread that was hot within [`SHARED_NS`], calls are concurrent, and this
//!   thread delegates its delegable calls until its next check;
//! - otherwise (a single hot thread, or calls too sparse to batch) it runs them directly.
//!
//! Every decision is counted, and the statistics show both counts.

use std::sync::atomic::{AtomicU64, Ordering};

use flexsc_kernel_side::config::ConfigError;

/// Calls between two checks.
pub const WINDOW_CALLS: u32 = 256;
/// A thread is hot if `WINDOW_CALLS` calls took at most this long.
pub const HOT_WINDOW_NS: u64 = 4_000_000;
/// Another hot thread seen within this long means the phase is shared.
pub const SHARED_NS: u64 = 4_000_000;

/// The last hot thread: its tid in the high 32 bits, the low 32 bits of its check time in
/// units of 2^10 ns (~1 µs) in the low ones.
static LAST_HOT: AtomicU64 = AtomicU64::new(0);
/// Checks that decided "delegate".
pub static SHARED_PHASES: AtomicU64 = AtomicU64::new(0);
/// Checks that decided "direct".
pub static ALONE_PHASES: AtomicU64 = AtomicU64::new(0);

/// The policy, from `FLEXSC_POLICY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Delegate in shared phases only (the default).
    Adaptive,
    /// Delegate every delegable call.
    Always,
    /// Never delegate; only count.
    Never,
}

/// The valid forms of `FLEXSC_POLICY`.
pub const POLICY_FORM: &str = "one of adaptive, always, never";

impl Policy {
    /// Parses `FLEXSC_POLICY` (unset: adaptive).
    pub fn from_env() -> Result<Policy, ConfigError> {
        match std::env::var("FLEXSC_POLICY") {
            Err(_) => Ok(Policy::Adaptive),
            Ok(v) => Policy::parse(&v).ok_or(ConfigError {
                name: "FLEXSC_POLICY".into(),
                value: v,
                expected: POLICY_FORM,
            }),
        }
    }

    /// Parses a policy name.
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "adaptive" => Some(Policy::Adaptive),
            "always" => Some(Policy::Always),
            "never" => Some(Policy::Never),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Adaptive => "adaptive",
            Policy::Always => "always",
            Policy::Never => "never",
        }
    }
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec (vDSO: no system call, not interposed).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A thread's window: when it started, and how many calls are left in it.
#[derive(Clone, Copy)]
pub struct Window {
    start_ns: u64,
    left: u32,
    shared: bool,
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    /// A window that checks at the first call.
    pub const fn new() -> Self {
        Window {
            start_ns: 0,
            left: 0,
            shared: false,
        }
    }

    /// Counts one call; every `WINDOW_CALLS` calls re-decides. Returns whether this thread
    /// is in a shared phase.
    #[inline]
    pub fn tick(&mut self, tid: u32) -> bool {
        if self.left > 0 {
            self.left -= 1;
            return self.shared;
        }
        self.left = WINDOW_CALLS;
        let now = now_ns();
        let hot = self.start_ns != 0 && now - self.start_ns <= HOT_WINDOW_NS;
        self.start_ns = now;
        self.shared = hot && {
            let stamp = (now >> 10) & 0xffff_ffff;
            let prev = LAST_HOT.swap(((tid as u64) << 32) | stamp, Ordering::Relaxed);
            let (prev_tid, prev_stamp) = ((prev >> 32) as u32, prev & 0xffff_ffff);
            let age_ns = (stamp.wrapping_sub(prev_stamp) & 0xffff_ffff) << 10;
            prev != 0 && prev_tid != tid && age_ns <= SHARED_NS
        };
        let counter = if self.shared {
            &SHARED_PHASES
        } else {
            &ALONE_PHASES
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.shared
    }
}
