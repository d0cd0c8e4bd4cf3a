//! Files, asynchronously: every operation is one system call posted to the syscall pages.
//!
//! Buffers are owned: [`File::read_at`] takes a `Vec<u8>`, fills it from index 0 up to
//! its capacity, sets its length to the bytes read and gives it back with the result (as
//! io_uring runtimes do), so a dropped future never leaves the kernel writing into freed
//! memory.
//!
//! ```no_run
//! # flexsc::block_on(async {
//! let file = flexsc::fs::File::open("/etc/hostname").await?;
//! let (n, buf) = file.read_at(Vec::with_capacity(4096), 0).await;
//! println!("{} bytes: {:?}", n?, String::from_utf8_lossy(&buf));
//! # Ok::<(), std::io::Error>(()) });
//! ```

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::op::Op;
use super::{check, close_returned_fd, raw, read_into, write_all, write_from};

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// How to open a file, as [`std::fs::OpenOptions`]: `O_CLOEXEC` always.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// Nothing set; mode 0o666 (before the umask).
    pub fn new() -> Self {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
        }
    }
    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.read = on;
        self
    }
    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.write = on;
        self
    }
    /// Every write goes to the end (implies write).
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.append = on;
        self
    }
    /// Truncate to length 0.
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.truncate = on;
        self
    }
    /// Create if missing.
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.create = on;
        self
    }
    /// Create, failing if it exists.
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.create_new = on;
        self
    }
    /// Permission bits of a created file (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    fn flags(&self) -> io::Result<i32> {
        let access = match (self.read, self.write || self.append) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "OpenOptions: set read, write or append",
                ))
            }
        };
        let mut flags = access | libc::O_CLOEXEC;
        if self.append {
            flags |= libc::O_APPEND;
        }
        if self.truncate {
            flags |= libc::O_TRUNC;
        }
        if self.create_new {
            flags |= libc::O_CREAT | libc::O_EXCL;
        } else if self.create {
            flags |= libc::O_CREAT;
        }
        Ok(flags)
    }

    /// Opens `path` (`openat`, posted).
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let flags = self.flags()?;
        let path = cstring(path.as_ref())?;
        let args = [
            libc::AT_FDCWD as u64,
            path.as_ptr() as u64,
            flags as u64,
            self.mode as u64,
            0,
            0,
        ];
        // SAFETY: the path pointer points into `path`'s heap block, owned by the op.
        let op = unsafe { Op::new(libc::SYS_openat, args, path) }.on_abandon(close_returned_fd);
        let (ret, _path) = op.await;
        let fd = check(ret)? as RawFd;
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(File::from_owned(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

/// An open file. Operations take `&self` and may run at the same time; each keeps the
/// descriptor open until its call completes, even if its future is dropped.
#[derive(Clone, Debug)]
pub struct File {
    fd: Arc<OwnedFd>,
}

impl File {
    fn from_owned(fd: OwnedFd) -> File {
        File { fd: Arc::new(fd) }
    }

    /// Opens `path` read-only.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` write-only, creating it or truncating it.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Reads at offset `pos` into `buf`, from index 0 up to its capacity; on success the
    /// buffer's length is the bytes read (`pread64`, posted). The buffer comes back either way.
    pub async fn read_at(&self, buf: Vec<u8>, pos: u64) -> (io::Result<usize>, Vec<u8>) {
        let fd = raw(&self.fd);
        // SAFETY: pread64 writes at most `len` bytes at `ptr` and returns the count.
        unsafe {
            read_into(&self.fd, libc::SYS_pread64, buf, |ptr, len| {
                [fd, ptr, len, pos, 0, 0]
            })
        }
        .await
    }

    /// Writes `buf` at offset `pos` (`pwrite64`, posted); returns the bytes written, which
    /// may be fewer than `buf.len()`, and the buffer.
    pub async fn write_at(&self, buf: Vec<u8>, pos: u64) -> (io::Result<usize>, Vec<u8>) {
        self.write_from(buf, 0, pos).await
    }

    /// Writes `buf[start..]` at offset `pos`.
    async fn write_from(&self, buf: Vec<u8>, start: usize, pos: u64) -> (io::Result<usize>, Vec<u8>) {
        let fd = raw(&self.fd);
        // SAFETY: pwrite64 only reads the buffer.
        unsafe {
            write_from(&self.fd, libc::SYS_pwrite64, buf, start, |ptr, len| {
                [fd, ptr, len, pos, 0, 0]
            })
        }
        .await
    }

    /// Writes all of `buf` at offset `pos`, in as many calls as it takes.
    pub async fn write_all_at(&self, buf: Vec<u8>, pos: u64) -> (io::Result<()>, Vec<u8>) {
        write_all(buf, |buf, done| self.write_from(buf, done, pos + done as u64)).await
    }

    /// Reads the whole file from offset 0, sized by its metadata first.
    pub async fn read_to_end(&self) -> io::Result<Vec<u8>> {
        let hint = self.metadata().await.map(|m| m.len()).unwrap_or(0);
        let mut out = Vec::with_capacity(hint as usize);
        let mut chunk = Vec::with_capacity((hint as usize).clamp(4096, 1 << 20) + 1);
        loop {
            let (res, buf) = self.read_at(chunk, out.len() as u64).await;
            match res {
                Ok(0) => return Ok(out),
                Ok(_) => {
                    out.extend_from_slice(&buf);
                    chunk = buf;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => chunk = buf,
                Err(e) => return Err(e),
            }
        }
    }

    /// The file's metadata (`statx` with `AT_EMPTY_PATH`, posted).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        statx(
            Some(Arc::clone(&self.fd)),
            CString::default(),
            libc::AT_EMPTY_PATH,
        )
        .await
    }

    /// Flushes data and metadata to the device (`fsync`, posted).
    pub async fn sync_all(&self) -> io::Result<()> {
        self.sync(libc::SYS_fsync).await
    }

    /// Flushes data (and the metadata needed to read it) to the device (`fdatasync`).
    pub async fn sync_data(&self) -> io::Result<()> {
        self.sync(libc::SYS_fdatasync).await
    }

    async fn sync(&self, nr: i64) -> io::Result<()> {
        let args = [raw(&self.fd), 0, 0, 0, 0, 0];
        // SAFETY: no pointers; the op holds the descriptor open.
        let (ret, _fd) = unsafe { Op::new(nr, args, Arc::clone(&self.fd)) }.await;
        check(ret).map(drop)
    }

    /// Closes the file (`close`, posted) and reports its error, as `close(2)` would. If
    /// another handle to it, or a dropped operation still in flight, keeps it open, it
    /// closes when the last of them goes, and this returns `Ok`.
    pub async fn close(self) -> io::Result<()> {
        let Ok(fd) = Arc::try_unwrap(self.fd) else {
            return Ok(());
        };
        let fd = fd.into_raw_fd();
        // SAFETY: no pointers; the descriptor is ours and nothing else refers to it.
        let (ret, ()) = unsafe { Op::new(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0], ()) }.await;
        check(ret).map(drop)
    }

    /// Wraps an open `std::fs::File`.
    pub fn from_std(file: std::fs::File) -> File {
        File::from_owned(file.into())
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Reads a whole file.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    File::open(path).await?.read_to_end().await
}

/// Writes `contents` to `path`, creating or truncating it.
pub async fn write(path: impl AsRef<Path>, contents: Vec<u8>) -> io::Result<()> {
    let file = File::create(path).await?;
    file.write_all_at(contents, 0).await.0?;
    file.close().await
}

/// The metadata of `path`, following symbolic links (`statx`, posted).
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx(None, cstring(path.as_ref())?, 0).await
}

