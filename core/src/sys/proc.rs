//! Process creation, reaping, signals to processes, and parent-death wiring.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::Errno;

/// The descriptor number at which a spawned child finds its hub connection.
pub const CHILD_CONN_FD: i32 = 3;

/// How a process ended, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawExit {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

fn status_to_exit(st: WaitStatus) -> Option<RawExit> {
    match st {
        WaitStatus::Exited(_, code) => Some(RawExit::Exited(code)),
        WaitStatus::Signaled(_, sig, _) => Some(RawExit::Signaled(sig as i32)),
        _ => None,
    }
}

/// This process's id, cached: the library asks on every queue operation whether it runs in a
/// forked copy of the process that made a handle, and the C library no longer caches it (one
/// system call each time was about 10 % of a 64-byte `Queue::put`).
///
/// The cache is forgotten in every child: by a `pthread_atfork` child handler (so a `fork()`
/// made by the program itself, through the C library, is covered), and explicitly after the
/// raw `clone` of [`fork_sibling`], which runs no handlers. A child made by a raw `clone`
/// system call outside this module would see its parent's id; nothing in this crate does that.
pub fn getpid() -> i32 {
    match PID.load(Ordering::Relaxed) {
        0 => getpid_fresh(),
        pid => pid,
    }
}

/// The cached id (0: not known in this process). Written by [`getpid_fresh`] and cleared by
/// the fork paths; a relaxed atomic is enough, since the only thread of a fresh child is the
/// one that clears it.
static PID: AtomicI32 = AtomicI32::new(0);

#[cold]
fn getpid_fresh() -> i32 {
    static AT_FORK: Once = Once::new();
    // Registered before the first value is cached, so no fork can copy a cached id into a child
    // without the handler that clears it.
    AT_FORK.call_once(|| {
        // SAFETY: registers a child handler that only stores to an atomic, which is
        // async-signal-safe as the handlers of a fork in a multi-threaded process must be.
        // A failure (ENOMEM) leaves the cache off: `PID` is then never set.
        let rc = unsafe { nix::libc::pthread_atfork(None, None, Some(forget_pid)) };
        if rc != 0 {
            PID_CACHE_OFF.store(true, Ordering::Relaxed);
        }
    });
    let pid = nix::unistd::getpid().as_raw();
    if !PID_CACHE_OFF.load(Ordering::Relaxed) {
        PID.store(pid, Ordering::Relaxed);
    }
    pid
}

/// `pthread_atfork` failed: no caching.
static PID_CACHE_OFF: AtomicBool = AtomicBool::new(false);

extern "C" fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
}

/// The parent's process id.
pub fn getppid() -> i32 {
    nix::unistd::getppid().as_raw()
}

/// The path of the running executable, for re-executing it.
pub fn self_exe() -> std::io::Result<std::path::PathBuf> {
    #[cfg(target_os = "linux")]
    {
        Ok(std::path::PathBuf::from("/proc/self/exe"))
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::env::current_exe()
    }
}

