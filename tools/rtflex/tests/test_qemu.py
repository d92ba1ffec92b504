"""The QEMU command line of each board QEMU boots, in every mode, and the
printed form Buildroot's start-qemu.sh uses."""

import os
import shlex
import shutil
import subprocess

import pytest

from rtflex import __main__ as cli
from rtflex import qemu
from rtflex.board import board_names, load_board

QEMU_BOARDS = [b for b in board_names() if load_board(b).has_qemu]


def option(cmd, name):
    """The values of every occurrence of option NAME in CMD."""
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == name]


def boot(board, mode="test", **kw):
    kw.setdefault("results", "out/results.log")
    return qemu.qemu_command(load_board(board), "zImage", "board.dtb", "sd.img", mode=mode, **kw)


def test_every_qemu_board_is_covered():
    assert {"qemu-vexpress-a9", "qemu-vexpress-a15", "imx6q-sabrelite", "qemu-virt"} <= set(QEMU_BOARDS)


@pytest.mark.parametrize("board,machine,memory,console,results,root", [
    ("qemu-vexpress-a9", "vexpress-a9", "512M", "ttyAMA0", "ttyAMA1", "/dev/mmcblk0p2"),
    ("qemu-vexpress-a15", "vexpress-a15", "512M", "ttyAMA0", "ttyAMA1", "/dev/mmcblk0p2"),
    ("imx6q-sabrelite", "sabrelite", "1G", "ttymxc1", "ttymxc0", "PARTUUID=7274666c-02"),
])
def test_test_mode_command_line(board, machine, memory, console, results, root):
    cmd = boot(board)
    assert cmd[0] == "qemu-system-arm"
    assert option(cmd, "-M") == [machine] and option(cmd, "-m") == [memory]
    assert option(cmd, "-smp") == ["1"]
    assert option(cmd, "-kernel") == ["zImage"] and option(cmd, "-dtb") == ["board.dtb"]
    (append,) = option(cmd, "-append")
    words = append.split()
    assert words[:4] == [f"console={console},115200", f"root={root}", "rootwait", "rw"]
    assert "rtflex.mode=test" in words and f"rtflex.results={results}" in words
    assert "-snapshot" in cmd and "-no-reboot" in cmd
    assert option(cmd, "-icount") == [qemu.ICOUNT] and option(cmd, "-monitor") == ["none"]


def test_serial_ports_the_console_and_the_results_file():
    # vexpress: UART0 (QEMU's first serial port) is the console.
    assert option(boot("qemu-vexpress-a9"), "-serial") == ["stdio", "file:out/results.log"]
    # i.MX6: the console is UART2, QEMU's second port; UART1 carries results.
    assert option(boot("imx6q-sabrelite"), "-serial") == ["file:out/results.log", "stdio"]
    assert option(boot("imx6q-sabrelite", "shell"), "-serial") == ["null", "mon:stdio"]


def test_sd_card_slots():
    assert option(boot("qemu-vexpress-a9"), "-drive") == ["if=sd,format=raw,file=sd.img"]
    cmd = boot("imx6q-sabrelite")
    assert option(cmd, "-drive") == ["if=none,id=sdcard,format=raw,file=sd.img"]
    assert option(cmd, "-device") == ["sd-card,bus=sd-bus,drive=sdcard"]


def test_skips_of_the_board_and_the_caller_reach_the_kernel_command_line():
    words = option(boot("imx6q-sabrelite", skip=["flexsc"], append=["kasan_multi_shot"]), "-append")[0].split()
    board_skips = load_board("imx6q-sabrelite").guest_test_skip
    assert board_skips, "sabrelite skips tests (board.mk BOARD_GUEST_TEST_SKIP)"
    assert "rtflex.skip=" + ",".join(board_skips + ["flexsc"]) in words
    assert words[-1] == "kasan_multi_shot"
    words = option(boot("qemu-vexpress-a9"), "-append")[0].split()
    assert not [w for w in words if w.startswith("rtflex.skip=")]
    # Only test mode skips.
    words = option(boot("imx6q-sabrelite", "compare", skip=["x"]), "-append")[0].split()
    assert not [w for w in words if w.startswith("rtflex.skip=")]


