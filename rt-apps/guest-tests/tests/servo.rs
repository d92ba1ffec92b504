//! The control app (`servo`, rt-apps/servo) against the simulated plant
//! (`plant-sim`, rt-apps/plant) on real kernel drivers: a gpio-sim chip made
//! through configfs, the GPIO character device with edge events, spidev.
//!
//! Oracles independent of the app: the plant's own trace (the motor command
//! it read from the lines, the position it drove onto the encoder lines),
//! the gpio-sim sysfs `value` of the output lines, the kernel's trace of
//! every value the app set on them (`gpio_value` events: the last ones are
//! what the lines showed when it let go of them), and QEMU's model of the
//! SPI NOR flash (its JEDEC ID is in QEMU's source).
//!
//! Waits are bounded generously (tens of seconds) and only say "it ended at
//! all"; no test judges speed (that is `make bench-control`).
#![cfg(feature = "guest")]

#[path = "support/plant.rs"]
mod support;

use plant::lines;
use plant::sim::chip::{Chip, Line};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use support::{collect, params, Outputs, PlantRow, PlantRun, PlantSim, GENEROUS};

const SERVO: &str = "/usr/bin/servo";
/// Logs go to the SD card's ext4 root file system (real block I/O).
const LOG_DIR: &str = "/var/tmp/servo-tests";

/// Where the plant starts: 40 counts above home, so that homing (at 30 %
/// duty, about 140 counts/s) takes a quarter of a second, not one.
const START: &str = "--start=40";

/// The control period the tests run servo with (us). 1 ms, the default,
/// on the image's kernel. The debug variants (lockdep, kmemleak, KASAN;
/// `make KERNEL_VARIANT=...`) make every system call and interrupt several
/// times longer: a 1 ms loop at SCHED_FIFO 80 then takes most of the one
/// vCPU, and plant-sim (SCHED_OTHER) steps so rarely that the encoder
/// stands still for longer than servo's encoder timeout, which servo
/// rightly reports as encoder loss. There the loop runs every 5 ms (the
/// same control law: its integral uses the measured time step). Even so
/// plant-sim cannot keep real time there (a model step takes 1.1-1.4 ms
/// of CPU), so the three tests that compare servo's control or its log
/// with the plant's motion are skipped on those kernels (kernel/kernel.mk
/// says why); the others judge what does not need a real-time plant (safe
/// outputs after SIGTERM, a panic, encoder loss; bad input).
fn interval_us() -> u32 {
    if guest_tests::debug_kernel_variant().is_some() {
        5000
    } else {
        1000
    }
}

/// plant-sim with `extra` options for a test: on the debug variants at
/// 1000 model steps per second instead of 2000 (one step still writes at
/// most one encoder edge, and the 1.5 ms edge gap allows fewer than 1000
/// edges per second anyway), so that it keeps real time beside servo.
fn start_plant(name: &str, extra: &[&str]) -> PlantSim {
    let mut args = extra.to_vec();
    if guest_tests::debug_kernel_variant().is_some() {
        args.push("--rate=1000");
    }
    PlantSim::start(name, &args)
}

/// Cycle `n` of a 1 ms loop in cycles of the loop the tests run (the same
/// time since the start).
fn cycles_of_1ms(n: u64) -> u64 {
    n * 1000 / u64::from(interval_us())
}

fn log_path(name: &str) -> PathBuf {
    fs::create_dir_all(LOG_DIR).unwrap();
    Path::new(LOG_DIR).join(name)
}

// ---- the control app --------------------------------------------------------

/// One decoded record (`servo decode --csv`).
#[derive(Clone, Copy, Debug)]
struct Record {
    cycle: u64,
    state: u8,
    fault: u8,
    flags: u16,
    time_ns: u64,
    setpoint: f64,
    position: i32,
    output: f64,
    lost: u64,
}

const STATE_RUN: u8 = 2;
const STATE_FAULT: u8 = 3;
const FLAG_DRIVEN: u16 = 2;

/// `servo decode --csv LOG`, parsed by column name.
fn decode(log: &Path) -> Vec<Record> {
    let out = guest_tests::run_ok(SERVO, &["decode", "--csv", log.to_str().unwrap()]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().expect("a CSV header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let c = [
        col("cycle"),
        col("state"),
        col("fault"),
        col("flags"),
        col("time_ns"),
        col("setpoint"),
        col("position"),
        col("output"),
        col("lost"),
    ];
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| -> u64 { f[c[i]].parse().unwrap_or_else(|_| panic!("{l}")) };
            Record {
                cycle: n(0),
                state: n(1) as u8,
                fault: n(2) as u8,
                flags: n(3) as u16,
                time_ns: n(4),
                setpoint: f[c[5]].parse().unwrap(),
                position: f[c[6]].parse().unwrap(),
                output: f[c[7]].parse().unwrap(),
                lost: n(8),
            }
        })
        .collect()
}

