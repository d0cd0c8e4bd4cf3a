//! A file to read, for the tests of where reads and device waits run. Shared by
//! kernel-side's and the scheduler's tests (`#[path]`).

use std::io::Write;

/// A temporary file of `len` bytes of 7 under the target directory (its pages cached:
/// just written).
pub fn file_of_sevens(len: usize) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary file");
    file.write_all(&vec![7u8; len]).expect("written");
    file
}
