"""Board and kernel facts, read from the make files that define them.

A board is a directory board/<name>/ with a board.mk of `BOARD_* := value`
lines; kernel/kernel.mk pins the kernel (LINUX_*). The Makefile includes
both directly. Everything else (this package, Buildroot's post-image
script, the checks) gets the facts from here, and here they are read by
make itself: `make` evaluates the file and prints the variables, so there
is exactly one reader of the .mk syntax (continuation lines, $(TOP),
make functions) and no second parser that could read it differently.

    from rtflex.board import load_board, load_kernel
    board = load_board("qemu-vexpress-a9")
    board.console          # 'ttyAMA0'
    board.dtbs             # ['arm/vexpress-v2p-ca9.dtb', ...]

Command line (for shell scripts):

    python3 -m rtflex.board list                  name and description of every board
    python3 -m rtflex.board names [--qemu]        board names (only those QEMU boots)
    python3 -m rtflex.board get BOARD FACT...     one value per line (lists space-separated)
    python3 -m rtflex.board kernel FACT...        the same for kernel/kernel.mk
    python3 -m rtflex.board host-packages         Debian packages the boards need on the
                                                  host (scripts/setup-host.sh): package, board

FACT is the attribute name (console, dtbs) or the make variable
(BOARD_CONSOLE).
"""

import argparse
import dataclasses
import os
import re
import shlex
import subprocess
import sys

# The repository top: tools/rtflex/board.py -> ../..
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BoardError(Exception):
    """A board that does not exist, or whose board.mk is wrong."""


# Every variable a board.mk may set: attribute name, kind, and whether
# every board must set it. Kinds: str, list (whitespace-separated words),
# args (shell words), int, intlist. A variable that is not here is refused (a misspelt name would
# otherwise be silently ignored by make).
_BOARD_FACTS = {
    # one line for `make boards`
    "BOARD_DESCRIPTION": ("description", "str", True),
    # device trees on the boot partition, as paths under the kernel's
    # arch/arm/boot/dts/ (e.g. nxp/imx/imx6q-sabrelite.dtb); required
    # except where QEMU's firmware hands QEMU's own device tree to the
    # kernel (BOARD_QEMU_UBOOT)
    "BOARD_DTBS": ("dtbs", "list", False),
    # the one QEMU boots with (-dtb); one of BOARD_DTBS (the same exception)
    "BOARD_DTB": ("dtb", "str", False),
    # the kernel's serial console (console=<tty>,115200)
    "BOARD_CONSOLE": ("console", "str", True),
    # root= of the kernel command line
    "BOARD_ROOT_DEVICE": ("root_device", "str", True),
    # genimage template of another board to use instead of this board's own
    "BOARD_GENIMAGE": ("genimage", "str", False),
    # Debian's U-Boot: package and files (paths inside the package)
    "BOARD_UBOOT_PACKAGE": ("uboot_package", "str", False),
    "BOARD_UBOOT_FILES": ("uboot_files", "list", False),
    # boot loader files the user supplies (UBOOT_DIR=...) where Debian has none
    "BOARD_UBOOT_USER_FILES": ("uboot_user_files", "list", False),
    # the guest's serial port the guest tests stream their results over
    "BOARD_RESULTS_TTY": ("results_tty", "str", False),
    # QEMU model: machine (-M), the other machine options (CPUs, memory;
    # no -M), SD card device, which of QEMU's serial ports is the console
    # (1 or 2), DT aliases of serial ports QEMU cannot do DMA on
    "BOARD_QEMU_MACHINE": ("qemu_machine", "str", False),
    "BOARD_QEMU_ARGS": ("qemu_extra_args", "args", False),
    "BOARD_QEMU_SD_DEVICE": ("qemu_sd_device", "str", False),
    "BOARD_QEMU_CONSOLE_SERIAL": ("qemu_console_serial", "int", False),
    "BOARD_QEMU_SERIAL_NO_DMA": ("qemu_serial_no_dma", "list", False),
    # how QEMU carries the results port (BOARD_RESULTS_TTY): "serial" (the
    # serial port after the console, the default) or "virtio-console" (a
    # virtio console, for machines with one UART)
    "BOARD_QEMU_RESULTS_PORT": ("qemu_results_port", "str", False),
    # "yes": QEMU boots a copy of BOARD_DTB that describes only the CPUs
    # QEMU has (/cpus/cpu@N nodes beyond the run's vCPU count removed)
    "BOARD_QEMU_DT_CPUS_FROM_SMP": ("qemu_dt_cpus_from_smp", "str", False),
    # U-Boot as QEMU's firmware (-bios FILE, an absolute path on the host)
    # and the Debian package of the host that has it (make deps installs
    # it): U-Boot boots the card, so QEMU gets no kernel, DTB or command
    # line; the kernel's command line is the card's extlinux.conf
    "BOARD_QEMU_UBOOT": ("qemu_uboot", "str", False),
    "BOARD_QEMU_UBOOT_PACKAGE": ("qemu_uboot_package", "str", False),
    # guest tests skipped on this board (rtflex.skip syntax)
    "BOARD_GUEST_TEST_SKIP": ("guest_test_skip", "list", False),
    # vCPU counts for `make bench`
    "BOARD_BENCH_SMP": ("bench_smp", "intlist", False),
    # the LAVA device type of the real board (a name of LAVA's
    # device-types/*.jinja2), for its board-farm job (rtflex.lava)
    "BOARD_LAVA_DEVICE_TYPE": ("lava_device_type", "str", False),
}
# Facts every board with a QEMU model must have as well.
_QEMU_FACTS = ("BOARD_QEMU_ARGS", "BOARD_RESULTS_TTY")
# Ways QEMU carries the results port (BOARD_QEMU_RESULTS_PORT).
QEMU_RESULTS_PORTS = ("serial", "virtio-console")