/// The `key: value` lines of servo's summary.
fn summary(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn count(s: &BTreeMap<String, String>, key: &str) -> u64 {
    s.get(key)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("servo summary has no number '{key}': {s:?}"))
}

/// The command a record's output puts on the lines (duty rounded either
/// way: the comparison allows one step).
fn command_of(output: f64) -> (bool, u8) {
    (
        output > 0.0,
        (output.abs() * 255.0).round().min(255.0) as u8,
    )
}

/// A finished servo run: its exit status, output and records, and the
/// last value it set on each output line.
struct ServoRun {
    status: i32,
    stdout: String,
    stderr: String,
    records: Vec<Record>,
    released: Option<Outputs>,
    /// The kernel's trace: (time ns, line offset, value) of every set.
    sets: Vec<(u64, u32, bool)>,
}

/// Runs servo to its end.
fn run_servo(plant: &PlantSim, log: &Path, args: &[&str]) -> ServoRun {
    let mut servo = Servo::spawn(plant, log, args);
    while servo.running() {
        thread::sleep(Duration::from_millis(5));
    }
    servo.finish(None)
}

// ---- the output lines when servo lets go of them ---------------------------

/// The kernel's record of every value set on a GPIO line: the `gpio_value`
/// trace event (gpiolib traces each line of a line request's set-values
/// call, and the initial values of a request), in a trace instance of its
/// own. The last value set on each output line before servo let go of them
/// is what the lines showed then: an oracle independent of the app that
/// stops nothing (a ptrace or seccomp watch would; and a seccomp filter
/// keeps FlexSC out).
struct GpioTrace {
    dir: PathBuf,
    /// Global number of the chip's line 0.
    base: u32,
}

const TRACEFS: &str = "/sys/kernel/tracing";

impl GpioTrace {
    fn start(plant: &PlantSim) -> GpioTrace {
        if !Path::new(TRACEFS).join("instances").is_dir() {
            guest_tests::run_ok("mount", &["-t", "tracefs", "nodev", TRACEFS]);
        }
        let dir = Path::new(TRACEFS).join("instances/servo-test");
        if !dir.exists() {
            fs::create_dir(&dir).unwrap();
        }
        let write = |f: &str, v: &str| {
            fs::write(dir.join(f), v).unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()))
        };
        write("buffer_size_kb", "2048");
        // Timestamps from CLOCK_MONOTONIC, as the plant's and the log's.
        write("trace_clock", "mono");
        write("events/gpio/gpio_value/filter", "get == 0");
        write("events/gpio/gpio_value/enable", "1");
        write("trace", "");
        // The global numbers of the chip's lines (other GPIOs, e.g. the
        // board's LEDs, are in the trace too): lines 0 and 1 set from this
        // test to 1, 0 and then 0, 1 show as N and N + 1.
        let probe = gpiocdev::Request::builder()
            .on_chip(plant.chip_path())
            .with_consumer("guest-test")
            .with_lines(&[0, 1])
            .as_output(gpiocdev::line::Value::Inactive)
            .request()
            .unwrap();
        let mut values = gpiocdev::line::Values::default();
        values.set(0, true.into()).set(1, false.into());
        probe.set_values(&values).unwrap();
        values.set(0, false.into()).set(1, true.into());
        probe.set_values(&values).unwrap();
        drop(probe);
        let sets = Self::sets_in(&fs::read_to_string(dir.join("trace")).unwrap());
        let of = |n: u32| -> Vec<bool> { sets.iter().filter(|e| e.1 == n).map(|e| e.2).collect() };
        let base = sets
            .iter()
            .map(|e| e.1)
            .find(|&n| of(n).ends_with(&[true, false]) && of(n + 1).ends_with(&[false, true]))
            .unwrap_or_else(|| panic!("the probe's lines are not in the trace: {sets:?}"));
        // From now on only the chip's output lines.
        write(
            "events/gpio/gpio_value/filter",
            &format!(
                "get == 0 && gpio >= {base} && gpio < {}",
                base + lines::OUTPUTS as u32
            ),
        );
        write("trace", "");
        GpioTrace { dir, base }
    }

    /// (time ns, line number, value) of each `gpio_value ... set` event.
    fn sets_in(text: &str) -> Vec<(u64, u32, bool)> {
        text.lines()
            .filter_map(|l| {
                let (head, ev) = l.split_once(" gpio_value: ")?;
                let secs: f64 = head
                    .split_whitespace()
                    .last()?
                    .trim_end_matches(':')
                    .parse()
                    .ok()?;
                let mut w = ev.split_whitespace();
                let n: u32 = w.next()?.parse().ok()?;
                (w.next()? == "set").then_some(())?;
                Some(((secs * 1e9).round() as u64, n, w.next()? == "1"))
            })
            .collect()
    }

    /// The last value set on each output line since the start (None: no
    /// value was set), and how many were set.
    fn last_outputs(&self) -> (Option<Outputs>, Vec<(u64, u32, bool)>) {
        let text = fs::read_to_string(self.dir.join("trace")).unwrap();
        let sets: Vec<(u64, u32, bool)> = Self::sets_in(&text)
            .into_iter()
            .map(|(t, n, v)| (t, n.wrapping_sub(self.base), v))
            .collect();
        let mut last: [Option<bool>; lines::OUTPUTS] = [None; lines::OUTPUTS];
        for (_, n, v) in &sets {
            let offset = *n as usize;
            if offset < lines::OUTPUTS {
                last[offset] = Some(*v);
            }
        }
        if last.iter().any(|v| v.is_none()) {
            return (None, sets);
        }
        let level = |o: usize| last[o].unwrap();
        let mut duty = 0u8;
        for bit in 0..8 {
            if level(2 + bit) {
                duty |= 1 << bit;
            }
        }
        let outputs = Outputs {
            enable: level(0),
            dir: level(1),
            duty,
        };
        (Some(outputs), sets)
    }
}

