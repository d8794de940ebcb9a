"""JobRunner: a job's call starts while its row is written, and nothing is revealed early."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from switchman import Call, Delta, Result
from switchman.gateway._jobs import JobRunner
from switchman.store import JobStore, open_store

from ._fakes import FakeRouter, make_config


def slow_inserts(store: JobStore, monkeypatch: pytest.MonkeyPatch, log: list[str]) -> None:
    """Make each job insert take 0.2 s, logging when it starts and ends."""
    add_job = store.add_job

    async def slow(**kw: Any) -> Any:
        log.append("insert begins")
        await trio.sleep(0.2)
        record = await add_job(**kw)
        log.append("insert stored")
        return record

    monkeypatch.setattr(store, "add_job", slow)


async def test_the_call_starts_while_its_row_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = FakeRouter(make_config(), slow_s=0.0)
    log: list[str] = []
    with trio.fail_after(10):
        async with open_store(tmp_path / "jobs.db") as store, trio.open_nursery() as nursery:
            slow_inserts(store, monkeypatch, log)
            runner = JobRunner(router, store, nursery, max_in_flight=4)
            job_id = await runner.submit(Call(prompt="hi", model="fast"), owner=None)
            log.append("id returned")
            # the router had the call before the insert was on disk
            assert router.calls and router.calls[0][1] == job_id
            assert log == ["insert begins", "insert stored", "id returned"]
            # the row exists as soon as the id is known; its final record follows it
            record = await store.get_job(job_id)
            assert record is not None
            result = await runner.wait(job_id)
            assert result is not None and result.status == "complete"
            record = await store.get_job(job_id)
            assert record is not None and record.status == "complete"


async def test_a_stream_reveals_nothing_before_the_row_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = FakeRouter(make_config(), slow_s=0.0)
    log: list[str] = []
    with trio.fail_after(10):
        async with open_store(tmp_path / "jobs.db") as store, trio.open_nursery() as nursery:
            slow_inserts(store, monkeypatch, log)
            runner = JobRunner(router, store, nursery, max_in_flight=4)
            sink, items = trio.open_memory_channel[Delta | Result](16)
            job_id = await runner.submit(Call(prompt="hi", model="fast"), owner=None, sink=sink)
            # the answer was produced meanwhile (buffered), but read only from here on
            got = [item async for item in items]
    assert log == ["insert begins", "insert stored"]
    assert isinstance(got[-1], Result) and got[-1].status == "complete"
    assert got[-1].job_id == job_id


async def test_a_job_whose_row_cannot_be_stored_is_cancelled_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with open_store(tmp_path / "jobs.db") as store, trio.open_nursery() as nursery:

            async def broken(**kw: Any) -> Any:
                await trio.sleep(0.1)  # the call has started by now
                raise OSError("disk full")

            monkeypatch.setattr(store, "add_job", broken)
            runner = JobRunner(router, store, nursery, max_in_flight=4)
            sink, items = trio.open_memory_channel[Delta | Result](16)
            ids: list[str] = []
            with pytest.raises(OSError, match="disk full"):
                await runner.submit(
                    Call(prompt="hi", model="hang"), owner=None, sink=sink, on_id=ids.append
                )
            assert len(router.calls) == 1  # it had started
            with trio.fail_after(2):
                await runner.wait_idle()  # and was cancelled, not left hanging
            assert [item async for item in items] == []  # the stream just ends
            assert runner.in_flight == 0
            assert await store.get_job(ids[0]) is None  # nothing stored, not even a failure


async def test_start_early_off_stores_the_row_before_the_call_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = FakeRouter(make_config(), slow_s=0.0)
    log: list[str] = []
    with trio.fail_after(10):
        async with open_store(tmp_path / "jobs.db") as store, trio.open_nursery() as nursery:
            slow_inserts(store, monkeypatch, log)
            runner = JobRunner(router, store, nursery, max_in_flight=4)
            job_id = await runner.submit(
                Call(prompt="hi", model="fast"), owner=None, start_early=False
            )
            assert router.calls == []  # not yet: it starts after the insert
            result = await runner.wait(job_id)
            assert result is not None and result.status == "complete"
