use multiproc::Process;

#[multiproc::worker]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    // The function itself, not a call of it.
    let _ = Process::new(square).start();
}
