//! Port of a Python tutorial program (below), "进程的同步" (process synchronisation): 20 client
//! processes buy train tickets recorded in a JSON file. Without the lock (`task`), clients read
//! the same count and the tickets are over-sold; with the lock (`lock_task`), exactly the
//! available tickets are sold. Random sleeps are scaled down from up to 1 s to up to 50 ms.
//!
//! Run: `cargo run --example ticket_buying`
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process
//! from multiprocessing import Lock
//! import json
//! import random
//! import time
//!
//! tf='ticks.json'
//!
//! def info():
//!     ticks=json.load(open(tf))
//!     print("ticks from {} to {} left {}".format(ticks['origin'],ticks['dest'],ticks['count']))
//!
//! def buy(pname):
//!     ticks=json.load(open(tf))
//!     time.sleep(random.random())
//!     if ticks['count']>0:
//!         ticks['count']-=1
//!         time.sleep(random.random())
//!         json.dump(ticks,open(tf,'w'))
//!         print('{} buy one tick from {} to {}!'.format(pname,ticks['origin'],ticks['dest']))
//!     else:
//!         print('oh....no ticks :(')
//!
//! def task(pname):
//!     info()
//!     buy(pname)
//!
//! #加锁
//! def lock_task(name,lock):
//!     info()
//!     lock.acquire()
//!     try:
//!         buy(name)
//!     except:
//!         raise
//!     finally:
//!         lock.release()
//!
//! if __name__=='__main__':
//!     lock=Lock()
//!     clients=[]
//!     for i in range(20):
//!         name='client-{}'.format(i+1)
//!         #p=Process(target=task,name=name,args=(name,))
//!         p=Process(target=lock_task,name=name,args=(name,lock))
//!         clients.append(p)
//!     for p in clients:
//!         p.start()
//!     for p in clients:
//!         p.join()
//!     print("all clients finished...")
//! ```

use std::time::Duration;

use multiproc::sync::Lock;
use multiproc::{current_process, Process};

const TICKETS: u64 = 3;

/// A small random sleep (no rand dependency: time and pid as the seed).
fn random_sleep() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let x = (u64::from(nanos) ^ (u64::from(std::process::id()) << 16)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    std::thread::sleep(Duration::from_millis((x >> 33) % 50));
}

/// The ticket file, `{"origin": .., "dest": .., "count": ..}` as in the Python original. Written
/// and read by hand so that the example needs no JSON crate.
struct Ticks {
    origin: String,
    dest: String,
    count: u64,
}

impl Ticks {
    fn to_json(&self) -> String {
        format!(
            r#"{{"origin": "{}", "dest": "{}", "count": {}}}"#,
            self.origin, self.dest, self.count
        )
    }
}

/// The string or number after `"key":` in a flat JSON object.
fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let rest = json.find(&pat).map_or("", |i| &json[i + pat.len()..]);
    rest.trim_start()
        .trim_start_matches('"')
        .split(['"', ',', '}'])
        .next()
        .unwrap_or("")
        .trim()
}

fn load(tf: &str) -> Ticks {
    let json = std::fs::read_to_string(tf).unwrap();
    Ticks {
        origin: field(&json, "origin").to_string(),
        dest: field(&json, "dest").to_string(),
        count: field(&json, "count").parse().unwrap_or(0),
    }
}

fn info(tf: &str) {
    let ticks = load(tf);
    println!("ticks from {} to {} left {}", ticks.origin, ticks.dest, ticks.count);
}

/// Returns true if this client bought a ticket.
fn buy(tf: &str, pname: &str) -> bool {
    let mut ticks = load(tf);
    random_sleep();
    if ticks.count > 0 {
        ticks.count -= 1;
        random_sleep();
        std::fs::write(tf, ticks.to_json()).unwrap();
        println!("{pname} buy one tick from {} to {}!", ticks.origin, ticks.dest);
        true
    } else {
        println!("oh....no ticks :(");
        false
    }
}

#[multiproc::worker]
fn task(tf: String) -> bool {
    info(&tf);
    buy(&tf, current_process().name())
}

#[multiproc::worker]
fn lock_task(tf: String, lock: Lock) -> bool {
    info(&tf);
    lock.acquire().unwrap().forget(); // lock.acquire()
    let bought = std::panic::catch_unwind(|| buy(&tf, current_process().name()));
    lock.release().unwrap(); // finally: lock.release()
    bought.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn run(tf: &str, lock: Option<&Lock>) -> Result<u64, Box<dyn std::error::Error>> {
    let ticks = Ticks {
        origin: "Beijing".into(),
        dest: "Shanghai".into(),
        count: TICKETS,
    };
    std::fs::write(tf, ticks.to_json())?;
    let mut clients = Vec::new();
    for i in 0..20 {
        let name = format!("client-{}", i + 1);
        let p = match lock {
            None => Process::new(task(tf.to_string())).name(&name).start()?,
            Some(l) => Process::new(lock_task(tf.to_string(), l.clone())).name(&name).start()?,
        };
        clients.push(p);
    }
    let mut sold = 0;
    for p in &mut clients {
        sold += u64::from(p.join()?);
    }
    println!("all clients finished...");
    Ok(sold)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tf = std::env::temp_dir().join(format!("multiproc-ticks-{}.json", std::process::id()));
    let tf = tf.to_string_lossy().into_owned();

    println!("== without the lock ==");
    let sold = run(&tf, None)?;
    println!("sold {sold} tickets, but only {TICKETS} existed (the race over-sells)\n");

    println!("== with the lock ==");
    let lock = Lock::new()?;
    let sold = run(&tf, Some(&lock))?;
    println!("sold {sold} tickets of {TICKETS}: exact");
    assert_eq!(sold, TICKETS);
    std::fs::remove_file(&tf)?;
    Ok(())
}
