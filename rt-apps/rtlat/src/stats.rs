//! Per-thread statistics and the latency histogram.
//!
//! * [`Histogram`] is owned by its measuring thread; all its memory is
//!   allocated (and pre-faulted) before the loop, [`Histogram::record`] only
//!   indexes into it.
//! * [`LiveStats`] is shared with the main thread. The measuring thread
//!   publishes its running min/max/sum/count with plain atomic stores; the
//!   main thread reads them for the status display. No locks are shared.

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, AtomicU8, Ordering};

/// Size of the `-v` sample ring per thread (cyclictest `VALBUF_SIZE`).
pub const VALBUF_SIZE: usize = 16384;

/// Bucket counts plus overflow bookkeeping, as cyclictest keeps them:
/// bucket `i` counts samples in `[i, i+1)` (µs, or ns with `-N`); samples
/// `>= len` are overflows, and the cycle numbers of the first `len` overflows
/// are remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    buckets: Box<[u64]>,
    overflows: u64,
    outliers: Box<[u64]>,
    num_outliers: usize,
}

impl Histogram {
    /// Allocates a histogram with `size` buckets (and room for `size` overflow
    /// cycle numbers). `size` must be at least 1.
    pub fn new(size: usize) -> Histogram {
        let size = size.max(1);
        Histogram {
            buckets: vec![0u64; size].into_boxed_slice(),
            overflows: 0,
            outliers: vec![0u64; size].into_boxed_slice(),
            num_outliers: 0,
        }
    }

    /// Builds a histogram from known contents (used to re-create another
    /// program's histogram in tests). `outliers.len()` must not exceed
    /// `buckets.len()`.
    pub fn from_parts(buckets: Vec<u64>, overflows: u64, outliers: &[u64]) -> Histogram {
        let mut h = Histogram::new(buckets.len());
        h.buckets.copy_from_slice(&buckets);
        h.overflows = overflows;
        h.outliers[..outliers.len()].copy_from_slice(outliers);
        h.num_outliers = outliers.len();
        h
    }

    /// Touches every page of the buffers so that recording never page-faults
    /// (the allocation may come from fresh, lazily mapped pages).
    pub fn prefault(&mut self) {
        const STEP: usize = 4096 / std::mem::size_of::<u64>();
        for buf in [&mut self.buckets, &mut self.outliers] {
            let mut i = 0;
            while i < buf.len() {
                // black_box stops the compiler from proving the store redundant.
                buf[i] = std::hint::black_box(0);
                i += STEP;
            }
        }
    }

    /// Records one sample taken in cycle `cycle`. Negative values (only
    /// possible if CLOCK_REALTIME is stepped back) count into bucket 0.
    #[inline]
    pub fn record(&mut self, value: i64, cycle: u64) {
        let idx = value.max(0) as u64;
        if idx >= self.buckets.len() as u64 {
            self.overflows += 1;
            if self.num_outliers < self.outliers.len() {
                self.outliers[self.num_outliers] = cycle;
                self.num_outliers += 1;
            }
        } else {
            self.buckets[idx as usize] += 1;
        }
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Always false: a histogram has at least one bucket.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn buckets(&self) -> &[u64] {
        &self.buckets
    }

    /// Number of samples `>= len()`.
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Cycle numbers of the first overflows (at most `len()` of them).
    pub fn outliers(&self) -> &[u64] {
        &self.outliers[..self.num_outliers]
    }

    /// Samples inside the histogram (cyclictest's `# Total:`).
    pub fn total(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// A consistent copy of one thread's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub cycles: u64,
    /// Smallest sample; meaningless (`i64::MAX`) while `cycles == 0`.
    pub min: i64,
    pub max: i64,
    /// Last sample.
    pub act: i64,
    pub sum: i64,
}

impl Summary {
    /// An empty summary.
    pub const fn new() -> Summary {
        Summary {
            cycles: 0,
            min: i64::MAX,
            max: 0,
            act: 0,
            sum: 0,
        }
    }

    /// Adds one sample.
    #[inline]
    pub fn add(&mut self, v: i64) {
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
        self.act = v;
        self.sum = self.sum.wrapping_add(v);
        self.cycles += 1;
    }

    /// Minimum for display: 0 when there are no samples.
    pub fn min_or_zero(&self) -> i64 {
        if self.cycles == 0 {
            0
        } else {
            self.min
        }
    }

    /// Integer average as cyclictest prints it (`(long)(sum / cycles)`), 0
    /// without samples.
    pub fn avg_trunc(&self) -> i64 {
        if self.cycles == 0 {
            0
        } else {
            self.sum / self.cycles as i64
        }
    }

    /// Average as a float (JSON `avg`); 0.0 without samples.
    pub fn avg(&self) -> f64 {
        if self.cycles == 0 {
            0.0
        } else {
            self.sum as f64 / self.cycles as f64
        }
    }
}

/// Lifecycle of a measuring thread, as seen by the main thread.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    Starting = 0,
    Running = 1,
    Done = 2,
    Failed = 3,
}

/// Statistics a measuring thread publishes for the main thread.
#[derive(Debug)]
pub struct LiveStats {
    tid: AtomicI32,
    state: AtomicU8,
    cycles: AtomicU64,
    min: AtomicI64,
    max: AtomicI64,
    act: AtomicI64,
    sum: AtomicI64,
    /// `-v` sample ring (empty unless verbose): `ring[cycle % len]`.
    ring: Box<[AtomicI64]>,
}

impl LiveStats {
    /// `ring_len` is 0 (no `-v`) or a power of two.
    pub fn new(ring_len: usize) -> LiveStats {
        debug_assert!(ring_len == 0 || ring_len.is_power_of_two());
        LiveStats {
            tid: AtomicI32::new(0),
            state: AtomicU8::new(ThreadState::Starting as u8),
            cycles: AtomicU64::new(0),
            min: AtomicI64::new(i64::MAX),
            max: AtomicI64::new(0),
            act: AtomicI64::new(0),
            sum: AtomicI64::new(0),
            ring: (0..ring_len).map(|_| AtomicI64::new(0)).collect(),
        }
    }

