//! One end of a pipe: a stream socket carrying frames (`u32` little-endian length + body).
//!
//! Ring mode (issue 10 stage 3): a pair made by [`pair`] also shares one sealed memory object
//! with a byte ring per direction (`wire::ring`). Frames then travel in the rings, byte for
//! byte, and the socket is only the lifeline (end of file: the other end is gone), the carrier
//! of descriptors (sent *before* the frame that announces them goes into the ring) and the
//! doorbell (one byte, only when the reader said it is going to sleep, or the writer that it
//! waits for room). Connections made by a `Listener`/`Client` stay on their sockets.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{PipeRecvError, PipeSendError};
use crate::runtime::{self, fdpass};
use crate::sys::{self, Errno};
use crate::wire::ring::{RingCorrupt, RingEnds, RingMem, RingReader, RingWriter};
use crate::wire::{self, FrameDecoder, FrameError, FD_FLAG};

/// The size of each ring (per direction) of a pipe in ring mode. Its pages are touched as the
/// stream passes through them, so a pipe costs memory only as it is used.
pub(crate) const PIPE_RING_BYTES: usize = 128 << 10;

/// A writer waiting for room wakes at least this often (a doorbell byte drained by a thread
/// receiving on the same end at the same moment cannot leave it asleep for long).
const ROOM_SLICE: Duration = Duration::from_millis(10);

/// Descriptors received and not yet claimed by a message beyond which the connection stops
/// keeping them (a peer sending descriptors nobody announced): they are closed, and messages
/// that announce descriptors fail from then on.
const MAX_UNCLAIMED_FDS: usize = 4 * sys::io::MAX_FDS_PER_MSG;

/// In the root process, a blocking read wakes at least this often to notice Ctrl-C in interrupt
/// mode (see [`crate::catch_interrupts`]).
const INTERRUPT_SLICE: Duration = Duration::from_millis(50);

/// Which way messages may flow through an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Direction {
    Both,
    Read,
    Write,
}

struct Reader {
    dec: FrameDecoder,
    /// The peer closed; what is buffered is all there is.
    eof: bool,
    /// The receive timeout currently set on the socket (`Some(None)`: none), or `None` if
    /// unknown.
    timeo: Option<Option<Duration>>,
    /// Descriptors received (`SCM_RIGHTS`) and not yet claimed by the message that announced
    /// them, in arrival order.
    fds: VecDeque<OwnedFd>,
    /// Descriptors were lost (the kernel truncated a batch: this process was out of
    /// descriptors; or too many arrived unannounced): the ones still to come cannot be matched
    /// to their messages, so a message announcing descriptors fails with a clear error.
    fds_lost: bool,
    /// Ring mode: the ring this end reads.
    ring: Option<RxRing>,
}

/// The ring an end reads; on drop (the end is closed here) it arms the ring, so that the
/// writer's next message rings the doorbell and learns from the socket that the reader is gone.
struct RxRing(RingReader);

impl Drop for RxRing {
    fn drop(&mut self) {
        self.0.arm_for_close();
    }
}

/// The sending side's state (under `wr`).
struct Writer {
    /// The encoding buffer, reused.
    buf: Vec<u8>,
    st: WriteState,
}

struct WriteState {
    /// Ring mode: the ring this end writes.
    ring: Option<RingWriter>,
    /// Ring mode: a send gave up mid-message and shut the sending direction down.
    shut: bool,
}

/// Ring mode: what the two ends of a pair share.
struct RingLink {
    /// The memory object (sealed against resizing), duplicated when this end is passed on.
    fd: Arc<OwnedFd>,
    /// The ring this end writes (`wire::ring::C2H` or `H2C`); it reads the other one.
    side: u8,
    /// Each ring's capacity.
    cap: usize,
    /// The socket reached end of file: the other end is gone (set by whoever drained it).
    hup: AtomicBool,
}

/// How long one receive may wait.
#[derive(Clone, Copy)]
enum Mode {
    /// Do not wait (`try_recv`).
    Try,
    /// Wait until the deadline (`None`: forever).
    Until(Option<Instant>),
}

/// One end of a [`Pipe`](super::Pipe), carrying messages of type `T`.
///
/// Messages keep their boundaries exactly: each `send` arrives as one `recv`, empty messages
/// included. `send` writes the whole message before it returns (one `write` for small
/// messages); `recv` blocks until a whole message has arrived. Typed messages are MessagePack;
/// the byte forms ([`send_bytes`](Self::send_bytes), [`recv_bytes`](Self::recv_bytes)) carry raw
/// bodies, and the two can be mixed on one connection as in Python (`recv_bytes` of a typed
/// message gives its encoding).
///
/// **End of file.** When the other end is dropped, or its process exits or dies, `recv` returns
/// [`PipeRecvError::Eof`] once every message already sent has been received. Nothing needs
/// closing by hand: an end passed to a child as a worker argument is *moved* (the `#[worker]`
/// constructor takes it by value and drops the parent's copy once the task is built), so the
/// parent keeps no copy that would hold the pipe open. (With [`StartMethod::Fork`] the child
/// inherits every descriptor of the parent, as with Python's fork; the EOF guarantee is for
/// `Spawn` and `ForkServer`.)
///
/// A `Connection` is `Send + Sync`: concurrent senders never interleave their messages, and
/// concurrent receivers each get whole messages. Two *processes* using the same end at the
/// same time is another matter (Python: "the data in a pipe may become corrupted"): an end
/// passed to another process is moved there, and should not be used by the sender any more.
///
/// **Rings.** A pipe's frames travel in shared memory (see the [module](super) docs), so the
/// end's descriptor ([`AsFd`]) alone does not say whether a message is waiting: use
/// [`poll`](Self::poll), [`wait`](crate::wait) or `recv_async`, or delegate a custom
/// [`Waitable`](crate::Waitable) to this end's `wait_source`.
///
/// # Example
/// ```
/// use multiproc::{pipe, Connection, Process};
///
/// #[multiproc::worker]
/// fn doubler(conn: Connection<u64>) {
///     while let Ok(x) = conn.recv() {
///         conn.send(&(x * 2)).unwrap();
///     }
/// }
///
/// let (mine, theirs) = pipe::<u64>()?;
/// let mut child = Process::new(doubler(theirs)).start()?;
/// mine.send(&21)?;
/// assert_eq!(mine.recv()?, 42);
/// drop(mine); // the child's recv now returns Eof, and it exits
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`StartMethod::Fork`]: crate::StartMethod::Fork
pub struct Connection<T> {
    fd: OwnedFd,
    dir: Direction,
    max: usize,
    /// Counts this end against its listener's `max_connections` while it lives.
    _lease: Option<Lease>,
    rd: Mutex<Reader>,
    wr: Mutex<Writer>,
    /// Ring mode (`None`: the socket carries the frames).
    ring: Option<RingLink>,
    /// The send timeout currently set on the socket (`None`: none). Only touched with `wr` held.
    sndtimeo: Mutex<Option<Duration>>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd)
            .field("direction", &self.dir)
            .field("ring", &self.ring.as_ref().map(|r| r.cap))
            .finish()
    }
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A place in a listener's count of live connections, given back on drop.
#[derive(Debug)]
pub(crate) struct Lease(Arc<AtomicUsize>);

