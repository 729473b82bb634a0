//! A blocking client connection to the hub.
//!
//! In ring mode (issue 10, `wire::ring`) frames travel in the connection's shared-memory
//! rings; the socket carries descriptor batches (sent before the frame that announces them),
//! doorbell bytes, and the end of file. A writer rings the doorbell only when the reader said
//! it is going to sleep, so a stream of one-way messages to a hub that is awake costs no
//! system call at all.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use crate::error::CallError;
use crate::sys::{self, Errno};
use crate::wire::proto::{Cast, FromHub, Op, ReqId, ToHub, Value};
use crate::wire::ring::{client_spin, RingEnds, RingMem, Spin};
use crate::wire::{self, FrameDecoder};

/// Extra time a client waits for the hub beyond an operation's own deadline before it concludes
/// that the hub is unresponsive. The hub enforces deadlines; this is only a safety net.
pub(crate) const HUB_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// One blocking connection. Used by one thread at a time.
pub(crate) struct ClientConn {
    fd: OwnedFd,
    dec: FrameDecoder,
    fds: VecDeque<OwnedFd>,
    next_id: ReqId,
    buf: Vec<u8>,
    max_frame: usize,
    /// The rings, in ring mode.
    ring: Option<RingEnds>,
    /// Ring mode: the socket reached end of file (the hub closed this connection); what the
    /// ring still holds is read first.
    eof: bool,
    /// Ring mode: the bounded spin before arming the ring and sleeping.
    spin: Spin,
}

impl ClientConn {
    /// A connection on the socket alone.
    pub fn new(fd: OwnedFd, max_frame: usize) -> Self {
        ClientConn {
            fd,
            dec: FrameDecoder::new(max_frame),
            fds: VecDeque::new(),
            next_id: 1,
            buf: Vec::new(),
            max_frame,
            ring: None,
            eof: false,
            spin: Spin::default(),
        }
    }

    /// A connection in ring mode, on rings the hub serves for this socket.
    pub fn with_ring(fd: OwnedFd, max_frame: usize, mem: std::sync::Arc<RingMem>) -> Self {
        ClientConn {
            ring: Some(RingEnds::client(mem)),
            ..ClientConn::new(fd, max_frame)
        }
    }

