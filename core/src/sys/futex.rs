//! Futex wait and wake on a word in shared memory (Linux), with a portable fallback that
//! sleeps briefly and looks again. Used by the shared-memory ping-pong floor of the benchmarks
//! (issue 10), which the ring transport is measured against.

use std::sync::atomic::AtomicU32;
#[cfg(not(target_os = "linux"))]
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` (`None`: no limit). Returns early on
/// a wake-up, a signal, or a spurious wake: callers re-check the word.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    #[cfg(target_os = "linux")]
    {
        let ts = timeout.map(|t| nix::libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as nix::libc::time_t,
            tv_nsec: t.subsec_nanos() as nix::libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const nix::libc::timespec);
        // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word` (a live reference for the
        // duration of the call) and compares it with `expected` atomically in the kernel; the
        // timeout pointer is null or points to a timespec on this stack frame. Shared (not
        // private) futex, so it works across processes on a MAP_SHARED mapping.
        unsafe {
            nix::libc::syscall(
                nix::libc::SYS_futex,
                word.as_ptr(),
                nix::libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        if word.load(Ordering::Acquire) == expected {
            std::thread::sleep(timeout.map_or(Duration::from_micros(50), |t| t.min(Duration::from_micros(50))));
        }
    }
}

/// Wakes up to `n` waiters on `word`.
pub fn wake(word: &AtomicU32, n: u32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: FUTEX_WAKE only uses the address of `word` as a key (a live reference); it
        // reads and writes no user memory.
        unsafe {
            nix::libc::syscall(
                nix::libc::SYS_futex,
                word.as_ptr(),
                nix::libc::FUTEX_WAKE,
                n.min(i32::MAX as u32),
                std::ptr::null::<nix::libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (word, n);
    }
}
