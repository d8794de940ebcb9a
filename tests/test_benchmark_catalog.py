"""The "catalog" benchmark section at tiny sizes: it runs, and its measure is right."""

from __future__ import annotations

from pathlib import Path

from benchmarks import _catalog
from benchmarks._suite import SMOKE, Context


def test_catalog_measure_checks_out() -> None:
    lines: list[str] = []
    data = _catalog.measure(30, (1,), skip=10, block=10, log=lines.append)
    policies = data["policies"]
    cheap = f"cheapest only ({data['cheapest_paid']})"
    assert list(policies) == [_catalog.AUTO, _catalog.AUTO_NO_EXPLORATION, cheap]
    assert len(lines) == 3
    assert data["eligible"] > 50  # the whole catalog, not the simulator fleet
    assert data["free_eligible"]  # the catalog's Ollama models are free and eligible
    assert data["cheapest_paid"] not in data["free_eligible"]

    # the check of the measure: the cheapest paid model against itself
    base = policies[cheap]["seeds"]["1"]
    assert abs(base["ratio_after_skip"] - 1.0) < 1e-9
    assert all(abs(b - 1.0) < 1e-9 for b in base["block_ratios"])
    assert base["reference_models"] == [data["cheapest_paid"]]
    assert base["distinct_tried"] == 1
    assert base["dear_first"] == 0 and base["free_answered"] == 0

    for entry in policies.values():
        s = entry["seeds"]["1"]
        # every call answered (all models healthy), counts add up
        assert s["calls"] == s["complete"] == 30
        assert sum(s["first_choice"].values()) == 30
        assert s["distinct_first"] == len(s["first_choice"]) <= s["distinct_tried"]
        assert 0 <= s["dear_first"] <= 30 and 0 <= s["free_answered"] <= 30
        assert len(s["block_ratios"]) == 2  # calls 11-20 and 21-30
        assert s["eligibility_differs"] == 0
        # only free answers can take a policy below the cheapest paid model
        if s["free_answered"] == 0:
            assert s["ratio_after_skip"] >= 1.0 - 1e-9
        assert 0.0 <= s["ratio_after_skip"] < 1_000
        assert entry["ratio_min"] == entry["ratio_max"] == s["ratio_after_skip"]

    # deterministic for a seed
    again = _catalog.measure(30, (1,), skip=10, block=10, log=lines.append)
    assert again == data
    assert "cheapest only" in _catalog.render(data)


def test_catalog_section_runs_in_the_smoke_profile(tmp_path: Path) -> None:
    ctx = Context(profile=SMOKE, workdir=tmp_path, results=tmp_path)
    section = _catalog.run(ctx)
    assert section.key == "catalog"
    assert section.data["calls_per_seed"] == _catalog.SMOKE_CALLS
    assert "| auto |" in section.markdown
