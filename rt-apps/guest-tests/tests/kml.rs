//! Kernel Mode Linux (kernel patch 0004): trusted programs in SYS mode, and
//! the rules of its threat model.
//!
//! The image ships no program in `/trusted` (root:kml 0750). The static
//! `kml-probe` lives in `/usr/lib/rtflex/kml/` and, as the same binary, in
//! `/usr/bin` (USR mode); every test that needs a trusted program installs
//! a copy in `/trusted` through an [`Installed`] guard and removes it when
//! it ends, also when it fails. Mounts, directory modes and sysctls a test
//! changes are undone by guards too.
//!
//! The oracles: the same program outside `/trusted`, the kernel's ordinary
//! `svc` path, `/proc/<pid>/status` and `/proc/<pid>/maps`, the ELF file
//! itself, and the errno an exec returns (every exec here is a raw
//! execve/execveat from a forked child, so no C library retries or
//! reinterprets it). Each negative case changes one condition and shows
//! the positive control next to it.
//!
//! Rules of the threat model and their tests:
//! - R1 who may run a trusted program (group `kml` or CAP_SYS_ADMIN, by
//!   every name): `nobody_outside_group_kml_cannot_exec_a_trusted_program_by_any_name`,
//!   `group_kml_members_run_trusted_programs_in_sys_mode`,
//!   `root_without_cap_sys_admin_cannot_exec_a_trusted_program`;
//! - R2 static only: `dynamic_program_in_trusted_fails_with_enoexec`;
//! - R3 revocation: `unlinked_or_replaced_program_is_not_trusted_through_an_old_fd`;
//! - R4 personality: `personality_flags_are_cleared_for_a_trusted_program`;
//! - R5 ptrace: `same_uid_cannot_trace_or_access_a_trusted_program`,
//!   `root_can_trace_a_trusted_program`,
//!   `ptrace_attach_racing_exec_never_gets_a_sys_mode_tracee`;
//! - R6 mounts onto `/trusted`: `mount_onto_trusted_makes_nothing_trusted`;
//! - USR mode cannot create SYS mode (sigreturn, PTRACE_SETREGS/POKEUSER):
//!   `user_mode_cannot_create_sys_mode_by_sigreturn_or_ptrace`;
//! - the kernel runs little-endian and in a defined state whatever the
//!   trusted program's E, IT and J bits (patch 0005):
//!   `a_big_endian_program_enters_the_kernel_little_endian_and_stays_big_endian`,
//!   `sigreturn_and_ptrace_give_sys_mode_no_it_or_j_bits_in_arm_state`.
// ARM only: processor modes, CPSR and ARM register sets.
#![cfg(all(feature = "guest", target_arch = "arm"))]

use guest_tests::{kernel_log, new_kernel_problems};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

/// The static probe as the image ships it, outside `/trusted`: a test tool
/// (it jumps to any address it is given), trusted only while a test has
/// installed a copy.
const STATIC_PROBE: &str = "/usr/lib/rtflex/kml/kml-probe";
/// The same binary where it runs in USR mode.
const UNTRUSTED: &str = "/usr/bin/kml-probe";
const TRUSTED_DIR: &str = "/trusted";
use guest_tests::NOBODY;
/// `CAP_SYS_ADMIN` (include/uapi/linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
/// `_LINUX_CAPABILITY_VERSION_3` (include/uapi/linux/capability.h).
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// ELF program header type of the interpreter (include/uapi/linux/elf.h).
const PT_INTERP: u32 = 3;

/// Every test here changes `/trusted` or runs programs whose trust depends
/// on it: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

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

fn get<'a>(kv: &'a Kv, key: &str) -> &'a str {
    kv.get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no '{key}' in {kv:?}"))
}

fn hex(kv: &Kv, key: &str) -> usize {
    let v = get(kv, key);
    usize::from_str_radix(v.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("'{key}' is not hexadecimal: {v}"))
}

fn assert_sys(kv: &Kv, what: &str) {
    assert_eq!(
        get(kv, "mode"),
        "sys",
        "{what} must run in SYS mode: {kv:?}"
    );
    assert_ne!(get(kv, "at_kml"), "0x0", "{what}: trampoline: {kv:?}");
    assert_eq!(get(kv, "status_kml"), "1", "{what}: Kml: 1: {kv:?}");
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

/// The gid of group `kml` from /etc/group (rootfs/overlay/etc/group).
fn kml_gid() -> u32 {
    let group = std::fs::read_to_string("/etc/group").expect("/etc/group");
    group
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == "kml").then(|| f[2].parse().ok())?
        })
        .unwrap_or_else(|| {
            panic!(
                "no group 'kml' in /etc/group: the image must define it (rootfs/overlay/etc/group)"
            )
        })
}

/// Whether the ELF file at `path` has a PT_INTERP program header (needs
/// a dynamic loader), read from the file itself.
fn has_interp(path: &str) -> bool {
    let elf = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&elf[..4], b"\x7fELF", "{path} is not an ELF file");
    assert_eq!(elf[4], 1, "{path} is not a 32-bit ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]);
    let (phoff, phentsize, phnum) = (u32_at(28) as usize, u16_at(42), u16_at(44));
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == PT_INTERP)
}

// ---------------------------------------------------------------------------
// Guards: whatever a test changes is undone when it ends, also on a panic.

/// A file a test put in place (by default root:root 0755 in `/trusted`),
/// removed on drop.
struct Installed {
    path: String,
}

impl Installed {
    /// Copy `src` to `dst`, root:root, mode 0755.
    fn copy(src: &str, dst: &str) -> Installed {
        let _ = std::fs::remove_file(dst);
        let guard = Installed { path: dst.into() };
        std::fs::copy(src, dst).unwrap_or_else(|e| panic!("copy {src} to {dst}: {e}"));
        std::os::unix::fs::chown(dst, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        guard
    }

    /// The static probe as `/trusted/NAME`, root:root 0755.
    fn probe(name: &str) -> Installed {
        Installed::copy(STATIC_PROBE, &format!("{TRUSTED_DIR}/{name}"))
    }

    /// Take over the removal of a file the test creates itself.
    fn adopt(path: &str) -> Installed {
        Installed { path: path.into() }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                eprintln!("cleanup: cannot remove {}: {e}", self.path)
            }
            _ => {}
        }
    }
}

/// A directory a test created, removed with its contents on drop.
struct MadeDir(String);

impl MadeDir {
    fn new(path: &str) -> MadeDir {
        std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {path}: {e}"));
        MadeDir(path.into())
    }
}

impl Drop for MadeDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("cleanup: cannot remove {}: {e}", self.0);
        }
    }
}

/// A mount a test made, detached on drop.
struct Mounted(CString);

impl Mounted {
    fn mount(
        src: &str,
        target: &str,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: &str,
    ) -> Mounted {
        let (csrc, ctarget) = (CString::new(src).unwrap(), CString::new(target).unwrap());
        let cfs = fstype.map(|f| CString::new(f).unwrap());
        let cdata = CString::new(data).unwrap();
        // SAFETY: C strings that outlive the call; a null fstype for a bind.
        let r = unsafe {
            libc::mount(
                csrc.as_ptr(),
                ctarget.as_ptr(),
                cfs.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
                flags,
                cdata.as_ptr() as *const libc::c_void,
            )
        };
        assert_eq!(
            r,
            0,
            "mount {src} on {target}: {}",
            std::io::Error::last_os_error()
        );
        Mounted(ctarget)
    }

    fn bind(src: &str, target: &str) -> Mounted {
        Mounted::mount(src, target, None, libc::MS_BIND, "")
    }

    fn tmpfs(target: &str, options: &str) -> Mounted {
        Mounted::mount("tmpfs", target, Some("tmpfs"), 0, options)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        // SAFETY: detaching the mount this guard made (the topmost one on
        // its target).
        if unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) } != 0 {
            eprintln!(
                "cleanup: cannot unmount {:?}: {}",
                self.0,
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Owner, group and mode of a path, changed for a test and restored on
/// drop.
struct Attrs {
    path: String,
    old: (u32, u32, u32),
}

impl Attrs {
    fn set(path: &str, uid: u32, gid: u32, mode: u32) -> Attrs {
        let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let guard = Attrs {
            path: path.into(),
            old: (m.uid(), m.gid(), m.mode() & 0o7777),
        };
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        guard
    }
}

impl Drop for Attrs {
    fn drop(&mut self) {
        let (uid, gid, mode) = self.old;
        if std::os::unix::fs::chown(&self.path, Some(uid), Some(gid)).is_err()
            || std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode)).is_err()
        {
            eprintln!("cleanup: cannot restore {}", self.path);
        }
    }
}

/// A sysctl set for a test, restored on drop.
struct Sysctl {
    path: String,
    old: String,
}

impl Sysctl {
    fn set(path: &str, value: &str) -> Sysctl {
        let old = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let guard = Sysctl {
            path: path.into(),
            old: old.trim().into(),
        };
        std::fs::write(path, value).unwrap_or_else(|e| panic!("{path} = {value}: {e}"));
        guard
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.path, &self.old) {
            eprintln!("cleanup: cannot restore {} to {}: {e}", self.path, self.old);
        }
    }
}

/// A running child, killed and reaped on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------
// Running a program: a forked child sets itself up, then makes the exec
// itself (execve or execveat), so the errno of a refused exec comes back
// unchanged (Command reports an error of the child's setup as the spawn
// error).

/// How the program is named at exec.
#[derive(Clone, Debug)]
enum Target {
    /// `execve(path)`.
    Path(String),
    /// `execveat(fd, "", AT_EMPTY_PATH)` on an fd the caller opened.
    Fd(RawFd),
    /// `execve("/proc/self/fd/N")`.
    ProcFd(RawFd),
}

fn path(p: &str) -> Target {
    Target::Path(p.into())
}

