"""The store failing under a running process: writes refused (another process holds the
lock, as a full disk refuses them), the file deleted or replaced, a second name for it,
and the persister meeting a store that cannot be written. Real SQLite files; another
process's lock is a second connection holding ``BEGIN EXCLUSIVE``."""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

import switchman
from switchman import Call
from switchman.actors._board import StatusBoard
from switchman.actors._persister import LedgerTap, run_persister
from switchman.catalog import SimProfile
from switchman.policy._budget import Ledger, release, reserve
from switchman.store import StoreError, StoreUnavailable, open_store
from tests._simfleet import fleet, sim_model

#: how long the store waits for another process's lock in these tests
BUSY_S = 0.05


@contextmanager
def locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write lock on ``path`` for the block (as ``sqlite3`` holding a
    ``BEGIN EXCLUSIVE``): every write of the store fails meanwhile, reads go on."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield other
        finally:
            other.execute("ROLLBACK")


def _stored(path: Path, job_id: str) -> tuple[str, str | None]:
    """The job's status and reason as the file has them (read as another process)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT status, reason FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def _messages(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


async def _wait_for(condition: Any, within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await trio.sleep(0.02)
    assert condition()


async def test_a_finish_that_cannot_be_written_is_kept_read_as_finished_and_written_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    caplog.set_level(logging.INFO, logger="switchman.store")
    async with open_store(db, busy_timeout_s=BUSY_S, beat_s=0.05) as store:
        for job_id in ("done", "other"):
            await store.add_job(job_id=job_id, owner="a", handle="a", call={}, running=True)
        with locked(db):
            # the write fails (the lock is held past the busy timeout): no error, kept
            assert await store.finish_job("done", status="complete", result={"answer": "42"})
            assert not await store.finish_job("done", status="failed", result=None)
            job = await store.get_job("done")  # read back as finished, while still locked
            assert job is not None and job.status == "complete"
            assert job.result == {"answer": "42"} and job.finished_at is not None
            assert [j.job_id for j in await store.list_jobs(owner="a", status="complete")] == [
                "done"
            ]
            running = await store.list_jobs(owner="a", status="running")
            assert [j.job_id for j in running] == ["other"]
            counts = await store.job_counts()
            assert (counts["complete"], counts["running"]) == (1, 1)
            assert store.unwritten == 1
            assert store.problem == "the job store cannot be written: database is locked"
            # a new job cannot be stored: refused, saying why
            for _ in range(3):
                with pytest.raises(StoreUnavailable, match="cannot be written: database is locked"):
                    await store.add_job(job_id="new", owner="a", handle="a", call={})
            assert _stored(db, "done") == ("running", None)
        # the lock released: written within a retry or two, read as before; the trouble
        # is over once writes have gone through for a heartbeat's period
        await _wait_for(lambda: store.unwritten == 0)
        assert _stored(db, "done") == ("complete", None)
        await _wait_for(lambda: store.problem is None)
        job = await store.get_job("done")
        assert job is not None and job.result == {"answer": "42"}
    # said once for the whole streak of failures, and once when it ended
    assert len(_messages(caplog, "cannot be written")) == 1
    assert len(_messages(caplog, "can be written again")) == 1


async def test_a_finish_still_kept_at_close_is_tried_once_more(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    async with open_store(db, busy_timeout_s=BUSY_S) as store:
        await store.add_job(job_id="j", owner=None, handle="h", call={}, running=True)
        with locked(db):
            await store.finish_job("j", status="complete", result={"answer": "yes"})
        assert store.unwritten == 1  # (its retry is a second away: the close comes first)
    assert _stored(db, "j") == ("complete", None)


async def test_what_cannot_be_written_by_the_close_reads_interrupted_at_the_next_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobs.db"
    with locked_later(db) as lock:
        async with open_store(db, busy_timeout_s=BUSY_S) as store:
            await store.add_job(job_id="j", owner=None, handle="h", call={}, running=True)
            lock()
            await store.finish_job("j", status="complete", result={})
    assert _messages(caplog, "1 finished job(s) could not be written")
    async with open_store(db) as store:
        job = await store.get_job("j")
        assert job is not None and (job.status, job.reason) == ("failed", "interrupted")


@contextmanager
def locked_later(path: Path) -> Iterator[Any]:
    """A function that takes another process's write lock on ``path``, held until the
    block ends."""
    others: list[sqlite3.Connection] = []

    def lock() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        others.append(other)

    try:
        yield lock
    finally:
        for other in others:
            other.execute("ROLLBACK")
            other.close()


async def test_reads_go_on_while_writes_of_the_same_batch_fail(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    async with open_store(db, busy_timeout_s=BUSY_S) as store:
        await store.add_job(job_id="j", owner=None, handle="h", call={"prompt": "p"})
        got: dict[str, Any] = {}

        async def write() -> None:
            with pytest.raises(StoreUnavailable):
                await store.save_spend({"x": 1})

        async def read() -> None:
            got["job"] = await store.get_job("j")

        with locked(db):
            async with trio.open_nursery() as nursery:  # (queued together: one batch)
                nursery.start_soon(write)
                nursery.start_soon(read)
        assert got["job"] is not None and got["job"].call == {"prompt": "p"}


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_the_heartbeat_notices_the_file_deleted_or_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    db = tmp_path / "jobs.db"
    async with open_store(db, beat_s=0.02) as store:
        await trio.sleep(0.1)
        assert store.problem is None
        if how == "deleted":
            db.unlink()
        else:  # an older copy moved over it (a "restore"), as `mv` does
            copy = tmp_path / "copy.db"
            copy.write_bytes(db.read_bytes())
            os.replace(copy, db)
        await _wait_for(lambda: store.problem is not None)
        assert store.problem == (
            f"the job store {db} was {how}"
            f"{' by another file' if how == 'replaced' else ''} while in use:"
            " what switchman writes from now on is lost when it restarts"
        )
        await trio.sleep(0.1)  # (more beats: said once)
    assert _messages(caplog, f"{db} was {how}") == [store.problem]


async def test_a_second_store_on_the_same_file_through_a_hard_link_is_refused(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"
    hard = tmp_path / "hard.db"
    async with open_store(db) as first:
        await first.add_job(job_id="j", owner=None, handle="h", call={})
        os.link(db, hard)
        with pytest.raises(StoreError, match=r"hard\.db is in use by another switchman store"):
            async with open_store(hard):
                pass
        assert await first.get_job("j") is not None
    async with open_store(hard) as again:  # free once the first has closed it
        assert await again.get_job("j") is not None


# -- the persister ------------------------------------------------------------------------


class FlakyStore:
    """A ``Persistence`` whose saves fail as a full disk fails them while ``full``."""

    def __init__(self) -> None:
        self.full = False
        self.spend: list[Mapping[str, Any]] = []
        self.failures = 0

    async def load_spend(self) -> dict[str, Any]:
        return {}

    async def load_stats(self) -> dict[str, Any]:
        return {}

    async def save_spend(self, data: Mapping[str, Any]) -> None:
        if self.full:
            self.failures += 1
            raise sqlite3.OperationalError("database or disk is full")
        self.spend.append(data)

    async def save_stats(self, data: Mapping[str, Any]) -> None:
        if self.full:
            self.failures += 1
            raise sqlite3.OperationalError("database or disk is full")


def _spent(nanos: int) -> Ledger:
    return Ledger(spent={("global", "d:2026-01-01"): nanos})


async def test_the_persister_keeps_what_it_could_not_save_and_saves_it_later(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    tap = LedgerTap()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_persister, store, StatusBoard(), tap)
        store.full = True
        for nanos in (100, 200, 300):  # settles the store cannot save: no crash
            tap(_spent(nanos))
            await trio.sleep(3)
        assert store.failures >= 3 and store.spend == []
        store.full = False  # space is back: the latest is saved without a new settle
        await trio.sleep(2)
        assert store.spend[-1] == {"nano_usd": {"global": {"d:2026-01-01": 300}}}
        nursery.cancel_scope.cancel()
    assert len(_messages(caplog, "cannot save")) == 1  # once for the streak
    assert len(_messages(caplog, "saved again")) == 1


class ChangesStore(FlakyStore):
    """A ``FlakyStore`` that also saves what changed among the holds (the SQLite store's
    ``save_spend_change``), each save recorded as ``("whole" | "change", held ids)``."""

    def __init__(self) -> None:
        super().__init__()
        self.saves: list[tuple[str, list[str]]] = []

    async def save_spend(self, data: Mapping[str, Any]) -> None:
        await super().save_spend(data)
        self.saves.append(("whole", [h["id"] for h in data.get("held", ())]))

    async def save_spend_change(
        self, settled: Mapping[str, Any], added: Mapping[str, Any], ended: Any
    ) -> None:
        await super().save_spend(settled)
        self.saves.append(("change", [*added, *(f"-{i}" for i in sorted(ended))]))


def _holding(ledger: Ledger, *ids: str) -> Ledger:
    """``ledger`` holding ``ids``: the others released, the new ones reserved."""
    for rid in set(ledger.reservations) - set(ids):
        ledger = release(ledger, rid)
    for rid in ids:
        if rid not in ledger.reservations:
            ledger, _ = reserve(
                ledger, [], scopes=["global"], amount_usd=1.0, reservation_id=rid, wall_now=0.0
            )
    return ledger


async def test_holds_are_saved_as_they_change_and_whole_after_a_failed_save(
    autojump_clock: trio.abc.Clock,
) -> None:
    """After the first save (of every hold), a save writes the holds opened and ended
    since; one that failed leaves the store's holds unknown, so the next is whole again."""
    store = ChangesStore()
    tap = LedgerTap()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_persister, store, StatusBoard(), tap)
        ledger = Ledger()
        for ids in (("a", "b"), ("b", "c"), ("c",)):
            tap.hold(ledger := _holding(ledger, *ids))
            await trio.sleep(1)
        store.full = True
        tap.hold(ledger := _holding(ledger, "c", "d"))  # refused: the store may have it or not
        await trio.sleep(0.5)
        store.full = False
        await trio.sleep(2)
        tap.hold(ledger := _holding(ledger, "d", "e"))
        await trio.sleep(1)
        # a hold under an id saved before (made again, its release lost): written again
        again = release(ledger, "e")
        ledger, _ = reserve(
            again, [], scopes=["global"], amount_usd=2.0, reservation_id="e", wall_now=0.0
        )
        tap.hold(ledger)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert store.saves == [
        ("whole", ["a", "b"]),
        ("change", ["c", "-a"]),
        ("change", ["-b"]),
        ("whole", ["c", "d"]),  # (tried again, whole)
        ("change", ["e", "-c"]),
        ("change", ["e"]),
    ]


