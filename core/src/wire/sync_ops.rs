//! Wire operations of the synchronisation primitives (Lock, RLock, Semaphore,
//! BoundedSemaphore, Event, Condition, Barrier).

use serde::{Deserialize, Serialize};

/// Kinds of synchronisation objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncKind {}

/// Operations on synchronisation objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncOp {}
