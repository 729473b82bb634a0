//! The only place that calls MPI: the "sys" layer of the MPI backend.
//!
//! # Threads
//! The library is initialised with `MPI_THREAD_SERIALIZED` (any thread may call MPI, one at a
//! time), and every call below takes [`LOCK`], so calls never overlap. Waiting is done by
//! polling (`MPI_Improbe`, `MPI_Test`) outside the lock, with a backoff (see `mod.rs`). The
//! calls that may wait while holding the lock are `MPI_Send` (until the receiver takes a large
//! message; every receiver is always polling, and rank 0 sends chunks with `MPI_Isend`, so two
//! ranks never wait for each other) and `MPI_Finalize`. So rank 0's pool manager thread and its main thread (the exit hook) can both
//! use MPI, and there is no dedicated MPI thread. `MPI_THREAD_MULTIPLE` is not needed (and
//! costs Open MPI a lock on every call of its own).
//!
//! After `MPI_Finalize` every function here fails with [`MpiSysError::Finalized`] instead of
//! calling MPI again (which is erroneous).

use std::ffi::c_int;
use std::sync::{Mutex, MutexGuard};

use mpi::ffi;

/// Serialises every MPI call of this process (see the module docs). `true` once finalised.
static LOCK: Mutex<bool> = Mutex::new(false);

fn lock() -> Result<MutexGuard<'static, bool>, MpiSysError> {
    let g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if *g {
        return Err(MpiSysError::Finalized);
    }
    Ok(g)
}

/// An MPI call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MpiSysError {
    /// An MPI function returned an error code.
    #[error("{call} failed with MPI error code {code}")]
    Call {
        /// The MPI function.
        call: &'static str,
        /// Its return code.
        code: i32,
    },
    /// MPI was already finalised in this process (the job is ending).
    #[error("MPI has been finalised in this process (the job is ending)")]
    Finalized,
    /// A message is larger than an MPI count (`i32::MAX` bytes) can describe.
    #[error("a message of {0} bytes is larger than one MPI message may be")]
    TooLarge(usize),
}

fn check(call: &'static str, code: c_int) -> Result<(), MpiSysError> {
    // MPI_SUCCESS is 0 in every implementation.
    if code == 0 {
        Ok(())
    } else {
        Err(MpiSysError::Call { call, code })
    }
}

/// Initialises MPI with `MPI_THREAD_SERIALIZED`; returns the level the library provides
/// (compare with [`serialized`]).
pub fn init() -> Result<c_int, MpiSysError> {
    let _g = lock()?;
    let mut provided: c_int = 0;
    // SAFETY: called once, from the main thread before `main`; null argc/argv are allowed by
    // the standard; `provided` is a valid out-pointer.
    let code = unsafe {
        ffi::MPI_Init_thread(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            ffi::RSMPI_THREAD_SERIALIZED,
            &mut provided,
        )
    };
    check("MPI_Init_thread", code)?;
    Ok(provided)
}

/// The thread level we need.
pub fn serialized() -> c_int {
    // SAFETY: reading a constant the C shim of mpi-sys defines.
    unsafe { ffi::RSMPI_THREAD_SERIALIZED }
}

/// This process's rank in `MPI_COMM_WORLD`.
pub fn rank() -> Result<i32, MpiSysError> {
    let _g = lock()?;
    let mut r: c_int = 0;
    // SAFETY: MPI is initialised (callers run after `init`); `r` is a valid out-pointer.
    check("MPI_Comm_rank", unsafe {
        ffi::MPI_Comm_rank(ffi::RSMPI_COMM_WORLD, &mut r)
    })?;
    Ok(r)
}

/// The size of `MPI_COMM_WORLD`.
pub fn size() -> Result<i32, MpiSysError> {
    let _g = lock()?;
    let mut s: c_int = 0;
    // SAFETY: as in `rank`.
    check("MPI_Comm_size", unsafe {
        ffi::MPI_Comm_size(ffi::RSMPI_COMM_WORLD, &mut s)
    })?;
    Ok(s)
}

