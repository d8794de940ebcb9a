"""A stop always ends: a websocket client that stops reading holds hypercorn in a send no
cancel can end, and the daemon used to wait for it forever, even after a second signal.
Now the stop ends within its time (grace, the responses' margin, a few seconds) or the
process exits with 1, saying why. Through the real daemon and a real socket."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from switchman import _cli_serve
from switchman._cli_serve import STOP_SLACK_S
from switchman.gateway._outbox import Outboxes
from switchman.gateway._serve import RESPONSE_MARGIN_S
from tests.test_cli import Daemon, serving

GRACE_S = 0.5
CALLS = 600


async def _stuck_subscriber_then(
    d: Daemon, signals: int, read_every: float | None = None
) -> tuple[float, int]:
    """A subscriber that never reads (``read_every`` None), or reads a message each
    ``read_every`` seconds, while the daemon answers CALLS calls; then ``signals``
    SIGTERMs half a second apart: (seconds to exit, exit code)."""
    base = f"http://127.0.0.1:{d.port}"
    async with (
        open_websocket_url(f"ws://127.0.0.1:{d.port}/ws", message_queue_size=0) as ws,
        trio.open_nursery() as reading,
    ):
        await ws.send_message(json.dumps({"type": "subscribe"}))
        assert json.loads(await ws.get_message())["type"] == "subscribed"
        if read_every is not None:

            async def slowly() -> None:
                while True:
                    await ws.get_message()
                    await trio.sleep(read_every)

            reading.start_soon(slowly)
        # from here on nothing is read (or little): the daemon's sends to this socket fill
        async with httpx.AsyncClient(timeout=30) as client:
            body = {"prompt": "Explain recursion. " * 20, "model": "sim/fast"}
            body["params"] = {"max_tokens": 800}
            for _ in range(CALLS):
                assert (await client.post(f"{base}/call", json=body)).status_code == 202
            deadline = trio.current_time() + 60
            while (await client.get(f"{base}/jobs?status=running")).json()["jobs"]:
                assert trio.current_time() < deadline
                await trio.sleep(0.2)
        started = time.monotonic()
        for i in range(signals):
            if i:
                await trio.sleep(0.5)
            d.proc.send_signal(signal.SIGTERM)
        while d.proc.poll() is None:
            assert time.monotonic() - started < 60, "the daemon never stopped"
            await trio.sleep(0.05)
        reading.cancel_scope.cancel()
        return time.monotonic() - started, d.proc.returncode


def _stderr(home: Path) -> str:
    return next(home.glob("serve-*.err")).read_text()


@pytest.mark.parametrize(
    ("signals", "read_every"),
    [(1, None), (2, None), (1, 0.2)],
    ids=["one-sigterm", "two-sigterms", "slow-reader"],
)
async def test_a_client_that_stops_reading_cannot_hold_the_stop(
    tmp_path: Path, signals: int, read_every: float | None
) -> None:
    """The write such a client holds up is ended once the responses' margin is over (at
    once after a second signal), its client dropped: the stop ends in time, exit 0. A
    reader slow but steady, never stalled, had held it 7 to 21 s, then exit 1."""
    config = tmp_path / "switchman.toml"
    config.write_text(f"[server]\ngrace_s = {GRACE_S}\n")
    with serving(tmp_path, tmp_path / "jobs.db", "--config", str(config)) as d:
        took, code = await _stuck_subscriber_then(d, signals, read_every)
    err = _stderr(tmp_path)
    print(f"signals={signals} read_every={read_every} took={took:.2f}s exit={code}")
    limit = GRACE_S + RESPONSE_MARGIN_S if signals == 1 else 0.5
    assert took < limit + STOP_SLACK_S, (took, err[-2000:])
    assert code == 0, err[-2000:]


async def test_a_second_signal_still_stores_the_jobs_it_cuts_with_what_they_cost(
    tmp_path: Path,
) -> None:
    """A second SIGTERM ends the grace period at once, but the jobs still running are
    ended by the router and stored with their attempts and what their output was billed,
    which the spend counts too (after a restart on the same database)."""
    config = tmp_path / "switchman.toml"
    config.write_text(
        "[server]\ngrace_s = 30\n[budgets]\nglobal_daily_usd = 5.0\n"
        '[[models]]\nalias = "sim/sloth"\nprovider = "sim"\nmodel_id = "sloth"\n'
        "input_per_mtok = 10.0\noutput_per_mtok = 20.0\n"
        "sim = { latency_ms = 30000, ttft_ms = 50 }\n"
    )
    db = tmp_path / "jobs.db"
    with serving(tmp_path, db, "--config", str(config)) as d:
        base = f"http://127.0.0.1:{d.port}"
        async with httpx.AsyncClient(timeout=10) as client:
            body = {"prompt": "Take your time", "model": "sim/sloth"}
            job_id = (await client.post(f"{base}/call", json=body)).json()["job_id"]
            await trio.sleep(1.0)  # its answer has begun
        started = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        await trio.sleep(0.3)
        d.proc.send_signal(signal.SIGTERM)
        while d.proc.poll() is None:
            assert time.monotonic() - started < 10, "the daemon never stopped"
            await trio.sleep(0.05)
        took = time.monotonic() - started
    assert took < 0.3 + 2.0, _stderr(tmp_path)[-2000:]
    with serving(tmp_path, db, "--config", str(config)) as again:
        base = f"http://127.0.0.1:{again.port}"
        async with httpx.AsyncClient(timeout=10) as client:
            job = (await client.get(f"{base}/result/{job_id}")).json()
            budgets = (await client.get(f"{base}/budgets")).json()["budgets"]
    assert (job["status"], job["reason"]) == ("failed", "shutdown")
    (attempt,) = job["result"]["trace"]["attempts"]
    assert attempt["outcome"] == "cancelled" and attempt["cost_usd"] > 0
    (total,) = [b for b in budgets if b["scope"] == "global"]
    assert total["spent_usd"]["day"] == pytest.approx(job["result"]["cost_usd"])


async def test_the_backstop_tells_what_open_sockets_still_owe_before_it_exits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its last words: the results each open websocket still owes are logged (they stay in
    GET /result), then the process exits with 1."""
    done: list[str] = []

    class Exited(Exception):
        pass

    def exit_now(code: int) -> None:
        done.append(f"exit {code}")
        raise Exited

    class Told(Outboxes):
        def tell_unsent(self) -> None:
            done.append("told")

    monkeypatch.setattr(_cli_serve.os, "_exit", exit_now)
    backstop = _cli_serve._Backstop(outboxes=Told())
    backstop.by(trio.current_time())
    with pytest.raises(Exited):
        await backstop.run()
    assert done == ["told", "exit 1"]
