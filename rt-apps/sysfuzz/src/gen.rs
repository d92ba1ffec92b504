//! Structured random values: system call numbers, argument words, FlexSC
//! configurations, addresses of every interesting kind.
//!
//! Nothing here allocates: forked children of a multi-threaded process use
//! the same generators. The values are confined by construction where the
//! call could otherwise reach outside the fuzzer's scratch directory (see
//! [`ioctl_request`] and [`fcntl_command`]); paths are confined by the chroot
//! the fuzzing processes run in.

use crate::stats::OWN_FDS;
pub use guest_tests::XorShift as Rng;
use rtflex_uapi::flexsc as abi;
use rtflex_uapi::nr;

/// A seed for part `k` of a run with seed `seed` (splitmix64 of both).
pub fn derive(seed: u64, k: u64) -> u64 {
    let mut z = seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Small helpers on top of [`Rng`].
pub trait RngExt {
    /// True with probability 1/n.
    fn one_in(&mut self, n: u32) -> bool;
    /// A number in `lo..=hi`.
    fn between(&mut self, lo: u32, hi: u32) -> u32;
}

impl RngExt for Rng {
    fn one_in(&mut self, n: u32) -> bool {
        self.below(n) == 0
    }

    fn between(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(hi - lo + 1)
    }
}

/// Kernel addresses on 32-bit ARM (3G/1G split): the modules area, lowmem,
/// the vectors page, the top of the address space. All `>= TASK_SIZE`.
pub const KERNEL_ADDRS: [u32; 6] = [
    0xBF00_0000,
    0xC000_0000,
    0xC000_8000,
    0xFFFF_0000,
    0xFFFF_0FE0,
    0xFFFF_FFFF,
];
/// The lowest kernel address: `TASK_SIZE` with the 3G/1G split.
pub const TASK_SIZE: u32 = 0xBF00_0000;
/// User addresses below this are never mapped in a fuzzing process (its
/// static executable starts at 0x10000, and it maps nothing at a fixed
/// address there): small numbers, and pointers that fault.
pub const LOW: u32 = 0x1_0000;
/// Bytes a pointer into the region keeps before the region's end: more
/// than any fixed-size result a call writes (uname's 390 bytes).
pub const REGION_ROOM: u32 = 512;

/// Layout of the scratch buffer: fixtures at fixed offsets, then free
/// space the kernel may write into.
pub mod layout {
    /// Size of the scratch buffer (read-write; an inaccessible guard page
    /// follows it).
    pub const LEN: usize = 64 * 1024;
    /// NUL-terminated relative and absolute paths, one per 64-byte slot.
    pub const PATHS: usize = 0;
    /// Number of path slots.
    pub const NPATHS: usize = 14;
    /// `struct old_timespec32` values (8 bytes each).
    pub const TS32: usize = 1024;
    /// `struct __kernel_timespec` values (16 bytes each).
    pub const TS64: usize = 1280;
    /// Number of timespecs of each kind.
    pub const NTS: usize = 8;
    /// `struct iovec` arrays (8 bytes each).
    pub const IOV: usize = 1536;
    /// Number of iovecs.
    pub const NIOV: usize = 16;
    /// `struct pollfd` array (8 bytes each).
    pub const POLLFD: usize = 2048;
    /// Socket addresses (128-byte slots).
    pub const SOCKADDR: usize = 2304;
    /// Number of socket addresses.
    pub const NSOCKADDR: usize = 3;
    /// `struct msghdr` (28 bytes on ARM).
    pub const MSGHDR: usize = 2816;
    /// A flexsc_config (64 bytes, plus zeroes after it).
    pub const CONFIG: usize = 3072;
    /// A path longer than PATH_MAX.
    pub const LONG_PATH: usize = 4096;
    /// Length of that path (without the NUL).
    pub const LONG_PATH_LEN: usize = 4200;
    /// Free space from here to LEN.
    pub const FREE: usize = 16 * 1024;
}

/// The addresses and descriptors a fuzzing process owns: every pointer and
/// fd argument is drawn from here (or is invalid on purpose).
#[derive(Clone, Copy, Debug, Default)]
pub struct Pools {
    /// The scratch buffer ([`layout`]), followed by a PROT_NONE guard page.
    pub scratch: usize,
    /// A read-only page.
    pub ro: usize,
    /// A mapped page that is never touched (vaddr_to_paddr: ENOENT).
    pub untouched: usize,
    /// An inaccessible page (PROT_NONE, never touched, never unmapped).
    pub hole: usize,
    /// Descriptors opened in the scratch directory (files, pipes, sockets,
    /// eventfd, epoll, the directory).
    pub fds: [i32; 16],
    /// How many of `fds` are valid.
    pub nfds: usize,
    /// The directory's descriptor.
    pub dirfd: i32,
    /// Write ends of pipes and the second socket of each pair: where the
    /// fuzzer itself writes to wake up blocked reads.
    pub feed: [i32; 4],
    /// Read ends of those.
    pub drain: [i32; 4],
    /// The [kml] page, in a trusted process.
    pub kml: usize,
    /// An inaccessible area as large as the largest region: where mremap
    /// of a region may move it (MREMAP_FIXED unmaps its destination).
    pub spare: usize,
}

/// The live region as a generator sees it: start and length.
pub type RegionView = Option<(usize, usize)>;

/// An address inside a region: the control page, its words, entry starts,
/// the middle, the last bytes (crossing the end).
pub fn region_addr(rng: &mut Rng, addr: usize, len: usize) -> u32 {
    let entries = (len - abi::PAGE_SIZE) / 64;
    let a = match rng.below(7) {
        0 => addr,
        1 => addr + 64 * rng.below(5) as usize,
        2 => addr + abi::PAGE_SIZE,
        3 => addr + abi::PAGE_SIZE + 64 * rng.below(entries as u32) as usize,
        4 => addr + len / 2,
        5 => addr + len - 4,
        _ => addr + rng.below(len as u32) as usize,
    };
    // Never the start of an entry's `ret` word: a write of 1-4 bytes there
    // would change the result of a call and nothing the poster can check.
    let a = if a >= addr + abi::PAGE_SIZE && (32..36).contains(&(a % 64)) {
        a - a % 64 + 36
    } else {
        a
    };
    a as u32
}

/// Any user or kernel address of interest (for vaddr_to_paddr, wait
/// addresses, the configuration pointer).
pub fn any_addr(rng: &mut Rng, p: &Pools, region: RegionView) -> u32 {
    match rng.below(14) {
        0 => 0,
        1 => rng.pick(&KERNEL_ADDRS),
        2 => TASK_SIZE | rng.next_u32(),
        3 => TASK_SIZE - rng.between(1, 8),
        4 => p.hole as u32 + rng.below(4096),
        5 => p.untouched as u32 + rng.below(4096),
        6 => p.ro as u32 + rng.below(4096),
        7 => (p.scratch + rng.below(layout::LEN as u32) as usize) as u32,
        8 => (p.scratch + layout::LEN) as u32 + rng.below(4096), // guard page
        9 | 10 => match region {
            Some((a, l)) => region_addr(rng, a, l),
            None => p.scratch as u32,
        },
        11 if p.kml != 0 => p.kml as u32 + rng.below(4096),
        12 => rng.below(0x1_0000),
        _ => rng.next_u32(),
    }
}

/// A buffer pointer for a data argument: mostly free scratch space (the
/// kernel may write there), sometimes the region itself, invalid
/// addresses, or a buffer that runs into the guard page.
pub fn buf_ptr(rng: &mut Rng, p: &Pools, region: RegionView) -> u32 {
    match rng.below(16) {
        0..=6 => {
            (p.scratch + layout::FREE + rng.below((layout::LEN - layout::FREE) as u32) as usize)
                as u32
        }
        7 => (p.scratch + layout::LEN) as u32 - rng.between(1, 64), // runs into the guard page
        8 | 9 => match region {
            Some((a, l)) => region_addr(rng, a, l),
            None => p.scratch as u32 + layout::FREE as u32,
        },
        10 => rng.pick(&KERNEL_ADDRS),
        11 => 0,
        12 => p.ro as u32,
        13 => p.hole as u32,
        14 => (p.scratch + rng.below(layout::FREE as u32) as usize) as u32, // over the fixtures
        _ => rng.next_u32(),
    }
}

/// A length: zero, small, page-sized, huge.
pub fn len(rng: &mut Rng) -> u32 {
    match rng.below(10) {
        0 => 0,
        1..=3 => rng.between(1, 128),
        4 => rng.pick(&[4096, 4095, 4097, 8192, 65536]),
        5 => rng.pick(&[0x7FFF_FFFF, 0xFFFF_FFFF, 0x8000_0000, 0x1000_0000]),
        6 => rng.below(1 << 20),
        _ => rng.below(4096),
    }
}

/// A descriptor: one of ours mostly, else invalid or a small number that
/// may or may not be open. Never one of the fuzzer's own descriptors.
pub fn fd(rng: &mut Rng, p: &Pools) -> u32 {
    let v = match rng.below(10) {
        0..=5 if p.nfds > 0 => p.fds[rng.below(p.nfds as u32) as usize],
        6 => -1,
        7 => -100, // AT_FDCWD
        8 => rng.below(96) as i32,
        _ => rng.next_u32() as i32,
    };
    spare_own_fds(v as u32)
}

/// A directory descriptor argument of the *at() calls.
pub fn dirfd(rng: &mut Rng, p: &Pools) -> u32 {
    match rng.below(4) {
        0 | 1 => (-100i32) as u32, // AT_FDCWD
        2 => p.dirfd as u32,
        _ => fd(rng, p),
    }
}

/// Replaces the fuzzer's own descriptors (executable, statistics, maps)
/// by a number just above them: random calls may close or replace any
/// other descriptor.
pub fn spare_own_fds(v: u32) -> u32 {
    if OWN_FDS.contains(&(v as i32)) {
        v + OWN_FDS.len() as u32
    } else {
        v
    }
}

/// A path argument: one of the fixture paths (relative, absolute, "..",
/// empty, long), or an invalid pointer.
pub fn path(rng: &mut Rng, p: &Pools) -> u32 {
    match rng.below(12) {
        0 => p.scratch as u32 + layout::LONG_PATH as u32,
        1 => 0,
        2 => rng.pick(&KERNEL_ADDRS),
        3 => (p.scratch + layout::LEN - 3) as u32, // no NUL before the guard page
        _ => (p.scratch + layout::PATHS + 64 * rng.below(layout::NPATHS as u32) as usize) as u32,
    }
}

/// Open flags: the access modes and the interesting bits, or anything.
pub fn open_flags(rng: &mut Rng) -> u32 {
    if rng.one_in(8) {
        return rng.next_u32();
    }
    let mut f = rng.below(3) as i32; // O_RDONLY, O_WRONLY, O_RDWR
    for bit in [
        libc::O_CREAT,
        libc::O_TRUNC,
        libc::O_APPEND,
        libc::O_EXCL,
        libc::O_DIRECTORY,
        libc::O_NOFOLLOW,
        libc::O_NONBLOCK,
        libc::O_CLOEXEC,
        libc::O_PATH,
        libc::O_TMPFILE,
        libc::O_SYNC,
        libc::O_DIRECT,
    ] {
        if rng.one_in(4) {
            f |= bit;
        }
    }
    f as u32
}

/// A flags word: zero, a few low bits, or anything.
pub fn flags(rng: &mut Rng) -> u32 {
    match rng.below(6) {
        0 | 1 => 0,
        2 => 1 << rng.below(32),
        3 => rng.below(16),
        4 => rng.next_u32() & 0xFFFF,
        _ => rng.next_u32(),
    }
}

/// One word of a 64-bit offset pair.
pub fn off_word(rng: &mut Rng, high: bool) -> u32 {
    if high {
        rng.pick(&[0, 0, 0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF])
    } else {
        rng.pick(&[0, 1, 4096, 4095, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x8000_0000])
    }
}

/// A clock id: the real ones and invalid ones.
pub fn clock(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => 0,
        1 => 1,
        2 => rng.below(12),
        _ => rng.next_u32(),
    }
}

