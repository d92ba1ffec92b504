//! A user-space emulator of the kernel side of FlexSC (feature `testing`).
//!
//! It maps an anonymous region laid out exactly like the kernel's (control
//! page + syscall pages, not inherited by `fork()`: `MADV_DONTFORK`) and
//! runs N threads named `flexsc-<pid>-<n>` that do what the kernel's syscall
//! threads do:
//!
//! * claim a SUBMITTED entry with a compare-and-swap SUBMITTED -> BUSY, copy
//!   `nr`, `args`, `flags` and `resv` once;
//! * `-EINVAL` for non-zero flags or reserved words, `-ENOSYS` for calls not
//!   in [`rtflex_uapi::flexsc::ALLOWED`], otherwise run the call with `syscall()`;
//! * win the entry back with a compare-and-swap BUSY -> COMPLETING, only
//!   then write `ret` and store DONE (release); if the entry was rewritten
//!   meanwhile, count `dropped` and write nothing; `completions += 1`, full
//!   barrier, `FUTEX_WAKE` when `waiters` is not zero (batch protocol: only
//!   once `completions` reaches `wake_at`, which it then moves out of reach);
//! * poll `poll_us` (counted in `pollers`), then count themselves in
//!   `idle_workers`, leave `pollers`, re-check, and sleep until kicked; a
//!   kick counts the woken threads out of `idle_workers`;
//! * with the batch protocol (`FLEXSC_CFG_BATCH`, in `features`), look for
//!   work only when `submitted` differs from the posts they served;
//! * with run-on-wait (`FLEXSC_CFG_RUN_ON_WAIT`), `wait` first claims
//!   submitted entries and runs those of
//!   [`rtflex_uapi::flexsc::runs_inline`] in the waiting thread, giving the
//!   others back to the workers.
//!
//! Registration checks the configuration like the kernel (`EINVAL`), refuses
//! a second region in the process (`EBUSY`) and a process under seccomp
//! (`EPERM`). Shutdown interrupts calls in flight with a signal (`-EINTR`).
//! It cannot report BLOCKED (it does not know when a call sleeps).
//! Only meaningful on 32-bit ARM EABI, where the entry's words are the real
//! system call arguments.

use crate::sys;
use core::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, Ordering};
use rt_utils::sys::{errno, futex_wait, futex_wake_all};
use rtflex_uapi::flexsc::{self as abi, Ctrl, Entry, BUSY, COMPLETING, DONE, SUBMITTED};
use std::os::unix::thread::JoinHandleExt;
use std::sync::{mpsc, Arc, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Pid of the process that has an emulated region (EBUSY for a second).
static REGISTERED: AtomicI32 = AtomicI32::new(0);

/// The signal that interrupts workers at shutdown.
const INTERRUPT: libc::c_int = libc::SIGUSR2;

struct Shared {
    base: usize,
    nentries: usize,
    poll: Duration,
    stop: AtomicBool,
    kick: AtomicU32,
    /// The batch protocol is in force.
    batch: bool,
    /// Run-on-wait is in force.
    run_on_wait: bool,
    /// Entries `wait` gave back to the workers: posts, as `submitted`.
    requeued: AtomicU32,
}

impl Shared {
    /// Wakes the sleeping workers, counting them out of `idle_workers` at
    /// once (a worker counted in after the swap stays counted: one kick
    /// too many later, never one too few).
    fn kick(&self) {
        self.ctrl().idle_workers.swap(0, Ordering::SeqCst);
        self.kick.fetch_add(1, Ordering::SeqCst);
        futex_wake_all(&self.kick);
    }

    /// Posts counted so far: `submitted` and the entries `wait` gave back.
    fn posts(&self) -> u32 {
        let submitted = self.ctrl().submitted.load(Ordering::Acquire);
        submitted.wrapping_add(self.requeued.load(Ordering::Acquire))
    }

    /// Whether a worker that served the posts up to `seen` may have work.
    fn has_work(&self, seen: u32) -> bool {
        if self.batch {
            self.posts() != seen
        } else {
            (0..self.nentries).any(|i| self.entry(i).status.load(Ordering::Relaxed) == SUBMITTED)
        }
    }

    /// The next entry, claimed; `seen` as the kernel's (batch protocol).
    fn next(&self, at: &mut usize, seen: &mut u32) -> Option<usize> {
        if !self.batch {
            return claim(self, at);
        }
        let posts = self.posts();
        if posts == *seen {
            return None;
        }
        let i = claim(self, at);
        if i.is_none() {
            *seen = posts;
        }
        i
    }

    fn ctrl(&self) -> &Ctrl {
        // SAFETY: `base` is the start of the emulator's own mapping, which
        // stays mapped until every worker has been joined (shutdown) or
        // forever (abandon); Ctrl consists of atomics.
        unsafe { &*(self.base as *const Ctrl) }
    }

    fn entry(&self, i: usize) -> &Entry {
        assert!(i < self.nentries);
        // SAFETY: as ctrl(); entry i is inside the syscall pages.
        unsafe { &*((self.base + abi::PAGE_SIZE) as *const Entry).add(i) }
    }
}

/// The emulated kernel side of one region.
pub struct Emulator {
    shared: Arc<Shared>,
    len: usize,
    workers: Vec<JoinHandle<()>>,
}

extern "C" fn on_interrupt(_: libc::c_int) {}

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
        // value; we install a handler that does nothing (async-signal-safe)
        // and deliberately no SA_RESTART, so blocking calls return EINTR.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_interrupt as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(INTERRUPT, &sa, core::ptr::null_mut());
        }
    });
}

