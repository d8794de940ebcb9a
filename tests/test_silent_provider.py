"""A model that accepts requests and never answers (the fake server's ``silent``, over real
HTTP): once an attempt on it has waited past what is expected, calls that have another model
go there at once instead of each waiting out its own first-token limit; a call with nowhere
else to go is still sent. Real clock, bounded waits."""

from __future__ import annotations

import trio

import switchman
from switchman import Result
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, ask, http_fleet, model

SILENT = "openai/silent"
HEALTHY = "openai/healthy"
#: each attempt's first-token limit: a silent attempt is suspect after half of it
TTFT_MS = 3_000


async def test_calls_go_around_a_model_whose_attempts_wait_without_an_answer() -> None:
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        config = http_fleet(
            server,
            [model("openai", "silent"), model("openai", "healthy")],
            routes={"hangs-first": (SILENT, HEALTHY)},
            default_ttft_ms=TTFT_MS,
            default_soft_ms=8_000,
            default_hard_ms=20_000,
        )
        results: dict[str, Result] = {}

        async def call(name: str, target: str, after_s: float) -> None:
            await trio.sleep(after_s)
            with trio.fail_after(15):
                results[name] = await router.call(ask(target))

        async with switchman.open_router(config, env=ENV) as router, trio.open_nursery() as calls:
            calls.start_soon(call, "first", "hangs-first", 0.0)
            # 2 s later its attempt has waited past half its 3 s limit, unanswered
            calls.start_soon(call, "second", "hangs-first", 2.0)
            calls.start_soon(call, "alone", SILENT, 2.0)  # nowhere else to go
        nursery.cancel_scope.cancel()

    first, second, alone = results["first"], results["second"], results["alone"]
    # the first waited out its first-token limit, then fell back, as before
    assert [a.outcome for a in first.trace.attempts] == ["timeout", "success"]
    assert first.model == HEALTHY
    # the second did not wait: the provider turned its attempt away, and it fell back
    assert [a.outcome for a in second.trace.attempts] == ["unavailable", "success"]
    turned_away = second.trace.attempts[0]
    assert turned_away.alias == SILENT
    assert turned_away.error is not None and turned_away.error.startswith("silent: ")
    assert "the provider may be hanging" in turned_away.error
    assert second.model == HEALTHY and second.status == "complete"
    assert second.latency_ms < TTFT_MS / 2  # (the first waited the whole limit)
    # the call that could go nowhere else was sent, and waited its limit
    assert [a.outcome for a in alone.trace.attempts] == ["timeout"]
    assert alone.status == "failed"
    # the silent model got the first call's request and the lone call's, not the second's
    assert len(server.requests(SILENT)) == 2
