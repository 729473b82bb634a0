//! Connections between programs that were started separately: Python's
//! `multiprocessing.connection.Listener` and `Client`.
//!
//! A [`Listener`] listens on a Unix socket path or a TCP address; [`Client::connect`] connects
//! to it. Both sides prove that they hold the same [`AuthKey`] (by default the process's own,
//! [`crate::authkey`]) with a challenge each way, answered with HMAC-SHA256 and compared in
//! constant time; then each side has a typed [`Connection<T>`], exactly like a [`Pipe`] end.
//!
//! # Safety of the door
//! - Nothing listens unless the program creates a `Listener`. A program that never does opens no
//!   path and no port (the test suite checks `/proc/net/unix` and `/proc/net/tcp`).
//! - [`Address::unix_temp`] makes a fresh directory only this user can enter (`0700`); the socket
//!   file itself is `0600` on every path. A Unix-socket client running as another user is refused
//!   by its peer credentials (`SO_PEERCRED`), before the handshake, unless allowed
//!   ([`ListenerBuilder::allow_uid`]).
//! - A client with the wrong key, one that sends garbage, and one that connects and never speaks
//!   are each refused within [`ListenerBuilder::handshake_timeout`] (5 s by default). Handshakes
//!   run side by side while a thread is in [`Listener::accept`] (as in Python, they progress only
//!   then): a silent client never delays a good one. A refusal comes out of `accept` as
//!   [`ListenerError::Refused`], and the next `accept` goes on serving. `accept` does not return
//!   `Interrupted` on Ctrl-C; use [`Listener::accept_timeout`] in a loop where that matters.
//! - Limits: [`ListenerBuilder::max_pending`] handshakes at once (64; more clients wait in the
//!   kernel's backlog), [`ListenerBuilder::max_connections`] accepted connections held at once
//!   (unlimited by default), and the frame size of each connection
//!   ([`ListenerBuilder::max_frame_size`], the process's [`crate::set_max_frame_size`] by
//!   default). What a connection buffers is the kernel's socket buffer: a peer that does not read
//!   makes `send` wait, and [`Connection::send`] never buffers without bound.
//! - TCP carries no descriptors: a message that holds one (a shared-memory `Array`, say) is
//!   refused by `send`.
//! - A TCP peer whose host vanishes without closing (power loss, a partition) is noticed by
//!   keep-alive, on both ends, within about twice [`ClientBuilder::keepalive`] /
//!   [`ListenerBuilder::keepalive`] (15 s by default): the connection then reads as closed.
//!
//! # Example
//! ```
//! use multiproc::connection::{Address, Client, Listener};
//!
//! let listener = Listener::bind(Address::unix_temp()?)?;
//! let address = listener.address().clone();
//! let server = std::thread::spawn(move || {
//!     let conn = listener.accept::<String>().unwrap();
//!     let got = conn.recv().unwrap();
//!     conn.send(&format!("hello, {got}")).unwrap();
//! });
//! let conn = Client::connect::<String>(&address)?;
//! conn.send(&"client".to_string())?;
//! assert_eq!(conn.recv()?, "hello, client");
//! server.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Pipe`]: crate::Pipe

mod error;
mod handshake;
mod remote;

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use error::{ClientError, HandshakeError, ListenerError, RefusedReason};
use handshake::{Progress, ServerHandshake};
pub use remote::{ManagerServer, ManagerServerBuilder, RemoteError, RemoteManager, RemoteManagerBuilder, Served};

use crate::pipe::connection::{Direction, Lease};
use crate::runtime::authkey::{self, AuthKey};
use crate::sys::{self, Errno};
use crate::Connection;

/// Where a [`Listener`] listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix stream socket at this path (the file must not exist yet).
    Unix(PathBuf),
    /// A TCP address, for example `127.0.0.1:6000` (port 0: the system picks one; read it back
    /// with [`Listener::address`]).
    Tcp(SocketAddr),
}

impl Address {
    /// A Unix socket in a fresh `0700` directory under the system's temporary directory (Python's
    /// default `Listener()` address). The directory is removed with the listener.
    pub fn unix_temp() -> Result<Address, ListenerError> {
        let dir = sys::net::private_temp_dir("multiproc-").map_err(|errno| ListenerError::Bind {
            address: std::env::temp_dir().display().to_string(),
            errno,
        })?;
        Ok(Address::Unix(dir.join("listener.sock")))
    }

