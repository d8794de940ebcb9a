"""Every route's contract over a real socket (open gateway: no keys configured)."""

from __future__ import annotations

import trio

from switchman._version import __version__
from switchman.gateway import openapi_document
from switchman.gateway._app import ROUTES
from tests.gateway._fakes import PROVIDER_SECRET, FakeRouter, make_config, running_gateway


async def test_post_call_then_result() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call", json={"prompt": "hello", "model": "fast"})
            assert r.status_code == 202
            body = r.json()
            assert body["status"] == "queued" and body["job_id"].startswith("job_")
            assert r.headers["location"] == f"/result/{body['job_id']}"
            r = await gw.client.get(f"/result/{body['job_id']}", params={"wait": 5})
            assert r.status_code == 200
            job = r.json()
            assert job["job_id"] == body["job_id"] and job["status"] == "complete"
            assert job["result"]["answer"] == "echo hello"
            assert job["result"]["model"] == "fast"
            assert job["result"]["job_id"] == body["job_id"]
            assert job["submitted_at"] <= job["started_at"] <= job["finished_at"]
            # the router got the job id with the call
            assert router.calls[0][1] == body["job_id"]


async def test_post_call_wait_answers_200_when_done_in_time() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "hi", "model": "slow"})
            assert r.status_code == 200
            assert r.json()["status"] == "complete"
            assert r.json()["result"]["answer"] == "echo hi"


async def test_post_call_wait_answers_202_when_not_done_in_time() -> None:
    router = FakeRouter(make_config(), slow_s=2.0)
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            start = trio.current_time()
            r = await gw.client.post("/call?wait=0.2", json={"prompt": "hi", "model": "slow"})
            assert r.status_code == 202
            assert r.json()["status"] == "running"
            assert trio.current_time() - start < 1.5
            job_id = r.json()["job_id"]
            r = await gw.client.get(f"/result/{job_id}")
            assert r.json()["status"] == "running" and "result" not in r.json()
            r = await gw.client.get(f"/result/{job_id}?wait=0.1")
            assert r.json()["status"] == "running"
            r = await gw.client.get(f"/result/{job_id}?wait=5")
            assert r.json()["status"] == "complete"


async def test_a_failed_call_is_a_failed_job_with_its_errors() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "hi", "model": "nope"})
            assert r.status_code == 200
            job = r.json()
            assert job["status"] == "failed"
            assert job["result"]["errors"][0]["code"] == "no_eligible_model"


async def test_a_router_bug_fails_the_job_not_the_gateway() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "boom", "model": "fast"})
            assert r.status_code == 200
            assert r.json()["status"] == "failed"
            assert r.json()["result"]["errors"][0]["code"] == "internal_error"
            r = await gw.client.post("/call?wait=5", json={"prompt": "fine", "model": "fast"})
            assert r.json()["status"] == "complete"


async def test_jobs_lists_recent_jobs_with_filters() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            ids = []
            for model in ("fast", "nope", "fast"):
                r = await gw.client.post("/call?wait=5", json={"prompt": "x", "model": model})
                ids.append(r.json()["job_id"])
            r = await gw.client.get("/jobs")
            assert r.status_code == 200
            jobs = r.json()["jobs"]
            assert [j["job_id"] for j in jobs] == ids[::-1]
            assert jobs[0]["requested_model"] == "fast" and jobs[0]["model"] == "fast"
            assert jobs[0]["cost_usd"] == 0.002 and jobs[1]["cost_usd"] == 0.0
            assert "result" not in jobs[0]
            r = await gw.client.get("/jobs", params={"status": "failed"})
            assert [j["job_id"] for j in r.json()["jobs"]] == [ids[1]]
            r = await gw.client.get("/jobs", params={"limit": 2})
            assert len(r.json()["jobs"]) == 2


async def test_health() -> None:
    router = FakeRouter(make_config())
    router.breakers["slow"] = "open"
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "fast"})
            r = await gw.client.get("/health")
            assert r.status_code == 200
            h = r.json()
            assert h["status"] == "ok" and h["version"] == __version__
            assert h["simulated"] is True and h["uptime_s"] >= 0
            assert h["jobs"] == {"queued": 0, "running": 0, "complete": 1, "failed": 0}
            sim = next(p for p in h["providers"] if p["name"] == "sim")
            breakers = {m["alias"]: m["breaker"] for m in sim["models"]}
            assert breakers["slow"] == "open" and breakers["fast"] == "closed"


