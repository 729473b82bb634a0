//! Making and opening a connection's shared-memory rings (layout and protocol:
//! `wire::ring`).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::sys;
use crate::sys::mem::Mapping;
use crate::wire::ring::{object_bytes, valid_cap, RingMem};

/// A fresh ring object with rings of `cap` bytes each (a power of two): its descriptor, sealed
/// against resizing where the platform has seals (to be passed to the client), and a mapping.
pub(crate) fn create(cap: usize) -> Result<(OwnedFd, Arc<RingMem>), String> {
    if !valid_cap(cap) {
        return Err(format!("bad ring size {cap}"));
    }
    let len = object_bytes(cap);
    let fd = sys::mem::sealed_shared_memory("multiproc-ring", len).map_err(|e| e.to_string())?;
    let map = Mapping::new(fd.as_fd(), len).map_err(|e| e.to_string())?;
    let mem = RingMem::format(map, cap).map_err(|e| e.to_string())?;
    Ok((fd, mem))
}

/// Maps a ring object the hub made, whose rings are `cap` bytes each. The object's size is
/// checked first, so that a mapping is never longer than its object.
pub(crate) fn open(fd: &OwnedFd, cap: u64) -> Result<Arc<RingMem>, String> {
    let cap = usize::try_from(cap).map_err(|_| "bad ring size".to_string())?;
    if !valid_cap(cap) {
        return Err(format!("bad ring size {cap}"));
    }
    let len = object_bytes(cap);
    let size = sys::mem::object_size(fd.as_fd()).map_err(|e| e.to_string())?;
    if size < len {
        return Err(format!("the ring object has {size} bytes, {len} expected"));
    }
    let map = Mapping::new(fd.as_fd(), len).map_err(|e| e.to_string())?;
    let mem = RingMem::open(map).map_err(|e| e.to_string())?;
    if mem.cap() != cap {
        return Err("the ring object's size does not match its announcement".into());
    }
    Ok(mem)
}
