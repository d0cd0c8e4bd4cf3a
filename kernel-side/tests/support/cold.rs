//! Files whose pages are, or are not, in the page cache: for the tests of calls that would
//! wait for the disk. Shared by kernel-side's and the scheduler's tests (`#[path]`).

use std::io::Write;
use std::os::fd::AsRawFd;

/// A temporary file of `len` bytes of 7 under the target directory, and, when `cold` is
/// asked for, whether none of its pages is in the page cache: written back, dropped with
/// `POSIX_FADV_DONTNEED`, then checked with `mincore` (a read to check would start the
/// kernel's readahead). A file system in memory keeps the pages, and then it says no,
/// and says on stderr that `test` skips its uncached part.
pub fn file_for_reads(test: &str, len: usize, cold: bool) -> (tempfile::NamedTempFile, bool) {
    let mut file = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary file");
    file.write_all(&vec![7u8; len]).expect("written");
    if !cold {
        return (file, false);
    }
    file.as_file().sync_all().expect("written back");
    let fd = file.as_file().as_raw_fd();
    // SAFETY: advice on our own descriptor.
    assert_eq!(
        unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) },
        0
    );
    // SAFETY: a new read-only shared mapping of our own file; nothing else uses it.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
    let mut pages = vec![0u8; len.div_ceil(4096)];
    // SAFETY: `map` is `len` bytes mapped just above; `pages` has a byte per page.
    assert_eq!(unsafe { libc::mincore(map, len, pages.as_mut_ptr()) }, 0);
    // SAFETY: the mapping made above, unused from here on.
    unsafe { libc::munmap(map, len) };
    let uncached = pages.iter().all(|&p| p & 1 == 0);
    if !uncached {
        eprintln!(
            "SKIPPED (in part) {test}: {} keeps a file's pages cached after \
             POSIX_FADV_DONTNEED: no uncached file to test with here",
            env!("CARGO_TARGET_TMPDIR")
        );
    }
    (file, uncached)
}
