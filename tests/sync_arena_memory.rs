//! The sync arena's memory: slots are reused, and 100,000 live Locks fit. A test binary of its
//! own with one test, so that no other test creates objects while it measures.

mod common;

use multiproc::sync::{slow_path_calls, Lock};

fn fast_expected() -> bool {
    !matches!(
        std::env::var("MULTIPROC_SYNC_FASTPATH").as_deref(),
        Ok("0") | Ok("off") | Ok("false") | Ok("no")
    )
}

#[cfg(target_os = "linux")]
fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn slots_are_reused_and_100_000_locks_can_live_at_once() {
    // Warm up: the hub's tables and this process's maps reach their working size.
    for _ in 0..1000 {
        drop(Lock::new().unwrap());
    }
    let arena = multiproc::sync::arena_used_bytes();
    assert_eq!(arena.is_some(), fast_expected());
    #[cfg(target_os = "linux")]
    let rss = rss_bytes();

    // 100,000 created and dropped, one at a time: the same slot over and over.
    for i in 0..100_000u32 {
        let l = Lock::new().unwrap();
        if i % 100 == 0 {
            drop(l.acquire().unwrap());
        }
    }
    assert_eq!(multiproc::sync::arena_used_bytes(), arena, "the arena grew");
    #[cfg(target_os = "linux")]
    {
        let grown = rss_bytes().saturating_sub(rss);
        assert!(grown < 16 << 20, "the root's RSS grew by {grown} bytes");
    }

    // 100,000 at once, each on the fast path.
    let locks: Vec<Lock> = (0..100_000).map(|_| Lock::new().unwrap()).collect();
    let before = slow_path_calls();
    let guards: Vec<_> = locks.iter().map(|l| l.try_acquire().unwrap().expect("free")).collect();
    assert!(locks.iter().all(|l| l.locked().unwrap()));
    drop(guards);
    assert!(locks.iter().all(|l| !l.locked().unwrap()));
    if fast_expected() {
        assert_eq!(slow_path_calls(), before, "some of the locks had no slot");
        // 64 bytes each: 100,000 slots are 6.4 MB of the arena (plus the warm-up's pages).
        let used = multiproc::sync::arena_used_bytes().unwrap();
        assert!(used <= 100_000 * 64 + (2 << 20), "the arena uses {used} bytes");
        eprintln!("arena: {arena:?} bytes at baseline, {used} with 100,000 live locks");
    }
    drop(locks);
}
