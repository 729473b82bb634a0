//! Serving snapshots to another program (the `top` view), and dumping them on a signal.
//!
//! The hub accepts only processes of its own tree, so a viewer started from another terminal
//! cannot call `snapshot()` itself. A program that opts in ([`serve_snapshots`], or the
//! [`SERVE_ENV`] environment variable) runs a thread that listens on a Unix socket and answers
//! each connection with one snapshot (one frame: `u32` LE length + MessagePack), then closes
//! it. The socket file is mode `0600`, and a connection from another user is refused by its
//! peer credentials before anything is sent, so only the program's own user can look.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Snapshot;
use crate::error::CallError;
use crate::sys;
use crate::wire;

/// The environment variable that makes the root serve snapshots on this socket path from its
/// first use of the library (as if it called [`serve_snapshots`]).
pub const SERVE_ENV: &str = "MULTIPROC_SNAPSHOT_SOCKET";

/// The environment variable naming a signal (`SIGUSR1`, `SIGUSR2`, ...) on which the root
/// writes a snapshot to its standard error.
pub(crate) const DUMP_ENV: &str = "MULTIPROC_DUMP_ON";

/// Why snapshots could not be served or read.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket could not be created (the path exists, or its directory is missing or not
    /// writable): choose another path, or remove the stale socket file.
    #[error("cannot listen on {path}: {errno}; choose another path or remove the stale file")]
    Listen {
        /// The path.
        path: PathBuf,
        /// Why.
        errno: sys::Errno,
    },
    /// Nothing listens there (the program is not running, or did not opt in).
    #[error("cannot connect to {path}: {errno}; is the program running with {SERVE_ENV} set to it?")]
    Connect {
        /// The path.
        path: PathBuf,
        /// Why.
        errno: sys::Errno,
    },
    /// The program's answer was cut short or was not a snapshot (it may have exited).
    #[error("bad answer from the snapshot server: {0}")]
    BadAnswer(String),
    /// Taking the snapshot failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// A running snapshot server (see [`serve_snapshots`]). Dropping it stops the thread and
/// removes the socket file.
#[must_use = "dropping the server stops it"]
#[derive(Debug)]
pub struct SnapshotServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SnapshotServer {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SnapshotServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        sys::net::remove_socket_file(&self.path, false);
    }
}

/// Serves [`snapshot()`](super::snapshot) on a Unix socket at `path` (mode `0600`, same user
/// only) until the returned server is dropped. `examples/top.rs` reads it every second.
///
/// # Example
/// ```no_run
/// let server = multiproc::observe::serve_snapshots("/tmp/myprog.snap")?;
/// // ... in another terminal: cargo run --example top -- /tmp/myprog.snap
/// let snap = multiproc::observe::read_served_snapshot(server.path())?;
/// assert!(!snap.processes.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn serve_snapshots(path: impl AsRef<Path>) -> Result<SnapshotServer, ServeError> {
    let path = path.as_ref().to_path_buf();
    // The hub first, so that a failure to start it is reported here.
    crate::runtime::rt()?;
    let listener = sys::net::listen_unix(&path, 16).map_err(|errno| ServeError::Listen {
        path: path.clone(),
        errno,
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("multiproc-snapshots".into())
        .spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                // Wake every 100 ms to notice `stop`.
                match sys::io::wait_readable_for(&[listener.as_fd()], Some(Duration::from_millis(100))) {
                    Ok(sys::io::Ready::Index(_)) => {}
                    Ok(_) => continue,
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
                while let Ok(Some(sock)) = sys::net::accept(listener.as_fd()) {
                    if sys::net::peer_uid(sock.as_fd()) != Some(sys::net::euid()) {
                        continue; // another user: closed without a word
                    }
                    let _ = sys::io::set_send_timeout(sock.as_fd(), Some(Duration::from_secs(2)));
                    let frame = super::snapshot()
                        .map_err(|e| e.to_string())
                        .and_then(|s| wire::encode(&s).map_err(|e| e.to_string()));
                    if let Ok(bytes) = frame {
                        let _ = sys::io::send_all(sock.as_fd(), &bytes, &[]);
                    }
                }
            }
        })
        .map_err(|e| ServeError::Call(CallError::Protocol(format!("cannot start the snapshot thread: {e}"))))?;
    Ok(SnapshotServer {
        path,
        stop,
        thread: Some(thread),
    })
}