/// An ioctl request number. Never a terminal request ('T': TIOCSTI,
/// FIOASYNC, ...), a socket or device-configuration one (0x89: SIOCS*,
/// FIOSETOWN, SIOCSPGRP; 0x8b: wireless) or a file-system freeze ('X'):
/// those act beyond the fuzzer's own descriptors or signal other processes.
pub fn ioctl_request(rng: &mut Rng) -> u32 {
    let r = match rng.below(4) {
        0 => rng.pick(&[
            0x541B,      // FIONREAD ('T', but read-only: allowed explicitly)
            0x8008_6601, // FS_IOC_GETFLAGS
            0x4008_6602, // FS_IOC_SETFLAGS
            0x8004_6602, // FS_IOC32_SETFLAGS family
            0x4004_7602, // FS_IOC_SETVERSION
            0xC020_660B, // FS_IOC_FIEMAP
            0x4008_9410, // FICLONE-like numbers
        ]),
        _ => rng.next_u32(),
    };
    ioctl_request_keep(r)
}

/// A fcntl64 command. Never F_SETOWN/F_SETOWN_EX (would send SIGIO to
/// another process) or F_SETSIG (could pick SIGKILL for ourselves).
pub fn fcntl_command(rng: &mut Rng) -> u32 {
    const SAFE: [u32; 22] = [
        0, 1, 2, 3, 4, 9, 11, 12, 13, 14, 16, 36, 37, 38, 1024, 1025, 1026, 1030, 1031, 1032, 1033,
        1034,
    ];
    let c = if rng.one_in(5) {
        rng.next_u32()
    } else {
        rng.pick(&SAFE)
    };
    fcntl_keep(c)
}

