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
//! In a child, the library's events are emitted inside a span `process{name, pid}`, so they
//! are told apart from the root's; a worker wraps its own events in the same span with
//! `multiproc::observe::process_span()`.

/// An `info` event under the `multiproc` target (nothing without the `tracing` feature).
#[cfg(feature = "tracing")]
macro_rules! mp_info { ($($t:tt)*) => {{
    let _span = $crate::trace::child_span();
    ::tracing::info!(target: "multiproc", $($t)*)
}} }
#[cfg(not(feature = "tracing"))]
macro_rules! mp_info {
    ($($t:tt)*) => {};
}

/// A `warn` event under the `multiproc` target (nothing without the `tracing` feature).
#[cfg(feature = "tracing")]
macro_rules! mp_warn { ($($t:tt)*) => {{
    let _span = $crate::trace::child_span();
    ::tracing::warn!(target: "multiproc", $($t)*)
}} }
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

/// This process's name and pid, set in a child before its worker runs (the root's events need
/// no span: the root is the process whose `main` installed the subscriber).
static CHILD: std::sync::OnceLock<(String, i32)> = std::sync::OnceLock::new();

/// Records who this child is, for the spans of its events.
pub(crate) fn set_child(name: &str, pid: i32) {
    let _ = CHILD.set((name.to_owned(), pid));
}

/// In a child, the span `process{name, pid}`, entered: the library's events in a child are
/// emitted inside it. Created at each event, not once at start: a child's subscriber can only
/// be installed by its worker, after the bootstrap, and a span created before any subscriber
/// exists would stay disabled.
#[cfg(feature = "tracing")]
pub(crate) fn child_span() -> Option<::tracing::span::EnteredSpan> {
    let (name, pid) = CHILD.get()?;
    Some(::tracing::info_span!(target: "multiproc", "process", name = %name, pid = *pid).entered())
}

/// The span `process{name, pid}` of the calling process (the root's name is `MainProcess`).
#[cfg(feature = "tracing")]
pub(crate) fn process_span(name: &str, pid: i32) -> ::tracing::Span {
    ::tracing::info_span!(target: "multiproc", "process", name = %name, pid = pid)
}

/// A message's `Debug` form cut to 160 characters (a per-frame event must not print a 1 MiB
/// payload). Evaluated only when a subscriber wants the event.
#[cfg(feature = "tracing")]
pub(crate) fn short(msg: &dyn std::fmt::Debug) -> String {
    let mut s = format!("{msg:?}");
    if s.len() > 160 {
        let mut cut = 160;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// For supervisors: one event per restart of a child (`warn`, target `multiproc`).
#[allow(dead_code)]
pub(crate) fn supervisor_restarted(child: &str, old_pid: i32, new_pid: i32, reason: &str) {
    mp_warn!(child = %child, old_pid, new_pid, reason = %reason, "supervisor restarted a child");
    #[cfg(not(feature = "tracing"))]
    let _ = (child, old_pid, new_pid, reason);
}

pub(crate) use {mp_info, mp_trace, mp_warn};
