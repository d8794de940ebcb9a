"""docs/openai.md: a /v1 client that half-closes its socket after its request counts as
gone. Its job was run to its end and billed about half the time: the gateway's cancel
reached the router before the job's call did, found nothing to cancel and was dropped."""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import trio

import switchman
from switchman.catalog import ModelSpec
from switchman.gateway._v1 import CLIENT_GONE
from switchman.sim import FakeProviderServer
from switchman.store import open_store
from tests._httpfleet import PROMPT, model
from tests.gateway._fakes import Running, gateway_over_fake

#: 150 chunks, 5 ms apart: an answer that takes most of a second
LONG = "openai/long-600-5"


def _gateway(
    nursery: trio.Nursery, models: Iterable[ModelSpec], **config: Any
) -> AbstractAsyncContextManager[tuple[Running, FakeProviderServer]]:
    """The real gateway over the real router, whose providers are one fake server."""
    return gateway_over_fake(nursery, list(models), **config)


async def _raw_post(gw: Running, body: dict[str, Any], *, half_close: bool) -> bytes:
    """POST ``body`` to ``/v1/chat/completions`` on a socket of its own, closing its sending
    side after the request when ``half_close`` (``shutdown(SHUT_WR)``, ``nc -N``); all the
    bytes the gateway sends back until it closes."""
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{gw.port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    got = b""
    async with await trio.open_tcp_stream(gw.host, gw.port) as stream:
        await stream.send_all(head + data)
        if half_close:
            await stream.send_eof()
        while chunk := await stream.receive_some():
            got += chunk
    return got


async def _finished_jobs(gw: Running, count: int) -> list[dict[str, Any]]:
    """The gateway's first ``count`` jobs (newest first), once each has finished."""
    while True:
        listed = (await gw.client.get("/jobs")).json()["jobs"]
        if len(listed) >= count and all(j["status"] in ("complete", "failed") for j in listed):
            break
        await trio.sleep(0.05)
    return [(await gw.client.get(f"/result/{j['job_id']}")).json() for j in listed]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_client_that_half_closes_after_its_request_counts_as_gone(
    nursery: trio.Nursery, stream: bool
) -> None:
    """docs/openai.md: "A client that closes its sending side after its request
    (`shutdown(SHUT_WR)`, `nc -N`) counts as gone": its call is cancelled, the job stored
    failed `cancelled` ("the client disconnected before the answer was complete"), costing
    nothing, no provider asked. The same request without the half-close gets its 200."""
    body = {"model": LONG, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    with trio.fail_after(15):
        async with _gateway(nursery, [model("openai", "long-600-5")]) as (gw, server):
            await _raw_post(gw, body, half_close=True)
            [job] = await _finished_jobs(gw, 1)
            assert server.requests(LONG) == []  # the provider was never asked
            control = await _raw_post(gw, body, half_close=False)
            [answered, _] = await _finished_jobs(gw, 2)
    result = job["result"]
    assert job["status"] == "failed"
    assert [(e["code"], e["message"]) for e in result["errors"]] == [("cancelled", CLIENT_GONE)]
    assert result["cost_usd"] == 0
    assert control.startswith(b"HTTP/1.1 200 ")
    assert answered["status"] == "complete"
    assert [r.outcome for r in server.requests(LONG)] == ["complete"]


async def test_a_job_cancelled_before_its_call_reached_the_router_never_starts_it() -> None:
    """The race above, pinned: the runner's cancel comes before the job's task has run, so
    the router has no call to cancel (and dropped the cancel); the job must not start one."""
    from switchman.gateway._jobs import JobRunner
    from tests.gateway._fakes import FakeRouter, make_config

    router = FakeRouter(make_config())
    async with open_store(":memory:") as store, trio.open_nursery() as nursery:
        runner = JobRunner(router, store, nursery, max_in_flight=4)
        job_id = await runner.submit(switchman.Call(prompt="hi", model="fast"), owner=None)
        assert await runner.cancel(job_id, CLIENT_GONE)  # (before the job's task ran)
        await runner.wait_idle()
        stored = await store.get_job(job_id)
    assert router.calls == []
    assert stored is not None and stored.status == "failed"
    assert stored.result is not None and stored.result["errors"][0]["code"] == "cancelled"
