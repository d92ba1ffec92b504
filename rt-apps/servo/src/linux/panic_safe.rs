//! The outputs driven safe when servo panics, in any thread.
//!
//! The release profile aborts on a panic (`panic = "abort"`: no unwinding,
//! no destructors run), so a drop guard cannot do it; a panic hook can: it
//! runs in the panicking thread before the abort. [`arm`] tells it the
//! output line requests (descriptor and the mask of all their lines) and
//! the PWM channel's `duty_cycle` file; the hook then sets every output
//! line low with one `GPIO_V2_LINE_SET_VALUES` per request (motor-enable
//! first: its request is armed first) and writes duty 0 to the PWM. Low is
//! the safe level of every motor line (enable off, duty 0, dir low). The
//! hook only makes those system calls on descriptors opened before; then
//! the previous hook prints the panic message as usual.
//!
//! A test-only switch, the environment variable [`TEST_PANIC_ENV`], makes
//! the control loop panic at a given cycle: the guest tests check with the
//! kernel's trace of the lines that the outputs end safe (it is no
//! command-line option, and without it the loop never panics).

use gpiocdev_uapi::v2::LineValues;
use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Once;

/// Output requests the hook can hold (one per GPIO chip of the outputs).
pub const MAX_BANKS: usize = 4;

/// The test-only switch: `SERVO_TEST_PANIC_AT_CYCLE=N` panics the control
/// loop at cycle N.
pub const TEST_PANIC_ENV: &str = "SERVO_TEST_PANIC_AT_CYCLE";

static BANK_FD: [AtomicI32; MAX_BANKS] = [const { AtomicI32::new(-1) }; MAX_BANKS];
static BANK_MASK: [AtomicU64; MAX_BANKS] = [const { AtomicU64::new(0) }; MAX_BANKS];
static PWM_FD: AtomicI32 = AtomicI32::new(-1);
static HOOK: Once = Once::new();
/// The cycle at which the loop panics (u32::MAX: never).
static PANIC_AT: AtomicU32 = AtomicU32::new(u32::MAX);

/// Armed outputs; dropping it disarms them. Drop it before the requests
/// and the PWM file it names are closed.
#[derive(Debug)]
pub struct Armed(());

impl Drop for Armed {
    fn drop(&mut self) {
        disarm();
    }
}

fn disarm() {
    for fd in &BANK_FD {
        fd.store(-1, Ordering::SeqCst);
    }
    PWM_FD.store(-1, Ordering::SeqCst);
}

/// Arms the hook for `banks` (request descriptor, mask of all its lines;
/// the one with motor-enable first) and the PWM `duty_cycle` descriptor.
/// The descriptors must stay open until the returned guard is dropped.
pub fn arm(banks: &[(RawFd, u64)], pwm_duty: Option<RawFd>) -> Result<Armed, String> {
    if banks.len() > MAX_BANKS {
        return Err(format!(
            "the outputs are on {} GPIO chips, at most {MAX_BANKS} can be driven safe on a panic",
            banks.len()
        ));
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            drive_safe();
            previous(info);
        }));
    });
    disarm();
    for (i, &(fd, mask)) in banks.iter().enumerate() {
        BANK_MASK[i].store(mask, Ordering::SeqCst);
        BANK_FD[i].store(fd, Ordering::SeqCst);
    }
    PWM_FD.store(pwm_duty.unwrap_or(-1), Ordering::SeqCst);
    Ok(Armed(()))
}

/// Sets every armed output line low and the PWM duty to 0 (what the hook
/// does). Errors are ignored: there is nothing left to do about them.
pub fn drive_safe() {
    for (fd, mask) in BANK_FD.iter().zip(&BANK_MASK) {
        let fd = fd.load(Ordering::SeqCst);
        if fd < 0 {
            continue;
        }
        let lv = LineValues {
            bits: 0,
            mask: mask.load(Ordering::SeqCst),
        };
        // SAFETY: `fd` was armed as the open descriptor of a line request
        // that stays open while armed (the Armed guard is dropped before
        // the request); the File is never dropped, so it closes nothing.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        let _ = gpiocdev_uapi::v2::set_line_values(&file, &lv);
    }
    let fd = PWM_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: a 1-byte static buffer, only read; `fd` is the armed PWM
        // duty_cycle descriptor, open while armed.
        let _ = unsafe { libc::pwrite(fd, b"0".as_ptr().cast(), 1, 0) };
    }
}

/// Reads the test-only switch (set-up: may allocate); a bad value is an
/// error naming it.
pub fn read_test_switch() -> Result<(), String> {
    let at = match std::env::var(TEST_PANIC_ENV) {
        Err(_) => u32::MAX,
        Ok(v) => v
            .parse::<u32>()
            .map_err(|_| format!("{TEST_PANIC_ENV}='{v}' is not a cycle number"))?,
    };
    PANIC_AT.store(at, Ordering::Relaxed);
    Ok(())
}

/// Called by the loop each cycle: panics at the cycle the test switch
/// names (one atomic load otherwise).
#[inline]
pub fn test_panic_point(cycle: u32) {
    if cycle == PANIC_AT.load(Ordering::Relaxed) {
        panic!("test panic at cycle {cycle} ({TEST_PANIC_ENV})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// The PWM half of the hook on a plain file (the host has no GPIO
    /// chips: the guest test `a_panic_leaves_the_outputs_safe` checks the
    /// lines).
    #[test]
    fn drive_safe_writes_duty_0_while_armed_and_nothing_after() {
        let path = std::env::temp_dir().join(format!("servo-panic-safe-{}", std::process::id()));
        std::fs::write(&path, "4242").unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let read = || {
            let mut s = String::new();
            File::open(&path).unwrap().read_to_string(&mut s).unwrap();
            s
        };
        let armed = arm(&[], Some(f.as_raw_fd())).unwrap();
        drive_safe();
        assert_eq!(read(), "0242", "duty 0 written at offset 0");
        drop(armed);
        std::fs::write(&path, "4242").unwrap();
        drive_safe();
        assert_eq!(read(), "4242", "disarmed: nothing written");
        let _ = std::fs::remove_file(&path);
        assert!(arm(&[(0, 1); MAX_BANKS + 1], None).is_err());
    }
}
