"""The board-farm jobs (rtflex.lava, docs/lava.md): every board's job is
valid for Debian's lava-common job schema, a QEMU job gives LAVA the QEMU
command line of rtflex.qemu, the image's lava-lab reports the recorded lab
bundles as the bundle reader reads them, and the bundle comes back out of
a job's log byte for byte (or with a clear error)."""

import base64
import copy
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tarfile

import pytest

from rtflex import bundle, lava, qemu
from rtflex.board import TOP, board_names, load_board

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
RECORDED = [os.path.join(DATA, f"vexpress-a9-lab-{v}.tar.gz") for v in ("rt", "rt-tuned")]
LAVA_LAB = os.path.join(TOP, "rootfs", "overlay", "usr", "libexec", "rtflex", "lava-lab")
URL = "https://files.example/rtflex/{board}"


def unpacked(tmp_path, tarball):
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = [d for d in os.listdir(tmp_path) if os.path.isdir(tmp_path / d)]
    return tmp_path / top


# ---- the jobs ---------------------------------------------------------------

def test_every_board_but_qemu_virt_gets_a_job_that_lava_common_accepts(tmp_path):
    written, left_out = lava.write_jobs(str(tmp_path), URL)   # validates each (strict)
    names = sorted(os.path.basename(p)[:-len(".yaml")] for p in written)
    assert names == [n for n in board_names() if n != "qemu-virt"]
    with tarfile.open(tmp_path / lava.OVERLAY_CARRIER) as tar:
        assert tar.getmembers() == []
    assert len(left_out) == 1 and left_out[0].startswith("qemu-virt:")
    for path in written:
        text = open(path).read()
        assert "{board}" not in text
        lava.validate(lava._yaml().safe_load(text))   # what the file holds, read back


def test_a_job_that_breaks_the_schema_is_refused():
    j = lava.job(load_board("qemu-vexpress-a9"), URL)
    bad = copy.deepcopy(j)
    bad["actions"][1]["boot"]["method"] = "qemu-typo"
    with pytest.raises(lava.LavaError, match="breaks lava-common's schema"):
        lava.validate(bad)
    bad = copy.deepcopy(j)
    bad["actions"][2]["test"]["definitions"][0]["repository"]["run"] = {"step": ["x"]}
    with pytest.raises(lava.LavaError, match="breaks lava-common's schema"):
        lava.validate(bad)
    bad = copy.deepcopy(j)
    bad["context"]["no_such_variable"] = 1
    with pytest.raises(lava.LavaError, match="breaks lava-common's schema"):
        lava.validate(bad)


def test_real_boards_boot_the_card_through_their_u_boot_with_their_device_type():
    for name in ("am572x", "imx6q-sabrelite", "imx6q-sabresd"):
        board = load_board(name)
        j = lava.job(board, URL.format(board=name))
        assert j["device_type"] == board.lava_device_type
        deploy, boot, test = (a[k] for a, k in zip(j["actions"], ("deploy", "boot", "test")))
        assert deploy["to"] == "flasher"
        assert deploy["images"]["image"]["url"] == f"https://files.example/rtflex/{name}/sdcard.img"
        assert boot["method"] == "u-boot" and boot["commands"] == ["boot"]
        assert boot["transfer_overlay"]["download_command"].endswith("wget -q")
        assert test["definitions"][0]["repository"]["run"]["steps"] == \
            ["/usr/libexec/rtflex/lava-lab $LAB_OPTIONS"]


def test_the_prompt_matches_the_image_shell_prompt():
    import re
    # /etc/profile's PS1 '\h:\w\$ ' as root, in / and in LAVA's directories
    host = open(os.path.join(TOP, "rootfs", "overlay", "etc", "hostname")).read().strip()
    pattern = re.compile(lava.prompt())
    for cwd in ("/", "/tmp", "/lava-1234/0/tests/0_rtflex-lab"):
        assert pattern.search(f"{host}:{cwd}# ")
    assert not pattern.search(f"rtflex: 7.2.13 ready. Try: rtlat -m -p 90")
    profile = open(os.path.join(TOP, "rootfs", "overlay", "etc", "profile")).read()
    assert "PS1='\\h:\\w\\$ '" in profile


