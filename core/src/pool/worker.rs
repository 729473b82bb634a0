//! The worker side of a pool: the messages on a worker's pipe and the loop a worker runs.
//!
//! Parent → worker: one message per chunk (a worker name and the encoded arguments of each
//! task). Worker → parent: one `done` message per chunk, with an outcome per task, in order;
//! or `init failed` once if the initializer failed. A worker handles one chunk at a time,
//! strictly in order, so the parent always knows which chunk is running.
//!
//! A chunk counts as *started* only once the worker has said so: `started` when it read the
//! chunk after waiting for it, or the `done` of the previous chunk sent as `done, next
//! started` when the next chunk was already there. A chunk sent to a worker that dies before
//! starting it (killed while idle, say) is therefore run elsewhere, never failed; and a busy
//! worker pays no extra message.

use std::os::fd::OwnedFd;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

use super::error::PoolError;
use crate::pipe::Connection;
use crate::runtime::fdpass;

// The messages are a compact binary layout rather than MessagePack envelopes, so that a chunk
// is built by appending each task's encoded arguments once and read back without copying:
//
//   chunk:  name_len: u16 LE, name, count: u32 LE, then per task: len: u32 LE, nfds: u32 LE,
//           args (the task's descriptors, `nfds` of them, travel with the message, in task
//           order: SCM_RIGHTS on the pipe, at most MAX_FDS_PER_MSG per chunk)
//   done:   0u8, count: u32 LE, then per task: kind: u8, len: u32 LE, bytes
//           (kind 0: the encoded result; 1: a panic, MessagePack (message, location);
//            2: a failure message, UTF-8;
//            3: too large to send: bytes: u64 LE, max: u64 LE;
//            4: the initializer failed (relayed by the MPI backend), the message, UTF-8)
//   init failed: 1u8, the message, UTF-8
//   done, next started: 2u8, then as `done`
//   started: 3u8

const DONE: u8 = 0;
const INIT_FAILED: u8 = 1;
const DONE_NEXT_STARTED: u8 = 2;
const STARTED: u8 = 3;
const OK: u8 = 0;
const PANICKED: u8 = 1;
const FAILED: u8 = 2;
const TOO_LARGE: u8 = 3;
/// Only in reports relayed by the MPI backend: the rank's local pool is broken by its
/// initializer (the message, UTF-8).
const INIT_BROKEN: u8 = 4;
/// Only in reports relayed by the MPI backend: the task ran past its deadline in the rank's
/// local pool (the killed worker's pid, `i32` LE, then the deadline in µs, `u64` LE).
const TIMED_OUT: u8 = 5;

/// Builds the message of one chunk, task by task.
pub(crate) struct ChunkBuf {
    body: Vec<u8>,
    count: u32,
    count_at: usize,
}

impl ChunkBuf {
    /// A chunk of `worker`'s tasks, built in `body` (emptied first; its capacity is kept).
    pub fn new(worker: &str, mut body: Vec<u8>) -> ChunkBuf {
        body.clear();
        body.reserve(64 + worker.len());
        let name = &worker.as_bytes()[..worker.len().min(u16::MAX as usize)];
        body.extend_from_slice(&(name.len() as u16).to_le_bytes());
        body.extend_from_slice(name);
        let count_at = body.len();
        body.extend_from_slice(&0u32.to_le_bytes());
        ChunkBuf {
            body,
            count: 0,
            count_at,
        }
    }

    /// The bytes each task adds besides its arguments.
    pub const TASK_HEADER: usize = 8;

    /// Reserves room for `bytes` more bytes of tasks.
    pub fn reserve(&mut self, bytes: usize) {
        self.body.reserve(bytes);
    }

    /// Appends a task whose arguments carry `nfds` descriptors (sent with the chunk).
    #[inline]
    pub fn push(&mut self, args: &[u8], nfds: usize) {
        self.push_header(args.len(), nfds);
        self.body.extend_from_slice(args);
        self.count += 1;
    }

