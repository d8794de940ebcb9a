from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import trio

import switchman.store as store_pkg
from switchman.store import JobStore, _sqlite, default_db_path, open_store
from switchman.store._db import _PRUNE_EVERY


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def _add(store: JobStore, job_id: str, owner: str | None = "k1") -> None:
    await store.add_job(job_id=job_id, owner=owner, handle="team", call={"prompt": job_id})


def test_all_is_complete_and_sorted() -> None:
    exported = [n for n in dir(store_pkg) if not n.startswith("_")]
    assert sorted(store_pkg.__all__) == store_pkg.__all__
    assert set(exported) - {"annotations"} <= set(store_pkg.__all__)


def test_default_db_path_prefers_xdg_data_home() -> None:
    assert default_db_path({"XDG_DATA_HOME": "/x/data", "HOME": "/h"}) == Path(
        "/x/data/switchman/switchman.db"
    )
    assert default_db_path({"HOME": "/h"}) == Path("/h/.local/share/switchman/switchman.db")


async def test_job_lifecycle_roundtrip() -> None:
    clock = Clock()
    async with open_store(":memory:", clock=clock) as store:
        job = await store.add_job(
            job_id="j1", owner="k1", handle="team-a", call={"prompt": "hi", "model": "auto"}
        )
        assert job.status == "queued" and job.submitted_at == clock.t
        clock.t += 1
        assert await store.mark_running("j1")
        assert not await store.mark_running("j1")  # only from queued
        running = await store.get_job("j1")
        assert running is not None and running.status == "running"
        assert running.started_at == clock.t
        clock.t += 2
        result = {"call_id": "c1", "status": "complete", "answer": "hello"}
        assert await store.finish_job("j1", status="complete", result=result)
        # a finished job stays finished: a late "shutdown" does not overwrite it
        assert not await store.finish_job("j1", status="failed", result=None, reason="shutdown")
        done = await store.get_job("j1")
        assert done is not None
        assert (done.status, done.result, done.reason) == ("complete", result, None)
        assert done.call == {"prompt": "hi", "model": "auto"}
        assert done.finished_at == clock.t and done.finished
        assert await store.get_job("nope") is None


async def test_list_jobs_filters_owner_status_and_limit_newest_first() -> None:
    clock = Clock()
    async with open_store(":memory:", clock=clock) as store:
        for i in range(5):
            clock.t += 1
            await _add(store, f"a{i}", owner="k1")
        await _add(store, "b0", owner="k2")
        await _add(store, "n0", owner=None)
        await store.finish_job("a1", status="failed", result=None, reason="x")
        mine = await store.list_jobs(owner="k1")
        assert [j.job_id for j in mine] == ["a4", "a3", "a2", "a1", "a0"]
        assert [j.job_id for j in await store.list_jobs(owner="k1", limit=2)] == ["a4", "a3"]
        failed = await store.list_jobs(owner="k1", status="failed")
        assert [j.job_id for j in failed] == ["a1"]
        assert [j.job_id for j in await store.list_jobs(owner=None)] == ["n0"]
        assert len(await store.list_jobs(all_owners=True)) == 7
        counts = await store.job_counts()
        assert counts == {"queued": 6, "running": 0, "complete": 0, "failed": 1}


async def test_jobs_survive_restart_and_unfinished_ones_read_as_interrupted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep" / "dir" / "s.db"
    async with open_store(path) as store:
        await _add(store, "done")
        await store.finish_job("done", status="complete", result={"answer": "42"})
        await _add(store, "queued")
        await _add(store, "running")
        await store.mark_running("running")
    async with open_store(path) as store:
        done = await store.get_job("done")
        assert done is not None and done.status == "complete"
        assert done.result == {"answer": "42"}
        for job_id in ("queued", "running"):
            job = await store.get_job(job_id)
            assert job is not None
            assert (job.status, job.reason) == ("failed", "interrupted")
            assert job.finished_at is not None


