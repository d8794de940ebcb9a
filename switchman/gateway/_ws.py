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

Each connection owns a nursery with a reader, a writer, a pump from its own
router subscription (which takes only the connection's events: of the jobs it
follows and, once it subscribed to them all, of its key's calls; so a burst of
other callers' events never counts as its own lost ones), and one waiter per
job whose result it owes. Everything
sent goes through one bounded outbox read by the writer. Trace events are
offered without waiting: when the outbox is full they are dropped and
counted, and the client is told with ``events.dropped`` once there is room,
so a slow client never slows routing. Results and errors wait for room.

The connection ends when the client leaves (the nursery is cancelled; jobs
it submitted keep running and are stored) or, at shutdown, once every job has
finished and the results owed were sent (close code 1001).
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
from switchman.gateway._auth import (
    SEVERAL_KEYS,
    Principal,
    authenticate,
    may_reach,
    presented_key,
    presents_several_keys,
)
from switchman.gateway._http import (
    HttpError,
    Message,
    Receive,
    Scope,
    Send,
    dumps,
    invalid,
    parse_json,
)
from switchman.gateway._limits import retry_after_s
from switchman.gateway._views import CallTexts, PlatformView

if TYPE_CHECKING:
    from switchman.gateway._app import Gateway

log = logging.getLogger("switchman.gateway")

#: messages waiting for a slow client before trace events are dropped (a burst of a few
#: hundred calls a second is ~2,000 events: room for it, so a client that keeps up with
#: the average is not told it is slow)
OUTBOX: Final = 4096
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
#: websockets one team (a key's handle) may hold open at once: each costs a subscription
#: and buffers, and one key must not take a gateway's memory from the others
SOCKETS_PER_KEY: Final = 64
#: how long a socket opened without a key has to send ``{"type": "auth", "key": ...}``
AUTH_WAIT_S: Final = 10.0
_ASK_KEY: Final = (
    'send {"type": "auth", "key": "<key>"} first, or the key in the upgrade request\'s'
    " Authorization: Bearer <key> or x-api-key header"
)
_NOT_VALID: Final = (
    "a valid gateway key is required (Authorization: Bearer <key> or x-api-key, or an"
    ' {"type": "auth", "key": "<key>"} message)'
)


def event_message(event: TraceEvent) -> dict[str, Any]:
    """The wire form of a trace event: ``{type, call_id, job_id, ts, ...data}``."""
    out = {k: v for k, v in event.data.items() if k not in _RESERVED}
    out.update(type=event.type, call_id=event.call_id, job_id=event.job_id, ts=event.ts)
    return out


async def _discard(items: trio.MemoryReceiveChannel[Delta | Result]) -> None:
    async with items:
        async for _ in items:
            pass


def _error(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = list(details)
    return {"type": "error", "error": error}


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
    """Serve one websocket connection until the client or the gateway ends it."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    raw = scope.get("headers", ())
    if presents_several_keys(raw):
        await _reject(scope, send, HttpError(400, "bad_request", SEVERAL_KEYS))
        return
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
    try:
        gw.refuse_pages(scope)
    except HttpError as refused:
        await _reject(scope, send, refused)
        return
    principal = gw.authenticate(headers)
    if principal is None and (presented_key(headers) is not None or "origin" not in headers):
        # a wrong key, or no key from a program (which can set headers): 401 at once
        await _reject(scope, send, HttpError(401, "unauthorized", _NOT_VALID))
        return
    if principal is not None and (full := _sockets_full(gw, principal)) is not None:
        await _reject(scope, send, full)
        return
    await send({"type": "websocket.accept"})
    if principal is None:  # a browser's socket (it cannot set headers): ask for the key
        principal = await _key_message(gw, receive, send)
        if principal is None:
            return
    with gw.sockets.holding(principal.owner):
        await _serve_connection(gw, principal, receive, send)


def _sockets_full(gw: Gateway, principal: Principal) -> HttpError | None:
    """A 429 when ``principal``'s team already holds ``SOCKETS_PER_KEY`` sockets (the
    gateway without keys, one caller of its own machine, has no such limit)."""
    held = gw.sockets.held(principal.owner)
    if principal.owner is None or held < SOCKETS_PER_KEY:
        return None
    return HttpError(
        429,
        "rate_limited",
        f"this key's team has {held} websockets open, the most one team may hold: close one first",
    )


async def _serve_connection(
    gw: Gateway, principal: Principal, receive: Receive, send: Send
) -> None:
    async with trio.open_nursery() as nursery:
        conn = _Connection(gw, principal, send, nursery)
        # only this connection's events are taken from the router (and counted when it
        # falls behind): events.dropped tells the client of its own events lost, not of
        # every other caller's; the pump closes the subscription when it ends
        events = gw.router.subscribe(buffer=SUBSCRIPTION_BUFFER, accept=conn.wants)
        nursery.start_soon(conn.pump, events)
        nursery.start_soon(conn.write_loop)
        nursery.start_soon(conn.close_when_drained)
        await conn.read_loop(receive)
        nursery.cancel_scope.cancel()


async def _key_message(gw: Gateway, receive: Receive, send: Send) -> Principal | None:
    """The principal of a socket opened without a key, from its first message
    ``{"type": "auth", "key": ...}`` sent within ``AUTH_WAIT_S``; None (the socket told
    why and closed with 1008) for anything else, or when the client left. Once the
    gateway is stopping, a socket still waiting is closed at once (1001): it is owed
    nothing, and must not hold the stop up."""
    problem = f"no auth message within {AUTH_WAIT_S:g} s: {_ASK_KEY}"
    code = 1008
    message: Message | None = None
    with trio.move_on_after(AUTH_WAIT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_when_set, gw.runner.stopping, nursery.cancel_scope)
            message = await receive()
            nursery.cancel_scope.cancel()
    if message is None and gw.runner.stopping.is_set():
        problem, code = "the gateway is shutting down", 1001
    if message is not None:
        if message["type"] == "websocket.disconnect":
            return None
        principal, problem = _auth_message(gw, message.get("text"))
        full = _sockets_full(gw, principal) if principal is not None else None
        if principal is not None and full is None:
            await _send_raw(send, {"type": "authenticated", "handle": principal.handle})
            return principal
        if full is not None:
            await _send_raw(send, _error(full.code, full.message))
            with contextlib.suppress(Exception):  # (the client may be gone)
                await send({"type": "websocket.close", "code": 1008})
            return None
    await _send_raw(send, _error("unauthorized" if code == 1008 else "shutting_down", problem))
    with contextlib.suppress(Exception):  # (the client may be gone)
        await send({"type": "websocket.close", "code": code})
    return None


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _auth_message(gw: Gateway, text: str | None) -> tuple[Principal | None, str]:
    """The principal an ``auth`` message's key names, or None and what is wrong with it."""
    try:
        data = parse_json(text) if text is not None else None
    except ValueError:
        data = None
    if not (isinstance(data, dict) and data.get("type") == "auth"):
        return None, f"the first message must authenticate: {_ASK_KEY}"
    unknown = sorted(str(k) for k in data if k not in ("type", "key"))
    key = data.get("key")
    if unknown or not isinstance(key, str) or not key.strip():
        what = f"unknown field(s) {', '.join(unknown)}" if unknown else "no key"
        return None, f"{what} in the auth message: {_ASK_KEY}"
    principal = authenticate(gw.config.keys, key.strip())
    return principal, _NOT_VALID


async def _send_raw(send: Send, message: Mapping[str, Any]) -> None:
    with contextlib.suppress(Exception):  # (the client may be gone)
        text = json.dumps(message, separators=(",", ":"))
        await send({"type": "websocket.send", "text": text})


async def _reject(scope: Scope, send: Send, err: HttpError) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        body = dumps(err.body())
        await send(
            {
                "type": "websocket.http.response.start",
                "status": err.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


class _Connection:
    def __init__(self, gw: Gateway, principal: Principal, send: Send, nursery: trio.Nursery):
        self.gw = gw
        self.principal = principal
        self.send = send
        self.nursery = nursery
        self.outbox, self.out = trio.open_memory_channel[dict[str, Any]](OUTBOX)
        #: the events and results as this key may see them (see ``_views``)
        self.view = PlatformView(principal, gw.config)
        self.texts = CallTexts(self.view)
        self.dropped = 0
        self.all_own = False
        #: the jobs it follows, oldest first (``follow``: a long-lived connection's set is
        #: bounded, jobs long finished leaving it first)
        self.jobs: dict[str, None] = {}
        #: jobs whose result this connection is waiting to send
        self.awaiting: set[str] = set()
        self.owed = 0
        self.settled = trio.Event()
        self.settled.set()

    # -- outgoing -----------------------------------------------------------------------------

    def offer(self, message: dict[str, Any]) -> None:
        """Queue a trace event if there is room; count it as dropped if not. Once the
        gateway is stopping, trace events are dropped: what the connection is owed
        (results, replies) goes first, before the server's time to stop runs out."""
        if self.gw.runner.draining:
            self.dropped += 1
            return
        try:
            self.outbox.send_nowait(message)
        except trio.WouldBlock:
            self.dropped += 1

    async def write_loop(self) -> None:
        try:
            async for message in self.out:
                if message is _CLOSE:
                    await self._send({"type": "websocket.close", "code": 1001})
                    self.nursery.cancel_scope.cancel()
                    return
                await self._send_text(message)
                if self.dropped:
                    count, self.dropped = self.dropped, 0
                    await self._send_text({"type": "events.dropped", "count": count})
        finally:
            self._tell_unsent()

    def _tell_unsent(self) -> None:
        """Log the results still queued when the connection ends before sending them (at a
        stop, a client reading too slowly for the time the server has left)."""
        unsent = 0
        while True:
            try:
                message = self.out.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            unsent += message.get("type") == "result"
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

    async def pump(self, events: trio.MemoryReceiveChannel[TraceEvent]) -> None:
        """Offer this connection's events to the outbox; closes ``events`` when it ends."""
        with events:
            await self._pump(events)

    async def _pump(self, events: trio.MemoryReceiveChannel[TraceEvent]) -> None:
        async for event in events:
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
        kept: list[dict[str, Any]] = []
        while True:
            try:
                message = self.out.receive_nowait()
            except trio.WouldBlock:
                break
            if message.get("type") in _TRACE_TYPES:
                self.dropped += 1
            else:
                kept.append(message)
        for message in kept:
            self.outbox.send_nowait(message)  # (room: the outbox was just emptied)

    # -- incoming -----------------------------------------------------------------------------

    async def read_loop(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            if text is None:
                await self.outbox.send(_error("bad_request", "send JSON text messages"))
                continue
            try:
                data = parse_json(text)
            except ValueError as exc:
                await self.outbox.send(_error("bad_request", f"malformed JSON: {exc}"))
                continue
            try:
                await self.handle(data)
            except HttpError as err:
                error = _error(err.code, err.message, err.details)
                retry = retry_after_s(err)
                if retry is not None:  # over the key's rpm: when to send it again
                    error["error"]["retry_after_s"] = retry
                await self.outbox.send(error)

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
            raise HttpError(401, "unauthorized", _NOT_VALID)
        if principal.key_id != self.principal.key_id:
            raise HttpError(
                400,
                "bad_request",
                "this socket already has another key: a socket serves one key (open another"
                " socket for this one)",
            )
        await self.outbox.send({"type": "authenticated", "handle": principal.handle})

    async def subscribe(self, job_id: Any) -> None:
        if job_id is None:
            self.all_own = True
            await self.outbox.send({"type": "subscribed", "job_id": None})
            return
        if not isinstance(job_id, str):
            raise invalid([("job_id", "must be a string")])
        if (problem := text_problem(job_id)) is not None:  # (a "\ud800" in its JSON)
            raise invalid([("job_id", problem)])
        await self.gw.visible_job(job_id, self.principal)
        self.follow(job_id)
        await self.outbox.send({"type": "subscribed", "job_id": job_id})
        if job_id not in self.awaiting:  # subscribed twice while it runs: one result
            self._owe(job_id)

    async def submit(self, raw: Any) -> None:
        self.gw.take_request(self.principal)
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
        # streamed, so its text travels live as attempt.delta events (already redacted);
        # the deltas themselves are not needed here and are drained
        sink, drain = trio.open_memory_channel[Delta | Result](64)
        self.nursery.start_soon(_discard, drain)
        job_id = await self.gw.submit(call, self.principal, sink=sink)
        self.follow(job_id)  # before any checkpoint: no event of the job can be missed
        await self.outbox.send({"type": "submitted", "job_id": job_id})
        self._owe(job_id)

    def follow(self, job_id: str) -> None:
        """Take ``job_id``'s events from now on. Past ``FOLLOWED`` jobs, the oldest whose
        result was sent are let go (their last events were published before their result,
        long since)."""
        self.jobs[job_id] = None
        if len(self.jobs) > FOLLOWED:
            done = [j for j in self.jobs if j not in self.awaiting and j != job_id]
            for old in done[: len(self.jobs) // 4]:
                del self.jobs[old]

    def _owe(self, job_id: str) -> None:
        if self.owed == 0:
            self.settled = trio.Event()
        self.owed += 1
        self.awaiting.add(job_id)
        self.nursery.start_soon(self._deliver_result, job_id)

    async def _deliver_result(self, job_id: str) -> None:
        try:
            result = await self.gw.runner.wait(job_id)
            body: Any = None if result is None else to_jsonable(result)
            if body is None:
                record = await self.gw.store.get_job(job_id)
                if record is None or not record.finished:
                    return
                body = record.result
            status = body.get("status") if isinstance(body, Mapping) else "failed"
            shown = self.view.result(body)
            await self.outbox.send(
                {"type": "result", "job_id": job_id, "status": status, "result": shown}
            )
        finally:
            self.awaiting.discard(job_id)
            self.owed -= 1
            if self.owed == 0:
                self.settled.set()
