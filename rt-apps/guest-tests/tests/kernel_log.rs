//! Run last by the guest runner: after every other test, the kernel log
//! holds no oops, BUG, WARNING or panic.
#![cfg(feature = "guest")]

use guest_tests::{kernel_log, kernel_problems};

#[test]
fn kernel_log_has_no_oops_bug_or_warning() {
    let log = kernel_log();
    assert!(
        log.lines().count() > 10,
        "kernel log unexpectedly short: {log}"
    );
    let problems = kernel_problems(&log);
    assert!(
        problems.is_empty(),
        "kernel reported problems:\n{}",
        problems.join("\n")
    );
}
