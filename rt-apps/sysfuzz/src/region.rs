//! The FlexSC region of a fuzzing process, as its threads share it.
//!
//! Threads post into the region while other threads unmap it, zap it or
//! make it read-only, and the kernel's syscall threads write it all the
//! time. Three rules keep every access of the fuzzer's own threads valid:
//!
//! * A thread touches region memory only while it holds an [`Access`]
//!   ([`access`] refuses once the region is not the live one any more).
//!   Unmapping first takes the region out of use ([`take_out_of_use`]),
//!   waits until no [`Access`] is left, and only then unmaps it
//!   ([`unmap_now`]). So no thread touches a range after its munmap: any
//!   other mapping of the process may take the hole meanwhile. (Rust gives
//!   each new thread a 12 KiB signal stack whose first page is a guard page;
//!   with seed 11 on 2026-12-05 a thread that still wrote through its old
//!   view of an unmapped region wrote into such a stack and died on its
//!   guard page.) The range is then filled with anonymous memory
//!   ([`retire`]), where a forked child writes on purpose.
//! * Faults the fuzzer causes itself are repaired by a SIGSEGV/SIGBUS
//!   handler ([`install_fault_handler`]): read-only (a fuzzing mprotect):
//!   the region is made writable again; zapped (`MADV_DONTNEED`: the region
//!   has no fault handler, so the next access is SIGBUS): the whole region
//!   is replaced by anonymous memory, which releases it like munmap; not
//!   mapped where a region was (a forked child's writes): a zero page.
//! * The system calls that change what is mapped in a region's range or
//!   its protection (the fuzzing mm operations, unmapping, the handler's
//!   repairs, fork) run one at a time ([`mm`]) and check first that the
//!   region is still the one they looked at: a repair never falls between
//!   an operation's look at the region and its system call.
//!
//! Any other fault, or the same fault again with nothing changed in
//! between, is not the fuzzer's own doing: the process reports it, with
//! the log of its region changes and the kernel's view of the mapping, and
//! dies (a crash the supervisor fails the run for).

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};
use rtflex_uapi::flexsc::{self as abi, Ctrl, Entry};
use std::sync::{Mutex, MutexGuard};

use crate::stats::{self, C, MAPS_FD};

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

/// Accesses to region memory in progress (see [`Access`]).
static USERS: AtomicU32 = AtomicU32::new(0);
/// Generation of the region being taken out of use: no new [`Access`] to
/// it, but it stays the live region (for the fault handler) until it is
/// unmapped.
static CLOSING: AtomicU32 = AtomicU32::new(u32::MAX);

/// Permission to touch the memory of one region: while one exists, this
/// process does not unmap the region (it may still be zapped, made
/// read-only or replaced by anonymous memory: the fault handler repairs
/// those). Hold it only for bounded work: [`take_out_of_use`] waits for it.
pub struct Access(());

