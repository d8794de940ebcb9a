"""How a socket and a request present their key: the ``auth`` message a browser sends
(it cannot set headers on a websocket; its upgrade carries ``Origin``), and more than one
key refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from switchman.gateway import _ws_open
from tests.gateway._fakes import KEYS, FakeRouter, make_config, running_gateway
from tests.gateway.test_ws import _recv, _send

#: what a browser's upgrade carries that a program's does not
PAGE = [("origin", "http://localhost:5173")]
UPGRADE = {
    "connection": "Upgrade",
    "upgrade": "websocket",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
}


async def _refused(ws: WebSocketConnection) -> str:
    """The ``unauthorized`` error a socket gets before its close with 1008; its message."""
    error = await _recv(ws)
    assert error["type"] == "error"
    assert error["error"]["code"] == "unauthorized"
    with pytest.raises(ConnectionClosed) as closed:
        await ws.get_message()
    assert closed.value.reason.code == 1008
    # trio-websocket leaves the TCP stream open after a close the server started
    await ws._stream.aclose()
    message = error["error"]["message"]
    assert isinstance(message, str)
    return message


async def test_a_socket_opened_without_a_key_authenticates_with_its_first_message() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=PAGE) as ws,
        ):
            await _send(ws, {"type": "auth", "key": " secret-a "})
            assert await _recv(ws) == {"type": "authenticated", "handle": "team-a"}
            await _send(ws, {"type": "call", "call": {"prompt": "hi", "model": "fast"}})
            submitted = await _recv(ws)
            assert submitted["type"] == "submitted"
            while (message := await _recv(ws))["type"] != "result":
                pass
            assert message["status"] == "complete"
            # the job is team-a's, as one submitted with the key in a header
            job = f"/result/{submitted['job_id']}"
            mine = await gw.client.get(job, headers={"x-api-key": "secret-a"})
            assert mine.status_code == 200
            assert mine.json()["result"]["answer"] == "echo hi"
            theirs = await gw.client.get(job, headers={"x-api-key": "secret-b"})
            assert theirs.status_code == 404
            # the key's limits hold: a model outside team-a's list is refused
            await _send(ws, {"type": "call", "call": {"prompt": "x", "model": "gpt-x"}})
            refused = await _recv(ws)
            assert refused["type"] == "error"
            assert refused["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("first", "says"),
    [
        ({"type": "subscribe"}, "the first message must authenticate"),
        ({"type": "auth", "key": "wrong"}, "a valid gateway key is required"),
        ({"type": "auth"}, "no key in the auth message"),
        ({"type": "auth", "key": "secret-a", "as": "ops"}, "unknown field(s) as"),
        ("not json {", "the first message must authenticate"),
    ],
)
async def test_a_socket_without_a_key_that_does_not_authenticate_first_is_closed(
    first: Any, says: str
) -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=PAGE) as ws,
        ):
            await ws.send_message(first if isinstance(first, str) else json.dumps(first))
            message = await _refused(ws)
            assert says in message
            assert "secret" not in message  # (a key sent is never echoed)
            assert '{"type": "auth", "key": "<key>"}' in message
            assert router.subscribers == 1  # only the metrics feed: nothing subscribed


async def test_a_socket_that_sends_nothing_is_closed_when_its_time_to_authenticate_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_ws_open, "AUTH_WAIT_S", 0.3)
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=PAGE) as ws,
        ):
            t0 = trio.current_time()
            assert "no auth message within 0.3 s" in await _refused(ws)
            assert trio.current_time() - t0 >= 0.3


async def test_a_program_without_a_key_still_gets_its_401_before_the_socket_opens() -> None:
    """A program can set headers, and its client reports a 401 as such (the CLI says the
    daemon needs a key): only a page's socket is opened to ask for the key."""
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            async with httpx.AsyncClient(base_url=gw.base_url) as client:  # not reusable
                r = await client.get("/ws", headers=UPGRADE)
            assert r.status_code == 401
            async with httpx.AsyncClient(base_url=gw.base_url) as client:
                r = await client.get("/ws", headers=UPGRADE | dict(PAGE))
            assert r.status_code == 101


