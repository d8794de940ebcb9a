"""The provider actor driven through its inbox on the simulator: admission (concurrency,
breaker, rate budget), the outcome published on the board, and its end."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trio.testing

from switchman._call import Message
from switchman._errors import ContextExceeded, Refused, UpstreamError
from switchman.actors._board import ProviderSnapshot, StatusBoard
from switchman.actors._hub import TraceHub
from switchman.actors._messages import (
    Attempt,
    AttemptFailed,
    AttemptReply,
    Feedback,
    ProviderMessage,
    Unavailable,
)
from switchman.actors._provider import BUSY_POLL_S, PROBE_POLL_S, run_provider_actor
from switchman.adapters._base import ProviderRequest, ResponseStarted, StreamEnd, TextDelta
from switchman.catalog import ModelSpec, ProviderSpec, SimProfile
from switchman.policy._breaker import BreakerConfig

from .._simfleet import sim_model

FAST = SimProfile(latency_ms=50)
SLOW = SimProfile(latency_ms=10_000)
#: a 503 after 0.5 s for the first 3 s of the provider's life, then answers in about 1 s
RECOVERS = SimProfile(ttft_ms=500, latency_ms=1_000, outage_after_s=0.0, outage_for_s=3.0)
#: one failure opens a breaker, for 5 s
TRIGGER = BreakerConfig(consecutive_failures=1, min_calls=1, cooldown_s=5.0)

_ids = iter(range(1, 1_000_000))


def _spec(*, max_concurrency: int = 64, rpm: int | None = None) -> ProviderSpec:
    return ProviderSpec(name="sim", kind="sim", seed=7, max_concurrency=max_concurrency, rpm=rpm)


@asynccontextmanager
async def _actor(
    *models: ModelSpec, spec: ProviderSpec | None = None, breaker: BreakerConfig | None = None
) -> AsyncIterator[tuple[trio.MemorySendChannel[ProviderMessage], StatusBoard]]:
    """A running provider actor for ``models``: its inbox and its board (the inbox is
    closed on the way out, so the actor ends)."""
    board = StatusBoard()
    send, receive = trio.open_memory_channel[ProviderMessage](64)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(
                run_provider_actor,
                spec or _spec(),
                models,
                receive,
                board=board,
                hub=TraceHub(),
                breaker_cfg=breaker,
            )
        )
        with send:
            yield send, board


def _attempt(
    model: ModelSpec, prompt: str = "hello there"
) -> tuple[Attempt, trio.MemoryReceiveChannel[AttemptReply]]:
    send, receive = trio.open_memory_channel[AttemptReply](64)
    request = ProviderRequest(
        model_id=model.model_id, messages=(Message(role="user", content=prompt),), max_tokens=100
    )
    attempt = Attempt(
        id=next(_ids),
        model=model,
        request=request,
        intent="code",
        deadline=trio.current_time() + 60.0,
        ttft_s=15.0,
        stall_s=15.0,
        input_tokens=10,
        reply_to=send,
    )
    return attempt, receive


async def _replies(receive: trio.MemoryReceiveChannel[AttemptReply]) -> list[AttemptReply]:
    """Every reply until the actor closes the channel."""
    return [reply async for reply in receive]


async def _turned_away(
    inbox: trio.MemorySendChannel[ProviderMessage], model: ModelSpec
) -> Unavailable:
    """Send an attempt that must be turned away: its one reply, then the channel's end."""
    attempt, receive = _attempt(model)
    await inbox.send(attempt)
    replies = await _replies(receive)
    assert len(replies) == 1 and isinstance(replies[0], Unavailable), replies
    return replies[0]


def _snap(board: StatusBoard) -> ProviderSnapshot:
    snap = board.get("sim")
    assert snap is not None
    return snap


