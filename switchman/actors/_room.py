"""Budget room freed: the ledger tells the calls waiting for it.

A burst of calls reserves what each could cost at most; a budget that could pay for most of
them refused all but a few, its room held by the calls in flight (200 calls at once against
$0.20: 195 refused, 71% of it left unspent). A call refused only for what calls in flight
hold waits instead, briefly, for an attempt to settle or give its hold back, and asks again
(``wait_for_room``)."""

from __future__ import annotations

import time
from typing import Any

import trio

from switchman.policy._budget import Ledger, Limit, remaining_usd, spent_usd


class BudgetRoom:
    """Called by the ledger actor with the ledger after each change; wakes every call
    waiting (``wait``) once a reservation ended (settled or released)."""

    def __init__(self) -> None:
        self._held = 0
        self._freed: trio.Event | None = None
        self._ledger: Ledger | None = None

    def __call__(self, ledger: Any) -> None:
        self._ledger = ledger
        held = len(ledger.reservations)
        if held < self._held and self._freed is not None:
            self._freed.set()
            self._freed = None
        self._held = held

    def fits(self, limit: Limit, usd: float) -> bool | None:
        """Whether ``limit`` has ``usd`` left now, as the ledger last stood (the reservation
        is asked for again only then: a call waking at every hold that ends, and asking,
        filled its trace with refusals); None when it never will this period, its spend
        alone leaving less."""
        ledger = self._ledger
        if ledger is None:
            return True
        now = time.time()
        if limit.limit_usd - spent_usd(ledger, limit.scope, limit.period, wall_now=now) < usd:
            return None
        return remaining_usd(ledger, limit, wall_now=now) >= usd

    async def wait(self) -> None:
        """Return once a reservation ends."""
        if self._freed is None:
            self._freed = trio.Event()
        await self._freed.wait()
