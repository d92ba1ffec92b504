//! flexsc: the user side of rtflex's FlexSC exception-less system calls
//! (Soares and Stumm, OSDI 2010) on 32-bit ARM EABI.
//!
//! A process registers once ([`FlexSc::register`]); the kernel maps a
//! region of syscall entries into it and starts syscall threads. Instead of
//! trapping into the kernel, a thread *posts* a call into a free entry and
//! gets a [`Ticket`]; a syscall thread runs the call and marks the entry
//! DONE; [`FlexSc::wait`] with the ticket returns the result.
//!
//! * [`sys`]: the two system calls; the ABI itself (`linux/flexsc.h`,
//!   the allow-list, the numbers) is the `rtflex_uapi` crate, checked
//!   against the kernel headers;
//! * [`Call`]: a call with the buffers it borrows;
//! * [`FlexSc`]: registration, posting, waiting, teardown;
//! * [`Scope`]: posting calls that borrow buffers, like `std::thread::scope`.
//!
//! # Safety model
//!
//! The kernel reads and writes the buffers of a call until the call's entry
//! is DONE. A buffer must therefore stay borrowed until then, even when a
//! ticket is leaked with [`std::mem::forget`] (leaking is safe Rust):
//!
//! * [`FlexSc::post`] takes only `Call<'static>`: buffers that live forever;
//! * [`FlexSc::scope`] lends buffers for the scope's lifetime, and the
//!   scope does not return (nor unwind) before every entry it posted is
//!   DONE, whatever happened to the tickets;
//! * [`FlexSc::write_detached`], [`FlexSc::write_copy`] and the `pwrite`
//!   variants copy up to [`COPY_MAX`] bytes into a buffer the library
//!   allocated per entry at registration;
//! * [`FlexSc::call`] posts and waits before returning;
//! * [`FlexSc::post_raw`] and [`Call::raw`] are `unsafe`: the caller
//!   promises the words are valid.
//!
//! The posting path does not allocate. Entries are claimed with a
//! compare-and-swap, so any number of threads may post at once
//! (`FlexSc: Send + Sync`). A child process after `fork()` does not have
//! the region (the kernel does not copy it): every operation there returns
//! [`Error::Forked`] without touching the pages.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::fmt;
use std::os::fd::RawFd;
use std::sync::Once;
use std::time::{Duration, Instant};

mod call;
#[cfg(feature = "testing")]
pub mod emu;
pub mod sys;

pub use call::Call;
pub use rtflex_uapi::{KernelTimespec, Stat64};

use rt_utils::sys::{decode_ret, futex_wait};
use rtflex_uapi::flexsc as abi;
use rtflex_uapi::flexsc::{Ctrl, Entry, CLAIMED, DONE, FREE, SUBMITTED};

/// Bytes a post-and-forget or copying write can carry: each entry has a
/// buffer of this size, allocated at registration.
pub const COPY_MAX: usize = 256;

/// Polls of an entry's status before a waiter goes to sleep.
const SPIN: u32 = 300;

/// How many times a waiter polls before it sleeps: [`SPIN`], or 0 with one
/// online CPU, where the syscall thread cannot make progress while we spin.
fn spin_limit() -> u32 {
    static LIMIT: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        if rt_utils::affinity::online_cpus() == 1 {
            0
        } else {
            SPIN
        }
    })
}

/// Longest single futex sleep; waiters re-check and sleep again after it,
/// so a lost wake-up costs at most this much instead of hanging forever.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Errors of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The kernel has no FlexSC (`flexsc_register` says `ENOSYS`), or this
    /// is not 32-bit ARM EABI.
    Unsupported,
    /// A system call failed with this errno: the posted call itself, or
    /// `flexsc_register`/`flexsc_wait`.
    Errno(i32),
    /// The FlexSc was registered by the parent of this process: the region
    /// does not exist here.
    Forked,
    /// No free entry (all entries are posted and not yet reaped).
    Full,
    /// A wait with a timeout ran out.
    TimedOut,
    /// Data for a copying write larger than [`COPY_MAX`].
    TooLarge,
    /// A ticket of another FlexSc, or one whose entry was already reaped
    /// (by the end of its scope).
    BadTicket,
}

impl Error {
    /// The errno this error stands for, if any.
    pub fn errno(&self) -> Option<i32> {
        match *self {
            Error::Errno(e) => Some(e),
            Error::Unsupported => Some(libc::ENOSYS),
            Error::TimedOut => Some(libc::ETIMEDOUT),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported => write!(
                f,
                "the running kernel has no FlexSC (flexsc_register: ENOSYS)"
            ),
            Error::Errno(e) => write!(f, "{}", std::io::Error::from_raw_os_error(*e)),
            Error::Forked => write!(
                f,
                "FlexSC region used in a forked child (regions are not inherited)"
            ),
            Error::Full => write!(f, "no free FlexSC entry"),
            Error::TimedOut => write!(f, "timed out"),
            Error::TooLarge => write!(f, "more than {COPY_MAX} bytes for a copying write"),
            Error::BadTicket => write!(f, "ticket of another FlexSc or already reaped"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        match e {
            Error::Errno(n) => std::io::Error::from_raw_os_error(n),
            Error::Unsupported => std::io::Error::new(std::io::ErrorKind::Unsupported, e),
            Error::TimedOut => std::io::Error::new(std::io::ErrorKind::TimedOut, e),
            _ => std::io::Error::other(e),
        }
    }
}

/// Result of this crate.
pub type Result<T> = core::result::Result<T, Error>;

/// Scheduling policy of the syscall threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// `SCHED_OTHER`.
    #[default]
    Other,
    /// `SCHED_FIFO` at this priority (1..=99).
    Fifo(u8),
    /// `SCHED_RR` at this priority (1..=99).
    Rr(u8),
}

/// The completion protocol of a region (`linux/flexsc.h`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// [`Protocol::Batch`] if the kernel has it, else [`Protocol::Original`].
    #[default]
    Auto,
    /// The batch protocol (`FLEXSC_CFG_BATCH`): a post publishes its entries
    /// by counting them in `ctrl.submitted` and makes no system call while a
    /// syscall thread polls; a waiter is woken once, when the completions
    /// it needs are there, not at every completion. Required: registering
    /// fails with `Errno(EINVAL)` on a kernel without it.
    Batch,
    /// The original protocol: syscall threads scan for SUBMITTED entries
    /// and wake the futex waiters at every completion.
    Original,
    /// The batch protocol with run-on-wait (`FLEXSC_CFG_RUN_ON_WAIT`): a
    /// wait first enters `flexsc_wait()`, which runs the calls that never
    /// wait for an outside event ([`rtflex_uapi::flexsc::runs_inline`]) in
    /// the waiting thread, and hands the others to the syscall threads. A
    /// synchronous call then needs no second thread. Required: registering
    /// fails with `Errno(EINVAL)` on a kernel without it.
    RunOnWait,
}

