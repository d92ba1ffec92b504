//! The position controller: PID with output limits and anti-windup.
//!
//! * P acts on the error `setpoint - position` (counts).
//! * I integrates the error; **anti-windup** by conditional integration: the
//!   integral does not grow while the output is saturated in the direction
//!   the error pushes it (it may only move towards zero then), and it never
//!   exceeds the output limit by itself.
//! * D acts on the measured velocity, not on the error, so a setpoint step
//!   gives no derivative kick. The velocity is the slope over a window of
//!   recent positions (a [`heapless::HistoryBuf`]): an encoder gives whole
//!   counts, and a one-cycle difference would make D a train of spikes.
//! * A velocity feedforward adds `kff` times the setpoint's speed: the duty
//!   a move needs to keep its pace, so P and I only correct the rest.
//! * The output is limited to `[-limit, limit]` (a signed duty, 1.0 =
//!   full supply); whether the unlimited output exceeded the limit is
//!   reported, for the saturation fault.

use crate::math::{abs, clamp_sym};
use heapless::HistoryBuf;

/// Positions the velocity window can hold.
pub const VELOCITY_WINDOW_MAX: usize = 32;

/// Gains and limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PidConfig {
    /// Proportional gain (duty per count).
    pub kp: f32,
    /// Integral gain (duty per count second).
    pub ki: f32,
    /// Derivative gain (duty per count/s).
    pub kd: f32,
    /// Velocity feedforward (duty per count/s of the setpoint's speed).
    pub kff: f32,
    /// Output limit (|duty|), in (0, 1].
    pub limit: f32,
    /// Positions in the velocity window (2..=[`VELOCITY_WINDOW_MAX`]): the
    /// velocity is the slope from the oldest to the newest.
    pub velocity_window: usize,
}

impl Default for PidConfig {
    /// Gains for the simulated plant (`rt-apps/plant/plant.conf`: ~500
    /// counts/s at full duty, 50 ms mechanical time constant) at 1 kHz:
    /// no overshoot on steps, ~12 counts of following error on fast
    /// trapezoids (tests/closed_loop.rs checks both). kff = 1 / (counts/s
    /// at full duty). Tune for your motor.
    fn default() -> PidConfig {
        PidConfig {
            kp: 0.06,
            ki: 0.02,
            kd: 0.002,
            kff: 0.002,
            limit: 1.0,
            velocity_window: 8,
        }
    }
}

/// A configuration value out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidConfigError {
    /// A gain is negative or not finite.
    Gain,
    /// The limit is not in (0, 1].
    Limit,
    /// The velocity window is not in 2..=VELOCITY_WINDOW_MAX.
    Window,
}

impl PidConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), PidConfigError> {
        let gain_ok = |g: f32| g.is_finite() && g >= 0.0;
        if !(gain_ok(self.kp) && gain_ok(self.ki) && gain_ok(self.kd) && gain_ok(self.kff)) {
            return Err(PidConfigError::Gain);
        }
        if !(self.limit > 0.0 && self.limit <= 1.0) {
            return Err(PidConfigError::Limit);
        }
        if !(2..=VELOCITY_WINDOW_MAX).contains(&self.velocity_window) {
            return Err(PidConfigError::Window);
        }
        Ok(())
    }
}

/// One controller output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PidOutput {
    /// The limited output.
    pub output: f32,
    /// The output before limiting was beyond the limit.
    pub saturated: bool,
    /// The velocity estimate (counts/s) the D term used.
    pub velocity: f32,
}

/// The controller's state.
#[derive(Clone, Debug)]
pub struct Pid {
    cfg: PidConfig,
    integral: f32,
    /// (time ns, position) of the last positions.
    history: HistoryBuf<(u64, i32), VELOCITY_WINDOW_MAX>,
}