/// Credentials to switch to before the exec.
#[derive(Clone, Debug)]
struct Creds {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

/// What the child does before its exec, in this order: scheduling policy,
/// personality, capabilities, credentials, no_new_privs, unshare, chroot.
#[derive(Clone, Debug, Default)]
struct Setup {
    /// SCHED_FIFO priority (with SCHED_RESET_ON_FORK).
    fifo: Option<i32>,
    personality: Option<libc::c_ulong>,
    /// Drop CAP_SYS_ADMIN from the bounding, permitted, effective and
    /// inheritable sets.
    drop_sys_admin: bool,
    creds: Option<Creds>,
    no_new_privs: bool,
    unshare: libc::c_int,
    chroot: Option<CString>,
}

impl Setup {
    fn user(uid: u32, gid: u32, groups: &[u32]) -> Setup {
        Setup {
            creds: Some(Creds {
                uid,
                gid,
                groups: groups.to_vec(),
            }),
            ..Setup::default()
        }
    }

    /// uid/gid 65534, no supplementary group.
    fn nobody() -> Setup {
        Setup::user(NOBODY, NOBODY, &[])
    }

    /// uid/gid 65534 with the supplementary group `kml`.
    fn nobody_in_kml() -> Setup {
        Setup::user(NOBODY, NOBODY, &[kml_gid()])
    }

    /// Runs in the forked child: only async-signal-safe system calls, on
    /// data prepared before the fork.
    fn apply(&self) -> std::io::Result<()> {
        let check = |r: i64| {
            if r < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        // SAFETY: raw system calls on integers and on
        // pointers to memory this struct owns, valid for each call.
        unsafe {
            if let Some(prio) = self.fifo {
                let param = libc::sched_param {
                    sched_priority: prio,
                };
                check(
                    libc::sched_setscheduler(
                        0,
                        libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK,
                        &param,
                    )
                    .into(),
                )?;
            }
            if let Some(p) = self.personality {
                check(libc::personality(p).into())?;
            }
            if self.drop_sys_admin {
                check(libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0).into())?;
                let mut hdr = [LINUX_CAPABILITY_VERSION_3, 0];
                let mut data = [0u32; 6]; // 2 x {effective, permitted, inheritable}
                check(libc::syscall(libc::SYS_capget, hdr.as_mut_ptr(), data.as_mut_ptr()).into())?;
                for w in &mut data[..3] {
                    *w &= !(1 << CAP_SYS_ADMIN);
                }
                check(libc::syscall(libc::SYS_capset, hdr.as_mut_ptr(), data.as_ptr()).into())?;
            }
            if let Some(c) = &self.creds {
                check(libc::setgroups(c.groups.len(), c.groups.as_ptr()).into())?;
                check(libc::setresgid(c.gid, c.gid, c.gid).into())?;
                check(libc::setresuid(c.uid, c.uid, c.uid).into())?;
            }
            if self.no_new_privs {
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;
            }
            if self.unshare != 0 {
                check(libc::unshare(self.unshare).into())?;
            }
            if let Some(dir) = &self.chroot {
                check(libc::chroot(dir.as_ptr()).into())?;
                check(libc::chdir(c"/".as_ptr()).into())?;
            }
        }
        Ok(())
    }
}

/// A Command whose child applies `setup` and then execs `target` with
/// `args` itself (argv[0] is the name; environment: PATH only).
fn command(target: &Target, args: &[&str], setup: Setup) -> Command {
    let name = match target {
        Target::Path(p) => p.clone(),
        Target::Fd(fd) => format!("execveat:fd{fd}"),
        Target::ProcFd(fd) => format!("/proc/self/fd/{fd}"),
    };
    let file = CString::new(match target {
        Target::Fd(_) => String::new(),
        _ => name.clone(),
    })
    .unwrap();
    let argv_c: Vec<CString> = std::iter::once(name.as_str())
        .chain(args.iter().copied())
        .map(|a| CString::new(a).unwrap())
        .collect();
    let env_c = [CString::new("PATH=/usr/sbin:/usr/bin:/sbin:/bin").unwrap()];
    // Pointer arrays as integers (Send), NULL-terminated; the CStrings they
    // point into move into the closure with them.
    let argv: Vec<usize> = argv_c
        .iter()
        .map(|a| a.as_ptr() as usize)
        .chain([0])
        .collect();
    let envp: Vec<usize> = env_c
        .iter()
        .map(|a| a.as_ptr() as usize)
        .chain([0])
        .collect();
    let fd = match target {
        Target::Fd(fd) => Some(*fd),
        _ => None,
    };
    let mut cmd = Command::new(&name);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child and makes only raw
    // system calls (Setup::apply, execve, execveat) on memory it owns.
    unsafe {
        cmd.pre_exec(move || {
            let _keep = (&argv_c, &env_c);
            setup.apply()?;
            let argv = argv.as_ptr() as *const *const libc::c_char;
            let envp = envp.as_ptr() as *const *const libc::c_char;
            match fd {
                Some(fd) => {
                    libc::syscall(
                        libc::SYS_execveat,
                        fd,
                        file.as_ptr(),
                        argv,
                        envp,
                        libc::AT_EMPTY_PATH,
                    );
                }
                None => {
                    libc::execve(file.as_ptr(), argv, envp);
                }
            }
            Err(std::io::Error::last_os_error())
        });
    }
    cmd
}

/// Run the program to its end: its output, or the errno of a refused exec.
fn try_exec(target: &Target, args: &[&str], setup: Setup) -> Result<Output, i32> {
    match command(target, args, setup).output() {
        Ok(out) => Ok(out),
        Err(e) => Err(e
            .raw_os_error()
            .unwrap_or_else(|| panic!("{target:?} {args:?}: {e}"))),
    }
}

/// Run a probe that must start and succeed; its `key=value` lines.
fn exec_kv(target: &Target, args: &[&str], setup: Setup) -> Kv {
    match try_exec(target, args, setup) {
        Err(e) => panic!(
            "{target:?} {args:?}: exec failed: {}",
            std::io::Error::from_raw_os_error(e)
        ),
        Ok(out) => {
            assert!(
                out.status.success(),
                "{target:?} {args:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            parse(&out.stdout)
        }
    }
}

/// `kml-probe status` at `p`, run by root.
fn probe(p: &str, args: &[&str]) -> Kv {
    exec_kv(&path(p), args, Setup::default())
}

/// The exec must be refused with `errno`.
fn assert_refused(r: Result<Output, i32>, errno: i32, what: &str) {
    match r {
        Err(e) => assert_eq!(
            e,
            errno,
            "{what}: expected {}, got {}",
            std::io::Error::from_raw_os_error(errno),
            std::io::Error::from_raw_os_error(e)
        ),
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            panic!(
                "{what}: expected the exec to fail with {}, but the program ran ({}): {}",
                std::io::Error::from_raw_os_error(errno),
                out.status,
                stdout.chars().take(400).collect::<String>()
            )
        }
    }
}

/// Lines of `after` that were not in `before` and contain `pattern`.
fn new_log_lines(before: &str, after: &str, pattern: &str) -> Vec<String> {
    let old: BTreeSet<&str> = before.lines().collect();
    after
        .lines()
        .filter(|l| l.contains(pattern) && !old.contains(l))
        .map(str::to_string)
        .collect()
}

/// A probe started with stdin and stdout piped, after its `ready` line.
struct Waiting {
    child: Running,
    stdin: Option<ChildStdin>,
    out: BufReader<std::process::ChildStdout>,
    /// The `key=value` lines before `ready`.
    kv: Kv,
}

impl Waiting {
    fn start(target: &Target, args: &[&str], setup: Setup) -> Waiting {
        let mut cmd = command(target, args, setup);
        cmd.stdin(Stdio::piped());
        let mut child = Running(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("{target:?} {args:?}: {e}")),
        );
        let stdin = child.0.stdin.take();
        let mut out = BufReader::new(child.0.stdout.take().unwrap());
        let mut kv = Kv::new();
        loop {
            let mut line = String::new();
            assert_ne!(
                out.read_line(&mut line).unwrap(),
                0,
                "{target:?} {args:?} ended before 'ready': {kv:?}"
            );
            let line = line.trim_end();
            if line == "ready" {
                break;
            }
            if let Some((k, v)) = line.split_once('=') {
                kv.insert(k.into(), v.into());
            }
        }
        Waiting {
            child,
            stdin,
            out,
            kv,
        }
    }

    fn pid(&self) -> libc::pid_t {
        self.child.0.id() as libc::pid_t
    }

    /// Close its stdin (it ends) and return its remaining `key=value`
    /// lines, after checking that it exited successfully.
    fn finish(mut self) -> Kv {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        self.out.read_to_end(&mut rest).unwrap();
        let st = self.child.0.wait().unwrap();
        assert!(st.success(), "the waiting probe ended with {st}");
        parse(&rest)
    }
}

// ---------------------------------------------------------------------------
// The image and the basics.

/// The image policy: `/trusted` is root:kml 0750 and holds no program (a
/// file a failed test left behind shows here too); the static probe the
/// tests install is outside it, root-owned, static, and the very binary
/// that runs in USR mode from /usr/bin.
#[test]
fn image_keeps_trusted_empty_and_the_static_probe_outside() {
    let _s = serial();
    let m = std::fs::metadata(TRUSTED_DIR).unwrap();
    assert!(m.is_dir());
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (0, kml_gid(), 0o750),
        "/trusted must be root:kml 0750"
    );
    let mut names = Vec::new();
    for e in std::fs::read_dir(TRUSTED_DIR).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        let m = e.metadata().unwrap();
        assert!(
            m.is_file() && m.mode() & 0o111 == 0,
            "/trusted/{name} is not a plain non-executable file"
        );
        let mut head = [0u8; 4];
        let n = File::open(e.path()).unwrap().read(&mut head).unwrap();
        assert!(
            n < 4 || &head != b"\x7fELF",
            "/trusted/{name} is an ELF program"
        );
        names.push(name);
    }
    assert_eq!(names, ["README"], "/trusted holds only its README");

    let m = std::fs::metadata(STATIC_PROBE).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o755), "{STATIC_PROBE}");
    assert!(!has_interp(STATIC_PROBE), "{STATIC_PROBE} must be static");
    assert_eq!(
        std::fs::read(STATIC_PROBE).unwrap(),
        std::fs::read(UNTRUSTED).unwrap(),
        "{UNTRUSTED} must be the same program"
    );
}

