"""The gateway over a store that cannot be written (another process holds its lock, as a
full disk refuses writes) or whose file was deleted: it stays up, refuses new calls with
a 503 that says why, serves the results it could not write, and ``/health`` says what is
wrong. The real gateway on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import sqlite3
from contextlib import ExitStack, closing
from pathlib import Path

import pytest
import trio

from switchman.store import open_store
from tests.gateway._fakes import KEYS, FakeRouter, bearer, make_config, running_gateway
from tests.store.test_store_faults import _stored, locked

#: how long the store waits for another process's lock in these tests
BUSY_S = 0.05
LOCKED = "the job store cannot be written: database is locked"


async def test_calls_are_refused_with_503_and_results_kept_while_the_store_is_locked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    router = FakeRouter(make_config(db=str(db)), slow_s=0.5)
    chat = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    with trio.fail_after(30):
        async with (
            open_store(db, busy_timeout_s=BUSY_S, beat_s=0.1) as store,
            running_gateway(router, store=store) as gw,
        ):
            r = await gw.client.post("/call", json={"prompt": "keep me", "model": "slow"})
            job_id = r.json()["job_id"]
            with locked(db):
                # the job finishes while its result cannot be written: served from memory
                r = await gw.client.get(f"/result/{job_id}?wait=5")
                assert r.status_code == 200
                assert r.json()["status"] == "complete"
                assert r.json()["result"]["answer"] == "echo keep me"
                jobs = (await gw.client.get("/jobs")).json()["jobs"]
                assert [(j["job_id"], j["status"]) for j in jobs] == [(job_id, "complete")]
                # new calls: refused, saying why and when to come back
                for path in ("/call", "/call?wait=2"):
                    r = await gw.client.post(path, json={"prompt": "hi", "model": "fast"})
                    assert r.status_code == 503, r.text
                    assert r.json() == {"error": {"code": "store_unavailable", "message": LOCKED}}
                    assert r.headers["retry-after"] == "2"
                r = await gw.client.post("/v1/chat/completions", json=chat)
                assert r.status_code == 503
                assert r.json() == {
                    "error": {
                        "message": LOCKED,
                        "type": r.json()["error"]["type"],
                        "param": None,
                        "code": "store_unavailable",
                    }
                }
                assert r.headers["retry-after"] == "2"
                health = (await gw.client.get("/health")).json()
                assert (health["status"], health["store_problem"]) == ("degraded", LOCKED)
                assert health["jobs"]["complete"] == 1 and health["jobs"]["running"] == 0
            assert _stored(db, job_id) == ("running", None)
            # the lock gone: the result is written within a retry, calls are taken again
            for _ in range(100):
                health = (await gw.client.get("/health")).json()
                if health["status"] == "ok" and store.unwritten == 0:
                    break
                await trio.sleep(0.05)
            assert health["status"] == "ok" and "store_problem" not in health
            assert _stored(db, job_id) == ("complete", None)
            r = await gw.client.post("/call?wait=5", json={"prompt": "again", "model": "fast"})
            assert r.status_code == 200 and r.json()["status"] == "complete"
    said = [r for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(said) == 1  # once for the streak, not once per request
    assert not [r for r in caplog.records if r.exc_info]  # and no traceback


async def test_jobs_a_shutdown_cuts_short_while_the_store_is_locked_end_cleanly(
    tmp_path: Path,
) -> None:
    """Before, the job's finish raised, then its clean-up's write raised again, into the
    gateway's nursery: the daemon died with a traceback."""
    db = tmp_path / "jobs.db"
    router = FakeRouter(make_config(db=str(db), grace_s=0.2))
    with trio.fail_after(30):
        async with open_store(db, busy_timeout_s=BUSY_S) as store:
            with ExitStack() as held:
                async with running_gateway(router, store=store) as gw:
                    r = await gw.client.post("/call", json={"prompt": "x", "model": "hang"})
                    job_id = r.json()["job_id"]
                    await router.wait_for_calls(1)
                    held.enter_context(locked(db))
                # the gateway stopped cleanly, the job's end kept in memory
                assert store.unwritten == 1
            # the lock gone: the store's close writes it
        assert _stored(db, job_id) == ("failed", "shutdown")


async def test_health_says_the_store_file_was_deleted(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    router = FakeRouter(make_config(db=str(db), keys=KEYS))
    with trio.fail_after(30):
        async with (
            open_store(db, beat_s=0.02) as store,
            running_gateway(router, store=store) as gw,
        ):
            assert (await gw.client.get("/health")).json() == {"status": "ok"}
            db.unlink()
            for _ in range(100):
                if store.problem is not None:
                    break
                await trio.sleep(0.02)
            # anyone sees that it is degraded; an admin key sees why
            assert (await gw.client.get("/health")).json() == {"status": "degraded"}
            health = (await gw.client.get("/health", headers=bearer("secret-ops"))).json()
            assert health["status"] == "degraded"
            assert health["store_problem"] == (
                f"the job store {db} was deleted while in use:"
                " what switchman writes from now on is lost when it restarts"
            )


async def test_a_result_the_store_fails_to_take_otherwise_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store failing in a way it does not keep the finish for (a bug): the job's end is
    logged, the gateway goes on."""
    router = FakeRouter(make_config())
    with trio.fail_after(30):
        async with open_store(":memory:") as store, running_gateway(router, store=store) as gw:

            async def broken(job_id: str, **kw: object) -> bool:
                raise ValueError("not JSON")

            monkeypatch.setattr(store, "finish_job", broken)
            r = await gw.client.post("/call?wait=5", json={"prompt": "x", "model": "fast"})
            assert r.status_code == 202  # answered; the job reads as the store has it
            monkeypatch.undo()
            r = await gw.client.post("/call?wait=5", json={"prompt": "y", "model": "fast"})
            assert r.status_code == 200 and r.json()["status"] == "complete"
    said = [r for r in caplog.records if "its result could not be stored" in r.getMessage()]
    assert len(said) == 1 and said[0].exc_info is not None


async def test_a_store_that_cannot_be_read_answers_503_not_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    router = FakeRouter(make_config(db=str(db)))
    with trio.fail_after(30):
        async with (
            open_store(db, busy_timeout_s=BUSY_S, beat_s=3600) as store,
            running_gateway(router, store=store) as gw,
        ):
            r = await gw.client.post("/call?wait=5", json={"prompt": "hi", "model": "fast"})
            job_id = r.json()["job_id"]
            with closing(sqlite3.connect(db)) as other:  # the job into the file, off the WAL
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            with db.open("r+b") as f:  # the file overwritten in place (same inode): garbage
                f.write(b"\x5a" * 65536)
            for path in ("/jobs", f"/result/{job_id}"):
                r = await gw.client.get(path)
                assert r.status_code == 503, (path, r.text)
                error = r.json()["error"]
                assert error["code"] == "store_unavailable"
                assert error["message"].startswith("the job store cannot be read: ")
                assert r.headers["retry-after"] == "2"
    assert not [rec for rec in caplog.records if rec.exc_info]  # no traceback per request
