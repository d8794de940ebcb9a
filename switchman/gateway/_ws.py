"""The ``/ws`` websocket: live trace events and results on one socket.

Client messages: ``{"type": "subscribe", "job_id": ...}`` (omit ``job_id`` for
all of the caller's own events), ``{"type": "call", "call": {...}}`` (submit
a job, then receive its events and its result here) and ``{"type": "auth",
"key": ...}``.

With ``[[keys]]``, a socket takes its key from the upgrade request's headers, as
HTTP does; a wrong key there, or none from a program, is a 401 before the
socket opens. A browser cannot set headers on a socket: one opened by a page
(its upgrade carries ``Origin``) without a key must send ``auth`` as its first
message within ``AUTH_WAIT_S``: it is answered ``{"type": "authenticated",
"handle"}``, and anything else (or nothing) gets an ``unauthorized`` error and
the close code 1008. Two different keys in the headers are refused (400).

Server messages: trace
events ``{type, call_id, job_id, ts, ...data}``, ``{"type": "submitted",
"job_id"}``, ``{"type": "subscribed", "job_id"}``, ``{"type": "result",
"job_id", "status", "result"}``, ``{"type": "events.dropped", "count"}`` and
``{"type": "error", "error": {code, message, details?}}`` (a field of a submitted
call is named ``call.<path>``, in the message as in the details; a call over the
key's ``rpm`` is ``rate_limited`` with ``retry_after_s``).

A subscriber of all its own events (``subscribe`` without ``job_id``) also
gets ``breaker.changed`` for every model its key may use: those events belong
to no caller.

A repeat ``subscribe`` to a job the socket follows queues no second copy of its
result: while the result is owed (the job runs, or its result waits to go out)
it is only acknowledged (``subscribed``); once the result went out, the next
``subscribe`` sends it again, once (a client that lost it), and any later one
is acknowledged ``{"type": "subscribed", "job_id", "already": "sent"}``, with
nothing more (``GET /result/{job_id}`` has it at any time). So a socket is sent
one job's result at most ``RESULT_COPIES`` times, and holds one copy at most.

Each connection owns a nursery with a reader, a writer, a pump from its own router
subscription (which takes only the connection's events: of the jobs it follows and, once
it subscribed to them all, of its key's calls; so a burst of other callers' events never
counts as its own lost ones), a watchdog, and one waiter per running job whose result it
owes. Everything sent goes through one outbox read by the writer, bounded twice:
``OUTBOX`` messages and ``OUTBOX_BYTES`` of their JSON text (the message being written
counted until it is written); and all the sockets of one team (a key's handle, or the
gateway without keys) together owe at most ``TEAM_OUTBOX_BYTES`` of text, past one
message each (a socket owing nothing always takes one, so each keeps moving). Trace
events are offered without waiting: when they do not fit, or while a result or reply
waits for room, they are dropped and counted (as the router's hub does for a slow
subscriber), and the client is told with ``events.dropped`` once there is room, so a
slow client never slows routing. Results and replies wait for room, in turn, so none is
lost: the trace events queued before them are dropped (counted) to make it, and one
larger than ``OUTBOX_BYTES`` goes out alone once the outbox is empty. While one waits,
the reader takes no further client message (backpressure: the client's own sends stall).
A socket whose results or replies wait for room while nothing is written to its client
for ``STALL_S``, a reader that has stopped, is closed with 1008 and a reason, what it
owed dropped at once (results stay in ``GET /result``) and a warning logged; one that
reads slowly but steadily is not. (hypercorn shields a socket write: one the client
reads none of for ``_hypercorn.WRITE_STALL_S`` drops the connection.)

The connection ends when the client leaves (the nursery is cancelled; jobs
it submitted keep running and are stored) or, at shutdown, once every job has
finished and the results owed were sent (close code 1001). All it held is the
connection's own: nothing of it outlives the socket.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, get_args

import trio

from switchman._call import text_problem
from switchman._convert import to_jsonable
from switchman._errors import ValidationError
from switchman._result import Delta, EventType, Result, TraceEvent
from switchman.actors import Subscription
from switchman.gateway._auth import (
    Principal,
    authenticate,
    may_reach,
)
from switchman.gateway._http import (
    HttpError,
    Message,
    Receive,
    Scope,
    Send,
    invalid,
    parse_json,
)
from switchman.gateway._limits import retry_after_s
from switchman.gateway._outbox import OutboxStatistics, Text, as_text, kind_of
from switchman.gateway._views import CallTexts, PlatformView
from switchman.gateway._ws_open import NOT_VALID, error_message, open_socket

if TYPE_CHECKING:
    from switchman.gateway._app import Gateway
    from switchman.store import JobRecord

log = logging.getLogger("switchman.gateway")

#: messages waiting for a slow client before trace events are dropped (a burst of a few
#: hundred calls a second is ~2,000 events: room for it, so a client that keeps up with
#: the average is not told it is slow)
OUTBOX: Final = 4096
#: the JSON text (ASCII: bytes on the wire) a socket may owe its client, queued or being
#: written: room for ~128 results of 64 KB; past it trace events are dropped, and results
#: and replies wait (the client's messages then unread)
OUTBOX_BYTES: Final = 8 * 1024 * 1024
#: the JSON text all the sockets of one team (a key's handle; the gateway without keys is
#: one) may owe their clients together: without it, a team's ``SOCKETS_PER_KEY`` sockets
#: that stop reading could hold 512 MiB
TEAM_OUTBOX_BYTES: Final = 64 * 1024 * 1024
#: how long a socket's results or replies may wait for room while nothing is written to
#: its client before it is closed (1008) as a reader that has stopped
STALL_S: Final = 30.0
#: the most times a socket sends one job's result: when it first follows the job, and
#: once more on a later subscribe (a client that lost it)
RESULT_COPIES: Final = 2
#: the per-connection router subscription buffer
SUBSCRIPTION_BUFFER: Final = 1024
_CLOSE: Final[dict[str, Any]] = {"type": "__close__"}
#: how many jobs one connection follows before it lets the oldest finished ones go
FOLLOWED: Final = 1024
#: the types of trace event messages (droppable), as against results and replies
_TRACE_TYPES: Final = frozenset(get_args(EventType))
_RESERVED: Final = frozenset({"type", "call_id", "job_id", "ts"})
#: the fields of each kind of client message
_FIELDS: Final = {
    "subscribe": {"type", "job_id"},
    "call": {"type", "call"},
    "auth": {"type", "key"},
}


def event_message(event: TraceEvent) -> dict[str, Any]:
    """The wire form of a trace event: ``{type, call_id, job_id, ts, ...data}``."""
    out = {k: v for k, v in event.data.items() if k not in _RESERVED}
    out.update(type=event.type, call_id=event.call_id, job_id=event.job_id, ts=event.ts)
    return out


async def _discard(items: trio.MemoryReceiveChannel[Delta | Result]) -> None:
    async with items:
        async for _ in items:
            pass


def _within_call(err: HttpError) -> HttpError:
    """``err`` with each field of its details under ``call.``, as the message's fields are."""
    if not err.details:
        return err
    fields = [(f"call.{d['field']}", d["message"]) for d in err.details]
    if err.status == 422:
        return invalid(fields)
    details = [{"field": f, "message": m} for f, m in fields]
    return HttpError(err.status, err.code, err.message, details=details)


