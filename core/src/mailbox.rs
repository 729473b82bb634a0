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
use crate::runtime::Inbound;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::runtime::{self, fdpass, handle::ObjRef};
use crate::wire::names_ops::{NamesOp, SignalMsg};
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
    /// A name resolved by the hub at each send ([`Addr::named`]); `proc` and `pid` are 0.
    #[serde(default)]
    name: Option<String>,
    #[serde(skip)]
    _m: PhantomData<fn(M)>,
}

impl<M> Clone for Addr<M> {
    fn clone(&self) -> Self {
        Addr {
            proc: self.proc,
            pid: self.pid,
            name: self.name.clone(),
            _m: PhantomData,
        }
    }
}

impl<M> PartialEq for Addr<M> {
    fn eq(&self, other: &Self) -> bool {
        self.proc == other.proc && self.name == other.name
    }
}

impl<M> Eq for Addr<M> {}

impl<M> std::fmt::Debug for Addr<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => f.debug_struct("Addr").field("name", n).finish(),
            None => f
                .debug_struct("Addr")
                .field("proc", &self.proc.0)
                .field("pid", &self.pid)
                .finish(),
        }
    }
}

impl<M> Addr<M> {
    pub(crate) fn new(proc: ProcId, pid: i32) -> Self {
        Addr {
            proc,
            pid,
            name: None,
            _m: PhantomData,
        }
    }

