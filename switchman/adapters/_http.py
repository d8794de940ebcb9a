"""The one async step: send an adapter's request on a pooled client, stream events back.

Everything provider-specific is in the adapter (pure); this module owns the
I/O, the time limits and the mapping of transport exceptions (httpx's and
httpcore's) into the error tree, in one place (``_transport_error``).

Two ways to the wire, one behaviour. A client made by ``make_client`` (or any
``httpx.AsyncClient`` over a plain ``httpx.AsyncHTTPTransport``, with no proxy,
auth, cookies, event hooks, query parameters or redirects to follow) sends
straight through the httpcore connection pool under it: the request is built
once, as the bytes httpx would send, and httpx's client layer (URL merging,
cookie extraction, auth and redirect plumbing, response wrapping) is skipped.
Any other client (mock or custom transports) goes through ``client.stream``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import math
import os
import re
import urllib.parse
import urllib.request
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, Final, cast

import attrs
import httpcore
import httpx
import trio

from switchman._errors import (
    AttemptTimeout,
    BadReply,
    BadRequest,
    ModelNotFound,
    ProviderError,
    ResentFailed,
    StreamBroken,
    TransientError,
)
from switchman.adapters._base import (
    Adapter,
    HttpRequest,
    ProviderRequest,
    ResponseStarted,
    StreamEnd,
    StreamEvent,
    StreamParser,
    TextDelta,
)
from switchman.adapters._echo import Emit, said_again, without_prefill
from switchman.adapters._pool import (
    Body,
    LeanPool,
    LeanTransport,
    SentTwice,
    system_ssl_context,
)
from switchman.adapters._sse import REDACTED, bad_reply, scrub, snippet
from switchman.catalog._credentials import header_credentials
from switchman.catalog._spec import ProviderSpec

#: an error body is read up to this many bytes (the message is all we need)
MAX_ERROR_BODY: Final = 64 * 1024

_log = logging.getLogger("switchman.http")

#: what httpcore raises (it has no common base class); httpx maps the same set
_CORE_ERRORS: Final = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)
_TRANSPORT_ERRORS: Final = (httpx.HTTPError, httpx.InvalidURL, *_CORE_ERRORS)
#: content codings the direct path accepts, all undone here with zlib
_DECODABLE: Final = frozenset({b"gzip", b"deflate", b"identity"})
#: (status, lower-case headers, body chunks) of an opened response
_Opened = tuple[int, dict[str, str], AsyncIterator[bytes]]


def make_client(provider: ProviderSpec) -> httpx.AsyncClient:
    """A pooled HTTP/1.1 client for one provider (over a ``LeanPool``); its owner (the
    provider actor) closes it.

    Connect timeout from ``provider.connect_timeout_s``; reads are bounded by
    ``provider.read_timeout_s`` as a backstop (``send_attempt``'s TTFT and stall
    limits are the real ones); at most ``max_concurrency`` connections.
    """
    size = max(provider.max_concurrency, 1)
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    settings: dict[str, Any] = dict(
        http1=True,
        http2=False,
        timeout=httpx.Timeout(
            provider.read_timeout_s, connect=provider.connect_timeout_s, pool=None
        ),
        limits=limits,
        follow_redirects=False,
        verify=system_ssl_context(),
    )
    if proxy_variables():
        # a proxy in the environment: httpx's own transports, which honour it and NO_PROXY
        # (httpx reads them only without a transport given), and httpx's own path
        client = proxied_client(f"provider {provider.name}", **settings)
        if client is not None:
            return client
    return httpx.AsyncClient(**settings, transport=LeanTransport(limits))


def proxy_variables() -> list[str]:
    """The environment's variables that name a proxy for HTTP(S) requests, as httpx reads
    them (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, in either case)."""
    if not any(s in ("http", "https", "all") for s in urllib.request.getproxies()):
        return []
    names = [f"{s}_PROXY" for s in ("HTTP", "HTTPS", "ALL")]
    return [n for name in names for n in (name, name.lower()) if os.environ.get(n)]


def proxied_client(who: str, **settings: Any) -> httpx.AsyncClient | None:
    """An httpx client through the environment's proxy; None, with a warning naming the
    variables, when httpx cannot use it (a SOCKS proxy without the ``socksio`` package, a
    URL it does not take): ``who`` then connects directly rather than not at all. The
    proxy's URL is never shown (it may carry credentials)."""
    try:
        return httpx.AsyncClient(**settings)
    except (ImportError, ValueError, httpx.InvalidURL) as exc:
        why = (
            "a SOCKS proxy needs the socksio package"
            if isinstance(exc, ImportError)
            else "httpx does not take its URL"
        )
        _log.warning(
            "the proxy %s names cannot be used (%s): %s connects directly",
            " and ".join(proxy_variables()),
            why,
            who,
        )
        return None


