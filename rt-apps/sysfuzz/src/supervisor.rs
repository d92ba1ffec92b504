//! The supervisor: starts fuzzing processes (each in its own process group
//! and tmpfs), stops/continues and kills them, reaps them and their
//! orphans with deadlines, watches the kernel log, and prints the verdict.

use std::ffi::CString;
use std::time::{Duration, Instant};

use crate::gen::{derive, Rng, RngExt};
use crate::kmsg::Kmsg;
use crate::stats::{self, Class, C, EXE_FD};
use crate::worker::{self, Ending, Params};

/// A process meant to end by itself gets this long after its lifetime
/// (guest time under QEMU -icount: generous on purpose).
const GRACE: Duration = Duration::from_secs(15);
/// A process (or process group) must be gone this long after SIGKILL, or
/// the kernel hangs.
const HANG: Duration = Duration::from_secs(20);

/// Whether a part of the fuzzer runs (the Kernel Mode Linux part, the
/// FlexSC part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// When it can: a trusted copy of this program is installed (KML), the
    /// kernel has FlexSC (FlexSC).
    Auto,
    /// Required: the run fails without one.
    On,
    /// Never.
    Off,
}

/// The command line of a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Master seed.
    pub seed: u64,
    /// Fuzzing time (new processes start until then).
    pub seconds: u64,
    /// Fuzzing processes at a time.
    pub procs: u32,
    /// Threads per fuzzing process.
    pub threads: u32,
    /// Kernel Mode Linux part.
    pub kml: Mode,
    /// FlexSC part (flexsc_register, flexsc_wait, syscall pages).
    pub flexsc: Mode,
    /// Multiplies every time budget (process lifetimes, the grace before a
    /// process counts as overdue or hung, a KML child's grace): for slower
    /// kernels (debug variants), 1 otherwise.
    pub time_factor: u32,
    /// Path of the trusted copy.
    pub trusted: String,
    /// Directory for the scratch mounts.
    pub scratch: String,
}

struct Slot {
    pid: i32,
    k: u64,
    seed: u64,
    ending: Ending,
    kml: bool,
    start: Instant,
    lifetime: Duration,
    killed_at: Option<Instant>,
    cont_at: Option<Instant>,
    reaped_at: Option<Instant>,
    dir: CString,
}

fn errno_text() -> String {
    std::io::Error::last_os_error().to_string()
}

fn kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: signals to our own children or their process groups.
    unsafe { libc::kill(pid, sig) }
}

/// Prints what every thread of process `pid` is doing: name, state, wait
/// channel and kernel stack (from /proc), for a process that did not end.
fn dump_tasks(pid: i32) {
    println!("sysfuzz: threads of process {pid}:");
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        println!("  (gone)");
        return;
    };
    for t in tasks.flatten() {
        let p = t.path();
        let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap_or_default();
        let stat = read("stat");
        let state = stat
            .rsplit_once(") ")
            .map_or("?", |(_, r)| &r[..1.min(r.len())]);
        println!(
            "  {} {} state {} wchan {}",
            t.file_name().to_string_lossy(),
            read("comm").trim(),
            state,
            read("wchan").trim()
        );
        for l in read("stack").lines().take(16) {
            println!("      {l}");
        }
    }
}

/// The processes in process group `pgid` (from /proc/*/stat).
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After "(comm) ": state ppid pgrp ...
            stat.rsplit_once(") ")
                .and_then(|(_, r)| r.split(' ').nth(2)?.parse::<i32>().ok())
                == Some(pgid)
        })
        .collect()
}

/// Whether the trusted copy at `path` is this very program.
fn trusted_copy_ok(path: &str) -> Result<(), String> {
    let me = std::fs::read("/proc/self/exe").map_err(|e| format!("/proc/self/exe: {e}"))?;
    let it = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if me != it {
        return Err(format!("{path} is not the same program as this one"));
    }
    Ok(())
}

