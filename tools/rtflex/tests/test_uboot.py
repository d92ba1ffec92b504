"""Tests of rtflex.uboot: the checks of a boot through U-Boot on a recorded
console (data/qemu-virt-test-console.log), each one made to fail by a
wrong expectation or a changed console, and the card a run boots."""

import dataclasses
import os
import re
import shutil
import struct
import subprocess

import pytest

from recordings import path, text
from rtflex import generate, uboot
from rtflex.board import load_board

RECORDING = "qemu-virt-test-console.log"
# What that boot had (data/README.md): the firmware's version string, the
# card (512 MiB, disk signature 7274666c, boot partition 1) and the test
# mode's kernel command line.
RECORDED = uboot.Expected(
    uboot_version="U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)",
    label="rtflex", kernel="/zImage",
    cmdline="console=ttyAMA0,115200 root=PARTUUID=7274666c-02 rootwait rw rtflex.mode=test "
            "rtflex.results=hvc0".split(),
    boot_partition=1, disk_signature=0x7274666c, card_size=512 << 20)
NAMES = [name for name, _ in uboot.CHECKS]


def verdicts(console, want=RECORDED):
    return {name: failure for name, failure, _ in uboot.check_boot(console, want)}


def test_the_recorded_boot_passes_every_check():
    results = uboot.check_boot(text(RECORDING), RECORDED)
    assert [name for name, _, _ in results] == NAMES
    assert [failure for _, failure, _ in results] == [None] * len(NAMES)
    notes = {name: note for name, _, note in results}
    assert notes["uboot_found_extlinux_conf_on_the_cards_boot_partition"] == "virtio 0:1"
    assert notes["uboot_booted_the_generated_extlinux_entry"] == "'rtflex': /zImage"
    assert notes["root_is_the_partuuid_partition_of_the_card"] == "PARTUUID=7274666c-02 = vda2"


def test_the_recorded_expectations_are_what_the_generator_and_board_give():
    # The label and kernel are the generator's; the board's root device
    # names the disk signature the recording's card had.
    board = load_board("qemu-virt")
    assert (RECORDED.label, RECORDED.kernel) == (generate.EXTLINUX_LABEL, generate.EXTLINUX_KERNEL)
    assert generate.disk_signature(board) == f"0x{RECORDED.disk_signature:08x}"
    assert RECORDED.cmdline[:len(board.kernel_cmdline)] == board.kernel_cmdline


@pytest.mark.parametrize("change,check,message", [
    ({"uboot_version": "U-Boot 2025.01-1 (Jan 01 2026 - 00:00:00 +0000)"},
     "uboot_banner_is_the_firmware_qemu_was_given", "but the firmware file says 'U-Boot 2025.01-1"),
    ({"boot_partition": 2}, "uboot_found_extlinux_conf_on_the_cards_boot_partition",
     "from partition 1, the card's boot partition is 2"),
    ({"label": "rtflex-rescue"}, "uboot_booted_the_generated_extlinux_entry",
     "U-Boot picked entry 'rtflex', not 'rtflex-rescue'"),
    ({"kernel": "/vmlinuz"}, "uboot_booted_the_generated_extlinux_entry", "loaded /zImage, not /vmlinuz"),
    ({"cmdline": RECORDED.cmdline + ["quiet"]}, "kernel_command_line_is_the_generated_one",
     "U-Boot passed '.* rtflex.results=hvc0', generated: '.* rtflex.results=hvc0 quiet'"),
    ({"cmdline": ["console=ttyS0,115200"] + RECORDED.cmdline[1:]}, "kernel_command_line_is_the_generated_one",
     "generated: 'console=ttyS0,115200"),
    ({"disk_signature": 0x12345678}, "root_is_the_partuuid_partition_of_the_card",
     "the card's disk signature is 12345678"),
    ({"card_size": 1 << 30}, "root_is_the_partuuid_partition_of_the_card", "no disk of the card's size"),
])
def test_each_check_fails_on_a_wrong_expectation(change, check, message):
    got = verdicts(text(RECORDING), dataclasses.replace(RECORDED, **change))
    assert got[check] is not None and re.search(message, got[check]), got[check]
    # Only that check fails.
    assert [n for n, f in got.items() if f] == [check]


@pytest.mark.parametrize("old,new,check,message", [
    # The kernel got another command line than U-Boot passed.
    ("Kernel command line: console=ttyAMA0,115200", "Kernel command line: console=ttyAMA1,115200",
     "kernel_command_line_is_the_generated_one", "the kernel got 'console=ttyAMA1,115200"),
    # The kernel mounted the boot partition as its root.
    ("EXT4-fs (vda2): mounted", "EXT4-fs (vda1): mounted", "root_is_the_partuuid_partition_of_the_card",
     "the first ext4 mount is 'EXT4-fs \\(vda1\\)"),
    # U-Boot read the boot file from somewhere else.
    ("Scanning virtio 0:1...", "Scanning usb 0:1...", "uboot_found_extlinux_conf_on_the_cards_boot_partition",
     "from a usb device"),
    # U-Boot found a boot script, not extlinux.conf.
    ("Found /extlinux/extlinux.conf", "Found /boot.scr", "uboot_found_extlinux_conf_on_the_cards_boot_partition",
     "found /boot.scr"),
])
def test_each_check_fails_on_a_changed_console(old, new, check, message):
    console = text(RECORDING)
    assert old in console
    got = verdicts(console.replace(old, new, 1))
    assert got[check] is not None and re.search(message, got[check]), got[check]


