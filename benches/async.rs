//! `.await` forms against the blocking ones (issue 14, feature `tokio`).
//!
//! - `async_ask/{blocking,current_thread,multi_thread}`: `ask` round trip to a child that
//!   answers at once (a 64-bit question, a 64-bit answer).
//! - `async_queue_rt/{blocking,current_thread}`: `put` (one-way) then `get` of one item in the
//!   root: one hub round trip per item.
//! - `async_get_tput/{blocking,async}`: a child puts 20,000 items; the root takes them one by
//!   one. The blocking get prefetches batches; the async get takes one item per round trip (no
//!   prefetch, so that concurrent tasks never queue behind one fetch).
//!
//! Run: `cargo bench -p multiproc-benches --bench async -- --warm-up-time 1 --measurement-time 3`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use multiproc::{mailbox, pipe, Connection, Process, Queue, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
enum Req {
    Echo(u64, ReplyTo<u64>),
    Stop,
}

#[multiproc::worker]
fn echo_server() {
    let mb = mailbox::<Req>();
    while let Ok(Req::Echo(n, r)) = mb.recv() {
        r.send(&n).unwrap();
    }
}

fn runtime(multi: bool) -> tokio::runtime::Runtime {
    if multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }
}

fn ask(c: &mut Criterion) {
    let mut g = c.benchmark_group("async_ask");
    g.sample_size(50);
    let mut server = Process::new(echo_server()).start().unwrap();
    let to = server.addr::<Req>();
    g.bench_function("blocking", |b| b.iter(|| to.ask(|r| Req::Echo(7, r)).unwrap()));
    for (name, multi) in [("current_thread", false), ("multi_thread", true)] {
        let rt = runtime(multi);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let to = to.clone();
                rt.block_on(async move {
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        to.ask_async(|r| Req::Echo(7, r)).await.unwrap();
                    }
                    t0.elapsed()
                })
            })
        });
    }
    to.send(&Req::Stop).unwrap();
    server.join().unwrap();
    g.finish();
}

fn queue_rt(c: &mut Criterion) {
    let mut g = c.benchmark_group("async_queue_rt");
    g.sample_size(50);
    let q = Queue::<u64>::new().unwrap();
    g.bench_function("blocking", |b| {
        b.iter(|| {
            q.put(1).unwrap();
            q.get().unwrap()
        })
    });
    let rt = runtime(false);
    g.bench_function("current_thread", |b| {
        b.iter_custom(|iters| {
            let q = q.clone();
            rt.block_on(async move {
                let t0 = Instant::now();
                for _ in 0..iters {
                    q.put_async(1).await.unwrap();
                    q.get_async().await.unwrap();
                }
                t0.elapsed()
            })
        })
    });
    g.finish();
}

#[multiproc::worker]
fn producer(q: Queue<u64>, n: u64, ctl: Connection<u8>) {
    ctl.recv().unwrap();
    for i in 0..n {
        q.put(i).unwrap();
    }
}

fn get_tput(c: &mut Criterion) {
    const N: u64 = 20_000;
    let mut g = c.benchmark_group("async_get_tput");
    g.throughput(Throughput::Elements(N))
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let rt = runtime(false);
    for name in ["blocking", "async"] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let q = Queue::<u64>::new().unwrap();
                    let (mine, theirs) = pipe::<u8>().unwrap();
                    let mut p = Process::new(producer(q.clone(), N, theirs)).start().unwrap();
                    let t0 = Instant::now();
                    mine.send(&0).unwrap();
                    if name == "blocking" {
                        for _ in 0..N {
                            q.get().unwrap();
                        }
                    } else {
                        let q2 = q.clone();
                        rt.block_on(async move {
                            for _ in 0..N {
                                q2.get_async().await.unwrap();
                            }
                        });
                    }
                    total += t0.elapsed();
                    p.join().unwrap();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, ask, queue_rt, get_tput);
criterion_main!(benches);
