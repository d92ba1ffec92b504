"""LAVA job definitions of the latency lab, one per board, generated from the
board facts (board/<b>/board.mk, rtflex.board), the QEMU command line of
rtflex.qemu and one test definition (lava/rtflex-lab.yaml); their check
against the job schema of Debian's lava-common; and a local end-to-end run
with Debian's lava-dispatcher (docs/lava.md).

Every job deploys the board's SD card image, boots it, fetches LAVA's test
overlay over HTTP (the image's udhcpc brings eth0 up first) and runs the
test definition inline: /usr/libexec/rtflex/lava-lab runs the lab's runner,
reports every run as a test case with its latencies as measurements, and
prints the result bundle into the log (`bundle` below gets it back).

- Boards QEMU boots directly (vexpress): device type qemu; the job's
  context carries the QEMU command line of `rtflex qemu-command --icount`
  (machine, CPU, memory, -smp, -icount, ...), the kernel, DTB and card are
  images whose image_arg puts them where that command line has them.
  LAVA's qemu device type attaches the test overlay as a disk by default;
  the image carries it instead (the empty tar `lava-overlay.tar` with
  `overlays: lava: true`), since the guest fetches it over the network.
- Boards with U-Boot on the card: their LAVA device type (BOARD_LAVA_DEVICE_TYPE
  in board.mk), deploy `to: flasher` (the farm's SD-card flasher writes
  `sdcard.img`, its `.bmap` beside it), boot `method: u-boot` with the
  command `boot` (U-Boot's own boot command: distro boot of the card's
  extlinux.conf, as on a desk).
- qemu-virt gets no job: LAVA's qemu device type always adds
  `-net nic,<model>`, which on -M virt can only be a PCI NIC (QEMU:
  "Unsupported NIC model: virtio-net-device"), and the kernel has no PCI
  (CONFIG_PCI is off): the guest would have no network for the overlay.

    python3 -m rtflex.lava jobs --base-url URL --out-dir DIR [--board B]... [--lab-options OPTS]
    python3 -m rtflex.lava validate JOB.yaml...      check against lava-common's schema
    python3 -m rtflex.lava run --board B --kernel Z --dtb D --sdcard S --work-dir DIR
                                                     lava-run the board's job here (root)
    python3 -m rtflex.lava pipelines --work-dir DIR  lava-run --validate the U-Boot boards' jobs
    python3 -m rtflex.lava bundle LOG --out-dir DIR  the bundle a job printed into its log
    python3 -m rtflex.lava results LOG               the test cases of a lava-run log
"""

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time

from . import qemu
from .board import TOP, BoardError, board_names, load_board

TESTDEF = os.path.join(TOP, "lava", "rtflex-lab.yaml")
DEVICE_TEMPLATE = os.path.join(TOP, "lava", "devices", "qemu.jinja2")
HOSTNAME_FILE = os.path.join(TOP, "rootfs", "overlay", "etc", "hostname")
# The empty tar that carries LAVA's overlay in QEMU jobs (see above).
OVERLAY_CARRIER = "lava-overlay.tar"
# The default options of the lab's runner in a job (lab --help).
LAB_OPTIONS = "--quick"
# What QEMU picks when a machine is given without -cpu; LAVA's qemu device
# type always passes -cpu (checked against QEMU's query-machines in the tests).
QEMU_DEFAULT_CPU = {"vexpress-a9": "cortex-a9", "vexpress-a15": "cortex-a15"}
# The NIC model QEMU wires on each machine (LAVA's qemu type adds
# -net nic,<model>).
QEMU_NIC_MODEL = {"vexpress-a9": "model=lan9118", "vexpress-a15": "model=lan9118"}
# The guest brings its network up with the image's udhcpc script
# (/etc/udhcpc/default.script), then fetches the overlay into /tmp.
DOWNLOAD_COMMAND = "ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1; cd /tmp && wget -q"
UNPACK_COMMAND = "tar -C / -xzf"
# Where the bundle is in a job's log (rootfs/overlay/usr/libexec/rtflex/lava-lab).
BUNDLE_BEGIN = re.compile(r"rtflex-bundle-begin (\S+\.tar\.gz) (\d+) ([0-9a-f]{64})\s*$")
BUNDLE_END = "rtflex-bundle-end"


