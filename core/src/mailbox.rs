//! Mailboxes: every process is an actor with one.
//!
//! Any process can send to any other through an [`Addr`]. Messages are encoded with
//! MessagePack, so the receiver names the type it expects, and a message of another type is a
//! decode error, not undefined behaviour. Messages from one sender arrive in the order sent.
//! Messages sent to a process that has ended are dropped (as in Erlang).
//!
//! Delivery: messages wait in the hub until the process first receives. That first receive
//! opens a mailbox connection, and from then on the hub *pushes* each message to it as it
//! arrives, with no request per message. A round trip between two actors is therefore the
//! physical minimum for a brokered design: one write to the hub and one push out, each way.
//! Timeouts are the receiver's own, and race-free: a message that arrives after a timeout is
//! kept for the next receive. One thread receives at a time (`try_recv` on another thread
//! meanwhile reports `Empty`).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::error::{AskError, CallError, RecvError, SendError};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::runtime::{self, fdpass, handle::ObjRef};
use crate::wire::proto::{Cast, FromHub, ObjId, ObjOp, ObjectKind, Op, ProcId, Value, Wait};

/// How often a root thread blocked in `recv` looks at the interrupt counter (interrupt mode).
const INTERRUPT_SLICE: Duration = Duration::from_millis(50);

/// The address of a process's mailbox, for messages of type `M`. `Clone`, `Serialize` and
/// `Deserialize`: it can be handed to other processes inside messages or worker arguments.
///
/// # Example
/// ```
/// use multiproc::{mailbox, Addr, Process};
///
/// #[multiproc::worker]
/// fn echo(reply_to: Addr<String>) {
///     let inbox = mailbox::<String>();
///     let msg = inbox.recv().unwrap();
///     reply_to.send(&format!("echo: {msg}")).unwrap();
/// }
///
/// let me = multiproc::current_process().addr::<String>();
/// let mut child = Process::new(echo(me)).start()?;
/// child.send(&"hello".to_string())?;
/// assert_eq!(mailbox::<String>().recv()?, "echo: hello");
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Serialize, Deserialize)]
pub struct Addr<M> {
    proc: ProcId,
    pid: i32,
    #[serde(skip)]
    _m: PhantomData<fn(M)>,
}

impl<M> Clone for Addr<M> {
    fn clone(&self) -> Self {
        Addr {
            proc: self.proc,
            pid: self.pid,
            _m: PhantomData,
        }
    }
}

impl<M> PartialEq for Addr<M> {
    fn eq(&self, other: &Self) -> bool {
        self.proc == other.proc
    }
}

impl<M> Eq for Addr<M> {}

impl<M> std::fmt::Debug for Addr<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Addr")
            .field("proc", &self.proc.0)
            .field("pid", &self.pid)
            .finish()
    }
}

impl<M> Addr<M> {
    pub(crate) fn new(proc: ProcId, pid: i32) -> Self {
        Addr {
            proc,
            pid,
            _m: PhantomData,
        }
    }

    /// The OS pid of the process behind the address.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The same address, for messages of another type.
    pub fn cast<N>(&self) -> Addr<N> {
        Addr::new(self.proc, self.pid)
    }
}

impl<M: Serialize> Addr<M> {
    /// Sends a message. One write to the hub, which returns once the message is in the kernel's
    /// socket buffer: it is delivered even if the sender dies on the next line. It does not wait
    /// for the receiver, unless the receiver's mailbox holds more than
    /// [`HubLimits::max_mailbox_bytes`](crate::HubLimits) (256 MiB by default): then the hub
    /// stops reading from this thread's connection until the receiver takes mail, and `send`
    /// blocks (backpressure; nothing is dropped).
    ///
    /// A message may carry a pipe [`Connection`](crate::pipe::Connection) or shared memory
    /// ([`crate::shm`]): their descriptors travel with it (`SCM_RIGHTS`), the hub keeps them
    /// with the held mail, and the receiver gets working handles. Such a send is one round
    /// trip (the hub confirms it holds the descriptors), and fails with
    /// [`SendError::TooManyHeldDescriptors`] when the hub already holds
    /// [`HubLimits::max_held_fds`](crate::HubLimits) of them.
    pub fn send(&self, msg: &M) -> Result<(), SendError> {
        let (payload, fds) = encode(msg)?;
        if !fds.is_empty() {
            return self.send_fds(vec![(payload, fds)], Wait::Forever);
        }
        runtime::cast(Cast::Send { to: self.proc, payload })?;
        Ok(())
    }

