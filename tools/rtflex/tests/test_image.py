"""The image checks' readers and rules, on images and binaries made by the
real tools (genimage, mtools, the ARM cross compiler) and on boot headers
laid out as the SoC manuals describe them. The whole check of a built image
runs in make test (check-image) for every board."""

import os
import shutil
import struct
import subprocess

import pytest

from rtflex import image
from rtflex.board import TOP, board_names, load_board


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing (make deps installs them)")


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    """A small SD card image from genimage: an active FAT32 boot partition
    at 1 MiB holding zImage and a DTB, a Linux partition after it, disk
    signature 7274666c (as our boards' layouts)."""
    need("genimage", "mkfs.vfat", "mcopy", "mdir")
    d = tmp_path_factory.mktemp("card")
    inp = d / "input"
    inp.mkdir()
    (inp / "zImage").write_bytes(b"kernel" * 1000)
    (inp / "board.dtb").write_bytes(b"\xd0\x0d\xfe\xed dtb")
    (inp / "root.img").write_bytes(b"\0" * (2 << 20))
    cfg = d / "genimage.cfg"
    cfg.write_text("""
image boot.vfat { vfat { files = { "zImage", "board.dtb" } } size = 8M }
image sdcard.img {
    hdimage { partition-table-type = "mbr" disk-signature = 0x7274666c }
    partition boot { partition-type = 0xC bootable = "true" image = "boot.vfat" offset = 1M }
    partition rootfs { partition-type = 0x83 image = "root.img" offset = 9M }
}
""")
    for sub in ("root", "tmp", "out"):
        (d / sub).mkdir()
    subprocess.run(["genimage", "--config", str(cfg), "--inputpath", str(inp), "--outputpath", str(d / "out"),
                    "--rootpath", str(d / "root"), "--tmppath", str(d / "tmp")], check=True, capture_output=True)
    return str(d / "out" / "sdcard.img")


def test_the_mbr_genimage_wrote(card):
    sig, parts = image.mbr_partitions(card)
    assert sig == 0x7274666C
    assert [(p["n"], p["boot"], p["type"], p["start"]) for p in parts] == [(1, 0x80, 0x0C, 1 << 20),
                                                                           (2, 0, 0x83, 9 << 20)]
    assert parts[0]["size"] == 8 << 20 and parts[1]["size"] == 2 << 20
    assert image.check_partition_table(parts, os.path.getsize(card)) == "boot at 1 MiB, root at 9 MiB"
    assert image.check_root_device("PARTUUID=7274666c-02", sig) == "PARTUUID=7274666c-02: disk signature 7274666c"


def test_the_fat_boot_partition_is_read_as_written(card):
    _, parts = image.mbr_partitions(card)
    assert image.fat_files(card, parts[0]) == {"zimage", "board.dtb"}
    assert image.fat_read(card, parts[0], "zImage") == b"kernel" * 1000


def with_entry(parts, n, **change):
    return [dict(p, **change) if p["n"] == n else p for p in parts]


def test_partition_rules(card):
    _, parts = image.mbr_partitions(card)
    size = os.path.getsize(card)
    for bad, message in [
        (parts[:1], "expected 2 partitions"),
        (with_entry(parts, 1, boot=0), "not marked active"),
        (with_entry(parts, 1, type=0x83), "not FAT32"),
        (with_entry(parts, 2, type=0x0C), "not Linux"),
        (with_entry(parts, 2, start=(9 << 20) + 512), "not MiB-aligned"),
        (with_entry(parts, 2, start=8 << 20), "overlap"),
        (with_entry(parts, 2, size=size), "past the end"),
    ]:
        with pytest.raises(AssertionError, match=message):
            image.check_partition_table(bad, size)


def test_an_image_without_an_mbr_is_named(tmp_path):
    blank = tmp_path / "blank.img"
    blank.write_bytes(b"\0" * 4096)
    with pytest.raises(AssertionError, match="no MBR boot signature"):
        image.mbr_partitions(str(blank))


def test_root_device_rules():
    assert image.check_root_device("/dev/mmcblk0p2", 0) is None
    with pytest.raises(AssertionError, match="disk signature is 12345678"):
        image.check_root_device("PARTUUID=7274666c-02", 0x12345678)
    with pytest.raises(AssertionError, match="not the root partition"):
        image.check_root_device("PARTUUID=7274666c-01", 0x7274666C)
    with pytest.raises(AssertionError, match="does not name partition 2"):
        image.check_root_device("/dev/mmcblk0p1", 0)


@pytest.mark.parametrize("board", [b for b in board_names() if load_board(b).has_uboot])
def test_the_generated_extlinux_conf_passes_the_check(board):
    from rtflex import generate  # the generator of extlinux.conf (board facts)
    b = load_board(board)
    text = generate.extlinux_conf(b)
    files = {"zimage"} | {n.lower() for n in b.dtb_names}
    dtbs = bool(b.dtbs)
    image.check_extlinux(text, files, b.console, b.root_device, dtbs)
    with pytest.raises(AssertionError, match="append lacks console"):
        image.check_extlinux(text.replace(f"console={b.console}", "console=ttyS9"), files, b.console,
                             b.root_device, dtbs)
    with pytest.raises(AssertionError, match="kernel line names no file"):
        image.check_extlinux(text, files - {"zimage"}, b.console, b.root_device, dtbs)


