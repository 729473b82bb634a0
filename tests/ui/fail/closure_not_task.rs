use multiproc::Process;

fn main() {
    let n = 12u64;
    let _ = Process::new(move || n * n).start();
}