/// Whether the running kernel has FlexSC: flexsc_wait on address 0 with
/// no timeout only looks up the (absent) region: EINVAL, or ENOSYS without
/// FlexSC (e.g. the KASAN kernel variant, which cannot have Rust).
pub fn kernel_has_flexsc() -> bool {
    // SAFETY: as above: no memory is passed, nothing is changed.
    let w = unsafe { flexsc::sys::syscall6(rtflex_uapi::nr::FLEXSC_WAIT, [0; 6]) };
    w != Err(libc::ENOSYS)
}

/// Checks that the kernel has vaddr_to_paddr at all (else every check
/// would fail for the wrong reason); FlexSC is [`kernel_has_flexsc`].
fn preflight() -> Result<(), String> {
    match vtop::vaddr_to_paddr(0, 0x1000, 1) {
        Err(vtop::Error::Unsupported) => Err("the running kernel has no vaddr_to_paddr()".into()),
        Err(vtop::Error::PermissionDenied) => {
            Err("vaddr_to_paddr() needs CAP_SYS_ADMIN: run as root".into())
        }
        _ => Ok(()),
    }
}

struct Run {
    o: Options,
    root: String,
    kml_on: bool,
    slots: Vec<Slot>,
    next_k: u64,
    /// Fuzzing processes that are not Kernel Mode Linux workers and took
    /// their ending from `Ending::ALL` in order (the first five).
    plain: u64,
    rng: Rng,
    kmsg: Option<Kmsg>,
    klog: Vec<String>,
    kernel_problem: bool,
    end: Instant,
}

