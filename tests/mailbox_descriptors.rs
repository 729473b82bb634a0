//! A `Connection` (or a shared-memory object) sent to a mailbox after start (issue 15, Python's
//! `reduction`): the hub keeps its descriptor with the held mail and pushes it with the
//! message, so the receiver gets a working handle. Faults: the sender SIGKILLed right after
//! `send`, mail with descriptors for a process that dies (closed, nothing left open), an `ask`
//! reply (which still carries bytes only) refused at send time.

mod common;

use std::time::Duration;

use common::KillOnDrop;
use multiproc::pipe::{pipe, Connection, PipeRecvError};
use multiproc::shm::{Array, RawValue};
use multiproc::{current_process, mailbox, Addr, Process, ReplyTo};
use serde::{Deserialize, Serialize};

const LONG: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
enum Msg {
    /// Serve this connection (double what it reads until end of file).
    Serve(Connection<u64>),
    /// Write `x` into the memory, then say so on the connection.
    Fill(Array<u32>, RawValue<u64>, u32, Connection<u64>),
    /// Send a connection of your own making to this address.
    Call(Addr<Connection<u64>>),
    Stop,
}

#[multiproc::worker]
fn mail_server() -> u32 {
    let inbox = mailbox::<Msg>();
    let mut served = 0;
    loop {
        match inbox.recv().unwrap() {
            Msg::Serve(conn) => {
                while let Ok(x) = conn.recv() {
                    conn.send(&(x * 2)).unwrap();
                }
                served += 1;
            }
            Msg::Fill(a, v, x, done) => {
                for i in 0..a.len() {
                    a.set(i, x).unwrap();
                }
                v.set(u64::from(x));
                done.send(&1).unwrap();
            }
            Msg::Call(to) => {
                let (mine, theirs) = pipe::<u64>().unwrap();
                to.send(&theirs).unwrap();
                drop(theirs);
                while let Ok(x) = mine.recv() {
                    mine.send(&(x + 1)).unwrap();
                }
            }
            Msg::Stop => return served,
        }
    }
}

/// The one test of this file that uses the root's own mailbox (tests run in parallel).
#[test]
fn a_connection_through_a_mailbox_arrives_working_both_ways() {
    let mut child = Process::new(mail_server()).start().unwrap();
    let _guard = KillOnDrop(vec![child.pid()]);
    let to = child.addr::<Msg>();
    for round in 0..3u64 {
        let (a, b) = pipe::<u64>().unwrap();
        to.send(&Msg::Serve(b)).unwrap();
        for x in 0..5 {
            a.send(&(round * 10 + x)).unwrap();
            assert_eq!(a.recv_timeout(LONG).unwrap(), 2 * (round * 10 + x));
        }
        drop(a);
    }
    // The other way: the child sends one of its own to this process's mailbox.
    to.send(&Msg::Call(current_process().addr())).unwrap();
    let theirs = mailbox::<Connection<u64>>().recv_timeout(LONG).unwrap();
    theirs.send(&41).unwrap();
    assert_eq!(theirs.recv_timeout(LONG).unwrap(), 42);
    drop(theirs);
    // send_timeout and send_all carry descriptors too.
    let (a, b) = pipe::<u64>().unwrap();
    to.send_timeout(&Msg::Serve(b), LONG).unwrap();
    a.send(&1).unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), 2);
    drop(a);
    let (a, b) = pipe::<u64>().unwrap();
    let (c, d) = pipe::<u64>().unwrap();
    to.send_all(&[Msg::Serve(b), Msg::Serve(d)]).unwrap();
    a.send(&3).unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), 6);
    drop(a);
    c.send(&4).unwrap();
    assert_eq!(c.recv_timeout(LONG).unwrap(), 8);
    drop(c);
    to.send(&Msg::Stop).unwrap();
    assert_eq!(child.join_timeout(LONG).unwrap(), 6);
}

/// Shared memory sent to a mailbox is the same memory in the receiver.
#[test]
fn shared_memory_through_a_mailbox_is_the_same_memory() {
    let mut child = Process::new(mail_server()).start().unwrap();
    let _guard = KillOnDrop(vec![child.pid()]);
    let a = Array::<u32>::zeroed(500).unwrap();
    let v = RawValue::new(0u64).unwrap();
    let (done, theirs) = pipe::<u64>().unwrap();
    child
        .addr::<Msg>()
        .send(&Msg::Fill(a.clone(), v.clone(), 9, theirs))
        .unwrap();
    assert_eq!(done.recv_timeout(LONG).unwrap(), 1);
    assert_eq!(a.to_vec().unwrap(), vec![9; 500]);
    assert_eq!(v.get(), 9);
    child.addr::<Msg>().send(&Msg::Stop).unwrap();
    child.join_timeout(LONG).unwrap();
}