class LavaError(Exception):
    """A board without a job, a job that breaks the schema, a failed run."""


def _yaml():
    try:
        import yaml
    except ImportError:
        raise LavaError("python3-yaml missing (apt-get install python3-yaml)") from None
    return yaml


def prompt():
    """The console prompt of the image's shell (PS1 '\\h:\\w\\$ ' of
    /etc/profile, as root) as a regular expression."""
    with open(HOSTNAME_FILE) as f:
        host = f.read().strip()
    return re.escape(host) + r":[^#\n]*# "


def test_definition(lab_options=LAB_OPTIONS):
    """lava/rtflex-lab.yaml with LAB_OPTIONS as its LAB_OPTIONS parameter."""
    with open(TESTDEF) as f:
        definition = _yaml().safe_load(f)
    if "LAB_OPTIONS" not in definition.get("params", {}):
        raise LavaError(f"{TESTDEF}: no params LAB_OPTIONS")
    definition["params"]["LAB_OPTIONS"] = lab_options
    return definition


def has_job(board):
    """Whether BOARD gets a job, and if not why (a sentence)."""
    if board.qemu_uboot:
        return False, (f"{board.name}: LAVA's qemu device type always adds -net nic,<model>, on "
                       f"-M {board.qemu_machine} a PCI NIC (QEMU refuses model=virtio-net-device there), "
                       "and our kernel has no PCI")
    if board.has_uboot and not board.lava_device_type:
        return False, f"{board.name}: board.mk has no BOARD_LAVA_DEVICE_TYPE"
    if not board.has_uboot and not board.has_qemu:
        return False, f"{board.name}: neither U-Boot nor a QEMU model"
    return True, ""


def image_files(board):
    """The files a board's job downloads: image key -> file name (the base
    URL's directory must hold them). A QEMU board's DTB is the one QEMU
    boots (rtflex.qemu.dtb_for_qemu: `rtflex qemu-command --dtb-dir`)."""
    if board.has_uboot:
        return {"image": "sdcard.img", "bmap": "sdcard.img.bmap"}
    return {"kernel": "zImage", "dtb": board.dtb_names[board.dtbs.index(board.dtb)],
            "rootfs": "sdcard.img", "lava-overlay": OVERLAY_CARRIER}


def qemu_context(board, append=()):
    """LAVA's qemu context and image arguments for BOARD: the interactive
    QEMU command line of rtflex.qemu with guest time from the instruction
    count, taken apart. Returns (context, image_arg by image key)."""
    if board.qemu_machine not in QEMU_NIC_MODEL:
        raise LavaError(f"{board.name}: no NIC model known for QEMU machine {board.qemu_machine} "
                        f"(known: {', '.join(QEMU_NIC_MODEL)})")
    cmd = qemu.qemu_command(board, "{kernel}", "{dtb}", "{rootfs}", mode="shell", icount=True, append=append)
    if cmd[0] != "qemu-system-arm":
        raise LavaError(f"unexpected QEMU binary {cmd[0]}")
    context = {"arch": "arm", "machine": None, "cpu": QEMU_DEFAULT_CPU.get(board.qemu_machine),
               "memory": None, "model": QEMU_NIC_MODEL[board.qemu_machine], "netdevice": "user"}
    extra, image_args = [], {"kernel": [], "dtb": [], "rootfs": []}
    args = cmd[1:]
    i = 0
    while i < len(args):
        option = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if option in ("-M", "-machine"):
            context["machine"] = value
        elif option == "-cpu":
            context["cpu"] = value
        elif option == "-m":
            context["memory"] = value
        elif option in ("-kernel", "-append"):
            image_args["kernel"] += [option, value]
        elif option == "-dtb":
            image_args["dtb"] += [option, value]
        elif option in ("-drive", "-device"):
            image_args["rootfs"] += [option, value]
        elif option == "-display":
            pass  # LAVA's qemu type passes -nographic
        elif option in ("-no-reboot",):
            extra.append(option)
            i += 1
            continue
        else:
            extra.append(f"{option} {value}")
        i += 2
    missing = [k for k in ("machine", "cpu", "memory") if not context[k]]
    if missing:
        raise LavaError(f"{board.name}: the QEMU command line gives no {', '.join(missing)}")
    context["extra_options"] = extra
    return context, {k: _join(v) for k, v in image_args.items()}


