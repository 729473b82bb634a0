//! The shared-memory layout of the synchronisation fast paths (the *sync arena*).
//!
//! The hub creates one anonymous shared memory object of [`ARENA_BYTES`] (sparse: a page costs
//! memory only once a slot in it is used) and every process that wants the fast paths maps it
//! (`Op::SyncArena` hands out its descriptor). The arena is an array of [`ARENA_SLOTS`] slots of
//! [`SLOT_BYTES`] bytes; **slot `i` belongs to the hub object whose slab index is `i`**, so the
//! object table's free list is the arena's free list, and a handle (an object id) already says
//! where its slot is. An object whose index is beyond the arena, a process without the mapping,
//! or a program run with [`FASTPATH_ENV`]`=0` uses the message protocol only.
//!
//! # Who writes which word
//! | word | written by | meaning |
//! |---|---|---|
//! | `secret` | hub only (when the object is created) | the object's capability secret: a fast operation needs a handle that carries it |
//! | `ident` | hub only (when the object is created and when it is reclaimed) | the full object id that owns the slot; 0 when unused. Clients check it before every fast operation, so a wrong, stale or forged id never touches someone else's slot. |
//! | `kind` | hub only (at creation) | [`KIND_LOCK`], [`KIND_RLOCK`], ... |
//! | `word` | anyone, by compare-and-swap only | the state word (below) |
//! | `aux` | hub only (Semaphore: at creation; Lock/RLock: whenever its condition queues change) | Semaphore: bound + 1 (0: unbounded). Lock/RLock: 1 while condition waiters are parked in the hub, else 0 ([`COND_PARKED`]) |
//! | `count`, `seq`, `pid` | the lock's current owner (or the hub while it grants the lock on a waiter's behalf, before answering it) | recursion count, ownership sequence number (a guard's ticket), the owner's OS pid (informational) |
//! | `holders[i]` | the process it names (atomic add/subtract), and the hub when that process dies (cleared) | Semaphore: permits that process holds through fast-path guards |
//! | `holders[0]`, `holders[1]` (Lock/RLock) | the thread that takes the condition seat, while it holds the lock, before it sets `cwait` to waiting | the seat's waiter (its owner token) and its condition ([`cond_tag`]) |
//! | `cwait` (Lock/RLock) | the seat's taker (free → waiting, holding the lock); a notifier (waiting → next free, holding the lock), the waiter itself on timeout or interrupt, and the hub (notify from a process without the arena; death of the waiter): waiting → next free, by compare-and-swap only | the *condition seat* (below): the futex word one condition waiter sleeps on |
//!
//! # The lock word (Lock, RLock)
//! - bits 32..64: the owning process's id + 1 (0: nobody); bits 0..29: the owning thread's id
//!   (truncated to 29 bits); bit 31: [`WAITERS`]; bit 30: [`FAIR`]; bit 29: [`NOTIFIED`].
//! - `0`: free. [`DIED`]: free, and the previous owner died holding it (the next owner is told).
//! - `token | WAITERS`: held, and callers are parked in the hub: the owner's release ends with a
//!   one-way `HandOff` to the hub, which gives the lock to the first parked caller if it is
//!   still free when the hub looks. The release sets [`NOTIFIED`] with its `HandOff`, and the
//!   hub clears it when it looks at the word: while it is set, further releases send nothing
//!   (one message per hub pass, not one per release, however fast a barging process loops).
//! - `WAITERS` alone: free while callers are parked. A running process may take it by the fast
//!   path (*barging*: CAS `WAITERS → token|WAITERS`, keeping the bit, so its own release tells
//!   the hub in turn); otherwise the hub hands it to the first parked caller.
//! - `FAIR` (only ever with `WAITERS`): the first parked caller has waited longer than the
//!   hub's fairness budget, so nobody may barge: the next release hands the lock over through
//!   the hub, in FIFO order, and `WAITERS | FAIR` alone counts as held. This is
//!   parking_lot's *eventual fairness*: barging gives throughput, and the budget bounds how long
//!   a parked caller can be overtaken.
//!
//! `WAITERS` is set by the hub when it parks a caller, and by a client just before it sends its
//! `Acquire`. `FAIR` is set and cleared by the hub only; `NOTIFIED` is set by a releasing owner
//! and cleared by the hub. A word with `WAITERS` set is changed by the hub, plus the
//! transitions `token|flags → flags|NOTIFIED` by the releasing owner and
//! `WAITERS[|NOTIFIED] → token|WAITERS[|NOTIFIED]` by a barging acquirer. A `WAITERS` with
//! nobody parked costs one message at the next release.
//!
//! # The event word
//! [`EV_SET`] is the flag; [`EV_WAITERS`] says callers are parked in the hub. Clients set and
//! clear the flag with one atomic operation; a `set` that finds `EV_WAITERS` tells the hub,
//! which wakes everyone and clears the bit. The hub sets `EV_WAITERS` with one CAS against the
//! unset flag before parking a caller, so a concurrent `set` is either seen by the hub or sees
//! the bit.
//!
//! # The semaphore word (Semaphore, BoundedSemaphore)
//! The low 32 bits are the free permits, bit 32 is [`SEM_WAITERS`]. A fast acquire is one
//! CAS `v → v-1` (v > 0) and then one add to the caller's `holders` entry; a guard's release
//! subtracts from the entry first and then adds the permit (one CAS `v → v+1`, or through the
//! hub if `SEM_WAITERS` is set). So a process's entry never counts a permit it does not hold:
//! when it dies, the hub gives back exactly its entry. A process killed between the two steps
//! (a window of a few instructions) takes that one permit with it: the semaphore ends one
//! permit short, never one over (its bound and mutual exclusion hold).
//!
//! # The condition seat (Lock/RLock)
//! One waiter of the conditions built on a lock may wait in shared memory instead of in the
//! hub: it takes the *seat* (`cwait`, `holders[0..2]`) while holding the lock, releases the
//! lock and sleeps on `cwait` with a futex; a notifier holding the lock bumps `cwait` and
//! wakes it with one `futex_wake`, no message. `cwait` = generation (bits 2..32) | state
//! (bits 0..2: [`CW_FREE`], [`CW_WAITING`] or [`CW_WOKEN`]). Taking the seat:
//! `g|FREE → g|WAITING` (or `g|WOKEN → g|WAITING`, then waking the previous sleeper); every
//! end of a wait leaves `g|WAITING` by compare-and-swap, by whoever ends it: a notifier
//! (`→ (g+1)|WOKEN`, the wake deferred until the lock is released), the waiter timing out or
//! interrupted, or the hub when the waiter died or a process without the arena notified
//! (`→ (g+1)|FREE`). Exactly one of them wins, and the sleeping waiter, which remembers `g`,
//! knows it was notified when the word is no longer `g|WAITING` and it did not end the wait
//! itself. Only one waiter fits; a
//! second waiter, or any waiter while [`COND_PARKED`] says the hub holds waiters, waits in the
//! hub as before, so the seat's waiter is always the oldest, and FIFO order holds: a notify
//! serves the seat first, then (if `n` is left and `aux` says so) the hub's queue.
//!
//! # Trust
//! Every process of the program can write the arena. A process that scribbles on it can break
//! the primitives whose slots it overwrites (a lock that looks held forever, two owners), but
//! never the hub: the hub only performs atomic operations on the arena, in bounded loops, and
//! validates nothing it reads there beyond decoding it.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Bytes per slot (one cache line).
pub const SLOT_BYTES: usize = 64;
/// Slots in the arena (objects with a larger slab index use the message protocol).
pub const ARENA_SLOTS: usize = 1 << 20;
/// The arena's size in bytes (64 MiB of address space; memory is used only where slots are).
pub const ARENA_BYTES: usize = SLOT_BYTES * ARENA_SLOTS;

