"""Tests of rtflex.generate: extlinux.conf, genimage.cfg templates, and the
Buildroot defconfig values derived from the board and kernel facts.

    PYTHONPATH=tools python3 -m unittest discover -s tools/rtflex/tests
"""

import contextlib
import io
import os
import tempfile
import unittest

from rtflex import boards_doc
from rtflex import generate as gen
from rtflex.board import board_from_values

UBOOT_BOARD = {
    "BOARD_DESCRIPTION": "x",
    "BOARD_DTBS": "ti/omap/a.dtb ti/omap/b.dtb",
    "BOARD_DTB": "ti/omap/a.dtb",
    "BOARD_CONSOLE": "ttyS2",
    "BOARD_ROOT_DEVICE": "PARTUUID=1234abcd-02",
    "BOARD_UBOOT_PACKAGE": "u-boot-omap",
    "BOARD_UBOOT_FILES": "usr/lib/u-boot/am57xx_evm/MLO",
}
QEMU_BOARD = {
    "BOARD_DESCRIPTION": "y",
    "BOARD_DTBS": "arm/v.dtb",
    "BOARD_DTB": "arm/v.dtb",
    "BOARD_CONSOLE": "ttyAMA0",
    "BOARD_ROOT_DEVICE": "/dev/mmcblk0p2",
    "BOARD_RESULTS_TTY": "ttyAMA1",
    "BOARD_QEMU_MACHINE": "vexpress-a9",
    "BOARD_QEMU_ARGS": "-smp 1",
}

TEMPLATE = """\
image boot.vfat {
\tvfat {
\t\tfiles = { "zImage", %DTB_FILES% }
\t\t%DTB_FILES_IN_DIRS%
\t}
}
image sdcard.img {
\thdimage {
\t\tdisk-signature = %DISK_SIGNATURE%
\t}
}
"""

DEFCONFIG = """\
BR2_arm=y
BR2_TARGET_GENERIC_HOSTNAME="rtflex"
BR2_ROOTFS_DEVICE_TABLE="system/device_table.txt $(BR2_EXTERNAL_RTFLEX_PATH)/../rootfs/permissions.txt"
BR2_TARGET_GENERIC_GETTY_PORT="ttyS2"
BR2_ROOTFS_OVERLAY="$(BR2_EXTERNAL_RTFLEX_PATH)/../rootfs/overlay"
BR2_ROOTFS_POST_SCRIPT_ARGS="b1"
BR2_LINUX_KERNEL=y
BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE="7.2.13"
BR2_LINUX_KERNEL_DEFCONFIG="multi_v7"
BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES="$(BR2_EXTERNAL_RTFLEX_PATH)/../kernel/configs/a.config"
BR2_LINUX_KERNEL_INTREE_DTS_NAME="ti/omap/a ti/omap/b"
BR2_TARGET_ROOTFS_EXT2_SIZE="384M"
BR2_PACKAGE_RTFLEX_APPS=y
"""


def board(values, name="b1", board_dir="/nowhere/board/b1"):
    return board_from_values(name, board_dir, values)


