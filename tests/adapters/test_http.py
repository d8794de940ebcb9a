"""send_attempt and make_client: events, time limits, failures, closing, key hygiene."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import httpx
import pytest
import trio

from switchman._call import Message
from switchman._errors import (
    AttemptTimeout,
    AuthError,
    QuotaExhausted,
    RateLimited,
    StreamBroken,
    TransientError,
    UpstreamError,
)
from switchman._result import Usage
from switchman.adapters import (
    Malformed,
    ProviderRequest,
    ResponseStarted,
    StreamEnd,
    StreamEvent,
    TextDelta,
    make_adapter,
    make_client,
    send_attempt,
)
from switchman.catalog import ProviderSpec
from tests.adapters._facts import provider_facts as facts

KEY = "sk-live-0123456789abcdefghijKLMNOPqrst"
OPENAI = ProviderSpec(name="openai", kind="openai", base_url="http://provider.test/v1")
ANTHROPIC = ProviderSpec(name="anthropic", kind="anthropic", base_url="http://provider.test")
XAI = ProviderSpec(name="xai", kind="openai", base_url="http://provider.test/v1")
DEEPSEEK = ProviderSpec(name="deepseek", kind="openai", base_url="http://provider.test")
GEMINI = ProviderSpec(name="gemini", kind="gemini", base_url="http://provider.test/v1beta")
FOREVER = object()


def transcript(name: str) -> bytes:
    return str(facts(name)["example_stream_transcript"]["raw"]).encode()


class Script(httpx.AsyncByteStream):
    """A response body played step by step: bytes, a sleep in seconds, FOREVER, or a raise."""

    def __init__(self, *steps: Any) -> None:
        self.steps = steps
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for step in self.steps:
            if isinstance(step, bytes):
                yield step
            elif isinstance(step, int | float):
                await trio.sleep(step)
            elif step is FOREVER:
                await trio.sleep_forever()
            else:
                raise step

    async def aclose(self) -> None:
        self.closed = True


@attrs.define
class Run:
    events: list[StreamEvent] = attrs.field(factory=list)
    requests: list[httpx.Request] = attrs.field(factory=list)

    async def emit(self, event: StreamEvent) -> None:
        self.events.append(event)

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))


def request(stream: bool = True) -> ProviderRequest:
    return ProviderRequest(
        model_id="gpt-test",
        messages=(Message(role="user", content="What is the capital of France?"),),
        max_tokens=64,
        stream=stream,
    )


async def attempt(
    answer: Callable[[httpx.Request], Any],
    *,
    spec: ProviderSpec = OPENAI,
    stream: bool = True,
    ttft: float = 5.0,
    stall: float = 2.0,
    run: Run | None = None,
) -> Run:
    """Play ``answer`` through send_attempt; ``run`` (give one to inspect after a raise)."""
    run = run if run is not None else Run()

    async def handler(req: httpx.Request) -> httpx.Response:
        run.requests.append(req)
        result = answer(req)
        if isinstance(result, Exception):
            raise result
        if not isinstance(result, httpx.Response):
            result = await result
        assert isinstance(result, httpx.Response)
        return result

    adapter = make_adapter(spec, KEY)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await send_attempt(
            client, adapter, request(stream), run.emit, ttft_timeout_s=ttft, stall_timeout_s=stall
        )
    return run


def respond(
    body: Script, status: int = 200, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    base = {"content-type": "text/event-stream"}
    return lambda _: httpx.Response(status, headers={**base, **(headers or {})}, stream=body)


def chunk(text: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text is not None else {}
    payload = {"model": "gpt-test", "choices": [{"delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


# --------------------------------------------------------------------------- success


async def test_stream_emits_started_deltas_and_one_end() -> None:
    body = Script(transcript("openai"))
    run = await attempt(respond(body, headers={"x-ratelimit-remaining-requests": "9"}))
    started = run.events[0]
    assert isinstance(started, ResponseStarted) and started.status == 200
    assert started.headers["x-ratelimit-remaining-requests"] == "9"
    assert run.text == "Paris is the capital of France."
    ends = [e for e in run.events if isinstance(e, StreamEnd)]
    assert ends == [
        StreamEnd(
            finish_reason="stop",
            usage=Usage(input_tokens=21, output_tokens=8),
            model_id="gpt-5.4-mini-2026-03-17",
        )
    ]
    assert run.events[-1] is ends[0]
    assert body.closed


async def test_request_on_the_wire_is_the_adapters() -> None:
    run = await attempt(respond(Script(transcript("openai"))))
    sent = run.requests[0]
    assert (sent.method, str(sent.url)) == ("POST", "http://provider.test/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = json.loads(sent.content)
    assert body["stream"] is True and body["max_completion_tokens"] == 64


async def test_stream_returns_at_the_terminator_without_reading_on() -> None:
    body = Script(chunk("Paris"), chunk(finish="stop"), b"data: [DONE]\n\n", FOREVER)
    with trio.fail_after(1):
        run = await attempt(respond(body))
    assert isinstance(run.events[-1], StreamEnd) and body.closed


async def test_non_streaming_emits_one_delta_with_the_whole_text() -> None:
    payload = {
        "model": "gpt-test",
        "choices": [{"message": {"content": "Paris."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }
    run = await attempt(lambda _: httpx.Response(200, json=payload), stream=False)
    assert [type(e) for e in run.events] == [ResponseStarted, TextDelta, StreamEnd]
    assert run.text == "Paris."
    assert run.events[-1] == StreamEnd(
        finish_reason="stop", usage=Usage(input_tokens=5, output_tokens=2), model_id="gpt-test"
    )
    assert json.loads(run.requests[0].content)["stream"] is False


async def test_text_of_one_read_travels_as_one_delta_and_reads_stay_apart() -> None:
    body = Script(
        chunk("Par") + chunk("is") + chunk(" is"),  # one read carrying three events
        0.01,
        chunk(" the capital.") + chunk(finish="stop") + b"data: [DONE]\n\n",
    )
    run = await attempt(respond(body))
    deltas = [e.text for e in run.events if isinstance(e, TextDelta)]
    assert deltas == ["Paris is", " the capital."]
    assert isinstance(run.events[-1], StreamEnd)


async def test_malformed_event_is_emitted_and_the_stream_goes_on() -> None:
    body = Script(chunk("Par"), b"data: {oops\n\n", chunk("is", "stop"), b"data: [DONE]\n\n")
    run = await attempt(respond(body))
    assert run.text == "Paris"
    assert [e for e in run.events if isinstance(e, Malformed)] != []
    assert isinstance(run.events[-1], StreamEnd)


async def test_missing_terminator_after_finish_ends_at_eof() -> None:
    run = await attempt(respond(Script(chunk("Paris"), chunk(finish="stop"))))
    assert isinstance(run.events[-1], StreamEnd) and run.text == "Paris"


async def test_stall_after_finish_reason_finishes_the_answer(autojump_clock: Any) -> None:
    body = Script(chunk("Paris"), chunk(finish="stop"), FOREVER)
    start = trio.current_time()
    run = await attempt(respond(body), stall=2.0)
    assert isinstance(run.events[-1], StreamEnd)
    # after the finish reason, the end marker is waited for half the stall limit: the
    # caller's own stall clock, started by the last text, must not run out first
    assert trio.current_time() - start == pytest.approx(1.0)
    assert body.closed


async def test_xai_stream_bills_reasoning_tokens_as_output() -> None:
    run = await attempt(respond(Script(transcript("xai"))), spec=XAI)
    assert run.text == "Paris is the capital of France."
    # completion_tokens 8 + completion_tokens_details.reasoning_tokens 98
    # and its cost is what it says it billed: 2,912,500 ticks of 1e-10 USD
    assert run.events[-1] == StreamEnd(
        finish_reason="stop",
        usage=Usage(input_tokens=21, output_tokens=106, reasoning_tokens=98),
        model_id="grok-4.3",
        cost_usd=2912500 * 1e-10,
    )


async def test_deepseek_asks_for_no_thinking_and_reasoning_is_not_answer_text() -> None:
    run = await attempt(respond(Script(transcript("deepseek"))), spec=DEEPSEEK)
    sent = json.loads(run.requests[0].content)
    assert sent["thinking"] == {"type": "disabled"}
    assert run.text == "Paris is the capital of France."  # "Capital of France." was reasoning
    end = run.events[-1]
    assert isinstance(end, StreamEnd)
    assert end.usage == Usage(input_tokens=16, output_tokens=22, reasoning_tokens=13)


# --------------------------------------------------------------------------- failures


async def test_error_status_emits_started_then_raises() -> None:
    body = Script(json.dumps({"error": {"message": "slow down", "type": "tokens"}}).encode())
    run = Run()
    with pytest.raises(RateLimited) as info:
        await attempt(
            respond(body, 429, {"retry-after": "7", "x-ratelimit-remaining-tokens": "0"}), run=run
        )
    assert info.value.retry_after == 7.0
    assert (info.value.provider, info.value.status) == ("openai", 429)
    assert len(run.events) == 1 and isinstance(run.events[0], ResponseStarted)
    assert run.events[0].status == 429
    assert run.events[0].headers["x-ratelimit-remaining-tokens"] == "0"
    assert body.closed


async def test_xai_credits_429_is_quota_exhausted_on_the_wire() -> None:
    example = facts("xai")["example_error_429"]
    body = Script(json.dumps(example["body"]).encode())
    run = Run()
    with pytest.raises(QuotaExhausted) as info:
        await attempt(respond(body, 429, {"content-type": "application/json"}), spec=XAI, run=run)
    assert not isinstance(info.value, RateLimited)
    assert (info.value.provider, info.value.status) == ("xai", 429)
    assert "monthly spending limit" in info.value.message
    assert isinstance(run.events[0], ResponseStarted) and run.events[0].status == 429


async def test_overloaded_529_brings_its_retry_hints() -> None:
    example = facts("anthropic")["extra_examples"]["example_error_529"]
    body = Script(json.dumps(example).encode())
    headers = {"content-type": "application/json", "retry-after": "9", "x-should-retry": "true"}
    with pytest.raises(UpstreamError) as info:
        await attempt(respond(body, 529, headers), spec=ANTHROPIC)
    assert (info.value.status, info.value.retry_after, info.value.should_retry) == (529, 9.0, True)
    assert "Overloaded" in info.value.message


async def test_gemini_retry_delay_in_the_body_on_the_wire() -> None:
    example = facts("gemini")["example_error_429"]
    body = Script(json.dumps(example["body"]).encode())
    with pytest.raises(RateLimited) as info:
        await attempt(respond(body, 429, {"content-type": "application/json"}), spec=GEMINI)
    assert (info.value.provider, info.value.retry_after) == ("gemini", 47.0)


async def test_no_response_within_ttft_is_a_timeout(autojump_clock: Any) -> None:
    async def silent(_: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError

    start = trio.current_time()
    with pytest.raises(AttemptTimeout) as info:
        await attempt(silent, ttft=3.0)
    assert trio.current_time() - start == pytest.approx(3.0)
    assert info.value.provider == "openai" and "first token" in info.value.message


async def test_headers_but_no_token_within_ttft_is_a_timeout(autojump_clock: Any) -> None:
    body = Script(b": keep-alive\n\n", 1.0, b": keep-alive\n\n", 1.0, b": keep-alive\n\n", FOREVER)
    start = trio.current_time()
    with pytest.raises(AttemptTimeout) as info:
        await attempt(respond(body), ttft=2.5, stall=10.0)
    assert trio.current_time() - start == pytest.approx(2.5)
    assert "first token" in info.value.message and body.closed


async def test_silence_before_any_text_waits_for_the_ttft_limit_not_the_stall_limit(
    autojump_clock: Any,
) -> None:
    body = Script(b": keep-alive\n\n", FOREVER)
    start = trio.current_time()
    with pytest.raises(AttemptTimeout) as info:
        await attempt(respond(body), ttft=30.0, stall=2.0)
    assert trio.current_time() - start == pytest.approx(30.0)
    assert "first token" in info.value.message


async def test_stall_after_text_is_a_broken_stream(autojump_clock: Any) -> None:
    body = Script(chunk("Paris"), 0.5, chunk(" is"), FOREVER)
    start = trio.current_time()
    with pytest.raises(StreamBroken) as info:
        await attempt(respond(body), ttft=30.0, stall=2.0)
    assert trio.current_time() - start == pytest.approx(2.5)
    assert "stalled" in info.value.message and body.closed


async def test_slow_but_steady_stream_is_not_a_stall(autojump_clock: Any) -> None:
    body = Script(chunk("a"), 1.5, chunk("b"), 1.5, chunk("c"), 1.5, chunk(finish="stop"))
    run = await attempt(respond(body), ttft=2.0, stall=2.0)
    assert run.text == "abc" and isinstance(run.events[-1], StreamEnd)


async def test_stream_ending_mid_answer_is_broken() -> None:
    with pytest.raises(StreamBroken) as info:
        await attempt(respond(Script(chunk("Paris is"))))
    assert "after output began" in info.value.message


@pytest.mark.parametrize(
    "exc", [httpx.RemoteProtocolError("peer closed"), httpx.ReadError("reset by peer")]
)
async def test_connection_lost_after_text_is_broken(exc: Exception) -> None:
    with pytest.raises(StreamBroken) as info:
        await attempt(respond(Script(chunk("Paris"), exc)))
    assert info.value.__cause__ is exc and info.value.status == 200


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("reset"),
        httpx.ConnectTimeout("connect timed out"),
    ],
)
async def test_connection_failure_before_any_byte_is_transient(exc: Exception) -> None:
    run = Run()
    with pytest.raises(TransientError) as info:
        await attempt(lambda _: exc, run=run)
    assert info.value.__cause__ is exc and info.value.provider == "openai"
    assert run.events == []


async def test_connection_lost_after_headers_before_text_is_transient() -> None:
    with pytest.raises(TransientError):
        await attempt(respond(Script(b": keep-alive\n\n", httpx.ReadError("reset"))))


async def test_httpx_read_timeout_before_text_is_a_timeout() -> None:
    with pytest.raises(AttemptTimeout):
        await attempt(lambda _: httpx.ReadTimeout("read timed out"))


async def test_error_event_after_200_is_mapped() -> None:
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"model":"m",'
        b'"usage":{"input_tokens":3}}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"Overloaded"}}\n\n'
    )
    with pytest.raises(UpstreamError) as info:
        await attempt(respond(Script(raw)), spec=ANTHROPIC)
    assert (info.value.provider, info.value.status) == ("anthropic", 529)


async def test_an_error_object_of_mistral_s_shape_in_a_stream_is_an_error() -> None:
    """Mistral's errors are objects of their own (``{"object": "error", ...}``, no
    ``error`` key): inside a stream, one was read as a chunk without choices, and the
    answer as cut without a word, never retried."""
    error = b'data: {"object":"error","message":"Service unavailable","type":"server_error"}\n\n'
    mistral = ProviderSpec(name="mistral", kind="openai", base_url="http://provider.test/v1")
    with pytest.raises(StreamBroken) as info:
        await attempt(respond(Script(chunk("Paris is") + error)), spec=mistral)
    assert "Service unavailable" in info.value.message
    assert isinstance(info.value.cause, UpstreamError)


async def test_a_chunk_saying_error_null_is_no_error() -> None:
    payload = {"model": "m", "error": None, "choices": [{"delta": {"content": "Paris."}}]}
    text = b"data: " + json.dumps(payload).encode() + b"\n\n"
    run = await attempt(respond(Script(text + chunk(finish="stop") + b"data: [DONE]\n\n")))
    assert "Paris." in "".join(getattr(e, "text", "") for e in run.events)


async def test_the_key_never_appears_in_any_error_text() -> None:
    echo = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}}).encode()
    with pytest.raises(AuthError) as auth:
        await attempt(respond(Script(echo), 401))
    with pytest.raises(TransientError) as transport:
        await attempt(lambda _: httpx.ConnectError(f"proxy said no to {KEY}"))
    for error in (auth.value, transport.value):
        assert KEY not in error.message and KEY not in str(error)


async def test_cancelled_mid_stream_closes_the_response(autojump_clock: Any) -> None:
    body = Script(chunk("Paris"), FOREVER)
    run = Run()

    async def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with trio.move_on_after(1.0) as scope:
            await send_attempt(
                client,
                make_adapter(OPENAI, KEY),
                request(),
                run.emit,
                ttft_timeout_s=30,
                stall_timeout_s=30,
            )
    assert scope.cancelled_caught
    assert run.text == "Paris" and body.closed
    assert not any(isinstance(e, StreamEnd) for e in run.events)


# --------------------------------------------------------------------------- client


def test_make_client_limits_and_timeouts() -> None:
    spec = ProviderSpec(
        name="openai", kind="openai", max_concurrency=7, connect_timeout_s=1.5, read_timeout_s=40
    )
    client = make_client(spec)
    assert client.timeout.connect == 1.5 and client.timeout.read == 40
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 7 and pool._http2 is False


async def _serve_stalling_sse(stream: trio.SocketStream) -> None:
    await stream.receive_some(65536)
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    data = chunk("Paris")
    await stream.send_all(head + f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await trio.sleep_forever()


async def test_real_socket_stall_after_text_is_broken() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, _serve_stalling_sse, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        spec = ProviderSpec(name="openai", kind="openai", base_url=f"http://127.0.0.1:{port}/v1")
        run = Run()
        async with make_client(spec) as client:
            with trio.fail_after(5), pytest.raises(StreamBroken):
                await send_attempt(
                    client,
                    make_adapter(spec, KEY),
                    request(),
                    run.emit,
                    ttft_timeout_s=2.0,
                    stall_timeout_s=0.3,
                )
        assert run.text == "Paris"
        nursery.cancel_scope.cancel()


async def _serve_done_then_hold(stream: trio.SocketStream) -> None:
    await stream.receive_some(65536)
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    data = chunk("Paris", "stop") + b"data: [DONE]\n\n"
    # The body's closing zero-length chunk never comes: the connection is held open.
    await stream.send_all(head + f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await trio.sleep_forever()


async def test_real_socket_returns_at_the_terminator_while_the_connection_stays_open() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, _serve_done_then_hold, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        spec = ProviderSpec(name="openai", kind="openai", base_url=f"http://127.0.0.1:{port}/v1")
        run = Run()
        async with make_client(spec) as client:
            with trio.fail_after(1):  # well under the stall and TTFT limits
                await send_attempt(
                    client,
                    make_adapter(spec, KEY),
                    request(),
                    run.emit,
                    ttft_timeout_s=5.0,
                    stall_timeout_s=5.0,
                )
        assert run.text == "Paris" and isinstance(run.events[-1], StreamEnd)
        nursery.cancel_scope.cancel()
