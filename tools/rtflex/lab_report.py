"""The latency lab's report (docs/latency-lab.md): Markdown and a
self-contained HTML page from one or more result bundles of kind lab
(docs/result-bundle.md), each bundle one variant (its label).

    python3 -m rtflex.lab_report [--out DIR] [--reference LABEL] BUNDLE...

BUNDLE: a bundle (directory or .tar.gz), or a directory searched for
bundle directories (make lab's build/<board>/lab). Writes DIR/report.md,
DIR/report.html (the plots embedded) and DIR/plots/*.png (default DIR:
lab-report). Per run and CPU: samples, min / avg / p50 / p99 / p99.9 / max;
per tool a comparison of the variants under each load with the ratios to
the reference variant (default: rt, else the first); OSADL-style
histograms (1 us bins, log y), one curve per variant and, on SMP, one per
CPU.

Exit status: 0 written; 1 a bundle breaks the specification (each problem
is printed, e.g. the run that is missing; nothing is written); 2 a bundle
cannot be read, bad usage, or matplotlib is missing.
"""

import argparse
import base64
import html
import io
import os
import sys

from . import bundle, rtla

# The order variants and loads appear in when they are present; others
# follow in the order met.
VARIANT_ORDER = ("rt", "rt-nofeatures", "nonrt", "rt-tuned")
PERCENTILES = ("p50", "p99", "p99.9")


class ReportError(Exception):
    """Bad input: the message names the bundle and what is wrong."""


def find_bundles(paths):
    """The bundles (paths) PATHS name: each a bundle, or a directory holding
    bundle directories (searched recursively; a bundle's own .tar.gz beside
    its directory is not read twice)."""
    out = []
    for p in paths:
        if os.path.isfile(p) or os.path.isfile(os.path.join(p, "header.json")):
            out.append(p)
        elif os.path.isdir(p):
            found = sorted(root for root, _, names in os.walk(p) if "header.json" in names)
            if not found:
                raise ReportError(f"{p}: no result bundle in this directory (no header.json below it)")
            out += found
        else:
            raise ReportError(f"{p}: no such bundle or directory")
    return out


def load_all(paths):
    """The lab bundles at PATHS, checked: ReportError naming every problem."""
    bundles, problems = [], []
    for path in find_bundles(paths):
        try:
            b = bundle.load(path)
        except bundle.BundleError as e:
            raise ReportError(str(e)) from e
        if b.kind != "lab":
            raise ReportError(f"{path}: a {b.kind} bundle, not a lab bundle")
        problems += [f"{path}: {p}" for p in bundle.check(b)]
        bundles.append(b)
    if problems:
        raise ReportError("not a valid lab bundle (docs/result-bundle.md):\n  " + "\n  ".join(problems))
    labels = [b.label() for b in bundles]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ReportError(f"two bundles with the label {', '.join(dup)}: one bundle per variant")
    order = {v: i for i, v in enumerate(VARIANT_ORDER)}
    bundles.sort(key=lambda b: (order.get(b.label(), len(order)), labels.index(b.label())))
    return bundles


def _ordered(items):
    seen = []
    for x in items:
        if x not in seen:
            seen.append(x)
    return seen


def merged(run):
    """All threads of RUN together: dict of cycles, min, avg, max, the
    percentiles, the buckets (us -> count) and the overflows."""
    stats = run.thread_stats()
    buckets, over = {}, 0
    for s in stats:
        t = run.report["thread"][str(s["thread"])]
        for k, v in t["histogram"].items():
            buckets[int(k)] = buckets.get(int(k), 0) + int(v)
        over += s["cycles"] - sum(int(v) for v in t["histogram"].values())
    cycles = sum(s["cycles"] for s in stats)
    out = {"cycles": cycles, "min": min(s["min"] for s in stats), "max": max(s["max"] for s in stats),
           "avg": sum(s["avg"] * s["cycles"] for s in stats) / cycles if cycles else 0.0,
           "buckets": buckets, "overflows": over}
    for q in PERCENTILES:
        out[q] = bundle.percentile(buckets, over, float(q[1:]))
    return out


