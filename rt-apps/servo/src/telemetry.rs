//! The telemetry log: a header, then one fixed-size record per control
//! cycle, all little-endian.
//!
//! Header ([`HEADER_SIZE`] bytes):
//!
//! | offset | type | field |
//! |---|---|---|
//! | 0 | 8 bytes | magic `RTFLXSRV` |
//! | 8 | u16 | format version ([`VERSION`]) |
//! | 10 | u16 | header size |
//! | 12 | u16 | record size |
//! | 14 | u16 | how records were written ([`LogVia`] code) |
//! | 16 | u64 | control period (ns) |
//! | 24 | u64 | start time (ns, `CLOCK_MONOTONIC`) |
//! | 32 | 4 x f32 | kp, ki, kd, output limit |
//! | 48 | 16 bytes | zero |
//!
//! Record ([`RECORD_SIZE`] bytes):
//!
//! | offset | type | field |
//! |---|---|---|
//! | 0 | u32 | cycle number (0, 1, 2, ...: a gap is a lost record) |
//! | 4 | u8 | state (0 idle, 1 homing, 2 run, 3 fault) |
//! | 5 | u8 | fault (0 none, 1 encoder loss, 2 saturated, 3 homing timeout, 4 encoder error, 5 hardware) |
//! | 6 | u16 | flags: bit 0 this cycle overran (woke a period or more late), bit 1 outputs driven |
//! | 8 | u64 | wake-up time (ns, `CLOCK_MONOTONIC`) |
//! | 16 | f32 | setpoint (counts) |
//! | 20 | i32 | position (counts) |
//! | 24 | f32 | output (signed duty, -1..1) |
//! | 28 | u32 | wake-up latency (ns) |
//! | 32 | u32 | compute time: wake-up to outputs written (ns) |
//! | 36 | u32 | the previous cycle's loop time: its wake-up to its record handed to the log path (ns; 0 in cycle 0) |
//! | 40 | u32 | records lost before this one (cumulative) |
//! | 44 | u32 | missed periods before and in this cycle (cumulative overruns) |

/// Log format version.
pub const VERSION: u16 = 1;
/// Bytes of the header.
pub const HEADER_SIZE: usize = 64;
/// Bytes of a record.
pub const RECORD_SIZE: usize = 48;
/// The header's first bytes.
pub const MAGIC: [u8; 8] = *b"RTFLXSRV";

/// Record flag: this cycle woke a period or more late.
pub const FLAG_OVERRUN: u16 = 1;
/// Record flag: the outputs were driven (not in the safe state).
pub const FLAG_DRIVEN: u16 = 2;

/// How the records reached the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogVia {
    /// `write(2)` in the control loop.
    Direct,
    /// A queue to a SCHED_OTHER logger thread.
    Thread,
    /// io_uring submissions, without waiting.
    IoUring,
    /// io_uring with a kernel submission-polling thread (SQPOLL).
    IoUringSqpoll,
    /// FlexSC post-and-forget writes.
    FlexSc,
}

impl LogVia {
    /// Code in the header.
    pub fn code(self) -> u16 {
        match self {
            LogVia::Direct => 0,
            LogVia::Thread => 1,
            LogVia::IoUring => 2,
            LogVia::IoUringSqpoll => 3,
            LogVia::FlexSc => 4,
        }
    }

    /// The path of a header code.
    pub fn from_code(code: u16) -> Option<LogVia> {
        Some(match code {
            0 => LogVia::Direct,
            1 => LogVia::Thread,
            2 => LogVia::IoUring,
            3 => LogVia::IoUringSqpoll,
            4 => LogVia::FlexSc,
            _ => return None,
        })
    }

    /// The name `--log-via` takes (`io_uring+sqpoll` for the SQPOLL ring).
    pub fn name(self) -> &'static str {
        match self {
            LogVia::Direct => "direct",
            LogVia::Thread => "thread",
            LogVia::IoUring => "io_uring",
            LogVia::IoUringSqpoll => "io_uring+sqpoll",
            LogVia::FlexSc => "flexsc",
        }
    }
}

/// The log header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    pub via: LogVia,
    pub period_ns: u64,
    pub start_ns: u64,
    pub kp: f32,
    pub ki: f32,
    pub kd: f32,
    pub limit: f32,
}

