"""Boards that QEMU boots through U-Boot (board.mk BOARD_QEMU_UBOOT): U-Boot
is the machine's firmware (-bios) and boots the card image the way it
boots a card on a board, through distro boot and extlinux/extlinux.conf.

  card_for_boot  the card a run boots. U-Boot takes the kernel command line
                 from the card, so a run that needs more than the board's
                 own (rtflex.mode=test and the other words of
                 qemu.kernel_cmdline) boots a copy of the card whose
                 extlinux.conf is generated (generate.extlinux_conf) with
                 that command line; everything else is the card's, byte for
                 byte. The card's own extlinux.conf must be the generated
                 one, else the run stops.
  check_boot     what the console shows of the boot chain, checked against
                 sources that do not come from the console: the banner of
                 the firmware file QEMU was given, the generated entry
                 (label, kernel, command line), the card's partition table
                 (boot partition, disk signature, size) and the kernel's own
                 report of the disk it found and the root it mounted.
"""

import dataclasses
import os
import re
import subprocess
import tempfile

from . import generate, image

# U-Boot's device type of a virtio block device (its "Scanning virtio 0:1...").
UBOOT_DEVTYPE = "virtio"
# U-Boot's version string, as its banner prints it: "U-Boot 2023.01+dfsg-2
# (Jun 22 2026 - 08:38:07 +0000)" (U-Boot's version.h: "U-Boot " version
# " (" date " - " time " " zone ")").
VERSION_STRING = re.compile(rb"U-Boot \d{4}\.\d\d[\x21-\x7e]* \([A-Z][a-z]{2} [ \d]\d \d{4} - "
                            rb"\d\d:\d\d:\d\d [+-]\d{4}\)[\x20-\x7e]*")


class CardError(Exception):
    """A card that cannot be booted through U-Boot as asked."""


def firmware_version(path):
    """The version string (its banner line) built into the U-Boot binary PATH."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise CardError(f"{path} missing") from None
    found = sorted({m.group(0).decode() for m in VERSION_STRING.finditer(blob)})
    if len(found) != 1:
        raise CardError(f"{path}: expected one U-Boot version string, found {found or 'none'}")
    return found[0]


def require_firmware(board):
    """The board's U-Boot binary, or a CardError that says how to get it."""
    if not os.path.isfile(board.qemu_uboot):
        raise CardError(f"{board.qemu_uboot} missing: board {board.name} boots through U-Boot from Debian's "
                        f"{board.qemu_uboot_package} package; run 'make deps' "
                        f"(or: apt-get install {board.qemu_uboot_package})")
    return board.qemu_uboot


def _boot_partition(sdcard):
    _, parts = image.mbr_partitions(sdcard)
    if not parts:
        raise CardError(f"{sdcard}: no partitions")
    return parts[0]


def card_for_boot(board, sdcard, cmdline, out_dir):
    """The card image to boot BOARD with the kernel command line CMDLINE (a
    list of words): SDCARD itself when that is the board's own, else a copy
    in OUT_DIR (uboot-card.img, replaced on every call) whose extlinux.conf
    has CMDLINE. Raises CardError when SDCARD's extlinux.conf is not the
    one generated for BOARD (a stale image)."""
    boot = _boot_partition(sdcard)
    path = "extlinux/extlinux.conf"
    try:
        own = image.fat_read(sdcard, boot, path).decode("utf-8", "replace")
    except subprocess.CalledProcessError:
        raise CardError(f"{sdcard}: no {path} on the boot partition") from None
    if own != generate.extlinux_conf(board):
        raise CardError(f"{sdcard}: its {path} is not the one generated from board/{board.name}/board.mk "
                        "(an image from older facts: run 'make image')")
    if list(cmdline) == list(board.kernel_cmdline):
        return sdcard
    os.makedirs(out_dir, exist_ok=True)
    card = os.path.join(out_dir, "uboot-card.img")
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", sdcard, card], check=True)
    text = generate.extlinux_conf(board, list(cmdline))
    with tempfile.NamedTemporaryFile("w", dir=out_dir, suffix=".conf") as conf:
        conf.write(text)
        conf.flush()
        subprocess.run(["mcopy", "-o", "-i", f"{card}@@{boot['start']}", conf.name, f"::/{path}"],
                       check=True, capture_output=True)
    if image.fat_read(card, boot, path).decode() != text:
        raise CardError(f"{card}: writing {path} did not work")
    return card


