"""A reader slower than its stream never holds its call: the attempt ends on the model's own
time, its provider slot and the model's record are untouched, and the reader finds every
delta and then the result waiting. It used to be back-pressure all the way to the upstream:
a reader pausing past the attempt's deadline turned a healthy answer into a timeout counted
against the model (five such readers opened its breaker), and one resuming more than 5 s
after the call ended got no result at all. Real HTTP to the fake provider; real clock."""

from __future__ import annotations

import trio

import switchman
from switchman import Call, Delta, Options, Params, Result, Timeouts
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, PROMPT, answer_of, http_fleet, model

#: an answer of 150 chunks, 5 ms apart (each its own delta): more than the buffers between
#: the upstream and the reader hold, in under a second
BEHAVIOUR = "long-600-5"
HEALTHY = f"openai/{BEHAVIOUR}"
MAX_TOKENS = 1_000
#: the attempt's deadline: the readers below pause for longer
SOFT_MS = 2_000


def _ask(**timeouts: int) -> Call:
    return Call(
        prompt=PROMPT,
        model=HEALTHY,
        params=Params(max_tokens=MAX_TOKENS),
        options=Options(timeouts=Timeouts(**timeouts)),
    )


def _openai(status: switchman.RouterStatus) -> switchman.ProviderStatus:
    (provider,) = [p for p in status.providers if p.name == "openai"]
    return provider


def _healthy(status: switchman.RouterStatus) -> switchman.ModelStatus:
    (found,) = [m for m in _openai(status).models if m.alias == HEALTHY]
    return found


async def _read_pausing(
    router: switchman.Router, pause_s: float
) -> tuple[list[str], list[Result], float]:
    """A stream of HEALTHY read one delta, then nothing for ``pause_s``, then to its end:
    (the deltas' texts, the results, when the call's provider had nothing in flight)."""
    texts: list[str] = []
    results: list[Result] = []
    idle_at = float("inf")
    async with router.stream(_ask(soft_ms=SOFT_MS, hard_ms=5 * SOFT_MS)) as items:
        first = await items.receive()
        assert isinstance(first, Delta)
        texts.append(first.text)
        started = trio.current_time()
        while trio.current_time() - started < pause_s:
            await trio.sleep(0.05)
            if _openai(router.status()).in_flight == 0:
                idle_at = min(idle_at, trio.current_time() - started)
        async for item in items:
            if isinstance(item, Delta):
                texts.append(item.text)
            else:
                results.append(item)
    return texts, results, idle_at


async def test_a_reader_pausing_past_the_deadlines_gets_the_whole_answer_and_its_result() -> None:
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        config = http_fleet(server, [model("openai", BEHAVIOUR)], default_soft_ms=SOFT_MS)
        async with switchman.open_router(config, env=ENV) as router:
            # past the attempt's deadline and the call's, and past the 5 s a finished call
            # used to wait to hand its result to a reader
            with trio.fail_after(30):
                texts, results, idle_at = await _read_pausing(router, 6.0)
            status = router.status()
        nursery.cancel_scope.cancel()
    (result,) = results
    assert result.status == "complete", result.errors
    assert "".join(texts) == result.answer == answer_of(HEALTHY, max_tokens=MAX_TOKENS)
    assert [a.outcome for a in result.trace.attempts] == ["success"]
    assert idle_at < SOFT_MS / 1000  # the attempt ended on the model's time, not the reader's
    healthy = _healthy(status)
    assert healthy.breaker == "closed"
    assert all(s["success_rate"] in (None, 1.0) for s in healthy.stats.values()), healthy.stats


async def test_readers_that_pause_do_not_open_a_healthy_models_breaker() -> None:
    """Five readers pausing past the attempt's deadline at once: the model keeps a clean
    record (its breaker closed, no failure counted), and a caller after them is answered
    at once."""
    async with trio.open_nursery() as nursery:
        server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
        config = http_fleet(server, [model("openai", BEHAVIOUR)], default_soft_ms=SOFT_MS)
        async with switchman.open_router(config, env=ENV) as router:
            outcomes: list[str] = []

            async def reader() -> None:
                _, results, _ = await _read_pausing(router, 1.5 * SOFT_MS / 1000)
                outcomes.extend(r.status for r in results)

            with trio.fail_after(30):
                async with trio.open_nursery() as readers:
                    for _ in range(5):
                        readers.start_soon(reader)
                after = await router.call(_ask())
            status = router.status()
        nursery.cancel_scope.cancel()
    assert outcomes == ["complete"] * 5
    assert after.status == "complete" and after.latency_ms < SOFT_MS
    healthy = _healthy(status)
    assert healthy.breaker == "closed"
    assert all(s["success_rate"] in (None, 1.0) for s in healthy.stats.values()), healthy.stats
