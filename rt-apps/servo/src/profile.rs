//! Setpoint profiles: a list of moves, each to a target position followed
//! by a dwell, from a start position. A move is a step (the setpoint jumps)
//! or a trapezoid: constant acceleration to a speed limit, cruise, constant
//! deceleration (a triangle when the move is too short to reach the limit).

use crate::math::{abs, sqrt};
use heapless::Vec;

/// Moves a profile can hold.
pub const MAX_MOVES: usize = 16;

/// One move: to `target` (counts), then hold it for `dwell_ns`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Move {
    pub target: f32,
    pub dwell_ns: u64,
}

/// How the setpoint travels between targets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    /// The setpoint jumps to the target.
    Step,
    /// Speed limit (counts/s) and acceleration (counts/s^2), both > 0.
    Trapezoid { max_speed: f32, accel: f32 },
}

/// A profile that cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileError {
    /// More than [`MAX_MOVES`] moves.
    TooManyMoves,
    /// A speed or acceleration that is not a finite number > 0, or a target
    /// that is not finite.
    BadValue,
}

/// Timing of one trapezoid (or step) segment.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Segment {
    from: f32,
    to: f32,
    /// Acceleration phase (s).
    t_accel: f32,
    /// Cruise phase (s).
    t_cruise: f32,
    /// Peak speed (counts/s).
    v_peak: f32,
    accel: f32,
    /// Travel time (s).
    t_move: f32,
    dwell_ns: u64,
}

impl Segment {
    fn new(from: f32, mv: Move, shape: Shape) -> Segment {
        let d = abs(mv.target - from);
        let (t_accel, t_cruise, v_peak, accel) = match shape {
            Shape::Step => (0.0, 0.0, 0.0, 0.0),
            Shape::Trapezoid { max_speed, accel } => {
                let t_a = max_speed / accel;
                if accel * t_a * t_a >= d {
                    // Triangle: accelerate over half the distance.
                    let t_a = sqrt(d / accel);
                    (t_a, 0.0, accel * t_a, accel)
                } else {
                    (t_a, (d - accel * t_a * t_a) / max_speed, max_speed, accel)
                }
            }
        };
        Segment {
            from,
            to: mv.target,
            t_accel,
            t_cruise,
            v_peak,
            accel,
            t_move: 2.0 * t_accel + t_cruise,
            dwell_ns: mv.dwell_ns,
        }
    }

    fn move_ns(&self) -> u64 {
        (self.t_move as f64 * 1e9) as u64
    }

    /// Setpoint speed (counts/s, signed) `t` seconds into the move.
    fn velocity(&self, t: f32) -> f32 {
        if t >= self.t_move || self.t_move == 0.0 {
            return 0.0;
        }
        let dir = if self.to >= self.from { 1.0 } else { -1.0 };
        let v = if t < self.t_accel {
            self.accel * t
        } else if t < self.t_accel + self.t_cruise {
            self.v_peak
        } else {
            self.accel * (self.t_move - t)
        };
        dir * v
    }

    /// Setpoint `t` seconds into the move.
    fn at(&self, t: f32) -> f32 {
        if t >= self.t_move {
            return self.to;
        }
        let dir = if self.to >= self.from { 1.0 } else { -1.0 };
        let s = if t < self.t_accel {
            0.5 * self.accel * t * t
        } else if t < self.t_accel + self.t_cruise {
            0.5 * self.accel * self.t_accel * self.t_accel + self.v_peak * (t - self.t_accel)
        } else {
            let left = self.t_move - t;
            abs(self.to - self.from) - 0.5 * self.accel * left * left
        };
        self.from + dir * s
    }
}

/// A list of moves from a start position.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    start: f32,
    segments: Vec<Segment, MAX_MOVES>,
}

/// The profile's setpoint at a time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setpoint {
    /// Counts.
    pub position: f32,
    /// Counts per second (0 for steps and while dwelling).
    pub velocity: f32,
    /// Every move and dwell is over (the setpoint stays at the last target).
    pub done: bool,
}

impl Profile {
    /// The moves from `start`, in order.
    pub fn new(start: f32, moves: &[Move], shape: Shape) -> Result<Profile, ProfileError> {
        if moves.len() > MAX_MOVES {
            return Err(ProfileError::TooManyMoves);
        }
        if let Shape::Trapezoid { max_speed, accel } = shape {
            let ok = |v: f32| v.is_finite() && v > 0.0;
            if !ok(max_speed) || !ok(accel) {
                return Err(ProfileError::BadValue);
            }
        }
        if !start.is_finite() || moves.iter().any(|m| !m.target.is_finite()) {
            return Err(ProfileError::BadValue);
        }
        let mut segments = Vec::new();
        let mut from = start;
        for &mv in moves {
            let seg = Segment::new(from, mv, shape);
            from = mv.target;
            segments.push(seg).map_err(|_| ProfileError::TooManyMoves)?;
        }
        Ok(Profile { start, segments })
    }

