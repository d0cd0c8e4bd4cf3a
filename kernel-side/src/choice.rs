//! The per-batch backend choice of [`crate::Backend::Auto`]: for each kind of call
//! io_uring can run, whichever of the direct and io_uring paths the service thread has
//! measured to be faster on this machine, for these files.
//!
//! The model: running `c` calls of kind `k` directly costs `c × direct[k]`; running them
//! in the ring costs `enter + c × ring[k]`, where `enter` is one `io_uring_enter` round
//! trip (measured at start with NOPs) and `ring[k]` the marginal cost of one more SQE of
//! that kind. A batch sends to the ring the kinds for which `ring[k] < direct[k]`, if what
//! they save together pays for the enter. Why learned and not fixed: the answer depends on
//! the file system and the cache, not on the call alone. Measured here (ext4, Linux 6.18,
//! `cargo bench --bench compare`): a cached 4 KiB pread costs about the same either way,
//! a 64-byte buffered pwrite to ext4 costs ~3× more through io_uring (ext4 has no
//! non-blocking buffered write, so io_uring hands it to its worker threads), while on
//! tmpfs it does not.
//!
//! The costs are exponentially weighted averages, fed by timing one pass in
//! [`SAMPLE_EVERY`] (a clock read costs ~20 ns here), and every [`EXPLORE_EVERY`]-th
//! batch with a kind tries the other path for that kind, so the estimates follow a change
//! (a cache gone cold, a file system that starts to block).

/// Kinds of batch call whose costs are learned separately.
pub const KINDS: usize = 8;
/// Kind names, for the statistics.
pub const KIND_NAMES: [&str; KINDS] = [
    "read",
    "write",
    "sync",
    "open",
    "close",
    "stat",
    "resize",
    "namespace",
];

/// Every how many passes the costs are measured.
pub const SAMPLE_EVERY: u32 = 8;
/// Every how many batches with a kind the path not chosen is tried for it again.
pub const EXPLORE_EVERY: u32 = 64;

/// The kind of a batch call that io_uring can run.
pub fn kind(nr: u32) -> Option<usize> {
    Some(match nr as i64 {
        libc::SYS_pread64 | libc::SYS_preadv => 0,
        libc::SYS_pwrite64 | libc::SYS_pwritev => 1,
        libc::SYS_fsync | libc::SYS_fdatasync => 2,
        libc::SYS_openat => 3,
        libc::SYS_close => 4,
        libc::SYS_statx => 5,
        libc::SYS_fallocate | libc::SYS_ftruncate => 6,
        libc::SYS_unlinkat | libc::SYS_mkdirat | libc::SYS_renameat2 => 7,
        _ => return None,
    })
}

/// An exponentially weighted moving average of ns per call (weight 1/8 for a new sample).
#[derive(Clone, Copy, Debug, Default)]
struct Average {
    ns: f64,
    samples: u32,
}

impl Average {
    fn add(&mut self, ns: f64) {
        if self.samples == 0 {
            self.ns = ns;
        } else {
            self.ns += (ns - self.ns) / 8.0;
        }
        self.samples = self.samples.saturating_add(1);
    }

    fn known(&self) -> bool {
        self.samples > 0
    }
}

/// One service thread's learned costs (owned by it: no sharing, no atomics).
#[derive(Clone, Debug)]
pub struct Choice {
    direct: [Average; KINDS],
    ring: [Average; KINDS],
    /// One `io_uring_enter` round trip, ns.
    enter_ns: f64,
    /// Batches seen with each kind (for exploring).
    seen: [u32; KINDS],
    passes: u32,
}

impl Choice {
    /// A learner that knows only the cost of one enter.
    pub fn new(enter_ns: f64) -> Self {
        Choice {
            direct: [Average::default(); KINDS],
            ring: [Average::default(); KINDS],
            enter_ns,
            seen: [0; KINDS],
            passes: 0,
        }
    }

    /// Whether this pass should be timed: one in [`SAMPLE_EVERY`].
    pub fn sample_this_pass(&mut self) -> bool {
        self.passes = self.passes.wrapping_add(1);
        self.passes % SAMPLE_EVERY == 0
    }

