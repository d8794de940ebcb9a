"""Scheduled sim outages: the pure schedule, the plan, the attempt, and breakers on the router."""

from __future__ import annotations

import random

import pytest
import trio

import switchman
from switchman import Call
from switchman._call import Message
from switchman._errors import UpstreamError
from switchman.adapters._base import ProviderRequest, StreamEnd, StreamEvent
from switchman.catalog import ModelSpec, SimProfile
from switchman.policy._breaker import BreakerConfig
from switchman.sim import plan_from_profile, run_sim_attempt
from switchman.sim._plan import OUTAGE_MESSAGE, in_outage

from .._simfleet import fleet, sim_model

ONCE = SimProfile(outage_after_s=10.0, outage_for_s=5.0)
REPEATING = SimProfile(outage_after_s=10.0, outage_for_s=5.0, outage_every_s=20.0)


@pytest.mark.parametrize(
    ("profile", "elapsed", "down"),
    [
        (SimProfile(), 12.0, False),
        (ONCE, 0.0, False),
        (ONCE, 9.99, False),
        (ONCE, 10.0, True),
        (ONCE, 14.99, True),
        (ONCE, 15.0, False),
        (ONCE, 35.0, False),  # not repeating
        (REPEATING, 15.0, False),
        (REPEATING, 29.99, False),
        (REPEATING, 30.0, True),
        (REPEATING, 34.0, True),
        (REPEATING, 35.0, False),
        (REPEATING, 50.5, True),
        (SimProfile(outage_after_s=1.0, outage_for_s=0.0), 1.0, False),
        (SimProfile(outage_after_s=1.0, outage_for_s=3.0, outage_every_s=2.0), 100.0, True),
        (SimProfile(outage_after_s=0.0, outage_for_s=1.0, outage_every_s=0.0), 1.5, False),
    ],
)
def test_outage_schedule(profile: SimProfile, elapsed: float, down: bool) -> None:
    assert in_outage(profile, elapsed) is down


def _request(stream: bool = True) -> ProviderRequest:
    return ProviderRequest(
        model_id="m", messages=(Message(role="user", content="Explain recursion"),), stream=stream
    )


def test_plan_in_an_outage_is_a_503_and_draws_nothing() -> None:
    profile = SimProfile(ttft_ms=40, latency_ms=200, outage_after_s=1.0, outage_for_s=2.0)
    rng = random.Random(3)
    plan = plan_from_profile(profile, _request(), rng, model_alias="m", elapsed_s=1.5)
    assert plan.failure is not None
    assert plan.failure.status == 503 and plan.failure.kind == "unavailable"
    assert plan.failure.message == OUTAGE_MESSAGE
    assert plan.ttft_s == pytest.approx(0.04)
    assert rng.getstate() == random.Random(3).getstate()


def test_plan_outside_an_outage_is_the_ordinary_plan() -> None:
    profile = SimProfile(latency_ms=200, outage_after_s=1.0, outage_for_s=2.0)
    outside = plan_from_profile(profile, _request(), random.Random(3), model_alias="m", elapsed_s=3)
    plain = plan_from_profile(profile, _request(), random.Random(3), model_alias="m")
    assert outside == plain
    assert outside.failure is None and outside.text


def _model(alias: str, profile: SimProfile) -> ModelSpec:
    return ModelSpec(alias=alias, provider="sim", model_id=alias, sim=profile)


async def _attempt(model: ModelSpec, **kw: float) -> str:
    """``ok`` or the 503's message."""
    events: list[StreamEvent] = []

    async def emit(event: StreamEvent) -> None:
        events.append(event)

    try:
        await run_sim_attempt(model, _request(), random.Random(0), emit, **kw)
    except UpstreamError as exc:
        assert exc.status == 503
        return exc.message
    assert isinstance(events[-1], StreamEnd)
    return "ok"


async def test_attempts_follow_the_schedule_from_started_at(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = _model("down-later", REPEATING)
    t0 = trio.current_time()
    seen = []
    for at in (0.0, 9.0, 10.5, 14.0, 16.0, 31.0, 36.0):
        await trio.sleep_until(t0 + at)
        seen.append(await _attempt(model, started_at=t0))
    ok, down = "ok", OUTAGE_MESSAGE
    assert seen == [ok, ok, down, down, ok, down, ok]


async def test_without_started_at_each_model_counts_from_its_first_attempt(
    autojump_clock: trio.abc.Clock,
) -> None:
    first = _model("first", SimProfile(outage_after_s=5.0, outage_for_s=5.0))
    second = _model("second", SimProfile(outage_after_s=5.0, outage_for_s=5.0))
    assert await _attempt(first) == "ok"  # first's clock starts now
    await trio.sleep(6.0)
    assert await _attempt(first) == OUTAGE_MESSAGE
    assert await _attempt(second) == "ok"  # second's clock starts only now
    await trio.sleep(5.0)
    assert await _attempt(first) == "ok"  # first's outage is over
    assert await _attempt(second) == OUTAGE_MESSAGE


async def test_an_outage_opens_the_breaker_and_recovery_closes_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    down = sim_model("primary", SimProfile(latency_ms=50, outage_after_s=2.0, outage_for_s=4.0))
    backup = sim_model("backup", SimProfile(latency_ms=50))
    config = fleet(down, backup, routes={"chat": ("primary", "backup")})
    breaker = BreakerConfig(cooldown_s=1.0, max_cooldown_s=2.0)
    async with switchman.open_router(config, breaker=breaker) as router:
        changes: list[tuple[str, str]] = []
        answered_by: list[tuple[float, str | None]] = []
        with router.subscribe(buffer=1024) as events:
            t0 = trio.current_time()
            async with trio.open_nursery() as nursery:

                async def collect() -> None:
                    async for event in events:
                        if event.type == "breaker.changed":
                            changes.append((event.data["from"], event.data["to"]))

                nursery.start_soon(collect)
                while trio.current_time() - t0 < 12.0:
                    result = await router.call(Call(prompt="hello", model="chat"))
                    assert result.status == "complete"  # the backup always answers
                    answered_by.append((trio.current_time() - t0, result.model))
                    await trio.sleep(0.2)
                nursery.cancel_scope.cancel()
    assert ("closed", "open") in changes
    assert changes[-1][1] == "closed"
    assert {m for t, m in answered_by if t < 2.0} == {"primary"}
    assert "backup" in {m for t, m in answered_by if 2.5 < t < 6.0}
    assert {m for t, m in answered_by if t > 10.0} == {"primary"}
