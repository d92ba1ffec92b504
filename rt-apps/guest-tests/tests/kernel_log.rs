//! Run last by the guest runner: since the tests began, the kernel log
//! holds no report of a kernel problem (oops, BUG, WARNING, panic, lockdep,
//! KASAN, UBSAN, ...: the patterns of `kernel-problems.txt`). What the
//! kernel reported at boot, before the runner's marker line, is checked on
//! the host (`tools/rtflex`: a failure on the normal kernel, a listed
//! baseline on the debug kernels).
#![cfg(feature = "guest")]

use guest_tests::{kernel_log, kernel_problems, since_tests_began};

#[test]
fn kernel_log_has_no_oops_bug_or_warning() {
    let log = kernel_log();
    assert!(
        log.lines().count() > 10,
        "kernel log unexpectedly short: {log}"
    );
    let problems = kernel_problems(since_tests_began(&log));
    assert!(
        problems.is_empty(),
        "kernel reported problems:\n{}",
        problems.join("\n")
    );
}