/// Starts a fresh copy of the current executable (`posix_spawn`), with `conn` at descriptor
/// [`CHILD_CONN_FD`] and the given environment. Signal dispositions for SIGINT, SIGTERM and
/// SIGCHLD are reset to default and the signal mask is cleared in the child.
pub fn spawn_self(argv0: &CString, env: &[CString], conn: BorrowedFd<'_>) -> Result<i32, Errno> {
    use nix::spawn::{posix_spawn, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
    let exe = self_exe().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    // dup2(fd, fd) would not clear close-on-exec everywhere, so move it off our target number.
    let moved: Option<OwnedFd> = if conn.as_raw_fd() == CHILD_CONN_FD {
        Some(super::fd::dup(conn)?)
    } else {
        None
    };
    let src = moved.as_ref().map_or(conn.as_raw_fd(), |f| f.as_raw_fd());
    let mut actions = PosixSpawnFileActions::init()?;
    actions.add_dup2(src, CHILD_CONN_FD)?;
    let mut attr = PosixSpawnAttr::init()?;
    let mut defaults = nix::sys::signal::SigSet::empty();
    defaults.add(Signal::SIGINT);
    defaults.add(Signal::SIGTERM);
    defaults.add(Signal::SIGCHLD);
    defaults.add(Signal::SIGPIPE);
    attr.set_sigdefault(&defaults)?;
    attr.set_sigmask(&nix::sys::signal::SigSet::empty())?;
    attr.set_flags(PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK)?;
    let pid = posix_spawn(exe.as_path(), &actions, &attr, &[argv0.as_c_str()], env)?;
    Ok(pid.as_raw())
}

/// The result of [`fork`].
pub enum Forked {
    /// In the parent: the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// `fork(2)`.
///
/// # Safety
/// In a multi-threaded process the child may only call async-signal-safe functions until it
/// execs or exits, unless the caller knows that no other thread held a lock (allocator, stdio)
/// at the moment of the fork. See the documentation of `StartMethod::Fork`.
pub unsafe fn fork() -> Result<Forked, Errno> {
    // SAFETY: the caller upholds the contract above.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        nix::unistd::ForkResult::Child => {
            // The C library's `fork` ran the handler already; this covers a failed registration.
            forget_pid();
            Ok(Forked::Child)
        }
    }
}

/// Does [`fork_sibling`] make the child a sibling (a child of this process's parent)? True on
/// Linux (`CLONE_PARENT`); elsewhere it is a plain `fork` and the child is ours.
pub const SIBLING_FORK: bool = cfg!(target_os = "linux");

/// Forks a child whose parent is *this process's parent* (Linux: `clone(CLONE_PARENT |
/// SIGCHLD)`, with fork semantics otherwise: a copy of the address space, `0` returned in the
/// child). The child's exit is reported to our parent (SIGCHLD, `waitpid`, pidfd), not to us,
/// and its parent-death signal follows our parent's thread that created us, not us. Where
/// `CLONE_PARENT` does not exist this is [`fork`] (see [`SIBLING_FORK`]).
///
/// # Safety
/// Only in a single-threaded process holding no locks (as the fork server is): the raw clone
/// runs no `pthread_atfork` handlers, and the child's C library thread descriptor keeps the
/// parent's thread id, which matters only to priority-inheriting or robust pthread mutexes.
pub unsafe fn fork_sibling() -> Result<Forked, Errno> {
    #[cfg(target_os = "linux")]
    {
        let flags = (nix::libc::CLONE_PARENT | nix::libc::SIGCHLD) as nix::libc::c_ulong;
        // SAFETY: clone with no new stack (0) and no TID or TLS pointers behaves like fork:
        // the child continues here on a copy of the parent's stack. The caller guarantees the
        // process is single-threaded, so the copy holds no lock another thread owned.
        let rc = unsafe { nix::libc::syscall(nix::libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
        match rc {
            -1 => Err(Errno::last()),
            0 => {
                // No `pthread_atfork` handler ran: forget the parent's id here.
                forget_pid();
                Ok(Forked::Child)
            }
            pid => Ok(Forked::Parent(pid as i32)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: the caller upholds `fork`'s contract, which this one includes.
        unsafe { fork() }
    }
}

/// Arranges for this process to be SIGKILLed when the thread that created it dies, and checks
/// that `expected_parent` is still our parent (it might have died before the call). Returns
/// `false` if the parent is already gone. A no-op returning `true` where unsupported; there the
/// hub-connection lifeline does the job.
pub fn die_with_parent(expected_parent: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
            return true;
        }
        getppid() == expected_parent
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = expected_parent;
        true
    }
}

/// Does process `pid` run a thread named `name`? `None` where that cannot be told (not Linux,
/// or the process is gone or not ours to inspect).
pub fn runs_thread_named(pid: i32, name: &str) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        let mut any = false;
        for t in tasks.flatten() {
            if let Ok(comm) = std::fs::read_to_string(t.path().join("comm")) {
                any = true;
                if comm.trim_end() == name {
                    return Some(true);
                }
            }
        }
        any.then_some(false)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pid, name);
        None
    }
}

