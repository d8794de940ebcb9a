"""The fake provider server: real HTTP/1.1 on real sockets (trio + h11), five wire formats.

The model name in a request selects a behaviour (see ``plan_from_name``); the
server follows the resulting ``Plan`` byte by byte, including what an ASGI
framework cannot do: reset the connection before headers, cut a stream, or
stall with the socket open. Every request is recorded as a ``ReceivedRequest``
that tests read through the ``FakeProviderServer`` handle.

Routes: ``POST .../chat/completions`` (OpenAI and compatibles), ``POST
/v1/messages`` (Anthropic), ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent`` (Gemini), ``POST /api/chat`` and ``GET /api/tags``
(Ollama), ``POST /v1/responses`` and ``/v1/agent`` (Perplexity's Agent API),
``GET /v1/models``.

A first path segment naming a provider (``/xai/v1/chat/completions``,
``/groq/openai/v1/...``, ``/deepseek/chat/completions``, ``/anthropic/v1/messages``...)
is dropped from the route and, for chat completions, picks that provider's flavour
(``CHAT_FLAVOURS``); without one, chat completions speak ``FakeServerConfig.flavour``
(OpenAI's by default). Each provider checks the request's headers as it does (its
key where it looks for it; Anthropic's ``anthropic-version``) and refuses a request
without them in its own way; any non-empty key is accepted. A path no route takes is
a 404 in the error shape of the provider its first segment names (else the flavour's),
and every whole reply carries the request id where that provider sends one
(``Wire.stamped``).
"""

from __future__ import annotations

import argparse
import functools
import http
import json
import re
import signal
import socket
import struct
import sys
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs
import h11
import trio

from switchman._cli_args import host_arg, latency_arg, port_arg
from switchman.sim._plan import BEHAVIOURS, BehaviourState, Failure, Plan, plan_from_name
from switchman.sim._wire import (
    CREATED,
    BadBody,
    Exchange,
    Headers,
    Rejected,
    Reply,
    Wire,
    json_reply,
)
from switchman.sim._wire_anthropic import AnthropicWire
from switchman.sim._wire_deepseek import DeepSeekBetaWire, DeepSeekWire
from switchman.sim._wire_gemini import GeminiWire
from switchman.sim._wire_groq import GroqWire
from switchman.sim._wire_mistral import MistralWire
from switchman.sim._wire_ollama import OllamaWire, tags_reply
from switchman.sim._wire_openai import OpenAIWire
from switchman.sim._wire_perplexity import ResponsesWire
from switchman.sim._wire_together import TogetherWire
from switchman.sim._wire_xai import XaiWire

_OPENAI: Final = OpenAIWire()
_ANTHROPIC: Final = AnthropicWire()
_GEMINI: Final = GeminiWire()
_OLLAMA: Final = OllamaWire()
_RESPONSES: Final = ResponsesWire()
_DEEPSEEK_BETA: Final = DeepSeekBetaWire()
_CHAT: Final[Mapping[str, Wire]] = {
    wire.name: wire
    for wire in (_OPENAI, XaiWire(), MistralWire(), GroqWire(), TogetherWire(), DeepSeekWire())
}
#: the providers whose chat completions the server speaks, each in its own flavour
CHAT_FLAVOURS: Final = tuple(_CHAT)
#: first path segments that name a provider (dropped from the route), and its wire
_PREFIX_WIRES: Final[Mapping[str, Wire]] = {
    **_CHAT,
    "anthropic": _ANTHROPIC,
    "gemini": _GEMINI,
    "ollama": _OLLAMA,
    "perplexity": _RESPONSES,
}
_PREFIXES: Final = frozenset(_PREFIX_WIRES)
_GEMINI_PATH: Final = re.compile(
    r"^/v1(?:beta|alpha)?/(?:models/)?(?P<model>[^:]+)"
    r":(?P<method>generateContent|streamGenerateContent)$"
)
_SECRET_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"}
)
_KEY_PARAM: Final = re.compile(r"(?<=[?&]key=)[^&]*")
_OVERLOADED: Final = Failure(kind="overloaded", status=529, message="Overloaded")
_READ_SIZE: Final = 65536


