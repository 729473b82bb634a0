//! Queue and Pipe benchmarks (criterion), the Rust side of `benches/python`'s `mailbox_tput`,
//! `queue_2p2c`, `joinable`, `pipe_rt` and `pipe_tput`.
//!
//! Every measurement runs real child processes. Throughput runs time one batch of `iters`
//! messages from the moment the children are ready to the moment the last consumer has the last
//! message, so process start-up is excluded; criterion reports time per message (and
//! messages/s or bytes/s).
//!
//! Run: `cargo bench -p multiproc-benches --bench queue -- --warm-up-time 1 --measurement-time 3`

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use multiproc::{pipe, Connection, JoinableQueue, Pipe, Process, Queue};
use serde_bytes::ByteBuf;

/// Consumer: says it is ready, takes `n` items, says it is done.
#[multiproc::worker]
fn consume(q: Queue<ByteBuf>, n: u64, ctl: Connection<u8>) {
    ctl.send(&0).unwrap();
    for _ in 0..n {
        q.get().unwrap();
    }
    ctl.send(&1).unwrap();
}

/// Consumer until `None`; reports how many it got.
#[multiproc::worker]
fn consume_until_none(q: Queue<Option<ByteBuf>>, ctl: Connection<u64>) {
    ctl.send(&0).unwrap();
    let mut n = 0;
    while q.get().unwrap().is_some() {
        n += 1;
    }
    ctl.send(&n).unwrap();
}

/// Producer: waits for the go, puts `n` items.
#[multiproc::worker]
fn produce(q: Queue<Option<ByteBuf>>, n: u64, size: usize, ctl: Connection<u8>) {
    let item = Some(ByteBuf::from(vec![7u8; size]));
    ctl.send(&0).unwrap();
    ctl.recv().unwrap();
    for _ in 0..n {
        q.put(item.clone()).unwrap();
    }
}

#[multiproc::worker]
fn joinable_consumer(q: JoinableQueue<ByteBuf>, ctl: Connection<u8>) {
    ctl.send(&0).unwrap();
    while q.get().is_ok() {
        q.task_done().unwrap();
    }
}

fn queue_1p1c(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_1p1c");
    for size in [64usize, 4096, 1 << 20] {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("put", size), &size, |b, &size| {
            b.iter_custom(|iters| {
                let q = Queue::<ByteBuf>::new().unwrap();
                let (ctl, child_ctl) = pipe::<u8>().unwrap();
                let mut p = Process::new(consume(q.clone(), iters, child_ctl)).start().unwrap();
                ctl.recv().unwrap();
                let item = ByteBuf::from(vec![7u8; size]);
                let t = Instant::now();
                for _ in 0..iters {
                    q.put(item.clone()).unwrap();
                }
                ctl.recv().unwrap();
                let el = t.elapsed();
                p.join().unwrap();
                el
            })
        });
        if size == 64 {
            g.bench_with_input(BenchmarkId::new("put_many", size), &size, |b, &size| {
                b.iter_custom(|iters| {
                    let q = Queue::<ByteBuf>::new().unwrap();
                    let (ctl, child_ctl) = pipe::<u8>().unwrap();
                    let mut p = Process::new(consume(q.clone(), iters, child_ctl)).start().unwrap();
                    ctl.recv().unwrap();
                    let item = ByteBuf::from(vec![7u8; size]);
                    let t = Instant::now();
                    let mut left = iters;
                    while left > 0 {
                        let k = left.min(256);
                        q.put_many((0..k).map(|_| item.clone())).unwrap();
                        left -= k;
                    }
                    ctl.recv().unwrap();
                    let el = t.elapsed();
                    p.join().unwrap();
                    el
                })
            });
        }
    }
    g.finish();
}

fn queue_2p2c(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_2p2c");
    g.throughput(Throughput::Elements(1));
    g.bench_function("64", |b| {
        b.iter_custom(|iters| {
            let iters = iters.max(2);
            let q = Queue::<Option<ByteBuf>>::new().unwrap();
            let mut consumers = Vec::new();
            let mut cctl = Vec::new();
            for _ in 0..2 {
                let (ctl, child) = pipe::<u64>().unwrap();
                consumers.push(Process::new(consume_until_none(q.clone(), child)).start().unwrap());
                ctl.recv().unwrap();
                cctl.push(ctl);
            }
            let mut producers = Vec::new();
            let mut pctl = Vec::new();
            for _ in 0..2 {
                let (ctl, child) = pipe::<u8>().unwrap();
                producers.push(Process::new(produce(q.clone(), iters / 2, 64, child)).start().unwrap());
                ctl.recv().unwrap();
                pctl.push(ctl);
            }
            let t = Instant::now();
            for c in &pctl {
                c.send(&1).unwrap();
            }
            for p in &mut producers {
                p.join().unwrap();
            }
            q.put(None).unwrap();
            q.put(None).unwrap();
            let total: u64 = cctl.iter().map(|c| c.recv().unwrap()).sum();
            let el = t.elapsed();
            assert_eq!(total, iters / 2 * 2);
            for p in &mut consumers {
                p.join().unwrap();
            }
            el
        })
    });
    g.finish();
}

