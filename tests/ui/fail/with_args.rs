#[multiproc::worker(name = "sq")]
pub fn square(x: u64) -> u64 {
    x * x
}

fn main() {}