impl Lease {
    #[cfg_attr(not(feature = "connection"), allow(dead_code))]
    pub(crate) fn new(count: Arc<AtomicUsize>) -> Lease {
        count.fetch_add(1, Ordering::SeqCst);
        Lease(count)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T> Connection<T> {
    pub(crate) fn from_fd(fd: OwnedFd, dir: Direction) -> Self {
        Self::from_socket(fd, dir, runtime::max_frame_size(), None)
    }

    /// An end on any connected stream socket (a socketpair end, or an accepted or connected
    /// Unix or TCP socket), with its own frame limit.
    pub(crate) fn from_socket(fd: OwnedFd, dir: Direction, max: usize, lease: Option<Lease>) -> Self {
        Connection {
            fd,
            dir,
            max,
            _lease: lease,
            rd: Mutex::new(Reader {
                dec: FrameDecoder::with_fd_flag(max),
                eof: false,
                timeo: None,
                fds: VecDeque::new(),
                fds_lost: false,
                ring: None,
            }),
            wr: Mutex::new(Writer {
                buf: Vec::new(),
                st: WriteState {
                    ring: None,
                    shut: false,
                },
            }),
            ring: None,
            sndtimeo: Mutex::new(None),
            _t: PhantomData,
        }
    }

    /// An end in ring mode: `sock` is the lifeline, `mem` the pair's rings (this end writes
    /// ring `side` and reads the other).
    fn with_ring(sock: OwnedFd, dir: Direction, fd: Arc<OwnedFd>, mem: Arc<RingMem>, side: u8) -> Self {
        let cap = mem.cap();
        let ends = if usize::from(side) == wire::ring::C2H {
            RingEnds::client(mem)
        } else {
            RingEnds::hub(mem)
        };
        let mut c = Self::from_socket(sock, dir, runtime::max_frame_size(), None);
        c.rd.get_mut().unwrap_or_else(|p| p.into_inner()).ring = Some(RxRing(ends.rx));
        c.wr.get_mut().unwrap_or_else(|p| p.into_inner()).st.ring = Some(ends.tx);
        c.ring = Some(RingLink {
            fd,
            side,
            cap,
            hup: AtomicBool::new(false),
        });
        c
    }

    /// Does this end carry its frames in shared-memory rings?
    #[doc(hidden)]
    pub fn uses_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// Tests only (feature `internals`): writes raw bytes into the frame stream (the ring, or
    /// the socket), as a misbehaving peer would.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn send_raw_stream_bytes(&self, bytes: &[u8]) -> Result<(), PipeSendError> {
        let mut w = lock(&self.wr);
        self.write_all_until(&mut w.st, &[bytes], None, &[])
    }

    /// Tests only (feature `internals`): scribbles `tail` into the shared tail word of the
    /// ring this end writes, as a hostile or broken peer could, and rings the doorbell.
    /// `false` in socket mode.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn scribble_ring_tail(&self, tail: u64) -> bool {
        match lock(&self.wr).st.ring.as_ref() {
            Some(w) => {
                w.scribble_tail(tail);
                sys::io::ring_doorbell(self.fd.as_fd());
                true
            }
            None => false,
        }
    }

    /// The largest message this end sends or receives (the maximum frame size).
    pub(crate) fn max_message(&self) -> usize {
        self.max
    }

    /// The largest message this end takes.
    #[cfg_attr(not(feature = "connection"), allow(dead_code))]
    pub(crate) fn max_frame_size(&self) -> usize {
        self.max
    }

    /// Can this end receive?
    pub fn readable(&self) -> bool {
        self.dir != Direction::Write
    }

    /// Can this end send?
    pub fn writable(&self) -> bool {
        self.dir != Direction::Read
    }

    /// Gives the socket back, if nothing received on it is still buffered here (`None`
    /// otherwise: the buffered bytes would be lost).
    #[cfg_attr(not(feature = "connection"), allow(dead_code))]
    pub(crate) fn into_socket(self) -> Option<OwnedFd> {
        if self.ring.is_some() {
            return None;
        }
        let rd = lock(&self.rd);
        if rd.dec.buffered() > 0 || !rd.fds.is_empty() {
            return None;
        }
        drop(rd);
        Some(self.fd)
    }

    /// Closes this end (the same as dropping it). The peer's `recv` returns `Eof` once it has
    /// read everything sent before.
    pub fn close(self) {}

    // ----- sending ------------------------------------------------------------------------

