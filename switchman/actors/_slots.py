"""The dispatcher's slots: at most ``capacity`` calls run at once.

When every slot is taken, a call waits in its own task, under its own deadline. A freed
slot goes to the waiting caller (by ``caller.handle``: a gateway key's team) running the
fewest calls, and among those to the one that has waited longest; within a caller, first
come first served. So one team that sends more calls than the router runs at once waits
behind itself, not in front of the others: another team's call gets the next slot that
frees (the slots a flood holds still run to their end; nothing is preempted).

What ``trio.CapacityLimiter`` does, without its per-task borrower bookkeeping (a
``current_task`` lookup and a set of borrowers each way), which the hot path paid on
every call; a free slot costs a counter and a dict entry.
"""

from __future__ import annotations

import collections
import itertools

import trio

from switchman.actors._board import StatusBoard


class Slots:
    def __init__(self, capacity: int, board: StatusBoard | None = None) -> None:
        self.capacity = capacity
        self.taken = 0
        #: slots each caller holds (those waiting hold none)
        self.held: dict[str, int] = {}
        self._board = board
        self._lots: dict[str, trio.lowlevel.ParkingLot] = {}
        #: per waiting caller, the arrival numbers of its waiters, oldest first
        self._arrivals: dict[str, collections.deque[int]] = {}
        self._counter = itertools.count()
        self.waiting = 0

    def take_nowait(self, who: str) -> bool:
        """Take a slot for caller ``who`` if one is free (no checkpoint); False if all are
        taken (a free slot never waits beside a waiter: ``release`` hands it over)."""
        if self.taken < self.capacity:
            self.taken += 1
            self.held[who] = self.held.get(who, 0) + 1
            return True
        return False

    async def take(self, who: str) -> None:
        """Wait for the slot ``release`` hands to ``who``. Cancelled while waiting, the
        task takes no slot and leaves the queue."""
        lot = self._lots.get(who)
        if lot is None:
            lot = self._lots[who] = trio.lowlevel.ParkingLot()
            self._arrivals[who] = collections.deque()
        arrival = next(self._counter)
        self._arrivals[who].append(arrival)
        self._count(1)
        try:
            await lot.park()
        except BaseException:  # (cancelled: it was not handed a slot)
            self._arrivals[who].remove(arrival)
            self._count(-1)
            if not lot:
                del self._lots[who], self._arrivals[who]
            raise

    def release(self, who: str) -> None:
        """``who``'s call is done with its slot: it passes to the fairest waiter, or frees."""
        left = self.held[who] - 1
        if left:
            self.held[who] = left
        else:
            del self.held[who]
        if not self._lots:
            self.taken -= 1
            return
        held, arrivals = self.held, self._arrivals
        # the caller running the fewest calls, then the one whose oldest waiter came first
        pick = min(self._lots, key=lambda w: (held.get(w, 0), arrivals[w][0]))
        lot = self._lots[pick]
        lot.unpark()  # (the slot passes as it is: ``taken`` unchanged)
        arrivals[pick].popleft()
        held[pick] = held.get(pick, 0) + 1
        self._count(-1)
        if not lot:
            del self._lots[pick], arrivals[pick]

    def _count(self, change: int) -> None:
        self.waiting += change
        if self._board is not None:
            self._board.calls_waiting = self.waiting
