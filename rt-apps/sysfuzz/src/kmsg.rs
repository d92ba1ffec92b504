//! New kernel log records, from `/dev/kmsg`: the reader starts at the end
//! of the log and returns only what the kernel logs afterwards.

use std::io;

/// A reader of `/dev/kmsg` positioned at the end of the log when opened.
pub struct Kmsg {
    fd: i32,
    /// Records the kernel overwrote before we read them.
    pub lost: u64,
}

impl Kmsg {
    /// Opens `/dev/kmsg` (non-blocking) at the end of the log.
    pub fn open() -> io::Result<Kmsg> {
        // SAFETY: open with a NUL-terminated path; lseek on the new fd.
        unsafe {
            let fd = libc::open(
                c"/dev/kmsg".as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::lseek(fd, 0, libc::SEEK_END);
            Ok(Kmsg { fd, lost: 0 })
        }
    }

    /// The text of every record logged since the last call (one line each;
    /// continuation lines of a record follow it, indented).
    pub fn read_new(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: reading one record into our buffer.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                out.extend(record_lines(&buf[..n as usize]));
                continue;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EPIPE) => self.lost += 1, // overwritten: go on
                Some(libc::EINTR) => {}
                _ => break, // EAGAIN: nothing more
            }
        }
        out
    }
}

impl Drop for Kmsg {
    fn drop(&mut self) {
        // SAFETY: closing our descriptor once.
        unsafe { libc::close(self.fd) };
    }
}

/// The lines of one `/dev/kmsg` record ("prio,seq,ts,flags;text\n" plus
/// " KEY=value" dictionary lines, which are dropped).
pub fn record_lines(rec: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(rec);
    let mut lines = text.lines();
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let (prefix, msg) = first.split_once(';').unwrap_or(("", first));
    let ts = prefix
        .split(',')
        .nth(2)
        .and_then(|us| us.parse::<u64>().ok())
        .map(|us| format!("[{:5}.{:06}] ", us / 1_000_000, us % 1_000_000))
        .unwrap_or_default();
    vec![format!("{ts}{}", unescape(msg))]
}

/// /dev/kmsg escapes non-printable bytes as \xNN.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            if let Some(v) = std::str::from_utf8(&b[i + 2..i + 4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(if v == b'\n' { ' ' } else { v as char });
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_dmesg_lines() {
        let l = record_lines(b"4,123,5000123,-;WARNING: CPU: 0 PID: 1 at x.c:1 f\n SUBSYSTEM=x\n");
        assert_eq!(l, ["[    5.000123] WARNING: CPU: 0 PID: 1 at x.c:1 f"]);
        assert_eq!(record_lines(b"6,1,0,-;a\\x0ab"), ["[    0.000000] a b"]);
        assert!(guest_tests::is_kernel_problem(&l[0]));
    }
}
