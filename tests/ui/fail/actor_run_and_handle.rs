#[derive(serde::Serialize, serde::Deserialize)]
pub struct Counter {
    n: u64,
}

#[multiproc::worker]
impl Counter {
    fn run(self) -> u64 {
        self.n
    }

    fn handle(&mut self, msg: u64) {
        self.n += msg;
    }
}

fn main() {}