@dataclasses.dataclass(frozen=True)
class Expected:
    """What a boot through U-Boot must show, from sources other than the
    console: the firmware's version string, the generated entry (label,
    kernel, command line) and the card (the active partition's number,
    disk signature, size in bytes)."""

    uboot_version: str
    label: str
    kernel: str
    cmdline: list
    boot_partition: int
    disk_signature: int
    card_size: int


def expected(board, cmdline, sdcard):
    """The Expected of booting SDCARD (the card QEMU got) with CMDLINE."""
    sig, parts = image.mbr_partitions(sdcard)
    return Expected(uboot_version=firmware_version(require_firmware(board)),
                    label=generate.EXTLINUX_LABEL, kernel=generate.EXTLINUX_KERNEL, cmdline=list(cmdline),
                    boot_partition=parts[0]["n"], disk_signature=sig, card_size=os.path.getsize(sdcard))


# Kernel log lines (after the "[    1.234567] " time stamp).
KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\] (.*)$")


def _lines(console):
    return [line.rstrip("\r") for line in console.splitlines()]


def _after(lines, start, pattern, what):
    """The first line from index START on that matches PATTERN: (index,
    match); AssertionError naming WHAT if none does."""
    for i in range(start, len(lines)):
        m = re.fullmatch(pattern, lines[i])
        if m:
            return i, m
    raise AssertionError(f"no {what} on the console")


def _kernel_lines(lines):
    return [m.group(1) for m in map(KERNEL_LINE.match, lines) if m]


def check_banner(lines, want):
    """The firmware that ran is the file QEMU was given: its banner is the
    version string built into that file."""
    _, m = _after(lines, 0, r"U-Boot \d{4}\.\d\d.*", "U-Boot banner")
    assert m.group(0) == want.uboot_version, \
        f"U-Boot banner '{m.group(0)}', but the firmware file says '{want.uboot_version}'"
    return want.uboot_version


def check_extlinux_found(lines, want):
    """Distro boot found extlinux/extlinux.conf on the card's boot partition."""
    i, found = _after(lines, 0, r"Found (/\S+)", "'Found <boot file>' (U-Boot distro boot found nothing)")
    assert found.group(1) == "/extlinux/extlinux.conf", f"U-Boot found {found.group(1)}, not /extlinux/extlinux.conf"
    scans = [re.fullmatch(r"Scanning (\w+) (\d+):([0-9a-f]+)\.\.\.", line) for line in lines[:i]]
    scans = [m for m in scans if m]
    assert scans, "no 'Scanning <device> <n>:<partition>...' before it"
    dev, _, part = scans[-1].groups()
    assert dev == UBOOT_DEVTYPE, f"U-Boot read it from a {dev} device, not the card ({UBOOT_DEVTYPE})"
    assert int(part, 16) == want.boot_partition, \
        f"U-Boot read it from partition {int(part, 16)}, the card's boot partition is {want.boot_partition}"
    return f"{dev} {scans[-1].group(2)}:{part}"


