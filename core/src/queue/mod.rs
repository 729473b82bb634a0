//! Queues served by the hub: Queue, JoinableQueue, SimpleQueue.
