//! Custom shared objects (Python's `BaseManager.register`): a user type whose methods run in
//! one server process, called through a typed [`Proxy`] from any process.
//!
//! Built on the public layers only: the server is a daemonic [`Process`] running
//! [`object_server`], and every call is a mailbox [`ask`](crate::Addr::ask) (a reply slot
//! in the hub that fails at once if the server has ended, or when it dies mid-call).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::Manager;
use crate::error::AskError;
use crate::mailbox::{mailbox, Addr, ReplyTo};
use crate::process::{parent_process, Process};
use crate::wire::manager_ops::GroupKey;

/// A type whose value lives in a server process and whose method calls come from anywhere:
/// Python's `BaseManager.register(typeid, callable)`, typed.
///
/// The value is built in the caller, sent to the server once
/// ([`Manager::shared`](super::Manager::shared)), and from then on it only changes there:
/// each [`Proxy::call`] sends a `Call`, runs [`call`](Self::call) in the server with the
/// object's state, and brings the `Reply` back. Calls from all processes are served one at a
/// time, in arrival order, so `call` needs no locking of its own. Register the type with
/// [`register_shared!`](crate::register_shared) next to this impl.
///
/// # Example
/// ```
/// use multiproc::manager::{Manager, SharedObject};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Counter {
///     n: i64,
/// }
///
/// #[derive(Serialize, Deserialize)]
/// enum Op {
///     Add(i64),
///     Get,
/// }
///
/// impl SharedObject for Counter {
///     type Call = Op;
///     type Reply = i64;
///     fn call(&mut self, op: Op) -> i64 {
///         match op {
///             Op::Add(k) => self.n += k,
///             Op::Get => {}
///         }
///         self.n
///     }
/// }
/// multiproc::register_shared!(Counter);
///
/// let m = Manager::new()?;
/// let c = m.shared(Counter::default())?;
/// assert_eq!(c.call(Op::Add(2))?, 2);
/// assert_eq!(c.call(Op::Get)?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SharedObject: Serialize + DeserializeOwned + 'static {
    /// What a call says (an enum of the methods and their arguments, typically).
    type Call: Serialize + DeserializeOwned;
    /// What a call answers.
    type Reply: Serialize + DeserializeOwned;
    /// Runs one call on the object, in the server process. A panic fails only this call
    /// ([`ProxyError::Panicked`] with the message); the object keeps the state it had reached.
    fn call(&mut self, call: Self::Call) -> Self::Reply;
}

/// A [`SharedObject`] type registered with [`register_shared!`](crate::register_shared), so
/// that the server process (a fresh copy of the program) can rebuild it by name. Implemented
/// by the macro only.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not registered as a shared object type",
    label = "not registered",
    note = "add `multiproc::register_shared!({Self});` next to its `impl SharedObject for {Self}`"
)]
pub trait Registered: SharedObject {
    /// The registered name (`module::path::Type`).
    const NAME: &'static str;
}

/// Registers a [`SharedObject`] type so that a Manager's server process can serve it
/// (the link-time registry that `#[worker]` uses). Once per type, at module level.
///
/// ```
/// use multiproc::manager::SharedObject;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Log(Vec<String>);
///
/// impl SharedObject for Log {
///     type Call = String;
///     type Reply = usize;
///     fn call(&mut self, line: String) -> usize {
///         self.0.push(line);
///         self.0.len()
///     }
/// }
/// multiproc::register_shared!(Log);
/// ```
#[macro_export]
macro_rules! register_shared {
    ($t:ty) => {
        const _: () = {
            impl $crate::manager::Registered for $t {
                const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!($t));
            }
            #[$crate::__private::linkme::distributed_slice($crate::__private::SHARED_TYPES)]
            #[linkme(crate = $crate::__private::linkme)]
            static __MULTIPROC_SHARED: $crate::__private::SharedEntry = $crate::__private::SharedEntry {
                name: <$t as $crate::manager::Registered>::NAME,
                make: $crate::__private::make_shared::<$t>,
            };
        };
    };
}

