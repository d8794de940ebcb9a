"""A proxy named in the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY) carries every
provider request, as httpx honours it, through the real path: a router over a forward proxy
on loopback in front of the fake provider server."""

from __future__ import annotations

import functools

import httpx
import pytest
import trio

import switchman
from switchman import Call
from switchman.adapters import make_client
from switchman.adapters._pool import LeanTransport
from switchman.catalog import ProviderSpec
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, http_fleet, model


async def _read_head(stream: trio.SocketStream) -> bytes | None:
    """A request's head and what came after it, once the blank line has come."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = await stream.receive_some(65536)
        if not data:
            return None
        head += data
    return head


def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def _forward(seen: list[str], stream: trio.SocketStream) -> None:
    """One request in absolute form (``POST http://host/path``), passed on, answered whole."""
    read = await _read_head(stream)
    if read is None:
        return
    head, _, body = read.partition(b"\r\n\r\n")
    request_line, *lines = head.decode().split("\r\n")
    method, target, _ = request_line.split(" ")
    seen.append(f"{method} {target}")
    headers = dict(line.split(": ", 1) for line in lines)
    headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    while len(body) < length:
        body += await stream.receive_some(65536)
    async with httpx.AsyncClient(trust_env=False) as client:
        reply = await client.request(method, target, content=body, headers=headers)
    head_out = (
        f"HTTP/1.1 {reply.status_code} OK\r\n"
        f"content-type: {reply.headers.get('content-type', '')}\r\n"
        f"content-length: {len(reply.content)}\r\nconnection: close\r\n\r\n"
    )
    await stream.send_all(head_out.encode() + reply.content)
    await stream.aclose()


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "http_proxy"])
async def test_a_proxy_in_the_environment_carries_the_provider_requests(
    variable: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    seen: list[str] = []
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, functools.partial(_forward, seen), 0, host="127.0.0.1")
    )
    port = listeners[0].socket.getsockname()[1]
    _no_proxies(monkeypatch)
    monkeypatch.setenv(variable, f"http://127.0.0.1:{port}")
    config = http_fleet(server, [model("openai", "healthy")])
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(Call(prompt="hi", model="openai/healthy"))
    assert result.status == "complete"
    assert seen == [f"POST {server.base_url}/openai/v1/chat/completions"]


def test_without_a_proxy_the_client_runs_on_the_lean_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_proxies(monkeypatch)
    client = make_client(ProviderSpec(name="p", kind="openai"))
    assert isinstance(client._transport, LeanTransport)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("socks5://user:secret-pw@127.0.0.1:1", "a SOCKS proxy needs the socksio package"),
        ("ftp://user:secret-pw@127.0.0.1:1", "httpx does not take its URL"),
    ],
)
async def test_a_proxy_httpx_cannot_use_is_warned_of_and_the_router_still_serves(
    url: str,
    why: str,
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A desktop's SOCKS proxy (socksio, httpx's SOCKS extra, not installed) or a URL
    httpx does not take: the router starts, its providers connect directly, and the
    warning names the variable, never the URL (it carries credentials)."""
    import importlib.util

    if url.startswith("socks") and importlib.util.find_spec("socksio") is not None:
        pytest.skip("socksio is installed: httpx can use the SOCKS proxy")
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    _no_proxies(monkeypatch)
    monkeypatch.setenv("ALL_PROXY", url)
    config = http_fleet(server, [model("openai", "healthy")])
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(Call(prompt="hi", model="openai/healthy"))
    assert result.status == "complete"
    said = [r.getMessage() for r in caplog.records if "proxy" in r.getMessage()]
    assert said and all("ALL_PROXY" in m and why in m for m in said)
    assert not any("secret-pw" in m for m in said)


async def _refuse_echoing(stream: trio.SocketStream) -> None:
    """A proxy that refuses (407) with the request's headers in its body, its own
    ``Proxy-Authorization`` among them, as some do."""
    read = await _read_head(stream)
    if read is None:
        return
    body = read.partition(b"\r\n\r\n")[0]
    reply = (
        b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-type: text/plain\r\n"
        + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
        + body
    )
    await stream.send_all(reply)
    await stream.aclose()


@pytest.mark.parametrize("credentials", ["user:pw", "alice:s3cr3t-long-enough"])
async def test_a_proxy_echoing_its_credentials_never_shows_them(
    credentials: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, _refuse_echoing, 0, host="127.0.0.1")
    )
    port = listeners[0].socket.getsockname()[1]
    _no_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", f"http://{credentials}@127.0.0.1:{port}")
    config = http_fleet(server, [model("openai", "healthy")])
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(Call(prompt="hi", model="openai/healthy"))
    shown = repr(result)
    assert result.status == "failed" and "407" in shown  # the proxy's refusal, told
    token = base64.b64encode(credentials.encode()).decode()
    password = credentials.split(":", 1)[1]
    assert token not in shown
    assert len(password) < 8 or password not in shown
