"""A gateway key whose ``models`` names a provider may use that provider's models, and
no other provider's whatever their aliases, through the real path: HTTP → the gateway →
the real router → the fake provider server. (The configuration took the name, and then
every call of the key was refused: ``this key may not use any model``.)"""

from __future__ import annotations

import attrs
import trio

import switchman
from switchman.catalog import KeySpec, ModelSpec
from switchman.catalog._keys import allowed_for
from switchman.policy._eligibility import is_allowed
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from tests._httpfleet import ENV, http_fleet, model
from tests.gateway._fakes import bearer, running_gateway

TEAM = bearer("secret-team-x")


async def test_a_key_naming_a_provider_may_use_its_models_and_no_others(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    config = http_fleet(
        server,
        [model("openai", "healthy"), model("anthropic", "healthy"), model("gemini", "healthy")],
    )
    # another provider's model under an alias that begins with the name (Groq's own ids do)
    lookalike = attrs.evolve(config.models["gemini/healthy"], alias="anthropic/lookalike")
    config = attrs.evolve(config, models={**config.models, lookalike.alias: lookalike})
    key = KeySpec(key_env="KEY_X", handle="team-x", secret="secret-team-x", models=("anthropic",))
    config = attrs.evolve(config, keys=(key,))
    with trio.fail_after(30):
        async with switchman.open_router(config, env=ENV) as router, running_gateway(router) as gw:
            c = gw.client
            auto = await c.post("/call?wait=10", json={"prompt": "x"}, headers=TEAM)
            named = await c.post(
                "/call?wait=10", json={"prompt": "x", "model": "anthropic/healthy"}, headers=TEAM
            )
            other = await c.post(
                "/call?wait=10", json={"prompt": "x", "model": "openai/healthy"}, headers=TEAM
            )
            listed = await c.get("/v1/models", headers=TEAM)
            lookalike = await c.post(
                "/call?wait=10", json={"prompt": "x", "model": "anthropic/lookalike"}, headers=TEAM
            )
    assert auto.json()["result"]["model"] == "anthropic/healthy", auto.text
    excluded = auto.json()["result"]["trace"]["eligibility"]["excluded"]
    assert {e["alias"] for e in excluded} <= {
        "openai/healthy",
        "gemini/healthy",
        "anthropic/lookalike",
    }
    assert named.json()["result"]["status"] == "complete", named.text
    assert other.status_code == 403 and "openai/healthy" in other.text
    assert lookalike.status_code == 403, lookalike.text
    assert [m["id"] for m in listed.json()["data"] if m["id"] != "auto"] == ["anthropic/healthy"]


def test_a_routes_name_grants_the_route_not_a_provider_of_that_name() -> None:
    """``gemini`` is a route's name in the catalog as well as a provider's: a key naming it
    is granted the route (its chain, for calls to it), as before."""
    from switchman.catalog import RouteSpec

    def spec(alias: str, provider: str) -> ModelSpec:
        return ModelSpec(
            alias=alias, provider=provider, model_id=alias, input_per_mtok=1, output_per_mtok=1
        )

    models = {
        "gemini/a": spec("gemini/a", "gemini"),
        "anthropic/b": spec("anthropic/b", "anthropic"),
        "gpt-x": spec("gpt-x", "openai"),
        "openai/oss": spec("openai/oss", "groq"),  # (another provider's, by its own id)
    }
    routes = {"gemini": RouteSpec(name="gemini", chain=("gemini/a", "anthropic/b"))}
    providers = ("gemini", "anthropic", "openai", "groq")

    def allowed(entries: tuple[str, ...], target: str = "auto") -> set[str]:
        patterns = allowed_for(entries, target, routes, providers)
        return {alias for alias, m in models.items() if is_allowed(m, patterns)}

    # a route's name (a provider's too) grants the route alone, its chain for calls to it
    assert allowed(("gemini",)) == set()
    assert allowed(("gemini",), "gemini") == {"gemini/a", "anthropic/b"}
    # a provider's name: its models, not another provider's aliased after it
    assert allowed(("openai",)) == {"gpt-x"}
    assert allowed(("groq",)) == {"openai/oss"}
    # (a glob matches an alias or provider/alias, as written: both)
    assert allowed(("openai/*",)) == {"gpt-x", "openai/oss"}


async def test_a_route_granted_alone_reaches_no_other_model_of_a_provider_named_like_its_member(
    nursery: trio.Nursery,
) -> None:
    """A one-model server's alias is often its provider's name (``vllm``). A key granted
    only the route ``fast`` (chain: that alias) got answers from the provider's other
    model through ``options.fallback: ["auto"]``: the chain's alias, granted as a bare
    pattern, read as the whole provider, and a fallback of ``auto`` went unchecked."""
    from switchman.catalog import RouteSpec

    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    config = http_fleet(server, [model("openai", "healthy", alias="openai"), model("openai", "x")])
    config = attrs.evolve(
        config,
        routes={"fast": RouteSpec(name="fast", chain=("openai",))},
        keys=(KeySpec(key_env="KEY_X", handle="team-x", secret="secret-team-x", models=("fast",)),),
    )
    patterns = allowed_for(("fast",), "fast", config.routes, config.providers)
    assert [a for a, m in config.models.items() if is_allowed(m, patterns)] == ["openai"]
    with trio.fail_after(30):
        async with switchman.open_router(config, env=ENV) as router, running_gateway(router) as gw:
            c = gw.client
            route = await c.post(
                "/call?wait=10", json={"prompt": "x", "model": "fast"}, headers=TEAM
            )
            widened = await c.post(
                "/call?wait=10",
                json={"prompt": "x", "model": "fast", "options": {"fallback": ["auto"]}},
                headers=TEAM,
            )
    assert route.json()["result"]["model"] == "openai", route.text
    assert widened.status_code == 403, widened.text
    assert "options.fallback[0]" in widened.text and "auto" in widened.text