async def test_a_restarted_persister_saves_what_its_predecessor_had_not(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = FlakyStore()
    tap = LedgerTap()
    tap(_spent(500))  # settled while no persister could save it (it had crashed)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_persister, store, StatusBoard(), tap)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert store.spend == [{"nano_usd": {"global": {"d:2026-01-01": 500}}}]


async def test_a_wait_for_spend_to_be_saved_has_it_saved_at_once_and_is_bounded(
    autojump_clock: trio.abc.Clock,
) -> None:
    """``wait_saved`` (a finished job's spend before its result) has the persister save
    now rather than after its 50 ms, and gives up once the store refused the save (or
    after ``within``), saying so: a job's result is never held up for long."""
    store = FlakyStore()
    tap = LedgerTap()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(run_persister, store, StatusBoard(), tap, spend_delay_s=30.0)
        )
        tap(_spent(100))
        t0 = trio.current_time()
        assert await tap.wait_saved(within=5.0)
        assert trio.current_time() - t0 < 1.0  # not the 30 s delay
        assert store.spend[-1] == {"nano_usd": {"global": {"d:2026-01-01": 100}}}
        store.full = True
        tap(_spent(200))
        t0 = trio.current_time()
        assert not await tap.wait_saved(within=2.0)
        assert trio.current_time() - t0 < 1.0  # the save was tried, and refused
        # ... and while the store refuses writes, nothing waits at all
        tap(_spent(300))
        t0 = trio.current_time()
        assert not await tap.wait_saved(within=2.0)
        assert trio.current_time() == t0
        nursery.cancel_scope.cancel()


