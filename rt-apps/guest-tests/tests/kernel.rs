//! The running kernel is the pinned PREEMPT_RT release, and Rust modules
//! built against it load and unload.
#![cfg(feature = "guest")]

use guest_tests::{kernel_log, run, run_ok, LINUX_VERSION};
use std::path::Path;

#[test]
fn running_kernel_is_the_pinned_release() {
    let want = LINUX_VERSION.expect("built without RTFLEX_LINUX_VERSION (use the Makefile)");
    let release = run_ok("uname", &["-r"]);
    let release = release.trim();
    // 7.2.13, optionally followed by a local version, never 7.2.130.
    let rest = release
        .strip_prefix(want)
        .unwrap_or_else(|| panic!("running {release}, image pins {want}"));
    assert!(
        rest.is_empty() || rest.starts_with('-') || rest.starts_with('+'),
        "running {release}, image pins {want}"
    );
}

#[test]
fn kernel_is_preempt_rt() {
    // Two independent witnesses: the version banner the scheduler's
    // preemption model writes, and the configuration the kernel was built
    // with. (Mainline has no /sys/kernel/realtime; only the out-of-tree RT
    // patch set had it.)
    let version = run_ok("uname", &["-v"]);
    assert!(version.contains("PREEMPT_RT"), "uname -v: {version}");
    let config = run_ok("zcat", &["/proc/config.gz"]);
    assert!(config.lines().any(|l| l == "CONFIG_PREEMPT_RT=y"));
}

/// Rust support, which FlexSC and the rtflex_selftest module need. (The
/// kasan kernel variant has none, as KASAN and Rust exclude each other on
/// ARM; it skips this test: kernel/kernel.mk.)
#[test]
fn kernel_has_rust() {
    let config = run_ok("zcat", &["/proc/config.gz"]);
    assert!(config.lines().any(|l| l == "CONFIG_RUST=y"));
}

/// What rtflex_selftest.ko logs for a seed: the wrapping sum of seed * i
/// for i in 1..=64, computed here independently of the module.
fn expected_checksum(seed: u32) -> u32 {
    (1..=64u32).fold(0u32, |acc, i| acc.wrapping_add(seed.wrapping_mul(i)))
}

#[test]
fn rust_module_loads_and_unloads() {
    let release = run_ok("uname", &["-r"]);
    let ko = format!("/lib/modules/{}/extra/rtflex_selftest.ko", release.trim());
    assert!(Path::new(&ko).exists(), "{ko} not in the image");
    let sysfs = Path::new("/sys/module/rtflex_selftest");
    if sysfs.exists() {
        run_ok("rmmod", &["rtflex_selftest"]);
    }

    let seed = 0x9e37_79b9_u32;
    let sum = expected_checksum(seed);
    let before = kernel_log().lines().count();
    run_ok("insmod", &[&ko, &format!("seed={seed}")]);
    assert!(sysfs.exists(), "module loaded but not in /sys/module");
    let lsmod = run_ok("lsmod", &[]);
    assert!(lsmod.contains("rtflex_selftest"), "lsmod: {lsmod}");
    run_ok("rmmod", &["rtflex_selftest"]);
    assert!(!sysfs.exists(), "module still present after rmmod");

    let log = kernel_log();
    let new: Vec<&str> = log.lines().skip(before).collect();
    let loaded = format!("rtflex_selftest: loaded: seed={seed} checksum={sum}");
    let unloaded = format!("rtflex_selftest: unloaded: checksum={sum}");
    assert!(
        new.iter().any(|l| l.contains(&loaded)),
        "no '{loaded}' in {new:?}"
    );
    assert!(
        new.iter().any(|l| l.contains(&unloaded)),
        "no '{unloaded}' in {new:?}"
    );
    // And it really was our module answering, not a stale line.
    let out = run("insmod", &["/nonexistent.ko"]);
    assert!(!out.status.success());
}
