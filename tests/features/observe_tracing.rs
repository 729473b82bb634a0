//! The `tracing` events (feature `tracing`): a collecting subscriber sees process start and
//! exit (with the exact status), a pool worker replaced, a task failed, a connection dropped
//! for bad input (with the reason) and a lock recovered from a dead owner, with the right
//! fields; per-frame events are at `trace` only; a child's events carry its process span; and
//! nothing is printed when no subscriber is installed.

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::{eventually, is_helper, KillOnDrop};
use multiproc::sync::{Event, Lock};
use multiproc::{Pool, Process};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Metadata, Subscriber};

const LONG: Duration = Duration::from_secs(30);

/// One event as the collector saw it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Seen {
    level: String,
    message: String,
    fields: BTreeMap<String, String>,
    /// The spans it was inside, innermost last: `name{field=value,...}`.
    spans: Vec<String>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// A hand-written subscriber that keeps every event (the per-frame `trace` ones only counted).
#[derive(Default)]
struct Collector {
    next: AtomicU64,
    spans: Mutex<BTreeMap<u64, String>>,
    events: Mutex<Vec<Seen>>,
    frames: AtomicU64,
    frames_not_trace: AtomicU64,
}

thread_local! {
    static STACK: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut f = Fields::default();
        attrs.record(&mut f);
        let desc = format!(
            "{}{{{}}}",
            attrs.metadata().name(),
            f.0.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        self.spans.lock().unwrap().insert(id, desc);
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let message = f.0.remove("message").unwrap_or_default();
        if message == "frame" {
            self.frames.fetch_add(1, Ordering::Relaxed);
            if *event.metadata().level() != Level::TRACE {
                self.frames_not_trace.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let spans = STACK.with(|s| {
            let names = self.spans.lock().unwrap();
            s.borrow().iter().filter_map(|id| names.get(id).cloned()).collect()
        });
        self.events.lock().unwrap().push(Seen {
            level: event.metadata().level().to_string(),
            message,
            fields: f.0,
            spans,
        });
    }
    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(i) = s.iter().rposition(|x| *x == span.into_u64()) {
                s.remove(i);
            }
        });
    }
}

/// The collector, installed as the global default once for this test binary (the hub thread
/// emits most events, so a thread-local default would not see them).
fn collector() -> &'static Collector {
    static C: OnceLock<&'static Collector> = OnceLock::new();
    C.get_or_init(|| {
        let c: &'static Collector = Box::leak(Box::default());
        struct Fwd(&'static Collector);
        impl Subscriber for Fwd {
            fn enabled(&self, m: &Metadata<'_>) -> bool {
                self.0.enabled(m)
            }
            fn new_span(&self, a: &Attributes<'_>) -> Id {
                self.0.new_span(a)
            }
            fn record(&self, s: &Id, r: &Record<'_>) {
                self.0.record(s, r)
            }
            fn record_follows_from(&self, s: &Id, f: &Id) {
                self.0.record_follows_from(s, f)
            }
            fn event(&self, e: &tracing::Event<'_>) {
                self.0.event(e)
            }
            fn enter(&self, s: &Id) {
                self.0.enter(s)
            }
            fn exit(&self, s: &Id) {
                self.0.exit(s)
            }
        }
        tracing::subscriber::set_global_default(Fwd(c)).expect("a global subscriber was already set");
        c
    })
}

/// Waits for an event with `message` whose fields include every `(key, value)` of `want`.
fn wait_for(message: &str, want: &[(&str, String)]) -> Seen {
    let c = collector();
    let mut found = None;
    let ok = eventually(LONG, || {
        let evs = c.events.lock().unwrap();
        found = evs
            .iter()
            .find(|e| e.message == message && want.iter().all(|(k, v)| e.fields.get(*k) == Some(v)))
            .cloned();
        found.is_some()
    });
    if !ok {
        let evs = c.events.lock().unwrap();
        panic!("no `{message}` event with {want:?}; events: {evs:#?}");
    }
    found.unwrap()
}

#[multiproc::worker]
fn quick() -> u32 {
    5
}

#[multiproc::worker]
fn sleeper() {
    std::thread::sleep(Duration::from_secs(60));
}

#[multiproc::worker]
fn die_in_pool() -> u32 {
    std::process::exit(3)
}

