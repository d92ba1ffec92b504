"""Boot a guest in QEMU and watch it: the console into a log (and the
kernel-problem scan), the results port into a file, until the guest sends
its end frame, panics, times out or falls silent."""

import os
import re
import shlex
import socket
import subprocess
import threading
import time

from . import protocol
from .problems import ConsoleProblems


def log(message):
    print(f"[rtflex] {message}", flush=True)


class Boot:
    """What a guest boot left: the results stream (text and parsed), the
    console's problem lines, why it stopped early (None if it did not),
    and the paths of both logs."""

    def __init__(self, text, problems, why, results_path, console_path):
        self.text = text
        self.results = protocol.parse(text)
        self.problems = problems
        self.why = why
        self.results_path = results_path
        self.console_path = console_path


def read_results(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def boot(cmd, results_path, console_path, timeout, stall=None, on_stall=None, verbose=False,
         ended_grace=30):
    """Run the QEMU command CMD, whose results port writes RESULTS_PATH;
    the console (its stdout) goes to CONSOLE_PATH. Stops QEMU when the
    guest panics, after TIMEOUT host seconds, after STALL seconds without
    results (then `why` includes on_stall()'s words, e.g. the CPU state),
    or ENDED_GRACE seconds after the end frame if it does not power off."""
    for p in (results_path, console_path):
        if os.path.exists(p):
            os.remove(p)
    log(shlex.join(cmd))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    problems = ConsoleProblems()

    def pump():
        with open(console_path, "wb") as out:
            for raw in proc.stdout:
                out.write(raw)
                out.flush()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if verbose:
                    print("  | " + line, flush=True)
                problems.feed(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    why = None
    ended_at = None
    last_size, last_growth = -1, time.monotonic()
    while proc.poll() is None:
        now = time.monotonic()
        if protocol.parse(read_results(results_path)).ended:
            ended_at = ended_at or now
            if now - ended_at > ended_grace:  # ended but did not power off
                proc.kill()
                break
        elif problems.panicked():
            why = "kernel panic"
            time.sleep(2)  # the rest of the panic message
            proc.kill()
            break
        elif now - start > timeout:
            why = f"timeout after {timeout:.0f} s"
            proc.kill()
            break
        elif stall:
            size = os.path.getsize(results_path) if os.path.exists(results_path) else 0
            if size != last_size:
                last_size, last_growth = size, now
            elif now - last_growth > stall:
                why = f"no output from the guest for {stall:.0f} s (hung)"
                if on_stall:
                    why += "; " + on_stall()
                proc.kill()
                break
        time.sleep(0.5)
    proc.wait()
    reader.join(timeout=5)
    text = read_results(results_path)
    result = Boot(text, problems, why, results_path, console_path)
    if why is None and not result.results.ended:
        result.why = f"guest stopped before finishing (qemu exit {proc.returncode})"
    log(f"guest ran {time.monotonic() - start:.1f} s; console log: {console_path}")
    return result


def monitor_command(path, command):
    """One QEMU human-monitor command over its unix socket; its output."""
    out = b""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(3)
            sock.connect(path)
            sock.sendall(command.encode() + b"\n")
            time.sleep(1)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                out += data
    except OSError:
        pass
    return out.decode("utf-8", "replace").replace("\r", "")


def kernel_symbol(system_map, pc):
    """The symbol+offset of address PC in a kernel System.map, or ''."""
    best = None
    try:
        with open(system_map) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[1] in "tTwW":
                    addr = int(parts[0], 16)
                    if addr <= pc and (best is None or addr > best[0]):
                        best = (addr, parts[2])
    except OSError:
        return ""
    return f"{best[1]}+{pc - best[0]:#x}" if best else ""


# Kernel addresses of the ARM 3G/1G split start at PAGE_OFFSET 0xC0000000;
# modules sit just below, from 0xBF000000.
KERNEL_SPACE = 0xBF000000


def cpu_state(monitor, system_map, samples=5):
    """Where a hung guest's CPU is: a few samples of PC, mode and symbol,
    read over the QEMU monitor socket MONITOR."""
    lines = []
    for _ in range(samples):
        regs = monitor_command(monitor, "info registers")
        pc = re.search(r"R15=([0-9a-f]{8})", regs)
        psr = re.search(r"PSR=([0-9a-f]{8}) \S+ (\w+)", regs)
        if not pc:
            lines.append("(no registers from the QEMU monitor)")
            break
        addr = int(pc.group(1), 16)
        where = kernel_symbol(system_map, addr) if addr >= KERNEL_SPACE else "user space"
        lines.append(f"pc {addr:#010x} ({where}), psr {psr.group(1) if psr else '?'} "
                     f"{psr.group(2) if psr else ''}")
        time.sleep(1)
    return "CPU: " + "; ".join(lines)