    /// A TCP address on the loopback interface with a port the system picks.
    pub fn tcp_loopback() -> Address {
        Address::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

impl std::str::FromStr for Address {
    type Err = String;

    /// Parses `unix:/path`, `tcp:host:port`, a bare `host:port`, or a bare path.
    fn from_str(s: &str) -> Result<Address, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(Address::Unix(PathBuf::from(p)));
        }
        let t = s.strip_prefix("tcp:").unwrap_or(s);
        if let Ok(a) = t.parse::<SocketAddr>() {
            return Ok(Address::Tcp(a));
        }
        if s.contains('/') {
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        Err(format!("not an address: {s:?} (use unix:/path or tcp:host:port)"))
    }
}

/// The default TCP keep-alive idle time of listeners and clients (see
/// [`ClientBuilder::keepalive`]).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// How a [`Listener`] is set up. Start with [`Listener::builder`].
#[derive(Debug, Clone)]
pub struct ListenerBuilder {
    authkey: Option<AuthKey>,
    handshake_timeout: Duration,
    max_pending: usize,
    max_connections: Option<usize>,
    max_frame: Option<usize>,
    backlog: u32,
    allowed_uids: Vec<u32>,
    keepalive: Option<Duration>,
}

impl ListenerBuilder {
    /// The key clients must prove they hold (default: this process's [`crate::authkey`]).
    pub fn authkey(mut self, key: impl Into<AuthKey>) -> Self {
        self.authkey = Some(key.into());
        self
    }

    /// How long a client has to finish the handshake (default 5 s).
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }

    /// How many handshakes may run at once (default 64); more clients wait in the kernel's
    /// backlog until one finishes.
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n.max(1);
        self
    }

    /// How many accepted connections this listener lets the program hold at once (default: no
    /// limit). At the limit, `accept` fails with [`ListenerError::TooManyConnections`] and the
    /// clients wait in the backlog.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// The largest message an accepted connection takes (default: the process's
    /// [`crate::set_max_frame_size`]).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame = Some(bytes.max(1024));
        self
    }

    /// The kernel's backlog of connections not yet accepted (default 128).
    pub fn backlog(mut self, n: u32) -> Self {
        self.backlog = n;
        self
    }

    /// TCP keep-alive on accepted connections (default 15 s; `None` turns it off): a client
    /// whose host vanishes without closing is noticed within about twice this time, and
    /// whatever it held is released as for a client that hung up. See
    /// [`ClientBuilder::keepalive`]. Unix sockets need none: the kernel closes them when the
    /// peer dies.
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle;
        self
    }

    /// Also accepts Unix-socket clients that run as this user id (by default only our own uid
    /// is; on a Unix socket the file's `0600` mode must then be loosened by the program too).
    pub fn allow_uid(mut self, uid: u32) -> Self {
        self.allowed_uids.push(uid);
        self
    }

    /// Binds the address and starts listening.
    pub fn bind(self, address: Address) -> Result<Listener, ListenerError> {
        let bind_err = |errno| ListenerError::Bind {
            address: address.to_string(),
            errno,
        };
        let (sock, address, cleanup) = match address {
            Address::Unix(ref path) => {
                let sock = sys::net::listen_unix(path, self.backlog).map_err(bind_err)?;
                let own_dir = path
                    .parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|n| n.to_string_lossy().starts_with("multiproc-"))
                    && path.file_name().is_some_and(|n| n == "listener.sock");
                let cleanup = Some((path.clone(), own_dir));
                (sock, address, cleanup)
            }
            Address::Tcp(a) => {
                let (sock, local) = sys::net::listen_tcp(a, self.backlog).map_err(bind_err)?;
                (sock, Address::Tcp(local), None)
            }
        };
        let key = self.authkey.clone().unwrap_or_else(authkey::authkey);
        Ok(Listener {
            sock,
            address,
            cleanup,
            key,
            opts: self,
            pending: Mutex::new(Vec::new()),
            live: Arc::new(AtomicUsize::new(0)),
        })
    }
}

/// A listening socket that hands out authenticated [`Connection`]s (Python's
/// `multiprocessing.connection.Listener`). See the [module docs](self) for what it guarantees.
///
/// `accept` may be called from several threads; each accepted client goes to one of them.
pub struct Listener {
    sock: OwnedFd,
    address: Address,
    /// The socket file to remove on drop, and whether its directory is ours to remove too.
    cleanup: Option<(PathBuf, bool)>,
    key: AuthKey,
    opts: ListenerBuilder,
    pending: Mutex<Vec<Pending>>,
    live: Arc<AtomicUsize>,
}

