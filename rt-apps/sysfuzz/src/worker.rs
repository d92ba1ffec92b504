//! A fuzzing process: several threads post random entries, rewrite entries
//! and control words, call vaddr_to_paddr, flexsc_register and flexsc_wait
//! with random arguments, unmap and change the region, fork, signal each
//! other; the main thread ends the process the way the supervisor chose.
//!
//! Every result that the documented contract pins down is checked
//! ([`check_entry`], [`v2p`], [`wait`], [`register`]); a mismatch is a
//! `problem.contract` note. Nothing here allocates on the paths a forked
//! child runs.

use core::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::gen::{self, layout, Pools, Rng, RngExt};
use crate::region::{self, Snap, What, TAMPER};
use crate::stats::{self, C, EXE_FD};
use flexsc::sys;
use rt_utils::sys::{errno, gettid, RawResult};
use rtflex_uapi::flexsc::{self as abi, BLOCKED, CLAIMED, DONE, FREE, SUBMITTED};
use rtflex_uapi::nr;

/// How a fuzzing process ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// exit_group() while entries are in flight.
    ExitGroup,
    /// exec of itself (the O_PATH descriptor) while entries are in flight.
    Exec,
    /// Every user thread exits with exit() while a call blocks in a syscall
    /// thread: the process must still end by itself.
    LastThreadExit,
    /// The supervisor sends SIGKILL.
    Killed,
    /// Orderly: threads joined, region unmapped, exit.
    Return,
}

impl Ending {
    /// All endings, in the order the first processes of a run use them.
    pub const ALL: [Ending; 5] = [
        Ending::ExitGroup,
        Ending::Exec,
        Ending::LastThreadExit,
        Ending::Killed,
        Ending::Return,
    ];

    /// Name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Ending::ExitGroup => "exit-group",
            Ending::Exec => "exec",
            Ending::LastThreadExit => "last-thread-exit",
            Ending::Killed => "killed",
            Ending::Return => "return",
        }
    }

    /// Whether the process ends by itself (else the supervisor kills it).
    pub fn ends_itself(self) -> bool {
        self != Ending::Killed
    }
}

/// What the supervisor (or the exec'd image) asks of a fuzzing process.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Seed of this process.
    pub seed: u64,
    /// Fuzzing time before the ending.
    pub lifetime: Duration,
    /// Fuzzing threads.
    pub threads: u32,
    /// How it ends.
    pub ending: Ending,
}

/// Whether the FlexSC part runs (set by the supervisor before it forks the
/// fuzzing processes, passed on to an exec'd image on its command line).
static FLEXSC: AtomicBool = AtomicBool::new(true);

/// Switches the FlexSC part on or off for this process and its children.
pub fn set_flexsc(on: bool) {
    FLEXSC.store(on, Ordering::Relaxed);
}

/// Whether the FlexSC part runs: without it no process registers a region,
/// so no call needs one (post, rewrite, control writes, flexsc_wait,
/// flexsc_register, unmap, region changes) is picked, and the endings run
/// without calls in flight.
pub fn flexsc_on() -> bool {
    FLEXSC.load(Ordering::Relaxed)
}

/// Most fuzzing threads per process.
pub const MAX_THREADS: usize = 16;
/// `ret` of an entry before the kernel wrote it.
const SENTINEL: i32 = 0x5AFE_F00Du32 as i32;
/// Exit code of a fuzzing process whose setup failed.
pub const EXIT_SETUP: i32 = 2;

/// State shared by the threads of a fuzzing process.
struct Shared {
    pools: Pools,
    stop: AtomicBool,
    tids: [AtomicI32; MAX_THREADS],
    cookie: AtomicU64,
    /// The spare area was taken by another mapping: no more MREMAP_FIXED.
    spare_lost: AtomicBool,
}

/// One thread's view: shared state, its generator, its timer.
struct Ctx {
    sh: &'static Shared,
    rng: Rng,
    timer: Option<Timer>,
}

/// Handled SIGUSR1 deliveries (no SA_RESTART: they interrupt waits).
static USR1: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_usr1(_sig: libc::c_int) {
    USR1.fetch_add(1, Ordering::Relaxed);
}

fn set_handler(sig: i32, handler: usize, flags: i32) {
    // SAFETY: a zeroed sigaction with a valid disposition (SIG_IGN, or an
    // extern "C" fn(c_int)) and an empty mask.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, core::ptr::null_mut());
    }
}

/// Signal dispositions of a fuzzing process: SIGUSR1 interrupts (no
/// restart); SIGPIPE, SIGIO, SIGURG and SIGXFSZ, which random calls on our
/// own descriptors may raise, are ignored; faults in region ranges are
/// repaired.
pub fn install_signals() {
    set_handler(libc::SIGUSR1, on_usr1 as *const () as usize, 0);
    for sig in [libc::SIGPIPE, libc::SIGIO, libc::SIGURG, libc::SIGXFSZ] {
        set_handler(sig, libc::SIG_IGN, 0);
    }
    region::install_fault_handler();
}

/// A per-thread POSIX timer that sends SIGUSR1 to its thread: every wait
/// that could block for long is bounded by it.
struct Timer(libc::timer_t);

impl Timer {
    fn new() -> Option<Timer> {
        // SAFETY: gettid has no preconditions; sigevent is zeroed then
        // filled; timer_create writes the new id into `t`.
        unsafe {
            let mut sev: libc::sigevent = core::mem::zeroed();
            sev.sigev_notify = libc::SIGEV_THREAD_ID;
            sev.sigev_signo = libc::SIGUSR1;
            sev.sigev_notify_thread_id = libc::gettid();
            let mut t: libc::timer_t = core::ptr::null_mut();
            (libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut t) == 0).then_some(Timer(t))
        }
    }

    /// Fires after `d`, then every 5 ms until disarmed (a signal that came
    /// before the thread blocked must not leave the wait unbounded).
    fn arm(&self, d: Duration) {
        let its = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 5_000_000,
            },
            it_value: libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos().max(1) as libc::c_long,
            },
        };
        // SAFETY: our timer; the kernel reads `its`.
        unsafe { libc::timer_settime(self.0, 0, &its, core::ptr::null_mut()) };
    }

    fn disarm(&self) {
        // SAFETY: a zeroed itimerspec disarms our timer.
        unsafe {
            let its: libc::itimerspec = core::mem::zeroed();
            libc::timer_settime(self.0, 0, &its, core::ptr::null_mut());
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: deleting our own timer once.
        unsafe { libc::timer_delete(self.0) };
    }
}

fn getpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

