"""A misspelt model name is answered with the names it may have meant, and only with
names the asking key may use: through the real server, on each way in."""

from __future__ import annotations

import json

import attrs
import trio
from trio_websocket import open_websocket_url

from switchman.catalog import KeySpec, ModelSpec, RouteSpec
from tests.gateway._fakes import KEYS, FakeRouter, bearer, make_config, running_gateway

A = bearer("secret-a")  # may use fast, slow and sim/*
OPS = bearer("secret-ops")  # the admin


async def test_the_openai_endpoint_suggests_only_what_the_key_may_use() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    body = {"model": "gpt-y", "messages": [{"role": "user", "content": "hi"}]}
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            admin = await gw.client.post("/v1/chat/completions", json=body, headers=OPS)
            assert admin.status_code == 404
            assert "did you mean 'gpt-x'?" in admin.json()["error"]["message"]
            team = await gw.client.post("/v1/chat/completions", json=body, headers=A)
            assert team.status_code == 404
            said = team.json()["error"]["message"]
            assert said.startswith("unknown model or route 'gpt-y'") and "gpt-x" not in said
            body["model"] = "FAST"
            r = await gw.client.post("/v1/chat/completions", json=body, headers=A)
            assert "did you mean 'fast'?" in r.json()["error"]["message"]
            r = await gw.client.get("/v1/models/fsat", headers=A)
            assert r.status_code == 404 and "did you mean 'fast'?" in r.json()["error"]["message"]
            assert router.calls == []


async def test_jobs_and_the_websocket_name_the_fields_with_their_hints() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    call = {"prompt": "x", "model": "fsat", "options": {"fallback": ["slwo"]}}
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call", json=call, headers=A)
            assert r.status_code == 422
            said = {d["field"]: d["message"] for d in r.json()["error"]["details"]}
            assert said == {
                "model": "unknown model or route 'fsat'; did you mean 'fast'?",
                "options.fallback[0]": "unknown model 'slwo'; did you mean 'slow'?",
            }
            # beside another bad field (the call does not parse): the same words
            r = await gw.client.post("/call", json={**call, "prompt": 5}, headers=A)
            said = {d["field"]: d["message"] for d in r.json()["error"]["details"]}
            assert said["model"] == "unknown model or route 'fsat'; did you mean 'fast'?"
            url = f"ws://{gw.host}:{gw.port}/ws"
            async with open_websocket_url(url, extra_headers=[("x-api-key", "secret-a")]) as ws:
                submit = {"type": "call", "call": {"prompt": 5, "model": "gpt-y"}}
                await ws.send_message(json.dumps(submit))
                reply = json.loads(await ws.get_message())
                while reply.get("type") != "error":
                    reply = json.loads(await ws.get_message())
                text = json.dumps(reply)
                assert "unknown model or route 'gpt-y'" in text and "gpt-x" not in text
            assert router.calls == []


async def test_retrieving_a_known_model_that_cannot_answer_says_why() -> None:
    config = make_config(keys=KEYS)
    other = attrs.evolve(
        config.providers["other"], disabled_reason="missing API key: set OTHER_API_KEY"
    )
    config = attrs.evolve(config, providers={**config.providers, "other": other})
    router = FakeRouter(config)
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            r = await gw.client.get("/v1/models/gpt-x", headers=OPS)
            assert r.status_code == 404
            said = r.json()["error"]["message"]
            assert said.startswith(
                "model 'gpt-x' cannot answer now (gpt-x: provider other is not in service:"
                " missing API key: set OTHER_API_KEY)"
            )
            # by its provider's id too, and never "did you mean" itself
            r = await gw.client.get("/v1/models/gpt-x-1", headers=OPS)
            assert "cannot answer now" in r.json()["error"]["message"]
            # a key that may not use it is told so; another key is not told the reason
            r = await gw.client.get("/v1/models/gpt-x", headers=A)
            said = r.json()["error"]["message"]
            assert said.startswith("this key may not use model 'gpt-x' (GET /v1/models lists")
            r = await gw.client.get("/v1/models/gpt-x", headers=bearer("secret-b"))
            said = r.json()["error"]["message"]
            assert "not in service" in said and "OTHER_API_KEY" not in said


async def test_a_model_is_retrieved_by_its_providers_id() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            r = await gw.client.get("/v1/models/gpt-x-1", headers=OPS)
            assert r.status_code == 200 and r.json()["id"] == "gpt-x"


