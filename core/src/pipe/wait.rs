//! [`wait`]: block until one of several connections or processes is ready, like Python's
//! `multiprocessing.connection.wait`.
//!
//! A [`Connection`] is ready when a whole message is buffered or its socket is readable (which
//! includes the peer having closed: end of file counts as ready, so that `recv` can report it).
//! A [`Process`] is ready when it has ended. Processes are watched through a pidfd (Linux 5.3+),
//! opened after asking the hub whether the process is still running and checked again once the
//! pidfd is open, so a recycled pid can never be mistaken for the child. Where pidfds are
//! unavailable the hub is asked every 20 ms instead. In the root process in interrupt mode,
//! `wait` returns [`WaitError::Interrupted`] on Ctrl-C.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use super::error::WaitError;
use super::Connection;
use crate::process::{Process, ProcessInfo};
use crate::runtime;
use crate::sys;

/// How often a source without a descriptor is re-checked, and how often the root looks for
/// Ctrl-C in interrupt mode.
const SLICE: Duration = Duration::from_millis(20);

/// How often a fired `Confirm` source is re-checked (the hub is usually a few microseconds
/// behind the kernel).
const CONFIRM_SLICE: Duration = Duration::from_millis(1);

/// How [`wait`] watches one object.
///
/// # Example
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use multiproc::pipe::{pipe, wait, Connection, WaitSource, Waitable};
///
/// /// A type of your own, ready when its inner connection is: it delegates (a pipe's
/// /// descriptor alone does not say when a message waits in its shared-memory ring).
/// struct Inbox(Connection<u8>);
/// impl Waitable for Inbox {
///     fn wait_source(&self) -> WaitSource<'_> {
///         self.0.wait_source()
///     }
/// }
/// /// One watched through a descriptor of its own.
/// struct Sentinel(std::os::fd::OwnedFd);
/// impl Waitable for Sentinel {
///     fn wait_source(&self) -> WaitSource<'_> {
///         WaitSource::Fd(self.0.as_fd())
///     }
/// }
/// let (a, b) = pipe::<u8>()?;
/// b.send(&1)?;
/// let inbox = Inbox(a);
/// let objs: Vec<&dyn Waitable> = vec![&inbox];
/// assert_eq!(wait(&objs, Some(Duration::from_secs(5)))?, vec![0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub enum WaitSource<'a> {
    /// Ready now.
    Ready,
    /// Ready when this descriptor is readable (or hung up).
    Fd(BorrowedFd<'a>),
    /// Ready when this descriptor (owned for the duration of the wait) is readable.
    OwnedFd(OwnedFd),
    /// Ready when this check returns true; re-checked every 20 ms.
    Check(Box<dyn Fn() -> bool + 'a>),
    /// Ready when this descriptor is readable *and then* the check confirms it (re-checked
    /// every millisecond after the descriptor fired). For a process: the pidfd says the
    /// kernel has ended it, and the check waits for the hub to have recorded the exit, so that
    /// `wait` and `is_alive()` never disagree.
    Confirm(OwnedFd, Box<dyn Fn() -> bool + 'a>),
}

impl std::fmt::Debug for WaitSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitSource::Ready => f.write_str("Ready"),
            WaitSource::Fd(fd) => f.debug_tuple("Fd").field(fd).finish(),
            WaitSource::OwnedFd(fd) => f.debug_tuple("OwnedFd").field(fd).finish(),
            WaitSource::Check(_) => f.write_str("Check(..)"),
            WaitSource::Confirm(fd, _) => f.debug_tuple("Confirm").field(fd).finish(),
        }
    }
}

