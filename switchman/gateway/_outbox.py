"""What websockets owe their clients: each message as it goes out, the room a team's
sockets share, and what each open socket still owes.

A socket's outbox is bounded on its own (``_ws.OUTBOX`` messages, ``_ws.OUTBOX_BYTES``
of text); :class:`Outboxes` bounds the text all the sockets of one team (a key's handle,
or the gateway without keys) owe together, so a team's many sockets that stop reading
cannot take the daemon's memory: one socket's limit times the sockets a team may open
would be hundreds of MB. It also knows a gateway's open sockets, so that a daemon forced
to exit (a client not reading holds its stop up) can log what each still owed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import attrs
import trio


@attrs.frozen
class Text:
    """A message as it goes out: its JSON text, its type, and the job of a result."""

    kind: str
    text: str
    job_id: str | None = None


def as_text(message: Mapping[str, Any]) -> Text:
    kind = str(message.get("type"))
    job_id = message.get("job_id") if kind == "result" else None
    text = json.dumps(message, separators=(",", ":"), default=str)
    return Text(kind, text, job_id if isinstance(job_id, str) else None)


def kind_of(message: Mapping[str, Any] | Text) -> Any:
    return message.kind if isinstance(message, Text) else message.get("type")


@attrs.frozen(kw_only=True)
class OutboxStatistics:
    """What a socket owes its client: ``messages`` in its outbox (the one being written
    aside), ``text_bytes`` of JSON text and ``results`` among them (the one being written
    included), and ``waiting``: results and replies waiting for room."""

    messages: int
    text_bytes: int
    results: int
    waiting: int


class Owing(Protocol):
    def tell_unsent(self) -> None: ...


class Outboxes:
    """What a gateway's websockets owe their clients: the text each team's sockets owe
    together (queued, or being written), with an event set whenever some of it is written
    or dropped, for the messages that wait for room (a team owing nothing has no entry);
    and the sockets ``open`` now."""

    def __init__(self) -> None:
        self._used: dict[str | None, int] = {}
        self._freed: dict[str | None, trio.Event] = {}
        self.open: set[Owing] = set()

    def tell_unsent(self) -> None:
        """Log the results each open socket still owes its client: the process is about
        to exit without a word more (a client that does not read held its stop up)."""
        for socket in list(self.open):
            socket.tell_unsent()

    def used(self, team: str | None) -> int:
        return self._used.get(team, 0)

    def take(self, team: str | None, size: int) -> None:
        self._used[team] = self._used.get(team, 0) + size

    def give_back(self, team: str | None, size: int) -> None:
        if size <= 0:
            return
        left = self._used.get(team, 0) - size
        if left > 0:
            self._used[team] = left
        else:
            self._used.pop(team, None)
        freed = self._freed.pop(team, None)
        if freed is not None:
            freed.set()

    def freed(self, team: str | None) -> trio.Event:
        """An event set the next time some of ``team``'s text is given back."""
        event = self._freed.get(team)
        if event is None:
            event = self._freed[team] = trio.Event()
        return event
