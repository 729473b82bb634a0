//! Fuzzing on stable Rust (issue 11, "Fuzzing"): 100,000 random and mutated frames go through
//! the frame decoder and every message decoder of the protocol. Nothing may panic, an oversized
//! length must be refused before anything is allocated for it, and whatever decodes must encode
//! again and decode to the same message. The `fuzz/` crate runs the same checks under
//! libFuzzer (cargo-fuzz, nightly).

use std::fmt::Debug;

use multiproc::wire::manager_ops::{ManagerOp, ManagerReply};
use multiproc::wire::proto::{
    Cast, ChildInit, ExitInfo, FromHub, HubError, ObjId, ObjOp, ObjectKind, Op, ProcId, ProcInfo, TaskSpec,
    ToForkServer, ToHub, Value, Wait,
};
use multiproc::wire::queue_ops::{QueueKind, QueueOp};
use multiproc::wire::sync_ops::{SyncKind, SyncOp, SyncReply};
use multiproc::wire::{decode, encode, FrameDecoder, FrameError, HEADER_LEN};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_bytes::ByteBuf;

/// xorshift64*: deterministic, so a failure names its round.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid frames of every message family, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let info = ProcInfo {
        proc: ProcId(3),
        pid: 4242,
        name: "Process-3".into(),
        daemon: false,
    };
    let b = |s: &[u8]| ByteBuf::from(s.to_vec());
    let obj = ObjId((7 << 32) | 2);
    let calls = [
        Op::Ping,
        Op::NewConn,
        Op::ActiveChildren,
        Op::Join {
            proc: ProcId(3),
            wait: Wait::Micros(1500),
        },
        Op::NewObject {
            kind: ObjectKind::Sync(SyncKind::Semaphore {
                value: 2,
                bound: Some(5),
            }),
            secret: 0xdead_beef,
        },
        Op::NewObject {
            kind: ObjectKind::Queue(QueueKind::Joinable { maxsize: 10 }),
            secret: 1,
        },
        Op::Object {
            obj,
            op: ObjOp::Sync(SyncOp::Acquire {
                thread: 9,
                pid: 4242,
                wait: Wait::Forever,
            }),
        },
        Op::Object {
            obj,
            op: ObjOp::Queue(QueueOp::Get {
                max: 16,
                wait: Wait::Never,
            }),
        },
        Op::Object {
            obj,
            op: ObjOp::Manager(ManagerOp::Get(b(b"key"))),
        },
    ];
    let mut out: Vec<Vec<u8>> = calls
        .into_iter()
        .enumerate()
        .map(|(i, op)| encode(&ToHub::Call { id: i as u64, op }).unwrap())
        .collect();
    let casts = [
        Cast::Send {
            to: ProcId(0),
            payload: b(b"hello"),
        },
        Cast::SendBatch {
            to: ProcId(1),
            payloads: vec![b(b"a"), b(b"bc")],
        },
        Cast::Retain { obj, secret: 77 },
        Cast::Release(obj),
        Cast::Reaped {
            pid: 12,
            exit: ExitInfo::Signaled(9),
        },
        Cast::Object {
            obj,
            op: ObjOp::Queue(QueueOp::Put(vec![b(b"item"), b(&[0; 40])])),
        },
        Cast::Object {
            obj,
            op: ObjOp::OneshotPut {
                token: 5,
                value: b(b"answer"),
            },
        },
    ];
    out.extend(casts.into_iter().map(|c| encode(&ToHub::Cast(c)).unwrap()));
    let init = ChildInit {
        me: info.clone(),
        parent: info.clone(),
        root_pid: 1,
        task: Some(TaskSpec {
            worker: "crate::worker".into(),
            args: b(&[0x91, 0x07]),
            nfds: 2,
        }),
        max_frame: 1 << 26,
        ignore_sigint: true,
        ident: vec![1, 2],
        authkey: b(b"key"),
        ring: 0,
    };
    let from = [
        FromHub::Reply {
            id: 1,
            result: Ok(Value::Procs(vec![info])),
        },
        FromHub::Reply {
            id: 2,
            result: Err(HubError::Gone("gone".into())),
        },
        FromHub::Reply {
            id: 3,
            result: Ok(Value::Sync(SyncReply::Acquired {
                ticket: 3,
                owner_died: true,
            })),
        },
        FromHub::Mail(vec![b(b"m1"), b(b"m2")]),
        FromHub::Init(Box::new(init)),
        FromHub::Stopped("poll failed".into()),
    ];
    out.extend(from.into_iter().map(|m| encode(&m).unwrap()));
    out.push(encode(&ToForkServer::Fork { proc: ProcId(8) }).unwrap());
    out
}

