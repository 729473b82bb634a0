#[derive(serde::Serialize, serde::Deserialize)]
pub struct Clock {
    interval: f64,
}

pub trait Runnable {
    fn run(self) -> f64;
}

#[multiproc::worker]
impl Runnable for Clock {
    fn run(self) -> f64 {
        self.interval
    }
}

fn main() {}