class _Timer:
    """The read deadline: TTFT until the first token, then the stall limit per chunk."""

    def __init__(self, ttft_timeout_s: float, stall_timeout_s: float) -> None:
        self.ttft_timeout_s = ttft_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.ttft_deadline = trio.current_time() + ttft_timeout_s
        self.output_began = False

    def next_deadline(self) -> float:
        # before the first token only the caller's TTFT limit applies: a reasoning model
        # may stay quiet (keep-alives, thinking) for longer than the stall limit
        if not self.output_began:
            return self.ttft_deadline
        return trio.current_time() + self.stall_timeout_s

    def timeout(self, provider: str, status: int | None) -> ProviderError:
        if self.output_began:
            return StreamBroken(
                f"stream stalled: nothing for {self.stall_timeout_s:g} s after output began",
                provider=provider,
                status=status,
            )
        if trio.current_time() >= self.ttft_deadline:
            return AttemptTimeout(
                f"no first token within {self.ttft_timeout_s:g} s", provider=provider, status=status
            )
        return AttemptTimeout(
            f"stream stalled for {self.stall_timeout_s:g} s before the first token",
            provider=provider,
            status=status,
        )


async def send_attempt(
    client: httpx.AsyncClient,
    adapter: Adapter,
    request: ProviderRequest,
    emit: Emit,
    *,
    ttft_timeout_s: float,
    stall_timeout_s: float,
) -> None:
    """Send one attempt and emit its events; raise the mapped ``ProviderError`` on failure.

    Emits ``ResponseStarted`` as soon as the status line and headers arrive
    (also for an error status, before raising), then ``TextDelta`` / ``Malformed``
    events, then exactly one ``StreamEnd``. A non-streaming request emits one
    ``TextDelta`` with the whole text; its "first token" is the whole answer, so
    ``ttft_timeout_s`` bounds the time to the full response.

    Time limits: no first token within ``ttft_timeout_s`` -> ``AttemptTimeout``;
    no bytes for ``stall_timeout_s`` -> ``StreamBroken`` once text was emitted,
    else ``AttemptTimeout``. A stream that stalls after its finish reason (for half the
    stall limit) or whose connection breaks after it is finalised as complete.
    Connection failures before any text -> ``TransientError``; after text ->
    ``StreamBroken``; a bad provider URL -> ``BadRequest``.

    Cancellation: if the caller's scope is cancelled midway the response is
    closed (its connection is dropped, not returned to the pool) and
    ``trio.Cancelled`` propagates. The client stays open; its owner closes it.
    """
    http = adapter.build_request(request)
    prefill = said_again(getattr(adapter, "flavor", None), request)
    if prefill is not None:  # (Mistral's answer says the prefill again first)
        emit = without_prefill(emit, prefill)
    timer = _Timer(ttft_timeout_s, stall_timeout_s)
    provider = adapter.provider
    status: int | None = None
    try:
        pool = _pool_under(client)
        target = _target(http.url) if pool is not None else None
        async with contextlib.AsyncExitStack() as stack:
            with trio.move_on_at(timer.ttft_deadline) as connecting:
                if pool is not None and target is not None:
                    opened = await _open_direct(stack, client, pool, target, http)
                else:
                    opened = await _open_httpx(stack, client, http)
            if connecting.cancelled_caught:
                raise timer.timeout(provider, None)
            status, headers, chunks = opened
            await emit(ResponseStarted(status=status, headers=headers))
            if not 200 <= status < 300:
                body = await _read_body(chunks, timer, limit=MAX_ERROR_BODY)
                failed = adapter.parse_error(status, headers, body or b"")
                raise _unplaced(_where(failed, request, http, adapter), adapter)
            if "html" in headers.get("content-type", "").lower():
                # a login page or a proxy's, though it says 200: no answer is in it
                body = await _read_body(chunks, timer, limit=MAX_ERROR_BODY)
                said = hide_base_url(
                    scrub(snippet(body or b""), _secrets_of(http)), _base_url(adapter)
                )
                raise bad_reply(
                    provider,
                    f"answered {status} with a web page ({headers['content-type']}), not a "
                    f"model's answer: {said}",
                    status,
                )
            if request.stream:
                await _stream(chunks, adapter.stream_parser(), timer, emit, provider, status)
            else:
                body = await _read_body(chunks, timer, limit=None)
                if body is None:
                    raise timer.timeout(provider, status)
                completion = adapter.parse_response(body)
                if completion.text:
                    timer.output_began = True
                    await emit(TextDelta(text=completion.text))
                await emit(
                    StreamEnd(
                        finish_reason=completion.finish_reason,
                        usage=completion.usage,
                        model_id=completion.model_id,
                        cost_usd=completion.cost_usd,
                        cached_input_tokens=completion.cached_input_tokens,
                        fees=completion.fees,
                        citations=completion.citations,
                    )
                )
    except _TRANSPORT_ERRORS as exc:
        raise _transport_error(
            exc, provider, status, timer.output_began, http.url, _secrets_of(http)
        ) from exc
    except ProviderError as exc:  # (the error path only: an answer pays nothing for it)
        _scrubbed(exc, _secrets_of(http))
        raise


