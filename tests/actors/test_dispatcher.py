"""The dispatcher driven through its inbox, with real provider actors on the simulator and
a real ledger: calls and their results, capacity, cancellation, feedback, spend, its end."""

from __future__ import annotations

import functools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trio.testing

from switchman import Call, Delta, Result
from switchman.actors._board import StatusBoard
from switchman.actors._dispatcher import SLOT_WAIT, run_dispatcher
from switchman.actors._env import DispatchEnv
from switchman.actors._hub import TraceHub
from switchman.actors._ledger import limited_scopes, limits_from_config, run_ledger
from switchman.actors._messages import (
    CancelCall,
    DispatcherMessage,
    FeedbackAnswer,
    FeedbackFor,
    LedgerMessage,
    ProviderMessage,
    SpendQuery,
    Submit,
)
from switchman.actors._provider import run_provider_actor
from switchman.catalog import Config, SimProfile

from .._simfleet import fleet, sim_model

FAST = SimProfile(latency_ms=50)
SECOND = SimProfile(latency_ms=1_000)
SLOW = SimProfile(latency_ms=10_000)
#: the wall clock the dispatcher and the ledger read (spend counts in its periods)
WALL = 1_800_000_000.0


@attrs.define
class _Harness:
    inbox: trio.MemorySendChannel[DispatcherMessage]
    board: StatusBoard
    #: trio time the dispatcher returned, once it has
    ended: list[float]


@asynccontextmanager
async def _dispatcher(config: Config) -> AsyncIterator[_Harness]:
    """A running dispatcher, as ``switchman._router`` wires it: a provider actor per
    provider and a ledger, all on one board. On the way out its inbox is closed, it
    drains, then the providers and the ledger stop."""
    board, hub = StatusBoard(), TraceHub()
    limits = limits_from_config(config)
    ledger, ledger_inbox = trio.open_memory_channel[LedgerMessage](64)
    inboxes: dict[str, trio.MemorySendChannel[ProviderMessage]] = {}
    dispatch, dispatch_inbox = trio.open_memory_channel[DispatcherMessage](64)
    ended: list[float] = []
    done = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(run_ledger, ledger_inbox, limits, wall=lambda: WALL))
        for name, spec in config.providers.items():
            models = tuple(m for m in config.models.values() if m.provider == name)
            inboxes[name], receive = trio.open_memory_channel[ProviderMessage](64)
            await nursery.start(
                functools.partial(run_provider_actor, spec, models, receive, board=board, hub=hub)
            )
        env = DispatchEnv(
            config=config,
            board=board,
            hub=hub,
            providers=inboxes,
            ledger=ledger,
            limited_scopes=limited_scopes(limits),
            keys_by_handle={},
            models=tuple(config.models.values()),
            out_of_service={},
            rng=random.Random(7),
            wall=lambda: WALL,
        )

        async def dispatcher(task_status: trio.TaskStatus[None]) -> None:
            await run_dispatcher(env, dispatch_inbox, task_status=task_status)
            ended.append(trio.current_time())
            done.set()

        await nursery.start(dispatcher)
        try:
            yield _Harness(inbox=dispatch, board=board, ended=ended)
        finally:
            dispatch.close()
            await done.wait()
            for send in inboxes.values():
                send.close()
            ledger.close()


async def _submit(
    h: _Harness, call_id: str, model: str = "a", *, job_id: str | None = None, stream: bool = False
) -> trio.MemoryReceiveChannel[Delta | Result]:
    send, receive = trio.open_memory_channel[Delta | Result](64)
    call = Call(prompt="say something", model=model)
    await h.inbox.send(
        Submit(call=call, call_id=call_id, job_id=job_id, stream=stream, reply_to=send)
    )
    return receive


async def _result(receive: trio.MemoryReceiveChannel[Delta | Result]) -> Result:
    """The call's one reply (not streamed), the channel closed after it."""
    replies = [reply async for reply in receive]
    assert len(replies) == 1 and isinstance(replies[0], Result), replies
    return replies[0]


async def _ask(
    h: _Harness, call_id: str, score: float, intent: str | None = None
) -> FeedbackAnswer:
    send, receive = trio.open_memory_channel[FeedbackAnswer](1)
    await h.inbox.send(FeedbackFor(call_id=call_id, score=score, reply_to=send, intent=intent))
    return await receive.receive()


async def test_a_submitted_call_runs_and_its_result_comes_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A call submitted through the inbox runs on its model; its one ``Result`` comes
    back on its reply channel, which then closes, and nothing is left in flight."""
    async with _dispatcher(fleet(sim_model("a", FAST))) as h:
        t0 = trio.current_time()
        result = await _result(await _submit(h, "c1"))
        took = trio.current_time() - t0
        assert h.board.calls_in_flight == 0
    assert result.status == "complete", result.errors
    assert (result.call_id, result.model, result.provider) == ("c1", "a", "sim")
    assert result.answer.strip() and result.cost_usd > 0.0
    assert len(result.trace.attempts) == 1 and result.trace.outcome == "success"
    assert 0.04 <= took <= 0.06  # the model's 50 ms, no more


async def test_a_streamed_call_sends_its_text_in_deltas_then_the_result(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Streamed, the reply channel carries the answer's text in ``Delta`` items and then
    one ``Result`` whose answer is that text."""
    async with _dispatcher(fleet(sim_model("a", FAST))) as h:
        replies = [reply async for reply in await _submit(h, "c1", stream=True)]
    *deltas, result = replies
    assert deltas and all(isinstance(d, Delta) for d in deltas)
    assert isinstance(result, Result) and result.status == "complete"
    assert "".join(d.text for d in deltas if isinstance(d, Delta)) == result.answer


