"""What every benchmark shares: sizes, result tables, percentiles, JSON output, the machine
description and process measurements (RSS, CPU time).

A benchmark is a module with ``NAME``, ``TITLE`` and ``run(size) -> BenchResult``. It prints
nothing itself and asserts no timing: it returns tables (printed by the runner) and a JSON-able
``data`` dict (written by the runner to ``bench-results/<name>.json``). This machine is shared
and noisy, so figures that count are ratios against a peer measured in the same run.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIZES = ("tiny", "medium", "full")
"""``tiny``: seconds, run by ``make test`` so no benchmark rots; ``full``: the figures reported
(``make bench``); ``medium``: in between, for quick iterations while tuning."""

DEFAULT_OUT = Path("bench-results")


def check_size(size: str) -> str:
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    return size


# --- tables ---------------------------------------------------------------------------------------
@dataclass
class Table:
    """One printed table. Cells are rendered with ``fmt_cell``; ``notes`` print under it."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(
                f"{self.title}: row has {len(cells)} cells, {len(self.columns)} wanted"
            )
        self.rows.append(list(cells))

    def render(self, markdown: bool = False) -> str:
        cells = [[fmt_cell(c) for c in row] for row in self.rows]
        if markdown:
            lines = [f"**{self.title}**", ""]
            lines.append("| " + " | ".join(self.columns) + " |")
            lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
            lines.extend("| " + " | ".join(row) + " |" for row in cells)
            lines.extend(["", *(f"- {n}" for n in self.notes)] if self.notes else [])
            return "\n".join(lines) + "\n"
        widths = [len(c) for c in self.columns]
        for row in cells:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

        def line(values: Sequence[str]) -> str:
            # First column left-aligned (labels), figures right-aligned.
            parts = [
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(values, widths, strict=True))
            ]
            return "  ".join(parts).rstrip()

        out = [self.title, line(self.columns), line(["-" * w for w in widths])]
        out.extend(line(row) for row in cells)
        out.extend(f"  * {n}" for n in self.notes)
        return "\n".join(out) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows,
                "notes": self.notes}


def fmt_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value == 0:
            return "0"
        a = abs(value)
        if a >= 1000:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:.0f}"
        if a >= 10:
            return f"{value:.1f}"
        if a >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


@dataclass
class BenchResult:
    """What a benchmark returns. ``data``: raw figures for the JSON file (JSON-able only)."""

    name: str
    size: str
    tables: list[Table]
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    load_average: tuple[float, float] | None = None
    """1-minute load average of the machine before and after the run (None where unknown):
    above the number of cores, other processes competed for the CPU."""
    steal_percent: float | None = None
    """CPU time the hypervisor took from this machine during the run, % (None where unknown)."""

    def render(self, markdown: bool = False) -> str:
        parts = [t.render(markdown) for t in self.tables]
        if self.notes:
            bullet = "- " if markdown else "  "
            parts.append("\n".join(f"{bullet}{n}" for n in self.notes) + "\n")
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "wall_seconds": round(self.wall_seconds, 3),
            "load_average_before_after": self.load_average,
            "cpu_steal_percent": self.steal_percent,
            "machine": machine_info(),
            "tables": [t.to_json() for t in self.tables],
            "notes": self.notes,
            "data": self.data,
        }


def write_json(result: BenchResult, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-able: {type(obj).__name__}")


# --- statistics -----------------------------------------------------------------------------------
def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between closest ranks; NaN for no values."""
    data = sorted(values)
    if not data:
        return math.nan
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def summary(values: Iterable[float]) -> dict[str, float]:
    """n, median, p95, p99, mean, min, max of ``values`` (NaN where empty)."""
    data = sorted(values)
    n = len(data)
    return {
        "n": n,
        "median": percentile(data, 50),
        "p95": percentile(data, 95),
        "p99": percentile(data, 99),
        "mean": sum(data) / n if n else math.nan,
        "min": float(data[0]) if n else math.nan,
        "max": float(data[-1]) if n else math.nan,
    }


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds (None and NaN pass through)."""
    return None if seconds is None else seconds * 1000.0


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b


# --- processes ------------------------------------------------------------------------------------
def rss_mb(pid: int | None = None) -> float:
    """Resident set size now, in MiB (Linux /proc); peak RSS of this process elsewhere."""
    path = f"/proc/{pid or 'self'}/status"
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the OS does not say)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) CPU ticks of the whole machine so far, from /proc/stat (None elsewhere).
    Steal is time the hypervisor gave this virtual machine's CPUs to someone else: a shared VM
    can lose a quarter of its CPU that way, which no load average shows."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:]]
    return ticks[7], sum(ticks[:8])  # user nice system idle iowait irq softirq steal


def steal_percent(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of the machine's CPU time stolen by the hypervisor between two ``cpu_ticks()``."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 100.0 * (after[0] - before[0]) / (after[1] - before[1])


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def available_memory_mb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def raise_fd_limit(wanted: int) -> int:
    """Raise the open-files soft limit towards ``wanted`` (many client sockets); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


_MACHINE: dict[str, Any] | None = None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and library versions (cached)."""
    global _MACHINE
    if _MACHINE is not None:
        return _MACHINE
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_total = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_total = round(int(line.split()[1]) / 1024.0 / 1024.0, 1)
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_total,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }
    try:
        import libtorrent

        info["libtorrent"] = libtorrent.__version__
    except ImportError:
        info["libtorrent"] = None
    try:
        import PySide6

        info["pyside6"] = PySide6.__version__
    except ImportError:
        info["pyside6"] = None
    _MACHINE = info
    return info


def describe_machine() -> str:
    m = machine_info()
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['os']}, "
        f"{m['implementation']} {m['python']}"
    )


class Stopwatch:
    """``with Stopwatch() as sw: ...; sw.seconds``: wall time of a block (perf_counter)."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
