"""SD card layout checks of a board's image (`python3 -m rtflex check-image`).

Reads the image the way the board's boot chain does and checks it against
independent sources: the MBR rules, the SoC boot ROM's rules (i.MX6: an
IVT at 1 KiB whose boot data says it was linked there; AM57xx: MLO in the
FAT of the first, active partition, with a GP header loading into OCMC
RAM), the device trees and console the boot loader itself names in its
built-in environment, the kernel build (zImage, DTBs, kernel release), and
what the root file system must hold (the owners and modes of
rootfs/permissions.txt, /trusted root:kml 0750 without programs, the static
Kernel Mode Linux programs of rt-apps/kml/static-bins, modules for this
kernel). Prints one libtest-style line per check and a cargo-style
"test result:" line (make test counts them with the host tests).

Each check is a function that raises AssertionError (failed) or Skip (not
applicable) and returns an optional note; they read what they check
through mtools (FAT), debugfs (ext4) and plain reads.
"""

import os
import re
import struct
import subprocess
import tempfile

from .board import TOP

SECTOR = 512
MIB = 1 << 20
# Owners and modes the root file system must have (Buildroot makedevs format).
PERMISSIONS = os.path.join(TOP, "rootfs", "permissions.txt")
# The static Kernel Mode Linux programs, one per line.
STATIC_BINS = os.path.join(TOP, "rt-apps", "kml", "static-bins")
# MBR partition types.
FAT32_TYPES = (0x0B, 0x0C)
LINUX_TYPE = 0x83
# i.MX6 boot ROM: the IVT of a boot image on an SD card is at 1 KiB
# (i.MX 6Dual/6Quad reference manual, "Image Vector Table").
IMX_IVT_OFFSET = 0x400
IMX_IVT_TAG = 0xD1
# AM57xx boot ROM: MLO's GP header loads it into OCMC RAM1 (AM572x TRM,
# "Memory Booting"; 0x40300000-0x4037FFFF).
OCMC_RAM1 = (0x40300000, 0x40380000)
# U-Boot legacy image and FIT (device tree) magic numbers.
UBOOT_MAGICS = (b"\x27\x05\x19\x56", b"\xd0\x0d\xfe\xed")


class Skip(Exception):
    """A check that does not apply to this image."""


class Checks:
    """Runs checks, prints one libtest-style line each, counts them."""

    def __init__(self, prefix="layout"):
        self.prefix = prefix
        self.passed = self.failed = self.ignored = 0

    def run(self, name, fn, *args):
        try:
            note = fn(*args)
        except Skip as e:
            print(f"test {self.prefix}::{name} ... ignored ({e})")
            self.ignored += 1
            return
        except (AssertionError, subprocess.CalledProcessError, OSError) as e:
            print(f"test {self.prefix}::{name} ... FAILED\n    {e}")
            self.failed += 1
            return
        print(f"test {self.prefix}::{name} ... ok" + (f" ({note})" if note else ""))
        self.passed += 1

    def summary(self):
        ok = "ok" if not self.failed else "FAILED"
        return f"test result: {ok}. {self.passed} passed; {self.failed} failed; {self.ignored} ignored"


def table_lines(path):
    """The lines of a table file without comments and blank lines."""
    with open(path) as f:
        return [line for line in (raw.split("#", 1)[0].strip() for raw in f) if line]


# ---- MBR -------------------------------------------------------------------------

def mbr_partitions(img):
    """(disk signature, partitions) of an image's MBR; each partition a dict
    n, boot (flag byte), type, start and size in bytes."""
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


def check_partition_table(parts, image_size):
    """Two partitions: an active FAT32 boot partition and a Linux root
    partition, MiB-aligned, not overlapping, inside the image."""
    assert len(parts) == 2, f"expected 2 partitions (boot, root), found {len(parts)}"
    boot, rootp = parts
    assert boot["type"] in FAT32_TYPES, f"partition 1 is type {boot['type']:#x}, not FAT32"
    assert boot["boot"] == 0x80, "partition 1 is not marked active (boot ROMs and distro boot look for it)"
    assert rootp["type"] == LINUX_TYPE, f"partition 2 is type {rootp['type']:#x}, not Linux"
    assert boot["start"] % MIB == 0 and rootp["start"] % MIB == 0, "partitions not MiB-aligned"
    assert boot["start"] + boot["size"] <= rootp["start"], "partitions 1 and 2 overlap"
    assert rootp["start"] + rootp["size"] <= image_size, "partition 2 runs past the end of the image"
    return f"boot at {boot['start'] >> 20} MiB, root at {rootp['start'] >> 20} MiB"


