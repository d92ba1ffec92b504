//! The FlexSC region of a fuzzing process, as its threads share it.
//!
//! Threads post into the region while other threads unmap it, replace it,
//! zap it or make it read-only. Instead of locking every access, the
//! process installs a SIGSEGV/SIGBUS handler ([`install_fault_handler`])
//! that repairs faults at addresses where a region is or was:
//!
//! * not mapped any more: map a zero page there (`MAP_FIXED_NOREPLACE`),
//!   the access is retried on it (a region this process unmaps itself is
//!   replaced at once by anonymous memory, [`retire`], so that nothing
//!   else of the process, such as a new thread's stack guard, is ever
//!   mapped where threads may still write);
//! * read-only (a fuzzing mprotect): make the region writable again;
//! * zapped (`MADV_DONTNEED`: the region has no fault handler, so the
//!   next access is SIGBUS): replace the whole region by anonymous memory,
//!   which releases it like munmap.
//!
//! So an address a thread took from [`current`] is always readable and
//! writable when it is used (the region, or a page the handler put there),
//! and entries are reached through atomics only. Faults anywhere else get
//! the default action (the process dies: a crash the supervisor reports).

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use rtflex_uapi::flexsc::{self as abi, Ctrl, Entry};
use std::sync::{Mutex, MutexGuard};

use crate::stats::{self, C};

/// `si_code` of a SIGSEGV on a mapped address without the permission.
const SEGV_ACCERR: i32 = 2;

static ADDR: AtomicUsize = AtomicUsize::new(0);
static LEN: AtomicUsize = AtomicUsize::new(0);
static GEN: AtomicU32 = AtomicU32::new(0);
/// Fault handlers running (a region may be changing under them).
static REPAIRING: AtomicU32 = AtomicU32::new(0);
/// Generation whose region was MADV_DOFORKed (a forked child may share it).
static DOFORK_GEN: AtomicU32 = AtomicU32::new(u32::MAX);

/// Serializes the operations that change which region is live: register,
/// munmap, mm operations on the region, fork (so a child sees a settled
/// region). Entry traffic does not take it. Taken through [`lock`].
static LOCK: Mutex<()> = Mutex::new(());
/// Bumped each time [`LOCK`] is taken: a fault at an address that faulted
/// before, with no region change in between, is one the handler could not
/// repair; one after a change (e.g. a second mprotect to read-only) is new.
static EPOCH: AtomicU32 = AtomicU32::new(0);

/// Takes the region lock (see [`LOCK`]) for an operation that may change
/// the region or its protection.
pub fn lock() -> MutexGuard<'static, ()> {
    let g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    EPOCH.fetch_add(1, Ordering::AcqRel);
    g
}

const NRANGES: usize = 32;
/// Every range a region of this process ever had (start, end): faults there
/// are repaired.
static RANGES: [(AtomicUsize, AtomicUsize); NRANGES] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; NRANGES];
static NEXT_RANGE: AtomicUsize = AtomicUsize::new(0);

/// Most entries a region can have.
pub const MAX_ENTRIES: usize = abi::MAX_PAGES as usize * abi::ENTRIES_PER_PAGE;

/// Per entry: bumped (to odd) before and (to even) after any rewrite that
/// does not follow the claim protocol, so the poster can tell whether its
/// entry was tampered with.
pub static TAMPER: [AtomicU32; MAX_ENTRIES] = [const { AtomicU32::new(0) }; MAX_ENTRIES];

/// A region as one thread saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snap {
    /// Start (the control page).
    pub addr: usize,
    /// Length in bytes.
    pub len: usize,
    /// Generation: changes whenever a region comes or goes.
    pub gen: u32,
}

impl Snap {
    /// Number of entries.
    pub fn nentries(&self) -> usize {
        (self.len / abi::PAGE_SIZE - 1) * abi::ENTRIES_PER_PAGE
    }

