"""Tests of rtflex.boards_doc: the board tables of docs/boards.md, written
from board.mk and checked by `python3 -m rtflex.generate check`.

    PYTHONPATH=tools python3 -m unittest discover -s tools/rtflex/tests
"""

import os
import tempfile
import types
import unittest

from rtflex import boards_doc as doc
from rtflex import generate as gen
from rtflex.board import BoardError, board_from_values

# An i.MX6-like layout: two boot loader images outside the partition table.
LAYOUT = """\
image boot.vfat {
\tvfat {
\t\tfiles = { "zImage", %DTB_FILES% }
\t\tfile extlinux/extlinux.conf { image = "extlinux.conf" }
\t}
}
image sdcard.img {
\thdimage {
\t\tdisk-signature = %DISK_SIGNATURE%
\t}
\tpartition spl {
\t\tin-partition-table = false
\t\timage = "SPL"
\t\toffset = 1K
\t\tsize = 68K
\t}
\tpartition u-boot {
\t\tin-partition-table = false
\t\timage = "u-boot-dtb.img"
\t\toffset = 69K
\t}
\tpartition boot {
\t\tpartition-type = 0xC
\t\timage = "boot.vfat"
\t\toffset = 4M
\t}
}
"""
# The same card for a board whose boot loader sits in the FAT partition.
FAT_LAYOUT = """\
image boot.vfat {
\tvfat {
\t\tfiles = { "MLO", "u-boot.img", "zImage", %DTB_FILES% }
\t}
}
image sdcard.img {
\thdimage {
\t\tdisk-signature = %DISK_SIGNATURE%
\t}
\tpartition boot {
\t\timage = "boot.vfat"
\t\toffset = 1M
\t}
}
"""

# A QEMU board's card: no boot loader, no disk signature.
QEMU_LAYOUT = FAT_LAYOUT.replace('"MLO", "u-boot.img", ', "").replace("\t\tdisk-signature = %DISK_SIGNATURE%\n", "")

USER_UBOOT = {
    "BOARD_DESCRIPTION": "a board Debian has no U-Boot for",
    "BOARD_DTBS": "nxp/imx/x.dtb",
    "BOARD_DTB": "nxp/imx/x.dtb",
    "BOARD_CONSOLE": "ttymxc0",
    "BOARD_ROOT_DEVICE": "PARTUUID=1234abcd-02",
    "BOARD_UBOOT_USER_FILES": "SPL u-boot-dtb.img",
}
DEBIAN_UBOOT = {
    "BOARD_DESCRIPTION": "an AM57xx-like board",
    "BOARD_DTBS": "ti/omap/a.dtb ti/omap/b.dtb",
    "BOARD_DTB": "ti/omap/a.dtb",
    "BOARD_CONSOLE": "ttyS2",
    "BOARD_ROOT_DEVICE": "PARTUUID=1234abcd-02",
    "BOARD_UBOOT_PACKAGE": "u-boot-omap",
    "BOARD_UBOOT_FILES": "usr/lib/u-boot/am57xx_evm/MLO usr/lib/u-boot/am57xx_evm/u-boot.img",
}
QEMU_ONLY = {
    "BOARD_DESCRIPTION": "a QEMU machine",
    "BOARD_DTBS": "arm/v.dtb",
    "BOARD_DTB": "arm/v.dtb",
    "BOARD_CONSOLE": "ttyAMA0",
    "BOARD_ROOT_DEVICE": "/dev/mmcblk0p2",
    "BOARD_RESULTS_TTY": "ttyAMA1",
    "BOARD_QEMU_MACHINE": "vexpress-a9",
    "BOARD_QEMU_ARGS": "-smp 1",
}
BOARDS = {"a1": (DEBIAN_UBOOT, FAT_LAYOUT), "q1": (QEMU_ONLY, QEMU_LAYOUT), "u1": (USER_UBOOT, LAYOUT)}

