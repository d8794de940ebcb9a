"""Sockets that close as the gateway closes them: a page's socket refused (its first
message not ``auth``) that closes the moment its refusal arrives. hypercorn sends the end
of its stream outside its send lock, so the close it answers the client with could meet
it (``trio.BusyResourceError``) and take the whole server down; the gateway lives on. A
real daemon (``serve`` with a key) in its own process, so the two sides truly overlap; a
raw websocket client (wsproto)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

from tests.test_cli import serving

KEYED = """
[[keys]]
key_env = "RACE_KEY"
handle = "team-a"
"""


async def _refused_and_closing(port: int, delay: float) -> None:
    ws = WSConnection(ConnectionType.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        upgrade = Request(
            host=f"127.0.0.1:{port}",
            target="/ws",
            extra_headers=[(b"origin", b"http://localhost:5173")],
        )
        await stream.send_all(ws.send(upgrade))
        accepted = False
        while not accepted:  # the 101
            data = await stream.receive_some(65536)
            assert data, "the gateway closed the connection instead of upgrading it"
            ws.receive_data(data)
            accepted = any(isinstance(e, AcceptConnection) for e in ws.events())
        await stream.send_all(ws.send(Message(data=json.dumps({"type": "subscribe"}))))
        closing = False
        with trio.move_on_after(2):
            while data := await stream.receive_some(65536):
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, TextMessage) and not closing:
                        closing = True  # the refusal: close at once, as the server does
                        await trio.sleep(delay)
                        await stream.send_all(ws.send(CloseConnection(code=1000)))
                    else:
                        assert isinstance(event, TextMessage | CloseConnection), event


def test_sockets_closing_as_they_are_refused_do_not_stop_the_gateway(tmp_path: Path) -> None:
    config = tmp_path / "switchman.toml"
    config.write_text(KEYED)
    env = {"RACE_KEY": "race-key-0123456789abcdef"}
    with serving(tmp_path, tmp_path / "jobs.db", "--config", str(config), env=env) as daemon:

        async def sockets() -> None:
            with trio.fail_after(60):
                for i in range(600):
                    try:
                        await _refused_and_closing(daemon.port, (i % 12) * 0.00005)
                    except (OSError, trio.BrokenResourceError):
                        # a socket reset as it closed, or the gateway gone: asked below
                        if daemon.proc.poll() is not None:
                            break

        trio.run(sockets)
        r = httpx.get(f"http://127.0.0.1:{daemon.port}/health", timeout=5)
        assert r.status_code == 200
        assert daemon.proc.poll() is None
