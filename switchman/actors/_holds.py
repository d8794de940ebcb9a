"""An attempt's hold on its budgets: the conversation with the ledger actor that
reserves the most an attempt can cost before it starts, then settles it to the bill or
gives it back when there is none. Each of these runs in the call task of the dispatcher."""

from __future__ import annotations

import logging
import time
from typing import Final

import attrs
import trio

from switchman._channels import open_channel, send_soon
from switchman.actors._callrun import CallRun
from switchman.actors._env import DispatchEnv
from switchman.actors._messages import Release, Reserve, Settle
from switchman.policy._budget import NO_LEDGER, Limit, Refusal, window_key

log = logging.getLogger("switchman.attempts")


async def reserve_hold(
    env: DispatchEnv,
    rid: str,
    scopes: tuple[str, ...],
    amount: float,
    owner: str = "",
    attempt: int = 0,
    since: float | None = None,
) -> Refusal | None:
    """Ask the ledger to hold ``amount`` on ``scopes`` as reservation ``rid`` (for attempt
    ``attempt`` of job ``owner``, if one): None when it did, else the budget that refused.
    A ledger that went away refuses (fail closed). A call submitted at ``since`` is refused
    a budget whose room is kept for a call before it (``BudgetRoom.kept``): it waits behind.

    Cancelled before the answer is read, the hold is released (shielded, bounded): the
    ledger may have made it already, and no one else would.
    """
    if since is not None and (kept := env.budget_room.kept(scopes, since)) is not None:
        return kept
    send: trio.MemorySendChannel[Refusal | None]
    receive: trio.MemoryReceiveChannel[Refusal | None]
    send, receive = open_channel(1)
    with receive:
        try:
            await send_soon(
                env.ledger,
                Reserve(
                    id=rid,
                    scopes=scopes,
                    amount_usd=amount,
                    reply_to=send,
                    owner=owner,
                    attempt=attempt,
                ),
            )
            try:
                return await receive.receive()
            except trio.EndOfChannel:  # the ledger went away: fail closed
                closed = Limit(scope=NO_LEDGER, period="day", limit_usd=0.0)
                return Refusal(limit=closed, available_usd=0.0, held_usd=0.0)
        except BaseException:
            # cancelled before the answer was read: the ledger may have reserved already
            # (its answer left unread in the buffer), and no one would settle it
            await release_hold(env, rid)
            raise


def tell_budget_refusal(env: DispatchEnv, limit: Limit, asked_usd: float) -> None:
    """Log, once per budget and period window, that a budget has started refusing calls
    (an operator should know without reading every call's error); a global budget's is on
    the status board until it holds an attempt again (``budget_held``), unless what was
    asked is more than its whole limit (that call could never fit: it says nothing of what
    the budget has left)."""
    if limit.scope == NO_LEDGER:  # (no budget refused: the ledger failed, and says so)
        log.error("a reservation got no answer from the budget ledger: its attempt not sent")
        return
    told = env.told_refusals
    window = window_key(limit.period, time.time())
    if limit.scope == "global" and asked_usd <= limit.limit_usd:
        env.board.global_refusing[limit.period] = window
    key = (limit.scope, limit.period, window)
    if key in told:
        return
    if len(told) > 10_000:
        told.clear()
    told.add(key)
    log.warning(
        "the %s %s budget of $%g is refusing calls it cannot cover (until the %s ends)",
        limit.scope,
        limit.period,
        limit.limit_usd,
        limit.period,
    )


def budget_held(env: DispatchEnv) -> None:
    """An attempt's hold was made: the global budget (if any) took it, and is not refusing
    (``RouterStatus.global_budget_refusing``)."""
    if env.board.global_refusing:
        env.board.global_refusing.clear()