def check_root_device(root, signature):
    """root= names partition 2: PARTUUID=<disk signature>-02 or
    /dev/mmcblkNp2."""
    m = re.fullmatch(r"PARTUUID=([0-9a-f]{8})-(\d\d)", root)
    if m:
        assert int(m.group(1), 16) == signature, f"root={root} but the disk signature is {signature:08x}"
        assert int(m.group(2)) == 2, f"root={root} is not the root partition (2)"
        return f"{root}: disk signature {signature:08x}"
    m = re.fullmatch(r"/dev/mmcblk\d+p(\d+)", root)
    assert m and int(m.group(1)) == 2, f"root={root} does not name partition 2"
    return None


# ---- FAT boot partition ----------------------------------------------------------------

def fat_files(img, part):
    """Paths (lower case, relative) of every file in a FAT partition."""
    out = subprocess.run(["mdir", "-/", "-b", "-i", f"{img}@@{part['start']}", "::"],
                         check=True, capture_output=True, text=True).stdout
    return {line.strip().lstrip(":").lstrip("/").lower() for line in out.splitlines() if line.strip()}


def fat_read(img, part, path):
    return subprocess.run(["mcopy", "-n", "-i", f"{img}@@{part['start']}", f"::/{path}", "-"],
                          check=True, capture_output=True).stdout


def read_at(img, off, n):
    with open(img, "rb") as f:
        f.seek(off)
        return f.read(n)


def check_extlinux(text, files, console, root, dtbs=True):
    """An extlinux.conf that boots a kernel on the partition, finds the DTBs
    at the top (fdtdir /) and has the board's console and root. Without
    DTBs on the card (DTBS false) it names no device tree: U-Boot hands on
    the firmware's."""
    kernel = re.search(r"^\s*kernel\s+(\S+)", text, re.M)
    assert kernel and kernel.group(1).lstrip("/").lower() in files, "its kernel line names no file"
    fdtdir = re.search(r"^\s*fdtdir\s+(\S+)", text, re.M)
    if dtbs:
        assert fdtdir and fdtdir.group(1) == "/", "expected 'fdtdir /' (the DTBs are at the top)"
    else:
        fdt = re.search(r"^\s*(fdt|devicetree|fdtdir)\s", text, re.M)
        assert not fdt, f"'{fdt.group(1)}' line, but there is no DTB on the card (the firmware's is used)"
    append = re.search(r"^\s*append\s+(.*)$", text, re.M)
    assert append, "no append line"
    words = append.group(1).split()
    assert f"console={console},115200" in words, f"append lacks console={console},115200"
    assert f"root={root}" in words, f"append lacks root={root}"


# ---- boot loaders ------------------------------------------------------------------------

def uboot_env_strings(blob):
    """Printable strings of a U-Boot binary (its default environment)."""
    return [s.decode() for s in re.findall(rb"[\x20-\x7e]{6,}", blob)]


def check_uboot_env(env, dtbs, files, console):
    """What the boot loader's built-in environment ENV (strings) asks for:
    a DTB of our family that is on the boot partition (FILES), our console,
    and distro boot (extlinux)."""
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


def imx_ivt(gap):
    """The IVT at the start of GAP (the card from 1 KiB on): (entry, boot
    data start, boot image length). Checks the header and that the image
    was linked to sit at 1 KiB of the card."""
    ivt = gap[:32]
    tag, length, version = ivt[0], struct.unpack(">H", ivt[1:3])[0], ivt[3]
    assert tag == IMX_IVT_TAG and length == 32 and version in (0x40, 0x41), \
        f"no i.MX6 IVT at 1 KiB (header {ivt[:4].hex()})"
    entry, _, _dcd, boot_data, self_ptr = struct.unpack_from("<IIIII", ivt, 4)
    assert 0 <= boot_data - self_ptr <= len(gap) - 8, "the IVT's boot data pointer is outside the boot image"
    start, length = struct.unpack_from("<II", gap, boot_data - self_ptr)
    assert start == self_ptr - IMX_IVT_OFFSET, "the IVT was not linked to sit at 1 KiB of the card"
    return entry, start, length