struct Pending {
    hs: ServerHandshake,
    peer: String,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("live_connections", &self.live.load(Ordering::Relaxed))
            .finish()
    }
}

impl Listener {
    /// A builder with the defaults (this process's authkey, a 5 s handshake timeout).
    pub fn builder() -> ListenerBuilder {
        ListenerBuilder {
            authkey: None,
            handshake_timeout: Duration::from_secs(5),
            max_pending: 64,
            max_connections: None,
            max_frame: None,
            backlog: 128,
            allowed_uids: Vec::new(),
            keepalive: Some(DEFAULT_KEEPALIVE),
        }
    }

    /// Listens on `address` with the defaults.
    pub fn bind(address: Address) -> Result<Listener, ListenerError> {
        Listener::builder().bind(address)
    }

    /// The address clients connect to (for TCP with port 0, the port the system picked).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// How many accepted connections are still held by this process.
    pub fn live_connections(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Waits for the next authenticated client. A client that fails the handshake, or runs as
    /// another user, gives [`ListenerError::Refused`]; call `accept` again to go on.
    pub fn accept<T>(&self) -> Result<Connection<T>, ListenerError> {
        self.accept_until(None)
    }

    /// [`accept`](Self::accept) waiting at most `timeout` ([`ListenerError::Timeout`] then).
    pub fn accept_timeout<T>(&self, timeout: Duration) -> Result<Connection<T>, ListenerError> {
        self.accept_until(Some(Instant::now() + timeout))
    }

    fn accept_until<T>(&self, deadline: Option<Instant>) -> Result<Connection<T>, ListenerError> {
        if let Some(max) = self.opts.max_connections {
            if self.live.load(Ordering::SeqCst) >= max {
                return Err(ListenerError::TooManyConnections { max });
            }
        }
        // Pending handshakes are taken out of the shared list while this thread drives them, so
        // that two accepting threads never read from one socket.
        let mut mine: Vec<Pending> = std::mem::take(&mut *lock(&self.pending));
        let res = self.drive(&mut mine, deadline);
        lock(&self.pending).append(&mut mine);
        let sock = res?;
        let max = self.opts.max_frame.unwrap_or_else(crate::runtime::max_frame_size);
        Ok(Connection::from_socket(
            sock,
            Direction::Both,
            max,
            Some(Lease::new(self.live.clone())),
        ))
    }

    fn drive(&self, mine: &mut Vec<Pending>, deadline: Option<Instant>) -> Result<OwnedFd, ListenerError> {
        loop {
            let now = Instant::now();
            // Handshakes out of time are refused first.
            if let Some(i) = mine.iter().position(|p| p.hs.deadline <= now) {
                let p = mine.swap_remove(i);
                return Err(refused(p.peer, HandshakeError::Timeout.into()));
            }
            let room = mine.len() < self.opts.max_pending;
            let mut fds: Vec<BorrowedFd<'_>> = Vec::with_capacity(mine.len() + 1);
            fds.extend(mine.iter().map(|p| p.hs.sock().as_fd()));
            if room {
                fds.push(self.sock.as_fd());
            }
            let mut wake = mine.iter().map(|p| p.hs.deadline).min();
            if let Some(d) = deadline {
                wake = Some(wake.map_or(d, |w| w.min(d)));
            }
            let timeout = wake.map(|w| w.saturating_duration_since(now));
            let ready = sys::io::poll_readable(&fds, timeout).map_err(ListenerError::Io)?;
            drop(fds);
            if ready.is_empty() {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(ListenerError::Timeout);
                }
                continue;
            }
            // Client sockets first (highest index first, so removals keep the others' indices).
            let mut ready = ready;
            ready.sort_unstable_by(|a, b| b.cmp(a));
            for i in ready {
                if i == mine.len() {
                    if let Some(e) = self.accept_new(mine)? {
                        return Err(e);
                    }
                    continue;
                }
                let p = mine.swap_remove(i);
                match p.hs.advance() {
                    Ok(Progress::Done(sock)) => return Ok(sock),
                    Ok(Progress::Pending(hs)) => mine.push(Pending { hs, peer: p.peer }),
                    Err(e) => return Err(refused(p.peer, e.into())),
                }
            }
        }
    }

