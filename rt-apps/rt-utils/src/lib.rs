//! rt-utils: the helpers every rtflex tool shares, as rt-tests keeps its
//! `src/lib` for cyclictest and friends.
//!
//! * [`sys`]: raw system calls with the six ARM EABI argument words, errno,
//!   result decoding, thread id, monotonic clock, futex wait and wake;
//! * [`affinity`]: CPU affinity of the calling thread, CPU counts;
//! * [`sched`]: scheduling policy and priority, the `RLIMIT_RTPRIO` raise
//!   cyclictest does, `mlockall`;
//! * [`alloc_count`]: a counting global allocator for tests that prove a
//!   path does not touch the heap;
//! * [`args`]: long options abbreviated as `getopt_long` allows (the
//!   parsers themselves use `lexopt`).
//!
//! Every `unsafe` block is a single FFI call (or the zero-initialisation of
//! a plain C struct) with a SAFETY comment that says why it is sound.

pub mod affinity;
pub mod alloc_count;
pub mod args;
pub mod sched;
pub mod sys;
