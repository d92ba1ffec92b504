//! The vaddr_to_paddr() system call (kernel patch 0001) and the vtop tool,
//! checked against `/proc/<pid>/pagemap` as the independent oracle.
//!
//! The tests run as root on the patched kernel. Physical addresses are
//! never hard-coded: every answer is compared with what pagemap says for the
//! same page at the same moment, and with the offset of the virtual address.
#![cfg(feature = "guest")]

use guest_tests::run;
use rt_utils::sys::errno;
use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;
use vtop::{check_resident, phys_addr, Error, Gap, Process};

fn ps() -> usize {
    vtop::page_size()
}

fn dir(p: Process) -> String {
    match p {
        Process::Current => "/proc/self".into(),
        Process::Pid(pid) => format!("/proc/{pid}"),
    }
}

/// The oracle, read here without the vtop crate: the physical address of
/// the *page* containing `addr` according to `/proc/<pid>/pagemap` (entry
/// bit 63 = present, bits 0-54 = PFN), `None` if no page is present.
fn oracle(p: Process, addr: usize) -> Option<u64> {
    let path = format!("{}/pagemap", dir(p));
    let f = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, (addr / ps()) as u64 * 8)
        .unwrap_or_else(|e| panic!("{path} at {addr:#x}: {e}"));
    let e = u64::from_ne_bytes(b);
    if e >> 63 == 0 {
        return None;
    }
    let pfn = e & ((1 << 55) - 1);
    assert_ne!(pfn, 0, "pagemap hides PFNs: are the tests running as root?");
    Some(pfn * ps() as u64)
}

/// The system call's answer for `addr`, checked: it is the oracle's page
/// plus the offset of `addr` within its page.
fn agreed(p: Process, addr: usize, what: &str) -> u64 {
    let pa = phys_addr(p, addr).unwrap_or_else(|e| panic!("{what} ({addr:#x} in {p}): {e}"));
    let page = oracle(p, addr)
        .unwrap_or_else(|| panic!("{what} ({addr:#x} in {p}): pagemap says not present"));
    let off = (addr % ps()) as u64;
    assert_eq!(pa % ps() as u64, off, "{what}: offset within the page");
    assert_eq!(
        pa - off,
        page,
        "{what} ({addr:#x} in {p}): vaddr_to_paddr {pa:#x}, pagemap page {page:#x}"
    );
    pa
}

/// The page part of a physical address.
fn page_of(pa: u64) -> u64 {
    pa & !(ps() as u64 - 1)
}

/// An anonymous mapping, unmapped on drop.
struct Mapping {
    base: usize,
    len: usize,
}

impl Mapping {
    fn new(pages: usize, prot: i32, flags: i32) -> Mapping {
        let len = pages * ps();
        // SAFETY: an anonymous mapping at an address of the kernel's
        // choosing (no MAP_FIXED): it cannot overlap any existing memory.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                prot,
                flags | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            p,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Mapping {
            base: p as usize,
            len,
        }
    }

    /// Private, read-write, nothing touched yet.
    fn fresh(pages: usize) -> Mapping {
        Mapping::new(pages, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE)
    }

    fn page(&self, i: usize) -> usize {
        assert!(i * ps() < self.len);
        self.base + i * ps()
    }

    fn write(&self, addr: usize, v: u8) {
        assert!((self.base..self.base + self.len).contains(&addr));
        // SAFETY: `addr` is inside this live read-write mapping, which no
        // Rust reference points into.
        unsafe { ptr::write_volatile(addr as *mut u8, v) }
    }

    fn read(&self, addr: usize) -> u8 {
        assert!((self.base..self.base + self.len).contains(&addr));
        // SAFETY: `addr` is inside this live readable mapping; volatile so
        // that the read (the fault) really happens.
        unsafe { ptr::read_volatile(addr as *const u8) }
    }

    fn unmap_page(&self, i: usize) {
        // SAFETY: one page of our own mapping, which no reference points
        // into; Drop unmapping the whole range again later is harmless.
        assert_eq!(unsafe { libc::munmap(self.page(i) as *mut _, ps()) }, 0);
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping; nothing refers to it any more.
        unsafe { libc::munmap(self.base as *mut _, self.len) };
    }
}

// ---------------------------------------------------------------------------
// Child processes: fork() with a pipe each way, exchanging u64 words.

/// The child's side: raw file descriptors, no allocation.
struct ChildEnd {
    rd: RawFd,
    wr: RawFd,
}

impl ChildEnd {
    fn send(&self, v: u64) {
        let b = v.to_ne_bytes();
        // SAFETY: writes from a live 8-byte buffer; a pipe write of 8 bytes
        // (< PIPE_BUF) is atomic.
        unsafe { libc::write(self.wr, b.as_ptr().cast(), 8) };
    }