/// Registration parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Syscall pages of 64 entries, 1..=16.
    pub npages: u32,
    /// Syscall threads, 1..=32.
    pub nworkers: u32,
    /// Bitmap of the CPUs the syscall threads run on; 0: the caller's.
    pub cpus: u64,
    /// Scheduling policy of the syscall threads.
    pub policy: Policy,
    /// Microseconds an idle syscall thread polls before it sleeps (0..=10000).
    pub poll_us: u32,
}

impl Default for Config {
    /// 1 page, 2 workers, the caller's CPUs, `SCHED_OTHER`, 50 us polling.
    fn default() -> Self {
        Config {
            npages: 1,
            nworkers: 2,
            cpus: 0,
            policy: Policy::Other,
            poll_us: 50,
        }
    }
}

impl Config {
    /// The `cpus` bit mask of the CPU numbers `list`, or `None` when one is
    /// 64 or more (the mask has 64 bits).
    pub fn cpu_mask(list: &[usize]) -> Option<u64> {
        list.iter()
            .try_fold(0u64, |m, &c| (c < 64).then(|| m | (1u64 << c)))
    }

    /// The `struct flexsc_config` for this configuration (not validated:
    /// the kernel does that).
    pub fn to_raw(&self) -> abi::Config {
        let (policy, priority) = match self.policy {
            Policy::Other => (abi::SCHED_OTHER, 0),
            Policy::Fifo(p) => (abi::SCHED_FIFO, p as u32),
            Policy::Rr(p) => (abi::SCHED_RR, p as u32),
        };
        abi::Config {
            version: abi::CONFIG_VERSION,
            flags: 0,
            npages: self.npages,
            nworkers: self.nworkers,
            cpus: self.cpus,
            policy,
            priority,
            poll_us: self.poll_us,
            resv0: 0,
            addr: 0,
            resv: [0; 2],
        }
    }
}

// ---------------------------------------------------------------------------
// Fork detection: a counter the child side of every fork() increments.

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static FORK_GEN: AtomicU32 = AtomicU32::new(0);
static ATFORK: Once = Once::new();

extern "C" fn in_child_after_fork() {
    // Async-signal-safe: one atomic add.
    FORK_GEN.fetch_add(1, Ordering::SeqCst);
}

fn install_atfork() {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only does an atomic add, which
        // is valid at any time in the child; the other two are none.
        let r = unsafe { libc::pthread_atfork(None, None, Some(in_child_after_fork)) };
        assert_eq!(r, 0, "pthread_atfork failed: {r}");
    });
}

fn getpid() -> i32 {
    // SAFETY: getpid has no arguments and cannot fail.
    unsafe { libc::getpid() }
}

// ---------------------------------------------------------------------------
// Per-entry private state, in the library's own memory.
//
// `own` = generation << 2 | state. The generation grows at every claim, so
// a compare-and-swap on `own` only succeeds for the posting cycle the
// caller looked at (64 bits: it never wraps).

/// No owner: the entry is FREE, or DONE and being reaped.
const IDLE: u64 = 0;
/// A live [`Ticket`] owns the result.
const OWNED: u64 = 1;
/// Nobody waits for the result: whoever sees DONE frees the entry.
const DETACHED: u64 = 2;
/// Post-and-forget: like DETACHED, and an error is kept for [`FlexSc::drain`].
const FORGET: u64 = 3;

fn state(w: u64) -> u64 {
    w & 3
}

struct Slot {
    own: AtomicU64,
    /// Address of the [`Scope::pending`] counter of the scope that posted
    /// the entry, 0 for none. Set at claim, cleared when reaped.
    scope: AtomicUsize,
    /// Data of copying writes. Written by the thread that claimed the entry
    /// before SUBMITTED, then only read (by the kernel) until DONE.
    data: UnsafeCell<[u8; COPY_MAX]>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            own: AtomicU64::new(IDLE),
            scope: AtomicUsize::new(0),
            data: UnsafeCell::new([0; COPY_MAX]),
        }
    }
}

enum Backend {
    Kernel,
    Fallback,
    #[cfg(feature = "testing")]
    Emulated(emu::Emulator),
}

/// A snapshot of the control page's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtrlSnapshot {
    /// `magic`.
    pub magic: u32,
    /// `version`.
    pub version: u32,
    /// `nentries`.
    pub nentries: u32,
    /// `nworkers`.
    pub nworkers: u32,
    /// `entries_offset`.
    pub entries_offset: u32,
    /// `idle_workers`.
    pub idle_workers: u32,
    /// `completions`.
    pub completions: u32,
    /// `waiters`.
    pub waiters: u32,
    /// `dropped`.
    pub dropped: u32,
    /// `submitted`.
    pub submitted: u32,
    /// `pollers`.
    pub pollers: u32,
    /// `wake_at`.
    pub wake_at: u32,
    /// `features`.
    pub features: u32,
}

/// A FlexSC registration: the region, its syscall threads, and the
/// library's per-entry state. Dropping it waits up to 1 s for calls in
/// flight, then unmaps the region (which stops the syscall threads).
pub struct FlexSc {
    /// Unique per FlexSc, carried by its tickets.
    id: u64,
    backend: Backend,
    /// Start of the region (0 in fallback mode).
    base: usize,
    npages: u32,
    nentries: usize,
    slots: ManuallyDrop<Box<[Slot]>>,
    next: AtomicUsize,
    first_error: AtomicI32,
    pid: i32,
    fork_gen: u32,
    down: bool,
    /// The batch protocol is in force.
    batch: bool,
    /// Run-on-wait is in force.
    run_on_wait: bool,
    /// Deferred posts not yet counted in `ctrl.submitted` ([`FlexSc::submit`]).
    deferred: AtomicU32,
}

// SAFETY: all state shared between threads is atomic (the region consists
// of atomics, `next`, `first_error`, `Slot::own`/`scope`). The only
// non-atomic memory, `Slot::data`, is written only by the thread that won
// the FREE->CLAIMED compare-and-swap of that entry and before it publishes
// SUBMITTED with release ordering; nobody else accesses it until the entry
// has gone through DONE (acquire) and FREE (release) again. `base` is an
// address, valid from any thread while the FlexSc lives.
unsafe impl Send for FlexSc {}
// SAFETY: see Send; every `&self` method follows that protocol.
unsafe impl Sync for FlexSc {}

impl fmt::Debug for FlexSc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlexSc")
            .field("base", &format_args!("{:#x}", self.base))
            .field("npages", &self.npages)
            .field("fallback", &self.is_fallback())
            .field("batch", &self.batch)
            .finish()
    }
}

impl FlexSc {
    /// Registers the process with the kernel (`flexsc_register`).
    ///
    /// Errors: [`Error::Unsupported`] on a kernel without FlexSC (unless
    /// `cfg.fallback`, which then returns a fallback FlexSc),
    /// `Errno(EINVAL)` for a bad configuration, `Errno(EBUSY)` if the
    /// process already has a region, `Errno(EPERM)` under seccomp or for a
    /// real-time policy the caller may not use, `Errno(ENOMEM)`.
    pub fn register(cfg: &Config) -> Result<FlexSc> {
        Self::register_protocol(cfg, Protocol::Auto)
    }

