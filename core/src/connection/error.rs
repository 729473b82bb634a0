//! Errors of [`Listener`](super::Listener) and [`Client`](super::Client).

use thiserror::Error;

use crate::sys::Errno;

/// Why an authkey handshake failed. Each side of a failed handshake gets one of these.
#[derive(Debug, Error)]
pub enum HandshakeError {
    /// The peer answered our challenge with a digest made under another key.
    #[error("authentication failed: the peer's authkey is not ours (give both sides the same key: `set_authkey` or the builders' `authkey`)")]
    WrongKey,
    /// The peer checked our answer and refused it: our keys differ.
    #[error("authentication failed: the peer refused our authkey (give both sides the same key)")]
    PeerRefusedUs,
    /// The peer did not finish the handshake in time.
    #[error("the authkey handshake did not finish in time (a silent or slow peer; raise `handshake_timeout` if the network is slow)")]
    Timeout,
    /// The peer sent something that is not part of the handshake.
    #[error("the peer sent garbage during the authkey handshake: {0}")]
    Garbage(&'static str),
    /// The peer closed the connection during the handshake.
    #[error("the peer closed the connection during the authkey handshake")]
    Closed,
    /// The key is empty (no random source was available, or an empty key was set).
    #[error("the authkey is empty; set one with `multiproc::set_authkey` or the builder's `authkey`")]
    EmptyKey,
    /// A system call failed.
    #[error("I/O error during the authkey handshake: {0}")]
    Io(Errno),
}

/// An error from [`Listener`](super::Listener): binding, accepting, or a refused client.
#[derive(Debug, Error)]
pub enum ListenerError {
    /// The address could not be bound (in use, no permission, bad path).
    #[error("cannot listen on {address}: {errno}")]
    Bind {
        /// The address.
        address: String,
        /// What the OS said.
        errno: Errno,
    },
    /// A client connected but was refused; the listener keeps serving others. Call `accept`
    /// again for the next client.
    #[error("refused a client ({peer}): {reason}")]
    Refused {
        /// Who it was (a TCP address, or the peer's uid on a Unix socket).
        peer: String,
        /// Why.
        reason: RefusedReason,
    },
    /// No client was accepted before the timeout (`accept_timeout`).
    #[error("no client connected before the timeout")]
    Timeout,
    /// The listener already holds `max_connections` accepted connections; drop one first.
    #[error("the listener already holds its maximum of {max} connections (drop one, or raise `max_connections`)")]
    TooManyConnections {
        /// The limit.
        max: usize,
    },
    /// The listening socket failed.
    #[error("accept failed: {0}")]
    Io(Errno),
}

/// Why a client was refused.
#[derive(Debug, Error)]
pub enum RefusedReason {
    /// The handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A Unix-socket client runs as another user.
    #[error("the client runs as uid {uid}, not as ours ({ours}); allow it with `allow_uid`")]
    OtherUser {
        /// The client's uid.
        uid: u32,
        /// Ours.
        ours: u32,
    },
}

/// An error from [`Client`](super::Client).
#[derive(Debug, Error)]
pub enum ClientError {
    /// Could not connect (nothing listens there, refused, unreachable, timed out).
    #[error("cannot connect to {address}: {errno} (is the listener running, and is the address right?)")]
    Connect {
        /// The address.
        address: String,
        /// What the OS said.
        errno: Errno,
    },
    /// Connected, but the handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
}
