//! The scheduler: its builder, where its kernel threads run, and the handle that spawns
//! user threads from outside and waits for them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use flexsc_kernel_side::runtime::allowed_cpus;
use flexsc_kernel_side::{Blocking, Mode, Runtime, Stats};
use flexsc_shim::RegisterError;

use crate::inbox::{Inbox, Message};
use crate::join::{package, JoinHandle};
use crate::kernel_thread::{self, Local};
use crate::overflow::{self, AltStack};
use crate::pages::Pages;
use crate::primitive::lock_std as lock;
use crate::stack::{GuardedStack, StackCache};
use crate::user_thread::Task;

/// The default usable size of a user thread's stack.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// The default bound on blocking workers: each user thread blocked in a call that waits
/// for an event (a read on a pipe, accept, a sleep) holds one. When all are busy, further
/// such calls run on their kernel thread and stop its other user threads until they return.
pub const DEFAULT_MAX_BLOCKING_WORKERS: usize = 256;
/// How long an idle kernel thread polls before it sleeps, by default.
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(50);

/// Why a scheduler could not start.
#[derive(Debug)]
pub enum BuildError {
    /// A user core the process may not run on.
    CoreNotUsable {
        /// The core asked for.
        core: usize,
        /// The cores the process may run on.
        usable: Vec<usize>,
    },
    /// An empty list of user cores.
    NoUserCores,
    /// The process may run on no core at all (sched_getaffinity failed).
    NoUsableCores,
    /// The kernel-side runtime (service threads, workers) did not start.
    Runtime(io::Error),
    /// A kernel thread could not be started or set up (thread, signal stack, handler).
    KernelThread(io::Error),
    /// A kernel thread could not get a syscall page.
    Page(RegisterError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::CoreNotUsable { core, usable } => {
                write!(f, "user core {core} is not among the usable cores {usable:?}")
            }
            BuildError::NoUserCores => write!(f, "no user cores given"),
            BuildError::NoUsableCores => write!(f, "the process may run on no core"),
            BuildError::Runtime(e) => write!(f, "cannot start the kernel-side runtime: {e}"),
            BuildError::KernelThread(e) => write!(f, "cannot start a kernel thread: {e}"),
            BuildError::Page(e) => write!(f, "a kernel thread cannot get a syscall page: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Runtime(e) | BuildError::KernelThread(e) => Some(e),
            BuildError::Page(e) => Some(e),
            _ => None,
        }
    }
}

/// Where a scheduler's threads run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// One kernel thread per core, pinned, each running many user threads.
    pub user_cores: Vec<usize>,
    /// Where system calls run: service threads on their cores, or directly on the
    /// caller (one usable core, say).
    pub mode: Mode,
    /// Anything the defaults had to give up, in words (e.g. user threads sharing the only
    /// core with the service thread).
    pub note: Option<String>,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user threads on cores {:?}; {}", self.user_cores, self.mode)?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// Per-user-thread work a kernel thread does around every run of a user thread, for user
/// threads spawned with a non-zero context ([`Scheduler::spawn_with_context`]). What it is
/// for: switching the thread pointer (%fs), so that each user thread has a TLS block and a
/// thread control block of its own (the preload library's M-on-N mode does this).
///
/// All four run on the kernel thread, never concurrently for one kernel thread. `enter`
/// runs right before the user thread is resumed and returns a token; `leave` gets the token
/// right after the user thread switched out (or ended), before any other code of the loop
/// runs; `finished` runs once after the user thread's body has returned, after its `leave`;
/// `sleeps` runs when the kernel thread has spun idle and is about to sleep (no user thread
/// of it runs until it wakes and calls `enter` again).
/// Between `enter` and `leave`, the scheduler's own code running inside the user thread
/// does not rely on the kernel thread's TLS.
#[derive(Clone, Copy, Debug)]
pub struct SwitchHook {
    /// Before a run: returns a token for `leave`.
    pub enter: fn(context: usize) -> usize,
    /// After a run, with `enter`'s token.
    pub leave: fn(context: usize, token: usize),
    /// After the thread's body returned (its stack is no longer in use).
    pub finished: fn(context: usize),
    /// Before the kernel thread sleeps, with nothing to run.
    pub sleeps: fn(),
}

