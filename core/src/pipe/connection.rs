//! One end of a pipe: a stream socket carrying frames (`u32` little-endian length + body).

use std::io::IoSlice;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{PipeRecvError, PipeSendError};
use crate::runtime::{self, fdpass};
use crate::sys::{self, Errno};
use crate::wire::{self, FrameDecoder, FrameError};

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
/// concurrent receivers each get whole messages.
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
    wr: Mutex<Vec<u8>>,
    /// The send timeout currently set on the socket (`None`: none). Only touched with `wr` held.
    sndtimeo: Mutex<Option<Duration>>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd)
            .field("direction", &self.dir)
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
                dec: FrameDecoder::new(max),
                eof: false,
                timeo: None,
            }),
            wr: Mutex::new(Vec::new()),
            sndtimeo: Mutex::new(None),
            _t: PhantomData,
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
        if lock(&self.rd).dec.buffered() > 0 {
            return None;
        }
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
        if bytes.len() > self.max || bytes.len() > u32::MAX as usize {
            return Err(PipeSendError::TooLarge {
                len: bytes.len(),
                max: self.max,
            });
        }
        let header = (bytes.len() as u32).to_le_bytes();
        let _w = lock(&self.wr);
        self.write_all(&[&header, bytes])
    }

    /// Sends several raw messages in one write where the socket takes it (boundaries are kept).
    pub fn send_bytes_many<'a>(&self, msgs: impl IntoIterator<Item = &'a [u8]>) -> Result<(), PipeSendError> {
        if !self.writable() {
            return Err(PipeSendError::WrongDirection);
        }
        let mut buf = lock(&self.wr);
        buf.clear();
        for m in msgs {
            if m.len() > self.max || m.len() > u32::MAX as usize {
                return Err(PipeSendError::TooLarge {
                    len: m.len(),
                    max: self.max,
                });
            }
            buf.extend_from_slice(&(m.len() as u32).to_le_bytes());
            buf.extend_from_slice(m);
        }
        let res = self.write_all(&[&buf[..]]);
        shrink(&mut buf);
        res
    }

    /// Writes `parts` completely (one `sendmsg` when the socket takes it all).
    fn write_all(&self, parts: &[&[u8]]) -> Result<(), PipeSendError> {
        self.write_all_until(parts, None)
    }

    /// [`write_all`](Self::write_all), giving up at `deadline` (see [`PipeSendError::Timeout`]).
    fn write_all_until(&self, parts: &[&[u8]], deadline: Option<Instant>) -> Result<(), PipeSendError> {
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
            match sys::io::send_vectored(self.fd.as_fd(), &slices, &[]) {
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) if deadline.is_some() => return Err(self.timed_out(sent)),
                Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => return Err(PipeSendError::Closed),
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
        if bytes.len() > self.max || bytes.len() > u32::MAX as usize {
            return Err(PipeSendError::TooLarge {
                len: bytes.len(),
                max: self.max,
            });
        }
        let header = (bytes.len() as u32).to_le_bytes();
        let _w = lock(&self.wr);
        self.write_all_until(&[&header, bytes], Some(deadline_after(timeout)))
    }

    // ----- receiving ----------------------------------------------------------------------

    /// Receives one raw message (Python's `recv_bytes`), blocking until it arrives.
    pub fn recv_bytes(&self) -> Result<Vec<u8>, PipeRecvError> {
        self.recv_frame(Mode::Until(None), |b| b.to_vec())
    }

    /// [`recv_bytes`](Self::recv_bytes) with a deadline ([`PipeRecvError::Timeout`]).
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, PipeRecvError> {
        self.recv_frame(mode_for(timeout), |b| b.to_vec())
    }

    /// A raw message if a whole one is waiting, else [`PipeRecvError::Empty`].
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, PipeRecvError> {
        self.recv_frame(Mode::Try, |b| b.to_vec())
    }

    /// Receives one raw message into `buf` (cleared first) and returns its length; avoids an
    /// allocation per message.
    pub fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize, PipeRecvError> {
        self.recv_frame(Mode::Until(None), |b| {
            buf.clear();
            buf.extend_from_slice(b);
            b.len()
        })
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into) if a whole message is waiting, else
    /// [`PipeRecvError::Empty`].
    pub(crate) fn try_recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize, PipeRecvError> {
        self.recv_frame(Mode::Try, |b| {
            buf.clear();
            buf.extend_from_slice(b);
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
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let slice = match (left, root) {
                (Some(l), true) => Some(l.min(INTERRUPT_SLICE)),
                (Some(l), false) => Some(l),
                (None, true) => Some(INTERRUPT_SLICE),
                (None, false) => None,
            };
            let ready = sys::io::poll_readable(&[self.fd.as_fd()], slice).map_err(PipeRecvError::Io)?;
            if !ready.is_empty() {
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

    /// A whole message or end of file is already buffered.
    pub(crate) fn ready_now(&self) -> bool {
        let rd = lock(&self.rd);
        rd.eof || (rd.dec.buffered() > 0 && rd.dec.wanted() == 0)
    }

    fn recv_frame<R>(&self, mode: Mode, f: impl FnOnce(&[u8]) -> R) -> Result<R, PipeRecvError> {
        if !self.readable() {
            return Err(PipeRecvError::WrongDirection);
        }
        let root = runtime::is_started_root();
        let watch = crate::InterruptWatch::new();
        let mut rd = lock(&self.rd);
        loop {
            match rd.dec.next_frame() {
                Ok(Some(body)) => return Ok(f(body)),
                Ok(None) => {}
                Err(FrameError::Oversized { len, max }) => return Err(PipeRecvError::TooLarge { len, max }),
                Err(e) => return Err(PipeRecvError::Decode(e.to_string())),
            }
            if rd.eof {
                return Err(PipeRecvError::Eof);
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
            match sys::io::recv_into(self.fd.as_fd(), buf, dont_wait) {
                Ok(0) | Err(Errno::ECONNRESET) => rd.eof = true,
                Ok(n) => rd.dec.commit(n),
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
        let mut buf = lock(&self.wr);
        buf.clear();
        encode_msg(&mut buf, msg, self.max)?;
        let res = self.write_all(&[&buf[..]]);
        shrink(&mut buf);
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
        let mut buf = lock(&self.wr);
        buf.clear();
        encode_msg(&mut buf, msg, self.max)?;
        let res = self.write_all_until(&[&buf[..]], Some(deadline));
        shrink(&mut buf);
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
        let mut buf = lock(&self.wr);
        buf.clear();
        for m in msgs {
            encode_msg(&mut buf, m, self.max)?;
        }
        let res = self.write_all(&[&buf[..]]);
        shrink(&mut buf);
        res
    }
}

fn encode_msg<T: Serialize>(buf: &mut Vec<u8>, msg: &T, max: usize) -> Result<(), PipeSendError> {
    wire::encode_into(buf, msg, max).map_err(|e| match e {
        FrameError::Oversized { len, max } => PipeSendError::TooLarge { len, max },
        other => PipeSendError::Encode(other.to_string()),
    })
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
            match self.recv_frame(Mode::Try, decode) {
                Err(PipeRecvError::Empty) => {}
                other => return other?,
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
        self.recv_frame(Mode::Until(None), decode)?
    }

    /// The next message if a whole one is waiting, else [`PipeRecvError::Empty`].
    pub fn try_recv(&self) -> Result<T, PipeRecvError> {
        self.recv_frame(Mode::Try, decode)?
    }

    /// Waits at most `timeout` for the next message ([`PipeRecvError::Timeout`]); a zero
    /// timeout does not wait (and reports `Empty`, as [`try_recv`](Self::try_recv)).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, PipeRecvError> {
        self.recv_frame(mode_for(timeout), decode)?
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

impl<T> AsFd for Connection<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A connection is serialised by attaching a duplicate of its descriptor to the value being
/// sent (see [`runtime::fdpass`]); this works when it is a worker argument. Elsewhere (a queue
/// item, `serde_json`) there is no way to carry the descriptor, and serialisation fails with an
/// error that says so.
impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let buffered = lock(&self.rd).dec.buffered();
        if buffered > 0 {
            return Err(S::Error::custom(format!(
                "this pipe Connection has {buffered} bytes received but not yet read; receive them before passing it on"
            )));
        }
        let dup =
            sys::fd::dup(self.fd.as_fd()).map_err(|e| S::Error::custom(format!("cannot duplicate the pipe: {e}")))?;
        let index = fdpass::attach(dup).ok_or_else(|| {
            S::Error::custom(
                "a pipe Connection can only be sent to another process as a worker argument \
                 (its descriptor travels next to the task); it cannot be put in a queue, a message or another format",
            )
        })?;
        (index, self.dir).serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (index, dir) = <(u32, Direction)>::deserialize(d)?;
        let fd = fdpass::take(index).ok_or_else(|| {
            D::Error::custom(
                "the descriptor of a pipe Connection did not arrive (it was not sent as a worker argument)",
            )
        })?;
        Ok(Connection::from_fd(fd, dir))
    }
}

/// Creates a connected pair of ends.
pub(crate) fn pair<T>(duplex: bool) -> Result<(Connection<T>, Connection<T>), Errno> {
    let (a, b) = sys::fd::socketpair()?;
    Ok(if duplex {
        (
            Connection::from_fd(a, Direction::Both),
            Connection::from_fd(b, Direction::Both),
        )
    } else {
        (
            Connection::from_fd(a, Direction::Read),
            Connection::from_fd(b, Direction::Write),
        )
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
        assert!(err.contains("worker argument"), "{err}");
    }
}