impl Drop for GpioTrace {
    fn drop(&mut self) {
        let _ = fs::write(self.dir.join("events/gpio/gpio_value/enable"), "0");
        let _ = fs::remove_dir(&self.dir);
    }
}

/// A running servo (SCHED_FIFO 80, logging to `log`) with the kernel's
/// trace of the values it sets.
struct Servo {
    child: Child,
    trace: GpioTrace,
    log: PathBuf,
    status: Option<i32>,
    out: Option<thread::JoinHandle<String>>,
    err: Option<thread::JoinHandle<String>>,
    lines: Vec<Line>,
    started: Instant,
}

impl Servo {
    fn spawn(plant: &PlantSim, log: &Path, args: &[&str]) -> Servo {
        Servo::spawn_with_env(plant, log, args, &[])
    }

    fn spawn_with_env(plant: &PlantSim, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Servo {
        let _ = fs::remove_file(log);
        let trace = GpioTrace::start(plant);
        let mut child = Command::new(SERVO)
            .envs(env.iter().copied())
            .arg("run")
            .arg("--priority=80")
            .arg(format!("--interval={}", interval_us()))
            .arg(format!("--log={}", log.display()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SERVO}: {e}"));
        let out = Some(collect(child.stdout.take().unwrap()));
        let err = Some(collect(child.stderr.take().unwrap()));
        let lines = (0..lines::OUTPUTS)
            .map(|o| Line::open(&plant.chip.line_dir(o)).unwrap())
            .collect();
        Servo {
            child,
            trace,
            log: log.to_path_buf(),
            status: None,
            out,
            err,
            lines,
            started: Instant::now(),
        }
    }

    /// The output lines now (gpio-sim sysfs `value`; offsets as in
    /// `plant::lines::ALL`: enable, dir, duty0..7).
    fn outputs(&self) -> Outputs {
        let level = |o: usize| self.lines[o].level().unwrap();
        let mut duty = 0u8;
        for bit in 0..8 {
            if level(2 + bit) {
                duty |= 1 << bit;
            }
        }
        Outputs {
            enable: level(0),
            dir: level(1),
            duty,
        }
    }

    /// Whether servo still runs (reaps it when it has ended). A servo that
    /// has not ended within the generous bound fails the test, with where
    /// each of its threads was and how much CPU time it had used, and
    /// servo's own output (it is killed first, so that it does not run on
    /// into the next test).
    fn running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        if self.started.elapsed() >= GENEROUS {
            let pid = self.child.id();
            let threads = thread_times(pid);
            thread::sleep(Duration::from_secs(1));
            let threads_later = thread_times(pid);
            let status: String = fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    [
                        "State",
                        "Threads",
                        "VmRSS",
                        "VmLck",
                        "voluntary",
                        "nonvoluntary",
                    ]
                    .iter()
                    .any(|k| l.starts_with(k))
                })
                .collect::<Vec<_>>()
                .join("; ");
            let syscall = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
            // Page faults (minor, major: fields 10 and 12 of stat) and file
            // I/O: whether it is still paging in its program.
            let f =
                guest_tests::proc_stat(&format!("/proc/{pid}/stat")).map_or(Vec::new(), |(_, f)| f);
            let field = |n: usize| f.get(n - 3).map_or("?", String::as_str);
            let faults = format!(
                "page faults: minor {}, major {}; io: {}",
                field(10),
                field(12),
                fs::read_to_string(format!("/proc/{pid}/io"))
                    .unwrap_or_default()
                    .replace('\n', " ")
            );
            let busiest = busiest_processes(8);
            let log = match fs::metadata(&self.log) {
                Ok(m) => format!("{} bytes", m.len()),
                Err(e) => e.to_string(),
            };
            let stacks = guest_tests::thread_stacks(pid as libc::pid_t);
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.status = Some(128 + libc::SIGKILL);
            let out = self
                .out
                .take()
                .map(|h| h.join().unwrap())
                .unwrap_or_default();
            let err = self
                .err
                .take()
                .map(|h| h.join().unwrap())
                .unwrap_or_default();
            let records = if self.log.exists() {
                let r = decode(&self.log);
                let first = r.first().map(|r| r.time_ns).unwrap_or(0);
                format!(
                    "{} records, the last: {:?}, {} ms after the first",
                    r.len(),
                    r.last(),
                    r.last().map_or(0, |l| (l.time_ns - first) / 1_000_000)
                )
            } else {
                String::new()
            };
            panic!(
                "servo did not end within {GENEROUS:?} (killed); its threads (tid name: \
                 policy, priority, user and system CPU time):\n{threads}1 s later:\n\
                 {threads_later}{status}\n{faults}\nsyscall: {syscall}\n{stacks}\
                 the log {}: {log}, {records}\nbusiest processes:\n{busiest}\
                 servo's output:\n{out}{err}",
                self.log.display()
            );
        }
        let Some(st) = self.child.try_wait().unwrap() else {
            return true;
        };
        use std::os::unix::process::ExitStatusExt;
        self.status = Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)));
        false
    }

    /// Sends `signal` (if any), waits for the end and returns the run.
    fn finish(mut self, signal: Option<libc::c_int>) -> ServoRun {
        if let Some(sig) = signal {
            if self.running() {
                support::signal(self.child.id(), sig);
            }
        }
        while self.running() {
            thread::sleep(Duration::from_millis(5));
        }
        let records = if self.log.exists() {
            decode(&self.log)
        } else {
            Vec::new()
        };
        let (released, sets) = self.trace.last_outputs();
        let stdout = self.out.take().unwrap().join().unwrap();
        // Its summary (cycles, overruns, latencies): what a slow kernel did
        // to the loop.
        println!(
            "servo {}: {}",
            self.log.display(),
            stdout.trim().replace('\n', "; ")
        );
        ServoRun {
            status: self.status.unwrap(),
            stdout,
            stderr: self.err.take().unwrap().join().unwrap(),
            records,
            released,
            sets,
        }
    }
}

