"""The embedded SQLite store: jobs, spend and learned statistics.

One ``sqlite3`` connection per store, used by one worker thread at a time:
every operation is a plain synchronous function, queued to one writer task that
runs whatever is waiting in a single ``trio.to_thread.run_sync`` trip and a
single transaction (group commit), in submission order, and answers each caller
on its own reply channel. Callers still get their answer before they go on (a
job is on disk before its id is handed out), but under load many requests share
one thread hop and one commit, which the benchmarks showed was most of a gateway
request's cost.

Cancellation: waiting for the lock is cancellable and changes nothing; once a
statement runs in its thread it is not abandoned (``to_thread.run_sync``
waits for it), so a cancelled caller never leaves half a write behind.

A job that was ``queued`` or ``running`` when its process died reads as
``failed`` with reason ``"interrupted"`` after the next :func:`open_store`,
finished when that process was last known alive (it records so every
``BEAT_S`` seconds while its store is open).

A job's ``owner`` is who may read it: the gateway stores a key's handle there
(None without keys). A database from before that (owners were the keys'
variable names) is moved over on open, from the handle each row keeps.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import attrs
import outcome
import trio

from switchman._channels import open_channel
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

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if path != MEMORY:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
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
        self, owner: str | None, all_owners: bool, status: str | None, limit: int
    ) -> list[JobRecord]:
        where: list[str] = []
        args: list[Any] = []
        if not all_owners:
            where.append("owner IS ?")
            args.append(owner)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY submitted_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        return [_row(r) for r in self.conn.execute(sql, args).fetchall()]

    def job_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(JOB_STATUSES, 0)
        for status, n in self.conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[status] = n
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


class JobStore:
    """Async face of the SQLite store. Build it with :func:`open_store`.

    Every method may be cancelled while waiting for its turn (nothing happens
    then); a statement already running completes before the cancellation lands.
    """

    def __init__(
        self,
        db: _Db,
        *,
        path: str,
        retention_count: int,
        retention_days: float,
        clock: Callable[[], float],
    ) -> None:
        self._db = db
        self._ops, self._queue = trio.open_memory_channel[_Op](_QUEUE)
        self._inserts = 0
        self.path = path
        self.retention_count = retention_count
        self.retention_days = retention_days
        self.clock = clock

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        reply: trio.MemorySendChannel[outcome.Outcome[Any]]
        answer: trio.MemoryReceiveChannel[outcome.Outcome[Any]]
        reply, answer = open_channel(1)
        await self._ops.send((fn, args, reply))
        with answer:
            result: T = (await answer.receive()).unwrap()
        return result

    async def _serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The one writer: runs queued statements in submission order, as many as are
        waiting in a single trip to the worker thread (group commit), so concurrent
        requests share one thread hop instead of paying one each."""
        task_status.started()
        # shielded: clean-up that runs while everything is being cancelled (a job stored
        # as failed at shutdown) still reaches the disk; the loop ends when ``close()``
        # ends the queue, which ``open_store`` always does on the way out
        with trio.CancelScope(shield=True):
            await self._drain()

    async def _drain(self) -> None:
        async with self._queue:
            async for first in self._queue:
                batch = [first]
                while len(batch) < _BATCH:
                    try:
                        batch.append(self._queue.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                ops = [(fn, args) for fn, args, _ in batch]
                results = await trio.to_thread.run_sync(_run_batch, self._db.conn, ops)
                for (_, _, reply), result in zip(batch, results, strict=True):
                    with reply:
                        try:
                            reply.send_nowait(result)
                        except trio.BrokenResourceError:
                            pass  # the caller was cancelled; the statement still ran

    def close(self) -> None:
        """No more statements: the writer finishes what is queued and stops."""
        self._ops.close()

    async def add_job(
        self,
        *,
        job_id: str,
        owner: str | None,
        handle: str,
        call: Mapping[str, Any],
        running: bool = False,
    ) -> JobRecord:
        """Record a new job, ``queued`` (or ``running`` from now, for a job that starts at
        once: one write instead of two); it is on disk when this returns."""
        now = self.clock()
        job = JobRecord(
            job_id=job_id,
            status="running" if running else "queued",
            owner=owner,
            handle=handle,
            submitted_at=now,
            started_at=now if running else None,
            call=call,
        )
        await self._run(self._db.add_job, job)
        self._inserts += 1
        if self._inserts % _PRUNE_EVERY == 0:
            await self.prune()
        return job

    async def mark_running(self, job_id: str) -> bool:
        """``queued`` → ``running``; False when the job is not queued."""
        return await self._run(self._db.mark_running, job_id, self.clock())

    async def finish_job(
        self,
        job_id: str,
        *,
        status: Literal["complete", "failed"],
        result: Mapping[str, Any] | None,
        reason: str | None = None,
    ) -> bool:
        """Set the final status and result; False when the job had already finished."""
        return await self._run(self._db.finish_job, job_id, status, result, reason, self.clock())

    async def mark_rated(self, job_id: str) -> bool:
        """Record that ``job_id`` was rated; False when it already was (feedback counts
        once per job, across restarts too)."""
        return await self._run(self._db.mark_rated, job_id, self.clock())

    async def unmark_rated(self, job_id: str) -> None:
        """Undo :meth:`mark_rated` (the rating could not be credited after all)."""
        await self._run(self._db.unmark_rated, job_id)

    async def get_job(self, job_id: str) -> JobRecord | None:
        return await self._run(self._db.get_job, job_id)

    async def list_jobs(
        self,
        *,
        owner: str | None = None,
        all_owners: bool = False,
        status: JobStatus | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """Newest first: ``owner``'s jobs (None = jobs without owner), or everyone's."""
        return await self._run(self._db.list_jobs, owner, all_owners, status, limit)

    async def job_counts(self) -> dict[str, int]:
        """Number of jobs in each status (every status present, zero included)."""
        return await self._run(self._db.job_counts)

    async def fail_unfinished(self, reason: str) -> int:
        """Mark every queued or running job failed with ``reason``, finished at the last
        beat of the process that ran it (see :meth:`beat_forever`); how many were."""
        return await self._run(self._db.fail_unfinished, reason, self.clock())

    async def beat_forever(self) -> None:
        """Record every ``BEAT_S`` seconds that this process is alive: a job it leaves
        running when it is killed is then stored as finished by then, not at the next
        start. A beat that cannot be written is logged and tried again."""
        while True:
            try:
                await self._run(self._db.beat, self.clock())
            except sqlite3.Error as exc:
                log.warning("cannot record that the store is in use: %s", exc)
            await trio.sleep(BEAT_S)

    async def prune(self) -> int:
        """Drop finished jobs past the retention age; then, when more than
        ``retention_count`` jobs are left, each owner's oldest finished jobs beyond the
        fair cap (:func:`~switchman.store._retention.fair_cap`: an owner holding no more
        than its share loses none to another's traffic). Queued and running jobs are
        never dropped, though they count. How many were dropped."""
        return await self._run(
            self._db.prune, self.clock(), self.retention_count, self.retention_days * 86_400
        )

    async def save_spend(self, data: Mapping[str, Any]) -> None:
        """Replace the stored spend snapshot with ``data`` (JSON-able values), atomically."""
        await self._run(self._db.save_kv, "spend", data)

    async def load_spend(self) -> dict[str, Any]:
        """The last snapshot given to :meth:`save_spend` (empty when none)."""
        return await self._run(self._db.load_kv, "spend")

    async def save_stats(self, data: Mapping[str, Any]) -> None:
        """Replace the stored learned-statistics snapshot with ``data``, atomically."""
        await self._run(self._db.save_kv, "stats", data)

    async def load_stats(self) -> dict[str, Any]:
        """The last snapshot given to :meth:`save_stats` (empty when none)."""
        return await self._run(self._db.load_kv, "stats")


@asynccontextmanager
async def open_store(
    path: str | os.PathLike[str] | None = None,
    *,
    retention_count: int = 10_000,
    retention_days: float = 7.0,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[JobStore]:
    """Open (creating if needed) the store at ``path``; ``None`` = :func:`default_db_path`.

    On open, jobs left queued or running by a previous process become failed
    ("interrupted") and old finished jobs are pruned. ``":memory:"`` gives a
    private in-memory store. The connection is closed on exit, even when the
    block is cancelled (the close is shielded: it is short and bounded).
    """
    where = str(default_db_path() if path is None else path)
    with contextlib.ExitStack() as owned:
        if where != MEMORY:
            try:
                await trio.to_thread.run_sync(_private_file, where)
                owned.enter_context(_exclusive(where))
            except OSError as exc:  # a directory that cannot be made, a read-only place...
                raise StoreError(f"cannot use {where} as the job store: {exc}") from None
        try:
            db = await trio.to_thread.run_sync(_Db, where)
        except sqlite3.DatabaseError as exc:  # not a database, read-only, ...
            raise StoreError(f"cannot use {where} as the job store: {exc}") from None
        async with _opened(db, where, retention_count, retention_days, clock) as store:
            yield store


async def _beat(store: JobStore, scope: trio.CancelScope) -> None:
    with scope:
        await store.beat_forever()


def _private_file(where: str) -> None:
    """Make ``where`` (and the folders to it) readable by this user only: it holds every
    caller's prompts and answers. Each folder it makes is 0700, the file 0600; an existing
    file is narrowed to 0600 (SQLite gives its ``-wal`` and ``-shm`` files the database
    file's mode). The folders of an existing path are left as they are."""
    path = Path(where)
    missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    for folder in reversed(missing):  # (mkdir's mode would reach the last folder only)
        folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            with contextlib.suppress(PermissionError):  # (another user's file: theirs to set)
                os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class StoreError(Exception):
    """The store cannot be opened: its file is in use by another process, is not a
    SQLite database, or cannot be written."""


@contextmanager
def _exclusive(where: str) -> Iterator[None]:
    """Hold ``where``'s lock file for as long as the store is open: a second process on
    the same file would fail the first one's running jobs as "interrupted" and write its
    spend over the other's (a budget then counts only half of what was spent)."""
    # the file itself, however it is named (a symlink, another path to it): two daemons
    # must never share one file through two names
    lock_path = os.path.realpath(where) + ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"{where} is in use by another switchman process (it holds {lock_path}); "
                "give each daemon its own --db"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


@asynccontextmanager
async def _opened(
    db: _Db,
    where: str,
    retention_count: int,
    retention_days: float,
    clock: Callable[[], float],
) -> AsyncIterator[JobStore]:
    try:
        store = JobStore(
            db,
            path=where,
            retention_count=retention_count,
            retention_days=retention_days,
            clock=clock,
        )
        beating = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            await nursery.start(store._serve)
            try:
                try:
                    await store.fail_unfinished("interrupted")
                    await store.prune()
                except sqlite3.DatabaseError as exc:  # e.g. a read-only file
                    raise StoreError(f"cannot use {where} as the job store: {exc}") from None
                nursery.start_soon(_beat, store, beating)
                yield store
            finally:
                beating.cancel()
                store.close()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(db.close)
