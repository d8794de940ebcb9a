"""What a call costs, as each provider bills it, over real HTTP: a scripted upstream speaks
the provider's wire (providers.md) with the usage and cost it reports, and the router's
result, its attempt record and its budget spend must all carry what the provider billed."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import pytest
import trio

import switchman
from switchman import Call, Caller, Params
from switchman._result import Usage
from switchman.adapters import StreamEnd, make_adapter
from switchman.catalog import BudgetsConfig, Config, ModelSpec, ProviderSpec, builtin_catalog
from switchman.policy._estimate import most_cost
from tests._rawhttp import read_request_body
from tests._simfleet import streamed as streamed_call

ENV: Final = {"MONEY_KEY": "money-audit-key-0001"}
PROMPT: Final = "What is the capital of France?"

#: model id -> the body the upstream answers with (always a stream: attempts stream)
Script = Callable[[], bytes]


def chat_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}
    return f"data: {json.dumps({**body, **extra})}\n\n"


def chat_stream(text: str, usage: Mapping[str, Any]) -> bytes:
    """An OpenAI-style stream: the text, then the finish reason with the usage."""
    return "".join(
        (
            chat_chunk({"role": "assistant", "content": text}),
            chat_chunk({}, "stop", usage=dict(usage)),
            "data: [DONE]\n\n",
        )
    ).encode()


@attrs.define
class Upstream:
    base_url: str
    scripts: dict[str, Script]
    asked: list[dict[str, Any]] = attrs.field(factory=list)
    #: seconds each answer waits before it is sent (calls overlap meanwhile)
    delay: float = 0.0


async def serve_scripted(
    scripts: dict[str, Script], *, task_status: trio.TaskStatus[Upstream] = trio.TASK_STATUS_IGNORED
) -> None:
    """One request per connection, whatever the path; the reply is the script of the model
    the body asks for, as a ``text/event-stream``."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    upstream = Upstream(base_url=f"http://127.0.0.1:{port}", scripts=scripts)

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            body = await read_request_body(stream)
            asked = json.loads(body)
            upstream.asked.append(asked)
            payload = upstream.scripts[asked["model"]]()
            await trio.sleep(upstream.delay)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"content-length: " + str(len(payload)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + payload
            )

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(upstream)


#: provider -> the path under the upstream that is its base URL
PATHS: Final = {"xai": "/v1", "deepseek": "", "perplexity": "", "openai": "/v1"}


def config(upstream: Upstream, *models: ModelSpec, caller_daily: float | None = None) -> Config:
    providers = {
        m.provider: ProviderSpec(
            name=m.provider,
            kind="openai",
            base_url=upstream.base_url + PATHS[m.provider],
            api_key_env="MONEY_KEY",
        )
        for m in models
    }
    callers = {"alice": {"daily_usd": caller_daily}} if caller_daily is not None else {}
    return Config(
        providers=providers,
        models={m.alias: m for m in models},
        budgets=BudgetsConfig(global_daily_usd=1000.0, callers=callers),
    )


def model(provider: str, model_id: str, **fields: Any) -> ModelSpec:
    base: dict[str, Any] = dict(
        alias=f"{provider}/{model_id}",
        provider=provider,
        model_id=model_id,
        context_window=128_000,
        max_output_tokens=8_192,
        input_per_mtok=1.25,
        output_per_mtok=2.5,
    )
    base.update(fields)
    return ModelSpec(**base)


async def ask(
    upstream: Upstream, target: ModelSpec, *, streamed: bool, max_tokens: int = 2000
) -> tuple[switchman.Result, float]:
    """One call to ``target``; its result and the global spend it left."""
    call = Call(prompt=PROMPT, model=target.alias, params=Params(max_tokens=max_tokens))
    with trio.fail_after(20):
        async with switchman.open_router(config(upstream, target), env=ENV) as router:
            if streamed:
                result, text = await streamed_call(router, call)
                assert text == result.answer
            else:
                result = await router.call(call)
            spent = await router.spend("global")
    return result, spent["day"]


# --------------------------------------------------------------------------- xAI ticks

GROK: Final = model("xai", "grok-4.3")
#: providers.md's xAI example: 21 in, 8 + 98 reasoning out, 2,912,500 ticks
XAI_USAGE: Final = {
    "prompt_tokens": 21,
    "completion_tokens": 8,
    "total_tokens": 127,
    "completion_tokens_details": {"reasoning_tokens": 98},
    "cost_in_usd_ticks": 2912500,
}


