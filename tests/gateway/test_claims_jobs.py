"""What ``docs/http-api.md`` says of jobs waiting for a router slot and of HEAD, through the
real path: the real gateway on a socket and httpx, the real router and store, the fake
provider server over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio

import switchman
from switchman.catalog import KeySpec
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from switchman.store import open_store
from tests._httpfleet import ENV, PROMPT, http_fleet, model
from tests.gateway._fakes import Running, bearer, running_gateway

#: 150 chunks, 5 ms apart: an answer that takes most of a second
LONG = model("openai", "long-600-5")
HEALTHY = model("openai", "healthy")
ADMIN = KeySpec(key_env="SW_ADMIN", handle="ops", secret="secret-ops-123456", admin=True)


@asynccontextmanager
async def _gateway(
    nursery: trio.Nursery, *, capacity: int = 1024, keys: tuple[KeySpec, ...] = ()
) -> AsyncIterator[tuple[Running, FakeProviderServer]]:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    config = http_fleet(server, [LONG, HEALTHY])
    config = attrs.evolve(config, keys=keys, router=attrs.evolve(config.router, capacity=capacity))
    headers = bearer(ADMIN.secret) if keys else None
    async with (
        switchman.open_router(config, env=ENV) as router,
        open_store(":memory:") as store,
        running_gateway(router, store=store, headers=headers) as gw,
    ):
        yield gw, server


def _waiting_metric(metrics: str) -> float:
    [line] = [
        line for line in metrics.splitlines() if line.startswith("switchman_router_calls_waiting ")
    ]
    return float(line.split()[1])


async def test_a_call_waiting_for_the_routers_only_slot_is_listed_queued(
    nursery: trio.Nursery,
) -> None:
    """docs/http-api.md: a job is "`queued` while its call waits for one of the router's
    `capacity` slots, `started_at` then null, and when it took one after"; `/metrics` has
    "`switchman_router_calls_waiting` (calls waiting for one of the router's `capacity`
    slots)". With `capacity = 1` taken by a slow call, a second call waits so."""
    call = {"prompt": PROMPT, "model": LONG.alias, "params": {"max_tokens": 1_000}}
    with trio.fail_after(15):
        async with _gateway(nursery, capacity=1) as (gw, server):
            first = (await gw.client.post("/call", json=call)).json()["job_id"]
            second = (await gw.client.post("/call", json=call)).json()["job_id"]
            while True:  # until the first call runs: the second waits behind it for most
                if server.requests(LONG.model_id):  # of a second
                    break
                await trio.sleep(0.02)
            listed = {j["job_id"]: j for j in (await gw.client.get("/jobs")).json()["jobs"]}
            waiting = (await gw.client.get(f"/result/{second}")).json()
            metrics = (await gw.client.get("/metrics")).text
            assert len(server.requests(LONG.model_id)) == 1  # (the first still alone)
            done = (await gw.client.get(f"/result/{second}", params={"wait": 10})).json()
            after = (await gw.client.get("/metrics")).text
    assert listed[first]["status"] == "running"
    assert listed[second]["status"] == "queued"
    assert listed[second]["started_at"] is None
    assert waiting["status"] == "queued" and waiting["started_at"] is None
    assert _waiting_metric(metrics) == 1
    # it took the slot once the first call ended, and said when
    assert done["status"] == "complete"
    assert done["started_at"] is not None and done["started_at"] >= done["submitted_at"]
    assert _waiting_metric(after) == 0


def _differing_headers(head: httpx.Response, got: httpx.Response, *, live: bool) -> dict[str, Any]:
    """The headers the two responses do not share (``date`` aside, and the length of a
    body holding live figures)."""
    skip = {"date", "content-length"} if live else {"date"}
    mine = {k: v for k, v in head.headers.items() if k not in skip}
    theirs = {k: v for k, v in got.headers.items() if k not in skip}
    return {
        k: (mine.get(k), theirs.get(k))
        for k in mine.keys() | theirs.keys()
        if mine.get(k) != theirs.get(k)
    }


async def test_head_on_every_get_route_answers_the_gets_headers_and_no_body(
    nursery: trio.Nursery,
) -> None:
    """docs/http-api.md: "a GET route also answers HEAD, with the GET's headers and no
    body": every GET route of `/openapi.json`, with an admin key, a job and a model to name."""
    with trio.fail_after(15):
        async with _gateway(nursery, keys=(ADMIN,)) as (gw, _):
            answered = await gw.client.post(
                "/call", params={"wait": 10}, json={"prompt": PROMPT, "model": HEALTHY.alias}
            )
            assert answered.json()["status"] == "complete"
            job_id = answered.json()["job_id"]
            doc = (await gw.client.get("/openapi.json")).json()
            paths = [p for p, ops in doc["paths"].items() if "get" in ops and p != "/ws"]
            compared = []
            for path in paths:
                concrete = path.replace("{job_id}", job_id).replace("{model}", HEALTHY.alias)
                got = await gw.client.get(concrete)
                head = await gw.client.head(concrete)
                # the body of these holds figures that move between two requests
                live = path in ("/health", "/metrics", "/providers")
                compared.append((path, got.status_code, head.status_code, head.content))
                assert not _differing_headers(head, got, live=live), path
                assert int(head.headers["content-length"]) > 0, path
    assert {"/jobs", "/result/{job_id}", "/v1/models/{model}", "/metrics"} <= set(paths)
    for path, get_status, head_status, body in compared:
        assert get_status == head_status == 200, path
        assert body == b"", path
