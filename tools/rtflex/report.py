"""Reports of guest runs: the rtlat/cyclictest comparison table and the
benchmark report. Both learn the runs from the results stream (their run
frames, commands and files); the guest scripts are the only list of them."""

import json
import os

from . import control_report
from .qemu import ICOUNT


def latency_rows(report_json):
    """(thread, cycles, min, avg, max) per thread of a cyclictest/rtlat
    --json report, by thread number. ValueError if it is not one."""
    try:
        report = json.loads(report_json)
        threads = sorted(report["thread"].items(), key=lambda kv: int(kv[0]))
        return [(int(tid), int(t["cycles"]), int(t["min"]), float(t["avg"]), int(t["max"]))
                for tid, t in threads]
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a latency report: {e!r}") from e


def own_cpu(report_json):
    """{thread: own CPU us per cycle} of an rtlat --own-cpu-time --json
    report (None for a thread without the key, e.g. cyclictest's)."""
    try:
        threads = json.loads(report_json)["thread"]
        return {int(tid): t.get("own_cpu_us_per_cycle") for tid, t in threads.items()}
    except (KeyError, TypeError, AttributeError, ValueError):
        return {}


def run_failures(results):
    """Runs that did not end with status 0."""
    out = []
    for run in results.runs:
        if run.status is None:
            out.append(f"{run.name} did not finish")
        elif run.status != 0:
            out.append(f"{run.name} exited with {run.status}")
    return out


def tool_of(run):
    """The program a run ran (basename of its command), else its name."""
    return os.path.basename(run.command[0]) if run.command else run.name


def last_line(text, default):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else default


def compare_table(results, machine):
    """The comparison of the runs of a compare boot: (lines, failures).
    Each run sent NAME.json; the difference row is the second run minus
    the first (run-compare runs cyclictest, then rtlat)."""
    failures = run_failures(results)
    rows = []
    for run in results.runs:
        try:
            rows.append((run.name, latency_rows(results.files.get(f"{run.name}.json", ""))))
        except ValueError as e:
            why = last_line(results.files.get(f"{run.name}.txt"), str(e))
            failures.append(f"{run.name}: no usable JSON report ({why})")
    if len(results.runs) != 2:
        failures.append(f"expected two runs to compare, the guest sent {len(results.runs)}")
    if failures:
        return [], failures
    (first, a), (second, b) = rows
    lines = [
        f"Wake-up latency, {machine} under QEMU -icount {ICOUNT}, Linux {results.release}",
        "(guest time follows instruction count, 8 ns per instruction: this compares",
        " code paths, it does not predict a board's microseconds)",
        f"parameters for both tools: {results.facts.get('args', '?')}",
        "",
        f"{'tool':<12}{'thread':>7}{'cycles':>9}{'min us':>9}{'avg us':>9}{'max us':>9}",
    ]
    for name, threads in rows:
        for tid, cycles, mn, avg, mx in threads:
            lines.append(f"{name:<12}{tid:>7}{cycles:>9}{mn:>9}{avg:>9.2f}{mx:>9}")
    for x, y in zip(a, b):
        lines.append(f"{'difference':<12}{x[0]:>7}{y[1] - x[1]:>9}{y[2] - x[2]:>+9}"
                     f"{y[3] - x[3]:>+9.2f}{y[4] - x[4]:>+9}")
    lines.append(f"(difference: {second} minus {first})")
    return lines, failures


def _without(words, prefix):
    """WORDS without a leading copy of PREFIX (both lists)."""
    return words[len(prefix):] if words[:len(prefix)] == prefix else words