/// Why a call on a [`Proxy`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The method panicked in the server; this call failed, the object and the server go on.
    #[error("the shared object's method panicked in the server: {0}")]
    Panicked(String),
    /// The server process has ended (killed, or the process that started it has exited):
    /// this and every later call on its objects fail. Create the objects again on a new
    /// server (`Manager::shared`).
    #[error("the shared object's server process has ended ({0}); its objects are gone")]
    ServerGone(String),
    /// The Manager was shut down.
    #[error("the Manager is gone (it was shut down)")]
    ManagerGone,
    /// `call_timeout`: no answer in time. The call may still run in the server.
    #[error("timed out waiting for the shared object's answer (the call may still run in the server)")]
    Timeout,
    /// Interrupted by Ctrl-C (interrupt mode).
    #[error("interrupted by Ctrl-C")]
    Interrupted,
    /// The call, the reply or the initial value could not be encoded or decoded (a different
    /// binary, or a type whose serialisation fails).
    #[error("could not encode or decode for the shared object: {0}")]
    Codec(String),
    /// The server does not know the type (the server runs another build of the program).
    #[error("{0}")]
    Unregistered(String),
    /// The hub could not be reached.
    #[error("{0}")]
    Call(String),
}

/// What the server answers when it cannot run the call.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Failure {
    Panicked(String),
    Codec(String),
    Unregistered(String),
    UnknownObject,
    ManagerGone,
}

impl From<Failure> for ProxyError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Panicked(m) => ProxyError::Panicked(m),
            Failure::Codec(m) => ProxyError::Codec(m),
            Failure::Unregistered(m) => ProxyError::Unregistered(m),
            Failure::UnknownObject => ProxyError::ServerGone("the server no longer has this object".into()),
            Failure::ManagerGone => ProxyError::ManagerGone,
        }
    }
}

/// A message to an object server.
#[derive(Serialize, Deserialize)]
pub(crate) enum ServerMsg {
    Create {
        type_name: String,
        init: ByteBuf,
        reply: ReplyTo<Result<u64, Failure>>,
    },
    Call {
        obj: u64,
        call: ByteBuf,
        reply: ReplyTo<Result<ByteBuf, Failure>>,
    },
}

/// Decodes a registered type's initial value into a served object.
#[doc(hidden)]
pub type MakeShared = fn(&[u8]) -> Result<Box<dyn ErasedShared>, String>;

/// A registered type, type-erased for the server.
#[doc(hidden)]
pub struct SharedEntry {
    /// `module::path::Type`.
    pub name: &'static str,
    /// Decodes the initial value.
    pub make: MakeShared,
}

/// A served object, type-erased.
#[doc(hidden)]
pub trait ErasedShared {
    /// Decodes a call, runs it, encodes the reply.
    fn call_bytes(&mut self, call: &[u8]) -> Result<Vec<u8>, String>;
}

struct Typed<T>(T);

impl<T: SharedObject> ErasedShared for Typed<T> {
    fn call_bytes(&mut self, call: &[u8]) -> Result<Vec<u8>, String> {
        let c: T::Call = rmp_serde::from_slice(call).map_err(|e| format!("the call could not be decoded: {e}"))?;
        let r = self.0.call(c);
        rmp_serde::to_vec(&r).map_err(|e| format!("the reply could not be encoded: {e}"))
    }
}

/// The `make` of a registered type (used by `register_shared!`).
#[doc(hidden)]
pub fn make_shared<T: SharedObject>(init: &[u8]) -> Result<Box<dyn ErasedShared>, String> {
    let v: T = rmp_serde::from_slice(init).map_err(|e| format!("the initial value could not be decoded: {e}"))?;
    Ok(Box::new(Typed(v)))
}

/// Every `register_shared!` type in the binary.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static SHARED_TYPES: [SharedEntry];

fn find_type(name: &str) -> Option<&'static SharedEntry> {
    SHARED_TYPES.iter().find(|e| e.name == name)
}

