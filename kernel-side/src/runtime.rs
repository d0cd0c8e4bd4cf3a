//! A runtime: the shared pages, the service threads on their cores, the blocking workers,
//! and its statistics.

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use flexsc_shim::page::COUNTED_NRS;
use flexsc_shim::{RegisterError, ServiceProgress, Shared, SubmitOptions, Submitter};

use crate::config::{Config, ConfigError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::pool::Pool;
use crate::relief::Relief;
use crate::service::{Blocking, ServiceCounters, ServiceThread};

/// Where a runtime's calls run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Service threads on these cores run delegated calls.
    Service {
        /// The cores, one service thread each.
        cpus: Vec<usize>,
    },
    /// Every call runs on its caller, for this reason.
    Direct {
        /// Why no service thread runs (one core, cores not usable, ...).
        reason: String,
    },
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Service { cpus } => write!(f, "service threads on cores {cpus:?}"),
            Mode::Direct { reason } => write!(f, "direct calls ({reason})"),
        }
    }
}

/// Builds a [`Runtime`].
#[derive(Clone, Debug, Default)]
pub struct Builder {
    config: Config,
    blocking: Blocking,
    lazy: bool,
    /// None: [`crate::relief::RELIEVE_AFTER`].
    relief_after: Option<Duration>,
}

impl Builder {
    /// The defaults: one service thread on the highest-numbered usable core.
    pub fn new() -> Self {
        Builder::default()
    }

    /// The defaults overridden by the `FLEXSC_*` environment variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Builder {
            config: Config::from_env()?,
            ..Builder::default()
        })
    }

    /// Starts from a whole configuration.
    pub fn from_config(config: Config) -> Self {
        Builder {
            config,
            ..Builder::default()
        }
    }

    /// How long a service thread may be blocked in the kernel in one pass before the
    /// relief thread hands on the calls posted behind it (default
    /// [`crate::relief::RELIEVE_AFTER`], 50 ms). An owner that waits for its call takes it
    /// back itself after `flexsc_shim::TAKE_BACK_AFTER` (10 ms) anyway; the relief is for
    /// the calls whose owners do not wait on them (asynchronous tasks, M-on-N event waits).
    pub fn relief_after(mut self, after: Duration) -> Self {
        self.relief_after = Some(after);
        self
    }

    /// Where calls that would wait for an event run (default: blocking workers).
    pub fn blocking(mut self, blocking: Blocking) -> Self {
        self.blocking = blocking;
        self
    }

    /// How service threads run a batch: direct, io_uring, or chosen per batch (default).
    pub fn backend(mut self, backend: crate::uring::Backend) -> Self {
        self.config.backend = backend;
        self
    }

    /// Start no service thread until [`Runtime::start`]: for callers that may never
    /// delegate (an adaptive policy), so an idle runtime costs no thread.
    pub fn lazy(mut self) -> Self {
        self.lazy = true;
        self
    }

    /// Service threads on these cores, one each.
    pub fn cpus(mut self, cpus: impl IntoIterator<Item = usize>) -> Self {
        self.config.cpus = Some(cpus.into_iter().collect());
        self
    }

    /// No service thread: every call runs on its caller.
    pub fn direct(mut self) -> Self {
        self.config.cpus = Some(Vec::new());
        self
    }

    /// The most blocking-call workers (at least 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers.max(1);
        self
    }

    /// How long an idle service thread spins before it sleeps.
    pub fn idle_spin(mut self, spin: Duration) -> Self {
        self.config.idle_spin = spin;
        self
    }

    /// How many times a waiting caller polls before it sleeps.
    pub fn wait_spins(mut self, spins: u32) -> Self {
        self.config.wait_spins = spins;
        self
    }

    /// Whether a caller waiting for its batch (`Submitter::call_batch`) runs the calls no
    /// service thread has started yet, and whether an asynchronous poster
    /// (`AsyncSubmitter::push`) runs a call itself while the service threads are behind
    /// (default: yes, except with the `Uring` backend, whose point is that the calls go
    /// through the ring). Off, every delegable call runs on a service thread: what a study
    /// of pure delegation measures.
    pub fn caller_helps(mut self, helps: bool) -> Self {
        self.config.caller_helps = helps;
        self
    }

    /// Starts the runtime. Never fails for lack of cores: with no usable core it runs
    /// every call on its caller and says why in [`Runtime::mode`].
    pub fn build(self) -> std::io::Result<Runtime> {
        let mode = choose_cores(self.config.cpus.as_deref());
        let direct_only = matches!(mode, Mode::Direct { .. });
        let options = SubmitOptions {
            direct_only,
            wait_spins: self.config.wait_spins,
            // A forced io_uring backend means the calls go through the ring: the caller
            // taking some back would bypass it.
            caller_helps: self.config.caller_helps && self.config.backend != crate::uring::Backend::Uring,
        };
        let shared = Arc::new(Shared::new(options)?);
        let pool = Pool::new(Arc::clone(&shared), self.config.workers);
        let runtime = Runtime {
            shared,
            pool,
            threads: Mutex::new(Vec::new()),
            relief: Mutex::new(None),
            started: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            counters: Mutex::new(Vec::new()),
            serving: AtomicUsize::new(0),
            mode,
            config: self.config,
            blocking: self.blocking,
            relief_after: self.relief_after.unwrap_or(crate::relief::RELIEVE_AFTER),
            backend_note: Mutex::new(None),
        };
        if !self.lazy {
            runtime.start()?;
        }
        Ok(runtime)
    }
}

