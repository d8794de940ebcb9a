"""``POST /feedback`` on a job answered before the config changed credits the model that
answered it: under its new alias when the alias was renamed, and not at all when the alias
now names another model (which never answered it). The real router and gateway on a real
SQLite store, the simulator."""

from __future__ import annotations

from pathlib import Path

import trio

import switchman
from switchman.catalog import Config
from switchman.store import open_store
from tests._simfleet import fleet, sim_model
from tests.gateway._fakes import running_gateway


def _feedback(router: switchman.Router, alias: str) -> float | None:
    for provider in router.status().providers:
        for m in provider.models:
            if m.alias == alias:
                return (m.stats.get("summarize") or {}).get("feedback")
    raise AssertionError(f"no model {alias}")


async def _rate(db: Path, config: Config, job_id: str) -> tuple[int, str, switchman.Router]:
    async with (
        open_store(db) as store,
        switchman.open_router(config, store=store) as router,
        running_gateway(router, store=store) as gw,
    ):
        r = await gw.client.post(f"/feedback/{job_id}", json={"score": 0.1})
        return r.status_code, r.text, router


async def test_feedback_follows_the_model_that_answered_across_a_config_change(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"
    first = fleet(sim_model("fast", model_id="model-a"))
    renamed = fleet(sim_model("quick", model_id="model-a"))
    reused = fleet(sim_model("fast", model_id="model-new"))
    jobs = []
    with trio.fail_after(40):
        async with (
            open_store(db) as store,
            switchman.open_router(first, store=store) as router,
            running_gateway(router, store=store) as gw,
        ):
            for _ in range(2):
                body = {"prompt": "sum it up", "model": "fast", "intent": "summarize"}
                r = await gw.client.post("/call?wait=10", json=body)
                assert r.json()["status"] == "complete", r.text
                jobs.append(r.json()["job_id"])
        status, text, router = await _rate(db, reused, jobs[0])
        # "fast" names another model now: it never answered this job
        assert status == 404 and "is no longer configured" in text, text
        assert _feedback(router, "fast") is None
        async with (
            open_store(db) as store,
            switchman.open_router(renamed, store=store) as router,
            running_gateway(router, store=store) as gw,
        ):
            r = await gw.client.post(f"/feedback/{jobs[1]}", json={"score": 0.1})
            assert r.status_code == 200, r.text
            # the model that answered it is "quick" now, and it has the rating
            feedback = _feedback(router, "quick")
    assert feedback is not None and feedback < 0.5