GUIDE = """\
# Guide

Hand-written text.

<!-- generated: boards -->
<!-- end generated: boards -->

## a1

About a1.

<!-- generated: board a1 -->
<!-- end generated: board a1 -->

<!-- recorded console: a1 -->
```
append: console=ttyS2,115200 root=PARTUUID=1234abcd-02 rootwait rw
[    0.000000] Kernel command line: console=ttyS2,115200 root=PARTUUID=1234abcd-02 rootwait rw
```
<!-- end recorded console: a1 -->

## q1

<!-- generated: board q1 -->
<!-- end generated: board q1 -->

## u1

<!-- generated: board u1 -->
<!-- end generated: board u1 -->

The end.
"""


class Tree:
    """A repository with the three boards of BOARDS and the guide GUIDE."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.top = self.tmp.name
        for name, (values, layout) in BOARDS.items():
            self.write(f"board/{name}/board.mk", "".join(f"{k} := {v}\n" for k, v in values.items()))
            self.write(f"board/{name}/genimage.cfg.in", layout)
        self.write(doc.DOC, GUIDE)

    def path(self, rel):
        return os.path.join(self.top, rel)

    def write(self, rel, text):
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        with open(self.path(rel), "w") as f:
            f.write(text)

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()


class Facts(unittest.TestCase):
    def board(self, values, name="b1"):
        with tempfile.TemporaryDirectory() as top:
            return board_from_values(name, os.path.join(top, "board", name), values)

    def test_console_and_baud_come_from_the_kernel_command_line(self):
        self.assertEqual(doc.console_settings(self.board(USER_UBOOT)), ("ttymxc0", 115200))
        with self.assertRaisesRegex(BoardError, "no console=<tty>,<baud>"):
            doc.console_settings(types.SimpleNamespace(name="x", kernel_cmdline=["root=/dev/sda"]))

    def test_raw_writes_are_the_images_outside_the_partition_table(self):
        self.assertEqual(doc.raw_writes(LAYOUT), [("SPL", 1), ("u-boot-dtb.img", 69)])
        self.assertEqual(doc.raw_writes(FAT_LAYOUT), [])
        with self.assertRaisesRegex(doc.DocError, "not a whole number of KiB"):
            doc.raw_writes(LAYOUT.replace("offset = 69K", "offset = 1536"))
        with self.assertRaisesRegex(doc.DocError, "partition u-boot outside the partition table needs"):
            doc.raw_writes(LAYOUT.replace("\t\toffset = 69K\n", ""))

    def test_the_boot_partition_offset(self):
        self.assertEqual(doc.boot_partition_offset(LAYOUT), 4096)
        self.assertEqual(doc.boot_partition_offset(FAT_LAYOUT), 1024)
        self.assertIsNone(doc.boot_partition_offset(LAYOUT.replace('"boot.vfat"', '"other.vfat"')))
        with self.assertRaisesRegex(doc.DocError, "the boot partition boot has no offset"):
            doc.boot_partition_offset(LAYOUT.replace("\t\toffset = 4M\n", ""))


class Blocks(unittest.TestCase):
    def setUp(self):
        self.tree = Tree()
        self.addCleanup(self.tree.tmp.cleanup)
        self.blocks = doc.blocks(self.tree.top)

    def test_every_board_and_the_overview(self):
        self.assertEqual(sorted(self.blocks), ["board a1", "board q1", "board u1", "boards"])
        overview = self.blocks["boards"].splitlines()
        self.assertEqual(overview[2], "| [`a1`](#a1) | an AM57xx-like board | Debian `u-boot-omap` | "
                                      "`ttyS2` 115200 8N1 | no model |")
        self.assertEqual(overview[3], "| [`q1`](#q1) | a QEMU machine | none | `ttyAMA0` 115200 8N1 | "
                                      "`-M vexpress-a9` |")
        self.assertIn("| yours (Debian has none) |", overview[4])

    def test_a_user_supplied_boot_loader_gets_dd_commands_at_its_layout_offsets(self):
        text = self.blocks["board u1"]
        self.assertIn("`SPL` raw at 1 KiB, `u-boot-dtb.img` raw at 69 KiB", text)
        self.assertIn("sudo bmaptool copy build/u1/sdcard.img /dev/sdX\n", text)
        self.assertIn("sudo dd if=build/u1/sdcard.img of=/dev/sdX bs=4M conv=fsync status=progress\n", text)
        self.assertIn("sudo dd if=SPL of=/dev/sdX bs=1k seek=1 conv=fsync\n"
                      "sudo dd if=u-boot-dtb.img of=/dev/sdX bs=1k seek=69 conv=fsync\n", text)
        self.assertIn("| serial console | `ttymxc0`, 115200 baud, 8N1, no flow control |", text)
        self.assertIn("`root=PARTUUID=1234abcd-02` (partition 2 of the disk whose MBR signature is "
                      "`0x1234abcd`", text)
        self.assertIn("| boot partition (FAT, partition 1, from 4 MiB) | `zImage`, `x.dtb`, `extlinux/extlinux.conf` |",
                      text)

    def test_a_debian_boot_loader_in_the_fat_partition(self):
        text = self.blocks["board a1"]
        self.assertIn("Debian `u-boot-omap` (U-Boot build `am57xx_evm`): `MLO` in the FAT boot partition, "
                      "`u-boot.img` in the FAT boot partition", text)
        self.assertIn("U-Boot picks one of `a.dtb`, `b.dtb` by its `$fdtfile`", text)
        self.assertIn("`console=ttyS2,115200 root=PARTUUID=1234abcd-02 rootwait rw` (`extlinux/extlinux.conf`)",
                      text)
        self.assertNotIn("seek=", text)

    def test_a_qemu_board_has_nothing_to_flash(self):
        text = self.blocks["board q1"]
        self.assertIn("none: QEMU loads the kernel and device tree itself", text)
        self.assertIn("`v.dtb` (QEMU's `-dtb`)", text)
        self.assertIn("`-M vexpress-a9`: `make BOARD=q1 qemu`", text)
        self.assertNotIn("bmaptool", text)


class Guide(unittest.TestCase):
    def setUp(self):
        self.tree = Tree()
        self.addCleanup(self.tree.tmp.cleanup)

    def test_update_fills_the_blocks_and_keeps_the_hand_written_text(self):
        self.assertEqual(doc.drift(self.tree.top)[0].split(":")[0], doc.DOC)
        self.assertTrue(doc.update(self.tree.top))
        self.assertEqual(doc.drift(self.tree.top), [])
        self.assertFalse(doc.update(self.tree.top))
        text = self.tree.read(doc.DOC)
        for kept in ("# Guide\n\nHand-written text.\n", "## a1\n\nAbout a1.\n", "The end.\n",
                     "append: console=ttyS2,115200 root=PARTUUID=1234abcd-02 rootwait rw\n"):
            self.assertIn(kept, text)
        self.assertIn("sudo dd if=SPL of=/dev/sdX bs=1k seek=1 conv=fsync\n", text)

    def test_a_changed_fact_is_drift_until_the_guide_is_updated(self):
        doc.update(self.tree.top)
        mk = self.tree.read("board/u1/board.mk").replace("ttymxc0", "ttymxc3")
        self.tree.write("board/u1/board.mk", mk)
        self.assertRegex(doc.drift(self.tree.top)[0], "board tables differ from board/\\*/board.mk: run "
                                                      "`python3 -m rtflex.generate update-docs`")
        doc.update(self.tree.top)
        self.assertIn("`ttymxc3`, 115200 baud", self.tree.read(doc.DOC))
        self.assertEqual(doc.drift(self.tree.top), [])

    def test_a_hand_edit_of_a_generated_block_is_drift(self):
        doc.update(self.tree.top)
        text = self.tree.read(doc.DOC)
        self.tree.write(doc.DOC, text.replace("`ttymxc0`, 115200 baud", "`ttymxc0`, 9600 baud"))
        self.assertEqual(len(doc.drift(self.tree.top)), 1)

    def test_a_new_board_gets_a_section(self):
        doc.update(self.tree.top)
        self.tree.write("board/z1/board.mk", "".join(f"{k} := {v}\n" for k, v in QEMU_ONLY.items()))
        self.tree.write("board/z1/genimage.cfg.in", QEMU_LAYOUT)
        self.assertEqual(doc.drift(self.tree.top), [
            f"{doc.DOC}: no section for board z1: `python3 -m rtflex.generate update-docs` adds one with its "
            "table; then write its guide"])
        doc.update(self.tree.top)
        text = self.tree.read(doc.DOC)
        self.assertIn("\n## z1\n\nNo flashing guide for this board yet.\n\n<!-- generated: board z1 (", text)
        self.assertIn("| [`z1`](#z1) |", text)
        self.assertEqual(doc.drift(self.tree.top), [])

    def test_a_block_of_a_board_that_is_gone(self):
        doc.update(self.tree.top)
        os.rename(self.tree.path("board/q1"), self.tree.path("board/q2"))
        problems = doc.drift(self.tree.top)
        self.assertEqual(len(problems), 1)
        self.assertRegex(problems[0], "generated block 'board q1' is of no board .*remove its section by hand")
        with self.assertRaisesRegex(doc.DocError, "board q1"):
            doc.update(self.tree.top)

    def test_broken_markers(self):
        for old, new, message in (
                ("<!-- end generated: board a1 -->\n", "", "inside the block 'board a1'"),
                ("<!-- end generated: board u1 -->\n", "", "block 'board u1' has no end line"),
                ("<!-- generated: board u1 -->\n", "", "end of a generated block 'board u1' that is not open"),
                ("<!-- generated: boards -->\n<!-- end generated: boards -->\n", "",
                 "no `<!-- generated: boards"),
                ("<!-- generated: board q1 -->\n<!-- end generated: board q1 -->\n",
                 "<!-- generated: board a1 -->\n<!-- end generated: board a1 -->\n", "'board a1' appears twice")):
            with self.subTest(message=message):
                self.tree.write(doc.DOC, GUIDE.replace(old, new))
                problems = doc.drift(self.tree.top)
                self.assertEqual(len(problems), 1, problems)
                self.assertIn(message, problems[0])

    def test_a_recorded_console_of_another_command_line_must_be_recorded_again(self):
        doc.update(self.tree.top)
        mk = self.tree.read("board/a1/board.mk").replace("ttyS2", "ttyS0")
        self.tree.write("board/a1/board.mk", mk)
        doc.update(self.tree.top)
        problems = doc.drift(self.tree.top)
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("the recorded console of a1 shows `append: console=ttyS2,115200 root=PARTUUID=1234abcd-02 "
                      "rootwait rw` but the board's kernel command line is now `console=ttyS0,115200 "
                      "root=PARTUUID=1234abcd-02 rootwait rw`: record it again", problems[0])
        self.assertIn("shows `Kernel command line: console=ttyS2", problems[1])
        self.tree.write(doc.DOC, self.tree.read(doc.DOC).replace("console=ttyS2,", "console=ttyS0,"))
        self.assertEqual(doc.drift(self.tree.top), [])

    def test_a_recorded_console_of_an_unknown_board(self):
        doc.update(self.tree.top)
        text = self.tree.read(doc.DOC).replace("recorded console: a1", "recorded console: x9")
        self.tree.write(doc.DOC, text)
        self.assertRegex(doc.drift(self.tree.top)[0], "recorded console of 'x9': unknown board 'x9'")

    def test_generate_check_reports_the_guide(self):
        # rtflex.generate check includes the guide (its other checks fail
        # here for want of kernel.mk and the rest; only the guide's is asked).
        problems = gen.check(self.tree.top)
        self.assertTrue(any(p.startswith(f"{doc.DOC}: its board tables differ") for p in problems), problems)
        os.remove(self.tree.path(doc.DOC))
        self.assertIn(f"{doc.DOC} missing (the flashing guide with the board tables)", gen.check(self.tree.top))


if __name__ == "__main__":
    unittest.main()
