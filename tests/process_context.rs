//! Start methods and contexts: `get_context(method)`, `get_all_start_methods()`,
//! `set_start_method(method, force)` (ported from CPython's `_TestStartMethod`).
//!
//! Each test checks how a child was really started, from the child itself: a forked child
//! sees a value the parent stored after start-up (`MARKER`); a spawned child is a new program
//! whose parent is the root (the hub starts it); a fork-server child's parent is the fork
//! server, not the root.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use multiproc::{
    get_all_start_methods, get_context, get_start_method, set_start_method, Process, StartMethod, StartMethodError,
};

/// Set by the parent at run time: only a forked child sees it.
static MARKER: AtomicU64 = AtomicU64::new(0);

/// The default start method is global: these tests change it, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// How this child was started: what it says itself, and whether it sees the parent's marker
/// (only a forked child has the parent's memory).
#[multiproc::worker]
fn how_started() -> (Option<StartMethod>, bool) {
    (
        multiproc::current_process().start_method(),
        MARKER.load(Ordering::SeqCst) == 42,
    )
}

fn classify((said, sees_marker): (Option<StartMethod>, bool)) -> StartMethod {
    let said = said.expect("a child knows how it was started");
    assert_eq!(
        said == StartMethod::Fork,
        sees_marker,
        "{said:?} and the marker disagree"
    );
    said
}

/// CPython's `check_context`: a child started through `start` reports its start method.
fn started_by(start: impl FnOnce() -> Process<(Option<StartMethod>, bool)>) -> StartMethod {
    MARKER.store(42, Ordering::SeqCst);
    let mut p = start();
    classify(p.join().unwrap())
}

#[test]
fn test_get_all() {
    let methods = get_all_start_methods();
    assert_eq!(methods.len(), 3, "{methods:?}");
    for m in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
        assert!(methods.contains(&m), "{methods:?}");
    }
    assert_eq!(methods[0], StartMethod::ForkServer, "the default comes first");
}

#[test]
fn test_context() {
    let _s = serial();
    for method in get_all_start_methods() {
        let ctx = get_context(Some(method));
        assert_eq!(ctx.get_start_method(), method);
        // The context's process uses its method, whatever the default.
        let got = started_by(|| ctx.process(how_started()).start().unwrap());
        assert_eq!(got, method, "get_context({method:?}).process");
        // Its other objects work (they do not depend on the start method).
        let (a, b) = ctx.pipe::<u32>().unwrap();
        a.send(&7).unwrap();
        assert_eq!(b.recv().unwrap(), 7);
        let q = ctx.queue::<u32>().unwrap();
        q.put(1).unwrap();
        assert_eq!(q.get().unwrap(), 1);
        assert!(!ctx.lock().unwrap().locked().unwrap());
    }
}

#[test]
fn context_pools_use_their_method_and_fork_is_refused() {
    let _s = serial();
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let pool = get_context(Some(method)).pool(1).unwrap();
        MARKER.store(42, Ordering::SeqCst);
        assert_eq!(
            classify(pool.apply(how_started()).unwrap()),
            method,
            "pool of {method:?}"
        );
        pool.terminate();
        pool.join().unwrap();
    }
    assert!(get_context(Some(StartMethod::Fork)).pool(1).is_err());
}

#[test]
fn test_set_get() {
    let _s = serial();
    let old = get_start_method();
    for method in get_all_start_methods() {
        set_start_method(method, true).unwrap();
        assert_eq!(get_start_method(), method);
        let ctx = get_context(None);
        assert_eq!(ctx.get_start_method(), method);
        // Both the default context and a bare Process::new follow it.
        assert_eq!(started_by(|| ctx.process(how_started()).start().unwrap()), method);
        assert_eq!(started_by(|| Process::new(how_started()).start().unwrap()), method);
    }
    set_start_method(old, true).unwrap();
    assert_eq!(get_start_method(), old);
}

#[test]
fn set_start_method_errors_when_already_set_unless_forced() {
    let _s = serial();
    let old = get_start_method(); // fixes the default, as in Python
    let err = set_start_method(StartMethod::Spawn, false).unwrap_err();
    assert_eq!(err, StartMethodError::AlreadySet { current: old });
    assert!(err.to_string().contains("force"), "{err}");
    assert_eq!(get_start_method(), old, "a refused call changes nothing");
    set_start_method(StartMethod::Spawn, true).unwrap();
    assert_eq!(
        set_start_method(StartMethod::Fork, false),
        Err(StartMethodError::AlreadySet {
            current: StartMethod::Spawn
        })
    );
    set_start_method(old, true).unwrap();
}
