//! Kernel Mode Linux (kernel patch 0004): trusted programs in SYS mode.
//!
//! One static binary, `kml-probe`, is installed twice: `/trusted/kml-probe`
//! (root-owned, mode 0755, directly in the trusted directory) and
//! `/usr/bin/kml-probe`. Every check compares the two copies, or the
//! trampoline with the same system call made with `svc`: the oracle is the
//! program itself outside `/trusted` and the kernel's ordinary path. Each
//! negative trust case changes exactly one condition (the file is the same
//! inode wherever possible) and must give USR mode.
#![cfg(feature = "guest")]

use guest_tests::{kernel_log, new_kernel_problems};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::Mutex;

const TRUSTED: &str = "/trusted/kml-probe";
const UNTRUSTED: &str = "/usr/bin/kml-probe";

/// Tests that add or remove files in /trusted, or mount, take this lock.
static FS_LOCK: Mutex<()> = Mutex::new(());

type Kv = BTreeMap<String, String>;

fn parse(out: &[u8]) -> Kv {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn probe_cmd(mut cmd: Command) -> Kv {
    let desc = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{desc}: {e}"));
    assert!(
        out.status.success(),
        "{desc} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&out.stdout)
}

fn probe(path: &str, args: &[&str]) -> Kv {
    let mut c = Command::new(path);
    c.args(args);
    probe_cmd(c)
}

fn get<'a>(kv: &'a Kv, key: &str) -> &'a str {
    kv.get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no '{key}' in {kv:?}"))
}

fn assert_sys(kv: &Kv, what: &str) {
    assert_eq!(get(kv, "mode"), "sys", "{what}: {kv:?}");
    assert_ne!(get(kv, "at_kml"), "0x0", "{what}: {kv:?}");
}

fn assert_usr(kv: &Kv, what: &str) {
    assert_eq!(
        get(kv, "mode"),
        "usr",
        "{what} must run in USR mode: {kv:?}"
    );
    assert_eq!(get(kv, "at_kml"), "0x0", "{what}: no trampoline: {kv:?}");
    assert_eq!(
        get(kv, "privileged"),
        "SIGILL",
        "{what}: CP15 read must trap: {kv:?}"
    );
}

fn tainted() -> String {
    std::fs::read_to_string("/proc/sys/kernel/tainted")
        .expect("tainted")
        .trim()
        .to_string()
}

#[test]
fn trusted_program_runs_in_sys_mode_with_privilege() {
    let kv = probe(TRUSTED, &["status"]);
    assert_sys(&kv, TRUSTED);
    assert_eq!(
        get(&kv, "privileged"),
        "ok",
        "a privileged CP15 read works in SYS mode"
    );
    assert_eq!(
        get(&kv, "kernel_read"),
        "ok",
        "kernel text is readable in SYS mode"
    );
    assert_eq!(
        get(&kv, "at_secure"),
        "1",
        "trusted programs are secure-exec"
    );
    assert_eq!(
        get(&kv, "status_kml"),
        "1",
        "/proc/<pid>/status shows Kml: 1"
    );
    assert_eq!(get(&kv, "maps_kml"), "1", "the [kml] page is mapped");
    assert_eq!(
        get(&kv, "dumpable"),
        "0",
        "trusted programs are not dumpable"
    );
    let target =
        usize::from_str_radix(get(&kv, "entry_target").trim_start_matches("0x"), 16).unwrap();
    assert!(
        target >= 0x8000_0000,
        "the trampoline enters kernel text: {target:#x}"
    );
}

#[test]
fn same_program_elsewhere_runs_in_usr_mode() {
    assert_eq!(
        std::fs::read(TRUSTED).unwrap(),
        std::fs::read(UNTRUSTED).unwrap(),
        "the two copies must be the same program"
    );
    let kv = probe(UNTRUSTED, &["status"]);
    assert_usr(&kv, UNTRUSTED);
    assert_eq!(get(&kv, "at_secure"), "0");
    assert_eq!(
        get(&kv, "status_kml"),
        "0",
        "the status line exists and says 0"
    );
    assert_eq!(get(&kv, "maps_kml"), "0", "no [kml] page outside /trusted");
    assert_eq!(get(&kv, "entry_target"), "0");
}

