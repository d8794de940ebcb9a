"""``switchman demo``: the whole router on a simulated fleet with injected faults, live.

::

    run_demo
     ├─ store (in memory) ─ router (demo fleet, snappy breakers) ─ gateway on 127.0.0.1:<free>
     ├─ event reader      router.subscribe(): breaker changes, refused budget reservations
     └─ traffic           N workers share one queue of planned calls (mixed routes and
                          intents, some streamed), each printing a line per finished call

The fleet (``demo_config``): ``lab-a/primary`` has scheduled outages, ``lab-a/fast``
is cheap and steady, ``lab-b/flaky`` fails, rate-limits, cuts and stalls,
``lab-b/slow`` is slow and dear, ``lab-c/refuser`` refuses often; a global hourly
budget sized from the number of calls runs out near the end. Everything runs on
trio's clock, so the whole demo also runs under ``MockClock`` (without the
gateway). The summary (``summarize``, ``format_summary``) is pure.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Final, TextIO

import attrs
import trio

from switchman._call import Call, Intent, Params
from switchman._result import AttemptRecord, Delta, Result, TraceEvent
from switchman._router import Router, open_router
from switchman.catalog._spec import (
    BudgetsConfig,
    Config,
    ModelSpec,
    ProviderSpec,
    RouterConfig,
    RouteSpec,
    ServerConfig,
    SimProfile,
)
from switchman.policy._breaker import BreakerConfig
from switchman.sim._plan import rate_answer

#: breakers that trip and recover within seconds, so a short demo shows both
DEMO_BREAKER: Final = BreakerConfig(
    window_s=10.0, min_calls=8, consecutive_failures=3, cooldown_s=0.5, max_cooldown_s=1.0
)
#: output tokens every demo call asks for (answers are 30..60 words)
MAX_TOKENS: Final = 120
#: the global budget covers this share of the calls' expected spend
BUDGET_SHARE: Final = 0.65
#: expected spend of one demo call, USD (measured over the traffic mix)
SPEND_PER_CALL_USD: Final = 0.00033

_OUTAGE: Final = (0.5, 2.0, 5.0)  # after, for, every (seconds)
_FLEET: Final[tuple[tuple[str, str, float, float, SimProfile, str], ...]] = (
    # alias, trust tier, USD per Mtok in, out, profile, what it shows
    (
        "lab-a/primary",
        "trusted",
        2.0,
        8.0,
        SimProfile(
            latency_ms=250,
            ttft_ms=60,
            default_quality=0.85,
            outage_after_s=_OUTAGE[0],
            outage_for_s=_OUTAGE[1],
            outage_every_s=_OUTAGE[2],
        ),
        f"down {_OUTAGE[1]:g} s every {_OUTAGE[2]:g} s from {_OUTAGE[0]:g} s (503s)",
    ),
    (
        "lab-a/fast",
        "standard",
        0.2,
        0.8,
        SimProfile(latency_ms=120, ttft_ms=30, default_quality=0.6, quality={"code": 0.3}),
        "cheap, quick, steady; weak at code",
    ),
    (
        "lab-b/flaky",
        "standard",
        1.0,
        4.0,
        SimProfile(
            latency_ms=300,
            ttft_ms=80,
            error_rate=0.25,
            rate_limit_rate=0.03,
            cut_rate=0.05,
            stall_rate=0.02,
            default_quality=0.75,
        ),
        "25% errors, some 429s, cut and stalled streams",
    ),
    (
        "lab-b/slow",
        "trusted",
        6.0,
        24.0,
        SimProfile(latency_ms=1500, ttft_ms=600, default_quality=0.8, quality={"reason": 0.98}),
        "slow (1.5 s) and dear; the best at reasoning",
    ),
    (
        "lab-c/refuser",
        "standard",
        1.5,
        6.0,
        SimProfile(latency_ms=300, ttft_ms=100, refusal_rate=0.4, default_quality=0.8),
        "refuses 40% of requests",
    ),
)
ROUTES: Final[Mapping[str, tuple[str, ...]]] = {
    "chat": ("lab-a/primary", "lab-a/fast", "lab-b/slow"),
    "code": ("lab-b/flaky", "lab-a/primary", "lab-a/fast"),
    "write": ("lab-c/refuser", "lab-a/primary", "lab-a/fast"),
    "think": ("lab-b/slow", "lab-a/primary"),
}
#: (model, intents, weight): "auto" lets the router rank the whole fleet
_MIX: Final[tuple[tuple[str, tuple[Intent, ...], int], ...]] = (
    ("chat", ("lookup", "summarize", "translate"), 35),
    ("code", ("code",), 20),
    ("write", ("draft", "critique"), 18),
    ("think", ("reason", "compare"), 10),
    ("auto", ("classify", "extract", "lookup"), 17),
)
_PROMPTS: Final[Mapping[str, tuple[str, ...]]] = {
    "lookup": ("What is the capital of Australia?", "Who wrote The Left Hand of Darkness?"),
    "summarize": ("Summarize the plot of Hamlet in three sentences.",),
    "translate": ("Translate 'the train leaves at noon' into French.",),
    "code": ("Write a Python function that merges two sorted lists.", "Explain this regex: ^a+b?$"),
    "draft": ("Draft a polite note declining a meeting.", "Write a haiku about autumn rain."),
    "critique": ("Critique this opening line: 'It was a dark and stormy night.'",),
    "reason": ("If all bloops are razzies and some razzies are lazzies, are bloops lazzies?",),
    "compare": ("Compare SQLite and PostgreSQL for a small web app.",),
    "classify": ("Classify the sentiment: 'the update broke everything again'.",),
    "extract": ("Extract the dates from: 'Due 3 May, reviewed 9 June, shipped 1 July.'",),
}
STREAM_SHARE: Final = 0.3


def demo_config(*, calls: int, seed: int) -> Config:
    """The demo fleet: three simulated providers, four routes, a budget for ``calls``."""
    models = {
        alias: ModelSpec(
            alias=alias,
            provider=alias.split("/", 1)[0],
            model_id=alias.split("/", 1)[1],
            trust_tier=tier,  # type: ignore[arg-type]
            context_window=32_000,
            max_output_tokens=4_096,
            input_per_mtok=price_in,
            output_per_mtok=price_out,
            supports_seed=True,
            supports_prefill=alias != "lab-b/flaky",
            sim=profile,
        )
        for alias, tier, price_in, price_out, profile, _ in _FLEET
    }
    providers = {
        name: ProviderSpec(name=name, kind="sim", seed=seed + i, max_concurrency=64)
        for i, name in enumerate(sorted({m.provider for m in models.values()}))
    }
    return Config(
        providers=providers,
        models=models,
        routes={name: RouteSpec(name=name, chain=chain) for name, chain in ROUTES.items()},
        budgets=BudgetsConfig(global_hourly_usd=demo_budget(calls)),
        server=ServerConfig(host="127.0.0.1", port=0, db=":memory:", grace_s=1.0),
        router=RouterConfig(
            seed=seed,
            default_ttft_ms=3_000,
            stall_ms=1_000,
            default_soft_ms=5_000,
            default_hard_ms=12_000,
        ),
        simulated=True,
    )


def demo_budget(calls: int) -> float:
    """A global budget that runs out near the end of ``calls`` calls."""
    return round(calls * SPEND_PER_CALL_USD * BUDGET_SHARE, 6)


@attrs.frozen(kw_only=True)
class PlannedCall:
    """One call of the demo's traffic."""

    n: int
    model: str
    intent: Intent
    prompt: str
    stream: bool

    @property
    def label(self) -> str:
        return f"{self.model}/{self.intent}"

    def call(self) -> Call:
        return Call(
            prompt=self.prompt,
            model=self.model,
            intent=self.intent,
            params=Params(max_tokens=MAX_TOKENS),
        )


