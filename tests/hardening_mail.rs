//! Hardening of the mailbox and ask paths (issue 11, items 1 and 5): mail that `send` accepted
//! is never dropped, whatever the backlog, and asking a process that has ended fails at once.
//!
//! This binary is the only one whose root receives from its own mailbox in one test, so that
//! no other test (they run as threads of one process) takes its mail.

mod common;

use std::time::{Duration, Instant};

use multiproc::{mailbox, Addr, AskError, Process, ReplyTo};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

const MIB: usize = 1 << 20;

/// Sends `n` messages of 1 MiB each, each starting with its index, then returns.
#[multiproc::worker]
fn flood(to: Addr<ByteBuf>, n: u32) -> u32 {
    for i in 0..n {
        let mut m = vec![0xA5u8; MIB];
        m[..4].copy_from_slice(&i.to_le_bytes());
        to.send(&ByteBuf::from(m)).unwrap();
    }
    n
}

/// Item 1: a backlog larger than the frame limit (80 MiB > 64 MiB) waits in the hub until the
/// root's first receive; all of it arrives, in order. (Before the fix the backlog went out as
/// one frame, which exceeded the limit and was dropped whole.)
#[test]
fn a_mail_backlog_larger_than_a_frame_is_delivered_whole_and_in_order() {
    let n = 80u32;
    let me = multiproc::current_process().addr::<ByteBuf>();
    let mut child = Process::new(flood(me, n)).start().unwrap();
    // Joined: every message is in the hub (it drains a dead process's sockets before it
    // reports the exit), and nobody has subscribed to the root's mailbox yet.
    assert_eq!(child.join_timeout(Duration::from_secs(120)).unwrap(), n);
    let inbox = mailbox::<ByteBuf>();
    for i in 0..n {
        let m = inbox
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("message {i} of {n} was not delivered: {e}"));
        assert_eq!(m.len(), MIB, "message {i}");
        assert_eq!(u32::from_le_bytes([m[0], m[1], m[2], m[3]]), i, "out of order");
    }
    assert!(inbox.try_recv().is_err(), "more messages than were sent");
}

#[derive(Serialize, Deserialize)]
struct Question(ReplyTo<u32>);

#[multiproc::worker]
fn quick() -> u32 {
    7
}

/// Item 5: asking a process that has already ended answers `Gone` at once, with and without a
/// timeout (before the fix, `ask` hung forever and `ask_timeout` gave `Timeout`).
#[test]
fn asking_an_ended_process_is_gone_at_once() {
    let mut p = Process::new(quick()).start().unwrap();
    assert_eq!(p.join().unwrap(), 7);
    let addr = p.addr::<Question>();

    let t = Instant::now();
    let r = addr.ask_timeout(Question, Duration::from_secs(60));
    assert!(matches!(r, Err(AskError::Gone)), "ask_timeout: {r:?}");
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());

    // `ask` without a deadline: run it on a thread, so that a regression fails instead of hanging.
    let (tx, rx) = std::sync::mpsc::channel();
    let a = addr.clone();
    std::thread::spawn(move || {
        let _ = tx.send(a.ask(Question).map_err(|e| e.to_string()));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Err(why)) => assert_eq!(why, AskError::Gone.to_string()),
        Ok(Ok(v)) => panic!("an ended process answered {v}"),
        Err(_) => panic!("ask to an ended process still hangs"),
    }
}
