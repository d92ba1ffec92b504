"""rtla timerlat's output (the kernel's tools/tracing/rtla), as the latency
lab's runner stores it (docs/result-bundle.md, "rtla runs"):

    from rtflex import rtla
    h = rtla.parse_hist(text)          # `rtla timerlat hist` output
    h.cpus                             # [0, 1, ...]
    h.columns[0]["thread"].max         # per CPU: "irq", "thread", "user"
    h.columns[0]["user"].percentile(99)
    rtla.analysis(text)                # the auto-analysis of `rtla timerlat hist -T`

`rtla timerlat hist` prints a '#' header, a line naming the columns
(`Index IRQ-000 Thr-000 Usr-000 IRQ-001 ...`: per CPU the IRQ, thread and,
with user-space threads, return-to-user latency), one line per non-empty
bucket (`bucket count count ...`), then `over:` (samples beyond the
histogram), `count:`, `min:`, `avg:` and `max:` per column, and an `ALL:`
section of the same rows over all CPUs. Latencies are in us (rtla's
default), avg rounded down to an integer by rtla. A column without samples
has `-` for min, avg and max.
"""

import re

KINDS = {"IRQ": "irq", "Thr": "thread", "Usr": "user"}
STAT_ROWS = ("over", "count", "min", "avg", "max")


class Column:
    """One CPU's latencies of one kind: buckets (us -> count), the samples
    beyond the histogram, and rtla's count/min/avg/max (None: no samples)."""

    def __init__(self, cpu, kind):
        self.cpu, self.kind = cpu, kind
        self.buckets = {}
        self.over = self.count = self.min = self.avg = self.max = None

    def percentile(self, q):
        """The q-th percentile (bucket in us), None beyond the histogram."""
        from .bundle import percentile  # bundle imports this module
        return percentile(self.buckets, self.over or 0, q)


class TimerlatHist:
    """A parsed `rtla timerlat hist` output."""

    def __init__(self, cpus, columns, duration):
        self.cpus = cpus              # CPU numbers, in column order
        self.columns = columns        # cpu -> {"irq"|"thread"|"user": Column}
        self.duration = duration      # the header's "Duration:" text, or None

    def kinds(self):
        """The kinds of latency present, in rtla's order."""
        return [k for k in KINDS.values() if any(k in c for c in self.columns.values())]


def _value(word, n, row):
    if word == "-":
        return None
    if not word.isdigit():
        raise ValueError(f"line {n}: {row}: {word!r} is not a number")
    return int(word)


def parse_hist(text):
    """The `rtla timerlat hist` output TEXT as a TimerlatHist; ValueError
    naming the line when it is not one (no column line, a row with the
    wrong number of values, a count that is not its buckets plus the
    overflows, no summary)."""
    heads = None
    columns = {}
    order = []
    duration = None
    seen = set()
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if line.startswith("#"):
            m = re.match(r"#\s*Duration:\s*(.*)", line)
            if m:
                duration = m.group(1).strip()
            continue
        if words[0] == "Index":
            if heads is not None:
                raise ValueError(f"line {n}: a second column line")
            heads = []
            for w in words[1:]:
                m = re.fullmatch(r"(IRQ|Thr|Usr)-(\d+)", w)
                if not m:
                    raise ValueError(f"line {n}: column {w!r} is not IRQ-N, Thr-N or Usr-N")
                cpu, kind = int(m.group(2)), KINDS[m.group(1)]
                if cpu not in columns:
                    columns[cpu] = {}
                    order.append(cpu)
                if kind in columns[cpu]:
                    raise ValueError(f"line {n}: column {w} twice")
                columns[cpu][kind] = Column(cpu, kind)
                heads.append(columns[cpu][kind])
            if not heads:
                raise ValueError(f"line {n}: no columns")
            continue
        if words[0] == "ALL:":
            break  # the all-CPU section repeats what the columns hold
        if heads is None:
            raise ValueError(f"line {n}: {line.strip()[:60]!r} before the column line (Index IRQ-000 ...)")
        row = words[0].rstrip(":") if words[0].endswith(":") else None
        if row is not None and row not in STAT_ROWS:
            # Lines rtla prints besides the histogram (e.g. a note on
            # stopping) end the table.
            if seen:
                break
            raise ValueError(f"line {n}: unknown row {words[0]!r}")
        if len(words) - 1 != len(heads):
            raise ValueError(f"line {n}: {len(words) - 1} values, {len(heads)} columns")
        if row is None:
            bucket = _value(words[0], n, "bucket")
            if bucket is None:
                raise ValueError(f"line {n}: bucket '-'")
            for col, w in zip(heads, words[1:]):
                v = _value(w, n, f"bucket {bucket}")
                if v:
                    col.buckets[bucket] = col.buckets.get(bucket, 0) + v
            continue
        if row in seen:
            raise ValueError(f"line {n}: a second {row}: row")
        seen.add(row)
        for col, w in zip(heads, words[1:]):
            setattr(col, row, _value(w, n, row + ":"))
    if heads is None:
        raise ValueError("no column line (Index IRQ-000 Thr-000 ...): not rtla timerlat hist output")
    missing = [r for r in STAT_ROWS if r not in seen]
    if missing:
        raise ValueError(f"no {', '.join(r + ':' for r in missing)} row (the output ends early)")
    for col in heads:
        name = f"CPU {col.cpu} {col.kind}"
        if col.count is None or col.over is None:
            raise ValueError(f"{name}: count or over is '-'")
        if sum(col.buckets.values()) + col.over != col.count:
            raise ValueError(f"{name}: buckets {sum(col.buckets.values())} + over {col.over} "
                             f"!= count {col.count}")
        if col.count and (col.min is None or col.max is None or col.avg is None):
            raise ValueError(f"{name}: {col.count} samples but no min, avg or max")
        if col.count and not col.min <= col.avg <= col.max:
            raise ValueError(f"{name}: min {col.min}, avg {col.avg}, max {col.max} out of order")
        if col.buckets and (min(col.buckets) < col.min or max(col.buckets) > col.max):
            raise ValueError(f"{name}: buckets {min(col.buckets)}..{max(col.buckets)} outside "
                             f"min {col.min}..max {col.max}")
    return TimerlatHist(order, columns, duration)


# The auto-analysis starts where rtla says a CPU hit the stop condition.
ANALYSIS_START = re.compile(r"^## CPU \d+ hit stop tracing, analyzing it ##", re.M)


def analysis(text):
    """The auto-analysis in the output of `rtla timerlat hist/top -T` (from
    "## CPU N hit stop tracing" to the end), or None when the run never
    reached its threshold."""
    m = ANALYSIS_START.search(text)
    return text[m.start():].rstrip() if m else None
