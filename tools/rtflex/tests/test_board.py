"""Tests of rtflex.board: board.mk and kernel.mk read by make, checked.

    PYTHONPATH=tools python3 -m unittest discover -s tools/rtflex/tests -t tools
"""

import os
import tempfile
import unittest
from unittest import mock

from rtflex import board as rb

A9 = """\
# a comment
BOARD_DESCRIPTION := Test board \\
\twith a continued description
BOARD_DTBS := arm/one.dtb \\
\tarm/two.dtb
BOARD_DTB := arm/two.dtb
BOARD_CONSOLE := ttyAMA0
BOARD_ROOT_DEVICE := /dev/mmcblk0p2
BOARD_RESULTS_TTY := ttyAMA1
BOARD_QEMU_MACHINE := vexpress-a9
BOARD_QEMU_ARGS := -smp 1 -m 512M
BOARD_BENCH_SMP := 1 2
"""

KERNEL = """\
LINUX_VERSION := 7.2.13
DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
LINUX_DEFCONFIG := multi_v7_defconfig
LINUX_FRAGMENTS := $(DIR)/configs/a.config \\
\t$(DIR)/configs/b.config
LINUX_LLVM_SUFFIX := -19
"""


class Tree:
    """A repository top in a temporary directory with the given files."""

    def __init__(self, files):
        self.tmp = tempfile.TemporaryDirectory()
        self.top = self.tmp.name
        for path, text in files.items():
            full = os.path.join(self.top, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)

    def close(self):
        self.tmp.cleanup()


