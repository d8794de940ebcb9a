"""Learning through the whole router: routing shifts to the model that serves an intent
best, and away again when it degrades."""

from __future__ import annotations

import random

import trio

import switchman
from switchman import Call
from switchman.catalog import SimProfile

from ._simfleet import fleet, sim_model


async def test_routing_follows_quality_and_leaves_a_degraded_model(
    autojump_clock: trio.abc.Clock,
) -> None:
    # same price, trust and speed: only what the router learns can tell them apart
    ace = sim_model("ace", SimProfile(latency_ms=100))
    meh = sim_model("meh", SimProfile(latency_ms=100))
    quality = {"ace": 0.9, "meh": 0.45}
    noise = random.Random(3)
    chosen: list[str] = []
    async with switchman.open_router(fleet(ace, meh, seed=11)) as router:

        async def rounds(n: int) -> None:
            for _ in range(n):
                result = await router.call(Call(prompt="write a parser", intent="code"))
                assert result.model is not None
                chosen.append(result.model)
                score = min(1.0, max(0.0, quality[result.model] + noise.uniform(-0.1, 0.1)))
                await router.feedback(result.call_id, score)

        await rounds(300)
        learned_share = chosen[-100:].count("ace") / 100
        quality["ace"] = 0.1  # ace degrades
        await rounds(200)
        after_share = chosen[-100:].count("ace") / 100
        other_intent = await router.call(Call(prompt="translate this", intent="translate"))
    assert chosen[:20].count("ace") < 20  # it explored at first
    assert learned_share >= 0.8, learned_share
    assert after_share <= 0.3, after_share
    assert other_intent.status == "complete"