/// The cores the service threads may use: the configured ones the process may run on, or
/// the highest-numbered such core.
/// Where a runtime asked for service threads on `wanted` (None: the default choice) would
/// run its calls, on the cores this process may use now: what [`Builder::build`] decides.
pub fn choose_cores(wanted: Option<&[usize]>) -> Mode {
    let allowed = allowed_cpus();
    match wanted {
        Some([]) => Mode::Direct {
            reason: "no service cores configured".into(),
        },
        Some(list) => {
            let usable: Vec<usize> = list.iter().copied().filter(|c| allowed.contains(c)).collect();
            if usable.is_empty() {
                Mode::Direct {
                    reason: format!("service cores {list:?} are not among the usable cores {allowed:?}"),
                }
            } else if allowed.len() < 2 {
                Mode::Direct {
                    reason: "the process may use only one core".into(),
                }
            } else {
                Mode::Service { cpus: usable }
            }
        }
        None if allowed.len() < 2 => Mode::Direct {
            reason: "the process may use only one core".into(),
        },
        None => Mode::Service {
            cpus: vec![*allowed.last().expect("two or more cores")],
        },
    }
}

/// The cores this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// A running flexsc runtime. Dropping it shuts it down (see [`Runtime::shutdown`]).
pub struct Runtime {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The thread that hands on the calls posted behind a stuck pass (see `relief`).
    relief: Mutex<Option<Relief>>,
    started: AtomicBool,
    /// Set by [`Runtime::retire`]: no thread starts again.
    retired: AtomicBool,
    counters: Mutex<Vec<Arc<ServiceCounters>>>,
    /// How many of the mode's service cores have their thread (the first ones: a start
    /// that could spawn only some serves with those, see `start_threads`). Relaxed: stored
    /// before the Release store of `started`, read after an Acquire load of it.
    serving: AtomicUsize,
    mode: Mode,
    config: Config,
    blocking: Blocking,
    /// See [`Builder::relief_after`].
    relief_after: Duration,
    /// Why the configured backend is not in use, if it is not.
    backend_note: Mutex<Option<String>>,
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Starts the service threads, if the mode has any and they are not running yet.
    /// Until they run, submitters run every call on its caller. Returns without waiting
    /// for them to run (see `crate::spawn`).
    pub fn start(&self) -> std::io::Result<()> {
        self.start_threads(false)
    }

    /// As [`Runtime::start`], and returns once each new thread has run past its start
    /// (2 s at most, said if it is reached). For a start inside a library's constructor
    /// (the preload's, under `--policy always`): constructors of libraries loaded before
    /// it may run next, and may assume the process has one thread running. AddressSanitizer's
    /// does: its initialisation raced with a new thread's first allocation (through its
    /// interceptors), and a program built with it aborted at start ("free(): invalid
    /// size"). Waiting makes the new threads' starts happen before, as they always did.
    pub fn start_and_wait_until_running(&self) -> std::io::Result<()> {
        self.start_threads(true)
    }

