"""The router over real HTTP against the fake provider server: every behaviour, every wire format.

Each test starts the fake server on 127.0.0.1:0 and a router whose providers
(OpenAI, Anthropic, Gemini, Mistral, Groq, DeepSeek, xAI, Perplexity, Ollama)
point at it. A behaviour is checked on every provider at once (one call per
provider, concurrently), for what the caller got, what the server saw and
whether the router still answers afterwards. Every test also checks that the
providers' API key appears in no result, trace event or log record.
"""

from __future__ import annotations

import itertools
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio

import switchman
from switchman import Message, Params, Result, Router, TraceEvent
from switchman.adapters import ProviderRequest
from switchman.catalog import BudgetsConfig, Config, config_from_dict
from switchman.catalog._discovery import DEFAULT_CONTEXT_WINDOW, discover_local_models
from switchman.policy._breaker import BreakerConfig
from switchman.policy._estimate import CONTINUE_PROMPT
from switchman.sim import (
    REFUSAL_TEXT,
    BehaviourState,
    FakeProviderServer,
    FakeServerConfig,
    expected_answer,
    plan_from_name,
    serve_fake_provider,
)
from switchman.sim._plan import RESTATED_WORDS

from ._httpfleet import (
    BAD_KEY_REPLIES,
    ENV,
    KEY,
    MAX_TOKENS,
    PROMPT,
    PROVIDERS,
    QUOTA_REPLIES,
    KeyRejecter,
    answer_of,
    ask,
    http_fleet,
    model,
    serve_key_rejecter,
)

#: the model every route falls back to
FALLBACK = "deepseek/healthy"
#: every provider but the fallback's, each playing the behaviour under test
PRIMARIES = ("openai", "anthropic", "gemini", "mistral", "groq", "xai", "perplexity", "ollama")
#: a retry of the same model never comes sooner than this after the failure
MIN_GAP_S = 0.75
#: what gives the key away, whole or in part
SECRETS = (KEY, "SECRET123456")


@pytest.fixture
async def server(nursery: trio.Nursery) -> FakeProviderServer:
    handle: FakeProviderServer = await nursery.start(serve_fake_provider, FakeServerConfig())
    return handle


@attrs.define
class Fleet:
    """A running router over the fake server, and everything it showed the outside."""

    router: Router
    server: FakeProviderServer
    #: every trace event, from the router's start (read when it has closed)
    subscription: trio.MemoryReceiveChannel[TraceEvent]
    events: list[TraceEvent] = attrs.field(factory=list)
    results: list[Result] = attrs.field(factory=list)
    #: anything else the router showed (its status at the end)
    shown: list[object] = attrs.field(factory=list)

    async def call(self, target: str, **timeouts: int) -> Result:
        with trio.fail_after(20):
            result = await self.router.call(ask(target, **timeouts))
        self.results.append(result)
        return result

    async def stream(self, target: str, **timeouts: int) -> tuple[str, Result]:
        """The joined deltas and the final result; nothing may follow the result."""
        deltas: list[str] = []
        result: Result | None = None
        with trio.fail_after(20):
            async with self.router.stream(ask(target, **timeouts)) as replies:
                async for item in replies:
                    assert result is None, "an item arrived after the final result"
                    if isinstance(item, Result):
                        result = item
                    else:
                        deltas.append(item.text)
        assert result is not None
        self.results.append(result)
        return "".join(deltas), result

    async def drain(self) -> None:
        """Read every trace event; call once the router has closed (it ends the subscription)."""
        if self.subscription.statistics().open_receive_channels:  # not drained yet
            async with self.subscription:
                self.events.extend([event async for event in self.subscription])

    def seen(self, model_id: str) -> list[float]:
        """When the server received each request for ``model_id``."""
        return [r.received_at for r in self.server.requests(model_id)]


OpenFleet = Callable[..., AbstractAsyncContextManager[Fleet]]


@pytest.fixture
async def open_fleet(
    server: FakeProviderServer, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[OpenFleet]:
    """Opens routers over ``server``; afterwards, the key must be in nothing they showed."""
    caplog.set_level(logging.DEBUG)
    fleets: list[Fleet] = []

    @asynccontextmanager
    async def opener(
        config: Config, *, breaker: BreakerConfig | None = None
    ) -> AsyncIterator[Fleet]:
        async with switchman.open_router(config, env=ENV, breaker=breaker) as router:
            fleet = Fleet(router=router, server=server, subscription=router.subscribe(buffer=10**5))
            fleets.append(fleet)
            try:
                yield fleet
            finally:
                fleet.shown.append(router.status())
        await fleet.drain()

    yield opener
    for fleet in fleets:  # a test that failed left its events unread
        await fleet.drain()
    texts = [repr(x) for f in fleets for x in (*f.results, *f.events, *f.shown)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.__dict__) for record in caplog.records]
    leaks = [_around(t, s) for t in texts for s in SECRETS if s in t]
    assert not leaks, f"the API key leaked: {leaks[:3]}"
    assert all(f.events for f in fleets), "no trace event was seen: the scan would prove nothing"


def _around(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 80) : at + len(secret) + 20]


def routes_to_fallback(behaviour: str, providers: Sequence[str]) -> dict[str, tuple[str, ...]]:
    return {f"route-{p}": (f"{p}/{behaviour}", FALLBACK) for p in providers}


def fleet_config(
    server: FakeProviderServer, behaviour: str, providers: Sequence[str] = PRIMARIES, **knobs: Any
) -> Config:
    """Each provider with ``behaviour`` (routed to ``FALLBACK``) and a healthy model."""
    models = [model(p, behaviour) for p in providers]
    models += [model(p, "healthy") for p in providers]
    models.append(model("deepseek", "healthy"))
    return http_fleet(server, models, routes=routes_to_fallback(behaviour, providers), **knobs)


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# -- healthy: every wire format and its quirks on the wire -------------------------------------

#: how each provider's body asks for MAX_TOKENS (dotted path into the JSON body)
MAX_TOKENS_FIELD = {
    "openai": "max_completion_tokens",
    "anthropic": "max_tokens",
    "gemini": "generationConfig.maxOutputTokens",
    "mistral": "max_tokens",
    "groq": "max_completion_tokens",
    "deepseek": "max_tokens",
    "xai": "max_tokens",
    "perplexity": "max_output_tokens",
    "ollama": "options.num_predict",
}
#: the header that carries the key, as the server recorded it (masked)
KEY_HEADER = {"anthropic": "x-api-key", "gemini": "x-goog-api-key"}


def dig(body: Any, path: str) -> Any:
    for part in path.split("."):
        body = body[part]
    return body