async def test_an_interrupted_job_finished_when_its_process_was_last_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not when the next process started, which may be days later: the store records
    every ``BEAT_S`` that its process is alive, and the last record is the finish."""
    monkeypatch.setattr(_sqlite, "BEAT_S", 0.01)
    path = tmp_path / "s.db"
    clock = Clock(1_000.0)
    async with open_store(path, clock=clock) as store:
        await _add(store, "running")
        await store.mark_running("running")
        clock.t = 1_010.0
        await trio.sleep(0.1)  # (beats at 1,010)
    monkeypatch.setattr(_sqlite, "BEAT_S", 3_600.0)
    async with open_store(path, clock=(clock := Clock(1_020.0))) as store:
        running = await store.get_job("running")
        assert running is not None and running.reason == "interrupted"
        assert running.finished_at == 1_010.0
        await trio.sleep(0.1)  # (its one beat, at 1,020)
        # submitted after the last beat: finished when it was submitted
        clock.t = 1_025.0
        await _add(store, "late")
    async with open_store(path, clock=Clock(90_000.0)) as store:
        late = await store.get_job("late")
        assert late is not None and late.reason == "interrupted"
        assert late.finished_at == late.submitted_at == 1_025.0


async def test_an_interrupted_job_of_a_store_that_never_beat_finishes_at_the_next_open(
    tmp_path: Path,
) -> None:
    """A store file from before the beats (no record of its process being alive)."""
    path = tmp_path / "s.db"
    async with open_store(path, clock=Clock(1_000.0)) as store:
        await _add(store, "running")
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP TABLE alive")
    async with open_store(path, clock=Clock(5_000.0)) as store:
        job = await store.get_job("running")
        assert job is not None and job.finished_at == 5_000.0


async def test_the_store_file_and_a_new_folder_are_readable_by_their_user_only(
    tmp_path: Path,
) -> None:
    """They hold every caller's prompts and answers: not for other local users, whatever
    the umask (022 made them 0644 in a 0755 folder)."""
    import os
    import stat

    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "new" / "deeper" / "switchman.db"
        async with open_store(path) as store:
            await _add(store, "a")
            await store.finish_job("a", status="complete", result={"answer": "secret plans"})
            files = [path, *path.parent.glob("switchman.db-*")]
            assert {f.name for f in files} >= {"switchman.db", "switchman.db-wal"}
            for f in files:
                assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
        for folder in (path.parent, path.parent.parent):  # each folder it made
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        # a file an older version left world-readable is narrowed when opened
        path.chmod(0o644)
        async with open_store(path):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


async def test_memory_stores_are_private() -> None:
    async with open_store(":memory:") as a, open_store(":memory:") as b:
        await _add(a, "only-a")
        assert await b.get_job("only-a") is None


async def test_retention_by_age_keeps_unfinished_jobs() -> None:
    clock = Clock()
    async with open_store(":memory:", clock=clock, retention_days=1.0) as store:
        await _add(store, "old-done")
        await store.finish_job("old-done", status="complete", result={})
        await _add(store, "old-running")
        await store.mark_running("old-running")
        clock.t += 86_400 * 2
        await _add(store, "new-done")
        await store.finish_job("new-done", status="complete", result={})
        assert await store.prune() == 1
        assert await store.get_job("old-done") is None
        assert await store.get_job("old-running") is not None
        assert await store.get_job("new-done") is not None


async def test_retention_by_count_keeps_the_newest() -> None:
    clock = Clock()
    async with open_store(":memory:", clock=clock, retention_count=3) as store:
        for i in range(6):
            clock.t += 1
            await _add(store, f"j{i}")
            await store.finish_job(f"j{i}", status="complete", result={})
        assert await store.prune() == 3
        left = [j.job_id for j in await store.list_jobs(all_owners=True)]
        assert left == ["j5", "j4", "j3"]


async def test_jobs_deleted_on_opening_are_told(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bounds lowered between two runs: the opening deletes the jobs past them (50,000
    jobs took 5 s, the daemon not yet listening) and now says how many."""
    db = tmp_path / "jobs.db"
    async with open_store(db) as store:
        for i in range(6):
            await _add(store, f"j{i}")
            await store.finish_job(f"j{i}", status="complete", result={})
    with caplog.at_level("WARNING", logger="switchman.store"):
        async with open_store(db):  # the same bounds: nothing to say
            pass
        assert not caplog.records
        async with open_store(db, retention_count=2) as store:
            assert len(await store.list_jobs(all_owners=True)) == 2
    (told,) = caplog.records
    assert told.getMessage().startswith("the job store deleted 4 finished jobs on opening")
    assert "job_retention_count (2)" in told.getMessage()