def check_entry(lines, want):
    """U-Boot booted the generated entry: its label, its kernel, and it
    handed over to the kernel."""
    i, _ = _after(lines, 0, r"Retrieving file: /extlinux/extlinux\.conf", "extlinux.conf being read")
    i, label = _after(lines, i + 1, r"\d+:\t(.*)", "extlinux entry U-Boot picked ('<n>:<tab><label>')")
    assert label.group(1) == want.label, f"U-Boot picked entry '{label.group(1)}', not '{want.label}'"
    i, kernel = _after(lines, i + 1, r"Retrieving file: (\S+)", "kernel being read")
    assert kernel.group(1) == want.kernel, f"entry '{want.label}' loaded {kernel.group(1)}, not {want.kernel}"
    _after(lines, i + 1, r"Starting kernel \.\.\.", "'Starting kernel ...' (U-Boot did not hand over)")
    return f"'{label.group(1)}': {kernel.group(1)}"


def check_cmdline(lines, want):
    """The kernel command line U-Boot passed, and the one the kernel got,
    are the generated one."""
    words = " ".join(want.cmdline)
    _, append = _after(lines, 0, r"append: (.*)", "'append: ...' (U-Boot's kernel command line)")
    assert append.group(1) == words, f"U-Boot passed '{append.group(1)}', generated: '{words}'"
    got = [line[len("Kernel command line: "):] for line in _kernel_lines(lines)
           if line.startswith("Kernel command line: ")]
    assert got, "no 'Kernel command line:' from the kernel"
    assert got[0] == words, f"the kernel got '{got[0]}', generated: '{words}'"
    return None


def check_root(lines, want):
    """root=PARTUUID=<signature>-02 names partition 2 of the card (its disk
    signature), and the kernel mounted partition 2 of the disk that has
    the card's size as its root."""
    roots = [w[len("root="):] for w in want.cmdline if w.startswith("root=")]
    assert roots, "no root= in the command line"
    m = re.fullmatch(r"PARTUUID=([0-9a-f]{8})-(\d\d)", roots[-1])
    assert m, f"root={roots[-1]} is not PARTUUID=<disk signature>-<partition>"
    assert int(m.group(1), 16) == want.disk_signature, \
        f"root={roots[-1]}, but the card's disk signature is {want.disk_signature:08x}"
    part = int(m.group(2))
    klines = _kernel_lines(lines)
    disks = [d for d in (re.search(r"\[(\w+)\] (\d+) 512-byte logical blocks", line) for line in klines) if d]
    card = [d.group(1) for d in disks if int(d.group(2)) * 512 == want.card_size]
    assert card, (f"the kernel found no disk of the card's size ({want.card_size} bytes); disks: "
                  f"{[d.group(0) for d in disks]}")
    disk = card[0]
    name = f"{disk}{part}"
    assert any(re.fullmatch(rf"\s*{disk}: .*\b{name}\b.*", line) for line in klines), \
        f"the kernel's partition scan of {disk} did not list {name}"
    mounted = [line for line in klines if line.startswith("EXT4-fs (") and " mounted filesystem " in line]
    assert mounted, "the kernel mounted no ext4 file system"
    assert mounted[0].startswith(f"EXT4-fs ({name}):"), f"the first ext4 mount is '{mounted[0]}', not {name}"
    assert any(line.startswith("VFS: Mounted root (ext4 filesystem)") for line in klines), \
        "no 'VFS: Mounted root (ext4 filesystem)' from the kernel"
    return f"{roots[-1]} = {name}"


CHECKS = (
    ("uboot_banner_is_the_firmware_qemu_was_given", check_banner),
    ("uboot_found_extlinux_conf_on_the_cards_boot_partition", check_extlinux_found),
    ("uboot_booted_the_generated_extlinux_entry", check_entry),
    ("kernel_command_line_is_the_generated_one", check_cmdline),
    ("root_is_the_partuuid_partition_of_the_card", check_root),
)


def check_boot(console, want):
    """Check the console log CONSOLE (text) of a boot through U-Boot against
    WANT (Expected): a list of (name, failure or None, note or None)."""
    lines = _lines(console)
    out = []
    for name, fn in CHECKS:
        try:
            out.append((name, None, fn(lines, want)))
        except AssertionError as e:
            out.append((name, str(e), None))
    return out
