"""Budget room freed: the ledger hands it to the calls waiting for it, in their order.

A burst of calls reserves what each could cost at most; a budget that could pay for most of
them refused all but a few, its room held by the calls in flight (200 calls at once against
$0.20: 195 refused, 71% of it left unspent). A call refused only for what calls in flight
hold waits instead, briefly, for an attempt to settle or give its hold back, and asks again
(``wait_for_room``). The room freed goes to the waiting calls in the order they were
submitted: woken all at once, whichever ran first took it, and a call could wait its whole
``BUDGET_WAIT_S`` while calls that came after it were answered. A call whose need does not
fit yet lets later, smaller ones take what does, for ``PASS_S``; after that the room is kept
for it while what calls after it hold would make its room (under steady traffic of small
calls, a large one waited its whole 30 s with the budget mostly unspent): later calls of its
budget, waiting or new, wait behind it. Room is not kept for a call that waits on holds
older than its wait (a long call's): the calls behind it would wait as long, for nothing."""

from __future__ import annotations

import bisect
import math
import time
from typing import Any, Final

import attrs
import trio

from switchman.policy._budget import (
    Ledger,
    Limit,
    Refusal,
    remaining_usd,
    reserved_usd,
    spent_usd,
    to_nanos,
    window_key,
)

#: how long a waiting call lets later, smaller ones pass before room is kept for it
PASS_S: Final = 1.0


@attrs.define(eq=False)
class RoomTicket:
    """A call waiting for ``usd`` of ``limit``'s room; ``since``: when it was submitted
    (the earlier, the sooner it is served). ``fits`` once ``woken``: True when room was
    handed to it, None when its limit's spend alone leaves less than it needs this period
    (it never will); False while it waits."""

    limit: Limit
    usd: float
    since: float
    #: trio time it began waiting (its first wait of the call): after ``PASS_S``, the room
    #: is kept for it
    waiting_since: float = 0.0
    woken: trio.Event = attrs.field(factory=trio.Event)
    fits: bool | None = False
    #: ``usd`` in whole nano-dollars, as the ledger counts it: room is weighed in them (a
    #: float's noise, 0.00043030000000000005 for 0.0004303, had room that exactly covers a
    #: need read as too small, the call waiting out another's whole attempt)
    need: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.need = to_nanos(self.usd)


class BudgetRoom:
    """Called by the ledger actor with the ledger after each change; once a reservation
    ended (settled or released), hands the room it left to the calls waiting (``enter``)."""

    def __init__(self) -> None:
        self._held = 0
        self._ledger: Ledger | None = None
        self._waiting: list[RoomTicket] = []
        #: while calls wait: each hold's trio time first seen (a hold made before the
        #: first of them is not in it, older than any wait)
        self._seen: dict[str, float] = {}

    def __call__(self, ledger: Any) -> None:
        self._ledger = ledger
        held = len(ledger.reservations)
        if self._waiting:
            now, seen = trio.current_time(), self._seen
            self._seen = {rid: seen.get(rid, now) for rid in ledger.reservations}
        elif self._seen:
            self._seen = {}
        if held < self._held and self._waiting:
            self.hand_out()
        self._held = held

    def _keeps(self, ticket: RoomTicket, room: int, clock: float, wall: float) -> bool:
        """Whether room is kept for ``ticket``, which ``room`` does not fit: it has let
        others pass for ``PASS_S``, and the holds made since it began waiting would, with
        ``room`` (nano-dollars), make its need (it is waiting on calls after it, not on older
        ones)."""
        if clock - ticket.waiting_since < PASS_S or self._ledger is None:
            return False
        limit = ticket.limit
        window = (limit.scope, window_key(limit.period, wall))
        later = sum(
            r.amount_nanos
            for rid, r in self._ledger.reservations.items()
            if self._seen.get(rid, -math.inf) > ticket.waiting_since and window in r.windows
        )
        return room + later >= ticket.need

    def enter(self, limit: Limit, usd: float, since: float, waiting_since: float) -> RoomTicket:
        """Wait in line for ``usd`` of ``limit``'s room (``leave`` when done waiting); the
        ticket is woken at once when there is room already, or none this period."""
        ticket = RoomTicket(limit=limit, usd=usd, since=since, waiting_since=waiting_since)
        if self._ledger is not None:  # the holds there now are older than this wait
            for rid in self._ledger.reservations:
                self._seen.setdefault(rid, -math.inf)
        bisect.insort(self._waiting, ticket, key=lambda t: t.since)
        self.hand_out()
        return ticket

    def leave(self, ticket: RoomTicket) -> None:
        if ticket in self._waiting:
            self._waiting.remove(ticket)

    def first(self, ticket: RoomTicket) -> bool:
        return bool(self._waiting) and self._waiting[0] is ticket

    def kept(self, scopes: tuple[str, ...], since: float) -> Refusal | None:
        """The budget of ``scopes`` whose room is kept for a call submitted before
        ``since`` (one that has waited ``PASS_S`` or more), as a refusal: a call asking
        for a hold on it waits behind that one; None when none is kept."""
        ledger = self._ledger
        if not self._waiting or ledger is None:
            return None
        clock, wall = trio.current_time(), time.time()
        ticket = self._waiting[0]  # (room is kept for the first in line only)
        limit = ticket.limit
        if ticket.since >= since or limit.scope not in scopes:
            return None
        room = remaining_usd(ledger, limit, wall_now=wall)
        left = to_nanos(room)
        if left >= ticket.need or not self._keeps(ticket, left, clock, wall):
            return None
        return Refusal(
            limit=limit,
            available_usd=room,
            held_usd=reserved_usd(ledger, limit.scope, limit.period, wall_now=wall),
            kept=True,
        )

    def hand_out(self) -> None:
        """The room each waiting call's limit has, as the ledger last stood, to the calls
        in their order: each whose need fits what is left is woken, and its need counted
        taken (a later call whose smaller need still fits goes too, unless room is kept
        for the call that does not fit, ``_keeps``: then nothing more of its limit is
        handed out before it); a call whose limit's spend alone leaves less than it needs
        is woken to give up."""
        ledger = self._ledger
        now, clock = time.time(), trio.current_time()
        left: dict[Limit, int] = {}  # (nano-dollars)
        waiting = []
        for ticket in self._waiting:
            limit = ticket.limit
            if ledger is None:
                ticket.fits = True
            elif (
                to_nanos(limit.limit_usd)
                - to_nanos(spent_usd(ledger, limit.scope, limit.period, wall_now=now))
                < ticket.need
            ):
                ticket.fits = None
            else:
                room = left.get(limit)
                if room is None:
                    room = to_nanos(remaining_usd(ledger, limit, wall_now=now))
                if room < ticket.need:
                    # past its turn to let others pass, the room may be kept for it
                    kept = ticket is self._waiting[0] and self._keeps(ticket, room, clock, now)
                    left[limit] = -1 if kept else room
                    waiting.append(ticket)
                    continue
                left[limit] = room - ticket.need
                ticket.fits = True
            ticket.woken.set()
        self._waiting = waiting
