//! The OS layer: every system call multiproc makes goes through this module.
//!
//! # Contract
//! - Nothing outside `sys` calls `nix` or `libc` directly. The rest of the crate sees file
//!   descriptors only as [`OwnedFd`](std::os::fd::OwnedFd) / [`BorrowedFd`](std::os::fd::BorrowedFd),
//!   never as a raw integer stored in a struct.
//! - Every descriptor this module creates is close-on-exec. The one exception is the hub
//!   connection that [`proc::spawn_self`] places at a fixed descriptor number in the child.
//! - Sockets are `AF_UNIX`/`SOCK_STREAM`. Writes use `MSG_NOSIGNAL`, so a dead peer is an
//!   `EPIPE` error and never a `SIGPIPE`.
//! - Every `unsafe` block carries a `// SAFETY:` comment.
//! - Linux-only calls (`pidfd_open`, `PR_SET_PDEATHSIG`, `close_range`, `sched_setaffinity`)
//!   sit behind `cfg(target_os = "linux")` with a portable fallback, so that macOS stays possible.
//! - [`proc::getpid`] is cached (the library asks it on every queue operation, to tell a forked
//!   copy of a handle). Every child forgets the cache: a `pthread_atfork` child handler covers
//!   a `fork()` through the C library, [`proc::fork_sibling`] clears it after its raw `clone`.

pub mod fd;
pub mod futex;
pub mod io;
pub mod mem;
pub mod net;
pub mod proc;
pub mod signal;

pub use nix::errno::Errno;
