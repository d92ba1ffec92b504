//! The motor driver's command: sign-magnitude.
//!
//! `enable` (high = the bridge drives the motor, low = off, the motor
//! coasts), `dir` (high = positive direction) and the magnitude as a duty
//! cycle ([`SetDutyCycle`]: a hardware PWM on a board, the 8-line "DAC" of
//! the simulated plant in the guest). The safe state is enable low, duty 0,
//! dir low.
//!
//! Lines are written only when their value changes (each write may be a
//! system call on Linux); [`MotorDrive::safe`] writes all three
//! unconditionally.

use crate::math::{abs, round_u32};
use embedded_hal::digital::OutputPin;
use embedded_hal::pwm::SetDutyCycle;

/// Which output failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    Enable,
    Dir,
    Duty,
}

/// An output that could not be set, and the hardware's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriveError<E> {
    pub line: Line,
    pub error: E,
}

/// What the driver was last told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriveState {
    pub enable: bool,
    pub dir: bool,
    pub duty: u16,
}

/// The three outputs of a sign-magnitude motor driver.
#[derive(Debug)]
pub struct MotorDrive<EN, DIR, PWM> {
    enable: EN,
    dir: DIR,
    pwm: PWM,
    /// `None` until written once (then every line is known).
    last: Option<DriveState>,
}