fn joinable(c: &mut Criterion) {
    let mut g = c.benchmark_group("joinable");
    g.throughput(Throughput::Elements(1));
    g.bench_function("put_get_task_done_join", |b| {
        b.iter_custom(|iters| {
            let q = JoinableQueue::<ByteBuf>::new().unwrap();
            let (ctl, child) = pipe::<u8>().unwrap();
            let mut p = Process::new(joinable_consumer(q.clone(), child)).start().unwrap();
            ctl.recv().unwrap();
            let item = ByteBuf::from(vec![7u8; 64]);
            let t = Instant::now();
            for _ in 0..iters {
                q.put(item.clone()).unwrap();
            }
            q.join().unwrap();
            let el = t.elapsed();
            q.close().unwrap();
            p.join().unwrap();
            el
        })
    });
    g.finish();
}

#[multiproc::worker]
fn echo_bytes(conn: Connection<()>, cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let _ = multiproc::sys::proc::pin_to_cpu(cpu);
    }
    let mut buf = Vec::new();
    while conn.recv_bytes_into(&mut buf).is_ok() {
        conn.send_bytes(&buf).unwrap();
    }
}

#[multiproc::worker]
fn echo_raw(conn: Connection<()>, cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let _ = multiproc::sys::proc::pin_to_cpu(cpu);
    }
    let mut s = UnixStream::from(conn.as_fd().try_clone_to_owned().unwrap());
    drop(conn);
    let mut buf = [0u8; 64];
    while s.read_exact(&mut buf).is_ok() {
        s.write_all(&buf).unwrap();
    }
}

#[multiproc::worker]
fn drain_bytes(r: Connection<()>, n: u64, done: Connection<()>) {
    let mut buf = Vec::new();
    for _ in 0..n {
        r.recv_bytes_into(&mut buf).unwrap();
    }
    done.send(&()).unwrap();
}

fn pipe_oneway(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipe_oneway");
    g.throughput(Throughput::Elements(1));
    g.bench_function("64", |b| {
        b.iter_custom(|iters| {
            let (r, w) = Pipe::simplex::<()>().unwrap();
            let (done, child_done) = pipe::<()>().unwrap();
            let mut p = Process::new(drain_bytes(r, iters, child_done)).start().unwrap();
            let msg = [7u8; 64];
            let t = Instant::now();
            for _ in 0..iters {
                w.send_bytes(&msg).unwrap();
            }
            done.recv().unwrap();
            let el = t.elapsed();
            p.join().unwrap();
            el
        })
    });
    g.finish();
}

fn pipe_rt(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipe_rt");
    // Pinned last: this pins the benchmark's own thread.
    for (label, parent_cpu, child_cpu) in [("same_cpu", 0usize, 0usize), ("diff_cpu", 0, 1)] {
        let _ = multiproc::sys::proc::pin_to_cpu(parent_cpu);
        g.bench_function(BenchmarkId::new("pipe_64B", label), |b| {
            let (mine, theirs) = pipe::<()>().unwrap();
            let mut p = Process::new(echo_bytes(theirs, Some(child_cpu))).start().unwrap();
            let msg = [7u8; 64];
            let mut buf = Vec::new();
            mine.send_bytes(&msg).unwrap();
            mine.recv_bytes_into(&mut buf).unwrap();
            b.iter(|| {
                mine.send_bytes(&msg).unwrap();
                mine.recv_bytes_into(&mut buf).unwrap();
            });
            drop(mine);
            p.join().unwrap();
        });
        g.bench_function(BenchmarkId::new("raw_socketpair_64B", label), |b| {
            let (mine, theirs) = pipe::<()>().unwrap();
            let mut p = Process::new(echo_raw(theirs, Some(child_cpu))).start().unwrap();
            let mut s = UnixStream::from(mine.as_fd().try_clone_to_owned().unwrap());
            drop(mine);
            let msg = [7u8; 64];
            let mut buf = [0u8; 64];
            b.iter(|| {
                s.write_all(&msg).unwrap();
                s.read_exact(&mut buf).unwrap();
            });
            drop(s);
            p.join().unwrap();
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1));
    targets = queue_1p1c, queue_2p2c, joinable, pipe_oneway, pipe_rt
}
criterion_main!(benches);
