//! The gpio-sim chip of the plant: made and removed through configfs
//! (Documentation/admin-guide/gpio/gpio-sim.rst), its lines read and pulled
//! through the sysfs attributes gpio-sim gives each line.

use crate::lines;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where configfs is mounted.
pub const CONFIGFS: &str = "/sys/kernel/config";

/// gpio-sim's directory in configfs.
pub fn gpio_sim_dir() -> PathBuf {
    Path::new(CONFIGFS).join("gpio-sim")
}

/// The configfs directory of the plant's device.
pub fn device_dir() -> PathBuf {
    gpio_sim_dir().join(lines::CHIP_LABEL)
}

fn bank_dir() -> PathBuf {
    device_dir().join("gpio-bank0")
}

fn read_trimmed(path: &Path) -> Result<String, String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write_attr(path: &Path, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| format!("cannot write '{value}' to {}: {e}", path.display()))
}

/// The file system type mounted at `mount_point` (the last mount there).
fn mounted_at(mount_point: &str) -> Option<String> {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts.lines().rev().find_map(|l| {
        let mut w = l.split_whitespace();
        let (_, at, ty) = (w.next(), w.next(), w.next());
        (at == Some(mount_point)).then(|| ty.unwrap_or("").to_string())
    })
}

/// Makes sure gpio-sim's configfs directory is there: mounts configfs at
/// [`CONFIGFS`] when the kernel has it and nothing is mounted there yet
/// (the image's boot script does not mount it). Returns a note when it
/// mounted it, and an error that says what is missing otherwise.
pub fn ensure_gpio_sim() -> Result<Option<String>, String> {
    if gpio_sim_dir().is_dir() {
        return Ok(None);
    }
    let mut note = None;
    match mounted_at(CONFIGFS).as_deref() {
        Some("configfs") => {}
        Some(other) => {
            return Err(format!(
                "gpio-sim is not available: {other}, not configfs, is mounted at {CONFIGFS}"
            ))
        }
        None => {
            let filesystems = fs::read_to_string("/proc/filesystems").unwrap_or_default();
            if !filesystems
                .lines()
                .any(|l| l.split_whitespace().last() == Some("configfs"))
            {
                return Err(
                    "this kernel has no configfs (CONFIG_CONFIGFS_FS), which gpio-sim needs".into(),
                );
            }
            if !Path::new(CONFIGFS).is_dir() {
                return Err(format!("{CONFIGFS} is missing: is sysfs mounted at /sys?"));
            }
            let source = c"configfs";
            let target = c"/sys/kernel/config";
            // SAFETY: every pointer is a NUL-terminated string literal that
            // lives for the whole program; `data` may be NULL for configfs.
            let rc = unsafe {
                libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    source.as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(format!(
                    "cannot mount configfs at {CONFIGFS}: {}",
                    io::Error::last_os_error()
                ));
            }
            note = Some(format!("mounted configfs at {CONFIGFS}"));
        }
    }
    if !gpio_sim_dir().is_dir() {
        return Err(format!(
            "gpio-sim is not available: {} is missing (the kernel needs CONFIG_GPIO_SIM; \
             as a module: modprobe gpio-sim)",
            gpio_sim_dir().display()
        ));
    }
    Ok(note)
}

/// The live chip: its device and bank names and its lines' sysfs
/// directories.
#[derive(Debug)]
pub struct Chip {
    /// The platform device, e.g. `gpio-sim.0`.
    pub dev_name: String,
    /// The GPIO chip of the bank, e.g. `gpiochip2` (`/dev/gpiochip2`).
    pub chip_name: String,
    /// `/sys/devices/platform/<dev_name>/<chip_name>`.
    pub sysfs: PathBuf,
    /// Whether this value made the chip (and so removes it when dropped).
    owned: bool,
}

impl Chip {
    /// Creates the chip: device `rtflex-plant`, one bank labelled
    /// `rtflex-plant` with the lines of [`lines::ALL`], then `live`.
    /// Refuses when the device exists already. On an error, whatever was
    /// made is removed again.
    pub fn create() -> Result<Chip, String> {
        let dev = device_dir();
        if dev.exists() {
            return Err(format!(
                "{} exists: another plant-sim is running, or one was killed \
                 (remove its chip with `plant-sim --remove`)",
                dev.display()
            ));
        }
        fs::create_dir(&dev).map_err(|e| format!("cannot create {}: {e}", dev.display()))?;
        // From here on, an error removes what exists.
        let mut chip = Chip {
            dev_name: String::new(),
            chip_name: String::new(),
            sysfs: PathBuf::new(),
            owned: true,
        };
        let bank = bank_dir();
        fs::create_dir(&bank).map_err(|e| format!("cannot create {}: {e}", bank.display()))?;
        write_attr(&bank.join("label"), lines::CHIP_LABEL)?;
        write_attr(&bank.join("num_lines"), &lines::ALL.len().to_string())?;
        for (offset, name) in lines::ALL.iter().enumerate() {
            let line = bank.join(format!("line{offset}"));
            fs::create_dir(&line).map_err(|e| format!("cannot create {}: {e}", line.display()))?;
            write_attr(&line.join("name"), name)?;
        }
        write_attr(&dev.join("live"), "1")?;
        let mut found = Chip::find()?;
        chip.dev_name = std::mem::take(&mut found.dev_name);
        chip.chip_name = std::mem::take(&mut found.chip_name);
        chip.sysfs = std::mem::take(&mut found.sysfs);
        Ok(chip)
    }

