"""A daemon killed outright (SIGKILL) while attempts are in flight restarts with what
they could cost counted as spent: their bills are never learned, and forgetting them
could let a budget be overspent. Real daemons on the simulator, a real SQLite file."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.test_cli import serving

# a model that takes 30 s to answer, at $1,000 per million tokens each way: a call sent
# max_tokens 1,000 holds about $1 of the day's $5
SLOW_AND_DEAR = """
[server]
grace_s = 1.0

[budgets]
global_daily_usd = 5.0

[[models]]
alias = "sim/dear"
provider = "sim"
model_id = "dear"
input_per_mtok = 1000.0
output_per_mtok = 1000.0
sim = { latency_ms = 30000, ttft_ms = 100 }
"""


def _held(db: Path) -> list[dict[str, object]]:
    """The reservations the store holds now (read as another process would)."""
    # (closing: a connection's own "with" commits and leaves it open)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        # (one read transaction: two plain reads saw a save commit between them)
        conn.execute("BEGIN")
        row = conn.execute("SELECT value FROM spend WHERE key = 'nano_usd'").fetchone()
        held = conn.execute("SELECT value FROM held ORDER BY id").fetchall()
        conn.rollback()
    assert row is not None or not held
    return [json.loads(value) for (value,) in held]


def _day_spent(port: int) -> float:
    budgets = httpx.get(f"http://127.0.0.1:{port}/budgets", timeout=5).json()["budgets"]
    (glob,) = [b for b in budgets if b["scope"] == "global"]
    return float(glob["spent_usd"]["day"])


def test_attempts_in_flight_at_a_kill_count_as_spent_after_the_restart(tmp_path: Path) -> None:
    config = tmp_path / "switchman.toml"
    config.write_text(SLOW_AND_DEAR)
    db = tmp_path / "jobs.db"
    body = {"prompt": "Take your time", "model": "sim/dear", "params": {"max_tokens": 1000}}
    with serving(tmp_path, db, "--config", str(config)) as daemon:
        base = f"http://127.0.0.1:{daemon.port}"
        job_ids = [
            httpx.post(f"{base}/call", json=body, timeout=5).json()["job_id"] for _ in range(2)
        ]
        deadline = time.monotonic() + 20
        while len(_held(db)) < 2:  # both attempts' holds are on disk
            assert time.monotonic() < deadline, "the holds never reached the store"
            time.sleep(0.05)
        held = _held(db)
        assert _day_spent(daemon.port) == 0.0  # held, not spent, while the process lives
        daemon.proc.kill()
        daemon.proc.wait(timeout=10)
    bound = sum(int(h["nanos"]) for h in held) / 1e9  # type: ignore[call-overload]
    assert 1.5 < bound < 2.5
    with serving(tmp_path, db, "--config", str(config)) as idle:  # a start that spends nothing
        assert _day_spent(idle.port) == pytest.approx(bound)
        idle.proc.send_signal(signal.SIGTERM)
        assert idle.proc.wait(timeout=20) == 0
    assert _held(db) == []  # folded into the spend when that start saved it
    with serving(tmp_path, db, "--config", str(config)) as again:
        assert _day_spent(again.port) == pytest.approx(bound)
        for job_id in job_ids:
            job = httpx.get(f"http://127.0.0.1:{again.port}/result/{job_id}", timeout=5).json()
            assert job["status"] == "failed"
            # the job says where that spend went: what its attempt in flight held
            (error,) = job["result"]["errors"]
            assert error["code"] == "interrupted"
            assert job["result"]["cost_usd"] == pytest.approx(bound / 2)
            # and the provider it was sent to (no attempt of it is in the trace)
            assert error["provider"] == "sim"
            assert job["result"]["simulated"] is True  # (a daemon on the simulator alone)
            assert "in flight on sim are counted" in error["message"]
        listed = httpx.get(f"http://127.0.0.1:{again.port}/jobs", timeout=5).json()["jobs"]
        killed = {j["job_id"]: j for j in listed if j["job_id"] in job_ids}
        assert {j["error_code"] for j in killed.values()} == {"interrupted"}
        assert sum(j["cost_usd"] for j in killed.values()) == pytest.approx(bound)
        # what is left of the $5 covers fewer such calls than if the holds were forgotten
        each = bound / 2
        fit = int((5.0 - bound) / each + 1e-9)
        assert fit < int(5.0 / each + 1e-9)
        base = f"http://127.0.0.1:{again.port}"
        for _ in range(5):
            httpx.post(f"{base}/call", json=body, timeout=5)
        deadline = time.monotonic() + 20
        while len(_held(db)) < fit:
            assert time.monotonic() < deadline, "the calls that fit never held their room"
            time.sleep(0.05)
        time.sleep(0.5)  # (no more holds follow: the others wait for room, held by these)
        assert len(_held(db)) == fit, bound
        # a clean stop (SIGTERM) with the calls it took in flight: cut at its grace, each
        # billed what it generated or given back, and no hold left in the store
        again.proc.send_signal(signal.SIGTERM)
        assert again.proc.wait(timeout=20) == 0
    assert _held(db) == []
    with serving(tmp_path, db, "--config", str(config)) as third:
        # the first kill's holds were folded into the spend when the second start saved
        # it: counted once, and told once
        assert bound <= _day_spent(third.port) < bound + 0.1
    err = "".join(p.read_text() for p in tmp_path.glob("serve-*.err"))
    assert err.count("attempt(s) were in flight when switchman last stopped") == 1
    assert "2 attempt(s) were in flight when switchman last stopped" in err


def test_a_clean_stop_leaves_no_hold_behind(tmp_path: Path) -> None:
    config = tmp_path / "switchman.toml"
    config.write_text(SLOW_AND_DEAR.replace("latency_ms = 30000", "latency_ms = 0"))
    db = tmp_path / "jobs.db"
    body = {"prompt": "Be quick", "model": "sim/dear", "params": {"max_tokens": 1000}}
    with serving(tmp_path, db, "--config", str(config)) as daemon:
        done = httpx.post(f"http://127.0.0.1:{daemon.port}/call?wait=20", json=body, timeout=30)
        assert done.json()["status"] == "complete"
        cost = done.json()["result"]["cost_usd"]
        time.sleep(0.3)
        assert _held(db) == []
    with serving(tmp_path, db, "--config", str(config)) as again:
        assert _day_spent(again.port) == pytest.approx(cost)


def test_an_attempt_whose_job_was_stored_before_the_kill_counts_at_its_bill(
    tmp_path: Path,
) -> None:
    """A job's result reaches the store before its attempt's settlement is saved (spend is
    saved in batches): a kill between the two leaves the hold of an attempt that ended.
    The restart counts that attempt at what the stored result says it was billed, not at
    the most it could have cost. (The store is put back as such a kill leaves it: the
    spend saved while the attempt was in flight, the job's result stored after.)"""
    config = tmp_path / "switchman.toml"
    config.write_text(SLOW_AND_DEAR.replace("latency_ms = 30000", "latency_ms = 1500"))
    db = tmp_path / "jobs.db"
    body = {"prompt": "Take a moment", "model": "sim/dear", "params": {"max_tokens": 1000}}
    with serving(tmp_path, db, "--config", str(config)) as daemon:
        base = f"http://127.0.0.1:{daemon.port}"
        job_id = httpx.post(f"{base}/call", json=body, timeout=5).json()["job_id"]
        deadline = time.monotonic() + 20
        while not (held := _held(db)):
            assert time.monotonic() < deadline, "the hold never reached the store"
            time.sleep(0.02)
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            in_flight = conn.execute("SELECT key, value FROM spend").fetchall()
            holds = conn.execute("SELECT id, value FROM held").fetchall()
        done = httpx.get(f"{base}/result/{job_id}?wait=20", timeout=30).json()
        assert done["status"] == "complete"
        cost = done["result"]["cost_usd"]
        daemon.proc.kill()
        daemon.proc.wait(timeout=10)
    (hold,) = held
    assert hold["job"] == job_id and hold["attempt"] == 1
    bound = int(hold["nanos"]) / 1e9  # type: ignore[call-overload]
    assert 0 < cost < bound / 5  # the bill is far below what was held
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("DELETE FROM spend")
        conn.executemany("INSERT INTO spend (key, value) VALUES (?, ?)", in_flight)
        conn.execute("DELETE FROM held")
        conn.executemany("INSERT INTO held (id, value) VALUES (?, ?)", holds)
    with serving(tmp_path, db, "--config", str(config)) as again:
        assert _day_spent(again.port) == pytest.approx(cost)
        job = httpx.get(f"http://127.0.0.1:{again.port}/result/{job_id}", timeout=5).json()
        assert (job["status"], job["result"]["cost_usd"]) == ("complete", cost)
        again.proc.send_signal(signal.SIGTERM)
        assert again.proc.wait(timeout=20) == 0
    assert _held(db) == []
    with serving(tmp_path, db, "--config", str(config)) as third:  # counted once
        assert _day_spent(third.port) == pytest.approx(cost)
    err = "".join(p.read_text() for p in tmp_path.glob("serve-*.err"))
    assert "attempt(s) were in flight when switchman last stopped" not in err


def test_a_kill_right_after_answers_loses_none_of_their_spend(tmp_path: Path) -> None:
    """Spend is saved 50 ms after it is settled (settles close together share a write), and
    a job's result was stored before that: a daemon killed just after answering restarted
    without the spend of the calls it had just answered, and its budgets could then be
    overspent by as much. A finished job's spend is now saved before its result is stored,
    so what the answers said they cost is what the restart counts, to the nano-dollar."""
    config = tmp_path / "switchman.toml"
    # answered at once: the hold and its settle fall within the same 50 ms, neither saved
    instant = SLOW_AND_DEAR.replace(
        "latency_ms = 30000, ttft_ms = 100", "latency_ms = 0, ttft_ms = 0"
    )
    assert instant != SLOW_AND_DEAR
    config.write_text(instant)
    db = tmp_path / "jobs.db"
    body = {"prompt": "Be quick", "model": "sim/dear", "params": {"max_tokens": 100}}
    billed = 0.0
    for _ in range(3):  # each start answers calls and is killed at once after
        with serving(tmp_path, db, "--config", str(config)) as daemon:
            base = f"http://127.0.0.1:{daemon.port}"
            for _ in range(2):
                done = httpx.post(f"{base}/call?wait=20", json=body, timeout=30).json()
                assert done["status"] == "complete", done
                billed += done["result"]["cost_usd"]
            daemon.proc.kill()  # (within a millisecond or two of the last answer)
            daemon.proc.wait(timeout=10)
    with serving(tmp_path, db, "--config", str(config)) as again:
        assert _day_spent(again.port) == pytest.approx(billed, abs=1e-9)


async def test_an_embedded_router_cancelled_with_calls_in_flight_leaves_no_hold_behind(
    tmp_path: Path,
) -> None:
    """An application's nursery cancelled around its router (its block left by trio's
    "stop now") with 20 calls in flight: their holds ended as they were cancelled, but the
    ledger was cancelled before it took them, and the next start counted each at the most
    it could cost, 90 times what the calls cost ($0.0824 against $0.0009). Now the next
    start counts what their results say. A real SQLite store, the simulator."""
    import trio

    import switchman
    from switchman import Call
    from switchman.catalog import BudgetsConfig, SimProfile
    from switchman.store import open_store
    from tests._simfleet import fleet, sim_model

    slow = sim_model("slow", SimProfile(latency_ms=8000, ttft_ms=5000))
    config = fleet(slow, budgets=BudgetsConfig(global_daily_usd=5.0))
    db = str(tmp_path / "cut.db")
    results: list[switchman.Result] = []
    with trio.fail_after(30):
        async with open_store(db) as store, trio.open_nursery() as outer:
            with trio.CancelScope() as scope:
                async with switchman.open_router(config, store=store) as router:

                    async def one(i: int) -> None:
                        results.append(await router.call(Call(prompt=f"p{i}", model="slow")))

                    for i in range(20):
                        outer.start_soon(one, i)
                    await trio.sleep(0.5)
                    scope.cancel()
        assert len(results) == 20 and all(r.status == "failed" for r in results)
        async with open_store(db) as store, switchman.open_router(config, store=store) as router:
            spent = await router.spend("global")
    assert spent["day"] == pytest.approx(sum(r.cost_usd for r in results), abs=1e-9)
