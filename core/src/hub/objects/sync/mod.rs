//! Hub state machines of the synchronisation primitives.

use super::{Lifetime, Object};
use crate::wire::proto::{HubError, ProcId};
use crate::wire::sync_ops::SyncKind;

/// Builds a synchronisation object.
pub(crate) fn create(kind: SyncKind, _creator: ProcId) -> Result<(Box<dyn Object>, Lifetime), HubError> {
    match kind {}
}
