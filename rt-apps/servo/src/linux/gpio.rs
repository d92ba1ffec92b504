//! GPIO lines through the character device, uAPI v2 (`gpiocdev`).
//!
//! Set-up (allocating, before the loop) uses `gpiocdev`'s chip and request
//! API. In the loop, values are set and events read with single
//! `gpiocdev-uapi` calls on the request's file, because `gpiocdev`'s
//! multi-line `Values` is a heap-allocated map.

use super::Error;
use crate::quadrature::{PositionSensor, Quadrature, SensorError};
use core::cell::Cell;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use embedded_hal::pwm::{ErrorType as PwmErrorType, SetDutyCycle};
use gpiocdev::line::{EdgeDetection, EventClock, Offset, Value};
use gpiocdev::Request;
use gpiocdev_uapi::v2::LineEdgeEventKind;
use gpiocdev_uapi::v2::{LineEdgeEvent, LineValues};
use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

/// Edge events the kernel buffers per request before it drops some.
pub const KERNEL_EVENT_BUFFER: u32 = 1024;
/// Edge events read with one `read(2)`.
pub const READ_EVENTS: usize = 64;
/// Consumer label of our line requests.
pub const CONSUMER: &str = "servo";

/// Where a line is: `[CHIP:]NAME` or `[CHIP:]OFFSET`; CHIP is a chip
/// label, a chip name (`gpiochip2`) or a path (`/dev/gpiochip2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineSpec {
    pub chip: Option<String>,
    pub line: LineRef,
}

/// A line by name or by offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineRef {
    Name(String),
    Offset(Offset),
}

impl LineSpec {
    /// Parses `[CHIP:]NAME|OFFSET`.
    pub fn parse(s: &str) -> Result<LineSpec, String> {
        let (chip, line) = match s.split_once(':') {
            Some((c, l)) => (Some(c.to_string()), l),
            None => (None, s),
        };
        if line.is_empty() || chip.as_deref() == Some("") {
            return Err(format!(
                "bad line '{s}': expected [CHIP:]NAME or [CHIP:]OFFSET"
            ));
        }
        let line = match line.parse::<Offset>() {
            Ok(o) => LineRef::Offset(o),
            Err(_) => LineRef::Name(line.to_string()),
        };
        Ok(LineSpec { chip, line })
    }

    /// A line by name on the chip labelled `label`.
    pub fn named(label: &str, name: &str) -> LineSpec {
        LineSpec {
            chip: Some(label.to_string()),
            line: LineRef::Name(name.to_string()),
        }
    }
}

/// A found line: its chip's device and its offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub chip: PathBuf,
    pub offset: Offset,
}

