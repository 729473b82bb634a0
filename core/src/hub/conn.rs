//! One connection as the hub sees it: a non-blocking socket, a frame decoder, the descriptors
//! that arrived with it, and an output queue that coalesces frames into as few writes as
//! possible.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};

use serde::Serialize;

use crate::sys::{self, Errno};
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
        }
    }

    /// Reads until the socket would block, the budget is used, or the peer closes.
    ///
    /// Descriptors the kernel had to drop (the root out of descriptors) are recorded as a
    /// truncated batch; the frame they belong to fails, never the connection. `EMSGSIZE` is
    /// returned only when the peer leaves more than [`MAX_UNCLAIMED_FDS`] unclaimed.
    pub fn read_some(&mut self) -> Result<ReadEnd, Errno> {
        let mut total = 0;
        loop {
            let want = self.dec.wanted().clamp(64 * 1024, 4 << 20);
            let buf = self.dec.spare(want);
            match sys::io::recv_msg(self.fd.as_fd(), buf) {
                Ok(r) if r.bytes == 0 && r.fds.is_empty() && !r.truncated => return Ok(ReadEnd::Closed),
                Ok(r) => {
                    let n = r.bytes;
                    if !r.fds.is_empty() || r.truncated {
                        self.in_fd_count += r.fds.len();
                        self.in_fds.push_back(FdBatch {
                            fds: r.fds,
                            truncated: r.truncated,
                        });
                        if self.in_fd_count > MAX_UNCLAIMED_FDS {
                            return Err(Errno::EMSGSIZE);
                        }
                    }
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
                Err(Errno::ECONNRESET) => return Ok(ReadEnd::Closed),
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes the `n` descriptors of the frame just decoded: the next batch, which must be
    /// complete. `n == 0` takes nothing.
    pub fn take_fds(&mut self, n: usize) -> Result<Vec<OwnedFd>, FdsError> {
        if n == 0 {
            return Ok(Vec::new());
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
        let start_new = !fds.is_empty() || self.out.back().is_none_or(|c| c.data.len() >= 1 << 20);
        if start_new {
            self.out.push_back(Chunk {
                data: Vec::with_capacity(256),
                fds,
                sent: 0,
            });
        }
        let Some(chunk) = self.out.back_mut() else {
            return Ok(());
        };
        let before = chunk.data.len();
        let res = wire::encode_into(&mut chunk.data, msg, self.max_frame);
        self.out_bytes += chunk.data.len() - before;
        if res.is_err() && chunk.data.is_empty() && chunk.fds.is_empty() {
            self.out.pop_back();
        }
        res
    }

    /// Bytes queued to be written.
    pub fn out_bytes(&self) -> usize {
        self.out_bytes
    }

    /// Writes as much as the socket takes. `Ok(true)` when everything went out.
    pub fn flush(&mut self) -> Result<bool, Errno> {
        while let Some(chunk) = self.out.front_mut() {
            // Gather this chunk and the following fd-less chunks into one writev.
            let mut slices: Vec<IoSlice<'_>> = Vec::new();
            let fds: Vec<std::os::fd::BorrowedFd<'_>> = chunk.fds.iter().map(|f| f.as_fd()).collect();
            slices.push(IoSlice::new(&chunk.data[chunk.sent..]));
            let n = match sys::io::send_vectored(self.fd.as_fd(), &slices, &fds) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return Ok(false),
                Err(e) => return Err(e),
            };
            drop(slices);
            drop(fds);
            // The kernel holds its own references to the descriptors now.
            chunk.fds.clear();
            chunk.sent += n;
            self.out_bytes -= n;
            if chunk.sent == chunk.data.len() {
                self.out.pop_front();
            } else {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
