//! The supervisor's loop: one thread that waits on every running child (`wait` on their
//! `Process` handles: a pidfd each) and on a wake-up pipe for requests, and applies the
//! restart rules. Built only on the public API (Process, wait, Pipe, mailbox).

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use serde::Serialize;

use super::spec::{ChildExit, ChildInfo, ChildKind, ChildSpec, Restart, Shutdown, Strategy};
use super::{SupervisorError, SupervisorMsg};
use crate::pipe::{wait, Connection, WaitError, Waitable};
use crate::process::{ExitStatus, Process};
use crate::ReplyTo;

/// How long a child that was sent SIGKILL may take to be reported dead before the
/// supervisor stops waiting for it (it never should: the hub reaps it at once).
const KILL_GRACE: Duration = Duration::from_secs(30);

/// Where the answer to a request goes: a thread of this process, or an asker elsewhere.
pub(crate) enum Reply<T> {
    Local(mpsc::Sender<T>),
    Remote(ReplyTo<T>),
}

impl<T: Serialize> Reply<T> {
    fn send(self, value: T) {
        match self {
            Reply::Local(tx) => {
                let _ = tx.send(value);
            }
            Reply::Remote(r) => {
                let _ = r.send(&value);
            }
        }
    }
}

/// A request to the loop.
pub(crate) enum Cmd {
    Which(Reply<Vec<ChildInfo>>),
    Terminate(String, Reply<Result<(), SupervisorError>>),
    Restart(String, Reply<Result<i32, SupervisorError>>),
    Delete(String, Reply<Result<(), SupervisorError>>),
    Start(ChildSpec, mpsc::Sender<Result<i32, (SupervisorError, Box<ChildSpec>)>>),
    Stop,
}

/// A running incarnation.
enum Running {
    Worker(Process<IgnoredAny>),
    Sup(Process<Result<(), SupervisorError>>),
}

impl Running {
    fn pid(&self) -> i32 {
        match self {
            Running::Worker(p) => p.pid(),
            Running::Sup(p) => p.pid(),
        }
    }

    fn proc_id(&self) -> crate::wire::proto::ProcId {
        match self {
            Running::Worker(p) => p.proc_id(),
            Running::Sup(p) => p.proc_id(),
        }
    }

    fn waitable(&self) -> &dyn Waitable {
        match self {
            Running::Worker(p) => p,
            Running::Sup(p) => p,
        }
    }

    fn is_alive(&self) -> bool {
        match self {
            Running::Worker(p) => p.is_alive(),
            Running::Sup(p) => p.is_alive(),
        }
    }

    fn kill(&self) {
        let _ = match self {
            Running::Worker(p) => p.kill(),
            Running::Sup(p) => p.kill(),
        };
    }

    /// Asks it to stop: SIGTERM for a worker, a `Stop` message for a supervisor.
    fn ask_to_stop(&self) {
        match self {
            Running::Worker(p) => {
                let _ = p.terminate();
            }
            Running::Sup(p) => {
                let _ = p.addr::<SupervisorMsg>().send(&SupervisorMsg::Stop);
            }
        }
    }

    /// Waits at most `limit` for it to end; how it ended, or `None` if it still runs.
    fn end_within(&mut self, limit: Duration) -> Option<ChildExit> {
        match self {
            Running::Worker(p) => {
                let _ = p.join_timeout(limit);
                p.exit_status().map(ChildExit::Status)
            }
            Running::Sup(p) => match p.join_timeout(limit) {
                Ok(Err(e)) => Some(ChildExit::Supervisor(e)),
                _ => p.exit_status().map(ChildExit::Status),
            },
        }
    }
}

struct Child {
    spec: ChildSpec,
    running: Option<Running>,
    starts: u64,
    start_seq: u64,
    last_exit: Option<ChildExit>,
}

