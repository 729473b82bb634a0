//! Backends that run pool tasks elsewhere than in local processes. Each is built on the public
//! layers (the pool's front half, the `#[worker]` registry, the pool's chunk layout) and keeps
//! its system calls in its own `sys` module.

pub(crate) mod mpi;