def lava_qemu_words(j):
    """The QEMU command (words) LAVA runs for job J on the local device
    dictionary: its options and extra options, then the image arguments
    with the files put in (rtflex.lava renders the dictionary as a server
    renders a device type)."""
    device = lava._yaml().safe_load(lava.render_device(j))
    params = device["actions"]["boot"]["methods"]["qemu"]["parameters"]
    words = [params["command"]]
    for option in params["options"] + params.get("extra", []):
        words += shlex.split(option)
    for key, image in j["actions"][0]["deploy"]["images"].items():
        if "image_arg" in image:
            words += shlex.split(image["image_arg"].replace("{%s}" % key, f"/dl/{key}"))
    return words


def pairs(words):
    """A QEMU command's options as a sorted list of (option, value or None)."""
    out, i = [], 1
    flags = {"-nographic", "-no-reboot"}
    while i < len(words):
        if words[i] in flags:
            out.append((words[i], None))
            i += 1
        else:
            out.append(("-machine" if words[i] == "-M" else words[i], words[i + 1]))
            i += 2
    return sorted(out)


@pytest.mark.parametrize("name", ["qemu-vexpress-a9", "qemu-vexpress-a15"])
def test_a_qemu_job_runs_the_qemu_command_line_of_rtflex_qemu(name):
    board = load_board(name)
    j = lava.job(board, URL)
    ours = qemu.qemu_command(board, "/dl/kernel", "/dl/dtb", "/dl/rootfs", mode="shell", icount=True)
    assert ["-icount", qemu.ICOUNT] == ours[ours.index("-icount"):ours.index("-icount") + 2]
    got = pairs(lava_qemu_words(j))
    want = pairs(ours)
    # LAVA's qemu type adds -cpu (the machine's default CPU), the console
    # and a NIC, and no monitor; rtflex's -display none is -nographic's part.
    want.remove(("-display", "none"))
    want.append(("-cpu", lava.QEMU_DEFAULT_CPU[board.qemu_machine]))
    lava_adds = [("-nographic", None), ("-monitor", "none"), ("-net", "user"),
                 ("-net", f"nic,{lava.QEMU_NIC_MODEL[board.qemu_machine]},macaddr=52:54:00:12:34:58")]
    assert got == sorted(want + lava_adds)


