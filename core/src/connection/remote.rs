//! Remote managers: one program serves chosen objects (Manager containers, queues, locks,
//! semaphores, events) on an address; another program connects and gets working handles of the
//! same types (Python's `BaseManager.register` + `serve_forever` / `connect`).
//!
//! # How it works
//! - [`ManagerServer`] listens with a [`Listener`] (authkey handshake, limits) and starts one
//!   **relay process** per accepted connection: a daemonic child of the server that holds
//!   handles to the served objects, greets the client with the list of them, and hands the
//!   client's socket to the server's hub. From then on the hub serves the client directly (one
//!   round trip per call, as for a local process), treating the socket as a connection of the
//!   relay that may only operate on objects the relay holds: anything else is refused with an
//!   error, and garbage closes that connection only.
//! - So to the server's hub a remote client *is* a process: a lock it takes is owned by its
//!   relay, a JoinableQueue item it takes is filed under its relay. When the client dies (its
//!   socket closes), the relay ends at once, and the hub does what it does for any dead
//!   process: it reads what the client sent before it went, then releases its locks (the next
//!   owner is told), delivers its unfinished JoinableQueue items again, and drops its waits.
//! - In the client, each thread opens its own connection to the server the first time it uses
//!   a remote handle (one handshake per thread), so a thread blocked in `acquire()` never
//!   delays another thread's `put()`, exactly as with the local hub.
//! - When the server program ends (or [`ManagerServer::shutdown`]), every relay ends, and every
//!   remote call fails the way it does when the local hub is gone: Manager proxies give
//!   `ManagerGone`, queues and locks their own "gone" errors.
//!
//! # Limits
//! - Handles obtained from a remote manager stay in the process that connected: they cannot be
//!   sent to another process (connect there instead), and values stored in remote containers
//!   must not themselves contain handles (nested proxies are local-only).
//! - Conditions and Barriers are not served; shared-memory `Value`/`Array` cannot be (TCP carries
//!   no descriptors).

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use thiserror::Error;

use super::{Address, ClientBuilder, ClientError, Listener, ListenerBuilder, ListenerError};
use crate::error::CallError;
use crate::runtime::authkey::{self, AuthKey};
use crate::runtime::client::ClientConn;
use crate::runtime::handle::{self, Capability, ObjRef, RemoteRoute};
use crate::sys;
use crate::wire::proto::{Cast, Op, Value};
use crate::{Connection, Process};

/// An object a [`ManagerServer`] can serve: Manager containers ([`Dict`](crate::Dict),
/// [`List`](crate::List), [`ValueProxy`](crate::ValueProxy), [`Namespace`](crate::Namespace)),
/// queues ([`Queue`](crate::Queue), [`JoinableQueue`](crate::JoinableQueue),
/// [`SimpleQueue`](crate::SimpleQueue)) and [`Lock`](crate::Lock), [`RLock`](crate::RLock),
/// [`Semaphore`](crate::Semaphore), [`BoundedSemaphore`](crate::BoundedSemaphore),
/// [`Event`](crate::Event).
pub trait Served: Serialize + DeserializeOwned + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! served {
    ($($t:ty),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Served for $t {}
    )*};
}

served!(
    crate::Lock,
    crate::RLock,
    crate::Semaphore,
    crate::BoundedSemaphore,
    crate::Event,
    crate::Namespace
);

impl<T> sealed::Sealed for crate::Queue<T> {}
impl<T> Served for crate::Queue<T> {}
impl<T> sealed::Sealed for crate::JoinableQueue<T> {}
impl<T> Served for crate::JoinableQueue<T> {}
impl<T> sealed::Sealed for crate::SimpleQueue<T> {}
impl<T> Served for crate::SimpleQueue<T> {}
impl<K, V> sealed::Sealed for crate::Dict<K, V> {}
impl<K, V> Served for crate::Dict<K, V> {}
impl<T> sealed::Sealed for crate::List<T> {}
impl<T> Served for crate::List<T> {}
impl<T> sealed::Sealed for crate::ValueProxy<T> {}
impl<T> Served for crate::ValueProxy<T> {}

