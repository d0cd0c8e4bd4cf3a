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
//! Concurrency is necessary, not sufficient: with more hot threads than cores, a thread
//! waiting for its delegated call holds a core the service thread needs, and batches stay
//! small. So a shared phase delegates only while delegation is measured to be no slower:
//! one call in [`SAMPLE_EVERY`] is timed with the TSC on each path, and a thread keeps a
//! moving average of both costs. In a shared phase it delegates if it has no delegated
//! sample yet, if an exploration is due (after [`EXPLORE_EVERY`] checks, doubling while
//! delegation keeps losing), or if its delegated calls cost no more than its direct ones.
//!
//! Every decision is counted (shared, alone, slower), and the statistics show the counts.

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
/// One call in this many is timed.
pub const SAMPLE_EVERY: u32 = 16;
/// After this many checks, a shared phase delegates whatever the costs say, to measure
/// again; each exploration that finds delegation still slower doubles the wait, up to
/// [`EXPLORE_MAX`].
pub const EXPLORE_EVERY: u32 = 16;
/// The longest wait between explorations, in checks.
pub const EXPLORE_MAX: u32 = 4096;

/// Checks that decided "delegate".
pub static SHARED_PHASES: AtomicU64 = AtomicU64::new(0);
/// Checks that decided "direct": no other hot thread.
pub static ALONE_PHASES: AtomicU64 = AtomicU64::new(0);
/// Checks that decided "direct": shared, but delegated calls were measured slower.
pub static SLOWER_PHASES: AtomicU64 = AtomicU64::new(0);

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

/// A thread's window: when it started, how many calls are left in it, and what its calls
/// have been measured to cost.
#[derive(Clone, Copy)]
pub struct Window {
    start_ns: u64,
    left: u32,
    checks: u32,
    /// Checks until the next exploration, and the current interval.
    explore_in: u32,
    explore_every: u32,
    delegate: bool,
    /// Moving averages of TSC ticks per call (0: not measured yet).
    direct_cost: u64,
    delegated_cost: u64,
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

/// What to do with one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Delegate it.
    pub delegate: bool,
    /// Time it and report with [`Window::record`].
    pub sample: bool,
}

impl Window {
    /// A window that checks at the first call.
    pub const fn new() -> Self {
        Window {
            start_ns: 0,
            left: 0,
            checks: 0,
            explore_in: 0,
            explore_every: EXPLORE_EVERY,
            delegate: false,
            direct_cost: 0,
            delegated_cost: 0,
        }
    }

    /// Counts one call; every `WINDOW_CALLS` calls re-decides.
    #[inline]
    pub fn tick(&mut self, tid: u32) -> Decision {
        if self.left > 0 {
            self.left -= 1;
            return Decision {
                delegate: self.delegate,
                sample: self.left % SAMPLE_EVERY == 0,
            };
        }
        self.left = WINDOW_CALLS;
        self.checks = self.checks.wrapping_add(1);
        let now = now_ns();
        let hot = self.start_ns != 0 && now - self.start_ns <= HOT_WINDOW_NS;
        self.start_ns = now;
        let shared = hot && {
            let stamp = (now >> 10) & 0xffff_ffff;
            let prev = LAST_HOT.swap(((tid as u64) << 32) | stamp, Ordering::Relaxed);
            let (prev_tid, prev_stamp) = ((prev >> 32) as u32, prev & 0xffff_ffff);
            let age_ns = (stamp.wrapping_sub(prev_stamp) & 0xffff_ffff) << 10;
            prev != 0 && prev_tid != tid && age_ns <= SHARED_NS
        };
        let wins = self.delegated_cost != 0 && self.delegated_cost <= self.direct_cost;
        let mut explore = false;
        if shared && !wins {
            if self.explore_in == 0 {
                explore = true;
                self.explore_in = self.explore_every;
                if self.delegated_cost != 0 {
                    self.explore_every = (self.explore_every * 2).min(EXPLORE_MAX);
                }
            } else {
                self.explore_in -= 1;
            }
        } else if wins {
            self.explore_every = EXPLORE_EVERY;
        }
        self.delegate = shared && (wins || explore);
        let counter = match (shared, self.delegate) {
            (true, true) => &SHARED_PHASES,
            (true, false) => &SLOWER_PHASES,
            (false, _) => &ALONE_PHASES,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Decision {
            delegate: self.delegate,
            sample: true,
        }
    }

    /// Adds one timed call's cost in TSC ticks.
    #[inline]
    pub fn record(&mut self, delegated: bool, ticks: u64) {
        let avg = if delegated {
            &mut self.delegated_cost
        } else {
            &mut self.direct_cost
        };
        *avg = if *avg == 0 {
            ticks.max(1)
        } else {
            (*avg * 7 + ticks) / 8
        };
    }
}

/// The time-stamp counter: a cheap clock for comparing the two paths' costs.
#[inline]
pub fn ticks() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86-64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `LAST_HOT` is one per process: a test that plants another thread's stamp in it
    /// makes a lone thread of a test running beside it look shared. Held by every test
    /// that ticks a window.
    static LAST_HOT_USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn last_hot_to_myself() -> std::sync::MutexGuard<'static, ()> {
        LAST_HOT_USERS.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn a_lone_thread_runs_directly() {
        let _alone = last_hot_to_myself();
        // No other thread has been hot (a stamp left by the test before would count).
        LAST_HOT.store(0, Ordering::Relaxed);
        let mut w = Window::new();
        for _ in 0..10 * WINDOW_CALLS {
            assert!(!w.tick(1).delegate);
        }
    }

    #[test]
    fn costs_decide_in_shared_phases() {
        let _alone = last_hot_to_myself();
        let mut w = Window::new();
        w.record(false, 100);
        w.record(true, 1000);
        w.delegated_cost = 1000;
        w.explore_in = 5; // not an exploration check next
        w.start_ns = now_ns();
        LAST_HOT.store((2u64 << 32) | ((now_ns() >> 10) & 0xffff_ffff), Ordering::Relaxed);
        let d = w.tick(1);
        assert!(!d.delegate, "delegated calls measured 10x slower: stay direct");
        w.delegated_cost = 50;
        w.left = 0;
        w.start_ns = now_ns();
        LAST_HOT.store((2u64 << 32) | ((now_ns() >> 10) & 0xffff_ffff), Ordering::Relaxed);
        assert!(w.tick(1).delegate, "delegated calls cheaper: delegate");
    }
}