@pytest.mark.skipif(not shutil.which("qemu-system-arm"), reason="qemu-system-arm not installed (make deps)")
def test_the_default_cpus_are_qemus():
    """QEMU_DEFAULT_CPU against QEMU's own query-machines."""
    qmp = '{"execute":"qmp_capabilities"}\n{"execute":"query-machines"}\n{"execute":"quit"}\n'
    out = subprocess.run(["qemu-system-arm", "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "stdio"],
                         input=qmp, capture_output=True, text=True, timeout=60).stdout
    machines = {}
    for line in out.splitlines():
        reply = json.loads(line)
        if isinstance(reply.get("return"), list):
            machines = {m["name"]: m.get("default-cpu-type") for m in reply["return"]}
    for machine, cpu in lava.QEMU_DEFAULT_CPU.items():
        assert machines[machine] == f"{cpu}-arm-cpu"


# ---- lava-lab in the image --------------------------------------------------

def fake_lava_test_case(tmp_path):
    """A lava-test-case that records its arguments, one call per line."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls.txt"
    script = bindir / "lava-test-case"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>"{calls}"\n')
    script.chmod(0o755)
    return str(bindir), calls


def parse_calls(calls):
    """lava-test-case NAME --result R [--measurement M --units U] lines ->
    {name: (result, measurement or None, units or None)}."""
    out = {}
    for line in calls.read_text().splitlines():
        w = line.split()
        opts = dict(zip(w[1::2], w[2::2]))
        assert w[0] not in out, f"test case {w[0]} reported twice"
        out[w[0]] = (opts["--result"], opts.get("--measurement"), opts.get("--units"))
    return out


@pytest.mark.parametrize("tarball", RECORDED, ids=["rt", "rt-tuned"])
def test_lava_lab_reports_every_run_as_the_bundle_reader_reads_it(tmp_path, tarball):
    directory = unpacked(tmp_path, tarball)
    bindir, calls = fake_lava_test_case(tmp_path)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    subprocess.run(["sh", LAVA_LAB, "--report", str(directory)], env=env, check=True)
    cases = parse_calls(calls)
    b = bundle.load(str(directory))
    assert bundle.check(b) == []
    expected = set()
    for entry in b.result["latency"]["runs"]:
        name = entry["name"]
        want = {"ran": "pass", "failed": "fail", "skipped": "skip"}[entry["status"]]
        assert cases[name][0] == want
        expected.add(name)
    for run in b.runs:
        for stats in run.thread_stats():
            t = stats["thread"]
            prefix = f"{run.name}-thread{t}"
            # oracle: the run's JSON report (min, max, avg) and its histogram file
            assert cases[f"{prefix}-min"] == ("pass", str(stats["min"]), "us")
            assert cases[f"{prefix}-max"] == ("pass", str(stats["max"]), "us")
            avg = int(cases[f"{prefix}-avg"][1])
            assert avg == run.hist.summary["Avg Latencies"][t] and abs(avg - stats["avg"]) < 1
            assert cases[f"{prefix}-overflows"] == ("pass", str(run.hist.overflows(t)[0]), "samples")
            expected |= {f"{prefix}-{m}" for m in ("min", "avg", "max", "overflows")}
    assert set(cases) == expected


def test_lava_lab_runs_the_runner_and_prints_its_bundle_into_the_log(tmp_path):
    """The whole script with a stand-in runner that 'writes' a recorded
    bundle: the test cases, the runner's verdict, and the bundle out of
    the console output byte for byte."""
    out = tmp_path / "out"
    out.mkdir()
    directory = unpacked(out, RECORDED[0])
    tarball = str(directory) + ".tar.gz"
    shutil.copyfile(RECORDED[0], tarball)
    runner = tmp_path / "lab"
    runner.write_text(f'#!/bin/sh\necho "lab: options $*"\necho "lab: bundle: {tarball}"\nexit 1\n')
    runner.chmod(0o755)
    bindir, calls = fake_lava_test_case(tmp_path)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", RTFLEX_LAB=str(runner))
    proc = subprocess.run(["sh", LAVA_LAB, "--duration=2", "--label=x"], env=env, capture_output=True, text=True)
    assert proc.returncode == 1   # the runner's exit status 1: a failed cell
    assert "lab: options --duration=2 --label=x" in proc.stdout
    cases = parse_calls(calls)
    assert cases["rtflex-lab"] == ("fail", None, None)
    assert cases["idle-cyclictest"] == ("pass", None, None)
    got = lava.extract_bundle(proc.stdout.splitlines(), str(tmp_path / "back"))
    with open(os.path.join(tmp_path / "back", os.path.basename(tarball)), "rb") as f:
        assert f.read() == open(RECORDED[0], "rb").read()
    assert bundle.check(bundle.load(got)) == []


def test_lava_lab_without_a_bundle_fails_the_lab_case(tmp_path):
    runner = tmp_path / "lab"
    runner.write_text('#!/bin/sh\necho "lab: run me as root" >&2\nexit 2\n')
    runner.chmod(0o755)
    bindir, calls = fake_lava_test_case(tmp_path)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", RTFLEX_LAB=str(runner))
    proc = subprocess.run(["sh", LAVA_LAB], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "the runner wrote no bundle (exit status 2)" in proc.stderr
    assert parse_calls(calls) == {"rtflex-lab": ("fail", None, None)}
    assert "rtflex-bundle-begin" not in proc.stdout


# ---- the job's log ----------------------------------------------------------

def console_with_bundle(data, name="rtflex-lab-rt-20261205T105030Z.tar.gz", size=None, digest=None):
    text = base64.encodebytes(data).decode()
    lines = ["+ /usr/libexec/rtflex/lava-lab --quick",
             f"rtflex-bundle-begin {name} {len(data) if size is None else size} "
             f"{digest or hashlib.sha256(data).hexdigest()}"]
    return lines + text.splitlines() + [f"rtflex-bundle-end {name}", "<LAVA_SIGNAL_ENDRUN 0_rtflex-lab 1_1.1.3.1>"]


def test_the_bundle_comes_out_of_the_log_and_a_damaged_one_is_refused(tmp_path):
    data = open(RECORDED[0], "rb").read()
    got = lava.extract_bundle(console_with_bundle(data), str(tmp_path / "ok"))
    assert os.path.basename(got) == "rtflex-lab-rt-20261205T105030Z"
    assert bundle.check(bundle.load(got)) == []
    lines = console_with_bundle(data)
    lines[5] = ("A" if lines[5][0] != "A" else "B") + lines[5][1:]
    with pytest.raises(lava.LavaError, match="damaged"):
        lava.extract_bundle(lines, str(tmp_path / "bad"))
    with pytest.raises(lava.LavaError, match="no end line"):
        lava.extract_bundle(console_with_bundle(data)[:-2], str(tmp_path / "cut"))
    with pytest.raises(lava.LavaError, match="printed no bundle"):
        lava.extract_bundle(["lab: every cell ran"], str(tmp_path / "none"))


def test_a_lava_run_log_gives_the_console_and_the_results(tmp_path):
    entries = [
        {"dt": "t", "lvl": "target", "msg": "rtflex-bundle-begin x.tar.gz 1 " + "0" * 64},
        {"dt": "t", "lvl": "results", "msg": {"definition": "0_rtflex-lab", "case": "idle-cyclictest-thread0-max",
                                               "result": "pass", "measurement": 48.0, "units": "us"}},
        {"dt": "t", "lvl": "debug", "msg": "start: 1 deployimages"},
    ]
    log = tmp_path / "lava-run.log"
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    yaml_log = tmp_path / "output.yaml"   # a server's job log: the same as a YAML list
    yaml_log.write_text("".join("- " + json.dumps(e) + "\n" for e in entries))
    for path in (log, yaml_log):
        read = lava.read_log(str(path))
        assert lava.console_lines(read) == [entries[0]["msg"]]
        assert lava.summarize(lava.results(read)) == ["0_rtflex-lab: idle-cyclictest-thread0-max: pass 48.0 us"]


def test_the_pipeline_check_wants_every_action_in_order():
    description = {"pipeline": [
        {"name": "deploy-flasher-retry", "pipeline": [{"name": "deploy-flasher", "pipeline": [
            {"name": "lava-overlay", "pipeline": [{"name": "compress-overlay"}]}]}]},
        {"name": "uboot-action", "pipeline": [{"name": "uboot-commands", "pipeline": [
            {"name": "bootloader-interrupt"}, {"name": "bootloader-commands"}, {"name": "auto-login-action"},
            {"name": "expect-shell-connection"}, {"name": "overlay-unpack"}]}]},
        {"name": "lava-test-retry", "pipeline": [{"name": "lava-test-shell"}]}]}
    names = lava.pipeline_names(description)
    assert lava.pipeline_problem(names) is None
    assert lava.pipeline_problem([n for n in names if n != "overlay-unpack"]) == \
        "the pipeline lacks overlay-unpack after expect-shell-connection"
    assert lava.pipeline_problem(names[::-1]) == "the pipeline lacks compress-overlay after deploy-flasher"


def test_lava_lab_takes_every_run_name_the_runner_can_write(tmp_path):
    """Run names are LOAD-TOOL with the runner's tools (rtlat-io_uring has
    an underscore); skipped runs have a reason; other lines are not runs."""
    (tmp_path / "summary.txt").write_text(
        "lab: rt, kernel 7.2.13, 1 CPU(s) (0), 5 s per cell\n"
        "lab: bundle /var/lib/rtflex/lab/rtflex-lab-rt-20261205T134437Z\n"
        "lab: idle-rtlat-io_uring: ran\n"
        "    thread 0: min 27, avg 35, max 48 us, 0 beyond the histogram\n"
        "    thread 1: min 26, avg 34, max 2001 us, 3 beyond the histogram\n"
        "lab: idle-rtlat-kml: skipped: the kernel has no CONFIG_KERNEL_MODE_LINUX=y (/proc/config.gz)\n"
        "lab: sd-cyclictest: failed\n"
        "lab: FAILED cells:\n"
        "  sd-cyclictest: the load sd ended before the measurement did\n")
    bindir, calls = fake_lava_test_case(tmp_path)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    subprocess.run(["sh", LAVA_LAB, "--report", str(tmp_path)], env=env, check=True)
    assert parse_calls(calls) == {
        "idle-rtlat-io_uring": ("pass", None, None),
        "idle-rtlat-io_uring-thread0-min": ("pass", "27", "us"),
        "idle-rtlat-io_uring-thread0-avg": ("pass", "35", "us"),
        "idle-rtlat-io_uring-thread0-max": ("pass", "48", "us"),
        "idle-rtlat-io_uring-thread0-overflows": ("pass", "0", "samples"),
        "idle-rtlat-io_uring-thread1-min": ("pass", "26", "us"),
        "idle-rtlat-io_uring-thread1-avg": ("pass", "34", "us"),
        "idle-rtlat-io_uring-thread1-max": ("pass", "2001", "us"),
        "idle-rtlat-io_uring-thread1-overflows": ("pass", "3", "samples"),
        "idle-rtlat-kml": ("skip", None, None),
        "sd-cyclictest": ("fail", None, None),
    }