    fn start_threads(&self, wait: bool) -> std::io::Result<()> {
        let Mode::Service { cpus } = &self.mode else {
            return Ok(());
        };
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if self.started.load(Ordering::Acquire) || self.retired.load(Ordering::Acquire) {
            return Ok(());
        }
        // Nothing here waits for a new thread to run (`crate::spawn`): what the program
        // could see of it is settled before each spawn returns, and what the runtime keeps
        // open for it (its stat file) is opened here, beside none of the program's opens.
        // Those live on high numbers: room for them is made while this may still be the
        // process's only thread, where it costs no RCU grace period.
        flexsc_shim::sys::make_room_for_high_fds();
        let running = Arc::new(flexsc_shim::Arrivals::new());
        for &cpu in cpus {
            let counters = Arc::new(ServiceCounters::default());
            let service = ServiceThread::new(
                Arc::clone(&self.shared),
                Arc::clone(&self.pool),
                self.config.idle_spin,
                self.blocking,
                Arc::clone(&counters),
            );
            let (service, note) = service.with_backend(self.config.backend);
            if let Some(note) = note {
                *self.backend_note.lock().unwrap_or_else(|e| e.into_inner()) = Some(note);
            }
            // Its record, made once its thread id is known. The thread looks for it before
            // its first pass, yielding meanwhile (it is there a few microseconds after the
            // spawn returns); no futex through libc, which an interposing library routes.
            let record: Arc<OnceLock<Arc<ServiceProgress>>> = Arc::new(OnceLock::new());
            let its_record = Arc::clone(&record);
            let arrived = Arc::clone(&running);
            let spawned = crate::spawn::spawn(&format!("flexsc-svc-{cpu}"), None, move || {
                // A runtime thread before anything else: should `Uncounted::begin` end the
                // process here (the program's last thread ended meanwhile), the atexit
                // handlers' calls then run directly.
                crate::signals::block_async_signals();
                let _uncounted = crate::census::Uncounted::begin();
                // Checked usable in `choose_cores`; if pinning fails anyway, serving from an
                // unpinned thread is still correct.
                let _ = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                arrived.arrive();
                service.run(move || loop {
                    if let Some(record) = its_record.get() {
                        break Arc::clone(record);
                    }
                    flexsc_shim::sys::sched_yield();
                })
            });
            let spawned = match spawned {
                Ok(spawned) => spawned,
                Err(e) if threads.is_empty() => return Err(e),
                // Serve with the threads that started: failing the start here would leave
                // them running, and the next start would spawn them again beside them.
                Err(e) => {
                    crate::diag::note(format_args!(
                        "flexsc: cannot start the service thread for core {cpu} ({e}); serving with {} of {}",
                        threads.len(),
                        cpus.len()
                    ));
                    break;
                }
            };
            let _ = record.set(self.shared.register_service_thread(spawned.tid));
            threads.push(spawned.handle);
            self.counters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(counters);
        }
        // Without it a stuck pass holds up only the calls whose owners cannot take them
        // back (asynchronous tasks, M-on-N event waits): serve on, and say so.
        let arrived = Arc::clone(&running);
        let relief = Relief::start(
            Arc::clone(&self.shared),
            Arc::clone(&self.pool),
            self.blocking,
            self.relief_after,
            move || arrived.arrive(),
        );
        let expected = threads.len() + usize::from(relief.is_ok());
        match relief {
            Ok(relief) => *self.relief.lock().unwrap_or_else(|e| e.into_inner()) = Some(relief),
            Err(e) => crate::diag::note(format_args!(
                "flexsc: cannot start the relief thread ({e}); a call that waits on a service thread holds up the asynchronous calls behind it"
            )),
        }
        if wait {
            // Bounded: a thread that never gets a core only reopens the window this closes.
            let arrived = running.wait_for(expected as u32, Duration::from_secs(2));
            if (arrived as usize) < expected {
                crate::diag::note(format_args!(
                    "flexsc: {arrived} of the runtime's {expected} threads started within 2 s; serving on"
                ));
            }
        }
        self.serving.store(threads.len(), Ordering::Relaxed);
        self.started.store(true, Ordering::Release);
        self.shared.set_serving();
        Ok(())
    }