def plan_traffic(calls: int, rng: random.Random) -> tuple[PlannedCall, ...]:
    """``calls`` calls drawn from the mix; the same seeded ``rng`` gives the same plan."""
    weights = [w for _, _, w in _MIX]
    out = []
    for n in range(1, calls + 1):
        model, intents, _ = rng.choices(_MIX, weights)[0]
        intent = rng.choice(intents)
        prompt = rng.choice(_PROMPTS[intent])
        out.append(
            PlannedCall(
                n=n, model=model, intent=intent, prompt=prompt, stream=rng.random() < STREAM_SHARE
            )
        )
    return tuple(out)


# -- the summary (pure) ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ModelTally:
    """One model's part: calls it answered, its attempts by outcome, what it cost."""

    answered: int = 0
    attempts: Mapping[str, int] = attrs.field(factory=dict)
    spend_usd: float = 0.0


@attrs.frozen(kw_only=True)
class DemoSummary:
    calls: int
    complete: int
    failed: int
    streamed: int
    duration_s: float
    #: failed calls by their first error code
    failures: Mapping[str, int]
    #: switches to another model after a failed attempt
    fallbacks: int
    #: complete calls that needed at least one fallback
    calls_with_fallback: int
    #: calls that skipped a model because its breaker was open
    routed_around: int
    models: Mapping[str, ModelTally]
    breaker_opened: Mapping[str, int]
    breaker_closed: Mapping[str, int]
    budget_refusals: int
    spend_usd: float
    budget_usd: float
    p50_ms: float
    p99_ms: float
    events_dropped: int = 0
    #: of ``spend_usd``: what attempts that broke after output began were billed
    cut_spend_usd: float = 0.0
    #: feedback the simulated users sent (``switchman.sim.rate_answer``), per answering model
    ratings: Mapping[str, tuple[int, float]] = attrs.field(factory=dict)

    @property
    def success_rate(self) -> float:
        return self.complete / self.calls if self.calls else 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[k - 1]


