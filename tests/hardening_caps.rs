//! The capability check (issue 11, item 11): a process may use a hub object only if it holds a
//! handle to it. A child given no handles, which forges them from guessed ids, can neither take
//! a Queue's items, nor release a Lock the root holds, nor answer someone else's `ask`; handed
//! handles and handles created by the process keep working.

mod common;

use std::time::Duration;

use multiproc::sync::{Event, Lock};
use multiproc::{Process, Queue};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The wire form of a handle with its secret replaced: what a child that knows (or guessed)
/// only the object's id can build. Serialising marks a handle as in flight, and decoding the
/// bytes right back (as a second local handle) settles that again.
fn forged_bytes<H: Serialize + DeserializeOwned>(h: &H) -> Vec<u8> {
    let bytes = rmp_serde::to_vec(h).unwrap();
    let copy: H = rmp_serde::from_slice(&bytes).unwrap();
    drop(copy);
    // Every handle's form starts with its object reference, `(id, secret)`.
    let (_, secret): (u64, u64) = first_field(&bytes);
    let real = rmp_serde::to_vec(&secret).unwrap();
    let fake = rmp_serde::to_vec(&(secret ^ 0x5a5a)).unwrap();
    assert_eq!(real.len(), fake.len());
    let at = bytes.windows(real.len()).position(|w| w == real.as_slice()).unwrap();
    let mut out = bytes.clone();
    out[at..at + real.len()].copy_from_slice(&fake);
    out
}

/// Decodes the first field of a serialised handle (ignoring the rest).
fn first_field<F: DeserializeOwned>(bytes: &[u8]) -> F {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)] // the other fields are only skipped over
    struct First<F>(
        F,
        #[serde(default)] Option<serde::de::IgnoredAny>,
        #[serde(default)] Option<serde::de::IgnoredAny>,
    );
    let First(f, _, _): First<F> = rmp_serde::from_slice(bytes).unwrap();
    f
}

/// Uses handles forged from ids without their secrets (as a hostile child can: ids are
/// `(generation << 32) | slot`), for the given objects and for the ids around them. Returns
/// what worked.
#[multiproc::worker]
fn forge_and_probe(queue: Vec<u8>, lock: Vec<u8>, event: Vec<u8>) -> Vec<String> {
    let mut worked = Vec::new();
    if let Ok(q) = rmp_serde::from_slice::<Queue<u32>>(&queue) {
        if let Ok(item) = q.get_timeout(Duration::from_millis(200)) {
            worked.push(format!("took item {item} from the root's queue"));
        }
        // A put is one-way: it "succeeds" locally; the root checks that nothing arrived.
        let _ = q.put(666);
    }
    if let Ok(l) = rmp_serde::from_slice::<Lock>(&lock) {
        if l.release().is_ok() {
            worked.push("released the root's lock".into());
        }
    }
    // Probe the neighbourhood of the event's id, as the prober did.
    let ((id, _),): ((u64, u64),) = rmp_serde::from_slice(&event).unwrap_or(((0, 0),));
    for delta_gen in 0..4u64 {
        for slot in 0..32u64 {
            let guess = (id & !0xffff_ffff).wrapping_add(delta_gen << 32) | slot;
            let bytes = rmp_serde::to_vec(&((guess, 0u64),)).unwrap();
            if let Ok(e) = rmp_serde::from_slice::<Event>(&bytes) {
                if e.set().is_ok() {
                    worked.push(format!("set event {guess:#x}"));
                }
            }
        }
    }
    worked
}

#[multiproc::worker]
fn use_handed(q: Queue<u32>, lock: Lock) -> u32 {
    // Handed handles work, and so do objects this process creates itself.
    let own = Lock::new().unwrap();
    drop(own.acquire().unwrap());
    let g = lock.acquire_timeout(Duration::from_secs(20)).unwrap().expect("lock");
    let v = q.get_timeout(Duration::from_secs(20)).unwrap();
    drop(g);
    v
}

/// Before the fix every forged handle worked: the child took the item, released the root's
/// lock and set the event (there was no check at all).
#[test]
fn forged_handles_are_unknown_objects() {
    let q: Queue<u32> = Queue::new().unwrap();
    q.put(1).unwrap();
    let lock = Lock::new().unwrap();
    let held = lock.acquire().unwrap();
    let event = Event::new().unwrap();
    let mut p = Process::new(forge_and_probe(
        forged_bytes(&q),
        forged_bytes(&lock),
        forged_bytes(&event),
    ))
    .start()
    .unwrap();
    let worked = p.join_timeout(Duration::from_secs(60)).unwrap();
    assert!(
        worked.is_empty(),
        "a child without handles used the root's objects: {worked:?}"
    );
    assert_eq!(
        q.get_timeout(Duration::from_secs(5)).unwrap(),
        1,
        "the root's item was taken"
    );
    assert!(
        q.get_timeout(Duration::from_millis(200)).is_err(),
        "a forged put arrived"
    );
    assert!(lock.locked().unwrap(), "the root's lock was released");
    assert!(!event.is_set().unwrap(), "the event was set");
    drop(held);

    // The same objects, handed over properly, work.
    q.put(5).unwrap();
    let mut p = Process::new(use_handed(q.clone(), lock.clone())).start().unwrap();
    assert_eq!(p.join_timeout(Duration::from_secs(60)).unwrap(), 5);
}

