"""OpenAI-compatible wire formats: Chat Completions, and the Responses format.

``OpenAIChatAdapter`` speaks ``POST {base}/chat/completions`` for OpenAI, xAI,
Mistral, Groq, Together, DeepSeek and any other OpenAI-compatible server, with
each provider's quirks in a ``ChatFlavor`` chosen by provider name.

``OpenAIResponsesAdapter`` speaks the Responses format (``POST {base}/v1/responses``).
Perplexity retired Sonar Chat Completions on 2026-09-27; its current API, the
Agent API, is served in this format, so Perplexity uses this adapter.

Both are pure: request building and byte parsing, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import attrs

from switchman._call import Message
from switchman._errors import ProviderError, Refused, UpstreamError
from switchman._result import Usage
from switchman.adapters._base import (
    Completion,
    HttpRequest,
    Malformed,
    ProviderRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    alternating,
)
from switchman.adapters._flavors import ChatFlavor
from switchman.adapters._sse import (
    SseDecoder,
    SseEvent,
    after_the_end,
    bad_reply,
    broken,
    collect,
    count,
    detailed_usage,
    first,
    load_json,
    map_error,
    not_json,
    obj,
    stream_error,
    string,
)
from switchman.adapters._think import ThinkBlock, without_think

#: finish reasons that mean the provider failed to produce the answer
_FAILED_FINISH: Final = frozenset({"insufficient_system_resource", "error"})


def _headers(api_key: str | None, stream: bool, extra: Mapping[str, str]) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    headers.update(extra)
    return headers


def _chat_usage(data: Any, flavor: ChatFlavor) -> Usage:
    """Usage as billed: ``completion_tokens``, plus the reasoning tokens where the
    provider counts them outside it (xAI: ``completion_tokens_details.reasoning_tokens``,
    or ``total - prompt - completion`` when the details are missing).

    Of it, the reasoning (``completion_tokens_details.reasoning_tokens``) and the prompt
    tokens read from cache: ``prompt_tokens_details.cached_tokens``, DeepSeek's
    ``prompt_cache_hit_tokens`` (which it bills at its cache-hit price)."""
    usage = obj(data)
    prompt = count(usage.get("prompt_tokens"))
    completion = count(usage.get("completion_tokens"))
    details = obj(usage.get("completion_tokens_details"))
    reasoning = count(details.get("reasoning_tokens"))
    output = completion
    if flavor.completion_excludes_reasoning:
        if "reasoning_tokens" in details:
            output += reasoning
        elif "total_tokens" in usage:
            output = max(output, count(usage.get("total_tokens")) - prompt)
            reasoning = output - completion
    cached = obj(usage.get("prompt_tokens_details")).get("cached_tokens")
    if flavor.cache_hit_tokens and "prompt_cache_hit_tokens" in usage:
        cached = usage.get("prompt_cache_hit_tokens")
    return detailed_usage(prompt, output, cached, reasoning)


#: USD per xAI cost tick (providers.md: 10,000,000,000 ticks a dollar)
_USD_PER_TICK: Final = 1e-10
#: a reported cost is kept below this many ticks (10**20 dollars) before it is a float: one
#: of 400 digits is still the provider's (garbage) word, held where the attempt is billed
_MOST_TICKS: Final = 10**30
#: searches counted at the most from one answer's report (the bill is held anyway)
_MOST_SEARCHES: Final = 10**6


def _ticks_cost(usage: Any) -> float | None:
    """xAI's ``usage.cost_in_usd_ticks`` in USD; None when absent or not a count."""
    ticks = obj(usage).get("cost_in_usd_ticks")
    if isinstance(ticks, bool) or not isinstance(ticks, int | float):
        return None
    # any finite count is the bill as reported: one no request could make is held to the
    # model's most, with a warning, where the attempt is billed (a NaN fails this too)
    if not 0 <= ticks < math.inf:  # (a NaN fails this too)
        return None
    return min(ticks, _MOST_TICKS) * _USD_PER_TICK


