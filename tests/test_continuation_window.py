"""A stream cut and continued on another model: the continuation carries the answer so
far, so a model whose window holds the prompt but not prompt and answer is passed over
(it used to be sent the request, and answered with a 400)."""

from __future__ import annotations

import trio

import switchman
from switchman import Call, Options
from switchman.catalog import ModelSpec, SimProfile
from tests._simfleet import fleet, sim_model, streamed

CUTS = sim_model("a", SimProfile(cut_rate=1.0), context_window=40_000, supports_prefill=False)
PROMPT = "Summarize: " + "the quick brown fox " * 6398  # about 31,997 tokens


async def _continued_on(model: ModelSpec) -> switchman.Result:
    """A call whose stream on ``a`` is cut, to be continued on ``model`` (alias b)."""
    call = Call(prompt=PROMPT, model="r", options=Options(verbosity="standard"))
    async with switchman.open_router(fleet(CUTS, model, routes={"r": ("a", "b")})) as router:
        result, _ = await streamed(router, call)
        return result


async def test_a_model_too_small_for_the_continuation_is_passed_over(
    autojump_clock: trio.abc.Clock,
) -> None:
    small = sim_model("b", context_window=32_000, context_includes_output=False)
    result = await _continued_on(small)
    assert result.status == "failed"
    assert [a.alias for a in result.trace.attempts] == ["a"]  # b was never sent it
    said = [e.message for e in result.errors]
    assert any(m.startswith("b: context window 32000 too small to continue") for m in said)


async def test_a_model_that_holds_the_continuation_takes_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    roomy = sim_model("b", context_window=40_000, context_includes_output=False)
    result = await _continued_on(roomy)
    assert result.status == "complete", result.errors
    assert [a.alias for a in result.trace.attempts] == ["a", "b"]
