//! What can go wrong with a supervisor.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a supervisor ended, or why a request to it failed. Serialisable: a supervisor that
/// runs in a child process returns it as its worker's value, and its parent sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SupervisorError {
    /// The restart intensity was exceeded: more than `max_restarts` restarts within `period`.
    /// The supervisor stopped all its children (in reverse start order) and ended.
    #[error(
        "the supervisor gave up: child `{id}` needed more than {max_restarts} restarts within {period:?}; \
         all its children are stopped (raise the intensity with `SupervisorBuilder::intensity` if crashes \
         this frequent are expected)"
    )]
    GaveUp {
        /// The child whose exit exceeded the intensity.
        id: String,
        /// The intensity's restart limit.
        max_restarts: u32,
        /// The intensity's period.
        period: Duration,
    },
    /// A child could not be started (at the supervisor's start: the children started before
    /// it have been stopped again, and the supervisor did not start).
    #[error("child `{id}` could not be started: {reason}")]
    StartFailed {
        /// The child's id.
        id: String,
        /// What the start reported.
        reason: String,
    },
    /// No child has this id.
    #[error("the supervisor has no child `{0}` (see `which_children()` for the ids)")]
    NoChild(String),
    /// `start_child` with an id that is taken.
    #[error(
        "the supervisor already has a child `{0}`: give the new one another id, or terminate and delete the old one"
    )]
    DuplicateId(String),
    /// `restart_child` on a child that is running.
    #[error("child `{0}` is running: terminate it first (`terminate_child`), then restart it")]
    Running(String),
    /// The supervisor has stopped (asked to, or it gave up): it takes no more requests.
    #[error("the supervisor has stopped and takes no more requests")]
    Stopped,
    /// No answer within the deadline (the supervisor may still carry the request out).
    #[error("the supervisor did not answer in time")]
    Timeout,
    /// Ctrl-C in interrupt mode: the supervisor stopped its children and ended.
    #[error("interrupted (Ctrl-C in interrupt mode): the supervisor stopped its children")]
    Interrupted,
    /// A supervisor in another process could not be reached, or the hub failed.
    #[error("the supervisor could not be reached: {0}")]
    Unreachable(String),
}
