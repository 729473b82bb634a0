//! A `Connection` (or a shared-memory object) sent *after* start (issue 15): on a pipe
//! Connection it arrives working, its descriptor carried with the message (`SCM_RIGHTS`), as
//! Python's `reduction` allows. Through a Queue or a mailbox, see `queue_descriptors.rs` and
//! `mailbox_descriptors.rs`. Never a silently broken handle.

mod common;

use std::time::{Duration, Instant};

use common::KillOnDrop;
use multiproc::pipe::{pipe, Connection, PipeRecvError, PipeSendError};
use multiproc::shm::Array;
use multiproc::Process;

const LONG: Duration = Duration::from_secs(60);

/// Receives connections on `ctrl` after it started and serves each: doubles what it reads
/// until end of file. Also hands one connection of its own making back to the parent.
#[multiproc::worker]
fn serve_received(ctrl: Connection<Connection<u64>>) -> u32 {
    // One made here, sent the other way.
    let (mine, theirs) = pipe::<u64>().unwrap();
    ctrl.send(&theirs).unwrap();
    drop(theirs);
    mine.send(&u64::from(std::process::id())).unwrap();
    let mut served = 0;
    while let Ok(conn) = ctrl.recv() {
        while let Ok(x) = conn.recv() {
            conn.send(&(x * 2)).unwrap();
        }
        served += 1;
    }
    served
}

#[test]
fn connections_sent_on_a_pipe_after_start_arrive_working() {
    let (ctrl, theirs) = pipe::<Connection<u64>>().unwrap();
    let mut child = Process::new(serve_received(theirs)).start().unwrap();
    let _guard = KillOnDrop(vec![child.pid()]);
    // The child's own connection, received by the parent.
    let back = ctrl.recv_timeout(LONG).unwrap();
    assert_eq!(back.recv_timeout(LONG).unwrap(), child.pid() as u64);
    for round in 0..3u64 {
        let (a, b) = pipe::<u64>().unwrap();
        ctrl.send(&b).unwrap();
        // Python's semantics: the sender's copy is a separate descriptor; drop it so the
        // child's end is the only one.
        drop(b);
        for x in 0..5 {
            a.send(&(round * 10 + x)).unwrap();
            assert_eq!(a.recv_timeout(LONG).unwrap(), 2 * (round * 10 + x));
        }
        drop(a); // the child's recv sees end of file and takes the next connection
    }
    drop(ctrl);
    assert_eq!(child.join_timeout(LONG).unwrap(), 3);
    // The child has exited: its end of `back` is closed.
    assert!(matches!(back.recv_timeout(LONG), Err(PipeRecvError::Eof)));
}

#[multiproc::worker]
fn write_into_received(ctrl: Connection<(Array<u32>, u32)>) {
    while let Ok((a, v)) = ctrl.recv() {
        for i in 0..a.len() {
            a.set(i, v).unwrap();
        }
        ctrl.send(&(a, v + 1)).unwrap();
    }
}

/// A shared-memory Array sent on a pipe to a running child maps the same memory, both ways.
#[test]
fn shared_memory_sent_on_a_pipe_is_the_same_memory() {
    let (ctrl, theirs) = pipe::<(Array<u32>, u32)>().unwrap();
    let mut child = Process::new(write_into_received(theirs)).start().unwrap();
    let _guard = KillOnDrop(vec![child.pid()]);
    let a = Array::<u32>::zeroed(1000).unwrap();
    ctrl.send(&(a.clone(), 7)).unwrap();
    let (back, next) = ctrl.recv_timeout(LONG).unwrap();
    assert_eq!(next, 8);
    assert_eq!(a.to_vec().unwrap(), vec![7; 1000]);
    back.set(3, 99).unwrap();
    assert_eq!(a.get(3).unwrap(), 99);
    drop(ctrl);
    child.join_timeout(LONG).unwrap();
}

#[multiproc::worker]
fn hold_received(ctrl: Connection<Connection<u8>>) {
    let _held = ctrl.recv().unwrap();
    ctrl.send(&{
        let (_, b) = pipe::<u8>().unwrap();
        b
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(300));
}

/// Fault: the child that holds a received connection is SIGKILLed: the other end reads end of
/// file (the descriptor in flight or held died with it; nothing is left open).
#[test]
fn a_received_connection_dies_with_its_holder() {
    let (ctrl, theirs) = pipe::<Connection<u8>>().unwrap();
    let mut child = Process::new(hold_received(theirs)).start().unwrap();
    let _guard = KillOnDrop(vec![child.pid()]);
    let (a, b) = pipe::<u8>().unwrap();
    ctrl.send(&b).unwrap();
    drop(b);
    // The child answered: it holds `b`.
    let _ack = ctrl.recv_timeout(LONG).unwrap();
    assert!(matches!(
        a.recv_timeout(Duration::from_millis(50)),
        Err(PipeRecvError::Timeout)
    ));
    let t = Instant::now();
    child.kill().unwrap();
    assert!(matches!(a.recv_timeout(LONG), Err(PipeRecvError::Eof)));
    assert!(t.elapsed() < LONG);
    let _ = child.join_timeout(LONG);
}

/// Garbage: a peer announcing descriptors it did not send (raw bytes on the socket) gets that
/// message refused with a clear error, never a panic or a mismatched descriptor; plain messages
/// keep flowing.
#[test]
fn a_frame_announcing_missing_descriptors_is_refused() {
    let (a, b) = pipe::<u32>().unwrap();
    let body = multiproc::wire::encode(&7u32).unwrap()[multiproc::wire::HEADER_LEN..].to_vec();
    let mut frame = Vec::new();
    frame.extend_from_slice(&((body.len() as u32 + 4) | (1 << 31)).to_le_bytes());
    frame.extend_from_slice(&3u32.to_le_bytes());
    frame.extend_from_slice(&body);
    // Into the frame stream: the ring in ring mode, else the socket.
    a.send_raw_stream_bytes(&frame).unwrap();
    a.send(&8).unwrap();
    match b.recv_timeout(LONG) {
        Err(PipeRecvError::Decode(why)) => assert!(why.contains("did not arrive"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.recv_timeout(LONG).unwrap(), 8);
    // A count field missing altogether.
    a.send_raw_stream_bytes(&(1u32 << 31).to_le_bytes()).unwrap();
    assert!(matches!(b.recv_timeout(LONG), Err(PipeRecvError::Decode(_))));
    a.send(&9).unwrap();
    assert_eq!(b.recv_timeout(LONG).unwrap(), 9);
}

/// A message with more descriptors than one write may carry is refused before anything is
/// written.
#[test]
fn too_many_descriptors_in_one_message_are_refused() {
    let (a, b) = pipe::<Vec<Connection<u8>>>().unwrap();
    let ends: Vec<Connection<u8>> = (0..=multiproc::pipe::MAX_FDS_PER_MSG)
        .map(|_| pipe::<u8>().unwrap().1)
        .collect();
    assert!(matches!(a.send(&ends), Err(PipeSendError::TooManyDescriptors { .. })));
    assert!(matches!(b.try_recv(), Err(PipeRecvError::Empty)));
}
