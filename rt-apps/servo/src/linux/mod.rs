//! The Linux backend: the controller's embedded-hal pins on Linux devices.
//!
//! * [`gpio`]: GPIO character device (uAPI v2, `gpiocdev`): lines found by
//!   chip label and line name; outputs as one line request per chip
//!   (enable, direction and the 8-line duty "DAC" of the simulated plant);
//!   the encoder and the home switch as inputs with both-edge events and
//!   kernel timestamps, read without blocking. No sysfs GPIO.
//! * [`pwm`]: the magnitude as a sysfs PWM channel (the only user-space
//!   PWM ABI), for boards.
//! * [`spi`]: spidev through linux-embedded-hal's `SpidevDevice`.
//! * [`panic_safe`]: the outputs driven safe by a panic hook (the release
//!   build aborts on a panic: no destructor runs).
//!
//! Every device call in the control loop is one system call on a file
//! opened before the loop, into buffers allocated before it: no
//! allocation, no other system call.

pub mod gpio;
pub mod panic_safe;
pub mod pwm;
pub mod spi;

use core::fmt;

/// A device call that failed: what it was and the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub what: &'static str,
    pub errno: i32,
}

impl Error {
    /// `what` failed with the calling thread's errno.
    pub fn last(what: &'static str) -> Error {
        Error {
            what,
            errno: rt_utils::sys::errno(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.what,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for Error {}

impl embedded_hal::digital::Error for Error {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

impl embedded_hal::pwm::Error for Error {
    fn kind(&self) -> embedded_hal::pwm::ErrorKind {
        embedded_hal::pwm::ErrorKind::Other
    }
}