#[test]
fn trusted_program_runs_in_sys_mode_with_privilege() {
    let _s = serial();
    let p = Installed::probe("kml-probe-status");
    let kv = probe(&p.path, &["status"]);
    assert_sys(&kv, &p.path);
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
    assert_eq!(get(&kv, "maps_kml"), "1", "the [kml] page is mapped");
    assert_eq!(
        get(&kv, "dumpable"),
        "0",
        "trusted programs are not dumpable"
    );
    let target = hex(&kv, "entry_target");
    assert!(
        target >= 0x8000_0000,
        "the trampoline enters kernel text: {target:#x}"
    );
}

#[test]
fn same_program_elsewhere_runs_in_usr_mode() {
    let _s = serial();
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

/// The trampoline must not give USR mode a way into the kernel. Two ways
/// to try, each of which Kernel Mode Linux could get wrong: (1) a trusted
/// program that drops to USR mode itself (`cps`) still has its [kml] page
/// mapped and calls it: the page's branch to the kernel entry must fault
/// at exactly that entry (a prefetch abort from USR mode, SIGSEGV), where
/// the same call worked a moment before in SYS mode; (2) an untrusted
/// program jumps to the kernel entry address: SIGSEGV at that address. A
/// KML that mapped its entry code user-executable, or routed USR-mode
/// aborts of a trusted task like SYS-mode ones, fails (1).
#[test]
fn trampoline_is_unusable_from_user_mode() {
    let _s = serial();
    let p = Installed::probe("kml-probe-usr-trampoline");
    let entry = hex(&probe(&p.path, &["status"]), "entry_target");

    let kv = probe(&p.path, &["fault", "usr-trampoline"]);
    let note: u32 = get(&kv, "fault_usr_trampoline_note").parse().unwrap();
    assert_eq!(note & 1, 1, "the trampoline works in SYS mode: {kv:?}");
    assert_eq!(note & 2, 2, "cps #0x10 switched to USR mode: {kv:?}");
    assert_eq!(
        note & 4,
        0,
        "the trampoline call returned in USR mode: {kv:?}"
    );
    assert_eq!(get(&kv, "fault_usr_trampoline"), "SIGSEGV", "{kv:?}");
    assert_eq!(
        hex(&kv, "fault_usr_trampoline_addr"),
        entry,
        "the fault is the branch to the kernel entry: {kv:?}"
    );

    let kv = probe(UNTRUSTED, &["jump", &format!("{entry:#x}")]);
    assert_eq!(
        get(&kv, "jump"),
        "SIGSEGV",
        "USR mode jumping to {entry:#x}: {kv:?}"
    );
    assert_eq!(hex(&kv, "jump_addr"), entry, "{kv:?}");
}

/// Runs the probe from a fork that is traced (PTRACE_TRACEME) across the
/// exec; the tracer detaches at the exec stop.
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
    let mut f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
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
    let _s = serial();
    let kml = kml_gid();

    // Positive control: a root-owned 0755 copy directly in /trusted.
    let copy = Installed::probe("kml-probe-copy");
    let p = copy.path.as_str();
    assert_sys(&probe(p, &["status"]), "a root-owned copy in /trusted");

    // The program: group-writable, other-writable, not owned by root.
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o775)).unwrap();
    assert_usr(&probe(p, &["status"]), "a group-writable program");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o757)).unwrap();
    assert_usr(&probe(p, &["status"]), "an other-writable program");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    assert_usr(&probe(p, &["status"]), "a program owned by nobody");
    std::os::unix::fs::chown(p, Some(0), Some(0)).unwrap();
    assert_sys(&probe(p, &["status"]), "the copy restored");

    // The directory: group-writable, other-writable, not owned by root.
    for (uid, mode, what) in [
        (0, 0o770, "a group-writable /trusted"),
        (0, 0o757, "an other-writable /trusted"),
        (NOBODY, 0o750, "a /trusted owned by nobody"),
    ] {
        let _dir = Attrs::set(TRUSTED_DIR, uid, kml, mode);
        assert_usr(&probe(p, &["status"]), what);
    }
    assert_sys(&probe(p, &["status"]), "/trusted restored");

    // In a subdirectory of /trusted: only the directory itself is trusted.
    {
        let _sub = MadeDir::new("/trusted/sub");
        let inner = Installed::copy(STATIC_PROBE, "/trusted/sub/kml-probe");
        assert_usr(
            &probe(&inner.path, &["status"]),
            "a program in /trusted/sub",
        );
    }

    // A bind mount of /trusted elsewhere: same files, another mount.
    {
        let _dir = MadeDir::new("/tmp/kml-bind");
        let _m = Mounted::bind(TRUSTED_DIR, "/tmp/kml-bind");
        assert_usr(
            &probe("/tmp/kml-bind/kml-probe-copy", &["status"]),
            "the program through a bind mount of /trusted",
        );
    }
}

#[test]
fn trust_is_refused_for_chroot_userns_mountns_nnp_and_ptrace() {
    let _s = serial();
    let t = Installed::probe("kml-probe-context");

    // chroot into /trusted itself: exec "/kml-probe-context" is the very
    // same file (same mount, same dentry); only the chroot differs.
    let chrooted = Setup {
        chroot: Some(CString::new(TRUSTED_DIR).unwrap()),
        ..Setup::default()
    };
    let kv = exec_kv(&path("/kml-probe-context"), &["status"], chrooted);
    assert_eq!(get(&kv, "mode"), "usr", "chrooted: {kv:?}");
    assert_eq!(get(&kv, "at_kml"), "0x0", "chrooted: {kv:?}");

    // A new user namespace, by root in group kml (so that only the
    // namespace differs from a caller allowed to run trusted programs).
    let userns = Setup {
        unshare: libc::CLONE_NEWUSER,
        ..Setup::user(0, 0, &[kml_gid()])
    };
    assert_usr(
        &exec_kv(&path(&t.path), &["status"], userns),
        "in a user namespace",
    );

    // A new mount namespace: the same path leads to a copy of the mount.
    let mountns = Setup {
        unshare: libc::CLONE_NEWNS,
        ..Setup::default()
    };
    assert_usr(
        &exec_kv(&path(&t.path), &["status"], mountns),
        "in a mount namespace",
    );

    // no_new_privs.
    let nnp = Setup {
        no_new_privs: true,
        ..Setup::default()
    };
    assert_usr(
        &exec_kv(&path(&t.path), &["status"], nnp),
        "with no_new_privs",
    );

    // Traced across the exec.
    assert_usr(&probe_traced(&t.path), "under ptrace");
    // Control: the same fork-and-exec path without tracing is trusted.
    assert_sys(&probe(&t.path, &["status"]), "control");
}

