//! What a poster whose thread has other work may run itself instead of posting.
//!
//! Some posters run `Delegate`-class calls on their own thread: an asynchronous poster
//! while the service threads are behind ([`crate::Shared::should_help`]), and an M-on-N
//! user thread (helping, or alone on its kernel thread). Their thread has other work: the
//! executor's other tasks, the kernel thread's other user threads, ready now or soon. A
//! call that waits there holds all of that up, where a posted one would hold up only its
//! own task. So such a poster runs a call only if it will not wait, as far as registers
//! and one try can tell: not for another thread (an open, a close), not for the storage
//! device (`fsync` and kin, populating memory or the page cache from a file), and, while
//! other work is ready ([`Reads::TryFirst`]), not for the disk behind a `pread64` whose
//! data is not in the page cache. Everything else it posts, and a service thread runs it
//! (one made to wait for the device leaves the service thread too, unless it is alone in
//! its pass: parked in the ring or handed to a blocking worker; `flexsc-kernel-side`'s
//! `execute`).
//!
//! What may still wait for the disk on such a thread, because telling would cost more
//! than it saves:
//! - a `pread64` on a file system that cannot say whether it would wait (its try answers
//!   `EOPNOTSUPP`): overlayfs (containers' files) and network or FUSE file systems. Files
//!   in memory (tmpfs, memfd, hugetlbfs), procfs and sysfs answer the same and never wait
//!   for a disk; the call runs there as made;
//! - a `pread64` of a file opened `O_DIRECT`: `RWF_NOWAIT` spares it only the waits for
//!   locks and block allocation, not the read itself (knowing would take an `fcntl` per
//!   call);
//! - a `pwrite64` or `pwritev` into a page that is not cached, or one throttled while the
//!   system has too much dirty data (ext4 has no non-blocking buffered write: `RWF_NOWAIT`
//!   answers `EOPNOTSUPP`); `ftruncate` and `truncate`, which wait for pages under
//!   writeback; metadata calls (`stat`, `getdents64`, ...) whose blocks are not cached;
//! - an M-on-N user thread's `readv` or `recvmsg` of a regular file (tried like a
//!   socket's, then run: a `readv` tried without waiting could stop part-way, with the
//!   file position moved), and the reads of one alone on its kernel thread
//!   ([`Reads::AsMade`]).
//!
//! A try that finds the data uncached is not free: the kernel starts reading ahead before
//! it answers `EAGAIN` (24–35 µs for 4 KiB of a cold file on this guest, against 70–105 µs
//! for the read itself). That is paid only where the read would have waited longer.
//!
//! The try of a `pread64` is a `preadv2`, a call the program did not make. A seccomp
//! filter the program installs stops delegation ([`crate::Shared::isolate`]), and its
//! calls then run as made, never through here. One installed before the program started
//! (inherited from its parent) that kills on `preadv2` and allows `pread64` would end it;
//! one that refuses `preadv2` with an errno only gets the call posted.

use crate::sys::{syscall6, MAX_RW_COUNT};
use crate::table::{may_wait_for_another_thread, waits_for_the_device};

/// Whether a poster tries a read without waiting before it runs it itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Other work is ready on this thread now, and would wait behind a read from the
    /// disk: a `pread64` is tried with `RWF_NOWAIT` first and posted if its data is not
    /// cached; a `preadv` is posted. The try costs a cached 4 KiB read ~95 ns here
    /// (`preadv2` against `pread64`, ~490 ns).
    TryFirst,
    /// Nothing else is ready on this thread (an M-on-N user thread alone on its kernel
    /// thread): reads run as made, and one of data that is not cached waits here, as it
    /// would on a service thread. A try would cost every cached read to spare the
    /// threads that become ready during a read from the disk a wait.
    AsMade,
}

