"""httpcore's connection pool, with the work of handing out a connection kept small.

httpcore's ``AsyncConnectionPool`` looks over all of its connections each time a request
arrives and each time a response closes: for every idle connection it asks the socket
whether the server hung up (a ``poll`` system call), and it counts the pool's connections
once per idle connection (quadratic). With the 64 connections of a provider under load,
that was about a fifth of the router's CPU per call (``benchmarks/HOTSPOTS.md``).

``LeanPool`` keeps httpcore's behaviour and does the same work lazily: the connection it is
about to hand out is checked (expired keep-alive, or the server hung up: closed and the next
one tried), closed connections are dropped each time (a state, no system call), and the
whole pool is swept for expired idle connections at most once a ``SWEEP_S``. Everything
else (connecting, HTTP/1.1; no proxies: a client with one takes httpx's own path) is
httpcore's. ``python -m benchmarks.pool`` measures the two pools side by side.

One thing httpcore does not do, it does: a request sent on a kept-alive connection that the
server closed meanwhile (its idle timeout ran out as the request went) is sent again at once
on a new connection. Without it the attempt failed for nothing, counted against the model's
breaker, and waited out a retry's backoff (about 3 calls in 1,000 against servers with short
idle timeouts). Such a close shows within a round trip of the request (``RESEND_WITHIN_S``)
as the server hanging up or resetting the connection without a byte of answer (the pool's
connections count what they read for the request: ``_Counted``); a failure later, after
some of an answer, or of another kind, is not re-sent. A server that read the request and
fell over at once looks the same; so a re-sent request that fails again on its new
connection raises ``SentTwice``, and the model is not tried again (``ResentFailed``): the
upstream has it at most twice, as a failed attempt and its retry would give it.
"""

from __future__ import annotations

import contextvars
import functools
import ssl
import time
from collections.abc import Iterable
from typing import Any, Final

import httpcore
import httpx

#: how often, at most, every idle connection is checked for an expired keep-alive or a
#: server that hung up (a connection about to be reused is checked each time)
SWEEP_S: Final = 1.0
#: how a kept-alive connection the server closed before answering fails: it hung up
#: ("Server disconnected without sending a response"), reset it, or the write broke
STALE: Final = (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError)
#: a stale connection's failure comes within a round trip of the request; one later is the
#: server's own (it may have worked on the request), and not re-sent
RESEND_WITHIN_S: Final = 1.0


#: the bytes of answer the request the current task is sending has read (``_Counted``)
_read: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "switchman_pool_read", default=None
)


