//! `--io-via=kml`: the per-cycle record is written with `write` through the
//! Kernel Mode Linux trampoline (the `[kml]` page, `kml::Via::Trampoline`):
//! the same synchronous call as `--io-via=direct`, entered without an `svc`
//! exception. Only a program running in SYS mode has the trampoline, i.e. a
//! static rtlat started from `/trusted` by root or a member of the group
//! owning it (README, "Kernel Mode Linux"; the image ships it as
//! `/usr/lib/rtflex/kml/rtlat`, outside `/trusted`).
//!
//! There is no fallback to `svc`: [`check`] refuses to start in USR mode,
//! and the writer itself uses only the trampoline (`ENOSYS` without one).

use crate::action::{write_all_with, RecordWriter};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// How to get a SYS-mode rtlat, for the error messages.
const HOW: &str = "run a static rtlat (the image has /usr/lib/rtflex/kml/rtlat) \
                   copied into /trusted (root:root 0755) as root or a member of group kml, \
                   on a kernel with CONFIG_KERNEL_MODE_LINUX; there is no fallback to svc";

/// The `Kml:` value of `/proc/self/status` (`None`: the line is absent, a
/// kernel without Kernel Mode Linux).
fn status_kml() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Kml:").map(|v| v.trim().to_string()))
}

/// Checks that this process runs in SYS mode with a trampoline that works
/// (a `getpid` through it gives this process's id), so that `--io-via=kml`
/// fails before measuring, with a message, where it cannot work.
pub fn check() -> Result<(), String> {
    let mode = match kml::mode() {
        None => return Err("--io-via=kml: Kernel Mode Linux exists on 32-bit ARM only".to_string()),
        Some(m) => m,
    };
    if mode != kml::Mode::System {
        let why = match status_kml() {
            None => "this kernel has no Kernel Mode Linux (no Kml: line in /proc/self/status)"
                .to_string(),
            Some(v) => format!(
                "rtlat runs in {} mode, not SYS mode (Kml: {v} in /proc/self/status): \
                 it was not started as a trusted program",
                mode.name().to_uppercase()
            ),
        };
        return Err(format!("--io-via=kml: {why}; {HOW}"));
    }
    if !kml::available() {
        return Err(format!(
            "--io-via=kml: SYS mode but no [kml] page in the auxiliary vector (AT_KML); {HOW}"
        ));
    }
    let pid = kml::getpid_via(kml::Via::Trampoline);
    if pid != std::process::id() as i32 {
        return Err(format!(
            "--io-via=kml: getpid through the trampoline gave {pid}, not {}",
            std::process::id()
        ));
    }
    Ok(())
}

/// `write` through the trampoline, retried after a signal or a short write
/// (as [`crate::action::DirectWriter`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct KmlWriter;

impl RecordWriter for KmlWriter {
    #[inline]
    fn write_record(&mut self, fd: BorrowedFd<'_>, record: &[u8]) -> io::Result<()> {
        write_all_with(record, |b| {
            kml::write_via(kml::Via::Trampoline, fd.as_raw_fd(), b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// The tests never run in SYS mode (cargo test, qemu-user): the check
    /// refuses with its reason, and the writer has no trampoline to fall
    /// back from (ENOSYS, no svc write).
    #[test]
    fn outside_sys_mode_kml_is_refused_and_never_falls_back() {
        let e = check().unwrap_err();
        assert!(e.starts_with("--io-via=kml: "), "{e}");
        if cfg!(target_arch = "arm") {
            assert!(
                e.contains("not SYS mode") || e.contains("no Kernel Mode Linux"),
                "{e}"
            );
            assert!(
                e.contains("/trusted") && e.contains("no fallback to svc"),
                "{e}"
            );
        } else {
            assert!(e.contains("32-bit ARM"), "{e}");
        }
        let (input, output) = crate::rt::pipe().unwrap();
        let err = KmlWriter
            .write_record(output.as_fd(), b"record\n")
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSYS), "{err}");
        // Nothing reached the pipe.
        drop(output);
        assert_eq!(std::io::read_to_string(input).unwrap(), "");
    }
}
