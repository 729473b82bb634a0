//! `ask` by name against `ask` through a plain `Addr` (issue 12: target ≤ 1.1×), and a send by
//! name (a round trip) against a plain one-way send.
//!
//! One echo actor in a child process, registered under a name; the root asks it. Both asks
//! cost the same round trips to the hub (reply slot, one-way question, wait for the answer);
//! by name, the hub resolves the name while creating the slot.
//!
//! Run: `cargo bench -p multiproc-benches --bench names -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use multiproc::{mailbox, register, Addr, Process, ReplyTo};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
enum Msg {
    Echo(u64, ReplyTo<u64>),
    Count(u64),
    Stop,
}

#[multiproc::worker]
fn echo(name: String) {
    register(&name).unwrap();
    let inbox = mailbox::<Msg>();
    loop {
        match inbox.recv().unwrap() {
            Msg::Echo(x, r) => {
                let _ = r.send(&x);
            }
            Msg::Count(_) => {}
            Msg::Stop => return,
        }
    }
}

fn bench(c: &mut Criterion) {
    let name = "bench-echo";
    let mut p = Process::new(echo(name.to_string())).start().unwrap();
    while multiproc::whereis(name).unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let plain = p.addr::<Msg>();
    let named = Addr::<Msg>::named(name);
    let mut g = c.benchmark_group("names");
    g.bench_function("ask_plain_addr", |b| b.iter(|| plain.ask(|r| Msg::Echo(1, r)).unwrap()));
    g.bench_function("ask_by_name", |b| b.iter(|| named.ask(|r| Msg::Echo(1, r)).unwrap()));
    // A plain send is one-way; a send by name is a round trip (the hub says NoProc).
    g.bench_function("send_plain_addr", |b| b.iter(|| plain.send(&Msg::Count(1)).unwrap()));
    g.bench_function("send_by_name", |b| b.iter(|| named.send(&Msg::Count(1)).unwrap()));
    g.bench_function("whereis", |b| b.iter(|| multiproc::whereis(name).unwrap()));
    g.finish();
    plain.send(&Msg::Stop).unwrap();
    p.join_timeout(Duration::from_secs(30)).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
