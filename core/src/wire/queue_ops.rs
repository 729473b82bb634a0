//! Wire operations of the queues (Queue, JoinableQueue, SimpleQueue).
//!
//! Items travel as opaque MessagePack bodies ([`ByteBuf`]); the hub never decodes them.
//! Replies use the shared [`Value`](super::proto::Value) shapes: `Unit` for success,
//! `Batch` for items, `U64` for a count, and `U64(`[`QueueStatus`]` code)` for the queue's own
//! refusals (closed, too many `task_done`). `Timeout` from the hub means "would have had to wait
//! longer": Full for a put, Empty for a get, still unfinished for a join.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::proto::Wait;

/// Kinds of queue objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueueKind {
    /// `multiprocessing.Queue`; `maxsize` 0 means unbounded.
    Queue {
        /// The capacity (0: unbounded).
        maxsize: u64,
    },
    /// `multiprocessing.JoinableQueue`: a queue that counts unfinished items and redelivers
    /// those whose consumer died before `task_done`.
    Joinable {
        /// The capacity (0: unbounded).
        maxsize: u64,
    },
    /// `multiprocessing.SimpleQueue`: unbounded.
    Simple,
}

/// Operations on queue objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueueOp {
    /// One-way (unbounded queues): append the items, in order. Dropped if the queue is closed.
    Put(Vec<ByteBuf>),
    /// Call (any queue): append one item, waiting up to `wait` for room. Replies `Unit`, or
    /// `U64(Closed)`; `Timeout` means the queue stayed full. An item that carries descriptors
    /// (a `Connection`, shared memory) is always put this way, with its `nfds` descriptors
    /// attached to the frame; the hub keeps them with the item (`HubLimits::max_held_fds`).
    PutWait {
        /// The item.
        item: ByteBuf,
        /// How long to wait for room.
        wait: Wait,
        /// Descriptors attached to the frame that belong to the item.
        #[serde(default)]
        nfds: u32,
    },
    /// Call: take up to `max` items (at least one), waiting up to `wait` for the first.
    /// Replies `Batch`, or `U64(Closed)`; `Timeout` means the queue stayed empty. An item
    /// with descriptors comes alone, as `WithFds` (its descriptors attached): such items are
    /// never prefetched.
    Get {
        /// At most this many items.
        max: u32,
        /// How long to wait for the first.
        wait: Wait,
    },
    /// One-way: items taken by this process but never handed to the user (a handle dropped
    /// with prefetched items); they go back to the front of the queue, in order.
    Requeue(Vec<ByteBuf>),
    /// Call: the number of items queued. Replies `U64`.
    Len,
    /// Call: close the queue. Every later put and get fails with `Closed`, and parked callers
    /// are answered `Closed`. Replies `Unit`.
    Close,
    /// JoinableQueue, call or one-way: one item is finished. Replies `Unit`, or
    /// `U64(TooManyTaskDone)` (the count is unchanged). See the hub object for the rules.
    TaskDone,
    /// JoinableQueue, call: wait until every item put has been finished. Replies `Unit`.
    Join(Wait),
}

/// A queue's refusal, sent as `Value::U64(status as u64)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum QueueStatus {
    /// The queue is closed.
    Closed = 1,
    /// `task_done` was called more times than items were taken.
    TooManyTaskDone = 2,
}

impl QueueStatus {
    /// Decodes a status code.
    pub fn from_code(code: u64) -> Option<QueueStatus> {
        match code {
            1 => Some(QueueStatus::Closed),
            2 => Some(QueueStatus::TooManyTaskDone),
            _ => None,
        }
    }
}
