//! Descriptors inside serialised values.
//!
//! A handle that owns a descriptor (a Pipe end, a shared-memory segment) serialises the
//! descriptor's *index* into a side table, and the descriptor itself travels next to the bytes
//! (`SCM_RIGHTS`, or inheritance). [`collect`] opens the side table around a serialisation;
//! [`with_incoming`] provides the received descriptors around a deserialisation.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;

thread_local! {
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<VecDeque<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Registers this thread's side tables (their destructors) without changing them. The fork
/// server does it once, so its children inherit them registered (see `bootstrap::warm`).
pub(crate) fn warm() {
    OUTGOING.with(|_| ());
    INCOMING.with(|_| ());
}

/// Runs `f` (a serialisation) with a side table open; returns its result and the descriptors
/// that handles attached.
pub fn collect<R>(f: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let prev = OUTGOING.with(|o| o.borrow_mut().replace(Vec::new()));
    let r = f();
    let fds = OUTGOING
        .with(|o| std::mem::replace(&mut *o.borrow_mut(), prev))
        .unwrap_or_default();
    (r, fds)
}

/// Attaches a descriptor to the value being serialised; returns its index. `None` when no
/// side table is open (the value is being serialised by something other than multiproc, which
/// cannot carry descriptors).
pub fn attach(fd: OwnedFd) -> Option<u32> {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        let v = o.as_mut()?;
        v.push(fd);
        Some((v.len() - 1) as u32)
    })
}

/// Runs `f` (a deserialisation) with `fds` available to [`take`].
pub fn with_incoming<R>(fds: Vec<OwnedFd>, f: impl FnOnce() -> R) -> R {
    let table: VecDeque<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
    let prev = INCOMING.with(|i| i.borrow_mut().replace(table));
    let r = f();
    INCOMING.with(|i| *i.borrow_mut() = prev);
    r
}

/// Takes the descriptor at `index` of the incoming table (each index once).
pub fn take(index: u32) -> Option<OwnedFd> {
    INCOMING.with(|i| i.borrow_mut().as_mut()?.get_mut(index as usize)?.take())
}