async def test_healthy_answers_whole_in_every_wire_format(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    providers = tuple(PROVIDERS)
    config = http_fleet(server, [model(p, "healthy") for p in providers])
    async with open_fleet(config) as fleet:
        for p in providers:
            alias = f"{p}/healthy"
            result = await fleet.call(alias)
            assert (result.status, result.model, result.provider) == ("complete", alias, p)
            assert result.answer == answer_of(alias)
            assert result.usage.output_tokens > 0 and result.cost_usd > 0
            if p == "perplexity":  # it says what it billed, its search fee included
                usage = result.usage
                billed = usage.input_tokens * 0.25e-6 + usage.output_tokens * 2.5e-6 + 0.005
                assert result.cost_usd == pytest.approx(billed)
            text, streamed = await fleet.stream(alias)
            assert streamed.status == "complete" and text == streamed.answer == answer_of(alias)
            first, second = server.requests(alias)
            assert first.outcome == second.outcome == "complete"
            assert dig(first.body, MAX_TOKENS_FIELD[p]) == MAX_TOKENS, p
            header = first.headers[KEY_HEADER.get(p, "authorization")]
            assert header in ("***", "Bearer ***"), (p, header)  # the key was sent, and masked
    body = {p: server.requests(f"{p}/healthy")[0].body for p in ("openai", "mistral", "groq")}
    assert body["openai"]["stream_options"] == {"include_usage": True}
    assert "stream_options" not in body["mistral"] and "stream_options" not in body["groq"]


async def test_temperature_and_top_p_together_reach_every_wire_format(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    """Claude's models refuse the two together (the fake says so, as Anthropic does): the
    temperature goes alone there, and every provider answers."""
    providers = tuple(PROVIDERS)
    config = http_fleet(server, [model(p, "healthy") for p in providers])
    sampled = attrs.evolve(
        ask("x"), params=Params(max_tokens=MAX_TOKENS, temperature=0.3, top_p=0.5)
    )
    async with open_fleet(config) as fleet:
        for p in providers:
            alias = f"{p}/healthy"
            with trio.fail_after(20):
                result = await fleet.router.call(attrs.evolve(sampled, model=alias))
            assert (result.status, result.model) == ("complete", alias), (p, result.errors)
    sent = server.requests("anthropic/healthy")[0].body
    assert sent["temperature"] == 0.3 and "top_p" not in sent


async def test_a_call_that_ends_rate_limited_says_how_long_the_provider_asked_to_wait(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    """The provider's Retry-After (1 s from the fake) reaches the result's error and the
    ``RateLimited`` a caller catches, without parsing a message."""
    config = http_fleet(server, [model("openai", "rate-limited")])
    async with open_fleet(config) as fleet:
        result = await fleet.call("openai/rate-limited")
    assert result.status == "failed"
    lead = result.errors[0]
    assert (lead.code, lead.provider, lead.status, lead.retry_after_s) == (
        "rate_limited",
        "openai",
        429,
        1.0,
    )
    with pytest.raises(switchman.RateLimited) as caught:
        result.raise_for_status()
    assert caught.value.retry_after == 1.0 and caught.value.result is result


async def test_a_reasoning_block_in_the_answers_text_is_taken_out(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    """``<think>...</think>`` before the answer, in its text (Groq's default for Qwen3,
    open reasoning models on Together, Ollama): the caller gets the answer, whole and
    streamed; the reasoning is billed as the output it is."""
    providers = ("openai", "groq", "mistral", "deepseek", "xai", "ollama")
    config = http_fleet(server, [model(p, "thinks-aloud") for p in providers])
    async with open_fleet(config) as fleet:
        for p in providers:
            alias = f"{p}/thinks-aloud"
            result = await fleet.call(alias)
            assert (result.status, result.finish_reason) == ("complete", "stop"), p
            assert result.answer == answer_of(alias), p
            text, streamed = await fleet.stream(alias)
            assert text == streamed.answer == answer_of(alias), p
            words = len(answer_of(alias).split())
            assert result.usage.output_tokens > words, p  # the reasoning is output too


async def test_an_answer_cut_at_max_tokens_says_length_in_every_wire_format(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    # each wire says it its own way (length, max_tokens, MAX_TOKENS, incomplete, done_reason)
    providers = tuple(PROVIDERS)
    config = http_fleet(server, [model(p, "healthy") for p in providers])
    short = attrs.evolve(ask("x"), params=Params(max_tokens=5))
    async with open_fleet(config) as fleet:
        for p in providers:
            alias = f"{p}/healthy"
            whole = await fleet.call(alias)
            with trio.fail_after(20):
                cut = await fleet.router.call(attrs.evolve(short, model=alias))
            assert whole.finish_reason == "stop", (p, whole.finish_reason)
            assert cut.status == "complete" and cut.finish_reason == "length", (p, cut)
            assert cut.answer == expected_answer(alias, PROMPT, 5), p


# -- every behaviour, on every provider at once ------------------------------------------------


@attrs.frozen(kw_only=True)
class Expect:
    """What one provider playing a behaviour must lead to."""

    #: who answers: "primary" or "fallback" (whole answers either way)
    answered_by: str
    #: the attempt outcomes in the trace, in order
    outcomes: tuple[str, ...]
    #: least time between two requests for the primary (retries only)
    min_gap: float = MIN_GAP_S
    #: the answer, when it is not the answerer's simulated one
    answer: str | None = None


#: providers whose 429 carries no retry hint (providers.md: no rate-limit headers, or none
#: documented): their rate-limited is like rate-limited-no-retry-after
NO_RETRY_HINT = ("mistral", "perplexity", "ollama", "deepseek")
#: providers without a refusal signal: a refusal is ordinary answer text
PLAIN_REFUSAL = ("ollama", "perplexity", "mistral", "groq", "xai", "together")


def expect(behaviour: str, provider: str) -> Expect:
    match behaviour:
        case "rate-limited" if provider in NO_RETRY_HINT:
            return Expect(answered_by="fallback", outcomes=("rate_limited", "success"))
        case "overloaded" if provider == "mistral":  # "capacity exceeded" is a 429
            return Expect(answered_by="fallback", outcomes=("rate_limited", "success"))
        case "context-length" if provider == "ollama":  # cuts the prompt to fit, answers
            return Expect(answered_by="primary", outcomes=("success",))
        case "rate-limited":  # the server says Retry-After: 1 (Gemini: in the body)
            return Expect(
                answered_by="fallback",
                outcomes=("rate_limited", "rate_limited", "success"),
                min_gap=1.0,
            )
        case "rate-limited-no-retry-after":
            return Expect(answered_by="fallback", outcomes=("rate_limited", "success"))
        case "error-once":
            return Expect(answered_by="primary", outcomes=("error", "success"))
        case "down" | "overloaded" | "reset" | "error-after-200":
            return Expect(answered_by="fallback", outcomes=("error", "error", "success"))
        case "silent":
            return Expect(answered_by="fallback", outcomes=("timeout", "success"))
        case "cut" | "stall" | "malformed":
            # an event that cannot be read may have carried text: the answer would have a
            # hole, so the attempt fails like a cut one
            return Expect(answered_by="fallback", outcomes=("error", "success"))
        case "no-terminator" if provider == "ollama":
            # Ollama's only end marker is the "done" line that carries the finish reason:
            # without it, a clean end of body cannot be told from a cut answer.
            return Expect(answered_by="fallback", outcomes=("error", "success"))
        case "no-terminator" | "healthy-latency-300":
            return Expect(answered_by="primary", outcomes=("success",))
        case "context-length":
            return Expect(answered_by="fallback", outcomes=("context_exceeded", "success"))
        case "not-found":  # the wire's own 404 for a model it does not serve: not retried
            return Expect(answered_by="fallback", outcomes=("error", "success"))
        case "refusal" if provider in PLAIN_REFUSAL:
            # these wire formats have no refusal signal: a refusal is ordinary text
            return Expect(answered_by="primary", outcomes=("success",), answer=REFUSAL_TEXT)
        case "refusal":
            outcome = "content_filtered" if provider == "gemini" else "refused"
            return Expect(answered_by="fallback", outcomes=(outcome, "success"))
    raise AssertionError(f"no expectation for {behaviour}")


BEHAVIOURS = (
    "rate-limited",
    "rate-limited-no-retry-after",
    "error-once",
    "down",
    "overloaded",
    "reset",
    "error-after-200",
    "silent",
    "cut",
    "stall",
    "malformed",
    "no-terminator",
    "context-length",
    "not-found",
    "refusal",
    "healthy-latency-300",
)
#: per behaviour, the call's own timeouts (ms)
TIMEOUTS = {"silent": {"soft_ms": 700}}


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
async def test_behaviour_on_every_provider(
    open_fleet: OpenFleet, server: FakeProviderServer, behaviour: str
) -> None:
    async with open_fleet(fleet_config(server, behaviour)) as fleet:
        results: dict[str, Result] = {}

        async def one(p: str) -> None:
            results[p] = await fleet.call(f"route-{p}", **TIMEOUTS.get(behaviour, {}))

        async with trio.open_nursery() as nursery:
            for p in PRIMARIES:
                nursery.start_soon(one, p)
        for p in PRIMARIES:
            check_behaviour(fleet, behaviour, p, results[p], expect(behaviour, p))
        # the router is healthy afterwards: each provider answers again
        async with trio.open_nursery() as nursery:
            for p in PRIMARIES:
                nursery.start_soon(check_answers_after, fleet, behaviour, p)


def check_behaviour(fleet: Fleet, behaviour: str, p: str, result: Result, want: Expect) -> None:
    primary = f"{p}/{behaviour}"
    where = f"{behaviour} on {p}"
    outcomes = tuple(a.outcome for a in result.trace.attempts)
    assert outcomes == want.outcomes, (where, outcomes, result.errors)
    answerer = primary if want.answered_by == "primary" else FALLBACK
    assert (result.status, result.model) == ("complete", answerer), (where, result.errors)
    assert result.answer == (want.answer or answer_of(answerer)), where  # whole, never cut
    seen = fleet.seen(primary)
    tries = sum(1 for a in result.trace.attempts if a.alias == primary)
    assert len(seen) == tries <= 2, (where, len(seen))  # no hammering
    assert all(g >= want.min_gap for g in gaps(seen)), (where, gaps(seen))
    if behaviour == "malformed":
        assert result.trace.attempts[0].malformed_events == 1, where
    if behaviour == "healthy-latency-300":
        assert result.ttft_ms is not None and result.ttft_ms >= 300, where
    if behaviour == "silent":  # abandoned at the attempt deadline, and not retried
        (record,) = fleet.server.requests(primary)
        assert record.outcome == "silent" and record.ended_at is not None
        # abandoned at the attempt's 0.7 s, as the router timed it (the server may get the
        # request a moment after the attempt began, on a loaded machine: it sees less)
        attempt = result.trace.attempts[0]
        assert 0.65 <= attempt.ended_at - attempt.started_at < 1.2, where
        assert record.ended_at - record.received_at < 1.2, where
        assert "deadline" in (result.trace.attempts[0].error or ""), where


async def check_answers_after(fleet: Fleet, behaviour: str, p: str) -> None:
    if behaviour.startswith("rate-limited"):
        # the model that said 429 is held back for its Retry-After: its route still answers
        result = await fleet.call(f"route-{p}")
        assert result.status == "complete", (behaviour, p, result.errors)
    # the provider's other model answers at once: a 429 (and its x-ratelimit-* counters
    # at 0) holds back the model it answered for, never its siblings
    result = await fleet.call(f"{p}/healthy")
    assert result.status == "complete", (behaviour, p, result.errors)
    assert result.answer == answer_of(f"{p}/healthy")
    assert [a.outcome for a in result.trace.attempts] == ["success"], (behaviour, p)
    if behaviour.startswith("rate-limited"):
        assert result.latency_ms < 900, (p, result.latency_ms)  # not the 1 s hold


# -- slow first token --------------------------------------------------------------------------


async def test_slow_first_token_waited_for_within_ttft_and_abandoned_past_it(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    providers = ("openai", "anthropic", "gemini", "ollama")
    models = [model(p, b) for p in providers for b in ("slow-ttft-300", "slow-ttft-1500")]
    routes = {
        f"{b}-{p}": (f"{p}/{b}", FALLBACK)
        for p in providers
        for b in ("slow-ttft-300", "slow-ttft-1500")
    }
    config = http_fleet(
        server, [*models, model("deepseek", "healthy")], routes=routes, stall_ms=2_000
    )
    async with open_fleet(config) as fleet:
        results: dict[str, Result] = {}

        async def one(route: str) -> None:
            results[route] = await fleet.call(route, ttft_ms=800)

        async with trio.open_nursery() as nursery:
            for route in routes:
                nursery.start_soon(one, route)
        for p in providers:
            patient = results[f"slow-ttft-300-{p}"]
            assert patient.model == f"{p}/slow-ttft-300", patient.errors
            assert patient.answer == answer_of(f"{p}/slow-ttft-300")
            assert patient.ttft_ms is not None and patient.ttft_ms >= 300
            late = results[f"slow-ttft-1500-{p}"]
            assert late.model == FALLBACK and late.answer == answer_of(FALLBACK)
            first = late.trace.attempts[0]
            assert first.outcome == "timeout" and "first token" in (first.error or "")
            assert 0.75 <= first.ended_at - first.started_at < 1.2, p
            (record,) = server.requests(f"{p}/slow-ttft-1500")  # abandoned, not retried
            assert record.outcome == "client_closed"


async def test_callers_ttft_above_the_stall_limit_is_honoured(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    config = http_fleet(server, [model("openai", "slow-ttft-800")], stall_ms=400)
    async with open_fleet(config) as fleet:
        result = await fleet.call("openai/slow-ttft-800", ttft_ms=1_500)
    assert result.status == "complete", result.errors


# -- streams: broken, stalled, malformed, unterminated -----------------------------------------


def delivered_before_break(model_id: str) -> str:
    """The text the fake server sends for ``model_id`` (cut or stall) before it breaks."""
    request = ProviderRequest(
        model_id=model_id,
        messages=(Message(role="user", content=PROMPT),),
        max_tokens=MAX_TOKENS,
    )
    plan = plan_from_name(model_id, request, now=0.0, state=BehaviourState())
    return "".join(plan.delivered)


@pytest.mark.parametrize("behaviour", ["cut", "stall"])
async def test_stream_broken_mid_answer_is_continued_by_the_fallback(
    open_fleet: OpenFleet, server: FakeProviderServer, behaviour: str
) -> None:
    providers = ("openai", "gemini", "ollama", "perplexity")
    models = [model(p, behaviour) for p in providers]
    # (DeepSeek takes a prefill, as the catalog's do, by its beta's prefix completion)
    models += [model("anthropic", "healthy"), model("deepseek", "healthy", supports_prefill=True)]
    models.append(model("mistral", "healthy"))
    routes = {
        f"{p}-{fb}": (f"{p}/{behaviour}", f"{fb}/healthy")
        for p in providers
        for fb in ("anthropic", "deepseek", "mistral")
    }
    async with open_fleet(http_fleet(server, models, routes=routes)) as fleet:
        for route in routes:
            p, fb = route.split("-")
            sent = delivered_before_break(f"{p}/{behaviour}")
            assert 0 < len(sent) < len(answer_of(f"{p}/{behaviour}"))
            text, result = await fleet.stream(route)
            assert result.status == "complete", (route, result.errors)
            assert result.model == f"{fb}/healthy"
            assert text == result.answer  # what the caller read is the answer
            continuation = fleet.server.requests(f"{fb}/healthy")[-1].body
            # it asks only for the room left, so the whole answer keeps to max_tokens
            asked = dig(continuation, MAX_TOKENS_FIELD[fb])
            assert asked == MAX_TOKENS - -(-len(sent) // 4), (route, asked)
            # the fallback carries the text on: its own answer's words after as many
            words = answer_of(f"{fb}/healthy").split()[len(sent.split()) :]
            carried_on = sent + ("" if sent[-1].isspace() else " ") + " ".join(words)
            if fb == "mistral":  # no prefill: asked in a user turn to continue it
                turns = continuation["messages"][-2:]
                assert turns == [
                    {"role": "assistant", "content": sent},
                    {"role": "user", "content": CONTINUE_PROMPT},
                ]
                assert result.answer == carried_on
                continue
            # prefill: the text sent so far, continued (DeepSeek's marked a prefix)
            prefilled = {"role": "assistant", "content": sent}
            if fb == "deepseek":
                prefilled["prefix"] = True
                assert fleet.server.requests(f"{fb}/healthy")[-1].path.endswith(
                    "/beta/chat/completions"
                )
            assert continuation["messages"][-1] == prefilled
            assert result.answer == carried_on
            assert len(fleet.seen(f"{p}/{behaviour}")) in (1, 2)  # never retried itself


async def test_a_continuation_restating_the_cut_texts_end_first_reads_as_one_answer(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    """A model asked in a user turn to go on often says the cut text's last words again
    first, a token or a few at a time: the repeat is dropped (it was dropped only when
    the continuation's first chunk held 20 characters of it, so the caller read it twice)."""
    providers = ("openai", "gemini", "mistral")
    models = [model(p, "cut") for p in providers] + [model("deepseek", "restates")]
    routes = {p: (f"{p}/cut", "deepseek/restates") for p in providers}
    async with open_fleet(http_fleet(server, models, routes=routes)) as fleet:
        for route in routes:
            sent = delivered_before_break(f"{route}/cut")
            text, result = await fleet.stream(route)
            assert result.status == "complete", (route, result.errors)
            words = answer_of("deepseek/restates").split()[len(sent.split()) :]
            assert text == result.answer == sent + " " + " ".join(words), route
            # it did say them again, in chunks of two words (each under 20 characters)
            request = fleet.server.requests("deepseek/restates")[-1]
            asked = ProviderRequest(
                model_id="deepseek/restates",
                messages=tuple(Message(**m) for m in request.body["messages"]),
                max_tokens=MAX_TOKENS,
            )
            plan = plan_from_name("deepseek/restates", asked, now=0.0, state=BehaviourState())
            restated = " ".join(sent.split()[-RESTATED_WORDS:])
            assert "".join(plan.delivered).startswith(restated)
            assert all(len(chunk) < 20 for chunk in plan.chunks[:3])


async def test_stream_broken_with_nothing_to_continue_ends_with_the_real_cause(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    config = http_fleet(server, [model("openai", "cut"), model("openai", "healthy")])
    async with open_fleet(config) as fleet:
        text, result = await fleet.stream("openai/cut")
        sent = delivered_before_break("openai/cut")
        assert result.status == "failed" and text == result.answer
        # all of it but what the redactor held back where it broke (the word arriving)
        assert sent.startswith(text) and 0 < len(sent) - len(text) <= 96
        lead = result.errors[0]
        assert "no model could continue" in lead.message
        assert "connection lost after output began" in lead.message
        assert lead.provider == "openai"
        assert len(fleet.seen("openai/cut")) == 1
        after = await fleet.call("openai/healthy")
        assert after.status == "complete"


async def test_caller_leaving_a_stream_early_closes_the_provider_connection_at_once(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    config = http_fleet(
        server,
        [model("anthropic", "stall"), model("anthropic", "healthy")],
        stall_ms=5_000,
        default_ttft_ms=5_000,
    )
    async with open_fleet(config) as fleet:
        with trio.fail_after(2):  # far sooner than the 5 s stall limit
            async with fleet.router.stream(ask("anthropic/stall")) as replies:
                async for _ in replies:
                    break  # the caller goes away after the first piece
            record = await server.wait_ended("anthropic/stall")
        assert record.ended_at is not None and record.ended_at - record.received_at < 1.0
        await trio.sleep(0.05)  # the attempt task's clean-up reaches the board
        (anthropic,) = fleet.router.status().providers
        assert anthropic.in_flight == 0
        after = await fleet.call("anthropic/healthy")
        assert after.status == "complete"
    finished = [e.data for e in fleet.events if e.type == "attempt.finished"]
    assert finished[0]["alias"] == "anthropic/stall" and finished[0]["outcome"] == "cancelled"
    assert [e.type for e in fleet.events].count("call.failed") == 1


async def test_call_deadline_mid_attempt_is_a_timeout_that_names_the_attempt(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    config = fleet_config(server, "silent", ("openai",))
    async with open_fleet(config) as fleet:
        # the model alone: with a fallback after it, its first-token wait would be capped at
        # half the time left, leaving the fallback the rest (tested in test_router)
        result = await fleet.call("openai/silent", hard_ms=600)
        assert result.status == "failed" and result.errors[0].code == "timeout"
        (attempt,) = result.trace.attempts  # the attempt the deadline cut is in the trace
        assert (attempt.alias, attempt.outcome) == ("openai/silent", "timeout")
        assert 0.55 <= attempt.ended_at - attempt.started_at < 1.0
        # the upstream request was abandoned at the deadline (the server sees the close a
        # moment after the call has answered, once the provider actor has cancelled it)
        with trio.fail_after(1.0):
            record = await server.wait_ended("openai/silent")
        assert record.ended_at is not None and record.ended_at - record.received_at < 1.0
        assert len(server.requests("openai/silent")) == 1
        after = await fleet.call("openai/healthy")
        assert after.status == "complete"


async def test_a_silent_model_leaves_its_fallback_time_within_the_calls_deadline(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    async with open_fleet(fleet_config(server, "silent", ("openai",))) as fleet:
        start = trio.current_time()
        result = await fleet.call("route-openai", hard_ms=1_500)
        assert result.status == "complete" and result.model == FALLBACK, result.errors
        assert [a.outcome for a in result.trace.attempts] == ["timeout", "success"]
        assert trio.current_time() - start < 1.5


async def test_stream_with_no_terminator_delivers_the_whole_answer(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    providers = tuple(p for p in PRIMARIES if p != "ollama")
    models = [model(p, "no-terminator") for p in providers]
    config = http_fleet(server, models, stall_ms=2_000, default_ttft_ms=2_000)
    async with open_fleet(config) as fleet:
        for p in providers:
            alias = f"{p}/no-terminator"
            with trio.fail_after(1.5):  # finalised at once, not at the 2 s stall limit
                text, result = await fleet.stream(alias)
            assert result.status == "complete" and result.model == alias, (p, result.errors)
            assert text == result.answer == answer_of(alias), p
            (attempt,) = result.trace.attempts
            assert attempt.malformed_events == 0


async def test_a_stream_with_an_unreadable_event_is_never_complete(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    """Alone (no fallback), the model's stream fails at the event it could not read: what
    went out before stays what the caller read, and the result says the answer is not whole."""
    models = [model(p, "malformed") for p in PRIMARIES]
    config = http_fleet(server, models, stall_ms=2_000, default_ttft_ms=2_000)
    async with open_fleet(config) as fleet:
        for p in PRIMARIES:
            alias = f"{p}/malformed"
            with trio.fail_after(1.5):
                text, result = await fleet.stream(alias)
            assert result.status == "failed", (p, result.answer)
            assert text == result.answer and answer_of(alias).startswith(text), p
            attempt = result.trace.attempts[0]
            assert attempt.malformed_events == 1 and attempt.outcome == "error", p
            assert attempt.error is not None and "could not read" in attempt.error, p


# -- content policy: rejected requests are not routed around by default --------------------------


async def test_content_policy_rejection_reaches_the_caller_unless_the_route_opts_in(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    providers = ("openai", "anthropic", "mistral", "perplexity", "ollama")
    models = [model(p, "content-policy") for p in providers] + [model("deepseek", "healthy")]
    routes = routes_to_fallback("content-policy", providers)
    routes.update(
        {f"opt-in-{p}": chain for p, chain in zip(providers, routes.values(), strict=True)}
    )
    config = http_fleet(
        server, models, routes=routes, content_fallback=[f"opt-in-{p}" for p in providers]
    )
    async with open_fleet(config) as fleet:
        for p in providers:
            primary = f"{p}/content-policy"
            result = await fleet.call(f"route-{p}")
            assert result.status == "failed", p
            (error,) = result.errors
            assert (error.code, error.provider, error.status) == ("refused", p, 400)
            reason = fleet.server.requests(primary)[0]
            assert reason.status == 400 and reason.outcome == "content_policy"
            words = ("polic", "safety", "moderation")
            assert any(w in error.message for w in words), error.message
            assert [a.outcome for a in result.trace.attempts] == ["content_filtered"]
            assert not fleet.server.requests(FALLBACK)  # not routed around
            opted = await fleet.call(f"opt-in-{p}")
            assert opted.model == FALLBACK and opted.answer == answer_of(FALLBACK)
            assert len(fleet.seen(primary)) == 2  # one per call: never retried
            fleet.server.clear()


async def test_gemini_blocked_prompt_is_not_routed_around(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    config = fleet_config(server, "content-policy", ("gemini",))
    async with open_fleet(config) as fleet:
        result = await fleet.call("route-gemini")
    assert result.status == "failed" and not server.requests(FALLBACK)


# -- a flapping primary --------------------------------------------------------------------------


async def test_flapping_primary_is_served_by_its_fallback_then_wins_its_traffic_back(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    primary = "openai/flapping-2"  # 503 for 2 s from its first request, then healthy
    config = http_fleet(
        server,
        [model("openai", "flapping-2"), model("anthropic", "healthy")],
        routes={"r": (primary, "anthropic/healthy")},
    )
    breaker = BreakerConfig(consecutive_failures=2, cooldown_s=0.5, cooldown_factor=2.0)
    async with open_fleet(config, breaker=breaker) as fleet:
        start = trio.current_time()
        calls: list[tuple[float, Result]] = []
        while trio.current_time() - start < 4.0:
            began = trio.current_time()
            calls.append((began, await fleet.call("r")))
            await trio.sleep(0.05)
    assert all(r.status == "complete" for _, r in calls)
    requests = server.requests(primary)
    down = [r for r in requests if r.status == 503]
    up = [r for r in requests if r.status == 200]
    assert down and up and all(r.received_at - start < 2.0 for r in down)
    recovered = up[0].received_at
    # while it was down: the fallback answered, and whole
    during = [r for t, r in calls if t < recovered - 0.01]
    assert during and all(r.model == "anthropic/healthy" for r in during)
    assert all(r.answer == answer_of("anthropic/healthy") for r in during)
    # the first call retried once; then the breaker let one probe through per cool-down
    first, second, *probes = [r.received_at for r in [*down, up[0]]]
    assert second - first >= MIN_GAP_S
    cooldown = 0.5  # and it doubles on each failed probe
    for gap in gaps([second, *probes]):
        assert gap >= cooldown * 0.95, gaps([second, *probes])
        cooldown *= 2.0
    # a failed probe does not hold its call up: the call falls back at once
    assert all(r.latency_ms < 500 for _, r in calls[1:]), [r.latency_ms for _, r in calls]
    # recovered: it won its traffic back, within one cool-down of coming up
    assert recovered - (start + 2.0) < 2.0
    after = [r for t, r in calls if t >= recovered]
    assert after and all(r.model == primary for r in after)
    assert all(r.answer == answer_of(primary) for r in after)
    changes = [e.data for e in fleet.events if e.type == "breaker.changed"]
    assert changes[0]["to"] == "open" and changes[-1]["to"] == "closed"


# -- a model the provider does not serve ----------------------------------------------------------


async def test_a_model_the_provider_does_not_serve_is_held_out_with_its_404_as_the_reason(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    async with open_fleet(fleet_config(server, "not-found")) as fleet:
        for p in PRIMARIES:
            first = await fleet.call(f"route-{p}")
            assert first.model == FALLBACK and first.answer == answer_of(FALLBACK), p
            # Perplexity and Mistral say it with a 400 invalid_model
            want = 400 if p in ("perplexity", "mistral") else 404
            assert first.trace.attempts[0].status_code == want, p
        status = {m.alias: m for s in fleet.router.status().providers for m in s.models}
        for p in PRIMARIES:
            missing = status[f"{p}/not-found"]
            assert (missing.held_out or "").startswith(f"not served by {p}: "), missing
            assert 290 < missing.held_for_s <= 300 and missing.breaker == "closed", p
            assert status[f"{p}/healthy"].held_out is None, p  # its siblings are not held
            # held out: the next call goes straight to the fallback, saying why
            again = await fleet.call(f"route-{p}")
            assert [a.alias for a in again.trace.attempts] == [FALLBACK], p
            assert len(fleet.seen(f"{p}/not-found")) == 1, p
            excluded = dict((e.alias, e.reason) for e in again.trace.eligibility.excluded)
            assert excluded[f"{p}/not-found"].startswith(f"not served by {p}: "), p
        direct = await fleet.call("ollama/not-found")
        assert direct.status == "failed" and "try pulling it first" in direct.errors[0].message


# -- a bug inside an attempt ----------------------------------------------------------------------


async def test_a_bug_building_one_request_fails_that_attempt_not_the_provider_actor(
    open_fleet: OpenFleet,
    server: FakeProviderServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from switchman.adapters._openai import OpenAIChatAdapter

    build = OpenAIChatAdapter.build_request

    def buggy(self: OpenAIChatAdapter, request: ProviderRequest) -> Any:
        if request.model_id == "openai/healthy":
            raise UnicodeEncodeError("utf-8", "hi \ud800", 3, 4, "surrogates not allowed")
        return build(self, request)

    monkeypatch.setattr(OpenAIChatAdapter, "build_request", buggy)
    config = http_fleet(
        server,
        [
            model("openai", "healthy"),
            model("openai", "healthy-latency-50"),
            model("deepseek", "healthy"),
        ],
        routes={"route": ("openai/healthy", FALLBACK)},
    )
    async with open_fleet(config) as fleet:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:  # many at once, as the audit sent them
                for _ in range(12):
                    nursery.start_soon(fleet.call, "route")
        for result in fleet.results:
            assert result.model == FALLBACK, (result.errors, result.trace.attempts)
            assert result.answer == answer_of(FALLBACK)
            failed = result.trace.attempts[0]
            assert failed.outcome == "error" and "UnicodeEncodeError" in (failed.error or "")
        # the same actor still serves its other model: it never crashed
        other = await fleet.call("openai/healthy-latency-50")
        assert other.status == "complete" and other.provider == "openai"
        assert not [r for r in caplog.records if "crashed" in r.getMessage()]
        (openai,) = [p for p in fleet.router.status().providers if p.name == "openai"]
        assert [m.breaker for m in openai.models] == ["closed", "closed"]  # not its fault


# -- a bad key ------------------------------------------------------------------------------------


async def test_bad_key_is_an_auth_error_not_retried_and_marks_the_provider_misconfigured(
    open_fleet: OpenFleet, server: FakeProviderServer, nursery: trio.Nursery
) -> None:
    rejecter: KeyRejecter = await nursery.start(serve_key_rejecter)
    bad = tuple(BAD_KEY_REPLIES)  # openai 401, anthropic 401, gemini 400, xai 400
    config = http_fleet(
        server,
        [*(model(p, "healthy") for p in bad), model("deepseek", "healthy")],
        routes=routes_to_fallback("healthy", bad),
        base_urls={p: f"{rejecter.base_url}/{p}" for p in bad},
    )
    async with open_fleet(config) as fleet:
        for p in bad:
            result = await fleet.call(f"route-{p}")
            assert result.model == FALLBACK and result.answer == answer_of(FALLBACK), p
            (failed, _) = result.trace.attempts
            assert failed.outcome == "error" and failed.status_code == BAD_KEY_REPLIES[p][0]
            assert rejecter.seen(p) == 1, p  # not retried
        status = {s.name: s for s in fleet.router.status().providers}
        for p in bad:
            assert (status[p].disabled_reason or "").startswith("auth error"), status[p]
            assert status[p].models[0].breaker == "closed", p  # not tripped
        direct = await fleet.call("xai/healthy")
        assert direct.status == "failed"
        assert "held out: auth error" in direct.errors[0].message
        for p in bad:  # kept out of routing now: no more requests with the bad key
            again = await fleet.call(f"route-{p}")
            assert again.model == FALLBACK and rejecter.seen(p) == 1
    assert status["deepseek"].disabled_reason is None


async def test_exhausted_quota_is_not_retried_and_holds_the_provider_out(
    open_fleet: OpenFleet,
    server: FakeProviderServer,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rejecter: KeyRejecter = await nursery.start(serve_key_rejecter)
    billed = ("openai", "anthropic")  # OpenAI 429 insufficient_quota, Anthropic 402
    config = http_fleet(
        server,
        [*(model(p, "healthy") for p in billed), model("deepseek", "healthy")],
        routes=routes_to_fallback("healthy", billed),
        base_urls={p: f"{rejecter.base_url}/{p}-quota" for p in billed},
    )
    async with open_fleet(config) as fleet:
        for p in billed:
            result = await fleet.call(f"route-{p}")
            assert result.model == FALLBACK and result.answer == answer_of(FALLBACK), p
            (failed, _) = result.trace.attempts
            assert failed.outcome == "error", p  # not "rate_limited": a 429 that is billing
            assert failed.status_code == QUOTA_REPLIES[f"{p}-quota"][0], p
            assert rejecter.seen(f"{p}-quota") == 1, p  # not retried, not waited for
        status = {s.name: s for s in fleet.router.status().providers}
        for p in billed:
            assert (status[p].disabled_reason or "").startswith("quota exhausted"), status[p]
            again = await fleet.call(f"route-{p}")  # held out: no more requests to it
            assert again.model == FALLBACK and rejecter.seen(f"{p}-quota") == 1, p
            direct = await fleet.call(f"{p}/healthy")
            assert "held out: quota exhausted" in direct.errors[0].message, p
            told = [r for r in caplog.records if f"provider {p} held out for 300 s" in r.message]
            assert len(told) == 1 and told[0].levelname == "WARNING", p  # once, not per call


async def test_bad_key_alone_fails_cleanly_naming_the_cause(
    open_fleet: OpenFleet, server: FakeProviderServer, nursery: trio.Nursery
) -> None:
    rejecter: KeyRejecter = await nursery.start(serve_key_rejecter)
    config = http_fleet(
        server,
        [model("openai", "healthy"), model("xai", "healthy")],
        base_urls={"openai": f"{rejecter.base_url}/openai", "xai": f"{rejecter.base_url}/xai"},
    )
    async with open_fleet(config) as fleet:
        for p, status in (("openai", 401), ("xai", 400)):
            result = await fleet.call(f"{p}/healthy")
            assert result.status == "failed"
            (error,) = result.errors
            assert (error.code, error.provider, error.status) == ("permission_denied", p, status)
            assert "API key" in error.message
            assert rejecter.seen(p) == 1


# -- Ollama discovery ------------------------------------------------------------------------------


def _ollama_config(base_url: str, **table: Any) -> Config:
    return config_from_dict({"providers": {"ollama": {"base_url": base_url, **table}}}, env={})


async def test_discovery_adds_installed_models_and_routes_local_to_them(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    before = config_from_dict({}, env={})  # no key anywhere: the simulator fleet
    assert before.providers["ollama"].disabled_reason == "not detected"
    assert before.simulated
    config = attrs.evolve(
        before,
        providers={
            **before.providers,
            "ollama": attrs.evolve(before.providers["ollama"], base_url=server.base_url),
        },
    )
    with trio.fail_after(2):
        found = await discover_local_models(config)
    assert found.providers["ollama"].disabled_reason is None and not found.simulated
    local = found.models["local/healthy"]
    assert (local.provider, local.model_id, local.trust_tier) == (
        "ollama",
        "healthy:latest",
        "untrusted",
    )
    assert local.capabilities == ("local",) and local.cost(1000, 1000) == 0.0
    assert local.context_window == DEFAULT_CONTEXT_WINDOW and local.supports_seed
    chain = found.routes["local"].chain
    assert chain[0] == "local/healthy" and "local/flapping-5" in chain
    assert all(found.models[a].provider == "ollama" for a in chain)
    # catalog models the server has not installed are switched off
    assert not found.models["ollama/llama3.2"].enabled
    async with open_fleet(found) as fleet:
        result = await fleet.call("local")
        assert (result.status, result.model) == ("complete", "local/healthy"), result.errors
        assert result.answer == answer_of("healthy:latest")
        assert server.requests("healthy:latest")[0].wire_format == "ollama"
        # Ollama's own names for it, tagged or not, as Ollama reads them
        for name in ("healthy:latest", "healthy"):
            result = await fleet.call(name)
            assert (result.status, result.model) == ("complete", "local/healthy"), name


async def test_discovery_keeps_what_the_catalog_knows_of_an_installed_model() -> None:
    from switchman.catalog._discovery import with_local_models

    config = _ollama_config("http://127.0.0.1:9")
    found = with_local_models(config, ["llama3.2:latest", "mystery:7b"])
    known = found.models["local/llama3.2"]
    # the catalog's id: one model upstream with ollama/llama3.2
    assert known.model_id == "llama3.2" and known.context_window == 131072
    assert found.models["ollama/llama3.2"].enabled  # installed: still usable by its alias
    assert found.models["local/mystery:7b"].context_window == DEFAULT_CONTEXT_WINDOW
    assert found.routes["local"].chain == ("local/llama3.2", "local/mystery:7b")


async def test_an_ollama_the_file_configures_has_the_catalogs_models_it_lacks_switched_off() -> (
    None
):
    """``[providers.ollama]`` in the file: the catalog's Ollama models the server has not
    pulled are switched off as for a detected one (each was a 404 on first use, then held
    out); a model the file wrote itself is kept as written."""
    from switchman.catalog._discovery import with_local_models

    config = config_from_dict(
        {
            "providers": {"ollama": {"base_url": "http://127.0.0.1:9"}},
            "models": [{"alias": "mine", "provider": "ollama", "model_id": "mine:7b"}],
        },
        env={},
    )
    assert config.providers["ollama"].disabled_reason is None  # (configured: not detected)
    found = with_local_models(config, ["llama3.2:latest"])
    assert found.models["ollama/llama3.2"].enabled
    lacking = [a for a, m in config.models.items() if a.startswith("ollama/")]
    assert len(lacking) > 1
    assert [a for a in lacking if found.models[a].enabled] == ["ollama/llama3.2"]
    assert found.models["mine"].enabled


async def test_an_installed_catalog_model_is_one_model_under_both_its_names(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    """Ollama has "healthy:latest" installed and the configuration knows "healthy": the
    discovered local/healthy and ollama/healthy are one model upstream. Both names and
    Ollama's own reach it, and what it learns under one name shows under the other."""
    config = config_from_dict(
        {
            "providers": {"ollama": {"base_url": server.base_url}},
            "models": [{"alias": "ollama/healthy", "provider": "ollama", "model_id": "healthy"}],
        },
        env={},
    )
    with trio.fail_after(2):
        found = await discover_local_models(config)
    assert found.models["local/healthy"].model_id == "healthy"
    async with open_fleet(found) as fleet:
        for name in ("local/healthy", "healthy:latest", "healthy"):
            result = await fleet.call(name)
            assert result.status == "complete", result.errors
            assert result.model == (
                "local/healthy" if name == "local/healthy" else "ollama/healthy"
            )
        assert len(server.requests("healthy")) == 3  # under the id Ollama serves it by
        await trio.testing.wait_all_tasks_blocked()
        models = {m.alias: m for p in fleet.router.status().providers for m in p.models}
        learned = models["ollama/healthy"].stats["*"]
        assert learned["n"] == pytest.approx(3.0, abs=0.1) and learned["success_rate"] == 1.0
        assert models["local/healthy"].stats == models["ollama/healthy"].stats


@contextmanager
def _closed_port() -> Iterator[int]:
    """A port nothing listens on, for the block: bound but never listening, so a
    connection to it is refused, and no other socket can take it meanwhile (one closed
    at once could be handed to another test's listener before it was used)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


async def test_discovery_leaves_the_config_alone_when_nothing_answers(
    nursery: trio.Nursery,
) -> None:
    before = config_from_dict({}, env={})
    with _closed_port() as closed_port:
        closed = attrs.evolve(
            before,
            providers={
                **before.providers,
                "ollama": attrs.evolve(
                    before.providers["ollama"], base_url=f"http://127.0.0.1:{closed_port}"
                ),
            },
        )
        with trio.fail_after(2):
            assert await discover_local_models(closed) is closed
    # a server that accepts and never answers costs at most the discovery timeout
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, _hold_open, listeners)
    silent = attrs.evolve(
        closed,
        providers={
            **closed.providers,
            "ollama": attrs.evolve(closed.providers["ollama"], base_url=f"http://127.0.0.1:{port}"),
        },
    )
    began = trio.current_time()
    with trio.fail_after(2):
        assert await discover_local_models(silent, timeout_s=0.3) is silent
    assert trio.current_time() - began < 0.6


async def _hold_open(stream: trio.SocketStream) -> None:
    async with stream:
        await trio.sleep_forever()


async def test_discovery_respects_a_provider_disabled_in_the_configuration(
    server: FakeProviderServer,
) -> None:
    config = _ollama_config(server.base_url, enabled=False)
    assert await discover_local_models(config) is config
    assert not server.requests()
    without = attrs.evolve(
        config, providers={k: v for k, v in config.providers.items() if k != "ollama"}
    )
    assert await discover_local_models(without) is without


async def test_discovery_with_a_given_client(server: FakeProviderServer) -> None:
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient(timeout=1.0))
        return made[-1]

    found = await discover_local_models(_ollama_config(server.base_url), client_factory=factory)
    assert "local/healthy" in found.models
    assert len(made) == 1 and made[0].is_closed
    listed = server.requests()
    assert [(r.method, r.path, r.outcome) for r in listed] == [("GET", "/api/tags", "listed")]


async def test_a_stop_sequence_ends_the_answer_over_every_wire_that_takes_one(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    providers = ("openai", "anthropic", "gemini", "mistral", "groq", "deepseek", "ollama")
    config = http_fleet(server, [model(p, "healthy") for p in providers])
    async with open_fleet(config) as fleet:
        for p in providers:
            alias = f"{p}/healthy"
            call = attrs.evolve(ask(alias), params=Params(max_tokens=MAX_TOKENS, stop=(" about",)))
            with trio.fail_after(20):
                result = await fleet.router.call(call)
            assert result.status == "complete", (p, result.errors)
            assert result.answer == f"Simulated answer from {alias}", p
            assert result.finish_reason == "stop", p


@pytest.mark.parametrize(
    "provider,thinker,prices,limit",
    [
        ("openai", "gpt-5.4-mini", {}, 0.0006),  # reasoning inside completion_tokens
        # reasoning billed outside completion_tokens; the cost is the ticks the fake server
        # reports, which it counts at $3 / $15 a million: the model is priced so
        ("xai", "grok-4.3", {"input_per_mtok": 3.0, "output_per_mtok": 15.0}, 0.003),
        ("gemini", "gemini-3.8-flash", {}, 0.0006),  # thoughtsTokenCount beside candidates
    ],
)
async def test_a_thinking_models_bill_stays_within_what_was_reserved(
    open_fleet: OpenFleet,
    server: FakeProviderServer,
    provider: str,
    thinker: str,
    prices: dict[str, float],
    limit: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # its reasoning is billed as output, and counts against the request's output limit
    # with the answer: the reservation (prompt and max_tokens) bounds the bill, so a
    # budget of a few calls is never overspent
    config = attrs.evolve(
        http_fleet(server, [model(provider, thinker, model_id=thinker, **prices)]),
        budgets=BudgetsConfig(global_daily_usd=limit),
    )
    async with open_fleet(config) as fleet:
        tight = attrs.evolve(ask(f"{provider}/{thinker}"), params=Params(max_tokens=60))
        results: list[Result] = []
        for _ in range(12):  # an answer of about 40 words, and reasoning that wants 85 more
            with trio.fail_after(20):
                results.append(await fleet.router.call(tight))
        fleet.results.extend(results)
        assert len(server.requests(thinker)) == len([r for r in results if r.model])
        spent = await fleet.router.spend("global")
    answered = [r for r in results if r.status == "complete"]
    assert answered and len(answered) < len(results)  # the budget ran out
    for r in answered:
        assert r.usage.output_tokens > len(r.answer.split())  # reasoning was billed
        assert r.trace.budget.settled_usd <= r.trace.budget.reserved_usd + 1e-12
    assert spent["day"] <= limit + 1e-12
    assert "more than the" not in caplog.text  # (the router says so when a bill overruns)
    assert spent["day"] == pytest.approx(sum(r.cost_usd for r in answered))


async def test_a_stream_cut_after_output_began_is_billed_to_the_budget(
    open_fleet: OpenFleet, server: FakeProviderServer
) -> None:
    # the provider generated what it sent before the connection broke, and bills it: the
    # budget counts it (the result's cost stays the answering attempt's own)
    config = attrs.evolve(
        http_fleet(
            server,
            [model("openai", "cut"), model("openai", "healthy")],
            routes={"r": ("openai/cut", "openai/healthy")},
        ),
        budgets=BudgetsConfig(global_daily_usd=1.0),
    )
    async with open_fleet(config) as fleet:
        result = await fleet.call("r")
        spent = await fleet.router.spend("global")
    assert result.status == "complete" and result.model == "openai/healthy"
    cut, answered = result.trace.attempts
    assert cut.outcome == "error" and cut.usage is not None and cut.cost_usd > 0
    assert 0 < cut.usage.output_tokens <= 200
    # the result: what the call cost, the answer and the attempt cut short
    assert result.cost_usd == pytest.approx(answered.cost_usd + cut.cost_usd)
    assert result.trace.budget.settled_usd == pytest.approx(result.cost_usd)
    assert spent["day"] == pytest.approx(result.cost_usd)
