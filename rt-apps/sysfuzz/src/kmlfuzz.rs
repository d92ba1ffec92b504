//! The Kernel Mode Linux part. The supervisor execs the trusted copy
//! (`/trusted/sysfuzz`, root 0755, static) with `--kml-worker`; it starts in
//! SYS mode with a [kml] page (`AT_KML`), confines itself like every
//! fuzzing process, and then forks children that
//!
//! * make random system calls through the trampoline (r0-r5 and r7 random,
//!   the same structured and confined words as FlexSC entries), or
//! * jump into the [kml] page somewhere other than the plain call:
//!   offsets 4, 8, 12, 16 (the `ldr pc`, the `svc`, the `bx lr`, the
//!   literal), the `udf` filler, unaligned and Thumb targets, the entry with
//!   every register (sp, lr, ip too) random, and `rt_sigreturn` through the
//!   entry with a forged frame (random CPSR modes). These children are
//!   expected to die with a signal (or be killed after their deadline).
//!
//! Register values of jumps are never kernel addresses, not even the
//! trampoline's own target (any register may end up in pc, and kernel code
//! run or kernel memory written by a trusted program is that program's bug,
//! not the kernel's; see `gen::jump_reg`). The system call numbers never
//! reach other processes (see `gen::kml_nr`).

use std::ffi::CStr;
use std::time::{Duration, Instant};

use crate::gen::{self, layout, Pools, Rng, RngExt};
use crate::stats::{self, C};
use crate::worker;
use rtflex_uapi::nr;

/// Exit code of the trusted worker when the kernel did not start it in SYS
/// mode with a [kml] page.
pub const EXIT_UNTRUSTED: i32 = 3;
/// Exit code of a jump child whose fault handler ran.
const EXIT_HANDLED: i32 = 77;

extern "C" fn die_handled(_sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(EXIT_HANDLED) }
}

/// The trusted worker: never returns.
pub fn run(seed: u64, millis: u64, dir: &CStr, time_factor: u32) -> ! {
    if stats::attach().is_err() {
        // SAFETY: ending this process.
        unsafe { libc::_exit(worker::EXIT_SETUP) }
    }
    let page = match (kml::entry(), kml::mode()) {
        (Some(p), Some(kml::Mode::System)) => p,
        // SAFETY: ending this process.
        _ => unsafe { libc::_exit(EXIT_UNTRUSTED) },
    };
    if let Err(e) = crate::setup::confine(dir) {
        stats::problem(C::Crash, format_args!("kml worker: {e}"));
        // SAFETY: ending this process.
        unsafe { libc::_exit(worker::EXIT_SETUP) }
    }
    let pools = match crate::setup::pools(page) {
        Ok(p) => p,
        Err(e) => {
            stats::problem(C::Crash, format_args!("kml worker: setup: {e}"));
            // SAFETY: ending this process.
            unsafe { libc::_exit(worker::EXIT_SETUP) }
        }
    };
    let mut rng = Rng::new(seed);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(millis) {
        let child_seed = rng.next_u64();
        let jump = rng.one_in(2);
        // SAFETY: this process is single-threaded; the child runs only
        // the code below and ends with _exit or a signal.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut r = Rng::new(child_seed);
            if jump {
                jump_child(&mut r, &pools);
            } else {
                calls_child(&mut r, &pools);
            }
        }
        if pid < 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let grace = Duration::from_millis(if jump { 300 } else { 1000 }) * time_factor;
        match worker::wait_child(pid, grace) {
            Some(st) if jump => {
                if libc::WIFSIGNALED(st)
                    || (libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == EXIT_HANDLED)
                {
                    stats::add(C::KmlSignaled);
                }
            }
            Some(_) => {}
            // A child not gone after SIGKILL (already reported): stop.
            // SAFETY: ending this process.
            None => unsafe { libc::_exit(0) },
        }
    }
    // SAFETY: ending this process.
    unsafe { libc::_exit(0) }
}

/// Up to 200 random system calls through the trampoline, then exit.
fn calls_child(rng: &mut Rng, p: &Pools) -> ! {
    let n = rng.between(1, 200);
    for _ in 0..n {
        let nr = gen::kml_nr(rng);
        let a = gen::args(rng, p, None, nr);
        stats::add(C::KmlCall);
        let args = a.map(|w| w as usize);
        // SAFETY: a disposable child: the numbers never act on other
        // processes (gen::kml_nr), pointers are scratch, the [kml] page,
        // invalid or kernel addresses (refused by the uaccess checks);
        // whatever a call does to this child's own memory may kill it,
        // which is an expected outcome.
        unsafe { kml::syscall(kml::Via::Trampoline, nr, args) };
    }
    // SAFETY: ending this process.
    unsafe { libc::_exit(0) }
}

/// Registers of a jump: r0-r12 and pc (one `ldm`), then sp and lr.
#[repr(C, align(8))]
struct JumpRegs {
    r: [u32; 13],
    pc: u32,
    sp: u32,
    lr: u32,
}

