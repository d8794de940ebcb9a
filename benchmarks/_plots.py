"""PNG plots of the results (matplotlib, from the ``bench`` extra).

``available()`` says whether matplotlib can be imported; each ``plot_*``
function takes a scenario's JSON data and writes one PNG, returning its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency_vs_load(gateway: dict[str, Any], path: Path) -> Path:
    """Closed loop: throughput and p50/p99 latency against concurrency, per target."""
    plt = _pyplot()
    fig, (ax_rps, ax_lat) = plt.subplots(1, 2, figsize=(11, 4.2))
    targets: dict[str, list[dict[str, Any]]] = {}
    for row in gateway["points"]:
        if row["mode"] == "closed":
            targets.setdefault(row["target"], []).append(row)
    for name, rows in targets.items():
        rows.sort(key=lambda r: r["concurrency"])
        xs = [r["concurrency"] for r in rows]
        (line,) = ax_rps.plot(xs, [r["throughput_rps"] for r in rows], marker="o", label=name)
        ax_lat.plot(
            xs, [r["p50_ms"] for r in rows], marker="o", color=line.get_color(), label=f"{name} p50"
        )
        ax_lat.plot(
            xs,
            [r["p99_ms"] for r in rows],
            marker="x",
            linestyle="--",
            color=line.get_color(),
            label=f"{name} p99",
        )
    for ax in (ax_rps, ax_lat):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients (closed loop)")
        ax.grid(True, alpha=0.3)
    ax_rps.set_yscale("log")
    ax_rps.set_ylabel("answers per second")
    ax_rps.set_title("Throughput")
    ax_rps.legend(fontsize=8)
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency, ms")
    ax_lat.set_title("Latency vs load")
    ax_lat.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_memory(memory: dict[str, Any], path: Path) -> Path:
    """RSS against calls served, per gateway."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, series in memory["series"].items():
        pts = series["points"]
        ax.plot([p["calls"] for p in pts], [p["rss_mib"] for p in pts], marker="o", label=name)
    ax.set_xlabel("calls through the gateway")
    ax.set_ylabel("RSS, MiB")
    ax.set_ylim(bottom=0)
    ax.set_title("Gateway memory vs calls")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_regret(learning: dict[str, Any], path: Path) -> Path:
    """Cumulative regret against calls, per policy."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, r in learning["policies"].items():
        curve = r["cumulative_regret"]
        ax.plot(range(1, len(curve) + 1), curve, label=name)
    ax.set_xlabel("calls")
    ax.set_ylabel("cumulative regret (expected quality)")
    ax.set_title("Learning: regret over calls")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