/// The environment variable that turns the fast paths off (`0`, `off` or `false`): every
/// synchronisation call then takes the message protocol, as on a platform without the arena.
pub const FASTPATH_ENV: &str = "MULTIPROC_SYNC_FASTPATH";

/// Kind tag of a Lock's slot.
pub const KIND_LOCK: u32 = 0x5359_0001;
/// Kind tag of an RLock's slot.
pub const KIND_RLOCK: u32 = 0x5359_0002;
/// Kind tag of an Event's slot.
pub const KIND_EVENT: u32 = 0x5359_0003;
/// Kind tag of a Semaphore's (or BoundedSemaphore's) slot.
pub const KIND_SEM: u32 = 0x5359_0004;

/// Lock word: callers are parked in the hub.
pub const WAITERS: u64 = 1 << 31;
/// Lock word: no barging; the lock goes to the first parked caller (set by the hub only, with
/// [`WAITERS`]).
pub const FAIR: u64 = 1 << 30;
/// Lock word: a release has sent the hub a `HandOff` that the hub has not looked at yet (set
/// by the releasing owner, cleared by the hub; only ever with [`WAITERS`]).
pub const NOTIFIED: u64 = 1 << 29;
/// Lock word: the flag bits (the rest is an owner's token, [`DIED`] or 0).
pub const LOCK_FLAGS: u64 = WAITERS | FAIR | NOTIFIED;
/// Lock word: the thread bits of a token.
const THREAD_BITS: u64 = NOTIFIED - 1;
/// Lock word: free, and its previous owner died holding it.
pub const DIED: u64 = 1;

