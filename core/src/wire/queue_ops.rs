//! Wire operations of the queues (Queue, JoinableQueue, SimpleQueue).

use serde::{Deserialize, Serialize};

/// Kinds of queue objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueueKind {}

/// Operations on queue objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueueOp {}
