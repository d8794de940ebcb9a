"""Small ASGI helpers: requests with bounded bodies, JSON and event-stream replies.

The gateway speaks raw ASGI (hypercorn's trio worker calls it), so these are
the few pieces a framework would otherwise give: headers, query, a body read
that refuses more than ``max_body_bytes`` (checking ``Content-Length`` first,
then counting chunks), JSON errors of the shape ``{error: {code, message,
details?}}``.

A body over the limit is read to its end and dropped before the 413 leaves (at
most :data:`DRAIN_FACTOR` times the limit, for at most :data:`DRAIN_S`): a server
that answers and closes with the body still unread resets the connection, and a
client still sending it (any async one: httpx, the OpenAI SDK's ``AsyncOpenAI``)
sees the reset, not the 413, and retries. A body past that bound is not read: the
413 is sent and the connection closed, which such a client may see as a reset.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qsl

import trio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

#: a body over the limit is read and dropped up to this many times the limit ...
DRAIN_FACTOR: Final = 4
#: ... and for at most this long, before the 413 is sent
DRAIN_S: Final = 3.0
#: how long a request body may take to arrive, all of it
BODY_READ_S: Final = 60.0


class HttpError(Exception):
    """An answer other than success, raised by a handler and written by the app.

    ``param`` is only used by the OpenAI-compatible routes (their error shape).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Sequence[Mapping[str, str]] | None = None,
        param: str | None = None,
        headers: Headers = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.param = param
        self.headers = headers

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = list(self.details)
        return {"error": error}


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


class Request:
    """One HTTP request: method, path, query, headers; the body is read on demand."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = _origin_form(scope["path"])
        self.query: dict[str, str] = dict(
            parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        )
        self.headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        #: the job this request made, once made (a call refused before it counts as such)
        self.job_id: str | None = None
        #: whether the body was read to its end (or given up on): nothing more to receive
        self.consumed = not self._has_body()

    def _has_body(self) -> bool:
        length = self.headers.get("content-length")
        return "transfer-encoding" in self.headers or (length is not None and length != "0")

    async def drain(self, limit: int) -> None:
        """Read and drop a body no handler read (a request refused before it: a wrong key,
        no such route), as a 413's is: answered with its body unread, a connection is
        closed, and a client sending its next request on it (32 at once with a wrong key:
        21 of 4,000) met a disconnect instead of the 401. ``ClientGone`` if it left.

        As for a body over ``limit``, at most ``DRAIN_FACTOR`` times it is read: one declared
        longer is not read at all (answered, its connection is closed; 16 MiB of a 100 MiB
        one was read for nothing)."""
        if self.consumed:
            return
        self.consumed = True
        bound = limit * DRAIN_FACTOR
        declared = self.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > bound):
            return
        await self._discard(bound, 0)

    async def body(self, limit: int) -> bytes:
        """The whole body; ``HttpError(413)`` once it is known to exceed ``limit``.

        A declared ``Content-Length`` over the limit is refused without keeping any
        byte; a chunked body is counted as it arrives and refused at the first chunk
        that passes the limit. Either way the rest is read and dropped first (see the
        module's docstring), so the client reads the 413. ``ClientGone`` when the
        client disconnects first. Cancelled midway, nothing is kept.
        """
        self.consumed = True  # (read here to its end, or dropped, or given up on)
        declared = self.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise HttpError(400, "bad_request", "invalid Content-Length header") from None
            if size > limit:
                if size <= limit * DRAIN_FACTOR:
                    await self._discard(limit * DRAIN_FACTOR, 0)
                raise _too_large(limit)
        chunks: list[bytes] = []
        total = 0
        # a client trickling its body (or stopping without ending it) would hold the
        # connection, and a slot, for ever: the whole body has ``BODY_READ_S``
        with trio.move_on_after(BODY_READ_S):
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                total += len(chunk)
                more = bool(message.get("more_body", False))
                if total > limit:
                    chunks.clear()
                    if more:
                        await self._discard(limit * DRAIN_FACTOR, total)
                    raise _too_large(limit)
                chunks.append(chunk)
                if not more:
                    return b"".join(chunks)
        raise HttpError(
            408, "request_timeout", f"the request body did not arrive within {BODY_READ_S:g}s"
        )

    async def _discard(self, bound: int, seen: int) -> None:
        """Read and drop the rest of a body (``seen`` bytes of it read), up to ``bound``
        bytes in all and for ``DRAIN_S`` at most; returns at its end or at either bound.
        ``ClientGone`` if the client disconnects."""
        with trio.move_on_after(DRAIN_S):
            while seen <= bound:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                seen += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

    async def json(self, limit: int) -> Any:
        """The body parsed as JSON; ``HttpError(400)`` when it is not JSON."""
        raw = await self.body(limit)
        try:
            return parse_json(raw)
        except ValueError as exc:
            raise HttpError(400, "bad_request", f"malformed JSON body: {exc}") from None

    def query_number(self, name: str, *, low: float, high: float) -> float | None:
        """A numeric query parameter within [low, high]; ``HttpError(422)`` naming it if not."""
        raw = self.query.get(name)
        if raw is None:
            return None
        # a plain decimal number: float() also takes "1_0", " 1" and other scripts' digits
        value = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
        if not math.isfinite(value) or not low <= value <= high:
            raise invalid([(name, f"must be a number between {low:g} and {high:g}; got {raw!r}")])
        return value


#: a number as a query string writes it: ASCII digits, a point, an exponent
_DECIMAL: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _origin_form(path: str) -> str:
    """The path of a request target, also when a client sent it in absolute form
    (``http://host:port/health``, which servers must accept: RFC 9112, 3.2.2)."""
    if path.startswith(("http://", "https://")):
        rest = path.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return path


def parse_json(raw: str | bytes) -> Any:
    """``raw`` parsed as JSON; ``ValueError`` saying why not, in the client's terms (a
    document nested deeper than the parser goes, a number of more digits than it reads,
    bytes that are not UTF-8)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as exc:
        if "int_max_str_digits" in str(exc):  # (its words are advice for the server)
            most = sys.get_int_max_str_digits()
            raise ValueError(f"a number of more than {most} digits") from None
        raise


def _too_large(limit: int) -> HttpError:
    return HttpError(413, "payload_too_large", f"request body exceeds {limit} bytes")


def invalid(fields: Iterable[tuple[str, str]]) -> HttpError:
    """A 422 naming each bad field."""
    details = [{"field": f, "message": m} for f, m in fields]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return HttpError(422, "validation_error", message or "invalid request", details=details)


def dumps(data: Any) -> bytes:
    # ("replace": a lone surrogate that got this far becomes "?", not a 500 mid-answer)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")


async def send_json(send: Send, status: int, data: Any, headers: Headers = ()) -> None:
    body = dumps(data)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_text(send: Send, status: int, text: str, content_type: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def start_event_stream(send: Send, headers: Headers = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                *headers,
            ],
        }
    )


def event_bytes(data: Any) -> bytes:
    """One server-sent event ``data: <json>`` (or the literal ``[DONE]``), encoded."""
    payload = data.encode("utf-8", "replace") if isinstance(data, str) else dumps(data)
    return b"data: " + payload + b"\n\n"


async def send_events(send: Send, events: list[Any], *, last: bool = False) -> None:
    """Several events in one write (one socket send, not one per event); ``last`` ends
    the stream with them."""
    body = b"".join(event_bytes(e) for e in events)
    await send({"type": "http.response.body", "body": body, "more_body": not last})