/// How often an idle server checks that its Manager is alive and its parent too.
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// The server process of one Manager's shared objects (in the process that started it).
/// Serves calls one at a time, in arrival order; ends when the Manager is shut down or its
/// parent (the process that started it) has ended.
#[crate::worker]
pub(crate) fn object_server(manager: Manager) {
    let inbox = mailbox::<ServerMsg>();
    let parent = parent_process();
    let mut objects: HashMap<u64, Box<dyn ErasedShared>> = HashMap::new();
    let mut next = 1u64;
    let mut checked = std::time::Instant::now();
    loop {
        // Busy or idle, at least every IDLE_CHECK: has the process that started us ended?
        if checked.elapsed() >= IDLE_CHECK {
            if parent.as_ref().is_some_and(|p| !p.is_alive()) || manager.is_shutdown().unwrap_or(true) {
                return;
            }
            checked = std::time::Instant::now();
        }
        let msg = match inbox.recv_timeout(IDLE_CHECK) {
            Ok(m) => m,
            Err(crate::RecvError::Timeout) => continue,
            // A message that is not ours (another type sent to this address): skip it.
            Err(crate::RecvError::Decode(_)) => continue,
            Err(_) => return,
        };
        let gone = manager.is_shutdown().unwrap_or(true);
        match msg {
            ServerMsg::Create { type_name, init, reply } => {
                let r = if gone {
                    Err(Failure::ManagerGone)
                } else {
                    match find_type(&type_name) {
                        None => Err(Failure::Unregistered(format!(
                            "no shared object type named `{type_name}` is registered in the server's binary"
                        ))),
                        Some(entry) => match (entry.make)(&init) {
                            Ok(obj) => {
                                let id = next;
                                next += 1;
                                objects.insert(id, obj);
                                Ok(id)
                            }
                            Err(e) => Err(Failure::Codec(e)),
                        },
                    }
                };
                let _ = reply.send(&r);
            }
            ServerMsg::Call { obj, call, reply } => {
                let r = if gone {
                    Err(Failure::ManagerGone)
                } else {
                    match objects.get_mut(&obj) {
                        None => Err(Failure::UnknownObject),
                        Some(o) => match crate::runtime::bootstrap::catch(|| o.call_bytes(&call)) {
                            Ok(Ok(bytes)) => Ok(ByteBuf::from(bytes)),
                            Ok(Err(e)) => Err(Failure::Codec(e)),
                            Err(report) => Err(Failure::Panicked(match report.location {
                                Some(at) => format!("{} (at {at})", report.message),
                                None => report.message,
                            })),
                        },
                    }
                };
                let _ = reply.send(&fit_reply(r));
            }
        }
        if gone {
            return;
        }
    }
}

/// A reply too large for one frame would never reach the caller (who would wait for the
/// server's death): it becomes a `Codec` failure that says so.
fn fit_reply(r: Result<ByteBuf, Failure>) -> Result<ByteBuf, Failure> {
    // Room for the reply slot's own framing around the bytes.
    const SLACK: usize = 1024;
    let max = crate::runtime::max_frame_size().saturating_sub(SLACK);
    match r {
        Ok(b) if b.len() > max => Err(Failure::Codec(format!(
            "the reply is {} bytes, over the maximum frame size ({max} bytes usable); return less, or pass \
             large data through shared memory (multiproc::shm::Array)",
            b.len()
        ))),
        other => other,
    }
}

/// The servers this process started, per Manager.
static SERVERS: Mutex<Vec<(GroupKey, Process<()>)>> = Mutex::new(Vec::new());

/// The address of this process's server for `m`, started on first use.
pub(crate) fn server_for(m: &Manager) -> Result<Addr<ServerMsg>, ProxyError> {
    let mut servers = SERVERS.lock().unwrap_or_else(|p| p.into_inner());
    let key = m.key;
    servers.retain(|(_, p)| p.is_alive());
    if let Some((_, p)) = servers.iter().find(|(k, _)| *k == key) {
        return Ok(p.addr());
    }
    let p = Process::new(object_server(m.clone()))
        .name("ObjectServer")
        .daemon(true)
        .ignore_sigint(true)
        .start()
        .map_err(|e| ProxyError::Call(format!("cannot start the shared objects' server process: {e}")))?;
    let addr = p.addr();
    servers.push((key, p));
    Ok(addr)
}

/// Drops this process's record of a server of `m` that turned out to be dead.
fn forget_server(m: &Manager, pid: i32) {
    let key = m.key;
    let mut servers = SERVERS.lock().unwrap_or_else(|p| p.into_inner());
    servers.retain(|(k, p)| !(*k == key && p.pid() == pid));
}

/// Stops this process's server for `m` (at `Manager::shutdown`), if it started one.
pub(crate) fn stop_server(m: &Manager) {
    let key = m.key;
    let mut servers = SERVERS.lock().unwrap_or_else(|p| p.into_inner());
    servers.retain(|(k, p)| {
        if *k == key {
            let _ = p.terminate();
            false
        } else {
            true
        }
    });
}

