//! Descriptors the hub keeps for someone else: those of a queued item or of held mail (issue 15,
//! a `Connection` or shared memory sent through a Queue or a mailbox).
//!
//! Every such descriptor is in a [`HeldFds`], which counts it in one hub-wide total while it is
//! held and closes it when dropped (an item discarded with its queue, mail to a dead process).
//! [`HeldFds::adopt`] refuses descriptors past `HubLimits::max_held_fds`, so that no process can
//! fill the root's descriptor table through the hub.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_bytes::ByteBuf;

use crate::sys;
use crate::wire::proto::{HubError, HELD_FDS_LIMIT};

/// Descriptors held right now (one hub per process: the root's).
static HELD: AtomicUsize = AtomicUsize::new(0);
/// `HubLimits::max_held_fds` of the running hub.
static LIMIT: AtomicUsize = AtomicUsize::new(512);

/// Sets the limit (when the hub starts).
pub(crate) fn set_limit(max: usize) {
    LIMIT.store(max, Ordering::Relaxed);
}

/// Descriptors kept with one item or message; counted while held, closed when dropped.
#[derive(Default)]
pub(crate) struct HeldFds(Vec<OwnedFd>);

impl std::fmt::Debug for HeldFds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldFds({})", self.0.len())
    }
}

impl HeldFds {
    /// Takes custody of `fds` if the total stays within `HubLimits::max_held_fds` (with
    /// `reserve` more descriptors kept free for later duplicates, see the JoinableQueue);
    /// otherwise they are closed and the request fails with a `Limit` error naming the setting.
    pub fn adopt(fds: Vec<OwnedFd>, reserve: usize) -> Result<HeldFds, HubError> {
        if fds.is_empty() {
            return Ok(HeldFds(fds));
        }
        let max = LIMIT.load(Ordering::Relaxed);
        let n = fds.len();
        let held = HELD.load(Ordering::Relaxed);
        if held + n + reserve > max {
            return Err(HubError::Limit(format!(
                "the hub already holds {held} descriptors for queued items and mail, and {n} more would pass \
                 {HELD_FDS_LIMIT} ({max}); take items out of queues (or mail out of mailboxes) that carry \
                 Connections or shared memory, or raise the limit"
            )));
        }
        HELD.fetch_add(n, Ordering::Relaxed);
        Ok(HeldFds(fds))
    }

    /// How many descriptors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Duplicates every descriptor (a JoinableQueue's copy of an item it hands out); counted
    /// as held too. Fails when the root is out of descriptors.
    pub fn duplicate(&self) -> Result<HeldFds, HubError> {
        let mut out = Vec::with_capacity(self.0.len());
        for fd in &self.0 {
            let dup = sys::fd::dup(fd.as_fd()).map_err(|e| {
                HubError::Os(format!(
                    "the root could not duplicate a descriptor of a queued item ({e}); raise its descriptor limit"
                ))
            })?;
            out.push(dup);
        }
        HELD.fetch_add(out.len(), Ordering::Relaxed);
        Ok(HeldFds(out))
    }

    /// Hands the descriptors over (to be sent): they are no longer held.
    pub fn release(mut self) -> Vec<OwnedFd> {
        let fds = std::mem::take(&mut self.0);
        HELD.fetch_sub(fds.len(), Ordering::Relaxed);
        fds
    }
}

impl Drop for HeldFds {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            HELD.fetch_sub(self.0.len(), Ordering::Relaxed);
        }
    }
}

/// An encoded value the hub keeps (a queue item, a message), with its descriptors.
#[derive(Debug, Default)]
pub(crate) struct Item {
    /// The MessagePack body; the hub never decodes it.
    pub bytes: ByteBuf,
    /// The descriptors its handles attached (usually none).
    pub fds: HeldFds,
}

impl Item {
    /// An item without descriptors.
    pub fn plain(bytes: ByteBuf) -> Item {
        Item {
            bytes,
            fds: HeldFds::default(),
        }
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
}