def _switches(attempts: Sequence[AttemptRecord]) -> int:
    return sum(1 for a, b in itertools.pairwise(attempts) if a.alias != b.alias)


def summarize(
    done: Sequence[tuple[PlannedCall, Result]],
    events: Sequence[TraceEvent],
    *,
    budget_usd: float,
    duration_s: float,
    ratings: Sequence[tuple[str, float]] = (),
) -> DemoSummary:
    """Tally finished calls and the breaker and budget events seen while they ran, and the
    simulated users' ``ratings`` (model, score)."""
    answered: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    spend: dict[str, float] = {}
    failures: Counter[str] = Counter()
    fallbacks = calls_with_fallback = routed_around = 0
    latencies = []
    cut = 0.0  # billed for attempts that failed after output began (streams cut short)
    for _, result in done:
        for a in result.trace.attempts:
            outcomes.setdefault(a.alias, Counter())[a.outcome] += 1
            if a.cost_usd:  # what each model was billed: answers, and answers cut short
                spend[a.alias] = spend.get(a.alias, 0.0) + a.cost_usd
                if a.outcome != "success":
                    cut += a.cost_usd
        switches = _switches(result.trace.attempts)
        fallbacks += switches
        if any("breaker" in e.reason for e in result.trace.eligibility.excluded):
            routed_around += 1
        if result.ok and result.model is not None:
            answered[result.model] += 1
            latencies.append(result.latency_ms)
            calls_with_fallback += switches > 0
        else:
            failures[result.errors[0].code if result.errors else "unknown"] += 1
    opened: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    refusals = dropped = 0
    for event in events:
        if event.type == "breaker.changed":
            alias = str(event.data.get("alias"))
            if event.data.get("to") == "open":
                opened[alias] += 1
            elif event.data.get("to") == "closed":
                closed[alias] += 1
        elif event.type == "budget.reserved" and not event.data.get("ok", True):
            refusals += 1
        elif event.type == "events.dropped":
            dropped += int(event.data.get("count", 0))
    aliases = sorted(set(answered) | set(outcomes))
    complete = sum(answered.values())
    return DemoSummary(
        calls=len(done),
        complete=complete,
        failed=len(done) - complete,
        streamed=sum(1 for planned, _ in done if planned.stream),
        duration_s=duration_s,
        failures=dict(failures.most_common()),
        fallbacks=fallbacks,
        calls_with_fallback=calls_with_fallback,
        routed_around=routed_around,
        models={
            a: ModelTally(
                answered=answered[a],
                attempts=dict(outcomes.get(a, Counter()).most_common()),
                spend_usd=spend.get(a, 0.0),
            )
            for a in aliases
        },
        breaker_opened=dict(sorted(opened.items())),
        breaker_closed=dict(sorted(closed.items())),
        budget_refusals=refusals,
        spend_usd=sum(spend.values()),
        cut_spend_usd=cut,
        budget_usd=budget_usd,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        events_dropped=dropped,
        ratings={
            alias: (len(scores), sum(scores) / len(scores))
            for alias in sorted({a for a, _ in ratings})
            if (scores := [v for a, v in ratings if a == alias])
        },
    )