impl Drop for Access {
    fn drop(&mut self) {
        USERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An [`Access`] to region `s`, if it is still the live region and not
/// being taken out of use.
pub fn access(s: &Snap) -> Option<Access> {
    // Counted before the check, and take_out_of_use() marks the region
    // before it reads the count (all sequentially consistent): either it
    // sees this access, or this check sees the mark.
    USERS.fetch_add(1, Ordering::SeqCst);
    let a = Access(());
    let gen = GEN.load(Ordering::SeqCst);
    (gen == s.gen && ADDR.load(Ordering::SeqCst) == s.addr && CLOSING.load(Ordering::SeqCst) != gen)
        .then_some(a)
}

/// Takes region `s` out of use (with [`LOCK`] held) before it is unmapped:
/// no new [`Access`] to it, and the ones that began earlier have ended. It
/// stays the live region until [`unmap_now`]: an access that began earlier
/// may still fault on it (zapped, read-only), and the fault handler repairs
/// that as for any live region.
pub fn take_out_of_use(s: &Snap) {
    CLOSING.store(s.gen, Ordering::SeqCst);
    while USERS.load(Ordering::SeqCst) != 0 {
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
}

/// munmap of region `s`, taken out of use before ([`take_out_of_use`]);
/// its range is kept with anonymous memory ([`retire`]). Err: munmap's
/// errno.
pub fn unmap_now(s: &Snap) -> Result<(), i32> {
    let _m = mm();
    // SAFETY: no thread of this process touches the range any more (it
    // was taken out of use); the range holds no Rust object.
    let r = match unsafe { libc::munmap(s.addr as *mut libc::c_void, s.len) } {
        0 => Ok(()),
        _ => Err(rt_utils::sys::errno()),
    };
    log(What::Unmap, s.addr, s.len, 0, r.is_ok());
    retire(s);
    r
}

/// Tid of the thread that changes the mapping or protection of a region
/// range now (0: none); taken with [`mm`].
static MM: AtomicI32 = AtomicI32::new(0);

/// Held while this thread changes the mapping or protection of a region
/// range (see [`mm`]).
pub struct MmGuard(());

impl Drop for MmGuard {
    fn drop(&mut self) {
        MM.store(0, Ordering::Release);
    }
}

/// Waits until no other thread changes a region range's mapping or
/// protection and keeps them from doing so until the guard is dropped.
/// While holding it a thread must not touch region memory (a fault handler
/// of another thread may be waiting for it). None: this thread holds it
/// already (only a fault handler can see that: a fault while changing a
/// mapping).
pub fn mm() -> Option<MmGuard> {
    let me = rt_utils::sys::gettid();
    loop {
        match MM.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(MmGuard(())),
            Err(owner) if owner == me => return None,
            // SAFETY: sched_yield has no preconditions.
            Err(_) => unsafe {
                libc::sched_yield();
            },
        }
    }
}

/// In a forked child, first thing: its parent's other threads do not exist
/// here, so none of their accesses, repairs or mapping changes is in
/// progress.
pub fn forked_child() {
    MM.store(0, Ordering::Release);
    USERS.store(0, Ordering::SeqCst);
    REPAIRING.store(0, Ordering::Release);
}

const NRANGES: usize = 32;
/// Every range a region of this process ever had (start, end), the last
/// [`NRANGES`]: the fault handler repairs faults there only (any other
/// fault is not the fuzzer's own doing).
static RANGES: [(AtomicUsize, AtomicUsize); NRANGES] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; NRANGES];
static NEXT_RANGE: AtomicUsize = AtomicUsize::new(0);

/// What this process did to a region range (the log of crash reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum What {
    /// flexsc_register mapped a region here.
    Register = 1,
    /// munmap of the whole region.
    Unmap,
    /// Anonymous memory put where an unmapped region was ([`retire`]).
    Retire,
    /// mprotect(PROT_READ) of the region.
    ProtRead,
    /// mprotect(PROT_READ | PROT_WRITE | PROT_EXEC) of the region.
    ProtExec,
    /// munmap of one page of the region (must fail: no split).
    UnmapPage,
    /// mremap of the region (must fail).
    Remap,
    /// madvise of the region (`arg`: the advice).
    Advise,
    /// Fault handler: mprotect back to read-write after a write fault.
    FixWrite,
    /// Fault handler: the zapped region replaced by anonymous memory.
    ReplaceZapped,
    /// Fault handler: a zero page where nothing was mapped.
    ZeroPage,
}

impl What {
    fn from_u32(v: u32) -> Option<What> {
        use What::*;
        [
            Register,
            Unmap,
            Retire,
            ProtRead,
            ProtExec,
            UnmapPage,
            Remap,
            Advise,
            FixWrite,
            ReplaceZapped,
            ZeroPage,
        ]
        .into_iter()
        .find(|w| *w as u32 == v)
    }
}

