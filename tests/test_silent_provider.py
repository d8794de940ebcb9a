"""A model that accepts requests and never answers (the fake server's ``silent``, over real
HTTP): once an attempt on it has waited past what is expected, calls that have another model
go there at once instead of each waiting out its own first-token limit; a call with nowhere
else to go is still sent. Real clock, bounded waits."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import switchman
from switchman import Result
from switchman.catalog import Config
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, ask, http_fleet, model

SILENT = "openai/silent"
HEALTHY = "openai/healthy"
#: each attempt's first-token limit: a silent attempt is suspect after half of it
TTFT_MS = 3_000


def _fleet(server: FakeProviderServer, **limits: Any) -> Config:
    """A route trying the silent model first, then a healthy one, over real HTTP."""
    return http_fleet(
        server,
        [model("openai", "silent"), model("openai", "healthy")],
        routes={"hangs-first": (SILENT, HEALTHY)},
        default_ttft_ms=TTFT_MS,
        default_hard_ms=20_000,
        **limits,
    )


async def test_calls_go_around_a_model_whose_attempts_wait_without_an_answer() -> None:
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        config = _fleet(server, default_soft_ms=8_000)
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


async def test_a_model_turned_away_as_silent_is_shown_held_out_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While the provider turns calls away from a silent model, its status says so (held
    out, why), as its ``/providers``, ``/health`` and metrics read it; and the log says it
    once (every status said it was fine, breaker closed, for 15 s of an outage)."""
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        config = _fleet(server)
        async with switchman.open_router(config, env=ENV) as router, trio.open_nursery() as calls:

            def held_out() -> str | None:
                (provider,) = [p for p in router.status().providers if p.name == "openai"]
                (silent,) = [m for m in provider.models if m.alias == SILENT]
                return silent.held_out

            calls.start_soon(router.call, ask("hangs-first"))
            await trio.sleep(0.5)
            assert held_out() is None  # (waiting, not yet past what is expected)
            await trio.sleep(1.7)  # past half its 3 s limit, unanswered
            shown = held_out()
            assert shown is not None and shown.startswith("silent: ")
            with trio.fail_after(5):
                turned = await router.call(ask("hangs-first"))
            assert [a.outcome for a in turned.trace.attempts] == ["unavailable", "success"]
            await router.call(ask("hangs-first"))
        assert held_out() is None  # its waiting attempt ended (a timeout)
        nursery.cancel_scope.cancel()
    told = [
        r.getMessage() for r in caplog.records if "the provider may be hanging" in r.getMessage()
    ]
    assert len(told) == 1 and told[0].startswith(
        "provider openai, model openai/silent: silent: "
    ), told
