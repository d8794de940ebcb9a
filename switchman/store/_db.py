"""The synchronous half of the store: its schema, its records, and the statements that
run in its worker thread (one at a time, in batches that share a transaction).

See :mod:`switchman.store._sqlite` for the async face and what it promises."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeVar

import attrs
import outcome
import trio

from switchman._errors import SwitchmanError
from switchman.store._retention import fair_cap

JobStatus = Literal["queued", "running", "complete", "failed"]
JOB_STATUSES: Final = ("queued", "running", "complete", "failed")
FINISHED: Final = ("complete", "failed")
MEMORY: Final = ":memory:"

log = logging.getLogger("switchman.store")

_KV_TABLES: Final = ("spend", "stats")
#: how often an open store records that its process is alive (a job left running by a
#: killed process is stored as finished at the last record, at most this late)
BEAT_S: Final = 5.0
#: prune old jobs after this many inserts (and on open)
_PRUNE_EVERY: Final = 256
#: the schema version (``PRAGMA user_version``) from which a job's owner is its handle
_OWNED_BY_HANDLE: Final = 1
#: the newest schema this code knows: a store a later version wrote is not opened (this
#: code could misread it, and would write rows that version does not expect)
SCHEMA_VERSION: Final = _OWNED_BY_HANDLE
#: how long a statement waits for another process's write lock before it fails
BUSY_TIMEOUT_S: Final = 5.0
#: how often finished jobs that could not be written are tried again
RETRY_S: Final = 1.0
#: how long a statement waits for another process's lock while writes are failing
FAILING_BUSY_S: Final = 0.1
#: past this many finished jobs waiting to be written, no new job is taken
_PENDING_MAX: Final = 1024
#: a megabyte of ``job_retention_mb``
MB: Final = 1 << 20
#: prune after this share of the byte bound has been stored since the last prune (at
#: least ``_PRUNE_BYTES_MIN``): a flood of large calls overshoots the bound by that much
_PRUNE_SHARE: Final = 16
_PRUNE_BYTES_MIN: Final = MB
#: after a prune, free pages are given back to the disk when they come to this much, or
#: to this share of the file (fewer are kept for the next jobs, which reuse them)
_RECLAIM_AT: Final = 64 * MB
_RECLAIM_SHARE: Final = 4
#: a store made before stores gave space back is converted (a ``VACUUM`` at open, which
#: copies what it holds) only when it holds at most this much
_CONVERT_MAX: Final = 256 * MB
#: the ``-wal`` file is cut back to this size once it has been written to the database
_WAL_LIMIT: Final = 64 * MB
#: a job's size: its call and result as stored (JSON, ASCII: a byte a character); rows
#: from before ``size`` was kept are given theirs at open (``_sized``), so a sum of sizes
#: reads an index alone, never the rows' text (a row an older switchman writes while
#: this one runs counts 0 until the next open: a sum of none is not NULL)
_SIZE: Final = "COALESCE(size, 0)"
#: when a job finishes: ``now`` (the one parameter), never before it was submitted or began
#: (a wall clock stepped back mid-call); with ``started_at`` ``COALESCE(started_at, ?)``
#: clamped the same way, ``submitted_at <= started_at <= finished_at`` always holds
_NOT_BEFORE_START: Final = "MAX(?, submitted_at, COALESCE(started_at, submitted_at))"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    owner TEXT,
    handle TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    reason TEXT,
    call TEXT NOT NULL,
    result TEXT,
    rated_at REAL,
    size INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, submitted_at);
CREATE TABLE IF NOT EXISTS spend (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS held (id TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alive (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
"""
#: after the columns a database from before may lack are added: an owner's jobs newest
#: first, with their sizes (what the byte bound sums, read from the index alone, not from
#: the rows' text); it replaces ``jobs_by_owner (owner, submitted_at)``
_INDEXES: Final = """
CREATE INDEX IF NOT EXISTS jobs_by_owner_size ON jobs (owner, submitted_at, size);
DROP INDEX IF EXISTS jobs_by_owner;
"""

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class JobRecord:
    """One job as stored. Times are wall-clock seconds since the epoch."""

    job_id: str
    status: JobStatus
    owner: str | None
    handle: str
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None
    call: Mapping[str, Any] = attrs.field(factory=dict)
    result: Mapping[str, Any] | None = None
    #: when the job's answer was rated (``POST /feedback``), None if never
    rated_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class StoreError(SwitchmanError):
    """The store cannot be opened: its file is in use by another process, is not a
    SQLite database, or cannot be written (:class:`StoreUnavailable`: not now); or one
    store was handed to a second router while the first runs on it."""

    code: ClassVar[str] = "store_error"


