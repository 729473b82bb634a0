#[derive(serde::Serialize, serde::Deserialize)]
pub struct Sink;

#[multiproc::worker]
impl Sink {
    async fn handle<T>(&mut self, msg: T) {
        let _ = msg;
    }
}

fn main() {}
