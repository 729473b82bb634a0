#[derive(serde::Serialize, serde::Deserialize)]
pub struct Clock {
    interval: f64,
}

#[multiproc::worker]
impl Clock {
    fn run(&self) -> f64 {
        self.interval
    }
}

fn main() {}