async def release_hold(env: DispatchEnv, rid: str) -> None:
    """Give a reservation back (a failed attempt costs nothing).

    Shielded and bounded, so it also runs when the call is being cancelled.
    """
    with trio.CancelScope(shield=True), trio.move_on_after(5.0):
        try:
            await send_soon(env.ledger, Release(id=rid))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the ledger is gone, and its reservations with it


async def settle_hold(env: DispatchEnv, rid: str, usd: float) -> None:
    """Turn a reservation into spend of ``usd`` (what the attempt was billed).

    Shielded and bounded, like ``release_hold``: it also runs when the call is being
    cancelled (an answer cut short is billed all the same)."""
    with trio.CancelScope(shield=True), trio.move_on_after(5.0):
        try:
            await send_soon(env.ledger, Settle(id=rid, actual_usd=usd))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the ledger is gone, and its reservations with it


#: the longest a call waits, in all, for budget room that calls in flight hold
BUDGET_WAIT_S: Final = 30.0
#: ... ending this long before its deadline at the latest (its refusal then stands: a
#: budget_exceeded, not the deadline's timeout, says why it was not sent)
ROOM_MARGIN_S: Final = 1.0
#: how often a waiting call looks whether calls wait for a router slot (it gives its up)
ROOM_LOOK_S: Final = 0.25


async def wait_for_room(
    env: DispatchEnv, run: CallRun, alias: str, refused: Refusal, need_usd: float, waited: float
) -> float | None:
    """``alias``'s attempt, which could cost ``need_usd``, was refused by ``refused``'s
    budget whose room calls in flight hold: wait until their reservations ending leave it
    that room, inside the call's deadline (``ROOM_MARGIN_S`` before it) and
    ``BUDGET_WAIT_S`` in all (``waited`` so far), and while no call waits for one of the
    router's slots (a call waiting for budget room must not hold one another caller
    could use). The time waited when there is room (the refusal is taken back: the model
    is asked again), else None (the refusal stands)."""
    now = trio.current_time()
    end = min(run.deadline - ROOM_MARGIN_S, now + BUDGET_WAIT_S - waited)
    room = env.budget_room
    if end <= now or env.board.calls_waiting:
        return None
    held = "a call waiting since before it" if refused.kept else "calls in flight"
    reason = f"budget room for {alias}: {held} held it"
    ticket = room.enter(refused.limit, need_usd, run.started, now - waited)
    try:
        with run.waiting(reason):
            while not ticket.woken.is_set():
                with trio.move_on_at(min(end, trio.current_time() + ROOM_LOOK_S)):
                    await ticket.woken.wait()
                if ticket.woken.is_set() or trio.current_time() >= end:
                    break
                if env.board.calls_waiting:
                    break  # a call needs this one's slot: no more waiting
                if room.first(ticket):
                    room.hand_out()  # (a new period's room, with no hold ending)
    finally:
        room.leave(ticket)
    fits = ticket.fits
    waits = run.waits or []
    if len(waits) >= 2 and waits[-2].reason == reason == waits[-1].reason:
        # one wait, however often it asked in between (the room it saw went to another)
        waits[-2:] = [attrs.evolve(waits[-2], ms=waits[-2].ms + waits[-1].ms)]
    if not fits:
        return None
    if run.skipped and run.skipped[-1].alias == alias:
        run.skipped.pop()
    if run.errors and run.errors[-1].code == "budget_exceeded":
        run.errors.pop()
    return trio.current_time() - now


#: a wait for a hold to be saved this long or longer is in the call's trace
SAVE_SHOWN_S: Final = 0.01


async def hold_saved(env: DispatchEnv, run: CallRun) -> None:
    """Wait until the store has the attempt's reservation (``DispatchEnv.holds_saved``);
    a wait of ``SAVE_SHOWN_S`` or more is in the trace (a slow store's second a call went
    unexplained)."""
    if env.holds_saved is None:
        return
    since = trio.current_time()
    await env.holds_saved()
    if trio.current_time() - since >= SAVE_SHOWN_S:
        run.waited(since, "its budget hold saved to the store")