impl Run {
    fn spawn(&mut self) -> Result<(), String> {
        let k = self.next_k;
        self.next_k += 1;
        let seed = derive(self.o.seed, k);
        let mut r = Rng::new(seed);
        let kml = self.kml_on && k % 4 == 1;
        let ending = if kml {
            if r.one_in(3) {
                Ending::Killed
            } else {
                Ending::Return
            }
        } else if (self.plain as usize) < Ending::ALL.len() {
            // The first processes of a run that are not KML workers end in
            // every way once (counted apart from k: with the KML part on,
            // k = 1 is a KML worker, and a short run on a slow kernel then
            // started too few processes to see every ending by chance).
            self.plain += 1;
            Ending::ALL[self.plain as usize - 1]
        } else {
            match r.below(11) {
                0..=2 => Ending::ExitGroup,
                3 | 4 => Ending::Exec,
                5 => Ending::LastThreadExit,
                6..=8 => Ending::Killed,
                _ => Ending::Return,
            }
        };
        let lifetime =
            Duration::from_millis(r.between(300, 2500) as u64 * u64::from(self.o.time_factor));
        let dir = format!("{}/w{k}", self.root);
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {dir}: {e}"))?;
        let cdir = CString::new(dir.clone()).unwrap();
        // SAFETY: mount with NUL-terminated strings; a fresh tmpfs of our own.
        let m = unsafe {
            libc::mount(
                c"sysfuzz".as_ptr(),
                cdir.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID,
                c"size=4m,nr_inodes=512,mode=0700".as_ptr().cast(),
            )
        };
        if m != 0 {
            return Err(format!(
                "mount tmpfs on {dir}: {} (run as root)",
                errno_text()
            ));
        }
        // /dev/null, the one device inside: the image exec'd in the chroot
        // (the Rust runtime) opens it for standard descriptors that random
        // calls closed, and aborts without it.
        let null = CString::new(format!("{dir}/dev/null")).unwrap();
        std::fs::create_dir(format!("{dir}/dev")).map_err(|e| format!("mkdir {dir}/dev: {e}"))?;
        // SAFETY: mknod with a NUL-terminated path in our own tmpfs.
        if unsafe { libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } != 0 {
            return Err(format!("mknod {dir}/dev/null: {}", errno_text()));
        }
        // Everything the child needs, prepared before fork.
        let trusted = CString::new(self.o.trusted.clone()).unwrap();
        let kml_args: Vec<CString> = [
            "sysfuzz".to_string(),
            "--kml-worker".into(),
            seed.to_string(),
            lifetime.as_millis().to_string(),
            dir.clone(),
            self.o.time_factor.to_string(),
        ]
        .into_iter()
        .map(|a| CString::new(a).unwrap())
        .collect();
        let mut kml_argv: Vec<*const libc::c_char> = kml_args.iter().map(|a| a.as_ptr()).collect();
        kml_argv.push(core::ptr::null());
        let params = Params {
            seed,
            lifetime,
            threads: self.o.threads,
            ending,
        };
        // SAFETY: the supervisor is single-threaded; the child goes on in
        // worker::run (never returns) or execs.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", errno_text()));
        }
        if pid == 0 {
            // SAFETY: setpgid on ourselves.
            unsafe { libc::setpgid(0, 0) };
            if !kml {
                // Before the descriptor limit: MAPS_FD lies above it.
                crate::setup::open_maps();
            }
            crate::setup::limit_process();
            if kml {
                // SAFETY: close_range drops the supervisor's descriptors but
                // the statistics memfd (std opens /dev/null for 0-2 in the
                // new image); execv with NULL-terminated argv of C strings.
                unsafe {
                    libc::close_range(3, stats::STATS_FD as u32 - 1, 0);
                    libc::close_range(stats::STATS_FD as u32 + 1, u32::MAX, 0);
                    libc::execv(trusted.as_ptr(), kml_argv.as_ptr());
                    libc::_exit(127);
                }
            }
            if let Err(e) = crate::setup::confine(&cdir) {
                stats::problem(C::Crash, format_args!("worker setup: {e}"));
                // SAFETY: ending the child.
                unsafe { libc::_exit(worker::EXIT_SETUP) };
            }
            worker::run(params);
        }
        // SAFETY: putting our child into its own group (it does it too).
        unsafe { libc::setpgid(pid, pid) };
        stats::publish_pid(pid);
        stats::add(C::Processes);
        self.slots.push(Slot {
            pid,
            k,
            seed,
            ending,
            kml,
            start: Instant::now(),
            lifetime,
            killed_at: None,
            cont_at: None,
            reaped_at: None,
            dir: cdir,
        });
        Ok(())
    }

    fn describe(s: &Slot) -> String {
        format!(
            "process {} (#{} {}{}, seed {:#x})",
            s.pid,
            s.k,
            if s.kml { "kml " } else { "" },
            s.ending.name(),
            s.seed
        )
    }

    fn reaped(&mut self, i: usize, st: i32) {
        let s = &mut self.slots[i];
        s.reaped_at = Some(Instant::now());
        stats::withdraw_pid(s.pid);
        let killed = s.killed_at.is_some();
        if libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL && killed {
            return;
        }
        if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
            return;
        }
        if s.kml && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == crate::kmlfuzz::EXIT_UNTRUSTED {
            let d = Run::describe(s);
            self.kml_on = false;
            if self.o.kml == Mode::On {
                stats::problem(
                    C::Crash,
                    format_args!(
                        "{d}: {} did not start in SYS mode with a [kml] page",
                        self.o.trusted
                    ),
                );
            } else {
                println!(
                    "sysfuzz: {} is not trusted by the kernel: no Kernel Mode Linux part",
                    self.o.trusted
                );
            }
            return;
        }
        let how = if libc::WIFSIGNALED(st) {
            format!("died from signal {}", libc::WTERMSIG(st))
        } else {
            format!("exited with code {}", libc::WEXITSTATUS(st))
        };
        stats::problem(C::Crash, format_args!("{}: {how}", Run::describe(s)));
    }

    /// One pass over the slots: deadlines, kills, continues, group
    /// cleanup.
    fn tend(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.slots.len() {
            let s = &mut self.slots[i];
            if let Some(r) = s.reaped_at {
                // Its group (orphaned fork children) must be gone too.
                let gone = kill(-s.pid, 0) != 0
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
                if gone || now.duration_since(r) > HANG * self.o.time_factor {
                    if !gone {
                        for member in group_members(s.pid) {
                            dump_tasks(member);
                        }
                        stats::problem(
                            C::Hang,
                            format_args!(
                                "process group of {} not gone {} s after SIGKILL",
                                Run::describe(s),
                                (HANG * self.o.time_factor).as_secs()
                            ),
                        );
                        self.end = now;
                    }
                    // SAFETY: unmounting our tmpfs (lazily: a hung
                    // process may still hold it).
                    unsafe { libc::umount2(s.dir.as_ptr(), libc::MNT_DETACH) };
                    let _ = std::fs::remove_dir(s.dir.to_str().unwrap_or(""));
                    self.slots.remove(i);
                    continue;
                }
                // Leftover children of the group (reparented to us).
                kill(-s.pid, libc::SIGKILL);
                i += 1;
                continue;
            }
            let age = now.duration_since(s.start);
            if let Some(c) = s.cont_at {
                if now >= c {
                    kill(s.pid, libc::SIGCONT);
                    stats::add(C::StopCont);
                    s.cont_at = None;
                }
            }
            match s.killed_at {
                None if s.ending == Ending::Killed && age > s.lifetime => {
                    kill(-s.pid, libc::SIGKILL);
                    stats::add(C::Kill);
                    s.killed_at = Some(now);
                }
                None if s.ending.ends_itself() && age > s.lifetime + GRACE * self.o.time_factor => {
                    dump_tasks(s.pid);
                    stats::problem(
                        C::Overdue,
                        format_args!(
                            "{} did not end by itself {} s after its planned end ({} ms)",
                            Run::describe(s),
                            (GRACE * self.o.time_factor).as_secs(),
                            s.lifetime.as_millis()
                        ),
                    );
                    kill(-s.pid, libc::SIGKILL);
                    s.killed_at = Some(now);
                }
                Some(k) if now.duration_since(k) > HANG * self.o.time_factor => {
                    dump_tasks(s.pid);
                    stats::problem(
                        C::Hang,
                        format_args!(
                            "{} not gone {} s after SIGKILL",
                            Run::describe(s),
                            (HANG * self.o.time_factor).as_secs()
                        ),
                    );
                    self.end = now;
                    // Give up on it (it keeps its tmpfs).
                    self.slots.remove(i);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn reap(&mut self) {
        loop {
            let mut st = 0;
            // SAFETY: reaping our children (and orphans reparented to us,
            // the child subreaper).
            let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG | libc::__WALL) };
            if pid <= 0 {
                break;
            }
            if let Some(i) = self
                .slots
                .iter()
                .position(|s| s.pid == pid && s.reaped_at.is_none())
            {
                self.reaped(i, st);
            }
        }
    }

    fn stop_one(&mut self, now: Instant) {
        let live: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                let s = &self.slots[i];
                s.reaped_at.is_none() && s.killed_at.is_none() && s.cont_at.is_none()
            })
            .collect();
        if live.is_empty() {
            return;
        }
        let i = live[self.rng.below(live.len() as u32) as usize];
        let ms = self.rng.between(5, 200) as u64;
        let s = &mut self.slots[i];
        kill(s.pid, libc::SIGSTOP);
        s.cont_at = Some(now + Duration::from_millis(ms));
    }

    fn watch_kernel_log(&mut self) {
        if let Some(k) = self.kmsg.as_mut() {
            let new = k.read_new();
            if new.iter().any(|l| guest_tests::is_kernel_problem(l)) && !self.kernel_problem {
                self.kernel_problem = true;
                println!("sysfuzz: kernel log reports a problem: stopping");
                self.end = Instant::now();
            }
            self.klog.extend(new);
        }
    }
}

