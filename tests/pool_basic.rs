//! CPython's `_TestPool` behaviours: apply, map (with and without chunksize), starmap, async
//! forms with callbacks and timeouts, imap/imap_unordered, empty inputs, invalid sizes,
//! initializer, remote errors, map without failfast, unserialisable results, a large pool.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use multiproc::pool::{Callbacks, Pool, PoolError};
use multiproc::sync::Semaphore;
use serde::{Deserialize, Serialize};

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::worker]
fn sqr_slow(x: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    x * x
}

#[multiproc::worker]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[multiproc::worker]
fn mul3(a: u64, b: u64, c: u64) -> u64 {
    a * b * c
}

#[multiproc::worker]
fn raise_on(x: u64, bad: u64) -> u64 {
    if x == bad {
        panic!("key error {x}");
    }
    x
}

#[multiproc::worker]
fn fails_if_odd(x: u64) -> u64 {
    if x % 2 == 1 {
        panic!("odd {x}");
    }
    x
}

/// A value whose serialisation always fails.
#[derive(Debug)]
struct Unpicklable;

impl Serialize for Unpicklable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("Unpicklable cannot be serialised"))
    }
}

impl<'de> Deserialize<'de> for Unpicklable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|_| Unpicklable)
    }
}

#[multiproc::worker]
fn unpicklable_result() -> Unpicklable {
    Unpicklable
}

#[multiproc::worker]
fn take_unpicklable(_u: Unpicklable) -> u64 {
    1
}

static INITIALISED: AtomicU32 = AtomicU32::new(0);

#[multiproc::worker]
fn init_worker(sem: Semaphore) {
    INITIALISED.fetch_add(1, Ordering::SeqCst);
    sem.release().unwrap();
}

#[multiproc::worker]
fn init_count() -> u32 {
    INITIALISED.load(Ordering::SeqCst)
}

#[multiproc::worker]
fn failing_init() {
    panic!("init failed");
}

#[test]
fn apply() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.apply(square(5)).unwrap(), 25);
    assert_eq!(pool.apply(add(2, 3)).unwrap(), 5);
}

#[test]
fn map_with_and_without_chunksize() {
    let pool = Pool::new(2).unwrap();
    let want: Vec<u64> = (0..10).map(|x| x * x).collect();
    assert_eq!(pool.map(square, 0..10).unwrap(), want);
    let want: Vec<u64> = (0..100).map(|x| x * x).collect();
    assert_eq!(pool.map_chunked(square, 0..100, 20).unwrap(), want);
    assert_eq!(pool.map_chunked(square, 0..100, 1).unwrap(), want);
    assert_eq!(pool.map_chunked(square, 0..100, 1000).unwrap(), want);
    assert_eq!(pool.map_chunked(square, 0..1, 0), Err(PoolError::InvalidChunksize));
}

#[test]
fn starmap_and_async() {
    let pool = Pool::new(2).unwrap();
    let pairs: Vec<(u64, u64)> = (0..10).map(|i| (i, i + 1)).collect();
    let want: Vec<u64> = pairs.iter().map(|(a, b)| a + b).collect();
    assert_eq!(pool.starmap(add, pairs.clone()).unwrap(), want);
    assert_eq!(pool.starmap_chunked(add, pairs.clone(), 3).unwrap(), want);
    assert_eq!(pool.starmap_async(add, pairs).unwrap().get().unwrap(), want);
    assert_eq!(pool.starmap(mul3, [(1, 2, 3), (2, 3, 4)]).unwrap(), [6, 24]);
}

#[test]
fn map_async_each_callbacks() {
    let pool = Pool::new(2).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let errs = Arc::new(Mutex::new(Vec::new()));
    let (g, e) = (got.clone(), errs.clone());
    let cbs = Callbacks::new()
        .on_result(move |v: &u64| g.lock().unwrap().push(*v))
        .on_error(move |err: &PoolError| e.lock().unwrap().push(err.clone()));
    let r = pool.map_async_each(square, 0..10, None, cbs).unwrap();
    let want: Vec<u64> = (0..10).map(|x| x * x).collect();
    assert_eq!(r.get().unwrap(), want);
    let mut got = got.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, want);
    assert!(errs.lock().unwrap().is_empty());
}