#[multiproc::worker]
fn hold_and_wait(lock: Lock, held: Event) {
    let _g = lock.acquire().unwrap();
    held.set().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[multiproc::worker]
fn send_garbage() {
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    // A frame announcing 4 GiB: the hub drops this connection.
    multiproc::sys::io::send_all(conn.as_fd(), &u32::MAX.to_le_bytes(), &[]).unwrap();
    let mut f = std::fs::File::from(conn);
    let _ = std::io::Read::read(&mut f, &mut [0u8; 4]);
}

#[test]
fn start_and_exit_events_carry_pid_name_method_and_exact_status() {
    collector();
    let mut p = Process::new(quick()).name("traced-quick").start().unwrap();
    let pid = p.pid().to_string();
    assert_eq!(p.join().unwrap(), 5);
    let started = wait_for(
        "process started",
        &[("name", "traced-quick".into()), ("pid", pid.clone())],
    );
    assert_eq!(started.level, "INFO");
    assert!(started.fields.contains_key("method"), "{started:?}");
    assert_eq!(
        started.fields.get("parent").map(|s| s.starts_with("MainProcess")),
        Some(true)
    );
    let ended = wait_for("process ended", &[("name", "traced-quick".into()), ("pid", pid)]);
    assert_eq!(ended.fields.get("status").map(String::as_str), Some("exit code 0"));
    assert_eq!(ended.fields.get("outcome").map(String::as_str), Some("returned"));

    // A SIGKILL: the status says so, at `warn`.
    let mut k = Process::new(sleeper()).name("traced-killed").start().unwrap();
    let kpid = k.pid().to_string();
    k.kill().unwrap();
    let _ = k.join_timeout(LONG);
    let ended = wait_for("process ended", &[("name", "traced-killed".into()), ("pid", kpid)]);
    assert_eq!(ended.level, "WARN");
    assert_eq!(
        ended.fields.get("status").map(String::as_str),
        Some("killed by signal 9")
    );
}

#[test]
fn a_replaced_pool_worker_and_its_failed_task_are_events() {
    collector();
    let pool = Pool::new(1).unwrap();
    let old = pool.pids()[0];
    assert!(pool.apply(die_in_pool()).is_err());
    let replaced = wait_for("pool worker replaced", &[("old_pid", old.to_string())]);
    let new_pid: i32 = replaced.fields["new_pid"].parse().unwrap();
    assert!(new_pid > 0 && new_pid != old, "{replaced:?}");
    assert!(!replaced.fields["reason"].is_empty());
    let failed = wait_for("pool task failed", &[("pid", old.to_string())]);
    assert!(failed.fields["error"].contains(&old.to_string()), "{failed:?}");
    pool.terminate();
}

#[test]
fn a_connection_dropped_for_garbage_is_an_event_with_the_reason() {
    collector();
    let mut p = Process::new(send_garbage()).name("traced-garbage").start().unwrap();
    let pid = p.pid().to_string();
    let _ = p.join_timeout(LONG);
    let e = wait_for("dropped a connection for bad input", &[("pid", pid)]);
    assert_eq!(e.level, "WARN");
    assert!(e.fields["name"].contains("traced-garbage"), "{e:?}");
    assert!(!e.fields["reason"].is_empty(), "{e:?}");
}

#[test]
fn a_lock_recovered_from_a_dead_owner_is_an_event() {
    collector();
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let mut p = Process::new(hold_and_wait(lock.clone(), held.clone())).start().unwrap();
    assert!(held.wait_timeout(LONG).unwrap());
    let proc = p.proc_id().0.to_string();
    p.kill().unwrap();
    let _ = p.join_timeout(LONG);
    let e = wait_for(
        "lock recovered from a dead owner (the next owner is told)",
        &[("lock", (lock.id().0 & 0xffff_ffff).to_string()), ("dead_proc", proc)],
    );
    assert_eq!(e.level, "WARN");
    let g = lock.acquire().unwrap();
    assert!(g.previous_owner_died());
}

#[test]
fn per_frame_events_are_at_trace_level_only() {
    let c = collector();
    let before = c.frames.load(Ordering::Relaxed);
    multiproc::runtime::ping_hub().unwrap();
    assert!(eventually(LONG, || c.frames.load(Ordering::Relaxed) > before));
    assert_eq!(c.frames_not_trace.load(Ordering::Relaxed), 0);
}

/// In a child: installs the collector, emits its own event inside `process_span()`, and has
/// the library emit one (a pool of its own whose worker dies). Returns what it saw.
#[multiproc::worker]
fn traced_child() -> Vec<Seen> {
    let c = collector();
    {
        let _s = multiproc::observe::process_span().entered();
        tracing::info!("hello from the child");
    }
    let pool = Pool::new(1).unwrap();
    let _ = pool.apply(die_in_pool());
    let ok = eventually(LONG, || {
        c.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.message == "pool worker replaced")
    });
    pool.terminate();
    assert!(ok);
    let evs = c.events.lock().unwrap().clone();
    evs
}

#[test]
fn a_childs_events_carry_its_process_span() {
    let mut p = Process::new(traced_child()).name("traced-child").start().unwrap();
    let pid = p.pid();
    let seen = p.join_timeout(LONG).unwrap();
    let span = format!("process{{name=traced-child,pid={pid}}}");
    let own = seen.iter().find(|e| e.message == "hello from the child").unwrap();
    assert_eq!(own.spans, vec![span.clone()], "{own:?}");
    let lib = seen.iter().find(|e| e.message == "pool worker replaced").unwrap();
    assert_eq!(lib.spans, vec![span], "{lib:?}");
}

#[test]
#[ignore = "helper root for nothing_is_printed_without_a_subscriber"]
fn helper_no_subscriber() {
    if !is_helper("helper_no_subscriber") {
        return;
    }
    let mut p = Process::new(quick()).name("untraced").start().unwrap();
    assert_eq!(p.join().unwrap(), 5);
    let pool = Pool::new(1).unwrap();
    assert!(pool.apply(die_in_pool()).is_err());
    pool.terminate();
    println!("HELPER DONE");
}

#[test]
fn nothing_is_printed_without_a_subscriber() {
    let root = common::helper_root("helper_no_subscriber");
    let _guard = KillOnDrop(vec![root.id() as i32]);
    let out = root.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("HELPER DONE"), "{stdout}\n{stderr}");
    for text in [&stdout, &stderr] {
        for word in [
            "process started",
            "process ended",
            "pool worker replaced",
            "pool task failed",
        ] {
            assert!(!text.contains(word), "`{word}` printed without a subscriber:\n{text}");
        }
    }
}
