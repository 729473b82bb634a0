//! Descriptors inside serialised values.
//!
//! A handle that owns a descriptor (a Pipe end, a shared-memory segment) serialises the
//! descriptor's *index* into a side table, and the descriptor itself travels next to the bytes
//! (`SCM_RIGHTS`, or inheritance). [`collect`] opens the side table around a serialisation;
//! [`with_incoming`] provides the received descriptors around a deserialisation.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::OwnedFd;

thread_local! {
    /// The descriptors attached inside every open side table, the innermost table's last.
    static OUTGOING: RefCell<Vec<OwnedFd>> = const { RefCell::new(Vec::new()) };
    /// Where the innermost open side table begins in `OUTGOING` (`None` when none is open),
    /// and how many descriptors `OUTGOING` holds. Kept apart from the descriptors, in cells
    /// without a destructor, so that opening and closing a table, once per serialised value,
    /// costs a few reads of this thread's cells and never touches `OUTGOING` when nothing is
    /// attached.
    static STATE: TableState = const {
        TableState {
            open: Cell::new(None),
            len: Cell::new(0),
        }
    };
    static INCOMING: RefCell<Option<VecDeque<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// See `STATE`.
struct TableState {
    open: Cell<Option<usize>>,
    len: Cell<usize>,
}

/// Registers this thread's side tables (their destructors) without changing them. The fork
/// server does it once, so its children inherit them registered (see `bootstrap::warm`).
pub(crate) fn warm() {
    OUTGOING.with(|_| ());
    INCOMING.with(|_| ());
}

/// Closes a side table, also when the serialisation panics: the table's descriptors are
/// taken (or, on a panic, closed) and the enclosing table, if any, is open again.
struct Table {
    start: usize,
    prev: Option<usize>,
}

impl Table {
    /// Inlined: it runs once per serialised value (in the caller's crate, since `collect` is
    /// generic), and almost always finds nothing attached.
    #[inline]
    fn take(&self) -> Vec<OwnedFd> {
        if STATE.with(|s| s.len.get()) <= self.start {
            return Vec::new();
        }
        self.take_attached()
    }

    #[cold]
    fn take_attached(&self) -> Vec<OwnedFd> {
        let fds = OUTGOING.with(|o| {
            let mut o = o.borrow_mut();
            if o.len() > self.start {
                o.split_off(self.start)
            } else {
                Vec::new()
            }
        });
        STATE.with(|s| s.len.set(self.start));
        fds
    }
}

impl Drop for Table {
    #[inline]
    fn drop(&mut self) {
        // Empty unless the serialisation panicked after attaching descriptors.
        drop(self.take());
        STATE.with(|s| s.open.set(self.prev));
    }
}

/// Runs `f` (a serialisation) with a side table open; returns its result and the descriptors
/// that handles attached. Tables nest: a value serialised inside `f` gets a table of its own.
pub fn collect<R>(f: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let table = STATE.with(|s| {
        let start = s.len.get();
        Table {
            start,
            prev: s.open.replace(Some(start)),
        }
    });
    let r = f();
    let fds = table.take();
    (r, fds)
}

/// Attaches a descriptor to the value being serialised; returns its index. `None` when no
/// side table is open (the value is being serialised by something other than multiproc, which
/// cannot carry descriptors).
pub fn attach(fd: OwnedFd) -> Option<u32> {
    let start = STATE.with(|s| s.open.get())?;
    let len = OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        o.push(fd);
        o.len()
    });
    STATE.with(|s| s.len.set(len));
    Some((len - 1 - start) as u32)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn fd() -> OwnedFd {
        OwnedFd::from(std::fs::File::open("/dev/null").expect("open /dev/null"))
    }

    #[test]
    fn nothing_attaches_outside_a_table() {
        assert_eq!(attach(fd()), None);
    }

    #[test]
    fn tables_nest_and_number_their_own_descriptors() {
        let (a, b) = (fd(), fd());
        let (ra, rb) = (a.as_raw_fd(), b.as_raw_fd());
        let ((first, (inner, inner_fds), second), outer_fds) = collect(|| {
            let first = attach(a);
            let inner = collect(|| attach(b));
            let second = attach(fd());
            (first, inner, second)
        });
        assert_eq!((first, inner, second), (Some(0), Some(0), Some(1)));
        assert_eq!(inner_fds.iter().map(AsRawFd::as_raw_fd).collect::<Vec<_>>(), [rb]);
        assert_eq!(outer_fds.len(), 2);
        assert_eq!(outer_fds[0].as_raw_fd(), ra);
        assert_eq!(attach(fd()), None, "the table is closed again");
    }

    #[test]
    fn a_panicking_serialisation_closes_its_table() {
        let r = std::panic::catch_unwind(|| {
            collect(|| {
                attach(fd());
                panic!("boom")
            })
        });
        assert!(r.is_err());
        assert_eq!(attach(fd()), None);
        let (_, fds) = collect(|| attach(fd()));
        assert_eq!(fds.len(), 1, "no descriptor of the panicked table is left behind");
    }
}
