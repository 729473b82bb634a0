//! `multiproc::wait`: a port of CPython's `TestWait` (`Lib/test/_test_multiprocessing.py`).

mod common;
use common::Reap;

use std::time::{Duration, Instant};

use multiproc::{pipe, wait, Connection, Pipe, Process, Waitable};

/// CPython's `_child_test_wait`: ten messages (its pid and a counter), with pauses, then exit.
#[multiproc::worker]
fn sender(w: Connection<(i32, u32)>, slow: bool) {
    let pid = std::process::id() as i32;
    for i in 0..10 {
        if slow {
            std::thread::sleep(Duration::from_millis(10 + (pid as u64 % 7) * 3));
        }
        w.send(&(pid, i)).unwrap();
    }
}

fn four_senders(slow: bool) {
    let mut readers = Vec::new();
    let mut procs = Vec::new();
    for _ in 0..4 {
        let (r, w) = Pipe::simplex::<(i32, u32)>().unwrap();
        procs.push(Reap(Process::new(sender(w, slow)).start().unwrap()));
        readers.push(r);
    }
    let expected: Vec<(i32, Vec<u32>)> = procs.iter().map(|p| (p.0.pid(), (0..10).collect())).collect();
    let mut got: std::collections::BTreeMap<i32, Vec<u32>> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !readers.is_empty() {
        assert!(Instant::now() < deadline, "wait loop did not finish");
        let objs: Vec<&dyn Waitable> = readers.iter().map(|r| r as &dyn Waitable).collect();
        let ready = wait(&objs, Some(Duration::from_secs(10))).unwrap();
        assert!(!ready.is_empty(), "nothing became ready in 10 s");
        for &i in ready.iter().rev() {
            match readers[i].recv() {
                Ok((pid, n)) => got.entry(pid).or_default().push(n),
                Err(multiproc::PipeRecvError::Eof) => {
                    readers.remove(i);
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
    for (pid, want) in expected {
        assert_eq!(got.get(&pid), Some(&want), "messages of child {pid}");
    }
    for mut p in procs {
        p.0.join().unwrap();
    }
}

#[test]
fn wait_four_children_ten_messages_each() {
    four_senders(false);
}

#[test]
fn wait_slow_senders() {
    four_senders(true);
}

#[multiproc::worker]
fn sleeper(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn wait_on_process_sentinels() {
    let mut a = Reap(Process::new(sleeper(100)).start().unwrap());
    let mut b = Reap(Process::new(sleeper(300)).start().unwrap());
    let mut done = [false, false];
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.iter().any(|d| !d) {
        assert!(Instant::now() < deadline);
        let objs: Vec<&dyn Waitable> = vec![&a.0, &b.0];
        for i in wait(&objs, Some(Duration::from_secs(10))).unwrap() {
            done[i] = true;
        }
    }
    assert!(!a.0.is_alive() && !b.0.is_alive());
    a.0.join().unwrap();
    b.0.join().unwrap();
    // An ended process is ready at once.
    let objs: Vec<&dyn Waitable> = vec![&a.0];
    assert_eq!(wait(&objs, Some(Duration::ZERO)).unwrap(), vec![0]);
}

#[multiproc::worker]
fn send_after(w: Connection<u8>, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    w.send(&1).unwrap();
    std::thread::sleep(Duration::from_secs(30));
}

/// CPython's `test_wait_timeout`: an empty wait takes its timeout; then a message arrives.
#[test]
fn wait_timeout() {
    let expected = Duration::from_millis(500);
    let (a, b) = pipe::<u8>().unwrap();
    let t = Instant::now();
    let objs: Vec<&dyn Waitable> = vec![&a];
    let res = wait(&objs, Some(expected)).unwrap();
    let el = t.elapsed();
    assert!(res.is_empty());
    assert!(el >= expected, "returned after {el:?}");
    assert!(el < expected + Duration::from_secs(3), "took {el:?}");

    b.send(&1).unwrap();
    let t = Instant::now();
    assert_eq!(wait(&objs, Some(Duration::from_secs(1))).unwrap(), vec![0]);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(a.recv().unwrap(), 1);

    // A connection and a process: the message arrives first, the process keeps running.
    let (r, w) = Pipe::simplex::<u8>().unwrap();
    let p = Reap(Process::new(send_after(w, 200)).start().unwrap());
    let objs: Vec<&dyn Waitable> = vec![&r, &p.0];
    let t = Instant::now();
    assert_eq!(wait(&objs, Some(Duration::from_secs(10))).unwrap(), vec![0]);
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.recv().unwrap(), 1);
    // Nothing else will be ready for a while: a zero timeout returns at once, empty.
    let t = Instant::now();
    assert!(wait(&objs, Some(Duration::ZERO)).unwrap().is_empty());
    assert!(t.elapsed() < Duration::from_secs(1));
    // Killing the process makes both ready (its end of the pipe closes with it).
    p.0.kill().unwrap();
    let ready = wait(&objs, Some(Duration::from_secs(10))).unwrap();
    assert!(!ready.is_empty());
}

#[test]
fn a_closed_peer_counts_as_ready() {
    let (a, b) = pipe::<u8>().unwrap();
    drop(b);
    let objs: Vec<&dyn Waitable> = vec![&a];
    assert_eq!(wait(&objs, Some(Duration::from_secs(5))).unwrap(), vec![0]);
    assert!(matches!(a.recv(), Err(multiproc::PipeRecvError::Eof)));
}
