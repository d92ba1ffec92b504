//! x4 quadrature decoding.
//!
//! Channel A leads B in the positive direction; counting up the levels
//! `(A, B)` go (0,0) -> (1,0) -> (1,1) -> (0,1) -> (0,0), four counts per
//! encoder cycle. A change of both channels at once is a step the decoder
//! cannot place (an edge was missed): it is an error, never a guess.

use embedded_hal::digital::InputPin;

/// The decoder: the last levels seen and the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quadrature {
    phase: u8,
    count: i32,
}

/// Two channels changed at once: an edge was missed, the count is no
/// longer known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissedEdge;

/// Position in the Gray sequence (0..4) of the levels `(a, b)`.
fn phase_of(a: bool, b: bool) -> u8 {
    match (a, b) {
        (false, false) => 0,
        (true, false) => 1,
        (true, true) => 2,
        (false, true) => 3,
    }
}

impl Quadrature {
    /// A decoder at count 0 whose channels are now at `(a, b)`.
    pub fn new(a: bool, b: bool) -> Quadrature {
        Quadrature {
            phase: phase_of(a, b),
            count: 0,
        }
    }

    /// Takes the channels' new levels; returns the change of the count
    /// (-1, 0 or +1), or [`MissedEdge`] (the count is left unchanged).
    #[inline]
    pub fn update(&mut self, a: bool, b: bool) -> Result<i32, MissedEdge> {
        let phase = phase_of(a, b);
        let delta = match (phase + 4 - self.phase) % 4 {
            0 => 0,
            1 => 1,
            3 => -1,
            _ => return Err(MissedEdge),
        };
        self.phase = phase;
        self.count = self.count.wrapping_add(delta);
        Ok(delta)
    }

    /// The count.
    pub fn count(&self) -> i32 {
        self.count
    }
}

/// What the controller reads its position from.
pub trait PositionSensor {
    /// The hardware's error.
    type Error;

    /// The position in counts (taking in whatever changed since the last
    /// call).
    fn position(&mut self) -> Result<i32, SensorError<Self::Error>>;
}

/// A position that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorError<E> {
    /// The decoder missed an edge (or the kernel dropped edge events): the
    /// position is unknown.
    MissedEdge,
    /// The hardware failed.
    Hw(E),
}

/// A quadrature encoder read by polling two [`InputPin`]s: right whenever
/// it is sampled at least once per count (a microcontroller's fast loop,
/// or the host tests' simulated plant, which samples it at every step of
/// the motor model).
#[derive(Debug)]
pub struct PolledEncoder<A, B> {
    a: A,
    b: B,
    decoder: Quadrature,
    missed: bool,
}

impl<A: InputPin, B: InputPin<Error = A::Error>> PolledEncoder<A, B> {
    /// Reads the channels once to start from their levels, at count 0.
    pub fn new(mut a: A, mut b: B) -> Result<Self, A::Error> {
        let decoder = Quadrature::new(a.is_high()?, b.is_high()?);
        Ok(PolledEncoder {
            a,
            b,
            decoder,
            missed: false,
        })
    }

    /// Reads the channels and updates the count. A missed edge is
    /// remembered: every later [`PositionSensor::position`] fails.
    pub fn sample(&mut self) -> Result<(), A::Error> {
        let (a, b) = (self.a.is_high()?, self.b.is_high()?);
        if self.decoder.update(a, b).is_err() {
            self.missed = true;
        }
        Ok(())
    }
}

impl<A: InputPin, B: InputPin<Error = A::Error>> PositionSensor for PolledEncoder<A, B> {
    type Error = A::Error;

    fn position(&mut self) -> Result<i32, SensorError<A::Error>> {
        self.sample().map_err(SensorError::Hw)?;
        if self.missed {
            return Err(SensorError::MissedEdge);
        }
        Ok(self.decoder.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The levels at count `n`, as the plant model produces them.
    fn levels(n: i32) -> (bool, bool) {
        plant::encoder_ab(n)
    }

    #[test]
    fn counts_both_ways_through_many_cycles() {
        let mut q = Quadrature::new(false, false);
        for n in 1..=1000 {
            let (a, b) = levels(n);
            assert_eq!(q.update(a, b), Ok(1), "at {n}");
        }
        assert_eq!(q.count(), 1000);
        for n in (-1000..1000).rev() {
            let (a, b) = levels(n);
            assert_eq!(q.update(a, b), Ok(-1), "at {n}");
        }
        assert_eq!(q.count(), -1000);
        // No change: no count.
        let (a, b) = levels(-1000);
        assert_eq!(q.update(a, b), Ok(0));
        assert_eq!(q.count(), -1000);
    }

    #[test]
    fn starts_at_any_phase() {
        for start in 0..4 {
            let (a, b) = levels(start);
            let mut q = Quadrature::new(a, b);
            let (a, b) = levels(start + 1);
            assert_eq!(q.update(a, b), Ok(1));
            let (a, b) = levels(start);
            assert_eq!(q.update(a, b), Ok(-1));
            assert_eq!(q.count(), 0);
        }
    }

    #[test]
    fn a_skipped_state_is_an_error_not_a_guess() {
        for start in 0..4 {
            let (a, b) = levels(start);
            let mut q = Quadrature::new(a, b);
            let (a2, b2) = levels(start + 2);
            assert_eq!(q.update(a2, b2), Err(MissedEdge));
            assert_eq!(q.count(), 0);
            // The decoder keeps its last good phase.
            let (a, b) = levels(start + 1);
            assert_eq!(q.update(a, b), Ok(1));
        }
    }

    /// Pins that replay a list of levels.
    struct Replay<'a> {
        levels: &'a core::cell::Cell<(bool, bool)>,
        b: bool,
    }
    impl embedded_hal::digital::ErrorType for Replay<'_> {
        type Error = core::convert::Infallible;
    }
    impl InputPin for Replay<'_> {
        fn is_high(&mut self) -> Result<bool, Self::Error> {
            let (a, b) = self.levels.get();
            Ok(if self.b { b } else { a })
        }
        fn is_low(&mut self) -> Result<bool, Self::Error> {
            self.is_high().map(|h| !h)
        }
    }

    #[test]
    fn polled_encoder_follows_the_pins_and_latches_a_missed_edge() {
        let lv = core::cell::Cell::new(levels(7));
        let mut enc = PolledEncoder::new(
            Replay {
                levels: &lv,
                b: false,
            },
            Replay {
                levels: &lv,
                b: true,
            },
        )
        .unwrap();
        for n in 8..=20 {
            lv.set(levels(n));
            enc.sample().unwrap();
        }
        assert_eq!(enc.position(), Ok(13));
        lv.set(levels(22));
        assert_eq!(enc.position(), Err(SensorError::MissedEdge));
        lv.set(levels(23));
        assert_eq!(enc.position(), Err(SensorError::MissedEdge), "latched");
    }
}
