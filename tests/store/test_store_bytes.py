"""The job store bounded by size (``job_retention_mb``), not only by count and age: large
calls are pruned, oldest finished first, shared fairly between owners, and the file gives
the space back to the disk. Real SQLite files in ``tmp_path``."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import textwrap
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from switchman._errors import ValidationError
from switchman.catalog import load_config
from switchman.store import JobRecord, JobStore, open_store
from switchman.store._db import BUSY_TIMEOUT_S, MB, _Db, run_batch_waiting

#: a call of about 100 kB (its prompt), as stored
BIG = "lorem ipsum " * 8_500


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _size(value: Mapping[str, Any] | None) -> int:
    return 0 if value is None else len(json.dumps(value, separators=(",", ":")))


async def _stored_bytes(store: JobStore, owner: str | None = None) -> int:
    jobs = await store.list_jobs(owner=owner, all_owners=owner is None, limit=100_000)
    return sum(_size(j.call) + _size(j.result) for j in jobs)


async def _ids(store: JobStore, owner: str | None = None) -> list[str]:
    jobs = await store.list_jobs(owner=owner, all_owners=owner is None, limit=100_000)
    return [j.job_id for j in jobs]


async def _big_job(
    store: JobStore, clock: Clock, job_id: str, owner: str | None = "team-a", *, finish: bool = True
) -> None:
    clock.t += 1
    await store.add_job(job_id=job_id, owner=owner, handle="h", call={"prompt": BIG + job_id})
    if finish:
        await store.finish_job(job_id, status="failed", result={"error": "context too long"})


def _file_bytes(path: Path) -> int:
    """The store's file and its ``-wal``, as on the disk."""
    return sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))


async def test_a_store_given_large_calls_stays_within_its_bytes_and_keeps_the_newest(
    tmp_path: Path,
) -> None:
    """Calls refused as too long are stored whole; they no longer pile up until 10,000
    of them: the store prunes by their bytes as they arrive, long before 256 new jobs."""
    clock = Clock()
    path = tmp_path / "jobs.db"
    async with open_store(path, clock=clock, retention_mb=1) as store:
        for i in range(40):
            await _big_job(store, clock, f"j{i:02}")
            # (pruned when a megabyte more has been stored: at most that much over)
            assert await _stored_bytes(store) <= 2 * MB
        await store.prune()
        assert await _stored_bytes(store) <= MB
        kept = await _ids(store)
        assert kept == [f"j{i:02}" for i in range(39, 39 - len(kept), -1)]  # the newest
        assert len(kept) == MB // (len(BIG) + 60)  # as many as fit (10)
    assert _file_bytes(path) < 1.5 * MB  # 4 MB were stored


async def test_the_byte_bound_is_shared_fairly_between_owners(tmp_path: Path) -> None:
    """One key's flood of large calls evicts its own oldest jobs, never those of a key
    holding less than its share (though they are older), nor a job still running."""
    clock = Clock()
    async with open_store(tmp_path / "jobs.db", clock=clock, retention_mb=1) as store:
        for i in range(3):
            await _big_job(store, clock, f"b{i}", owner="team-b")
        await _big_job(store, clock, "a-running", finish=False)
        for i in range(30):
            await _big_job(store, clock, f"a{i:02}")
        await store.prune()
        assert await _ids(store, "team-b") == ["b2", "b1", "b0"]
        b_bytes = await _stored_bytes(store, "team-b")
        # team-a's share is what team-b leaves of the megabyte: its newest 7 jobs; its
        # running job stays too (never pruned: counted, as in the count bound, in its
        # place among team-a's jobs, the oldest)
        a_kept = [f"a{i:02}" for i in range(29, 22, -1)]
        assert await _ids(store, "team-a") == [*a_kept, "a-running"]
        finished = [await store.get_job(i) for i in a_kept]
        assert sum(_size(j.call) + _size(j.result) for j in finished if j) <= MB - b_bytes


async def test_a_prune_gives_the_space_back_to_the_disk(tmp_path: Path) -> None:
    """The file shrinks when jobs are pruned (by bytes, or by count alike), where it used
    to keep its largest size for ever."""
    clock = Clock()
    path = tmp_path / "jobs.db"
    async with open_store(path, clock=clock, retention_mb=100) as store:
        for i in range(40):
            await _big_job(store, clock, f"j{i:02}")
    full = _file_bytes(path)  # (all in the file itself, now closed)
    assert full > 4 * MB
    async with open_store(path, clock=clock, retention_mb=100) as store:
        store.retention_count = 20
        assert await store.prune() == 20
        assert _file_bytes(path) < full * 0.6
        store.retention_mb = 0.5
        assert await store.prune() == 15
        assert await _ids(store) == ["j39", "j38", "j37", "j36", "j35"]
        assert _file_bytes(path) < 0.75 * MB
    assert _file_bytes(path) < 0.75 * MB
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental


