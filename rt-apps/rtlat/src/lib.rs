//! rtlat: a cyclictest-compatible wake-up latency tool.
//!
//! The binary (`src/main.rs`) is a thin wrapper around [`app::main_with_args`].
//! Everything else lives in modules so that it can be unit-tested:
//!
//! * [`options`]: command-line parsing (cyclictest option names and semantics),
//!   duration and [`cpuset`] parsing, per-thread parameter derivation;
//! * [`stats`]: per-thread statistics shared with the main thread through
//!   atomics, and the pre-allocated [`stats::Histogram`];
//! * [`measure`]: the measuring thread and its allocation- and syscall-free loop;
//! * [`action`]: the per-cycle action extension point (no-op by default,
//!   or one write per cycle: `--io-file`/`--io-pipe`);
//! * [`flexsc_io`]: `--io-via=flexsc`, the writes posted through FlexSC;
//! * [`uring_io`]: `--io-via=io_uring`, the writes posted through io_uring;
//! * [`kml_io`]: `--io-via=kml`, the writes through the Kernel Mode Linux
//!   trampoline (SYS mode only);
//! * [`output`]: cyclictest's text formats (status line, histogram) and JSON;
//! * [`rt`]: thin, documented wrappers around the Linux/libc calls (the only
//!   module that contains `unsafe`; the io_uring ring and the trampoline
//!   call are the `uring` and `kml` crates');
//! * [`time`]: the `timespec` arithmetic cyclictest uses.
//!
//! The output formats follow rt-tests **v2.4** (Debian bookworm's `rt-tests`
//! 2.4-1, `cyclictest V 2.40`): the histogram prints every bucket including
//! empty ones and has a `# Total:` line; the JSON keys include the literal
//! `"cmdline:"` and `"rt_test_version:"`.

pub mod action;
pub mod app;
pub mod cpuset;
pub mod flexsc_io;
pub mod kml_io;
pub mod measure;
pub mod options;
pub mod output;
pub mod rt;
pub mod stats;
pub mod time;
pub mod uring_io;

/// rtlat's own version, reported as `"rt_test_version:"` in the JSON output.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
