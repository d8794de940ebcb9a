"""A budget refusal tells a team's key its own budget's figures only: the global (or a
provider's) figures would show it other teams' spend and calls in flight. Through the real
gateway, router and ledger."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import trio

import switchman
from switchman.catalog import config_from_dict
from tests.gateway._fakes import running_gateway

ENV = {"GW_TEAM": "team-secret-0002", "GW_OPS": "ops-secret-0002"}
TEAM = {"authorization": "Bearer team-secret-0002"}
OPS = {"authorization": "Bearer ops-secret-0002"}
#: sim/fast's most a 4,000-token answer could cost is far above this
TINY = 0.0001


def _config(tmp_path: Path, budgets: dict[str, Any], team: dict[str, Any]) -> Any:
    return config_from_dict(
        {
            "server": {"db": str(tmp_path / "p.db")},
            "router": {"seed": 3},
            "budgets": budgets,
            "keys": [
                {"key_env": "GW_TEAM", "handle": "team", "models": ["*"], **team},
                {"key_env": "GW_OPS", "handle": "ops", "admin": True, "models": ["*"]},
            ],
        },
        env=ENV,
    )


async def _refusal(gw: Any, headers: dict[str, str]) -> str:
    r = await gw.client.post(
        "/call?wait=20",
        json={"prompt": "hello", "model": "sim/fast", "params": {"max_tokens": 4000}},
        headers=headers,
    )
    body = r.json()
    assert body["status"] == "failed", body
    (error,) = [e for e in body["result"]["errors"] if e["code"] == "budget_exceeded"]
    message: str = error["message"]
    return message


async def test_a_shared_budget_refuses_a_team_without_its_figures(tmp_path: Path) -> None:
    config = _config(tmp_path, {"global_daily_usd": TINY}, {})
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            team = await _refusal(gw, TEAM)
            ops = await _refusal(gw, OPS)
    # the team learns which budget and when it resets, not its limit or what is left
    assert team.startswith("the global day budget cannot cover the $"), team
    assert re.search(r"it resets at \d{4}-\d\d-\d\d 00:00 UTC$", team), team
    assert f"{TINY:g}" not in team and "left" not in team and "in flight" not in team
    # the admin sees the figures
    assert ops.startswith(f"global day budget of ${TINY:.4f} has $"), ops
    assert "left" in ops


async def test_a_teams_own_budget_shows_its_figures(tmp_path: Path) -> None:
    config = _config(tmp_path, {}, {"daily_usd": TINY})
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            running_gateway(router) as gw,
        ):
            team = await _refusal(gw, TEAM)
    assert team.startswith(f"caller:team day budget of ${TINY:.4f} has $"), team
