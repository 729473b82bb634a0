//! Actor and supervisor benchmarks (issue 12), with an in-process peer (ractor) measured in
//! the same run.
//!
//! - `actor/restart_latency`: SIGKILL a supervised, named actor (fork server), then ask it by
//!   name until the *new* incarnation answers (NoProc/Gone in between are retried after 50 µs).
//! - `actor/ask_named` vs `actor/ask_addr`: one `ask` round trip to the same actor, through
//!   `Addr::named` (the hub resolves the name at each send) and through its plain `Addr`.
//! - `actor/supervised_starts`: `Supervisor::start` with 50 children (fork server), per child.
//! - `ractor/restart_latency`, `ractor/ask`: a ractor actor (tokio tasks, one process) killed
//!   and respawned by its ractor supervisor, found again through ractor's registry and called.
//!
//! Run: `cargo bench -p multiproc-benches --bench actor`. Numbers are in `benches/RESULTS.md`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use multiproc::supervisor::{ChildSpec, Shutdown, Supervisor};
use multiproc::{Addr, AskError, ReplyTo, StartMethod};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum PingMsg {
    Ping(ReplyTo<i32>),
}

/// Answers its own pid.
#[derive(Debug, Serialize, Deserialize)]
struct Pinger;

#[multiproc::worker]
impl Pinger {
    fn handle(&mut self, msg: PingMsg) {
        let PingMsg::Ping(r) = msg;
        let _ = r.send(&(std::process::id() as i32));
    }
}

#[multiproc::worker]
fn sleeper() {
    std::thread::sleep(Duration::from_secs(3600));
}

const NAME: &str = "bench-pinger";

fn pinger_sup() -> Supervisor {
    Supervisor::builder()
        .intensity(u32::MAX, Duration::from_secs(3600))
        .child(
            ChildSpec::new("pinger", || Pinger)
                .name(NAME)
                .start_method(StartMethod::ForkServer)
                .shutdown(Shutdown::Brutal),
        )
        .start()
        .unwrap()
}

/// Asks by name until an incarnation other than `old` answers; its pid.
fn ask_new(named: &Addr<PingMsg>, old: i32) -> i32 {
    loop {
        match named.ask_timeout(PingMsg::Ping, Duration::from_secs(10)) {
            Ok(pid) if pid != old => return pid,
            // Not registered yet (or the old incarnation): retry soon, without taking the CPU
            // that the new incarnation needs to boot (2 cores here).
            Ok(_) | Err(AskError::NoProc(_)) | Err(AskError::Gone) => std::thread::sleep(Duration::from_micros(50)),
            Err(e) => panic!("ask failed: {e}"),
        }
    }
}

/// The by-name and by-address asks alternated one for one, so that both see the same
/// machine load (the criterion groups run a few seconds apart): prints both medians and their
/// ratio.
fn paired_asks(addr: &Addr<PingMsg>, named: &Addr<PingMsg>) {
    let (mut a, mut n) = (Vec::new(), Vec::new());
    for _ in 0..5000 {
        let t = Instant::now();
        addr.ask(PingMsg::Ping).unwrap();
        a.push(t.elapsed());
        let t = Instant::now();
        named.ask(PingMsg::Ping).unwrap();
        n.push(t.elapsed());
    }
    a.sort();
    n.sort();
    let (ma, mn) = (a[a.len() / 2], n[n.len() / 2]);
    println!(
        "actor/ask_paired: by Addr median {ma:?}, by name median {mn:?}, ratio {:.2}",
        mn.as_secs_f64() / ma.as_secs_f64()
    );
}

