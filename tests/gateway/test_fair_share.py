"""One team cannot fill the gateway: a key's handle holds at most half of the jobs the gateway
runs at once (``router.capacity`` x 4), so another team's call still runs."""

from __future__ import annotations

import attrs
import trio

from switchman.catalog import RouterConfig
from tests.gateway._fakes import KEYS, FakeRouter, bearer, make_config, running_gateway

#: jobs the gateway runs at once with capacity 2; a team may hold half
MAX_IN_FLIGHT = 8


async def test_a_team_holds_at_most_half_of_the_jobs_in_flight() -> None:
    config = attrs.evolve(make_config(keys=KEYS), router=RouterConfig(capacity=2))
    router = FakeRouter(config)
    hang = {"prompt": "wait", "model": "hang"}
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            team_a = bearer("secret-a")
            for _ in range(MAX_IN_FLIGHT // 2):
                assert (await gw.client.post("/call", json=hang, headers=team_a)).status_code == 202
            full = await gw.client.post("/call", json=hang, headers=team_a)
            assert full.status_code == 503
            assert full.json()["error"]["code"] == "overloaded"
            assert full.json()["error"]["message"] == (
                "this key's team has 4 calls in flight, half of what the gateway runs at once;"
                " retry when some finish"
            )
            assert full.headers["retry-after"] == "1"
            # the other team is served: the gateway has room, the first team's share is full
            other = await gw.client.post(
                "/call?wait=5", json={"prompt": "hi", "model": "fast"}, headers=bearer("secret-b")
            )
            assert other.status_code == 200
            assert other.json()["result"]["answer"] == "echo hi"
            # a job of the first team ending gives its place back
            jobs = (await gw.client.get("/jobs?status=running", headers=team_a)).json()["jobs"]
            await router.cancel_job(jobs[0]["job_id"], "done with it")
            ended = await gw.client.get(f"/result/{jobs[0]['job_id']}?wait=5", headers=team_a)
            assert ended.json()["status"] == "failed"
            assert (await gw.client.post("/call", json=hang, headers=team_a)).status_code == 202
            assert len(router.calls) == MAX_IN_FLIGHT // 2 + 2


async def test_the_gateway_without_keys_is_one_caller_and_may_use_it_all() -> None:
    config = attrs.evolve(make_config(), router=RouterConfig(capacity=2))
    router = FakeRouter(config)
    hang = {"prompt": "wait", "model": "hang"}
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for _ in range(MAX_IN_FLIGHT):
                assert (await gw.client.post("/call", json=hang)).status_code == 202
            full = await gw.client.post("/call", json=hang)
            assert full.status_code == 503
            assert full.json()["error"]["message"] == "too many calls in flight; retry shortly"
