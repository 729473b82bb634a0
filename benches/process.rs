//! Process and mailbox benchmarks (issue 2), with the physical floors measured in the same run.
//!
//! - `start_join/<method>`: start a process that does nothing, and join it.
//! - `floor_rt/{direct,relayed}/{same,diff}`: a 64-byte ping-pong over raw socketpairs between
//!   two processes, directly and relayed through a third process (the floor of any brokered
//!   design). `same`: every process on CPU 0; `diff`: the initiator (and relay) on CPU 0, the
//!   echoer on CPU 1.
//! - `floor_rt/shm_futex/{same,diff}` (issue 10): the same ping-pong through two words of shared
//!   memory, each side sleeping in `futex` wait and woken by `futex` wake: the floor of a
//!   shared-memory transport that sleeps when idle.
//! - `mailbox_rt/{same,diff}`: send a 64-byte message to a child's mailbox, the child sends it
//!   back to ours. Same placements (the hub thread counts as the relay, pinned with the root).
//! - `mailbox_oneway`: 64-byte messages sent one `send` at a time to a child that counts them
//!   (throughput, unpinned); `mailbox_oneway_batched` sends them with `send_all` in 256s.
//!
//! Run: `cargo bench -p multiproc-benches --bench process`. Numbers and the comparison with Python are in
//! `benches/RESULTS.md` (`benches/compare.sh` runs both sides).

use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use multiproc::{mailbox, Addr, Process, StartMethod};
use serde_bytes::ByteBuf;

const MSG: usize = 64;

#[multiproc::worker]
fn noop() {}

fn start_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("start_join");
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    for m in [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork] {
        // Warm up (the fork server starts on first use).
        Process::new(noop()).start_method(m).start().unwrap().join().unwrap();
        g.bench_function(BenchmarkId::from_parameter(format!("{m:?}").to_lowercase()), |b| {
            b.iter(|| Process::new(noop()).start_method(m).start().unwrap().join().unwrap())
        });
    }
    g.finish();
}

fn pin(cpu: usize) {
    let _ = multiproc::sys::proc::pin_to_cpu(cpu);
}