def test_xai_ticks_are_the_cost_the_adapter_reports() -> None:
    adapter = make_adapter(ProviderSpec(name="xai", kind="openai"), "k")
    body = {
        "model": "grok-4.3",
        "choices": [{"message": {"content": "Paris."}, "finish_reason": "stop"}],
        "usage": XAI_USAGE,
    }
    whole = adapter.parse_response(json.dumps(body).encode())
    assert whole.cost_usd == pytest.approx(2912500 * 1e-10)
    parser = adapter.stream_parser()
    events = [*parser.feed(chat_stream("Paris.", XAI_USAGE)), *parser.end()]
    (end,) = [e for e in events if isinstance(e, StreamEnd)]
    assert end.cost_usd == pytest.approx(2912500 * 1e-10)
    assert end.usage == Usage(input_tokens=21, output_tokens=106, reasoning_tokens=98)


@pytest.mark.parametrize("ticks", [True, -5, "250", float("nan"), float("inf")])
def test_xai_ticks_that_are_no_count_leave_the_cost_to_list_prices(ticks: Any) -> None:
    adapter = make_adapter(ProviderSpec(name="xai", kind="openai"), "k")
    parser = adapter.stream_parser()
    events = parser.feed(chat_stream("Paris.", {**XAI_USAGE, "cost_in_usd_ticks": ticks}))
    (end,) = [e for e in [*events, *parser.end()] if isinstance(e, StreamEnd)]
    assert end.cost_usd is None


def test_ticks_are_read_from_xai_only() -> None:
    adapter = make_adapter(ProviderSpec(name="openai", kind="openai"), "k")
    parser = adapter.stream_parser()
    events = [*parser.feed(chat_stream("Paris.", XAI_USAGE)), *parser.end()]
    (end,) = [e for e in events if isinstance(e, StreamEnd)]
    assert end.cost_usd is None


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("ticks", "why"),
    [
        (15_000_000, "below list: 800 of the 1,000 prompt tokens were cached"),
        (275_000_000, "above list: 5 search sources"),
    ],
)
async def test_an_xai_call_costs_its_ticks(
    ticks: int, why: str, streamed: bool, nursery: trio.Nursery
) -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 800},
        "completion_tokens_details": {"reasoning_tokens": 300},
        "cost_in_usd_ticks": ticks,
    }
    upstream: Upstream = await nursery.start(
        serve_scripted, {"grok-4.3": lambda: chat_stream("Paris.", usage)}
    )
    result, spent = await ask(upstream, GROK, streamed=streamed)
    assert result.status == "complete", result.errors
    assert result.cost_usd == pytest.approx(ticks * 1e-10), why
    assert result.trace.attempts[0].cost_usd == pytest.approx(ticks * 1e-10)
    assert result.usage == Usage(
        input_tokens=1000, output_tokens=500, cached_input_tokens=800, reasoning_tokens=300
    )
    assert spent == pytest.approx(ticks * 1e-10)