    fn send_result(&self, r: Result<u64, Error>) {
        match r {
            Ok(v) => {
                self.send(0);
                self.send(v);
            }
            Err(e) => {
                self.send(e.errno() as u64);
                self.send(0);
            }
        }
    }

    /// The parent's next word; `None` when the parent is gone.
    fn recv(&self) -> Option<u64> {
        let mut b = [0u8; 8];
        // SAFETY: reads into a live 8-byte buffer.
        let n = unsafe { libc::read(self.rd, b.as_mut_ptr().cast(), 8) };
        (n == 8).then(|| u64::from_ne_bytes(b))
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the live 2-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are new and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A forked child, killed and reaped on drop unless waited for.
struct Child {
    pid: libc::pid_t,
    to: File,
    from: File,
    reaped: bool,
}

impl Child {
    /// Forks; the child runs `body` and exits with its result. `body` must
    /// not allocate, lock or panic (the parent is multi-threaded): system
    /// calls, `vtop::phys_addr`, volatile memory accesses and `ChildEnd`.
    fn fork(body: impl FnOnce(&ChildEnd) -> i32) -> Child {
        let (p2c_r, p2c_w) = pipe();
        let (c2p_r, c2p_w) = pipe();
        // SAFETY: the child only runs `body`, which by the contract above
        // makes async-signal-safe system calls only (no heap, no locks
        // another thread of the parent may have held at fork time), and
        // then `_exit`s without running destructors or atexit handlers.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let end = ChildEnd {
                rd: p2c_r.as_raw_fd(),
                wr: c2p_w.as_raw_fd(),
            };
            let code = body(&end);
            // SAFETY: _exit ends the child at once; nothing of the parent's
            // state (buffers, destructors) runs twice.
            unsafe { libc::_exit(code) };
        }
        drop((p2c_r, c2p_w));
        Child {
            pid,
            to: File::from(p2c_w),
            from: File::from(c2p_r),
            reaped: false,
        }
    }

    fn send(&mut self, v: u64) {
        self.to.write_all(&v.to_ne_bytes()).expect("child gone");
    }

    fn recv(&mut self) -> u64 {
        let mut pfd = libc::pollfd {
            fd: self.from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls one live pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
        assert_eq!(n, 1, "child {} did not answer within 20 s", self.pid);
        let mut b = [0u8; 8];
        self.from
            .read_exact(&mut b)
            .unwrap_or_else(|e| panic!("child {} died: {e}", self.pid));
        u64::from_ne_bytes(b)
    }

    fn recv_result(&mut self) -> Result<u64, Error> {
        let (tag, v) = (self.recv(), self.recv());
        if tag == 0 {
            Ok(v)
        } else {
            Err(Error::from_errno(tag as i32))
        }
    }

    /// Waits for the child; returns its exit status.
    fn wait(mut self) -> i32 {
        let mut status = 0;
        // SAFETY: waits for our own child, writing into a live int.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(r, self.pid, "waitpid: {}", std::io::Error::last_os_error());
        self.reaped = true;
        assert!(
            libc::WIFEXITED(status),
            "child {} status {status:#x}",
            self.pid
        );
        libc::WEXITSTATUS(status)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signals and reaps our own child (a failed test).
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, ptr::null_mut(), 0);
            }
        }
    }
}

/// In a forked child: become nobody (uid/gid 65534, no groups), which
/// clears every capability.
fn become_nobody() -> Result<(), i32> {
    // SAFETY: plain credential system calls with no pointer (setgroups
    // with 0 entries reads none).
    let ok = unsafe {
        libc::setgroups(0, ptr::null()) == 0 && libc::setgid(65534) == 0 && libc::setuid(65534) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(errno())
    }
}

// ---------------------------------------------------------------------------
// Capabilities of one thread (capset affects the calling thread only).

const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Removes `caps` from the calling thread's effective set.
fn drop_effective_caps(caps: &[u32]) {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a v3 header fills exactly two CapData structs
    // (the layout of struct __user_cap_data_struct), which `data` holds.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    assert_eq!(r, 0, "capget: {}", std::io::Error::last_os_error());
    for &c in caps {
        data[(c / 32) as usize].effective &= !(1 << (c % 32));
    }
    // SAFETY: capset reads the header and two CapData structs, all live.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) };
    assert_eq!(r, 0, "capset: {}", std::io::Error::last_os_error());
}

/// Runs `f` in a new thread whose effective capabilities lack `caps`.
fn without_caps<T: Send + 'static>(
    caps: &'static [u32],
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        drop_effective_caps(caps);
        f()
    })
    .join()
    .expect("thread panicked")
}

