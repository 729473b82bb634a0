#[derive(serde::Serialize, serde::Deserialize)]
pub struct Greeter;

#[multiproc::worker]
impl Greeter {
    fn handle(&mut self, msg: &str) {
        let _ = msg;
    }
}

fn main() {}