/// The argument of fcntl64 `cmd`: bounded pipe sizes, lock structures in
/// scratch, flags.
pub fn fcntl_arg(rng: &mut Rng, p: &Pools, cmd: u32, region: RegionView) -> u32 {
    match cmd {
        1031 => rng.pick(&[0, 4096, 65536, 262_144]), // F_SETPIPE_SZ: bounded
        12..=14 | 36..=38 => buf_ptr(rng, p, region), // struct flock64
        4 => rng.next_u32() & !(libc::O_ASYNC as u32), // F_SETFL without O_ASYNC
        _ => flags(rng),
    }
}

/// A file mode.
pub fn mode(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => 0o644,
        1 => 0o777,
        2 => 0,
        _ => rng.next_u32(),
    }
}

/// A random word that is no address of this process's own memory: small,
/// a kernel address, or inside the inaccessible spare area.
pub fn wild(rng: &mut Rng, p: &Pools) -> u32 {
    match rng.below(4) {
        0 => rng.below(LOW),
        1 if p.spare != 0 => p.spare as u32 + rng.below(abi::region_len(abi::MAX_PAGES) as u32),
        _ => TASK_SIZE + rng.below(u32::MAX - TASK_SIZE) + 1,
    }
}

/// Whether `v` lies in `[start, start + len)`.
fn within(v: u32, start: usize, len: usize) -> bool {
    start != 0 && (v as usize) >= start && (v as usize) < start + len
}