class BoardLoading(unittest.TestCase):
    def tree(self, files):
        t = Tree(files)
        self.addCleanup(t.close)
        return t.top

    def test_values_are_what_make_makes_of_them(self):
        top = self.tree({"board/a9/board.mk": A9})
        b = rb.load_board("a9", top)
        self.assertEqual(b.name, "a9")
        self.assertEqual(b.dir, os.path.join(top, "board", "a9"))
        self.assertEqual(b.description, "Test board with a continued description")
        self.assertEqual(b.dtbs, ["arm/one.dtb", "arm/two.dtb"])
        self.assertEqual(b.dtb_names, ["one.dtb", "two.dtb"])
        self.assertEqual(b.dtb, "arm/two.dtb")
        self.assertEqual(b.console, "ttyAMA0")
        self.assertEqual(b.bench_smp, [1, 2])
        self.assertTrue(b.has_qemu)
        self.assertFalse(b.has_uboot)
        self.assertEqual(b.qemu_args, ["-M", "vexpress-a9", "-smp", "1", "-m", "512M"])
        self.assertEqual(b.qemu_console_serial, 1)
        self.assertEqual(b.genimage_template, os.path.join(top, "board", "a9", "genimage.cfg.in"))

    def test_top_is_expanded_and_make_functions_work(self):
        mk = A9 + "BOARD_GENIMAGE := $(TOP)/board/$(subst x,a,x9)/genimage.cfg.in\n"
        top = self.tree({"board/a9/board.mk": mk, "board/a9/genimage.cfg.in": ""})
        self.assertEqual(rb.load_board("a9", top).genimage, f"{top}/board/a9/genimage.cfg.in")

    def test_the_machine_is_given_once(self):
        for args in ("-M vexpress-a9 -smp 1", "-smp 1 -machine virt", "-M=virt"):
            with self.subTest(args=args):
                top = self.tree({"board/x/board.mk": A9.replace("-smp 1 -m 512M", args)})
                with self.assertRaisesRegex(rb.BoardError, "BOARD_QEMU_ARGS has -M.*: the machine is "
                                                           "BOARD_QEMU_MACHINE|BOARD_QEMU_ARGS has -machine"):
                    rb.load_board("x", top)

    def test_unknown_board_names_the_known_ones(self):
        top = self.tree({"board/a9/board.mk": A9, "board/b/board.mk": A9, "board/notaboard/x": ""})
        with self.assertRaisesRegex(rb.BoardError, r"unknown board 'c' .*boards: a9, b$"):
            rb.load_board("c", top)
        with self.assertRaisesRegex(rb.BoardError, "bad board name"):
            rb.load_board("../board/a9", top)
        self.assertEqual(rb.board_names(top), ["a9", "b"])

    def test_missing_facts_are_named(self):
        top = self.tree({"board/x/board.mk": A9.replace("BOARD_CONSOLE := ttyAMA0\n", "")
                         .replace("BOARD_RESULTS_TTY := ttyAMA1\n", "")})
        with self.assertRaisesRegex(rb.BoardError, r"board/x/board.mk: missing BOARD_CONSOLE, BOARD_RESULTS_TTY$"):
            rb.load_board("x", top)

    def test_results_tty_is_needed_only_with_qemu(self):
        mk = "".join(line + "\n" for line in A9.splitlines()
                     if not line.startswith(("BOARD_RESULTS_TTY", "BOARD_QEMU")))
        top = self.tree({"board/x/board.mk": mk})
        self.assertFalse(rb.load_board("x", top).has_qemu)

    def test_a_misspelt_variable_is_refused(self):
        top = self.tree({"board/x/board.mk": A9 + "BOARD_CONSOL := ttyS0\n"})
        with self.assertRaisesRegex(rb.BoardError, "unknown variable.*BOARD_CONSOL;"):
            rb.load_board("x", top)

    def test_inconsistent_values_are_refused(self):
        cases = {
            "BOARD_DTB := arm/three.dtb\n": "BOARD_DTB arm/three.dtb is not one of BOARD_DTBS",
            "BOARD_DTBS := arm/two.dtb other/two.dtb\n": "same file name",
            "BOARD_BENCH_SMP := one\n": "BOARD_BENCH_SMP must be numbers",
            "BOARD_QEMU_CONSOLE_SERIAL := 3\n": "must be 1 or 2",
            "BOARD_QEMU_CONSOLE_SERIAL := 1 2\n": "must be one number",
            "BOARD_UBOOT_FILES := u-boot.img\n": "without BOARD_UBOOT_PACKAGE",
            "BOARD_GENIMAGE := $(TOP)/nowhere.cfg\n": "nowhere.cfg does not exist",
        }
        for line, message in cases.items():
            with self.subTest(line=line):
                top = self.tree({"board/x/board.mk": A9 + line})
                with self.assertRaisesRegex(rb.BoardError, message):
                    rb.load_board("x", top)

    def test_a_board_qemu_boots_through_u_boot(self):
        # U-Boot as QEMU's firmware: no DTB needed (QEMU's own is handed
        # on), extlinux.conf on the card, results over a virtio console.
        mk = (A9.replace("BOARD_DTBS := arm/one.dtb \\\n\tarm/two.dtb\n", "BOARD_DTBS :=\n")
              .replace("BOARD_DTB := arm/two.dtb\n", "")
              .replace("vexpress-a9", "virt")
              + "BOARD_QEMU_UBOOT := /usr/lib/u-boot/qemu_arm/u-boot.bin\n"
              + "BOARD_QEMU_UBOOT_PACKAGE := u-boot-qemu\nBOARD_QEMU_RESULTS_PORT := virtio-console\n")
        top = self.tree({"board/v/board.mk": mk})
        b = rb.load_board("v", top)
        self.assertEqual((b.dtbs, b.dtb), ([], ""))
        self.assertTrue(b.has_uboot and b.has_qemu)
        self.assertEqual(b.qemu_results_port, "virtio-console")
        with mock.patch("sys.stdout") as out:
            self.assertEqual(rb.main(["--top", top, "host-packages"]), 0)
        self.assertEqual("".join(c.args[0] for c in out.write.call_args_list), "u-boot-qemu v\n")
        cases = {
            "BOARD_DTB := arm/one.dtb\n": "BOARD_DTB with BOARD_QEMU_UBOOT",
            "BOARD_QEMU_UBOOT_PACKAGE :=\n": "BOARD_QEMU_UBOOT without BOARD_QEMU_UBOOT_PACKAGE",
            "BOARD_QEMU_UBOOT := u-boot.bin\n": "must be an absolute path",
            "BOARD_QEMU_MACHINE :=\nBOARD_RESULTS_TTY :=\n": "BOARD_QEMU_UBOOT without BOARD_QEMU_MACHINE",
            "BOARD_QEMU_RESULTS_PORT := usb\n": "BOARD_QEMU_RESULTS_PORT must be one of serial, virtio-console",
            "BOARD_QEMU_UBOOT :=\n": "missing BOARD_DTBS, BOARD_DTB",
        }
        for line, message in cases.items():
            with self.subTest(line=line):
                top = self.tree({"board/x/board.mk": mk + line})
                with self.assertRaisesRegex(rb.BoardError, message):
                    rb.load_board("x", top)
        top = self.tree({"board/x/board.mk": A9 + "BOARD_QEMU_UBOOT_PACKAGE := u-boot-qemu\n"})
        with self.assertRaisesRegex(rb.BoardError, "BOARD_QEMU_UBOOT_PACKAGE without BOARD_QEMU_UBOOT"):
            rb.load_board("x", top)

    def test_make_errors_are_reported_with_makes_message(self):
        top = self.tree({"board/x/board.mk": A9 + "ifeq (a,b)\n"})
        with self.assertRaisesRegex(rb.BoardError, "make cannot read .*board.mk:\n.*missing 'endif'"):
            rb.load_board("x", top)

    def test_the_environment_and_a_calling_make_do_not_leak_in(self):
        top = self.tree({"board/x/board.mk": A9})
        env = {"BOARD_UBOOT_PACKAGE": "from-env", "MAKEFLAGS": "BOARD_CONSOLE=from-makeflags"}
        with mock.patch.dict(os.environ, env):
            b = rb.load_board("x", top)
        self.assertEqual(b.console, "ttyAMA0")
        self.assertEqual(b.uboot_package, "")

    def test_kernel_facts(self):
        top = self.tree({"kernel/kernel.mk": KERNEL})
        k = rb.load_kernel(top)
        self.assertEqual(k.version, "7.2.13")
        self.assertEqual(k.defconfig, "multi_v7_defconfig")
        self.assertEqual(k.fragments, [f"{top}/kernel/configs/a.config", f"{top}/kernel/configs/b.config"])
        self.assertEqual(k.llvm_suffix, "-19")
        top = self.tree({"kernel/kernel.mk": KERNEL.replace("LINUX_DEFCONFIG := multi_v7_defconfig\n", "")})
        with self.assertRaisesRegex(rb.BoardError, "missing LINUX_DEFCONFIG"):
            rb.load_kernel(top)

    def test_command_line(self):
        top = self.tree({"board/a9/board.mk": A9, "kernel/kernel.mk": KERNEL})
        with mock.patch("sys.stdout") as out:
            self.assertEqual(rb.main(["--top", top, "get", "a9", "console", "BOARD_DTBS", "BOARD_QEMU_ARGS"]), 0)
        printed = "".join(c.args[0] for c in out.write.call_args_list)
        self.assertEqual(printed, "ttyAMA0\narm/one.dtb arm/two.dtb\n-M vexpress-a9 -smp 1 -m 512M\n")
        with mock.patch("sys.stderr") as err:
            self.assertEqual(rb.main(["--top", top, "get", "a9", "nonsense"]), 1)
        self.assertIn("no fact 'nonsense'", "".join(c.args[0] for c in err.write.call_args_list))


class RepositoryBoards(unittest.TestCase):
    """The repository's own boards and kernel pin load without error."""

    def test_every_board_loads(self):
        names = rb.board_names()
        self.assertIn("qemu-vexpress-a9", names)
        for name in names:
            with self.subTest(board=name):
                b = rb.load_board(name)
                self.assertTrue(all(d.endswith(".dtb") for d in b.dtbs), b.dtbs)

    def test_kernel_fragments_exist(self):
        for f in rb.load_kernel().fragments:
            self.assertTrue(os.path.isfile(f), f)


if __name__ == "__main__":
    unittest.main()