/// The first line of `MPI_Get_library_version` ("Open MPI v4.1.4, ...", "MPICH Version: ...").
/// Callable before `MPI_Init`.
pub fn library_version() -> String {
    let Ok(_g) = lock() else {
        return "an unknown MPI".into();
    };
    // MPI_MAX_LIBRARY_VERSION_STRING is a few hundred bytes (8 KiB in MPICH); 16 KiB is enough.
    let mut buf = vec![0u8; 16384];
    let mut len: c_int = 0;
    // SAFETY: `buf` is larger than MPI_MAX_LIBRARY_VERSION_STRING; `len` is an out-pointer.
    let code = unsafe { ffi::MPI_Get_library_version(buf.as_mut_ptr().cast(), &mut len) };
    if code != 0 {
        return "an unknown MPI".into();
    }
    buf.truncate((len.max(0) as usize).min(buf.len()));
    let s = String::from_utf8_lossy(&buf);
    let s = s.trim_end_matches('\0');
    s.lines().next().unwrap_or("an unknown MPI").trim().to_owned()
}

/// Sends `bytes` to `dest` with `tag` and waits until the buffer may be reused (small
/// messages: at once; large ones: once the receiver takes them).
pub fn send(dest: i32, tag: i32, bytes: &[u8]) -> Result<(), MpiSysError> {
    let count = c_int::try_from(bytes.len()).map_err(|_| MpiSysError::TooLarge(bytes.len()))?;
    let _g = lock()?;
    // SAFETY: `bytes` is valid for `count` bytes for the duration of this blocking call.
    let code = unsafe {
        ffi::MPI_Send(
            bytes.as_ptr().cast(),
            count,
            ffi::RSMPI_UINT8_T,
            dest,
            tag,
            ffi::RSMPI_COMM_WORLD,
        )
    };
    check("MPI_Send", code)
}

/// A non-blocking send in progress: it owns its buffer until MPI is done with it.
pub struct PendingSend {
    req: ffi::MPI_Request,
    // Never read: MPI reads it, through the pointer given to MPI_Isend. A `Vec`'s heap buffer
    // does not move when the `Vec` (or this struct) moves.
    _buf: Vec<u8>,
    done: bool,
}

// SAFETY: the request handle is only used under `LOCK`, from whichever thread owns the value.
unsafe impl Send for PendingSend {}

/// Starts sending `buf` to `dest` with `tag`; poll the result with [`PendingSend::test`].
pub fn isend(dest: i32, tag: i32, buf: Vec<u8>) -> Result<PendingSend, MpiSysError> {
    let count = c_int::try_from(buf.len()).map_err(|_| MpiSysError::TooLarge(buf.len()))?;
    let _g = lock()?;
    // SAFETY: reading the null-request constant of the shim.
    let mut req = unsafe { ffi::RSMPI_REQUEST_NULL };
    // SAFETY: `buf`'s heap buffer stays valid and unmodified until the request completes:
    // `PendingSend` owns it, and its `Drop` waits for the request.
    let code = unsafe {
        ffi::MPI_Isend(
            buf.as_ptr().cast(),
            count,
            ffi::RSMPI_UINT8_T,
            dest,
            tag,
            ffi::RSMPI_COMM_WORLD,
            &mut req,
        )
    };
    check("MPI_Isend", code)?;
    Ok(PendingSend {
        req,
        _buf: buf,
        done: false,
    })
}

impl PendingSend {
    /// Has MPI finished with the buffer?
    pub fn test(&mut self) -> bool {
        if self.done {
            return true;
        }
        let Ok(_g) = lock() else {
            // Finalised: nothing will ever complete; the buffer may go.
            self.done = true;
            return true;
        };
        let mut flag: c_int = 0;
        // SAFETY: `self.req` is an active request from MPI_Isend; a zeroed MPI_Status is a
        // valid out-buffer.
        let code = unsafe {
            let mut st: ffi::MPI_Status = std::mem::zeroed();
            ffi::MPI_Test(&mut self.req, &mut flag, &mut st)
        };
        if code != 0 || flag != 0 {
            self.done = true;
        }
        self.done
    }
}

