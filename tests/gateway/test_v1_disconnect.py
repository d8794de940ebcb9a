"""A ``/v1`` client that disconnects before its answer is complete cancels its call, as
closing a stream to OpenAI stops the generation; ``/call`` jobs run to their end.

Before, every such call ran to its end and was billed in full: an SDK's client-side
timeout (``timeout=0.4``, its default ``max_retries=2``) left three whole calls running
and billed for an application that got nothing, and a chat's "stop" (the stream closed
after a few chunks) stopped no spend. The real path: the official SDK against the real
gateway on a socket, the real router, the fake provider server over real HTTP."""

from __future__ import annotations

import functools
import json
from typing import Any

import openai
import pytest
import trio

import switchman
from switchman.gateway._v1 import CLIENT_GONE
from switchman.sim import FakeProviderServer, FakeServerConfig, serve_fake_provider
from switchman.store import open_store
from tests._httpfleet import ENV, PROMPT, http_fleet, model
from tests.gateway._fakes import Running, running_gateway

SLOW = "openai/slow-ttft-1500"
#: 150 chunks, 5 ms apart
LONG = "openai/long-600-5"


def _config(server: FakeProviderServer) -> switchman.Config:
    return http_fleet(
        server,
        [model("openai", "slow-ttft-1500"), model("openai", "long-600-5")],
        default_ttft_ms=5_000,
        default_soft_ms=8_000,
    )


async def _jobs_when_done(gw: Running, count: int) -> list[dict[str, Any]]:
    """The gateway's ``count`` jobs, once every one has finished (newest first)."""
    with trio.fail_after(10):
        while True:
            listed = (await gw.client.get("/jobs")).json()["jobs"]
            if len(listed) >= count and all(j["status"] != "running" for j in listed):
                break
            await trio.sleep(0.05)
    return [(await gw.client.get(f"/result/{j['job_id']}")).json() for j in listed]


def _timed_out(base_url: str) -> None:
    with (
        openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=0.4) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        client.chat.completions.create(model=SLOW, messages=[{"role": "user", "content": PROMPT}])


async def test_an_sdk_timeout_and_its_retries_leave_no_call_running_behind_them(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    with trio.fail_after(30):
        async with (
            switchman.open_router(_config(server), env=ENV) as router,
            open_store(":memory:") as store,
            running_gateway(router, store=store) as gw,
        ):
            await trio.to_thread.run_sync(functools.partial(_timed_out, gw.base_url))
            jobs = await _jobs_when_done(gw, 3)  # the SDK's try and its two retries
    assert len(jobs) == 3
    for job in jobs:
        result = job["result"]
        assert job["status"] == "failed"
        assert [(e["code"], e["message"]) for e in result["errors"]] == [("cancelled", CLIENT_GONE)]
        assert [a["outcome"] for a in result["trace"]["attempts"]] == ["cancelled"]
        assert result["cost_usd"] == 0  # nothing was generated
    # the upstream saw each request's connection closed: no generation went on
    assert [r.outcome for r in server.requests(SLOW)] == ["client_closed"] * 3


def _stopped_after(base_url: str, chunks: int) -> str:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0) as client:
        stream = client.chat.completions.create(
            model=LONG,
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=1_000,
            stream=True,
        )
        read = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                read.append(chunk.choices[0].delta.content)
            if len(read) == chunks:
                break
        job_id: str = stream.response.headers["x-switchman-job-id"]
        stream.close()  # the user pressed "stop"
        return job_id


async def test_a_stream_closed_by_its_client_stops_the_generation_and_bills_what_was_made(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    with trio.fail_after(30):
        async with (
            switchman.open_router(_config(server), env=ENV) as router,
            open_store(":memory:") as store,
            running_gateway(router, store=store) as gw,
        ):
            whole = await router.call(
                switchman.Call(prompt=PROMPT, model=LONG, params=switchman.Params(max_tokens=1_000))
            )
            job_id = await trio.to_thread.run_sync(
                functools.partial(_stopped_after, gw.base_url, 3)
            )
            [job] = await _jobs_when_done(gw, 1)
    assert job["job_id"] == job_id
    result = job["result"]
    assert job["status"] == "failed"
    assert [(e["code"], e["message"]) for e in result["errors"]] == [("cancelled", CLIENT_GONE)]
    assert [a["outcome"] for a in result["trace"]["attempts"]] == ["cancelled"]
    # billed what it generated before the stop, not the whole answer
    assert 0 < result["cost_usd"] < whole.cost_usd
    assert server.requests(LONG)[-1].outcome == "client_closed"


async def test_a_call_job_runs_to_its_end_when_its_waiting_client_leaves(
    nursery: trio.Nursery,
) -> None:
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    body = json.dumps({"prompt": PROMPT, "model": SLOW}).encode()
    with trio.fail_after(30):
        async with (
            switchman.open_router(_config(server), env=ENV) as router,
            open_store(":memory:") as store,
            running_gateway(router, store=store) as gw,
        ):
            stream = await trio.open_tcp_stream(gw.host, gw.port)
            head = (
                "POST /call?wait=30 HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
            ).encode()
            await stream.send_all(head + body)
            await trio.sleep(0.3)
            await stream.aclose()  # gone while the job waits for its model
            [job] = await _jobs_when_done(gw, 1)
    assert job["status"] == "complete", job["result"]["errors"]
    assert job["result"]["answer"]


def _left_during_the_continuation(base_url: str, chunks: int) -> str:
    """Read ``chunks`` chunks of text (the cut answer's, then the continuing model's), then
    close."""
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="cut-then-long",
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=1_000,
            stream=True,
        )
        read = 0
        for chunk in stream:
            read += bool(chunk.choices and chunk.choices[0].delta.content)
            if read == chunks:
                break
        job_id: str = stream.response.headers["x-switchman-job-id"]
        stream.close()
        return job_id


async def test_a_client_gone_while_a_model_continues_a_broken_stream_is_told_as_cancelled(
    nursery: trio.Nursery,
) -> None:
    """The stream broke after output, the next model was continuing it, and the client
    left: the job fails ``cancelled`` (its first error was the broken stream's, with a
    message that no model could continue it, while one was)."""
    server: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    config = http_fleet(
        server,
        [model("openai", "cut"), model("openai", "long-600-5")],
        routes={"cut-then-long": ("openai/cut", LONG)},
    )
    with trio.fail_after(30):
        async with (
            switchman.open_router(config, env=ENV) as router,
            open_store(":memory:") as store,
            running_gateway(router, store=store) as gw,
        ):
            async with router.stream(switchman.Call(prompt=PROMPT, model="openai/cut")) as cuts:
                cut = [event async for event in cuts]  # (its deltas, then its failure)
            assert isinstance(cut[-1], switchman.Result) and cut[-1].status == "failed"
            job_id = await trio.to_thread.run_sync(
                functools.partial(_left_during_the_continuation, gw.base_url, len(cut) + 5)
            )
            [job] = await _jobs_when_done(gw, 1)
    assert job["job_id"] == job_id and job["status"] == "failed"
    errors = job["result"]["errors"]
    assert errors[0]["code"] == "cancelled", errors
    assert errors[0]["message"].startswith(CLIENT_GONE)
    outcomes = [a["outcome"] for a in job["result"]["trace"]["attempts"]]
    assert outcomes[0] != "success" and outcomes[-1] == "cancelled", outcomes
    assert server.requests(LONG)[-1].outcome == "client_closed"
