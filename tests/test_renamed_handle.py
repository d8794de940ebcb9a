"""A handle renamed in the config between two runs: its spend stays under the old name,
which no key or budget names now, and the start says so (the new name's budgets start
from zero). A real router on a real SQLite store, the simulator."""

from __future__ import annotations

import logging
from pathlib import Path

import attrs
import pytest
import trio

import switchman
from switchman import Call, Caller
from switchman.catalog import KeySpec
from switchman.policy._budget import Ledger, unclaimed_spend, window_key
from switchman.store import open_store
from tests._simfleet import fleet, sim_model

ENV = {"TEAM_KEY": "team-key-0123456789abcdef"}


async def test_the_spend_of_a_handle_no_key_names_now_is_told_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    paid = sim_model("paid", input_per_mtok=1000.0, output_per_mtok=1000.0)
    before = attrs.evolve(
        fleet(paid), keys=(KeySpec(key_env="TEAM_KEY", handle="team-a", secret=ENV["TEAM_KEY"]),)
    )
    after = attrs.evolve(
        before, keys=(KeySpec(key_env="TEAM_KEY", handle="team-b", secret=ENV["TEAM_KEY"]),)
    )
    with trio.fail_after(20):
        async with (
            open_store(db) as store,
            switchman.open_router(before, store=store, env=ENV) as r,
        ):
            result = await r.call(Call(prompt="pay", model="paid", caller=Caller(handle="team-a")))
        assert result.status == "complete" and result.cost_usd > 0
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="switchman.router"):
            async with open_store(db) as store, switchman.open_router(before, store=store, env=ENV):
                pass  # the same names: nothing to say
            assert not caplog.records
            async with open_store(db) as store, switchman.open_router(after, store=store, env=ENV):
                pass
    (told,) = caplog.records
    assert told.getMessage().startswith(f"caller:team-a spent ${result.cost_usd:.6f} this month")
    assert "no gateway key or caller budget names team-a now" in told.getMessage()


def test_unclaimed_spend_is_this_month_s_of_unnamed_callers() -> None:
    now = 1_795_700_000.0
    month, old = window_key("month", now), window_key("month", now - 40 * 86_400)
    ledger = Ledger(
        spent={
            ("caller:a", month): 2_000_000_000,
            ("caller:b", month): 1_000_000_000,
            ("caller:c", old): 5_000_000_000,  # another month: nothing to say
            ("global", month): 3_000_000_000,
        }
    )
    assert unclaimed_spend(ledger, frozenset({"caller:b"}), wall_now=now) == {"caller:a": 2.0}
