// `close()` consumes the handle of an ended process (Python's `close()`): using it afterwards,
// Python's `ValueError: process object is closed`, is a compile error.
#[multiproc::worker]
fn work() {}

fn main() {
    let mut p = multiproc::Process::new(work()).start().unwrap();
    p.join().unwrap();
    let _status = p.close();
    let _alive = p.is_alive();
}