    /// Is this connection in ring mode?
    pub fn is_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// Writes one message (with descriptors attached) in a single send where the socket takes it.
    /// More descriptors than one message may carry are refused before anything is written, so
    /// the connection stays usable.
    pub fn send(&mut self, msg: &ToHub, fds: &[BorrowedFd<'_>]) -> Result<(), CallError> {
        if fds.len() > sys::io::MAX_FDS_PER_MSG {
            return Err(CallError::TooManyDescriptors {
                count: fds.len(),
                max: sys::io::MAX_FDS_PER_MSG,
            });
        }
        self.buf.clear();
        wire::encode_into(&mut self.buf, msg, self.max_frame).map_err(CallError::Encode)?;
        self.write_buf(fds)
    }

    /// Sends `self.buf` (whole frames): on the socket, or into the ring (descriptors first, on
    /// the socket with one byte). Returns once every byte is written (ring mode: published in
    /// memory the hub has mapped).
    fn write_buf(&mut self, fds: &[BorrowedFd<'_>]) -> Result<(), CallError> {
        let Some(ring) = self.ring.as_mut() else {
            return sys::io::send_all(self.fd.as_fd(), &self.buf, fds).map_err(map_send_err);
        };
        if !fds.is_empty() {
            sys::io::send_all(self.fd.as_fd(), &[0u8], fds).map_err(map_send_err)?;
        }
        let mut off = 0;
        loop {
            off += ring.tx.write(&self.buf[off..]).map_err(ring_err)?;
            if ring.tx.reader_needs_wake() {
                sys::io::ring_doorbell(self.fd.as_fd());
            }
            if off == self.buf.len() {
                return Ok(());
            }
            // Full: wait for the hub to make room (it rings once it has read). Like a full
            // socket, this waits as long as the hub holds this connection back (backpressure).
            if ring.tx.announce_waiting().map_err(ring_err)? {
                continue;
            }
            match sys::io::wait_readable(&[self.fd.as_fd()], None).map_err(CallError::Io)? {
                sys::io::Ready::TimedOut | sys::io::Ready::Index(_) => {}
            }
            if pull_socket(self.fd.as_fd(), &mut self.fds)? {
                ring.tx.withdraw_waiting();
                return Err(hub_gone());
            }
        }
    }

    /// Ring mode: before sleeping on the socket's readiness outside this type (the `.await`
    /// forms), says so to the hub. `Ok(false)`: messages are waiting already, do not sleep.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn prepare_to_sleep(&mut self) -> Result<bool, CallError> {
        if self.dec.wanted() == 0 && self.dec.buffered() > 0 {
            return Ok(false);
        }
        let Some(ring) = self.ring.as_ref() else {
            return Ok(true);
        };
        if self.eof {
            return Ok(false);
        }
        let _ = pull_socket(self.fd.as_fd(), &mut self.fds)?;
        ring.rx.arm().map_err(ring_err)
    }

    /// Sends several casts in one write.
    pub fn cast_many(&mut self, casts: impl IntoIterator<Item = Cast>) -> Result<(), CallError> {
        self.buf.clear();
        for c in casts {
            wire::encode_into(&mut self.buf, &ToHub::Cast(c), self.max_frame).map_err(CallError::Encode)?;
        }
        self.write_buf(&[])
    }

    /// A one-way message.
    pub fn cast(&mut self, c: Cast, fds: &[BorrowedFd<'_>]) -> Result<(), CallError> {
        self.send(&ToHub::Cast(c), fds)
    }

    /// A blocking call: sends `op`, waits for its reply. `deadline` is the operation's own
    /// deadline (the hub answers `Timeout` at that point); the client waits that long plus a
    /// grace period for the hub.
    pub fn call(
        &mut self,
        op: Op,
        fds: &[BorrowedFd<'_>],
        deadline: Option<Instant>,
    ) -> Result<(Value, Vec<OwnedFd>), CallError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&ToHub::Call { id, op }, fds)?;
        let limit = deadline.map(|d| d + HUB_GRACE);
        self.await_reply(id, limit)
    }

    /// Reads until the reply to call `id` (sent earlier on this connection) arrives, blocking
    /// until `limit` at most (past it the hub is considered unresponsive).
    pub fn await_reply(&mut self, id: ReqId, limit: Option<Instant>) -> Result<(Value, Vec<OwnedFd>), CallError> {
        loop {
            let msg = self.next_message(limit)?;
            if let Some(r) = self.reply_for(id, msg)? {
                return r;
            }
        }
    }

    /// Looks at one message read while waiting for the reply to `id`: `Some` with the call's
    /// outcome if it is that reply, `None` for a stale reply (from a call abandoned earlier).
    #[allow(clippy::type_complexity)]
    pub fn reply_for(
        &mut self,
        id: ReqId,
        msg: FromHub,
    ) -> Result<Option<Result<(Value, Vec<OwnedFd>), CallError>>, CallError> {
        match msg {
            FromHub::Reply { id: rid, result } if rid == id => Ok(Some(match result {
                Ok(value) => {
                    let n = attached_fds(&value);
                    self.take_fds(n).map(|got| (value, got))
                }
                Err(e) => Err(CallError::Hub(e)),
            })),
            FromHub::Reply { .. } => Ok(None),
            FromHub::Stopped(why) => Err(CallError::HubStopped(why)),
            FromHub::Init(_) | FromHub::Mail(_) | FromHub::MailFds { .. } | FromHub::Signal(_) => {
                Err(CallError::Protocol("unexpected frame on a call connection".into()))
            }
        }
    }

    /// A fresh request id for a call on this connection.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn next_req_id(&mut self) -> ReqId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The socket.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The largest frame body accepted on this connection.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The next complete message already read, if any (never touches the socket).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn buffered_message(&mut self) -> Result<Option<FromHub>, CallError> {
        match self.dec.next_frame().map_err(|e| CallError::Protocol(e.to_string()))? {
            Some(body) => wire::decode::<FromHub>(body)
                .map(Some)
                .map_err(|e| CallError::Protocol(e.to_string())),
            None => Ok(None),
        }
    }