@attrs.frozen(kw_only=True)
class FakeServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    #: the provider whose flavour of chat completions a path without a provider prefix gets
    flavour: str = "openai"
    #: added to the time to first token of every healthy answer
    latency_ms: float = 0.0
    #: oldest records are dropped beyond this many
    max_records: int = 10_000
    max_body_bytes: int = 32 * 1024 * 1024


@attrs.frozen(kw_only=True)
class ReceivedRequest:
    """One request the fake server received, and what became of it.

    Times are ``trio.current_time()``. ``headers`` have secret values masked;
    ``body`` is the parsed JSON (``None`` when it did not parse). ``outcome``
    is ``in_progress`` until the exchange ends, then the failure kind
    (``rate_limited``, ``server_error``, ``unavailable``, ``overloaded``,
    ``reset``, ``silent``, ``context_length``, ``content_policy``, ``not_found``,
    ``bad_key``, ``quota_exhausted``, ``spend_limit``), the answer's ending
    (``complete``, ``refusal``, ``cut``, ``stall``, ``error``), ``client_closed`` when
    the client went away first, ``unauthorized`` (a header the provider requires, such
    as its key, was missing), or ``bad_request`` / ``not_found`` / ``listed``.
    """

    n: int
    wire_format: str
    method: str
    path: str
    model: str | None
    behaviour: str | None
    headers: Mapping[str, str]
    body: Any
    received_at: float
    first_byte_at: float | None = None
    ended_at: float | None = None
    status: int | None = None
    outcome: str = "in_progress"


class FakeProviderServer:
    """The handle of a running fake server: its address and what it received."""

    def __init__(self, config: FakeServerConfig, port: int) -> None:
        self.config = config
        self.port = port
        host = f"[{config.host}]" if ":" in config.host else config.host
        self.base_url = f"http://{host}:{port}"
        self._state = BehaviourState()
        self._records: dict[int, ReceivedRequest] = {}
        self._count = 0
        self._changed = trio.Event()

    def requests(self, model: str | None = None) -> list[ReceivedRequest]:
        """Recorded requests, oldest first; only those naming ``model`` when given."""
        records = list(self._records.values())
        if model is None:
            return records
        return [r for r in records if r.model == model]

    def clear(self) -> None:
        """Forget the recorded requests (behaviour state such as ``error-once`` is kept)."""
        self._records.clear()

    async def wait_ended(self, model: str | None = None) -> ReceivedRequest:
        """Wait until the latest request (naming ``model``, when given) has ended; return it.

        Cancellation just stops the wait.
        """
        while True:
            records = self.requests(model)
            if records and records[-1].outcome != "in_progress":
                return records[-1]
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def reset_behaviours(self) -> None:
        """Forget per-model behaviour state: ``error-once`` fails again, flapping restarts."""
        self._state.clear()

    def _record(self, **fields: Any) -> int:
        self._count += 1
        n = self._count
        self._records[n] = ReceivedRequest(n=n, **fields)
        while len(self._records) > self.config.max_records:
            del self._records[next(iter(self._records))]
        self._notify()
        return n

    def _update(self, n: int, **changes: Any) -> None:
        record = self._records.get(n)
        if record is not None:
            self._records[n] = attrs.evolve(record, **changes)
            self._notify()


class _ClientGone(Exception):
    """The client closed (or reset) its side of the connection."""