class _Counted(httpcore.AsyncNetworkStream):
    """A connection's socket that counts what it reads for the request in hand (httpcore
    reads an answer in the task that sent its request). (The ``timeout`` parameters are
    httpcore's interface: ASYNC109 does not apply.)"""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        data = await self._stream.read(max_bytes, timeout)
        if data and (count := _read.get()) is not None:
            count[0] += len(data)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        return _Counted(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _CountingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's trio backend, its connections ``_Counted``."""

    def __init__(self) -> None:
        self._backend = httpcore.TrioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Counted(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Counted(await self._backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class SentTwice(httpcore.NetworkError):
    """A request re-sent on a new connection (its kept-alive one had gone stale) failed
    there too: the upstream may have had it twice, so it is not sent a third time."""


class Body(httpx.AsyncByteStream):
    """A request's body of bytes, sent in one piece, as often as it is sent, by httpcore's
    pool or by httpx's client layer (through a proxy). Their own streams for bytes yield
    them from an async generator: a cancellation as the body was being written left that
    suspended for the garbage collector, which trio warns of (16 calls in 400 cancelled
    within 3 ms of their start)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __aiter__(self) -> _Once:
        return _Once(self.data)


class _Once:
    """One pass over a ``Body``: its bytes, then the end."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | None) -> None:
        self.data = data

    def __aiter__(self) -> _Once:
        return self

    async def __anext__(self) -> bytes:
        data, self.data = self.data, None
        if data is None:
            raise StopAsyncIteration
        return data


#: a request whose body is bytes (the adapters' JSON, or httpx's ``json=``): one that can
#: be sent again
_BYTES: Final = (
    Body,
    type(httpcore.Request("GET", "http://x/", content=b"").stream),
    httpx.ByteStream,
)


class LeanPool(httpcore.AsyncConnectionPool):
    """``httpcore.AsyncConnectionPool`` with its per-request bookkeeping linear in its
    connections and one socket check per request (see the module docstring)."""

    _next_sweep: float = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the requests (by ``id``) last given a connection that had served others
        self._on_reused: set[int] = set()
        #: the requests (by ``id``) to be given a new connection: theirs had gone stale
        self._fresh: set[int] = set()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """httpcore's, and a request that failed on a kept-alive connection before any
        answer is sent once more at once, on a new connection (see the module docstring)."""
        key = id(request)
        sent_at = time.monotonic()
        read = [0]
        counting = _read.set(read)
        try:
            return await super().handle_async_request(request)
        except STALE:
            if not (
                key in self._on_reused
                and isinstance(request.stream, _BYTES)
                and not read[0]
                and time.monotonic() - sent_at <= RESEND_WITHIN_S
            ):
                raise
        finally:
            _read.reset(counting)
            self._on_reused.discard(key)
        self._fresh.add(key)
        try:
            return await super().handle_async_request(request)
        except STALE as exc:
            raise SentTwice(f"{exc} (sent again on a new connection: the same)") from exc
        finally:
            self._fresh.discard(key)
            self._on_reused.discard(key)

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        """What httpcore's does (called as a request arrives or leaves): drop closed
        connections, close expired ones (see the module docstring for when), give each
        queued request a connection (one that is free, else a new one while under
        ``max_connections``, else one made in place of an idle connection of another
        origin); the connections to close are returned, closed by the caller outside the
        pool's bookkeeping."""
        closing: list[httpcore.AsyncConnectionInterface] = []
        connections = self._connections
        now = time.monotonic()
        sweep = now >= self._next_sweep
        if sweep:
            self._next_sweep = now + SWEEP_S
        kept = []
        for connection in connections:
            if connection.is_closed():  # (a state, no system call)
                continue
            if sweep and connection.has_expired():
                closing.append(connection)
                continue
            kept.append(connection)
        connections[:] = kept
        if len(connections) > self._max_keepalive_connections:  # (httpcore's rule: the
            # connections past the keep-alive limit are closed while they are idle)
            surplus = len(connections) - self._max_keepalive_connections
            for connection in [c for c in connections if c.is_idle()][:surplus]:
                connections.remove(connection)
                closing.append(connection)
        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            key = id(pool_request.request)
            chosen: httpcore.AsyncConnectionInterface | None = None
            i = len(connections) if key in self._fresh else 0
            while i < len(connections):
                connection = connections[i]
                if connection.can_handle_request(origin) and connection.is_available():
                    if connection.has_expired():  # idle too long, or the server hung up
                        del connections[i]
                        closing.append(connection)
                        continue
                    chosen = connection
                    break
                i += 1
            if chosen is None:
                if len(connections) >= self._max_connections:
                    idle = next((c for c in connections if c.is_idle()), None)
                    if idle is None:
                        continue  # it waits for a connection to come free
                    connections.remove(idle)
                    closing.append(idle)
                chosen = self.create_connection(origin)
                connections.append(chosen)
                self._on_reused.discard(key)
            else:
                self._on_reused.add(key)
            pool_request.assign_to_connection(chosen)
        return closing


@functools.cache
def system_ssl_context() -> ssl.SSLContext:
    """The system's certificates as httpx loads them, loaded once for the process and
    shared by every client (an ``SSLContext`` is safe to share). Each load took about
    19 ms, two a provider: a router of nine providers opened in about 400 ms, each time
    (a test suite, a handler, a notebook opening one again and again)."""
    return httpx.create_ssl_context()


class LeanTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a ``LeanPool``: HTTP/1.1, the system's certificates."""

    def __init__(self, limits: httpx.Limits) -> None:
        context = system_ssl_context()
        super().__init__(verify=context, http1=True, http2=False, limits=limits)
        # (the pool httpx made holds nothing yet: it is dropped unused)
        self._pool = LeanPool(
            network_backend=_CountingBackend(),
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
        )