/// Builds a [`Scheduler`].
#[derive(Clone, Debug)]
pub struct Builder {
    user_cores: Option<Vec<usize>>,
    service_cores: Option<Vec<usize>>,
    stack_size: usize,
    max_blocking_workers: usize,
    idle_spin: Duration,
    hook: Option<SwitchHook>,
    direct_when_alone: bool,
    help_when_behind: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            user_cores: None,
            service_cores: None,
            stack_size: DEFAULT_STACK_SIZE,
            max_blocking_workers: DEFAULT_MAX_BLOCKING_WORKERS,
            idle_spin: DEFAULT_IDLE_SPIN,
            hook: None,
            direct_when_alone: true,
            help_when_behind: true,
        }
    }
}

impl Builder {
    /// One kernel thread on each of these cores (default: every core the process may use
    /// except the service cores; if that leaves none, the first usable core, shared with a
    /// service thread, as [`Layout::note`] then says).
    pub fn user_cores(mut self, cores: impl IntoIterator<Item = usize>) -> Self {
        self.user_cores = Some(cores.into_iter().collect());
        self
    }

    /// Service threads on these cores (default: the kernel-side runtime's, the highest
    /// usable core). An empty list runs every call on its caller.
    pub fn service_cores(mut self, cores: impl IntoIterator<Item = usize>) -> Self {
        self.service_cores = Some(cores.into_iter().collect());
        self
    }

    /// Usable bytes of each user thread's stack (default 256 KiB; at least
    /// [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE), rounded up to pages).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// The most blocking workers of the kernel-side runtime (default
    /// [`DEFAULT_MAX_BLOCKING_WORKERS`], at least 1).
    pub fn max_blocking_workers(mut self, workers: usize) -> Self {
        self.max_blocking_workers = workers.max(1);
        self
    }

    /// How long an idle kernel thread polls for completions and messages before it
    /// sleeps (default 50 µs).
    pub fn idle_spin(mut self, spin: Duration) -> Self {
        self.idle_spin = spin;
        self
    }

    /// Whether a user thread that is alone on its kernel thread (no other user thread
    /// ready) makes its calls that cannot wait for an event directly instead of posting
    /// them (default: yes). Posting would switch to nobody: the core would wait for the
    /// call's round trip to the service core. Off, every such call is posted.
    pub fn direct_when_alone(mut self, direct: bool) -> Self {
        self.direct_when_alone = direct;
        self
    }

    /// Whether a user thread makes its calls that cannot wait for an event directly while
    /// the service threads are behind, with other user threads ready (default: yes), and
    /// tries the non-blocking form of the few that may wait, as a lone thread does
    /// (`direct_when_alone`). The service threads have work queued
    /// (`flexsc_shim::HELP_BACKLOG` calls rung for and not taken yet), so the user core
    /// runs calls too. Off, with `direct_when_alone` off too, every delegable call is
    /// posted: what a study of pure delegation measures.
    pub fn help_when_behind(mut self, help: bool) -> Self {
        self.help_when_behind = help;
        self
    }

