//! An async executor for the futures of `flexsc::fs` and `flexsc::net`, whose work is a
//! system call posted to the syscall pages.
//!
//! ```text
//!   block_on(f) thread            worker threads "flexsc-exec-N"        service thread
//!   polls f; parks when            pop a task, poll it:                  runs posted calls;
//!   Pending; woken by f's waker    a call is posted, Pending  ───────>   DONE, then wakes
//!                                  <──── the task's waker queues it ───  the entry's waker
//! ```
//!
//! The futures do not depend on this executor: they work under any (tokio included),
//! because the thread that completes a call wakes the task itself. This executor is the
//! small one that goes with them: a shared run queue, workers that spin briefly, then
//! park (`idle`), and tasks that a wake schedules exactly once (`task`).
//!
//! ```no_run
//! let rt = flexsc_scheduler::executor::Runtime::builder().workers(1).build()?;
//! let answer = rt.block_on(async {
//!     let task = flexsc_scheduler::executor::spawn(async { 6 * 7 });
//!     task.await.unwrap()
//! });
//! assert_eq!(answer, 42);
//! # Ok::<(), std::io::Error>(())
//! ```

pub(crate) mod idle;
mod join;
mod task;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

pub use join::JoinHandle;

use idle::Idle;
use task::Task;

/// How long an idle worker, or a `block_on` caller, looks for work before it sleeps. A
/// cross-core futex wake costs tens of microseconds on the machines we measured, so a
/// short spin pays for itself whenever work comes back sooner.
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(50);

/// Configures a [`Runtime`].
#[derive(Clone, Debug)]
pub struct Builder {
    workers: usize,
    idle_spin: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            workers: default_workers(),
            idle_spin: DEFAULT_IDLE_SPIN,
        }
    }
}

/// One worker per core the service threads leave free (the process's usable cores minus
/// one), at least one.
fn default_workers() -> usize {
    flexsc_kernel_side::runtime::allowed_cpus()
        .len()
        .saturating_sub(1)
        .max(1)
}

impl Builder {
    /// Worker threads that run spawned tasks (at least 1; default: usable cores - 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// How long an idle worker spins before it parks (default [`DEFAULT_IDLE_SPIN`]).
    pub fn idle_spin(mut self, spin: Duration) -> Self {
        self.idle_spin = spin;
        self
    }

    /// Starts the workers.
    pub fn build(self) -> std::io::Result<Runtime> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            idle: Idle::new(self.workers),
            threads: OnceLock::new(),
            stopping: AtomicBool::new(false),
            idle_spin: self.idle_spin,
        });
        let mut handles = Vec::with_capacity(self.workers);
        for i in 0..self.workers {
            let for_worker = Arc::clone(&shared);
            let handle = thread::Builder::new()
                .name(format!("flexsc-exec-{i}"))
                .spawn(move || worker(for_worker, i));
            match handle {
                Ok(h) => handles.push(h),
                Err(e) => {
                    shared.stop();
                    let _ = shared
                        .threads
                        .set(handles.iter().map(|h| h.thread().clone()).collect());
                    shared.wake_all();
                    return Err(e);
                }
            }
        }
        if shared
            .threads
            .set(handles.iter().map(|h| h.thread().clone()).collect())
            .is_err()
        {
            unreachable!("set once, here");
        }
        // Workers park until the thread list is set (see `worker`); let them look again.
        shared.wake_all();
        Ok(Runtime { shared, handles })
    }
}

/// What a runtime's workers and its tasks' wakers share.
pub(crate) struct Shared {
    queue: Mutex<VecDeque<Arc<Task>>>,
    /// The queue's length, for looks that need no lock (idle spinning).
    queued: AtomicUsize,
    idle: Idle,
    threads: OnceLock<Vec<Thread>>,
    stopping: AtomicBool,
    idle_spin: Duration,
}

impl Shared {
    fn push(&self, task: Arc<Task>) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push_back(task);
            self.queued.store(queue.len(), Ordering::Relaxed);
        }
        self.idle.wake_one(|i| {
            if let Some(threads) = self.threads.get() {
                threads[i].unpark();
            }
        });
    }

    fn pop(&self) -> Option<Arc<Task>> {
        if self.queued.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let task = queue.pop_front();
        self.queued.store(queue.len(), Ordering::Relaxed);
        task
    }

    fn has_work(&self) -> bool {
        !self.queue.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
            || self.stopping.load(Ordering::Acquire)
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    fn wake_all(&self) {
        for t in self.threads.get().into_iter().flatten() {
            t.unpark();
        }
    }

    fn spawn<F>(self: &Arc<Self>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (completer, handle) = join::pair();
        let wrapped = async move {
            let mut future = pin!(future);
            // A panic in the future ends the task and goes to its handle.
            let result = std::future::poll_fn(|cx| {
                match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
                    Err(panic) => Poll::Ready(Err(panic)),
                }
            })
            .await;
            completer.complete(result);
        };
        self.push(Task::new(Box::pin(wrapped), self));
        handle
    }
}