    /// [`FlexSc::register`] with the given completion protocol. With
    /// [`Protocol::Auto`], a kernel that refuses the batch flag (`EINVAL`,
    /// a kernel without it) gets the original protocol; the configuration
    /// is then registered again without the flag, so an `EINVAL` that
    /// remains is the configuration's.
    pub fn register_protocol(cfg: &Config, protocol: Protocol) -> Result<FlexSc> {
        install_atfork();
        let register = |flags: u32| {
            let mut raw = cfg.to_raw();
            raw.flags = flags;
            sys::flexsc_register(&mut raw, core::mem::size_of::<abi::Config>() as u32).map(|()| raw)
        };
        let r = match protocol {
            Protocol::Original => register(0),
            Protocol::Batch => register(abi::CFG_BATCH),
            Protocol::RunOnWait => register(abi::CFG_BATCH | abi::CFG_RUN_ON_WAIT),
            Protocol::Auto => match register(abi::CFG_BATCH) {
                Err(libc::EINVAL) => register(0),
                r => r,
            },
        };
        match r {
            Ok(raw) => Self::from_region(Backend::Kernel, raw.addr as usize, raw.npages, raw.flags),
            Err(libc::ENOSYS) => Err(Error::Unsupported),
            Err(e) => Err(Error::Errno(e)),
        }
    }

    /// [`FlexSc::register`], or on a kernel without FlexSC
    /// ([`Error::Unsupported`]) a [`FlexSc::fallback`]: same API, the calls
    /// run as ordinary system calls.
    pub fn register_or_fallback(cfg: &Config) -> Result<FlexSc> {
        match Self::register(cfg) {
            Err(Error::Unsupported) => Ok(Self::fallback()),
            r => r,
        }
    }

    /// A FlexSc without a region: every call runs as an ordinary system
    /// call when it is posted, and its ticket is complete at once. Only
    /// functional on 32-bit ARM EABI (elsewhere calls fail with `ENOSYS`).
    pub fn fallback() -> FlexSc {
        install_atfork();
        FlexSc {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            backend: Backend::Fallback,
            base: 0,
            npages: 0,
            nentries: 0,
            slots: ManuallyDrop::new(Box::new([])),
            next: AtomicUsize::new(0),
            first_error: AtomicI32::new(0),
            pid: getpid(),
            fork_gen: FORK_GEN.load(Ordering::SeqCst),
            down: false,
            batch: false,
            run_on_wait: false,
            deferred: AtomicU32::new(0),
        }
    }

    /// A FlexSc over a region served by the user-space emulator of the
    /// kernel side ([`emu`]), for tests on kernels without FlexSC.
    #[cfg(feature = "testing")]
    pub fn emulated(cfg: &Config) -> Result<FlexSc> {
        Self::emulated_protocol(cfg, Protocol::Auto)
    }

    /// [`FlexSc::emulated`] with the given protocol (the emulator has both).
    #[cfg(feature = "testing")]
    pub fn emulated_protocol(cfg: &Config, protocol: Protocol) -> Result<FlexSc> {
        install_atfork();
        let mut raw = cfg.to_raw();
        raw.flags = match protocol {
            Protocol::Original => 0,
            Protocol::RunOnWait => abi::CFG_BATCH | abi::CFG_RUN_ON_WAIT,
            Protocol::Auto | Protocol::Batch => abi::CFG_BATCH,
        };
        let emu = emu::Emulator::start(&raw).map_err(Error::Errno)?;
        let base = emu.base();
        Self::from_region(Backend::Emulated(emu), base, raw.npages, raw.flags)
    }

    /// `flags`: the `FLEXSC_CFG_*` flags registered; the control page must
    /// say they are in force.
    fn from_region(backend: Backend, base: usize, npages: u32, flags: u32) -> Result<FlexSc> {
        let nentries = npages as usize * abi::ENTRIES_PER_PAGE;
        let fx = FlexSc {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            backend,
            base,
            npages,
            nentries,
            slots: ManuallyDrop::new((0..nentries).map(|_| Slot::new()).collect()),
            next: AtomicUsize::new(0),
            first_error: AtomicI32::new(0),
            pid: getpid(),
            fork_gen: FORK_GEN.load(Ordering::SeqCst),
            down: false,
            batch: flags & abi::CFG_BATCH != 0,
            run_on_wait: flags & abi::CFG_RUN_ON_WAIT != 0,
            deferred: AtomicU32::new(0),
        };
        let c = fx.ctrl_snapshot().unwrap_or_default();
        if c.features != flags
            || c.magic != abi::MAGIC
            || c.version != abi::CONFIG_VERSION
            || c.nentries as usize != nentries
            || c.entries_offset as usize != abi::PAGE_SIZE
            || !base.is_multiple_of(abi::PAGE_SIZE)
        {
            // Dropping unmaps the region.
            drop(fx);
            return Err(Error::Errno(libc::EPROTO));
        }
        Ok(fx)
    }

    /// True when calls run as ordinary system calls (no region).
    pub fn is_fallback(&self) -> bool {
        matches!(self.backend, Backend::Fallback)
    }

    /// True in a child process of the registering process.
    pub fn is_forked(&self) -> bool {
        FORK_GEN.load(Ordering::Relaxed) != self.fork_gen
    }

    fn check(&self) -> Result<()> {
        if self.is_forked() {
            Err(Error::Forked)
        } else {
            Ok(())
        }
    }

    /// Start and length of the region; `None` in fallback mode. Writing
    /// into the region behind the library's back breaks its guarantees.
    pub fn region(&self) -> Option<(usize, usize)> {
        (self.base != 0).then(|| (self.base, abi::region_len(self.npages)))
    }

    /// Number of entries (0 in fallback mode).
    pub fn nentries(&self) -> usize {
        self.nentries
    }

    /// The completion protocol in force: [`Protocol::Batch`] or
    /// [`Protocol::Original`] (also in fallback mode, which has none).
    pub fn protocol(&self) -> Protocol {
        if self.run_on_wait {
            Protocol::RunOnWait
        } else if self.batch {
            Protocol::Batch
        } else {
            Protocol::Original
        }
    }

    fn ctrl(&self) -> &Ctrl {
        debug_assert!(self.base != 0 && !self.is_forked());
        // SAFETY: `base` is the start of the live region (page-aligned, at
        // least one control page), mapped until teardown, which needs
        // `&mut self`; `Ctrl` consists of atomics, valid for any contents
        // and for concurrent access by the kernel.
        unsafe { &*(self.base as *const Ctrl) }
    }

    fn entry(&self, i: usize) -> &Entry {
        assert!(i < self.nentries);
        // SAFETY: entry i lies in syscall page i / 64 of the live region
        // (i < nentries = npages * 64), 64-byte aligned; `Entry` consists
        // of atomics; the mapping lives as long as `&self`, as for ctrl().
        unsafe { &*((self.base + abi::PAGE_SIZE) as *const Entry).add(i) }
    }

