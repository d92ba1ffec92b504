//! Counters and problem notes shared by every process of a run.
//!
//! The supervisor creates a memfd, maps it `MAP_SHARED` and puts it at
//! descriptor [`STATS_FD`] before it forks: forked processes share the
//! mapping, and processes that exec (the fuzzer's own image, the trusted
//! copy for Kernel Mode Linux) map the same descriptor again. Everything in
//! the page is atomic: many processes write it at once.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Descriptor of the statistics memfd in every process of a run.
pub const STATS_FD: i32 = 1001;
/// Descriptor of the fuzzer's own executable (`O_PATH`), for exec of itself
/// from inside the scratch chroot.
pub const EXE_FD: i32 = 1000;
/// Descriptor of a fuzzing process's `/proc/<pid>/maps`, opened before it
/// enters the chroot (which has no /proc), for crash reports.
pub const MAPS_FD: i32 = 1002;
/// The fuzzer's own descriptors, consecutive numbers: random calls never
/// name them.
pub const OWN_FDS: [i32; 3] = [EXE_FD, STATS_FD, MAPS_FD];
const _: () = assert!(EXE_FD + 1 == STATS_FD && STATS_FD + 1 == MAPS_FD);

/// What a counter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Calls made; each must have run at least once.
    Call,
    /// Lifecycle events; each must have happened at least once.
    Event,
    /// Kernel Mode Linux work: required only when a trusted copy is used.
    Kml,
    /// FlexSC calls and events: required only when the FlexSC part runs
    /// (a kernel without FlexSC, e.g. the KASAN variant, has none).
    Flexsc,
    /// Informational (may be zero).
    Info,
    /// A problem: any non-zero value fails the run.
    Problem,
}

macro_rules! counters {
    ($($id:ident = $name:literal, $class:ident, $doc:literal;)*) => {
        /// The counters of a run.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub enum C { $(#[doc = $doc] $id,)* }

        impl C {
            /// Every counter, in report order.
            pub const ALL: &'static [C] = &[$(C::$id,)*];

            /// Its name in the report.
            pub fn name(self) -> &'static str {
                match self { $(C::$id => $name,)* }
            }

            /// What it counts.
            pub fn class(self) -> Class {
                match self { $(C::$id => Class::$class,)* }
            }

            /// One line of description.
            pub fn doc(self) -> &'static str {
                match self { $(C::$id => $doc,)* }
            }
        }
    };
}

counters! {
    V2p = "vaddr_to_paddr", Call, "vaddr_to_paddr() calls";
    V2pOk = "vaddr_to_paddr.ok", Info, "... that translated an address";
    Register = "flexsc_register", Flexsc, "flexsc_register() calls";
    RegisterOk = "flexsc_register.ok", Flexsc, "... that mapped a region";
    Wait = "flexsc_wait", Flexsc, "flexsc_wait() calls";
    WaitEintr = "flexsc_wait.eintr", Flexsc, "... interrupted by a handled signal (EINTR)";
    Posted = "entry.posted", Flexsc, "entries posted by the claim protocol";
    Done = "entry.done", Flexsc, "... whose result was read back";
    Abandoned = "entry.abandoned", Info, "... given up on (bounded wait ran out)";
    Rewrite = "entry.rewrite", Flexsc, "rewrites of entries (random words, kernel-owned ones too)";
    CtrlWrite = "ctrl.write", Flexsc, "writes of control-page words";
    RegionMmop = "region.mm-op", Flexsc, "partial munmap, mremap, mprotect, madvise, mlock of a region";
    Dofork = "region.madv-dofork", Info, "MADV_DOFORK accepted on a region";
    Fork = "fork", Event, "fork() of a fuzzing process (the child uses the region address)";
    ChildRegister = "fork.child-register", Info, "forked children that registered their own region";
    Exec = "exec", Event, "exec of itself with calls in flight (counted by the new image)";
    ThreadExit = "thread-exit", Event, "fuzzing threads that exited while the process went on";
    MunmapInflight = "munmap-inflight", Flexsc, "munmap() of a region with entries in flight";
    RegionZapped = "region.zapped", Info, "regions replaced after MADV_DONTNEED (SIGBUS)";
    StopCont = "sigstop-sigcont", Event, "SIGSTOP then SIGCONT of a fuzzing process or child";
    Kill = "sigkill", Event, "SIGKILL of a fuzzing process or child";
    ExitGroup = "exit_group-inflight", Event, "exit_group() with calls in flight";
    LastThreadExit = "last-thread-exit", Event, "processes whose last user thread called exit() with a call blocked";
    Signal = "signal.sent", Event, "handled SIGUSR1 sent to a fuzzing thread";
    Processes = "processes", Info, "fuzzing processes started";
    KmlCall = "kml.call", Kml, "system calls through the [kml] trampoline with random registers";
    KmlJump = "kml.jump", Kml, "jumps into the [kml] page other than its entry (children that must die)";
    KmlSignaled = "kml.jump-signaled", Kml, "... that died with a signal as expected";
    Contract = "problem.contract", Problem, "results that break the documented contract";
    Crash = "problem.crash", Problem, "fuzzing processes that died unexpectedly";
    Overdue = "problem.overdue", Problem, "processes that did not end by themselves in time";
    Hang = "problem.hang", Problem, "processes not gone in time after SIGKILL (kernel hang)";
}