def bench_report(results, machine, smp, icount=True):
    """The Markdown report of one bench boot and its list of failures.
    ICOUNT: whether the guest ran under -icount (guest time is the
    instruction count) or not (host-timed, one host thread per vCPU)."""
    failures = run_failures(results)
    cpus = results.facts.get("cpus", "?")
    if cpus != str(smp):
        failures.append(f"the guest saw {cpus} CPU(s), not {smp}")
    if icount:
        mode = f"QEMU -icount {ICOUNT}"
        timing = ("Guest time follows the instruction count (8 ns per instruction): the numbers "
                  "compare code paths, not a board's microseconds.")
    else:
        mode = "QEMU without -icount (host-timed)"
        timing = ("No -icount (with several vCPUs it stalls the guest in stop_machine()): each "
                  "vCPU is a host thread, so the vCPUs run in parallel as on a board, and every "
                  "time is the host's, its load included. Compare rows of this run with each "
                  "other, not with -icount runs.")
    out = [
        f"## {smp} vCPU(s): {machine}, {mode}, Linux {results.release}",
        "",
        f"Command: `make bench` (this part: `scripts/rtflex bench --smp {smp}"
        f"{'' if icount else ' --icount off'}`, "
        f"kernel command line `rtflex.mode=bench`, guest script "
        f"`/usr/libexec/rtflex/run-bench`). {timing}",
        "",
    ]
    by_tool = {}
    for run in results.runs:
        by_tool.setdefault(tool_of(run), []).append(run)

    def output(run):
        return results.files.get(f"{run.name}.txt")

    kml = by_tool.pop("kml-bench", [])
    if kml:
        commands = " and ".join(f"`{' '.join(r.command)}`" for r in kml)
        out += [
            "### kml-bench: system call entry, svc vs the Kernel Mode Linux trampoline",
            "",
            f"{commands}: the same static binary in `/usr/bin` (USR mode) and copied into "
            "`/trusted` for this run (SYS mode). The trampoline saves the exception entry "
            "and exit, which icount does not price: a real CPU pays more for them than "
            "these numbers show.",
            "",
        ]
        for run in kml:
            rows = [line for line in (output(run) or "").splitlines() if line.startswith("|")]
            if not rows:
                failures.append(f"{run.name}: no table in its output")
                out.append(f"({run.name}: no output)")
            out += rows
        out.append("")

    flexsc = by_tool.pop("flexsc-bench", [])
    if flexsc:
        out += ["### flexsc-bench: cost per call and batched throughput", ""]
        for run in flexsc:
            label = " ".join(w for w in run.command if not w.startswith("--json"))
            out += [f"`{label}`:", ""]
            body = [line for line in (output(run) or "(no output)").rstrip("\n").splitlines()
                    if not line.startswith('{"flexsc_bench":')]
            while body and not body[-1].strip():
                body.pop()
            out += body + [""]
            if f"{run.name}.json" not in results.files:
                failures.append(f"{run.name}: no JSON report")

    control = by_tool.pop(control_report.TOOL, [])
    if control:
        lines, control_failures = control_report.section(control, output)
        out += lines
        failures += control_failures

    rtlat = by_tool.pop("rtlat", [])
    if rtlat:
        common = results.facts.get("rtlat-args", "").split()
        out += [
            "### rtlat: wake-up latency with one write per cycle",
            "",
            f"`rtlat {' '.join(common)}` plus the I/O options of each row (64-byte records; "
            "`--io-file` is on tmpfs; FlexSC: one SCHED_OTHER syscall thread). "
            "own CPU: the measuring thread's own CPU time per cycle (`--own-cpu-time`; "
            "n/a without it): sleep, wake-up, sample and the I/O it does or posts.",
            "",
            "| I/O options | thread | cycles | min us | avg us | max us | own CPU us/cycle |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for run in rtlat:
            extra = [w for w in _without(run.command[1:], common) if not w.startswith("--json")]
            label = " ".join(extra) or "(none)"
            try:
                rows = latency_rows(results.files.get(f"{run.name}.json", ""))
            except ValueError as e:
                out.append(f"| `{label}` | failed: {last_line(output(run), str(e))} | | | | | |")
                failures.append(f"{run.name}: no usable JSON report")
                continue
            cpu = own_cpu(results.files.get(f"{run.name}.json", ""))
            for tid, cycles, mn, avg, mx in rows:
                c = cpu.get(tid)
                c = "n/a" if c is None else f"{c:.2f}"
                out.append(f"| `{label}` | {tid} | {cycles} | {mn} | {avg:.2f} | {mx} | {c} |")
        out.append("")

    # Runs of a program this report has no section for: their output.
    for tool, runs in by_tool.items():
        for run in runs:
            out += [f"### {run.name}: `{' '.join(run.command)}`", "", "```",
                    *(output(run) or "(no output)").rstrip("\n").splitlines(), "```", ""]
    return "\n".join(out) + "\n", failures