/// The GPIO chips' character devices: the kernel's `/dev/gpiochipN`, in
/// number order, and `chip` itself if it is a path. (gpiocdev's `chips()`
/// looks at every entry of /dev, several system calls for each tty, disk
/// and memory node, and servo looks up each of its 13 lines: on the debug
/// kernel variants that took servo's set-up longer than the tests wait.)
fn chip_paths(chip: &str) -> Result<Vec<PathBuf>, String> {
    let number = |p: &Path| -> Option<u32> {
        p.file_name()?
            .to_str()?
            .strip_prefix("gpiochip")?
            .parse()
            .ok()
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map_err(|e| format!("cannot list GPIO chips: /dev: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| number(p).is_some())
        .collect();
    paths.sort_by_key(|p| number(p));
    if chip.starts_with('/') && !paths.iter().any(|p| p == Path::new(chip)) {
        paths.push(PathBuf::from(chip));
    }
    Ok(paths)
}

/// The chips `chip` names (label, name or path), with their labels.
fn matching_chips(chip: &str) -> Result<Vec<PathBuf>, String> {
    let paths = chip_paths(chip)?;
    let mut found = Vec::new();
    let mut seen = Vec::new();
    for p in paths {
        let Ok(c) = gpiocdev::chip::Chip::from_path(&p) else {
            continue;
        };
        let Ok(info) = c.info() else { continue };
        seen.push(format!("{} [{}]", info.name, info.label));
        if info.label == chip || info.name == chip || p == Path::new(chip) {
            found.push(p);
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no GPIO chip '{chip}' (chips here: {}){}",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            },
            if chip == plant::lines::CHIP_LABEL {
                "; is plant-sim running?"
            } else {
                ""
            }
        ));
    }
    Ok(found)
}

/// Finds a line; `default_chip` when the spec names none.
pub fn find_line(spec: &LineSpec, default_chip: &str) -> Result<Line, String> {
    let chip = spec.chip.as_deref().unwrap_or(default_chip);
    for path in matching_chips(chip)? {
        let c = gpiocdev::chip::Chip::from_path(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match &spec.line {
            LineRef::Name(name) => {
                if let Some(info) = c.find_line_info(name) {
                    return Ok(Line {
                        chip: path,
                        offset: info.offset,
                    });
                }
            }
            LineRef::Offset(o) => {
                let n = c
                    .info()
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .num_lines;
                if *o < n {
                    return Ok(Line {
                        chip: path,
                        offset: *o,
                    });
                }
            }
        }
    }
    Err(match &spec.line {
        LineRef::Name(n) => format!("GPIO chip '{chip}' has no line named '{n}'"),
        LineRef::Offset(o) => format!("GPIO chip '{chip}' has no line {o}"),
    })
}

/// The request's file, for single uAPI calls. Never closed through this
/// view: the request owns the descriptor.
fn file_view(req: &Request) -> ManuallyDrop<File> {
    // SAFETY: the descriptor is open and owned by `req`; the File is
    // wrapped in ManuallyDrop, so it never closes it, and every view is
    // kept next to the request it came from and dropped with it.
    ManuallyDrop::new(unsafe { File::from_raw_fd(req.as_raw_fd()) })
}

/// Bit of `offset` in the request's value words (the kernel indexes lines
/// in the order of the request, which gpiocdev sorts).
fn bit_of(req: &Request, offset: Offset) -> u64 {
    let idx = req
        .config()
        .lines()
        .iter()
        .position(|&o| o == offset)
        .expect("line of this request");
    1 << idx
}

/// Output lines of one chip, requested together, driven low at request
/// time (the safe level of every motor line).
#[derive(Debug)]
pub struct OutputBank {
    // Declared before `req`: dropped first.
    file: ManuallyDrop<File>,
    req: Request,
    chip: PathBuf,
}

impl OutputBank {
    /// Requests `lines` (all on `chip`) as outputs, low.
    pub fn request(chip: &Path, lines: &[Offset]) -> Result<OutputBank, String> {
        let req = Request::builder()
            .on_chip(chip)
            .with_consumer(CONSUMER)
            .with_lines(lines)
            .as_output(Value::Inactive)
            .request()
            .map_err(|e| {
                format!(
                    "cannot request output lines {lines:?} of {}: {e}",
                    chip.display()
                )
            })?;
        Ok(OutputBank {
            file: file_view(&req),
            req,
            chip: chip.to_path_buf(),
        })
    }

    /// The chip.
    pub fn chip(&self) -> &Path {
        &self.chip
    }

    /// One line as an `OutputPin`.
    pub fn pin(&self, offset: Offset) -> BankPin<'_> {
        BankPin {
            bank: self,
            mask: bit_of(&self.req, offset),
        }
    }

    /// Eight lines, LSB first, as an 8-bit duty "DAC".
    pub fn dac(&self, lines: &[Offset; 8]) -> GpioDac<'_> {
        GpioDac {
            bank: self,
            masks: lines.map(|o| bit_of(&self.req, o)),
        }
    }

    /// Sets the lines of `mask` to `bits` with one ioctl.
    #[inline]
    fn set(&self, mask: u64, bits: u64) -> Result<(), Error> {
        let lv = LineValues {
            bits: bits & mask,
            mask,
        };
        gpiocdev_uapi::v2::set_line_values(&self.file, &lv).map_err(|e| Error {
            what: "GPIO set values",
            errno: match e {
                gpiocdev_uapi::Error::Os(errno) => errno.0,
                _ => libc::EIO,
            },
        })
    }

    /// The request's descriptor and the mask of all its lines (what
    /// [`super::panic_safe::arm`] takes).
    pub fn safe_target(&self) -> (std::os::fd::RawFd, u64) {
        let n = self.req.config().lines().len();
        (self.req.as_raw_fd(), u64::MAX >> (64 - n.clamp(1, 64)))
    }

    /// Reads back the output levels (bit N: the request's line N).
    pub fn get(&self) -> Result<u64, Error> {
        let mut lv = LineValues {
            bits: 0,
            mask: u64::MAX,
        };
        gpiocdev_uapi::v2::get_line_values(&self.file, &mut lv)
            .map_err(|_| Error::last("GPIO get values"))?;
        Ok(lv.bits)
    }
}

/// One output line of an [`OutputBank`].
#[derive(Debug)]
pub struct BankPin<'a> {
    bank: &'a OutputBank,
    mask: u64,
}

