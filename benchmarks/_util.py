"""Small shared helpers: percentiles, markdown tables, JSON results, process metrics.

Nothing here starts processes or runs an event loop.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, mean and max of durations given in seconds, in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": float(len(ms)),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms) if ms else math.nan,
        "max_ms": max(ms) if ms else math.nan,
    }


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, lowest and highest of one figure over repeated runs (NaN runs left out)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    return {
        "median": statistics.median(kept) if kept else math.nan,
        "min": min(kept) if kept else math.nan,
        "max": max(kept) if kept else math.nan,
        "runs": len(kept),
        "values": kept,
    }


def verdict(values: Sequence[float], passes: Callable[[float], bool]) -> str:
    """``met`` when every run clears the target, ``not met`` when none does, else
    ``within noise``; ``-`` with no runs."""
    kept = [v for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return "-"
    cleared = [passes(v) for v in kept]
    if all(cleared):
        return "met"
    return "not met" if not any(cleared) else "within noise"


def fmt_spread(s: Mapping[str, Any], unit: str = "") -> str:
    """``0.29 ms (0.27 to 0.31, 3 runs)``: a spread's median and range."""
    if not s.get("runs"):
        return "-"
    if s["runs"] == 1:
        return f"{fmt(s['median'])}{unit} (1 run)"
    return f"{fmt(s['median'])}{unit} ({fmt(s['min'])} to {fmt(s['max'])}, {s['runs']} runs)"


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` significant places, NaN/None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value == 0.0:
            return "0"
        if abs(value) >= 10 ** (digits + 1):
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{max(digits - 2, 1)}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(cell) for cell in row) + " |")
    return "\n".join(lines)


def load_average() -> float:
    """The 1-minute load average now (NaN where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return math.nan


def source_commit(repo: Path = RESULTS_DIR.parent.parent) -> str:
    """The commit of ``repo`` being measured, ``+ uncommitted changes`` appended when
    ``switchman/`` or ``benchmarks/`` (results aside) differ from it; ``unknown`` without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        paths = ["switchman", "benchmarks", ":!benchmarks/results"]
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", *paths],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on, read when called: at the start of a run."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "commit": source_commit(),
        "loadavg_1m_at_start": load_average(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON (NaN becomes null), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(data), indent=2, sort_keys=False) + "\n", "utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def process_rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (psutil when installed, else /proc)."""
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return proc_rss_bytes(pid)
    return int(psutil.Process(pid).memory_info().rss)


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` has used (psutil, else /proc)."""
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return proc_cpu_seconds(pid)
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def proc_rss_bytes(pid: int) -> int:
    """``VmRSS`` of ``/proc/<pid>/status`` (Linux)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ProcessLookupError(pid)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of ``/proc/<pid>/stat`` in seconds (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
