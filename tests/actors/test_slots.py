"""The dispatcher's slots: a freed slot goes to the caller running the fewest calls."""

from __future__ import annotations

import trio
import trio.testing

from switchman.actors._board import StatusBoard
from switchman.actors._slots import Slots, Turns


async def test_a_freed_slot_goes_to_the_caller_running_the_fewest() -> None:
    board = StatusBoard()
    slots = Slots(2, board)
    assert slots.take_nowait("a") and slots.take_nowait("a")
    assert not slots.take_nowait("b")
    order: list[str] = []

    async def wait(who: str, name: str) -> None:
        await slots.take(who)
        order.append(name)

    async with trio.open_nursery() as nursery:
        for i in range(3):  # a floods first...
            nursery.start_soon(wait, "a", f"a{i}")
            await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(wait, "b", "b0")  # ...then b asks once
        await trio.testing.wait_all_tasks_blocked()
        assert slots.waiting == board.calls_waiting == 4
        slots.release("a")  # a runs 1, b none: b's turn, though a's waiters came first
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["b0"]
        slots.release("a")  # a runs none, b one: a's oldest
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["b0", "a0"]
        for who in ("b", "a"):
            slots.release(who)
            await trio.testing.wait_all_tasks_blocked()
        assert order == ["b0", "a0", "a1", "a2"]
    assert slots.taken == 2 and slots.held == {"a": 2} and slots.waiting == 0
    slots.release("a")
    slots.release("a")
    assert slots.taken == 0 and slots.held == {}


async def test_a_waiter_cancelled_leaves_the_queue_and_takes_no_slot() -> None:
    slots = Slots(1)
    assert slots.take_nowait("a")
    with trio.move_on_after(0.01):
        await slots.take("b")
    assert slots.waiting == 0
    slots.release("a")  # nobody waits: the slot is free again
    assert slots.taken == 0 and slots.take_nowait("b")


async def test_many_waiters_of_one_caller_cancelled_at_once() -> None:
    """(Their clean-ups run one after another, once all of them had left the queue.)"""
    slots = Slots(1)
    assert slots.take_nowait("a")
    with trio.move_on_after(0.01):
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(slots.take, "a")
    assert slots.waiting == 0
    slots.release("a")
    assert slots.taken == 0 and slots.held == {}


async def test_callers_waiting_for_a_provider_are_woken_in_turn() -> None:
    turns = Turns()
    order: list[str] = []

    async def wait(who: str, name: str) -> None:
        await turns.wait(who)
        order.append(name)

    async with trio.open_nursery() as nursery:
        for name in ("a0", "a1", "a2"):
            nursery.start_soon(wait, "a", name)
            await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(wait, "b", "b0")
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as gone:  # a waiter that leaves gives up its place
            gone.cancel()
            await turns.wait("c")
        assert turns.waiting == 4
        for _ in range(4):
            turns.wake_one()
            await trio.testing.wait_all_tasks_blocked()
        turns.wake_one()  # (nobody left: nothing happens)
    assert order == ["a0", "b0", "a1", "a2"]
    assert turns.waiting == 0


async def test_a_slot_freed_before_its_waiter_came_is_not_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A call turned away at a provider's limit whose busy attempt ended before it came to
    wait: the wake found nobody and the call slept its whole wait (a second) with the
    slot free. The wake is kept for the next waiter, one at most; a waiter woken as its
    own wait ran out hands the turn on."""
    turns = Turns()
    turns.wake_one()  # (nobody waits yet)
    turns.wake_one()
    began = trio.current_time()
    with trio.fail_after(0.5):
        await turns.wait("a")  # at once
    assert trio.current_time() == began
    with trio.move_on_after(1.0):  # one wake kept, not two
        await turns.wait("a")
    assert trio.current_time() == began + 1.0
    woken: list[str] = []

    async def wait(who: str, seconds: float) -> None:
        with trio.move_on_after(seconds):
            await turns.wait(who)
            woken.append(who)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, "leaving", 0.5)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(wait, "staying", 5.0)
        await trio.sleep(0.5)  # the first one's wait runs out as it is woken
        turns.wake_one()
    assert woken in (["leaving"], ["staying"])
    assert turns.waiting == 0