async def test_a_route_that_cannot_answer_names_only_the_members_the_key_may_use() -> None:
    config = make_config(
        keys=(*KEYS, KeySpec(key_env="KEY_Z", handle="z", secret="secret-z", models=("z",)))
    )
    down = "missing API key: set OTHER_API_KEY"
    other = attrs.evolve(config.providers["other"], disabled_reason=down)
    other2 = attrs.evolve(other, name="other2")
    z = ModelSpec(alias="z", provider="other2", model_id="z-1")
    config = attrs.evolve(
        config,
        providers={**config.providers, "other": other, "other2": other2},
        models={**config.models, "z": z},
        routes={**config.routes, "mix": RouteSpec(name="mix", chain=("gpt-x", "z"))},
    )
    router = FakeRouter(config)
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            r = await gw.client.get("/v1/models/mix", headers=bearer("secret-z"))
            said = r.json()["error"]["message"]
            assert said.startswith("route 'mix' cannot answer now (z: provider other2 is not")
            assert "gpt-x" not in said
            r = await gw.client.get("/v1/models/mix", headers=OPS)  # the admin: every member
            assert "gpt-x" in r.json()["error"]["message"]


async def test_a_key_granted_a_route_is_not_offered_its_members_by_name() -> None:
    keys = (*KEYS, KeySpec(key_env="KEY_R", handle="r", secret="secret-r", models=("best",)))
    router = FakeRouter(make_config(keys=keys))
    body = {"model": "slwo", "messages": [{"role": "user", "content": "hi"}]}
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            # slow is in best's chain: the key reaches it through the route, not by name
            r = await gw.client.post("/v1/chat/completions", json=body, headers=bearer("secret-r"))
            said = r.json()["error"]["message"]
            assert said.startswith("unknown model or route 'slwo'") and "'slow'" not in said
            body["model"] = "bets"
            r = await gw.client.post("/v1/chat/completions", json=body, headers=bearer("secret-r"))
            assert "did you mean 'best'?" in r.json()["error"]["message"]


async def test_retrieving_auto_says_why_a_key_granted_only_a_route_may_not_use_it() -> None:
    keys = (*KEYS, KeySpec(key_env="KEY_R", handle="r", secret="secret-r", models=("best",)))
    router = FakeRouter(make_config(keys=keys))
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            r = await gw.client.get("/v1/models/auto", headers=bearer("secret-r"))
            assert r.status_code == 404
            said = r.json()["error"]["message"]
            assert said.startswith("auto: this key may call only the route(s) 'best'"), said
            r = await gw.client.get("/v1/models/auto", headers=OPS)
            assert r.status_code == 200


async def test_a_provider_id_two_aliases_share_reaches_the_one_the_key_may_use() -> None:
    """``sim-fast`` is the id of ``fast`` and of ``house/fast``, one model upstream: a key
    granted only ``house/*`` that names the id is served by ``house/fast``, not refused
    for ``fast``; a key that may use both gets the first configured."""
    config = make_config(keys=KEYS)
    house = ModelSpec(alias="house/fast", provider="sim", model_id="sim-fast")
    config = attrs.evolve(config, models={**config.models, house.alias: house})
    house_key = KeySpec(key_env="KEY_H", handle="house", secret="secret-h", models=("house/*",))
    config = attrs.evolve(config, keys=(*config.keys, house_key))
    router = FakeRouter(config)
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            for key, alias in (("secret-h", "house/fast"), ("secret-ops", "fast")):
                r = await gw.client.post(
                    "/call?wait=10", json={"prompt": "x", "model": "sim-fast"}, headers=bearer(key)
                )
                assert r.status_code == 200, r.text
                assert router.calls[-1][0].model == alias
                body = {"model": "sim-fast", "messages": [{"role": "user", "content": "hi"}]}
                r = await gw.client.post("/v1/chat/completions", json=body, headers=bearer(key))
                assert r.status_code == 200, r.text
                assert router.calls[-1][0].model == alias
                r = await gw.client.get("/v1/models/sim-fast", headers=bearer(key))
                assert r.status_code == 200 and r.json()["id"] == alias


async def test_a_provider_id_models_of_two_providers_share_is_told_apart_by_key() -> None:
    """``sim-fast`` is also the id of a model of the other provider: the admin, who may
    use both, is asked to name one (only those it may use are named, on each way in);
    team A, which may use only the simulator's, is served by it."""
    config = make_config(keys=KEYS)
    twin = ModelSpec(alias="other/fast", provider="other", model_id="sim-fast")
    config = attrs.evolve(config, models={**config.models, twin.alias: twin})
    router = FakeRouter(config)
    said = "'sim-fast' is the id of several models: name one of fast, other/fast"
    body = {"model": "sim-fast", "messages": [{"role": "user", "content": "hi"}]}
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            r = await gw.client.post(
                "/call", json={"prompt": "x", "model": "sim-fast"}, headers=OPS
            )
            assert r.status_code == 422
            assert r.json()["error"]["details"][0]["message"] == said
            r = await gw.client.post("/v1/chat/completions", json=body, headers=OPS)
            assert r.status_code == 404 and r.json()["error"]["message"].startswith(said)
            r = await gw.client.post("/v1/chat/completions", json=body, headers=A)
            assert r.status_code == 200, r.text
            assert router.calls[-1][0].model == "fast"
