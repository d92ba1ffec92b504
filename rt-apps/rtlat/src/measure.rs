//! The measuring thread.
//!
//! Set-up (pinning, priority, allocation, pre-faulting) happens in
//! [`thread_main`] before the loop. The loop itself, [`Measurement::run_loop`],
//! only calls `clock_nanosleep(TIMER_ABSTIME)` and `clock_gettime`, updates
//! plain fields of pre-allocated memory and stores to atomics: no heap
//! allocation, no locks, no other syscalls (tests/noalloc.rs and the strace
//! test in tests/cli.rs check this).

use crate::action::{CycleAction, Sample};
use crate::options::{Clock, Policy};
use crate::rt;
use crate::stats::{Histogram, LiveStats, Summary, ThreadState};
use crate::time::Ts;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Bytes of stack touched before the loop so that it never page-faults.
pub const PREFAULT_STACK_BYTES: usize = 64 * 1024;

/// Everything one measuring thread needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadSpec {
    pub index: usize,
    /// CPU to pin to; `None` leaves the affinity alone.
    pub cpu: Option<usize>,
    pub policy: Policy,
    pub priority: i32,
    pub interval_us: u32,
    pub clock: Clock,
    /// 0 = endless.
    pub max_cycles: u64,
    /// 0 = no limit.
    pub duration_s: u64,
    pub nsecs: bool,
    /// Histogram buckets, 0 = none.
    pub histogram: usize,
}

/// Why a measuring thread stopped early.
#[derive(Debug)]
pub enum ThreadError {
    Scheduler {
        policy: Policy,
        priority: i32,
        err: io::Error,
    },
    Clock(i32),
    Sleep(i32),
    Action(io::Error),
}

impl fmt::Display for ThreadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadError::Scheduler {
                policy,
                priority,
                err,
            } => write!(
                f,
                "failed to set policy {} priority {}: {err}{}",
                policy.name(),
                priority,
                if err.raw_os_error() == Some(libc::EPERM) {
                    " (run as root or with CAP_SYS_NICE / an RLIMIT_RTPRIO that allows it)"
                } else {
                    ""
                }
            ),
            ThreadError::Clock(e) => write!(f, "clock_gettime failed: {}", rt::strerror(*e)),
            ThreadError::Sleep(e) => write!(f, "clock_nanosleep failed: {}", rt::strerror(*e)),
            ThreadError::Action(e) => write!(f, "per-cycle action failed: {e}"),
        }
    }
}

/// What a measuring thread hands back when it ends.
#[derive(Debug)]
pub struct ThreadOutcome {
    pub summary: Summary,
    pub histogram: Option<Histogram>,
    pub error: Option<ThreadError>,
    /// The thread's own CPU time over its measuring loop (ns,
    /// `CLOCK_THREAD_CPUTIME_ID`), per-cycle action included.
    pub cpu_ns: u64,
}

/// Start gate: measuring threads finish their set-up, then wait here until
/// the main thread has created all of them and finished its own set-up, so
/// that no set-up work (of any thread) overlaps the measuring loops.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every waiting and future [`Gate::wait`] caller through.
    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Blocks until [`Gate::open`] was called.
    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = self.cv.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A prepared measurement: all memory allocated, ready to run.
pub struct Measurement<'a, A: CycleAction> {
    index: usize,
    clock: libc::clockid_t,
    interval: Ts,
    max_cycles: u64,
    duration_s: u64,
    nsecs: bool,
    live: &'a LiveStats,
    stop: &'a AtomicBool,
    hist: Option<Histogram>,
    summary: Summary,
    action: A,
    /// CPU time of the thread over `run_loop` (ns).
    cpu_ns: u64,
}

impl<'a, A: CycleAction> Measurement<'a, A> {
    /// Allocates and pre-faults the histogram. Call on the measuring thread
    /// after pinning it, so the memory is local to its CPU.
    pub fn new(spec: &ThreadSpec, live: &'a LiveStats, stop: &'a AtomicBool, action: A) -> Self {
        let hist = (spec.histogram > 0).then(|| {
            let mut h = Histogram::new(spec.histogram);
            h.prefault();
            h
        });
        Measurement {
            index: spec.index,
            clock: rt::clock_id(spec.clock),
            interval: Ts::from_us(spec.interval_us as u64),
            max_cycles: spec.max_cycles,
            duration_s: spec.duration_s,
            nsecs: spec.nsecs,
            live,
            stop,
            hist,
            summary: Summary::new(),
            action,
            cpu_ns: 0,
        }
    }