impl Drop for Servo {
    /// A test that failed while servo ran: do not leave a SCHED_FIFO servo
    /// running into the next test.
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `n` processes that used the most CPU time (pid, name, policy,
/// priority, user and system time), for a message about a slow run.
fn busiest_processes(n: usize) -> String {
    let mut all: Vec<(u64, String)> = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some((name, f)) = guest_tests::proc_stat(&format!("/proc/{pid}/stat")) else {
            continue;
        };
        let field = |n: usize| f.get(n - 3).map_or("0", String::as_str);
        let ticks = |n: usize| field(n).parse::<u64>().unwrap_or(0);
        all.push((
            ticks(14) + ticks(15),
            format!(
                "  {pid} {name}: policy {} priority {} user {} system {} ticks\n",
                field(41),
                field(18),
                ticks(14),
                ticks(15)
            ),
        ));
    }
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    all.into_iter().take(n).map(|(_, l)| l).collect()
}

/// For each thread of process `pid`: its name, scheduling policy, priority
/// and CPU time (user, system) from `/proc/PID/task/TID/stat`.
fn thread_times(pid: u32) -> String {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(/proc/{pid}/task cannot be read)\n");
    };
    // SAFETY: sysconf() takes a plain integer and touches no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out = String::new();
    for t in tasks.flatten() {
        let tid = t.file_name().to_string_lossy().into_owned();
        let Some((name, f)) = guest_tests::proc_stat(&format!("/proc/{pid}/task/{tid}/stat"))
        else {
            continue;
        };
        let field = |n: usize| f.get(n - 3).map_or("?", String::as_str);
        let secs = |n: usize| field(n).parse::<f64>().map_or(f64::NAN, |v| v / hz);
        out += &format!(
            "  {tid} {name}: policy {} priority {} user {:.2} s system {:.2} s\n",
            field(41),
            field(18),
            secs(14),
            secs(15)
        );
    }
    out
}

/// The run ended with exit status `code`, the outputs last set safe.
fn check_ended_safe(run: &ServoRun, code: i32, what: &str) {
    assert_eq!(
        run.status, code,
        "{what}: exit status\n{}{}",
        run.stdout, run.stderr
    );
    let released = run
        .released
        .unwrap_or_else(|| panic!("{what}: servo never set its output lines\n{}", run.stderr));
    assert!(
        released.is_safe(),
        "{what}: the last values servo set on its outputs: {released:?}"
    );
}