/// One mutation of `frame`, of the kinds a fuzzer tries.
fn mutate(rng: &mut Rng, frame: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut f = frame.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            0 if !f.is_empty() => {
                let i = rng.below(f.len());
                f[i] ^= 1 << rng.below(8);
            }
            1 if !f.is_empty() => {
                let i = rng.below(f.len());
                f[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(f.len() + 1);
                f.insert(i, rng.next() as u8);
            }
            3 if !f.is_empty() => {
                let i = rng.below(f.len());
                f.remove(i);
            }
            4 => f.truncate(rng.below(f.len() + 1)),
            5 => {
                // Splice part of another seed in.
                let other = &seeds[rng.below(seeds.len())];
                let at = rng.below(f.len() + 1);
                let from = rng.below(other.len());
                let to = from + rng.below(other.len() - from + 1);
                f.splice(at..at, other[from..to].iter().copied());
            }
            6 if f.len() > HEADER_LEN => {
                // Interesting MessagePack markers (array32/map32/bin32/str32 with huge lengths).
                let i = HEADER_LEN + rng.below(f.len() - HEADER_LEN);
                let marks = [0xdd, 0xdf, 0xc6, 0xdb, 0xcf, 0xc1, 0xff, 0x9f];
                f[i] = marks[rng.below(marks.len())];
                for b in f.iter_mut().skip(i + 1).take(4) {
                    *b = 0xff;
                }
            }
            _ => {}
        }
    }
    // Usually keep the length header consistent, so that bodies reach the message decoders.
    if f.len() >= HEADER_LEN && rng.below(4) != 0 {
        let len = (f.len() - HEADER_LEN) as u32;
        f[..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    }
    f
}

/// Decoding never panics, and what decodes re-encodes to something that decodes the same.
fn check<T: Serialize + DeserializeOwned + Debug>(body: &[u8]) -> bool {
    match decode::<T>(body) {
        Ok(msg) => {
            let again = encode(&msg).expect("a decoded message must encode");
            let back: T = decode(&again[HEADER_LEN..]).expect("a re-encoded message must decode");
            assert_eq!(
                format!("{msg:?}"),
                format!("{back:?}"),
                "round trip changed the message"
            );
            true
        }
        Err(FrameError::Malformed(_)) => false,
        Err(e) => panic!("unexpected decode error {e}"),
    }
}

/// Every decoder of the protocol, on one body. Returns how many accepted it.
fn decode_all(body: &[u8]) -> usize {
    [
        check::<ToHub>(body),
        check::<FromHub>(body),
        check::<ToForkServer>(body),
        check::<Op>(body),
        check::<Cast>(body),
        check::<ObjOp>(body),
        check::<ObjectKind>(body),
        check::<SyncOp>(body),
        check::<QueueOp>(body),
        check::<ManagerOp>(body),
        check::<SyncReply>(body),
        check::<ManagerReply>(body),
        check::<Value>(body),
        check::<HubError>(body),
        check::<ChildInit>(body),
    ]
    .iter()
    .filter(|&&ok| ok)
    .count()
}

#[test]
fn random_and_mutated_frames_never_panic_the_decoders() {
    const ROUNDS: usize = 100_000;
    const MAX: usize = 1 << 16;
    let seeds = seeds();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut frames, mut accepted, mut oversized) = (0usize, 0usize, 0usize);
    for round in 0..ROUNDS {
        let bytes = if round % 4 == 0 {
            // Pure noise, of any length up to 300 bytes.
            let n = rng.below(300);
            (0..n).map(|_| rng.next() as u8).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed, &seeds)
        };
        // Split the stream at a random point, as a socket read would.
        let cut = rng.below(bytes.len() + 1);
        let mut d = FrameDecoder::new(MAX);
        d.push(&bytes[..cut]);
        let mut bodies = Vec::new();
        loop {
            match d.next_frame() {
                Ok(Some(body)) => bodies.push(body.to_vec()),
                Ok(None) if cut < bytes.len() => {
                    // The rest of the stream arrives (once).
                    d.push(&bytes[cut..]);
                    while let Ok(Some(body)) = d.next_frame() {
                        bodies.push(body.to_vec());
                    }
                    break;
                }
                Ok(None) => break,
                Err(FrameError::Oversized { len, max }) => {
                    assert!(len > max, "round {round}: refused a frame within the limit");
                    oversized += 1;
                    break;
                }
                Err(e) => panic!("round {round}: unexpected frame error {e}"),
            }
        }
        assert!(
            d.buffered() <= bytes.len(),
            "round {round}: the decoder holds more than it was given"
        );
        for body in bodies {
            frames += 1;
            accepted += decode_all(&body);
        }
    }
    // The mutations must reach the decoders, and some must still be valid messages.
    assert!(frames > ROUNDS / 3, "only {frames} frames reached the decoders");
    assert!(
        accepted > 1000,
        "only {accepted} decodes succeeded: the seeds are not reaching the decoders"
    );
    assert!(oversized > 100, "only {oversized} oversized lengths were tried");
    println!("{ROUNDS} inputs, {frames} frames decoded 15 ways, {accepted} accepted, {oversized} oversized");
}
