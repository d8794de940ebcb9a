"""Finish reasons through the real path: a provider over real HTTP that ends its answer
with a word other than done or a token limit never hands back a success."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

import switchman
from switchman import Call, Params
from switchman._result import finish_is_normal, normal_finish
from switchman.catalog import Config, ModelSpec, ProviderSpec, RouteSpec
from tests._rawhttp import read_request_body
from tests._simfleet import sim_model, streamed

KEY = "sk-test-finish-123456789"


def _sse(text: str, finish: str) -> bytes:
    chunks = [
        *([{"choices": [{"index": 0, "delta": {"content": text}}]}] if text else []),
        {
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
        },
    ]
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


async def _serve(finish: str, text: str, stream: trio.SocketStream) -> None:
    """An OpenAI-wire upstream whose every answer is ``text`` and ends with ``finish``."""
    await read_request_body(stream)
    body = _sse(text, finish)
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    await stream.send_all(head + body)
    await stream.aclose()


@asynccontextmanager
async def upstream(finish: str, text: str = "Paris is") -> AsyncIterator[Config]:
    """A router whose route ``r`` tries the upstream's model, then a simulated one."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(
                trio.serve_tcp, functools.partial(_serve, finish, text), 0, host="127.0.0.1"
            )
        )
        port = listeners[0].socket.getsockname()[1]
        remote = ModelSpec(
            alias="remote",
            provider="mistral",
            model_id="mistral-small-latest",
            context_window=32_000,
            max_output_tokens=4_096,
            input_per_mtok=1.0,
            output_per_mtok=3.0,
        )
        yield Config(
            providers={
                "mistral": ProviderSpec(
                    name="mistral",
                    kind="openai",
                    base_url=f"http://127.0.0.1:{port}/v1",
                    api_key_env="FINISH_TEST_KEY",
                ),
                "sim": ProviderSpec(name="sim", kind="sim"),
            },
            models={"remote": remote, "local": sim_model("local")},
            routes={"r": RouteSpec(name="r", chain=("remote", "local"))},
        )
        nursery.cancel_scope.cancel()


async def _ask(router: switchman.Router, call: Call, stream: bool) -> switchman.Result:
    """``call``'s result, streamed (the streamed text and the answer agreeing) or not."""
    if not stream:
        return await router.call(call)
    result, text = await streamed(router, call)
    assert text == result.answer
    return result


@pytest.mark.parametrize("finish", ["model_length", "length", "stop"])
async def test_a_whole_or_token_limited_answer_is_the_answer(finish: str) -> None:
    with trio.fail_after(20):
        async with (
            upstream(finish) as config,
            switchman.open_router(config, env={"FINISH_TEST_KEY": KEY}) as router,
        ):
            result = await router.call(Call(prompt="Capital of France?", model="r"))
    assert result.status == "complete" and result.model == "remote"
    assert result.answer == "Paris is"
    assert result.finish_reason == ("stop" if finish == "stop" else "length")


@pytest.mark.parametrize("stream", [False, True])
async def test_an_abnormal_end_falls_back_and_is_never_a_success(stream: bool) -> None:
    """``tool_calls`` (switchman asks for no tools): the text may be incomplete."""
    with trio.fail_after(20):
        async with (
            upstream("tool_calls") as config,
            switchman.open_router(config, env={"FINISH_TEST_KEY": KEY}) as router,
        ):
            call = Call(prompt="Capital of France?", model="r", params=Params(max_tokens=200))
            result = await _ask(router, call, stream)
    first = result.trace.attempts[0]
    assert first.alias == "remote" and first.outcome == "error"
    assert first.error is not None and "finish reason 'tool_calls'" in first.error
    assert result.status == "complete" and result.model == "local"
    assert result.finish_reason in ("stop", "length")


@pytest.mark.parametrize(
    ("finish", "text", "said"),
    [
        ("length", "", "max_tokens 64 before any text"),
        ("length", " \n ", "max_tokens 64 before any text"),
        ("stop", "", "(finish reason 'stop') with no text"),
        ("stop", "\n\n", "(finish reason 'stop') with no text"),
        # reasoning aloud, cut inside it by a stop sequence: the block is no answer
        ("stop", "<think>The user asks", "(finish reason 'stop') with no text"),
        ("length", "<think>The user asks</think>\n", "max_tokens 64 before any text"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_no_text_is_no_answer(stream: bool, finish: str, text: str, said: str) -> None:
    """A reasoning model that spent the whole of max_tokens thinking ends at ``length``
    with no text (or white space); one that reasoned aloud, cut by a stop sequence, at
    ``stop``: that is not an answer (the next model gives it), it is billed (the
    reasoning was output), and it is not held against the model's health."""
    with trio.fail_after(20):
        async with (
            upstream(finish, text=text) as config,
            switchman.open_router(config, env={"FINISH_TEST_KEY": KEY}) as router,
        ):
            call = Call(prompt="Capital of France?", model="r", params=Params(max_tokens=64))
            for _ in range(6):  # past the breaker's 5 consecutive failures: it stays closed
                result = await _ask(router, call, stream)
                first = result.trace.attempts[0]
                assert first.alias == "remote" and first.outcome == "error"
                assert first.error is not None and said in first.error
                assert first.usage is not None and first.usage.output_tokens == 4
                assert first.cost_usd == pytest.approx((9 * 1.0 + 4 * 3.0) / 1e6)
                assert result.status == "complete" and result.model == "local" and result.answer
            (mistral,) = (p for p in router.status().providers if p.name == "mistral")
    assert [m.breaker for m in mistral.models] == ["closed"]


@pytest.mark.parametrize(
    ("reason", "normal"),
    [
        (None, False),
        ("", True),
        ("STOP", True),
        ("end_turn", True),
        ("MAX_TOKENS", True),
        ("model_context_window_exceeded", True),
        ("OTHER", False),
        ("MALFORMED_FUNCTION_CALL", False),
        ("FINISH_REASON_UNSPECIFIED", False),
        ("pause_turn", False),
        ("tool_use", False),
        ("unload", False),
    ],
)
def test_which_finish_reasons_mean_the_answer_is_there(reason: str | None, normal: bool) -> None:
    assert finish_is_normal(reason) is normal
    if normal and reason is not None:
        assert normal_finish(reason) in ("stop", "length")


@pytest.mark.parametrize("budget", [None, 5.0])
async def test_an_abnormal_end_is_still_spend_the_budget_counts(budget: float | None) -> None:
    """The provider bills an answer that ended abnormally: the attempt fails, but its cost
    is spend (settled against a budget, or tracked), not the $0 of an error."""
    from switchman.catalog import BudgetsConfig

    with trio.fail_after(20):
        async with upstream("tool_calls") as config:
            config = attrs.evolve(config, budgets=BudgetsConfig(global_daily_usd=budget))
            async with switchman.open_router(config, env={"FINISH_TEST_KEY": KEY}) as router:
                result = await router.call(Call(prompt="Capital of France?", model="r"))
                spent = await router.spend("provider:mistral")
    failed = result.trace.attempts[0]
    assert failed.outcome == "error" and failed.usage is not None
    assert (failed.usage.input_tokens, failed.usage.output_tokens) == (9, 4)
    billed = (9 * 1.0 + 4 * 3.0) / 1e6
    assert failed.cost_usd == pytest.approx(billed)
    assert spent["day"] == pytest.approx(billed)
    assert result.status == "complete" and result.model == "local"
    # the call's cost: its answer, and what the failed attempt was billed
    assert result.cost_usd == pytest.approx(result.trace.attempts[-1].cost_usd + billed)
