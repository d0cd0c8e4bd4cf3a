//! The `flexsc` command's pieces.

pub mod bench;
pub mod bench_async;
pub mod help;
pub mod run;
pub mod summary;