/// One entry of the log: `seq` is its number plus one (0: empty), written
/// last.
struct Event {
    seq: AtomicU32,
    what: AtomicU32,
    addr: AtomicUsize,
    len: AtomicUsize,
    arg: AtomicU32,
    /// The system call's result: 0, or an errno.
    err: AtomicI32,
    epoch: AtomicU32,
    tid: AtomicI32,
}

const NEVENTS: usize = 24;
/// The last [`NEVENTS`] changes of region ranges, for crash reports.
static EVENTS: [Event; NEVENTS] = [const {
    Event {
        seq: AtomicU32::new(0),
        what: AtomicU32::new(0),
        addr: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        arg: AtomicU32::new(0),
        err: AtomicI32::new(0),
        epoch: AtomicU32::new(0),
        tid: AtomicI32::new(0),
    }
}; NEVENTS];
static NEXT_EVENT: AtomicU32 = AtomicU32::new(0);

/// Logs a change of a region range: `ok` is the outcome of the system
/// call, whose errno is taken when it failed. No allocation, no lock:
/// usable in the fault handler.
pub fn log(what: What, addr: usize, len: usize, arg: u32, ok: bool) {
    let err = if ok { 0 } else { rt_utils::sys::errno() };
    let n = NEXT_EVENT.fetch_add(1, Ordering::AcqRel);
    let e = &EVENTS[n as usize % NEVENTS];
    e.seq.store(0, Ordering::Release);
    e.what.store(what as u32, Ordering::Relaxed);
    e.addr.store(addr, Ordering::Relaxed);
    e.len.store(len, Ordering::Relaxed);
    e.arg.store(arg, Ordering::Relaxed);
    e.err.store(err, Ordering::Relaxed);
    e.epoch
        .store(EPOCH.load(Ordering::Relaxed), Ordering::Relaxed);
    e.tid.store(rt_utils::sys::gettid(), Ordering::Relaxed);
    e.seq.store(n.wrapping_add(1), Ordering::Release);
}

/// Writes the log, oldest first, one line per change.
fn write_log(w: &mut dyn core::fmt::Write) -> core::fmt::Result {
    let next = NEXT_EVENT.load(Ordering::Acquire);
    for n in next.saturating_sub(NEVENTS as u32)..next {
        let e = &EVENTS[n as usize % NEVENTS];
        if e.seq.load(Ordering::Acquire) != n.wrapping_add(1) {
            continue; // being rewritten
        }
        let what = e.what.load(Ordering::Relaxed);
        let (addr, len) = (
            e.addr.load(Ordering::Relaxed),
            e.len.load(Ordering::Relaxed),
        );
        write!(
            w,
            "\n    #{n} epoch {} tid {}: ",
            e.epoch.load(Ordering::Relaxed),
            e.tid.load(Ordering::Relaxed),
        )?;
        match What::from_u32(what) {
            Some(what) => write!(w, "{what:?}")?,
            None => write!(w, "?{what}")?,
        }
        write!(w, " {addr:#x}+{len:#x}")?;
        let arg = e.arg.load(Ordering::Relaxed);
        if arg != 0 {
            write!(w, " arg {arg}")?;
        }
        match e.err.load(Ordering::Relaxed) {
            0 => write!(w, ": ok")?,
            err => write!(w, ": errno {err}")?,
        }
    }
    Ok(())
}

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

    /// Entry `i` (< nentries). This and the other views of the memory are
    /// for holders of an [`Access`] (see the module documentation).
    pub fn entry(&self, i: usize) -> &'static Entry {
        debug_assert!(i < self.nentries());
        // SAFETY: callers use the reference only while the range stays
        // accessible: they hold an Access (the region is not unmapped
        // meanwhile; if it is zapped, made read-only or replaced by
        // anonymous memory, the fault handler repairs the access before it
        // is retried), or no other thread can unmap it (the thread that
        // unmaps it, a forked child after retire(), the last thread). The
        // kernel writes it concurrently: Entry is atomics only, and 64-byte
        // aligned there.
        unsafe { &*((self.addr + abi::PAGE_SIZE + i * 64) as *const Entry) }
    }

    /// Entry `i` as its sixteen 32-bit words.
    pub fn words(&self, i: usize) -> &'static [AtomicU32; 16] {
        debug_assert!(i < self.nentries());
        // SAFETY: as for entry(): 64 accessible bytes while used, written
        // concurrently by the kernel, reached through atomics only.
        unsafe { &*((self.addr + abi::PAGE_SIZE + i * 64) as *const [AtomicU32; 16]) }
    }

    /// The control page as 32-bit words.
    pub fn ctrl_words(&self) -> &'static [AtomicU32; 1024] {
        // SAFETY: as for entry(): the whole control page is accessible
        // while used and only reached through atomics.
        unsafe { &*(self.addr as *const [AtomicU32; 1024]) }
    }

    /// The control page.
    pub fn ctrl(&self) -> &'static Ctrl {
        // SAFETY: as for entry(): the region start is accessible while
        // used; Ctrl is atomics only and page aligned there.
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
    log(What::Register, addr, len, 0, true);
}

