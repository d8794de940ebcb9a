"""A provider whose server closes kept-alive connections on its own schedule (an idle
timeout running out as the next request comes): the request that meets a connection closed
that way is sent again at once on a new one, through the router over real HTTP. The call
has one attempt, no retry's backoff, and nothing counts against the model's breaker."""

from __future__ import annotations

import functools
import json
import socket
import struct

import attrs
import pytest
import trio

import switchman
from switchman import Call, Params
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouterConfig
from tests._rawhttp import read_request_body

ENV = {"EDGE_KEY": "edge-test-key-0001"}
ANSWER = "Paris is the capital of France."


@attrs.define
class Upstream:
    """An OpenAI-wire upstream that answers the first request on each connection and closes
    (or resets) the connection as the second arrives, unanswered."""

    reset: bool
    #: every request after the first is read, and the connection reset unanswered (a
    #: backend that falls over on each request), on new connections as on kept ones
    fallen: bool = False
    connections: int = 0
    answered: int = 0
    dropped: int = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        async with stream:
            await read_request_body(stream)
            if self.fallen and self.answered:
                self.dropped += 1
                stream.socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                return
            events = [
                {"choices": [{"index": 0, "delta": {"content": ANSWER}, "finish_reason": None}]},
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {
                    "choices": [],
                    "usage": {"prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15},
                },
            ]
            body = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)
            body += b"data: [DONE]\n\n"
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            self.answered += 1
            await read_request_body(stream)  # the next request on this connection
            self.dropped += 1
            if self.reset:
                stream.socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )


CALL = Call(prompt="What is the capital of France?", model="edge/m", params=Params(max_tokens=50))


async def _serving(nursery: trio.Nursery, upstream: Upstream) -> Config:
    """``upstream`` listening on loopback, and a config whose one model it serves."""
    serve = functools.partial(trio.serve_tcp, upstream.handle, 0, host="127.0.0.1")
    listeners = await nursery.start(serve)
    base_url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/v1"
    spec = ProviderSpec(name="edge", kind="openai", base_url=base_url, api_key_env="EDGE_KEY")
    model = ModelSpec(alias="edge/m", provider="edge", model_id="m")
    return Config(providers={"edge": spec}, models={"edge/m": model}, router=RouterConfig(seed=3))


@pytest.mark.parametrize("reset", [False, True])
async def test_a_kept_alive_connection_the_server_closed_costs_no_attempt(
    nursery: trio.Nursery, reset: bool
) -> None:
    upstream = Upstream(reset=reset)
    config = await _serving(nursery, upstream)
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            results = [await router.call(CALL) for _ in range(5)]
            (provider,) = router.status().providers
    for result in results:
        assert (result.status, result.answer) == ("complete", ANSWER), result.errors
        assert [a.outcome for a in result.trace.attempts] == ["success"]
    assert upstream.answered == 5 and upstream.dropped == 4 and upstream.connections == 5
    (model,) = provider.models
    assert model.breaker == "closed" and model.stats["*"]["success_rate"] == 1.0


async def test_a_backend_that_resets_every_request_gets_it_twice_as_a_retry_would(
    nursery: trio.Nursery,
) -> None:
    """Read and reset at once looks like a stale connection: the request goes again on a
    new connection, which resets too. That was the model's retry: the call falls back (here
    to nothing) without a third send, and the upstream had it twice, as before."""
    upstream = Upstream(reset=True, fallen=True)
    config = await _serving(nursery, upstream)
    with trio.fail_after(20):
        async with switchman.open_router(config, env=ENV) as router:
            assert (await router.call(CALL)).status == "complete"  # (a kept connection)
            failed = await router.call(CALL)
    assert failed.status == "failed"
    (attempt,) = failed.trace.attempts
    assert attempt.outcome == "error" and "sent again on a new connection" in (attempt.error or "")
    assert upstream.dropped == 2  # the kept connection, then one new one: no more
