//! The names family of hub operations: the process registry (`register` / `whereis`), mail by
//! name, monitors, links and trapping exits; and the signals the hub pushes on a process's
//! mailbox connection (`FromHub::Signal`).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::proto::{ObjId, PanicReport, ProcId, ProcInfo, Wait};

/// Which process an operation is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// A process by the hub's id (from an `Addr` or a `Process`).
    Proc(ProcId),
    /// A process by its OS pid.
    Pid(i32),
    /// The process registered under this name now.
    Name(String),
}

/// An operation of the names family (`Op::Names`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum NamesOp {
    /// Registers `name` for the process `pid` (`None`: the caller). Replies `Unit`.
    Register {
        /// The name.
        name: String,
        /// Whose (the caller, one of its children, or anyone when the caller is the root).
        pid: Option<i32>,
    },
    /// Drops a name. Replies `Unit`.
    Unregister {
        /// The name.
        name: String,
    },
    /// Who has `name`? Replies `Where`.
    WhereIs {
        /// The name.
        name: String,
    },
    /// Mail by name, resolved now: delivered to the process registered under `name`, or
    /// `NoProc` if nobody is. Waits for room like `Op::SendWait`. Replies `Unit`.
    Send {
        /// The name.
        name: String,
        /// The encoded messages, in order.
        payloads: Vec<ByteBuf>,
        /// How long to wait for room in the receiver's mailbox.
        wait: Wait,
    },
    /// The reply slot of an `ask` by name: resolves `name` now and creates a one-shot slot that
    /// watches that process. Replies `Slot`.
    AskSlot {
        /// The name.
        name: String,
        /// The slot's answer secret (see `ObjectKind::Oneshot`).
        token: u64,
        /// The object's secret (see `Op::NewObject`).
        secret: u64,
    },
    /// Watches a process: one `SignalMsg::Down` when it ends (at once if it has). Replies
    /// `Monitor`.
    Monitor(Target),
    /// Stops watching. Replies `Demonitored(true)` if no `Down` was sent for it.
    Demonitor(u64),
    /// Links the caller and the target. Replies `Unit`.
    Link(Target),
    /// Removes the link, if any. Replies `Unit`.
    Unlink(Target),
    /// Turns trapping exits on or off for the caller. Replies `Trap(previous)`.
    TrapExits(bool),
}

/// How a watched or linked process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// There was no such process (never existed, or ended and forgotten by the hub).
    NoProc,
    /// `exit(code)` (0 after a worker returned normally).
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
    /// Its worker panicked (then exited with code 1).
    Panicked(PanicReport),
}

/// A signal pushed on a process's mailbox connection (`FromHub::Signal`), in order with mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalMsg {
    /// A monitored process ended.
    Down {
        /// The monitor's reference.
        monitor: u64,
        /// The process (`ProcId(0)` when unknown).
        proc: ProcId,
        /// Its pid (0 when unknown).
        pid: i32,
        /// The name it was registered under when it ended (or the name that was monitored).
        name: Option<String>,
        /// How it ended.
        reason: Reason,
    },
    /// A linked process ended (delivered to a process that traps exits).
    Exit {
        /// The process.
        proc: ProcId,
        /// Its pid.
        pid: i32,
        /// Its registered name when it ended.
        name: Option<String>,
        /// How it ended.
        reason: Reason,
    },
}

/// A reply of the names family (`Value::Names`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum NamesReply {
    /// The process registered under the name, if any.
    Where(Option<ProcInfo>),
    /// A new monitor's reference.
    Monitor(u64),
    /// Was the monitor still active (so that no `Down` was or will be sent for it)?
    Demonitored(bool),
    /// Was the caller trapping exits before?
    Trap(bool),
    /// The reply slot of an `ask` by name, and the process it watches (the one to ask).
    Slot {
        /// The slot.
        obj: ObjId,
        /// The process registered under the name now.
        proc: ProcInfo,
    },
}
