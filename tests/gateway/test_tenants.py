"""One gateway shared by several teams, through the real server and a real SQLite file:
what one team's key can do to, or learn of, another's."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from trio_websocket import open_websocket_url

import switchman
from switchman.catalog import KeySpec, config_from_dict
from switchman.store._db import _PRUNE_EVERY, _SCHEMA
from tests.gateway._fakes import KEYS, FakeRouter, bearer, make_config, running_gateway

A = bearer("secret-a")
B = bearer("secret-b")
OPS = bearer("secret-ops")


async def test_one_teams_flood_of_jobs_never_evicts_another_teams_job(tmp_path: Path) -> None:
    config = make_config(keys=KEYS, db=str(tmp_path / "jobs.db"))
    config = attrs.evolve(config, server=attrs.evolve(config.server, job_retention_count=50))
    router = FakeRouter(config)
    with trio.fail_after(60):
        async with running_gateway(router) as gw:
            c = gw.client
            job_b = (await c.post("/call?wait=5", json={"prompt": "b"}, headers=B)).json()
            assert job_b["status"] == "complete"
            # a's jobs, failing at once, up to the insert that makes the store prune
            for _ in range(_PRUNE_EVERY - 1):
                r = await c.post("/call", json={"prompt": "a", "model": "nope"}, headers=A)
                assert r.status_code == 202
            r = await c.get(f"/result/{job_b['job_id']}", headers=B)
            assert r.status_code == 200, r.text
            assert r.json()["result"]["answer"] == "echo b"
            assert [j["job_id"] for j in (await c.get("/jobs", headers=B)).json()["jobs"]] == [
                job_b["job_id"]
            ]
            kept = (await c.get("/jobs?limit=1000", headers=A)).json()["jobs"]
            assert len(kept) == 49  # a's newest 49: b keeps its one job of the 50


def _old_database(path: Path) -> None:
    """A store as the gateway left it when jobs were owned by the key's variable name."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT INTO jobs (id, status, owner, handle, submitted_at, finished_at, call, result)"
            " VALUES ('job_old', 'complete', 'KEY_A', 'team-a', ?, ?, ?, ?)",
            (
                time.time() - 60,
                time.time() - 50,
                json.dumps({"prompt": "team a's plan"}),
                json.dumps({"answer": "team a's answer"}),
            ),
        )


