//! Host tests (armv7 under qemu-user, or any kernel without Kernel Mode
//! Linux): without a [kml] page every path must fall back to `svc` and give
//! the same results as libc.

use kml::{Mode, Via};

#[test]
fn no_trampoline_outside_trusted() {
    assert_eq!(kml::entry(), None);
    assert!(!kml::available());
    if let Some(m) = kml::mode() {
        assert_eq!(m, Mode::User, "an ordinary process runs in USR mode");
    }
}

#[test]
fn auto_and_svc_match_libc() {
    let pid = std::process::id() as i32;
    assert_eq!(kml::getpid(), pid);
    assert_eq!(kml::getpid_via(Via::Svc), pid);
    assert_eq!(kml::getpid_via(Via::Auto), pid);
}

#[test]
fn trampoline_without_page_is_enosys() {
    assert_eq!(kml::getpid_via(Via::Trampoline), -libc::ENOSYS);
    let e = kml::clock_gettime_via(Via::Trampoline, libc::CLOCK_MONOTONIC).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSYS));
}

#[test]
#[cfg_attr(
    not(target_arch = "arm"),
    ignore = "ARM EABI only (system call numbers and argument words): make host-test runs it"
)]
fn clock_is_monotonic_and_close_to_libc() {
    let (s0, n0) = kml::clock_gettime_via(Via::Auto, libc::CLOCK_MONOTONIC).unwrap();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to fill.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(r, 0);
    let (s1, n1) = kml::clock_gettime_via(Via::Svc, libc::CLOCK_MONOTONIC).unwrap();
    let t0 = s0 as i128 * 1_000_000_000 + n0 as i128;
    let tl = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    let t1 = s1 as i128 * 1_000_000_000 + n1 as i128;
    assert!(t0 <= tl && tl <= t1, "{t0} <= {tl} <= {t1}");
    assert!((0..1_000_000_000).contains(&n0));
}

#[test]
fn read_write_and_errors() {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    assert_eq!(kml::write_via(Via::Auto, fds[1], b"kml!").unwrap(), 4);
    let mut buf = [0u8; 8];
    assert_eq!(kml::read_via(Via::Svc, fds[0], &mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"kml!");
    let e = kml::write_via(Via::Auto, -1, b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    // SAFETY: closing the descriptors this test opened.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}
