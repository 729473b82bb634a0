#[multiproc::worker]
pub struct Clock {
    interval: f64,
}

fn main() {}