async def test_a_tick_count_no_request_could_make_is_held_with_a_warning(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """10**18 ticks ($100 million) was ignored and the call billed at list price, silently:
    it is the provider's word, held to the most the model could cost, and told."""
    usage = {**XAI_USAGE, "cost_in_usd_ticks": 10**18}
    upstream: Upstream = await nursery.start(
        serve_scripted, {"grok-4.3": lambda: chat_stream("Paris.", usage)}
    )
    result, spent = await ask(upstream, GROK, streamed=False)
    most = most_cost(GROK, GROK.context_window, GROK.max_output_tokens)
    assert result.cost_usd == pytest.approx(most) and spent == pytest.approx(most)
    said = [r.getMessage() for r in caplog.records if r.name == "switchman.attempts"]
    assert len(said) == 1 and "more than any request could produce" in said[0], said


# --------------------------------------------------------------------------- DeepSeek cache

#: the shipped catalog's model: its cache-hit price is providers.md's peak one, $0.006
FLASH: Final = builtin_catalog().models["deepseek/deepseek-flash"]
#: 1,000 prompt tokens of which 800 were cache hits, 100 out
DEEPSEEK_USAGE: Final = {
    "prompt_tokens": 1000,
    "completion_tokens": 100,
    "total_tokens": 1100,
    "prompt_cache_hit_tokens": 800,
    "prompt_cache_miss_tokens": 200,
    "completion_tokens_details": {"reasoning_tokens": 0},
}
#: peak prices all day: misses $0.30, hits $0.006, output $1.20 a million
DEEPSEEK_BILL: Final = (200 * 0.30 + 800 * 0.006 + 100 * 1.20) / 1e6


def test_deepseek_cache_hits_are_what_the_adapter_reports() -> None:
    adapter = make_adapter(ProviderSpec(name="deepseek", kind="openai"), "k")
    body = {
        "model": "deepseek-flash",
        "choices": [{"message": {"content": "Paris."}, "finish_reason": "stop"}],
        "usage": DEEPSEEK_USAGE,
    }
    whole = adapter.parse_response(json.dumps(body).encode())
    assert whole.cached_input_tokens == 800 and whole.cost_usd is None
    assert whole.usage == Usage(input_tokens=1000, output_tokens=100, cached_input_tokens=800)
    parser = adapter.stream_parser()
    events = [*parser.feed(chat_stream("Paris.", DEEPSEEK_USAGE)), *parser.end()]
    (end,) = [e for e in events if isinstance(e, StreamEnd)]
    assert end.cached_input_tokens == 800 and end.usage.input_tokens == 1000


def test_the_catalog_prices_deepseek_cache_hits_at_their_peak_price() -> None:
    catalog = builtin_catalog().models
    assert catalog["deepseek/deepseek-flash"].cached_input_per_mtok == 0.006
    assert catalog["deepseek/deepseek-v4-pro"].cached_input_per_mtok == 0.044
    assert FLASH.cost(1000, 100, 800) == pytest.approx(DEEPSEEK_BILL)
    # hits past the prompt are no discount beyond it; a model without a cache price
    # bills them as any input
    assert FLASH.cost(1000, 100, 5000) == pytest.approx((1000 * 0.006 + 100 * 1.2) / 1e6)
    assert GROK.cost(1000, 100, 800) == GROK.cost(1000, 100)


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_deepseek_call_bills_cache_hits_at_the_cache_hit_price(
    streamed: bool, nursery: trio.Nursery
) -> None:
    upstream: Upstream = await nursery.start(
        serve_scripted, {"deepseek-flash": lambda: chat_stream("Paris.", DEEPSEEK_USAGE)}
    )
    result, spent = await ask(upstream, FLASH, streamed=streamed)
    assert result.status == "complete", result.errors
    assert result.usage == Usage(input_tokens=1000, output_tokens=100, cached_input_tokens=800)
    assert result.cost_usd == pytest.approx(DEEPSEEK_BILL)  # $0.0001848, not $0.00042
    assert spent == pytest.approx(DEEPSEEK_BILL)


# --------------------------------------------------------------------------- past max_tokens

MINI: Final = model(
    "openai", "gpt-5.4-mini", input_per_mtok=0.75, output_per_mtok=4.5, max_output_tokens=128_000
)


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_bill_past_max_tokens_is_billed_as_the_provider_reports_it(
    streamed: bool, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """An upstream that ignores max_tokens 100 and bills 5,000 tokens of output: that is
    what it charges, so that is the cost and the spend (it was held to 100 tokens)."""
    usage = {"prompt_tokens": 20, "completion_tokens": 5000, "total_tokens": 5020}
    upstream: Upstream = await nursery.start(
        serve_scripted, {"gpt-5.4-mini": lambda: chat_stream("Paris.", usage)}
    )
    result, spent = await ask(upstream, MINI, streamed=streamed, max_tokens=100)
    billed = (20 * 0.75 + 5000 * 4.5) / 1e6
    assert result.status == "complete", result.errors
    assert result.usage == Usage(input_tokens=20, output_tokens=5000)
    assert result.cost_usd == pytest.approx(billed) and spent == pytest.approx(billed)
    # one warning for the one answer, with what the provider reported (not also "billed
    # more than reserved" for the same bill)
    said = [r.getMessage() for r in caplog.records if r.name == "switchman.attempts"]
    assert len(said) == 1, said
    assert "reported 5000 output tokens, past the max_tokens 100 it was sent" in said[0]


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_bill_no_request_could_make_is_held_and_told_once_as_reported(
    streamed: bool, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    usage = {"prompt_tokens": 20, "completion_tokens": 2_000_000, "total_tokens": 2_000_020}
    upstream: Upstream = await nursery.start(
        serve_scripted, {"gpt-5.4-mini": lambda: chat_stream("Paris.", usage)}
    )
    result, spent = await ask(upstream, MINI, streamed=streamed, max_tokens=100)
    assert result.usage == Usage(input_tokens=20, output_tokens=128_000)  # (its max output)
    said = [r.getMessage() for r in caplog.records if r.name == "switchman.attempts"]
    assert len(said) == 1, said
    assert "reported 20 input and 2000000 output tokens" in said[0]
    assert spent == pytest.approx(result.cost_usd)


@pytest.mark.parametrize("streamed", [False, True])
async def test_text_past_what_a_small_max_tokens_allows_is_no_answer(
    streamed: bool, nursery: trio.Nursery
) -> None:
    """max_tokens 10 allows 640 characters (64 a token): 3,001 are not an answer to the
    request (they passed: the limit had 64 tokens of slack, 4,096 characters)."""
    usage = {"prompt_tokens": 20, "completion_tokens": 700, "total_tokens": 720}
    upstream: Upstream = await nursery.start(
        serve_scripted, {"gpt-5.4-mini": lambda: chat_stream("word " * 600 + "!", usage)}
    )
    result, _ = await ask(upstream, MINI, streamed=streamed, max_tokens=10)
    assert result.status == "failed"
    (attempt,) = result.trace.attempts
    assert attempt.error is not None and "grew past what max_tokens 10 allows" in attempt.error


# --------------------------------------------------------------------------- Perplexity

SONAR: Final = builtin_catalog().models["perplexity/perplexity/sonar"]


def responses_stream(text: str, usage: Mapping[str, Any]) -> bytes:
    """The Agent API's stream (the Responses format): the text, then the completed response."""
    events = (
        {"type": "response.output_text.delta", "delta": text},
        {
            "type": "response.completed",
            "response": {"model": "perplexity/sonar", "status": "completed", "usage": usage},
        },
    )
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()


#: three web searches: $0.015 of tool calls beside the tokens
THREE_SEARCHES: Final = {
    "input_tokens": 20,
    "output_tokens": 50,
    "total_tokens": 70,
    "cost": {
        "currency": "USD",
        "input_cost": 5e-6,
        "output_cost": 1.25e-4,
        "tool_calls_cost": 0.015,
        "total_cost": 0.01513,
    },
    "tool_calls_details": {"web_search": {"invocation": 3}},
}


async def test_concurrent_perplexity_calls_never_overspend_a_budget(nursery: trio.Nursery) -> None:
    """20 calls at once against a $0.05 day: each is billed $0.01513 (three searches), far
    more than its tokens and one search ($0.0053, all that was reserved: 9 ran, $0.136 was
    spent). Five searches are reserved now, so what runs fits the budget."""
    upstream: Upstream = await nursery.start(
        serve_scripted, {"perplexity/sonar": lambda: responses_stream("Paris.", THREE_SEARCHES)}
    )
    upstream.delay = 0.3  # every call is in flight before any is billed
    answered: list[switchman.Result] = []
    call = Call(
        prompt=PROMPT,
        model=SONAR.alias,
        caller=Caller(handle="alice"),
        params=Params(max_tokens=100),
    )
    with trio.fail_after(20):
        async with switchman.open_router(
            config(upstream, SONAR, caller_daily=0.05), env=ENV
        ) as router:

            async def one() -> None:
                result = await router.call(call)
                if result.status == "complete":
                    answered.append(result)

            async with trio.open_nursery() as calls:
                for _ in range(20):
                    calls.start_soon(one)
            spent = (await router.spend("caller:alice"))["day"]
    assert answered and len(upstream.asked) == len(answered)
    assert all(r.cost_usd == pytest.approx(0.01513) for r in answered)
    assert spent == pytest.approx(0.01513 * len(answered))
    assert spent <= 0.05
    assert answered[0].trace.budget.reserved_usd >= 0.01513


async def _sonar_answers(nursery: trio.Nursery, usage: Mapping[str, Any]) -> switchman.Result:
    """The result of one call to Perplexity's sonar, whose answer reports ``usage``."""
    upstream: Upstream = await nursery.start(
        serve_scripted, {"perplexity/sonar": lambda: responses_stream("Paris.", usage)}
    )
    call = Call(prompt=PROMPT, model=SONAR.alias, params=Params(max_tokens=100))
    with trio.fail_after(20):
        async with switchman.open_router(config(upstream, SONAR), env=ENV) as router:
            return await router.call(call)


@pytest.mark.parametrize(
    ("searches", "fees"),
    [
        ({"tool_calls_details": {"web_search": {"invocation": 3}}}, 3),
        ({"tool_calls_details": {"web_search": {"invocation": 2.0}}}, 2),
        ({}, 1),
    ],
    ids=["three searches said", "two, as a float", "none said"],
)
async def test_perplexity_search_fees_without_its_cost_are_billed_as_the_searches_it_ran(
    nursery: trio.Nursery, searches: Mapping[str, Any], fees: int
) -> None:
    """An Agent API answer without ``usage.cost`` that says it ran three searches is billed
    its tokens and three search fees (it was billed one, whatever it said); one that does
    not say how many is billed one, the catalog's fee a request."""
    usage = {"input_tokens": 20, "output_tokens": 50, "total_tokens": 70, **searches}
    result = await _sonar_answers(nursery, usage)
    tokens = (20 * 0.25 + 50 * 2.5) / 1e6
    assert result.status == "complete"
    assert result.cost_usd == pytest.approx(tokens + fees * 0.005)


@pytest.mark.parametrize(
    ("searches", "cost", "billed"),
    [
        (20, True, 0.1000255),  # (its cost, as it said it)
        (20, False, 0.10003),  # (its tokens at list price, and the searches)
        # (held at a hundred searches: its tokens, and $0.50 of searches)
        (10**6, False, 0.50003),
        (150, True, 0.5000255),  # (its cost, less the fifty searches past a hundred)
    ],
    ids=[
        "twenty searches, its cost said",
        "twenty searches said",
        "a million said",
        "150, its cost said",
    ],
)
async def test_an_answer_that_ran_many_searches_is_billed_them_all(
    nursery: trio.Nursery, searches: int, cost: bool, billed: float
) -> None:
    """Twenty searches ($0.10) were held to the five a request reserves ($0.0775, "more
    than any request could produce"): no request bounds them. A report of more than
    ``MOST_FEES`` is held there, as one of more tokens than a model makes is."""
    usage: dict[str, Any] = {
        "input_tokens": 20,
        "output_tokens": 10,
        "total_tokens": 30,
        "tool_calls_details": {"web_search": {"invocation": searches}},
    }
    if cost:
        usage["cost"] = {"currency": "USD", "total_cost": searches * 0.005 + 0.0000255}
    result = await _sonar_answers(nursery, usage)
    assert result.status == "complete"
    assert result.cost_usd == pytest.approx(billed)


def anthropic_stream(text: str, final_usage: Mapping[str, Any] | None) -> bytes:
    """Anthropic's named events: ``message_start`` (its usage's output a placeholder), the
    text, ``message_delta`` with ``final_usage`` (or none), ``message_stop``."""
    start_usage = {"input_tokens": 12, "output_tokens": 1}
    delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}
    if final_usage is not None:
        delta["usage"] = dict(final_usage)
    events = (
        ("message_start", {"type": "message_start", "message": {"usage": start_usage}}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": text}},
        ),
        ("message_delta", delta),
        ("message_stop", {"type": "message_stop"}),
    )
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode()


async def test_an_anthropic_stream_without_its_final_usage_is_billed_as_one_without_usage(
    nursery: trio.Nursery,
) -> None:
    """A ``message_delta`` without usage leaves ``message_start``'s output count, a
    placeholder of a token: a long answer was billed as 1 token and not marked estimated.
    It is billed at the bound of an answer without usage, and says so; with its usage, as
    it says."""
    text = "The answer is forty-two, and here is why, at some length. " * 4
    claude = model("anthropic", "claude-x", input_per_mtok=3.0, output_per_mtok=15.0)
    scripts = {"said": lambda: anthropic_stream(text, {"output_tokens": 20})}
    scripts["unsaid"] = lambda: anthropic_stream(text, None)
    upstream: Upstream = await nursery.start(serve_scripted, scripts)
    results = {}
    for model_id in ("said", "unsaid"):
        spec = attrs.evolve(claude, alias=model_id, model_id=model_id)
        provider = ProviderSpec(
            name="anthropic", kind="anthropic", base_url=upstream.base_url, api_key_env="MONEY_KEY"
        )
        config = Config(providers={"anthropic": provider}, models={model_id: spec})
        with trio.fail_after(20):
            async with switchman.open_router(config, env=ENV) as router:
                results[model_id] = await router.call(Call(prompt=PROMPT, model=model_id))
    said, unsaid = results["said"], results["unsaid"]
    assert said.status == unsaid.status == "complete" and said.answer == unsaid.answer == text
    assert said.usage.output_tokens == 20 and not said.trace.attempts[0].usage_estimated
    assert unsaid.usage.output_tokens >= len(text) // 4
    assert unsaid.trace.attempts[0].usage_estimated
    assert unsaid.cost_usd > said.cost_usd
