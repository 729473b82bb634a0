use multiproc::actor::Flow;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Counter {
    n: u64,
}

#[multiproc::worker]
impl Counter {
    fn handle(&mut self) -> Flow {
        Flow::Continue
    }

    fn init(&mut self, a: u8, b: u8) {
        let _ = (a, b);
    }
}

fn main() {}