/// Faults in trusted code end the program with a signal, at the faulting
/// address, without a kernel report. `vmalloc-hole` (an unmapped kernel
/// address) is the case only Kernel Mode Linux's fault routing decides;
/// `kernel-write` faults because kernel text is read-only
/// (STRICT_KERNEL_RWX) and checks that such a permission fault from SYS
/// mode also becomes SIGSEGV.
#[test]
fn faults_in_trusted_code_become_signals() {
    let _s = serial();
    let p = Installed::probe("kml-probe-faults");
    let entry = hex(&probe(&p.path, &["status"]), "entry_target");
    let log0 = kernel_log();
    let taint0 = tainted();
    for (kind, want) in [
        ("null", "SIGSEGV"),
        ("udf", "SIGILL"),
        ("kernel-write", "SIGSEGV"),
        ("vmalloc-hole", "SIGSEGV"),
        ("cli-svc", "ok"),
        ("cli-trampoline", "ok"),
        ("cli-fault", "ok"),
    ] {
        let kv = probe(&p.path, &["fault", kind]);
        let key = format!("fault_{}", kind.replace('-', "_"));
        assert_eq!(get(&kv, &key), want, "trusted fault {kind}: {kv:?}");
        let addr = get(&kv, &format!("{key}_addr"));
        match kind {
            "null" => assert_eq!(addr, "0x0", "{kv:?}"),
            "kernel-write" => assert_eq!(hex(&kv, &format!("{key}_addr")), entry, "{kv:?}"),
            "vmalloc-hole" => {
                let hole = hex(&kv, "vmalloc_hole");
                assert!(hole >= 0xc000_0000, "a kernel address: {hole:#x}");
                assert_eq!(hex(&kv, &format!("{key}_addr")), hole, "{kv:?}");
            }
            "udf" => assert_ne!(addr, "none", "{kv:?}"),
            _ => assert_eq!(addr, "none", "{kv:?}"),
        }
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
    let _s = serial();
    let p = Installed::probe("kml-probe-calls");
    let kv = probe(&p.path, &["calls"]);
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
    let _s = serial();
    let p = Installed::probe("kml-probe-seccomp");
    let kv = probe(&p.path, &["seccomp"]);
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
    let _s = serial();
    let p = Installed::probe("kml-probe-signals");
    let kv = probe(&p.path, &["signal"]);
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

    let kv = probe(&p.path, &["restart"]);
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

/// The `[kml]` entry runs the calls of its short table (getpid, read, ...)
/// without vector_swi and returns without restore_user_regs when no work
/// is pending; anything else, and every call with work on its return, takes
/// the full path (kernel patch 0005). Either way a call gives back every
/// register but r0 (the result) and ip: `kml-probe regs` sets r1-r11 to
/// known values around a short call (getpid), a full one (getpgid), a
/// short one that returns through signal delivery and an SA_RESTART restart
/// (a read of an empty pipe), and a short one that sleeps while another
/// process returns to user space (the user register bank, sp and lr, is
/// shared by every task: a first version of the short path left the other
/// process's sp and lr to the program). That last case runs without an
/// rseq area: with one, a context switch is return work and the call
/// returns the full way. (A kernel without the short path, such as the
/// debug variants, which trace IRQ flags, runs every case the full way.)
/// Oracles: libc's getpid/getpgid, the
/// bytes a helper wrote, the handler's count.
#[test]
fn registers_survive_the_short_and_the_full_trampoline_path() {
    let _s = serial();
    let p = Installed::probe("kml-probe-regs");
    let kv = probe(&p.path, &["regs"]);
    assert_eq!(get(&kv, "mode"), "sys", "{kv:?}");
    for path in ["short", "full"] {
        assert_eq!(get(&kv, &format!("{path}_ok")), "1", "{path}: {kv:?}");
        assert_eq!(
            get(&kv, &format!("{path}_changed")),
            "",
            "{path}: registers changed by the call: {kv:?}"
        );
    }
    assert_eq!(get(&kv, "work_ret"), "1", "the restarted read: {kv:?}");
    assert_eq!(get(&kv, "work_byte"), "x", "{kv:?}");
    assert_eq!(get(&kv, "work_handler_runs"), "1", "{kv:?}");
    assert_eq!(
        get(&kv, "work_changed"),
        "",
        "registers changed across signal delivery and restart: {kv:?}"
    );
    assert_eq!(get(&kv, "work_child"), "ok", "{kv:?}");
    assert_eq!(
        get(&kv, "block_child"),
        "ok",
        "a short call that slept while another process ran must give back \
         the program's own sp and lr: {kv:?}"
    );
    assert_eq!(get(&kv, "block_pinned"), "0", "{kv:?}");
    assert_eq!(
        get(&kv, "block_rseq"),
        "unregistered",
        "the child must take the short return, which needs no rseq area: {kv:?}"
    );
    assert_eq!(get(&kv, "block_ret"), "1", "{kv:?}");
    assert_eq!(get(&kv, "block_byte"), "y", "{kv:?}");
    assert_eq!(get(&kv, "block_changed"), "", "{kv:?}");
    assert_eq!(get(&kv, "block_helper"), "ok", "{kv:?}");
}

/// A traced trusted program's trampoline calls stop for its tracer like
/// `svc` calls do: PTRACE_SYSCALL sets syscall work, which sends even the
/// short table's calls down the full path. `kml-probe trace-calls` traces a
/// child making a trampoline getpid (short table) and getpgid (not): the
/// tracer must see an entry and an exit stop of each, at the `[kml]` page,
/// and its PTRACE_SET_SYSCALL at getpid's entry must turn the call into
/// getppid (the child checks the result against getppid()).
#[test]
fn ptrace_sees_and_changes_trampoline_calls() {
    let _s = serial();
    let p = Installed::probe("kml-probe-trace");
    let kv = probe(&p.path, &["trace-calls"]);
    assert_eq!(get(&kv, "mode"), "sys", "{kv:?}");
    let (getpid, getpgid) = (libc::SYS_getpid, libc::SYS_getpgid);
    assert_eq!(
        get(&kv, "trace_stops"),
        format!("entry:{getpid},exit:{getpid},entry:{getpgid},exit:{getpgid}"),
        "{kv:?}"
    );
    assert_eq!(get(&kv, "trace_set_syscall"), "1", "{kv:?}");
    assert_eq!(
        get(&kv, "trace_child"),
        "ok",
        "the child's getpid must have run as getppid: {kv:?}"
    );
}

#[test]
fn a_busy_trusted_program_is_preempted_and_killed() {
    let _s = serial();
    let p = Installed::probe("kml-probe-spin");
    let mut child = Running(
        Command::new(&p.path)
            .arg("spin")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn kml-probe spin"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready mode=sys");
    // It spins in SYS mode; this test still runs (the timer interrupt
    // preempts it), and SIGKILL ends it.
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: kill() of our own child.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGKILL) }, 0);
    let st = child.0.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st}");
}

#[test]
fn mode_follows_the_executed_program() {
    let _s = serial();
    let p = Installed::probe("kml-probe-exec");
    let kv = probe(&p.path, &["exec", UNTRUSTED, "status"]);
    assert_usr(&kv, "a trusted program exec'ing an untrusted one");
    let kv = probe(UNTRUSTED, &["exec", &p.path, "status"]);
    assert_sys(&kv, "an untrusted program exec'ing a trusted one");
}

