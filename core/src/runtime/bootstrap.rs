//! Turning a re-executed binary into a child, before the user's `main` runs.
//!
//! The hub re-executes the program with `__MULTIPROC_BOOT=<mode>:<root pid>` in the environment
//! and the child's hub connection at descriptor 3. A function in `.init_array` (run by the
//! dynamic loader before `main`, also under libtest, criterion and nextest) sees the marker and
//! diverts: `spawn` runs the worker named in the `ChildInit` frame and exits; `forkserver`
//! serves fork requests until the hub goes away. Without the marker it returns at once and the
//! program starts normally, so users write no init call and no `__main__` guard.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_bytes::ByteBuf;

use super::client::ClientConn;
use super::{fdpass, registry, Runtime, QUIET_PANICS};
use crate::hub::BOOT_ENV;
use crate::sys;
use crate::wire::proto::{Cast, ChildInit, ExitInfo, FromHub, Outcome, PanicReport, TaskSpec, ToForkServer, ToHub};
use crate::wire::{self, FrameDecoder};
use std::time::Instant;

// The loader calls every function pointer in `.init_array` (`__mod_init_func` on Apple
// platforms) before `main`. `#[used]` keeps the static even though nothing reads it, and
// `ensure_linked` references it so that the linker keeps this object file.
#[used]
#[cfg_attr(
    any(target_os = "linux", target_os = "android", target_os = "freebsd"),
    link_section = ".init_array"
)]
#[cfg_attr(target_vendor = "apple", link_section = "__DATA,__mod_init_func")]
static BOOTSTRAP: extern "C" fn() = boot;

/// Makes sure the bootstrap is linked into the final binary.
pub(crate) fn ensure_linked() {
    std::hint::black_box(&BOOTSTRAP);
}

/// A frame size limit for frames from the hub before the child knows the configured one (the
/// hub is trusted; the limit only bounds a corrupted length).
const BOOT_MAX_FRAME: usize = u32::MAX as usize;

extern "C" fn boot() {
    let Some(value) = std::env::var_os(BOOT_ENV) else {
        // Not a multiproc child. Under an MPI launcher (feature `mpi`), ranks other than 0
        // become task servers here and never return; rank 0 goes on to `main`.
        #[cfg(feature = "mpi")]
        crate::backend::mpi::boot();
        return;
    };
    // Only the main thread exists this early, so changing the environment is race-free.
    std::env::remove_var(BOOT_ENV);
    let value = value.to_string_lossy().into_owned();
    let (mode, parent) = match value.split_once(':') {
        Some((m, p)) => (m.to_owned(), p.parse::<i32>().unwrap_or(0)),
        None => (value.clone(), 0),
    };
    if let Err(why) = check_root(parent) {
        // Not started by a multiproc root: say why, and run the program normally.
        sys::io::write_stderr(&format!(
            "multiproc: ignoring {BOOT_ENV}={value}: {why}; running the program normally\n"
        ));
        return;
    }
    if !sys::proc::die_with_parent(parent) {
        // The root died before we could tie our life to it.
        sys::proc::exit_now(1);
    }
    let Some(conn) = sys::fd::adopt_inherited(sys::proc::CHILD_CONN_FD) else {
        sys::io::write_stderr(&format!(
            "multiproc: started as a child but descriptor {} is not open\n",
            sys::proc::CHILD_CONN_FD
        ));
        sys::proc::exit_now(1);
    };
    sys::fd::close_from(sys::proc::CHILD_CONN_FD + 1, &[]);
    match mode.as_str() {
        "spawn" => {
            super::STARTED_AS.store(1, std::sync::atomic::Ordering::SeqCst);
            child_main(conn)
        }
        "forkserver" => forkserver_main(conn, parent),
        other => {
            eprintln!("multiproc: unknown start mode `{other}`");
            sys::proc::exit_now(1)
        }
    }
}

