//! Progress: `IMap` and `MapResult` know their length when the input does (`len()`,
//! `ExactSizeIterator`), and how many tasks have completed.

use std::time::Duration;

use multiproc::sync::Event;
use multiproc::Pool;

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::worker]
fn gated(gate: Event, x: u64) -> u64 {
    gate.wait_timeout(Duration::from_secs(60)).unwrap();
    x
}

#[test]
fn imap_of_a_known_length_is_an_exact_size_iterator() {
    let pool = Pool::new(2).unwrap();
    let mut it = pool.imap_unordered(square, 0..100u64).unwrap();
    assert_eq!(it.total(), Some(100));
    assert_eq!(it.len(), 100);
    assert_eq!(it.size_hint(), (100, Some(100)));
    for left in (0..100).rev() {
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.len(), left);
        assert_eq!(it.yielded(), 100 - left);
        assert!(it.completed() >= it.yielded());
    }
    assert!(it.next().is_none());
    assert_eq!(it.completed(), 100);

    // Ordered, from a Vec.
    let it = pool.imap(square, vec![1u64, 2, 3]).unwrap();
    assert_eq!(it.len(), 3);
    assert_eq!(it.map(|r| r.unwrap()).collect::<Vec<_>>(), [1, 4, 9]);
    pool.terminate();
}

#[test]
fn imap_of_an_unknown_length_says_so() {
    let pool = Pool::new(2).unwrap();
    let mut n = 0u64;
    let input = std::iter::from_fn(move || {
        n += 1;
        (n <= 10).then_some(n)
    });
    let it = pool.imap(square, input).unwrap();
    assert_eq!(it.total(), None);
    assert_eq!(it.size_hint().1, None);
    assert_eq!(it.count(), 10);
    pool.terminate();
}

#[test]
fn completed_counts_finished_tasks_before_they_are_taken() {
    let pool = Pool::new(2).unwrap();
    let gate = Event::new().unwrap();
    let g = gate.clone();
    let r = pool.map_async(move |x| gated(g.clone(), x), 0..6u64).unwrap();
    assert_eq!((r.len(), r.is_empty()), (6, false));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(r.completed(), 0);
    gate.set().unwrap();
    assert!(r.wait_timeout(Duration::from_secs(30)));
    assert_eq!(r.completed(), 6);
    assert_eq!(r.get().unwrap(), [0, 1, 2, 3, 4, 5]);

    let gate = Event::new().unwrap();
    let g = gate.clone();
    let it = pool.imap_unordered(move |x| gated(g.clone(), x), 0..4u64).unwrap();
    assert_eq!(it.completed(), 0);
    gate.set().unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while it.completed() < 4 && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!((it.completed(), it.yielded(), it.len()), (4, 0, 4));
    pool.terminate();
}