/// Receives one `Serve` after `go` says so (the mail waits in the hub meanwhile), serves it.
#[multiproc::worker]
fn serve_later(go: Connection<u8>) {
    go.recv().unwrap();
    if let Ok(Msg::Serve(conn)) = mailbox::<Msg>().recv() {
        while let Ok(x) = conn.recv() {
            conn.send(&(x * 2)).unwrap();
        }
    }
}

/// Takes a connection from its mailbox and hands it to `back`.
#[multiproc::worker]
fn relay_one(back: Connection<Connection<u64>>) {
    let c = mailbox::<Connection<u64>>().recv().unwrap();
    back.send(&c).unwrap();
}

/// Fault: the sender is SIGKILLed right after `send` returned, before the receiver even
/// subscribed: the mail and its descriptor wait in the hub and arrive working.
#[test]
fn the_sender_killed_after_send_leaves_a_working_connection() {
    let (go, go_theirs) = pipe::<u8>().unwrap();
    let mut receiver = Process::new(serve_later(go_theirs)).start().unwrap();
    let mut guard = KillOnDrop(vec![receiver.pid()]);
    // A relay receives the other end (a second mailbox), so this test does not use the root's.
    let (back, back_theirs) = pipe::<Connection<u64>>().unwrap();
    let mut relay = Process::new(relay_one(back_theirs)).start().unwrap();
    guard.add(relay.pid());
    let (ctrl, ctrl_theirs) = pipe::<u8>().unwrap();
    let mut sender = Process::new(send_and_hang_two(receiver.addr(), relay.addr(), ctrl_theirs))
        .start()
        .unwrap();
    guard.add(sender.pid());
    assert_eq!(ctrl.recv_timeout(LONG).unwrap(), 1);
    sender.kill().unwrap();
    let _ = sender.join_timeout(LONG);
    assert!(!sender.is_alive());
    let a = back.recv_timeout(LONG).unwrap();
    relay.join_timeout(LONG).unwrap();
    go.send(&1).unwrap();
    a.send(&21).unwrap();
    assert_eq!(a.recv_timeout(LONG).unwrap(), 42);
    drop(a);
    receiver.join_timeout(LONG).unwrap();
}

/// Sends one end of a new pipe to `serve` (as `Msg::Serve`), the other to `relay`, says so,
/// and waits to be killed.
#[multiproc::worker]
fn send_and_hang_two(serve: Addr<Msg>, relay: Addr<Connection<u64>>, ctrl: Connection<u8>) {
    let (a, b) = pipe::<u64>().unwrap();
    serve.send(&Msg::Serve(b)).unwrap();
    relay.send(&a).unwrap();
    drop(a);
    ctrl.send(&1).unwrap();
    std::thread::sleep(Duration::from_secs(300));
}

#[multiproc::worker]
fn never_receives() {
    std::thread::sleep(Duration::from_secs(300));
}

/// Mail with descriptors for a process that dies without receiving it, and mail sent after
/// it ended, is dropped and its descriptors closed: the other end reads end of file.
#[test]
fn mail_with_descriptors_to_a_dead_process_closes_them() {
    let mut p = Process::new(never_receives()).start().unwrap();
    let _guard = KillOnDrop(vec![p.pid()]);
    let to = p.addr::<Connection<u64>>();
    let (held, b) = pipe::<u64>().unwrap();
    to.send(&b).unwrap();
    drop(b);
    assert!(matches!(
        held.recv_timeout(Duration::from_millis(50)),
        Err(PipeRecvError::Timeout)
    ));
    p.kill().unwrap();
    let _ = p.join_timeout(LONG);
    assert!(matches!(held.recv_timeout(LONG), Err(PipeRecvError::Eof)));
    let (late, d) = pipe::<u64>().unwrap();
    to.send(&d).unwrap();
    drop(d);
    assert!(matches!(late.recv_timeout(LONG), Err(PipeRecvError::Eof)));
}

#[derive(Serialize, Deserialize)]
struct GiveConn(ReplyTo<Connection<u64>>);

/// Answers an ask with a Connection: refused (replies carry bytes only); reports the error.
#[multiproc::worker]
fn answer_with_conn() -> String {
    let GiveConn(reply) = mailbox::<GiveConn>().recv().unwrap();
    let (_a, b) = pipe::<u64>().unwrap();
    match reply.send(&b) {
        Err(e) => e.to_string(),
        Ok(()) => "sent".into(),
    }
}

/// An `ask` reply still carries bytes only: a Connection in it is refused at send time with a
/// message that names the ways that work, and the asker sees the answerer end.
#[test]
fn a_connection_in_an_ask_reply_is_refused_at_send_time() {
    let mut p = Process::new(answer_with_conn()).start().unwrap();
    let _guard = KillOnDrop(vec![p.pid()]);
    let res = p.addr::<GiveConn>().ask_timeout(GiveConn, LONG);
    assert!(res.is_err());
    let why = p.join_timeout(LONG).unwrap();
    assert!(why.contains("an ask reply"), "{why}");
    assert!(why.contains("a mailbox message"), "{why}");
}