async def test_an_attempt_is_served_and_its_outcome_published(
    autojump_clock: trio.abc.Clock,
) -> None:
    """An attempt streams its answer to its reply channel, which then closes; the board
    showed it in flight meanwhile and then its success in the model's statistics."""
    model = sim_model("a", FAST)
    async with _actor(model) as (inbox, board):
        assert _snap(board).in_flight == 0
        attempt, receive = _attempt(model)
        await inbox.send(attempt)
        await trio.testing.wait_all_tasks_blocked()
        assert _snap(board).in_flight == 1
        replies = await _replies(receive)
        snap = _snap(board)
    assert isinstance(replies[0], ResponseStarted) and replies[0].status == 200
    assert "".join(r.text for r in replies if isinstance(r, TextDelta)).strip()
    end = replies[-1]
    assert isinstance(end, StreamEnd) and end.usage.output_tokens > 0
    assert snap.in_flight == 0
    for intent in ("code", "*"):
        stats = snap.stats[("a", intent)]
        assert stats.successes == pytest.approx(1.0) and stats.failures == 0.0
        assert stats.latency_ms is not None and 40.0 <= stats.latency_ms <= 60.0
    assert snap.breakers["a"].state == "closed" and len(snap.breakers["a"].window) == 1


async def test_at_its_concurrency_limit_it_answers_unavailable_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    """With its one attempt slot taken, a second attempt is turned away without waiting,
    saying why and when to ask again; once the first ends, the next one is served."""
    model = sim_model("a", SLOW)
    async with _actor(model, spec=_spec(max_concurrency=1)) as (inbox, _board):
        first, first_replies = _attempt(model)
        await inbox.send(first)
        t0 = trio.current_time()
        refusal = await _turned_away(inbox, model)
        assert trio.current_time() == t0  # no wait at all
        assert refusal.busy
        assert refusal.reason == "at concurrency limit 1"
        assert refusal.retry_at == pytest.approx(t0 + BUSY_POLL_S)
        assert isinstance((await _replies(first_replies))[-1], StreamEnd)
        again, again_replies = _attempt(model)
        await inbox.send(again)
        assert isinstance((await _replies(again_replies))[-1], StreamEnd)


