"""A job's times never run backwards: ``submitted_at <= started_at <= finished_at`` holds
when the wall clock is stepped back mid-call (an NTP step, a VM resumed, ``date -s``), on
every path that writes them. Real SQLite files."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from switchman.store import JobRecord, JobStore, open_store

#: how long the store waits for another process's lock in these tests
BUSY_S = 0.05


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _in_order(job: JobRecord | None) -> tuple[float, float | None, float | None]:
    assert job is not None
    times = (job.submitted_at, job.started_at, job.finished_at)
    known = [t for t in times if t is not None]
    assert known == sorted(known), times
    return times


def _stored_times(path: Path, job_id: str) -> tuple[float, float | None, float | None]:
    """The job's times as the file has them (read as another process)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        row = conn.execute(
            "SELECT submitted_at, started_at, finished_at FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another process's write lock on ``path``: every write of the store fails meanwhile."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


async def _add(store: JobStore, job_id: str, *, running: bool = False) -> None:
    await store.add_job(
        job_id=job_id, owner=None, handle="team", call={"prompt": "hi"}, running=running
    )


async def test_a_finish_whose_clock_reads_before_its_start_finishes_when_it_started(
    tmp_path: Path,
) -> None:
    """The clock stepped back an hour mid-call: the job finished when it started (a zero
    duration), not an hour before it (a negative one in /result and /jobs)."""
    clock = Clock()
    path = tmp_path / "jobs.db"
    async with open_store(path, clock=clock) as store:
        await _add(store, "j")
        clock.t += 5
        assert await store.mark_running("j")
        clock.t -= 3600
        assert await store.finish_job("j", status="complete", result={"answer": "x"})
        assert _in_order(await store.get_job("j")) == (1_000_000.0, 1_000_005.0, 1_000_005.0)
        (listed,) = await store.list_jobs()
        assert _in_order(listed) == (1_000_000.0, 1_000_005.0, 1_000_005.0)
    assert _stored_times(path, "j") == (1_000_000.0, 1_000_005.0, 1_000_005.0)


async def test_a_job_started_by_a_clock_stepped_back_starts_when_it_was_submitted(
    tmp_path: Path,
) -> None:
    clock = Clock()
    path = tmp_path / "jobs.db"
    async with open_store(path, clock=clock) as store:
        await _add(store, "queued")
        clock.t -= 60
        assert await store.mark_running("queued")
        clock.t -= 60
        await store.finish_job("queued", status="failed", result=None, reason="x")
        assert _in_order(await store.get_job("queued")) == (1_000_000.0,) * 3
        # finished from the queue (never marked running): it starts when it finishes,
        # which is never before it was submitted
        await _add(store, "never-ran")
        clock.t -= 60
        await store.finish_job("never-ran", status="failed", result=None, reason="x")
        assert _in_order(await store.get_job("never-ran")) == (clock.t + 60,) * 3
    assert _stored_times(path, "queued") == (1_000_000.0,) * 3


async def test_a_finish_kept_in_memory_reads_and_is_written_in_order(tmp_path: Path) -> None:
    """A finish that could not be written (the store locked) is read back as written, and
    written later, by the same rule."""
    clock = Clock()
    path = tmp_path / "jobs.db"
    async with open_store(path, clock=clock, busy_timeout_s=BUSY_S, beat_s=3600) as store:
        await _add(store, "run", running=True)
        await _add(store, "queue")
        clock.t -= 3600
        with locked(path):
            assert await store.finish_job("run", status="complete", result={"answer": "x"})
            assert await store.finish_job("queue", status="failed", result=None, reason="y")
            assert store.unwritten == 2
            assert _in_order(await store.get_job("run")) == (1_000_000.0,) * 3
            assert _in_order(await store.get_job("queue")) == (1_000_000.0,) * 3
            for job in await store.list_jobs():
                _in_order(job)
        assert await store.write_unwritten()
    assert _stored_times(path, "run") == (1_000_000.0,) * 3
    assert _stored_times(path, "queue") == (1_000_000.0,) * 3


