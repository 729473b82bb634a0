pub struct NotSerde(u8);

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Sink;

#[multiproc::worker]
impl Sink {
    fn handle(&mut self, msg: NotSerde) {
        let _ = msg.0;
    }
}

fn main() {}