def _us(value, hist_size):
    if value is None:
        return f">{hist_size - 1}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _hist_size(b):
    words = b.header["options"]["latency_args"].split()
    return int(words[words.index("-h") + 1]) if "-h" in words else 0


def _cpu(run, thread):
    return run.report["thread"][str(thread)].get("cpu", thread)


def _table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def build(bundles, reference=None, plot_tools=None):
    """The report: (markdown lines, plots), plots a list of (name, title,
    series) (PLOT_TOOLS: the tools to draw, default all)."""
    labels = [b.label() for b in bundles]
    if reference is None:
        reference = "rt" if "rt" in labels else labels[0]
    elif reference not in labels:
        raise ReportError(f"--reference {reference}: no bundle has that label (labels: {', '.join(labels)})")
    loads = _ordered(r.entry["load"] for b in bundles for r in b.runs)
    # rtla runs have their own section: IRQ, thread and user latency.
    rtla_tools = _ordered(r.entry["tool"] for b in bundles for r in b.runs if r.is_rtla())
    tools = [t for t in _ordered(r.entry["tool"] for b in bundles for r in b.runs) if t not in rtla_tools]
    md = ["# Latency lab report", ""]
    md += [f"Variants: {', '.join(labels)} (ratios against **{reference}**). Latencies in us; "
           "p50/p99/p99.9 from the 1 us histograms (`>N`: beyond the histogram's N us).", ""]

    # The systems.
    md += ["## Systems", ""]
    rows = []
    for b in bundles:
        h, o = b.header, b.header["options"]
        host = b.host or {}
        length = f"{o['duration_s']} s" if o.get("duration_s") is not None else f"{o['loops']} loops"
        iso = ", ".join(f"{k}={v}" for k, v in h["isolation"].items() if v) or "none"
        rows.append([b.label(), h["kernel_release"], "PREEMPT_RT" if "PREEMPT_RT" in h["kernel_version"]
                     else h["kernel_version"].split(" ")[1] if " " in h["kernel_version"] else h["kernel_version"],
                     (h["config_gz_sha256"] or "none")[:12], f"{h['cpus_online']} ({h['cpu_list']})",
                     h["clocksource"], iso, o.get("tuning") or "none",
                     f"yes ({host['qemu_machine']}, -smp {host['smp']}"
                     f"{'' if host.get('icount', True) else ', no -icount: host-timed'})" if h["emulated"] and host
                     else "yes" if h["emulated"] else "no", length, h["date"]])
    md += _table(["variant", "kernel", "preemption", "config sha256", "CPUs", "clocksource", "isolation",
                  "tuning", "emulated", "per run", "date"], rows)
    md.append("")
    for b in bundles:
        h = b.header
        md.append(f"- **{b.label()}**: `{h['kernel_version']}`; command line `{h['cmdline']}`; "
                  f"sched_rt_runtime_us {h['sched_rt_runtime_us']}")
        if b.host and b.host.get("qemu_command"):
            md.append(f"  - QEMU: `{' '.join(b.host['qemu_command'])}`")
        if b.host and b.host.get("host_seconds") is not None:
            md.append(f"  - host wall-clock time (boot and matrix): {b.host['host_seconds']:.0f} s")
    md.append("")
    first = bundles[0].header["options"]
    md.append(f"Tool options (every cell): `{first['latency_args']}`")
    for tool in rtla_tools:
        md += ["", f"{tool} (its own options, the same period, priority, CPUs and length): "
               f"`{first['tools'].get(tool, '')}`"]
    md.append("")
    md += ["Loads:", ""]
    for load in loads:
        cmd = next((b.header["options"]["loads"].get(load) for b in bundles
                    if load in b.header["options"]["loads"]), "")
        md.append(f"- `{load}`: " + (f"`{cmd}`" if cmd else "nothing"))
    md.append("")

    # Comparison: variant x load, per tool.
    md += ["## Comparison", ""]
    for tool in tools:
        md += [f"### {tool}", ""]
        head = ["load"] + [f"{v} avg / max" for v in labels]
        head += [f"{v}/{reference} avg, max" for v in labels if v != reference]
        rows = []
        for load in loads:
            cells, m = [], {}
            for b in bundles:
                run = b.run(f"{load}-{tool}")
                if run is None or run.report is None:
                    cells.append("skipped" if run is not None else "-")
                    continue
                m[b.label()] = merged(run)
                cells.append(f"{m[b.label()]['avg']:.1f} / {m[b.label()]['max']}")
            for v in labels:
                if v == reference:
                    continue
                if v in m and reference in m:
                    cells.append(f"{_ratio(m[v]['avg'], m[reference]['avg'])}, "
                                 f"{_ratio(m[v]['max'], m[reference]['max'])}")
                else:
                    cells.append("-")
            rows.append([load] + cells)
        md += _table(head, rows)
        md.append("")
        # The loaded max against the same variant's idle max.
        if "idle" in loads and len(loads) > 1:
            rows = []
            for b in bundles:
                idle = b.run(f"idle-{tool}")
                if idle is None or idle.report is None:
                    continue
                base = merged(idle)["max"]
                row = [b.label()]
                for load in loads[1:]:
                    run = b.run(f"{load}-{tool}")
                    row.append(_ratio(merged(run)["max"], base) if run and run.report else "-")
                rows.append(row)
            if rows:
                md += [f"Max under load / idle max of the same variant ({tool}):", ""]
                md += _table(["variant"] + loads[1:], rows)
                md.append("")

    # Per run and CPU.
    md += ["## Runs", ""]
    plots = []
    for b in bundles:
        size = _hist_size(b)
        md += [f"### {b.label()}", ""]
        rows = []
        for run in b.runs:
            if run.is_rtla():
                continue
            if run.report is None:
                rows.append([run.name, run.entry["load"], run.entry["tool"], run.entry["io"], "-",
                             f"skipped: {run.entry.get('reason')}", "", "", "", "", "", ""])
                continue
            for s in run.thread_stats():
                rows.append([run.name, run.entry["load"], run.entry["tool"], run.entry["io"], _cpu(run, s["thread"]),
                             s["cycles"], s["min"], f"{s['avg']:.1f}"] +
                            [_us(s[q], size) for q in PERCENTILES] + [s["max"]])
        md += _table(["run", "load", "tool", "I/O", "CPU", "samples", "min", "avg", "p50", "p99", "p99.9", "max"],
                     rows)
        md.append("")
        if b.header["cpus_online"] > 1:
            for run in b.runs:
                if run.report is not None:
                    plots.append((f"{b.label()}-{run.name}-cpus", f"{b.label()}: {run.name}, per CPU",
                                  _per_cpu_series(run)))

    md += _rtla_section(bundles, loads, rtla_tools)

    # Histograms: per tool and load, one curve per variant.
    if plot_tools is not None:
        unknown = [t for t in plot_tools if t not in tools]
        if unknown:
            raise ReportError(f"--plot-tools: {', '.join(unknown)}: not among the runs' tools ({', '.join(tools)})")
        plots = [p for p in plots if any(p[0] == f"{b.label()}-{load}-{t}-cpus"
                                         for b in bundles for load in loads for t in plot_tools)]
    for tool in (tools if plot_tools is None else [t for t in tools if t in plot_tools]):
        for load in loads:
            series = []
            for b in bundles:
                run = b.run(f"{load}-{tool}")
                if run is not None and run.report is not None:
                    m = merged(run)
                    series.append((b.label(), m["buckets"], m["overflows"]))
            if series:
                plots.insert(0, (f"{tool}-{load}", f"{tool}, load {load}", series))
    plots.sort(key=lambda p: (p[0].endswith("-cpus"), p[0]))
    md += ["## Histograms", "",
           "1 us bins, logarithmic count axis, one curve per variant (all CPUs together) or per CPU.", ""]
    for name, title, _ in plots:
        md.append(f"![{title}](plots/{name}.png)")
        md.append("")
    return md, plots


