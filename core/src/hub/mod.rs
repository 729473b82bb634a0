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

/// Writes one diagnostic line to standard error, ignoring every error: the hub never panics
/// (or stops) because stderr is closed or full.
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::sys::io::write_stderr(&format!("multiproc hub: {}\n", format_args!($($arg)*)))
    };
}

mod conn;
pub(crate) mod held;
mod names;
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
/// Pools whose counters the hub keeps per process (`Cast::PoolStats`; more are ignored).
const MAX_POOLS_PER_PROCESS: usize = 256;
/// pidfds are registered at `PIDFD_BASE + slab index`.
const PIDFD_BASE: usize = 1 << 40;
/// At most this many drained ring connections wait in `Hub::hot` for the hub's spin; the
/// rest are armed at once (a spin looks at each of them on every pass).
const MAX_HOT: usize = 8;

/// Requests from threads of the root process (which shares memory with the hub).
pub(crate) enum Cmd {
    /// Register a connection for a root thread (socket only).
    Conn(OwnedFd),
    /// Register a connection for a root thread, in ring mode with these rings (issue 10).
    RingConn(OwnedFd, std::sync::Arc<crate::wire::ring::RingMem>),
    /// Register the root's main connection (with its rings, unless the transport is sockets).
    MainConn(OwnedFd, Option<std::sync::Arc<crate::wire::ring::RingMem>>),
    /// Start answering parked calls of the root with `Interrupted` on SIGINT.
    CatchInterrupts,
    /// Interrupt the root's parked calls now (as if SIGINT arrived in catch mode).
    Interrupt,
    /// Pin the hub thread to one CPU, or (None) let it run anywhere again (benchmarks; sent
    /// only by `runtime::pin_hub`, which the `internals` feature enables).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    Pin(Option<usize>),
    /// Tests only: behave as if the next `poll` failed with this message.
    FailPoll(String),
}

/// Why the hub thread stopped, once it has (root process only).
static STOPPED: Mutex<Option<String>> = Mutex::new(None);

/// Why the hub stopped, if it has: a failed `poll`, or a bug (a panic in the hub thread).
pub(crate) fn stop_reason() -> Option<String> {
    STOPPED.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
    pub limits: crate::runtime::HubLimits,
}

/// Starts the hub thread.
pub(crate) fn start(cfg: HubConfig) -> std::io::Result<HubHandle> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let (tx, rx) = mpsc::channel();
    let mut hub = Hub::new(poll, rx, cfg)?;
    std::thread::Builder::new()
        .name("multiproc-hub".into())
        .spawn(move || {
            let why = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hub.run())) {
                Ok(why) => why,
                Err(p) => {
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    format!("the hub thread panicked ({msg}); this is a bug in multiproc")
                }
            };
            hub.stop(why);
        })?;
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
    /// Names, monitors, links (issue 12).
    registry: objects::registry::Registry,
    timers: Timers,
    replies: Vec<Outgoing>,
    /// Mail to push to subscribed connections this turn.
    pushes: Vec<(Token, Vec<held::Item>)>,
    dirty: Vec<Token>,
    again: Vec<Token>,
    /// Ring connections just drained and not armed yet: the hub spins on them before it
    /// sleeps (`serve_hot`), so a client that sends again at once needs no doorbell and
    /// wakes nobody.
    hot: Vec<Token>,
    /// The hub's bounded, adaptive spin on `hot`.
    spin: crate::wire::ring::Spin,
    /// A socket connection (no ring: a remote client, or `MULTIPROC_TRANSPORT=socket`) was
    /// just drained: before it sleeps, the hub polls without waiting for a while
    /// (`sock_spin`), so that a client's next call finds it awake.
    sock_warm: bool,
    /// The spin of `sock_warm`: each pass is one `epoll_wait` with a zero timeout.
    sock_spin: crate::wire::ring::Spin,
    sigint: Option<sys::signal::SignalPipe>,
    sigchld: Option<sys::signal::SignalPipe>,
    catch_interrupts: bool,
    /// Tests only: the next turn fails as if `poll` had failed with this message.
    fail_poll: Option<String>,
    /// Connections whose frames are being handled right now (outermost first): a nested read
    /// (draining another connection) never re-enters one of them, which would reorder its
    /// frames.
    reading: Vec<Token>,
    /// Connections not read for now (see `Pause`), checked once per loop turn.
    paused: Vec<Token>,
    /// Set by a `Send` whose receiver's mailbox is over its limit: the sender's connection is
    /// paused after that frame.
    mailbox_full: Option<ProcId>,
    /// When incomplete frames were last checked against `frame_timeout`.
    last_partial_check: Instant,
    /// Processes whose full mailbox has `send_timeout`s waiting for room.
    mail_waiting: Vec<ProcId>,
    /// `Reaped` reports that arrived before the matching `Forked` (they travel on different
    /// connections of the forking process).
    early_reaped: std::collections::HashMap<ProcId, std::collections::HashMap<i32, crate::wire::proto::ExitInfo>>,
    /// The counters pools publish (`Cast::PoolStats`), by owner process and pool number.
    pools: std::collections::BTreeMap<(ProcId, u64), crate::wire::snapshot::PoolStats>,
}

