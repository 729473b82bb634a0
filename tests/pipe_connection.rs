//! Pipes between real processes: ports of CPython's `_TestConnection` and `_TestPoll`
//! (`Lib/test/_test_multiprocessing.py`), plus the EOF-without-ceremony guarantee.

mod common;
use common::Reap;

use std::time::{Duration, Instant};

use multiproc::{pipe, Connection, Pipe, PipeRecvError, PipeSendError, Process};
use serde::de::DeserializeOwned;

/// Kills and reaps a child however the test ends.
impl<T: DeserializeOwned> std::ops::Deref for Reap<T> {
    type Target = Process<T>;
    fn deref(&self) -> &Process<T> {
        &self.0
    }
}

impl<T: DeserializeOwned> std::ops::DerefMut for Reap<T> {
    fn deref_mut(&mut self) -> &mut Process<T> {
        &mut self.0
    }
}

/// Echoes raw messages until end of file (CPython's `_echo`).
#[multiproc::worker]
fn echo(conn: Connection<Vec<i64>>) {
    while let Ok(msg) = conn.recv_bytes() {
        conn.send_bytes(&msg).unwrap();
    }
}

const T1: Duration = Duration::from_millis(100);
const SLACK: Duration = Duration::from_secs(3);

#[test]
fn connection_objects_bytes_poll_and_eof() {
    let (conn, child_end) = pipe::<Vec<i64>>().unwrap();
    let mut p = Reap(Process::new(echo(child_end)).start().unwrap());

    // objects
    let seq = vec![1, 2, 3];
    conn.send(&seq).unwrap();
    assert_eq!(conn.recv().unwrap(), seq);

    // bytes
    let msg = b"hello world".to_vec();
    conn.send_bytes(&msg).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), msg);

    // into a reused buffer
    let mut buf = Vec::with_capacity(64);
    conn.send_bytes(&msg).unwrap();
    assert_eq!(conn.recv_bytes_into(&mut buf).unwrap(), msg.len());
    assert_eq!(buf, msg);

    // poll: nothing waiting, then the timing of a poll that times out
    assert!(!conn.poll(Some(Duration::ZERO)).unwrap());
    let t = Instant::now();
    assert!(!conn.poll(Some(T1)).unwrap());
    let el = t.elapsed();
    assert!(el >= T1, "poll returned after {el:?}, before its timeout");
    assert!(el < T1 + SLACK, "poll took {el:?}");

    // poll sees an echoed message without consuming it
    conn.send(&vec![7]).unwrap();
    assert!(conn.poll(Some(Duration::from_secs(10))).unwrap());
    assert!(conn.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(conn.recv().unwrap(), vec![7]);
    assert!(!conn.poll(Some(Duration::ZERO)).unwrap());

    // a really big message (16 MiB) round-trips intact
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    conn.send_bytes(&big).unwrap();
    let back = conn.recv_bytes().unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "the 16 MiB message came back changed");

    // closing our end ends the child; nothing more will come
    drop(conn);
    p.join().unwrap();
}

#[multiproc::worker]
fn exit_silently(_w: Connection<String>) {}