// CPython's test_map_async_callbacks: `callback` is called once with the whole result list;
// `error_callback` once with the exception, and `callback` not at all.
#[test]
fn map_async_callbacks() {
    let pool = Pool::new(2).unwrap();
    let calls = Arc::new(Mutex::new(Vec::<Vec<u64>>::new()));
    let errs = Arc::new(Mutex::new(Vec::new()));
    let (c, e) = (calls.clone(), errs.clone());
    let cbs = Callbacks::new()
        .on_result(move |all: &Vec<u64>| c.lock().unwrap().push(all.clone()))
        .on_error(move |err: &PoolError| e.lock().unwrap().push(err.clone()));
    let r = pool.map_async_with(square, 0..10, Some(2), cbs).unwrap();
    let want: Vec<u64> = (0..10).map(|x| x * x).collect();
    r.wait();
    // The callback has run before the result is ready (Python sets the event after it).
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "called once");
    assert_eq!(calls[0], want, "with the whole list");
    assert_eq!(r.get().unwrap(), want);
    assert!(errs.lock().unwrap().is_empty());

    // A failing task: on_error once, with the first error in input order; on_result never.
    let calls = Arc::new(Mutex::new(0));
    let errs = Arc::new(Mutex::new(Vec::new()));
    let (c, e) = (calls.clone(), errs.clone());
    let cbs = Callbacks::new()
        .on_result(move |_: &Vec<u64>| *c.lock().unwrap() += 1)
        .on_error(move |err: &PoolError| e.lock().unwrap().push(err.clone()));
    let r = pool
        .starmap_async_with(raise_on, (0..6).map(|i| (i, 2)), Some(1), cbs)
        .unwrap();
    assert!(matches!(r.get(), Err(PoolError::Panicked { .. })));
    assert_eq!(*calls.lock().unwrap(), 0);
    let errs = errs.lock().unwrap();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(matches!(&errs[0], PoolError::Panicked { message, .. } if message == "key error 2"));

    // starmap_async_with on success.
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let cbs = Callbacks::new().on_result(move |all: &Vec<u64>| g.lock().unwrap().push(all.clone()));
    let r = pool.starmap_async_with(add, [(1, 2), (3, 4)], None, cbs).unwrap();
    assert_eq!(r.get().unwrap(), [3, 7]);
    assert_eq!(*got.lock().unwrap(), [vec![3, 7]]);
}

#[test]
fn error_callback() {
    let pool = Pool::new(2).unwrap();
    let errs = Arc::new(Mutex::new(Vec::new()));
    let e = errs.clone();
    let r = pool
        .apply_async_with(
            raise_on(1, 1),
            Callbacks::new().on_error(move |err| e.lock().unwrap().push(err.clone())),
        )
        .unwrap();
    assert!(matches!(r.get(), Err(PoolError::Panicked { .. })));
    let errs = errs.lock().unwrap();
    assert_eq!(errs.len(), 1);
    assert!(matches!(&errs[0], PoolError::Panicked { message, .. } if message == "key error 1"));
}

#[test]
fn empty_iterable_for_every_method() {
    let pool = Pool::new(2).unwrap();
    let none: Vec<u64> = Vec::new();
    assert_eq!(pool.map(square, none.clone()).unwrap(), Vec::<u64>::new());
    assert_eq!(pool.map_chunked(square, none.clone(), 3).unwrap(), Vec::<u64>::new());
    assert!(pool.map_results(square, none.clone()).unwrap().is_empty());
    let r = pool.map_async(square, none.clone()).unwrap();
    assert!(r.ready());
    assert_eq!(r.get().unwrap(), Vec::<u64>::new());
    assert_eq!(pool.starmap(add, Vec::<(u64, u64)>::new()).unwrap(), Vec::<u64>::new());
    assert!(pool
        .starmap_async(add, Vec::<(u64, u64)>::new())
        .unwrap()
        .get()
        .unwrap()
        .is_empty());
    assert_eq!(pool.imap(square, none.clone()).unwrap().count(), 0);
    assert_eq!(pool.imap_unordered(square, none).unwrap().count(), 0);
}

