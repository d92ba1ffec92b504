#!/usr/bin/env python3
"""SD card layout checks for an rtflex board image.

  check-image.py --board-dir board/<b> --build-dir build/<b> \\
      --kernel-obj build/kernel --bootloader-dir build/<b>/bootloader \\
      --sdcard build/<b>/sdcard.img

Reads the image the way the board's boot chain does and checks it against
independent sources: the MBR rules, the SoC boot ROM's rules (i.MX6: an
IVT at 1 KiB whose boot data says it was linked there; AM57xx: MLO in the
FAT of the first, active partition, with a GP header loading into OCMC
RAM), the device trees and console the boot loader itself names in its
built-in environment, the kernel build (zImage, DTBs, kernel release), and
what the root file system must hold (the owners and modes of
rootfs/permissions.txt, /trusted root:kml 0750 without programs, the static
Kernel Mode Linux programs of rt-apps/kml/static-bins, modules for this
kernel). Prints one libtest-style line per check
and a cargo-style "test result:" line; exits non-zero on any failure.
"""

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tools"))
from rtflex.board import load_board  # noqa: E402

SECTOR = 512
# Owners and modes the root file system must have (Buildroot makedevs format).
PERMISSIONS = os.path.join(TOP, "rootfs", "permissions.txt")
# The static Kernel Mode Linux programs, one per line.
STATIC_BINS = os.path.join(TOP, "rt-apps", "kml", "static-bins")


class Check:
    def __init__(self):
        self.passed = self.failed = self.ignored = 0

    def run(self, name, fn):
        try:
            note = fn()
        except Skip as e:
            print(f"test layout::{name} ... ignored ({e})")
            self.ignored += 1
            return
        except (AssertionError, subprocess.CalledProcessError, OSError) as e:
            print(f"test layout::{name} ... FAILED\n    {e}")
            self.failed += 1
            return
        print(f"test layout::{name} ... ok" + (f" ({note})" if note else ""))
        self.passed += 1


class Skip(Exception):
    pass


def table_lines(path):
    """The lines of a table file without comments and blank lines."""
    with open(path) as f:
        return [line for line in (raw.split("#", 1)[0].strip() for raw in f) if line]


def mbr_partitions(img):
    with open(img, "rb") as f:
        mbr = f.read(SECTOR)
    assert mbr[510:512] == b"\x55\xaa", "no MBR boot signature (0x55AA) in sector 0"
    parts = []
    for i in range(4):
        e = mbr[446 + 16 * i: 446 + 16 * (i + 1)]
        boot, ptype = e[0], e[4]
        start, count = struct.unpack_from("<II", e, 8)
        if ptype:
            parts.append({"n": i + 1, "boot": boot, "type": ptype,
                          "start": start * SECTOR, "size": count * SECTOR})
    return struct.unpack_from("<I", mbr, 440)[0], parts


def read_at(img, off, n):
    with open(img, "rb") as f:
        f.seek(off)
        return f.read(n)


def fat_files(img, part):
    """Paths (lower case, relative) of every file in a FAT partition."""
    out = subprocess.run(["mdir", "-/", "-b", "-i", f"{img}@@{part['start']}", "::"],
                         check=True, capture_output=True, text=True).stdout
    return {line.strip().lstrip(":").lstrip("/").lower() for line in out.splitlines() if line.strip()}


def fat_read(img, part, path):
    return subprocess.run(["mcopy", "-n", "-i", f"{img}@@{part['start']}", f"::/{path}", "-"],
                          check=True, capture_output=True).stdout


