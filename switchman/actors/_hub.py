"""The trace hub: fan-out of trace events to subscribers, each with a bounded buffer.

Publishing never waits: an event goes into each subscriber's bounded channel with
``send_nowait``; a full buffer drops the event and counts it, and the subscriber is
told how many it lost (an ``events.dropped`` event) as soon as it has room again.
So a slow subscriber loses events and never slows routing. With no subscriber,
``active`` is false and callers skip building events at all.

The hub is run by ``run_trace_hub`` under the root supervisor; when it stops it
closes every subscriber's channel, so subscribers see end-of-channel.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import attrs
import trio

from switchman._result import TraceEvent

#: which events a subscriber takes (see ``TraceHub.subscribe``)
Accept = Callable[[TraceEvent], bool]


class _Subscriber:
    __slots__ = ("accept", "dropped", "receiver", "send")

    def __init__(
        self,
        send: trio.MemorySendChannel[TraceEvent],
        accept: Accept | None,
        receiver: weakref.ref[trio.MemoryReceiveChannel[TraceEvent]],
    ) -> None:
        self.send = send
        self.accept = accept
        #: the subscriber's end, weakly: one dropped without being closed is gone too
        self.receiver = receiver
        self.dropped = 0

    @property
    def gone(self) -> bool:
        """Closed, or let go unclosed: its one end is garbage (a clone of it, still open
        but unseen here, counts as a second end, and keeps it)."""
        ends = self.send.statistics().open_receive_channels
        return ends == 0 or (ends == 1 and self.receiver() is None)


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

    def subscribe(
        self, *, buffer: int = 256, accept: Accept | None = None
    ) -> trio.MemoryReceiveChannel[TraceEvent]:
        """A receive channel of every event from now on; close it to unsubscribe.

        With ``accept``, only the events it returns true for: the others are neither
        delivered nor counted as dropped, so ``events.dropped`` counts only events the
        subscriber wanted. ``accept`` runs in the publisher's task for every event: keep
        it cheap; one that raises lets the event through.
        """
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        send, receive = trio.open_memory_channel[TraceEvent](buffer)
        if self._closed:
            send.close()
        else:
            self._sweep()
            self._subscribers.append(_Subscriber(send, accept, weakref.ref(receive)))
        return receive

    def _sweep(self) -> None:
        """Drop the subscribers that closed their receiving end, or dropped it."""
        self._subscribers = [sub for sub in self._subscribers if not sub.gone]

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
                if sub.dropped:
                    sub.send.send_nowait(
                        TraceEvent(
                            type="events.dropped",
                            call_id="",
                            job_id=None,
                            ts=event.ts,
                            data={"count": sub.dropped},
                        )
                    )
                    sub.dropped = 0
                sub.send.send_nowait(event)
            except trio.WouldBlock:
                sub.dropped += 1
                self._dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                gone.append(sub)
        for sub in gone:
            self._subscribers.remove(sub)

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
    """Serve ``hub`` until cancelled; on the way out, close every subscription."""
    try:
        task_status.started(hub)
        await trio.sleep_forever()
    finally:
        hub.close()