/// This process's real user id.
pub fn getuid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// A pollable descriptor that becomes readable when process `pid` (our child) exits.
/// `Ok(None)` where the platform has no pidfd (use the SIGCHLD fallback).
pub fn pidfd_open(pid: i32) -> Result<Option<OwnedFd>, Errno> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory
        // is passed.
        let rc = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0u32) };
        if rc < 0 {
            let e = Errno::last();
            return if e == Errno::ENOSYS { Ok(None) } else { Err(e) };
        }
        // SAFETY: the syscall returned a fresh descriptor that nothing else owns (pidfds are
        // always close-on-exec).
        Ok(Some(unsafe {
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(rc as i32)
        }))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        Ok(None)
    }
}

/// Reaps our child `pid` if it has exited; `Ok(None)` if it is still running.
pub fn try_reap(pid: i32) -> Result<Option<RawExit>, Errno> {
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(st) => {
                if let Some(x) = status_to_exit(st) {
                    return Ok(Some(x));
                }
            }
        }
    }
}

/// Reaps any exited child of this process; `Ok(None)` if none has exited (or none exists).
/// Only for processes whose every child is ours (the fork server).
pub fn reap_any() -> Result<Option<(i32, RawExit)>, Errno> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(None),
            Err(e) => return Err(e),
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(st) => {
                if let (Some(pid), Some(x)) = (st.pid(), status_to_exit(st)) {
                    return Ok(Some((pid.as_raw(), x)));
                }
            }
        }
    }
}

/// Blocks until our child `pid` exits, and reaps it.
pub fn wait_blocking(pid: i32) -> Result<RawExit, Errno> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(st) => {
                if let Some(x) = status_to_exit(st) {
                    return Ok(x);
                }
            }
        }
    }
}

/// Sends signal number `sig` to `pid`. Sending to a process that is already gone is not an
/// error (`ESRCH` is ignored).
pub fn send_signal(pid: i32, sig: i32) -> Result<(), Errno> {
    let signal = Signal::try_from(sig)?;
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Is a process with this pid alive (or a zombie)?
pub fn pid_exists(pid: i32) -> bool {
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// The number of CPUs online (Python's `os.cpu_count()`).
pub fn cpu_count() -> usize {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Pins the calling thread to one CPU (benchmarks). A no-op where unsupported.
pub fn pin_to_cpu(cpu: usize) -> Result<(), Errno> {
    #[cfg(target_os = "linux")]
    {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu)?;
        nix::sched::sched_setaffinity(Pid::from_raw(0), &set)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        Ok(())
    }
}

/// Lets the calling thread run on any of `cpus` again (benchmarks). A no-op where unsupported.
pub fn pin_to_cpu_set(cpus: &[usize]) -> Result<(), Errno> {
    #[cfg(target_os = "linux")]
    {
        let mut set = nix::sched::CpuSet::new();
        for &c in cpus {
            set.set(c)?;
        }
        nix::sched::sched_setaffinity(Pid::from_raw(0), &set)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpus;
        Ok(())
    }
}

/// Ends this process at once: no atexit handlers, no destructors (`_exit`). Flush first.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { nix::libc::_exit(code) }
}

/// Registers `f` to run when the process exits normally (`atexit`).
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: registering a plain `extern "C" fn()` with no captured state.
    unsafe {
        nix::libc::atexit(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child made by the program's own `fork()` (through the C library, not this module)
    /// does not see its parent's cached id.
    #[test]
    fn a_fork_by_the_program_forgets_the_cached_pid() {
        let parent = getpid();
        assert_eq!(parent, nix::unistd::getpid().as_raw());
        assert_eq!(getpid(), parent, "cached");
        // SAFETY: the child only makes system calls and reads an atomic before `_exit`, which
        // is async-signal-safe, as a child of a multi-threaded test process requires.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let ok = getpid() == nix::unistd::getpid().as_raw() && getpid() != parent;
                // SAFETY: `_exit` ends the child without running the parent's destructors.
                unsafe { nix::libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = waitpid(child, None).expect("waitpid");
                assert_eq!(st, WaitStatus::Exited(child, 0), "the child saw a stale id");
            }
        }
        assert_eq!(getpid(), parent);
    }
}