#[test]
fn async_with_timeout() {
    let pool = Pool::new(2).unwrap();
    let r = pool.apply_async(sqr_slow(6, 1000)).unwrap();
    let t = Instant::now();
    assert_eq!(r.get_timeout(Duration::from_millis(100)), Err(PoolError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(!r.ready());
    assert_eq!(r.successful(), Err(PoolError::NotReady));
    assert_eq!(r.get_timeout(Duration::from_secs(30)).unwrap(), 36);
    assert_eq!(r.get(), Err(PoolError::ResultTaken));
    let r = pool.apply_async(sqr_slow(7, 300)).unwrap();
    assert!(!r.wait_timeout(Duration::ZERO) || r.ready());
    r.wait();
    assert!(r.ready());
    assert_eq!(r.successful(), Ok(true));
    assert_eq!(r.get().unwrap(), 49);
}

#[test]
fn imap_and_bad_chunksize() {
    let pool = Pool::new(2).unwrap();
    let want: Vec<u64> = (0..10).map(|x| x * x).collect();
    let got: Vec<u64> = pool.imap(square, 0..10).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(got, want);
    let want: Vec<u64> = (0..1000).map(|x| x * x).collect();
    let got: Vec<u64> = pool
        .imap_chunked(square, 0..1000, 100)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got, want);
    assert!(matches!(
        pool.imap_chunked(square, 0..10, 0),
        Err(PoolError::InvalidChunksize)
    ));
    assert!(matches!(
        pool.imap_unordered_chunked(square, 0..10, 0),
        Err(PoolError::InvalidChunksize)
    ));
    // next_timeout: a slow item times out, the iterator stays usable.
    let mut it = pool.imap(|x| sqr_slow(x, 800), 0..2u64).unwrap();
    assert_eq!(
        it.next_timeout(Duration::from_millis(50)),
        Some(Err(PoolError::Timeout))
    );
    assert_eq!(it.next_timeout(Duration::from_secs(30)), Some(Ok(0)));
    assert_eq!(it.next_timeout(Duration::from_secs(30)), Some(Ok(1)));
    assert_eq!(it.next_timeout(Duration::from_secs(30)), None);
}

#[test]
fn imap_errors_in_place() {
    let pool = Pool::new(2).unwrap();
    let got: Vec<Result<u64, PoolError>> = pool.imap(|x| raise_on(x, 5), 0..10u64).unwrap().collect();
    assert_eq!(got.len(), 10);
    for (i, r) in got.iter().enumerate() {
        if i == 5 {
            assert!(matches!(r, Err(PoolError::Panicked { .. })));
        } else {
            assert_eq!(r, &Ok(i as u64));
        }
    }
}

#[test]
fn imap_streams_a_huge_input() {
    let pool = Pool::new(2).unwrap();
    // 10 million items: only a few chunks are ever read ahead; take the first 2,000 results.
    let pulled = Arc::new(AtomicU32::new(0));
    let p = pulled.clone();
    let input = (0..10_000_000u64).inspect(move |_| {
        p.fetch_add(1, Ordering::Relaxed);
    });
    let mut it = pool.imap_chunked(square, input, 10).unwrap();
    for i in 0..2000u64 {
        assert_eq!(it.next(), Some(Ok(i * i)));
    }
    assert!(
        pulled.load(Ordering::Relaxed) < 10_000,
        "read {} items ahead",
        pulled.load(Ordering::Relaxed)
    );
}

#[test]
fn imap_unordered() {
    let pool = Pool::new(2).unwrap();
    let mut got: Vec<u64> = pool
        .imap_unordered(square, 0..100)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..100).map(|x| x * x).collect::<Vec<_>>());
    let mut got: Vec<u64> = pool
        .imap_unordered_chunked(square, 0..1000, 53)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..1000).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn invalid_size() {
    assert!(matches!(Pool::new(0), Err(PoolError::InvalidProcesses)));
    assert!(matches!(
        Pool::builder().processes(1).maxtasksperchild(0).build(),
        Err(PoolError::InvalidMaxTasks)
    ));
    assert!(matches!(
        Pool::builder()
            .processes(1)
            .start_method(multiproc::StartMethod::Fork)
            .build(),
        Err(PoolError::InvalidStartMethod)
    ));
}

#[test]
fn initializer_runs_once_per_worker() {
    let sem = Semaphore::new(0).unwrap();
    let pool = Pool::builder()
        .processes(2)
        .initializer(init_worker(sem.clone()))
        .build()
        .unwrap();
    let counts = pool.map_chunked(|_: u32| init_count(), 0..20, 1).unwrap();
    assert!(counts.iter().all(|&c| c == 1), "{counts:?}");
    pool.close();
    pool.join().unwrap();
    assert_eq!(common::count(&sem), 2);
}

#[test]
fn failing_initializer_breaks_the_pool() {
    let pool = Pool::builder()
        .processes(1)
        .initializer(failing_init())
        .build()
        .unwrap();
    let r = pool.apply(square(2));
    assert!(
        matches!(r, Err(PoolError::InitializerFailed(ref m)) if m.contains("init failed")),
        "{r:?}"
    );
}

