"""``switchman demo``: the CLI run at a small size, the live lines, and the summary's arithmetic."""

from __future__ import annotations

import io
import random
import re

import httpx
import pytest
import trio

from switchman._demo import (
    ROUTES,
    DemoSummary,
    PlannedCall,
    demo_config,
    format_summary,
    percentile,
    plan_traffic,
    run_demo,
    summarize,
)
from switchman._result import (
    AttemptRecord,
    EligibilityTrace,
    ErrorInfo,
    Exclusion,
    Result,
    Trace,
    TraceEvent,
)
from switchman.cli import main


def _summary_numbers(text: str) -> dict[str, float]:
    """The figures a reader takes from the printed summary."""
    patterns = {
        "calls": r"calls +(\d+): complete (\d+) \(([\d.]+)%\), failed (\d+), streamed (\d+)",
        "fallbacks": r"fallbacks +(\d+) taken; (\d+) calls answered after one;\n +(\d+) routed",
        "budget": r"spent \$([\d.]+) of \$([\d.]+) global per hour \(([\d.]+)%\);\n +(\d+) reserv",
        "latency": r"p50 (\d+) ms, p99 (\d+) ms",
        "total": r"^  total +(\d+) +\S+ +([\d.]+)",
    }
    out: dict[str, float] = {}
    for name, pattern in patterns.items():
        match = re.search(pattern, text, re.M)
        assert match is not None, f"no {name} line in:\n{text}"
        for i, value in enumerate(match.groups()):
            out[f"{name}{i}"] = float(value)
    return out


def _model_rows(text: str) -> dict[str, tuple[int, float]]:
    rows = re.findall(r"^  (lab-\w/\w+) +(\d+) +\S+ +([\d.]+)", text, re.M)
    return {alias: (int(n), float(spend)) for alias, n, spend in rows}


def test_demo_cli_small_run_shows_fallbacks_breakers_and_adds_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--calls", "40", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "#001" not in text and "gateway:" not in text  # quiet: the summary only
    n = _summary_numbers(text)
    calls, complete, rate, failed = n["calls0"], n["calls1"], n["calls2"], n["calls3"]
    assert calls == 40 and complete + failed == 40
    assert rate == pytest.approx(100 * complete / 40, abs=0.05)
    assert n["fallbacks0"] >= 1 and n["fallbacks1"] >= 1  # fallbacks were taken
    assert n["fallbacks1"] <= complete
    opened = re.search(r"lab-a/primary opened (\d+)x, closed (\d+)x", text)
    assert opened is not None, text
    # real time: whether a probe lands after the outage before 40 calls are done depends on
    # the machine's load; the whole open -> half-open -> closed cycle is asserted on trio's
    # virtual clock in test_live_view_and_budget_exhaustion_near_the_end
    assert int(opened.group(1)) >= 1 and int(opened.group(2)) <= int(opened.group(1))
    rows = _model_rows(text)
    assert sum(a for a, _ in rows.values()) == complete == n["total0"]
    # what the budget saw: the answers, and what answers cut short were billed, each once
    # in the model's spend
    assert sum(s for _, s in rows.values()) == pytest.approx(n["budget0"], abs=1e-5)
    assert n["total1"] == pytest.approx(n["budget0"], abs=1e-6)
    assert n["budget0"] <= n["budget1"]  # never past the budget
    assert 0 < n["latency0"] <= n["latency1"]