fn under_seccomp() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Seccomp:").map(|v| v.trim() != "0"))
        })
        .unwrap_or(false)
}

/// Bitmap of the online CPUs (the first 64).
fn online_cpus() -> u64 {
    let n = rt_utils::affinity::online_cpus().min(64);
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

fn validate(cfg: &abi::Config) -> Result<(), i32> {
    let bad = cfg.version != abi::CONFIG_VERSION
        || cfg.flags & !(abi::CFG_BATCH | abi::CFG_RUN_ON_WAIT) != 0
        || (cfg.flags & abi::CFG_RUN_ON_WAIT != 0 && cfg.flags & abi::CFG_BATCH == 0)
        || cfg.resv0 != 0
        || cfg.resv != [0, 0]
        || !(1..=abi::MAX_PAGES).contains(&cfg.npages)
        || !(1..=abi::MAX_WORKERS).contains(&cfg.nworkers)
        || cfg.poll_us > abi::MAX_POLL_US
        || (cfg.cpus != 0 && cfg.cpus & online_cpus() == 0)
        || match cfg.policy {
            abi::SCHED_OTHER => cfg.priority != 0,
            abi::SCHED_FIFO | abi::SCHED_RR => !(1..=99).contains(&cfg.priority),
            _ => true,
        };
    if bad {
        Err(libc::EINVAL)
    } else {
        Ok(())
    }
}

/// Applies the configuration's CPUs and policy to the calling thread.
fn setup_worker(cfg: &abi::Config) -> Result<(), i32> {
    if cfg.cpus != 0 {
        rt_utils::affinity::set_affinity(&rt_utils::affinity::cpus_of_mask(cfg.cpus))
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))?;
    }
    if cfg.policy != abi::SCHED_OTHER {
        rt_utils::sched::set_scheduler(cfg.policy as i32, cfg.priority as i32)
            .map_err(|_| libc::EPERM)?;
    }
    Ok(())
}

