"""run_sim_attempt: the events and errors of each simulated behaviour, on a mock clock."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from switchman._call import Message
from switchman._errors import (
    ContextExceeded,
    ProviderError,
    RateLimited,
    Refused,
    StreamBroken,
    TransientError,
    UpstreamError,
)
from switchman.adapters._base import (
    Malformed,
    ProviderRequest,
    ResponseStarted,
    StreamEnd,
    StreamEvent,
    TextDelta,
)
from switchman.catalog import ModelSpec, SimProfile
from switchman.sim import REFUSAL_TEXT, expected_answer, run_sim_attempt
from switchman.sim._plan import Plan
from switchman.sim._provider import _stream

PROMPT = "Explain recursion with an example"


def model(profile: SimProfile | None = None, **fields: object) -> ModelSpec:
    return ModelSpec(
        alias="sim/test",
        provider="sim",
        model_id="test-1",
        sim=profile,
        **fields,  # type: ignore[arg-type]
    )


def request(*, stream: bool = True, prompt: str = PROMPT) -> ProviderRequest:
    return ProviderRequest(
        model_id="test-1", messages=(Message(role="user", content=prompt),), stream=stream
    )


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[float, StreamEvent]] = []

    async def __call__(self, event: StreamEvent) -> None:
        self.events.append((trio.current_time(), event))

    @property
    def text(self) -> str:
        return "".join(e.text for _, e in self.events if isinstance(e, TextDelta))

    def kinds(self) -> list[type]:
        return [type(e) for _, e in self.events]


async def run(
    spec: ModelSpec, *, seed: int = 0, stream: bool = True, prompt: str = PROMPT
) -> Recorder:
    rec = Recorder()
    await run_sim_attempt(spec, request(stream=stream, prompt=prompt), random.Random(seed), rec)
    return rec


async def test_healthy_stream_emits_started_deltas_and_end() -> None:
    rec = await run(model(SimProfile(tokens_per_s=1000.0)))
    kinds = rec.kinds()
    assert kinds[0] is ResponseStarted
    assert kinds[-1] is StreamEnd
    assert set(kinds[1:-1]) == {TextDelta}
    assert len(kinds) > 4  # one delta per chunk: each is due at its own time
    started = rec.events[0][1]
    assert isinstance(started, ResponseStarted) and started.status == 200
    assert rec.text == expected_answer("sim/test", PROMPT, None)
    end = rec.events[-1][1]
    assert isinstance(end, StreamEnd)
    assert end.model_id == "test-1"
    assert end.finish_reason == "stop"
    assert end.usage.output_tokens == len(rec.text.split())
    assert end.usage.input_tokens == (len(PROMPT) + 3) // 4


async def test_chunks_due_at_the_same_instant_travel_as_one_delta() -> None:
    rec = await run(model())  # zero latency: every chunk is due at once
    assert rec.kinds() == [ResponseStarted, TextDelta, StreamEnd]
    assert rec.text == expected_answer("sim/test", PROMPT, None)


async def test_non_stream_emits_the_whole_answer_in_one_delta() -> None:
    rec = await run(model(), stream=False)
    assert rec.kinds() == [ResponseStarted, TextDelta, StreamEnd]
    assert rec.text == expected_answer("sim/test", PROMPT, None)


async def test_zero_latency_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}")

    monkeypatch.setattr(trio, "sleep", no_sleep)
    rec = await run(model())
    assert rec.kinds()[-1] is StreamEnd


async def test_latency_profile_paces_the_stream(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    rec = await run(model(SimProfile(ttft_ms=300, latency_ms=2000)))
    times = [t - start for t, e in rec.events if isinstance(e, TextDelta)]
    assert 0.24 <= times[0] <= 0.36  # ttft with jitter 0.8..1.2
    assert 1.6 <= times[-1] <= 2.4
    assert times == sorted(times)
    assert times[1] > times[0]


async def test_rate_limited_raises_with_retry_after(autojump_clock: trio.testing.MockClock) -> None:
    errors = []
    for seed in range(30):
        rec = Recorder()
        with pytest.raises(RateLimited) as info:
            await run_sim_attempt(
                model(SimProfile(rate_limit_rate=1.0)), request(), random.Random(seed), rec
            )
        errors.append(info.value)
        started = rec.events[0][1]
        assert isinstance(started, ResponseStarted) and started.status == 429
        if info.value.retry_after is not None:
            assert started.headers["retry-after"] == f"{info.value.retry_after:g}"
    assert all(e.status == 429 and e.provider == "sim" for e in errors)
    assert any(e.retry_after is None for e in errors)
    assert any(e.retry_after is not None for e in errors)


async def test_upstream_errors_and_resets(autojump_clock: trio.testing.MockClock) -> None:
    seen: set[tuple[type, int | None]] = set()
    for seed in range(60):
        with pytest.raises(ProviderError) as info:
            await run(model(SimProfile(error_rate=1.0, ttft_ms=100)), seed=seed)
        seen.add((type(info.value), info.value.status))
    assert seen == {
        (UpstreamError, 500),
        (UpstreamError, 503),
        (UpstreamError, 529),
        (TransientError, None),
    }


async def test_refusal_raises_refused(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(Refused) as info:
        await run(model(SimProfile(refusal_rate=1.0)))
    assert info.value.message == REFUSAL_TEXT
    assert info.value.provider == "sim"
    with pytest.raises(Refused):
        await run(model(SimProfile(refusal_rate=1.0)), stream=False)


async def test_cut_after_output_raises_stream_broken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec = Recorder()
    with pytest.raises(StreamBroken):
        await run_sim_attempt(model(SimProfile(cut_rate=1.0)), request(), random.Random(1), rec)
    assert rec.text  # some output was sent first
    assert expected_answer("sim/test", PROMPT, None).startswith(rec.text)
    assert StreamEnd not in rec.kinds()


async def test_stall_sleeps_until_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    rec = Recorder()
    with trio.move_on_after(1000) as scope:
        await run_sim_attempt(model(SimProfile(stall_rate=1.0)), request(), random.Random(2), rec)
    assert scope.cancelled_caught
    assert StreamEnd not in rec.kinds()
    assert expected_answer("sim/test", PROMPT, None).startswith(rec.text)
    assert len(rec.text) < len(expected_answer("sim/test", PROMPT, None))


async def test_context_window_exceeded() -> None:
    with pytest.raises(ContextExceeded) as info:
        await run(model(context_window=10), prompt="word " * 20)
    assert info.value.status == 400


def _plan(**fields: object) -> Plan:
    base: dict[str, object] = dict(
        behaviour="x",
        model="sim/test",
        chunks=("one", " two", " three", " four"),
        delays=(0.0, 0.0, 0.0, 0.0),
    )
    base.update(fields)
    return Plan(**base)  # type: ignore[arg-type]


async def test_malformed_event_is_emitted_before_its_chunk() -> None:
    rec = Recorder()
    await _stream(_plan(malformed_at=2), model(), rec)
    # chunks due together are joined, but never across the malformed event
    assert rec.kinds() == [ResponseStarted, TextDelta, Malformed, TextDelta, StreamEnd]
    assert [e.text for _, e in rec.events if isinstance(e, TextDelta)] == [
        "one two",
        " three four",
    ]


async def test_error_event_before_output_is_upstream_and_after_is_broken() -> None:
    with pytest.raises(UpstreamError) as info:
        await _stream(_plan(ending="error", break_after=0), model(), Recorder())
    assert info.value.status == 529
    with pytest.raises(StreamBroken):
        await _stream(_plan(ending="error", break_after=2), model(), Recorder())
    with pytest.raises(TransientError):
        await _stream(_plan(ending="cut", break_after=0), model(), Recorder())
