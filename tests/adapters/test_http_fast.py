"""send_attempt's direct path (straight through httpcore's pool) over real loopback HTTP.

A client made by ``make_client`` sends through the connection pool under it,
skipping httpx's client layer. These tests run the fake provider server on
127.0.0.1:0 and check, through ``make_client`` + ``send_attempt``, that the
direct path is taken, that it sends what httpx would send, and that answers,
error statuses, time limits, refused connections, cancellation and keep-alive
behave as they do through httpx (whose path other clients still take).
"""

from __future__ import annotations

import functools
import gzip
import json
import socket
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import httpcore
import httpx
import pytest
import trio

from switchman._call import Message
from switchman._errors import (
    AttemptTimeout,
    BadReply,
    BadRequest,
    ProviderError,
    RateLimited,
    StreamBroken,
    TransientError,
    UpstreamError,
)
from switchman.adapters import (
    ProviderRequest,
    ResponseStarted,
    StreamEnd,
    StreamEvent,
    TextDelta,
    make_adapter,
    make_client,
    send_attempt,
)
from switchman.adapters._http import _request_headers, _response_headers, _transport_error
from switchman.catalog import ProviderSpec
from switchman.sim import FakeProviderServer, FakeServerConfig, expected_answer, serve_fake_provider

KEY = "sk-live-0123456789abcdefghijKLMNOPqrst"
PROMPT = "What is the capital of France?"
MAX_TOKENS = 64


@pytest.fixture
async def server(nursery: trio.Nursery) -> FakeProviderServer:
    handle: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    return handle


def spec_for(base_url: str, **fields: Any) -> ProviderSpec:
    return ProviderSpec(name="openai", kind="openai", base_url=f"{base_url}/v1", **fields)


def request(model: str = "healthy", *, stream: bool = True) -> ProviderRequest:
    return ProviderRequest(
        model_id=model,
        messages=(Message(role="user", content=PROMPT),),
        max_tokens=MAX_TOKENS,
        stream=stream,
    )


@attrs.define
class Run:
    events: list[StreamEvent] = attrs.field(factory=list)

    async def emit(self, event: StreamEvent) -> None:
        self.events.append(event)

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))


@attrs.define
class Paths:
    """Requests that reached the pool, and those of them that came through httpx."""

    pool: int = 0
    httpx: int = 0

    @property
    def direct(self) -> int:
        return self.pool - self.httpx