async def test_an_open_breaker_answers_unavailable_with_its_retry_at(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A failure opens the breaker (one failure trips it here): the next attempt is
    turned away at once, with the time its cool-down ends as ``retry_at`` and what opened
    it (its kind and status, never the provider's words: every team sees it)."""
    model = sim_model("a", RECOVERS)
    async with _actor(model, breaker=TRIGGER) as (inbox, board):
        attempt, receive = _attempt(model)
        await inbox.send(attempt)
        failed = (await _replies(receive))[-1]
        assert isinstance(failed, AttemptFailed) and isinstance(failed.error, UpstreamError)
        failed_at = trio.current_time()
        breaker = _snap(board).breakers["a"]
        assert breaker.state == "open"
        assert breaker.open_until == pytest.approx(failed_at + 5.0)
        await trio.sleep(1.0)
        refusal = await _turned_away(inbox, model)
        assert refusal.retry_at == breaker.open_until
        assert refusal.reason == "breaker open for 4.0s more (a failure: HTTP 503)"
        assert failed.error.message not in refusal.reason
        assert not refusal.busy


async def test_half_open_admits_one_probe_whose_success_closes_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Once the cool-down is over, one attempt goes as the probe; another meanwhile is
    turned away (its probe is out); the probe's answer closes the breaker."""
    model = sim_model("a", RECOVERS)
    async with _actor(model, breaker=TRIGGER) as (inbox, board):
        attempt, receive = _attempt(model)
        await inbox.send(attempt)
        assert isinstance((await _replies(receive))[-1], AttemptFailed)
        await trio.sleep_until(_snap(board).breakers["a"].open_until)
        probe, probe_replies = _attempt(model)
        await inbox.send(probe)
        await trio.testing.wait_all_tasks_blocked()
        breaker = _snap(board).breakers["a"]
        assert breaker.state == "half_open" and breaker.probe_in_flight
        now = trio.current_time()
        refusal = await _turned_away(inbox, model)
        assert refusal.reason == "breaker half_open: its probe is out (a failure: HTTP 503)"
        assert refusal.retry_at == pytest.approx(now + PROBE_POLL_S)
        assert isinstance((await _replies(probe_replies))[-1], StreamEnd)
        breaker = _snap(board).breakers["a"]
        assert breaker.state == "closed" and not breaker.probe_in_flight
        after, after_replies = _attempt(model)
        await inbox.send(after)
        assert isinstance((await _replies(after_replies))[-1], StreamEnd)


async def test_refusals_and_context_length_errors_do_not_open_the_breaker(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A refusal and a prompt too long for the model fail their attempts but leave the
    breaker closed with nothing counted, where one upstream error opens it."""
    refuses = sim_model("refuses", SimProfile(refusal_rate=1.0))
    small = sim_model("small", FAST, context_window=50)
    broken = sim_model("broken", SimProfile(error_rate=1.0))
    async with _actor(refuses, small, broken, breaker=TRIGGER) as (inbox, board):
        expected = ((refuses, "hi", Refused), (small, "word " * 400, ContextExceeded))
        for model, prompt, error in expected:
            attempt, receive = _attempt(model, prompt)
            await inbox.send(attempt)
            failed = (await _replies(receive))[-1]
            assert isinstance(failed, AttemptFailed) and isinstance(failed.error, error)
            breaker = _snap(board).breakers[model.alias]
            assert breaker.state == "closed" and breaker.window == (), breaker
        attempt, receive = _attempt(broken)
        await inbox.send(attempt)
        assert isinstance((await _replies(receive))[-1], AttemptFailed)
        assert _snap(board).breakers["broken"].state == "open"


async def test_an_empty_rate_budget_answers_unavailable_until_it_refills(
    autojump_clock: trio.abc.Clock,
) -> None:
    """With ``rpm = 2`` two attempts go at once and the third is turned away, told when
    the bucket has a request again (30 s); it is served then."""
    model = sim_model("a", FAST)
    async with _actor(model, spec=_spec(rpm=2)) as (inbox, board):
        t0 = trio.current_time()
        for _ in range(2):
            attempt, receive = _attempt(model)
            await inbox.send(attempt)
            assert isinstance((await _replies(receive))[-1], StreamEnd)
        refusal = await _turned_away(inbox, model)
        assert refusal.reason.startswith("rate budget empty for ")
        # the router's own limit, named as such: not to be taken for the provider's
        assert refusal.reason.endswith("s (switchman's own rpm 2 for sim: [providers.sim])")
        assert refusal.retry_at == pytest.approx(t0 + 30.0)
        assert _snap(board).rate.requests < 1.0
        assert refusal.retry_at is not None
        await trio.sleep_until(refusal.retry_at)
        attempt, receive = _attempt(model)
        await inbox.send(attempt)
        assert isinstance((await _replies(receive))[-1], StreamEnd)


async def test_feedback_is_learned_for_the_intent_and_overall(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A ``Feedback`` message adds its score to the model's statistics, for the intent
    it names and for all intents."""
    model = sim_model("a", FAST)
    async with _actor(model) as (inbox, board):
        await inbox.send(Feedback(alias="a", intent="code", score=0.25))
        await trio.testing.wait_all_tasks_blocked()
        stats = _snap(board).stats
    for intent in ("code", "*"):
        assert stats[("a", intent)].feedback_n == pytest.approx(1.0)
        assert stats[("a", intent)].feedback_sum == pytest.approx(0.25)


async def test_closing_its_inbox_stops_it_once_its_attempts_end(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Its inbox closed, the actor lets the attempt in flight finish (the answer arrives
    whole) and then returns; a breaker's cool-down timer does not hold it up."""
    slow, broken = sim_model("slow", SLOW), sim_model("broken", SimProfile(error_rate=1.0))
    board = StatusBoard()
    send, receive = trio.open_memory_channel[ProviderMessage](64)
    ended_at: list[float] = []

    async def actor(task_status: trio.TaskStatus[None]) -> None:
        await run_provider_actor(
            _spec(),
            (slow, broken),
            receive,
            board=board,
            hub=TraceHub(),
            breaker_cfg=attrs.evolve(TRIGGER, cooldown_s=300.0),
            task_status=task_status,
        )
        ended_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        await nursery.start(actor)
        failing, failing_replies = _attempt(broken)
        await send.send(failing)
        assert isinstance((await _replies(failing_replies))[-1], AttemptFailed)
        assert _snap(board).breakers["broken"].state == "open"  # (a 300 s timer runs)
        attempt, replies = _attempt(slow)
        await send.send(attempt)
        t0 = trio.current_time()
        send.close()
        got = await _replies(replies)
    assert isinstance(got[-1], StreamEnd)
    assert len(ended_at) == 1 and 8.0 <= ended_at[0] - t0 <= 12.0  # the answer's ~10 s
    assert _snap(board).in_flight == 0