def uboot_env_strings(blob):
    """Printable strings of a U-Boot binary (its default environment)."""
    return [s.decode() for s in re.findall(rb"[\x20-\x7e]{6,}", blob)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board-dir", required=True)
    p.add_argument("--build-dir", required=True)
    p.add_argument("--kernel-obj", required=True)
    p.add_argument("--bootloader-dir", required=True)
    p.add_argument("--sdcard", required=True)
    args = p.parse_args()
    board_dir = os.path.abspath(args.board_dir)
    name = os.path.basename(board_dir)
    board = load_board(name, top=os.path.dirname(os.path.dirname(board_dir)))
    img = args.sdcard
    dts = os.path.join(args.kernel_obj, "arch/arm/boot/dts")
    dtbs = board.dtbs
    soc = dtbs[0].split("/")[0] if dtbs else ""  # arm (QEMU), nxp (i.MX), ti (OMAP)
    console = board.console
    root = board.root_device
    bl = args.bootloader_dir
    bl_files = {f: os.path.join(bl, f) for f in sorted(os.listdir(bl))} if os.path.isdir(bl) else {}
    supplied = {f: p for f, p in bl_files.items() if os.path.getsize(p) > 0}
    c = Check()
    print(f"running layout checks for {name} ({img})")
    sig, parts = mbr_partitions(img)
    size = os.path.getsize(img)

    def partition_table():
        assert len(parts) == 2, f"expected 2 partitions (boot, root), found {len(parts)}"
        boot, rootp = parts
        assert boot["type"] in (0x0B, 0x0C), f"partition 1 is type {boot['type']:#x}, not FAT32"
        assert boot["boot"] == 0x80, "partition 1 is not marked active (boot ROMs and distro boot look for it)"
        assert rootp["type"] == 0x83, f"partition 2 is type {rootp['type']:#x}, not Linux"
        assert boot["start"] % (1 << 20) == 0 and rootp["start"] % (1 << 20) == 0, "partitions not MiB-aligned"
        assert boot["start"] + boot["size"] <= rootp["start"], "partitions 1 and 2 overlap"
        assert rootp["start"] + rootp["size"] <= size, "partition 2 runs past the end of the image"
        return f"boot at {boot['start'] >> 20} MiB, root at {rootp['start'] >> 20} MiB"

    def root_device():
        m = re.fullmatch(r"PARTUUID=([0-9a-f]{8})-(\d\d)", root)
        if m:
            assert int(m.group(1), 16) == sig, f"root={root} but the disk signature is {sig:08x}"
            assert int(m.group(2)) == 2, f"root={root} is not the root partition (2)"
            return f"{root}: disk signature {sig:08x}"
        m = re.fullmatch(r"/dev/mmcblk\d+p(\d+)", root)
        assert m and int(m.group(1)) == 2, f"root={root} does not name partition 2"
        return None

    c.run("partition_table", partition_table)
    c.run("root_device_names_the_root_partition", root_device)
    boot = parts[0] if parts else None
    files = fat_files(img, boot) if boot else set()

    def kernel_and_dtbs():
        with open(os.path.join(args.kernel_obj, "arch/arm/boot/zImage"), "rb") as f:
            assert fat_read(img, boot, "zImage") == f.read(), "zImage differs from the kernel build's"
        for d in dtbs:
            base = os.path.basename(d)
            assert base.lower() in files, f"{base} missing from the boot partition"
            with open(os.path.join(dts, d), "rb") as f:
                data = f.read()
            assert fat_read(img, boot, base) == data, f"{base} differs from the kernel build's {d}"
            # The same DTB under its kernel directory (for newer U-Boot's
            # $fdtfile), where the board's layout has one.
            if d.lower() in files:
                assert fat_read(img, boot, d) == data, f"{d} differs from the kernel build's"
        return f"zImage + {len(dtbs)} DTB(s)"

    c.run("boot_partition_has_this_kernel_and_its_dtbs", kernel_and_dtbs)

    if board.has_uboot:
        def extlinux_conf():
            assert "extlinux/extlinux.conf" in files, "no extlinux/extlinux.conf on the boot partition"
            text = fat_read(img, boot, "extlinux/extlinux.conf").decode()
            kernel = re.search(r"^\s*kernel\s+(\S+)", text, re.M)
            assert kernel and kernel.group(1).lstrip("/").lower() in files, "its kernel line names no file"
            fdtdir = re.search(r"^\s*fdtdir\s+(\S+)", text, re.M)
            assert fdtdir and fdtdir.group(1) == "/", "expected 'fdtdir /' (the DTBs are at the top)"
            append = re.search(r"^\s*append\s+(.*)$", text, re.M)
            assert append, "no append line"
            words = append.group(1).split()
            assert f"console={console},115200" in words, f"append lacks console={console},115200"
            assert f"root={root}" in words, f"append lacks root={root}"
            return None
        c.run("extlinux_conf_boots_this_kernel_console_and_root", extlinux_conf)

    # The boot loader's own environment: which DTB and console it expects.
    uboot = next((bl_files[f] for f in ("u-boot-dtb.imx", "u-boot.img", "u-boot-dtb.img") if f in supplied), None)

    def uboot_expectations():
        if not uboot:
            raise Skip("no boot loader in this image")
        env = uboot_env_strings(open(uboot, "rb").read())
        names = set()
        for s in env:
            names.update(re.findall(r"(?:^fdtfile=|setenv fdtfile )([\w./-]+\.dtb)", s))
        ours = {os.path.basename(d) for d in dtbs}
        family = {n for n in names if any(os.path.basename(n).startswith(o.split("-")[0]) for o in ours)}
        assert family, f"the boot loader names none of our DTBs ({sorted(names)})"
        missing = sorted(family - files)
        assert not missing, f"the boot loader may ask for {missing}, not on the boot partition"
        cons = [s[len("console="):].split(",")[0] for s in env if s.startswith("console=")]
        assert cons and cons[0] == console, f"boot loader console {cons} != board console {console}"
        assert any("extlinux/extlinux.conf" in s or "scan_dev_for_extlinux" in s for s in env), \
            "this U-Boot has no distro boot (extlinux) support"
        return f"fdtfile {sorted(family)}, console {console}"

    if soc != "arm":
        c.run("boot_loader_finds_its_dtb_and_console", uboot_expectations)

    if soc == "nxp":
        def imx_boot_image():
            gap = read_at(img, 0, parts[0]["start"])[1024:]
            if not supplied:
                assert not gap.strip(b"\0"), "no boot loader supplied, but its area is not empty"
                raise Skip("Debian has no boot loader for this board: area before partition 1 is zero")
            ivt = gap[:32]
            tag, length, version = ivt[0], struct.unpack(">H", ivt[1:3])[0], ivt[3]
            assert tag == 0xD1 and length == 32 and version in (0x40, 0x41), \
                f"no i.MX6 IVT at 1 KiB (header {ivt[:4].hex()})"
            entry, _, dcd, boot_data, self_ptr = struct.unpack_from("<IIIII", ivt, 4)
            start, blen = struct.unpack_from("<II", gap, boot_data - self_ptr)
            assert start == self_ptr - 0x400, "the IVT was not linked to sit at 1 KiB of the card"
            first = "SPL" if "SPL" in supplied else "u-boot-dtb.imx"
            data = open(supplied[first], "rb").read()
            assert gap[:len(data)] == data, f"{first} is not at 1 KiB"
            assert 0x400 + blen <= parts[0]["start"], "the boot image runs into partition 1"
            if "u-boot-dtb.img" in supplied:
                data = open(supplied["u-boot-dtb.img"], "rb").read()
                got = read_at(img, 69 * 1024, len(data))
                assert got == data, "u-boot-dtb.img is not at 69 KiB (mx6sabresd SPL raw sector 0x8a)"
                assert data[:4] in (b"\x27\x05\x19\x56", b"\xd0\x0d\xfe\xed"), "u-boot-dtb.img: no image header"
            return f"IVT at 1 KiB, entry {entry:#x}, boot image {blen} bytes"
        c.run("imx6_boot_rom_finds_the_boot_image_at_1k", imx_boot_image)

    if soc == "ti":
        def omap_mlo():
            assert "mlo" in files and "u-boot.img" in files, "MLO and u-boot.img must be in the FAT"
            mlo = fat_read(img, boot, "MLO")
            assert mlo == open(supplied["MLO"], "rb").read(), "MLO differs from the boot loader package's"
            assert fat_read(img, boot, "u-boot.img") == open(supplied["u-boot.img"], "rb").read(), \
                "u-boot.img differs from the boot loader package's"
            off = 512 if mlo[0x14:0x1e] == b"CHSETTINGS" else 0
            gp_size, load = struct.unpack_from("<II", mlo, off)
            assert len(mlo) - off - 8 <= gp_size <= len(mlo) - off, f"MLO GP header size {gp_size} wrong"
            assert 0x40300000 <= load < 0x40380000, f"MLO loads at {load:#x}, not OCMC RAM1"
            return f"GP header: {gp_size} bytes at {load:#x}"
        c.run("omap_boot_rom_finds_mlo_in_the_active_fat", omap_mlo)

    def rootfs():
        rootp = parts[1]
        with tempfile.NamedTemporaryFile(dir=args.build_dir, suffix=".ext4") as t:
            with open(img, "rb") as f:
                f.seek(rootp["start"])
                left = rootp["size"]
                while left:
                    chunk = f.read(min(left, 8 << 20))
                    assert chunk, "image ends inside partition 2"
                    t.write(chunk)
                    left -= len(chunk)
            t.flush()

            def debugfs(cmd):
                return subprocess.run(["debugfs", "-R", cmd, t.name], check=True,
                                      capture_output=True, text=True).stdout

            def stat(path):
                out = debugfs(f"stat {path}")
                mode = re.search(r"Mode:\s+(\d+)", out)
                owner = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)", out)
                typ = re.search(r"Type: (\w+)", out)
                assert mode and owner and typ, f"{path} missing from the root file system"
                return typ.group(1), int(mode.group(1), 8), int(owner.group(1)), int(owner.group(2))

            def cat(path):
                return subprocess.run(["debugfs", "-R", f"cat {path}", t.name],
                                      check=True, capture_output=True).stdout

            def is_elf(path):
                return cat(path)[:4] == b"\x7fELF"

            def has_interp(path):
                elf = cat(path)
                assert elf[:4] == b"\x7fELF", f"{path} is not an ELF file"
                phoff, = struct.unpack_from("<I", elf, 28)
                phentsize, phnum = struct.unpack_from("<HH", elf, 42)
                types = [struct.unpack_from("<I", elf, phoff + i * phentsize)[0] for i in range(phnum)]
                return 3 in types  # PT_INTERP

            # The permission table: every entry has its owner and mode.
            for line in table_lines(PERMISSIONS):
                name, typ, mode, uid, gid = line.split()[:5]
                want = ({"d": "directory", "f": "regular"}[typ], int(mode, 8), int(uid), int(gid))
                assert stat(name) == want, f"{name} is {stat(name)}, {PERMISSIONS} says {want}"
            # Kernel Mode Linux: /trusted is root:kml 0750 (group kml by
            # name, from the image's /etc/group) and holds no program.
            groups = {f[0]: int(f[2]) for f in (l.split(":") for l in cat("/etc/group").decode().splitlines())
                      if len(f) >= 3}
            assert "kml" in groups, "no group kml in /etc/group"
            assert stat("/trusted") == ("directory", 0o750, 0, groups["kml"]), \
                f"/trusted is {stat('/trusted')}, not root:kml ({groups['kml']}) 0750"
            listing = debugfs("ls -p /trusted")
            entries = [f for f in (l.strip().strip("/").split("/") for l in listing.splitlines()) if len(f) >= 5]
            names = []
            for _ino, mode, _uid, _gid, name, *_ in entries:
                if name in (".", ".."):
                    continue
                m = int(mode, 8)
                assert m & 0o170000 == 0o100000 and not m & 0o111 and not is_elf(f"/trusted/{name}"), \
                    f"/trusted/{name} is a program or not a plain file (mode {m:o}): /trusted holds no programs"
                names.append(name)
            assert names == ["README"], f"/trusted holds {names}, expected only README"
            # The static Kernel Mode Linux programs, outside /trusted and in
            # /usr/bin: root-owned, not writable by others, static, equal.
            progs = table_lines(STATIC_BINS)
            assert progs, f"{STATIC_BINS} lists no binary"
            for prog in progs:
                copies = (f"/usr/lib/rtflex/kml/{prog}", f"/usr/bin/{prog}")
                for path in copies:
                    typ, mode, uid, gid = stat(path)
                    assert (typ, mode, uid, gid) == ("regular", 0o755, 0, 0), \
                        f"{path}: {typ} mode {mode:o} uid {uid} gid {gid}, not a root:root 0755 file"
                    assert not has_interp(path), f"{path} has an interpreter (not static)"
                assert cat(copies[0]) == cat(copies[1]), f"{copies[0]} and {copies[1]} differ"
            for path in ("/usr/bin/rtlat", "/usr/bin/cyclictest", "/etc/init.d/rcS"):
                stat(path)
            with open(os.path.join(args.kernel_obj, "include/config/kernel.release")) as f:
                rel = f.read().strip()
            stat(f"/usr/lib/modules/{rel}/modules.dep")
            # Our Rust test module, for every kernel with Rust (the kasan
            # variant has none: KASAN and Rust exclude each other on ARM).
            with open(os.path.join(args.kernel_obj, ".config")) as f:
                has_rust = "CONFIG_RUST=y" in f.read().splitlines()
            if has_rust:
                stat(f"/usr/lib/modules/{rel}/extra/rtflex_selftest.ko")
            return f"modules for {rel}" + ("" if has_rust else " (no Rust in this kernel: no rtflex_selftest)")

    c.run("rootfs_has_the_kml_policy_static_programs_and_modules_for_this_kernel", rootfs)

    def bmap():
        path = img + ".bmap"
        assert os.path.exists(path), f"{path} missing (bmaptool installed?)"
        text = open(path).read()
        m = re.search(r"<ImageSize>\s*(\d+)\s*</ImageSize>", text)
        assert m and int(m.group(1)) == size, "the .bmap describes another image size"
        return None

    c.run("bmap_matches_the_image", bmap)
    ok = "ok" if not c.failed else "FAILED"
    print(f"\ntest result: {ok}. {c.passed} passed; {c.failed} failed; {c.ignored} ignored")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