def test_fuzz_mode_passes_time_and_seed_and_opens_a_monitor():
    cmd = boot("qemu-vexpress-a9", "fuzz", fuzz_seconds=120, fuzz_seed=7, monitor="b/fuzz.sock")
    words = option(cmd, "-append")[0].split()
    assert {"rtflex.mode=fuzz", "rtflex.fuzz_seconds=120", "rtflex.fuzz_seed=7"} <= set(words)
    assert option(cmd, "-monitor") == ["unix:b/fuzz.sock,server,nowait"]
    words = option(boot("qemu-vexpress-a9", "fuzz", fuzz_seconds=5), "-append")[0].split()
    assert not [w for w in words if w.startswith("rtflex.fuzz_seed")]
    with pytest.raises(ValueError, match="fuzz_seconds"):
        boot("qemu-vexpress-a9", "fuzz")


def test_smp_replaces_the_boards_cpu_count():
    assert option(boot("qemu-vexpress-a9", smp=2), "-smp") == ["2"]
    assert qemu.with_smp(["-M", "x", "-smp=4", "-m", "1G"], 2) == ["-M", "x", "-m", "1G", "-smp", "2"]
    assert qemu.with_smp(["-smp", "4", "-m", "1G"], None) == ["-smp", "4", "-m", "1G"]


def test_shell_mode_is_interactive_and_writable():
    cmd = boot("qemu-vexpress-a9", "shell", results=None)
    assert "-snapshot" not in cmd and option(cmd, "-monitor") == []
    assert option(cmd, "-append")[0] == "console=ttyAMA0,115200 root=/dev/mmcblk0p2 rootwait rw"
    assert option(cmd, "-icount") == [qemu.ICOUNT]
    assert option(boot("qemu-vexpress-a9", "shell", icount=False), "-icount") == []


def test_a_lab_on_several_vcpus_runs_without_icount_unless_asked():
    # auto: -icount with one vCPU only (stop_machine() stalls SMP guests
    # under -icount); on and off are what they say.
    assert [qemu.use_icount("auto", n) for n in (1, 2, 4)] == [True, False, False]
    assert qemu.use_icount("on", 2) and not qemu.use_icount("off", 1)
    with pytest.raises(ValueError, match="not auto, on or off"):
        qemu.use_icount("yes", 1)
    assert option(boot("qemu-vexpress-a15", "lab", smp=2, icount=False), "-icount") == []
    assert option(boot("qemu-vexpress-a15", "lab", smp=2), "-icount") == [qemu.ICOUNT]


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="unknown mode"):
        boot("qemu-vexpress-a9", "debug")
    with pytest.raises(ValueError, match="results file"):
        boot("qemu-vexpress-a9", "test", results=None)
    no_qemu = [b for b in board_names() if not load_board(b).has_qemu]
    assert no_qemu
    with pytest.raises(ValueError, match="no QEMU model"):
        boot(no_qemu[0], "shell")


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_qemu_command_prints_the_shell_command_quoted(board, capsys):
    # Boards QEMU boots through U-Boot take no DTB (U-Boot hands on QEMU's).
    dtb = None if load_board(board).qemu_uboot else "my board.dtb"
    assert cli.main(["qemu-command", "--board", board, "--kernel", "zImage", "--sdcard", "my sdcard.img"]
                    + (["--dtb", dtb] if dtb else [])) == 0
    printed = capsys.readouterr().out
    assert shlex.split(printed) == qemu.qemu_command(load_board(board), "zImage", dtb, "my sdcard.img",
                                                     icount=False)
    assert "file=my sdcard.img'" in printed and (not dtb or "'my board.dtb'" in printed)


def test_qemu_command_refuses_a_board_without_qemu(capsys):
    no_qemu = next(b for b in board_names() if not load_board(b).has_qemu)
    with pytest.raises(SystemExit, match="has no QEMU model"):
        cli.main(["qemu-command", "--board", no_qemu, "--kernel", "k", "--dtb", "d", "--sdcard", "s"])
    with pytest.raises(SystemExit, match="unknown board"):
        cli.main(["qemu-command", "--board", "no-such-board", "--kernel", "k", "--dtb", "d", "--sdcard", "s"])


