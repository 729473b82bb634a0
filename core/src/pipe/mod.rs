//! Pipes: direct socketpairs between two processes, with no hub on the path; and `wait()`.