#[test]
fn remote_error_carries_its_message() {
    let pool = Pool::new(1).unwrap();
    match pool.apply(raise_on(3, 3)) {
        Err(PoolError::Panicked { message, location }) => {
            assert_eq!(message, "key error 3");
            assert!(location.unwrap().contains("pool_basic.rs"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // The worker survived.
    assert_eq!(pool.apply(square(3)).unwrap(), 9);
}

#[test]
fn map_without_failfast() {
    let pool = Pool::new(2).unwrap();
    // bpo-23992: map waits for every chunk, then reports the first error.
    let r = pool.map_chunked(fails_if_odd, 0..20, 2);
    assert!(
        matches!(r, Err(PoolError::Panicked { ref message, .. }) if message == "odd 1"),
        "{r:?}"
    );
    let all = pool.map_results(fails_if_odd, 0..20).unwrap();
    assert_eq!(all.len(), 20);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.is_ok(), i % 2 == 0);
    }
    let m = pool.map_async(fails_if_odd, 0..4).unwrap();
    m.wait();
    assert_eq!(m.successful(), Ok(false));
}

#[test]
fn unserialisable_result_fails_that_task_only() {
    let pool = Pool::new(1).unwrap();
    let r = pool.apply(unpicklable_result());
    assert!(
        matches!(r, Err(PoolError::Failed(ref m)) if m.contains("Unpicklable")),
        "{r:?}"
    );
    let pid = pool.pids();
    assert_eq!(pool.apply(square(4)).unwrap(), 16);
    assert_eq!(pool.pids(), pid, "the worker was not lost");
}

#[test]
fn unserialisable_argument_is_an_error_before_scheduling() {
    let pool = Pool::new(1).unwrap();
    assert!(matches!(
        pool.apply_async(take_unpicklable(Unpicklable)),
        Err(PoolError::Encode(_))
    ));
    assert!(matches!(
        pool.map(take_unpicklable, vec![Unpicklable, Unpicklable]),
        Err(PoolError::Encode(_))
    ));
    let got: Vec<_> = pool.imap(take_unpicklable, vec![Unpicklable]).unwrap().collect();
    assert!(matches!(got.as_slice(), [Err(PoolError::Encode(_))]));
    assert_eq!(pool.apply(square(2)).unwrap(), 4);
}

/// Serialises as its number, except `Bad`, whose serialisation fails.
#[derive(Debug, Deserialize)]
enum Item {
    Good(u64),
    Bad,
}

impl Serialize for Item {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::Good(n) => s.serialize_newtype_variant("Item", 0, "Good", n),
            Item::Bad => Err(serde::ser::Error::custom("Item::Bad cannot be serialised")),
        }
    }
}

#[multiproc::worker]
fn take_item(i: Item) -> u64 {
    match i {
        Item::Good(n) => n,
        Item::Bad => u64::MAX,
    }
}

#[test]
fn unserialisable_argument_late_in_a_long_map_fails_the_map_and_runs_no_callback() {
    // The map's first chunks are queued (and may run) before the bad item is reached: the
    // map still fails as a whole, and no callback of its runs, even later.
    let pool = Pool::new(2).unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let (c1, c2) = (calls.clone(), calls.clone());
    let items = (0..20_000u64).map(|i| if i == 15_000 { Item::Bad } else { Item::Good(i) });
    let r = pool.map_async_each(
        take_item,
        items,
        Some(10),
        Callbacks::new()
            .on_result(move |_| {
                c1.fetch_add(1, Ordering::SeqCst);
            })
            .on_error(move |_| {
                c2.fetch_add(1, Ordering::SeqCst);
            }),
    );
    assert!(
        matches!(&r, Err(PoolError::Encode(m)) if m.contains("Item::Bad")),
        "{:?}",
        r.as_ref().err()
    );
    // The pool keeps working; by the time this answers, every chunk of the failed map that
    // was running has delivered (a worker runs one chunk at a time, in queue order).
    let v = pool.map(square, 0..100).unwrap();
    assert_eq!(v[99], 99 * 99);
    for _ in 0..2 {
        assert_eq!(pool.apply(square(3)).unwrap(), 9);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "a callback of the failed map ran");
    // Without callbacks the chunks are queued as they are built, so some of this map runs
    // before the bad item is reached: it fails all the same, its queued chunks are withdrawn,
    // and the pool is unaffected.
    let items = (0..20_000u64).map(|i| if i == 15_000 { Item::Bad } else { Item::Good(i) });
    let r = pool.map_chunked(take_item, items, 10);
    assert!(
        matches!(&r, Err(PoolError::Encode(m)) if m.contains("Item::Bad")),
        "{r:?}"
    );
    let good = (0..20_000u64).map(Item::Good);
    assert_eq!(pool.map(take_item, good).unwrap(), (0..20_000u64).collect::<Vec<_>>());
}

