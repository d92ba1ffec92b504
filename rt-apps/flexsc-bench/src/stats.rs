//! Summary statistics over the repeats of one measurement.

/// Minimum, median and maximum of a set of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// Number of values.
    pub n: usize,
}

impl Stats {
    /// Statistics of `values` (NaN values are ignored); `None` when empty.
    pub fn of(values: &[f64]) -> Option<Stats> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            min: v[0],
            median,
            max: v[n - 1],
            n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_even_and_empty() {
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(Stats::of(&[f64::NAN]), None);
        let s = Stats::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 3.0, 5.0, 3));
        let s = Stats::of(&[4.0, 1.0, 3.0, 10.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 3.5, 10.0, 4));
        let s = Stats::of(&[7.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (7.0, 7.0, 7.0));
        let s = Stats::of(&[2.0, f64::NAN, 1.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 1.5, 2.0, 2));
    }
}
