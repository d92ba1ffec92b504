//! Helpers shared by the integration tests: how to launch the rtlat binary
//! (and the cyclictest oracle) on this host.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The cross sysroot qemu-user needs for armhf binaries.
pub const ARM_SYSROOT: &str = "/usr/arm-linux-gnueabihf";
/// Where the cyclictest oracle is unpacked (see tests/fixtures/README.md).
pub const CT_SYSROOT: &str = "/tmp/armhf/sysroot";

pub fn rtlat_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rtlat")
}

/// Whether `qemu-arm` can be started.
pub fn have_qemu_arm() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        Command::new("qemu-arm")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Whether the rtlat binary runs when executed directly. It does on an ARM
/// host (or for a host-architecture build). On an x86 host the tests
/// themselves run under cargo's qemu-user runner, and executing the armv7
/// rtlat binary directly fails (ENOEXEC without binfmt_misc, or a missing
/// dynamic loader with it), so it must be started as
/// `qemu-arm -L /usr/arm-linux-gnueabihf rtlat …`.
pub fn runs_natively() -> bool {
    static NATIVE: OnceLock<bool> = OnceLock::new();
    *NATIVE.get_or_init(|| {
        Command::new(rtlat_bin())
            .arg("--help")
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("rtlat V")
            })
    })
}

/// A command that runs rtlat with `args` on this host.
pub fn rtlat(args: &[&str]) -> Command {
    let mut c = if runs_natively() {
        Command::new(rtlat_bin())
    } else {
        assert!(
            have_qemu_arm(),
            "rtlat cannot run natively here and qemu-arm is not installed"
        );
        let mut c = Command::new("qemu-arm");
        c.args(["-L", ARM_SYSROOT, rtlat_bin()]);
        c
    };
    c.args(args);
    c
}

pub fn run_rtlat(args: &[&str]) -> Output {
    rtlat(args).output().expect("failed to start rtlat")
}

/// The real cyclictest, when its sysroot is unpacked and can be run.
pub fn cyclictest(args: &[&str]) -> Option<Command> {
    let bin = Path::new(CT_SYSROOT).join("usr/bin/cyclictest");
    if !bin.exists() {
        return None;
    }
    let libs = Path::new(CT_SYSROOT).join("usr/lib/arm-linux-gnueabihf");
    let mut c = if cfg!(target_arch = "arm") && runs_natively() {
        // A real ARM host: run it directly.
        let mut c = Command::new(&bin);
        c.env("LD_LIBRARY_PATH", &libs);
        c
    } else if have_qemu_arm() {
        let mut c = Command::new("qemu-arm");
        c.args(["-L", ARM_SYSROOT, "-E"])
            .arg(format!("LD_LIBRARY_PATH={}", libs.display()))
            .arg(&bin);
        c
    } else {
        return None;
    };
    c.args(args);
    Some(c)
}

/// A fresh path in the temp directory for this test.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rtlat-test-{}-{name}", std::process::id()))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Key paths of a JSON document, each with its value's type. Object keys
/// under `thread` (thread indices) are replaced by `*`; the entries of a
/// `histogram` object (bucket number: count, only non-empty buckets, so
/// their presence depends on the measured values) are left out and checked
/// separately with [`check_histogram`].
pub fn key_paths(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, path: &str, out: &mut BTreeSet<String>) {
        let ty = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        out.insert(format!("{path}: {ty}"));
        if path.ends_with(".histogram") {
            return;
        }
        if let Value::Object(m) = v {
            let wild = path.ends_with(".thread");
            for (k, child) in m {
                let key = if wild { "*" } else { k.as_str() };
                walk(child, &format!("{path}.{key}"), out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, "$", &mut out);
    out
}

/// Checks a thread's `histogram` object: keys are bucket numbers below
/// `buckets`, values positive counts (empty buckets are omitted). Returns
/// the number of samples in it.
pub fn check_histogram(h: &Value, buckets: u64) -> u64 {
    let m = h.as_object().expect("histogram is not an object");
    m.iter()
        .map(|(k, v)| {
            let b: u64 = k.parse().unwrap_or_else(|_| panic!("bucket key {k:?}"));
            assert!(b < buckets, "bucket {b} >= {buckets}");
            let n = v
                .as_u64()
                .unwrap_or_else(|| panic!("count {v} of bucket {k}"));
            assert!(n > 0, "empty bucket {k} listed");
            n
        })
        .sum()
}