/// A typed handle to a shared object in its Manager's server process (Python's proxy of a
/// registered type). `Clone + Serialize + Deserialize`: pass it to children as a worker
/// argument, in a queue or a mailbox message; every copy calls the same object.
///
/// # Example
/// ```
/// use multiproc::manager::{Manager, Proxy, SharedObject};
/// use multiproc::Process;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Total(u64);
///
/// impl SharedObject for Total {
///     type Call = u64;
///     type Reply = u64;
///     fn call(&mut self, k: u64) -> u64 {
///         self.0 += k;
///         self.0
///     }
/// }
/// multiproc::register_shared!(Total);
///
/// #[multiproc::worker]
/// fn add(t: Proxy<Total>, k: u64) {
///     t.call(k).unwrap();
/// }
///
/// let m = Manager::new()?;
/// let t = m.shared(Total(0))?;
/// let mut kids: Vec<_> = (1..=3).map(|k| Process::new(add(t.clone(), k)).start()).collect::<Result<_, _>>()?;
/// for k in &mut kids {
///     k.join()?;
/// }
/// assert_eq!(t.call(0)?, 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Serialize, Deserialize)]
pub struct Proxy<T> {
    server: Addr<ServerMsg>,
    obj: u64,
    manager: Manager,
    #[serde(skip)]
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Proxy<T> {
    fn clone(&self) -> Self {
        Proxy {
            server: self.server.clone(),
            obj: self.obj,
            manager: self.manager.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Proxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("type", &std::any::type_name::<T>())
            .field("server_pid", &self.server.pid())
            .field("object", &self.obj)
            .finish()
    }
}

impl<T: Registered> Proxy<T> {
    pub(crate) fn create(m: &Manager, init: T) -> Result<Proxy<T>, ProxyError> {
        if m.is_shutdown().map_err(|e| ProxyError::Call(e.to_string()))? {
            return Err(ProxyError::ManagerGone);
        }
        let init = ByteBuf::from(rmp_serde::to_vec(&init).map_err(|e| ProxyError::Codec(e.to_string()))?);
        // A server that has just died may still look alive to the hub for a moment (its
        // connection closed, its exit not reaped yet): forget it and start another, once.
        let mut attempts = 2;
        loop {
            let server = server_for(m)?;
            let asked = server.ask(|reply| ServerMsg::Create {
                type_name: T::NAME.to_string(),
                init: init.clone(),
                reply,
            });
            match asked.map_err(|e| ask_error(m, e)) {
                Err(ProxyError::ServerGone(_)) if attempts > 1 => {
                    attempts -= 1;
                    forget_server(m, server.pid());
                }
                Err(e) => return Err(e),
                Ok(r) => {
                    return Ok(Proxy {
                        server,
                        obj: r?,
                        manager: m.clone(),
                        _t: PhantomData,
                    })
                }
            }
        }
    }

    /// Calls the object's [`SharedObject::call`] in the server and returns its reply.
    /// Blocks while the server runs other processes' calls before it.
    pub fn call(&self, call: T::Call) -> Result<T::Reply, ProxyError> {
        self.call_wait(call, None)
    }

    /// [`call`](Self::call), giving up with [`ProxyError::Timeout`] after `timeout` (the call
    /// may still run in the server).
    pub fn call_timeout(&self, call: T::Call, timeout: Duration) -> Result<T::Reply, ProxyError> {
        self.call_wait(call, Some(timeout))
    }

    fn call_wait(&self, call: T::Call, timeout: Option<Duration>) -> Result<T::Reply, ProxyError> {
        let call = ByteBuf::from(rmp_serde::to_vec(&call).map_err(|e| ProxyError::Codec(e.to_string()))?);
        let make = |reply| ServerMsg::Call {
            obj: self.obj,
            call,
            reply,
        };
        let r: Result<ByteBuf, Failure> = match timeout {
            None => self.server.ask(make),
            Some(t) => self.server.ask_timeout(make, t),
        }
        .map_err(|e| ask_error(&self.manager, e))?;
        let bytes = r?;
        rmp_serde::from_slice(&bytes).map_err(|e| ProxyError::Codec(format!("the reply could not be decoded: {e}")))
    }

    /// The pid of the server process that holds the object.
    pub fn server_pid(&self) -> i32 {
        self.server.pid()
    }
}

fn ask_error(m: &Manager, e: AskError) -> ProxyError {
    match e {
        // `NoProc` comes only from an address by name; a proxy asks its server by pid, so treat
        // it as the server's end.
        AskError::Gone | AskError::NoProc(_) => {
            if m.is_shutdown().unwrap_or(false) {
                ProxyError::ManagerGone
            } else {
                ProxyError::ServerGone("it ended without answering".into())
            }
        }
        AskError::Timeout => ProxyError::Timeout,
        AskError::Interrupted => ProxyError::Interrupted,
        AskError::Decode(m) => ProxyError::Codec(m),
        AskError::Send(e) => ProxyError::Call(e.to_string()),
        AskError::Call(e) => ProxyError::Call(e.to_string()),
    }
}