    /// Whether service threads are running, so posted calls will be served.
    pub fn is_serving(&self) -> bool {
        self.started.load(Ordering::Acquire) && !self.retired.load(Ordering::Acquire)
    }

    /// Stops the runtime for good, through a shared reference (the LD_PRELOAD library
    /// keeps its runtime for the life of the process): as [`Runtime::shutdown`], and
    /// [`Runtime::start`] starts nothing afterwards. For a call the kernel refuses in a
    /// process with more than one thread (`unshare(CLONE_NEWUSER)`, `setns` into a user
    /// or mount namespace), made by a program whose only other threads are the
    /// runtime's. The service threads and the relief thread have ended when this returns;
    /// idle blocking workers and io_uring's own workers end a moment later.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.stop();
    }

    /// Where calls run.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shared state (for submitters built by hand, and for tests).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A submitter for the calling thread, with a syscall page of its own.
    pub fn submitter(&self) -> Result<Submitter, RegisterError> {
        Submitter::new(Arc::clone(&self.shared))
    }

    /// Waits until every posted call has been taken and every call that does not wait for
    /// an event has finished (at most `limit`). True if that happened in time.
    pub fn quiesce(&self, limit: Duration) -> bool {
        self.shared.quiesce(limit)
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> Stats {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        // The cores that have a service thread, after a start that spawned only some.
        let mode = match &self.mode {
            Mode::Service { cpus } if self.is_serving() => Mode::Service {
                cpus: cpus[..self.serving.load(Ordering::Relaxed).min(cpus.len())].to_vec(),
            },
            mode => mode.clone(),
        };
        let mut stats = Stats::collect(&self.shared, &mode, &counters);
        let note = self
            .backend_note
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        stats.backend = match note {
            Some(note) => format!("{:?}: {note}", self.config.backend).to_lowercase(),
            None => format!("{:?}", self.config.backend).to_lowercase(),
        };
        stats
    }

    /// Stops the runtime: the service threads run everything already posted, the
    /// workers finish every call handed to them, and only then does this return. Calls
    /// posted afterwards run on their callers.
    pub fn shutdown(self) -> Stats {
        self.stop();
        self.stats()
    }

    fn stop(&self) {
        self.shared.doorbell.stop();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        // After the service threads: while one is blocked in a call, the relief thread is
        // what moves the calls behind it, which its last passes wait for. Before the
        // pool, which must still take what it hands on.
        if let Some(mut relief) = self.relief.lock().unwrap_or_else(|e| e.into_inner()).take() {
            relief.stop();
        }
        self.pool.stop();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One syscall's counters, summed over every thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallStats {
    /// Calls made.
    pub calls: u64,
    /// Calls run by a service thread or worker.
    pub delegated: u64,
    /// Calls run on their caller.
    pub direct: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Sum over calls that ran in a batch of the size of that batch.
    pub batch_sum: u64,
    /// Calls that ran in a batch (delegated, or handed back to their caller from one).
    pub batched: u64,
}

impl std::ops::AddAssign for SyscallStats {
    fn add_assign(&mut self, o: SyscallStats) {
        self.calls += o.calls;
        self.delegated += o.delegated;
        self.direct += o.direct;
        self.errors += o.errors;
        self.batch_sum += o.batch_sum;
        self.batched += o.batched;
    }
}

impl SyscallStats {
    /// Mean size of the batches this syscall's calls ran in (0 if none did).
    pub fn mean_batch(&self) -> f64 {
        if self.batched == 0 {
            0.0
        } else {
            self.batch_sum as f64 / self.batched as f64
        }
    }
}

/// A snapshot of a runtime's statistics.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Where calls run.
    pub mode: Mode,
    /// Counters by syscall number (numbers from 511 up share the last row).
    pub syscalls: Vec<SyscallStats>,
    /// Passes that found work.
    pub batches: u64,
    /// Entries those passes ran or handed on.
    pub batched_entries: u64,
    /// Batches by size: `[1, 2-3, 4-7, 8-15, 16-31, 32-63, 64+]`.
    pub batch_sizes: [u64; 7],
    /// Calls handed to blocking workers.
    pub handoffs: u64,
    /// Calls handed back to their callers: under [`Blocking::Caller`] every call that
    /// would wait (for an event, or for the device: an `fsync`), otherwise one that would
    /// wait for an event while every worker was busy.
    pub declined: u64,
    /// Calls their callers took back because no service thread claimed them in
    /// `flexsc_shim::TAKE_BACK_AFTER` (a service thread stuck in a call that waits).
    pub taken_back: u64,
    /// Calls the relief thread handed on from behind a service thread blocked in a pass.
    pub relieved: u64,
    /// The backend: configured, and in use.
    pub backend: String,
    /// Batches that went through io_uring, and the calls they ran there.
    pub uring_batches: u64,
    /// Calls run through io_uring.
    pub uring_calls: u64,
    /// Calls that would have waited for an event and were parked in a service thread's
    /// io_uring instead of occupying a blocking worker.
    pub uring_parked: u64,
    /// What each service thread's auto backend learned (empty lists on other backends, or
    /// before it has timed both paths of a kind).
    pub learned: Vec<crate::service::Learned>,
}