@attrs.frozen(kw_only=True)
class _Finish:
    """A job's finish that could not be written yet (kept until it can be)."""

    status: JobStatus
    result: Mapping[str, Any] | None
    reason: str | None
    at: float
    #: when the job began, where it waited to (a router slot) after it was stored running
    started: float | None = None

    def over(self, record: JobRecord) -> JobRecord:
        """``record`` (as stored: queued or running) as this finish leaves it."""
        if record.finished:
            return record
        # (``_NOT_BEFORE_START``'s rule, as the finish will be written)
        started = record.started_at
        if self.started is not None:
            started = max(self.started, record.submitted_at)
        elif started is None:
            started = max(self.at, record.submitted_at)
        return attrs.evolve(
            record,
            status=self.status,
            result=self.result,
            reason=self.reason,
            started_at=started,
            finished_at=max(self.at, started),
        )


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/switchman/switchman.db``, else ``~/.local/share/switchman/switchman.db``."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/share")
    return Path(base) / "switchman" / "switchman.db"


def _row(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        job_id=row["id"],
        status=row["status"],
        owner=row["owner"],
        handle=row["handle"],
        submitted_at=row["submitted_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        reason=row["reason"],
        call=json.loads(row["call"]),
        result=None if row["result"] is None else json.loads(row["result"]),
        rated_at=row["rated_at"],
    )


@contextmanager
def _atomic(conn: sqlite3.Connection) -> Iterator[None]:
    """All of the block or none of it: its own transaction, or a savepoint inside the
    batch's transaction (``_run_batch``) when there is one."""
    if not conn.in_transaction:
        conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return
    conn.execute("SAVEPOINT atomic")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO atomic")
        conn.execute("RELEASE atomic")
        raise
    conn.execute("RELEASE atomic")


def _schema_version(path: str) -> int:
    """The schema version of the store at ``path``, read without writing to it (a
    connection that writes would fold a WAL file into it on closing); 0 when new."""
    if path == MEMORY or not os.path.exists(path):
        return 0
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


class _Db:
    """The synchronous half: every method runs in a worker thread, one at a time."""

    def __init__(self, path: str, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._prepare(path, busy_timeout_s)
        except BaseException:  # (a file that is not a database, locked, full: not left open)
            self.conn.close()
            raise

    def _prepare(self, path: str, busy_timeout_s: float) -> None:
        self.conn.row_factory = sqlite3.Row
        self.path = path
        version = _schema_version(path)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"cannot use {path} as the job store: a newer switchman wrote it (schema "
                f"version {version}; this one knows up to {SCHEMA_VERSION}): run that "
                "version, or give this one another store"
            )
        if path != MEMORY:
            # a new file gives pruned jobs' pages back to the disk (``_reclaim``); set
            # before its first table, it is kept in the file (an older file: ``convert``)
            self.conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
        self.busy_timeout_s = busy_timeout_s
        self._busy_s = busy_timeout_s
        #: free pages were given back inside a batch's transaction: the file shrinks at a
        #: checkpoint once it is committed (``run_batch_waiting``)
        self.checkpoint_due = False
        #: bytes the jobs came to above the byte bound after the last prune (running ones)
        self.over_bytes = 0
        self.conn.execute(f"PRAGMA busy_timeout={max(int(busy_timeout_s * 1000), 0)}")
        self.conn.executescript(_SCHEMA)
        columns = {row["name"] for row in self.conn.execute("PRAGMA table_info(jobs)")}
        if "rated_at" not in columns:  # a database from before feedback was kept
            self.conn.execute("ALTER TABLE jobs ADD COLUMN rated_at REAL")
        if "size" not in columns:  # from before the byte bound
            self.conn.execute("ALTER TABLE jobs ADD COLUMN size INTEGER")
        self._sized()
        self.conn.executescript(_INDEXES)
        if self.conn.execute("PRAGMA user_version").fetchone()[0] < _OWNED_BY_HANDLE:
            # a gateway key's jobs were owned by its variable's name (key_env): they are
            # its handle's now, which every row keeps, so a variable given to another
            # team brings none of them along
            with _atomic(self.conn):
                self.conn.execute(
                    "UPDATE jobs SET owner = handle WHERE owner IS NOT NULL AND owner != handle"
                )
                self.conn.execute(f"PRAGMA user_version = {_OWNED_BY_HANDLE}")

    def _sized(self) -> None:
        """Give the rows written without a size (by a switchman from before the byte
        bound, which may also have written to this file since) theirs: their text."""
        self.conn.execute(
            "UPDATE jobs SET size = length(call) + COALESCE(length(result), 0) WHERE size IS NULL"
        )

    def close(self) -> None:
        self.conn.close()

    def add_job(self, job: JobRecord) -> int:
        """Store ``job``; its size in bytes (its call, as stored)."""
        call = json.dumps(job.call, separators=(",", ":"))
        self.conn.execute(
            "INSERT INTO jobs (id, status, owner, handle, submitted_at, started_at, call, size)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.job_id,
                job.status,
                job.owner,
                job.handle,
                job.submitted_at,
                job.started_at,
                call,
                len(call),
            ),
        )
        return len(call)

    def mark_running(self, job_id: str, now: float) -> bool:
        # (never before it was submitted: a wall clock stepped back since)
        cur = self.conn.execute(
            "UPDATE jobs SET status = 'running', started_at = MAX(?, submitted_at)"
            " WHERE id = ? AND status = 'queued'",
            (now, job_id),
        )
        return cur.rowcount > 0

    def finish_job(
        self,
        job_id: str,
        status: str,
        result: Mapping[str, Any] | None,
        reason: str | None,
        now: float,
        started: float | None = None,
    ) -> bool:
        encoded = None if result is None else json.dumps(result, separators=(",", ":"))
        # (a job not finished has no result: its size is its call's until now; ``started``
        # given, it began then: SQLite's MAX of a NULL is NULL). The finish is never before
        # the start as written here: an UPDATE's right-hand sides read the row as it was
        # (a queued job's NULL start), so the new start is spelt out in both
        began = "COALESCE(MAX(?, submitted_at), started_at, MAX(?, submitted_at))"
        began_by = (started, now)
        cur = self.conn.execute(
            "UPDATE jobs SET status = ?, result = ?, reason = ?,"
            f" finished_at = MAX(?, {began}), started_at = {began},"
            " size = COALESCE(size, length(call)) + ?"
            " WHERE id = ? AND status IN ('queued', 'running')",
            (status, encoded, reason, now, *began_by, *began_by, len(encoded or ""), job_id),
        )
        return cur.rowcount > 0

    def finish_jobs(self, finishes: Sequence[tuple[str, _Finish]]) -> None:
        """Several finishes kept while the store could not be written: all or none."""
        with _atomic(self.conn):
            for job_id, f in finishes:
                self.finish_job(job_id, f.status, f.result, f.reason, f.at, f.started)

    def mark_rated(self, job_id: str, now: float) -> bool:
        cur = self.conn.execute(
            "UPDATE jobs SET rated_at = ? WHERE id = ? AND rated_at IS NULL", (now, job_id)
        )
        return cur.rowcount > 0

    def unmark_rated(self, job_id: str) -> None:
        self.conn.execute("UPDATE jobs SET rated_at = NULL WHERE id = ?", (job_id,))

    def get_job(self, job_id: str) -> JobRecord | None:
        row = self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _row(row)

    def list_jobs(
        self,
        owner: str | None,
        all_owners: bool,
        status: str | None,
        limit: int,
        finishing: Mapping[str, _Finish] | None = None,
    ) -> list[JobRecord]:
        """``finishing``: finishes not written yet, read as if they were."""
        finishing = finishing or {}
        where: list[str] = []
        args: list[Any] = []
        if not all_owners:
            where.append("owner IS ?")
            args.append(owner)
        if status is not None:  # (a job finishing may be stored as another status)
            also = ", ".join("?" * len(finishing))
            where.append(f"(status = ? OR id IN ({also}))" if finishing else "status = ?")
            args.extend([status, *finishing])
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY submitted_at DESC, rowid DESC LIMIT ?"
        args.append(limit + (len(finishing) if status is not None else 0))
        records = [_row(r) for r in self.conn.execute(sql, args).fetchall()]
        if finishing:
            records = [
                f.over(r) if (f := finishing.get(r.job_id)) is not None else r for r in records
            ]
            records = [r for r in records if status is None or r.status == status]
        return records[:limit]

    def job_counts(self, finishing: Mapping[str, _Finish] | None = None) -> dict[str, int]:
        """``finishing``: finishes not written yet, counted as if they were."""
        counts = dict.fromkeys(JOB_STATUSES, 0)
        for status, n in self.conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[status] = n
        if finishing:
            marks = ", ".join("?" * len(finishing))
            stored = self.conn.execute(
                f"SELECT id, status FROM jobs WHERE id IN ({marks})", list(finishing)
            )
            for job_id, status in stored:
                if status not in FINISHED:
                    counts[status] -= 1
                    counts[finishing[job_id].status] += 1
        return counts

    def fail_unfinished(self, reason: str, now: float) -> int:
        # finished when the process that ran them was last known alive (its last beat,
        # not this start, which may be days later), and never before a job began
        row = self.conn.execute("SELECT at FROM alive WHERE id = 1").fetchone()
        last = now if row is None else min(float(row[0]), now)
        cur = self.conn.execute(
            f"UPDATE jobs SET status = 'failed', reason = ?, finished_at = {_NOT_BEFORE_START}"
            " WHERE status IN ('queued', 'running')",
            (reason, last),
        )
        return cur.rowcount

    def bill_interrupted(self, results: Mapping[str, Mapping[str, Any]]) -> int:
        encoded = [(json.dumps(r, separators=(",", ":")), job_id) for job_id, r in results.items()]
        rows = [(text, len(text), job_id) for text, job_id in encoded]
        with _atomic(self.conn):
            cur = self.conn.executemany(
                "UPDATE jobs SET result = ?, size = COALESCE(size, length(call)) + ?"
                " WHERE id = ? AND status = 'failed' AND reason = 'interrupted' AND result IS NULL",
                rows,
            )
        return cur.rowcount

    def beat(self, now: float) -> None:
        self.conn.execute("INSERT OR REPLACE INTO alive (id, at) VALUES (1, ?)", (now,))

    def prune(self, now: float, max_count: int, max_age_s: float, max_bytes: int) -> int:
        """Drop the finished jobs older than ``max_age_s``, then those beyond each owner's
        fair share of ``max_count`` jobs, then of ``max_bytes`` bytes (``_beyond``); give
        the space back to the disk when much is free (``_reclaim``). How many were dropped."""
        with _atomic(self.conn):
            # (a job ends after it was submitted: the index of status and submission finds
            # the few old enough, where status alone read every finished job's row)
            dropped = self.conn.execute(
                "DELETE FROM jobs WHERE status IN ('complete', 'failed')"
                " AND submitted_at < ?1 AND finished_at < ?1",
                (now - max_age_s,),
            ).rowcount
            counts = self.conn.execute("SELECT owner, COUNT(*) FROM jobs GROUP BY owner")
            dropped += self._beyond(dict(counts.fetchall()), max_count, "1")
            sizes = self.conn.execute(f"SELECT owner, SUM({_SIZE}) FROM jobs GROUP BY owner")
            dropped += self._beyond(dict(sizes.fetchall()), max_bytes, _SIZE)
            # what is left above the bound is queued and running jobs': pruned as they end
            (left,) = self.conn.execute(f"SELECT COALESCE(SUM({_SIZE}), 0) FROM jobs").fetchone()
            self.over_bytes = max(int(left) - max_bytes, 0)
        if dropped:
            # (the jobs are dropped; space not given back now is at the next prune)
            with contextlib.suppress(sqlite3.OperationalError):
                self._reclaim()
        return dropped

    def _beyond(self, totals: Mapping[str | None, int], bound: int, measure: str) -> int:
        """Each owner whose ``totals`` (of ``measure`` over its jobs) come to more than
        the fair cap of ``bound`` (:func:`fair_cap`) loses the finished jobs it holds
        beyond the cap, counted from its newest (its queued and running jobs count, but
        stay). How many were dropped."""
        cap = fair_cap(totals.values(), bound)
        if cap is None:
            return 0
        dropped = 0
        for owner, total in totals.items():
            if total <= cap:
                continue
            dropped += self.conn.execute(
                "DELETE FROM jobs WHERE status IN ('complete', 'failed') AND rowid IN ("
                " SELECT rowid FROM (SELECT rowid, SUM(" + measure + ") OVER ("
                "  ORDER BY submitted_at DESC, rowid DESC ROWS UNBOUNDED PRECEDING) AS upto"
                "  FROM jobs WHERE owner IS ?)"
                " WHERE upto > ?)",
                (owner, cap),
            ).rowcount
        return dropped

    def _pages(self) -> tuple[int, int, int]:
        """The file's pages, how many of them are free, and the page size in bytes."""
        (pages,) = self.conn.execute("PRAGMA page_count").fetchone()
        (free,) = self.conn.execute("PRAGMA freelist_count").fetchone()
        (size,) = self.conn.execute("PRAGMA page_size").fetchone()
        return int(pages), int(free), int(size)

    def _reclaim(self) -> int:
        """Give the file's free pages back to the disk (``incremental_vacuum``) when they
        come to ``_RECLAIM_AT`` bytes or ``1/_RECLAIM_SHARE`` of the file; the file shrinks
        when the ``-wal`` is next written to it (at once when not inside a batch's
        transaction). A file made before stores did so (``convert``) keeps its free pages
        for the next jobs. How many pages were given back."""
        if self.path == MEMORY or self.conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            return 0
        pages, free, size = self._pages()
        if not free or (free * size < _RECLAIM_AT and free * _RECLAIM_SHARE < pages):
            return 0
        with _atomic(self.conn):
            # (one page a step: Python's sqlite3 steps a pragma once, whatever its count)
            for _ in range(free):
                self.conn.execute("PRAGMA incremental_vacuum(1)")
        self.checkpoint_due = True
        if not self.conn.in_transaction:
            self.checkpoint()
        return free

    def checkpoint(self) -> None:
        """Write the ``-wal`` to the file and empty it: the file takes the size its pages
        come to (after ``_reclaim``). Outside a transaction only; a checkpoint that fails
        is left to SQLite's own (after the next commits)."""
        self.checkpoint_due = False
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def convert(self, max_bytes: int = _CONVERT_MAX) -> bool:
        """Make a file from before stores gave space back (``auto_vacuum`` off) give it
        back from now on: a ``VACUUM``, which copies what the file holds (so, only when it
        holds at most ``max_bytes``; else a warning says how). Whether the file gives
        space back now. A ``VACUUM`` that fails (no room for its copy) changes nothing."""
        if self.path == MEMORY or self.conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 0:
            return self.path != MEMORY
        if self.conn.in_transaction:  # (VACUUM runs alone: tried at the next open)
            return False
        pages, free, size = self._pages()
        held = (pages - free) * size
        if held > max_bytes:
            log.warning(
                "the job store %s was made before switchman gave pruned jobs' space back to"
                " the disk: it keeps its size (%d MB), reused by new jobs. To let it shrink,"
                " stop switchman and run: sqlite3 %s 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM;'"
                " (it needs room for a copy of the %d MB it holds)",
                self.path,
                pages * size // MB,
                self.path,
                held // MB,
            )
            return False
        try:
            self.conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self.conn.execute("VACUUM")
        except sqlite3.Error as exc:
            log.warning(
                "the job store %s could not be made to give pruned jobs' space back to the"
                " disk (%s): it keeps its size, reused by new jobs; tried again at the next"
                " start",
                self.path,
                exc,
            )
            return False
        self.checkpoint()
        after, _, _ = self._pages()
        log.info(
            "the job store %s gives pruned jobs' space back to the disk from now on (%d MB"
            " given back)",
            self.path,
            # (a store with nothing to give back grows by the pages that map its free
            # ones: a floor division made that "-1 MB")
            max(pages - after, 0) * size // MB,
        )
        return True

    def save_kv(self, table: str, data: Mapping[str, Any]) -> None:
        if table not in _KV_TABLES:
            raise ValueError(f"no such table: {table!r}")
        rows = [(str(k), json.dumps(v, separators=(",", ":"))) for k, v in data.items()]
        with _atomic(self.conn):
            self.conn.execute(f"DELETE FROM {table}")
            self.conn.executemany(f"INSERT INTO {table} (key, value) VALUES (?, ?)", rows)

    def load_kv(self, table: str) -> dict[str, Any]:
        if table not in _KV_TABLES:
            raise ValueError(f"no such table: {table!r}")
        rows = self.conn.execute(f"SELECT key, value FROM {table}").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def save_spend(self, data: Mapping[str, Any]) -> None:
        """The spend snapshot ``data``, in place of the one stored: its ``held`` entries
        (each by its ``id``) in the ``held`` table, the rest as ``save_kv`` keeps it."""
        held = data.get("held") or []
        rows = {str(h.get("id") or f"#{i}"): h for i, h in enumerate(held)}
        with _atomic(self.conn):
            self.save_kv("spend", {k: v for k, v in data.items() if k != "held"})
            self.conn.execute("DELETE FROM held")
            self._add_held(rows)

    def save_spend_change(
        self, settled: Mapping[str, Any], added: Mapping[str, Any], ended: Collection[str]
    ) -> None:
        """The settled spend ``settled`` in place of the one stored, the holds ``added``
        (by id) stored and those ``ended`` (ids) dropped: a save whose cost follows what
        changed, not every hold open (a whole snapshot of a thousand took 20 ms)."""
        with _atomic(self.conn):
            self.save_kv("spend", settled)
            self.conn.executemany("DELETE FROM held WHERE id = ?", [(i,) for i in ended])
            self._add_held(added)

    def _add_held(self, rows: Mapping[str, Any]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO held (id, value) VALUES (?, ?)",
            [(i, json.dumps(h, separators=(",", ":"))) for i, h in rows.items()],
        )

    def load_spend(self) -> dict[str, Any]:
        """The spend snapshot stored: ``save_kv``'s, its holds those of the ``held`` table
        (in order of id) after any a store from before that table kept in it."""
        data = self.load_kv("spend")
        rows = self.conn.execute("SELECT value FROM held ORDER BY id").fetchall()
        if rows:
            before = data.get("held")
            data["held"] = [
                *(before if isinstance(before, list) else ()),
                *(json.loads(v) for (v,) in rows),
            ]
        return data


