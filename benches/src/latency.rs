//! Latency percentiles for the reliability commands (`blocked_latency`, `soak`): a
//! log-linear histogram of nanoseconds, so a run of hours keeps a fixed size.

/// Sub-buckets per power of two: percentiles are exact to within 1/16 (about 6%).
const SUB: u32 = 16;
const SUB_BITS: u32 = 4;

/// Counts of durations in nanoseconds, by bucket.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; (64 * SUB) as usize],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(ns: u64) -> usize {
    if ns < u64::from(SUB) {
        return ns as usize;
    }
    let msb = 63 - ns.leading_zeros();
    let sub = (ns >> (msb - SUB_BITS)) & u64::from(SUB - 1);
    ((msb - SUB_BITS + 1) * SUB) as usize + sub as usize
}

/// The smallest value of bucket `b` (the inverse of `bucket`).
fn lower_bound(b: usize) -> u64 {
    let b = b as u64;
    let sub = u64::from(SUB);
    if b < sub {
        return b;
    }
    let shift = b / sub - 1;
    (sub + b % sub) << shift
}

impl Histogram {
    /// Counts one duration.
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many durations were counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The longest duration counted.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The duration below which a fraction `q` (0..=1) of the counted ones fall, to the
    /// histogram's precision; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return lower_bound(b).min(self.max);
            }
        }
        self.max
    }

    /// "p50 X ns, p99 Y ns, p99.9 Z ns, max M ns".
    pub fn summary(&self) -> String {
        format!(
            "p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns ({} calls)",
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(0.999),
            self.max,
            self.total
        )
    }
}

/// The command-line options of a reliability command: `--name VALUE` pairs.
pub struct Options {
    pairs: Vec<(String, String)>,
}

impl Options {
    /// Reads `--name VALUE` pairs; `known` lists the valid names with their valid forms,
    /// for the error message. Errors name the option and say what is valid.
    pub fn parse(args: impl Iterator<Item = String>, known: &[(&str, &str)]) -> Result<Options, String> {
        let usage = || {
            known
                .iter()
                .map(|(n, form)| format!("--{n} {form}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut pairs = Vec::new();
        let mut args = args.peekable();
        while let Some(a) = args.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a:?}; valid: {}", usage()));
            };
            if !known.iter().any(|(n, _)| *n == name) {
                return Err(format!("unknown option --{name}; valid: {}", usage()));
            }
            let Some(value) = args.next() else {
                return Err(format!("--{name} needs a value; valid: {}", usage()));
            };
            pairs.push((name.to_string(), value));
        }
        Ok(Options { pairs })
    }

    /// The value of `--name` as a whole number in `min..=max`, or `default` when absent.
    pub fn number(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, String> {
        match self.pairs.iter().rev().find(|(n, _)| n == name) {
            None => Ok(default),
            Some((_, v)) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "--{name} {v:?}: expected a whole number from {min} to {max}"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_and_are_ordered() {
        let mut last = 0;
        for ns in [0u64, 1, 15, 16, 17, 31, 32, 100, 1000, 123_456, u64::MAX / 2] {
            let b = bucket(ns);
            assert!(b >= last, "bucket of {ns} went down");
            last = b;
            let lo = lower_bound(b);
            assert!(lo <= ns, "{ns}: lower bound {lo} above it");
            assert!(ns - lo <= ns / 16, "{ns}: lower bound {lo} too far below");
        }
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut h = Histogram::default();
        for ns in 1..=1000 {
            h.record(ns);
        }
        let p50 = h.quantile(0.5);
        assert!((470..=500).contains(&p50), "p50 {p50}");
        let p99 = h.quantile(0.99);
        assert!((930..=990).contains(&p99), "p99 {p99}");
        assert_eq!(h.max(), 1000);
        assert_eq!(h.len(), 1000);
    }
}
