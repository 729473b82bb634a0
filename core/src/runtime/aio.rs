//! The `.await` side of the hub protocol (feature `tokio`).
//!
//! An async call takes a hub connection of its own from a per-process pool of idle,
//! non-blocking connections, registers it with tokio's reactor ([`AsyncFd`]) for the time of the
//! call, writes its request, and waits for readiness, never for the socket: a runtime thread is
//! never blocked, and a thousand calls pending at once are a thousand sockets in one epoll set,
//! not a thousand threads. The connection goes back to the pool when the reply has been read.
//!
//! **Cancellation.** Dropping the future of a call that was sent hands its connection to the
//! process's *canceller* thread (one per process, started on first need), which finishes
//! writing the request if it was cut short, sends `Cast::Cancel(id)` on the same connection,
//! and reads until the call's single reply arrives: `Cancelled` if the hub still had it parked
//! (it forgot the waiter: no item taken, no lock granted), or the call's success if the hub
//! answered first. A success is then undone by the call's [`Undo`] (a lock released, items
//! requeued at the front, an object released), and the connection goes back to the pool.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use tokio::io::unix::AsyncFd;

use super::client::{ClientConn, HUB_GRACE};
use super::{rt, Runtime};
use crate::error::CallError;
use crate::sys::{self, Errno};
use crate::wire::proto::{Cast, Op, ReqId, ToHub, Value};
use crate::wire::{self};

/// Undoes a call's success that arrived after its future was dropped (runs on the canceller
/// thread, which has its own blocking connection for the calls it makes).
pub(crate) type Undo = Box<dyn FnOnce(Value) + Send>;

/// Idle connections kept for later calls (beyond this many, a finished call's connection is
/// closed).
const MAX_IDLE: usize = 256;

/// Idle connections, each with the runtime generation it belongs to (a forked child must not
/// use its parent's).
static IDLE: Mutex<Vec<(u64, ClientConn)>> = Mutex::new(Vec::new());

/// Idle connections still registered with the reactor of the runtime they last served (its id
/// beside them), so that the next call on that runtime skips registering (two `epoll_ctl`s
/// and a reactor entry per call). Shared bound with `IDLE`: beyond `MAX_IDLE` the oldest go.
static IDLE_REG: Mutex<Vec<(u64, tokio::runtime::Id, AsyncFd<Sock>)>> = Mutex::new(Vec::new());

/// How many connections async calls have opened in this process (tests and benchmarks).
static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Connections opened for async calls so far in this process (the pool reuses them, so this
/// stays at the peak number of calls pending at once).
#[doc(hidden)]
pub fn async_connections_opened() -> u64 {
    OPENED.load(std::sync::atomic::Ordering::Relaxed)
}

/// How many calls answered after their future was dropped have been undone (tests).
static UNDONE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Calls whose success arrived after their future was dropped, and was undone, so far in this
/// process (tests: shows that the race between a drop and the hub's answer was exercised).
#[doc(hidden)]
pub fn async_calls_undone() -> u64 {
    UNDONE.load(std::sync::atomic::Ordering::Relaxed)
}

fn take_conn(rt: &'static Runtime) -> Result<ClientConn, CallError> {
    {
        let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((gen, c)) = idle.pop() {
            if gen == rt.gen {
                return Ok(c);
            }
            // A parent's connection in a forked child: closing our copy is harmless.
        }
    }
    // In a child this is one round trip on the main connection (the hub must accept the new
    // socket); the pool keeps it afterwards.
    // On the socket alone: this module drives the socket itself.
    let c = rt.new_socket_conn()?;
    sys::fd::set_nonblocking(c.fd(), true).map_err(CallError::Io)?;
    OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(c)
}

/// A connection already registered with runtime `rid`'s reactor, if one is idle.
fn take_registered(rt: &'static Runtime, rid: tokio::runtime::Id) -> Option<AsyncFd<Sock>> {
    let mut idle = IDLE_REG.lock().unwrap_or_else(|p| p.into_inner());
    let i = idle.iter().rposition(|(gen, id, _)| *gen == rt.gen && *id == rid)?;
    Some(idle.swap_remove(i).2)
}

fn give_back_registered(rt: &'static Runtime, rid: tokio::runtime::Id, s: AsyncFd<Sock>) {
    let evicted = {
        let mut idle = IDLE_REG.lock().unwrap_or_else(|p| p.into_inner());
        idle.push((rt.gen, rid, s));
        // The oldest first: connections of runtimes that are gone go this way.
        (idle.len() > MAX_IDLE).then(|| idle.remove(0))
    };
    match evicted {
        // A forked child's copy of its parent's registration: dropping it would deregister
        // the parent's socket from the epoll instance the two share. Leak it instead.
        Some((gen, _, s)) if gen != rt.gen => std::mem::forget(s),
        other => drop(other),
    }
}

fn give_back(rt: &'static Runtime, c: ClientConn) {
    let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
    if idle.len() < MAX_IDLE {
        idle.push((rt.gen, c));
    }
}

/// A connection as tokio's reactor sees it.
struct Sock(ClientConn);

impl AsRawFd for Sock {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd().as_raw_fd()
    }
}