async def serve_websocket(gw: Gateway, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one websocket connection until the client or the gateway ends it. Its opening
    counts in ``switchman_http_requests_total`` as ``/ws``: 101 accepted, else the status
    it was refused with (499 for a client gone before either)."""
    status = 499

    async def tracked(message: Message) -> None:
        nonlocal status
        kind = message["type"]
        if kind == "websocket.accept":
            status = 101
        elif kind == "websocket.http.response.start":
            status = message["status"]
        elif kind == "websocket.close" and status == 499:
            status = 403  # (a close before the accept is a 403 to the client)
        await send(message)

    try:
        principal = await open_socket(gw, scope, receive, tracked)
    finally:
        route = "/ws" if scope.get("path") == "/ws" else "unknown"
        gw.metrics.http_requests.labels(route=route, status=str(status)).inc()
    if principal is None:
        return
    with gw.sockets.holding(principal.owner):
        await _serve_connection(gw, principal, receive, send)


async def _serve_connection(
    gw: Gateway, principal: Principal, receive: Receive, send: Send
) -> None:
    conn: _Connection | None = None
    try:
        async with trio.open_nursery() as nursery:
            conn = _Connection(gw, principal, send, nursery)
            gw.outboxes.open.add(conn)
            # only this connection's events are taken from the router (and counted when it
            # falls behind): events.dropped tells the client of its own events lost, not of
            # every other caller's; the pump closes the subscription when it ends
            events = gw.router.subscribe(buffer=SUBSCRIPTION_BUFFER, accept=conn.wants)
            nursery.start_soon(conn.pump, events)
            nursery.start_soon(conn.write_loop)
            nursery.start_soon(conn.close_when_drained)
            nursery.start_soon(conn.watch_backlog)
            await conn.read_loop(receive)
            nursery.cancel_scope.cancel()
    finally:  # (once its tasks are done: none gives back any more of it, nor waits)
        if conn is not None:
            conn.tell_unsent()  # (the results it ended owing, those that waited among them)
            gw.outboxes.open.discard(conn)
            conn.give_back_room()
    if conn.gave_up is not None:  # a reader that could not keep up: told why
        with contextlib.suppress(Exception):  # (the client may be gone)
            await send({"type": "websocket.close", "code": 1008, "reason": conn.gave_up})


class _Connection:
    def __init__(self, gw: Gateway, principal: Principal, send: Send, nursery: trio.Nursery):
        self.gw = gw
        self.principal = principal
        self.send = send
        self.nursery = nursery
        self.outbox, self.out = trio.open_memory_channel[dict[str, Any] | Text](OUTBOX)
        #: the text of the messages queued and of the one being written; results among them
        self.queued_bytes = 0
        self.queued_results = 0
        #: results and replies waiting for room (``_put``), the results among them; they
        #: take it in turn (``_turn``), and are told of it by the team's ``freed`` event;
        #: ``_progress`` is set as this socket's own messages are written or dropped
        self.waiting = 0
        self.waiting_results = 0
        #: results that waited for room until the connection ended (never queued), and
        #: whether those it ended owing were logged (once: by ``_give_up``, or at its end)
        self.unsent_results = 0
        self.told_unsent = False
        self._turn = trio.Lock()
        self._progress = trio.Event()
        #: set while something waits for room
        self._behind = trio.Event()
        #: why the socket was closed as a reader that cannot keep up (``watch_backlog``)
        self.gave_up: str | None = None
        #: the events and results as this key may see them (see ``_views``)
        self.view = PlatformView(principal, gw.config)
        self.texts = CallTexts(self.view)
        self.dropped = 0
        self.all_own = False
        #: the jobs it follows, oldest first, each with how many times its result was
        #: written (``follow``: a long-lived connection's set is bounded, jobs long
        #: finished leaving it first)
        self.jobs: dict[str, int] = {}
        #: jobs whose result this connection owes: waited for, or queued and not written
        self.awaiting: set[str] = set()
        self.owed = 0
        self.settled = trio.Event()
        self.settled.set()

    # -- outgoing -----------------------------------------------------------------------------

    def statistics(self) -> OutboxStatistics:
        return OutboxStatistics(
            messages=self.outbox.statistics().current_buffer_used,
            text_bytes=self.queued_bytes,
            results=self.queued_results,
            waiting=self.waiting,
        )

    def _fits(self, size: int) -> bool:
        """Whether a message of ``size`` characters may be queued now: the outbox has a
        free slot, and its text stays within ``OUTBOX_BYTES`` and the team's within
        ``TEAM_OUTBOX_BYTES`` (one message, however large, once the socket owes nothing
        else: each socket of a team keeps moving). Nothing fits once the socket was given
        up."""
        if self.gave_up is not None or self.outbox.statistics().current_buffer_used >= OUTBOX:
            return False
        if self.queued_bytes == 0:
            return True
        return (
            self.queued_bytes + size <= OUTBOX_BYTES
            and self.gw.outboxes.used(self.principal.owner) + size <= TEAM_OUTBOX_BYTES
        )

    def _queue(self, message: Text) -> None:
        self.outbox.send_nowait(message)
        self.queued_bytes += len(message.text)
        self.queued_results += message.kind == "result"
        self.gw.outboxes.take(self.principal.owner, len(message.text))

    def give_back_room(self) -> None:
        """The connection has ended: the team's room it still held (a message being
        written when it ended) is given back."""
        self.gw.outboxes.give_back(self.principal.owner, self.queued_bytes)
        self.queued_bytes = 0

    def _release(self, message: Text, *, written: bool) -> None:
        """``message`` is no longer owed: written to the client, or dropped."""
        self.queued_bytes -= len(message.text)
        self.gw.outboxes.give_back(self.principal.owner, len(message.text))
        if message.kind == "result" and message.job_id is not None:
            self.queued_results -= 1
            self.awaiting.discard(message.job_id)
            if written and message.job_id in self.jobs:
                self.jobs[message.job_id] += 1
        self._progress.set()
        self._progress = trio.Event()

    def _mark(self) -> None:
        """Keep ``_behind`` in step with whether something waits for room."""
        if (self.waiting > 0) == self._behind.is_set():
            return
        if self.waiting:
            self._behind.set()
        else:
            self._behind = trio.Event()

    def offer(self, message: dict[str, Any]) -> None:
        """Queue a trace event if there is room; count it as dropped if not (or while a
        result or reply waits for room: those go first). Once the gateway is stopping,
        trace events are dropped: what the connection is owed (results, replies) goes
        first, before the server's time to stop runs out."""
        if (
            self.gw.runner.draining
            or self.waiting
            or self.outbox.statistics().current_buffer_used >= OUTBOX
        ):
            self.dropped += 1
            return
        out = as_text(message)
        if self._fits(len(out.text)):
            self._queue(out)
        else:
            self.dropped += 1

    async def _put(self, message: dict[str, Any]) -> None:
        """Queue a result or reply, once it fits (``_fits``), after those that waited
        before it. Cancelled while waiting, it is not queued."""
        out = as_text(message)
        size = len(out.text)
        if not self.waiting and self._fits(size):
            self._queue(out)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        self.waiting += 1
        self.waiting_results += out.kind == "result"
        self._mark()
        self._drop_queued_events()  # (what a client may lose, counted, makes the room)
        try:
            async with self._turn:
                while not self._fits(size):  # (room: this socket's, or its team's)
                    await self.gw.outboxes.freed(self.principal.owner).wait()
                self._queue(out)
        except BaseException:  # (cancelled: the connection ended with it unsent)
            self.unsent_results += out.kind == "result"
            raise
        finally:
            self.waiting -= 1
            self.waiting_results -= out.kind == "result"
            self._mark()

    async def watch_backlog(self) -> None:
        """Close the socket (``_give_up``) once its results or replies wait for room and
        nothing was written to its client for ``STALL_S``; returns then (or runs until
        cancelled). A reader slow but steady is never closed: each write restarts it."""
        while True:
            await self._behind.wait()
            while self.waiting:
                progress = self._progress  # (set as each message is written or dropped)
                with trio.move_on_after(STALL_S) as waited:
                    await progress.wait()
                if waited.cancelled_caught and self.waiting:
                    self._give_up()
                    return

    def _give_up(self) -> None:
        """Drop what the socket owes, log it, and end the connection: it closes with 1008
        and ``gave_up`` as the reason once its writer is out of its last write."""
        self.gave_up = (
            f"read too slowly: nothing was read for {STALL_S:g} s while messages waited for"
            " room; results stay in GET /result"
        )
        owed = self.statistics()
        unsent = self._clear() + self.waiting_results
        self.told_unsent = True
        log.warning(
            "websocket of %s closed (1008): it read too slowly (%d message(s), %d KiB owed,"
            " %d more waited %g s for room); %d result(s) not sent stay in GET /result",
            self.principal.handle or "the open gateway",
            owed.messages,
            owed.text_bytes // 1024,
            owed.waiting,
            STALL_S,
            unsent,
        )
        self.nursery.cancel_scope.cancel()

    def _clear(self) -> int:
        """Empty the outbox; the number of results it held."""
        results = 0
        while True:
            try:
                message = self.out.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return results
            results += kind_of(message) == "result"
            if isinstance(message, Text):
                self._release(message, written=False)

    async def write_loop(self) -> None:
        async for message in self.out:
            if message is _CLOSE:
                await self._tell_dropped()  # (a stop's: its calls' ends among them)
                await self._send({"type": "websocket.close", "code": 1001})
                self.nursery.cancel_scope.cancel()
                return
            try:
                if isinstance(message, Text):
                    await self._send({"type": "websocket.send", "text": message.text})
                else:
                    await self._send_text(message)
            except BaseException:  # (cut while written: the connection ended)
                self.unsent_results += kind_of(message) == "result"
                raise
            if isinstance(message, Text):
                self._release(message, written=True)
            await self._tell_dropped()

    async def _tell_dropped(self) -> None:
        """Tell the client how many events it lost since it was last told, if any."""
        if self.dropped:
            count, self.dropped = self.dropped, 0
            await self._send_text({"type": "events.dropped", "count": count})

    def tell_unsent(self) -> None:
        """Log the results still queued, or waiting for room, when the connection ends
        before sending them (at a stop, a client reading too slowly for the time the
        server has left; at a forced exit, ``Outboxes.tell_unsent``)."""
        if self.told_unsent:
            return
        unsent = self._clear() + self.waiting_results + self.unsent_results
        self.told_unsent = True
        if unsent:
            log.warning(
                "websocket of %s closed with %d result(s) not sent (the client read too"
                " slowly or not at all); they stay in GET /result",
                self.principal.handle or "the open gateway",
                unsent,
            )

    async def _send_text(self, message: Mapping[str, Any]) -> None:
        text = json.dumps(message, separators=(",", ":"), default=str)
        await self._send({"type": "websocket.send", "text": text})

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self.send(message)
        except Exception:  # the client is gone; the reader sees the disconnect and ends
            self.nursery.cancel_scope.cancel()

    def wants(self, event: TraceEvent) -> bool:
        """Whether ``event`` is for this connection: of a job it follows, of its key's
        calls once it subscribed to them all, or a breaker change of a model its key may
        use. Cheap: the router's hub asks it of every event (``accept``)."""
        if event.type == "breaker.changed":
            return self.all_own and self.may_use(event.data.get("alias"))
        return (event.job_id is not None and event.job_id in self.jobs) or (
            self.all_own and self.principal.sees_handle(event.handle)
        )

    async def pump(self, events: Subscription) -> None:
        """Offer this connection's events to the outbox; closes ``events`` when it ends
        (it takes all that waits in each pass: one a pass would fall behind a busy
        router)."""
        with events:
            async for event in events:
                self._take(event)

    def _take(self, event: TraceEvent) -> None:
        if event.type == "events.dropped":  # the hub's count of this connection's own
            count = event.data.get("count", 1)
            self.dropped += count if isinstance(count, int) else 1
        elif self.wants(event):  # (what it wanted when the event was published)
            self.offer(self.texts.shown(event_message(event)))

    def may_use(self, alias: Any) -> bool:
        """Whether this connection's key may use the model ``alias`` (as ``/providers``
        decides which models a key sees)."""
        if self.principal.sees_everything:
            return True
        return isinstance(alias, str) and may_reach(self.principal, alias, self.gw.config)

    async def close_when_drained(self) -> None:
        await self.gw.runner.stopping.wait()
        self._drop_queued_events()
        await self.gw.drained.wait()
        with trio.move_on_after(2.0):
            while self.owed:
                await self.settled.wait()
        self._drop_queued_events()
        await self.outbox.send(_CLOSE)

    def _drop_queued_events(self) -> None:
        """Drop the trace events still queued: a client reading slowly would reach its
        results and the close only behind thousands of them, past the server's time to
        stop. Results and replies stay, in their order."""
        kept: list[dict[str, Any] | Text] = []
        while True:
            try:
                message = self.out.receive_nowait()
            except trio.WouldBlock:
                break
            if kind_of(message) in _TRACE_TYPES:
                self.dropped += 1
                if isinstance(message, Text):
                    self._release(message, written=False)
            else:
                kept.append(message)
        for message in kept:
            self.outbox.send_nowait(message)  # (room: the outbox was just emptied)

    # -- incoming -----------------------------------------------------------------------------

    async def read_loop(self, receive: Receive) -> None:
        """Take the client's messages, one at a time: one whose reply (or result) waits
        for room in the outbox holds the next back (``_put``)."""
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            if text is None:
                await self._put(error_message("bad_request", "send JSON text messages"))
                continue
            try:
                data = parse_json(text)
            except ValueError as exc:
                await self._put(error_message("bad_request", f"malformed JSON: {exc}"))
                continue
            try:
                await self.handle(data)
            except HttpError as err:
                error = error_message(err.code, err.message, err.details)
                retry = retry_after_s(err)
                if retry is not None:  # over the key's rpm: when to send it again
                    error["error"]["retry_after_s"] = retry
                await self._put(error)

    async def handle(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise HttpError(422, "validation_error", "each message is a JSON object with a type")
        kind = data["type"]
        allowed = _FIELDS.get(kind)
        if allowed is None:
            raise HttpError(422, "validation_error", f"unknown message type {kind!r}")
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise invalid((k, "unknown field") for k in unknown)
        if kind == "subscribe":
            await self.subscribe(data.get("job_id"))
        elif kind == "auth":
            await self.authenticated_again(data.get("key"))
        else:
            await self.submit(data.get("call"))

    async def authenticated_again(self, key: Any) -> None:
        """An ``auth`` message on a socket that has its key: the same key is confirmed (a
        client that always sends one, to a gateway that took it from the headers or is
        open); a socket serves one key, so another is refused."""
        if not isinstance(key, str) or not key.strip():
            raise invalid([("key", "must be a non-empty string")])
        principal = authenticate(self.gw.config.keys, key.strip())
        if principal is None:
            raise HttpError(401, "unauthorized", NOT_VALID)
        if principal.key_id != self.principal.key_id:
            raise HttpError(
                400,
                "bad_request",
                "this socket already has another key: a socket serves one key (open another"
                " socket for this one)",
            )
        await self._put({"type": "authenticated", "handle": principal.handle})

    async def subscribe(self, job_id: Any) -> None:
        """Follow ``job_id`` (or, without one, all the key's own calls) and owe its result:
        sent at once for a finished job (from the reader: a result that waits for room
        holds the client's next message back), when it finishes for a running one. A
        job it follows already is acknowledged with no second copy while one is owed, and
        with none at all once ``RESULT_COPIES`` went out; it reads nothing from the
        store then."""
        if job_id is None:
            self.all_own = True
            await self._put({"type": "subscribed", "job_id": None})
            return
        if not isinstance(job_id, str):
            raise invalid([("job_id", "must be a string")])
        if (problem := text_problem(job_id)) is not None:  # (a "\ud800" in its JSON)
            raise invalid([("job_id", problem)])
        copies = self.jobs.get(job_id)
        if copies is not None and (job_id in self.awaiting or copies >= RESULT_COPIES):
            ack: dict[str, Any] = {"type": "subscribed", "job_id": job_id}
            if job_id not in self.awaiting:
                ack["already"] = "sent"
            await self._put(ack)
            return
        record = await self.gw.visible_job(job_id, self.principal)
        self.follow(job_id)
        await self._put({"type": "subscribed", "job_id": job_id})
        if job_id in self.awaiting:
            return
        if record.finished:  # (from the reader: it takes no message while this waits)
            self._owing(job_id)
            await self._deliver_result(job_id, record)
        else:
            self._owe(job_id)

    async def submit(self, raw: Any) -> None:
        try:
            job_id = await self._made(raw)
        except HttpError as err:  # refused before its job was made
            self.gw.metrics.refused.labels(code=err.code[:100]).inc()
            raise
        self.follow(job_id)  # before any checkpoint: no event of the job can be missed
        await self._put({"type": "submitted", "job_id": job_id})
        self._owe(job_id)

    async def _made(self, raw: Any) -> str:
        """The job of the call ``raw`` asks for, made (``HttpError`` when it is refused)."""
        if raw is not None and not isinstance(raw, dict):
            raise invalid([("call", "must be a JSON object")])
        try:
            call = self.gw.parse_call(raw if raw is not None else {}, self.principal)
        except ValidationError as exc:
            raise invalid((f.field, f.message) for f in exc.prefixed("call").fields) from None
        try:
            call = self.gw.admit(call, self.principal)
        except HttpError as err:  # its fields are the call's: name them as such
            raise _within_call(err) from None
        self.gw.take_request(self.principal)
        # streamed, so its text travels live as attempt.delta events (already redacted);
        # the deltas themselves are not needed here and are drained
        sink, drain = trio.open_memory_channel[Delta | Result](64)
        self.nursery.start_soon(_discard, drain)
        return await self.gw.submit(call, self.principal, sink=sink)

    def follow(self, job_id: str) -> None:
        """Take ``job_id``'s events from now on. Past ``FOLLOWED`` jobs, the oldest whose
        result is not owed are let go (their last events were published before their
        result, long since)."""
        self.jobs.setdefault(job_id, 0)
        if len(self.jobs) > FOLLOWED:
            done = [j for j in self.jobs if j not in self.awaiting and j != job_id]
            for old in done[: len(self.jobs) // 4]:
                del self.jobs[old]

    def _owing(self, job_id: str) -> None:
        if self.owed == 0:
            self.settled = trio.Event()
        self.owed += 1
        self.awaiting.add(job_id)

    def _owe(self, job_id: str) -> None:
        self._owing(job_id)
        self.nursery.start_soon(self._deliver_result, job_id)

    def _settle(self, job_id: str, *, queued: bool) -> None:
        """The result of ``job_id`` is queued (owed until written), or will not be."""
        if not queued:
            self.awaiting.discard(job_id)
        self.owed -= 1
        if self.owed == 0:
            self.settled.set()

    async def _deliver_result(self, job_id: str, finished: JobRecord | None = None) -> None:
        """Queue the result of ``job_id``: of a job that ran when followed once it finishes
        (as the runner gives it, or as stored when it ran elsewhere; nothing if it has not
        finished), or ``finished``'s, stored. Cancelled while it waits, nothing is queued."""
        queued = False
        try:
            result = None if finished is not None else await self.gw.runner.wait(job_id)
            if result is not None:
                body: Any = to_jsonable(result)
            else:
                record = finished or await self.gw.store.get_job(job_id)
                if record is None or not record.finished:
                    return
                body = record.result
            await self._put(self._result_message(job_id, body))
            queued = True
        finally:
            self._settle(job_id, queued=queued)

    def _result_message(self, job_id: str, body: Any) -> dict[str, Any]:
        status = body.get("status") if isinstance(body, Mapping) else "failed"
        return {
            "type": "result",
            "job_id": job_id,
            "status": status,
            "result": self.view.result(body),
        }
