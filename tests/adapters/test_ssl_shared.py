"""The system's certificates are loaded once for the process: each load took about 19 ms,
two a provider, and a router of nine providers opened in about 400 ms every time (a test
suite, a request handler, a notebook opening routers again and again). Real HTTP to the
fake provider server; the figures are in the twentieth session's note, not asserted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

import switchman
from switchman.adapters import _pool
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, http_fleet, model


async def test_routers_opened_again_and_again_load_the_certificates_once(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    loads: list[object] = []
    create = httpx.create_ssl_context

    def counted(*args: Any, **kwargs: Any) -> Any:
        loads.append(args)
        return create(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", counted)
    _pool.system_ssl_context.cache_clear()
    config = http_fleet(
        server, [model("openai", "healthy"), model("anthropic", "healthy"), model("xai", "healthy")]
    )
    contexts = set()
    for _ in range(3):
        with trio.fail_after(10):
            async with switchman.open_router(config, env=ENV) as router:
                result = await router.call(switchman.Call(prompt="hi", model="openai/healthy"))
                assert result.status == "complete", result.errors
        contexts.add(id(_pool.system_ssl_context()))
    assert len(loads) == 1 and len(contexts) == 1
