"""The ledger actor: serialised reservations never overspend; settle and release."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from switchman.actors import run_ledger
from switchman.actors._messages import Release, Reserve, Settle, SpendQuery
from switchman.policy import Limit
from switchman.policy._budget import Refusal

WALL = 1_800_000_000.0


async def _started(nursery: trio.Nursery, *args: Any, **kwargs: Any) -> None:
    """``run_ledger(*args, **kwargs)`` started in ``nursery``."""
    await nursery.start(functools.partial(run_ledger, *args, **kwargs))


async def _reserve(
    inbox: trio.MemorySendChannel[object], rid: str, amount: float
) -> Refusal | None:
    send, receive = trio.open_memory_channel[Refusal | None](1)
    await inbox.send(Reserve(id=rid, scopes=("global",), amount_usd=amount, reply_to=send))
    return await receive.receive()


async def test_concurrent_reservations_never_pass_a_limit_together() -> None:
    limit = Limit(scope="global", period="day", limit_usd=1.0)
    send, receive = trio.open_memory_channel[object](0)
    granted: list[str] = []
    async with trio.open_nursery() as nursery:
        await _started(nursery, receive, (limit,), wall=lambda: WALL)

        async def ask(i: int) -> None:
            if await _reserve(send, f"r{i}", 0.3) is None:
                granted.append(f"r{i}")

        async with trio.open_nursery() as asks:
            for i in range(10):
                asks.start_soon(ask, i)
        assert len(granted) == 3  # 3 x 0.30 fits in 1.00, a fourth does not
        await send.send(Settle(id=granted[0], actual_usd=0.1))
        await send.send(Release(id=granted[1]))
        assert await _reserve(send, "again", 0.5) is None  # 0.1 + 0.3 + 0.5 <= 1.0
        refused = await _reserve(send, "too-much", 0.2)
        # the limit that refused, what is left of it, and what calls in flight hold
        assert refused is not None and refused.limit == limit
        assert abs(refused.available_usd - 0.1) < 1e-9  # 1.0 - 0.1 spent - 0.3 - 0.5 held
        assert abs(refused.held_usd - 0.8) < 1e-9
        reply_send, reply_receive = trio.open_memory_channel[dict[str, float]](1)
        await send.send(SpendQuery(scope="global", reply_to=reply_send))
        spent = await reply_receive.receive()
        assert abs(spent["day"] - 0.1) < 1e-9
        await send.aclose()


async def test_spend_of_ended_windows_is_dropped_each_hour(autojump_clock: MockClock) -> None:
    """A year of hourly spend was kept for ever (109,644 entries for twelve scopes), copied
    on every settle and saved whole after each: ended windows now go once an hour, each
    once its period's longest has passed on trio's clock since it was current (or loaded:
    a restarted router cannot know the wall clock was not stepped forward meanwhile)."""
    from switchman.actors._messages import Spent
    from switchman.policy._budget import Ledger, record, window_key

    clock = [WALL]
    old = Ledger()
    for hours in range(1, 24 * 90):  # ninety days of it, an hour apart
        old = record(old, ("global",), actual_usd=0.01, wall_now=WALL - 3600.0 * hours)
    assert len(old.spent) > 24 * 90
    states: list[Ledger] = []
    send, receive = trio.open_memory_channel[object](0)
    async with trio.open_nursery() as nursery:
        await _started(
            nursery,
            receive,
            (),
            initial=old,
            wall=lambda: clock[0] + trio.current_time(),
            on_state=states.append,
        )
        reply_send, reply_receive = trio.open_memory_channel[dict[str, float]](1)

        async def spend(usd: float) -> set[str]:
            await send.send(Spent(scopes=("global",), actual_usd=usd))
            # the query is answered after the spend is handled (and its state seen)
            await send.send(SpendQuery(scope="global", reply_to=reply_send.clone()))
            await reply_receive.receive()
            return {key for _, key in states[-1].spent}

        def now(*periods: str) -> set[str]:
            return {window_key(p, clock[0] + trio.current_time()) for p in periods}

        clock[0] -= trio.current_time()  # the wall clock reads WALL now
        assert len(await spend(0.5)) == len(old.spent) + 1  # loaded: kept for now
        await trio.sleep(3600.0)  # an hour on, the hours loaded and the last one go
        kept = await spend(0.25)
        assert {k for k in kept if k.startswith("hour:")} == now("hour")
        assert window_key("hour", WALL) not in kept and window_key("day", WALL) in kept
        assert len(kept) > 90  # the ninety days loaded, the months
        await trio.sleep(86_400.0)
        kept = await spend(0.25)
        assert {k for k in kept if not k.startswith("month:")} == now("hour", "day")
        await trio.sleep(31 * 86_400.0)
        assert await spend(0.25) == now("hour", "day", "month")  # nothing older
        await send.aclose()


async def test_a_wall_clock_stepped_forward_and_back_finds_its_spend_counted(
    autojump_clock: MockClock,
) -> None:
    """NTP undoing a jump, a wrong date put right: the spend of the window the clock
    returns to still counts, and the budget is not open again (it was, whole: the window
    was dropped as ended while the clock was ahead). It goes once it has surely ended,
    by trio's clock."""
    limit = Limit(scope="global", period="month", limit_usd=1.0)
    offset = [WALL - trio.current_time()]
    send, receive = trio.open_memory_channel[object](0)
    async with trio.open_nursery() as nursery:
        await _started(nursery, receive, (limit,), wall=lambda: offset[0] + trio.current_time())
        assert await _reserve(send, "a", 0.9) is None
        await send.send(Settle(id="a", actual_usd=0.9))
        offset[0] += 40 * 86_400.0  # forty days ahead, for a minute
        assert await _reserve(send, "ahead", 0.5) is None  # a new month's budget
        await send.send(Release(id="ahead"))
        await trio.sleep(60.0)
        offset[0] -= 40 * 86_400.0
        refused = await _reserve(send, "back", 0.5)
        assert refused is not None and abs(refused.available_usd - 0.1) < 1e-9
        await send.aclose()