impl ErrorType for BankPin<'_> {
    type Error = Error;
}

impl OutputPin for BankPin<'_> {
    fn set_low(&mut self) -> Result<(), Error> {
        self.bank.set(self.mask, 0)
    }
    fn set_high(&mut self) -> Result<(), Error> {
        self.bank.set(self.mask, self.mask)
    }
}

/// The simulated plant's 8-bit duty "DAC": eight lines of one bank, set
/// together by one ioctl.
#[derive(Debug)]
pub struct GpioDac<'a> {
    bank: &'a OutputBank,
    masks: [u64; 8],
}

impl PwmErrorType for GpioDac<'_> {
    type Error = Error;
}

impl SetDutyCycle for GpioDac<'_> {
    fn max_duty_cycle(&self) -> u16 {
        255
    }
    fn set_duty_cycle(&mut self, duty: u16) -> Result<(), Error> {
        let duty = duty.min(255);
        let (mut mask, mut bits) = (0, 0);
        for (i, m) in self.masks.iter().enumerate() {
            mask |= m;
            if duty & (1 << i) != 0 {
                bits |= m;
            }
        }
        self.bank.set(mask, bits)
    }
}

/// Lines requested as inputs with both-edge events (kernel timestamps from
/// `CLOCK_MONOTONIC`), their descriptor non-blocking.
#[derive(Debug)]
struct EventLines {
    file: ManuallyDrop<File>,
    req: Request,
    buf: Box<[u64]>,
    /// The request's lines and their bits (looked up once: gpiocdev's
    /// `config()` clones the configuration).
    bits: heapless::Vec<(Offset, u64), 4>,
    /// u64 words of one event.
    event_words: usize,
    /// The kernel's sequence number of the next event.
    next_seqno: u32,
    /// Kernel timestamp of the last event read (ns, `CLOCK_MONOTONIC`).
    last_event_ns: u64,
    events: u64,
}

impl EventLines {
    fn request(chip: &Path, lines: &[Offset]) -> Result<EventLines, String> {
        let req = Request::builder()
            .on_chip(chip)
            .with_consumer(CONSUMER)
            .with_lines(lines)
            .as_input()
            .with_edge_detection(EdgeDetection::BothEdges)
            .with_event_clock(EventClock::Monotonic)
            .with_kernel_event_buffer_size(KERNEL_EVENT_BUFFER)
            .request()
            .map_err(|e| {
                format!(
                    "cannot request input lines {lines:?} of {}: {e}",
                    chip.display()
                )
            })?;
        let fd = req.as_raw_fd();
        // SAFETY: fcntl on an open descriptor we own (through `req`) with
        // integer arguments only.
        let ok = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        if !ok {
            return Err(format!(
                "cannot make the line request non-blocking: {}",
                std::io::Error::last_os_error()
            ));
        }
        let event_words = req.edge_event_u64_size();
        let mut bits = heapless::Vec::new();
        for &o in lines {
            bits.push((o, bit_of(&req, o)))
                .map_err(|_| "at most 4 event lines per request".to_string())?;
        }
        Ok(EventLines {
            file: file_view(&req),
            buf: vec![0u64; event_words * READ_EVENTS].into_boxed_slice(),
            bits,
            event_words,
            req,
            next_seqno: 1,
            last_event_ns: 0,
            events: 0,
        })
    }