impl Child {
    fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id.clone(),
            pid: self.running.as_ref().map(Running::pid),
            kind: self.spec.kind,
            restart: self.spec.restart,
            starts: self.starts,
            start_seq: self.start_seq,
            last_exit: self.last_exit.clone(),
            name: self.spec.name.clone(),
            proc: self.running.as_ref().map(Running::proc_id),
        }
    }
}

/// The supervisor's state, owned by its loop thread.
pub(crate) struct Core {
    children: Vec<Child>,
    strategy: Strategy,
    max_restarts: u32,
    period: Duration,
    restarts: VecDeque<Instant>,
    /// Starts made so far (for `ChildInfo::start_seq`).
    seq: u64,
    /// Link each child to this process (set when this process is not the root).
    link: bool,
    cmds: mpsc::Receiver<Cmd>,
    wake: Connection<u8>,
}

impl Core {
    pub(crate) fn new(
        specs: Vec<ChildSpec>,
        strategy: Strategy,
        max_restarts: u32,
        period: Duration,
        cmds: mpsc::Receiver<Cmd>,
        wake: Connection<u8>,
    ) -> Result<Self, SupervisorError> {
        let mut children: Vec<Child> = Vec::with_capacity(specs.len());
        for spec in specs {
            if children.iter().any(|c| c.spec.id == spec.id) {
                return Err(SupervisorError::DuplicateId(spec.id));
            }
            children.push(Child {
                spec,
                running: None,
                starts: 0,
                start_seq: 0,
                last_exit: None,
            });
        }
        Ok(Core {
            children,
            strategy,
            max_restarts,
            period,
            restarts: VecDeque::new(),
            seq: 0,
            link: false,
            cmds,
            wake,
        })
    }

    /// Links every child to this process from now on, and traps exits, so that the children
    /// end with this process (the hub SIGKILLs them when it dies abnormally) and a child's
    /// death does not end it. Not for the root: its children die with it anyway.
    pub(crate) fn link_children(&mut self) -> Result<(), SupervisorError> {
        crate::trap_exits(true).map_err(|e| SupervisorError::Unreachable(e.to_string()))?;
        self.link = true;
        Ok(())
    }