@dataclasses.dataclass(frozen=True)
class Board:
    """The facts of one board (board/<name>/board.mk)."""

    name: str
    dir: str
    description: str
    console: str
    root_device: str
    dtbs: list = dataclasses.field(default_factory=list)
    dtb: str = ""
    genimage: str = ""
    uboot_package: str = ""
    uboot_files: list = dataclasses.field(default_factory=list)
    uboot_user_files: list = dataclasses.field(default_factory=list)
    results_tty: str = ""
    qemu_machine: str = ""
    qemu_extra_args: list = dataclasses.field(default_factory=list)
    qemu_sd_device: str = ""
    qemu_console_serial: int = 1
    qemu_serial_no_dma: list = dataclasses.field(default_factory=list)
    qemu_results_port: str = "serial"
    qemu_dt_cpus_from_smp: str = ""
    qemu_uboot: str = ""
    qemu_uboot_package: str = ""
    guest_test_skip: list = dataclasses.field(default_factory=list)
    bench_smp: list = dataclasses.field(default_factory=lambda: [1, 2])
    lava_device_type: str = ""

    @property
    def has_qemu(self):
        """Whether QEMU can boot this board."""
        return bool(self.qemu_machine)

    @property
    def qemu_args(self):
        """QEMU machine options: -M <machine> and BOARD_QEMU_ARGS."""
        return ["-M", self.qemu_machine] + list(self.qemu_extra_args)

    @property
    def kernel_cmdline(self):
        """The kernel command line that boots this board's SD card (the boot
        loader's extlinux.conf and QEMU's -append start with it)."""
        return [f"console={self.console},115200", f"root={self.root_device}", "rootwait", "rw"]

    @property
    def has_uboot(self):
        """Whether the board boots through U-Boot (Debian's or the user's on
        the card, or QEMU's firmware): then its boot partition has
        extlinux/extlinux.conf."""
        return bool(self.uboot_files or self.uboot_user_files or self.qemu_uboot)

    @property
    def genimage_template(self):
        """The SD card layout template (genimage.cfg.in) this board uses."""
        return self.genimage or os.path.join(self.dir, "genimage.cfg.in")

    @property
    def dtb_names(self):
        """The DTBs' file names on the boot partition (no directory)."""
        return [os.path.basename(d) for d in self.dtbs]


@dataclasses.dataclass(frozen=True)
class Kernel:
    """The kernel pin (kernel/kernel.mk): one kernel for every board."""

    version: str
    defconfig: str
    fragments: list  # absolute paths, merged in this order
    llvm_suffix: str


def read_make_variables(path, prefix, top=TOP):
    """The variables whose names start with PREFIX that the make file PATH
    sets, as make evaluates them (TOP=<top> given). Only variables the file
    itself defines count (not the environment's). Raises BoardError with
    make's message if make cannot read the file."""
    program = (
        f"include {path}\n"
        f"$(foreach v,$(sort $(filter {prefix}%,$(.VARIABLES))),"
        "$(if $(filter file,$(origin $(v))),$(info $(v)=$($(v)))))\n"
        ".PHONY: rtflex-print-variables\n"
        "rtflex-print-variables: ;@:\n"
    )
    # A make that runs us (a recipe) passes its command-line variables and
    # job server in MAKEFLAGS; they must not reach this make.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES")}
    try:
        proc = subprocess.run(["make", "-s", "-r", "-R", "--no-print-directory", "-f", "-", f"TOP={top}"],
                              input=program, capture_output=True, text=True, cwd=top, env=env)
    except FileNotFoundError:
        raise BoardError("'make' not found: it is needed to read the .mk files (apt-get install make)") from None
    if proc.returncode != 0:
        raise BoardError(f"make cannot read {path}:\n{proc.stderr.strip()}")
    values = {}
    for line in proc.stdout.splitlines():
        m = re.fullmatch(r"(\w+)=(.*)", line)
        if not m or not m.group(1).startswith(prefix):
            raise BoardError(f"{path}: unexpected output of make (a multi-line value?): {line!r}")
        values[m.group(1)] = " ".join(m.group(2).split())
    return values