    /// The levels now (bit N: the request's line N).
    fn levels(&self) -> Result<u64, String> {
        let mut lv = LineValues {
            bits: 0,
            mask: u64::MAX,
        };
        gpiocdev_uapi::v2::get_line_values(&self.file, &mut lv)
            .map_err(|e| format!("cannot read GPIO lines: {e}"))?;
        Ok(lv.bits)
    }

    /// Reads every queued event; `each(bit of its line, rising)`, in the
    /// order of the request's sequence numbers. Returns false if events
    /// were lost or came late (a gap in the sequence numbers).
    ///
    /// The sequence number is given when the kernel takes the edge (with
    /// its timestamp); each line has its own interrupt thread that then
    /// queues the event, so events of two lines could reach the queue in
    /// the other order. Within one read they are put back in sequence; an
    /// event that comes after a later one was read already is a gap.
    #[inline]
    fn drain(&mut self, mut each: impl FnMut(u64, bool)) -> Result<bool, Error> {
        let words = self.event_words;
        let mut complete = true;
        loop {
            let n = match gpiocdev_uapi::read_event(&self.file, &mut self.buf) {
                Ok(n) => n,
                Err(gpiocdev_uapi::Error::Os(e)) if e.0 == libc::EAGAIN => return Ok(complete),
                Err(gpiocdev_uapi::Error::Os(e)) => {
                    return Err(Error {
                        what: "read GPIO edge events",
                        errno: e.0,
                    })
                }
                Err(_) => {
                    return Err(Error {
                        what: "read GPIO edge events (short read)",
                        errno: libc::EIO,
                    })
                }
            };
            // (seqno, offset, rising, timestamp) of each event read.
            let mut batch: heapless::Vec<(u32, Offset, bool, u64), READ_EVENTS> =
                heapless::Vec::new();
            for ev in self.buf[..n].chunks_exact(words) {
                let Ok(ev) = LineEdgeEvent::from_slice(ev) else {
                    continue;
                };
                let rising = ev.kind == LineEdgeEventKind::RisingEdge as u32;
                // At most READ_EVENTS fit in the buffer: never full.
                let _ = batch.push((ev.seqno, ev.offset, rising, ev.timestamp_ns));
            }
            // Sequence numbers wrap: sort by the distance from the one due.
            let due = self.next_seqno;
            batch.sort_unstable_by_key(|e| e.0.wrapping_sub(due));
            for &(seqno, offset, rising, timestamp_ns) in batch.iter() {
                if seqno != self.next_seqno {
                    complete = false;
                }
                self.next_seqno = seqno.wrapping_add(1);
                self.last_event_ns = timestamp_ns;
                self.events += 1;
                if let Some(&(_, bit)) = self.bits.iter().find(|(o, _)| *o == offset) {
                    each(bit, rising);
                }
            }
            if n < self.buf.len() {
                return Ok(complete);
            }
        }
    }
}

/// A quadrature encoder decoded from the edge events of its two lines (one
/// request, so the kernel orders the events of both).
#[derive(Debug)]
pub struct EdgeEncoder {
    lines: EventLines,
    bit_a: u64,
    bit_b: u64,
    a: bool,
    b: bool,
    decoder: Quadrature,
    missed: bool,
}

