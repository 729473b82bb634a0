//! Anonymous shared memory: a descriptor that names a memory object, and its mappings.
//!
//! - [`shared_memory`] creates a zero-filled memory object of a given size that has **no name
//!   in any file system**: on Linux a `memfd_create(2)` descriptor; elsewhere a POSIX
//!   `shm_open(3)` object whose name is unlinked immediately after creation. Either way the
//!   kernel frees the memory when the last descriptor and the last mapping are gone, so a
//!   process killed by SIGKILL leaves nothing behind (nothing in `/dev/shm`).
//! - [`Mapping`] is a `MAP_SHARED` read/write mapping of such a descriptor, unmapped on drop.
//!
//! The descriptor travels to other processes like any other (`SCM_RIGHTS`); each process maps
//! it for itself.

use std::num::NonZeroUsize;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
use std::os::fd::AsFd;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use super::Errno;

/// Creates an anonymous, zero-filled shared memory object of `len` bytes (close-on-exec).
/// `name` is informational only (it shows in `/proc/<pid>/fd` on Linux).
pub fn shared_memory(name: &str, len: usize) -> Result<OwnedFd, Errno> {
    let fd = anonymous(name)?;
    let len_off = nix::libc::off_t::try_from(len).map_err(|_| Errno::EFBIG)?;
    // ftruncate on a fresh memory object extends it with zero bytes.
    nix::unistd::ftruncate(&fd, len_off)?;
    Ok(fd)
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn anonymous(name: &str) -> Result<OwnedFd, Errno> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let clean: String = name.chars().filter(|c| *c != '\0' && *c != '/').take(200).collect();
    memfd_create(clean.as_str(), MFdFlags::MFD_CLOEXEC)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn anonymous(_name: &str) -> Result<OwnedFd, Errno> {
    use nix::fcntl::OFlag;
    use nix::sys::mman::{shm_open, shm_unlink};
    use nix::sys::stat::Mode;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for _ in 0..64 {
        // Short names: macOS limits shm names to 31 bytes.
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("/mp{}_{:x}_{:x}", std::process::id(), n, nanos);
        match shm_open(
            name.as_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
        ) {
            Ok(fd) => {
                // Unlink at once: from now on only descriptors and mappings keep it alive.
                let _ = shm_unlink(name.as_str());
                super::fd::set_cloexec(fd.as_fd(), true)?;
                return Ok(fd);
            }
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EEXIST)
}

/// Creates an anonymous, zero-filled shared memory object of `len` bytes whose size can never
/// change again: on Linux a memfd created with `MFD_ALLOW_SEALING` and sealed with
/// `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`, so a process it is passed to cannot `ftruncate`
/// it and make the creator's mapping raise `SIGBUS`. Elsewhere (no seals) it is
/// [`shared_memory`]; [`is_size_sealed`] then says `false`.
pub fn sealed_shared_memory(name: &str, len: usize) -> Result<OwnedFd, Errno> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        use nix::sys::memfd::{memfd_create, MFdFlags};
        let clean: String = name.chars().filter(|c| *c != '\0' && *c != '/').take(200).collect();
        let fd = memfd_create(clean.as_str(), MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
        let len_off = nix::libc::off_t::try_from(len).map_err(|_| Errno::EFBIG)?;
        nix::unistd::ftruncate(&fd, len_off)?;
        fcntl(
            &fd,
            FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL),
        )?;
        Ok(fd)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        shared_memory(name, len)
    }
}

/// Can the size of this memory object no longer change (`F_SEAL_SHRINK` and `F_SEAL_GROW`
/// set)? Always `false` where seals do not exist.
pub fn is_size_sealed(fd: BorrowedFd<'_>) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        match fcntl(fd, FcntlArg::F_GET_SEALS) {
            Ok(bits) => {
                let seals = SealFlag::from_bits_truncate(bits);
                seals.contains(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW)
            }
            Err(_) => false,
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let _ = fd;
        false
    }
}

/// A sealed memory object holding a copy of `bytes` (issue 10, large payloads): written with
/// `pwrite` (one copy, no page faults in this process), then sealed against writes and
/// resizing, so that whoever receives it reads exactly what was written. Linux only: elsewhere
/// `ENOSYS`, and callers send the bytes inline.
pub fn sealed_copy_of(name: &str, bytes: &[u8]) -> Result<OwnedFd, Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        use nix::sys::memfd::{memfd_create, MFdFlags};
        let clean: String = name.chars().filter(|c| *c != '\0' && *c != '/').take(200).collect();
        let fd = memfd_create(clean.as_str(), MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
        let mut off = 0usize;
        while off < bytes.len() {
            let at = nix::libc::off_t::try_from(off).map_err(|_| Errno::EFBIG)?;
            match nix::sys::uio::pwrite(&fd, &bytes[off..], at) {
                Ok(0) => return Err(Errno::EIO),
                Ok(n) => off += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        fcntl(
            &fd,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SEAL,
            ),
        )?;
        Ok(fd)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (name, bytes);
        Err(Errno::ENOSYS)
    }
}

