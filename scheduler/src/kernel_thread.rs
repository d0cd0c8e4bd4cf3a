//! One kernel thread: pinned to a user core, it runs many user threads, and its loop is
//! FlexSC-Threads' scheduler.
//!
//! # A round of the loop
//!
//! 1. Take new user threads and wakes from the inbox (and from user threads of this
//!    kernel thread, without the inbox's lock).
//! 2. Run each user thread that is ready at the start of the round, once, until it
//!    switches out: it yields, posts a system call, finds every page full, parks, or ends.
//! 3. Ring the doorbell once for every call posted in the round (`Pages::submit`): one
//!    fence per round instead of one per call, and bigger batches for the service thread.
//!    (A service thread that is awake already sees each post as it lands; the ring only
//!    matters to one that sleeps.)
//! 4. Reap: poll every call in flight; a finished call makes its user thread ready, with
//!    the result, and frees an entry for a user thread that found the pages full.
//!
//! # When nothing is ready
//!
//! Spin first, sleep late: a futex wake across the two vCPUs of this machine costs ~70 µs,
//! while most calls finish within a few. So the loop polls the calls in flight and the
//! inbox for `idle_spin` (default 50 µs), with a `sched_yield` between rounds of looks so
//! that another process's thread on the same core is not kept waiting by the spin. Then it
//! sleeps, in one of three ways:
//!
//! - **On a call that cannot wait for an event** (`Class::Delegate`: it finishes in the
//!   time it takes to run, e.g. a pread64 that went to disk), through
//!   `Submitter::wait_a_while`, which sleeps on the entry's status word and is woken by the
//!   service side exactly when the call completes, or after `TAKE_BACK_AFTER` (10 ms).
//!   Nothing else can wake that sleep, so a cross-thread wake (a spawn, a mutex released on
//!   another kernel thread) waits for the call or for that bound. The bound is there
//!   because "finishes in the time it takes to run" has exceptions (a FIFO's open waits
//!   for the other end, perhaps opened by another user thread of this kernel thread). For
//!   the same reason a call that no service thread has claimed yet is preferred: if none
//!   claims it during the sleep (the service thread is stuck in such a call), the wait
//!   takes it back and runs it here.
//! - **With only calls that may wait for an event in flight** (a read on a pipe, a sleep),
//!   on the inbox's futex word, with a timeout: the call's completion does not wake that
//!   word (the shim wakes only the entry's own word, and only for a waiter that sleeps in
//!   `Entry::wait`, which a cross-thread wake could not interrupt), so the loop wakes up to
//!   poll. The timeout starts at 50 µs and doubles while nothing happens, up to 1 ms: a
//!   completion that arrives during a long wait is seen up to 1 ms late, and a kernel
//!   thread parked on a long wait wakes at most a thousand times a second.
//! - **With nothing in flight**, on the inbox's futex word without a timeout: only another
//!   thread can give it work, and the inbox's handshake (see `inbox`) never loses that
//!   wake.
//!
//! Exact wake-on-completion for event waits needs what the shim does not offer yet: a way
//! for the owner to mark entries PARKED without sleeping in `Entry::wait`, so that it
//! could sleep on them and on its inbox word at once (futex_waitv).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::mem;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;

use crate::inbox::{Inbox, Message};
use crate::pages::{PageTicket, Pages};
use crate::scheduler::{SchedulerShared, SwitchHook};
use crate::stack::StackCache;
use crate::user_thread::{self, Switch, Task, UserCoroutine};

/// The first bound of a sleep while calls that may wait for an event are in flight.
const POLL_SLEEP_MIN: Duration = Duration::from_micros(50);
/// The longest such sleep: how late a completion may be seen while the loop sleeps.
const POLL_SLEEP_MAX: Duration = Duration::from_millis(1);
/// Polls between two reads of the clock while spinning (a clock read costs ~20 ns).
const SPINS_PER_CLOCK_READ: u32 = 64;

