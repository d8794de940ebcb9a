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

A store that cannot be written (its disk full, a write limit, another process
holding its lock past ``busy_timeout``) raises :class:`StoreUnavailable`, and
says so in the log once per streak of failures, and once when it ends (writes
have gone through for a heartbeat's period). A job's finish that cannot be
written is not lost meanwhile: it is kept in memory, read back as finished by
``get_job``, ``list_jobs`` and ``job_counts``, tried again every ``RETRY_S``
and once more when the store closes; what is still unwritten then stays as the
file has it (``interrupted`` at the next open). The heartbeat also checks that
the file at the store's path is still the one open (not deleted, not replaced);
:attr:`JobStore.problem` says what is wrong.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import outcome
import trio

from switchman._channels import open_channel
from switchman.store._db import (
    _BATCH,
    _PENDING_MAX,
    _PRUNE_BYTES_MIN,
    _PRUNE_EVERY,
    _PRUNE_SHARE,
    _QUEUE,
    BEAT_S,
    BUSY_TIMEOUT_S,
    FAILING_BUSY_S,
    MB,
    MEMORY,
    RETRY_S,
    JobRecord,
    JobStatus,
    StoreError,
    T,
    _alone,
    _Db,
    _Finish,
    _Op,
    _reads,
    _unavailable,
    default_db_path,
    log,
    run_batch_waiting,
)
from switchman.store._files import (
    _exclusive,
    _file_trouble,
    _identity,
    _private_file,
    earlier_store,
)

#: how far ahead of the time that passed the wall clock may be before the log says so
JUMP_TOLD_S = 60.0


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class StoreUnavailable(StoreError):
    """The store cannot be written (or read) now: its disk is full, a file size limit is
    reached, another process holds its lock past the busy timeout, its file fails.
    ``reason`` is SQLite's (or the system's) own words."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


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
        retention_mb: float = 1024.0,
        clock: Callable[[], float],
        beat_s: float | None = None,
        fd: int | None = None,
        elapsed: Callable[[], float] | None = None,
        created: bool = True,
    ) -> None:
        """``fd``: a descriptor of the store's file, held open by the caller for as long as
        the store is (the heartbeat checks that ``path`` still names that file).
        ``created``: the store was made new as it opened (no file, or an empty one).
        ``elapsed``: a clock that is never stepped (trio's), by which retention ages move
        no faster than time passes (``_age_now``); None: ``clock`` as it reads."""
        self._db = db
        #: the store was new as it opened: no jobs, no spend (``open_store``)
        self.created = created
        self._ops, self._queue = trio.open_memory_channel[_Op](_QUEUE)
        self._inserts = 0
        #: bytes of calls stored since the last prune
        self._grown = 0
        self.path = path
        self.retention_count = retention_count
        self.retention_days = retention_days
        self.retention_mb = retention_mb
        self.clock = clock
        self._elapsed = elapsed
        #: the retention clock's last reading, and ``elapsed``'s then
        self._aged: tuple[float, float] | None = None
        #: after a step ahead, until when (``elapsed``) ages pass as time does
        self._hold_until: float | None = None
        self._beat_s = beat_s
        self._fd = fd
        self._identity = None if fd is None else _identity(os.fstat(fd))
        #: finishes that could not be written yet, by job id (``finish_job``)
        self._pending: dict[str, _Finish] = {}
        self._pending_added = trio.Event()
        #: why writes fail (SQLite's words) during a streak of failures, else None
        self._trouble: str | None = None
        self._failed_at = 0.0
        #: what is wrong with the file at ``path`` (deleted, replaced), None if nothing
        self._file_trouble: str | None = None
        #: set once open: trouble before that is the opener's to report (a ``StoreError``)
        self._serving = False

    @property
    def problem(self) -> str | None:
        """What keeps the store from keeping what it is given, None when nothing does:
        its file deleted or replaced, or writes failing (SQLite's reason; until they have
        gone through for a heartbeat's period)."""
        if self._file_trouble is not None:
            return self._file_trouble
        if self._trouble is not None:
            return f"the job store cannot be written: {self._trouble}"
        return None

    @property
    def unwritten(self) -> int:
        """How many finished jobs are kept in memory, waiting to be written."""
        return len(self._pending)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the writer's thread; :class:`StoreUnavailable` when the
        store cannot be used now (other errors as raised)."""
        reply: trio.MemorySendChannel[outcome.Outcome[Any]]
        answer: trio.MemoryReceiveChannel[outcome.Outcome[Any]]
        reply, answer = open_channel(1)
        try:
            await self._ops.send((fn, args, reply))
        except trio.ClosedResourceError:  # (its ``open_store`` block was left)
            raise StoreError("the store is closed: use it inside its open_store block") from None
        with answer:
            done = await answer.receive()
        if isinstance(done, outcome.Error) and _unavailable(done.error):
            reason = _reason(done.error)
            verb = "read" if _reads(fn) else "written"
            raise StoreUnavailable(
                f"the job store cannot be {verb}: {reason}", reason=reason
            ) from done.error
        result: T = done.unwrap()
        return result

    def _failing(self, reason: str) -> None:
        """A write failed: a streak of failures begins (said once), or goes on."""
        if self._trouble is None and self._serving:
            log.error(
                "the job store %s cannot be written: %s (new calls are refused meanwhile,"
                " finished jobs kept in memory until they can be written)",
                self.path,
                reason,
            )
        self._trouble = reason
        self._failed_at = trio.current_time()

    def _writing(self) -> None:
        """A write went through: the streak of failures ends once none has failed for a
        heartbeat's period (a full disk still takes a small write now and then)."""
        if self._trouble is None:
            return
        if trio.current_time() - self._failed_at < self._beat_period():
            return
        if self._serving:
            log.warning("the job store %s can be written again", self.path)
        self._trouble = None

    def _beat_period(self) -> float:
        return BEAT_S if self._beat_s is None else self._beat_s

    @trio.lowlevel.enable_ki_protection  # (Ctrl-C: as the router's own tasks, see
    # switchman.supervisor._supervisor: a writer killed mid-write loses the last save)
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
                # while writes fail (another process's lock, a full disk), a write waits
                # briefly: reads and the new calls' 503s are not held behind it for the
                # whole busy timeout, batch after batch
                busy = self._db.busy_timeout_s
                if self._trouble is not None:
                    busy = min(busy, FAILING_BUSY_S)
                results = await trio.to_thread.run_sync(run_batch_waiting, self._db, ops, busy)
                again = [
                    i
                    for i, (op, result) in enumerate(zip(ops, results, strict=True))
                    if len(ops) > 1
                    and _reads(op[0])
                    and isinstance(result, outcome.Error)
                    and _unavailable(result.error)
                ]
                if again:  # (failed with the batch's commit: a read needs no write lock)
                    alone = await trio.to_thread.run_sync(
                        _alone, self._db.conn, [ops[i] for i in again]
                    )
                    for i, result in zip(again, alone, strict=True):
                        results[i] = result
                # (a streak of failing writes is known before the next batch starts: it
                # waits briefly then, whatever the callers of this one are doing)
                for (fn, _), result in zip(ops, results, strict=True):
                    if _reads(fn):
                        continue
                    if isinstance(result, outcome.Error) and _unavailable(result.error):
                        self._failing(_reason(result.error))
                    elif isinstance(result, outcome.Value):
                        self._writing()
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
        if len(self._pending) >= _PENDING_MAX:  # (each holds a result in memory)
            reason = f"{len(self._pending)} finished jobs wait to be written"
            if self._trouble is not None:
                reason = f"{self._trouble}; {reason}"
            raise StoreUnavailable(f"the job store cannot be written: {reason}", reason=reason)
        self._grown += await self._run(self._db.add_job, job)
        self._inserts += 1
        # (large calls are pruned before they come to much more than the byte bound)
        if self._inserts % _PRUNE_EVERY == 0 or self._grown >= self._grown_max():
            with contextlib.suppress(StoreUnavailable):  # (the job is stored: tried later)
                await self.prune()
        return job

    def _grown_max(self) -> int:
        """How many bytes stored since the last prune (or left above the bound by running
        jobs then) call for another."""
        return max(self._max_bytes() // _PRUNE_SHARE, _PRUNE_BYTES_MIN)

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
        started_at: float | None = None,
    ) -> bool:
        """Set the final status and result; False when the job had already finished.
        ``started_at``: when it began, for a job stored running that waited first.

        When the store cannot be written now, the finish is kept in memory (read back as
        written) and tried again every ``RETRY_S``, and once more as the store closes:
        this then returns True, as if written."""
        if job_id in self._pending:
            return False
        now = self.clock()
        try:
            finished = await self._run(
                self._db.finish_job, job_id, status, result, reason, now, started_at
            )
        except StoreUnavailable:
            self._pending[job_id] = _Finish(
                status=status, result=result, reason=reason, at=now, started=started_at
            )
            self._pending_added.set()
            return True
        if finished and self._grown >= self._grown_max():
            # the store was above its byte bound with jobs running, which no prune drops:
            # one that has ended can go now (a burst of large calls was kept 5 minutes)
            with contextlib.suppress(StoreUnavailable):
                await self.prune()
        return finished

    async def write_unwritten(self) -> bool:
        """Try once to write the finishes kept in memory, all in one transaction, else (a
        nearly full disk may take a small one) one at a time until one fails; whether
        none is left."""
        taken = list(self._pending.items())
        if not taken:
            return True
        try:
            await self._run(self._db.finish_jobs, taken)
            written = taken
        except StoreUnavailable:
            if len(taken) == 1:
                return False
            written = []
            for one in taken:
                try:
                    await self._run(self._db.finish_jobs, [one])
                except StoreUnavailable:
                    break
                written.append(one)
        for job_id, finish in written:
            if self._pending.get(job_id) is finish:
                del self._pending[job_id]
        if written:
            log.info("wrote %d finished job(s) kept in memory to %s", len(written), self.path)
        return not self._pending

    @trio.lowlevel.enable_ki_protection
    async def _retry_forever(self) -> None:
        """Write the finishes kept in memory, every ``RETRY_S`` while there are some."""
        while True:
            if not self._pending:
                self._pending_added = trio.Event()
                await self._pending_added.wait()
            await trio.sleep(RETRY_S)
            await self.write_unwritten()

    async def mark_rated(self, job_id: str) -> bool:
        """Record that ``job_id`` was rated; False when it already was (feedback counts
        once per job, across restarts too)."""
        return await self._run(self._db.mark_rated, job_id, self.clock())

    async def unmark_rated(self, job_id: str) -> None:
        """Undo :meth:`mark_rated` (the rating could not be credited after all)."""
        await self._run(self._db.unmark_rated, job_id)

    async def get_job(self, job_id: str) -> JobRecord | None:
        record = await self._run(self._db.get_job, job_id)
        finish = self._pending.get(job_id)
        return record if record is None or finish is None else finish.over(record)

    async def list_jobs(
        self,
        *,
        owner: str | None = None,
        all_owners: bool = False,
        status: JobStatus | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """Newest first: ``owner``'s jobs (None = jobs without owner), or everyone's."""
        pending = dict(self._pending)
        return await self._run(self._db.list_jobs, owner, all_owners, status, limit, pending)

    async def job_counts(self) -> dict[str, int]:
        """Number of jobs in each status (every status present, zero included)."""
        return await self._run(self._db.job_counts, dict(self._pending))

    async def fail_unfinished(self, reason: str) -> int:
        """Mark every queued or running job failed with ``reason``, finished at the last
        beat of the process that ran it (see :meth:`beat_forever`); how many were."""
        return await self._run(self._db.fail_unfinished, reason, self.clock())

    async def bill_interrupted(self, results: Mapping[str, Mapping[str, Any]]) -> int:
        """Give each job of ``results`` that a stopped process left ``interrupted`` (and
        without a result) that result; how many were. Others are left as they are."""
        return await self._run(self._db.bill_interrupted, results)

    @trio.lowlevel.enable_ki_protection
    async def beat_forever(self) -> None:
        """Record every ``BEAT_S`` seconds that this process is alive: a job it leaves
        running when it is killed is then stored as finished by then, not at the next
        start. A beat that cannot be written is tried again at the next (the store logs
        its trouble once). Each beat first checks the file (:meth:`check_file`)."""
        while True:
            await self.check_file()
            with contextlib.suppress(StoreUnavailable):
                await self._run(self._db.beat, self.clock())
            await trio.sleep(self._beat_period())

    async def check_file(self) -> str | None:
        """Whether ``path`` still names the file this store has open: what is wrong if not
        (deleted, replaced by another file: what is written from now on would be lost at
        the next start), also in :attr:`problem`; logged once when it happens (and once
        when it is right again)."""
        if self._fd is None or self._identity is None:
            return None
        found = await trio.to_thread.run_sync(_file_trouble, self.path, self._fd, self._identity)
        if found != self._file_trouble:
            if found is not None:
                log.error("%s", found)
            else:
                log.warning("the job store %s is its open file again", self.path)
            self._file_trouble = found
        return found

    def _max_bytes(self) -> int:
        return int(self.retention_mb * MB)

    async def prune(self) -> int:
        """Drop finished jobs past the retention age; then, when more than
        ``retention_count`` jobs are left, each owner's oldest finished jobs beyond the
        fair cap (:func:`~switchman.store._retention.fair_cap`: an owner holding no more
        than its share loses none to another's traffic); then the same with the jobs'
        bytes (their calls and results as stored) and ``retention_mb``. Queued and
        running jobs are never dropped, though they count. The free space is given back
        to the disk when it comes to much. How many jobs were dropped.

        Also run every 256 new jobs, and when a sixteenth of ``retention_mb`` (at least a
        megabyte) has been stored since the last prune, or a job ends while its running
        jobs kept the store that much above the bound."""
        dropped = await self._run(
            self._db.prune,
            self._age_now(),
            self.retention_count,
            self.retention_days * 86_400,
            self._max_bytes(),
        )
        self._grown = self._db.over_bytes
        return dropped

    def _age_now(self) -> float:
        """The time retention ages are counted to: the wall clock, but after a step ahead
        of the time that passed (NTP righting a clock days behind, a VM resumed), moving
        on from the reading before it as ``elapsed`` passes, for ``retention_days``: the
        jobs finished before the step would otherwise read weeks old and be deleted, their
        results a minute old. Once that many days passed they are old by both clocks, and
        the wall clock is read again. Stepped back, it follows."""
        now = self.clock()
        if self._elapsed is None:
            return now
        passed = self._elapsed()
        if self._aged is not None:
            then, at = self._aged
            most = then + (passed - at)
            if self._hold_until is None and now > most + JUMP_TOLD_S:
                self._hold_until = passed + self.retention_days * 86_400.0
                log.warning(
                    "the wall clock is %.0f s ahead of the time that passed since the job "
                    "store last pruned: the jobs finished before the step age as time "
                    "passes, not by the step, for the next %g days (job_retention_days)",
                    now - most,
                    self.retention_days,
                )
            if self._hold_until is not None:
                if passed < self._hold_until:
                    now = min(now, most)
                else:
                    self._hold_until = None
        self._aged = (now, passed)
        return now

    async def save_spend(self, data: Mapping[str, Any]) -> None:
        """Replace the stored spend snapshot with ``data`` (JSON-able values), atomically."""
        await self._run(self._db.save_spend, data)

    async def save_spend_change(
        self, settled: Mapping[str, Any], added: Mapping[str, Any], ended: Collection[str]
    ) -> None:
        """Replace the stored settled spend with ``settled``, add the holds ``added`` (by
        id) and drop those ``ended``, atomically (``SavesHoldChanges``)."""
        await self._run(self._db.save_spend_change, settled, added, ended)

    async def load_spend(self) -> dict[str, Any]:
        """The last snapshot given to :meth:`save_spend`, with the changes given since
        (empty when none)."""
        return await self._run(self._db.load_spend)

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
    retention_mb: float = 1024.0,
    clock: Callable[[], float] = time.time,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
    beat_s: float | None = None,
    elapsed: Callable[[], float] | None = None,
) -> AsyncIterator[JobStore]:
    """Open (creating if needed) the store at ``path``; ``None`` = :func:`default_db_path`.

    On open, jobs left queued or running by a previous process become failed
    ("interrupted") and old finished jobs are pruned (:meth:`JobStore.prune`: by age,
    ``retention_count`` jobs and ``retention_mb`` megabytes of calls and results). A file
    made before stores gave pruned jobs' space back to the disk is converted then (a
    ``VACUUM``) when it holds at most 256 MB, else it keeps its size and a warning says
    how to convert it. ``":memory:"`` gives a private in-memory store.
    ``busy_timeout_s``: how long a statement waits for another process's write lock;
    ``beat_s``: the heartbeat's period (``BEAT_S``); ``elapsed``: a clock never stepped,
    by which retention ages pass no faster than time does (None: trio's for the system's
    wall clock; with a ``clock`` of the caller's own, ages by it as it reads).
    The connection is closed on exit, even when the block is cancelled (the close,
    and one last try to write the finishes kept in memory, are shielded and bounded).
    :class:`StoreError` when the file is in use by another process (under any of its
    names: a symlink, a hard link), is not SQLite, or cannot be written. Outside a trio
    run (asyncio's), ``RuntimeError`` saying so.
    """
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        raise RuntimeError(
            "switchman.store.open_store needs a trio run (trio.run), as the router does: "
            "from asyncio, open both in a thread of their own under trio.run "
            "(examples/asyncio_app.py does)"
        ) from None
    where = str(default_db_path() if path is None else path)
    with contextlib.ExitStack() as owned:
        fd: int | None = None
        created, left = True, None
        if where != MEMORY:
            try:
                created, left = await trio.to_thread.run_sync(earlier_store, where)
                await trio.to_thread.run_sync(_private_file, where)
                fd = owned.enter_context(_exclusive(where))
            except OSError as exc:  # a directory that cannot be made, a read-only place...
                raise StoreError(f"cannot use {where} as the job store: {exc}") from None
        try:
            db = await trio.to_thread.run_sync(_Db, where, busy_timeout_s)
        except sqlite3.DatabaseError as exc:  # not a database, read-only, ...
            raise StoreError(f"cannot use {where} as the job store: {exc}") from None
        store = JobStore(
            db,
            path=where,
            retention_count=retention_count,
            retention_days=retention_days,
            retention_mb=retention_mb,
            clock=clock,
            beat_s=beat_s,
            fd=fd,
            elapsed=trio.current_time if elapsed is None and clock is time.time else elapsed,
            created=created,
        )
        if left is not None:  # (a store deleted or emptied: its budgets' spend went with it)
            log.warning(
                "the job store %s is new, where one was before (%s is left): its jobs and"
                " the spend budgets count start from zero; if the file was moved, stop"
                " switchman and put it back",
                os.path.abspath(where),  # noqa: ASYNC240 (getcwd: no disk wait)
                left,
            )
        elif where != MEMORY:
            said = "is new" if created else "is opened"
            whole = os.path.abspath(where)  # noqa: ASYNC240 (getcwd: no disk wait)
            log.info("the job store %s %s", whole, said)
        # (the descriptor outlives the connection: closing it while SQLite holds its
        # POSIX locks on the file would drop them, theirs being per process)
        async with _opened(db, store, last_try_s=busy_timeout_s + 1.0):
            yield store


@trio.lowlevel.enable_ki_protection
async def _background(store: JobStore, scope: trio.CancelScope) -> None:
    """The heartbeat, and the retries of the finishes kept in memory, until ``scope``
    is cancelled."""
    with scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.beat_forever)
            nursery.start_soon(store._retry_forever)


@asynccontextmanager
async def _opened(db: _Db, store: JobStore, *, last_try_s: float) -> AsyncIterator[None]:
    where = store.path
    try:
        background = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            try:
                # (started without ``nursery.start`` and inside the ``try`` that closes its
                # queue: cancelled as it started, the writer stayed in ``start``'s own
                # nursery, shielded, draining a queue nothing would close: the open hung
                # for good, Ctrl-C included)
                nursery.start_soon(store._serve)
                try:
                    await store.fail_unfinished("interrupted")
                    began = time.monotonic()
                    if dropped := await store.prune():  # (bounds lowered since: say so)
                        log.warning(
                            "the job store deleted %d finished jobs on opening, in %.1f s: "
                            "more than job_retention_count (%d), job_retention_mb (%g) or "
                            "older than job_retention_days (%g) allow",
                            dropped,
                            time.monotonic() - began,
                            store.retention_count,
                            store.retention_mb,
                            store.retention_days,
                        )
                    await store._run(db.convert)
                except (sqlite3.DatabaseError, StoreUnavailable) as exc:  # e.g. read-only
                    reason = exc.reason if isinstance(exc, StoreUnavailable) else exc
                    raise StoreError(f"cannot use {where} as the job store: {reason}") from None
                store._serving = True
                nursery.start_soon(_background, store, background)
                yield
            finally:
                background.cancel()
                await _last_try(store, within=last_try_s)
                store.close()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(db.close)


async def _last_try(store: JobStore, *, within: float) -> None:
    """Write the finishes kept in memory, one last time (shielded, at most ``within``
    seconds); say what is left unwritten."""
    if not store.unwritten:
        return
    with trio.CancelScope(shield=True), trio.move_on_after(within):
        await store.write_unwritten()
    if store.unwritten:
        log.error(
            "%d finished job(s) could not be written to %s (%s): they read as"
            " interrupted when it is next opened",
            store.unwritten,
            store.path,
            store._trouble or "it took too long",
        )