impl Stats {
    fn collect(shared: &Shared, mode: &Mode, services: &[Arc<ServiceCounters>]) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        let mut syscalls = vec![SyscallStats::default(); COUNTED_NRS];
        for page in shared.pages() {
            for (sum, c) in syscalls.iter_mut().zip(page.all_counters().iter()) {
                sum.calls += c.calls.load(Relaxed);
                sum.delegated += c.delegated.load(Relaxed);
                sum.direct += c.direct.load(Relaxed);
                sum.errors += c.errors.load(Relaxed);
            }
        }
        for service in services {
            for ((sum, b), n) in syscalls
                .iter_mut()
                .zip(service.batch_sum.iter())
                .zip(service.batched.iter())
            {
                sum.batch_sum += b.load(Relaxed);
                sum.batched += n.load(Relaxed);
            }
        }
        let b = shared.batches();
        Stats {
            mode: mode.clone(),
            syscalls,
            batches: b.batches.load(Relaxed),
            batched_entries: b.entries.load(Relaxed),
            batch_sizes: std::array::from_fn(|i| b.by_size[i].load(Relaxed)),
            handoffs: b.handoffs.load(Relaxed),
            declined: b.declined.load(Relaxed),
            taken_back: b.taken_back.load(Relaxed),
            relieved: b.relieved.load(Relaxed),
            backend: String::new(),
            uring_batches: b.uring_batches.load(Relaxed),
            uring_calls: b.uring_calls.load(Relaxed),
            uring_parked: services.iter().map(|s| s.parked.load(Relaxed)).sum(),
            learned: services
                .iter()
                .map(|s| s.learned.lock().map(|l| l.clone()).unwrap_or_default())
                .collect(),
        }
    }

    /// The counters summed over every syscall.
    pub fn totals(&self) -> SyscallStats {
        self.syscalls.iter().fold(SyscallStats::default(), |mut sum, s| {
            sum += *s;
            sum
        })
    }

    /// Mean entries per batch (0 when there was none).
    pub fn mean_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.batched_entries as f64 / self.batches as f64
        }
    }

    /// An `strace -c`-style table: one row per syscall that was made, then totals.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "flexsc: {}", self.mode);
        let rows = self
            .syscalls
            .iter()
            .enumerate()
            .filter(|(_, s)| s.calls > 0)
            .map(|(nr, s)| {
                let name = flexsc_shim::table::name(nr as u64)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("#{nr}"));
                (name, *s)
            });
        write_syscall_table(&mut out, rows.collect());
        let _ = writeln!(
            out,
            "batches: {} (mean {:.2} calls; sizes {}); handed to workers: {}; declined: {}; taken back: {}; relieved: {}",
            self.batches,
            self.mean_batch(),
            batch_sizes_text(&self.batch_sizes),
            self.handoffs,
            self.declined,
            self.taken_back,
            self.relieved
        );
        let _ = writeln!(
            out,
            "backend: {}; io_uring: {} batches, {} calls, {} parked waits",
            self.backend, self.uring_batches, self.uring_calls, self.uring_parked
        );
        for (i, learned) in self.learned.iter().enumerate() {
            if let Some(line) = learned.describe() {
                let _ = writeln!(out, "auto backend, service thread {i}: {line}");
            }
        }
        out
    }
}