/// The parts of a kernel thread that its user threads reach (through [`with_local`]):
/// only interior-mutable pieces, each borrowed for a few instructions and never across a
/// switch.
pub(crate) struct Local {
    /// The scheduler this kernel thread belongs to.
    pub(crate) scheduler: Arc<SchedulerShared>,
    /// This kernel thread's inbox (also the identity of the kernel thread).
    pub(crate) inbox: Arc<Inbox>,
    /// User threads ready to run, by key, in order.
    pub(crate) ready: RefCell<VecDeque<u32>>,
    /// New user threads spawned by user threads of this kernel thread, for this one.
    pub(crate) spawned: RefCell<Vec<Task>>,
    /// Its syscall pages.
    pub(crate) pages: RefCell<Pages>,
    /// The runtime the pages belong to, reachable while they are borrowed (a signal
    /// handler's call, see `syscall`).
    pub(crate) runtime: Arc<flexsc_shim::Shared>,
    /// Stacks of finished user threads, for the next spawns made here.
    pub(crate) stacks: RefCell<StackCache>,
}

impl Local {
    /// Whether no other user thread could run here now: none ready, none spawned, no
    /// message in the inbox. (Calls in flight may make some ready soon; until then the
    /// core would wait.)
    #[inline]
    pub(crate) fn nothing_else_ready(&self) -> bool {
        self.ready.borrow().is_empty() && self.spawned.borrow().is_empty() && !self.inbox.has_pending()
    }
}

thread_local! {
    /// The kernel thread's `Local` while its loop runs, else null.
    static LOCAL: Cell<*const Local> = const { Cell::new(ptr::null()) };
}

/// Calls `f` with the calling kernel thread's `Local`; `None` on any other thread.
///
/// A user thread whose `SwitchHook` installed TLS of its own sees a null `LOCAL` (its TLS
/// is not the kernel thread's); it finds the `Local` through its own record instead. The
/// second look only happens on that path, so it costs nothing without a hook.
#[inline]
pub(crate) fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    let mut local = LOCAL.with(Cell::get);
    if local.is_null() {
        local = user_thread::current_local();
    }
    // SAFETY: `run` sets LOCAL (and each user thread's record) to a `Local` that outlives
    // the loop and every user thread of it, and clears LOCAL before the `Local` is dropped;
    // only this kernel thread's code reads it, and `Local` is only ever shared.
    (!local.is_null()).then(|| f(unsafe { &*local }))
}

/// Hands `task` to the calling kernel thread if its inbox is `inbox` (no lock, no wake);
/// gives it back otherwise.
pub(crate) fn spawn_here(inbox: &Arc<Inbox>, task: Task) -> Result<(), Task> {
    let mut task = Some(task);
    with_local(|local| {
        if Arc::ptr_eq(&local.inbox, inbox) {
            if let Some(task) = task.take() {
                local.spawned.borrow_mut().push(task);
            }
        }
    });
    match task {
        None => Ok(()),
        Some(task) => Err(task),
    }
}

/// Runs the loop of the calling kernel thread until the scheduler stops and no user
/// thread is left.
pub(crate) fn run(local: &Local, idle_spin: Duration) {
    LOCAL.with(|l| l.set(local));
    let mut scheduler_loop = Loop {
        local,
        threads: Slab::default(),
        in_flight: Vec::new(),
        page_full: VecDeque::new(),
        messages: Vec::new(),
        spawned: Vec::new(),
        idle_spin,
        poll_sleep: POLL_SLEEP_MIN,
        hook: local.scheduler.hook,
    };
    // Declared after the loop, so dropped first if the loop unwinds.
    let abort_on_unwind = AbortOnUnwind;
    scheduler_loop.run();
    std::mem::forget(abort_on_unwind);
    LOCAL.with(|l| l.set(ptr::null()));
}

/// Aborts the process if dropped, which only happens when the loop unwinds (a bug: the
/// loop itself never panics, and user threads' panics stay on their stacks). Unwinding
/// the loop would drop suspended user threads, running their destructors while calls
/// they posted may still write into their stacks; and nothing could run or join them
/// afterwards. So stop at once, before anything is dropped.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        crate::sys::write_stderr(b"flexsc-scheduler: a kernel thread's loop panicked; aborting\n");
        crate::sys::abort();
    }
}

/// A user thread as the loop keeps it.
struct UserThread {
    coroutine: UserCoroutine,
    /// What to resume it with: its call's result after a `Switch::Syscall`, else 0.
    resume_with: i64,
    /// Its spawner's word for the switch hook (0: none).
    context: usize,
}

/// A call in flight and the user thread waiting for it.
struct InFlight {
    key: u32,
    ticket: PageTicket,
}