/// Checks that the hub connection at descriptor 3 leads to the root the marker names: a Unix
/// socket created by that pid (`SO_PEERCRED`), of our user, in a process that runs a multiproc
/// hub thread. Nothing is changed in this process before the check passes.
fn check_root(root: i32) -> Result<(), String> {
    let fd = sys::proc::CHILD_CONN_FD;
    if root <= 0 {
        return Err("the marker names no root pid".into());
    }
    match sys::fd::inherited_peer(fd) {
        sys::fd::Peer::NotOpen => return Err(format!("descriptor {fd} is not open")),
        sys::fd::Peer::NotASocket => return Err(format!("descriptor {fd} is not a Unix socket")),
        sys::fd::Peer::Process { pid, uid } => {
            if uid != sys::proc::getuid() {
                return Err(format!(
                    "descriptor {fd} is connected to a process of user {uid}, not ours"
                ));
            }
            if let Some(pid) = pid.filter(|&p| p != root) {
                return Err(format!(
                    "descriptor {fd} is connected to pid {pid}, not to the root pid {root} the marker names"
                ));
            }
        }
    }
    // A root that has already died is not an error here (the parent-death check handles it).
    if sys::proc::runs_thread_named(root, "multiproc-hub") == Some(false) {
        return Err(format!("pid {root} runs no multiproc hub"));
    }
    Ok(())
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<PanicReport>> = const { std::cell::RefCell::new(None) };
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// Records the message and location of panics (for the parent), and prints them as usual
/// unless this process reports them some other way (pool workers).
pub(crate) fn install_panic_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let report = PanicReport {
            message: payload_message(info.payload()),
            location: info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
        };
        if !QUIET_PANICS.load(Ordering::Relaxed) {
            match super::rt_if_started().filter(|rt| !rt.is_root()) {
                // A child names itself, so that the line is useful in a terminal that several
                // processes write to.
                Some(rt) => print_child_panic(&rt.me.name, &report),
                None => prev(info),
            }
        }
        let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(report));
    }));
}

/// The line a child prints for a panic, in the form of Rust's own message with the process
/// named instead of the thread: `process 'worker-2' (pid 1234) panicked at src/x.rs:3:5: boom`
/// (a thread other than the main one is named too).
///
/// ```text
/// process 'worker-2' (pid 1234) panicked at src/x.rs:3:5: boom
/// process 'worker-2' (pid 1234), thread 'io', panicked at src/x.rs:9:9: closed
/// ```
pub(crate) fn panic_line(name: &str, pid: i32, thread: Option<&str>, report: &PanicReport) -> String {
    // The main thread of a child (in a `Fork` child: the fork thread it came from) is the
    // process itself; only another thread is named.
    let thread = match thread {
        Some(t) if t != "main" && !t.starts_with("multiproc-fork-") => format!(", thread '{t}',"),
        _ => String::new(),
    };
    let at = report.location.as_deref().unwrap_or("an unknown location");
    format!(
        "process '{name}' (pid {pid}){thread} panicked at {at}: {}",
        report.message
    )
}

fn print_child_panic(name: &str, report: &PanicReport) {
    let current = std::thread::current();
    let mut text = panic_line(name, sys::proc::getpid(), current.name(), report);
    text.push('\n');
    match std::env::var("RUST_BACKTRACE").as_deref() {
        Ok("0") | Err(_) => {
            text.push_str("note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n")
        }
        Ok(_) => {
            text.push_str(&format!(
                "stack backtrace:\n{}\n",
                std::backtrace::Backtrace::force_capture()
            ));
        }
    }
    // One write (lines of processes panicking together do not interleave); never a panic.
    sys::io::write_stderr(&text);
}

/// The report of the last panic on this thread, if any, without taking it (the actor loop
/// reads it after catching a handler's panic, then lets the panic go on).
pub(crate) fn last_panic() -> Option<PanicReport> {
    LAST_PANIC.try_with(|p| p.borrow().clone()).ok().flatten()
}

/// Runs `f`, turning a panic into a report.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, PanicReport> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        LAST_PANIC
            .try_with(|p| p.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_else(|| PanicReport {
                message: payload_message(&*payload),
                location: None,
            })
    })
}

/// Runs a registered worker on its encoded arguments.
pub(crate) fn run_task(spec: &TaskSpec, fds: Vec<OwnedFd>) -> Outcome {
    let entry = match registry::find(&spec.worker) {
        Ok(e) => e,
        Err(e) => return Outcome::Failed(e.0),
    };
    let mut bytes = Vec::new();
    match catch(|| fdpass::with_incoming(fds, || (entry.run)(&spec.args, &mut bytes))) {
        Ok(Ok(())) => Outcome::Returned(ByteBuf::from(bytes)),
        Ok(Err(e)) => Outcome::Failed(e.0),
        Err(report) => Outcome::Panicked(report),
    }
}

/// Set by a worker that returned `Err` (see `__private::note_returned`): the child then
/// exits with code 1, as `fn main() -> Result` does, and the value still goes to `join()`.
static RETURNED_ERR: AtomicBool = AtomicBool::new(false);

/// Records whether the worker's value is an `Err` (the `#[worker]` expansion calls this).
pub(crate) fn note_returned(is_err: bool) {
    RETURNED_ERR.store(is_err, Ordering::Relaxed);
}

/// Forgets the last worker's `Err` (a pool worker runs many tasks in one process).
pub(crate) fn clear_returned() {
    RETURNED_ERR.store(false, Ordering::Relaxed);
}

/// How a child process ends once it has reported its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Like `std::process::exit`: the process's exit handlers (libc `atexit`) run and the
    /// standard streams are flushed. For `Spawn` and `ForkServer` children, whose exit
    /// handlers are their own.
    Normal,
    /// `_exit` after flushing the standard streams: for `Fork` children, whose exit handlers
    /// were inherited from the parent and are not theirs to run (as Python's `os._exit`).
    Immediate,
}

