"""What was learned of a model goes with the model, not its alias, when the config changes
between two runs on one store: an alias given to another model does not hand it the old
model's record, and a renamed alias keeps it. Unit rules, then a real router on a real
SQLite store (the simulator)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

import switchman
from switchman import Call
from switchman.actors._learned import KEPT, place_learned
from switchman.policy._learning import ModelStats
from switchman.store import open_store
from tests._simfleet import fleet, sim_model


def _st(n: float) -> ModelStats:
    return ModelStats(n=n)


def test_rows_follow_the_model_they_were_learned_of() -> None:
    stats = {
        ("same", "chat"): _st(1),
        ("renamed", "chat"): _st(2),
        ("reused", "chat"): _st(3),
        ("gone", "chat"): _st(4),
        ("older", "chat"): _st(5),  # stored before rows named their model
    }
    stored = {
        "same": "p/a",
        "renamed": "p/b",
        "reused": "p/c",
        "gone": "p/d",
    }
    current = {"same": "p/a", "quick": "p/b", "reused": "q/new", "older": "p/e"}
    placed = place_learned(stats, stored, current)
    assert placed.stats == {
        ("same", "chat"): _st(1),
        ("quick", "chat"): _st(2),  # the alias renamed: the record goes with its model
        ("older", "chat"): _st(5),
    }
    assert placed.moved == {"renamed": "quick"}
    # "reused" names another model now, and no alias names p/c: its record is kept under
    # that model's name, as is that of the model no alias names, for a config naming it
    assert placed.reassigned == {"reused": "p/c"}
    assert placed.kept == {("gone", "chat"): _st(4), (KEPT + "p/c", "chat"): _st(3)}
    assert placed.kept_upstreams == {"gone": "p/d", KEPT + "p/c": "p/c"}
    # an alias that names p/c again gets it back; one merely spelled "p/c" naming another
    # model does not (catalog aliases read provider/model)
    back = place_learned(placed.kept, placed.kept_upstreams, {"again": "p/c", "p/c": "q/other"})
    assert back.stats == {("again", "chat"): _st(3)} and back.moved == {KEPT + "p/c": "again"}


def test_an_alias_added_beside_another_of_its_model_starts_from_its_record() -> None:
    """Its first call overwrote the record both share (5.57 learned, 1.0 left)."""
    placed = place_learned({("b", "chat"): _st(5)}, {"b": "p/m"}, {"a": "p/m", "b": "p/m"})
    assert placed.stats == {("a", "chat"): _st(5), ("b", "chat"): _st(5)}


def test_a_model_with_its_own_record_keeps_it() -> None:
    """``old`` names what ``fast`` named, and has a record of its own for that intent:
    its own is the one kept (they are of the same model)."""
    stats = {("fast", "chat"): _st(1), ("old", "chat"): _st(2), ("fast", "code"): _st(3)}
    stored = {"fast": "p/a", "old": "p/a"}
    placed = place_learned(stats, stored, {"fast": "p/new", "old": "p/a"})
    assert placed.stats == {("old", "chat"): _st(2), ("old", "code"): _st(3)}
    # (nothing lost, nothing to say of "fast" but that its record moved)
    assert placed.moved == {"fast": "old"} and placed.reassigned == {}


def _learned(router: switchman.Router) -> dict[str, float]:
    """Each model's weight of what was learned of it for summaries."""
    out: dict[str, float] = {}
    for provider in router.status().providers:
        for m in provider.models:
            n = (m.stats.get("summarize") or {}).get("n")
            out[m.alias] = float(n or 0.0)
    return out


async def test_an_alias_given_to_another_model_does_not_inherit_the_old_ones_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    first = fleet(sim_model("fast", model_id="model-a"), sim_model("other", model_id="model-z"))
    # "fast" now names a new model; the model it named is "old" now
    second = fleet(
        sim_model("fast", model_id="model-new"),
        sim_model("old", model_id="model-a"),
        sim_model("other", model_id="model-z"),
    )
    # and then "old" is renamed again, to "steady"
    third = fleet(sim_model("steady", model_id="model-a"), sim_model("other", model_id="model-z"))
    with trio.fail_after(30):
        async with open_store(db) as store, switchman.open_router(first, store=store) as r:
            for _ in range(4):
                await r.call(Call(prompt="hello", model="fast", intent="summarize"))
            before = _learned(r)
        assert before["fast"] > 3
        with caplog.at_level(logging.WARNING):
            async with open_store(db) as store, switchman.open_router(second, store=store) as r:
                after = _learned(r)
        assert after["fast"] == 0.0  # a new model: nothing learned of it yet
        assert after["old"] == pytest.approx(before["fast"], rel=0.01)
        assert any(
            "what was learned of fast (sim/model-a) now counts for old" in rec.getMessage()
            for rec in caplog.records
        ), [rec.getMessage() for rec in caplog.records]
        async with open_store(db) as store, switchman.open_router(third, store=store) as r:
            again = _learned(r)
        assert again["steady"] == pytest.approx(before["fast"], rel=0.01)


async def test_an_alias_given_back_to_its_model_finds_its_record_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Switched to another model and back (a trial of a new model): its record was
    forgotten at the switch, for good."""
    db = tmp_path / "jobs.db"
    a = fleet(sim_model("fast", model_id="model-a"))
    b = fleet(sim_model("fast", model_id="model-b"))
    with trio.fail_after(30):
        async with open_store(db) as store, switchman.open_router(a, store=store) as r:
            for _ in range(4):
                await r.call(Call(prompt="hello", model="fast", intent="summarize"))
            learned = _learned(r)["fast"]
        with caplog.at_level(logging.WARNING):
            async with open_store(db) as store, switchman.open_router(b, store=store) as r:
                assert _learned(r)["fast"] == 0.0
                await r.call(Call(prompt="hello", model="fast", intent="summarize"))
        assert any(
            "fast names sim/model-b now, learned afresh" in rec.getMessage()
            for rec in caplog.records
        ), [rec.getMessage() for rec in caplog.records]
        async with open_store(db) as store, switchman.open_router(a, store=store) as r:
            back = _learned(r)["fast"]
    assert back == pytest.approx(learned, rel=0.01)


async def test_feedback_for_a_model_out_of_service_says_so() -> None:
    """Its provider has no key in this router: the score could go nowhere (it told the
    caller to pass ``model=``, which it had)."""
    from switchman.catalog import Config, ModelSpec, ProviderSpec

    config = Config(
        providers={
            "up": ProviderSpec(
                name="up", kind="openai", base_url="http://127.0.0.1:9/v1", api_key_env="NO_KEY"
            ),
            "sim": ProviderSpec(name="sim", kind="sim"),
        },
        models={
            "fast": ModelSpec(alias="fast", provider="up", model_id="m"),
            "other": sim_model("other"),
        },
    )
    async with switchman.open_router(config, env={}) as router:
        with pytest.raises(switchman.UnknownCall, match="not in service in this router"):
            await router.feedback("c-old", 0.5, model="fast", intent="summarize")
        with pytest.raises(switchman.UnknownCall, match="pass model="):
            await router.feedback("c-old", 0.5)
