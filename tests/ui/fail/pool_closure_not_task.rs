use multiproc::Pool;

fn main() {
    let pool = Pool::new(2).unwrap();
    let _ = pool.apply(|| 3u64);
}
