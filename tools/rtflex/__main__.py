"""python3 -m rtflex COMMAND --named-options (or scripts/rtflex COMMAND ...)."""

import argparse
import os
import shlex
import sys

from . import guest, image, qemu, uboot
from .board import BoardError, load_board

GUEST_COMMANDS = ("test", "compare", "bench", "profile", "fuzz", "lab", "shell")


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value
    return parse


def parser():
    p = argparse.ArgumentParser(prog="rtflex", description="The rtflex host tool.",
                                epilog="Each command has its own --help.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def boot_options(c, needs_build_dir=True):
        c.add_argument("--board", required=True, help="board name (a directory under board/)")
        c.add_argument("--kernel", required=True, metavar="ZIMAGE", help="the kernel (zImage)")
        c.add_argument("--dtb", help="the device tree QEMU boots with (not for boards QEMU boots "
                                     "through U-Boot, which hands on QEMU's own)")
        c.add_argument("--sdcard", required=True, metavar="IMAGE", help="the SD card image")
        if needs_build_dir:
            c.add_argument("--build-dir", required=True, metavar="DIR",
                           help="where logs, reports and files the guest sent go")
        c.add_argument("--smp", type=int, choices=range(1, 5), metavar="N",
                       help="number of vCPUs (1-4; default: the board's)")
        c.add_argument("--append", action="append", metavar="ARG",
                       help="add ARG to the kernel command line (repeatable)")

    helps = {
        "test": "boot in test mode, run the guest tests, judge them",
        "compare": "boot, run cyclictest and rtlat alike, print the comparison",
        "bench": "boot with --smp N vCPUs, run the benchmarks, write the report",
        "profile": "two boots with an instruction counter: where a FlexSC batch's instructions go",
        "fuzz": "boot, run the system call fuzzer for --seconds",
        "lab": "boot, run the latency lab's matrix, fetch its result bundle",
        "shell": "boot with an interactive console (Ctrl-a x quits)",
        "summary": "no boot: the closing line of the host tests alone",
    }
    formatter = argparse.RawDescriptionHelpFormatter
    for name in GUEST_COMMANDS:
        c = sub.add_parser(name, help=helps[name], description=guest.__doc__, formatter_class=formatter)
        boot_options(c)
        c.add_argument("-v", "--verbose", action="store_true", help="echo the guest console")
        c.add_argument("--timeout", type=positive(int),
                       default=int(os.environ.get("RTFLEX_GUEST_TIMEOUT", 900)),
                       help="host seconds a guest run may take (default: $RTFLEX_GUEST_TIMEOUT or 900)")
        c.add_argument("--timeout-factor", type=positive(float), default=1.0, metavar="F",
                       help="multiply --timeout by F (slower debug kernels)")
        if name == "test":
            c.add_argument("--debug-kernel", action="store_true",
                           help="the kernel is a debug variant: boot-time kernel reports are a listed "
                                "baseline, only reports during the tests fail; kmemleak scans and "
                                "lockdep must be working")
            c.add_argument("--skip", action="append", metavar="NAME",
                           help="also skip test binary NAME or test BINARY::TEST (repeatable)")
            c.add_argument("--host-log", help="host test log to add to the totals")
            c.add_argument("--host-rc", type=int, default=0, help="exit status of the host tests")
        if name == "fuzz":
            c.add_argument("--seconds", type=positive(int), default=600,
                           help="fuzzing time in guest seconds (default 600)")
            c.add_argument("--seed", type=int, help="the seed of a run, to repeat its random choices")
            c.add_argument("--stall", type=positive(int), default=180,
                           help="host seconds without output after which the guest counts as hung "
                                "(default 180)")
        if name in ("lab", "bench", "test"):
            c.add_argument("--icount", choices=("auto", "on", "off"), default="auto",
                           help="guest time from the instruction count: on, off, or auto (default): on "
                                "with one vCPU, off with more (under -icount stop_machine() stalls an "
                                "SMP guest; docs/latency-lab.md); without it times are host-timed")
        if name == "lab":
            c.add_argument("--variant", required=True, metavar="NAME",
                           help="what this kernel is in the comparison (rt, rt-nofeatures, nonrt, rt-tuned)")
            c.add_argument("--tune", action="store_true",
                           help="boot with the RT tuning profile (rtflex.tune and its boot parameters)")
            c.add_argument("--duration", type=positive(int), help="seconds per cell (default: the runner's quick mode)")
            c.add_argument("--loops", type=positive(int), help="cycles per cell instead of --duration")
            c.add_argument("--loads", help="comma-separated loads (default: all)")
            c.add_argument("--tools", help="comma-separated tools (default: the runner's, all but rtla)")
        if name == "profile":
            c.add_argument("--plugin", required=True, help="the tbcount QEMU plugin (make builds it)")
            c.add_argument("--rootfs", required=True, metavar="DIR",
                           help="the image's root file system tree (names user-space addresses)")
            c.add_argument("--protocol", choices=("batch", "original", "run-on-wait"), default="run-on-wait",
                           help="FlexSC protocol (default run-on-wait)")
            c.add_argument("--batch", type=positive(int), default=64, help="batch size (default 64)")
            c.add_argument("--calls", type=positive(int), default=1000000,
                           help="calls of the throughput test (default 1000000)")
        if name == "shell":
            c.add_argument("--no-icount", action="store_true", help="run at full speed")

    c = sub.add_parser("summary", help=helps["summary"], description=guest.__doc__, formatter_class=formatter)
    c.add_argument("--host-log", required=True, help="host test log")
    c.add_argument("--host-rc", type=int, default=0, help="exit status of the host tests")

    c = sub.add_parser("check-image", help="SD card layout checks of a board's image",
                       description=image.__doc__, formatter_class=formatter)
    c.add_argument("--board", required=True, help="board name (a directory under board/)")
    c.add_argument("--sdcard", required=True, metavar="IMAGE", help="the SD card image")
    c.add_argument("--kernel-obj", required=True, metavar="DIR", help="the kernel build directory")
    c.add_argument("--bootloader-dir", required=True, metavar="DIR",
                   help="the boot loader files the image was made with")
    c.add_argument("--build-dir", required=True, metavar="DIR", help="room for a copy of the root file system")

    c = sub.add_parser("qemu-command", help="print the interactive QEMU command line of a board",
                       description="Print, shell-quoted, the qemu-system-arm command that boots "
                                   "the board with an interactive console (what `make qemu` runs, "
                                   "and Buildroot's start-qemu.sh). Paths are printed as given.")
    boot_options(c, needs_build_dir=False)
    c.add_argument("--icount", action="store_true",
                   help=f"guest time from the instruction count (-icount {qemu.ICOUNT})")
    c.add_argument("--dtb-dir", metavar="DIR",
                   help="for boards whose facts change the DTB for QEMU (e.g. only the CPUs QEMU has): "
                        "write that copy of --dtb into DIR and boot it (what `make qemu` does)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == "summary":
        return guest.cmd_summary(args)
    try:
        args.board = load_board(args.board)
    except BoardError as e:
        sys.exit(f"rtflex: error: {e}")
    if args.command == "check-image":
        if not os.path.exists(args.sdcard):
            sys.exit(f"rtflex: error: {args.sdcard} missing: run 'make image' first")
        return 1 if image.check_image(args.board, args.sdcard, args.kernel_obj, args.bootloader_dir,
                                      args.build_dir).failed else 0
    if not args.board.has_qemu:
        sys.exit(f"rtflex: error: board {args.board.name} has no QEMU model: its SD image is for the "
                 "real board (see README, \"Flashing\"). Boards that boot in QEMU: "
                 "python3 -m rtflex.board names --qemu")
    if args.board.qemu_uboot:
        if args.dtb:
            sys.exit(f"rtflex: error: board {args.board.name} boots through U-Boot, which hands the kernel "
                     "QEMU's own device tree: no --dtb")
    elif not args.dtb:
        sys.exit(f"rtflex: error: board {args.board.name} needs --dtb (the device tree QEMU boots with)")
    if args.command == "qemu-command":
        if args.board.qemu_uboot and args.append:
            sys.exit(f"rtflex: error: board {args.board.name} boots through U-Boot, which takes the kernel "
                     "command line from the card's extlinux.conf: no --append here (`rtflex shell "
                     "--append ...` boots a copy of the card that has it)")
        dtb = args.dtb
        if dtb and args.dtb_dir:
            if not os.path.exists(dtb):
                sys.exit(f"rtflex: error: {dtb} missing")
            dtb = qemu.dtb_for_qemu(args.board, dtb, args.dtb_dir, args.smp)
        print(shlex.join(qemu.qemu_command(args.board, args.kernel, dtb, args.sdcard, smp=args.smp,
                                           icount=args.icount, append=args.append or ())))
        return 0
    missing = [f for f in (args.kernel, args.dtb, args.sdcard) if f and not os.path.exists(f)]
    if missing:
        sys.exit(f"rtflex: error: {', '.join(missing)} missing: run 'make image' first")
    args.skip = getattr(args, "skip", None)
    try:
        return getattr(guest, f"cmd_{args.command}")(args)
    except uboot.CardError as e:
        sys.exit(f"rtflex: error: {e}")


if __name__ == "__main__":
    sys.exit(main())