    /// Sends raw bytes as one message (Python's `send_bytes`). An empty slice is a message too.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), PipeSendError> {
        if !self.writable() {
            return Err(PipeSendError::WrongDirection);
        }
        if bytes.len() > self.max || bytes.len() >= FD_FLAG as usize {
            return Err(PipeSendError::TooLarge {
                len: bytes.len(),
                max: self.max,
            });
        }
        let header = (bytes.len() as u32).to_le_bytes();
        let mut g = lock(&self.wr);
        self.write_all(&mut g.st, &[&header, bytes])
    }

    /// [`send_bytes`](Self::send_bytes) with descriptors attached (`SCM_RIGHTS`; Python's
    /// `reduction.send_handle`): the peer's
    /// [`recv_bytes_with_fds_into`](Self::recv_bytes_with_fds_into) gets duplicates of them with
    /// the message (the caller keeps its own). At most [`MAX_FDS_PER_MSG`](super::MAX_FDS_PER_MSG)
    /// ([`PipeSendError::TooManyDescriptors`], nothing written); only on a Unix-socket
    /// connection. Typed messages need none of this: a `Connection` or shared-memory object
    /// inside a value given to [`send`](Self::send) travels the same way by itself.
    ///
    /// # Example
    /// ```
    /// use std::io::{Read, Seek, Write};
    /// use std::os::fd::AsFd;
    /// use multiproc::pipe;
    ///
    /// let (a, b) = pipe::<()>()?;
    /// let mut file = tempfile_like()?;
    /// a.send_bytes_with_fds(b"a file", &[file.as_fd()])?;
    /// let (mut buf, mut fds) = (Vec::new(), Vec::new());
    /// b.recv_bytes_with_fds_into(&mut buf, &mut fds)?;
    /// assert_eq!((&buf[..], fds.len()), (&b"a file"[..], 1));
    /// let mut same = std::fs::File::from(fds.pop().unwrap());
    /// same.write_all(b"hello")?;
    /// file.rewind()?;
    /// let mut s = String::new();
    /// file.read_to_string(&mut s)?;
    /// assert_eq!(s, "hello");
    /// # fn tempfile_like() -> std::io::Result<std::fs::File> {
    /// #     let p = std::env::temp_dir().join(format!("mp-doc-{}", std::process::id()));
    /// #     let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p)?;
    /// #     std::fs::remove_file(&p)?;
    /// #     Ok(f)
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_bytes_with_fds(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), PipeSendError> {
        if fds.is_empty() {
            return self.send_bytes(bytes);
        }
        if !self.writable() {
            return Err(PipeSendError::WrongDirection);
        }
        check_fd_count(fds.len())?;
        let len = bytes.len() + 4;
        if len > self.max || len >= FD_FLAG as usize {
            return Err(PipeSendError::TooLarge { len, max: self.max });
        }
        let header = (len as u32 | FD_FLAG).to_le_bytes();
        let count = (fds.len() as u32).to_le_bytes();
        let mut g = lock(&self.wr);
        self.write_all_until(&mut g.st, &[&header, &count, bytes], None, fds)
    }

    /// Sends several raw messages in one write where the socket takes it (boundaries are kept).
    pub fn send_bytes_many<'a>(&self, msgs: impl IntoIterator<Item = &'a [u8]>) -> Result<(), PipeSendError> {
        if !self.writable() {
            return Err(PipeSendError::WrongDirection);
        }
        let mut g = lock(&self.wr);
        let Writer { buf, st } = &mut *g;
        buf.clear();
        for m in msgs {
            if m.len() > self.max || m.len() >= FD_FLAG as usize {
                return Err(PipeSendError::TooLarge {
                    len: m.len(),
                    max: self.max,
                });
            }
            buf.extend_from_slice(&(m.len() as u32).to_le_bytes());
            buf.extend_from_slice(m);
        }
        let res = self.write_all(st, &[&buf[..]]);
        shrink(buf);
        res
    }

    /// Writes `parts` completely (one `sendmsg` when the socket takes it all).
    fn write_all(&self, st: &mut WriteState, parts: &[&[u8]]) -> Result<(), PipeSendError> {
        self.write_all_until(st, parts, None, &[])
    }

    /// [`write_all`](Self::write_all), giving up at `deadline` (see [`PipeSendError::Timeout`]),
    /// with `fds` attached to the first byte. In ring mode the bytes go into the ring and the
    /// descriptors first onto the socket.
    fn write_all_until(
        &self,
        st: &mut WriteState,
        parts: &[&[u8]],
        deadline: Option<Instant>,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), PipeSendError> {
        match (&self.ring, st.ring.as_mut()) {
            (Some(link), Some(tx)) => {
                if st.shut || link.hup.load(Ordering::Acquire) {
                    return Err(PipeSendError::Closed);
                }
                let res = self.ring_write(link, tx, parts, deadline, fds);
                if let Err(Partial::Shut) = res {
                    st.shut = true;
                }
                res.map_err(Partial::into_error)
            }
            _ => self.sock_write(parts, deadline, fds),
        }
    }

    /// Ring mode: writes `parts` into the ring, after `fds` (with one byte) on the socket;
    /// waits for room as long as `deadline` allows.
    fn ring_write(
        &self,
        link: &RingLink,
        tx: &mut RingWriter,
        parts: &[&[u8]],
        deadline: Option<Instant>,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), Partial> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if deadline.is_some() && total <= link.cap {
            // With a deadline, a message the ring can hold is written only once it fits: a
            // timeout then leaves nothing of it behind (as on a socket).
            while tx.free().map_err(|e| Partial::Err(send_corrupt(e)))? < total {
                self.wake_reader(tx).map_err(Partial::Err)?;
                self.wait_room(link, tx, deadline, false, total)?;
            }
        }
        let mut started = false;
        if !fds.is_empty() {
            self.sock_write(&[&[0u8]], deadline, fds).map_err(Partial::Err)?;
            started = true;
        }
        for p in parts {
            let mut off = 0;
            while off < p.len() {
                let n = tx.write(&p[off..]).map_err(|e| Partial::Err(send_corrupt(e)))?;
                off += n;
                started |= n > 0;
                if off < p.len() {
                    // Full: the reader must know there is something (it may sleep), then
                    // this writer waits for room.
                    self.wake_reader(tx).map_err(Partial::Err)?;
                    self.wait_room(link, tx, deadline, started, 1)?;
                }
            }
        }
        self.wake_reader(tx).map_err(Partial::Err)
    }

    /// Ring mode, after publishing: rings the doorbell if the reader sleeps (or has gone: a
    /// closed end leaves its ring armed, and the doorbell then fails with `EPIPE`).
    fn wake_reader(&self, tx: &RingWriter) -> Result<(), PipeSendError> {
        if !tx.reader_needs_wake() {
            return Ok(());
        }
        match sys::io::ring_doorbell_checked(self.fd.as_fd()) {
            Ok(()) => Ok(()),
            Err(Errno::EPIPE | Errno::ECONNRESET) => Err(PipeSendError::Closed),
            Err(e) => Err(PipeSendError::Io(e)),
        }
    }

    /// Ring mode: the ring is full; waits until the reader made room (`need` bytes), the other
    /// end is gone (`Closed`) or `deadline` passes (`Timeout`; if part of the message is in the
    /// ring, the sending direction is shut down, as on a socket).
    fn wait_room(
        &self,
        link: &RingLink,
        tx: &RingWriter,
        deadline: Option<Instant>,
        started: bool,
        need: usize,
    ) -> Result<(), Partial> {
        let corrupt = |e| Partial::Err(send_corrupt(e));
        let mut contended = false;
        loop {
            if tx.announce_waiting_for(need).map_err(corrupt)? {
                return Ok(());
            }
            let mut slice = ROOM_SLICE;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    tx.withdraw_waiting();
                    return Err(if started {
                        let _ = sys::io::shutdown_write(self.fd.as_fd());
                        Partial::Shut
                    } else {
                        Partial::Err(PipeSendError::Timeout)
                    });
                }
                slice = slice.min(left);
            }
            if contended {
                // Another thread receives on this end and drains the socket: look again soon.
                std::thread::sleep(slice.min(Duration::from_millis(1)));
            } else {
                sys::io::poll_readable(&[self.fd.as_fd()], Some(slice))
                    .map_err(|e| Partial::Err(PipeSendError::Io(e)))?;
            }
            // Drain the socket (doorbells, descriptors for the reading side, end of file) if
            // no thread is receiving on this end right now.
            contended = match self.rd.try_lock() {
                Ok(mut rd) => {
                    let _ = self.pull(&mut rd);
                    false
                }
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    let _ = self.pull(&mut p.into_inner());
                    false
                }
                Err(std::sync::TryLockError::WouldBlock) => true,
            };
            if link.hup.load(Ordering::Acquire) {
                tx.withdraw_waiting();
                return Err(Partial::Err(PipeSendError::Closed));
            }
        }
    }

    /// Ring mode: reads the socket without waiting until it is empty: descriptors are kept in
    /// order, doorbell bytes dropped, end of file noted (here and in `hup`).
    fn pull(&self, rd: &mut Reader) -> Result<(), PipeRecvError> {
        let eof = pull_socket(self.fd.as_fd(), &mut rd.fds, &mut rd.fds_lost).map_err(PipeRecvError::Io)?;
        if eof {
            self.saw_eof(rd);
        }
        Ok(())
    }

    fn saw_eof(&self, rd: &mut Reader) {
        rd.eof = true;
        if let Some(l) = &self.ring {
            l.hup.store(true, Ordering::Release);
        }
    }

    /// Ring mode: before sleeping on the socket (`wait`, `poll`, `.await`): drains it, and
    /// arms the ring. `true`: a message, bytes of one, end of file or an error is ready now,
    /// do not sleep. Socket mode: whether a whole message or end of file is buffered.
    pub(crate) fn prepare_to_sleep(&self) -> bool {
        let mut rd = lock(&self.rd);
        if rd.eof || (rd.dec.buffered() > 0 && rd.dec.wanted() == 0) {
            return true;
        }
        if self.ring.is_none() || rd.ring.is_none() {
            return false;
        }
        if self.pull(&mut rd).is_err() || rd.eof {
            return true;
        }
        // Ready unless armed with the ring still empty (an error is ready: recv reports it).
        !matches!(rd.ring.as_ref().map(|r| r.0.arm()), Some(Ok(true)))
    }

    /// The socket path of [`write_all_until`](Self::write_all_until).
    fn sock_write(
        &self,
        parts: &[&[u8]],
        deadline: Option<Instant>,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), PipeSendError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut sent = 0;
        while sent < total {
            let want = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(self.timed_out(sent));
                    }
                    Some(left)
                }
                None => None,
            };
            {
                let mut cur = lock(&self.sndtimeo);
                if *cur != want {
                    sys::io::set_send_timeout(self.fd.as_fd(), want).map_err(PipeSendError::Io)?;
                    *cur = want;
                }
            }
            let mut skip = sent;
            let mut slices = Vec::with_capacity(parts.len());
            for p in parts {
                if skip >= p.len() {
                    skip -= p.len();
                    continue;
                }
                slices.push(IoSlice::new(&p[skip..]));
                skip = 0;
            }
            let attach = if sent == 0 { fds } else { &[] };
            if !attach.is_empty() && !sys::fd::is_unix_socket(self.fd.as_fd()) {
                return Err(not_unix());
            }
            match sys::io::send_vectored(self.fd.as_fd(), &slices, attach) {
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) if deadline.is_some() => return Err(self.timed_out(sent)),
                Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ETIMEDOUT) => return Err(PipeSendError::Closed),
                Err(Errno::EINVAL | Errno::EOPNOTSUPP) if !attach.is_empty() => return Err(not_unix()),
                Err(e) => return Err(PipeSendError::Io(e)),
            }
        }
        Ok(())
    }

    /// A send ran out of time after writing `sent` bytes of its message.
    fn timed_out(&self, sent: usize) -> PipeSendError {
        if sent > 0 {
            // The peer would wait forever for the rest of the message: end the stream instead.
            let _ = sys::io::shutdown_write(self.fd.as_fd());
        }
        PipeSendError::Timeout
    }

    /// [`send_bytes`](Self::send_bytes), waiting at most `timeout` for the peer to make room
    /// (see [`PipeSendError::Timeout`] for what a timeout leaves behind).
    pub fn send_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), PipeSendError> {
        if !self.writable() {
            return Err(PipeSendError::WrongDirection);
        }
        if bytes.len() > self.max || bytes.len() >= FD_FLAG as usize {
            return Err(PipeSendError::TooLarge {
                len: bytes.len(),
                max: self.max,
            });
        }
        let header = (bytes.len() as u32).to_le_bytes();
        let mut g = lock(&self.wr);
        self.write_all_until(&mut g.st, &[&header, bytes], Some(deadline_after(timeout)), &[])
    }

    // ----- receiving ----------------------------------------------------------------------

    /// Receives one raw message (Python's `recv_bytes`), blocking until it arrives.
    pub fn recv_bytes(&self) -> Result<Vec<u8>, PipeRecvError> {
        self.recv_frame(Mode::Until(None), |b, _| b.to_vec())
    }

    /// [`recv_bytes`](Self::recv_bytes) with a deadline ([`PipeRecvError::Timeout`]).
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, PipeRecvError> {
        self.recv_frame(mode_for(timeout), |b, _| b.to_vec())
    }

    /// A raw message if a whole one is waiting, else [`PipeRecvError::Empty`].
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, PipeRecvError> {
        self.recv_frame(Mode::Try, |b, _| b.to_vec())
    }

    /// Receives one raw message into `buf` (cleared first) and returns its length; avoids an
    /// allocation per message.
    pub fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize, PipeRecvError> {
        self.recv_frame(Mode::Until(None), |b, _| {
            buf.clear();
            buf.extend_from_slice(b);
            b.len()
        })
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into), also handing over the descriptors that came
    /// with the message in `fds` (replaced; empty for a message sent without any). Python's
    /// `reduction.recv_handle`. Example: [`send_bytes_with_fds`](Self::send_bytes_with_fds).
    pub fn recv_bytes_with_fds_into(&self, buf: &mut Vec<u8>, fds: &mut Vec<OwnedFd>) -> Result<usize, PipeRecvError> {
        self.recv_frame(Mode::Until(None), |b, got| {
            buf.clear();
            buf.extend_from_slice(b);
            *fds = got;
            b.len()
        })
    }

    /// [`recv_bytes_with_fds_into`](Self::recv_bytes_with_fds_into) if a whole message is
    /// waiting, else [`PipeRecvError::Empty`].
    ///
    /// ```
    /// use multiproc::pipe::{pipe, PipeRecvError};
    ///
    /// let (a, _b) = pipe::<()>()?;
    /// let (mut buf, mut fds) = (Vec::new(), Vec::new());
    /// assert!(matches!(a.try_recv_bytes_with_fds_into(&mut buf, &mut fds), Err(PipeRecvError::Empty)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv_bytes_with_fds_into(
        &self,
        buf: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
    ) -> Result<usize, PipeRecvError> {
        self.recv_frame(Mode::Try, |b, got| {
            buf.clear();
            buf.extend_from_slice(b);
            *fds = got;
            b.len()
        })
    }

    /// Is a message (or end of file) ready to be received? Waits up to `timeout` (`None`: no
    /// limit; zero: just check), and consumes nothing (Python's `poll`).
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, PipeRecvError> {
        if !self.readable() {
            return Err(PipeRecvError::WrongDirection);
        }
        if self.ready_now() {
            return Ok(true);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let root = runtime::is_started_root();
        let watch = crate::InterruptWatch::new();
        loop {
            if self.ring.is_some() && self.prepare_to_sleep() {
                return Ok(true);
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let slice = match (left, root) {
                (Some(l), true) => Some(l.min(INTERRUPT_SLICE)),
                (Some(l), false) => Some(l),
                (None, true) => Some(INTERRUPT_SLICE),
                (None, false) => None,
            };
            let ready = sys::io::poll_readable(&[self.fd.as_fd()], slice).map_err(PipeRecvError::Io)?;
            if !ready.is_empty() {
                if self.ring.is_some() {
                    // A doorbell, a descriptor batch or end of file: look (and drain) again.
                    continue;
                }
                return Ok(true);
            }
            if root && watch.fired() {
                return Err(PipeRecvError::Interrupted);
            }
            if left.is_some_and(|l| l.is_zero()) || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// A whole message or end of file is already buffered (ring mode: or bytes wait in the
    /// ring, or it is corrupt, which `recv` then reports).
    pub(crate) fn ready_now(&self) -> bool {
        let rd = lock(&self.rd);
        rd.eof
            || (rd.dec.buffered() > 0 && rd.dec.wanted() == 0)
            || rd
                .ring
                .as_ref()
                .is_some_and(|r| r.0.available().map_or(true, |n| n > 0))
    }

    /// Ring mode, `recv` found the ring empty: drains the socket, then (unless `Try`) arms the
    /// ring and sleeps on the socket until a doorbell, end of file, a descriptor batch, the
    /// deadline (`Timeout`) or a slice for Ctrl-C. `Ok(())`: look at the ring again.
    fn ring_sleep(
        &self,
        rd: &mut Reader,
        mode: Mode,
        root: bool,
        watch: &crate::InterruptWatch,
    ) -> Result<(), PipeRecvError> {
        self.pull(rd)?;
        if rd.eof {
            return Ok(());
        }
        let deadline = match mode {
            Mode::Try => return Err(PipeRecvError::Empty),
            Mode::Until(d) => d,
        };
        let left = match deadline {
            Some(d) => {
                let l = d.saturating_duration_since(Instant::now());
                if l.is_zero() {
                    return Err(PipeRecvError::Timeout);
                }
                Some(l)
            }
            None => None,
        };
        if let Some(rx) = rd.ring.as_ref() {
            if !rx.0.arm().map_err(recv_corrupt)? {
                return Ok(());
            }
        }
        let slice = match (left, root) {
            (Some(l), true) => Some(l.min(INTERRUPT_SLICE)),
            (Some(l), false) => Some(l),
            (None, true) => Some(INTERRUPT_SLICE),
            (None, false) => None,
        };
        let ready = sys::io::poll_readable(&[self.fd.as_fd()], slice).map_err(PipeRecvError::Io)?;
        if ready.is_empty() && root && watch.fired() {
            return Err(PipeRecvError::Interrupted);
        }
        Ok(())
    }

    /// Receives one frame and gives `f` its message and the descriptors that came with it.
    fn recv_frame<R>(&self, mode: Mode, f: impl FnOnce(&[u8], Vec<OwnedFd>) -> R) -> Result<R, PipeRecvError> {
        if !self.readable() {
            return Err(PipeRecvError::WrongDirection);
        }
        let root = runtime::is_started_root();
        let watch = crate::InterruptWatch::new();
        let mut guard = lock(&self.rd);
        let rd = &mut *guard;
        loop {
            match rd.dec.next_frame_flagged() {
                Ok(Some((body, false))) => return Ok(f(body, Vec::new())),
                Ok(Some((body, true))) => {
                    // The message is consumed whatever happens to its descriptors.
                    let Some((n, msg)) = body
                        .split_first_chunk::<4>()
                        .map(|(n, msg)| (u32::from_le_bytes(*n) as usize, msg))
                    else {
                        return Err(PipeRecvError::Decode(
                            "a message announced descriptors but has no count".into(),
                        ));
                    };
                    if n > rd.fds.len() && rd.ring.is_some() && !rd.fds_lost {
                        // Ring mode: the descriptors went onto the socket before their frame
                        // went into the ring, so they are there already.
                        match pull_socket(self.fd.as_fd(), &mut rd.fds, &mut rd.fds_lost) {
                            Ok(true) => {
                                rd.eof = true;
                                if let Some(l) = &self.ring {
                                    l.hup.store(true, Ordering::Release);
                                }
                            }
                            Ok(false) => {}
                            Err(e) => return Err(PipeRecvError::Io(e)),
                        }
                    }
                    if rd.fds_lost || n > rd.fds.len() {
                        rd.fds.clear();
                        rd.fds_lost = true;
                        return Err(PipeRecvError::Decode(format!(
                            "the {n} descriptor(s) sent with this message did not arrive (this process ran out of \
                             descriptors, or the peer sent descriptors it did not announce); the message was dropped"
                        )));
                    }
                    let fds: Vec<OwnedFd> = rd.fds.drain(..n).collect();
                    return Ok(f(msg, fds));
                }
                Ok(None) => {}
                Err(FrameError::Oversized { len, max }) => return Err(PipeRecvError::TooLarge { len, max }),
                Err(e) => return Err(PipeRecvError::Decode(e.to_string())),
            }
            if let Some(rx) = rd.ring.as_mut() {
                let n = rx.0.read_into(&mut rd.dec, usize::MAX).map_err(recv_corrupt)?;
                if n > 0 {
                    if rx.0.writer_needs_wake() {
                        sys::io::ring_doorbell(self.fd.as_fd());
                    }
                    continue;
                }
            }
            if rd.eof {
                // (Ring mode: end of file was seen before the ring was last found empty, so
                // everything written before the other end went away has been read.)
                return Err(PipeRecvError::Eof);
            }
            if rd.ring.is_some() {
                self.ring_sleep(rd, mode, root, &watch)?;
                continue;
            }
            let dont_wait = matches!(mode, Mode::Try);
            if let Mode::Until(deadline) = mode {
                let left = match deadline {
                    Some(d) => {
                        let l = d.saturating_duration_since(Instant::now());
                        if l.is_zero() {
                            return Err(PipeRecvError::Timeout);
                        }
                        Some(l)
                    }
                    None => None,
                };
                let want = match (left, root) {
                    (Some(l), true) => Some(l.min(INTERRUPT_SLICE)),
                    (Some(l), false) => Some(l),
                    (None, true) => Some(INTERRUPT_SLICE),
                    (None, false) => None,
                };
                if rd.timeo != Some(want) {
                    sys::io::set_recv_timeout(self.fd.as_fd(), want).map_err(PipeRecvError::Io)?;
                    rd.timeo = Some(want);
                }
            }
            let want = rd.dec.wanted().clamp(64 * 1024, 4 << 20);
            let buf = rd.dec.spare(want);
            match sys::io::recv_msg_with(self.fd.as_fd(), buf, dont_wait) {
                Ok(got) if got.bytes == 0 => {
                    rd.fds.extend(got.fds);
                    rd.eof = true;
                }
                Ok(got) => {
                    rd.dec.commit(got.bytes);
                    rd.fds_lost |= got.truncated;
                    rd.fds.extend(got.fds);
                    if rd.fds.len() > MAX_UNCLAIMED_FDS {
                        rd.fds.clear();
                        rd.fds_lost = true;
                    }
                }
                // `ETIMEDOUT`: TCP keep-alive gave up on a peer host that vanished.
                Err(Errno::ECONNRESET | Errno::ETIMEDOUT) => rd.eof = true,
                Err(Errno::EAGAIN) => {
                    if dont_wait {
                        return Err(PipeRecvError::Empty);
                    }
                    if root && watch.fired() {
                        return Err(PipeRecvError::Interrupted);
                    }
                }
                Err(e) => return Err(PipeRecvError::Io(e)),
            }
        }
    }
}

/// How a ring-mode write failed.
enum Partial {
    /// With nothing of the message left half-written.
    Err(PipeSendError),
    /// The deadline passed mid-message: the sending direction was shut down.
    Shut,
}

impl Partial {
    fn into_error(self) -> PipeSendError {
        match self {
            Partial::Err(e) => e,
            Partial::Shut => PipeSendError::Timeout,
        }
    }
}

fn send_corrupt(e: RingCorrupt) -> PipeSendError {
    PipeSendError::Corrupt(e.to_string())
}

fn recv_corrupt(e: RingCorrupt) -> PipeRecvError {
    PipeRecvError::Corrupt(e.to_string())
}

/// Ring mode: reads `sock` without waiting until it is empty, keeping descriptors (in order)
/// and dropping doorbell bytes. `Ok(true)` at end of file.
fn pull_socket(sock: BorrowedFd<'_>, fds: &mut VecDeque<OwnedFd>, fds_lost: &mut bool) -> Result<bool, Errno> {
    let mut scratch = [0u8; 256];
    loop {
        match sys::io::recv_msg_with(sock, &mut scratch, true) {
            Ok(got) => {
                *fds_lost |= got.truncated;
                fds.extend(got.fds);
                if fds.len() > MAX_UNCLAIMED_FDS {
                    fds.clear();
                    *fds_lost = true;
                }
                if got.bytes == 0 {
                    return Ok(true);
                }
            }
            Err(Errno::EAGAIN) => return Ok(false),
            Err(Errno::ECONNRESET | Errno::ETIMEDOUT) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(86400 * 365))
}

fn mode_for(timeout: Duration) -> Mode {
    if timeout.is_zero() {
        Mode::Try
    } else {
        Mode::Until(Instant::now().checked_add(timeout))
    }
}

fn shrink(buf: &mut Vec<u8>) {
    if buf.capacity() > 1 << 20 {
        *buf = Vec::new();
    }
}

impl<T: Serialize> Connection<T> {
    /// Sends a message. It is written completely before `send` returns; a message that cannot
    /// be serialised, or is over the maximum frame size, is an error and nothing is written.
    pub fn send(&self, msg: &T) -> Result<(), PipeSendError> {
        if !self.writable() {
            return Err(PipeSendError::WrongDirection);
        }
        let mut g = lock(&self.wr);
        let Writer { buf, st } = &mut *g;
        buf.clear();
        let mut fds = Vec::new();
        encode_msg(buf, msg, self.max, &mut fds)?;
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let res = self.write_all_until(st, &[&buf[..]], None, &borrowed);
        shrink(buf);
        res
    }

    /// [`send`](Self::send), waiting at most `timeout` for the peer to read enough to make
    /// room. On [`PipeSendError::Timeout`] nothing was sent if nothing could be written;
    /// otherwise the sending direction is shut down (see there).
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::pipe::{pipe, PipeSendError};
    ///
    /// let (a, _b) = pipe::<Vec<u8>>()?;
    /// let big = vec![0u8; 64 * 1024];
    /// // Nobody reads `_b`: the socket buffer fills up, and a send gives up in time.
    /// let err = loop {
    ///     if let Err(e) = a.send_timeout(&big, Duration::from_millis(50)) {
    ///         break e;
    ///     }
    /// };
    /// assert!(matches!(err, PipeSendError::Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_timeout(&self, msg: &T, timeout: Duration) -> Result<(), PipeSendError> {
        if !self.writable() {
            return Err(PipeSendError::WrongDirection);
        }
        let deadline = deadline_after(timeout);
        let mut g = lock(&self.wr);
        let Writer { buf, st } = &mut *g;
        buf.clear();
        let mut fds = Vec::new();
        encode_msg(buf, msg, self.max, &mut fds)?;
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let res = self.write_all_until(st, &[&buf[..]], Some(deadline), &borrowed);
        shrink(buf);
        res
    }

    /// Sends several messages in order, in one write where the socket takes it. If one cannot
    /// be encoded, nothing is sent.
    pub fn send_many<'a>(&self, msgs: impl IntoIterator<Item = &'a T>) -> Result<(), PipeSendError>
    where
        T: 'a,
    {
        if !self.writable() {
            return Err(PipeSendError::WrongDirection);
        }
        let mut g = lock(&self.wr);
        let Writer { buf, st } = &mut *g;
        buf.clear();
        let mut fds = Vec::new();
        for m in msgs {
            encode_msg(buf, m, self.max, &mut fds)?;
        }
        // All the messages' descriptors ride on the first byte of the write; each message
        // claims its own, in order.
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let res = self.write_all_until(st, &[&buf[..]], None, &borrowed);
        shrink(buf);
        res
    }
}

/// Appends one frame with `msg` to `buf`. Descriptors that the value attaches (a Connection,
/// a shared-memory segment) are appended to `fds`, and the frame then says so ([`FD_FLAG`] and
/// their number before the message).
fn encode_msg<T: Serialize>(
    buf: &mut Vec<u8>,
    msg: &T,
    max: usize,
    fds: &mut Vec<OwnedFd>,
) -> Result<(), PipeSendError> {
    let start = buf.len();
    let limit = max.min(FD_FLAG as usize - 1);
    let (res, got) = fdpass::collect(|| wire::encode_into(buf, msg, limit));
    res.map_err(|e| match e {
        FrameError::Oversized { len, max } => PipeSendError::TooLarge { len, max },
        other => PipeSendError::Encode(other.to_string()),
    })?;
    if got.is_empty() {
        return Ok(());
    }
    let len = buf.len() - start - wire::HEADER_LEN + 4;
    if len > limit {
        buf.truncate(start);
        return Err(PipeSendError::TooLarge { len, max });
    }
    if let Err(e) = check_fd_count(fds.len() + got.len()) {
        buf.truncate(start);
        return Err(e);
    }
    let at = start + wire::HEADER_LEN;
    buf.splice(at..at, (got.len() as u32).to_le_bytes());
    buf[start..at].copy_from_slice(&(len as u32 | FD_FLAG).to_le_bytes());
    fds.extend(got);
    Ok(())
}

/// Descriptors on a socket that cannot carry them (TCP).
fn not_unix() -> PipeSendError {
    PipeSendError::Encode(
        "the message carries descriptors (a Connection, a shared-memory Array or Value), and only a \
         Unix-socket connection can carry them (not TCP); nothing was sent"
            .into(),
    )
}

/// One write may carry at most [`sys::io::MAX_FDS_PER_MSG`] descriptors.
fn check_fd_count(count: usize) -> Result<(), PipeSendError> {
    if count > sys::io::MAX_FDS_PER_MSG {
        return Err(PipeSendError::TooManyDescriptors {
            count,
            max: sys::io::MAX_FDS_PER_MSG,
        });
    }
    Ok(())
}

/// The `.await` form (feature `tokio`).
#[cfg(feature = "tokio")]
impl<T: DeserializeOwned> Connection<T> {
    /// [`recv`](Self::recv) as a future: waits for bytes through tokio's reactor, never
    /// blocking the runtime thread. Cancel-safe: bytes read are kept in this end's buffer (a
    /// message is taken out only whole), so dropping the future loses nothing. Outside a tokio
    /// runtime with I/O enabled it fails with `PipeRecvError::Io(EINVAL)`.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let (a, b) = multiproc::pipe::<u32>()?;
    /// a.send(&5)?;
    /// assert_eq!(b.recv_async().await?, 5);
    /// # Ok(()) }
    /// ```
    pub async fn recv_async(&self) -> Result<T, PipeRecvError> {
        loop {
            match self.recv_frame(Mode::Try, decode_with) {
                Err(PipeRecvError::Empty) => {}
                other => return other?,
            }
            if self.ring.is_some() && self.prepare_to_sleep() {
                continue;
            }
            if let Err(e) = runtime::aio::readable(self.fd.as_fd()).await {
                return Err(PipeRecvError::Io(match e {
                    crate::error::CallError::Io(e) => e,
                    _ => Errno::EINVAL,
                }));
            }
        }
    }
}

impl<T: DeserializeOwned> Connection<T> {
    /// Receives the next message, blocking until one arrives. [`PipeRecvError::Eof`] once the
    /// other end is closed and everything it sent has been received.
    pub fn recv(&self) -> Result<T, PipeRecvError> {
        self.recv_frame(Mode::Until(None), decode_with)?
    }

    /// The next message if a whole one is waiting, else [`PipeRecvError::Empty`].
    pub fn try_recv(&self) -> Result<T, PipeRecvError> {
        self.recv_frame(Mode::Try, decode_with)?
    }

    /// Waits at most `timeout` for the next message ([`PipeRecvError::Timeout`]); a zero
    /// timeout does not wait (and reports `Empty`, as [`try_recv`](Self::try_recv)).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, PipeRecvError> {
        self.recv_frame(mode_for(timeout), decode_with)?
    }

    /// An iterator over received messages; it ends at end of file, or at the first error
    /// (which it yields).
    pub fn iter(&self) -> impl Iterator<Item = Result<T, PipeRecvError>> + '_ {
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            match self.recv() {
                Err(PipeRecvError::Eof) => None,
                Err(e) => {
                    done = true;
                    Some(Err(e))
                }
                ok => Some(ok),
            }
        })
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, PipeRecvError> {
    rmp_serde::from_slice(body).map_err(|e| PipeRecvError::Decode(e.to_string()))
}