class _Io:
    """One connection: h11 state plus the socket, and the record of the current request."""

    def __init__(self, stream: trio.SocketStream, server: FakeProviderServer) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.SERVER)
        self.server = server
        #: the record of the request being answered (0: none) and whether it is settled
        self.n = 0
        self.settled = False
        #: bytes rendered but not sent yet (headers waiting for the first body bytes)
        self.held = b""
        #: the wire format of the request being answered (its replies carry its request id)
        self.wire: Wire = _OPENAI

    def settle(self, outcome: str) -> None:
        """Record the outcome just before the last bytes go out, so a client that has
        read the whole reply always finds its record final."""
        if self.n:
            self.server._update(self.n, ended_at=trio.current_time(), outcome=outcome)
            self.settled = True

    async def _receive(self) -> bytes:
        try:
            return await self.stream.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _ClientGone from exc

    async def next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(await self._receive())

    async def _send(self, *events: Any) -> None:
        data = self.held + b"".join(self.conn.send(event) or b"" for event in events)
        self.held = b""
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _ClientGone from exc

    def _response(self, status: int, headers: list[tuple[str, str]]) -> h11.Response:
        if self.n:
            self.server._update(self.n, status=status, first_byte_at=trio.current_time())
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Overloaded" if status == 529 else ""
        return h11.Response(status_code=status, headers=headers, reason=reason)

    async def reply(self, reply: Reply, *, outcome: str) -> None:
        """Send a whole reply, with the request id where ``self.wire``'s provider sends one."""
        if self.n:
            reply = self.wire.stamped(reply, f"sim{self.n}")
        headers = [
            ("content-type", reply.content_type),
            ("content-length", str(len(reply.body))),
            *reply.headers,
        ]
        response = self._response(reply.status, headers)
        self.settle(outcome)
        await self._send(response, h11.Data(data=reply.body), h11.EndOfMessage())

    async def start_stream(self, content_type: str, extra: Headers, *, hold: bool) -> None:
        """Send the 200 headers of a stream; with ``hold``, send them with the first data."""
        headers = [("content-type", content_type), ("cache-control", "no-cache"), *extra]
        response = self._response(200, headers)
        if hold:
            self.held += self.conn.send(response) or b""
        else:
            await self._send(response)

    async def data(self, data: bytes, *, end: str | None = None) -> None:
        """Send stream bytes; ``end`` (the outcome) also ends the reply."""
        events: list[Any] = [h11.Data(data=data)] if data else []
        if end is not None:
            events.append(h11.EndOfMessage())
            self.settle(end)
        if events or self.held:
            await self._send(*events)

    async def partial(self, reply: Reply) -> None:
        """Headers promising the whole body, then only its first half."""
        headers = [
            ("content-type", reply.content_type),
            ("content-length", str(len(reply.body))),
            *reply.headers,
        ]
        half = reply.body[: len(reply.body) // 2]
        await self._send(self._response(reply.status, headers), h11.Data(data=half))

    async def pause(self, seconds: float) -> None:
        """Sleep, noticing (and raising ``_ClientGone``) if the client goes away meanwhile."""
        if seconds <= 0:
            return
        with trio.move_on_after(seconds):
            await self.wait_closed()
            raise _ClientGone

    async def wait_closed(self) -> None:
        """Wait until the client closes the connection (data it sends meanwhile is kept)."""
        if self.held:
            await self._send()
        while True:
            try:
                data = await self._receive()
            except _ClientGone:
                return
            if not data:
                return
            self.conn.receive_data(data)

    def reset(self) -> None:
        """Close with a TCP reset instead of an orderly shutdown."""
        self.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _route(method: str, path: str, flavour: str) -> tuple[Wire, str | None, str] | None:
    """(wire, model from the path, kind) where kind is ``chat``, ``stream`` (Gemini) or a GET.

    A first segment naming a provider is dropped; for chat completions it replaces
    ``flavour``.
    """
    first, _, rest = path.lstrip("/").partition("/")
    if first in _PREFIXES:
        path = "/" + rest
        flavour = first if first in _CHAT else flavour
    if method == "POST":
        if path.endswith("/chat/completions"):
            beta = flavour == "deepseek" and path.endswith("/beta/chat/completions")
            return _DEEPSEEK_BETA if beta else _CHAT[flavour], None, "chat"
        if path == "/v1/messages":
            return _ANTHROPIC, None, "chat"
        if path == "/api/chat":
            return _OLLAMA, None, "chat"
        if path in ("/v1/responses", "/v1/agent", "/responses"):
            return _RESPONSES, None, "chat"
        match = _GEMINI_PATH.match(path)
        if match:
            model = urllib.parse.unquote(match["model"]).removeprefix("models/")
            kind = "stream" if match["method"] == "streamGenerateContent" else "chat"
            return _GEMINI, model, kind
    elif method == "GET":
        if path == "/api/tags":
            return _OLLAMA, None, "tags"
        if path in ("/v1/models", "/models"):
            return _OPENAI, None, "models"
    return None


def _speaker(path: str, flavour: str) -> Wire:
    """The wire whose error shape a request to ``path`` gets when no route takes it: the
    provider its first segment names, else the chat completions of ``flavour``."""
    first = path.lstrip("/").partition("/")[0]
    return _PREFIX_WIRES.get(first, _CHAT[flavour])


def _masked(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in _SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} ***" if rest else "***"
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _plain(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers by lower-case name (the last of a repeated one), values unmasked."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in headers}


def _models_reply() -> Reply:
    data = [
        {"id": name, "object": "model", "created": CREATED, "owned_by": "switchman-sim"}
        for name in BEHAVIOURS
    ]
    return json_reply(200, {"object": "list", "data": data})


async def _read_body(io: _Io, request: h11.Request, limit: int) -> bytes | None:
    """The whole body, or ``None`` when it exceeds ``limit``."""
    for name, value in request.headers:
        if name == b"content-length" and int(value) > limit:
            return None
    parts: list[bytes] = []
    size = 0
    while True:
        event = await io.next_event()
        if isinstance(event, h11.EndOfMessage):
            return b"".join(parts)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                return None
            parts.append(event.data)
        elif isinstance(event, h11.ConnectionClosed):
            raise _ClientGone


async def _play(io: _Io, wire: Wire, ex: Exchange) -> tuple[str, bool]:
    """Carry out ``ex.plan`` on the connection: (outcome, whether the connection lives on)."""
    plan = ex.plan
    failure = plan.failure
    if failure is not None:
        if failure.kind == "silent":
            await io.wait_closed()
            return "silent", False
        await io.pause(plan.ttft_s)
        if failure.kind == "reset":
            io.reset()
            return "reset", False
        await io.reply(wire.error(failure, ex), outcome=failure.kind)
        return failure.kind, True
    if not ex.parsed.request.stream:
        return await _play_whole(io, wire, ex)
    return await _play_stream(io, wire, ex, plan)


async def _play_whole(io: _Io, wire: Wire, ex: Exchange) -> tuple[str, bool]:
    plan = ex.plan
    await io.pause(plan.ttft_s + sum(plan.delays))
    if plan.ending == "error":
        await io.reply(wire.error(_OVERLOADED, ex), outcome="error")
        return "error", True
    if plan.ending in ("cut", "stall"):
        await io.partial(wire.whole(attrs.evolve(ex, plan=attrs.evolve(plan, ending="complete"))))
        if plan.ending == "stall":
            await io.wait_closed()
        return plan.ending, False
    await io.reply(wire.whole(ex), outcome=plan.ending)
    return plan.ending, True


async def _play_stream(io: _Io, wire: Wire, ex: Exchange, plan: Plan) -> tuple[str, bool]:
    preamble = wire.preamble(ex)
    await io.start_stream(wire.stream_type, wire.ok_headers(ex), hold=plan.ttft_s <= 0)
    if preamble and plan.ttft_s > 0:  # what holds the stream open while the model waits
        await io.data(preamble)
        preamble = b""
    await io.pause(plan.ttft_s)
    buf = preamble + wire.head(ex)
    if plan.ending == "refusal":
        buf += wire.refusal(ex)
        if plan.terminator:
            buf += wire.terminator(ex)
        await io.data(buf, end="refusal")
        return "refusal", True
    fill = wire.chunker(ex)
    for i, chunk in enumerate(plan.delivered):
        delay = plan.delays[i]
        if delay > 0:
            await io.data(buf)
            buf = b""
            await io.pause(delay)
        if i == plan.malformed_at:
            buf += wire.malformed(ex)
        buf += fill(chunk)
    if plan.ending == "complete":
        buf += wire.finish(ex)
        if plan.terminator:
            buf += wire.terminator(ex)
        await io.data(buf, end="complete")
        return "complete", True
    if plan.ending == "error":
        await io.data(buf + wire.mid_error(ex), end="error")
        return "error", True
    await io.data(buf)
    if plan.ending == "stall":
        await io.wait_closed()
    return plan.ending, False


async def _respond(io: _Io, server: FakeProviderServer, request: h11.Request) -> bool:
    """Read one request's body, answer it, record it; whether the connection lives on."""
    received_at = trio.current_time()
    method = request.method.decode()
    target = request.target.decode("latin-1")
    path, _, query = target.partition("?")
    route = _route(method, path, server.config.flavour)
    io.wire = _speaker(path, server.config.flavour) if route is None else route[0]
    body = await _read_body(io, request, server.config.max_body_bytes)
    record = functools.partial(
        server._record,
        method=method,
        path=_KEY_PARAM.sub("***", target),
        headers=_masked(request.headers),
        received_at=received_at,
    )
    if body is None:
        io.n = record(wire_format="none", model=None, behaviour=None, body=None)
        await io.reply(
            json_reply(413, {"error": {"message": "request body too large"}}), outcome="bad_request"
        )
        return _ended(io, server, "bad_request", keep=False)
    if route is None:
        io.n = record(wire_format="none", model=None, behaviour=None, body=None)
        await io.reply(io.wire.not_found(f"no route for {method} {path}"), outcome="not_found")
        return _ended(io, server, "not_found")
    wire, path_model, kind = route
    if kind in ("tags", "models"):
        io.n = record(wire_format=wire.name, model=None, behaviour=None, body=None)
        listing = tags_reply(BEHAVIOURS) if kind == "tags" else _models_reply()
        await io.reply(listing, outcome="listed")
        return _ended(io, server, "listed")
    obj: Any = None
    sse = urllib.parse.parse_qs(query).get("alt") == ["sse"]
    refusal: Reply | None = None
    try:
        obj = json.loads(body)
        parsed = wire.parse(obj, path_model=path_model, stream=kind == "stream" and sse)
    except Rejected as exc:
        refusal = exc.reply
    except BadBody as exc:
        refusal = wire.bad_request(str(exc))
    except ValueError:
        refusal = wire.bad_request("invalid JSON")
    headers = _plain(request.headers)
    params = dict(urllib.parse.parse_qsl(query))
    unauthorized = wire.refuse_headers(headers, params)
    turned_away = unauthorized if unauthorized is not None else refusal
    if turned_away is not None:
        model = obj.get("model") if isinstance(obj, dict) else None
        model = model if isinstance(model, str) else path_model
        io.n = record(wire_format=wire.name, model=model, behaviour=None, body=obj)
        outcome = "unauthorized" if unauthorized is not None else "bad_request"
        await io.reply(turned_away, outcome=outcome)
        return _ended(io, server, outcome)
    if kind == "stream" and not sse:
        parsed = attrs.evolve(parsed, array=True)
    plan = plan_from_name(parsed.model, parsed.request, now=received_at, state=server._state)
    plan = wire.replan(plan, parsed.request)
    if server.config.latency_ms > 0 and plan.failure is None:
        plan = attrs.evolve(plan, ttft_s=plan.ttft_s + server.config.latency_ms / 1000.0)
    io.n = record(wire_format=wire.name, model=parsed.model, behaviour=plan.behaviour, body=obj)
    exchange = Exchange(
        plan=plan,
        parsed=parsed,
        id=f"sim{io.n}",
        wall=time.time(),
        key=wire.api_key(headers, params) or "",
    )
    try:
        outcome, keep = await _play(io, wire, exchange)
    except _ClientGone:
        return _ended(io, server, "client_closed", keep=False)
    return _ended(io, server, outcome, keep=keep)


def _ended(io: _Io, server: FakeProviderServer, outcome: str, *, keep: bool = True) -> bool:
    if not io.settled or outcome == "client_closed":
        server._update(io.n, ended_at=trio.current_time(), outcome=outcome)
    io.n = 0
    io.settled = False
    return keep


async def _serve_connection(server: FakeProviderServer, stream: trio.SocketStream) -> None:
    io = _Io(stream, server)
    try:
        while True:
            event = await io.next_event()
            if not isinstance(event, h11.Request):
                return
            if not await _respond(io, server, event):
                return
            if io.conn.our_state is h11.MUST_CLOSE:
                return
            io.conn.start_next_cycle()
    except (_ClientGone, h11.ProtocolError):
        return
    finally:
        if io.n:
            _ended(io, server, "client_closed", keep=False)
        await trio.aclose_forcefully(stream)


_DEFAULT_CONFIG: Final = FakeServerConfig()


async def serve_fake_provider(
    config: FakeServerConfig = _DEFAULT_CONFIG,
    *,
    task_status: trio.TaskStatus[FakeProviderServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the fake provider until cancelled; ``task_status.started`` gets the handle.

    Listens on ``config.host``/``config.port`` (port 0 picks a free one; give a
    numeric host so there is exactly one listener). Each connection is served
    in this function's own nursery with keep-alive; cancelling it closes the
    listener and every connection at once, mid-answer or not.
    """
    if config.flavour not in _CHAT:
        raise ValueError(f"flavour must be one of {', '.join(_CHAT)}; got {config.flavour!r}")
    listeners = await trio.open_tcp_listeners(config.port, host=config.host)
    port = listeners[0].socket.getsockname()[1]
    server = FakeProviderServer(config, port)
    async with trio.open_nursery() as nursery:
        handler = functools.partial(_serve_connection, server)
        await nursery.start(trio.serve_listeners, handler, listeners)
        task_status.started(server)


def main(argv: list[str] | None = None, *, prog: str = "python -m switchman.sim") -> int:
    """``python -m switchman.sim [--host H] [--port N] [--latency-ms MS] [--flavour NAME]``.

    Serves until Ctrl-C or SIGTERM, then stops cleanly and returns 0. An option out of
    range is a usage error, and an address it cannot listen on (a port in use) is said
    on stderr under ``prog``'s name: both exit 2.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A fake LLM provider over HTTP; the model name picks the behaviour: "
        + ", ".join(BEHAVIOURS),
    )
    parser.add_argument("--host", type=host_arg, default="127.0.0.1")
    parser.add_argument(
        "--port", type=port_arg(allow_zero=True), default=8266, help="0 to 65535, 0: any free"
    )
    parser.add_argument(
        "--latency-ms", type=latency_arg, default=0.0, help="added to every answer, 0 or more"
    )
    parser.add_argument(
        "--flavour",
        choices=CHAT_FLAVOURS,
        default="openai",
        help="whose chat completions a path without a provider prefix speaks",
    )
    args = parser.parse_args(argv)
    config = FakeServerConfig(
        host=args.host, port=args.port, latency_ms=args.latency_ms, flavour=args.flavour
    )

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                server: FakeProviderServer = await nursery.start(serve_fake_provider, config)
                print(f"fake provider listening on {server.base_url}", flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    refused: list[BaseException] = []
    try:
        trio.run(run)
    except* OSError as group:  # the port is taken, the address is not this machine's...
        refused.append(group)
    if not refused:
        return 0
    exc = refused[0]
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    where = f"[{args.host}]" if ":" in args.host else args.host
    print(f"{prog}: cannot listen on {where}:{args.port}: {reason}", file=sys.stderr)
    return 2