async def test_an_auth_message_on_a_socket_that_has_its_key() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    headers = [("authorization", "Bearer secret-a")]
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=headers) as ws,
        ):
            # the same key again: confirmed (a client that always sends one)
            await _send(ws, {"type": "auth", "key": "secret-a"})
            assert await _recv(ws) == {"type": "authenticated", "handle": "team-a"}
            # another valid key: one socket serves one key
            await _send(ws, {"type": "auth", "key": "secret-ops"})
            other = await _recv(ws)
            assert other["error"]["code"] == "bad_request"
            assert "already has another key" in other["error"]["message"]
            await _send(ws, {"type": "auth", "key": "nope"})
            assert (await _recv(ws))["error"]["code"] == "unauthorized"
            await _send(ws, {"type": "auth", "key": 7})
            assert (await _recv(ws))["error"]["details"] == [
                {"field": "key", "message": "must be a non-empty string"}
            ]
            # the socket stays open, with its own key
            await _send(ws, {"type": "subscribe"})
            assert await _recv(ws) == {"type": "subscribed", "job_id": None}


async def test_an_open_gateway_confirms_any_auth_message() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw, open_websocket_url(gw.ws_url) as ws:
            await _send(ws, {"type": "auth", "key": "anything"})
            assert await _recv(ws) == {"type": "authenticated", "handle": None}


async def test_two_different_keys_in_a_request_are_refused() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for headers in (
                [("authorization", "Bearer secret-a"), ("authorization", "Bearer secret-ops")],
                [("authorization", "Bearer secret-a"), ("x-api-key", "secret-ops")],
                [("x-api-key", "secret-b"), ("x-api-key", "secret-a")],
            ):
                r = await gw.client.get("/jobs", headers=headers)
                assert r.status_code == 400, headers
                assert r.json()["error"]["code"] == "bad_request"
                assert "more than one key" in r.json()["error"]["message"]
                assert "secret" not in r.text
                async with httpx.AsyncClient(base_url=gw.base_url) as client:  # not reusable
                    upgrade = await client.get("/ws", headers=list(UPGRADE.items()) + headers)
                assert upgrade.status_code == 400
                assert "more than one key" in upgrade.json()["error"]["message"]
            # the same key twice names one key
            same = [("authorization", "Bearer secret-a"), ("x-api-key", "secret-a")]
            assert (await gw.client.get("/jobs", headers=same)).status_code == 200


async def test_a_page_socket_still_waiting_for_its_key_does_not_hold_up_a_stop() -> None:
    """It is owed nothing: closed at once (1001) when the gateway starts stopping, not when
    its 10 s run out."""
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=PAGE) as ws,
        ):
            await trio.sleep(0.1)  # (the socket is open, waiting for its key)
            t0 = trio.current_time()
            gw.shutdown.set()
            error = await _recv(ws)
            assert error["error"] == {
                "code": "shutting_down",
                "message": "the gateway is shutting down",
            }
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1001
            assert trio.current_time() - t0 < 2.0
            await ws._stream.aclose()