/// The kind of a handle type, without its type parameters (`multiproc::queue::Queue`), so a
/// client asking for the wrong kind of object is told.
fn kind_of<H>() -> String {
    let full = std::any::type_name::<H>();
    full.split('<').next().unwrap_or(full).to_string()
}

/// One served object, as the relay describes it to a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    name: String,
    kind: String,
    /// The handle, encoded with bare ids (see `handle::export`).
    handle: ByteBuf,
}

/// The relay's first message on a connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hello {
    entries: Vec<Entry>,
}

/// Errors of [`ManagerServer`] and [`RemoteManager`].
#[derive(Debug, Error)]
pub enum RemoteError {
    /// The server could not listen.
    #[error(transparent)]
    Listen(#[from] ListenerError),
    /// Could not connect to the server, or the handshake failed.
    #[error(transparent)]
    Connect(#[from] ClientError),
    /// The server serves nothing under this name.
    #[error("the server serves nothing named {name:?} (it serves: {served})")]
    UnknownName {
        /// The name asked for.
        name: String,
        /// What it serves.
        served: String,
    },
    /// The name is served, but as another kind of object.
    #[error("{name:?} is a {served}, not a {asked}")]
    WrongKind {
        /// The name.
        name: String,
        /// What the server serves under it.
        served: String,
        /// What was asked for.
        asked: String,
    },
    /// A served handle could not be encoded or decoded (its item types differ between the two
    /// programs, say).
    #[error("cannot describe the object {name:?}: {reason}")]
    Codec {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The server went away (its program ended, or it was shut down).
    #[error("the remote manager is gone (the server program ended or shut down)")]
    ServerGone,
    /// The server could not start the process that serves a client.
    #[error("cannot start a relay process for a client: {0}")]
    Relay(String),
}

/// Builds a [`ManagerServer`]: register the objects to serve, then [`bind`](Self::bind).
#[derive(Debug)]
pub struct ManagerServerBuilder {
    listener: ListenerBuilder,
    entries: Vec<(Entry, Vec<Capability>)>,
    holds: Vec<ObjRef>,
    max_clients: usize,
    error: Option<RemoteError>,
}

impl ManagerServerBuilder {
    /// Serves `handle` under `name` (Python's `BaseManager.register(name, callable=...)`).
    /// Registering a name twice keeps the last.
    pub fn register<H: Served>(mut self, name: &str, handle: &H) -> Self {
        match handle::export(handle) {
            Ok((bytes, ids)) => {
                for (id, secret) in &ids {
                    if let Some(h) = ObjRef::from_held(*id, *secret) {
                        self.holds.push(h);
                    }
                }
                self.entries.retain(|(e, _)| e.name != name);
                self.entries.push((
                    Entry {
                        name: name.to_string(),
                        kind: kind_of::<H>(),
                        handle: ByteBuf::from(bytes),
                    },
                    ids,
                ));
            }
            Err(reason) => {
                self.error.get_or_insert(RemoteError::Codec {
                    name: name.to_string(),
                    reason,
                });
            }
        }
        self
    }

    /// The key clients must hold (default: this process's [`crate::authkey`]).
    pub fn authkey(mut self, key: impl Into<AuthKey>) -> Self {
        self.listener = self.listener.authkey(key);
        self
    }

    /// How long a client has for the handshake (default 5 s).
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.listener = self.listener.handshake_timeout(d);
        self
    }

    /// How many clients (client threads: each has its own connection) may be connected at
    /// once (default 64). More wait in the backlog.
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = n.max(1);
        self
    }

    /// The largest request or reply (default: the process's frame limit).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.listener = self.listener.max_frame_size(bytes);
        self
    }

