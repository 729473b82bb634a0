//! Pool results as futures and `IMap` as a `Stream` (feature `tokio`), with real workers.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_core::Stream;
use multiproc::pool::Pool;
use multiproc::PoolError;

#[multiproc::worker]
fn slow_square(x: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    x * x
}

#[multiproc::worker]
fn square(x: u64) -> u64 {
    if x == 13 {
        panic!("unlucky");
    }
    x * x
}

#[tokio::test(flavor = "current_thread")]
async fn apply_async_and_map_async_are_futures() {
    let pool = Pool::new(2).unwrap();
    let t0 = Instant::now();
    let r = pool.apply_async(slow_square(9, 200)).unwrap();
    // Other tasks run while the result is pending.
    let ticker = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(60), r).await.unwrap().unwrap(),
        81
    );
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(ticker.is_finished());
    let m = pool.map_async(square, 0..10u64).unwrap();
    assert_eq!(m.await.unwrap(), (0..10u64).map(|x| x * x).collect::<Vec<_>>());
    // A failing task: the first error, as `get`.
    let m = pool.map_async(square, 10..15u64).unwrap();
    assert!(matches!(m.await, Err(PoolError::Panicked { .. })));
    pool.close();
    pool.join().unwrap();
}

async fn collect<S: Stream + Unpin>(mut s: S) -> Vec<S::Item> {
    let mut out = Vec::new();
    while let Some(x) = poll_fn(|cx| Pin::new(&mut s).poll_next(cx)).await {
        out.push(x);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_is_a_stream_in_order_and_unordered() {
    let pool = Pool::new(3).unwrap();
    let ordered = collect(pool.imap(|x| slow_square(x, (x % 3) * 5), 0..60u64).unwrap()).await;
    let ordered: Vec<u64> = ordered.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(ordered, (0..60u64).map(|x| x * x).collect::<Vec<_>>());
    let mut un: Vec<u64> = collect(pool.imap_unordered(|x| slow_square(x, (x % 3) * 5), 0..60u64).unwrap())
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    un.sort();
    assert_eq!(un, (0..60u64).map(|x| x * x).collect::<Vec<_>>());
    pool.close();
    pool.join().unwrap();
}
