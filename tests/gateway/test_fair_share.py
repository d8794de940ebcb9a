"""One team cannot fill the gateway: a key's handle holds at most half of the jobs the gateway
runs at once (``router.capacity`` x 4), so another team's call still runs."""

from __future__ import annotations

from functools import partial

import attrs
import pytest
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


async def test_calls_arriving_together_never_pass_the_bound_and_are_refused_closing() -> None:
    """Calls that arrive while others are being stored count too: the store's write is a
    checkpoint, and a burst of 200 let 120-190 jobs in past a bound of 16. Each refusal
    closes its connection: a flood of clients that ignore ``retry-after`` waits in the
    kernel's accept queue, not among the connections the server runs (goodput fell to 7%
    of its peak at 1,000 such connections)."""
    config = attrs.evolve(make_config(), router=RouterConfig(capacity=2))
    router = FakeRouter(config)
    hang = {"prompt": "wait", "model": "hang"}
    statuses: list[int] = []
    closing: list[str | None] = []
    with trio.fail_after(30):
        async with running_gateway(router) as gw:

            async def post() -> None:
                answer = await gw.client.post("/call", json=hang)
                statuses.append(answer.status_code)
                if answer.status_code == 503:
                    closing.append(answer.headers.get("connection"))

            async with trio.open_nursery() as nursery:
                for _ in range(40):
                    nursery.start_soon(post)
    assert sorted(statuses) == [202] * MAX_IN_FLIGHT + [503] * (40 - MAX_IN_FLIGHT)
    assert set(closing) == {"close"}


async def test_a_team_holds_a_bounded_number_of_long_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each held ``?wait`` is a task and a connection: past a team's bound one answers at
    once, as if its wait had run out, while other teams still wait."""
    from switchman.gateway import _app

    monkeypatch.setattr(_app, "POLLS_PER_KEY", 2)
    router = FakeRouter(make_config(keys=KEYS))
    hang = {"prompt": "wait", "model": "hang"}
    team_a, team_b = bearer("secret-a"), bearer("secret-b")
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            job = (await gw.client.post("/call", json=hang, headers=team_a)).json()["job_id"]
            other = (await gw.client.post("/call", json=hang, headers=team_b)).json()["job_id"]
            async with trio.open_nursery() as polls:
                for _ in range(2):  # the team's two waits, held
                    polls.start_soon(
                        partial(gw.client.get, f"/result/{job}?wait=30", headers=team_a)
                    )
                await router.wait_for_calls(2)
                await trio.sleep(1.0)  # (both waits are held by now: loopback takes ms)
                t0 = trio.current_time()
                third = await gw.client.get(f"/result/{job}?wait=10", headers=team_a)
                assert third.status_code == 200 and third.json()["status"] == "running"
                assert trio.current_time() - t0 < 5  # at once, not after its 10 s
                t0 = trio.current_time()
                theirs = await gw.client.get(f"/result/{other}?wait=0.5", headers=team_b)
                assert theirs.json()["status"] == "running"
                assert trio.current_time() - t0 >= 0.45  # the other team's wait was held
                polls.cancel_scope.cancel()
