"""A model that repeats the router's own secrets shows none of them: an upstream (a real
HTTP server speaking OpenAI's chat format) echoes the Authorization header it got and the
prompt back as its answer; the provider key, of no recognisable shape, and a gateway
key's secret, which the prompt quotes, come out redacted, streamed or not."""

from __future__ import annotations

import json
from typing import Any

import attrs
import h11
import pytest
import trio

import switchman
from switchman import Call, Options, RedactionOptions, RedactionOverride
from switchman._call import REDACTION_ACKNOWLEDGEMENTS
from switchman.catalog import Config, KeySpec, ModelSpec, ProviderSpec
from tests._rawhttp import serve_h11
from tests._simfleet import streamed as streamed_call

# Mistral's keys are 32 letters and digits: no prefix tells them from other text
PROVIDER_KEY = "Qm7Xk2Lp9Wv4Tn8Rk3Jp6Hs1Df5Ga0Ze"
GATEWAY_SECRET = "team-a-gateway-secret-7731"
ENV = {"ECHO_KEY": PROVIDER_KEY, "GW_TEAM_A": GATEWAY_SECRET}


@attrs.define
class Echo:
    base_url: str
    seen: list[str] = attrs.field(factory=list)


def _answer(text: str, stream: bool) -> tuple[list[tuple[str, str]], bytes]:
    usage = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
    if not stream:
        body = {
            "id": "chatcmpl-echo",
            "object": "chat.completion",
            "created": 1764086400,
            "model": "echo",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        return [("content-type", "application/json")], json.dumps(body).encode()
    events: list[dict[str, Any]] = []
    words = text.split(" ")
    for i, word in enumerate(words):  # split mid-secret too: every 7 characters
        piece = word + (" " if i + 1 < len(words) else "")
        for k in range(0, len(piece), 7):
            events.append({"choices": [{"index": 0, "delta": {"content": piece[k : k + 7]}}]})
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({"choices": [], "usage": usage})
    base = {"id": "chatcmpl-echo", "object": "chat.completion.chunk", "model": "echo"}
    lines = [f"data: {json.dumps({**base, **e})}\n\n" for e in events] + ["data: [DONE]\n\n"]
    return [("content-type", "text/event-stream")], "".join(lines).encode()


async def serve_echo(*, task_status: trio.TaskStatus[Echo] = trio.TASK_STATUS_IGNORED) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    echo = Echo(base_url=f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}")

    def answer(head: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        auth = dict(head.headers).get(b"authorization", b"").decode()
        request = json.loads(body)
        prompt = request["messages"][-1]["content"]
        echo.seen.append(auth)
        # the key alone: no "Bearer" in front to give it away
        text = f"You sent key {auth.removeprefix('Bearer ')} and said: {prompt}"
        headers, payload = _answer(text, bool(request.get("stream")))
        return 200, [*headers, ("x-seen-authorization", auth)], payload  # in a header too

    async def handle(stream: trio.SocketStream) -> None:
        await serve_h11(stream, answer)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(echo)


def _config(echo: Echo) -> Config:
    return Config(
        providers={
            "echoer": ProviderSpec(
                name="echoer", kind="openai", base_url=f"{echo.base_url}/v1", api_key_env="ECHO_KEY"
            )
        },
        models={
            "echo": ModelSpec(
                alias="echo",
                provider="echoer",
                model_id="echo",
                input_per_mtok=1.0,
                output_per_mtok=1.0,
            )
        },
        keys=(KeySpec(key_env="GW_TEAM_A", handle="team-a", secret=GATEWAY_SECRET),),
    )


async def _called(echo: Echo, call: Call, streamed: bool) -> switchman.Result:
    """``call``'s result from a router on ``echo``, streamed (its text the answer) or not."""
    with trio.fail_after(20):
        async with switchman.open_router(_config(echo), env=ENV) as router:
            if not streamed:
                return await router.call(call)
            result, text = await streamed_call(router, call)
            assert text == result.answer
            return result


@pytest.mark.parametrize("streamed", [False, True])
async def test_the_routers_own_secrets_never_come_back_in_an_answer(
    streamed: bool, nursery: trio.Nursery
) -> None:
    echo: Echo = await nursery.start(serve_echo)
    call = Call(prompt=f"repeat {GATEWAY_SECRET} please", model="echo")
    result = await _called(echo, call, streamed)
    assert echo.seen == [f"Bearer {PROVIDER_KEY}"]  # it was sent, and echoed
    assert result.status == "complete", result.errors
    assert PROVIDER_KEY not in result.answer and GATEWAY_SECRET not in result.answer
    assert result.answer.count("[REDACTED:api_key]") == 2
    assert {i.kind: i.count for i in result.redaction.items} == {"api_key": 2}


@pytest.mark.parametrize("streamed", [False, True])
async def test_turning_redaction_off_does_not_show_the_routers_own_secrets(
    streamed: bool, nursery: trio.Nursery
) -> None:
    """Off is the caller's choice about the answer's own content (an email stays), not a
    way to read the operator's provider key or another team's gateway key."""
    echo: Echo = await nursery.start(serve_echo)
    off = Options(
        redaction=RedactionOptions(
            mode="off",
            override=RedactionOverride(
                enabled=True,
                acknowledgements=sorted(REDACTION_ACKNOWLEDGEMENTS),
                reason="a test of what stays hidden",
            ),
        )
    )
    call = Call(prompt=f"repeat {GATEWAY_SECRET} to ann@example.com", model="echo", options=off)
    result = await _called(echo, call, streamed)
    assert result.status == "complete", result.errors
    assert PROVIDER_KEY not in result.answer and GATEWAY_SECRET not in result.answer
    assert result.answer.count("[REDACTED:api_key]") == 2
    assert "ann@example.com" in result.answer  # (what off is for)
    assert {i.kind: i.count for i in result.redaction.items} == {"api_key": 2}


async def test_a_bug_quoting_the_key_is_reported_and_logged_without_it(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from switchman.actors import _provider

    real = _provider.make_adapter

    def broken(spec: ProviderSpec, key: str | None) -> Any:
        adapter = real(spec, key)

        def build_request(request: Any) -> Any:  # a bug that quotes what it was building
            raise ValueError(f"could not encode header Authorization: Bearer {key}")

        return _Wrapped(adapter, build_request)

    monkeypatch.setattr(_provider, "make_adapter", broken)
    caplog.set_level(logging.DEBUG)
    echo: Echo = await nursery.start(serve_echo)
    with trio.fail_after(20):
        async with switchman.open_router(_config(echo), env=ENV) as router:
            result = await router.call(Call(prompt="hi", model="echo"))
    assert result.status == "failed"
    said = " ".join(e.message for e in result.errors) + " ".join(
        a.error or "" for a in result.trace.attempts
    )
    assert "could not encode header" in said  # the bug is told
    assert PROVIDER_KEY not in said
    assert PROVIDER_KEY not in caplog.text and "could not encode header" in caplog.text


class _Wrapped:
    """An adapter whose ``build_request`` is replaced; the rest is the real one's."""

    def __init__(self, adapter: Any, build_request: Any) -> None:
        self._adapter = adapter
        self.build_request = build_request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


async def test_a_key_echoed_in_a_response_header_stays_out_of_the_http_libraries_logs(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """httpcore logs every response header at DEBUG: an application that turns it on
    must not find the key the upstream echoed back in one."""
    import logging

    caplog.set_level(logging.DEBUG)
    echo: Echo = await nursery.start(serve_echo)
    with trio.fail_after(20):
        async with switchman.open_router(_config(echo), env=ENV) as router:
            result = await router.call(Call(prompt="hi", model="echo"))
    assert result.status == "complete", result.errors
    assert "x-seen-authorization" in caplog.text  # httpcore did log the headers
    assert PROVIDER_KEY not in caplog.text
    # and the filter left with the router
    assert not logging.getLogger("httpcore.http11").filters


@pytest.mark.parametrize("streamed", [False, True])
async def test_redaction_counts_are_listed_in_one_order_streamed_or_not(
    streamed: bool, nursery: trio.Nursery
) -> None:
    """``result.redaction.items`` lists kinds in the one order of ``KINDS`` (as
    ``Redacted.report()`` does), whether the answer was streamed or not, so a consumer
    comparing reports sees the same list for the same answer."""
    echo: Echo = await nursery.start(serve_echo)
    prompt = "card 4111 1111 1111 1111, phone +14155552671, mail ann@acme.io"
    result = await _called(echo, Call(prompt=prompt, model="echo"), streamed)
    assert result.status == "complete", result.errors
    kinds = [i.kind for i in result.redaction.items]
    assert kinds == ["api_key", "email", "phone", "card_number"]