async def test_a_job_stored_running_that_waited_starts_when_its_finish_says(
    tmp_path: Path,
) -> None:
    """A job stored running at its submit whose call waited for a router slot is finished
    with when it took the slot: its start, written and kept in memory alike (and never
    before its submit, whatever the clock said)."""
    clock = Clock()
    path = tmp_path / "jobs.db"
    async with open_store(path, clock=clock, busy_timeout_s=BUSY_S, beat_s=3600) as store:
        for job in ("waited", "kept", "early"):
            await _add(store, job, running=True)
        clock.t += 10
        assert await store.finish_job("waited", status="complete", result={}, started_at=1e6 + 4)
        assert _in_order(await store.get_job("waited")) == (1e6, 1e6 + 4, 1e6 + 10)
        assert await store.finish_job("early", status="complete", result={}, started_at=1e6 - 9)
        assert _in_order(await store.get_job("early")) == (1e6, 1e6, 1e6 + 10)
        with locked(path):
            assert await store.finish_job("kept", status="failed", result=None, started_at=1e6 + 7)
            assert _in_order(await store.get_job("kept")) == (1e6, 1e6 + 7, 1e6 + 10)
        assert await store.write_unwritten()
    assert _stored_times(path, "waited") == (1e6, 1e6 + 4, 1e6 + 10)
    assert _stored_times(path, "kept") == (1e6, 1e6 + 7, 1e6 + 10)


async def test_a_queued_job_finished_with_its_start_by_a_clock_stepped_back_ends_after_it(
    tmp_path: Path,
) -> None:
    """A job queued behind others began (its start from the call, before the step) and
    finished after the clock went back an hour: written with its finish before its start
    (SQLite's UPDATE read the queued row's NULL start), while memory said otherwise."""
    clock = Clock()
    path = tmp_path / "jobs.db"
    async with open_store(path, clock=clock) as store:
        await _add(store, "queued")
        clock.t -= 3600
        assert await store.finish_job("queued", status="complete", result={}, started_at=1e6 + 27)
        assert _in_order(await store.get_job("queued")) == (1e6, 1e6 + 27, 1e6 + 27)
    assert _stored_times(path, "queued") == (1e6, 1e6 + 27, 1e6 + 27)


async def test_a_wall_clock_stepped_ahead_does_not_age_the_jobs_it_finished(
    tmp_path: Path, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """NTP righting a clock forty days behind (a VM resumed from a snapshot): the jobs
    finished a minute before read forty days old and were deleted at the next prune, their
    results with them. They now age as time passes, by trio's clock, for the retention's
    days; the step is logged once (the store also prunes every five minutes meanwhile)."""
    clock = Clock()
    async with open_store(
        tmp_path / "jobs.db", clock=clock, retention_days=7.0, elapsed=trio.current_time
    ) as store:
        await _add(store, "before")
        assert await store.finish_job("before", status="complete", result={"answer": "x"})
        await trio.sleep(60.0)
        clock.t += 60.0 + 40 * 86_400.0
        await _add(store, "after")
        assert await store.finish_job("after", status="complete", result={"answer": "y"})
        assert await store.prune() == 0
        assert await store.get_job("before") is not None
        await trio.sleep(6 * 86_400.0)
        clock.t += 6 * 86_400.0
        assert await store.prune() == 0  # six days old, as time passed
        await trio.sleep(2 * 86_400.0)
        clock.t += 2 * 86_400.0
        assert await store.prune() == 2  # eight: old by both clocks
    told = [r for r in caplog.records if "ahead of the time that passed" in r.getMessage()]
    assert len(told) == 1, told
    # (about forty days: trio's mock clock may jump ahead while SQLite's thread works)
    ahead = re.match(r"the wall clock is (\d+) s ahead", told[0].getMessage())
    assert ahead is not None and abs(int(ahead[1]) - 40 * 86_400) <= 60, told[0].getMessage()
