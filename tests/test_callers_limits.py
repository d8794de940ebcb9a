"""A model slow for every caller is seen to be slow even when each caller sets a time limit
tighter than the router's default: such a timeout is the caller's hurry as far as the
breaker goes, but once the model had waited well past what it is known to take (a second
at least), the statistics count it, and ranking moves away from the model. They counted
nothing: a model slow for 90 s under such callers never entered the statistics and kept
its share of auto calls, each one timing out. Real HTTP to the fake provider, real clock."""

from __future__ import annotations

import trio

import switchman
from switchman import Call, Options, Params, Timeouts
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, PROMPT, http_fleet, model

SLOW = "openai/slow-ttft-2500"
HEALTHY = "openai/healthy"


def _slow_first(ttft_ms: int) -> Call:
    return Call(
        prompt=PROMPT, model="slow-first", options=Options(timeouts=Timeouts(ttft_ms=ttft_ms))
    )


async def _stats_after(calls: int, ttft_ms: int) -> tuple[dict[str, float | None], str]:
    """``calls`` calls of the route slow then healthy, each with the caller's own
    ``ttft_ms``: the slow model's statistics for the intent, and its breaker."""
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        config = http_fleet(
            server,
            [model("openai", "slow-ttft-2500"), model("openai", "healthy")],
            routes={"slow-first": (SLOW, HEALTHY)},
            default_ttft_ms=3_000,
        )
        async with switchman.open_router(config, env=ENV) as router:
            with trio.fail_after(30):
                for _ in range(calls):
                    result = await router.call(_slow_first(ttft_ms))
                    assert result.model == HEALTHY
                    assert [a.outcome for a in result.trace.attempts] == ["timeout", "success"]
            (provider,) = router.status().providers
            (slow,) = [m for m in provider.models if m.alias == SLOW]
        nursery.cancel_scope.cancel()
    return dict(slow.stats.get("unknown", {})), slow.breaker


async def test_a_model_slower_than_callers_limits_counts_in_its_statistics_not_breaker() -> None:
    stats, breaker = await _stats_after(6, ttft_ms=1_200)
    assert stats["success_rate"] is not None and stats["success_rate"] < 0.2, stats
    assert breaker == "closed"  # six timeouts in a row: the callers' hurry, for the breaker


async def test_a_limit_shorter_than_a_second_says_nothing_of_the_model() -> None:
    stats, breaker = await _stats_after(2, ttft_ms=300)
    assert not stats.get("n") and breaker == "closed"


async def test_an_answer_cut_by_a_callers_limit_once_its_text_flowed_was_not_slow() -> None:
    """A healthy model streaming a long answer steadily, cut off by a caller's own soft
    limit: the answer was longer than the caller would wait for; the model was not slow,
    and its statistics do not count it (they did, and its success rate fell for every
    caller)."""
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        config = http_fleet(
            server, [model("openai", "long-2000-5")], default_soft_ms=30_000, default_hard_ms=30_000
        )
        long = "openai/long-2000-5"  # 500 chunks, 5 ms apart: 2.5 s of answer
        hurried = Call(
            prompt=PROMPT,
            model=long,
            params=Params(max_tokens=4_000),
            options=Options(timeouts=Timeouts(soft_ms=1_200)),
        )
        async with switchman.open_router(config, env=ENV) as router:
            with trio.fail_after(30):
                for _ in range(2):
                    result = await router.call(hurried)
                    assert [a.outcome for a in result.trace.attempts] == ["timeout"]
            (provider,) = router.status().providers
            (slow,) = provider.models
        nursery.cancel_scope.cancel()
    assert not slow.stats.get("unknown", {}).get("n"), slow.stats
