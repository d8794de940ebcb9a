"""Every route's contract over a real socket (open gateway: no keys configured)."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import pytest
import trio

from switchman._errors import RouterFailed
from switchman._result import Result
from switchman._version import __version__
from switchman.catalog import KeySpec
from switchman.gateway import openapi_document
from switchman.gateway._app import ROUTES
from tests.gateway._fakes import (
    KEYS,
    PROVIDER_SECRET,
    FakeRouter,
    bearer,
    make_config,
    running_gateway,
)


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
            assert jobs[0]["error_code"] is None and jobs[1]["status"] == "failed"
            assert jobs[1]["error_code"] is not None  # why it failed, at a glance
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
            health = (await gw.client.get("/health")).json()
            assert health["status"] == "degraded"
            # the model says why it is out (its breaker alone read closed)
            (sim,) = [p for p in health["providers"] if p["name"] == "sim"]
            fast = next(m for m in sim["models"] if m["alias"] == "fast")
            assert fast == {
                "alias": "fast",
                "breaker": "closed",
                "held_out": "not served by sim: model not found",
            }
            metrics = (await gw.client.get("/metrics")).text.splitlines()
            assert 'switchman_model_available{model="fast",provider="sim"} 0.0' in metrics
            router.held.clear()
            health = (await gw.client.get("/health")).json()
            assert health["status"] == "ok"
            assert "held_out" not in str(health)


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


async def test_feedback_counts_once_per_job_and_names_who_answered() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "fast"})
            job_id, call_id = r.json()["job_id"], r.json()["result"]["call_id"]
            router.results.clear()  # the router forgot the call: the job still says who
            r = await gw.client.post(f"/feedback/{job_id}", json={"score": 1})
            assert r.status_code == 200
            assert router.feedback_given == [(call_id, 1.0, "unknown")]
            r = await gw.client.post(f"/feedback/{job_id}", json={"score": 0})
            assert r.status_code == 409
            assert r.json()["error"]["code"] == "already_rated"
            assert router.feedback_given == [(call_id, 1.0, "unknown")]


async def test_feedback_the_router_refuses_leaves_the_job_unrated() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "fast"})
            job_id = r.json()["job_id"]
            r = await gw.client.post(f"/feedback/{job_id}", json={"score": 1, "intent": "bogus"})
            assert r.status_code == 422
            r = await gw.client.post(f"/feedback/{job_id}", json={"score": 1, "intent": "code"})
            assert r.status_code == 200


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


def test_the_result_schema_lists_every_field_of_a_result() -> None:
    listed = set(openapi_document()["components"]["schemas"]["Result"]["properties"])
    assert listed == {f.name for f in attrs.fields(Result)}


async def test_openapi_lists_every_status_each_route_answers() -> None:
    limited = KeySpec(key_env="KEY_L", handle="limited", secret="secret-l", rpm=1)
    router = FakeRouter(make_config(keys=(*KEYS, limited), max_body_bytes=1024))
    doc = openapi_document()
    seen: set[tuple[str, str, int]] = set()
    a, ops, lim = bearer("secret-a"), bearer("secret-ops"), bearer("secret-l")
    big = b"x" * 2048
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            c = gw.client

            async def hit(method: str, route: str, url: str, **kw: Any) -> httpx.Response:
                r = await c.request(method, url, **kw)
                seen.add((route, method.lower(), r.status_code))
                return r

            done = await hit("POST", "/call", "/call?wait=5", json={"prompt": "x"}, headers=a)
            job = done.json()["job_id"]
            failed = await hit(
                "POST", "/call", "/call?wait=5", headers=a, json={"prompt": "x", "model": "nope"}
            )
            assert failed.json()["status"] == "failed"  # a routing failure: 200, a failed job
            for kw in (
                {"json": {"prompt": "x"}},
                {"json": {"prompt": "x"}, "headers": ops},
                {"content": b"{no", "headers": a},
                {"content": big, "headers": a},
                {"json": {"prompt": 5}, "headers": a},
                {"json": {"prompt": "x", "model": "gpt-x"}, "headers": a},
                {"json": {"prompt": "x"}, "headers": lim},
                {"json": {"prompt": "x"}, "headers": lim},
            ):
                await hit("POST", "/call", "/call", **kw)
            await hit("POST", "/call", "/call?wait=x", json={"prompt": "x"}, headers=a)
            r = "/result/{job_id}"
            for url, kw in (
                (f"/result/{job}", {"headers": a}),
                (f"/result/{job}", {}),
                ("/result/job_nope", {"headers": a}),
                (f"/result/{job}?wait=-1", {"headers": a}),
            ):
                await hit("GET", r, url, **kw)
            for url, kw in (
                ("/jobs", {"headers": a}),
                ("/jobs?limit=0", {"headers": a}),
                ("/jobs", {}),
            ):
                await hit("GET", "/jobs", url, **kw)
            await hit("GET", "/health", "/health")
            for route in ("/providers", "/v1/models", "/metrics", "/openapi.json"):
                await hit("GET", route, route, headers=a)
                await hit("GET", route, route)
            await hit("GET", "/ws", "/ws", headers=a)
            one = "/v1/models/{model}"
            for url, kw in (
                ("/v1/models/sim/echo", {"headers": a}),  # an id with a / (sim/*: a's)
                ("/v1/models/sim%2Fecho", {"headers": a}),  # as the SDK sends it
                ("/v1/models/gpt-x", {"headers": a}),  # not a's
                ("/v1/models/fast", {}),
            ):
                await hit("GET", one, url, **kw)
            f = "/feedback/{job_id}"
            slow = (await c.post("/call", json={"prompt": "x", "model": "slow"}, headers=a)).json()
            failed_job = failed.json()["job_id"]
            for url, kw in (
                (f"/feedback/{job}", {"json": {"score": 1}, "headers": a}),
                (f"/feedback/{job}", {"content": b"{no", "headers": a}),
                (f"/feedback/{job}", {"content": big, "headers": a}),
                (f"/feedback/{job}", {"json": {"score": 5}, "headers": a}),
                (f"/feedback/{job}", {"json": {"score": 1}}),
                ("/feedback/job_nope", {"json": {"score": 1}, "headers": a}),
                (f"/feedback/{slow['job_id']}", {"json": {"score": 1}, "headers": a}),
                (f"/feedback/{failed_job}", {"json": {"score": 1}, "headers": a}),
            ):
                await hit("POST", f, url, **kw)
            v1 = "/v1/chat/completions"
            for model in ("fast", "nope", "late", "pricey", "picky", "toolong", "keyless"):
                await hit("POST", v1, v1, json={**chat, "model": model}, headers=ops)
            for kw in (
                {"json": {**chat, "model": "fast", "temperature": 9}, "headers": ops},
                {"json": {**chat, "model": "nosuch"}, "headers": ops},
                {"json": {**chat, "model": "gpt-x"}, "headers": a},
                {"content": big, "headers": ops},
                {"json": {**chat, "model": "fast"}},
                {"json": {**chat, "model": "fast"}, "headers": lim},
            ):
                await hit("POST", v1, v1, **kw)
            streamed = await hit(
                "POST", v1, v1, json={**chat, "model": "fast", "stream": True}, headers=ops
            )
            plain = await c.post(v1, json={**chat, "model": "fast"}, headers=ops)
    unlisted = sorted(
        (route, method, status)
        for route, method, status in seen
        if str(status) not in doc["paths"][route][method]["responses"]
    )
    assert unlisted == []
    statuses = {(route, status) for route, _, status in seen}
    for expected in [
        ("/call", 429),
        ("/result/{job_id}", 422),
        ("/feedback/{job_id}", 409),
        ("/v1/chat/completions", 413),
        ("/v1/chat/completions", 429),
        ("/v1/models/{model}", 200),
        ("/v1/models/{model}", 404),
    ]:
        assert expected in statuses  # the requests above did reach each case
    # the headers the document names are sent where it says
    v1_ok = doc["paths"][v1]["post"]["responses"]["200"]["headers"]
    assert set(v1_ok) <= set(plain.headers)
    assert "x-switchman-job-id" in streamed.headers and "x-switchman-model" not in streamed.headers
    assert set(doc["components"]["headers"]) >= set(v1_ok)


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


@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (trio.ClosedResourceError("the router is closed"), 503, "shutting_down"),
        (RouterFailed(), 500, "internal_error"),
    ],
    ids=["a stop began", "the router failed"],
)
async def test_feedback_cut_short_leaves_the_job_unrated(
    raised: Exception, status: int, code: str
) -> None:
    """The router closing (a stop began) or failing between the job marked rated and the
    score given answered 500 and left the job rated for good, its score never counted."""
    router = FakeRouter(make_config())
    given = router.feedback

    async def failing(*args: Any, **kw: Any) -> None:
        router.feedback = given  # type: ignore[method-assign]  # (once)
        raise raised

    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "fast"})
            job_id = r.json()["job_id"]
            router.feedback = failing  # type: ignore[method-assign]
            r = await gw.client.post(f"/feedback/{job_id}", json={"score": 1})
            assert (r.status_code, r.json()["error"]["code"]) == (status, code)
            if status == 503:
                assert r.headers.get("retry-after") == "1"
            r = await gw.client.post(f"/feedback/{job_id}", json={"score": 1})
            assert r.status_code == 200
            assert [s for _, s, _ in router.feedback_given] == [1.0]
