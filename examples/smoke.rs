use multiproc::{mailbox, Process, StartMethod};

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::worker]
fn greeter() -> String {
    let name: String = mailbox().recv().unwrap();
    format!("hello, {name}")
}

#[multiproc::worker]
fn boom() {
    panic!("boom here");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for m in [StartMethod::Spawn, StartMethod::ForkServer, StartMethod::Fork] {
        let t = std::time::Instant::now();
        let mut p = Process::new(square(12)).start_method(m).start()?;
        let r = p.join();
        println!(
            "{m:?}: pid {} name {} -> {:?} in {:?}",
            p.pid(),
            p.name(),
            r,
            t.elapsed()
        );
        let mut g = Process::new(greeter()).start_method(m).start()?;
        g.send(&"world".to_string())?;
        println!("  greeter: {:?} exit {:?}", g.join(), g.exit_status());
        let mut b = Process::new(boom()).start_method(m).start()?;
        println!("  boom: {:?} code {:?}", b.join(), b.exitcode());
    }
    let mut f = Process::fork(|| 5u32 + 6).start()?;
    println!("closure: {:?}", f.join());
    Ok(())
}
