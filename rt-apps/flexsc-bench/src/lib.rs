//! flexsc-bench: what an exception-less system call costs compared with a
//! direct one, measured in the guest with `CLOCK_MONOTONIC`.
//!
//! 1. **Cost per call**: `getpid`, a 64-byte `write` to `/dev/null` and a
//!    64-byte `pwrite64` to a tmpfs file, each run directly (`svc #0` through
//!    glibc's `syscall()`) and through FlexSC synchronously (post one entry,
//!    wait for it).
//! 2. **Batched throughput**: post a batch of B calls (`getpid` or the
//!    `write`), then wait for all of them; calls per second. The direct
//!    baseline runs the same B calls one after the other.
//!
//! Both paths pass the same register image (`nr`, `r0..r5`) so they run the
//! same kernel code; only the way in differs. Every result is checked.
//!
//! Modules: [`options`] (command line), [`stats`] (min/median/max),
//! [`calls`] (the calls, the [`calls::Backend`] trait, the direct backend and
//! the measuring loops), [`fx`] (the FlexSC backend, the only user of the
//! `flexsc` crate), [`report`] (Markdown table and JSON line), [`app`].
//! The system calls themselves (raw calls, affinity, clock) come from
//! `rt_utils`.

pub mod app;
pub mod calls;
pub mod fx;
pub mod options;
pub mod report;
pub mod ring;
pub mod stats;