#[test]
fn trampoline_is_unusable_from_user_mode() {
    let t = probe(TRUSTED, &["status"]);
    let entry = get(&t, "entry_target").to_string();
    let page = get(&t, "at_kml").to_string();
    // Jumping straight into the kernel's entry, or to where the [kml] page
    // is in a trusted process, faults in USR mode.
    let kv = probe(UNTRUSTED, &["jump", &entry]);
    assert_eq!(
        get(&kv, "jump"),
        "SIGSEGV",
        "USR mode jumping to {entry}: {kv:?}"
    );
    let kv = probe(UNTRUSTED, &["jump", &page]);
    assert_eq!(
        get(&kv, "jump"),
        "SIGSEGV",
        "USR mode jumping to {page}: {kv:?}"
    );
}

/// Runs the probe like `cmd` but from a fork that is traced (PTRACE_TRACEME)
/// across the exec; the tracer detaches at the exec stop.
fn probe_traced(path: &str) -> Kv {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let cpath = CString::new(path).unwrap();
    let arg = CString::new("status").unwrap();
    let argv = [cpath.as_ptr(), arg.as_ptr(), std::ptr::null()];
    // SAFETY: the child only calls async-signal-safe functions (ptrace,
    // dup2, execv, _exit) before the exec.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above; argv is NULL-terminated and outlives execv.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::dup2(fds[1], 1);
            libc::execv(cpath.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut st = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(
        libc::WIFSTOPPED(st) && libc::WSTOPSIG(st) == libc::SIGTRAP,
        "exec stop: {st:#x}"
    );
    // SAFETY: detaching from our stopped tracee lets it run on untraced.
    assert_eq!(unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) }, 0);
    // SAFETY: `fds[0]` is ours; File takes ownership and closes it.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    let mut out = Vec::new();
    f.read_to_end(&mut out).unwrap();
    // SAFETY: reaping our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "traced probe: {st:#x}"
    );
    parse(&out)
}

