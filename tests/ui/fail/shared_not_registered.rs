// A SharedObject type must be registered (multiproc::register_shared!) before a Manager can
// serve it: the server process rebuilds it by name.
use multiproc::manager::{Manager, SharedObject};

#[derive(serde::Serialize, serde::Deserialize)]
struct Counter(u64);

impl SharedObject for Counter {
    type Call = u64;
    type Reply = u64;
    fn call(&mut self, k: u64) -> u64 {
        self.0 += k;
        self.0
    }
}

fn main() {
    let m = Manager::new().unwrap();
    let _c = m.shared(Counter(0));
}