/// Writes an `strace -c`-style table of `rows` (syscall name, counters), most-called first,
/// and a total row: the one layout both a runtime's statistics and `flexsc run` print.
pub fn write_syscall_table(out: &mut String, mut rows: Vec<(String, SyscallStats)>) {
    use std::fmt::Write;
    let rule = format!(
        "{:->10} {:->10} {:->10} {:->8} {:->6}  {:->16}\n",
        "", "", "", "", "", ""
    );
    let _ = writeln!(
        out,
        "{:>10} {:>10} {:>10} {:>8} {:>6}  syscall",
        "calls", "delegated", "direct", "errors", "batch"
    );
    out.push_str(&rule);
    rows.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0)));
    let mut total = SyscallStats::default();
    for (name, s) in &rows {
        total += *s;
        let _ = writeln!(
            out,
            "{:>10} {:>10} {:>10} {:>8} {:>6.1}  {name}",
            s.calls,
            s.delegated,
            s.direct,
            s.errors,
            s.mean_batch()
        );
    }
    out.push_str(&rule);
    let t = total;
    let _ = writeln!(
        out,
        "{:>10} {:>10} {:>10} {:>8} {:>6.1}  total",
        t.calls,
        t.delegated,
        t.direct,
        t.errors,
        t.mean_batch()
    );
}

/// Batch counts by size, as the tables print them: `1:N 2-3:N ... 64+:N`.
pub fn batch_sizes_text(sizes: &[u64; 7]) -> String {
    const LABELS: [&str; 7] = ["1", "2-3", "4-7", "8-15", "16-31", "32-63", "64+"];
    LABELS
        .iter()
        .zip(sizes)
        .map(|(l, n)| format!("{l}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spawn::tests::FAIL_AFTER;

    /// A start whose second service thread cannot be spawned serves with the first, and a
    /// later start spawns nothing more. It used to fail the start with the first thread
    /// left running, so that each retry (the preload tries again at each `pthread_create`)
    /// started one more.
    #[test]
    fn a_start_that_spawns_only_some_service_threads_serves_with_them() {
        if allowed_cpus().len() < 2 {
            eprintln!("skipped: needs two usable cores to run service threads");
            return;
        }
        let core = *allowed_cpus().last().expect("two cores");
        let runtime = Runtime::builder()
            .cpus([core, core])
            .lazy()
            .build()
            .expect("runtime");
        FAIL_AFTER.with(|f| f.set(Some(1)));
        let started = runtime.start();
        FAIL_AFTER.with(|f| f.set(None));
        started.expect("a start with one of its two service threads");
        assert!(runtime.is_serving());
        runtime.start().expect("started already");
        assert_eq!(runtime.threads.lock().expect("threads").len(), 1);
        assert_eq!(runtime.counters.lock().expect("counters").len(), 1);
        assert!(
            runtime.relief.lock().expect("relief").is_some(),
            "the relief thread started too"
        );
        let mut sub = runtime.submitter().expect("page");
        // SAFETY: getppid takes no argument.
        let ret = unsafe { sub.call(libc::SYS_getppid as u64, [0; 6]) };
        // SAFETY: getppid has no side effects.
        assert_eq!(ret, i64::from(unsafe { libc::getppid() }));
        drop(sub);
        assert_eq!(
            runtime.stats().mode,
            Mode::Service { cpus: vec![core] },
            "the statistics name the one core that serves"
        );
        let stats = runtime.shutdown();
        assert_eq!(stats.totals().delegated, 1, "the call ran on the service thread");
        // Nothing started at all: the start fails, and a later one may start them.
        let runtime = Runtime::builder().cpus([core]).lazy().build().expect("runtime");
        FAIL_AFTER.with(|f| f.set(Some(0)));
        let started = runtime.start();
        FAIL_AFTER.with(|f| f.set(None));
        assert_eq!(started.map_err(|e| e.raw_os_error()), Err(Some(libc::EAGAIN)));
        assert!(!runtime.is_serving());
        runtime.start().expect("a start after the failed one");
        assert!(runtime.is_serving());
        assert_eq!(runtime.threads.lock().expect("threads").len(), 1);
    }
}
