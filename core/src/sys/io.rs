//! Socket I/O with descriptor passing (`SCM_RIGHTS`), and readiness polling.

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};

use super::Errno;

/// The most descriptors one message may carry. Senders refuse more before anything is written
/// (see `ClientConn::send`); a receiver that gets more sees the message's descriptors as
/// truncated (`MSG_CTRUNC`: the kernel closed the surplus).
pub const MAX_FDS_PER_MSG: usize = 64;

#[cfg(target_os = "linux")]
const SEND_FLAGS: MsgFlags = MsgFlags::MSG_NOSIGNAL;
#[cfg(not(target_os = "linux"))]
const SEND_FLAGS: MsgFlags = MsgFlags::empty();

#[cfg(target_os = "linux")]
const RECV_FLAGS: MsgFlags = MsgFlags::MSG_CMSG_CLOEXEC;
#[cfg(not(target_os = "linux"))]
const RECV_FLAGS: MsgFlags = MsgFlags::empty();

/// Sends as much of `bufs` as the socket takes in one call, with `fds` attached to the first
/// byte. Returns the number of bytes sent. `EAGAIN` on a non-blocking socket is returned as is.
pub fn send_vectored(sock: BorrowedFd<'_>, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> Result<usize, Errno> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsg };
    loop {
        match sendmsg::<UnixAddr>(sock.as_raw_fd(), bufs, cmsgs, SEND_FLAGS, None) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Writes all of `data` to a blocking socket, with `fds` attached to its first byte.
pub fn send_all(sock: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
    let mut sent = send_vectored(sock, &[IoSlice::new(data)], fds)?;
    while sent < data.len() {
        sent += send_vectored(sock, &[IoSlice::new(&data[sent..])], &[])?;
    }
    Ok(())
}

/// Sends one doorbell byte (its value means nothing) without ever blocking: a full socket
/// already holds unread bytes, which wake the reader as well, so `EAGAIN` is ignored, and so
/// is every other error (a closed peer is seen by its reader as end of file).
pub fn ring_doorbell(sock: BorrowedFd<'_>) {
    loop {
        match nix::sys::socket::send(sock.as_raw_fd(), &[1u8], SEND_FLAGS | MsgFlags::MSG_DONTWAIT) {
            Err(Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// [`ring_doorbell`], reporting a peer that is gone: `EPIPE`/`ECONNRESET` (and any other error
/// but `EAGAIN`, which means unread bytes already wake the reader) are returned.
pub fn ring_doorbell_checked(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    loop {
        match nix::sys::socket::send(sock.as_raw_fd(), &[1u8], SEND_FLAGS | MsgFlags::MSG_DONTWAIT) {
            Err(Errno::EINTR) => continue,
            Ok(_) | Err(Errno::EAGAIN) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// What one [`recv_msg`] got.
#[derive(Debug)]
pub struct Received {
    /// Bytes read into the buffer (0 at end of stream).
    pub bytes: usize,
    /// The descriptors that came with them (at most one sender's batch: the kernel does not
    /// merge two messages that carry descriptors into one read).
    pub fds: Vec<OwnedFd>,
    /// The kernel dropped descriptors of this batch (`MSG_CTRUNC`): either this process has
    /// no free descriptor slots (`EMFILE`) or the sender attached more than
    /// [`MAX_FDS_PER_MSG`]. `fds` holds the ones that did arrive.
    pub truncated: bool,
}

/// Reads what is available into `buf` (at most its length), with the descriptors that came
/// with it. `EAGAIN` on a non-blocking socket is returned as is; `EINTR` is retried.
///
/// Contract: a truncated control message is *reported*, never turned into an error, so that a
/// caller can fail the one request whose descriptors were lost and keep the stream.
pub fn recv_msg(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Received, Errno> {
    recv_msg_with(sock, buf, false)
}

/// [`recv_msg`]; with `dont_wait`, an empty socket gives `EAGAIN` instead of blocking (as
/// [`recv_into`]), and a blocking read with a receive timeout set gives `EAGAIN` when it passes.
pub fn recv_msg_with(sock: BorrowedFd<'_>, buf: &mut [u8], dont_wait: bool) -> Result<Received, Errno> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS_PER_MSG]);
    let flags = if dont_wait {
        RECV_FLAGS | MsgFlags::MSG_DONTWAIT
    } else {
        RECV_FLAGS
    };
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<UnixAddr>(sock.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(m) => m,
        };
        let mut out = Received {
            bytes: msg.bytes,
            fds: Vec::new(),
            truncated: msg.flags.contains(MsgFlags::MSG_CTRUNC),
        };
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(list) = c {
                    for raw in list {
                        // SAFETY: the kernel just installed this descriptor in our table for this
                        // message (SCM_RIGHTS); nothing else refers to it, so we own it.
                        out.fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                    }
                }
            }
        }
        return Ok(out);
    }
}

/// Reads what is available into `buf` (at most its length), queueing any received descriptors
/// onto `fds`. Returns 0 at end of stream. `EAGAIN` on a non-blocking socket is returned as is.
/// A truncated control message (descriptors dropped by the kernel) is `EMSGSIZE`: the stream's
/// descriptor accounting can no longer be trusted.
pub fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8], fds: &mut VecDeque<OwnedFd>) -> Result<usize, Errno> {
    let got = recv_msg(sock, buf)?;
    fds.extend(got.fds);
    if got.truncated {
        return Err(Errno::EMSGSIZE);
    }
    Ok(got.bytes)
}

/// Writes `msg` to standard error in one `write`, ignoring every error (a closed pipe, a full
/// disk). For diagnostics of code that must never fail or panic because of them (the hub).
pub fn write_stderr(msg: &str) {
    let mut bytes = msg.as_bytes();
    while !bytes.is_empty() {
        match nix::unistd::write(std::io::stderr(), bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

/// What [`wait_readable`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The descriptor at this index is readable (or hung up, or in error).
    Index(usize),
    /// The deadline passed first.
    TimedOut,
}

/// Blocks until one of `fds` is readable (hang-up and error count as readable), or `deadline`
/// passes. `None` waits without limit.
pub fn wait_readable(fds: &[BorrowedFd<'_>], deadline: Option<Instant>) -> Result<Ready, Errno> {
    Ok(match poll_until(fds, deadline)?.first() {
        Some(&i) => Ready::Index(i),
        None => Ready::TimedOut,
    })
}

/// Polls until at least one descriptor is readable or `deadline` passes; returns the indices
/// of the ready ones (empty: the deadline passed).
fn poll_until(fds: &[BorrowedFd<'_>], deadline: Option<Instant>) -> Result<Vec<usize>, Errno> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so that we never wake a hair before the deadline and spin.
                let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut pfds: Vec<PollFd<'_>> = fds.iter().map(|f| PollFd::new(*f, PollFlags::POLLIN)).collect();
        match nix::poll::poll(&mut pfds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => {
                if deadline.is_none_or(|d| Instant::now() >= d) {
                    return Ok(Vec::new());
                }
            }
            Ok(_) => {
                return Ok(pfds
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
                    .map(|(i, _)| i)
                    .collect())
            }
        }
    }
}

/// A poll with a relative timeout; see [`wait_readable`].
pub fn wait_readable_for(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> Result<Ready, Errno> {
    wait_readable(fds, timeout.map(|t| Instant::now() + t))
}

/// Reads what is available into `buf` with a plain `recv` (descriptors that arrive are discarded
/// by the kernel). Returns 0 at end of stream. With `dont_wait`, an empty socket gives `EAGAIN`
/// instead of blocking; a blocking read with a receive timeout set (see [`set_recv_timeout`])
/// gives `EAGAIN` when the timeout passes. `EINTR` is retried.
pub fn recv_into(sock: BorrowedFd<'_>, buf: &mut [u8], dont_wait: bool) -> Result<usize, Errno> {
    let flags = if dont_wait {
        MsgFlags::MSG_DONTWAIT
    } else {
        MsgFlags::empty()
    };
    loop {
        match nix::sys::socket::recv(sock.as_raw_fd(), buf, flags) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Sets how long a blocking read on `sock` may wait before it fails with `EAGAIN`
/// (`SO_RCVTIMEO`); `None` waits without limit. A duration below one microsecond is rounded up
/// (zero would mean "no limit" to the kernel).
pub fn set_recv_timeout(sock: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<(), Errno> {
    use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
    use nix::sys::time::TimeVal;
    let tv = match timeout {
        None => TimeVal::new(0, 0),
        Some(d) => {
            let d = d.max(Duration::from_micros(1));
            let secs = d.as_secs().min(i32::MAX as u64);
            TimeVal::new(secs as _, d.subsec_micros() as _)
        }
    };
    setsockopt(&sock, ReceiveTimeout, &tv)
}

/// Polls `fds` for readability (hang-up and error count) for at most `timeout` (`None`: no
/// limit) and returns the indices of every ready descriptor; empty when the time passed.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> Result<Vec<usize>, Errno> {
    poll_until(fds, timeout.map(|t| Instant::now() + t))
}

/// Sets how long a blocking write on `sock` may wait (`SO_SNDTIMEO`); `None` waits without
/// limit. A send that times out fails with `EAGAIN` if it wrote nothing, or returns the count
/// it wrote. A duration below one microsecond is rounded up (zero would mean "no limit").
pub fn set_send_timeout(sock: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<(), Errno> {
    use nix::sys::socket::{setsockopt, sockopt::SendTimeout};
    use nix::sys::time::TimeVal;
    let tv = match timeout {
        None => TimeVal::new(0, 0),
        Some(d) => {
            let d = d.max(Duration::from_micros(1));
            let secs = d.as_secs().min(i32::MAX as u64);
            TimeVal::new(secs as _, d.subsec_micros() as _)
        }
    };
    setsockopt(&sock, SendTimeout, &tv)
}

/// Shuts down the sending direction of `sock`: the peer reads end of file after what was sent.
pub fn shutdown_write(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    nix::sys::socket::shutdown(sock.as_raw_fd(), nix::sys::socket::Shutdown::Write)
}

/// Blocks until the peer of a stream socket has closed its end (or the socket failed), even
/// while data it sent is still unread here (`POLLRDHUP` on Linux). Elsewhere, it waits for
/// readability and peeks: end of stream is a hang-up, and unread data is waited out in 10 ms
/// steps.
pub fn wait_hangup(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // nix has no name for POLLRDHUP.
        let rdhup = PollFlags::from_bits_retain(nix::libc::POLLRDHUP);
        loop {
            let mut fds = [PollFd::new(sock, rdhup)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => match fds[0].revents() {
                    // nix cannot name POLLRDHUP, so a result with it set comes back as `None`.
                    None => return Ok(()),
                    Some(r) if r.intersects(rdhup | PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) => {
                        return Ok(())
                    }
                    Some(_) => {}
                },
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        loop {
            let mut fds = [PollFd::new(sock, PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {
                    let mut b = [0u8; 1];
                    match nix::sys::socket::recv(sock.as_raw_fd(), &mut b, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT)
                    {
                        Ok(0) => return Ok(()),
                        Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => std::thread::sleep(Duration::from_millis(10)),
                        Err(_) => return Ok(()),
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
