"""A /v1 stream whose client stops reading (a suspended process, a dead peer) never holds
its job: the call ends on the model's own time and is stored complete, with its attempt and
what it cost, while the client's text waits for it. The job used to wait for the client:
its attempt ran into its deadline (counted against the model), the job read ``running``
for as long as the client held the socket, and was then stored ``internal_error``, $0, no
attempts, though the ledger had billed the attempt. The gateway's own handler, its send
held up as a client that stops reading holds it; the real router over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import trio

import switchman
from switchman.gateway._app import Gateway
from switchman.gateway._jobs import JobRunner
from switchman.gateway._metrics import GatewayMetrics
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from switchman.store import open_store
from tests._httpfleet import ENV, PROMPT, answer_of, http_fleet, model

#: 150 chunks, 5 ms apart: more than the buffers between the upstream and the client
BEHAVIOUR = "long-600-5"
ALIAS = f"openai/{BEHAVIOUR}"
MAX_TOKENS = 1_000
SOFT_MS = 2_000


async def test_a_stream_client_that_stops_reading_leaves_its_job_to_end_and_be_stored(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    config = http_fleet(server, [model("openai", BEHAVIOUR)], default_soft_ms=SOFT_MS)
    body = json.dumps(
        {
            "model": ALIAS,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": MAX_TOKENS,
            "stream": True,
        }
    ).encode()
    sent: list[dict[str, Any]] = []
    job_ids: list[str] = []
    started_answer = trio.Event()

    bodies = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if bodies:
            return bodies.pop()
        await trio.sleep_forever()  # (the client stays: it never disconnects)
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.start":
            headers = dict(message["headers"])
            job_ids.append(headers[b"x-switchman-job-id"].decode())
            started_answer.set()
        elif message["type"] == "http.response.body":
            await trio.sleep_forever()  # the client reads its first chunk, then nothing

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json")],
    }
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            open_store(":memory:") as store,
            trio.open_nursery() as jobs,
        ):
            runner = JobRunner(router, store, jobs, max_in_flight=4)
            app = Gateway(router, store, runner, GatewayMetrics())
            async with trio.open_nursery() as client:
                client.start_soon(app, scope, receive, send)
                await started_answer.wait()
                started = trio.current_time()
                while (record := await store.get_job(job_ids[0])) is None or not record.finished:
                    assert trio.current_time() - started < SOFT_MS / 1000, "the job waited"
                    await trio.sleep(0.05)
                client.cancel_scope.cancel()  # (the client goes, at last)
            status = {m.alias: m for p in router.status().providers for m in p.models}
            jobs.cancel_scope.cancel()
    result = record.result
    assert isinstance(result, dict)
    assert result["status"] == "complete", result["errors"]
    assert result["answer"] == answer_of(ALIAS, max_tokens=MAX_TOKENS)
    assert [a["outcome"] for a in result["trace"]["attempts"]] == ["success"]
    assert result["cost_usd"] > 0
    assert status[ALIAS].breaker == "closed"
