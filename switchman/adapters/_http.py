"""The one async step: send an adapter's request on a pooled client, stream events back.

Everything provider-specific is in the adapter (pure); this module owns the
I/O, the time limits and the mapping of httpx exceptions into the error tree,
in one place (``_transport_error``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Final, cast

import httpx
import trio

from switchman._errors import (
    AttemptTimeout,
    BadReply,
    BadRequest,
    ProviderError,
    StreamBroken,
    TransientError,
)
from switchman.adapters._base import (
    Adapter,
    ProviderRequest,
    ResponseStarted,
    StreamEnd,
    StreamEvent,
    StreamParser,
    TextDelta,
)
from switchman.adapters._sse import scrub
from switchman.catalog._spec import ProviderSpec

#: an error body is read up to this many bytes (the message is all we need)
MAX_ERROR_BODY: Final = 64 * 1024

Emit = Callable[[StreamEvent], Awaitable[None]]


def make_client(provider: ProviderSpec) -> httpx.AsyncClient:
    """A pooled HTTP/1.1 client for one provider; its owner (the provider actor) closes it.

    Connect timeout from ``provider.connect_timeout_s``; reads are bounded by
    ``provider.read_timeout_s`` as a backstop (``send_attempt``'s TTFT and stall
    limits are the real ones); at most ``max_concurrency`` connections.
    """
    size = max(provider.max_concurrency, 1)
    return httpx.AsyncClient(
        http1=True,
        http2=False,
        timeout=httpx.Timeout(
            provider.read_timeout_s, connect=provider.connect_timeout_s, pool=None
        ),
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        follow_redirects=False,
    )


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
    else ``AttemptTimeout``. A stream that stalls after its finish reason is
    finalised as complete. Connection failures before any text ->
    ``TransientError``; after text -> ``StreamBroken``.

    Cancellation: if the caller's scope is cancelled midway the response is
    closed (its connection is dropped, not returned to the pool) and
    ``trio.Cancelled`` propagates. The client stays open; its owner closes it.
    """
    http = adapter.build_request(request)
    timer = _Timer(ttft_timeout_s, stall_timeout_s)
    provider = adapter.provider
    status: int | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            with trio.move_on_at(timer.ttft_deadline) as connecting:
                response = await stack.enter_async_context(
                    client.stream(http.method, http.url, headers=dict(http.headers), json=http.json)
                )
            if connecting.cancelled_caught:
                raise timer.timeout(provider, None)
            status = response.status_code
            await emit(ResponseStarted(status=status, headers=dict(response.headers.items())))
            chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
            stack.push_async_callback(_abandon, chunks)
            if not 200 <= status < 300:
                body = await _read_body(chunks, timer, limit=MAX_ERROR_BODY)
                raise adapter.parse_error(status, dict(response.headers.items()), body or b"")
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
                    )
                )
    except httpx.HTTPError as exc:
        raise _transport_error(exc, provider, status, timer.output_began) from exc


async def _abandon(chunks: AsyncGenerator[bytes, None]) -> None:
    """Finish a body iterator that was not read to the end, and every layer under it.

    httpx's body iterators are async generators stacked on one another; closing
    the top one would leave those below suspended for the garbage collector
    (which trio warns about). Resuming it under an already cancelled scope makes
    the next read raise ``Cancelled`` up through every layer, so each one ends
    here and now; the response itself is closed right after, by its context.
    """
    with trio.CancelScope() as scope:
        scope.cancel()
        for _ in range(64):  # data already buffered is read without a checkpoint
            try:
                await chunks.__anext__()
            except (StopAsyncIteration, httpx.HTTPError):  # the body is discarded anyway
                break
    await chunks.aclose()


async def _read_body(
    chunks: AsyncGenerator[bytes, None], timer: _Timer, *, limit: int | None
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
    chunks: AsyncGenerator[bytes, None],
    parser: StreamParser,
    timer: _Timer,
    emit: Emit,
    provider: str,
    status: int,
) -> None:
    """Feed the parser until it yields ``StreamEnd`` (emitted once) or the body ends."""
    while True:
        with trio.move_on_at(timer.next_deadline()) as scope:
            try:
                chunk: bytes | None = await chunks.__anext__()
            except StopAsyncIteration:
                chunk = None
        if scope.cancelled_caught:
            try:
                events = parser.end()  # complete once its finish reason was seen
            except StreamBroken:
                raise timer.timeout(provider, status) from None
        elif chunk is None:
            events = parser.end()
        else:
            events = parser.feed(chunk)
        for event in events:
            if isinstance(event, TextDelta):
                timer.output_began = True
            await emit(event)
            if isinstance(event, StreamEnd):
                return
        if scope.cancelled_caught or chunk is None:
            raise BadReply(
                "the stream ended without a final event", provider=provider, status=status
            )


def _transport_error(
    exc: httpx.HTTPError, provider: str, status: int | None, output_began: bool
) -> ProviderError:
    """Every httpx exception, mapped into the error tree (the one place that does it)."""
    detail = scrub(f"{type(exc).__name__}: {exc}".rstrip(": "))
    kind: type[ProviderError]
    if output_began:
        kind, what = StreamBroken, "connection lost after output began"
    elif isinstance(exc, httpx.ConnectTimeout):
        kind, what = TransientError, "could not connect in time"
    elif isinstance(exc, httpx.TimeoutException):
        kind, what = AttemptTimeout, "timed out"
    elif isinstance(exc, httpx.UnsupportedProtocol):
        kind, what = BadRequest, "bad provider URL"
    elif isinstance(exc, httpx.TransportError):
        kind, what = TransientError, "connection failed"
    else:
        kind, what = BadReply, "unreadable response"
    return kind(f"{what} ({detail})", provider=provider, status=status)
