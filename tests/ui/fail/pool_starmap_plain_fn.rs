use multiproc::Pool;

// Forgot `#[multiproc::worker]`.
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {
    let pool = Pool::new(2).unwrap();
    let _ = pool.starmap(add, [(1, 2), (3, 4)]);
}
