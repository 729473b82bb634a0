//! Pipes on shared-memory rings (issue 10 stage 3): a pair made by `pipe()` carries its frames
//! in a ring per direction, with the socketpair as lifeline, descriptor carrier and doorbell.
//! Durability across SIGKILL, a writer killed mid-frame, a reader that stops while the writer
//! fills the ring, garbage in the counters, and the idle cost of a blocked receiver.
//!
//! Every test here also runs on the socket-only path: `the_socket_transport_passes_these_tests`
//! re-runs this binary with `MULTIPROC_TRANSPORT=socket`.

mod common;
use common::{die_now, socket_only, Reap, LONG};

use std::time::{Duration, Instant};

use multiproc::wire::ring::TRANSPORT_ENV;
use multiproc::{pipe, Connection, Pipe, PipeRecvError, Process};

#[multiproc::worker]
fn uses_ring(c: Connection<u8>) -> bool {
    c.uses_ring()
}

#[test]
fn pipes_use_rings_unless_switched_off_also_after_travelling() {
    let (a, b) = pipe::<u8>().unwrap();
    assert_eq!(a.uses_ring(), !socket_only());
    let mut p = Process::new(uses_ring(b)).start().unwrap();
    assert_eq!(p.join().unwrap(), !socket_only());
    drop(a);
}

const N: u32 = 10_000;

#[multiproc::worker]
fn send_then_die(w: Connection<u32>) {
    for i in 0..N {
        w.send(&i).unwrap();
    }
    die_now()
}

/// A writer SIGKILLed right after its 10,000th send: the reader gets exactly those 10,000, in
/// order, then end of file.
#[test]
fn a_writer_killed_after_its_last_send_loses_nothing() {
    let (r, w) = Pipe::simplex::<u32>().unwrap();
    let mut p = Reap(Process::new(send_then_die(w)).start().unwrap());
    let t = Instant::now();
    let mut got = 0u32;
    loop {
        match r.recv_timeout(LONG) {
            Ok(i) => {
                assert_eq!(i, got);
                got += 1;
            }
            Err(PipeRecvError::Eof) => break,
            Err(e) => panic!("after {got}: {e:?}"),
        }
        assert!(t.elapsed() < LONG * 2);
    }
    assert_eq!(got, N);
    assert!(p.0.join_timeout(LONG).is_err(), "the writer was killed");
    p.0.kill().ok();
}

#[multiproc::worker]
fn die_mid_frame(w: Connection<u32>) {
    w.send(&1).unwrap();
    w.send(&2).unwrap();
    // A frame announcing 1000 bytes, of which only 10 are written, then death.
    let mut half = 1000u32.to_le_bytes().to_vec();
    half.extend_from_slice(&[0x55; 10]);
    w.send_raw_stream_bytes(&half).unwrap();
    die_now()
}

/// A writer killed in the middle of a frame: the whole messages before it arrive, the partial
/// frame is discarded, end of file follows; nothing corrupt is delivered.
#[test]
fn a_writer_killed_mid_frame_gives_eof_not_garbage() {
    let (r, w) = Pipe::simplex::<u32>().unwrap();
    let _p = Reap(Process::new(die_mid_frame(w)).start().unwrap());
    assert_eq!(r.recv_timeout(LONG).unwrap(), 1);
    assert_eq!(r.recv_timeout(LONG).unwrap(), 2);
    match r.recv_timeout(LONG) {
        Err(PipeRecvError::Eof) => {}
        other => panic!("expected Eof, got {other:?}"),
    }
    assert!(matches!(
        r.recv_timeout(Duration::from_millis(10)),
        Err(PipeRecvError::Eof)
    ));
}

const M: u32 = 20_000;

#[multiproc::worker]
fn flood(w: Connection<()>) -> u32 {
    let mut msg = vec![0u8; 1000];
    for i in 0..M {
        msg[..4].copy_from_slice(&i.to_le_bytes());
        w.send_bytes(&msg).unwrap();
    }
    M
}