#[test]
fn floating_point_is_the_same_in_both_modes() {
    let _s = serial();
    let p = Installed::probe("kml-probe-fp");
    let s = probe(&p.path, &["fp"]);
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

// ---------------------------------------------------------------------------
// R1: only a caller in the group owning /trusted (kml) or with
// CAP_SYS_ADMIN may execute a trusted program, whatever the name it uses.

#[test]
fn nobody_outside_group_kml_cannot_exec_a_trusted_program_by_any_name() {
    let _s = serial();
    let kml = kml_gid();
    let p = Installed::probe("kml-probe-r1");
    let log0 = kernel_log();

    // Control: nobody may run the same program outside /trusted.
    assert_usr(
        &exec_kv(&path(UNTRUSTED), &["status"], Setup::nobody()),
        "nobody running /usr/bin/kml-probe",
    );
    // By path, with the image's /trusted (root:kml 0750): the directory
    // already keeps nobody out.
    assert_refused(
        try_exec(&path(&p.path), &["status"], Setup::nobody()),
        libc::EACCES,
        "nobody, by path, /trusted 0750",
    );
    // By path with /trusted open to others (0755): only the kernel rule is
    // left to refuse.
    {
        let _open = Attrs::set(TRUSTED_DIR, 0, kml, 0o755);
        assert_refused(
            try_exec(&path(&p.path), &["status"], Setup::nobody()),
            libc::EACCES,
            "nobody, by path, /trusted 0755",
        );
    }
    // An fd root opened and passed down, which needs no search permission
    // on /trusted: execveat(fd, "", AT_EMPTY_PATH) and /proc/self/fd/N.
    let f = File::open(&p.path).unwrap();
    let fd = f.as_raw_fd();
    assert_refused(
        try_exec(&Target::Fd(fd), &["status"], Setup::nobody()),
        libc::EACCES,
        "nobody, execveat of an fd from root",
    );
    assert_refused(
        try_exec(&Target::ProcFd(fd), &["status"], Setup::nobody()),
        libc::EACCES,
        "nobody, /proc/self/fd/N of an fd from root",
    );
    // Controls: the same fd and name work for root and for group kml.
    assert_sys(
        &exec_kv(&Target::Fd(fd), &["status"], Setup::default()),
        "root, execveat of the fd",
    );
    assert_sys(
        &exec_kv(&Target::ProcFd(fd), &["status"], Setup::nobody_in_kml()),
        "nobody in group kml, /proc/self/fd/N",
    );
    let lines = new_log_lines(&log0, &kernel_log(), "kml:");
    assert!(
        !lines.is_empty(),
        "the kernel logs a 'kml:' line for a refused exec"
    );
    println!("kernel log: {lines:?}");
}

#[test]
fn group_kml_members_run_trusted_programs_in_sys_mode() {
    let _s = serial();
    let kml = kml_gid();
    let p = Installed::probe("kml-probe-group");
    // As a supplementary group.
    let kv = exec_kv(&path(&p.path), &["status"], Setup::nobody_in_kml());
    assert_sys(&kv, "nobody with supplementary group kml");
    assert_eq!(get(&kv, "privileged"), "ok", "{kv:?}");
    // As the primary group (the fsgid), no supplementary group.
    let kv = exec_kv(&path(&p.path), &["status"], Setup::user(NOBODY, kml, &[]));
    assert_sys(&kv, "nobody with primary group kml");
    // Through an fd root opened.
    let f = File::open(&p.path).unwrap();
    assert_sys(
        &exec_kv(
            &Target::Fd(f.as_raw_fd()),
            &["status"],
            Setup::nobody_in_kml(),
        ),
        "nobody in group kml, execveat",
    );
}

#[test]
fn root_without_cap_sys_admin_cannot_exec_a_trusted_program() {
    let _s = serial();
    let p = Installed::probe("kml-probe-cap");
    let root_no_groups = Setup::user(0, 0, &[]);
    let no_cap = Setup {
        drop_sys_admin: true,
        ..root_no_groups.clone()
    };
    assert_refused(
        try_exec(&path(&p.path), &["status"], no_cap),
        libc::EACCES,
        "root without CAP_SYS_ADMIN, not in group kml",
    );
    // Controls: with CAP_SYS_ADMIN, or in group kml, root may.
    assert_sys(
        &exec_kv(&path(&p.path), &["status"], root_no_groups),
        "root with CAP_SYS_ADMIN",
    );
    let no_cap_in_kml = Setup {
        drop_sys_admin: true,
        ..Setup::user(0, 0, &[kml_gid()])
    };
    assert_sys(
        &exec_kv(&path(&p.path), &["status"], no_cap_in_kml),
        "root without CAP_SYS_ADMIN in group kml",
    );
}

// ---------------------------------------------------------------------------
// R2: a trusted program must be static.

#[test]
fn dynamic_program_in_trusted_fails_with_enoexec() {
    let _s = serial();
    // A dynamically linked program of the image (the rt-apps binaries
    // other than those of rt-apps/kml/static-bins are), checked from the
    // file itself.
    let dynamic = "/usr/bin/vtop";
    assert!(
        has_interp(dynamic),
        "{dynamic} must have an ELF interpreter for this test"
    );
    // Control: it runs outside /trusted.
    let out = try_exec(&path(dynamic), &["--help"], Setup::default()).expect("vtop --help");
    assert!(out.status.success(), "{dynamic} --help: {}", out.status);
    let d = Installed::copy(dynamic, "/trusted/vtop-dynamic");
    assert_refused(
        try_exec(&path(&d.path), &["--help"], Setup::default()),
        libc::ENOEXEC,
        "a dynamic program in /trusted, run by root",
    );
    // Control: a static program next to it is trusted.
    let s = Installed::probe("kml-probe-static");
    assert_sys(&probe(&s.path, &["status"]), "a static program in /trusted");
}

// ---------------------------------------------------------------------------
// R3: trust follows the name in /trusted at the time of the exec.

#[test]
fn unlinked_or_replaced_program_is_not_trusted_through_an_old_fd() {
    let _s = serial();
    // Unlinked: an fd opened while the program was in /trusted.
    let a = Installed::probe("kml-probe-unlinked");
    let fa = File::open(&a.path).unwrap();
    assert_sys(
        &exec_kv(&Target::Fd(fa.as_raw_fd()), &["status"], Setup::default()),
        "execveat of an fd while the program is in /trusted",
    );
    std::fs::remove_file(&a.path).unwrap();
    assert_usr(
        &exec_kv(&Target::Fd(fa.as_raw_fd()), &["status"], Setup::default()),
        "execveat of an fd after the program was unlinked",
    );

    // Replaced: another file renamed over its name.
    let b = Installed::probe("kml-probe-replaced");
    let fb = File::open(&b.path).unwrap();
    let new = Installed::probe("kml-probe-replaced.new");
    std::fs::rename(&new.path, &b.path).unwrap();
    assert_usr(
        &exec_kv(&Target::Fd(fb.as_raw_fd()), &["status"], Setup::default()),
        "execveat of an fd after another file was renamed over the program",
    );
    assert_sys(
        &probe(&b.path, &["status"]),
        "the file now at the name, by path",
    );

    // Moved out of /trusted (to the same file system).
    let c = Installed::probe("kml-probe-moved");
    let fc = File::open(&c.path).unwrap();
    let moved = Installed::adopt("/root/kml-probe-moved");
    std::fs::rename(&c.path, &moved.path).unwrap();
    assert_usr(
        &exec_kv(&Target::Fd(fc.as_raw_fd()), &["status"], Setup::default()),
        "execveat of an fd after the program was moved out of /trusted",
    );
}

// ---------------------------------------------------------------------------
// R4: a trusted program starts without its caller's personality flags
// (PER_LINUX, on ARM PER_LINUX_32BIT) and with address randomisation.

/// The personality flags a setuid program loses (PER_CLEAR_ON_SETID in
/// include/uapi/linux/personality.h) that a caller can set without
/// privilege and that matter here: executable readable memory, no address
/// randomisation, the legacy mmap layout. (MMAP_PAGE_ZERO, the fourth,
/// would map page 0 into the untrusted control.)
const CALLER_FLAGS: libc::c_int =
    libc::READ_IMPLIES_EXEC | libc::ADDR_NO_RANDOMIZE | libc::ADDR_COMPAT_LAYOUT;

#[test]
fn personality_flags_are_cleared_for_a_trusted_program() {
    let _s = serial();
    let p = Installed::probe("kml-probe-personality");
    let with_flags = Setup {
        personality: Some(CALLER_FLAGS as libc::c_ulong),
        ..Setup::default()
    };
    // The oracle: the personality a program gets without flags (on ARM
    // PER_LINUX_32BIT, set by the ELF loader), and what the flags do to an
    // untrusted program: they stay, readable memory is executable, and two
    // runs get the same addresses.
    let base = hex(&probe(UNTRUSTED, &["personality"]), "personality");
    assert_eq!(base & CALLER_FLAGS as usize, 0, "no flags without a caller");
    let u: Vec<Kv> = (0..2)
        .map(|_| exec_kv(&path(UNTRUSTED), &["personality"], with_flags.clone()))
        .collect();
    assert_eq!(get(&u[0], "mode"), "usr");
    assert_eq!(
        format!("{:#x}", hex(&u[0], "personality")),
        format!("{:#x}", base | CALLER_FLAGS as usize),
        "{u:?}"
    );
    assert_eq!(get(&u[0], "read_exec"), "1", "{u:?}");
    assert_eq!(get(&u[0], "stack"), get(&u[1], "stack"), "no ASLR: {u:?}");
    assert_eq!(get(&u[0], "mmap"), get(&u[1], "mmap"), "no ASLR: {u:?}");

    // The trusted program: the flags are gone, and its addresses are
    // randomised. Four runs (8 bits of mmap randomness: four equal
    // addresses by chance once in 2^24 runs).
    let t: Vec<Kv> = (0..4)
        .map(|_| exec_kv(&path(&p.path), &["personality"], with_flags.clone()))
        .collect();
    for kv in &t {
        assert_eq!(get(kv, "mode"), "sys", "{kv:?}");
        assert_eq!(
            format!("{:#x}", hex(kv, "personality")),
            format!("{base:#x}"),
            "{kv:?}"
        );
        assert_eq!(get(kv, "read_exec"), "0", "{kv:?}");
    }
    let distinct = |key: &str| {
        t.iter()
            .map(|kv| get(kv, key))
            .collect::<BTreeSet<_>>()
            .len()
    };
    assert!(distinct("stack") > 1, "stack addresses never change: {t:?}");
    assert!(distinct("mmap") > 1, "mmap addresses never change: {t:?}");
}

// ---------------------------------------------------------------------------
// R5: ptrace-mode access to a trusted program needs CAP_SYS_PTRACE.

/// Every access `kml-probe attack` reports must have been refused.
fn assert_all_refused(kv: &Kv, what: &str) {
    for key in [
        "ptrace_attach",
        "ptrace_seize",
        "proc_mem_open_rw",
        "process_vm_readv",
        "process_vm_writev",
        "proc_environ",
        "pidfd_getfd",
    ] {
        let v = get(kv, key);
        assert!(
            v == "EPERM" || v == "EACCES",
            "{what}: {key} must be refused, got {v}: {kv:?}"
        );
    }
}

#[test]
fn same_uid_cannot_trace_or_access_a_trusted_program() {
    let _s = serial();
    let p = Installed::probe("kml-probe-dumpable");

    // The trusted program, run by nobody in group kml, makes itself
    // dumpable and waits; another process of nobody attacks it.
    let victim = Waiting::start(&path(&p.path), &["dumpable1-wait"], Setup::nobody_in_kml());
    assert_eq!(get(&victim.kv, "mode"), "sys", "{:?}", victim.kv);
    assert_eq!(get(&victim.kv, "dumpable"), "1", "{:?}", victim.kv);
    let poke = get(&victim.kv, "poke_addr").to_string();
    let kv = exec_kv(
        &path(UNTRUSTED),
        &["attack", &victim.pid().to_string(), &poke],
        Setup::nobody(),
    );
    assert_all_refused(&kv, "another process of the same user");
    let rest = victim.finish();
    assert_eq!(get(&rest, "poke_after"), "0x12345678", "memory unchanged");

    // Its caller (same user, group kml) attacks its own child.
    let kv = exec_kv(
        &path(UNTRUSTED),
        &["attack-child", &p.path, "dumpable1-wait"],
        Setup::nobody_in_kml(),
    );
    assert_eq!(get(&kv, "child_mode"), "sys", "{kv:?}");
    assert_eq!(get(&kv, "child_dumpable"), "1", "{kv:?}");
    assert_all_refused(&kv, "the caller");
    assert_eq!(get(&kv, "child_poke_after"), "0x12345678", "{kv:?}");
    assert_eq!(get(&kv, "child_exit"), "exit status: 0", "{kv:?}");
}

#[test]
fn root_can_trace_a_trusted_program() {
    let _s = serial();
    let p = Installed::probe("kml-probe-root-trace");
    let victim = Waiting::start(&path(&p.path), &["dumpable1-wait"], Setup::nobody_in_kml());
    assert_eq!(get(&victim.kv, "mode"), "sys", "{:?}", victim.kv);
    let pid = victim.pid();
    let poke = hex(&victim.kv, "poke_addr");
    // SAFETY: ptrace requests on the child this test started; `regs` is a
    // writable user_regs for PTRACE_GETREGS.
    let (cpsr, word) = unsafe {
        assert_eq!(
            libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0),
            0,
            "root seizes a trusted program: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0), 0);
        let mut st = 0;
        assert_eq!(libc::waitpid(pid, &mut st, libc::__WALL), pid);
        assert!(libc::WIFSTOPPED(st), "{st:#x}");
        let mut regs: libc::user_regs = std::mem::zeroed();
        assert_eq!(
            libc::ptrace(
                libc::PTRACE_GETREGS,
                pid,
                0,
                &mut regs as *mut libc::user_regs
            ),
            0
        );
        let mut word = 0u32;
        let local = libc::iovec {
            iov_base: &mut word as *mut u32 as *mut libc::c_void,
            iov_len: 4,
        };
        let remote = libc::iovec {
            iov_base: poke as *mut libc::c_void,
            iov_len: 4,
        };
        assert_eq!(libc::process_vm_readv(pid, &local, 1, &remote, 1, 0), 4);
        assert_eq!(libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0), 0);
        (regs.arm_cpsr as u32, word)
    };
    assert_eq!(
        cpsr & 0x1f,
        0x1f,
        "root sees the tracee in SYS mode: {cpsr:#x}"
    );
    assert_eq!(word, 0x1234_5678, "root reads the program's memory");
    let rest = victim.finish();
    assert_eq!(get(&rest, "poke_after"), "0x12345678");
}

