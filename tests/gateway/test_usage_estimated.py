"""Whether ``usage`` and ``cost_usd`` are the providers' reports or switchman's bound,
through the real path: the fake provider server → the real router → the gateway's ``/v1``
for the official SDK. A stream cut short reports no usage: the attempt is billed at the
most its text could cost, and the ``switchman`` object says the figures are a bound."""

from __future__ import annotations

import functools

import trio

import switchman
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, http_fleet, model
from tests.gateway._fakes import running_gateway, sdk_ask


async def test_the_sdk_is_told_when_usage_and_cost_are_switchmans_bound(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    models = [model("openai", "cut"), model("anthropic", "healthy")]
    routes = {"cut-then-healthy": ("openai/cut", "anthropic/healthy")}
    config = http_fleet(server, models, routes=routes)
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            ask = functools.partial(sdk_ask, gw.base_url)
            reported = await trio.to_thread.run_sync(ask, "anthropic/healthy", False)
            cut_whole = await trio.to_thread.run_sync(ask, "cut-then-healthy", False)
            cut_streamed = await trio.to_thread.run_sync(ask, "cut-then-healthy", True)
    assert reported.model_extra["switchman"]["usage_estimated"] is False
    for extra in (cut_whole.model_extra, cut_streamed[-1].model_extra):
        info = extra["switchman"]
        assert info["model"] == "anthropic/healthy" and info["attempts"] == 2, info
        assert info["usage_estimated"] is True