    /// Which kinds of this batch (`counts[k]` calls of kind `k`) run in the ring: bit `k`.
    /// Also says whether the decision explores, so that the pass gets timed.
    pub fn decide(&mut self, counts: &[u32; KINDS]) -> (u32, bool) {
        let (mut forced_ring, mut chosen, mut explored) = (0u32, 0u32, false);
        let mut saving = 0.0;
        for (k, &count) in counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            self.seen[k] = self.seen[k].wrapping_add(1);
            let (d, r) = (self.direct[k], self.ring[k]);
            let better_in_ring = d.known() && r.known() && r.ns < d.ns;
            let explore = !d.known() || !r.known() || self.seen[k] % EXPLORE_EVERY == 0;
            if explore {
                explored = true;
                // The path with no estimate yet, or the one not chosen lately.
                let try_ring = !r.known() || (d.known() && !better_in_ring);
                if try_ring {
                    forced_ring |= 1 << k;
                }
                continue;
            }
            if better_in_ring {
                chosen |= 1 << k;
                saving += f64::from(count) * (d.ns - r.ns);
            }
        }
        // The enter is paid once for all the kinds in the ring: worth it if they save
        // more together, or if exploring pays it anyway.
        if forced_ring == 0 && saving <= self.enter_ns {
            chosen = 0;
        }
        (chosen | forced_ring, explored)
    }

    /// A call of kind `k` ran directly in `ns`.
    pub fn record_direct(&mut self, k: usize, ns: f64) {
        self.direct[k].add(ns);
    }

    /// The ring ran `counts[k]` calls of each kind in `ns` (submit to last completion).
    pub fn record_ring(&mut self, counts: &[u32; KINDS], ns: f64) {
        let total: u32 = counts.iter().sum();
        if total == 0 {
            return;
        }
        let per_call = (ns - self.enter_ns).max(0.0);
        let present = counts.iter().filter(|&&c| c > 0).count();
        let predicted: f64 = (0..KINDS).map(|k| f64::from(counts[k]) * self.ring[k].ns).sum();
        let all_known = (0..KINDS).all(|k| counts[k] == 0 || self.ring[k].known());
        for (k, &count) in counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let sample = if present == 1 {
                per_call / f64::from(count)
            } else if all_known && predicted > 0.0 {
                // A mix: share the time out in proportion to what each kind was thought
                // to cost.
                self.ring[k].ns * per_call / predicted
            } else {
                per_call / f64::from(total)
            };
            self.ring[k].add(sample);
        }
    }

    /// The learned costs, ns per call: (kind, direct, ring), for kinds with both known.
    pub fn costs(&self) -> impl Iterator<Item = (&'static str, f64, f64)> + '_ {
        (0..KINDS)
            .filter(|&k| self.direct[k].known() && self.ring[k].known())
            .map(|k| (KIND_NAMES[k], self.direct[k].ns, self.ring[k].ns))
    }

    /// One `io_uring_enter` round trip, ns.
    pub fn enter_ns(&self) -> f64 {
        self.enter_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREAD: usize = 0;
    const PWRITE: usize = 1;

    fn counts(pairs: &[(usize, u32)]) -> [u32; KINDS] {
        let mut c = [0; KINDS];
        for &(k, n) in pairs {
            c[k] = n;
        }
        c
    }

    #[test]
    fn unknown_costs_are_explored_ring_first_then_direct() {
        let mut c = Choice::new(1000.0);
        let batch = counts(&[(PREAD, 64)]);
        assert_eq!(
            c.decide(&batch),
            (1 << PREAD, true),
            "no ring estimate: try the ring"
        );
        c.record_ring(&batch, 1000.0 + 64.0 * 300.0);
        assert_eq!(c.decide(&batch), (0, true), "no direct estimate: try direct");
        c.record_direct(PREAD, 500.0);
        assert_eq!(
            c.decide(&batch),
            (1 << PREAD, false),
            "64 × 200 ns saved pays the enter"
        );
    }

    #[test]
    fn the_ring_is_used_only_when_the_saving_pays_for_the_enter() {
        let mut c = Choice::new(1000.0);
        c.record_direct(PREAD, 500.0);
        c.record_ring(&counts(&[(PREAD, 10)]), 1000.0 + 10.0 * 300.0);
        assert_eq!(c.decide(&counts(&[(PREAD, 4)])).0, 0, "4 × 200 ns < 1000 ns");
        assert_eq!(
            c.decide(&counts(&[(PREAD, 6)])).0,
            1 << PREAD,
            "6 × 200 ns > 1000 ns"
        );
    }

    #[test]
    fn a_kind_slower_in_the_ring_stays_direct_in_a_mixed_batch() {
        let mut c = Choice::new(1000.0);
        c.record_direct(PREAD, 500.0);
        c.record_direct(PWRITE, 600.0);
        c.record_ring(&counts(&[(PREAD, 10)]), 1000.0 + 10.0 * 300.0);
        c.record_ring(&counts(&[(PWRITE, 10)]), 1000.0 + 10.0 * 2000.0);
        assert_eq!(c.decide(&counts(&[(PREAD, 32), (PWRITE, 32)])).0, 1 << PREAD);
    }

    #[test]
    fn the_path_not_chosen_is_tried_again_now_and_then() {
        let mut c = Choice::new(1000.0);
        c.record_direct(PWRITE, 600.0);
        c.record_ring(&counts(&[(PWRITE, 10)]), 1000.0 + 10.0 * 2000.0);
        let batch = counts(&[(PWRITE, 64)]);
        let tries = (0..EXPLORE_EVERY * 4).filter(|_| c.decide(&batch).0 != 0).count();
        assert_eq!(tries, 4, "one ring batch in {EXPLORE_EVERY}");
    }

    #[test]
    fn a_mix_shares_its_time_in_proportion() {
        let mut c = Choice::new(0.0);
        c.record_ring(&counts(&[(PREAD, 1)]), 100.0);
        c.record_ring(&counts(&[(PWRITE, 1)]), 300.0);
        c.record_ring(&counts(&[(PREAD, 1), (PWRITE, 1)]), 800.0);
        // 800 shared 1:3 -> 200 and 600, averaged in with weight 1/8.
        assert!((c.ring[PREAD].ns - (100.0 + (200.0 - 100.0) / 8.0)).abs() < 1e-9);
        assert!((c.ring[PWRITE].ns - (300.0 + (600.0 - 300.0) / 8.0)).abs() < 1e-9);
    }
}