/// Records that region `addr` is gone (with [`LOCK`] held, or from the
/// fault handler). Returns false if it was not the live one.
pub fn clear(addr: usize) -> bool {
    if ADDR
        .compare_exchange(addr, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        GEN.fetch_add(1, Ordering::SeqCst);
        true
    } else {
        false
    }
}

/// Records that region `s` is gone (unmapped by this process, or not
/// inherited by a forked child) and keeps its address range: anonymous
/// read-write memory goes where it was, unless another mapping took the
/// hole meanwhile (harmless: nothing touches a range after its munmap but
/// a forked child, which has no other thread). Every range a region had
/// stays the fuzzer's for the life of the process (at most one region
/// size per registration).
pub fn retire(s: &Snap) {
    // SAFETY: MAP_FIXED_NOREPLACE only fills the hole the region left (it
    // fails, changing nothing, where something is mapped).
    let r = unsafe { map_anon(s.addr, s.len, libc::MAP_FIXED_NOREPLACE) };
    log(What::Retire, s.addr, s.len, 0, r != libc::MAP_FAILED);
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

/// Pid whose address space [`MAPS_FD`] shows (0: none).
static MAPS_PID: AtomicI32 = AtomicI32::new(0);

/// Notes that [`MAPS_FD`] shows this process's mappings (see
/// `setup::open_maps`): a forked child or an exec'd image has none.
pub fn maps_opened() {
    MAPS_PID.store(pid(), Ordering::Release);
}

/// The line of this process's maps that covers `addr`, "(none)" or why it
/// is unknown, for a crash report: from a signal handler, so no
/// allocation, raw reads into `buf` from [`MAPS_FD`].
fn maps_line(addr: usize, buf: &mut [u8; 4096]) -> &str {
    if MAPS_PID.load(Ordering::Acquire) != pid() {
        return "unknown (not opened by this process)";
    }
    // SAFETY: lseek on our own maps descriptor (a seq file: offset 0
    // produces the mappings afresh).
    if unsafe { libc::lseek(MAPS_FD, 0, libc::SEEK_SET) } != 0 {
        return "unknown (maps descriptor unusable)";
    }
    let mut line = [0u8; 256];
    let mut len = 0;
    let mut found = None;
    'read: loop {
        // SAFETY: reads at most buf.len() bytes into buf.
        let n = unsafe { libc::read(MAPS_FD, buf.as_mut_ptr().cast(), buf.len()) };
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
                found = Some(len);
                break 'read;
            }
            len = 0;
        }
    }
    match found {
        Some(n) => {
            buf[..n].copy_from_slice(&line[..n]);
            core::str::from_utf8(&buf[..n]).unwrap_or("?")
        }
        None => "(none: not mapped)",
    }
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
    // The interrupted code may be about to read errno.
    let saved_errno = rt_utils::sys::errno();
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
        let why = if again > 8 {
            ", not repairable (the same fault 9 times, no region change between)"
        } else {
            ""
        };
        report_crash(sig, code, addr, why);
        return;
    }
    REPAIRING.fetch_add(1, Ordering::AcqRel);
    let Some(guard) = mm() else {
        // A fault while this thread changes a region mapping: a fuzzer bug.
        REPAIRING.fetch_sub(1, Ordering::AcqRel);
        // SAFETY: as above.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
        report_crash(
            sig,
            code,
            addr,
            ", while this thread changed a region mapping",
        );
        return;
    };
    // Looked at only now: no region change is in progress.
    let live = current().filter(|s| addr >= s.addr && addr < s.addr + s.len);
    match (sig, code, live) {
        (libc::SIGSEGV, SEGV_ACCERR, Some(s)) => {
            // SAFETY: the live region is a shared read-write mapping a
            // fuzzing thread made read-only; giving the permission back
            // changes no contents.
            let r = unsafe {
                libc::mprotect(
                    s.addr as *mut libc::c_void,
                    s.len,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            log(What::FixWrite, s.addr, s.len, 0, r == 0);
        }
        (libc::SIGBUS, _, Some(s)) => {
            // Zapped: replace the whole region (releasing it).
            // SAFETY: MAP_FIXED over exactly the region's range, which only
            // this program uses through atomics; every later access finds
            // zeroed anonymous memory.
            let r = unsafe { map_anon(s.addr, s.len, libc::MAP_FIXED) };
            log(What::ReplaceZapped, s.addr, s.len, 0, r != libc::MAP_FAILED);
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
            let r = unsafe { map_anon(page, abi::PAGE_SIZE, libc::MAP_FIXED_NOREPLACE) };
            log(
                What::ZeroPage,
                page,
                abi::PAGE_SIZE,
                0,
                r != libc::MAP_FAILED,
            );
        }
    }
    drop(guard);
    REPAIRING.fetch_sub(1, Ordering::AcqRel);
    // SAFETY: errno is this thread's; restoring what the interrupted code
    // saw.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Reports a fault the handler does not repair (`why`: what it saw), with
/// what this process knows about the address: the note names it, the
/// detail holds the live region, the ranges that cover it, the kernel's
/// view of the mapping and the last changes of region ranges.
fn report_crash(sig: i32, code: i32, addr: usize, why: &str) {
    let mut buf = [0u8; 4096];
    let maps = maps_line(addr, &mut buf);
    let detail = stats::detail(format_args!(
        "pid {} tid {}: signal {sig} (code {code}) at {addr:#x}{why}\n  \
         maps: {maps}\n  live region: {}\n  region ranges covering it:{}\n  \
         epoch {}, repairing {}\n  last changes of region ranges (oldest first):{}",
        pid(),
        rt_utils::sys::gettid(),
        LiveRegion,
        RangesCovering(addr),
        EPOCH.load(Ordering::Acquire),
        REPAIRING.load(Ordering::Acquire),
        EventLog,
    ));
    stats::problem(
        C::Crash,
        format_args!(
            "pid {}: signal {sig} (code {code}) at {addr:#x}{}{why} (maps: {maps})",
            pid(),
            Detail(detail),
        ),
    );
}

/// The live region, for reports.
struct LiveRegion;

impl core::fmt::Display for LiveRegion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match current() {
            Some(s) => write!(f, "{:#x}+{:#x} generation {}", s.addr, s.len, s.gen),
            None => write!(f, "none (generation {})", generation()),
        }
    }
}

