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


async def test_per_intent_quality_is_learned_from_simulated_feedback(
    autojump_clock: trio.abc.Clock,
) -> None:
    # alike in speed, price and reliability; each writes better answers for one intent
    coder = sim_model(
        "coder", SimProfile(latency_ms=100, default_quality=0.5, quality={"code": 0.9})
    )
    writer = sim_model(
        "writer", SimProfile(latency_ms=100, default_quality=0.5, quality={"summarize": 0.9})
    )
    config = fleet(coder, writer, seed=5)
    users = random.Random(8)
    chosen: dict[str, list[str]] = {"code": [], "summarize": []}
    async with switchman.open_router(config) as router:
        for n in range(400):
            intent = "code" if n % 2 else "summarize"
            result = await router.call(Call(prompt=f"task {n}", intent=intent))
            assert result.model is not None
            chosen[intent].append(result.model)
            # the simulated user rates the answer by the model's quality for that intent
            score = switchman.sim.rate_answer(config.models[result.model], intent, users)
            await router.feedback(result.call_id, score)
            await trio.sleep(0.5)
    for intent, best in (("code", "coder"), ("summarize", "writer")):
        assert set(chosen[intent][:100]) == {"coder", "writer"}, intent  # both were tried
        late = chosen[intent][-60:].count(best) / 60
        assert late >= 0.85, (intent, late)


def test_a_simulated_users_scores_follow_the_models_quality_per_intent() -> None:
    coder = sim_model("coder", SimProfile(default_quality=0.4, quality={"code": 0.9}))
    rng = random.Random(1)
    code = [switchman.sim.rate_answer(coder, "code", rng) for _ in range(500)]
    other = [switchman.sim.rate_answer(coder, "lookup", rng) for _ in range(500)]
    assert abs(sum(code) / 500 - 0.9) < 0.03 and abs(sum(other) / 500 - 0.4) < 0.03
    assert all(0.0 <= s <= 1.0 for s in code + other)
    assert switchman.sim.answer_quality(sim_model("plain", None), "code") == 0.7
    again = random.Random(1)
    assert [switchman.sim.rate_answer(coder, "code", again) for _ in range(500)] == code
