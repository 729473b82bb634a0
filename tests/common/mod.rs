//! Helpers shared by the sync integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use multiproc::sync::Semaphore;
use multiproc::Process;
use serde::de::DeserializeOwned;

/// Child processes that are killed and reaped when the test ends, even if it fails.
pub struct Kids<T: DeserializeOwned>(pub Vec<Process<T>>);

impl<T: DeserializeOwned> Kids<T> {
    pub fn new() -> Self {
        Kids(Vec::new())
    }

    pub fn push(&mut self, p: Process<T>) -> usize {
        self.0.push(p);
        self.0.len() - 1
    }

    /// Joins every child, panicking with the child's error if one failed.
    pub fn join_all(&mut self) -> Vec<T> {
        self.0
            .iter_mut()
            .map(|p| p.join_timeout(Duration::from_secs(60)).expect("child failed"))
            .collect()
    }
}

impl<T: DeserializeOwned> Drop for Kids<T> {
    fn drop(&mut self) {
        for p in &mut self.0 {
            if p.exitcode().is_none() {
                let _ = p.kill();
            }
            let _ = p.join_timeout(Duration::from_secs(10));
        }
    }
}

/// Polls `f` until it returns true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Takes one permit of a signalling semaphore (a raw permit: it is consumed).
pub fn take(sem: &Semaphore, limit: Duration) {
    sem.acquire_timeout(limit)
        .expect("semaphore")
        .expect("timed out waiting for a signal")
        .forget();
}

/// A shared counter: CPython's tests use a semaphore's value the same way.
pub fn count(sem: &Semaphore) -> u64 {
    sem.get_value().expect("get_value")
}