fn read_exact(fd: &OwnedFd, buf: &mut [u8]) -> bool {
    let mut q = std::collections::VecDeque::new();
    let mut got = 0;
    while got < buf.len() {
        match multiproc::sys::io::recv_with_fds(fd.as_fd(), &mut buf[got..], &mut q) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    true
}

fn write_all(fd: &OwnedFd, buf: &[u8]) -> bool {
    multiproc::sys::io::send_vectored(fd.as_fd(), &[IoSlice::new(buf)], &[]).is_ok_and(|n| n == buf.len())
        || multiproc::sys::io::send_all(fd.as_fd(), buf, &[]).is_ok()
}

/// First byte of the message that ends an echo or relay loop. (A `Fork` child inherits every
/// descriptor of the parent, the other end included, so it would never see EOF.)
const STOP: u8 = 0xff;

/// An echo loop on a raw socket: read 64 bytes, write them back, until told to stop.
fn echo(fd: OwnedFd) {
    let mut buf = [0u8; MSG];
    while read_exact(&fd, &mut buf) && buf[0] != STOP {
        if !write_all(&fd, &buf) {
            break;
        }
    }
}

/// A relay: forward each 64-byte message from `a` to `b` and the answer back.
fn relay(a: OwnedFd, b: OwnedFd) {
    let mut buf = [0u8; MSG];
    while read_exact(&a, &mut buf) {
        if buf[0] == STOP {
            write_all(&b, &buf);
            break;
        }
        if !write_all(&b, &buf) || !read_exact(&b, &mut buf) || !write_all(&a, &buf) {
            break;
        }
    }
}

fn unpin_all() {
    let all: Vec<usize> = (0..multiproc::cpu_count()).collect();
    let _ = multiproc::sys::proc::pin_to_cpu_set(&all);
    let _ = multiproc::runtime::pin_hub(None);
}

fn placement(name: &str) -> (usize, usize) {
    if name == "same" {
        (0, 0)
    } else {
        (0, 1)
    }
}

fn floors(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor_rt");
    g.sample_size(50).measurement_time(Duration::from_secs(3));
    for place in ["same", "diff"] {
        let (near, far) = placement(place);
        // Direct: this process <-> echoer.
        let (mine, theirs) = multiproc::sys::fd::socketpair().unwrap();
        let mut echoer = Process::fork(move || {
            pin(far);
            echo(theirs);
        })
        .start()
        .unwrap();
        pin(near);
        let mut buf = [7u8; MSG];
        g.bench_function(BenchmarkId::new("direct", place), |b| {
            b.iter(|| {
                write_all(&mine, &buf);
                read_exact(&mine, &mut buf);
            })
        });
        write_all(&mine, &[STOP; MSG]);
        echoer.join().unwrap();

        // Relayed: this process <-> relay <-> echoer.
        let (mine, relay_a) = multiproc::sys::fd::socketpair().unwrap();
        let (relay_b, theirs) = multiproc::sys::fd::socketpair().unwrap();
        let mut echoer = Process::fork(move || {
            pin(far);
            echo(theirs);
        })
        .start()
        .unwrap();
        let mut relayer = Process::fork(move || {
            pin(near);
            relay(relay_a, relay_b);
        })
        .start()
        .unwrap();
        g.bench_function(BenchmarkId::new("relayed", place), |b| {
            b.iter(|| {
                write_all(&mine, &buf);
                read_exact(&mine, &mut buf);
            })
        });
        write_all(&mine, &[STOP; MSG]);
        relayer.join().unwrap();
        echoer.join().unwrap();
    }
    for place in ["same", "diff"] {
        let (near, far) = placement(place);
        shm_futex_floor(&mut g, place, near, far);
    }
    g.finish();
    unpin_all();
}

/// A ping-pong through shared memory with futex wake-ups: this process writes the sequence
/// number into `ping` and wakes the echoer, which copies it into `pong` and wakes us.
fn shm_futex_floor(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    place: &str,
    near: usize,
    far: usize,
) {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    const STOP_SEQ: u32 = u32::MAX;
    let fd = multiproc::sys::mem::shared_memory("bench-futex", 4096).unwrap();
    let map = Arc::new(multiproc::sys::mem::Mapping::new(fd.as_fd(), 4096).unwrap());
    let word = |m: &multiproc::sys::mem::Mapping, off: usize| -> &'static AtomicU32 {
        // SAFETY: the mapping is 4096 bytes, page-aligned, and lives (in an Arc held by both
        // sides, or inherited by the forked child) for as long as the loops that use it.
        unsafe { &*(m.as_ptr().add(off) as *const AtomicU32) }
    };
    let (ping, pong) = (word(&map, 0), word(&map, 64));
    ping.store(0, Ordering::SeqCst);
    pong.store(0, Ordering::SeqCst);
    let child_map = map.clone();
    let mut echoer = Process::fork(move || {
        pin(far);
        let _keep = child_map;
        let mut last = 0;
        loop {
            let mut v = ping.load(Ordering::Acquire);
            while v == last {
                multiproc::sys::futex::wait(ping, last, Some(Duration::from_secs(5)));
                v = ping.load(Ordering::Acquire);
            }
            last = v;
            if v == STOP_SEQ {
                break;
            }
            pong.store(v, Ordering::Release);
            multiproc::sys::futex::wake(pong, 1);
        }
    })
    .start()
    .unwrap();
    pin(near);
    let mut seq = 0u32;
    g.bench_function(BenchmarkId::new("shm_futex", place), |b| {
        b.iter(|| {
            seq += 1;
            ping.store(seq, Ordering::Release);
            multiproc::sys::futex::wake(ping, 1);
            let mut v = pong.load(Ordering::Acquire);
            while v != seq {
                multiproc::sys::futex::wait(pong, v, Some(Duration::from_secs(5)));
                v = pong.load(Ordering::Acquire);
            }
        })
    });
    ping.store(STOP_SEQ, Ordering::Release);
    multiproc::sys::futex::wake(ping, 1);
    echoer.join().unwrap();
    drop(map);
}

