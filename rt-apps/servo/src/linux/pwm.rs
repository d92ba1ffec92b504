//! The motor's magnitude on a sysfs PWM channel
//! (`/sys/class/pwm/pwmchipN/pwmM`), as an embedded-hal `SetDutyCycle`.
//!
//! Opening exports the channel (if needed), sets the period, duty 0 and
//! enables it; the duty is then one `pwrite` of the `duty_cycle` file per
//! change, from a stack buffer. Dropping sets duty 0 and disables it.

use super::Error;
use embedded_hal::pwm::{ErrorType, SetDutyCycle};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Duty cycle resolution: 0.01 %.
pub const MAX_DUTY: u16 = 10_000;

/// A sysfs PWM channel.
#[derive(Debug)]
pub struct SysfsPwm {
    dir: PathBuf,
    duty: File,
    period_ns: u32,
}

fn write_attr(dir: &std::path::Path, name: &str, value: &str) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::write(&path, value)
        .map_err(|e| format!("cannot write '{value}' to {}: {e}", path.display()))
}

impl SysfsPwm {
    /// Channel `channel` of `/sys/class/pwm/pwmchip<chip>` at `period_ns`.
    pub fn open(chip: u32, channel: u32, period_ns: u32) -> Result<SysfsPwm, String> {
        if period_ns == 0 {
            return Err("PWM period must be > 0 ns".into());
        }
        let chip_dir = PathBuf::from(format!("/sys/class/pwm/pwmchip{chip}"));
        if !chip_dir.is_dir() {
            return Err(format!(
                "no PWM chip {} (no such directory)",
                chip_dir.display()
            ));
        }
        let dir = chip_dir.join(format!("pwm{channel}"));
        if !dir.is_dir() {
            write_attr(&chip_dir, "export", &channel.to_string())?;
            // udev may still be fixing permissions: wait for the files.
            for _ in 0..100 {
                if dir.join("duty_cycle").exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        // Duty 0 first: the new period may be shorter than the old duty.
        write_attr(&dir, "duty_cycle", "0")?;
        write_attr(&dir, "period", &period_ns.to_string())?;
        write_attr(&dir, "enable", "1")?;
        let duty = OpenOptions::new()
            .write(true)
            .open(dir.join("duty_cycle"))
            .map_err(|e| format!("cannot open {}/duty_cycle: {e}", dir.display()))?;
        Ok(SysfsPwm {
            dir,
            duty,
            period_ns,
        })
    }
}

impl SysfsPwm {
    /// The `duty_cycle` file's descriptor (for [`super::panic_safe::arm`]).
    pub fn duty_fd(&self) -> std::os::fd::RawFd {
        self.duty.as_raw_fd()
    }
}

impl Drop for SysfsPwm {
    fn drop(&mut self) {
        let _ = write_attr(&self.dir, "duty_cycle", "0");
        let _ = write_attr(&self.dir, "enable", "0");
    }
}

/// `n` in decimal into `buf`; returns the digits.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

impl ErrorType for SysfsPwm {
    type Error = Error;
}

impl SetDutyCycle for SysfsPwm {
    fn max_duty_cycle(&self) -> u16 {
        MAX_DUTY
    }

    fn set_duty_cycle(&mut self, duty: u16) -> Result<(), Error> {
        let ns = (u64::from(self.period_ns) * u64::from(duty.min(MAX_DUTY)) / u64::from(MAX_DUTY))
            as u32;
        let mut buf = [0u8; 10];
        let text = decimal(ns, &mut buf);
        // SAFETY: `text` is a live byte slice for the whole call and
        // pwrite only reads it; the descriptor is owned by `self.duty`.
        let n = unsafe { libc::pwrite(self.duty.as_raw_fd(), text.as_ptr().cast(), text.len(), 0) };
        if n != text.len() as isize {
            return Err(Error::last("write PWM duty_cycle"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimals() {
        let mut b = [0u8; 10];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(1_000_000, &mut b), b"1000000");
        assert_eq!(decimal(u32::MAX, &mut b), b"4294967295");
    }
}
