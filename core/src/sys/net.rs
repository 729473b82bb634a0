//! Listening and connecting sockets, for [`crate::connection`]: Unix stream sockets on a path
//! and TCP sockets, the peer's user id, and the kernel's random bytes.
//!
//! # Contract
//! - Every socket returned is close-on-exec and in *blocking* mode unless the function says
//!   otherwise; listening sockets are non-blocking, so `accept` never waits.
//! - A Unix socket's file is made `0600` right after `bind`, before `listen`, so no other user
//!   can connect even before the peer-credential check.
//! - Nothing here is called unless the program creates a `Listener` or a `Client`: a program
//!   that never does listens on nothing.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO))
}

/// Binds and listens on a Unix socket at `path` (the file must not exist), mode `0600`.
/// Returns the non-blocking listening socket.
pub fn listen_unix(path: &Path, backlog: u32) -> Result<OwnedFd, Errno> {
    let l = UnixListener::bind(path).map_err(io_errno)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_errno)?;
    l.set_nonblocking(true).map_err(io_errno)?;
    let fd: OwnedFd = l.into();
    relisten(fd.as_fd(), backlog)?;
    Ok(fd)
}

/// Binds and listens on a TCP address (`SO_REUSEADDR`, as std sets it). Returns the
/// non-blocking listening socket and the address it got (the port, when `addr` had port 0).
pub fn listen_tcp(addr: SocketAddr, backlog: u32) -> Result<(OwnedFd, SocketAddr), Errno> {
    let l = TcpListener::bind(addr).map_err(io_errno)?;
    let local = l.local_addr().map_err(io_errno)?;
    l.set_nonblocking(true).map_err(io_errno)?;
    let fd: OwnedFd = l.into();
    relisten(fd.as_fd(), backlog)?;
    Ok((fd, local))
}

fn relisten(fd: BorrowedFd<'_>, backlog: u32) -> Result<(), Errno> {
    let backlog =
        nix::sys::socket::Backlog::new(backlog.clamp(1, i32::MAX as u32) as i32).map_err(|_| Errno::EINVAL)?;
    nix::sys::socket::listen(&fd, backlog)
}

/// Accepts one pending connection from a non-blocking listening socket; `Ok(None)` when none
/// is pending. The new socket is blocking and close-on-exec.
pub fn accept(listener: BorrowedFd<'_>) -> Result<Option<OwnedFd>, Errno> {
    use nix::sys::socket::{accept4, SockFlag};
    use std::os::fd::{AsRawFd, FromRawFd};
    loop {
        match accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            // SAFETY: accept4 returned a new descriptor that nothing else owns.
            Ok(raw) => return Ok(Some(unsafe { OwnedFd::from_raw_fd(raw) })),
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Connects to a Unix socket at `path`, retrying while its backlog is full, until `deadline`.
pub fn connect_unix(path: &Path, deadline: Instant) -> Result<OwnedFd, Errno> {
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s.into()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EAGAIN) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(io_errno(e)),
        }
    }
}

/// Connects to a TCP address within `timeout`, with `TCP_NODELAY` set (every message is one
/// write, and the handshake is a few small ones).
pub fn connect_tcp(addr: SocketAddr, timeout: Duration) -> Result<OwnedFd, Errno> {
    let s = TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(1))).map_err(io_errno)?;
    s.set_nodelay(true).map_err(io_errno)?;
    Ok(s.into())
}

/// Sets `TCP_NODELAY` on an accepted TCP socket.
pub fn set_nodelay(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::TcpNoDelay, &true)
}

/// Turns TCP keep-alive on, so that a peer host that vanishes without closing (power loss, a
/// cable pulled, a partition) is noticed: after `idle` without traffic the kernel probes the
/// peer every `idle / 3` (at least 1 s), and gives up after 3 unanswered probes, closing the
/// connection with `ETIMEDOUT`; so a silent dead peer is noticed within about `2 × idle`. On
/// Linux `TCP_USER_TIMEOUT` is set to the same total, so data left unacknowledged (a reply
/// written to a vanished host) is given up on just as soon. Elsewhere only `SO_KEEPALIVE`
/// and, on Apple systems, the idle time are set; the system's probe schedule applies.
pub fn set_keepalive(sock: BorrowedFd<'_>, idle: Duration) -> Result<(), Errno> {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(&sock, sockopt::KeepAlive, &true)?;
    let idle_s = idle.as_secs().clamp(1, i32::MAX as u64 / 8) as u32;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let interval = (idle_s / 3).max(1);
        setsockopt(&sock, sockopt::TcpKeepIdle, &idle_s)?;
        setsockopt(&sock, sockopt::TcpKeepInterval, &interval)?;
        setsockopt(&sock, sockopt::TcpKeepCount, &3)?;
        #[cfg(target_os = "linux")]
        setsockopt(&sock, sockopt::TcpUserTimeout, &((idle_s + 3 * interval) * 1000))?;
    }
    #[cfg(target_vendor = "apple")]
    setsockopt(&sock, sockopt::TcpKeepAlive, &idle_s)?;
    Ok(())
}

/// The user id of the process at the other end of a Unix socket (`SO_PEERCRED` on Linux,
/// `getpeereid` elsewhere); `None` if the socket is not a Unix socket.
pub fn peer_uid(sock: BorrowedFd<'_>) -> Option<u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        nix::sys::socket::getsockopt(&sock, nix::sys::socket::sockopt::PeerCredentials)
            .ok()
            .map(|c| c.uid())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        nix::unistd::getpeereid(sock).ok().map(|(uid, _)| uid.as_raw())
    }
}

/// The address of the peer of a TCP socket, as text.
pub fn peer_name(sock: BorrowedFd<'_>) -> Option<String> {
    let s = TcpStream::from(sock.try_clone_to_owned().ok()?);
    s.peer_addr().ok().map(|a| a.to_string())
}

/// This process's effective user id.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Fills `buf` with random bytes from the kernel (`/dev/urandom`, as Python's `os.urandom`).
pub fn random_bytes(buf: &mut [u8]) -> Result<(), Errno> {
    use std::io::Read;
    let mut f = std::fs::File::open("/dev/urandom").map_err(io_errno)?;
    f.read_exact(buf).map_err(io_errno)
}

/// Creates a fresh directory that only this user can enter (mode `0700`) under the system's
/// temporary directory, with a random name, and returns its path.
pub fn private_temp_dir(prefix: &str) -> Result<PathBuf, Errno> {
    let base = std::env::temp_dir();
    for _ in 0..16 {
        let mut r = [0u8; 8];
        random_bytes(&mut r)?;
        let name: String = r.iter().map(|b| format!("{b:02x}")).collect();
        let dir = base.join(format!("{prefix}{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_errno(e)),
        }
    }
    Err(Errno::EEXIST)
}

/// Removes a socket file and, if it is then empty, the directory that holds it (best effort:
/// used when a `Listener` is dropped).
pub fn remove_socket_file(path: &Path, and_dir: bool) {
    let _ = std::fs::remove_file(path);
    if and_dir {
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
