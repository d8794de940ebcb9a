"""Under overload, a call that waited for one of the router's slots until too little of
its deadline was left for any of its models gives the slot up at once, untried, instead
of holding it to time out (calls of short deadlines spent most slot time so, a third of
the goodput); a call with time enough, or whose models' times are not known, still
runs. Through the real router, on the simulator's virtual time."""

from __future__ import annotations

import trio

import switchman
from switchman import Call, Options, Timeouts
from switchman.catalog import SimProfile
from tests._simfleet import at_once, fleet, sim_model


async def test_a_call_left_too_little_time_by_its_wait_gives_its_slot_up(
    autojump_clock: trio.abc.Clock,
) -> None:
    slow = sim_model("slow", SimProfile(latency_ms=1_000.0))
    config = fleet(slow, capacity=1)
    short = Options(timeouts=Timeouts(hard_ms=1_100))
    async with switchman.open_router(config) as router:
        for i in range(3):  # (it learns the model takes about a second)
            assert (await router.call(Call(prompt=f"w{i}", model="slow"))).status == "complete"
        calls = [Call(prompt=f"c{i}", model="slow", options=short) for i in range(3)]
        started = trio.current_time()
        first, second, third = await at_once(router, calls)
        took = trio.current_time() - started
        enough = Options(timeouts=Timeouts(hard_ms=3_000))
        pair = await at_once(
            router, [Call(prompt=f"e{i}", model="slow", options=enough) for i in range(2)]
        )
    assert first.status == "complete"
    for late in (second, third):
        assert late.status == "failed" and late.trace.attempts == ()
        (error,) = late.errors
        assert error.code == "timeout"
        assert "it waited for a free slot until" in error.message
        assert "were left, too little for slow, its fastest model (about" in error.message
        assert late.latency_ms < 1_050  # given up when its wait ended, not at its deadline
    assert took < 1.05
    # time enough after its wait: the second is tried and answers
    assert [r.status for r in pair] == ["complete", "complete"]


def test_a_model_whose_time_is_not_known_is_tried() -> None:
    from switchman.actors._waits import too_late
    from switchman.policy._learning import ModelStats

    model = sim_model("m")
    learned = {("m", "*"): ModelStats(latency_ms=1_000.0)}
    at = {"started": 0.0, "deadline": 1.3}
    assert too_late("chat", [model], {}, now=1.0, **at) is None
    assert too_late("chat", [model], {("m", "*"): ModelStats()}, now=1.0, **at) is None
    assert too_late("chat", [model], learned, now=0.7, **at) is None  # 0.6 s left: tried
    assert too_late("chat", [model], learned, now=1.0, **at) is not None
    # the fastest of its models counts: one known fast enough, and it is tried
    fast = sim_model("f")
    both = {**learned, ("f", "chat"): ModelStats(latency_ms=200.0)}
    assert too_late("chat", [model, fast], both, now=1.0, **at) is None