def test_a_boot_that_stops_in_u_boot_fails_the_kernel_checks():
    console = text(RECORDING)
    cut = console[:console.index("Starting kernel ...") + len("Starting kernel ...")]
    got = verdicts(cut)
    assert [n for n, f in got.items() if f] == ["kernel_command_line_is_the_generated_one",
                                                "root_is_the_partuuid_partition_of_the_card"]
    got = verdicts(console[:console.index("Starting kernel ...")])
    assert "Starting kernel" in got["uboot_booted_the_generated_extlinux_entry"]


def test_a_boot_without_u_boot_fails_every_check():
    # QEMU's -kernel boot of vexpress-a9: no U-Boot ever ran.
    got = verdicts(text("vexpress-a9-test-console.log"))
    assert all(got[n] for n in NAMES), got


def test_the_firmware_version_is_read_from_the_binary(tmp_path):
    blob = tmp_path / "u-boot.bin"
    blob.write_bytes(b"\x00junk\x00" + RECORDED.uboot_version.encode() + b"\x00more U-Boot text\x00")
    assert uboot.firmware_version(str(blob)) == RECORDED.uboot_version
    blob.write_bytes(b"\x00no version here\x00")
    with pytest.raises(uboot.CardError, match="found none"):
        uboot.firmware_version(str(blob))
    blob.write_bytes(RECORDED.uboot_version.encode() + b"\x00U-Boot 2025.01 (Jan 01 2026 - 00:00:00 +0000)\x00")
    with pytest.raises(uboot.CardError, match="expected one U-Boot version string"):
        uboot.firmware_version(str(blob))


def test_a_missing_firmware_says_how_to_get_it():
    board = dataclasses.replace(load_board("qemu-virt"), qemu_uboot="/nonexistent/u-boot.bin")
    with pytest.raises(uboot.CardError, match="missing: board qemu-virt boots through U-Boot from Debian's "
                                              "u-boot-qemu package; run 'make deps'"):
        uboot.require_firmware(board)


# ---- the card a run boots ----------------------------------------------------

needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in ("mkfs.vfat", "mcopy", "mmd")),
                                 reason="dosfstools and mtools (make deps) missing")


def make_card(tmp_path, extlinux):
    """An 8 MiB card: MBR with signature 7274666c, partition 1 a FAT with
    EXTLINUX (text, or None: no extlinux.conf) at 1 MiB, partition 2 bytes."""
    part = tmp_path / "boot.vfat"
    if part.exists():
        part.unlink()
    subprocess.run(["mkfs.vfat", "-C", str(part), "4096"], check=True, capture_output=True)
    if extlinux is not None:
        conf = tmp_path / "extlinux.conf"
        conf.write_text(extlinux)
        subprocess.run(["mmd", "-i", str(part), "::/extlinux"], check=True)
        subprocess.run(["mcopy", "-i", str(part), str(conf), "::/extlinux/extlinux.conf"], check=True)
    mbr = bytearray(512)
    struct.pack_into("<I", mbr, 440, 0x7274666c)
    mbr[446:462] = bytes([0x80, 0, 0, 0, 0x0C, 0, 0, 0]) + struct.pack("<II", 2048, 8192)
    mbr[462:478] = bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + struct.pack("<II", 10240, 6144)
    mbr[510:512] = b"\x55\xaa"
    card = tmp_path / "card.img"
    with open(card, "wb") as f:
        f.truncate(8 << 20)
        f.write(mbr)
        f.seek(1 << 20)
        f.write(part.read_bytes())
        f.seek(5 << 20)
        f.write(b"root partition " * 1000)
    return str(card)


@needs_tools
def test_the_card_carries_the_runs_command_line(tmp_path):
    board = load_board("qemu-virt")
    card = make_card(tmp_path, generate.extlinux_conf(board))
    # The board's own command line: the card itself.
    assert uboot.card_for_boot(board, card, board.kernel_cmdline, str(tmp_path / "out")) == card
    words = board.kernel_cmdline + ["rtflex.mode=test", "rtflex.results=hvc0"]
    copy = uboot.card_for_boot(board, card, words, str(tmp_path / "out"))
    assert copy == str(tmp_path / "out" / "uboot-card.img")
    got = subprocess.run(["mcopy", "-n", "-i", f"{copy}@@{1 << 20}", "::/extlinux/extlinux.conf", "-"],
                         check=True, capture_output=True, text=True).stdout
    assert got == generate.extlinux_conf(board, words)
    # Only the boot partition changed: the MBR and the root partition are the card's.
    with open(card, "rb") as a, open(copy, "rb") as b:
        orig, new = a.read(), b.read()
    assert len(orig) == len(new)
    assert orig[:1 << 20] == new[:1 << 20] and orig[5 << 20:] == new[5 << 20:]
    # and the card itself is untouched
    assert subprocess.run(["mcopy", "-n", "-i", f"{card}@@{1 << 20}", "::/extlinux/extlinux.conf", "-"],
                          check=True, capture_output=True, text=True).stdout == generate.extlinux_conf(board)


@needs_tools
def test_a_card_without_the_generated_extlinux_conf_is_refused(tmp_path):
    board = load_board("qemu-virt")
    stale = generate.extlinux_conf(board).replace("rootwait", "rootdelay=5")
    card = make_card(tmp_path, stale)
    with pytest.raises(uboot.CardError, match="not the one generated from board/qemu-virt/board.mk"):
        uboot.card_for_boot(board, card, board.kernel_cmdline, str(tmp_path))
    card = make_card(tmp_path, None)
    with pytest.raises(uboot.CardError, match="no extlinux/extlinux.conf on the boot partition"):
        uboot.card_for_boot(board, card, board.kernel_cmdline, str(tmp_path))


def test_the_recording_is_a_real_file():
    assert os.path.getsize(path(RECORDING)) > 1000