def spy(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """Count requests on the pool under ``client`` and on its httpx transport."""
    paths = Paths()
    transport = client._transport
    pool = transport._pool  # type: ignore[attr-defined]
    pool_send, transport_send = pool.handle_async_request, transport.handle_async_request

    async def via_pool(req: httpcore.Request) -> httpcore.Response:
        paths.pool += 1
        response: httpcore.Response = await pool_send(req)
        return response

    async def via_transport(req: httpx.Request) -> httpx.Response:
        paths.httpx += 1
        return await transport_send(req)

    monkeypatch.setattr(pool, "handle_async_request", via_pool)
    monkeypatch.setattr(transport, "handle_async_request", via_transport)
    return paths


def pool_of(client: httpx.AsyncClient) -> httpcore.AsyncConnectionPool:
    pool: httpcore.AsyncConnectionPool = client._transport._pool  # type: ignore[attr-defined]
    return pool


def request_counts(client: httpx.AsyncClient) -> list[int]:
    """Requests served so far by each connection in the pool (from httpcore's ``info()``)."""
    return [int(c.info().rsplit("Request Count: ", 1)[1]) for c in pool_of(client).connections]


async def attempt(
    client: httpx.AsyncClient,
    spec: ProviderSpec,
    req: ProviderRequest,
    run: Run | None = None,
    *,
    ttft: float = 5.0,
    stall: float = 2.0,
) -> Run:
    run = run if run is not None else Run()
    with trio.fail_after(10):
        await send_attempt(
            client,
            make_adapter(spec, KEY),
            req,
            run.emit,
            ttft_timeout_s=ttft,
            stall_timeout_s=stall,
        )
    return run


def answer(model: str = "healthy") -> str:
    return expected_answer(model, PROMPT, MAX_TOKENS)


# --------------------------------------------------------------------------- answers


async def test_streamed_answer_takes_the_direct_path(
    server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_for(server.base_url)
    async with make_client(spec) as client:
        paths = spy(client, monkeypatch)
        run = await attempt(client, spec, request())
    assert (paths.direct, paths.httpx) == (1, 0)
    assert isinstance(run.events[0], ResponseStarted) and run.events[0].status == 200
    assert run.events[0].headers["content-type"].startswith("text/event-stream")
    assert run.text == answer()
    ends = [e for e in run.events if isinstance(e, StreamEnd)]
    assert len(ends) == 1 and run.events[-1] is ends[0]
    assert ends[0].finish_reason == "stop" and ends[0].usage.output_tokens > 0
    assert server.requests()[-1].outcome == "complete"


async def test_non_streamed_answer(
    server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_for(server.base_url)
    async with make_client(spec) as client:
        paths = spy(client, monkeypatch)
        run = await attempt(client, spec, request(stream=False))
    assert paths.direct == 1
    assert [type(e) for e in run.events] == [ResponseStarted, TextDelta, StreamEnd]
    assert run.text == answer()
    assert server.requests()[-1].body["stream"] is False


async def test_the_wire_request_is_the_one_httpx_sends(server: FakeProviderServer) -> None:
    """Same headers in the same order, same body bytes, through either path."""

    class Subclassed(httpx.AsyncHTTPTransport):
        """Not the plain transport: httpx's path."""

    spec = spec_for(server.base_url)
    async with make_client(spec) as direct, httpx.AsyncClient(transport=Subclassed()) as via:
        await attempt(direct, spec, request())
        await attempt(via, spec, request())
    sent_direct, sent_httpx = server.requests()
    assert list(sent_direct.headers.items()) == list(sent_httpx.headers.items())
    assert sent_direct.body == sent_httpx.body
    headers = sent_direct.headers
    port = server.base_url.rsplit(":", 1)[1]
    assert headers["host"] == f"127.0.0.1:{port}"
    assert headers["content-type"] == "application/json"
    compact = json.dumps(sent_direct.body, ensure_ascii=False, separators=(",", ":")).encode()
    assert headers["content-length"] == str(len(compact))
    assert sent_direct.path == "/v1/chat/completions"


async def test_accept_encoding_asks_only_for_codings_it_can_undo(
    server: FakeProviderServer,
) -> None:
    spec = spec_for(server.base_url)
    async with make_client(spec) as client:
        client.headers["Accept-Encoding"] = "br, gzip, zstd"
        await attempt(client, spec, request())
        client.headers["Accept-Encoding"] = "br"
        await attempt(client, spec, request())
    assert [r.headers["accept-encoding"] for r in server.requests()] == ["gzip", "identity"]


# --------------------------------------------------------------------------- failures


async def test_429_with_retry_after_is_rate_limited(server: FakeProviderServer) -> None:
    spec = spec_for(server.base_url)
    run = Run()
    async with make_client(spec) as client:
        with pytest.raises(RateLimited) as info:
            await attempt(client, spec, request("rate-limited"), run)
    assert info.value.retry_after == 1.0 and info.value.status == 429
    assert len(run.events) == 1 and isinstance(run.events[0], ResponseStarted)
    assert run.events[0].status == 429 and run.events[0].headers["retry-after"] == "1"


async def test_500_is_upstream_error_and_its_read_connection_is_reused(
    server: FakeProviderServer,
) -> None:
    spec = spec_for(server.base_url)
    async with make_client(spec) as client:
        with pytest.raises(UpstreamError) as info:
            await attempt(client, spec, request("error-once"))
        assert info.value.status == 500 and info.value.provider == "openai"
        run = await attempt(client, spec, request("error-once"))
        assert run.text == answer("error-once")
        assert request_counts(client) == [2]


async def test_stall_after_text_is_cut_by_the_stall_limit_and_drops_the_connection(
    server: FakeProviderServer,
) -> None:
    spec = spec_for(server.base_url)
    run = Run()
    async with make_client(spec) as client:
        start = trio.current_time()
        with pytest.raises(StreamBroken) as info:
            await attempt(client, spec, request("stall"), run, ttft=5.0, stall=0.3)
        assert 0.3 <= trio.current_time() - start < 2.0
        assert "stalled" in info.value.message and run.text
        assert pool_of(client).connections == []
        with trio.fail_after(5):  # the server sees the client close its end
            assert (await server.wait_ended("stall")).outcome == "stall"


@pytest.mark.parametrize(
    ("model", "started"), [("silent", False), ("slow-ttft-3000", True)], ids=["silent", "slow"]
)
async def test_no_first_token_within_ttft_times_out_and_frees_the_pool(
    server: FakeProviderServer, model: str, started: bool
) -> None:
    spec = spec_for(server.base_url)
    run = Run()
    async with make_client(spec) as client:
        start = trio.current_time()
        with pytest.raises(AttemptTimeout) as info:
            await attempt(client, spec, request(model), run, ttft=0.3, stall=0.1)
        assert 0.3 <= trio.current_time() - start < 2.0
        assert "first token" in info.value.message
        assert [type(e) for e in run.events] == ([ResponseStarted] if started else [])
        assert pool_of(client).connections == []
        assert (await attempt(client, spec, request())).text == answer()


async def test_connection_cut_mid_stream_is_broken(server: FakeProviderServer) -> None:
    spec = spec_for(server.base_url)
    async with make_client(spec) as client:
        with pytest.raises(StreamBroken) as info:
            await attempt(client, spec, request("cut"))
    assert "after output began" in info.value.message and info.value.status == 200


async def test_reset_before_headers_is_transient(server: FakeProviderServer) -> None:
    spec = spec_for(server.base_url)
    run = Run()
    async with make_client(spec) as client:
        with pytest.raises(TransientError) as info:
            await attempt(client, spec, request("reset"), run)
    assert run.events == [] and isinstance(
        info.value.__cause__, httpcore.NetworkError | httpcore.ProtocolError
    )


async def test_read_timeout_backstop_is_an_attempt_timeout(server: FakeProviderServer) -> None:
    spec = spec_for(server.base_url, read_timeout_s=0.2)
    async with make_client(spec) as client:
        with pytest.raises(AttemptTimeout) as info:
            await attempt(client, spec, request("silent"), ttft=5.0)
    assert isinstance(info.value.__cause__, httpcore.ReadTimeout)


@contextmanager
def _closed_port() -> Iterator[int]:
    """A port nothing listens on, for the block: bound but never listening, so a
    connection to it is refused, and no other socket can take it meanwhile (one closed
    at once could be handed to another test's listener before it was used)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


async def test_connection_refused_is_transient_and_keyless() -> None:
    run = Run()
    with _closed_port() as port:
        spec = spec_for(f"http://127.0.0.1:{port}")
        async with make_client(spec) as client:
            with pytest.raises(TransientError) as info:
                await attempt(client, spec, request(), run)
    assert isinstance(info.value.__cause__, httpcore.ConnectError)
    assert run.events == [] and "connection failed" in info.value.message
    assert KEY not in str(info.value)
    # callers may not see base URLs (a gateway shows them to admin keys only)
    assert "127.0.0.1" not in info.value.message, info.value.message


@pytest.mark.parametrize("base_url", ["ftp://127.0.0.1:21", "http://127.0.0.1:abc"])
async def test_bad_provider_url_is_a_bad_request(base_url: str) -> None:
    spec = spec_for(base_url)
    async with make_client(spec) as client:
        with pytest.raises(BadRequest) as info:
            await attempt(client, spec, request())
    assert "bad provider URL" in info.value.message


# --------------------------------------------------------------------------- pool


async def test_cancelled_mid_stream_leaves_the_pool_usable(server: FakeProviderServer) -> None:
    spec = spec_for(server.base_url)
    run = Run()
    async with make_client(spec) as client:
        with trio.CancelScope() as scope:

            async def emit(event: StreamEvent) -> None:
                await run.emit(event)
                if isinstance(event, TextDelta):
                    scope.cancel()

            await send_attempt(
                client,
                make_adapter(spec, KEY),
                request("stall"),
                emit,
                ttft_timeout_s=5.0,
                stall_timeout_s=5.0,
            )
        assert scope.cancelled_caught and run.text
        assert not any(isinstance(e, StreamEnd) for e in run.events)
        assert pool_of(client).connections == []  # dropped, not returned half-read
        with trio.fail_after(5):
            assert (await server.wait_ended("stall")).outcome == "stall"
        after = await attempt(client, spec, request())
        assert after.text == answer()
        assert request_counts(client) == [1]


async def test_keep_alive_reuses_one_connection(server: FakeProviderServer) -> None:
    spec = spec_for(server.base_url)
    async with make_client(spec) as client:
        for stream in (True, False, True, True):
            run = await attempt(client, spec, request(stream=stream))
            assert run.text == answer()
        assert request_counts(client) == [4]


async def test_max_connections_is_respected(server: FakeProviderServer) -> None:
    spec = spec_for(server.base_url, max_concurrency=2)
    texts: list[str] = []
    async with make_client(spec) as client:

        async def one() -> None:
            texts.append((await attempt(client, spec, request("healthy-latency-100"))).text)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(one)
        assert texts == [answer("healthy-latency-100")] * 5
        assert len(request_counts(client)) <= 2 and sum(request_counts(client)) == 5
    spans = [(r.received_at, r.ended_at) for r in server.requests()]
    most = max(sum(1 for s, e in spans if s <= t < (e or t)) for t, _ in spans)
    assert most <= 2


# --------------------------------------------------------------------------- which path


class _NotAPool:
    """Stands where httpx keeps its pool, delegating to a real one: not a plain pool."""

    def __init__(self) -> None:
        self.pool = httpcore.AsyncConnectionPool()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        return await self.pool.handle_async_request(request)

    async def __aenter__(self) -> _NotAPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.pool.aclose()


def _subclassed() -> httpx.AsyncClient:
    class Subclassed(httpx.AsyncHTTPTransport):
        pass

    return httpx.AsyncClient(transport=Subclassed())


def _replaced_pool() -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport()
    transport._pool = _NotAPool()  # type: ignore[assignment]
    return httpx.AsyncClient(transport=transport)


class _TagAuth(httpx.Auth):
    """A client-level auth flow that leaves the provider key's header alone (Basic auth
    would replace it, and the provider answer 401)."""

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["x-client-tag"] = "1"
        yield request


@pytest.mark.parametrize(
    "make",
    [
        _subclassed,
        _replaced_pool,
        lambda: httpx.AsyncClient(mounts={"http://elsewhere.invalid": httpx.AsyncHTTPTransport()}),
        lambda: httpx.AsyncClient(cookies={"session": "1"}),
        lambda: httpx.AsyncClient(auth=_TagAuth()),
        lambda: httpx.AsyncClient(follow_redirects=True),
    ],
    ids=["subclassed", "replaced-pool", "mounts", "cookies", "auth", "redirects"],
)
async def test_other_clients_take_the_httpx_path(
    server: FakeProviderServer,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[], httpx.AsyncClient],
) -> None:
    spec = spec_for(server.base_url)
    async with make() as client:
        calls: list[httpx.Request] = []
        real_send = client.send

        async def send(*args: Any, **kwargs: Any) -> httpx.Response:
            calls.append(kwargs.get("request") or args[0])
            return await real_send(*args, **kwargs)

        monkeypatch.setattr(client, "send", send)
        run = await attempt(client, spec, request())
    assert run.text == answer() and len(calls) == 1


async def test_a_closed_client_refuses_as_httpx_does(server: FakeProviderServer) -> None:
    spec = spec_for(server.base_url)
    client = make_client(spec)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await attempt(client, spec, request())


# --------------------------------------------------------------------------- content coding


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


def _zlib(data: bytes) -> bytes:
    return zlib.compress(data)


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _gzip_then_deflate(data: bytes) -> bytes:
    return _zlib(_gzip(data))


async def _serve_encoded(
    coding: str, body: bytes, content_type: str, stream: trio.SocketStream
) -> None:
    """One response whose body is ``body`` (already encoded), sent chunked in small pieces."""
    await stream.receive_some(65536)
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-encoding: {coding}\r\n"
        "transfer-encoding: chunked\r\n\r\n"
    ).encode()
    await stream.send_all(head)
    for i in range(0, len(body), 7):
        piece = body[i : i + 7]
        await stream.send_all(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    await stream.send_all(b"0\r\n\r\n")
    await stream.aclose()


def _sse(text: str) -> bytes:
    out = b""
    for word in text.split(" "):
        delta = {"choices": [{"delta": {"content": word + " "}, "finish_reason": None}]}
        out += b"data: " + json.dumps(delta).encode() + b"\n\n"
    done = {"model": "m", "choices": [{"delta": {}, "finish_reason": "stop"}]}
    return out + b"data: " + json.dumps(done).encode() + b"\n\ndata: [DONE]\n\n"


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", _gzip),
        ("deflate", _zlib),
        ("deflate", _raw_deflate),
        ("gzip, deflate", _gzip_then_deflate),
        ("identity", lambda data: data),
    ],
    ids=["gzip", "deflate", "raw-deflate", "gzip-then-deflate", "identity"],
)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_content_codings_are_undone(
    nursery: trio.Nursery, coding: str, encode: Callable[[bytes], bytes], stream: bool
) -> None:
    text = "Paris is the capital of France."
    if stream:
        plain, content_type = _sse(text), "text/event-stream"
    else:
        whole = {
            "model": "m",
            "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7},
        }
        plain, content_type = json.dumps(whole).encode(), "application/json"
    handler = functools.partial(_serve_encoded, coding, encode(plain), content_type)
    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    spec = spec_for(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}")
    async with make_client(spec) as client:
        run = await attempt(client, spec, request(stream=stream))
    assert run.text.strip() == text and isinstance(run.events[-1], StreamEnd)


async def test_a_corrupt_coded_body_is_a_bad_reply(nursery: trio.Nursery) -> None:
    handler = functools.partial(
        _serve_encoded,
        "gzip",
        _gzip(b'{"choices": []}')[:-12] + b"garbage!" * 3,
        "application/json",
    )
    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    spec = spec_for(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}")
    async with make_client(spec) as client:
        with pytest.raises(BadReply) as info:
            await attempt(client, spec, request(stream=False))
    assert isinstance(info.value.__cause__, httpx.DecodingError)


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("method", "headers", "body"),
    [
        ("POST", {"Content-Type": "application/json", "Authorization": "Bearer k"}, b"{}"),
        ("POST", {"accept": "text/event-stream", "X-Extra": "1"}, b'{"a":1}'),
        ("POST", {"User-Agent": "mine", "Content-Length": "2"}, b"{}"),
        ("POST", {}, None),
        ("GET", {"Accept": "application/json"}, None),
    ],
)
def test_request_headers_match_httpx(
    method: str, headers: dict[str, str], body: bytes | None
) -> None:
    url = "http://127.0.0.1:8080/v1/chat/completions"
    client = httpx.AsyncClient()
    built = client.build_request(
        method, url, headers=headers, json=None if body is None else json.loads(body)
    )
    ours = _request_headers(client.headers.raw, headers, b"127.0.0.1:8080", method, body)
    assert ours == built.headers.raw


@pytest.mark.parametrize(
    "raw",
    [
        [(b"Content-Type", b"text/event-stream"), (b"Retry-After", b"7")],
        [(b"X-A", b"1"), (b"x-a", b"2"), (b"Set-Cookie", b"a=1")],
        [(b"X-Name", "café".encode()), (b"X-Other", b"plain")],
        [(b"X-Name", b"caf\xe9")],
    ],
    ids=["plain", "repeated", "utf-8", "latin-1"],
)
def test_response_headers_match_httpx(raw: list[tuple[bytes, bytes]]) -> None:
    assert _response_headers(raw) == dict(httpx.Headers(raw).items())


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpcore.ConnectTimeout("slow"), TransientError),
        (httpcore.ConnectError("refused"), TransientError),
        (httpcore.ReadTimeout("read"), AttemptTimeout),
        (httpcore.WriteTimeout("write"), AttemptTimeout),
        (httpcore.PoolTimeout("pool"), AttemptTimeout),
        (httpcore.ReadError("reset"), TransientError),
        (httpcore.WriteError("pipe"), TransientError),
        (httpcore.RemoteProtocolError("bad"), TransientError),
        (httpcore.LocalProtocolError("bad"), TransientError),
        (httpcore.ProxyError("proxy"), TransientError),
        (httpcore.UnsupportedProtocol("ftp"), BadRequest),
        (httpx.InvalidURL("bad port"), BadRequest),
        (httpx.DecodingError("zlib"), BadReply),
    ],
)
def test_httpcore_errors_map_like_httpx_errors(exc: Exception, kind: type[ProviderError]) -> None:
    error = _transport_error(exc, "openai", None, output_began=False)
    assert type(error) is kind and error.provider == "openai"
    assert type(exc).__name__ in error.message
    after = _transport_error(exc, "openai", 200, output_began=True)
    assert type(after) is StreamBroken and after.status == 200


def test_error_text_is_scrubbed_of_keys() -> None:
    error = _transport_error(httpcore.ConnectError(f"proxy said no to {KEY}"), "x", None, False)
    assert KEY not in str(error) and KEY not in error.message