class BootConfig(unittest.TestCase):
    def test_extlinux_boots_the_boards_console_and_root(self):
        text = gen.extlinux_conf(board(UBOOT_BOARD))
        self.assertIn("\tkernel /zImage\n\tfdtdir /\n", text)
        self.assertIn("\tappend console=ttyS2,115200 root=PARTUUID=1234abcd-02 rootwait rw\n", text)
        self.assertIn("board/b1/board.mk", text)

    def test_extlinux_without_dtbs_names_no_device_tree(self):
        # A board whose firmware's device tree U-Boot hands on (qemu-virt).
        values = dict(QEMU_BOARD, BOARD_DTBS="", BOARD_DTB="", BOARD_QEMU_MACHINE="virt",
                      BOARD_ROOT_DEVICE="PARTUUID=7274666c-02", BOARD_QEMU_UBOOT="/u/u-boot.bin",
                      BOARD_QEMU_UBOOT_PACKAGE="u-boot-qemu")
        text = gen.extlinux_conf(board(values))
        self.assertIn(f"label {gen.EXTLINUX_LABEL}\n\tkernel {gen.EXTLINUX_KERNEL}\n\tappend console=ttyAMA0", text)
        self.assertNotIn("fdt", text)
        # A run's own command line (the test mode's words) replaces the board's.
        self.assertTrue(gen.extlinux_conf(board(values), ["a", "b=c"]).endswith("\tappend a b=c\n"))

    def test_template_placeholders(self):
        text = gen.fill_template(TEMPLATE, board(UBOOT_BOARD), "t")
        self.assertIn('\t\tfiles = { "zImage", "a.dtb", "b.dtb" }\n', text)
        self.assertIn('\t\tfile ti/omap/a.dtb { image = "a.dtb" }\n'
                      '\t\tfile ti/omap/b.dtb { image = "b.dtb" }\n\t}\n', text)
        self.assertIn("disk-signature = 0x1234abcd\n", text)
        self.assertNotIn("%", text)

    def test_a_dtb_without_directory_gets_no_second_copy(self):
        values = dict(UBOOT_BOARD, BOARD_DTBS="a.dtb", BOARD_DTB="a.dtb")
        text = gen.fill_template("{\n\t%DTB_FILES_IN_DIRS%\n}\n", board(values), "t")
        self.assertEqual(text, "{\n}\n")

    def test_template_errors(self):
        with self.assertRaisesRegex(gen.GenerateError, r"^t:2: unknown placeholder %DTB%; known: %DTB_FILES%"):
            gen.fill_template("x\nfiles = { %DTB% }\n", board(UBOOT_BOARD), "t")
        with self.assertRaisesRegex(gen.GenerateError, "t:1: %DTB_FILES_IN_DIRS% is several lines"):
            gen.fill_template("a %DTB_FILES_IN_DIRS%\n", board(UBOOT_BOARD), "t")
        with self.assertRaisesRegex(gen.GenerateError, "must be PARTUUID=<8 hex digits>-02, not /dev/mmcblk0p2"):
            gen.fill_template("disk-signature = %DISK_SIGNATURE%\n", board(QEMU_BOARD), "t")

    def test_write_boot_config(self):
        with tempfile.TemporaryDirectory() as top:
            for name in ("b1", "q"):
                os.makedirs(os.path.join(top, "board", name))
            with open(os.path.join(top, "board", "b1", "genimage.cfg.in"), "w") as f:
                f.write(TEMPLATE)
            with open(os.path.join(top, "board", "q", "genimage.cfg.in"), "w") as f:
                f.write('files = { %DTB_FILES% }\n')
            out = os.path.join(top, "out")
            written = gen.write_boot_config(board(UBOOT_BOARD, "b1", os.path.join(top, "board", "b1")), out, top)
            self.assertEqual(written, [f"{out}/genimage.cfg", f"{out}/extlinux.conf"])
            with open(f"{out}/genimage.cfg") as f:
                text = f.read()
            self.assertTrue(text.startswith("# Generated by tools/rtflex/generate.py from board/b1/genimage.cfg.in"))
            self.assertIn("disk-signature = 0x1234abcd", text)
            # A board without U-Boot: genimage.cfg only, the old extlinux.conf is gone.
            written = gen.write_boot_config(board(QEMU_BOARD, "q", os.path.join(top, "board", "q")), out, top)
            self.assertEqual(written, [f"{out}/genimage.cfg"])
            self.assertEqual(sorted(os.listdir(out)), ["genimage.cfg"])
            with self.assertRaisesRegex(gen.GenerateError, "no SD card layout template"):
                gen.write_boot_config(board(QEMU_BOARD, "z", os.path.join(top, "board", "z")), out, top)