impl Hub {
    fn new(poll: Poll, cmds: mpsc::Receiver<Cmd>, cfg: HubConfig) -> std::io::Result<Self> {
        held::set_limit(cfg.limits.max_held_fds);
        Ok(Hub {
            poll,
            cmds,
            procs: ProcTable::new(sys::proc::getpid()),
            cfg,
            conns: Slab::new(),
            pidfds: Slab::new(),
            objects: Objects::default(),
            registry: objects::registry::Registry::default(),
            timers: Timers::default(),
            replies: Vec::new(),
            pushes: Vec::new(),
            dirty: Vec::new(),
            again: Vec::new(),
            hot: Vec::new(),
            spin: crate::wire::ring::Spin::default(),
            sock_warm: false,
            sock_spin: crate::wire::ring::Spin::default(),
            sigint: None,
            sigchld: None,
            catch_interrupts: false,
            fail_poll: None,
            reading: Vec::new(),
            paused: Vec::new(),
            mailbox_full: None,
            last_partial_check: Instant::now(),
            mail_waiting: Vec::new(),
            early_reaped: std::collections::HashMap::new(),
            pools: std::collections::BTreeMap::new(),
        })
    }

    /// The event loop. Returns only when it cannot go on, with the reason.
    fn run(&mut self) -> String {
        let mut events = Events::with_capacity(256);
        loop {
            self.serve_hot();
            let now = Instant::now();
            let timeout = if self.again.is_empty() {
                // Wake at least once a second to enforce the frame timeout.
                let tick = Duration::from_secs(1);
                Some(self.timers.next_timeout(now).map_or(tick, |t| t.min(tick)))
            } else {
                Some(Duration::ZERO)
            };
            // A socket connection was just served and nothing else is pending: poll without
            // waiting for a bounded while, so that a client's next call finds the hub awake
            // (waking an idle vCPU costs tens of µs). A failed poll falls through to the
            // blocking one, which reports it.
            let spun =
                timeout != Some(Duration::ZERO) && std::mem::take(&mut self.sock_warm) && self.fail_poll.is_none() && {
                    let (spin, poll) = (&mut self.sock_spin, &mut self.poll);
                    spin.wait(crate::wire::ring::hub_spin(), || {
                        poll.poll(&mut events, Some(Duration::ZERO))
                            .map(|()| !events.is_empty())
                    })
                    .unwrap_or(false)
                };
            let polled = match self.fail_poll.take() {
                Some(why) => Err(std::io::Error::other(why)),
                None if spun => Ok(()),
                None => self.poll.poll(&mut events, timeout),
            };
            if let Err(e) = polled {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return format!("the hub's poll failed ({e})");
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
                        if ev.is_writable() || self.conns.get(t).is_some_and(|c| c.ring.is_some() && c.out_bytes() > 0)
                        {
                            // Ring mode: a doorbell may say that the client made room.
                            self.mark_dirty(t);
                        }
                        if let Some(c) = self.conns.get_mut(t).filter(|c| c.paused.is_some()) {
                            // Not read while paused, but its doorbells must not pile up.
                            if let Err(why) = c.drain_doorbells() {
                                self.close_conn(t, Some(why));
                                continue;
                            }
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            if let Some(c) = self.conns.get_mut(t) {
                                // The socket has news (edge-triggered): read it this time.
                                c.skip_pull = false;
                            }
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
            self.resume_paused();
            self.check_partial_frames();
        }
    }

    // ----- limits ----------------------------------------------------------------------------

    /// Mail bytes waiting for `p`: held in the hub, or queued on its mailbox connection.
    fn mailbox_pending(&self, p: ProcId) -> Option<usize> {
        let (held, sub) = self.procs.mailbox_backlog(p)?;
        let queued = sub.and_then(|t| self.conns.get(t)).map_or(0, |c| c.out_bytes());
        Some(held + queued)
    }

    /// Why `t` should stop being read after the frame just handled, if it should.
    fn pause_reason(&mut self, t: Token) -> Option<conn::Pause> {
        let full = self.mailbox_full.take();
        let c = self.conns.get(t)?;
        if c.out_bytes() > self.cfg.limits.max_buffered_per_connection {
            return Some(conn::Pause::Output);
        }
        full.map(conn::Pause::Mailbox)
    }

    fn still_paused(&self, why: conn::Pause, c: &Conn) -> bool {
        match why {
            conn::Pause::Output => c.out_bytes() > self.cfg.limits.max_buffered_per_connection / 2,
            conn::Pause::Mailbox(p) => self
                .mailbox_pending(p)
                .is_some_and(|n| n > self.cfg.limits.max_mailbox_bytes),
        }
    }

    /// Delivers `send_timeout`s waiting for room, in order, while there is room.
    fn resume_mail_waiters(&mut self) {
        let limit = self.cfg.limits.max_mailbox_bytes;
        for p in std::mem::take(&mut self.mail_waiting) {
            while self.mailbox_pending(p).is_some_and(|n| n <= limit) {
                let Some((w, payloads)) = self.procs.pop_send_waiter(p) else {
                    break;
                };
                self.timers.cancel(w.timer);
                self.procs.deliver(p, payloads, &mut self.pushes);
                self.route_replies();
                self.reply(w.who.conn, w.who.id, Ok(Value::Unit), Vec::new());
            }
            if self.procs.has_send_waiters(p) {
                self.mail_waiting.push(p);
            }
        }
    }

    /// Reads again from paused connections whose reason has gone.
    fn resume_paused(&mut self) {
        self.resume_mail_waiters();
        if self.paused.is_empty() {
            return;
        }
        for t in std::mem::take(&mut self.paused) {
            let Some(c) = self.conns.get(t) else { continue };
            match c.paused {
                Some(why) if self.still_paused(why, c) => self.paused.push(t),
                Some(_) => {
                    if let Some(c) = self.conns.get_mut(t) {
                        c.paused = None;
                    }
                    self.again.push(t);
                }
                None => {}
            }
        }
    }

    /// Drops connections whose frame has stayed incomplete for longer than `frame_timeout`.
    fn check_partial_frames(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_partial_check) < Duration::from_secs(1) {
            return;
        }
        self.last_partial_check = now;
        let limit = self.cfg.limits.frame_timeout;
        let stale: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.paused.is_none() && c.partial_since.is_some_and(|s| now.duration_since(s) > limit))
            .map(|(t, _)| t)
            .collect();
        for t in stale {
            self.close_conn(
                t,
                Some(format!(
                    "a frame stayed incomplete for more than {limit:?} (HubLimits::frame_timeout)"
                )),
            );
        }
    }

