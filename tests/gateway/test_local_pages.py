"""An open gateway (no keys) answers programs and pages of this machine, not other web pages:
a page elsewhere could spend the provider budget with a cross-site POST, read every event over
a websocket, or rename itself to 127.0.0.1 (DNS rebinding)."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from switchman.gateway._local import local_origin, page_problem
from tests.gateway._fakes import KEYS, FakeRouter, bearer, make_config, running_gateway


def _raw(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]


UPGRADE = {
    "connection": "Upgrade",
    "upgrade": "websocket",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
}


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:3000",
        "https://localhost",
        "http://app.localhost:5173",
        "http://127.0.0.1:8265",
        "http://127.8.0.1",
        "http://[::1]:8080",
        "HTTP://LOCALHOST:1",
    ],
)
def test_pages_of_this_machine_are_local(origin: str) -> None:
    assert local_origin(origin)
    assert page_problem(_raw(origin=origin)) is None


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://192.168.1.5:3000",
        "null",
        "file://",
        "ws://localhost",
        "http://[::1",
        "",
        "http://localhost:3000/path",  # (an origin is a scheme, a host and a port)
        "http://localhost:notaport",
        "http://user@localhost",
    ],
)
def test_other_pages_are_not(origin: str) -> None:
    assert not local_origin(origin)
    problem = page_problem(_raw(origin=origin))
    assert problem is not None and "configure [[keys]]" in problem


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("127.0.0.1:8265", False),
        ("localhost:8265", False),
        ("localhost", False),
        ("[::1]:8265", False),
        ("::1:8265", False),  # (trio-websocket's form)
        ("::1", False),
        ("evil.example:8265", True),
        ("10.0.0.7:8265", False),  # an address: not a name a page can give itself
        ("my.localhost.", False),
        ("rebind.evil.example:8265", True),
        ("intranet", True),
    ],
)
def test_requests_addressed_to_a_name_other_than_localhost(host: str, refused: bool) -> None:
    assert (page_problem(_raw(host=host)) is not None) is refused
    assert page_problem(_raw(host=host), check_host=False) is None  # (bound on purpose)


def test_this_machines_own_name_is_local_but_not_a_look_alike() -> None:
    import socket

    own = socket.gethostname()
    assert page_problem(_raw(host=f"{own}:8265")) is None
    assert page_problem(_raw(host=f"{own.upper()}.")) is None
    assert page_problem(_raw(host=f"{own}.evil.example:8265")) is not None


def test_several_origins_are_refused_when_one_is_foreign() -> None:
    both = [(b"origin", b"https://evil.example"), (b"origin", b"http://localhost:3000")]
    assert page_problem(both) is not None
    assert page_problem(list(reversed(both))) is not None
    assert page_problem(_raw(origin="http://localhost:3000, https://evil.example")) is not None
    # (RFC 6454's lists are separated by spaces)
    assert page_problem(_raw(origin="http://localhost:3000 http://evil.example")) is not None
    assert page_problem(_raw(origin="http://localhost/ http://evil.example")) is not None
    assert page_problem(_raw(origin="http://localhost:3000, http://127.0.0.1")) is None


def test_an_absolute_form_target_names_the_host() -> None:
    """RFC 9112: the target's authority is the request's host, whatever ``Host`` says."""
    headers = _raw(host="localhost:8265")
    assert page_problem(headers, target="http://rebind.evil.example/call") is not None
    assert page_problem(headers, target="http://u@127.0.0.1:8265/call") is None
    assert page_problem(_raw(host="rebind.evil.example"), target="/call") is not None


async def test_an_open_gateway_refuses_other_pages_and_names_and_runs_nothing_for_them() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for headers in (
                {"origin": "https://evil.example"},
                {"origin": "null"},
                {"host": f"rebind.evil.example:{gw.port}"},
            ):
                r = await gw.client.post(
                    "/call", content=json.dumps({"prompt": "spend"}), headers=headers
                )
                assert r.status_code == 403, headers
                assert r.json()["error"]["code"] == "forbidden"
                assert (await gw.client.get("/jobs", headers=headers)).status_code == 403
                chat = {"model": "fast", "messages": [{"role": "user", "content": "x"}]}
                v1 = await gw.client.post("/v1/chat/completions", json=chat, headers=headers)
                assert v1.status_code == 403
                assert v1.json()["error"]["code"] == "forbidden"  # (OpenAI's shape)
                async with httpx.AsyncClient(base_url=gw.base_url) as client:  # not reusable
                    upgrade = await client.get("/ws", headers=UPGRADE | headers)
                assert upgrade.status_code == 403
                assert "configure [[keys]]" in upgrade.json()["error"]["message"]
            # before routing: a method a route does not take is refused all the same
            assert (
                await gw.client.post("/health", headers={"origin": "https://evil.example"})
            ).status_code == 403
            assert router.calls == []  # nothing ran for them
            assert (await gw.client.get("/jobs")).json()["jobs"] == []
            # a page of this machine, and a program addressing it by name, are served
            local = {"origin": "http://localhost:5173", "host": f"localhost:{gw.port}"}
            r = await gw.client.post("/call?wait=5", json={"prompt": "hi"}, headers=local)
            assert r.status_code == 200
            assert r.json()["result"]["answer"] == "echo hi"
            origin = [("origin", "http://127.0.0.1:5173")]
            async with open_websocket_url(gw.ws_url, extra_headers=origin) as ws:
                await ws.send_message(json.dumps({"type": "subscribe"}))
                assert json.loads(await ws.get_message())["type"] == "subscribed"


async def test_a_gateway_with_keys_serves_any_page_that_has_a_key() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            elsewhere = {"origin": "https://dashboard.example", "host": "switchman.internal"}
            r = await gw.client.get("/jobs", headers=elsewhere | bearer("secret-a"))
            assert r.status_code == 200
            assert (await gw.client.get("/jobs", headers=elsewhere)).status_code == 401


async def test_an_open_gateway_bound_beyond_loopback_on_purpose_checks_no_name() -> None:
    """``--insecure`` on 0.0.0.0 serves a LAN or a container network by its names; pages
    of other origins are still refused."""
    from functools import partial

    from switchman.gateway import serve_gateway

    router = FakeRouter(make_config())
    shutdown = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            _, port = await nursery.start(
                partial(
                    serve_gateway,
                    router,
                    host="0.0.0.0",
                    port=0,
                    insecure=True,
                    shutdown_trigger=shutdown.wait,
                )
            )
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                named = await client.get("/health", headers={"host": f"switchman:{port}"})
                assert named.status_code == 200
                page = await client.get("/health", headers={"origin": "https://evil.example"})
                assert page.status_code == 403
            shutdown.set()