def _join(words):
    """WORDS as one command line, the way LAVA's jobs write image_arg: a
    word with white space in double quotes (no word has quotes)."""
    for w in words:
        if '"' in w or "'" in w or "\\" in w:
            raise LavaError(f"cannot quote {w!r} for a LAVA image_arg")
    return " ".join(f'"{w}"' if any(c.isspace() for c in w) else w for w in words)


def job(board, base_url, lab_options=LAB_OPTIONS, test_minutes=60, job_name=None):
    """The LAVA job (a dict) that runs the lab on BOARD, its files under
    BASE_URL (a URL whose directory holds image_files(board))."""
    ok, why = has_job(board)
    if not ok:
        raise LavaError(f"no LAVA job: {why}")
    base = base_url.rstrip("/")
    files = image_files(board)
    definition = {"from": "inline", "name": "rtflex-lab", "path": "inline/rtflex-lab.yaml",
                  "repository": test_definition(lab_options)}
    transfer = {"download_command": DOWNLOAD_COMMAND, "unpack_command": UNPACK_COMMAND}
    prompts = [prompt()]
    j = {
        "job_name": job_name or f"rtflex latency lab on {board.name}",
        "priority": "medium",
        "visibility": "public",
        "metadata": {"rtflex.board": board.name, "rtflex.lab_options": lab_options,
                     "rtflex.generated_by": "python3 -m rtflex.lava jobs"},
    }
    if board.has_uboot:
        deploy_minutes, boot_minutes = 20, 10
        j["device_type"] = board.lava_device_type
        deploy = {"to": "flasher", "timeout": {"minutes": deploy_minutes},
                  "images": {k: {"url": f"{base}/{name}"} for k, name in files.items()}}
        boot = {"method": "u-boot", "commands": ["boot"], "timeout": {"minutes": boot_minutes},
                "prompts": prompts, "transfer_overlay": transfer}
    else:
        deploy_minutes, boot_minutes = 10, 15
        context, image_args = qemu_context(board)
        j["device_type"] = "qemu"
        j["context"] = context
        images = {k: {"url": f"{base}/{files[k]}", "image_arg": image_args[k]} for k in ("kernel", "dtb", "rootfs")}
        images["lava-overlay"] = {"url": f"{base}/{files['lava-overlay']}", "format": "tar",
                                  "overlays": {"lava": True}}
        deploy = {"to": "tmpfs", "timeout": {"minutes": deploy_minutes}, "images": images}
        boot = {"method": "qemu", "media": "tmpfs", "timeout": {"minutes": boot_minutes},
                "prompts": prompts, "transfer_overlay": transfer}
    j["timeouts"] = {"job": {"minutes": deploy_minutes + boot_minutes + test_minutes + 5},
                     "action": {"minutes": 10}, "connection": {"minutes": 2}}
    j["actions"] = [{"deploy": deploy}, {"boot": boot},
                    {"test": {"timeout": {"minutes": test_minutes}, "definitions": [definition]}}]
    return j


def dump(j):
    """A job as YAML text."""
    header = ("# Generated by python3 -m rtflex.lava (tools/rtflex/lava.py) from board.mk and\n"
              "# lava/rtflex-lab.yaml; docs/lava.md says what a farm fills in.\n")
    return header + _yaml().safe_dump(j, sort_keys=False, default_flow_style=False, width=1000)


def validate(j):
    """Check job J (a dict) against lava-common's schema (strict: no
    unknown keys). Raises LavaError with the schema's message."""
    try:
        from lava_common.schemas import validate as lava_validate
        import voluptuous
    except ImportError:
        raise LavaError("Debian's lava-common is not installed (apt-get install lava-common; "
                        "scripts/setup-host.sh installs it)") from None
    try:
        lava_validate(j, strict=True)
    except voluptuous.Invalid as e:
        raise LavaError(f"job '{j.get('job_name')}' breaks lava-common's schema: {e} "
                        f"(at {'/'.join(str(p) for p in e.path)})") from None


