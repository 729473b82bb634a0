//! Nesting, parent_process(), active_children(), daemonic restrictions, fd inheritance.

mod common;

use std::time::Duration;

use common::{eventually, KillOnDrop};
use multiproc::{mailbox, Addr, Process, ProcessError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Report {
    name: String,
    parent: Option<String>,
    depth: u32,
}

/// Port of CPython's `test_recursion`: a two-level tree whose nodes report in a fixed order.
#[multiproc::worker]
fn node(report_to: Addr<Report>, depth: u32, fanout: u32) {
    let me = multiproc::current_process();
    report_to
        .send(&Report {
            name: me.name().to_string(),
            parent: multiproc::parent_process().map(|p| p.name().to_string()),
            depth,
        })
        .unwrap();
    if depth < 2 {
        for _ in 0..fanout {
            // Started and joined one at a time, so the reports come in a fixed order.
            let mut p = Process::new(node(report_to.clone(), depth + 1, fanout))
                .start()
                .unwrap();
            p.join().unwrap();
        }
    }
}

#[test]
fn two_level_tree_reports_in_order() {
    let me = multiproc::current_process().addr::<Report>();
    let inbox = mailbox::<Report>();
    while inbox.try_recv().is_ok() {}
    let mut root_child = Process::new(node(me, 1, 2)).start().unwrap();
    root_child.join().unwrap();
    let top = root_child.name().to_string();
    let mut got = Vec::new();
    while let Ok(r) = inbox.recv_timeout(Duration::from_secs(5)) {
        got.push(r);
        if got.len() == 3 {
            break;
        }
    }
    let names: Vec<&str> = got.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, [top.clone(), format!("{top}:1"), format!("{top}:2")]);
    assert_eq!(got[0].parent.as_deref(), Some("MainProcess"));
    assert_eq!(got[1].parent.as_deref(), Some(top.as_str()));
    assert_eq!(got[2].depth, 2);
}

#[multiproc::worker]
fn try_to_start_a_child() -> String {
    match Process::new(nothing()).start() {
        Ok(_) => "started".into(),
        Err(ProcessError::Daemonic(m)) => m,
        Err(e) => format!("other error: {e}"),
    }
}

#[multiproc::worker]
fn nothing() {}

#[test]
fn daemonic_process_may_not_have_children() {
    let mut p = Process::new(try_to_start_a_child()).daemon(true).start().unwrap();
    let msg = p.join().unwrap();
    assert!(msg.contains("daemonic"), "{msg}");
}

#[multiproc::worker]
fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn active_children_lists_only_live_children() {
    let mut guard = KillOnDrop::default();
    let mut long = Process::new(sleep_ms(5_000)).name("long").start().unwrap();
    guard.add(long.pid());
    let mut short = Process::new(sleep_ms(0)).name("short").start().unwrap();
    short.join().unwrap();
    let kids = multiproc::active_children().unwrap();
    assert!(kids.iter().any(|k| k.name() == "long" && k.pid() == long.pid()));
    assert!(!kids.iter().any(|k| k.name() == "short"));
    long.kill().unwrap();
    let _ = long.join();
    assert!(eventually(Duration::from_secs(5), || !multiproc::active_children()
        .unwrap()
        .iter()
        .any(|k| k.name() == "long")));
}

/// Port of CPython's `test_child_fd_inflation`: a child sees the same number of open
/// descriptors however many siblings are alive.
#[multiproc::worker]
fn count_fds(hold_ms: u64) -> usize {
    let n = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(hold_ms));
    n
}

#[test]
fn children_do_not_inherit_each_others_descriptors() {
    for method in [multiproc::StartMethod::Spawn, multiproc::StartMethod::ForkServer] {
        let mut guard = KillOnDrop::default();
        let mut first = Process::new(count_fds(0)).start_method(method).start().unwrap();
        let baseline = first.join().unwrap();
        let mut siblings = Vec::new();
        for _ in 0..8 {
            let p = Process::new(count_fds(300)).start_method(method).start().unwrap();
            guard.add(p.pid());
            siblings.push(p);
        }
        for mut p in siblings {
            assert_eq!(p.join().unwrap(), baseline, "{method:?}");
        }
    }
}

#[test]
fn zombies_are_reaped_without_join() {
    let p = Process::new(sleep_ms(0)).start().unwrap();
    let pid = p.pid();
    // Never joined: the hub still reaps it as soon as it exits.
    assert!(
        eventually(Duration::from_secs(5), || !common::pid_exists(pid)),
        "pid {pid} still exists"
    );
    assert!(!common::is_zombie(pid));
    drop(p);
}
