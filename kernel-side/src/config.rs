//! Runtime configuration: the builder's settings and the `FLEXSC_*` environment variables.
//!
//! | variable | meaning | valid form | default |
//! |---|---|---|---|
//! | `FLEXSC_CPUS` | cores for service threads, one thread per core | `3`, `2-3`, `0,2-3` | the highest-numbered core the process may use |
//! | `FLEXSC_WORKERS` | the most threads that run calls which may block | `1`..=`4096` | 64 |
//! | `FLEXSC_IDLE_SPIN_US` | how long an idle service thread spins before it sleeps | `0`..=`1000000` (µs) | 50 |
//! | `FLEXSC_BACKEND` | how service threads run a batch | `direct`, `uring`, `auto` | auto |
//! | `FLEXSC_WAIT_SPINS` | how many times a waiting caller polls before it yields, then sleeps | `0`..=`100000000` | 256 |
//! | `FLEXSC_CALLER_HELPS` | whether a batch's caller, while it waits, runs the calls of its batch no service thread has started | `on`, `off` | on |

use std::fmt;
use std::time::Duration;

/// A configuration value that is not of its valid form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable or option, e.g. `FLEXSC_CPUS`.
    pub name: String,
    /// The value given.
    pub value: String,
    /// The valid form, e.g. "a core list such as 3, 2-3 or 0,2-3".
    pub expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: expected {}",
            self.name, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// The form of a core list.
pub const CPUS_FORM: &str = "a core list such as 3, 2-3 or 0,2-3";
/// The form of a worker count.
pub const WORKERS_FORM: &str = "a whole number from 1 to 4096";
const SPIN_FORM: &str = "a whole number of microseconds from 0 to 1000000";
const WAIT_SPINS_FORM: &str = "a whole number from 0 to 100000000";

/// Everything a runtime can be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Cores for service threads; `None` means the default (the highest usable core).
    pub cpus: Option<Vec<usize>>,
    /// The most blocking-call workers.
    pub workers: usize,
    /// How long an idle service thread spins before sleeping.
    pub idle_spin: Duration,
    /// How many times a waiting caller polls before sleeping.
    pub wait_spins: u32,
    /// How service threads run a batch.
    pub backend: crate::uring::Backend,
    /// Whether a caller waiting for its batch runs the calls no service thread has
    /// started, and an asynchronous poster runs calls itself while the service threads
    /// are behind (see `flexsc_shim::SubmitOptions::caller_helps`).
    pub caller_helps: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cpus: None,
            workers: 64,
            idle_spin: Duration::from_micros(50),
            wait_spins: 256,
            backend: crate::uring::Backend::Auto,
            caller_helps: true,
        }
    }
}

impl Config {
    /// The defaults, overridden by whichever `FLEXSC_*` variables are set.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// As `from_env`, reading variables through `get` (for tests and for the CLI).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        if let Some(v) = get("FLEXSC_CPUS") {
            config.cpus = Some(parse_cpus("FLEXSC_CPUS", &v)?);
        }
        if let Some(v) = get("FLEXSC_WORKERS") {
            config.workers = parse_number("FLEXSC_WORKERS", &v, 1, 4096, WORKERS_FORM)? as usize;
        }
        if let Some(v) = get("FLEXSC_IDLE_SPIN_US") {
            config.idle_spin =
                Duration::from_micros(parse_number("FLEXSC_IDLE_SPIN_US", &v, 0, 1_000_000, SPIN_FORM)?);
        }
        if let Some(v) = get("FLEXSC_BACKEND") {
            config.backend = crate::uring::Backend::parse(v.trim())
                .ok_or_else(|| error("FLEXSC_BACKEND", &v, "one of direct, uring, auto"))?;
        }
        if let Some(v) = get("FLEXSC_WAIT_SPINS") {
            config.wait_spins =
                parse_number("FLEXSC_WAIT_SPINS", &v, 0, 100_000_000, WAIT_SPINS_FORM)? as u32;
        }
        if let Some(v) = get("FLEXSC_CALLER_HELPS") {
            config.caller_helps = match v.trim() {
                "on" => true,
                "off" => false,
                _ => return Err(error("FLEXSC_CALLER_HELPS", &v, "on or off")),
            };
        }
        Ok(config)
    }
}

fn error(name: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        value: value.to_string(),
        expected,
    }
}

/// Parses a whole number in `lo..=hi`.
pub fn parse_number(
    name: &str,
    value: &str,
    lo: u64,
    hi: u64,
    form: &'static str,
) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(error(name, value, form)),
    }
}

/// Parses a core list: comma-separated numbers and inclusive ranges (`0,2-3`).
pub fn parse_cpus(name: &str, value: &str) -> Result<Vec<usize>, ConfigError> {
    const MAX_CPU: usize = 4095;
    let bad = || error(name, value, CPUS_FORM);
    let mut cpus = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let lo: usize = lo.parse().map_err(|_| bad())?;
        let hi: usize = hi.parse().map_err(|_| bad())?;
        if lo > hi || hi > MAX_CPU {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("X", "3").unwrap(), vec![3]);
        assert_eq!(parse_cpus("X", "2-3").unwrap(), vec![2, 3]);
        assert_eq!(parse_cpus("X", "0, 2-3,2").unwrap(), vec![0, 2, 3]);
        for bad in ["", "a", "3-2", "-1", "1-", "1,,2", "99999", "1.5"] {
            let e = parse_cpus("FLEXSC_CPUS", bad).unwrap_err();
            assert_eq!(e.name, "FLEXSC_CPUS");
            assert!(e.to_string().contains("2-3"), "{e}");
        }
    }

    #[test]
    fn env_values() {
        let c = Config::from_vars(vars(&[("FLEXSC_CPUS", "1"), ("FLEXSC_WORKERS", "8")])).unwrap();
        assert_eq!(c.cpus, Some(vec![1]));
        assert_eq!(c.workers, 8);
        assert!(c.caller_helps);
        let c = Config::from_vars(vars(&[("FLEXSC_CALLER_HELPS", "off")])).unwrap();
        assert!(!c.caller_helps);
        assert_eq!(Config::from_vars(vars(&[])).unwrap(), Config::default());
    }

    #[test]
    fn bad_env_values_name_the_variable_and_the_form() {
        for (k, v) in [
            ("FLEXSC_WORKERS", "0"),
            ("FLEXSC_WORKERS", "lots"),
            ("FLEXSC_IDLE_SPIN_US", "-5"),
            ("FLEXSC_CALLER_HELPS", "yes"),
        ] {
            let e = Config::from_vars(vars(&[(k, v)])).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains(k) && msg.contains(v) && msg.contains("expected"),
                "{msg}"
            );
        }
    }
}