fn errno_of(r: RawResult) -> i32 {
    r.err().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The calls, each with its contract check.

/// flexsc_register(cfg, size) with raw words.
fn register_raw(cfg: u32, size: u32) -> RawResult {
    // SAFETY: the kernel reads `size` bytes at `cfg` and writes 8 bytes of
    // it (the address): `cfg` is our scratch configuration slot (followed
    // by free scratch space), our read-only page, the region (atomics), a
    // guard page or an invalid address; none of it is a Rust object the
    // kernel could corrupt.
    unsafe { sys::syscall6(nr::FLEXSC_REGISTER, [cfg, size, 0, 0, 0, 0]) }
}

/// flexsc_wait(addr, min, timeout) with raw words.
fn wait_raw(addr: u32, min: u32, ts: u32) -> RawResult {
    // SAFETY: flexsc_wait only compares `addr` and reads 16 bytes at `ts`
    // (null, a scratch timespec, or an address the kernel refuses).
    unsafe { sys::syscall6(nr::FLEXSC_WAIT, [addr, min, ts, 0, 0, 0]) }
}

/// vaddr_to_paddr(pid, addr, paddr, flags) with raw words.
fn v2p_raw(pid: u32, addr: u32, paddr: u32, flags: u32) -> RawResult {
    let Some(n) = vtop::SYSCALL_NUMBER else {
        return Err(libc::ENOSYS);
    };
    // SAFETY: the kernel writes 8 bytes at `paddr`: free scratch space,
    // the region (atomics) or an address it refuses; the other words are
    // plain numbers.
    unsafe { sys::syscall6(n as u32, [pid, addr, paddr, flags, 0, 0]) }
}

/// The documented errors of vaddr_to_paddr.
const V2P_ERRNOS: [i32; 7] = [
    libc::ENOENT,
    libc::EFAULT,
    libc::EINVAL,
    libc::EPERM,
    libc::EACCES,
    libc::ESRCH,
    libc::EINTR,
];

/// One random vaddr_to_paddr call and its checks.
fn v2p(cx: &mut Ctx) {
    let p = cx.sh.pools;
    // The kernel may write the result into the region: keep it mapped.
    let live = region::current().and_then(|s| region::access(&s).map(|a| (s, a)));
    let region = live.as_ref().map(|(s, _)| (s.addr, s.len));
    let rng = &mut cx.rng;
    let me = getpid();
    let pid: i32 = match rng.below(14) {
        0..=4 => 0,
        5 => me,
        6 => gettid(),
        7 => cx.sh.tids[rng.below(MAX_THREADS as u32) as usize].load(Ordering::Relaxed),
        // SAFETY: getppid has no preconditions.
        8 => unsafe { libc::getppid() },
        9 => {
            stats::page().pids[rng.below(stats::PID_SLOTS as u32) as usize].load(Ordering::Relaxed)
        }
        10 => rng.pick(&[1, 2]),
        11 => me + rng.between(1, 40) as i32,
        12 => rng.pick(&[0x3FFF_FFF0, 4_194_304, i32::MAX]),
        _ => {
            let r = -(rng.between(2, 1000) as i32);
            rng.pick(&[-1, i32::MIN, r])
        }
    };
    let addr = gen::any_addr(rng, &p, region);
    let scratch_out = (p.scratch + layout::FREE + 8 * rng.below(1000) as usize) as u32;
    let (paddr, out_ok) = match rng.below(12) {
        0 => (0, false),
        1 => (rng.pick(&gen::KERNEL_ADDRS), false),
        2 => (p.ro as u32, false),
        3 => ((p.scratch + layout::LEN - 4) as u32, false), // half in the guard page
        4 => (p.hole as u32, false),
        // Inside the region, with room for the 8 bytes written.
        5 => match region {
            Some((a, l)) => (gen::region_addr(rng, a, l).min((a + l - 8) as u32), false),
            None => (scratch_out, true),
        },
        _ => (scratch_out, true),
    };
    let flags = if rng.one_in(10) {
        rng.next_u32() | 1
    } else {
        0
    };
    let r = v2p_raw(pid as u32, addr, paddr, flags);
    stats::add(C::V2p);
    if r.is_ok() {
        stats::add(C::V2pOk);
    }
    let e = errno_of(r);
    let what = |want: &str, r: RawResult| {
        stats::problem(
            C::Contract,
            format_args!(
                "vaddr_to_paddr(pid {pid}, {addr:#x}, out {paddr:#x}, flags {flags:#x}) = {r:?}, want {want}"
            ),
        )
    };
    if r.is_err() && !V2P_ERRNOS.contains(&e) {
        what("a documented errno", r);
        return;
    }
    if flags != 0 || pid < 0 || addr >= gen::TASK_SIZE {
        if e != libc::EINVAL {
            what("EINVAL (flags, negative pid or kernel address)", r);
        }
        return;
    }
    if pid != 0 || !out_ok {
        return;
    }
    // Our own address space, a writable result.
    if addr < 4096 && e != libc::EFAULT {
        what("EFAULT (page zero is never mapped)", r);
    } else if addr as usize & !4095 == p.untouched && e != libc::ENOENT {
        what("ENOENT (mapped, never touched)", r);
    } else if (addr as usize) >= p.scratch
        && (addr as usize) < p.scratch + layout::LEN
        && r.is_err()
        && e != libc::ENOENT
    {
        // (ENOENT: a page under migration.)
        what("success (scratch memory, all touched)", r);
    }
}

/// A timespec pointer for flexsc_wait, and whether the wait is bounded by
/// it within 30 ms.
fn wait_timeout(rng: &mut Rng, p: &Pools, region: gen::RegionView) -> (u32, bool) {
    let ts = |i: usize| (p.scratch + layout::TS64 + 16 * i) as u32;
    match rng.below(10) {
        0..=2 => (0, false),
        3 => (ts(0), true), // zero: poll
        4 => (ts(rng.between(1, 3) as usize), true),
        5 => (ts(rng.between(4, 7) as usize), false), // 1 s, invalid, huge
        6 => (rng.pick(&gen::KERNEL_ADDRS), true),
        7 => (p.hole as u32, true),
        8 => match region {
            Some((a, l)) => (gen::region_addr(rng, a, l), false),
            None => (0, false),
        },
        _ => ((p.scratch + layout::LEN - 8) as u32, true), // runs into the guard page
    }
}

/// One random flexsc_wait call (bounded by the thread's timer) and its
/// checks.
fn wait(cx: &mut Ctx) {
    let p = cx.sh.pools;
    let snap = region::current();
    let region = snap.map(|s| (s.addr, s.len));
    let rng = &mut cx.rng;
    let addr = match rng.below(10) {
        0..=5 => snap.map_or(0, |s| s.addr as u32),
        6 => snap.map_or(0, |s| {
            (s.addr + abi::PAGE_SIZE * rng.between(1, 2) as usize) as u32
        }),
        7 => snap.map_or(1, |s| s.addr as u32 + rng.between(1, 64)),
        _ => gen::any_addr(rng, &p, region),
    };
    let n = snap.map_or(64, |s| s.nentries() as u32);
    let min = match rng.below(8) {
        0 | 1 => 0,
        2 | 3 => 1,
        4 => rng.below(n + 1),
        5 => n,
        6 => n + 1,
        _ => rng.pick(&[u32::MAX, 0x8000_0000]),
    };
    let (ts, bounded) = wait_timeout(rng, &p, region);
    let signal = !bounded || rng.one_in(3);
    if signal {
        if let Some(t) = &cx.timer {
            t.arm(Duration::from_micros(rng.between(500, 30_000) as u64));
        }
    }
    let r = wait_raw(addr, min, ts);
    if let Some(t) = &cx.timer {
        t.disarm();
    }
    stats::add(C::Wait);
    let e = errno_of(r);
    if e == libc::EINTR {
        stats::add(C::WaitEintr);
    }
    let report = |want: &str| {
        stats::problem(
            C::Contract,
            format_args!("flexsc_wait({addr:#x}, {min}, ts {ts:#x}) = {r:?}, want {want}"),
        )
    };
    if r.is_err() && ![libc::EINVAL, libc::ETIMEDOUT, libc::EINTR, libc::EFAULT].contains(&e) {
        report("a documented errno");
        return;
    }
    let Ok(done) = r else { return };
    // Success: addr must be the start of the live region (re-read: another
    // thread may have registered a new region there meanwhile).
    let now = region::current();
    let starts = [snap, now]
        .iter()
        .flatten()
        .filter(|s| s.addr == addr as usize)
        .map(|s| s.nentries())
        .max();
    match starts {
        Some(n) if done > n => report("at most nentries"),
        Some(_) => {}
        None if snap.is_some_and(|s| s.maybe_shared()) => {}
        None => report("EINVAL: not the start of a region"),
    }
}

/// The errors flexsc_register documents.
const REGISTER_ERRNOS: [i32; 7] = [
    libc::EINVAL,
    libc::E2BIG,
    libc::EPERM,
    libc::EBUSY,
    libc::EFAULT,
    libc::ENOMEM,
    libc::EAGAIN,
];

/// Registers a valid configuration if no region is live (with the region
/// lock held); real-time syscall threads only with `rt` (see gen::config).
/// Returns the new region.
fn register_valid(rng: &mut Rng, p: &Pools, rt: bool) -> Option<Snap> {
    if region::current().is_some() {
        return None;
    }
    let cfg = gen::config(rng, true, rt);
    let slot = p.scratch + layout::CONFIG;
    // SAFETY: the CONFIG slot of our scratch buffer holds 64 bytes plus
    // zeroes; we write a whole Config there.
    unsafe { core::ptr::write_volatile(slot as *mut abi::Config, cfg) };
    let gen0 = region::generation();
    let r = register_raw(slot as u32, core::mem::size_of::<abi::Config>() as u32);
    stats::add(C::Register);
    match r {
        Ok(_) => {
            stats::add(C::RegisterOk);
            // SAFETY: the kernel wrote the address into the slot: read it
            // back (volatile: the kernel wrote it, not Rust).
            let addr = unsafe {
                core::ptr::read_volatile(core::ptr::addr_of!((*(slot as *const abi::Config)).addr))
            };
            region::set(addr as usize, cfg.npages);
            region::current()
        }
        Err(e) => {
            if ![libc::ENOMEM, libc::EAGAIN].contains(&e) && region::settled(gen0) {
                stats::problem(
                    C::Contract,
                    format_args!("flexsc_register({cfg:?}) with no region = {r:?}, want success"),
                );
            }
            None
        }
    }
}

/// One random flexsc_register call and its checks.
fn register(cx: &mut Ctx) {
    let p = cx.sh.pools;
    let _g = region::lock();
    let rng = &mut cx.rng;
    if region::current().is_none() && rng.one_in(2) {
        register_valid(rng, &p, false);
        return;
    }
    let before = region::current();
    let valid = rng.one_in(2);
    let cfg = gen::config(rng, valid, false);
    let slot = p.scratch + layout::CONFIG;
    // SAFETY: as in register_valid(); the bytes after the slot are free
    // scratch space, sometimes made non-zero for the "larger struct" case.
    unsafe { core::ptr::write_volatile(slot as *mut abi::Config, cfg) };
    let dirty_tail = rng.one_in(4);
    // SAFETY: 64 bytes after the slot inside our scratch buffer.
    unsafe {
        core::ptr::write_bytes((slot + 64) as *mut u8, 0, 64);
        if dirty_tail {
            core::ptr::write_volatile((slot + 64 + rng.below(64) as usize) as *mut u8, 0x5A);
        }
    }
    let exact = core::mem::size_of::<abi::Config>() as u32;
    let size = gen::config_size(rng);
    let (ptr, cls) = match rng.below(12) {
        0..=6 => (slot as u32, "scratch"),
        7 => (p.ro as u32, "read-only"),
        8 => (0, "null"),
        9 => (rng.pick(&gen::KERNEL_ADDRS), "kernel"),
        10 => ((p.scratch + layout::LEN - 32) as u32, "guard"),
        _ => match before {
            Some(s) => (gen::region_addr(rng, s.addr, s.len), "region"),
            None => (p.hole as u32, "hole"),
        },
    };
    let gen0 = region::generation();
    let r = register_raw(ptr, size);
    stats::add(C::Register);
    let settled = region::settled(gen0);
    let e = errno_of(r);
    let report = |want: &str| {
        stats::problem(
            C::Contract,
            format_args!(
                "flexsc_register({cls} {ptr:#x}, {size}) cfg {cfg:?} region {} = {r:?}, want {want}",
                if before.is_some() { "live" } else { "none" }
            ),
        )
    };
    if r.is_err() && !REGISTER_ERRNOS.contains(&e) {
        report("a documented errno");
    }
    // What the documented contract says for the cases we can tell apart.
    let cfg_ok = valid
        && cls == "scratch"
        && (size == exact || (size > exact && size <= 128 && !dirty_tail));
    if settled && !(e == libc::ENOMEM || e == libc::EAGAIN) {
        if cfg_ok && before.is_some() && e != libc::EBUSY {
            report("EBUSY (a region is live)");
        } else if cfg_ok && before.is_none() && r.is_err() {
            report("success");
        } else if size < exact && e != libc::EINVAL {
            report("EINVAL (size below sizeof(struct flexsc_config))");
        } else if size > 4096 && e != libc::E2BIG {
            report("E2BIG (size above a page)");
        } else if cls == "read-only" && before.is_none() && size == exact && e != libc::EFAULT {
            report("EFAULT (the address cannot be written back)");
        } else if (cls == "null" || cls == "kernel")
            && size >= exact
            && size <= 4096
            && e != libc::EFAULT
        {
            report("EFAULT");
        }
    }
    if r.is_ok() {
        stats::add(C::RegisterOk);
        // Where the kernel wrote the address: our slot, or the region.
        let at = if cls == "scratch" { slot } else { ptr as usize };
        // SAFETY: success means the kernel wrote 8 bytes at `at`, an
        // address we could give it: scratch or region memory, readable.
        let addr = unsafe { core::ptr::read_volatile((at + 40) as *const u64) };
        region::set(addr as usize, cfg.npages.clamp(1, abi::MAX_PAGES));
    }
}

// ---------------------------------------------------------------------------
// Entries.

/// One posted entry, as the poster wrote it.
#[derive(Clone, Copy, Default)]
struct Posted {
    idx: usize,
    tamper: u32,
    nr: u32,
    args: [u32; 6],
    flags: u32,
    resv: [u32; 4],
    cookie: u64,
    open: bool,
}

/// Claims up to `k` free entries, fills them with random calls and submits
/// them. Returns what was posted.
fn post_entries(cx: &mut Ctx, s: &Snap, k: usize, out: &mut [Posted; 8]) -> usize {
    let p = cx.sh.pools;
    let n = s.nentries();
    let mut count = 0;
    for _ in 0..k.min(out.len()) {
        let mut got = None;
        for _ in 0..8 {
            let i = cx.rng.below(n as u32) as usize;
            let e = s.entry(i);
            // Before the claim: a rewrite from now on changes it.
            let tamper = TAMPER[i].load(Ordering::SeqCst);
            if e.status.load(Ordering::Acquire) == DONE {
                // Reap someone's abandoned result.
                let _ = e
                    .status
                    .compare_exchange(DONE, FREE, Ordering::AcqRel, Ordering::Relaxed);
            }
            if e.status
                .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                got = Some((i, tamper));
                break;
            }
        }
        let Some((i, tamper)) = got else { break };
        let e = s.entry(i);
        let nr = gen::entry_nr(&mut cx.rng);
        let args = gen::args(&mut cx.rng, &p, Some((s.addr, s.len)), nr);
        let flags = if cx.rng.one_in(16) {
            1 << cx.rng.below(32)
        } else {
            0
        };
        let mut resv = [0u32; 4];
        if cx.rng.one_in(16) {
            resv[cx.rng.below(4) as usize] = cx.rng.next_u32() | 1;
        }
        let cookie = cx.sh.cookie.fetch_add(1, Ordering::Relaxed) ^ ((gettid() as u64) << 40);
        let rec = Posted {
            idx: i,
            tamper,
            nr,
            args,
            flags,
            resv,
            cookie,
            open: true,
        };
        e.submit(nr, args, flags, resv, cookie, SENTINEL);
        stats::add(C::Posted);
        out[count] = rec;
        count += 1;
    }
    fence(Ordering::SeqCst);
    if count > 0 && s.ctrl().idle_workers.load(Ordering::Relaxed) != 0 {
        let _ = wait_raw(s.addr as u32, 0, 0);
        stats::add(C::Wait);
    }
    count
}