/// Decodes a message with the descriptors that came with it available to its handles.
fn decode_with<T: DeserializeOwned>(body: &[u8], fds: Vec<OwnedFd>) -> Result<T, PipeRecvError> {
    if fds.is_empty() {
        return decode(body);
    }
    fdpass::with_incoming(fds, || decode(body))
}

impl<T> AsFd for Connection<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A connection is serialised by attaching a duplicate of its descriptor to the value being
/// sent (see [`runtime::fdpass`]); this works for a worker or Pool task argument, a message on
/// a pipe Connection, a Queue item and a mailbox message. Elsewhere (a Manager value, an `ask`
/// reply, `serde_json`) there is no way to carry the descriptor, and serialisation fails with an
/// error that says so.
impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let (buffered, fds) = {
            let rd = lock(&self.rd);
            (rd.dec.buffered(), rd.fds.len())
        };
        if buffered > 0 || fds > 0 {
            return Err(S::Error::custom(format!(
                "this pipe Connection has {buffered} bytes (and {fds} descriptors) received but not yet read; \
                 receive them before passing it on"
            )));
        }
        let dup =
            sys::fd::dup(self.fd.as_fd()).map_err(|e| S::Error::custom(format!("cannot duplicate the pipe: {e}")))?;
        let nowhere = || {
            S::Error::custom(
                "a pipe Connection can be sent to another process as a worker argument, a Pool task argument, \
                 inside a message on another pipe Connection, a Queue item or a mailbox message (its descriptor \
                 travels next to the bytes); it cannot go through a Manager, an ask reply, a remote manager's \
                 queue or another format (those carry bytes only)",
            )
        };
        let index = fdpass::attach(dup).ok_or_else(nowhere)?;
        // Ring mode: the rings' memory object travels too (a second descriptor), and is mapped
        // again on arrival. What the ring holds unread stays there for the new holder.
        let ring = match &self.ring {
            None => None,
            Some(l) => {
                let dup = sys::fd::dup(l.fd.as_fd())
                    .map_err(|e| S::Error::custom(format!("cannot duplicate the pipe's rings: {e}")))?;
                Some((fdpass::attach(dup).ok_or_else(nowhere)?, l.side, l.cap as u64))
            }
        };
        (index, self.dir, ring).serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (index, dir, ring) = <(u32, Direction, Option<(u32, u8, u64)>)>::deserialize(d)?;
        let missing = || {
            D::Error::custom(
                "the descriptor of a pipe Connection did not arrive with the value (it was not sent as a worker or \
                 Pool task argument, on a pipe Connection, through a Queue or a mailbox)",
            )
        };
        let fd = fdpass::take(index).ok_or_else(missing)?;
        let Some((rindex, side, cap)) = ring else {
            return Ok(Connection::from_fd(fd, dir));
        };
        let rfd = fdpass::take(rindex).ok_or_else(missing)?;
        if usize::from(side) > 1 {
            return Err(D::Error::custom("a pipe Connection with a bad ring side"));
        }
        let mem = runtime::ring::open(&rfd, cap)
            .map_err(|e| D::Error::custom(format!("cannot map the rings of a received pipe Connection: {e}")))?;
        Ok(Connection::with_ring(fd, dir, Arc::new(rfd), mem, side))
    }
}

