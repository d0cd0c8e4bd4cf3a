//! Differential fuzzing: the fuzzer's bytes choose a sequence of system calls (the
//! generator of the randomized differential test, `kernel-side/tests/support/calls.rs`,
//! two bytes a choice), which runs once directly and once through a syscall page, each
//! in a fresh directory of identical content. Any difference in a return value, an errno,
//! a byte read, or the resulting tree is a crash, saved by libFuzzer as a reproducer.
//!
//! ```text
//! cargo fuzz run --sanitizer none differential -- -max_total_time=3600
//! ```
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

use std::sync::OnceLock;

use flexsc_kernel_side::{Builder, Runtime};
use libfuzzer_sys::fuzz_target;

#[path = "../../kernel-side/tests/support/calls.rs"]
mod calls;

use calls::{run_sequence, tree, Direct, Pages, Rng};

/// One runtime for the whole run (service threads are expensive to start); the
/// `FLEXSC_*` variables configure it.
fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // A write to a pipe or socket whose other end is closed must answer EPIPE on both
        // sides. libFuzzer's main, unlike Rust's, leaves SIGPIPE at its default (end the
        // process), as the test binaries do not.
        // SAFETY: setting a signal's disposition to SIG_IGN has no other effect.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        Builder::from_env()
            .unwrap_or_else(|e| panic!("{e}"))
            .build()
            .unwrap_or_else(|e| panic!("cannot build the runtime: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    // About one call for every 8 bytes (a call takes 2 to 8 choices), at most 256.
    let calls = (data.len() / 8).clamp(1, 256) as u64;
    let root = tempfile::tempdir().expect("a temporary folder");
    let mut sides = Vec::new();
    for name in ["direct", "pages"] {
        let dir = root.path().join(name);
        std::fs::create_dir_all(dir.join("d")).expect("fixture");
        std::fs::write(dir.join("a"), b"fixture a").expect("fixture");
        let mut rng = Rng::Bytes(data.to_vec(), 0);
        let seen = if name == "direct" {
            run_sequence(&mut rng, calls, &dir, 0, &mut Direct)
        } else {
            let mut pages = Pages(runtime().submitter().expect("a syscall page"));
            run_sequence(&mut rng, calls, &dir, 0, &mut pages)
        };
        sides.push((seen, tree(&dir)));
    }
    let (pages, direct) = (sides.pop().expect("two sides"), sides.pop().expect("two sides"));
    if let Some(i) = (0..direct.0.len()).find(|&i| direct.0[i] != pages.0[i]) {
        panic!(
            "call {i}: direct {:?}, pages {:?}; before: {:?}",
            direct.0[i],
            pages.0[i],
            &direct.0[i.saturating_sub(3)..i]
        );
    }
    assert_eq!(direct.0.len(), pages.0.len());
    assert!(
        direct.1 == pages.1,
        "the trees differ: direct {:?}, pages {:?}",
        direct.1.keys(),
        pages.1.keys()
    );
});