    /// [`push`](Self::push) for arguments held in a fixed-size buffer, of which the first
    /// `len` bytes count: the whole buffer is copied (a copy of known size, without a call of
    /// `memcpy`), then the rest is cut off.
    #[inline]
    pub fn push_fixed<const N: usize>(&mut self, buf: &[u8; N], len: usize, nfds: usize) {
        let len = len.min(N);
        self.push_header(len, nfds);
        let at = self.body.len();
        self.body.extend_from_slice(buf);
        self.body.truncate(at + len);
        self.count += 1;
    }

    #[inline]
    fn push_header(&mut self, len: usize, nfds: usize) {
        let header = (len as u32 as u64) | ((nfds as u32 as u64) << 32);
        self.body.extend_from_slice(&header.to_le_bytes());
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// The message and its number of tasks.
    pub fn finish(mut self) -> (Vec<u8>, usize) {
        self.body[self.count_at..self.count_at + 4].copy_from_slice(&self.count.to_le_bytes());
        (self.body, self.count as usize)
    }
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Some(h)
}

fn take_u32(b: &mut &[u8]) -> Option<usize> {
    let h = take(b, 4)?;
    Some(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize)
}

/// Each task of a chunk: its encoded arguments and how many descriptors they carry.
type ChunkTasks<'a> = Vec<(&'a [u8], usize)>;

/// Reads a chunk message: the worker name and each task's arguments with its number of
/// descriptors.
pub(crate) fn parse_chunk(mut b: &[u8]) -> Option<(&str, ChunkTasks<'_>)> {
    let h = take(&mut b, 2)?;
    let nlen = u16::from_le_bytes([h[0], h[1]]) as usize;
    let name = std::str::from_utf8(take(&mut b, nlen)?).ok()?;
    let count = take_u32(&mut b)?;
    let mut args = Vec::with_capacity(count.min(b.len() / 8));
    for _ in 0..count {
        let len = take_u32(&mut b)?;
        let nfds = take_u32(&mut b)?;
        args.push((take(&mut b, len)?, nfds));
    }
    Some((name, args))
}

/// A descriptor as a worker argument: it travels next to the task (`SCM_RIGHTS`, see
/// `runtime::fdpass`), a duplicate each time it is serialised. The initializer's descriptors
/// reach every worker this way.
pub(crate) struct PassFd(pub OwnedFd);

impl Serialize for PassFd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let dup = self
            .0
            .try_clone()
            .map_err(|e| S::Error::custom(format!("cannot duplicate a descriptor: {e}")))?;
        let index = fdpass::attach(dup).ok_or_else(|| S::Error::custom("a descriptor outside a task"))?;
        index.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PassFd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let index = u32::deserialize(d)?;
        fdpass::take(index)
            .map(PassFd)
            .ok_or_else(|| D::Error::custom("a descriptor of the initializer did not arrive"))
    }
}

/// A message from a worker, read without copying the results.
pub(crate) enum FromWorker<'a> {
    /// The outcomes of the chunk that was running, one per task, and whether the next chunk
    /// has started.
    Done(DoneIter<'a>, bool),
    /// The worker started the chunk it was sent (it had been waiting for it).
    Started,
    /// The initializer failed; the worker exits.
    InitFailed(String),
}

/// The outcomes of a `done` message, read one at a time from the message itself (no vector
/// of outcomes is built: a chunk of a `map` holds thousands). Made only by
/// [`parse_from_worker`], which has checked the whole layout, so `next` never meets a short
/// read.
#[derive(Clone)]
pub(crate) struct DoneIter<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> DoneIter<'a> {
    /// Checks the outcomes' layout: `count` well-formed outcomes (anything after them is
    /// ignored, as before).
    fn check(mut b: &'a [u8], count: usize) -> Option<DoneIter<'a>> {
        let all = b;
        for _ in 0..count {
            take(&mut b, 1)?;
            let len = take_u32(&mut b)?;
            take(&mut b, len)?;
        }
        Some(DoneIter { rest: all, left: count })
    }
}