enum Sent {
    /// Nothing written yet.
    Nothing,
    /// Part of the request frame written; the rest is here.
    Partly(Vec<u8>),
    /// The whole request is with the hub.
    All,
    /// The reply was read (or the connection broke): nothing to cancel.
    Finished,
    /// The connection is unusable: close it.
    Broken,
}

/// One async call in flight. Its `Drop` is the cancellation.
struct InFlight {
    rt: &'static Runtime,
    rid: tokio::runtime::Id,
    sock: Option<AsyncFd<Sock>>,
    id: ReqId,
    sent: Sent,
    undo: Option<Undo>,
}

fn io_to_call(e: std::io::Error) -> CallError {
    CallError::Io(Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)))
}

impl InFlight {
    fn sock(&mut self) -> Result<&mut AsyncFd<Sock>, CallError> {
        self.sock
            .as_mut()
            .ok_or_else(|| CallError::Protocol("async call used after it ended".into()))
    }

    /// Writes `frame` (the request), waiting for room without blocking. The socket is tried
    /// first: a fresh registration knows no readiness yet, and waiting for the reactor to
    /// report "writable" would cost a whole turn of it on every call.
    async fn write(&mut self, frame: Vec<u8>) -> Result<(), CallError> {
        let mut off = 0;
        let mut wait = false;
        while off < frame.len() {
            let sock = self.sock()?;
            let r = if wait {
                let mut g = sock.writable().await.map_err(io_to_call)?;
                match g.try_io(|s| {
                    sys::io::send_vectored(s.get_ref().0.fd(), &[IoSlice::new(&frame[off..])], &[])
                        .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
                }) {
                    Ok(r) => r.map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO))),
                    Err(_would_block) => Err(Errno::EAGAIN),
                }
            } else {
                sys::io::send_vectored(sock.get_ref().0.fd(), &[IoSlice::new(&frame[off..])], &[])
            };
            match r {
                Ok(n) => {
                    off += n;
                    self.sent = Sent::Partly(frame[off..].to_vec());
                }
                Err(Errno::EAGAIN) => wait = true,
                Err(e) => {
                    self.sent = Sent::Broken;
                    return Err(match e {
                        Errno::EPIPE | Errno::ECONNRESET => super::client::hub_gone(),
                        e => CallError::Io(e),
                    });
                }
            }
        }
        self.sent = Sent::All;
        Ok(())
    }

    /// Waits for the reply to this call (with the descriptors attached to it).
    async fn reply(&mut self) -> Result<(Value, Vec<OwnedFd>), CallError> {
        let id = self.id;
        loop {
            let sock = self.sock()?;
            let conn = &mut sock.get_mut().0;
            while let Some(msg) = conn.buffered_message()? {
                if let Some(r) = conn.reply_for(id, msg)? {
                    self.sent = Sent::Finished;
                    return r;
                }
            }
            let mut g = sock.readable_mut().await.map_err(io_to_call)?;
            match g.try_io(|s| match s.get_mut().0.read_available() {
                Ok(true) => Ok(Ok(())),
                Ok(false) => Err(std::io::Error::from(std::io::ErrorKind::WouldBlock)),
                Err(e) => Ok(Err(e)),
            }) {
                Ok(Ok(Ok(()))) | Err(_) => {}
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(e)) => return Err(io_to_call(e)),
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(sock) = self.sock.take() else { return };
        let sent = std::mem::replace(&mut self.sent, Sent::Finished);
        if matches!(sent, Sent::Finished | Sent::Nothing) {
            // Stays registered for the next call on this runtime.
            give_back_registered(self.rt, self.rid, sock);
            return;
        }
        // Deregisters from the reactor (harmless if the runtime is shutting down).
        let conn = sock.into_inner().0;
        match sent {
            Sent::Finished | Sent::Nothing => give_back(self.rt, conn),
            Sent::Broken => drop(conn),
            Sent::Partly(rest) => cancel(self.rt, conn, self.id, rest, self.undo.take()),
            Sent::All => cancel(self.rt, conn, self.id, Vec::new(), self.undo.take()),
        }
    }
}

/// A call abandoned by its future, for the canceller thread.
struct Orphan {
    rt: &'static Runtime,
    conn: ClientConn,
    id: ReqId,
    rest: Vec<u8>,
    undo: Option<Undo>,
}

static CANCELLER: OnceLock<Option<Mutex<mpsc::Sender<Orphan>>>> = OnceLock::new();

fn canceller() -> Option<&'static Mutex<mpsc::Sender<Orphan>>> {
    CANCELLER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Orphan>();
            std::thread::Builder::new()
                .name("multiproc-async-cancel".into())
                .spawn(move || {
                    for o in rx {
                        reap(o);
                    }
                })
                .ok()
                .map(|_| Mutex::new(tx))
        })
        .as_ref()
}

