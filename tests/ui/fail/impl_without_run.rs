#[derive(serde::Serialize, serde::Deserialize)]
pub struct Clock {
    interval: f64,
}

#[multiproc::worker]
impl Clock {
    fn start(self) -> f64 {
        self.interval
    }
}

fn main() {}
