//! The `tracing` integration (a leaf module: every layer may use its macros) (feature `tracing`, off by default): the library emits events
//! and spans under the target `multiproc`; the application installs the subscriber.
//!
//! Call sites use these macros only. Without the feature they expand to nothing (their
//! arguments are not even evaluated), so the default build pays nothing. With it, an event
//! with no subscriber interested costs tracing's level check (one relaxed load).
//!
//! | event | level | where | fields |
//! |---|---|---|---|
//! | process started | info | hub | `pid`, `name`, `method`, `parent` |
//! | process ended | info (warn if it failed) | hub | `pid`, `name`, `status`, `outcome` |
//! | connection dropped for bad input | warn | hub | `pid`, `name`, `reason` |
//! | lock recovered from a dead owner | warn | hub | `lock`, `dead_proc`, `new_owner` |
//! | JoinableQueue items delivered again | warn | hub | `queue`, `dead_proc`, `items` |
//! | pool worker replaced | warn | pool owner | `old_pid`, `new_pid`, `reason` |
//! | pool task failed | warn | pool owner | `error` |
//! | supervisor restart | warn | supervisor | `child`, `old_pid`, `new_pid`, `reason` |
//! | a frame handled | trace | hub | `pid`, `frame` |
//!
//! A child wraps its whole life in a span `process{name, pid}`, so events it emits (its own,
//! or the library's in it) are told apart from the root's.

/// An `info` event under the `multiproc` target (nothing without the `tracing` feature).
#[cfg(feature = "tracing")]
macro_rules! mp_info { ($($t:tt)*) => { ::tracing::info!(target: "multiproc", $($t)*) } }
#[cfg(not(feature = "tracing"))]
macro_rules! mp_info {
    ($($t:tt)*) => {};
}

/// A `warn` event under the `multiproc` target (nothing without the `tracing` feature).
#[cfg(feature = "tracing")]
macro_rules! mp_warn { ($($t:tt)*) => { ::tracing::warn!(target: "multiproc", $($t)*) } }
#[cfg(not(feature = "tracing"))]
macro_rules! mp_warn {
    ($($t:tt)*) => {};
}

/// A `trace` event under the `multiproc` target (per-message events; nothing without the
/// `tracing` feature).
#[cfg(feature = "tracing")]
macro_rules! mp_trace { ($($t:tt)*) => { ::tracing::trace!(target: "multiproc", $($t)*) } }
#[cfg(not(feature = "tracing"))]
macro_rules! mp_trace {
    ($($t:tt)*) => {};
}

/// Enters the span `process{name, pid}` for the rest of this thread's life in a child.
pub(crate) fn enter_process_span(name: &str, pid: i32) {
    #[cfg(feature = "tracing")]
    {
        let span = ::tracing::info_span!(target: "multiproc", "process", name = %name, pid = pid);
        // The child's main thread runs its worker to the end and exits: the span is never
        // left, so the guard is forgotten rather than dropped.
        std::mem::forget(span.entered());
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (name, pid);
}

/// For supervisors: one event per restart of a child (`warn`, target `multiproc`).
#[allow(dead_code)]
pub(crate) fn supervisor_restarted(child: &str, old_pid: i32, new_pid: i32, reason: &str) {
    mp_warn!(child = %child, old_pid, new_pid, reason = %reason, "supervisor restarted a child");
    #[cfg(not(feature = "tracing"))]
    let _ = (child, old_pid, new_pid, reason);
}

pub(crate) use {mp_info, mp_trace, mp_warn};