/// The exec race: with fs.suid_dumpable=1 a same-uid attacker spins on
/// PTRACE_ATTACH/PTRACE_SEIZE of a child that is about to exec the trusted
/// program (`kml-probe race`, see its source). It runs as SCHED_FIFO on
/// this one-CPU guest (given by root before dropping to nobody), so it
/// preempts the child the moment the exec releases its locks, as an
/// attacker on another CPU would. No tracee may ever be seen in SYS mode
/// or with `Kml: 1`; an attach that wins before the exec makes the exec
/// untrusted (USR mode).
#[test]
fn ptrace_attach_racing_exec_never_gets_a_sys_mode_tracee() {
    let _s = serial();
    let p = Installed::probe("kml-probe-race");
    let _dumpable = Sysctl::set("/proc/sys/fs/suid_dumpable", "1");
    let attacker = Setup {
        fifo: Some(10),
        ..Setup::nobody_in_kml()
    };
    // A debug kernel (LOCALVERSION -debug or -kasan, docs/debug-kernel.md)
    // runs each exec many times slower while the FIFO attacker spins: fewer
    // rounds there keep the run within its time (200 took over 10 min).
    let rounds = if guest_tests::debug_kernel_variant().is_some() {
        40
    } else {
        200
    };
    let kv = exec_kv(
        &path(UNTRUSTED),
        &["race", &rounds.to_string(), &p.path],
        attacker,
    );
    println!("exec race: {kv:?}");
    let n = |k: &str| -> u32 { get(&kv, k).parse().unwrap() };
    assert_eq!(n("rounds"), rounds);
    assert_eq!(n("kml_tracee"), 0, "a tracee in SYS mode: {kv:?}");
    assert_eq!(
        n("attached_before_exec_not_usr"),
        0,
        "a program traced from before its exec must run in USR mode: {kv:?}"
    );
    assert_eq!(
        n("untraced_other"),
        0,
        "untraced children must run trusted: {kv:?}"
    );
    assert!(
        n("untraced_sys") > 0,
        "no round ran the trusted program: {kv:?}"
    );
    assert!(
        n("attached_before_exec") > 0,
        "the attacker never attached at all (the race was not run): {kv:?}"
    );
}

// ---------------------------------------------------------------------------
// R6: a mount onto /trusted makes nothing trusted.

#[test]
fn mount_onto_trusted_makes_nothing_trusted() {
    let _s = serial();
    let kml = kml_gid();
    let p = Installed::probe("kml-probe-mounts");
    assert_sys(&probe(&p.path, &["status"]), "control, before the mounts");

    // A tmpfs on /trusted with the directory's own owner and mode, and a
    // root-owned 0755 static program in it.
    {
        let _m = Mounted::tmpfs(TRUSTED_DIR, &format!("mode=0750,uid=0,gid={kml}"));
        let inside = Installed::probe("kml-probe-on-tmpfs");
        assert_usr(
            &probe(&inside.path, &["status"]),
            "a program on a tmpfs mounted on /trusted",
        );
    }
    // /trusted bind-mounted onto itself: the same directory and files.
    {
        let _m = Mounted::bind(TRUSTED_DIR, TRUSTED_DIR);
        assert_usr(
            &probe(&p.path, &["status"]),
            "/trusted bind-mounted onto itself",
        );
    }
    // A file bind-mounted onto a name in /trusted.
    {
        let q = Installed::probe("kml-probe-file-mount");
        let _m = Mounted::bind(STATIC_PROBE, &q.path);
        assert_usr(
            &probe(&q.path, &["status"]),
            "a file mounted onto /trusted/NAME",
        );
    }
    assert_sys(&probe(&p.path, &["status"]), "control, the mounts gone");
}

/// The signal handler of [`user_mode_cannot_create_sys_mode_by_sigreturn_or_ptrace`]:
/// writes SYS mode into the CPSR that sigreturn will restore.
extern "C" fn cpsr_to_sys(_sig: libc::c_int, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: for an SA_SIGINFO handler the kernel passes a pointer to the
    // live ucontext_t of the signal frame; nothing else aliases it here.
    let uc = unsafe { &mut *uc.cast::<libc::ucontext_t>() };
    uc.uc_mcontext.arm_cpsr = (uc.uc_mcontext.arm_cpsr & !0x1f) | 0x1f;
}

/// The mode bits of the CPSR this code runs with (readable in USR mode).
fn current_mode() -> u32 {
    let cpsr: u32;
    // SAFETY: reading the CPSR has no side effects.
    unsafe { std::arch::asm!("mrs {0}, cpsr", out(reg) cpsr) };
    cpsr & 0x1f
}

/// USR mode cannot create SYS mode (the kernel accepts SYS mode on the way
/// back to user space only for a task it marked trusted, by the tracee's
/// flag, not the tracer's): a handler that writes SYS mode into its saved
/// CPSR dies at sigreturn with SIGSEGV; a tracer's PTRACE_SETREGS or
/// PTRACE_POKEUSER of a SYS-mode CPSR into an untrusted tracee is refused
/// and leaves the tracee in USR mode. The test binary itself is the
/// untrusted program.
#[test]
fn user_mode_cannot_create_sys_mode_by_sigreturn_or_ptrace() {
    const SYS: u32 = 0x1f;
    const USR: u32 = 0x10;
    const CPSR_WORD: usize = 16; // uregs[16] (arch/arm/include/uapi/asm/ptrace.h)
    let _s = serial();
    assert_eq!(current_mode(), USR, "the test binary runs in USR mode");

    // sigreturn
    let pid = guest_tests::fork();
    if pid == 0 {
        // SAFETY: a zeroed sigaction is valid; the handler has the
        // SA_SIGINFO signature; the child is single-threaded. SIGSEGV goes
        // back to its default action: the Rust runtime's handler (inherited
        // from the test binary) would return from a forced SIGSEGV and let
        // the child go on with the registers the kernel sanitised to USR.
        unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = cpsr_to_sys as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
            libc::raise(libc::SIGUSR1);
        }
        // Only reached if sigreturn accepted the frame.
        guest_tests::exit_child(if current_mode() == SYS { 42 } else { 43 });
    }
    let st = guest_tests::wait_child(pid, std::time::Duration::from_secs(10), "sigreturn to SYS");
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV,
        "sigreturn with a SYS-mode CPSR must kill with SIGSEGV; wait status {st:#x} \
         (exit 42: it returned in SYS mode, 43: in USR mode)"
    );

    // ptrace
    let pid = guest_tests::fork();
    if pid == 0 {
        // SAFETY: PTRACE_TRACEME and raise take no pointers.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
        }
        guest_tests::exit_child(if current_mode() == SYS { 42 } else { 0 });
    }
    let mut st = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(libc::WIFSTOPPED(st), "tracee stopped: {st:#x}");
    let getregs = |regs: &mut libc::user_regs| {
        // SAFETY: `regs` is a writable user_regs (18 words), what
        // PTRACE_GETREGS fills for a stopped tracee of ours.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETREGS,
                pid,
                0,
                regs as *mut libc::user_regs as *mut libc::c_void,
            )
        };
        assert_eq!(r, 0, "PTRACE_GETREGS: {}", std::io::Error::last_os_error());
    };
    // SAFETY: user_regs is plain integers; all zero is valid.
    let mut regs: libc::user_regs = unsafe { std::mem::zeroed() };
    getregs(&mut regs);
    assert_eq!(
        regs.arm_cpsr as u32 & 0x1f,
        USR,
        "the tracee runs in USR mode"
    );
    let mut bad = regs;
    bad.arm_cpsr = (regs.arm_cpsr & !0x1f) | SYS as libc::c_ulong;
    // SAFETY: `bad` is a readable user_regs for PTRACE_SETREGS.
    let set = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGS,
            pid,
            0,
            &bad as *const libc::user_regs as *mut libc::c_void,
        )
    };
    let set_err = std::io::Error::last_os_error();
    // SAFETY: POKEUSER takes an offset and a value, no pointers.
    let poke = unsafe {
        libc::ptrace(
            libc::PTRACE_POKEUSER,
            pid,
            CPSR_WORD * 4,
            bad.arm_cpsr as usize,
        )
    };
    let poke_err = std::io::Error::last_os_error();
    // SAFETY: user_regs is plain integers; all zero is valid.
    let mut after: libc::user_regs = unsafe { std::mem::zeroed() };
    getregs(&mut after);
    // SAFETY: continue and reap our own tracee.
    unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, 0) };
    let st = guest_tests::wait_child(pid, std::time::Duration::from_secs(10), "tracee");
    assert_eq!(set, -1, "PTRACE_SETREGS with SYS mode must fail");
    assert_eq!(
        set_err.raw_os_error(),
        Some(libc::EINVAL),
        "PTRACE_SETREGS: {set_err}"
    );
    assert_eq!(
        poke, -1,
        "PTRACE_POKEUSER of a SYS-mode CPSR must fail: {poke_err}"
    );
    assert_eq!(
        after.arm_cpsr as u32 & 0x1f,
        USR,
        "the tracee stays in USR mode"
    );
    assert!(
        guest_tests::exited_with(st, 0),
        "the tracee went on in USR mode: wait status {st:#x} (exit 42: SYS mode)"
    );
}

// ---------------------------------------------------------------------------
// Threat model claims that had no test of their own (kernel documentation
// of patch 0004, "Which programs are trusted" and "Threat model")