/// Whether ret is a restart code (never allowed in an entry).
fn is_restart(ret: i32) -> bool {
    matches!(ret, -512 | -513 | -514 | -516)
}

/// Checks a DONE entry against what was posted, when nothing else could
/// have changed it; then frees it.
fn check_entry(s: &Snap, rec: &Posted) {
    let e = s.entry(rec.idx);
    let ret = e.ret.load(Ordering::Relaxed);
    let same = e.nr.load(Ordering::Relaxed) == rec.nr
        && e.args
            .iter()
            .zip(rec.args)
            .all(|(w, v)| w.load(Ordering::Relaxed) == v)
        && e.flags.load(Ordering::Relaxed) == rec.flags
        && e.resv
            .iter()
            .zip(rec.resv)
            .all(|(w, v)| w.load(Ordering::Relaxed) == v)
        && e.cookie.load(Ordering::Relaxed) == rec.cookie;
    let untouched =
        rec.tamper.is_multiple_of(2) && TAMPER[rec.idx].load(Ordering::SeqCst) == rec.tamper;
    let trusted = same
        && untouched
        && ret != SENTINEL
        && s.is_current()
        && !s.maybe_shared()
        && region::settled(s.gen);
    if trusted {
        let want = if rec.flags != 0 || rec.resv != [0; 4] {
            Some(-libc::EINVAL)
        } else if !abi::is_allowed(rec.nr) {
            Some(-libc::ENOSYS)
        } else {
            None
        };
        // A region being stopped (munmap, exit, exec by another thread)
        // cancels the entries claimed after the stop: -ECANCELED, whatever
        // they hold.
        let bad = ret != -libc::ECANCELED
            && match want {
                Some(w) => ret != w,
                None => is_restart(ret),
            };
        if bad {
            stats::problem_of(
                C::Contract,
                rec.nr,
                format_args!(
                    "entry nr {} args {:x?} flags {:#x} resv {:x?}: ret {ret}, want {}",
                    rec.nr,
                    rec.args,
                    rec.flags,
                    rec.resv,
                    want.unwrap_or_default()
                ),
            );
        }
    }
    let _ = e
        .status
        .compare_exchange(DONE, FREE, Ordering::AcqRel, Ordering::Relaxed);
    stats::add(C::Done);
}

