"""The gateway's client connections are bounded, over real sockets: a connection past
the process's limit is answered 503 and closed at once (20,000 idle connections used up
the daemon's file descriptors: new clients timed out and the providers' own connections
could not be opened), and a client that reads none of a write for ``WRITE_STALL_S`` is
dropped (hypercorn shields its writes with no time limit: a client sending requests and
never reading the answers held its connection for ever)."""

from __future__ import annotations

import logging

import pytest
import trio

from switchman.gateway import _hypercorn
from switchman.gateway._hypercorn import GuardedTCPServer, connection_limit
from tests.gateway._fakes import FakeRouter, make_config, running_gateway


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()


async def _read_to_end(stream: trio.SocketStream) -> bytes:
    """What the server sent until it closed (or reset) the connection."""
    got = bytearray()
    while True:
        try:
            data = await stream.receive_some(1 << 16)
        except trio.BrokenResourceError:  # a reset: requests it did not read were pending
            return bytes(got)
        if not data:
            return bytes(got)
        got += data


def test_the_limit_leaves_room_for_the_providers_connections() -> None:
    limit = connection_limit()
    assert limit >= 64
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        assert soft - limit >= min(256, soft // 4)


async def test_a_connection_past_the_limit_is_answered_503_and_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            idle = [await trio.open_tcp_stream(gw.host, gw.port) for _ in range(2)]
            await trio.sleep(0.2)  # (accepted: counted as open)
            monkeypatch.setattr(GuardedTCPServer, "limit", GuardedTCPServer.open_now)
            past = await trio.open_tcp_stream(gw.host, gw.port)
            await past.send_all(_get("/health"))
            answer = await _read_to_end(past)
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert b"retry-after: 1" in answer and b"too many connections" in answer
            await past.aclose()
            await idle[0].aclose()  # one goes: a new client is served again
            with trio.fail_after(5):
                while True:
                    again = await trio.open_tcp_stream(gw.host, gw.port)
                    await again.send_all(_get("/health"))
                    head = await again.receive_some(1 << 16)
                    await again.aclose()
                    if head.startswith(b"HTTP/1.1 200 "):
                        break
                    await trio.sleep(0.05)  # (until the server has seen the close)
            await idle[1].aclose()


async def test_a_client_that_reads_nothing_of_its_answers_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_hypercorn, "WRITE_STALL_S", 0.5)
    router = FakeRouter(make_config())
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            size = len((await gw.client.get("/openapi.json")).content)
            stream = await trio.open_tcp_stream(gw.host, gw.port)
            # far more answers than the socket buffers between the two hold
            await stream.send_all(_get("/openapi.json") * (40_000_000 // size + 1))
            await trio.sleep(2.0)  # reading nothing
            with trio.fail_after(10):  # (before: open until the client went)
                await _read_to_end(stream)
            await stream.aclose()
            assert (await gw.client.get("/health")).status_code == 200


@pytest.mark.parametrize("together", [False, True], ids=["after the answer", "with the upgrade"])
@pytest.mark.parametrize("refusal", ["wrong key", "too many waiting", "foreign page"])
async def test_bytes_after_a_refused_websocket_upgrade_end_that_connection_not_the_gateway(
    refusal: str, together: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """hypercorn answers bytes that follow a refused upgrade with a second response, which
    h11 refuses with an exception hypercorn does not catch: any client, without a key,
    could stop the whole gateway (every job in flight lost) with one request and a byte."""
    from switchman.gateway import _ws_open
    from tests.gateway._fakes import KEYS

    monkeypatch.setattr(_ws_open, "AWAITING_AUTH", 0)
    router = FakeRouter(make_config(keys=KEYS))
    header = {
        "wrong key": "authorization: Bearer wrong-key\r\n",
        "too many waiting": "origin: http://localhost:5173\r\n",
        "foreign page": "origin: http://evil.example\r\n",
    }[refusal]
    upgrade = (
        "GET /ws HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
        f"{header}\r\n"
    ).encode()
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            for _ in range(3):
                stream = await trio.open_tcp_stream(gw.host, gw.port)
                if together:  # in one packet: hypercorn answers the bytes first
                    await stream.send_all(upgrade + b"hello")
                    await _read_to_end(stream)
                else:
                    await stream.send_all(upgrade)
                    answer = await stream.receive_some(1 << 16)
                    assert answer.startswith((b"HTTP/1.1 401 ", b"HTTP/1.1 429 ", b"HTTP/1.1 403 "))
                    await stream.send_all(b"hello")  # anything at all
                    await _read_to_end(stream)
                await stream.aclose()
            health = await gw.client.get("/health", headers={"authorization": "Bearer secret-a"})
            assert health.status_code == 200
    # and the log holds no traceback for each such client
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_slow_but_steady_reader_is_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client reading steadily, if slowly, keeps its connection, though its socket turns
    writable again only once much of its buffer drained (each 64 KiB of a write given
    ``WRITE_STALL_S`` dropped a reader below 2.2 KB/s mid-answer); one that stops is
    dropped. The system's count of what the client has not yet read tells them apart."""
    import socket

    monkeypatch.setattr(_hypercorn, "WRITE_STALL_S", 1.0)
    router = FakeRouter(make_config())
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            size = len((await gw.client.get("/openapi.json")).content)
            sock = trio.socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # (small windows)
            await sock.connect((gw.host, gw.port))
            stream = trio.SocketStream(sock)
            await stream.send_all(_get("/openapi.json") * (8_000_000 // size + 1))
            await trio.sleep(0.3)  # the buffers between fill up
            for _ in range(15):  # 3 s at 40 KB/s, never 0.5 s without reading
                assert await stream.receive_some(8192), "dropped while reading steadily"
                await trio.sleep(0.2)
            await trio.sleep(3.0)  # then reading nothing
            with trio.fail_after(10):
                await _read_to_end(stream)
            await stream.aclose()


async def test_any_failure_of_one_connection_ends_that_connection_not_the_gateway(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever escapes hypercorn's handling of one connection (a bug of its or of a
    library under it) is logged and closes that connection; it ended the server."""
    failing = True
    read = GuardedTCPServer._read_data

    async def read_or_fail(self: GuardedTCPServer) -> None:
        nonlocal failing
        if failing:
            failing = False
            raise RuntimeError("a bug in reading one connection")
        await read(self)

    monkeypatch.setattr(GuardedTCPServer, "_read_data", read_or_fail)
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            broken = await trio.open_tcp_stream(gw.host, gw.port)
            await _read_to_end(broken)  # closed by the server
            await broken.aclose()
            assert (await gw.client.get("/health")).status_code == 200
    [logged] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged.getMessage() == "a connection failed; it is closed"