/// Event word: the flag is set.
pub const EV_SET: u64 = 1;
/// Event word: callers are parked in the hub (a `set` must tell the hub).
pub const EV_WAITERS: u64 = 2;

/// Semaphore word: the free permits.
pub const SEM_VALUE: u64 = 0xffff_ffff;
/// Semaphore word: callers are parked in the hub (only the hub sets it, and only while the
/// value is 0; a release that sees it goes to the hub, which hands the permits over).
pub const SEM_WAITERS: u64 = 1 << 32;

/// The tag of a process in a semaphore's `holders` entry.
pub fn holder_tag(proc: u64) -> u64 {
    u64::from((proc as u32).wrapping_add(1)) << 32
}

/// Is the fast path enabled by the environment (see [`FASTPATH_ENV`])?
pub fn fastpath_enabled() -> bool {
    !matches!(
        std::env::var(FASTPATH_ENV).as_deref(),
        Ok("0") | Ok("off") | Ok("false") | Ok("no")
    )
}

/// One slot. Every field is an atomic: any bit pattern is a valid value, so a slot may be read
/// from memory that another process writes (or scribbles on) at any time.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct SyncSlot {
    /// The owning object's id (0: unused). Hub-written.
    pub ident: AtomicU64,
    /// The kind tag. Hub-written.
    pub kind: AtomicU32,
    /// Semaphore: its bound + 1 (0: unbounded). Hub-written at creation.
    pub aux: AtomicU32,
    /// The state word (see the module docs).
    pub word: AtomicU64,
    /// RLock recursion count. Owner-written.
    pub count: AtomicU32,
    /// Ownership sequence number (a guard's ticket). Owner-written.
    pub seq: AtomicU32,
    /// The owner's OS pid (informational). Owner-written.
    pub pid: AtomicI32,
    /// Lock/RLock: the condition seat's futex word (see the module docs).
    pub cwait: AtomicU32,
    /// The object's secret (the capability its handles carry). Hub-written at creation; a
    /// handle whose secret differs (a forged one) does not take the fast path, so the hub
    /// refuses it as it refuses every request from a process that holds no handle.
    pub secret: AtomicU64,
    /// Semaphore: permits held through fast-path guards, per process: entry =
    /// `(process id + 1) << 32 | permits held`. An entry is claimed (CAS 0 → tag) and updated by
    /// its process only, and cleared by the hub when that process dies (which returns the
    /// permits).
    pub holders: [AtomicU64; SEM_HOLDERS],
}

/// Condition seat: free (nobody waits in shared memory).
pub const CW_FREE: u32 = 0;
/// Condition seat: a waiter sleeps on it.
pub const CW_WAITING: u32 = 1;
/// Condition seat: the wait was ended by a notify, and the sleeper is still to be woken. The
/// notifier holds the lock, so the wake is deferred until the lock is free (else the woken
/// waiter would run, find the lock held and have to wait for it again): whoever releases the
/// lock next (`g|WOKEN → g|FREE`, then `futex_wake`), or the next waiter taking the seat
/// (`g|WOKEN → g|WAITING`, waking after it has released the lock), wakes it.
pub const CW_WOKEN: u32 = 2;
/// Condition seat: the state bits of `cwait` (the rest is the generation).
pub const CW_STATE: u32 = 3;

/// The seat word that ends the wait `w` (`g|WAITING`): free, next generation.
pub fn cw_next(w: u32) -> u32 {
    (w & !CW_STATE).wrapping_add(CW_STATE + 1) | CW_FREE
}

/// The seat word by which a notifier ends the wait `w` (`g|WAITING`): woken, next generation
/// (the futex wake is still to come, see [`CW_WOKEN`]).
pub fn cw_notified(w: u32) -> u32 {
    cw_next(w) | CW_WOKEN
}

