"""A model that failed for a while is tried again once it recovers: its failures kept it
last in every ranking (nothing but a call to it can show it recovered), so its half-open
breaker never had its probe and it got no traffic for tens of minutes after it was back.
Now and then a ranking puts first the model heard from least recently. Real HTTP to the
fake provider (a model that answers 503 for its first seconds), real clock."""

from __future__ import annotations

import attrs
import pytest
import trio

import switchman
from switchman import Call
from switchman.policy import _scoring
from switchman.policy._breaker import BreakerConfig
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, PROMPT, http_fleet, model

HEALTHY = "openai/healthy"
#: 503 for its first 2 s, then healthy
FLAPPING = "openai/flapping-2"


async def test_a_recovered_model_is_tried_again_and_its_breaker_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_scoring, "STALE_S", 1.0)  # (10 s by default)
    breaker = BreakerConfig(consecutive_failures=2, cooldown_s=1.0)
    answered: list[tuple[float, str]] = []
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        config = http_fleet(server, [model("openai", "healthy"), model("openai", "flapping-2")])
        config = attrs.evolve(config, router=attrs.evolve(config.router, exploration=1.0))
        async with switchman.open_router(config, env=ENV, breaker=breaker) as router:
            started = trio.current_time()
            with trio.fail_after(30):
                while (now := trio.current_time() - started) < 8.0:
                    result = await router.call(Call(prompt=PROMPT, model="auto"))
                    assert result.status == "complete", result.errors
                    answered.append((now, result.model or ""))
                    await trio.sleep(0.01)
            (provider,) = router.status().providers
            breakers = {m.alias: m.breaker for m in provider.models}
            learned = {m.alias: m.stats.get("unknown", {}) for m in provider.models}
        nursery.cancel_scope.cancel()
    early = [m for t, m in answered if t < 2.0]
    late = [m for t, m in answered if t > 5.0]
    assert FLAPPING not in early  # it failed (503) and its breaker opened
    assert FLAPPING in late  # back, it was tried again and answers some calls
    assert breakers[FLAPPING] == "closed"
    # its breaker closed on the probe: what it did while it failed is forgotten, and it
    # is learned anew from its answers since (it kept the failures, ranked last, before)
    assert learned[FLAPPING]["success_rate"] == 1.0, learned[FLAPPING]
