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


class _Waiter:
    __slots__ = ("arrival", "handed")

    def __init__(self, arrival: int) -> None:
        self.arrival = arrival
        self.handed = trio.Event()


class Slots:
    def __init__(self, capacity: int, board: StatusBoard | None = None) -> None:
        self.capacity = capacity
        self.taken = 0
        #: slots each caller holds (those waiting hold none)
        self.held: dict[str, int] = {}
        self._board = board
        #: per waiting caller, its waiters, oldest first (no empty queue is kept)
        self._queues: dict[str, collections.deque[_Waiter]] = {}
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
        waiter = _Waiter(next(self._counter))
        queue = self._queues.get(who)
        if queue is None:
            queue = self._queues[who] = collections.deque()
        queue.append(waiter)
        self._count(1)
        try:
            await waiter.handed.wait()
        except BaseException:
            if waiter.handed.is_set():  # (handed one as it was cancelled: it goes on)
                self.release(who)
            else:
                queue.remove(waiter)
                self._count(-1)
                if not queue and self._queues.get(who) is queue:
                    del self._queues[who]
            raise

    def release(self, who: str) -> None:
        """``who``'s call is done with its slot: it passes to the fairest waiter, or frees."""
        held = self.held
        left = held[who] - 1
        if left:
            held[who] = left
        else:
            del held[who]
        queues = self._queues
        if not queues:
            self.taken -= 1
            return
        # the caller running the fewest calls, then the one whose oldest waiter came first
        pick = min(queues, key=lambda w: (held.get(w, 0), queues[w][0].arrival))
        queue = queues[pick]
        waiter = queue.popleft()
        if not queue:
            del queues[pick]
        held[pick] = held.get(pick, 0) + 1  # (the slot passes as it is: ``taken`` unchanged)
        self._count(-1)
        waiter.handed.set()

    def _count(self, change: int) -> None:
        self.waiting += change
        if self._board is not None:
            self._board.calls_waiting = self.waiting


class Turns:
    """The calls waiting for one provider to have an attempt slot free, woken one at a
    time as its attempts end: in turn by caller (round robin, the oldest waiter of each),
    so a team with many calls waiting does not hold back another's one."""

    def __init__(self) -> None:
        self._queues: collections.OrderedDict[str, collections.deque[trio.Event]] = (
            collections.OrderedDict()
        )
        self.waiting = 0
        #: a slot freed while nobody waited: the next call to wait asks at once (it was
        #: turned away, and the attempt ended before it came to wait: woken by nothing, it
        #: slept its whole wait with the slot free)
        self._spare = False

    async def wait(self, who: str) -> None:
        """Until ``wake_one`` comes to this call's turn (cancel it to stop waiting)."""
        if self._spare:
            self._spare = False
            await trio.lowlevel.checkpoint()
            return
        woken = trio.Event()
        queue = self._queues.get(who)
        if queue is None:
            queue = self._queues[who] = collections.deque()
        queue.append(woken)
        self.waiting += 1
        try:
            await woken.wait()
        except BaseException:
            if not woken.is_set():  # (left before its turn)
                queue.remove(woken)
                self.waiting -= 1
                if not queue and self._queues.get(who) is queue:
                    del self._queues[who]
            else:  # woken as it left (its wait ran out): the turn goes to the next
                self.wake_one()
            raise

    def wake_one(self) -> None:
        """An attempt slot freed: the next caller in turn, its oldest waiter, asks for it."""
        if not self._queues:
            self._spare = True
            return
        self._spare = False
        who, queue = next(iter(self._queues.items()))
        woken = queue.popleft()
        if queue:
            self._queues.move_to_end(who)  # its next waiter after the other callers'
        else:
            del self._queues[who]
        self.waiting -= 1
        woken.set()