    /// Entry `i` (< nentries).
    pub fn entry(&self, i: usize) -> &'static Entry {
        debug_assert!(i < self.nentries());
        // SAFETY: the address lies in a range that is a region or was one;
        // such addresses are always accessible: the region's shared pages
        // (which the kernel writes concurrently: Entry is atomics only), or
        // after the region went away a page the fault handler maps before
        // the faulting access is retried. Entry is 64-byte aligned there.
        unsafe { &*((self.addr + abi::PAGE_SIZE + i * 64) as *const Entry) }
    }

    /// Entry `i` as its sixteen 32-bit words.
    pub fn words(&self, i: usize) -> &'static [AtomicU32; 16] {
        debug_assert!(i < self.nentries());
        // SAFETY: as for entry(): 64 always-accessible bytes, written
        // concurrently by the kernel, reached through atomics only.
        unsafe { &*((self.addr + abi::PAGE_SIZE + i * 64) as *const [AtomicU32; 16]) }
    }

    /// The control page as 32-bit words.
    pub fn ctrl_words(&self) -> &'static [AtomicU32; 1024] {
        // SAFETY: as for entry(): the whole control page is always
        // accessible and only reached through atomics.
        unsafe { &*(self.addr as *const [AtomicU32; 1024]) }
    }

    /// The control page.
    pub fn ctrl(&self) -> &'static Ctrl {
        // SAFETY: as for entry(): the region start is always accessible;
        // Ctrl is atomics only and page aligned there.
        unsafe { &*(self.addr as *const Ctrl) }
    }

    /// Whether this is still the live region.
    pub fn is_current(&self) -> bool {
        GEN.load(Ordering::Acquire) == self.gen && ADDR.load(Ordering::Acquire) == self.addr
    }

    /// Whether a forked child may share this region (MADV_DOFORK was
    /// accepted for it): its rewrites are then not tracked.
    pub fn maybe_shared(&self) -> bool {
        DOFORK_GEN.load(Ordering::Acquire) == self.gen
    }
}

/// The live region, if any.
pub fn current() -> Option<Snap> {
    let gen = GEN.load(Ordering::Acquire);
    let addr = ADDR.load(Ordering::Acquire);
    let len = LEN.load(Ordering::Acquire);
    if addr == 0 || len < 2 * abi::PAGE_SIZE {
        return None;
    }
    Some(Snap { addr, len, gen })
}

/// Records a newly registered region (with [`LOCK`] held).
pub fn set(addr: usize, npages: u32) {
    let len = abi::region_len(npages);
    let k = NEXT_RANGE.fetch_add(1, Ordering::AcqRel) % NRANGES;
    RANGES[k].0.store(addr, Ordering::Release);
    RANGES[k].1.store(addr + len, Ordering::Release);
    LEN.store(len, Ordering::Release);
    ADDR.store(addr, Ordering::Release);
    GEN.fetch_add(1, Ordering::AcqRel);
}

/// Records that region `addr` is gone (with [`LOCK`] held, or from the
/// fault handler). Returns false if it was not the live one.
pub fn clear(addr: usize) -> bool {
    if ADDR
        .compare_exchange(addr, 0, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        GEN.fetch_add(1, Ordering::AcqRel);
        true
    } else {
        false
    }
}

/// Records that region `s` was unmapped by this process (with [`LOCK`]
/// held) and keeps its address range occupied: anonymous read-write
/// memory goes where it was, so no later mapping of this process (a new
/// thread's stack and guard page, a heap arena) can land there while
/// threads that took `s` earlier may still write to it. Every range a
/// region had stays ours for the life of the process (at most one region
/// size per registration).
pub fn retire(s: &Snap) {
    // SAFETY: MAP_FIXED_NOREPLACE only fills the hole the region left (it
    // fails, changing nothing, where something is mapped).
    unsafe { map_anon(s.addr, s.len, libc::MAP_FIXED_NOREPLACE) };
    clear(s.addr);
}

/// Marks the live region as possibly shared with forked children.
pub fn set_dofork(s: &Snap) {
    DOFORK_GEN.store(s.gen, Ordering::Release);
}

/// True while no fault handler is repairing anything and the generation is
/// `gen`: the caller's view of the region is settled.
pub fn settled(gen: u32) -> bool {
    REPAIRING.load(Ordering::Acquire) == 0 && GEN.load(Ordering::Acquire) == gen
}

/// The generation now.
pub fn generation() -> u32 {
    GEN.load(Ordering::Acquire)
}

fn in_ranges(a: usize) -> bool {
    RANGES.iter().any(|(s, e)| {
        let (s, e) = (s.load(Ordering::Acquire), e.load(Ordering::Acquire));
        s != 0 && a >= s && a < e
    })
}

thread_local! {
    /// Last fault of this thread (address, region epoch) and how often it
    /// repeated with nothing changed in between.
    static REPEAT: core::cell::Cell<(usize, u32, u32)> = const { core::cell::Cell::new((0, 0, 0)) };
}

