"""A call cut after its output began, over real HTTP: an upstream streams emoji, then stalls
without saying what it billed. The caller's own ``hard_ms`` (or the router's stall limit)
cuts the attempt, and its budget is settled to an upper bound of what the provider bills:
four ASCII characters a token and a token per byte of the emoji, sent and received."""

from __future__ import annotations

import json
import math

import attrs
import pytest
import trio

import switchman
from switchman import Call, Caller, Options, Params, Timeouts
from switchman.catalog import BudgetsConfig, Config, ModelSpec, ProviderSpec, RouterConfig
from switchman.policy._estimate import fair_tokens, max_input_tokens
from tests._rawhttp import read_request_body

ENV = {"STALL_KEY": "stall-test-key-0001"}
SMILE = "\U0001f642"  # four bytes of UTF-8
CHUNKS = 40  # of ten emoji each: 400 emoji, 1,600 bytes
MODEL = ModelSpec(
    alias="emoji",
    provider="stall",
    model_id="emoji",
    input_per_mtok=1.0,
    output_per_mtok=2.0,
    context_window=200_000,
    max_output_tokens=8_000,
)


@attrs.define
class Upstream:
    base_url: str
    streamed: trio.Event = attrs.field(factory=trio.Event)
    #: end the answer normally (finish_reason stop), still without usage, instead of stalling
    finish: bool = False


def _chunk(text: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "emoji", "choices": [choice]}
    return _raw_chunk(f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode())


def _raw_chunk(event: bytes) -> bytes:
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"  # one HTTP chunk