/// Something [`wait`] can wait on: a [`Connection`] (a message or end of file is ready) or a
/// [`Process`] (it has ended). Implement it for your own types by returning a descriptor.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::pipe::{pipe, wait, Waitable};
///
/// let (a, b) = pipe::<u8>()?;
/// b.send(&1)?;
/// let objs: Vec<&dyn Waitable> = vec![&a];
/// assert_eq!(wait(&objs, Some(Duration::from_secs(5)))?, vec![0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Waitable {
    /// How to watch this object; called once per [`wait`].
    fn wait_source(&self) -> WaitSource<'_>;
}

/// Ring mode: the ring is looked at first, then armed (so that the writer rings the doorbell
/// for the next message) before the socket is watched.
impl<T> Waitable for Connection<T> {
    fn wait_source(&self) -> WaitSource<'_> {
        if self.prepare_to_sleep() {
            WaitSource::Ready
        } else {
            WaitSource::Fd(self.as_fd())
        }
    }
}

impl<T> Waitable for Process<T> {
    fn wait_source(&self) -> WaitSource<'_> {
        if !self.is_alive() {
            return WaitSource::Ready;
        }
        match sys::proc::pidfd_open(self.pid()) {
            // Checked again now that the pidfd pins the pid: if the process ended in between,
            // the pid may have been recycled, and the pidfd may watch someone else.
            Ok(Some(fd)) if self.is_alive() => WaitSource::Confirm(fd, Box::new(move || !self.is_alive())),
            Ok(Some(_)) => WaitSource::Ready,
            // No pidfds, or the process is already gone (ESRCH): ask the hub.
            _ => WaitSource::Check(Box::new(move || !self.is_alive())),
        }
    }
}

/// A process described by a [`ProcessInfo`] is ready when it has ended: the way for a child
/// to wait on its parent (Python's `parent_process().sentinel` in `connection.wait`), or on
/// any process it was told about. Watched as a [`Process`] is (a pidfd confirmed by the hub),
/// so `wait` and [`ProcessInfo::is_alive`] never disagree.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use multiproc::{parent_process, pipe, wait, Connection, Process, Waitable};
///
/// /// Serves requests until the parent dies or the pipe closes.
/// #[multiproc::worker]
/// fn server(conn: Connection<u32>) -> String {
///     let parent = parent_process().expect("a child has a parent");
///     loop {
///         let objs: [&dyn Waitable; 2] = [&conn, &parent];
///         let ready = wait(&objs, None).expect("wait");
///         if ready.contains(&1) {
///             return "parent died".into();
///         }
///         if conn.recv().is_err() {
///             return "pipe closed".into();
///         }
///     }
/// }
///
/// let (mine, theirs) = pipe::<u32>()?;
/// let mut p = Process::new(server(theirs)).start()?;
/// mine.send(&1)?;
/// drop(mine);
/// assert_eq!(p.join()?, "pipe closed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl Waitable for ProcessInfo {
    fn wait_source(&self) -> WaitSource<'_> {
        if self.pid() == sys::proc::getpid() {
            // This process: it will not end while it waits.
            return WaitSource::Check(Box::new(|| false));
        }
        if !self.is_alive() {
            return WaitSource::Ready;
        }
        match sys::proc::pidfd_open(self.pid()) {
            // Checked again now that the pidfd pins the pid (see `Process` above).
            Ok(Some(fd)) if self.is_alive() => WaitSource::Confirm(fd, Box::new(move || !self.is_alive())),
            Ok(Some(_)) => WaitSource::Ready,
            _ => WaitSource::Check(Box::new(move || !self.is_alive())),
        }
    }
}

