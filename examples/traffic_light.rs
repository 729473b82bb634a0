//! Port of a Python tutorial program (below), the traffic light: a daemonic `light` process
//! toggles an Event between green (set) and red (clear); 10 cars wait for green and pass. The
//! program ends when every car has passed: the light, being a daemon, is terminated at exit,
//! as in Python. Random sleeps are scaled from up to 1 s to up to 100 ms.
//!
//! Run: `cargo run --example traffic_light`
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process
//! from multiprocessing import Event
//! import time
//! import random
//!
//! def car(event,name):
//!     while True:
//!         if event.is_set():
//!             time.sleep(random.random())
//!             print("car {} passes...".format(name))
//!             break
//!         else:
//!             print("car {} waits...".format(name))
//!             event.wait()#阻塞直至事件状态发生变化
//!
//! def light(event):
//!     while True:
//!         if event.is_set():
//!             event.clear()
//!             print("红灯")
//!             time.sleep(random.random())
//!         else:
//!             event.set()
//!             print("绿灯")
//!             time.sleep(random.random())
//!
//! if __name__=='__main__':
//!     event=Event()
//!     event.clear()
//!     l=Process(target=light,args=(event,))
//!     l.daemon=True
//!     l.start()
//!     cars=[]
//!     for i in range(10):
//!         c=Process(target=car,args=(event,'c_'+str(i+1)))
//!         cars.append(c)
//!     for c in cars:
//!         c.start()
//!     for c in cars:
//!         c.join()
//!     print("all cars passed...")
//! ```

use std::time::Duration;

use multiproc::sync::Event;
use multiproc::Process;

fn random_ms(max: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let x = (u64::from(nanos) ^ (u64::from(std::process::id()) << 16)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Duration::from_millis((x >> 33) % max)
}

#[multiproc::worker]
fn car(event: Event, name: String) {
    loop {
        if event.is_set().unwrap() {
            std::thread::sleep(random_ms(100));
            println!("car {name} passes...");
            break;
        } else {
            println!("car {name} waits...");
            event.wait().unwrap(); // blocks until the light turns green
        }
    }
}

#[multiproc::worker]
fn light(event: Event) {
    loop {
        if event.is_set().unwrap() {
            event.clear().unwrap();
            println!("红灯 (red)");
        } else {
            event.set().unwrap();
            println!("绿灯 (green)");
        }
        std::thread::sleep(random_ms(100) + Duration::from_millis(20));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let event = Event::new()?;
    event.clear()?;
    let _light = Process::new(light(event.clone())).daemon(true).start()?;
    let mut cars = Vec::new();
    for i in 0..10 {
        cars.push(Process::new(car(event.clone(), format!("c_{}", i + 1))).start()?);
    }
    for c in &mut cars {
        c.join()?;
    }
    println!("all cars passed...");
    Ok(())
}
