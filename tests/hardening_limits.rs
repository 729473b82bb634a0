//! Bounds on what one child can make the root hold (issue 11, item 12), each configurable with
//! `set_hub_limits` (set here, small, in a helper root of its own): connections per process,
//! reply bytes buffered per connection, mailbox bytes per process, and a timeout for a frame
//! that never completes. At each limit there is a clear error or backpressure, and nothing that
//! was accepted is lost.

mod common;

use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{helper_root, is_helper, KillOnDrop};
use multiproc::pipe::{pipe, Connection};
use multiproc::wire::proto::{Op, ToHub};
use multiproc::{mailbox, Addr, HubLimits, Process, SendError};
use serde_bytes::ByteBuf;

const MAX_CONNS: usize = 8;

/// Opens connections on 12 threads at once; returns (how many worked, the errors).
#[multiproc::worker]
fn many_threads() -> (usize, Vec<String>) {
    let all = std::sync::Arc::new(std::sync::Barrier::new(12));
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let all = all.clone();
            std::thread::spawn(move || {
                let r = multiproc::runtime::ping_hub().map_err(|e| e.to_string());
                // Keep every thread (and its connection) alive until all have tried.
                all.wait();
                r
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // The process itself still works.
    multiproc::runtime::ping_hub().unwrap();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    (ok, results.into_iter().filter_map(|r| r.err()).collect())
}

/// Sends `n` messages of 64 KiB to `to`, reporting on `progress` how many have been sent.
#[multiproc::worker]
fn send_mail(to: Addr<ByteBuf>, n: u32, progress: Connection<u32>) {
    for i in 0..n {
        let mut m = vec![0u8; 64 << 10];
        m[..4].copy_from_slice(&i.to_le_bytes());
        to.send(&ByteBuf::from(m)).unwrap();
        let _ = progress.send(&(i + 1));
    }
}

/// Writes `Ping` calls without reading a reply until the hub stops taking them (or `cap` bytes
/// went out); returns the bytes written. Then reads the replies and checks it can write again.
#[multiproc::worker]
fn ping_flood(cap: usize) -> (usize, bool) {
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    multiproc::sys::fd::set_nonblocking(conn.as_fd(), true).unwrap();
    let mut batch = Vec::new();
    for id in 0..4096u64 {
        batch.extend(multiproc::wire::encode(&ToHub::Call { id, op: Op::Ping }).unwrap());
    }
    let mut written = 0usize;
    let mut stuck_since: Option<Instant> = None;
    let mut at = 0usize;
    while written < cap {
        match multiproc::sys::io::send_vectored(conn.as_fd(), &[std::io::IoSlice::new(&batch[at..])], &[]) {
            Ok(n) => {
                written += n;
                at = (at + n) % batch.len();
                stuck_since = None;
            }
            Err(multiproc::sys::Errno::EAGAIN) => {
                let s = *stuck_since.get_or_insert_with(Instant::now);
                if s.elapsed() > Duration::from_secs(2) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    // Read replies for a while: the hub then takes requests again.
    let mut f = std::fs::File::from(conn.try_clone().unwrap());
    let mut buf = vec![0u8; 1 << 20];
    let mut can_write_again = false;
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end && !can_write_again {
        let _ = f.read(&mut buf);
        if let Ok(n) = multiproc::sys::io::send_vectored(conn.as_fd(), &[std::io::IoSlice::new(&batch[at..])], &[]) {
            at = (at + n) % batch.len();
            can_write_again = n > 0;
        }
    }
    (written, can_write_again)
}

/// Leaves a frame incomplete; returns how long until the hub dropped the connection (None:
/// it did not within 30 s).
#[multiproc::worker]
fn partial_frame() -> Option<u64> {
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    let mut frame = 100u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0x92; 10]);
    multiproc::sys::io::send_all(conn.as_fd(), &frame, &[]).unwrap();
    let t = Instant::now();
    multiproc::sys::io::set_recv_timeout(conn.as_fd(), Some(Duration::from_secs(30))).unwrap();
    let mut f = std::fs::File::from(conn);
    let mut buf = [0u8; 16];
    match f.read(&mut buf) {
        Ok(0) => Some(t.elapsed().as_millis() as u64),
        _ => None,
    }
}

#[test]
#[ignore = "helper root for the_hub_limits_hold"]
fn helper_limits() {
    if !is_helper("helper_limits") {
        return;
    }
    multiproc::set_hub_limits(HubLimits {
        max_connections_per_process: MAX_CONNS,
        max_buffered_per_connection: 1 << 20,
        max_mailbox_bytes: 1 << 20,
        frame_timeout: Duration::from_secs(2),
        ..HubLimits::default()
    });

    // Connections per process.
    let mut p = Process::new(many_threads()).start().unwrap();
    let (ok, errs) = p.join_timeout(Duration::from_secs(60)).unwrap();
    assert!((1..12).contains(&ok), "{ok} threads got connections; errors: {errs:?}");
    assert!(
        errs.iter()
            .all(|e| e.contains("too many connections") && e.contains("max_connections_per_process")),
        "{errs:?}"
    );
    println!("CONNS ok={ok} refused={}", errs.len());

    // Mailbox bytes: 16 MiB of mail to a root that does not receive yet.
    let n = 256u32;
    let (mine, theirs) = pipe::<u32>().unwrap();
    let me = multiproc::current_process().addr::<ByteBuf>();
    let mut sender = Process::new(send_mail(me, n, theirs)).start().unwrap();
    let mut sent = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        while let Ok(k) = mine.try_recv() {
            sent = k;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        sent < n,
        "all {n} messages were accepted by a full mailbox: no backpressure"
    );
    assert!(sender.is_alive(), "the blocked sender was treated as dead");
    // The forms with a deadline fail with `Full` and send nothing.
    let me = multiproc::current_process().addr::<ByteBuf>();
    let small = ByteBuf::from(vec![1u8, 2, 3]);
    assert!(matches!(me.try_send(&small), Err(SendError::Full)));
    let t = Instant::now();
    let r = me.send_timeout(&small, Duration::from_millis(500));
    assert!(matches!(r, Err(SendError::Full)), "{r:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "gave up after {:?}",
        t.elapsed()
    );
    // Receiving lets the sender go on; every message arrives, in order.
    let inbox = mailbox::<ByteBuf>();
    for i in 0..n {
        let m = inbox.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(u32::from_le_bytes([m[0], m[1], m[2], m[3]]), i);
    }
    sender.join_timeout(Duration::from_secs(60)).unwrap();
    // With room again, `send_timeout` delivers (and only this one message arrives).
    me.send_timeout(&small, Duration::from_secs(30)).unwrap();
    assert_eq!(inbox.recv_timeout(Duration::from_secs(30)).unwrap(), small);
    assert!(inbox.try_recv().is_err());
    println!("MAIL blocked at {sent} of {n}");

    // Reply bytes per connection: a client that never reads its replies is not read either.
    let cap = 64 << 20;
    let mut p = Process::new(ping_flood(cap)).start().unwrap();
    let (written, again) = p.join_timeout(Duration::from_secs(120)).unwrap();
    assert!(
        written < 16 << 20,
        "the hub kept reading {written} bytes of requests whose replies nobody read"
    );
    assert!(
        again,
        "the hub did not read the connection again once its replies were taken"
    );
    multiproc::runtime::ping_hub().unwrap();
    println!("PINGS stopped after {written} bytes");

    // A frame that never completes.
    let mut p = Process::new(partial_frame()).start().unwrap();
    let took = p.join_timeout(Duration::from_secs(60)).unwrap();
    let ms = took.expect("the hub kept a connection with an incomplete frame open for 30 s");
    assert!(ms >= 1900, "dropped after {ms} ms, before the 2 s timeout");
    println!("PARTIAL dropped after {ms} ms");
    println!("HELPER OK");
}

/// Before the fix: every thread got a connection, all 256 messages went into a mailbox nobody
/// read (and there was no `try_send`/`send_timeout`), the hub read pings without limit, and an incomplete frame was kept forever.
#[test]
fn the_hub_limits_hold() {
    let mut root = helper_root("helper_limits");
    let mut guard = KillOnDrop::default();
    guard.add(-(root.id() as i32));
    let mut out = String::new();
    root.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    root.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = root.wait().unwrap();
    assert!(
        status.success() && out.contains("HELPER OK"),
        "{status:?}\nstdout: {out}\nstderr: {err}"
    );
}