impl Pid {
    /// A controller with an empty history and no integral.
    pub fn new(cfg: PidConfig) -> Pid {
        Pid {
            cfg,
            integral: 0.0,
            history: HistoryBuf::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PidConfig {
        &self.cfg
    }

    /// Forgets the integral and the velocity history (bumpless start).
    pub fn reset(&mut self) {
        self.integral = 0.0;
        self.history.clear();
    }

    /// The integral term (duty).
    pub fn integral(&self) -> f32 {
        self.integral
    }

    /// Velocity (counts/s) over the window ending with the newest position.
    fn velocity(&self) -> f32 {
        let n = self.history.len().min(self.cfg.velocity_window);
        if n < 2 {
            return 0.0;
        }
        let newest = *self.history.recent().expect("n >= 2");
        // oldest_ordered() starts with the oldest stored; skip to the start
        // of the window.
        let skip = self.history.len() - n;
        let oldest = *self.history.oldest_ordered().nth(skip).expect("skip < len");
        let dt_ns = newest.0.saturating_sub(oldest.0);
        if dt_ns == 0 {
            return 0.0;
        }
        (newest.1.wrapping_sub(oldest.1)) as f32 * 1e9 / dt_ns as f32
    }

    /// One step at time `now_ns` (monotonic) towards `setpoint` moving at
    /// `speed` (counts/s), with the error integrated over `dt` seconds (the
    /// time since the last step).
    pub fn update(
        &mut self,
        setpoint: f32,
        speed: f32,
        position: i32,
        now_ns: u64,
        dt: f32,
    ) -> PidOutput {
        let c = self.cfg;
        self.history.write((now_ns, position));
        let velocity = self.velocity();
        let error = setpoint - position as f32;
        let p = c.kp * error;
        let d = -c.kd * velocity;
        let without_i = p + d + c.kff * speed;
        let grown = clamp_sym(self.integral + c.ki * error * dt, c.limit);
        // Conditional integration: take the new integral unless the output
        // is (or would be) saturated in the direction the error drives it.
        let trial = without_i + grown;
        let winding = (trial > c.limit && error > 0.0) || (trial < -c.limit && error < 0.0);
        self.integral = if winding {
            // Towards zero only, never across: a stale integral of the
            // other sign unwinds, nothing winds up.
            let (lo, hi) = if self.integral < 0.0 {
                (self.integral, 0.0)
            } else {
                (0.0, self.integral)
            };
            grown.max(lo).min(hi)
        } else {
            grown
        };
        let raw = without_i + self.integral;
        PidOutput {
            output: clamp_sym(raw, c.limit),
            saturated: abs(raw) > c.limit,
            velocity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn cfg(kp: f32, ki: f32, kd: f32) -> PidConfig {
        PidConfig {
            kp,
            ki,
            kd,
            kff: 0.0,
            limit: 0.5,
            velocity_window: 4,
        }
    }

    #[test]
    fn proportional_and_limits() {
        let mut pid = Pid::new(cfg(0.01, 0.0, 0.0));
        let o = pid.update(10.0, 0.0, 0, 0, 0.001);
        assert!((o.output - 0.1).abs() < 1e-6);
        assert!(!o.saturated);
        let o = pid.update(100.0, 0.0, 0, MS, 0.001);
        assert_eq!(o.output, 0.5);
        assert!(o.saturated);
        let o = pid.update(-100.0, 0.0, 0, 2 * MS, 0.001);
        assert_eq!(o.output, -0.5);
        assert!(o.saturated);
    }

    #[test]
    fn integral_removes_a_constant_error() {
        let mut pid = Pid::new(cfg(0.0, 1.0, 0.0));
        for i in 0..100 {
            pid.update(1.0, 0.0, 0, i * MS, 0.001);
        }
        // 1 count for 0.1 s at ki = 1: 0.1.
        assert!((pid.integral() - 0.1).abs() < 1e-4, "{}", pid.integral());
    }

    #[test]
    fn anti_windup_stops_the_integral_while_saturated_and_lets_it_recover() {
        let mut pid = Pid::new(cfg(0.01, 1.0, 0.0));
        // A large error saturates P alone: the integral must not grow.
        for i in 0..1000 {
            let o = pid.update(1000.0, 0.0, 0, i * MS, 0.001);
            assert!(o.saturated);
        }
        assert_eq!(pid.integral(), 0.0, "wound up while saturated");
        // A small error: the integral grows, but never past the limit.
        for i in 1000..20_000 {
            pid.update(1.0, 0.0, 0, i * MS, 0.001);
        }
        assert!(pid.integral() <= 0.5 + 1e-6);
        assert!(pid.integral() > 0.4, "{}", pid.integral());
        // The error reverses: the integral shrinks at once although the
        // output saturates the other way.
        let before = pid.integral();
        pid.update(-1000.0, 0.0, 0, 20_000 * MS, 0.001);
        assert!(pid.integral() < before);
    }

    #[test]
    fn derivative_acts_on_measured_velocity_only() {
        let mut pid = Pid::new(cfg(0.0, 0.0, 0.001));
        // A setpoint step with the position still: no D output at all.
        assert_eq!(pid.update(0.0, 0.0, 0, 0, 0.001).output, 0.0);
        assert_eq!(pid.update(500.0, 0.0, 0, MS, 0.001).output, 0.0);
        pid.reset();
        // 1 count per ms = 1000 counts/s over the window: D = -1.0 -> limited.
        for i in 0..10 {
            let o = pid.update(0.0, 0.0, i as i32, i * MS, 0.001);
            if i >= 1 {
                assert!((o.velocity - 1000.0).abs() < 1e-3, "{o:?}");
                assert_eq!(o.output, -0.5);
            }
        }
        // The window is 4 positions: a stop shows as 0 after 3 more steps.
        for i in 10..14 {
            let o = pid.update(0.0, 0.0, 9, i * MS, 0.001);
            if i == 13 {
                assert_eq!(o.velocity, 0.0);
            }
        }
    }

    #[test]
    fn feedforward_adds_the_setpoint_speed() {
        let mut pid = Pid::new(PidConfig {
            kff: 0.001,
            ..cfg(0.0, 0.0, 0.0)
        });
        assert!((pid.update(0.0, 200.0, 0, 0, 0.001).output - 0.2).abs() < 1e-6);
        assert!((pid.update(0.0, -200.0, 0, MS, 0.001).output + 0.2).abs() < 1e-6);
    }

    #[test]
    fn configuration_is_checked() {
        assert_eq!(PidConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut PidConfig)| {
            let mut c = PidConfig::default();
            f(&mut c);
            c.validate()
        };
        assert_eq!(bad(|c| c.kp = -1.0), Err(PidConfigError::Gain));
        assert_eq!(bad(|c| c.kd = f32::NAN), Err(PidConfigError::Gain));
        assert_eq!(bad(|c| c.kff = -0.1), Err(PidConfigError::Gain));
        assert_eq!(bad(|c| c.limit = 0.0), Err(PidConfigError::Limit));
        assert_eq!(bad(|c| c.limit = 1.5), Err(PidConfigError::Limit));
        assert_eq!(bad(|c| c.velocity_window = 1), Err(PidConfigError::Window));
        assert_eq!(bad(|c| c.velocity_window = 33), Err(PidConfigError::Window));
    }
}
