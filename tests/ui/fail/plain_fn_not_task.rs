use multiproc::Process;

// Forgot `#[multiproc::worker]`.
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let _ = Process::new(square(12)).start();
}