/// A forged `rt_sigframe` for rt_sigreturn (ARM layout: siginfo, then the
/// ucontext with the sigcontext at +148, the mask at +232, the aux area
/// with a valid VFP record at +360).
fn forge_sigframe(rng: &mut Rng, p: &Pools) -> u32 {
    const SIGCONTEXT: usize = 148;
    const SIGMASK: usize = 232;
    const AUX: usize = 360;
    const VFP_MAGIC: u32 = 0x5646_5001;
    const VFP_SIZE: u32 = 288;
    let frame = (p.scratch + layout::FREE + 8192) & !7;
    let mut w = [0u32; 1024 / 4];
    for v in w.iter_mut() {
        *v = rng.next_u32();
    }
    let sc = SIGCONTEXT / 4;
    for k in 0..11 {
        w[sc + 3 + k] = gen::jump_reg(rng, p); // r0-r10
    }
    w[sc + 3 + 7] = gen::kml_nr(rng); // r7: a safe call number
    w[sc + 14] = gen::jump_reg(rng, p); // fp
    w[sc + 15] = gen::jump_reg(rng, p); // ip
    w[sc + 16] = gen::jump_reg(rng, p); // sp
    w[sc + 17] = gen::jump_reg(rng, p); // lr
    w[sc + 18] = gen::jump_reg(rng, p); // pc

    // cpsr: any mode (USR, SYS, SVC, IRQ, MON, HYP, ...), flags, T, E, I.
    let any = rng.below(32);
    let mode = rng.pick(&[0x10, 0x1f, 0x13, 0x12, 0x11, 0x16, 0x17, 0x1a, 0x1b, any]);
    w[sc + 19] = (rng.next_u32() & !0x1f) | mode;
    w[SIGMASK / 4] = 0;
    w[SIGMASK / 4 + 1] = 0;
    let aux = AUX / 4;
    w[aux] = VFP_MAGIC;
    w[aux + 1] = VFP_SIZE;
    if rng.one_in(8) {
        w[aux] = rng.next_u32(); // a bad aux record: badframe, SIGSEGV
    }
    // SAFETY: 1 KiB inside the free part of our scratch buffer.
    unsafe { core::ptr::copy_nonoverlapping(w.as_ptr(), frame as *mut u32, w.len()) };
    frame as u32
}

/// Sets every register and jumps into the [kml] page; never returns.
fn jump_child(rng: &mut Rng, p: &Pools) -> ! {
    if rng.one_in(3) {
        for sig in [libc::SIGSEGV, libc::SIGILL, libc::SIGBUS, libc::SIGTRAP] {
            // SAFETY: a handler that only calls _exit.
            unsafe { libc::signal(sig, die_handled as *const () as usize) };
        }
    }
    let mut regs = JumpRegs {
        r: [0; 13],
        pc: 0,
        sp: gen::jump_reg(rng, p),
        lr: gen::jump_reg(rng, p),
    };
    for r in regs.r.iter_mut() {
        *r = gen::jump_reg(rng, p);
    }
    regs.r[7] = gen::kml_nr(rng);
    let off = match rng.below(9) {
        0 => 4,
        1 => 8,
        2 => 12,
        3 => 16,
        4 => 20 + 4 * rng.below(1019), // the udf filler
        5 => 2 + 4 * rng.below(8),     // not aligned for ARM state
        6 => 1 + 2 * rng.below(16),    // Thumb state
        7 => 0,                        // the entry, every register random
        _ => {
            // rt_sigreturn through the entry with a forged frame.
            regs.sp = forge_sigframe(rng, p);
            regs.r[7] = nr::RT_SIGRETURN;
            0
        }
    };
    regs.pc = (p.kml + off as usize) as u32;
    stats::add(C::KmlJump);
    // SAFETY: none in the usual sense: this child gives up its stack and
    // registers and runs the [kml] page with random state on purpose. It is
    // a disposable process; its expected end is a signal.
    unsafe { jump(&regs) }
}

#[cfg(target_arch = "arm")]
unsafe fn jump(regs: &JumpRegs) -> ! {
    // SAFETY: the caller accepts that control never comes back: sp and lr
    // are replaced, then r0-r12 and pc are loaded in one ldm (the base
    // register r0 is in the list without writeback: allowed, it gets the
    // loaded value).
    unsafe {
        core::arch::asm!(
            "ldr sp, [r0, #56]",
            "ldr lr, [r0, #60]",
            "ldm r0, {{r0-r12, pc}}",
            in("r0") regs as *const JumpRegs,
            options(noreturn, nostack),
        )
    }
}

#[cfg(not(target_arch = "arm"))]
unsafe fn jump(_regs: &JumpRegs) -> ! {
    // SAFETY: no [kml] page off ARM: end the child.
    unsafe { libc::_exit(EXIT_UNTRUSTED) }
}

const _: () = assert!(core::mem::offset_of!(JumpRegs, sp) == 56);
const _: () = assert!(core::mem::offset_of!(JumpRegs, lr) == 60);
