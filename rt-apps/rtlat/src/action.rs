//! Per-cycle action: the extension point for "do some work every cycle".
//!
//! A measuring thread calls [`CycleAction::on_cycle`] once per cycle, right
//! after the sample has been recorded and before it computes the next wake-up
//! time, so the action's cost shows up in the following samples exactly as an
//! application's per-period work would.
//!
//! Today the only action is [`NoAction`], which compiles to nothing: the
//! measuring loop is generic over the action, so the default build keeps the
//! "no syscall, no allocation in the loop" guarantee.
//!
//! Adding an action later (e.g. "write each sample to a file or pipe",
//! directly or through io_uring / a helper thread):
//! 1. implement [`CycleAction`] for a new type; open files, allocate and
//!    pre-fault buffers in [`CycleAction::prepare`] (runs on the measuring
//!    thread after pinning and priority setup, before the loop);
//! 2. add a variant to [`ActionKind`] (plus a command-line option in
//!    `options.rs` that selects it);
//! 3. construct it in [`crate::app`]'s `spawn_thread` (the `match` on
//!    [`ActionKind`]). Such an action may make syscalls in the loop by
//!    design; the syscall test in `tests/cli.rs` covers the default only.

use crate::time::Ts;
use std::io;

/// What the measuring thread knows about the cycle that just completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Thread index (the `T:` number).
    pub thread: usize,
    /// Cycle number, starting at 0.
    pub cycle: u64,
    /// Latency in µs (ns with `-N`).
    pub latency: i64,
    /// Programmed (absolute) wake-up time.
    pub expected: Ts,
    /// Time read right after waking up.
    pub woke: Ts,
}

/// Work done once per cycle by a measuring thread.
pub trait CycleAction: Send {
    /// Called once on the measuring thread before the loop: open, allocate and
    /// pre-fault here.
    fn prepare(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Called every cycle inside the measuring loop. An error ends this
    /// thread's measurement and is reported.
    fn on_cycle(&mut self, sample: &Sample) -> io::Result<()>;

    /// Called once after the loop (flush, close).
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The default action: nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoAction;

impl CycleAction for NoAction {
    #[inline(always)]
    fn on_cycle(&mut self, _sample: &Sample) -> io::Result<()> {
        Ok(())
    }
}

/// Which [`CycleAction`] the measuring threads run (selected by options).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ActionKind {
    /// [`NoAction`].
    #[default]
    Noop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noop_is_default_and_does_nothing() {
        assert_eq!(ActionKind::default(), ActionKind::Noop);
        let mut a = NoAction;
        let s = Sample {
            thread: 0,
            cycle: 0,
            latency: 5,
            expected: Ts::new(1, 0),
            woke: Ts::new(1, 5000),
        };
        assert!(a.prepare().is_ok());
        assert!(a.on_cycle(&s).is_ok());
        assert!(a.finish().is_ok());
    }
}
