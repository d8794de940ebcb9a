"""``GET /budgets``: spend per scope against its limits, through the real router; an admin
(or a gateway without keys) reads every scope, a key its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

import switchman
from switchman.catalog import config_from_dict
from switchman.gateway._status import spending_callers
from switchman.store import open_store
from tests.gateway._fakes import running_gateway

ENV = {"GW_TEAM": "team-secret-0001", "GW_OPS": "ops-secret-0001"}
TEAM = {"authorization": "Bearer team-secret-0001"}
OPS = {"authorization": "Bearer ops-secret-0001"}


def _config(tmp_path: Path) -> Any:
    return config_from_dict(
        {
            "server": {"db": str(tmp_path / "b.db")},
            "router": {"stall_ms": 2000, "seed": 3},
            "budgets": {"global_daily_usd": 5.0, "providers": {"sim": {"monthly_usd": 9.0}}},
            "keys": [
                {"key_env": "GW_TEAM", "handle": "team", "daily_usd": 1.0, "models": ["*"]},
                {"key_env": "GW_OPS", "handle": "ops", "admin": True, "models": ["*"]},
            ],
        },
        env=ENV,
    )


async def test_spend_per_scope_with_its_limits_and_a_keys_own_view(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            costs = []
            for headers in (TEAM, TEAM, OPS):
                r = await gw.client.post(
                    "/call?wait=20", json={"prompt": "hello", "model": "sim/fast"}, headers=headers
                )
                assert r.json()["status"] == "complete", r.json()
                costs.append(r.json()["result"]["cost_usd"])
            everything = (await gw.client.get("/budgets", headers=OPS)).json()["budgets"]
            own = (await gw.client.get("/budgets", headers=TEAM)).json()["budgets"]
            refused = await gw.client.get("/budgets")
    assert refused.status_code == 401
    by_scope = {b["scope"]: b for b in everything}
    assert everything[0]["scope"] == "global"
    assert {"global", "provider:sim", "caller:team", "caller:ops"} <= set(by_scope)
    glob = by_scope["global"]
    assert glob["spent_usd"]["day"] == pytest.approx(sum(costs), abs=1e-9)
    assert glob["limit_usd"] == {"day": 5.0}
    assert glob["left_usd"]["day"] == pytest.approx(5.0 - sum(costs), abs=1e-9)
    assert by_scope["provider:sim"]["limit_usd"] == {"month": 9.0}
    team = by_scope["caller:team"]
    assert team["spent_usd"]["hour"] == pytest.approx(costs[0] + costs[1], abs=1e-9)
    assert team["limit_usd"] == {"day": 1.0}
    assert by_scope["caller:ops"]["spent_usd"]["day"] == pytest.approx(costs[2], abs=1e-9)
    # a key sees only its own
    assert [b["scope"] for b in own] == ["caller:team"]
    assert own[0] == team


@pytest.mark.parametrize("stricter", ["key", "callers"])
async def test_a_scope_limited_twice_shows_the_stricter_limit_the_ledger_holds_it_to(
    tmp_path: Path, stricter: str
) -> None:
    tiny, loose = 0.000002, 3.0  # less than a call costs, and plenty
    config = config_from_dict(
        {
            "server": {"db": str(tmp_path / "b.db")},
            "router": {"stall_ms": 2000, "seed": 3},
            "budgets": {
                "callers": {"team": {"daily_usd": tiny if stricter == "callers" else loose}}
            },
            "keys": [
                {
                    "key_env": "GW_TEAM",
                    "handle": "team",
                    "daily_usd": tiny if stricter == "key" else loose,
                    "models": ["*"],
                },
                {"key_env": "GW_OPS", "handle": "ops", "admin": True},
            ],
        },
        env=ENV,
    )
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            r = await gw.client.post(
                "/call?wait=20", json={"prompt": "hello", "model": "sim/fast"}, headers=TEAM
            )
            own = (await gw.client.get("/budgets", headers=TEAM)).json()["budgets"]
            everything = (await gw.client.get("/budgets", headers=OPS)).json()["budgets"]
    assert r.json()["status"] == "failed"
    assert r.json()["result"]["errors"][0]["code"] == "budget_exceeded"
    (team,) = own
    assert team["limit_usd"] == {"day": tiny}
    assert team["left_usd"] == {"day": tiny}  # what is left is too little: refused
    assert [b for b in everything if b["scope"] == "caller:team"] == [team]


async def test_an_admin_still_sees_a_removed_keys_spend_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    before = _config(tmp_path)
    with trio.fail_after(30):
        async with (
            open_store(db) as store,
            switchman.open_router(before, env=ENV, store=store) as router,
            running_gateway(router, store=store) as gw,
        ):
            r = await gw.client.post(
                "/call?wait=20", json={"prompt": "hello", "model": "sim/fast"}, headers=TEAM
            )
            cost = r.json()["result"]["cost_usd"]
            assert cost > 0
        # the team's key is removed; the day's spend stays
        after = attrs.evolve(before, keys=tuple(k for k in before.keys if k.handle != "team"))
        async with (
            open_store(db) as store,
            switchman.open_router(after, env=ENV, store=store) as router,
            running_gateway(router, store=store) as gw,
        ):
            everything = (await gw.client.get("/budgets", headers=OPS)).json()["budgets"]
    by_scope = {b["scope"]: b for b in everything}
    assert by_scope["caller:team"]["spent_usd"]["day"] == pytest.approx(cost, abs=1e-9)
    assert by_scope["caller:team"]["limit_usd"] == {}  # its key's budget went with it
    assert by_scope["global"]["spent_usd"]["day"] == pytest.approx(cost, abs=1e-9)


def test_callers_with_spend_are_those_of_the_current_windows() -> None:
    now = 1_700_000_000.0  # 2023-11-14T22:13Z
    snapshot = {
        "nano_usd": {
            "caller:gone": {"day:2023-11-14": 5},
            "caller:last-month": {"month:2023-10": 7},
            "caller:nothing": {"day:2023-11-14": 0},
            "provider:sim": {"day:2023-11-14": 5},
        }
    }
    assert spending_callers(snapshot, wall_now=now) == {"gone"}
    assert spending_callers({"nano_usd": "garbled"}, wall_now=now) == set()


async def test_a_job_a_shutdown_cuts_midway_is_stored_with_what_it_was_billed(
    tmp_path: Path,
) -> None:
    """The grace period ends with a streamed answer half out: the router ends the job,
    and the job is stored with its own result (its attempt, the output it was billed,
    reason "shutdown"), which is what the budget settled; the client read that text."""
    config = config_from_dict(
        {
            "server": {"db": str(tmp_path / "cut.db"), "grace_s": 0.5},
            "budgets": {"global_daily_usd": 5.0},
            "models": [
                {
                    "alias": "sim/sloth",
                    "provider": "sim",
                    "model_id": "sloth",
                    "sim": {"latency_ms": 30_000, "ttft_ms": 50},
                    "input_per_mtok": 10.0,
                    "output_per_mtok": 20.0,
                }
            ],
        },
        env={},
    )
    body = {"model": "sim/sloth", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    read: list[str] = []
    with trio.fail_after(30):
        async with switchman.open_router(config, env={}) as router:
            async with (
                running_gateway(router) as gw,
                gw.client.stream("POST", "/v1/chat/completions", json=body) as r,
            ):
                job_id = r.headers["x-switchman-job-id"]
                async for line in r.aiter_lines():  # to the end the shutdown gives it
                    chunk = json.loads(line[6:]) if line.startswith("data: {") else {}
                    if chunk.get("choices"):
                        read.append(chunk["choices"][0]["delta"].get("content") or "")
                    if "".join(read):
                        gw.shutdown.set()  # mid-answer: the grace period starts
            spent = (await router.spend("global"))["day"]
    async with open_store(str(tmp_path / "cut.db")) as store:
        job = await store.get_job(job_id)
    assert job is not None and (job.status, job.reason) == ("failed", "shutdown")
    result = job.result
    assert result["errors"][0]["code"] == "cancelled"
    assert "shut down" in result["errors"][0]["message"]
    (attempt,) = result["trace"]["attempts"]
    assert attempt["outcome"] == "cancelled" and attempt["usage"]["output_tokens"] > 0
    assert attempt["error"] == "the gateway shut down before the call finished"
    assert result["cost_usd"] == attempt["cost_usd"] == pytest.approx(spent)
    assert spent > 0.0
    assert result["answer"] == "".join(read)  # what the client read, and no more
