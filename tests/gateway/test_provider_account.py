"""A provider refusing switchman's own account, through the real path: the official SDK →
the gateway → the real router → a fake provider server speaking OpenAI's and Anthropic's
wire formats. A rejected key and a used-up quota are both 502s the SDK does not repeat,
each named for what it is."""

from __future__ import annotations

import functools
from typing import Any

import openai
import pytest
import trio

import switchman
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, KEY, ask, http_fleet, model
from tests.gateway._fakes import running_gateway


def _ask(base_url: str, alias: str) -> Any:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=2) as client:
        return client.chat.completions.create(
            model=alias, messages=[{"role": "user", "content": "hi"}], max_tokens=50
        )


@pytest.mark.parametrize(
    ("alias", "code", "said"),
    [
        ("openai/bad-key", "provider_key_rejected", "rejected switchman's API key"),
        ("openai/quota-exhausted", "provider_quota_exhausted", "no quota or credit left"),
        ("anthropic/spend-limit", "provider_quota_exhausted", "no quota or credit left"),
        ("gemini/quota-exhausted", "provider_quota_exhausted", "no quota or credit left"),
    ],
)
async def test_a_rejected_key_and_a_used_up_quota_are_told_apart(
    alias: str, code: str, said: str, nursery: trio.Nursery
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    provider, behaviour = alias.split("/")
    config = http_fleet(server, [model(provider, behaviour)])
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            with pytest.raises(openai.APIStatusError) as info:
                await trio.to_thread.run_sync(functools.partial(_ask, gw.base_url, alias))
            assert info.value.status_code == 502
            assert info.value.code == code
            assert said in info.value.message
            assert KEY not in info.value.message
            status = {p.name: p for p in router.status().providers}[provider]
            reason = status.disabled_reason or ""
            (held,) = status.models
    # sent once: the SDK was told not to repeat it (x-should-retry: false)
    assert len(server.requests(alias)) == 1
    # the provider is held out for what it is; Gemini's quota per day is the model's own
    # (GenerateRequestsPerDayPerProjectPerModel): that model alone is
    expected = "auth error" if behaviour == "bad-key" else "quota exhausted"
    if provider == "gemini":
        assert reason == "" and (held.held_out or "").startswith(expected), held
    else:
        assert reason.startswith(expected), reason


async def test_a_models_own_used_up_quota_holds_that_model_alone(nursery: trio.Nursery) -> None:
    """Gemini's per-model daily quota ran out for one model: its sibling on the provider,
    with its own quota, keeps answering (the whole provider was held out for 5 minutes)."""
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    spent, fine = model("gemini", "quota-exhausted"), model("gemini", "healthy")
    config = http_fleet(server, [spent, fine], routes={"r": (spent.alias, fine.alias)})
    with trio.fail_after(30):
        async with switchman.open_router(config, env=ENV) as router:
            first = await router.call(ask("r"))
            second = await router.call(ask("r"))
            (gemini,) = [p for p in router.status().providers if p.name == "gemini"]
    assert (first.status, first.model) == (second.status, second.model) == ("complete", fine.alias)
    assert gemini.disabled_reason is None
    held = {m.alias: m.held_out for m in gemini.models}
    assert (held[spent.alias] or "").startswith("quota exhausted") and held[fine.alias] is None
    assert len(server.requests(spent.alias)) == 1  # held: not asked again