    /// Work to do around each run of a user thread spawned with a context (see
    /// [`SwitchHook`]). None by default, and then nothing is called.
    pub fn switch_hook(mut self, hook: SwitchHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Starts the kernel-side runtime and one pinned kernel thread per user core.
    pub fn build(self) -> Result<Scheduler, BuildError> {
        let mut runtime = Runtime::builder()
            .workers(self.max_blocking_workers)
            .blocking(Blocking::Workers)
            .caller_helps(self.help_when_behind);
        if let Some(cores) = &self.service_cores {
            runtime = runtime.cpus(cores.iter().copied());
        }
        let runtime = runtime.build().map_err(BuildError::Runtime)?;
        let layout = choose_layout(self.user_cores.as_deref(), runtime.mode())?;
        overflow::install_handler().map_err(BuildError::KernelThread)?;

        let shared = Arc::new(SchedulerShared {
            inboxes: layout.user_cores.iter().map(|_| Arc::new(Inbox::new())).collect(),
            next: CachePadded::new(AtomicUsize::new(0)),
            live: CachePadded::new(AtomicUsize::new(0)),
            all_finished: (Mutex::new(()), Condvar::new()),
            stack_size: self.stack_size,
            hook: self.hook,
            direct_when_alone: self.direct_when_alone,
        });
        let mut scheduler = Scheduler {
            shared,
            kernel_threads: Vec::new(),
            runtime: Some(runtime),
            layout,
        };
        let (started_tx, started_rx) = mpsc::channel();
        for (index, &core) in scheduler.layout.user_cores.iter().enumerate() {
            let shared = Arc::clone(&scheduler.shared);
            let pages_of = Arc::clone(scheduler.runtime().shared());
            let started = started_tx.clone();
            let idle_spin = self.idle_spin;
            let thread = std::thread::Builder::new()
                .name(format!("flexsc-user-{core}"))
                .spawn(move || {
                    // The program's threads are the user threads this one runs, not it.
                    let _uncounted = flexsc_kernel_side::census::Uncounted::begin();
                    kernel_thread_main(shared, index, core, pages_of, idle_spin, started)
                })
                .map_err(BuildError::KernelThread)?;
            scheduler.kernel_threads.push(thread);
        }
        drop(started_tx);
        for _ in 0..scheduler.kernel_threads.len() {
            // A kernel thread that died without a word counts as failed to start.
            let started = started_rx
                .recv()
                .unwrap_or_else(|_| Err(BuildError::KernelThread(io::Error::other("kernel thread died"))));
            // On error, dropping `scheduler` stops the kernel threads that did start.
            started?;
        }
        Ok(scheduler)
    }
}

/// The user cores: as asked (each must be usable), or the usable cores without the
/// service cores, or the first usable core with a note.
fn choose_layout(wanted: Option<&[usize]>, mode: &Mode) -> Result<Layout, BuildError> {
    let usable = allowed_cpus();
    let service: &[usize] = match mode {
        Mode::Service { cpus } => cpus,
        Mode::Direct { .. } => &[],
    };
    let (user_cores, note) = match wanted {
        Some([]) => return Err(BuildError::NoUserCores),
        Some(cores) => {
            if let Some(&core) = cores.iter().find(|c| !usable.contains(c)) {
                return Err(BuildError::CoreNotUsable { core, usable });
            }
            let mut cores = cores.to_vec();
            cores.sort_unstable();
            cores.dedup();
            (cores, None)
        }
        None => {
            let free: Vec<usize> = usable.iter().copied().filter(|c| !service.contains(c)).collect();
            match (free.is_empty(), usable.first()) {
                (false, _) => (free, None),
                (true, Some(&first)) => (
                    vec![first],
                    Some(format!(
                        "every usable core runs a service thread; user threads share core {first}"
                    )),
                ),
                (true, None) => return Err(BuildError::NoUsableCores),
            }
        }
    };
    Ok(Layout {
        user_cores,
        mode: mode.clone(),
        note,
    })
}

/// What the scheduler's kernel threads and handles share.
pub(crate) struct SchedulerShared {
    /// One per kernel thread, in the order of the user cores.
    inboxes: Box<[Arc<Inbox>]>,
    /// Round-robin cursor for spawns.
    next: CachePadded<AtomicUsize>,
    /// User threads spawned and not yet finished. Only ever changed by RMWs, so their
    /// single modification order holds each spawner's increment before its own finish's
    /// decrement: it reaches 0 only when no user thread is left or on its way.
    live: CachePadded<AtomicUsize>,
    /// Signalled when `live` reaches 0 (the mutex orders the check against the signal).
    all_finished: (Mutex<()>, Condvar),
    stack_size: usize,
    /// Called by the loops around runs of user threads with a context.
    pub(crate) hook: Option<SwitchHook>,
    /// See [`Builder::direct_when_alone`].
    pub(crate) direct_when_alone: bool,
}

impl SchedulerShared {
    /// Spawns a user thread on the next kernel thread in turn.
    pub(crate) fn spawn<F, T>(self: &Arc<Self>, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // A stack from this kernel thread's cache if the spawner runs on one of ours.
        let cached = kernel_thread::with_local(|local| {
            Arc::ptr_eq(&local.scheduler, self).then(|| local.stacks.borrow_mut().take())
        })
        .flatten();
        let stack = match cached {
            Some(stack) => stack?,
            None => GuardedStack::new(self.stack_size)?,
        };
        let (handle, body) = package(f);
        self.start(Task {
            body,
            stack,
            context: 0,
        });
        Ok(handle)
    }

