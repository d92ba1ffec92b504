//! The simulated plant for the guest tests (included by tests/plant_sim.rs
//! and tests/servo.rs with `#[path]`): plant-sim started and stopped, its
//! trace and summary read back, its lines read through gpio-sim's sysfs.
// Each test binary uses a part of it.
#![allow(dead_code)]

use plant::sim::chip::{Chip, Line};
use plant::{lines, Params};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const PLANT_SIM: &str = "/usr/bin/plant-sim";
pub const PLANT_CONF: &str = "/etc/rtflex/plant.conf";
/// "It ended at all": generous, not a performance bound.
pub const GENEROUS: Duration = Duration::from_secs(120);

pub fn params() -> Params {
    let text = params_text();
    Params::parse(&text).unwrap_or_else(|e| panic!("{PLANT_CONF}: {e}"))
}

pub fn params_text() -> String {
    fs::read_to_string(PLANT_CONF).unwrap_or_else(|e| panic!("{PLANT_CONF}: {e}"))
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill() takes plain integers and touches no memory of ours;
    // `pid` is a child of this test that has not been reaped yet, so the
    // number cannot name another process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill {pid}");
}

/// Reads a child's stream to its end in a thread.
pub fn collect(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

pub fn wait_bounded(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > GENEROUS {
            let where_ = stuck_where(child.id());
            let _ = child.kill();
            panic!("{what} did not end within {GENEROUS:?}: {where_}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Where a process that does not end is: its state, system call and
/// kernel stack from /proc (a process stuck in the kernel cannot be
/// killed, and a test must say so instead of waiting for it).
pub fn stuck_where(pid: u32) -> String {
    let read = |f: &str| {
        fs::read_to_string(format!("/proc/{pid}/{f}"))
            .map(|s| s.trim().replace('\n', " | "))
            .unwrap_or_else(|e| format!("({e})"))
    };
    let state = read("stat")
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    format!(
        "pid {pid}, state {state}, syscall {}, wchan {}, kernel stack: {}",
        read("syscall"),
        read("wchan"),
        read("stack")
    )
}

// ---- the plant --------------------------------------------------------------

/// One row of plant-sim's --trace (a step that changed something).
#[derive(Clone, Copy, Debug)]
pub struct PlantRow {
    /// The step's time; `position` (the motor's), `encoder` (the count the
    /// encoder lines show) and `frozen` are the step's.
    pub t_ns: u64,
    /// When the motor command (`enable`, `dir`, `duty`) was read.
    pub command_ns: u64,
    pub enable: bool,
    pub dir: bool,
    pub duty: u8,
    pub position: i32,
    pub encoder: i32,
    pub frozen: bool,
}

/// What a plant-sim run left: its summary and trace.
pub struct PlantRun {
    pub summary: serde_json::Value,
    pub trace: Vec<PlantRow>,
    pub stdout: String,
}

impl PlantRun {
    pub fn get(&self, key: &str) -> i64 {
        self.summary["plant_sim"][key]
            .as_i64()
            .unwrap_or_else(|| panic!("plant-sim summary has no {key}: {}", self.summary))
    }

    /// The count the encoder lines showed at time `t` (the last traced step
    /// at or before it).
    pub fn encoder_at(&self, t: u64) -> Option<i32> {
        let i = self.trace.partition_point(|r| r.t_ns <= t);
        i.checked_sub(1).map(|i| self.trace[i].encoder)
    }
}

/// A running plant-sim with its chip.
pub struct PlantSim {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Option<thread::JoinHandle<String>>,
    pub chip: Chip,
    pub start: i32,
    dir: PathBuf,
}

impl PlantSim {
    /// Starts plant-sim (with `--trace` and `--json` into a fresh directory)
    /// and waits for its ready line.
    pub fn start(name: &str, extra: &[&str]) -> PlantSim {
        let dir = Path::new("/tmp/plant-sim").join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let trace = format!("--trace={}", dir.join("trace.csv").display());
        let json = format!("--json={}", dir.join("summary.json").display());
        let mut child = Command::new(PLANT_SIM)
            .args([trace.as_str(), json.as_str()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PLANT_SIM}: {e}"));
        let stderr = collect(child.stderr.take().unwrap());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // The ready line: read in a thread so that a plant-sim that never
        // gets there fails the test instead of hanging it.
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).unwrap_or(0);
            let _ = tx.send((n, line));
            stdout
        });
        let (n, line) = match rx.recv_timeout(GENEROUS) {
            Ok(got) => got,
            Err(_) => {
                let _ = child.kill();
                panic!("plant-sim did not get ready within {GENEROUS:?}");
            }
        };
        let stdout = reader.join().unwrap();
        if n == 0 {
            let st = child.wait().unwrap();
            let err = stderr.join().unwrap();
            panic!("plant-sim ended ({st}) before it was ready: {err}");
        }
        assert!(
            line.starts_with("plant-sim: ready: /dev/gpiochip"),
            "{line}"
        );
        let start: i32 = line
            .split("position ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no position in '{line}'"));
        let chip = Chip::find().expect("the chip plant-sim made");
        assert!(line.contains(&format!("/dev/{}", chip.chip_name)), "{line}");
        PlantSim {
            child,
            stdout,
            stderr: Some(stderr),
            chip,
            start,
            dir,
        }
    }

    /// Waits until plant-sim has made a step (its first trace row, which
    /// it writes out at once), bounded.
    pub fn wait_stepped(&self) {
        let path = self.dir.join("trace.csv");
        let start = Instant::now();
        while !fs::read_to_string(&path).is_ok_and(|t| t.lines().nth(1).is_some()) {
            assert!(
                start.elapsed() < GENEROUS,
                "plant-sim made no step within {GENEROUS:?} (no row in {}): {}",
                path.display(),
                stuck_where(self.child.id())
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn chip_path(&self) -> String {
        format!("/dev/{}", self.chip.chip_name)
    }

    pub fn line(&self, name: &str) -> Line {
        Line::open(&self.chip.line_dir_of(name).unwrap()).unwrap()
    }

    /// The output lines' levels from gpio-sim's sysfs `value`.
    pub fn outputs(&self) -> Outputs {
        let level = |n: &str| self.line(n).level().unwrap();
        let mut duty = 0u8;
        for (bit, n) in lines::MOTOR_DUTY.iter().enumerate() {
            if level(n) {
                duty |= 1 << bit;
            }
        }
        Outputs {
            enable: level(lines::MOTOR_ENABLE),
            dir: level(lines::MOTOR_DIR),
            duty,
        }
    }

    /// Ends plant-sim with SIGTERM: it must exit 0, remove its chip and
    /// leave its summary and trace.
    pub fn stop(mut self) -> PlantRun {
        signal(self.child.id(), libc::SIGTERM);
        let st = wait_bounded(&mut self.child, "plant-sim");
        let mut stdout = String::new();
        self.stdout.read_to_string(&mut stdout).unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(st.success(), "plant-sim: {st}\n{stdout}{stderr}");
        assert!(stdout.contains("plant-sim: done: "), "{stdout}");
        // Its summary (steps, late steps, lag, how far the encoder lines
        // fell behind): what a slow kernel did to the plant.
        println!("{}", stdout.trim());
        assert!(
            !plant::sim::chip::device_dir().exists(),
            "plant-sim left its chip in configfs"
        );
        assert!(
            !Path::new(&format!("/dev/{}", self.chip.chip_name)).exists()
                || fs::read_to_string(format!(
                    "/sys/bus/gpio/devices/{}/label",
                    self.chip.chip_name
                ))
                .map(|l| l.trim() != lines::CHIP_LABEL)
                .unwrap_or(true),
            "the gpio-sim chip is still there after plant-sim ended"
        );
        let summary: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(self.dir.join("summary.json")).unwrap())
                .unwrap();
        let text = fs::read_to_string(self.dir.join("trace.csv")).unwrap();
        let mut rows = text.lines();
        assert_eq!(
            rows.next(),
            Some(
                "t_ns,position,encoder,speed_rad_s,encoder_frozen,command_ns,enable,dir,duty,volts"
            )
        );
        let trace = rows
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                assert_eq!(f.len(), 10, "trace row {l}");
                PlantRow {
                    t_ns: f[0].parse().unwrap(),
                    position: f[1].parse().unwrap(),
                    encoder: f[2].parse().unwrap(),
                    frozen: f[4] == "1",
                    command_ns: f[5].parse().unwrap(),
                    enable: f[6] == "1",
                    dir: f[7] == "1",
                    duty: f[8].parse().unwrap(),
                }
            })
            .collect();
        PlantRun {
            summary,
            trace,
            stdout,
        }
    }
}

impl Drop for PlantSim {
    fn drop(&mut self) {
        // A failed test: do not leave the chip for the next one, but do
        // not wait without end either (a plant-sim stuck in the kernel
        // while it removes the chip ignores every signal).
        let pid = self.child.id();
        for (sig, patience) in [(libc::SIGTERM, 10), (libc::SIGKILL, 2)] {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            // SAFETY: kill() takes plain integers and touches no memory of
            // ours; `pid` is our child, not reaped yet (try_wait above).
            unsafe { libc::kill(pid as libc::pid_t, sig) };
            let until = Instant::now() + Duration::from_secs(patience);
            while Instant::now() < until {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        eprintln!(
            "plant-sim does not end even after SIGKILL, left behind: {}",
            stuck_where(pid)
        );
    }
}

/// The motor command on the output lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outputs {
    pub enable: bool,
    pub dir: bool,
    pub duty: u8,
}

impl Outputs {
    /// The contract's safe level: driver disabled, duty 0, dir low.
    pub fn is_safe(&self) -> bool {
        !self.enable && self.duty == 0 && !self.dir
    }
}
