//! # libflexsc_preload.so: exception-less system calls for unmodified programs
//!
//! Loaded with `LD_PRELOAD` (by `flexsc run`), it interposes libc's wrappers for the
//! delegable system calls and routes them through per-thread syscall pages served by the
//! flexsc runtime's service threads. Calls that must run on their caller pass straight
//! through to libc.
//!
//! - [`interpose`]: the wrappers, one per libc function, each naming the syscall it makes;
//! - [`guard`]: the runtime's own descriptors, which the program's `close` and
//!   `close_range` do not reach;
//! - [`route`]: the interposed path: guard, policy, delegate or call the real function;
//! - [`policy`]: when delegation pays off (the adaptive policy);
//! - [`lifecycle`]: constructor, fork, exec, exit;
//! - [`loader`]: whether the calling thread runs inside `dlopen` (a library's constructor);
//! - [`stats`]: the per-process statistics file `flexsc run` merges;
//! - [`real`]: the real libc symbols;
//! - [`unwind_link`]: the unwinder its frames use, the program's `libgcc_s`, loaded when
//!   first needed rather than in every process;
//! - [`mn`]: M-on-N threads (`FLEXSC_THREADS=m-on-n`): pthread_create makes user threads
//!   with TCBs of their own, and their calls post and switch.
//!
//! It never breaks the host program: on a bad configuration or any failure to start, it
//! says so once on stderr and every call runs directly.
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

pub mod guard;
pub mod heap;
pub(crate) mod inside;
pub mod interpose;
pub mod lifecycle;
pub mod loader;
pub mod mn;
pub mod policy;
pub mod real;
pub mod route;
pub mod stats;
pub mod unwind_link;

/// The library's allocations go to glibc's allocator, never the program's (see `heap`).
#[global_allocator]
static HEAP: heap::LibcHeap = heap::LibcHeap;

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = lifecycle::constructor;