    /// Spawns `body` with `context` for the switch hook, on a stack of at least
    /// `stack_size` usable bytes (the scheduler's own size if smaller).
    pub(crate) fn spawn_with_context(
        self: &Arc<Self>,
        context: usize,
        stack_size: usize,
        body: Box<dyn FnOnce() + Send>,
    ) -> io::Result<()> {
        let cached = (stack_size <= self.stack_size)
            .then(|| {
                kernel_thread::with_local(|local| {
                    Arc::ptr_eq(&local.scheduler, self).then(|| local.stacks.borrow_mut().take())
                })
                .flatten()
            })
            .flatten();
        let stack = match cached {
            Some(stack) => stack?,
            None => GuardedStack::new(stack_size.max(self.stack_size))?,
        };
        self.start(Task { body, stack, context });
        Ok(())
    }

    /// Hands a new user thread to the next kernel thread in turn.
    fn start(&self, task: Task) {
        self.live.fetch_add(1, Ordering::AcqRel);
        let target = &self.inboxes[self.next.fetch_add(1, Ordering::Relaxed) % self.inboxes.len()];
        if let Err(task) = kernel_thread::spawn_here(target, task) {
            target.send(Message::Spawn(task));
        }
    }

    /// A kernel thread's loop saw a user thread end.
    pub(crate) fn user_thread_finished(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _guard = lock(&self.all_finished.0);
            self.all_finished.1.notify_all();
        }
    }