async def test_a_router_whose_store_cannot_be_written_for_a_while_keeps_routing(
    tmp_path: Path,
) -> None:
    """The persister no longer crashes on every failed save (four in 30 s stopped the
    router); the spend settled meanwhile reaches the file once the lock is gone."""
    db = tmp_path / "jobs.db"
    config = fleet(sim_model("good", SimProfile(latency_ms=20)))
    with trio.fail_after(30):
        async with (
            open_store(db, busy_timeout_s=BUSY_S) as store,
            switchman.open_router(config, store=store) as router,
        ):
            with locked(db):
                for i in range(6):
                    result = await router.call(Call(prompt=f"hi {i}", model="good"))
                    assert result.ok, result.errors
                    await trio.sleep(0.1)
            live = (await router.spend("global"))["day"]
            assert live > 0

            async def saved() -> float:
                snapshot = await store.load_spend()
                windows = snapshot.get("nano_usd", {}).get("global", {})
                return sum(v for k, v in windows.items() if k.startswith("day:")) / 1e9

            for _ in range(100):  # (saved within a retry, a second)
                if await saved() == pytest.approx(live):
                    break
                await trio.sleep(0.05)
            assert await saved() == pytest.approx(live)


async def test_once_writes_fail_a_read_does_not_wait_behind_them_for_the_busy_timeout(
    tmp_path: Path,
) -> None:
    # the busy timeout (3 s) is how long a first write waits for another process's lock;
    # once writes are failing, each waits briefly, so reads (a /result, /health's counts)
    # queued behind the retries and the new jobs' writes are answered at once
    db = tmp_path / "jobs.db"
    async with open_store(db, busy_timeout_s=3.0, beat_s=3600) as store:
        await store.add_job(job_id="done", owner="a", handle="a", call={}, running=True)
        with locked(db):
            with trio.fail_after(10):
                assert await store.finish_job("done", status="complete", result={"answer": "1"})
            assert store.problem is not None  # the streak began: said, and kept in memory
            async with trio.open_nursery() as nursery:
                for i in range(3):  # writes queued ahead of the reads: each would wait 3 s
                    nursery.start_soon(_refused, store, f"new-{i}")
                await trio.sleep(0.01)
                with trio.fail_after(1.5):
                    job = await store.get_job("done")
                    counts = await store.job_counts()
            assert job is not None and job.status == "complete"
            assert counts["complete"] == 1


async def _refused(store: Any, job_id: str) -> None:
    with pytest.raises(StoreUnavailable):
        await store.add_job(job_id=job_id, owner="a", handle="a", call={}, running=True)


def test_a_file_that_is_not_a_database_leaves_no_connection_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening one failed after its connection was made, which was left to the garbage
    collector (Python 3.13 warns of it): it is closed as the error leaves."""
    import sqlite3

    from switchman.store import _db

    opened: list[sqlite3.Connection] = []
    closed: list[sqlite3.Connection] = []

    class Tracked(sqlite3.Connection):
        def close(self) -> None:
            closed.append(self)
            super().close()

    real = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, factory=Tracked, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(_db.sqlite3, "connect", connect)
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database, " * 200)
    with pytest.raises(sqlite3.DatabaseError):
        _db._Db(str(path))
    # (every connection opened is closed: the one that reads the schema version too)
    assert opened and sorted(map(id, opened)) == sorted(map(id, closed))
