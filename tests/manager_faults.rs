//! Manager shutdown and faults: `ManagerGone` quickly after a shutdown (in every process),
//! a process killed mid-update leaves the containers consistent, and atomic `fetch_add` from
//! 70 processes is exact.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{take, Kids};
use multiproc::manager::{Dict, List, Manager, ManagerError, ValueProxy};
use multiproc::sync::{Lock, Semaphore};
use multiproc::Process;

const LONG: Duration = Duration::from_secs(20);

fn wall_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

// ----- Shutdown ----------------------------------------------------------------------------

#[test]
fn shutdown_is_idempotent_and_every_proxy_call_fails_fast() {
    let m = Manager::new().unwrap();
    let d = m.dict::<String, i32>().unwrap();
    let l = m.list::<i32>().unwrap();
    let v = m.value(1u8).unwrap();
    let ns = m.namespace().unwrap();
    d.insert("k".into(), 1).unwrap();
    l.push(1).unwrap();
    assert!(!m.is_shutdown().unwrap());
    m.shutdown().unwrap();
    m.shutdown().unwrap();
    assert!(m.is_shutdown().unwrap());
    let t = Instant::now();
    assert!(matches!(d.get(&"k".into()), Err(ManagerError::ManagerGone)));
    assert!(matches!(d.insert("k".into(), 2), Err(ManagerError::ManagerGone)));
    assert!(matches!(d.len(), Err(ManagerError::ManagerGone)));
    assert!(matches!(d.fetch_add(&"k".into(), 1), Err(ManagerError::ManagerGone)));
    assert!(matches!(l.push(2), Err(ManagerError::ManagerGone)));
    assert!(matches!(l.to_vec(), Err(ManagerError::ManagerGone)));
    assert!(matches!(v.get(), Err(ManagerError::ManagerGone)));
    assert!(matches!(ns.names(), Err(ManagerError::ManagerGone)));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // Nothing new can be created through it.
    assert!(matches!(m.dict::<u8, u8>(), Err(ManagerError::ManagerGone)));
    assert!(matches!(m.list::<u8>(), Err(ManagerError::ManagerGone)));
    assert!(matches!(m.lock(), Err(ManagerError::ManagerGone)));
    assert!(matches!(m.queue::<u8>(), Err(ManagerError::ManagerGone)));
}

#[test]
fn shutting_down_one_manager_leaves_the_others_alone() {
    let a = Manager::new().unwrap();
    let b = Manager::new().unwrap();
    let da = a.dict_from([(1, 1)]).unwrap();
    let db = b.dict_from([(1, 1)]).unwrap();
    let lock = a.lock().unwrap();
    a.shutdown().unwrap();
    assert!(da.get(&1).unwrap_err().is_gone());
    assert_eq!(db.get(&1).unwrap(), Some(1));
    // Primitives are the hub's own: they keep working after the shutdown.
    drop(lock.acquire().unwrap());
}

#[test]
fn dropping_the_manager_handle_does_not_shut_it_down() {
    let m = Manager::new().unwrap();
    let l = m.list_from([1, 2]).unwrap();
    drop(m);
    l.push(3).unwrap();
    assert_eq!(l.to_vec().unwrap(), [1, 2, 3]);
}

#[multiproc::worker]
fn hammer_until_gone(d: Dict<String, i64>, ready: Semaphore) -> (String, u128) {
    ready.release().unwrap();
    loop {
        match d.fetch_add(&"n".into(), 1) {
            Ok(_) => {}
            Err(e) => return (format!("{e:?}"), wall_ms()),
        }
    }
}

#[test]
fn proxies_in_children_get_manager_gone_within_1s_of_shutdown() {
    let m = Manager::new().unwrap();
    let d = m.dict_from([("n".to_string(), 0i64)]).unwrap();
    let ready = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    for _ in 0..3 {
        kids.push(
            Process::new(hammer_until_gone(d.clone(), ready.clone()))
                .start()
                .unwrap(),
        );
    }
    for _ in 0..3 {
        take(&ready, LONG);
    }
    let before = wall_ms();
    m.shutdown().unwrap();
    for (err, at) in kids.join_all() {
        assert_eq!(err, "ManagerGone");
        let late = at.saturating_sub(before);
        assert!(late < 1000, "a child saw ManagerGone {late} ms after the shutdown");
    }
}

#[multiproc::worker]
fn shutdown_from_child(m: Manager) {
    m.shutdown().unwrap();
}