async def test_calls_beyond_capacity_wait_for_a_slot_and_run_when_one_frees(
    autojump_clock: trio.abc.Clock,
) -> None:
    """With ``capacity = 2``, a third call waits (the board counts three in flight, one
    waiting) and runs when one of the first two ends, its wait in its trace."""
    finished: dict[str, tuple[float, Result]] = {}
    async with _dispatcher(fleet(sim_model("a", SECOND), capacity=2)) as h:
        t0 = trio.current_time()

        async def run(call_id: str) -> None:
            result = await _result(await _submit(h, call_id))
            finished[call_id] = (trio.current_time() - t0, result)

        async with trio.open_nursery() as nursery:
            for call_id in ("c1", "c2", "c3"):
                nursery.start_soon(run, call_id)
                await trio.testing.wait_all_tasks_blocked()
            assert (h.board.calls_in_flight, h.board.calls_waiting) == (3, 1)
        assert (h.board.calls_in_flight, h.board.calls_waiting) == (0, 0)
    assert all(r.status == "complete" for _, r in finished.values())
    assert all(0.8 <= finished[c][0] <= 1.2 for c in ("c1", "c2"))
    first_free = min(finished["c1"][0], finished["c2"][0])
    waited, third = finished["c3"]
    assert 1.6 <= waited <= 2.4 and waited > first_free
    (wait,) = third.trace.waits
    assert wait.reason.startswith(SLOT_WAIT) and wait.after_attempt == 0
    assert wait.ms == pytest.approx(first_free * 1000.0)


async def test_cancelling_a_call_ends_it_cancelled_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A ``CancelCall`` by call id (with a reason) or by job id ends the running call at
    once with a failed result, code ``cancelled``, and frees its provider's slot."""
    async with _dispatcher(fleet(sim_model("a", SLOW))) as h:
        by_call = await _submit(h, "c1")
        by_job = await _submit(h, "c2", job_id="j2")
        await trio.testing.wait_all_tasks_blocked()
        snap = h.board.get("sim")
        assert snap is not None and snap.in_flight == 2
        t0 = trio.current_time()
        await h.inbox.send(CancelCall(call_id="c1", reason="the user left"))
        await h.inbox.send(CancelCall(job_id="j2"))
        first, second = await _result(by_call), await _result(by_job)
        assert trio.current_time() == t0
        await trio.testing.wait_all_tasks_blocked()
        snap = h.board.get("sim")
        assert snap is not None and snap.in_flight == 0
    assert first.status == second.status == "failed"
    assert [(e.code, e.message) for e in first.errors] == [("cancelled", "the user left")]
    assert [(e.code, e.message) for e in second.errors] == [("cancelled", "the call was cancelled")]
    assert second.job_id == "j2"


async def test_feedback_for_a_finished_call_is_answered_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Feedback for a finished call is answered ``ok`` and reaches its model's
    statistics; asked again it is ``rated``, and a call never seen is ``unknown``."""
    async with _dispatcher(fleet(sim_model("a", FAST))) as h:
        assert (await _result(await _submit(h, "c1"))).status == "complete"
        assert await _ask(h, "c1", 0.8, intent="code") == "ok"
        await trio.testing.wait_all_tasks_blocked()
        snap = h.board.get("sim")
        assert await _ask(h, "c1", 0.1) == "rated"
        assert await _ask(h, "nope", 0.5) == "unknown"
    assert snap is not None
    learned = snap.stats[("a", "code")]
    assert learned.feedback_n == pytest.approx(1.0)
    assert learned.feedback_sum == pytest.approx(0.8)


async def test_a_spend_query_passes_through_with_the_spend_it_tracked(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A ``SpendQuery`` goes to the ledger through the dispatcher, which first hands it
    the spend of the calls it ran: the answer counts the call's cost."""
    async with _dispatcher(fleet(sim_model("a", FAST))) as h:
        result = await _result(await _submit(h, "c1"))
        send, receive = trio.open_memory_channel[dict[str, float]](1)
        await h.inbox.send(SpendQuery(scope="global", reply_to=send))
        spent = await receive.receive()
    assert result.cost_usd > 0.0
    assert spent == pytest.approx(dict.fromkeys(("hour", "day", "month"), result.cost_usd))


async def test_closing_its_inbox_lets_calls_finish_within_the_grace_period(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Its inbox closed, the dispatcher takes no more calls, lets those in flight run
    for ``grace_s`` (2 s here), cancels what still runs, and returns: the 1 s call is
    answered, the 10 s one fails ``cancelled`` at 2 s."""
    config = fleet(sim_model("quick", SECOND), sim_model("slow", SLOW))
    config = attrs.evolve(config, server=attrs.evolve(config.server, grace_s=2.0))
    async with _dispatcher(config) as h:
        quick, slow = await _submit(h, "q", "quick"), await _submit(h, "s", "slow")
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        h.inbox.close()
        answered, cut = await _result(quick), await _result(slow)
        cut_at = trio.current_time() - t0
        await trio.testing.wait_all_tasks_blocked()
        assert h.ended and h.ended[0] - t0 == pytest.approx(2.0)
    assert answered.status == "complete" and answered.model == "quick"
    assert cut.status == "failed" and [e.code for e in cut.errors] == ["cancelled"]
    assert cut_at == pytest.approx(2.0)
