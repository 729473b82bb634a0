//! This process's mapping of the sync arena (layout and protocol: `wire::sync_slot`).
//!
//! The first fast operation in a process asks the hub for the arena's descriptor
//! (`Op::SyncArena`, answered with `SCM_RIGHTS`) and maps it; the mapping lasts as long as the
//! process (a `Fork` child inherits it). If the hub runs without an arena, the descriptor
//! cannot be had, or [`FASTPATH_ENV`](crate::wire::sync_slot::FASTPATH_ENV) says `0`, this
//! process uses the message protocol for every primitive, unchanged.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::runtime::{self, handle::ObjRef};
use crate::sys;
use crate::sys::mem::Mapping;
use crate::wire::proto::{Op, Value};
use crate::wire::sync_slot::{fastpath_enabled, slot_index, SyncSlot, SLOT_BYTES};

struct Arena {
    fd: OwnedFd,
    map: Mapping,
    slots: usize,
}

static ARENA: OnceLock<Option<Arena>> = OnceLock::new();
static MESSAGES_ONLY: AtomicBool = AtomicBool::new(false);
static SLOW_CALLS: AtomicU64 = AtomicU64::new(0);

fn open() -> Option<Arena> {
    if !fastpath_enabled() || MESSAGES_ONLY.load(Ordering::SeqCst) {
        return None;
    }
    let (v, mut fds) = runtime::call_fds(Op::SyncArena, &[], None).ok()?;
    let Value::SyncArena(len) = v else { return None };
    let fd = fds.pop()?;
    let len = usize::try_from(len).ok()?;
    // Trust the object's real size over the number in the reply.
    let len = len.min(sys::mem::object_size(fd.as_fd()).ok()?);
    let map = Mapping::new(fd.as_fd(), len).ok()?;
    Some(Arena {
        fd,
        map,
        slots: len / SLOT_BYTES,
    })
}

fn arena() -> Option<&'static Arena> {
    ARENA.get_or_init(open).as_ref()
}

/// The arena slot of `obj`, if this process has the arena and the slot is bound to exactly
/// this object, of kind `kind` (a forged, stale or wrong-kind id gets `None`: the caller then
/// asks the hub, which answers with the right error).
#[inline]
pub(super) fn slot(obj: &ObjRef, kind: u32) -> Option<&'static SyncSlot> {
    // A handle from a remote manager names an object of another program's hub: this
    // process's arena is not its memory (the same id may even name a local object here).
    if obj.is_remote() {
        return None;
    }
    let a = arena()?;
    let id = obj.id().0;
    let idx = slot_index(id);
    if idx >= a.slots {
        return None;
    }
    // SAFETY: idx < slots, so the slot lies inside the mapping (page-aligned, so every slot is
    // 64-byte aligned). SyncSlot is made of atomics only: every bit pattern is valid and other
    // processes may write it concurrently. The mapping sits in a static that is never dropped,
    // so the reference is valid for 'static.
    let s = unsafe { &*(a.map.as_ptr().add(idx * SLOT_BYTES) as *const SyncSlot) };
    // A handle without the object's secret (a forged one) goes to the hub, which refuses it.
    (s.ident.load(Ordering::Acquire) == id
        && s.kind.load(Ordering::Relaxed) == kind
        && s.secret.load(Ordering::Relaxed) == obj.secret())
    .then_some(s)
}

/// Is the fast path available in this process (the arena is mapped)?
pub(super) fn available() -> bool {
    arena().is_some()
}

/// The memory the arena really uses, in bytes (allocated pages of the shared object), or
/// `None` without an arena. For tests and benchmarks: slots are reused, so this stays at its
/// high-water mark when primitives are created and dropped.
pub(super) fn used_bytes() -> Option<u64> {
    sys::mem::allocated_bytes(arena()?.fd.as_fd()).ok()
}

/// Turns the fast paths off in this process if it has not mapped the arena yet; returns whether
/// this process now uses messages only.
pub(super) fn messages_only() -> bool {
    MESSAGES_ONLY.store(true, Ordering::SeqCst);
    // Settles the cell (if it is still empty) so that no later first use maps the arena.
    ARENA.get_or_init(|| None).is_none()
}

/// Counts an operation that needed the hub (see `slow_calls`).
pub(super) fn count_slow() {
    SLOW_CALLS.fetch_add(1, Ordering::Relaxed);
}

/// How many lock operations of this process needed the hub so far.
pub(super) fn slow_calls() -> u64 {
    SLOW_CALLS.load(Ordering::Relaxed)
}