    /// Mail with descriptors: a `SendWait` call with them attached.
    fn send_fds(&self, msgs: Vec<(ByteBuf, Vec<OwnedFd>)>, wait: Wait) -> Result<(), SendError> {
        let nfds: Vec<u32> = msgs.iter().map(|(_, f)| f.len() as u32).collect();
        let fds: Vec<BorrowedFd<'_>> = msgs.iter().flat_map(|(_, f)| f.iter().map(|f| f.as_fd())).collect();
        let op = Op::SendWait {
            to: self.proc,
            payloads: msgs.iter().map(|(p, _)| p.clone()).collect(),
            wait,
            nfds,
        };
        runtime::call_fds(op, &fds, runtime::deadline_of(wait))?;
        Ok(())
    }

    /// Sends a message if the receiver's mailbox has room now (it holds no more than
    /// [`HubLimits::max_mailbox_bytes`](crate::HubLimits)); [`SendError::Full`] otherwise, and
    /// nothing is sent. One round trip to the hub.
    pub fn try_send(&self, msg: &M) -> Result<(), SendError> {
        self.send_wait(msg, Wait::Never)
    }

    /// Sends a message, waiting at most `timeout` for room in the receiver's mailbox
    /// ([`SendError::Full`] after that, and nothing is sent). One round trip to the hub.
    pub fn send_timeout(&self, msg: &M, timeout: Duration) -> Result<(), SendError> {
        self.send_wait(msg, Wait::from_timeout(Some(timeout)))
    }

    fn send_wait(&self, msg: &M, wait: Wait) -> Result<(), SendError> {
        let (payload, fds) = encode(msg)?;
        if !fds.is_empty() {
            return self.send_fds(vec![(payload, fds)], wait);
        }
        let op = Op::SendWait {
            to: self.proc,
            payloads: vec![payload],
            wait,
            nfds: Vec::new(),
        };
        runtime::call(op, runtime::deadline_of(wait))?;
        Ok(())
    }

    /// Sends several messages, in order, in one write.
    pub fn send_all<'a>(&self, msgs: impl IntoIterator<Item = &'a M>) -> Result<(), SendError>
    where
        M: 'a,
    {
        let mut encoded = Vec::new();
        for m in msgs {
            encoded.push(encode(m)?);
        }
        if encoded.iter().any(|(_, f)| !f.is_empty()) {
            return self.send_fds(encoded, Wait::Forever);
        }
        let payloads = encoded.into_iter().map(|(p, _)| p).collect();
        runtime::cast(Cast::SendBatch {
            to: self.proc,
            payloads,
        })?;
        Ok(())
    }

    /// Request/reply: builds a message around a fresh [`ReplyTo`], sends it, and waits for the
    /// answer. Fails with [`AskError::Gone`] if the process ends without answering.
    pub fn ask<R: DeserializeOwned>(&self, make: impl FnOnce(ReplyTo<R>) -> M) -> Result<R, AskError> {
        self.ask_wait(make, Wait::Forever)
    }

    /// [`ask`](Self::ask) with a deadline.
    pub fn ask_timeout<R: DeserializeOwned>(
        &self,
        make: impl FnOnce(ReplyTo<R>) -> M,
        timeout: Duration,
    ) -> Result<R, AskError> {
        self.ask_wait(make, Wait::from_timeout(Some(timeout)))
    }

    fn ask_wait<R: DeserializeOwned>(&self, make: impl FnOnce(ReplyTo<R>) -> M, wait: Wait) -> Result<R, AskError> {
        let token = crate::runtime::handle::new_secret();
        let slot = ObjRef::create(ObjectKind::Oneshot {
            watch: Some(self.proc),
            token,
        })?;
        let reply_to = ReplyTo {
            obj: slot.id(),
            token,
            _r: PhantomData,
        };
        self.send(&make(reply_to))?;
        match slot.call(ObjOp::OneshotTake(wait), runtime::deadline_of(wait))? {
            Value::Bytes(b) => rmp_serde::from_slice(&b).map_err(|e| AskError::Decode(e.to_string())),
            other => Err(AskError::Call(CallError::Protocol(format!(
                "unexpected reply {other:?}"
            )))),
        }
    }
}