class _Paint:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text


def format_summary(s: DemoSummary, *, color: bool = False) -> str:
    """The summary table, as the demo prints it at the end."""
    paint = _Paint(color)
    rate = f"{100 * s.success_rate:.1f}%"
    failures = ", ".join(f"{code} {n}" for code, n in s.failures.items()) or "none"
    breakers = (
        "; ".join(
            f"{a} opened {s.breaker_opened.get(a, 0)}x, closed {s.breaker_closed.get(a, 0)}x"
            for a in sorted(set(s.breaker_opened) | set(s.breaker_closed))
        )
        or "none tripped"
    )
    used = 100 * s.spend_usd / s.budget_usd if s.budget_usd else 0.0
    lines = [
        "",
        paint(f"summary: {s.calls} calls in {s.duration_s:.1f} s", "1"),
        f"  calls      {s.calls}: complete {s.complete} ({rate}), failed {s.failed}, "
        f"streamed {s.streamed}",
        f"  failures   {failures}",
        f"  fallbacks  {s.fallbacks} taken; {s.calls_with_fallback} calls answered after one;",
        f"             {s.routed_around} routed around an open breaker",
        f"  breakers   {breakers}",
        f"  budget     spent ${s.spend_usd:.6f} of ${s.budget_usd:.6f} global per hour "
        f"({used:.1f}%);",
        f"             {s.budget_refusals} reservations refused",
        *(
            [f"             ${s.cut_spend_usd:.6f} of it billed for answers cut short"]
            if s.cut_spend_usd
            else []
        ),
        f"  latency    p50 {s.p50_ms:.0f} ms, p99 {s.p99_ms:.0f} ms (complete calls)",
    ]
    if s.ratings:
        rated = sum(n for n, _ in s.ratings.values())
        lines.append(f"  feedback   {rated} answers rated by the simulated users; mean scores:")
        means = [f"{a} {mean:.2f}" for a, (_, mean) in s.ratings.items()]
        for i in range(0, len(means), 3):  # (three a line: it fits a terminal)
            lines.append("             " + ", ".join(means[i : i + 3]))
    if s.events_dropped:
        lines.append(f"  (the live view dropped {s.events_dropped} events)")
    kinds = sorted({k for t in s.models.values() for k in t.attempts})
    widths = {k: max(len(k), 5) for k in kinds}  # each outcome column as wide as its name
    header = f"  {'model':<15} {'answered':>8} {'share':>6} {'spend $':>10}" + "".join(
        f" {k:>{widths[k]}}" for k in kinds
    )
    lines += ["", f"  {'':<42} attempts by outcome", paint(header, "1")]
    for alias, t in s.models.items():
        share = f"{100 * t.answered / s.complete:.1f}%" if s.complete else "-"
        row = f"  {alias:<15} {t.answered:>8} {share:>6} {t.spend_usd:>10.6f}" + "".join(
            f" {t.attempts.get(k, 0):>{widths[k]}}" for k in kinds
        )
        lines.append(row)
    lines.append(
        f"  {'total':<15} {s.complete:>8} {'100%' if s.complete else '-':>6} "
        f"{s.spend_usd:>10.6f}"
        + "".join(
            f" {sum(t.attempts.get(k, 0) for t in s.models.values()):>{widths[k]}}" for k in kinds
        )
    )
    return "\n".join(lines)


# -- live lines --------------------------------------------------------------------------------