// ---------------------------------------------------------------------------
// Translations agree with pagemap everywhere in the address space.

#[test]
fn stack_addresses_translate_with_their_offset() {
    let buf = black_box([0x11u8; 300]);
    for off in [0, 1, 37, 255, 299] {
        let addr = buf.as_ptr() as usize + off;
        agreed(Process::Current, addr, "stack");
    }
    // Two bytes of the same page: same frame, the offsets differ by as much
    // as the virtual addresses.
    let a = buf.as_ptr() as usize;
    if a / ps() == (a + 200) / ps() {
        let (pa, pb) = (
            agreed(Process::Current, a, "stack"),
            agreed(Process::Current, a + 200, "stack"),
        );
        assert_eq!(pb - pa, 200);
    }
}

#[test]
fn heap_box_and_vec() {
    let b = Box::new(black_box(0xfeed_f00d_u32));
    agreed(Process::Current, &*b as *const u32 as usize, "Box");

    // Three pages' worth, written: every page is its own frame.
    let v: Vec<u8> = black_box(vec![0x5a; 3 * ps()]);
    let start = v.as_ptr() as usize;
    let mut frames = Vec::new();
    for addr in (start..start + v.len()).step_by(ps() / 2) {
        let pa = agreed(Process::Current, addr, "Vec");
        frames.push(page_of(pa));
    }
    frames.dedup();
    let mut unique = frames.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        frames.len(),
        unique.len(),
        "Vec pages share a frame: {frames:x?}"
    );
}

static DATA_WORDS: [AtomicU64; 4] = [
    AtomicU64::new(0x0123_4567_89ab_cdef),
    AtomicU64::new(2),
    AtomicU64::new(3),
    AtomicU64::new(4),
];
static BSS_WORDS: [AtomicU64; 512] = [const { AtomicU64::new(0) }; 512];

#[test]
fn data_bss_and_text() {
    // .data (non-zero initializer): read, then written (a private copy of
    // the file page).
    assert_eq!(DATA_WORDS[0].load(Ordering::Relaxed), 0x0123_4567_89ab_cdef);
    let addr = &DATA_WORDS[1] as *const AtomicU64 as usize;
    agreed(Process::Current, addr, ".data read");
    DATA_WORDS[1].store(0x22, Ordering::Relaxed);
    agreed(Process::Current, addr, ".data written");

    // .bss (zero initializer), written.
    BSS_WORDS[100].store(7, Ordering::Relaxed);
    agreed(
        Process::Current,
        &BSS_WORDS[100] as *const AtomicU64 as usize,
        ".bss",
    );

    // .text: the code running now (a page-cache page).
    let f: fn() -> usize = vtop::page_size;
    agreed(Process::Current, f as usize, ".text");
}

#[test]
fn mmap_private_and_shared_pages() {
    let m = Mapping::fresh(3);
    for i in 0..3 {
        m.write(m.page(i) + 100 * i, i as u8 + 1);
    }
    let pas: Vec<u64> = (0..3)
        .map(|i| agreed(Process::Current, m.page(i) + 100 * i, "private mmap"))
        .collect();
    assert!(pas[0] != pas[1] && pas[1] != pas[2] && pas[0] != pas[2]);

    let s = Mapping::new(2, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED);
    s.write(s.page(1) + ps() - 1, 9);
    agreed(Process::Current, s.page(1) + ps() - 1, "shared mmap");
    agreed(Process::Current, s.page(1) + 17, "shared mmap");
}

#[test]
fn own_pid_and_other_threads_name_the_same_address_space() {
    let v = black_box(vec![3u8; 64]);
    let addr = v.as_ptr() as usize + 5;
    let pa = agreed(Process::Current, addr, "heap");
    let me = Process::Pid(std::process::id() as i32);
    assert_eq!(phys_addr(me, addr), Ok(pa));
    assert_eq!(oracle(me, addr), Some(page_of(pa)));

    // A thread ID of ours is a pid for the call too.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // SAFETY: gettid takes no arguments.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        tid_tx.send(tid).unwrap();
        done_rx.recv().ok();
    });
    let tid = tid_rx.recv().unwrap();
    assert_ne!(tid, std::process::id() as i32);
    assert_eq!(phys_addr(Process::Pid(tid), addr), Ok(pa));
    done_tx.send(()).unwrap();
    t.join().unwrap();
}

// ---------------------------------------------------------------------------
// Demand paging: the call does not fault pages in.

