"""The control-loop benchmark's part of the bench report (make
bench-control, docs/control-app-bench.md): one table row per run of the
guest's run-bench-control (its runs call control_loop LOG_VIA LOAD), from
the four parts of the run's output: [run] the command and servo's summary,
[decode] `servo decode --summary` of its log, [plant] plant-sim's summary,
[cpu] the servo process's CPU time (clock ticks of /proc/PID/stat, 100 a
second on ARM) over the middle seconds of the run."""

import re

TOOL = "control_loop"


def sections(text):
    """The [name] parts of a control_loop output: name -> list of lines."""
    out, name = {}, None
    for line in (text or "").splitlines():
        m = re.fullmatch(r"\[(\w+)\]", line.strip())
        if m:
            name = m.group(1)
            out[name] = []
        elif name is not None:
            out[name].append(line)
    return out


def key_values(lines):
    """`key: value` lines -> dict (the first of a repeated key)."""
    out = {}
    for line in lines:
        key, sep, value = line.partition(": ")
        if sep and key.strip() and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


def stats(text):
    """'min 1 avg 2 p99 3 max 4' -> {'min': 1, ...} (integers)."""
    words = (text or "").split()
    return {k: int(v) for k, v in zip(words[::2], words[1::2]) if v.lstrip("-").isdigit()}


def parse_run(text):
    """The numbers of one run's output (ValueError if its parts are
    missing). Times in ns, CPU time in s."""
    parts = sections(text)
    if "run" not in parts:
        raise ValueError("no [run] part in its output")
    run = key_values(parts["run"])
    if "cycles" not in run:
        raise ValueError("servo printed no summary")
    decode = key_values(parts.get("decode", []))
    cpu = key_values(parts.get("cpu", []))
    late = re.search(r"(\d+) late", " ".join(parts.get("plant", [])))
    # min/avg/max of every cycle from servo itself; p99 from the log (over
    # the records that reached it).
    latency = stats(decode.get("latency_ns"))
    latency.update(stats(run.get("latency_ns")))
    loop = stats(decode.get("loop_ns"))
    loop.update(stats(run.get("loop_ns")))
    return {
        "command": run.get("command", ""),
        "cycles": int(run["cycles"]),
        "overruns": int(run.get("overruns", "0")),
        "written": int(run.get("records_written", "0")),
        "lost": int(run.get("records_lost", "0")),
        "missing": int(decode["missing"]) if "missing" in decode else None,
        "latency": latency,
        "loop": loop,
        "cpu_us_per_cycle": cpu_per_cycle(cpu, run.get("interval_us", "1000")),
        "plant_late": int(late.group(1)) if late else None,
        "state": run.get("state", "?"),
        "fault": run.get("fault", "none"),
    }


USER_HZ = 100


def cpu_per_cycle(cpu, interval_us):
    """CPU µs per control cycle from the [cpu] part: `ticks` clock ticks
    (USER_HZ) in `seconds` seconds of cycles of `interval_us`."""
    try:
        ticks, seconds, interval = int(cpu["ticks"]), float(cpu["seconds"]), int(interval_us)
    except (KeyError, ValueError):
        return None
    if seconds <= 0 or interval <= 0:
        return None
    return ticks / USER_HZ * 1e6 / (seconds * 1e6 / interval)


def _us(ns):
    return "n/a" if ns is None else f"{ns / 1000:.0f}"


def section(runs, output):
    """Markdown lines and failures for the control_loop RUNS; OUTPUT(run)
    is a run's captured output."""
    out = [
        "### Control loop: servo at 1 kHz against plant-sim, per telemetry path and load",
        "",
    ]
    failures = []
    rows, commands = [], []
    for run in runs:
        via, load = (run.command[1:3] + ["?", "?"])[:2]
        try:
            r = parse_run(output(run))
        except ValueError as e:
            failures.append(f"{run.name}: {e}")
            rows.append((via, load, None))
            continue
        rows.append((via, load, r))
        commands.append(r["command"])
    # The no-log run of each load: the loop's own worst case.
    base = {load: r["latency"].get("max") for via, load, r in rows if via == "none" and r}
    out += [
        "One row per run: `servo run` as in the commands below, `--log` on the SD card's ext4 "
        "root (fdatasync every second). Latency: wake-up latency of the loop (µs); loop: its "
        "wake-up to the record handed to the log path (µs), the loop's own time per cycle; "
        "CPU/cycle: CPU time of the whole servo process (every thread, io_uring's and FlexSC's "
        "kernel threads included) per cycle over the middle of the run (µs, from 10 ms clock "
        "ticks); max/none: the latency max over the no-log run's under the same "
        "load; p99: over the records in the log (min, avg and max: every cycle, from servo's own "
        "summary); lost: records the log path dropped; plant late: plant-sim steps that woke a whole "
        "period late; end: how servo's run ended (run: at its duration; a fault: it stopped "
        "there, outputs safe).",
        "",
        "| log | load | cycles | lat min | lat avg | lat p99 | lat max | max/none | loop avg "
        "| loop max | CPU/cycle | overruns | lost | plant late | end |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for via, load, r in rows:
        if r is None:
            out.append(f"| {via} | {load} | failed | | | | | | | | | | | | |")
            continue
        lat, loop = r["latency"], r["loop"]
        ratio = (f"{lat['max'] / base[load]:.2f}" if base.get(load) and "max" in lat else "n/a")
        cpu = "n/a" if r["cpu_us_per_cycle"] is None else f"{r['cpu_us_per_cycle']:.0f}"
        lost = r["lost"] if r["missing"] is None else max(r["lost"], r["missing"])
        out.append(
            f"| {via} | {load} | {r['cycles']} | {_us(lat.get('min'))} | {_us(lat.get('avg'))} "
            f"| {_us(lat.get('p99'))} | {_us(lat.get('max'))} | {ratio} | {_us(loop.get('avg'))} "
            f"| {_us(loop.get('max'))} | {cpu} | {r['overruns']} | {lost} "
            f"| {'n/a' if r['plant_late'] is None else r['plant_late']} "
            f"| {r['state'] if r['fault'] == 'none' else 'fault: ' + r['fault']} |")
    out += ["", "Commands (each run: `servo run` with these options):", ""]
    out += [f"- `{c}`" for c in dict.fromkeys(commands)]
    out.append("")
    return out, failures
