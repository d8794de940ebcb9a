"""The ledger actor: serialised reservations never overspend; settle and release."""

from __future__ import annotations

import trio

from switchman.actors import run_ledger
from switchman.actors._messages import Release, Reserve, Settle, SpendQuery
from switchman.policy import Limit
from switchman.policy._budget import Refusal

WALL = 1_800_000_000.0


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
        await nursery.start(
            lambda task_status: run_ledger(
                receive,
                (limit,),
                wall=lambda: WALL,
                task_status=task_status,  # type: ignore[arg-type]
            )
        )

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


async def test_spend_of_ended_windows_is_dropped_each_hour() -> None:
    """A year of hourly spend was kept for ever (109,644 entries for twelve scopes), copied
    on every settle and saved whole after each: ended windows now go once an hour."""
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
        await nursery.start(
            lambda task_status: run_ledger(
                receive,
                (),
                initial=old,
                wall=lambda: clock[0],
                on_state=states.append,
                task_status=task_status,  # type: ignore[arg-type]
            )
        )
        reply_send, reply_receive = trio.open_memory_channel[dict[str, float]](1)

        async def spend(usd: float) -> dict[str, float]:
            await send.send(Spent(scopes=("global",), actual_usd=usd))
            # the query is answered after the spend is handled (and its state seen)
            await send.send(SpendQuery(scope="global", reply_to=reply_send.clone()))
            return await reply_receive.receive()

        spent = await spend(0.5)
        assert abs(spent["hour"] - 0.5) < 1e-9
        kept = {key for _, key in states[-1].spent}
        now = {window_key(p, WALL) for p in ("hour", "day", "month")}
        assert kept == now  # this hour's, this day's and this month's: nothing older
        # an hour on, the last hour's window goes too (the day's and month's stay)
        clock[0] = WALL + 3600.0
        await spend(0.25)
        kept = {key for _, key in states[-1].spent}
        assert window_key("hour", WALL) not in kept
        assert window_key("hour", WALL + 3600.0) in kept
        await send.aclose()
