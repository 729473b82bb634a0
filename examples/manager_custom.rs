//! Custom shared objects (Python's `BaseManager.register`): the Python docs' `MathsClass`
//! example, then a stateful object used by several processes at once.
//!
//! What to observe: `maths.add(4, 3)` prints 7 and `maths.mul(7, 8)` prints 56, computed in
//! the Manager's server process (its pid differs from ours); three children each record 1000
//! words in one shared `WordCount`, and no update is lost because the server runs one call at
//! a time; a method that panics fails only that call, with its message.
//!
//! Run: `cargo run --example manager_custom`
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing.managers import BaseManager
//!
//! class MathsClass:
//!     def add(self, x, y):
//!         return x + y
//!     def mul(self, x, y):
//!         return x * y
//!
//! class MyManager(BaseManager):
//!     pass
//!
//! MyManager.register('Maths', MathsClass)
//!
//! if __name__ == '__main__':
//!     with MyManager() as manager:
//!         maths = manager.Maths()
//!         print(maths.add(4, 3))         # prints 7
//!         print(maths.mul(7, 8))         # prints 56
//! ```

use std::collections::BTreeMap;

use multiproc::manager::{Manager, Proxy, ProxyError, SharedObject};
use multiproc::Process;
use serde::{Deserialize, Serialize};

/// Python's `MathsClass`: its methods become the variants of a call.
#[derive(Serialize, Deserialize)]
struct Maths;

#[derive(Serialize, Deserialize)]
enum MathsCall {
    Add(i64, i64),
    Mul(i64, i64),
    Div(i64, i64),
}

impl SharedObject for Maths {
    type Call = MathsCall;
    type Reply = i64;
    fn call(&mut self, c: MathsCall) -> i64 {
        match c {
            MathsCall::Add(x, y) => x + y,
            MathsCall::Mul(x, y) => x * y,
            MathsCall::Div(x, y) => x / y, // panics on y == 0: that call fails, nothing else
        }
    }
}
multiproc::register_shared!(Maths);

/// A stateful object: counts words recorded by any process.
#[derive(Default, Serialize, Deserialize)]
struct WordCount {
    counts: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
enum WordCall {
    Record(Vec<String>),
    Top(usize),
}

impl SharedObject for WordCount {
    type Call = WordCall;
    type Reply = Vec<(String, u64)>;
    fn call(&mut self, c: WordCall) -> Vec<(String, u64)> {
        match c {
            WordCall::Record(words) => {
                for w in words {
                    *self.counts.entry(w).or_default() += 1;
                }
                Vec::new()
            }
            WordCall::Top(n) => {
                let mut v: Vec<_> = self.counts.iter().map(|(w, c)| (w.clone(), *c)).collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                v.truncate(n);
                v
            }
        }
    }
}
multiproc::register_shared!(WordCount);

#[multiproc::worker]
fn count_words(wc: Proxy<WordCount>, seed: u64) {
    const WORDS: [&str; 5] = ["apple", "pear", "plum", "fig", "kiwi"];
    for i in 0..100 {
        let batch: Vec<String> = (0..10)
            .map(|j| WORDS[((seed * 7 + i * 3 + j) % 5) as usize].to_string())
            .collect();
        wc.call(WordCall::Record(batch)).expect("record");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new()?;
    let maths = manager.shared(Maths)?;
    println!("{}", maths.call(MathsCall::Add(4, 3))?); // prints 7
    println!("{}", maths.call(MathsCall::Mul(7, 8))?); // prints 56
    println!(
        "served by process {} (this is process {})",
        maths.server_pid(),
        std::process::id()
    );
    match maths.call(MathsCall::Div(1, 0)) {
        Err(ProxyError::Panicked(msg)) => println!("div(1, 0) failed in the server: {msg}"),
        other => println!("div(1, 0): {other:?}"),
    }
    println!(
        "and the server goes on: add(1, 1) = {}",
        maths.call(MathsCall::Add(1, 1))?
    );

    let wc = manager.shared(WordCount::default())?;
    let mut kids = Vec::new();
    for seed in 0..3 {
        kids.push(Process::new(count_words(wc.clone(), seed)).start()?);
    }
    for k in &mut kids {
        k.join()?;
    }
    let top = wc.call(WordCall::Top(5))?;
    let total: u64 = top.iter().map(|(_, c)| c).sum();
    println!("3 processes recorded {total} words: {top:?}");
    assert_eq!(total, 3000);

    manager.shutdown()?;
    println!("after shutdown: {:?}", maths.call(MathsCall::Add(1, 1)).unwrap_err());
    Ok(())
}