/// Reads one snapshot from a program that serves them at `path` (see [`serve_snapshots`]).
/// Waits at most 5 s for the answer.
pub fn read_served_snapshot(path: impl AsRef<Path>) -> Result<Snapshot, ServeError> {
    let path = path.as_ref();
    let deadline = Instant::now() + Duration::from_secs(5);
    let sock = sys::net::connect_unix(path, deadline).map_err(|errno| ServeError::Connect {
        path: path.to_path_buf(),
        errno,
    })?;
    let _ = sys::io::set_recv_timeout(sock.as_fd(), Some(Duration::from_secs(5)));
    let mut dec = wire::FrameDecoder::new(1 << 30);
    loop {
        match dec.next_frame() {
            Ok(Some(body)) => return wire::decode::<Snapshot>(body).map_err(|e| ServeError::BadAnswer(e.to_string())),
            Ok(None) => {}
            Err(e) => return Err(ServeError::BadAnswer(e.to_string())),
        }
        let buf = dec.spare(64 * 1024);
        match sys::io::recv_into(sock.as_fd(), buf, false) {
            Ok(0) => {
                return Err(ServeError::BadAnswer(
                    "the connection closed before a whole snapshot came".into(),
                ))
            }
            Ok(n) => dec.commit(n),
            Err(sys::Errno::EINTR) => {}
            Err(e) => return Err(ServeError::BadAnswer(format!("read failed: {e}"))),
        }
    }
}

/// Called once when the root starts its runtime: starts what the environment asks for
/// ([`SERVE_ENV`], [`DUMP_ENV`]). Problems are reported on standard error, never fatal.
pub(crate) fn root_started() {
    if let Some(path) = std::env::var_os(SERVE_ENV) {
        // Started from inside the root's first call: the thread calls `snapshot()` only
        // when a viewer connects, by then the runtime is installed.
        let path = PathBuf::from(path);
        sys::net::remove_socket_file(&path, false);
        match listen_later(path.clone()) {
            Ok(()) => {}
            Err(e) => sys::io::write_stderr(&format!("multiproc: {SERVE_ENV}: {e}\n")),
        }
    }
    if let Ok(name) = std::env::var(DUMP_ENV) {
        match sys::signal::by_name(&name) {
            Some(sig) => start_dumper(sig),
            None => sys::io::write_stderr(&format!(
                "multiproc: {DUMP_ENV}={name} is not a signal name (use SIGUSR1 or SIGUSR2); no dumps\n"
            )),
        }
    }
}

/// Starts the server of [`SERVE_ENV`] on a thread of its own (the runtime is being installed
/// by our caller, so `serve_snapshots` cannot be called from here directly), for the life of
/// the program.
fn listen_later(path: PathBuf) -> Result<(), ServeError> {
    std::thread::Builder::new()
        .name("multiproc-snapshots".into())
        .spawn(move || match serve_snapshots(&path) {
            Ok(server) => {
                // Serve for the life of the program; the socket file is left behind at exit
                // and replaced on the next start.
                std::mem::forget(server);
            }
            Err(e) => sys::io::write_stderr(&format!("multiproc: {SERVE_ENV}: {e}\n")),
        })
        .map(|_| ())
        .map_err(|e| ServeError::Call(CallError::Protocol(format!("cannot start the snapshot thread: {e}"))))
}

/// On `sig`, writes a snapshot to standard error. The signal handler only writes a byte to a
/// pipe (async-signal-safe, `sys::signal::notify_on`); this thread does the rest.
fn start_dumper(sig: i32) {
    let pipe = match sys::signal::notify_on(sig) {
        Ok(p) => p,
        Err(e) => {
            sys::io::write_stderr(&format!("multiproc: {DUMP_ENV}: cannot watch signal {sig}: {e}\n"));
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("multiproc-dump".into())
        .spawn(move || loop {
            match sys::io::wait_readable(&[pipe.read.as_fd()], None) {
                Ok(_) => {
                    sys::signal::drain(&pipe.read);
                    if let Err(e) = super::dump_snapshot() {
                        sys::io::write_stderr(&format!("multiproc: cannot take a snapshot: {e}\n"));
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        });
    if let Err(e) = spawned {
        sys::io::write_stderr(&format!("multiproc: {DUMP_ENV}: cannot start the dump thread: {e}\n"));
    }
}