def omap_gp_header(mlo):
    """(size, load address) of MLO's GP header (after a 512-byte
    configuration header when there is one), checked: the size is MLO's,
    the load address in OCMC RAM1."""
    off = 512 if mlo[0x14:0x1e] == b"CHSETTINGS" else 0
    size, load = struct.unpack_from("<II", mlo, off)
    assert len(mlo) - off - 8 <= size <= len(mlo) - off, f"MLO GP header size {size} wrong"
    assert OCMC_RAM1[0] <= load < OCMC_RAM1[1], f"MLO loads at {load:#x}, not OCMC RAM1"
    return size, load


def has_interp(elf):
    """Whether a 32-bit little-endian ELF file has a PT_INTERP segment (is
    dynamically linked)."""
    assert elf[:4] == b"\x7fELF", "not an ELF file"
    phoff, = struct.unpack_from("<I", elf, 28)
    phentsize, phnum = struct.unpack_from("<HH", elf, 42)
    types = [struct.unpack_from("<I", elf, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 in types  # PT_INTERP


# ---- the whole image ---------------------------------------------------------------------

def check_image(board, sdcard, kernel_obj, bootloader_dir, build_dir):
    """Run every check that applies to BOARD's image SDCARD; returns Checks."""
    img = sdcard
    dts = os.path.join(kernel_obj, "arch/arm/boot/dts")
    dtbs = board.dtbs
    soc = dtbs[0].split("/")[0] if dtbs else ""  # arm (QEMU), nxp (i.MX), ti (OMAP)
    console, root = board.console, board.root_device
    bl = bootloader_dir
    bl_files = {f: os.path.join(bl, f) for f in sorted(os.listdir(bl))} if os.path.isdir(bl) else {}
    supplied = {f: p for f, p in bl_files.items() if os.path.getsize(p) > 0}
    c = Checks()
    print(f"running layout checks for {board.name} ({img})")
    sig, parts = mbr_partitions(img)
    size = os.path.getsize(img)
    c.run("partition_table", check_partition_table, parts, size)
    c.run("root_device_names_the_root_partition", check_root_device, root, sig)
    boot = parts[0] if parts else None
    files = fat_files(img, boot) if boot else set()

    def kernel_and_dtbs():
        with open(os.path.join(kernel_obj, "arch/arm/boot/zImage"), "rb") as f:
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
            check_extlinux(fat_read(img, boot, "extlinux/extlinux.conf").decode(), files, console, root,
                           dtbs=bool(dtbs))
        c.run("extlinux_conf_boots_this_kernel_console_and_root", extlinux_conf)

    # The boot loader's own environment: which DTB and console it expects.
    uboot = next((bl_files[f] for f in ("u-boot-dtb.imx", "u-boot.img", "u-boot-dtb.img") if f in supplied), None)

    def uboot_expectations():
        if board.qemu_uboot:
            raise Skip("U-Boot is QEMU's firmware, not on the card: the guest test checks the boot through it")
        if not uboot:
            raise Skip("no boot loader in this image")
        with open(uboot, "rb") as f:
            return check_uboot_env(uboot_env_strings(f.read()), dtbs, files, console)

    if soc != "arm":
        c.run("boot_loader_finds_its_dtb_and_console", uboot_expectations)

    if soc == "nxp":
        def imx_boot_image():
            gap = read_at(img, 0, parts[0]["start"])[IMX_IVT_OFFSET:]
            if not supplied:
                assert not gap.strip(b"\0"), "no boot loader supplied, but its area is not empty"
                raise Skip("Debian has no boot loader for this board: area before partition 1 is zero")
            entry, _, blen = imx_ivt(gap)
            first = "SPL" if "SPL" in supplied else "u-boot-dtb.imx"
            with open(supplied[first], "rb") as f:
                data = f.read()
            assert gap[:len(data)] == data, f"{first} is not at 1 KiB"
            assert IMX_IVT_OFFSET + blen <= parts[0]["start"], "the boot image runs into partition 1"
            if "u-boot-dtb.img" in supplied:
                with open(supplied["u-boot-dtb.img"], "rb") as f:
                    data = f.read()
                got = read_at(img, 69 * 1024, len(data))
                assert got == data, "u-boot-dtb.img is not at 69 KiB (mx6sabresd SPL raw sector 0x8a)"
                assert data[:4] in UBOOT_MAGICS, "u-boot-dtb.img: no image header"
            return f"IVT at 1 KiB, entry {entry:#x}, boot image {blen} bytes"
        c.run("imx6_boot_rom_finds_the_boot_image_at_1k", imx_boot_image)

    if soc == "ti":
        def omap_mlo():
            assert "mlo" in files and "u-boot.img" in files, "MLO and u-boot.img must be in the FAT"
            mlo = fat_read(img, boot, "MLO")
            with open(supplied["MLO"], "rb") as f:
                assert mlo == f.read(), "MLO differs from the boot loader package's"
            with open(supplied["u-boot.img"], "rb") as f:
                assert fat_read(img, boot, "u-boot.img") == f.read(), \
                    "u-boot.img differs from the boot loader package's"
            gp_size, load = omap_gp_header(mlo)
            return f"GP header: {gp_size} bytes at {load:#x}"
        c.run("omap_boot_rom_finds_mlo_in_the_active_fat", omap_mlo)

    c.run("rootfs_has_the_kml_policy_static_programs_and_modules_for_this_kernel",
          check_rootfs, img, parts, kernel_obj, build_dir)

    def bmap():
        path = img + ".bmap"
        assert os.path.exists(path), f"{path} missing (bmaptool installed?)"
        with open(path) as f:
            m = re.search(r"<ImageSize>\s*(\d+)\s*</ImageSize>", f.read())
        assert m and int(m.group(1)) == size, "the .bmap describes another image size"

    c.run("bmap_matches_the_image", bmap)
    print(f"\n{c.summary()}")
    return c


def check_rootfs(img, parts, kernel_obj, build_dir):
    """The root file system (partition 2, copied out and read with
    debugfs): the permission table, /trusted, the static KML programs, the
    tools, and the modules of this kernel."""
    rootp = parts[1]
    with tempfile.NamedTemporaryFile(dir=build_dir, suffix=".ext4") as t:
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

        # The permission table: every entry has its owner and mode.
        for line in table_lines(PERMISSIONS):
            name, typ, mode, uid, gid = line.split()[:5]
            want = ({"d": "directory", "f": "regular"}[typ], int(mode, 8), int(uid), int(gid))
            assert stat(name) == want, f"{name} is {stat(name)}, {PERMISSIONS} says {want}"
        # Kernel Mode Linux: /trusted is root:kml 0750 (group kml by
        # name, from the image's /etc/group) and holds no program.
        groups = {f[0]: int(f[2]) for f in (g.split(":") for g in cat("/etc/group").decode().splitlines())
                  if len(f) >= 3}
        assert "kml" in groups, "no group kml in /etc/group"
        assert stat("/trusted") == ("directory", 0o750, 0, groups["kml"]), \
            f"/trusted is {stat('/trusted')}, not root:kml ({groups['kml']}) 0750"
        listing = debugfs("ls -p /trusted")
        entries = [f for f in (e.strip().strip("/").split("/") for e in listing.splitlines()) if len(f) >= 5]
        names = []
        for _ino, mode, _uid, _gid, name, *_ in entries:
            if name in (".", ".."):
                continue
            m = int(mode, 8)
            assert m & 0o170000 == 0o100000 and not m & 0o111 and cat(f"/trusted/{name}")[:4] != b"\x7fELF", \
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
                elf = cat(path)
                assert elf[:4] == b"\x7fELF", f"{path} is not an ELF file"
                assert not has_interp(elf), f"{path} has an interpreter (not static)"
            assert cat(copies[0]) == cat(copies[1]), f"{copies[0]} and {copies[1]} differ"
        for path in ("/usr/bin/rtlat", "/usr/bin/cyclictest", "/etc/init.d/rcS"):
            stat(path)
        with open(os.path.join(kernel_obj, "include/config/kernel.release")) as f:
            rel = f.read().strip()
        stat(f"/usr/lib/modules/{rel}/modules.dep")
        # Our Rust test module, for every kernel with Rust (the kasan
        # variant has none: KASAN and Rust exclude each other on ARM).
        with open(os.path.join(kernel_obj, ".config")) as f:
            has_rust = "CONFIG_RUST=y" in f.read().splitlines()
        if has_rust:
            stat(f"/usr/lib/modules/{rel}/extra/rtflex_selftest.ko")
        return f"modules for {rel}" + ("" if has_rust else " (no Rust in this kernel: no rtflex_selftest)")