/// Number of counters.
pub const NCOUNTERS: usize = C::ALL.len();
/// Distinct problems kept with a note (by where they were found).
pub const NOTES: usize = 32;
/// Bytes per note.
pub const NOTE_LEN: usize = 160;
/// Slots for pids of the running fuzzing processes (vaddr_to_paddr targets).
pub const PID_SLOTS: usize = 16;
/// Long reports (the state behind a crash), kept besides the notes.
pub const DETAILS: usize = 4;
/// Bytes per long report.
pub const DETAIL_LEN: usize = 2048;

/// The shared page.
#[repr(C)]
pub struct Page {
    counters: [AtomicU64; NCOUNTERS],
    /// Pids of running fuzzing processes (0: free slot).
    pub pids: [AtomicI32; PID_SLOTS],
    /// Problems that found no free note slot.
    notes_overflow: AtomicU64,
    notes: [Note; NOTES],
    details: [Detail; DETAILS],
}

/// One long report: taken (non-zero) once, then its text.
#[repr(C)]
struct Detail {
    taken: AtomicU32,
    text: [AtomicU8; DETAIL_LEN],
}

/// One distinct problem: its key (0: free slot), how often it happened,
/// the text of its first occurrence.
#[repr(C)]
struct Note {
    key: AtomicU32,
    count: AtomicU64,
    text: [AtomicU8; NOTE_LEN],
}

/// Bytes to map for a [`Page`].
pub const MAP_LEN: usize = (core::mem::size_of::<Page>() + 4095) & !4095;

static PAGE: AtomicPtr<Page> = AtomicPtr::new(core::ptr::null_mut());