@pytest.mark.skipif(not shutil.which("dtc"), reason="dtc missing (device-tree-compiler)")
def test_the_qemu_dtb_of_sabrelite_has_no_dma_on_its_results_port(tmp_path):
    # A device tree with the alias the board names; fdtget/fdtput do the work.
    board = load_board("imx6q-sabrelite")
    (alias,) = board.qemu_serial_no_dma
    dts = tmp_path / "t.dts"
    dts.write_text(f"""/dts-v1/;
/ {{
    aliases {{ {alias} = "/soc/serial@2020000"; }};
    soc {{ serial@2020000 {{ dmas = <1 2 3>; dma-names = "rx", "tx"; status = "okay"; }}; }};
}};
""")
    dtb = tmp_path / "imx6q-sabrelite.dtb"
    subprocess.run(["dtc", "-I", "dts", "-O", "dtb", "-o", str(dtb), str(dts)], check=True)
    original = dtb.read_bytes()
    out = qemu.dtb_for_qemu(board, str(dtb), str(tmp_path / "build"))
    assert out == str(tmp_path / "build" / "qemu-imx6q-sabrelite.dtb")
    props = subprocess.run(["fdtget", "-p", out, "/soc/serial@2020000"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert props == ["status"]
    assert dtb.read_bytes() == original
    # Boards without such ports boot the DTB as it is.
    assert qemu.dtb_for_qemu(load_board("qemu-vexpress-a9"), str(dtb), str(tmp_path)) == str(dtb)
    assert not os.path.exists(tmp_path / "qemu-imx6q-sabrelite.dtb")


def test_qemu_virt_boots_through_u_boot_from_a_virtio_disk():
    board = load_board("qemu-virt")
    words = qemu.kernel_cmdline(board, "test")
    cmd = boot("qemu-virt", card_cmdline=words)
    # U-Boot is the firmware; kernel, device tree and command line come from the card.
    assert option(cmd, "-bios") == [board.qemu_uboot]
    assert option(cmd, "-kernel") == option(cmd, "-dtb") == option(cmd, "-append") == []
    assert option(cmd, "-M") == ["virt"] and option(cmd, "-cpu") == ["cortex-a15"]
    assert option(cmd, "-nic") == ["none"]
    assert option(cmd, "-drive") == ["if=none,id=sdcard,format=raw,file=sd.img"]
    # The results port is a virtio console (virt has one UART: the console).
    assert option(cmd, "-serial") == ["stdio"]
    assert option(cmd, "-chardev") == ["file,id=results,path=out/results.log"]
    assert option(cmd, "-device") == ["virtio-blk-device,drive=sdcard", "virtio-serial-device",
                                      "virtconsole,chardev=results"]
    assert "rtflex.results=hvc0" in words
    # Shell mode: the card's own command line, no results port.
    cmd = boot("qemu-virt", "shell", results=None)
    assert option(cmd, "-serial") == ["mon:stdio"] and option(cmd, "-chardev") == []


def test_a_u_boot_run_needs_a_card_that_carries_its_command_line():
    # Without card_cmdline the card has the board's own command line, which
    # lacks rtflex.mode=test: refused rather than a guest that never tests.
    with pytest.raises(ValueError, match="boots through U-Boot.*needs '.*rtflex.mode=test.*' there"):
        boot("qemu-virt")
    words = qemu.kernel_cmdline(load_board("qemu-virt"), "test")
    with pytest.raises(ValueError, match="the card has"):
        boot("qemu-virt", card_cmdline=words[:-1])
    with pytest.raises(ValueError, match="needs '.* x'"):
        boot("qemu-virt", "shell", results=None, append=["x"])


def test_qemu_command_refuses_a_dtb_or_append_for_a_u_boot_board():
    with pytest.raises(SystemExit, match="no --dtb"):
        cli.main(["qemu-command", "--board", "qemu-virt", "--kernel", "k", "--dtb", "d", "--sdcard", "s"])
    with pytest.raises(SystemExit, match="no --append here"):
        cli.main(["qemu-command", "--board", "qemu-virt", "--kernel", "k", "--sdcard", "s", "--append", "x"])
    with pytest.raises(SystemExit, match="needs --dtb"):
        cli.main(["qemu-command", "--board", "qemu-vexpress-a9", "--kernel", "k", "--sdcard", "s"])


def _cpus_dtb(tmp_path, n, extra=""):
    cpus = "".join(f"cpu@{i} {{ device_type = \"cpu\"; reg = <{i}>; }};" for i in range(n))
    dts = tmp_path / "t.dts"
    dts.write_text(f"""/dts-v1/;
/ {{ cpus {{ #address-cells = <1>; #size-cells = <0>; {cpus} {extra} }}; }};
""")
    dtb = tmp_path / "vexpress-v2p-ca15-tc1.dtb"
    subprocess.run(["dtc", "-I", "dts", "-O", "dtb", "-o", str(dtb), str(dts)], check=True)
    return dtb


def _dt_cpus(dtb):
    return subprocess.run(["fdtget", "-l", dtb, "/cpus"], capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.mark.skipif(not shutil.which("dtc"), reason="dtc missing (device-tree-compiler)")
def test_the_qemu_dtb_of_vexpress_a15_describes_the_vcpus_qemu_has(tmp_path, capsys, monkeypatch):
    board = load_board("qemu-vexpress-a15")
    assert board.qemu_dt_cpus_from_smp == "yes"
    dtb = _cpus_dtb(tmp_path, 2)
    original = dtb.read_bytes()
    # The board's -smp (1), then an explicit count.
    out = qemu.dtb_for_qemu(board, str(dtb), str(tmp_path / "b1"))
    assert out == str(tmp_path / "b1" / "qemu-vexpress-v2p-ca15-tc1.dtb") and _dt_cpus(out) == ["cpu@0"]
    assert _dt_cpus(qemu.dtb_for_qemu(board, str(dtb), str(tmp_path / "b2"), 2)) == ["cpu@0", "cpu@1"]
    assert dtb.read_bytes() == original
    with pytest.raises(ValueError, match="describes 2 CPUs, QEMU is given 3"):
        qemu.dtb_for_qemu(board, str(dtb), str(tmp_path / "b3"), 3)
    # A /cpus with more than CPU nodes (a cpu-map names CPUs): refused.
    with pytest.raises(ValueError, match="cpu-map"):
        (tmp_path / "m").mkdir()
        qemu.dtb_for_qemu(board, str(_cpus_dtb(tmp_path / "m", 2, "cpu-map { };")), str(tmp_path / "b4"))
    # The other boards boot their DT's CPUs as they are.
    assert qemu.dtb_for_qemu(load_board("qemu-vexpress-a9"), str(dtb), str(tmp_path)) == str(dtb)
    # The printed command (Buildroot's start-qemu.sh): --dtb-dir writes the
    # copy there and names it; without --dtb-dir the DTB as given.
    monkeypatch.chdir(tmp_path)
    argv = ["qemu-command", "--board", "qemu-vexpress-a15", "--kernel", "zImage", "--sdcard", "sd.img",
            "--dtb", dtb.name]
    assert cli.main(argv + ["--dtb-dir", "."]) == 0
    assert option(shlex.split(capsys.readouterr().out), "-dtb") == ["./qemu-vexpress-v2p-ca15-tc1.dtb"]
    assert _dt_cpus(tmp_path / "qemu-vexpress-v2p-ca15-tc1.dtb") == ["cpu@0"]
    assert cli.main(argv) == 0
    assert option(shlex.split(capsys.readouterr().out), "-dtb") == [dtb.name]


@pytest.mark.parametrize("args,count", [
    ([], 1), (["-smp", "2"], 2), (["-smp", "1", "-m", "1G", "-smp", "4"], 4),
    (["-smp=3"], 3), (["-smp", "cpus=2,cores=2"], 2), (["-smp", "4,sockets=1"], 4),
])
def test_vcpus(args, count):
    assert qemu.vcpus(args) == count