RTLA_KINDS = (("irq", "IRQ"), ("thread", "thread"), ("user", "user"))


def _rtla_section(bundles, loads, rtla_tools):
    """rtla timerlat: per load the variants' thread and user latency, per
    run and CPU the IRQ, thread and user latencies with percentiles, and
    each run's auto-analysis."""
    if not rtla_tools:
        return []
    md = ["## rtla timerlat", "",
          "rtla timerlat hist with user-space threads: per CPU the timer IRQ latency, the thread latency "
          "(the measuring thread woken, in the kernel) and the user latency (back in user space, what "
          "cyclictest measures), from the kernel's timerlat tracer. Each value is rtla's (avg rounded "
          "down by rtla); percentiles from its 1 us histogram.", ""]
    for tool in rtla_tools:
        md += [f"### {tool}: variants", ""]
        rows = []
        for load in loads:
            row = [load]
            for b in bundles:
                run = b.run(f"{load}-{tool}")
                t = run.timerlat if run is not None else None
                if t is None:
                    row.append("skipped" if run is not None and run.entry.get("status") == "skipped" else "-")
                    continue
                row.append(" / ".join(f"{max(t.columns[c][k].max or 0 for c in t.cpus)}"
                                      for k, _ in RTLA_KINDS if k in t.kinds()))
            rows.append(row)
        md += _table(["load"] + [f"{b.label()} max IRQ / thread / user" for b in bundles], rows)
        md.append("")
        md += [f"### {tool}: runs", ""]
        rows = []
        for b in bundles:
            for run in b.runs:
                if run.entry.get("tool") != tool or run.timerlat is None:
                    continue
                t = run.timerlat
                for cpu in t.cpus:
                    row = [b.label(), run.name, cpu, t.columns[cpu].get("thread", t.columns[cpu]["irq"]).count]
                    for kind, _ in RTLA_KINDS:
                        c = t.columns[cpu].get(kind)
                        row += ([c.min, c.avg, _us(c.percentile(99), 0), _us(c.percentile(99.9), 0), c.max]
                                if c is not None and c.count else ["-"] * 5)
                    rows.append(row)
        head = ["variant", "run", "CPU", "samples"]
        for _, title in RTLA_KINDS:
            head += [f"{title} min", "avg", "p99", "p99.9", "max"]
        md += _table(head, rows)
        md.append("")
        md += [f"### {tool}: auto-analysis", "",
               "After each measuring run, under the same load, `rtla timerlat hist` with auto-analysis "
               "stops at the first sample whose thread latency reaches the measuring run's highest "
               "(`-T`), for at most as long; rtla then explains that sample (its analysis tracing "
               "is on, so the sample includes its cost).", ""]
        for b in bundles:
            for run in b.runs:
                if run.entry.get("tool") != tool or not run.is_rtla():
                    continue
                e = run.entry
                if e.get("analysis") is None:
                    md += [f"- **{b.label()}** {run.name}: no auto-analysis run (the measuring run failed)", ""]
                    continue
                text = rtla.analysis(run.analysis or "")
                head = (f"- **{b.label()}** {run.name}: threshold {e['analysis_threshold_us']} us, "
                        f"`{e['analysis_command']}`: ")
                if text is None:
                    md += [head + f"no sample reached it (exit status {e['analysis_exit_status']})", ""]
                else:
                    md += [head + "stopped there", "", "```"] + text.splitlines() + ["```", ""]
    return md


