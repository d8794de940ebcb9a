"""A request's body as the pool sends it: bytes in one piece, as often as sent, and no
async generator a cancellation could leave suspended. httpcore's own for bytes was one:
a call cancelled as its body was being written left it for the garbage collector, which
trio warns of ("Async generator ... was garbage collected before it had been exhausted"),
and an application running with warnings as errors broke."""

from __future__ import annotations

import gc
import inspect
import warnings

import pytest
import trio

import switchman
from switchman.adapters._pool import Body
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, ask, http_fleet, model


async def test_a_body_is_its_bytes_in_one_piece_each_time_it_is_sent() -> None:
    body = Body(b'{"a":1}')
    for _ in range(2):  # (a request re-sent on a new connection is sent again)
        chunks = aiter(body)
        assert not inspect.isasyncgen(chunks)
        assert [chunk async for chunk in chunks] == [b'{"a":1}']


@pytest.mark.parametrize("proxied", [False, True], ids=["direct", "httpx"])
async def test_calls_cancelled_as_their_request_goes_leave_nothing_suspended(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, proxied: bool
) -> None:
    """Directly through the pool, or through httpx's client layer, which a proxy in the
    environment takes (loopback left out of it here: the same path, no proxy to run)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    if proxied:
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    config = http_fleet(server, [model("openai", "healthy")])
    left = []
    async with switchman.open_router(config, env=ENV) as router:
        await router.call(ask("openai/healthy"))  # (a connection in the pool)
        for i in range(180):  # 0 to 3 ms after each call's start: about 1 in 25 warned
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                with trio.move_on_after(0.00005 * (i % 60)):
                    await router.call(ask("openai/healthy"))
                await trio.sleep(0.002)
                gc.collect()
            left += [str(w.message) for w in said if "garbage collected" in str(w.message)]
    assert left == []
