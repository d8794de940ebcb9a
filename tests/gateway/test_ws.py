"""The /ws websocket: submit, subscribe, isolation, bad messages, slow clients."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from switchman._result import TraceEvent
from switchman.actors import TraceHub
from switchman.gateway import _ws
from switchman.gateway._auth import OPEN, Principal
from switchman.gateway._outbox import Outboxes
from switchman.gateway._ws import _CLOSE, FOLLOWED, OUTBOX, SUBSCRIPTION_BUFFER, _Connection
from tests.gateway._fakes import KEYS, FakeRouter, make_config, running_gateway


def _auth(secret: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {secret}".encode())]


async def _send(ws: WebSocketConnection, message: Any) -> None:
    await ws.send_message(json.dumps(message))


async def _recv(ws: WebSocketConnection) -> dict[str, Any]:
    message = await ws.get_message()
    assert isinstance(message, str)
    data = json.loads(message)
    assert isinstance(data, dict)
    return data


async def _until_result(ws: WebSocketConnection) -> list[dict[str, Any]]:
    seen = []
    while True:
        message = await _recv(ws)
        seen.append(message)
        if message["type"] == "result":
            return seen


async def test_submit_a_call_and_receive_its_events_and_result() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw, open_websocket_url(gw.ws_url) as ws:
            await _send(ws, {"type": "call", "call": {"prompt": "hi", "model": "fast"}})
            submitted = await _recv(ws)
            assert submitted["type"] == "submitted"
            job_id = submitted["job_id"]
            everything = await _until_result(ws)
            # the call runs streamed: its text arrives live as attempt.delta events
            deltas = [m["text"] for m in everything if m["type"] == "attempt.delta"]
            assert "".join(deltas) == "echo hi"
            seen = [m for m in everything if m["type"] != "attempt.delta"]
            types = [m["type"] for m in seen]
            assert types == ["call.accepted", "attempt.finished", "call.completed", "result"]
            for event in seen[:-1]:
                assert event["job_id"] == job_id and event["call_id"] == "call-1"
                assert isinstance(event["ts"], float)
            assert seen[1]["alias"] == "fast" and seen[1]["outcome"] == "success"
            result = seen[-1]
            assert result["job_id"] == job_id and result["status"] == "complete"
            assert result["result"]["answer"] == "echo hi"
            # the job is stored like any other
            job = (await gw.client.get(f"/result/{job_id}")).json()
            assert job["status"] == "complete"


async def test_subscribe_to_a_job_submitted_over_http() -> None:
    router = FakeRouter(make_config(), slow_s=0.5)
    with trio.fail_after(10):
        async with running_gateway(router) as gw, open_websocket_url(gw.ws_url) as ws:
            r = await gw.client.post("/call", json={"prompt": "later", "model": "slow"})
            job_id = r.json()["job_id"]
            for _ in range(3):  # subscribed three times while it runs: one result
                await _send(ws, {"type": "subscribe", "job_id": job_id})
                assert await _recv(ws) == {"type": "subscribed", "job_id": job_id}
            seen = await _until_result(ws)
            assert [m["type"] for m in seen][-2:] == ["call.completed", "result"]
            assert [m["type"] for m in seen].count("call.completed") == 1
            assert seen[-1]["result"]["answer"] == "echo later"
            # a finished job's result comes at once on subscribe
            await _send(ws, {"type": "subscribe", "job_id": job_id})
            assert (await _recv(ws))["type"] == "subscribed"
            again = await _recv(ws)
            assert again["type"] == "result" and again["result"]["answer"] == "echo later"


async def test_subscribe_all_sees_only_the_keys_own_events() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=_auth("secret-a")) as ws_a,
        ):
            await _send(ws_a, {"type": "subscribe"})
            assert await _recv(ws_a) == {"type": "subscribed", "job_id": None}
            other = await gw.client.post(
                "/call?wait=5", json={"prompt": "b"}, headers={"x-api-key": "secret-b"}
            )
            mine = await gw.client.post(
                "/call?wait=5", json={"prompt": "a"}, headers={"x-api-key": "secret-a"}
            )
            first = await _recv(ws_a)
            assert first["type"] == "call.accepted"
            assert first["job_id"] == mine.json()["job_id"] != other.json()["job_id"]
            # another key's job cannot be subscribed to: it does not exist for team-a
            await _send(ws_a, {"type": "subscribe", "job_id": other.json()["job_id"]})
            while (message := await _recv(ws_a))["type"] != "error":
                assert message["job_id"] == mine.json()["job_id"]
            assert message["error"]["code"] == "not_found"


async def test_websocket_needs_a_valid_key_when_keys_exist() -> None:
    # a raw upgrade request (trio-websocket leaks its socket on a rejected handshake)
    upgrade = {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
    }
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            for headers in ({}, {"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}):
                async with httpx.AsyncClient(base_url=gw.base_url) as client:  # not reusable
                    r = await client.get("/ws", headers=upgrade | headers)
                assert r.status_code == 401
                assert r.json()["error"]["code"] == "unauthorized"
                assert "(Authorization: Bearer <key> or x-api-key" in r.json()["error"]["message"]
            # (a browser's socket with no key opens, and must authenticate: test_ws_auth.py)
            assert router.subscribers == 1  # only the metrics feed: no socket subscribed
            async with open_websocket_url(gw.ws_url, extra_headers=_auth("secret-b")) as ws:
                await _send(ws, {"type": "subscribe"})
                assert (await _recv(ws))["type"] == "subscribed"
                await _send(ws, {"type": "call", "call": {"prompt": ""}})
                assert (await _recv(ws))["error"]["code"] == "validation_error"
            # the openings count as /ws requests, the refused call as a call refused
            scraped = await gw.client.get("/metrics", headers={"x-api-key": "secret-ops"})
            lines = scraped.text.splitlines()
            assert 'switchman_http_requests_total{route="/ws",status="401"} 3.0' in lines
            assert 'switchman_http_requests_total{route="/ws",status="101"} 1.0' in lines
            assert 'switchman_calls_refused_total{code="validation_error"} 1.0' in lines
            assert not [line for line in lines if line.startswith("switchman_calls_total")]


def _breaker(alias: str) -> TraceEvent:
    data = {"alias": alias, "provider": "p", "from": "closed", "to": "open", "retry_in_s": 5.0}
    return TraceEvent(type="breaker.changed", call_id="", job_id=None, ts=1.0, data=data)


async def test_breaker_changes_reach_each_subscriber_whose_key_may_use_the_model() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            # team-a may use fast, slow and sim/*; team-b any model; neither is an admin
            open_websocket_url(gw.ws_url, extra_headers=_auth("secret-a")) as ws_a,
            open_websocket_url(gw.ws_url, extra_headers=_auth("secret-b")) as ws_b,
        ):
            for ws in (ws_a, ws_b):
                await _send(ws, {"type": "subscribe"})
                assert (await _recv(ws))["type"] == "subscribed"
            router.publish(_breaker("gpt-x"))
            router.publish(_breaker("fast"))
            seen_a = await _recv(ws_a)
            assert (seen_a["type"], seen_a["alias"], seen_a["to"]) == (
                "breaker.changed",
                "fast",
                "open",
            )
            assert [(await _recv(ws_b))["alias"] for _ in range(2)] == ["gpt-x", "fast"]


async def test_a_key_may_not_submit_a_model_outside_its_allow_list() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=_auth("secret-a")) as ws,
        ):
            await _send(ws, {"type": "call", "call": {"prompt": "x", "model": "gpt-x"}})
            error = await _recv(ws)
            assert error["type"] == "error"
            assert error["error"]["code"] == "permission_denied"
            assert router.calls == []


@pytest.mark.parametrize(
    ("message", "code", "fields"),
    [
        ("{nope", "bad_request", None),
        # too deep for Python 3.11's json (a RecursionError: was a 1011), a list for 3.13's
        ("[" * 5_000 + "]" * 5_000, ("bad_request", "validation_error"), None),
        (
            json.dumps(
                {"type": "call", "call": {"prompt": "x", "metadata": {"a": [[[[[[]]]]]]}}}
            ).replace("[[[[[[]]]]]]", "[" * 200 + "]" * 200),
            "validation_error",
            {"call.metadata"},
        ),
        (json.dumps([1, 2]), "validation_error", None),
        (json.dumps({"type": "dance"}), "validation_error", None),
        (json.dumps({"type": "subscribe", "job": "x"}), "validation_error", {"job"}),
        (json.dumps({"type": "subscribe", "job_id": 5}), "validation_error", {"job_id"}),
        (json.dumps({"type": "subscribe", "job_id": "job_unknown"}), "not_found", None),
        (
            json.dumps({"type": "call", "call": {"prompt": "x", "params": {"temperature": 9}}}),
            "validation_error",
            {"call.params.temperature"},
        ),
        (
            json.dumps({"type": "call", "call": {"prompt": "x", "bogus": 1}}),
            "validation_error",
            {"call.bogus"},
        ),
        (
            json.dumps({"type": "call", "call": {"prompt": "x", "model": "nosuch"}}),
            "validation_error",
            {"call.model"},
        ),
        (
            json.dumps({"type": "call", "call": {"prompt": 5, "model": "nosuch"}}),
            "validation_error",
            {"call.prompt", "call.model"},
        ),
        (json.dumps({"type": "call"}), "validation_error", {"call.prompt"}),
        (json.dumps({"type": "call", "call": []}), "validation_error", {"call"}),
    ],
)
async def test_bad_client_messages_get_an_error_and_the_socket_lives_on(
    message: str, code: str | tuple[str, ...], fields: set[str] | None
) -> None:
    router = FakeRouter(make_config())
    codes = (code,) if isinstance(code, str) else code
    with trio.fail_after(10):
        async with running_gateway(router) as gw, open_websocket_url(gw.ws_url) as ws:
            await ws.send_message(message)
            error = await _recv(ws)
            assert error["type"] == "error" and error["error"]["code"] in codes
            assert error["error"]["message"]
            if fields is not None:
                assert {d["field"] for d in error["error"]["details"]} == fields
                # the message names each field as the details do
                for d in error["error"]["details"]:
                    assert f"{d['field']}: {d['message']}" in error["error"]["message"]
            await _send(ws, {"type": "subscribe"})
            assert (await _recv(ws))["type"] == "subscribed"


async def test_binary_messages_are_refused() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw, open_websocket_url(gw.ws_url) as ws:
            await ws.send_message(b"\x00\x01")
            assert (await _recv(ws))["error"]["code"] == "bad_request"


class _Runner:
    """The job runner as a connection reads it: draining or not."""

    def __init__(self) -> None:
        self.stopping = trio.Event()

    @property
    def draining(self) -> bool:
        return self.stopping.is_set()


def _connection(
    nursery: trio.Nursery, send: Any = None, principal: Principal = OPEN
) -> tuple[SimpleNamespace, _Connection]:
    """A connection on a stand-in gateway (its config, drained event and job runner)."""
    gw = SimpleNamespace(
        config=make_config(), drained=trio.Event(), runner=_Runner(), outboxes=Outboxes()
    )
    return gw, _Connection(gw, principal, send, nursery)  # type: ignore[arg-type]


def _event(i: int) -> TraceEvent:
    return TraceEvent(
        type="attempt.delta", call_id="c", job_id="j", ts=float(i), data={"text": str(i)}
    )


async def test_a_slow_client_loses_events_counted_and_never_slows_the_feed() -> None:
    sent: list[dict[str, Any]] = []
    gate = trio.Event()

    async def slow_send(message: dict[str, Any]) -> None:
        await gate.wait()
        sent.append(json.loads(message["text"]))

    total = OUTBOX * 3
    hub = TraceHub()
    events_out = hub.subscribe(buffer=total + 1)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            _, conn = _connection(nursery, slow_send)
            conn.all_own = True
            nursery.start_soon(conn.write_loop)
            nursery.start_soon(conn.pump, events_out)
            for i in range(total):
                hub.publish(_event(i))
            # the router's own drop notice for this subscriber is counted too
            hub.publish(
                TraceEvent(type="events.dropped", call_id="", job_id=None, ts=0, data={"count": 5})
            )
            await trio.testing.wait_all_tasks_blocked()
            # the feed was drained at once although the client has not taken a message
            assert events_out.statistics().current_buffer_used == 0
            assert sent == []
            gate.set()
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    delivered = [m for m in sent if m["type"] == "attempt.delta"]
    notices = [m for m in sent if m["type"] == "events.dropped"]
    # the outbox's worth got through, and one more if the writer took the first event
    # before the pump had offered them all (trio runs the two in either order)
    assert len(delivered) in (OUTBOX, OUTBOX + 1)
    assert sum(m["count"] for m in notices) == total - len(delivered) + 5
    assert notices and sent[0]["type"] == "attempt.delta"  # told right after the first
    # what got through is in order
    texts = [int(m["text"]) for m in delivered]
    assert texts == sorted(texts)


async def test_the_pump_takes_every_event_waiting_each_time_it_runs() -> None:
    """A busy router publishes several events for each time a task runs: a pump that took
    one event a turn fell behind, and its subscription dropped events (a watcher reading
    promptly lost most of them under load). It now takes all that waits each turn."""
    buffer, per_turn, turns = 64, 8, 500
    hub = TraceHub()
    events_out = hub.subscribe(buffer=buffer)

    async def send(message: dict[str, Any]) -> None:  # a client that reads promptly
        await trio.lowlevel.checkpoint()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            _, conn = _connection(nursery, send)
            conn.all_own = True
            nursery.start_soon(conn.write_loop)
            nursery.start_soon(conn.pump, events_out)
            for turn in range(turns):
                for i in range(per_turn):
                    hub.publish(_event(turn * per_turn + i))
                await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()
    assert hub.statistics().dropped == 0


def _of(handle: str, n: int) -> TraceEvent:
    return TraceEvent(
        type="call.accepted", call_id=f"{handle}-{n}", job_id=None, ts=float(n), handle=handle
    )


async def test_events_dropped_counts_only_the_subscribers_own_events() -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(10):
        async with (
            running_gateway(router) as gw,
            open_websocket_url(gw.ws_url, extra_headers=_auth("secret-a")) as ws_a,
        ):
            await _send(ws_a, {"type": "subscribe"})
            assert (await _recv(ws_a))["type"] == "subscribed"
            # team b's burst, more than a subscription holds, all at once: none of it is a's
            for n in range(3 * SUBSCRIPTION_BUFFER):
                router.publish(_of("team-b", n))
            router.publish(_of("team-a", 1))
            router.publish(_of("team-a", 2))
            seen = [await _recv(ws_a), await _recv(ws_a)]
    assert [(m["type"], m["call_id"]) for m in seen] == [
        ("call.accepted", "team-a-1"),
        ("call.accepted", "team-a-2"),
    ]


async def test_a_closing_connection_drops_its_queued_events_not_its_results() -> None:
    """At shutdown a slow reader is closed at once: the trace events still queued are
    dropped (counted), the results and replies it is owed go out first, in order."""
    async with trio.open_nursery() as nursery:
        gw, conn = _connection(nursery)
        for i in range(OUTBOX - 2):
            conn.offer({"type": "attempt.delta", "call_id": f"c{i}", "text": "x"})
        conn.outbox.send_nowait({"type": "result", "job_id": "job_1"})
        conn.outbox.send_nowait({"type": "submitted", "job_id": "job_2"})
        gw.runner.stopping.set()
        conn.offer({"type": "attempt.delta", "call_id": "late", "text": "x"})  # stopping: dropped
        gw.drained.set()
        with trio.fail_after(5):
            await conn.close_when_drained()
        left = [conn.out.receive_nowait() for _ in range(3)]
    assert left[:2] == [
        {"type": "result", "job_id": "job_1"},
        {"type": "submitted", "job_id": "job_2"},
    ]
    assert left[2] is _CLOSE
    assert conn.dropped == OUTBOX - 2 + 1


async def test_a_long_lived_connection_follows_a_bounded_number_of_jobs() -> None:
    async with trio.open_nursery() as nursery:
        _, conn = _connection(nursery)
        conn.awaiting.add("job_running")
        conn.follow("job_running")  # still owed its result: never let go
        for i in range(5 * FOLLOWED):
            conn.follow(f"job_{i}")
        assert len(conn.jobs) <= FOLLOWED + 1
        assert "job_running" in conn.jobs and f"job_{5 * FOLLOWED - 1}" in conn.jobs
        assert "job_0" not in conn.jobs


async def test_results_a_connection_could_not_send_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = trio.Event()

    async def never_sends(message: dict[str, Any]) -> None:
        await blocked.wait()  # a client that does not read

    async with trio.open_nursery() as nursery:
        team_a = Principal(key_id="K", handle="team-a", admin=False)
        _, conn = _connection(nursery, never_sends, team_a)
        for i in range(3):
            conn.outbox.send_nowait({"type": "result", "job_id": f"job_{i}"})
        nursery.start_soon(conn.write_loop)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()  # the server's time to stop ran out
    conn.tell_unsent()  # (as the connection's end does, once its tasks are done)
    said = [r.getMessage() for r in caplog.records if r.name == "switchman.gateway"]
    assert said == [  # (the one being written among them)
        "websocket of team-a closed with 3 result(s) not sent (the client read too slowly"
        " or not at all); they stay in GET /result"
    ]


async def test_results_that_waited_for_room_when_the_connection_ended_are_counted(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop drops a socket whose results wait for room behind one being written: the
    log said 1 result not sent of 12 a client never got (those waiting ended first)."""
    monkeypatch.setattr(_ws, "OUTBOX_BYTES", 1_000)
    blocked = trio.Event()

    async def never_sends(message: dict[str, Any]) -> None:
        await blocked.wait()

    async with trio.open_nursery() as nursery:
        _, conn = _connection(nursery, never_sends)
        for i in range(5):  # each larger than the room: one at a time
            nursery.start_soon(conn._put, {"type": "result", "job_id": f"j{i}", "x": "y" * 900})
        nursery.start_soon(conn.write_loop)
        await trio.testing.wait_all_tasks_blocked()
        assert conn.statistics().waiting == 4
        nursery.cancel_scope.cancel()
    conn.tell_unsent()
    said = [r.getMessage() for r in caplog.records if r.name == "switchman.gateway"]
    assert said == [
        "websocket of the open gateway closed with 5 result(s) not sent (the client read too"
        " slowly or not at all); they stay in GET /result"
    ]


async def test_a_message_larger_than_a_body_may_be_closes_the_socket() -> None:
    """A websocket message is held to ``server.max_body_bytes`` (64 KiB here), as an HTTP
    body is; hypercorn's own limit was 16 MiB."""
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw, open_websocket_url(gw.ws_url) as ws:
            call = {"prompt": "x" * 100_000}
            await _send(ws, {"type": "call", "call": call})
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1009
            # trio-websocket leaves the TCP stream open after a close the server started
            await ws._stream.aclose()
    assert router.calls == []