    /// The per-cycle action (for `prepare`/`finish`).
    pub fn action_mut(&mut self) -> &mut A {
        &mut self.action
    }

    /// The measuring loop: sleep until `next`, read the clock, record
    /// `now - next`, advance `next` by the interval (skipping missed periods
    /// like cyclictest), until the loop count, the duration or [`rt::STOP`].
    /// The thread's CPU time is read once before and once after the loop
    /// (not per cycle: on boards without a vDSO clock each read is a system
    /// call).
    pub fn run_loop(&mut self) -> Result<(), ThreadError> {
        let c0 = rt_utils::sys::thread_cpu_ns();
        let r = self.cycles();
        self.cpu_ns = rt_utils::sys::thread_cpu_ns() - c0;
        r
    }

    /// The thread's own CPU time over the last `run_loop` (ns): sleeping,
    /// waking, the clock reads, the bookkeeping and the per-cycle action.
    pub fn cpu_ns(&self) -> u64 {
        self.cpu_ns
    }

    fn cycles(&mut self) -> Result<(), ThreadError> {
        let mut now = rt::clock_gettime(self.clock).map_err(ThreadError::Clock)?;
        let mut next = now + self.interval;
        let stop_at = Ts::new(now.sec.saturating_add(self.duration_s as i64), now.nsec);
        while !self.stop.load(Ordering::Relaxed) {
            match rt::clock_nanosleep_abs(self.clock, &next) {
                0 => {}
                // A signal: re-check the stop flag and sleep again if unset.
                libc::EINTR => continue,
                e => return Err(ThreadError::Sleep(e)),
            }
            now = rt::clock_gettime(self.clock).map_err(ThreadError::Clock)?;
            let diff = if self.nsecs {
                now.diff_ns(&next)
            } else {
                now.diff_us(&next)
            };
            let cycle = self.summary.cycles;
            self.summary.add(diff);
            if let Some(h) = self.hist.as_mut() {
                h.record(diff, cycle);
            }
            self.live.publish(&self.summary);
            self.action
                .on_cycle(&Sample {
                    thread: self.index,
                    cycle,
                    latency: diff,
                    expected: next,
                    woke: now,
                })
                .map_err(ThreadError::Action)?;
            if self.duration_s != 0 && now.diff_us(&stop_at) >= 0 {
                self.stop.store(true, Ordering::Relaxed);
            }
            next = next + self.interval;
            while now.is_after(&next) {
                next = next + self.interval;
            }
            if self.max_cycles != 0 && self.summary.cycles >= self.max_cycles {
                break;
            }
        }
        Ok(())
    }

    /// Final statistics and histogram.
    pub fn into_results(self) -> (Summary, Option<Histogram>) {
        (self.summary, self.hist)
    }
}

/// Touches [`PREFAULT_STACK_BYTES`] of stack below the caller.
#[inline(never)]
pub fn prefault_stack() {
    let mut buf = [0u8; PREFAULT_STACK_BYTES];
    let mut i = 0;
    while i < buf.len() {
        buf[i] = std::hint::black_box(1);
        i += 4096;
    }
    std::hint::black_box(&mut buf);
}

