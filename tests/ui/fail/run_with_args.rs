#[derive(serde::Serialize, serde::Deserialize)]
pub struct Clock {
    interval: f64,
}

#[multiproc::worker]
impl Clock {
    fn run(self, ticks: u32, scale: f64) -> f64 {
        self.interval * f64::from(ticks) * scale
    }
}

fn main() {}
