"""What a websocket may make the daemon hold: one copy of a job's result however often it is
subscribed, ``OUTBOX_BYTES`` of queued text, and nothing once it closes; a client that
reads still gets every result. Real sockets: the gateway on 127.0.0.1, a client whose
receive buffer is small and fixed (so a client that does not read stops the gateway's
writes at once, not after the tens of MB a loopback socket's buffers grow to)."""

from __future__ import annotations

import gc
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from switchman.gateway import _ws
from switchman.gateway._auth import OPEN
from switchman.gateway._outbox import Outboxes
from switchman.gateway._ws import RESULT_COPIES, _Connection
from switchman.store import JobStore, open_store
from tests.gateway._fakes import FakeRouter, Running, make_config, running_gateway


async def _finished_jobs(store: JobStore, n: int, answer_chars: int) -> list[str]:
    """``n`` jobs of the open gateway, complete, each with an answer of ``answer_chars``."""
    ids = [f"job_{i:04d}" for i in range(n)]
    for job_id in ids:
        await store.add_job(job_id=job_id, owner=None, handle="local", call={}, running=True)
        answer = job_id * (answer_chars // len(job_id))
        result = {"job_id": job_id, "status": "complete", "answer": answer}
        await store.finish_job(job_id, status="complete", result=result)
    return ids


@asynccontextmanager
async def _gateway(jobs: int, answer_chars: int) -> AsyncIterator[tuple[Running, list[str]]]:
    router = FakeRouter(make_config())
    async with open_store(":memory:") as store, running_gateway(router, store=store) as gw:
        yield gw, await _finished_jobs(store, jobs, answer_chars)


@asynccontextmanager
async def _socket(gw: Running) -> AsyncIterator[WebSocketConnection]:
    """A websocket whose receive buffer is 8 KiB and stays so (no autotuning), holding one
    message it has not been asked for: a client that does not read fills it at once."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 8192)
    await sock.connect((gw.host, gw.port))
    stream = trio.SocketStream(sock)
    async with trio.open_nursery() as nursery:
        ws = await wrap_client_stream(nursery, stream, gw.host, "/ws", max_message_size=2**22)
        try:
            yield ws
            with trio.move_on_after(5):
                await ws.aclose()
        finally:  # (a test that failed while the gateway waits for it to read: it is gone)
            await trio.aclose_forcefully(stream)
            nursery.cancel_scope.cancel()


def _connections() -> list[_Connection]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, _Connection)]


def _connection() -> _Connection:
    """The gateway's one websocket connection (tests hold one socket at a time)."""
    found = _connections()
    assert len(found) == 1
    return found[0]


async def _subscribe(ws: WebSocketConnection, job_id: str) -> None:
    await ws.send_message(json.dumps({"type": "subscribe", "job_id": job_id}))


async def _read(ws: WebSocketConnection, until: int, kind: str) -> list[dict[str, Any]]:
    """Messages until ``until`` of type ``kind`` came."""
    seen: list[dict[str, Any]] = []
    while sum(m["type"] == kind for m in seen) < until:
        seen.append(json.loads(await ws.get_message()))
    return seen


async def _rest(ws: WebSocketConnection) -> list[dict[str, Any]]:
    """The messages that come within 0.2 s of each other."""
    seen: list[dict[str, Any]] = []
    while True:
        with trio.move_on_after(0.2):
            seen.append(json.loads(await ws.get_message()))
            continue
        return seen


async def _wait_for(what: Any) -> None:
    """Until ``what()`` holds (a state of the server's, seen from the test's side)."""
    while True:
        if what():
            return
        await trio.sleep(0.02)


async def test_a_job_subscribed_5000_times_unread_is_owed_once() -> None:
    with trio.fail_after(60):
        async with _gateway(1, 20_000) as (gw, (job_id,)), _socket(gw) as ws:
            most = 0
            for i in range(5000):  # (the gateway's socket buffers take them all)
                await _subscribe(ws, job_id)
                if i % 250 == 249:
                    most = max(most, _connection().statistics().results)
            # its outbox full of acks, the socket reads no more of them; one copy at most
            await _wait_for(lambda: _connection().statistics().waiting > 0)
            owed = _connection().statistics()
            assert owed.messages == _ws.OUTBOX and owed.waiting == 1
            assert max(most, owed.results) <= 1
            seen = await _read(ws, 5000, "subscribed")
            seen += await _rest(ws)  # (a result written after the last ack)
    results = [i for i, m in enumerate(seen) if m["type"] == "result"]
    # the client read it once, and got it once more at most (a subscribe after it went out)
    assert 1 <= len(results) <= RESULT_COPIES
    assert all(seen[i]["result"]["answer"].startswith(job_id) for i in results)
    acks = [m for m in seen if m["type"] == "subscribed"]
    assert len(acks) == 5000 and {a["job_id"] for a in acks} == {job_id}
    # once it went out as often as a socket sends it, a subscribe is told so (those taken
    # while the last copy waited to go out are acknowledged plainly: it is still owed)
    told = [i for i, m in enumerate(seen) if m.get("already") == "sent"]
    if len(results) == RESULT_COPIES:
        assert told and told[0] > results[-1] and told[-1] == len(seen) - 1
    else:
        assert not told
    assert len(seen) == 5000 + len(results)


async def test_large_results_unread_stay_within_the_byte_bound_and_all_arrive_once_read() -> None:
    """300 results of 64 KB (19 MB; the socket's buffers take about 4 MB): the gateway holds
    at most OUTBOX_BYTES of them, and stops reading the client's messages; once the client
    reads, every one arrives."""
    bound = _ws.OUTBOX_BYTES
    with trio.fail_after(60):
        async with _gateway(300, 64_000) as (gw, ids), _socket(gw) as ws:
            for job_id in ids:
                await _subscribe(ws, job_id)
            # the socket fills, and its reader stops: a result waits for room
            await _wait_for(lambda: _connection().statistics().waiting > 0)
            for _ in range(10):
                owed = _connection().statistics()
                assert owed.waiting == 1  # the reader's result: no further message taken
                assert bound - 2 * 65_000 < owed.text_bytes <= bound
                await trio.sleep(0.05)
            seen = await _read(ws, 300, "result")
    got = Counter(m["job_id"] for m in seen if m["type"] == "result")
    assert got == Counter(ids)


async def test_a_reading_client_gets_each_of_200_results_however_often_it_subscribes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each of 200 jobs subscribed three times in a row, the client reading all along, with
    a bound of 256 KiB (eight of the 32 KB results): every result arrives, none more than
    RESULT_COPIES times, and the socket is not closed."""
    monkeypatch.setattr(_ws, "OUTBOX_BYTES", 256 * 1024)
    with trio.fail_after(60):
        async with _gateway(200, 32_000) as (gw, ids), _socket(gw) as ws:

            async def subscribe_all() -> None:
                for job_id in ids:
                    for _ in range(3):
                        await _subscribe(ws, job_id)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(subscribe_all)
                seen = await _read(ws, 600, "subscribed")
            seen += await _rest(ws)  # (results written after the last ack)
            assert not ws.closed
    got = Counter(m["job_id"] for m in seen if m["type"] == "result")
    assert set(got) == set(ids)
    assert max(got.values()) <= RESULT_COPIES


async def test_a_client_that_does_not_read_is_closed_and_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_ws, "OUTBOX_BYTES", 256 * 1024)
    monkeypatch.setattr(_ws, "STALL_S", 1.0)
    with trio.fail_after(60):
        async with _gateway(120, 64_000) as (gw, ids):
            subscribers = gw.router.subscribers
            async with _socket(gw) as ws:
                for job_id in ids:
                    await _subscribe(ws, job_id)
                await _wait_for(lambda: _connection().statistics().waiting > 0)
                started = trio.current_time()
                await _wait_for(lambda: _connection().gave_up is not None)
                assert trio.current_time() - started >= 0.9
                # what it owed is dropped at once, but for the write the client holds up
                owed = _connection().statistics()
                assert (owed.messages, owed.waiting) == (0, 0) and owed.text_bytes <= 65_000
                results = 0
                with pytest.raises(ConnectionClosed) as closed:
                    while True:  # now it reads: what was written, then the close
                        results += json.loads(await ws.get_message())["type"] == "result"
                reason = closed.value.reason
                assert reason is not None and reason.code == 1008
                assert reason.reason == (
                    "read too slowly: nothing was read for 1 s while messages waited for"
                    " room; results stay in GET /result"
                )
                assert 0 < results < len(ids)
            # the connection is gone, its subscription closed (the hub lets it go at the
            # next subscribe): nothing of it is held
            with gw.router.subscribe(buffer=1):
                assert gw.router.subscribers == subscribers + 1  # (this one)
            await _wait_for(lambda: not _connections())
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and said[0].startswith("websocket of the open gateway closed (1008):")
    assert " waited 1 s for room); " in said[0]
    assert said[0].endswith("result(s) not sent stay in GET /result")


async def test_a_client_that_reads_slowly_but_steadily_gets_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through a real socket: a reader far slower than its results come, for five times
    STALL_S, is never closed and reads every result (each write restarts the clock; the
    case of results held behind queued events is the stand-in test below). A read every
    twentieth of STALL_S: room for a busy machine's pauses, never a stall's length."""
    monkeypatch.setattr(_ws, "OUTBOX_BYTES", 256 * 1024)
    monkeypatch.setattr(_ws, "STALL_S", 2.0)
    with trio.fail_after(60):
        async with _gateway(100, 64_000) as (gw, ids), _socket(gw) as ws:
            for job_id in ids:
                await _subscribe(ws, job_id)
            await _wait_for(lambda: _connection().statistics().waiting > 0)
            results: set[str] = set()
            started = trio.current_time()
            while len(results) < len(ids):
                message = json.loads(await ws.get_message())
                if message["type"] == "result":
                    results.add(message["job_id"])
                await trio.sleep(0.1)  # a slow reader: 100 results take 10 s, five STALL_S
            assert trio.current_time() - started > 4 * _ws.STALL_S
            assert results == set(ids) and _connection().gave_up is None


def _stand_in(nursery: trio.Nursery, send: Any) -> _Connection:
    gw = SimpleNamespace(
        config=make_config(), runner=SimpleNamespace(draining=False), outboxes=Outboxes()
    )
    return _Connection(gw, OPEN, send, nursery)  # type: ignore[arg-type]


async def test_a_result_larger_than_the_bound_goes_out_alone_and_events_wait_behind_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A result over OUTBOX_BYTES waits until nothing else is owed, then goes out; trace
    events offered while it waits are dropped and counted, not queued ahead of it."""
    monkeypatch.setattr(_ws, "OUTBOX_BYTES", 10_000)
    sent: list[dict[str, Any]] = []
    gate = trio.Event()

    async def slow_send(message: dict[str, Any]) -> None:
        await gate.wait()
        sent.append(json.loads(message["text"]))

    big = {"type": "result", "job_id": "job_big", "status": "complete", "result": "x" * 50_000}
    async with trio.open_nursery() as nursery:
        conn = _stand_in(nursery, slow_send)
        nursery.start_soon(conn.write_loop)
        await conn._put({"type": "subscribed", "job_id": "job_small"})
        nursery.start_soon(conn._put, big)
        await trio.testing.wait_all_tasks_blocked()
        assert conn.statistics().waiting == 1  # behind the reply being written
        for i in range(3):
            conn.offer({"type": "attempt.delta", "call_id": "c", "text": str(i)})
        assert conn.statistics().messages == 0 and conn.dropped == 3
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert conn.statistics().text_bytes == 0
        nursery.cancel_scope.cancel()
    assert [m["type"] for m in sent] == ["subscribed", "events.dropped", "result"]
    assert sent[1]["count"] == 3 and sent[2]["result"] == "x" * 50_000


async def test_a_result_behind_queued_events_takes_their_room_and_a_steady_reader_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Big answers' deltas filled the bound; a result then waited behind them all, and a
    client reading steadily at 115 KB/s was closed as if it had stopped (its results
    waited STALL_S in all). Now the queued events are dropped (counted) to make room, and
    the stall clock restarts with each write."""
    monkeypatch.setattr(_ws, "OUTBOX_BYTES", 20_000)
    monkeypatch.setattr(_ws, "STALL_S", 0.3)
    sent: list[dict[str, Any]] = []

    async def slow_send(message: dict[str, Any]) -> None:
        await trio.sleep(0.1)  # a steady reader, slower than the results come
        sent.append(json.loads(message["text"]))

    result = {"type": "result", "status": "complete", "result": "y" * 6_000}
    async with trio.open_nursery() as nursery:
        conn = _stand_in(nursery, slow_send)
        nursery.start_soon(conn.write_loop)
        nursery.start_soon(conn.watch_backlog)
        for i in range(300):
            conn.offer({"type": "attempt.delta", "call_id": "c", "text": f"{i:04}" * 25})
        assert conn.statistics().text_bytes > 15_000  # the deltas fill the bound
        for n in range(12):  # results that keep one waiting for over a second in all
            await conn._put({**result, "job_id": f"job_{n}"})
        await _wait_for(lambda: conn.statistics().text_bytes == 0)
        assert conn.gave_up is None
        nursery.cancel_scope.cancel()
    results = [m["job_id"] for m in sent if m["type"] == "result"]
    assert results == [f"job_{n}" for n in range(12)]
    # the deltas queued before the first waiting result went, and the client was told
    told = sum(m["count"] for m in sent if m["type"] == "events.dropped")
    deltas = sum(m["type"] == "attempt.delta" for m in sent)
    assert told > 0 and told + deltas == 300


async def test_the_sockets_of_one_team_that_do_not_read_share_one_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four sockets of one team (the open gateway), none reading, each subscribed to 100
    results of 64 KB (the kernel's buffers take about 4 MB of each socket's 6.4): each
    socket's own bound would let the four hold four times as much as one, and a key's 64
    sockets 512 MiB; together they hold at most TEAM_OUTBOX_BYTES, one result each past
    it. Then a socket leaves mid-write and gives its room back; once the others read, each
    gets every one of its results, and the team owes nothing after."""
    monkeypatch.setattr(_ws, "TEAM_OUTBOX_BYTES", 2 * 1024 * 1024)
    bound = _ws.TEAM_OUTBOX_BYTES
    per_socket = 100
    with trio.fail_after(90):
        async with _gateway(4 * per_socket, 64_000) as (gw, ids), AsyncExitStack() as all_four:
            stacks = [await all_four.enter_async_context(AsyncExitStack()) for _ in range(4)]
            sockets = [await stack.enter_async_context(_socket(gw)) for stack in stacks]
            mine = [ids[k * per_socket : (k + 1) * per_socket] for k in range(4)]
            for ws, jobs in zip(sockets, mine, strict=True):
                for job_id in jobs:
                    await _subscribe(ws, job_id)

            def owed() -> int:
                return sum(c.statistics().text_bytes for c in _connections())

            # each socket fills its kernel buffers, then its results wait for the team's room
            await _wait_for(
                lambda: (
                    owed() > bound + 4 * 65_000
                    or all(c.statistics().waiting for c in _connections())
                )
            )
            connections = _connections()
            room = connections[0].gw.outboxes
            for _ in range(10):
                assert len(connections) == 4
                assert all(c.statistics().waiting == 1 for c in connections)
                assert owed() <= bound + 4 * 65_000
                assert room.used(None) == owed()
                await trio.sleep(0.05)
            # one leaves while a write to it is held up: its room goes back to the team
            # (the last opened: each socket's context holds a nursery inside the one before)
            await stacks[-1].aclose()
            await _wait_for(
                lambda: (
                    sum(c.statistics().waiting for c in connections) == 3
                    and room.used(None) == owed()
                )
            )

            async def read_all(ws: WebSocketConnection, jobs: list[str]) -> None:
                seen = await _read(ws, per_socket, "result")
                got = Counter(m["job_id"] for m in seen if m["type"] == "result")
                assert got == Counter(jobs)

            async with trio.open_nursery() as nursery:
                for ws, jobs in zip(sockets[:-1], mine[:-1], strict=True):
                    nursery.start_soon(read_all, ws, jobs)
        assert room.used(None) == 0


async def test_a_forced_exit_logs_the_results_a_socket_that_does_not_read_still_owes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A daemon whose stop a non-reading client holds up exits at its backstop without
    ending the connection: ``Outboxes.tell_unsent`` (the backstop's last words) logs the
    results still queued or waiting for room, as a connection that ends does."""
    monkeypatch.setattr(_ws, "OUTBOX_BYTES", 256 * 1024)
    with trio.fail_after(60):
        async with _gateway(120, 64_000) as (gw, ids), _socket(gw) as ws:
            for job_id in ids:
                await _subscribe(ws, job_id)
            await _wait_for(lambda: _connection().statistics().waiting > 0)
            owed = _connection().statistics()
            # those queued, but for the one being written (held up by the client), and the
            # one waiting for room
            unsent = owed.results - 1 + owed.waiting
            assert unsent > 1
            caplog.clear()
            _connection().gw.outboxes.tell_unsent()
            said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert said == [
                f"websocket of the open gateway closed with {unsent} result(s)"
                " not sent (the client read too slowly or not at all); they stay in GET /result"
            ]