/// Ends the wait of the condition seat's waiter if it waits on the condition `tag`
/// (`g|WAITING → next(g|WAITING)`: [`cw_notified`] for a notifier that holds the lock,
/// [`cw_next`] for the hub, which wakes the sleeper at once). Whether this call ended it; it
/// fails if the wait ended meanwhile (timeout, interrupt, death): nobody to notify there.
pub fn end_seat_wait(s: &SyncSlot, tag: u64, next: fn(u32) -> u32) -> bool {
    let w = s.cwait.load(Ordering::SeqCst);
    if w & CW_STATE != CW_WAITING || s.holders[1].load(Ordering::SeqCst) != tag {
        return false;
    }
    s.cwait
        .compare_exchange(w, next(w), Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// Ends the `WOKEN` state of a condition seat (`g|WOKEN → g|FREE`) unless `held()` says the
/// lock is held again (its owner's release does it then). `true` when it did, and the caller
/// must now wake the sleeper (`futex_wake` on `cwait`). At most `tries` attempts: the word is
/// shared memory that any process may keep changing.
pub fn claim_seat_wake(s: &SyncSlot, tries: u32, held: impl Fn() -> bool) -> bool {
    for _ in 0..tries {
        let w = s.cwait.load(Ordering::SeqCst);
        if w & CW_STATE != CW_WOKEN || held() {
            return false;
        }
        if s.cwait
            .compare_exchange(w, (w & !CW_STATE) | CW_FREE, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// `aux` of a Lock/RLock: condition waiters are parked in the hub (a new waiter must not take
/// the seat, and a notify with `n` left must tell the hub).
pub const COND_PARKED: u32 = 1;

/// The tag of a condition (`CondKey { proc, seq }`) in the seat; never 0.
pub fn cond_tag(proc: u64, seq: u64) -> u64 {
    (u64::from((proc as u32).wrapping_add(1)) << 32) | (seq & 0xffff_ffff)
}

/// Processes per semaphore whose guard permits the arena can track (more use the hub).
pub const SEM_HOLDERS: usize = 2;

const _: () = assert!(std::mem::size_of::<SyncSlot>() == SLOT_BYTES);
const _: () = assert!(std::mem::align_of::<SyncSlot>() == SLOT_BYTES);

/// The slot index of an object id (its slab index).
pub fn slot_index(id: u64) -> usize {
    (id & 0xffff_ffff) as usize
}

/// The owner token of `(process, thread)`.
pub fn token(proc: u64, thread: u64) -> u64 {
    (u64::from((proc as u32).wrapping_add(1)) << 32) | (thread & THREAD_BITS)
}

/// The thread id as a token stores it.
pub fn token_thread(thread: u64) -> u64 {
    thread & THREAD_BITS
}

/// The owner `(process, thread)` a lock word names, if any.
pub fn owner_of(word: u64) -> Option<(u64, u64)> {
    let p = word >> 32;
    (p != 0).then(|| (p - 1, word & THREAD_BITS))
}

/// The owner's token in a lock word (the word without its flags; [`DIED`] or 0 if unowned).
pub fn owner_token(word: u64) -> u64 {
    word & !LOCK_FLAGS
}

/// Is the lock held (or being handed over by the hub)? `WAITERS` alone counts as held here:
/// only a barging acquirer ([`barge_free`]) may take such a word.
pub fn held(word: u64) -> bool {
    (word >> 32) != 0 || word & WAITERS != 0
}

/// May an acquirer take this word by barging (`WAITERS` alone, perhaps with `NOTIFIED`: free,
/// callers parked, `FAIR` not set)?
pub fn barge_free(word: u64) -> bool {
    word & !NOTIFIED == WAITERS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_never_look_free() {
        for (p, t) in [(0u64, 0u64), (0, 1), (7, 42), (u32::MAX as u64 - 1, THREAD_BITS)] {
            let tok = token(p, t);
            assert!(held(tok));
            assert_eq!(owner_of(tok), Some((p, t)));
            assert_eq!(owner_of(tok | WAITERS), Some((p, t)));
            assert_eq!(owner_of(tok | WAITERS | FAIR), Some((p, t)));
            assert_eq!(owner_token(tok | LOCK_FLAGS), tok);
            assert!(!barge_free(tok | WAITERS));
        }
        assert!(barge_free(WAITERS));
        assert!(barge_free(WAITERS | NOTIFIED));
        assert!(!barge_free(WAITERS | FAIR | NOTIFIED));
        assert!(!barge_free(WAITERS | FAIR));
        assert!(held(WAITERS | FAIR));
        assert!(!held(0));
        assert!(!held(DIED));
        assert!(held(WAITERS));
        assert_eq!(owner_of(WAITERS), None);
    }
}
