use multiproc::Pool;

// Forgot `#[multiproc::worker]`.
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let pool = Pool::new(2).unwrap();
    let _ = pool.map(square, 0..10u64);
}