/// Runs `path status` from a child made by a raw clone(`flags | SIGCHLD`)
/// (a fork, plus `flags`), its output through a pipe.
fn probe_cloned(path: &str, flags: libc::c_int) -> Kv {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let cpath = CString::new(path).unwrap();
    let arg = CString::new("status").unwrap();
    let argv = [cpath.as_ptr(), arg.as_ptr(), std::ptr::null()];
    // SAFETY: clone without CLONE_VM and without a new stack continues in
    // the child like fork(); the child only calls async-signal-safe
    // functions (dup2, execv, _exit) on data prepared before.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    } as libc::pid_t;
    assert!(pid >= 0, "clone: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above; argv is NULL-terminated and outlives execv.
        unsafe {
            libc::dup2(fds[1], 1);
            libc::execv(cpath.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    // SAFETY: `fds[0]` is ours; File takes ownership and closes it.
    let mut f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    let mut out = Vec::new();
    f.read_to_end(&mut out).unwrap();
    let mut st = 0;
    // SAFETY: reaping our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "{path} status from clone({flags:#x}): wait status {st:#x}"
    );
    parse(&out)
}

/// "The exec is not unsafe: ... file system information not shared with
/// another process": a child that shares this process's root and working
/// directory (CLONE_FS) could have them changed under the trusted program
/// by this process; its exec runs the program in USR mode. Control: the
/// same clone without CLONE_FS.
#[test]
fn a_trusted_exec_sharing_fs_information_runs_in_usr_mode() {
    let _s = serial();
    let p = Installed::probe("kml-probe-clone-fs");
    assert_sys(&probe_cloned(&p.path, 0), "control: clone without CLONE_FS");
    assert_usr(
        &probe_cloned(&p.path, libc::CLONE_FS),
        "a child sharing its fs information (CLONE_FS)",
    );
}

/// Threat model, everybody else: hard links, symbolic links and memfd
/// copies give no SYS mode. Trust goes with the name in /trusted, not with
/// the file: the same inode by another name runs in USR mode, in both
/// directions; a symbolic link counts as the file it names (a link in
/// /trusted to a program elsewhere is not trusted; a link elsewhere to a
/// trusted program is, so a caller outside group kml is refused through it
/// as by the name itself); a memfd copy is not in /trusted at all.
#[test]
fn links_and_memfd_copies_of_a_trusted_program_give_no_sys_mode() {
    let _s = serial();
    let kml = kml_gid();
    let p = Installed::probe("kml-probe-links");
    assert_sys(
        &probe(&p.path, &["status"]),
        "control: the program in /trusted",
    );

    // A hard link outside /trusted to the trusted program (same file
    // system), and one inside /trusted to the probe shipped outside it.
    let outside = Installed::adopt("/root/kml-probe-hard-link");
    let _ = std::fs::remove_file(&outside.path);
    std::fs::hard_link(&p.path, &outside.path).unwrap();
    let inside = Installed::adopt("/trusted/kml-probe-hard-linked-in");
    let _ = std::fs::remove_file(&inside.path);
    std::fs::hard_link(STATIC_PROBE, &inside.path).unwrap();
    let ino = |f: &str| std::fs::metadata(f).unwrap().ino();
    assert_eq!(ino(&p.path), ino(&outside.path), "one inode, two names");
    assert_eq!(ino(STATIC_PROBE), ino(&inside.path), "one inode, two names");
    assert_usr(
        &probe(&outside.path, &["status"]),
        "a hard link outside /trusted to a trusted program",
    );
    assert_sys(
        &probe(&inside.path, &["status"]),
        "a hard link in /trusted (root put it there)",
    );
    assert_usr(
        &probe(STATIC_PROBE, &["status"]),
        "that file by its name outside /trusted",
    );
    drop(inside);

    // Symbolic links.
    let link_in = Installed::adopt("/trusted/kml-probe-symlink");
    let _ = std::fs::remove_file(&link_in.path);
    std::os::unix::fs::symlink(UNTRUSTED, &link_in.path).unwrap();
    assert_usr(
        &probe(&link_in.path, &["status"]),
        "a symbolic link in /trusted to a program elsewhere",
    );
    let link_out = Installed::adopt("/tmp/kml-probe-symlink");
    let _ = std::fs::remove_file(&link_out.path);
    std::os::unix::fs::symlink(&p.path, &link_out.path).unwrap();
    assert_sys(
        &probe(&link_out.path, &["status"]),
        "root, a symbolic link elsewhere to the trusted program",
    );
    {
        // /trusted open to others: only the kernel rule is left to refuse.
        let _open = Attrs::set(TRUSTED_DIR, 0, kml, 0o755);
        assert_refused(
            try_exec(&path(&link_out.path), &["status"], Setup::nobody()),
            libc::EACCES,
            "nobody, through a symbolic link to the trusted program",
        );
        assert_usr(
            &exec_kv(&path(&outside.path), &["status"], Setup::nobody()),
            "nobody, the hard link outside /trusted",
        );
    }

    // A memfd holding the same program, executed through its fd.
    // SAFETY: a NUL-terminated name; flags only.
    let mfd = unsafe { libc::memfd_create(c"kml-probe".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(
        mfd >= 0,
        "memfd_create: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `mfd` is ours; File takes ownership and closes it.
    let mut memfd = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(mfd) };
    std::io::Write::write_all(&mut memfd, &std::fs::read(STATIC_PROBE).unwrap()).unwrap();
    for (setup, who) in [
        (Setup::default(), "root"),
        (Setup::nobody_in_kml(), "nobody in group kml"),
    ] {
        assert_usr(
            &exec_kv(&Target::Fd(mfd), &["status"], setup),
            &format!("{who}, a memfd copy of the program"),
        );
    }
}

/// How `kml-probe dumpable1-wait` at `path` fared when its caller set a
/// parent-death signal (SIGUSR2) and an unlimited stack limit before the
/// exec, and then its parent exited: its mode, the soft stack limit it
/// started with (/proc/PID/limits), and its wait status (exit 0 once its
/// stdin closes, or killed by the parent-death signal). The test process
/// stays out of it: a forked reaper (a child subreaper, so that it inherits
/// the orphan) runs the parent, which spawns the program and exits.
fn after_parent_death(path: &str) -> Result<(String, String, i32), String> {
    let pipe = || {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for two descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: two fresh descriptors that nothing else owns.
        unsafe {
            use std::os::fd::FromRawFd;
            (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
        }
    };
    // The program's stdout (the reaper keeps the read end: the program
    // never writes into a pipe without reader), its stdin (open until the
    // reaper is done), and the parent's signal to exit.
    let (out_r, out_w) = pipe();
    let (hold_r, hold_w) = pipe();
    let (go_r, go_w) = pipe();
    // SAFETY: prctl with integer arguments, in the forked reaper only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_CHILD_SUBREAPER: {}",
            std::io::Error::last_os_error()
        ));
    }
    let parent = guest_tests::fork();
    if parent == 0 {
        drop((out_r, hold_w, go_w));
        let mut cmd = Command::new(path);
        cmd.arg("dumpable1-wait")
            .stdin(Stdio::from(hold_r))
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::null());
        // SAFETY: the closure runs in the forked child and makes only raw
        // system calls with integer arguments and a live rlimit.
        unsafe {
            cmd.pre_exec(|| {
                let unlimited = libc::rlimit {
                    rlim_cur: libc::RLIM_INFINITY,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_STACK, &unlimited) != 0
                    || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2, 0, 0, 0) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let code = match cmd.spawn() {
            Ok(child) => {
                // Not waited for: it outlives this process.
                drop(child);
                // Wait until the reaper has looked at the program.
                let _ = (&go_r).read(&mut [0u8; 1]);
                0
            }
            Err(_) => 1,
        };
        guest_tests::exit_child(code);
    }
    drop((hold_r, out_w, go_r));
    let mut out = BufReader::new(out_r);
    let mut kv = Kv::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err(format!("{path} ended before 'ready': {kv:?}"));
        }
        let line = line.trim_end();
        if line == "ready" {
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            kv.insert(k.into(), v.into());
        }
    }
    let pid: libc::pid_t = get(&kv, "pid")
        .parse()
        .map_err(|_| format!("pid in {kv:?}"))?;
    let limits =
        std::fs::read_to_string(format!("/proc/{pid}/limits")).map_err(|e| e.to_string())?;
    let stack = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max stack size"))
        .and_then(|l| l.split_whitespace().next())
        .ok_or_else(|| format!("no stack limit in {limits}"))?
        .to_string();
    // The parent exits: the kernel sends the program its parent-death
    // signal now, if it still has one.
    drop(go_w);
    let st = guest_tests::wait_child(parent, std::time::Duration::from_secs(10), "the parent");
    if !guest_tests::exited_with(st, 0) {
        return Err(format!("the parent could not start {path}: {st:#x}"));
    }
    // A pending signal wins over the end of input.
    drop(hold_w);
    let st = guest_tests::wait_child(pid, std::time::Duration::from_secs(10), path);
    Ok((get(&kv, "mode").to_string(), stack, st))
}

/// Threat model, group kml: the kernel removes from a trusted program's
/// start what it removes for a setuid program: besides AT_SECURE and the
/// personality flags (tested above), a caller's stack limit above 8 MiB and
/// its parent-death signal (a signal of the caller's choosing at a moment
/// of its choosing). Control: the same program outside /trusted keeps
/// both, and is killed by the signal when its parent exits.
#[test]
fn secure_exec_resets_the_stack_limit_and_the_parent_death_signal() {
    let _s = serial();
    let p = Installed::probe("kml-probe-secure-exec");
    // Runs in a forked child: the reaper setting stays out of this process.
    let check = |path: &str, want_mode: &str, want_stack: &str, killed: bool| {
        guest_tests::in_child(path, std::time::Duration::from_secs(30), || {
            let (mode, stack, st) = after_parent_death(path)?;
            let end = if libc::WIFSIGNALED(st) {
                format!("killed by signal {}", libc::WTERMSIG(st))
            } else {
                format!("exit {}", libc::WEXITSTATUS(st))
            };
            let want_end = if killed {
                format!("killed by signal {}", libc::SIGUSR2)
            } else {
                "exit 0".to_string()
            };
            if (mode.as_str(), stack.as_str(), &end) == (want_mode, want_stack, &want_end) {
                Ok(())
            } else {
                Err(format!(
                    "mode {mode}, soft stack limit {stack}, {end} after its parent \
                     exited; want {want_mode}, {want_stack}, {want_end}"
                ))
            }
        })
    };
    // _STK_LIM (include/uapi/linux/resource.h): 8 MiB.
    let trusted = check(&p.path, "sys", "8388608", false);
    let control = check(UNTRUSTED, "usr", "unlimited", true);
    assert!(
        trusted.is_ok() && control.is_ok(),
        "trusted program: {trusted:?}; the same program outside /trusted: {control:?}"
    );
}

/// Threat model, root: removing a program revokes it for new execs;
/// "already running instances keep running until killed". A trusted
/// program keeps SYS mode (Kml: 1) after its file is removed and runs to
/// its normal end; its name no longer execs.
#[test]
fn a_running_trusted_program_outlives_its_removal() {
    let _s = serial();
    let p = Installed::probe("kml-probe-removed-while-running");
    let w = Waiting::start(&path(&p.path), &["dumpable1-wait"], Setup::default());
    assert_eq!(get(&w.kv, "mode"), "sys", "{:?}", w.kv);
    let status = format!("/proc/{}/status", w.pid());
    std::fs::remove_file(&p.path).unwrap();
    assert_refused(
        try_exec(&path(&p.path), &["status"], Setup::default()),
        libc::ENOENT,
        "the removed name",
    );
    let kml_line = std::fs::read_to_string(&status)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Kml:"))
        .map(str::to_string);
    assert_eq!(
        kml_line.as_deref(),
        Some("Kml:\t1"),
        "{status} after the removal"
    );
    let rest = w.finish();
    assert_eq!(get(&rest, "poke_after"), "0x12345678", "it ran to its end");
}

// ---------------------------------------------------------------------------
// The execution state a trusted program enters the kernel with (kernel patch
// 0005, "The exception-less system call").

/// A trusted program may switch its data accesses to big-endian (`setend
/// be`, allowed in every mode). An exception (`svc`) sets E from SCTLR.EE
/// before the kernel runs, but the `[kml]` trampoline takes none: its entry
/// ran the kernel big-endian (a fuzzer's jump there with E set wrote a
/// byte-swapped SCTLR, turning the MMU off). The entry must run the kernel
/// little-endian and, as `svc` does, give the program back its own E bit,
/// flags and GE bits. `kml-probe endian` sets N, C, two GE bits and E,
/// makes getpid and clock_gettime64 through each path and reads the CPSR
/// right after, before its own `setend le`. Oracles: the pid libc reports, `svc` clock
/// readings around the call (a big-endian kernel would write a byte-swapped
/// timespec), `svc` from SYS mode and from USR mode (`/usr/bin/kml-probe`)
/// as the reference, and the kernel log.
#[test]
fn a_big_endian_program_enters_the_kernel_little_endian_and_stays_big_endian() {
    let _s = serial();
    let p = Installed::probe("kml-probe-endian");
    let log0 = kernel_log();
    let taint0 = tainted();
    let check = |kv: &Kv, via: &str, who: &str| {
        let set = hex(kv, "set_psr") as u32;
        assert_ne!(set & kml::psr::E_BIT, 0, "{who}: the probe sets E: {kv:?}");
        assert_eq!(
            get(kv, &format!("endian_{via}_getpid")),
            get(kv, "getpid"),
            "{who}, {via}: getpid with E set: {kv:?}"
        );
        assert_eq!(
            get(kv, &format!("endian_{via}_clock")),
            "ordered",
            "{who}, {via}: the timespec the kernel wrote must be a little-endian one \
             between two svc readings: {kv:?}"
        );
        for call in ["getpid", "clock"] {
            assert_eq!(
                hex(kv, &format!("endian_{via}_{call}_psr")) as u32,
                set,
                "{who}, {via}, {call}: flags, GE and E after the call must be the program's: {kv:?}"
            );
        }
    };
    let kv = probe(&p.path, &["endian"]);
    assert_eq!(get(&kv, "mode"), "sys", "{kv:?}");
    check(&kv, "svc", "SYS mode");
    check(&kv, "trampoline", "SYS mode");
    let kv = probe(UNTRUSTED, &["endian"]);
    assert_eq!(get(&kv, "mode"), "usr", "{kv:?}");
    assert_eq!(get(&kv, "endian_trampoline"), "none", "{kv:?}");
    check(&kv, "svc", "USR mode");
    let problems = new_kernel_problems(&log0, &kernel_log());
    assert!(
        problems.is_empty(),
        "kernel problems after big-endian calls: {problems:#?}"
    );
    assert_eq!(tainted(), taint0, "taint flags changed");
}

/// The IT bits and the J bit cannot be cleared without an exception, and
/// the trampoline entry runs kernel code in the state the program has: ARM
/// state with IT bits (UNPREDICTABLE) or Jazelle state (J set, T clear)
/// must never be given to a SYS-mode task. Hardware never saves them, so
/// only sigreturn and ptrace could: a trusted program whose signal handler
/// adds them to its saved CPSR dies at sigreturn with SIGSEGV (as for any
/// invalid CPSR), and root's PTRACE_SETREGS/POKEUSR of them fails with
/// EINVAL and leaves the registers as they were. The controls: an
/// unchanged frame and unchanged registers are accepted, and so is a
/// Thumb-state CPSR with IT bits (a signal taken inside an IT block); USR
/// mode keeps the kernel's old rule (the IT bits are accepted there: the
/// kernel never runs in that state). QEMU ignores IT bits in ARM state, so
/// the test shows the kernel's decision, not what a CPU would do.
#[test]
fn sigreturn_and_ptrace_give_sys_mode_no_it_or_j_bits_in_arm_state() {
    use kml::psr::{IT_MASK, J_BIT, MODE_MASK, T_BIT};
    const SYS: u32 = 0x1f;
    const CPSR_WORD: usize = 16; // uregs[16] (arch/arm/include/uapi/asm/ptrace.h)
    let _s = serial();
    let p = Installed::probe("kml-probe-state");

    // The probe raises the signal from ARM code (exit 3 if the frame held
    // Thumb state: then the IT bits would be valid and prove nothing).
    let kv = probe(&p.path, &["sigreturn-state", "same", "it", "j"]);
    assert_eq!(get(&kv, "mode"), "sys", "{kv:?}");
    assert_eq!(get(&kv, "sigreturn_same"), "ok", "control: {kv:?}");
    assert_eq!(
        get(&kv, "sigreturn_it"),
        "SIGSEGV",
        "IT bits in ARM state: {kv:?}"
    );
    assert_eq!(get(&kv, "sigreturn_j"), "SIGSEGV", "Jazelle state: {kv:?}");
    let kv = probe(UNTRUSTED, &["sigreturn-state", "same", "it"]);
    assert_eq!(get(&kv, "mode"), "usr", "{kv:?}");
    assert_eq!(get(&kv, "sigreturn_same"), "ok", "USR control: {kv:?}");
    assert_eq!(
        get(&kv, "sigreturn_it"),
        "ok",
        "USR mode, unchanged rule: {kv:?}"
    );

    let victim = Waiting::start(&path(&p.path), &["dumpable1-wait"], Setup::nobody_in_kml());
    assert_eq!(get(&victim.kv, "mode"), "sys", "{:?}", victim.kv);
    let pid = victim.pid();
    let getregs = || {
        // SAFETY: user_regs is plain integers (all zero is valid) and is
        // what PTRACE_GETREGS fills for a stopped tracee of ours.
        unsafe {
            let mut regs: libc::user_regs = std::mem::zeroed();
            let r = libc::ptrace(
                libc::PTRACE_GETREGS,
                pid,
                0,
                &mut regs as *mut libc::user_regs,
            );
            assert_eq!(r, 0, "PTRACE_GETREGS: {}", std::io::Error::last_os_error());
            regs
        }
    };
    let setregs = |regs: &libc::user_regs| {
        // SAFETY: `regs` is a readable user_regs for PTRACE_SETREGS of our
        // stopped tracee.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_SETREGS,
                pid,
                0,
                regs as *const libc::user_regs as *mut libc::c_void,
            )
        };
        (r, std::io::Error::last_os_error().raw_os_error())
    };
    // SAFETY: seize and stop the child this test started (root may).
    unsafe {
        assert_eq!(
            libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0),
            0,
            "root seizes a trusted program: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0), 0);
        let mut st = 0;
        assert_eq!(libc::waitpid(pid, &mut st, libc::__WALL), pid);
        assert!(libc::WIFSTOPPED(st), "{st:#x}");
    }
    let regs = getregs();
    let cpsr: u32 = regs.arm_cpsr;
    assert_eq!(
        cpsr & MODE_MASK,
        SYS,
        "the tracee runs in SYS mode: {cpsr:#x}"
    );
    assert_eq!(cpsr & (IT_MASK | J_BIT), 0, "no IT or J bits: {cpsr:#x}");
    // The tracee sleeps in the C library, which may be Thumb code: the
    // states are set explicitly, and the original registers are set back
    // before it goes on.
    let state = |thumb: bool, bits: u32| {
        let mut r = regs;
        r.arm_cpsr = (cpsr & !T_BIT) | if thumb { T_BIT } else { 0 } | bits;
        r
    };
    let it = 0b11_1010 << 10; // IT[7:0] = 0b1110_1000, "IT AL", one instruction
    let results = [
        ("unchanged", setregs(&regs)),
        ("IT bits, ARM state", setregs(&state(false, it))),
        ("J bit, ARM state", setregs(&state(false, J_BIT))),
        ("IT bits, Thumb state", setregs(&state(true, it))),
        ("back to the original", setregs(&regs)),
    ];
    // SAFETY: POKEUSR takes an offset and a value, no pointers.
    let poke = unsafe {
        libc::ptrace(
            libc::PTRACE_POKEUSER,
            pid,
            CPSR_WORD * 4,
            state(false, it).arm_cpsr as usize,
        )
    };
    let after: u32 = getregs().arm_cpsr;
    // SAFETY: detach from our tracee; it goes on where it was.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    let rest = victim.finish();
    assert_eq!(
        get(&rest, "poke_after"),
        "0x12345678",
        "the tracee ran to its end"
    );
    let einval = (-1, Some(libc::EINVAL));
    let ok = |r: (libc::c_long, Option<i32>)| r.0 == 0;
    assert!(
        ok(results[0].1),
        "control: unchanged registers: {results:?}"
    );
    assert_eq!(results[1].1, einval, "IT bits in ARM state: {results:?}");
    assert_eq!(results[2].1, einval, "Jazelle state: {results:?}");
    assert!(
        ok(results[3].1),
        "control: Thumb state with IT bits: {results:?}"
    );
    assert!(ok(results[4].1), "{results:?}");
    assert_eq!(poke, -1, "PTRACE_POKEUSR of IT bits in ARM state must fail");
    assert_eq!(after, cpsr, "the tracee's CPSR is unchanged");
}
