//! Signal dispositions, and signal-to-descriptor wake-ups (the self-pipe trick).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use super::Errno;

/// Signal numbers used by the rest of the crate.
pub const SIGINT: i32 = nix::libc::SIGINT;
/// SIGTERM.
pub const SIGTERM: i32 = nix::libc::SIGTERM;
/// SIGKILL.
pub const SIGKILL: i32 = nix::libc::SIGKILL;
/// SIGCHLD.
pub const SIGCHLD: i32 = nix::libc::SIGCHLD;
/// SIGSTOP (tests stop a process with it).
pub const SIGSTOP: i32 = nix::libc::SIGSTOP;
/// SIGCONT.
pub const SIGCONT: i32 = nix::libc::SIGCONT;

/// The number of a signal named `SIGUSR1`, `USR1`, `sigusr2`, ... (or given as a number).
pub fn by_name(name: &str) -> Option<i32> {
    let n = name.trim();
    if let Ok(num) = n.parse::<i32>() {
        return Signal::try_from(num).ok().map(|s| s as i32);
    }
    let upper = n.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<Signal>().ok().map(|s| s as i32)
}

/// Ignores a signal in this process.
pub fn ignore(sig: i32) -> Result<(), Errno> {
    set_handler(sig, SigHandler::SigIgn)
}

/// Restores a signal's default action.
pub fn default(sig: i32) -> Result<(), Errno> {
    set_handler(sig, SigHandler::SigDfl)
}

fn set_handler(sig: i32, h: SigHandler) -> Result<(), Errno> {
    let signal = Signal::try_from(sig)?;
    let act = SigAction::new(h, SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: installs SIG_IGN or SIG_DFL, which run no code of ours in signal context.
    unsafe { sigaction(signal, &act) }?;
    Ok(())
}

const MAX_SIG: usize = 65;
static WAKE_FDS: [AtomicI32; MAX_SIG] = [const { AtomicI32::new(-1) }; MAX_SIG];
static COUNTS: [AtomicI32; MAX_SIG] = [const { AtomicI32::new(0) }; MAX_SIG];

extern "C" fn on_signal(sig: nix::libc::c_int) {
    let i = sig as usize;
    if i >= MAX_SIG {
        return;
    }
    COUNTS[i].fetch_add(1, Ordering::SeqCst);
    let fd = WAKE_FDS[i].load(Ordering::SeqCst);
    if fd >= 0 {
        let b = [1u8];
        // SAFETY: write(2) is async-signal-safe; `fd` is the write end of a non-blocking pipe
        // that is kept open for the life of the process (see `notify_on`). errno is saved and
        // restored so the interrupted code does not see it change.
        unsafe {
            let saved = Errno::last_raw();
            nix::libc::write(fd, b.as_ptr().cast(), 1);
            Errno::set_raw(saved);
        }
    }
}

/// How many times `sig` was delivered since the process started (only counted once
/// [`notify_on`] installed the handler).
pub fn delivered(sig: i32) -> i32 {
    COUNTS.get(sig as usize).map_or(0, |c| c.load(Ordering::SeqCst))
}

/// The two ends of a signal wake-up pipe. Keep it alive as long as the handler is installed:
/// dropping it restores the signal's default action first.
#[derive(Debug)]
pub struct SignalPipe {
    sig: i32,
    /// Readable after each delivery (non-blocking).
    pub read: OwnedFd,
    write: OwnedFd,
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        let _ = default(self.sig);
        if let Some(slot) = WAKE_FDS.get(self.sig as usize) {
            let _ = slot.compare_exchange(self.write.as_raw_fd(), -1, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

/// Installs a handler for `sig` that writes a byte to a pipe, and returns the pipe.
pub fn notify_on(sig: i32) -> Result<SignalPipe, Errno> {
    let signal = Signal::try_from(sig)?;
    if sig as usize >= MAX_SIG {
        return Err(Errno::EINVAL);
    }
    let (r, w) = super::fd::pipe()?;
    super::fd::set_nonblocking(std::os::fd::AsFd::as_fd(&r), true)?;
    super::fd::set_nonblocking(std::os::fd::AsFd::as_fd(&w), true)?;
    WAKE_FDS[sig as usize].store(w.as_raw_fd(), Ordering::SeqCst);
    let act = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: `on_signal` only touches atomics and calls write(2), all async-signal-safe.
    unsafe { sigaction(signal, &act) }?;
    Ok(SignalPipe { sig, read: r, write: w })
}

/// Reads and discards whatever is in a non-blocking pipe.
pub fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 64];
    while let Ok(n) = nix::unistd::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// Blocks `sig` for the calling thread (it stays pending until unblocked).
pub fn block(sig: i32) -> Result<(), Errno> {
    let mut set = SigSet::empty();
    set.add(Signal::try_from(sig)?);
    set.thread_block()
}

/// Unblocks `sig` for the calling thread (a pending one is delivered now).
pub fn unblock(sig: i32) -> Result<(), Errno> {
    let mut set = SigSet::empty();
    set.add(Signal::try_from(sig)?);
    set.thread_unblock()
}
