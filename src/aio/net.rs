//! TCP, asynchronously: accept, connect, read and write are system calls posted to the
//! syscall pages. Buffers are owned, as in [`crate::fs`].
//!
//! A call that would wait (no connection yet, no data yet) waits in the service thread's
//! io_uring with the default backend, so a connection waiting for data holds no thread;
//! see [`crate::aio`] for when a blocking worker runs it instead.

use std::io;
use std::mem::size_of;
use std::net::{Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::op::Op;
use super::{check, close_returned_fd, raw, read_into, write_all, write_from};

/// A listening TCP socket.
#[derive(Debug)]
pub struct TcpListener {
    fd: Arc<OwnedFd>,
}

impl TcpListener {
    /// Binds and listens (synchronously: these calls never wait).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::from_std(std::net::TcpListener::bind(addr)?)
    }

    /// Wraps a listening `std` socket.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            fd: Arc::new(OwnedFd::from(listener)),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockname(self.fd.as_raw_fd(), libc::getsockname)
    }

    /// Waits for a connection (`accept4` with `SOCK_CLOEXEC`, posted). If the future is
    /// dropped while it waits, a connection it accepts later is closed.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        // SAFETY: all-zero bytes are a valid sockaddr_storage.
        let mut addr: Box<libc::sockaddr_storage> = Box::new(unsafe { std::mem::zeroed() });
        let mut len: Box<libc::socklen_t> = Box::new(size_of::<libc::sockaddr_storage>() as libc::socklen_t);
        let args = [
            raw(&self.fd),
            &mut *addr as *mut libc::sockaddr_storage as u64,
            &mut *len as *mut libc::socklen_t as u64,
            libc::SOCK_CLOEXEC as u64,
            0,
            0,
        ];
        // SAFETY: the address and its length are heap blocks owned by the op, which also
        // holds the listening descriptor open.
        let op = unsafe { Op::new(libc::SYS_accept4, args, (addr, len, Arc::clone(&self.fd))) }
            .on_abandon(close_returned_fd);
        let (ret, (addr, len, _fd)) = op.await;
        let fd = check(ret)? as RawFd;
        // SAFETY: accept4 returned a new descriptor that nothing else owns.
        let stream = TcpStream::from_owned(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok((stream, to_socket_addr(&addr, *len)?))
    }
}

/// A connected TCP socket. Operations take `&self`; each keeps the descriptor open until
/// its call completes, even if its future is dropped.
#[derive(Clone, Debug)]
pub struct TcpStream {
    fd: Arc<OwnedFd>,
}

impl TcpStream {
    fn from_owned(fd: OwnedFd) -> TcpStream {
        TcpStream { fd: Arc::new(fd) }
    }

    /// Wraps a connected `std` socket.
    pub fn from_std(stream: std::net::TcpStream) -> TcpStream {
        TcpStream::from_owned(stream.into())
    }

    /// Connects to `addr` (`socket` here, then `connect`, posted).
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: socket returned a new descriptor that nothing else owns.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let (storage, len) = from_socket_addr(&addr);
        let args = [
            raw(&fd),
            &*storage as *const libc::sockaddr_storage as u64,
            len as u64,
            0,
            0,
            0,
        ];
        // SAFETY: the address is a heap block owned by the op, which holds the socket open.
        let (ret, (_storage, fd)) = unsafe { Op::new(libc::SYS_connect, args, (storage, fd)) }.await;
        check(ret)?;
        Ok(TcpStream { fd })
    }

    /// Reads into `buf`, from index 0 up to its capacity; on success its length is the
    /// bytes read, 0 at end of stream (`recvfrom`, posted).
    pub async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let fd = raw(&self.fd);
        // SAFETY: recvfrom (no address) writes at most `len` bytes at `ptr` and returns
        // the count.
        unsafe {
            read_into(&self.fd, libc::SYS_recvfrom, buf, |ptr, len| {
                [fd, ptr, len, 0, 0, 0]
            })
        }
        .await
    }

    /// Writes `buf` (`sendto` with `MSG_NOSIGNAL`, posted); returns the bytes written, which
    /// may be fewer than `buf.len()`.
    pub async fn write(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        self.write_from(buf, 0).await
    }

    async fn write_from(&self, buf: Vec<u8>, start: usize) -> (io::Result<usize>, Vec<u8>) {
        let fd = raw(&self.fd);
        let flags = libc::MSG_NOSIGNAL as u64;
        // SAFETY: sendto (no address) only reads the buffer.
        unsafe {
            write_from(&self.fd, libc::SYS_sendto, buf, start, |ptr, len| {
                [fd, ptr, len, flags, 0, 0]
            })
        }
        .await
    }

    /// Writes all of `buf`, in as many calls as it takes.
    pub async fn write_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        write_all(buf, |buf, done| self.write_from(buf, done)).await
    }

    /// Shuts down reading, writing or both (synchronously: it never waits).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        // SAFETY: plain shutdown(2) on our descriptor.
        if unsafe { libc::shutdown(self.fd.as_raw_fd(), how) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sockname(self.fd.as_raw_fd(), libc::getpeername)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockname(self.fd.as_raw_fd(), libc::getsockname)
    }
}

type SockName = unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32;

fn sockname(fd: RawFd, f: SockName) -> io::Result<SocketAddr> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the pointers describe the local storage and its length.
    if unsafe { f(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    to_socket_addr(&addr, len)
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn to_socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> io::Result<SocketAddr> {
    let len = len as usize;
    match storage.ss_family as i32 {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is long enough.
            let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an IP socket address",
        )),
    }
}

fn from_socket_addr(addr: &SocketAddr) -> (Box<libc::sockaddr_storage>, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: Box<libc::sockaddr_storage> = Box::new(unsafe { std::mem::zeroed() });
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin = unsafe { &mut *(&mut *storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&mut *storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}