/// Makes the words of one call safe for the fuzzing process itself: a
/// random call may write through any word used as a pointer, so no word
/// that can be one may point at the process's own memory (stacks, heap,
/// executable, statistics, the never-touched page) except the scratch
/// buffer (followed by its guard page), the read-only and inaccessible
/// pages, the spare area, the [kml] page and the region. Pointers into the
/// region keep [`REGION_ROOM`] bytes before its end, and then no length
/// (or generic word) of the call may exceed the room left. Other user
/// addresses become [`wild`] words; small numbers and kernel addresses stay.
fn confine(words: &mut [u32; 6], kinds: &[Arg; 6], rng: &mut Rng, p: &Pools, region: RegionView) {
    let mut room = u32::MAX;
    let mut in_region = [false; 6];
    for (i, (w, k)) in words.iter_mut().zip(kinds).enumerate() {
        let v = *w;
        if !k.may_point() || !(LOW..TASK_SIZE).contains(&v) {
            continue;
        }
        if let Some((a, l)) = region.filter(|&(a, l)| within(v, a, l)) {
            let end = (a + l) as u32;
            *w = v.min(end - REGION_ROOM);
            room = room.min(end - *w);
            in_region[i] = true;
            continue;
        }
        let ours = within(v, p.scratch, layout::LEN + abi::PAGE_SIZE)
            || within(v, p.ro, abi::PAGE_SIZE)
            || within(v, p.hole, abi::PAGE_SIZE)
            || within(v, p.spare, abi::region_len(abi::MAX_PAGES))
            || within(v, p.kml, abi::PAGE_SIZE);
        if !ours {
            *w = wild(rng, p);
        }
    }
    if room != u32::MAX {
        // Any length of the call (or generic word, which may be one) fits
        // the room: which pointer it goes with is the call's business.
        for (i, (w, k)) in words.iter_mut().zip(kinds).enumerate() {
            if matches!(k, Arg::Len | Arg::Small | Arg::Any) && !in_region[i] && *w > room {
                *w = room;
            }
        }
    }
}

/// A generic argument word: any of the above kinds.
pub fn any_word(rng: &mut Rng, p: &Pools, region: RegionView) -> u32 {
    match rng.below(10) {
        0 | 1 => fd(rng, p),
        2 | 3 => buf_ptr(rng, p, region),
        4 => len(rng),
        5 => path(rng, p),
        6 => flags(rng),
        7 => rng.below(64),
        8 => rng.pick(&[0, 1, u32::MAX, 0x8000_0000]),
        _ => rng.next_u32(),
    }
}

/// What an argument slot takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    Fd,
    Dirfd,
    Buf,
    Len,
    Path,
    OpenFlags,
    Flags,
    Mode,
    Off,
    OffHi,
    Ts32,
    Ts64,
    Iov,
    Small,
    Clock,
    PollFds,
    Timeout,
    Sockaddr,
    Msghdr,
    Ioctl,
    Fcntl,
    Any,
}

impl Arg {
    /// Whether the call may use a word of this slot as a pointer.
    fn may_point(self) -> bool {
        matches!(
            self,
            Arg::Buf
                | Arg::Path
                | Arg::Ts32
                | Arg::Ts64
                | Arg::Iov
                | Arg::PollFds
                | Arg::Sockaddr
                | Arg::Msghdr
                | Arg::Any
        )
    }
}