/// Body of a measuring thread: pin, set the scheduler, allocate, pre-fault,
/// wait at `gate`, run the loop, report. A thread whose set-up fails still
/// returns promptly (it does not wait at the gate).
pub fn thread_main<A: CycleAction>(
    spec: ThreadSpec,
    live: Arc<LiveStats>,
    stop: &'static AtomicBool,
    gate: Arc<Gate>,
    action: A,
) -> ThreadOutcome {
    if let Some(cpu) = spec.cpu {
        if rt_utils::affinity::set_affinity(&[cpu]).is_err() {
            eprintln!("WARN: Could not set CPU affinity to CPU #{cpu}");
        }
    }
    live.set_tid(rt_utils::sys::gettid());
    let fail = |live: &LiveStats, error: ThreadError| {
        live.set_state(ThreadState::Failed);
        ThreadOutcome {
            summary: Summary::new(),
            histogram: None,
            error: Some(error),
            cpu_ns: 0,
        }
    };
    if let Err(err) = rt::set_scheduler(spec.policy, spec.priority) {
        return fail(
            &live,
            ThreadError::Scheduler {
                policy: spec.policy,
                priority: spec.priority,
                err,
            },
        );
    }
    let mut m = Measurement::new(&spec, &live, stop, action);
    prefault_stack();
    if let Err(e) = m.action_mut().prepare() {
        return fail(&live, ThreadError::Action(e));
    }
    gate.wait();
    live.set_state(ThreadState::Running);
    let mut error = m.run_loop().err();
    let cpu_ns = m.cpu_ns();
    if let Err(e) = m.action_mut().finish() {
        error.get_or_insert(ThreadError::Action(e));
    }
    let _ = rt::set_scheduler(Policy::Other, 0);
    let (summary, histogram) = m.into_results();
    live.set_state(if error.is_some() {
        ThreadState::Failed
    } else {
        ThreadState::Done
    });
    ThreadOutcome {
        summary,
        histogram,
        error,
        cpu_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::NoAction;

    fn spec(loops: u64, hist: usize) -> ThreadSpec {
        ThreadSpec {
            index: 0,
            cpu: None,
            policy: Policy::Other,
            priority: 0,
            interval_us: 200,
            clock: Clock::Monotonic,
            max_cycles: loops,
            duration_s: 0,
            nsecs: false,
            histogram: hist,
        }
    }

    #[test]
    fn runs_the_requested_loops() {
        let live = LiveStats::new(0);
        let stop = AtomicBool::new(false);
        let mut m = Measurement::new(&spec(25, 100_000), &live, &stop, NoAction);
        let w0 = rt_utils::sys::now_ns();
        m.run_loop().unwrap();
        let wall = rt_utils::sys::now_ns() - w0;
        // The loop's own CPU time: some, and not more than the loop's wall
        // time (it sleeps most of it).
        assert!(
            m.cpu_ns() > 0 && m.cpu_ns() <= wall,
            "{} of {wall} ns",
            m.cpu_ns()
        );
        let (s, h) = m.into_results();
        let h = h.unwrap();
        assert_eq!(s.cycles, 25);
        assert!(s.min >= 0 && s.min <= s.max);
        assert_eq!(h.total() + h.overflows(), 25);
        assert_eq!(live.snapshot(), s);
    }

    #[test]
    fn stop_flag_ends_the_loop() {
        let live = LiveStats::new(0);
        let stop = AtomicBool::new(true);
        let mut m = Measurement::new(&spec(0, 0), &live, &stop, NoAction);
        m.run_loop().unwrap();
        assert_eq!(m.into_results().0.cycles, 0);
    }

    #[test]
    fn duration_sets_stop() {
        let live = LiveStats::new(0);
        let stop = AtomicBool::new(false);
        let mut sp = spec(0, 0);
        sp.duration_s = 1;
        sp.interval_us = 100_000;
        let mut m = Measurement::new(&sp, &live, &stop, NoAction);
        m.run_loop().unwrap();
        assert!(stop.load(Ordering::Relaxed));
        let c = m.into_results().0.cycles;
        assert!((9..=11).contains(&c), "{c} cycles in 1 s at 100 ms");
    }

    struct Counting(u64);
    impl CycleAction for Counting {
        fn on_cycle(&mut self, s: &Sample) -> io::Result<()> {
            assert_eq!(s.cycle, self.0);
            assert!(!s.expected.is_after(&s.woke));
            self.0 += 1;
            if self.0 == 3 {
                Err(io::Error::other("enough"))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn action_runs_every_cycle_and_can_stop_the_thread() {
        static STOP: AtomicBool = AtomicBool::new(false);
        let live = Arc::new(LiveStats::new(0));
        let gate = Arc::new(Gate::new());
        gate.open();
        let out = thread_main(spec(10, 0), live.clone(), &STOP, gate, Counting(0));
        assert_eq!(out.summary.cycles, 3);
        assert!(matches!(out.error, Some(ThreadError::Action(_))));
        assert_eq!(live.state(), ThreadState::Failed);
        assert!(live.tid() > 0);
    }

    #[test]
    fn thread_main_reports_done() {
        static STOP: AtomicBool = AtomicBool::new(false);
        let live = Arc::new(LiveStats::new(16));
        let gate = Arc::new(Gate::new());
        let g2 = gate.clone();
        let opener = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            g2.open();
        });
        let out = thread_main(spec(5, 10), live.clone(), &STOP, gate, NoAction);
        opener.join().unwrap();
        assert!(out.error.is_none());
        assert_eq!(out.summary.cycles, 5);
        assert!(out.cpu_ns > 0);
        assert_eq!(live.state(), ThreadState::Done);
        assert_eq!(live.ring_sample(4), Some(out.summary.act));
    }
}