#[test]
fn fresh_mmap_is_not_present_until_touched() {
    let m = Mapping::fresh(4);
    for i in 0..4 {
        assert_eq!(
            phys_addr(Process::Current, m.page(i)),
            Err(Error::NotPresent),
            "page {i}"
        );
        assert_eq!(oracle(Process::Current, m.page(i)), None, "page {i}");
    }
    // Asking twice changes nothing: the first call did not fault it in.
    assert_eq!(
        phys_addr(Process::Current, m.page(0) + 0x123),
        Err(Error::NotPresent)
    );

    m.write(m.page(0) + 0x10, 0xab);
    let written = agreed(Process::Current, m.page(0) + 0x123, "written page");

    // Read-only touches map the shared zero page: present, one frame.
    assert_eq!(m.read(m.page(1)), 0);
    assert_eq!(m.read(m.page(2) + 99), 0);
    let z1 = agreed(Process::Current, m.page(1), "read page 1");
    let z2 = agreed(Process::Current, m.page(2) + 99, "read page 2");
    assert_eq!(page_of(z1), page_of(z2), "two read-only pages, two frames");
    assert_ne!(page_of(written), page_of(z1));
    // Page 3 was never touched.
    assert_eq!(
        phys_addr(Process::Current, m.page(3)),
        Err(Error::NotPresent)
    );
    assert_eq!(oracle(Process::Current, m.page(3)), None);

    // Writing to a zero-page page gives it its own frame; the other
    // read-only page keeps the zero page.
    m.write(m.page(1) + 1, 1);
    let own = agreed(Process::Current, m.page(1), "written after read");
    assert_ne!(page_of(own), page_of(z1));
    assert_eq!(phys_addr(Process::Current, m.page(2)), Ok(page_of(z2)));

    // PROT_NONE: inside a mapping, never present.
    let none = Mapping::new(1, libc::PROT_NONE, libc::MAP_PRIVATE);
    assert_eq!(
        phys_addr(Process::Current, none.page(0)),
        Err(Error::NotPresent)
    );
}

/// 1 MiB of .bss that nothing but `fresh_bss_is_not_present_until_touched`
/// touches (zero initializer plus interior mutability: .bss, not .rodata).
#[repr(C, align(4096))]
struct Bss([AtomicU8; 1 << 20]);
static FRESH_BSS: Bss = Bss([const { AtomicU8::new(0) }; 1 << 20]);

#[test]
fn fresh_bss_is_not_present_until_touched() {
    let page = |i: usize| &FRESH_BSS.0[i * ps()] as *const AtomicU8 as usize;
    // Pages well inside the array: the first and last may share a page
    // with other variables.
    for i in [16, 64, 128, 200] {
        assert_eq!(
            phys_addr(Process::Current, page(i)),
            Err(Error::NotPresent),
            "bss page {i}"
        );
        assert_eq!(oracle(Process::Current, page(i)), None, "bss page {i}");
    }
    FRESH_BSS.0[64 * ps() + 5].store(1, Ordering::Relaxed);
    let written = agreed(Process::Current, page(64) + 5, "written bss");

    // Read-only touches: the zero page, the same frame as for a fresh
    // anonymous mapping.
    assert_eq!(FRESH_BSS.0[128 * ps()].load(Ordering::Relaxed), 0);
    assert_eq!(FRESH_BSS.0[200 * ps() + 7].load(Ordering::Relaxed), 0);
    let z1 = agreed(Process::Current, page(128), "read bss");
    let z2 = agreed(Process::Current, page(200) + 7, "read bss");
    assert_eq!(page_of(z1), page_of(z2));
    assert_ne!(page_of(z1), page_of(written));
    let m = Mapping::fresh(1);
    m.read(m.page(0));
    assert_eq!(
        page_of(agreed(Process::Current, m.page(0), "read mmap")),
        page_of(z1)
    );
    assert_eq!(
        phys_addr(Process::Current, page(16)),
        Err(Error::NotPresent)
    );
}

// ---------------------------------------------------------------------------
// Copy-on-write across fork().

