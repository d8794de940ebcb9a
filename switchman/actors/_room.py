"""Budget room freed: the ledger hands it to the calls waiting for it, in their order.

A burst of calls reserves what each could cost at most; a budget that could pay for most of
them refused all but a few, its room held by the calls in flight (200 calls at once against
$0.20: 195 refused, 71% of it left unspent). A call refused only for what calls in flight
hold waits instead, briefly, for an attempt to settle or give its hold back, and asks again
(``wait_for_room``). The room freed goes to the waiting calls in the order they were
submitted: woken all at once, whichever ran first took it, and a call could wait its whole
``BUDGET_WAIT_S`` while calls that came after it were answered. A call whose need does not
fit yet lets later, smaller ones take what does, for ``PASS_S``; after that the room is kept
for it: later calls of its budget, waiting or new, wait behind it (under steady traffic of
small calls, a large one waited its whole 30 s with the budget mostly unspent)."""

from __future__ import annotations

import bisect
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


class BudgetRoom:
    """Called by the ledger actor with the ledger after each change; once a reservation
    ended (settled or released), hands the room it left to the calls waiting (``enter``)."""

    def __init__(self) -> None:
        self._held = 0
        self._ledger: Ledger | None = None
        self._waiting: list[RoomTicket] = []

    def __call__(self, ledger: Any) -> None:
        self._ledger = ledger
        held = len(ledger.reservations)
        if held < self._held and self._waiting:
            self.hand_out()
        self._held = held

    def enter(self, limit: Limit, usd: float, since: float, waiting_since: float) -> RoomTicket:
        """Wait in line for ``usd`` of ``limit``'s room (``leave`` when done waiting); the
        ticket is woken at once when there is room already, or none this period."""
        ticket = RoomTicket(limit=limit, usd=usd, since=since, waiting_since=waiting_since)
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
        now = trio.current_time()
        for ticket in self._waiting:
            if ticket.since >= since:
                break
            limit = ticket.limit
            if limit.scope in scopes and now - ticket.waiting_since >= PASS_S:
                wall = time.time()
                return Refusal(
                    limit=limit,
                    available_usd=remaining_usd(ledger, limit, wall_now=wall),
                    held_usd=reserved_usd(ledger, limit.scope, limit.period, wall_now=wall),
                    kept=True,
                )
        return None

    def hand_out(self) -> None:
        """The room each waiting call's limit has, as the ledger last stood, to the calls
        in their order: each whose need fits what is left is woken, and its need counted
        taken (a later call whose smaller need still fits goes too, until the call that
        does not fit has waited ``PASS_S``: then nothing more of its limit is handed out
        before it); a call whose limit's spend alone leaves less than it needs is woken to
        give up."""
        ledger = self._ledger
        now, clock = time.time(), trio.current_time()
        left: dict[Limit, float] = {}
        waiting = []
        for ticket in self._waiting:
            limit = ticket.limit
            if ledger is None:
                ticket.fits = True
            elif limit.limit_usd - spent_usd(ledger, limit.scope, limit.period, wall_now=now) < (
                ticket.usd
            ):
                ticket.fits = None
            else:
                room = left.get(limit)
                if room is None:
                    room = remaining_usd(ledger, limit, wall_now=now)
                if room < ticket.usd:
                    # past its turn to let others pass, the room is kept for it
                    kept = clock - ticket.waiting_since >= PASS_S
                    left[limit] = -1.0 if kept else room
                    waiting.append(ticket)
                    continue
                left[limit] = room - ticket.usd
                ticket.fits = True
            ticket.woken.set()
        self._waiting = waiting
