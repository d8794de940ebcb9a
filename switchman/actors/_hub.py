"""The trace hub: fan-out of trace events to subscribers, each with a bounded buffer.

Publishing never waits: an event goes into each subscriber's bounded channel with
``send_nowait``; a full buffer drops the event and counts it, and the subscriber is
told how many it lost (an ``events.dropped`` event) before the next event it gets, or
as soon as it has taken every event waiting, whichever comes first. So a slow
subscriber loses events and never slows routing. With no subscriber, ``active`` is
false and callers skip building events at all.

The hub is run by ``run_trace_hub`` under the root supervisor; when it stops it
closes every subscriber's channel, so subscribers see end-of-channel.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Final, final

import attrs
import trio
from trio.lowlevel import checkpoint_if_cancelled

from switchman._result import TraceEvent

log = logging.getLogger(__name__)

#: which events a subscriber takes (see ``TraceHub.subscribe``)
Accept = Callable[[TraceEvent], bool]


class _Subscriber:
    __slots__ = ("accept", "dropped", "dropped_ts", "receivers", "send")

    def __init__(
        self,
        send: trio.MemorySendChannel[TraceEvent],
        accept: Accept | None,
        receiver: weakref.ref[trio.MemoryReceiveChannel[TraceEvent]],
    ) -> None:
        self.send = send
        self.accept = accept
        #: the subscriber's ends (its clones too), weakly: ends dropped without being
        #: closed are gone too
        self.receivers = [receiver]
        self.dropped = 0
        self.dropped_ts = 0.0  # when the last of them was published

    def notice(self, ts: float) -> TraceEvent:
        """The ``events.dropped`` event for what was dropped so far."""
        return TraceEvent(
            type="events.dropped", call_id="", job_id=None, ts=ts, data={"count": self.dropped}
        )

    @property
    def gone(self) -> bool:
        """Closed, or let go unclosed: every end of it is closed or garbage."""
        ends = self.send.statistics().open_receive_channels
        return ends == 0 or all(end() is None for end in self.receivers)


#: how long a subscriber's reader may take events that wait before it lets others run
SLICE_S: Final = 0.001


@final
class Subscription(trio.abc.ReceiveChannel[TraceEvent]):
    """A subscriber's channel of trace events (what ``router.subscribe()`` returns).

    ``receive`` takes an event already waiting at once: it raises ``Cancelled`` if the
    task is cancelled, but lets other tasks run only when it has to wait for an event, or
    once ``SLICE_S`` has passed since it last did. A busy router publishes several events
    each time a reader's task runs, so a reader let go of the loop after each event
    would fall behind for good and lose most of them; this way a plain ``async for``
    keeps up. A reader that spends long on each event still lets the router run every
    ``SLICE_S`` or so, and loses what its buffer cannot hold: it never slows routing.

    Once it has given every event waiting, one more says how many the hub dropped
    while its buffer was full (``events.dropped``), if it dropped any and had no room
    to say so since: a reader that catches up learns of its losses then, not with the
    next event published. Otherwise it is a ``trio.MemoryReceiveChannel``'s other half:
    ``receive_nowait``, ``clone``, ``statistics``, ``close`` and ``with``.
    """

    __slots__ = ("_events", "_since", "_sub")

    def __init__(self, events: trio.MemoryReceiveChannel[TraceEvent], sub: _Subscriber) -> None:
        self._events = events
        self._sub = sub
        self._since = -math.inf  # when it last let other tasks run (trio time)

    def receive_nowait(self) -> TraceEvent:
        """The next event waiting; raises ``trio.WouldBlock`` if there is none."""
        try:
            return self._events.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            sub = self._sub
            if not sub.dropped:  # (a closed end raised ClosedResourceError instead)
                raise
            notice, sub.dropped = sub.notice(sub.dropped_ts), 0
            return notice

    async def receive(self) -> TraceEvent:
        await checkpoint_if_cancelled()
        try:
            event = self.receive_nowait()
        except trio.WouldBlock:
            event = await self._events.receive()
            self._since = trio.current_time()
            return event
        if trio.current_time() - self._since >= SLICE_S:  # held the loop long enough
            await trio.lowlevel.cancel_shielded_checkpoint()  # (the event is kept)
            self._since = trio.current_time()
        return event

    def clone(self) -> Subscription:
        """Another end of the same subscription (each event goes to one of them)."""
        events = self._events.clone()
        self._sub.receivers.append(weakref.ref(events))
        return Subscription(events, self._sub)

    def statistics(self) -> trio.MemoryChannelStatistics:
        return self._events.statistics()

    def close(self) -> None:
        """Unsubscribe (once every clone is closed too)."""
        self._events.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@attrs.frozen(kw_only=True)
class HubStatistics:
    subscribers: int
    published: int
    dropped: int


#: every how many events the hub looks for subscribers that closed their channel
SWEEP_EVERY = 64


class TraceHub:
    """Owned by its actor; ``publish`` and ``subscribe`` are safe to call from any task.

    A subscriber that closed its channel is dropped at its next delivery, at the next
    ``subscribe``, or within ``SWEEP_EVERY`` events, whichever comes first (one whose
    ``accept`` turns every event down gets no delivery to fail); one that let its channel
    go without closing it, at the next ``subscribe`` or within ``SWEEP_EVERY`` events. So
    ``active`` turns false again once nobody listens."""

    def __init__(self) -> None:
        self._subscribers: list[_Subscriber] = []
        self._published = 0
        self._dropped = 0
        self._closed = False

    @property
    def active(self) -> bool:
        """True when someone is listening: build events only then."""
        return bool(self._subscribers)

    def subscribe(self, *, buffer: int = 256, accept: Accept | None = None) -> Subscription:
        """A receive channel of every event from now on; close it to unsubscribe.

        With ``accept``, only the events it returns true for: the others are neither
        delivered nor counted as dropped, so ``events.dropped`` counts only events the
        subscriber wanted. ``accept`` runs in the publisher's task for every event: keep
        it cheap; one that raises lets the event through.
        """
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        send, receive = trio.open_memory_channel[TraceEvent](buffer)
        sub = _Subscriber(send, accept, weakref.ref(receive))
        if self._closed:
            send.close()
        else:
            self._sweep()
            self._subscribers.append(sub)
        return Subscription(receive, sub)

    def _sweep(self) -> None:
        """Drop the subscribers that closed their receiving end, or dropped it."""
        self._subscribers = [sub for sub in self._subscribers if not sub.gone]

    def tell(self, event: TraceEvent) -> None:
        """``publish``, and a bug in it logged rather than raised: the call or the actor
        telling is not failed by its trace (a provider actor crashed, and its calls in
        flight with it, on a breaker change it could not announce)."""
        try:
            self.publish(event)
        except Exception:
            log.exception("trace event %s of call %s not published", event.type, event.call_id)

    def publish(self, event: TraceEvent) -> None:
        """Deliver to every subscriber with room; never blocks."""
        self._published += 1
        if not self._published % SWEEP_EVERY:
            self._sweep()
        gone: list[_Subscriber] = []
        for sub in self._subscribers:
            if sub.accept is not None and not _accepts(sub.accept, event):
                continue
            try:
                if sub.dropped:  # told before this event, if there is room
                    sub.send.send_nowait(sub.notice(event.ts))
                    sub.dropped = 0
                sub.send.send_nowait(event)
            except trio.WouldBlock:
                sub.dropped += 1
                sub.dropped_ts = event.ts
                self._dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                gone.append(sub)
        for sub in gone:
            self._subscribers.remove(sub)

    def reopen(self) -> None:
        """Take subscriptions again (after ``close``: the hub's actor restarted)."""
        self._closed = False

    def close(self) -> None:
        self._closed = True
        for sub in self._subscribers:
            sub.send.close()
        self._subscribers.clear()

    def statistics(self) -> HubStatistics:
        return HubStatistics(
            subscribers=len(self._subscribers), published=self._published, dropped=self._dropped
        )


def _accepts(accept: Accept, event: TraceEvent) -> bool:
    try:
        return accept(event)
    except Exception:  # a subscriber's bug must not fail the call publishing the event
        return True


async def run_trace_hub(
    hub: TraceHub, *, task_status: trio.TaskStatus[TraceHub] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``hub`` until cancelled; on the way out, close every subscription (a hub
    restarted after a crash takes subscriptions again)."""
    hub.reopen()
    try:
        task_status.started(hub)
        await trio.sleep_forever()
    finally:
        hub.close()


@trio.lowlevel.enable_ki_protection
async def publish_after_the_call(hub: TraceHub, events: list[TraceEvent]) -> None:
    """Publish breaker changes a moment later: the outcome that caused one reached its call
    task first, and that task tells its ``attempt.finished`` in its next step, so a watcher
    reads the attempt, then what it did to the breaker. Each is stamped as it goes out, so
    its time is not before those of the events it follows."""
    await trio.lowlevel.checkpoint()
    await trio.lowlevel.checkpoint()
    now = time.time()
    for event in events:
        hub.tell(attrs.evolve(event, ts=max(event.ts, now)))