    /// The live chip another process made (it is not removed on drop).
    pub fn find() -> Result<Chip, String> {
        let dev = device_dir();
        if read_trimmed(&dev.join("live"))? != "1" {
            return Err(format!("{} is not live", dev.display()));
        }
        let dev_name = read_trimmed(&dev.join("dev_name"))?;
        let chip_name = read_trimmed(&bank_dir().join("chip_name"))?;
        let sysfs = Path::new("/sys/devices/platform")
            .join(&dev_name)
            .join(&chip_name);
        if !sysfs.join("sim_gpio0").is_dir() {
            return Err(format!("{} has no sim_gpio0", sysfs.display()));
        }
        Ok(Chip {
            dev_name,
            chip_name,
            sysfs,
            owned: false,
        })
    }

    /// The sysfs directory of the line at `offset`.
    pub fn line_dir(&self, offset: usize) -> PathBuf {
        self.sysfs.join(format!("sim_gpio{offset}"))
    }

    /// The sysfs directory of the line called `name` ([`lines::ALL`]).
    pub fn line_dir_of(&self, name: &str) -> Option<PathBuf> {
        lines::ALL
            .iter()
            .position(|n| *n == name)
            .map(|offset| self.line_dir(offset))
    }

    /// Takes the chip down and removes its configfs directories.
    pub fn remove(mut self) -> Result<(), String> {
        self.owned = false;
        remove_device()
    }
}

impl Drop for Chip {
    fn drop(&mut self) {
        if self.owned {
            if let Err(e) = remove_device() {
                eprintln!("plant-sim: {e}");
            }
        }
    }
}

/// Removes the plant's device from configfs (live = 0 first), whoever
/// made it. Ok when it is not there.
pub fn remove_device() -> Result<(), String> {
    let dev = device_dir();
    if !dev.exists() {
        return Ok(());
    }
    let live = dev.join("live");
    if read_trimmed(&live).as_deref() == Ok("1") {
        write_attr(&live, "0")?;
    }
    let bank = bank_dir();
    if bank.exists() {
        for offset in 0..lines::ALL.len() {
            let line = bank.join(format!("line{offset}"));
            if line.exists() {
                fs::remove_dir(&line)
                    .map_err(|e| format!("cannot remove {}: {e}", line.display()))?;
            }
        }
        fs::remove_dir(&bank).map_err(|e| format!("cannot remove {}: {e}", bank.display()))?;
    }
    fs::remove_dir(&dev).map_err(|e| format!("cannot remove {}: {e}", dev.display()))
}

/// A line's sysfs `value` (read) and `pull` (written), kept open: each
/// access is one `pread`/`pwrite` at offset 0.
#[derive(Debug)]
pub struct Line {
    value: File,
    pull: File,
    path: PathBuf,
}

impl Line {
    /// Opens the attributes of the line in `dir` (a `sim_gpioN`).
    pub fn open(dir: &Path) -> Result<Line, String> {
        let value = File::open(dir.join("value"))
            .map_err(|e| format!("cannot open {}/value: {e}", dir.display()))?;
        let pull = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("pull"))
            .map_err(|e| format!("cannot open {}/pull: {e}", dir.display()))?;
        Ok(Line {
            value,
            pull,
            path: dir.to_path_buf(),
        })
    }

    /// The line's level: what its consumer drives (an output) or its pull
    /// (an input, or a line nobody requested).
    pub fn level(&self) -> Result<bool, String> {
        let mut buf = [0u8; 4];
        match self.value.read_at(&mut buf, 0) {
            Ok(n) if n >= 1 && (buf[0] == b'0' || buf[0] == b'1') => Ok(buf[0] == b'1'),
            Ok(_) => Err(format!("{}/value: unexpected content", self.path.display())),
            Err(e) => Err(format!("cannot read {}/value: {e}", self.path.display())),
        }
    }

    /// Pulls the line up (`true`) or down: an input follows the pull, and
    /// a requested input with edge detection gets an edge event.
    pub fn pull(&self, up: bool) -> Result<(), String> {
        let text: &[u8] = if up { b"pull-up" } else { b"pull-down" };
        match self.pull.write_at(text, 0) {
            Ok(n) if n == text.len() => Ok(()),
            Ok(_) => Err(format!("{}/pull: short write", self.path.display())),
            Err(e) => Err(format!("cannot write {}/pull: {e}", self.path.display())),
        }
    }

    /// The pull now (`true`: pull-up).
    pub fn pulled_up(&self) -> Result<bool, String> {
        let mut buf = [0u8; 16];
        match self.pull.read_at(&mut buf, 0) {
            Ok(n) if buf[..n].starts_with(b"pull-up") => Ok(true),
            Ok(n) if buf[..n].starts_with(b"pull-down") => Ok(false),
            Ok(_) => Err(format!("{}/pull: unexpected content", self.path.display())),
            Err(e) => Err(format!("cannot read {}/pull: {e}", self.path.display())),
        }
    }
}