def _per_cpu_series(run):
    out = []
    for s in run.thread_stats():
        t = run.report["thread"][str(s["thread"])]
        buckets = {int(k): int(v) for k, v in t["histogram"].items()}
        out.append((f"CPU {_cpu(run, s['thread'])}", buckets, s["cycles"] - sum(buckets.values())))
    return out


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ReportError("the report's plots need matplotlib (Debian: python3-matplotlib; "
                          "'make deps' installs it, scripts/setup-host.sh), for Debian's "
                          f"/usr/bin/python3: {e}") from e
    return plt


def figure(title, series):
    """A PNG (bytes) of SERIES, [(label, buckets, overflows)], as
    OSADL-style latency histograms: 1 us bins, log y."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for label, buckets, over in series:
        if not buckets:
            continue
        xs = list(range(0, max(buckets) + 2))
        ys = [buckets.get(x, 0) for x in xs]
        ax.step(xs, ys, where="post", label=f"{label} (max bucket {max(buckets)} us"
                + (f", {over} beyond" if over else "") + ")")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.8)
    ax.set_xlabel("latency (us, 1 us bins)")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def _inline(text):
    """Markdown's inline code and bold as HTML, the rest escaped."""
    out, code = [], False
    for i, part in enumerate(text.split("`")):
        if code:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            bits = part.split("**")
            out.append("".join(f"<b>{html.escape(x)}</b>" if j % 2 else html.escape(x) for j, x in enumerate(bits)))
        code = not code
    return "".join(out)


