"""An attempt's budget hold: a hold the ledger made for a caller that left before it read
the answer is given back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import trio
import trio.testing

from switchman._channels import open_channel
from switchman.actors._env import DispatchEnv
from switchman.actors._holds import reserve_hold
from switchman.actors._messages import Release, Reserve


async def test_a_hold_made_after_its_caller_was_cancelled_is_released() -> None:
    """The race the ledger cannot see: the caller's wait is cancelled, then (before the
    caller runs again) the ledger reserves and its answer lands in the reply buffer,
    unread. The caller must give the hold back."""
    ledger_in: trio.MemorySendChannel[Any]
    ledger_in, ledger = open_channel(10)
    env = cast(DispatchEnv, SimpleNamespace(ledger=ledger_in))
    cancelled = False

    async def caller(scope: trio.CancelScope) -> None:
        nonlocal cancelled
        with scope:
            await reserve_hold(env, "call-1:1", ("global",), 0.25)
        cancelled = scope.cancelled_caught

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller, scope)
        await trio.testing.wait_all_tasks_blocked()
        reserve = ledger.receive_nowait()
        assert isinstance(reserve, Reserve) and reserve.id == "call-1:1"
        scope.cancel()  # the caller's wait ends; it has not run since
        reserve.reply_to.send_nowait(None)  # the ledger reserved: "held"
    assert cancelled
    assert ledger.receive_nowait() == Release(id="call-1:1")


async def test_a_hold_answered_in_time_is_kept() -> None:
    ledger_in: trio.MemorySendChannel[Any]
    ledger_in, ledger = open_channel(10)
    env = cast(DispatchEnv, SimpleNamespace(ledger=ledger_in))
    answers: list[object] = []

    async def caller() -> None:
        answers.append(await reserve_hold(env, "call-2:1", ("global",), 0.25))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        ledger.receive_nowait().reply_to.send_nowait(None)
    assert answers == [None]
    with_nothing_more = ledger.statistics().current_buffer_used
    assert with_nothing_more == 0