impl<W: Waitable + ?Sized> Waitable for &W {
    fn wait_source(&self) -> WaitSource<'_> {
        (**self).wait_source()
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes (`None`: no limit;
/// zero: just check). Returns the indices of the ready objects, in order; empty on timeout.
///
/// # Example
/// ```
/// use multiproc::{pipe, wait, Connection, Process, Waitable};
/// use std::time::Duration;
///
/// #[multiproc::worker]
/// fn talk(conn: Connection<u32>, n: u32) {
///     conn.send(&n).unwrap();
/// }
///
/// let (r1, w1) = pipe::<u32>()?;
/// let (r2, w2) = pipe::<u32>()?;
/// let mut p1 = Process::new(talk(w1, 1)).start()?;
/// let mut p2 = Process::new(talk(w2, 2)).start()?;
/// let mut got = Vec::new();
/// let mut open = vec![r1, r2];
/// while !open.is_empty() {
///     let objs: Vec<&dyn Waitable> = open.iter().map(|c| c as &dyn Waitable).collect();
///     let ready = wait(&objs, Some(Duration::from_secs(10)))?;
///     assert!(!ready.is_empty());
///     for &i in ready.iter().rev() {
///         match open[i].recv() {
///             Ok(v) => got.push(v),
///             Err(_) => { open.remove(i); } // end of file: the child exited
///         }
///     }
/// }
/// got.sort();
/// assert_eq!(got, [1, 2]);
/// p1.join()?;
/// p2.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>, WaitError> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let sources: Vec<WaitSource<'_>> = objects.iter().map(|o| o.wait_source()).collect();
    let root = runtime::is_started_root();
    let watch = crate::InterruptWatch::new();
    let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
    let mut fd_owner: Vec<usize> = Vec::new();
    let mut checks: Vec<usize> = Vec::new();
    let mut ready_now: Vec<usize> = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        match s {
            WaitSource::Ready => ready_now.push(i),
            WaitSource::Fd(fd) => {
                fds.push(*fd);
                fd_owner.push(i);
            }
            WaitSource::OwnedFd(fd) => {
                fds.push(fd.as_fd());
                fd_owner.push(i);
            }
            WaitSource::Check(_) => checks.push(i),
            WaitSource::Confirm(fd, _) => {
                fds.push(fd.as_fd());
                fd_owner.push(i);
            }
        }
    }
    // Confirm sources whose descriptor fired, waiting for their check.
    let mut confirming: Vec<usize> = Vec::new();
    let mut first = true;
    loop {
        let mut ready = ready_now.clone();
        if !first {
            for &i in &checks {
                if let WaitSource::Check(f) = &sources[i] {
                    if f() {
                        ready.push(i);
                    }
                }
            }
        }
        confirming.retain(|&i| match &sources[i] {
            WaitSource::Confirm(_, f) if f() => {
                ready.push(i);
                false
            }
            _ => true,
        });
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let slice = if !ready.is_empty() || first && !checks.is_empty() {
            Some(Duration::ZERO)
        } else if !confirming.is_empty() {
            Some(left.map_or(CONFIRM_SLICE, |l| l.min(CONFIRM_SLICE)))
        } else {
            let sliced = root || !checks.is_empty();
            match (left, sliced) {
                (Some(l), true) => Some(l.min(SLICE)),
                (Some(l), false) => Some(l),
                (None, true) => Some(SLICE),
                (None, false) => None,
            }
        };
        let watched: Vec<BorrowedFd<'_>> = fds
            .iter()
            .zip(&fd_owner)
            .filter(|(_, o)| !confirming.contains(o))
            .map(|(f, _)| *f)
            .collect();
        let owners: Vec<usize> = fd_owner.iter().copied().filter(|o| !confirming.contains(o)).collect();
        for j in sys::io::poll_readable(&watched, slice).map_err(WaitError::Io)? {
            let i = owners[j];
            match &sources[i] {
                WaitSource::Confirm(_, f) if !f() => confirming.push(i),
                _ => ready.push(i),
            }
        }
        if !ready.is_empty() {
            ready.sort_unstable();
            ready.dedup();
            return Ok(ready);
        }
        if !first && root && watch.fired() {
            return Err(WaitError::Interrupted);
        }
        if !first && deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Vec::new());
        }
        if first && left.is_some_and(|l| l.is_zero()) && checks.is_empty() {
            return Ok(Vec::new());
        }
        first = false;
    }
}
