"""One gateway shared by several teams, through the real server and a real SQLite file:
what one team's key can do to, or learn of, another's."""

from __future__ import annotations

from pathlib import Path

import attrs
import trio

from switchman.store._sqlite import _PRUNE_EVERY
from tests.gateway._fakes import KEYS, FakeRouter, bearer, make_config, running_gateway

A = bearer("secret-a")
B = bearer("secret-b")
OPS = bearer("secret-ops")


async def test_one_teams_flood_of_jobs_never_evicts_another_teams_job(tmp_path: Path) -> None:
    config = make_config(keys=KEYS, db=str(tmp_path / "jobs.db"))
    config = attrs.evolve(config, server=attrs.evolve(config.server, job_retention_count=50))
    router = FakeRouter(config)
    with trio.fail_after(60):
        async with running_gateway(router) as gw:
            c = gw.client
            job_b = (await c.post("/call?wait=5", json={"prompt": "b"}, headers=B)).json()
            assert job_b["status"] == "complete"
            # a's jobs, failing at once, up to the insert that makes the store prune
            for _ in range(_PRUNE_EVERY - 1):
                r = await c.post("/call", json={"prompt": "a", "model": "nope"}, headers=A)
                assert r.status_code == 202
            r = await c.get(f"/result/{job_b['job_id']}", headers=B)
            assert r.status_code == 200, r.text
            assert r.json()["result"]["answer"] == "echo b"
            assert [j["job_id"] for j in (await c.get("/jobs", headers=B)).json()["jobs"]] == [
                job_b["job_id"]
            ]
            kept = (await c.get("/jobs?limit=1000", headers=A)).json()["jobs"]
            assert len(kept) == 49  # a's newest 49: b keeps its one job of the 50