    /// An address by name: every `send`, `try_send`, `send_timeout`, `ask` and `ask_timeout`
    /// on it is resolved by the hub *at that moment* to the process registered under `name`
    /// (see [`register`](crate::register)), so it keeps working across restarts of the
    /// process behind it, as long as each incarnation registers again.
    ///
    /// While nobody is registered under the name, sends fail with [`SendError::NoProc`] and
    /// asks with [`AskError::NoProc`], at once: nothing is queued (the caller decides whether
    /// to retry). Because the hub must say so, a `send` by name is one round trip to the hub
    /// (a `send` to a plain address is one-way). Invalid names fail the same way.
    ///
    /// # Example
    /// ```no_run
    /// use multiproc::{mailbox, register, Addr, Process, ReplyTo};
    ///
    /// #[multiproc::worker]
    /// fn counter() {
    ///     register("counter").unwrap();
    ///     let mut n = 0u64;
    ///     let inbox = mailbox::<ReplyTo<u64>>();
    ///     while let Ok(reply) = inbox.recv() {
    ///         n += 1;
    ///         let _ = reply.send(&n);
    ///     }
    /// }
    ///
    /// let _p = Process::new(counter()).start()?;
    /// let counter = Addr::<ReplyTo<u64>>::named("counter");
    /// // Until the child has registered, asks fail with NoProc.
    /// let n = loop {
    ///     match counter.ask(|reply| reply) {
    ///         Ok(n) => break n,
    ///         Err(multiproc::AskError::NoProc(_)) => std::thread::sleep(std::time::Duration::from_millis(5)),
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// };
    /// assert_eq!(n, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Addr {
            proc: ProcId(0),
            pid: 0,
            name: Some(name.into()),
            _m: PhantomData,
        }
    }

    /// The name this address resolves at each send, for an address made by [`Addr::named`].
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The OS pid of the process behind the address; 0 for an address by name (which has no
    /// fixed process: use [`whereis`](crate::whereis)).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The hub's id of the process (`ProcId(0)` for an address by name).
    pub(crate) fn proc_id(&self) -> ProcId {
        self.proc
    }

    /// The same address, for messages of another type.
    pub fn cast<N>(&self) -> Addr<N> {
        Addr {
            proc: self.proc,
            pid: self.pid,
            name: self.name.clone(),
            _m: PhantomData,
        }
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
    /// By name ([`Addr::named`]): one round trip; [`SendError::NoProc`] if nobody is
    /// registered under the name.
    ///
    /// A message may carry a pipe [`Connection`](crate::pipe::Connection) or shared memory
    /// ([`crate::shm`]): their descriptors travel with it (`SCM_RIGHTS`), the hub keeps them
    /// with the held mail, and the receiver gets working handles. Such a send is one round
    /// trip (the hub confirms it holds the descriptors), and fails with
    /// [`SendError::TooManyHeldDescriptors`] when the hub already holds
    /// [`HubLimits::max_held_fds`](crate::HubLimits) of them. Not by name: a message with
    /// descriptors goes to a plain address (resolve the name with [`whereis`](crate::whereis)).
    pub fn send(&self, msg: &M) -> Result<(), SendError> {
        if self.name.is_some() {
            return self.send_wait(msg, Wait::Forever);
        }
        let (payload, fds) = encode(msg)?;
        if !fds.is_empty() {
            return self.send_fds(vec![(payload, fds)], Wait::Forever);
        }
        runtime::cast(Cast::Send { to: self.proc, payload })?;
        Ok(())
    }

    /// Mail with descriptors: a `SendWait` call with them attached.
    fn send_fds(&self, msgs: Vec<(ByteBuf, Vec<OwnedFd>)>, wait: Wait) -> Result<(), SendError> {
        if let Some(name) = &self.name {
            return Err(SendError::Encode(format!(
                "a message that carries descriptors (a Connection, shared memory) cannot be sent by \
                 name ('{name}'); send it to the address of `whereis(\"{name}\")` instead"
            )));
        }
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
        let payloads = vec![payload];
        let op = match &self.name {
            Some(name) => Op::Names(NamesOp::Send {
                name: name.clone(),
                payloads,
                wait,
            }),
            None => Op::SendWait {
                to: self.proc,
                payloads,
                wait,
                nfds: Vec::new(),
            },
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
        let payloads: Vec<ByteBuf> = encoded.into_iter().map(|(p, _)| p).collect();
        if let Some(name) = &self.name {
            let op = Op::Names(NamesOp::Send {
                name: name.clone(),
                payloads,
                wait: Wait::Forever,
            });
            runtime::call(op, None)?;
            return Ok(());
        }
        runtime::cast(Cast::SendBatch {
            to: self.proc,
            payloads,
        })?;
        Ok(())
    }

    /// Request/reply: builds a message around a fresh [`ReplyTo`], sends it, and waits for the
    /// answer. Fails with [`AskError::Gone`] if the process ends without answering.
    ///
    /// One round trip to the hub: the reply slot is one of a few that this process reuses, and
    /// the hub re-arms it, delivers the question and waits for the answer in one step (a late
    /// answer to an earlier, abandoned ask cannot land in a later one: each ask gives the slot
    /// a fresh secret). With more than 64 asks in flight at once in one process, the extra ones
    /// take two round trips (a one-time slot).
    ///
    /// By name ([`Addr::named`]): the hub resolves the name when it arms the reply slot, in the
    /// same step as it delivers the question, and the question goes to that incarnation only;
    /// if it dies before answering, the ask fails with `Gone` (it is not sent again to the next
    /// one: delivery is at most once). [`AskError::NoProc`] if nobody is registered. Same
    /// number of round trips as by a plain address.
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
        let Some(loan) = reply_slots::borrow()? else {
            return self.ask_two_trips(make, wait);
        };
        let (token, payload, fds) = encode_question(make, loan.id())?;
        let op = self.ask_op(payload, fds.len(), loan.id(), token, wait);
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let (v, _) = runtime::call_fds(op, &borrowed, runtime::deadline_of(wait))?;
        drop(loan);
        decode_answer(v)
    }

    /// The `Op::Ask` of a question already encoded around reply slot `slot`.
    fn ask_op(&self, payload: ByteBuf, nfds: usize, slot: ObjId, token: u64, wait: Wait) -> Op {
        let to = match &self.name {
            Some(name) => crate::wire::proto::AskTo::Name(name.clone()),
            None => crate::wire::proto::AskTo::Proc(self.proc),
        };
        Op::Ask {
            to,
            payload,
            nfds: nfds as u32,
            slot,
            token,
            wait,
        }
    }

    /// An ask with a one-time reply slot: create it (one round trip), send, wait (another).
    /// Used when this process already has [`reply_slots::MAX`] asks in flight.
    fn ask_two_trips<R: DeserializeOwned>(
        &self,
        make: impl FnOnce(ReplyTo<R>) -> M,
        wait: Wait,
    ) -> Result<R, AskError> {
        let token = crate::runtime::handle::new_secret();
        let (slot, to) = match &self.name {
            Some(name) => {
                let (slot, info) = ObjRef::create_named_slot(name, token)?;
                (slot, Addr::<M>::new(info.proc, info.pid))
            }
            None => {
                let slot = ObjRef::create(ObjectKind::Oneshot {
                    watch: Some(self.proc),
                    token,
                    reusable: false,
                })?;
                (slot, self.clone())
            }
        };
        to.send(&make(ReplyTo::new(slot.id(), token)))?;
        decode_answer(slot.call(ObjOp::OneshotTake(wait), runtime::deadline_of(wait))?)
    }
}

/// Encodes the question that `make` builds around reply slot `slot`, with a fresh secret for
/// the slot: returns the secret, the payload and the descriptors it carries.
fn encode_question<M: Serialize, R>(
    make: impl FnOnce(ReplyTo<R>) -> M,
    slot: ObjId,
) -> Result<(u64, ByteBuf, Vec<OwnedFd>), SendError> {
    let token = crate::runtime::handle::new_secret();
    let (payload, fds) = encode(&make(ReplyTo::new(slot, token)))?;
    Ok((token, payload, fds))
}

/// An answer as the reply slot hands it over.
fn decode_answer<R: DeserializeOwned>(v: Value) -> Result<R, AskError> {
    match v {
        Value::Bytes(b) => rmp_serde::from_slice(&b).map_err(|e| AskError::Decode(e.to_string())),
        other => Err(AskError::Call(CallError::Protocol(format!(
            "unexpected reply {other:?}"
        )))),
    }
}

/// The reusable reply slots of this process: an `ask` borrows one, so that it costs one round
/// trip (`Op::Ask`: the hub re-arms the slot with a fresh secret, delivers the question and
/// parks the asker, in one step) instead of two. A late answer to an abandoned ask presents
/// the previous secret and is refused by the slot, so a slot can be lent again at once, even
/// while the hub still has the abandoned call parked (re-arming answers it `Cancelled`).
mod reply_slots {
    use std::sync::Mutex;

    use crate::error::CallError;
    use crate::runtime::{self, handle::ObjRef};
    use crate::wire::proto::{ObjId, ObjectKind};

    /// Slots a process creates at most (they live until it ends); an ask beyond that many in
    /// flight at once falls back to a one-time slot.
    pub(super) const MAX: usize = 64;

    struct Pool {
        /// The runtime installation the slots belong to (a `Fork` child inherits its parent's
        /// pool and must not use it).
        gen: u64,
        free: Vec<ObjRef>,
        created: usize,
    }

    static POOL: Mutex<Option<Pool>> = Mutex::new(None);

    /// A borrowed slot; it goes back to the pool when dropped (also when an `.await` is
    /// dropped).
    pub(super) struct Loan {
        slot: Option<ObjRef>,
        gen: u64,
    }

    impl Loan {
        pub(super) fn id(&self) -> ObjId {
            self.slot.as_ref().map_or(ObjId(0), |s| s.id())
        }
    }

    impl Drop for Loan {
        fn drop(&mut self) {
            let Some(slot) = self.slot.take() else { return };
            let mut g = POOL.lock().unwrap_or_else(|p| p.into_inner());
            match g.as_mut() {
                Some(p) if p.gen == self.gen => p.free.push(slot),
                // Another runtime's (a forked child's inherited loan): not ours to release.
                _ => std::mem::forget(slot),
            }
        }
    }

    /// Takes a free slot of this process, if any: `Ok(None)` when `MAX` are lent out.
    fn take(gen: u64) -> Result<Option<Loan>, bool> {
        let mut g = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if g.as_ref().is_some_and(|p| p.gen != gen) {
            if let Some(old) = g.take() {
                old.free.into_iter().for_each(std::mem::forget);
            }
        }
        let p = g.get_or_insert_with(|| Pool {
            gen,
            free: Vec::new(),
            created: 0,
        });
        if let Some(slot) = p.free.pop() {
            return Ok(Some(Loan { slot: Some(slot), gen }));
        }
        if p.created >= MAX {
            return Ok(None);
        }
        p.created += 1;
        Err(true)
    }

    fn kind() -> ObjectKind {
        ObjectKind::Oneshot {
            watch: None,
            token: 0,
            reusable: true,
        }
    }

    fn created_failed(gen: u64) {
        let mut g = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = g.as_mut().filter(|p| p.gen == gen) {
            p.created -= 1;
        }
    }

    /// Borrows a slot, creating one (one round trip, the first few times) if none is free.
    pub(super) fn borrow() -> Result<Option<Loan>, CallError> {
        let gen = runtime::rt()?.generation();
        match take(gen) {
            Ok(loan) => Ok(loan),
            Err(_) => match ObjRef::create(kind()) {
                Ok(slot) => Ok(Some(Loan { slot: Some(slot), gen })),
                Err(e) => {
                    created_failed(gen);
                    Err(e)
                }
            },
        }
    }

    /// [`borrow`] without blocking the thread (the `.await` forms).
    #[cfg(feature = "tokio")]
    pub(super) async fn borrow_async() -> Result<Option<Loan>, CallError> {
        let gen = runtime::rt()?.generation();
        match take(gen) {
            Ok(loan) => Ok(loan),
            Err(_) => match ObjRef::create_async(kind()).await {
                Ok(slot) => Ok(Some(Loan { slot: Some(slot), gen })),
                Err(e) => {
                    created_failed(gen);
                    Err(e)
                }
            },
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

impl<R> ReplyTo<R> {
    fn new(obj: ObjId, token: u64) -> Self {
        ReplyTo {
            obj,
            token,
            _r: PhantomData,
        }
    }
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
    /// Waits for the next message. Monitor and link signals are left for
    /// [`signals()`](crate::signals) or [`recv_event`](Self::recv_event).
    pub fn recv(&self) -> Result<M, RecvError> {
        decode_mail(take(Want::Mail, Wait::Forever)?)
    }

    /// The next message if one is waiting, else [`RecvError::Empty`].
    pub fn try_recv(&self) -> Result<M, RecvError> {
        decode_mail(take_now(Want::Mail)?)
    }

    /// Waits at most `timeout` for the next message ([`RecvError::Timeout`] after that).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<M, RecvError> {
        decode_mail(take_timeout(Want::Mail, timeout)?)
    }

    /// Waits for the next message *or* signal (a [`Down`](crate::Down) from a monitor, an
    /// [`Exit`](crate::Exit) from a link while trapping exits), whichever arrives first:
    /// the one loop an actor needs. Both travel on the same connection, in the order the hub
    /// sent them, so a `Down` never overtakes the dead process's own last messages.
    ///
    /// # Example
    /// ```
    /// use multiproc::{mailbox, monitor, Incoming, Signal};
    ///
    /// #[multiproc::worker]
    /// fn quick() {}
    ///
    /// let p = multiproc::Process::new(quick()).start()?;
    /// let m = monitor(&p.addr::<()>())?;
    /// match mailbox::<String>().recv_event()? {
    ///     Incoming::Signal(Signal::Down(d)) => {
    ///         assert_eq!(d.monitor, m);
    ///         assert!(d.reason.is_normal());
    ///     }
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_event(&self) -> Result<Incoming<M>, RecvError> {
        decode_event(take(Want::Any, Wait::Forever)?)
    }

    /// The next message or signal if one is waiting, else [`RecvError::Empty`].
    pub fn try_recv_event(&self) -> Result<Incoming<M>, RecvError> {
        decode_event(take_now(Want::Any)?)
    }

    /// Waits at most `timeout` for the next message or signal.
    pub fn recv_event_timeout(&self, timeout: Duration) -> Result<Incoming<M>, RecvError> {
        decode_event(take_timeout(Want::Any, timeout)?)
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
                    push_inbound(&mut st.buf, conn, msg)?;
                }
            }
            st.buf.iter().filter(|i| matches!(i, Inbound::Mail(..))).count()
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
}

/// A message or a signal, from [`Mailbox::recv_event`].
#[derive(Debug)]
pub enum Incoming<M> {
    /// A message.
    Message(M),
    /// A monitor or link signal.
    Signal(crate::names::Signal),
}

fn decode_mail<M: DeserializeOwned>(i: Inbound) -> Result<M, RecvError> {
    match i {
        Inbound::Mail(bytes, fds) => {
            let decode = || rmp_serde::from_slice(&bytes).map_err(|e| RecvError::Decode(e.to_string()));
            if fds.is_empty() {
                return decode();
            }
            // Descriptors no handle in the message claims are closed here.
            fdpass::with_incoming(fds, decode)
        }
        Inbound::Signal(_) => Err(RecvError::Call(CallError::Protocol(
            "a signal where mail was expected".into(),
        ))),
    }
}

fn decode_event<M: DeserializeOwned>(i: Inbound) -> Result<Incoming<M>, RecvError> {
    match i {
        Inbound::Mail(..) => decode_mail(i).map(Incoming::Message),
        Inbound::Signal(s) => Ok(Incoming::Signal(crate::names::Signal::from_wire(s))),
    }
}

/// What a receive takes from the mailbox connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Mail,
    Signal,
    Any,
}

impl Want {
    fn takes(self, i: &Inbound) -> bool {
        matches!(
            (self, i),
            (Want::Any, _) | (Want::Mail, Inbound::Mail(..)) | (Want::Signal, Inbound::Signal(_))
        )
    }
}

/// `take` without waiting: [`RecvError::Empty`] if nothing of the kind is there.
pub(crate) fn take_now(want: Want) -> Result<Inbound, RecvError> {
    match take(want, Wait::Never) {
        Err(RecvError::Timeout) => Err(RecvError::Empty),
        other => other,
    }
}

/// `take` waiting at most `timeout`.
pub(crate) fn take_timeout(want: Want, timeout: Duration) -> Result<Inbound, RecvError> {
    match take(want, Wait::from_timeout(Some(timeout))) {
        Err(RecvError::Timeout) if timeout.is_zero() => Err(RecvError::Timeout),
        other => other,
    }
}

/// Takes the first item of the kind wanted from this process's mailbox connection, in
/// arrival order; items of the other kind stay for their own receive.
pub(crate) fn take(want: Want, wait: Wait) -> Result<Inbound, RecvError> {
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
    let mut looked = 0;
    loop {
        // Only items that arrived since the last look need looking at.
        while looked < st.buf.len() {
            if !want.takes(&st.buf[looked]) {
                looked += 1;
                continue;
            }
            let Some(item) = st.buf.remove(looked) else { break };
            if let Inbound::Signal(SignalMsg::Down { monitor, .. }) = &item {
                // Demonitored after the Down was sent: it never reaches the program.
                let mut flushed = rt.flushed_monitors.lock().unwrap_or_else(|p| p.into_inner());
                if flushed.remove(monitor) {
                    continue;
                }
            }
            return Ok(item);
        }
        if st.conn.is_none() {
            st.conn = Some(rt.mailbox_conn(&mut st.buf)?);
            continue;
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
            Some(msg) => push_inbound(&mut st.buf, conn, msg)?,
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

/// The `.await` form (feature `tokio`).
#[cfg(feature = "tokio")]
impl<M: DeserializeOwned> Mailbox<M> {
    /// [`recv`](Self::recv) as a future: waits for the hub's push through tokio's reactor,
    /// never blocking the runtime thread. Cancel-safe: messages read from the socket stay in
    /// this process's mailbox buffer, so dropping the future loses nothing.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let me = multiproc::current_process().addr::<String>();
    /// me.send(&"hi".to_string())?;
    /// let got: String = multiproc::mailbox::<String>().recv_async().await?;
    /// assert_eq!(got, "hi");
    /// # Ok(()) }
    /// ```
    pub async fn recv_async(&self) -> Result<M, RecvError> {
        let rt = runtime::rt().map_err(RecvError::from)?;
        if runtime::interrupt::take_pending() {
            return Err(RecvError::Interrupted);
        }
        loop {
            let fd = {
                let mut st = match rt.mailbox.try_lock() {
                    Ok(g) => g,
                    Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                    // A thread is in a blocking receive: let other tasks run, then look again.
                    Err(std::sync::TryLockError::WouldBlock) => {
                        tokio::task::yield_now().await;
                        continue;
                    }
                };
                let st = &mut *st;
                // Mail only: signals stay for `signals()` / `recv_event`.
                if let Some(item) = take_mail(&mut st.buf) {
                    return decode_mail(item);
                }
                if st.conn.is_none() {
                    st.conn = Some(rt.mailbox_conn(&mut st.buf)?);
                    continue;
                }
                let Some(conn) = st.conn.as_mut() else { continue };
                // Take in what was pushed already, without waiting.
                while let Some(msg) = conn.next_message_until(Some(Instant::now()))? {
                    push_inbound(&mut st.buf, conn, msg)?;
                }
                if let Some(item) = take_mail(&mut st.buf) {
                    return decode_mail(item);
                }
                // Ring mode: tell the hub that this process sleeps (it rings the doorbell with
                // the next mail); if mail came meanwhile, take it instead.
                if !conn.prepare_to_sleep()? {
                    continue;
                }
                crate::sys::fd::dup(conn.fd()).map_err(CallError::Io)?
            };
            // Readiness is reported at registration if bytes arrived meanwhile.
            runtime::aio::readable(std::os::fd::AsFd::as_fd(&fd)).await?;
        }
    }
}

/// The `.await` form of `ask` (feature `tokio`).
#[cfg(feature = "tokio")]
impl<M: Serialize> Addr<M> {
    /// [`ask`](Self::ask) as a future: creates the reply slot, sends the question, and waits
    /// for the answer without blocking the runtime thread. Cancel-safe: dropping the future
    /// withdraws the wait and frees the reply slot (a late answer is dropped by the hub).
    ///
    /// # Example
    /// ```no_run
    /// use multiproc::{mailbox, Process, ReplyTo};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Double(u32, ReplyTo<u32>);
    ///
    /// #[multiproc::worker]
    /// fn doubler() {
    ///     let Double(n, reply) = mailbox::<Double>().recv().unwrap();
    ///     reply.send(&(n * 2)).unwrap();
    /// }
    ///
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut p = Process::new(doubler()).start()?;
    /// let r: u32 = p.addr::<Double>().ask_async(|reply| Double(21, reply)).await?;
    /// assert_eq!(r, 42);
    /// p.join_async().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ask_async<R: DeserializeOwned>(&self, make: impl FnOnce(ReplyTo<R>) -> M) -> Result<R, AskError> {
        // The loan goes back to the pool when this future completes or is dropped.
        if let Some(loan) = reply_slots::borrow_async().await? {
            let (token, payload, fds) = encode_question(make, loan.id())?;
            if fds.is_empty() {
                let op = self.ask_op(payload, 0, loan.id(), token, Wait::Forever);
                let v = crate::runtime::aio::call(op, None).await?;
                drop(loan);
                return decode_answer(v);
            }
            // Descriptors travel with a blocking send; the `.await` is on the answer.
            return self.ask_async_sent(loan.id(), token, payload, fds, Some(loan)).await;
        }
        let token = crate::runtime::handle::new_secret();
        let slot = ObjRef::create_async(ObjectKind::Oneshot {
            watch: Some(self.proc),
            token,
            reusable: false,
        })
        .await?;
        self.send(&make(ReplyTo::new(slot.id(), token)))?;
        decode_answer(slot.call_async(ObjOp::OneshotTake(Wait::Forever), None).await?)
    }

    /// The rest of an `.await` ask whose question carries descriptors: arm the slot and send
    /// the question with them (a blocking call that does not wait for the answer), then await
    /// the answer.
    async fn ask_async_sent<R: DeserializeOwned>(
        &self,
        slot: ObjId,
        token: u64,
        payload: ByteBuf,
        fds: Vec<OwnedFd>,
        loan: Option<reply_slots::Loan>,
    ) -> Result<R, AskError> {
        let op = self.ask_op(payload, fds.len(), slot, token, Wait::Never);
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        // `Wait::Never`: armed, delivered, and answered `Timeout` at once unless the answer
        // is already there; the answer then waits in the slot for the `.await` below.
        match runtime::call_fds(op, &borrowed, None) {
            Ok((v, _)) => {
                drop(loan);
                return decode_answer(v);
            }
            Err(CallError::Hub(crate::wire::proto::HubError::Timeout)) => {}
            Err(e) => return Err(e.into()),
        }
        let take = crate::wire::proto::Op::Object {
            obj: slot,
            op: ObjOp::OneshotTake(Wait::Forever),
        };
        let v = crate::runtime::aio::call(take, None).await?;
        drop(loan);
        decode_answer(v)
    }
}

/// The first mail item of the buffer, if any (for the `.await` form).
#[cfg(feature = "tokio")]
fn take_mail(buf: &mut VecDeque<Inbound>) -> Option<Inbound> {
    let pos = buf.iter().position(|i| matches!(i, Inbound::Mail(..)))?;
    buf.remove(pos)
}

/// Encodes a message; handles inside attach their descriptors (see [`fdpass`]).
fn encode<M: Serialize>(msg: &M) -> Result<(ByteBuf, Vec<OwnedFd>), SendError> {
    let (res, fds) = fdpass::collect(|| rmp_serde::to_vec(msg));
    let payload = res.map_err(|e| SendError::Encode(e.to_string()))?;
    Ok((ByteBuf::from(payload), fds))
}

fn push_inbound(
    buf: &mut VecDeque<Inbound>,
    conn: &mut crate::runtime::client::ClientConn,
    msg: FromHub,
) -> Result<(), RecvError> {
    match msg {
        FromHub::Mail(batch) => {
            buf.extend(batch.into_iter().map(|m| Inbound::Mail(m, Vec::new())));
            Ok(())
        }
        FromHub::MailFds { mail, nfds } => {
            let fds = conn.take_fds(nfds as usize)?;
            buf.push_back(Inbound::Mail(mail, fds));
            Ok(())
        }
        FromHub::Signal(s) => {
            buf.push_back(Inbound::Signal(s));
            Ok(())
        }
        FromHub::Stopped(why) => Err(RecvError::Call(CallError::HubStopped(why))),
        other => Err(RecvError::Call(CallError::Protocol(format!(
            "unexpected frame on the mailbox connection: {other:?}"
        )))),
    }
}