/// Creates the memfd at [`STATS_FD`] and maps it (supervisor).
pub fn create() -> std::io::Result<()> {
    // SAFETY: memfd_create with a NUL-terminated name; no memory handed over.
    let fd = unsafe { libc::memfd_create(c"sysfuzz-stats".as_ptr(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is our new memfd; ftruncate and dup2 only act on fds.
    unsafe {
        if libc::ftruncate(fd, MAP_LEN as libc::off_t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if fd != STATS_FD {
            if libc::dup2(fd, STATS_FD) != STATS_FD {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
        }
    }
    attach()
}

/// Maps the memfd at [`STATS_FD`] (inherited across exec).
pub fn attach() -> std::io::Result<()> {
    // SAFETY: a fresh shared mapping of our memfd, placed by the kernel
    // where nothing else is; the file is MAP_LEN bytes long.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            MAP_LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            STATS_FD,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    PAGE.store(p.cast(), Ordering::Release);
    Ok(())
}

/// The shared page; a private zeroed one if none was set up (unit tests).
pub fn page() -> &'static Page {
    let p = PAGE.load(Ordering::Acquire);
    if p.is_null() {
        static FALLBACK: std::sync::OnceLock<Box<Page>> = std::sync::OnceLock::new();
        // SAFETY: Page consists of atomics only, for which all-zero bytes
        // are valid values.
        return FALLBACK.get_or_init(|| Box::new(unsafe { core::mem::zeroed() }));
    }
    // SAFETY: PAGE points to a MAP_LEN-byte shared mapping made by
    // create()/attach() that is never unmapped by this program; Page is
    // atomics only, so concurrent writes by other processes are fine.
    unsafe { &*p }
}

/// Adds one to counter `c`.
pub fn add(c: C) {
    add_n(c, 1);
}

/// Adds `n` to counter `c`.
pub fn add_n(c: C, n: u64) {
    page().counters[c as usize].fetch_add(n, Ordering::Relaxed);
}

/// The value of counter `c`.
pub fn get(c: C) -> u64 {
    page().counters[c as usize].load(Ordering::Relaxed)
}

/// A fixed-size text buffer (no allocation: usable in forked children
/// and signal handlers).
pub struct Buf {
    bytes: [u8; NOTE_LEN],
    len: usize,
}

impl Buf {
    /// An empty buffer.
    pub const fn new() -> Buf {
        Buf {
            bytes: [0; NOTE_LEN],
            len: 0,
        }
    }

    /// The text written so far (truncated at NOTE_LEN bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for Buf {
    fn default() -> Self {
        Buf::new()
    }
}

impl Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(NOTE_LEN - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Counts problem `c` and keeps a note of its first occurrence. Problems
/// are told apart by where they were found (the caller's source line) and
/// `kind` (e.g. a system call number). No allocation.
#[track_caller]
pub fn problem_of(c: C, kind: u32, args: fmt::Arguments<'_>) {
    add(c);
    let at = core::panic::Location::caller();
    // FNV-1a over file and line, then the kind; never 0 (a free slot).
    let mut h: u32 = 0x811C_9DC5;
    for b in at
        .file()
        .bytes()
        .chain(at.line().to_ne_bytes())
        .chain(kind.to_ne_bytes())
    {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    let key = h | 1;
    let p = page();
    for n in &p.notes {
        let k = n.key.load(Ordering::Acquire);
        if k == key {
            n.count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if k == 0
            && n.key
                .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let mut b = Buf::new();
            let _ = write!(b, "[{}] ", c.name());
            let _ = b.write_fmt(args);
            for (i, slot) in n.text.iter().enumerate() {
                slot.store(b.as_bytes().get(i).copied().unwrap_or(0), Ordering::Relaxed);
            }
            n.count.fetch_add(1, Ordering::Release);
            return;
        }
    }
    p.notes_overflow.fetch_add(1, Ordering::Relaxed);
}

/// Writes a long report into a free detail slot (no allocation: usable in
/// signal handlers); returns its number, or None when all are taken.
pub fn detail(args: fmt::Arguments<'_>) -> Option<usize> {
    let p = page();
    let k = p.details.iter().position(|d| {
        d.taken
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })?;
    let mut w = DetailWriter {
        text: &p.details[k].text,
        len: 0,
    };
    let _ = w.write_fmt(args);
    Some(k)
}

/// Writes into a detail slot, truncating at its end.
struct DetailWriter<'a> {
    text: &'a [AtomicU8; DETAIL_LEN],
    len: usize,
}

impl Write for DetailWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            // The last byte stays 0: the end of the text.
            if self.len + 1 >= DETAIL_LEN {
                break;
            }
            self.text[self.len].store(b, Ordering::Relaxed);
            self.len += 1;
        }
        Ok(())
    }
}

/// The long reports written so far, by slot number.
pub fn details() -> Vec<(usize, String)> {
    page()
        .details
        .iter()
        .enumerate()
        .filter(|(_, d)| d.taken.load(Ordering::Acquire) != 0)
        .map(|(k, d)| {
            let bytes: Vec<u8> = d
                .text
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .take_while(|&b| b != 0)
                .collect();
            (k, String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

/// [`problem_of`] with no kind.
#[track_caller]
pub fn problem(c: C, args: fmt::Arguments<'_>) {
    problem_of(c, 0, args);
}

/// The distinct problems so far: (how often, first note), and how many
/// found no slot.
pub fn notes() -> (Vec<(u64, String)>, u64) {
    let p = page();
    let out = p
        .notes
        .iter()
        .filter(|n| n.key.load(Ordering::Acquire) != 0)
        .map(|n| {
            let bytes: Vec<u8> = n
                .text
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .take_while(|&b| b != 0)
                .collect();
            (
                n.count.load(Ordering::Acquire),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        })
        .collect();
    (out, p.notes_overflow.load(Ordering::Relaxed))
}

/// Publishes `pid` in a free pid slot (supervisor); returns the slot.
pub fn publish_pid(pid: i32) -> Option<usize> {
    let p = page();
    (0..PID_SLOTS).find(|&i| {
        p.pids[i]
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}

/// Frees the slot of `pid`.
pub fn withdraw_pid(pid: i32) {
    for s in &page().pids {
        let _ = s.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

const _: () = assert!(core::mem::size_of::<Page>() <= 4 * 4096);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_problems_are_last() {
        for (i, a) in C::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            assert!(!C::ALL[i + 1..].iter().any(|b| b.name() == a.name()));
            assert!(!a.doc().is_empty());
        }
        assert_eq!(C::ALL.last().unwrap().class(), Class::Problem);
    }

    #[test]
    fn buffers_truncate() {
        let mut b = Buf::new();
        for _ in 0..100 {
            let _ = write!(b, "abcdef");
        }
        assert_eq!(b.as_bytes().len(), NOTE_LEN);
        let mut b = Buf::new();
        let _ = write!(b, "x={}", 5);
        assert_eq!(b.as_bytes(), b"x=5");
    }

    #[test]
    fn details_are_kept_until_the_slots_run_out() {
        let mut got = Vec::new();
        for i in 0..DETAILS + 1 {
            got.push(detail(format_args!(
                "report {i}\nsecond line {}",
                "x".repeat(3000)
            )));
        }
        assert!(got[..DETAILS].iter().all(Option::is_some), "{got:?}");
        assert_eq!(got[DETAILS], None);
        let all = details();
        assert_eq!(all.len(), DETAILS);
        assert!(all[0].1.starts_with("report 0\nsecond line xxx"));
        assert_eq!(all[0].1.len(), DETAIL_LEN - 1);
    }

    #[test]
    fn problems_are_kept_once_per_place_and_kind() {
        for i in 0..3 {
            problem_of(C::Contract, 7, format_args!("first {i}"));
        }
        problem_of(C::Contract, 8, format_args!("other kind"));
        let (notes, overflow) = notes();
        assert_eq!(overflow, 0);
        assert!(
            notes.contains(&(3, "[problem.contract] first 0".to_string())),
            "{notes:?}"
        );
        assert!(notes.contains(&(1, "[problem.contract] other kind".to_string())));
        assert_eq!(get(C::Contract), 4);
    }
}