def write_jobs(out_dir, base_url, boards=None, lab_options=LAB_OPTIONS, test_minutes=60, top=TOP):
    """Write DIR/<board>.yaml for every board with a job (or BOARDS), each
    validated first, and the overlay carrier if a QEMU board has a job.
    BASE_URL may contain {board}. Returns the job paths and the boards left
    out with the reason."""
    names = boards or board_names(top)
    written, left_out = [], []
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        board = load_board(name, top)
        ok, why = has_job(board)
        if not ok:
            if boards:
                raise LavaError(f"no LAVA job: {why}")
            left_out.append(why)
            continue
        j = job(board, base_url.replace("{board}", name), lab_options, test_minutes)
        validate(j)
        path = os.path.join(out_dir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(dump(j))
        written.append(path)
        if not board.has_uboot and not os.path.exists(os.path.join(out_dir, OVERLAY_CARRIER)):
            write_overlay_carrier(os.path.join(out_dir, OVERLAY_CARRIER))
    return written, left_out


def write_overlay_carrier(path):
    """The empty tar the QEMU jobs carry LAVA's overlay in (publish it
    beside each QEMU board's files)."""
    with tarfile.open(path, "w"):
        pass


# ---- the job's log ----------------------------------------------------------

def read_log(path):
    """The entries of a lava-run log (its standard output: one JSON object
    {dt, lvl, msg} per line; a LAVA server's job log, output.yaml, is the
    same as a YAML list: lines "- {...}")."""
    entries = []
    with open(path, errors="replace") as f:
        for number, line in enumerate(f, 1):
            text = line[2:] if line.startswith("- {") else line
            if not text.startswith("{"):
                continue
            try:
                item = json.loads(text)
            except ValueError:
                try:
                    yaml = _yaml()
                    item = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
                except yaml.YAMLError:
                    raise LavaError(f"{path}:{number}: not a lava-run log line") from None
            if isinstance(item, dict):
                entries.append(item)
    return entries


def console_lines(entries):
    """The device's console lines of a log (level target)."""
    out = []
    for e in entries:
        if e.get("lvl") == "target" and isinstance(e.get("msg"), str):
            out.append(e["msg"])
    return out


def results(entries):
    """The test case results of a log: a list of dicts (definition, case,
    result, and measurement/units where given)."""
    return [e["msg"] for e in entries if e.get("lvl") == "results" and isinstance(e.get("msg"), dict)]


def extract_bundle(lines, out_dir):
    """The bundle between the marker lines of LINES (console lines), written
    to OUT_DIR/NAME.tar.gz and unpacked beside it; its size and SHA-256 are
    those the device printed. Returns the bundle's directory."""
    begin = None
    for i, line in enumerate(lines):
        m = BUNDLE_BEGIN.search(line)
        if m:
            begin = (i, m)
    if begin is None:
        raise LavaError("no 'rtflex-bundle-begin' line in the log: the device printed no bundle")
    i, m = begin
    name, size, digest = m.group(1), int(m.group(2)), m.group(3)
    if "/" in name or name.startswith("."):
        raise LavaError(f"bad bundle name {name!r}")
    body = []
    for line in lines[i + 1:]:
        if line.strip().startswith(BUNDLE_END):
            break
        body.append(line.strip())
    else:
        raise LavaError(f"the bundle {name} in the log has no end line: the log is cut off")
    try:
        data = base64.b64decode("".join(body), validate=True)
    except ValueError as e:
        raise LavaError(f"the bundle {name} in the log is not base64: {e}") from None
    if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
        raise LavaError(f"the bundle {name} in the log is damaged: {len(data)} bytes with SHA-256 "
                        f"{hashlib.sha256(data).hexdigest()}, the device sent {size} bytes with {digest}")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    with open(path, "wb") as f:
        f.write(data)
    top = name[:-len(".tar.gz")]
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if member.name != top and not member.name.startswith(top + "/") or ".." in member.name.split("/") \
                    or not (member.isfile() or member.isdir()):
                raise LavaError(f"{path}: unexpected member {member.name}")
        tar.extractall(out_dir)
    return os.path.join(out_dir, top)


# ---- a local run with lava-dispatcher ----------------------------------------

def render_device(job_dict, template=DEVICE_TEMPLATE):
    """The device configuration of the local QEMU device: the device
    dictionary rendered with the job's context (what a LAVA server does
    with its device type template)."""
    try:
        import jinja2
    except ImportError:
        raise LavaError("python3-jinja2 missing (lava-dispatcher depends on it)") from None
    with open(template) as f:
        text = f.read()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    try:
        return env.from_string(text).render(**job_dict.get("context", {}))
    except jinja2.UndefinedError as e:
        raise LavaError(f"{template}: the job's context lacks a value: {e}") from None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_run(board, kernel, dtb, sdcard, work_dir, lab_options, test_minutes=60, verbose=False):
    """Run BOARD's job with lava-run on this machine: its files copied into
    WORK_DIR/files, the job, the device configuration and the dispatcher's
    configuration written beside, an HTTP server on 127.0.0.1 for the test
    overlay (the guest reaches it as 10.0.2.2, QEMU's user network), lava-run's
    log in WORK_DIR/lava-run.log, the bundle in WORK_DIR/bundle/. Returns
    (lava-run's exit status, the results, the bundle's directory or None,
    problems)."""
    from . import bundle as bundle_mod

    if board.has_uboot:
        raise LavaError(f"{board.name} boots through U-Boot on a real board: no local run (QEMU boards only)")
    lava_run = shutil.which("lava-run")
    if not lava_run:
        raise LavaError("lava-run not found: install Debian's lava-dispatcher (scripts/setup-host.sh --lava)")
    if os.geteuid() != 0:
        raise LavaError("lava-run needs root (it works in /var/lib/lava/dispatcher)")
    work_dir = os.path.abspath(work_dir)
    files_dir = os.path.join(work_dir, "files")
    if os.path.exists(work_dir):
        shutil.rmtree(work_dir)
    os.makedirs(files_dir)
    names = image_files(board)
    for src in (kernel, dtb, sdcard):
        if not os.path.isfile(src):
            raise LavaError(f"{src} missing: run 'make image' first")
    # The DTB as QEMU boots it for this board (e.g. vexpress-a15: only the
    # CPUs QEMU has), as the farm must publish it.
    dtb = qemu.dtb_for_qemu(board, dtb, os.path.join(work_dir, "dtb"))
    for key, src in (("kernel", kernel), ("dtb", dtb), ("rootfs", sdcard)):
        shutil.copyfile(src, os.path.join(files_dir, names[key]))
    write_overlay_carrier(os.path.join(files_dir, names["lava-overlay"]))
    j = job(board, "file://" + files_dir, lab_options, test_minutes, job_name=f"rtflex lab, local run on {board.name}")
    validate(j)
    port = _free_port()
    paths = {n: os.path.join(work_dir, n) for n in ("job.yaml", "device.yaml", "dispatcher.yaml", "lava-run.log")}
    with open(paths["job.yaml"], "w") as f:
        f.write(dump(j))
    with open(paths["device.yaml"], "w") as f:
        f.write(render_device(j))
    with open(paths["dispatcher.yaml"], "w") as f:
        f.write(f"# the guest reaches the host's 127.0.0.1:{port} as 10.0.2.2 (QEMU user network)\n"
                f"dispatcher_http_ip: '10.0.2.2:{port}'\n")
    download_dir = "/var/lib/lava/dispatcher"
    os.makedirs(os.path.join(download_dir, "tmp"), exist_ok=True)
    http = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", download_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job_id = str(int(time.time()))
    cmd = [lava_run, "--job-id", job_id, "--output-dir", os.path.join(work_dir, "output"),
           "--device", paths["device.yaml"], "--dispatcher", paths["dispatcher.yaml"], paths["job.yaml"]]
    print("rtflex lava: " + shlex.join(cmd), flush=True)
    env = dict(os.environ, QEMU_AUDIO_DRV="none")
    try:
        with open(paths["lava-run.log"], "w") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace", env=env)
            for line in proc.stdout:
                log.write(line)
                if verbose:
                    sys.stdout.write(line)
            rc = proc.wait()
    finally:
        http.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            http.wait(timeout=10)
    entries = read_log(paths["lava-run.log"])
    problems = []
    bundle_dir = None
    try:
        bundle_dir = extract_bundle(console_lines(entries), os.path.join(work_dir, "bundle"))
    except LavaError as e:
        problems.append(str(e))
    if bundle_dir:
        try:
            problems += [f"bundle: {p}" for p in bundle_mod.check(bundle_mod.load(bundle_dir))]
        except bundle_mod.BundleError as e:
            problems.append(f"bundle: {e}")
    return rc, results(entries), bundle_dir, problems


UBOOT_DEVICE = os.path.join(TOP, "lava", "devices", "u-boot-validate.yaml")
# The actions the pipeline of a U-Boot board's job must have, in order.
UBOOT_PIPELINE = ["deploy-flasher", "compress-overlay", "bootloader-interrupt", "bootloader-commands",
                  "auto-login-action", "expect-shell-connection", "overlay-unpack", "lava-test-shell"]


def pipeline_names(description):
    """The action names of a lava-run --validate description, depth first."""
    out = []

    def walk(actions):
        for a in actions:
            out.append(a.get("name"))
            walk(a.get("pipeline", []))
    walk(description.get("pipeline", []))
    return out


def pipeline_problem(names, wanted=UBOOT_PIPELINE):
    """What is wrong with the action NAMES of a pipeline: the first of
    WANTED missing (in WANTED's order); None when all are there."""
    at = 0
    for i, want in enumerate(wanted):
        if want not in names[at:]:
            return f"the pipeline lacks {want}" + (f" after {wanted[i - 1]}" if i else "")
        at = names.index(want, at) + 1
    return None


def check_pipelines(work_dir, top=TOP):
    """lava-run --validate every U-Boot board's job on the device
    configuration UBOOT_DEVICE (placeholder files under WORK_DIR): the
    pipeline builds and has the actions of UBOOT_PIPELINE in order. Returns
    (board, problem or None) pairs."""
    lava_run = shutil.which("lava-run")
    if not lava_run:
        raise LavaError("lava-run not found: install Debian's lava-dispatcher (scripts/setup-host.sh --lava)")
    out = []
    for name in board_names(top):
        board = load_board(name, top)
        if not board.has_uboot or not has_job(board)[0]:
            continue
        d = os.path.join(os.path.abspath(work_dir), name)
        os.makedirs(d, exist_ok=True)
        for f in image_files(board).values():
            open(os.path.join(d, f), "wb").close()
        path = os.path.join(d, "job.yaml")
        with open(path, "w") as f:
            f.write(dump(job(board, "file://" + d)))
        proc = subprocess.run([lava_run, "--validate", "--job-id", "1", "--output-dir", os.path.join(d, "output"),
                               "--device", UBOOT_DEVICE, path], capture_output=True, text=True)
        with open(os.path.join(d, "lava-run.log"), "w") as f:
            f.write(proc.stdout + proc.stderr)
        problem = None
        if proc.returncode != 0:
            problem = f"lava-run --validate exit status {proc.returncode} (log {d}/lava-run.log)"
        else:
            with open(os.path.join(d, "output", "description.yaml")) as f:
                problem = pipeline_problem(pipeline_names(_yaml().safe_load(f)))
        out.append((name, problem))
    return out


def summarize(cases):
    """Lines: every test case and measurement of a job's results."""
    lines = []
    for c in cases:
        m = f" {c['measurement']} {c.get('units', '')}".rstrip() if "measurement" in c else ""
        lines.append(f"{c.get('definition', '?')}: {c.get('case', '?')}: {c.get('result', '?')}{m}")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m rtflex.lava", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    j = sub.add_parser("jobs", help="write the LAVA job of every board (or --board) into --out-dir")
    j.add_argument("--base-url", required=True,
                   help="where the farm finds a board's files (may contain {board}, e.g. "
                        "https://files.example/rtflex/{board}); docs/lava.md lists them")
    j.add_argument("--out-dir", required=True)
    j.add_argument("--board", action="append", help="only this board (repeatable)")
    j.add_argument("--lab-options", default=LAB_OPTIONS, help="options of the lab's runner (default %(default)s)")
    j.add_argument("--test-minutes", type=int, default=60, help="the test's timeout (default %(default)s)")
    v = sub.add_parser("validate", help="check job files against lava-common's schema")
    v.add_argument("jobs", nargs="+", metavar="JOB")
    r = sub.add_parser("run", help="run a QEMU board's job here with lava-run (as root)")
    r.add_argument("--board", required=True)
    r.add_argument("--kernel", required=True)
    r.add_argument("--dtb", required=True)
    r.add_argument("--sdcard", required=True)
    r.add_argument("--work-dir", required=True)
    r.add_argument("--lab-options", default="--duration=2 --loads=idle,hackbench --tools=cyclictest,rtlat",
                   help="options of the lab's runner (default: %(default)s)")
    r.add_argument("--test-minutes", type=int, default=30)
    r.add_argument("-v", "--verbose", action="store_true", help="echo lava-run's log")
    c = sub.add_parser("pipelines", help="lava-run --validate the U-Boot boards' jobs on a minimal device")
    c.add_argument("--work-dir", required=True)
    b = sub.add_parser("bundle", help="write the bundle a job printed into its lava-run log")
    b.add_argument("log")
    b.add_argument("--out-dir", required=True)
    s = sub.add_parser("results", help="the test cases of a lava-run log")
    s.add_argument("log")
    args = p.parse_args(argv)
    try:
        if args.command == "jobs":
            written, left_out = write_jobs(args.out_dir, args.base_url, args.board, args.lab_options,
                                           args.test_minutes)
            for path in written:
                print(path)
            for why in left_out:
                print(f"rtflex lava: no job for {why}", file=sys.stderr)
        elif args.command == "validate":
            for path in args.jobs:
                with open(path) as f:
                    validate(_yaml().safe_load(f))
                print(f"{path}: valid (lava-common's job schema)")
        elif args.command == "run":
            rc, cases, bundle_dir, problems = local_run(
                load_board(args.board), args.kernel, args.dtb, args.sdcard, args.work_dir, args.lab_options,
                args.test_minutes, args.verbose)
            for line in summarize(cases):
                print(line)
            lab = [c for c in cases if c.get("definition", "").endswith("rtflex-lab")]
            failed = [c for c in lab if c.get("result") == "fail"]
            job_ok = any(c.get("case") == "job" and c.get("result") == "pass" for c in cases)
            if bundle_dir:
                print(f"rtflex lava: bundle {bundle_dir} (make lab-report BUNDLE={bundle_dir})")
            for problem in problems:
                print(f"rtflex lava: {problem}")
            if not any(c.get("case") == "rtflex-lab" for c in lab):
                problems.append("no rtflex-lab test case: the lab did not run to its end")
                print(f"rtflex lava: {problems[-1]}")
            ok = rc == 0 and job_ok and not failed and not problems
            print(f"rtflex lava: lava-run exit status {rc}, job {'complete' if job_ok else 'not complete'}, "
                  f"{len(lab)} rtflex-lab test cases, {len(failed)} failed, log {args.work_dir}/lava-run.log: "
                  f"{'PASS' if ok else 'FAIL'}")
            return 0 if ok else 1
        elif args.command == "pipelines":
            results_ = check_pipelines(args.work_dir)
            for name, problem in results_:
                print(f"{name}: {problem or 'the job builds its pipeline (lava-run --validate): ' + ', '.join(UBOOT_PIPELINE)}")
            return 1 if any(p for _, p in results_) else 0
        elif args.command == "bundle":
            print(extract_bundle(console_lines(read_log(args.log)), args.out_dir))
        else:
            for line in summarize(results(read_log(args.log))):
                print(line)
    except (LavaError, BoardError, OSError) as e:
        print(f"rtflex: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
