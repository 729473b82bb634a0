//! Hub state machines of the queues.

use super::{Lifetime, Object};
use crate::wire::proto::{HubError, ProcId};
use crate::wire::queue_ops::QueueKind;

/// Builds a queue object.
pub(crate) fn create(kind: QueueKind, _creator: ProcId) -> Result<(Box<dyn Object>, Lifetime), HubError> {
    match kind {}
}
