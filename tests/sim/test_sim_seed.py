"""A sim provider's ``seed`` (``[sim] seed``) makes its draws its own: the same calls meet
the same errors, refusals and answers in every run, whatever the router's seed. The
router had handed every provider actor a generator of its own, so the seed had no effect
(60 sequential calls: 46 differed between two runs)."""

from __future__ import annotations

import trio

import switchman
from switchman import Call
from switchman.catalog import load_config
from switchman.policy import BreakerConfig


async def _outcomes(path: str) -> list[tuple[str, str, str]]:
    out = []
    # (no breaker: what it would hold out depends on times, not on the draws)
    never = BreakerConfig(consecutive_failures=10**6, min_calls=10**6)
    async with switchman.open_router(load_config(path), breaker=never) as router:
        for i in range(30):
            result = await router.call(Call(prompt=f"question {i}", model="flaky"))
            out.append(
                (result.status, result.answer or "", ",".join(e.code for e in result.errors))
            )
    return out


async def test_the_sim_seed_repeats_the_simulator_s_draws(
    tmp_path: object, autojump_clock: trio.abc.Clock
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "switchman.toml"
    path.write_text(
        """
[sim]
seed = 7

[[models]]
alias = "flaky"
provider = "sim"
model_id = "flaky"
sim = { latency_ms = 1, ttft_ms = 1, error_rate = 0.3, refusal_rate = 0.2 }
"""
    )
    with trio.fail_after(60):
        first = await _outcomes(str(path))
        second = await _outcomes(str(path))
    assert first == second
    statuses = {status for status, _, _ in first}
    assert len(statuses) > 1, first  # (its faults were met: a draw to repeat)