_Op = tuple[Callable[..., Any], tuple[Any, ...], "trio.MemorySendChannel[outcome.Outcome[Any]]"]
#: statements waiting for the writer; callers wait (backpressure) beyond this
_QUEUE: Final = 1024
#: most statements run in one trip to the worker thread
_BATCH: Final = 256


def run_batch_waiting(
    db: _Db, ops: list[tuple[Callable[..., Any], tuple[Any, ...]]], busy_s: float
) -> list[outcome.Outcome[Any]]:
    """``_run_batch`` on ``db``, a statement waiting at most ``busy_s`` for another
    process's lock (set on the connection only when it changes); then the checkpoint a
    ``_reclaim`` inside its transaction left due."""
    if busy_s != db._busy_s:
        db.conn.execute(f"PRAGMA busy_timeout={max(int(busy_s * 1000), 0)}")
        db._busy_s = busy_s
    results = _run_batch(db.conn, ops)
    if db.checkpoint_due and not db.conn.in_transaction:
        db.checkpoint()
    return results


def _run_batch(
    conn: sqlite3.Connection, ops: list[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> list[outcome.Outcome[Any]]:
    """Run ``ops`` in order; several of them share one transaction (one commit, not one
    each). A statement that fails is undone alone (SQLite rolls back just that
    statement) and reported to its caller; if the commit itself fails, every
    statement of the batch is reported failed and nothing of it stays."""
    if len(ops) == 1:
        fn, args = ops[0]
        return [outcome.capture(fn, *args)]
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:  # e.g. locked by another process past busy_timeout
        return [outcome.Error(exc) for _ in ops]
    results = [outcome.capture(fn, *args) for fn, args in ops]
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return [outcome.Error(exc) for _ in ops]
    return results


#: the statements that only read: one that failed with its batch (whose commit, or
#: whose taking of the write lock, failed) is run again alone, as a reader needs neither
_READS: Final = frozenset({"get_job", "list_jobs", "job_counts", "load_kv", "load_spend"})


def _reads(op: Callable[..., Any]) -> bool:
    return getattr(op, "__name__", "") in _READS


def _unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store cannot be used now (full, locked, an I/O error, a
    file gone bad), not that a statement or its caller is wrong."""
    return (
        isinstance(exc, OSError | sqlite3.OperationalError)
        or type(exc) is sqlite3.DatabaseError  # (malformed, not a database)
    )


def _alone(
    conn: sqlite3.Connection, ops: list[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> list[outcome.Outcome[Any]]:
    """Run each of ``ops`` in its own (autocommit) statement."""
    return [outcome.capture(fn, *args) for fn, args in ops]
