//! Large chunks of a `map` (issue 10): arguments encoded without a heap allocation when short
//! and on the heap when long, result buffers reused by the worker, outcomes read in place by
//! the pool's manager thread. Order, contents and per-task failures are what they were: one
//! failing item of a chunk fails only that item.

use multiproc::pool::{Pool, PoolError};
use serde::{Deserialize, Serialize};

#[multiproc::worker]
fn inc(x: u64) -> u64 {
    x + 1
}

/// A string argument whose length crosses the inline limit of a task's arguments both ways.
#[multiproc::worker]
fn echo_len(s: String) -> (usize, String) {
    (s.len(), s)
}

/// Results of very different sizes one after another, so a reused result buffer that kept
/// stale bytes would show.
#[multiproc::worker]
fn sized(x: u64) -> Vec<u64> {
    (0..(x % 5) * 300).map(|i| i ^ x).collect()
}

/// Panics on one value, cannot encode its result on another.
#[multiproc::worker]
fn picky(x: u64) -> Picky {
    if x == 777 {
        panic!("no {x}");
    }
    Picky(x)
}

#[derive(Debug, PartialEq, Deserialize)]
struct Picky(u64);

impl Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 4242 {
            return Err(serde::ser::Error::custom("4242 cannot be sent"));
        }
        s.serialize_u64(self.0)
    }
}

#[test]
fn a_default_chunksize_map_keeps_every_value_in_order() {
    let pool = Pool::new(2).unwrap();
    for _ in 0..3 {
        let v = pool.map(inc, 0..100_000u64).unwrap();
        assert_eq!(v.len(), 100_000);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 + 1));
    }
}

#[test]
fn short_and_long_arguments_in_one_chunk_arrive_whole() {
    let pool = Pool::new(2).unwrap();
    // Lengths 0..120: the short ones stay inline in the task, the long ones spill to the heap,
    // mixed within every chunk.
    let items: Vec<String> = (0..2_000usize)
        .map(|i| std::iter::repeat_n(char::from(b'a' + (i % 26) as u8), i % 120).collect())
        .collect();
    let got = pool.map(echo_len, items.clone()).unwrap();
    for (i, (len, s)) in got.into_iter().enumerate() {
        assert_eq!(len, items[i].len(), "item {i}");
        assert_eq!(s, items[i], "item {i}");
    }
}

#[test]
fn results_of_varying_size_are_not_mixed_up() {
    let pool = Pool::new(2).unwrap();
    let got = pool.map_chunked(sized, 0..3_000u64, 500).unwrap();
    for (x, v) in (0..3_000u64).zip(got) {
        let want: Vec<u64> = (0..(x % 5) * 300).map(|i| i ^ x).collect();
        assert_eq!(v, want, "item {x}");
    }
}

#[test]
fn a_failing_item_fails_only_itself_within_its_chunk() {
    let pool = Pool::new(2).unwrap();
    // Default chunksize: 10,000 items in chunks of 1,250; 777 panics and 4242 cannot encode
    // its result, each in the middle of a chunk.
    let all = pool.map_results(picky, 0..10_000u64).unwrap();
    assert_eq!(all.len(), 10_000);
    for (x, r) in (0..10_000u64).zip(&all) {
        match x {
            777 => assert!(
                matches!(r, Err(PoolError::Panicked { message, .. }) if message.contains("no 777")),
                "{r:?}"
            ),
            4242 => assert!(
                matches!(r, Err(PoolError::Failed(m)) if m.contains("4242 cannot be sent")),
                "{r:?}"
            ),
            _ => assert_eq!(r, &Ok(Picky(x)), "item {x}"),
        }
    }
    // `map` reports the first failure in input order.
    let first = pool.map(picky, 0..10_000u64).unwrap_err();
    assert!(
        matches!(first, PoolError::Panicked { ref message, .. } if message.contains("777")),
        "{first:?}"
    );
    // The workers are still there and well.
    assert_eq!(pool.map(inc, 0..10u64).unwrap(), (1..=10).collect::<Vec<_>>());
}

#[test]
fn get_after_get_results_is_taken() {
    let pool = Pool::new(1).unwrap();
    let r = pool.map_async(inc, 0..1_000u64).unwrap();
    assert_eq!(r.get_results().unwrap().len(), 1_000);
    assert!(matches!(r.get(), Err(PoolError::ResultTaken)));
    assert_eq!(r.successful(), Err(PoolError::ResultTaken));
}