fn progress(t: Duration) {
    println!(
        "sysfuzz: {:5.1} s: {} processes, v2p {}, register {}, wait {}, posted {}, done {}, rewrites {}, forks {}, kml calls {}/jumps {}, problems {}",
        t.as_secs_f64(),
        stats::get(C::Processes),
        stats::get(C::V2p),
        stats::get(C::Register),
        stats::get(C::Wait),
        stats::get(C::Posted),
        stats::get(C::Done),
        stats::get(C::Rewrite),
        stats::get(C::Fork),
        stats::get(C::KmlCall),
        stats::get(C::KmlJump),
        C::ALL.iter().filter(|c| c.class() == Class::Problem).map(|c| stats::get(*c)).sum::<u64>(),
    );
}

/// Runs the fuzzer; returns the exit code (0: pass).
pub fn run(o: Options) -> i32 {
    println!(
        "sysfuzz: seed {} (replay: sysfuzz --seed {} --seconds {} --procs {} --threads {})",
        o.seed, o.seed, o.seconds, o.procs, o.threads
    );
    if let Err(e) = preflight() {
        eprintln!("sysfuzz: {e}");
        return 2;
    }
    let has_flexsc = kernel_has_flexsc();
    let flexsc_on = match o.flexsc {
        Mode::Off => false,
        Mode::Auto => has_flexsc,
        Mode::On if has_flexsc => true,
        Mode::On => {
            eprintln!(
                "sysfuzz: --flexsc=on: the running kernel has no FlexSC (flexsc_wait: ENOSYS)"
            );
            return 2;
        }
    };
    worker::set_flexsc(flexsc_on);
    println!(
        "sysfuzz: FlexSC part: {}",
        match (flexsc_on, has_flexsc) {
            (true, _) => "on",
            (false, true) => "off (--flexsc=off)",
            (false, false) => "off (the running kernel has no FlexSC: flexsc_wait gives ENOSYS)",
        }
    );
    let kml_on = match o.kml {
        Mode::Off => false,
        Mode::Auto => trusted_copy_ok(&o.trusted).is_ok(),
        Mode::On => match trusted_copy_ok(&o.trusted) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("sysfuzz: --kml=on: {e} (install a copy of this static program there, root, 0755)");
                return 2;
            }
        },
    };
    println!(
        "sysfuzz: Kernel Mode Linux part: {}",
        if kml_on {
            o.trusted.as_str()
        } else {
            "off (no trusted copy)"
        }
    );
    if let Err(e) = stats::create() {
        eprintln!("sysfuzz: statistics memfd: {e}");
        return 2;
    }
    // SAFETY: open with a NUL-terminated path; dup2 to our fixed number.
    unsafe {
        let fd = libc::open(c"/proc/self/exe".as_ptr(), libc::O_PATH);
        if fd < 0 || libc::dup2(fd, EXE_FD) != EXE_FD {
            eprintln!("sysfuzz: /proc/self/exe: {}", errno_text());
            return 2;
        }
        libc::close(fd);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let kmsg = match Kmsg::open() {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!("sysfuzz: /dev/kmsg: {e}: the kernel log cannot be checked");
            return 2;
        }
    };
    let root = format!("{}/sysfuzz.{}", o.scratch, std::process::id());
    if let Err(e) = std::fs::create_dir(&root) {
        eprintln!("sysfuzz: mkdir {root}: {e}");
        return 2;
    }
    let t0 = Instant::now();
    let mut run = Run {
        rng: Rng::new(derive(o.seed, u64::MAX)),
        end: t0 + Duration::from_secs(o.seconds),
        o,
        root,
        kml_on,
        slots: Vec::new(),
        next_k: 0,
        plain: 0,
        kmsg,
        klog: Vec::new(),
        kernel_problem: false,
    };
    let mut last_log = t0;
    let mut last_progress = t0;
    let mut setup_error = None;
    loop {
        let now = Instant::now();
        run.reap();
        run.tend(now);
        let running = run.slots.iter().filter(|s| s.reaped_at.is_none()).count();
        if now < run.end && setup_error.is_none() {
            for _ in running..run.o.procs as usize {
                if let Err(e) = run.spawn() {
                    setup_error = Some(e);
                    run.end = now;
                    break;
                }
            }
            if run.rng.one_in(40) {
                run.stop_one(now);
            }
        }
        if now.duration_since(last_log) > Duration::from_secs(1) {
            run.watch_kernel_log();
            last_log = now;
        }
        if now.duration_since(last_progress) > Duration::from_secs(10) {
            progress(now.duration_since(t0));
            last_progress = now;
        }
        if now >= run.end {
            if run.kernel_problem || setup_error.is_some() {
                // Stop quickly: kill what is still running.
                for s in run
                    .slots
                    .iter_mut()
                    .filter(|s| s.reaped_at.is_none() && s.killed_at.is_none())
                {
                    kill(-s.pid, libc::SIGKILL);
                    s.killed_at = Some(now);
                }
            }
            if run.slots.is_empty() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    run.watch_kernel_log();
    let _ = std::fs::remove_dir(&run.root);
    report(&run, t0.elapsed(), setup_error)
}

fn report(run: &Run, elapsed: Duration, setup_error: Option<String>) -> i32 {
    progress(elapsed);
    println!(
        "sysfuzz: counts after {:.1} s (guest time):",
        elapsed.as_secs_f64()
    );
    let mut missing = Vec::new();
    for &c in C::ALL {
        let v = stats::get(c);
        println!("  {:<22} {:>10}  {}", c.name(), v, c.doc());
        let required = match c.class() {
            Class::Call | Class::Event => true,
            Class::Kml => run.o.kml == Mode::On,
            Class::Flexsc => worker::flexsc_on(),
            Class::Info | Class::Problem => false,
        };
        if required && v == 0 {
            missing.push(c.name());
        }
    }
    let mut failures = Vec::new();
    if let Some(e) = setup_error {
        failures.push(format!("setup: {e}"));
    }
    let (notes, overflow) = stats::notes();
    if !notes.is_empty() {
        println!("sysfuzz: problems (times seen, first occurrence):");
        for (count, text) in &notes {
            println!("  {count:>6}x {text}");
        }
        if overflow > 0 {
            println!("  {overflow:>6}x of problems without a note (more kinds than slots)");
        }
    }
    for (k, text) in stats::details() {
        println!("sysfuzz: detail {k}:");
        for line in text.lines() {
            println!("  {line}");
        }
    }
    for &c in C::ALL.iter().filter(|c| c.class() == Class::Problem) {
        if stats::get(c) > 0 {
            failures.push(format!("{} {}", stats::get(c), c.name()));
        }
    }
    let problems: Vec<usize> = run
        .klog
        .iter()
        .enumerate()
        .filter(|(_, l)| guest_tests::is_kernel_problem(l))
        .map(|(i, _)| i)
        .collect();
    println!(
        "sysfuzz: kernel log: {} new lines, {} problem lines{}",
        run.klog.len(),
        problems.len(),
        run.kmsg.as_ref().map_or(String::new(), |k| if k.lost > 0 {
            format!(", {} records lost", k.lost)
        } else {
            String::new()
        })
    );
    if let Some(&first) = problems.first() {
        println!("sysfuzz: kernel log from the first problem:");
        for l in run.klog.iter().skip(first).take(60) {
            println!("  | {l}");
        }
        failures.push(format!("{} kernel-log problem lines", problems.len()));
    }
    if !missing.is_empty() {
        failures.push(format!("never happened: {}", missing.join(", ")));
    }
    if failures.is_empty() {
        println!("sysfuzz: PASS (seed {})", run.o.seed);
        0
    } else {
        println!(
            "sysfuzz: FAIL (seed {}): {}",
            run.o.seed,
            failures.join("; ")
        );
        1
    }
}