#[test]
fn trust_is_refused_when_one_condition_fails() {
    let _g = FS_LOCK.lock().unwrap_or_else(|e| e.into_inner());

    // Positive control: a root-owned 0755 copy directly in /trusted.
    let copy = "/trusted/kml-probe-copy";
    std::fs::copy(TRUSTED, copy).unwrap();
    std::fs::set_permissions(copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_sys(&probe(copy, &["status"]), "a root-owned copy in /trusted");

    // Group-writable program.
    std::fs::set_permissions(copy, std::fs::Permissions::from_mode(0o775)).unwrap();
    assert_usr(&probe(copy, &["status"]), "a group-writable program");
    // Other-writable program.
    std::fs::set_permissions(copy, std::fs::Permissions::from_mode(0o757)).unwrap();
    assert_usr(&probe(copy, &["status"]), "an other-writable program");
    // Not owned by root.
    std::fs::set_permissions(copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(copy, Some(65534), Some(65534)).unwrap();
    assert_usr(&probe(copy, &["status"]), "a program owned by nobody");
    std::fs::remove_file(copy).unwrap();

    // In a subdirectory of /trusted: only the directory itself is trusted.
    std::fs::create_dir_all("/trusted/sub").unwrap();
    std::fs::copy(TRUSTED, "/trusted/sub/kml-probe").unwrap();
    assert_usr(
        &probe("/trusted/sub/kml-probe", &["status"]),
        "a program in /trusted/sub",
    );
    std::fs::remove_dir_all("/trusted/sub").unwrap();

    // A bind mount of /trusted elsewhere: same files, another mount.
    std::fs::create_dir_all("/tmp/kml-bind").unwrap();
    // SAFETY: C strings for the paths; no data argument.
    let r = unsafe {
        libc::mount(
            c"/trusted".as_ptr(),
            c"/tmp/kml-bind".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(
        r,
        0,
        "mount --bind /trusted: {}",
        std::io::Error::last_os_error()
    );
    let kv = probe("/tmp/kml-bind/kml-probe", &["status"]);
    // SAFETY: unmounting what this test mounted.
    assert_eq!(unsafe { libc::umount(c"/tmp/kml-bind".as_ptr()) }, 0);
    assert_usr(&kv, "the program through a bind mount of /trusted");
}

#[test]
fn trust_is_refused_for_chroot_userns_nnp_and_ptrace() {
    // chroot into /trusted itself: exec "/kml-probe" is the very same file
    // (same mount, same dentry); only the chroot differs.
    let mut c = Command::new("/kml-probe");
    c.arg("status");
    // SAFETY: chroot() is async-signal-safe; nothing else runs before exec.
    unsafe {
        c.pre_exec(|| {
            if libc::chroot(c"/trusted".as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let kv = probe_cmd(c);
    assert_eq!(get(&kv, "mode"), "usr", "chrooted: {kv:?}");
    assert_eq!(get(&kv, "at_kml"), "0x0", "chrooted: {kv:?}");

    // A new user namespace (as root of the initial one: allowed).
    let mut c = Command::new(TRUSTED);
    c.arg("status");
    // SAFETY: unshare() is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert_usr(&probe_cmd(c), "in a user namespace");

    // no_new_privs.
    let mut c = Command::new(TRUSTED);
    c.arg("status");
    // SAFETY: prctl() is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert_usr(&probe_cmd(c), "with no_new_privs");

    // Traced across the exec.
    assert_usr(&probe_traced(TRUSTED), "under ptrace");
    // Control: the same fork-and-exec path without tracing is trusted.
    assert_sys(&probe(TRUSTED, &["status"]), "control");
}

#[test]
fn faults_in_trusted_code_become_signals() {
    let log0 = kernel_log();
    let taint0 = tainted();
    for (kind, want) in [
        ("null", "SIGSEGV"),
        ("udf", "SIGILL"),
        ("kernel-write", "SIGSEGV"),
        ("cli-svc", "ok"),
        ("cli-trampoline", "ok"),
        ("cli-fault", "ok"),
    ] {
        let kv = probe(TRUSTED, &["fault", kind]);
        let key = format!("fault_{}", kind.replace('-', "_"));
        assert_eq!(get(&kv, &key), want, "trusted fault {kind}: {kv:?}");
    }
    // The same program in USR mode, for comparison.
    for (kind, want) in [("null", "SIGSEGV"), ("udf", "SIGILL"), ("cli-svc", "ok")] {
        let kv = probe(UNTRUSTED, &["fault", kind]);
        let key = format!("fault_{}", kind.replace('-', "_"));
        assert_eq!(get(&kv, &key), want, "untrusted fault {kind}: {kv:?}");
    }
    let problems = new_kernel_problems(&log0, &kernel_log());
    assert!(
        problems.is_empty(),
        "kernel problems after the faults: {problems:#?}"
    );
    assert_eq!(tainted(), taint0, "taint flags changed");
}

#[test]
fn system_calls_agree_through_svc_and_the_trampoline() {
    let kv = probe(TRUSTED, &["calls"]);
    assert_eq!(get(&kv, "mode"), "sys");
    assert_eq!(get(&kv, "trampoline"), "1");
    assert_eq!(get(&kv, "getpid_svc"), get(&kv, "getpid_libc"));
    assert_eq!(get(&kv, "getpid_auto"), get(&kv, "getpid_libc"));
    assert_eq!(get(&kv, "getppid_auto"), get(&kv, "getppid_svc"));
    assert_eq!(
        get(&kv, "clock_ordered"),
        "1",
        "svc <= trampoline <= svc clock readings"
    );
    assert_eq!(get(&kv, "write_auto"), "Ok(5)");
    assert_eq!(
        get(&kv, "write_badfd"),
        "Err(Some(9))",
        "errors come back as -EBADF"
    );
    assert_eq!(
        get(&kv, "thread_mode"),
        "sys",
        "threads of a trusted program run in SYS mode"
    );
    assert_eq!(get(&kv, "thread_gettid_ok"), "1");
    assert_eq!(get(&kv, "fork_exit"), "ok");
    assert_eq!(get(&kv, "fork_mode"), "sys", "a forked child stays trusted");
    assert_eq!(
        get(&kv, "fork_getpid_ok"),
        "1",
        "the child's trampoline call sees the child"
    );
}

#[test]
fn seccomp_filters_apply_to_the_trampoline() {
    let kv = probe(TRUSTED, &["seccomp"]);
    assert_eq!(get(&kv, "seccomp_installed"), "1");
    assert_eq!(get(&kv, "seccomp_svc"), "-1", "getppid via svc: -EPERM");
    assert_eq!(
        get(&kv, "seccomp_auto"),
        "-1",
        "getppid via the trampoline: -EPERM"
    );
    assert_eq!(get(&kv, "seccomp_getpid_ok"), "1");
}

#[test]
fn signals_and_restart_in_sys_mode() {
    let kv = probe(TRUSTED, &["signal"]);
    assert_eq!(get(&kv, "handler_runs"), "1");
    assert_eq!(
        get(&kv, "handler_mode"),
        "sys",
        "handlers run in the program's mode"
    );
    assert_eq!(
        get(&kv, "mode_after"),
        "sys",
        "sigreturn goes back to SYS mode"
    );

    let kv = probe(TRUSTED, &["restart"]);
    assert_eq!(get(&kv, "trampoline"), "1");
    assert_eq!(
        get(&kv, "restart_read"),
        "Ok(1)",
        "SA_RESTART restarts the read: {kv:?}"
    );
    assert_eq!(get(&kv, "restart_handler_runs"), "1");
    assert_eq!(
        get(&kv, "eintr_read"),
        "Err(Some(4))",
        "without SA_RESTART: EINTR"
    );
    assert_eq!(get(&kv, "eintr_handler_runs"), "1");
    assert_eq!(
        get(&kv, "nanosleep_ret"),
        "0",
        "restart_syscall after SIGSTOP/SIGCONT"
    );
    assert_eq!(get(&kv, "nanosleep_full"), "1");
    assert_eq!(get(&kv, "restart_child"), "ok");
    assert_eq!(get(&kv, "nanosleep_child"), "ok");
}

#[test]
fn a_busy_trusted_program_is_preempted_and_killed() {
    let mut child = Command::new(TRUSTED)
        .arg("spin")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn kml-probe spin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready mode=sys");
    // It spins in SYS mode; this test still runs (the timer interrupt
    // preempts it), and SIGKILL ends it.
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: kill() of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st}");
}

#[test]
fn mode_follows_the_executed_program() {
    let kv = probe(TRUSTED, &["exec", UNTRUSTED, "status"]);
    assert_usr(&kv, "a trusted program exec'ing an untrusted one");
    let kv = probe(UNTRUSTED, &["exec", TRUSTED, "status"]);
    assert_sys(&kv, "an untrusted program exec'ing a trusted one");
}

#[test]
fn floating_point_is_the_same_in_both_modes() {
    let s = probe(TRUSTED, &["fp"]);
    let u = probe(UNTRUSTED, &["fp"]);
    assert_eq!(get(&s, "mode"), "sys");
    assert_eq!(get(&u, "mode"), "usr");
    assert_eq!(
        get(&s, "fp"),
        get(&u, "fp"),
        "VFP results differ between modes"
    );
    assert_eq!(get(&s, "fp_threads_agree"), "1");
    assert_eq!(get(&u, "fp_threads_agree"), "1");
}