#[multiproc::worker]
fn mailbox_echo(to: Addr<ByteBuf>, cpu: Option<usize>) {
    if let Some(c) = cpu {
        pin(c);
    }
    let inbox = mailbox::<ByteBuf>();
    while let Ok(m) = inbox.recv() {
        if m.is_empty() {
            return;
        }
        to.send(&m).unwrap();
    }
}

fn mailbox_rt(c: &mut Criterion) {
    let mut g = c.benchmark_group("mailbox_rt");
    g.sample_size(50).measurement_time(Duration::from_secs(3));
    let me = multiproc::current_process().addr::<ByteBuf>();
    let inbox = mailbox::<ByteBuf>();
    for place in ["same", "diff"] {
        let (near, far) = placement(place);
        multiproc::runtime::pin_hub(Some(near)).unwrap();
        pin(near);
        let mut child = Process::new(mailbox_echo(me.clone(), Some(far))).start().unwrap();
        let to = child.addr::<ByteBuf>();
        let msg = ByteBuf::from(vec![7u8; MSG]);
        g.bench_function(BenchmarkId::from_parameter(place), |b| {
            b.iter(|| {
                to.send(&msg).unwrap();
                inbox.recv().unwrap()
            })
        });
        to.send(&ByteBuf::new()).unwrap();
        child.join().unwrap();
    }
    g.finish();
    unpin_all();
}

#[multiproc::worker]
fn mailbox_counter(to: Addr<u64>, expect: u64) {
    let inbox = mailbox::<ByteBuf>();
    let mut n = 0;
    while n < expect {
        inbox.recv().unwrap();
        n += 1;
    }
    to.send(&n).unwrap();
}

fn mailbox_oneway(c: &mut Criterion) {
    let mut g = c.benchmark_group("mailbox_oneway");
    const N: u64 = 20_000;
    g.throughput(Throughput::Elements(N))
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let me = multiproc::current_process().addr::<u64>();
    let done = mailbox::<u64>();
    let msg = ByteBuf::from(vec![7u8; MSG]);
    for batched in [false, true] {
        let name = if batched { "send_all_256" } else { "send" };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut child = Process::new(mailbox_counter(me.clone(), N)).start().unwrap();
                    let to = child.addr::<ByteBuf>();
                    let t = Instant::now();
                    if batched {
                        let batch: Vec<ByteBuf> = (0..256).map(|_| msg.clone()).collect();
                        let mut sent = 0;
                        while sent < N {
                            let k = (N - sent).min(256) as usize;
                            to.send_all(&batch[..k]).unwrap();
                            sent += k as u64;
                        }
                    } else {
                        for _ in 0..N {
                            to.send(&msg).unwrap();
                        }
                    }
                    assert_eq!(done.recv().unwrap(), N);
                    total += t.elapsed();
                    child.join().unwrap();
                }
                total
            })
        });
    }
    g.finish();
}

fn hub_ping(c: &mut Criterion) {
    let mut g = c.benchmark_group("hub_ping");
    g.sample_size(50).measurement_time(Duration::from_secs(2));
    for place in ["same", "diff"] {
        let (near, far) = placement(place);
        multiproc::runtime::pin_hub(Some(near)).unwrap();
        pin(far);
        g.bench_function(BenchmarkId::from_parameter(place), |b| {
            b.iter(|| multiproc::runtime::ping_hub().unwrap())
        });
    }
    g.finish();
    unpin_all();
}

criterion_group!(benches, start_join, floors, hub_ping, mailbox_rt, mailbox_oneway);
criterion_main!(benches);