/// Reports the outcome, winds down this process's own children as Python does, flushes the
/// standard streams and exits (see [`Exit`]).
pub(crate) fn finish(rt: &Runtime, outcome: Outcome, exit: Exit) -> ! {
    let mut code = match outcome {
        Outcome::Returned(_) if !RETURNED_ERR.load(Ordering::Relaxed) => 0,
        _ => 1,
    };
    if let Err(crate::error::CallError::Encode(wire::FrameError::Oversized { len, max })) =
        rt.cast_main(Cast::Outcome(outcome))
    {
        // The value does not fit in a frame: say so instead of vanishing.
        code = 1;
        let _ = rt.cast_main(Cast::Outcome(Outcome::TooLarge {
            bytes: len as u64,
            max: max as u64,
        }));
    }
    rt.shutdown_children();
    match exit {
        Exit::Normal => {
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            std::process::exit(code)
        }
        Exit::Immediate => {
            // A forked child inherits the standard streams' locks as they were at the fork: if
            // another thread of the parent held one then, flushing here would wait forever.
            // Flush on a helper thread and give up after a second.
            let (tx, rx) = std::sync::mpsc::channel();
            let flusher = std::thread::Builder::new().spawn(move || {
                let _ = std::io::stdout().flush();
                let _ = std::io::stderr().flush();
                let _ = tx.send(());
            });
            if flusher.is_ok() {
                let _ = rx.recv_timeout(std::time::Duration::from_secs(1));
            }
            sys::proc::exit_now(code)
        }
    }
}

/// Applies the init frame's process settings.
pub(crate) fn setup_child(init: &ChildInit) {
    if init.ignore_sigint {
        let _ = sys::signal::ignore(sys::signal::SIGINT);
        QUIET_PANICS.store(true, Ordering::Relaxed);
    }
    // A fork-server child starts with SIGINT blocked (see `forkserver_main`).
    let _ = sys::signal::unblock(sys::signal::SIGINT);
    // The root dumps snapshots on this signal; a child (which inherited the setting) must not
    // die of a signal sent to the whole process group.
    if let Some(sig) = std::env::var(crate::observe::DUMP_ENV)
        .ok()
        .and_then(|n| sys::signal::by_name(&n))
    {
        let _ = sys::signal::ignore(sig);
    }
    install_panic_hook();
    crate::trace::set_child(&init.me.name, sys::proc::getpid());
}

/// The life of a spawned or fork-server child: read the init frame, run the worker, exit.
pub(crate) fn child_main(conn: OwnedFd) -> ! {
    let mut cc = ClientConn::new(conn, BOOT_MAX_FRAME);
    let init = match cc.next_message(None) {
        Ok(FromHub::Init(init)) => init,
        Ok(_) | Err(_) => {
            // The hub went away before we started (the root exited): nothing to do.
            sys::proc::exit_now(1);
        }
    };
    let nfds = init.task.as_ref().map_or(0, |t| t.nfds as usize);
    let with_ring = usize::from(init.ring != 0);
    // The rings' descriptor may come in a message of its own, right after the init.
    cc.await_fds(nfds + with_ring, Instant::now() + std::time::Duration::from_secs(30));
    let mut fds = cc.take_fds(nfds + with_ring).unwrap_or_default();
    let ring = if with_ring == 1 { fds.pop() } else { None };
    let rt = super::init_child(&init, cc.into_fd(), ring);
    setup_child(&init);
    let outcome = match &init.task {
        Some(task) => run_task(task, fds),
        None => Outcome::Failed("no task was given to this child".into()),
    };
    finish(rt, outcome, Exit::Normal)
}

fn send_cast(ctl: &OwnedFd, c: Cast) -> bool {
    match wire::encode(&ToHub::Cast(c)) {
        Ok(bytes) => sys::io::send_all(ctl.as_fd(), &bytes, &[]).is_ok(),
        Err(_) => false,
    }
}

fn report_reaped(ctl: &OwnedFd) {
    while let Ok(Some((pid, raw))) = sys::proc::reap_any() {
        let exit = match raw {
            sys::proc::RawExit::Exited(c) => ExitInfo::Exited(c),
            sys::proc::RawExit::Signaled(s) => ExitInfo::Signaled(s),
        };
        send_cast(ctl, Cast::Reaped { pid, exit });
    }
}