async def test_health_is_degraded_when_every_model_is_open() -> None:
    router = FakeRouter(make_config())
    for alias in router.config.models:
        router.breakers[alias] = "open"
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            assert (await gw.client.get("/health")).json()["status"] == "degraded"


async def test_health_is_degraded_when_the_only_closed_model_is_held_out() -> None:
    router = FakeRouter(make_config())
    for alias in router.config.models:
        router.breakers[alias] = "open"
    router.breakers["fast"] = "closed"
    router.held["fast"] = "not served by sim: model not found"
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            assert (await gw.client.get("/health")).json()["status"] == "degraded"
            router.held.clear()
            assert (await gw.client.get("/health")).json()["status"] == "ok"


async def test_providers_shows_catalog_with_live_state_and_no_secrets() -> None:
    router = FakeRouter(make_config())
    router.breakers["slow"] = "open"
    router.rate_limited["fast"] = 1.5
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.get("/providers")
            assert r.status_code == 200
            body = r.json()
            by_name = {p["name"]: p for p in body["providers"]}
            sim, other = by_name["sim"], by_name["other"]
            assert sim["in_flight"] == 1 and sim["rate_headroom"] == {"rpm": 0.5}
            slow = next(m for m in sim["models"] if m["alias"] == "slow")
            assert slow["breaker"] == "open" and 0 < slow["retry_in_s"] <= 5
            assert slow["stats"] == {"unknown": {"n": 3.0, "success_rate": 1.0}}
            assert slow["model_id"] == "sim-slow" and slow["rate_limited_for_s"] == 0.0
            fast = next(m for m in sim["models"] if m["alias"] == "fast")
            assert fast["rate_limited_for_s"] == 1.5  # held back by the provider's 429
            assert slow["provider_remaining"] == {}  # the fake router's models say nothing
            assert other["disabled"] is True
            assert other["disabled_reason"] == "missing API key: set OTHER_API_KEY"
            assert other["base_url"] == "https://api.example.com/v1"
            assert body["routes"] == {"best": ["fast", "slow"]}
            await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "gpt-x"})
            for path in ("/providers", "/health", "/metrics", "/v1/models", "/jobs"):
                text = (await gw.client.get(path)).text
                assert PROVIDER_SECRET not in text and "sekrit" not in text, path


async def test_feedback_reaches_the_router() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "fast"})
            job_id = r.json()["job_id"]
            call_id = r.json()["result"]["call_id"]
            r = await gw.client.post(f"/feedback/{job_id}", json={"score": 0.8, "intent": "code"})
            assert r.status_code == 200
            assert r.json() == {"job_id": job_id, "call_id": call_id, "score": 0.8}
            assert router.feedback_given == [(call_id, 0.8, "code")]


async def test_feedback_on_an_unfinished_or_unanswered_job_is_409() -> None:
    router = FakeRouter(make_config(), slow_s=3)
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call", json={"prompt": "x", "model": "slow"})
            r = await gw.client.post(f"/feedback/{r.json()['job_id']}", json={"score": 1})
            assert r.status_code == 409
            assert r.json()["error"]["code"] == "not_finished"
            assert router.feedback_given == []


async def test_feedback_on_a_failed_job_says_nothing_answered_it() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "picky"})
            assert r.json()["status"] == "failed"
            r = await gw.client.post(f"/feedback/{r.json()['job_id']}", json={"score": 1})
            assert r.status_code == 409
            assert r.json()["error"]["code"] == "not_answered"
            assert "no model answered it" in r.json()["error"]["message"]
            assert router.feedback_given == []


async def test_feedback_for_a_call_the_router_forgot_is_404() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "fast"})
            router.results.clear()
            r = await gw.client.post(f"/feedback/{r.json()['job_id']}", json={"score": 1})
            assert r.status_code == 404


async def test_openapi_describes_every_route() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.get("/openapi.json")
            assert r.status_code == 200
            doc = r.json()
            assert doc == openapi_document()
            assert doc["openapi"].startswith("3.")
            for method, path, _ in ROUTES:
                assert method.lower() in doc["paths"][path], (method, path)
            assert set(doc["paths"]) == {path for _, path, _ in ROUTES}
            for schema in ("Call", "Result", "Job", "Error", "ChatCompletionRequest"):
                assert schema in doc["components"]["schemas"]


async def test_unknown_route_is_404_and_wrong_method_405() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.get("/nope")
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
            r = await gw.client.get("/call")
            assert r.status_code == 405 and r.headers["allow"] == "POST"
            r = await gw.client.get("/ws")
            assert r.status_code == 426