async def test_live_view_and_budget_exhaustion_near_the_end(
    autojump_clock: trio.abc.Clock,
) -> None:
    out = io.StringIO()
    summary = await run_demo(calls=200, concurrency=4, seed=3, out=out, gateway=False)
    text = out.getvalue()
    assert text.startswith("switchman demo: 200 calls, concurrency 4, seed 3")
    for alias in ("lab-a/primary", "lab-a/fast", "lab-b/flaky", "lab-b/slow", "lab-c/refuser"):
        assert alias in text.split("\n\n")[0]  # the fleet is introduced
    call_lines = re.findall(r"^ +\d+\.\d\ds  #(\d{3}) ", text, re.M)
    assert sorted(int(c) for c in call_lines) == list(range(1, 201))  # one line per call
    assert re.search(r"breaker lab-a/primary: closed -> open \(probe in [\d.]+ s\)", text)
    assert re.search(r"breaker lab-a/primary: half_open -> closed", text)
    assert re.search(r"<- lab-a/primary( x\d)? error 503: .*scheduled outage", text)
    assert re.search(r"<- lab-c/refuser refused", text)
    # a refused reservation is told under its call's line, with what is left
    assert re.search(r"^ +-- global hour budget of \$[\d.]+ has \$[\d.]+ left", text, re.M)
    assert re.search(r"^ +-- \S+ skipped: breaker open for [\d.]+s more", text, re.M)

    # the budget runs out near the end: calls fail for it only in the last part
    budget_line = r"#(\d{3}) \S+ +FAILED( \(stream\))? budget_exceeded"
    failed_for_budget = [int(m[0]) for m in re.findall(budget_line, text, re.M)]
    assert len(failed_for_budget) >= 3
    assert min(failed_for_budget) > 100  # none in the first half
    assert sorted(failed_for_budget)[len(failed_for_budget) // 2] > 140  # mostly at the end
    assert summary.spend_usd >= 0.95 * summary.budget_usd  # used up
    assert summary.failures.get("budget_exceeded") == len(failed_for_budget)
    assert summary.spend_usd <= summary.budget_usd
    assert summary.budget_refusals >= len(failed_for_budget)
    assert summary.calls == 200 == summary.complete + summary.failed
    assert sum(t.answered for t in summary.models.values()) == summary.complete
    assert summary.breaker_opened["lab-a/primary"] >= 2  # the outage repeats every 6 s
    assert format_summary(summary) in text


class _Announced(io.StringIO):
    """Output that wakes a waiter once the gateway's address was printed."""

    def __init__(self) -> None:
        super().__init__()
        self.gateway = trio.Event()

    def write(self, text: str) -> int:
        n = super().write(text)
        if "gateway: http://" in text:
            self.gateway.set()
        return n


async def test_the_gateway_serves_the_demo_while_it_runs() -> None:
    out = _Announced()
    summaries: list[DemoSummary] = []
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:

            async def demo() -> None:
                summaries.append(await run_demo(calls=12, concurrency=3, out=out))

            nursery.start_soon(demo)
            await out.gateway.wait()
            match = re.search(r"gateway: (http://127\.0\.0\.1:(\d+))", out.getvalue())
            assert match is not None
            assert f"switchman watch --port {match.group(2)}" in out.getvalue()
            async with httpx.AsyncClient(base_url=match.group(1)) as client:
                health = (await client.get("/health")).json()
            assert health["simulated"] is True
            assert {p["name"] for p in health["providers"]} == {"lab-a", "lab-b", "lab-c"}
    assert summaries[0].calls == 12


# -- pure parts ---------------------------------------------------------------------------------


def test_traffic_is_seeded_and_mixed() -> None:
    one = plan_traffic(300, random.Random(5))
    assert one == plan_traffic(300, random.Random(5))
    assert one != plan_traffic(300, random.Random(6))
    assert [p.n for p in one] == list(range(1, 301))
    models = {p.model for p in one}
    assert models == {*ROUTES, "auto"}
    assert 0.15 < sum(p.stream for p in one) / 300 < 0.45
    assert len({p.intent for p in one}) >= 8


def test_demo_config_injects_the_faults() -> None:
    config = demo_config(calls=100, seed=1)
    primary = config.models["lab-a/primary"].sim
    assert primary is not None and primary.outage_after_s is not None
    assert primary.outage_for_s > 0 and primary.outage_every_s is not None
    flaky = config.models["lab-b/flaky"].sim
    assert flaky is not None and flaky.error_rate > 0.1
    refuser = config.models["lab-c/refuser"].sim
    assert refuser is not None and refuser.refusal_rate > 0.2
    slow = config.models["lab-b/slow"].sim
    assert slow is not None and slow.latency_ms >= 1000
    assert config.simulated and config.budgets.global_hourly_usd is not None
    assert demo_config(calls=200, seed=1).budgets.global_hourly_usd == pytest.approx(
        2 * config.budgets.global_hourly_usd
    )
    for chain in ROUTES.values():
        assert set(chain) <= set(config.models)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0


def _attempt(n: int, alias: str, outcome: str, cost: float = 0.0) -> AttemptRecord:
    return AttemptRecord(
        n=n,
        alias=alias,
        provider=alias.split("/")[0],
        started_at=0.0,
        ended_at=0.1,
        ttft_ms=None,
        outcome=outcome,  # type: ignore[arg-type]
        cost_usd=cost,
    )


def _planned(n: int, stream: bool = False) -> PlannedCall:
    return PlannedCall(n=n, model="chat", intent="lookup", prompt="p", stream=stream)


def test_summarize_counts_fallbacks_breakers_budget_and_spend() -> None:
    ok_direct = Result(
        call_id="1",
        status="complete",
        model="lab-a/primary",
        cost_usd=0.002,
        latency_ms=100.0,
        trace=Trace(attempts=(_attempt(1, "lab-a/primary", "success", 0.002),)),
    )
    ok_after_fallback = Result(
        call_id="2",
        status="complete",
        model="lab-a/fast",
        cost_usd=0.001,
        latency_ms=300.0,
        trace=Trace(
            eligibility=EligibilityTrace(
                excluded=(Exclusion(alias="lab-b/slow", reason="breaker open for 0.4s more"),)
            ),
            attempts=(
                _attempt(1, "lab-a/primary", "error"),
                _attempt(2, "lab-a/primary", "error", 0.0002),  # broke after output began
                _attempt(3, "lab-a/fast", "success", 0.001),
            ),
        ),
    )
    failed = Result(
        call_id="3",
        status="failed",
        errors=(ErrorInfo(code="budget_exceeded", message="no money"),),
        trace=Trace(attempts=(_attempt(1, "lab-c/refuser", "refused"),)),
    )
    events = [
        TraceEvent(type="breaker.changed", call_id="", job_id=None, ts=0, data=d)
        for d in (
            {"alias": "lab-a/primary", "from": "closed", "to": "open"},
            {"alias": "lab-a/primary", "from": "open", "to": "half_open"},
            {"alias": "lab-a/primary", "from": "half_open", "to": "closed"},
        )
    ] + [
        TraceEvent(
            type="budget.reserved",
            call_id="3",
            job_id=None,
            ts=0,
            data={"ok": False, "reason": "x"},
        ),
        TraceEvent(type="events.dropped", call_id="", job_id=None, ts=0, data={"count": 2}),
    ]
    done = [(_planned(1), ok_direct), (_planned(2, stream=True), ok_after_fallback)]
    done.append((_planned(3), failed))
    s = summarize(done, events, budget_usd=0.01, duration_s=2.0)
    assert (s.calls, s.complete, s.failed, s.streamed) == (3, 2, 1, 1)
    assert s.success_rate == pytest.approx(2 / 3)
    assert s.failures == {"budget_exceeded": 1}
    assert (s.fallbacks, s.calls_with_fallback, s.routed_around) == (1, 1, 1)
    assert s.breaker_opened == {"lab-a/primary": 1} and s.breaker_closed == {"lab-a/primary": 1}
    assert s.budget_refusals == 1 and s.events_dropped == 2
    assert s.spend_usd == pytest.approx(0.0032) and s.cut_spend_usd == pytest.approx(0.0002)
    assert s.models["lab-a/primary"].answered == 1
    # what each model was billed: its answers and its answers cut short, each once
    assert s.models["lab-a/primary"].spend_usd == pytest.approx(0.0022)
    assert s.models["lab-a/fast"].spend_usd == pytest.approx(0.001)
    assert s.models["lab-a/primary"].attempts == {"error": 2, "success": 1}
    assert s.models["lab-c/refuser"].answered == 0
    assert s.models["lab-c/refuser"].attempts == {"refused": 1}
    assert (s.p50_ms, s.p99_ms) == (100.0, 300.0)

    text = format_summary(s)
    n = _summary_numbers(text)
    assert (n["calls0"], n["calls1"], n["calls3"]) == (3, 2, 1)
    assert (n["fallbacks0"], n["fallbacks1"], n["fallbacks2"]) == (1, 1, 1)
    assert n["budget0"] == pytest.approx(0.0032) and n["budget2"] == pytest.approx(32.0)
    assert "$0.000200 of it billed for answers cut short" in text
    assert n["total1"] == pytest.approx(0.0032)  # every model's spend, cut answers included
    assert "lab-a/primary opened 1x, closed 1x" in text
    assert "dropped 2 events" in text
    answered, spend = _model_rows(text)["lab-a/fast"]
    assert answered == 1 and spend == pytest.approx(0.001)
