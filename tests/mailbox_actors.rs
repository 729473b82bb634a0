//! Processes as actors: mailboxes, addresses passed around, ask/reply.
//!
//! The root's mailbox is shared by every test thread of this binary, so only one test here
//! reads it (`root_mailbox`); the others use child processes as receivers.

mod common;

use std::time::{Duration, Instant};

use common::KillOnDrop;
use multiproc::{mailbox, Addr, AskError, Process, RecvError, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    Add(u64),
    Total(ReplyTo<u64>),
    Stop,
}

/// An accumulator actor.
#[multiproc::worker]
fn accumulator() -> u64 {
    let inbox = mailbox::<Msg>();
    let mut total = 0;
    loop {
        match inbox.recv().unwrap() {
            Msg::Add(n) => total += n,
            Msg::Total(reply) => reply.send(&total).unwrap(),
            Msg::Stop => return total,
        }
    }
}

#[test]
fn messages_arrive_in_order_and_ask_gets_an_answer() {
    let mut guard = KillOnDrop::default();
    let mut acc = Process::new(accumulator()).start().unwrap();
    guard.add(acc.pid());
    let addr = acc.addr::<Msg>();
    for i in 1..=100 {
        addr.send(&Msg::Add(i)).unwrap();
    }
    assert_eq!(addr.ask(Msg::Total).unwrap(), 5050);
    addr.send_all(&[Msg::Add(1), Msg::Add(2)]).unwrap();
    assert_eq!(addr.ask_timeout(Msg::Total, Duration::from_secs(10)).unwrap(), 5053);
    addr.send(&Msg::Stop).unwrap();
    assert_eq!(acc.join().unwrap(), 5053);
}

#[multiproc::worker]
fn silent_then_exit(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn ask_a_process_that_dies_without_answering_is_gone_not_a_hang() {
    let mut guard = KillOnDrop::default();
    let mut p = Process::new(silent_then_exit(200)).start().unwrap();
    guard.add(p.pid());
    let t = Instant::now();
    let r: Result<u64, AskError> = p.addr::<Msg>().ask(Msg::Total);
    assert!(matches!(r, Err(AskError::Gone)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    p.join().unwrap();
}

#[test]
fn ask_timeout_is_not_early() {
    let mut guard = KillOnDrop::default();
    let mut p = Process::new(silent_then_exit(5_000)).start().unwrap();
    guard.add(p.pid());
    let t = Instant::now();
    let r: Result<u64, AskError> = p.addr::<Msg>().ask_timeout(Msg::Total, Duration::from_millis(300));
    assert!(matches!(r, Err(AskError::Timeout)), "{r:?}");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(t.elapsed() < Duration::from_secs(4));
    p.kill().unwrap();
    let _ = p.join();
}

/// A ring of three actors passing a token around; each adds its own number.
#[multiproc::worker]
fn ring_node(next: Addr<(u32, u64)>, add: u64, laps: u32) {
    let inbox = mailbox::<(u32, u64)>();
    loop {
        let (lap, value) = inbox.recv().unwrap();
        next.send(&(lap, value + add)).unwrap();
        if lap + 1 >= laps {
            return;
        }
    }
}

#[multiproc::worker]
fn ring_start(report: Addr<u64>, laps: u32) {
    // This process is the head: it builds the ring of two more nodes around itself.
    let me = multiproc::current_process().addr::<(u32, u64)>();
    let mut c = Process::new(ring_node(me.clone(), 100, laps)).start().unwrap();
    let mut b = Process::new(ring_node(c.addr(), 10, laps)).start().unwrap();
    let inbox = mailbox::<(u32, u64)>();
    b.addr::<(u32, u64)>().send(&(0, 1)).unwrap();
    let mut last = 0;
    for lap in 0..laps {
        let (l, v) = inbox.recv().unwrap();
        assert_eq!(l, lap);
        last = v;
        if lap + 1 < laps {
            b.addr::<(u32, u64)>().send(&(lap + 1, v + 1)).unwrap();
        }
    }
    report.send(&last).unwrap();
    b.join().unwrap();
    c.join().unwrap();
}

#[test]
fn root_mailbox() {
    let inbox = mailbox::<u64>();
    while inbox.try_recv().is_ok() {}
    assert!(matches!(inbox.try_recv(), Err(RecvError::Empty)));
    let t = Instant::now();
    assert!(matches!(
        inbox.recv_timeout(Duration::from_millis(200)),
        Err(RecvError::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(200));

    // An actor graph: root -> head -> b -> c -> head, three laps, then the head reports.
    let me = multiproc::current_process().addr::<u64>();
    let mut head = Process::new(ring_start(me.clone(), 3)).start().unwrap();
    // lap 0: 1 +10 +100 = 111; lap 1: 112 + 110 = 222; lap 2: 223 + 110 = 333
    assert_eq!(inbox.recv_timeout(Duration::from_secs(20)).unwrap(), 333);
    head.join().unwrap();

    // A message of the wrong type is a decode error (consumed), never UB or a panic.
    me.cast::<String>().send(&"not a number".to_string()).unwrap();
    assert!(matches!(
        inbox.recv_timeout(Duration::from_secs(5)),
        Err(RecvError::Decode(_))
    ));
    me.send(&7).unwrap();
    assert_eq!(inbox.recv().unwrap(), 7);
    assert_eq!(inbox.len().unwrap(), 0);
}

#[multiproc::worker]
fn send_to_parent_and_exit(n: u64) {
    let parent = multiproc::parent_process().unwrap().addr::<Vec<u64>>();
    parent.send(&(0..n).collect()).unwrap();
}

#[multiproc::worker]
fn collect_from_child(n: u64) -> usize {
    let mut c = Process::new(send_to_parent_and_exit(n)).start().unwrap();
    // The child has exited before we read: its message survived it.
    c.join().unwrap();
    mailbox::<Vec<u64>>()
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .len()
}

#[test]
fn message_survives_the_senders_exit_and_parent_process_is_addressable() {
    let mut p = Process::new(collect_from_child(100_000)).start().unwrap();
    assert_eq!(p.join().unwrap(), 100_000);
}