fn slots(n: u32) -> [Arg; 6] {
    use Arg::*;
    match n {
        nr::READ | nr::WRITE | nr::GETDENTS64 => [Fd, Buf, Len, Any, Any, Any],
        nr::PREAD64 | nr::PWRITE64 => [Fd, Buf, Len, Any, Off, OffHi],
        nr::READV | nr::WRITEV => [Fd, Iov, Small, Any, Any, Any],
        nr::CLOSE | nr::DUP | nr::FSYNC | nr::FDATASYNC => [Fd, Any, Any, Any, Any, Any],
        nr::DUP3 => [Fd, Small, Flags, Any, Any, Any],
        nr::LSEEK => [Fd, Off, Small, Any, Any, Any],
        nr::LLSEEK => [Fd, OffHi, Off, Buf, Small, Any],
        nr::OPENAT => [Dirfd, Path, OpenFlags, Mode, Any, Any],
        nr::MKDIRAT | nr::FACCESSAT => [Dirfd, Path, Mode, Flags, Any, Any],
        nr::UNLINKAT => [Dirfd, Path, Flags, Any, Any, Any],
        nr::RENAMEAT2 => [Dirfd, Path, Dirfd, Path, Flags, Any],
        nr::READLINKAT => [Dirfd, Path, Buf, Len, Any, Any],
        nr::FSTATAT64 => [Dirfd, Path, Buf, Flags, Any, Any],
        nr::STATX => [Dirfd, Path, Flags, Flags, Buf, Any],
        nr::NANOSLEEP => [Ts32, Buf, Any, Any, Any, Any],
        nr::CLOCK_NANOSLEEP => [Clock, Flags, Ts32, Buf, Any, Any],
        nr::CLOCK_NANOSLEEP_TIME64 => [Clock, Flags, Ts64, Buf, Any, Any],
        nr::CLOCK_GETTIME | nr::CLOCK_GETTIME64 => [Clock, Buf, Any, Any, Any, Any],
        nr::POLL => [PollFds, Small, Timeout, Any, Any, Any],
        nr::IOCTL => [Fd, Ioctl, Buf, Any, Any, Any],
        nr::FCNTL64 => [Fd, Fcntl, Any, Any, Any, Any],
        nr::FSTAT64 => [Fd, Buf, Any, Any, Any, Any],
        nr::FTRUNCATE64 => [Fd, Any, Off, OffHi, Any, Any],
        nr::FALLOCATE => [Fd, Flags, Off, OffHi, Off, OffHi],
        nr::ARM_FADVISE64_64 | nr::SYNC_FILE_RANGE2 => [Fd, Flags, Off, OffHi, Off, OffHi],
        nr::GETCWD => [Buf, Len, Any, Any, Any, Any],
        nr::UNAME => [Buf, Any, Any, Any, Any, Any],
        nr::EPOLL_CTL => [Fd, Small, Fd, Buf, Any, Any],
        nr::EVENTFD2 => [Small, Flags, Any, Any, Any, Any],
        nr::PIPE2 => [Buf, Flags, Any, Any, Any, Any],
        nr::CONNECT => [Fd, Sockaddr, Small, Any, Any, Any],
        nr::SENDTO => [Fd, Buf, Len, Flags, Sockaddr, Small],
        nr::RECVFROM => [Fd, Buf, Len, Flags, Buf, Buf],
        nr::SENDMSG | nr::RECVMSG => [Fd, Msghdr, Flags, Any, Any, Any],
        nr::ACCEPT4 => [Fd, Buf, Buf, Flags, Any, Any],
        _ => [Any; 6],
    }
}

/// The six argument words for call `n`, structured by what the call takes.
pub fn args(rng: &mut Rng, p: &Pools, region: RegionView, n: u32) -> [u32; 6] {
    let mut kinds = slots(n);
    let mut a = [0u32; 6];
    for i in 0..6 {
        // Now and then any word goes anywhere.
        if rng.one_in(12) {
            kinds[i] = Arg::Any;
        }
        let kind = kinds[i];
        a[i] = match kind {
            Arg::Fd => fd(rng, p),
            Arg::Dirfd => dirfd(rng, p),
            Arg::Buf => buf_ptr(rng, p, region),
            Arg::Len => len(rng),
            Arg::Path => path(rng, p),
            Arg::OpenFlags => open_flags(rng),
            Arg::Flags => flags(rng),
            Arg::Mode => mode(rng),
            Arg::Off => off_word(rng, false),
            Arg::OffHi => off_word(rng, true),
            Arg::Ts32 => fixture(rng, p, layout::TS32, 8, layout::NTS),
            Arg::Ts64 => fixture(rng, p, layout::TS64, 16, layout::NTS),
            Arg::Iov => fixture(rng, p, layout::IOV, 8, layout::NIOV),
            Arg::Small => {
                let r = rng.below(70);
                rng.pick(&[0, 1, 2, 3, 8, 64, r, u32::MAX])
            }
            Arg::Clock => clock(rng),
            Arg::PollFds => fixture(rng, p, layout::POLLFD, 8, 8),
            Arg::Timeout => rng.pick(&[0, 0, 1, 10, u32::MAX, 0x7FFF_FFFF]),
            Arg::Sockaddr => fixture(rng, p, layout::SOCKADDR, 128, layout::NSOCKADDR),
            Arg::Msghdr => fixture(rng, p, layout::MSGHDR, 0, 1),
            Arg::Ioctl => ioctl_request(rng),
            Arg::Fcntl => fcntl_command(rng),
            Arg::Any => any_word(rng, p, region),
        };
        a[i] = spare_own_fds(a[i]);
    }
    // Confinement rules that must hold even for "any" words.
    match n {
        nr::IOCTL => {
            a[1] = ioctl_request_keep(a[1]);
            kinds[1] = Arg::Ioctl;
            kinds[2] = Arg::Any; // any size the request encodes
        }
        nr::FCNTL64 => {
            a[1] = fcntl_keep(a[1]);
            kinds[1] = Arg::Fcntl;
            a[2] = fcntl_arg(rng, p, a[1], region);
            kinds[2] = match a[1] {
                12..=14 | 36..=38 => Arg::Buf, // struct flock64
                _ => Arg::Flags,
            };
        }
        _ => {}
    }
    confine(&mut a, &kinds, rng, p, region);
    a
}