# The license statements of a repository that agrees with itself.
LICENSED = {
    "Cargo.toml": '[workspace.package]\nlicense = "GPL-2.0-only OR MIT"\n',
    "LICENSE": "SPDX-License-Identifier: GPL-2.0-only OR MIT\n\ntext\n",
    "LICENSES/GPL-2.0-only.txt": "GPL\n",
    "LICENSES/MIT.txt": "MIT\n",
    "buildroot-external/package/rtflex-apps/rtflex-apps.mk": "RTFLEX_APPS_LICENSE = GPL-2.0-only or MIT\n",
    "buildroot-external/package/rtflex-selftest/rtflex-selftest.mk":
        "RTFLEX_SELFTEST_LICENSE = GPL-2.0-only or MIT\n",
    "kernel/modules/rtflex_selftest/rtflex_selftest.rs": "// SPDX-License-Identifier: GPL-2.0-only OR MIT\n",
    "kernel/modules/rtflex_selftest/Kbuild": "# SPDX-License-Identifier: GPL-2.0-only OR MIT\nobj-m := x.o\n",
}


class Tree:
    """A minimal repository: one board b1, kernel.mk, rootfs.mk, a defconfig."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.top = self.tmp.name
        mk = "".join(f"{k} := {v}\n" for k, v in UBOOT_BOARD.items())
        self.write("board/b1/board.mk", mk)
        self.write("board/b1/genimage.cfg.in", TEMPLATE)
        self.write("kernel/kernel.mk", "LINUX_VERSION := 7.2.13\nLINUX_DEFCONFIG := multi_v7_defconfig\n"
                   "LINUX_FRAGMENTS := $(TOP)/kernel/configs/a.config\nLINUX_LLVM_SUFFIX := -19\n")
        self.write("rootfs/rootfs.mk", "ROOTFS_OVERLAY := $(TOP)/rootfs/overlay\n"
                   "ROOTFS_PERMISSIONS := $(TOP)/rootfs/permissions.txt\nROOTFS_SIZE := 384M\n")
        self.write("rootfs/overlay/etc/hostname", "rtflex\n")
        self.write("buildroot-external/configs/rtflex_b1_defconfig", DEFCONFIG)
        for rel, text in LICENSED.items():
            self.write(rel, text)
        # the flashing guide, its board tables filled in (tests/test_boards_doc.py)
        self.write(boards_doc.DOC, "<!-- generated: boards -->\n<!-- end generated: boards -->\n")
        boards_doc.update(self.top)

    def path(self, rel):
        return os.path.join(self.top, rel)

    def write(self, rel, text):
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        with open(self.path(rel), "w") as f:
            f.write(text)

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()


class Defconfigs(unittest.TestCase):
    def setUp(self):
        self.tree = Tree()
        self.addCleanup(self.tree.tmp.cleanup)

    def test_a_defconfig_that_agrees_passes(self):
        self.assertEqual(gen.check(self.tree.top), [])

    def test_every_derived_value_follows_its_fact(self):
        t = self.tree
        t.write("board/b1/board.mk", t.read("board/b1/board.mk")
                .replace("ttyS2", "ttyS0").replace("ti/omap/a.dtb ti/omap/b.dtb", "ti/omap/a.dtb"))
        t.write("kernel/kernel.mk", t.read("kernel/kernel.mk").replace("7.2.13", "7.3.1")
                .replace("multi_v7_defconfig", "imx_v6_v7_defconfig")
                .replace("a.config", "a.config $(TOP)/kernel/configs/b.config"))
        t.write("rootfs/rootfs.mk", t.read("rootfs/rootfs.mk").replace("384M", "512M")
                .replace("rootfs/permissions.txt", "rootfs/perm.txt").replace("rootfs/overlay", "overlay2"))
        t.write("overlay2/etc/hostname", "other\n")
        problems = gen.check(t.top)
        # the defconfig's values, and the console in the flashing guide's tables
        self.assertEqual(len(problems), 2, problems)
        self.assertRegex(problems[1], r"^docs/boards.md: its board tables differ")
        diff = problems[0]
        for line in ('+BR2_TARGET_GENERIC_GETTY_PORT="ttyS0"',
                     '+BR2_LINUX_KERNEL_INTREE_DTS_NAME="ti/omap/a"',
                     '+BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE="7.3.1"',
                     '+BR2_LINUX_KERNEL_DEFCONFIG="imx_v6_v7"',
                     '+BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES="$(BR2_EXTERNAL_RTFLEX_PATH)/../kernel/configs/a.config '
                     '$(BR2_EXTERNAL_RTFLEX_PATH)/../kernel/configs/b.config"',
                     '+BR2_TARGET_ROOTFS_EXT2_SIZE="512M"',
                     '+BR2_TARGET_GENERIC_HOSTNAME="other"',
                     '+BR2_ROOTFS_OVERLAY="$(BR2_EXTERNAL_RTFLEX_PATH)/../overlay2"',
                     '+BR2_ROOTFS_DEVICE_TABLE="system/device_table.txt '
                     '$(BR2_EXTERNAL_RTFLEX_PATH)/../rootfs/perm.txt"'):
            self.assertIn(line + "\n", diff)
        self.assertEqual(len([x for x in diff.splitlines() if x.startswith("+BR2")]), 9, diff)
        # update-defconfigs writes exactly that; then everything agrees again
        with contextlib.redirect_stdout(io.StringIO()) as out:
            self.assertEqual(gen.defconfig_drift(t.top, write=True), [])
        self.assertEqual(out.getvalue(), "updated buildroot-external/configs/rtflex_b1_defconfig\n")
        text = t.read("buildroot-external/configs/rtflex_b1_defconfig")
        self.assertIn('BR2_TARGET_GENERIC_GETTY_PORT="ttyS0"\n', text)
        self.assertTrue(text.startswith("BR2_arm=y\n") and text.endswith("BR2_PACKAGE_RTFLEX_APPS=y\n"))
        self.assertEqual([p[:40] for p in gen.check(t.top)], ["docs/boards.md: its board tables differ "])
        boards_doc.update(t.top)
        self.assertEqual(gen.check(t.top), [])

    def test_the_board_name_is_the_post_script_argument(self):
        t = self.tree
        rel = "buildroot-external/configs/rtflex_b1_defconfig"
        t.write(rel, t.read(rel).replace('ARGS="b1"', 'ARGS="b2"'))
        self.assertIn('+BR2_ROOTFS_POST_SCRIPT_ARGS="b1"', gen.check(t.top)[0])

    def test_missing_and_repeated_lines(self):
        t = self.tree
        rel = "buildroot-external/configs/rtflex_b1_defconfig"
        t.write(rel, DEFCONFIG.replace('BR2_TARGET_GENERIC_GETTY_PORT="ttyS2"\n', ""))
        self.assertRegex(gen.check(t.top)[0], r"rtflex_b1_defconfig: no line for BR2_TARGET_GENERIC_GETTY_PORT "
                         r"\(from board.mk BOARD_CONSOLE\)")
        t.write(rel, DEFCONFIG + 'BR2_TARGET_ROOTFS_EXT2_SIZE="1G"\n')
        self.assertRegex(gen.check(t.top)[0], "BR2_TARGET_ROOTFS_EXT2_SIZE is set twice")

    def test_a_board_without_dtbs_has_no_dts_line(self):
        # qemu-virt: no DTB, so no BR2_LINUX_KERNEL_INTREE_DTS_NAME line.
        t = self.tree
        values = dict(UBOOT_BOARD, BOARD_DTBS="", BOARD_DTB="", BOARD_UBOOT_PACKAGE="", BOARD_UBOOT_FILES="",
                      BOARD_QEMU_MACHINE="virt", BOARD_QEMU_ARGS="-smp 1", BOARD_RESULTS_TTY="hvc0",
                      BOARD_QEMU_UBOOT="/u/u-boot.bin", BOARD_QEMU_UBOOT_PACKAGE="u-boot-qemu")
        t.write("board/b1/board.mk", "".join(f"{k} := {v}\n" for k, v in values.items()))
        rel = "buildroot-external/configs/rtflex_b1_defconfig"
        with self.assertRaisesRegex(gen.GenerateError, "BR2_LINUX_KERNEL_INTREE_DTS_NAME has no value for board "
                                    r"b1 \(from board.mk BOARD_DTBS\): remove its line"):
            gen.defconfig_drift(t.top)
        t.write(rel, "".join(line for line in DEFCONFIG.splitlines(keepends=True)
                             if not line.startswith("BR2_LINUX_KERNEL_INTREE_DTS_NAME=")))
        self.assertEqual(gen.defconfig_drift(t.top), [])

    def test_a_board_without_defconfig_and_a_defconfig_without_board(self):
        t = self.tree
        os.rename(t.path("buildroot-external/configs/rtflex_b1_defconfig"),
                  t.path("buildroot-external/configs/rtflex_b2_defconfig"))
        problems = gen.check(t.top)
        self.assertEqual(len(problems), 2, problems)
        self.assertRegex(problems[0], "rtflex_b2_defconfig: no board for it")
        self.assertRegex(problems[1], "rtflex_b1_defconfig: missing")

    def test_hand_written_boot_files_in_a_board_directory_are_reported(self):
        t = self.tree
        t.write("board/b1/extlinux.conf", "label x\n")
        self.assertEqual(gen.check(t.top), [
            "board/b1/extlinux.conf: generated now (tools/rtflex/generate.py); "
            "remove it (edit board.mk or genimage.cfg.in instead)"])

    def test_a_template_that_does_not_fill_is_reported(self):
        t = self.tree
        t.write("board/b1/genimage.cfg.in", "files = { %KERNEL% }\n")
        self.assertRegex(gen.check(t.top)[0], "genimage.cfg.in:1: unknown placeholder %KERNEL%")


class Licenses(unittest.TestCase):
    def setUp(self):
        self.tree = Tree()
        self.addCleanup(self.tree.tmp.cleanup)

    def test_one_license_everywhere(self):
        self.assertEqual(gen.license_drift(self.tree.top), [])

    def test_a_different_statement_is_named(self):
        t = self.tree
        rel = "kernel/modules/rtflex_selftest/rtflex_selftest.rs"
        t.write(rel, "// SPDX-License-Identifier: GPL-2.0\n")
        t.write("buildroot-external/package/rtflex-apps/rtflex-apps.mk", "RTFLEX_APPS_VERSION = 1\n")
        self.assertEqual(gen.check(t.top), [
            "buildroot-external/package/rtflex-apps/rtflex-apps.mk: license (none) but Cargo.toml says "
            "GPL-2.0-only OR MIT",
            f"{rel}: license GPL-2.0 but Cargo.toml says GPL-2.0-only OR MIT"])

    def test_the_workspace_license_is_the_reference(self):
        t = self.tree
        t.write("Cargo.toml", '[workspace.package]\nversion = "1"\n\n[package]\nlicense = "MIT"\n')
        self.assertEqual(gen.license_drift(t.top), ['Cargo.toml: no license = "..." in [workspace.package]'])
        t.write("Cargo.toml", '[workspace]\n\n[workspace.package]\nversion = "1"\nlicense = "MIT"\n')
        self.assertEqual(len(gen.license_drift(t.top)), 5)

    def test_the_license_texts_must_be_there(self):
        os.remove(self.tree.path("LICENSES/MIT.txt"))
        self.assertEqual(gen.license_drift(self.tree.top), ["LICENSES/MIT.txt missing (the text of MIT)"])


if __name__ == "__main__":
    unittest.main()
