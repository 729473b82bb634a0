//! The `Fork` start method: fork the calling process from a dedicated thread.
//!
//! The fork happens on a new thread that then lives as long as the child, waiting for it and
//! reporting its exit to the hub. That matters because `PR_SET_PDEATHSIG` fires when the
//! *thread* that created the child ends: forking from the caller's thread would kill the child
//! as soon as, say, a test thread returned.

use std::os::fd::OwnedFd;

use crate::error::{CallError, ProcessError};
use crate::runtime::{self, bootstrap};
use crate::sys;
use crate::wire::proto::{Cast, ChildInit, ExitInfo, Op, Outcome, ProcInfo, TaskSpec, Value};

/// A closure to run in the forked child, returning its encoded value.
pub(crate) type Closure = Box<dyn FnOnce() -> Result<Vec<u8>, String> + Send>;

pub(crate) enum ForkBody {
    Task(TaskSpec, Vec<OwnedFd>),
    Closure(Closure),
}

pub(crate) fn start(name: String, daemon: bool, ident: Vec<u32>, body: ForkBody) -> Result<ProcInfo, ProcessError> {
    let (init, mut fds) = match runtime::call_fds(Op::PrepareFork { name, daemon, ident }, &[], None)? {
        (Value::Prepared(init), fds) => (init, fds),
        (other, _) => return Err(CallError::Protocol(format!("unexpected reply {other:?}")).into()),
    };
    let conn = fds
        .pop()
        .ok_or_else(|| CallError::Protocol("PrepareFork sent no connection".into()))?;
    let rt = runtime::rt()?;
    let parent_pid = sys::proc::getpid();
    let proc = init.me.proc;
    let (tx, rx) = std::sync::mpsc::channel::<Result<i32, sys::Errno>>();
    let thread_name = format!("multiproc-fork-{}", init.me.name);
    std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            // This thread never needs SIGINT; blocked here, a SIGINT that reaches the child
            // before `setup_child` stays pending instead of running the parent's handler.
            let _ = sys::signal::block(sys::signal::SIGINT);
            // SAFETY: see `StartMethod::Fork`: the caller accepted that other threads of this
            // process may hold locks at the moment of the fork. The child only runs the task.
            match unsafe { sys::proc::fork() } {
                Ok(sys::proc::Forked::Child) => run_child(*init, conn, body, parent_pid),
                Ok(sys::proc::Forked::Parent(pid)) => {
                    drop(conn);
                    let _ = tx.send(Ok(pid));
                    let exit = match sys::proc::wait_blocking(pid) {
                        Ok(sys::proc::RawExit::Exited(c)) => ExitInfo::Exited(c),
                        Ok(sys::proc::RawExit::Signaled(s)) => ExitInfo::Signaled(s),
                        Err(_) => ExitInfo::Signaled(sys::signal::SIGKILL),
                    };
                    let _ = rt.cast_main(Cast::Reaped { pid, exit });
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(|e| ProcessError::Os(format!("cannot start the fork thread: {e}")))?;
    let pid = rx
        .recv()
        .map_err(|_| ProcessError::Os("the fork thread died".into()))?
        .map_err(|e| ProcessError::Os(format!("fork: {e}")))?;
    // On this thread's connection, so that it is ordered before this thread's next calls
    // (a terminate right after start must find the pid).
    runtime::cast(Cast::Forked { proc, pid })?;
    let mut info = ProcInfo {
        proc,
        pid,
        name: String::new(),
        daemon,
    };
    if let Ok(Value::State(s)) = runtime::call(Op::ProcState(proc), None) {
        info.name = s.info.name;
    }
    Ok(info)
}

/// In the forked child.
fn run_child(init: ChildInit, conn: OwnedFd, body: ForkBody, parent_pid: i32) -> ! {
    // Handlers installed by the parent (interrupt mode, SIGCHLD fallback) belong to its hub.
    let _ = sys::signal::default(sys::signal::SIGINT);
    let _ = sys::signal::default(sys::signal::SIGCHLD);
    if !sys::proc::die_with_parent(parent_pid) {
        sys::proc::exit_now(1);
    }
    runtime::STARTED_AS.store(3, std::sync::atomic::Ordering::SeqCst);
    let rt = runtime::init_child(&init, conn, None);
    bootstrap::setup_child(&init);
    let outcome = match body {
        ForkBody::Task(spec, fds) => bootstrap::run_task(&spec, fds),
        ForkBody::Closure(f) => match bootstrap::catch(f) {
            Ok(Ok(bytes)) => Outcome::Returned(serde_bytes::ByteBuf::from(bytes)),
            Ok(Err(e)) => Outcome::Failed(format!("the closure's value could not be serialised: {e}")),
            Err(report) => Outcome::Panicked(report),
        },
    };
    bootstrap::finish(rt, outcome, bootstrap::Exit::Immediate)
}
