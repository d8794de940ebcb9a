"""Gateway keys over HTTP: 401/403, per-key isolation, admin views, handle binding."""

from __future__ import annotations

import trio

from tests.gateway._fakes import KEYS, FakeRouter, bearer, make_config, running_gateway

A = bearer("secret-a")
B = bearer("secret-b")
OPS = bearer("secret-ops")


async def test_every_route_but_health_needs_a_key() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            c = gw.client
            requests = [
                c.build_request("POST", "/call", json={"prompt": "x"}),
                c.build_request("GET", "/result/job_x"),
                c.build_request("GET", "/jobs"),
                c.build_request("GET", "/providers"),
                c.build_request("POST", "/feedback/job_x", json={"score": 1}),
                c.build_request("GET", "/v1/models"),
                c.build_request(
                    "POST",
                    "/v1/chat/completions",
                    json={"model": "auto", "messages": [{"role": "user", "content": "x"}]},
                ),
                c.build_request("GET", "/metrics"),
                c.build_request("GET", "/openapi.json"),
            ]
            for request in requests:
                r = await c.send(request)
                assert r.status_code == 401, request.url
                assert r.headers["www-authenticate"] == "Bearer"
                if request.url.path.startswith("/v1/"):
                    assert r.json()["error"]["type"] == "authentication_error"
                else:
                    assert r.json()["error"]["code"] == "unauthorized"
            wrong = await c.get("/jobs", headers=bearer("secret-z"))
            assert wrong.status_code == 401
            assert (await c.get("/health")).status_code == 200
            assert (await c.get("/jobs", headers={"x-api-key": "secret-a"})).status_code == 200
            assert router.calls == []


async def test_a_key_sees_only_its_own_jobs() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            c = gw.client
            job_a = (await c.post("/call?wait=5", json={"prompt": "a"}, headers=A)).json()
            job_b = (await c.post("/call?wait=5", json={"prompt": "b"}, headers=B)).json()
            assert job_a["status"] == job_b["status"] == "complete"
            # another key's job is 404, exactly like an unknown one
            r = await c.get(f"/result/{job_b['job_id']}", headers=A)
            assert r.status_code == 404
            r = await c.post(f"/feedback/{job_b['job_id']}", json={"score": 1}, headers=A)
            assert r.status_code == 404
            assert (await c.get(f"/result/{job_a['job_id']}", headers=A)).status_code == 200
            mine = (await c.get("/jobs", headers=A)).json()["jobs"]
            assert [j["job_id"] for j in mine] == [job_a["job_id"]]
            # admin sees every caller's jobs and can read any of them
            every = (await c.get("/jobs", headers=OPS)).json()["jobs"]
            assert {j["job_id"] for j in every} == {job_a["job_id"], job_b["job_id"]}
            assert (await c.get(f"/result/{job_b['job_id']}", headers=OPS)).status_code == 200


async def test_the_key_handle_becomes_the_caller_and_trust_is_raised() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            body = {"prompt": "x", "caller": {"handle": "someone-else", "account_id": "acct"}}
            r = await gw.client.post("/call?wait=5", json=body, headers=B)
            assert r.json()["handle"] == "team-b"
            call, _ = router.calls[-1]
            assert call.caller.handle == "team-b"
            assert call.caller.key_id == "KEY_B" and call.caller.account_id == "acct"
            assert call.min_trust == "trusted"


async def test_model_allow_list_is_enforced_up_front_with_403() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            c = gw.client
            r = await c.post("/call", json={"prompt": "x", "model": "gpt-x"}, headers=A)
            assert r.status_code == 403
            assert r.json()["error"]["code"] == "permission_denied"
            assert r.json()["error"]["details"][0]["field"] == "model"
            chat = {"model": "gpt-x", "messages": [{"role": "user", "content": "x"}]}
            r = await c.post("/v1/chat/completions", json=chat, headers=A)
            assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
            assert router.calls == []
            assert (
                await c.post("/call", json={"prompt": "x", "model": "gpt-x"}, headers=B)
            ).status_code == 202
            assert (
                await c.post("/call", json={"prompt": "x", "model": "hang"}, headers=A)
            ).status_code == 202


async def test_model_lists_follow_the_allow_list() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            ids_a = {m["id"] for m in (await gw.client.get("/v1/models", headers=A)).json()["data"]}
            assert "gpt-x" not in ids_a and {"auto", "fast", "hang", "best"} <= ids_a
            ids_b = {m["id"] for m in (await gw.client.get("/v1/models", headers=B)).json()["data"]}
            assert "gpt-x" in ids_b


async def test_provider_details_need_an_admin_key() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            plain = (await gw.client.get("/providers", headers=A)).json()
            names = [p["name"] for p in plain["providers"]]
            assert names == ["sim"]  # team-a may not use any model of "other"
            sim = plain["providers"][0]
            assert "in_flight" not in sim and "rate_headroom" not in sim
            assert all("stats" not in m for m in sim["models"])
            assert {m["alias"] for m in sim["models"]} == {
                "fast",
                "slow",
                "hang",
                "cut",
                "nope",
                "late",
                "pricey",
                "picky",
                "toolong",
                "strict",
                "mixed",
                "keyless",
                "sim/echo",
            }
            # metrics show every team's models and providers: an admin's only
            denied = await gw.client.get("/metrics", headers=A)
            assert denied.status_code == 403
            assert denied.json()["error"]["code"] == "permission_denied"
            assert (await gw.client.get("/metrics", headers=OPS)).status_code == 200
            full = (await gw.client.get("/providers", headers=OPS)).json()
            by_name = {p["name"]: p for p in full["providers"]}
            assert by_name["sim"]["in_flight"] == 1
            assert by_name["other"]["disabled_reason"] is not None
            assert "stats" in by_name["sim"]["models"][0]