    /// Starts every child in order. If one fails, those started are stopped again (in
    /// reverse order) and the error is returned.
    pub(crate) fn start_all(&mut self) -> Result<(), SupervisorError> {
        for i in 0..self.children.len() {
            if let Err(e) = self.start(i) {
                self.stop_all();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Serves until asked to stop (`Ok`) or until it gives up (`Err`); either way every child
    /// has been stopped, in reverse start order, when it returns.
    pub(crate) fn serve(mut self) -> Result<(), SupervisorError> {
        let result = self.serve_inner();
        self.stop_all();
        result
    }

    fn serve_inner(&mut self) -> Result<(), SupervisorError> {
        loop {
            let ended: Vec<String> = {
                let mut objs: Vec<&dyn Waitable> = vec![&self.wake];
                let mut ids: Vec<&str> = Vec::new();
                for c in &self.children {
                    if let Some(r) = &c.running {
                        objs.push(r.waitable());
                        ids.push(&c.spec.id);
                    }
                }
                let ready = match wait(&objs, None) {
                    Ok(ready) => ready,
                    Err(WaitError::Interrupted) => return Err(SupervisorError::Interrupted),
                    Err(e) => return Err(SupervisorError::Unreachable(e.to_string())),
                };
                ready
                    .into_iter()
                    .filter(|&k| k > 0)
                    .map(|k| ids[k - 1].to_owned())
                    .collect()
            };
            for id in ended {
                self.child_ended(&id)?;
            }
            while self.wake.try_recv_bytes().is_ok() {}
            loop {
                match self.cmds.try_recv() {
                    Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
                    Ok(cmd) => self.command(cmd)?,
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id == id)
    }

    /// A running child was seen ending: record it, and restart what the rules say.
    fn child_ended(&mut self, id: &str) -> Result<(), SupervisorError> {
        let Some(i) = self.index(id) else { return Ok(()) };
        let child = &mut self.children[i];
        let Some(mut running) = child.running.take() else {
            return Ok(());
        };
        let exit = match running.end_within(Duration::ZERO) {
            Some(exit) => exit,
            None => {
                // Not ended after all (the wait can report a pidfd a moment before the hub).
                child.running = Some(running);
                return Ok(());
            }
        };
        let restart = match child.spec.restart {
            Restart::Permanent => true,
            Restart::Transient => !exit.is_normal(),
            Restart::Temporary => false,
        };
        child.last_exit = Some(exit);
        if !restart {
            if child.spec.restart == Restart::Temporary {
                self.children.remove(i);
            }
            return Ok(());
        }
        self.note_restart(i)?;
        let others: Vec<usize> = match self.strategy {
            Strategy::OneForOne => Vec::new(),
            Strategy::OneForAll => (0..self.children.len()).filter(|&j| j != i).collect(),
            Strategy::RestForOne => (i + 1..self.children.len()).collect(),
        };
        // Stop the others in reverse start order; remember which ones to start again.
        let mut again: Vec<String> = vec![self.children[i].spec.id.clone()];
        for &j in others.iter().rev() {
            if self.children[j].running.is_some() {
                self.stop_child(j);
                again.push(self.children[j].spec.id.clone());
            }
        }
        // Temporary children stopped this way are not restarted: they are removed.
        self.children
            .retain(|c| !(c.spec.restart == Restart::Temporary && c.running.is_none() && c.starts > 0));
        let order: Vec<usize> = (0..self.children.len())
            .filter(|&j| again.contains(&self.children[j].spec.id))
            .collect();
        for j in order {
            // A start that fails counts as one more restart, until the intensity says stop.
            while let Err(e) = self.start(j) {
                self.children[j].last_exit = Some(ChildExit::Supervisor(e));
                self.note_restart(j)?;
            }
        }
        Ok(())
    }

    /// Counts a restart of child `i`; gives up when more than `max_restarts` fall within
    /// `period`.
    fn note_restart(&mut self, i: usize) -> Result<(), SupervisorError> {
        let now = Instant::now();
        self.restarts.push_back(now);
        while self
            .restarts
            .front()
            .is_some_and(|&t| now.duration_since(t) > self.period)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() > self.max_restarts as usize {
            return Err(SupervisorError::GaveUp {
                id: self.children[i].spec.id.clone(),
                max_restarts: self.max_restarts,
                period: self.period,
            });
        }
        Ok(())
    }

    /// Starts child `i` (which is not running).
    fn start(&mut self, i: usize) -> Result<i32, SupervisorError> {
        self.seq += 1;
        let seq = self.seq;
        let link = self.link;
        let spec = &self.children[i].spec;
        let task = (spec.factory)();
        let fail = |e: crate::ProcessError| SupervisorError::StartFailed {
            id: spec.id.clone(),
            reason: e.to_string(),
        };
        let mut running = match spec.kind {
            ChildKind::Worker => {
                let mut b = Process::new(task).name(spec.id.clone());
                if let Some(m) = spec.method {
                    b = b.start_method(m);
                }
                Running::Worker(b.start().map_err(fail)?)
            }
            ChildKind::Supervisor => {
                let mut b = Process::new(task.retype::<Result<(), SupervisorError>>()).name(spec.id.clone());
                if let Some(m) = spec.method {
                    b = b.start_method(m);
                }
                Running::Sup(b.start().map_err(fail)?)
            }
        };
        let pid = running.pid();
        if let Err(e) = adopt(link, &running, spec) {
            running.kill();
            let _ = running.end_within(KILL_GRACE);
            return Err(e);
        }
        let child = &mut self.children[i];
        child.running = Some(running);
        child.starts += 1;
        child.start_seq = seq;
        Ok(pid)
    }

    /// Stops child `i` as its shutdown policy says, and records how it ended.
    fn stop_child(&mut self, i: usize) {
        let child = &mut self.children[i];
        let Some(mut running) = child.running.take() else {
            return;
        };
        let exit = match child.spec.shutdown {
            Shutdown::Brutal => {
                running.kill();
                running.end_within(KILL_GRACE)
            }
            Shutdown::Timeout(grace) => {
                running.ask_to_stop();
                match running.end_within(grace) {
                    Some(exit) => Some(exit),
                    None => {
                        running.kill();
                        running.end_within(KILL_GRACE)
                    }
                }
            }
        };
        if exit.is_none() && running.is_alive() {
            // Never seen: the hub did not report a SIGKILLed child within 30 s.
            eprintln!(
                "multiproc: supervisor: child `{}` (pid {}) did not end after SIGKILL",
                child.spec.id,
                running.pid()
            );
        }
        child.last_exit = exit.or(Some(ChildExit::Status(ExitStatus::Signaled(9))));
    }

    /// Stops every running child, in reverse start order.
    fn stop_all(&mut self) {
        for i in (0..self.children.len()).rev() {
            self.stop_child(i);
        }
    }

    fn command(&mut self, cmd: Cmd) -> Result<(), SupervisorError> {
        match cmd {
            Cmd::Which(reply) => reply.send(self.children.iter().map(Child::info).collect()),
            Cmd::Terminate(id, reply) => match self.index(&id) {
                None => reply.send(Err(SupervisorError::NoChild(id))),
                Some(i) => {
                    self.stop_child(i);
                    if self.children[i].spec.restart == Restart::Temporary {
                        self.children.remove(i);
                    }
                    reply.send(Ok(()));
                }
            },
            Cmd::Restart(id, reply) => match self.index(&id) {
                None => reply.send(Err(SupervisorError::NoChild(id))),
                Some(i) if self.children[i].running.is_some() => reply.send(Err(SupervisorError::Running(id))),
                Some(i) => reply.send(self.start(i)),
            },
            Cmd::Delete(id, reply) => match self.index(&id) {
                None => reply.send(Err(SupervisorError::NoChild(id))),
                Some(i) if self.children[i].running.is_some() => reply.send(Err(SupervisorError::Running(id))),
                Some(i) => {
                    self.children.remove(i);
                    reply.send(Ok(()));
                }
            },
            Cmd::Start(spec, reply) => {
                if self.index(&spec.id).is_some() {
                    let id = spec.id.clone();
                    let _ = reply.send(Err((SupervisorError::DuplicateId(id), Box::new(spec))));
                } else {
                    self.children.push(Child {
                        spec,
                        running: None,
                        starts: 0,
                        start_seq: 0,
                        last_exit: None,
                    });
                    let i = self.children.len() - 1;
                    match self.start(i) {
                        Ok(pid) => {
                            let _ = reply.send(Ok(pid));
                        }
                        Err(e) => {
                            let child = self.children.remove(i);
                            let _ = reply.send(Err((e, Box::new(child.spec))));
                        }
                    }
                }
            }
            Cmd::Stop => {}
        }
        Ok(())
    }
}

/// Names a new incarnation, and links it to this process when the supervisor runs in a
/// child process (so that the children die with it, even by SIGKILL).
fn adopt(link: bool, running: &Running, spec: &ChildSpec) -> Result<(), SupervisorError> {
    if link {
        crate::link(running.pid()).map_err(|e| SupervisorError::StartFailed {
            id: spec.id.clone(),
            reason: format!("cannot link to it: {e}"),
        })?;
    }
    if let Some(name) = &spec.name {
        crate::register_pid(name, running.pid()).map_err(|e| SupervisorError::StartFailed {
            id: spec.id.clone(),
            reason: format!("cannot register it as `{name}`: {e}"),
        })?;
    }
    Ok(())
}