/// Moves a request of a forbidden type ('T', 0x89, 0x8b, 'X') to the
/// neighbouring harmless type; FIONREAD stays.
fn ioctl_request_keep(r: u32) -> u32 {
    if r == 0x541B {
        return r;
    }
    match (r >> 8) & 0xFF {
        0x54 | 0x89 | 0x8B | 0x58 => r ^ 0x0100,
        _ => r,
    }
}

/// F_SETOWN, F_SETSIG and F_SETOWN_EX become F_GETFD.
fn fcntl_keep(c: u32) -> u32 {
    match c {
        8 | 10 | 15 => 1,
        c => c,
    }
}

/// A pointer to fixture `i` of `n` at `base` (stride `stride`), or an
/// invalid pointer now and then.
fn fixture(rng: &mut Rng, p: &Pools, base: usize, stride: usize, n: usize) -> u32 {
    match rng.below(10) {
        0 => 0,
        1 => rng.pick(&KERNEL_ADDRS),
        _ => (p.scratch + base + stride * rng.below(n as u32) as usize) as u32,
    }
}

/// A system call number for a FlexSC entry: allowed calls, refused ones,
/// numbers that are no call at all.
pub fn entry_nr(rng: &mut Rng) -> u32 {
    match rng.below(20) {
        0..=11 => rng.pick(abi::ALLOWED).1,
        12..=15 => rng.pick(abi::REFUSED).1,
        16 => rng.between(475, 600),
        17 => 0x000F_0000 + rng.below(8), // ARM private calls
        18 => rng.below(480),
        _ => rng.next_u32(),
    }
}

/// A `flexsc_config`: valid (small, as a fuzzing process wants), or with
/// one or more fields at or beyond the edges.
///
/// With `rt`, a valid configuration may ask for real-time syscall threads
/// (root may). Without it none does, valid or not: SCHED_FIFO threads above
/// the RCU kthreads' priority (FIFO 1 on PREEMPT_RT) that a fuzzing process
/// keeps busy starve RCU and the whole system, which is what a real-time
/// busy loop of root does anyway, not a kernel bug. Only forked children,
/// which post a few entries and stop, get `rt`.
pub fn config(rng: &mut Rng, valid: bool, rt: bool) -> abi::Config {
    let mut c = abi::Config {
        version: abi::CONFIG_VERSION,
        npages: if rng.one_in(6) {
            rng.between(1, abi::MAX_PAGES)
        } else {
            rng.between(1, 3)
        },
        nworkers: if rng.one_in(8) {
            rng.between(1, 8)
        } else {
            rng.between(1, 3)
        },
        poll_us: rng.pick(&[0, 0, 10, 50, 200, abi::MAX_POLL_US]),
        ..abi::Config::default()
    };
    if rt && rng.one_in(10) {
        // A real-time policy (root may): low priority.
        c.policy = rng.pick(&[abi::SCHED_FIFO, abi::SCHED_RR]);
        c.priority = rng.between(1, 10);
    }
    if rng.one_in(6) {
        c.cpus = 1; // CPU 0 exists everywhere
    }
    if valid {
        return c;
    }
    for _ in 0..rng.between(1, 2) {
        match rng.below(14) {
            0 => c.version = rng.pick(&[0, 2, u32::MAX]),
            1 => c.flags = 1 << rng.below(32),
            2 => c.npages = rng.pick(&[0, abi::MAX_PAGES + 1, u32::MAX]),
            3 => c.nworkers = rng.pick(&[0, abi::MAX_WORKERS + 1, u32::MAX]),
            4 => c.nworkers = abi::MAX_WORKERS, // valid, the most threads
            5 => c.poll_us = abi::MAX_POLL_US + rng.between(1, 1000),
            6 => c.policy = rng.pick(&[3, 5, 6, 7, u32::MAX]),
            7 => {
                c.policy = abi::SCHED_FIFO;
                c.priority = if rt {
                    rng.pick(&[0, 99, 100, u32::MAX])
                } else {
                    rng.pick(&[0, 100, u32::MAX])
                };
            }
            8 => {
                // With SCHED_OTHER: invalid (with an RT policy: valid).
                c.priority = rng.between(1, 99);
                if !rt {
                    c.policy = abi::SCHED_OTHER;
                }
            }
            9 => c.cpus = rng.pick(&[u64::MAX, 1 << 63, 1 << 31, 0xF0]),
            10 => c.resv0 = rng.next_u32() | 1,
            11 => c.resv[rng.below(2) as usize] = rng.next_u64() | 1,
            12 => c.addr = rng.next_u64(), // an output: ignored on input
            _ => c.npages = abi::MAX_PAGES, // valid, the largest region
        }
    }
    c
}