/// An iterator whose `size_hint` claims exactly `claims` items and that yields `yields`.
struct Liar {
    next: u64,
    yields: u64,
    claims: usize,
}

impl Iterator for Liar {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        (self.next < self.yields).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claims, Some(self.claims))
    }
}

#[test]
fn an_iterator_whose_exact_size_hint_is_wrong_fails_the_map_and_the_pool_goes_on() {
    // An exact `size_hint` lets `map` queue chunks while it reads the items; an iterator that
    // breaks that promise fails the call, either way, instead of a map that never ends or
    // drops items.
    let pool = Pool::new(2).unwrap();
    for (yields, claims) in [(3_000, 5_000), (7_000, 5_000), (0, 10), (10, 0)] {
        let r = pool.map_chunked(
            square,
            Liar {
                next: 0,
                yields,
                claims,
            },
            100,
        );
        assert!(
            matches!(&r, Err(PoolError::Encode(m)) if m.contains("size_hint")),
            "{yields} items claiming {claims}: {:?}",
            r.as_ref().map(Vec::len)
        );
    }
    // An honest iterator of each kind: exact (a range), and inexact (a filter), which is
    // gathered first.
    let want: Vec<u64> = (0..5_000u64).map(|x| x * x).collect();
    assert_eq!(pool.map(square, 0..5_000u64).unwrap(), want);
    let even: Vec<u64> = (0..5_000u64).filter(|x| x % 2 == 0).map(|x| x * x).collect();
    assert_eq!(pool.map(square, (0..5_000u64).filter(|x| x % 2 == 0)).unwrap(), even);
    pool.close();
    pool.join().unwrap();
}

#[test]
fn large_pool() {
    let pool = Pool::new(50).unwrap();
    let want: Vec<u64> = (0..1000).map(|x| x * x).collect();
    assert_eq!(pool.map(square, 0..1000).unwrap(), want);
    pool.close();
    pool.join().unwrap();
}

#[multiproc::worker]
fn big(x: u64) -> Vec<u64> {
    vec![x; 20_000]
}

#[test]
fn large_chunks_and_results_do_not_deadlock() {
    let pool = Pool::new(2).unwrap();
    let want: Vec<u64> = (0..300_000).map(|x| x * x).collect();
    assert_eq!(pool.map(square, 0..300_000).unwrap(), want);
    // Big results in both directions, many small chunks queued per worker.
    let got = pool.map_chunked(big, 0..200, 1).unwrap();
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, v)| v.len() == 20_000 && v[0] == i as u64));
    let got = pool.map_chunked(big, 0..200, 50).unwrap();
    assert_eq!(got.len(), 200);
}

/// A `#[worker]` type: its value is the task.
#[derive(serde::Serialize, serde::Deserialize)]
struct Doubler {
    x: u64,
}

#[multiproc::worker]
impl Doubler {
    fn run(self) -> u64 {
        self.x * 2
    }
}

#[test]
fn map_takes_any_task_constructor() {
    let pool = Pool::new(2).unwrap();
    // A closure that builds a worker type's value (an IntoTask, not a Task).
    assert_eq!(pool.map(|x| Doubler { x }, 1..=3).unwrap(), [2, 4, 6]);
    // A closure around a worker function with a fixed argument; the closure's argument type
    // comes from the items (`x + 1` needs it before the call).
    assert_eq!(pool.map(|x| add(x, 10), [1, 2]).unwrap(), [11, 12]);
    assert_eq!(pool.map(|x| square(x + 1), [1, 2]).unwrap(), [4, 9]);
    let words = vec!["a b".to_string(), "c".to_string()];
    assert_eq!(pool.map(|s| square(s.len() as u64), words).unwrap(), [9, 1]);
    let got: Vec<u64> = pool
        .imap(|x| Doubler { x }, 0..4)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [0, 2, 4, 6]);
}
