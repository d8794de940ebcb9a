"""The official openai SDK against the gateway, unchanged (sync client in a thread)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import openai
import pytest
import trio

from switchman._call import MAX_PROMPT_CHARS
from switchman.catalog import KeySpec
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
            cost = float(raw.headers["x-switchman-cost-usd"])
            assert completion.id == f"chatcmpl-{job_id}"
            call, routed_job = router.calls[-1]
            assert routed_job == job_id and call.params.temperature == 0.2
            assert call.caller.handle == "alice"
            # the job behind it is readable like any other
            job = (await gw.client.get(f"/result/{job_id}")).json()
            assert job["status"] == "complete" and job["result"]["answer"] == "echo hello there"
            assert cost == job["result"]["cost_usd"] > 0


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
                # (where OpenAI points a context error)
                assert info.value.param == ("messages" if n == 1 else None)
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


async def test_without_max_tokens_the_call_asks_for_a_full_answer(sdk: Factory) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            await _in_thread(
                lambda: client.chat.completions.create(model="fast", messages=USER)  # type: ignore[arg-type]
            )
            assert router.calls[-1][0].options.verbosity == "full"
            await _in_thread(
                lambda: client.chat.completions.create(
                    model="fast",
                    messages=USER,  # type: ignore[arg-type]
                    max_completion_tokens=40,
                )
            )
            call = router.calls[-1][0]
            assert call.options.verbosity == "standard" and call.params.max_tokens == 40


def _post_async(base_url: str, content: str, tries: int) -> list[str]:
    """``AsyncOpenAI`` (on asyncio, in this thread) posting ``content``; what each try raised."""

    async def main() -> list[str]:
        client = openai.AsyncOpenAI(
            base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=10
        )
        raised: list[str] = []
        try:
            for _ in range(tries):
                try:
                    await client.chat.completions.create(
                        model="fast", messages=[{"role": "user", "content": content}]
                    )
                except openai.APIStatusError as exc:
                    raised.append(f"{exc.status_code} {exc.code}")
                except openai.APIError as exc:
                    raised.append(type(exc).__name__)
        finally:
            await client.close()
        return raised

    return asyncio.run(main())


async def test_an_async_client_reads_the_413_of_a_body_over_the_limit() -> None:
    # the server reads the body it refuses: closing with it unread reset the connection,
    # and an async client saw a connection error (and retried) instead of the 413
    router = FakeRouter(make_config(max_body_bytes=2 * 1024 * 1024))
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            raised = await trio.to_thread.run_sync(_post_async, gw.base_url, "x" * 5_000_000, 3)
            assert raised == ["413 payload_too_large"] * 3
            # and the connection it kept still serves
            assert await trio.to_thread.run_sync(_post_async, gw.base_url, "hi", 1) == []
    assert router.calls[-1][0].messages[0].content == "hi"


async def test_answers_carry_the_job_id_as_request_id_and_no_empty_headers(
    sdk: Factory,
) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            completion = await _in_thread(
                lambda: client.chat.completions.create(model="fast", messages=USER)  # type: ignore[arg-type]
            )
            assert completion._request_id == completion.id.removeprefix("chatcmpl-")
            with pytest.raises(openai.APIStatusError) as info:
                await _in_thread(
                    lambda: client.chat.completions.create(model="picky", messages=USER)  # type: ignore[arg-type]
                )
            headers = info.value.response.headers
            assert info.value.request_id == headers["x-switchman-job-id"]
            # no model answered: no model or provider header, rather than an empty one
            assert "x-switchman-model" not in headers and "x-switchman-provider" not in headers
            assert headers["x-switchman-attempts"] == "0"
            stream = await _in_thread(
                lambda: client.chat.completions.with_raw_response.create(
                    model="fast",
                    messages=USER,  # type: ignore[arg-type]
                    stream=True,
                )
            )
            # its body is not read: close it rather than leave the connection to the pool
            stream.http_response.close()
            assert stream.headers["x-request-id"] == stream.headers["x-switchman-job-id"]


async def test_models_retrieve_sees_what_the_list_shows(sdk: Factory) -> None:
    router = FakeRouter(make_config(keys=KEYS))
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            a = sdk(gw.base_url, "secret-a")  # fast, slow, sim/*: every sim model
            listed = await _in_thread(lambda: list(a.models.list()))
            assert all(m.created > 0 for m in listed)
            assert len({m.created for m in listed}) == 1  # one date, stable
            for entry in listed:
                got = await _in_thread(partial(a.models.retrieve, entry.id))
                assert got == entry
            assert "sim/echo" in {m.id for m in listed}  # an id with a /
            route = await _in_thread(lambda: a.models.retrieve("best"))
            assert route.owned_by == "switchman-route"
            # gpt-x is another provider's: not this key's, so not found, as in the list
            with pytest.raises(openai.NotFoundError) as info:
                await _in_thread(lambda: a.models.retrieve("gpt-x"))
            assert info.value.code == "model_not_found"
            assert "GET /v1/models" in info.value.message
            ops = sdk(gw.base_url, "secret-ops")
            assert (await _in_thread(lambda: ops.models.retrieve("gpt-x"))).owned_by == "other"
            with pytest.raises(openai.NotFoundError):
                await _in_thread(lambda: ops.models.retrieve("nosuch"))


@pytest.mark.parametrize("stream", [False, True])
async def test_a_timeout_is_not_sent_again_by_the_sdk(stream: bool, sdk: Factory) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url, max_retries=2)  # the SDK's own default
            with pytest.raises(openai.InternalServerError) as info:
                await _in_thread(_create(client, "late", stream=stream))
            assert info.value.status_code == 504
            assert info.value.response.headers["x-should-retry"] == "false"
            assert len(router.calls) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_a_503_says_when_a_model_is_back(stream: bool, sdk: Factory) -> None:
    router = FakeRouter(make_config())
    router.breakers["nope"] = "open"  # open for 5 s more
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            with pytest.raises(openai.InternalServerError) as info:
                await _in_thread(_create(client, "nope", stream=stream))
            assert info.value.status_code == 503
            assert info.value.response.headers["retry-after"] == "5"
            assert "x-should-retry" not in info.value.response.headers
            # held out for minutes: the SDK is told not to try again (it tried 3 times)
            router.breakers.clear()
            router.held["nope"] = "not served by sim: no such model"
            retrying = sdk(gw.base_url, max_retries=2)
            with pytest.raises(openai.InternalServerError) as info:
                await _in_thread(_create(retrying, "nope", stream=stream))
            assert info.value.response.headers["x-should-retry"] == "false"
            assert "retry-after" not in info.value.response.headers
            assert len(router.calls) == 2
            # a model that could serve now: nothing said, the SDK's own backoff
            router.held.clear()
            with pytest.raises(openai.InternalServerError) as info:
                await _in_thread(_create(client, "nope", stream=stream))
            headers = info.value.response.headers
            assert "retry-after" not in headers and "x-should-retry" not in headers


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (
            [
                *USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c", "content": "sunny"},
            ],
            "messages[1].tool_calls",
        ),
        ([{"role": "user", "content": "x" * (MAX_PROMPT_CHARS + 1)}], "messages"),
    ],
)
async def test_message_shapes_switchman_cannot_take_are_named(
    messages: list[dict[str, Any]], param: str, sdk: Factory
) -> None:
    router = FakeRouter(make_config(max_body_bytes=2 * MAX_PROMPT_CHARS))
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            with pytest.raises(openai.BadRequestError) as info:
                await _in_thread(
                    lambda: client.chat.completions.create(model="fast", messages=messages)  # type: ignore[arg-type]
                )
            assert info.value.param == param  # type: ignore[attr-defined]
            assert router.calls == []


async def test_replayed_empty_assistant_turns_are_dropped_and_logit_bias_refused(
    sdk: Factory,
) -> None:
    router = FakeRouter(make_config())
    history = [
        {"role": "system", "content": ""},  # an optional system prompt left empty
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "  \n"},
        {"role": "user", "content": "again"},
    ]
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            done = await _in_thread(
                lambda: client.chat.completions.create(model="fast", messages=history)  # type: ignore[arg-type]
            )
            assert done.choices[0].message.content == "echo again"
            sent = router.calls[-1][0].messages
            assert sent is not None and [m.role for m in sent] == ["user"] * 3
            with pytest.raises(openai.BadRequestError) as info:
                await _in_thread(
                    lambda: client.chat.completions.create(
                        model="fast",
                        messages=USER,  # type: ignore[arg-type]
                        logit_bias={"1734": -100},
                    )
                )
            assert info.value.param == "logit_bias"  # type: ignore[attr-defined]
            assert len(router.calls) == 1


async def test_unserved_v1_routes_say_what_is_served(sdk: Factory) -> None:
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            with pytest.raises(openai.NotFoundError) as info:
                await _in_thread(
                    lambda: client.embeddings.create(model="fast", input="hello")  # type: ignore[arg-type]
                )
            for served in (
                "POST /v1/chat/completions",
                "GET /v1/models",
                "GET /v1/models/{model}",
            ):
                assert served in info.value.message


async def test_no_model_the_key_may_use_is_403_and_none_in_service_503(sdk: Factory) -> None:
    only_fast = KeySpec(key_env="KEY_F", handle="f", secret="secret-f", models=("fast",))
    only_other = KeySpec(key_env="KEY_O", handle="o", secret="secret-o", models=("gpt-x",))
    router = FakeRouter(make_config(keys=(only_fast, only_other)))
    not_allowed = "not allowed for this caller (allowed: fast)"
    router.excluded["fast"] = {"fast": not_allowed, "slow": not_allowed}
    with trio.fail_after(30):
        async with running_gateway(router) as gw:
            f = sdk(gw.base_url, "secret-f", max_retries=2)
            with pytest.raises(openai.PermissionDeniedError) as denied:
                await _in_thread(_create(f, "best", stream=False))
            assert denied.value.code == "permission_denied"
            assert "this key may use none of the models" in denied.value.message
            assert len(router.calls) == 1
            # auto, for a key whose only model's provider is out of service: not the key's
            # fault, and not soon either
            o = sdk(gw.base_url, "secret-o", max_retries=2)
            with pytest.raises(openai.InternalServerError) as down:
                await _in_thread(_create(o, "auto", stream=False))
            assert down.value.status_code == 503 and down.value.code == "no_eligible_model"
            assert down.value.response.headers["x-should-retry"] == "false"
            assert len(router.calls) == 2


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {"extra_body": {"web_search_options": {"search_context_size": "high"}}},
            "web_search_options",
        ),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"presence_penalty": 5}, "presence_penalty"),
        ({"frequency_penalty": -2.5}, "frequency_penalty"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
async def test_fields_that_would_be_dropped_silently_are_refused_naming_them(
    fields: dict[str, Any], param: str, sdk: Factory
) -> None:
    """A web search asked for and not made, log probabilities asked for and not given,
    out-of-range penalties and ``stream_options`` without a stream (which OpenAI refuses)
    were answered 200 as if honoured; each is a 400 naming the field, and nothing is
    routed. Penalties in range are still accepted."""
    router = FakeRouter(make_config())
    with trio.fail_after(20):
        async with running_gateway(router) as gw:
            client = sdk(gw.base_url)
            with pytest.raises(openai.BadRequestError) as info:
                await _in_thread(
                    lambda: client.chat.completions.create(
                        model="fast",
                        messages=USER,  # type: ignore[arg-type]
                        **fields,
                    )
                )
            assert info.value.param == param  # type: ignore[attr-defined]
            assert router.calls == []
            done = await _in_thread(
                lambda: client.chat.completions.create(
                    model="fast",
                    messages=USER,  # type: ignore[arg-type]
                    presence_penalty=1.5,
                    frequency_penalty=-2,
                )
            )
            assert done.choices[0].message.content == "echo hello there"
