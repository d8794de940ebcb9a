"""Live trace events read the plain way, ``async for event in router.subscribe()``,
while the router is busy."""

from __future__ import annotations

import collections

import trio
import trio.testing

import switchman
from switchman import Call, Params
from switchman.catalog import SimProfile

from ._simfleet import fleet, sim_model

INSTANT = sim_model("instant", SimProfile())


async def test_a_plain_async_for_reader_loses_nothing_under_load() -> None:
    """A busy router publishes several events each time a reader's task runs; a reader
    that let the router run after each event lost about nine in ten of them at 50
    calls at a time (an audit's count). With the default buffer it now loses none."""
    calls, at_once = 400, 50
    seen: collections.Counter[str] = collections.Counter()
    async with switchman.open_router(fleet(INSTANT)) as router:

        async def read(events: switchman.Subscription) -> None:
            async for event in events:
                seen[event.type] += 1

        async def one(limit: trio.Semaphore) -> None:
            async with limit:
                result = await router.call(
                    Call(prompt="hello there", model="instant", params=Params(max_tokens=50))
                )
                assert result.ok

        with trio.fail_after(30):
            async with trio.open_nursery() as readers:
                readers.start_soon(read, router.subscribe())
                await trio.testing.wait_all_tasks_blocked()
                limit = trio.Semaphore(at_once)
                async with trio.open_nursery() as nursery:
                    for _ in range(calls):
                        nursery.start_soon(one, limit)
                await trio.testing.wait_all_tasks_blocked()
                readers.cancel_scope.cancel()
    assert seen["events.dropped"] == 0
    assert seen["call.accepted"] == seen["call.completed"] == calls
