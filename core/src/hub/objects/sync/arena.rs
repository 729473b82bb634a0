//! The hub's side of the sync arena (layout and protocol: `wire::sync_slot`).
//!
//! The hub creates the arena on first need (the first synchronisation object, or the first
//! `Op::SyncArena`), maps it, and binds slot `i` to the object with slab index `i` when that
//! object is created ([`bind`]); reclaiming the object clears the slot's `ident` ([`unbind`]),
//! so clients of the old id fall back to messages (and get `UnknownObject`). An object that gets
//! no arena slot (the arena is off, full or could not be created) keeps a private slot on the
//! hub's heap with the same layout: then only the hub ever touches it, and the object works
//! through the message protocol alone, with the same code.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::sys;
use crate::sys::mem::Mapping;
use crate::wire::proto::{HubError, ObjId};
use crate::wire::sync_slot::{fastpath_enabled, slot_index, SyncSlot, ARENA_BYTES, ARENA_SLOTS};

struct HubArena {
    fd: OwnedFd,
    map: Mapping,
}

static ARENA: OnceLock<Option<HubArena>> = OnceLock::new();

fn arena() -> Option<&'static HubArena> {
    ARENA
        .get_or_init(|| {
            if !fastpath_enabled() {
                return None;
            }
            let made = sys::mem::sealed_shared_memory("multiproc-sync-arena", ARENA_BYTES)
                .and_then(|fd| Mapping::new(fd.as_fd(), ARENA_BYTES).map(|map| HubArena { fd, map }));
            match made {
                Ok(a) => Some(a),
                Err(e) => {
                    eprintln!("multiproc hub: no sync arena ({e}); synchronisation uses messages only");
                    None
                }
            }
        })
        .as_ref()
}

impl HubArena {
    fn slot(&self, idx: usize) -> Option<&'static SyncSlot> {
        if idx >= ARENA_SLOTS || self.map.len() < ARENA_BYTES {
            return None;
        }
        // SAFETY: the mapping is ARENA_BYTES long and page-aligned, so slot `idx` (< ARENA_SLOTS)
        // lies inside it at a 64-byte-aligned address. SyncSlot is made of atomics only, which
        // are valid for every bit pattern and address-free, so other processes writing the same
        // memory is fine. The mapping lives in a static that is never dropped (never unmapped):
        // the reference is valid for 'static.
        Some(unsafe { &*(self.map.as_ptr().add(idx * std::mem::size_of::<SyncSlot>()) as *const SyncSlot) })
    }
}

/// Where an object's slot lives.
pub(crate) enum SlotHome {
    /// In the arena: clients may use the fast path.
    Arena(&'static SyncSlot),
    /// On the hub's heap: messages only.
    Private(Box<SyncSlot>),
}

impl SlotHome {
    /// A private slot (until [`SlotHome::attach`] finds an arena slot).
    pub fn private() -> SlotHome {
        SlotHome::Private(Box::default())
    }

    /// The slot.
    pub fn get(&self) -> &SyncSlot {
        match self {
            SlotHome::Arena(s) => s,
            SlotHome::Private(b) => b,
        }
    }

    /// Moves to the arena slot of `id` (the object is brand new: nobody has used its slot),
    /// carrying over the state words set up so far (`word`, `aux`).
    pub fn attach(&mut self, id: ObjId, secret: u64, kind: u32) {
        let word = self.get().word.load(Ordering::SeqCst);
        let aux = self.get().aux.load(Ordering::SeqCst);
        if let Some(s) = bind(id, secret, kind, word, aux) {
            *self = SlotHome::Arena(s);
        }
    }
}

impl Drop for SlotHome {
    fn drop(&mut self) {
        if let SlotHome::Arena(s) = self {
            unbind(s);
        }
    }
}

/// Binds the arena slot of a new object: clears it, sets its initial state, then publishes its
/// id and kind.
fn bind(id: ObjId, secret: u64, kind: u32, word: u64, aux: u32) -> Option<&'static SyncSlot> {
    let s = arena()?.slot(slot_index(id.0))?;
    s.ident.store(0, Ordering::SeqCst);
    s.secret.store(secret, Ordering::SeqCst);
    s.word.store(word, Ordering::SeqCst);
    s.count.store(0, Ordering::Relaxed);
    s.seq.store(0, Ordering::Relaxed);
    s.pid.store(0, Ordering::Relaxed);
    s.cwait.store(0, Ordering::Relaxed);
    s.aux.store(aux, Ordering::Relaxed);
    for h in &s.holders {
        h.store(0, Ordering::Relaxed);
    }
    s.kind.store(kind, Ordering::SeqCst);
    s.ident.store(id.0, Ordering::Release);
    Some(s)
}

/// The object is reclaimed: its id no longer names the slot.
fn unbind(s: &SyncSlot) {
    s.ident.store(0, Ordering::Release);
}

/// A descriptor of the arena for a process that asks (`Op::SyncArena`), and its size.
pub(crate) fn share() -> Result<(u64, OwnedFd), HubError> {
    let a = arena().ok_or_else(|| HubError::Invalid("the sync arena is off".into()))?;
    let fd = sys::fd::dup(a.fd.as_fd()).map_err(|e| HubError::Invalid(format!("cannot share the sync arena: {e}")))?;
    Ok((ARENA_BYTES as u64, fd))
}
