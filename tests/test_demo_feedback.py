"""The demo's simulated users rate each answer by the answering model's quality for the
call's intent, and send it as feedback: what the router learns answer quality from."""

from __future__ import annotations

import io

import trio

from switchman._demo import run_demo


async def test_the_demo_rates_every_answer_and_says_so(autojump_clock: trio.abc.Clock) -> None:
    out = io.StringIO()
    summary = await run_demo(calls=60, concurrency=6, seed=3, quiet=True, out=out, gateway=False)
    rated = sum(n for n, _ in summary.ratings.values())
    assert rated == summary.complete > 0
    assert set(summary.ratings) == {a for a, t in summary.models.items() if t.answered}
    for n, mean in summary.ratings.values():
        assert n >= 1 and 0.0 <= mean <= 1.0
    text = out.getvalue()
    assert f"feedback   {rated} answers rated by the simulated users" in text
    assert all(len(line) <= 100 for line in text.splitlines())
