#[derive(serde::Serialize, serde::Deserialize)]
pub struct Clock {
    interval: f64,
}

#[multiproc::worker]
impl Clock {
    fn run() -> f64 {
        1.0
    }
}

fn main() {}
