"""The official openai SDK against the gateway, unchanged (sync client in a thread)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import openai
import pytest
import trio

from tests.gateway._fakes import KEYS, FakeRouter, make_config, running_gateway

T = TypeVar("T")
USER = [{"role": "user", "content": "hello there"}]


Factory = Callable[..., openai.OpenAI]


@pytest.fixture
def sdk() -> Iterator[Factory]:
    """Make SDK clients for a base URL (and key); all are closed after the test."""
    clients: list[openai.OpenAI] = []

    def make(base_url: str, key: str = "unused", *, max_retries: int = 0) -> openai.OpenAI:
        client = openai.OpenAI(
            base_url=f"{base_url}/v1", api_key=key, max_retries=max_retries, timeout=10
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


async def _in_thread(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn)


async def test_non_streaming_completion_with_switchman_headers(sdk: Factory) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            raw = await _in_thread(
                lambda: client.chat.completions.with_raw_response.create(
                    model="fast",
                    messages=USER,
                    temperature=0.2,
                    user="alice",  # type: ignore[arg-type]
                )
            )
            completion = raw.parse()
            assert completion.choices[0].message.content == "echo hello there"
            assert completion.choices[0].message.role == "assistant"
            assert completion.choices[0].finish_reason == "stop"
            assert completion.model == "fast"
            assert completion.usage is not None
            assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 3)
            assert raw.headers["x-switchman-model"] == "fast"
            assert raw.headers["x-switchman-provider"] == "sim"
            assert raw.headers["x-switchman-attempts"] == "2"
            assert raw.headers["x-switchman-fallbacks"] == "1"
            job_id = raw.headers["x-switchman-job-id"]
            assert completion.id == f"chatcmpl-{job_id}"
            call, routed_job = router.calls[-1]
            assert routed_job == job_id and call.params.temperature == 0.2
            assert call.caller.handle == "alice"
            # the job behind it is readable like any other
            job = (await gw.client.get(f"/result/{job_id}")).json()
            assert job["status"] == "complete" and job["result"]["answer"] == "echo hello there"


async def test_streaming_completion_with_usage(sdk: Factory) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)

            def run() -> list[Any]:
                stream = client.chat.completions.create(
                    model="best",
                    messages=USER,  # type: ignore[arg-type]
                    stream=True,
                    stream_options={"include_usage": True},
                )
                return list(stream)

            chunks = await _in_thread(run)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text == "echo hello there"
            assert chunks[0].choices[0].delta.role == "assistant"
            finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
            assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
            # one model name for the whole stream, as OpenAI gives it: the one asked for;
            # the model that answered is named by the final chunk's switchman block
            assert {c.model for c in chunks} == {"best"}
            extra = finishing[0].model_extra or {}
            assert extra["switchman"]["model"] == "fast"
            last = chunks[-1]
            assert last.choices == [] and last.usage is not None
            assert last.usage.total_tokens == 10


async def test_streaming_without_include_usage_still_reports_it_on_the_final_chunk(
    sdk: Factory,
) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            chunks = await _in_thread(
                lambda: list(
                    client.chat.completions.create(model="fast", messages=USER, stream=True)  # type: ignore[arg-type]
                )
            )
            assert all(c.choices for c in chunks)
            assert chunks[-1].choices[0].finish_reason == "stop"
            assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


async def test_a_stream_failing_after_output_ends_with_an_error_event(sdk: Factory) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            received: list[str] = []

            def run() -> None:
                stream = client.chat.completions.create(model="cut", messages=USER, stream=True)  # type: ignore[arg-type]
                for chunk in stream:
                    received.append(chunk.choices[0].delta.content or "")

            with pytest.raises(openai.APIError, match="the stream broke"):
                await _in_thread(run)
            assert "".join(received) == "echo hello"
            # on the wire: an error event and no [DONE]
            body = {"model": "cut", "messages": USER, "stream": True}
            r = await gw.client.post("/v1/chat/completions", json=body)
            events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
            assert "[DONE]" not in events
            assert json.loads(events[-1])["error"]["code"] == "all_models_failed"


@pytest.mark.parametrize(
    ("model", "status", "error"),
    [
        ("nope", 503, openai.InternalServerError),
        ("late", 504, openai.InternalServerError),
        ("pricey", 402, openai.APIStatusError),
        ("picky", 422, openai.UnprocessableEntityError),
        # too long for one model but another was down: retrying may help
        ("mixed", 503, openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_failed_calls_answer_with_a_fitting_status(
    model: str, status: int, error: type[Exception], stream: bool, sdk: Factory
) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)

            def run() -> None:
                result = client.chat.completions.create(model=model, messages=USER, stream=stream)  # type: ignore[call-overload]
                if stream:
                    list(result)

            with pytest.raises(error) as info:
                await _in_thread(run)
            assert isinstance(info.value, openai.APIStatusError)
            assert info.value.status_code == status
            assert info.value.response.headers["x-switchman-job-id"].startswith("job_")


def _create(client: openai.OpenAI, model: str, *, stream: bool) -> Callable[[], None]:
    def run() -> None:
        result = client.chat.completions.create(model=model, messages=USER, stream=stream)  # type: ignore[call-overload]
        if stream:
            list(result)

    return run


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_failing_because_of_the_request_is_a_400_the_sdk_does_not_repeat(
    stream: bool, sdk: Factory
) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url, max_retries=2)  # the SDK's own default
            cases = [
                ("toolong", "context_length_exceeded", "maximum context length is 8192 tokens"),
                ("strict", "invalid_request", "temperature is not supported with this model"),
            ]
            for n, (model, code, said) in enumerate(cases, start=1):
                with pytest.raises(openai.BadRequestError) as info:
                    await _in_thread(_create(client, model, stream=stream))
                assert info.value.status_code == 400
                assert info.value.code == code
                assert info.value.type == "invalid_request_error"
                assert said in info.value.message  # the provider's own words
                assert len(router.calls) == n  # one upstream call per SDK call: no retry


@pytest.mark.parametrize("stream", [False, True])
async def test_a_provider_rejecting_switchmans_key_is_a_502_the_sdk_does_not_repeat(
    stream: bool, sdk: Factory
) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url, max_retries=2)
            with pytest.raises(openai.APIStatusError) as info:
                await _in_thread(_create(client, "keyless", stream=stream))
            # not 403: that is the gateway key's; this is the provider's answer to ours
            assert info.value.status_code == 502
            assert info.value.code == "provider_key_rejected"
            assert info.value.type == "upstream_error"
            assert "the provider sim rejected switchman's API key" in info.value.message
            assert "Incorrect API key provided" in info.value.message
            assert len(router.calls) == 1


async def test_bad_values_and_unknown_models_in_openai_error_shape(sdk: Factory) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            with pytest.raises(openai.BadRequestError) as bad:
                await _in_thread(
                    lambda: client.chat.completions.create(
                        model="fast",
                        messages=USER,
                        temperature=5,  # type: ignore[arg-type]
                    )
                )
            body = bad.value.body
            assert isinstance(body, dict)
            assert body["param"] == "temperature" and body["type"] == "invalid_request_error"
            with pytest.raises(openai.NotFoundError) as missing:
                await _in_thread(
                    lambda: client.chat.completions.create(model="nosuch", messages=USER)  # type: ignore[arg-type]
                )
            assert isinstance(missing.value.body, dict)
            assert missing.value.body["code"] == "model_not_found"
            assert router.calls == []


async def test_model_list(sdk: Factory) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            models = await _in_thread(lambda: list(client.models.list()))
            ids = {m.id for m in models}
            assert {"auto", "best", "fast", "gpt-x"} <= ids
            owners = {m.id: m.owned_by for m in models}
            assert owners["gpt-x"] == "other" and owners["best"] == "switchman-route"


async def test_sdk_authenticates_with_a_gateway_key(sdk: Factory) -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            good = sdk(gw.base_url, "secret-a")
            completion = await _in_thread(
                lambda: good.chat.completions.create(model="auto", messages=USER)  # type: ignore[arg-type]
            )
            assert completion.choices[0].message.content == "echo hello there"
            assert router.calls[-1][0].caller.handle == "team-a"
            bad = sdk(gw.base_url, "secret-nope")
            with pytest.raises(openai.AuthenticationError):
                await _in_thread(
                    lambda: bad.chat.completions.create(model="auto", messages=USER)  # type: ignore[arg-type]
                )