/// Tries to create Managers under the root's keys (squatting the keys the root's next
/// `Manager::new` will use); returns how many the hub accepted.
#[multiproc::worker]
fn squat_manager_keys(n: u64) -> u64 {
    use multiproc::wire::manager_ops::{GroupKey, ManagerKind};
    use multiproc::wire::proto::{FromHub, ObjectKind, Op, ToHub};
    use std::io::Read;
    use std::os::fd::AsFd;
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    let mut out = Vec::new();
    for seq in 0..n {
        let op = Op::NewObject {
            kind: ObjectKind::Manager(ManagerKind::Group(GroupKey { proc: 0, seq })),
            secret: 1,
        };
        out.extend(multiproc::wire::encode(&ToHub::Call { id: seq, op }).unwrap());
    }
    multiproc::sys::io::send_all(conn.as_fd(), &out, &[]).unwrap();
    let mut f = std::fs::File::from(conn);
    let mut dec = multiproc::wire::FrameDecoder::new(1 << 20);
    let (mut answered, mut accepted) = (0, 0);
    let mut buf = vec![0u8; 1 << 16];
    while answered < n {
        let k = f.read(&mut buf).unwrap();
        assert!(k > 0, "the hub closed the connection");
        dec.push(&buf[..k]);
        while let Ok(Some(body)) = dec.next_frame() {
            if let Ok(FromHub::Reply { result, .. }) = multiproc::wire::decode::<FromHub>(body) {
                answered += 1;
                accepted += u64::from(result.is_ok());
            }
        }
    }
    accepted
}

/// A child cannot create Managers under the root's keys (before the fix it could, and the
/// root's next `Manager::new` failed with "a Manager with this key already exists").
#[test]
fn a_child_cannot_squat_the_roots_manager_keys() {
    let mut p = Process::new(squat_manager_keys(64)).start().unwrap();
    assert_eq!(p.join_timeout(Duration::from_secs(60)).unwrap(), 0);
    let m = multiproc::Manager::new().expect("the root's Manager key was taken");
    m.shutdown().unwrap();
}

/// One raw call on a connection of this process's own (as a hostile child can make).
fn raw_call(
    conn: &std::os::fd::OwnedFd,
    op: multiproc::wire::proto::Op,
) -> Result<multiproc::wire::proto::Value, multiproc::wire::proto::HubError> {
    use multiproc::wire::proto::{FromHub, ToHub};
    use std::io::Read;
    use std::os::fd::AsFd;
    let frame = multiproc::wire::encode(&ToHub::Call { id: 1, op }).unwrap();
    multiproc::sys::io::send_all(conn.as_fd(), &frame, &[]).unwrap();
    let mut f = std::fs::File::from(conn.try_clone().unwrap());
    let mut dec = multiproc::wire::FrameDecoder::new(1 << 20);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if let Ok(Some(body)) = dec.next_frame() {
            match multiproc::wire::decode::<FromHub>(body) {
                Ok(FromHub::Reply { result, .. }) => return result,
                other => panic!("unexpected frame {other:?}"),
            }
        }
        let k = f.read(&mut buf).unwrap();
        assert!(k > 0, "the hub closed the connection");
        dec.push(&buf[..k]);
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Question(multiproc::ReplyTo<u32>);

/// Answers one question, after trying to take over the asker's reply slot (its id is in the
/// question) and to use a handed Lock and made-up ids as reply slots. Returns what the hub
/// said to each attempt.
#[multiproc::worker]
fn hijack_reply_slot(lock: Lock) -> Vec<String> {
    use multiproc::wire::proto::{AskTo, ObjId, Op, Wait};
    let Question(reply) = multiproc::mailbox::<Question>().recv().unwrap();
    let (slot, _token): (u64, u64) = rmp_serde::from_slice(&rmp_serde::to_vec(&reply).unwrap()).unwrap();
    let lock_id: (u64, u64) = first_field(&rmp_serde::to_vec(&lock).unwrap());
    let conn = multiproc::runtime::raw_hub_connection().unwrap();
    let mut said = Vec::new();
    for (what, slot, to) in [
        ("the asker's slot", slot, AskTo::Proc(multiproc::observe::ProcId(0))),
        ("a handed Lock", lock_id.0, AskTo::Proc(multiproc::observe::ProcId(0))),
        (
            "a made-up id",
            0x7777_0000_1234,
            AskTo::Proc(multiproc::observe::ProcId(0)),
        ),
        ("a name nobody has", slot, AskTo::Name("nobody-has-this-name".into())),
    ] {
        let op = Op::Ask {
            to,
            payload: serde_bytes::ByteBuf::from(vec![0xc0]),
            nfds: 0,
            slot: ObjId(slot),
            token: 42,
            wait: Wait::Never,
        };
        said.push(format!("{what}: {:?}", raw_call(&conn, op)));
    }
    reply.send(&7).unwrap();
    said
}

/// An `Op::Ask` can re-arm only a reusable reply slot of the caller's own: not the slot of the
/// process that asked it (whose id is in the question), not another kind of object, not an id
/// it made up. The real answer still reaches the asker.
#[test]
fn a_child_cannot_take_over_another_processs_reply_slot() {
    let lock = Lock::new().unwrap();
    let mut p = Process::new(hijack_reply_slot(lock.clone())).start().unwrap();
    let got: u32 = p
        .addr::<Question>()
        .ask_timeout(Question, Duration::from_secs(60))
        .unwrap();
    assert_eq!(got, 7);
    let said = p.join_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(said.len(), 4, "{said:?}");
    assert!(said[0].contains("UnknownObject"), "{said:?}");
    assert!(said[1].contains("WrongKind"), "{said:?}");
    assert!(said[2].contains("UnknownObject"), "{said:?}");
    assert!(said[3].contains("NoProc"), "{said:?}");
}