/// Where to send the answer to an [`ask`](Addr::ask). Put it in the question; the receiver
/// calls [`send`](ReplyTo::send) once.
///
/// # Example
/// ```
/// use multiproc::{mailbox, Process, ReplyTo};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Double(u64, ReplyTo<u64>);
///
/// #[multiproc::worker]
/// fn doubler() {
///     let Double(x, reply) = mailbox::<Double>().recv().unwrap();
///     reply.send(&(x * 2)).unwrap();
/// }
///
/// let mut p = Process::new(doubler()).start()?;
/// let answer = p.addr::<Double>().ask(|r| Double(21, r))?;
/// assert_eq!(answer, 42);
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Serialize, Deserialize)]
pub struct ReplyTo<R> {
    obj: ObjId,
    /// The slot's secret: whoever has this `ReplyTo` may answer, nobody else can.
    token: u64,
    #[serde(skip)]
    _r: PhantomData<fn(R)>,
}

impl<R> std::fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyTo").field("slot", &self.obj.0).finish()
    }
}

impl<R: Serialize> ReplyTo<R> {
    /// Sends the answer (one-way). If the asker has given up, the answer is dropped.
    pub fn send(self, value: &R) -> Result<(), SendError> {
        let bytes = rmp_serde::to_vec(value).map_err(|e| SendError::Encode(e.to_string()))?;
        runtime::cast(Cast::Object {
            obj: self.obj,
            op: ObjOp::OneshotPut {
                token: self.token,
                value: ByteBuf::from(bytes),
            },
        })?;
        Ok(())
    }
}

/// This process's mailbox, read as messages of type `M`.
///
/// # Example
/// ```
/// let me = multiproc::current_process().addr::<u32>();
/// me.send(&7)?;
/// let inbox = multiproc::mailbox::<u32>();
/// assert_eq!(inbox.recv()?, 7);
/// assert!(matches!(inbox.try_recv(), Err(multiproc::RecvError::Empty)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Mailbox<M> {
    _m: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for Mailbox<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailbox")
    }
}

/// This process's mailbox, for messages of type `M`. All `Mailbox` values of a process read
/// the same queue.
pub fn mailbox<M: DeserializeOwned>() -> Mailbox<M> {
    Mailbox { _m: PhantomData }
}

impl<M: DeserializeOwned> Mailbox<M> {
    /// Waits for the next message.
    pub fn recv(&self) -> Result<M, RecvError> {
        self.recv_wait(Wait::Forever)
    }

    /// The next message if one is waiting, else [`RecvError::Empty`].
    pub fn try_recv(&self) -> Result<M, RecvError> {
        match self.recv_wait(Wait::Never) {
            Err(RecvError::Timeout) => Err(RecvError::Empty),
            other => other,
        }
    }

