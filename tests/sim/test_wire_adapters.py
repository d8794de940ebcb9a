"""switchman's own adapters against the provider-faithful fake server, over real sockets.

Each provider's adapter (``make_adapter``) is pointed at the fake under the
provider's path prefix, so it meets that provider's flavour: its key check, its
error shapes, its usage rules. What an adapter makes of it is what switchman
would make of the real provider. A test marked ``xfail(strict=True)`` shows an
adapter bug the faithful fake exposed (fixed in ``switchman/adapters``, not here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio

from switchman._call import Message
from switchman._errors import (
    AuthError,
    BadRequest,
    ContextExceeded,
    ModelNotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Refused,
    UpstreamError,
)
from switchman._result import normal_finish
from switchman.adapters import (
    ProviderRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    make_adapter,
    make_client,
    send_attempt,
)
from switchman.catalog import ProviderSpec
from switchman.catalog._spec import Kind
from switchman.sim import REFUSAL_TEXT, FakeProviderServer, expected_answer
from switchman.sim._plan import answer_plan
from switchman.sim._wire import Exchange, Parsed, reasoning_tokens
from switchman.sim._wire_perplexity import MID_ANSWER_FAILURE

KEY = "sk-test-SECRET123456789"
PROMPT = "What is the capital of France?"

#: provider -> (wire kind, base URL path under the fake server)
PROVIDERS: dict[str, tuple[Kind, str]] = {
    "openai": ("openai", "/openai/v1"),
    "anthropic": ("anthropic", "/anthropic"),
    "gemini": ("gemini", "/gemini/v1beta"),
    "xai": ("openai", "/xai/v1"),
    "mistral": ("openai", "/mistral/v1"),
    "groq": ("openai", "/groq/openai/v1"),
    "together": ("openai", "/together/v1"),
    "deepseek": ("openai", "/deepseek"),
    "perplexity": ("openai", "/perplexity"),
    "ollama": ("ollama", "/ollama"),
}
ALL = tuple(PROVIDERS)


@attrs.define
class Run:
    events: list[StreamEvent] = attrs.field(factory=list)

    async def emit(self, event: StreamEvent) -> None:
        self.events.append(event)

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    @property
    def end(self) -> StreamEnd:
        ends = [e for e in self.events if isinstance(e, StreamEnd)]
        assert len(ends) == 1
        return ends[0]


def request(model: str, *, stream: bool = True, **fields: Any) -> ProviderRequest:
    base: dict[str, Any] = {
        "model_id": model,
        "messages": (Message(role="user", content=PROMPT),),
        "stream": stream,
    }
    base.update(fields)
    return ProviderRequest(**base)


@pytest.fixture
async def run(server: FakeProviderServer) -> AsyncIterator[Any]:
    """``await run(provider, request, key=KEY)``: one attempt through the real HTTP path."""
    clients: dict[str, Any] = {}

    async def attempt(provider: str, req: ProviderRequest, *, key: str | None = KEY) -> Run:
        kind, path = PROVIDERS[provider]
        spec = ProviderSpec(name=provider, kind=kind, base_url=server.base_url + path)
        if provider not in clients:
            clients[provider] = make_client(spec)
        result = Run()
        with trio.fail_after(10):
            await send_attempt(
                clients[provider],
                make_adapter(spec, key),
                req,
                result.emit,
                ttft_timeout_s=5,
                stall_timeout_s=2,
            )
        return result

    try:
        yield attempt
    finally:
        for client in clients.values():
            await client.aclose()


def billed_output(server: FakeProviderServer, provider: str, model: str) -> int:
    """What the fake's provider bills as output for ``model``'s answer to the last request."""
    record = server.requests(model)[-1]
    assert record.outcome == "complete", record
    body = record.body
    max_tokens = None
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        max_tokens = max_tokens or body.get(key)
    max_tokens = max_tokens or (body.get("generationConfig") or {}).get("maxOutputTokens")
    words = len(expected_answer(model, PROMPT, max_tokens).split())
    name = model.rsplit("/", 1)[-1]
    thinking = {
        "openai": name.startswith(("gpt-5", "o1", "o3", "o4")),
        "xai": name.startswith(("grok-4", "grok-3-mini", "grok-code-fast")),
        "gemini": name.startswith("gemini-3"),
        "deepseek": body.get("thinking") != {"type": "disabled"},
    }.get(provider, False)
    plan = answer_plan("healthy", model, request(model))
    plan = attrs.evolve(plan, usage=attrs.evolve(plan.usage, output_tokens=words))
    asked = Parsed(model=model, request=request(model, max_tokens=max_tokens), thinking=thinking)
    return words + reasoning_tokens(Exchange(plan=plan, parsed=asked, id="x"))


# -- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("provider", ALL)
async def test_a_healthy_answer_whole_with_its_usage(
    provider: str, stream: bool, run: Any, server: FakeProviderServer
) -> None:
    got = await run(provider, request("healthy", stream=stream))
    assert got.text == expected_answer("healthy", PROMPT, None)
    assert got.end.finish_reason in ("stop", "end_turn", "STOP", "completed")
    assert got.end.usage.input_tokens > 0
    assert got.end.usage.output_tokens == billed_output(server, provider, "healthy")


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-5.4-mini"),  # reasoning inside completion_tokens: not counted twice
        ("xai", "grok-4.3"),  # reasoning outside completion_tokens, billed all the same
        ("gemini", "gemini-3.8-flash"),  # thoughtsTokenCount outside candidatesTokenCount
    ],
)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_reasoning_tokens_are_billed_output_once(
    provider: str, model: str, stream: bool, run: Any, server: FakeProviderServer
) -> None:
    got = await run(provider, request(model, stream=stream))
    assert got.end.usage.output_tokens == billed_output(server, provider, model)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-5.4-mini"),
        ("xai", "grok-4.3"),
        ("gemini", "gemini-3.8-flash"),
        ("deepseek", "healthy"),  # (thinking unless the request turns it off)
    ],
)
async def test_reasoning_and_answer_together_stay_within_the_requests_limit(
    provider: str, model: str, run: Any, server: FakeProviderServer
) -> None:
    # a limit the answer alone nearly fills: the reasoning gets what is left, no more
    got = await run(provider, attrs.evolve(request(model), max_tokens=12))
    assert got.end.usage.output_tokens <= 12
    assert got.end.usage.output_tokens == billed_output(server, provider, model)


async def test_no_key_is_an_auth_error_everywhere_but_a_local_ollama(run: Any) -> None:
    for provider in ALL:
        if provider == "ollama":
            got = await run(provider, request("healthy"), key=None)
            assert got.text
            continue
        with pytest.raises(AuthError) as caught:
            await run(provider, request("healthy"), key=None)
        assert not isinstance(caught.value, QuotaExhausted), provider


@pytest.mark.parametrize("provider", ALL)
async def test_a_rejected_key_is_an_auth_error(provider: str, run: Any) -> None:
    with pytest.raises(AuthError) as caught:
        await run(provider, request("bad-key"))
    assert not isinstance(caught.value, QuotaExhausted)
    assert "SECRET123456" not in str(caught.value)


#: providers whose docs give a billing failure; the others answer it as a plain 429
BILLED = ("openai", "anthropic", "xai", "together", "deepseek")


def adapter_bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"adapter bug: {reason}")


@pytest.mark.parametrize("provider", ALL)
async def test_a_used_up_quota(provider: str, run: Any) -> None:
    # Together's 429 type credit_limit says "Your rate limit is 60 queries per minute ...
    # upgrade to a paid plan" (providers.md §7): a free tier's per-minute limit. It stays a
    # rate limit (switched away from at once, held until its x-ratelimit-reset), not a
    # quota that would hold the provider out for five minutes.
    # Gemini documents no billing failure, but its QuotaFailure names the quota: a day's
    # quota spent is not back in minutes, so it is a used-up quota (a minute's stays a 429)
    used_up = (*BILLED, "gemini")
    expected = QuotaExhausted if provider in used_up and provider != "together" else RateLimited
    with pytest.raises(expected):
        await run(provider, request("quota-exhausted"))


@pytest.mark.parametrize("provider", ["openai", "anthropic", "xai", "deepseek", "gemini"])
async def test_a_spending_cap_is_quota_exhausted(provider: str, run: Any) -> None:
    with pytest.raises(QuotaExhausted):
        await run(provider, request("spend-limit"))


#: the retry hint each provider gives for the fake's ``rate-limited`` (1 s), where it gives one
RETRY_HINT = {
    "openai": 1.0,
    "anthropic": 1.0,
    "gemini": 1.0,  # in the body's RetryInfo
    "xai": 1.0,
    "groq": 1.0,
    "mistral": None,
    "deepseek": None,
    "perplexity": None,
    "ollama": None,
}


@pytest.mark.parametrize("provider", RETRY_HINT)
async def test_rate_limited_with_the_providers_hint(provider: str, run: Any) -> None:
    with pytest.raises(RateLimited) as caught:
        await run(provider, request("rate-limited"))
    assert not isinstance(caught.value, QuotaExhausted)
    hint = RETRY_HINT[provider]
    if hint is None:
        assert caught.value.retry_after is None or caught.value.retry_after <= 1.5
    else:
        assert caught.value.retry_after == pytest.approx(hint)


@pytest.mark.parametrize("provider", ALL)
async def test_an_unknown_model(provider: str, run: Any) -> None:
    # Mistral and DeepSeek answer an unknown model with a 400 whose words say so
    expected = BadRequest if provider in ("mistral", "deepseek") else ModelNotFound
    with pytest.raises(expected):
        await run(provider, request("not-found"))


#: (xAI's 400 "This model's maximum prompt length is N but the request contains M tokens."
#: and Together's "`inputs` tokens + `max_new_tokens` must be <= N" are read as context
#: errors by their wording: providers.md gives none for either)
CONTEXT_WORDS: dict[str, pytest.MarkDecorator] = {}


@pytest.mark.parametrize(
    "provider", [pytest.param(p, marks=CONTEXT_WORDS[p]) if p in CONTEXT_WORDS else p for p in ALL]
)
async def test_a_prompt_too_long(provider: str, run: Any) -> None:
    if provider == "ollama":  # cuts the prompt to fit and answers
        assert (await run(provider, request("context-length"))).text
        return
    with pytest.raises(ContextExceeded):
        await run(provider, request("context-length"))


@pytest.mark.parametrize("behaviour", ["down", "overloaded"])
@pytest.mark.parametrize("provider", ALL)
async def test_down_and_overloaded(provider: str, behaviour: str, run: Any) -> None:
    # Mistral says "capacity exceeded" with a 429
    expected = RateLimited if (provider, behaviour) == ("mistral", "overloaded") else UpstreamError
    with pytest.raises(expected):
        await run(provider, request(behaviour))


@pytest.mark.parametrize("provider", ALL)
async def test_a_failure_mid_answer(provider: str, run: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        await run(provider, request("error-after-200"))
    assert not isinstance(caught.value, Refused)


#: providers with a refusal signal; the others refuse in ordinary text
REFUSES = ("openai", "anthropic", "gemini", "deepseek")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("provider", ALL)
async def test_a_refusal(provider: str, stream: bool, run: Any) -> None:
    if provider in REFUSES:
        with pytest.raises(Refused):
            await run(provider, request("refusal", stream=stream))
        return
    assert (await run(provider, request("refusal", stream=stream))).text == REFUSAL_TEXT


# -- what an adapter sends -------------------------------------------------------------------


@pytest.mark.parametrize("provider", ALL)
async def test_a_system_prompt_and_sampling_are_accepted(provider: str, run: Any) -> None:
    messages = (Message(role="system", content="Be brief."), Message(role="user", content=PROMPT))
    req = request("healthy", messages=messages, temperature=0.3, top_p=0.9, max_tokens=50, seed=7)
    assert (await run(provider, req)).text == expected_answer("healthy", PROMPT, 50)


@pytest.mark.parametrize("provider", ["anthropic", "openai", "mistral"])
async def test_a_temperature_above_1_is_accepted(provider: str, run: Any) -> None:
    assert (await run(provider, request("healthy", temperature=1.5))).text


@pytest.mark.parametrize("provider", ALL)
async def test_a_prefill_continues(provider: str, run: Any) -> None:
    full = expected_answer("healthy", PROMPT, None)
    messages = (Message(role="user", content=PROMPT), Message(role="assistant", content=full[:20]))
    got = await run(provider, request("healthy", messages=messages))
    assert got.text == full[20:]


@pytest.mark.parametrize("provider", ALL)
async def test_a_conversation_opening_with_the_assistants_greeting_is_answered(
    provider: str, run: Any
) -> None:
    """A chat's history often opens with the assistant's greeting: Anthropic's API answers
    400 to a first turn not the user's, so its adapter (and Gemini's) puts one before it."""
    messages = (
        Message(role="system", content="Be brief."),
        Message(role="assistant", content="Hello! How can I help?"),
        Message(role="user", content=PROMPT),
    )
    got = await run(provider, request("healthy", messages=messages))
    assert got.text == expected_answer("healthy", PROMPT, None)


@pytest.mark.parametrize("provider", ALL)
async def test_a_system_turn_in_the_middle_of_the_talk_is_accepted(
    provider: str, run: Any, server: FakeProviderServer
) -> None:
    """Chat apps add system reminders mid-conversation; Mistral answers 400 ("Unexpected
    role 'system' after role 'assistant'"), so its adapter sends them first, as one."""
    messages = (
        Message(role="system", content="Be brief."),
        Message(role="user", content="Hi"),
        Message(role="assistant", content="Hello."),
        Message(role="system", content="Answer in French."),
        Message(role="user", content=PROMPT),
    )
    got = await run(provider, request("healthy", messages=messages))
    assert got.text == expected_answer("healthy", PROMPT, None)
    if provider == "mistral":
        sent = server.requests("healthy")[-1].body["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
        assert sent[0]["content"] == "Be brief.\n\nAnswer in French."


@pytest.mark.parametrize("provider", ALL)
async def test_two_user_turns_in_a_row_are_answered(
    provider: str, run: Any, server: FakeProviderServer
) -> None:
    """A history with two user turns in a row (a message sent again after a failure, or
    an empty assistant turn left out): Perplexity answers 400 ``invalid_message`` unless
    the turns alternate, so its adapter says the two as one."""
    messages = (
        Message(role="user", content="Hi"),
        Message(role="user", content=PROMPT),
    )
    got = await run(provider, request("healthy", messages=messages))
    assert got.text
    if provider == "perplexity":
        sent = server.requests("healthy")[-1].body["input"]
        assert sent == [{"role": "user", "content": f"Hi\n\n{PROMPT}"}]


async def test_a_deepseek_prefill_goes_to_its_beta_as_a_prefix(
    run: Any, server: FakeProviderServer
) -> None:
    """DeepSeek refuses a trailing assistant turn (400) but in its beta's prefix completion."""
    full = expected_answer("healthy", PROMPT, None)
    messages = (Message(role="user", content=PROMPT), Message(role="assistant", content=full[:20]))
    assert (await run("deepseek", request("healthy", messages=messages))).text == full[20:]
    record = server.requests("healthy")[-1]
    assert record.path == "/deepseek/beta/chat/completions"
    assert record.body["messages"][-1] == {
        "role": "assistant",
        "content": full[:20],
        "prefix": True,
    }
    # a plain conversation stays on the API's own path
    await run("deepseek", request("healthy"))
    assert server.requests("healthy")[-1].path == "/deepseek/chat/completions"


async def test_deepseek_multi_turn_is_accepted(run: Any) -> None:
    messages = (
        Message(role="user", content="Hi"),
        Message(role="assistant", content="Hello."),
        Message(role="user", content=PROMPT),
    )
    got = await run("deepseek", request("healthy", messages=messages))
    assert got.text == expected_answer("healthy", PROMPT, None)


async def test_xai_grok_4_with_stop_is_rejected_as_a_bad_request(run: Any) -> None:
    # the router keeps stop away from these models (eligibility); the wire refuses it
    with pytest.raises(BadRequest):
        await run("xai", request("grok-4.3", stop=("END",)))


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_an_anthropic_answer_ended_by_a_stop_sequence_finishes_normally(
    stream: bool, run: Any
) -> None:
    got = await run("anthropic", request("healthy", stream=stream, stop=("capital", "answer")))
    assert got.text == "Simulated "
    # said as Anthropic says it, and taken for a whole answer ("stop"), not a cut one
    assert got.end.finish_reason == "stop_sequence"
    assert normal_finish(got.end.finish_reason) == "stop"


async def test_a_perplexity_failure_mid_answer_keeps_the_providers_message(run: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        await run("perplexity", request("error-after-200"))
    assert MID_ANSWER_FAILURE in caught.value.message
    assert not isinstance(caught.value, Refused)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("provider", ALL)
async def test_an_answer_cut_at_the_output_limit_finishes_with_length(
    provider: str, stream: bool, run: Any
) -> None:
    # (Perplexity's Agent API signal, status "incomplete", is assumed: see _wire_perplexity)
    got = await run(provider, request("healthy", stream=stream, max_tokens=3))
    assert got.text == expected_answer("healthy", PROMPT, 3)
    assert normal_finish(got.end.finish_reason) == "length"


async def test_a_perplexity_answer_cut_at_its_limit_ends_as_length_without_its_terminator(
    run: Any,
) -> None:
    # the message item done says "incomplete" itself: a stream that ends before
    # response.completed still ends as a length end, not a stop
    got = await run("perplexity", request("no-terminator", stream=True, max_tokens=3))
    assert got.text == expected_answer("no-terminator", PROMPT, 3)
    assert got.end.finish_reason == "length"