def _legacy_store(path: Path, jobs: int) -> None:
    """A store as made before the byte bound: no ``size`` column, no auto_vacuum."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(
            """
            CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, owner TEXT,
                handle TEXT NOT NULL, submitted_at REAL NOT NULL, started_at REAL,
                finished_at REAL, reason TEXT, call TEXT NOT NULL, result TEXT,
                rated_at REAL);
            CREATE INDEX jobs_by_owner ON jobs (owner, submitted_at);
            PRAGMA user_version = 1;
            """
        )
        for i in range(jobs):
            at = 1_000_000.0 + i
            conn.execute(
                "INSERT INTO jobs VALUES (?, 'complete', 'team-a', 'team-a', ?, ?, ?, NULL,"
                " ?, '{}', NULL)",
                (f"old{i:02}", at, at, at, json.dumps({"prompt": BIG})),
            )


async def test_an_older_store_is_bounded_by_its_jobs_text_and_gives_space_back(
    tmp_path: Path,
) -> None:
    """A store from before: its jobs count by their text, and a small file is converted
    (one VACUUM as it opens) so that it shrinks from then on."""
    path = tmp_path / "jobs.db"
    _legacy_store(path, 30)
    clock = Clock(1_000_100.0)
    async with open_store(path, clock=clock, retention_mb=1) as store:
        kept = await _ids(store)
        assert kept == [f"old{i:02}" for i in range(29, 19, -1)]
        assert _file_bytes(path) < 2 * MB
        await _big_job(store, clock, "new")
        assert (await _ids(store))[0] == "new"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "jobs_by_owner_size" in names and "jobs_by_owner" not in names


def test_an_older_store_too_large_to_convert_says_how(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    _legacy_store(path, 3)
    db = _Db(str(path))
    try:
        with caplog.at_level(logging.WARNING, logger="switchman.store"):
            assert not db.convert(max_bytes=100_000)
        assert db.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
        (said,) = [r.getMessage() for r in caplog.records]
        assert "keeps its size" in said and "VACUUM" in said and str(path) in said
        assert db.convert(max_bytes=MB)
        assert db.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    finally:
        db.close()


def _config_errors(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "switchman.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ValidationError) as exc:
        load_config(path, env={})
    return {f.field: f.message for f in exc.value.fields}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("-1", "must be greater than 0; got -1.0"),
        ("-0.5", "must be greater than 0; got -0.5"),
        ("0", "must be greater than 0; got 0.0"),  # (it would delete each job as it ends)
        ('"1GB"', "must be a number; got string"),
        ("true", "must be a number; got boolean"),
        ("inf", "must be finite"),
    ],
)
def test_job_retention_mb_must_be_a_number_above_0(tmp_path: Path, value: str, said: str) -> None:
    found = _config_errors(tmp_path, f"[server]\njob_retention_mb = {value}\n")
    assert found == {"server.job_retention_mb": said}


def test_job_retention_mb_defaults_to_a_gigabyte_and_takes_a_fraction(tmp_path: Path) -> None:
    path = tmp_path / "switchman.toml"
    path.write_text("[server]\nport = 8265\n", encoding="utf-8")
    assert load_config(path, env={}).server.job_retention_mb == 1024
    path.write_text("[server]\njob_retention_mb = 0.5\n", encoding="utf-8")
    assert load_config(path, env={}).server.job_retention_mb == 0.5


def test_space_given_back_inside_a_batch_shrinks_the_file_once_it_is_committed(
    tmp_path: Path,
) -> None:
    """A prune that shares its transaction with other statements (under load) gives the
    space back too: the file shrinks as the batch commits, not at some later checkpoint."""
    path = tmp_path / "jobs.db"
    db = _Db(str(path))
    try:
        for i in range(20):
            db.add_job(
                JobRecord(
                    job_id=f"j{i:02}",
                    status="queued",
                    owner="team-a",
                    handle="h",
                    submitted_at=1_000_000.0 + i,
                    call={"prompt": BIG},
                )
            )
            db.finish_job(f"j{i:02}", "complete", {}, None, 1_000_000.0 + i)
        db.checkpoint()
        full = _file_bytes(path)
        assert full > 2 * MB
        ops: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (db.prune, (1_000_100.0, 10_000, 86_400.0, MB // 2)),
            (db.get_job, ("j19",)),
        ]
        pruned, kept = run_batch_waiting(db, ops, BUSY_TIMEOUT_S)
        assert pruned.unwrap() == 15 and kept.unwrap() is not None
        assert _file_bytes(path) < full / 3
    finally:
        db.close()


async def test_large_calls_that_were_running_are_pruned_as_they_end(tmp_path: Path) -> None:
    """A burst of large calls all running at once: no prune can drop them while they run,
    and once they had ended nothing pruned the store until its 5-minute prune (a 5 MB
    bound held 11 MB of jobs). A job that ends while the store is that far over prunes."""
    clock = Clock()
    async with open_store(tmp_path / "jobs.db", clock=clock, retention_mb=1) as store:
        ids = [f"j{i:02}" for i in range(30)]  # about 3 MB, all running
        for job_id in ids:
            await _big_job(store, clock, job_id, finish=False)
        assert await _stored_bytes(store) > 2 * MB
        for job_id in ids:
            await store.finish_job(job_id, status="failed", result={"error": "too long"})
        assert await _stored_bytes(store) <= 2 * MB  # (within a prune's margin, at most)
        kept = await _ids(store)
        assert kept == ids[::-1][: len(kept)]  # the newest


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("job_retention_count", "must be at least 1; got 0"),
        ("job_retention_days", "must be greater than 0; got 0.0"),
    ],
)
def test_no_retention_bound_is_0(tmp_path: Path, key: str, said: str) -> None:
    """0 jobs or 0 days would delete each job as it ends (its /result gone at once): a user
    meaning "no limit" is told, not left to lose every job."""
    assert _config_errors(tmp_path, f"[server]\n{key} = 0\n") == {f"server.{key}": said}


def _plans(conn: sqlite3.Connection, statements: list[str]) -> list[str]:
    """What SQLite does for each of ``statements`` (as run, parameters bound), a step each."""
    steps = []
    for sql in statements:
        if sql.split(None, 1)[0].upper() in {"SELECT", "DELETE", "UPDATE"}:
            steps += [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    return steps


def test_a_prune_reads_indexes_not_every_jobs_row(tmp_path: Path) -> None:
    """A prune runs every 256 jobs: each of its reads of ``jobs`` seeks an index or reads
    one alone (sizes, owners, submission times), never every job's row (at 10,000 jobs
    a scan of them held every write up for tens of milliseconds), whichever bound it
    applies: age, count, bytes."""
    db = _Db(str(tmp_path / "jobs.db"))
    try:
        for i in range(40):
            job = JobRecord(
                job_id=f"j{i:02}",
                status="running",
                owner=f"team-{i % 2}",
                handle="h",
                submitted_at=1_000.0 + i,
                started_at=1_000.0 + i,
                call={"prompt": "x" * 2_000},
            )
            db.add_job(job)
            db.finish_job(job.job_id, "complete", {"answer": "y" * 2_000}, None, 1_000.5 + i)
        ran: list[str] = []
        db.conn.set_trace_callback(ran.append)
        # every bound bites: ten jobs past the age, 20 beyond the count, 30 KB the bytes
        assert db.prune(1_010.0 + 86_400.0, 20, 86_400.0, 30_000) > 10
        db.conn.set_trace_callback(None)
        steps = _plans(db.conn, ran)
        assert any("jobs_by_status" in s for s in steps)  # the age bound's seek
        assert any("COVERING INDEX jobs_by_owner_size" in s for s in steps)
        scans = [s for s in steps if s.startswith("SCAN jobs") and "COVERING INDEX" not in s]
        assert scans == [], steps
    finally:
        db.close()


def test_an_older_stores_jobs_are_given_their_sizes_as_it_opens(tmp_path: Path) -> None:
    """Rows written without a size (by a switchman from before the byte bound, even after
    this one used the file) get their text's as the store opens: the bound sums sizes."""
    path = tmp_path / "jobs.db"
    _legacy_store(path, 3)
    _Db(str(path)).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(  # an older switchman again, after this one
            "INSERT INTO jobs (id, status, owner, handle, submitted_at, call, result)"
            " VALUES ('later', 'complete', 'team-a', 'team-a', 2e6, '{\"p\":1}', '{}')"
        )
    db = _Db(str(path))
    try:
        sizes = dict(db.conn.execute("SELECT id, size FROM jobs").fetchall())
        assert sizes["later"] == len('{"p":1}') + len("{}")
        assert sizes["old00"] == len(json.dumps({"prompt": BIG})) + len("{}")
        assert None not in sizes.values()
    finally:
        db.close()


def test_rows_without_a_size_written_while_it_runs_do_not_break_a_prune(tmp_path: Path) -> None:
    """An owner whose every row an older switchman wrote without a size while this one
    had the file open: its sum is 0 until the next open gives them theirs, not NULL (a
    prune raised TypeError on it, every 256th job)."""
    db = _Db(str(tmp_path / "jobs.db"))
    try:
        db.conn.executemany(
            "INSERT INTO jobs (id, status, owner, handle, submitted_at, finished_at, call)"
            " VALUES (?, 'complete', 'old-team', 'old-team', ?, ?, '{}')",
            [(f"o{i}", 1_000.0 + i, 1_000.5 + i) for i in range(5)],
        )
        assert db.prune(2_000.0, 3, 86_400.0, 10**9) == 2  # the count bound still bites
    finally:
        db.close()
