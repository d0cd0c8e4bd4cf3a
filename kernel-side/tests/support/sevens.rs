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

/// [`file_of_sevens`], with none of its first pages in the page cache: written back and
/// dropped with `POSIX_FADV_DONTNEED`. Checked by a read of the last page that must not
/// wait (`RWF_NOWAIT`): it must answer `EAGAIN`; the readahead it starts only reads on from
/// there. None, saying why on stderr for `test`, where the page cache keeps the pages (a
/// file system in memory, which never waits for a disk).
pub fn uncached_file_of_sevens(test: &str, len: usize) -> Option<tempfile::NamedTempFile> {
    use std::os::fd::AsRawFd;
    let file = file_of_sevens(len);
    file.as_file().sync_all().expect("written back");
    let fd = file.as_file().as_raw_fd();
    // SAFETY: advice on our own descriptor.
    assert_eq!(
        unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) },
        0
    );
    let mut byte = 0u8;
    let one = libc::iovec {
        iov_base: (&raw mut byte).cast(),
        iov_len: 1,
    };
    // SAFETY: a one-byte read into `byte`, described by `one`; both outlive the call.
    let r = unsafe { libc::preadv2(fd, &one, 1, len as i64 - 1, libc::RWF_NOWAIT) };
    if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
        return Some(file);
    }
    eprintln!(
        "SKIPPED {test}: {} keeps a file's pages cached after POSIX_FADV_DONTNEED: no \
         uncached file to read here",
        env!("CARGO_TARGET_TMPDIR")
    );
    None
}