async def test_a_team_holds_a_bounded_number_of_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each socket costs a subscription and its buffers: one key cannot take the gateway's
    memory from the others (thousands of sockets of one key doubled the daemon's RSS)."""
    monkeypatch.setattr(_ws_open, "SOCKETS_PER_KEY", 2)
    router = FakeRouter(make_config(keys=KEYS))
    team_a = [("authorization", "Bearer secret-a")]
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=team_a),
            open_websocket_url(gw.ws_url, extra_headers=team_a) as second,
        ):
            async with httpx.AsyncClient(base_url=gw.base_url) as client:  # not reusable
                third = await client.get("/ws", headers=UPGRADE | dict(team_a))
            assert third.status_code == 429
            assert third.json()["error"]["code"] == "rate_limited"
            assert "has 2 websockets open" in third.json()["error"]["message"]
            # by its auth message too
            async with open_websocket_url(gw.ws_url, extra_headers=PAGE) as page:
                await _send(page, {"type": "auth", "key": "secret-a"})
                refused = await _recv(page)
                assert refused["error"]["code"] == "rate_limited"
                with pytest.raises(ConnectionClosed):
                    await page.get_message()
                await page._stream.aclose()
            # another team is not held back by it
            b = [("authorization", "Bearer secret-b")]
            async with open_websocket_url(gw.ws_url, extra_headers=b) as other:
                await _send(other, {"type": "subscribe"})
                assert (await _recv(other))["type"] == "subscribed"
            # a socket closed gives its place back (once the server has seen it close)
            await second.aclose()
            statuses = []
            for _ in range(100):
                async with httpx.AsyncClient(base_url=gw.base_url) as client:
                    statuses.append(
                        (await client.get("/ws", headers=UPGRADE | dict(team_a))).status_code
                    )
                if statuses[-1] == 101:
                    break
                await trio.sleep(0.02)
            assert statuses[-1] == 101 and set(statuses) <= {429, 101}


async def test_sockets_waiting_to_authenticate_are_bounded_across_the_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page's socket opened without a key costs a connection and a task for up to 10 s
    before it must authenticate, and no team's bound holds it (it has no team yet): 2,000
    were accepted in 2.3 s. At most ``AWAITING_AUTH`` wait at once; past them the upgrade
    is a 429, and a socket that authenticated gives its place back."""
    monkeypatch.setattr(_ws_open, "AWAITING_AUTH", 2)
    router = FakeRouter(make_config(keys=KEYS))
    page_upgrade = UPGRADE | dict(PAGE)
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=PAGE) as first,
            open_websocket_url(gw.ws_url, extra_headers=PAGE),
        ):
            async with httpx.AsyncClient(base_url=gw.base_url) as client:  # not reusable
                third = await client.get("/ws", headers=page_upgrade)
            assert third.status_code == 429
            assert "waiting to authenticate" in third.json()["error"]["message"]
            # a socket with its key in the upgrade never waits: not held back
            team_a = [("authorization", "Bearer secret-a")]
            async with open_websocket_url(gw.ws_url, extra_headers=team_a) as keyed:
                await _send(keyed, {"type": "subscribe"})
                assert (await _recv(keyed))["type"] == "subscribed"
            await _send(first, {"type": "auth", "key": "secret-a"})
            assert (await _recv(first))["type"] == "authenticated"
            async with httpx.AsyncClient(base_url=gw.base_url) as client:
                fourth = await client.get("/ws", headers=page_upgrade)
            assert fourth.status_code == 101


async def test_sockets_opening_together_pass_the_bound_no_more_than_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The count is taken before the accept (a checkpoint): counted after it, a burst of
    3,000 page sockets got 881 accepted past a bound of 256."""
    monkeypatch.setattr(_ws_open, "AWAITING_AUTH", 3)
    router = FakeRouter(make_config(keys=KEYS))
    upgrade = (
        b"GET /ws HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
        b"origin: http://localhost:5173\r\n\r\n"
    )
    statuses: list[bytes] = []
    streams: list[trio.SocketStream] = []

    async def open_one(host: str, port: int) -> None:
        stream = await trio.open_tcp_stream(host, port)
        streams.append(stream)
        await stream.send_all(upgrade)
        statuses.append((await stream.receive_some(1 << 16)).split(b" ")[1])

    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            async with trio.open_nursery() as nursery:
                for _ in range(40):
                    nursery.start_soon(open_one, gw.host, gw.port)
            for stream in streams:
                await stream.aclose()
    assert len(statuses) == 40
    assert statuses.count(b"101") == 3
    assert statuses.count(b"429") == 37