    /// The setpoint `t_ns` after the profile started.
    pub fn at(&self, t_ns: u64) -> Setpoint {
        let mut t0 = 0u64;
        for seg in &self.segments {
            let end_move = t0 + seg.move_ns();
            if t_ns < end_move {
                let t = (t_ns - t0) as f32 * 1e-9;
                return Setpoint {
                    position: seg.at(t),
                    velocity: seg.velocity(t),
                    done: false,
                };
            }
            let end = end_move + seg.dwell_ns;
            if t_ns < end {
                return Setpoint {
                    position: seg.to,
                    velocity: 0.0,
                    done: false,
                };
            }
            t0 = end;
        }
        Setpoint {
            position: self.segments.last().map_or(self.start, |s| s.to),
            velocity: 0.0,
            done: true,
        }
    }

    /// Total time of all moves and dwells (ns).
    pub fn duration_ns(&self) -> u64 {
        self.segments.iter().map(|s| s.move_ns() + s.dwell_ns).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn mv(target: f32, dwell_ms: u64) -> Move {
        Move {
            target,
            dwell_ns: dwell_ms * 1_000_000,
        }
    }

    #[test]
    fn steps_jump_and_dwell() {
        let p = Profile::new(5.0, &[mv(100.0, 500), mv(-20.0, 500)], Shape::Step).unwrap();
        assert_eq!(p.at(0).position, 100.0);
        assert_eq!(p.at(S / 2 - 1).position, 100.0);
        assert_eq!(p.at(S / 2).position, -20.0);
        assert!(!p.at(S - 1).done);
        assert_eq!(
            p.at(S),
            Setpoint {
                position: -20.0,
                velocity: 0.0,
                done: true
            }
        );
        assert_eq!(p.duration_ns(), S);
    }

    #[test]
    fn trapezoid_accelerates_cruises_and_decelerates() {
        // 0 -> 1000 at 200 c/s, 400 c/s^2: 0.5 s up (50 counts), 4.5 s
        // cruise (900 counts), 0.5 s down (50 counts).
        let shape = Shape::Trapezoid {
            max_speed: 200.0,
            accel: 400.0,
        };
        let p = Profile::new(0.0, &[mv(1000.0, 0)], shape).unwrap();
        assert_eq!(p.duration_ns(), 5_500_000_000);
        let near = |t_ms: u64, want: f32| {
            let got = p.at(t_ms * 1_000_000).position;
            assert!(
                (got - want).abs() < 0.05,
                "at {t_ms} ms: {got}, want {want}"
            );
        };
        near(0, 0.0);
        near(250, 12.5);
        near(500, 50.0);
        near(3000, 550.0);
        near(5000, 950.0);
        near(5250, 987.5);
        near(5500, 1000.0);
        let speed = |t_ms: u64| p.at(t_ms * 1_000_000).velocity;
        assert!((speed(250) - 100.0).abs() < 0.01);
        assert_eq!(speed(3000), 200.0);
        assert!((speed(5250) - 100.0).abs() < 0.01);
        assert_eq!(speed(5500), 0.0);
        // Monotonic, and never faster than the limit.
        let mut last = 0.0;
        for ms in 0..=5500 {
            let x = p.at(ms * 1_000_000).position;
            assert!(
                x >= last && x - last <= 0.2 + 1e-3,
                "at {ms} ms: {last} -> {x}"
            );
            last = x;
        }
    }

    #[test]
    fn short_moves_are_triangles_and_downward_moves_mirror() {
        let shape = Shape::Trapezoid {
            max_speed: 1000.0,
            accel: 100.0,
        };
        // 100 counts at 100 c/s^2: 1 s up, 1 s down, peak 100 c/s.
        let p = Profile::new(50.0, &[mv(-50.0, 0)], shape).unwrap();
        assert_eq!(p.duration_ns(), 2 * S);
        assert!((p.at(S).position - 0.0).abs() < 0.01);
        assert!((p.at(S / 2).position - 37.5).abs() < 0.01);
        assert!((p.at(3 * S / 2).position - (-37.5)).abs() < 0.01);
        assert!(
            (p.at(S).velocity + 100.0).abs() < 0.01,
            "downwards at the peak"
        );
        assert_eq!(p.at(2 * S).position, -50.0);
        assert!(p.at(2 * S).done);
    }

    #[test]
    fn bad_profiles_are_refused() {
        let moves = [mv(1.0, 0); MAX_MOVES + 1];
        assert_eq!(
            Profile::new(0.0, &moves, Shape::Step),
            Err(ProfileError::TooManyMoves)
        );
        assert!(Profile::new(0.0, &moves[..MAX_MOVES], Shape::Step).is_ok());
        let bad = Shape::Trapezoid {
            max_speed: 0.0,
            accel: 1.0,
        };
        assert_eq!(
            Profile::new(0.0, &[mv(1.0, 0)], bad),
            Err(ProfileError::BadValue)
        );
        assert_eq!(
            Profile::new(0.0, &[mv(f32::INFINITY, 0)], Shape::Step),
            Err(ProfileError::BadValue)
        );
        // No moves: the start position, done at once.
        let p = Profile::new(7.0, &[], Shape::Step).unwrap();
        assert_eq!(
            p.at(0),
            Setpoint {
                position: 7.0,
                velocity: 0.0,
                done: true
            }
        );
    }
}