    /// Accepts every connection the kernel has queued, up to the pending limit, and sends each
    /// its challenge. A client refused on sight (another uid) is returned as an error.
    fn accept_new(&self, mine: &mut Vec<Pending>) -> Result<Option<ListenerError>, ListenerError> {
        while mine.len() < self.opts.max_pending {
            let Some(sock) = sys::net::accept(self.sock.as_fd()).map_err(ListenerError::Io)? else {
                return Ok(None);
            };
            let peer = match &self.address {
                Address::Unix(_) => {
                    let ours = sys::net::euid();
                    match sys::net::peer_uid(sock.as_fd()) {
                        Some(uid) if uid == ours || self.opts.allowed_uids.contains(&uid) => format!("uid {uid}"),
                        Some(uid) => {
                            return Ok(Some(refused(
                                format!("uid {uid}"),
                                RefusedReason::OtherUser { uid, ours },
                            )))
                        }
                        None => "unknown uid".into(),
                    }
                }
                Address::Tcp(_) => {
                    let _ = sys::net::set_nodelay(sock.as_fd());
                    if let Some(idle) = self.opts.keepalive {
                        let _ = sys::net::set_keepalive(sock.as_fd(), idle);
                    }
                    sys::net::peer_name(sock.as_fd()).unwrap_or_else(|| "unknown TCP peer".into())
                }
            };
            match ServerHandshake::start(sock, self.key.as_bytes(), self.opts.handshake_timeout) {
                Ok(hs) => mine.push(Pending { hs, peer }),
                Err(e) => return Ok(Some(refused(peer, e.into()))),
            }
        }
        Ok(None)
    }
}

fn refused(peer: String, reason: RefusedReason) -> ListenerError {
    ListenerError::Refused { peer, reason }
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some((path, dir)) = &self.cleanup {
            sys::net::remove_socket_file(path, *dir);
        }
    }
}

impl AsFd for Listener {
    /// The listening socket (readable when a client is waiting to be accepted).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// How a client connection is made. Start with [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    authkey: Option<AuthKey>,
    timeout: Duration,
    max_frame: Option<usize>,
    keepalive: Option<Duration>,
}

impl ClientBuilder {
    /// The key to prove (default: this process's [`crate::authkey`]).
    pub fn authkey(mut self, key: impl Into<AuthKey>) -> Self {
        self.authkey = Some(key.into());
        self
    }

    /// How long connecting and the handshake may take together (default 5 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The largest message the connection takes (default: the process's
    /// [`crate::set_max_frame_size`]).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame = Some(bytes.max(1024));
        self
    }

    /// TCP keep-alive on the connection (default 15 s; `None` turns it off). Without it, a
    /// connection whose peer host vanishes without closing (power loss, a partition) stays
    /// open forever while nothing is sent, and a blocked `recv` never returns. With it, the
    /// kernel probes the peer after `idle` without traffic and closes the connection after
    /// about `2 × idle` without an answer (`sys::net::set_keepalive` has the schedule).
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle;
        self
    }

    /// The key set with [`authkey`](Self::authkey), if one was.
    pub(crate) fn key(&self) -> Option<&AuthKey> {
        self.authkey.as_ref()
    }

    /// The time connecting and the handshake may take.
    pub(crate) fn time_limit(&self) -> Duration {
        self.timeout
    }

    /// Connects and authenticates.
    pub fn connect<T>(&self, address: &Address) -> Result<Connection<T>, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let connect_err = |errno: Errno| ClientError::Connect {
            address: address.to_string(),
            errno,
        };
        let sock = match address {
            Address::Unix(p) => sys::net::connect_unix(p, deadline).map_err(connect_err)?,
            Address::Tcp(a) => {
                let sock = sys::net::connect_tcp(*a, self.timeout).map_err(connect_err)?;
                if let Some(idle) = self.keepalive {
                    sys::net::set_keepalive(sock.as_fd(), idle).map_err(connect_err)?;
                }
                sock
            }
        };
        let key = self.authkey.clone().unwrap_or_else(authkey::authkey);
        handshake::client(&sock, key.as_bytes(), deadline)?;
        let max = self.max_frame.unwrap_or_else(crate::runtime::max_frame_size);
        Ok(Connection::from_socket(sock, Direction::Both, max, None))
    }
}

/// Connects to a [`Listener`] (Python's `multiprocessing.connection.Client`).
///
/// See the [module docs](self) for an example.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// A builder with the defaults (this process's authkey, a 5 s timeout).
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            authkey: None,
            timeout: Duration::from_secs(5),
            max_frame: None,
            keepalive: Some(DEFAULT_KEEPALIVE),
        }
    }

    /// Connects to `address` and authenticates with this process's authkey.
    pub fn connect<T>(address: &Address) -> Result<Connection<T>, ClientError> {
        Client::builder().connect(address)
    }
}