/// Complete and in order: cycles 0, 1, 2, ... without a gap, times
/// strictly increasing, nothing lost, as many as the app says it ran.
fn check_complete(run: &ServoRun, what: &str) {
    let r = &run.records;
    assert!(
        !r.is_empty(),
        "{what}: no records\n{}{}",
        run.stdout,
        run.stderr
    );
    for (i, rec) in r.iter().enumerate() {
        assert_eq!(
            rec.cycle, i as u64,
            "{what}: record {i} has cycle {}",
            rec.cycle
        );
        assert_eq!(rec.lost, 0, "{what}: cycle {i} says records were lost");
        if i > 0 {
            assert!(
                rec.time_ns > r[i - 1].time_ns,
                "{what}: time goes back at {i}"
            );
        }
    }
    let s = summary(&run.stdout);
    assert_eq!(
        count(&s, "cycles"),
        r.len() as u64,
        "{what}: cycles vs records"
    );
    assert_eq!(count(&s, "records_written"), r.len() as u64, "{what}");
    assert_eq!(count(&s, "records_lost"), 0, "{what}");
}

/// The log against the plant's commands: every motor command the plant
/// read from the lines (up to the last cycle: then servo drives them safe)
/// is one the log says the controller output shortly before (within 20 ms;
/// the kernel's record of what was set is printed when not).
fn check_commands(run: &ServoRun, plant: &PlantRun, what: &str) {
    let r = &run.records;
    let mut explained = 0;
    // After the last cycle servo drives the outputs safe (duty down first,
    // then enable off): those steps are in no record.
    let end = r.last().map_or(0, |rec| rec.time_ns);
    for row in plant
        .trace
        .iter()
        .filter(|row| row.enable && row.command_ns <= end + 1_000_000)
    {
        let from = row.command_ns.saturating_sub(20_000_000);
        let i = r.partition_point(|rec| rec.time_ns <= row.command_ns);
        let window = &r[r.partition_point(|rec| rec.time_ns < from)..i];
        if window.is_empty() {
            continue; // before the first record
        }
        let ok = window.iter().any(|rec| {
            let (dir, duty) = command_of(rec.output);
            rec.flags & FLAG_DRIVEN != 0
                && duty.abs_diff(row.duty) <= 1
                && (dir == row.dir || duty <= 1)
        });
        if !ok {
            let kernel: Vec<_> = run
                .sets
                .iter()
                .filter(|e| e.0 + 3_000_000 >= row.command_ns && e.0 <= row.command_ns)
                .collect();
            panic!(
                "{what}: the plant read enable=1 dir={} duty={} at {} ns, but no record \
                 within 20 ms before says so: {:?}; kernel: {kernel:?}",
                row.dir,
                row.duty,
                row.command_ns,
                &window[window.len().saturating_sub(3)..]
            );
        }
        explained += 1;
    }
    assert!(
        explained > 10,
        "{what}: only {explained} plant commands to compare"
    );
}

/// The log against the plant's positions: every logged position in the run
/// state is the count the plant's encoder lines showed at that time plus
/// one constant, where homing put zero, within 3 counts. The constant, or
/// what differs.
fn position_offset(run: &ServoRun, plant: &PlantRun, what: &str) -> Result<i32, String> {
    let r = &run.records;
    // Positions, in the run and homing states, with the encoder live.
    let mut diffs = BTreeMap::new();
    let mut pairs = Vec::new();
    for rec in r.iter().filter(|rec| rec.state == STATE_RUN) {
        if let Some(pos) = plant.encoder_at(rec.time_ns) {
            let d = rec.position - pos;
            *diffs.entry(d).or_insert(0) += 1;
            pairs.push((rec, d));
        }
    }
    let (&offset, _) = diffs
        .iter()
        .max_by_key(|(_, n)| **n)
        .ok_or_else(|| format!("{what}: no run record within the plant's trace"))?;
    let off: Vec<_> = pairs
        .iter()
        .filter(|(_, d)| (d - offset).abs() > 3)
        .map(|(rec, d)| (rec.cycle, rec.position, rec.position - d))
        .collect();
    let first_run = r
        .iter()
        .find(|rec| rec.state == STATE_RUN)
        .map(|rec| rec.cycle);
    // Where the difference jumped by 2 or more (cycle, logged, plant,
    // setpoint).
    let changes: Vec<_> = pairs
        .windows(2)
        .filter(|w| (w[0].1 - w[1].1).abs() >= 2)
        .map(|w| {
            (
                w[1].0.cycle,
                w[1].0.position,
                w[1].0.position - w[1].1,
                w[1].0.setpoint as i32,
            )
        })
        .take(30)
        .collect();
    if !off.is_empty() {
        return Err(format!(
            "{what}: {} run records (of {}, the first is cycle {first_run:?}) whose logged \
         position is not the plant's (offset {offset}) within 3 counts: (cycle, logged, \
         plant) {:?}; where the difference changed (cycle, logged, plant, setpoint): \
         {changes:?}",
            off.len(),
            pairs.len(),
            &off[..off.len().min(5)]
        ));
    }
    Ok(offset)
}

