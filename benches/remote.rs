//! Benchmarks of remote managers (issue 16), next to `benches/python`'s `remote_manager`
//! (`d[k]` through a `SyncManager` served at an explicit address with an authkey).
//!
//! - `remote/dict_get/{unix,tcp}`: `d.get(&k)` on a `Dict` served by a [`ManagerServer`] and
//!   reached through a [`RemoteManager`]: one round trip to the server's hub per call. The
//!   server and the client are in the bench process (the client's socket goes to the hub
//!   thread, as it would from another program); Python's client is also in the bench process,
//!   and its server is the manager's process.
//! - `remote/lock_acquire_release/{unix,tcp}`: a remote `Lock` acquired and released (two
//!   round trips).
//!
//! Run: `cargo bench --bench remote -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use multiproc::connection::{Address, ManagerServer, RemoteManager};
use multiproc::{Dict, Lock, Manager};

fn remote(c: &mut Criterion) {
    let m = Manager::new().expect("manager");
    let d = m.dict::<u64, u64>().expect("dict");
    d.insert(1, 1).expect("insert");
    let lock = Lock::new().expect("lock");
    let mut g = c.benchmark_group("remote");
    for (family, addr) in [
        ("unix", Address::unix_temp().expect("address")),
        ("tcp", Address::tcp_loopback()),
    ] {
        let server = ManagerServer::builder()
            .authkey("bench key")
            .register("d", &d)
            .register("lock", &lock)
            .bind(addr)
            .expect("serve");
        let rm = RemoteManager::builder()
            .authkey("bench key")
            .connect(server.address())
            .expect("connect");
        let rd: Dict<u64, u64> = rm.get("d").expect("dict");
        let rl: Lock = rm.get("lock").expect("lock");
        g.bench_function(format!("dict_get/{family}"), |b| {
            b.iter(|| assert_eq!(rd.get(&1).expect("get"), Some(1)))
        });
        g.bench_function(format!("lock_acquire_release/{family}"), |b| {
            b.iter(|| drop(rl.acquire().expect("acquire")))
        });
    }
    g.finish();
}

criterion_group!(benches, remote);
criterion_main!(benches);