impl Drop for PendingSend {
    fn drop(&mut self) {
        // The buffer must outlive the request: poll until MPI is done with it. Receivers always
        // drain their messages, so this ends (or the job is torn down by the launcher).
        let mut spins = 0u32;
        while !self.test() {
            spins += 1;
            if spins > 100 {
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        }
    }
}

/// A received message.
pub struct Received {
    /// The sender's rank.
    pub source: i32,
    /// The message's tag.
    pub tag: i32,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Receives one message from `source` (or any rank if `None`) with any tag, if one is waiting.
/// Never blocks (matched probe, then a receive of exactly that message).
pub fn try_recv(source: Option<i32>) -> Result<Option<Received>, MpiSysError> {
    try_recv_tag(source, None)
}

/// [`try_recv`] of messages with `tag` only (any tag if `None`).
pub fn try_recv_tag(source: Option<i32>, tag: Option<i32>) -> Result<Option<Received>, MpiSysError> {
    let _g = lock()?;
    // SAFETY: reading constants of the shim.
    let (any_source, any_tag) = unsafe { (ffi::RSMPI_ANY_SOURCE, ffi::RSMPI_ANY_TAG) };
    let mut flag: c_int = 0;
    // SAFETY: reading a constant of the shim.
    let mut msg = unsafe { ffi::RSMPI_MESSAGE_NO_PROC };
    // SAFETY: a zeroed MPI_Status is a valid out-buffer.
    let mut st: ffi::MPI_Status = unsafe { std::mem::zeroed() };
    // SAFETY: all pointers are valid out-pointers for the duration of the call.
    let code = unsafe {
        ffi::MPI_Improbe(
            source.unwrap_or(any_source),
            tag.unwrap_or(any_tag),
            ffi::RSMPI_COMM_WORLD,
            &mut flag,
            &mut msg,
            &mut st,
        )
    };
    check("MPI_Improbe", code)?;
    if flag == 0 {
        return Ok(None);
    }
    let mut count: c_int = 0;
    // SAFETY: `st` was filled by the matched probe.
    check("MPI_Get_count", unsafe {
        ffi::MPI_Get_count(&st, ffi::RSMPI_UINT8_T, &mut count)
    })?;
    let mut bytes = vec![0u8; count.max(0) as usize];
    // SAFETY: `bytes` has room for exactly `count` bytes; `msg` is the matched message, which
    // MPI_Mrecv consumes.
    let code = unsafe {
        let mut st2: ffi::MPI_Status = std::mem::zeroed();
        ffi::MPI_Mrecv(bytes.as_mut_ptr().cast(), count, ffi::RSMPI_UINT8_T, &mut msg, &mut st2)
    };
    check("MPI_Mrecv", code)?;
    Ok(Some(Received {
        source: st.MPI_SOURCE,
        tag: st.MPI_TAG,
        bytes,
    }))
}

/// Finalises MPI (once; later calls and every other function then fail with `Finalized`).
pub fn finalize() {
    let mut g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if *g {
        return;
    }
    *g = true;
    // SAFETY: MPI was initialised; no other call runs (we hold the lock, and it stays marked
    // finalised).
    unsafe {
        ffi::MPI_Finalize();
    }
}

/// Ends the whole job (`MPI_Abort` on `MPI_COMM_WORLD`): the launcher kills every rank.
pub fn abort(code: i32) -> ! {
    // Not under the lock: a thread that panicked while holding it must still be able to end the
    // job. MPI_Abort may be called from any thread.
    // SAFETY: MPI_Abort with the world communicator; it does not return in practice.
    unsafe {
        ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code);
    }
    std::process::abort()
}