def _fallback_lines(result: Result) -> list[str]:
    """What kept a call from its first choice: each model passed over before any attempt
    for its open breaker, each budget refusal, then one line per run of alike failed
    attempts (same model, outcome and error)."""
    out = [
        f"-- {e.alias} skipped: {e.reason}"
        for e in result.trace.eligibility.excluded
        if "breaker" in e.reason
    ]
    out.extend(f"-- {e.message}" for e in result.errors if e.code == "budget_exceeded")
    failed = [a for a in result.trace.attempts if a.outcome != "success"]
    for (alias, outcome, status, error), run in itertools.groupby(
        failed, key=lambda a: (a.alias, a.outcome, a.status_code, a.error)
    ):
        n = len(list(run))
        times = f" x{n}" if n > 1 else ""
        code = f" {status}" if status else ""
        reason = f": {error}" if error else ""
        out.append(f"<- {alias}{times} {outcome}{code}{reason}")
    return out


class LivePrinter:
    """Writes the demo's live lines to ``out``; one object per run."""

    def __init__(self, out: TextIO, *, color: bool, t0: float) -> None:
        self.out = out
        self.paint = _Paint(color)
        self.t0 = t0

    def _stamp(self) -> str:
        return self.paint(f"{trio.current_time() - self.t0:6.2f}s", "2")

    def write(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def call(self, planned: PlannedCall, result: Result) -> None:
        head = f"{self._stamp()}  #{planned.n:03d} {planned.label:<16}"
        if result.ok:
            mode = " stream" if planned.stream else ""
            body = (
                f"-> {result.model:<14} {result.latency_ms:6.0f} ms  ${result.cost_usd:.6f}{mode}"
            )
            self.write(f"{head} {self.paint(body, '32')}")
        else:
            err = result.errors[0] if result.errors else None
            why = f"{err.code}: {err.message}" if err is not None else "unknown"
            mode = " (stream)" if planned.stream else ""
            self.write(f"{head} {self.paint('FAILED' + mode + ' ' + why, '31;1')}")
        for line in _fallback_lines(result):
            self.write(f"{'':14}{self.paint(line, '33')}")  # under the call's number

    def event(self, event: TraceEvent) -> None:
        d = event.data
        if event.type == "breaker.changed":
            retry = f" (probe in {d['retry_in_s']:g} s)" if d.get("retry_in_s") else ""
            why = f": {d['opened_by']}" if d.get("opened_by") and d.get("to") == "open" else ""
            text = f"breaker {d.get('alias')}: {d.get('from')} -> {d.get('to')}{retry}{why}"
            self.write(f"{self._stamp()}  {self.paint(text, '35;1')}")
        # (a refused budget reservation is shown under its call's line, with its number)


def _interesting(event: TraceEvent) -> bool:
    if event.type == "budget.reserved":
        return not event.data.get("ok", True)
    return event.type in ("breaker.changed", "events.dropped")


# -- running it --------------------------------------------------------------------------------


async def _one(router: Router, planned: PlannedCall) -> Result:
    call = planned.call()
    if not planned.stream:
        return await router.call(call)
    async with router.stream(call) as items:
        async for item in items:
            if not isinstance(item, Delta):
                return item
    raise RuntimeError("the router's stream ended without a result")


async def _drive(
    router: Router,
    traffic: Sequence[PlannedCall],
    *,
    concurrency: int,
    rng: random.Random,
    on_done: Callable[[PlannedCall, Result], None] | None,
    done: list[tuple[PlannedCall, Result]],
    ratings: list[tuple[str, float]] | None = None,
) -> None:
    """Run ``traffic`` with ``concurrency`` workers, each pausing briefly between calls.

    Each answer is rated, as a user would, by the answering model's simulated quality for
    the call's intent (``switchman.sim.rate_answer``), and the score sent as feedback: that
    is what the router learns answer quality from. ``ratings`` gets (model, score)."""
    scorer = random.Random(rng.random())
    send, receive = trio.open_memory_channel[PlannedCall](0)

    async def worker(inbox: trio.MemoryReceiveChannel[PlannedCall], pause: random.Random) -> None:
        async with inbox:
            async for planned in inbox:
                result = await _one(router, planned)
                done.append((planned, result))
                model = router.config.models.get(result.model or "")
                if result.ok and model is not None:
                    score = rate_answer(model, planned.intent, scorer)
                    await router.feedback(result.call_id, score)
                    if ratings is not None:
                        ratings.append((model.alias, score))
                if on_done is not None:
                    on_done(planned, result)
                await trio.sleep(pause.uniform(0.05, 0.25))

    async with trio.open_nursery() as nursery:
        async with receive:
            for _ in range(concurrency):
                nursery.start_soon(worker, receive.clone(), random.Random(rng.random()))
        async with send:
            for planned in traffic:
                await send.send(planned)


async def run_demo(
    *,
    calls: int = 120,
    concurrency: int = 4,
    seed: int = 7,
    quiet: bool = False,
    out: TextIO | None = None,
    color: bool = False,
    gateway: bool = True,
) -> DemoSummary:
    """Run the demo and return its summary, printing as it goes (only the summary if ``quiet``).

    With ``gateway``, the gateway serves the demo's router on 127.0.0.1 at a free
    port (announced first), so ``switchman watch`` can follow along; it is shut
    down gracefully before the summary. Cancelled midway, calls in flight are
    cancelled, the gateway and router stop, and nothing is printed after.
    """
    if calls < 1 or concurrency < 1:
        raise ValueError("calls and concurrency must be at least 1")
    out = out if out is not None else sys.stdout
    config = demo_config(calls=calls, seed=seed)
    rng = random.Random(seed)
    traffic = plan_traffic(calls, rng)
    paint = _Paint(color)
    budget = config.budgets.global_hourly_usd or 0.0
    events: list[TraceEvent] = []
    done: list[tuple[PlannedCall, Result]] = []
    ratings: list[tuple[str, float]] = []
    async with AsyncExitStack() as stack:
        router = await stack.enter_async_context(open_router(config, breaker=DEMO_BREAKER))
        stop_gateway = trio.Event()
        address: tuple[str, int] | None = None
        if gateway:
            from switchman.gateway import serve_gateway
            from switchman.store import open_store

            store = await stack.enter_async_context(open_store(":memory:"))
            # entered last, left first: the gateway stops before its store and router
            nursery = await stack.enter_async_context(trio.open_nursery())
            address = await nursery.start(
                functools.partial(
                    serve_gateway,
                    router,
                    host="127.0.0.1",
                    port=0,
                    store=store,
                    shutdown_trigger=stop_gateway.wait,
                )
            )
        t0 = trio.current_time()
        printer = LivePrinter(out, color=color, t0=t0)
        if not quiet:
            printer.write(paint(_header(calls, concurrency, seed, budget, address), "1"))
        with router.subscribe(buffer=8192) as feed:

            async def read_events() -> None:
                async for event in feed:
                    if _interesting(event):
                        events.append(event)
                        if not quiet:
                            printer.event(event)

            async with trio.open_nursery() as inner:
                inner.start_soon(read_events)
                await _drive(
                    router,
                    traffic,
                    concurrency=concurrency,
                    rng=rng,
                    on_done=None if quiet else printer.call,
                    done=done,
                    ratings=ratings,
                )
                inner.cancel_scope.cancel()
            while True:  # what was published before the reader stopped
                try:
                    event = feed.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                if _interesting(event):
                    events.append(event)
        duration = trio.current_time() - t0
        stop_gateway.set()
    summary = summarize(done, events, budget_usd=budget, duration_s=duration, ratings=ratings)
    print(format_summary(summary, color=color), file=out, flush=True)
    return summary


def _header(
    calls: int, concurrency: int, seed: int, budget: float, address: tuple[str, int] | None
) -> str:
    lines = [
        f"switchman demo: {calls} calls, concurrency {concurrency}, seed {seed},",
        "on a simulated fleet (no network, answers are simulated)",
    ]
    lines += [f"  {alias:<14} {what}" for alias, *_, what in _FLEET]
    lines += [f"  route {name:<8} {' > '.join(chain)}" for name, chain in ROUTES.items()]
    lines.append(f"  route {'auto':<8} the router ranks the whole fleet")
    lines.append(f"  budget: ${budget:.6f} global per hour")
    if address is not None:
        host, port = address
        lines.append(
            f"  gateway: http://{host}:{port}  (watch live: switchman watch --port {port})"
        )
    return "\n".join(lines)


def demo(args: argparse.Namespace) -> int:
    """``switchman demo``: exit 0 once the summary is printed."""
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    trio.run(
        functools.partial(
            run_demo,
            calls=args.calls,
            concurrency=args.concurrency,
            seed=args.seed,
            quiet=args.quiet,
            color=color,
        )
    )
    return 0