    /// One non-blocking read from the socket into the decoder: `Ok(true)` if bytes came,
    /// `Ok(false)` if none were waiting (`EAGAIN`, or `EINTR`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub fn read_available(&mut self) -> Result<bool, CallError> {
        self.recv_once(true)
    }

    /// Socket mode: reads on (into the decoder) until `n` descriptors have arrived, the
    /// deadline passes or the socket ends. The caller then takes them with
    /// [`take_fds`](Self::take_fds), which reports a shortfall.
    pub fn await_fds(&mut self, n: usize, deadline: Instant) {
        while self.fds.len() < n {
            match sys::io::wait_readable(&[self.fd.as_fd()], Some(deadline)) {
                Ok(sys::io::Ready::Index(_)) => {}
                _ => return,
            }
            let buf = self.dec.spare(4096);
            match sys::io::recv_with_fds(self.fd.as_fd(), buf, &mut self.fds) {
                Ok(0) => return,
                Ok(k) => self.dec.commit(k),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// Takes `n` descriptors that arrived with the last message.
    pub fn take_fds(&mut self, n: usize) -> Result<Vec<OwnedFd>, CallError> {
        if self.fds.len() < n && self.ring.is_some() {
            // Ring mode: the hub sent them on the socket before it wrote their frame into the
            // ring, so they are there already.
            let _ = pull_socket(self.fd.as_fd(), &mut self.fds)?;
        }
        if self.fds.len() < n {
            return Err(CallError::Protocol(format!(
                "expected {n} descriptors, got {}",
                self.fds.len()
            )));
        }
        Ok(self.fds.drain(..n).collect())
    }

    /// Reads the next message from the hub, waiting until `deadline` (`None`: without limit).
    /// `Ok(None)` when the deadline passes first.
    pub fn next_message_until(&mut self, deadline: Option<Instant>) -> Result<Option<FromHub>, CallError> {
        loop {
            if let Some(body) = self.dec.next_frame().map_err(|e| CallError::Protocol(e.to_string()))? {
                return wire::decode::<FromHub>(body)
                    .map(Some)
                    .map_err(|e| CallError::Protocol(e.to_string()));
            }
            if let Some(ring) = self.ring.as_mut() {
                let n = ring.rx.read_into(&mut self.dec, usize::MAX).map_err(ring_err)?;
                if ring.rx.writer_needs_wake() {
                    sys::io::ring_doorbell(self.fd.as_fd());
                }
                if n > 0 {
                    continue;
                }
                if self.eof {
                    return Err(hub_gone());
                }
                let rx = &ring.rx;
                let limit = deadline.map_or(client_spin(), |d| {
                    client_spin().min(d.saturating_duration_since(Instant::now()))
                });
                if self
                    .spin
                    .wait(limit, || rx.available().map(|n| n > 0))
                    .map_err(ring_err)?
                {
                    continue;
                }
                if !ring.rx.arm().map_err(ring_err)? {
                    continue;
                }
                if sys::io::wait_readable(&[self.fd.as_fd()], deadline).map_err(CallError::Io)?
                    == sys::io::Ready::TimedOut
                {
                    return Ok(None);
                }
                self.eof = pull_socket(self.fd.as_fd(), &mut self.fds)?;
                continue;
            }
            // Socket mode (a remote client, or `MULTIPROC_TRANSPORT=socket`): the same bounded
            // spin as on a ring, each pass one `recv` that does not wait.
            if self.recv_spin(deadline)? {
                continue;
            }
            match sys::io::wait_readable(&[self.fd.as_fd()], deadline).map_err(CallError::Io)? {
                sys::io::Ready::TimedOut => return Ok(None),
                sys::io::Ready::Index(_) => {}
            }
            self.recv_once(false)?;
        }
    }

    /// Socket mode: spins for at most `client_spin()` (never past `deadline`) on `recv`s that
    /// do not wait. `Ok(true)` when bytes came.
    fn recv_spin(&mut self, deadline: Option<Instant>) -> Result<bool, CallError> {
        let limit = deadline.map_or(client_spin(), |d| {
            client_spin().min(d.saturating_duration_since(Instant::now()))
        });
        let mut spin = std::mem::take(&mut self.spin);
        // Each empty pass yields: with more runnable processes than CPUs, the hub (or the
        // relay's peer) may be waiting for this very CPU, and a yield with nobody waiting
        // costs a fraction of a µs.
        let got = spin.wait(limit, || {
            let got = self.recv_once(true)?;
            if !got {
                std::thread::yield_now();
            }
            Ok(got)
        });
        self.spin = spin;
        got
    }

    /// One `recv` from the socket into the decoder (`dont_wait`: never blocks). `Ok(true)`
    /// when bytes came, `Ok(false)` when there were none yet.
    fn recv_once(&mut self, dont_wait: bool) -> Result<bool, CallError> {
        let want = self.dec.wanted().clamp(16 * 1024, 4 << 20);
        let buf = self.dec.spare(want);
        match sys::io::recv_msg_with(self.fd.as_fd(), buf, dont_wait) {
            Ok(r) => {
                self.fds.extend(r.fds);
                if r.truncated {
                    return Err(CallError::Io(Errno::EMSGSIZE));
                }
                if r.bytes == 0 {
                    return Err(hub_gone());
                }
                self.dec.commit(r.bytes);
                Ok(true)
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(false),
            Err(Errno::ECONNRESET) | Err(Errno::ETIMEDOUT) => Err(hub_gone()),
            Err(e) => Err(CallError::Io(e)),
        }
    }

    /// Reads the next message from the hub, blocking until `limit`; past it the hub is
    /// considered unresponsive.
    pub fn next_message(&mut self, limit: Option<Instant>) -> Result<FromHub, CallError> {
        self.next_message_until(limit)?.ok_or(CallError::HubUnresponsive)
    }
}

fn attached_fds(v: &Value) -> usize {
    match v {
        Value::Prepared(_) | Value::SyncArena(_) | Value::Ring(_) => 1,
        Value::WithFds { nfds, .. } => *nfds as usize,
        _ => 0,
    }
}

/// Ring mode: reads the socket without waiting until it is empty, keeping descriptors and
/// dropping doorbell bytes. `Ok(true)` at end of file (the hub closed the connection).
fn pull_socket(sock: BorrowedFd<'_>, fds: &mut VecDeque<OwnedFd>) -> Result<bool, CallError> {
    let mut scratch = [0u8; 256];
    loop {
        match sys::io::recv_msg_with(sock, &mut scratch, true) {
            Ok(r) => {
                let truncated = r.truncated;
                fds.extend(r.fds);
                if truncated {
                    return Err(CallError::Io(Errno::EMSGSIZE));
                }
                if r.bytes == 0 {
                    return Ok(true);
                }
            }
            Err(Errno::EAGAIN) => return Ok(false),
            Err(Errno::ECONNRESET) => return Ok(true),
            Err(e) => return Err(CallError::Io(e)),
        }
    }
}

fn ring_err(e: crate::wire::ring::RingCorrupt) -> CallError {
    CallError::Protocol(e.to_string())
}

fn map_send_err(e: Errno) -> CallError {
    match e {
        Errno::EPIPE | Errno::ECONNRESET => hub_gone(),
        e => CallError::Io(e),
    }
}

/// The hub's end closed: in the root, the hub thread stopped (and says why); elsewhere, the
/// root has exited.
pub(crate) fn hub_gone() -> CallError {
    match crate::hub::stop_reason() {
        Some(why) => CallError::HubStopped(why),
        None => CallError::HubGone,
    }
}

impl ClientConn {
    /// Gives the socket back (the decoder must hold no partial frame).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Gives the socket and the rings back (tests).
    #[cfg(feature = "internals")]
    pub fn into_parts(self) -> (OwnedFd, Option<RingEnds>) {
        (self.fd, self.ring)
    }
}
