//! Synchronisation primitives served by the hub: Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier.
