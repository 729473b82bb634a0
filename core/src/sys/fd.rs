//! Descriptor creation and flags.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{socketpair as nix_socketpair, AddressFamily, SockFlag, SockType};

use super::Errno;

/// A connected pair of `AF_UNIX` stream sockets, both close-on-exec and blocking.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd), Errno> {
    #[cfg(target_os = "linux")]
    let flags = SockFlag::SOCK_CLOEXEC;
    #[cfg(not(target_os = "linux"))]
    let flags = SockFlag::empty();
    let (a, b) = nix_socketpair(AddressFamily::Unix, SockType::Stream, None, flags)?;
    #[cfg(not(target_os = "linux"))]
    {
        set_cloexec(a.as_fd(), true)?;
        set_cloexec(b.as_fd(), true)?;
    }
    Ok((a, b))
}

/// A pipe, both ends close-on-exec. Returns `(read, write)`.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    #[cfg(target_os = "linux")]
    {
        nix::unistd::pipe2(OFlag::O_CLOEXEC)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (r, w) = nix::unistd::pipe()?;
        set_cloexec(r.as_fd(), true)?;
        set_cloexec(w.as_fd(), true)?;
        Ok((r, w))
    }
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> Result<(), Errno> {
    let bits = fcntl(fd, FcntlArg::F_GETFL)?;
    let mut flags = OFlag::from_bits_truncate(bits);
    flags.set(OFlag::O_NONBLOCK, on);
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Sets or clears `FD_CLOEXEC`.
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> Result<(), Errno> {
    let bits = fcntl(fd, FcntlArg::F_GETFD)?;
    let mut flags = FdFlag::from_bits_truncate(bits);
    flags.set(FdFlag::FD_CLOEXEC, on);
    fcntl(fd, FcntlArg::F_SETFD(flags))?;
    Ok(())
}

/// Duplicates a descriptor; the copy is close-on-exec.
pub fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    fd.try_clone_to_owned()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
}

/// Takes ownership of a descriptor number that this process inherited at start-up.
///
/// Returns `None` if the number is not an open descriptor.
pub fn adopt_inherited(raw: i32) -> Option<OwnedFd> {
    if raw < 0 || fcntl(borrow_raw_checked(raw)?, FcntlArg::F_GETFD).is_err() {
        return None;
    }
    // SAFETY: the descriptor is open (F_GETFD succeeded), it was placed at this number for us
    // by our parent before exec, and nothing else in this process owns it: the bootstrap adopts
    // it exactly once, before any user code runs.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let _ = set_cloexec(fd.as_fd(), true);
    Some(fd)
}

/// What is at the other end of an inherited descriptor number (probed without adopting it, so
/// that a program that was not started by multiproc keeps its descriptor untouched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The number is not an open descriptor.
    NotOpen,
    /// It is open but not a Unix socket.
    NotASocket,
    /// A Unix socket whose other end was created by this process (`pid` where the platform
    /// tells: `SO_PEERCRED` on Linux) of this user.
    Process {
        /// The peer's pid, where known.
        pid: Option<i32>,
        /// The peer's user id.
        uid: u32,
    },
}

/// Probes who is connected to descriptor `raw` (see [`Peer`]).
pub fn inherited_peer(raw: i32) -> Peer {
    let Some(fd) = borrow_raw_checked(raw) else {
        return Peer::NotOpen;
    };
    if fcntl(fd, FcntlArg::F_GETFD).is_err() {
        return Peer::NotOpen;
    }
    match nix::sys::stat::fstat(fd) {
        Ok(st) if (st.st_mode & nix::libc::S_IFMT) == nix::libc::S_IFSOCK => {}
        _ => return Peer::NotASocket,
    }
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        match getsockopt(&fd, PeerCredentials) {
            Ok(c) => Peer::Process {
                pid: Some(c.pid()),
                uid: c.uid(),
            },
            Err(_) => Peer::NotASocket,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        match nix::unistd::getpeereid(fd) {
            Ok((uid, _)) => Peer::Process {
                pid: None,
                uid: uid.as_raw(),
            },
            Err(_) => Peer::NotASocket,
        }
    }
}

fn borrow_raw_checked(raw: i32) -> Option<BorrowedFd<'static>> {
    if raw < 0 {
        return None;
    }
    // SAFETY: only used for an F_GETFD probe immediately after; a closed number makes fcntl
    // fail with EBADF, which is the point of the probe. The borrow does not outlive the probe.
    Some(unsafe { BorrowedFd::borrow_raw(raw) })
}

/// Closes every descriptor numbered `from` or above, except those in `keep`.
///
/// Used once in a freshly exec'd child, before user code, so that it inherits nothing it was not
/// given (Python's spawn does the same).
pub fn close_from(from: i32, keep: &[BorrowedFd<'_>]) {
    let keep: Vec<i32> = keep.iter().map(|f| f.as_raw_fd()).collect();
    let max = open_max();
    let mut start = from;
    let mut ranges = Vec::new();
    let mut sorted = keep.clone();
    sorted.sort_unstable();
    for k in sorted.into_iter().filter(|&k| k >= from) {
        if k > start {
            ranges.push((start, k - 1));
        }
        start = k + 1;
    }
    ranges.push((start, max));
    for (lo, hi) in ranges {
        close_range(lo, hi);
    }
}

fn open_max() -> i32 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::OPEN_MAX) {
        Ok(Some(n)) if n > 0 => n.min(i32::MAX as i64) as i32,
        _ => 1024,
    }
}

#[cfg(target_os = "linux")]
fn close_range(lo: i32, hi: i32) {
    // SAFETY: close_range only closes descriptors; it is called at bootstrap, before any code
    // that could own one of them (Rust objects or other threads) exists in this process.
    let rc = unsafe { nix::libc::syscall(nix::libc::SYS_close_range, lo as u32, hi as u32, 0u32) };
    if rc != 0 {
        close_range_loop(lo, hi.min(65535));
    }
}

#[cfg(not(target_os = "linux"))]
fn close_range(lo: i32, hi: i32) {
    close_range_loop(lo, hi.min(65535));
}

fn close_range_loop(lo: i32, hi: i32) {
    for fd in lo..=hi {
        // SAFETY: as for close_range above: nothing in this process owns these numbers yet.
        unsafe {
            nix::libc::close(fd);
        }
    }
}

/// Shuts a socket down both ways, for every descriptor that refers to it (other processes'
/// copies included): the peer reads end of stream, and local waiters see a hang-up.
pub fn shutdown(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    nix::sys::socket::shutdown(sock.as_raw_fd(), nix::sys::socket::Shutdown::Both)
}

/// Is `fd` a Unix-domain socket (the only kind that carries descriptors)? A TCP socket
/// silently drops `SCM_RIGHTS`, so senders ask first.
pub fn is_unix_socket(fd: BorrowedFd<'_>) -> bool {
    use nix::sys::socket::{getsockname, SockaddrLike, SockaddrStorage};
    getsockname::<SockaddrStorage>(fd.as_raw_fd()).is_ok_and(|a| a.family() == Some(AddressFamily::Unix))
}