    /// The control page's counters; `None` in fallback mode or after fork.
    pub fn ctrl_snapshot(&self) -> Option<CtrlSnapshot> {
        if self.base == 0 || self.is_forked() {
            return None;
        }
        let c = self.ctrl();
        let l = |a: &AtomicU32| a.load(Ordering::Acquire);
        Some(CtrlSnapshot {
            magic: l(&c.magic),
            version: l(&c.version),
            nentries: l(&c.nentries),
            nworkers: l(&c.nworkers),
            entries_offset: l(&c.entries_offset),
            idle_workers: l(&c.idle_workers),
            completions: l(&c.completions),
            waiters: l(&c.waiters),
            dropped: l(&c.dropped),
            submitted: l(&c.submitted),
            pollers: l(&c.pollers),
            wake_at: l(&c.wake_at),
            features: l(&c.features),
        })
    }

    /// The status word of entry `i` (`abi::FREE` ..= `abi::COMPLETING`).
    pub fn entry_status(&self, i: usize) -> Option<u32> {
        (i < self.nentries && !self.is_forked())
            .then(|| self.entry(i).status.load(Ordering::Acquire))
    }

    // -- posting --------------------------------------------------------

    /// Claims a FREE entry (reaping detached DONE entries on the way) and
    /// records its owner. Returns the index and the new `own` word.
    fn claim(&self, st: u64, tag: usize) -> Result<(usize, u64)> {
        let n = self.nentries;
        // No `%`: ARMv7-A without the division extension (Cortex-A9) makes
        // every division a library call; `next` is at most `n`.
        let mut i = self.next.load(Ordering::Relaxed);
        for _ in 0..n {
            if i >= n {
                i = 0;
            }
            let e = self.entry(i);
            let mut s = e.status.load(Ordering::Relaxed);
            if s == DONE {
                let w = self.slots[i].own.load(Ordering::Acquire);
                if matches!(state(w), DETACHED | FORGET) && self.try_reap(i, w).is_some() {
                    s = FREE;
                }
            }
            if s == FREE
                && e.status
                    .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                self.next.store(i + 1, Ordering::Relaxed);
                let slot = &self.slots[i];
                let gen = (slot.own.load(Ordering::Relaxed) >> 2) + 1;
                slot.scope.store(tag, Ordering::Relaxed);
                if tag != 0 {
                    // SAFETY: a non-zero tag is the address of the
                    // `pending` counter of a live Scope that is posting
                    // right now (it called us with its own address).
                    unsafe { &*(tag as *const AtomicUsize) }.fetch_add(1, Ordering::AcqRel);
                }
                let w = gen << 2 | st;
                slot.own.store(w, Ordering::Release);
                return Ok((i, w));
            }
            i += 1;
        }
        Err(Error::Full)
    }

    /// Gives a claimed entry back without posting it.
    fn unclaim(&self, i: usize) {
        let slot = &self.slots[i];
        let w = slot.own.load(Ordering::Relaxed);
        slot.own.store(w & !3, Ordering::Release);
        self.untag(i);
        self.entry(i).status.store(FREE, Ordering::Release);
    }

    fn untag(&self, i: usize) {
        // Set at claim, before the entry was posted, and cleared only by
        // whoever reaps or unclaims it (one thread): no atomic
        // read-modify-write for an entry without a scope.
        if self.slots[i].scope.load(Ordering::Relaxed) == 0 {
            return;
        }
        let tag = self.slots[i].scope.swap(0, Ordering::AcqRel);
        if tag != 0 {
            // SAFETY: the tagged scope waits for its pending counter to
            // reach zero before it ends, so it is alive until this
            // decrement, and we do not touch it afterwards.
            unsafe { &*(tag as *const AtomicUsize) }.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Writes a claimed entry and publishes it (no kick).
    fn fill(&self, i: usize, w: u64, nr: u32, args: [u32; 6]) {
        self.entry(i).submit(nr, args, 0, [0; 4], w, 0);
    }

    /// Publishes `n` entries just made SUBMITTED: with the batch protocol,
    /// counts them in `ctrl.submitted`. Then wakes sleeping syscall threads
    /// if there are any and none polls (after a full barrier that orders
    /// our stores before the checks).
    fn publish(&self, n: u32) {
        let c = self.ctrl();
        if self.batch {
            c.submitted.fetch_add(n, Ordering::Release);
        }
        fence(Ordering::SeqCst);
        // Acquire: a syscall thread that stopped polling counts as idle
        // before it leaves `pollers`.
        if c.pollers.load(Ordering::Acquire) != 0 {
            return;
        }
        if c.idle_workers.load(Ordering::Relaxed) == 0 {
            return;
        }
        match &self.backend {
            Backend::Kernel => {
                let _ = sys::flexsc_wait(self.base, 0, None);
            }
            #[cfg(feature = "testing")]
            Backend::Emulated(e) => e.kick(),
            Backend::Fallback => {}
        }
    }

    fn post_words(&self, nr: u32, args: [u32; 6], st: u64, tag: usize) -> Result<Ticket> {
        self.check()?;
        if self.is_fallback() {
            // SAFETY: our callers pass the words of a `Call` whose borrows
            // are live now, or words vouched for by an unsafe caller; the
            // call completes before we return.
            let ret = match unsafe { sys::syscall6(nr, args) } {
                Ok(v) => v as i32,
                Err(e) => -e,
            };
            if st == FORGET {
                self.note_error(ret);
            }
            return Ok(Ticket::immediate(self.id, ret));
        }
        let (i, w) = self.claim(st, tag)?;
        self.fill(i, w, nr, args);
        self.publish(1);
        Ok(Ticket::new(self.id, i, w))
    }

    /// Posts a call whose buffers (if any) live forever. The ticket's
    /// [`FlexSc::wait`] returns the result.
    pub fn post(&self, call: Call<'static>) -> Result<Ticket> {
        self.post_words(call.nr, call.args, OWNED, 0)
    }

    /// Posts raw words.
    ///
    /// # Safety
    ///
    /// As for [`Call::raw`]: every pointer among `args` must stay valid for
    /// what call `nr` does with it until the entry is DONE, which for a
    /// leaked ticket may be when the FlexSc is dropped.
    pub unsafe fn post_raw(&self, nr: u32, args: [u32; 6]) -> Result<Ticket> {
        self.post_words(nr, args, OWNED, 0)
    }

    /// Posts raw words without publishing them: the entry is SUBMITTED, but
    /// syscall threads are neither told (`ctrl.submitted`) nor woken until
    /// [`FlexSc::submit`], or until a wait of this FlexSc, which submits
    /// first. So a batch of posts costs at most one kick. Fallback mode
    /// runs the call at once, as [`FlexSc::post_raw`].
    ///
    /// # Safety
    ///
    /// As for [`FlexSc::post_raw`].
    pub unsafe fn post_raw_deferred(&self, nr: u32, args: [u32; 6]) -> Result<Ticket> {
        self.post_words_deferred(nr, args, 0)
    }

    /// Posts words deferred (see [`FlexSc::post_raw_deferred`]) for a
    /// ticket owned by the scope `tag` (0: none).
    fn post_words_deferred(&self, nr: u32, args: [u32; 6], tag: usize) -> Result<Ticket> {
        self.check()?;
        if self.is_fallback() {
            return self.post_words(nr, args, OWNED, tag);
        }
        let (i, w) = self.claim(OWNED, tag)?;
        self.fill(i, w, nr, args);
        // Release: whoever publishes this count publishes the entry.
        self.deferred.fetch_add(1, Ordering::Release);
        Ok(Ticket::new(self.id, i, w))
    }

    /// Publishes the deferred posts of every thread
    /// ([`FlexSc::post_raw_deferred`]) with one kick at most.
    pub fn submit(&self) {
        if self.deferred.load(Ordering::Relaxed) == 0 || self.is_fallback() || self.is_forked() {
            return;
        }
        let n = self.deferred.swap(0, Ordering::AcqRel);
        if n != 0 {
            self.publish(n);
        }
    }

    /// Posts several calls with a single kick of the syscall threads. All
    /// or nothing: `Error::Full` if there are fewer than N free entries.
    pub fn post_batch<const N: usize>(&self, calls: [Call<'static>; N]) -> Result<[Ticket; N]> {
        self.post_batch_tagged(calls, 0)
    }

    fn post_batch_tagged<const N: usize>(
        &self,
        calls: [Call<'_>; N],
        tag: usize,
    ) -> Result<[Ticket; N]> {
        self.check()?;
        if self.is_fallback() {
            let mut calls = calls.into_iter();
            return Ok(core::array::from_fn(|_| {
                let c = calls.next().expect("N calls");
                let ret = match c.run_direct() {
                    Ok(v) => v as i32,
                    Err(e) => -e,
                };
                Ticket::immediate(self.id, ret)
            }));
        }
        let mut got = [(usize::MAX, 0u64); N];
        for k in 0..N {
            match self.claim(OWNED, tag) {
                Ok(iw) => got[k] = iw,
                Err(e) => {
                    for &(i, _) in &got[..k] {
                        self.unclaim(i);
                    }
                    return Err(e);
                }
            }
        }
        for (&(i, w), c) in got.iter().zip(calls) {
            self.fill(i, w, c.nr, c.args);
        }
        self.publish(N as u32);
        Ok(got.map(|(i, w)| Ticket::new(self.id, i, w)))
    }

    /// Copies `data` into the entry's own buffer and posts `write(fd, ...)`
    /// (`pwrite64` at `offset` if given).
    fn post_copy(&self, fd: RawFd, data: &[u8], offset: Option<u64>, st: u64) -> Result<Ticket> {
        if data.len() > COPY_MAX {
            return Err(Error::TooLarge);
        }
        let direct = match offset {
            None => Call::write(fd, data),
            Some(off) => Call::pwrite64(fd, data, off),
        };
        if self.is_fallback() {
            self.check()?;
            let ret = match direct.run_direct() {
                Ok(v) => v as i32,
                Err(e) => -e,
            };
            if st == FORGET {
                self.note_error(ret);
            }
            return Ok(Ticket::immediate(self.id, ret));
        }
        self.check()?;
        let (i, w) = self.claim(st, 0)?;
        let buf = self.slots[i].data.get();
        // SAFETY: we won the FREE->CLAIMED compare-and-swap of entry i, so
        // nobody else accesses its data buffer until we publish SUBMITTED
        // (the kernel only reads it between SUBMITTED and DONE, and the
        // previous cycle reached DONE and FREE before our claim); `data`
        // fits (checked above) and does not overlap our private buffer.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), buf.cast::<u8>(), data.len()) };
        let mut args = direct.args;
        args[1] = buf as usize as u32;
        self.fill(i, w, direct.nr, args);
        self.publish(1);
        Ok(Ticket::new(self.id, i, w))
    }

    /// Posts `write(fd, data)` on a copy of `data` (at most [`COPY_MAX`]
    /// bytes): the caller may reuse `data` at once.
    pub fn write_copy(&self, fd: RawFd, data: &[u8]) -> Result<Ticket> {
        self.post_copy(fd, data, None, OWNED)
    }

    /// Posts `pwrite64(fd, data, offset)` on a copy of `data`.
    pub fn pwrite_copy(&self, fd: RawFd, data: &[u8], offset: u64) -> Result<Ticket> {
        self.post_copy(fd, data, Some(offset), OWNED)
    }

    /// Post-and-forget `write(fd, data)` on a copy of `data`: no ticket;
    /// the entry is freed by later posts or waits, and the first error is
    /// reported by [`FlexSc::drain`]. A short write is not an error.
    pub fn write_detached(&self, fd: RawFd, data: &[u8]) -> Result<()> {
        self.post_copy(fd, data, None, FORGET).map(drop)
    }

    /// Post-and-forget `pwrite64(fd, data, offset)` on a copy of `data`.
    pub fn pwrite_detached(&self, fd: RawFd, data: &[u8], offset: u64) -> Result<()> {
        self.post_copy(fd, data, Some(offset), FORGET).map(drop)
    }

    /// Posts `getpid()`.
    pub fn getpid(&self) -> Result<Ticket> {
        self.post(Call::getpid())
    }

    /// Posts `close(fd)`.
    pub fn close(&self, fd: RawFd) -> Result<Ticket> {
        self.post(Call::close(fd))
    }

    /// Posts `fsync(fd)`.
    pub fn fsync(&self, fd: RawFd) -> Result<Ticket> {
        self.post(Call::fsync(fd))
    }

    /// Posts `lseek(fd, offset, whence)`.
    pub fn lseek(&self, fd: RawFd, offset: i32, whence: i32) -> Result<Ticket> {
        self.post(Call::lseek(fd, offset, whence))
    }

    /// Posts `call` and waits for its result: a synchronous system call
    /// through FlexSC. The call's buffers are free again on return.
    pub fn call(&self, call: Call<'_>) -> Result<usize> {
        if self.is_fallback() {
            self.check()?;
            return call.run_direct().map_err(Error::Errno);
        }
        self.scope(|s| {
            // Deferred: the wait publishes it at once (with run-on-wait,
            // without a kick: flexsc_wait() runs it in this thread).
            let t = s.fx.post_words_deferred(call.nr, call.args, s.tag())?;
            s.wait(t)
        })
    }

    /// Runs `f` with a [`Scope`] that can post calls borrowing buffers that
    /// outlive the scope. Returns only after every entry posted in the
    /// scope is DONE, including those whose tickets were dropped or leaked
    /// (a call that never completes, e.g. a read on a pipe nobody writes,
    /// keeps the scope from returning). The same holds when `f` panics.
    pub fn scope<'env, F, T>(&'env self, f: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        let scope = Scope {
            fx: self,
            pending: AtomicUsize::new(0),
            scope: PhantomData,
            env: PhantomData,
        };
        struct End<'a, 'scope, 'env>(&'a Scope<'scope, 'env>);
        impl Drop for End<'_, '_, '_> {
            fn drop(&mut self) {
                self.0.finish();
            }
        }
        let end = End(&scope);
        let r = f(&scope);
        drop(end);
        r
    }

    // -- completion -----------------------------------------------------

    /// Frees entry i if its `own` word is still `w` and it is DONE: the
    /// caller read `w` before calling. Returns the call's `ret`.
    fn try_reap(&self, i: usize, w: u64) -> Option<i32> {
        let e = self.entry(i);
        if e.status.load(Ordering::Acquire) != DONE {
            return None;
        }
        let slot = &self.slots[i];
        slot.own
            .compare_exchange(w, w & !3, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        let ret = e.ret.load(Ordering::Relaxed);
        if state(w) == FORGET {
            self.note_error(ret);
        }
        self.untag(i);
        e.status.store(FREE, Ordering::Release);
        Some(ret)
    }

    fn note_error(&self, ret: i32) {
        if let Err(errno) = decode_ret(ret as isize) {
            let _ =
                self.first_error
                    .compare_exchange(0, errno, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Sleeps until `left()` is 0: `left()` says how many more completions
    /// (of any entry) are needed at least before the condition can hold,
    /// and must never say more. Publishes deferred posts first, polls
    /// [`spin_limit()`] times, then sleeps on the completion futex with the
    /// waiters count raised; with the batch protocol it first sets
    /// `ctrl.wake_at`, so it is woken once `left()` completions are there.
    /// `false` if `timeout` passed first.
    fn sleep_until(&self, mut left: impl FnMut() -> u32, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|d| Instant::now() + d);
        if self.run_on_wait {
            // Publish without a kick: flexsc_wait() runs what it can here
            // and wakes a syscall thread for the rest.
            let n = match self.deferred.load(Ordering::Relaxed) {
                0 => 0,
                _ => self.deferred.swap(0, Ordering::AcqRel),
            };
            if n != 0 {
                self.ctrl().submitted.fetch_add(n, Ordering::Release);
            }
            let need = left();
            if need == 0 {
                return true;
            }
            let sleep = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            // At least `need` entries of the region DONE: a lower bound of
            // ours; whatever it returns, `left()` decides.
            let _ = self.kernel_wait(need.min(self.nentries as u32), Some(sleep));
        } else {
            self.submit();
        }
        for _ in 0..spin_limit() {
            if left() == 0 {
                return true;
            }
            core::hint::spin_loop();
        }
        let c = self.ctrl();
        loop {
            let seen = c.completions.load(Ordering::SeqCst);
            let need = left();
            if need == 0 {
                return true;
            }
            let sleep = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(l) if !l.is_zero() => l.min(MAX_SLEEP),
                    _ => return left() == 0,
                },
                None => MAX_SLEEP,
            };
            if self.batch {
                abi::arm_wake_at(&c.wake_at, seen, seen.wrapping_add(need));
            }
            c.waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if left() == 0 {
                c.waiters.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            let _ = futex_wait(&c.completions, seen, Some(sleep));
            c.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn mine(&self, t: &Ticket) -> Result<()> {
        self.check()?;
        if t.fx == self.id {
            Ok(())
        } else {
            Err(Error::BadTicket)
        }
    }

    /// The status word of a ticket's entry now (`abi::DONE` in fallback
    /// mode); `None` for a ticket of another FlexSc or after fork.
    pub fn status(&self, t: &Ticket) -> Option<u32> {
        self.mine(t).ok()?;
        if t.imm.is_some() {
            return Some(DONE);
        }
        if self.slots[t.idx].own.load(Ordering::Acquire) != t.own {
            return Some(DONE); // reaped: the scope it came from ended
        }
        Some(self.entry(t.idx).status.load(Ordering::Acquire))
    }

    /// True when the ticket's call is complete.
    pub fn is_done(&self, t: &Ticket) -> bool {
        self.mine(t).is_ok() && self.is_done_unchecked(t)
    }

    /// [`FlexSc::is_done`] for a ticket already checked to be ours, in
    /// this process (the hot path of a wait for many tickets).
    fn is_done_unchecked(&self, t: &Ticket) -> bool {
        t.imm.is_some()
            || self.entry(t.idx).status.load(Ordering::Acquire) == DONE
            || self.slots[t.idx].own.load(Ordering::Acquire) != t.own
    }

    /// Waits up to `timeout` for the ticket's call to complete, without
    /// consuming the ticket; `Ok(true)` if it is complete.
    pub fn wait_timeout(&self, t: &Ticket, timeout: Duration) -> Result<bool> {
        self.mine(t)?;
        if t.imm.is_some() {
            return Ok(true);
        }
        Ok(self.sleep_until(|| u32::from(!self.is_done(t)), Some(timeout)))
    }

    /// Waits for the ticket's call and returns its result: the value, or
    /// `Error::Errno(e)` for `-e`.
    pub fn wait(&self, t: Ticket) -> Result<usize> {
        self.mine(&t)?;
        if let Some(ret) = t.imm {
            return decode_ret(ret as isize).map_err(Error::Errno);
        }
        let slot = &self.slots[t.idx];
        let e = self.entry(t.idx);
        // Already complete (after a wait for many) and no deferred post to
        // publish, as a wait must: no wait at all.
        if self.deferred.load(Ordering::Relaxed) == 0 {
            if let Some(ret) = self.try_reap(t.idx, t.own) {
                return decode_ret(ret as isize).map_err(Error::Errno);
            }
        }
        loop {
            self.sleep_until(
                || {
                    u32::from(
                        e.status.load(Ordering::Acquire) != DONE
                            && slot.own.load(Ordering::Acquire) == t.own,
                    )
                },
                None,
            );
            if let Some(ret) = self.try_reap(t.idx, t.own) {
                return decode_ret(ret as isize).map_err(Error::Errno);
            }
            if slot.own.load(Ordering::Acquire) != t.own {
                // Reaped at the end of its scope.
                return Err(Error::BadTicket);
            }
            // DONE was rewritten under us (only unsafe code can do that):
            // keep waiting for our cycle.
        }
    }

    /// Gives up a ticket: its entry is freed (by a later post, wait or
    /// [`FlexSc::drain`]) once the call is done; the result is discarded.
    pub fn detach(&self, t: Ticket) {
        if self.mine(&t).is_err() || t.imm.is_some() {
            return;
        }
        let slot = &self.slots[t.idx];
        let detached = t.own & !3 | DETACHED;
        if slot
            .own
            .compare_exchange(t.own, detached, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.try_reap(t.idx, detached);
        }
    }

    /// Waits until at least `min` of `tickets` are complete (all of them if
    /// `min` is larger) or `timeout` passes; returns how many are.
    pub fn wait_some(
        &self,
        tickets: &[&Ticket],
        min: usize,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        self.check()?;
        for t in tickets {
            self.mine(t)?;
        }
        self.wait_count(tickets.iter().copied(), min, timeout)
    }

    /// [`FlexSc::wait_some`] over a slice of tickets: waits until at least
    /// `min` of them are complete (all if `min` is larger) or `timeout`
    /// passes; returns how many are. With the batch protocol the waiter is
    /// woken once, when enough calls completed, not at every completion.
    pub fn wait_many(
        &self,
        tickets: &[Ticket],
        min: usize,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        self.check()?;
        if tickets.iter().any(|t| t.fx != self.id) {
            return Err(Error::BadTicket);
        }
        self.wait_count(tickets.iter(), min, timeout)
    }

    fn wait_count<'t>(
        &self,
        tickets: impl Iterator<Item = &'t Ticket> + Clone,
        min: usize,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        let min = min.min(tickets.clone().count());
        // The callers checked that the tickets are ours.
        let count = || {
            tickets
                .clone()
                .filter(|t| self.is_done_unchecked(t))
                .count()
        };
        if self.is_fallback() {
            return Ok(count());
        }
        if self.sleep_until(|| min.saturating_sub(count()) as u32, timeout) {
            Ok(count())
        } else {
            Err(Error::TimedOut)
        }
    }

    /// Waits for every ticket and returns their results in order.
    pub fn wait_all<const N: usize>(&self, tickets: [Ticket; N]) -> [Result<usize>; N] {
        tickets.map(|t| self.wait(t))
    }

    /// Waits until every post-and-forget and dropped-ticket entry is DONE,
    /// frees them, and returns the first error of a post-and-forget call
    /// since the last drain (then forgets it).
    pub fn drain(&self) -> Result<()> {
        self.check()?;
        for i in 0..self.nentries {
            let slot = &self.slots[i];
            loop {
                let w = slot.own.load(Ordering::Acquire);
                if !matches!(state(w), DETACHED | FORGET) {
                    break;
                }
                let e = self.entry(i);
                // Woken when every detached entry can be complete, not at
                // each: drain waits for all of them anyway.
                self.sleep_until(
                    || {
                        if e.status.load(Ordering::Acquire) == DONE
                            || slot.own.load(Ordering::Acquire) != w
                        {
                            0
                        } else {
                            self.detached_pending().max(1)
                        }
                    },
                    None,
                );
                self.try_reap(i, w);
            }
        }
        match self.first_error.swap(0, Ordering::AcqRel) {
            0 => Ok(()),
            e => Err(Error::Errno(e)),
        }
    }

    /// `flexsc_wait(addr, min_complete, timeout)`: kicks the syscall threads
    /// and sleeps until at least `min_complete` entries of the whole region
    /// are DONE; returns how many are. Fallback mode: `Ok(0)` at once.
    pub fn kernel_wait(&self, min_complete: u32, timeout: Option<Duration>) -> Result<u32> {
        self.check()?;
        let ts = timeout.map(|d| KernelTimespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as i64,
        });
        let r = match &self.backend {
            Backend::Fallback => return Ok(0),
            Backend::Kernel => sys::flexsc_wait(self.base, min_complete, ts.as_ref()),
            #[cfg(feature = "testing")]
            Backend::Emulated(e) => e.wait(min_complete, timeout),
        };
        r.map_err(|e| match e {
            libc::ETIMEDOUT => Error::TimedOut,
            e => Error::Errno(e),
        })
    }

    /// Detached and post-and-forget entries not DONE yet: each needs a
    /// completion.
    fn detached_pending(&self) -> u32 {
        (0..self.nentries)
            .filter(|&i| {
                matches!(
                    state(self.slots[i].own.load(Ordering::Acquire)),
                    DETACHED | FORGET
                ) && self.entry(i).status.load(Ordering::Acquire) != DONE
            })
            .count() as u32
    }

    /// True while an entry is posted or being posted: CLAIMED, SUBMITTED,
    /// or in progress in the kernel (BUSY, BLOCKED, COMPLETING).
    fn in_flight(&self) -> bool {
        (0..self.nentries).any(|i| {
            let s = self.entry(i).status.load(Ordering::Acquire);
            matches!(s, SUBMITTED | CLAIMED) || abi::in_progress(s)
        })
    }

    /// Waits up to `timeout` for calls in flight, then unmaps the region
    /// (the kernel interrupts calls still running and stops the syscall
    /// threads). Dropping does the same with a 1 s timeout.
    pub fn shutdown(mut self, timeout: Duration) {
        self.teardown(timeout);
    }

    fn teardown(&mut self, timeout: Duration) {
        if self.down {
            return;
        }
        self.down = true;
        if self.is_fallback() {
            return;
        }
        if self.is_forked() || getpid() != self.pid {
            // The region does not exist in this process, and its address may
            // hold another mapping by now: touch nothing, unmap nothing.
            // Nothing will ever read the copy buffers here: free them.
            #[cfg(feature = "testing")]
            if let Backend::Emulated(e) = core::mem::replace(&mut self.backend, Backend::Fallback) {
                e.abandon();
            }
            // SAFETY: `slots` is dropped exactly once (`down` guards it),
            // and no other code uses it after teardown.
            unsafe { ManuallyDrop::drop(&mut self.slots) };
            return;
        }
        let quiet = self.sleep_until(|| u32::from(self.in_flight()), Some(timeout));
        match core::mem::replace(&mut self.backend, Backend::Fallback) {
            Backend::Kernel => {
                // SAFETY: the region is ours (mapped by flexsc_register at
                // `base` with this length); after teardown nothing touches
                // it: `down` is set and `&mut self` excludes other users.
                unsafe {
                    libc::munmap(self.base as *mut libc::c_void, abi::region_len(self.npages))
                };
            }
            #[cfg(feature = "testing")]
            Backend::Emulated(e) => e.shutdown(),
            Backend::Fallback => {}
        }
        if quiet {
            // SAFETY: dropped exactly once; every entry was DONE or FREE, so
            // the kernel no longer reads any copy buffer.
            unsafe { ManuallyDrop::drop(&mut self.slots) };
        }
        // Otherwise the copy buffers are leaked: a call still running when
        // we unmapped might read one a little longer.
    }
}

impl Drop for FlexSc {
    fn drop(&mut self) {
        self.teardown(Duration::from_secs(1));
    }
}

// ---------------------------------------------------------------------------

/// The claim on one posted call: [`FlexSc::wait`] returns its result and
/// frees the entry. A ticket does not borrow the FlexSc (store it where you
/// like); waiting with another FlexSc gives [`Error::BadTicket`].
///
/// Dropping or leaking a ticket without waiting keeps its entry busy until
/// the FlexSc is dropped, or, for a ticket of a [`Scope`], until the scope
/// ends; [`FlexSc::detach`] gives the entry back once the call is done.
#[must_use = "an unwaited ticket keeps its entry; use FlexSc::detach to discard it"]
#[derive(Debug)]
pub struct Ticket {
    fx: u64,
    idx: usize,
    own: u64,
    /// Result known at post time (fallback mode).
    imm: Option<i32>,
}

impl Ticket {
    fn new(fx: u64, idx: usize, own: u64) -> Self {
        Ticket {
            fx,
            idx,
            own,
            imm: None,
        }
    }

    fn immediate(fx: u64, ret: i32) -> Self {
        Ticket {
            fx,
            idx: usize::MAX,
            own: 0,
            imm: Some(ret),
        }
    }

    /// Index of the entry (`None` in fallback mode).
    pub fn index(&self) -> Option<usize> {
        self.imm.is_none().then_some(self.idx)
    }
}

/// A ticket for a call that writes into a buffer of type `T` borrowed for
/// `'scope`: [`OutTicket::wait`] gives the buffer back with the result.
#[must_use = "dropping a ticket discards the result"]
pub struct OutTicket<'scope, T: ?Sized> {
    t: Ticket,
    fx: &'scope FlexSc,
    out: *mut T,
    _borrow: PhantomData<&'scope mut T>,
}

impl<'scope, T: ?Sized> OutTicket<'scope, T> {
    /// The plain ticket, e.g. for [`FlexSc::wait_some`].
    pub fn ticket(&self) -> &Ticket {
        &self.t
    }

    /// Waits for the call; returns its result and the buffer, now holding
    /// what the call wrote.
    pub fn wait(self) -> (Result<usize>, &'scope mut T) {
        let r = self.fx.wait(self.t);
        // SAFETY: `out` comes from a `&'scope mut T` whose borrow moved into
        // this ticket; the kernel wrote through it only until DONE.
        // `FlexSc::wait` returns only once the entry was DONE (reaped by
        // it, or already by someone who saw DONE: BadTicket), or in a
        // forked child, where no syscall thread writes into our memory.
        (r, unsafe { &mut *self.out })
    }
}

impl<T: ?Sized> fmt::Debug for OutTicket<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.t.fmt(f)
    }
}

