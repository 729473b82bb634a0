//! The hub: one thread in the root process running a `mio` event loop.
//!
//! It owns every connection (a slab, token = index), every process entry (the process table,
//! with mailboxes and joiners), every object (a slab of state machines, see [`objects`]), and
//! the deadlines of parked calls. It never blocks on a client: calls that must wait are parked
//! and answered later. Writes are queued per connection and flushed once per loop turn, so a
//! burst of replies to one connection goes out in one `writev`.
//!
//! Children are started from this thread (so `PR_SET_PDEATHSIG`, which follows the creating
//! *thread*, lasts as long as the program) and reaped through pidfds registered in the poll,
//! with a SIGCHLD self-pipe as the fallback where pidfds are missing.

mod conn;
pub(crate) mod objects;
mod procs;
pub(crate) use procs::BOOT_ENV;
mod timers;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token as MioToken, Waker};
use slab::Slab;

pub(crate) use conn::Role;
use conn::{Conn, ReadEnd};
use objects::{Answer, Caller, Cx, Objects, Outgoing};
use procs::ProcTable;
use timers::{Target, Timers};

use crate::sys;
use crate::wire::proto::{Cast, FromHub, HubError, ObjOp, Op, ProcId, ToHub, Value, ROOT_PROC};
use crate::wire::{self, FrameError};

/// A connection's key in the hub's slab (and its mio token).
pub(crate) type Token = usize;

const WAKER: MioToken = MioToken(usize::MAX - 1);
const SIGINT_TOKEN: MioToken = MioToken(usize::MAX - 2);
const SIGCHLD_TOKEN: MioToken = MioToken(usize::MAX - 3);
/// pidfds are registered at `PIDFD_BASE + slab index`.
const PIDFD_BASE: usize = 1 << 40;

/// Requests from threads of the root process (which shares memory with the hub).
pub(crate) enum Cmd {
    /// Register a connection for a root thread.
    Conn(OwnedFd),
    /// Start answering parked calls of the root with `Interrupted` on SIGINT.
    CatchInterrupts,
    /// Interrupt the root's parked calls now (as if SIGINT arrived in catch mode).
    Interrupt,
    /// Pin the hub thread to one CPU, or (None) let it run anywhere again (benchmarks).
    Pin(Option<usize>),
}

/// The root's handle on the hub thread.
pub(crate) struct HubHandle {
    tx: Mutex<mpsc::Sender<Cmd>>,
    waker: Waker,
}

impl HubHandle {
    /// Sends a command to the hub thread.
    pub fn send(&self, cmd: Cmd) -> std::io::Result<()> {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        tx.send(cmd)
            .map_err(|_| std::io::Error::other("the hub thread has stopped"))?;
        self.waker.wake()
    }
}

/// Settings fixed when the hub starts.
#[derive(Debug, Clone)]
pub(crate) struct HubConfig {
    pub max_frame: usize,
}

/// Starts the hub thread.
pub(crate) fn start(cfg: HubConfig) -> std::io::Result<HubHandle> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let (tx, rx) = mpsc::channel();
    let mut hub = Hub::new(poll, rx, cfg)?;
    std::thread::Builder::new()
        .name("multiproc-hub".into())
        .spawn(move || hub.run())?;
    Ok(HubHandle {
        tx: Mutex::new(tx),
        waker,
    })
}

pub(crate) struct Hub {
    poll: Poll,
    cmds: mpsc::Receiver<Cmd>,
    cfg: HubConfig,
    conns: Slab<Conn>,
    procs: ProcTable,
    pidfds: Slab<(ProcId, OwnedFd)>,
    objects: Objects,
    timers: Timers,
    replies: Vec<Outgoing>,
    /// Mail to push to subscribed connections this turn.
    pushes: Vec<(Token, Vec<serde_bytes::ByteBuf>)>,
    dirty: Vec<Token>,
    again: Vec<Token>,
    sigint: Option<sys::signal::SignalPipe>,
    sigchld: Option<sys::signal::SignalPipe>,
    catch_interrupts: bool,
    /// `Reaped` reports that arrived before the matching `Forked` (they travel on different
    /// connections of the forking process).
    early_reaped: std::collections::HashMap<i32, crate::wire::proto::ExitInfo>,
}