async def serve_stalling(
    finish: bool = False, *, task_status: trio.TaskStatus[Upstream] = trio.TASK_STATUS_IGNORED
) -> None:
    """An OpenAI-wire upstream that streams emoji (no usage), then says nothing more (or,
    ``finish``, ends the answer normally, still without usage)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    upstream = Upstream(base_url=f"http://127.0.0.1:{port}/v1", finish=finish)

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            await read_request_body(stream)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            for _ in range(CHUNKS):
                await stream.send_all(_chunk(SMILE * 10))
            upstream.streamed.set()
            if upstream.finish:  # the end of the answer, and still no usage
                await stream.send_all(_chunk("", finish="stop") + _raw_chunk(b"data: [DONE]\n\n"))
                await stream.send_all(b"0\r\n\r\n")
                return
            await trio.sleep_forever()  # stalled: no end, no usage

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(upstream)


def _config(upstream: Upstream, router: RouterConfig) -> Config:
    return Config(
        providers={
            "stall": ProviderSpec(
                name="stall", kind="openai", base_url=upstream.base_url, api_key_env="STALL_KEY"
            )
        },
        models={"emoji": MODEL},
        budgets=BudgetsConfig(callers={"team": {"daily_usd": 10.0}}),
        router=router,
    )


@pytest.mark.parametrize("cut_by", ["hard_ms", "stall"])
async def test_a_cut_attempt_of_token_dense_text_settles_its_upper_bound(
    cut_by: str, nursery: trio.Nursery
) -> None:
    upstream: Upstream = await nursery.start(serve_stalling)
    if cut_by == "hard_ms":  # the caller's own deadline: the attempt is cancelled
        router_config = RouterConfig()
        options = Options(timeouts=Timeouts(hard_ms=1_500))
    else:  # the router's stall limit: the attempt fails, its stream stalled
        router_config = RouterConfig(stall_ms=500)
        options = Options()
    call = Call(
        prompt="EMOJI " + SMILE * 2_000,  # 8,006 bytes; 2,006 characters
        model="emoji",
        params=Params(max_tokens=4_000),
        caller=Caller(handle="team"),
        options=options,
    )
    with trio.fail_after(15):
        async with switchman.open_router(_config(upstream, router_config), env=ENV) as router:
            result = await router.call(call)
            spent = (await router.spend("caller:team"))["day"]
    assert upstream.streamed.is_set()
    assert result.status == "failed", result
    (attempt,) = result.trace.attempts
    assert attempt.outcome == ("timeout" if cut_by == "hard_ms" else "error"), attempt
    # a token per byte of the emoji (sent and received), "EMOJI " at four characters a
    # token, and the framing; the prompt never above the reservation's bound
    received = CHUNKS * 10 * 4
    assert attempt.usage.input_tokens == 8_000 + 2 + 4 + 16 < max_input_tokens(call)
    assert attempt.usage.output_tokens == received
    bill = MODEL.cost(8_022, received)
    assert attempt.cost_usd == pytest.approx(bill)
    assert result.cost_usd == pytest.approx(bill)
    assert spent == pytest.approx(bill)
    assert result.trace.budget.settled_usd == pytest.approx(bill)
    # (four characters a token billed 506 input and 100 output tokens: a fifth of this)
    assert bill > 4 * MODEL.cost(math.ceil(2_006 / 4) + 4, CHUNKS * 10 // 4)
    # and never above what was reserved: the prompt's bound and all of max_tokens
    assert spent < MODEL.cost(8_026, 4_000)


async def test_an_answer_that_ends_without_usage_is_billed_by_the_same_bound(
    nursery: trio.Nursery,
) -> None:
    """A provider that says nothing of usage cannot be billed at four characters a token
    for text it counts far higher: a successful answer is billed as a cut one is."""
    upstream: Upstream = await nursery.start(serve_stalling, True)
    call = Call(
        prompt="EMOJI " + SMILE * 2_000,
        model="emoji",
        params=Params(max_tokens=4_000),
        caller=Caller(handle="team"),
    )
    with trio.fail_after(15):
        async with switchman.open_router(_config(upstream, RouterConfig()), env=ENV) as router:
            result = await router.call(call)
            spent = (await router.spend("caller:team"))["day"]
    assert result.status == "complete", result.errors
    assert result.answer == SMILE * 10 * CHUNKS
    assert result.usage.input_tokens == 8_000 + 2 + 4 + 16
    assert result.usage.output_tokens == CHUNKS * 10 * 4  # (it was 100, at 4 characters)
    assert spent == pytest.approx(MODEL.cost(8_022, CHUNKS * 10 * 4))


async def test_a_continuation_that_only_repeated_the_answer_so_far_is_billed_for_it(
    nursery: trio.Nursery,
) -> None:
    """A model without prefill, continuing a broken stream, first says again what was
    already sent (switchman drops the repeat): it generated it all the same, and was sent the
    prompt and the answer so far. It was billed nothing when it broke before new text."""
    from tests.adapters.test_money_audit import ENV as MONEY_ENV
    from tests.adapters.test_money_audit import chat_chunk, config, model, serve_scripted

    said = "Hello world, and more. "

    def unfinished() -> bytes:  # the text, then the end of the stream without a finish
        return (chat_chunk({"content": said}) + "data: [DONE]\n\n").encode()

    first, second = model("openai", "first"), model("openai", "second")
    upstream = await nursery.start(serve_scripted, {"first": unfinished, "second": unfinished})
    cfg = attrs.evolve(config(upstream, first, second), routes={})
    call = Call(prompt="Say it.", model=first.alias, options=Options(fallback=(second.alias,)))
    with trio.fail_after(15):
        async with (
            switchman.open_router(cfg, env=MONEY_ENV) as router,
            router.stream(call) as items,
        ):
            got = [item async for item in items]
    result = got[-1]
    assert isinstance(result, switchman.Result) and result.status == "failed"
    again = [a for a in result.trace.attempts if a.alias == second.alias]
    assert again, result.trace.attempts
    # its output: the repeat it generated; its input: the prompt and the answer so far
    assert again[0].usage.output_tokens == fair_tokens(said)
    assert again[0].usage.input_tokens > fair_tokens(said)
    assert again[0].cost_usd > 0


async def test_a_call_stops_once_its_broken_answers_were_billed_three_answers_worth(
    nursery: trio.Nursery,
) -> None:
    """Six models behind one upstream that breaks every answer off (it stalls after
    output began): each attempt is billed, so the call stops once the bills come to three
    answers' worth, the models left passed over with why (it paid every model of a
    catalog before)."""
    upstream: Upstream = await nursery.start(serve_stalling)
    models = {
        f"emoji{i}": attrs.evolve(
            MODEL, alias=f"emoji{i}", model_id=f"emoji-{i}", output_per_mtok=20.0
        )
        for i in range(6)
    }
    config = attrs.evolve(_config(upstream, RouterConfig(stall_ms=300)), models=models)
    call = Call(prompt="EMOJI " + SMILE * 20, caller=Caller(handle="team"))
    with trio.fail_after(15):
        async with switchman.open_router(config, env=ENV) as router:
            result = await router.call(call)
            spent = (await router.spend("caller:team"))["day"]
    assert result.status == "failed", result
    attempts = result.trace.attempts
    assert 2 <= len(attempts) < 6 and {a.outcome for a in attempts} == {"error"}, attempts
    assert all(a.cost_usd > 0 for a in attempts)
    assert spent == pytest.approx(sum(a.cost_usd for a in attempts))
    stopped = [s.alias for s in result.trace.skipped if s.reason.startswith("the call stopped")]
    assert len(stopped) == 6 - len(attempts), result.trace.skipped
    assert "the call stopped: its failed attempts were billed" in result.errors[0].message
