//! One connection as the hub sees it: a non-blocking socket, a frame decoder, the descriptors
//! that arrived with it, and an output queue that coalesces frames into as few writes as
//! possible.
//!
//! In ring mode (issue 10, `wire::ring`) the frames travel in the connection's shared-memory
//! rings instead of the socket's byte stream; the socket carries descriptor batches (each
//! with one byte, sent *before* the frame that announces them is written into the ring),
//! doorbell bytes (whose value means nothing), and the end of file that means death.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};

use serde::Serialize;

use crate::sys::{self, Errno};
use crate::wire::ring::{RingEnds, RingMem};
use crate::wire::{self, proto::ProcId, FrameDecoder, FrameError};

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A process's main connection: its closing means the process is gone.
    Main,
    /// A per-thread connection of a process.
    Thread,
    /// The root's main connection (its bookkeeping, in order). The root's life is the hub's
    /// own, so its closing ends nothing.
    RootMain,
    /// The fork server's control connection.
    ForkServer,
    /// A remote manager's client in another program, served on behalf of the process that
    /// passed it (its relay): object operations only, on objects that process holds.
    Remote,
}

/// Why the hub stopped reading a connection for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// Its replies are not being read (`max_buffered_per_connection`).
    Output,
    /// It sent mail to a process whose mailbox is full (`max_mailbox_bytes`).
    Mailbox(ProcId),
}

/// Descriptors that arrived with one message.
pub(crate) struct FdBatch {
    pub fds: Vec<OwnedFd>,
    /// The kernel dropped some of them (`MSG_CTRUNC`).
    pub truncated: bool,
}

/// Why the descriptors a frame announced cannot be handed over. The request fails; the
/// connection stays.
#[derive(Debug)]
pub(crate) enum FdsError {
    /// The root had no free descriptor slots when they arrived (`EMFILE`), or the sender
    /// attached more than one message may carry; the kernel dropped them.
    Dropped { got: usize, want: usize },
    /// The frame announced descriptors that did not come with it.
    Missing { got: usize, want: usize },
}

/// Unclaimed descriptors a connection may make the hub hold before it is dropped as broken.
pub(crate) const MAX_UNCLAIMED_FDS: usize = 4 * sys::io::MAX_FDS_PER_MSG;

struct Chunk {
    data: Vec<u8>,
    fds: Vec<OwnedFd>,
    sent: usize,
    /// Written on the socket even in ring mode (the `ChildInit` frame that hands out the rings).
    via_socket: bool,
}

/// How far a [`Conn::flush`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything queued went out.
    All,
    /// The socket is full: wait until it is writable.
    SocketFull,
    /// The ring is full: the client rings the doorbell once it has read (ring mode).
    RingFull,
}

/// Why reading stopped.
pub(crate) enum ReadEnd {
    /// Drained for now (EAGAIN) or the read budget was used.
    Open { more: bool },
    /// The peer closed (or the socket failed).
    Closed,
}

pub(crate) struct Conn {
    pub fd: OwnedFd,
    pub proc: ProcId,
    pub role: Role,
    pub dec: FrameDecoder,
    /// Descriptor batches received and not yet claimed, in arrival order: one per sender
    /// message that carried descriptors (the kernel never merges two of them into one read).
    pub in_fds: VecDeque<FdBatch>,
    /// Descriptors in `in_fds` (bounded: see [`MAX_UNCLAIMED_FDS`]).
    pub in_fd_count: usize,
    out: VecDeque<Chunk>,
    out_bytes: usize,
    /// Why the hub is not reading from this connection for now (see `HubLimits`).
    pub paused: Option<Pause>,
    /// Since when a frame has been incomplete in `dec` (see `HubLimits::frame_timeout`).
    pub partial_since: Option<std::time::Instant>,
    /// Registered for WRITABLE because the socket was full.
    pub want_write: bool,
    /// Already queued in the hub's list of connections to flush this turn.
    pub dirty: bool,
    pub max_frame: usize,
    /// The rings, in ring mode.
    pub ring: Option<RingEnds>,
    /// Ring mode: the socket reached end of file (the peer is gone) while the hub was reading
    /// descriptors; what the rings still hold is read before the connection is closed.
    pub saw_eof: bool,
    /// Ring mode: the next read finds frames in the ring that the hub's spin saw, with no
    /// doorbell on the socket: skip the socket (one `recvmsg` that would say `EAGAIN`).
    /// Cleared by every readiness event of the socket, whose news must be read.
    pub skip_pull: bool,
}