/// The logged positions are the plant's encoder count plus one offset
/// (where homing put zero), within 3 counts.
fn check_positions(run: &ServoRun, plant: &PlantRun, what: &str) {
    match position_offset(run, plant, what) {
        Ok(offset) => println!("{what}: logged positions = plant's + {offset} (within 3 counts)"),
        Err(e) => panic!(
            "{e}; plant: {} late steps, encoder lines at most {} counts behind",
            plant.get("late_steps"),
            plant.get("max_encoder_lag")
        ),
    }
}

#[test]
fn step_response_reaches_the_setpoint_and_settles_with_bounded_overshoot() {
    let plant = start_plant("step", &[START]);
    let log = log_path("step.log");
    let target = 400.0;
    let run = run_servo(
        &plant,
        &log,
        &[
            "--moves=400",
            "--max-speed=0",
            "--dwell=2500",
            "--duration=5",
            "--log-via=thread",
        ],
    );
    let plant_run = plant.stop();
    check_ended_safe(&run, 0, "step");
    check_complete(&run, "step");
    check_commands(&run, &plant_run, "step");
    check_positions(&run, &plant_run, "step");
    // The step: the first run record with the target setpoint.
    let r = &run.records;
    let start = r
        .iter()
        .position(|rec| rec.state == STATE_RUN && (rec.setpoint - target).abs() < 0.5)
        .expect("a run record with setpoint 400");
    let from = f64::from(r[start].position);
    let after = &r[start..];
    let peak = after.iter().map(|rec| rec.position).max().unwrap();
    let overshoot = (f64::from(peak) - target) / (target - from);
    // Within 2 counts of the target from then on: the settling time.
    let settled_at = after
        .iter()
        .rposition(|rec| (f64::from(rec.position) - target).abs() > 2.0)
        .map_or(0, |i| i + 1);
    println!(
        "step {from} -> {target}: peak {peak} (overshoot {:.1} %), settled within 2 counts \
         {} ms after the step",
        overshoot * 100.0,
        after
            .get(settled_at)
            .map_or(f64::NAN, |rec| (rec.time_ns - r[start].time_ns) as f64
                / 1e6)
    );
    assert!(
        overshoot <= 0.15,
        "overshoot {:.1} % (peak {peak}) of the {} count step",
        overshoot * 100.0,
        target - from
    );
    // Reached within 2 counts, and stayed there for the last second.
    let last_second = after
        .iter()
        .filter(|rec| rec.time_ns + 1_000_000_000 >= r.last().unwrap().time_ns);
    for rec in last_second {
        assert!(
            (f64::from(rec.position) - target).abs() <= 2.0,
            "cycle {}: position {} not settled at {target}",
            rec.cycle,
            rec.position
        );
    }
    // The plant settled too (its last moving step long before the end).
    let last_move = plant_run
        .trace
        .windows(2)
        .rev()
        .find(|w| w[0].position != w[1].position)
        .map_or(0, |w| w[1].t_ns);
    assert!(
        last_move + 500_000_000 < r.last().unwrap().time_ns,
        "the plant still moved in the last half second"
    );
}

/// Also the controller's position is the plant's: homing puts zero within
/// the home window, every logged position is the plant's plus that offset
/// (this caught a count error of 4, one quadrature cycle, in 6 of ~45 runs:
/// two edges of A and B written within one timer tick reached servo in
/// line-offset order, because gpio-sim's IRQ work runs at the tick on these
/// uniprocessor kernels; plant-sim now writes edges --edge-gap-us apart),
/// and the plant ends where the controller says it is.
#[test]
fn direction_reversal_reaches_both_targets() {
    let p = params();
    let plant = start_plant("reverse", &[START]);
    let log = log_path("reverse.log");
    let run = run_servo(
        &plant,
        &log,
        &[
            "--moves=300,-200",
            "--dwell=1500",
            "--duration=8",
            "--log-via=direct",
        ],
    );
    let plant_run = plant.stop();
    check_ended_safe(&run, 0, "reverse");
    check_complete(&run, "reverse");
    check_commands(&run, &plant_run, "reverse");
    check_positions(&run, &plant_run, "reverse");
    let offset = position_offset(&run, &plant_run, "reverse").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        offset.unsigned_abs() <= p.home_half_width_counts + 2,
        "homing put zero {offset} counts from the plant's home"
    );
    let logged = run.records.last().unwrap().position;
    let plant_final = plant_run.get("encoder_counts") as i32 + offset;
    assert!(
        (plant_final - logged).abs() <= 1,
        "the plant ended at {plant_final} in the controller's counts, the log says {logged}"
    );
    let r = &run.records;
    for target in [300.0f32, -200.0] {
        // The last record with this setpoint: settled there.
        let last = r
            .iter()
            .rev()
            .find(|rec| rec.state == STATE_RUN && rec.setpoint as f32 == target)
            .unwrap_or_else(|| panic!("no record with setpoint {target}"));
        assert!(
            (last.position as f32 - target).abs() <= 2.0,
            "cycle {}: at {} for target {target}",
            last.cycle,
            last.position
        );
    }
    // Both directions were driven: the plant saw dir high and dir low.
    let driven: Vec<&PlantRow> = plant_run
        .trace
        .iter()
        .filter(|r| r.enable && r.duty > 20)
        .collect();
    assert!(driven.iter().any(|r| r.dir) && driven.iter().any(|r| !r.dir));
}

