//! The `flexsc` command's pieces.

pub mod bench;
pub mod run;
pub mod summary;