/// Posts 1-8 entries and waits a bounded time for them, checking results.
fn post(cx: &mut Ctx) {
    let Some(s) = region::current() else {
        if cx.rng.one_in(4) {
            let p = cx.sh.pools;
            let _g = region::lock();
            register_valid(&mut cx.rng, &p, false);
        }
        return;
    };
    let mut recs = [Posted::default(); 8];
    let k = cx.rng.between(1, 8) as usize;
    let n = match region::access(&s) {
        Some(_a) => post_entries(cx, &s, k, &mut recs),
        None => return,
    };
    let deadline = Instant::now() + Duration::from_micros(cx.rng.between(500, 40_000) as u64);
    loop {
        let mut open = recs[..n].iter().filter(|r| r.open).count() as u64;
        let Some(a) = region::access(&s) else {
            // Gone, or being unmapped.
            stats::add_n(C::Abandoned, open);
            break;
        };
        for rec in recs[..n].iter_mut().filter(|r| r.open) {
            if s.entry(rec.idx).status.load(Ordering::Acquire) == DONE {
                check_entry(&s, rec);
                rec.open = false;
                open -= 1;
            }
        }
        drop(a);
        if open == 0 || Instant::now() > deadline {
            stats::add_n(C::Abandoned, open);
            break;
        }
        match cx.rng.below(4) {
            0 => {
                let ts = (cx.sh.pools.scratch + layout::TS64 + 16 * 2) as u32; // 2 ms
                let _ = wait_raw(s.addr as u32, 1, ts);
                stats::add(C::Wait);
            }
            // SAFETY: sched_yield has no preconditions.
            1 => unsafe {
                libc::sched_yield();
            },
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    }
}

/// Rewrites an entry without the protocol: random status words, random
/// contents, entries the kernel owns (BUSY, BLOCKED, SUBMITTED).
fn rewrite(cx: &mut Ctx) {
    let Some(s) = region::current() else { return };
    let Some(_a) = region::access(&s) else { return };
    let rng = &mut cx.rng;
    let n = s.nentries() as u32;
    let mut i = rng.below(n) as usize;
    if rng.one_in(2) {
        for _ in 0..16 {
            let j = rng.below(n) as usize;
            let st = s.entry(j).status.load(Ordering::Relaxed);
            if st == SUBMITTED || abi::in_progress(st) {
                i = j;
                break;
            }
        }
    }
    let p = cx.sh.pools;
    TAMPER[i].fetch_add(1, Ordering::SeqCst);
    let w = s.words(i);
    match rng.below(5) {
        0 => w[0].store(rng.below(8), Ordering::Release),
        1 => w[0].store(rng.next_u32(), Ordering::Release),
        2 => {
            let nr = gen::entry_nr(rng);
            w[1].store(nr, Ordering::Relaxed);
            let args = gen::args(rng, &p, Some((s.addr, s.len)), nr);
            for (k, a) in args.iter().enumerate() {
                w[2 + k].store(*a, Ordering::Relaxed);
            }
            w[9].store(
                if rng.one_in(8) { rng.next_u32() } else { 0 },
                Ordering::Relaxed,
            );
            w[12 + rng.below(4) as usize].store(
                if rng.one_in(8) { rng.next_u32() } else { 0 },
                Ordering::Relaxed,
            );
            let st = if rng.one_in(2) {
                SUBMITTED
            } else {
                rng.below(8)
            };
            w[0].store(st, Ordering::Release);
        }
        3 => w[rng.below(16) as usize].store(rng.next_u32(), Ordering::Relaxed),
        _ => w[8].store(rng.next_u32(), Ordering::Relaxed), // ret
    }
    TAMPER[i].fetch_add(1, Ordering::SeqCst);
    stats::add(C::Rewrite);
    if rng.one_in(4) {
        let _ = wait_raw(s.addr as u32, 0, 0);
        stats::add(C::Wait);
    }
}

/// Writes a control-page word (magic, counts, the futex words).
fn ctrl_write(cx: &mut Ctx) {
    let Some(s) = region::current() else { return };
    let Some(_a) = region::access(&s) else { return };
    let rng = &mut cx.rng;
    let idx = match rng.below(8) {
        0 => 0,
        1 => rng.below(5) as usize,
        2 => 16,     // idle_workers
        3 => 32,     // completions
        4 | 5 => 48, // waiters
        6 => 64,     // dropped
        _ => rng.below(1024) as usize,
    };
    let v = match rng.below(3) {
        0 => rng.below(4),
        1 => u32::MAX,
        _ => rng.next_u32(),
    };
    s.ctrl_words()[idx].store(v, Ordering::Relaxed);
    stats::add(C::CtrlWrite);
}

/// Posts entries, some of them blocking reads, so that calls are in flight;
/// returns whether some are.
fn put_in_flight(cx: &mut Ctx, s: &Snap) -> bool {
    let Some(_a) = region::access(s) else {
        return false;
    };
    let mut recs = [Posted::default(); 8];
    post_entries(cx, s, 4, &mut recs);
    // A read that blocks: an empty pipe whose write end stays open.
    let e_idx = (0..s.nentries()).find(|&i| {
        s.entry(i)
            .status
            .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    });
    if let Some(i) = e_idx {
        let p = cx.sh.pools;
        let e = s.entry(i);
        e.nr.store(nr::READ, Ordering::Relaxed);
        let buf = (p.scratch + layout::FREE) as u32;
        let args = [p.drain[0] as u32, buf, 16, 0, 0, 0];
        for (w, v) in e.args.iter().zip(args) {
            w.store(v, Ordering::Relaxed);
        }
        e.flags.store(0, Ordering::Relaxed);
        for w in &e.resv {
            w.store(0, Ordering::Relaxed);
        }
        e.status.store(SUBMITTED, Ordering::Release);
        stats::add(C::Posted);
        fence(Ordering::SeqCst);
        let _ = wait_raw(s.addr as u32, 0, 0);
    }
    in_flight(s)
}

fn in_flight(s: &Snap) -> bool {
    (0..s.nentries()).any(|i| {
        let st = s.entry(i).status.load(Ordering::Acquire);
        st == SUBMITTED || abi::in_progress(st)
    })
}

/// munmap of the whole region with calls in flight; sometimes a new
/// registration right after.
fn unmap(cx: &mut Ctx) {
    let _g = region::lock();
    let Some(s) = region::current() else { return };
    let busy = put_in_flight(cx, &s);
    region::take_out_of_use(&s);
    if let Err(e) = region::unmap_now(&s) {
        stats::problem(
            C::Contract,
            format_args!(
                "munmap of the whole region {:#x}+{:#x} failed: errno {e}",
                s.addr, s.len
            ),
        );
    } else if busy {
        stats::add(C::MunmapInflight);
    }
    if cx.rng.one_in(2) {
        let p = cx.sh.pools;
        register_valid(&mut cx.rng, &p, false);
    }
}

/// Memory-management calls on the region: partial munmap, mremap,
/// mprotect, madvise (MADV_DONTNEED zaps it: SIGBUS later, repaired by
/// replacing it; MADV_DOFORK lets fork copy it), mlock, msync.
fn mm_op(cx: &mut Ctx) {
    let _g = region::lock();
    let Some(s) = region::current() else { return };
    let rng = &mut cx.rng;
    let base = s.addr as *mut libc::c_void;
    let pages = s.len / abi::PAGE_SIZE;
    let page = (s.addr + abi::PAGE_SIZE * rng.below(pages as u32) as usize) as *mut libc::c_void;
    let op = rng.below(9);
    let any_advice = rng.below(120) as i32;
    let advice = rng.pick(&[
        libc::MADV_DONTFORK,
        libc::MADV_WIPEONFORK,
        libc::MADV_KEEPONFORK,
        libc::MADV_FREE,
        libc::MADV_COLD,
        libc::MADV_PAGEOUT,
        libc::MADV_REMOVE,
        libc::MADV_MERGEABLE,
        libc::MADV_HUGEPAGE,
        libc::MADV_WILLNEED,
        libc::MADV_SEQUENTIAL,
        any_advice,
    ]);
    // MREMAP_FIXED only while the spare area is ours.
    let remaps = if cx.sh.spare_lost.load(Ordering::Relaxed) {
        2
    } else {
        3
    };
    let remap = match rng.below(remaps) {
        0 => (s.len + abi::PAGE_SIZE, libc::MREMAP_MAYMOVE),
        1 => (s.len - abi::PAGE_SIZE, 0),
        _ => (s.len, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED),
    };
    // Still the region looked at above? (The fault handler may have
    // replaced a zapped one meanwhile: then these calls would act on
    // anonymous memory.) No repair can come between this check and the
    // calls.
    let mm = region::mm();
    if !s.is_current() {
        return;
    }
    stats::add(C::RegionMmop);
    // The region was split or moved (a contract problem): unmap what is
    // left after the calls.
    let mut remove = false;
    // SAFETY: (all arms) memory-management calls on the range of this
    // process's region, which no Rust object refers to except through
    // atomics; the fault handler repairs any access the change breaks.
    unsafe {
        match op {
            0 => {
                let r = libc::munmap(page, abi::PAGE_SIZE);
                region::log(What::UnmapPage, page as usize, abi::PAGE_SIZE, 0, r == 0);
                if r == 0 {
                    stats::problem(
                        C::Contract,
                        format_args!("munmap of one page of a {pages}-page region succeeded, want EINVAL (no split)"),
                    );
                    remove = true;
                }
            }
            1 => {
                let (new_len, flags) = remap;
                // MREMAP_FIXED unmaps the destination first: our spare area.
                let dest = if flags & libc::MREMAP_FIXED != 0 {
                    cx.sh.pools.spare as *mut libc::c_void
                } else {
                    core::ptr::null_mut()
                };
                let r = libc::mremap(base, s.len, new_len, flags, dest);
                region::log(
                    What::Remap,
                    s.addr,
                    new_len,
                    flags as u32,
                    r != libc::MAP_FAILED,
                );
                if !dest.is_null() {
                    // Take the (now unmapped) spare area back.
                    let len = abi::region_len(abi::MAX_PAGES);
                    let back = libc::mmap(
                        dest,
                        len,
                        libc::PROT_NONE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                        -1,
                        0,
                    );
                    if back != dest {
                        cx.sh.spare_lost.store(true, Ordering::Relaxed);
                    }
                }
                if r != libc::MAP_FAILED {
                    stats::problem(
                        C::Contract,
                        format_args!("mremap of the region to {new_len:#x} bytes (flags {flags}) succeeded, want failure (no move, grow or shrink)"),
                    );
                    if r != base {
                        libc::munmap(r, new_len);
                    }
                    remove = true;
                }
            }
            2 => {
                let r = libc::mprotect(base, s.len, libc::PROT_READ);
                region::log(What::ProtRead, s.addr, s.len, 0, r == 0);
            }
            3 => {
                let r = libc::mprotect(
                    base,
                    s.len,
                    libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                );
                region::log(What::ProtExec, s.addr, s.len, 0, r == 0);
            }
            4 => {
                let r = libc::madvise(page, abi::PAGE_SIZE, libc::MADV_DONTNEED);
                let advice = libc::MADV_DONTNEED as u32;
                region::log(What::Advise, page as usize, abi::PAGE_SIZE, advice, r == 0);
            }
            5 => {
                let r = libc::madvise(base, s.len, libc::MADV_DOFORK);
                let advice = libc::MADV_DOFORK as u32;
                region::log(What::Advise, s.addr, s.len, advice, r == 0);
                if r == 0 {
                    region::set_dofork(&s);
                    stats::add(C::Dofork);
                }
            }
            6 => {
                let r = libc::madvise(base, s.len, advice);
                region::log(What::Advise, s.addr, s.len, advice as u32, r == 0);
            }
            7 => {
                libc::mlock(base, s.len);
                libc::munlock(base, s.len);
            }
            _ => {
                libc::msync(base, s.len, libc::MS_SYNC | libc::MS_INVALIDATE);
            }
        }
    }
    drop(mm);
    if remove {
        region::take_out_of_use(&s);
        let _ = region::unmap_now(&s);
    }
}

// ---------------------------------------------------------------------------
// fork

/// Waits for child `pid` to end by itself within `grace`, then SIGKILLs
/// it; a child not gone 20 s after SIGKILL is a kernel hang. Returns its
/// wait status (None: hung).
pub fn wait_child(pid: i32, grace: Duration) -> Option<i32> {
    let t0 = Instant::now();
    let mut killed: Option<Instant> = None;
    loop {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG | libc::__WALL) };
        if r == pid {
            return Some(st);
        }
        if r < 0 && errno() != libc::EINTR {
            return None;
        }
        match killed {
            None if t0.elapsed() > grace => {
                // SAFETY: kill() of our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed = Some(Instant::now());
            }
            Some(k) if k.elapsed() > Duration::from_secs(20) => {
                stats::problem(
                    C::Hang,
                    format_args!(
                        "forked child {pid} of {} not gone 20 s after SIGKILL",
                        getpid()
                    ),
                );
                return None;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The child side of a fork: checks that the region did not come along,
/// scribbles where it was, maybe registers its own and posts, and ends.
/// No allocation: the parent is multi-threaded.
fn fork_child(mut cx: Ctx, snap: Option<Snap>, dofork: bool) -> ! {
    cx.timer = None; // timers are not inherited; never delete the parent's id
    if let Some(s) = snap {
        let r = wait_raw(s.addr as u32, 0, 0);
        stats::add(C::Wait);
        if r != Err(libc::EINVAL) {
            stats::problem(
                C::Contract,
                format_args!(
                    "forked child: flexsc_wait(parent's region {:#x}) = {r:?}, want EINVAL: the region is not inherited{}",
                    s.addr,
                    if dofork { " (after MADV_DOFORK)" } else { "" }
                ),
            );
        }
        if !dofork && region::settled(s.gen) {
            let out = (cx.sh.pools.scratch + layout::FREE) as u32;
            let r = v2p_raw(0, s.addr as u32, out, 0);
            stats::add(C::V2p);
            if r != Err(libc::EFAULT) {
                stats::problem(
                    C::Contract,
                    format_args!("forked child: vaddr_to_paddr(parent's region {:#x}) = {r:?}, want EFAULT (not mapped)", s.addr),
                );
            }
        }
        // The child's view now: nothing (or an inherited region), and the
        // parent's generation is meaningless here. The region was not
        // copied (VM_DONTCOPY): keep its range for the stale writes below.
        region::retire(&s);
        if cx.rng.one_in(2) {
            // Rewrite where the region was (the fault handler maps a page).
            let w = s.words(cx.rng.below(s.nentries() as u32) as usize);
            w[0].store(SUBMITTED, Ordering::Release);
            w[1].store(gen::entry_nr(&mut cx.rng), Ordering::Relaxed);
        }
    }
    let mode = cx.rng.below(6);
    if matches!(mode, 1..=3) && flexsc_on() {
        let p = cx.sh.pools;
        if let Some(own) = register_valid(&mut cx.rng, &p, true) {
            stats::add(C::ChildRegister);
            let mut recs = [Posted::default(); 8];
            post_entries(&mut cx, &own, 8, &mut recs);
            if mode == 3 {
                // SAFETY: unmapping our own region.
                unsafe { libc::munmap(own.addr as *mut libc::c_void, own.len) };
            }
        }
    }
    match mode {
        // SAFETY: _exit ends this process at once (exit_group).
        0 | 1 | 3 => unsafe { libc::_exit(0) },
        4 => {
            // SAFETY: getppid has no preconditions.
            let parent = unsafe { libc::getppid() };
            let p = cx.sh.pools;
            for _ in 0..16 {
                let a = gen::any_addr(&mut cx.rng, &p, None);
                let _ = v2p_raw(parent as u32, a, (p.scratch + layout::FREE) as u32, 0);
                stats::add(C::V2p);
            }
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        _ => loop {
            // Until the parent stops and kills it.
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        },
    }
}

/// fork(); the child uses or rewrites the region address and ends; the
/// parent stops, continues, kills and reaps it, and looks at its zombie.
fn fork_op(cx: &mut Ctx) {
    let guard = region::lock();
    let snap = region::current();
    let dofork = snap.is_some_and(|s| s.maybe_shared());
    let child_rng = Rng::new(cx.rng.next_u64());
    // No repair of a fault handler in progress while memory is copied.
    let mm = region::mm();
    // SAFETY: fork in a multi-threaded process: the child runs only
    // fork_child(), which makes raw system calls and uses no lock and no
    // allocation (the region lock it inherits locked is never touched).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        region::forked_child();
        let child = Ctx {
            sh: cx.sh,
            rng: child_rng,
            timer: None,
        };
        fork_child(child, snap, dofork);
    }
    drop(mm);
    drop(guard);
    if pid < 0 {
        return;
    }
    stats::add(C::Fork);
    let rng = &mut cx.rng;
    match rng.below(4) {
        0 => {
            // SAFETY: signals to our own child.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            std::thread::sleep(Duration::from_millis(rng.between(1, 20) as u64));
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
            stats::add(C::StopCont);
        }
        1 => {
            std::thread::sleep(Duration::from_millis(rng.below(20) as u64));
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            stats::add(C::Kill);
        }
        _ => {}
    }
    if rng.one_in(2) {
        // Its zombie has no address space: ESRCH.
        let t0 = Instant::now();
        loop {
            // SAFETY: siginfo_t is plain data; waitid with WNOWAIT leaves
            // the child a zombie.
            let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
            // SAFETY: our own child; `info` is written by the kernel.
            let r = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT | libc::WNOHANG | libc::__WALL,
                )
            };
            // SAFETY: si_pid is valid after a waitid that found a child.
            if r == 0 && unsafe { info.si_pid() } == pid {
                let out = (cx.sh.pools.scratch + layout::FREE) as u32;
                let r = v2p_raw(pid as u32, 0x10000, out, 0);
                stats::add(C::V2p);
                if r != Err(libc::ESRCH) {
                    stats::problem(
                        C::Contract,
                        format_args!("vaddr_to_paddr(zombie {pid}) = {r:?}, want ESRCH"),
                    );
                }
                break;
            }
            if r != 0 || t0.elapsed() > Duration::from_millis(300) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if let Some(st) = wait_child(pid, Duration::from_millis(300)) {
        if libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL {
            stats::add(C::Kill);
        }
    }
}

// ---------------------------------------------------------------------------
// Other threads, pipes

/// A handled SIGUSR1 to a sibling thread (it may sit in flexsc_wait): one
/// of the live fuzzing threads (this one included), not a random one of the
/// MAX_THREADS slots, most of which are empty with 3 threads (a 74 s run on
/// the KASAN kernel, where fuzzing threads make few calls, never sent one).
fn signal_sibling(cx: &mut Ctx) {
    let mut live = [0i32; MAX_THREADS];
    let mut n = 0;
    for t in &cx.sh.tids {
        let tid = t.load(Ordering::Relaxed);
        if tid > 0 {
            live[n] = tid;
            n += 1;
        }
    }
    let tid = if n == 0 {
        0
    } else {
        live[cx.rng.below(n as u32) as usize]
    };
    if tid > 0 {
        // SAFETY: tgkill to a thread of this process (tgid checked by the
        // kernel); SIGUSR1 is handled.
        unsafe { libc::syscall(libc::SYS_tgkill, getpid(), tid, libc::SIGUSR1) };
        stats::add(C::Signal);
    }
}

/// Feeds and drains our pipes and sockets, so blocked reads complete.
fn pipe_io(cx: &mut Ctx) {
    let p = cx.sh.pools;
    let k = cx.rng.below(4) as usize;
    let mut buf = [0u8; 512];
    let n = cx.rng.between(1, 512) as usize;
    if cx.rng.one_in(3) {
        // SAFETY: a non-blocking read into our stack buffer (the fds are
        // ours, or were replaced by random calls: any fd is fine to read).
        unsafe { libc::recv(p.drain[k], buf.as_mut_ptr().cast(), n, libc::MSG_DONTWAIT) };
        let mut pfd = libc::pollfd {
            fd: p.drain[k],
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll reads and writes `pfd`; read into our buffer.
        unsafe {
            if libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLIN != 0 {
                libc::read(p.drain[k], buf.as_mut_ptr().cast(), n);
            }
        }
    } else {
        let mut pfd = libc::pollfd {
            fd: p.feed[k],
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: poll on our descriptor; a write of our buffer only when it
        // cannot block (the descriptor may have been replaced by a random
        // dup3 with a scratch file: writing scratch is fine).
        unsafe {
            if libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLOUT != 0 {
                libc::write(p.feed[k], buf.as_ptr().cast(), n.min(256));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Threads and the process

#[derive(Clone, Copy)]
enum Op {
    Post,
    Rewrite,
    CtrlWrite,
    Wait,
    V2p,
    Register,
    Unmap,
    RegionMm,
    Fork,
    Signal,
    PipeIo,
    ThreadExit,
}

const OPS: [(Op, u32); 12] = [
    (Op::Post, 28),
    (Op::Rewrite, 8),
    (Op::CtrlWrite, 2),
    (Op::Wait, 10),
    (Op::V2p, 14),
    (Op::Register, 4),
    (Op::Unmap, 2),
    (Op::RegionMm, 3),
    (Op::Fork, 3),
    (Op::Signal, 3),
    (Op::PipeIo, 6),
    (Op::ThreadExit, 1),
];

impl Op {
    /// Whether the call works on a FlexSC region (or registers one).
    fn needs_flexsc(self) -> bool {
        matches!(
            self,
            Op::Post
                | Op::Rewrite
                | Op::CtrlWrite
                | Op::Wait
                | Op::Register
                | Op::Unmap
                | Op::RegionMm
        )
    }
}

/// A random call, by the weights of [`OPS`]; without `flexsc`, among the
/// calls that need no region (in the same proportions).
fn pick_op(rng: &mut Rng, flexsc: bool) -> Op {
    loop {
        let op = pick_any_op(rng);
        if flexsc || !op.needs_flexsc() {
            return op;
        }
    }
}

fn pick_any_op(rng: &mut Rng) -> Op {
    let total: u32 = OPS.iter().map(|o| o.1).sum();
    let mut x = rng.below(total);
    for (op, w) in OPS {
        if x < w {
            return op;
        }
        x -= w;
    }
    Op::Post
}

fn fuzz_thread(sh: &'static Shared, slot: usize, seed: u64) {
    sh.tids[slot].store(gettid(), Ordering::Relaxed);
    let mut cx = Ctx {
        sh,
        rng: Rng::new(seed),
        timer: Timer::new(),
    };
    while !sh.stop.load(Ordering::Relaxed) {
        match pick_op(&mut cx.rng, flexsc_on()) {
            Op::Post => post(&mut cx),
            Op::Rewrite => rewrite(&mut cx),
            Op::CtrlWrite => ctrl_write(&mut cx),
            Op::Wait => wait(&mut cx),
            Op::V2p => v2p(&mut cx),
            Op::Register => register(&mut cx),
            Op::Unmap => unmap(&mut cx),
            Op::RegionMm => mm_op(&mut cx),
            Op::Fork => fork_op(&mut cx),
            Op::Signal => signal_sibling(&mut cx),
            Op::PipeIo => pipe_io(&mut cx),
            Op::ThreadExit => {
                stats::add(C::ThreadExit);
                break;
            }
        }
    }
    sh.tids[slot].store(0, Ordering::Relaxed);
}

/// Runs a fuzzing process in the current (confined) directory; never
/// returns. `kml` is 0 (the [kml] page is for the trusted worker).
pub fn run(prm: Params) -> ! {
    install_signals();
    let pools = match crate::setup::pools(0) {
        Ok(p) => p,
        Err(e) => {
            stats::problem(C::Crash, format_args!("pid {}: setup: {e}", getpid()));
            // SAFETY: ending this process.
            unsafe { libc::_exit(EXIT_SETUP) }
        }
    };
    let sh: &'static Shared = Box::leak(Box::new(Shared {
        pools,
        stop: AtomicBool::new(false),
        tids: [const { AtomicI32::new(0) }; MAX_THREADS],
        cookie: AtomicU64::new(1),
        spare_lost: AtomicBool::new(false),
    }));
    let mut rng = Rng::new(prm.seed);
    if flexsc_on() {
        let _g = region::lock();
        register_valid(&mut rng, &pools, false);
    }
    let nthreads = (prm.threads as usize).clamp(1, MAX_THREADS);
    let mut handles: Vec<Option<std::thread::JoinHandle<()>>> =
        (0..nthreads).map(|_| None).collect();
    let t0 = Instant::now();
    let mut spawned = 0u64;
    while t0.elapsed() < prm.lifetime || prm.ending == Ending::Killed {
        for (slot, h) in handles.iter_mut().enumerate() {
            if h.as_ref().is_none_or(|h| h.is_finished()) {
                if let Some(old) = h.take() {
                    let _ = old.join();
                }
                let seed = gen::derive(prm.seed, spawned);
                spawned += 1;
                *h = std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || fuzz_thread(sh, slot, seed))
                    .ok();
            }
        }
        std::thread::sleep(Duration::from_millis(5));
        // A process meant to be killed ends itself only if the supervisor
        // is gone (or very late).
        if prm.ending == Ending::Killed
            && (std::os::unix::process::parent_id() == 1
                || t0.elapsed() > prm.lifetime + Duration::from_secs(120))
        {
            // SAFETY: ending this process.
            unsafe { libc::_exit(0) }
        }
    }
    let mut cx = Ctx {
        sh,
        rng,
        timer: None,
    };
    end(&mut cx, prm, handles)
}

fn stop_threads(sh: &Shared, handles: Vec<Option<std::thread::JoinHandle<()>>>) {
    sh.stop.store(true, Ordering::Relaxed);
    for h in handles.into_iter().flatten() {
        let _ = h.join();
    }
}

fn end(cx: &mut Ctx, prm: Params, handles: Vec<Option<std::thread::JoinHandle<()>>>) -> ! {
    let snap = {
        let _g = region::lock();
        let p = cx.sh.pools;
        region::current().or_else(|| {
            flexsc_on()
                .then(|| register_valid(&mut cx.rng, &p, false))
                .flatten()
        })
    };
    match prm.ending {
        Ending::Return => {
            stop_threads(cx.sh, handles);
            if let Some(s) = region::current() {
                // SAFETY: unmapping our region; no thread is left to use it.
                unsafe { libc::munmap(s.addr as *mut libc::c_void, s.len) };
            }
            // SAFETY: ending this process.
            unsafe { libc::_exit(0) }
        }
        Ending::ExitGroup => {
            if let Some(s) = snap {
                put_in_flight(cx, &s);
            }
            stats::add(C::ExitGroup);
            // SAFETY: exit_group with the other threads and the calls still
            // running: that is the test.
            unsafe { libc::syscall(libc::SYS_exit_group, 0) };
            unreachable!("exit_group returned");
        }
        Ending::LastThreadExit => {
            stop_threads(cx.sh, handles);
            // Drain the pipe, then a read that blocks in a syscall thread.
            let p = cx.sh.pools;
            let mut buf = [0u8; 512];
            // SAFETY: non-blocking reads into our buffer.
            while unsafe {
                libc::recv(p.drain[0], buf.as_mut_ptr().cast(), 512, libc::MSG_DONTWAIT)
            } > 0
            {}
            if let Some(s) = region::current() {
                put_in_flight(cx, &s);
                let t0 = Instant::now();
                while !(0..s.nentries())
                    .any(|i| s.entry(i).status.load(Ordering::Acquire) == BLOCKED)
                    && t0.elapsed() < Duration::from_millis(300)
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            stats::add(C::LastThreadExit);
            // SAFETY: exit() of this, the last user thread: the process must
            // end although a syscall thread sits in a read.
            unsafe { libc::syscall(libc::SYS_exit, 0) };
            unreachable!("exit returned");
        }
        Ending::Exec => {
            if let Some(s) = snap {
                put_in_flight(cx, &s);
            }
            exec_self(cx, prm)
        }
        Ending::Killed => unreachable!("killed processes do not end"),
    }
}

/// execveat(EXE_FD) of this program as an exec child, with the other
/// threads and calls still running.
fn exec_self(cx: &mut Ctx, prm: Params) -> ! {
    let seed = format!("{}", cx.rng.next_u64());
    let millis = format!("{}", cx.rng.between(100, 600));
    let threads = format!("{}", prm.threads.clamp(1, 3));
    let flexsc = format!("{}", u8::from(flexsc_on()));
    let args: Vec<std::ffi::CString> =
        ["sysfuzz", "--exec-child", &seed, &millis, &threads, &flexsc]
            .iter()
            .map(|a| std::ffi::CString::new(*a).unwrap())
            .collect();
    let mut argv: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(core::ptr::null_mut());
    let envp: [*mut libc::c_char; 1] = [core::ptr::null_mut()];
    // SAFETY: EXE_FD is our O_PATH descriptor of this program; argv and envp
    // are NULL-terminated arrays of C strings that outlive the call.
    unsafe {
        libc::execveat(
            EXE_FD,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    stats::problem(
        C::Crash,
        format_args!("pid {}: exec of itself failed: errno {}", getpid(), errno()),
    );
    // SAFETY: ending this process.
    unsafe { libc::_exit(EXIT_SETUP) }
}

/// The image started by exec of itself: counts the exec, fuzzes a little
/// (threads, region, entries) and ends with exit_group or an orderly exit.
pub fn exec_child(seed: u64, millis: u64, threads: u32, flexsc: bool) -> ! {
    set_flexsc(flexsc);
    if stats::attach().is_err() {
        // SAFETY: ending this process.
        unsafe { libc::_exit(EXIT_SETUP) }
    }
    stats::add(C::Exec);
    let mut rng = Rng::new(seed);
    let ending = if rng.one_in(2) {
        Ending::ExitGroup
    } else {
        Ending::Return
    };
    run(Params {
        seed,
        lifetime: Duration::from_millis(millis),
        threads,
        ending,
    })
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_have_distinct_names() {
        for (i, e) in Ending::ALL.iter().enumerate() {
            assert!(!Ending::ALL[i + 1..].iter().any(|f| f.name() == e.name()));
        }
        assert!(!Ending::Killed.ends_itself());
    }

    /// Which operations 100000 picks (`flexsc` as given) came up with.
    fn picked(flexsc: bool) -> [bool; OPS.len()] {
        let mut rng = Rng::new(1);
        let mut seen = [false; OPS.len()];
        for _ in 0..100_000 {
            seen[pick_op(&mut rng, flexsc) as usize] = true;
        }
        seen
    }

    #[test]
    fn every_op_can_be_picked() {
        assert!(picked(true).iter().all(|&s| s));
    }

    #[test]
    fn without_flexsc_only_calls_that_need_no_region_are_picked() {
        let seen = picked(false);
        for (op, _) in OPS {
            assert_eq!(seen[op as usize], !op.needs_flexsc(), "{}", op as usize);
        }
    }

    #[test]
    fn restart_codes() {
        for r in [-512, -513, -514, -516] {
            assert!(is_restart(r));
        }
        assert!(!is_restart(-515)); // ENOIOCTLCMD is not one
        assert!(!is_restart(-4));
    }
}