    /// Waits at most `timeout` for the next message ([`RecvError::Timeout`] after that).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<M, RecvError> {
        match self.recv_wait(Wait::from_timeout(Some(timeout))) {
            Err(RecvError::Timeout) if timeout.is_zero() => Err(RecvError::Timeout),
            other => other,
        }
    }

    /// How many messages are waiting for this process (in the hub, or already pushed to it).
    pub fn len(&self) -> Result<usize, RecvError> {
        let rt = runtime::rt().map_err(RecvError::from)?;
        let local = {
            let mut st = rt.mailbox.lock().unwrap_or_else(|p| p.into_inner());
            let st = &mut *st;
            if let Some(conn) = st.conn.as_mut() {
                // Take in what has been pushed already, without waiting.
                while let Some(msg) = conn.next_message_until(Some(Instant::now()))? {
                    push_mail(&mut st.buf, conn, msg)?;
                }
            }
            st.buf.len()
        };
        match runtime::call(Op::MailboxLen, None)? {
            Value::U64(n) => Ok(local + n as usize),
            other => Err(RecvError::Call(CallError::Protocol(format!(
                "unexpected reply {other:?}"
            )))),
        }
    }

    /// Is the mailbox empty?
    pub fn is_empty(&self) -> Result<bool, RecvError> {
        self.len().map(|n| n == 0)
    }

    fn recv_wait(&self, wait: Wait) -> Result<M, RecvError> {
        let rt = runtime::rt().map_err(RecvError::from)?;
        let deadline = runtime::deadline_of(wait);
        // Watch first, then look for a Ctrl-C that arrived before: none falls in between.
        let watch = crate::InterruptWatch::new();
        if wait != Wait::Never && runtime::interrupt::take_pending() {
            return Err(RecvError::Interrupted);
        }
        let mut st = loop {
            match rt.mailbox.try_lock() {
                Ok(g) => break g,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                // Another thread is receiving: a try_ form does not wait for it.
                Err(std::sync::TryLockError::WouldBlock) if wait == Wait::Never => return Err(RecvError::Timeout),
                // Wait for it in short slices, so that a deadline or a Ctrl-C still ends this call.
                Err(std::sync::TryLockError::WouldBlock) => {
                    if watch.fired() {
                        return Err(RecvError::Interrupted);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(RecvError::Timeout);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        };
        let st = &mut *st;
        loop {
            if let Some((bytes, fds)) = st.buf.pop_front() {
                let decode = || rmp_serde::from_slice(&bytes).map_err(|e| RecvError::Decode(e.to_string()));
                if fds.is_empty() {
                    return decode();
                }
                // Descriptors no handle in the message claims are closed here.
                return fdpass::with_incoming(fds, decode);
            }
            if st.conn.is_none() {
                st.conn = Some(rt.mailbox_conn()?);
            }
            let Some(conn) = st.conn.as_mut() else { continue };
            // The root wakes now and then to notice Ctrl-C in interrupt mode.
            let slice = if rt.is_root() {
                let s = Instant::now() + INTERRUPT_SLICE;
                Some(deadline.map_or(s, |d| d.min(s)))
            } else {
                deadline
            };
            match conn.next_message_until(slice)? {
                Some(msg) => push_mail(&mut st.buf, conn, msg)?,
                None => {
                    if watch.fired() {
                        return Err(RecvError::Interrupted);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(RecvError::Timeout);
                    }
                }
            }
        }
    }
}

/// Encodes a message; handles inside attach their descriptors (see [`fdpass`]).
fn encode<M: Serialize>(msg: &M) -> Result<(ByteBuf, Vec<OwnedFd>), SendError> {
    let (res, fds) = fdpass::collect(|| rmp_serde::to_vec(msg));
    let payload = res.map_err(|e| SendError::Encode(e.to_string()))?;
    Ok((ByteBuf::from(payload), fds))
}

fn push_mail(
    buf: &mut VecDeque<(ByteBuf, Vec<OwnedFd>)>,
    conn: &mut crate::runtime::client::ClientConn,
    msg: FromHub,
) -> Result<(), RecvError> {
    match msg {
        FromHub::Mail(batch) => {
            buf.extend(batch.into_iter().map(|m| (m, Vec::new())));
            Ok(())
        }
        FromHub::MailFds { mail, nfds } => {
            let fds = conn.take_fds(nfds as usize)?;
            buf.push_back((mail, fds));
            Ok(())
        }
        FromHub::Stopped(why) => Err(RecvError::Call(CallError::HubStopped(why))),
        other => Err(RecvError::Call(CallError::Protocol(format!(
            "unexpected frame on the mailbox connection: {other:?}"
        )))),
    }
}