#[test]
fn copy_on_write_after_fork() {
    let m = Mapping::fresh(1);
    let addr = m.page(0) + 0x234;
    m.write(addr, 0xa5);
    let before = agreed(Process::Current, addr, "parent before fork");

    let mut child = Child::fork(|ch| {
        ch.send_result(phys_addr(Process::Current, addr));
        if ch.recv().is_none() {
            return 3;
        }
        // SAFETY: our (the child's) copy of the parent's mapping.
        unsafe { ptr::write_volatile(addr as *mut u8, 0x5a) };
        ch.send_result(phys_addr(Process::Current, addr));
        // SAFETY: as above.
        ch.send(unsafe { ptr::read_volatile(addr as *const u8) } as u64);
        if ch.recv().is_none() {
            return 4;
        }
        0
    });
    let pid = Process::Pid(child.pid);

    // Shared after fork: the same frame in both, by both ways of asking.
    assert_eq!(child.recv_result(), Ok(before), "child's own view");
    assert_eq!(agreed(pid, addr, "child, asked by the parent"), before);
    assert_eq!(agreed(Process::Current, addr, "parent after fork"), before);

    // The child writes: it gets a copy, the parent keeps the original.
    child.send(1);
    let copy = child.recv_result().expect("child's view after its write");
    assert_eq!(child.recv(), 0x5a);
    assert_ne!(page_of(copy), page_of(before), "child wrote without a copy");
    assert_eq!(copy % ps() as u64, before % ps() as u64);
    assert_eq!(agreed(pid, addr, "child after its write"), copy);
    assert_eq!(
        agreed(Process::Current, addr, "parent after child's write"),
        before
    );
    assert_eq!(m.read(addr), 0xa5);

    child.send(2);
    assert_eq!(child.wait(), 0);
}

// ---------------------------------------------------------------------------
// mlock: resident, and stays put.

#[test]
fn mlocked_buffer_is_resident_and_stays_put() {
    const PAGES: usize = 8;
    let m = Mapping::fresh(PAGES);
    // SAFETY: locks our own mapping; mlock touches no memory of ours
    // except by faulting the pages of that mapping in.
    let r = unsafe { libc::mlock(m.base as *const _, m.len) };
    assert_eq!(r, 0, "mlock: {}", std::io::Error::last_os_error());

    // mlock faulted every page in with write faults (private writable
    // mapping): each page has its own frame, no zero page.
    let r = check_resident(Process::Current, m.base, m.len).unwrap();
    assert!(r.all_resident(), "{r:?}");
    assert_eq!((r.pages, r.resident, r.start), (PAGES, PAGES, m.base));
    let first: Vec<u64> = (0..PAGES)
        .map(|i| agreed(Process::Current, m.page(i) + i, "mlocked"))
        .collect();
    let mut frames: Vec<u64> = first.iter().map(|&p| page_of(p)).collect();
    frames.sort_unstable();
    frames.dedup();
    assert_eq!(
        frames.len(),
        PAGES,
        "mlocked pages share frames: {first:x?}"
    );

    // Churn: allocate, touch and free memory, map and unmap, sleep.
    for round in 0..4 {
        let v = black_box(vec![round as u8; 2 << 20]);
        drop(v);
        let tmp = Mapping::fresh(64);
        for i in 0..64 {
            tmp.write(tmp.page(i), 1);
        }
        drop(tmp);
        std::thread::sleep(Duration::from_millis(50));
    }

    // PREEMPT_RT kernels do not compact mlocked memory
    // (vm.compact_unevictable_allowed defaults to 0 there), so nothing moved.
    for (i, &pa) in first.iter().enumerate() {
        assert_eq!(
            agreed(Process::Current, m.page(i) + i, "mlocked, later"),
            pa,
            "page {i} moved"
        );
    }
    assert!(check_resident(Process::Current, m.base, m.len)
        .unwrap()
        .all_resident());
    // SAFETY: unlocks our own mapping.
    assert_eq!(unsafe { libc::munlock(m.base as *const _, m.len) }, 0);
}

#[test]
fn check_resident_reports_the_gaps() {
    let m = Mapping::fresh(8);
    for i in [0, 1, 2, 5] {
        m.write(m.page(i) + 3, 1);
    }
    m.unmap_page(7);
    let want = [
        Gap {
            start: m.page(3),
            pages: 2,
            error: Error::NotPresent,
        },
        Gap {
            start: m.page(6),
            pages: 1,
            error: Error::NotPresent,
        },
        Gap {
            start: m.page(7),
            pages: 1,
            error: Error::NotMapped,
        },
    ];
    let r = check_resident(Process::Current, m.base, m.len).unwrap();
    assert_eq!((r.pages, r.resident), (8, 4));
    assert_eq!(r.gaps, want);
    // An unaligned range covers the same pages.
    let r = check_resident(Process::Current, m.base + 10, m.len - 20).unwrap();
    assert_eq!((r.start, r.pages, r.resident), (m.base, 8, 4));
    assert_eq!(r.gaps, want);
    // The pages it calls resident are those pagemap calls present.
    for i in 0..8 {
        let resident = !want
            .iter()
            .any(|g| (g.start..g.start + g.pages * ps()).contains(&m.page(i)));
        assert_eq!(
            oracle(Process::Current, m.page(i)).is_some(),
            resident,
            "page {i}"
        );
    }
}