/// The loop's own state: never reachable from user threads.
struct Loop<'a> {
    local: &'a Local,
    threads: Slab,
    in_flight: Vec<InFlight>,
    /// User threads waiting for a free entry, oldest first.
    page_full: VecDeque<u32>,
    /// Reused buffers for the inbox's messages and local spawns.
    messages: Vec<Message>,
    spawned: Vec<Task>,
    idle_spin: Duration,
    /// The bound of the next sleep with event waits in flight (see the module docs).
    poll_sleep: Duration,
    /// Called around each run of a user thread with a context (see `SwitchHook`).
    hook: Option<SwitchHook>,
}

impl Loop<'_> {
    fn run(&mut self) {
        loop {
            self.take_new_work();
            let ran = self.run_round();
            self.local.pages.borrow_mut().submit();
            let reaped = self.reap();
            if ran + reaped > 0 {
                self.poll_sleep = POLL_SLEEP_MIN;
            }
            if self.has_work() {
                continue;
            }
            if self.threads.is_empty() && self.local.inbox.is_stopping() {
                return;
            }
            self.idle();
        }
    }

    fn has_work(&self) -> bool {
        !self.local.ready.borrow().is_empty()
            || !self.local.spawned.borrow().is_empty()
            || self.local.inbox.has_pending()
    }

    /// Starts spawned user threads and makes woken ones ready.
    fn take_new_work(&mut self) {
        let local = self.local;
        if !local.spawned.borrow().is_empty() {
            let mut spawned = mem::take(&mut self.spawned);
            mem::swap(&mut spawned, &mut *local.spawned.borrow_mut());
            for task in spawned.drain(..) {
                self.start(task);
            }
            self.spawned = spawned;
        }
        if local.inbox.has_pending() {
            let mut messages = mem::take(&mut self.messages);
            local.inbox.take(&mut messages);
            for message in messages.drain(..) {
                match message {
                    Message::Spawn(task) => self.start(task),
                    Message::Wake(key) => local.ready.borrow_mut().push_back(key),
                }
            }
            self.messages = messages;
        }
    }

    fn start(&mut self, task: Task) {
        let home = Arc::clone(&self.local.inbox);
        let local: *const Local = self.local;
        let context = task.context;
        let key = self.threads.insert_with(|key| UserThread {
            coroutine: user_thread::new_coroutine(task, home, key, local),
            resume_with: 0,
            context,
        });
        self.local.ready.borrow_mut().push_back(key);
    }

    /// Runs each user thread that is ready now, once. Threads readied meanwhile (a yield,
    /// a local wake) wait for the next round, after the inbox and the reap.
    fn run_round(&mut self) -> usize {
        let local = self.local;
        let ready = local.ready.borrow().len();
        for _ in 0..ready {
            let Some(key) = local.ready.borrow_mut().pop_front() else {
                break;
            };
            self.resume(key);
        }
        ready
    }

    fn resume(&mut self, key: u32) {
        let thread = self.threads.get_mut(key);
        let value = mem::take(&mut thread.resume_with);
        let context = thread.context;
        let switch = match self.hook {
            Some(hook) if context != 0 => {
                let token = (hook.enter)(context);
                let switch = thread.coroutine.resume(value);
                (hook.leave)(context, token);
                switch
            }
            _ => thread.coroutine.resume(value),
        };
        user_thread::clear_current();
        match switch {
            CoroutineResult::Yield(Switch::Yield) => self.local.ready.borrow_mut().push_back(key),
            CoroutineResult::Yield(Switch::Syscall(ticket)) => self.in_flight.push(InFlight { key, ticket }),
            CoroutineResult::Yield(Switch::PageFull) => self.page_full.push_back(key),
            CoroutineResult::Yield(Switch::Park) => {}
            CoroutineResult::Return(()) => self.finish(key),
        }
    }

    fn finish(&mut self, key: u32) {
        let thread = self.threads.remove(key);
        let context = thread.context;
        let stack = thread.coroutine.into_stack();
        self.local.stacks.borrow_mut().put(stack);
        if let Some(hook) = self.hook.filter(|_| context != 0) {
            (hook.finished)(context);
        }
        self.local.scheduler.user_thread_finished();
    }

    /// Polls every call in flight; returns how many finished.
    fn reap(&mut self) -> usize {
        if self.in_flight.is_empty() {
            return 0;
        }
        let local = self.local;
        let mut pages = local.pages.borrow_mut();
        let mut reaped = 0;
        let mut i = 0;
        while i < self.in_flight.len() {
            match pages.poll(&self.in_flight[i].ticket) {
                Some(ret) => {
                    let done = self.in_flight.swap_remove(i);
                    self.make_ready(done.key, ret);
                    reaped += 1;
                }
                None => i += 1,
            }
        }
        drop(pages);
        self.entries_freed(reaped);
        reaped
    }

    fn make_ready(&mut self, key: u32, result: i64) {
        self.threads.get_mut(key).resume_with = result;
        self.local.ready.borrow_mut().push_back(key);
    }

    /// `freed` entries were reaped: as many user threads that found the pages full may
    /// post again.
    fn entries_freed(&mut self, freed: usize) {
        for _ in 0..freed {
            let Some(key) = self.page_full.pop_front() else {
                return;
            };
            self.local.ready.borrow_mut().push_back(key);
        }
    }

    /// Nothing is ready: spin, then sleep (see the module docs).
    fn idle(&mut self) {
        if self.spin() {
            return;
        }
        if let Some(hook) = self.hook {
            (hook.sleeps)();
        }
        let local = self.local;
        // Sleep on a call nobody has claimed yet, if there is one: if the service thread
        // is stuck in another call (a FIFO's open), that wait takes the call back and runs
        // it here, where a wait for the stuck call would only wait with it.
        let bounded = |f: &InFlight| !f.ticket.may_wait_for_event();
        let pick = {
            let pages = local.pages.borrow();
            self.in_flight
                .iter()
                .position(|f| bounded(f) && pages.is_unclaimed(&f.ticket))
                .or_else(|| self.in_flight.iter().position(bounded))
        };
        if let Some(i) = pick {
            let InFlight { key, ticket } = self.in_flight.swap_remove(i);
            // Never a call that may wait for another thread (a FIFO's open): run here, it
            // could wait for a user thread of this kernel thread (one here now, or one
            // created later), which then could never run. The relief thread hands such a
            // call to a worker instead.
            let take_back = !ticket.may_wait_for_another_thread();
            match local.pages.borrow_mut().wait_a_while(ticket, take_back) {
                Ok(result) => {
                    self.make_ready(key, result);
                    self.entries_freed(1);
                }
                // Still running after a bounded sleep: back to the loop, which looks at
                // the inbox and the other calls before it sleeps again.
                Err(ticket) => self.in_flight.push(InFlight { key, ticket }),
            }
            return;
        }
        if self.in_flight.is_empty() {
            local.inbox.sleep(None);
        } else {
            local.inbox.sleep(Some(self.poll_sleep));
            self.poll_sleep = (self.poll_sleep * 2).min(POLL_SLEEP_MAX);
        }
    }

    /// Polls the calls in flight and the inbox for up to `idle_spin`. True if something
    /// came.
    fn spin(&mut self) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..SPINS_PER_CLOCK_READ {
                if self.local.inbox.has_pending() || self.reap() > 0 {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= self.idle_spin {
                return false;
            }
            // Between rounds of looks, give the core to any other runnable thread (a
            // client sharing the user core, in the papers' server runs): it would wait up
            // to the whole spin otherwise. Alone on the core, this returns at once.
            flexsc_shim::sys::sched_yield();
        }
    }
}