async def test_retention_by_count_is_fair_between_owners() -> None:
    """One owner's flood evicts its own oldest jobs, never those of an owner holding
    no more than its share; the old rule kept the newest over everyone."""
    clock = Clock()
    async with open_store(":memory:", clock=clock, retention_count=10) as store:
        clock.t += 1
        await _add(store, "b-only", owner="team-b")
        await store.finish_job("b-only", status="complete", result={})
        for i in range(3):
            clock.t += 1
            await _add(store, f"c{i}", owner=None)
            await store.finish_job(f"c{i}", status="failed", result={})
        for i in range(20):
            clock.t += 1
            await _add(store, f"a{i}", owner="team-a")
            await store.finish_job(f"a{i}", status="failed", result={})
        assert await store.prune() == 14
        assert await store.get_job("b-only") is not None
        assert [j.job_id for j in await store.list_jobs(owner=None)] == ["c2", "c1", "c0"]
        kept = [j.job_id for j in await store.list_jobs(owner="team-a", limit=100)]
        assert kept == [f"a{i}" for i in range(19, 13, -1)]  # its newest 6 (cap 6: 1+3+6)


async def test_fair_retention_never_drops_unfinished_jobs() -> None:
    clock = Clock()
    async with open_store(":memory:", clock=clock, retention_count=4) as store:
        for i in range(4):
            clock.t += 1
            await _add(store, f"run{i}", owner="team-a")  # queued: never pruned
        for i in range(4):
            clock.t += 1
            await _add(store, f"done{i}", owner="team-a")
            await store.finish_job(f"done{i}", status="complete", result={})
        await _add(store, "b", owner="team-b")
        # cap 3: a keeps its newest 3 and loses its older finished one; its queued
        # jobs stay though they are beyond the cap
        assert await store.prune() == 1
        left = {j.job_id for j in await store.list_jobs(all_owners=True, limit=100)}
        assert left == {"run0", "run1", "run2", "run3", "done1", "done2", "done3", "b"}