async def _open_httpx(
    stack: contextlib.AsyncExitStack, client: httpx.AsyncClient, http: HttpRequest
) -> _Opened:
    """Send through httpx's client layer; ``stack`` closes the response."""
    sent = client.build_request(http.method, http.url, headers=dict(http.headers), json=http.json)
    if http.json is not None:
        sent.stream = Body(sent.content)  # (its length as httpx said it)
    response = await client.send(sent, stream=True)
    stack.push_async_callback(response.aclose)
    chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
    stack.push_async_callback(_abandon, chunks)
    return response.status_code, dict(response.headers.items()), chunks


async def _open_direct(
    stack: contextlib.AsyncExitStack,
    client: httpx.AsyncClient,
    pool: httpcore.AsyncConnectionPool,
    target: _Target,
    http: HttpRequest,
) -> _Opened:
    """Send straight through ``pool``, with what httpx would have sent; ``stack`` closes
    the response (a response not read to its end drops its connection)."""
    method = http.method.upper()
    body = None
    if http.json is not None:
        text = json.dumps(http.json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        body = text.encode()
    sent = httpcore.Request(
        method,
        target.url,
        headers=_request_headers(client.headers.raw, http.headers, target.host, method, body),
        content=None if body is None else Body(body),
        extensions={"timeout": client.timeout.as_dict()},
    )
    response = await pool.handle_async_request(sent)
    stack.push_async_callback(response.aclose)
    raw = cast(AsyncGenerator[bytes, None], response.aiter_stream())
    stack.push_async_callback(_abandon, raw)
    headers = _response_headers(response.headers)
    return response.status, headers, _decoded(raw, headers.get("content-encoding"))


#: the transports and pools whose exchange is httpcore's plain one (``make_client``'s own)
_PLAIN_TRANSPORTS: Final = (httpx.AsyncHTTPTransport, LeanTransport)
_PLAIN_POOLS: Final = (httpcore.AsyncConnectionPool, LeanPool)


def _pool_under(client: httpx.AsyncClient) -> httpcore.AsyncConnectionPool | None:
    """The httpcore pool under a plain client, or None when httpx's own path must be taken.

    httpx keeps the pool private (``AsyncHTTPTransport._pool``) and its mounts in
    ``_mounts`` (proxies from the environment): this is the one place that reaches
    for them, and any surprise (another transport, a proxy, a later httpx without the
    attribute) means the httpx path. So does anything the client layer would add to
    the exchange: auth, cookies, event hooks, query parameters, redirects.
    """
    transport = getattr(client, "_transport", None)
    if type(transport) not in _PLAIN_TRANSPORTS or getattr(client, "_mounts", True):
        return None
    pool = getattr(transport, "_pool", None)
    if type(pool) not in _PLAIN_POOLS:
        return None
    hooks = client.event_hooks
    if (
        client.is_closed
        or client.follow_redirects
        or client.auth is not None
        or client.params
        or client.cookies
        or hooks["request"]
        or hooks["response"]
    ):
        return None
    return pool


@attrs.frozen
class _Target:
    """A request URL as httpx parses it: the pool's URL and the Host header's value."""

    url: httpcore.URL
    host: bytes


@functools.lru_cache(maxsize=512)
def _target(url: str) -> _Target | None:
    """``url`` parsed once (an adapter sends a handful of distinct URLs); None for a URL
    httpx treats specially (relative, or carrying credentials): it takes the httpx path.

    Raises ``httpx.InvalidURL`` for a URL httpx would refuse.
    """
    parsed = httpx.URL(url)
    if not parsed.is_absolute_url or parsed.userinfo:
        return None
    core = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return _Target(url=core, host=parsed.netloc)


def _request_headers(
    defaults: list[tuple[bytes, bytes]],
    own: Mapping[str, str],
    host: bytes,
    method: str,
    body: bytes | None,
) -> list[tuple[bytes, bytes]]:
    """The headers httpx would send, in its order: Host, the client's defaults less those
    the adapter sets, the adapter's, then the JSON body's length and type.

    Accept-Encoding is narrowed to the codings ``_decoded`` undoes.
    """
    mine = [(name.encode("ascii"), value.encode("ascii")) for name, value in own.items()]
    names = {name.lower() for name, _ in mine}
    headers = [(name, value) for name, value in defaults if name.lower() not in names]
    headers += mine
    names.update(name.lower() for name, _ in headers)
    if body is not None:
        if b"content-length" not in names:
            headers.append((b"Content-Length", str(len(body)).encode()))
        if b"content-type" not in names:
            headers.append((b"Content-Type", b"application/json"))
        names.add(b"content-length")
    auto = [] if b"host" in names or not host else [(b"Host", host)]
    if names.isdisjoint((b"content-length", b"transfer-encoding")) and method in (
        "POST",
        "PUT",
        "PATCH",
    ):
        auto.append((b"Content-Length", b"0"))
    for i, (name, value) in enumerate(headers):
        if name.lower() == b"accept-encoding":
            codings = [c.strip() for c in value.split(b",")]
            kept = [c for c in codings if c.partition(b";")[0].strip().lower() in _DECODABLE]
            headers[i] = (name, b", ".join(kept) or b"identity")
    return auto + headers


def _response_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names to values, a repeated name's values joined by ", ", decoded as
    ``httpx.Headers.items`` decodes them (ASCII, else UTF-8, else Latin-1)."""
    for encoding in ("ascii", "utf-8"):
        with contextlib.suppress(UnicodeDecodeError):
            return _joined(raw, encoding)
    return _joined(raw, "iso-8859-1")


def _joined(raw: list[tuple[bytes, bytes]], encoding: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw:
        key, text = name.lower().decode(encoding), value.decode(encoding)
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


class _Inflater:
    """One content coding undone with zlib: gzip, or deflate (zlib-wrapped or, as some
    servers send it, raw: the first bytes decide). Corrupt data -> ``httpx.DecodingError``."""

    def __init__(self, coding: bytes) -> None:
        self._try_raw = coding == b"deflate"
        self._zlib = zlib.decompressobj(
            zlib.MAX_WBITS | 16 if coding == b"gzip" else zlib.MAX_WBITS
        )

    def decode(self, data: bytes) -> bytes:
        try:
            out = self._zlib.decompress(data)
        except zlib.error as exc:
            if not self._try_raw:
                raise httpx.DecodingError(str(exc)) from exc
            self._try_raw = False
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.decode(data)
        self._try_raw = False
        return out

    def flush(self) -> bytes:
        try:
            return self._zlib.flush()
        except zlib.error as exc:  # pragma: no cover - zlib's flush raises only on bad state
            raise httpx.DecodingError(str(exc)) from exc


class _Decoding:
    """A body iterator with its content codings undone, last applied first."""

    def __init__(self, chunks: AsyncIterator[bytes], inflaters: list[_Inflater]) -> None:
        self._chunks = chunks
        self._inflaters = inflaters
        self._ended = False

    def __aiter__(self) -> _Decoding:
        return self

    async def __anext__(self) -> bytes:
        while not self._ended:
            try:
                data = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._ended = True
                data = b""
                for inflater in self._inflaters:
                    data = inflater.decode(data) + inflater.flush()
            else:
                for inflater in self._inflaters:
                    data = inflater.decode(data)
            if data:
                return data
        raise StopAsyncIteration


def _decoded(chunks: AsyncIterator[bytes], coding: str | None) -> AsyncIterator[bytes]:
    """``chunks`` decoded per the Content-Encoding ``coding``; unknown codings are left
    as they are (as httpx leaves them)."""
    if not coding:
        return chunks
    names = [c.strip().lower().encode("latin-1") for c in coding.split(",")]
    inflaters = [_Inflater(c) for c in reversed(names) if c in (b"gzip", b"deflate")]
    return _Decoding(chunks, inflaters) if inflaters else chunks


async def _abandon(chunks: AsyncGenerator[bytes, None]) -> None:
    """Finish a body iterator that was not read to the end, and every layer under it.

    httpx's and httpcore's body iterators are async generators stacked on one
    another; closing the top one would leave those below suspended for the
    garbage collector (which trio warns about). Resuming it under an already
    cancelled scope makes the next read raise ``Cancelled`` up through every
    layer, so each one ends here and now (httpcore drops the connection of a
    response not read to its end); the response itself is closed right after,
    by its context.
    """
    # cancelled from the start by its deadline (``scope.cancel()`` would format the
    # current task's repr for the cancel reason: a cost paid on every attempt)
    with trio.CancelScope(deadline=-math.inf):
        # data already buffered is read without a checkpoint: at most one read's worth
        for _ in range(65536):
            try:
                await chunks.__anext__()
            except (StopAsyncIteration, httpx.HTTPError, *_CORE_ERRORS):  # discarded anyway
                break
    await chunks.aclose()


async def _read_body(
    chunks: AsyncIterator[bytes], timer: _Timer, *, limit: int | None
) -> bytes | None:
    """The whole body (an error body: up to ``limit``, whatever arrived before a timeout).

    Returns None when a success body (``limit`` None) times out.
    """
    body = bytearray()
    while limit is None or len(body) < limit:
        with trio.move_on_at(timer.next_deadline()) as scope:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
        if scope.cancelled_caught:
            if limit is None:
                return None
            break
        body += chunk
    return bytes(body if limit is None else body[:limit])


async def _stream(
    chunks: AsyncIterator[bytes],
    parser: StreamParser,
    timer: _Timer,
    emit: Emit,
    provider: str,
    status: int,
) -> None:
    """Feed the parser until it yields ``StreamEnd`` (emitted once) or the body ends.

    Once the parser has the finish reason (``finished``), the text is whole: the end
    marker is waited for at most half the stall limit (it normally follows at once; the
    caller's own stall clock, started by the last text, must not run out first), and a
    connection that breaks before it ends the answer rather than failing it.
    """
    finish_by: float | None = None
    while True:
        deadline = timer.next_deadline()
        if finish_by is not None:
            deadline = min(deadline, finish_by)
        with trio.move_on_at(deadline) as scope:
            try:
                chunk: bytes | None = await chunks.__anext__()
            except StopAsyncIteration:
                chunk = None
            except _TRANSPORT_ERRORS:
                if not parser.finished:
                    raise
                chunk = None  # cut after the finish reason: what is missing is no text
        if scope.cancelled_caught:
            try:
                events = parser.end()  # complete once its finish reason was seen
            except StreamBroken:
                raise timer.timeout(provider, status) from None
        else:
            try:
                events = parser.end() if chunk is None else parser.feed(chunk)
            except ProviderError as exc:
                # what came in the same read before the failure went out all the same: it
                # reaches the caller and is billed as the answer cut short it is
                for event in _text_joined(list(exc.events_before)):
                    if isinstance(event, TextDelta):
                        timer.output_began = True
                    await emit(event)
                raise
        for event in _text_joined(events):
            if isinstance(event, TextDelta):
                timer.output_began = True
            await emit(event)
            if isinstance(event, StreamEnd):
                return
        if finish_by is None and parser.finished:
            finish_by = trio.current_time() + timer.stall_timeout_s / 2
        if scope.cancelled_caught or chunk is None:
            raise BadReply(
                "the stream ended without a final event", provider=provider, status=status
            )


def _text_joined(events: list[StreamEvent]) -> list[StreamEvent]:
    """``events`` with each run of adjacent text deltas as one delta: text that arrived in
    one read travels on as one piece (one message per read, not one per SSE event)."""
    if len(events) < 2:
        return events
    out: list[StreamEvent] = []
    text: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
            continue
        if text:
            out.append(TextDelta(text="".join(text)))
            text.clear()
        out.append(event)
    if text:
        out.append(TextDelta(text="".join(text)))
    return out


def _secrets_of(http: HttpRequest) -> tuple[str, ...]:
    """The credentials ``http`` carries, longest first, to be kept out of any message
    about it: the values of its headers named like a credential (the API key's header,
    and those the provider's ``headers`` add: Azure's ``api-key``, a proxy's token), and
    the token after a ``Bearer`` or ``Basic`` (``catalog.header_credentials``); and those
    of a proxy the environment names (``_proxy_credentials``)."""
    found = header_credentials(http.headers)
    if not proxy_variables():
        return found
    return tuple(sorted({*found, *_proxy_credentials()}, key=len, reverse=True))


def _proxy_credentials() -> tuple[str, ...]:
    """The credentials the environment's proxy URLs carry: the ``Basic`` token httpx sends
    from them (a proxy may echo it in its refusal), and the password when it is long
    enough to find by value without catching ordinary words (8 characters or more)."""
    found: list[str] = []
    for url in urllib.request.getproxies().values():
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.password is None:
            continue
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password)
        found.append(base64.b64encode(f"{user}:{password}".encode()).decode())
        if len(password) >= 8:
            found.append(password)
    return tuple(sorted(set(found), key=len, reverse=True))


def _scrubbed(exc: ProviderError, secrets: tuple[str, ...]) -> None:
    """Remove ``secrets`` from ``exc``'s message, in place. The adapter removed its API
    key already; the provider's credential headers, which an upstream may echo in an
    error body, a ``Location`` or an error event, are removed here (by value only: the
    rest of the message was scrubbed where it was made)."""
    message = exc.message
    for secret in secrets:
        message = message.replace(secret, REDACTED)
    if message != exc.message:
        exc.message = message
        exc.args = (message,)


def _transport_error(
    exc: Exception,
    provider: str,
    status: int | None,
    output_began: bool,
    url: str = "",
    secrets: tuple[str, ...] = (),
) -> ProviderError:
    """Every httpx or httpcore exception, mapped into the error tree (the one place that
    does it); httpcore's classes mirror httpx's and map the same way.

    The message names the provider, never its address: it reaches callers, who may not
    see base URLs (a gateway shows them to admin keys only); the log keeps the address.
    Nor does it carry ``secrets`` (the request's credentials), in any form the exception
    may show them.
    """
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    for secret in secrets:
        detail = detail.replace(secret, REDACTED).replace(repr(secret)[1:-1], REDACTED)
    detail = scrub(detail)
    parts = urllib.parse.urlsplit(url) if url else None
    host = parts.hostname if parts is not None else None
    if parts is not None and host and host in detail:
        _log.info("attempt on %s: %s", provider, detail)
        try:
            port = parts.port
        except ValueError:  # a bad port: the URL is reported as bad anyway
            port = None
        if port is not None:
            detail = detail.replace(f"{host}:{port}", f"{provider}'s host")
        detail = detail.replace(host, f"{provider}'s host")
    kind: type[ProviderError]
    if output_began:
        kind, what = StreamBroken, "connection lost after output began"
    elif isinstance(exc, httpx.ConnectTimeout | httpcore.ConnectTimeout):
        kind, what = TransientError, "could not connect in time"
    elif isinstance(exc, httpx.TimeoutException | httpcore.TimeoutException):
        kind, what = AttemptTimeout, "timed out"
    elif isinstance(
        exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpcore.UnsupportedProtocol
    ):
        kind, what = BadRequest, "bad provider URL"
    elif isinstance(exc, SentTwice):
        kind, what = ResentFailed, "connection failed"
    elif isinstance(exc, (httpx.TransportError, *_CORE_ERRORS)):
        kind, what = TransientError, "connection failed"
    else:
        kind, what = BadReply, "unreadable response"
    return kind(f"{what} ({detail})", provider=provider, status=status)


def _base_url(adapter: Adapter) -> str:
    return str(getattr(adapter, "base_url", ""))


def hide_base_url(text: str, base_url: str) -> str:
    """``text`` with the provider's base URL, its path and its host each put as
    ``<base_url>``: an error reaches callers whose keys may not see the configuration (a
    path may hold an account or a token), and a redirect's location or a server's 404 page
    quotes them. The log has them whole."""
    parts = urllib.parse.urlsplit(base_url)
    root = parts.path.rstrip("/")
    # (and the path above its /v1 or /beta, where DeepSeek's beta endpoints are built)
    roots = [r for r in dict.fromkeys((root, _above_version(root))) if r]
    scheme = r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?"
    if parts.netloc:
        for r in roots:
            text = re.sub(scheme + re.escape(parts.netloc + r), "<base_url>", text)
    for r in roots:
        text = re.sub(re.escape(r) + r"(?=[/\s\"'?#),;:]|$)", "<base_url>", text)
        if len(r) > 8:  # as a server's page may say it too: no leading slash, or encoded
            text = re.sub(r"(?<![\w/-])" + re.escape(r[1:]) + r"(?![\w-])", "<base_url>", text)
            text = text.replace(urllib.parse.quote(r, safe=""), "<base_url>")
    if parts.netloc:
        text = re.sub(scheme + re.escape(parts.netloc), "<base_url>", text)
    return text


def _above_version(root: str) -> str:
    return root.removesuffix("/beta").removesuffix("/v1")


def _unplaced(error: Exception, adapter: Adapter) -> Exception:
    """``error`` with its message's mentions of the provider's base URL hidden
    (``hide_base_url``), logged whole when there were any."""
    if not isinstance(error, ProviderError):
        return error
    hidden = hide_base_url(error.message, _base_url(adapter))
    if hidden != error.message:
        _log.warning("%s answered %s: %s", error.provider, error.status, error.message)
        error.message = hidden
        error.args = (hidden,)
    return error


def _where(
    error: Exception, request: ProviderRequest, http: HttpRequest, adapter: Adapter
) -> Exception:
    """A 404 whose words do not name the model (a server's bare ``Not Found``) with the
    endpoint it answered at: a ``base_url`` without its ``/v1`` looked like a model not
    served. The error names only the endpoint switchman added, as the base URL's own path
    may hold an account or a token and the error reaches callers, whose keys may not see
    it; the operator's log has the whole path."""
    if not isinstance(error, ModelNotFound):
        return error
    path = urllib.parse.urlsplit(http.url).path or "/"
    root = urllib.parse.urlsplit(_base_url(adapter)).path.rstrip("/")
    flavor = getattr(adapter, "flavor", None)
    trailing = request.messages[-1].role if request.messages else None
    if getattr(flavor, "beta_prefix", False) and trailing == "assistant":
        # DeepSeek's prefix completion, a conversation ending with the assistant's turn:
        # a base_url (a proxy's) with no /beta beside it; the model serves all else, and
        # is not held out for it
        _log.warning("%s answered 404 Not Found at %s", error.provider, path)
        return BadRequest(
            f"{error.message} (at DeepSeek's prefix completion, /beta/chat/completions, where "
            "a conversation ending with the assistant's turn goes: a base_url that serves no "
            "/beta cannot be sent one)",
            provider=error.provider,
            status=error.status,
        )
    if request.model_id in error.message:
        return error
    endpoint = path[len(root) :] if root and path.startswith(root) else path
    _log.warning("%s answered 404 Not Found at %s", error.provider, path)
    return ModelNotFound(
        f"{error.message} (at the base_url + {endpoint}: is the provider's base_url its API root?)",
        provider=error.provider,
        status=error.status,
    )