def board_names(top=TOP):
    """Every board: the directories under board/ with a board.mk, sorted."""
    d = os.path.join(top, "board")
    return sorted(n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n, "board.mk")))


def load_board(name, top=TOP):
    """The board named NAME (a directory under TOP/board/). Raises BoardError
    for an unknown board, a board.mk make cannot read, a missing required
    fact, an unknown variable or an inconsistent value."""
    if not name or "/" in name or name.startswith("."):
        raise BoardError(f"bad board name {name!r}; boards: {', '.join(board_names(top))}")
    board_dir = os.path.join(top, "board", name)
    path = os.path.join(board_dir, "board.mk")
    if not os.path.isfile(path):
        raise BoardError(f"unknown board {name!r} (no {path}); boards: {', '.join(board_names(top))}")
    return board_from_values(name, board_dir, read_make_variables(path, "BOARD_", top))


def board_from_values(name, board_dir, values):
    """A Board from board.mk's variables (name -> value string); the checks
    of load_board(). Tests use it to make boards without a board.mk."""
    where = os.path.join(board_dir, "board.mk")
    unknown = sorted(set(values) - set(_BOARD_FACTS))
    if unknown:
        raise BoardError(f"{where}: unknown variable(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(_BOARD_FACTS))}")
    required = [k for k, (_, _, req) in _BOARD_FACTS.items() if req]
    if values.get("BOARD_QEMU_MACHINE"):
        required += _QEMU_FACTS
    if not values.get("BOARD_QEMU_UBOOT"):
        required += ["BOARD_DTBS", "BOARD_DTB"]
    missing = [k for k in required if not values.get(k)]
    if missing:
        raise BoardError(f"{where}: missing {', '.join(missing)}")
    fields = {}
    for key, value in values.items():
        attr, kind, _ = _BOARD_FACTS[key]
        if value == "":
            continue
        if kind == "list":
            fields[attr] = value.split()
        elif kind == "args":
            fields[attr] = shlex.split(value)
        elif kind in ("int", "intlist"):
            try:
                numbers = [int(w) for w in value.split()]
            except ValueError:
                raise BoardError(f"{where}: {key} must be {'a number' if kind == 'int' else 'numbers'}, "
                                 f"not {value!r}") from None
            if kind == "int" and len(numbers) != 1:
                raise BoardError(f"{where}: {key} must be one number, not {value!r}")
            fields[attr] = numbers[0] if kind == "int" else numbers
        else:
            fields[attr] = value
    board = Board(name=name, dir=board_dir, **fields)
    if board.qemu_uboot:
        if not board.qemu_machine:
            raise BoardError(f"{where}: BOARD_QEMU_UBOOT without BOARD_QEMU_MACHINE")
        if not board.qemu_uboot_package:
            raise BoardError(f"{where}: BOARD_QEMU_UBOOT without BOARD_QEMU_UBOOT_PACKAGE "
                             "(the Debian package make deps installs it from)")
        if not os.path.isabs(board.qemu_uboot):
            raise BoardError(f"{where}: BOARD_QEMU_UBOOT must be an absolute path, not {board.qemu_uboot}")
        if board.dtb:
            raise BoardError(f"{where}: BOARD_DTB with BOARD_QEMU_UBOOT: QEMU gets no -dtb when U-Boot "
                             "boots the card (U-Boot hands on QEMU's own device tree)")
    elif board.qemu_uboot_package:
        raise BoardError(f"{where}: BOARD_QEMU_UBOOT_PACKAGE without BOARD_QEMU_UBOOT")
    elif board.dtb not in board.dtbs:
        raise BoardError(f"{where}: BOARD_DTB {board.dtb} is not one of BOARD_DTBS ({' '.join(board.dtbs)})")
    if len(set(board.dtb_names)) != len(board.dtb_names):
        raise BoardError(f"{where}: two BOARD_DTBS have the same file name (the boot partition has no directories)")
    if board.qemu_results_port not in QEMU_RESULTS_PORTS:
        raise BoardError(f"{where}: BOARD_QEMU_RESULTS_PORT must be one of {', '.join(QEMU_RESULTS_PORTS)}, "
                         f"not {board.qemu_results_port}")
    if board.qemu_dt_cpus_from_smp not in ("", "yes"):
        raise BoardError(f"{where}: BOARD_QEMU_DT_CPUS_FROM_SMP must be yes or empty, "
                         f"not {board.qemu_dt_cpus_from_smp}")
    if board.qemu_dt_cpus_from_smp and board.qemu_uboot:
        raise BoardError(f"{where}: BOARD_QEMU_DT_CPUS_FROM_SMP with BOARD_QEMU_UBOOT: QEMU boots no DTB of ours")
    if board.qemu_console_serial not in (1, 2):
        raise BoardError(f"{where}: BOARD_QEMU_CONSOLE_SERIAL must be 1 or 2, not {board.qemu_console_serial}")
    machine = [a for a in board.qemu_extra_args if a in ("-M", "-machine") or a.startswith(("-M=", "-machine="))]
    if machine:
        raise BoardError(f"{where}: BOARD_QEMU_ARGS has {machine[0]}: the machine is BOARD_QEMU_MACHINE "
                         "(-M comes from there)")
    if board.uboot_files and not board.uboot_package:
        raise BoardError(f"{where}: BOARD_UBOOT_FILES without BOARD_UBOOT_PACKAGE")
    if board.genimage and not os.path.isfile(board.genimage):
        raise BoardError(f"{where}: BOARD_GENIMAGE {board.genimage} does not exist")
    return board


