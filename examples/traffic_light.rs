//! Port of seed `003_5936a0b074e251a5.txt`, the traffic light: a daemonic `light` process
//! toggles an Event between green (set) and red (clear); 10 cars wait for green and pass. The
//! program ends when every car has passed: the light, being a daemon, is terminated at exit,
//! as in Python. Random sleeps are scaled from up to 1 s to up to 100 ms.
//!
//! Run: `cargo run --example traffic_light`

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
