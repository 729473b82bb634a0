//! Port of a Python tutorial program (below), the connection pool: a Semaphore(5) limits 20
//! workers to 5 "connections" at a time. Each holds its connection for 100-200 ms (the original:
//! 1-2 s).
//!
//! Run: `cargo run --example connection_semaphore`
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process
//! from multiprocessing import Semaphore
//! from multiprocessing import current_process
//! import time
//! import random
//!
//! def get_connections(s):
//!     s.acquire()
//!     try:
//!         print(current_process().name+' acqiure a connection')
//!         time.sleep(random.randint(1,2))
//!         print(current_process().name+' finishes its job and return the connection')
//!     except:
//!         raise
//!     finally:
//!         s.release()
//!
//! if __name__=='__main__':
//!     connections=Semaphore(5)
//!     workers=[]
//!     for i in range(20):
//!         p=Process(target=get_connections,args=(connections,),name='worker:'+str(i+1))
//!         workers.append(p)
//!     for p in workers:
//!         p.start()
//!     for p in workers:
//!         p.join()
//!     print("all workers exit")
//! ```

use std::time::Duration;

use multiproc::sync::Semaphore;
use multiproc::{current_process, Process};

#[multiproc::worker]
fn get_connections(s: Semaphore) {
    let _connection = s.acquire().unwrap(); // released when dropped, even on panic (`finally`)
    println!("{} acqiure a connection", current_process().name());
    let ms = 100 + u64::from(std::process::id() % 2) * 100; // random.randint(1, 2), scaled
    std::thread::sleep(Duration::from_millis(ms));
    println!(
        "{} finishes its job and return the connection",
        current_process().name()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connections = Semaphore::new(5)?;
    let mut workers = Vec::new();
    for i in 0..20 {
        workers.push(
            Process::new(get_connections(connections.clone()))
                .name(format!("worker:{}", i + 1))
                .start()?,
        );
    }
    for p in &mut workers {
        p.join()?;
    }
    println!("all workers exit");
    Ok(())
}
