#[derive(serde::Serialize, serde::Deserialize)]
pub struct Clock {
    interval: f64,
}

#[multiproc::worker]
impl Clock {
    fn run<T: Default>(self) -> T {
        T::default()
    }
}

fn main() {}