/// The line of /proc/self/maps that covers `addr` (or what could be read),
/// for a crash report: from a signal handler, so no allocation, raw reads
/// into `buf`.
fn maps_line(addr: usize, buf: &mut [u8; 4096]) -> &str {
    // SAFETY: open/read/close on a NUL-terminated path and our own buffer;
    // all three are async-signal-safe.
    let fd = unsafe {
        libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return "";
    }
    let mut line = [0u8; 256];
    let mut len = 0;
    let mut found = 0;
    'read: loop {
        // SAFETY: reads at most buf.len() bytes into buf.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        for &b in &buf[..n as usize] {
            if b != b'\n' {
                if len < line.len() {
                    line[len] = b;
                    len += 1;
                }
                continue;
            }
            if covers(&line[..len], addr) {
                found = len;
                break 'read;
            }
            len = 0;
        }
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    buf[..found].copy_from_slice(&line[..found]);
    core::str::from_utf8(&buf[..found]).unwrap_or("")
}

/// Whether a maps line "start-end perms ..." covers `addr`.
fn covers(line: &[u8], addr: usize) -> bool {
    let hex = |s: &[u8]| {
        s.iter().try_fold(0usize, |v, &c| {
            let d = (c as char).to_digit(16)?;
            v.checked_mul(16)?.checked_add(d as usize)
        })
    };
    let Some(range) = line.split(|&c| c == b' ').next() else {
        return false;
    };
    let mut parts = range.splitn(2, |&c| c == b'-');
    match (parts.next().and_then(hex), parts.next().and_then(hex)) {
        (Some(s), Some(e)) => addr >= s && addr < e,
        _ => false,
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers;
    // si_addr is the union member of SIGSEGV and SIGBUS.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    // The same address faulting again and again (a stale range now holds
    // something we cannot repair, e.g. a guard page): give up on it.
    let epoch = EPOCH.load(Ordering::Acquire);
    let again = REPEAT.with(|r| {
        let (last, last_epoch, n) = r.get();
        let n = if last == addr && last_epoch == epoch {
            n + 1
        } else {
            0
        };
        r.set((addr, epoch, n));
        n
    });
    if !in_ranges(addr) || again > 8 {
        // Not ours: default action, the access faults again and kills us.
        // SAFETY: resetting the disposition of a signal we handle.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
        let mut buf = [0u8; 4096];
        stats::problem(
            C::Crash,
            format_args!(
                "pid {}: signal {sig} (code {code}) at {addr:#x}{} (maps: {})",
                pid(),
                if again > 8 { ", not repairable" } else { "" },
                maps_line(addr, &mut buf)
            ),
        );
        return;
    }
    REPAIRING.fetch_add(1, Ordering::AcqRel);
    let live = current().filter(|s| addr >= s.addr && addr < s.addr + s.len);
    match (sig, code, live) {
        (libc::SIGSEGV, SEGV_ACCERR, Some(s)) => {
            // SAFETY: the live region is a shared read-write mapping a
            // fuzzing thread made read-only; giving the permission back
            // changes no contents.
            unsafe {
                libc::mprotect(
                    s.addr as *mut libc::c_void,
                    s.len,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
        }
        (libc::SIGBUS, _, Some(s)) => {
            // Zapped: replace the whole region (releasing it).
            // SAFETY: MAP_FIXED over exactly the region's range, which only
            // this program uses through atomics; every later access finds
            // zeroed anonymous memory.
            let r = unsafe { map_anon(s.addr, s.len, libc::MAP_FIXED) };
            if r != libc::MAP_FAILED {
                clear(s.addr);
                stats::add(C::RegionZapped);
            }
        }
        _ => {
            // Unmapped (or a stale range): a zero page, unless something
            // was mapped there meanwhile (then the retry simply hits it).
            let page = addr & !(abi::PAGE_SIZE - 1);
            // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping: it
            // fills only the hole the access faulted on.
            unsafe { map_anon(page, abi::PAGE_SIZE, libc::MAP_FIXED_NOREPLACE) };
        }
    }
    REPAIRING.fetch_sub(1, Ordering::AcqRel);
}

/// Private anonymous read-write memory at `addr`..`addr + len` (`fixed`:
/// MAP_FIXED or MAP_FIXED_NOREPLACE); MAP_FAILED if it could not be mapped.
///
/// # Safety
///
/// With MAP_FIXED, nothing that Rust code refers to may lie in the range
/// (it is replaced by zeroes).
unsafe fn map_anon(addr: usize, len: usize, fixed: libc::c_int) -> *mut libc::c_void {
    // SAFETY: the caller vouches for the range (see above); mmap itself
    // only changes this process's mappings.
    unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | fixed,
            -1,
            0,
        )
    }
}

fn pid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Installs the repairing handler for SIGSEGV and SIGBUS.
pub fn install_fault_handler() {
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: a zeroed sigaction with our SA_SIGINFO handler (an extern
        // "C" fn with the three-argument signature) and an empty mask.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, core::ptr::null_mut());
        }
    }
}
