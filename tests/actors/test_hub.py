"""The trace hub: fan-out, bounded buffers, dropped-event notices, unsubscribe."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from switchman._result import TraceEvent
from switchman.actors import Subscription, TraceHub, run_trace_hub
from switchman.actors._hub import SLICE_S, SWEEP_EVERY


def _event(n: int) -> TraceEvent:
    return TraceEvent(type="call.accepted", call_id=str(n), job_id=None, ts=float(n))


def test_publish_without_subscribers_is_inactive_and_cheap() -> None:
    hub = TraceHub()
    assert not hub.active
    hub.publish(_event(1))
    assert hub.statistics().published == 1


def test_every_subscriber_gets_every_event_in_order() -> None:
    hub = TraceHub()
    a, b = hub.subscribe(buffer=10), hub.subscribe(buffer=10)
    for n in range(5):
        hub.publish(_event(n))
    assert [a.receive_nowait().call_id for _ in range(5)] == ["0", "1", "2", "3", "4"]
    assert [b.receive_nowait().call_id for _ in range(5)] == ["0", "1", "2", "3", "4"]


def test_a_slow_subscriber_loses_events_is_told_and_never_blocks() -> None:
    hub = TraceHub()
    slow = hub.subscribe(buffer=2)
    fast = hub.subscribe(buffer=100)
    for n in range(10):
        hub.publish(_event(n))  # never blocks, even with slow's buffer full
    assert hub.statistics().dropped == 8
    assert [slow.receive_nowait().call_id for _ in range(2)] == ["0", "1"]
    hub.publish(_event(10))
    notice = slow.receive_nowait()
    assert notice.type == "events.dropped" and notice.data["count"] == 8
    assert slow.receive_nowait().call_id == "10"
    assert len([fast.receive_nowait() for _ in range(11)]) == 11  # the fast one lost nothing


def test_closing_a_subscription_unsubscribes() -> None:
    hub = TraceHub()
    sub = hub.subscribe()
    sub.close()
    hub.publish(_event(1))
    assert not hub.active


def test_a_closed_subscription_that_turns_every_event_down_is_dropped_too() -> None:
    """A filtered subscriber gets no delivery to fail once it closed (a websocket that
    followed one job): it is dropped at the next subscribe or within SWEEP_EVERY events,
    so the hub does not keep it, and ``active`` turns false again."""
    from switchman.actors._hub import SWEEP_EVERY

    hub = TraceHub()
    for _ in range(100):  # connections that each followed a job, then left
        hub.subscribe(accept=lambda e: False).close()
    assert hub.statistics().subscribers == 1  # each subscribe dropped the one before
    kept = hub.subscribe(accept=lambda e: False)
    assert hub.statistics().subscribers == 1
    kept.close()
    for n in range(SWEEP_EVERY):
        hub.publish(_event(n))
    assert not hub.active and hub.statistics().subscribers == 0


def test_a_subscription_let_go_without_closing_it_unsubscribes_too() -> None:
    """An application that drops its channel without closing it: the hub stops filling a
    buffer nobody reads (and, with no one else listening, events are no longer built)."""
    hub = TraceHub()
    kept = hub.subscribe(buffer=4)
    hub.subscribe(buffer=4)  # (dropped at once: nobody holds it)
    assert hub.statistics().subscribers == 2
    for n in range(SWEEP_EVERY):
        hub.publish(_event(n))
    assert hub.statistics().subscribers == 1
    del kept
    for n in range(SWEEP_EVERY):
        hub.publish(_event(n))
    assert hub.statistics().subscribers == 0 and not hub.active


def test_a_subscription_read_through_a_clone_stays_when_its_first_end_is_let_go() -> None:
    """``router.subscribe().clone()`` (trio's way to share a channel between tasks): the
    clone is the subscription now, and gets every event (it got 41 of 150, then nothing,
    and never an end)."""
    hub = TraceHub()
    first = hub.subscribe(buffer=4 * SWEEP_EVERY)
    clone = first.clone()
    del first
    for n in range(3 * SWEEP_EVERY):
        hub.publish(_event(n))
    assert hub.statistics().subscribers == 1
    assert [clone.receive_nowait().call_id for _ in range(3 * SWEEP_EVERY)] == [
        str(n) for n in range(3 * SWEEP_EVERY)
    ]


def test_a_subscription_and_its_clone_both_let_go_unsubscribe() -> None:
    hub = TraceHub()
    first = hub.subscribe(buffer=4)
    clone = first.clone()
    del first, clone
    for n in range(SWEEP_EVERY):
        hub.publish(_event(n))
    assert hub.statistics().subscribers == 0 and not hub.active


async def test_stopping_the_hub_ends_every_subscription() -> None:
    hub = TraceHub()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_trace_hub, hub)
        sub = hub.subscribe()
        nursery.cancel_scope.cancel()
    async with sub:
        assert [e async for e in sub] == []
    assert hub.subscribe().statistics().open_send_channels == 0


def test_a_filtered_subscriber_gets_and_loses_only_the_events_it_accepts() -> None:
    hub = TraceHub()
    mine = hub.subscribe(buffer=2, accept=lambda e: int(e.call_id) % 2 == 0)
    broken = hub.subscribe(buffer=100, accept=lambda e: 1 // 0 == 0)  # lets everything by
    for n in range(20):
        hub.publish(_event(n))  # 10 odd ones it does not want: neither sent nor counted
    assert [mine.receive_nowait().call_id for _ in range(2)] == ["0", "2"]
    hub.publish(_event(20))
    notice = mine.receive_nowait()
    assert notice.type == "events.dropped" and notice.data == {"count": 8}  # 4, 6, ... 18
    assert mine.receive_nowait().call_id == "20"
    assert len([broken.receive_nowait() for _ in range(21)]) == 21


async def test_a_plain_async_for_reader_keeps_up_with_a_busy_publisher(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A busy router publishes several events each time a reader's task runs. A reader
    that let the loop run after each event took one a turn, fell behind for good and
    lost most of them; ``receive`` now takes what waits without letting go. (On a clock
    that stands still: a VM's pause past ``SLICE_S`` in a turn, which lets the loop run
    as it should, had dropped 4 of 1,600 in CI; the slice has its own test below.)"""
    hub = TraceHub()
    got: list[str] = []
    per_turn, turns = 8, 200
    async with trio.open_nursery() as nursery:

        async def read(events: Subscription) -> None:
            async for event in events:
                got.append(event.call_id)

        nursery.start_soon(read, hub.subscribe(buffer=16))
        await trio.testing.wait_all_tasks_blocked()
        for turn in range(turns):
            for i in range(per_turn):
                hub.publish(_event(turn * per_turn + i))
            await trio.lowlevel.checkpoint()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert hub.statistics().dropped == 0
    assert got == [str(n) for n in range(per_turn * turns)]


async def test_receive_is_still_cancellable_with_events_waiting() -> None:
    hub = TraceHub()
    events = hub.subscribe(buffer=4)
    hub.publish(_event(1))
    with trio.CancelScope() as scope:
        scope.cancel()
        await events.receive()
    assert scope.cancelled_caught
    assert events.receive_nowait().call_id == "1"  # nothing taken by the cancelled one


def test_a_reader_that_caught_up_is_told_of_its_losses_at_once() -> None:
    """Not only with the next event published: a quiet router may publish none."""
    hub = TraceHub()
    events = hub.subscribe(buffer=2)
    for n in range(5):
        hub.publish(_event(n))
    assert [events.receive_nowait().call_id for _ in range(2)] == ["0", "1"]
    notice = events.receive_nowait()
    assert notice.type == "events.dropped" and notice.data == {"count": 3}
    assert notice.ts == 4.0  # when the last one lost was published
    with pytest.raises(trio.WouldBlock):
        events.receive_nowait()
    hub.publish(_event(5))  # and not told twice
    assert events.receive_nowait().call_id == "5"
    assert hub.statistics().dropped == 3


async def test_losses_are_told_before_the_end_of_the_subscription() -> None:
    hub = TraceHub()
    events = hub.subscribe(buffer=1)
    for n in range(3):
        hub.publish(_event(n))
    hub.close()
    got = [(e.type, e.data.get("count")) async for e in events]
    assert got == [("call.accepted", None), ("events.dropped", 2)]


def test_a_clone_shares_the_subscription_and_its_count() -> None:
    hub = TraceHub()
    with hub.subscribe(buffer=1) as events:
        clone = events.clone()
        for n in range(3):
            hub.publish(_event(n))
        assert clone.receive_nowait().call_id == "0"
        assert events.receive_nowait().data == {"count": 2}
        with pytest.raises(trio.WouldBlock):
            clone.receive_nowait()
        assert events.statistics().open_receive_channels == 2
    clone.close()
    hub.publish(_event(3))
    assert not hub.active
    with pytest.raises(trio.ClosedResourceError):
        events.receive_nowait()


async def test_a_reader_slow_on_each_event_still_lets_others_run(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Taking what waits without letting go must not hold the loop for the whole buffer
    when each event takes the reader long: it lets the others run every ``SLICE_S``."""
    hub = TraceHub()
    events = hub.subscribe(buffer=100)
    for n in range(30):
        hub.publish(_event(n))
    taken = 0
    seen: list[int] = []  # how many the reader had taken, each time the other task ran

    async def reader() -> None:
        nonlocal taken
        async for _ in events:
            taken += 1
            mock_clock.jump(SLICE_S * 0.4)  # (the reader's work on the event)
            if taken == 30:
                return

    async def other() -> None:
        while taken < 30:
            seen.append(taken)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        nursery.start_soon(other)
    # three events a slice (0.4 of one each); the two tasks run in either order in a
    # scheduler pass, so up to two slices fall between two turns of the other task
    assert max(b - a for a, b in itertools.pairwise(seen)) <= 6
    assert hub.statistics().dropped == 0
