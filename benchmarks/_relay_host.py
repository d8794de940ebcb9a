"""``python -m benchmarks._relay_host --upstream URL``: the bare relay baseline.

The thinnest gateway on switchman's own stack, measured beside switchman's
gateway so a reader can tell the cost of the extra HTTP hop itself from
switchman's own work: hypercorn's trio worker serving an ASGI app (as
switchman's gateway is served), and an ``httpcore.AsyncConnectionPool`` to the
upstream, the same client path switchman's attempts take (``switchman.adapters
._http`` sends straight through httpcore's pool, skipping httpx's client layer).

``POST /v1/chat/completions``: the request body is read whole and sent
unchanged to ``{upstream}/v1/chat/completions`` through the pool (made once at
start; the client's ``authorization`` header goes along if it sent one). The
upstream's status, content type, framing headers and body bytes come back as
they arrive, chunk by chunk. No parsing, no validation, no store. Anything else
is a 404; an upstream that cannot be reached is a 502; an upstream failing
mid-answer aborts the connection (hypercorn closes it), as a proxy can only do
once headers are out.

It serves on a free loopback port, printed as ``relay on http://127.0.0.1:PORT``
once it listens; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any, Final, cast

import httpcore
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PATH: Final = "/v1/chat/completions"
#: the upstream's response headers passed back (framing and type, nothing else)
_PASSED_BACK: Final = (b"content-type", b"content-length", b"content-encoding")
#: pooled connections to the upstream, as many as switchman's benchmark config allows
_POOL: Final = 1024
#: what httpcore raises when the upstream cannot be reached or answers garbage
_UPSTREAM_ERRORS: Final = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)
_TIMEOUTS: Final = {"connect": 60.0, "read": 60.0, "write": 60.0, "pool": None}


class Relay:
    """The relay's ASGI app: one path, forwarded as bytes through ``pool``."""

    def __init__(self, pool: httpcore.AsyncConnectionPool, upstream: str) -> None:
        self._pool = pool
        self._url = httpcore.URL(upstream.rstrip("/") + PATH)
        self._host = self._url.host + (b":%d" % self._url.port if self._url.port else b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            if scope["method"] == "POST" and scope["path"] == PATH:
                await self._relay(scope, receive, send)
            else:
                await _plain(send, 404, b"not found")

    async def _relay(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward one request. Cancelled midway (the client went away, or shutdown),
        the upstream response is closed here and its connection dropped."""
        body = await _read_body(receive)
        headers = [
            (b"host", self._host),
            (b"content-type", b"application/json"),
            (b"accept-encoding", b"identity"),
            (b"content-length", b"%d" % len(body)),
        ]
        headers += [(name, value) for name, value in scope["headers"] if name == b"authorization"]
        request = httpcore.Request(
            "POST", self._url, headers=headers, content=body, extensions={"timeout": _TIMEOUTS}
        )
        try:
            response = await self._pool.handle_async_request(request)
        except _UPSTREAM_ERRORS:
            await _plain(send, 502, b"upstream unreachable")
            return
        chunks = cast(AsyncGenerator[bytes, None], response.aiter_stream())
        try:
            passed = [
                (name.lower(), value)
                for name, value in response.headers
                if name.lower() in _PASSED_BACK
            ]
            await send(
                {"type": "http.response.start", "status": response.status, "headers": passed}
            )
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await _finish(chunks)
            await response.aclose()


async def _finish(chunks: AsyncGenerator[bytes, None]) -> None:
    """End a body iterator (and httpcore's under it) here rather than in the garbage
    collector: resumed under a cancelled scope, the next read raises through every layer."""
    with (
        trio.CancelScope(deadline=-math.inf),
        contextlib.suppress(StopAsyncIteration, *_UPSTREAM_ERRORS),
    ):
        await chunks.__anext__()
    await chunks.aclose()


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: nothing more is coming
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _plain(send: Send, status: int, text: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text, "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _address(bind: str) -> tuple[str, int]:
    """``http://127.0.0.1:8265`` → ``("127.0.0.1", 8265)``."""
    host, _, port = bind.split("://", 1)[-1].rpartition(":")
    return host.strip("[]"), int(port)


async def serve_relay(
    upstream: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the relay to ``upstream`` on ``host:port`` until ``shutdown_trigger`` returns.

    ``task_status.started((host, port))`` reports the bound address once it
    listens (port 0 gives the real port). On shutdown hypercorn stops accepting
    and gives open requests a second; then the pool closes. Cancelled, the server
    and every request in flight are cancelled and the pool closed.
    """
    config = HypercornConfig()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = 1.0
    config.accesslog = None
    config.errorlog = logging.getLogger("benchmarks.relay")
    config.include_server_header = False
    async with (
        httpcore.AsyncConnectionPool(
            max_connections=_POOL, max_keepalive_connections=_POOL, http1=True, http2=False
        ) as pool,
        trio.open_nursery() as nursery,
    ):
        app: Any = Relay(pool, upstream)  # hypercorn's ASGI types are narrower than ours
        trigger = shutdown_trigger or trio.sleep_forever
        binds: list[str] = await nursery.start(
            partial(serve, app, config, shutdown_trigger=trigger)
        )
        task_status.started(_address(binds[0]))


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def _main(upstream: str) -> None:
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(
            partial(serve_relay, upstream, shutdown_trigger=_wait_for_signal)
        )
        print(f"relay on http://{host}:{port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._relay_host")
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9000")
    args = parser.parse_args(argv)
    trio.run(_main, args.upstream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
