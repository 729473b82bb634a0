//! Shared memory under contention and faults: exact locked increments from 4 processes,
//! lock-free atomics from 70 processes, and no leftovers after a SIGKILL.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{eventually, take, Kids};
use multiproc::shm::{Array, AtomicI64, AtomicU64, RawArray, Value};
use multiproc::sync::Semaphore;
use multiproc::Process;

/// The tests of this file count mappings and `/dev/shm` entries of this process: run them one
/// at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[multiproc::worker]
fn locked_increments(v: Value<i64>, n: u32) {
    for _ in 0..n {
        v.with_lock(|x| *x += 1).unwrap();
    }
}

#[test]
fn four_processes_times_10000_locked_increments_is_exactly_40000() {
    let _serial = serial();
    let v = Value::new(0i64).unwrap();
    let mut kids = Kids::new();
    for _ in 0..4 {
        kids.push(Process::new(locked_increments(v.clone(), 10_000)).start().unwrap());
    }
    kids.join_all();
    assert_eq!(v.get().unwrap(), 40_000);
}

#[multiproc::worker]
fn atomic_adds(c: AtomicU64, s: AtomicI64, n: u32) {
    for i in 0..n {
        c.fetch_add(1, Ordering::Relaxed);
        s.fetch_sub(i64::from(i), Ordering::Relaxed);
    }
}

#[test]
fn atomics_from_70_processes_are_exact() {
    let _serial = serial();
    let c = AtomicU64::zeroed().unwrap();
    let s = AtomicI64::new(0).unwrap();
    let n = 1000u32;
    // Three waves, so that a 2-core machine is not asked to hold 70 live processes at once.
    for wave in [24, 23, 23] {
        let mut kids = Kids::new();
        for _ in 0..wave {
            kids.push(Process::new(atomic_adds(c.clone(), s.clone(), n)).start().unwrap());
        }
        kids.join_all();
    }
    assert_eq!(c.load(Ordering::SeqCst), 70 * u64::from(n));
    assert_eq!(s.load(Ordering::SeqCst), -70 * (i64::from(n) * i64::from(n - 1) / 2));
    assert_eq!(
        c.compare_exchange(70_000, 1, Ordering::SeqCst, Ordering::SeqCst),
        Ok(70_000)
    );
    assert_eq!(
        c.compare_exchange(70_000, 2, Ordering::SeqCst, Ordering::SeqCst),
        Err(1)
    );
}

#[multiproc::worker]
fn hold_locked_forever(v: Value<i64>, a: RawArray<u8>, ready: Semaphore) {
    let _g = v.get_lock().acquire().unwrap();
    v.get_obj().set(-1);
    a.write(0, b"dying").unwrap();
    ready.release().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

fn dev_shm_entries() -> usize {
    std::fs::read_dir("/dev/shm").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn sigkill_mid_update_frees_the_lock_and_leaves_nothing_in_dev_shm() {
    let _serial = serial();
    let before = dev_shm_entries();
    let v = Value::new(7i64).unwrap();
    let a = RawArray::<u8>::zeroed(8).unwrap();
    let ready = Semaphore::new(0).unwrap();
    let mut kids = Kids::new();
    let k = kids.push(
        Process::new(hold_locked_forever(v.clone(), a.clone(), ready.clone()))
            .start()
            .unwrap(),
    );
    take(&ready, Duration::from_secs(20));
    kids.0[k].kill().unwrap();
    let _ = kids.0[k].join_timeout(Duration::from_secs(20));
    // The hub releases the dead owner's lock; the next owner is told.
    let g = v
        .get_lock()
        .acquire_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("lock freed");
    assert!(g.previous_owner_died());
    drop(g);
    // What the dead process wrote stays (shared memory is not transactional).
    assert_eq!(v.get().unwrap(), -1);
    assert_eq!(&a.read(0..5).unwrap(), b"dying");
    // Anonymous memory: no file appeared anywhere.
    assert_eq!(dev_shm_entries(), before);
    let big = Array::<f64>::zeroed(100_000).unwrap();
    assert_eq!(dev_shm_entries(), before);
    drop(big);
    assert!(eventually(Duration::from_secs(1), || dev_shm_entries() == before));
}

fn memfd_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().filter(|l| l.contains("memfd:multiproc-array")).count())
        .unwrap_or(0)
}

#[test]
fn the_mapping_goes_with_the_last_clone() {
    let _serial = serial();
    let before = memfd_mappings();
    let a = Array::<u64>::zeroed(1000).unwrap();
    let b = a.clone();
    assert_eq!(memfd_mappings(), before + 1, "clones share one mapping");
    drop(a);
    assert_eq!(memfd_mappings(), before + 1);
    b.set(999, 7).unwrap();
    drop(b);
    assert_eq!(memfd_mappings(), before, "unmapped with the last clone");
}