// ---- safe outputs at the end --------------------------------------------------

#[test]
fn sigterm_leaves_the_outputs_safe() {
    let plant = start_plant("sigterm", &[START]);
    let log = log_path("sigterm.log");
    let mut servo = Servo::spawn(
        &plant,
        &log,
        &["--moves=2000", "--duration=30", "--log-via=thread"],
    );
    // Wait until it drives the motor hard (homing done, moving up).
    loop {
        assert!(servo.running(), "servo ended before it drove the motor");
        let o = servo.outputs();
        if o.enable && o.duty > 100 && o.dir {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let run = servo.finish(Some(libc::SIGTERM));
    plant.stop();
    check_ended_safe(&run, 0, "SIGTERM");
    check_complete(&run, "SIGTERM");
}

/// A panic in the control loop (the release build aborts: no destructor
/// runs) still leaves the outputs safe: servo's panic hook sets them.
/// `SERVO_TEST_PANIC_AT_CYCLE` is servo's test-only switch (an environment
/// variable, not an option) that panics the loop at that cycle.
#[test]
fn a_panic_leaves_the_outputs_safe() {
    let plant = start_plant("panic", &[START]);
    let log = log_path("panic.log");
    // Homing from 40 takes about 0.3 s: at 1.2 s it drives hard upwards.
    let at = cycles_of_1ms(1200).to_string();
    let run = Servo::spawn_with_env(
        &plant,
        &log,
        &["--moves=2000", "--duration=30", "--log-via=thread"],
        &[("SERVO_TEST_PANIC_AT_CYCLE", &at)],
    )
    .finish(None);
    plant.stop();
    // SIGABRT: the panic, not an exit.
    check_ended_safe(&run, 128 + libc::SIGABRT, "panic");
    assert!(
        run.stderr.contains(&format!("test panic at cycle {at}")),
        "{}",
        run.stderr
    );
    // It was driving when it panicked: the sets before the last ones had
    // the motor enabled.
    assert!(
        run.sets.iter().any(|&(_, n, v)| n == 0 && v),
        "servo never enabled the motor before the panic: {:?}",
        run.sets
    );
}

#[test]
fn encoder_loss_is_a_fault_with_safe_outputs() {
    // Homing from 40 counts takes about 0.3 s; the encoder freezes during
    // the long move after it.
    let plant = start_plant("encoder-loss", &[START, "--freeze-encoder-after=1.5"]);
    let log = log_path("encoder-loss.log");
    let run = run_servo(
        &plant,
        &log,
        &[
            "--moves=5000",
            "--encoder-timeout=100",
            "--duration=20",
            "--log-via=thread",
        ],
    );
    let plant_run = plant.stop();
    check_ended_safe(&run, 3, "encoder loss");
    assert!(run.stderr.contains("fault: encoder loss"), "{}", run.stderr);
    check_complete(&run, "encoder loss");
    // The plant confirms the encoder froze, and the fault came after that,
    // while the motor was driven.
    assert_eq!(plant_run.summary["plant_sim"]["encoder_frozen"], true);
    let frozen_at = plant_run
        .trace
        .iter()
        .find(|r| r.frozen)
        .map(|r| r.t_ns)
        .expect("a frozen step in the plant's trace");
    let fault = run
        .records
        .iter()
        .find(|r| r.state == STATE_FAULT)
        .expect("a fault record");
    assert_eq!(fault.fault, 1, "fault code: encoder loss");
    assert!(
        fault.time_ns > frozen_at,
        "the fault came after the encoder froze"
    );
    assert!(
        plant_run
            .trace
            .iter()
            .any(|r| r.frozen && r.enable && r.duty > 0),
        "the plant was driven with the encoder frozen"
    );
    // From the fault on, the log says the outputs were safe.
    assert!(run
        .records
        .iter()
        .skip_while(|r| r.state != STATE_FAULT)
        .all(|r| r.state == STATE_FAULT && r.output == 0.0 && r.flags & FLAG_DRIVEN == 0));
}

// ---- telemetry paths -----------------------------------------------------------

#[test]
fn every_log_path_gives_complete_ordered_records_that_match_the_plant() {
    for via in [
        &["--log-via=direct"][..],
        &["--log-via=thread"],
        &["--log-via=io_uring"],
        &["--log-via=io_uring", "--sqpoll"],
        &["--log-via=flexsc"],
    ] {
        let what = via.join(" ");
        let plant = start_plant("log-via", &[START]);
        let log = log_path("log-via.log");
        let mut args = vec![
            "--moves=150,-50",
            "--dwell=200",
            "--duration=3",
            "--sync-every=500",
        ];
        args.extend_from_slice(via);
        let run = run_servo(&plant, &log, &args);
        let plant_run = plant.stop();
        check_ended_safe(&run, 0, &what);
        check_complete(&run, &what);
        check_commands(&run, &plant_run, &what);
        check_positions(&run, &plant_run, &what);
    }
}

// ---- bad input -------------------------------------------------------------

#[test]
fn bad_arguments_and_a_missing_device_give_a_clear_error() {
    for (args, msg) in [
        (&["run", "--interval=0"][..], "--interval"),
        (&["run", "--log-via=carrier-pigeon"][..], "--log-via"),
        (&["run", "--priority=100"][..], "--priority"),
        (&["run", "--bogus"][..], "--bogus"),
    ] {
        let out = guest_tests::run(SERVO, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    // No plant: no chip of that label.
    assert!(Chip::find().is_err(), "no plant-sim runs now");
    let out = guest_tests::run(SERVO, &["run", "--duration=1", "--log=/tmp/nochip.log"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(lines::CHIP_LABEL) || err.contains(lines::MOTOR_ENABLE),
        "{err}"
    );
    // A log that is not one.
    fs::write("/tmp/not-a-log", b"hello, world").unwrap();
    let out = guest_tests::run(SERVO, &["decode", "/tmp/not-a-log"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
    // A SPI device that does not exist.
    let out = guest_tests::run(SERVO, &["spi-id", "--device=/dev/spidev9.9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/spidev9.9"));
}

// ---- SPI NOR on the SABRE Lite ------------------------------------------------

/// QEMU's `-M sabrelite` puts an SST25VF016B on ECSPI1's chip select 0
/// (hw/arm/sabrelite.c); its m25p80 model answers "read identification"
/// (0x9F) with the part's JEDEC ID from its table: manufacturer 0xBF (SST),
/// memory type 0x25, capacity 0x41.
const SABRELITE_FLASH_ID: &str = "JEDEC ID: bf 25 41";

/// The flash's SPI device: `spi0.0` (ECSPI1 is spi0 in the i.MX6 device
/// trees' aliases), when the device tree has it.
const SPI_NOR_DEVICE: &str = "/sys/bus/spi/devices/spi0.0";

fn board_has_the_sabrelite_flash() -> bool {
    let compatible = fs::read("/proc/device-tree/compatible").unwrap_or_default();
    compatible
        .split(|b| *b == 0)
        .any(|c| c == b"fsl,imx6q-sabrelite")
}

#[test]
fn spi_nor_jedec_id_through_spidev_on_the_sabrelite() {
    if !board_has_the_sabrelite_flash() {
        println!("skipped: this board's device tree has no SPI NOR on ECSPI1 (SABRE Lite only)");
        return;
    }
    let config = guest_tests::run_ok("sh", &["-c", "zcat /proc/config.gz"]);
    for option in ["CONFIG_SPI_IMX=y", "CONFIG_SPI_SPIDEV=y"] {
        assert!(
            config.lines().any(|l| l == option),
            "{option} missing: ECSPI1's flash cannot be reached"
        );
    }
    let dev = Path::new(SPI_NOR_DEVICE);
    assert!(
        dev.exists(),
        "{SPI_NOR_DEVICE} missing: ECSPI1 did not probe"
    );
    let modalias = fs::read_to_string(dev.join("modalias")).unwrap();
    assert!(
        modalias.contains("sst25vf016b") || modalias.contains("spi-nor"),
        "{modalias}"
    );
    // Nothing else binds it (CONFIG_MTD is off); bind spidev at run time.
    assert!(
        !dev.join("driver").exists()
            || fs::read_link(dev.join("driver"))
                .unwrap()
                .ends_with("spidev")
    );
    fs::write(dev.join("driver_override"), "spidev").unwrap();
    if !dev.join("driver").exists() {
        fs::write("/sys/bus/spi/drivers/spidev/bind", "spi0.0").unwrap();
    }
    let spidev = "/dev/spidev0.0";
    let start = Instant::now();
    while !Path::new(spidev).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{spidev} did not appear"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let out = guest_tests::run(SERVO, &["spi-id", &format!("--device={spidev}")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Leave the device as it was found.
    let _ = fs::write("/sys/bus/spi/drivers/spidev/unbind", "spi0.0");
    let _ = fs::write(dev.join("driver_override"), "\n");
    println!("servo spi-id --device={spidev}: {}", stdout.trim());
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .to_ascii_lowercase()
            .contains(SABRELITE_FLASH_ID.to_ascii_lowercase().as_str()),
        "expected '{SABRELITE_FLASH_ID}' (QEMU's sst25vf016b), got: {stdout}"
    );
}
