"""The synchronous half of the store: its schema, its records, and the statements that
run in its worker thread (one at a time, in batches that share a transaction).

See :mod:`switchman.store._sqlite` for the async face and what it promises."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import attrs
import outcome
import trio

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
#: how long a statement waits for another process's write lock before it fails
BUSY_TIMEOUT_S: Final = 5.0
#: how often finished jobs that could not be written are tried again
RETRY_S: Final = 1.0
#: how long a statement waits for another process's lock while writes are failing
FAILING_BUSY_S: Final = 0.1
#: past this many finished jobs waiting to be written, no new job is taken
_PENDING_MAX: Final = 1024

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
    rated_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, submitted_at);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, submitted_at);
CREATE TABLE IF NOT EXISTS spend (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alive (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
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


class StoreError(Exception):
    """The store cannot be opened: its file is in use by another process, is not a
    SQLite database, or cannot be written (:class:`StoreUnavailable`: not now)."""


@attrs.frozen(kw_only=True)
class _Finish:
    """A job's finish that could not be written yet (kept until it can be)."""

    status: JobStatus
    result: Mapping[str, Any] | None
    reason: str | None
    at: float

    def over(self, record: JobRecord) -> JobRecord:
        """``record`` (as stored: queued or running) as this finish leaves it."""
        if record.finished:
            return record
        return attrs.evolve(
            record,
            status=self.status,
            result=self.result,
            reason=self.reason,
            finished_at=self.at,
            started_at=self.at if record.started_at is None else record.started_at,
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


class _Db:
    """The synchronous half: every method runs in a worker thread, one at a time."""

    def __init__(self, path: str, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if path != MEMORY:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.busy_timeout_s = busy_timeout_s
        self._busy_s = busy_timeout_s
        self.conn.execute(f"PRAGMA busy_timeout={max(int(busy_timeout_s * 1000), 0)}")
        self.conn.executescript(_SCHEMA)
        columns = {row["name"] for row in self.conn.execute("PRAGMA table_info(jobs)")}
        if "rated_at" not in columns:  # a database from before feedback was kept
            self.conn.execute("ALTER TABLE jobs ADD COLUMN rated_at REAL")
        if self.conn.execute("PRAGMA user_version").fetchone()[0] < _OWNED_BY_HANDLE:
            # a gateway key's jobs were owned by its variable's name (key_env): they are
            # its handle's now, which every row keeps, so a variable given to another
            # team brings none of them along
            with _atomic(self.conn):
                self.conn.execute(
                    "UPDATE jobs SET owner = handle WHERE owner IS NOT NULL AND owner != handle"
                )
                self.conn.execute(f"PRAGMA user_version = {_OWNED_BY_HANDLE}")

    def close(self) -> None:
        self.conn.close()

    def add_job(self, job: JobRecord) -> None:
        self.conn.execute(
            "INSERT INTO jobs (id, status, owner, handle, submitted_at, started_at, call)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                job.job_id,
                job.status,
                job.owner,
                job.handle,
                job.submitted_at,
                job.started_at,
                json.dumps(job.call, separators=(",", ":")),
            ),
        )

    def mark_running(self, job_id: str, now: float) -> bool:
        cur = self.conn.execute(
            "UPDATE jobs SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'",
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
    ) -> bool:
        encoded = None if result is None else json.dumps(result, separators=(",", ":"))
        cur = self.conn.execute(
            "UPDATE jobs SET status = ?, result = ?, reason = ?, finished_at = ?,"
            " started_at = COALESCE(started_at, ?)"
            " WHERE id = ? AND status IN ('queued', 'running')",
            (status, encoded, reason, now, now, job_id),
        )
        return cur.rowcount > 0

    def finish_jobs(self, finishes: Sequence[tuple[str, _Finish]]) -> None:
        """Several finishes kept while the store could not be written: all or none."""
        with _atomic(self.conn):
            for job_id, f in finishes:
                self.finish_job(job_id, f.status, f.result, f.reason, f.at)

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
            "UPDATE jobs SET status = 'failed', reason = ?,"
            " finished_at = MAX(?, submitted_at, COALESCE(started_at, submitted_at))"
            " WHERE status IN ('queued', 'running')",
            (reason, last),
        )
        return cur.rowcount

    def bill_interrupted(self, results: Mapping[str, Mapping[str, Any]]) -> int:
        rows = [(json.dumps(r, separators=(",", ":")), job_id) for job_id, r in results.items()]
        with _atomic(self.conn):
            cur = self.conn.executemany(
                "UPDATE jobs SET result = ? WHERE id = ? AND status = 'failed'"
                " AND reason = 'interrupted' AND result IS NULL",
                rows,
            )
        return cur.rowcount

    def beat(self, now: float) -> None:
        self.conn.execute("INSERT OR REPLACE INTO alive (id, at) VALUES (1, ?)", (now,))

    def prune(self, now: float, max_count: int, max_age_s: float) -> int:
        with _atomic(self.conn):
            old = self.conn.execute(
                "DELETE FROM jobs WHERE status IN ('complete', 'failed') AND finished_at < ?",
                (now - max_age_s,),
            ).rowcount
            counts = dict(
                self.conn.execute("SELECT owner, COUNT(*) FROM jobs GROUP BY owner").fetchall()
            )
            cap = fair_cap(counts.values(), max_count)
            extra = 0
            if cap is not None:
                for owner, n in counts.items():
                    if n <= cap:
                        continue
                    extra += self.conn.execute(
                        "DELETE FROM jobs WHERE status IN ('complete', 'failed') AND rowid IN ("
                        " SELECT rowid FROM jobs WHERE owner IS ?"
                        " ORDER BY submitted_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
                        (owner, cap),
                    ).rowcount
        return old + extra

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


_Op = tuple[Callable[..., Any], tuple[Any, ...], "trio.MemorySendChannel[outcome.Outcome[Any]]"]
#: statements waiting for the writer; callers wait (backpressure) beyond this
_QUEUE: Final = 1024
#: most statements run in one trip to the worker thread
_BATCH: Final = 256


def run_batch_waiting(
    db: _Db, ops: list[tuple[Callable[..., Any], tuple[Any, ...]]], busy_s: float
) -> list[outcome.Outcome[Any]]:
    """``_run_batch`` on ``db``, a statement waiting at most ``busy_s`` for another
    process's lock (set on the connection only when it changes)."""
    if busy_s != db._busy_s:
        db.conn.execute(f"PRAGMA busy_timeout={max(int(busy_s * 1000), 0)}")
        db._busy_s = busy_s
    return _run_batch(db.conn, ops)


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
_READS: Final = frozenset({"get_job", "list_jobs", "job_counts", "load_kv"})


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
