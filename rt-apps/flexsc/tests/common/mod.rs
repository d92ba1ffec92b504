//! Helpers shared by the host tests (run with
//! `cargo test --target armv7-unknown-linux-gnueabihf -p flexsc`).
#![allow(dead_code)]

use flexsc::{Config, FlexSc};
use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard};

/// The emulator, like the kernel, allows one region per process: tests of
/// one binary that register take this lock.
pub static ONE_REGION: Mutex<()> = Mutex::new(());

pub fn lock() -> MutexGuard<'static, ()> {
    ONE_REGION.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn emulated(cfg: &Config) -> FlexSc {
    FlexSc::emulated(cfg).unwrap_or_else(|e| panic!("emulated registration: {e}"))
}

pub fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints, pipe2 writes exactly those.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

pub fn close(fd: RawFd) {
    // SAFETY: closing a descriptor the test owns and no longer uses.
    unsafe { libc::close(fd) };
}

/// A fresh, empty temporary file, already unlinked.
pub fn tmpfile() -> std::fs::File {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "flexsc-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::remove_file(&path).unwrap();
    f
}