def load_kernel(top=TOP):
    """The kernel facts of TOP/kernel/kernel.mk."""
    path = os.path.join(top, "kernel", "kernel.mk")
    values = read_make_variables(path, "LINUX_", top)
    missing = [k for k in ("LINUX_VERSION", "LINUX_DEFCONFIG", "LINUX_FRAGMENTS", "LINUX_LLVM_SUFFIX")
               if not values.get(k)]
    if missing:
        raise BoardError(f"{path}: missing {', '.join(missing)}")
    fragments = [os.path.normpath(os.path.join(top, f)) for f in values["LINUX_FRAGMENTS"].split()]
    return Kernel(version=values["LINUX_VERSION"], defconfig=values["LINUX_DEFCONFIG"],
                  fragments=fragments, llvm_suffix=values["LINUX_LLVM_SUFFIX"])


def _fact(obj, name, variables):
    """The value of FACT (attribute or make variable name) as text."""
    attr = name
    if name in variables:
        attr = variables[name]
    if attr.startswith("_") or not hasattr(obj, attr):
        raise BoardError(f"no fact {name!r}; facts: "
                         f"{', '.join(f.name for f in dataclasses.fields(obj))}")
    value = getattr(obj, attr)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m rtflex.board", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--top", default=TOP, help="repository top (default: %(default)s)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every board and its description")
    n = sub.add_parser("names", help="board names, one per line")
    n.add_argument("--qemu", action="store_true", help="only the boards QEMU can boot")
    g = sub.add_parser("get", help="facts of a board, one per line")
    g.add_argument("board")
    g.add_argument("facts", nargs="+", metavar="FACT")
    k = sub.add_parser("kernel", help="kernel facts, one per line")
    k.add_argument("facts", nargs="+", metavar="FACT")
    sub.add_parser("host-packages", help="Debian packages of the host the boards name (BOARD_QEMU_UBOOT_PACKAGE): "
                                         "one line each, the package and the board")
    args = p.parse_args(argv)
    try:
        if args.command == "list":
            for name in board_names(args.top):
                print(f"{name:<20} {load_board(name, args.top).description}")
        elif args.command == "names":
            for name in board_names(args.top):
                if not args.qemu or load_board(name, args.top).has_qemu:
                    print(name)
        elif args.command == "host-packages":
            for name in board_names(args.top):
                package = load_board(name, args.top).qemu_uboot_package
                if package:
                    print(f"{package} {name}")
        elif args.command == "get":
            board = load_board(args.board, args.top)
            variables = {k: v[0] for k, v in _BOARD_FACTS.items()}
            variables["BOARD_QEMU_ARGS"] = "qemu_args"
            for name in args.facts:
                print(_fact(board, name, variables))
        else:
            kernel = load_kernel(args.top)
            variables = {"LINUX_VERSION": "version", "LINUX_DEFCONFIG": "defconfig",
                         "LINUX_FRAGMENTS": "fragments", "LINUX_LLVM_SUFFIX": "llvm_suffix"}
            for name in args.facts:
                print(_fact(kernel, name, variables))
    except BoardError as e:
        print(f"rtflex: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