def test_without_dtbs_on_the_card_extlinux_conf_names_no_device_tree():
    # qemu-virt: U-Boot hands on QEMU's device tree; an fdtdir would look
    # for a DTB that is not there.
    from rtflex import generate
    b = load_board("qemu-virt")
    assert not b.dtbs
    text = generate.extlinux_conf(b)
    assert "fdt" not in text
    image.check_extlinux(text, {"zimage"}, b.console, b.root_device, dtbs=False)
    with pytest.raises(AssertionError, match="'fdtdir' line, but there is no DTB on the card"):
        image.check_extlinux(text + "\tfdtdir /\n", {"zimage"}, b.console, b.root_device, dtbs=False)
    with pytest.raises(AssertionError, match="expected 'fdtdir /'"):
        image.check_extlinux(text, {"zimage"}, b.console, b.root_device, dtbs=True)


# ---- boot loaders -------------------------------------------------------------

ENV = ["bootcmd=run distro_bootcmd", "console=ttymxc1,115200",
       "findfdt=if test $board_name = SABRELITE; then setenv fdtfile imx6q-sabrelite.dtb; fi",
       "scan_dev_for_extlinux=if test -e ${devtype} ${devnum}:${distro_bootpart} ${prefix}extlinux/extlinux.conf"]


def test_uboot_environment_rules():
    dtbs, files = ["nxp/imx/imx6q-sabrelite.dtb"], {"imx6q-sabrelite.dtb", "zimage"}
    assert image.check_uboot_env(ENV, dtbs, files, "ttymxc1") == \
        "fdtfile ['imx6q-sabrelite.dtb'], console ttymxc1"
    with pytest.raises(AssertionError, match="not on the boot partition"):
        image.check_uboot_env(ENV, dtbs, {"zimage"}, "ttymxc1")
    with pytest.raises(AssertionError, match="console"):
        image.check_uboot_env(ENV, dtbs, files, "ttymxc0")
    with pytest.raises(AssertionError, match="no distro boot"):
        image.check_uboot_env(ENV[:3], dtbs, files, "ttymxc1")
    with pytest.raises(AssertionError, match="names none of our DTBs"):
        image.check_uboot_env(ENV, ["ti/omap/am57xx-beagle-x15.dtb"], files, "ttymxc1")
    assert image.uboot_env_strings(b"\0\x01console=ttymxc1,115200\0ab\0fdtfile=x.dtb\0") == \
        ["console=ttymxc1,115200", "fdtfile=x.dtb"]


def ivt(entry, self_ptr, image_len, version=0x41):
    """An i.MX6 IVT followed by its boot data, as the reference manual lays
    them out: header (tag 0xD1, length 32 big-endian, version), entry,
    reserved, DCD, boot data, self, CSF, reserved; boot data: start,
    length, plugin."""
    header = bytes([0xD1]) + struct.pack(">H", 32) + bytes([version])
    body = struct.pack("<IIIIIII", entry, 0, 0, self_ptr + 32, self_ptr, 0, 0)
    return header + body + struct.pack("<III", self_ptr - 0x400, image_len, 0)


def test_imx_ivt_rules():
    gap = ivt(0x17800000, 0x177FF400, 600000) + b"\0" * 64
    assert image.imx_ivt(gap) == (0x17800000, 0x177FF000, 600000)
    with pytest.raises(AssertionError, match="no i.MX6 IVT"):
        image.imx_ivt(b"\0" * 64)
    linked_elsewhere = bytearray(gap)
    struct.pack_into("<I", linked_elsewhere, 32, 0x177FF000 + 0x1000)  # boot data start
    with pytest.raises(AssertionError, match="not linked to sit at 1 KiB"):
        image.imx_ivt(bytes(linked_elsewhere))


def test_imx_ivt_of_debians_u_boot_when_built():
    path = os.path.join(TOP, "build", "imx6q-sabrelite", "bootloader", "u-boot-dtb.imx")
    if not os.path.exists(path):
        pytest.skip("no imx6q-sabrelite boot loader built (make BOARD=imx6q-sabrelite bootloader)")
    with open(path, "rb") as f:
        data = f.read()
    entry, start, length = image.imx_ivt(data)
    assert start + 0x400 <= entry < start + length
    env = image.uboot_env_strings(data)
    image.check_uboot_env(env, load_board("imx6q-sabrelite").dtbs, {"imx6q-sabrelite.dtb"}, "ttymxc1")


def test_omap_gp_header_rules():
    payload = b"\x01" * 100
    assert image.omap_gp_header(struct.pack("<II", 100, 0x40300000) + payload) == (100, 0x40300000)
    chsettings = bytearray(512)
    chsettings[0x14:0x1E] = b"CHSETTINGS"
    assert image.omap_gp_header(bytes(chsettings) + struct.pack("<II", 100, 0x40300400) + payload) == \
        (100, 0x40300400)
    with pytest.raises(AssertionError, match="not OCMC RAM1"):
        image.omap_gp_header(struct.pack("<II", 100, 0x80000000) + payload)
    with pytest.raises(AssertionError, match="size 5000 wrong"):
        image.omap_gp_header(struct.pack("<II", 5000, 0x40300000) + payload)


def test_static_and_dynamic_arm_programs(tmp_path):
    need("arm-linux-gnueabihf-gcc")
    src = tmp_path / "p.c"
    src.write_text("int main(void) { return 0; }\n")
    for kind, flags in (("static", ["-static"]), ("dynamic", [])):
        subprocess.run(["arm-linux-gnueabihf-gcc", *flags, "-o", str(tmp_path / kind), str(src)], check=True)
    assert not image.has_interp((tmp_path / "static").read_bytes())
    assert image.has_interp((tmp_path / "dynamic").read_bytes())
    with pytest.raises(AssertionError, match="not an ELF file"):
        image.has_interp(b"#!/bin/sh\n")