impl<E, EN, DIR, PWM> MotorDrive<EN, DIR, PWM>
where
    EN: OutputPin<Error = E>,
    DIR: OutputPin<Error = E>,
    PWM: SetDutyCycle<Error = E>,
{
    /// Takes the outputs; nothing is written until [`MotorDrive::safe`] or
    /// [`MotorDrive::apply`].
    pub fn new(enable: EN, dir: DIR, pwm: PWM) -> Self {
        MotorDrive {
            enable,
            dir,
            pwm,
            last: None,
        }
    }

    /// Gives the outputs back.
    pub fn release(self) -> (EN, DIR, PWM) {
        (self.enable, self.dir, self.pwm)
    }

    /// What was written last (`None` before the first write).
    pub fn state(&self) -> Option<DriveState> {
        self.last
    }

    /// The duty for `command` in [-1, 1] (|command| of the full scale).
    pub fn duty_for(&self, command: f32) -> u16 {
        let max = self.pwm.max_duty_cycle();
        let d = round_u32(abs(command).min(1.0) * f32::from(max));
        d.min(u32::from(max)) as u16
    }

    /// Writes what differs from the last state. Order: a lower duty before
    /// anything else and enable-off before the direction; a higher duty
    /// after the direction and enable-on last. So the bridge never drives
    /// the new direction with the old, larger magnitude.
    fn write(&mut self, want: DriveState) -> Result<(), DriveError<E>> {
        let last = self.last;
        let duty_changed = last.map(|l| l.duty) != Some(want.duty);
        let enable_changed = last.map(|l| l.enable) != Some(want.enable);
        let duty_down = last.is_none_or(|l| want.duty < l.duty);
        if duty_changed && duty_down {
            self.set_duty(want.duty)?;
        }
        if enable_changed && !want.enable {
            self.set_enable(false)?;
        }
        if last.map(|l| l.dir) != Some(want.dir) {
            self.dir
                .set_state(want.dir.into())
                .map_err(|error| DriveError {
                    line: Line::Dir,
                    error,
                })?;
        }
        if duty_changed && !duty_down {
            self.set_duty(want.duty)?;
        }
        if enable_changed && want.enable {
            self.set_enable(true)?;
        }
        self.last = Some(want);
        Ok(())
    }

    fn set_duty(&mut self, duty: u16) -> Result<(), DriveError<E>> {
        self.pwm.set_duty_cycle(duty).map_err(|error| DriveError {
            line: Line::Duty,
            error,
        })
    }

    fn set_enable(&mut self, on: bool) -> Result<(), DriveError<E>> {
        self.enable
            .set_state(on.into())
            .map_err(|error| DriveError {
                line: Line::Enable,
                error,
            })
    }

    /// Drives the motor with `command` in [-1, 1] (sign = direction,
    /// magnitude = duty; values outside are limited). Writes only what
    /// changed.
    pub fn apply(&mut self, command: f32) -> Result<(), DriveError<E>> {
        let duty = self.duty_for(command);
        let dir = match self.last {
            // No magnitude: keep the direction line as it is.
            Some(l) if duty == 0 => l.dir,
            _ => command > 0.0,
        };
        self.write(DriveState {
            enable: true,
            dir,
            duty,
        })
    }

    /// The safe state: enable low, duty 0, dir low, every line written
    /// whatever was written before. Tries all three even if one fails and
    /// returns the first error.
    pub fn safe(&mut self) -> Result<(), DriveError<E>> {
        let duty = self.set_duty(0);
        let enable = self.set_enable(false);
        let dir = self.dir.set_low().map_err(|error| DriveError {
            line: Line::Dir,
            error,
        });
        self.last = Some(DriveState {
            enable: false,
            dir: false,
            duty: 0,
        });
        if duty.is_err() || enable.is_err() || dir.is_err() {
            // Unknown lines: write everything again next time.
            self.last = None;
        }
        enable.and(duty).and(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use embedded_hal::digital::ErrorType;
    use embedded_hal::pwm::ErrorType as PwmErrorType;

    /// The test pins' error: a number.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Failed(u8);
    impl embedded_hal::digital::Error for Failed {
        fn kind(&self) -> embedded_hal::digital::ErrorKind {
            embedded_hal::digital::ErrorKind::Other
        }
    }
    impl embedded_hal::pwm::Error for Failed {
        fn kind(&self) -> embedded_hal::pwm::ErrorKind {
            embedded_hal::pwm::ErrorKind::Other
        }
    }

    /// Every write, in order.
    type Log = RefCell<heapless::Vec<(Line, u16), 64>>;

    struct Pin<'a>(&'a Log, Line, bool);
    impl ErrorType for Pin<'_> {
        type Error = Failed;
    }
    impl OutputPin for Pin<'_> {
        fn set_low(&mut self) -> Result<(), Failed> {
            self.0.borrow_mut().push((self.1, 0)).unwrap();
            if self.2 {
                Err(Failed(7))
            } else {
                Ok(())
            }
        }
        fn set_high(&mut self) -> Result<(), Failed> {
            self.0.borrow_mut().push((self.1, 1)).unwrap();
            Ok(())
        }
    }
    struct Pwm<'a>(&'a Log);
    impl PwmErrorType for Pwm<'_> {
        type Error = Failed;
    }
    impl SetDutyCycle for Pwm<'_> {
        fn max_duty_cycle(&self) -> u16 {
            255
        }
        fn set_duty_cycle(&mut self, duty: u16) -> Result<(), Failed> {
            self.0.borrow_mut().push((Line::Duty, duty)).unwrap();
            Ok(())
        }
    }

    fn drive(log: &Log, enable_fails: bool) -> MotorDrive<Pin<'_>, Pin<'_>, Pwm<'_>> {
        MotorDrive::new(
            Pin(log, Line::Enable, enable_fails),
            Pin(log, Line::Dir, false),
            Pwm(log),
        )
    }

    fn take(log: &Log) -> heapless::Vec<(Line, u16), 64> {
        core::mem::take(&mut *log.borrow_mut())
    }

    #[test]
    fn writes_only_changes_in_a_safe_order() {
        let log = Log::default();
        let mut d = drive(&log, false);
        d.apply(0.5).unwrap();
        // First write: everything; duty before enable.
        assert_eq!(
            take(&log),
            [(Line::Duty, 128), (Line::Dir, 1), (Line::Enable, 1)]
        );
        d.apply(0.5).unwrap();
        assert!(take(&log).is_empty(), "nothing changed, nothing written");
        d.apply(0.75).unwrap();
        assert_eq!(take(&log), [(Line::Duty, 191)]);
        // Reversal: the duty drops before the direction flips...
        d.apply(-0.25).unwrap();
        assert_eq!(take(&log), [(Line::Duty, 64), (Line::Dir, 0)]);
        // ...and rises only after it.
        d.apply(0.9).unwrap();
        assert_eq!(take(&log), [(Line::Dir, 1), (Line::Duty, 230)]);
        // Zero keeps the direction; limits apply.
        d.apply(0.0).unwrap();
        assert_eq!(take(&log), [(Line::Duty, 0)]);
        d.apply(-7.0).unwrap();
        assert_eq!(take(&log), [(Line::Dir, 0), (Line::Duty, 255)]);
        assert_eq!(
            d.state(),
            Some(DriveState {
                enable: true,
                dir: false,
                duty: 255
            })
        );
    }

    #[test]
    fn safe_writes_every_line_even_after_an_error() {
        let log = Log::default();
        let mut d = drive(&log, false);
        d.safe().unwrap();
        assert_eq!(
            take(&log),
            [(Line::Duty, 0), (Line::Enable, 0), (Line::Dir, 0)]
        );
        d.safe().unwrap();
        assert_eq!(take(&log).len(), 3, "unconditional");
        let log = Log::default();
        let mut d = drive(&log, true);
        assert_eq!(
            d.safe(),
            Err(DriveError {
                line: Line::Enable,
                error: Failed(7)
            })
        );
        // The duty and the direction were still written.
        assert_eq!(
            take(&log),
            [(Line::Duty, 0), (Line::Enable, 0), (Line::Dir, 0)]
        );
        assert_eq!(d.state(), None, "unknown after a failure");
    }
}