/// The `size` argument of flexsc_register.
pub fn config_size(rng: &mut Rng) -> u32 {
    let exact = core::mem::size_of::<abi::Config>() as u32;
    match rng.below(10) {
        0..=5 => exact,
        6 => rng.pick(&[0, 1, exact - 1, exact - 8]),
        7 => rng.pick(&[exact + 1, exact + 8, 128, 4096]), // larger: extra must be zero
        8 => rng.pick(&[4097, 8192, u32::MAX]),
        _ => rng.below(200),
    }
}

/// A system call number for the Kernel Mode Linux trampoline: the calls
/// FlexSC allows (with the same confined arguments), calls that change the
/// calling task but only hurt the disposable child that makes them, the
/// rtflex calls, and numbers that are no call. Never a call that reaches
/// other processes (kill, ptrace, fork, clone, exec, reboot, mount, ...).
pub fn kml_nr(rng: &mut Rng) -> u32 {
    // Not sigreturn: it would restore registers from whatever the stack
    // holds, and a kernel address there would make this SYS-mode child run
    // kernel text: its own bug, not the kernel's. kmlfuzz forges frames.
    const SELF_ONLY: [u32; 14] = [
        nr::GETTID,
        nr::GETPPID,
        nr::SCHED_YIELD,
        nr::RT_SIGPROCMASK,
        nr::MUNMAP,
        nr::MPROTECT,
        nr::MADVISE,
        nr::PRCTL,
        nr::SECCOMP,
        nr::EXIT,
        nr::EXIT_GROUP,
        nr::VADDR_TO_PADDR,
        nr::FLEXSC_REGISTER,
        nr::FLEXSC_WAIT,
    ];
    match rng.below(20) {
        0..=11 => rng.pick(abi::ALLOWED).1,
        12..=15 => rng.pick(&SELF_ONLY),
        16 => rng.between(475, 600),
        17 => 0x000F_0000 + rng.below(8), // ARM private: breakpoint, cacheflush, set_tls, ...
        _ => rng.pick(&[0x0FFF_FFFF, 0x8000_0000, u32::MAX, 0x000E_FFFF]),
    }
}