    /// TCP keep-alive on client connections (default 15 s; `None` turns it off): a client
    /// whose host vanishes without closing is noticed within about twice this time, and its
    /// locks and unfinished items are released as for a client that was killed.
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.listener = self.listener.keepalive(idle);
        self
    }

    /// Listens on `address` and starts serving in a background thread.
    pub fn bind(self, address: Address) -> Result<ManagerServer, RemoteError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let listener = self.listener.bind(address)?;
        let max_clients = self.max_clients;
        let address = listener.address().clone();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            clients: AtomicUsize::new(0),
            last_refusal: Mutex::new(None),
        });
        let entries: Vec<Entry> = self.entries.into_iter().map(|(e, _)| e).collect();
        let holds = self.holds;
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("multiproc-manager-server".into())
            .spawn(move || serve(listener, entries, holds, max_clients, sh))
            .map_err(|e| RemoteError::Relay(e.to_string()))?;
        Ok(ManagerServer {
            address,
            shared,
            thread: Some(thread),
        })
    }
}

struct Shared {
    stop: AtomicBool,
    refused: AtomicU64,
    clients: AtomicUsize,
    last_refusal: Mutex<Option<String>>,
}

/// A program's objects, served to other programs (Python's `BaseManager(address, authkey)`
/// with `get_server().serve_forever()`, but in a background thread).
///
/// Serving stops when the `ManagerServer` is dropped or [`shutdown`](Self::shutdown): the
/// clients' relays end, and their calls fail as when a local Manager is gone.
///
/// # Example
/// ```
/// use multiproc::connection::{Address, ManagerServer, RemoteManager};
/// use multiproc::{Lock, Manager, Queue};
///
/// // The server program:
/// let m = Manager::new()?;
/// let counts = m.dict::<String, i64>()?;
/// counts.insert("done".to_string(), 0)?;
/// let jobs: Queue<String> = Queue::new()?;
/// let lock = Lock::new()?;
/// let server = ManagerServer::builder()
///     .authkey("a shared secret")
///     .register("counts", &counts)
///     .register("jobs", &jobs)
///     .register("lock", &lock)
///     .bind(Address::tcp_loopback())?;
///
/// // Another program (here the same one, for the example):
/// let remote = RemoteManager::builder().authkey("a shared secret").connect(server.address())?;
/// let jobs: Queue<String> = remote.get("jobs")?;
/// let counts: multiproc::Dict<String, i64> = remote.get("counts")?;
/// let lock: Lock = remote.get("lock")?;
/// jobs.put("resize a.png".to_string())?;
/// {
///     let _g = lock.acquire()?;
///     counts.fetch_add(&"done".to_string(), 1)?;
/// }
/// assert_eq!(counts.get(&"done".to_string())?, Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ManagerServer {
    address: Address,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ManagerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerServer")
            .field("address", &self.address)
            .field("clients", &self.clients())
            .field("refused", &self.refused())
            .finish()
    }
}

impl ManagerServer {
    /// A builder: register objects, then bind.
    pub fn builder() -> ManagerServerBuilder {
        ManagerServerBuilder {
            listener: Listener::builder(),
            entries: Vec::new(),
            holds: Vec::new(),
            max_clients: 64,
            error: None,
        }
    }

    /// Where clients connect (with the port the system picked, for TCP port 0).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Client connections being served now.
    pub fn clients(&self) -> usize {
        self.shared.clients.load(Ordering::SeqCst)
    }