/// Runs `Delegate`-class call `nr` on this thread if it finishes without waiting, and
/// returns its raw result; None when it should be posted instead, with nothing of it
/// done:
/// * an open or a close, which may wait until another thread acts
///   ([`may_wait_for_another_thread`]);
/// * a call made to wait for the storage device ([`waits_for_the_device`]);
/// * with [`Reads::TryFirst`], a `pread64` whose data is not all in the page cache. It is
///   tried with `preadv2(RWF_NOWAIT)`, which answers `EAGAIN` rather than read the disk
///   (`pread_without_waiting`). And a `preadv`: its length is behind a pointer, so a
///   short answer could not be told from a whole one.
///
/// # Safety
/// As for the `syscall` instruction with these arguments.
pub unsafe fn run_unless_it_waits(nr: u64, args: [u64; 6], reads: Reads) -> Option<i64> {
    if may_wait_for_another_thread(nr) || waits_for_the_device(nr, &args) {
        return None;
    }
    match (nr as i64, reads) {
        // SAFETY: forwarded from this function's contract.
        (libc::SYS_pread64, Reads::TryFirst) => unsafe { pread_without_waiting(args) },
        (libc::SYS_preadv, Reads::TryFirst) => None,
        // SAFETY: forwarded.
        _ => Some(unsafe { syscall6(nr, args) }),
    }
}

/// `pread64(fd, buf, count, offset)` from the page cache alone: `preadv2` with
/// `RWF_NOWAIT`, again from where it stopped while it returns part of the rest. Some(n)
/// when it read all `count` bytes, or `n` up to the end of the file (a try that reads 0);
/// None, for the call to be posted, when the data is not cached (`EAGAIN`) or on any
/// error: the posted `pread64` gives the call's own answer, and a positional read changes
/// nothing but the buffer, which the posted call fills again.
///
/// Where the try cannot answer for `pread64`, the call itself runs here instead, when it
/// cannot wait for a disk: a count of 0 (an empty iovec reads 0 where `pread64` of a
/// directory says `EISDIR`), a negative offset (`EINVAL`, or a memory file's address; an
/// offset of -1 means "at the file position" to `preadv2`), and a file system that cannot
/// say whether it would wait (`EOPNOTSUPP`: see the module's docs). A count past
/// [`MAX_RW_COUNT`] is posted untried: `pread64` checks the whole range before it clamps
/// the count, an iovec is clamped first.
///
/// # Safety
/// As for `pread64` with these arguments.
unsafe fn pread_without_waiting(args: [u64; 6]) -> Option<i64> {
    // SAFETY (for the direct runs): the caller's own call, forwarded.
    let as_made = || unsafe { syscall6(libc::SYS_pread64 as u64, args) };
    let [fd, buf, count, offset, ..] = args;
    if count == 0 || (offset as i64) < 0 {
        return Some(as_made());
    }
    if count > MAX_RW_COUNT {
        return None;
    }
    let mut done = 0u64;
    loop {
        let rest = libc::iovec {
            iov_base: buf.wrapping_add(done) as *mut libc::c_void,
            iov_len: (count - done) as usize,
        };
        let try_args = [
            fd,
            &rest as *const libc::iovec as u64,
            1,
            offset + done,
            0,
            libc::RWF_NOWAIT as u64,
        ];
        // SAFETY: `rest` is the part of the caller's buffer `pread64` would fill from
        // `offset + done` (no overflow: offset < 2^63, done < 2^31), valid under this
        // function's contract; the iovec itself lives on this stack for the call. With
        // RWF_NOWAIT the call never waits for the disk.
        let ret = unsafe { syscall6(libc::SYS_preadv2 as u64, try_args) };
        match ret {
            // The end of the file: what pread64 answers too.
            0 => return Some(done as i64),
            EOPNOTSUPP if done == 0 => return Some(as_made()),
            ..=-1 => return None,
            n => {
                done += n as u64;
                if done >= count {
                    return Some(done as i64);
                }
            }
        }
    }
}

/// The raw answer of a try on a file that cannot read without waiting.
const EOPNOTSUPP: i64 = -(libc::EOPNOTSUPP as i64);

/// Files for the tests of posters that help: one whose pages are cached, and one whose
/// pages are not.
#[cfg(test)]
pub(crate) mod test_files {
    use std::fs::File;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::path::PathBuf;

    /// A file of `len` bytes, byte `i` being `i % 251`, removed when dropped.
    pub(crate) struct TestFile {
        pub(crate) file: File,
        path: PathBuf,
    }