/// A register value for a jump into the [kml] page. Any of them may end up
/// in pc (a `bx lr`, an `ldm`, a forged sigreturn), and in SYS mode a
/// kernel address there is kernel code run by the trusted program: its own
/// bug, not the kernel's (the threat model). So no kernel address at all:
/// addresses the child owns or that fault in user space (none executable)
/// and the [kml] page.
///
/// Not even the trampoline's own target, the kernel's `kml_syscall_entry`
/// (the literal at the end of the page's code): jumped to directly it runs
/// with whatever CPSR the jump had, and a forged sigreturn frame gives a
/// trusted program any SYS-mode CPSR. With the E bit (big-endian data) the
/// kernel's entry code then loads its own variables byte-swapped, writes
/// one of them to SCTLR and turns the MMU off: seed 13 (2026-12-05) hung
/// the guest that way, the CPU in SVC mode running through the physical
/// address space. Patch 0005 now makes the page and the entry switch to
/// little-endian data (`setend le`) before any memory access, so that case
/// is the kernel's to survive; the fuzzer still keeps the entry out of its
/// jumps because the rest of a direct jump (any CPSR, any registers) is
/// the trusted program running kernel code, out of scope. The page's own
/// path with E set is the guest test
/// `a_big_endian_program_enters_the_kernel_little_endian_and_stays_big_endian`.
pub fn jump_reg(rng: &mut Rng, p: &Pools) -> u32 {
    match rng.below(12) {
        0 => 0,
        1 => rng.below(64),
        2 => p.hole as u32,
        3 => p.ro as u32 + 4 * rng.below(1024),
        4 => (p.scratch + layout::FREE) as u32 + 4 * rng.below(1024),
        5 => p.kml as u32 + 4 * rng.below(8),
        6 => p.kml as u32 + 4 * rng.below(1024), // mostly the udf filler
        7 => TASK_SIZE - 4,
        8 => p.spare as u32 + 4 * rng.below(1024), // PROT_NONE
        9 => p.untouched as u32,
        _ => (p.scratch + layout::FREE) as u32 + 1, // odd: Thumb return
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> Pools {
        Pools {
            scratch: 0x1000_0000,
            ro: 0x2000_0000,
            untouched: 0x2100_0000,
            hole: 0x2200_0000,
            fds: [3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            nfds: 4,
            dirfd: 7,
            kml: 0x3000_0000,
            spare: 0x3100_0000,
            ..Pools::default()
        }
    }

    #[test]
    fn derived_seeds_differ_and_repeat() {
        assert_eq!(derive(1, 2), derive(1, 2));
        assert_ne!(derive(1, 2), derive(1, 3));
        assert_ne!(derive(1, 2), derive(2, 2));
    }

    #[test]
    fn confinement_holds_for_every_generated_ioctl_and_fcntl() {
        let mut rng = Rng::new(7);
        let p = pools();
        for _ in 0..20_000 {
            let a = args(&mut rng, &p, Some((0x4000_0000, 0x3000)), nr::IOCTL);
            let ty = (a[1] >> 8) & 0xFF;
            assert!(
                a[1] == 0x541B || ![0x54, 0x89, 0x8B, 0x58].contains(&ty),
                "{:#x}",
                a[1]
            );
            let a = args(&mut rng, &p, None, nr::FCNTL64);
            assert!(![8, 10, 15].contains(&a[1]), "{}", a[1]);
            if a[1] == 1031 {
                assert!(a[2] <= 262_144);
            }
            if a[1] == 4 {
                assert_eq!(a[2] & libc::O_ASYNC as u32, 0);
            }
            for n in [nr::CLOSE, nr::DUP3, nr::WRITE] {
                let a = args(&mut rng, &p, None, n);
                assert!(OWN_FDS.iter().all(|&fd| !a.contains(&(fd as u32))));
            }
        }
    }

    #[test]
    fn no_word_points_at_the_process_own_memory() {
        let mut rng = Rng::new(13);
        let p = pools();
        let (ra, rl) = (0x4000_0000usize, 3 * 4096usize);
        let ours = |v: u32| {
            !(LOW..TASK_SIZE).contains(&v)
                || within(v, p.scratch, layout::LEN + 4096)
                || within(v, p.ro, 4096)
                || within(v, p.hole, 4096)
                || within(v, p.spare, abi::region_len(abi::MAX_PAGES))
                || within(v, p.kml, 4096)
                || within(v, ra, rl)
        };
        for _ in 0..20_000 {
            let n = entry_nr(&mut rng);
            let a = args(&mut rng, &p, Some((ra, rl)), n);
            let mut kinds = slots(n);
            if n == nr::FCNTL64 && !matches!(a[1], 12..=14 | 36..=38) {
                kinds[2] = Arg::Flags; // the argument of F_SETFL & co. is no pointer
            }
            for (w, k) in a.iter().zip(kinds) {
                if k.may_point() {
                    assert!(ours(*w), "nr {n}: {w:#x} in {a:x?}");
                }
            }
            // A pointer into the region leaves room for what the call writes.
            if let Some(room) = a
                .iter()
                .zip(kinds)
                .filter(|&(&w, k)| k.may_point() && within(w, ra, rl))
                .map(|(&w, _)| (ra + rl) as u32 - w)
                .min()
            {
                assert!(room >= REGION_ROOM, "{a:x?}");
                for (w, k) in a.iter().zip(kinds) {
                    if k == Arg::Len && !within(*w, ra, rl) {
                        assert!(*w <= room, "nr {n}: length {w:#x} > room {room:#x}: {a:x?}");
                    }
                }
            }
        }
    }

    #[test]
    fn kml_numbers_never_reach_other_processes() {
        let mut rng = Rng::new(9);
        for _ in 0..20_000 {
            let n = kml_nr(&mut rng);
            for bad in [
                nr::KILL,
                nr::TGKILL,
                nr::PTRACE,
                nr::FORK,
                nr::VFORK,
                nr::CLONE,
                nr::CLONE3,
                nr::EXECVE,
                nr::EXECVEAT,
                nr::SIGRETURN,
                nr::RT_SIGRETURN,
                88,  // reboot
                21,  // mount
                52,  // umount2
                128, // init_module
            ] {
                assert_ne!(n, bad);
            }
        }
    }

    #[test]
    fn valid_configs_are_valid_and_invalid_ones_mostly_not() {
        let mut rng = Rng::new(3);
        let mut changed = 0;
        for _ in 0..2000 {
            let c = config(&mut rng, true, true);
            assert_eq!(c.version, abi::CONFIG_VERSION);
            assert!((1..=abi::MAX_PAGES).contains(&c.npages));
            assert!((1..=abi::MAX_WORKERS).contains(&c.nworkers));
            assert!(c.poll_us <= abi::MAX_POLL_US);
            assert_eq!((c.flags, c.resv0, c.resv), (0, 0, [0, 0]));
            let d = config(&mut rng, false, true);
            if d.version != abi::CONFIG_VERSION || d.flags != 0 || d.npages == 0 {
                changed += 1;
            }
        }
        assert!(changed > 100);
    }

    #[test]
    fn without_rt_no_configuration_asks_for_real_time_threads() {
        let mut rng = Rng::new(11);
        for _ in 0..20_000 {
            for valid in [true, false] {
                let c = config(&mut rng, valid, false);
                let rt = matches!(c.policy, abi::SCHED_FIFO | abi::SCHED_RR);
                assert!(!rt || !(1..=99).contains(&c.priority), "{c:?}");
            }
        }
    }

    #[test]
    fn jump_registers_hold_no_kernel_address() {
        let mut rng = Rng::new(5);
        let p = pools();
        for _ in 0..10_000 {
            let v = jump_reg(&mut rng, &p);
            assert!(v < TASK_SIZE, "{v:#x}");
        }
    }
}