async def test_retention_runs_on_open(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "s.db"
    async with open_store(path, clock=clock) as store:
        await _add(store, "old")
        await store.finish_job("old", status="complete", result={})
    clock.t += 86_400 * 30
    async with open_store(path, clock=clock, retention_days=7) as store:
        assert await store.get_job("old") is None


@pytest.mark.parametrize("kind", ["spend", "stats"])
async def test_key_value_snapshots_replace_and_persist(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with open_store(path) as store:
        save = getattr(store, f"save_{kind}")
        load = getattr(store, f"load_{kind}")
        assert await load() == {}
        await save({"team-a:day": {"usd": 1.5, "window": [1, 2]}, "global": 3})
        await save({"team-a:day": {"usd": 2.0}})
        assert await load() == {"team-a:day": {"usd": 2.0}}
    async with open_store(path) as store:
        assert await getattr(store, f"load_{kind}")() == {"team-a:day": {"usd": 2.0}}
        other = "stats" if kind == "spend" else "spend"
        assert await getattr(store, f"load_{other}")() == {}


def _hold(rid: str, nanos: int) -> dict[str, object]:
    return {"id": rid, "nanos": nanos, "windows": [["global", "day:2026-11-27"]]}


async def test_holds_saved_as_they_change_read_back_with_the_spend(tmp_path: Path) -> None:
    """A save of what changed among the holds adds and drops those alone; the snapshot
    read back is the whole one, after a restart too, and a whole save replaces them all."""
    path = tmp_path / "s.db"
    settled = {"nano_usd": {"global": {"day:2026-11-27": 5}}}
    async with open_store(path) as store:
        await store.save_spend({**settled, "held": [_hold("a:1", 10), _hold("b:1", 20)]})
        await store.save_spend_change(settled, {"c:1": _hold("c:1", 30)}, {"a:1"})
        await store.save_spend_change(
            {"nano_usd": {"global": {"day:2026-11-27": 6}}}, {"d:2": _hold("d:2", 40)}, ()
        )
    async with open_store(path) as store:
        assert await store.load_spend() == {
            "nano_usd": {"global": {"day:2026-11-27": 6}},
            "held": [_hold("b:1", 20), _hold("c:1", 30), _hold("d:2", 40)],
        }
        await store.save_spend(settled)  # (no holds open: none stored)
        assert await store.load_spend() == settled


async def test_holds_a_store_from_before_kept_with_its_spend_are_read(tmp_path: Path) -> None:
    """A store written before holds had a table of their own kept them in the spend
    snapshot, without ids: read as before, and replaced by the first whole save."""
    path = tmp_path / "s.db"
    old = {"nano_usd": {"global": {"day:2026-11-27": 5}}, "held": [{"nanos": 7, "windows": []}]}
    async with open_store(path) as store:
        await store._run(store._db.save_kv, "spend", old)  # as the code before wrote it
        assert await store.load_spend() == old
        await store.save_spend({**old, "held": [_hold("e:1", 9)]})
        assert await store.load_spend() == {**old, "held": [_hold("e:1", 9)]}


async def test_old_jobs_are_pruned_as_new_ones_arrive() -> None:
    clock = Clock()
    async with open_store(":memory:", clock=clock, retention_count=10) as store:
        for i in range(_PRUNE_EVERY):
            clock.t += 1
            await _add(store, f"j{i}")
            await store.finish_job(f"j{i}", status="complete", result={})
        left = await store.list_jobs(all_owners=True, limit=1000)
        assert len(left) == 10
        assert left[0].job_id == f"j{_PRUNE_EVERY - 1}"


async def test_a_batch_shares_one_commit_and_a_failing_statement_fails_alone(
    tmp_path: Path,
) -> None:
    import sqlite3

    import trio

    async with open_store(tmp_path / "jobs.db") as store:
        await _add(store, "dup")
        outcomes: dict[str, str] = {}

        async def add(job_id: str) -> None:
            try:
                await _add(store, job_id)
                outcomes[job_id] = "stored"
            except sqlite3.IntegrityError:
                outcomes[job_id] = "refused"

        async with trio.open_nursery() as nursery:  # queued together: one batch
            for job_id in ("a", "b", "dup", "c", "d"):
                nursery.start_soon(add, job_id)
            nursery.start_soon(store.prune)
            nursery.start_soon(store.save_spend, {"global": 1.5})
    assert outcomes == {
        "a": "stored",
        "b": "stored",
        "dup": "refused",
        "c": "stored",
        "d": "stored",
    }
    async with open_store(tmp_path / "jobs.db") as again:  # all of it reached the disk
        for job_id in ("a", "b", "c", "d", "dup"):
            assert await again.get_job(job_id) is not None, job_id
        assert await again.load_spend() == {"global": 1.5}


def test_batched_statements_share_one_transaction_and_a_failed_commit_fails_them_all(
    tmp_path: Path,
) -> None:
    import sqlite3

    import outcome

    from switchman.store._db import _Db, _run_batch

    with closing(_Db(str(tmp_path / "b.db"))) as db:
        commits: list[str] = []
        db.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        ok = _run_batch(db.conn, [(db.save_kv, ("spend", {"x": 1.0})), (db.load_kv, ("spend",))])
        assert [o.unwrap() for o in ok] == [None, {"x": 1.0}]
        assert commits == ["COMMIT"]  # one commit for the batch (save_kv used a savepoint)
        # a commit that cannot happen: every statement of the batch reports it, none stays
        with closing(sqlite3.connect(str(tmp_path / "b.db"), isolation_level=None)) as blocker:
            blocker.execute("BEGIN EXCLUSIVE")
            db.conn.execute("PRAGMA busy_timeout=0")
            failed = _run_batch(
                db.conn, [(db.save_kv, ("spend", {"y": 2.0})), (db.load_kv, ("spend",))]
            )
            assert all(isinstance(o, outcome.Error) for o in failed)
            blocker.execute("ROLLBACK")
        assert db.load_kv("spend") == {"x": 1.0}
        assert not db.conn.in_transaction


async def test_one_process_at_a_time_owns_a_store_file(tmp_path: Path) -> None:
    from switchman.store import StoreError

    db = tmp_path / "jobs.db"
    async with open_store(db) as first:
        await first.add_job(job_id="job_1", owner=None, handle="h", call={"prompt": "x"})
        with pytest.raises(StoreError, match="in use by another switchman store"):
            async with open_store(db):
                pass
        link = tmp_path / "link.db"  # the same file under another name
        link.symlink_to(db)
        with pytest.raises(StoreError, match="in use by another switchman store"):
            async with open_store(link):
                pass
        assert (await first.get_job("job_1")) is not None  # the owner is untouched
    async with open_store(db) as again:  # free once the owner has closed it
        assert (await again.get_job("job_1")) is not None


async def test_a_place_no_store_can_be_made_is_named_in_a_store_error(tmp_path: Path) -> None:
    from switchman.store import StoreError

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=r"cannot use .*a-file/jobs\.db as the job store"):
        async with open_store(blocker / "jobs.db"):  # its directory is a file
            pass


async def test_a_file_that_is_not_sqlite_is_named_in_a_clear_error(tmp_path: Path) -> None:
    from switchman.store import StoreError

    db = tmp_path / "notes.txt"
    db.write_text("not a database at all, just some text " * 100)
    with pytest.raises(StoreError, match=r"cannot use .*notes\.txt as the job store"):
        async with open_store(db):
            pass


async def test_a_job_is_rated_once_and_that_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.db")
    async with open_store(path) as store:
        await store.add_job(job_id="j1", owner=None, handle="h", call={"prompt": "hi"})
        assert await store.mark_rated("j1")
        assert not await store.mark_rated("j1")
        assert not await store.mark_rated("nope")  # no such job: nothing to rate
    async with open_store(path) as store:
        job = await store.get_job("j1")
        assert job is not None and job.rated_at is not None
        assert not await store.mark_rated("j1")
        await store.unmark_rated("j1")  # the rating could not be credited after all
        assert await store.mark_rated("j1")


async def test_a_database_from_before_ratings_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, owner TEXT,"
            " handle TEXT NOT NULL, submitted_at REAL NOT NULL, started_at REAL,"
            " finished_at REAL, reason TEXT, call TEXT NOT NULL, result TEXT)"
        )
        conn.execute(
            "INSERT INTO jobs (id, status, handle, submitted_at, call) VALUES"
            " ('old', 'complete', 'h', 1.0, '{}')"
        )
        conn.commit()
    async with open_store(str(path)) as store:
        job = await store.get_job("old")
        assert job is not None and job.rated_at is None
        assert await store.mark_rated("old")


def _files(folder: Path) -> dict[str, bytes]:
    """What the files of a store hold but its -shm (a reader's index: reading marks it)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".db-shm"}


async def test_a_store_a_newer_switchman_wrote_is_not_opened(tmp_path: Path) -> None:
    from switchman.store import StoreError
    from switchman.store._db import SCHEMA_VERSION

    db = tmp_path / "jobs.db"
    async with open_store(str(db)):
        pass
    later = sqlite3.connect(db)  # a newer switchman, its WAL not folded into the file yet
    later.execute("PRAGMA wal_autocheckpoint = 0")
    later.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    later.execute("CREATE TABLE later (x)")  # something this version does not know
    files = _files(tmp_path)
    assert "jobs.db-wal" in files
    with pytest.raises(StoreError) as info:
        async with open_store(str(db)):
            pass
    assert f"schema version {SCHEMA_VERSION + 1}; this one knows up to {SCHEMA_VERSION}" in str(
        info.value
    )
    assert str(db) in str(info.value)
    # untouched: no table, pragma or row of this version's, its WAL left as it was
    assert _files(tmp_path) == files
    later.close()
