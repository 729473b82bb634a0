//! Showcase: a pipeline of processes connected by queues, reporting its throughput.
//!
//! `source` → (queue) → 2 × `square` → (queue) → `sum` . The source puts numbers in batches
//! (`put_many`: one write per batch), the middle stage squares them, and the sink adds them
//! up. Every stage ends on a `None` sentinel per upstream worker. The main process checks the
//! total and prints items per second.

use std::time::Instant;

use multiproc::{Process, Queue};

const N: u64 = 200_000;
const WORKERS: usize = 2;

#[multiproc::worker]
fn source(out: Queue<Option<u64>>, n: u64, workers: usize) {
    let mut i = 0;
    while i < n {
        let end = (i + 512).min(n);
        out.put_many((i..end).map(Some)).unwrap();
        i = end;
    }
    out.put_many((0..workers).map(|_| None)).unwrap();
}

#[multiproc::worker]
fn square(input: Queue<Option<u64>>, out: Queue<Option<u64>>) {
    let mut batch = Vec::with_capacity(256);
    while let Some(x) = input.get().unwrap() {
        batch.push(Some(x * x));
        if batch.len() == 256 {
            out.put_many(batch.drain(..)).unwrap();
        }
    }
    batch.push(None);
    out.put_many(batch).unwrap();
}

#[multiproc::worker]
fn sum(input: Queue<Option<u64>>, upstream: usize) -> (u64, u64) {
    let (mut total, mut count, mut ended) = (0u64, 0u64, 0);
    while ended < upstream {
        match input.get().unwrap() {
            Some(x) => {
                total = total.wrapping_add(x);
                count += 1;
            }
            None => ended += 1,
        }
    }
    (total, count)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let numbers = Queue::new()?;
    let squares = Queue::new()?;
    let t = Instant::now();
    let mut sink = Process::new(sum(squares.clone(), WORKERS)).start()?;
    let mut mids: Vec<_> = (0..WORKERS)
        .map(|_| Process::new(square(numbers.clone(), squares.clone())).start())
        .collect::<Result<_, _>>()?;
    let mut src = Process::new(source(numbers.clone(), N, WORKERS)).start()?;
    src.join()?;
    for m in &mut mids {
        m.join()?;
    }
    let (total, count) = sink.join()?;
    let el = t.elapsed();
    let want = (0..N).fold(0u64, |a, x| a.wrapping_add(x * x));
    assert_eq!((total, count), (want, N));
    println!(
        "{N} items through 3 stages ({WORKERS} squaring workers) in {el:.2?}: {:.0} items/s end to end (process start-up included)",
        N as f64 / el.as_secs_f64()
    );
    Ok(())
}