/// Bytes read per readable event before the loop moves on to other connections (fairness).
const READ_BUDGET: usize = 4 << 20;

impl Conn {
    pub fn new(fd: OwnedFd, proc: ProcId, role: Role, max_frame: usize) -> Self {
        Conn {
            fd,
            proc,
            role,
            dec: FrameDecoder::new(max_frame),
            in_fds: VecDeque::new(),
            in_fd_count: 0,
            out: VecDeque::new(),
            out_bytes: 0,
            paused: None,
            partial_since: None,
            want_write: false,
            dirty: false,
            max_frame,
            ring: None,
            saw_eof: false,
            skip_pull: false,
        }
    }

    /// Switches to ring mode: every frame queued from now on (except [`queue_via_socket`]
    /// ones) goes into the rings, and frames are read from them.
    ///
    /// [`queue_via_socket`]: Self::queue_via_socket
    pub fn attach_ring(&mut self, mem: std::sync::Arc<RingMem>) {
        self.ring = Some(RingEnds::hub(mem));
    }

    /// Keeps the descriptor batch that one `recvmsg` brought (if any) for the frame that will
    /// claim it; more than `MAX_UNCLAIMED_FDS` waiting fails the connection.
    fn keep_fds(&mut self, fds: Vec<OwnedFd>, truncated: bool) -> Result<(), String> {
        if fds.is_empty() && !truncated {
            return Ok(());
        }
        self.in_fd_count += fds.len();
        self.in_fds.push_back(FdBatch { fds, truncated });
        if self.in_fd_count > MAX_UNCLAIMED_FDS {
            return Err(format!("read failed: {}", Errno::EMSGSIZE));
        }
        Ok(())
    }