    /// The hub cannot go on: records why (root threads see it in their errors), tells every
    /// connected process (best effort, without blocking), and lets the connections close.
    fn stop(&mut self, why: String) {
        diag!("{why}; the hub stops, and every process loses its coordination");
        *STOPPED.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
        let tokens: Vec<Token> = self.conns.iter().map(|(t, _)| t).collect();
        for t in tokens {
            if let Some(c) = self.conns.get_mut(t) {
                let _ = c.queue(&FromHub::Stopped(why.clone()), Vec::new());
                let _ = c.flush();
            }
        }
        self.conns.clear();
    }

    // ----- commands from root threads -------------------------------------------------------

    fn drain_cmds(&mut self) {
        while let Ok(cmd) = self.cmds.try_recv() {
            match cmd {
                Cmd::Conn(fd) => {
                    let _ = self.add_conn(fd, ROOT_PROC, Role::Thread);
                }
                Cmd::RingConn(fd, mem) => {
                    if let Some(t) = self.add_conn(fd, ROOT_PROC, Role::Thread) {
                        self.attach_ring(t, mem);
                    }
                }
                Cmd::MainConn(fd, mem) => {
                    if let Some(t) = self.add_conn(fd, ROOT_PROC, Role::RootMain) {
                        if let Some(mem) = mem {
                            self.attach_ring(t, mem);
                        }
                    }
                }
                Cmd::CatchInterrupts => self.enable_interrupts(),
                Cmd::Interrupt => self.interrupt_root(),
                Cmd::Pin(cpu) => {
                    let res = match cpu {
                        Some(cpu) => sys::proc::pin_to_cpu(cpu),
                        None => sys::proc::pin_to_cpu_set(&(0..sys::proc::cpu_count()).collect::<Vec<_>>()),
                    };
                    if let Err(e) = res {
                        diag!("cannot pin to CPU {cpu:?}: {e}");
                    }
                }
                Cmd::FailPoll(why) => self.fail_poll = Some(why),
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
                    diag!("cannot watch SIGINT: {e}");
                    return;
                }
                self.sigint = Some(pipe);
                self.catch_interrupts = true;
            }
            Err(e) => diag!("cannot install the SIGINT handler: {e}"),
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

    /// The whole state, as `multiproc::snapshot()` shows it (taken within this loop turn).
    fn snapshot(&self) -> crate::wire::snapshot::Snapshot {
        let now = Instant::now();
        let conns = &self.conns;
        let queued = |t: Option<Token>| t.and_then(|t| conns.get(t)).map_or(0, |c| c.out_bytes());
        let (processes, joins) = self.procs.rows(now, &queued);
        let pools = self
            .pools
            .iter()
            .map(|((owner, pool), st)| crate::wire::snapshot::PoolRow {
                owner: *owner,
                pool: *pool,
                workers: st.workers.clone(),
                queued: st.queued,
                running: st.running,
                done: st.done,
                replaced: st.replaced,
            })
            .collect();
        let taken_at_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros().min(u128::from(u64::MAX)) as u64);
        crate::wire::snapshot::Snapshot {
            taken_at_us,
            processes,
            objects: self.objects.rows(now),
            pools,
            joins,
        }
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
                    incoming: Vec::new(),
                };
                f(&mut *slot.obj, &mut cx);
            }
            // A reply slot whose asker gave up is finished.
            self.objects.settle(id);
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
            diag!("cannot use a new connection: {e}");
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
            diag!("cannot register a connection: {e}");
            return None;
        }
        entry.insert(Conn::new(fd, proc, role, self.cfg.max_frame));
        Some(t)
    }

    /// Puts connection `t` in ring mode (issue 10): from now on its frames travel in `mem`.
    pub(crate) fn attach_ring(&mut self, t: Token, mem: std::sync::Arc<crate::wire::ring::RingMem>) {
        if let Some(c) = self.conns.get_mut(t) {
            c.attach_ring(mem);
            // The client may have written before the hub looked.
            self.again.push(t);
        }
    }

    /// Makes the rings of a new connection, unless the transport is sockets only
    /// (`MULTIPROC_TRANSPORT=socket`): the memory object (sealed against resizing) to pass to
    /// the client, and the hub's mapping.
    pub(crate) fn new_ring(&self) -> Result<Option<(OwnedFd, std::sync::Arc<crate::wire::ring::RingMem>)>, HubError> {
        if !crate::wire::ring::rings_enabled() {
            return Ok(None);
        }
        let cap = crate::wire::ring::cap_for(self.cfg.limits.ring_bytes);
        crate::runtime::ring::create(cap)
            .map(Some)
            .map_err(|e| HubError::Os(format!("cannot make a connection's shared-memory rings: {e}")))
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
            self.push_mail(t, mail);
        }
        while !self.replies.is_empty() {
            for (t, id, result, fds) in std::mem::take(&mut self.replies) {
                self.reply(t, id, result, fds);
            }
        }
    }

    /// Pushes mail to a subscribed connection, split into as many frames as the frame limit
    /// needs: every message `send` accepted fits in a frame of its own (a `Mail` frame's
    /// overhead is smaller than a `Send` frame's), so nothing is ever dropped for its size.
    /// A message with descriptors goes alone in a `MailFds` frame that carries them, in order
    /// with the others.
    fn push_mail(&mut self, t: Token, mail: Vec<held::Item>) {
        // Per-message MessagePack overhead (a bin32 header) and the frame's own, with margin.
        const PER_MSG: usize = 8;
        const PER_FRAME: usize = 64;
        let budget = self.cfg.max_frame.saturating_sub(PER_FRAME);
        let mut batch = Vec::new();
        let mut bytes = 0;
        for m in mail {
            if !m.fds.is_empty() {
                if !batch.is_empty() {
                    self.send_mail_frame(t, std::mem::take(&mut batch));
                    bytes = 0;
                }
                let nfds = m.fds.len() as u32;
                let frame = FromHub::MailFds { mail: m.bytes, nfds };
                if let Err(e) = self.send_to(t, &frame, m.fds.release()) {
                    diag!("could not push mail: {e}");
                }
                continue;
            }
            let cost = m.len() + PER_MSG;
            if !batch.is_empty() && bytes + cost > budget {
                self.send_mail_frame(t, std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += cost;
            batch.push(m.bytes);
        }
        if !batch.is_empty() {
            self.send_mail_frame(t, batch);
        }
    }

    fn send_mail_frame(&mut self, t: Token, batch: Vec<serde_bytes::ByteBuf>) {
        if let Err(e) = self.send_to(t, &FromHub::Mail(batch), Vec::new()) {
            // Cannot happen for messages a `Send` frame carried (see `push_mail`).
            diag!("could not push mail: {e}");
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
                Ok(state) => {
                    // Only a full socket needs WRITABLE; a full ring waits for the doorbell.
                    let done = state != conn::Flushed::SocketFull;
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
                Err(why) => {
                    let why = (c.ring.is_some() && !why.starts_with("write failed")).then_some(why);
                    self.close_conn(t, why)
                }
            }
        }
    }

    fn read_conn(&mut self, t: Token) {
        if self.reading.contains(&t) {
            return;
        }
        self.reading.push(t);
        self.read_conn_frames(t);
        self.reading.pop();
    }

    fn read_conn_frames(&mut self, t: Token) {
        let Some(c) = self.conns.get_mut(t) else { return };
        if c.paused.is_some() {
            // Read again once the reason has gone (`resume_paused`).
            return;
        }
        let end = match c.read_some() {
            Ok(end) => end,
            Err(why) => {
                self.close_conn(t, Some(why));
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
                    if let Some(why) = self.pause_reason(t) {
                        // Stop here: the frames already buffered (and an end of stream) are
                        // handled when reading resumes.
                        self.route_replies();
                        if let Some(c) = self.conns.get_mut(t) {
                            c.paused = Some(why);
                            c.partial_since = None;
                            self.paused.push(t);
                        }
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
        if let Some(c) = self.conns.get_mut(t) {
            if c.dec.buffered() == 0 {
                c.partial_since = None;
            } else if c.partial_since.is_none() {
                c.partial_since = Some(Instant::now());
            }
        }
        self.route_replies();
        match end {
            ReadEnd::Closed => self.close_conn(t, None),
            ReadEnd::Open { more: true } => self.again.push(t),
            ReadEnd::Open { more: false } => {
                // Ring mode: sleep on this connection only if nothing came meanwhile, and read
                // to the end of what a peer that hung up left.
                let Some(c) = self.conns.get_mut(t) else { return };
                if c.saw_eof {
                    self.again.push(t);
                    return;
                }
                if c.ring.is_none() {
                    self.sock_warm = true;
                }
                if !crate::wire::ring::hub_spin().is_zero() && c.ring.is_some() && self.hot.len() < MAX_HOT {
                    // Armed later, by `serve_hot`, unless the client sends again first.
                    if !self.hot.contains(&t) {
                        self.hot.push(t);
                    }
                    return;
                }
                match c.arm_ring() {
                    Ok(true) => self.again.push(t),
                    Ok(false) => {}
                    Err(why) => self.close_conn(t, Some(why)),
                }
            }
        }
    }

    /// The connections in `hot` (drained, not armed): those with frames go to `again`, to be
    /// read without looking at their sockets. When the hub has nothing else to do it first
    /// spins on them (bounded, `wire::ring::Spin`), then arms those still empty, so that it
    /// never sleeps on a ring it has not armed.
    fn serve_hot(&mut self) {
        if self.hot.is_empty() {
            return;
        }
        let idle = self.again.is_empty() && self.dirty.is_empty();
        let has_frames = |c: &Conn| {
            c.ring
                .as_ref()
                .is_some_and(|r| r.rx.available().map_or(true, |n| n > 0))
        };
        if idle {
            let (conns, hot) = (&self.conns, &self.hot);
            let _ = self.spin.wait(crate::wire::ring::hub_spin(), || {
                Ok::<bool, ()>(hot.iter().any(|&t| conns.get(t).is_some_and(has_frames)))
            });
        }
        let mut keep = Vec::new();
        for t in std::mem::take(&mut self.hot) {
            let Some(c) = self.conns.get_mut(t) else { continue };
            if c.paused.is_some() || c.ring.is_none() {
                continue;
            }
            if has_frames(c) {
                c.skip_pull = true;
                self.again.push(t);
                continue;
            }
            if !idle {
                keep.push(t);
                continue;
            }
            match c.arm_ring() {
                Ok(true) => self.again.push(t),
                Ok(false) => {}
                Err(why) => self.close_conn(t, Some(why)),
            }
        }
        self.hot = keep;
    }

    /// Closes a connection; `why` is logged when it is a protocol error.
    fn close_conn(&mut self, t: Token, why: Option<String>) {
        let Some(c) = self.conns.try_remove(t) else { return };
        // The slab reuses `t`: a new connection must not inherit this one's place in `hot`.
        self.hot.retain(|&h| h != t);
        if c.role == Role::Remote {
            // The relay process holds a copy of this socket to watch for the client's
            // hang-up: shut the socket itself down, so that the client reads end of stream and
            // the relay ends too.
            let _ = sys::fd::shutdown(c.fd.as_fd());
        }
        let raw = c.fd.as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&raw));
        if let Some(why) = why {
            let who = self.procs.describe(c.proc);
            diag!("dropped a connection of {who}: {why}");
            crate::trace::mp_warn!(
                pid = self.procs.pid_of(c.proc).unwrap_or(0),
                name = %who,
                reason = %why,
                "dropped a connection for bad input"
            );
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
            Role::Thread | Role::RootMain | Role::Remote => {}
        }
        drop(c);
        self.route_replies();
    }

    // ----- dispatch -------------------------------------------------------------------------

    fn dispatch(&mut self, t: Token, msg: ToHub) -> Result<(), String> {
        let (proc, remote) = self
            .conns
            .get(t)
            .map_or((ROOT_PROC, false), |c| (c.proc, c.role == Role::Remote));
        crate::trace::mp_trace!(proc = proc.0, conn = t, frame = %crate::trace::short(&msg), "frame");
        if remote {
            return self.dispatch_remote(t, proc, msg);
        }
        match msg {
            ToHub::Call { id, op } => {
                let caller = Caller { conn: t, id, proc };
                self.call(caller, op)
            }
            ToHub::Cast(c) => self.cast(t, proc, c),
        }
    }

    /// A request from another program's client (a `Role::Remote` connection): only operations
    /// on objects its relay process holds; anything else is refused, and a one-way message of
    /// another kind closes the connection.
    fn dispatch_remote(&mut self, t: Token, proc: ProcId, msg: ToHub) -> Result<(), String> {
        match msg {
            ToHub::Call { id, op } => {
                let caller = Caller { conn: t, id, proc };
                match op {
                    Op::Object { obj, .. } if self.objects.holds(obj, proc) => self.call(caller, op),
                    Op::Ping => self.call(caller, op),
                    _ => {
                        let why = "a remote client may only use the objects its server registered";
                        self.reply(t, id, Err(HubError::Invalid(why.into())), Vec::new());
                        Ok(())
                    }
                }
            }
            ToHub::Cast(c @ Cast::Object { obj, .. }) if self.objects.holds(obj, proc) => self.cast(t, proc, c),
            ToHub::Cast(_) => Err("a remote client sent a one-way message it may not send".into()),
        }
    }

    /// The descriptors of the request just decoded on `t`. A failure fails that request only.
    fn take_fds(&mut self, t: Token, n: usize) -> Result<Vec<OwnedFd>, HubError> {
        let Some(c) = self.conns.get_mut(t) else {
            return Err(HubError::Gone("the connection closed".into()));
        };
        c.take_fds(n).map_err(|e| match e {
            conn::FdsError::Dropped { got, want } if got < sys::io::MAX_FDS_PER_MSG => HubError::Os(format!(
                "too many open files in the root process (EMFILE): the kernel dropped {} of the {want} \
                 descriptors sent with this request; raise the root's descriptor limit (`ulimit -n`, \
                 RLIMIT_NOFILE) or have it close files",
                want - got
            )),
            conn::FdsError::Dropped { want, .. } => HubError::Invalid(format!(
                "{want} descriptors in one message, more than the {} one message may carry",
                sys::io::MAX_FDS_PER_MSG
            )),
            conn::FdsError::Missing { got, want } => HubError::Invalid(format!(
                "the request announced {want} descriptors but {got} came with it"
            )),
        })
    }

    fn too_many_conns(&self, proc: ProcId) -> HubError {
        HubError::Limit(format!(
            "too many connections: {} already has {} open to the hub, the most allowed \
             (HubLimits::max_connections_per_process); use fewer threads that call multiproc",
            self.procs.describe(proc),
            self.cfg.limits.max_connections_per_process
        ))
    }

    fn call(&mut self, caller: Caller, op: Op) -> Result<(), String> {
        let now = Instant::now();
        let answer: Answer = match op {
            Op::Ping => Answer::Now(Ok(Value::Unit)),
            Op::SendWait {
                to,
                payloads,
                wait,
                nfds,
            } => match self.mail_items(caller.conn, payloads, &nfds) {
                Err(e) => Answer::Now(Err(e)),
                Ok(items) => self.send_wait(caller, to, items, wait, now),
            },
            Op::Ask {
                to,
                payload,
                nfds,
                slot,
                token,
                wait,
            } => self.ask(caller, to, payload, nfds, slot, token, wait),
            Op::Names(op) => self.names_call(caller, op, now),
            Op::SubscribeMailbox => {
                self.subscribe_mailbox(caller.proc, caller.conn);
                Answer::Now(Ok(Value::Unit))
            }
            Op::Spawn(req) => match self.take_fds(caller.conn, req.task.nfds as usize) {
                Ok(fds) => self.spawn(caller, req, fds),
                Err(e) => Answer::Now(Err(e)),
            },
            Op::NewConn => match self.take_fds(caller.conn, 1) {
                Ok(_)
                    if self.conns.iter().filter(|(_, c)| c.proc == caller.proc).count()
                        >= self.cfg.limits.max_connections_per_process =>
                {
                    Answer::Now(Err(self.too_many_conns(caller.proc)))
                }
                Ok(mut fds) => match fds.pop() {
                    Some(fd) => match self.add_conn(fd, caller.proc, Role::Thread) {
                        Some(_) => Answer::Now(Ok(Value::Unit)),
                        None => Answer::Now(Err(HubError::Os("the hub could not watch the new connection".into()))),
                    },
                    None => Answer::Now(Err(HubError::Invalid("no connection came with the request".into()))),
                },
                Err(e) => Answer::Now(Err(e)),
            },
            Op::NewRingConn => match self.take_fds(caller.conn, 1) {
                Ok(_)
                    if self.conns.iter().filter(|(_, c)| c.proc == caller.proc).count()
                        >= self.cfg.limits.max_connections_per_process =>
                {
                    Answer::Now(Err(self.too_many_conns(caller.proc)))
                }
                Ok(mut fds) => match (fds.pop(), self.new_ring()) {
                    (None, _) => Answer::Now(Err(HubError::Invalid("no connection came with the request".into()))),
                    (_, Err(e)) => Answer::Now(Err(e)),
                    (Some(fd), Ok(ring)) => match self.add_conn(fd, caller.proc, Role::Thread) {
                        None => Answer::Now(Err(HubError::Os("the hub could not watch the new connection".into()))),
                        Some(t) => match ring {
                            None => Answer::Now(Ok(Value::Unit)),
                            Some((ring_fd, mem)) => {
                                let cap = mem.cap() as u64;
                                self.attach_ring(t, mem);
                                self.reply(caller.conn, caller.id, Ok(Value::Ring(cap)), vec![ring_fd]);
                                Answer::Parked
                            }
                        },
                    },
                },
                Err(e) => Answer::Now(Err(e)),
            },
            Op::NewRemoteConn => match self.take_fds(caller.conn, 1) {
                Ok(mut fds) => match fds.pop() {
                    Some(fd) => match self.add_conn(fd, caller.proc, Role::Remote) {
                        Some(_) => Answer::Now(Ok(Value::Unit)),
                        None => Answer::Now(Err(HubError::Os(
                            "the hub could not watch the remote connection".into(),
                        ))),
                    },
                    None => Answer::Now(Err(HubError::Invalid("no connection came with the request".into()))),
                },
                Err(e) => Answer::Now(Err(e)),
            },
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
            Op::NewObject { kind, secret } => match objects::create(kind, caller.proc, &|p| self.procs.has_ended(p)) {
                Ok((obj, lifetime)) => {
                    Answer::Now(Ok(Value::Obj(self.objects.insert(obj, lifetime, caller.proc, secret))))
                }
                Err(e) => Answer::Now(Err(e)),
            },
            Op::Object { obj, op } => self.object_call(caller, obj, op, false),
            Op::Snapshot => Answer::Now(Ok(Value::Snapshot(Box::new(self.snapshot())))),
            // The sync fast paths' shared memory (hub/objects/sync/arena.rs).
            Op::SyncArena => match objects::sync::arena::share() {
                Ok((len, fd)) => {
                    self.reply(caller.conn, caller.id, Ok(Value::SyncArena(len)), vec![fd]);
                    Answer::Parked
                }
                Err(e) => Answer::Now(Err(e)),
            },
        };
        if let Answer::Now(result) = answer {
            self.reply(caller.conn, caller.id, result, Vec::new());
        }
        self.route_replies();
        Ok(())
    }

    /// Mail that waits for room (`Op::SendWait`, and mail by name).
    fn send_wait(
        &mut self,
        caller: Caller,
        to: ProcId,
        payloads: Vec<held::Item>,
        wait: crate::wire::proto::Wait,
        now: Instant,
    ) -> Answer {
        let limit = self.cfg.limits.max_mailbox_bytes;
        let full = self.mailbox_pending(to).is_some_and(|n| n > limit) || self.procs.has_send_waiters(to);
        if !full {
            self.procs.deliver(to, payloads, &mut self.pushes);
            Answer::Now(Ok(Value::Unit))
        } else if self.procs.park_send(to, caller, wait, now, &mut self.timers, payloads) {
            if !self.mail_waiting.contains(&to) {
                self.mail_waiting.push(to);
            }
            Answer::Parked
        } else {
            Answer::Now(Err(HubError::Limit(format!(
                "the mailbox of {} is full (HubLimits::max_mailbox_bytes = {limit} bytes)",
                self.procs.describe(to)
            ))))
        }
    }

    /// `Op::Ask`: re-arm the caller's reusable reply slot, deliver the question, wait on the
    /// slot; in this order and in one step, so the answer cannot come before the slot is armed.
    #[allow(clippy::too_many_arguments)]
    fn ask(
        &mut self,
        caller: Caller,
        to: crate::wire::proto::AskTo,
        payload: serde_bytes::ByteBuf,
        nfds: u32,
        slot: crate::wire::proto::ObjId,
        token: u64,
        wait: crate::wire::proto::Wait,
    ) -> Answer {
        // The question's descriptors belong to this frame whatever happens next.
        let items = match self.mail_items(caller.conn, vec![payload], &[nfds]) {
            Ok(items) => items,
            Err(e) => return Answer::Now(Err(e)),
        };
        let to = match to {
            crate::wire::proto::AskTo::Proc(p) => p,
            crate::wire::proto::AskTo::Name(name) => match self.live_name(&name) {
                Some(p) => p,
                None => return Answer::Now(Err(names::no_name(&name))),
            },
        };
        let take = ObjOp::OneshotTake(wait);
        if !self.may_use(caller, slot, &take) {
            return Answer::Now(Err(HubError::UnknownObject));
        }
        let gone = self.procs.has_ended(to);
        let conns = &self.conns;
        let closed = |t: Token| !conns.contains(t);
        let Some(s) = self.objects.get_mut(slot) else {
            return Answer::Now(Err(HubError::UnknownObject));
        };
        let mut cx = Cx {
            now: Instant::now(),
            obj: slot,
            replies: &mut self.replies,
            timers: &mut self.timers,
            closed: &closed,
            incoming: Vec::new(),
        };
        if !s.obj.rearm(&mut cx, token, to, gone) {
            return Answer::Now(Err(HubError::WrongKind));
        }
        if !gone {
            self.procs.deliver(to, items, &mut self.pushes);
            self.note_mailbox(to);
        }
        self.object_call(caller, slot, take, false)
    }

    fn object_call(&mut self, caller: Caller, id: crate::wire::proto::ObjId, op: ObjOp, cast: bool) -> Answer {
        // Descriptors the request announced are taken off the connection whatever happens
        // next (they belong to this frame); an object that does not keep them closes them.
        let incoming = match self.take_fds(caller.conn, announced_fds(&op)) {
            Ok(fds) => fds,
            Err(e) => return Answer::Now(Err(e)),
        };
        if !self.may_use(caller, id, &op) {
            return Answer::Now(Err(HubError::UnknownObject));
        }
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
            incoming,
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
            Cast::Send { to, payload } => {
                self.procs
                    .deliver(to, vec![held::Item::plain(payload)], &mut self.pushes);
                self.note_mailbox(to);
            }
            Cast::SendBatch { to, payloads } => {
                let items = payloads.into_iter().map(held::Item::plain).collect();
                self.procs.deliver(to, items, &mut self.pushes);
                self.note_mailbox(to);
            }
            // An `.await` form was dropped: its call, if still parked, is answered `Cancelled`
            // (the same path as an interrupt, for this one call).
            Cast::Cancel(id) => {
                let pred = move |w: &objects::Waiter| w.who.conn == t && w.who.id == id;
                self.cancel_waiters(&pred, Some(&HubError::Cancelled));
            }
            Cast::SubscribeMailbox => self.subscribe_mailbox(proc, t),
            Cast::Outcome(o) => self.procs.set_outcome(proc, o),
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
                let early = self.early_reaped.get_mut(&proc).and_then(|m| m.remove(&pid));
                if let Some(exit) = early {
                    if self.procs.by_pid(pid) == Some(child) && self.procs.reaped_by(child, proc, from_forkserver) {
                        self.proc_exited(child, exit);
                    }
                }
            }
            Cast::Reaped { pid, exit } => {
                let from_forkserver = self.conns.get(t).is_some_and(|c| c.role == Role::ForkServer);
                match self.procs.by_pid(pid) {
                    // Only the process that reaps `pid` may say it ended: a forged report
                    // would make the hub release a live process's locks.
                    Some(p) if self.procs.reaped_by(p, proc, from_forkserver) => self.proc_exited(p, exit),
                    Some(p) => diag!(
                        "ignored a report from {} that {} ended: it is not that process's reaper",
                        self.procs.describe(proc),
                        self.procs.describe(p)
                    ),
                    // A process that forks children itself reports them on two connections; keep
                    // a report that overtook its `Forked` until that arrives (a bounded number
                    // per reporter).
                    None => {
                        let mine = self.early_reaped.entry(proc).or_default();
                        if mine.len() < 1024 {
                            mine.insert(pid, exit);
                        }
                    }
                }
            }
            // Without the object's secret this is a forged handle: ignored (silently: a
            // prober must not be able to flood stderr either).
            Cast::Retain { obj, secret } => {
                let _ = self.objects.retain_with(obj, proc, secret);
            }
            Cast::Release(id) => self.objects.release(id, proc),
            // Only a holder passes handles on: the receiver retains before it reports receipt,
            // on the same connection, so it holds the object by then too.
            Cast::InflightAdd(id) if self.objects.holds(id, proc) => self.objects.inflight(id, 1),
            Cast::InflightDone(id) if self.objects.holds(id, proc) => self.objects.inflight(id, -1),
            Cast::InflightAdd(_) | Cast::InflightDone(_) => {}
            Cast::ProcDropped(child) => self.procs.handle_dropped(child, proc),
            Cast::PoolStats { pool, stats } => match stats {
                // Bounded per process (a process cannot crowd out the others' pools) and in
                // size (the worker list).
                Some(mut st) => {
                    let known = self.pools.contains_key(&(proc, pool));
                    let mine = self.pools.range((proc, 0)..=(proc, u64::MAX)).count();
                    if known || mine < MAX_POOLS_PER_PROCESS {
                        st.workers.truncate(4096);
                        self.pools.insert((proc, pool), st);
                    }
                }
                None => {
                    self.pools.remove(&(proc, pool));
                }
            },
            Cast::Object { obj, op } => {
                let caller = Caller { conn: t, id: 0, proc };
                let _ = self.object_call(caller, obj, op, true);
            }
        }
        self.route_replies();
        Ok(())
    }

    /// Makes `t` the connection that receives `proc`'s mail, and queues on it what waits:
    /// first the mail, then the signals (a `Down` never overtakes the dead process's own last
    /// messages), both before anything queued on `t` afterwards (the reply to
    /// `Op::SubscribeMailbox`).
    fn subscribe_mailbox(&mut self, proc: ProcId, t: Token) {
        let waiting = self.procs.subscribe(proc, t);
        if !waiting.is_empty() {
            self.push_mail(t, waiting);
        }
        for sig in self.procs.take_signals(proc) {
            self.push_signal(t, sig);
        }
    }

    /// After mail to `to` was accepted: if its mailbox is over the limit, the sender's
    /// connection is paused after this frame (backpressure; nothing accepted is dropped).
    fn note_mailbox(&mut self, to: ProcId) {
        self.route_replies();
        if self
            .mailbox_pending(to)
            .is_some_and(|n| n > self.cfg.limits.max_mailbox_bytes)
        {
            self.mailbox_full = Some(to);
        }
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
                                incoming: Vec::new(),
                            };
                            let found = slot.obj.expire(&mut cx, conn, id);
                            self.objects.settle(obj);
                            found
                        }
                        None => false,
                    }
                }
                Target::Join(p) | Target::Spawn(p) | Target::Mail(p) => self.procs.expire(target, p, conn, id),
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
                diag!("cannot reap pid {pid}: {e}");
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
            Err(e) => diag!("pidfd_open({pid}) failed: {e}; using SIGCHLD"),
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
            Err(e) => diag!("cannot install the SIGCHLD handler: {e}"),
        }
    }

    /// A process's exit status is known.
    fn proc_exited(&mut self, proc: ProcId, exit: crate::wire::proto::ExitInfo) {
        self.drain_proc_conns(proc);
        self.proc_gone(proc);
        self.record_exit(proc, exit);
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
            // A dead process's last frames are handled whatever the limits.
            if let Some(c) = self.conns.get_mut(t) {
                c.paused = None;
            }
            self.drain_conn(t);
        }
    }

    /// Reads and handles everything `t` has buffered now (not only one read budget).
    fn drain_conn(&mut self, t: Token) {
        while self.conns.contains(t) && !self.reading.contains(&t) {
            self.read_conn(t);
            if self.again.last() == Some(&t) {
                self.again.pop();
            } else {
                break;
            }
        }
    }

    /// The capability check: may the caller use object `id`? A process may use an object
    /// only if it holds a handle to it (see `Objects::may_use`). A handle just received in a
    /// message is retained on the receiver's *main* connection while its calls come on a thread
    /// connection; the `Retain` was written to the kernel before the call was, so draining the
    /// main connection settles the question before the answer is "no".
    fn may_use(&mut self, caller: Caller, id: crate::wire::proto::ObjId, op: &ObjOp) -> bool {
        if self.objects.may_use(id, caller.proc, op) {
            return true;
        }
        let main = self
            .conns
            .iter()
            .find(|(_, c)| c.proc == caller.proc && matches!(c.role, Role::Main | Role::RootMain))
            .map(|(t, _)| t);
        match main {
            Some(m) if m != caller.conn => {
                self.drain_conn(m);
                self.objects.may_use(id, caller.proc, op)
            }
            _ => false,
        }
    }

    /// A process is dead to the hub (its main connection closed, or it was reaped).
    fn proc_gone(&mut self, proc: ProcId) {
        if !self.procs.mark_gone(proc) {
            return;
        }
        // Clients in other programs served on behalf of this process lose their server.
        let remote: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.proc == proc && c.role == Role::Remote)
            .map(|(t, _)| t)
            .collect();
        for t in remote {
            self.close_conn(t, None);
        }
        self.each_object(|obj, cx| obj.proc_gone(cx, proc));
        self.objects.drop_proc(proc);
        self.early_reaped.remove(&proc);
        self.registry.proc_gone(proc);

        self.pools.retain(|(owner, _), _| *owner != proc);
        if self.procs.is_lost(proc) {
            self.record_exit(proc, crate::wire::proto::ExitInfo::Signaled(sys::signal::SIGKILL));
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
            self.record_exit(child, crate::wire::proto::ExitInfo::Signaled(sys::signal::SIGKILL));
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

/// Descriptors a request on an object announces (attached to its frame).
fn announced_fds(op: &ObjOp) -> usize {
    match op {
        ObjOp::Queue(crate::wire::queue_ops::QueueOp::PutWait { nfds, .. }) => *nfds as usize,
        _ => 0,
    }
}

impl Hub {
    /// The mail of a `SendWait`, with the descriptors its frame announced (`nfds`, per
    /// payload; empty: none). A count that does not match the payloads, or descriptors past
    /// `HubLimits::max_held_fds`, fail the request (the descriptors are closed).
    fn mail_items(
        &mut self,
        t: Token,
        payloads: Vec<serde_bytes::ByteBuf>,
        nfds: &[u32],
    ) -> Result<Vec<held::Item>, HubError> {
        let total: u64 = nfds.iter().map(|&n| u64::from(n)).sum();
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        let fds = self.take_fds(t, total)?;
        if nfds.is_empty() {
            return Ok(payloads.into_iter().map(held::Item::plain).collect());
        }
        if nfds.len() != payloads.len() {
            return Err(HubError::Invalid(format!(
                "{} descriptor counts for {} messages",
                nfds.len(),
                payloads.len()
            )));
        }
        let mut rest = fds.into_iter();
        let mut items = Vec::with_capacity(payloads.len());
        for (bytes, &n) in payloads.into_iter().zip(nfds) {
            let group: Vec<OwnedFd> = rest.by_ref().take(n as usize).collect();
            // On a refusal the items built so far are dropped: their descriptors are closed.
            items.push(held::Item {
                bytes,
                fds: held::HeldFds::adopt(group, 0)?,
            });
        }
        Ok(items)
    }
}
