//! The `flexsc` command's pieces.

pub mod run;
pub mod summary;