/// Reads the whole content of a memory object that must be exactly `len` bytes long, with
/// `pread` (one copy; never `SIGBUS`, whatever the sender does to the object).
pub fn read_whole(fd: BorrowedFd<'_>, len: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    read_whole_into(fd, len, &mut out)?;
    Ok(out)
}

/// [`read_whole`] into `out` (resized to `len`; its capacity is reused, so a caller that
/// keeps the buffer reads into pages that are already mapped).
pub fn read_whole_into(fd: BorrowedFd<'_>, len: usize, out: &mut Vec<u8>) -> Result<(), Errno> {
    if object_size(fd)? != len {
        return Err(Errno::EBADMSG);
    }
    out.clear();
    out.resize(len, 0);
    let mut off = 0usize;
    while off < len {
        let at = nix::libc::off_t::try_from(off).map_err(|_| Errno::EFBIG)?;
        match nix::sys::uio::pread(fd, &mut out[off..], at) {
            Ok(0) => return Err(Errno::EBADMSG),
            Ok(n) => off += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The size in bytes of the object a descriptor names.
pub fn object_size(fd: BorrowedFd<'_>) -> Result<usize, Errno> {
    let st = nix::sys::stat::fstat(fd)?;
    usize::try_from(st.st_size).map_err(|_| Errno::EFBIG)
}

/// The memory in bytes that a memory object really uses (allocated blocks; a sparse object
/// uses only what has been written). 0 where the platform does not report it.
pub fn allocated_bytes(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok(u64::try_from(st.st_blocks).unwrap_or(0).saturating_mul(512))
}

/// A shared read/write mapping of a memory object, unmapped when dropped.
///
/// The mapping is page-aligned, so any type whose alignment is at most the page size (4 KiB)
/// is aligned at offset 0.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Mapping is an address range; it has no thread affinity. What is stored in it, and
// who may access it concurrently, is the business of the types built on it (crate::shm), which
// only allow access through volatile copies, atomics, or under a lock.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out the raw base pointer.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes (at least 1) of `fd` from offset 0, shared and read/write.
    pub fn new(fd: BorrowedFd<'_>, len: usize) -> Result<Mapping, Errno> {
        let len = len.max(1);
        let nz = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: we ask the kernel for a fresh mapping at an address of its choosing (no
        // MAP_FIXED), so no existing memory of this process is replaced. The descriptor is
        // valid for the duration of the call (borrowed). The mapping is owned by the returned
        // value and unmapped exactly once, in Drop.
        let ptr = unsafe {
            mmap(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )?
        };
        Ok(Mapping { ptr: ptr.cast(), len })
    }

    /// The base address (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapped length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Is the mapping empty? (Never: at least one byte is mapped.)
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; this is the only unmap of the range,
        // and every reference into it is tied to the lifetime of this Mapping (the shm types
        // hold it in an Arc and only hand out copies or references that borrow it).
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// Gives memory the allocator holds free back to the operating system, where it can (glibc's
/// `malloc_trim`, which releases free pages in every arena); a no-op elsewhere. For a process
/// that has just freed a lot of memory and may not reuse it soon (the hub, after a queue that
/// held millions of items was drained).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers; it only walks the allocator's own free lists.
        unsafe {
            nix::libc::malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A sealed object cannot be shrunk or grown by anyone it is passed to (issue 10: no
    /// `SIGBUS` in the hub's mapping).
    #[test]
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    fn sealed_memory_cannot_be_resized() {
        let fd = sealed_shared_memory("t", 8192).unwrap();
        assert!(is_size_sealed(fd.as_fd()));
        assert_eq!(object_size(fd.as_fd()).unwrap(), 8192);
        assert!(nix::unistd::ftruncate(&fd, 0).is_err());
        assert!(nix::unistd::ftruncate(&fd, 1 << 20).is_err());
        assert_eq!(object_size(fd.as_fd()).unwrap(), 8192);
        let plain = shared_memory("t", 4096).unwrap();
        assert!(!is_size_sealed(plain.as_fd()));
    }

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn a_sealed_copy_reads_back_whole_and_only_at_its_length() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let fd = sealed_copy_of("t", &data).unwrap();
        assert_eq!(read_whole(fd.as_fd(), data.len()).unwrap(), data);
        assert!(read_whole(fd.as_fd(), data.len() + 1).is_err());
        assert!(nix::unistd::ftruncate(&fd, 0).is_err());
        assert!(nix::sys::uio::pwrite(&fd, b"x", 0).is_err());
    }
}