async def test_jobs_belong_to_the_handle_not_to_the_keys_variable(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    _old_database(db)
    keys = (
        # team a's variable went to a new team; team a rotates between two variables
        KeySpec(key_env="KEY_A", handle="new-team", secret="secret-new"),
        KeySpec(key_env="KEY_A2", handle="team-a", secret="secret-a2"),
        KeySpec(key_env="KEY_A3", handle="team-a", secret="secret-a3"),
    )
    new, a2, a3 = bearer("secret-new"), bearer("secret-a2"), bearer("secret-a3")
    router = FakeRouter(make_config(keys=keys, db=str(db)))
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            c = gw.client
            assert (await c.get("/result/job_old", headers=new)).status_code == 404
            assert (await c.get("/jobs", headers=new)).json()["jobs"] == []
            ws_error = await _ws_subscribe(gw.ws_url, "secret-new", "job_old")
            assert ws_error["error"]["code"] == "not_found"
            old = await c.get("/result/job_old", headers=a2)
            assert old.status_code == 200 and old.json()["result"]["answer"] == "team a's answer"
            # two keys of one handle share its jobs, new ones too
            job = (await c.post("/call?wait=5", json={"prompt": "x"}, headers=a2)).json()
            assert (await c.get(f"/result/{job['job_id']}", headers=a3)).status_code == 200
            listed = (await c.get("/jobs", headers=a3)).json()["jobs"]
            assert [j["job_id"] for j in listed] == [job["job_id"], "job_old"]
            r = await c.post(f"/feedback/{job['job_id']}", json={"score": 1}, headers=new)
            assert r.status_code == 404
            assert (await c.get(f"/result/{job['job_id']}", headers=new)).status_code == 404


async def _ws_subscribe(url: str, secret: str, job_id: str) -> dict[str, Any]:
    async with open_websocket_url(url, extra_headers=[("x-api-key", secret)]) as ws:
        await ws.send_message(json.dumps({"type": "subscribe", "job_id": job_id}))
        answer: dict[str, Any] = json.loads(await ws.get_message())
        return answer


async def test_health_tells_anyone_the_status_and_only_an_admin_what_is_behind_it() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            c = gw.client
            anyone = await c.get("/health")
            wrong = await c.get("/health", headers=bearer("secret-z"))
            team = await c.get("/health", headers=A)
            admin = await c.get("/health", headers=OPS)
            router.breakers = dict.fromkeys(router.config.models, "open")
            degraded = await c.get("/health", headers=A)
    for r in (anyone, wrong, team):
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert (degraded.status_code, degraded.json()) == (200, {"status": "degraded"})
    full = admin.json()
    assert full["status"] == "ok"
    assert {"version", "uptime_s", "jobs", "jobs_in_flight", "providers"} <= set(full)
    assert "gpt-x" in {m["alias"] for p in full["providers"] for m in p["models"]}


async def test_health_without_keys_is_whole_for_anyone() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            body = (await gw.client.get("/health")).json()
    assert body["status"] == "ok" and "providers" in body and "jobs" in body


async def test_without_a_valid_key_no_route_can_be_mapped() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            c = gw.client
            probes = [
                ("GET", "/admin"),
                ("POST", "/jobs"),
                ("DELETE", "/result/x"),
                ("GET", "/v1/x"),
            ]
            for method, path in probes:
                for headers in ({}, bearer("secret-z")):
                    r = await c.request(method, path, headers=headers)
                    assert r.status_code == 401, (method, path)
                    assert "allow" not in r.headers and r.headers["www-authenticate"] == "Bearer"
                    assert path not in r.text
            assert (await c.get("/v1/x")).json()["error"]["type"] == "authentication_error"
            # with a key, what there is to know
            assert (await c.get("/admin", headers=A)).status_code == 404
            wrong = await c.post("/jobs", headers=A)
            assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
            assert (await c.post("/health")).status_code == 405  # /health needs no key
    assert router.calls == []


async def test_without_keys_unknown_routes_are_still_404_and_405() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            assert (await gw.client.get("/admin")).status_code == 404
            assert (await gw.client.post("/jobs")).status_code == 405


async def test_a_route_in_a_keys_models_grants_the_route_not_its_models(tmp_path: Path) -> None:
    env = {"GW_TEAM_C": "team-c-secret-01", "GW_OPS": "ops-secret-0001"}
    config = config_from_dict(
        {
            "server": {"db": str(tmp_path / "r.db")},
            "router": {"stall_ms": 2000, "seed": 5},
            "routes": {
                "team-route": {"chain": ["sim/smart", "sim/balanced"]},
                "mixed": {"chain": ["sim/smart", "sim/fast"]},
            },
            "keys": [
                {"key_env": "GW_TEAM_C", "handle": "team-c", "models": ["team-route"]},
                {"key_env": "GW_OPS", "handle": "ops", "admin": True},
            ],
        },
        env=env,
    )
    (team_c, _) = config.keys
    assert team_c.models == ("team-route",)  # kept as a route, not its chain
    c_key = {"x-api-key": "team-c-secret-01"}

    async def call(c: httpx.AsyncClient, **body: Any) -> httpx.Response:
        return await c.post("/call?wait=20", json={"prompt": "hello", **body}, headers=c_key)

    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=env) as router,
            running_gateway(router) as gw,
        ):
            c = gw.client
            routed = await call(c, model="team-route")
            denied = {name: await call(c, model=name) for name in ("sim/smart", "auto", "mixed")}
            fallback = await call(c, model="team-route", options={"fallback": ["sim/fast"]})
            v1 = await c.post(
                "/v1/chat/completions",
                json={"model": "sim/smart", "messages": [{"role": "user", "content": "hi"}]},
                headers=c_key,
            )
            listed = (await c.get("/v1/models", headers=c_key)).json()["data"]
            one = await c.get("/v1/models/team-route", headers=c_key)
            providers = (await c.get("/providers", headers=c_key)).json()
    # the route answers, from its chain, the router's eligibility agreeing
    result = routed.json()["result"]
    assert routed.status_code == 200 and result["status"] == "complete", result
    assert result["model"] in ("sim/smart", "sim/balanced")
    assert not [
        e for e in result["trace"]["eligibility"]["excluded"] if "not allowed" in e["reason"]
    ]
    # neither its models by name, nor auto over them, nor another route through them
    for name, r in denied.items():
        assert r.status_code == 403, (name, r.text)
    assert fallback.status_code == 403
    assert fallback.json()["error"]["details"][0]["field"] == "options.fallback[0]"
    assert v1.status_code == 403
    assert [m["id"] for m in listed] == ["team-route"]  # not auto, which it may not call
    assert one.status_code == 200 and one.json()["owned_by"] == "switchman-route"
    assert providers["routes"] == {"team-route": ["sim/smart", "sim/balanced"]}