impl EdgeEncoder {
    /// Requests channel A and B (both on `chip`).
    pub fn request(chip: &Path, a: Offset, b: Offset) -> Result<EdgeEncoder, String> {
        if a == b {
            return Err("encoder A and B are the same line".into());
        }
        let lines = EventLines::request(chip, &[a, b])?;
        let bit_a = bit_of(&lines.req, a);
        let bit_b = bit_of(&lines.req, b);
        // Events queued from here on are applied on top of these levels;
        // an event whose level is already seen changes nothing.
        let levels = lines.levels()?;
        let (la, lb) = (levels & bit_a != 0, levels & bit_b != 0);
        Ok(EdgeEncoder {
            lines,
            bit_a,
            bit_b,
            a: la,
            b: lb,
            decoder: Quadrature::new(la, lb),
            missed: false,
        })
    }

    /// Kernel timestamp of the last edge (ns, `CLOCK_MONOTONIC`), 0 if none.
    pub fn last_edge_ns(&self) -> u64 {
        self.lines.last_event_ns
    }

    /// Edge events read so far.
    pub fn events(&self) -> u64 {
        self.lines.events
    }
}

impl PositionSensor for EdgeEncoder {
    type Error = Error;

    fn position(&mut self) -> Result<i32, SensorError<Error>> {
        let (bit_a, bit_b) = (self.bit_a, self.bit_b);
        let (mut a, mut b) = (self.a, self.b);
        let decoder = &mut self.decoder;
        let mut missed = false;
        let complete = self
            .lines
            .drain(|bit, rising| {
                if bit == bit_a {
                    a = rising;
                } else if bit == bit_b {
                    b = rising;
                }
                missed |= decoder.update(a, b).is_err();
            })
            .map_err(SensorError::Hw)?;
        (self.a, self.b) = (a, b);
        self.missed |= missed || !complete;
        if self.missed {
            return Err(SensorError::MissedEdge);
        }
        Ok(self.decoder.count())
    }
}

/// An input line whose level is followed through its edge events (the
/// home switch): one non-blocking `read(2)` per look.
#[derive(Debug)]
pub struct EdgeInput {
    lines: EventLines,
    level: Cell<bool>,
}

impl EdgeInput {
    /// Requests the line.
    pub fn request(chip: &Path, offset: Offset) -> Result<EdgeInput, String> {
        let lines = EventLines::request(chip, &[offset])?;
        let level = lines.levels()? & 1 != 0;
        Ok(EdgeInput {
            lines,
            level: Cell::new(level),
        })
    }
}

impl ErrorType for EdgeInput {
    type Error = Error;
}

impl InputPin for EdgeInput {
    fn is_high(&mut self) -> Result<bool, Error> {
        let mut level = self.level.get();
        // A lost event of a switch is harmless: the next one sets the level.
        self.lines.drain(|_, rising| level = rising)?;
        self.level.set(level);
        Ok(level)
    }
    fn is_low(&mut self) -> Result<bool, Error> {
        self.is_high().map(|h| !h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_specs() {
        assert_eq!(
            LineSpec::parse("encoder-a").unwrap(),
            LineSpec {
                chip: None,
                line: LineRef::Name("encoder-a".into())
            }
        );
        assert_eq!(
            LineSpec::parse("gpiochip2:18").unwrap(),
            LineSpec {
                chip: Some("gpiochip2".into()),
                line: LineRef::Offset(18)
            }
        );
        assert_eq!(
            LineSpec::parse("/dev/gpiochip0:home").unwrap(),
            LineSpec::named("/dev/gpiochip0", "home")
        );
        assert!(LineSpec::parse("").is_err());
        assert!(LineSpec::parse("chip:").is_err());
        assert!(LineSpec::parse(":3").is_err());
    }

    /// The host has no GPIO chips (and qemu-user none either): the error
    /// says what is missing.
    #[test]
    fn a_missing_chip_is_a_clear_error() {
        if std::path::Path::new("/dev/gpiochip0").exists() {
            eprintln!("SKIPPED: this machine has GPIO chips");
            return;
        }
        let e = find_line(&LineSpec::parse("home").unwrap(), plant::lines::CHIP_LABEL).unwrap_err();
        assert!(e.contains("no GPIO chip 'rtflex-plant'"), "{e}");
        assert!(e.contains("plant-sim"), "{e}");
    }
}