    impl Drop for TestFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// The byte at `offset` of a [`TestFile`].
    pub(crate) fn byte_at(offset: usize) -> u8 {
        (offset % 251) as u8
    }

    /// A [`TestFile`] whose pages are in the page cache (just written).
    pub(crate) fn cached(name: &str, len: usize) -> TestFile {
        let path = std::env::temp_dir().join(format!("flexsc-help-{name}-{}", std::process::id()));
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("a file in the temporary directory");
        let bytes: Vec<u8> = (0..len).map(byte_at).collect();
        file.write_all(&bytes).expect("written");
        TestFile { file, path }
    }

    /// Which of the file's 4 KiB pages are in the page cache (`mincore` of a mapping,
    /// which reads nothing: a read to find out would start the kernel's readahead).
    pub(crate) fn cached_pages(file: &File) -> Vec<bool> {
        let len = file.metadata().expect("metadata").len() as usize;
        if len == 0 {
            return Vec::new();
        }
        // SAFETY: a new read-only shared mapping of our own file; nothing else uses it.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        let mut pages = vec![0u8; len.div_ceil(4096)];
        // SAFETY: `map` is `len` bytes mapped just above; `pages` has a byte per page.
        let r = unsafe { libc::mincore(map, len, pages.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
        // SAFETY: the mapping made above, unused from here on.
        unsafe { libc::munmap(map, len) };
        pages.iter().map(|&p| p & 1 != 0).collect()
    }

    /// A [`TestFile`] none of whose pages are in the page cache, or None (and why, on
    /// stderr, for the test `name`) where the page cache keeps them (a file system in memory, tmpfs, never
    /// waits for a disk).
    pub(crate) fn uncached(name: &str, len: usize) -> Option<TestFile> {
        let t = cached(name, len);
        t.file.sync_all().expect("written back");
        // SAFETY: advice on our own descriptor; it touches no memory of ours.
        let advised = unsafe { libc::posix_fadvise(t.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(advised, 0, "posix_fadvise");
        if !cached_pages(&t.file).contains(&true) {
            return Some(t);
        }
        eprintln!(
            "SKIPPED (in part) {name}: a file in {} keeps its pages cached after \
             POSIX_FADV_DONTNEED: no uncached file to test with here",
            std::env::temp_dir().display()
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::{byte_at, cached, cached_pages, uncached};
    use super::*;
    use std::os::fd::AsRawFd;

    /// `pread64` through [`run_unless_it_waits`], into `buf`.
    fn pread(fd: i32, buf: &mut [u8], offset: i64) -> Option<i64> {
        let args = [
            fd as u64,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            offset as u64,
            0,
            0,
        ];
        // SAFETY: a read into `buf`, which outlives the call.
        unsafe { run_unless_it_waits(libc::SYS_pread64 as u64, args, Reads::TryFirst) }
    }

    #[test]
    fn a_cached_pread_runs_here_in_full() {
        let t = cached("whole", 3 * 4096);
        let mut buf = vec![0u8; 8192];
        assert_eq!(pread(t.file.as_raw_fd(), &mut buf, 100), Some(8192));
        assert!(buf.iter().enumerate().all(|(i, &b)| b == byte_at(100 + i)));
        // Up to the end of the file, as pread64 answers: the try after it reads 0.
        assert_eq!(pread(t.file.as_raw_fd(), &mut buf, 3 * 4096 - 10), Some(10));
        assert_eq!(pread(t.file.as_raw_fd(), &mut buf, 3 * 4096 + 10), Some(0));
        assert_eq!(pread(t.file.as_raw_fd(), &mut buf[..0], 0), Some(0));
    }

    #[test]
    fn a_pread_that_would_read_the_disk_is_posted() {
        let Some(t) = uncached("a_pread_that_would_read_the_disk_is_posted", 64 * 1024) else {
            return;
        };
        let mut buf = vec![7u8; 4096];
        assert_eq!(pread(t.file.as_raw_fd(), &mut buf, 8192), None);
        // Once the data is cached, the same call runs here.
        let mut direct = vec![0u8; 4096];
        // SAFETY: a read into `direct`, which outlives the call.
        let n = unsafe { libc::pread(t.file.as_raw_fd(), direct.as_mut_ptr().cast(), 4096, 8192) };
        assert_eq!(n, 4096);
        assert_eq!(pread(t.file.as_raw_fd(), &mut buf, 8192), Some(4096));
        assert_eq!(buf, direct);
    }

    #[test]
    fn a_pread_that_would_read_the_disk_part_way_is_posted_whole() {
        let Some(t) = uncached(
            "a_pread_that_would_read_the_disk_part_way_is_posted_whole",
            64 * 1024,
        ) else {
            return;
        };
        let fd = t.file.as_raw_fd();
        // Without readahead, reading the first page caches it alone.
        // SAFETY: advice on our own descriptor.
        assert_eq!(
            unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_RANDOM) },
            0
        );
        let mut page = vec![0u8; 4096];
        // SAFETY: a read into `page`, which outlives the call.
        assert_eq!(
            unsafe { libc::pread(fd, page.as_mut_ptr().cast(), 4096, 0) },
            4096
        );
        if cached_pages(&t.file)[..2] != [true, false] {
            eprintln!("SKIPPED a_pread_that_would_read_the_disk_part_way_is_posted_whole: the kernel read ahead past the first page despite POSIX_FADV_RANDOM");
            return;
        }
        let mut buf = vec![0u8; 8192];
        assert_eq!(
            pread(fd, &mut buf, 0),
            None,
            "half cached: posted whole, not answered short"
        );
    }

    #[test]
    fn preads_the_try_cannot_answer_for_run_as_made_or_are_posted() {
        let t = cached("odd", 4096);
        let fd = t.file.as_raw_fd();
        let mut buf = vec![0u8; 16];
        let e = |errno: i32| Some(-(errno as i64));
        // A negative offset: pread64's EINVAL (preadv2 would read -1 as "at the file
        // position").
        assert_eq!(pread(fd, &mut buf, -1), e(libc::EINVAL));
        assert_eq!(pread(fd, &mut buf, -5), e(libc::EINVAL));
        // A directory: EISDIR, with a count of 0 too (an empty iovec would read 0).
        let dir = std::fs::File::open(std::env::temp_dir()).expect("the temporary directory");
        assert_eq!(pread(dir.as_raw_fd(), &mut buf, 0), e(libc::EISDIR));
        assert_eq!(pread(dir.as_raw_fd(), &mut buf[..0], 0), e(libc::EISDIR));
        // A file in memory cannot say whether it would wait (EOPNOTSUPP to the try), and
        // never waits for a disk: read as made.
        // SAFETY: a name string; no other pointer.
        let memfd = unsafe { libc::memfd_create(c"flexsc-help".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(memfd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        // SAFETY: writes 8 bytes from a static string.
        assert_eq!(
            unsafe { libc::pwrite(memfd, c"memfd...".as_ptr().cast(), 8, 0) },
            8
        );
        assert_eq!(pread(memfd, &mut buf, 2), Some(6));
        assert_eq!(&buf[..6], b"mfd...");
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(memfd) };
        // Errors of the try: posted, for the posted pread64's own answer.
        assert_eq!(pread(-1, &mut buf, 0), None);
        // Counts past MAX_RW_COUNT: pread64 checks the whole range first (EFAULT here);
        // an iovec is clamped first. Posted untried.
        for count in [MAX_RW_COUNT + 1, u64::MAX / 2, u64::MAX] {
            let args = [fd as u64, buf.as_mut_ptr() as u64, count, 0, 0, 0];
            // SAFETY: posted, never run here.
            assert_eq!(
                unsafe { run_unless_it_waits(libc::SYS_pread64 as u64, args, Reads::TryFirst) },
                None
            );
        }
    }

    #[test]
    fn calls_that_wait_for_the_device_or_another_thread_are_posted_and_others_run() {
        let t = cached("sync", 16);
        let fd = t.file.as_raw_fd() as u64;
        let nowhere = 4096; // no mapping there: a call that ran would answer ENOMEM
        let posted = [
            (libc::SYS_fsync, [fd, 0, 0, 0, 0, 0]),
            (libc::SYS_fdatasync, [fd, 0, 0, 0, 0, 0]),
            (libc::SYS_syncfs, [fd, 0, 0, 0, 0, 0]),
            (libc::SYS_sync_file_range, [fd, 0, 0, 7, 0, 0]),
            (libc::SYS_sync_file_range, [fd, 0, 0, 4, 0, 0]), // WAIT_AFTER
            (libc::SYS_msync, [nowhere, 4096, libc::MS_SYNC as u64, 0, 0, 0]),
            (libc::SYS_close, [fd, 0, 0, 0, 0, 0]),
            (libc::SYS_openat, [libc::AT_FDCWD as u64, 0, 0, 0, 0, 0]),
            (libc::SYS_copy_file_range, [fd, 0, fd, 0, 1 << 20, 0]),
            (libc::SYS_madvise, [nowhere, 4096, 22, 0, 0, 0]), // MADV_POPULATE_READ
            (libc::SYS_madvise, [nowhere, 4096, 23, 0, 0, 0]), // MADV_POPULATE_WRITE
            (libc::SYS_mlock, [nowhere, 4096, 0, 0, 0, 0]),
            (libc::SYS_mlock2, [nowhere, 4096, 0, 0, 0, 0]),
            (libc::SYS_mlockall, [libc::MCL_CURRENT as u64, 0, 0, 0, 0, 0]),
            (
                libc::SYS_mmap,
                [0, 4096, 1, (libc::MAP_SHARED | libc::MAP_POPULATE) as u64, fd, 0],
            ),
            // Its length is behind a pointer.
            (libc::SYS_preadv, [fd, 4096, 1, 0, 0, 0]),
        ];
        for (nr, args) in posted {
            // SAFETY: posted, never run here.
            let ran = unsafe { run_unless_it_waits(nr as u64, args, Reads::TryFirst) };
            assert_eq!(ran, None, "nr {nr} {args:?}");
        }
        // The cheap forms run here: they start I/O at most, or wait for nothing.
        let enomem = Some(-(libc::ENOMEM as i64));
        let ran_here = [
            (
                libc::SYS_getppid,
                [0; 6],
                Some(std::os::unix::process::parent_id() as i64),
            ),
            (
                libc::SYS_msync,
                [nowhere, 4096, libc::MS_ASYNC as u64, 0, 0, 0],
                enomem,
            ),
            (libc::SYS_sync_file_range, [fd, 0, 0, 2, 0, 0], Some(0)), // WRITE only
            (
                libc::SYS_mlock2,
                [nowhere, 4096, libc::MLOCK_ONFAULT as u64, 0, 0, 0],
                enomem,
            ),
            (
                libc::SYS_madvise,
                [nowhere, 4096, libc::MADV_WILLNEED as u64, 0, 0, 0],
                enomem,
            ),
            (libc::SYS_readahead, [fd, 0, 1 << 20, 0, 0, 0], Some(0)),
            (
                libc::SYS_fadvise64,
                [fd, 0, 0, libc::POSIX_FADV_WILLNEED as u64, 0, 0],
                Some(0),
            ),
            (libc::SYS_fallocate, [fd, 0, 0, 1 << 16, 0, 0], Some(0)),
        ];
        for (nr, args, want) in ran_here {
            // SAFETY: harmless forms: our own file, or addresses where nothing is mapped.
            let ran = unsafe { run_unless_it_waits(nr as u64, args, Reads::TryFirst) };
            assert_eq!(ran, want, "nr {nr} {args:?}");
        }
        // A mapping that populates no file's pages runs here.
        let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE) as u64;
        // SAFETY: a new anonymous mapping, unmapped below.
        let map = unsafe {
            run_unless_it_waits(
                libc::SYS_mmap as u64,
                [0, 4096, 3, anon, u64::MAX, 0],
                Reads::TryFirst,
            )
        };
        let Some(addr) = map.filter(|&a| a > 0) else {
            panic!("an anonymous mmap runs here: {map:?}");
        };
        // SAFETY: the mapping made above.
        assert_eq!(unsafe { libc::munmap(addr as *mut libc::c_void, 4096) }, 0);
    }
}
