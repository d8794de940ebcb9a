"""``python -m benchmarks [--smoke | --full] [--only a,b] [--no-litellm]``.

Runs the scenarios in order, prints each table as it completes, and writes
``<results>/<scenario>.json``, ``<results>/REPORT.md`` and the PNG plots. The
quick profile (default) and ``--full`` write to ``benchmarks/results/``;
``--smoke`` writes to a scratch folder, removed at the end, unless ``--results`` says otherwise,
never measures LiteLLM and never judges timings.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from benchmarks import (
    _catalog,
    _failover,
    _gateway,
    _inproc,
    _learning,
    _litellm,
    _memory,
    _plots,
    _procs,
    _stream,
    _util,
    overhead,
)
from benchmarks._suite import PROFILES, Context, Scenario, Section
from benchmarks._util import (
    RESULTS_DIR,
    fmt_spread,
    load_average,
    machine_info,
    markdown_table,
    spread,
    write_json,
)

SCENARIOS: dict[str, Scenario] = {
    "inproc": _inproc.run_section,
    "gateway": _gateway.run,
    "streaming": _stream.run,
    "memory": _memory.run,
    "failover": _failover.run,
    "learning": _learning.run,
    "catalog": _catalog.run,
}


def overhead_section(ctx: Context) -> Section:
    """The issue-2 figure: the router's own cost per call on the zero-latency simulator."""
    calls = 200 if ctx.profile.name == "smoke" else 5000
    data = trio.run(overhead.measure, calls, calls // 10)
    whole = overhead.whole_catalog(calls // 5, calls // 50)
    data["whole_catalog_median_us"] = whole
    md = (
        f"Simulator at zero latency, {data['calls']} sequential calls "
        f"(`python -m benchmarks.overhead`): median **{data['median_us']:.0f} µs** per call "
        f"(p90 {data['p90_us']:.0f}, p99 {data['p99_us']:.0f}); CPU "
        f"{data['cpu_us_per_call']:.0f} µs per call. With every catalog model on the simulator "
        f"(10 providers): `auto` {whole['auto']:.0f} µs (every eligible model ranked), the "
        f"route `claude` {whole['claude']:.0f} µs."
    )
    return Section(key="overhead", title="Router's own cost per call", markdown=md, data=data)


def _get(sections: dict[str, Section], key: str, *path: str) -> Any:
    section = sections.get(key)
    value: Any = section.data if section is not None else None
    for p in path:
        if not isinstance(value, dict) or p not in value:
            return None
        value = value[p]
    return value


def headline(sections: dict[str, Section], *, judge: bool = True) -> tuple[str, dict[str, Any]]:
    """The figures the targets are about: the median over the runs, their range, the
    target and the verdict (``met`` only if every run clears the target, ``not met`` if
    none does, else ``within noise``). ``judge`` false (tiny smoke sizes) leaves the
    verdict column empty: those figures mean nothing."""
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    ranges: dict[str, Any] = {}
    verdicts: dict[str, str] = {}

    def add(
        key: str,
        what: str,
        figure: Any,
        target: str = "-",
        passes: Callable[[float], bool] | None = None,
    ) -> None:
        if figure is None:
            return
        s = figure if isinstance(figure, dict) else spread([figure])
        data[key] = s["median"]
        ranges[key] = s
        verdict = _util.verdict(s["values"], passes) if passes is not None else "-"
        if passes is not None:
            verdicts[key] = verdict
        rows.append([what, fmt_spread(s), target, verdict if judge else "-"])

    add(
        "added_p50_ms",
        "added latency p50, in-process (ms)",
        _get(sections, "inproc", "spread", "added_p50_ms"),
        "< 0.3",
        lambda v: v < 0.3,
    )
    add(
        "cpu_ratio",
        "LiteLLM Router / switchman CPU per call",
        _get(sections, "inproc", "spread", "cpu_ratio"),
        "≥ 10x",
        lambda v: v >= 10,
    )
    add(
        "added_cpu_ratio",
        "same, CPU added over direct httpx",
        _get(sections, "inproc", "spread", "added_cpu_ratio"),
    )
    c = _get(sections, "gateway", "decisive_concurrency")
    add(
        "gateway_ratio_c64",
        f"gateway throughput vs LiteLLM proxy, c={c}",
        _get(sections, "gateway", "spread", "litellm_ratio_c64"),
        "≥ 4x",
        lambda v: v >= 4,
    )
    add(
        "gateway_share_of_direct_c64",
        f"gateway throughput / direct, c={c}",
        _get(sections, "gateway", "spread", "direct_ratio_c64"),
    )
    add(
        "gateway_cpu_ratio_c64",
        f"LiteLLM proxy / switchman gateway CPU per answer, c={c}",
        _get(sections, "gateway", "spread", "litellm_cpu_ratio_c64"),
    )
    add(
        "rss_growth_pct",
        "gateway RSS growth, first→last checkpoint (%)",
        _get(sections, "memory", "series", "switchman gateway", "growth_pct"),
        "within ±10%",
        lambda v: abs(v) <= 10,
    )
    for system, key in (("switchman embedded", "ttft_embedded"), ("switchman gateway", "ttft_gw")):
        add(
            key,
            f"streaming TTFT overhead p50, {system.split()[1]} (ms)",
            _get(sections, "streaming", "spread", system, "added_ttft_p50_ms"),
            "< 0.5",
            lambda v: v < 0.5,
        )
    # what bounds the gateway figure: the extra HTTP hop itself
    add(
        "ttft_relay",
        "same, the bare relay (ms)",
        _get(sections, "streaming", "spread", _procs.BARE_RELAY, "added_ttft_p50_ms"),
    )
    add(
        "ttft_gw_over_relay",
        "same, switchman gateway over that relay (ms)",
        _get(sections, "streaming", "spread", "gateway_over_relay", "added_ttft_p50_ms"),
    )
    add(
        "router_own_us",
        "router's own cost per call, median (µs)",
        _get(sections, "overhead", "median_us"),
    )
    table = markdown_table(["figure", "median (range, runs)", "target", "verdict"], rows)
    data["ranges"] = ranges
    data["verdicts"] = verdicts if judge else {}
    return table, data


def report(ctx: Context, sections: dict[str, Section], plots: list[str], elapsed: float) -> str:
    info = ctx.machine
    table, _ = headline(sections, judge=ctx.profile.name != "smoke")
    lines = [
        f"# switchman benchmarks — {ctx.profile.name} profile",
        "",
        f"Measured {info['when']} at commit `{info['commit']}` on {info['platform']}, Python "
        f"{info['python']}, {info['cpus']} CPUs; load average {info['loadavg_1m_at_start']} "
        f"at the start, {info['loadavg_1m_at_end']} at the end (1 minute). "
        f"Suite time {elapsed:.0f} s."
        + (f" LiteLLM {ctx.litellm.version}." if ctx.litellm else ""),
        "",
        "This machine has 2 cores shared by the load generator, the upstream and the system",
        "under test (and by other work running at the same time): read ratios, not absolutes.",
        "Method: `benchmarks/README.md`.",
        "",
        "## Headline",
        "",
        table,
    ]
    for section in sections.values():
        lines += ["", f"## {section.title}", "", section.markdown]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _plots_for(sections: dict[str, Section], results: Path) -> list[str]:
    drawn: list[str] = []
    if "gateway" in sections:
        drawn.append(
            _plots.plot_latency_vs_load(
                sections["gateway"].data, results / "latency_vs_load.png"
            ).name
        )
    if "memory" in sections:
        drawn.append(
            _plots.plot_memory(sections["memory"].data, results / "memory_vs_calls.png").name
        )
    if "learning" in sections:
        drawn.append(_plots.plot_regret(sections["learning"].data, results / "regret.png").name)
    return drawn


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny sizes, no LiteLLM (CI)")
    size.add_argument("--full", action="store_true", help="the whole suite (long)")
    parser.add_argument(
        "--only",
        help="comma-separated scenarios: overhead," + ",".join(SCENARIOS),
    )
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM")
    parser.add_argument("--results", type=Path, help="where results go")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and configs")
    return parser.parse_args(argv)


def setup_litellm(ctx: Context, skip: bool) -> None:
    if not ctx.profile.litellm:
        ctx.litellm_note = "LiteLLM is not measured in --smoke."
    elif skip:
        ctx.litellm_note = "LiteLLM skipped (--no-litellm)."
    else:
        try:
            ctx.litellm = _litellm.ensure(log=ctx.workdir / "litellm-install.log")
        except (_litellm.Unavailable, OSError) as exc:
            ctx.litellm_note = f"LiteLLM could not be set up here: {exc}"
    print(f"  LiteLLM: {ctx.litellm.version if ctx.litellm else ctx.litellm_note}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    profile = PROFILES["smoke" if args.smoke else "full" if args.full else "quick"]
    wanted = ["overhead", *SCENARIOS]
    if args.only:
        chosen = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in chosen if s not in wanted]
        if unknown:
            print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        wanted = [s for s in wanted if s in chosen]
    workdir = Path(tempfile.mkdtemp(prefix="switchman-bench-"))
    results = args.results or (workdir / "results" if profile.name == "smoke" else RESULTS_DIR)
    results.mkdir(parents=True, exist_ok=True)
    ctx = Context(profile=profile, workdir=workdir, results=results, machine=machine_info())
    print(
        f"switchman benchmarks: {profile.name} profile at {ctx.machine['commit']}, load "
        f"average {ctx.machine['loadavg_1m_at_start']}; scratch {workdir}",
        flush=True,
    )
    started = time.perf_counter()
    setup_litellm(ctx, args.no_litellm)
    started = time.perf_counter()  # LiteLLM's one-time install is not part of the run
    sections: dict[str, Section] = {}
    try:
        for key in wanted:
            fn = overhead_section if key == "overhead" else SCENARIOS[key]
            t0 = time.perf_counter()
            print(f"\n== {key}", flush=True)
            section = fn(ctx)
            sections[key] = section
            write_json(results / f"{key}.json", {"profile": profile.name, **section.data})
            print(f"\n## {section.title}\n\n{section.markdown}\n", flush=True)
            print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
        plots: list[str] = []
        if _plots.available():
            plots = _plots_for(sections, results)
        else:
            print("matplotlib is not installed: no plots (pip install -e '.[bench]')")
        elapsed = time.perf_counter() - started
        ctx.machine["loadavg_1m_at_end"] = load_average()
        smoke = profile.name == "smoke"
        table, figures = headline(sections, judge=not smoke)
        write_json(
            results / "summary.json",
            {
                "profile": profile.name,
                "machine": ctx.machine,
                "elapsed_s": elapsed,
                "figures": figures,
            },
        )
        (results / "REPORT.md").write_text(report(ctx, sections, plots, elapsed), "utf-8")
        kept = args.keep_workdir or not results.is_relative_to(workdir)
        where = (
            f"results in {results}"
            if kept
            else "results not kept (a smoke run's scratch is removed; --results DIR keeps them)"
        )
        if smoke:
            where += "; smoke sizes are too small to judge a target by"
        print(f"\n## Headline\n\n{table}\n\n{where} ({elapsed:.0f} s)", flush=True)
    finally:
        if not args.keep_workdir:  # smoke results inside it go too: the tables were printed
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