/// Posting calls that borrow buffers; see [`FlexSc::scope`].
pub struct Scope<'scope, 'env: 'scope> {
    fx: &'env FlexSc,
    /// Entries posted in this scope and not yet reaped.
    pending: AtomicUsize,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    fn tag(&self) -> usize {
        &self.pending as *const AtomicUsize as usize
    }

    /// The FlexSc of this scope.
    pub fn flexsc(&self) -> &'env FlexSc {
        self.fx
    }

    /// Waits for a ticket: [`FlexSc::wait`].
    pub fn wait(&self, t: Ticket) -> Result<usize> {
        self.fx.wait(t)
    }

    /// Posts a call whose buffers live at least as long as the scope.
    pub fn post(&'scope self, call: Call<'scope>) -> Result<Ticket> {
        self.fx.post_words(call.nr, call.args, OWNED, self.tag())
    }

    /// Posts several calls with one kick; all or nothing.
    pub fn post_batch<const N: usize>(
        &'scope self,
        calls: [Call<'scope>; N],
    ) -> Result<[Ticket; N]> {
        self.fx.post_batch_tagged(calls, self.tag())
    }

    fn post_out<T: ?Sized>(
        &'scope self,
        out: &'scope mut T,
        make: impl FnOnce(&'scope mut T) -> Call<'scope>,
    ) -> Result<OutTicket<'scope, T>> {
        let p: *mut T = out;
        // SAFETY: `p` is the unique borrow we were given for 'scope; the
        // reborrow goes into the call's words only (as an address), and the
        // original is not used again until OutTicket::wait rebuilds it.
        let call = make(unsafe { &mut *p });
        Ok(OutTicket {
            t: self.post(call)?,
            fx: self.fx,
            out: p,
            _borrow: PhantomData,
        })
    }

    /// Posts `write(fd, buf)`.
    pub fn write(&'scope self, fd: RawFd, buf: &'scope [u8]) -> Result<Ticket> {
        self.post(Call::write(fd, buf))
    }

    /// Posts `pwrite64(fd, buf, offset)`.
    pub fn pwrite64(&'scope self, fd: RawFd, buf: &'scope [u8], offset: u64) -> Result<Ticket> {
        self.post(Call::pwrite64(fd, buf, offset))
    }

    /// Posts `read(fd, buf)`.
    pub fn read(&'scope self, fd: RawFd, buf: &'scope mut [u8]) -> Result<OutTicket<'scope, [u8]>> {
        self.post_out(buf, |b| Call::read(fd, b))
    }

    /// Posts `pread64(fd, buf, offset)`.
    pub fn pread64(
        &'scope self,
        fd: RawFd,
        buf: &'scope mut [u8],
        offset: u64,
    ) -> Result<OutTicket<'scope, [u8]>> {
        self.post_out(buf, |b| Call::pread64(fd, b, offset))
    }

    /// Posts `fstat64(fd, st)`.
    pub fn fstat64(
        &'scope self,
        fd: RawFd,
        st: &'scope mut Stat64,
    ) -> Result<OutTicket<'scope, Stat64>> {
        self.post_out(st, |s| Call::fstat64(fd, s))
    }

    /// Posts `clock_gettime64(clock, ts)`.
    pub fn clock_gettime(
        &'scope self,
        clock: libc::clockid_t,
        ts: &'scope mut KernelTimespec,
    ) -> Result<OutTicket<'scope, KernelTimespec>> {
        self.post_out(ts, |t| Call::clock_gettime(clock, t))
    }

    /// Ends the scope: waits for every entry it posted and frees it.
    fn finish(&self) {
        let fx = self.fx;
        if fx.is_fallback() || fx.is_forked() {
            // Forked child: no syscall thread touches this process's memory.
            return;
        }
        let me = self.tag();
        while self.pending.load(Ordering::Acquire) != 0 {
            for i in 0..fx.nentries {
                let slot = &fx.slots[i];
                let w = slot.own.load(Ordering::Acquire);
                if state(w) == IDLE || slot.scope.load(Ordering::Acquire) != me {
                    continue;
                }
                // Entry i is ours in cycle `w`: its ticket is gone (the
                // closure returned), so we may reap it whatever its state.
                let e = fx.entry(i);
                fx.sleep_until(
                    || {
                        u32::from(
                            e.status.load(Ordering::Acquire) != DONE
                                && slot.own.load(Ordering::Acquire) == w,
                        )
                    },
                    None,
                );
                fx.try_reap(i, w);
            }
            if self.pending.load(Ordering::Acquire) != 0 {
                // Another thread is in the middle of reaping one of ours.
                std::thread::yield_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn cpu_masks_hold_cpus_0_to_63_only() {
        assert_eq!(Config::cpu_mask(&[]), Some(0));
        assert_eq!(Config::cpu_mask(&[0]), Some(1));
        assert_eq!(Config::cpu_mask(&[0, 1, 3]), Some(0b1011));
        assert_eq!(Config::cpu_mask(&[63]), Some(1 << 63));
        assert_eq!(Config::cpu_mask(&[1, 64]), None);
    }
}