    /// Ring mode: reads the socket until it would block, keeping descriptor batches and
    /// discarding doorbell bytes. Records an end of file in `saw_eof`.
    fn pull_socket(&mut self) -> Result<bool, String> {
        let mut scratch = [0u8; 512];
        let mut discarded = 0usize;
        loop {
            match sys::io::recv_msg(self.fd.as_fd(), &mut scratch) {
                Ok(r) => {
                    self.keep_fds(r.fds, r.truncated)?;
                    if r.bytes == 0 {
                        self.saw_eof = true;
                        return Ok(false);
                    }
                    discarded += r.bytes;
                    if discarded >= READ_BUDGET {
                        // A peer that floods the socket: come back later.
                        return Ok(true);
                    }
                }
                Err(Errno::EAGAIN) => return Ok(false),
                Err(Errno::ECONNRESET) => {
                    self.saw_eof = true;
                    return Ok(false);
                }
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }

    /// Ring mode, while the hub is not reading this connection (paused): takes the doorbell
    /// bytes (and any descriptor batches, kept in order for their frames) off the socket, so
    /// that the client's "made room" doorbells keep arriving. Without this, a paused
    /// connection's socket filled up with unread doorbells, the next doorbell was lost, and
    /// the hub waited for room that the client had already made (a hang with a large mail
    /// backlog). Does nothing on a socket-mode connection, whose socket carries its frames.
    pub fn drain_doorbells(&mut self) -> Result<(), String> {
        if self.ring.is_some() {
            self.pull_socket()?;
        }
        Ok(())
    }

    /// Ring mode's [`read_some`](Self::read_some).
    fn read_ring(&mut self) -> Result<ReadEnd, String> {
        let more_socket = if std::mem::take(&mut self.skip_pull) {
            false
        } else {
            self.pull_socket()?
        };
        let closed = self.saw_eof;
        let Some(r) = self.ring.as_mut() else {
            return Ok(ReadEnd::Open { more: false });
        };
        // A dead writer left at most one ring's worth: read all of it.
        let budget = if closed {
            READ_BUDGET.max(2 * r.cap())
        } else {
            READ_BUDGET
        };
        let mut total = 0;
        loop {
            let n =
                r.rx.read_into(&mut self.dec, budget - total)
                    .map_err(|e| e.to_string())?;
            total += n;
            if n == 0 || total >= budget {
                break;
            }
        }
        if r.rx.writer_needs_wake() {
            sys::io::ring_doorbell(self.fd.as_fd());
        }
        if closed {
            return Ok(ReadEnd::Closed);
        }
        Ok(ReadEnd::Open {
            more: more_socket || total >= budget,
        })
    }

    /// Ring mode: the hub is done with this connection for the loop turn. Arms the ring (the
    /// client rings the doorbell with its next frame) unless bytes are already waiting:
    /// `Ok(true)` means read again now.
    pub fn arm_ring(&mut self) -> Result<bool, String> {
        match &self.ring {
            Some(r) => r.rx.arm().map(|sleep| !sleep).map_err(|e| e.to_string()),
            None => Ok(false),
        }
    }

    /// Reads until the socket would block, the budget is used, or the peer closes.
    ///
    /// Descriptors the kernel had to drop (the root out of descriptors) are recorded as a
    /// truncated batch; the frame they belong to fails, never the connection. `EMSGSIZE` is
    /// returned only when the peer leaves more than [`MAX_UNCLAIMED_FDS`] unclaimed.
    pub fn read_some(&mut self) -> Result<ReadEnd, String> {
        if self.ring.is_some() {
            return self.read_ring();
        }
        let mut total = 0;
        loop {
            let want = self.dec.wanted().clamp(64 * 1024, 4 << 20);
            let buf = self.dec.spare(want);
            match sys::io::recv_msg(self.fd.as_fd(), buf) {
                Ok(r) if r.bytes == 0 && r.fds.is_empty() && !r.truncated => return Ok(ReadEnd::Closed),
                Ok(r) => {
                    let n = r.bytes;
                    self.keep_fds(r.fds, r.truncated)?;
                    if n == 0 {
                        return Ok(ReadEnd::Closed);
                    }
                    self.dec.commit(n);
                    total += n;
                    if total >= READ_BUDGET {
                        return Ok(ReadEnd::Open { more: true });
                    }
                }
                Err(Errno::EAGAIN) => return Ok(ReadEnd::Open { more: false }),
                // `ETIMEDOUT`: TCP keep-alive gave up on a remote client whose host vanished;
                // like a reset, that is the client's death, not bad input.
                Err(Errno::ECONNRESET) | Err(Errno::ETIMEDOUT) => return Ok(ReadEnd::Closed),
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }

    /// Takes the `n` descriptors of the frame just decoded: the next batch, which must be
    /// complete. `n == 0` takes nothing.
    pub fn take_fds(&mut self, n: usize) -> Result<Vec<OwnedFd>, FdsError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.in_fds.is_empty() && self.ring.is_some() {
            // Ring mode: the batch was sent on the socket before its frame was written into
            // the ring, so it is in the socket already, just not read yet.
            let _ = self.pull_socket();
        }
        let Some(batch) = self.in_fds.pop_front() else {
            return Err(FdsError::Missing { got: 0, want: n });
        };
        self.in_fd_count -= batch.fds.len();
        let got = batch.fds.len();
        if batch.truncated {
            return Err(FdsError::Dropped { got, want: n });
        }
        if got != n {
            return Err(FdsError::Missing { got, want: n });
        }
        Ok(batch.fds)
    }

    /// Queues one frame, with descriptors attached to its first byte.
    pub fn queue<T: Serialize>(&mut self, msg: &T, fds: Vec<OwnedFd>) -> Result<(), FrameError> {
        self.queue_with(msg, fds, false)
    }

    /// Queues one frame that goes on the socket even in ring mode, in order with the others
    /// (the `ChildInit` frame, which the child reads before it knows of the rings).
    pub fn queue_via_socket<T: Serialize>(&mut self, msg: &T, fds: Vec<OwnedFd>) -> Result<(), FrameError> {
        self.queue_with(msg, fds, true)
    }

    /// Queues raw bytes (not a frame) with descriptors, on the socket (see
    /// `Hub::send_init`).
    pub fn queue_raw_via_socket(&mut self, data: Vec<u8>, fds: Vec<OwnedFd>) {
        self.out_bytes += data.len();
        self.out.push_back(Chunk {
            data,
            fds,
            sent: 0,
            via_socket: true,
        });
    }

    fn queue_with<T: Serialize>(&mut self, msg: &T, fds: Vec<OwnedFd>, via_socket: bool) -> Result<(), FrameError> {
        let start_new =
            !fds.is_empty() || via_socket || self.out.back().is_none_or(|c| c.via_socket || c.data.len() >= 1 << 20);
        if start_new {
            self.out.push_back(Chunk {
                data: Vec::with_capacity(256),
                fds,
                sent: 0,
                via_socket,
            });
        }
        let Some(chunk) = self.out.back_mut() else {
            return Ok(());
        };
        let before = chunk.data.len();
        let res = wire::encode_into(&mut chunk.data, msg, self.max_frame);
        self.out_bytes += chunk.data.len() - before;
        if res.is_err() && (start_new || chunk.data.is_empty() && chunk.fds.is_empty()) {
            // A frame that could not be encoded leaves nothing behind (nor its descriptors).
            self.out.pop_back();
        }
        res
    }

    /// Bytes queued to be written.
    pub fn out_bytes(&self) -> usize {
        self.out_bytes
    }

    /// Writes as much as the socket (or, in ring mode, the ring) takes.
    pub fn flush(&mut self) -> Result<Flushed, String> {
        let mut rang = false;
        let res = self.flush_inner(&mut rang);
        if rang {
            if let Some(r) = &self.ring {
                if r.tx.reader_needs_wake() {
                    sys::io::ring_doorbell(self.fd.as_fd());
                }
            }
        }
        res
    }

    fn flush_inner(&mut self, wrote_ring: &mut bool) -> Result<Flushed, String> {
        while let Some(chunk) = self.out.front_mut() {
            let ring = if chunk.via_socket { None } else { self.ring.as_mut() };
            let Some(ring) = ring else {
                let slices = [IoSlice::new(&chunk.data[chunk.sent..])];
                let fds: Vec<std::os::fd::BorrowedFd<'_>> = chunk.fds.iter().map(|f| f.as_fd()).collect();
                let n = match sys::io::send_vectored(self.fd.as_fd(), &slices, &fds) {
                    Ok(n) => n,
                    Err(Errno::EAGAIN) => return Ok(Flushed::SocketFull),
                    Err(e) => return Err(format!("write failed: {e}")),
                };
                drop(fds);
                // The kernel holds its own references to the descriptors now.
                chunk.fds.clear();
                chunk.sent += n;
                self.out_bytes -= n;
                if chunk.sent == chunk.data.len() {
                    self.out.pop_front();
                    continue;
                }
                return Ok(Flushed::SocketFull);
            };
            if !chunk.fds.is_empty() {
                // The descriptors go first, on the socket, with one byte: the client finds
                // them there when it decodes the frame that announces them.
                let fds: Vec<std::os::fd::BorrowedFd<'_>> = chunk.fds.iter().map(|f| f.as_fd()).collect();
                match sys::io::send_vectored(self.fd.as_fd(), &[IoSlice::new(&[0u8])], &fds) {
                    Ok(_) => {}
                    Err(Errno::EAGAIN) => return Ok(Flushed::SocketFull),
                    Err(e) => return Err(format!("write failed: {e}")),
                }
                drop(fds);
                chunk.fds.clear();
            }
            let n = ring.tx.write(&chunk.data[chunk.sent..]).map_err(|e| e.to_string())?;
            if n > 0 {
                *wrote_ring = true;
            }
            chunk.sent += n;
            self.out_bytes -= n;
            if chunk.sent == chunk.data.len() {
                self.out.pop_front();
                continue;
            }
            // Full: the client rings when it has made room, unless it already has.
            if *wrote_ring && ring.tx.reader_needs_wake() {
                sys::io::ring_doorbell(self.fd.as_fd());
            }
            if !ring.tx.announce_waiting().map_err(|e| e.to_string())? {
                return Ok(Flushed::RingFull);
            }
        }
        Ok(Flushed::All)
    }
}
