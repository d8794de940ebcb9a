"""Profiles, the run context and the report: what every scenario shares.

A scenario is a function ``(Context) -> Section``: it starts the processes it
needs (``benchmarks._procs``), measures, and returns a section of the report
(markdown with its tables, the JSON data, the plots it drew). The suite prints
each section as it completes and writes ``results/<scenario>.json`` and
``results/REPORT.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from benchmarks._litellm import LiteLLM


@attrs.frozen(kw_only=True)
class Profile:
    """Sizes for one run of the suite."""

    name: str
    #: runs of the figures the targets are judged on ((a), the c=64 gateway point, (c)),
    #: alternated; the verdict reads their range
    repeats: int
    #: (a) sequential calls per system in each run, and warm-up calls
    inproc_calls: int
    inproc_warmup: int
    #: (b) closed-loop concurrencies (the decisive one measured ``repeats`` times), open-loop
    #: rates, seconds per point, warm-up seconds
    concurrencies: tuple[int, ...]
    rates: tuple[float, ...]
    point_s: float
    warmup_s: float
    #: (c) streamed calls per system (over all runs)
    stream_calls: int
    #: (d) RSS checkpoints (calls through the gateway), and load concurrency
    memory_checkpoints: tuple[int, ...]
    memory_concurrency: int
    #: (e) calls and concurrency of the failover mix
    failover_calls: int
    failover_concurrency: int
    #: (f) calls per policy of the learning scenario
    learning_calls: int
    #: whether LiteLLM takes part
    litellm: bool = True
    #: (b) the closed-loop concurrency the gateway ratios are read at
    decisive_concurrency: int = 64
    #: load the memory scenario applies to LiteLLM's proxy too
    memory_litellm: bool = False


SMOKE = Profile(
    name="smoke",
    repeats=2,
    inproc_calls=20,
    inproc_warmup=5,
    concurrencies=(1, 4),
    rates=(50.0,),
    point_s=0.3,
    warmup_s=0.1,
    stream_calls=5,
    memory_checkpoints=(50, 100, 150),
    memory_concurrency=4,
    failover_calls=50,
    failover_concurrency=8,
    learning_calls=40,
    litellm=False,
    decisive_concurrency=4,
)
QUICK = Profile(
    name="quick",
    repeats=3,
    inproc_calls=500,
    inproc_warmup=100,
    concurrencies=(1, 16, 64, 256),
    rates=(100.0, 200.0),
    point_s=2.0,
    warmup_s=0.5,
    stream_calls=150,
    memory_checkpoints=(1_000, 3_000, 6_000),
    memory_concurrency=32,
    failover_calls=600,
    failover_concurrency=32,
    learning_calls=2_000,
)
FULL = Profile(
    name="full",
    repeats=5,
    inproc_calls=2_000,
    inproc_warmup=500,
    concurrencies=(1, 16, 64, 256),
    rates=(100.0, 200.0, 400.0, 800.0),
    point_s=8.0,
    warmup_s=2.0,
    stream_calls=1_000,
    memory_checkpoints=(10_000, 50_000, 100_000),
    memory_concurrency=32,
    failover_calls=5_000,
    failover_concurrency=32,
    learning_calls=2_000,
    memory_litellm=True,
)
PROFILES = {p.name: p for p in (SMOKE, QUICK, FULL)}


@attrs.define(kw_only=True)
class Context:
    """What a scenario gets: sizes, a scratch folder, where results go, LiteLLM."""

    profile: Profile
    workdir: Path
    results: Path
    litellm: LiteLLM | None = None
    #: why LiteLLM is not measured (printed in each section that would have it)
    litellm_note: str | None = None
    #: figures other scenarios' sections may quote (upstream ceiling...)
    notes: dict[str, Any] = attrs.field(factory=dict)
    #: what the run measures on (``_util.machine_info``), read as it starts
    machine: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Section:
    """One scenario's part of the report."""

    key: str
    title: str
    markdown: str
    data: dict[str, Any]
    plots: tuple[str, ...] = ()


Scenario = Callable[[Context], Section]
