//! Fault tests of the `.await` forms (feature `tokio`): `Cast::Cancel` on raw connections
//! (per connection and per id, at most one reply per call), a child SIGKILLed inside
//! `get_async` (no item goes to the dead), a lock holder SIGKILLed while an async waiter waits.

#[path = "../common/mod.rs"]
mod common;
use common::Reap;

use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use multiproc::sync::{Event, Lock};
use multiproc::wire::proto::{Cast, FromHub, HubError, Op, ToHub, Wait};
use multiproc::{pipe, Connection, Process, Queue};

/// Kills and reaps a child when the test ends, even if it fails.
#[multiproc::worker]
fn sleep_long() {
    std::thread::sleep(Duration::from_secs(60));
}

/// Reads frames from a raw connection until one arrives or `timeout` passes.
fn read_reply(f: &mut std::fs::File, timeout: Duration) -> Option<FromHub> {
    multiproc::sys::io::set_recv_timeout(f.as_fd(), Some(timeout)).unwrap();
    let mut dec = multiproc::wire::FrameDecoder::new(1 << 20);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if let Ok(Some(body)) = dec.next_frame() {
            return Some(multiproc::wire::decode::<FromHub>(body).unwrap());
        }
        match f.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(k) => dec.push(&buf[..k]),
        }
    }
}

fn send(f: &std::fs::File, msg: &ToHub) {
    let bytes = multiproc::wire::encode(msg).unwrap();
    multiproc::sys::io::send_all(f.as_fd(), &bytes, &[]).unwrap();
}

#[test]
fn cancel_reaches_only_its_own_call_and_a_call_gets_one_reply() {
    let p = Reap(Process::new(sleep_long()).start().unwrap());
    let mut a = std::fs::File::from(multiproc::runtime::raw_hub_connection().unwrap());
    let b = std::fs::File::from(multiproc::runtime::raw_hub_connection().unwrap());
    let join = Op::Join {
        proc: p.0.proc_id(),
        wait: Wait::Forever,
    };
    send(&a, &ToHub::Call { id: 1, op: join });
    // Another connection's Cancel with the same id, and a wrong id here: nothing happens.
    send(&b, &ToHub::Cast(Cast::Cancel(1)));
    send(&a, &ToHub::Cast(Cast::Cancel(2)));
    assert!(read_reply(&mut a, Duration::from_millis(300)).is_none(), "still parked");
    send(&a, &ToHub::Cast(Cast::Cancel(1)));
    match read_reply(&mut a, Duration::from_secs(30)) {
        Some(FromHub::Reply { id: 1, result }) => assert_eq!(result.unwrap_err(), HubError::Cancelled),
        other => panic!("expected the cancelled reply, got {other:?}"),
    }
    // A call answered already: its Cancel adds no reply; the next call's reply comes next.
    send(&a, &ToHub::Call { id: 3, op: Op::Ping });
    assert!(matches!(
        read_reply(&mut a, Duration::from_secs(30)),
        Some(FromHub::Reply { id: 3, .. })
    ));
    send(&a, &ToHub::Cast(Cast::Cancel(3)));
    send(&a, &ToHub::Call { id: 4, op: Op::Ping });
    assert!(matches!(
        read_reply(&mut a, Duration::from_secs(30)),
        Some(FromHub::Reply { id: 4, .. })
    ));
    // The process is still running and joinable by the normal path.
    assert!(p.0.is_alive());
}

/// Runs a current-thread runtime that waits in `get_async` (says so first).
#[multiproc::worker]
fn async_getter(q: Queue<u32>, ready: Connection<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        ready.send(&1).unwrap();
        let _ = q.get_async().await;
    });
}

#[test]
fn a_child_killed_inside_get_async_takes_no_item() {
    let q = Queue::<u32>::new().unwrap();
    let (mine, theirs) = pipe::<u8>().unwrap();
    let mut c = Reap(Process::new(async_getter(q.clone(), theirs)).start().unwrap());
    assert_eq!(mine.recv_timeout(Duration::from_secs(30)).unwrap(), 1);
    std::thread::sleep(Duration::from_millis(300)); // parked in the hub by now
    c.0.kill().unwrap();
    let _ = c.0.join_timeout(Duration::from_secs(30));
    q.put(7).unwrap();
    assert_eq!(
        q.get_timeout(Duration::from_secs(30)).unwrap(),
        7,
        "the dead waiter got nothing"
    );
}

#[multiproc::worker]
fn hold_forever(lock: Lock, held: Event) {
    let _g = lock.acquire().unwrap();
    held.set().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[tokio::test(flavor = "current_thread")]
async fn a_lock_holder_killed_hands_the_lock_to_an_async_waiter() {
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let c = Reap(Process::new(hold_forever(lock.clone(), held.clone())).start().unwrap());
    held.wait_async().await.unwrap();
    let waiter = async {
        let g = lock.acquire_async().await.unwrap();
        g.previous_owner_died()
    };
    let killer = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.0.kill().unwrap();
    };
    let (died, ()) = tokio::join!(
        async { tokio::time::timeout(Duration::from_secs(30), waiter).await.unwrap() },
        killer
    );
    assert!(died, "the waiter is told the previous owner died");
}