/// The fork server: a clean, single-threaded copy of the program that forks children on the
/// hub's request. Its children are cheap to create (a small address space) and safe (no other
/// threads, no held locks at the fork).
///
/// On Linux its children are its *siblings* (`sys::proc::fork_sibling`): children of the root,
/// reaped by the hub through pidfds, and tied to the root's hub thread by their parent-death
/// signal. So they outlive a fork server that dies (a new one is started on demand) and still
/// die with the root.
/// Work every fork-server child would do first, done once in the fork server instead, whose
/// children inherit it (ARCHITECTURE.md, "Process start"): the thread-local slots a child
/// touches on its way to its worker are registered here, so the child neither registers their
/// destructors (`__cxa_thread_atexit_impl`, whose first call resolves symbols in the dynamic
/// linker: a dozen page faults and several microseconds) nor faults on the code that does it.
/// Only empty slots are touched; nothing a child must own (random keys, secrets) is drawn here.
fn warm() {
    fdpass::warm();
    super::handle::warm();
    super::warm_thread_conn();
    LAST_PANIC.with(|_| ());
}

fn forkserver_main(ctl: OwnedFd, root_pid: i32) -> ! {
    warm();
    // Blocked, not ignored: a SIGINT sent to a child between its fork and its set-up stays
    // pending and is delivered when the child unblocks it (`setup_child`), instead of being lost.
    let _ = sys::signal::block(sys::signal::SIGINT);
    let fs_pid = sys::proc::getpid();
    let sigchld = match sys::signal::notify_on(sys::signal::SIGCHLD) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("multiproc fork server: cannot watch SIGCHLD: {e}");
            sys::proc::exit_now(1)
        }
    };
    let mut dec = FrameDecoder::new(1 << 20);
    let mut fds = std::collections::VecDeque::new();
    let child_conn: OwnedFd = 'serve: loop {
        let ready = match sys::io::wait_readable(&[ctl.as_fd(), sigchld.read.as_fd()], None) {
            Ok(r) => r,
            Err(_) => sys::proc::exit_now(1),
        };
        if ready == sys::io::Ready::Index(1) {
            sys::signal::drain(&sigchld.read);
            report_reaped(&ctl);
            continue;
        }
        let buf = dec.spare(64 * 1024);
        match sys::io::recv_with_fds(ctl.as_fd(), buf, &mut fds) {
            Ok(0) | Err(sys::Errno::ECONNRESET) => sys::proc::exit_now(0),
            Ok(n) => dec.commit(n),
            Err(sys::Errno::EAGAIN) | Err(sys::Errno::EINTR) => continue,
            Err(_) => sys::proc::exit_now(1),
        }
        loop {
            let msg = match dec.next_frame() {
                Ok(Some(body)) => wire::decode::<ToForkServer>(body),
                Ok(None) => break,
                Err(_) => sys::proc::exit_now(1),
            };
            let Ok(ToForkServer::Fork { proc }) = msg else {
                sys::proc::exit_now(1)
            };
            let Some(conn) = fds.pop_front() else {
                sys::proc::exit_now(1)
            };
            // SAFETY: the fork server is single-threaded (it runs in the bootstrap, before
            // `main`, and starts no threads), so the child inherits no held locks.
            match unsafe { sys::proc::fork_sibling() } {
                Ok(sys::proc::Forked::Child) => break 'serve conn,
                Ok(sys::proc::Forked::Parent(pid)) => {
                    drop(conn);
                    send_cast(&ctl, Cast::Forked { proc, pid });
                }
                Err(e) => {
                    eprintln!("multiproc fork server: fork failed: {e}");
                    drop(conn);
                }
            }
        }
    };
    // In the new child.
    drop(sigchld);
    drop(ctl);
    drop(fds);
    let parent = if sys::proc::SIBLING_FORK { root_pid } else { fs_pid };
    if !sys::proc::die_with_parent(parent) {
        sys::proc::exit_now(1);
    }
    super::STARTED_AS.store(2, std::sync::atomic::Ordering::SeqCst);
    child_main(child_conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> PanicReport {
        PanicReport {
            message: "boom".into(),
            location: Some("src/x.rs:3:5".into()),
        }
    }

    #[test]
    fn the_panic_line_names_the_process_and_only_other_threads() {
        let r = report();
        assert_eq!(
            panic_line("worker-2", 1234, Some("main"), &r),
            "process 'worker-2' (pid 1234) panicked at src/x.rs:3:5: boom"
        );
        assert_eq!(
            panic_line("w", 1, Some("multiproc-fork-w"), &r),
            "process 'w' (pid 1) panicked at src/x.rs:3:5: boom"
        );
        assert_eq!(
            panic_line("w", 1, Some("io"), &r),
            "process 'w' (pid 1), thread 'io', panicked at src/x.rs:3:5: boom"
        );
        assert_eq!(
            panic_line(
                "w",
                1,
                None,
                &PanicReport {
                    message: "x".into(),
                    location: None
                }
            ),
            "process 'w' (pid 1) panicked at an unknown location: x"
        );
    }
}