// ---------------------------------------------------------------------------
// Bad inputs: the errno table.

#[test]
fn kernel_addresses_are_einval() {
    let x = black_box(1u8);
    let user = &x as *const u8 as usize;
    assert!(phys_addr(Process::Current, user).is_ok());
    for addr in [
        0xc000_0000,
        0xc000_1234,
        0xffff_0000,
        0xffff_0fa0,
        usize::MAX,
    ] {
        assert_eq!(
            phys_addr(Process::Current, addr),
            Err(Error::KernelAddress),
            "{addr:#x}"
        );
        assert_eq!(
            vtop::vaddr_to_paddr(0, addr, 0).map_err(Error::errno),
            Err(libc::EINVAL)
        );
    }
}

#[test]
fn unmapped_addresses_are_efault() {
    assert_eq!(phys_addr(Process::Current, 0), Err(Error::NotMapped));
    assert_eq!(phys_addr(Process::Current, 0x123), Err(Error::NotMapped));
    assert_eq!(oracle(Process::Current, 0), None);

    let m = Mapping::fresh(3);
    for i in 0..3 {
        m.write(m.page(i), 1);
    }
    m.unmap_page(1);
    assert_eq!(
        phys_addr(Process::Current, m.page(1)),
        Err(Error::NotMapped)
    );
    assert_eq!(
        phys_addr(Process::Current, m.page(1) + ps() - 1),
        Err(Error::NotMapped)
    );
    assert_eq!(oracle(Process::Current, m.page(1)), None);
    // Its neighbours are still there.
    agreed(Process::Current, m.page(0), "left neighbour");
    agreed(Process::Current, m.page(2), "right neighbour");
}

/// The raw system call, for the arguments the safe wrapper never passes.
/// Returns the result and errno.
fn raw_call(pid: libc::pid_t, addr: usize, out: usize, flags: u32) -> (libc::c_long, i32) {
    let nr = vtop::SYSCALL_NUMBER.expect("the guest is ARM EABI");
    // SAFETY: `out` is never memory we can write to (callers pass NULL, an
    // unmapped page, a kernel address or a read-only mapping): the kernel
    // writes through put_user(), which checks and faults instead of
    // writing. No other argument is a pointer.
    let r = unsafe {
        libc::syscall(
            nr,
            pid as libc::c_long,
            addr as libc::c_ulong,
            out,
            flags as libc::c_uint,
        )
    };
    (r, if r == -1 { errno() } else { 0 })
}

#[test]
fn bad_output_pointer_is_efault() {
    let x = black_box(9u32);
    let addr = &x as *const u32 as usize;
    assert!(
        phys_addr(Process::Current, addr).is_ok(),
        "the address itself is fine"
    );
    let ro = Mapping::new(1, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_POPULATE);
    for out in [0, 1, 0xc000_0000, 0xffff_0000, ro.page(0), ro.page(0) + 8] {
        assert_eq!(
            raw_call(0, addr, out, 0),
            (-1, libc::EFAULT),
            "paddr = {out:#x}"
        );
    }
    // Nothing was written to the read-only page.
    assert!((0..16).all(|i| ro.read(ro.page(0) + i) == 0));
    // Control: a writable pointer works and gets the same answer.
    let mut pa = 0u64;
    assert_eq!(raw_call(0, addr, &mut pa as *mut u64 as usize, 0), (0, 0));
    assert_eq!(Ok(pa), phys_addr(Process::Current, addr));
}

#[test]
fn nonzero_flags_and_negative_pid_are_einval() {
    let x = black_box(9u32);
    let addr = &x as *const u32 as usize;
    assert!(vtop::vaddr_to_paddr(0, addr, 0).is_ok());
    for flags in [1, 2, 0x8000_0000, u32::MAX] {
        assert_eq!(
            vtop::vaddr_to_paddr(0, addr, flags),
            Err(Error::InvalidArgument),
            "flags {flags:#x}"
        );
    }
    for pid in [-1, -2, i32::MIN] {
        assert_eq!(
            vtop::vaddr_to_paddr(pid, addr, 0),
            Err(Error::InvalidArgument),
            "pid {pid}"
        );
        let mut pa = 0u64;
        assert_eq!(
            raw_call(pid, addr, &mut pa as *mut u64 as usize, 0),
            (-1, libc::EINVAL)
        );
    }
}