/// A log that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than a header.
    Short,
    /// Not a servo log.
    Magic,
    /// A format version this program does not know.
    Version(u16),
    /// Header or record size other than this version's.
    Layout,
    /// Unknown log path code.
    Via(u16),
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from(u32_at(b, o)) | (u64::from(u32_at(b, o + 4)) << 32)
}
fn f32_at(b: &[u8], o: usize) -> f32 {
    f32::from_bits(u32_at(b, o))
}
fn put(b: &mut [u8], o: usize, v: &[u8]) {
    b[o..o + v.len()].copy_from_slice(v);
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        put(&mut b, 0, &MAGIC);
        put(&mut b, 8, &VERSION.to_le_bytes());
        put(&mut b, 10, &(HEADER_SIZE as u16).to_le_bytes());
        put(&mut b, 12, &(RECORD_SIZE as u16).to_le_bytes());
        put(&mut b, 14, &self.via.code().to_le_bytes());
        put(&mut b, 16, &self.period_ns.to_le_bytes());
        put(&mut b, 24, &self.start_ns.to_le_bytes());
        put(&mut b, 32, &self.kp.to_le_bytes());
        put(&mut b, 36, &self.ki.to_le_bytes());
        put(&mut b, 40, &self.kd.to_le_bytes());
        put(&mut b, 44, &self.limit.to_le_bytes());
        b
    }

    /// Reads a header from the start of a log.
    pub fn decode(b: &[u8]) -> Result<Header, DecodeError> {
        if b.len() < HEADER_SIZE {
            return Err(DecodeError::Short);
        }
        if b[..8] != MAGIC {
            return Err(DecodeError::Magic);
        }
        let version = u16_at(b, 8);
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        if usize::from(u16_at(b, 10)) != HEADER_SIZE || usize::from(u16_at(b, 12)) != RECORD_SIZE {
            return Err(DecodeError::Layout);
        }
        let code = u16_at(b, 14);
        Ok(Header {
            via: LogVia::from_code(code).ok_or(DecodeError::Via(code))?,
            period_ns: u64_at(b, 16),
            start_ns: u64_at(b, 24),
            kp: f32_at(b, 32),
            ki: f32_at(b, 36),
            kd: f32_at(b, 40),
            limit: f32_at(b, 44),
        })
    }
}

/// One control cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Record {
    pub cycle: u32,
    pub state: u8,
    pub fault: u8,
    pub flags: u16,
    pub time_ns: u64,
    pub setpoint: f32,
    pub position: i32,
    pub output: f32,
    pub latency_ns: u32,
    pub compute_ns: u32,
    pub prev_loop_ns: u32,
    pub lost: u32,
    pub overruns: u32,
}

impl Record {
    /// The record's bytes.
    #[inline]
    pub fn encode(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        put(&mut b, 0, &self.cycle.to_le_bytes());
        b[4] = self.state;
        b[5] = self.fault;
        put(&mut b, 6, &self.flags.to_le_bytes());
        put(&mut b, 8, &self.time_ns.to_le_bytes());
        put(&mut b, 16, &self.setpoint.to_le_bytes());
        put(&mut b, 20, &self.position.to_le_bytes());
        put(&mut b, 24, &self.output.to_le_bytes());
        put(&mut b, 28, &self.latency_ns.to_le_bytes());
        put(&mut b, 32, &self.compute_ns.to_le_bytes());
        put(&mut b, 36, &self.prev_loop_ns.to_le_bytes());
        put(&mut b, 40, &self.lost.to_le_bytes());
        put(&mut b, 44, &self.overruns.to_le_bytes());
        b
    }

    /// A record from its bytes.
    pub fn decode(b: &[u8; RECORD_SIZE]) -> Record {
        Record {
            cycle: u32_at(b, 0),
            state: b[4],
            fault: b[5],
            flags: u16_at(b, 6),
            time_ns: u64_at(b, 8),
            setpoint: f32_at(b, 16),
            position: u32_at(b, 20) as i32,
            output: f32_at(b, 24),
            latency_ns: u32_at(b, 28),
            compute_ns: u32_at(b, 32),
            prev_loop_ns: u32_at(b, 36),
            lost: u32_at(b, 40),
            overruns: u32_at(b, 44),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = Header {
            via: LogVia::IoUringSqpoll,
            period_ns: 1_000_000,
            start_ns: 0x0123_4567_89ab_cdef,
            kp: 0.04,
            ki: 0.02,
            kd: 0.0015,
            limit: 0.9,
        };
        let b = h.encode();
        assert_eq!(&b[..8], b"RTFLXSRV");
        assert_eq!(Header::decode(&b), Ok(h));
        assert_eq!(Header::decode(&b[..63]), Err(DecodeError::Short));
        let mut bad = b;
        bad[0] = b'X';
        assert_eq!(Header::decode(&bad), Err(DecodeError::Magic));
        let mut bad = b;
        bad[8] = 2;
        assert_eq!(Header::decode(&bad), Err(DecodeError::Version(2)));
        let mut bad = b;
        bad[12] = 40;
        assert_eq!(Header::decode(&bad), Err(DecodeError::Layout));
        let mut bad = b;
        bad[14] = 9;
        assert_eq!(Header::decode(&bad), Err(DecodeError::Via(9)));
        for code in 0..5 {
            assert_eq!(LogVia::from_code(code).unwrap().code(), code);
        }
    }

    #[test]
    fn record_round_trip_at_known_offsets() {
        let r = Record {
            cycle: 0xdead_beef,
            state: 2,
            fault: 0,
            flags: FLAG_DRIVEN | FLAG_OVERRUN,
            time_ns: 1 << 40,
            setpoint: -12.5,
            position: -13,
            output: -0.25,
            latency_ns: 12_345,
            compute_ns: 6_789,
            prev_loop_ns: 9_999,
            lost: 3,
            overruns: 4,
        };
        let b = r.encode();
        assert_eq!(Record::decode(&b), r);
        assert_eq!(&b[0..4], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(&b[20..24], &(-13i32).to_le_bytes());
        assert_eq!(&b[44..48], &4u32.to_le_bytes());
        assert_eq!(b[6], 3);
    }
}