impl Hub {
    fn new(poll: Poll, cmds: mpsc::Receiver<Cmd>, cfg: HubConfig) -> std::io::Result<Self> {
        Ok(Hub {
            poll,
            cmds,
            procs: ProcTable::new(sys::proc::getpid()),
            cfg,
            conns: Slab::new(),
            pidfds: Slab::new(),
            objects: Objects::default(),
            timers: Timers::default(),
            replies: Vec::new(),
            pushes: Vec::new(),
            dirty: Vec::new(),
            again: Vec::new(),
            sigint: None,
            sigchld: None,
            catch_interrupts: false,
            early_reaped: std::collections::HashMap::new(),
        })
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            let timeout = if self.again.is_empty() {
                self.timers.next_timeout(now)
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                eprintln!("multiproc hub: poll failed: {e}; the hub stops");
                return;
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.drain_cmds(),
                    SIGINT_TOKEN => {
                        if let Some(p) = &self.sigint {
                            sys::signal::drain(&p.read);
                        }
                        self.interrupt_root();
                    }
                    SIGCHLD_TOKEN => {
                        if let Some(p) = &self.sigchld {
                            sys::signal::drain(&p.read);
                        }
                        self.reap_polled();
                    }
                    MioToken(t) if t >= PIDFD_BASE => self.pidfd_ready(t - PIDFD_BASE),
                    MioToken(t) => {
                        if ev.is_writable() {
                            self.mark_dirty(t);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read_conn(t);
                        }
                    }
                }
            }
            for t in std::mem::take(&mut self.again) {
                self.read_conn(t);
            }
            self.expire_timers();
            self.flush();
        }
    }

    // ----- commands from root threads -------------------------------------------------------

    fn drain_cmds(&mut self) {
        while let Ok(cmd) = self.cmds.try_recv() {
            match cmd {
                Cmd::Conn(fd) => {
                    let _ = self.add_conn(fd, ROOT_PROC, Role::Thread);
                }
                Cmd::CatchInterrupts => self.enable_interrupts(),
                Cmd::Interrupt => self.interrupt_root(),
                Cmd::Pin(cpu) => {
                    let res = match cpu {
                        Some(cpu) => sys::proc::pin_to_cpu(cpu),
                        None => sys::proc::pin_to_cpu_set(&(0..sys::proc::cpu_count()).collect::<Vec<_>>()),
                    };
                    if let Err(e) = res {
                        eprintln!("multiproc hub: cannot pin to CPU {cpu:?}: {e}");
                    }
                }
            }
        }
    }

    fn enable_interrupts(&mut self) {
        if self.catch_interrupts {
            return;
        }
        match sys::signal::notify_on(sys::signal::SIGINT) {
            Ok(pipe) => {
                let raw = pipe.read.as_raw_fd();
                if let Err(e) = self
                    .poll
                    .registry()
                    .register(&mut SourceFd(&raw), SIGINT_TOKEN, Interest::READABLE)
                {
                    eprintln!("multiproc hub: cannot watch SIGINT: {e}");
                    return;
                }
                self.sigint = Some(pipe);
                self.catch_interrupts = true;
            }
            Err(e) => eprintln!("multiproc hub: cannot install the SIGINT handler: {e}"),
        }
    }

    /// Answers every parked call of the root process with `Interrupted`.
    fn interrupt_root(&mut self) {
        let root_conns: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.proc == ROOT_PROC)
            .map(|(t, _)| t)
            .collect();
        // (issue 11 item 7) A call a root thread wrote just before the interrupt is parked and
        // then interrupted too, not parked after it for good.
        for &t in &root_conns {
            self.read_conn(t);
        }
        let pred = move |w: &objects::Waiter| root_conns.contains(&w.who.conn);
        self.cancel_waiters(&pred, Some(&HubError::Interrupted));
    }

    /// (issue 11 item 18) The processes parked on a lock that `holder` owns.
    fn locks_awaited(&mut self, holder: ProcId) -> Vec<crate::wire::proto::ProcInfo> {
        let mut procs: Vec<ProcId> = Vec::new();
        for id in self.objects.ids() {
            if let Some(slot) = self.objects.get_mut(id) {
                procs.extend(slot.obj.awaited_from(holder));
            }
        }
        procs.sort_unstable();
        procs.dedup();
        procs
            .into_iter()
            .filter_map(|p| match self.procs.state(p) {
                Ok(Value::State(s)) => Some(s.info),
                _ => None,
            })
            .collect()
    }

    /// Runs `f` on every object, with a context for its replies and deadlines.
    fn each_object(&mut self, mut f: impl FnMut(&mut dyn objects::Object, &mut Cx<'_>)) {
        let now = Instant::now();
        for id in self.objects.ids() {
            let conns = &self.conns;
            let closed = |t: Token| !conns.contains(t);
            if let Some(slot) = self.objects.get_mut(id) {
                let mut cx = Cx {
                    now,
                    obj: id,
                    replies: &mut self.replies,
                    timers: &mut self.timers,
                    closed: &closed,
                };
                f(&mut *slot.obj, &mut cx);
            }
        }
    }

    /// Removes parked calls matching `pred` everywhere, answering them with `why` if given.
    fn cancel_waiters(&mut self, pred: &dyn Fn(&objects::Waiter) -> bool, why: Option<&HubError>) {
        self.each_object(|obj, cx| obj.cancel(cx, pred, why));
        self.procs
            .cancel_waiters(pred, why, &mut self.timers, &mut self.replies);
    }

    // ----- connections ----------------------------------------------------------------------

    pub(crate) fn add_conn(&mut self, fd: OwnedFd, proc: ProcId, role: Role) -> Option<Token> {
        if let Err(e) = sys::fd::set_nonblocking(fd.as_fd(), true) {
            eprintln!("multiproc hub: cannot use a new connection: {e}");
            return None;
        }
        let raw = fd.as_raw_fd();
        let entry = self.conns.vacant_entry();
        let t = entry.key();
        if t >= PIDFD_BASE {
            return None;
        }
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&raw), MioToken(t), Interest::READABLE)
        {
            eprintln!("multiproc hub: cannot register a connection: {e}");
            return None;
        }
        entry.insert(Conn::new(fd, proc, role, self.cfg.max_frame));
        Some(t)
    }

    fn mark_dirty(&mut self, t: Token) {
        if let Some(c) = self.conns.get_mut(t) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(t);
            }
        }
    }

    /// Queues a message on a connection (flushed at the end of the loop turn).
    pub(crate) fn send_to<T: serde::Serialize>(
        &mut self,
        t: Token,
        msg: &T,
        fds: Vec<OwnedFd>,
    ) -> Result<(), FrameError> {
        let Some(c) = self.conns.get_mut(t) else { return Ok(()) };
        let res = c.queue(msg, fds);
        self.mark_dirty(t);
        res
    }

    fn route_replies(&mut self) {
        for (t, mail) in std::mem::take(&mut self.pushes) {
            if let Err(e) = self.send_to(t, &FromHub::Mail(mail), Vec::new()) {
                eprintln!("multiproc hub: could not push mail: {e}");
            }
        }
        while !self.replies.is_empty() {
            for (t, id, result) in std::mem::take(&mut self.replies) {
                self.reply(t, id, result, Vec::new());
            }
        }
    }

    fn reply(&mut self, t: Token, id: u64, result: Result<Value, HubError>, fds: Vec<OwnedFd>) {
        let msg = FromHub::Reply { id, result };
        if let Err(e) = self.send_to(t, &msg, fds) {
            // The reply itself is too big (a message near the frame limit): say so instead.
            let err = FromHub::Reply {
                id,
                result: Err(HubError::Invalid(format!("reply could not be sent: {e}"))),
            };
            let _ = self.send_to(t, &err, Vec::new());
        }
    }

    fn flush(&mut self) {
        for t in std::mem::take(&mut self.dirty) {
            let Some(c) = self.conns.get_mut(t) else { continue };
            c.dirty = false;
            match c.flush() {
                Ok(done) => {
                    if done == c.want_write {
                        c.want_write = !done;
                        let interest = if done {
                            Interest::READABLE
                        } else {
                            Interest::READABLE | Interest::WRITABLE
                        };
                        let raw = c.fd.as_raw_fd();
                        let _ = self
                            .poll
                            .registry()
                            .reregister(&mut SourceFd(&raw), MioToken(t), interest);
                    }
                }
                Err(_) => self.close_conn(t, None),
            }
        }
    }

    fn read_conn(&mut self, t: Token) {
        let Some(c) = self.conns.get_mut(t) else { return };
        let end = match c.read_some() {
            Ok(end) => end,
            Err(e) => {
                self.close_conn(t, Some(format!("read failed: {e}")));
                return;
            }
        };
        // Handle every complete frame before acting on a close: a process that put an item
        // and died has its item processed.
        loop {
            let Some(c) = self.conns.get_mut(t) else { return };
            let msg: Result<Option<ToHub>, String> = match c.dec.next_frame() {
                Ok(Some(body)) => wire::decode::<ToHub>(body).map(Some).map_err(|e| e.to_string()),
                Ok(None) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            match msg {
                Ok(Some(m)) => {
                    if let Err(why) = self.dispatch(t, m) {
                        self.close_conn(t, Some(why));
                        return;
                    }
                }
                Ok(None) => break,
                Err(why) => {
                    self.close_conn(t, Some(why));
                    return;
                }
            }
        }
        self.route_replies();
        match end {
            ReadEnd::Closed => self.close_conn(t, None),
            ReadEnd::Open { more: true } => self.again.push(t),
            ReadEnd::Open { more: false } => {}
        }
    }

    /// Closes a connection; `why` is logged when it is a protocol error.
    fn close_conn(&mut self, t: Token, why: Option<String>) {
        let Some(c) = self.conns.try_remove(t) else { return };
        let raw = c.fd.as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&raw));
        if let Some(why) = why {
            let who = self.procs.describe(c.proc);
            eprintln!("multiproc hub: dropped a connection of {who}: {why}");
        }
        let pred = move |w: &objects::Waiter| w.who.conn == t;
        self.cancel_waiters(&pred, None);
        self.procs.unsubscribe(c.proc, t);
        match c.role {
            Role::Main => {
                // The process is exiting: its thread connections may still hold frames the
                // hub has not read (a call parked after `proc_gone` would be granted a lock
                // that nobody can release). Read them first.
                self.drain_proc_conns(c.proc);
                self.proc_gone(c.proc)
            }
            Role::ForkServer => self.forkserver_gone(c.proc),
            Role::Thread => {}
        }
        drop(c);
        self.route_replies();
    }

    // ----- dispatch -------------------------------------------------------------------------

    fn dispatch(&mut self, t: Token, msg: ToHub) -> Result<(), String> {
        let proc = self.conns.get(t).map_or(ROOT_PROC, |c| c.proc);
        match msg {
            ToHub::Call { id, op } => {
                let caller = Caller { conn: t, id, proc };
                self.call(caller, op)
            }
            ToHub::Cast(c) => self.cast(t, proc, c),
        }
    }

    fn take_fds(&mut self, t: Token, n: usize) -> Result<Vec<OwnedFd>, String> {
        if n > sys::io::MAX_FDS_PER_MSG * 16 {
            return Err(format!("a message announced {n} descriptors"));
        }
        self.conns
            .get_mut(t)
            .and_then(|c| c.take_fds(n))
            .ok_or_else(|| format!("a message announced {n} descriptors that did not arrive"))
    }

    fn call(&mut self, caller: Caller, op: Op) -> Result<(), String> {
        let now = Instant::now();
        let answer: Answer = match op {
            Op::Ping => Answer::Now(Ok(Value::Unit)),
            Op::Spawn(req) => {
                let fds = self.take_fds(caller.conn, req.task.nfds as usize)?;
                self.spawn(caller, req, fds)
            }
            Op::PrepareFork { name, daemon, ident } => match self.prepare_fork(caller, name, daemon, ident) {
                Ok((init, fd)) => {
                    self.reply(caller.conn, caller.id, Ok(Value::Prepared(Box::new(init))), vec![fd]);
                    Answer::Parked
                }
                Err(e) => Answer::Now(Err(e)),
            },
            Op::Join { proc, wait } => self.procs.join(caller, proc, wait, now, &mut self.timers),
            Op::Signal { proc, sig } => Answer::Now(self.procs.signal(proc, sig)),
            Op::ActiveChildren => Answer::Now(Ok(Value::Procs(self.procs.active_children(caller.proc)))),
            Op::LocksAwaited => Answer::Now(Ok(Value::Procs(self.locks_awaited(caller.proc)))),
            Op::ProcState(p) => Answer::Now(self.procs.state(p)),
            Op::MailboxLen => Answer::Now(Ok(Value::U64(self.procs.mailbox_len(caller.proc)))),
            Op::NewObject(kind) => match objects::create(kind, caller.proc) {
                Ok((obj, lifetime)) => Answer::Now(Ok(Value::Obj(self.objects.insert(obj, lifetime, caller.proc)))),
                Err(e) => Answer::Now(Err(e)),
            },
            Op::Object { obj, op } => self.object_call(caller, obj, op, false),
        };
        if let Answer::Now(result) = answer {
            self.reply(caller.conn, caller.id, result, Vec::new());
        }
        self.route_replies();
        Ok(())
    }

    fn object_call(&mut self, caller: Caller, id: crate::wire::proto::ObjId, op: ObjOp, cast: bool) -> Answer {
        let now = Instant::now();
        let conns = &self.conns;
        let closed = |t: Token| !conns.contains(t);
        let Some(slot) = self.objects.get_mut(id) else {
            return Answer::Now(Err(HubError::UnknownObject));
        };
        let mut cx = Cx {
            now,
            obj: id,
            replies: &mut self.replies,
            timers: &mut self.timers,
            closed: &closed,
        };
        let answer = if cast {
            slot.obj.cast(&mut cx, caller, op);
            Answer::Parked
        } else {
            slot.obj.call(&mut cx, caller, op)
        };
        self.objects.settle(id);
        answer
    }

    fn cast(&mut self, t: Token, proc: ProcId, c: Cast) -> Result<(), String> {
        match c {
            Cast::Send { to, payload } => self.procs.deliver(to, vec![payload], &mut self.pushes),
            Cast::SendBatch { to, payloads } => self.procs.deliver(to, payloads, &mut self.pushes),
            Cast::SubscribeMailbox => {
                let waiting = self.procs.subscribe(proc, t);
                if !waiting.is_empty() {
                    self.pushes.push((t, waiting));
                }
            }
            Cast::Outcome(o) => self.procs.set_outcome(proc, o),
            Cast::NewConn => {
                let mut fds = self.take_fds(t, 1)?;
                if let Some(fd) = fds.pop() {
                    self.add_conn(fd, proc, Role::Thread);
                }
            }
            Cast::Forked { proc: child, pid } => {
                let from_forkserver = self.conns.get(t).is_some_and(|c| c.role == Role::ForkServer);
                self.procs
                    .forked(child, pid, proc, from_forkserver, &mut self.timers, &mut self.replies);
                if from_forkserver {
                    self.procs.spare_forked(child);
                    // (issue 11 item 8) A fork-server child is the root's own child: reap it here.
                    if sys::proc::SIBLING_FORK && self.procs.adopt_forked(child, pid) {
                        self.watch_child(child, pid);
                    }
                }
                if let Some(exit) = self.early_reaped.remove(&pid) {
                    if self.procs.by_pid(pid) == Some(child) {
                        self.proc_exited(child, exit);
                    }
                }
            }
            Cast::Reaped { pid, exit } => match self.procs.by_pid(pid) {
                Some(p) => self.proc_exited(p, exit),
                // A process that forks children itself reports them on two connections; keep
                // a report that overtook its `Forked` until that arrives.
                None if self.early_reaped.len() < 4096 => {
                    self.early_reaped.insert(pid, exit);
                }
                None => {}
            },
            Cast::Retain(id) => self.objects.retain(id, proc),
            Cast::Release(id) => self.objects.release(id, proc),
            Cast::InflightAdd(id) => self.objects.inflight(id, 1),
            Cast::InflightDone(id) => self.objects.inflight(id, -1),
            Cast::ProcDropped(child) => self.procs.handle_dropped(child, proc),
            Cast::Object { obj, op } => {
                let caller = Caller { conn: t, id: 0, proc };
                let _ = self.object_call(caller, obj, op, true);
            }
        }
        self.route_replies();
        Ok(())
    }

    // ----- timers ---------------------------------------------------------------------------

    fn expire_timers(&mut self) {
        let now = Instant::now();
        for (target, conn, id) in self.timers.expired(now) {
            let found = match target {
                Target::Object(obj) => {
                    let conns = &self.conns;
                    let closed = |t: Token| !conns.contains(t);
                    match self.objects.get_mut(obj) {
                        Some(slot) => {
                            let mut cx = Cx {
                                now,
                                obj,
                                replies: &mut self.replies,
                                timers: &mut self.timers,
                                closed: &closed,
                            };
                            slot.obj.expire(&mut cx, conn, id)
                        }
                        None => false,
                    }
                }
                Target::Join(p) | Target::Spawn(p) => self.procs.expire(target, p, conn, id),
            };
            if found {
                self.reply(conn, id, Err(HubError::Timeout), Vec::new());
            }
        }
        self.route_replies();
    }

    // ----- processes ------------------------------------------------------------------------

    fn pidfd_ready(&mut self, idx: usize) {
        let Some((proc, _)) = self.pidfds.get(idx) else { return };
        let proc = *proc;
        let Some(pid) = self.procs.pid_of(proc) else { return };
        match sys::proc::try_reap(pid) {
            Ok(Some(raw)) => {
                self.drop_pidfd(idx);
                self.proc_exited(proc, procs::exit_info(raw));
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("multiproc hub: cannot reap pid {pid}: {e}");
                self.drop_pidfd(idx);
            }
        }
    }

    fn drop_pidfd(&mut self, idx: usize) {
        if let Some((_, fd)) = self.pidfds.try_remove(idx) {
            let raw = fd.as_raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&raw));
        }
    }

    /// SIGCHLD fallback: try every child the hub started itself.
    fn reap_polled(&mut self) {
        for (proc, pid) in self.procs.hub_reaped_running() {
            if let Ok(Some(raw)) = sys::proc::try_reap(pid) {
                self.proc_exited(proc, procs::exit_info(raw));
            }
        }
    }

    /// Watches a child the hub started: pidfd if possible, else SIGCHLD.
    fn watch_child(&mut self, proc: ProcId, pid: i32) {
        match sys::proc::pidfd_open(pid) {
            Ok(Some(fd)) => {
                let raw = fd.as_raw_fd();
                let entry = self.pidfds.vacant_entry();
                let tok = MioToken(PIDFD_BASE + entry.key());
                if self
                    .poll
                    .registry()
                    .register(&mut SourceFd(&raw), tok, Interest::READABLE)
                    .is_ok()
                {
                    entry.insert((proc, fd));
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!("multiproc hub: pidfd_open({pid}) failed: {e}; using SIGCHLD"),
        }
        self.enable_sigchld();
        // The child may already have exited before the handler was installed.
        if let Ok(Some(raw)) = sys::proc::try_reap(pid) {
            self.proc_exited(proc, procs::exit_info(raw));
        }
    }

    fn enable_sigchld(&mut self) {
        if self.sigchld.is_some() {
            return;
        }
        match sys::signal::notify_on(sys::signal::SIGCHLD) {
            Ok(pipe) => {
                let raw = pipe.read.as_raw_fd();
                let _ = self
                    .poll
                    .registry()
                    .register(&mut SourceFd(&raw), SIGCHLD_TOKEN, Interest::READABLE);
                self.sigchld = Some(pipe);
            }
            Err(e) => eprintln!("multiproc hub: cannot install the SIGCHLD handler: {e}"),
        }
    }

    /// A process's exit status is known.
    fn proc_exited(&mut self, proc: ProcId, exit: crate::wire::proto::ExitInfo) {
        self.drain_proc_conns(proc);
        self.proc_gone(proc);
        self.procs.exited(proc, exit, &mut self.timers, &mut self.replies);
        self.route_replies();
    }

    /// Reads what a dead process wrote on its connections before it died (its outcome, its last
    /// items, its last releases), so that nothing it sent is handled after `proc_gone`.
    fn drain_proc_conns(&mut self, proc: ProcId) {
        let conns: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.proc == proc)
            .map(|(t, _)| t)
            .collect();
        for t in conns {
            while self.conns.contains(t) {
                self.read_conn(t);
                if self.again.last() == Some(&t) {
                    self.again.pop();
                } else {
                    break;
                }
            }
        }
    }

    /// A process is dead to the hub (its main connection closed, or it was reaped).
    fn proc_gone(&mut self, proc: ProcId) {
        if !self.procs.mark_gone(proc) {
            return;
        }
        self.each_object(|obj, cx| obj.proc_gone(cx, proc));
        self.objects.drop_proc(proc);
        if self.procs.is_lost(proc) {
            self.procs.exited(
                proc,
                crate::wire::proto::ExitInfo::Signaled(sys::signal::SIGKILL),
                &mut self.timers,
                &mut self.replies,
            );
        }
        // Children it forked itself can no longer be reaped by it: PR_SET_PDEATHSIG kills them.
        for child in self.procs.orphaned_by(proc) {
            self.lost_child(child);
        }
        self.route_replies();
    }

    /// A child whose reaper is gone: it dies by SIGKILL (parent-death signal); record that once
    /// its connection has closed.
    fn lost_child(&mut self, child: ProcId) {
        if self.procs.is_gone(child) {
            self.procs.exited(
                child,
                crate::wire::proto::ExitInfo::Signaled(sys::signal::SIGKILL),
                &mut self.timers,
                &mut self.replies,
            );
        } else {
            self.procs.mark_lost(child);
        }
    }

    fn forkserver_gone(&mut self, fs: ProcId) {
        // (issue 11 item 8) The spare outlives the fork server but will never get a task:
        // closing its connection ends it (it is reaped and forgotten like any hidden child).
        if let Some((_, t)) = self.procs.spare_of(fs) {
            self.close_conn(t, None);
        }
        self.procs.forkserver_gone(fs);
        for child in self.procs.orphaned_by(fs) {
            self.lost_child(child);
        }
        let pending = self.procs.take_spawn_waiters_of_forkserver();
        for w in pending {
            self.timers.cancel(w.timer);
            self.reply(
                w.who.conn,
                w.who.id,
                Err(HubError::Gone("the fork server died".into())),
                Vec::new(),
            );
        }
    }
}