def to_html(md, images):
    """The Markdown this module writes (headings, tables, lists, images,
    paragraphs) as one HTML page with the images (name -> PNG bytes)
    embedded."""
    body, table, pre = [], None, None
    for line in md + [""]:
        if pre is not None:
            if line == "```":
                body.append("<pre>" + html.escape("\n".join(pre)) + "</pre>")
                pre = None
            else:
                pre.append(line)
            continue
        if line == "```":
            pre = []
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if table is None:
                table = [cells]
            elif not all(set(c) <= {"-"} for c in cells):
                table.append(cells)
            continue
        if table is not None:
            body.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in table[0]) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in table[1:]]
            body.append("</table>")
            table = None
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("!["):
            title, name = line[2:].split("](plots/", 1)
            name = name.rstrip(")")[:-len(".png")]
            data = base64.b64encode(images[name]).decode()
            body.append(f'<figure><img alt="{html.escape(title[:-1])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(title[:-1])}</figcaption></figure>")
        elif line.lstrip().startswith("- "):
            body.append(f"<ul><li>{_inline(line.lstrip()[2:])}</li></ul>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;"
             "margin:0.5em 0}td,th{border:1px solid #999;padding:2px 6px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}code{font-size:90%}img{max-width:100%}"
             "pre{background:#f4f4f4;padding:4px;font-size:85%}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Latency lab report</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write(bundles, out_dir, reference=None, plot_tools=None):
    """Write report.md, report.html and plots/ into OUT_DIR; return the
    paths of the Markdown and HTML files."""
    md, plots = build(bundles, reference, plot_tools)
    _pyplot()
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    for old in os.listdir(os.path.join(out_dir, "plots")):
        os.remove(os.path.join(out_dir, "plots", old))
    images = {}
    for name, title, series in plots:
        images[name] = figure(title, series)
        with open(os.path.join(out_dir, "plots", f"{name}.png"), "wb") as f:
            f.write(images[name])
    md_path, html_path = os.path.join(out_dir, "report.md"), os.path.join(out_dir, "report.html")
    with open(md_path, "w") as f:
        f.write("\n".join(md) + "\n")
    with open(html_path, "w") as f:
        f.write(to_html(md, images))
    return md_path, html_path


def main(argv=None):
    p = argparse.ArgumentParser(prog="rtflex.lab_report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", nargs="+", metavar="BUNDLE")
    p.add_argument("--out", default="lab-report", metavar="DIR", help="where the report goes (default lab-report)")
    p.add_argument("--reference", metavar="LABEL", help="the variant ratios are against (default rt)")
    p.add_argument("--plot-tools", metavar="LIST", help="draw histograms of these tools only (comma-separated)")
    args = p.parse_args(argv)
    try:
        bundles = load_all(args.bundles)
        md_path, html_path = write(bundles, args.out, args.reference,
                                   args.plot_tools.split(",") if args.plot_tools else None)
    except ReportError as e:
        print(f"rtflex.lab_report: error: {e}", file=sys.stderr)
        return 1 if "not a valid lab bundle" in str(e) else 2
    print(f"[rtflex] lab report: {md_path}, {html_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