impl Emulator {
    /// Maps a region and starts the workers, or fails with an errno as the
    /// kernel would.
    pub fn start(cfg: &abi::Config) -> Result<Emulator, i32> {
        validate(cfg)?;
        if under_seccomp() {
            return Err(libc::EPERM);
        }
        // SAFETY: getpid cannot fail.
        let pid = unsafe { libc::getpid() };
        if REGISTERED.load(Ordering::SeqCst) == pid {
            return Err(libc::EBUSY);
        }
        install_handler();
        let len = abi::region_len(cfg.npages);
        // SAFETY: a fresh anonymous mapping at an address of the kernel's
        // choosing overlaps nothing.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(errno());
        }
        // SAFETY: advice on our own fresh mapping; MADV_DONTFORK only
        // changes what a child inherits (like the kernel's VM_DONTCOPY).
        unsafe { libc::madvise(p, len, libc::MADV_DONTFORK) };
        let nentries = cfg.npages as usize * abi::ENTRIES_PER_PAGE;
        let shared = Arc::new(Shared {
            base: p as usize,
            nentries,
            poll: Duration::from_micros(cfg.poll_us as u64),
            stop: AtomicBool::new(false),
            kick: AtomicU32::new(0),
            batch: cfg.flags & abi::CFG_BATCH != 0,
            run_on_wait: cfg.flags & abi::CFG_RUN_ON_WAIT != 0,
            requeued: AtomicU32::new(0),
        });
        let c = shared.ctrl();
        c.version.store(abi::CONFIG_VERSION, Ordering::Relaxed);
        c.nentries.store(nentries as u32, Ordering::Relaxed);
        c.nworkers.store(cfg.nworkers, Ordering::Relaxed);
        c.entries_offset
            .store(abi::PAGE_SIZE as u32, Ordering::Relaxed);
        c.wake_at.store(abi::out_of_reach(0), Ordering::Relaxed);
        c.features.store(cfg.flags, Ordering::Relaxed);
        c.magic.store(abi::MAGIC, Ordering::Release);
        let mut emu = Emulator {
            shared,
            len,
            workers: Vec::new(),
        };
        let (tx, rx) = mpsc::channel();
        for n in 0..cfg.nworkers {
            let sh = Arc::clone(&emu.shared);
            let tx = tx.clone();
            let cfg = *cfg;
            let spawned = std::thread::Builder::new()
                .name(format!("flexsc-{pid}-{n}"))
                .spawn(move || {
                    let r = setup_worker(&cfg);
                    let ok = r.is_ok();
                    let _ = tx.send(r);
                    if ok {
                        worker(&sh, n as usize);
                    }
                });
            match spawned {
                Ok(h) => emu.workers.push(h),
                Err(e) => {
                    emu.shutdown();
                    return Err(e.raw_os_error().unwrap_or(libc::ENOMEM));
                }
            }
        }
        drop(tx);
        for _ in 0..cfg.nworkers {
            if let Err(e) = rx.recv().unwrap_or(Err(libc::ENOMEM)) {
                emu.shutdown();
                return Err(e);
            }
        }
        REGISTERED.store(pid, Ordering::SeqCst);
        Ok(emu)
    }

    /// Start of the region.
    pub fn base(&self) -> usize {
        self.shared.base
    }

    /// What `flexsc_wait(addr, 0, NULL)` does first: wake sleeping workers.
    pub fn kick(&self) {
        self.shared.kick();
    }

    /// `flexsc_wait(addr, min_complete, timeout)`.
    pub fn wait(&self, min_complete: u32, timeout: Option<Duration>) -> Result<u32, i32> {
        let sh = &self.shared;
        if min_complete as usize > sh.nentries {
            return Err(libc::EINVAL);
        }
        if min_complete > 0 && sh.run_on_wait && sh.ctrl().pollers.load(Ordering::SeqCst) == 0 {
            let (ran, gave_back) = run_inline(sh);
            if gave_back || ran < min_complete {
                self.kick();
            }
            if ran >= min_complete {
                return Ok(ran);
            }
        } else {
            self.kick();
        }
        let deadline = timeout.map(|d| Instant::now() + d);
        let c = sh.ctrl();
        loop {
            let seen = c.completions.load(Ordering::SeqCst);
            let done = (0..sh.nentries)
                .filter(|&i| sh.entry(i).status.load(Ordering::Acquire) == DONE)
                .count() as u32;
            if done >= min_complete {
                return Ok(done);
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(l) if !l.is_zero() => Some(l),
                    _ => return Err(libc::ETIMEDOUT),
                },
                None => None,
            };
            if sh.batch {
                abi::arm_wake_at(&c.wake_at, seen, seen.wrapping_add(min_complete - done));
            }
            c.waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let r = futex_wait(&c.completions, seen, left);
            c.waiters.fetch_sub(1, Ordering::SeqCst);
            if r == Err(libc::EINTR) {
                return Err(libc::EINTR);
            }
        }
    }

    /// Stops the workers (interrupting calls in flight), joins them and
    /// unmaps the region: what the kernel does on `munmap()`.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.kick();
        for h in self.workers.drain(..) {
            while !h.is_finished() {
                // SAFETY: the thread is not joined yet, so its pthread_t is
                // valid; the signal's handler does nothing.
                unsafe { libc::pthread_kill(h.as_pthread_t(), INTERRUPT) };
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = h.join();
        }
        // SAFETY: our own mapping; every thread that used it is joined, and
        // FlexSc no longer touches it after shutdown.
        unsafe { libc::munmap(self.shared.base as *mut libc::c_void, self.len) };
        // SAFETY: getpid cannot fail.
        let pid = unsafe { libc::getpid() };
        let _ = REGISTERED.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst);
        self.len = 0;
    }

    /// In a forked child: the workers and the mapping do not exist here.
    pub fn abandon(mut self) {
        self.workers.clear();
        self.len = 0;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if self.len != 0 {
            self.stop_all();
        }
    }
}

