"""The fake server as a server: records, masking, keep-alive, routes, config, state, CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from switchman.sim import (
    BEHAVIOURS,
    FakeProviderServer,
    FakeServerConfig,
    expected_answer,
    serve_fake_provider,
)
from tests.sim.conftest import FORMATS, PROMPT, Format

OPENAI = FORMATS[0]


@asynccontextmanager
async def custom_server(config: FakeServerConfig) -> AsyncIterator[FakeProviderServer]:
    async with trio.open_nursery() as nursery:
        handle: FakeProviderServer = await nursery.start(serve_fake_provider, config)
        yield handle
        nursery.cancel_scope.cancel()


async def test_requests_are_recorded_with_masked_secrets_and_timings(
    server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    with trio.fail_after(5):
        await client.send(OPENAI.request(client, "healthy", stream=True))
        await client.send(OPENAI.request(client, "down", stream=False))
    first, second = server.requests()
    assert first.wire_format == "openai"
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert (first.model, first.behaviour, first.status, first.outcome) == (
        "healthy",
        "healthy",
        200,
        "complete",
    )
    assert first.headers["authorization"] == "Bearer ***"
    assert first.headers["x-api-key"] == "***"
    assert "sk-secret-value" not in repr(server.requests())
    assert first.body["messages"] == [{"role": "user", "content": PROMPT}]
    assert first.first_byte_at is not None and first.ended_at is not None
    assert first.received_at <= first.first_byte_at <= first.ended_at
    assert second.received_at >= first.ended_at
    assert (second.status, second.outcome) == (503, "unavailable")
    assert [r.model for r in server.requests("down")] == ["down"]
    assert server.requests("nothing") == []
    server.clear()
    assert server.requests() == []


async def test_gemini_key_in_the_query_is_masked(
    server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    gemini = next(f for f in FORMATS if f.name == "gemini")
    with trio.fail_after(5):
        response = await client.post(
            "/v1beta/models/healthy:generateContent?key=AIzaSECRET",
            json=gemini.post_json("healthy", stream=False),
        )
    assert response.status_code == 200
    record = server.requests()[-1]
    assert record.path == "/v1beta/models/healthy:generateContent?key=***"
    assert "AIzaSECRET" not in repr(record)


async def test_one_connection_serves_many_requests(server: FakeProviderServer) -> None:
    body = json.dumps(OPENAI.post_json("healthy", stream=False)).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer sk-x\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            for _ in range(3):
                await stream.send_all(request)
                received = b""
                while b"\r\n\r\n" not in received:
                    received += await stream.receive_some(65536)
                head, _, rest = received.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += await stream.receive_some(65536)
                assert head.startswith(b"HTTP/1.1 200 ")
                answer = json.loads(rest)["choices"][0]["message"]["content"]
                assert answer == expected_answer("healthy", PROMPT, None)
    assert len(server.requests()) == 3


async def test_unknown_route_is_404(client: httpx.AsyncClient, server: FakeProviderServer) -> None:
    with trio.fail_after(5):
        response = await client.get("/nope")
    assert response.status_code == 404
    assert "no route" in response.json()["error"]["message"]
    assert server.requests()[-1].outcome == "not_found"


async def test_model_listings(client: httpx.AsyncClient) -> None:
    with trio.fail_after(5):
        models = (await client.get("/v1/models")).json()
        tags = (await client.get("/api/tags")).json()
    assert [m["id"] for m in models["data"]] == list(BEHAVIOURS)
    assert "healthy:latest" in [m["name"] for m in tags["models"]]


@pytest.mark.parametrize("path", ["/chat/completions", "/openai/v1/chat/completions"])
async def test_openai_compatible_paths_without_v1(client: httpx.AsyncClient, path: str) -> None:
    with trio.fail_after(5):
        response = await client.post(path, json=OPENAI.post_json("healthy", stream=False))
    assert response.json()["choices"][0]["message"]["content"] == expected_answer(
        "healthy", PROMPT, None
    )


async def test_perplexity_agent_path(client: httpx.AsyncClient) -> None:
    with trio.fail_after(5):
        response = await client.post("/v1/agent", json={"model": "perplexity/sonar", "input": "hi"})
    body = response.json()
    assert body["object"] == "response" and body["status"] == "completed"
    sources, message = body["output"]  # the search first, as the Agent API's example
    assert sources["type"] == "search_results" and sources["results"][0]["url"].startswith("https")
    assert message["content"][0]["text"] == expected_answer("perplexity/sonar", "hi", None)


async def test_ollama_streams_by_default(client: httpx.AsyncClient) -> None:
    body = {"model": "healthy", "messages": [{"role": "user", "content": PROMPT}]}
    with trio.fail_after(5):
        response = await client.post("/api/chat", json=body)
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) > 2 and lines[-1]["done"] is True
    assert lines[-1]["eval_count"] == len(expected_answer("healthy", PROMPT, None).split())


async def test_gemini_stream_without_sse_is_a_json_array(client: httpx.AsyncClient) -> None:
    gemini = next(f for f in FORMATS if f.name == "gemini")
    with trio.fail_after(5):
        response = await client.post(
            "/v1beta/models/healthy:streamGenerateContent",
            json=gemini.post_json("healthy", stream=False),
        )
    parts = response.json()
    assert isinstance(parts, list) and len(parts) > 2
    text = "".join(p["candidates"][0]["content"]["parts"][0]["text"] for p in parts)
    assert text == expected_answer("healthy", PROMPT, None)
    assert parts[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_system_prompts_do_not_change_the_answer_and_prefill_is_continued(
    client: httpx.AsyncClient,
) -> None:
    full = expected_answer("claude-x", PROMPT, None)
    prefix = full[:30]
    body = {
        "model": "claude-x",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
            {"role": "assistant", "content": prefix},
        ],
    }
    with trio.fail_after(5):
        response = await client.post("/v1/messages", json=body)
    assert prefix + response.json()["content"][0]["text"] == full


async def test_latency_config_delays_healthy_answers_only() -> None:
    async with (
        custom_server(FakeServerConfig(latency_ms=250)) as slow,
        httpx.AsyncClient(base_url=slow.base_url) as client,
    ):
        with trio.fail_after(5):
            start = trio.current_time()
            await client.send(OPENAI.request(client, "healthy", stream=False))
            healthy = trio.current_time() - start
            start = trio.current_time()
            await client.send(OPENAI.request(client, "rate-limited", stream=False))
            limited = trio.current_time() - start
    assert healthy >= 0.24
    assert limited < 0.2


async def test_healthy_latency_name(client: httpx.AsyncClient) -> None:
    with trio.fail_after(5):
        start = trio.current_time()
        response = await client.send(OPENAI.request(client, "healthy-latency-200", stream=False))
    assert trio.current_time() - start >= 0.19
    assert response.status_code == 200


async def test_flapping_recovers_after_its_down_time(client: httpx.AsyncClient) -> None:
    with trio.fail_after(5):
        first = await client.send(OPENAI.request(client, "flapping-0.4", stream=False))
        second = await client.send(OPENAI.request(client, "flapping-0.4", stream=False))
        await trio.sleep(0.45)
        third = await client.send(OPENAI.request(client, "flapping-0.4", stream=False))
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]


async def test_reset_behaviours_makes_error_once_fail_again(
    server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    async def status() -> int:
        return (await client.send(OPENAI.request(client, "error-once", stream=False))).status_code

    with trio.fail_after(5):
        assert [await status(), await status()] == [500, 200]
        server.clear()  # records only
        assert await status() == 200
        server.reset_behaviours()
        assert await status() == 500


async def test_client_leaving_during_ttft_is_noticed(
    server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    with trio.fail_after(5):
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                "/v1/chat/completions",
                json=OPENAI.post_json("slow-ttft-3000", stream=False),
                timeout=httpx.Timeout(5, read=0.2),
            )
        record = await server.wait_ended("slow-ttft-3000")
    assert record.outcome == "client_closed"
    assert record.ended_at is not None and record.ended_at - record.received_at < 2


async def test_records_are_capped() -> None:
    async with (
        custom_server(FakeServerConfig(max_records=3)) as capped,
        httpx.AsyncClient(base_url=capped.base_url) as client,
    ):
        with trio.fail_after(5):
            for i in range(5):
                await client.send(OPENAI.request(client, f"m{i}", stream=False))
    assert [r.model for r in capped.requests()] == ["m2", "m3", "m4"]
    assert [r.n for r in capped.requests()] == [3, 4, 5]


async def test_oversized_body_is_413() -> None:
    async with (
        custom_server(FakeServerConfig(max_body_bytes=200)) as small,
        httpx.AsyncClient(base_url=small.base_url) as client,
    ):
        with trio.fail_after(5):
            response = await client.post(
                "/v1/chat/completions",
                json={"model": "healthy", "messages": [{"role": "user", "content": "x" * 500}]},
            )
    assert response.status_code == 413


def format_ids() -> list[str]:
    return [f.name for f in FORMATS]


@pytest.mark.parametrize("fmt", FORMATS, ids=format_ids())
async def test_every_format_records_its_name(
    fmt: Format, server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    with trio.fail_after(5):
        await client.send(fmt.request(client, "healthy", stream=True))
    assert server.requests()[-1].wire_format == fmt.name


async def test_python_dash_m_serves_with_a_flavour_until_interrupted() -> None:
    with trio.fail_after(20):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "switchman.sim", "--port", "0", "--flavour", "xai"],
            stdout=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some(1)
            text = line.decode().strip()
            assert text.startswith("fake provider listening on http://127.0.0.1:")
            base_url = text.rsplit(" ", 1)[-1]
            async with httpx.AsyncClient(base_url=base_url) as client:
                response = await client.send(OPENAI.request(client, "healthy", stream=False))
                keyless = await client.post(
                    "/v1/chat/completions", json=OPENAI.post_json("healthy", stream=False)
                )
            assert response.status_code == 200
            assert keyless.status_code == 401  # --flavour xai: xAI's answer to a missing key
            assert set(keyless.json()) == {"code", "error"}
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()


async def test_a_stall_before_any_text_still_sends_the_headers(
    server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    gemini = next(f for f in FORMATS if f.name == "gemini")
    with trio.fail_after(5):
        request = gemini.request(client, "stall", stream=True, max_tokens=2)  # one chunk
        response = await client.send(request, stream=True)
        try:
            assert response.status_code == 200
            with trio.move_on_after(0.2) as waited:
                await response.aread()
            assert waited.cancelled_caught
        finally:
            await response.aclose()
        assert (await server.wait_ended("stall")).outcome == "stall"
