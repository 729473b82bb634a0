//! Actors: a state type with a message handler, run by the library in a process of its own.
//!
//! `#[multiproc::worker]` on an `impl` block that defines `fn handle(&mut self, msg: M, cx:
//! &mut ActorContext<M>) -> Flow` makes the type an [`Actor`]: [`Process::new(state)`] starts a
//! child that decodes the state, calls `init`, then hands every message of its mailbox to
//! `handle` until the handler returns [`Flow::Stop`] (or calls [`ActorContext::stop`]), and
//! finally calls `terminate` with the [`StopReason`]. `join` returns the final state.
//!
//! The loop, the mailbox and the exit reason come from the library:
//! - a normal stop ends the process with code 0 and `join` returns the state;
//! - a panic in a hook or in the handler calls `terminate` (with [`StopReason::Panicked`],
//!   message and location) when it happened in `handle`, then goes on, so the process ends as
//!   [`ExitStatus::Panicked`](crate::ExitStatus) with the same message and location;
//! - a signal (SIGKILL, SIGTERM) ends the process at once: `terminate` does not run, and the
//!   parent sees [`ExitStatus::Signaled`](crate::ExitStatus).
//!
//! A message that does not decode as `M` (a sender that used another type) is skipped with
//! one line on stderr; the actor goes on. Requests with an answer use the existing
//! [`Addr::ask`] and a [`ReplyTo`](crate::ReplyTo) inside the message.
//!
//! # Example
//! ```no_run
//! use multiproc::actor::{ActorContext, Flow};
//! use multiproc::{Process, ReplyTo};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! enum CounterMsg {
//!     Add(u64),
//!     Get(ReplyTo<u64>),
//!     Stop,
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Counter {
//!     n: u64,
//! }
//!
//! #[multiproc::worker]
//! impl Counter {
//!     fn handle(&mut self, msg: CounterMsg, _cx: &mut ActorContext<CounterMsg>) -> Flow {
//!         match msg {
//!             CounterMsg::Add(k) => self.n += k,
//!             CounterMsg::Get(reply) => {
//!                 let _ = reply.send(&self.n);
//!             }
//!             CounterMsg::Stop => return Flow::Stop,
//!         }
//!         Flow::Continue
//!     }
//! }
//!
//! let mut p = Process::new(Counter { n: 0 }).start()?;
//! let addr = p.addr::<CounterMsg>();
//! addr.send(&CounterMsg::Add(2))?;
//! assert_eq!(addr.ask(CounterMsg::Get)?, 2);
//! addr.send(&CounterMsg::Stop)?;
//! assert_eq!(p.join()?.n, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Process::new(state)`]: crate::Process::new

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::RecvError;
use crate::mailbox::{mailbox, Addr, Incoming};
use crate::names::Signal;

/// What the actor loop does after a message: go on, or stop (then `terminate` runs with
/// [`StopReason::Normal`] and the process ends with code 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "return it from `handle`: `Flow::Stop` ends the actor"]
pub enum Flow {
    /// Wait for the next message.
    Continue,
    /// End the actor normally.
    Stop,
}

/// Why an actor's loop ended, as its `terminate` hook sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StopReason {
    /// `handle` returned [`Flow::Stop`] or called [`ActorContext::stop`].
    Normal,
    /// `handle` panicked. After `terminate`, the panic goes on: the process ends as
    /// `ExitStatus::Panicked` with this message and location.
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column`, when known.
        location: Option<String>,
    },
    /// The mailbox could not be read (the hub is gone or stopped); the actor cannot receive.
    MailboxFailed(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Normal => f.write_str("stopped normally"),
            StopReason::Panicked { message, location } => write!(
                f,
                "panicked at {}: {message}",
                location.as_deref().unwrap_or("an unknown location")
            ),
            StopReason::MailboxFailed(why) => write!(f, "its mailbox failed: {why}"),
        }
    }
}

/// What an actor's hooks can do besides changing their state: know their own address, and
/// ask the loop to stop after the current message.
///
/// # Example
/// ```
/// use multiproc::actor::ActorContext;
///
/// let mut cx = ActorContext::<u32>::for_this_process();
/// assert_eq!(cx.me().pid(), multiproc::current_process().pid());
/// assert!(!cx.stopping());
/// cx.stop();
/// assert!(cx.stopping());
/// ```
#[derive(Debug)]
pub struct ActorContext<M> {
    me: Addr<M>,
    stop: bool,
    handled: u64,
}

impl<M> ActorContext<M> {
    /// A context for an actor running in this process (the loop makes one; tests of
    /// handlers can too).
    pub fn for_this_process() -> Self {
        ActorContext {
            me: crate::current_process().addr(),
            stop: false,
            handled: 0,
        }
    }

    /// This actor's own address (to hand to others, or to send itself a message).
    pub fn me(&self) -> &Addr<M> {
        &self.me
    }

    /// Stops the loop after the current message, as if `handle` returned [`Flow::Stop`].
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Has [`stop`](Self::stop) been called?
    pub fn stopping(&self) -> bool {
        self.stop
    }

    /// How many messages `handle` has been given so far in this incarnation.
    pub fn handled(&self) -> u64 {
        self.handled
    }
}

/// A state type with a message handler. `#[multiproc::worker]` on an `impl` block with
/// `fn handle` implements it (forwarding to the block's own `handle`, `init` and
/// `terminate`), and gives the type [`IntoTask`](crate::IntoTask) so that
/// `Process::new(state)` runs it.
pub trait Actor: Sized {
    /// The messages the actor's mailbox holds (serialisable: [`run`] needs
    /// `DeserializeOwned`, and senders `Serialize`; the bound is left to those uses so that a
    /// type without the traits gets one error, on the type, from `#[worker]`).
    type Msg;

    /// Runs once, before the first message.
    fn init(&mut self, _cx: &mut ActorContext<Self::Msg>) {}

    /// Handles one message.
    fn handle(&mut self, msg: Self::Msg, cx: &mut ActorContext<Self::Msg>) -> Flow;

    /// Handles a monitor's [`Down`](crate::Down) or, while this process traps exits
    /// ([`trap_exits`](crate::trap_exits)), a link's [`Exit`](crate::Exit). By default:
    /// ignored.
    fn signal(&mut self, _sig: Signal, _cx: &mut ActorContext<Self::Msg>) -> Flow {
        Flow::Continue
    }

    /// Runs once, when the loop ends normally or `handle` panicked (not when a signal killed
    /// the process).
    fn terminate(&mut self, _reason: &StopReason, _cx: &mut ActorContext<Self::Msg>) {}
}

/// What a handler may return: [`Flow`], or `()` (always [`Flow::Continue`]).
pub trait IntoFlow {
    /// The flow this value means.
    fn into_flow(self) -> Flow;
}

impl IntoFlow for Flow {
    fn into_flow(self) -> Flow {
        self
    }
}

impl IntoFlow for () {
    fn into_flow(self) -> Flow {
        Flow::Continue
    }
}

/// The actor loop, run in the actor's process: `init`, then `handle` for every message until
/// it stops, then `terminate`. Returns the final state. `#[worker]` calls it; call it
/// yourself to run an actor in the current process (its mailbox is this process's).
pub fn run<A: Actor>(mut state: A) -> A
where
    A::Msg: DeserializeOwned,
{
    let inbox = mailbox::<A::Msg>();
    let mut cx = ActorContext::for_this_process();
    state.init(&mut cx);
    let reason = loop {
        if cx.stop {
            break StopReason::Normal;
        }
        let event = match inbox.recv_event() {
            Ok(event) => event,
            Err(RecvError::Decode(e)) => {
                eprintln!(
                    "multiproc: actor (pid {}) skipped a message that is not a `{}`: {e}",
                    cx.me.pid(),
                    std::any::type_name::<A::Msg>()
                );
                continue;
            }
            // A Ctrl-C in interrupt mode (root only): keep serving.
            Err(RecvError::Interrupted) => continue,
            Err(e) => break StopReason::MailboxFailed(e.to_string()),
        };
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match event {
            Incoming::Message(msg) => {
                cx.handled += 1;
                state.handle(msg, &mut cx)
            }
            Incoming::Signal(sig) => state.signal(sig, &mut cx),
        }));
        match step {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => break StopReason::Normal,
            Err(payload) => {
                let report = crate::runtime::bootstrap::last_panic();
                let reason = StopReason::Panicked {
                    message: report
                        .as_ref()
                        .map_or_else(|| "a panic".to_owned(), |r| r.message.clone()),
                    location: report.and_then(|r| r.location),
                };
                state.terminate(&reason, &mut cx);
                std::panic::resume_unwind(payload);
            }
        }
    };
    state.terminate(&reason, &mut cx);
    state
}
