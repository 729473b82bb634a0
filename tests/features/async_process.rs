//! `.await` forms of processes and mailboxes (feature `tokio`): `join_async` of real children,
//! `recv_async` of mail pushed by a child, `ask_async` round trips, and cancel-safety of both
//! waits, on both runtime flavours.

#[path = "../common/mod.rs"]
mod common;
use common::Reap;

use std::time::{Duration, Instant};

use multiproc::{current_process, mailbox, Addr, Process, ReplyTo};
use serde::{Deserialize, Serialize};

/// Kills and reaps a child when the test ends, even if it fails.
#[multiproc::worker]
fn sleepy_square(n: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    n * n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_async_of_several_children_at_once() {
    let mut kids: Vec<_> = (0..4u64)
        .map(|i| Reap(Process::new(sleepy_square(i, 100 + 50 * i)).start().unwrap()))
        .collect();
    let t0 = Instant::now();
    let mut futs = Vec::new();
    for k in kids.iter_mut() {
        futs.push(k.0.join_async());
    }
    let mut got = Vec::new();
    for f in futs {
        got.push(tokio::time::timeout(Duration::from_secs(60), f).await.unwrap().unwrap());
    }
    assert_eq!(got, vec![0, 1, 4, 9]);
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "not before the slowest child"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_join_can_be_joined_again() {
    let mut p = Reap(Process::new(sleepy_square(7, 300)).start().unwrap());
    assert!(tokio::time::timeout(Duration::from_millis(50), p.0.join_async())
        .await
        .is_err());
    assert!(p.0.is_alive());
    assert_eq!(p.0.join_async().await.unwrap(), 49);
}

#[multiproc::worker]
fn mail_after(to: Addr<u32>, n: u32, ms: u64) {
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(ms));
        to.send(&i).unwrap();
    }
}

async fn recv_from_a_child() {
    let me = current_process().addr::<u32>();
    let _c = Reap(Process::new(mail_after(me, 50, 2)).start().unwrap());
    let mb = mailbox::<u32>();
    let mut got = Vec::new();
    let mut cancelled = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while got.len() < 50 && Instant::now() < end {
        // Short deadlines: cancelled receives must lose nothing and keep the order.
        match tokio::time::timeout(Duration::from_millis(1), mb.recv_async()).await {
            Ok(v) => got.push(v.unwrap()),
            Err(_) => cancelled += 1,
        }
    }
    assert!(cancelled > 0);
    assert_eq!(got, (0..50).collect::<Vec<_>>(), "every message once, in order");
}

// One test per binary uses the root's mailbox at a time: both flavours run in one test.
#[test]
fn recv_async_gets_a_childs_mail_in_order_on_both_flavours() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(recv_from_a_child());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(recv_from_a_child());
}

#[derive(Serialize, Deserialize)]
enum Req {
    Double(u64, ReplyTo<u64>),
    Slow(u64, ReplyTo<u64>),
    Stop,
}

#[multiproc::worker]
fn server() {
    let mb = mailbox::<Req>();
    loop {
        match mb.recv().unwrap() {
            Req::Double(n, r) => r.send(&(n * 2)).unwrap(),
            Req::Slow(n, r) => {
                std::thread::sleep(Duration::from_millis(300));
                let _ = r.send(&n);
            }
            Req::Stop => return,
        }
    }
}

async fn ask_a_server() {
    let mut s = Reap(Process::new(server()).start().unwrap());
    let addr = s.0.addr::<Req>();
    // Concurrent asks from many tasks.
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            addr.ask_async(|r| Req::Double(i, r)).await.unwrap()
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), 2 * i as u64);
    }
    // A cancelled ask: its late answer goes nowhere, and the next ask gets its own.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), addr.ask_async(|r| Req::Slow(1, r)))
            .await
            .is_err()
    );
    assert_eq!(addr.ask_async(|r| Req::Double(21, r)).await.unwrap(), 42);
    addr.send(&Req::Stop).unwrap();
    s.0.join_async().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn ask_async_round_trips_current_thread() {
    ask_a_server().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_async_round_trips_multi_thread() {
    ask_a_server().await;
}

#[multiproc::worker]
fn pipe_sender(conn: multiproc::Connection<u32>, n: u32) {
    // A pause first, long enough that the receiver's 1 ms timeouts fire even on a loaded
    // machine (a receiver that always finds the next message waiting is never cancelled).
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(2));
        conn.send(&i).unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn connection_recv_async_loses_nothing_when_cancelled_and_sees_eof() {
    let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
    let mut c = Reap(Process::new(pipe_sender(theirs, 40)).start().unwrap());
    let mut got = Vec::new();
    let mut cancelled = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(1), mine.recv_async()).await {
            Ok(Ok(v)) => got.push(v),
            Ok(Err(multiproc::PipeRecvError::Eof)) => break,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => cancelled += 1,
        }
        assert!(cancelled < 1_000_000);
    }
    assert_eq!(got, (0..40).collect::<Vec<_>>());
    assert!(cancelled > 0);
    c.0.join_async().await.unwrap();
}