impl<'a> Iterator for DoneIter<'a> {
    type Item = Result<&'a [u8], PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let kind = take(&mut self.rest, 1)?[0];
        let len = take_u32(&mut self.rest)?;
        let bytes = take(&mut self.rest, len)?;
        Some(match kind {
            OK => Ok(bytes),
            PANICKED => {
                let (message, location): (String, Option<String>) = rmp_serde::from_slice(bytes)
                    .unwrap_or_else(|_| ("a panic (its report could not be read)".into(), None));
                Err(PoolError::Panicked { message, location })
            }
            TOO_LARGE if bytes.len() == 16 => {
                let (b, m) = bytes.split_at(8);
                Err(PoolError::ResultTooLarge {
                    bytes: u64::from_le_bytes(b.try_into().unwrap_or_default()),
                    max: u64::from_le_bytes(m.try_into().unwrap_or_default()),
                })
            }
            INIT_BROKEN => Err(PoolError::InitializerFailed(
                String::from_utf8_lossy(bytes).into_owned(),
            )),
            TIMED_OUT if bytes.len() == 12 => {
                let (p, d) = bytes.split_at(4);
                Err(PoolError::TimedOut {
                    pid: i32::from_le_bytes(p.try_into().unwrap_or_default()),
                    deadline: Duration::from_micros(u64::from_le_bytes(d.try_into().unwrap_or_default())),
                })
            }
            _ => Err(PoolError::Failed(String::from_utf8_lossy(bytes).into_owned())),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for DoneIter<'_> {}

/// Reads a worker's message; `None` if it is malformed.
pub(crate) fn parse_from_worker(mut b: &[u8]) -> Option<FromWorker<'_>> {
    match take(&mut b, 1)?[0] {
        STARTED => Some(FromWorker::Started),
        kind @ (DONE | DONE_NEXT_STARTED) => {
            let count = take_u32(&mut b)?;
            Some(FromWorker::Done(DoneIter::check(b, count)?, kind == DONE_NEXT_STARTED))
        }
        INIT_FAILED => Some(FromWorker::InitFailed(String::from_utf8_lossy(b).into_owned())),
        _ => None,
    }
}

fn push_outcome(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Makes a `done` message fit in one frame of `max` bytes: each result that does not fit in
/// what is left becomes a `too large` outcome (the task fails with `ResultTooLarge`), so the
/// worker never dies of its own report and the other tasks keep their results.
fn fit_report(out: &mut Vec<u8>, max: usize) {
    if out.len() <= max {
        return;
    }
    let Some(FromWorker::Done(_, _)) = parse_from_worker(out) else {
        return;
    };
    let mut b: &[u8] = &out[1..];
    let Some(count) = take_u32(&mut b) else { return };
    let mut fitted = Vec::with_capacity(max.min(out.len()));
    fitted.push(out[0]);
    fitted.extend_from_slice(&(count as u32).to_le_bytes());
    for _ in 0..count {
        let (Some(kind), Some(len)) = (take(&mut b, 1).map(|k| k[0]), take_u32(&mut b)) else {
            return;
        };
        let Some(bytes) = take(&mut b, len) else { return };
        // Room for this outcome, and for a `too large` outcome for each task after it.
        if fitted.len() + 5 + len <= max.saturating_sub(21 * count) {
            push_outcome(&mut fitted, kind, bytes);
        } else {
            let mut note = Vec::with_capacity(16);
            note.extend_from_slice(&((fitted.len() + 5 + len) as u64).to_le_bytes());
            note.extend_from_slice(&(max as u64).to_le_bytes());
            push_outcome(&mut fitted, TOO_LARGE, &note);
        }
    }
    *out = fitted;
}

/// Writes a `done` report of already known outcomes (the MPI backend relays the outcomes of a
/// rank's local pool this way). A panic, a too-large result, a failed initializer and a task
/// past its deadline keep their kinds; other errors travel as failure messages, with
/// `context` appended (which rank, say).
#[cfg(feature = "mpi")]
pub(crate) fn encode_report(
    outcomes: &mut dyn ExactSizeIterator<Item = Result<&[u8], PoolError>>,
    context: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + 16 * outcomes.len());
    out.push(DONE);
    out.extend_from_slice(&(outcomes.len() as u32).to_le_bytes());
    for o in outcomes {
        match o {
            Ok(bytes) => push_outcome(&mut out, OK, bytes),
            Err(PoolError::Panicked { message, location }) => {
                let bytes = rmp_serde::to_vec(&(&message, &location)).unwrap_or_default();
                push_outcome(&mut out, PANICKED, &bytes);
            }
            Err(PoolError::ResultTooLarge { bytes, max }) => {
                let mut note = Vec::with_capacity(16);
                note.extend_from_slice(&bytes.to_le_bytes());
                note.extend_from_slice(&max.to_le_bytes());
                push_outcome(&mut out, TOO_LARGE, &note);
            }
            Err(PoolError::InitializerFailed(m)) => {
                push_outcome(&mut out, INIT_BROKEN, format!("{m}{context}").as_bytes())
            }
            Err(PoolError::TimedOut { pid, deadline }) => {
                let mut note = Vec::with_capacity(12);
                note.extend_from_slice(&pid.to_le_bytes());
                let micros = u64::try_from(deadline.as_micros()).unwrap_or(u64::MAX);
                note.extend_from_slice(&micros.to_le_bytes());
                push_outcome(&mut out, TIMED_OUT, &note);
            }
            Err(e) => push_outcome(&mut out, FAILED, format!("{e}{context}").as_bytes()),
        }
    }
    out
}

/// Runs every task of a chunk through the registered worker, catching panics, and writes the
/// `done` message into `out`. `fds` are the chunk's descriptors, handed to the tasks in order
/// (each gets as many as it announced).
pub(crate) fn run_chunk(name: &str, args: &[(&[u8], usize)], fds: Vec<OwnedFd>, out: &mut Vec<u8>) {
    out.clear();
    out.push(DONE);
    out.extend_from_slice(&(args.len() as u32).to_le_bytes());
    let entry = match crate::__private::find_worker(name) {
        Ok(e) => e,
        Err(e) => {
            for _ in args {
                push_outcome(out, FAILED, e.0.as_bytes());
            }
            return;
        }
    };
    let mut fds = fds.into_iter();
    for &(a, nfds) in args {
        let mine: Vec<OwnedFd> = fds.by_ref().take(nfds).collect();
        if mine.len() < nfds {
            let why = format!(
                "{nfds} descriptor(s) of this task did not arrive in the worker (it may be out of descriptors)"
            );
            push_outcome(out, FAILED, why.as_bytes());
            continue;
        }
        // The value is encoded straight into the report, behind its outcome header, whose
        // length is filled in afterwards.
        let at = out.len();
        out.push(OK);
        out.extend_from_slice(&[0; 4]);
        let ran = if mine.is_empty() {
            crate::__private::run_caught(entry, a, out)
        } else {
            fdpass::with_incoming(mine, || crate::__private::run_caught(entry, a, out))
        };
        if !matches!(ran, Ok(Ok(()))) {
            out.truncate(at);
        }
        match ran {
            Ok(Ok(())) => {
                let len = (out.len() - at - 5) as u32;
                out[at + 1..at + 5].copy_from_slice(&len.to_le_bytes());
            }
            Ok(Err(e)) => push_outcome(out, FAILED, e.0.as_bytes()),
            Err(report) => {
                let bytes = rmp_serde::to_vec(&report).unwrap_or_default();
                push_outcome(out, PANICKED, &bytes);
            }
        }
    }
}

/// Runs `f` with the handles decoded in it relayed through an MPI rank's task server, if this
/// worker belongs to one (`relay`; see `backend/mpi/relay.rs`).
#[cfg(feature = "mpi")]
fn relayed<R>(relay: &Option<std::sync::Arc<dyn crate::runtime::handle::RemoteRoute>>, f: impl FnOnce() -> R) -> R {
    match relay {
        Some(route) => crate::runtime::handle::with_route(route.clone(), f),
        None => f(),
    }
}

#[cfg(not(feature = "mpi"))]
fn relayed<R>(_relay: &Option<()>, f: impl FnOnce() -> R) -> R {
    f()
}

/// The life of a pool worker: run the initializer, then chunks until the pool closes the pipe
/// (end of file) or `maxtasks` chunks have run. Started with SIGINT ignored and panics
/// reported rather than printed. `relay`: the worker belongs to an MPI rank's local pool, and
/// its tasks' handles go to rank 0 through that rank's task server.
#[crate::worker]
pub(crate) fn pool_worker(
    conn: Connection<()>,
    init: Option<(String, ByteBuf, Vec<PassFd>)>,
    maxtasks: u64,
    relay: Option<crate::Addr<()>>,
) {
    #[cfg(feature = "mpi")]
    let relay = relay.map(crate::backend::mpi::relay::local_route);
    #[cfg(not(feature = "mpi"))]
    let relay = relay.map(|_| ());
    let mut out = Vec::new();
    if let Some((worker, args, fds)) = init {
        let fds: Vec<OwnedFd> = fds.into_iter().map(|f| f.0).collect();
        relayed(&relay, || run_chunk(&worker, &[(&args, fds.len())], fds, &mut out));
        let failure = match parse_from_worker(&out) {
            Some(FromWorker::Done(v, _)) => match v.last() {
                Some(Ok(_)) => None,
                Some(Err(PoolError::Panicked { message, location })) => Some(format!(
                    "panicked at {}: {message}",
                    location.as_deref().unwrap_or("an unknown location")
                )),
                Some(Err(e)) => Some(e.to_string()),
                None => Some("the initializer did not run".into()),
            },
            _ => Some("the initializer did not run".into()),
        };
        if let Some(f) = failure {
            let mut msg = vec![INIT_FAILED];
            msg.extend_from_slice(f.as_bytes());
            let _ = conn.send_bytes(&msg);
            return;
        }
    }
    let mut buf = Vec::new();
    let mut fds = Vec::new();
    let mut done = 0u64;
    // `buf` already holds the next chunk, read before the previous `done` was sent.
    let mut have_next = false;
    loop {
        if !have_next {
            if conn.recv_bytes_with_fds_into(&mut buf, &mut fds).is_err() {
                // End of file: the pool closed our pipe (close, terminate, or the parent died).
                return;
            }
            if conn.send_bytes(&[STARTED]).is_err() {
                return;
            }
        }
        match parse_chunk(&buf) {
            Some((name, args)) => relayed(&relay, || run_chunk(name, &args, std::mem::take(&mut fds), &mut out)),
            // Cannot happen with our own parent; exit rather than guess a task count.
            None => return,
        }
        done += 1;
        let last = maxtasks > 0 && done >= maxtasks;
        // If the next chunk is already here, it starts now, and this `done` says so.
        have_next = !last && conn.try_recv_bytes_with_fds_into(&mut buf, &mut fds).is_ok();
        if have_next {
            out[0] = DONE_NEXT_STARTED;
        }
        fit_report(&mut out, conn.max_message());
        if conn.send_bytes(&out).is_err() {
            return;
        }
        if out.capacity() > 1 << 20 {
            out = Vec::new();
        }
        if last {
            return;
        }
    }
}

#[cfg(all(test, feature = "mpi"))]
mod tests {
    use super::*;

    /// The outcome kinds that a rank relays keep their variants through a report: a deadline
    /// kill stays `TimedOut` (with the worker and the deadline), not a `Failed` string.
    #[test]
    fn relayed_reports_keep_their_error_kinds() {
        let outcomes: Vec<Result<&[u8], PoolError>> = vec![
            Ok(b"\x07"),
            Err(PoolError::TimedOut {
                pid: 4242,
                deadline: Duration::from_millis(300),
            }),
            Err(PoolError::InitializerFailed("no".into())),
            Err(PoolError::Panicked {
                message: "boom".into(),
                location: Some("f.rs:1:2".into()),
            }),
        ];
        let report = encode_report(&mut outcomes.into_iter(), " (on MPI rank 1)");
        let Some(FromWorker::Done(it, _)) = parse_from_worker(&report) else {
            panic!("the report does not parse");
        };
        let got: Vec<_> = it.collect();
        assert_eq!(got.len(), 4);
        assert!(matches!(got[0], Ok(b) if b == b"\x07"));
        assert!(matches!(
            &got[1],
            Err(PoolError::TimedOut { pid: 4242, deadline }) if *deadline == Duration::from_millis(300)
        ));
        assert!(matches!(&got[2], Err(PoolError::InitializerFailed(m)) if m == "no (on MPI rank 1)"));
        assert!(matches!(&got[3], Err(PoolError::Panicked { message, .. }) if message == "boom"));
    }
}
