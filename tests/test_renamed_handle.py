"""A handle renamed in the config between two runs: its spend stays under the old name,
which no key or budget names now, and the start says so (the new name's budgets start
from zero). A real router on a real SQLite store, the simulator."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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


async def _paid(db: Path, config: switchman.Config) -> switchman.Result:
    """One call of model ``paid`` answered and billed, on a router with the store ``db``."""
    async with open_store(db) as store, switchman.open_router(config, store=store) as r:
        result = await r.call(Call(prompt="pay", model="paid"))
    assert result.status == "complete" and result.cost_usd > 0
    return result


async def _restarted(
    db: Path,
    config: switchman.Config,
    caplog: pytest.LogCaptureFixture,
    inside: Callable[[switchman.Router], Awaitable[None]] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """A start on the store ``db`` under ``config``, with its gateway (no keys: an admin's
    view): each scope ``GET /budgets`` lists, and what the start logged; ``inside`` runs
    with the router meanwhile."""
    from tests.gateway._fakes import running_gateway

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="switchman.router"):
        async with (
            open_store(db) as store,
            switchman.open_router(config, store=store) as r,
            running_gateway(r, store=store) as gw,
        ):
            if inside is not None:
                await inside(r)
            listed = (await gw.client.get("/budgets")).json()["budgets"]
    return {b["scope"]: b for b in listed}, [rec.getMessage() for rec in caplog.records]


async def test_a_renamed_providers_spend_is_told_at_start_and_still_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The provider renamed in the config: its budgets start from zero under the new name
    (the start says so), and its spend this month is still read by its old name, by
    ``router.spend`` and by an admin's ``GET /budgets``."""
    db = tmp_path / "jobs.db"
    price = {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}
    before = fleet(sim_model("paid", provider="old-sim", **price))
    after = fleet(sim_model("paid", provider="new-sim", **price))
    spent: dict[str, float] = {}

    async def read_spend(r: switchman.Router) -> None:
        spent.update(await r.spend("provider:old-sim"))
        with pytest.raises(switchman.ValidationError, match="not a budget scope"):
            await r.spend("provider:never-was")

    with trio.fail_after(30):
        result = await _paid(db, before)
        by_scope, told = await _restarted(db, after, caplog, read_spend)
    assert any(
        m.startswith(f"provider:old-sim spent ${result.cost_usd:.6f} this month")
        and "the config has no provider old-sim now" in m
        for m in told
    ), told
    assert spent["day"] == pytest.approx(result.cost_usd, abs=1e-9)
    assert by_scope["provider:old-sim"]["spent_usd"]["day"] == pytest.approx(
        result.cost_usd, abs=1e-9
    )
    assert by_scope["provider:new-sim"]["spent_usd"]["day"] == 0.0


@pytest.mark.parametrize("why", ["disabled in configuration", "missing API key: set M"])
async def test_a_provider_renamed_whose_old_name_stays_out_of_service_is_still_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, why: str
) -> None:
    """A built-in provider the file renamed stays in the config, disabled (the catalog
    keeps it): its spend this month is listed by ``GET /budgets``, as a provider the config
    no longer has is (it had vanished from it), and told at start, unless all that keeps it
    out is its key (told already; an unset key is no rename, to warn of at every start)."""
    from switchman.catalog import ProviderSpec

    db = tmp_path / "jobs.db"
    price = {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}
    before = fleet(sim_model("paid", provider="mistral", **price))
    after = fleet(sim_model("paid", provider="mistral_eu", **price))
    kept = ProviderSpec(name="mistral", kind="sim", disabled_reason=why)
    after = attrs.evolve(after, providers={**after.providers, "mistral": kept})
    with trio.fail_after(30):
        result = await _paid(db, before)
        by_scope, logged = await _restarted(db, after, caplog)
    said = f"provider:mistral spent ${result.cost_usd:.6f} this month"
    told = [m for m in logged if m.startswith(said)]
    if why.startswith("missing API key"):
        assert told == []
    else:
        assert len(told) == 1 and f"provider mistral is out of service ({why}) now" in told[0]
    assert by_scope["provider:mistral"]["spent_usd"]["day"] == pytest.approx(
        result.cost_usd, abs=1e-9
    )


async def test_a_budget_lowered_below_its_spend_is_told_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing was said until the first call was refused."""
    from switchman.catalog import BudgetsConfig

    db = tmp_path / "jobs.db"
    paid = sim_model("paid", input_per_mtok=1000.0, output_per_mtok=1000.0)
    before = fleet(paid, budgets=BudgetsConfig(global_daily_usd=100.0))
    with trio.fail_after(30):
        async with open_store(db) as store, switchman.open_router(before, store=store) as r:
            result = await r.call(Call(prompt="pay", model="paid"))
        assert result.status == "complete" and result.cost_usd > 0
        lowered = fleet(paid, budgets=BudgetsConfig(global_daily_usd=result.cost_usd / 2))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="switchman.router"):
            async with open_store(db) as store, switchman.open_router(before, store=store):
                pass  # room left: nothing to say
            assert not caplog.records
            async with open_store(db) as store, switchman.open_router(lowered, store=store):
                pass
    (told,) = caplog.records
    assert told.getMessage().startswith(
        f"budget global day: ${result.cost_usd:.6f} spent already of its $"
    )
    assert "the calls it covers are refused until " in told.getMessage()


async def test_budgets_that_are_likely_mistakes_are_told_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A budget of $0, and one no lower than a longer period's of its scope (a month's
    $5 under a day's $20), started without a word; a key's budget counts as its handle's."""
    from switchman.catalog import BudgetsConfig

    budgets = BudgetsConfig(
        global_hourly_usd=50.0,
        global_daily_usd=20.0,
        global_monthly_usd=5.0,
        callers={"zero": {"daily_usd": 0.0}, "fine": {"daily_usd": 3.0, "monthly_usd": 30.0}},
    )
    key = KeySpec(key_env="K", handle="fine", secret="s" * 20, daily_usd=40.0)
    config = fleet(sim_model("m"), budgets=budgets, keys=(key,))
    with caplog.at_level(logging.WARNING, logger="switchman.router"):
        async with switchman.open_router(config):
            pass
    told = sorted(rec.getMessage() for rec in caplog.records)
    assert told == [
        "budget caller:zero day is $0: every call it covers is refused",
        "budget global day ($20) is not below its month budget ($5): it never refuses a call"
        " the month one would not; was it meant the other way round?",
        "budget global hour ($50) is not below its day budget ($20): it never refuses a call"
        " the day one would not; was it meant the other way round?",
    ], told
