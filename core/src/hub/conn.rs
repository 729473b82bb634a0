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
    /// The fork server's control connection.
    ForkServer,
    /// A remote manager's client in another program, served on behalf of the process that
    /// passed it (its relay): object operations only, on objects that process holds.
    Remote,
}

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
    pub in_fds: VecDeque<OwnedFd>,
    out: VecDeque<Chunk>,
    out_bytes: usize,
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
            out: VecDeque::new(),
            out_bytes: 0,
            want_write: false,
            dirty: false,
            max_frame,
        }
    }

    /// Reads until the socket would block, the budget is used, or the peer closes.
    pub fn read_some(&mut self) -> Result<ReadEnd, Errno> {
        let mut total = 0;
        loop {
            let want = self.dec.wanted().clamp(64 * 1024, 4 << 20);
            let buf = self.dec.spare(want);
            match sys::io::recv_with_fds(self.fd.as_fd(), buf, &mut self.in_fds) {
                Ok(0) => return Ok(ReadEnd::Closed),
                Ok(n) => {
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

    /// Takes `n` received descriptors (in arrival order).
    pub fn take_fds(&mut self, n: usize) -> Option<Vec<OwnedFd>> {
        if self.in_fds.len() < n {
            return None;
        }
        Some(self.in_fds.drain(..n).collect())
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
