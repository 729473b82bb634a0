//! The wire format: how messages cross a socket.
//!
//! A **frame** is a little-endian `u32` length followed by that many bytes of MessagePack
//! (rmp-serde, compact form). Descriptors travel out of band (`SCM_RIGHTS`); a message that
//! carries descriptors says how many in a field of its own (`nfds`). They are sent with the
//! first byte of that message's own `sendmsg`, so they arrive as one batch, and the receiver
//! takes the next batch for it (a truncated batch fails that one message, not the stream).
//! One message carries at most `sys::io::MAX_FDS_PER_MSG` descriptors.
//!
//! [`FrameDecoder`] accepts any byte sequence: a truncated frame waits for more bytes, and an
//! oversized length or a body that is not a valid message is an error, never a panic. A
//! connection that produces such an error is dropped by whoever reads it; nothing else is
//! affected.

mod frame;
pub mod manager_ops;
pub mod names_ops;
pub mod plain;
pub mod proto;
pub mod queue_ops;
pub mod ring;
pub mod snapshot;
pub mod sync_ops;
pub mod sync_slot;

pub use frame::{decode, encode, encode_into, FrameDecoder, FrameError, DEFAULT_MAX_FRAME, FD_FLAG, HEADER_LEN};
