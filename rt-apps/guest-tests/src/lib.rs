//! Helpers for the rtflex guest tests (`tests/*.rs`).
//!
//! The tests run inside the booted rtflex image, as root, under the guest
//! test runner (`/usr/libexec/rtflex/run-guest-tests`). They are built with
//! `--features guest`; see the README ("How the tests work").

use std::collections::BTreeSet;
use std::process::{Command, Output};

/// Upstream kernel version the image was built from, as pinned in
/// `kernel/patches/linux/linux.hash` (passed in by the Makefile).
pub const LINUX_VERSION: Option<&str> = option_env!("RTFLEX_LINUX_VERSION");

/// Run a program and return its output, panicking with a clear message
/// if it cannot be started.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Run a program that must succeed and return its stdout as text.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The kernel log, as `dmesg` prints it.
pub fn kernel_log() -> String {
    run_ok("dmesg", &[])
}

/// Kernel log lines that report a kernel bug: oopses, BUG and WARNING
/// splats, panics, RCU stalls, lockdep and sleeping-in-atomic reports.
pub fn kernel_problems(log: &str) -> Vec<&str> {
    const MARKERS: &[&str] = &[
        "Oops",
        "BUG:",
        "WARNING:",
        "Kernel panic",
        "Internal error",
        "rcu_sched self-detected stall",
        "rcu_preempt self-detected stall",
        "possible circular locking",
        "sleeping function called from invalid context",
        "Unable to handle kernel",
        "general protection fault",
        "------------[ cut here ]------------",
    ];
    log.lines()
        .filter(|l| MARKERS.iter().any(|m| l.contains(m)))
        .collect()
}

/// The set of key paths of a JSON document: `a`, `a.b`, ... Object keys
/// that are numbers (thread indices, histogram buckets) are replaced by `#`
/// so two reports of different runs compare by structure.
pub fn json_key_paths(v: &serde_json::Value) -> BTreeSet<String> {
    fn walk(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
        if let serde_json::Value::Object(map) = v {
            for (k, child) in map {
                let k = if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) {
                    "#"
                } else {
                    k.as_str()
                };
                let path = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(child, &path, out);
                out.insert(path);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_found_and_clean_lines_are_not() {
        let log = "[    0.000000] Booting Linux\n\
                   [    1.0] WARNING: CPU: 0 PID: 1 at kernel/foo.c:1 bar\n\
                   [    2.0] rtflex_selftest: loaded\n\
                   [    3.0] Internal error: Oops: 5 [#1] PREEMPT_RT ARM\n";
        let p = kernel_problems(log);
        assert_eq!(p.len(), 2);
        assert!(p[0].contains("WARNING"));
        assert!(p[1].contains("Oops"));
        assert!(kernel_problems("[ 0.1] all fine\n").is_empty());
    }

    #[test]
    fn key_paths_fold_numeric_keys() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"thread":{"0":{"min":1,"histogram":{"3":1}}},"x":1}"#)
                .unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"x":2,"thread":{"1":{"histogram":{"7":2,"9":1},"min":5}}}"#)
                .unwrap();
        assert_eq!(json_key_paths(&a), json_key_paths(&b));
        assert!(json_key_paths(&a).contains("thread.#.histogram.#"));
        let c: serde_json::Value = serde_json::from_str(r#"{"x":2}"#).unwrap();
        assert_ne!(json_key_paths(&a), json_key_paths(&c));
    }
}
