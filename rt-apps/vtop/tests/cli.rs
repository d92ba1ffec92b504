//! Runs the real vtop binary (under qemu-user when the host is not ARM):
//! usage errors, help, and what it says on a kernel without the call.

use std::process::{Command, Output};
use std::sync::OnceLock;

/// The cross sysroot qemu-user needs for armhf binaries.
const ARM_SYSROOT: &str = "/usr/arm-linux-gnueabihf";

/// Whether the vtop binary runs when executed directly: on an ARM host, or
/// for a host-architecture build. Otherwise (armv7 build on x86, tests
/// under cargo's qemu-user runner, no binfmt_misc) it is started as
/// `qemu-arm -L /usr/arm-linux-gnueabihf vtop ...`.
fn runs_natively() -> bool {
    static NATIVE: OnceLock<bool> = OnceLock::new();
    *NATIVE.get_or_init(|| {
        Command::new(env!("CARGO_BIN_EXE_vtop"))
            .arg("--help")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn vtop(args: &[&str]) -> Output {
    let mut c = if runs_natively() {
        Command::new(env!("CARGO_BIN_EXE_vtop"))
    } else {
        let mut c = Command::new("qemu-arm");
        c.args(["-L", ARM_SYSROOT, env!("CARGO_BIN_EXE_vtop")]);
        c
    };
    c.args(args).output().expect("cannot start vtop")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether this host's kernel lacks the call (the test binary runs under
/// the same kernel, or the same qemu-user, as the vtop binary).
fn kernel_lacks_the_call() -> bool {
    let x = std::hint::black_box(1u8);
    vtop::phys_addr_of(&x) == Err(vtop::Error::Unsupported)
}

#[test]
fn help_exits_0() {
    let o = vtop(&["--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with("Usage: vtop [OPTIONS] <pid|self> <addr>..."),
        "{text}"
    );
    assert!(text.contains("CAP_SYS_ADMIN"));
    assert!(stderr(&o).is_empty());
}

#[test]
fn usage_errors_exit_2_with_a_hint() {
    for (args, msg) in [
        (&[][..], "vtop: missing process"),
        (&["1234"][..], "vtop: missing address"),
        (&["me", "0x1000"][..], "vtop: 'me' is not a pid"),
        (&["self", "0xgg"][..], "vtop: '0xgg' is not a hex number"),
        (&["self", "0x1000", "--len", "0"][..], "vtop: --len 0"),
        (
            &["--bogus", "self", "1"][..],
            "vtop: unknown option '--bogus'",
        ),
    ] {
        let o = vtop(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.starts_with(msg), "{args:?}: {err}");
        assert!(
            err.ends_with("Try 'vtop --help' for more information.\n"),
            "{err}"
        );
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
}

#[test]
fn kernel_without_the_call_is_reported_and_fails() {
    if !kernel_lacks_the_call() {
        eprintln!("this kernel has vaddr_to_paddr(): the guest tests cover it");
        return;
    }
    let o = vtop(&["self", "0x10000", "65536"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let w = 2 + 2 * std::mem::size_of::<usize>();
    let want = format!(
        "{:#0w$x}: kernel lacks vaddr_to_paddr() (not an rtflex kernel?)\n\
         {:#0w$x}: kernel lacks vaddr_to_paddr() (not an rtflex kernel?)\n",
        0x10000, 65536
    );
    assert_eq!(stdout(&o), want);

    let o = vtop(&["self", "0x10000", "--len", "64K"]);
    assert_eq!(o.status.code(), Some(1));
    let want = format!(
        "{:#0w$x}-{:#0w$x}: kernel lacks vaddr_to_paddr() (not an rtflex kernel?)\n",
        0x10000, 0x20000
    );
    assert_eq!(stdout(&o), want);
}