fn cancel(rt: &'static Runtime, conn: ClientConn, id: ReqId, rest: Vec<u8>, undo: Option<Undo>) {
    let o = Orphan {
        rt,
        conn,
        id,
        rest,
        undo,
    };
    match canceller() {
        Some(tx) => {
            let tx = tx.lock().unwrap_or_else(|p| p.into_inner());
            // A send fails only if the canceller thread is gone (process teardown): closing
            // the connection (dropping `o`) then makes the hub drop the waiter.
            let _ = tx.send(o);
        }
        // No thread could be started: closing the connection drops the waiter in the hub
        // (a success already on its way is lost; see ARCHITECTURE.md "Async").
        None => drop(o),
    }
}

/// Finishes the request, cancels it, reads its one reply, undoes a success.
fn reap(o: Orphan) {
    let Orphan {
        rt,
        mut conn,
        id,
        mut rest,
        undo,
    } = o;
    if sys::fd::set_nonblocking(conn.fd(), false).is_err() {
        return;
    }
    if wire::encode_into(&mut rest, &ToHub::Cast(Cast::Cancel(id)), usize::MAX).is_err() {
        return;
    }
    if sys::io::send_all(conn.fd(), &rest, &[]).is_err() {
        return;
    }
    match conn.await_reply(id, Some(Instant::now() + HUB_GRACE)) {
        Ok((v, _fds)) => {
            if let Some(u) = undo {
                UNDONE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                u(v);
            }
        }
        // Cancelled, or the call's own failure: nothing was taken.
        Err(CallError::Hub(_)) => {}
        // The connection or the hub is gone.
        Err(_) => return,
    }
    if sys::fd::set_nonblocking(conn.fd(), true).is_ok() {
        give_back(rt, conn);
    }
}

/// An async call: `op` on a pooled connection. `undo` runs on the success of a call whose
/// future was dropped before it saw the reply.
pub(crate) async fn call(op: Op, undo: Option<Undo>) -> Result<Value, CallError> {
    call_fds(op, undo).await.map(|(v, _)| v)
}

/// [`call`] that also returns the descriptors attached to the reply.
pub(crate) async fn call_fds(op: Op, undo: Option<Undo>) -> Result<(Value, Vec<OwnedFd>), CallError> {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return Err(CallError::Unsupported(
            "the .await forms of multiproc must run inside a tokio runtime (with I/O enabled: \
             #[tokio::main], #[tokio::test] or a Builder with enable_io/enable_all)",
        ));
    };
    let rid = handle.id();
    let rt = rt()?;
    let mut sock = match take_registered(rt, rid) {
        Some(s) => s,
        None => {
            let conn = take_conn(rt)?;
            // SAFETY: `Sock` owns the connection's `OwnedFd` for as long as the `AsyncFd` holds
            // it, and `as_raw_fd` always returns that same open descriptor.
            match unsafe { AsyncFd::register(Sock(conn)) } {
                Ok(s) => s,
                Err(e) => return Err(io_to_call(e.into())),
            }
        }
    };
    let conn = &mut sock.get_mut().0;
    let id = conn.next_req_id();
    let mut frame = Vec::new();
    wire::encode_into(&mut frame, &ToHub::Call { id, op }, conn.max_frame()).map_err(CallError::Encode)?;
    let mut f = InFlight {
        rt,
        rid,
        sock: Some(sock),
        id,
        sent: Sent::Nothing,
        undo,
    };
    f.write(frame).await?;
    let r = f.reply().await;
    if matches!(&r, Err(e) if !matches!(e, CallError::Hub(_))) {
        f.sent = Sent::Broken;
    }
    if matches!(&r, Err(e) if e.is_interrupted()) {
        super::interrupt::reported();
    }
    r
}

/// Waits until `fd` is readable, through the reactor, without blocking (for sockets that are
/// read elsewhere, under a lock: the mailbox connection). It watches a duplicate of `fd`, so
/// that several waiters can watch one socket.
pub(crate) async fn readable(fd: std::os::fd::BorrowedFd<'_>) -> Result<(), CallError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(CallError::Unsupported(
            "the .await forms of multiproc must run inside a tokio runtime with I/O enabled",
        ));
    }
    let dup = sys::fd::dup(fd).map_err(CallError::Io)?;
    // SAFETY: the `AsyncFd` owns `dup` (an open descriptor) until it is dropped, and
    // `OwnedFd::as_raw_fd` always returns that descriptor.
    let afd = match unsafe { AsyncFd::register_with_interest(dup, tokio::io::Interest::READABLE) } {
        Ok(a) => a,
        Err(e) => return Err(io_to_call(e.into())),
    };
    let _ready = afd.readable().await.map_err(io_to_call)?;
    Ok(())
}
