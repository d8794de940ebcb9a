"""Serving: binding rules, restart persistence, graceful and hard shutdown."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from switchman.gateway import InsecureBindError, check_bind, serve_gateway
from switchman.store import open_store
from tests.gateway._fakes import KEYS, FakeRouter, make_config, running_gateway


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2", "[::1]"])
def test_loopback_hosts_are_always_allowed(host: str) -> None:
    check_bind(host, has_keys=False, insecure=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_open_gateway_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(InsecureBindError, match=r"\[\[keys\]\]"):
        check_bind(host, has_keys=False, insecure=False)
    check_bind(host, has_keys=True, insecure=False)
    check_bind(host, has_keys=False, insecure=True)


async def test_serve_gateway_raises_before_binding_an_open_public_host() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(5), pytest.raises(InsecureBindError):
        await serve_gateway(router, host="0.0.0.0", port=0)


async def test_port_zero_reports_the_real_port() -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(10):
        async with running_gateway(router) as gw:
            assert gw.host == "127.0.0.1" and gw.port > 0
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{gw.port}/health")
                assert r.status_code == 200


async def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    config = make_config(db=db, keys=KEYS)
    a = {"x-api-key": "secret-a"}
    with trio.fail_after(20):
        async with running_gateway(FakeRouter(config)) as gw:
            r = await gw.client.post("/call?wait=5", json={"prompt": "remember"}, headers=a)
            job_id = r.json()["job_id"]
            assert r.json()["status"] == "complete"
        async with running_gateway(FakeRouter(config)) as gw:
            r = await gw.client.get(f"/result/{job_id}", headers=a)
            assert r.status_code == 200
            assert r.json()["status"] == "complete"
            assert r.json()["result"]["answer"] == "echo remember"
            jobs = (await gw.client.get("/jobs", headers=a)).json()["jobs"]
            assert [j["job_id"] for j in jobs] == [job_id]
            # and it is still team-a's alone
            r = await gw.client.get(f"/result/{job_id}", headers={"x-api-key": "secret-b"})
            assert r.status_code == 404


async def _read_job(db: str, job_id: str) -> Any:
    async with open_store(db) as store:
        return await store.get_job(job_id)


async def test_graceful_shutdown_finishes_in_flight_calls_and_fails_the_rest(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "jobs.db")
    grace = 1.0
    router = FakeRouter(make_config(db=db, grace_s=grace), slow_s=0.5)
    shutdown = trio.Event()
    stopped = trio.Event()
    waited: dict[str, Any] = {}
    ws_seen: list[dict[str, Any]] = []
    ws_closed: list[int | None] = []

    async def gateway(*, task_status: trio.TaskStatus[tuple[str, int]]) -> None:
        await serve_gateway(
            router,
            host="127.0.0.1",
            port=0,
            shutdown_trigger=shutdown.wait,
            task_status=task_status,
        )
        stopped.set()

    async def wait_for_slow(client: httpx.AsyncClient) -> None:
        r = await client.post("/call?wait=10", json={"prompt": "in flight", "model": "slow"})
        waited["status"] = r.status_code
        waited["body"] = r.json()

    async def ws_client(url: str, *, task_status: trio.TaskStatus[None]) -> None:
        async with open_websocket_url(url) as ws:
            await ws.send_message(
                json.dumps({"type": "call", "call": {"prompt": "x", "model": "hang"}})
            )
            task_status.started()
            try:
                while True:
                    ws_seen.append(json.loads(await ws.get_message()))
            except ConnectionClosed as closed:
                ws_closed.append(closed.reason.code)
                # trio-websocket leaves the TCP stream open after a close the server
                # started (aclose() returns early); close it so no socket leaks
                await ws._stream.aclose()

    watched: list[dict[str, Any]] = []

    async def watcher(url: str, *, task_status: trio.TaskStatus[None]) -> None:
        async with open_websocket_url(url) as ws:
            await ws.send_message(json.dumps({"type": "subscribe"}))
            watched.append(json.loads(await ws.get_message()))  # (subscribed)
            task_status.started()
            try:
                while True:
                    watched.append(json.loads(await ws.get_message()))
            except ConnectionClosed:
                await ws._stream.aclose()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(gateway)
            base = f"http://{host}:{port}"
            await nursery.start(watcher, f"ws://{host}:{port}/ws")
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                background = (
                    await client.post("/call", json={"prompt": "bg", "model": "slow"})
                ).json()
                hung = (
                    await client.post("/call", json={"prompt": "stuck", "model": "hang"})
                ).json()
                nursery.start_soon(wait_for_slow, client)
                await nursery.start(ws_client, f"ws://{host}:{port}/ws")
                await router.wait_for_calls(4)
                began = trio.current_time()
                shutdown.set()
                await stopped.wait()
                took = trio.current_time() - began
    assert grace <= took < grace + 4
    # the call in flight over HTTP got its answer during the grace period
    assert waited["status"] == 200 and waited["body"]["status"] == "complete"
    background_job = await _read_job(db, background["job_id"])
    assert background_job.status == "complete"
    hung_job = await _read_job(db, hung["job_id"])
    assert (hung_job.status, hung_job.reason) == ("failed", "shutdown")
    # the router ended it and its own result was stored: its attempts, what they cost
    assert hung["job_id"] in router.cut_jobs
    assert hung_job.result["errors"][0] == {
        "code": "cancelled",
        "message": "the gateway shut down before the call finished",
        "provider": None,
        "status": None,
        "retry_after_s": None,
    }
    assert [a["outcome"] for a in hung_job.result["trace"]["attempts"]] == ["cancelled"]
    # the websocket got its (failed) result, then a going-away close
    results = [m for m in ws_seen if m["type"] == "result"]
    assert len(results) == 1 and results[0]["status"] == "failed"
    assert ws_closed == [1001]
    ws_job = await _read_job(db, results[0]["job_id"])
    assert ws_job.reason == "shutdown"
    # a watcher is sent no trace events once the stop began (the calls that ended in the
    # grace period among them), and is told how many it missed before the close: it was
    # closed as if it had seen them all
    assert watched[-1]["type"] == "events.dropped" and watched[-1]["count"] >= 1, watched


async def test_a_websocket_call_while_draining_is_refused() -> None:
    router = FakeRouter(make_config(grace_s=2.0))
    shutdown = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(
                partial(
                    serve_gateway,
                    router,
                    host="127.0.0.1",
                    port=0,
                    shutdown_trigger=shutdown.wait,
                )
            )
            async with open_websocket_url(f"ws://{host}:{port}/ws") as ws:
                await ws.send_message(
                    json.dumps({"type": "call", "call": {"prompt": "x", "model": "hang"}})
                )
                assert json.loads(await ws.get_message())["type"] == "submitted"
                await router.wait_for_calls(1)
                shutdown.set()
                await trio.sleep(0.2)
                await ws.send_message(json.dumps({"type": "call", "call": {"prompt": "y"}}))
                message = json.loads(await ws.get_message())
                while message["type"] != "error":
                    message = json.loads(await ws.get_message())
                assert message["error"]["code"] == "shutting_down"
    assert len(router.calls) == 1


async def test_cancelling_the_gateway_stores_cancelled_jobs_as_failed(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    router = FakeRouter(make_config(db=db))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(
                partial(serve_gateway, router, host="127.0.0.1", port=0)
            )
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
                r = await client.post("/call", json={"prompt": "x", "model": "hang"})
                job_id = r.json()["job_id"]
                await router.wait_for_calls(1)
            nursery.cancel_scope.cancel()
    job = await _read_job(db, job_id)
    assert (job.status, job.reason) == ("failed", "shutdown")


async def _response(stream: trio.SocketStream) -> bytes:
    """One whole response (head and its content-length of body); b"" if the server closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    while len(body) < length:
        body += await stream.receive_some()
    return head


async def test_an_idle_connection_outlives_a_clients_pool_keepalive() -> None:
    """A connection a client left idle for 6 s (past httpx's and the SDK's 5 s pool
    keep-alive, hypercorn's own default) still takes its next request: the client closes
    an idle connection first, so a request it sends on one never meets the server's close
    (reset, and no job made)."""
    async with running_gateway(FakeRouter(make_config())) as gw:
        stream = await trio.open_tcp_stream(gw.host, gw.port)
        async with stream:
            request = b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n"
            heads = []
            for wait in (0.0, 6.0):
                await trio.sleep(wait)
                await stream.send_all(request)
                with trio.fail_after(5):
                    heads.append(await _response(stream))
    assert len(heads) == 2 and all(h.startswith(b"HTTP/1.1 200 ") for h in heads), heads