    pub fn set_tid(&self, tid: i32) {
        self.tid.store(tid, Ordering::Relaxed);
    }

    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    pub fn set_state(&self, s: ThreadState) {
        self.state.store(s as u8, Ordering::Release);
    }

    pub fn state(&self) -> ThreadState {
        match self.state.load(Ordering::Acquire) {
            0 => ThreadState::Starting,
            1 => ThreadState::Running,
            2 => ThreadState::Done,
            _ => ThreadState::Failed,
        }
    }

    /// Publishes the thread's running summary (called once per cycle; plain
    /// atomic stores, no syscalls). The ring slot is written before the cycle
    /// count is released, so a reader that sees `cycles == n` finds sample
    /// `n - 1` in the ring.
    #[inline]
    pub fn publish(&self, s: &Summary) {
        if !self.ring.is_empty() {
            let slot = (s.cycles.wrapping_sub(1) as usize) & (self.ring.len() - 1);
            self.ring[slot].store(s.act, Ordering::Relaxed);
        }
        self.min.store(s.min, Ordering::Relaxed);
        self.max.store(s.max, Ordering::Relaxed);
        self.act.store(s.act, Ordering::Relaxed);
        self.sum.store(s.sum, Ordering::Relaxed);
        self.cycles.store(s.cycles, Ordering::Release);
    }

    /// Reads the published values (fields may be from adjacent cycles).
    pub fn snapshot(&self) -> Summary {
        let cycles = self.cycles.load(Ordering::Acquire);
        Summary {
            cycles,
            min: self.min.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
            act: self.act.load(Ordering::Relaxed),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }

    pub fn cycles(&self) -> u64 {
        self.cycles.load(Ordering::Acquire)
    }

    /// Sample of cycle `cycle` from the `-v` ring (valid while the reader is
    /// less than a ring length behind).
    pub fn ring_sample(&self, cycle: u64) -> Option<i64> {
        if self.ring.is_empty() {
            return None;
        }
        Some(self.ring[(cycle as usize) & (self.ring.len() - 1)].load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_overflow() {
        let mut h = Histogram::new(5);
        h.prefault();
        for (cycle, v) in [0, 1, 1, 4, 5, 7, 4, -3, 100].into_iter().enumerate() {
            h.record(v, cycle as u64);
        }
        assert_eq!(h.buckets(), &[2, 2, 0, 0, 2]);
        assert_eq!(h.overflows(), 3);
        assert_eq!(h.outliers(), &[4, 5, 8]);
        assert_eq!(h.total(), 6);
        assert_eq!(h.len(), 5);
    }

    #[test]
    fn outlier_list_is_bounded_by_histogram_size() {
        let mut h = Histogram::new(3);
        for c in 0..10 {
            h.record(3, c);
        }
        assert_eq!(h.overflows(), 10);
        assert_eq!(h.outliers(), &[0, 1, 2]);
        assert_eq!(h.total(), 0);
    }

    #[test]
    fn from_parts_round_trips() {
        let h = Histogram::from_parts(vec![1, 0, 3], 2, &[7, 9]);
        assert_eq!(h.buckets(), &[1, 0, 3]);
        assert_eq!(h.overflows(), 2);
        assert_eq!(h.outliers(), &[7, 9]);
    }

    #[test]
    fn summary() {
        let mut s = Summary::new();
        assert_eq!((s.min_or_zero(), s.avg_trunc(), s.avg()), (0, 0, 0.0));
        for v in [10, 3, 8] {
            s.add(v);
        }
        assert_eq!((s.cycles, s.min, s.max, s.act, s.sum), (3, 3, 10, 8, 21));
        assert_eq!(s.avg_trunc(), 7);
        s.add(0);
        assert_eq!(s.avg_trunc(), 5); // 21 / 4 truncated
        assert_eq!(s.avg(), 5.25);
    }

    #[test]
    fn live_stats_publish_and_ring() {
        let live = LiveStats::new(4);
        let mut s = Summary::new();
        for v in 1..=6 {
            s.add(v * 10);
            live.publish(&s);
        }
        assert_eq!(live.snapshot(), s);
        assert_eq!(live.ring_sample(5), Some(60));
        assert_eq!(live.ring_sample(4), Some(50));
        assert_eq!(live.ring_sample(2), Some(30));
        assert_eq!(LiveStats::new(0).ring_sample(0), None);
        live.set_state(ThreadState::Done);
        assert_eq!(live.state(), ThreadState::Done);
        live.set_tid(42);
        assert_eq!(live.tid(), 42);
    }
}