fn multiproc_actor(c: &mut Criterion) {
    let sup = pinger_sup();
    let named = Addr::<PingMsg>::named(NAME);
    let mut pid = ask_new(&named, 0);
    let mut g = c.benchmark_group("actor");
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    g.bench_function("restart_latency", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                multiproc::sys::proc::send_signal(pid, multiproc::sys::signal::SIGKILL).unwrap();
                pid = ask_new(&named, pid);
                total += t.elapsed();
            }
            total
        })
    });
    let addr = multiproc::whereis(NAME).unwrap().unwrap().addr::<PingMsg>();
    paired_asks(&addr, &named);
    g.sample_size(50);
    g.bench_function("ask_addr", |b| b.iter(|| addr.ask(PingMsg::Ping).unwrap()));
    g.bench_function("ask_named", |b| b.iter(|| named.ask(PingMsg::Ping).unwrap()));
    drop(sup);

    const N: u64 = 50;
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("supervised_starts", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let builder = Supervisor::builder().children((0..N).map(|i| {
                    ChildSpec::new(format!("s{i}"), sleeper)
                        .start_method(StartMethod::ForkServer)
                        .shutdown(Shutdown::Brutal)
                }));
                let t = Instant::now();
                let sup = builder.start().unwrap();
                total += t.elapsed();
                sup.stop().unwrap();
            }
            total
        })
    });
    g.finish();
}

mod peer {
    //! The ractor peer: a child actor linked to a supervisor actor that respawns it under the
    //! same registered name when it ends.
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

    pub const NAME: &str = "ractor-pinger";

    pub enum ChildMsg {
        Ping(RpcReplyPort<u64>),
    }

    pub struct Child;

    impl Actor for Child {
        type Msg = ChildMsg;
        type State = u64;
        type Arguments = u64;

        async fn pre_start(&self, _me: ActorRef<ChildMsg>, incarnation: u64) -> Result<u64, ActorProcessingErr> {
            Ok(incarnation)
        }

        async fn handle(&self, _me: ActorRef<ChildMsg>, msg: ChildMsg, st: &mut u64) -> Result<(), ActorProcessingErr> {
            let ChildMsg::Ping(r) = msg;
            let _ = r.send(*st);
            Ok(())
        }
    }

    pub struct Sup;

    impl Actor for Sup {
        type Msg = ();
        type State = u64;
        type Arguments = ();

        async fn pre_start(&self, me: ActorRef<()>, _: ()) -> Result<u64, ActorProcessingErr> {
            Actor::spawn_linked(Some(NAME.to_string()), Child, 1, me.get_cell()).await?;
            Ok(1)
        }

        async fn handle_supervisor_evt(
            &self,
            me: ActorRef<()>,
            evt: SupervisionEvent,
            n: &mut u64,
        ) -> Result<(), ActorProcessingErr> {
            if let SupervisionEvent::ActorTerminated(..) | SupervisionEvent::ActorFailed(..) = evt {
                *n += 1;
                Actor::spawn_linked(Some(NAME.to_string()), Child, *n, me.get_cell()).await?;
            }
            Ok(())
        }
    }

    /// The child registered now, if any.
    pub fn child() -> Option<ActorRef<ChildMsg>> {
        ractor::registry::where_is(NAME.to_string()).map(ActorRef::from)
    }

    /// Calls the registered child until an incarnation other than `old` answers.
    pub async fn ask_new(old: u64) -> (ActorRef<ChildMsg>, u64) {
        loop {
            if let Some(c) = child() {
                if let Ok(n) = ractor::call!(c, ChildMsg::Ping) {
                    if n != old {
                        return (c, n);
                    }
                }
            }
            tokio::task::yield_now().await;
        }
    }
}

fn ractor_peer(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sup, _h) = rt.block_on(ractor::Actor::spawn(None, peer::Sup, ())).unwrap();
    let (mut child, mut n) = rt.block_on(peer::ask_new(0));
    let mut g = c.benchmark_group("ractor");
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    g.bench_function("restart_latency", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    child.kill();
                    (child, n) = peer::ask_new(n).await;
                    total += t.elapsed();
                }
                total
            })
        })
    });
    g.bench_function("ask", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    let c = peer::child().unwrap();
                    ractor::call!(c, peer::ChildMsg::Ping).unwrap();
                }
                t.elapsed()
            })
        })
    });
    g.finish();
    sup.stop(None);
}

criterion_group!(benches, multiproc_actor, ractor_peer);
criterion_main!(benches);