thread_local! {
    /// The runtime whose task (or `block_on`) this thread runs, for [`spawn`].
    static CURRENT: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

/// Sets CURRENT for the life of the guard.
struct Enter(Option<Arc<Shared>>);

impl Enter {
    fn new(shared: &Arc<Shared>) -> Enter {
        Enter(CURRENT.with(|c| c.borrow_mut().replace(Arc::clone(shared))))
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

fn worker(shared: Arc<Shared>, i: usize) {
    while shared.threads.get().is_none() && !shared.stopping.load(Ordering::Acquire) {
        thread::park();
    }
    let _enter = Enter::new(&shared);
    loop {
        if let Some(task) = shared.pop() {
            task.run();
            continue;
        }
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        // Spin a little: completions usually come back within microseconds.
        spin_until(shared.idle_spin, || {
            shared.queued.load(Ordering::Relaxed) != 0 || shared.stopping.load(Ordering::Relaxed)
        });
        if shared.queued.load(Ordering::Relaxed) == 0 {
            shared.idle.sleep(i, || shared.has_work(), thread::park);
        }
    }
}

/// An executor: worker threads running spawned tasks, and [`Runtime::block_on`].
/// Dropping it stops the workers; tasks not finished by then are dropped (their calls in
/// flight complete, and clean up, on their own).
pub struct Runtime {
    shared: Arc<Shared>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Runtime {
    /// A runtime with the default configuration.
    pub fn new() -> std::io::Result<Runtime> {
        Builder::default().build()
    }

    /// Configures a runtime.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Runs `future` on a worker thread; await the handle for its output.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.spawn(future)
    }

    /// Runs `future` on the calling thread until it completes; inside it, [`spawn`] puts
    /// tasks on this runtime. The thread spins briefly, then parks, while the future waits.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _enter = Enter::new(&self.shared);
        block_on_here(future, self.shared.idle_spin)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shared.stop();
        self.shared.wake_all();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
        // Queued tasks hold the runtime weakly; drop them here, not on some waker's thread.
        let queued = std::mem::take(&mut *self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()));
        drop(queued);
    }
}

/// Spins until `done` or for about `limit`, reading the clock once every 64 looks (a
/// clock read costs more than a look).
fn spin_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if done() {
                return;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= limit {
            return;
        }
    }
}

/// Wakes a thread blocked in `block_on`.
struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

fn block_on_here<F: Future>(future: F, spin: Duration) -> F::Output {
    let mut future = pin!(future);
    let signal = Arc::new(ThreadWaker {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        spin_until(spin, || signal.woken.load(Ordering::Acquire));
        // A park token left by an unpark before the park makes it return at once, so a
        // wake between the look and the park is not lost.
        while !signal.woken.swap(false, Ordering::AcqRel) {
            thread::park();
        }
    }
}

/// The runtime [`block_on`] and [`spawn`] use outside any other: built on first use with
/// the default configuration.
fn default_runtime() -> &'static Runtime {
    static DEFAULT: OnceLock<Runtime> = OnceLock::new();
    DEFAULT.get_or_init(|| match Runtime::new() {
        Ok(rt) => rt,
        // Without a thread the process can do little else; say what failed.
        Err(e) => panic!("flexsc: cannot start the executor's worker thread: {e}"),
    })
}

/// Runs `future` to completion on the calling thread (with the default runtime for the
/// tasks it spawns) and returns its output.
pub fn block_on<F: Future>(future: F) -> F::Output {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(shared) => block_on_here(future, shared.idle_spin),
        None => default_runtime().block_on(future),
    }
}

/// Spawns `future` on the runtime this thread runs tasks for (or the default runtime).
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(shared) => shared.spawn(future),
        None => default_runtime().spawn(future),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn spawned_tasks_run_and_join() {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let sum = rt.block_on(async {
            let tasks: Vec<_> = (0..1000u64).map(|i| spawn(async move { i * 2 })).collect();
            let mut sum = 0;
            for t in tasks {
                sum += t.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 999 * 1000);
    }

    #[test]
    fn a_panic_goes_to_the_join_handle() {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let result = rt.block_on(rt.spawn(async { panic!("boom") }));
        let payload = result.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        // The worker survives.
        assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    }

    #[test]
    fn a_task_woken_from_another_thread_runs_again() {
        let rt = Runtime::builder()
            .workers(1)
            .idle_spin(Duration::ZERO)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let flag = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&flag);
        let task = rt.spawn(std::future::poll_fn(move |cx| {
            if f.load(Ordering::Acquire) {
                Poll::Ready(7)
            } else {
                tx.send(cx.waker().clone()).unwrap();
                Poll::Pending
            }
        }));
        let waker = rx.recv().unwrap();
        // Let the worker go to sleep, then wake the task from this thread.
        thread::sleep(Duration::from_millis(20));
        flag.store(true, Ordering::Release);
        waker.wake();
        assert_eq!(block_on(task).unwrap(), 7);
    }

    #[test]
    fn dropping_the_runtime_fails_pending_joins() {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let handle = rt.spawn(std::future::pending::<()>());
        drop(rt);
        assert!(block_on(handle).is_err());
    }
}