#[test]
fn a_child_can_shut_the_manager_down() {
    let m = Manager::new().unwrap();
    let v = m.value("x".to_string()).unwrap();
    let mut kids = Kids::new();
    kids.push(Process::new(shutdown_from_child(m.clone())).start().unwrap());
    kids.join_all();
    assert!(m.is_shutdown().unwrap());
    assert!(v.get().unwrap_err().is_gone());
}

// ----- A process killed mid-update -----------------------------------------------------------

#[multiproc::worker]
fn pairs_forever(d: Dict<String, u64>, l: List<u64>, ready: Semaphore) {
    let mut i = 0u64;
    loop {
        // Each is one atomic operation in the hub: both keys, or both items, or neither.
        d.extend([("a".to_string(), i), ("b".to_string(), i)]).unwrap();
        l.extend([i, i]).unwrap();
        if i == 50 {
            ready.release().unwrap();
        }
        i += 1;
    }
}

#[test]
fn a_process_killed_mid_update_leaves_the_containers_consistent() {
    let m = Manager::new().unwrap();
    let d = m.dict::<String, u64>().unwrap();
    let l = m.list::<u64>().unwrap();
    let ready = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    let k = kids.push(
        Process::new(pairs_forever(d.clone(), l.clone(), ready.clone()))
            .start()
            .unwrap(),
    );
    take(&ready, LONG);
    std::thread::sleep(Duration::from_millis(50));
    kids.0[k].kill().unwrap();
    let _ = kids.0[k].join_timeout(LONG);
    let items = d.items().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].1, items[1].1, "both keys carry the same generation: {items:?}");
    let v = l.to_vec().unwrap();
    assert!(v.len() >= 102 && v.len() % 2 == 0, "{}", v.len());
    for pair in v.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    // Still fully usable.
    d.insert("c".into(), 1).unwrap();
    assert_eq!(d.len().unwrap(), 3);
}

#[multiproc::worker]
fn update_half_under_lock(d: Dict<String, i64>, lock: Lock, ready: Semaphore) {
    let _g = lock.acquire().unwrap();
    d.insert("debit".into(), -10).unwrap();
    ready.release().unwrap();
    std::thread::sleep(Duration::from_secs(60));
    d.insert("credit".into(), 10).unwrap();
}

#[test]
fn a_multi_step_update_killed_under_the_manager_lock_is_detected() {
    let m = Manager::new().unwrap();
    let d = m.dict::<String, i64>().unwrap();
    let lock = m.lock().unwrap();
    let ready = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    let k = kids.push(
        Process::new(update_half_under_lock(d.clone(), lock.clone(), ready.clone()))
            .start()
            .unwrap(),
    );
    take(&ready, LONG);
    kids.0[k].kill().unwrap();
    let g = lock
        .acquire_timeout(LONG)
        .unwrap()
        .expect("the dead owner's lock is released");
    // The next owner is told, and can repair the half-done update.
    assert!(g.previous_owner_died());
    assert_eq!(d.get(&"credit".into()).unwrap(), None);
    d.remove(&"debit".into()).unwrap();
    drop(g);
    assert!(d.is_empty().unwrap());
}

// ----- Atomic updates from 70 processes --------------------------------------------------------

#[multiproc::worker]
fn subtract_one(d: Dict<String, i64>, v: ValueProxy<f64>) {
    d.fetch_sub(&"count".into(), 1).unwrap();
    v.fetch_add(0.5).unwrap();
}

#[test]
fn fetch_add_from_70_processes_is_exact() {
    let m = Manager::new().unwrap();
    let d = m.dict_from([("count".to_string(), 100i64)]).unwrap();
    let v = m.value(0.0f64).unwrap();
    // Waves of 24, so that a 2-core machine does not hold 70 processes at once.
    for wave in [24, 23, 23] {
        let mut kids = Kids::new();
        for _ in 0..wave {
            kids.push(Process::new(subtract_one(d.clone(), v.clone())).start().unwrap());
        }
        kids.join_all();
    }
    assert_eq!(d.get(&"count".into()).unwrap(), Some(30));
    assert_eq!(v.get().unwrap(), 35.0);
}

#[multiproc::worker]
fn cas_updates(v: ValueProxy<String>, n: u32) {
    for _ in 0..n {
        v.update(|s| format!("{s}x")).unwrap();
    }
}

#[test]
fn compare_and_swap_updates_from_several_processes_are_exact() {
    let m = Manager::new().unwrap();
    let v = m.value(String::new()).unwrap();
    let mut kids = Kids::new();
    for _ in 0..4 {
        kids.push(Process::new(cas_updates(v.clone(), 50)).start().unwrap());
    }
    kids.join_all();
    assert_eq!(v.get().unwrap().len(), 200);
}
