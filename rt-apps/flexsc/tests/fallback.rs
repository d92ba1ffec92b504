//! Fallback mode (no FlexSC in the kernel) gives the same results as
//! direct system calls, with the same API.
#![cfg(target_arch = "arm")]

mod common;

use common::{close, pipe, tmpfile};
use flexsc::{Call, Config, Error, FlexSc, Stat64};
use std::os::fd::AsRawFd;
use std::time::Duration;

#[test]
fn fallback_is_chosen_only_without_flexsc() {
    // Under qemu-user there is no FlexSC.
    assert_eq!(
        FlexSc::register(&Config::default()).unwrap_err(),
        Error::Unsupported
    );
    let fx = FlexSc::register_or_fallback(&Config::default()).unwrap();
    assert!(fx.is_fallback());
    assert_eq!(fx.region(), None);
    assert_eq!(fx.nentries(), 0);
    assert_eq!(fx.ctrl_snapshot(), None);
}

#[test]
fn fallback_results_equal_direct_calls() {
    let fx = FlexSc::fallback();
    let direct = |c: Call<'_>| c.run_direct().map_err(Error::Errno);
    for (a, b) in [
        (Call::getpid(), Call::getpid()),
        (Call::getppid(), Call::getppid()),
        (Call::getuid(), Call::getuid()),
        (Call::getegid(), Call::getegid()),
        (Call::close(-1), Call::close(-1)),
        (Call::fsync(-5), Call::fsync(-5)),
        (Call::lseek(0x7fff, 0, 0), Call::lseek(0x7fff, 0, 0)),
    ] {
        assert_eq!(fx.call(a), direct(b));
    }
    let f = tmpfile();
    let fd = f.as_raw_fd();
    let t = fx.write_copy(fd, b"0123456789").unwrap();
    assert_eq!(t.index(), None);
    assert!(fx.is_done(&t));
    assert_eq!(fx.wait(t), Ok(10));
    let mut s1 = Stat64::default();
    let mut s2 = Stat64::default();
    assert_eq!(fx.call(Call::fstat64(fd, &mut s1)), Ok(0));
    assert_eq!(direct(Call::fstat64(fd, &mut s2)), Ok(0));
    assert_eq!(s1, s2);
    assert_eq!(s1.st_size, 10);
    let mut b1 = [0u8; 4];
    let mut b2 = [0u8; 4];
    fx.scope(|s| {
        let t = s.pread64(fd, &mut b1, 3).unwrap();
        let (n, buf) = t.wait();
        assert_eq!(n, Ok(4));
        assert_eq!(buf, b"3456");
    });
    assert_eq!(direct(Call::pread64(fd, &mut b2, 3)), Ok(4));
    assert_eq!(b1, b2);
    let (r, w) = pipe();
    fx.write_detached(w, b"hi").unwrap();
    fx.write_detached(-1, b"lost").unwrap();
    assert_eq!(fx.drain(), Err(Error::Errno(libc::EBADF)));
    let mut got = [0u8; 2];
    assert_eq!(fx.call(Call::read(r, &mut got)), Ok(2));
    assert_eq!(&got, b"hi");
    assert_eq!(fx.kernel_wait(1, Some(Duration::from_millis(1))), Ok(0));
    close(r);
    close(w);
}