/// A reader that stops for 2 s while the writer sends 20 MB (far more than a ring holds):
/// the writer waits for room, nothing is lost, nothing deadlocks.
#[test]
fn a_reader_that_pauses_loses_nothing_and_nobody_deadlocks() {
    let (r, w) = Pipe::simplex::<()>().unwrap();
    let mut p = Reap(Process::new(flood(w)).start().unwrap());
    let mut buf = Vec::new();
    for i in 0..100u32 {
        r.recv_bytes_into(&mut buf).unwrap();
        assert_eq!(buf[..4], i.to_le_bytes());
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(p.0.is_alive(), "the writer waits for room");
    let t = Instant::now();
    for i in 100..M {
        let n = r.recv_bytes_into(&mut buf).unwrap();
        assert_eq!((n, &buf[..4]), (1000, &i.to_le_bytes()[..]));
        assert!(t.elapsed() < LONG * 2, "stuck at {i}");
    }
    assert_eq!(p.0.join_timeout(LONG).unwrap(), M);
    assert!(matches!(r.recv_timeout(LONG), Err(PipeRecvError::Eof)));
}

#[multiproc::worker]
fn scribble(w: Connection<u32>, other: Connection<u32>) -> bool {
    w.send(&1).unwrap();
    let ring = w.scribble_ring_tail(1 << 40);
    other.send(&2).unwrap();
    // Stay alive until told: the corrupt connection must be reported as such, not as EOF.
    let _ = other.recv_timeout(LONG);
    ring
}

/// Garbage in the ring's counters: that connection reports it as corrupt (no panic, no bogus
/// message); this process and its other connections go on.
#[test]
fn garbage_in_a_ring_errors_that_connection_only() {
    let (r, w) = Pipe::simplex::<u32>().unwrap();
    let (mine, theirs) = pipe::<u32>().unwrap();
    let mut p = Reap(Process::new(scribble(w, theirs)).start().unwrap());
    assert_eq!(mine.recv_timeout(LONG).unwrap(), 2);
    if socket_only() {
        assert_eq!(r.recv_timeout(LONG).unwrap(), 1);
    } else {
        let mut saw = Vec::new();
        for _ in 0..3 {
            match r.recv_timeout(Duration::from_secs(5)) {
                Ok(v) => saw.push(v),
                Err(PipeRecvError::Corrupt(why)) => {
                    assert!(why.contains("corrupt"), "{why}");
                    break;
                }
                Err(e) => panic!("expected Corrupt, got {e:?} after {saw:?}"),
            }
        }
        // At most the message written before the scribble came through, and nothing else.
        assert!(saw.len() <= 1 && saw.iter().all(|&v| v == 1), "{saw:?}");
        assert!(matches!(
            r.recv_timeout(Duration::from_millis(10)),
            Err(PipeRecvError::Corrupt(_))
        ));
        assert!(
            r.poll(Some(Duration::ZERO)).unwrap(),
            "a corrupt ring counts as ready, so recv reports it"
        );
    }
    mine.send(&3).unwrap();
    assert_eq!(p.0.join_timeout(LONG).unwrap(), !socket_only());
}

#[multiproc::worker]
fn block_in_pipe_recv(c: Connection<u32>, ready: Connection<u32>) {
    ready.send(&0).unwrap();
    let _ = c.recv();
}

/// CPU time a process has used, in nanoseconds (`schedstat`: exact; `stat`: clock ticks).
fn cpu_ns(pid: i32) -> u64 {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/schedstat")) {
        if let Some(ns) = s.split_whitespace().next().and_then(|n| n.parse().ok()) {
            return ns;
        }
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = s.rsplit_once(')').unwrap().1;
    let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    (f[10] + f[11]) * 10_000_000
}

/// Idle costs nothing: a child blocked in a pipe `recv` sleeps.
#[test]
fn an_idle_child_blocked_in_pipe_recv_costs_no_cpu() {
    let (_mine, theirs) = pipe::<u32>().unwrap();
    let (ready_r, ready_w) = pipe::<u32>().unwrap();
    let p = Reap(Process::new(block_in_pipe_recv(theirs, ready_w)).start().unwrap());
    assert_eq!(ready_r.recv_timeout(LONG).unwrap(), 0);
    let pid = p.0.pid();
    // Let it reach its receive.
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ns(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ns(pid) - before;
    assert!(used < 2_000_000, "an idle child used {} µs of CPU in 2 s", used / 1000);
}

#[multiproc::worker]
fn ping_pong(c: Connection<u64>) {
    while let Ok(x) = c.recv() {
        if c.send(&(x + 1)).is_err() {
            break;
        }
    }
}

/// Both directions of a duplex pipe, with `wait` and `poll` between the messages: every
/// message is seen, no wake-up is lost.
#[test]
fn duplex_ping_pong_with_wait_and_poll() {
    let (mine, theirs) = pipe::<u64>().unwrap();
    let mut p = Reap(Process::new(ping_pong(theirs)).start().unwrap());
    let mut x = 0u64;
    for i in 0..2000u64 {
        mine.send(&x).unwrap();
        if i % 3 == 0 {
            let objs: [&dyn multiproc::Waitable; 1] = [&mine];
            assert_eq!(multiproc::wait(&objs, Some(LONG)).unwrap(), vec![0]);
        } else if i % 3 == 1 {
            assert!(mine.poll(Some(LONG)).unwrap());
        }
        x = mine.recv_timeout(LONG).unwrap();
        assert_eq!(x, i + 1);
    }
    drop(mine);
    p.0.join_timeout(LONG).unwrap();
}

/// Re-runs this binary's tests on the socket-only path.
#[test]
fn the_socket_transport_passes_these_tests() {
    if socket_only() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--skip", "the_socket_transport_passes_these_tests", "--test-threads=2"])
        .env(TRANSPORT_ENV, "socket")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("test result: ok"), "{text}");
}