    /// Blocks the calling OS thread until no user thread is left.
    fn wait_all_finished(&self) {
        let mut guard = lock(&self.all_finished.0);
        while self.live.load(Ordering::Acquire) != 0 {
            guard = self.all_finished.1.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether the caller is one of this scheduler's kernel threads.
    fn is_own_kernel_thread(self: &Arc<Self>) -> bool {
        kernel_thread::with_local(|local| Arc::ptr_eq(&local.scheduler, self)).unwrap_or(false)
    }
}

/// The body of kernel thread `index`, pinned to `core`.
fn kernel_thread_main(
    shared: Arc<SchedulerShared>,
    index: usize,
    core: usize,
    runtime: Arc<flexsc_shim::Shared>,
    idle_spin: Duration,
    started: mpsc::Sender<Result<(), BuildError>>,
) {
    // The core was checked usable; if pinning fails anyway, an unpinned kernel thread is
    // still correct.
    let _ = core_affinity::set_for_current(core_affinity::CoreId { id: core });
    let setup = AltStack::install()
        .map_err(BuildError::KernelThread)
        .and_then(|alt| Ok((alt, Pages::new(Arc::clone(&runtime)).map_err(BuildError::Page)?)));
    let (_alt_stack, pages) = match setup {
        Ok(setup) => setup,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let local = Local {
        inbox: Arc::clone(&shared.inboxes[index]),
        stacks: RefCell::new(StackCache::new(shared.stack_size)),
        scheduler: shared,
        ready: RefCell::new(VecDeque::new()),
        spawned: RefCell::new(Vec::new()),
        pages: RefCell::new(pages),
        runtime,
    };
    let _ = started.send(Ok(()));
    drop(started);
    kernel_thread::run(&local, idle_spin);
}

/// FlexSC-Threads: pinned kernel threads, each running many user threads that switch on
/// a system call, and the kernel-side runtime that runs the calls. See the crate docs.
///
/// Dropping it waits until every user thread has finished (as
/// [`Scheduler::wait`]), then stops the kernel threads and the runtime.
pub struct Scheduler {
    shared: Arc<SchedulerShared>,
    kernel_threads: Vec<std::thread::JoinHandle<()>>,
    /// `Some` until shutdown.
    runtime: Option<Runtime>,
    layout: Layout,
}

impl Scheduler {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Where the kernel threads and service threads run.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("the runtime lives until shutdown")
    }

    /// Spawns a user thread on the next kernel thread in turn. It starts at once.
    ///
    /// # Panics
    /// When its stack cannot be mapped (as `std::thread::spawn` panics when it cannot
    /// start a thread).
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.shared
            .spawn(f)
            .unwrap_or_else(|e| panic!("Scheduler::spawn: cannot map a user thread's stack: {e}"))
    }

    /// Spawns a user thread that runs `body` with `context` passed to the
    /// [`SwitchHook`] around each of its runs (0: no hook calls), on a stack of at least
    /// `stack_size` usable bytes (at least the scheduler's size). `body` must not unwind
    /// out: a panic that escapes it aborts the process.
    ///
    /// # Errors
    /// When the stack cannot be mapped.
    pub fn spawn_with_context(
        &self,
        context: usize,
        stack_size: usize,
        body: Box<dyn FnOnce() + Send>,
    ) -> io::Result<()> {
        self.shared.spawn_with_context(context, stack_size, body)
    }

    /// Runs `f` as a user thread, waits until every user thread has finished (the ones it
    /// spawned, and any others), and returns what `f` returned. A panic in `f` resumes
    /// here.
    ///
    /// # Panics
    /// If `f` panicked; and if called from one of this scheduler's own user threads (it
    /// would wait for itself).
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let handle = self.spawn(f);
        self.wait();
        match handle.join() {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Blocks the calling thread until no user thread is left.
    ///
    /// # Panics
    /// If called from one of this scheduler's own kernel threads (it would wait for
    /// itself).
    pub fn wait(&self) {
        assert!(
            !self.shared.is_own_kernel_thread(),
            "Scheduler::wait called from one of its own user threads: it would wait for itself"
        );
        self.shared.wait_all_finished();
    }

    /// A snapshot of the runtime's statistics (calls, where they ran, batch sizes).
    pub fn stats(&self) -> Stats {
        self.runtime().stats()
    }

    /// Waits for every user thread, stops the kernel threads and the runtime, and returns
    /// the final statistics.
    pub fn shutdown(mut self) -> Stats {
        self.stop_kernel_threads();
        self.stop_runtime().expect("the runtime lives until shutdown")
    }

    /// Stops the runtime (after the kernel threads: nothing is posted any more) and returns
    /// its final statistics; `None` if it was stopped already.
    fn stop_runtime(&mut self) -> Option<Stats> {
        let runtime = self.runtime.take()?;
        Some(runtime.shutdown())
    }

    fn stop_kernel_threads(&mut self) {
        self.wait();
        for inbox in self.shared.inboxes.iter() {
            inbox.stop();
        }
        for thread in self.kernel_threads.drain(..) {
            // A kernel thread never unwinds: its loop aborts instead (`AbortOnUnwind`).
            let _ = thread.join();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop_kernel_threads();
        self.stop_runtime();
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler").field("layout", &self.layout).finish()
    }
}