async def test_a_settle_that_fails_counts_its_amount_and_ends_its_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in settling one attempt: the ledger had crashed and a restart resumed with the
    hold still open (held for good, counted at its most at the next start) and the amount
    settled lost. The message is logged; its hold ends, its amount counts; the ledger
    serves on."""
    from switchman.actors import _ledger

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("injected bug in settle")

    monkeypatch.setattr(_ledger, "settle", broken)
    limit = Limit(scope="global", period="day", limit_usd=1.0)
    send, receive = trio.open_memory_channel[object](0)
    states: list[object] = []
    async with trio.open_nursery() as nursery:
        await _started(nursery, receive, (limit,), wall=lambda: WALL, on_change=states.append)
        assert await _reserve(send, "a", 0.6) is None
        await send.send(Settle(id="a", actual_usd=0.25))
        assert await _reserve(send, "b", 0.7) is None  # the 0.6 held no more: 0.25 + 0.7
        reply_send, reply_receive = trio.open_memory_channel[dict[str, float]](1)
        await send.send(SpendQuery(scope="global", reply_to=reply_send))
        assert abs((await reply_receive.receive())["day"] - 0.25) < 1e-9
        await send.aclose()


async def test_cancelled_it_applies_the_settles_and_releases_waiting_in_its_inbox() -> None:
    """Cancelled (the router stopped at once), the holds its calls ended as they were
    cancelled wait in its inbox: applied, and told (``on_change``) before it ends, and
    ``on_stop`` called: a store had counted each at its most at the next start."""
    limit = Limit(scope="global", period="day", limit_usd=1.0)
    send, receive = trio.open_memory_channel[object](16)
    states: list[object] = []
    stopped: list[bool] = []
    async with trio.open_nursery() as nursery:
        await _started(
            nursery,
            receive,
            (limit,),
            wall=lambda: WALL,
            on_change=states.append,
            on_stop=lambda: stopped.append(True),
        )
        assert await _reserve(send, "a", 0.5) is None
        assert await _reserve(send, "b", 0.4) is None
        send.send_nowait(Settle(id="a", actual_usd=0.1))
        send.send_nowait(Release(id="b"))
        nursery.cancel_scope.cancel()
    last = states[-1]
    assert last.reservations == {}  # type: ignore[attr-defined]
    spent = last.spent  # type: ignore[attr-defined]
    assert [n for (_, key), n in spent.items() if key.startswith("day:")] == [100_000_000]
    assert stopped == [True]