/// The metadata of `path` itself, not following a final symbolic link.
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx(None, cstring(path.as_ref())?, libc::AT_SYMLINK_NOFOLLOW).await
}

async fn statx(fd: Option<Arc<OwnedFd>>, path: CString, flags: i32) -> io::Result<Metadata> {
    let dirfd = fd.as_ref().map_or(libc::AT_FDCWD as u64, |fd| raw(fd));
    // SAFETY: all-zero bytes are a valid statx (plain integers).
    let mut out: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
    let args = [
        dirfd,
        path.as_ptr() as u64,
        flags as u64,
        libc::STATX_BASIC_STATS as u64,
        &mut *out as *mut libc::statx as u64,
        0,
    ];
    // SAFETY: the path and the result struct are heap blocks owned by the op, which also
    // holds the descriptor open.
    let (ret, (out, _path, _fd)) = unsafe { Op::new(libc::SYS_statx, args, (out, path, fd)) }.await;
    check(ret)?;
    Ok(Metadata { stx: *out })
}

/// A file's metadata, from `statx`.
#[derive(Clone, Copy)]
pub struct Metadata {
    stx: libc::statx,
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata")
            .field("len", &self.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .field("ino", &self.ino())
            .finish()
    }
}

impl Metadata {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.stx.stx_size
    }
    /// Whether the size is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// File type and permission bits (`st_mode`).
    pub fn mode(&self) -> u32 {
        self.stx.stx_mode as u32
    }
    fn file_type(&self) -> u32 {
        self.mode() & libc::S_IFMT
    }
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    /// A symbolic link (only from [`symlink_metadata`]).
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.stx.stx_ino
    }
    /// Hard links.
    pub fn nlink(&self) -> u32 {
        self.stx.stx_nlink
    }
    /// Owner.
    pub fn uid(&self) -> u32 {
        self.stx.stx_uid
    }
    /// Group.
    pub fn gid(&self) -> u32 {
        self.stx.stx_gid
    }
    /// Last modification.
    pub fn modified(&self) -> SystemTime {
        let t = self.stx.stx_mtime;
        let since = Duration::new(t.tv_sec.unsigned_abs(), t.tv_nsec);
        if t.tv_sec >= 0 {
            SystemTime::UNIX_EPOCH + since
        } else {
            SystemTime::UNIX_EPOCH - since
        }
    }
}
