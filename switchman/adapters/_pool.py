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
server closed meanwhile (its idle timeout ran out as the request went: the server hung up,
or reset the connection, before any answer) is sent again at once on a new connection. It
was never read (a server does not close a connection it is answering on), so this is no
retry: without it the attempt failed for nothing, counted against the model's breaker, and
waited out a retry's backoff (about 3 calls in 1,000 against servers with short idle
timeouts). A new connection that fails is a failure as ever.
"""

from __future__ import annotations

import time
from typing import Any, Final

import httpcore
import httpx

#: how often, at most, every idle connection is checked for an expired keep-alive or a
#: server that hung up (a connection about to be reused is checked each time)
SWEEP_S: Final = 1.0
#: how a kept-alive connection the server closed before answering fails: it hung up
#: ("Server disconnected without sending a response"), reset it, or the write broke
STALE: Final = (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError)
#: a request whose body is bytes (the adapters' JSON, or httpx's ``json=``): one that can
#: be sent again
_BYTES: Final = (type(httpcore.Request("GET", "http://x/", content=b"").stream), httpx.ByteStream)


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
        try:
            return await super().handle_async_request(request)
        except STALE:
            if key not in self._on_reused or not isinstance(request.stream, _BYTES):
                raise
        finally:
            self._on_reused.discard(key)
        self._fresh.add(key)
        try:
            return await super().handle_async_request(request)
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


class LeanTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a ``LeanPool``: HTTP/1.1, the system's certificates."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(http1=True, http2=False, limits=limits)
        # (the pool httpx made holds nothing yet: it is dropped unused)
        self._pool = LeanPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
        )
