"""``LeanPool``: httpcore's connection pool behaviour, over real sockets, with its
bookkeeping done lazily (the connection handed out is the one checked)."""

from __future__ import annotations

import functools
import socket
import struct

import attrs
import h11
import httpx
import pytest
import trio

from switchman.adapters import _pool
from switchman.adapters._pool import LeanPool, LeanTransport


@attrs.define
class Server:
    """An HTTP/1.1 server on loopback that answers ``ok`` and keeps connections open, or
    hangs up on each ``hang_up_after`` seconds after its answer (keep-alive said all the
    same, as a server whose idle timeout is short does)."""

    hang_up_after: float | None = None
    #: on the request after this many on one connection, the server closes it unanswered
    #: (its idle timeout ran out as the request came), or resets it (``reset``)
    drop_after: int | None = None
    reset: bool = False
    #: before dropping: how long it works on the request, and what it sends of an answer
    drop_after_s: float = 0.0
    drop_sending: bytes = b""
    received: int = 0
    dropped: int = 0
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    port: int = 0

    async def serve(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        conn = h11.Connection(h11.SERVER)
        served = 0
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.ConnectionClosed):
                    return
                if isinstance(event, h11.EndOfMessage):
                    self.received += 1
                    if self.drop_after is not None and served >= self.drop_after:
                        self.dropped += 1
                        await trio.sleep(self.drop_after_s)
                        await stream.send_all(self.drop_sending)
                        if self.reset:  # an RST, not a FIN
                            stream.socket.setsockopt(
                                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                            )
                        return
                    served += 1
                    await trio.sleep(0.01)  # (concurrent requests overlap)
                    body = b"ok"
                    headers = [("content-length", str(len(body)))]
                    await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
                    await stream.send_all(
                        conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
                    )
                    if self.hang_up_after is not None:
                        await trio.sleep(self.hang_up_after)
                        return
                    conn.start_next_cycle()
        finally:
            self.open_now -= 1
            await stream.aclose()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


async def serving(nursery: trio.Nursery, server: Server) -> Server:
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1")
    )
    server.port = listeners[0].socket.getsockname()[1]
    return server


def client(size: int, keepalive_expiry: float = 5.0) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=size, max_keepalive_connections=size, keepalive_expiry=keepalive_expiry
    )
    return httpx.AsyncClient(transport=LeanTransport(limits))


def pool_of(c: httpx.AsyncClient) -> LeanPool:
    pool = c._transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool, LeanPool)
    return pool


async def test_one_connection_serves_requests_one_after_another(nursery: trio.Nursery) -> None:
    server = await serving(nursery, Server())
    async with client(4) as c:
        for _ in range(5):
            assert (await c.get(server.url)).text == "ok"
        assert len(pool_of(c).connections) == 1
    assert server.connections == 1


async def test_at_most_max_connections_and_every_request_is_answered(
    nursery: trio.Nursery,
) -> None:
    server = await serving(nursery, Server())
    answers: list[str] = []
    async with client(3) as c:

        async def one() -> None:
            answers.append((await c.get(server.url)).text)

        with trio.fail_after(10):
            async with trio.open_nursery() as inner:
                for _ in range(20):
                    inner.start_soon(one)
        assert len(pool_of(c).connections) <= 3
    assert answers == ["ok"] * 20
    assert server.most_open <= 3 and server.connections == 3


async def test_a_connection_the_server_hung_up_is_not_reused(nursery: trio.Nursery) -> None:
    """The server closes each connection soon after answering: the next request gets a
    new connection, not a dead one (which would fail: 'Server disconnected')."""
    server = await serving(nursery, Server(hang_up_after=0.01))
    async with client(4) as c:
        for _ in range(4):
            assert (await c.get(server.url)).text == "ok"
            await trio.sleep(0.1)  # it hangs up meanwhile; the pool has not looked yet
        assert len(pool_of(c).connections) == 1
    assert server.connections == 4


async def test_a_full_pool_replaces_a_dead_idle_connection(nursery: trio.Nursery) -> None:
    """At ``max_connections`` with the only connection dead, a request still gets one."""
    server = await serving(nursery, Server(hang_up_after=0.01))
    async with client(1) as c:
        for _ in range(3):
            with trio.fail_after(5):
                assert (await c.get(server.url)).text == "ok"
            await trio.sleep(0.1)
    assert server.connections == 3


async def test_idle_connections_past_their_keep_alive_are_closed_by_the_sweep(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expired connection the requests never reach (another is free before it) is
    closed all the same, by the sweep."""
    monkeypatch.setattr(_pool, "SWEEP_S", 0.05)
    server = await serving(nursery, Server())
    async with client(4, keepalive_expiry=0.5) as c:
        async with trio.open_nursery() as inner:  # two connections, both idle after
            for _ in range(2):
                inner.start_soon(c.get, server.url)
        assert len(pool_of(c).connections) == 2
        await trio.sleep(0.3)
        assert (await c.get(server.url)).text == "ok"  # the first: its keep-alive anew
        await trio.sleep(0.3)  # the second is past its keep-alive, the first is not
        assert (await c.get(server.url)).text == "ok"
        assert len(pool_of(c).connections) == 1
        await trio.sleep(0.2)
        assert server.open_now == 1 and server.connections == 2


@pytest.mark.parametrize("reset", [False, True])
async def test_a_request_on_a_connection_the_server_closed_meanwhile_goes_again_on_a_new_one(
    nursery: trio.Nursery, reset: bool
) -> None:
    """The server closes (or resets) a kept-alive connection as the next request arrives,
    before any answer: the request is sent once more at once, on a new connection, and
    answered; it fails only when a new connection fails too."""
    server = await serving(nursery, Server(drop_after=1, reset=reset))
    async with client(4) as c:
        with trio.fail_after(5):
            for _ in range(4):
                r = await c.post(server.url, json={"n": 1})
                assert r.text == "ok"
    assert server.dropped == 3 and server.connections == 4
    # a new connection the server drops is a failure, as ever (never a loop)
    server = await serving(nursery, Server(drop_after=0, reset=reset))
    async with client(4) as c:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await c.post(server.url, json={"n": 1})
    assert server.dropped == 1 and server.connections == 1


@pytest.mark.parametrize(
    ("after_s", "sending", "reset"),
    [
        (0.3, b"", True),  # it worked on the request first: its own failure
        (0.0, b"HTTP/1.1 200 OK\r\n", False),  # it began an answer, then hung up
    ],
)
async def test_a_server_that_read_the_request_does_not_get_it_again(
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
    after_s: float,
    sending: bytes,
    reset: bool,
) -> None:
    monkeypatch.setattr(_pool, "RESEND_WITHIN_S", 0.2)
    server = Server(drop_after=1, reset=reset, drop_after_s=after_s, drop_sending=sending)
    await serving(nursery, server)
    async with client(4) as c:
        assert (await c.post(server.url, json={"n": 1})).text == "ok"
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await c.post(server.url, json={"n": 2})
    assert server.received == 2 and server.connections == 1