#[test]
fn missing_processes_and_kernel_threads_are_esrch() {
    let x = black_box(9u32);
    let addr = &x as *const u32 as usize;
    assert_eq!(
        phys_addr(Process::Pid(i32::MAX), addr),
        Err(Error::NoSuchProcess)
    );

    // kthreadd (pid 2) has no user address space.
    let comm = std::fs::read_to_string("/proc/2/comm").unwrap();
    assert_eq!(comm.trim(), "kthreadd");
    assert_eq!(phys_addr(Process::Pid(2), addr), Err(Error::NoSuchProcess));

    // A zombie has released its address space.
    let child = Child::fork(|_| 0);
    let pid = child.pid;
    // SAFETY: siginfo_t is plain data; waitid writes into the live value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waits (WNOWAIT: without reaping) for our own child.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(r, 0, "waitid: {}", std::io::Error::last_os_error());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(stat.contains(") Z "), "not a zombie: {stat}");
    assert_eq!(
        phys_addr(Process::Pid(pid), addr),
        Err(Error::NoSuchProcess)
    );
    // Reaped: the pid is gone.
    assert_eq!(child.wait(), 0);
    assert_eq!(
        phys_addr(Process::Pid(pid), addr),
        Err(Error::NoSuchProcess)
    );
}

#[test]
fn callers_without_cap_sys_admin_get_eperm() {
    let x = black_box(9u32);
    let addr = &x as *const u32 as usize;
    agreed(Process::Current, addr, "as root");
    // SAFETY: getpid takes no arguments.
    let parent = unsafe { libc::getpid() };

    // A child that became nobody: no capabilities at all.
    let mut child = Child::fork(|ch| {
        if let Err(e) = become_nobody() {
            ch.send_result(Err(Error::Other(e)));
            return 1;
        }
        ch.send_result(Ok(0));
        ch.send_result(phys_addr(Process::Current, addr));
        ch.send_result(phys_addr(Process::Pid(parent), addr));
        0
    });
    assert_eq!(child.recv_result(), Ok(0), "setuid(65534) failed");
    assert_eq!(
        child.recv_result(),
        Err(Error::PermissionDenied),
        "own memory"
    );
    assert_eq!(
        child.recv_result(),
        Err(Error::PermissionDenied),
        "parent's memory"
    );
    assert_eq!(child.wait(), 0);

    // A root thread with CAP_SYS_ADMIN dropped from its effective set.
    let r = without_caps(&[CAP_SYS_ADMIN], move || {
        (
            phys_addr(Process::Current, addr),
            phys_addr(Process::Pid(parent), addr),
        )
    });
    assert_eq!(
        r,
        (Err(Error::PermissionDenied), Err(Error::PermissionDenied))
    );
    // And we still may. (Not necessarily the same frame as before: our
    // stack page was copy-on-write shared with the child.)
    agreed(Process::Current, addr, "as root, after");
}