def _billed_cached(usage: Usage, flavor: ChatFlavor) -> int:
    """Of ``usage``'s input, what is billed at the model's cached-input price: the cache
    hits of a provider that bills them apart (DeepSeek), the same count ``usage`` reports."""
    return usage.cached_input_tokens if flavor.cache_hit_tokens else 0


def _billed(error: ProviderError, usage: Any, flavor: ChatFlavor) -> ProviderError:
    """``error`` carrying what its response's ``usage`` says the provider billed (a refusal
    is billed like an answer: the prompt, and the refusal's words); left unbilled when
    the response reported no usage, or none of it counted."""
    if isinstance(usage, dict):
        tokens = _chat_usage(usage, flavor)
        cost = _ticks_cost(usage) if flavor.cost_in_ticks else None
        if tokens.input_tokens or tokens.output_tokens or cost:
            error.billed = (tokens.input_tokens, tokens.output_tokens)
            error.billed_cost_usd = cost
            error.billed_cached = _billed_cached(tokens, flavor)
    return error


def _content_text(content: Any) -> str:
    """Message content as text: a string, or (Mistral reasoning models) a list of chunks.

    Reasoning never counts as answer text: DeepSeek's ``reasoning_content``, Groq's
    ``reasoning`` and Mistral's ``thinking`` chunks are left out.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            c["text"]
            for c in content
            if isinstance(c, dict) and c.get("type") == "text" and isinstance(c.get("text"), str)
        )
    return ""


def _systems_first(turns: tuple[Message, ...]) -> tuple[Message, ...]:
    """The conversation with its system turns as one at its start, when one comes after
    another role's (joined by a blank line, as Anthropic's top-level ``system`` is)."""
    roles = [m.role for m in turns]
    talk_from = next((i for i, role in enumerate(roles) if role != "system"), len(roles))
    if "system" not in roles[talk_from:]:
        return turns
    system = "\n\n".join(m.content for m in turns if m.role == "system")
    return (Message(role="system", content=system), *(m for m in turns if m.role != "system"))


@attrs.frozen(kw_only=True)
class OpenAIChatAdapter:
    """Chat Completions for one provider; ``api_key`` is never shown in a repr or error."""

    provider: str
    base_url: str
    api_key: str | None = attrs.field(default=None, repr=False)
    flavor: ChatFlavor = attrs.field(factory=ChatFlavor)
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)

    def build_request(self, request: ProviderRequest) -> HttpRequest:
        flavor = self.flavor
        turns = _systems_first(request.messages) if flavor.system_first else request.messages
        messages: list[dict[str, Any]] = [
            {"role": flavor.system_role if m.role == "system" else m.role, "content": m.content}
            for m in turns
        ]
        prefix = bool(messages) and messages[-1]["role"] == "assistant"
        if prefix and (flavor.assistant_prefix or flavor.beta_prefix):
            messages[-1]["prefix"] = True
        body: dict[str, Any] = {"model": request.model_id, "messages": messages}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.max_tokens is not None:
            body[flavor.max_tokens_field] = request.max_tokens
        if request.seed is not None and flavor.seed_field is not None:
            body[flavor.seed_field] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if flavor.disable_thinking:
            body["thinking"] = {"type": "disabled"}
        body["stream"] = request.stream
        if request.stream and flavor.stream_usage_option:
            body["stream_options"] = {"include_usage": True}
        return HttpRequest(
            method="POST",
            url=self._url(beta=prefix and flavor.beta_prefix),
            headers=_headers(self.api_key, request.stream, self.extra_headers),
            json=body,
        )

    def _url(self, *, beta: bool) -> str:
        """``{base}/chat/completions``; DeepSeek's beta (its prefix completion) is
        ``/beta`` beside the ``/v1`` of a base URL that has one, or the base URL itself
        when it is the beta's (as DeepSeek's guide to prefix completion has it)."""
        base = self.base_url.rstrip("/")
        if not beta:
            return f"{base}/chat/completions"
        return f"{base.removesuffix('/beta').removesuffix('/v1')}/beta/chat/completions"

    def parse_response(self, body: bytes) -> Completion:
        try:
            data = load_json(body)
        except ValueError:
            raise bad_reply(self.provider, "response body is not JSON") from None
        data = obj(data)
        if data.get("error") is not None or data.get("object") == "error":
            raise stream_error(self.provider, data, secret=self.api_key, output_began=False)
        choice = first(data.get("choices"))
        if not choice:
            raise bad_reply(self.provider, "response has no choices")
        message = obj(choice.get("message"))
        # (xAI's and Together's "" is a finish reason: the whole body came)
        finish = string(choice.get("finish_reason"))
        flavor = self.flavor
        usage = data.get("usage")
        refused = self._refused(finish, string(message.get("refusal")))
        if refused is not None:
            raise _billed(refused, usage, flavor)
        try:
            self._check_finish(finish, output_began=False)
        except ProviderError as failed:  # (billed as its usage says, as a refusal is)
            raise _billed(failed, usage, flavor) from None
        tokens = _chat_usage(usage, flavor)
        return Completion(
            text=without_think(_content_text(message.get("content"))),
            finish_reason=finish,
            usage=tokens,
            model_id=string(data.get("model")),
            cost_usd=_ticks_cost(usage) if flavor.cost_in_ticks else None,
            cached_input_tokens=_billed_cached(tokens, flavor),
        )

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return map_error(self.provider, status, headers, body, secret=self.api_key)

    def stream_parser(self) -> _ChatStream:
        return _ChatStream(self)

    def _refused(self, finish: str | None, refusal: str | None) -> Refused | None:
        """The refusal or filtered answer this finish reason and refusal text say, if any."""
        if refusal:
            return Refused(refusal, provider=self.provider, status=200)
        if finish == "content_filter":
            return Refused(
                "the answer was stopped by the provider's content filter (content_filter)",
                provider=self.provider,
                status=200,
                content_filtered=True,
            )
        return None

    def _check_finish(self, finish: str | None, *, output_began: bool) -> None:
        """Raise for a provider-side failure (a refusal is raised, billed, before)."""
        if finish in _FAILED_FINISH:
            # (DeepSeek's is its capacity, Together's and Mistral's their server's error:
            # an answer begun is carried on by the model itself when no other is left)
            message = f"the provider could not finish the answer ({finish})"
            if not output_began:
                raise UpstreamError(message, provider=self.provider, status=200)
            cut = broken(self.provider, True, f"finish reason {finish}")
            overloaded = finish == "insufficient_system_resource"
            cut.cause = UpstreamError(
                message, provider=self.provider, status=503 if overloaded else 500
            )
            raise cut


class _ChatStream:
    """``data: {chunk}`` events until ``data: [DONE]``; comments and keep-alives skipped."""

    def __init__(self, adapter: OpenAIChatAdapter) -> None:
        self._adapter = adapter
        self._sse = SseDecoder()
        self._finish: str | None = None
        #: the last finish reason was "" (xAI, Together): the end only when ``[DONE]``
        #: follows (a stream cut after it may have been one that says "" in every chunk)
        self._blank = False
        self._usage = Usage()
        self._cost: float | None = None
        self._cached = 0
        self._model: str | None = None
        self._refusal: list[str] = []
        #: the last usage object a chunk carried: what a refusal is billed
        self._reported: dict[str, Any] | None = None
        #: a refusal or a failed finish that came before its usage (OpenAI's own chunk,
        #: asked for with ``stream_options``): raised, billed, when the usage or the
        #: stream's end comes
        self._ending: ProviderError | None = None
        self._text = False
        self._done = False
        self._think = ThinkBlock()

    @property
    def finished(self) -> bool:
        return self._finish is not None

    def feed(self, data: bytes) -> list[StreamEvent]:
        return collect(self._handle, self._sse.feed(data))

    def end(self) -> list[StreamEvent]:
        rest = self._sse.close()
        if self._finish is not None:
            # the text is whole: a usage chunk or ``[DONE]`` the connection cut is no loss
            # (a chunk cut short that may have held text still fails the answer)
            rest = after_the_end(rest, '"content"')
        events = collect(self._handle, rest)
        if self._done:
            return events
        refused = self._ending
        if refused is None:  # refusal text, and no finish reason
            refused = self._adapter._refused(None, "".join(self._refusal))
        if refused is not None:  # its usage never came, or came before it: billed as said
            error = self._bill(refused)
            error.events_before = tuple(events)
            raise error
        if self._finish is not None:
            return [*events, self._end()]
        raise broken(self._adapter.provider, self._text, "without a finish reason")

    def _bill(self, error: ProviderError) -> ProviderError:
        return _billed(error, self._reported, self._adapter.flavor)

    def _end(self) -> StreamEnd:
        self._done = True
        return StreamEnd(
            finish_reason=self._finish,
            usage=self._usage,
            model_id=self._model,
            cost_usd=self._cost,
            cached_input_tokens=self._cached,
        )

    def _handle(self, sse_events: list[SseEvent], events: list[StreamEvent]) -> None:
        for sse in sse_events:
            if self._done:
                break
            data = sse.data if sse.data is not None else sse.raw
            if data is None:
                continue
            if data.strip() == "[DONE]":
                if self._ending is not None:
                    raise self._bill(self._ending)
                if self._finish is None and self._blank:
                    self._finish = ""
                    if held := self._think.end():
                        self._text = True
                        events.append(TextDelta(text=held))
                events.append(self._end())
                continue
            try:
                chunk = load_json(data)
            except ValueError:
                events.append(Malformed(detail=not_json(data)))
                continue
            if not isinstance(chunk, dict):
                events.append(Malformed(detail="chunk is not a JSON object"))
                continue
            events.extend(self._chunk(chunk))

    def _chunk(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        adapter = self._adapter
        groq = obj(chunk.get("x_groq"))
        reported = False
        for usage in (chunk.get("usage"), groq.get("usage")):
            if isinstance(usage, dict):
                reported = True
                self._reported = usage
                flavor = adapter.flavor
                self._usage = _chat_usage(usage, flavor)
                if flavor.cost_in_ticks:
                    self._cost = _ticks_cost(usage)
                self._cached = _billed_cached(self._usage, flavor)
        # (Mistral's errors are objects of their own: {"object": "error", "message", ...})
        # ("error": null in a chunk is no error)
        if (
            chunk.get("error") is not None
            or groq.get("error") is not None
            or (chunk.get("object") == "error")
        ):
            payload = {"error": groq["error"]} if groq.get("error") is not None else chunk
            failed = stream_error(
                adapter.provider, payload, secret=adapter.api_key, output_began=self._text
            )
            # (Groq's usage beside its error: what it billed)
            raise self._bill(failed) if reported else failed
        self._model = string(chunk.get("model")) or self._model
        if self._ending is not None:  # ended already: only its usage was waited for
            if reported:
                raise self._bill(self._ending)
            return []
        events: list[StreamEvent] = []
        choice = first(chunk.get("choices"))
        delta = obj(choice.get("delta"))
        if "delta" not in choice and "message" in choice:
            # a server that ignored "stream": true and sent the whole completion (as JSON,
            # or as one event): its message is the text
            delta = obj(choice.get("message"))
        raw = _content_text(delta.get("content"))
        if raw:
            self._finish = None  # more text: the finish reason before it was not the end
            self._blank = False
            text = self._think.feed(raw)  # (a reasoning block at its start is no answer)
            if text:
                self._text = True
                events.append(TextDelta(text=text))
        refusal = string(delta.get("refusal"))
        if refusal:
            self._refusal.append(refusal)
        finish = string(choice.get("finish_reason"))
        if finish == "":
            self._blank = True
            finish = None
        if finish is not None:
            self._finish = finish
            if held := self._think.end():  # what looked like a block's start was answer
                self._text = True
                events.append(TextDelta(text=held))
            refused = adapter._refused(finish, "".join(self._refusal))
            if refused is not None:
                if reported:  # the finish chunk carries the usage (Groq, Together, Mistral)
                    raise self._bill(refused)
                # OpenAI's usage comes in a chunk of its own after the finish: the provider
                # bills the refusal, so it is waited for (the end of the stream or ``[DONE]``
                # raises it without). What came before it in this read goes out first.
                self._ending = refused
                return events
            try:
                adapter._check_finish(finish, output_began=self._text)
            except ProviderError as failed:
                # the usage its finish chunk carries, or the chunk after it, is what the
                # provider bills (Together's and Mistral's "error", DeepSeek's
                # "insufficient_system_resource"): waited for as a refusal's is
                if reported:
                    raise self._bill(failed) from None
                self._ending = failed
        return events


# --------------------------------------------------------------------------- Responses


def _responses_text(response: dict[str, Any]) -> str:
    parts: list[str] = []
    for item in response.get("output", ()) if isinstance(response.get("output"), list) else ():
        item = obj(item)
        if item.get("type") != "message":
            continue
        for part in item.get("content", ()) if isinstance(item.get("content"), list) else ():
            part = obj(part)
            if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
    return "".join(parts)


#: the most sources an answer's citations keep (a search returns a handful), and the
#: longest URL one may have (a longer one is no link anyone follows: left out)
MAX_CITATIONS: Final = 50
MAX_URL: Final = 2048


def _sources(item: Any) -> list[str] | None:
    """The URLs of a ``search_results`` output item's results, in order: the sources a
    Perplexity answer's ``[1]``, ``[2]`` markers point to. One entry per result, ``""``
    for one without a web URL (so the numbers still match); None for another item."""
    item = obj(item)
    if item.get("type") != "search_results":
        return None
    results = item.get("results")
    urls: list[str] = []
    for result in results[:MAX_CITATIONS] if isinstance(results, list) else ():
        url = (string(obj(result).get("url")) or "").strip()
        web = len(url) <= MAX_URL and url.lower().startswith(("https://", "http://"))
        urls.append(url if web else "")
    return urls


def _citations(items: Any) -> tuple[str, ...] | None:
    """The sources of the ``search_results`` items among ``items`` (a response's
    ``output``), in order; None when there is none."""
    found: list[str] | None = None
    for item in items if isinstance(items, list) else ():
        urls = _sources(item)
        if urls is not None:
            found = (found or []) + urls
    return None if found is None else tuple(found[:MAX_CITATIONS])


def _responses_usage(data: Any) -> Usage:
    """A Responses ``usage``: ``input_tokens`` and ``output_tokens``; of them the input
    read from cache (``input_tokens_details.cached_tokens``, Perplexity's
    ``cache_read_input_tokens``) and the reasoning (``output_tokens_details.
    reasoning_tokens``, Perplexity's legacy ``reasoning_tokens``)."""
    usage = obj(data)
    cache = obj(usage.get("input_tokens_details"))
    thought = obj(usage.get("output_tokens_details"))
    return detailed_usage(
        count(usage.get("input_tokens")),
        count(usage.get("output_tokens")),
        cache.get("cached_tokens", cache.get("cache_read_input_tokens")),
        thought.get("reasoning_tokens", usage.get("reasoning_tokens")),
    )


def _reported_cost(usage: Any) -> float | None:
    """Perplexity's ``usage.cost.total_cost`` (tokens, request and tool fees), in USD."""
    total = obj(obj(usage).get("cost")).get("total_cost")
    if isinstance(total, bool) or not isinstance(total, int | float):
        return None
    if not 0.0 <= total < math.inf:  # (a NaN fails this too)
        return None
    return float(min(total, _MOST_TICKS))  # (held where billed, as xAI's ticks are)


def _searches_run(usage: Any) -> int | None:
    """The web searches a Perplexity answer ran, each a search fee (``usage.
    tool_calls_details.web_search.invocation``); None when it does not say."""
    runs = obj(obj(obj(usage).get("tool_calls_details")).get("web_search")).get("invocation")
    if isinstance(runs, float) and runs.is_integer():
        runs = int(runs)  # (2.0: JSON's numbers have no kind)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 0:
        return None
    return min(runs, _MOST_SEARCHES)


def _responses_finish(response: dict[str, Any]) -> str | None:
    status = string(response.get("status"))
    if status == "completed":
        return "stop"
    if status == "incomplete":
        reason = string(obj(response.get("incomplete_details")).get("reason"))
        return "length" if reason == "max_output_tokens" else reason or "incomplete"
    return status


@attrs.frozen(kw_only=True)
class OpenAIResponsesAdapter:
    """The Responses format (Perplexity's Agent API); ``api_key`` is never shown."""

    provider: str
    base_url: str
    api_key: str | None = attrs.field(default=None, repr=False)
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)

    def build_request(self, request: ProviderRequest) -> HttpRequest:
        """``system`` turns become ``instructions``; sampling knobs the format lacks are dropped.

        The Agent API documents ``temperature`` and ``max_output_tokens`` only:
        ``top_p``, ``seed`` and ``stop`` are not sent.
        """
        # (Perplexity wants user and assistant turns to alternate: a 400 invalid_message)
        system, turns = alternating(request.messages)
        body: dict[str, Any] = {"model": request.model_id, "input": turns}
        if system:
            body["instructions"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        body["stream"] = request.stream
        base = self.base_url.rstrip("/")
        url = f"{base}/responses" if base.endswith("/v1") else f"{base}/v1/responses"
        return HttpRequest(
            method="POST",
            url=url,
            headers=_headers(self.api_key, request.stream, self.extra_headers),
            json=body,
        )

    def parse_response(self, body: bytes) -> Completion:
        try:
            data = obj(load_json(body))
        except ValueError:
            raise bad_reply(self.provider, "response body is not JSON") from None
        if data.get("error") or data.get("status") == "failed":
            raise self._failed(data, output_began=False)
        if data.get("object") != "response" and "output" not in data:
            raise bad_reply(self.provider, "response has no output")
        return Completion(
            text=_responses_text(data),
            finish_reason=_responses_finish(data),
            usage=_responses_usage(data.get("usage")),
            model_id=string(data.get("model")),
            cost_usd=_reported_cost(data.get("usage")),
            fees=_searches_run(data.get("usage")),
            citations=_citations(data.get("output")) or (),
        )

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return map_error(self.provider, status, headers, body, secret=self.api_key)

    def stream_parser(self) -> _ResponsesStream:
        return _ResponsesStream(self)

    def _failed(self, failed: dict[str, Any], *, output_began: bool) -> ProviderError:
        """The error a failed response carries: a ``response.failed`` event's top-level
        ``error`` (perplexity-py's ``ResponseFailedEvent``), else the ``error`` of its
        ``response`` (OpenAI's form) or of a failed non-streamed response."""
        error = (
            failed.get("error")
            or obj(failed.get("response")).get("error")
            or {"message": "the response failed", "type": "api_error"}
        )
        return stream_error(
            self.provider, {"error": error}, secret=self.api_key, output_began=output_began
        )


class _ResponsesStream:
    """Typed events (``response.output_text.delta`` ...) until ``response.completed``."""

    def __init__(self, adapter: OpenAIResponsesAdapter) -> None:
        self._adapter = adapter
        self._sse = SseDecoder()
        self._model: str | None = None
        self._finish: str | None = None
        self._text = False
        self._done = False
        #: the sources of each search results item seen so far, by its place in the output
        self._searches: dict[int, list[str]] = {}

    @property
    def finished(self) -> bool:
        return self._finish is not None

    def feed(self, data: bytes) -> list[StreamEvent]:
        return collect(self._handle, self._sse.feed(data))

    def end(self) -> list[StreamEvent]:
        rest = self._sse.close()
        if self._finish is not None:  # a cut ``response.completed``: no text lost
            rest = after_the_end(rest, "output_text", typed=True)
        events = collect(self._handle, rest)
        if self._done:
            return events
        if self._finish is not None:
            # the text is whole, its usage never came (``response.completed`` carries it):
            # billed as an answer without usage is, fees at the most they can be
            self._done = True
            return [
                *events,
                StreamEnd(
                    finish_reason=self._finish,
                    usage=Usage(),
                    model_id=self._model,
                    citations=self._cited(),
                ),
            ]
        raise broken(self._adapter.provider, self._text, "without response.completed")

    def _cited(self) -> tuple[str, ...]:
        """The sources of the search results items the stream has carried, in order."""
        found = [url for _, urls in sorted(self._searches.items()) for url in urls]
        return tuple(found[:MAX_CITATIONS])

    def _handle(self, sse_events: list[SseEvent], events: list[StreamEvent]) -> None:
        for sse in sse_events:
            if self._done or sse.data is None:
                continue
            if sse.data.strip() == "[DONE]":
                if self._finish is not None:
                    self._done = True
                    events.append(
                        StreamEnd(
                            finish_reason=self._finish,
                            usage=Usage(),
                            model_id=self._model,
                            citations=self._cited(),
                        )
                    )
                continue
            try:
                payload = load_json(sse.data)
            except ValueError:
                events.append(Malformed(detail=not_json(sse.data)))
                continue
            if not isinstance(payload, dict):
                events.append(Malformed(detail="event is not a JSON object"))
                continue
            events.extend(self._event(string(payload.get("type")) or sse.event or "", payload))

    def _event(self, kind: str, payload: dict[str, Any]) -> list[StreamEvent]:
        adapter = self._adapter
        response = obj(payload.get("response"))
        self._model = string(response.get("model")) or self._model
        if kind == "response.output_text.delta":
            text = string(payload.get("delta")) or ""
            if text:
                self._text = True
                self._finish = None  # more text: what looked like the end was not
                return [TextDelta(text=text)]
        elif kind in ("response.output_item.added", "response.output_item.done"):
            # a message item done is the answer's end, as far as it goes: its status says
            # whether it was cut ("incomplete": a token limit). ``response.completed``, with
            # the usage, normally follows; a text part done is not the end (more may follow)
            item = obj(payload.get("item"))
            urls = _sources(item)
            if urls is not None:
                at = payload.get("output_index")
                self._searches[at if isinstance(at, int) else len(self._searches)] = urls
            if kind == "response.output_item.done" and item.get("type") == "message":
                status = string(item.get("status"))
                self._finish = "stop" if status in (None, "completed") else "length"
        elif kind in ("response.completed", "response.incomplete"):
            self._done = True
            whole = _citations(response.get("output"))  # (the whole output: it decides)
            return [
                StreamEnd(
                    finish_reason=_responses_finish(response) or "stop",
                    usage=_responses_usage(response.get("usage")),
                    model_id=self._model,
                    cost_usd=_reported_cost(response.get("usage")),
                    fees=_searches_run(response.get("usage")),
                    citations=whole if whole is not None else self._cited(),
                )
            ]
        elif kind == "response.failed":
            raise adapter._failed(payload, output_began=self._text)
        elif kind == "error":
            raise stream_error(
                adapter.provider,
                {"error": payload.get("error", payload)},
                secret=adapter.api_key,
                output_began=self._text,
            )
        return []
