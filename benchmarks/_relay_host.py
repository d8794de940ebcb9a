"""``python -m benchmarks._relay_host --upstream URL``: the bare relay baseline.

The thinnest gateway on switchman's own stack (hypercorn's trio worker serving
an ASGI app, httpx to the upstream), measured beside switchman's gateway so a
reader can tell the cost of the extra HTTP hop itself from switchman's own work.

``POST /v1/chat/completions``: the request body is read whole and sent
unchanged to ``{upstream}/v1/chat/completions`` through one pooled
``httpx.AsyncClient`` (made once at start; the client's ``authorization``
header goes along if it sent one). The upstream's status, content type,
framing headers and body bytes come back as they arrive, chunk by chunk. No
parsing, no validation, no store. Anything else is a 404; an upstream that
cannot be reached is a 502; an upstream failing mid-answer aborts the
connection (hypercorn closes it), as a proxy can only do once headers are out.

It serves on a free loopback port, printed as ``relay on http://127.0.0.1:PORT``
once it listens; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any, Final

import httpx
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


class Relay:
    """The relay's ASGI app: one path, forwarded as bytes through ``client``."""

    def __init__(self, client: httpx.AsyncClient, upstream: str) -> None:
        self._client = client
        self._url = upstream.rstrip("/") + PATH

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
        the upstream response is closed by ``client.stream``'s exit."""
        body = await _read_body(receive)
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        for name, value in scope["headers"]:
            if name == b"authorization":
                headers["authorization"] = value.decode("latin-1")
        request = self._client.build_request("POST", self._url, content=body, headers=headers)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError:
            await _plain(send, 502, b"upstream unreachable")
            return
        try:
            passed = [
                (name.lower(), value)
                for name, value in response.headers.raw
                if name.lower() in _PASSED_BACK
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": passed}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


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
    and gives open requests a second; then the pooled client closes. Cancelled,
    the server and every request in flight are cancelled and the client closed.
    """
    config = HypercornConfig()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = 1.0
    config.accesslog = None
    config.errorlog = logging.getLogger("benchmarks.relay")
    config.include_server_header = False
    limits = httpx.Limits(max_connections=_POOL, max_keepalive_connections=_POOL)
    timeout = httpx.Timeout(60.0, pool=None)
    async with (
        httpx.AsyncClient(http1=True, http2=False, limits=limits, timeout=timeout) as client,
        trio.open_nursery() as nursery,
    ):
        app: Any = Relay(client, upstream)  # hypercorn's ASGI types are narrower than ours
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