/// The loop's table of user threads, by key. A key stays with its thread until the thread
/// ends, then is reused.
#[derive(Default)]
struct Slab {
    slots: Vec<Option<UserThread>>,
    vacant: Vec<u32>,
    live: usize,
}

impl Slab {
    fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Inserts the thread `make` builds for its key; returns the key.
    fn insert_with(&mut self, make: impl FnOnce(u32) -> UserThread) -> u32 {
        let key = match self.vacant.pop() {
            Some(key) => key,
            None => {
                let key =
                    u32::try_from(self.slots.len()).expect("fewer than 2^32 user threads per kernel thread");
                self.slots.push(None);
                key
            }
        };
        self.slots[key as usize] = Some(make(key));
        self.live += 1;
        key
    }

    /// The live thread with `key`. Keys in the ready queue, the inbox, the calls in flight
    /// and the page-full queue always name live threads (see `park` for wakes).
    fn get_mut(&mut self, key: u32) -> &mut UserThread {
        self.slots[key as usize]
            .as_mut()
            .expect("a scheduled key names a live user thread")
    }

    fn remove(&mut self, key: u32) -> UserThread {
        let thread = self.slots[key as usize]
            .take()
            .expect("a finished key names a live user thread");
        self.vacant.push(key);
        self.live -= 1;
        thread
    }
}