/// Creates a connected pair of ends.
///
/// With rings on (the default; `MULTIPROC_TRANSPORT=socket` turns them off) the pair also gets
/// one ring object; if it cannot be made (no shared memory here), the pair stays on its socket.
pub(crate) fn pair<T>(duplex: bool) -> Result<(Connection<T>, Connection<T>), Errno> {
    pair_with(duplex, wire::ring::rings_enabled())
}

/// [`pair`], with or without rings.
fn pair_with<T>(duplex: bool, rings: bool) -> Result<(Connection<T>, Connection<T>), Errno> {
    let (a, b) = sys::fd::socketpair()?;
    let (da, db) = if duplex {
        (Direction::Both, Direction::Both)
    } else {
        (Direction::Read, Direction::Write)
    };
    let rings = if rings {
        runtime::ring::create(PIPE_RING_BYTES).ok()
    } else {
        None
    };
    Ok(match rings {
        Some((fd, mem)) => {
            let fd = Arc::new(fd);
            (
                Connection::with_ring(a, da, fd.clone(), mem.clone(), wire::ring::C2H as u8),
                Connection::with_ring(b, db, fd, mem, wire::ring::H2C as u8),
            )
        }
        None => (Connection::from_fd(a, da), Connection::from_fd(b, db)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_eof_in_process() {
        let (a, b) = pair::<String>(true).unwrap();
        a.send_bytes(b"").unwrap();
        a.send(&"x".to_string()).unwrap();
        a.send_bytes(&[7; 100_000]).unwrap();
        assert_eq!(b.recv_bytes().unwrap(), Vec::<u8>::new());
        assert_eq!(b.recv().unwrap(), "x");
        assert_eq!(b.recv_bytes().unwrap(), vec![7; 100_000]);
        assert!(matches!(b.try_recv(), Err(PipeRecvError::Empty)));
        drop(a);
        assert!(matches!(b.recv(), Err(PipeRecvError::Eof)));
    }

    #[test]
    fn simplex_direction() {
        let (r, w) = pair::<u8>(false).unwrap();
        assert!(matches!(r.send(&1), Err(PipeSendError::WrongDirection)));
        assert!(matches!(w.recv(), Err(PipeRecvError::WrongDirection)));
        w.send(&3).unwrap();
        assert_eq!(r.recv().unwrap(), 3);
    }

    #[test]
    fn serialising_outside_a_task_fails() {
        let (a, _b) = pair::<u8>(true).unwrap();
        let err = rmp_serde::to_vec(&a).unwrap_err().to_string();
        assert!(err.contains("worker argument, a Pool task argument"), "{err}");
        assert!(err.contains("cannot go through a Manager"), "{err}");
    }

    #[test]
    fn a_connection_travels_inside_a_message_on_another() {
        let (a, b) = pair::<Vec<Connection<String>>>(true).unwrap();
        let (x1, y1) = pair::<String>(true).unwrap();
        let (x2, y2) = pair::<String>(true).unwrap();
        // Plain messages around it keep their places.
        a.send(&Vec::new()).unwrap();
        a.send_many([&vec![y1], &vec![y2]]).unwrap();
        assert!(b.recv().unwrap().is_empty());
        let mut got = b.recv().unwrap();
        got.extend(b.recv().unwrap());
        assert_eq!(got.len(), 2);
        x1.send(&"one".to_string()).unwrap();
        got[1].send(&"back".to_string()).unwrap();
        assert_eq!(got[0].recv().unwrap(), "one");
        assert_eq!(x2.recv().unwrap(), "back");
        // The raw form: descriptors with bytes.
        let (r, w) = pair::<()>(true).unwrap();
        // (A raw descriptor is the socket alone: a socket-mode pair.)
        let (p, q) = pair_with::<u8>(true, false).unwrap();
        w.send_bytes_with_fds(b"hello", &[q.as_fd()]).unwrap();
        w.send_bytes(b"plain").unwrap();
        let (mut buf, mut fds) = (Vec::new(), Vec::new());
        r.recv_bytes_with_fds_into(&mut buf, &mut fds).unwrap();
        assert_eq!((&buf[..], fds.len()), (&b"hello"[..], 1));
        let mut none = Vec::new();
        r.try_recv_bytes_with_fds_into(&mut buf, &mut none).unwrap();
        assert_eq!((&buf[..], none.len()), (&b"plain"[..], 0));
        // The received descriptor is the same socket as `q`.
        drop(q);
        let q2 = Connection::<u8>::from_fd(fds.pop().unwrap(), Direction::Both);
        p.send(&5).unwrap();
        assert_eq!(q2.recv().unwrap(), 5);
    }

    #[test]
    fn too_many_descriptors_are_refused_before_sending() {
        let (a, b) = pair::<Vec<Connection<u8>>>(true).unwrap();
        let mut ends = Vec::new();
        for _ in 0..(sys::io::MAX_FDS_PER_MSG / 2 + 1) {
            let (x, y) = pair::<u8>(true).unwrap();
            ends.push(x);
            ends.push(y);
        }
        // Each end is one descriptor, two in ring mode (its socket and its rings).
        let per = if ends[0].uses_ring() { 2 } else { 1 };
        match a.send(&ends) {
            Err(PipeSendError::TooManyDescriptors { count, max }) => {
                assert_eq!((count, max), (ends.len() * per, sys::io::MAX_FDS_PER_MSG))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(b.try_recv(), Err(PipeRecvError::Empty)));
        ends.truncate(sys::io::MAX_FDS_PER_MSG / per);
        a.send(&ends).unwrap();
        assert_eq!(b.recv().unwrap().len(), sys::io::MAX_FDS_PER_MSG / per);
    }

    #[test]
    fn rings_carry_big_and_small_messages_and_eof() {
        let (a, b) = pair_with::<Vec<u8>>(true, true).unwrap();
        assert!(a.uses_ring() && b.uses_ring());
        let t = std::thread::spawn(move || {
            for i in 0..200usize {
                a.send(&vec![i as u8; (i * 97) % 300_000]).unwrap();
            }
        });
        for i in 0..200usize {
            assert_eq!(b.recv().unwrap(), vec![i as u8; (i * 97) % 300_000]);
        }
        t.join().unwrap();
        assert!(matches!(b.recv(), Err(PipeRecvError::Eof)));
    }

    #[test]
    fn a_full_ring_times_out_and_a_closed_reader_is_seen() {
        let (a, b) = pair_with::<Vec<u8>>(true, true).unwrap();
        let big = vec![1u8; 40_000];
        let err = loop {
            if let Err(e) = a.send_timeout(&big, Duration::from_millis(30)) {
                break e;
            }
        };
        assert!(matches!(err, PipeSendError::Timeout), "{err:?}");
        drop(b);
        assert!(matches!(a.send(&vec![]), Err(PipeSendError::Closed)));
        let (a, b) = pair_with::<u8>(false, true).unwrap();
        drop(a);
        assert!(matches!(b.send(&1), Err(PipeSendError::Closed)));
    }
}
