//! What `flexsc --help`, `flexsc help CMD` and `flexsc CMD --help` print: each command's
//! usage line (also printed under a bad option's error) and what its options do.

/// `flexsc run`'s usage line.
pub const RUN_USAGE: &str = "usage: flexsc run [--stats] [--json FILE] [--cpus LIST] [--workers N] \
[--policy adaptive|always|never] [--threads 1:1|m-on-n] [--] CMD [ARGS...]";

/// `flexsc bench`'s usage line.
pub const BENCH_USAGE: &str = "usage: flexsc bench [--json FILE] [--svg DIR] [--rounds N]";

/// `flexsc demo`'s usage line.
pub const DEMO_USAGE: &str = "usage: flexsc demo [--calls N] [--cpus LIST] [--workers N]";

const RUN_OPTIONS: &str = "\
Runs CMD with flexsc's LD_PRELOAD library: its system calls go through syscall pages to a
service thread on another core. Exits with CMD's status (128 + N if signal N ended it),
127 if CMD is not found, 126 if it cannot be executed, 2 on a bad option.

options (each sets the FLEXSC_* variable named; an option wins over the variable):
  --stats            print a table of the calls CMD made, and how, to stderr at the end
  --json FILE        write the same figures to FILE as JSON
  --cpus LIST        cores for service threads, one thread each: 3, 2-3, 0,2-3 (FLEXSC_CPUS;
                     default: the highest-numbered core the process may use)
  --workers N        the most blocking workers, 1 to 4096 (FLEXSC_WORKERS; default 64)
  --policy P         when to delegate: adaptive (measure and choose), always, never
                     (FLEXSC_POLICY; default adaptive)
  --threads T        how pthread_create makes threads: 1:1 (kernel threads) or m-on-n (user
                     threads that switch while a call is in flight) (FLEXSC_THREADS; default 1:1)
  -h, --help         print this and exit
  --                 end of options: what follows is CMD, even if it starts with -

Other FLEXSC_* variables (FLEXSC_BACKEND, FLEXSC_IDLE_SPIN_US, FLEXSC_WAIT_SPINS,
FLEXSC_CALLER_HELPS) are listed in the README.";

const BENCH_OPTIONS: &str = "\
Compares, in one run, direct system calls, flexsc's syscall pages (single calls and
batches, on each backend), raw io_uring and tokio, alternating baseline and flexsc samples.
Prints a markdown table of medians and ratios (flexsc time / baseline time: lower is
better), then issue #5's targets against this run's figures.

options:
  --json FILE        also write the results as JSON
  --svg DIR          also write the batch-size and user-work sweeps as SVG plots into DIR
  --rounds N         samples of each side per comparison, 1 to 1000 (default 21; more
                     is slower and steadier)
  -h, --help         print this and exit";

const DEMO_OPTIONS: &str = "\
Runs a small workload (file writes and reads in batches, single calls, a pipe read that
waits) through the syscall pages of a fresh runtime, checks every answer, and prints the
statistics table.

options:
  --calls N          pwrites, and as many preads, 1 to 100000000 (default 10000; single
                     calls: as many, at most 10000)
  --cpus LIST        cores for service threads, as for run (FLEXSC_CPUS)
  --workers N        the most blocking workers, 1 to 4096 (FLEXSC_WORKERS)
  -h, --help         print this and exit";

/// Every command's usage line, for `flexsc` alone or a word it does not know.
pub fn usage() -> String {
    format!(
        "{RUN_USAGE}\n{}\n{}\n       flexsc help [run|bench|demo]",
        BENCH_USAGE.replacen("usage:", "      ", 1),
        DEMO_USAGE.replacen("usage:", "      ", 1)
    )
}

/// The help for `command` (None: all of them), or None for a command that does not exist.
pub fn help(command: Option<&str>) -> Option<String> {
    let one = |usage: &str, options: &str| format!("{usage}\n\n{options}\n");
    Some(match command {
        None => format!(
            "flexsc: exception-less system calls for stock Linux.\n\n{}\n\n\
             `flexsc help CMD` or `flexsc CMD --help` says what CMD's options do.\n",
            usage()
        ),
        Some("run") => one(RUN_USAGE, RUN_OPTIONS),
        Some("bench") => one(BENCH_USAGE, BENCH_OPTIONS),
        Some("demo") => one(DEMO_USAGE, DEMO_OPTIONS),
        Some(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_usage_line_is_in_the_overview_and_in_its_commands_help() {
        let overview = help(None).expect("overview");
        for (cmd, usage) in [("run", RUN_USAGE), ("bench", BENCH_USAGE), ("demo", DEMO_USAGE)] {
            let line = usage.trim_start_matches("usage: ");
            assert!(overview.contains(line), "overview lacks {line:?}:\n{overview}");
            let own = help(Some(cmd)).expect("a command's help");
            assert!(own.starts_with(usage), "{cmd}: {own}");
        }
        assert!(help(Some("nope")).is_none());
    }

    #[test]
    fn every_option_of_a_usage_line_is_explained() {
        for cmd in ["run", "bench", "demo"] {
            let text = help(Some(cmd)).expect("help");
            let (usage, body) = text.split_once("\n\n").expect("usage, then the rest");
            for option in usage
                .split(['[', ' '])
                .filter(|w| w.starts_with("--") && w.len() > 2)
            {
                let option = option.trim_end_matches(']');
                assert!(
                    body.lines().any(|l| l.trim_start().starts_with(option)),
                    "{cmd}: {option} is not explained:\n{text}"
                );
            }
        }
    }
}
