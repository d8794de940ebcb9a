"""Every behaviour over real sockets, in every wire format, read with real httpx."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from switchman.sim import REFUSAL_TEXT, FakeProviderServer, expected_answer
from tests.sim.conftest import PROMPT, Format, sse_events

STREAM_TYPES = {"ollama": "application/x-ndjson"}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_healthy_answer_arrives_whole(
    fmt: Format, client: httpx.AsyncClient, server: FakeProviderServer, stream: bool
) -> None:
    with trio.fail_after(5):
        response = await client.send(fmt.request(client, "healthy", stream=stream))
    assert response.status_code == 200
    expected = expected_answer("healthy", PROMPT, None)
    if not stream:
        assert response.headers["content-type"] == "application/json"
        assert fmt.text_of(response.json()) == expected
        return
    assert response.headers["content-type"] == STREAM_TYPES.get(fmt.name, "text/event-stream")
    got = fmt.streamed(response.text)
    assert got.text == expected
    assert got.malformed == 0
    assert got.terminated
    assert got.error is None
    if fmt.name == "gemini":
        assert "\r\n\r\n" in response.text and "[DONE]" not in response.text
    record = server.requests("healthy")[-1]
    assert (record.wire_format, record.status, record.outcome) == (fmt.name, 200, "complete")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_max_tokens_shortens_the_answer_and_says_so(
    fmt: Format, client: httpx.AsyncClient, stream: bool
) -> None:
    with trio.fail_after(5):
        response = await client.send(fmt.request(client, "healthy", stream=stream, max_tokens=5))
    expected = expected_answer("healthy", PROMPT, 5)
    assert len(expected.split()) == 5
    if stream:
        got = fmt.streamed(response.text)
        assert got.text == expected
        assert got.finish in ("length", "max_tokens", "MAX_TOKENS", "incomplete")
    else:
        assert fmt.text_of(response.json()) == expected


async def test_malformed_event_is_one_bad_event_in_a_whole_answer(
    fmt: Format, client: httpx.AsyncClient
) -> None:
    with trio.fail_after(5):
        response = await client.send(fmt.request(client, "malformed", stream=True))
    got = fmt.streamed(response.text)
    assert got.malformed == 1
    assert got.text == expected_answer("malformed", PROMPT, None)
    assert got.terminated


async def test_no_terminator_ends_cleanly_without_the_end_marker(
    fmt: Format, client: httpx.AsyncClient
) -> None:
    with trio.fail_after(5):
        response = await client.send(fmt.request(client, "no-terminator", stream=True))
    assert response.status_code == 200
    got = fmt.streamed(response.text)
    assert got.text == expected_answer("no-terminator", PROMPT, None)
    if fmt.name == "gemini":
        assert got.terminated  # a Gemini stream has no marker to leave out
    else:
        assert not got.terminated
    if fmt.name not in ("ollama", "responses"):
        assert got.finish is not None  # the finish reason still arrives


async def test_error_after_200_sends_an_error_event(
    fmt: Format, client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    with trio.fail_after(5):
        response = await client.send(fmt.request(client, "error-after-200", stream=True))
    assert response.status_code == 200
    got = fmt.streamed(response.text)
    assert got.error is not None
    assert not got.terminated or fmt.name == "gemini"
    assert got.text == ""
    assert server.requests("error-after-200")[-1].outcome == "error"


async def test_refusal(fmt: Format, client: httpx.AsyncClient) -> None:
    with trio.fail_after(5):
        whole = await client.send(fmt.request(client, "refusal", stream=False))
        streamed = await client.send(fmt.request(client, "refusal", stream=True))
    assert whole.status_code == streamed.status_code == 200
    body = whole.json()
    got = fmt.streamed(streamed.text)
    if fmt.name == "openai":
        assert body["choices"][0]["message"] == {
            "role": "assistant",
            "content": None,
            "refusal": REFUSAL_TEXT,
            "annotations": [],
        }
        refusals = [
            choice["delta"].get("refusal")
            for _, data in sse_events(streamed.text)
            if data != "[DONE]"
            for choice in json.loads(data)["choices"]
        ]
        assert [r for r in refusals if r] == [REFUSAL_TEXT]
        assert got.text == ""
        assert got.terminated
    elif fmt.name == "anthropic":
        assert body["stop_reason"] == "refusal"
        assert body["content"] == []
        assert body["stop_details"]["type"] == "refusal"
        assert got.finish == "refusal"
        assert got.terminated
    elif fmt.name == "gemini":
        assert body["candidates"][0]["finishReason"] == "SAFETY"
        assert "content" not in body["candidates"][0]
        assert got.finish == "SAFETY"
    else:  # no refusal signal in these formats: the refusal is plain text
        assert fmt.text_of(body) == REFUSAL_TEXT
        assert got.text == REFUSAL_TEXT


async def test_cut_closes_the_connection_mid_answer(
    fmt: Format, client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    received = ""
    with trio.fail_after(5), pytest.raises(httpx.RemoteProtocolError):
        async with client.stream(
            "POST", fmt.url("cut", stream=True), json=fmt.post_json("cut", stream=True)
        ) as response:
            assert response.status_code == 200
            async for piece in response.aiter_text():
                received += piece
    got = fmt.streamed(received)
    full = expected_answer("cut", PROMPT, None)
    assert got.text and full.startswith(got.text) and got.text != full
    assert not got.terminated or fmt.name == "gemini"
    record = server.requests("cut")[-1]
    assert (record.status, record.outcome) == (200, "cut")


async def test_cut_non_streaming_body(fmt: Format, client: httpx.AsyncClient) -> None:
    with trio.fail_after(5), pytest.raises(httpx.RemoteProtocolError):
        await client.send(fmt.request(client, "cut", stream=False))


async def test_stall_keeps_the_connection_open_after_some_output(
    fmt: Format, client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    received = ""
    with trio.fail_after(5):
        async with client.stream(
            "POST", fmt.url("stall", stream=True), json=fmt.post_json("stall", stream=True)
        ) as response:
            assert response.status_code == 200
            with trio.move_on_after(0.3) as waited:
                async for piece in response.aiter_text():
                    if not received:  # the server holds the connection open, answering nothing
                        record = server.requests("stall")[-1]
                        assert record.outcome == "in_progress"
                        assert record.first_byte_at is not None
                    received += piece
            assert waited.cancelled_caught  # nothing ended the stream
        assert (await server.wait_ended("stall")).outcome == "stall"
    got = fmt.streamed(received)
    full = expected_answer("stall", PROMPT, None)
    assert got.text and full.startswith(got.text) and got.text != full
    assert not got.terminated or fmt.name == "gemini"


async def test_reset_before_headers(fmt: Format, client: httpx.AsyncClient) -> None:
    with trio.fail_after(5), pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await client.send(fmt.request(client, "reset", stream=True))


async def test_silent_never_answers(
    fmt: Format, server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    timeout = httpx.Timeout(5, read=0.3)
    with trio.fail_after(5):
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                fmt.url("silent", stream=False),
                json=fmt.post_json("silent", stream=False),
                timeout=timeout,
            )
        record = server.requests("silent")[-1]
        assert (record.status, record.first_byte_at) == (None, None)
        assert (await server.wait_ended("silent")).outcome == "silent"


async def test_slow_ttft_delays_the_first_token_not_the_headers(
    fmt: Format, client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    with trio.fail_after(5):
        start = trio.current_time()
        async with client.stream(
            "POST",
            fmt.url("slow-ttft-300", stream=True),
            json=fmt.post_json("slow-ttft-300", stream=True),
        ) as response:
            headers_at = trio.current_time()
            body = ""
            first_at = None
            async for piece in response.aiter_text():
                first_at = first_at or trio.current_time()
                body += piece
    assert headers_at - start < 0.25
    assert first_at is not None and first_at - start >= 0.29
    assert fmt.streamed(body).text == expected_answer("slow-ttft-300", PROMPT, None)
    record = server.requests("slow-ttft-300")[-1]
    assert record.behaviour == "slow-ttft"
    assert record.first_byte_at is not None and record.ended_at is not None
    assert record.first_byte_at - record.received_at < 0.25
    assert record.ended_at - record.received_at >= 0.29
