"""What a team's key learns of the platform from its own calls, through the real path:
HTTP and the websocket → the gateway → the real router → a fake provider server. Models
the key cannot use stay unnamed; why a provider is disabled or held out (the variable its
key should be in, the words it answered switchman's key with) stays with the admin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from trio_websocket import open_websocket_url

import switchman
from switchman.catalog import KeySpec
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, http_fleet, model
from tests.gateway._fakes import Running, bearer, running_gateway

A = bearer("secret-team-a")
B = bearer("secret-team-b")
OPS = bearer("secret-ops-00")
#: what only the admin may read: the variable of a disabled provider's key, and the
#: words the provider answered switchman's key with
INTERNAL = ("ANTHROPIC_TEST_KEY", "Incorrect API key")
#: models team a may not use
OTHERS = ("openai/bad-key", "gemini/healthy")


@asynccontextmanager
async def _platform(nursery: trio.Nursery) -> AsyncIterator[Running]:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    config = http_fleet(
        server,
        [
            model("openai", "bad-key"),
            model("openai", "healthy"),
            model("anthropic", "healthy"),
            model("gemini", "healthy"),
        ],
        routes={"team-a-route": ("anthropic/healthy", "openai/healthy")},
    )
    anthropic = attrs.evolve(
        config.providers["anthropic"], disabled_reason="missing API key: set ANTHROPIC_TEST_KEY"
    )
    config = attrs.evolve(
        config,
        providers={**config.providers, "anthropic": anthropic},
        keys=(
            KeySpec(
                key_env="KEY_A",
                handle="team-a",
                secret="secret-team-a",
                models=("openai/healthy", "anthropic/healthy"),
            ),
            KeySpec(key_env="KEY_B", handle="team-b", secret="secret-team-b", models=OTHERS[:1]),
            KeySpec(key_env="KEY_OPS", handle="ops", secret="secret-ops-00", admin=True),
        ),
    )
    async with switchman.open_router(config, env=ENV) as router, running_gateway(router) as gw:
        # team b's model gets openai held out: its key is rejected
        r = await gw.client.post(
            "/call?wait=10", json={"prompt": "x", "model": "openai/bad-key"}, headers=B
        )
        assert r.json()["result"]["errors"][0]["code"] == "permission_denied"
        yield gw


def _assert_nothing_internal(text: str) -> None:
    for word in (*INTERNAL, *OTHERS):
        assert word not in text, (word, text)


async def test_a_keys_results_name_neither_other_models_nor_why_providers_are_out(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(30):
        async with _platform(nursery) as gw:
            c = gw.client
            auto = (await c.post("/call?wait=10", json={"prompt": "x"}, headers=A)).json()
            route = await c.post(
                "/call?wait=10", json={"prompt": "x", "model": "team-a-route"}, headers=A
            )
            again = await c.get(f"/result/{route.json()['job_id']}", headers=A)
            v1 = await c.post(
                "/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "x"}]},
                headers=A,
            )
            admin = await c.get(f"/result/{route.json()['job_id']}", headers=OPS)
    # auto: the only model team a may use is left out, for a reason it may read
    result = auto["result"]
    assert result["errors"][0]["code"] == "no_eligible_model"
    assert result["trace"]["eligibility"]["excluded"] == [
        {"alias": "openai/healthy", "reason": "provider openai unavailable"}
    ]
    assert result["errors"][0]["message"] == (
        "no eligible model: openai/healthy: provider openai unavailable"
    )
    _assert_nothing_internal(json.dumps(auto))
    # a route of a disabled and a held-out provider
    assert route.json() == again.json()
    excluded = route.json()["result"]["trace"]["eligibility"]["excluded"]
    assert excluded == [
        {"alias": "anthropic/healthy", "reason": "provider anthropic unavailable"},
        {"alias": "openai/healthy", "reason": "provider openai unavailable"},
    ]
    _assert_nothing_internal(route.text)
    # /v1: the same code as before, the message cut alike
    assert v1.status_code == 503 and v1.json()["error"]["code"] == "no_eligible_model"
    assert v1.json()["error"]["message"] == (
        "no eligible model: openai/healthy: provider openai unavailable"
    )
    # the admin reads everything
    reasons = [e["reason"] for e in admin.json()["result"]["trace"]["eligibility"]["excluded"]]
    assert reasons[0] == "provider disabled: missing API key: set ANTHROPIC_TEST_KEY"
    assert reasons[1].startswith("provider openai held out: auth error: Incorrect API key")


async def test_a_keys_websocket_events_and_results_are_cut_alike(nursery: trio.Nursery) -> None:
    messages: list[dict[str, Any]] = []
    with trio.fail_after(30):
        async with (
            _platform(nursery) as gw,
            open_websocket_url(gw.ws_url, extra_headers=[("x-api-key", "secret-team-a")]) as ws,
        ):
            await ws.send_message(json.dumps({"type": "subscribe"}))
            await ws.send_message(json.dumps({"type": "call", "call": {"prompt": "x"}}))
            while not messages or messages[-1]["type"] != "result":
                messages.append(json.loads(await ws.get_message()))
    by_type = {m["type"]: m for m in messages}
    assert by_type["call.routed"]["excluded"] == [
        {"alias": "openai/healthy", "reason": "provider openai unavailable"}
    ]
    assert by_type["call.failed"]["message"] == (
        "no eligible model: openai/healthy: provider openai unavailable"
    )
    assert by_type["result"]["result"]["errors"][0]["message"] == by_type["call.failed"]["message"]
    _assert_nothing_internal(json.dumps(messages))


async def test_a_key_is_told_why_its_own_models_were_left_out(nursery: trio.Nursery) -> None:
    """A "no eligible model" message tells six exclusions, chosen among every model; when
    all six were other teams' models, the key's view cut them and left it a bare "no
    eligible model" (on /v1 "... for this request: and N more"). It now reads its own."""
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    others = ("openai", "anthropic", "gemini", "mistral", "groq", "deepseek", "xai")
    config = http_fleet(
        server, [*(model(p, "healthy") for p in others), model("perplexity", "healthy")]
    )
    config = attrs.evolve(
        config,
        keys=(
            KeySpec(
                key_env="KEY_A", handle="team-a", secret="secret-team-a", models=("perplexity/*",)
            ),
            KeySpec(key_env="KEY_OPS", handle="ops", secret="secret-ops-00", admin=True),
        ),
    )
    call = {"prompt": "x", "options": {"max_cost_usd": 1e-9}}
    with trio.fail_after(30):
        async with switchman.open_router(config, env=ENV) as router, running_gateway(router) as gw:
            mine = await gw.client.post("/call?wait=10", json=call, headers=A)
            admin = await gw.client.post("/call?wait=10", json=call, headers=OPS)
            v1 = await gw.client.post(
                "/v1/chat/completions",
                json={
                    "model": "auto",
                    "messages": [{"role": "user", "content": "x"}],
                    "switchman": {"options": {"max_cost_usd": 1e-9}},
                },
                headers=A,
            )
    told = admin.json()["result"]["errors"][0]["message"]
    assert "perplexity/healthy" not in told  # the router told six others
    message = mine.json()["result"]["errors"][0]["message"]
    assert message.startswith("no eligible model: perplexity/healthy: estimated cost $")
    assert not any(f"{p}/healthy" in message for p in others)
    assert v1.status_code == 400
    v1_message = v1.json()["error"]["message"]
    assert v1_message.startswith(
        "no eligible model for this request: perplexity/healthy: estimated cost $"
    )
    assert "more" not in v1_message and not any(f"{p}/healthy" in v1_message for p in others)


async def test_a_provider_held_out_for_now_says_when_it_is_back_to_every_key(
    nursery: trio.Nursery,
) -> None:
    """A provider held out (its key rejected, its actor crashing) showed a team only
    ``disabled``, as if for good; it now says when it is back, still not why."""
    from switchman.actors._provider import MISCONFIGURED_HOLD_S

    with trio.fail_after(30):
        async with _platform(nursery) as gw:
            seen = (await gw.client.get("/providers", headers=A)).json()["providers"]
            openai = next(p for p in seen if p["name"] == "openai")
            assert openai["disabled"] is True
            assert 0 < openai["back_in_s"] <= MISCONFIGURED_HOLD_S
            anthropic = next(p for p in seen if p["name"] == "anthropic")
            assert anthropic["disabled"] is True and "back_in_s" not in anthropic  # (for good)
            _assert_nothing_internal(json.dumps(seen))
            ops = (await gw.client.get("/providers", headers=OPS)).json()["providers"]
            told = next(p for p in ops if p["name"] == "openai")
            assert abs(told["back_in_s"] - openai["back_in_s"]) < 5 and told["disabled_reason"]