/// `errno` of opening `/proc/<pid>/<file>`, 0 if it opens.
fn open_errno(pid: libc::pid_t, file: &str) -> i32 {
    match File::open(format!("/proc/{pid}/{file}")) {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

/// For another process the call needs PTRACE_MODE_READ access by the
/// ptrace rules themselves, else EACCES. The kernel patch deliberately
/// checks ptrace_may_access() instead of using mm_access(), which lets
/// every perfmon_capable() caller (CAP_PERFMON or CAP_SYS_ADMIN) through,
/// as /proc/<pid>/pagemap does. Checked from a thread that demonstrably
/// lacks CAP_SYS_PTRACE: another user's non-dumpable process is refused,
/// a same-user dumpable one is not.
#[test]
fn ptrace_rules_decide_access_to_other_processes() {
    let m = Mapping::fresh(1);
    let addr = m.page(0) + 8;
    m.write(addr, 1);

    // Two targets: one that became nobody (another user, not dumpable) and
    // one that stays root (same user, dumpable). Each writes its own copy.
    let spawn = |nobody: bool, value: u8| {
        Child::fork(move |ch| {
            if nobody {
                if let Err(e) = become_nobody() {
                    ch.send_result(Err(Error::Other(e)));
                    return 1;
                }
            }
            // SAFETY: our (the child's) copy of the parent's mapping.
            unsafe { ptr::write_volatile(addr as *mut u8, value) };
            ch.send_result(Ok(0));
            ch.recv();
            0
        })
    };
    let mut nobody = spawn(true, 2);
    let mut root = spawn(false, 3);
    assert_eq!(nobody.recv_result(), Ok(0), "setuid(65534) failed");
    assert_eq!(root.recv_result(), Ok(0));
    let (nobody_pid, root_pid) = (nobody.pid, root.pid);

    // Full root may look into both.
    let pa_nobody = agreed(Process::Pid(nobody_pid), addr, "nobody's page");
    let pa_root = agreed(Process::Pid(root_pid), addr, "root child's page");
    assert_ne!(page_of(pa_nobody), page_of(pa_root));

    // A thread without CAP_SYS_PTRACE (but with CAP_SYS_ADMIN).
    let r = without_caps(&[CAP_SYS_PTRACE], move || {
        [nobody_pid, root_pid].map(|pid| {
            (
                open_errno(pid, "mem"),
                open_errno(pid, "pagemap"),
                phys_addr(Process::Pid(pid), addr),
            )
        })
    });
    let [(nobody_mem, nobody_pm, nobody_call), (_, root_pm, root_call)] = r;
    // The capability is really gone: attaching-mode access to another
    // user's process (/proc/<pid>/mem, not granted by CAP_SYS_ADMIN) is
    // refused.
    assert_eq!(nobody_mem, libc::EACCES, "/proc/<nobody>/mem");
    // Same user, dumpable: allowed.
    assert_eq!((root_pm, root_call), (0, Ok(pa_root)));
    // Another user, not dumpable: the ptrace rules refuse it. The call
    // deliberately does not let CAP_SYS_ADMIN stand in for ptrace access
    // (mm_access() would, through perfmon_capable()); /proc/<pid>/pagemap
    // does, so here the two differ on purpose (see the patch's message).
    assert_eq!(nobody_call, Err(Error::NoPtraceAccess));
    assert_eq!(nobody_pm, 0, "pagemap's rule changed: revisit the patch");
    let _ = pa_nobody;
    println!("another user's process without CAP_SYS_PTRACE: {nobody_call:?}");

    nobody.send(0);
    root.send(0);
    assert_eq!(nobody.wait(), 0);
    assert_eq!(root.wait(), 0);
}

// ---------------------------------------------------------------------------
// The vtop tool, against the library.

fn vtop_cli(args: &[&str]) -> (i32, String) {
    let out = run("vtop", args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "vtop {args:?}: {stderr}");
    (out.status.code().expect("vtop killed"), stdout)
}

#[test]
fn vtop_tool_translates_and_checks_ranges() {
    let pid = std::process::id().to_string();
    let m = Mapping::fresh(4);
    // SAFETY: locks our own mapping (faulting its pages in).
    assert_eq!(unsafe { libc::mlock(m.base as *const _, m.len) }, 0);
    let addr = m.page(2) + 0x1a4;
    let pa = agreed(Process::Current, addr, "mlocked");

    let hex = format!("{addr:#x}");
    let (code, out) = vtop_cli(&["--pagemap", &pid, &hex]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!("{addr:#010x} -> {pa:#018x}  pagemap: {pa:#018x}\n")
    );
    // Decimal works too.
    let (code, out) = vtop_cli(&[&pid, &addr.to_string()]);
    assert_eq!((code, out), (0, format!("{addr:#010x} -> {pa:#018x}\n")));

    let base = format!("{:#x}", m.base);
    let end = m.base + m.len;
    let (code, out) = vtop_cli(&[&pid, &base, "--len", &m.len.to_string()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!("{:#010x}-{end:#010x}: 4 pages, all resident\n", m.base)
    );
    // The same range as /proc/<pid>/maps writes it.
    let (code, out) = vtop_cli(&["-p", &pid, &format!("{:x}-{end:x}", m.base)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("  pagemap: agrees on 4 pages\n"), "{out}");

    // A fresh mapping is not resident; the tool says where and why.
    let f = Mapping::fresh(3);
    f.write(f.page(0), 1);
    let (code, out) = vtop_cli(&[&pid, &format!("{:#x}", f.base), "--len", "3"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!(
            "{0:#010x}-{1:#010x}: 1 page, all resident\n",
            f.base,
            f.base + ps()
        )
    );
    let (code, out) = vtop_cli(&[
        &pid,
        &format!("{:#x}", f.base),
        "--len",
        &(3 * ps()).to_string(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out,
        format!(
            "{:#010x}-{:#010x}: 3 pages, 1 resident, 2 not:\n  \
             {:#010x}-{:#010x} (2 pages): not present: never touched or swapped out\n",
            f.base,
            f.base + 3 * ps(),
            f.page(1),
            f.base + 3 * ps()
        )
    );

    // Errors: one line each, exit status 1.
    let (code, out) = vtop_cli(&[&pid, "0xc0000000", "0", &format!("{:#x}", f.page(2))]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!(
            "0xc0000000: kernel address: only user-space addresses can be translated\n\
             0x00000000: not mapped: no mapping contains this address\n\
             {:#010x}: not present: never touched or swapped out\n",
            f.page(2)
        )
    );
    // SAFETY: unlocks our own mapping.
    assert_eq!(unsafe { libc::munlock(m.base as *const _, m.len) }, 0);
}
