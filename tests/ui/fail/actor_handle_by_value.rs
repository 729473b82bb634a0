use multiproc::actor::{ActorContext, Flow};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Counter {
    n: u64,
}

#[multiproc::worker]
impl Counter {
    fn handle(self, msg: u64, _cx: &mut ActorContext<u64>) -> Flow {
        let _ = (self.n, msg);
        Flow::Continue
    }
}

fn main() {}