    /// Clients refused so far (wrong key, garbage, silence, another uid).
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Why the last client was refused, if one was.
    pub fn last_refusal(&self) -> Option<String> {
        self.shared
            .last_refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops serving: no new clients, and every connected client's relay ends (what it held
    /// is released as for a dead process). Waits for the serving thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ManagerServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The serving thread: accepts clients and starts a relay for each.
fn serve(listener: Listener, entries: Vec<Entry>, holds: Vec<ObjRef>, max_clients: usize, sh: Arc<Shared>) {
    let mut relays: Vec<Process<()>> = Vec::new();
    let hello = Hello { entries };
    while !sh.stop.load(Ordering::SeqCst) {
        relays.retain_mut(|p| p.is_alive());
        sh.clients.store(relays.len(), Ordering::SeqCst);
        if relays.len() >= max_clients {
            // Full: new clients wait in the backlog (their own connect timeout applies).
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match listener.accept_timeout::<()>(Duration::from_millis(100)) {
            Ok(conn) => {
                let relay = Process::new(remote_relay(conn, hello.clone(), holds.clone()))
                    .name("multiproc-remote-client")
                    .daemon(true)
                    .start();
                match relay {
                    Ok(p) => relays.push(p),
                    Err(e) => note_refusal(&sh, format!("cannot start a relay: {e}")),
                }
            }
            Err(ListenerError::Timeout) => {}
            Err(ListenerError::TooManyConnections { .. }) => std::thread::sleep(Duration::from_millis(20)),
            Err(e @ ListenerError::Refused { .. }) => note_refusal(&sh, e.to_string()),
            Err(e) => {
                note_refusal(&sh, e.to_string());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    for p in &relays {
        let _ = p.kill();
    }
    for p in &mut relays {
        let _ = p.join_timeout(Duration::from_secs(5));
    }
    sh.clients.store(0, Ordering::SeqCst);
}

fn note_refusal(sh: &Shared, why: String) {
    sh.refused.fetch_add(1, Ordering::SeqCst);
    *sh.last_refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
}

/// The relay: one process per client connection. It holds the served objects (`holds`), sends
/// the client the list of them, hands the client's socket to the hub (which then serves the
/// client directly, as a connection of this process restricted to the objects it holds), and
/// waits for the client to hang up. Then it ends at once, and the hub releases what the client
/// held through it, as for any dead process; frames the client sent before it went are read
/// first (the hub drains a dead process's connections).
#[multiproc::worker]
fn remote_relay(conn: Connection<()>, hello: Hello, holds: Vec<ObjRef>) {
    let Ok(frame) = crate::wire::encode(&hello) else {
        sys::proc::exit_now(1);
    };
    if conn.send_bytes(&frame[4..]).is_err() {
        sys::proc::exit_now(0);
    }
    let Some(sock) = conn.into_socket() else {
        sys::proc::exit_now(1);
    };
    let Ok(watch) = sys::fd::dup(sock.as_fd()) else {
        sys::proc::exit_now(1);
    };
    let passed = crate::runtime::rt().and_then(|rt| rt.pass_remote_conn(sock.as_fd()));
    drop(sock);
    if passed.is_err() {
        sys::proc::exit_now(1);
    }
    let _ = sys::io::wait_hangup(watch.as_fd());
    // `holds` stays alive to the end: releasing the handles first would let the hub refuse
    // what the client sent just before it hung up. The hub drops them after draining.
    let _keep = &holds;
    sys::proc::exit_now(0);
}

/// A connection to a [`ManagerServer`] in another program; [`get`](Self::get) gives handles to
/// the objects it serves. Cheap to clone; each thread that uses a handle opens its own
/// connection to the server. The connections close when the `RemoteManager`, its clones and
/// every handle it gave are dropped; the server then releases what they held.
#[derive(Debug, Clone)]
pub struct RemoteManager {
    session: Arc<Session>,
    entries: Arc<Vec<Entry>>,
}

/// How to connect: [`RemoteManager::builder`].
#[derive(Debug, Clone)]
pub struct RemoteManagerBuilder {
    client: ClientBuilder,
}

impl RemoteManagerBuilder {
    /// The key to prove (default: this process's [`crate::authkey`]).
    pub fn authkey(mut self, key: impl Into<AuthKey>) -> Self {
        self.client = self.client.authkey(key);
        self
    }

    /// How long each connection's connect, handshake and greeting may take (default 5 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.client = self.client.timeout(d);
        self
    }

    /// The largest request or reply (default: the process's frame limit).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.client = self.client.max_frame_size(bytes);
        self
    }

    /// TCP keep-alive on each connection (default 15 s; `None` turns it off): when the
    /// server's host vanishes without closing, calls fail with `ManagerGone` within about twice
    /// this time instead of waiting forever.
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.client = self.client.keepalive(idle);
        self
    }

    /// Connects, authenticates, and learns what the server serves.
    pub fn connect(self, address: &Address) -> Result<RemoteManager, RemoteError> {
        let session = Arc::new(Session {
            address: address.clone(),
            // Fix the key now: a later `set_authkey` does not change an open session.
            client: match self.client.key() {
                Some(_) => self.client,
                None => self.client.authkey(authkey::authkey()),
            },
            conns: Mutex::new(HashMap::new()),
        });
        let (conn, hello) = session.open()?;
        session.put_back(conn);
        Ok(RemoteManager {
            session,
            entries: Arc::new(hello.entries),
        })
    }
}

impl RemoteManager {
    /// A builder with the defaults.
    pub fn builder() -> RemoteManagerBuilder {
        RemoteManagerBuilder {
            client: super::Client::builder(),
        }
    }

    /// Connects to `address` with this process's authkey (Python's `BaseManager.connect()`).
    pub fn connect(address: &Address) -> Result<RemoteManager, RemoteError> {
        RemoteManager::builder().connect(address)
    }

    /// The names the server serves, with their kinds.
    pub fn names(&self) -> Vec<(String, String)> {
        self.entries.iter().map(|e| (e.name.clone(), e.kind.clone())).collect()
    }

    /// A handle to the object served under `name`. Its type must be the served one (item and
    /// key types included; a mismatch of those shows as decode errors on use, as locally).
    pub fn get<H: Served>(&self, name: &str) -> Result<H, RemoteError> {
        let Some(e) = self.entries.iter().find(|e| e.name == name) else {
            return Err(RemoteError::UnknownName {
                name: name.to_string(),
                served: self
                    .entries
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let asked = kind_of::<H>();
        if e.kind != asked {
            return Err(RemoteError::WrongKind {
                name: name.to_string(),
                served: e.kind.clone(),
                asked,
            });
        }
        handle::import::<H>(&e.handle, self.session.clone()).map_err(|reason| RemoteError::Codec {
            name: name.to_string(),
            reason,
        })
    }
}

/// One client program's session with a server: how to open a connection, and each thread's
/// open connection (closed when the session goes: when the `RemoteManager` and every handle
/// it gave are dropped).
struct Session {
    address: Address,
    /// How each connection is made (its key is fixed when the session starts).
    client: ClientBuilder,
    conns: Mutex<HashMap<ThreadId, ClientConn>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteSession({})", self.address)
    }
}

impl Session {
    /// Opens, authenticates and greets a new connection.
    fn open(&self) -> Result<(ClientConn, Hello), RemoteError> {
        let started = Instant::now();
        let conn: Connection<Hello> = self.client.connect(&self.address)?;
        // The relay speaks first: the list of what is served.
        let left = self
            .client
            .time_limit()
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let hello = conn.recv_timeout(left).map_err(|e| match e {
            crate::PipeRecvError::Eof => RemoteError::ServerGone,
            other => RemoteError::Relay(other.to_string()),
        })?;
        let max = conn.max_frame_size();
        let sock = conn
            .into_socket()
            .ok_or_else(|| RemoteError::Relay("the server sent more than its greeting".into()))?;
        Ok((ClientConn::new(sock, max), hello))
    }

    fn put_back(&self, conn: ClientConn) {
        let mut m = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(std::thread::current().id(), conn);
    }

    /// Runs `f` with this thread's connection to the server (opened on first use). The
    /// connection is taken out of the map during the call, so no lock is held while it waits.
    fn with_conn<R>(&self, f: impl FnOnce(&mut ClientConn) -> Result<R, CallError>) -> Result<R, CallError> {
        let me = std::thread::current().id();
        let taken = self.conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&me);
        let mut conn = match taken {
            Some(c) => c,
            None => self.open().map(|(c, _)| c).map_err(|_| CallError::HubGone)?,
        };
        let r = f(&mut conn);
        // A connection that failed is not kept: the next call opens a new one.
        if !matches!(
            &r,
            Err(CallError::HubGone) | Err(CallError::Io(_)) | Err(CallError::Protocol(_))
        ) {
            self.put_back(conn);
        }
        r
    }
}

impl RemoteRoute for Session {
    fn call(&self, op: Op, deadline: Option<Instant>) -> Result<Value, CallError> {
        self.with_conn(|c| c.call(op, &[], deadline).map(|(v, _)| v))
    }

    fn cast_many(&self, casts: Vec<Cast>) -> Result<(), CallError> {
        self.with_conn(|c| c.cast_many(casts))
    }
}