fn worker(sh: &Shared, n: usize) {
    let c = sh.ctrl();
    let mut next = (n * 7) % sh.nentries;
    let mut seen = 0u32;
    'outer: loop {
        if sh.stop.load(Ordering::Acquire) {
            return;
        }
        if let Some(i) = sh.next(&mut next, &mut seen) {
            run(sh, i);
            continue;
        }
        let polling = !sh.poll.is_zero();
        if polling {
            c.pollers.fetch_add(1, Ordering::SeqCst);
        }
        let t0 = Instant::now();
        while t0.elapsed() < sh.poll {
            if sh.stop.load(Ordering::Acquire) {
                c.pollers.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            if sh.has_work(seen) {
                c.pollers.fetch_sub(1, Ordering::SeqCst);
                continue 'outer;
            }
            core::hint::spin_loop();
        }
        // Sleep: count ourselves idle, leave pollers, full barrier,
        // re-check (the poster publishes, full barrier, reads pollers and
        // idle_workers).
        let kicks = sh.kick.load(Ordering::SeqCst);
        c.idle_workers.fetch_add(1, Ordering::SeqCst);
        if polling {
            c.pollers.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if !sh.has_work(seen) && !sh.stop.load(Ordering::SeqCst) {
            let _ = futex_wait(&sh.kick, kicks, Some(Duration::from_millis(200)));
        }
        if sh.kick.load(Ordering::SeqCst) == kicks {
            // Not kicked (a kick counts the woken out): count ourselves out.
            let _ = c
                .idle_workers
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
        }
    }
}

fn claim(sh: &Shared, next: &mut usize) -> Option<usize> {
    for k in 0..sh.nentries {
        let i = (*next + k) % sh.nentries;
        let s = &sh.entry(i).status;
        if s.load(Ordering::Relaxed) == SUBMITTED
            && s.compare_exchange(SUBMITTED, BUSY, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            *next = (i + 1) % sh.nentries;
            return Some(i);
        }
    }
    None
}

/// Run-on-wait: claims every SUBMITTED entry, runs in this thread those
/// of `runs_inline` (and the ones that complete without running), gives
/// the others back. Returns (completed, gave any back).
fn run_inline(sh: &Shared) -> (u32, bool) {
    let (mut ran, mut gave_back) = (0, false);
    for i in 0..sh.nentries {
        let s = &sh.entry(i).status;
        if s.load(Ordering::Relaxed) != SUBMITTED
            || s.compare_exchange(SUBMITTED, BUSY, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        let req = fetch(sh.entry(i));
        let here = !req.admitted()
            || match abi::runs_inline(req.nr) {
                abi::Inline::Yes => true,
                abi::Inline::OnRegularFile => is_regular(req.args[0]),
                abi::Inline::No => false,
            };
        if here {
            complete(sh, i, execute(&req));
            ran += 1;
        } else {
            if s.compare_exchange(BUSY, SUBMITTED, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                sh.requeued.fetch_add(1, Ordering::Release);
            }
            gave_back = true;
        }
    }
    (ran, gave_back)
}

fn is_regular(fd: u32) -> bool {
    // SAFETY: an all-zero stat is a valid value to be overwritten; fstat
    // writes only into it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is a live stat buffer; any fd value is fine.
    unsafe { libc::fstat(fd as i32, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG }
}

/// A request, each word of the entry read once.
struct Request {
    nr: u32,
    args: [u32; 6],
    flags: u32,
    resv: bool,
}

impl Request {
    /// Valid and allowed: it runs (else it completes with an error).
    fn admitted(&self) -> bool {
        self.flags == 0 && !self.resv && abi::is_allowed(self.nr)
    }
}

fn fetch(e: &Entry) -> Request {
    // Read every word once: the page may change under us.
    Request {
        nr: e.nr.load(Ordering::Relaxed),
        args: core::array::from_fn(|k| e.args[k].load(Ordering::Relaxed)),
        flags: e.flags.load(Ordering::Relaxed),
        resv: e.resv.iter().any(|r| r.load(Ordering::Relaxed) != 0),
    }
}

fn run(sh: &Shared, i: usize) {
    let req = fetch(sh.entry(i));
    complete(sh, i, execute(&req));
}

fn execute(req: &Request) -> i32 {
    let (nr, args) = (req.nr, req.args);
    if req.flags != 0 || req.resv {
        -libc::EINVAL
    } else if !abi::is_allowed(nr) {
        -libc::ENOSYS
    } else {
        // SAFETY: this is the kernel's job emulated: run what the process
        // posted. Entries posted through the library carry words whose
        // buffers stay valid until DONE (its safety model); raw entries
        // are the unsafe poster's responsibility, as they are with the
        // kernel. Invalid pointers make the call fail with EFAULT.
        match unsafe { sys::syscall6(nr, args) } {
            Ok(v) => v as i32,
            Err(errno) => -errno,
        }
    }
}

fn complete(sh: &Shared, i: usize, ret: i32) {
    let e = sh.entry(i);
    let c = sh.ctrl();
    // Ownership first, then the result: `ret` is written only into an entry
    // this worker still owns (the kernel's BUSY -> COMPLETING -> DONE).
    if e.status
        .compare_exchange(BUSY, COMPLETING, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        e.ret.store(ret, Ordering::Relaxed);
        e.status.store(DONE, Ordering::Release);
        let now = c
            .completions
            .fetch_add(1, Ordering::Release)
            .wrapping_add(1);
        fence(Ordering::SeqCst);
        if c.waiters.load(Ordering::Acquire) != 0 {
            if !sh.batch {
                futex_wake_all(&c.completions);
                return;
            }
            let target = c.wake_at.load(Ordering::Relaxed);
            if abi::reached(now, target) {
                let _ = c.wake_at.compare_exchange(
                    target,
                    abi::out_of_reach(now),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                futex_wake_all(&c.completions);
            }
        }
        return;
    }
    c.dropped.fetch_add(1, Ordering::Relaxed);
}
