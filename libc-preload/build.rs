//! Keeps `libgcc_s.so.1` out of the preload library's `DT_NEEDED`.
//!
//! Rust's std on linux-gnu links `-lgcc_s` for unwinding, so every program started under
//! `flexsc run` loaded one more library and ran its constructor: `__cpu_indicator_init`,
//! a dozen `cpuid`s, each a VM exit of ~4 µs on this guest. Measured: ~90 µs more per
//! `/bin/true`; a shell script or `make` pays that per process.
//!
//! The linker finds `-lgcc_s` first in a folder of ours, as a linker script naming an
//! archive of forwarders (`src/unwind_link.c`) that reach the program's own libgcc_s when
//! something unwinds, loading it then if nothing has (see that file for why a second
//! unwinder linked in will not do). The forwarders are hidden, and the cdylib's version
//! script keeps them local: no other object sees them.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/unwind_link.c");
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        panic!("cargo sets OUT_DIR for build scripts");
    };
    cc::Build::new()
        .file("src/unwind_link.c")
        .flag("-fvisibility=hidden")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        // The archive is named by the linker script below, not by cargo's link flags.
        .cargo_metadata(false)
        .compile("flexsc_unwind_link");
    let archive = out.join("libflexsc_unwind_link.a");
    let script = format!("INPUT({})\n", archive.display());
    if let Err(e) = std::fs::write(out.join("libgcc_s.so"), script) {
        panic!("cannot write {}: {e}", out.join("libgcc_s.so").display());
    }
    println!("cargo:rustc-link-search=native={}", out.display());
}