/// The ranges in [`RANGES`] that cover an address, for reports.
struct RangesCovering(usize);

impl core::fmt::Display for RangesCovering {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut any = false;
        for (s, e) in &RANGES {
            let (s, e) = (s.load(Ordering::Acquire), e.load(Ordering::Acquire));
            if s != 0 && self.0 >= s && self.0 < e {
                write!(f, " {s:#x}-{e:#x}")?;
                any = true;
            }
        }
        if !any {
            write!(f, " none")?;
        }
        Ok(())
    }
}

/// The change log, for reports.
struct EventLog;

impl core::fmt::Display for EventLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write_log(f)
    }
}

/// Where a note's detail went, for reports.
struct Detail(Option<usize>);

impl core::fmt::Display for Detail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(k) => write!(f, " [detail {k}]"),
            None => Ok(()),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn unmapping_waits_for_accesses_and_refuses_new_ones() {
        let len = abi::region_len(1);
        // SAFETY: a fresh anonymous mapping stands in for a region.
        let addr = unsafe { map_anon(0, len, 0) };
        assert_ne!(addr, libc::MAP_FAILED);
        let _g = lock();
        set(addr as usize, 1);
        let s = current().expect("the region just set");
        let a = access(&s).expect("an access to the live region");
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let t = scope.spawn(|| {
                take_out_of_use(&s);
                done.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(100));
            assert!(!done.load(Ordering::SeqCst), "did not wait for the access");
            assert!(access(&s).is_none(), "a new access to a region going away");
            drop(a);
            t.join().unwrap();
        });
        assert!(done.load(Ordering::SeqCst));
        // Live until unmapped (the fault handler repairs faults of the
        // accesses that began before), but no new access.
        assert_eq!(current(), Some(s));
        assert!(access(&s).is_none());
        assert_eq!(unmap_now(&s), Ok(()));
        assert!(current().is_none());
        // The range is kept: anonymous memory where the region was.
        s.ctrl_words()[0].store(1, Ordering::Relaxed);
        let logged: Vec<u32> = (0..NEXT_EVENT.load(Ordering::Acquire))
            .map(|n| EVENTS[n as usize % NEVENTS].what.load(Ordering::Relaxed))
            .collect();
        assert!(
            logged.ends_with(&[What::Unmap as u32, What::Retire as u32]),
            "{logged:?}"
        );
        // SAFETY: the anonymous memory retire() put there, no longer used.
        unsafe { libc::munmap(s.addr as *mut libc::c_void, s.len) };
    }

    #[test]
    fn a_region_being_unmapped_is_repaired_for_the_accesses_that_began_before() {
        install_fault_handler();
        let len = abi::region_len(1);
        // SAFETY: a fresh anonymous mapping stands in for a region.
        let addr = unsafe { map_anon(0, len, 0) };
        assert_ne!(addr, libc::MAP_FAILED);
        let _g = lock();
        set(addr as usize, 1);
        let s = current().expect("the region just set");
        let a = access(&s).expect("an access to the live region");
        // A fuzzing mprotect, as mm_op makes it.
        // SAFETY: our stand-in region; nothing else uses it.
        assert_eq!(unsafe { libc::mprotect(addr, len, libc::PROT_READ) }, 0);
        std::thread::scope(|scope| {
            let t = scope.spawn(|| take_out_of_use(&s));
            std::thread::sleep(Duration::from_millis(50));
            // The access that began before writes: the fault handler makes
            // the region writable again (it is still the live region).
            s.ctrl_words()[1].store(7, Ordering::Relaxed);
            assert_eq!(s.ctrl_words()[1].load(Ordering::Relaxed), 7);
            drop(a);
            t.join().unwrap();
        });
        assert_eq!(unmap_now(&s), Ok(()));
        // SAFETY: the anonymous memory retire() put there, no longer used.
        unsafe { libc::munmap(s.addr as *mut libc::c_void, s.len) };
    }

    #[test]
    fn the_mapping_lock_is_not_taken_twice_by_one_thread() {
        let m = mm().expect("free");
        assert!(mm().is_none(), "nested");
        std::thread::scope(|scope| {
            let waited = scope.spawn(|| {
                let t0 = std::time::Instant::now();
                let _m = mm().expect("free after the drop");
                t0.elapsed()
            });
            std::thread::sleep(Duration::from_millis(100));
            drop(m);
            assert!(waited.join().unwrap() >= Duration::from_millis(50));
        });
    }
}