#[test]
fn eof_after_buffered_messages_and_when_the_writer_exits() {
    // Buffered messages come first, then Eof, and Eof repeats.
    let (r, w) = Pipe::simplex::<String>().unwrap();
    w.send(&"a".into()).unwrap();
    w.send(&"b".into()).unwrap();
    drop(w);
    assert_eq!(r.recv().unwrap(), "a");
    assert_eq!(r.recv().unwrap(), "b");
    assert!(matches!(r.recv(), Err(PipeRecvError::Eof)));
    assert!(matches!(r.recv(), Err(PipeRecvError::Eof)));
    assert!(r.poll(Some(Duration::ZERO)).unwrap(), "a closed peer counts as ready");

    // The writer is moved into a child that exits without sending: Eof within 1 s of its exit.
    let (r, w) = Pipe::simplex::<String>().unwrap();
    let mut p = Reap(Process::new(exit_silently(w)).start().unwrap());
    p.join().unwrap();
    let t = Instant::now();
    match r.recv_timeout(Duration::from_secs(5)) {
        Err(PipeRecvError::Eof) => {}
        other => panic!("expected Eof, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "Eof took {:?}", t.elapsed());
}

#[multiproc::worker]
fn killed_holder(_w: Connection<u8>) {
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn eof_when_the_peer_is_killed() {
    let (r, w) = Pipe::simplex::<u8>().unwrap();
    let p = Reap(Process::new(killed_holder(w)).start().unwrap());
    assert!(matches!(r.try_recv(), Err(PipeRecvError::Empty)));
    p.kill().unwrap();
    match r.recv_timeout(Duration::from_secs(10)) {
        Err(PipeRecvError::Eof) => {}
        other => panic!("expected Eof, got {other:?}"),
    }
    // Writing to a pipe whose reader is gone is an error, not SIGPIPE.
    let (r, w) = Pipe::simplex::<u8>().unwrap();
    drop(r);
    assert!(matches!(w.send(&1), Err(PipeSendError::Closed)));
}

#[multiproc::worker]
fn send_one(w: Connection<i32>) {
    w.send(&1).unwrap();
}

#[test]
fn duplex_false() {
    let (reader, writer) = Pipe::simplex::<i32>().unwrap();
    let mut p = Reap(Process::new(send_one(writer)).start().unwrap());
    assert_eq!(reader.recv().unwrap(), 1);
    assert!(matches!(reader.send(&2), Err(PipeSendError::WrongDirection)));
    p.join().unwrap();
    assert!(matches!(reader.recv(), Err(PipeRecvError::Eof)));

    let (reader, writer) = Pipe::simplex::<i32>().unwrap();
    assert!(matches!(writer.recv(), Err(PipeRecvError::WrongDirection)));
    assert!(matches!(
        writer.poll(Some(Duration::ZERO)),
        Err(PipeRecvError::WrongDirection)
    ));
    assert!(matches!(reader.send_bytes(b"x"), Err(PipeSendError::WrongDirection)));
    assert!(!reader.writable() && reader.readable() && writer.writable() && !writer.readable());
}

#[test]
fn empty_string() {
    let (a, b) = pipe::<()>().unwrap();
    assert!(!a.poll(Some(Duration::ZERO)).unwrap());
    b.send_bytes(b"").unwrap();
    assert!(a.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(a.recv_bytes().unwrap(), b"");
    assert!(!a.poll(Some(Duration::ZERO)).unwrap());
}

/// CPython's `_child_strings`: sends each string after a short pause, polls are not merged.
#[multiproc::worker]
fn child_strings(w: Connection<()>, strings: Vec<Vec<u8>>) {
    for s in strings {
        std::thread::sleep(Duration::from_millis(10));
        w.send_bytes(&s).unwrap();
    }
}

#[test]
fn strings_with_polls() {
    let strings: Vec<Vec<u8>> = [&b"hello"[..], b"", b"a", b"b", b"", b"bye", b"", b"lop"]
        .iter()
        .map(|s| s.to_vec())
        .chain(std::iter::once(b"STOP".to_vec()))
        .collect();
    let (a, b) = Pipe::simplex::<()>().unwrap();
    let mut p = Reap(Process::new(child_strings(b, strings.clone())).start().unwrap());
    for s in &strings {
        for _ in 0..200 {
            if a.poll(Some(Duration::from_millis(10))).unwrap() {
                break;
            }
        }
        assert_eq!(&a.recv_bytes().unwrap(), s);
    }
    p.join().unwrap();
}

/// Polls, then reads both messages: polling never pulls in a partial message or merges two.
#[multiproc::worker]
fn child_boundaries(r: Connection<()>) -> Vec<Vec<u8>> {
    r.poll(Some(Duration::from_secs(5))).unwrap();
    vec![r.recv_bytes().unwrap(), r.recv_bytes().unwrap()]
}

#[test]
fn boundaries() {
    let (r, w) = Pipe::simplex::<()>().unwrap();
    let mut p = Reap(Process::new(child_boundaries(r)).start().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    w.send_bytes(b"first").unwrap();
    w.send_bytes(b"second").unwrap();
    drop(w);
    assert_eq!(p.join().unwrap(), vec![b"first".to_vec(), b"second".to_vec()]);
}

#[test]
fn dont_merge() {
    let (a, b) = pipe::<()>().unwrap();
    a.send_bytes(b"a").unwrap();
    a.send_bytes(b"b").unwrap();
    assert!(b.poll(Some(Duration::from_secs(5))).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"a");
    assert!(b.poll(Some(Duration::from_secs(5))).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"b");
    a.send_bytes_many([&b"x"[..], b"", b"yz"]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"x");
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert_eq!(b.recv_bytes().unwrap(), b"yz");
}

#[test]
fn over_the_maximum_is_an_error_not_a_hang() {
    let max = multiproc::runtime::max_frame_size();
    let (a, b) = pipe::<Vec<u8>>().unwrap();
    let big = vec![0u8; max + 1];
    assert!(matches!(a.send_bytes(&big), Err(PipeSendError::TooLarge { .. })));
    match a.send(&big) {
        Err(PipeSendError::TooLarge { len, max: m }) => assert!(len > m),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Nothing was written: the pipe is still in step.
    a.send(&vec![1, 2]).unwrap();
    assert_eq!(b.recv().unwrap(), vec![1, 2]);
}

#[test]
fn timeouts_and_decode_errors() {
    let (a, b) = pipe::<u32>().unwrap();
    assert!(matches!(b.try_recv(), Err(PipeRecvError::Empty)));
    assert!(matches!(b.recv_timeout(Duration::ZERO), Err(PipeRecvError::Empty)));
    let t = Instant::now();
    assert!(matches!(b.recv_timeout(T1), Err(PipeRecvError::Timeout)));
    assert!(t.elapsed() >= T1 && t.elapsed() < T1 + SLACK);
    // A message of the wrong type is consumed and reported; the next one reads fine.
    a.send_bytes(b"\xc1").unwrap();
    a.send(&5).unwrap();
    assert!(matches!(b.recv(), Err(PipeRecvError::Decode(_))));
    assert_eq!(b.recv().unwrap(), 5);
}

#[test]
fn a_connection_cannot_ride_in_a_message() {
    let (a, _b) = pipe::<u8>().unwrap();
    let err = rmp_serde::to_vec(&a).unwrap_err().to_string();
    assert!(err.contains("worker argument"), "{err}");
    // Any other serialiser fails the same way (here one writing into a plain buffer).
    let mut buf = Vec::new();
    let err = serde::Serialize::serialize(&a, &mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
        .unwrap_err()
        .to_string();
    assert!(err.contains("worker argument"), "{err}");
}
