//! `timespec` arithmetic, done the way cyclictest does it.
//!
//! Times are kept as normalised (seconds, nanoseconds) pairs, exactly like
//! cyclictest's `struct timespec` values, so that the per-sample latency
//! (`calcdiff`/`calcdiff_ns`) and the overrun handling give the same numbers.

/// Nanoseconds per second.
pub const NSEC_PER_SEC: i64 = 1_000_000_000;

/// A normalised point in time / duration: `0 <= nsec < NSEC_PER_SEC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ts {
    pub sec: i64,
    pub nsec: i64,
}

impl Ts {
    /// Builds a value from seconds and nanoseconds, normalising `nsec`.
    pub const fn new(sec: i64, nsec: i64) -> Ts {
        Ts {
            sec: sec + nsec.div_euclid(NSEC_PER_SEC),
            nsec: nsec.rem_euclid(NSEC_PER_SEC),
        }
    }

    /// A duration of `us` microseconds.
    pub const fn from_us(us: u64) -> Ts {
        Ts::new((us / 1_000_000) as i64, ((us % 1_000_000) * 1000) as i64)
    }

    /// `self > other` (cyclictest's `tsgreater`).
    #[inline]
    pub fn is_after(&self, other: &Ts) -> bool {
        self.sec > other.sec || (self.sec == other.sec && self.nsec > other.nsec)
    }

    /// `self - earlier` in microseconds, computed like cyclictest's
    /// `calcdiff()`: whole seconds times 10^6 plus the nanosecond difference
    /// divided by 1000 with C truncation toward zero. This deliberately keeps
    /// cyclictest's rounding (a sub-microsecond difference across a second
    /// boundary rounds up) so that the two tools report identical values.
    #[inline]
    pub fn diff_us(&self, earlier: &Ts) -> i64 {
        (self.sec - earlier.sec) * 1_000_000 + (self.nsec - earlier.nsec) / 1000
    }

    /// `self - earlier` in nanoseconds (cyclictest's `calcdiff_ns()`).
    #[inline]
    pub fn diff_ns(&self, earlier: &Ts) -> i64 {
        (self.sec - earlier.sec) * NSEC_PER_SEC + (self.nsec - earlier.nsec)
    }
}

impl std::ops::Add for Ts {
    type Output = Ts;

    /// `self + d` (both normalised, so at most one carry: cyclictest's `tsnorm`).
    #[inline]
    fn add(self, d: Ts) -> Ts {
        let mut sec = self.sec + d.sec;
        let mut nsec = self.nsec + d.nsec;
        if nsec >= NSEC_PER_SEC {
            nsec -= NSEC_PER_SEC;
            sec += 1;
        }
        Ts { sec, nsec }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            Ts::new(1, 1_500_000_000),
            Ts {
                sec: 2,
                nsec: 500_000_000
            }
        );
        assert_eq!(
            Ts::new(1, -1),
            Ts {
                sec: 0,
                nsec: 999_999_999
            }
        );
        assert_eq!(
            Ts::from_us(2_500_001),
            Ts {
                sec: 2,
                nsec: 500_001_000
            }
        );
    }

    #[test]
    fn add_carries() {
        let t = Ts::new(5, 999_999_000) + Ts::from_us(1000);
        assert_eq!(
            t,
            Ts {
                sec: 6,
                nsec: 999_000
            }
        );
    }

    #[test]
    fn ordering() {
        assert!(Ts::new(2, 0).is_after(&Ts::new(1, 999_999_999)));
        assert!(!Ts::new(1, 5).is_after(&Ts::new(1, 5)));
        assert!(Ts::new(1, 6).is_after(&Ts::new(1, 5)));
    }

    #[test]
    fn diffs_match_cyclictest() {
        let next = Ts::new(10, 100_000);
        assert_eq!(Ts::new(10, 157_999).diff_us(&next), 57);
        assert_eq!(Ts::new(10, 157_999).diff_ns(&next), 57_999);
        assert_eq!(Ts::new(12, 100_000).diff_us(&next), 2_000_000);
        // cyclictest's calcdiff quirk: 600 ns across a second boundary is 1 us.
        assert_eq!(Ts::new(1, 500).diff_us(&Ts::new(0, 999_999_900)), 1);
        assert_eq!(Ts::new(1, 500).diff_ns(&Ts::new(0, 999_999_900)), 600);
    }
}
